//! `[control_tower] landing_zone = true` against the fake: the key in the
//! management account, Control Tower's trail set through one
//! `UpdateLandingZone`, the guards before any write, and what a no-op plan
//! costs.

use crate::aws::{LandingZoneStatus, OperationStatus};
use crate::plan::manifest_key;
use crate::testing::*;

const CT_TRAIL_ARN: &str =
    "arn:aws:cloudtrail:us-east-1:333333333333:trail/aws-controltower-BaselineCloudTrail";

/// `run` of `command`, on a paused clock (the landing-zone waits pass at once).
fn run_paused(
    fake: &crate::aws::fake::FakeCloud,
    command: crate::reconcile::Command,
) -> Result<crate::reconcile::Outcome, crate::error::Error> {
    let desired = ct_desired();
    paused(crate::reconcile::run(
        fake,
        &desired,
        command,
        &mut Yes::default(),
    ))
}

/// `f` run to its end on a paused clock: the waits pass at once.
pub(super) fn paused<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f)
}

fn apply() -> crate::reconcile::Command {
    crate::reconcile::Command::Apply {
        auto_approve: true,
        policy_retry: std::time::Duration::ZERO,
        propagation_retry: std::time::Duration::ZERO,
        wait_for_delivery: None,
        landing_zone: Some(Default::default()),
        verification: crate::apply::Verification::ReadBack,
    }
}

#[test]
fn a_first_apply_makes_the_key_in_the_management_account_and_sets_it_through_one_landing_zone_update()
 {
    let fake = ct_cloud();
    let desired = ct_desired();
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, apply_command()));
    eprintln!("first apply: {calls} calls in {rounds} rounds");
    assert_eq!(
        fake.writes(),
        [
            "CreateKey",
            "CreateAlias",
            "EnableKeyRotation",
            "UpdateLandingZone"
        ]
    );
    assert!(
        !fake.calls().contains(&"AssumeRole"),
        "no role in Security Tooling"
    );
    let key = only_key(&fake);
    assert!(
        key.info
            .arn
            .starts_with("arn:aws:kms:us-east-1:333333333333:key/"),
        "{}",
        key.info.arn
    );
    let s = fake.state.borrow();
    assert_eq!(
        s.trails[CT_TRAIL_ARN].kms_key_id.as_deref(),
        Some(key.info.arn.as_str())
    );
    // One update: the live version (3.4 is offered, never taken), and the
    // manifest with only the key added.
    assert_eq!(s.landing_zone_updates.len(), 1);
    let (version, manifest) = &s.landing_zone_updates[0];
    assert_eq!(version, "3.3");
    let mut without_key = manifest.clone();
    without_key["centralizedLogging"]["configurations"]
        .as_object_mut()
        .unwrap()
        .remove("kmsKeyArn");
    let before = ct_cloud().state.borrow().landing_zone.clone().unwrap();
    assert_eq!(without_key, before.manifest);
    assert_eq!(manifest_key(manifest), Some(key.info.arn.as_str()));
    // The policy lets AWS Config in, for the organization's accounts, and
    // the Audit account read.
    let statements = statements(&key.policy);
    let config = statements
        .iter()
        .find(|s| s["Principal"]["Service"] == "config.amazonaws.com")
        .expect("a statement for AWS Config");
    assert_eq!(
        config["Condition"]["StringEquals"]["aws:SourceOrgID"],
        "o-fake00001"
    );
    assert!(key.policy.contains("arn:aws:iam::111111111111:root"));
    assert!(key.policy.contains("arn:aws:iam::333333333333:root"));
}

#[test]
fn a_no_op_plan_costs_three_calls_more_and_no_round_more() {
    let fake = ct_cloud();
    let desired = ct_desired();
    calls_and_rounds(&fake, run_command(&fake, &desired, apply_command()));
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    eprintln!("no-op plan with the landing zone: {calls} calls in {rounds} rounds");
    // Round 1: identity, organization, trails, trail status, the landing
    // zones and the operations in progress (no AssumeRole). Round 2: the
    // alias, the bucket Region, the landing zone, and the trail's key's
    // policy, rotation and tags.
    assert_eq!((calls, rounds), (12, 2), "{:?}", fake.calls());
    assert!(fake.writes().is_empty());
}

#[test]
fn a_second_apply_writes_nothing() {
    let fake = ct_cloud();
    run_paused(&fake, apply()).unwrap();
    fake.clear_calls();
    run_paused(&fake, apply()).unwrap();
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
}

#[test]
fn a_removed_config_statement_is_repaired_without_a_landing_zone_update() {
    let fake = ct_cloud();
    run_paused(&fake, apply()).unwrap();
    edit_policy(&fake, |s| {
        s.retain(|st| st["Sid"] != crate::policy::CONFIG_SID);
    });
    fake.clear_calls();
    run_paused(&fake, apply()).unwrap();
    assert_eq!(fake.writes(), ["PutKeyPolicy"]);
    assert_eq!(fake.state.borrow().landing_zone_updates.len(), 1);
}

#[test]
fn plan_and_apply_refuse_while_an_operation_is_in_progress_or_the_landing_zone_is_not_active() {
    let in_progress = ct_cloud();
    in_progress
        .state
        .borrow_mut()
        .landing_zone_operations
        .push((
            crate::aws::LandingZoneOperation {
                id: "0a1b2c3d-0000-4000-8000-000000000001".to_owned(),
                operation_type: "UPDATE".to_owned(),
                status: OperationStatus::InProgress,
                status_message: None,
            },
            tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
        ));
    let failed = ct_cloud();
    failed
        .state
        .borrow_mut()
        .landing_zone
        .as_mut()
        .unwrap()
        .status = LandingZoneStatus::Failed;
    let none = ct_cloud();
    none.state.borrow_mut().landing_zone = None;
    for (fake, says) in [
        (&in_progress, "0a1b2c3d-0000-4000-8000-000000000001"),
        (&failed, "is FAILED, not ACTIVE"),
        (&none, "no AWS Control Tower landing zone was found"),
    ] {
        for command in [crate::reconcile::Command::Plan, apply()] {
            let e = run_paused(fake, command).expect_err("refused");
            assert!(e.render().contains(says), "{}", e.render());
            assert!(fake.writes().is_empty(), "{:?}", fake.writes());
        }
    }
}

#[test]
fn a_failed_operation_is_an_error_with_control_towers_message() {
    let fake = ct_cloud();
    fake.state.borrow_mut().landing_zone_failure =
        Some("AWSControlTowerBP-BASELINE-CONFIG: InsufficientDeliveryPolicyException".to_owned());
    let e = run_paused(&fake, apply()).expect_err("the operation failed");
    let text = e.render();
    assert!(text.contains("FAILED"), "{text}");
    assert!(
        text.contains("InsufficientDeliveryPolicyException"),
        "{text}"
    );
    assert_eq!(e.aws_code(), Some(crate::aws::code::LANDING_ZONE_FAILED));
}

#[test]
fn an_operation_that_outlasts_the_timeout_is_an_error_naming_it_and_a_rerun_refuses_until_it_ends()
{
    let fake = ct_cloud();
    fake.state.borrow_mut().landing_zone_operation_time = std::time::Duration::from_secs(3 * 3600);
    let e = run_paused(&fake, apply()).expect_err("timed out");
    assert_eq!(e.aws_code(), Some(crate::aws::code::LANDING_ZONE_TIMEOUT));
    let e = run_paused(&fake, apply()).expect_err("still in progress");
    assert!(e.render().contains("in progress"), "{}", e.render());
    assert_eq!(count(&fake, "UpdateLandingZone"), 1);
}

#[test]
fn apply_without_landing_zone_updates_repairs_the_key_and_leaves_the_landing_zone_pending() {
    let fake = ct_cloud();
    let command = crate::reconcile::Command::Apply {
        auto_approve: true,
        policy_retry: std::time::Duration::ZERO,
        propagation_retry: std::time::Duration::ZERO,
        wait_for_delivery: None,
        landing_zone: None,
        verification: crate::apply::Verification::ReadBack,
    };
    let outcome = run_paused(&fake, command).unwrap();
    assert!(!fake.writes().contains(&"UpdateLandingZone"));
    assert!(fake.writes().contains(&"CreateKey"));
    let crate::reconcile::Outcome::Applied { plan, .. } = outcome else {
        panic!("applied");
    };
    assert!(plan.changes(crate::plan::Address::LandingZone));
}

#[test]
fn destroy_removes_the_key_from_the_manifest_and_keeps_every_other_field() {
    let fake = ct_cloud();
    run_paused(&fake, apply()).unwrap();
    let destroy = crate::reconcile::Command::Destroy {
        delete_key: None,
        dry_run: false,
        auto_approve: true,
        landing_zone: Default::default(),
    };
    run_paused(&fake, destroy).unwrap();
    let s = fake.state.borrow();
    assert_eq!(s.trails[CT_TRAIL_ARN].kms_key_id, None);
    let (version, manifest) = s.landing_zone_updates.last().unwrap();
    assert_eq!(version, "3.3");
    assert_eq!(manifest_key(manifest), None);
    let before = ct_cloud().state.borrow().landing_zone.clone().unwrap();
    assert_eq!(*manifest, before.manifest);
}

/// Observes and plans, lets `meanwhile` change the fake, then applies the
/// plan with the default options on a paused clock.
fn apply_after(
    fake: &crate::aws::fake::FakeCloud,
    meanwhile: impl FnOnce(&crate::aws::fake::FakeCloud),
) -> Result<Vec<crate::apply::Done>, crate::error::Error> {
    let desired = ct_desired();
    paused(async {
        let (planned, keys) = observe_and_plan(fake, &desired).await?;
        meanwhile(fake);
        crate::testing::apply(&planned, fake, &keys, |_, _| {}).await
    })
}

#[test]
fn a_landing_zone_changed_between_the_plan_and_the_write_is_not_updated() {
    let fake = ct_cloud();
    let e = apply_after(&fake, |f| {
        let mut s = f.state.borrow_mut();
        let zone = s.landing_zone.as_mut().unwrap();
        zone.manifest["governedRegions"] = serde_json::json!(["us-east-1", "eu-west-1"]);
    })
    .expect_err("refused");
    assert_eq!(e.aws_code(), Some(crate::aws::code::LANDING_ZONE_CHANGED));
    assert!(
        e.render().contains("its manifest changed"),
        "{}",
        e.render()
    );
    assert_eq!(count(&fake, "UpdateLandingZone"), 0);
    // The same for an upgrade made meanwhile, and for another operation.
    let upgraded = ct_cloud();
    let e = apply_after(&upgraded, |f| {
        f.state.borrow_mut().landing_zone.as_mut().unwrap().version = "3.4".to_owned();
    })
    .expect_err("refused");
    assert!(
        e.render().contains("its version is 3.4, not 3.3"),
        "{}",
        e.render()
    );
    assert_eq!(count(&upgraded, "UpdateLandingZone"), 0);
}

#[test]
fn a_read_of_the_operation_that_a_wait_mends_does_not_end_the_wait() {
    let fake = ct_cloud();
    let done = apply_after(&fake, |f| {
        f.fail_next(
            "GetLandingZoneOperation",
            "ThrottlingException",
            "Rate exceeded",
        );
        f.fail_next("GetLandingZoneOperation", "InternalServerException", "oops");
    })
    .unwrap();
    assert!(done.iter().any(|d| d.operation == "UpdateLandingZone"));
    assert!(count(&fake, "GetLandingZoneOperation") >= 3);
    // Any other failure ends it, naming the operation.
    let fake = ct_cloud();
    let e = apply_after(&fake, |f| {
        f.fail_next("GetLandingZoneOperation", "AccessDeniedException", "denied")
    })
    .expect_err("denied");
    assert!(
        e.render()
            .contains("reading operation 00000000-0000-4000-8000-000000000001"),
        "{}",
        e.render()
    );
}

#[test]
fn control_tower_not_seeing_the_new_key_yet_is_waited_for_only_after_this_runs_write() {
    let fake = ct_cloud();
    let done = apply_after(&fake, |f| {
        f.fail_next(
            "UpdateLandingZone",
            "ValidationException",
            "the KMS key is not valid",
        )
    })
    .unwrap();
    assert!(done.iter().any(|d| d.operation == "UpdateLandingZone"));
    assert_eq!(count(&fake, "UpdateLandingZone"), 2);
    // Without a write of this run to the key, it fails at once.
    let fake = ct_cloud();
    run_paused(&fake, apply()).unwrap();
    fake.state
        .borrow_mut()
        .landing_zone
        .as_mut()
        .unwrap()
        .manifest["centralizedLogging"]["configurations"]
        .as_object_mut()
        .unwrap()
        .remove("kmsKeyArn");
    fake.clear_calls();
    fake.fail_next(
        "UpdateLandingZone",
        "ValidationException",
        "the KMS key is not valid",
    );
    let e = run_paused(&fake, apply()).expect_err("refused");
    assert!(e.render().contains("never upgrades"), "{}", e.render());
    assert_eq!(count(&fake, "UpdateLandingZone"), 1);
}

#[test]
fn control_towers_trail_off_the_key_the_manifest_names_is_not_converged() {
    let fake = ct_cloud();
    run_paused(&fake, apply()).unwrap();
    // Someone takes the trail off the key directly; the manifest still names it.
    fake.state
        .borrow_mut()
        .trails
        .get_mut(CT_TRAIL_ARN)
        .unwrap()
        .kms_key_id = None;
    fake.clear_calls();
    let e = run_paused(&fake, apply()).expect_err("not converged");
    assert!(
        e.render().contains("uses no KMS key (SSE-S3)"),
        "{}",
        e.render()
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    // plan reports it.
    let crate::reconcile::Outcome::Planned(plan) =
        run_paused(&fake, crate::reconcile::Command::Plan).unwrap()
    else {
        panic!("a plan");
    };
    assert!(
        plan.findings
            .iter()
            .any(|f| f.message.contains("has not applied its manifest")),
        "{:?}",
        plan.findings
    );
}

#[test]
fn on_a_failed_landing_zone_apply_repairs_the_key_and_still_exits_with_the_landing_zones_error() {
    let fake = ct_cloud();
    run_paused(&fake, apply()).unwrap();
    edit_policy(&fake, |s| {
        s.retain(|st| st["Sid"] != crate::policy::CONFIG_SID);
    });
    fake.state
        .borrow_mut()
        .landing_zone
        .as_mut()
        .unwrap()
        .status = LandingZoneStatus::Failed;
    fake.clear_calls();
    let e = run_paused(&fake, apply()).expect_err("the landing zone is FAILED");
    assert!(
        e.render().contains("is FAILED, not ACTIVE"),
        "{}",
        e.render()
    );
    assert_eq!(fake.writes(), ["PutKeyPolicy"], "the key repaired");
}

#[test]
fn a_run_that_leaves_the_landing_zone_pending_is_not_refused_for_it_while_control_tower_works() {
    let fake = ct_cloud();
    let lambda_apply = || crate::reconcile::Command::Apply {
        auto_approve: true,
        policy_retry: std::time::Duration::ZERO,
        propagation_retry: std::time::Duration::ZERO,
        wait_for_delivery: None,
        landing_zone: None,
        verification: crate::apply::Verification::TakenAtTheirWord,
    };
    run_paused(&fake, lambda_apply()).unwrap();
    // Someone else's operation starts; the landing zone's change is pending.
    fake.state.borrow_mut().landing_zone_operations.push((
        crate::aws::LandingZoneOperation {
            id: "0a1b2c3d-0000-4000-8000-000000000009".to_owned(),
            operation_type: "UPDATE".to_owned(),
            status: OperationStatus::InProgress,
            status_message: None,
        },
        tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
    ));
    fake.clear_calls();
    let crate::reconcile::Outcome::Applied { plan, done, .. } =
        run_paused(&fake, lambda_apply()).unwrap()
    else {
        panic!("applied");
    };
    assert!(done.is_empty() && fake.writes().is_empty());
    assert!(
        plan.changes(crate::plan::Address::LandingZone),
        "still pending"
    );
    // `trailkey apply`, which would make it, is refused.
    let e = run_paused(&fake, apply()).expect_err("refused");
    assert!(e.render().contains("in progress"), "{}", e.render());
}
