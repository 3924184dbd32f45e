//! The tags trailkey puts on its keys, and KMS's limit on them.

use std::collections::BTreeMap;

/// Tag every key trailkey creates carries, so a rerun can recognise it.
pub const MANAGED_BY_TAG: (&str, &str) = ("ManagedBy", "trailkey");
/// Tag naming the alias a trailkey key was created for.
pub const ALIAS_TAG: &str = "trailkey:alias";
/// Tag that only trailkey's own `CreateKey` sets, in the same call that
/// creates the key: the mark that trailkey created the key, rather than
/// adopting one the alias named. Only such a key may be deleted by
/// `destroy --delete-key`. Tags trailkey adds to an existing key never
/// include it, and trailkey never removes a tag, so it survives reruns.
pub const CREATED_TAG: (&str, &str) = ("trailkey:created", "true");

/// The tags trailkey sets on a key it creates: `ManagedBy`, the alias tag
/// and [`CREATED_TAG`].
pub const TRAILKEY_TAGS: [&str; 3] = [MANAGED_BY_TAG.0, ALIAS_TAG, CREATED_TAG.0];

/// Whether `tags` carry `tag` (its key with exactly its value).
fn carries(tags: &BTreeMap<String, String>, (key, value): (&str, &str)) -> bool {
    tags.get(key).is_some_and(|v| v == value)
}

/// Whether a key's tags say trailkey manages it ([`MANAGED_BY_TAG`]).
pub fn managed_by_trailkey(tags: &BTreeMap<String, String>) -> bool {
    carries(tags, MANAGED_BY_TAG)
}

/// Whether a key's tags say trailkey's own `CreateKey` made it ([`CREATED_TAG`]).
pub fn created_by_trailkey(tags: &BTreeMap<String, String>) -> bool {
    carries(tags, CREATED_TAG)
}

/// At most 50 tags per KMS key ("Tags in AWS KMS", AWS KMS Developer
/// Guide); tags whose keys start with `aws:` are AWS's and do not count.
pub const MAX_KEY_TAGS: usize = 50;

/// Whether the tag `key` counts against [`MAX_KEY_TAGS`]: AWS's own `aws:`
/// tags (in any case) do not.
pub fn counts_against_tag_limit(key: &str) -> bool {
    !key.to_ascii_lowercase().starts_with("aws:")
}
/// Tag keys starting with this are trailkey's own; a config may not set them.
pub const RESERVED_TAG_PREFIX: &str = "trailkey:";
