//! The change of each address, by named cases that read as examples: from
//! scratch, converged, a key to repair, an alias renamed, log-file validation.

use super::*;

// ---------------------------------------------------------------------------
// Named cases that read as examples

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

// ---------------------------------------------------------------------------
// Key discovery beyond the alias

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
fn a_key_found_by_tags_with_no_alias_gets_the_alias_not_a_new_key() {
    let (desired, mut observed) = converged();
    observed.alias_target = None;
    observed.key.as_mut().unwrap().found_by = FoundBy::Tags;
    let planned = plan(&desired, &observed).unwrap();
    let ops: Vec<&str> = planned.steps().map(|(_, s)| s.operation()).collect();
    assert_eq!(ops, ["CreateAlias"]);
}

// ---------------------------------------------------------------------------
// Log-file validation

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
fn every_step_is_one_of_the_writes_aws_lists_and_every_write_is_a_step() {
    let key = crate::aws::NewKey {
        description: String::new(),
        policy: String::new(),
        tags: BTreeMap::new(),
    };
    let steps = [
        Step::CreateKey(key),
        Step::CancelKeyDeletion,
        Step::EnableKey,
        Step::TagKey(BTreeMap::new()),
        Step::CreateAlias(ALIAS.to_owned()),
        Step::UpdateAlias(ALIAS.to_owned()),
        Step::DeleteAlias(ALIAS.to_owned()),
        Step::PutKeyPolicy(String::new()),
        Step::EnableRotation(None),
        Step::UpdateTrail {
            trail: TRAIL_ARN.to_owned(),
            log_file_validation: true,
        },
        Step::EnableLogFileValidation(TRAIL_ARN.to_owned()),
        Step::StartLogging(TRAIL_ARN.to_owned()),
        Step::DisableTrailEncryption(TRAIL_ARN.to_owned()),
        Step::ScheduleKeyDeletion(7),
        Step::UpdateLandingZone(Box::new(crate::plan::LandingZoneStep {
            arn: String::new(),
            version: "3.3".to_owned(),
            remediation_types: Vec::new(),
            manifest: serde_json::Value::Null,
            set_key: true,
        })),
    ];
    let operations: std::collections::BTreeSet<&str> = steps.iter().map(Step::operation).collect();
    let writes: std::collections::BTreeSet<&str> = crate::aws::WRITES.into_iter().collect();
    assert_eq!(operations, writes);
}

// ---------------------------------------------------------------------------
// The rotation period

/// The converged state with `key.rotation_period_days = days` in the config
/// and the key's rotation on with `observed` days.
fn with_period(days: Option<i32>, observed: Option<i32>) -> (Desired, Observed) {
    let (mut desired, mut o) = converged();
    desired.rotation_period_days = days;
    o.key.as_mut().unwrap().rotation_period_days = observed;
    (desired, o)
}

fn rotation_steps(planned: &Plan) -> Vec<Step> {
    planned
        .steps()
        .filter(|(a, _)| *a == Address::KmsKeyRotation)
        .map(|(_, s)| s.clone())
        .collect()
}

#[test]
fn a_rotation_period_other_than_the_configured_one_is_drift_set_by_enable_key_rotation() {
    let (desired, observed) = with_period(Some(90), Some(365));
    let planned = plan(&desired, &observed).unwrap();
    let c = change(&planned, Address::KmsKeyRotation);
    assert_eq!(c.action, Action::Update);
    assert_eq!(
        c.before,
        json!({"enabled": true, "rotation_period_days": 365})
    );
    assert_eq!(
        c.after,
        json!({"enabled": true, "rotation_period_days": 90})
    );
    assert_eq!(
        c.reasons,
        ["the rotation period is 365 days; key.rotation_period_days is 90"]
    );
    assert_eq!(rotation_steps(&planned), [Step::EnableRotation(Some(90))]);
    let others: Vec<Address> = planned
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp && c.address != Address::KmsKeyRotation)
        .map(|c| c.address)
        .collect();
    assert_eq!(others, [], "only the rotation changes");
}

#[test]
fn the_configured_period_observed_is_no_change_and_shown() {
    let (desired, observed) = with_period(Some(180), Some(180));
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    let c = change(&planned, Address::KmsKeyRotation);
    assert_eq!(
        c.before,
        json!({"enabled": true, "rotation_period_days": 180})
    );
}

#[test]
fn without_a_configured_period_any_period_is_left_as_it_is_and_not_shown() {
    for days in [Some(90), Some(365), Some(2560), None] {
        let (desired, observed) = with_period(None, days);
        let planned = plan(&desired, &observed).unwrap();
        assert!(!planned.has_changes(), "{days:?}");
        let c = change(&planned, Address::KmsKeyRotation);
        assert_eq!(c.before, json!({"enabled": true}), "{days:?}");
    }
}

/// Setting a period KMS does not report would be a change on every run (and
/// the Lambda function's own EnableKeyRotation an event that runs it again).
#[test]
fn a_period_kms_does_not_report_for_a_key_with_rotation_on_is_left_and_said() {
    let (desired, observed) = with_period(Some(400), None);
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    assert_eq!(rotation_steps(&planned), []);
    let c = change(&planned, Address::KmsKeyRotation);
    assert!(
        c.reasons[0].starts_with("KMS reports no rotation period"),
        "{:?}",
        c.reasons
    );
}

#[test]
fn rotation_turned_on_carries_the_configured_period_in_the_same_call() {
    // Rotation off on an existing key: one EnableKeyRotation with the period.
    let (desired, mut observed) = with_period(Some(120), None);
    observed.key.as_mut().unwrap().rotation = Some(false);
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(rotation_steps(&planned), [Step::EnableRotation(Some(120))]);
    let c = change(&planned, Address::KmsKeyRotation);
    assert_eq!(
        c.before,
        json!({"enabled": false, "rotation_period_days": null})
    );
    assert_eq!(
        c.after,
        json!({"enabled": true, "rotation_period_days": 120})
    );

    // A new key: its EnableKeyRotation carries the period.
    let planned = plan(&desired, &observed_without_key(None)).unwrap();
    assert_eq!(rotation_steps(&planned), [Step::EnableRotation(Some(120))]);
    assert_eq!(
        change(&planned, Address::KmsKeyRotation).after,
        json!({"enabled": true, "rotation_period_days": 120})
    );

    // A key pending deletion: rotation comes back with the period.
    let (desired, mut observed) = with_period(Some(120), None);
    let key = observed.key.as_mut().unwrap();
    key.info.state = crate::aws::KeyState::from("PendingDeletion");
    key.rotation = None;
    let planned = plan(&desired, &observed).unwrap();
    let steps: Vec<Step> = planned.steps().map(|(_, s)| s.clone()).collect();
    assert_eq!(
        steps,
        [
            Step::CancelKeyDeletion,
            Step::EnableKey,
            Step::EnableRotation(Some(120))
        ]
    );
}

#[test]
fn without_a_period_rotation_is_turned_on_with_kms_default() {
    let (desired, mut observed) = converged();
    observed.key.as_mut().unwrap().rotation = Some(false);
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(rotation_steps(&planned), [Step::EnableRotation(None)]);
}

// ---------------------------------------------------------------------------
// Whether the trail logs

fn stopped_with(logging: Option<bool>) -> (Desired, Observed) {
    let (mut desired, mut observed) = converged();
    desired.logging = logging;
    observed.trail_status.is_logging = false;
    (desired, observed)
}

fn not_logging_warning(planned: &Plan) -> bool {
    planned
        .findings
        .iter()
        .any(|f| f.message.contains("is not logging"))
}

#[test]
fn logging_true_starts_a_stopped_trail_with_one_start_logging() {
    let (desired, observed) = stopped_with(Some(true));
    let planned = plan(&desired, &observed).unwrap();
    let c = change(&planned, Address::TrailLogging);
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.before, json!({"trail": TRAIL_ARN, "is_logging": false}));
    assert_eq!(c.after, json!({"trail": TRAIL_ARN, "is_logging": true}));
    assert!(
        c.reasons[0].starts_with("the trail is stopped"),
        "{:?}",
        c.reasons
    );
    let steps: Vec<Step> = planned.steps().map(|(_, s)| s.clone()).collect();
    assert_eq!(steps, [Step::StartLogging(TRAIL_ARN.to_owned())]);
    assert!(
        !not_logging_warning(&planned),
        "the change says it, not a warning too"
    );
}

#[test]
fn a_stopped_trail_is_started_after_it_is_put_on_the_key() {
    let (desired, mut observed) = stopped_with(Some(true));
    observed.trail.kms_key_id = None;
    let planned = plan(&desired, &observed).unwrap();
    let ops: Vec<&str> = planned.steps().map(|(_, s)| s.operation()).collect();
    assert_eq!(ops, ["UpdateTrail", "StartLogging"]);
    let waves = crate::apply::waves(&planned);
    assert_eq!(waves.len(), 2, "StartLogging runs alone, after UpdateTrail");
}

#[test]
fn logging_true_on_a_logging_trail_is_no_change() {
    let (mut desired, observed) = converged();
    desired.logging = Some(true);
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    assert_eq!(
        change(&planned, Address::TrailLogging).before,
        json!({"trail": TRAIL_ARN, "is_logging": true})
    );
}

#[test]
fn logging_false_leaves_a_stopped_trail_stopped_and_says_so() {
    let (desired, observed) = stopped_with(Some(false));
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    let c = change(&planned, Address::TrailLogging);
    assert_eq!(c.action, Action::NoOp);
    assert_eq!(
        c.reasons,
        ["trail.logging = false: trailkey leaves the stopped trail as it is"]
    );
    assert!(!not_logging_warning(&planned));
}

#[test]
fn logging_unset_is_no_address_and_a_stopped_trail_a_warning() {
    let (desired, observed) = stopped_with(None);
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    assert!(
        planned
            .changes
            .iter()
            .all(|c| c.address != Address::TrailLogging)
    );
    assert!(not_logging_warning(&planned));
}
