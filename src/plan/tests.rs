//! The plan as a specification: every combination of observed state, with
//! the action, steps, summary and before/after values each one must give,
//! and the inputs that must stop trailkey before any write.

use std::path::Path;

use serde_json::json;

use super::*;

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

const ADDRESSES: [Address; 5] = [
    Address::KmsKey,
    Address::KmsAlias,
    Address::KmsKeyPolicy,
    Address::KmsKeyRotation,
    Address::TrailEncryption,
];

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
        },
        trail_status: crate::aws::TrailStatus {
            is_logging: true,
            ..Default::default()
        },
        // Read, and none: what the loop reads before it plans a change of
        // the trail.
        trail_tags: OnDemand::Read(BTreeMap::new()),
        bucket_region: Ok("us-east-1".to_owned()),
        alias_target: None,
        key: None,
        other_keys: Vec::new(),
        unreadable_keys: Vec::new(),
        organization_accounts: OnDemand::NotRead,
        other_trails: Vec::new(),
        log_bucket: OnDemand::NotRead,
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
// The specification: what each address must do

/// The action and the operations of its steps, derived from the case alone.
fn expected(case: &Case, address: Address) -> (Action, Vec<&'static str>) {
    use Action::{Create, NoOp, Update};
    let update_if = |ops: Vec<&'static str>| {
        if ops.is_empty() {
            (NoOp, ops)
        } else {
            (Update, ops)
        }
    };
    match (address, case.key) {
        (Address::KmsKey, None) => (Create, vec!["CreateKey"]),
        (Address::KmsKey, Some(k)) => {
            let mut ops = k.state.repair();
            if !k.tags.missing().is_empty() {
                ops.push("TagResource");
            }
            update_if(ops)
        }
        (Address::KmsAlias, None) => (Create, vec!["CreateAlias"]),
        (Address::KmsAlias, Some(k)) => match k.found {
            Found::Alias => (NoOp, vec![]),
            Found::TagsAliasMissing => (Create, vec!["CreateAlias"]),
            Found::TagsAliasElsewhere => (Update, vec!["UpdateAlias"]),
        },
        (Address::KmsAliasPrevious, _) => unreachable!("no renamed alias in the matrix"),
        // CreateKey attaches the policy: no step of its own.
        (Address::KmsKeyPolicy, None) => (Create, vec![]),
        (Address::KmsKeyPolicy, Some(k)) if k.policy.is_up_to_date() => (NoOp, vec![]),
        (Address::KmsKeyPolicy, Some(_)) => (Update, vec!["PutKeyPolicy"]),
        (Address::KmsKeyRotation, None) if case.rotation_config => {
            (Create, vec!["EnableKeyRotation"])
        }
        (Address::KmsKeyRotation, Some(k)) if case.rotation_config && !k.rotation => {
            (Update, vec!["EnableKeyRotation"])
        }
        (Address::KmsKeyRotation, _) => (NoOp, vec![]),
        (Address::TrailEncryption, Some(_)) if case.trail == TrailKey::KeyArn => (NoOp, vec![]),
        (Address::TrailEncryption, _) => (Update, vec!["UpdateTrail"]),
        (Address::TrailLogFileValidation, _) => {
            unreachable!("the matrix does not configure log_file_validation")
        }
    }
}

fn change(p: &Plan, address: Address) -> &Change {
    p.changes
        .iter()
        .find(|c| c.address == address)
        .unwrap_or_else(|| panic!("no change for {}", address.as_str()))
}

/// Checks the plan of `case` against the specification; returns `has_changes()`.
fn assert_plan_follows_the_spec(case: &Case) -> bool {
    let desired = case.desired();
    let observed = case.observed(&desired);
    let planned = plan(&desired, &observed).unwrap_or_else(|e| panic!("{case:?}\n{}", e.render()));

    // Deterministic.
    assert_eq!(planned, plan(&desired, &observed).unwrap(), "{case:?}");

    // One change per address, in apply order.
    let addresses: Vec<Address> = planned.changes.iter().map(|c| c.address).collect();
    assert_eq!(addresses, ADDRESSES, "{case:?}");

    // Actions and steps.
    let mut any_change = false;
    let (mut add, mut update) = (0, 0);
    for c in &planned.changes {
        let (action, ops) = expected(case, c.address);
        let actual_ops: Vec<&str> = c.steps.iter().map(Step::operation).collect();
        assert_eq!(
            (c.action, actual_ops),
            (action, ops),
            "{} in {case:?}",
            c.address.as_str()
        );
        if action == Action::NoOp {
            assert!(c.steps.is_empty(), "a no-op has no steps");
        }
        any_change |= action != Action::NoOp;
        add += usize::from(action == Action::Create);
        update += usize::from(action == Action::Update);
        for step in &c.steps {
            assert_step_payload(case, &desired, &planned, step);
        }
    }
    assert_eq!(planned.has_changes(), any_change, "{case:?}");
    assert_eq!(
        planned.summary(),
        Summary {
            add,
            change: update,
            destroy: 0
        },
        "{case:?}"
    );
    assert_eq!(
        planned.steps().count(),
        planned.changes.iter().map(|c| c.steps.len()).sum::<usize>()
    );

    assert_target(case, &planned);
    assert_key_views(case, &desired, &observed, change(&planned, Address::KmsKey));
    assert_alias_views(case, change(&planned, Address::KmsAlias));
    assert_policy_views(case, change(&planned, Address::KmsKeyPolicy));
    assert_rotation_views(case, change(&planned, Address::KmsKeyRotation));
    assert_trail_views(case, change(&planned, Address::TrailEncryption));
    planned.has_changes()
}

/// Safety: no policy trailkey sends lacks the Security Tooling root
/// administration statement (the key would become unmanageable).
fn assert_root_administration(doc: &str) {
    let sent: Value = serde_json::from_str(doc).unwrap();
    let root = statements_of(&sent)
        .into_iter()
        .find(|s| s["Sid"] == "TrailkeyRootAdministration")
        .expect("root administration in every policy sent");
    assert_eq!(root["Effect"], "Allow");
    assert_eq!(
        root["Principal"]["AWS"],
        format!("arn:aws:iam::{SECURITY_TOOLING}:root")
    );
    assert_eq!(root["Action"], "kms:*");
    assert!(root.get("Condition").is_none());
}

fn assert_step_payload(case: &Case, desired: &Desired, planned: &Plan, step: &Step) {
    let policy_after = &change(planned, Address::KmsKeyPolicy).after;
    match step {
        Step::CreateKey(new) => assert_root_administration(&new.policy),
        Step::PutKeyPolicy(doc) => assert_root_administration(doc),
        _ => {}
    }
    match step {
        Step::CreateKey(new) => {
            assert_eq!(new.description, desired.key_description());
            let mut tags = desired.tags.clone();
            tags.insert(CREATED_TAG.0.to_owned(), CREATED_TAG.1.to_owned());
            assert_eq!(new.tags, tags);
            let sent: Value = serde_json::from_str(&new.policy).unwrap();
            assert_eq!(
                sent,
                cached_ours(),
                "a new key gets exactly trailkey's policy"
            );
        }
        Step::TagKey(tags) => assert_eq!(*tags, case.key.unwrap().tags.missing()),
        Step::CreateAlias(alias) => assert_eq!(alias, ALIAS),
        Step::PutKeyPolicy(doc) => {
            let sent: Value = serde_json::from_str(doc).unwrap();
            assert_eq!(
                &sent, policy_after,
                "PutKeyPolicy sends the planned `after`"
            );
        }
        Step::UpdateTrail {
            trail,
            log_file_validation,
        } => {
            assert_eq!(trail, TRAIL_ARN);
            assert!(!log_file_validation, "not configured in the matrix");
        }
        Step::EnableLogFileValidation(_) => unreachable!("not configured in the matrix"),
        Step::CancelKeyDeletion | Step::EnableKey | Step::EnableRotation => {}
        Step::UpdateAlias(alias) => {
            assert_eq!(alias, ALIAS);
            assert_eq!(case.key.unwrap().found, Found::TagsAliasElsewhere);
        }
        Step::DeleteAlias(_) => panic!("no renamed alias in the matrix"),
        Step::DisableTrailEncryption(_) | Step::ScheduleKeyDeletion(_) => {
            panic!("only destroy turns encryption off or deletes a key")
        }
    }
}

fn assert_target(case: &Case, planned: &Plan) {
    let t = &planned.target;
    assert_eq!(t.region, "us-east-1");
    assert_eq!(t.management_account, MANAGEMENT);
    assert_eq!(t.security_tooling_account, SECURITY_TOOLING);
    assert_eq!(t.trail_arn, TRAIL_ARN);
    assert_eq!(t.alias, ALIAS);
    let key_arn = case.key.map(|_| KEY_ARN.to_owned());
    assert_eq!(t.key_arn, key_arn);
    assert_eq!(planned.key.as_ref().map(|k| k.arn.clone()), key_arn);
}

fn assert_key_views(case: &Case, desired: &Desired, observed: &Observed, c: &Change) {
    let tags = |v: &Value| -> BTreeMap<String, String> {
        serde_json::from_value(v["tags"].clone()).unwrap()
    };
    match case.key {
        None => {
            assert_eq!(c.before, Value::Null);
            assert_eq!(c.after["arn"], KNOWN_AFTER_APPLY);
            assert_eq!(c.after["state"], "Enabled");
            assert_eq!(c.after["key_spec"], "SYMMETRIC_DEFAULT");
            assert_eq!(c.after["multi_region"], false);
            let mut created = desired.tags.clone();
            created.insert(CREATED_TAG.0.to_owned(), CREATED_TAG.1.to_owned());
            assert_eq!(tags(&c.after), created);
        }
        Some(k) => {
            let current = &observed.key.as_ref().unwrap().tags;
            assert_eq!(c.before["arn"], KEY_ARN);
            assert_eq!(c.after["arn"], KEY_ARN);
            assert_eq!(c.before["state"], k.state.as_str());
            assert_eq!(c.after["state"], "Enabled");
            assert_eq!(tags(&c.before), *current);
            // Every tag there was stays; every desired tag is set.
            let mut after = current.clone();
            after.extend(desired.tags.clone());
            assert_eq!(tags(&c.after), after, "{case:?}");
        }
    }
}

fn assert_alias_views(case: &Case, c: &Change) {
    match case.key {
        None => {
            assert_eq!(c.before, Value::Null);
            assert_eq!(
                c.after,
                json!({ "name": ALIAS, "target_key_id": KNOWN_AFTER_APPLY })
            );
        }
        Some(k) => {
            let after = json!({ "name": ALIAS, "target_key_id": KEY_ID });
            let before = match k.found {
                Found::Alias => after.clone(),
                Found::TagsAliasMissing => Value::Null,
                Found::TagsAliasElsewhere => {
                    json!({ "name": ALIAS, "target_key_id": OTHER_KEY_ID })
                }
            };
            assert_eq!((&c.before, &c.after), (&before, &after));
        }
    }
}

fn assert_policy_views(case: &Case, c: &Change) {
    let ours = cached_ours();
    // `after` is trailkey's statements first, then every foreign statement in its order.
    let mut expected = statements_of(&ours);
    expected.extend(case.key.map(|k| k.policy.foreign()).unwrap_or_default());
    assert_eq!(statements_of(&c.after), expected, "{case:?}");
    assert_eq!(c.after["Version"], "2012-10-17");
    match case.key {
        None => assert_eq!(c.before, Value::Null),
        Some(k) => {
            let current: Value = serde_json::from_str(&k.policy.text(&ours)).unwrap();
            assert_eq!(c.before, current, "{case:?}");
            assert_eq!(c.reasons, k.policy.reasons(), "{case:?}");
            let d = c.statements.as_ref().expect("a statement diff");
            assert_eq!(d.kept, k.policy.kept(), "{case:?}");
        }
    }
}

fn assert_rotation_views(case: &Case, c: &Change) {
    let enabled = |v: Option<bool>| json!({ "enabled": v });
    let (before, after) = match case.key {
        None if case.rotation_config => (Value::Null, enabled(Some(true))),
        None => (enabled(None), enabled(None)),
        Some(k) if case.rotation_config => (enabled(Some(k.rotation)), enabled(Some(true))),
        Some(k) => (enabled(Some(k.rotation)), enabled(Some(k.rotation))),
    };
    assert_eq!((&c.before, &c.after), (&before, &after), "{case:?}");
}

fn assert_trail_views(case: &Case, c: &Change) {
    assert_eq!(
        c.before,
        json!({ "trail": TRAIL_ARN, "kms_key_id": case.trail.kms_key_id() })
    );
    let after_key = if case.key.is_some() {
        KEY_ARN
    } else {
        KNOWN_AFTER_APPLY
    };
    assert_eq!(
        c.after,
        json!({ "trail": TRAIL_ARN, "kms_key_id": after_key })
    );
    if c.action == Action::NoOp {
        assert!(c.reasons.is_empty());
        return;
    }
    let reason = c.reasons.join("\n");
    match (case.trail.kms_key_id(), case.key) {
        (None, _) => assert!(reason.contains("not encrypted"), "{reason}"),
        (Some(current), Some(_)) if matches!(case.trail, TrailKey::KeyId | TrailKey::Alias) => {
            assert!(
                reason.contains(current) && reason.contains("not by its key ARN"),
                "{reason}"
            )
        }
        (Some(current), _) => {
            assert!(
                reason.contains(current) && reason.contains("another key"),
                "{reason}"
            )
        }
    }
}

// ---------------------------------------------------------------------------
// The exhaustive test

/// 2 rotation settings × 5 trail keys × (no key + 3 states × 2 rotations ×
/// 7 policies × (3 tag sets found by the alias + 2 tag sets × 2 ways found by tags)).
const COMBINATIONS: usize = 2 * 5 * (1 + 3 * 2 * 7 * (3 + 2 * 2));

#[test]
fn every_combination_of_observed_state_plans_as_specified() {
    let cases = all_cases();
    assert_eq!(cases.len(), COMBINATIONS);
    assert_eq!(cases.len(), 2950);
    let (mut no_op, mut refused) = (0, 0);
    for case in &cases {
        if case.refuses_adoption() {
            let desired = case.desired();
            let e = plan(&desired, &case.observed(&desired)).expect_err("not adopted");
            let text = e.render();
            assert!(
                text.contains("grants more than trailkey writes"),
                "{case:?}: {text}"
            );
            refused += 1;
            continue;
        }
        no_op += usize::from(!assert_plan_follows_the_spec(case));
    }
    // A key found only by its tags, with a foreign grant, on a trail that
    // does not name it: 2 rotation settings × 4 trail keys × 3 states × 2
    // rotations × 2 tag sets × 2 ways found by tags.
    assert_eq!(refused, 2 * 4 * 3 * 2 * 2 * 2);
    // Only an enabled key with an up-to-date policy, every desired tag, the
    // trail on its ARN, and rotation on (or left alone by the config) is a no-op.
    assert_eq!(no_op, (1 + 2) * 3 * 2);
}

// ---------------------------------------------------------------------------
// Named cases that read as examples

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

#[test]
fn a_converged_state_plans_no_change() {
    let (desired, observed) = converged();
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    assert_eq!(planned.steps().count(), 0);
    assert_eq!(planned.summary(), Summary::default());
}

#[test]
fn from_scratch_the_steps_are_create_key_alias_rotation_then_trail() {
    let desired = config(true);
    let planned = plan(&desired, &observed_without_key(None)).unwrap();
    let ops: Vec<&str> = planned.steps().map(|(_, s)| s.operation()).collect();
    assert_eq!(
        ops,
        [
            "CreateKey",
            "CreateAlias",
            "EnableKeyRotation",
            "UpdateTrail"
        ]
    );
    assert_eq!(
        planned.summary(),
        Summary {
            add: 4,
            change: 1,
            destroy: 0
        }
    );
}

#[test]
fn a_foreign_statement_survives_a_policy_update_after_ours() {
    let desired = config(true);
    let mut current = ours(&desired);
    // A foreign statement between ours, and one of ours missing.
    let list = current["Statement"].as_array_mut().unwrap();
    list.insert(2, third_party_statement());
    list.retain(|s| s["Sid"] != "TrailkeyCloudTrailDecrypt");
    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = policy::to_document(&current);

    let planned = plan(&desired, &observed).unwrap();
    let c = change(&planned, Address::KmsKeyPolicy);
    assert_eq!(c.action, Action::Update);
    let [Step::PutKeyPolicy(doc)] = c.steps.as_slice() else {
        panic!("{:?}", c.steps)
    };
    let sent: Value = serde_json::from_str(doc).unwrap();
    let mut expected = statements_of(&ours(&desired));
    expected.push(third_party_statement());
    assert_eq!(statements_of(&sent), expected);
    assert_eq!(statements_of(&c.after), expected);
    assert!(
        c.reasons
            .contains(&"+ statement TrailkeyCloudTrailDecrypt (missing)".to_owned())
    );
    assert_eq!(c.statements.as_ref().unwrap().kept, vec!["ThirdParty"]);
}

/// A key whose `TrailkeyCloudTrailDecrypt` requires the encryption context,
/// as trailkey once wrote it: one changed statement, the two conditions it
/// drops shown as fields, and nothing else to change or warn about.
#[test]
fn a_decrypt_statement_requiring_the_encryption_context_is_one_changed_statement() {
    let desired = config(true);
    let mut older = ours(&desired);
    let context = statement_mut(&mut older, "TrailkeyLogReadersDecrypt")["Condition"].clone();
    let decrypt = statement_mut(&mut older, "TrailkeyCloudTrailDecrypt");
    decrypt["Condition"]["Null"] = context["Null"].clone();
    decrypt["Condition"]["StringLike"] = context["StringLike"].clone();
    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = policy::to_document(&older);

    let planned = plan(&desired, &observed).unwrap();
    let changes: Vec<_> = planned
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| c.address)
        .collect();
    assert_eq!(changes, [Address::KmsKeyPolicy]);
    let c = change(&planned, Address::KmsKeyPolicy);
    assert_eq!(c.action, Action::Update);
    assert_eq!(
        c.reasons,
        ["~ statement TrailkeyCloudTrailDecrypt (differs)"]
    );
    let d = c.statements.as_ref().unwrap();
    assert!(d.added.is_empty() && d.removed.is_empty(), "{d:?}");
    let [changed] = d.changed.as_slice() else {
        panic!("{d:?}")
    };
    let fields: Vec<(&str, &Value)> = changed
        .fields
        .iter()
        .map(|f| (f.path.as_str(), &f.after))
        .collect();
    assert_eq!(
        fields,
        [
            ("Condition.Null", &Value::Null),
            ("Condition.StringLike", &Value::Null)
        ]
    );
    assert!(planned.findings.is_empty(), "{:?}", planned.findings);
    let [Step::PutKeyPolicy(doc)] = c.steps.as_slice() else {
        panic!("{:?}", c.steps)
    };
    let sent: Value = serde_json::from_str(doc).unwrap();
    assert_eq!(statements_of(&sent), statements_of(&ours(&desired)));
}

#[test]
fn policy_order_and_value_shape_do_not_count_but_a_value_does() {
    let desired = config(true);
    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = PolicyCase::Reformatted.text(&ours(&desired));
    assert!(!plan(&desired, &observed).unwrap().has_changes());

    let mut stale = ours(&desired);
    statement_mut(&mut stale, "TrailkeyLogReadersDecrypt")["Principal"]["AWS"][0] =
        json!("arn:aws:iam::999999999999:root");
    observed.key.as_mut().unwrap().policy = policy::to_document(&stale);
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(
        change(&planned, Address::KmsKeyPolicy).action,
        Action::Update
    );
}

// ---------------------------------------------------------------------------
// Inputs that are errors, not plans

fn plan_error(desired: &Desired, observed: &Observed) -> Error {
    let e = plan(desired, observed).expect_err("an error, not a plan");
    assert!(matches!(e, Error::Check { .. }), "{e:?}");
    assert!(!e.hint().is_empty());
    e
}

#[test]
fn a_key_that_cannot_encrypt_a_trail_is_an_error_naming_the_problem() {
    type Spoil = fn(&mut KeyInfo);
    let cases: [(&str, Spoil); 7] = [
        ("multi-Region", |k| k.multi_region = true),
        ("RSA_2048", |k| {
            k.key_spec = crate::aws::KeySpec::from("RSA_2048")
        }),
        ("SIGN_VERIFY", |k| {
            k.key_usage = crate::aws::KeyUsage::from("SIGN_VERIFY")
        }),
        ("EXTERNAL", |k| {
            k.origin = crate::aws::Origin::from("EXTERNAL")
        }),
        ("HMAC_256", |k| {
            k.key_spec = crate::aws::KeySpec::from("HMAC_256");
            k.key_usage = crate::aws::KeyUsage::from("GENERATE_VERIFY_MAC");
        }),
        ("AWS-managed", |k| {
            k.key_manager = crate::aws::KeyManager::from("AWS")
        }),
        ("PendingImport", |k| {
            k.state = crate::aws::KeyState::from("PendingImport")
        }),
    ];
    for (problem, spoil) in cases {
        let (desired, mut observed) = converged();
        spoil(&mut observed.key.as_mut().unwrap().info);
        let message = plan_error(&desired, &observed).to_string();
        assert!(message.contains(problem), "{problem}: {message}");
        assert!(
            message.contains(ALIAS) && message.contains(KEY_ARN),
            "{message}"
        );
    }
}

#[test]
fn a_caller_outside_the_management_account_is_an_error() {
    let (desired, mut observed) = converged();
    observed.identity = CallerIdentity {
        account: "444444444444".to_owned(),
        arn: "arn:aws:iam::444444444444:user/someone".to_owned(),
    };
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("444444444444"), "{message}");
    assert!(
        message.contains(&format!("not the management account {MANAGEMENT}")),
        "{message}"
    );
}

#[test]
fn a_configured_management_account_that_differs_is_an_error() {
    let desired = crate::config::parse(
        Path::new("t.toml"),
        config_text(true, Some("444444444444")).as_bytes(),
    )
    .unwrap();
    let (_, observed) = converged();
    let e = plan_error(&desired, &observed);
    assert!(
        e.to_string()
            .contains("accounts.management is 444444444444")
    );
    assert!(e.hint().contains(MANAGEMENT), "{}", e.hint());
}

#[test]
fn an_organization_without_all_features_is_an_error() {
    let (desired, mut observed) = converged();
    observed.organization.feature_set = crate::aws::FeatureSet::from("CONSOLIDATED_BILLING");
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("CONSOLIDATED_BILLING"), "{message}");
}

#[test]
fn a_trail_in_another_region_is_an_error() {
    let (desired, mut observed) = converged();
    observed.trail.home_region = "eu-west-1".to_owned();
    let e = plan_error(&desired, &observed);
    let message = e.to_string();
    assert!(
        message.contains("eu-west-1") && message.contains("us-east-1"),
        "{message}"
    );
    assert!(e.hint().contains("region = \"eu-west-1\""), "{}", e.hint());
}

#[test]
fn credentials_of_another_partition_are_an_error() {
    let (desired, mut observed) = converged();
    observed.identity.arn = format!("arn:aws-us-gov:iam::{MANAGEMENT}:user/admin");
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("aws-us-gov"), "{message}");
}

#[test]
fn a_security_tooling_account_that_is_the_management_account_is_an_error() {
    let (desired, mut observed) = converged();
    observed.identity.account = SECURITY_TOOLING.to_owned();
    observed.identity.arn = format!("arn:aws:iam::{SECURITY_TOOLING}:user/admin");
    observed.organization.management_account = SECURITY_TOOLING.to_owned();
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("accounts.security_tooling"), "{message}");
}

/// The key's current policy: the KMS default plus a foreign statement
/// naming `readers` roles.
fn policy_with_readers(readers: usize) -> String {
    let principals: Vec<String> = (0..readers)
        .map(|i| format!("arn:aws:iam::444444444444:role/log-reader-{i:05}"))
        .collect();
    let mut big = third_party_statement();
    big["Principal"]["AWS"] = json!(principals);
    policy::to_document(&json!({
        "Version": "2012-10-17",
        "Statement": [kms_default_statement(), big]
    }))
}

#[test]
fn a_merged_policy_over_32_kb_is_an_error_and_one_just_under_is_not() {
    let desired = config(true);
    let ours = ours(&desired);
    let merged_size = |text: &str| {
        let current: Value = serde_json::from_str(text).unwrap();
        policy::to_document(&policy::merge(Some(&current), &ours)).len()
    };
    let fits = (0..)
        .take_while(|&n| merged_size(&policy_with_readers(n + 1)) <= policy::MAX_POLICY_BYTES)
        .last()
        .unwrap()
        + 1;
    let (_, mut observed) = converged();

    // The largest policy that fits is planned...
    observed.key.as_mut().unwrap().policy = policy_with_readers(fits);
    assert!(merged_size(&policy_with_readers(fits)) <= policy::MAX_POLICY_BYTES);
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(
        change(&planned, Address::KmsKeyPolicy).action,
        Action::Update
    );

    // ...one more reader is refused, although KMS accepts the current policy.
    let current = policy_with_readers(fits + 1);
    assert!(current.len() < policy::MAX_POLICY_BYTES, "KMS stores it");
    observed.key.as_mut().unwrap().policy = current;
    let e = plan_error(&desired, &observed);
    assert!(e.to_string().contains("32768"), "{e}");
    assert!(e.hint().contains("foreign statements"), "{}", e.hint());
}

/// The converged state with `n` more trails of the management account
/// using the key, and `current` as the key's policy.
fn sharing_the_key(n: usize, current: String) -> (Desired, Observed) {
    let (desired, mut observed) = converged();
    observed.other_trails = (0..n)
        .map(|i| trail_named(&format!("team-trail-{i:03}"), MANAGEMENT, Some(KEY_ARN)))
        .collect();
    observed.key.as_mut().unwrap().policy = current;
    (desired, observed)
}

#[test]
fn a_policy_over_32_kb_because_many_trails_share_the_key_says_so() {
    let small = policy_with_readers(1);
    // A hundred trails fit.
    let (desired, observed) = sharing_the_key(100, small.clone());
    plan(&desired, &observed).unwrap_or_else(|e| panic!("{}", e.render()));

    let (desired, observed) = sharing_the_key(200, small);
    let e = plan_error(&desired, &observed);
    let message = e.to_string();
    assert!(message.contains("KMS accepts at most 32768"), "{message}");
    assert!(
        message.contains("201 trails share the key; their ARNs in aws:SourceArn take "),
        "{message}"
    );
    assert!(
        message.contains("(each ARN is listed in 3 statements)"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "The other trails: arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/team-trail-000, "
        )),
        "{message}"
    );
    assert!(message.contains(" and 197 more."), "{message}");
    assert!(message.contains("2 foreign statements take "), "{message}");
    // The bytes it names are those of the policy: the ARN lists are most of it.
    let arn_bytes: usize = message
        .split("aws:SourceArn take ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!(arn_bytes > policy::MAX_POLICY_BYTES * 3 / 4, "{message}");
    assert!(
        e.hint().contains("use this key for fewer trails"),
        "{}",
        e.hint()
    );
    assert!(
        e.hint().contains("at a KMS key of their own"),
        "{}",
        e.hint()
    );
    assert!(!e.hint().contains("foreign statements"), "{}", e.hint());
}

#[test]
fn a_policy_over_32_kb_because_of_foreign_statements_blames_them_though_trails_share_the_key() {
    let desired = config(true);
    let ours = ours(&desired);
    // The first number of readers in a foreign statement that does not fit
    // next to trailkey's statements for one trail.
    let over = (1..)
        .find(|&n| {
            let current: Value = serde_json::from_str(&policy_with_readers(n)).unwrap();
            policy::to_document(&policy::merge(Some(&current), &ours)).len()
                > policy::MAX_POLICY_BYTES
        })
        .unwrap();
    let (desired, observed) = sharing_the_key(2, policy_with_readers(over + 20));
    let e = plan_error(&desired, &observed);
    let message = e.to_string();
    assert!(message.contains("2 foreign statements take "), "{message}");
    assert!(
        message.contains("of which the aws:SourceArn lists, naming 3 trails, take "),
        "{message}"
    );
    assert!(!message.contains("share the key"), "{message}");
    assert!(e.hint().contains("foreign statements"), "{}", e.hint());
    assert!(!e.hint().contains("fewer trails"), "{}", e.hint());
}

#[test]
fn a_current_policy_that_is_not_json_is_an_error() {
    let (desired, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = "{\"Version\": \"2012-10-17\", ".to_owned();
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("not valid JSON"), "{message}");
    assert!(message.contains(KEY_ARN), "{message}");
}

/// KMS stores whatever document it was given; one written compactly can hold
/// trailkey's statements and large foreign ones well under 32 KB.
#[test]
fn an_up_to_date_policy_that_kms_holds_is_never_refused_for_its_size() {
    let desired = config(true);
    let mut current = ours(&desired);
    let readers: Vec<String> = (0..600)
        .map(|i| format!("arn:aws:iam::444444444444:role/r{i:05}"))
        .collect();
    let mut big = third_party_statement();
    big["Principal"]["AWS"] = json!(readers);
    current["Statement"].as_array_mut().unwrap().push(big);
    let stored = current.to_string();
    assert!(stored.len() < policy::MAX_POLICY_BYTES, "KMS holds it");

    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = stored;
    let planned = plan(&desired, &observed).unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(change(&planned, Address::KmsKeyPolicy).action, Action::NoOp);
}

// ---------------------------------------------------------------------------
// Key discovery beyond the alias, findings

/// The converged key, tagged for `old` and named by `aliases`, found
/// through the trail after `ct_key_alias` became `cloudtrail-org-key`.
fn renamed_from(old: &str, aliases: &[&str]) -> (Desired, Observed) {
    let (desired, mut observed) = converged();
    let key = observed.key.as_mut().unwrap();
    key.tags.insert(ALIAS_TAG.to_owned(), old.to_owned());
    key.found_by = FoundBy::Trail;
    key.aliases = Some(aliases.iter().map(|a| (*a).to_owned()).collect());
    observed.alias_target = None;
    (desired, observed)
}

#[test]
fn a_renamed_alias_is_created_and_the_old_one_removed_then_the_tag_updated() {
    let (desired, observed) = renamed_from("old-name", &["alias/old-name"]);
    let planned = plan(&desired, &observed).unwrap();
    let ops: Vec<(Address, &str)> = planned.steps().map(|(a, s)| (a, s.operation())).collect();
    assert_eq!(
        ops,
        [
            (Address::KmsAlias, "CreateAlias"),
            (Address::KmsAliasPrevious, "DeleteAlias"),
            (Address::KmsAliasPrevious, "TagResource"),
        ]
    );
    let previous = change(&planned, Address::KmsAliasPrevious);
    assert_eq!(previous.action, Action::Delete);
    assert_eq!(
        previous.before,
        json!({ "name": "alias/old-name", "target_key_id": KEY_ID })
    );
    assert_eq!(previous.after, Value::Null);
    assert!(previous.reasons[0].contains("the old alias alias/old-name is removed"));
    assert_eq!(
        planned.summary(),
        Summary {
            add: 1,
            change: 0,
            destroy: 1
        }
    );
    let Step::TagKey(tags) = &previous.steps[1] else {
        panic!()
    };
    assert_eq!(tags[ALIAS_TAG], "cloudtrail-org-key");
}

#[test]
fn a_renamed_alias_already_gone_only_updates_the_tag() {
    let (desired, observed) = renamed_from("old-name", &[]);
    let planned = plan(&desired, &observed).unwrap();
    let ops: Vec<&str> = planned.steps().map(|(_, s)| s.operation()).collect();
    assert_eq!(ops, ["CreateAlias", "TagResource"]);
    assert!(
        planned
            .changes
            .iter()
            .all(|c| c.address != Address::KmsAliasPrevious)
    );
}

#[test]
fn an_old_alias_naming_the_key_is_removed_only_if_it_is_the_tagged_one() {
    // An alias the key's tag does not name (someone else's) is never removed.
    let (desired, observed) = renamed_from("old-name", &["alias/someone-elses"]);
    let planned = plan(&desired, &observed).unwrap();
    assert!(planned.steps().all(|(_, s)| s.operation() != "DeleteAlias"));
}

#[test]
fn rotation_unknown_while_pending_deletion_is_enabled_with_the_key_and_listed_once() {
    let (desired, mut observed) = converged();
    let key = observed.key.as_mut().unwrap();
    key.info.state = crate::aws::KeyState::from("PendingDeletion");
    key.rotation = None;
    let planned = plan(&desired, &observed).unwrap();
    let changed: Vec<Address> = planned
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| c.address)
        .collect();
    assert_eq!(changed, [Address::KmsKey], "one drift, listed once");
    let ops: Vec<&str> = planned.steps().map(|(_, s)| s.operation()).collect();
    assert_eq!(ops, ["CancelKeyDeletion", "EnableKey", "EnableKeyRotation"]);
    assert!(
        change(&planned, Address::KmsKey).reasons[0].starts_with("THE KEY IS PENDING DELETION")
    );
}

/// The plan's warnings, in order.
fn warnings(planned: &Plan) -> Vec<&str> {
    planned
        .findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .map(|f| f.message.as_str())
        .collect()
}

/// The plan's findings of `level`, in order.
fn at_level(planned: &Plan, level: Level) -> Vec<&str> {
    planned
        .findings
        .iter()
        .filter(|f| f.level == level)
        .map(|f| f.message.as_str())
        .collect()
}

/// `converged()` with `extra` statements added to the key policy, planned.
fn planned_with_statements(extra: Vec<Value>) -> Plan {
    let (desired, mut observed) = converged();
    let mut policy = ours(&desired);
    policy["Statement"].as_array_mut().unwrap().extend(extra);
    observed.key.as_mut().unwrap().policy = policy.to_string();
    plan(&desired, &observed).unwrap()
}

fn deny(sid: &str, principal: Value, action: Value) -> Value {
    json!({"Sid": sid, "Effect": "Deny", "Principal": principal, "Action": action, "Resource": "*"})
}

#[test]
fn a_foreign_deny_that_breaks_delivery_is_an_error_not_a_change() {
    let cloudtrail = || json!({"Service": "cloudtrail.amazonaws.com"});
    let planned = planned_with_statements(vec![
        deny("NoTrail", cloudtrail(), json!("kms:GenerateDataKey*")),
        deny("NoReaders", json!({"AWS": LOG_ARCHIVE}), json!(["kms:*"])),
        deny("NoOne", json!("*"), json!("kms:Decrypt")),
        // Warnings only: CloudTrail's Decrypt (needed with an S3 Bucket
        // Key), the management account's, and a Deny under conditions.
        deny("NoTrailDecrypt", cloudtrail(), json!("kms:Decrypt")),
        deny(
            "NoManagement",
            json!({"AWS": format!("arn:aws:iam::{MANAGEMENT}:root")}),
            json!("kms:Decrypt"),
        ),
        {
            let mut d = deny(
                "NoTrailFromVpc",
                cloudtrail(),
                json!("kms:GenerateDataKey*"),
            );
            d["Condition"] = json!({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}});
            d
        },
        // Not blocking: another principal, or an action nobody needs.
        deny(
            "Unrelated",
            json!({"AWS": "arn:aws:iam::444444444444:root"}),
            json!("kms:*"),
        ),
        deny("NoDelete", json!("*"), json!("kms:ScheduleKeyDeletion")),
    ]);
    assert!(
        !planned.has_changes(),
        "trailkey never overrides a foreign statement"
    );
    let errors = at_level(&planned, Level::Error);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "statement \"NoTrail\" explicitly denies kms:GenerateDataKey to CloudTrail:"
        ),
        "{errors:#?}"
    );
    // The readers need kms:Decrypt only.
    assert!(errors[1].starts_with("statement \"NoReaders\" explicitly denies kms:Decrypt to the Log Archive account (222222222222):"), "{errors:#?}");
    assert!(errors[2].starts_with("statement \"NoOne\" explicitly denies kms:Decrypt to CloudTrail, the Log Archive account (222222222222) and the management account (333333333333):"), "{errors:#?}");
    assert!(errors.iter().all(|e| e.contains(&format!(
        "remove or narrow that statement in the key policy of {KEY_ARN}"
    ))));
    let warnings = warnings(&planned);
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(
        warnings[0].starts_with(
            "statement \"NoTrailDecrypt\" explicitly denies kms:Decrypt to CloudTrail:"
        ),
        "{warnings:#?}"
    );
    assert!(warnings[1].starts_with("statement \"NoManagement\" explicitly denies kms:Decrypt to the management account (333333333333):"), "{warnings:#?}");
    assert!(warnings[2].starts_with("statement \"NoTrailFromVpc\" may deny kms:GenerateDataKey to CloudTrail (under conditions trailkey does not evaluate):"), "{warnings:#?}");
    let broken = crate::plan::broken(&planned.findings).expect("an error");
    assert!(
        broken.to_string().contains("\"NoTrail\"") && broken.to_string().contains("\"NoOne\""),
        "{broken}"
    );
    assert!(broken.hint().contains("remove the foreign statement"));
    let note = at_level(&planned, Level::Note);
    assert!(
        note[0].contains("\"NoTrail\", \"NoReaders\", \"NoOne\", \"NoTrailDecrypt\", \"NoManagement\", \"NoTrailFromVpc\", \"Unrelated\", \"NoDelete\""),
        "{note:?}"
    );
}

/// `NotPrincipal`, `NotAction` and `NotResource` deny everything except
/// what they list; `Resource` limits a Deny to the keys it names.
#[test]
fn foreign_denies_read_not_elements_and_resources_as_iam_does() {
    let cloudtrail = || json!({"Service": "cloudtrail.amazonaws.com"});
    let level_of = |statement: Value| -> Vec<(Level, String)> {
        planned_with_statements(vec![statement])
            .findings
            .into_iter()
            .filter(|f| f.level != Level::Note)
            .map(|f| (f.level, f.message))
            .collect()
    };
    let with = |mut d: Value, field: &str, value: Value| {
        if field.starts_with("Not") {
            d.as_object_mut()
                .unwrap()
                .remove(field.trim_start_matches("Not"));
        }
        d[field] = value;
        d
    };
    let encrypt = || deny("D", cloudtrail(), json!("kms:GenerateDataKey*"));

    // NotPrincipal exempting CloudTrail: CloudTrail may encrypt, and the
    // readers do not need kms:GenerateDataKey*.
    assert_eq!(level_of(with(encrypt(), "NotPrincipal", cloudtrail())), []);
    // NotPrincipal exempting someone else: CloudTrail is denied.
    let f = level_of(with(
        encrypt(),
        "NotPrincipal",
        json!({"AWS": format!("arn:aws:iam::{SECURITY_TOOLING}:root")}),
    ));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, Level::Error);
    assert!(
        f[0].1.contains("denies kms:GenerateDataKey to CloudTrail"),
        "{f:#?}"
    );
    // NotPrincipal naming a role of the Log Archive account but not the
    // account: the account is still denied ("you must also specify the
    // account ARN").
    let decrypt = || deny("D", json!("*"), json!("kms:Decrypt"));
    let role = format!("arn:aws:iam::{LOG_ARCHIVE}:role/Reader");
    let f = level_of(with(
        decrypt(),
        "NotPrincipal",
        json!({"AWS": [role], "Service": "cloudtrail.amazonaws.com"}),
    ));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].1.contains(
            "kms:Decrypt to the Log Archive account (222222222222) and the management account"
        ),
        "{f:#?}"
    );
    let f = level_of(with(
        decrypt(),
        "NotPrincipal",
        json!({"AWS": [LOG_ARCHIVE, MANAGEMENT], "Service": "cloudtrail.amazonaws.com"}),
    ));
    assert_eq!(f, []);

    // NotAction excluding GenerateDataKey*: CloudTrail may still encrypt;
    // its DescribeKey and Decrypt are denied (warning).
    let f = level_of(with(
        encrypt(),
        "NotAction",
        json!(["kms:GenerateDataKey*"]),
    ));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, Level::Warning);
    assert!(
        f[0].1
            .contains("explicitly denies kms:DescribeKey, kms:Decrypt to CloudTrail:"),
        "{f:#?}"
    );
    assert_eq!(level_of(with(encrypt(), "NotAction", json!(["kms:*"]))), []);

    // Resource naming another key: not this key's statement.
    let other = "arn:aws:kms:us-east-1:111111111111:key/0000aaaa-0000-4000-8000-00000000ffff";
    assert_eq!(level_of(with(encrypt(), "Resource", json!(other))), []);
    assert_eq!(
        level_of(with(
            encrypt(),
            "Resource",
            json!("arn:aws:kms:us-east-1:111111111111:alias/*")
        )),
        []
    );
    // Resource naming this key, exactly or by a pattern: it counts.
    for named in [
        json!(KEY_ARN),
        json!([other, KEY_ARN]),
        json!("arn:aws:kms:*:111111111111:key/*"),
        json!("arn:aws:kms:us-east-1:111111111111:key/1234abcd-*"),
    ] {
        let f = level_of(with(encrypt(), "Resource", named.clone()));
        assert_eq!(
            f.iter().map(|f| f.0).collect::<Vec<_>>(),
            [Level::Error],
            "{named}: {f:#?}"
        );
    }
    // NotResource: every key but those listed.
    assert_eq!(level_of(with(encrypt(), "NotResource", json!(KEY_ARN))), []);
    assert_eq!(level_of(with(encrypt(), "NotResource", json!("*"))), []);
    let f = level_of(with(encrypt(), "NotResource", json!(other)));
    assert_eq!(f.iter().map(|f| f.0).collect::<Vec<_>>(), [Level::Error]);

    // Conditions on aws:SourceArn alone are evaluated for the trail.
    let on_source = |op: &str, arn: &str| {
        let mut d = encrypt();
        d["Condition"] = json!({op: {"aws:SourceArn": arn}});
        level_of(d).into_iter().map(|f| f.0).collect::<Vec<_>>()
    };
    assert_eq!(on_source("StringEquals", TRAIL_ARN), [Level::Error]);
    assert_eq!(
        on_source("ArnLike", "arn:aws:cloudtrail:*:333333333333:trail/*"),
        [Level::Error]
    );
    assert_eq!(on_source("StringEquals", OTHER_TRAIL_ARN), []);
    assert_eq!(on_source("StringNotEquals", TRAIL_ARN), []);
    assert_eq!(on_source("StringNotLike", OTHER_TRAIL_ARN), [Level::Error]);
    assert_eq!(
        on_source("StringEqualsIfExists", TRAIL_ARN),
        [Level::Warning]
    );
}

#[test]
fn other_trailkey_keys_for_the_alias_are_reported_and_left_alone() {
    let (desired, mut observed) = converged();
    observed.other_keys.push(KeyInfo {
        key_id: OTHER_KEY_ID.to_owned(),
        arn: OTHER_KEY_ARN.to_owned(),
        ..key_info("Enabled")
    });
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    assert!(planned.steps().next().is_none());
    let f = &planned.findings[0];
    assert_eq!(f.level, Level::Warning);
    assert!(
        f.message.contains(OTHER_KEY_ARN)
            && f.message.contains(&format!("trailkey uses {KEY_ARN}"))
    );
}

#[test]
fn a_key_found_by_tags_with_no_alias_gets_the_alias_not_a_new_key() {
    let (desired, mut observed) = converged();
    observed.alias_target = None;
    observed.key.as_mut().unwrap().found_by = FoundBy::Tags;
    let planned = plan(&desired, &observed).unwrap();
    let ops: Vec<&str> = planned.steps().map(|(_, s)| s.operation()).collect();
    assert_eq!(ops, ["CreateAlias"]);
}

// ---------------------------------------------------------------------------
// Landing-zone checks and trail health

#[test]
fn a_bucket_in_another_region_is_an_error_before_any_write() {
    let (desired, mut observed) = converged();
    observed.bucket_region = Ok("eu-west-1".to_owned());
    let text = plan_error(&desired, &observed).render();
    assert!(
        text.contains("bucket org-trail-logs is in eu-west-1, but region is us-east-1"),
        "{text}"
    );
    assert!(text.contains("KmsKeyNotFoundException"), "{text}");
}

#[test]
fn an_unreadable_bucket_region_is_a_note_not_an_error() {
    let (desired, mut observed) = converged();
    observed.bucket_region = Err("AccessDenied: Access Denied".to_owned());
    let planned = plan(&desired, &observed).unwrap();
    assert!(planned.findings.iter().any(|f| {
        f.level == Level::Note
            && f.message
                .contains("could not be read (AccessDenied: Access Denied)")
    }));
}

#[test]
fn a_trail_that_is_not_an_organization_trail_needs_the_opt_in() {
    let (desired, mut observed) = converged();
    observed.trail.is_organization_trail = false;
    let text = plan_error(&desired, &observed).render();
    assert!(text.contains("is not an organization trail"), "{text}");
    assert!(text.contains("organization_trail = false"), "{text}");
    let text = config_text(true, None).replace("[trail]", "[trail]\norganization_trail = false");
    let opted_in = crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap();
    assert!(plan(&opted_in, &observed).is_ok());
}

#[test]
fn a_control_tower_trail_is_refused_by_name_or_tag_unless_allowed() {
    let (desired, observed) = converged();
    let mut by_name = observed.clone();
    by_name.trail.name = CONTROL_TOWER_TRAIL.to_owned();
    let mut by_tag = observed.clone();
    by_tag.trail_tags = OnDemand::Read(BTreeMap::from([(
        "aws-control-tower".to_owned(),
        "managed-by-control-tower".to_owned(),
    )]));
    for o in [&by_name, &by_tag] {
        let text = plan_error(&desired, o).render();
        assert!(text.contains("is managed by AWS Control Tower"), "{text}");
        assert!(text.contains("Control Tower reverts changes"), "{text}");
        assert!(text.contains("Landing zone settings"), "{text}");
        assert!(text.contains("allow_control_tower = true"), "{text}");
    }
    let text = config_text(true, None).replace("[trail]", "[trail]\nallow_control_tower = true");
    let allowed = crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap();
    assert!(plan(&allowed, &by_name).is_ok());
    assert!(plan(&allowed, &by_tag).is_ok());
}

#[test]
fn delivery_errors_and_a_stopped_trail_are_warnings_with_their_meaning() {
    let (desired, mut observed) = converged();
    observed.trail_status = crate::aws::TrailStatus {
        is_logging: false,
        latest_delivery_error: Some("InsufficientEncryptionPolicyException: KMS".to_owned()),
        latest_digest_delivery_error: Some("AccessDenied".to_owned()),
        ..Default::default()
    };
    let planned = plan(&desired, &observed).unwrap();
    let warnings = warnings(&planned);
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].contains("is not logging") && warnings[0].contains("start-logging"));
    assert!(
        warnings[1].contains("latest log file delivery failed")
            && warnings[1].contains("could not use the KMS key")
    );
    assert!(
        warnings[2].contains("latest digest file delivery failed")
            && warnings[2].contains("bucket policy")
    );
}

// ---------------------------------------------------------------------------
// Destroy

/// The key's users as `observe::key_users` reads them: the observed key's
/// tags with the mark that trailkey created it, no other alias, `trails`.
fn created_key_users(observed: &Observed, trails: &[Trail]) -> KeyUsers {
    let mut tags = observed.key.as_ref().expect("a key").tags.clone();
    tags.insert(CREATED_TAG.0.to_owned(), CREATED_TAG.1.to_owned());
    KeyUsers {
        tags,
        aliases: vec![ALIAS.to_owned()],
        trails: trails.to_vec(),
        grants: Vec::new(),
        event_data_stores: Vec::new(),
    }
}

#[test]
fn delete_key_is_refused_while_a_grant_uses_the_key() {
    let (desired, observed) = converged();
    let mut users = created_key_users(&observed, &[]);
    assert!(check_deletion(ALIAS, &observed.key.as_ref().unwrap().info, &users, None).is_ok());
    users.grants.push(crate::aws::Grant {
        id: "0123abcd".to_owned(),
        grantee:
            "arn:aws:iam::111111111111:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"
                .to_owned(),
        operations: vec!["Decrypt".to_owned(), "GenerateDataKey".to_owned()],
    });
    let text = check_deletion(ALIAS, &observed.key.as_ref().unwrap().info, &users, None)
        .unwrap_err()
        .render();
    assert!(text.contains("is used through 1 grant(s): grant 0123abcd to arn:aws:iam::111111111111:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS (Decrypt, GenerateDataKey)"), "{text}");
    assert!(text.contains("aws kms list-grants"), "{text}");
    let _ = desired;
}

#[test]
fn delete_key_names_every_use_at_once_with_outside_text_escaped() {
    let (_, observed) = converged();
    let key = &observed.key.as_ref().unwrap().info;
    let mut users = created_key_users(&observed, &[]);
    users.grants.push(crate::aws::Grant {
        id: "g1".to_owned(),
        grantee: "arn:aws:iam::111111111111:role/R".to_owned(),
        operations: vec!["Decrypt".to_owned()],
    });
    users.event_data_stores = vec![
        crate::aws::EventDataStore {
            arn: "arn:aws:cloudtrail:us-east-1:333333333333:eventdatastore/e1".to_owned(),
            name: "lake\u{1b}[2J\nPlan: 0 to add, 0 to change, 0 to destroy.".to_owned(),
            status: "ENABLED".to_owned(),
            // By the key ID: the same key.
            kms_key_id: Some(key.key_id.clone()),
        },
        crate::aws::EventDataStore {
            arn: "arn:aws:cloudtrail:us-east-1:333333333333:eventdatastore/e2".to_owned(),
            name: "not-ours".to_owned(),
            status: "ENABLED".to_owned(),
            kms_key_id: None,
        },
    ];
    let mut trail = observed.trail.clone();
    // A title-setting escape (OSC ... BEL) in the name.
    trail.arn = "arn:aws:cloudtrail:ap-south-1:333333333333:trail/t\u{1b}]0;pwned\u{7}".to_owned();
    trail.home_region = "ap-south-1".to_owned();
    trail.kms_key_id = Some(key.arn.clone());
    users.trails = vec![trail];
    let text = check_deletion(ALIAS, key, &users, None)
        .unwrap_err()
        .render();
    assert!(
        text.contains(&format!(
            "--delete-key refused: the key {} is used through 1 grant(s): grant g1 to arn:aws:iam::111111111111:role/R (Decrypt); and it encrypts 1 CloudTrail Lake event data store(s): lake\\u{{1b}}[2J\\nPlan: 0 to add, 0 to change, 0 to destroy. (arn:aws:cloudtrail:us-east-1:333333333333:eventdatastore/e1, status ENABLED); and it still encrypts trail(s) arn:aws:cloudtrail:ap-south-1:333333333333:trail/t\\u{{1b}}]0;pwned\\u{{7}} (home Region ap-south-1)",
            key.arn
        )),
        "{text}"
    );
    assert!(!text.contains("not-ours"), "{text}");
    assert!(!text.contains(['\u{1b}', '\u{7}']), "{text}");
    assert_eq!(text.lines().count(), 2, "an error line and a hint: {text}");
    assert!(
        text.contains("retire or revoke the grants")
            && text.contains("delete the event data store first")
            && text.contains(
                "move those trails to another key first; or run destroy without --delete-key"
            ),
        "{text}"
    );
}

fn destroy(
    desired: &Desired,
    observed: &Observed,
    delete_key: Option<i32>,
    trails: &[Trail],
) -> Result<Plan, Error> {
    let users = delete_key.map(|_| created_key_users(observed, trails));
    plan_destroy(desired, observed, delete_key.zip(users.as_ref()))
}

#[test]
fn destroy_sets_the_trail_back_to_sse_s3_and_keeps_the_key() {
    let (desired, observed) = converged();
    let planned = destroy(&desired, &observed, None, &[]).unwrap();
    let ops: Vec<&str> = planned.steps().map(|(_, s)| s.operation()).collect();
    assert_eq!(ops, ["UpdateTrail"]);
    assert!(
        matches!(planned.steps().next().unwrap().1, Step::DisableTrailEncryption(t) if t == TRAIL_ARN)
    );
    let key = change(&planned, Address::KmsKey);
    assert_eq!(key.action, Action::NoOp);
    assert!(key.reasons[0].contains("the logs already written need the key"));
    assert_eq!(
        planned.summary(),
        Summary {
            add: 0,
            change: 1,
            destroy: 0
        }
    );
}

#[test]
fn destroy_with_delete_key_removes_the_alias_then_schedules_deletion() {
    let (desired, observed) = converged();
    let planned = destroy(
        &desired,
        &observed,
        Some(7),
        std::slice::from_ref(&observed.trail),
    )
    .unwrap();
    let ops: Vec<(Address, &str)> = planned.steps().map(|(a, s)| (a, s.operation())).collect();
    assert_eq!(
        ops,
        [
            (Address::TrailEncryption, "UpdateTrail"),
            (Address::KmsAlias, "DeleteAlias"),
            (Address::KmsKey, "ScheduleKeyDeletion"),
        ]
    );
    assert!(
        planned
            .steps()
            .any(|(_, s)| *s == Step::ScheduleKeyDeletion(7))
    );
    assert!(change(&planned, Address::KmsKey).reasons[0].contains("unreadable"));
    assert_eq!(
        planned.summary(),
        Summary {
            add: 0,
            change: 1,
            destroy: 2
        }
    );
}

#[test]
fn destroy_never_deletes_a_key_another_trail_uses() {
    let (desired, observed) = converged();
    let mut other = observed.trail.clone();
    other.arn = OTHER_TRAIL_ARN.to_owned();
    for id in [KEY_ARN, KEY_ID, ALIAS] {
        other.kms_key_id = Some(id.to_owned());
        let text = destroy(
            &desired,
            &observed,
            Some(30),
            &[observed.trail.clone(), other.clone()],
        )
        .unwrap_err()
        .render();
        assert!(text.contains("--delete-key refused"), "{text}");
        assert!(text.contains(OTHER_TRAIL_ARN), "{text}");
    }
}

#[test]
fn destroy_leaves_a_trail_on_someone_elses_key_alone() {
    let (desired, mut observed) = converged();
    observed.trail.kms_key_id = Some(OTHER_KEY_ARN.to_owned());
    let planned = destroy(&desired, &observed, None, &[]).unwrap();
    assert!(!planned.has_changes());
}

#[test]
fn destroy_never_deletes_a_key_trailkey_did_not_create() {
    let (desired, observed) = converged();
    let created = created_key_users(&observed, &[]);
    // Adopted: tagged ManagedBy by trailkey's repair, never marked as created.
    let mut adopted = created.clone();
    adopted.tags.remove(CREATED_TAG.0);
    assert_eq!(
        adopted.tags.get("ManagedBy").map(String::as_str),
        Some("trailkey")
    );
    // Made by hand, never seen by trailkey.
    let mut foreign = adopted.clone();
    foreign.tags.remove("ManagedBy");
    // The mark with another value is no mark.
    let mut forged = created.clone();
    forged
        .tags
        .insert(CREATED_TAG.0.to_owned(), "yes".to_owned());
    for (users, says) in [
        (&adopted, "trailkey manages it but did not create it"),
        (&foreign, "trailkey did not create it"),
        (&forged, "trailkey manages it but did not create it"),
    ] {
        let text = plan_destroy(&desired, &observed, Some((30, users)))
            .unwrap_err()
            .render();
        assert!(text.contains("--delete-key refused"), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(text.contains("run destroy without --delete-key"), "{text}");
    }
    assert!(plan_destroy(&desired, &observed, Some((30, &created))).is_ok());
    // Without --delete-key the backout itself still works.
    assert!(destroy(&desired, &observed, None, &[]).is_ok());
}

#[test]
fn only_trailkeys_create_key_marks_a_key_as_created() {
    let desired = cached_config(true);
    let from_scratch = plan(&desired, &observed_without_key(None)).unwrap();
    let Some((_, Step::CreateKey(new))) = from_scratch.steps().next() else {
        panic!("a first plan creates the key");
    };
    assert_eq!(
        new.tags.get(CREATED_TAG.0).map(String::as_str),
        Some(CREATED_TAG.1)
    );
    assert!(!desired.tags.contains_key(CREATED_TAG.0));
    // Every repair of an existing key, adopted or not: no step sets the mark.
    for case in all_cases()
        .iter()
        .filter(|c| c.key.is_some() && !c.refuses_adoption())
    {
        let desired = case.desired();
        let planned = plan(&desired, &case.observed(&desired)).unwrap();
        for (_, step) in planned.steps() {
            if let Step::TagKey(tags) = step {
                assert!(!tags.contains_key(CREATED_TAG.0), "{case:?}: {tags:?}");
            }
            assert!(!matches!(step, Step::CreateKey(_)), "{case:?}");
        }
    }
}

#[test]
fn destroy_never_deletes_a_key_a_trail_names_by_another_alias_or_from_another_region() {
    let (desired, observed) = converged();
    let mut users = created_key_users(&observed, std::slice::from_ref(&observed.trail));
    users.aliases.push("alias/team-x".to_owned());
    // A multi-Region trail homed in another Region, seen here as a shadow
    // copy, naming the key through the other alias's ARN.
    let shadow = Trail {
        name: "eu-trail".to_owned(),
        arn: "arn:aws:cloudtrail:eu-west-1:333333333333:trail/eu-trail".to_owned(),
        home_region: "eu-west-1".to_owned(),
        kms_key_id: Some("arn:aws:kms:us-east-1:111111111111:alias/team-x".to_owned()),
        ..observed.trail.clone()
    };
    users.trails.push(shadow.clone());
    let text = plan_destroy(&desired, &observed, Some((7, &users)))
        .unwrap_err()
        .render();
    assert!(text.contains(&shadow.arn), "{text}");
    // The check made right before ScheduleKeyDeletion exempts no trail: the
    // configured one must have left the key by then.
    users.trails.pop();
    let k = &observed.key.as_ref().unwrap().info;
    assert!(check_deletion(ALIAS, k, &users, Some(TRAIL_ARN)).is_ok());
    let text = check_deletion(ALIAS, k, &users, None).unwrap_err().render();
    assert!(text.contains(TRAIL_ARN), "{text}");
    // The configured trail names the key through the other alias: destroy
    // does not move it off, so it is not exempt, and the plan refuses.
    let mut observed = observed.clone();
    observed.trail.kms_key_id = Some("alias/team-x".to_owned());
    users.trails = vec![observed.trail.clone()];
    let text = plan_destroy(&desired, &observed, Some((7, &users)))
        .unwrap_err()
        .render();
    assert!(text.contains(TRAIL_ARN), "{text}");
}

// ---------------------------------------------------------------------------
// Other trails on the key

fn trail_named(name: &str, account: &str, kms_key_id: Option<&str>) -> Trail {
    Trail {
        name: name.to_owned(),
        arn: format!("arn:aws:cloudtrail:us-east-1:{account}:trail/{name}"),
        kms_key_id: kms_key_id.map(str::to_owned),
        ..observed_without_key(None).trail
    }
}

fn source_arns(policy: &Value, sid: &str) -> Value {
    policy::statements(policy)
        .into_iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no {sid}"))["Condition"]["StringEquals"]["aws:SourceArn"]
        .clone()
}

#[test]
fn every_trail_that_uses_the_key_keeps_cloudtrails_permission() {
    let (desired, mut observed) = converged();
    let old = trail_named("old-trail", MANAGEMENT, Some(KEY_ARN));
    observed.other_trails = vec![
        old.clone(),
        // By the alias's ARN: the same key.
        trail_named(
            "alias-trail",
            MANAGEMENT,
            Some("arn:aws:kms:us-east-1:111111111111:alias/cloudtrail-org-key"),
        ),
        // A bare alias name or key ID on a management-account trail names
        // a key of that account: not granted.
        trail_named("bare-alias-trail", MANAGEMENT, Some(ALIAS)),
        trail_named("bare-id-trail", MANAGEMENT, Some(KEY_ID)),
        // The same alias name in another account: not ours.
        trail_named(
            "their-alias-trail",
            MANAGEMENT,
            Some("arn:aws:kms:us-east-1:555555555555:alias/cloudtrail-org-key"),
        ),
        // Another key, no key, another account: not ours to allow.
        trail_named("other-key-trail", MANAGEMENT, Some(OTHER_KEY_ARN)),
        trail_named("plain-trail", MANAGEMENT, None),
        trail_named("foreign-trail", "444444444444", Some(KEY_ARN)),
    ];
    let planned = plan(&desired, &observed).unwrap();
    let policy_change = change(&planned, Address::KmsKeyPolicy);
    assert_eq!(policy_change.action, Action::Update, "{policy_change:#?}");
    let alias_trail = "arn:aws:cloudtrail:us-east-1:333333333333:trail/alias-trail";
    for sid in [
        "TrailkeyCloudTrailEncrypt",
        "TrailkeyCloudTrailDescribeKey",
        "TrailkeyCloudTrailDecrypt",
    ] {
        assert_eq!(
            source_arns(&policy_change.after, sid),
            json!([TRAIL_ARN, old.arn, alias_trail]),
            "{sid}"
        );
    }
    let note = planned
        .findings
        .iter()
        .find(|f| f.message.contains("also use the key"))
        .expect("the plan names them and says why");
    assert!(note.message.contains(&old.arn) && note.message.contains(alias_trail));
    for not_granted in [
        "foreign-trail",
        "bare-alias-trail",
        "bare-id-trail",
        "their-alias-trail",
    ] {
        assert!(!note.message.contains(not_granted), "{}", note.message);
    }
    // The trail is not changed for them, nor is the key.
    assert!(!planned.changes(Address::TrailEncryption));

    // Applied: the policy holds them, and planning again changes nothing.
    let mut converged = observed.clone();
    converged.key.as_mut().unwrap().policy = policy::to_document(&policy_change.after);
    assert!(!plan(&desired, &converged).unwrap().has_changes());

    // Once the old trails use another key, the next plan drops them.
    converged.other_trails.retain(|t| t.name == "plain-trail");
    let later = plan(&desired, &converged).unwrap();
    let c = change(&later, Address::KmsKeyPolicy);
    assert_eq!(c.action, Action::Update);
    assert_eq!(
        source_arns(&c.after, "TrailkeyCloudTrailEncrypt"),
        json!(TRAIL_ARN)
    );
}

// ---------------------------------------------------------------------------
// Declared readers, log-file validation, key protection

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

fn validation_off(mut observed: Observed) -> Observed {
    observed.trail.log_file_validation = false;
    observed
}

fn ops(p: &Plan) -> Vec<&'static str> {
    p.steps().map(|(_, s)| s.operation()).collect()
}

#[test]
fn log_file_validation_goes_in_the_same_update_trail_as_the_key() {
    let desired = config_with("log_file_validation = true", "", "");
    let planned = plan(&desired, &validation_off(observed_without_key(None))).unwrap();
    assert_eq!(
        ops(&planned),
        [
            "CreateKey",
            "CreateAlias",
            "EnableKeyRotation",
            "UpdateTrail"
        ]
    );
    let trail_step = planned.steps().last().unwrap().1.clone();
    assert_eq!(
        trail_step,
        Step::UpdateTrail {
            trail: TRAIL_ARN.to_owned(),
            log_file_validation: true
        }
    );
    let c = change(&planned, Address::TrailLogFileValidation);
    assert_eq!(c.action, Action::Update);
    assert!(c.steps.is_empty(), "no call of its own");
    assert_eq!(c.before["log_file_validation"], false);
    assert_eq!(c.after["log_file_validation"], true);
    assert!(
        c.reasons
            .iter()
            .any(|r| r.contains("same UpdateTrail call")),
        "{c:?}"
    );
    assert_eq!(planned.summary().change, 2);
}

#[test]
fn log_file_validation_alone_is_one_update_trail_without_the_key() {
    let (_, observed) = converged();
    let desired = config_with("log_file_validation = true", "", "");
    let planned = plan(&desired, &validation_off(observed.clone())).unwrap();
    assert_eq!(ops(&planned), ["UpdateTrail"]);
    assert!(planned.changes_trail());
    assert_eq!(
        planned.steps().next().unwrap().1,
        &Step::EnableLogFileValidation(TRAIL_ARN.to_owned())
    );
    // Already on: a no-op, and no finding.
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes(), "{planned:?}");
    assert_eq!(
        change(&planned, Address::TrailLogFileValidation).action,
        Action::NoOp
    );
}

#[test]
fn unset_validation_that_is_off_is_a_warning_false_is_silent_and_nothing_changes() {
    let (_, observed) = converged();
    let off = validation_off(observed);
    let warned = |desired: &Desired| {
        let planned = plan(desired, &off).unwrap();
        assert!(!planned.has_changes(), "{planned:?}");
        assert!(
            planned
                .changes
                .iter()
                .all(|c| c.address != Address::TrailLogFileValidation),
            "not managed"
        );
        planned
            .findings
            .iter()
            .filter(|f| f.message.starts_with("log-file validation is off"))
            .map(|f| f.level)
            .collect::<Vec<_>>()
    };
    assert_eq!(warned(&config(true)), [Level::Warning]);
    let kept_off = config_with("log_file_validation = false", "", "");
    assert_eq!(warned(&kept_off), Vec::<Level>::new());
}

#[test]
fn a_trail_that_is_not_multi_region_is_a_warning_and_nothing_changes() {
    let (desired, mut observed) = converged();
    observed.trail.is_multi_region_trail = false;
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    let f: Vec<&Finding> = planned
        .findings
        .iter()
        .filter(|f| f.message.contains("is not multi-Region"))
        .collect();
    assert_eq!(f.len(), 1, "{:?}", planned.findings);
    assert_eq!(f[0].level, Level::Warning);
    assert!(f[0].message.contains("CIS AWS Foundations 3.1"));
}

const READERS: &str = "[readers]\naccounts = [\"444455556666\"]\nprincipals = [\"arn:aws:iam::777788889999:role/SIEM\"]\n";

fn statement<'p>(policy: &'p Value, sid: &str) -> Option<&'p Value> {
    policy::statements(policy)
        .into_iter()
        .find(|s| policy::sid(s) == Some(sid))
}

#[test]
fn declared_readers_get_their_own_statement_with_the_log_readers_condition() {
    let desired = config_with("", "", READERS);
    let ours = ours(&desired);
    let readers = statement(&ours, policy::READERS_SID).expect("the readers' statement");
    let log_readers = statement(&ours, "TrailkeyLogReadersDecrypt").unwrap();
    assert_eq!(
        readers["Principal"],
        json!({"AWS": ["arn:aws:iam::444455556666:root", "arn:aws:iam::777788889999:role/SIEM"]})
    );
    assert_eq!(readers["Action"], "kms:Decrypt");
    assert_eq!(readers["Condition"], log_readers["Condition"]);
    assert_eq!(readers["Effect"], "Allow");
    // Without readers, no such statement.
    assert!(statement(&cached_ours(), policy::READERS_SID).is_none());
}

#[test]
fn a_foreign_deny_on_a_declared_reader_is_a_warning_not_a_change() {
    let (_, mut observed) = converged();
    let desired = config_with("", "", READERS);
    let deny = |sid: &str, principal: &str, action: &str| json!({"Sid": sid, "Effect": "Deny", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"});
    let mut policy = ours(&desired);
    let list = policy["Statement"].as_array_mut().unwrap();
    list.push(deny(
        "NoSiem",
        "arn:aws:iam::777788889999:role/SIEM",
        "kms:Decrypt",
    ));
    // An account's root, here as a bare ID, stands for all its principals.
    list.push(deny("NoSiemAccount", "777788889999", "kms:*"));
    list.push(deny(
        "NoReaderAccount",
        "arn:aws:iam::444455556666:root",
        "kms:Decrypt",
    ));
    // Not blocking: another role of the reader's account.
    list.push(deny(
        "NoOther",
        "arn:aws:iam::777788889999:role/Other",
        "kms:Decrypt",
    ));
    observed.key.as_mut().unwrap().policy = policy.to_string();

    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes(), "{:?}", ops(&planned));
    let warnings = warnings(&planned);
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].starts_with("statement \"NoSiem\" explicitly denies kms:Decrypt to the declared reader (arn:aws:iam::777788889999:role/SIEM)"), "{warnings:#?}");
    assert!(warnings[1].contains("\"NoSiemAccount\" explicitly denies kms:Decrypt to the declared reader (arn:aws:iam::777788889999:role/SIEM)"), "{warnings:#?}");
    assert!(warnings[2].contains("\"NoReaderAccount\" explicitly denies kms:Decrypt to the declared reader account (444455556666)"), "{warnings:#?}");
}

/// A statement someone else named with trailkey's Sid prefix is replaced
/// like one of trailkey's: the plan removes it, and says why, loudly.
#[test]
fn a_foreign_statement_with_trailkeys_sid_prefix_is_removed_with_a_warning() {
    let (desired, mut observed) = converged();
    let mut policy = ours(&desired);
    policy["Statement"].as_array_mut().unwrap().push(json!({
        "Sid": "TrailkeySiemRead", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::777788889999:root"},
        "Action": "kms:Decrypt", "Resource": "*"
    }));
    observed.key.as_mut().unwrap().policy = policy.to_string();
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(ops(&planned), ["PutKeyPolicy"]);
    let diff = change(&planned, Address::KmsKeyPolicy)
        .statements
        .clone()
        .unwrap();
    assert_eq!(diff.removed, ["TrailkeySiemRead"]);
    let warning = planned
        .findings
        .iter()
        .find(|f| f.level == Level::Warning && f.message.contains("TrailkeySiemRead"))
        .expect("a warning");
    assert!(
        warning.message.contains("apply removes it"),
        "{}",
        warning.message
    );
    // trailkey's own optional statements, left over from an earlier config,
    // are removed without that warning.
    let policy = ours(&config_with("", "", READERS));
    observed.key.as_mut().unwrap().policy = policy.to_string();
    let planned = plan(&desired, &observed).unwrap();
    assert!(
        planned
            .findings
            .iter()
            .all(|f| !f.message.contains("reserves")),
        "{:?}",
        planned.findings
    );
}

#[test]
fn readers_added_changed_and_removed_keep_foreign_statements() {
    let (_, mut observed) = converged();
    let with_readers = config_with("", "", READERS);
    let without = config(true);
    let key = observed.key.as_mut().unwrap();
    let mut current: Value = serde_json::from_str(&key.policy).unwrap();
    current["Statement"]
        .as_array_mut()
        .unwrap()
        .push(third_party_statement());
    key.policy = current.to_string();

    // Added: one PutKeyPolicy, the new statement shown, the foreign one kept.
    let added = plan(&with_readers, &observed).unwrap();
    assert_eq!(ops(&added), ["PutKeyPolicy"]);
    let diff = change(&added, Address::KmsKeyPolicy)
        .statements
        .clone()
        .unwrap();
    assert_eq!(diff.added, [policy::READERS_SID]);
    let Step::PutKeyPolicy(doc) = added.steps().next().unwrap().1 else {
        unreachable!()
    };
    let sent: Value = serde_json::from_str(doc).unwrap();
    assert!(statement(&sent, "ThirdParty").is_some());

    // Removed from the config: only that statement goes.
    observed.key.as_mut().unwrap().policy = doc.clone();
    let removed = plan(&without, &observed).unwrap();
    let diff = change(&removed, Address::KmsKeyPolicy)
        .statements
        .clone()
        .unwrap();
    assert_eq!(diff.removed, [policy::READERS_SID]);
    let Step::PutKeyPolicy(doc) = removed.steps().next().unwrap().1 else {
        unreachable!()
    };
    let sent: Value = serde_json::from_str(doc).unwrap();
    assert!(statement(&sent, policy::READERS_SID).is_none());
    assert!(statement(&sent, "ThirdParty").is_some());
}

#[test]
fn readers_may_not_repeat_the_management_account_read_from_aws() {
    let desired = config_with(
        "",
        "",
        &format!("[readers]\nprincipals = [\"arn:aws:iam::{MANAGEMENT}:role/Audit\"]\n"),
    );
    let e = plan(&desired, &observed_without_key(None)).expect_err("refused");
    let text = e.render();
    assert!(text.contains("names the management account"), "{text}");
    assert!(matches!(e, Error::Config { .. }), "{text}");
}

#[test]
fn protect_denies_the_three_calls_to_all_but_trailkeys_role_and_the_admins() {
    let desired = config_with(
        "",
        &format!("protect = true\nadmins = [\"arn:aws:iam::{SECURITY_TOOLING}:role/BreakGlass\"]"),
        "",
    );
    let ours = ours(&desired);
    let protect = statement(&ours, policy::PROTECT_SID).expect("the protect statement");
    assert_eq!(protect["Effect"], "Deny");
    assert_eq!(protect["Principal"], json!({"AWS": "*"}));
    assert_eq!(
        protect["Action"],
        json!([
            "kms:DisableKey",
            "kms:ScheduleKeyDeletion",
            "kms:DisableKeyRotation"
        ])
    );
    let exempt: Vec<String> =
        serde_json::from_value(protect["Condition"]["ArnNotLike"]["aws:PrincipalArn"].clone())
            .unwrap();
    let role = format!("arn:aws:iam::{SECURITY_TOOLING}:role/AWSControlTowerExecution");
    for free in [
        role.clone(),
        format!("arn:aws:iam::{SECURITY_TOOLING}:role/some/path/AWSControlTowerExecution"),
        format!("arn:aws:iam::{SECURITY_TOOLING}:role/BreakGlass"),
    ] {
        assert!(policy::protect_exempts(&exempt, &free), "{free}");
    }
    for denied in [
        format!("arn:aws:iam::{SECURITY_TOOLING}:role/Developer"),
        format!("arn:aws:iam::{SECURITY_TOOLING}:role/xAWSControlTowerExecution"),
        format!("arn:aws:iam::{SECURITY_TOOLING}:root"),
        "arn:aws:iam::999999999999:role/AWSControlTowerExecution".to_owned(),
    ] {
        assert!(!policy::protect_exempts(&exempt, &denied), "{denied}");
    }
    // It never denies changing the policy: nobody is locked out.
    let actions = protect["Action"].to_string().to_ascii_lowercase();
    assert!(
        !actions.contains("putkeypolicy") && !actions.contains('*'),
        "{actions}"
    );

    // Turned off (or never set): the statement goes, foreign ones stay.
    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = policy::to_document(&ours);
    let off = plan(&config(true), &observed).unwrap();
    let diff = change(&off, Address::KmsKeyPolicy)
        .statements
        .clone()
        .unwrap();
    assert_eq!(diff.removed, [policy::PROTECT_SID]);
}

// ---------------------------------------------------------------------------
// Who else the key policy lets in

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

fn exposure(desired: &Desired, observed: &Observed) -> Vec<String> {
    let planned = plan(desired, observed).unwrap();
    warnings(&planned)
        .into_iter()
        .filter(|w| w.contains("decrypt with the key or manage it"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_statement_that_opens_the_key_to_anyone_is_a_warning() {
    for principal in [json!("*"), json!({"AWS": "*"})] {
        let (d, o) = converged_with(grant("Public", principal.clone(), "kms:Decrypt", None));
        let w = exposure(&d, &o);
        assert_eq!(w.len(), 1, "{principal}: {w:?}");
        assert!(w[0].contains("\"Public\" lets anyone"), "{w:?}");
        // Narrowed to the organization, or to a known account: not anyone.
        let org = json!({"StringEquals": {"aws:PrincipalOrgID": o.organization.id}});
        let (d, o) = converged_with(grant(
            "OrgOnly",
            principal.clone(),
            "kms:Decrypt",
            Some(org),
        ));
        assert!(exposure(&d, &o).is_empty());
        let caller = json!({"StringEquals": {"kms:CallerAccount": "222222222222"}});
        let (d, o) = converged_with(grant("LogArchive", principal, "kms:*", Some(caller)));
        assert!(exposure(&d, &o).is_empty());
    }
    // NotPrincipal in an Allow lets in everyone else.
    let mut s = grant("AllBut", json!({"AWS": "*"}), "kms:Decrypt", None);
    s.as_object_mut().unwrap().remove("Principal");
    s["NotPrincipal"] = json!({"AWS": "arn:aws:iam::999999999999:root"});
    let (d, o) = converged_with(s);
    assert_eq!(exposure(&d, &o).len(), 1);
}

#[test]
fn an_account_outside_the_organization_is_a_warning_once_the_accounts_are_read() {
    let outside = json!({"AWS": "arn:aws:iam::666666666666:root"});
    let (d, mut o) = converged_with(grant("Backdoor", outside, "kms:*", None));
    assert!(
        crate::exposure::needs_accounts(&d, &o),
        "an account trailkey does not know"
    );
    o.organization_accounts =
        OnDemand::Read(vec!["333333333333".to_owned(), "444455556666".to_owned()]);
    assert!(!crate::exposure::needs_accounts(&d, &o));
    let w = exposure(&d, &o);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("\"Backdoor\" lets arn:aws:iam::666666666666:root, of account 666666666666, outside the organization"), "{w:?}");
    // An account of the organization, without [readers]: fine.
    let inside = json!({"AWS": "arn:aws:iam::444455556666:role/SIEM"});
    let (d, mut o) = converged_with(grant("Siem", inside, "kms:Decrypt", None));
    o.organization_accounts = OnDemand::Read(vec!["444455556666".to_owned()]);
    assert!(exposure(&d, &o).is_empty());
    // What only describes or encrypts is not decrypting or managing.
    let (d, o) = converged_with(grant("Describe", json!("*"), "kms:DescribeKey", None));
    assert!(exposure(&d, &o).is_empty());
    assert!(!crate::exposure::needs_accounts(&d, &o));
    // A NotAction that leaves kms:Decrypt in.
    let mut s = grant(
        "Most",
        json!({"AWS": "arn:aws:iam::666666666666:root"}),
        "x",
        None,
    );
    s.as_object_mut().unwrap().remove("Action");
    s["NotAction"] = json!(["kms:PutKeyPolicy"]);
    let (d, mut o) = converged_with(s);
    o.organization_accounts = OnDemand::Read(Vec::new());
    assert_eq!(exposure(&d, &o).len(), 1);
}

#[test]
fn with_readers_declared_an_undeclared_principal_is_a_warning() {
    let text = "region = \"us-east-1\"\n[accounts]\nsecurity_tooling = \"111111111111\"\nlog_archive = \"222222222222\"\n[trail]\nname = \"org-trail\"\n[readers]\nprincipals = [\"arn:aws:iam::444455556666:role/SIEM\"]\n";
    let desired = crate::config::parse(std::path::Path::new("t.toml"), text.as_bytes()).unwrap();
    let (_, mut observed) = converged_with(grant(
        "Other",
        json!({"AWS": "arn:aws:iam::444455556666:role/Analyst"}),
        "kms:Decrypt",
        None,
    ));
    observed.organization_accounts = OnDemand::Read(vec!["444455556666".to_owned()]);
    let w: Vec<String> = plan(&desired, &observed)
        .unwrap()
        .findings
        .iter()
        .filter(|f| f.message.contains("decrypt with the key or manage it"))
        .map(|f| f.message.clone())
        .collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("neither one of trailkey's principals nor a declared reader"),
        "{w:?}"
    );
    // The declared reader, by any case of its name, is fine.
    let (_, mut observed) = converged_with(grant(
        "Siem",
        json!({"AWS": "arn:aws:iam::444455556666:role/siem"}),
        "kms:Decrypt",
        None,
    ));
    observed.organization_accounts = OnDemand::Read(vec!["444455556666".to_owned()]);
    assert!(
        plan(&desired, &observed)
            .unwrap()
            .findings
            .iter()
            .all(|f| !f.message.contains("decrypt with the key or manage it"))
    );
}

// ---------------------------------------------------------------------------
// What planning asks to be read first

fn needs(planned: Result<Planned, Error>) -> Vec<Need> {
    match planned.unwrap() {
        Planned::Needs(needs) => needs,
        Planned::Ready(plan) => panic!("planned without asking: {plan:?}"),
    }
}

#[test]
fn a_converged_state_asks_for_no_read() {
    let (desired, mut observed) = converged();
    observed.trail_tags = OnDemand::NotRead;
    assert!(matches!(
        super::plan(&desired, &observed).unwrap(),
        Planned::Ready(_)
    ));
}

#[test]
fn a_change_of_the_trail_asks_for_its_tags_and_with_roles_log_archive_its_bucket() {
    let desired = config(true);
    let mut observed = observed_without_key(None);
    observed.trail_tags = OnDemand::NotRead;
    assert_eq!(needs(super::plan(&desired, &observed)), [Need::TrailTags]);
    let text = format!(
        "{}\n[roles]\nlog_archive = \"TrailkeyLogArchiveRead\"\n",
        config_text(true, None)
    );
    let with_role = crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap();
    assert_eq!(
        needs(super::plan(&with_role, &observed)),
        [Need::TrailTags, Need::LogBucket]
    );
    // What was read is never asked for again.
    observed.trail_tags = OnDemand::Read(BTreeMap::new());
    assert_eq!(needs(super::plan(&with_role, &observed)), [Need::LogBucket]);
}

#[test]
fn a_foreign_statement_naming_an_unknown_account_asks_for_the_organizations_accounts() {
    let outside = json!({"AWS": "arn:aws:iam::666666666666:root"});
    let (desired, mut observed) = converged_with(grant("Backdoor", outside, "kms:*", None));
    assert_eq!(
        needs(super::plan(&desired, &observed)),
        [Need::OrganizationAccounts]
    );
    observed.organization_accounts = OnDemand::Read(vec![MANAGEMENT.to_owned()]);
    let planned = plan(&desired, &observed).unwrap();
    assert!(
        planned
            .findings
            .iter()
            .any(|f| f.message.contains("outside the organization")),
        "{:?}",
        planned.findings
    );
}

#[test]
fn destroy_asks_for_the_tags_of_a_trail_on_a_key_and_for_nothing_else_without_a_role() {
    let (desired, mut observed) = converged();
    observed.trail_tags = OnDemand::NotRead;
    assert_eq!(
        needs(super::plan_destroy(&desired, &observed, None)),
        [Need::TrailTags]
    );
    let mut unencrypted = observed_without_key(None);
    unencrypted.trail_tags = OnDemand::NotRead;
    assert!(matches!(
        super::plan_destroy(&desired, &unencrypted, None).unwrap(),
        Planned::Ready(_)
    ));
}
