//! Apply through the in-memory [`FakeCloud`]: what is written, that a rerun
//! converges from any state (a crash between two writes included), and that
//! AWS errors reach the user with a plain-language hint.

use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::aws::Connect;
use crate::aws::fake::FakeCloud;
use crate::config::Desired;
use crate::observe::observe;
use crate::testing::*;

// ---------------------------------------------------------------------------
// From scratch, then idempotent

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

// ---------------------------------------------------------------------------
// Convergence from drifted states

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

// ---------------------------------------------------------------------------
// A crash between two writes

/// How many writes a from-scratch apply makes.
fn from_scratch_writes() -> usize {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    fake.writes().len()
}

/// Crashes after `k` writes, reruns apply, and returns what is wrong, if anything.
fn crash_then_rerun(k: usize) -> Result<(), String> {
    let desired = desired();
    let fake = empty_cloud();
    fake.state.borrow_mut().crash_after_writes = Some(k);
    let e = apply_error(&fake, &desired);
    if !e.to_string().contains("apply stopped at") {
        return Err(format!("crash after {k} writes: unexpected error {e}"));
    }
    assert_eq!(fake.writes(), FROM_SCRATCH[..k], "crash after {k} writes");

    fake.state.borrow_mut().crash_after_writes = None;
    block_on(run_apply(&fake, &desired)).map_err(|e| e.render())?;

    let s = fake.state.borrow();
    let mut problems = Vec::new();
    if s.keys.len() != 1 {
        problems.push(format!("{} keys", s.keys.len()));
    }
    let key = &s.keys[s.keys.len() - 1].info;
    if s.aliases.get(ALIAS) != Some(&key.key_id) {
        problems.push(format!("alias names {:?}", s.aliases.get(ALIAS)));
    }
    if s.trails[TRAIL_ARN].kms_key_id.as_deref() != Some(key.arn.as_str()) {
        problems.push(format!("trail on {:?}", s.trails[TRAIL_ARN].kms_key_id));
    }
    drop(s);
    if plan_now(&fake, &desired).has_changes() {
        problems.push("the final plan has changes".to_owned());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "crash after {k} writes ({}), then rerun: {}",
            FROM_SCRATCH[..k].join(", "),
            problems.join("; ")
        ))
    }
}

#[test]
fn a_rerun_converges_after_a_crash_at_every_write_position() {
    let n = from_scratch_writes();
    assert_eq!(n, FROM_SCRATCH.len());
    let failures: Vec<String> = (0..n).filter_map(|k| crash_then_rerun(k).err()).collect();
    eprintln!(
        "first apply: {n} writes; a crash at write position k = 1..{n} then a rerun converged for {} of {n}",
        n - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Repairing drift on an existing key never creates one, so a crash at any
/// write of the repair converges on the next run.
#[test]
fn a_rerun_converges_after_a_crash_at_every_write_of_a_repair() {
    let desired = desired();
    for (name, drift) in DRIFTS {
        let repair = {
            let fake = converged_cloud_with_foreign_statement(&desired);
            drift(&fake);
            fake.clear_calls();
            apply_now(&fake, &desired);
            fake.writes()
        };
        for k in 0..repair.len() {
            let fake = converged_cloud_with_foreign_statement(&desired);
            drift(&fake);
            fake.clear_calls();
            fake.state.borrow_mut().crash_after_writes = Some(k);
            let e = apply_error(&fake, &desired);
            assert!(
                e.to_string().contains("apply stopped at"),
                "{name}, {k}: {e}"
            );
            assert_eq!(fake.writes(), repair[..k], "{name}, {k}");

            fake.state.borrow_mut().crash_after_writes = None;
            apply_now(&fake, &desired);
            assert!(!plan_now(&fake, &desired).has_changes(), "{name}, {k}");
            let key = only_key(&fake);
            assert_eq!(trail_kms_key_id(&fake), Some(key.info.arn), "{name}, {k}");
            assert!(
                statements(&key.policy).contains(&third_party_statement()),
                "{name}, {k}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// AWS errors reach the user with a hint

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

#[test]
fn an_unknown_trail_is_an_observe_error_pointing_at_trail_name_and_region() {
    // The organization has no trail of that name.
    let fake = FakeCloud::new(REGION, MANAGEMENT, SECURITY_TOOLING, "another-trail");
    let e = block_on(observe(&fake, &desired()))
        .map(|_| ())
        .unwrap_err();
    let text = e.render();
    assert!(text.contains("hint:"), "{text}");
    assert!(
        e.hint().contains("trail.name") && e.hint().contains("region"),
        "{text}"
    );
    assert!(
        text.contains("org-trail") && text.contains(REGION),
        "{text}"
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
}

#[test]
fn a_denied_assume_role_points_at_the_role_name_and_its_trust() {
    let fake = empty_cloud();
    fake.fail_next(
        "AssumeRole",
        "AccessDenied",
        "User is not authorized to perform: sts:AssumeRole",
    );
    let e = block_on(observe(&fake, &desired()))
        .map(|_| ())
        .unwrap_err();
    let text = e.render();
    assert!(
        e.hint().contains("roles.security_tooling") && e.hint().contains("trust"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:iam::111111111111:role/AWSControlTowerExecution"),
        "{text}"
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
}

#[test]
fn a_key_cloudtrail_cannot_find_points_at_region_and_arn() {
    // An existing key: nothing this run wrote explains the error, so it is
    // not waited for.
    let fake = converged_with_unencrypted_trail();
    fake.fail_next(
        "UpdateTrail",
        "KmsKeyNotFoundException",
        "Cannot find KMS key",
    );
    let e = apply_error(&fake, &desired());
    assert_eq!(
        fake.calls().iter().filter(|c| **c == "UpdateTrail").count(),
        1,
        "no retry"
    );
    assert!(
        e.hint().contains("Region") && e.hint().contains("ARN"),
        "{}",
        e.render()
    );
    assert!(e.render().contains("hint:"));
}

#[test]
fn throttling_that_outlasts_the_retries_says_wait_and_run_again() {
    // During apply...
    let fake = empty_cloud();
    fake.fail_next("CreateAlias", "ThrottlingException", "Rate exceeded");
    let e = apply_error(&fake, &desired());
    assert!(
        e.hint().contains("wait") && e.hint().contains("run again"),
        "{}",
        e.render()
    );
    assert!(
        e.to_string()
            .contains("apply stopped at kms_alias (CreateAlias)")
    );

    // ...and during observe.
    let fake = empty_cloud();
    fake.fail_next("DescribeKey", "ThrottlingException", "Rate exceeded");
    let e = block_on(observe(&fake, &desired()))
        .map(|_| ())
        .unwrap_err();
    assert!(
        e.hint().contains("wait") && e.hint().contains("run again"),
        "{}",
        e.render()
    );
    assert!(fake.writes().is_empty());
}

// ---------------------------------------------------------------------------
// Concurrent runs, eventual consistency, and the remaining AWS errors

/// A key as trailkey creates it: its tags and its policy, which CloudTrail
/// accepts for the trail.
fn tagged_key(desired: &Desired, description: &str) -> crate::aws::NewKey {
    let policy = crate::policy::render(&crate::policy::PolicyInputs::of(
        desired, MANAGEMENT, TRAIL_ARN,
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

/// `operation` fails with `code`; the error the user sees carries `hint`.
fn assert_hint(operation: &'static str, code: &str, hint: &str) {
    let desired = desired();
    let fake = empty_cloud();
    fake.fail_next(operation, code, "as AWS says it");
    let e = block_on(run_apply(&fake, &desired)).unwrap_err();
    let text = e.render();
    assert!(text.contains(code), "{text}");
    assert!(text.contains(hint), "{operation} {code}: {text}");
    assert!(!text.contains("testing"), "no credentials in messages");
}

#[test]
fn every_aws_error_the_domain_names_gets_a_plain_language_hint() {
    assert_hint(
        "UpdateTrail",
        "KmsKeyDisabledException",
        "the key is disabled: `trailkey apply` enables it",
    );
    assert_hint(
        "UpdateTrail",
        "NotOrganizationMasterAccountException",
        "organization trails can only be changed from the management account",
    );
    assert_hint(
        "UpdateTrail",
        "OrganizationNotInAllFeaturesModeException",
        "organization trails need AWS Organizations with all features enabled",
    );
    assert_hint(
        "GetCallerIdentity",
        "ExpiredToken",
        "the AWS credentials have expired",
    );
    assert_hint(
        "CreateKey",
        "LimitExceededException",
        "a KMS quota was reached",
    );
    assert_hint(
        "DescribeOrganization",
        "AWSOrganizationsNotInUseException",
        "not in an organization",
    );
}

// ---------------------------------------------------------------------------
// Rounds of AWS calls: every call of the fake takes 50 ms on a paused clock,
// so a run's duration tells how many calls were sequential.

fn plan_command() -> crate::cli::Command {
    crate::cli::Command::Plan {
        detailed_exitcode: true,
        format: crate::cli::Format::Json,
    }
}

#[test]
fn a_no_op_plan_is_ten_calls_in_two_rounds() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    eprintln!("no-op plan: {calls} calls in {rounds} rounds");
    // Round 1: identity, organization, trail, trail status, AssumeRole.
    // Round 2: the alias, the bucket Region, and the trail's key's policy,
    // rotation and tags.
    assert_eq!((calls, rounds), (10, 2), "{:?}", fake.calls());
    let mut counts = std::collections::BTreeMap::new();
    for c in fake.calls() {
        *counts.entry(c).or_insert(0) += 1;
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "each API once: {counts:?}"
    );
}

/// Declared readers, protection and log-file validation change what is
/// written, not what a no-op plan reads.
#[test]
fn a_no_op_plan_with_readers_protection_and_validation_is_still_ten_calls_in_two_rounds() {
    let desired = desired_with_everything(REGION, "aws");
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    assert_eq!((calls, rounds), (10, 2), "{:?}", fake.calls());
}

#[test]
fn a_first_apply_with_its_verification_is_eighteen_calls_in_five_rounds() {
    let desired = desired();
    let fake = empty_cloud();
    let apply = crate::cli::Command::Apply {
        auto_approve: true,
        format: crate::cli::Format::Json,
        policy_retry_timeout: 0,
        propagation_timeout: 0,
        wait_for_delivery: None,
    };
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, apply));
    eprintln!("first apply: {calls} calls in {rounds} rounds");
    // Observe: 5 calls, then the alias, the bucket Region, the key list and
    // the trail's tags (2 rounds). Apply: CreateKey; CreateAlias with
    // EnableKeyRotation; UpdateTrail (3 rounds). The verification (the
    // trail status, the alias and the new key's policy, rotation and tags)
    // runs with UpdateTrail, whose answer is the trail after apply.
    assert_eq!((calls, rounds), (18, 5), "{:?}", fake.calls());
    assert_eq!(trail_kms_key_id(&fake), Some(only_key(&fake).info.arn));
    // And the plan after it is a no-op: 10 calls in 2 rounds, no write.
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    assert_eq!((calls, rounds), (10, 2), "{:?}", fake.calls());
}

// ---------------------------------------------------------------------------
// Deleting a key: the check right before ScheduleKeyDeletion

/// `destroy --delete-key`, planned on a converged fake while nothing else
/// used the key, then applied, with `meanwhile` done by someone else the
/// moment destroy deletes the alias: after the plan, before the deletion.
fn delete_key_with(
    meanwhile: impl FnOnce(&mut crate::aws::fake::FakeState) + 'static,
) -> (FakeCloud, Result<Vec<Done>, Error>) {
    let desired = desired();
    let fake = empty_cloud();
    let planned = delete_key_plan(&fake, &desired);
    fake.before("DeleteAlias", meanwhile);
    fake.clear_calls();
    let result = block_on(apply(&planned, &fake, &fake, |_, _| {}));
    (fake, result)
}

fn assert_deletion_refused(fake: &FakeCloud, result: Result<Vec<Done>, Error>, says: &str) {
    let text = result.expect_err("the deletion is refused").render();
    assert!(text.contains("--delete-key refused"), "{text}");
    assert!(text.contains(says), "{text}");
    // What destroy did before the check is said.
    assert!(text.contains("done: UpdateTrail"), "{text}");
    assert!(text.contains(&format!("DeleteAlias {ALIAS}")), "{text}");
    assert_eq!(fake.writes(), ["UpdateTrail", "DeleteAlias"], "no deletion");
    assert_eq!(only_key(fake).info.state.as_str(), "Enabled");
}

#[test]
fn a_trail_that_starts_using_the_key_after_the_plan_stops_the_deletion() {
    // While destroy runs, another team points its trail, homed in another
    // Region, at the key through an alias of its own.
    let other = "arn:aws:cloudtrail:eu-west-1:333333333333:trail/team-x";
    let (fake, result) = delete_key_with(move |s| {
        s.regions = [
            ("us-east-1", "ENABLED_BY_DEFAULT"),
            ("eu-west-1", "ENABLED"),
        ]
        .map(|(r, status)| (r.to_owned(), status.to_owned()))
        .to_vec();
        let key_id = s.keys[0].info.key_id.clone();
        s.aliases.insert("alias/team-x".to_owned(), key_id);
        let mut trail = s.trails[TRAIL_ARN].clone();
        trail.name = "team-x".to_owned();
        trail.arn = other.to_owned();
        trail.home_region = "eu-west-1".to_owned();
        trail.kms_key_id = Some("alias/team-x".to_owned());
        s.trails.insert(other.to_owned(), trail);
    });
    assert_deletion_refused(&fake, result, other);
}

#[test]
fn a_key_whose_created_mark_is_gone_by_then_is_not_deleted() {
    let (fake, result) = delete_key_with(|s| {
        s.keys[0].tags.remove("trailkey:created");
    });
    assert_deletion_refused(&fake, result, "trailkey manages it but did not create it");
}

#[test]
fn a_trail_left_on_the_key_is_not_exempt_right_before_the_deletion() {
    // Someone points the configured trail back at the key right after
    // destroy moved it to SSE-S3.
    let (fake, result) = delete_key_with(|s| {
        let arn = s.keys[0].info.arn.clone();
        s.trails.get_mut(TRAIL_ARN).unwrap().kms_key_id = Some(arn);
    });
    assert_deletion_refused(&fake, result, TRAIL_ARN);
}

#[test]
fn with_nothing_changed_the_deletion_goes_ahead() {
    let (fake, result) = delete_key_with(|_| {});
    result.unwrap();
    assert_eq!(
        fake.writes(),
        ["UpdateTrail", "DeleteAlias", "ScheduleKeyDeletion"]
    );
    assert_eq!(only_key(&fake).info.state.as_str(), "PendingDeletion");
}

/// The Regions of an account with one opt-in Region enabled and one not.
fn four_regions(fake: &FakeCloud) {
    fake.state.borrow_mut().regions = [
        ("us-east-1", "ENABLED_BY_DEFAULT"),
        ("eu-west-1", "ENABLED_BY_DEFAULT"),
        ("af-south-1", "ENABLED"),
        ("me-south-1", "DISABLED"),
    ]
    .map(|(r, s)| (r.to_owned(), s.to_owned()))
    .to_vec();
}

/// A single-Region trail homed in `region`, of another team, whose
/// `KmsKeyId` is `key`.
fn single_region_trail(fake: &FakeCloud, region: &str, name: &str, key: &str) -> String {
    let arn = format!("arn:aws:cloudtrail:{region}:333333333333:trail/{name}");
    let mut s = fake.state.borrow_mut();
    let mut trail = s.trails[TRAIL_ARN].clone();
    trail.name = name.to_owned();
    trail.arn = arn.clone();
    trail.home_region = region.to_owned();
    trail.is_organization_trail = false;
    trail.is_multi_region_trail = false;
    trail.kms_key_id = Some(key.to_owned());
    s.trails.insert(arn.clone(), trail);
    arn
}

/// `destroy --delete-key` planned on a converged fake as it stands: the
/// plan, or why it is refused.
fn plan_delete_key(fake: &FakeCloud, desired: &Desired) -> Result<Plan, Error> {
    block_on(async {
        let (observed, keys) = observe(fake, desired).await.unwrap();
        let key_id = &observed.key.as_ref().unwrap().info.key_id;
        let users = crate::observe::key_users(fake, &keys, key_id).await?;
        crate::plan::plan_destroy(desired, &observed, Some((7, &users)))
    })
}

#[test]
fn a_single_region_trail_of_another_enabled_region_on_the_key_stops_the_deletion() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    four_regions(&fake);
    let key_id = only_key(&fake).info.key_id;
    // By its bare key ID, as check_deletion reads it; not visible from the
    // home Region.
    let other = single_region_trail(&fake, "af-south-1", "team-x", &key_id);
    fake.state.borrow_mut().trails_described_in.clear();
    fake.clear_calls();
    let text = plan_delete_key(&fake, &desired).unwrap_err().render();
    assert!(
        text.contains(&format!(
            "still encrypts trail(s) {other} (home Region af-south-1)"
        )),
        "{text}"
    );
    assert!(
        text.contains("move those trails to another key first"),
        "{text}"
    );
    // The home Region for the plan's own reads, then every enabled Region
    // once; the disabled one never.
    assert_eq!(
        fake.state.borrow().trails_described_in,
        ["us-east-1", "us-east-1", "eu-west-1", "af-south-1"]
    );
    assert!(fake.writes().is_empty());
}

#[test]
fn a_trail_only_in_a_disabled_region_is_not_looked_at() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    four_regions(&fake);
    let arn = only_key(&fake).info.arn;
    single_region_trail(&fake, "me-south-1", "dormant", &arn);
    fake.state.borrow_mut().trails_described_in.clear();
    let planned = plan_delete_key(&fake, &desired).unwrap();
    assert_eq!(
        step_operations(&planned),
        ["UpdateTrail", "DeleteAlias", "ScheduleKeyDeletion"]
    );
    assert!(
        !fake
            .state
            .borrow()
            .trails_described_in
            .contains(&"me-south-1".to_owned())
    );
}

fn event_data_store(name: &str, key: Option<&str>) -> crate::aws::EventDataStore {
    crate::aws::EventDataStore {
        arn: format!("arn:aws:cloudtrail:{REGION}:333333333333:eventdatastore/{name}-0001"),
        name: name.to_owned(),
        status: "ENABLED".to_owned(),
        kms_key_id: key.map(str::to_owned),
    }
}

#[test]
fn an_event_data_store_on_the_key_stops_the_deletion_others_do_not() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let arn = only_key(&fake).info.arn;
    let using = event_data_store("audit-lake", Some(&arn));
    fake.state.borrow_mut().event_data_stores = vec![
        event_data_store("own-key-lake", None),
        event_data_store(
            "other-key-lake",
            Some("arn:aws:kms:us-east-1:111111111111:key/other"),
        ),
        using.clone(),
    ];
    fake.clear_calls();
    let text = plan_delete_key(&fake, &desired).unwrap_err().render();
    assert!(
        text.contains(&format!(
            "encrypts 1 CloudTrail Lake event data store(s): audit-lake ({}, status ENABLED)",
            using.arn
        )),
        "{text}"
    );
    assert!(!text.contains("other-key-lake"), "{text}");
    assert!(text.contains("delete the event data store first"), "{text}");
    let calls = fake.calls();
    assert_eq!(
        calls.iter().filter(|c| **c == "GetEventDataStore").count(),
        3,
        "each listed store is read for its key: {calls:?}"
    );
    assert!(fake.writes().is_empty());
}

#[test]
fn an_event_data_store_deleted_after_the_listing_is_left_out() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let arn = only_key(&fake).info.arn;
    fake.state.borrow_mut().event_data_stores = vec![event_data_store("gone", Some(&arn))];
    fake.before("GetEventDataStore", |s| s.event_data_stores.clear());
    plan_delete_key(&fake, &desired).unwrap();
}

#[test]
fn with_no_other_use_in_any_region_the_deletion_goes_ahead_in_two_rounds_of_reads() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    four_regions(&fake);
    // Other keys' users do not matter.
    let other = "arn:aws:kms:eu-west-1:111111111111:key/other";
    single_region_trail(&fake, "eu-west-1", "team-y", other);
    fake.state.borrow_mut().event_data_stores = vec![event_data_store("lake", Some(other))];
    let (observed, keys) = block_on(observe(&fake, &desired)).unwrap();
    let key_id = observed.key.as_ref().unwrap().info.key_id.clone();
    let (calls, rounds) = calls_and_rounds(&fake, async {
        crate::observe::key_users(&fake, &keys, &key_id)
            .await
            .unwrap();
    });
    // ListRegions, ListEventDataStores and the three KMS reads; then
    // DescribeTrails in the three enabled Regions and GetEventDataStore.
    assert_eq!((calls, rounds), (9, 2), "{:?}", fake.calls());
    let planned = plan_delete_key(&fake, &desired).unwrap();
    fake.clear_calls();
    block_on(apply(&planned, &fake, &fake, |_, _| {})).unwrap();
    assert_eq!(
        fake.writes(),
        ["UpdateTrail", "DeleteAlias", "ScheduleKeyDeletion"]
    );
    assert_eq!(only_key(&fake).info.state.as_str(), "PendingDeletion");
}

#[test]
fn an_event_data_store_that_starts_using_the_key_after_the_plan_stops_the_deletion() {
    let (fake, result) = delete_key_with(|s| {
        let arn = s.keys[0].info.arn.clone();
        s.event_data_stores = vec![event_data_store("late-lake", Some(&arn))];
    });
    assert_deletion_refused(&fake, result, "late-lake");
}

/// Under `key.protect`, with the fake evaluating the key policy for
/// trailkey's own role, `destroy --delete-key` still deletes the key; the
/// same policy refuses another role of the account.
#[test]
fn under_the_protection_trailkeys_role_may_still_delete_the_key_and_another_may_not() {
    let text = format!(
        "region = \"{REGION}\"\n[accounts]\nsecurity_tooling = \"{SECURITY_TOOLING}\"\nlog_archive = \"222222222222\"\n[trail]\nname = \"org-trail\"\n[key]\nprotect = true\n"
    );
    let desired = crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap();
    let fake = empty_cloud();
    let planned = delete_key_plan(&fake, &desired);
    assert!(only_key(&fake).policy.contains(crate::policy::PROTECT_SID));

    // Someone else in Security Tooling is refused.
    fake.state.borrow_mut().caller =
        Some(format!("arn:aws:iam::{SECURITY_TOOLING}:role/Developer"));
    let key_id = only_key(&fake).info.key_id;
    let refused = block_on(fake.schedule_key_deletion(&key_id, 7)).unwrap_err();
    assert_eq!(refused.code, "AccessDeniedException", "{refused:?}");
    assert_eq!(only_key(&fake).info.state.as_str(), "Enabled");

    // trailkey's role is not.
    fake.state.borrow_mut().caller = Some(desired.security_tooling_role_arn());
    fake.clear_calls();
    block_on(apply(&planned, &fake, &fake, |_, _| {})).unwrap();
    assert_eq!(
        fake.writes(),
        ["UpdateTrail", "DeleteAlias", "ScheduleKeyDeletion"]
    );
    assert_eq!(only_key(&fake).info.state.as_str(), "PendingDeletion");
}

// ---------------------------------------------------------------------------
// A run that loses the alias, through the product's own loop

/// Between this run's `CreateKey` and its `CreateAlias`, another run creates
/// its own key (the same kind, policy and tags) and takes the alias.
fn another_run_takes_the_alias(fake: &FakeCloud) {
    fake.before("CreateAlias", |s| {
        let mut winner = s.keys[0].clone();
        winner.info.key_id = "99999999-9999-4999-8999-999999999999".to_owned();
        winner.info.arn = OTHER_KEY_ARN.to_owned();
        winner.rotation = true;
        s.aliases
            .insert(ALIAS.to_owned(), winner.info.key_id.clone());
        s.keys.push(winner);
    });
}

#[test]
fn a_run_that_loses_the_alias_plans_again_and_converges_on_the_winners_key() {
    let desired = desired();
    let fake = empty_cloud();
    another_run_takes_the_alias(&fake);
    let apply = crate::cli::Command::Apply {
        auto_approve: true,
        format: crate::cli::Format::Json,
        policy_retry_timeout: 0,
        propagation_timeout: 0,
        wait_for_delivery: None,
    };
    block_on(run_command(&fake, &desired, apply));
    let s = fake.state.borrow();
    let (ours, winner) = (&s.keys[0], &s.keys[1]);
    assert_eq!(
        ours.info.state.as_str(),
        "PendingDeletion",
        "this run's unused key"
    );
    assert_eq!(winner.info.state.as_str(), "Enabled");
    assert_eq!(s.aliases[ALIAS], winner.info.key_id);
    assert_eq!(
        s.trails[TRAIL_ARN].kms_key_id.as_deref(),
        Some(OTHER_KEY_ARN)
    );
    drop(s);
    // The first attempt stopped before the trail; the second only pointed
    // the trail at the winner's key.
    assert_eq!(
        fake.writes(),
        [
            "CreateKey",
            "CreateAlias",
            "EnableKeyRotation",
            "ScheduleKeyDeletion",
            "UpdateTrail"
        ]
    );
    assert!(!plan_now(&fake, &desired).has_changes());
}

/// Someone confirmed one plan: after a lost race, the loop stops rather than
/// apply a second plan nobody saw.
#[test]
fn a_confirmed_apply_that_loses_the_alias_stops_without_a_second_plan() {
    let desired = desired();
    let fake = empty_cloud();
    another_run_takes_the_alias(&fake);
    let mut ui = Yes::default();
    let command = crate::reconcile::Command::Apply {
        auto_approve: false,
        policy_retry: std::time::Duration::ZERO,
        propagation_retry: std::time::Duration::ZERO,
        wait_for_delivery: None,
    };
    let e = block_on(crate::reconcile::run(&fake, &desired, command, &mut ui)).unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
    assert!(
        e.render().contains("hint: run trailkey again"),
        "{}",
        e.render()
    );
    assert_eq!((ui.confirmed, ui.planned_again), (1, 0));
    assert_eq!(
        fake.writes(),
        [
            "CreateKey",
            "CreateAlias",
            "EnableKeyRotation",
            "ScheduleKeyDeletion"
        ],
        "the trail is not touched"
    );
    assert_eq!(trail_kms_key_id(&fake), None);
}

// ---------------------------------------------------------------------------
// Eventual consistency: this run's own writes, not visible at once

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
                auto_approve: true,
                format: crate::cli::Format::Json,
                policy_retry_timeout: 0,
                propagation_timeout: seconds,
                wait_for_delivery: None,
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
fn the_backoff_doubles_up_to_ten_seconds_within_its_total() {
    let schedule = |total: u64| Backoff {
        total: std::time::Duration::from_secs(total),
        first: std::time::Duration::from_secs(1),
        deadline: None,
    };
    // 1 + 2 + 4 + 8 = 15, then 10 s at a time: 120 s allow 1 + 4 + 10 attempts.
    assert_eq!(schedule(120).attempts(), 15);
    assert_eq!(schedule(0).attempts(), 1);
    assert_eq!(schedule(1).attempts(), 2);
    assert_eq!(
        Backoff::after(std::time::Duration::from_secs(8)),
        std::time::Duration::from_secs(10)
    );
}

// ---------------------------------------------------------------------------
// Proof of delivery: `apply --wait-for-delivery` on a paused clock

/// A [`crate::reconcile::Ui`] that records when it was told of the wait.
#[derive(Default)]
struct Watch {
    /// `(waited, within)` of each [`crate::reconcile::Ui::delivery`].
    delivery: Vec<(std::time::Duration, std::time::Duration)>,
}

impl crate::reconcile::Ui for Watch {
    fn about_to_apply(&mut self, _: &Plan) {}
    fn confirm(&mut self, _: &Plan) -> Result<(), Error> {
        Ok(())
    }
    fn step(&mut self, _: usize, _: usize, _: Address, _: &Step) {}
    fn planning_again(&mut self, _: &str, _: &Plan) {}
    fn waiting(&mut self, _: &str, _: usize, _: usize) {}
    fn delivery(&mut self, waited: std::time::Duration, within: std::time::Duration) {
        self.delivery.push((waited, within));
    }
}

/// What an `apply --auto-approve [--wait-for-delivery=<wait>]` did.
struct Waited {
    outcome: Result<crate::reconcile::Outcome, Error>,
    /// Tokio's clock when each `GetTrailStatus` was called, from the start of the run.
    status_reads: Vec<std::time::Duration>,
    /// The run's duration on the paused clock.
    took: std::time::Duration,
    ui: Watch,
}

/// `apply --auto-approve` with `wait` through the reconcile loop on a
/// paused clock, every `GetTrailStatus` timed.
fn apply_waiting(fake: &FakeCloud, wait: Option<std::time::Duration>) -> Waited {
    let desired = desired();
    fake.clear_calls();
    fake.state.borrow_mut().status_clock = None;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let started = tokio::time::Instant::now();
            let reads = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            for _ in 0..200 {
                let reads = std::rc::Rc::clone(&reads);
                fake.before("GetTrailStatus", move |_| {
                    reads.borrow_mut().push(started.elapsed());
                });
            }
            let command = crate::reconcile::Command::Apply {
                auto_approve: true,
                policy_retry: std::time::Duration::ZERO,
                propagation_retry: std::time::Duration::ZERO,
                wait_for_delivery: wait,
            };
            let mut ui = Watch::default();
            let outcome = crate::reconcile::run(fake, &desired, command, &mut ui).await;
            let took = started.elapsed();
            fake.state
                .borrow_mut()
                .hooks
                .retain(|(op, _)| *op != "GetTrailStatus");
            let status_reads = reads.borrow().clone();
            Waited {
                outcome,
                status_reads,
                took,
                ui,
            }
        })
}

const SECOND: std::time::Duration = std::time::Duration::from_secs(1);

fn delivered(w: &Waited) -> &crate::delivery::Delivery {
    match &w.outcome {
        Ok(crate::reconcile::Outcome::Applied { result, .. }) => {
            result.delivery.as_deref().expect("a delivery")
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => panic!("{}", e.render()),
    }
}

/// The error a wait that proved no delivery ends the run with.
fn wait_error(w: &Waited) -> String {
    delivered(w)
        .failure()
        .unwrap_or_else(|| panic!("no error: {:?}", w.outcome))
        .render()
}

/// The times between the `GetTrailStatus` calls of the wait (the last
/// `polls` calls).
fn gaps(w: &Waited, polls: usize) -> Vec<u64> {
    let reads = &w.status_reads[w.status_reads.len() - polls..];
    reads.windows(2).map(|p| (p[1] - p[0]).as_secs()).collect()
}

#[test]
fn a_healthy_trail_is_proven_by_the_first_delivery_after_the_change() {
    // Without the flag: the first apply's reads, no wait.
    let fake = converged_with_unencrypted_trail();
    let plain = apply_waiting(&fake, None);
    assert!(plain.outcome.is_ok());
    let without = count(&fake, "GetTrailStatus");
    assert_eq!(plain.took, std::time::Duration::ZERO);

    let fake = converged_with_unencrypted_trail();
    fake.state.borrow_mut().delivery_after = Some(30 * SECOND);
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    let delivery = delivered(&w).clone();
    assert_eq!(fake.writes(), ["UpdateTrail"]);
    assert_eq!(delivery.waited_seconds, 30);
    assert_eq!(delivery.status, crate::delivery::Status::Delivered);
    // Polled at once, then every 10 s: at 0, 10, 20 and 30 s.
    let polls = count(&fake, "GetTrailStatus") - without;
    assert_eq!(polls, 4, "{:?}", fake.calls());
    assert_eq!(gaps(&w, polls), [10, 10, 10]);
    assert_eq!(w.took, 30 * SECOND);
    let minutes = 15 * 60 * SECOND;
    assert_eq!(
        w.ui.delivery,
        [
            (std::time::Duration::ZERO, minutes),
            (10 * SECOND, minutes),
            (20 * SECOND, minutes)
        ]
    );
    // In the JSON result, and only there with the flag.
    let Ok(crate::reconcile::Outcome::Applied { plan, done, result }) = w.outcome else {
        unreachable!()
    };
    let json: Value =
        serde_json::from_str(&crate::render::apply_json(&plan, &done, result)).unwrap();
    assert_eq!(json["result"]["delivery"]["status"], "delivered");
    assert_eq!(json["result"]["delivery"]["waited_seconds"], 30);
    assert_eq!(
        json["result"]["delivery"]["latest_delivery_time"],
        delivery.latest_delivery_time.unwrap()
    );
    let Ok(crate::reconcile::Outcome::Applied { plan, done, result }) = plain.outcome else {
        unreachable!()
    };
    let json: Value =
        serde_json::from_str(&crate::render::apply_json(&plan, &done, result)).unwrap();
    assert!(json["result"].get("delivery").is_none(), "{json:#}");
}

#[test]
fn a_delivery_before_the_change_is_no_proof() {
    let fake = converged_with_unencrypted_trail();
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    trail_status_now(
        &fake,
        crate::aws::TrailStatus {
            is_logging: true,
            latest_delivery_time: Some(i64::try_from(an_hour_ago).unwrap()),
            ..Default::default()
        },
    );
    let w = apply_waiting(&fake, Some(60 * SECOND));
    let text = wait_error(&w);
    assert!(
        text.contains("no log file was delivered within 1m after the change"),
        "{text}"
    );
}

/// What `GetTrailStatus` answers for the configured trail from now on.
fn trail_status_now(fake: &FakeCloud, status: crate::aws::TrailStatus) {
    fake.state
        .borrow_mut()
        .trail_status
        .insert(TRAIL_ARN.to_owned(), status);
}

#[test]
fn a_delivery_error_that_appears_fails_with_the_bucket_and_key_policy_hint() {
    let fake = converged_with_unencrypted_trail();
    fake.state.borrow_mut().delivery_error_after = Some((20 * SECOND, "AccessDenied".to_owned()));
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    let text = wait_error(&w);
    assert!(
        text.starts_with(&format!(
            "error: CloudTrail could not deliver a log file of trail {TRAIL_ARN} after the change: AccessDenied\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("bucket policy") && text.contains("key policy"),
        "{text}"
    );
    let delivery = delivered(&w);
    assert_eq!(delivery.status, crate::delivery::Status::Failed);
    assert_eq!(
        delivery.latest_delivery_error.as_deref(),
        Some("AccessDenied")
    );
    assert_eq!(delivery.waited_seconds, 20);
    assert_eq!(w.took, 20 * SECOND, "failed at the poll that saw it");
    assert_eq!(fake.writes(), ["UpdateTrail"], "apply itself went through");
}

#[test]
fn a_delivery_error_from_before_the_run_does_not_fail_the_wait() {
    let fake = converged_with_unencrypted_trail();
    trail_status_now(
        &fake,
        crate::aws::TrailStatus {
            is_logging: true,
            latest_delivery_error: Some("AccessDenied".to_owned()),
            ..Default::default()
        },
    );
    fake.state.borrow_mut().delivery_after = Some(40 * SECOND);
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    assert_eq!(delivered(&w).waited_seconds, 40);
    // Without a delivery, the timeout names the standing error.
    let fake = converged_with_unencrypted_trail();
    trail_status_now(
        &fake,
        crate::aws::TrailStatus {
            is_logging: true,
            latest_delivery_error: Some("AccessDenied".to_owned()),
            ..Default::default()
        },
    );
    let text = wait_error(&apply_waiting(&fake, Some(30 * SECOND)));
    assert!(
        text.contains("latest delivery: never); the trail's latest delivery error, there before this run: AccessDenied"),
        "{text}"
    );
}

#[test]
fn a_trail_that_is_not_logging_fails_at_once_with_the_start_logging_hint() {
    let fake = converged_with_unencrypted_trail();
    trail_status_now(
        &fake,
        crate::aws::TrailStatus {
            is_logging: false,
            ..Default::default()
        },
    );
    fake.state.borrow_mut().delivery_after = Some(SECOND);
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    let text = wait_error(&w);
    assert!(text.contains("is not logging"), "{text}");
    assert!(
        text.contains(&format!(
            "hint: start it with `aws cloudtrail start-logging --name {TRAIL_ARN}`"
        )),
        "{text}"
    );
    assert_eq!(delivered(&w).status, crate::delivery::Status::NotLogging);
    assert_eq!(w.took, std::time::Duration::ZERO);
    assert!(w.ui.delivery.is_empty());
}

#[test]
fn no_delivery_within_the_wait_fails_once_the_deadline_has_passed() {
    let fake = converged_with_unencrypted_trail();
    let w = apply_waiting(&fake, Some(95 * SECOND));
    let text = wait_error(&w);
    assert!(
        text.starts_with("error: no log file was delivered within 1m35s after the change (latest delivery: never)\n"),
        "{text}"
    );
    assert!(
        text.contains("hint: CloudTrail delivers log files about every 5 minutes"),
        "{text}"
    );
    let delivery = delivered(&w);
    assert_eq!(delivery.status, crate::delivery::Status::TimedOut);
    assert_eq!(
        (delivery.waited_seconds, delivery.latest_delivery_time),
        (95, None)
    );
    // Polls at 0, 10, ..., 90 s, and a last one at the deadline.
    assert_eq!(w.took, 95 * SECOND);
    assert_eq!(gaps(&w, 11), [10, 10, 10, 10, 10, 10, 10, 10, 10, 5]);
    assert_eq!(*w.status_reads.last().unwrap(), 95 * SECOND);
}

#[test]
fn a_no_op_apply_waits_for_a_delivery_after_the_start_of_the_run() {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    fake.state.borrow_mut().delivery_after = Some(20 * SECOND);
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    assert_eq!(delivered(&w).waited_seconds, 20);
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    // The observation's read, then polls at 0, 10 and 20 s.
    assert_eq!(count(&fake, "GetTrailStatus"), 4, "{:?}", fake.calls());

    // The same without the flag: the observation's read only.
    let w = apply_waiting(&fake, None);
    assert!(w.outcome.is_ok());
    assert_eq!(count(&fake, "GetTrailStatus"), 1, "{:?}", fake.calls());
    assert_eq!(fake.calls().len(), 10);
}

#[test]
fn apply_wait_for_delivery_through_the_command_line_adapter_succeeds() {
    let desired = desired();
    let fake = converged_with_unencrypted_trail();
    fake.state.borrow_mut().delivery_after = Some(30 * SECOND);
    fake.state.borrow_mut().status_clock = None;
    let command = crate::cli::Command::Apply {
        auto_approve: true,
        format: crate::cli::Format::Json,
        policy_retry_timeout: 0,
        propagation_timeout: 0,
        wait_for_delivery: Some(60 * SECOND),
    };
    let crate::Dispatch::Online(command, view) = crate::dispatch(command) else {
        panic!("apply talks to AWS");
    };
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(crate::run_online(&fake, &desired, command, view));
    assert_eq!(status.map_err(|e| e.render()), Ok(crate::Status::Success));
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

fn desired_with_log_archive_role() -> Desired {
    let text = format!(
        r#"
region = "{REGION}"
[accounts]
security_tooling = "{SECURITY_TOOLING}"
log_archive = "222222222222"
[roles]
log_archive = "LogReader"
[trail]
name = "org-trail"
"#
    );
    crate::config::parse(Path::new("t.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

fn auto_apply() -> crate::reconcile::Command {
    crate::reconcile::Command::Apply {
        auto_approve: true,
        policy_retry: std::time::Duration::ZERO,
        propagation_retry: std::time::Duration::ZERO,
        wait_for_delivery: None,
    }
}

fn deny_wrong_key(bucket: &str, key_arn: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyWrongKMSKey", "Effect": "Deny", "Principal": "*",
         "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/*"),
         "Condition": {"StringNotEquals": {
             "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}}}]})
    .to_string()
}

fn set_log_bucket(fake: &FakeCloud, bucket: crate::aws::LogBucket) {
    let name = fake
        .state
        .borrow()
        .trails
        .values()
        .next()
        .unwrap()
        .s3_bucket
        .clone();
    fake.state.borrow_mut().log_buckets.insert(name, bucket);
}

fn trail_bucket(fake: &FakeCloud) -> String {
    fake.state
        .borrow()
        .trails
        .values()
        .next()
        .unwrap()
        .s3_bucket
        .clone()
}

#[test]
fn a_bucket_policy_denying_the_key_refuses_the_apply_before_any_write() {
    let desired = desired_with_log_archive_role();
    let fake = empty_cloud();
    let other = "arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000000";
    set_log_bucket(
        &fake,
        crate::aws::LogBucket {
            policy: Some(deny_wrong_key(&trail_bucket(&fake), other)),
            encryption: None,
            replication: None,
        },
    );
    let mut ui = Yes::default();
    let e = block_on(crate::reconcile::run(
        &fake,
        &desired,
        auto_apply(),
        &mut ui,
    ))
    .unwrap_err();
    let Error::Check { message, hint, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("\"DenyWrongKMSKey\""), "{message}");
    assert!(hint.contains("StringNotLike"), "{hint}");
    assert_eq!(fake.writes(), Vec::<&str>::new());
    let assumed = fake.state.borrow().assumed.clone();
    assert!(
        assumed.contains(&"arn:aws:iam::222222222222:role/LogReader".to_owned()),
        "{assumed:?}"
    );
    for read in [
        "GetBucketPolicy",
        "GetBucketEncryption",
        "GetBucketReplication",
    ] {
        assert_eq!(
            fake.calls().iter().filter(|c| **c == read).count(),
            1,
            "{read}"
        );
    }
}

#[test]
fn a_bucket_policy_naming_the_key_lets_the_trail_change_and_findings_show() {
    let desired = desired_with_log_archive_role();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let key = only_key(&fake).info.arn;
    // The trail goes back to SSE-S3 (someone reverted it): the plan changes it again.
    fake.state
        .borrow_mut()
        .trails
        .get_mut(TRAIL_ARN)
        .unwrap()
        .kms_key_id = None;
    set_log_bucket(
        &fake,
        crate::aws::LogBucket {
            policy: Some(deny_wrong_key(&trail_bucket(&fake), &key)),
            encryption: Some(crate::aws::BucketEncryption {
                algorithm: "aws:kms".to_owned(),
                kms_key_id: Some(key.clone()),
                bucket_key_enabled: true,
            }),
            replication: Some(crate::aws::Replication {
                role: "arn:aws:iam::222222222222:role/replication".to_owned(),
                rules: vec![crate::aws::ReplicationRule {
                    id: Some("to-dr".to_owned()),
                    enabled: true,
                    replicates_kms_encrypted: false,
                    replica_kms_key_id: None,
                }],
            }),
        },
    );
    let mut ui = Yes::default();
    let outcome = block_on(crate::reconcile::run(
        &fake,
        &desired,
        auto_apply(),
        &mut ui,
    ))
    .unwrap();
    let crate::reconcile::Outcome::Applied { plan, done, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(trail_kms_key_id(&fake), Some(key.clone()));
    let levels: Vec<_> = plan
        .findings
        .iter()
        .map(|f| (f.level, f.message.clone()))
        .collect();
    assert!(
        levels.iter().any(|(l, m)| *l == crate::plan::Level::Warning
            && m.contains("replication of new log files would stop")
            && m.contains(&format!(
                "the replication role arn:aws:iam::222222222222:role/replication then needs kms:Decrypt on {key}"
            ))),
        "{levels:?}"
    );
    assert!(
        levels.iter().any(|(l, m)| *l == crate::plan::Level::Note && m.contains("TrailkeyCloudTrailDecrypt")),
        "{levels:?}"
    );
    assert!(
        !levels.iter().any(|(_, m)| m.contains("was not checked")),
        "{levels:?}"
    );
}

#[test]
fn without_the_role_a_trail_change_notes_the_unchecked_bucket_and_a_no_op_reads_nothing_more() {
    let desired = desired();
    let fake = empty_cloud();
    let (planned, _) = block_on(observe_and_plan(&fake, &desired)).unwrap();
    let notes: Vec<_> = planned
        .findings
        .iter()
        .filter(|f| f.message.contains("Log Archive side"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", planned.findings);
    assert_eq!(notes[0].level, crate::plan::Level::Note);
    assert!(notes[0].message.contains("roles.log_archive"));
    apply_now(&fake, &desired);
    let (planned, _) = block_on(observe_and_plan(&fake, &desired)).unwrap();
    assert!(
        planned
            .findings
            .iter()
            .all(|f| !f.message.contains("Log Archive side"))
    );
    // With the role, a no-op plan does not assume it either.
    fake.clear_calls();
    let mut ui = Yes::default();
    let role = desired_with_log_archive_role();
    block_on(crate::reconcile::run(
        &fake,
        &role,
        crate::reconcile::Command::Plan,
        &mut ui,
    ))
    .unwrap();
    assert!(
        !fake.calls().contains(&"GetBucketPolicy"),
        "{:?}",
        fake.calls()
    );
}

// ---------------------------------------------------------------------------
// What the AWS service models and guides say real AWS answers

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
        fake.state
            .borrow_mut()
            .trails
            .get_mut(TRAIL_ARN)
            .unwrap()
            .kms_key_id = None;
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

/// A key of another team or service, whose key policy does not let
/// trailkey's role in (`FakeState::unreadable`); returns its ARN.
fn add_unreadable_key(fake: &FakeCloud, id: &str) -> String {
    let arn = format!("arn:aws:kms:{REGION}:{SECURITY_TOOLING}:key/{id}");
    let mut s = fake.state.borrow_mut();
    s.keys.push(crate::aws::fake::FakeKey {
        info: crate::aws::KeyInfo {
            key_id: id.to_owned(),
            arn: arn.clone(),
            state: crate::aws::KeyState::Enabled,
            key_spec: crate::aws::KeySpec::SymmetricDefault,
            key_usage: crate::aws::KeyUsage::EncryptDecrypt,
            origin: crate::aws::Origin::AwsKms,
            multi_region: false,
            description: "another team's key".to_owned(),
            key_manager: crate::aws::KeyManager::Customer,
            created: Some(1_600_000_000),
        },
        policy: "{}".to_owned(),
        rotation: true,
        tags: std::collections::BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
    });
    s.unreadable.push(id.to_owned());
    arn
}

/// The search for a key an earlier run made skips keys whose policy shuts
/// trailkey's role out: a first apply converges beside them.
#[test]
fn keys_trailkey_may_not_read_are_skipped_by_the_search() {
    let fake = empty_cloud();
    let theirs = add_unreadable_key(&fake, "aaaaaaaa-0000-4000-8000-000000000001");
    let (planned, _) = apply_now(&fake, &desired());
    assert_eq!(
        sorted(step_operations(&planned)),
        sorted(FROM_SCRATCH.to_vec())
    );
    assert!(
        fake.calls().contains(&"ListResourceTags"),
        "{:?}",
        fake.calls()
    );
    let s = fake.state.borrow();
    assert_eq!(s.keys.len(), 2);
    let ours = s.keys.iter().find(|k| k.info.arn != theirs).unwrap();
    assert_eq!(
        s.trails[TRAIL_ARN].kms_key_id.as_deref(),
        Some(ours.info.arn.as_str())
    );
    drop(s);
    assert!(!plan_now(&fake, &desired()).has_changes());
}

/// When the key the alias names is the unreadable one, the error says its
/// key policy, not trailkey's IAM policies, shuts trailkey out.
#[test]
fn an_alias_on_a_key_trailkey_may_not_read_blames_the_key_policy() {
    let fake = empty_cloud();
    let theirs = add_unreadable_key(&fake, "aaaaaaaa-0000-4000-8000-000000000002");
    fake.state.borrow_mut().aliases.insert(
        ALIAS.to_owned(),
        theirs.rsplit('/').next().unwrap().to_owned(),
    );
    let text = apply_error(&fake, &desired()).render();
    assert!(
        text.contains("reading the key named by the alias (kms:DescribeKey)")
            && text.contains("AWS DescribeKey returned AccessDeniedException"),
        "{text}"
    );
    assert!(
        text.contains("because no resource-based policy allows"),
        "{text}"
    );
    assert!(
        text.contains("hint: the key policy of alias/cloudtrail-org-key does not let arn:aws:iam::111111111111:role/AWSControlTowerExecution use the key; trailkey's IAM policies are not the cause"),
        "{text}"
    );
    assert!(fake.writes().is_empty());
}

/// A denial that blames the caller's own policies is not skipped: it stops
/// the run with the IAM hint, so that a key trailkey made is never missed
/// (and a second one made) because its role lost a permission.
#[test]
fn a_key_read_denied_by_iam_stops_the_search() {
    let fake = empty_cloud();
    add_unreadable_key(&fake, "aaaaaaaa-0000-4000-8000-000000000003");
    fake.state.borrow_mut().unreadable.clear();
    fake.fail_next(
        "ListResourceTags",
        "AccessDeniedException",
        "User: arn:aws:sts::111111111111:assumed-role/AWSControlTowerExecution/trailkey is not authorized to perform: kms:ListResourceTags on resource: k because no identity-based policy allows the kms:ListResourceTags action",
    );
    let text = apply_error(&fake, &desired()).render();
    assert!(text.contains("kms:ListResourceTags"), "{text}");
    assert!(
        text.contains("policies/iam-security-tooling-role.json"),
        "{text}"
    );
    assert!(fake.writes().is_empty());
}

/// A denial that does not blame the key's policy (no message at all, or the
/// caller's own IAM or VPC endpoint policy) may hide trailkey's own key:
/// the search stops rather than skip it, and no second key is made.
#[test]
fn a_denial_that_does_not_blame_the_key_policy_never_makes_a_second_key() {
    for message in [
        "",
        "User: arn:aws:sts::111111111111:assumed-role/AWSControlTowerExecution/trailkey is not authorized to perform: kms:ListResourceTags on resource: k because no VPC endpoint policy allows the kms:ListResourceTags action",
        "User: arn:aws:sts::111111111111:assumed-role/AWSControlTowerExecution/trailkey is not authorized to perform: kms:ListResourceTags on resource: k with an explicit deny in a VPC endpoint policy",
    ] {
        let fake = empty_cloud();
        apply_now(&fake, &desired());
        fake.state.borrow_mut().aliases.clear();
        fake.clear_calls();
        fake.fail_next("ListResourceTags", "AccessDeniedException", message);
        let e = apply_error(&fake, &desired());
        assert_eq!(e.aws_code(), Some("AccessDeniedException"), "{message:?}");
        assert!(fake.writes().is_empty(), "{message:?}: {:?}", fake.writes());
        assert_eq!(fake.state.borrow().keys.len(), 1, "{message:?}");
    }
}

/// trailkey's own key, whose policy someone changed to shut its role out,
/// is the trail's key: it is not skipped (which would make a second key and
/// move the trail), the run stops and names the key policy.
#[test]
fn the_trails_own_key_shut_out_by_its_policy_stops_the_run() {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    let id = only_key(&fake).info.key_id;
    {
        let mut s = fake.state.borrow_mut();
        s.aliases.clear();
        s.unreadable.push(id);
    }
    fake.clear_calls();
    let text = apply_error(&fake, &desired()).render();
    assert!(
        text.contains("the tags of the trail's key (kms:ListResourceTags)"),
        "{text}"
    );
    assert!(
        text.contains("trailkey's IAM policies are not the cause"),
        "{text}"
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    assert_eq!(fake.state.borrow().keys.len(), 1);
}

/// A key skipped by the search is named in the plan's warnings when the
/// plan creates a key: if it was trailkey's own, there would be two.
#[test]
fn a_plan_that_creates_a_key_beside_unreadable_ones_names_them() {
    let fake = empty_cloud();
    let theirs = add_unreadable_key(&fake, "aaaaaaaa-0000-4000-8000-000000000004");
    let planned = plan_now(&fake, &desired());
    let warned = planned.findings.iter().any(|f| {
        f.level == crate::plan::Level::Warning
            && f.message.contains(&theirs)
            && f.message.contains("or there will be two keys")
    });
    assert!(warned, "{:#?}", planned.findings);
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
    fake.state
        .borrow_mut()
        .trails
        .get_mut(TRAIL_ARN)
        .unwrap()
        .kms_key_id = None;
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
        let command = crate::cli::Command::Apply {
            auto_approve: true,
            format: crate::cli::Format::Json,
            policy_retry_timeout: 0,
            propagation_timeout: 0,
            wait_for_delivery: None,
        };
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
fn a_trail_on_another_key_costs_a_round_and_its_reads_are_not_used() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let ours = only_key(&fake).info.arn;
    trail_on_another_key(&fake);
    let (calls, rounds) = calls_and_rounds(&fake, async {
        let (planned, _) = observe_and_plan(&fake, &desired).await.unwrap();
        // The speculative reads of the trail's key failed (it does not
        // exist) and did not matter: the alias's key is the one planned.
        assert_eq!(step_operations(&planned), ["UpdateTrail"]);
        assert_eq!(
            planned.key.as_ref().map(|k| k.arn.as_str()),
            Some(ours.as_str())
        );
    });
    // Round 2 reads the trail's key (failing), round 3 the alias's key.
    assert_eq!((calls, rounds), (13, 3), "{:?}", fake.calls());
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
