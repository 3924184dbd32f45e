//! Fixtures shared by the unit tests that run trailkey against the
//! in-memory [`FakeCloud`]: the config and the organization they start
//! from, observe, plan and apply in one call, the drifts of a converged
//! setup, and the count of AWS calls and of rounds of them.

use std::future::Future;
use std::path::Path;

use serde_json::{Value, json};

use crate::apply::{ApplyOptions, Done, apply_then};
use crate::aws::fake::FakeCloud;
use crate::aws::{Connect, KeyStore, LandingZones, Management};
use crate::config::Desired;
use crate::error::Error;
use crate::observe::observe;
use crate::plan::{Address, Observed, Plan, Step, plan};

// ---------------------------------------------------------------------------
// The organization and the config the tests start from

pub(crate) const REGION: &str = "us-east-1";
pub(crate) const MANAGEMENT: &str = "333333333333";
pub(crate) const SECURITY_TOOLING: &str = "111111111111";
pub(crate) const TRAIL_ARN: &str = "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail";
pub(crate) const ALIAS: &str = "alias/cloudtrail-org-key";
pub(crate) const OTHER_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111111111111:key/99999999-9999-4999-8999-999999999999";

pub(crate) const FROM_SCRATCH: [&str; 4] = [
    "CreateKey",
    "CreateAlias",
    "EnableKeyRotation",
    "UpdateTrail",
];

/// The minimal config: the org trail `org-trail`, in [`REGION`].
pub(crate) fn desired() -> Desired {
    desired_with("")
}

/// The minimal config with `extra` (TOML tables) after it.
pub(crate) fn desired_with(extra: &str) -> Desired {
    desired_from("", extra)
}

/// The minimal config with `settings` (`key = value` lines) in `[trail]`.
pub(crate) fn desired_with_trail(settings: &str) -> Desired {
    desired_from(settings, "")
}

fn desired_from(trail_settings: &str, extra: &str) -> Desired {
    let text = format!(
        r#"
region = "{REGION}"
[accounts]
security_tooling = "{SECURITY_TOOLING}"
log_archive = "222222222222"
[trail]
name = "org-trail"
{trail_settings}
{extra}
"#
    );
    crate::config::parse(Path::new("t.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

/// The config with every option on: log-file validation, key protection
/// with an admin, and declared readers, in `region` (of `partition`).
pub(crate) fn desired_with_everything(region: &str, partition: &str) -> Desired {
    let text = format!(
        r#"
region = "{region}"
[accounts]
security_tooling = "{SECURITY_TOOLING}"
log_archive = "222222222222"
[trail]
name = "org-trail"
log_file_validation = true
[key]
protect = true
admins = ["arn:{partition}:iam::{SECURITY_TOOLING}:role/BreakGlass"]
[readers]
accounts = ["444455556666"]
principals = ["arn:{partition}:iam::777788889999:role/SIEM"]
"#
    );
    crate::config::parse(Path::new("t.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

/// `trailkey apply --auto-approve --format json`, with no retry and no wait.
pub(crate) fn apply_command() -> crate::cli::Command {
    crate::cli::Command::Apply {
        plan: None,
        expect_sha256: None,
        auto_approve: true,
        format: crate::cli::Format::Json,
        policy_retry_timeout: 0,
        propagation_timeout: 0,
        wait_for_delivery: None,
        landing_zone: Default::default(),
    }
}

/// `trailkey plan --detailed-exitcode --format json`.
pub(crate) fn plan_command() -> crate::cli::Command {
    crate::cli::Command::Plan {
        out: None,
        detailed_exitcode: true,
        format: crate::cli::Format::Json,
    }
}

/// An organization with an unencrypted trail and an empty Security Tooling account.
pub(crate) fn empty_cloud() -> FakeCloud {
    FakeCloud::new(REGION, MANAGEMENT, SECURITY_TOOLING, "org-trail")
}

/// A converged organization whose key policy also has a foreign statement.
pub(crate) fn converged_cloud_with_foreign_statement(desired: &Desired) -> FakeCloud {
    let fake = empty_cloud();
    apply_now(&fake, desired);
    edit_policy(&fake, |s| s.push(third_party_statement()));
    assert!(
        !plan_now(&fake, desired).has_changes(),
        "a foreign statement is no drift"
    );
    fake
}

/// A converged fake whose trail someone set back to SSE-S3.
pub(crate) fn converged_with_unencrypted_trail() -> FakeCloud {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    trail_unencrypted(&fake);
    fake.clear_calls();
    fake
}

/// The config of Control Tower's trail through the landing zone.
pub(crate) fn ct_desired() -> crate::config::Desired {
    let text = format!(
        r#"
region = "{REGION}"
[accounts]
security_tooling = "{SECURITY_TOOLING}"
log_archive = "222222222222"
management = "{MANAGEMENT}"
[control_tower]
landing_zone = true
"#
    );
    crate::config::parse(std::path::Path::new("t.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

/// A Control Tower organization: its trail on SSE-S3, a landing zone at
/// 3.3 (3.4 available), no key.
pub(crate) fn ct_cloud() -> crate::aws::fake::FakeCloud {
    let fake = crate::aws::fake::FakeCloud::new(
        REGION,
        MANAGEMENT,
        SECURITY_TOOLING,
        crate::plan::CONTROL_TOWER_TRAIL,
    )
    .with_landing_zone("3.3");
    fake.state
        .borrow_mut()
        .landing_zone
        .as_mut()
        .unwrap()
        .latest_available_version = Some("3.4".to_owned());
    fake
}

// ---------------------------------------------------------------------------
// Runs: observe, plan and apply in one call; a Ui that says yes

/// Runs `f` to completion on a single-threaded runtime, as a run does.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

/// Runs the plan's steps with the default options, and no verification.
pub(crate) async fn apply<M: Management + LandingZones, K: KeyStore>(
    plan: &Plan,
    mgmt: &M,
    keys: &K,
    progress: impl FnMut(Address, &Step),
) -> Result<Vec<Done>, Error> {
    apply_with(plan, mgmt, keys, &ApplyOptions::default(), progress).await
}

/// Runs the plan's steps, and no verification.
pub(crate) async fn apply_with<M: Management + LandingZones, K: KeyStore>(
    plan: &Plan,
    mgmt: &M,
    keys: &K,
    options: &ApplyOptions,
    progress: impl FnMut(Address, &Step),
) -> Result<Vec<Done>, Error> {
    let progress = Steps(std::cell::RefCell::new(progress));
    let aws = (mgmt, keys, mgmt);
    let (done, ()) = apply_then(plan, aws, options, &progress, |_| async {}).await?;
    Ok(done)
}

/// Apply's [`Progress`](crate::apply::Progress) as a closure told each
/// step; waits are not told.
pub(crate) struct Steps<F>(pub(crate) std::cell::RefCell<F>);

impl<F: FnMut(Address, &Step)> crate::apply::Progress for Steps<F> {
    fn step(&self, address: Address, step: &Step) {
        (self.0.borrow_mut())(address, step)
    }

    fn retrying(&self, _: &crate::retry::Retrying) {}

    fn landing_zone(&self, _: &str, _: std::time::Duration, _: std::time::Duration) {}
}

/// Observes `fake` and plans `desired` against it.
pub(crate) async fn observe_and_plan(
    fake: &FakeCloud,
    desired: &Desired,
) -> Result<(Plan, FakeCloud), Error> {
    let (observed, keys): (Observed, FakeCloud) = observe(fake, desired).await?;
    let planner = |o: &Observed| plan(desired, o);
    let (plan, _) = crate::reconcile::planned(fake, &keys, desired, observed, planner).await?;
    Ok((plan, keys))
}

/// One `trailkey apply --auto-approve`, without the printing: observe, plan, apply.
pub(crate) async fn run_apply(
    fake: &FakeCloud,
    desired: &Desired,
) -> Result<(Plan, Vec<Done>), Error> {
    let (planned, keys) = observe_and_plan(fake, desired).await?;
    let done = apply(&planned, fake.management(), &keys, |_, _| {}).await?;
    Ok((planned, done))
}

/// The plan for `desired` against `fake` as it stands.
pub(crate) fn plan_now(fake: &FakeCloud, desired: &Desired) -> Plan {
    block_on(observe_and_plan(fake, desired))
        .unwrap_or_else(|e| panic!("{}", e.render()))
        .0
}

/// [`run_apply`], which must succeed.
pub(crate) fn apply_now(fake: &FakeCloud, desired: &Desired) -> (Plan, Vec<Done>) {
    block_on(run_apply(fake, desired)).unwrap_or_else(|e| panic!("{}", e.render()))
}

/// [`run_apply`], which must fail: its error.
pub(crate) fn apply_error(fake: &FakeCloud, desired: &Desired) -> Error {
    block_on(run_apply(fake, desired)).expect_err("apply fails")
}

/// `trailkey <command>` (the product's code path, `run_online`) against the fake.
pub(crate) async fn run_command(fake: &FakeCloud, desired: &Desired, command: crate::cli::Command) {
    let crate::Dispatch::Online(command, view) = crate::dispatch(command) else {
        panic!("not a command that talks to AWS");
    };
    match crate::run_online(fake, desired, command, view).await {
        Ok(_) => {}
        Err(e) => panic!("{}", e.render()),
    }
}

/// A converged fake and the `destroy --delete-key` plan for it, planned
/// while nothing else uses the key.
pub(crate) fn delete_key_plan(fake: &FakeCloud, desired: &Desired) -> Plan {
    apply_now(fake, desired);
    block_on(async {
        let (observed, keys) = observe(fake, desired).await.unwrap();
        let key_id = &observed.key.as_ref().unwrap().info.key_id;
        let users = crate::observe::key_users(fake, &keys, key_id)
            .await
            .unwrap();
        plan_destroy_now(fake, &keys, desired, observed, Some((7, &users)))
            .await
            .unwrap()
    })
}

/// `destroy`'s plan from `observed`, with the reads planning asks for.
pub(crate) async fn plan_destroy_now(
    fake: &FakeCloud,
    keys: &FakeCloud,
    desired: &Desired,
    observed: Observed,
    deletion: Option<(i32, &crate::plan::KeyUsers)>,
) -> Result<Plan, Error> {
    let planner = |o: &Observed| crate::plan::plan_destroy(desired, o, deletion);
    let (plan, _) = crate::reconcile::planned(fake, keys, desired, observed, planner).await?;
    Ok(plan)
}

/// A [`crate::reconcile::Ui`] that answers yes and counts what it was asked and told.
#[derive(Default)]
pub(crate) struct Yes {
    pub(crate) confirmed: usize,
    pub(crate) planned_again: usize,
    /// Each landing-zone wait told: the operation and the time waited.
    pub(crate) landing_zone_waits: Vec<(String, std::time::Duration)>,
}

impl crate::reconcile::Ui for Yes {
    fn about_to_apply(&mut self, _: &Plan) {}
    fn confirm(&mut self, _: &Plan) -> Result<(), Error> {
        self.confirmed += 1;
        Ok(())
    }
    fn step(&mut self, _: usize, _: usize, _: Address, _: &Step) {}
    fn planning_again(&mut self, _: &str, _: &Plan) {
        self.planned_again += 1;
    }
    fn waiting(&mut self, _: &crate::retry::Retrying) {}
    fn delivery(&mut self, _: std::time::Duration, _: std::time::Duration) {}

    fn landing_zone(
        &mut self,
        operation: &str,
        waited: std::time::Duration,
        _: std::time::Duration,
    ) {
        self.landing_zone_waits.push((operation.to_owned(), waited));
    }
}

// ---------------------------------------------------------------------------
// What the fake holds, and what was called

/// The AWS operations of the plan's steps, in order.
pub(crate) fn step_operations(p: &Plan) -> Vec<&'static str> {
    p.steps().map(|(_, s)| s.operation()).collect()
}

pub(crate) fn sorted(mut v: Vec<&'static str>) -> Vec<&'static str> {
    v.sort_unstable();
    v
}

/// The single key in the fake, with its policy as JSON.
pub(crate) fn only_key(fake: &FakeCloud) -> crate::aws::fake::FakeKey {
    let s = fake.state.borrow();
    assert_eq!(s.keys.len(), 1, "keys: {:#?}", s.keys);
    s.keys[0].clone()
}

/// The configured trail's `KmsKeyId`.
pub(crate) fn trail_kms_key_id(fake: &FakeCloud) -> Option<String> {
    fake.state.borrow().trails[TRAIL_ARN].kms_key_id.clone()
}

/// A key policy statement trailkey did not write.
pub(crate) fn third_party_statement() -> Value {
    json!({
        "Sid": "ThirdParty",
        "Effect": "Allow",
        "Principal": { "AWS": "arn:aws:iam::444444444444:role/scanner" },
        "Action": "kms:DescribeKey",
        "Resource": "*"
    })
}

/// The statements of a key policy document.
pub(crate) fn statements(policy_text: &str) -> Vec<Value> {
    let policy: Value = serde_json::from_str(policy_text).expect("a JSON policy");
    crate::policy::statements(&policy)
        .into_iter()
        .cloned()
        .collect()
}

/// Changes the stored policy of the only key.
pub(crate) fn edit_policy(fake: &FakeCloud, edit: impl FnOnce(&mut Vec<Value>)) {
    let mut s = fake.state.borrow_mut();
    let key = &mut s.keys[0];
    let mut policy: Value = serde_json::from_str(&key.policy).unwrap();
    edit(policy["Statement"].as_array_mut().unwrap());
    key.policy = serde_json::to_string_pretty(&policy).unwrap();
}

/// How many times `operation` was called since the calls were last cleared.
pub(crate) fn count(fake: &FakeCloud, operation: &str) -> usize {
    fake.calls().iter().filter(|c| **c == operation).count()
}

// ---------------------------------------------------------------------------
// Drifts of a converged setup, each a change to its only key or to the
// configured trail

pub(crate) fn key_disabled(f: &FakeCloud) {
    f.state.borrow_mut().keys[0].info.state = crate::aws::KeyState::from("Disabled");
}

pub(crate) fn key_pending_deletion(f: &FakeCloud) {
    f.state.borrow_mut().keys[0].info.state = crate::aws::KeyState::from("PendingDeletion");
    // KMS does not report rotation for a key pending deletion.
    f.fail_next(
        "GetKeyRotationStatus",
        "KMSInvalidStateException",
        "key is pending deletion",
    );
}

pub(crate) fn rotation_off(f: &FakeCloud) {
    f.state.borrow_mut().keys[0].rotation = false;
}

pub(crate) fn policy_kms_default_plus_foreign(f: &FakeCloud) {
    edit_policy(f, |s| {
        s.retain(|st| !crate::policy::is_ours(st));
        s.insert(
            0,
            json!({
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": { "AWS": "arn:aws:iam::111111111111:root" },
                "Action": "kms:*",
                "Resource": "*"
            }),
        );
    });
}

pub(crate) fn policy_statement_missing(f: &FakeCloud) {
    edit_policy(f, |s| {
        s.retain(|st| st["Sid"] != "TrailkeyCloudTrailEncrypt")
    });
}

pub(crate) fn trail_on_another_key(f: &FakeCloud) {
    let mut s = f.state.borrow_mut();
    s.trails.get_mut(TRAIL_ARN).unwrap().kms_key_id = Some(OTHER_KEY_ARN.to_owned());
}

pub(crate) fn trail_names_the_alias(f: &FakeCloud) {
    let mut s = f.state.borrow_mut();
    s.trails.get_mut(TRAIL_ARN).unwrap().kms_key_id = Some(ALIAS.to_owned());
}

pub(crate) fn trail_unencrypted(f: &FakeCloud) {
    let mut s = f.state.borrow_mut();
    s.trails.get_mut(TRAIL_ARN).unwrap().kms_key_id = None;
}

pub(crate) fn trail_stopped(f: &FakeCloud) {
    let mut s = f.state.borrow_mut();
    s.trail_status
        .entry(TRAIL_ARN.to_owned())
        .or_default()
        .is_logging = false;
}

pub(crate) fn tags_missing(f: &FakeCloud) {
    f.state.borrow_mut().keys[0].tags.clear();
}

pub(crate) fn everything_at_once(f: &FakeCloud) {
    key_pending_deletion(f);
    rotation_off(f);
    policy_kms_default_plus_foreign(f);
    trail_on_another_key(f);
    tags_missing(f);
}

pub(crate) type Drift = fn(&FakeCloud);

/// Every drift, by name.
pub(crate) const DRIFTS: [(&str, Drift); 9] = [
    ("key disabled", key_disabled),
    ("key pending deletion", key_pending_deletion),
    ("rotation off", rotation_off),
    (
        "policy is the KMS default plus a foreign statement",
        policy_kms_default_plus_foreign,
    ),
    ("a trailkey statement is missing", policy_statement_missing),
    ("trail on another key", trail_on_another_key),
    ("trail names the key by its alias", trail_names_the_alias),
    ("tags missing", tags_missing),
    ("everything at once", everything_at_once),
];

// ---------------------------------------------------------------------------
// Rounds of AWS calls: every call of the fake takes 50 ms on a paused clock,
// so a run's duration tells how many calls were sequential

const LATENCY: std::time::Duration = std::time::Duration::from_millis(50);

/// (calls, rounds) of `f` run against `fake` with [`LATENCY`] per call.
pub(crate) fn calls_and_rounds<F: Future>(fake: &FakeCloud, f: F) -> (usize, u128) {
    fake.clear_calls();
    fake.state.borrow_mut().latency = Some(LATENCY);
    let elapsed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let start = tokio::time::Instant::now();
            f.await;
            start.elapsed()
        });
    fake.state.borrow_mut().latency = None;
    (
        fake.calls().len(),
        elapsed.as_millis() / LATENCY.as_millis(),
    )
}
