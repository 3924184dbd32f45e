//! The warm path observes what cold observe does, for the same AWS state,
//! so that the plan is the same; and it gives up on what it did not expect.

use std::time::SystemTime;

use super::*;
use crate::aws::fake::FakeCloud;
use crate::aws::{EventSelector, EventSelectors};
use crate::plan::Plan;
use crate::testing::*;

/// What a process keeps after observing the converged `fake` cold.
fn kept(fake: &FakeCloud, desired: &Desired) -> Warm<FakeCloud> {
    block_on(async {
        let (observed, keys) = observe(fake, desired).await.unwrap();
        let key = observed.key.as_ref().map(|k| k.info.arn.clone());
        Warm::keep(desired, Facts::of(&observed), key, keys).expect("something to keep")
    })
}

/// The plan and what it was made from, as the reconcile loop makes it.
fn planned(
    fake: &FakeCloud,
    desired: &Desired,
    (observed, keys): (Observed, FakeCloud),
) -> (Plan, Observed) {
    let planner = |o: &Observed| plan::plan(desired, o);
    block_on(crate::reconcile::planned(
        fake, &keys, desired, observed, planner,
    ))
    .unwrap_or_else(|e| panic!("{}", e.render()))
}

/// The state as both paths see it: what the warm path reads up front
/// (the trail's tags) and cold observe only when a plan asks for it, left
/// out.
fn comparable(mut observed: Observed) -> Observed {
    observed.trail_tags = OnDemand::NotRead;
    observed
}

/// A state of AWS, made from a converged setup.
type State = (&'static str, fn(&FakeCloud));

fn alias_on_another_teams_key(f: &FakeCloud) {
    let mut s = f.state.borrow_mut();
    let mut other = s.keys[0].clone();
    other.info.key_id = "0000aaaa-0000-4000-8000-00000000f00d".to_owned();
    other.info.arn =
        format!("arn:aws:kms:{REGION}:{SECURITY_TOOLING}:key/0000aaaa-0000-4000-8000-00000000f00d");
    other.tags.clear();
    s.keys.push(other);
    s.aliases.insert(
        ALIAS.to_owned(),
        "0000aaaa-0000-4000-8000-00000000f00d".to_owned(),
    );
}

fn alias_deleted(f: &FakeCloud) {
    f.state.borrow_mut().aliases.clear();
}

/// Every trail of the fake on SSE-S3, Control Tower's in the landing-zone cloud too.
fn every_trail_unencrypted(f: &FakeCloud) {
    f.state
        .borrow_mut()
        .trails
        .values_mut()
        .for_each(|t| t.kms_key_id = None);
}

/// Every drift at once, the trail unencrypted. (`everything_at_once`
/// puts the trail on a key the fake does not hold; its pending deletion is
/// a scripted failure of the next `GetKeyRotationStatus`, whichever key it
/// reads, which cold observe's speculative read of that other key takes.
/// KMS refuses it for the key pending deletion only, whoever asks first.)
fn everything_the_trail_unencrypted(f: &FakeCloud) {
    key_pending_deletion(f);
    rotation_off(f);
    policy_kms_default_plus_foreign(f);
    every_trail_unencrypted(f);
    tags_missing(f);
}

/// The states of a setup trailkey converged: as it left it, and every
/// drift the function repairs.
fn states() -> Vec<State> {
    let mut states: Vec<State> = vec![
        ("converged", |_| {}),
        ("trail unencrypted", every_trail_unencrypted),
        ("alias on another team's key", alias_on_another_teams_key),
        ("alias deleted", alias_deleted),
        ("trail stopped", trail_stopped),
        (
            "trail tagged by Control Tower, on the key",
            trail_tagged_by_control_tower,
        ),
        (
            "everything at once, the trail unencrypted",
            everything_the_trail_unencrypted,
        ),
    ];
    states.extend(
        DRIFTS
            .into_iter()
            .filter(|(name, _)| *name != "everything at once"),
    );
    states
}

/// For each state, a process that knew the converged setup observes it
/// warm, and a first run cold: the same state (the trail's tags aside) and
/// the same plan. The trail's tags, read up front by the warm path, are
/// what the cold plan reads when it changes the trail.
fn warm_and_cold_agree(desired: &Desired, cloud: fn() -> FakeCloud, states: &[State]) {
    for (name, drift) in states {
        let warm_cloud = cloud();
        apply_now(&warm_cloud, desired);
        let warm = kept(&warm_cloud, desired);
        drift(&warm_cloud);
        let read = block_on(observe_warm(&warm_cloud, desired, warm, SystemTime::now()))
            .unwrap_or_else(|stale| panic!("{name}: stale: {stale}"));
        let (warm_plan, warm_observed) = planned(&warm_cloud, desired, read);

        let cold_cloud = cloud();
        apply_now(&cold_cloud, desired);
        drift(&cold_cloud);
        let read = block_on(observe(&cold_cloud, desired)).unwrap();
        let (cold_plan, cold_observed) = planned(&cold_cloud, desired, read);

        assert_eq!(warm_plan, cold_plan, "{name}");
        if cold_observed.trail_tags.is_read() {
            assert_eq!(warm_observed.trail_tags, cold_observed.trail_tags, "{name}");
        }
        assert_eq!(
            comparable(warm_observed),
            comparable(cold_observed),
            "{name}"
        );
    }
}

#[test]
fn warm_or_cold_the_management_account_observes_and_plans_the_same() {
    warm_and_cold_agree(&desired(), empty_cloud, &states());
}

#[test]
fn warm_or_cold_the_delegated_administrator_observes_and_plans_the_same() {
    warm_and_cold_agree(
        &desired(),
        || empty_cloud().as_delegated_administrator(),
        &states(),
    );
}

#[test]
fn warm_or_cold_the_landing_zone_observes_and_plans_the_same() {
    // Drifts of the key: Control Tower's trail is the landing zone's.
    let states: [State; 5] = [
        ("converged", |_| {}),
        ("key disabled", key_disabled),
        ("key pending deletion", key_pending_deletion),
        ("rotation off", rotation_off),
        ("a trailkey statement is missing", policy_statement_missing),
    ];
    let desired = ct_desired();
    for (name, drift) in states {
        let warm_cloud = ct_cloud();
        calls_and_rounds(
            &warm_cloud,
            run_command(&warm_cloud, &desired, apply_command()),
        );
        let warm = kept(&warm_cloud, &desired);
        drift(&warm_cloud);
        let read = block_on(observe_warm(&warm_cloud, &desired, warm, SystemTime::now()))
            .unwrap_or_else(|stale| panic!("{name}: stale: {stale}"));
        let (warm_plan, warm_observed) = planned(&warm_cloud, &desired, read);

        let cold_cloud = ct_cloud();
        calls_and_rounds(
            &cold_cloud,
            run_command(&cold_cloud, &desired, apply_command()),
        );
        drift(&cold_cloud);
        let read = block_on(observe(&cold_cloud, &desired)).unwrap();
        let (cold_plan, cold_observed) = planned(&cold_cloud, &desired, read);
        assert_eq!(warm_plan, cold_plan, "{name}");
        assert_eq!(warm_observed, cold_observed, "{name}");
    }
}

/// What the warm path does not expect, and why it gives up on it.
#[test]
fn the_warm_path_gives_up_on_what_it_did_not_expect() {
    type Surprise = (&'static str, fn(&FakeCloud), &'static str);
    let surprises: [Surprise; 7] = [
        (
            "the trail's bucket changed",
            |f| {
                let mut s = f.state.borrow_mut();
                s.trails.get_mut(TRAIL_ARN).unwrap().s3_bucket = "new-logs".to_owned();
            },
            "the trail's bucket changed",
        ),
        (
            "the trail is gone",
            |f| f.state.borrow_mut().trails.clear(),
            "the trail is not among those DescribeTrails lists",
        ),
        (
            "a new delivery error",
            |f| {
                f.state.borrow_mut().trail_status.insert(
                    TRAIL_ARN.to_owned(),
                    crate::aws::TrailStatus {
                        is_logging: true,
                        latest_delivery_error: Some("NoSuchBucket".to_owned()),
                        ..Default::default()
                    },
                );
            },
            "the trail reports a new delivery error",
        ),
        (
            "custom event selectors it did not read",
            |f| {
                f.state.borrow_mut().event_selectors.insert(
                    TRAIL_ARN.to_owned(),
                    EventSelectors {
                        basic: vec![EventSelector {
                            read_write_type: "WriteOnly".to_owned(),
                            include_management_events: true,
                            exclude_management_event_sources: Vec::new(),
                        }],
                        advanced: Vec::new(),
                    },
                );
            },
            "the trail has custom event selectors now",
        ),
        (
            "the kept credentials refused",
            |f| f.fail_next("GetKeyPolicy", "AccessDeniedException", "not allowed"),
            "GetKeyPolicy failed: AccessDeniedException",
        ),
        (
            "the kept credentials expired early",
            |f| {
                f.fail_next(
                    "DescribeKey",
                    "ExpiredTokenException",
                    "The security token included in the request is expired",
                )
            },
            "DescribeKey failed: ExpiredTokenException",
        ),
        (
            "the trail refused",
            |f| f.fail_next("DescribeTrails", "AccessDeniedException", "not allowed"),
            "DescribeTrails failed: AccessDeniedException",
        ),
    ];
    let desired = desired();
    for (name, surprise, why) in surprises {
        let fake = empty_cloud();
        apply_now(&fake, &desired);
        let warm = kept(&fake, &desired);
        surprise(&fake);
        let stale = block_on(observe_warm(&fake, &desired, warm, SystemTime::now()))
            .err()
            .unwrap_or_else(|| panic!("{name}: not stale"));
        assert_eq!(stale.0, why, "{name}");
    }
}

/// The trail's tags, read up front in case the trail changes, refused: they
/// are left unread, as cold observe leaves them, and the plan reads them
/// when it changes the trail (refused again, the plan fails as a cold run's).
#[test]
fn the_trails_tags_refused_are_left_for_the_plan_to_ask_for() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let warm = kept(&fake, &desired);
    fake.fail_next("ListTags", "AccessDeniedException", "not allowed");
    every_trail_unencrypted(&fake);
    let read = block_on(observe_warm(&fake, &desired, warm, SystemTime::now()))
        .unwrap_or_else(|stale| panic!("{stale}"));
    assert!(!read.0.trail_tags.is_read());
    fake.clear_calls();
    let (plan, observed) = planned(&fake, &desired, read);
    assert_eq!(fake.calls(), ["ListTags"]);
    assert!(observed.trail_tags.is_read());
    assert!(plan.changes(crate::plan::Address::TrailEncryption));
}

/// Security Tooling deregistered as CloudTrail's delegated administrator:
/// the warm path, which asks for the delegation every time, gives up.
#[test]
fn the_delegation_is_asked_every_time() {
    let desired = desired();
    let fake = empty_cloud().as_delegated_administrator();
    apply_now(&fake, &desired);
    let warm = kept(&fake, &desired);
    fake.state.borrow_mut().delegated_administrators.clear();
    fake.state.borrow_mut().delegated_administrators.push((
        "config.amazonaws.com".to_owned(),
        SECURITY_TOOLING.to_owned(),
    ));
    let stale =
        block_on(observe_warm(&fake, &desired, warm, SystemTime::now())).expect_err("stale");
    assert!(
        stale.0.contains("not CloudTrail's delegated administrator"),
        "{stale}"
    );
}

/// Nothing is kept without a key, or without the bucket's Region.
#[test]
fn nothing_is_kept_without_a_key_or_the_buckets_region() {
    let desired = desired();
    let fake = empty_cloud();
    block_on(async {
        let (observed, keys) = observe(&fake, &desired).await.unwrap();
        assert!(observed.key.is_none());
        assert!(Warm::keep(&desired, Facts::of(&observed), None, keys).is_none());
    });
    apply_now(&fake, &desired);
    fake.fail_next("HeadBucket", "AccessDenied", "Forbidden");
    block_on(async {
        let (observed, keys) = observe(&fake, &desired).await.unwrap();
        assert!(observed.bucket_region.is_err());
        let key = observed.key.as_ref().map(|k| k.info.arn.clone());
        assert!(Warm::keep(&desired, Facts::of(&observed), key, keys).is_none());
    });
}

/// Credentials within [`RENEW_WITHIN`] of their expiry, or past it, are
/// renewed before any call uses them; others are used as they are.
#[test]
fn credentials_near_their_expiry_are_renewed_before_use() {
    let desired = desired();
    let now = SystemTime::now();
    for (left, renewed) in [
        (Some(RENEW_WITHIN + Duration::from_secs(60)), false),
        (Some(RENEW_WITHIN - Duration::from_secs(60)), true),
        (None, true),
    ] {
        let fake = empty_cloud();
        apply_now(&fake, &desired);
        let mut warm = kept(&fake, &desired);
        warm.keys_mut().expires = Some(match left {
            Some(left) => now + left,
            // Frozen for hours between invocations: expired.
            None => now - Duration::from_secs(3600),
        });
        fake.clear_calls();
        let (_, keys) = block_on(observe_warm(&fake, &desired, warm, now))
            .unwrap_or_else(|stale| panic!("{left:?}: {stale}"));
        assert_eq!(count(&fake, "AssumeRole"), usize::from(renewed), "{left:?}");
        assert!(!fake.calls().contains(&"GetCallerIdentity"));
        let after = keys.expiry().expect("the role's credentials expire");
        assert!(after > now + RENEW_WITHIN, "{left:?}");
    }
}

/// A tag that marks the trail as Control Tower's, put on it after it was
/// encrypted: a plan that leaves the trail as it is refuses nothing, warm
/// (which read the tags) or cold (which did not).
fn trail_tagged_by_control_tower(fake: &FakeCloud) {
    fake.state.borrow_mut().trail_tags.insert(
        TRAIL_ARN.to_owned(),
        BTreeMap::from([(
            "aws-control-tower".to_owned(),
            "managed-by-control-tower".to_owned(),
        )]),
    );
}
