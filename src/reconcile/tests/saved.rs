//! `apply FILE` through the product's own loop: exactly the saved plan,
//! with no prompt, or nothing written.

use std::path::Path;

use crate::aws::fake::FakeCloud;
use crate::config::Desired;
use crate::error::Error;
use crate::reconcile::{Command, Outcome};
use crate::saved::{Saved, file_text};
use crate::testing::*;

/// `plan --out` against `fake`, read back as `apply FILE` reads it.
fn saved_plan(fake: &FakeCloud, desired: &Desired) -> Saved {
    let (plan, observed) = block_on(crate::reconcile::plan_to_save(fake, desired))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let text = file_text(desired, &plan, &observed);
    Saved::parse(Path::new("plan.json"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

/// The command `apply FILE` runs.
fn apply() -> Command {
    Command::Apply {
        auto_approve: true,
        policy_retry: std::time::Duration::ZERO,
        propagation_retry: std::time::Duration::ZERO,
        wait_for_delivery: None,
        landing_zone: Some(Default::default()),
        verification: crate::apply::Verification::ReadBack,
    }
}

fn apply_saved(
    fake: &FakeCloud,
    desired: &Desired,
    saved: &Saved,
    ui: &mut Yes,
) -> Result<Outcome, Error> {
    block_on(crate::reconcile::run_saved(
        fake,
        desired,
        apply(),
        saved,
        ui,
    ))
}

#[test]
fn a_saved_plan_is_applied_exactly_without_a_prompt_then_refused_as_stale() {
    let desired = desired();
    let fake = empty_cloud();
    let saved = saved_plan(&fake, &desired);
    assert!(fake.writes().is_empty(), "plan --out writes nothing to AWS");
    let mut ui = Yes::default();
    let Outcome::Applied { done, result, .. } =
        apply_saved(&fake, &desired, &saved, &mut ui).unwrap_or_else(|e| panic!("{}", e.render()))
    else {
        panic!("applied")
    };
    assert_eq!(ui.confirmed, 0, "the saved plan is the approval");
    assert_eq!(fake.writes(), FROM_SCRATCH);
    let saved_steps: Vec<(&str, &str)> = saved
        .steps()
        .iter()
        .map(|s| (s.address.as_str(), s.operation.as_str()))
        .collect();
    assert_eq!(
        done.iter()
            .map(|d| (d.address, d.operation))
            .collect::<Vec<_>>(),
        saved_steps
    );
    assert!(result.converged);
    assert!(!plan_now(&fake, &desired).has_changes());

    // The same file again: what it rests on is gone.
    fake.clear_calls();
    let e = apply_saved(&fake, &desired, &saved, &mut ui).expect_err("stale");
    assert!(matches!(e, Error::Check { .. }), "{e:?}");
    assert!(e.render().contains("is stale"), "{}", e.render());
    assert!(
        e.render().contains("was this plan applied already?"),
        "{}",
        e.render()
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
}

#[test]
fn a_stale_plan_writes_nothing_and_names_what_changed() {
    let desired = desired();
    for (name, drift) in [
        (
            "the trail's key (trail.kms_key_id)",
            trail_on_another_key as Drift,
        ),
        ("the key policy (key.policy)", policy_statement_missing),
        ("the key's state (key.info.state)", key_disabled),
    ] {
        let fake = empty_cloud();
        apply_now(&fake, &desired);
        rotation_off(&fake);
        let saved = saved_plan(&fake, &desired);
        assert!(saved.plan().has_changes());
        drift(&fake);
        fake.clear_calls();
        let mut ui = Yes::default();
        let e = apply_saved(&fake, &desired, &saved, &mut ui).expect_err("stale");
        let text = e.render();
        assert!(text.contains("is stale"), "{name}: {text}");
        assert!(text.contains(&format!("\n  - {name}")), "{name}: {text}");
        assert!(fake.writes().is_empty(), "{name}: {:?}", fake.writes());
        assert_eq!(ui.confirmed, 0);
    }
}

#[test]
fn a_saved_plan_with_no_changes_applies_as_nothing_to_do() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let saved = saved_plan(&fake, &desired);
    assert!(!saved.plan().has_changes());
    fake.clear_calls();
    let mut ui = Yes::default();
    let outcome = apply_saved(&fake, &desired, &saved, &mut ui).unwrap();
    assert!(matches!(outcome, Outcome::Applied { ref done, .. } if done.is_empty()));
    assert!(fake.writes().is_empty());
    assert_eq!(
        fake.calls().len(),
        10,
        "the no-op plan's reads: {:?}",
        fake.calls()
    );
    // Again: still nothing to do, as long as nothing changed.
    apply_saved(&fake, &desired, &saved, &mut ui).unwrap();
    // Something changed: stale, even though apply would now have work.
    rotation_off(&fake);
    fake.clear_calls();
    let e = apply_saved(&fake, &desired, &saved, &mut ui).expect_err("stale");
    assert!(
        e.render()
            .contains("the key's rotation (key.rotation): true when planned, false now"),
        "{}",
        e.render()
    );
    assert!(fake.writes().is_empty());
}

/// A saved plan approves one plan: after a lost race for the alias, the
/// run stops rather than plan again against the winner's key. What it
/// wrote before it stopped is listed: its own key, the alias it lost, the
/// key's rotation (in the same wave as the alias), and the deletion of its
/// own unused key, which the saved plan did not show.
#[test]
fn a_saved_plan_that_loses_the_alias_stops_without_a_second_plan() {
    let desired = desired();
    let fake = empty_cloud();
    let saved = saved_plan(&fake, &desired);
    super::race::another_run_takes_the_alias(&fake);
    let mut ui = Yes::default();
    let e = apply_saved(&fake, &desired, &saved, &mut ui).expect_err("stops");
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
    assert!(
        e.render()
            .contains("hint: the saved plan no longer applies: plan again"),
        "{}",
        e.render()
    );
    assert_eq!((ui.confirmed, ui.planned_again), (0, 0));
    assert_eq!(
        fake.writes(),
        [
            "CreateKey",
            "CreateAlias",
            "EnableKeyRotation",
            "ScheduleKeyDeletion"
        ],
        "every write, in order"
    );
    let s = fake.state.borrow();
    assert_eq!(
        s.keys[0].info.state.as_str(),
        "PendingDeletion",
        "this run's unused key"
    );
    assert_eq!(s.keys[1].info.arn, OTHER_KEY_ARN, "the winner's key");
    assert_eq!(s.keys[1].info.state.as_str(), "Enabled");
    drop(s);
    assert_eq!(trail_kms_key_id(&fake), None);
}

/// What AWS lists in no fixed order (the organization's accounts, the
/// landing zone's remediation types) is read in a fixed one: listed in
/// another order when the plan is applied, the facts are the same, and the
/// saved plan applies.
#[test]
fn a_saved_plan_applies_when_aws_lists_the_same_things_in_another_order() {
    use crate::aws::{Account, AccountState};
    let account = |id: &str| Account {
        id: id.to_owned(),
        name: format!("account {id}"),
        email: format!("{id}@example.com"),
        state: AccountState::Active,
    };
    // A foreign statement lets an account trailkey does not know decrypt:
    // the plan asks for the organization's accounts.
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    edit_policy(&fake, |s| {
        s.push(serde_json::json!({
            "Sid": "Partner",
            "Effect": "Allow",
            "Principal": { "AWS": "arn:aws:iam::444444444444:root" },
            "Action": "kms:Decrypt",
            "Resource": "*"
        }))
    });
    fake.state.borrow_mut().accounts =
        ["444444444444", MANAGEMENT, SECURITY_TOOLING, "222222222222"]
            .map(account)
            .to_vec();
    rotation_off(&fake);
    let saved = saved_plan(&fake, &desired);
    assert!(saved.plan().has_changes());
    fake.state.borrow_mut().accounts.reverse();
    fake.clear_calls();
    apply_saved(&fake, &desired, &saved, &mut Yes::default())
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(fake.calls().contains(&"ListAccounts"), "{:?}", fake.calls());
    assert_eq!(fake.writes(), ["EnableKeyRotation"]);

    // The landing zone's remediation types.
    use super::landing_zone::paused;
    let desired = ct_desired();
    let fake = ct_cloud();
    fake.state
        .borrow_mut()
        .landing_zone
        .as_mut()
        .unwrap()
        .remediation_types = vec!["INHERITANCE_DRIFT".to_owned(), "A_LATER_TYPE".to_owned()];
    let (plan, observed) = paused(crate::reconcile::plan_to_save(&fake, &desired))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let text = file_text(&desired, &plan, &observed);
    let saved = Saved::parse(Path::new("plan.json"), text.as_bytes()).unwrap();
    fake.state
        .borrow_mut()
        .landing_zone
        .as_mut()
        .unwrap()
        .remediation_types
        .reverse();
    paused(crate::reconcile::run_saved(
        &fake,
        &desired,
        apply(),
        &saved,
        &mut Yes::default(),
    ))
    .unwrap_or_else(|e| panic!("{}", e.render()));
}

/// `plan --out` reads what `plan` reads: the no-op plan's 10 calls in 2
/// rounds, and the first plan's calls, each the same as without `--out`.
#[test]
fn plan_out_makes_the_same_calls_in_the_same_rounds_as_plan() {
    let desired = desired();
    let fake = empty_cloud();
    let plan = || crate::cli::Command::Plan {
        detailed_exitcode: false,
        format: crate::cli::Format::Json,
        out: None,
    };
    let first = calls_and_rounds(&fake, run_command(&fake, &desired, plan()));
    let first_calls = sorted(fake.calls());
    let first_out = calls_and_rounds(&fake, async {
        crate::reconcile::plan_to_save(&fake, &desired)
            .await
            .unwrap();
    });
    assert_eq!(first_out, first);
    assert_eq!(sorted(fake.calls()), first_calls);
    apply_now(&fake, &desired);
    let no_op = calls_and_rounds(&fake, run_command(&fake, &desired, plan()));
    assert_eq!(no_op, (10, 2));
    let no_op_out = calls_and_rounds(&fake, async {
        crate::reconcile::plan_to_save(&fake, &desired)
            .await
            .unwrap();
    });
    eprintln!(
        "no-op plan --out: {} calls in {} rounds",
        no_op_out.0, no_op_out.1
    );
    assert_eq!(no_op_out, (10, 2), "{:?}", fake.calls());
}

/// Who runs and where the key is do not change what a saved plan is: from
/// Security Tooling as CloudTrail's delegated administrator, and with
/// Control Tower's landing zone (the key in the management account, the
/// trail set through `UpdateLandingZone`), the saved plan is applied
/// exactly, then refused as stale.
#[test]
fn saved_plans_apply_from_security_tooling_and_through_the_landing_zone() {
    use super::landing_zone::paused;
    let cases = [
        (desired(), empty_cloud().as_delegated_administrator()),
        (ct_desired(), ct_cloud()),
    ];
    for (desired, fake) in cases {
        let (plan, observed) = paused(crate::reconcile::plan_to_save(&fake, &desired))
            .unwrap_or_else(|e| panic!("{}", e.render()));
        let text = file_text(&desired, &plan, &observed);
        let saved = Saved::parse(Path::new("plan.json"), text.as_bytes()).unwrap();
        let planned: Vec<&str> = saved.steps().iter().map(|s| s.operation.as_str()).collect();
        let mut ui = Yes::default();
        paused(crate::reconcile::run_saved(
            &fake,
            &desired,
            apply(),
            &saved,
            &mut ui,
        ))
        .unwrap_or_else(|e| panic!("{}", e.render()));
        assert_eq!(fake.writes(), planned);
        assert_eq!(ui.confirmed, 0);
        fake.clear_calls();
        let e = paused(crate::reconcile::run_saved(
            &fake,
            &desired,
            apply(),
            &saved,
            &mut ui,
        ))
        .expect_err("stale");
        assert!(e.render().contains("is stale"), "{}", e.render());
        assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    }
}
