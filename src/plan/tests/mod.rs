//! The pure plan's unit tests, a file per concern beside the production
//! file it tests. Here, what they share: the accounts and ARNs, the config,
//! an organization with its trail and no key, the dimensions of observed
//! state a [`Case`] combines, and the converged state the named cases start
//! from.

use std::path::Path;

use serde_json::json;

use super::*;

mod blind_spot;
mod changes;
mod checks;
mod combinations;
mod destroy;
mod findings;
mod key_policy;
mod landing_zone;
mod needs;

const SECURITY_TOOLING: &str = "111111111111";
const LOG_ARCHIVE: &str = "222222222222";
const MANAGEMENT: &str = "333333333333";
const TRAIL_ARN: &str = "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail";
const OTHER_TRAIL_ARN: &str = "arn:aws:cloudtrail:us-east-1:333333333333:trail/other-trail";
const ALIAS: &str = "alias/cloudtrail-org-key";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111111111111:key/99999999-9999-4999-8999-999999999999";

/// The plan of `observed`, which holds every read its plan needs: these
/// tests give the planner what the reconcile loop reads when it asks.
fn plan(desired: &Desired, observed: &Observed) -> Result<Plan, Error> {
    ready(super::plan(desired, observed))
}

/// `destroy`'s plan, as [`plan`].
fn plan_destroy(
    desired: &Desired,
    observed: &Observed,
    delete_key: Option<(i32, &KeyUsers)>,
) -> Result<Plan, Error> {
    ready(super::plan_destroy(desired, observed, delete_key))
}

fn ready(planned: Result<Planned, Error>) -> Result<Plan, Error> {
    match planned? {
        Planned::Ready(plan) => Ok(*plan),
        Planned::Needs(needs) => panic!("planning asked for {needs:?}"),
    }
}

// ---------------------------------------------------------------------------
// Inputs

fn config_text(rotation: bool, management: Option<&str>) -> String {
    let management = management.map_or_else(String::new, |m| format!("management = \"{m}\"\n"));
    format!(
        r#"
region = "us-east-1"

[accounts]
security_tooling = "{SECURITY_TOOLING}"
log_archive = "{LOG_ARCHIVE}"
{management}
[trail]
name = "org-trail"

[key]
rotation = {rotation}
tags = {{ Owner = "platform" }}
"#
    )
}

fn config(rotation: bool) -> Desired {
    crate::config::parse(Path::new("t.toml"), config_text(rotation, None).as_bytes())
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

/// The config with `[key] rotation = rotation`, parsed once per test thread.
fn cached_config(rotation: bool) -> Desired {
    thread_local! {
        static CONFIGS: [Desired; 2] = [config(false), config(true)];
    }
    CONFIGS.with(|c| c[usize::from(rotation)].clone())
}

fn key_info(state: &str) -> KeyInfo {
    KeyInfo {
        key_id: KEY_ID.to_owned(),
        arn: KEY_ARN.to_owned(),
        state: crate::aws::KeyState::from(state),
        key_spec: crate::aws::KeySpec::from("SYMMETRIC_DEFAULT"),
        key_usage: crate::aws::KeyUsage::from("ENCRYPT_DECRYPT"),
        origin: crate::aws::Origin::from("AWS_KMS"),
        multi_region: false,
        description: "CloudTrail organization trail logs (org-trail), managed by trailkey"
            .to_owned(),
        key_manager: crate::aws::KeyManager::from("CUSTOMER"),
        created: Some(1_700_000_000),
    }
}

/// An organization whose management account runs trailkey, its trail, and no key.
fn observed_without_key(trail_kms_key_id: Option<&str>) -> Observed {
    Observed {
        runner: Runner::Management,
        identity: CallerIdentity {
            account: MANAGEMENT.to_owned(),
            arn: format!("arn:aws:iam::{MANAGEMENT}:user/admin"),
        },
        organization: Organization {
            id: "o-example111".to_owned(),
            management_account: MANAGEMENT.to_owned(),
            feature_set: crate::aws::FeatureSet::from("ALL"),
        },
        trail: Trail {
            name: "org-trail".to_owned(),
            arn: TRAIL_ARN.to_owned(),
            home_region: "us-east-1".to_owned(),
            kms_key_id: trail_kms_key_id.map(str::to_owned),
            is_organization_trail: true,
            is_multi_region_trail: true,
            s3_bucket: "org-trail-logs".to_owned(),
            s3_key_prefix: None,
            log_file_validation: true,
            has_custom_event_selectors: false,
        },
        trail_status: crate::aws::TrailStatus {
            is_logging: true,
            ..Default::default()
        },
        // Read, and none: what the loop reads before it plans a change of
        // the trail.
        trail_tags: OnDemand::Read(BTreeMap::new()),
        bucket_region: Ok("us-east-1".to_owned()),
        event_selectors: None,
        alias_target: None,
        key: None,
        other_keys: Vec::new(),
        unreadable_keys: Vec::new(),
        organization_accounts: OnDemand::NotRead,
        other_trails: Vec::new(),
        log_bucket: OnDemand::NotRead,
        landing_zone: None,
    }
}

/// trailkey's own policy, as `desired_policy` renders it when there is no key yet.
fn ours(desired: &Desired) -> Value {
    desired_policy(desired, &observed_without_key(None)).expect("the template renders")
}

/// [`ours`] for the test config, rendered once per test thread.
fn cached_ours() -> Value {
    thread_local! {
        static OURS: Value = ours(&config(true));
    }
    OURS.with(Value::clone)
}

fn statements_of(policy: &Value) -> Vec<Value> {
    policy::statements(policy).into_iter().cloned().collect()
}

fn statement_mut<'a>(policy: &'a mut Value, sid: &str) -> &'a mut Value {
    policy["Statement"]
        .as_array_mut()
        .expect("a statement list")
        .iter_mut()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}"))
}

fn kms_default_statement() -> Value {
    json!({
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": { "AWS": format!("arn:aws:iam::{SECURITY_TOOLING}:root") },
        "Action": "kms:*",
        "Resource": "*"
    })
}

fn third_party_statement() -> Value {
    json!({
        "Sid": "ThirdParty",
        "Effect": "Allow",
        "Principal": { "AWS": "arn:aws:iam::444444444444:role/scanner" },
        "Action": ["kms:DescribeKey", "kms:GetKeyPolicy"],
        "Resource": "*"
    })
}

/// Turns every single string value an IAM policy may also write as a list
/// (actions, resources, principals, condition values) into a one-element list.
fn as_one_element_lists(statement: &mut Value) {
    let listify = |v: &mut Value| {
        if let Value::String(s) = v {
            *v = json!([s.clone()]);
        }
    };
    for field in ["Action", "Resource"] {
        if let Some(v) = statement.get_mut(field) {
            listify(v);
        }
    }
    if let Some(Value::Object(principal)) = statement.get_mut("Principal") {
        principal.values_mut().for_each(listify);
    }
    if let Some(Value::Object(condition)) = statement.get_mut("Condition") {
        for keys in condition.values_mut() {
            if let Value::Object(keys) = keys {
                keys.values_mut().for_each(listify);
            }
        }
    }
}

/// The test config with `trail_extra` under `[trail]`, `key_extra` under
/// `[key]` and `tables` (whole tables) after them.
fn config_with(trail_extra: &str, key_extra: &str, tables: &str) -> Desired {
    let text = config_text(true, None)
        .replace(
            "name = \"org-trail\"\n",
            &format!("name = \"org-trail\"\n{trail_extra}\n"),
        )
        .replace(
            "tags = { Owner = \"platform\" }\n",
            &format!("tags = {{ Owner = \"platform\" }}\n{key_extra}\n{tables}\n"),
        );
    crate::config::parse(Path::new("t.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}\n{text}", e.render()))
}

const READERS: &str = "[readers]\naccounts = [\"444455556666\"]\nprincipals = [\"arn:aws:iam::777788889999:role/SIEM\"]\n";

// ---------------------------------------------------------------------------
// The dimensions of observed state

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    const ALL: [Self; 3] = [Self::Enabled, Self::Disabled, Self::PendingDeletion];

    fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Disabled => "Disabled",
            Self::PendingDeletion => "PendingDeletion",
        }
    }

    /// What must happen for the key to be usable again.
    fn repair(self) -> Vec<&'static str> {
        match self {
            Self::Enabled => vec![],
            Self::Disabled => vec!["EnableKey"],
            Self::PendingDeletion => vec!["CancelKeyDeletion", "EnableKey"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyCase {
    /// Exactly what `desired_policy` renders.
    Exact,
    /// The same policy printed compactly, statements shuffled, single values as lists.
    Reformatted,
    /// `TrailkeyCloudTrailDescribeKey` is missing.
    StatementRemoved,
    /// `TrailkeyCloudTrailEncrypt` is scoped to another trail.
    ConditionChanged,
    /// `TrailkeyLogReadersDecrypt` no longer names the Log Archive account.
    LogArchiveRemoved,
    /// The default policy KMS gives a new key: root `kms:*` only.
    KmsDefaultOnly,
    /// trailkey's statements plus a foreign one.
    WithForeign,
}

impl PolicyCase {
    const ALL: [Self; 7] = [
        Self::Exact,
        Self::Reformatted,
        Self::StatementRemoved,
        Self::ConditionChanged,
        Self::LogArchiveRemoved,
        Self::KmsDefaultOnly,
        Self::WithForeign,
    ];

    fn text(self, ours: &Value) -> String {
        let mut p = ours.clone();
        match self {
            Self::Exact => return policy::to_document(ours),
            Self::Reformatted => {
                let list = p["Statement"].as_array_mut().unwrap();
                list.reverse();
                list.rotate_left(2);
                list.iter_mut().for_each(as_one_element_lists);
                assert_ne!(statements_of(&p), statements_of(ours), "shuffled");
                return p.to_string(); // compact, unlike the pretty template
            }
            Self::StatementRemoved => p["Statement"]
                .as_array_mut()
                .unwrap()
                .retain(|s| s["Sid"] != "TrailkeyCloudTrailDescribeKey"),
            Self::ConditionChanged => {
                statement_mut(&mut p, "TrailkeyCloudTrailEncrypt")["Condition"]["StringEquals"]["aws:SourceArn"] =
                    json!(OTHER_TRAIL_ARN);
            }
            Self::LogArchiveRemoved => {
                let readers = statement_mut(&mut p, "TrailkeyLogReadersDecrypt");
                let log_archive = format!("arn:aws:iam::{LOG_ARCHIVE}:root");
                let principals = readers["Principal"]["AWS"].as_array_mut().unwrap();
                let before = principals.len();
                principals.retain(|a| *a != log_archive.as_str());
                assert_eq!(principals.len(), before - 1, "Log Archive was a reader");
            }
            Self::KmsDefaultOnly => {
                p = json!({
                    "Version": "2012-10-17",
                    "Id": "key-default-1",
                    "Statement": [kms_default_statement()]
                });
            }
            Self::WithForeign => p["Statement"]
                .as_array_mut()
                .unwrap()
                .push(third_party_statement()),
        }
        policy::to_document(&p)
    }

    /// The current policy already grants exactly what trailkey wants.
    fn is_up_to_date(self) -> bool {
        matches!(self, Self::Exact | Self::Reformatted | Self::WithForeign)
    }

    /// Statements that are not trailkey's, in their order: they must survive.
    fn foreign(self) -> Vec<Value> {
        match self {
            Self::KmsDefaultOnly => vec![kms_default_statement()],
            Self::WithForeign => vec![third_party_statement()],
            _ => vec![],
        }
    }

    /// Foreign statements the plan reports as kept.
    fn kept(self) -> Vec<String> {
        match self {
            Self::KmsDefaultOnly => vec!["Enable IAM User Permissions".to_owned()],
            Self::WithForeign => vec!["ThirdParty".to_owned()],
            _ => vec![],
        }
    }

    fn reasons(self) -> Vec<String> {
        match self {
            Self::Exact | Self::Reformatted => vec![],
            Self::StatementRemoved => {
                vec!["+ statement TrailkeyCloudTrailDescribeKey (missing)".to_owned()]
            }
            Self::ConditionChanged => {
                vec!["~ statement TrailkeyCloudTrailEncrypt (differs)".to_owned()]
            }
            Self::LogArchiveRemoved => {
                vec!["~ statement TrailkeyLogReadersDecrypt (differs)".to_owned()]
            }
            Self::KmsDefaultOnly => [
                "TrailkeyRootAdministration",
                "TrailkeyCloudTrailEncrypt",
                "TrailkeyCloudTrailDescribeKey",
                "TrailkeyCloudTrailDecrypt",
                "TrailkeyLogReadersDecrypt",
            ]
            .iter()
            .map(|s| format!("+ statement {s} (missing)"))
            .collect(),
            Self::WithForeign => vec![],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagsCase {
    AllPresent,
    ManagedByMissing,
    ExtraForeign,
}

impl TagsCase {
    const ALL: [Self; 3] = [Self::AllPresent, Self::ManagedByMissing, Self::ExtraForeign];

    fn tags(self, desired: &Desired) -> BTreeMap<String, String> {
        let mut tags = desired.tags.clone();
        match self {
            Self::AllPresent => {}
            Self::ManagedByMissing => {
                tags.remove("ManagedBy");
            }
            Self::ExtraForeign => {
                tags.insert("CostCenter".to_owned(), "42".to_owned());
                tags.insert("aws:cloudformation:stack-name".to_owned(), "x".to_owned());
            }
        }
        tags
    }

    /// The tags a `TagResource` must set (never removes any).
    fn missing(self) -> BTreeMap<String, String> {
        match self {
            Self::ManagedByMissing => BTreeMap::from([("ManagedBy".into(), "trailkey".into())]),
            Self::AllPresent | Self::ExtraForeign => BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrailKey {
    None,
    KeyArn,
    KeyId,
    Alias,
    OtherKeyArn,
}

impl TrailKey {
    const ALL: [Self; 5] = [
        Self::None,
        Self::KeyArn,
        Self::KeyId,
        Self::Alias,
        Self::OtherKeyArn,
    ];

    fn kms_key_id(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::KeyArn => Some(KEY_ARN),
            Self::KeyId => Some(KEY_ID),
            Self::Alias => Some(ALIAS),
            Self::OtherKeyArn => Some(OTHER_KEY_ARN),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct KeyCase {
    state: KeyState,
    rotation: bool,
    policy: PolicyCase,
    tags: TagsCase,
    found: Found,
}

/// How observe found the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// The alias names it.
    Alias,
    /// The alias is missing; found by its tags.
    TagsAliasMissing,
    /// The alias names a key trailkey did not create; ours found by its tags.
    TagsAliasElsewhere,
}

impl Found {
    const ALL: [Self; 3] = [
        Self::Alias,
        Self::TagsAliasMissing,
        Self::TagsAliasElsewhere,
    ];
}

const OTHER_KEY_ID: &str = "0000aaaa-0000-4000-8000-00000000ffff";

#[derive(Debug, Clone, Copy)]
struct Case {
    /// `[key] rotation` in the config.
    rotation_config: bool,
    trail: TrailKey,
    /// The key behind the alias, if any.
    key: Option<KeyCase>,
}

impl Case {
    /// A key found only by its tags (the trail does not name it) whose
    /// policy grants more than trailkey writes: not adopted.
    fn refuses_adoption(&self) -> bool {
        self.key.is_some_and(|k| {
            k.found != Found::Alias
                && k.policy == PolicyCase::WithForeign
                && self.trail.kms_key_id() != Some(KEY_ARN)
        })
    }

    fn desired(&self) -> Desired {
        cached_config(self.rotation_config)
    }

    fn observed(&self, desired: &Desired) -> Observed {
        let ours = cached_ours();
        Observed {
            key: self.key.map(|k| ObservedKey {
                info: key_info(k.state.as_str()),
                policy: k.policy.text(&ours),
                rotation: Some(k.rotation),
                rotation_period_days: k.rotation.then_some(365),
                tags: k.tags.tags(desired),
                found_by: if k.found == Found::Alias {
                    FoundBy::Alias
                } else {
                    FoundBy::Tags
                },
                aliases: None,
            }),
            alias_target: self.key.and_then(|k| match k.found {
                Found::Alias => Some(key_info(k.state.as_str())),
                Found::TagsAliasMissing => None,
                Found::TagsAliasElsewhere => Some(KeyInfo {
                    key_id: OTHER_KEY_ID.to_owned(),
                    arn: format!("arn:aws:kms:us-east-1:{SECURITY_TOOLING}:key/{OTHER_KEY_ID}"),
                    ..key_info("Enabled")
                }),
            }),
            ..observed_without_key(self.trail.kms_key_id())
        }
    }
}

/// Every combination: the config's rotation, the trail's key, and either no
/// key or a key in every state, rotation, policy and tag set.
fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for rotation_config in [true, false] {
        for trail in TrailKey::ALL {
            cases.push(Case {
                rotation_config,
                trail,
                key: None,
            });
            for state in KeyState::ALL {
                for rotation in [true, false] {
                    for policy in PolicyCase::ALL {
                        for tags in TagsCase::ALL {
                            for found in Found::ALL {
                                // A key found by its tags carries ManagedBy.
                                if found != Found::Alias && tags == TagsCase::ManagedByMissing {
                                    continue;
                                }
                                cases.push(Case {
                                    rotation_config,
                                    trail,
                                    key: Some(KeyCase {
                                        state,
                                        rotation,
                                        policy,
                                        tags,
                                        found,
                                    }),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    cases
}

// ---------------------------------------------------------------------------
// The converged state, and what the tests read of a plan

fn converged_case() -> Case {
    Case {
        rotation_config: true,
        trail: TrailKey::KeyArn,
        key: Some(KeyCase {
            state: KeyState::Enabled,
            rotation: true,
            policy: PolicyCase::Exact,
            tags: TagsCase::AllPresent,
            found: Found::Alias,
        }),
    }
}

fn converged() -> (Desired, Observed) {
    let case = converged_case();
    let desired = case.desired();
    let observed = case.observed(&desired);
    (desired, observed)
}

/// The converged state with `statement` added to the key policy.
fn converged_with(statement: Value) -> (Desired, Observed) {
    let (desired, mut observed) = converged();
    let key = observed.key.as_mut().unwrap();
    let mut policy: Value = serde_json::from_str(&key.policy).unwrap();
    policy["Statement"].as_array_mut().unwrap().push(statement);
    key.policy = policy.to_string();
    (desired, observed)
}

fn grant(sid: &str, principal: Value, action: &str, condition: Option<Value>) -> Value {
    let mut s = json!({"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*"});
    if let Some(c) = condition {
        s["Condition"] = c;
    }
    s
}

fn change(p: &Plan, address: Address) -> &Change {
    p.changes
        .iter()
        .find(|c| c.address == address)
        .unwrap_or_else(|| panic!("no change for {}", address.as_str()))
}

fn validation_off(mut observed: Observed) -> Observed {
    observed.trail.log_file_validation = false;
    observed
}

fn ops(p: &Plan) -> Vec<&'static str> {
    p.steps().map(|(_, s)| s.operation()).collect()
}

fn plan_error(desired: &Desired, observed: &Observed) -> Error {
    let e = plan(desired, observed).expect_err("an error, not a plan");
    assert!(matches!(e, Error::Check { .. }), "{e:?}");
    assert!(!e.hint().is_empty());
    e
}
