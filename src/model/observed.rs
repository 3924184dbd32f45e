//! What trailkey read from AWS, as the plan sees it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aws::{CallerIdentity, KeyInfo, LogBucket, Organization, Trail, TrailStatus};

/// How trailkey found the key it manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// `alias/<ct_key_alias>` names it.
    Alias,
    /// Its tags `ManagedBy = trailkey` and `trailkey:alias = <ct_key_alias>`
    /// (the alias is missing or names another key).
    Tags,
    /// The trail uses it and it is tagged `ManagedBy = trailkey` for another
    /// alias: `ct_key_alias` was renamed.
    Trail,
}

/// The key trailkey manages, with what it manages on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedKey {
    pub info: KeyInfo,
    /// The key policy as KMS returned it (a JSON document).
    pub policy: String,
    /// `None` when KMS does not tell (a key pending deletion).
    pub rotation: Option<bool>,
    pub tags: BTreeMap<String, String>,
    pub found_by: FoundBy,
    /// The aliases naming the key, read only when the key's alias tag differs
    /// from `ct_key_alias` (to find the alias of a renamed `ct_key_alias`).
    pub aliases: Option<Vec<String>>,
}

/// Everything `observe` read from AWS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observed {
    pub identity: CallerIdentity,
    pub organization: Organization,
    pub trail: Trail,
    /// Every other trail visible from the home Region (`DescribeTrails`,
    /// shadow copies of multi-Region trails included): those that use the
    /// key keep CloudTrail's permission on it.
    pub other_trails: Vec<Trail>,
    /// `GetTrailStatus` (`None` where not read).
    pub trail_status: Option<TrailStatus>,
    /// The trail's tags, read only when the trail would change (`None`: not read).
    pub trail_tags: Option<BTreeMap<String, String>>,
    /// The Region of the trail's S3 bucket, or why it could not be read.
    pub bucket_region: Result<String, String>,
    /// The key `alias/<ct_key_alias>` names, if the alias exists.
    pub alias_target: Option<KeyInfo>,
    /// The key trailkey manages (see [`FoundBy`]), if there is one.
    pub key: Option<ObservedKey>,
    /// Other keys tagged by trailkey for the same alias (left by a crash or
    /// a concurrent run): reported, never touched.
    pub other_keys: Vec<KeyInfo>,
    /// Keys the tag search skipped because their key policy does not let
    /// trailkey's role read them (their ARNs).
    pub unreadable_keys: Vec<String>,
    /// The organization's account IDs, read only when a foreign statement
    /// opens the key to an account trailkey does not know (`None`: not read).
    pub organization_accounts: Option<Vec<String>>,
    /// The trail bucket as `roles.log_archive` reads it, read only when the
    /// trail would change and the role is set (`None`: not read).
    pub log_bucket: Option<LogBucket>,
}
