//! A first apply and the runs after it: what is written, that a second run
//! writes nothing, that one run converges from every drift and keeps the
//! statements of others, and what a run refuses, or fails on after making
//! its changes.

use serde_json::json;

use crate::aws::fake::FakeCloud;
use crate::testing::*;

#[test]
fn from_scratch_apply_creates_the_key_alias_rotation_then_updates_the_trail() {
    let fake = empty_cloud();
    let desired = desired();
    let (planned, done) = apply_now(&fake, &desired);

    assert_eq!(fake.writes(), FROM_SCRATCH);
    assert_eq!(step_operations(&planned), FROM_SCRATCH);
    let key = only_key(&fake);
    assert_eq!(
        done.iter()
            .map(|d| (d.address, d.operation))
            .collect::<Vec<_>>(),
        [
            ("kms_key", "CreateKey"),
            ("kms_alias", "CreateAlias"),
            ("kms_key_rotation", "EnableKeyRotation"),
            ("trail_encryption", "UpdateTrail"),
        ]
    );
    assert_eq!(done[3].target, format!("{TRAIL_ARN} -> {}", key.info.arn));

    // The key carries trailkey's policy and tags from its creation on, with
    // the mark that trailkey created it.
    let mut tags = desired.tags.clone();
    tags.insert("trailkey:created".to_owned(), "true".to_owned());
    assert_eq!(key.tags, tags);
    assert!(key.rotation);
    assert!(statements(&key.policy).iter().all(crate::policy::is_ours));
    assert_eq!(fake.state.borrow().aliases[ALIAS], key.info.key_id);
    assert_eq!(trail_kms_key_id(&fake), Some(key.info.arn));

    // A re-observed plan is empty.
    assert!(!plan_now(&fake, &desired).has_changes());
}

#[test]
/// The 8 core reads, plus the trail's status and its bucket's Region.
fn a_second_apply_reads_ten_times_and_writes_nothing() {
    let fake = empty_cloud();
    let desired = desired();
    apply_now(&fake, &desired);

    fake.clear_calls();
    let (planned, done) = apply_now(&fake, &desired);
    assert!(!planned.has_changes());
    assert!(done.is_empty());
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    assert_eq!(
        sorted(fake.calls()),
        sorted(vec![
            "GetCallerIdentity",
            "DescribeOrganization",
            "DescribeTrails",
            "AssumeRole",
            "DescribeKey",
            "GetKeyPolicy",
            "GetKeyRotationStatus",
            "ListResourceTags",
            "GetTrailStatus",
            "HeadBucket",
        ])
    );
    assert_eq!(fake.calls().len(), 10);
}

#[test]
fn one_apply_converges_from_every_drift_and_keeps_foreign_statements() {
    let desired = desired();
    for (name, drift) in DRIFTS {
        let fake = converged_cloud_with_foreign_statement(&desired);
        drift(&fake);
        fake.clear_calls();

        let (planned, done) = apply_now(&fake, &desired);
        assert!(planned.has_changes(), "{name}: drift is seen");
        assert_eq!(fake.writes(), step_operations(&planned), "{name}");
        assert_eq!(done.len(), planned.steps().count(), "{name}");

        let after = plan_now(&fake, &desired);
        assert!(!after.has_changes(), "{name}: {:#?}", after.changes);
        let key = only_key(&fake);
        assert_eq!(key.info.state.as_str(), "Enabled", "{name}");
        assert!(key.rotation, "{name}");
        assert_eq!(trail_kms_key_id(&fake), Some(key.info.arn), "{name}");
        assert!(
            statements(&key.policy).contains(&third_party_statement()),
            "{name}: the foreign statement is gone:\n{}",
            key.policy
        );

        fake.clear_calls();
        apply_now(&fake, &desired);
        assert!(fake.writes().is_empty(), "{name}: {:?}", fake.writes());
    }
}

/// KMS allows 50 tags per key: a `TagResource` that would pass that with
/// the tags others put on the key is refused by the plan, before any write.
#[test]
fn tags_that_would_take_the_key_past_fifty_are_refused_before_any_write() {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    {
        let mut s = fake.state.borrow_mut();
        let tags = &mut s.keys[0].tags;
        tags.remove("ManagedBy");
        // AWS's own tags do not count.
        tags.insert("aws:cloudformation:stack-name".to_owned(), "x".to_owned());
        for i in 0..48 {
            tags.insert(format!("team-{i:02}"), "x".to_owned());
        }
    }
    // 48 foreign + trailkey:alias + trailkey:created = 50; ManagedBy makes 51.
    fake.clear_calls();
    let e = apply_error(&fake, &desired());
    let text = e.render();
    assert!(
        text.contains("has 50 tags, and the 1 trailkey would add make 51"),
        "{text}"
    );
    assert!(text.contains("untag-resource"), "{text}");
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());

    // At 50 exactly it is fine.
    fake.state.borrow_mut().keys[0].tags.remove("team-00");
    apply_now(&fake, &desired());
    assert!(!plan_now(&fake, &desired()).has_changes());
}

/// A foreign Deny that keeps CloudTrail from encrypting: apply still makes
/// its own changes, then fails with the error finding; with nothing left to
/// do, it fails the same way.
#[test]
fn apply_makes_its_changes_then_fails_on_a_foreign_deny_that_breaks_delivery() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    edit_policy(&fake, |s| {
        s.push(json!({"Sid": "NoTrail", "Effect": "Deny",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*", "Resource": "*"}));
    });
    rotation_off(&fake);
    let run = || {
        let command = apply_command();
        let crate::Dispatch::Online(command, view) = crate::dispatch(command) else {
            panic!("apply talks to AWS");
        };
        block_on(crate::run_online(&fake, &desired, command, view))
    };
    for round in ["with a change", "with nothing to do"] {
        let e = run().expect_err(round);
        assert!(
            e.to_string().starts_with(
                "statement \"NoTrail\" explicitly denies kms:GenerateDataKey to CloudTrail"
            ),
            "{round}: {}",
            e.render()
        );
        assert!(e.hint().contains("remove the foreign statement"), "{round}");
        assert!(
            only_key(&fake).rotation,
            "{round}: apply made its own change"
        );
    }
}

/// Every ARN trailkey writes or prints follows the Region's partition: a
/// whole apply (readers, protection and validation included), then a
/// no-op plan, in the China and GovCloud partitions.
#[test]
fn in_other_partitions_no_arn_trailkey_writes_or_prints_says_aws() {
    for (region, partition) in [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")] {
        let desired = desired_with_everything(region, partition);
        let fake = FakeCloud::new(region, MANAGEMENT, SECURITY_TOOLING, "org-trail");
        let (planned, _) = apply_now(&fake, &desired);
        let trail_key = fake
            .state
            .borrow()
            .trails
            .values()
            .next()
            .and_then(|t| t.kms_key_id.clone())
            .expect("the trail has the key");
        let texts = [
            (
                "the plan (JSON)",
                serde_json::to_string(&crate::render::PlanJson::from(&planned)).unwrap(),
            ),
            ("the plan", crate::render::plan_human(&planned)),
            ("the key policy", only_key(&fake).policy),
            ("the trail's key", trail_key),
        ];
        for (what, text) in texts {
            assert!(!text.contains("arn:aws:"), "{region}, {what}: {text}");
            assert!(
                text.contains(&format!("arn:{partition}:")),
                "{region}, {what}: {text}"
            );
        }
        assert!(!plan_now(&fake, &desired).has_changes(), "{region}");
    }
}

#[test]
fn a_configured_rotation_period_is_set_kept_and_repaired_in_one_call() {
    let desired = desired_with("[key]\nrotation_period_days = 90");
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let key = only_key(&fake);
    assert!(key.rotation);
    assert_eq!(key.rotation_period, 90, "set with rotation, in one call");
    assert_eq!(count(&fake, "EnableKeyRotation"), 1);

    fake.clear_calls();
    let (planned, _) = apply_now(&fake, &desired);
    assert!(!planned.has_changes());
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    assert_eq!(
        fake.calls().len(),
        10,
        "the no-op run's reads are unchanged"
    );

    // Someone sets another period: drift, repaired by one EnableKeyRotation.
    fake.state.borrow_mut().keys[0].rotation_period = 730;
    fake.clear_calls();
    let (planned, _) = apply_now(&fake, &desired);
    assert_eq!(step_operations(&planned), ["EnableKeyRotation"]);
    assert_eq!(fake.writes(), ["EnableKeyRotation"]);
    assert_eq!(only_key(&fake).rotation_period, 90);
    assert!(!plan_now(&fake, &desired).has_changes());

    // Without the field, the period someone chose stays.
    fake.state.borrow_mut().keys[0].rotation_period = 730;
    fake.clear_calls();
    let (planned, _) = apply_now(&fake, &desired_with(""));
    assert!(!planned.has_changes());
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    assert_eq!(only_key(&fake).rotation_period, 730);
}

#[test]
fn a_stopped_trail_is_started_with_logging_true_and_left_without() {
    let desired = desired_with("");
    let fake = converged_cloud_with_foreign_statement(&desired);
    trail_stopped(&fake);

    // Unset: left stopped, with a warning.
    fake.clear_calls();
    let (planned, _) = apply_now(&fake, &desired);
    assert!(!planned.has_changes());
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());

    // true: one StartLogging, then nothing to do.
    let desired = crate::testing::desired_with_trail("logging = true");
    fake.clear_calls();
    let (planned, done) = apply_now(&fake, &desired);
    assert_eq!(step_operations(&planned), ["StartLogging"]);
    assert_eq!(fake.writes(), ["StartLogging"]);
    assert_eq!(done[0].target, format!("{TRAIL_ARN}: logging started"));
    assert!(fake.state.borrow().trail_status[TRAIL_ARN].is_logging);
    fake.clear_calls();
    let (planned, _) = apply_now(&fake, &desired);
    assert!(!planned.has_changes());
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());

    // false: stopped again, left stopped.
    trail_stopped(&fake);
    fake.clear_calls();
    let (planned, _) = apply_now(
        &fake,
        &crate::testing::desired_with_trail("logging = false"),
    );
    assert!(!planned.has_changes());
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
}
