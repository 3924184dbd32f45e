//! The plan as a specification: every combination of observed state, with
//! the action, steps, summary and before/after values each one must give.

use super::*;

const ADDRESSES: [Address; 5] = [
    Address::KmsKey,
    Address::KmsAlias,
    Address::KmsKeyPolicy,
    Address::KmsKeyRotation,
    Address::TrailEncryption,
];

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
        (Address::LandingZone, _) => panic!("planned only with [control_tower] landing_zone"),
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
        (Address::TrailLogging, _) => unreachable!("the matrix does not configure logging"),
    }
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
        Step::EnableLogFileValidation(_) | Step::StartLogging(_) => {
            unreachable!("not configured in the matrix")
        }
        Step::UpdateLandingZone(_) => unreachable!("only with [control_tower] landing_zone"),
        Step::CancelKeyDeletion | Step::EnableKey | Step::EnableRotation(_) => {}
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
