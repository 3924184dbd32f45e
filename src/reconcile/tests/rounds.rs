//! Rounds of AWS calls: every call of the fake takes 50 ms on a paused
//! clock, so a run's duration tells how many calls were sequential. The
//! guard tests of `make bench` are here.

use crate::testing::*;

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
    let apply = apply_command();
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
    // Round 2 reads the trail's key (failing), round 3 the alias's key, and
    // round 4 the trail's tags, which planning asks for since the trail
    // changes.
    assert_eq!((calls, rounds), (14, 4), "{:?}", fake.calls());
}

/// Custom event selectors (`HasCustomEventSelectors` in `DescribeTrails`)
/// add `GetEventSelectors` to the second round, beside the bucket Region:
/// one call more, no round more. The default selectors add nothing.
#[test]
fn custom_event_selectors_are_read_in_the_second_round_and_default_ones_not_at_all() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let (calls, _) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    assert!(!fake.calls().contains(&"GetEventSelectors"), "{calls}");

    fake.state.borrow_mut().event_selectors.insert(
        TRAIL_ARN.to_owned(),
        crate::aws::EventSelectors {
            basic: vec![crate::aws::EventSelector {
                read_write_type: "All".to_owned(),
                include_management_events: true,
                exclude_management_event_sources: vec!["kms.amazonaws.com".to_owned()],
            }],
            advanced: Vec::new(),
        },
    );
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    assert_eq!((calls, rounds), (11, 2), "{:?}", fake.calls());
    assert!(fake.calls().contains(&"GetEventSelectors"));
    let planned = plan_now(&fake, &desired);
    assert!(!planned.has_changes(), "a warning, not a change");
    let warning = planned
        .findings
        .iter()
        .find(|f| f.message.contains("ExcludeManagementEventSources"))
        .expect("the blind spot is named");
    assert_eq!(warning.level, crate::plan::Level::Warning);
}
