//! Plan: a pure function from the desired state (the config) and the observed
//! state (what AWS returned) to a list of changes. No I/O here, so every
//! combination of observed state is unit-tested without a server.
//!
//! Each [`Change`] has an address, an action, `before`/`after` values for
//! display and JSON, the reasons, and the [`Step`]s `apply` executes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::{CallerIdentity, KeyInfo, NewKey, Organization, Trail};
use crate::config::Desired;
use crate::error::Error;
use crate::policy::{self, PolicyInputs};

/// JSON plan format version.
pub const FORMAT_VERSION: &str = "1";
/// Shown in `after` for values only known once apply has run.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// The key found behind the alias, with what trailkey manages on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedKey {
    pub info: KeyInfo,
    /// The key policy as KMS returned it (a JSON document).
    pub policy: String,
    pub rotation: bool,
    pub tags: BTreeMap<String, String>,
}

/// Everything `observe` read from AWS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observed {
    pub identity: CallerIdentity,
    pub organization: Organization,
    pub trail: Trail,
    /// The key `alias/<ct_key_alias>` names in the Security Tooling account, if any.
    pub key: Option<ObservedKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Delete,
    NoOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Address {
    KmsKey,
    KmsAlias,
    KmsKeyPolicy,
    KmsKeyRotation,
    TrailEncryption,
}

impl Address {
    pub fn as_str(self) -> &'static str {
        match self {
            Address::KmsKey => "kms_key",
            Address::KmsAlias => "kms_alias",
            Address::KmsKeyPolicy => "kms_key_policy",
            Address::KmsKeyRotation => "kms_key_rotation",
            Address::TrailEncryption => "trail_encryption",
        }
    }
}

/// One AWS write. Steps that act on "the key" use the existing key or the
/// one created by [`Step::CreateKey`] earlier in the same apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateKey(NewKey),
    CancelKeyDeletion,
    EnableKey,
    TagKey(BTreeMap<String, String>),
    CreateAlias(String),
    UpdateAlias(String),
    PutKeyPolicy(String),
    EnableRotation,
    UpdateTrail(String),
}

impl Step {
    /// The AWS API operation the step calls.
    pub fn operation(&self) -> &'static str {
        match self {
            Step::CreateKey(_) => "CreateKey",
            Step::CancelKeyDeletion => "CancelKeyDeletion",
            Step::EnableKey => "EnableKey",
            Step::TagKey(_) => "TagResource",
            Step::CreateAlias(_) => "CreateAlias",
            Step::UpdateAlias(_) => "UpdateAlias",
            Step::PutKeyPolicy(_) => "PutKeyPolicy",
            Step::EnableRotation => "EnableKeyRotation",
            Step::UpdateTrail(_) => "UpdateTrail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    pub before: Value,
    pub after: Value,
    pub reasons: Vec<String>,
    #[serde(skip)]
    pub steps: Vec<Step>,
}

/// Where the plan applies; shown above the changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub region: String,
    pub management_account: String,
    pub security_tooling_account: String,
    pub trail_arn: String,
    pub alias: String,
    /// The existing key, if the alias names one.
    pub key_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub format_version: &'static str,
    pub target: Target,
    pub changes: Vec<Change>,
    /// The existing key the steps act on (`None`: a `CreateKey` step makes it).
    #[serde(skip)]
    pub key: Option<KeyInfo>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    pub fn summary(&self) -> Summary {
        let count = |a| self.changes.iter().filter(|c| c.action == a).count();
        Summary {
            add: count(Action::Create),
            change: count(Action::Update),
            destroy: count(Action::Delete),
        }
    }

    pub fn steps(&self) -> impl Iterator<Item = (Address, &Step)> {
        self.changes
            .iter()
            .flat_map(|c| c.steps.iter().map(move |s| (c.address, s)))
    }
}

/// Checks the caller and the organization against the config. Pure; called
/// by `observe` right after the first round of reads, before anything else
/// is interpreted.
pub fn check_context(
    desired: &Desired,
    identity: &CallerIdentity,
    org: &Organization,
) -> Result<(), Error> {
    let partition = identity.partition().unwrap_or_default();
    if partition != desired.partition() {
        return Err(Error::check(
            format!(
                "the credentials are for partition {partition:?}, but region {} is in {:?}",
                desired.region,
                desired.partition()
            ),
            "use credentials for the partition of `region`, or fix `region`",
        ));
    }
    if org.feature_set != "ALL" {
        return Err(Error::check(
            format!(
                "organization {} has feature set {:?}; organization trails need all features",
                org.id, org.feature_set
            ),
            "enable all features in AWS Organizations (Settings), then run again",
        ));
    }
    if let Some(m) = &desired.management
        && m.as_str() != org.management_account
    {
        return Err(Error::check(
            format!(
                "accounts.management is {m}, but the organization's management account is {}",
                org.management_account
            ),
            format!(
                "set accounts.management = \"{}\" in {}, or remove it (trailkey reads it from Organizations)",
                org.management_account,
                desired.source.display()
            ),
        ));
    }
    if identity.account != org.management_account {
        return Err(Error::check(
            format!(
                "trailkey runs as {} in account {}, which is not the management account {} of organization {}",
                identity.arn, identity.account, org.management_account, org.id
            ),
            "run trailkey with credentials of the management account (e.g. --profile), or set roles.management to a role there",
        ));
    }
    for (field, acct) in [
        ("security_tooling", &desired.security_tooling),
        ("log_archive", &desired.log_archive),
    ] {
        if acct.as_str() == org.management_account {
            return Err(Error::check(
                format!("accounts.{field} is {acct}, the management account itself"),
                "the key belongs in the Security Tooling (Audit) account and the logs in Log Archive: use those accounts' IDs",
            ));
        }
    }
    Ok(())
}

/// Checks the trail against the config.
pub fn check_trail(desired: &Desired, trail: &Trail) -> Result<(), Error> {
    if trail.home_region != desired.region.as_str() {
        return Err(Error::check(
            format!(
                "trail {} lives in {}, but region is {}",
                trail.arn, trail.home_region, desired.region
            ),
            format!(
                "the key, the trail and its bucket must be in one Region: set region = \"{}\" in {}",
                trail.home_region,
                desired.source.display()
            ),
        ));
    }
    Ok(())
}

/// Checks that the key behind the alias can encrypt a trail at all. A key
/// that cannot is never modified or replaced silently.
pub fn check_key(desired: &Desired, key: &KeyInfo) -> Result<(), Error> {
    let mut problems = Vec::new();
    if key.key_manager != "CUSTOMER" {
        problems.push(format!("it is {}-managed", key.key_manager));
    }
    if key.key_spec != "SYMMETRIC_DEFAULT" {
        problems.push(format!("its key spec is {}", key.key_spec));
    }
    if key.key_usage != "ENCRYPT_DECRYPT" {
        problems.push(format!("its key usage is {}", key.key_usage));
    }
    if key.origin != "AWS_KMS" {
        problems.push(format!("its origin is {}", key.origin));
    }
    if key.multi_region {
        problems.push("it is a multi-Region key".to_owned());
    }
    if !matches!(
        key.state.as_str(),
        "Enabled" | "Disabled" | "PendingDeletion"
    ) {
        problems.push(format!("its state is {}", key.state));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::check(
        format!(
            "{} names key {}, which trailkey will not use for the trail: {}",
            desired.alias.full(),
            key.arn,
            problems.join(", ")
        ),
        format!(
            "trailkey needs a single-Region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key with AWS_KMS origin: choose another ct_key_alias in {}, or move the alias off that key",
            desired.source.display()
        ),
    ))
}

/// The policy trailkey would attach, given what is observed.
pub fn desired_policy(desired: &Desired, observed: &Observed) -> Result<Value, Error> {
    let ours = policy::render(&PolicyInputs {
        partition: desired.partition(),
        security_tooling: &desired.security_tooling,
        management: &observed.organization.management_account,
        log_archive: &desired.log_archive,
        trail_arn: &observed.trail.arn,
    });
    let current = observed
        .key
        .as_ref()
        .map(|k| parse_policy(&k.policy, &k.info.arn))
        .transpose()?;
    let merged = policy::merge(current.as_ref(), &ours);
    let size = policy::to_document(&merged).len();
    if size > policy::MAX_POLICY_BYTES {
        return Err(Error::check(
            format!(
                "the merged key policy would be {size} bytes; KMS accepts at most {}",
                policy::MAX_POLICY_BYTES
            ),
            "the key's foreign statements leave no room for trailkey's: remove unused statements from the key policy",
        ));
    }
    Ok(merged)
}

fn parse_policy(text: &str, key_arn: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::check(
            format!("the policy of key {key_arn} is not valid JSON ({e})"),
            "inspect it with `aws kms get-key-policy --policy-name default`",
        )
    })
}

/// Builds the plan. Pure: the same inputs give the same plan.
pub fn plan(desired: &Desired, observed: &Observed) -> Result<Plan, Error> {
    check_context(desired, &observed.identity, &observed.organization)?;
    check_trail(desired, &observed.trail)?;
    if let Some(k) = &observed.key {
        check_key(desired, &k.info)?;
    }
    let partition = desired.partition();
    let alias = desired.alias.full();
    let merged = desired_policy(desired, observed)?;
    let key = observed.key.as_ref();

    let mut changes = Vec::with_capacity(5);

    // kms_key
    changes.push(match key {
        None => Change {
            address: Address::KmsKey,
            action: Action::Create,
            before: Value::Null,
            after: json!({
                "arn": KNOWN_AFTER_APPLY,
                "description": desired.key_description(),
                "key_spec": "SYMMETRIC_DEFAULT",
                "key_usage": "ENCRYPT_DECRYPT",
                "origin": "AWS_KMS",
                "multi_region": false,
                "state": "Enabled",
                "tags": desired.tags,
            }),
            reasons: vec![format!(
                "no key is named {alias} in account {} ({})",
                desired.security_tooling, desired.region
            )],
            steps: vec![Step::CreateKey(NewKey {
                description: desired.key_description(),
                policy: policy::to_document(&merged),
                tags: desired.tags.clone(),
            })],
        },
        Some(k) => {
            let mut steps = Vec::new();
            let mut reasons = Vec::new();
            match k.info.state.as_str() {
                "PendingDeletion" => {
                    reasons.push(
                        "THE KEY IS PENDING DELETION: once deleted, every log it encrypted is unreadable for ever; trailkey cancels the deletion and enables the key".to_owned(),
                    );
                    steps.extend([Step::CancelKeyDeletion, Step::EnableKey]);
                }
                "Disabled" => {
                    reasons.push(
                        "the key is disabled: CloudTrail cannot deliver logs encrypted with it".to_owned(),
                    );
                    steps.push(Step::EnableKey);
                }
                _ => {}
            }
            let missing: BTreeMap<String, String> = desired
                .tags
                .iter()
                .filter(|(t, v)| k.tags.get(*t) != Some(*v))
                .map(|(t, v)| (t.clone(), v.clone()))
                .collect();
            if !missing.is_empty() {
                reasons.push(format!(
                    "tags to set: {}",
                    missing.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
                steps.push(Step::TagKey(missing));
            }
            let mut after_tags = k.tags.clone();
            after_tags.extend(desired.tags.iter().map(|(t, v)| (t.clone(), v.clone())));
            let view = |state: &str, tags: &BTreeMap<String, String>| {
                json!({
                    "arn": k.info.arn,
                    "description": k.info.description,
                    "key_spec": k.info.key_spec,
                    "key_usage": k.info.key_usage,
                    "origin": k.info.origin,
                    "multi_region": k.info.multi_region,
                    "state": state,
                    "tags": tags,
                })
            };
            Change {
                address: Address::KmsKey,
                action: if steps.is_empty() { Action::NoOp } else { Action::Update },
                before: view(&k.info.state, &k.tags),
                after: view("Enabled", &after_tags),
                reasons,
                steps,
            }
        }
    });

    // kms_alias: found by alias, so it exists and names the key when there is one.
    changes.push(match key {
        None => Change {
            address: Address::KmsAlias,
            action: Action::Create,
            before: Value::Null,
            after: json!({ "name": alias, "target_key_id": KNOWN_AFTER_APPLY }),
            reasons: vec![],
            steps: vec![Step::CreateAlias(alias.clone())],
        },
        Some(k) => {
            let v = json!({ "name": alias, "target_key_id": k.info.key_id });
            Change {
                address: Address::KmsAlias,
                action: Action::NoOp,
                before: v.clone(),
                after: v,
                reasons: vec![],
                steps: vec![],
            }
        }
    });

    // kms_key_policy
    changes.push(match key {
        None => Change {
            address: Address::KmsKeyPolicy,
            action: Action::Create,
            before: Value::Null,
            after: merged.clone(),
            reasons: vec!["attached by CreateKey with the new key".to_owned()],
            steps: vec![],
        },
        Some(k) => {
            let current = parse_policy(&k.policy, &k.info.arn)?;
            let d = policy::diff(Some(&current), &merged, partition);
            let same = policy::equivalent(&current, &merged, partition);
            let mut reasons: Vec<String> = Vec::new();
            reasons.extend(d.added.iter().map(|s| format!("+ statement {s} (missing)")));
            reasons.extend(
                d.changed
                    .iter()
                    .map(|s| format!("~ statement {s} (differs)")),
            );
            reasons.extend(
                d.removed
                    .iter()
                    .map(|s| format!("- statement {s} (no longer in the template)")),
            );
            reasons.extend(
                d.kept
                    .iter()
                    .map(|s| format!("= statement {s:?} is not managed by trailkey: kept")),
            );
            Change {
                address: Address::KmsKeyPolicy,
                action: if same { Action::NoOp } else { Action::Update },
                before: current,
                after: merged.clone(),
                reasons,
                steps: if same {
                    vec![]
                } else {
                    vec![Step::PutKeyPolicy(policy::to_document(&merged))]
                },
            }
        }
    });

    // kms_key_rotation
    changes.push(match (key, desired.rotation) {
        (None, true) => Change {
            address: Address::KmsKeyRotation,
            action: Action::Create,
            before: Value::Null,
            after: json!({ "enabled": true }),
            reasons: vec![],
            steps: vec![Step::EnableRotation],
        },
        (Some(k), true) if !k.rotation => Change {
            address: Address::KmsKeyRotation,
            action: Action::Update,
            before: json!({ "enabled": false }),
            after: json!({ "enabled": true }),
            reasons: vec!["automatic key rotation is off (CIS: rotation on)".to_owned()],
            steps: vec![Step::EnableRotation],
        },
        (k, _) => {
            let v = json!({ "enabled": k.map(|k| k.rotation) });
            Change {
                address: Address::KmsKeyRotation,
                action: Action::NoOp,
                before: v.clone(),
                after: v,
                reasons: if desired.rotation {
                    vec![]
                } else {
                    vec!["key.rotation = false: trailkey leaves rotation as it is".to_owned()]
                },
                steps: vec![],
            }
        }
    });

    // trail_encryption
    let trail = &observed.trail;
    let before = json!({ "trail": trail.arn, "kms_key_id": trail.kms_key_id });
    changes.push(match key {
        None => Change {
            address: Address::TrailEncryption,
            action: Action::Update,
            before,
            after: json!({ "trail": trail.arn, "kms_key_id": KNOWN_AFTER_APPLY }),
            reasons: vec![trail_reason(trail, None, &alias)],
            steps: vec![Step::UpdateTrail(trail.arn.clone())],
        },
        Some(k) if trail.kms_key_id.as_deref() == Some(k.info.arn.as_str()) => Change {
            address: Address::TrailEncryption,
            action: Action::NoOp,
            after: before.clone(),
            before,
            reasons: vec![],
            steps: vec![],
        },
        Some(k) => Change {
            address: Address::TrailEncryption,
            action: Action::Update,
            before,
            after: json!({ "trail": trail.arn, "kms_key_id": k.info.arn }),
            reasons: vec![trail_reason(trail, Some(&k.info), &alias)],
            steps: vec![Step::UpdateTrail(trail.arn.clone())],
        },
    });

    Ok(Plan {
        format_version: FORMAT_VERSION,
        target: Target {
            region: desired.region.to_string(),
            management_account: observed.organization.management_account.clone(),
            security_tooling_account: desired.security_tooling.to_string(),
            trail_arn: trail.arn.clone(),
            alias,
            key_arn: key.map(|k| k.info.arn.clone()),
        },
        changes,
        key: key.map(|k| k.info.clone()),
    })
}

fn trail_reason(trail: &Trail, key: Option<&KeyInfo>, alias: &str) -> String {
    let Some(current) = trail.kms_key_id.as_deref() else {
        return "the trail is not encrypted with a KMS key (SSE-S3 only)".to_owned();
    };
    match key {
        Some(k)
            if current == k.key_id
                || current == alias
                || current.ends_with(&format!(":{alias}")) =>
        {
            format!("the trail names the key as {current:?}, not by its key ARN")
        }
        _ => format!("the trail uses another key: {current}"),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
