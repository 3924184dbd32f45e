//! KMS where moto 5.2.5 is lenient: eventual consistency of new keys,
//! aliases and state changes, the key state table, `UpdateAlias` of a
//! missing alias, the tag limit and the rotation period; and how a request
//! names a key.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::iam_sts::{account_of, is_account};
use super::{World, json_body, json_error, response_json};
use crate::proxy::{Decision, Request, Response, Rule, Traffic};

/// KMS and CloudTrail while a new key or alias propagates.
///
/// The KMS API is eventually consistent: a change usually takes less than
/// a few seconds to propagate, sometimes minutes, and meanwhile calls can
/// fail with errors such as `NotFoundException`, e.g. a call naming a key
/// right after its `CreateKey`
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/accessing-kms.html#programming-eventual-consistency>,
/// "AWS KMS eventual consistency"). This rule makes such a window certain
/// for new keys and for aliases just created or moved:
///
/// * For `window` after a `CreateKey` answer, every KMS request whose
///   `KeyId` or `TargetKeyId` names the new key, by ID or ARN, is answered
///   `NotFoundException` ("Key '<ARN>' does not exist"): `DescribeKey`,
///   `GetKeyPolicy`, `PutKeyPolicy`, `CreateAlias`, `UpdateAlias`, ...
/// * For `window` after a successful `CreateAlias` or `UpdateAlias`, a KMS
///   request whose `KeyId` names the alias (name or ARN) in that account is
///   answered `NotFoundException` ("Alias <name> is not found.").
/// * A CloudTrail `UpdateTrail` or `CreateTrail` whose `KmsKeyId` names a
///   key or an alias still in its window is answered
///   `KmsKeyNotFoundException`, CloudTrail's error for a KMS key that does
///   not exist
///   (<https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_UpdateTrail.html>).
///
/// None of these reach moto. After the window, requests pass.
pub fn kms_propagation(window: Duration) -> impl Rule {
    KmsPropagation { window }
}

struct KmsPropagation {
    window: Duration,
}

/// A key as a `CreateKey` answer gave it.
struct NewKey {
    id: String,
    arn: String,
    at: Instant,
}

/// An alias as a successful `CreateAlias` or `UpdateAlias` set it.
pub(super) struct SetAlias {
    pub(super) account: String,
    pub(super) name: String,
    pub(super) target: String,
    pub(super) at: Instant,
}

impl Rule for KmsPropagation {
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision {
        let now = Instant::now();
        let young = |at: Instant| now < at + self.window;
        let keys: Vec<NewKey> = created_keys(traffic)
            .into_iter()
            .filter(|k| young(k.at))
            .collect();
        let aliases: Vec<SetAlias> = set_aliases(traffic)
            .into_iter()
            .filter(|a| young(a.at))
            .collect();
        if keys.is_empty() && aliases.is_empty() {
            return Decision::Forward;
        }
        let body = json_body(request);
        if request.service == "kms" && request.action != "CreateKey" {
            let account = account_of(request, traffic);
            for field in ["KeyId", "TargetKeyId"] {
                let Some(named) = body.get(field).and_then(Value::as_str) else {
                    continue;
                };
                match KeyName::parse(named) {
                    KeyName::Key(id) => {
                        if let Some(k) = keys.iter().find(|k| k.id == id) {
                            return Decision::Respond(json_error(
                                "NotFoundException",
                                &format!("Key '{}' does not exist", k.arn),
                            ));
                        }
                    }
                    KeyName::Alias {
                        name,
                        account: in_arn,
                    } => {
                        let seen = aliases.iter().any(|a| {
                            a.name == name && a.account == in_arn.map_or(account.as_str(), |x| x)
                        });
                        if seen {
                            return Decision::Respond(json_error(
                                "NotFoundException",
                                &format!("Alias {named} is not found."),
                            ));
                        }
                    }
                }
            }
        }
        if request.is("cloudtrail", "UpdateTrail") || request.is("cloudtrail", "CreateTrail") {
            let Some(named) = body.get("KmsKeyId").and_then(Value::as_str) else {
                return Decision::Forward;
            };
            let young_key = match KeyName::parse(named) {
                KeyName::Key(id) => keys.iter().any(|k| k.id == id),
                // The alias is looked up in the account of its ARN; a bare
                // name names any account's.
                KeyName::Alias { name, account } => aliases.iter().any(|a| {
                    a.name == name
                        && account.is_none_or(|x| a.account == x || !is_account(&a.account))
                }),
            };
            if young_key {
                return Decision::Respond(json_error(
                    "KmsKeyNotFoundException",
                    &format!("KMS key not found: {named}"),
                ));
            }
        }
        Decision::Forward
    }
}

/// Every key `CreateKey` answered, in order.
fn created_keys(traffic: &Traffic) -> Vec<NewKey> {
    traffic
        .exchanges
        .iter()
        .filter(|e| e.is("kms", "CreateKey") && e.response.status == 200)
        .filter_map(|e| {
            let meta = response_json(e).get("KeyMetadata")?.clone();
            Some(NewKey {
                id: meta.get("KeyId")?.as_str()?.to_owned(),
                arn: meta.get("Arn")?.as_str()?.to_owned(),
                at: e.at,
            })
        })
        .collect()
}

/// Every alias a successful `CreateAlias` or `UpdateAlias` set, in order.
pub(super) fn set_aliases(traffic: &Traffic) -> Vec<SetAlias> {
    traffic
        .exchanges
        .iter()
        .filter(|e| {
            (e.is("kms", "CreateAlias") || e.is("kms", "UpdateAlias")) && e.response.status == 200
        })
        .filter_map(|e| {
            let body = json_body(&e.request);
            Some(SetAlias {
                account: account_of(&e.request, traffic),
                name: body.get("AliasName")?.as_str()?.to_owned(),
                target: key_id_of(body.get("TargetKeyId")?.as_str()?),
                at: e.at,
            })
        })
        .collect()
}

/// Writes on a key in a state that refuses them fail with the codes real
/// KMS gives, where moto 5.2.5 lets them through, per the key state table
/// of <https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html>
/// ("Key states of AWS KMS keys"; `doc_source/key-state.md` of
/// awsdocs/aws-kms-developer-guide):
///
/// | operation | Disabled | PendingDeletion |
/// |---|---|---|
/// | CreateAlias, UpdateAlias (of the target key) | ✓ | `KMSInvalidStateException` |
/// | PutKeyPolicy, GetKeyPolicy, DescribeKey, ListResourceTags | ✓ | ✓ |
/// | GetKeyRotationStatus | ✓ | ✓ |
/// | EnableKeyRotation, DisableKeyRotation | `DisabledException` | `KMSInvalidStateException` |
/// | TagResource, UntagResource, UpdateKeyDescription | ✓ | `KMSInvalidStateException` |
/// | EnableKey, DisableKey, ScheduleKeyDeletion | ✓ | `KMSInvalidStateException` |
/// | CancelKeyDeletion | `KMSInvalidStateException` (also when Enabled) | ✓ |
/// | Encrypt, Decrypt, GenerateDataKey*, ReEncrypt*, CreateGrant, Sign, Verify | `DisabledException` | `KMSInvalidStateException` |
///
/// (CreateKey uses no existing key: the table leaves it out.) The messages
/// are the table's: "<key ARN> is disabled.", "<key ARN> is pending
/// deletion.", "<key ARN> is not pending deletion.".
///
/// A key's state is what the traffic last showed: `CreateKey` (Enabled),
/// `DescribeKey` answers, and successful `DisableKey`, `EnableKey`,
/// `ScheduleKeyDeletion` and `CancelKeyDeletion` (Disabled). Keys the
/// traffic says nothing about are left to moto.
pub fn kms_key_states() -> impl Rule {
    |request: &Request, traffic: &Traffic| {
        if request.service != "kms" {
            return Decision::Forward;
        }
        let Some(named) = key_named(request) else {
            return Decision::Forward;
        };
        let account = account_of(request, traffic);
        let Some(id) = resolve(&named, &account, traffic) else {
            return Decision::Forward;
        };
        let known = key_states(traffic);
        let Some(key) = known.get(&id) else {
            return Decision::Forward;
        };
        match refusal(&request.action, &key.state) {
            Some((code, why)) => Decision::Respond(json_error(code, &format!("{} {why}", key.arn))),
            None => Decision::Forward,
        }
    }
}

/// A key's state and ARN as the traffic last showed them.
struct KeyState {
    state: String,
    arn: String,
}

/// The code and message ending real KMS answers `action` with on a key in
/// `state`, if it refuses it (the table of [`kms_key_states`]).
fn refusal(action: &str, state: &str) -> Option<(&'static str, &'static str)> {
    const INVALID: &str = "KMSInvalidStateException";
    let cryptographic = matches!(
        action,
        "Encrypt"
            | "Decrypt"
            | "ReEncrypt"
            | "GenerateDataKey"
            | "GenerateDataKeyWithoutPlaintext"
            | "GenerateDataKeyPair"
            | "GenerateDataKeyPairWithoutPlaintext"
            | "GenerateMac"
            | "VerifyMac"
            | "Sign"
            | "Verify"
            | "CreateGrant"
            | "GetPublicKey"
    );
    match state {
        "Enabled" if action == "CancelKeyDeletion" => Some((INVALID, "is not pending deletion.")),
        "Disabled" => match action {
            "CancelKeyDeletion" => Some((INVALID, "is not pending deletion.")),
            "EnableKeyRotation" | "DisableKeyRotation" => {
                Some(("DisabledException", "is disabled."))
            }
            _ if cryptographic => Some(("DisabledException", "is disabled.")),
            _ => None,
        },
        "PendingDeletion" => match action {
            "CancelKeyDeletion"
            | "DescribeKey"
            | "GetKeyPolicy"
            | "PutKeyPolicy"
            | "GetKeyRotationStatus"
            | "ListResourceTags"
            | "ListAliases"
            | "ListGrants"
            | "ListKeyPolicies"
            | "ListRetirableGrants"
            | "RetireGrant"
            | "RevokeGrant"
            | "ListKeyRotations" => None,
            _ => Some((INVALID, "is pending deletion.")),
        },
        _ => None,
    }
}

/// The state and ARN of every key the traffic shows, by key ID.
fn key_states(traffic: &Traffic) -> HashMap<String, KeyState> {
    key_states_before(traffic, None)
}

/// The answer header of a `DescribeKey` that [`kms_state_changes_propagate`]
/// rewrote to show a key's old state: [`key_states`] does not learn from it.
const STALE_STATE: &str = "x-trailkey-layer-stale-state";
/// The answer header of a read that [`kms_reads_propagate`] replayed.
const STALE_READ: &str = "x-trailkey-layer-stale-read";

/// Whether `e`'s answer is a read [`kms_reads_propagate`] replayed: what
/// the key was before a write, not what it is; rules that learn a key's
/// policy or tags from the traffic skip it.
pub(super) fn replayed(e: &crate::proxy::Exchange) -> bool {
    e.response.headers.iter().any(|(n, _)| n == STALE_READ)
}

/// [`key_states`] as the traffic showed them before `before` (all of it
/// for `None`).
fn key_states_before(traffic: &Traffic, before: Option<Instant>) -> HashMap<String, KeyState> {
    let mut keys: HashMap<String, KeyState> = HashMap::new();
    for e in traffic.exchanges.iter().filter(|e| {
        e.request.service == "kms"
            && e.response.status == 200
            && before.is_none_or(|at| e.at < at)
            && !e.response.headers.iter().any(|(n, _)| n == STALE_STATE)
    }) {
        let answer = response_json(e);
        if let Some(meta) = answer.get("KeyMetadata") {
            let (Some(id), Some(arn)) = (
                meta.get("KeyId").and_then(Value::as_str),
                meta.get("Arn").and_then(Value::as_str),
            ) else {
                continue;
            };
            let state = meta
                .get("KeyState")
                .and_then(Value::as_str)
                .unwrap_or("Enabled");
            keys.insert(
                id.to_owned(),
                KeyState {
                    state: state.to_owned(),
                    arn: arn.to_owned(),
                },
            );
            continue;
        }
        let state = match e.request.action.as_str() {
            "DisableKey" | "CancelKeyDeletion" => "Disabled",
            "EnableKey" => "Enabled",
            "ScheduleKeyDeletion" => "PendingDeletion",
            _ => continue,
        };
        let named = key_named(&e.request);
        let account = account_of(&e.request, traffic);
        let Some(id) = named.and_then(|n| resolve_before(&n, &account, traffic, e.at)) else {
            continue;
        };
        let arn = match keys.get(&id) {
            Some(k) => k.arn.clone(),
            None => named_arn(&e.request).unwrap_or_else(|| id.clone()),
        };
        keys.insert(
            id,
            KeyState {
                state: state.to_owned(),
                arn,
            },
        );
    }
    keys
}

/// A key's state change takes time to reach KMS's and CloudTrail's other
/// hosts: KMS is eventually consistent, and "a change usually takes less
/// than a few seconds to propagate" ("AWS KMS eventual consistency", AWS
/// KMS Developer Guide; each KMS operation's model text "Eventual
/// consistency: The KMS API follows an eventual consistency model", e.g.
/// `EnableKey`, `CancelKeyDeletion`). moto shows it at once.
///
/// For `window` after a successful `EnableKey` or `CancelKeyDeletion`, the
/// key keeps, for the calls that name it, the state the traffic showed
/// before the change ([`key_states`]):
///
/// * `DescribeKey` goes to moto, and its answer shows the old `KeyState`
///   (and `Enabled`);
/// * a write on the key is refused as in that state ([`refusal`]: e.g.
///   `EnableKeyRotation` on a key still seen disabled is
///   `DisabledException`, anything but `CancelKeyDeletion` on a key still
///   seen pending deletion `KMSInvalidStateException`);
/// * `UpdateTrail` whose `KmsKeyId` names it (ID, ARN, or alias as the
///   traffic set it) while it is still seen anything but enabled is
///   `KmsKeyDisabledException`.
///
/// A key whose state before the change the traffic never showed is left
/// alone.
pub fn kms_state_changes_propagate(window: Duration) -> impl Rule {
    StateChanges { window }
}

struct StateChanges {
    window: Duration,
}

impl StateChanges {
    /// The old state of key `id`, if a state change of it is still
    /// propagating.
    fn old_state(&self, id: &str, traffic: &Traffic) -> Option<KeyState> {
        let now = Instant::now();
        let change = traffic.exchanges.iter().rev().find(|e| {
            e.request.service == "kms"
                && matches!(e.request.action.as_str(), "EnableKey" | "CancelKeyDeletion")
                && e.response.status == 200
                && now < e.at + self.window
                && key_named(&e.request).and_then(|n| {
                    resolve_before(&n, &account_of(&e.request, traffic), traffic, e.at)
                }) == Some(id.to_owned())
        })?;
        key_states_before(traffic, Some(change.at)).remove(id)
    }

    /// The key a request names, resolved, when one of its state changes
    /// propagates, with its old state.
    fn named(&self, request: &Request, traffic: &Traffic) -> Option<(String, KeyState)> {
        let named = if request.is("cloudtrail", "UpdateTrail") {
            json_body(request).get("KmsKeyId")?.as_str()?.to_owned()
        } else if request.service == "kms" {
            key_named(request)?
        } else {
            return None;
        };
        let id = resolve(&named, &account_of(request, traffic), traffic)?;
        let old = self.old_state(&id, traffic)?;
        Some((id, old))
    }
}

impl Rule for StateChanges {
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision {
        let Some((_, old)) = self.named(request, traffic) else {
            return Decision::Forward;
        };
        if request.is("cloudtrail", "UpdateTrail") {
            if old.state == "Enabled" {
                return Decision::Forward;
            }
            return Decision::Respond(json_error(
                "KmsKeyDisabledException",
                &format!("KMS key {} is disabled.", old.arn),
            ));
        }
        match refusal(&request.action, &old.state) {
            Some((code, why)) => Decision::Respond(json_error(code, &format!("{} {why}", old.arn))),
            None => Decision::Forward,
        }
    }

    fn rewrite(&self, request: &Request, mut response: Response, traffic: &Traffic) -> Response {
        if !request.is("kms", "DescribeKey") || response.status != 200 {
            return response;
        }
        let Some((_, old)) = self.named(request, traffic) else {
            return response;
        };
        let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        if let Some(meta) = answer.get_mut("KeyMetadata").and_then(Value::as_object_mut) {
            meta.insert("KeyState".to_owned(), json!(old.state));
            meta.insert("Enabled".to_owned(), json!(old.state == "Enabled"));
        }
        response.body = answer.to_string().into_bytes();
        response
            .headers
            .push((STALE_STATE.to_owned(), "1".to_owned()));
        response
    }
}

/// Reads of a key's policy, rotation and tags while a write of them
/// propagates: KMS is eventually consistent, "changes to AWS KMS resources
/// might not be immediately visible to the subsequent commands you run"
/// ("AWS KMS eventual consistency", AWS KMS Developer Guide; each KMS
/// operation's model text, e.g. `PutKeyPolicy`, "Eventual consistency: The
/// KMS API follows an eventual consistency model"). moto shows a write at
/// once.
///
/// For `window` after a successful write of a key's policy
/// (`PutKeyPolicy`), rotation (`EnableKeyRotation`, `DisableKeyRotation`)
/// or tags (`TagResource`, `UntagResource`), the read of it
/// (`GetKeyPolicy`, `GetKeyRotationStatus`, `ListResourceTags` without a
/// `Marker`) is answered as the traffic's last answer to that read of the
/// key before the write. A write within the window of an earlier one
/// starts the window again, and the answer stays the one from before the
/// first. A key the traffic never read before the write is left alone.
pub fn kms_reads_propagate(window: Duration) -> impl Rule {
    ReadsPropagate { window }
}

struct ReadsPropagate {
    window: Duration,
}

/// The writes whose effect a read shows late: (read, writes).
const LATE_READS: [(&str, &[&str]); 3] = [
    ("GetKeyPolicy", &["PutKeyPolicy"]),
    (
        "GetKeyRotationStatus",
        &["EnableKeyRotation", "DisableKeyRotation"],
    ),
    ("ListResourceTags", &["TagResource", "UntagResource"]),
];

impl Rule for ReadsPropagate {
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision {
        let Some((_, writes)) = LATE_READS.iter().find(|(read, _)| request.is("kms", read)) else {
            return Decision::Forward;
        };
        if json_body(request).get("Marker").is_some() {
            return Decision::Forward;
        }
        let account = account_of(request, traffic);
        let Some(id) = key_named(request).and_then(|n| resolve(&n, &account, traffic)) else {
            return Decision::Forward;
        };
        let on_key = |e: &&crate::proxy::Exchange| {
            e.request.service == "kms"
                && e.response.status == 200
                && key_named(&e.request)
                    .and_then(|n| {
                        resolve_before(&n, &account_of(&e.request, traffic), traffic, e.at)
                    })
                    .as_deref()
                    == Some(id.as_str())
        };
        // The writes of the key, and where the last run of them (each
        // within the window of the one before) started, and the write
        // before that run.
        let mut first: Option<Instant> = None;
        let mut last: Option<Instant> = None;
        let mut earlier: Option<Instant> = None;
        for e in traffic
            .exchanges
            .iter()
            .filter(|e| writes.contains(&e.request.action.as_str()))
            .filter(on_key)
        {
            if last.is_none_or(|l| e.at >= l + self.window) {
                earlier = last;
                first = Some(e.at);
            }
            last = Some(e.at);
        }
        let (Some(first), Some(last)) = (first, last) else {
            return Decision::Forward;
        };
        if Instant::now() >= last + self.window {
            return Decision::Forward;
        }
        let shown = traffic
            .exchanges
            .iter()
            .rev()
            .filter(|e| e.request.action == request.action && e.at < first)
            .filter(|e| earlier.is_none_or(|w| e.at > w))
            .filter(|e| !replayed(e) && json_body(&e.request).get("Marker").is_none())
            .find(on_key);
        match shown {
            Some(e) => {
                let mut answer = e.response.clone();
                answer.headers.push((STALE_READ.to_owned(), "1".to_owned()));
                Decision::Respond(answer)
            }
            None => Decision::Forward,
        }
    }
}

/// The `KeyId` of a request if it is a key ARN.
fn named_arn(request: &Request) -> Option<String> {
    json_body(request)
        .get("KeyId")
        .and_then(Value::as_str)
        .filter(|k| k.starts_with("arn:") && k.contains(":key/"))
        .map(str::to_owned)
}

/// `UpdateAlias` of an alias that does not exist is answered
/// `NotFoundException` ("Alias <name> is not found."): UpdateAlias
/// "associates an existing KMS alias with a different KMS key"
/// (<https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdateAlias.html>).
///
/// An alias does not exist when, in the caller's account, the traffic's
/// last word on it is a successful `DeleteAlias`, or a complete
/// `ListAliases` (no `KeyId`, not truncated) left it out and nothing
/// created it since. Otherwise the request goes to moto, which in 5.2.5
/// refuses an alias it does not have in the same way.
pub fn update_alias_needs_an_alias() -> impl Rule {
    |request: &Request, traffic: &Traffic| {
        if !request.is("kms", "UpdateAlias") {
            return Decision::Forward;
        }
        let body = json_body(request);
        let Some(name) = body.get("AliasName").and_then(Value::as_str) else {
            return Decision::Forward;
        };
        let account = account_of(request, traffic);
        if alias_exists(name, &account, traffic) == Some(false) {
            Decision::Respond(json_error(
                "NotFoundException",
                &format!("Alias {name} is not found."),
            ))
        } else {
            Decision::Forward
        }
    }
}

/// Whether the traffic shows alias `name` of `account` to exist, if it says.
fn alias_exists(name: &str, account: &str, traffic: &Traffic) -> Option<bool> {
    let mut exists: HashMap<String, bool> = HashMap::new();
    let mut listed = false;
    for e in traffic.exchanges.iter().filter(|e| {
        e.request.service == "kms"
            && e.response.status == 200
            && account_of(&e.request, traffic) == account
    }) {
        let body = json_body(&e.request);
        let alias = body.get("AliasName").and_then(Value::as_str);
        match (e.request.action.as_str(), alias) {
            ("CreateAlias" | "UpdateAlias", Some(a)) => {
                exists.insert(a.to_owned(), true);
            }
            ("DeleteAlias", Some(a)) => {
                exists.insert(a.to_owned(), false);
            }
            ("ListAliases", _) if body.get("KeyId").is_none() => {
                let answer = response_json(e);
                if answer.get("Truncated").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                exists = answer
                    .get("Aliases")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.get("AliasName")?.as_str())
                    .map(|a| (a.to_owned(), true))
                    .collect();
                listed = true;
            }
            _ => {}
        }
    }
    exists
        .get(name)
        .copied()
        .or(if listed { Some(false) } else { None })
}

/// At most 50 tags per KMS key ("Tags in AWS KMS", AWS KMS Developer
/// Guide; tags whose keys start with `aws:` do not count): a `TagResource`
/// that would take a key past that is answered `LimitExceededException`
/// (kms model: "a length constraint or quota was exceeded", listed by
/// `TagResource`). moto takes any number. The key's tags are what the
/// traffic last showed: its `CreateKey`'s `Tags`, a `ListResourceTags`
/// answer (not truncated), then `TagResource` and `UntagResource`. A key
/// whose tags the traffic never showed goes to moto.
pub fn kms_tag_limit() -> impl Rule {
    |request: &Request, traffic: &Traffic| {
        if !request.is("kms", "TagResource") {
            return Decision::Forward;
        }
        let Some(named) = key_named(request) else {
            return Decision::Forward;
        };
        let account = account_of(request, traffic);
        let Some(id) = resolve(&named, &account, traffic) else {
            return Decision::Forward;
        };
        let Some(mut tags) = key_tags(&id, &account, traffic) else {
            return Decision::Forward;
        };
        tags.extend(tag_keys(&json_body(request)));
        let counted = tags
            .iter()
            .filter(|t| !t.to_ascii_lowercase().starts_with("aws:"))
            .count();
        if counted > 50 {
            Decision::Respond(json_error(
                "LimitExceededException",
                "The request was rejected because a quota was exceeded. For more information, see Quotas in the Key Management Service Developer Guide.",
            ))
        } else {
            Decision::Forward
        }
    }
}

/// The `TagKey`s of a request's or answer's `Tags`.
fn tag_keys(body: &Value) -> Vec<String> {
    body.get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("TagKey")?.as_str().map(str::to_owned))
        .collect()
}

/// The tag keys of key `id` as the traffic last showed them.
fn key_tags(
    id: &str,
    account: &str,
    traffic: &Traffic,
) -> Option<std::collections::BTreeSet<String>> {
    let mut tags: Option<std::collections::BTreeSet<String>> = None;
    for e in traffic
        .exchanges
        .iter()
        .filter(|e| e.request.service == "kms" && e.response.status == 200)
    {
        let body = json_body(&e.request);
        let this_key = || {
            key_named(&e.request)
                .and_then(|n| resolve_before(&n, account, traffic, e.at))
                .as_deref()
                == Some(id)
        };
        match e.request.action.as_str() {
            "CreateKey" => {
                let made = response_json(e)
                    .get("KeyMetadata")
                    .and_then(|m| m.get("KeyId"))
                    .and_then(Value::as_str)
                    == Some(id);
                if made {
                    tags = Some(tag_keys(&body).into_iter().collect());
                }
            }
            "ListResourceTags" if this_key() && !replayed(e) => {
                let answer = response_json(e);
                if answer.get("Truncated").and_then(Value::as_bool) != Some(true) {
                    tags = Some(tag_keys(&answer).into_iter().collect());
                }
            }
            "TagResource" if this_key() => {
                if let Some(t) = tags.as_mut() {
                    t.extend(tag_keys(&body));
                }
            }
            "UntagResource" if this_key() => {
                if let Some(t) = tags.as_mut() {
                    for k in body
                        .get("TagKeys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(k) = k.as_str() {
                            t.remove(k);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    tags
}

/// The ARN of key `id` for messages: as `CreateKey` or another answer
/// showed it, else the key ARN the request named, else the ID.
pub(super) fn key_arn(id: &str, named: &str, traffic: &Traffic) -> String {
    created_keys(traffic)
        .into_iter()
        .find(|k| k.id == id)
        .map(|k| k.arn)
        .or_else(|| key_states(traffic).remove(id).map(|k| k.arn))
        .filter(|arn| arn.starts_with("arn:"))
        .or_else(|| {
            (named.starts_with("arn:") && named.contains(":key/")).then(|| named.to_owned())
        })
        .unwrap_or_else(|| id.to_owned())
}

/// How a request names a key.
pub(super) enum KeyName<'a> {
    /// A key ID, or the ID in a key ARN.
    Key(&'a str),
    /// An alias name (`alias/...`), with the account of an alias ARN.
    Alias {
        name: &'a str,
        account: Option<&'a str>,
    },
}

impl<'a> KeyName<'a> {
    pub(super) fn parse(named: &'a str) -> KeyName<'a> {
        if named.starts_with("alias/") {
            return KeyName::Alias {
                name: named,
                account: None,
            };
        }
        if named.starts_with("arn:") {
            if let Some(at) = named.find(":alias/") {
                return KeyName::Alias {
                    name: &named[at + 1..],
                    account: named.split(':').nth(4),
                };
            }
            if let Some((_, id)) = named.split_once(":key/") {
                return KeyName::Key(id);
            }
        }
        KeyName::Key(named)
    }
}

/// The key ID in a key ID or key ARN; anything else as it is.
pub(super) fn key_id_of(named: &str) -> String {
    match KeyName::parse(named) {
        KeyName::Key(id) => id.to_owned(),
        KeyName::Alias { name, .. } => name.to_owned(),
    }
}

/// The key ID that `named` (key ID, key ARN, alias name or ARN) stands for
/// in `account`, aliases as the traffic set them.
pub(super) fn resolve(named: &str, account: &str, traffic: &Traffic) -> Option<String> {
    resolve_before(named, account, traffic, Instant::now())
}

/// The same, with the aliases as set before `at`.
pub(super) fn resolve_before(
    named: &str,
    account: &str,
    traffic: &Traffic,
    at: Instant,
) -> Option<String> {
    match KeyName::parse(named) {
        KeyName::Key(id) => Some(id.to_owned()),
        KeyName::Alias {
            name,
            account: in_arn,
        } => {
            let account = in_arn.unwrap_or(account);
            set_aliases(traffic)
                .into_iter()
                .rev()
                .find(|a| a.at < at && a.name == name && a.account == account)
                .map(|a| a.target)
        }
    }
}

/// The key a KMS request names, as the caller wrote it (an ID, an ARN or
/// an alias): `TargetKeyId` of `CreateAlias` and `UpdateAlias`, else `KeyId`.
pub(super) fn key_named(request: &Request) -> Option<String> {
    let field = match request.action.as_str() {
        "CreateAlias" | "UpdateAlias" => "TargetKeyId",
        _ => "KeyId",
    };
    json_body(request)
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The rotation period, which moto 5.2.5 neither checks nor keeps
/// (`enable_key_rotation` drops `RotationPeriodInDays`,
/// `get_key_rotation_status` answers only `KeyRotationEnabled`). As the KMS
/// API model has it:
///
/// * `EnableKeyRotation`'s `RotationPeriodInDays` is a
///   `RotationPeriodInDaysType`, an integer of 90 to 2560: any other value
///   is `ValidationException`, and does not reach moto;
/// * "If no value is specified, the default value is 365 days", and
///   `EnableKeyRotation` on a key whose rotation is on sets its period ("or
///   you can use `RotationPeriodInDays` to modify the rotation period of a
///   key that you previously enabled automatic key rotation on");
/// * `GetKeyRotationStatus` answers `RotationPeriodInDays` ("The number of
///   days between each automatic rotation") for a key whose rotation is on.
///
/// The period of each key is kept in the [`World`]: set by every
/// successful `EnableKeyRotation` through the layer, and by the fixture's
/// `drift rotation-period` ([`World::learn`]).
pub fn kms_rotation_period(world: World) -> impl Rule {
    RotationPeriod { world }
}

struct RotationPeriod {
    world: World,
}

/// `RotationPeriodInDaysType` of the KMS API model.
const ROTATION_PERIOD_DAYS: std::ops::RangeInclusive<i64> = 90..=2560;

/// KMS's period when `EnableKeyRotation` gives none.
pub const DEFAULT_ROTATION_PERIOD_DAYS: i64 = 365;

impl Rule for RotationPeriod {
    fn decide(&self, request: &Request, _: &Traffic) -> Decision {
        if !request.is("kms", "EnableKeyRotation") {
            return Decision::Forward;
        }
        let Some(given) = json_body(request).get("RotationPeriodInDays").cloned() else {
            return Decision::Forward;
        };
        let constraint = match given.as_i64() {
            Some(d) if ROTATION_PERIOD_DAYS.contains(&d) => return Decision::Forward,
            Some(d) if d < *ROTATION_PERIOD_DAYS.start() => "greater than or equal to 90",
            Some(_) => "less than or equal to 2560",
            None => "an integer",
        };
        Decision::Respond(json_error(
            "ValidationException",
            &format!(
                "1 validation error detected: Value '{given}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value {constraint}"
            ),
        ))
    }

    fn rewrite(&self, request: &Request, response: Response, traffic: &Traffic) -> Response {
        let period = request.is("kms", "EnableKeyRotation");
        let status = request.is("kms", "GetKeyRotationStatus");
        if !(period || status) || response.status != 200 {
            return response;
        }
        let Some(id) = key_named(request)
            .and_then(|named| resolve(&named, &account_of(request, traffic), traffic))
        else {
            return response;
        };
        if period {
            let days = json_body(request)
                .get("RotationPeriodInDays")
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
            self.world.rotation_period(&id, days);
            return response;
        }
        let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        if answer.get("KeyRotationEnabled") != Some(&Value::Bool(true)) {
            return response;
        }
        let days = self
            .world
            .rotation_period_of(&id)
            .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
        answer["RotationPeriodInDays"] = json!(days);
        Response {
            body: answer.to_string().into_bytes(),
            ..response
        }
    }
}
