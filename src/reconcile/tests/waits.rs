//! Eventual consistency: this run's own writes, not visible at once, are
//! waited for, within one budget for the run; the same errors without a
//! write of this run fail at once. With what the AWS service models and
//! guides say real AWS answers while a change propagates.

use crate::aws::fake::FakeCloud;
use crate::error::Error;
use crate::plan::Plan;
use crate::retry::Backoff;
use crate::testing::*;

// ---------------------------------------------------------------------------
// This run's own writes, not visible at once

/// `trailkey apply --auto-approve --propagation-timeout <seconds>` through
/// the product's own code path on a paused clock (waits cost no wall
/// time), then a plan once every window has passed; returns the apply's
/// result, the plan, and the time the apply waited.
fn apply_paused(
    fake: &FakeCloud,
    seconds: u64,
) -> (Result<crate::Status, Error>, Plan, std::time::Duration) {
    let desired = desired();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let started = tokio::time::Instant::now();
            let command = crate::cli::Command::Apply {
                plan: None,
                expect_sha256: None,
                auto_approve: true,
                format: crate::cli::Format::Json,
                policy_retry_timeout: 0,
                propagation_timeout: seconds,
                wait_for_delivery: None,
                landing_zone: Default::default(),
            };
            let crate::Dispatch::Online(command, view) = crate::dispatch(command) else {
                panic!("apply talks to AWS");
            };
            let applied = crate::run_online(fake, &desired, command, view).await;
            let waited = started.elapsed();
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            let (planned, _) = observe_and_plan(fake, &desired).await.unwrap();
            (applied, planned, waited)
        })
}

#[test]
fn a_first_apply_waits_for_kms_to_show_its_new_key_and_alias_and_converges_in_one_run() {
    let fake = empty_cloud();
    fake.state.borrow_mut().propagation = Some(std::time::Duration::from_secs(2));
    let (applied, after, waited) = apply_paused(&fake, 120);
    if let Err(e) = &applied {
        panic!("{}", e.render());
    }
    assert!(!after.has_changes(), "converged");
    let key = only_key(&fake);
    assert_eq!(trail_kms_key_id(&fake), Some(key.info.arn));
    // CreateAlias and EnableKeyRotation on the new key were refused with
    // NotFoundException, then retried; nothing was created twice.
    assert!(count(&fake, "CreateAlias") >= 2, "{:?}", fake.calls());
    assert!(count(&fake, "EnableKeyRotation") >= 2, "{:?}", fake.calls());
    assert_eq!(count(&fake, "CreateKey"), 1);
    assert!(!fake.writes().contains(&"ScheduleKeyDeletion"));
    // The verification waited for the new alias too.
    assert!(waited >= std::time::Duration::from_secs(4), "{waited:?}");
    assert!(waited < std::time::Duration::from_secs(30), "{waited:?}");
}

#[test]
fn cloudtrail_not_yet_seeing_the_new_key_or_its_policy_is_waited_for() {
    let fake = empty_cloud();
    fake.fail_next(
        "UpdateTrail",
        "KmsKeyNotFoundException",
        "Cannot find KMS key",
    );
    fake.fail_next(
        "UpdateTrail",
        "InsufficientEncryptionPolicyException",
        "Insufficient permissions to access S3 bucket or KMS key",
    );
    let (applied, after, _) = apply_paused(&fake, 120);
    assert!(applied.is_ok(), "{}", applied.unwrap_err().render());
    assert!(!after.has_changes());
    assert_eq!(
        count(&fake, "UpdateTrail"),
        3,
        "two refusals, then accepted"
    );
}

#[test]
fn without_a_write_of_this_run_the_same_errors_fail_at_once() {
    for (operation, error) in [
        ("UpdateTrail", "InsufficientEncryptionPolicyException"),
        ("UpdateTrail", "KmsKeyNotFoundException"),
    ] {
        let fake = converged_with_unencrypted_trail();
        fake.fail_next(operation, error, "as AWS says it");
        let (applied, _, waited) = apply_paused(&fake, 120);
        let text = applied.expect_err("fails").render();
        assert!(text.contains(error) && text.contains("hint:"), "{text}");
        assert_eq!(count(&fake, operation), 1, "{error}: not retried");
        assert_eq!(waited, std::time::Duration::ZERO, "{error}");
    }
    // NotFoundException on a key this run did not create: not waited for.
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    fake.state.borrow_mut().keys[0].rotation = false;
    fake.clear_calls();
    fake.fail_next("EnableKeyRotation", "NotFoundException", "gone");
    let (applied, _, waited) = apply_paused(&fake, 120);
    assert!(applied.is_err());
    assert_eq!(count(&fake, "EnableKeyRotation"), 1);
    assert_eq!(waited, std::time::Duration::ZERO);
}

/// From now on, CloudTrail answers every `UpdateTrail` that it cannot find
/// the key.
fn cloudtrail_never_finds_the_key(fake: &FakeCloud) {
    for _ in 0..50 {
        fake.fail_next(
            "UpdateTrail",
            "KmsKeyNotFoundException",
            "Cannot find KMS key",
        );
    }
}

#[test]
fn a_wait_is_bounded_and_then_fails_with_the_error() {
    let fake = empty_cloud();
    cloudtrail_never_finds_the_key(&fake);
    let (applied, _, waited) = apply_paused(&fake, 10);
    let text = applied.expect_err("gives up").render();
    assert!(text.contains("KmsKeyNotFoundException"), "{text}");
    assert!(text.contains("still rejected after retrying for"), "{text}");
    // 10 s allow waits of 1, 2 and 4 s: four attempts.
    let schedule = Backoff {
        total: std::time::Duration::from_secs(10),
        first: std::time::Duration::from_secs(1),
        deadline: None,
    };
    assert_eq!(schedule.attempts(), 4);
    assert_eq!(count(&fake, "UpdateTrail"), 4);
    assert_eq!(waited, std::time::Duration::from_secs(7));
}

#[test]
fn every_wait_of_a_run_shares_one_budget() {
    // The new key stays hidden for 6 s, then CloudTrail keeps refusing it:
    // the waits for the alias and those for the trail add up to at most the
    // 10 s the run has, not 10 s each.
    let fake = empty_cloud();
    fake.state.borrow_mut().propagation = Some(std::time::Duration::from_secs(6));
    cloudtrail_never_finds_the_key(&fake);
    let (applied, _, waited) = apply_paused(&fake, 10);
    let text = applied.expect_err("gives up").render();
    assert!(text.contains("KmsKeyNotFoundException"), "{text}");
    assert!(count(&fake, "CreateAlias") >= 2, "{:?}", fake.calls());
    assert!(count(&fake, "UpdateTrail") >= 2, "{:?}", fake.calls());
    assert!(
        waited <= std::time::Duration::from_secs(10),
        "{waited:?}: one budget for the run"
    );
}

// ---------------------------------------------------------------------------
// What the AWS service models and guides say real AWS answers

/// `UpdateTrail`'s `ConflictException` (another change under way) is
/// waited out, bounded by the propagation budget, whatever this run wrote.
#[test]
fn a_conflict_on_the_trail_is_waited_out_and_bounded() {
    let fake = converged_with_unencrypted_trail();
    for _ in 0..2 {
        fake.fail_next(
            "UpdateTrail",
            "ConflictException",
            "Another operation is modifying the trail.",
        );
    }
    let (applied, after, waited) = apply_paused(&fake, 120);
    assert!(applied.is_ok(), "{}", applied.unwrap_err().render());
    assert!(!after.has_changes());
    assert_eq!(
        count(&fake, "UpdateTrail"),
        3,
        "two conflicts, then accepted"
    );
    assert_eq!(waited, std::time::Duration::from_secs(3), "1 s, then 2 s");

    // A conflict that does not end: bounded by --propagation-timeout.
    let fake = converged_with_unencrypted_trail();
    for _ in 0..1000 {
        fake.fail_next("UpdateTrail", "ConflictException", "still busy");
    }
    let (applied, _, waited) = apply_paused(&fake, 30);
    let text = applied.expect_err("gives up").render();
    assert!(
        text.contains("ConflictException") && text.contains("still rejected after retrying"),
        "{text}"
    );
    assert!(waited <= std::time::Duration::from_secs(30), "{waited:?}");
    assert!(count(&fake, "UpdateTrail") < 10, "{:?}", fake.calls());
}

/// Right after this run's own `EnableKey` or `CancelKeyDeletion`, KMS and
/// CloudTrail may still see the old state: the writes that follow are
/// retried until they see the new one, and the run converges.
#[test]
fn a_disabled_or_pending_deletion_key_is_repaired_while_its_new_state_propagates() {
    for (broken, first) in [
        (key_disabled as fn(&FakeCloud), "EnableKey"),
        (key_pending_deletion, "CancelKeyDeletion"),
    ] {
        let fake = empty_cloud();
        apply_now(&fake, &desired());
        broken(&fake);
        rotation_off(&fake);
        trail_unencrypted(&fake);
        fake.state.borrow_mut().propagation = Some(std::time::Duration::from_secs(3));
        fake.clear_calls();
        let (applied, after, waited) = apply_paused(&fake, 120);
        assert!(
            applied.is_ok(),
            "{first}: {}",
            applied.unwrap_err().render()
        );
        assert!(!after.has_changes(), "{first}: converged");
        assert_eq!(count(&fake, first), 1, "{first}: {:?}", fake.calls());
        // The writes after the state change were refused while it
        // propagated, then retried.
        assert!(
            count(&fake, "EnableKeyRotation") >= 2,
            "{first}: {:?}",
            fake.calls()
        );
        assert!(
            waited >= std::time::Duration::from_secs(3),
            "{first}: {waited:?}"
        );
        assert!(
            waited < std::time::Duration::from_secs(30),
            "{first}: {waited:?}"
        );
        assert_eq!(only_key(&fake).info.state, crate::aws::KeyState::Enabled);
    }
}

/// A key rescued from pending deletion: KMS reported no rotation before,
/// and may show rotation off for a while after this run's
/// `EnableKeyRotation` (the fake's `read_lag`). The check after apply
/// waits for it instead of failing as if someone had turned it off.
#[test]
fn a_rescued_keys_rotation_shown_late_is_waited_for() {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    key_pending_deletion(&fake);
    rotation_off(&fake);
    fake.state.borrow_mut().read_lag = Some(std::time::Duration::from_secs(3));
    fake.clear_calls();
    let (applied, after, waited) = apply_paused(&fake, 120);
    assert!(applied.is_ok(), "{}", applied.unwrap_err().render());
    assert!(!after.has_changes(), "converged");
    assert_eq!(count(&fake, "EnableKeyRotation"), 1, "{:?}", fake.calls());
    assert!(waited >= std::time::Duration::from_secs(3), "{waited:?}");
    assert!(only_key(&fake).rotation);
}

/// A disabled key whose tags also drifted: KMS shows the new tags before
/// the new state. The check waits for the state rather than take the mix
/// of old and new for someone else's change.
#[test]
fn a_key_showing_its_new_tags_before_its_new_state_is_waited_for() {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    key_disabled(&fake);
    fake.state.borrow_mut().keys[0]
        .tags
        .remove("trailkey:alias");
    fake.state.borrow_mut().propagation = Some(std::time::Duration::from_secs(3));
    fake.clear_calls();
    let (applied, after, waited) = apply_paused(&fake, 120);
    assert!(applied.is_ok(), "{}", applied.unwrap_err().render());
    assert!(!after.has_changes(), "converged");
    assert_eq!(fake.writes(), ["EnableKey", "TagResource"]);
    assert!(waited >= std::time::Duration::from_secs(3), "{waited:?}");
}

/// The same refusals without a state change of this run fail at once.
#[test]
fn a_disabled_key_error_without_this_runs_enable_key_fails_at_once() {
    let fake = converged_with_unencrypted_trail();
    fake.fail_next("UpdateTrail", "KmsKeyDisabledException", "disabled");
    let (applied, _, waited) = apply_paused(&fake, 120);
    assert!(applied.is_err());
    assert_eq!(count(&fake, "UpdateTrail"), 1);
    assert_eq!(waited, std::time::Duration::ZERO);
}

/// `KmsException`, which CloudTrail may send for a key it still sees
/// disabled (the model says `KmsKeyDisabledException` is no longer in use),
/// is waited out after this run's own `EnableKey`, and fails at once
/// without it.
#[test]
fn cloudtrails_kms_exception_is_waited_out_only_after_this_runs_enable_key() {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    key_disabled(&fake);
    trail_unencrypted(&fake);
    fake.clear_calls();
    fake.fail_next(
        "UpdateTrail",
        "KmsException",
        "There is an issue with the KMS key",
    );
    let (applied, after, _) = apply_paused(&fake, 120);
    assert!(applied.is_ok(), "{}", applied.unwrap_err().render());
    assert!(!after.has_changes());
    assert_eq!(
        count(&fake, "UpdateTrail"),
        2,
        "refused once, then accepted"
    );

    let fake = converged_with_unencrypted_trail();
    fake.fail_next(
        "UpdateTrail",
        "KmsException",
        "There is an issue with the KMS key",
    );
    let (applied, _, waited) = apply_paused(&fake, 120);
    assert!(applied.is_err());
    assert_eq!(count(&fake, "UpdateTrail"), 1);
    assert_eq!(waited, std::time::Duration::ZERO);
}

/// After this run's `CancelKeyDeletion` then `EnableKey`, KMS may show the
/// key `Disabled` (the state in between) while the `EnableKey` propagates:
/// the check after apply waits for it rather than report a third value.
#[test]
fn the_check_after_apply_waits_out_the_state_between_cancel_and_enable() {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    fake.state.borrow_mut().keys[0].info.state = crate::aws::KeyState::PendingDeletion;
    fake.state.borrow_mut().propagation = Some(std::time::Duration::from_secs(3));
    fake.clear_calls();
    let (applied, after, waited) = apply_paused(&fake, 120);
    assert!(applied.is_ok(), "{}", applied.unwrap_err().render());
    assert!(!after.has_changes());
    let writes = fake.writes();
    assert_eq!(writes[0], "CancelKeyDeletion", "{writes:?}");
    assert!(
        writes.len() > 2 && writes[1..].iter().all(|w| *w == "EnableKey"),
        "EnableKey refused while the key was still seen pending deletion: {writes:?}"
    );
    // The re-read after EnableKey saw Disabled, and was read again.
    assert!(count(&fake, "DescribeKey") >= 3, "{:?}", fake.calls());
    assert!(waited >= std::time::Duration::from_secs(4), "{waited:?}");
}
