//! Warm invocations: what a function process keeps from one run to the
//! next (`observe::Warm`), the rounds of AWS calls that saves, what a
//! repair then costs, and when the process observes cold again. Each
//! invocation is counted as the guard tests count: every call of the fake
//! takes 50 ms on a paused clock ([`calls_and_rounds`]).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::handler_tests::{
    WARM_NO_OP, add_foreign_key, invoke, kms_event, lambda_function, organizations_refuses,
    schedule_event,
};
use crate::aws::fake::FakeCloud;
use crate::config::Desired;
use crate::lambda::{Function, Mode};
use crate::testing::*;

/// (calls, rounds, answer) of one invocation, whatever its answer.
fn answer(
    fake: &FakeCloud,
    function: &Function<FakeCloud>,
    event: Value,
) -> (usize, u128, Result<Value, lambda_runtime::Diagnostic>) {
    let mut answer = None;
    let (calls, rounds) = calls_and_rounds(fake, async {
        answer = Some(function.invoke(event).await);
    });
    (calls, rounds, answer.expect("answered"))
}

/// A function in `mode` on the converged `fake`, after its first (cold)
/// invocation, which finds nothing to do.
fn warmed_up(fake: &FakeCloud, desired: &Desired, mode: Mode) -> Function<FakeCloud> {
    let function = lambda_function(fake, desired, mode);
    let (_, _, r) = invoke(fake, &function, schedule_event());
    assert_eq!(r["plan"]["summary"]["change"], 0, "{r:#}");
    function
}

/// A warm invocation finds nothing to do: 7 calls in 1 round.
fn assert_warm_no_op(fake: &FakeCloud, function: &Function<FakeCloud>) {
    let (calls, rounds, r) = invoke(fake, function, schedule_event());
    assert_eq!((calls, rounds), (7, 1), "{:?}", fake.calls());
    assert_eq!(sorted(fake.calls()), WARM_NO_OP);
    assert_eq!(r["applied"], false, "{r:#}");
}

/// The trail unencrypted, or on another key, behind trailkey's back: a
/// warm function repairs it in 2 rounds. Round 1 reads (the trail's tags,
/// which the Control Tower guard needs before `UpdateTrail`, among them);
/// round 2 is `UpdateTrail`, whose answer is the trail after the write,
/// and with it the verification's reads of the trail status, the alias
/// and the key, which the write does not change. 13 calls.
#[test]
fn a_warm_repair_of_the_trail_is_thirteen_calls_in_two_rounds() {
    let desired = desired();
    for (name, drift) in [
        ("the trail unencrypted", trail_unencrypted as Drift),
        ("the trail on another key", trail_on_another_key as Drift),
    ] {
        let fake = empty_cloud();
        apply_now(&fake, &desired);
        let ours = only_key(&fake).info.arn;
        let function = warmed_up(&fake, &desired, Mode::Apply);
        drift(&fake);
        let (calls, rounds, r) = invoke(&fake, &function, schedule_event());
        if name == "the trail unencrypted" {
            eprintln!("warm lambda repair of the trail: {calls} calls in {rounds} rounds");
        }
        assert_eq!((calls, rounds), (13, 2), "{name}: {:?}", fake.calls());
        assert_eq!(fake.writes(), ["UpdateTrail"], "{name}");
        assert_eq!(r["applied"], true, "{name}: {r:#}");
        assert_eq!(trail_kms_key_id(&fake).as_deref(), Some(ours.as_str()));
        for cold in ["GetCallerIdentity", "DescribeOrganization", "AssumeRole"] {
            assert_eq!(count(&fake, cold), 0, "{name}: {cold}");
        }
        assert_warm_no_op(&fake, &function);
    }
}

/// A drift of the key, or a stopped trail, repaired warm: 2 rounds. Round
/// 1 reads; round 2 is the write (`EnableKey`, `EnableKeyRotation`,
/// `PutKeyPolicy`, `TagResource`, `StartLogging`) and with it the
/// verification's reads. These writes answer nothing of the state they
/// set: the function takes a success at its word for what it wrote, reads
/// the rest, and its next run reads the write back. 14 calls. KMS and
/// CloudTrail show none of these writes to the reads of the same round
/// (the fake's `propagation` and `read_lag`), as AWS may not: the run is
/// not made to wait for them.
#[test]
fn a_warm_repair_of_the_key_is_fourteen_calls_in_two_rounds() {
    let period: Drift = |f| f.state.borrow_mut().keys[0].rotation_period = 730;
    let untagged: Drift = |f| {
        f.state.borrow_mut().keys[0].tags.remove("CostCenter");
    };
    let drifts: [(Drift, &str, &str); 6] = [
        (key_disabled, "EnableKey", ""),
        (rotation_off, "EnableKeyRotation", ""),
        (
            period,
            "EnableKeyRotation",
            "[key]\nrotation_period_days = 180",
        ),
        (policy_statement_missing, "PutKeyPolicy", ""),
        (
            untagged,
            "TagResource",
            "[key]\ntags = { CostCenter = \"security\" }",
        ),
        (trail_stopped, "StartLogging", ""),
    ];
    for (drift, write, extra) in drifts {
        let desired = if write == "StartLogging" {
            desired_with_trail("logging = true")
        } else {
            desired_with(extra)
        };
        let fake = empty_cloud();
        apply_now(&fake, &desired);
        let function = warmed_up(&fake, &desired, Mode::Apply);
        drift(&fake);
        lagging(&fake, Some(Duration::from_secs(10)));
        let (calls, rounds, r) = invoke(&fake, &function, schedule_event());
        lagging(&fake, None);
        if write == "EnableKey" {
            eprintln!("warm lambda repair of the key: {calls} calls in {rounds} rounds");
        }
        assert_eq!((calls, rounds), (14, 2), "{write}: {:?}", fake.calls());
        assert_eq!(fake.writes(), [write]);
        assert_eq!(r["applied"], true, "{r:#}");
        // The next run reads the write back: nothing left to do.
        assert_warm_no_op(&fake, &function);
    }
}

/// KMS does not show a write at once (it is eventually consistent: the
/// fake shows the key's previous state for 10 s after `EnableKey`). The
/// function takes the write at its word and answers in 2 rounds, without
/// waiting; the command line reads the key back and does not call the
/// apply converged while KMS shows it disabled.
#[test]
fn a_write_kms_does_not_show_yet_is_not_waited_for() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = warmed_up(&fake, &desired, Mode::Apply);
    fake.state.borrow_mut().propagation = Some(Duration::from_secs(10));
    key_disabled(&fake);
    let (calls, rounds, r) = invoke(&fake, &function, schedule_event());
    assert_eq!((calls, rounds), (14, 2), "{:?}", fake.calls());
    assert_eq!(fake.writes(), ["EnableKey"]);
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(only_key(&fake).info.state.as_str(), "Enabled");

    // The command line, with no time to wait: the same write, read back.
    key_disabled(&fake);
    fake.state.borrow_mut().previous_states.clear();
    fake.clear_calls();
    let crate::Dispatch::Online(command, view) = crate::dispatch(apply_command()) else {
        panic!("apply talks to AWS");
    };
    let e = block_on(crate::run_online(&fake, &desired, command, view)).unwrap_err();
    assert_eq!(fake.writes(), ["EnableKey"]);
    assert!(
        e.render().contains("does not show the desired state"),
        "{}",
        e.render()
    );
}

/// What the function takes at its word is only what it wrote: a drift the
/// round of the write reads elsewhere (rotation turned off while the
/// policy is put back) is not hidden by it, and the run is not converged.
#[test]
fn a_drift_the_verification_reads_next_to_the_write_is_not_hidden() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = warmed_up(&fake, &desired, Mode::Apply);
    policy_statement_missing(&fake);
    fake.before("PutKeyPolicy", |s| s.keys[0].rotation = false);
    let (_, rounds, r) = answer(&fake, &function, schedule_event());
    assert_eq!(fake.writes(), ["PutKeyPolicy"]);
    assert_eq!(rounds, 2, "{:?}", fake.calls());
    let e = r.expect_err("not converged");
    assert!(format!("{e:?}").contains("rotation"), "{e:?}");
}

/// The next run inside KMS's lag (its own event came early, or another
/// one did) reads the value from before the repair, which is also what
/// someone undoing the repair at once would leave: it writes the same
/// value again, rather than take the read for a write not shown yet, and
/// the run after the lag finds nothing to do.
#[test]
fn a_run_inside_kmss_lag_writes_the_same_value_again_rather_than_trust_it() {
    for (drift, write) in [
        (key_disabled as Drift, "EnableKey"),
        (policy_statement_missing, "PutKeyPolicy"),
    ] {
        let desired = desired();
        let fake = empty_cloud();
        apply_now(&fake, &desired);
        let function = warmed_up(&fake, &desired, Mode::Apply);
        drift(&fake);
        lagging(&fake, Some(Duration::from_secs(10)));
        let (_, _, first) = invoke(&fake, &function, schedule_event());
        let sent = first["writes"].clone();
        let (calls, rounds, again) = invoke(&fake, &function, schedule_event());
        assert_eq!((calls, rounds), (14, 2), "{write}: {:?}", fake.calls());
        assert_eq!(fake.writes(), [write]);
        assert_eq!(again["writes"], sent, "the same write: {again:#}");
        lagging(&fake, None);
        assert_warm_no_op(&fake, &function);
    }
}

/// Every drift of the fake, one at a time and all at once, is repaired by
/// a warm function, whether KMS and CloudTrail show its writes at once or
/// 10 s later (the earlier waves of a bigger repair then waited for, as
/// on the command line); the run after it finds nothing to do.
#[test]
fn every_drift_is_repaired_warm_whether_writes_show_at_once_or_late() {
    for lag in [None, Some(Duration::from_secs(10))] {
        for (name, drift) in DRIFTS {
            let desired = desired();
            let fake = empty_cloud();
            apply_now(&fake, &desired);
            let function = warmed_up(&fake, &desired, Mode::Apply);
            drift(&fake);
            lagging(&fake, lag);
            let (_, _, r) = answer(&fake, &function, schedule_event());
            lagging(&fake, None);
            let r = r.unwrap_or_else(|e| panic!("{name}, lag {lag:?}: {e:?}"));
            assert_eq!(r["applied"], true, "{name}, lag {lag:?}: {r:#}");
            let (_, _, r) = invoke(&fake, &function, schedule_event());
            assert_eq!(r["applied"], false, "{name}, lag {lag:?}: {r:#}");
            assert_eq!(
                r["plan"]["summary"]["change"], 0,
                "{name}, lag {lag:?}: {r:#}"
            );
        }
    }
}

/// A disabled key whose configured tag is also gone: `EnableKey` (a wave
/// of its own, read back), then `TagResource`, taken at its word. KMS may
/// show the tag before the state: the check waits for the state, and the
/// run converges.
#[test]
fn a_disabled_key_with_a_missing_tag_is_repaired_while_kms_shows_one_write_before_the_other() {
    let desired = desired_with("[key]\ntags = { CostCenter = \"security\" }");
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = warmed_up(&fake, &desired, Mode::Apply);
    key_disabled(&fake);
    fake.state.borrow_mut().keys[0].tags.remove("CostCenter");
    // The state shows late, the tags at once.
    fake.state.borrow_mut().propagation = Some(Duration::from_secs(10));
    let (_, rounds, r) = answer(&fake, &function, schedule_event());
    lagging(&fake, None);
    let r = r.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(fake.writes(), ["EnableKey", "TagResource"]);
    assert!(rounds > 3, "waited for the state: {rounds}");
    assert_warm_no_op(&fake, &function);
}

/// KMS and CloudTrail showing writes to reads `lag` after them, or at once.
fn lagging(fake: &FakeCloud, lag: Option<Duration>) {
    let mut s = fake.state.borrow_mut();
    s.propagation = lag;
    s.read_lag = lag;
}

/// A call made with the kept credentials refused (the role's policy
/// changed, the session revoked or expired early): the function forgets
/// what it kept, observes cold (`AssumeRole` again, with who runs and the
/// organization) and succeeds; 7 + 10 calls in 3 rounds. The next
/// invocation is warm again, with the new credentials.
#[test]
fn a_call_the_kept_credentials_are_refused_renews_them_and_the_run_succeeds() {
    let desired = desired();
    for (operation, code) in [
        ("GetKeyPolicy", "AccessDeniedException"),
        ("DescribeKey", "ExpiredTokenException"),
        ("ListResourceTags", "UnrecognizedClientException"),
    ] {
        let fake = empty_cloud();
        apply_now(&fake, &desired);
        let function = warmed_up(&fake, &desired, Mode::Apply);
        fake.fail_next(operation, code, "refused");
        let (calls, rounds, r) = invoke(&fake, &function, schedule_event());
        assert_eq!((calls, rounds), (17, 3), "{code}: {:?}", fake.calls());
        assert_eq!(count(&fake, "AssumeRole"), 1, "{code}");
        assert_eq!(count(&fake, "GetCallerIdentity"), 1, "{code}");
        assert_eq!(
            (r["handled"].clone(), r["applied"].clone()),
            (json!(true), json!(false)),
            "{code}: {r:#}"
        );
        assert_warm_no_op(&fake, &function);
    }
}

/// The alias moved to another team's key: not a fact the process kept but
/// a drift. The known key's answers are dropped, the alias's key is read,
/// and the tag search finds trailkey's key, as a cold run would; the alias
/// is moved back, without a cold start (no `AssumeRole`).
#[test]
fn the_alias_on_another_key_drops_the_known_keys_reads_and_is_repaired() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let ours = only_key(&fake).info.key_id;
    let function = warmed_up(&fake, &desired, Mode::Apply);
    let other = add_foreign_key(&fake, "0000aaaa-0000-4000-8000-00000000f00d");
    fake.state
        .borrow_mut()
        .aliases
        .insert(ALIAS.to_owned(), other);
    let (_, _, r) = invoke(&fake, &function, schedule_event());
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(fake.writes(), ["UpdateAlias"]);
    assert_eq!(count(&fake, "AssumeRole"), 0, "{:?}", fake.calls());
    assert_eq!(fake.state.borrow().aliases[ALIAS], ours);
    assert_warm_no_op(&fake, &function);
}

/// The trail's bucket changed: its Region, which the process kept, is
/// read again, by a cold run. A bucket in another Region than the key is
/// then refused as a first run refuses it, never planned with the Region
/// kept for the old bucket.
#[test]
fn a_changed_bucket_sends_the_function_cold_and_its_region_is_read_again() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = warmed_up(&fake, &desired, Mode::Apply);
    let rebucket = |bucket: &str, region: &str| {
        let mut s = fake.state.borrow_mut();
        s.trails.get_mut(TRAIL_ARN).unwrap().s3_bucket = bucket.to_owned();
        s.bucket_regions
            .insert(bucket.to_owned(), region.to_owned());
    };
    rebucket("new-logs", REGION);
    let (calls, rounds, r) = invoke(&fake, &function, schedule_event());
    assert_eq!((calls, rounds), (17, 3), "{:?}", fake.calls());
    assert_eq!(count(&fake, "HeadBucket"), 1);
    assert_eq!(r["applied"], false, "{r:#}");
    assert_warm_no_op(&fake, &function);

    rebucket("far-logs", "eu-west-1");
    let (_, _, e) = answer(&fake, &function, schedule_event());
    let e = e.expect_err("a bucket in another Region");
    assert!(e.error_message.contains("eu-west-1"), "{e:?}");
    assert_eq!(count(&fake, "HeadBucket"), 1);
    assert!(fake.writes().is_empty());
}

/// The Security Tooling role's credentials within `RENEW_WITHIN` of their
/// expiry, or past it (the process was frozen between invocations), are
/// renewed before the key's reads use them: `AssumeRole` with the trail's
/// reads, then the key's, 8 calls in 2 rounds, without asking again who
/// runs. The renewed ones last an hour: the next invocation is 1 round.
#[test]
fn credentials_near_their_expiry_are_renewed_before_the_reads_that_use_them() {
    let desired = desired();
    let now = SystemTime::now();
    for expires in [
        now + Duration::from_secs(4 * 60),
        now - Duration::from_secs(2 * 3600),
    ] {
        let fake = empty_cloud();
        apply_now(&fake, &desired);
        let function = warmed_up(&fake, &desired, Mode::Apply);
        let before = {
            let mut warm = function.warm.borrow_mut();
            let warm = warm.as_mut().expect("kept");
            let before = warm.expiry().expect("the role's credentials expire");
            assert!(before > now + Duration::from_secs(50 * 60), "{before:?}");
            warm.keys_mut().expires = Some(expires);
            before
        };
        let (calls, rounds, r) = invoke(&fake, &function, schedule_event());
        assert_eq!((calls, rounds), (8, 2), "{:?}", fake.calls());
        let calls = fake.calls();
        let position = |op| calls.iter().position(|c| *c == op).unwrap();
        assert!(
            position("AssumeRole") < position("DescribeKey"),
            "{calls:?}"
        );
        assert_eq!(count(&fake, "GetCallerIdentity"), 0);
        assert_eq!(r["applied"], false, "{r:#}");
        let renewed = function.warm.borrow().as_ref().unwrap().expiry().unwrap();
        assert!(renewed >= before, "{renewed:?}");
        assert_warm_no_op(&fake, &function);
    }
}

/// A run that fails leaves nothing to start from: the next one is cold.
#[test]
fn after_a_failed_run_the_next_one_observes_cold() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = warmed_up(&fake, &desired, Mode::Plan);
    organizations_refuses(&fake);
    let (_, _, e) = answer(&fake, &function, schedule_event());
    assert_eq!(e.expect_err("refused").error_type, "trailkey.AwsError");
    assert!(function.warm.borrow().is_none());
    let (calls, rounds, _) = invoke(&fake, &function, schedule_event());
    assert_eq!((calls, rounds), (10, 2), "{:?}", fake.calls());
    assert_warm_no_op(&fake, &function);
}

/// From Security Tooling as CloudTrail's delegated administrator: no role
/// to renew, and the delegation asked again every time, beside the other
/// reads: 8 calls in 1 round; a repair of the trail 14 calls in 2.
#[test]
fn a_delegated_administrators_warm_invocation_is_eight_calls_in_one_round() {
    let desired = desired();
    let fake = empty_cloud().as_delegated_administrator();
    apply_now(&fake, &desired);
    let function = warmed_up(&fake, &desired, Mode::Apply);
    let (calls, rounds, _) = invoke(&fake, &function, schedule_event());
    eprintln!(
        "warm lambda invocation as delegated administrator: {calls} calls in {rounds} rounds"
    );
    assert_eq!((calls, rounds), (8, 1), "{:?}", fake.calls());
    let mut expected = WARM_NO_OP.to_vec();
    expected.push("ListDelegatedAdministrators");
    assert_eq!(sorted(fake.calls()), sorted(expected));

    trail_unencrypted(&fake);
    let (calls, rounds, r) = invoke(&fake, &function, schedule_event());
    assert_eq!((calls, rounds), (14, 2), "{:?}", fake.calls());
    assert_eq!(fake.writes(), ["UpdateTrail"]);
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(count(&fake, "AssumeRole"), 0);
}

/// Security Tooling deregistered as CloudTrail's delegated administrator:
/// the warm round's `ListDelegatedAdministrators` says so, and the cold run
/// after it fails as a first run does, before any write.
#[test]
fn a_delegation_withdrawn_is_seen_by_the_next_warm_invocation() {
    let desired = desired();
    let fake = empty_cloud().as_delegated_administrator();
    apply_now(&fake, &desired);
    let function = warmed_up(&fake, &desired, Mode::Apply);
    {
        let mut s = fake.state.borrow_mut();
        s.delegated_administrators = vec![(
            "config.amazonaws.com".to_owned(),
            SECURITY_TOOLING.to_owned(),
        )];
        s.trails.get_mut(TRAIL_ARN).unwrap().kms_key_id = None;
    }
    let (_, _, e) = answer(&fake, &function, schedule_event());
    let e = e.expect_err("no longer delegated");
    assert!(
        e.error_message
            .contains("not CloudTrail's delegated administrator"),
        "{e:?}"
    );
    assert!(fake.writes().is_empty());
}

/// With `[control_tower] landing_zone`: the landing zone's ARN is kept too,
/// and read with the rest (`GetLandingZone`, `ListLandingZoneOperations`):
/// 8 calls in 1 round, after the cold 12 in 2. No trail tags: the function
/// never writes Control Tower's trail.
#[test]
fn with_the_landing_zone_a_warm_invocation_is_eight_calls_in_one_round() {
    let desired = ct_desired();
    let fake = ct_cloud();
    let apply = apply_command();
    calls_and_rounds(&fake, run_command(&fake, &desired, apply));
    let function = lambda_function(&fake, &desired, Mode::Apply);
    let (calls, rounds, _) = invoke(&fake, &function, schedule_event());
    assert_eq!((calls, rounds), (12, 2), "{:?}", fake.calls());
    let (calls, rounds, r) = invoke(&fake, &function, schedule_event());
    assert_eq!((calls, rounds), (8, 1), "{:?}", fake.calls());
    assert_eq!(
        sorted(fake.calls()),
        [
            "DescribeKey",
            "DescribeTrails",
            "GetKeyPolicy",
            "GetKeyRotationStatus",
            "GetLandingZone",
            "GetTrailStatus",
            "ListLandingZoneOperations",
            "ListResourceTags",
        ]
    );
    assert_eq!(r["applied"], false, "{r:#}");
    key_disabled(&fake);
    let (_, rounds, r) = invoke(&fake, &function, schedule_event());
    assert_eq!(fake.writes(), ["EnableKey"]);
    assert_eq!(rounds, 2, "{:?}", fake.calls());
    assert_eq!(r["applied"], true, "{r:#}");
}

/// A trail with custom event selectors: `GetEventSelectors` in the warm
/// round too, 8 calls in 1 round.
#[test]
fn custom_event_selectors_are_read_in_the_warm_round() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
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
    let function = lambda_function(&fake, &desired, Mode::Plan);
    let (calls, rounds, _) = invoke(&fake, &function, schedule_event());
    assert_eq!((calls, rounds), (11, 2), "{:?}", fake.calls());
    let (calls, rounds, r) = invoke(&fake, &function, schedule_event());
    assert_eq!((calls, rounds), (8, 1), "{:?}", fake.calls());
    assert_eq!(count(&fake, "GetEventSelectors"), 1);
    let findings = r["plan"]["findings"].to_string();
    assert!(findings.contains("kms.amazonaws.com"), "{r:#}");
}

/// A key event on trailkey's key goes straight to the plan, warm; the
/// process's knowledge of the key comes from the same run.
#[test]
fn a_key_event_on_trailkeys_key_is_answered_warm() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let ours = only_key(&fake).info.arn;
    let function = warmed_up(&fake, &desired, Mode::Apply);
    assert_eq!(
        function
            .warm
            .borrow()
            .as_ref()
            .map(|w| w.key_arn().to_owned()),
        Some(ours.clone())
    );
    key_disabled(&fake);
    let (calls, rounds, r) = invoke(&fake, &function, kms_event("DisableKey", &ours));
    assert_eq!((calls, rounds), (14, 2), "{:?}", fake.calls());
    assert_eq!(r["applied"], true, "{r:#}");
}
