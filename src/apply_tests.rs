//! Apply on its own, given a plan, through the in-memory fake: the steps in
//! the plan's order and in waves, the progress it reports, its retries of a
//! rejected key policy, the race for the alias, and what it says when it
//! stops.

use super::*;
use crate::aws::Connect;
use crate::aws::fake::FakeCloud;
use crate::config::Desired;
use crate::testing::*;

// ---------------------------------------------------------------------------
// Steps in the plan's order, in waves of independent steps

#[test]
fn progress_is_told_each_step_before_it_runs_in_plan_order() {
    let fake = empty_cloud();
    let desired = desired();
    let (planned, keys) = block_on(observe_and_plan(&fake, &desired)).unwrap();
    let mut seen = Vec::new();
    block_on(apply(
        &planned,
        fake.management(),
        &keys,
        |address, step| {
            // The step has not been written yet when progress hears of it.
            assert!(!fake.writes().contains(&step.operation()));
            seen.push((address.as_str(), step.operation()));
        },
    ))
    .unwrap();
    assert_eq!(
        seen,
        [
            ("kms_key", "CreateKey"),
            ("kms_alias", "CreateAlias"),
            ("kms_key_rotation", "EnableKeyRotation"),
            ("trail_encryption", "UpdateTrail"),
        ]
    );
}

fn wave_operations(p: &Plan) -> Vec<Vec<&'static str>> {
    waves(p)
        .iter()
        .map(|w| w.iter().map(|(_, s)| s.operation()).collect())
        .collect()
}

#[test]
fn a_first_apply_runs_in_three_waves() {
    let desired = desired();
    let fake = empty_cloud();
    assert_eq!(
        wave_operations(&plan_now(&fake, &desired)),
        [
            vec!["CreateKey"],
            vec!["CreateAlias", "EnableKeyRotation"],
            vec!["UpdateTrail"],
        ]
    );
}

#[test]
fn waves_keep_the_plan_order_and_run_alone_what_others_depend_on() {
    let desired = desired();
    let fake = converged_cloud_with_foreign_statement(&desired);
    everything_at_once(&fake);
    let planned = plan_now(&fake, &desired);
    let waves = wave_operations(&planned);
    assert_eq!(
        waves,
        [
            vec!["CancelKeyDeletion"],
            vec!["EnableKey"],
            // The key's tags and the alias tag, the policy, rotation.
            vec!["TagResource", "TagResource", "PutKeyPolicy"],
            // After the policy, which may be what lets it in.
            vec!["EnableKeyRotation"],
            vec!["UpdateTrail"],
        ]
    );
    assert_eq!(
        waves.concat(),
        step_operations(&planned),
        "the plan's order, only grouped"
    );
}

#[test]
fn destroy_with_delete_key_runs_each_step_alone_trail_first() {
    let planned = delete_key_plan(&empty_cloud(), &desired());
    assert_eq!(
        wave_operations(&planned),
        [
            vec!["UpdateTrail"],
            vec!["DeleteAlias"],
            vec!["ScheduleKeyDeletion"],
        ]
    );
}

#[test]
fn on_an_existing_key_create_alias_runs_alone() {
    let desired = desired();
    let fake = converged_cloud_with_foreign_statement(&desired);
    fake.state.borrow_mut().aliases.clear();
    policy_statement_missing(&fake);
    rotation_off(&fake);
    let planned = plan_now(&fake, &desired);
    // Found by its tags. If a concurrent run wins the alias with another
    // key, this run must not have changed the key it found.
    assert_eq!(
        wave_operations(&planned),
        [
            vec!["CreateAlias"],
            vec!["PutKeyPolicy"],
            vec!["EnableKeyRotation"],
        ]
    );
    apply_now(&fake, &desired);
    assert!(!plan_now(&fake, &desired).has_changes());
}

// ---------------------------------------------------------------------------
// What an apply that stops says was done

#[test]
fn every_failure_of_a_wave_is_reported_with_what_succeeded_beside_it() {
    let desired = desired();
    let fake = converged_cloud_with_foreign_statement(&desired);
    tags_missing(&fake);
    policy_statement_missing(&fake);
    rotation_off(&fake);
    fake.fail_next("TagResource", "AccessDeniedException", "denied");
    fake.fail_next("PutKeyPolicy", "LimitExceededException", "slow down");
    fake.clear_calls();
    let text = apply_error(&fake, &desired).render();
    assert!(
        text.contains("apply stopped at kms_key (TagResource) and at kms_key_policy (PutKeyPolicy): LimitExceededException;"),
        "{text}"
    );
    assert!(text.contains("done: TagResource"), "{text}");
    // The wave after the failed one (rotation) did not run.
    assert!(
        !fake.writes().contains(&"EnableKeyRotation"),
        "{:?}",
        fake.writes()
    );
    // A rerun converges.
    apply_now(&fake, &desired);
    assert!(!plan_now(&fake, &desired).has_changes());
}

#[test]
fn a_trail_rejecting_the_key_policy_says_so_and_what_was_done() {
    let desired = desired();
    let fake = empty_cloud();
    fake.fail_next(
        "UpdateTrail",
        "InsufficientEncryptionPolicyException",
        "Insufficient permissions to access S3 bucket or KMS key",
    );
    // With no time to wait for CloudTrail to see the new key's policy.
    let no_wait = ApplyOptions {
        propagation_retry: std::time::Duration::ZERO,
        ..ApplyOptions::default()
    };
    let text = block_on(async {
        let (planned, keys) = observe_and_plan(&fake, &desired).await?;
        apply_with(&planned, &fake, &keys, &no_wait, |_, _| {}).await
    })
    .expect_err("apply fails")
    .render();
    assert!(text.contains("hint:"), "{text}");
    assert!(text.contains("key policy"), "{text}");
    assert!(
        text.contains("InsufficientEncryptionPolicyException"),
        "{text}"
    );
    assert!(
        text.contains("apply stopped at trail_encryption (UpdateTrail)"),
        "{text}"
    );
    let key_arn = only_key(&fake).info.arn;
    for done in [
        format!("CreateKey {key_arn}"),
        format!("CreateAlias {key_arn}"),
        format!("EnableKeyRotation {key_arn}"),
    ] {
        assert!(text.contains(&done), "{done} missing from:\n{text}");
    }
    assert_eq!(trail_kms_key_id(&fake), None);

    // Once CloudTrail accepts the key, a rerun only updates the trail.
    fake.clear_calls();
    apply_now(&fake, &desired);
    assert_eq!(fake.writes(), ["UpdateTrail"]);
    assert_eq!(trail_kms_key_id(&fake), Some(key_arn));
}

#[test]
fn a_failing_first_step_says_nothing_was_changed() {
    let fake = empty_cloud();
    fake.fail_next("CreateKey", "LimitExceededException", "too many keys");
    let text = apply_error(&fake, &desired()).render();
    assert!(text.contains("no change was made before it"), "{text}");
    assert!(text.contains("hint:") && text.contains("quota"), "{text}");
    assert!(fake.state.borrow().keys.is_empty());
}

// ---------------------------------------------------------------------------
// Retries of a key policy KMS rejects

fn fast_retry(total_ms: u64) -> ApplyOptions {
    ApplyOptions {
        policy_retry: std::time::Duration::from_millis(total_ms),
        retry_backoff: std::time::Duration::from_millis(1),
        ..ApplyOptions::default()
    }
}

#[test]
fn malformed_policy_right_after_a_principal_was_created_is_retried() {
    let desired = desired();
    let fake = empty_cloud();
    for _ in 0..3 {
        fake.fail_next(
            "CreateKey",
            "MalformedPolicyDocumentException",
            "Policy contains a statement with one or more invalid principals.",
        );
    }
    block_on(async {
        let (planned, keys) = observe_and_plan(&fake, &desired).await.unwrap();
        apply_with(
            &planned,
            fake.management(),
            &keys,
            &fast_retry(5_000),
            |_, _| {},
        )
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    });
    let creates = fake.calls().iter().filter(|c| **c == "CreateKey").count();
    assert_eq!(creates, 4, "three rejections, then success");
    assert_eq!(fake.state.borrow().keys.len(), 1);
}

#[test]
fn malformed_policy_that_outlasts_the_retry_time_fails_clearly() {
    let desired = desired();
    let fake = converged_cloud_with_foreign_statement(&desired);
    policy_statement_missing(&fake);
    for _ in 0..1000 {
        fake.fail_next(
            "PutKeyPolicy",
            "MalformedPolicyDocumentException",
            "Policy contains a statement with one or more invalid principals.",
        );
    }
    let e = block_on(async {
        let (planned, keys) = observe_and_plan(&fake, &desired).await.unwrap();
        apply_with(
            &planned,
            fake.management(),
            &keys,
            &fast_retry(50),
            |_, _| {},
        )
        .await
        .unwrap_err()
    });
    let text = e.render();
    assert!(text.contains("MalformedPolicyDocumentException"), "{text}");
    assert!(text.contains("still rejected after retrying for"), "{text}");
    assert!(
        text.contains("hint: KMS rejected the key policy: a principal in it may not exist yet"),
        "{text}"
    );
    let puts = fake
        .calls()
        .iter()
        .filter(|c| **c == "PutKeyPolicy")
        .count();
    assert!((2..1000).contains(&puts), "bounded retries: {puts}");
}

/// KMS's lockout safety check is not a delay: it fails at once, at
/// CreateKey and at PutKeyPolicy, with a hint on the caller's permissions.
#[test]
fn the_key_policy_lockout_check_fails_at_once_and_is_never_retried() {
    const LOCKOUT: &str =
        "The new key policy will not allow you to update the key policy in the future.";
    let desired = desired();
    let from_scratch = empty_cloud();
    let policy_drifted = converged_cloud_with_foreign_statement(&desired);
    policy_statement_missing(&policy_drifted);
    for (fake, operation) in [
        (from_scratch, "CreateKey"),
        (policy_drifted, "PutKeyPolicy"),
    ] {
        fake.fail_next(operation, "MalformedPolicyDocumentException", LOCKOUT);
        let e = block_on(async {
            let (planned, keys) = observe_and_plan(&fake, &desired).await.unwrap();
            apply_with(
                &planned,
                fake.management(),
                &keys,
                &fast_retry(5_000),
                |_, _| {},
            )
            .await
        })
        .expect_err("refused");
        assert_eq!(
            count(&fake, operation),
            1,
            "{operation}: not retried: {:?}",
            fake.calls()
        );
        let text = e.render();
        assert!(
            text.contains(LOCKOUT) && text.contains("kms:PutKeyPolicy"),
            "{operation}: {text}"
        );
        assert!(
            !text.contains("still rejected after retrying"),
            "{operation}: {text}"
        );
    }
}

// ---------------------------------------------------------------------------
// The race for the alias

/// A key as trailkey creates it: its tags and its policy, which CloudTrail
/// accepts for the trail.
fn tagged_key(desired: &Desired, description: &str) -> crate::aws::NewKey {
    let policy = crate::policy::render(&crate::policy::PolicyInputs::of(
        desired,
        MANAGEMENT,
        "o-fake00001",
        TRAIL_ARN,
    ));
    crate::aws::NewKey {
        description: description.to_owned(),
        policy: crate::policy::to_document(&policy),
        tags: desired.tags.clone(),
    }
}

/// Another run creates its key and the alias between this run's observe and
/// its `CreateAlias`.
fn race_lost_to(fake: &FakeCloud, desired: &Desired) -> Error {
    block_on(async {
        let (planned, keys) = observe_and_plan(fake, desired).await.unwrap();
        let winner = keys
            .create_key(&tagged_key(desired, "the winner"))
            .await
            .unwrap();
        keys.create_alias(ALIAS, &winner.key_id).await.unwrap();
        fake.clear_calls();
        apply(&planned, fake.management(), &keys, |_, _| {})
            .await
            .unwrap_err()
    })
}

#[test]
fn a_run_that_loses_the_alias_race_schedules_deletion_of_only_its_own_new_key() {
    let desired = desired();
    let fake = empty_cloud();
    let e = race_lost_to(&fake, &desired);
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
    let text = e.render();
    assert!(
        text.contains("another trailkey run created alias/cloudtrail-org-key first"),
        "{text}"
    );
    assert!(text.contains("hint: run trailkey again"), "{text}");
    assert_eq!(
        fake.writes(),
        // EnableKeyRotation runs with CreateAlias (one wave), on the key
        // that then turns out to be unused.
        [
            "CreateKey",
            "CreateAlias",
            "EnableKeyRotation",
            "ScheduleKeyDeletion"
        ],
        "it stops before touching the trail"
    );
    let s = fake.state.borrow();
    let states: Vec<&str> = s.keys.iter().map(|k| k.info.state.as_str()).collect();
    assert_eq!(
        states,
        ["Enabled", "PendingDeletion"],
        "the winner's key stays enabled"
    );
    drop(s);
    // The next run continues with the winner's key: no new key, nothing deleted.
    fake.clear_calls();
    apply_now(&fake, &desired);
    assert!(!fake.writes().contains(&"CreateKey"));
    assert!(!plan_now(&fake, &desired).has_changes());
}

#[test]
fn a_lost_race_never_schedules_deletion_of_a_key_a_trail_uses() {
    let desired = desired();
    let fake = empty_cloud();
    block_on(async {
        let (_, keys) = observe_and_plan(&fake, &desired).await.unwrap();
        let ours = keys
            .create_key(&tagged_key(&desired, "created by this run"))
            .await
            .unwrap();
        // Somehow the trail already uses it, and the alias names another key.
        fake.management()
            .set_trail_key(TRAIL_ARN, &ours.arn)
            .await
            .unwrap();
        let other = keys
            .create_key(&tagged_key(&desired, "another run's"))
            .await
            .unwrap();
        keys.create_alias(ALIAS, &other.key_id).await.unwrap();
        fake.clear_calls();
        let mut done = Vec::new();
        let race = alias_race(
            fake.management(),
            &keys,
            ALIAS,
            &ours,
            Some(&ours),
            &mut done,
        )
        .await
        .unwrap();
        assert!(
            matches!(race, Race::Lost(ref text) if text.contains(&format!("kept because trail(s) {TRAIL_ARN} (home Region us-east-1) use it")))
        );
        assert!(fake.writes().is_empty(), "no deletion: {:?}", fake.calls());
    });
}

#[test]
fn an_alias_that_names_this_runs_key_is_not_a_lost_race() {
    let desired = desired();
    let fake = empty_cloud();
    block_on(async {
        let (_, keys) = observe_and_plan(&fake, &desired).await.unwrap();
        let ours = keys
            .create_key(&tagged_key(&desired, "created by this run"))
            .await
            .unwrap();
        // A concurrent run found this run's key by its tags and aliased it.
        keys.create_alias(ALIAS, &ours.key_id).await.unwrap();
        let mut done = Vec::new();
        let race = alias_race(
            fake.management(),
            &keys,
            ALIAS,
            &ours,
            Some(&ours),
            &mut done,
        )
        .await
        .unwrap();
        assert_eq!(race, Race::AlreadyDone);
        assert!(done.is_empty());
    });
}

// ---------------------------------------------------------------------------
// Writes taken at their word

/// The state after the writes read meanwhile: where the read still shows
/// the state apply started from, what each step sent, on the key and the
/// trail it wrote; a third value (someone else's change at the same time),
/// another key or trail, and a step read back after it: as read.
#[test]
fn what_is_taken_at_its_word_is_what_the_step_sent_where_the_read_shows_the_state_before() {
    use crate::aws::KeyState;
    let fake = empty_cloud();
    let desired = desired();
    apply_now(&fake, &desired);
    key_disabled(&fake);
    rotation_off(&fake);
    trail_stopped(&fake);
    let (before, _): (plan::Observed, FakeCloud) =
        block_on(crate::observe::observe(&fake, &desired)).unwrap();
    let key = before.key.as_ref().unwrap().info.arn.clone();
    let done = |step: Step, target: &str, unread: bool| Done {
        address: "kms_key",
        operation: step.operation(),
        target: target.to_owned(),
        trail: None,
        unread: unread.then_some(step),
    };
    let tags = std::collections::BTreeMap::from([("CostCenter".to_owned(), "security".to_owned())]);
    let all = [
        done(Step::EnableKey, &key, true),
        done(Step::EnableRotation(Some(180)), &key, true),
        done(Step::PutKeyPolicy("{}".to_owned()), &key, true),
        done(Step::TagKey(tags), &key, true),
        done(Step::StartLogging(TRAIL_ARN.to_owned()), TRAIL_ARN, true),
    ];

    // The read shows the state before: each step's value.
    let after = as_written(before.clone(), &before, &all);
    let k = after.key.as_ref().unwrap();
    assert_eq!(k.info.state, KeyState::Enabled);
    assert_eq!(
        (k.rotation, k.rotation_period_days),
        (Some(true), Some(180))
    );
    assert_eq!(k.policy, "{}");
    assert_eq!(k.tags["CostCenter"], "security");
    assert_eq!(k.tags.len(), before.key.as_ref().unwrap().tags.len() + 1);
    assert!(after.trail_status.is_logging);
    // Without a period, KMS's default.
    let after = as_written(
        before.clone(),
        &before,
        &[done(Step::EnableRotation(None), &key, true)],
    );
    assert_eq!(after.key.as_ref().unwrap().rotation_period_days, Some(365));

    // A third value: someone scheduled the key's deletion, put another
    // policy, set another period or tag, stopped the trail again after
    // the step: kept as read.
    let mut third = before.clone();
    let k = third.key.as_mut().unwrap();
    k.info.state = KeyState::PendingDeletion;
    k.policy = "{\"someone\": \"else\"}".to_owned();
    k.rotation = Some(true);
    k.rotation_period_days = Some(2560);
    k.tags.insert("CostCenter".to_owned(), "other".to_owned());
    third.trail_status.is_logging = true;
    let mut stopped_again = third.clone();
    stopped_again.trail_status.is_logging = false;
    let mut before_logging = before.clone();
    before_logging.trail_status.is_logging = true;
    assert_eq!(as_written(third.clone(), &before, &all), third);
    let logging = [done(
        Step::StartLogging(TRAIL_ARN.to_owned()),
        TRAIL_ARN,
        true,
    )];
    assert_eq!(
        as_written(stopped_again.clone(), &before_logging, &logging),
        stopped_again
    );

    // After this run's CancelKeyDeletion, the key still shown pending
    // deletion or disabled is not yet showing the EnableKey.
    let mut pending = before.clone();
    pending.key.as_mut().unwrap().info.state = KeyState::PendingDeletion;
    let rescue = [
        done(Step::CancelKeyDeletion, &key, false),
        done(Step::EnableKey, &key, true),
    ];
    for shown in [KeyState::PendingDeletion, KeyState::Disabled] {
        let mut read = pending.clone();
        read.key.as_mut().unwrap().info.state = shown;
        let after = as_written(read, &pending, &rescue);
        assert_eq!(after.key.unwrap().info.state, KeyState::Enabled);
    }

    // A rescued key: its rotation, unreported while pending deletion, read
    // as off after this run's CancelKeyDeletion and EnableKey, is from
    // before the EnableKeyRotation.
    let mut unreported = pending.clone();
    let k = unreported.key.as_mut().unwrap();
    (k.rotation, k.rotation_period_days) = (None, None);
    let mut read = unreported.clone();
    let k = read.key.as_mut().unwrap();
    (k.info.state, k.rotation) = (KeyState::Enabled, Some(false));
    let rescue = [
        done(Step::CancelKeyDeletion, &key, false),
        done(Step::EnableKey, &key, false),
        done(Step::EnableRotation(None), &key, true),
    ];
    let k = as_written(read, &unreported, &rescue).key.unwrap();
    assert_eq!(
        (k.rotation, k.rotation_period_days),
        (Some(true), Some(365))
    );

    // Another key or trail than the one read, or read back after the write.
    let other = "arn:aws:kms:us-east-1:111111111111:key/other";
    let other_trail = "arn:aws:cloudtrail:us-east-1:333333333333:trail/other";
    let after = as_written(
        before.clone(),
        &before,
        &[
            done(Step::EnableKey, other, true),
            done(Step::PutKeyPolicy("{}".to_owned()), other, true),
            done(
                Step::StartLogging(other_trail.to_owned()),
                other_trail,
                true,
            ),
            done(Step::EnableRotation(None), &key, false),
        ],
    );
    assert_eq!(after, before);
}
