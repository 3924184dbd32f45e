//! The reconcile loop: observe (read-only) → plan (pure) → confirm → apply
//! exactly that plan → verify, by re-reading what apply changed and planning
//! again. When another run wins the race for the alias, the loop observes
//! and plans again once, against the other run's key.
//!
//! Reconciliation is idempotent: with the same desired state and an
//! unchanged AWS state, a second run plans no change and writes nothing.
//! After a partial failure, the next run observes what was done and
//! converges.
//!
//! The loop talks to AWS only through the [`Connect`] traits and to the
//! user only through [`Ui`]; it returns an [`Outcome`], which the caller
//! renders (the command line in `lib.rs`).

use std::cell::{Cell, RefCell};
use std::time::{Duration, SystemTime};

use futures_util::future::OptionFuture;

use crate::apply::{self, ApplyOptions, ApplyResult, Done};
use crate::aws::{Connect, Management, code};
use crate::config::{Desired, Principal};
use crate::delivery::{self, Delivery, Verdict};
use crate::error::Error;
use crate::observe;
use crate::plan::{self, Address, Need, Observed, OnDemand, Plan, Planned, Step};
use crate::retry::{Retrying, Why};
use crate::saved::Saved;

mod converge;
mod delivery_wait;
mod destroy;

/// What to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Observe and plan; write nothing.
    Plan,
    /// Work out the key policy trailkey would attach; write nothing.
    Policy,
    /// Work out the IAM policy a reader principal (a role or user ARN, as
    /// given on the command line) needs in its own account; write nothing.
    ReaderIam(String),
    /// Converge: apply the plan, then verify that nothing is left to do.
    Apply {
        /// Apply without [`Ui::confirm`]; after a lost race for the alias,
        /// plan again and apply that plan too.
        auto_approve: bool,
        /// How long to retry KMS's `MalformedPolicyDocumentException`.
        policy_retry: Duration,
        /// How long to wait for this run's own writes to propagate.
        propagation_retry: Duration,
        /// After apply (a change or none), how long to wait for CloudTrail
        /// to deliver a log file; `None`: no wait.
        wait_for_delivery: Option<Duration>,
        /// How to wait for a landing-zone operation; `None`: leave the
        /// landing zone's change pending (see `ApplyOptions::landing_zone_updates`).
        landing_zone: Option<LandingZoneWait>,
        /// How the check after apply learns what the last writes did.
        verification: apply::Verification,
    },
    /// Back out: the trail to SSE-S3 and, with `delete_key` (the deletion
    /// window in days), the alias and the key, if trailkey created it and no
    /// trail uses it.
    Destroy {
        delete_key: Option<i32>,
        /// Plan the backout only.
        dry_run: bool,
        /// Apply without [`Ui::confirm`].
        auto_approve: bool,
        /// How to wait for a landing-zone operation.
        landing_zone: LandingZoneWait,
    },
}

/// Who approved the plan an apply carries out.
#[derive(Debug, Clone, Copy)]
struct Approval<'a> {
    /// No prompt: `--auto-approve`, or a saved plan.
    auto_approve: bool,
    /// `apply FILE`: the saved plan, the one plan the run may carry out.
    saved: Option<&'a Saved>,
}

/// How long to wait for a landing-zone operation, and how often to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LandingZoneWait {
    pub timeout: Duration,
    pub poll: Duration,
}

impl Default for LandingZoneWait {
    fn default() -> Self {
        LandingZoneWait {
            timeout: apply::DEFAULT_LANDING_ZONE_TIMEOUT,
            poll: apply::DEFAULT_LANDING_ZONE_POLL,
        }
    }
}

/// What the loop shows the user and asks them, while it runs.
pub trait Ui {
    /// The plan that apply or destroy is about to carry out: for apply also
    /// when it has no change; destroy returns a plan without changes as
    /// [`Outcome::Planned`] instead.
    fn about_to_apply(&mut self, plan: &Plan);
    /// Whether to carry out `plan`; asked only without auto-approve, and
    /// only for a plan with changes. An error stops the run before any write.
    fn confirm(&mut self, plan: &Plan) -> Result<(), Error>;
    /// Step `index` of `total` is about to run.
    fn step(&mut self, index: usize, total: usize, address: Address, step: &Step);
    /// Another run won the race for the alias (`why`); the loop planned
    /// again against its key and will carry out `plan`.
    fn planning_again(&mut self, why: &str, plan: &Plan);
    /// The run is about to wait and try again ([`crate::retry`]).
    fn waiting(&mut self, retrying: &Retrying);
    /// No log file delivered after the change yet: `waited` of at most
    /// `within` have passed, and the loop reads the trail status again soon.
    fn delivery(&mut self, waited: Duration, within: Duration);
    /// The landing-zone operation `operation` has run `waited` of at most
    /// `within`, and apply reads its status again soon.
    fn landing_zone(&mut self, operation: &str, waited: Duration, within: Duration);
}

/// How a reconcile ended.
#[derive(Debug)]
pub enum Outcome {
    /// `Plan`; and `Destroy` as a dry run, or with nothing to back out.
    Planned(Plan),
    /// `Policy`: the whole key policy trailkey would attach.
    Policy(serde_json::Value),
    /// `Apply` or `Destroy` carried out `plan`: `done` lists the writes
    /// (none when the plan had no change) and `result` the verified state.
    Applied {
        plan: Plan,
        done: Vec<Done>,
        result: ApplyResult,
    },
}

/// Runs `command` against AWS through `connect`.
pub async fn run<C: Connect>(
    connect: &C,
    desired: &Desired,
    command: Command,
    ui: &mut impl Ui,
) -> Result<Outcome, Error> {
    run_with(connect, desired, command, None, ui).await
}

/// `apply FILE`: `command`, an auto-approved [`Command::Apply`], carries out
/// the plan made now only if it is `saved` ([`Saved::check`]), and plans
/// nothing else: after a lost race for the alias it stops, as an apply
/// someone confirmed does. The check after the writes plans again as in
/// every apply.
pub async fn run_saved<C: Connect>(
    connect: &C,
    desired: &Desired,
    command: Command,
    saved: &Saved,
    ui: &mut impl Ui,
) -> Result<Outcome, Error> {
    debug_assert!(matches!(
        command,
        Command::Apply {
            auto_approve: true,
            ..
        }
    ));
    run_with(connect, desired, command, Some(saved), ui).await
}

/// `plan --out FILE`: the plan as [`Command::Plan`] makes it (the same
/// reads), and the state it was made from, with what planning asked for.
pub async fn plan_to_save<C: Connect>(
    connect: &C,
    desired: &Desired,
) -> Result<(Plan, Observed), Error> {
    let (observed, keys) = observed(connect, desired).await?;
    let run = Reconcile {
        connect,
        keys: &keys,
        desired,
        landing_zone_updates: true,
    };
    run.plan(observed).await
}

/// Observes, and logs what it found (`-v`).
async fn observed<C: Connect>(
    connect: &C,
    desired: &Desired,
) -> Result<(Observed, C::KeyStore), Error> {
    let (observed, keys) = observe::observe(connect, desired).await?;
    log_observed(&observed);
    Ok((observed, keys))
}

/// `-v`: the trail and key observed.
fn log_observed(observed: &Observed) {
    tracing::info!(
        trail = %observed.trail.arn,
        trail_key = %observed.trail.kms_key_id.as_deref().unwrap_or("none"),
        key = %observed.key.as_ref().map_or("none", |k| k.info.arn.as_str()),
        "observed"
    );
}

/// [`run`], and with `saved`, [`run_saved`].
async fn run_with<C: Connect>(
    connect: &C,
    desired: &Desired,
    command: Command,
    saved: Option<&Saved>,
    ui: &mut impl Ui,
) -> Result<Outcome, Error> {
    let started = SystemTime::now();
    // Bad input fails before any AWS call.
    let reader = match &command {
        Command::ReaderIam(arn) => Some(reader_principal(arn, desired)?),
        _ => None,
    };
    let (observed, keys) = observed(connect, desired).await?;
    let clients = (connect, &keys, desired);
    run_from(clients, command, saved, (observed, started), reader, ui).await
}

/// [`run`] of [`Command::Plan`] or [`Command::Apply`] from a state already
/// observed, with the KMS client it was read with, for a caller that
/// observes on its own: the Lambda function, whose warm invocations
/// observe from what the process knows (`observe::observe_warm`).
/// `started` is when the run started, before it observed.
pub async fn run_observed<C: Connect>(
    connect: &C,
    keys: &C::KeyStore,
    desired: &Desired,
    command: Command,
    (observed, started): (Observed, SystemTime),
    ui: &mut impl Ui,
) -> Result<Outcome, Error> {
    debug_assert!(matches!(command, Command::Plan | Command::Apply { .. }));
    log_observed(&observed);
    let clients = (connect, keys, desired);
    run_from(clients, command, None, (observed, started), None, ui).await
}

/// [`run_with`] once observed: `observed`, read with `keys` from `started`
/// on; `reader`, `--reader-iam`'s principal, parsed before.
async fn run_from<C: Connect>(
    (connect, keys, desired): (&C, &C::KeyStore, &Desired),
    command: Command,
    saved: Option<&Saved>,
    (observed, started): (Observed, SystemTime),
    reader: Option<Principal>,
    ui: &mut impl Ui,
) -> Result<Outcome, Error> {
    let landing_zone_updates = !matches!(
        command,
        Command::Apply {
            landing_zone: None,
            ..
        }
    );
    let run = Reconcile {
        connect,
        keys,
        desired,
        landing_zone_updates,
    };
    match command {
        Command::Plan => Ok(Outcome::Planned(run.plan(observed).await?.0)),
        Command::Policy => {
            let (_, observed) = run.plan(observed).await?;
            Ok(Outcome::Policy(plan::desired_policy(desired, &observed)?))
        }
        Command::ReaderIam(_) => {
            let (_, observed) = run.plan(observed).await?;
            let reader = reader.expect("parsed above");
            Ok(Outcome::Policy(plan::reader_iam_policy(
                desired, &observed, &reader,
            )?))
        }
        Command::Apply {
            auto_approve,
            policy_retry,
            propagation_retry,
            wait_for_delivery,
            landing_zone,
            verification,
        } => {
            let wait = landing_zone.unwrap_or_default();
            let options = ApplyOptions {
                verification,
                policy_retry,
                propagation_retry,
                landing_zone_updates: landing_zone.is_some(),
                landing_zone_timeout: wait.timeout,
                landing_zone_poll: wait.poll,
                // One budget for every wait of the run, the check included.
                propagation_deadline: tokio::time::Instant::now().checked_add(propagation_retry),
                ..ApplyOptions::default()
            };
            run.apply_then_prove(
                observed,
                Approval {
                    auto_approve,
                    saved,
                },
                &options,
                wait_for_delivery,
                started,
                ui,
            )
            .await
        }
        Command::Destroy {
            delete_key,
            dry_run,
            auto_approve,
            landing_zone,
        } => {
            run.back_out(
                observed,
                delete_key,
                dry_run,
                auto_approve,
                landing_zone,
                ui,
            )
            .await
        }
    }
}

/// Plans from `observed` with `planner` as the loop does, reading what
/// planning asks for: for tests that observe and plan step by step.
#[cfg(test)]
pub(crate) async fn planned<C: Connect>(
    connect: &C,
    keys: &C::KeyStore,
    desired: &Desired,
    observed: Observed,
    planner: impl Fn(&Observed) -> Result<Planned, Error>,
) -> Result<(Plan, Observed), Error> {
    let run = Reconcile {
        connect,
        keys,
        desired,
        landing_zone_updates: true,
    };
    run.planned(observed, planner).await
}

/// `--reader-iam`'s principal, checked before any AWS call.
fn reader_principal(arn: &str, desired: &Desired) -> Result<Principal, Error> {
    Principal::parse(arn, desired.partition()).map_err(|m| {
        Error::usage(
            format!("--reader-iam: {m}"),
            format!(
                "give the reader's role or user ARN, e.g. --reader-iam arn:{}:iam::444455556666:role/SIEM",
                desired.partition()
            ),
        )
    })
}

/// One reconcile: the clients and the desired state.
struct Reconcile<'a, C: Connect> {
    connect: &'a C,
    /// The Security Tooling KMS client `observe` assumed the role for.
    keys: &'a C::KeyStore,
    desired: &'a Desired,
    /// Whether the run makes the landing zone's change, or leaves it
    /// pending (the Lambda function's apply).
    landing_zone_updates: bool,
}

impl<C: Connect> Reconcile<'_, C> {
    /// Plans: observe → plan → read what planning asked for ([`Need`]) →
    /// plan again, until it has a plan. What only some plans need is read
    /// only for them: the trail's tags for the Control Tower guard and,
    /// with `roles.log_archive`, the bucket's configuration, when the trail
    /// would change; the organization's accounts when a foreign statement
    /// of the key policy opens the key to an account trailkey does not
    /// know. A no-op plan never pays for them. Returns the plan and what it
    /// was made from.
    pub(super) async fn plan(&self, observed: Observed) -> Result<(Plan, Observed), Error> {
        self.planned(observed, |o| {
            plan::plan_for(self.desired, o, self.landing_zone_updates)
        })
        .await
    }

    /// The loop of [`Reconcile::plan`] for any planner. Each read fills an
    /// [`OnDemand`] that planning then never asks for again, so it ends
    /// within one more turn than there are kinds of [`Need`].
    pub(super) async fn planned(
        &self,
        mut observed: Observed,
        planner: impl Fn(&Observed) -> Result<Planned, Error>,
    ) -> Result<(Plan, Observed), Error> {
        for _ in 0..=Need::ALL.len() {
            match planner(&observed)? {
                Planned::Ready(plan) => {
                    log_plan(&plan);
                    return Ok((*plan, observed));
                }
                Planned::Needs(needs) => observed = self.read(observed, &needs).await?,
            }
        }
        Err(Error::check(
            "planning asked again for what it had read",
            "this is a bug in trailkey: run again with -v and report it",
        ))
    }

    /// Makes the reads planning asked for, at the same time.
    pub(super) async fn read(
        &self,
        mut observed: Observed,
        needs: &[Need],
    ) -> Result<Observed, Error> {
        let asked = |need| needs.contains(&need);
        let role = self
            .desired
            .log_archive_role_arn()
            .filter(|_| asked(Need::LogBucket));
        let (accounts, tags, bucket) = {
            let seen = &observed;
            let accounts = OptionFuture::from(
                asked(Need::OrganizationAccounts)
                    .then(|| observe::organization_accounts(self.connect)),
            );
            let tags = OptionFuture::from(
                asked(Need::TrailTags).then(|| observe::trail_tags(self.connect, seen)),
            );
            let bucket = OptionFuture::from(
                role.as_deref()
                    .map(|role| observe::log_bucket(self.connect, self.desired, seen, role)),
            );
            tokio::join!(accounts, tags, bucket)
        };
        if let Some(accounts) = accounts.transpose()? {
            observed.organization_accounts = OnDemand::Read(accounts);
        }
        if let Some(tags) = tags.transpose()? {
            observed.trail_tags = OnDemand::Read(tags);
        }
        if let Some(bucket) = bucket.transpose()? {
            observed.log_bucket = OnDemand::Read(bucket);
        }
        Ok(observed)
    }

    /// Applies `plan` and re-reads what it changed: the re-read
    /// (`observe::reread`) starts as soon as the steps on the key are done,
    /// so it runs concurrently with `UpdateTrail` (`apply::apply_then`).
    /// Returns the writes and the state read after them.
    pub(super) async fn apply(
        &self,
        plan: &Plan,
        observed: &Observed,
        options: &ApplyOptions,
        ui: &mut impl Ui,
    ) -> Result<(Vec<Done>, Result<Observed, Error>), Error> {
        let progress = Told {
            ui: RefCell::new(ui),
            index: Cell::new(0),
            total: plan.steps().count(),
        };
        let read_trail = !plan.changes(Address::TrailEncryption);
        let (connect, keys, desired) = (self.connect, self.keys, self.desired);
        let (done, reread) = apply::apply_then(
            plan,
            (connect.management(), keys, connect.landing_zones()),
            options,
            &progress,
            |key| observe::reread(connect, keys, desired, observed, read_trail, key),
        )
        .await?;
        let after = reread
            .into_observed(observed, apply::updated_trail(&done))
            .map(|read| apply::as_written(read, observed, &done));
        Ok((done, after))
    }
}

/// Apply's [`apply::Progress`], told to the [`Ui`]: the steps numbered in
/// the order they start.
struct Told<'u, U: Ui> {
    ui: RefCell<&'u mut U>,
    index: Cell<usize>,
    total: usize,
}

impl<U: Ui> apply::Progress for Told<'_, U> {
    fn step(&self, address: Address, step: &Step) {
        let index = self.index.get() + 1;
        self.index.set(index);
        tracing::info!(
            address = address.as_str(),
            operation = step.operation(),
            "apply step"
        );
        self.ui.borrow_mut().step(index, self.total, address, step);
    }

    fn retrying(&self, retrying: &Retrying) {
        self.ui.borrow_mut().waiting(retrying);
    }

    fn landing_zone(&self, operation: &str, waited: Duration, within: Duration) {
        tracing::info!(
            operation,
            waited_s = waited.as_secs(),
            "landing-zone operation in progress"
        );
        self.ui.borrow_mut().landing_zone(operation, waited, within);
    }
}

/// `-v`: what a plan changes, in numbers.
fn log_plan(plan: &Plan) {
    let summary = plan.summary();
    tracing::info!(
        add = summary.add,
        change = summary.change,
        destroy = summary.destroy,
        findings = plan.findings.len(),
        "planned"
    );
}

#[cfg(test)]
mod tests;
