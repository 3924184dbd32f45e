//! Deleting the key with `destroy --delete-key`: the plan is refused while a
//! trail of any enabled Region or a CloudTrail Lake event data store uses
//! the key, and apply checks again right before `ScheduleKeyDeletion`.

use std::path::Path;

use crate::apply::Done;
use crate::aws::KeyStore;
use crate::aws::fake::FakeCloud;
use crate::config::Desired;
use crate::error::Error;
use crate::observe::observe;
use crate::plan::Plan;
use crate::testing::*;

// ---------------------------------------------------------------------------
// The plan: nothing may use the key, in any enabled Region

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
        plan_destroy_now(fake, &keys, desired, observed, Some((7, &users))).await
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

// ---------------------------------------------------------------------------
// Apply: the check made again right before ScheduleKeyDeletion

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
fn an_event_data_store_that_starts_using_the_key_after_the_plan_stops_the_deletion() {
    let (fake, result) = delete_key_with(|s| {
        let arn = s.keys[0].info.arn.clone();
        s.event_data_stores = vec![event_data_store("late-lake", Some(&arn))];
    });
    assert_deletion_refused(&fake, result, "late-lake");
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
