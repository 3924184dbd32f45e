//! A run that loses the alias to a concurrent run, through the product's
//! own loop: it plans again against the winner's key, unless someone
//! confirmed the first plan.

use crate::aws::fake::FakeCloud;
use crate::error::Error;
use crate::testing::*;

/// Between this run's `CreateKey` and its `CreateAlias`, another run creates
/// its own key (the same kind, policy and tags) and takes the alias.
pub(super) fn another_run_takes_the_alias(fake: &FakeCloud) {
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
    let apply = apply_command();
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
        landing_zone: Some(Default::default()),
        verification: crate::apply::Verification::ReadBack,
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
