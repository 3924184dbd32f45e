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

use crate::apply::{self, ApplyOptions, Done};
use crate::aws::{Connect, Management, code};
use crate::config::{Desired, Principal};
use crate::delivery::{self, Delivery, Verdict};
use crate::error::Error;
use crate::observe;
use crate::plan::{self, Address, Need, Observed, OnDemand, Plan, Planned, Step};
use crate::render::ApplyResult;
use crate::retry::{Retrying, Why};

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
    },
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
    let started = SystemTime::now();
    // Bad input fails before any AWS call.
    let reader = match &command {
        Command::ReaderIam(arn) => Some(reader_principal(arn, desired)?),
        _ => None,
    };
    let (observed, keys) = observe::observe(connect, desired).await?;
    tracing::info!(
        trail = %observed.trail.arn,
        trail_key = %observed.trail.kms_key_id.as_deref().unwrap_or("none"),
        key = %observed.key.as_ref().map_or("none", |k| k.info.arn.as_str()),
        "observed"
    );
    let run = Reconcile {
        connect,
        keys: &keys,
        desired,
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
        } => {
            let options = ApplyOptions {
                policy_retry,
                propagation_retry,
                // One budget for every wait of the run, the check included.
                propagation_deadline: tokio::time::Instant::now().checked_add(propagation_retry),
                ..ApplyOptions::default()
            };
            run.apply_then_prove(
                observed,
                auto_approve,
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
        } => {
            run.back_out(observed, delete_key, dry_run, auto_approve, ui)
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

/// How many kinds of [`Need`] there are.
const NEEDS: usize = 3;

/// What `apply --wait-for-delivery` waits for.
struct Wait<'a> {
    /// The trail's ARN.
    trail: &'a str,
    /// A delivery must be later than this (the process's clock).
    since: SystemTime,
    /// What `since` was, for messages.
    after_what: &'static str,
    /// The `LatestDeliveryError` the run started with.
    before: Option<&'a str>,
    /// How long to wait at most.
    within: Duration,
}

/// One reconcile: the clients and the desired state.
struct Reconcile<'a, C: Connect> {
    connect: &'a C,
    /// The Security Tooling KMS client `observe` assumed the role for.
    keys: &'a C::KeyStore,
    desired: &'a Desired,
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
    async fn plan(&self, observed: Observed) -> Result<(Plan, Observed), Error> {
        self.planned(observed, |o| plan::plan(self.desired, o))
            .await
    }

    /// The loop of [`Reconcile::plan`] for any planner. Each read fills an
    /// [`OnDemand`] that planning then never asks for again, so it ends
    /// within one more turn than there are kinds of [`Need`].
    async fn planned(
        &self,
        mut observed: Observed,
        planner: impl Fn(&Observed) -> Result<Planned, Error>,
    ) -> Result<(Plan, Observed), Error> {
        for _ in 0..=NEEDS {
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
    async fn read(&self, mut observed: Observed, needs: &[Need]) -> Result<Observed, Error> {
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

    /// `apply`: plan, confirm, apply and verify; once more after a lost
    /// race for the alias, when auto-approved.
    async fn converge(
        &self,
        observed: Observed,
        auto_approve: bool,
        options: &ApplyOptions,
        ui: &mut impl Ui,
    ) -> Result<Outcome, Error> {
        let (plan, observed) = self.plan(observed).await?;
        ui.about_to_apply(&plan);
        if !plan.has_changes() {
            return Ok(unchanged(plan, &observed));
        }
        if !auto_approve {
            ui.confirm(&plan)?;
        }
        let message = match self.apply_verified(&plan, &observed, options, ui).await {
            Ok((done, result)) => return Ok(Outcome::Applied { plan, done, result }),
            // Another run created the key and alias first. Without approval
            // for a new plan, stop; otherwise continue with its key (the new
            // plan creates none), once.
            Err(Error::Conflict { message, .. }) if auto_approve => message,
            Err(e) => return Err(e),
        };
        let observed = self.winners_alias(&observed, options, ui).await?;
        let (plan, observed) = self.plan(observed).await?;
        ui.planning_again(&message, &plan);
        if !plan.has_changes() {
            return Ok(unchanged(plan, &observed));
        }
        let (done, result) = self.apply_verified(&plan, &observed, options, ui).await?;
        Ok(Outcome::Applied { plan, done, result })
    }

    /// The state after another run won the alias: read again until the
    /// alias, which `CreateAlias` just said exists, is visible (a new alias
    /// may not be at once), within the run's propagation budget. Planning
    /// without it would pick a key by its tags, maybe another loser's,
    /// whose deletion that run is about to schedule.
    async fn winners_alias(
        &self,
        observed: &Observed,
        options: &ApplyOptions,
        ui: &mut impl Ui,
    ) -> Result<Observed, Error> {
        let mut turns = options.schedules().propagation.turns();
        loop {
            let now = observe::refresh(self.connect, self.keys, self.desired, observed).await?;
            if now.alias_target.is_some()
                || !turns
                    .wait(Why::OtherRunsAlias, None, |r| ui.waiting(r))
                    .await
            {
                return Ok(now);
            }
        }
    }

    /// Applies `plan`, then checks that a plan made from the state after it
    /// is empty. AWS may not show this run's writes at once (KMS is
    /// eventually consistent), so while the only differences left are on
    /// what apply wrote, or a re-read does not find this run's key yet, it
    /// reads again, on the same bounded backoff as apply's own retries. Any
    /// other difference fails at once.
    async fn apply_verified(
        &self,
        plan: &Plan,
        observed: &Observed,
        options: &ApplyOptions,
        ui: &mut impl Ui,
    ) -> Result<(Vec<Done>, ApplyResult), Error> {
        let (done, mut read) = self.apply(plan, observed, options, ui).await?;
        let created = done.iter().any(|d| d.operation == "CreateKey");
        let mut turns = options.schedules().propagation.turns();
        loop {
            let (propagating, error) = match read {
                Ok(after) => {
                    let (again, after) = self.plan(after).await?;
                    if !again.has_changes() {
                        return Ok((done, ApplyResult::of(&after, again.findings)));
                    }
                    (not_visible_yet(plan, &again, &done), not_converged(&again))
                }
                // This run's new key, not visible to the re-read yet.
                Err(e) if created && e.aws_code() == Some(code::NOT_FOUND) => (true, e),
                Err(e) => return Err(e),
            };
            if !propagating
                || !turns
                    .wait(Why::WritesVisible, None, |r| ui.waiting(r))
                    .await
            {
                return Err(error);
            }
            read = observe::refresh(self.connect, self.keys, self.desired, observed).await;
        }
    }

    /// Reads `GetTrailStatus` at once, then every [`delivery::POLL`] at
    /// most, until CloudTrail reports a log file delivered after
    /// `wait.since` (see [`delivery`] for the clock skew), a new delivery
    /// error, or a trail that is not logging; or until `wait.within` has
    /// passed. Each of these ends is a [`Delivery`], part of the apply's
    /// result; only a `GetTrailStatus` that fails is an error here.
    async fn wait_for_delivery(
        &self,
        wait: &Wait<'_>,
        ui: &mut impl Ui,
    ) -> Result<Delivery, Error> {
        let start = tokio::time::Instant::now();
        // Within the longest wait the flag takes, so the sum cannot overflow.
        let deadline = start + wait.within.min(crate::cli::MAX_DELIVERY_WAIT);
        loop {
            let status = self
                .connect
                .management()
                .trail_status(wait.trail)
                .await
                .map_err(|e| {
                    Error::aws(
                        "reading the trail's delivery status (cloudtrail:GetTrailStatus)",
                        e,
                    )
                })?;
            let now = tokio::time::Instant::now();
            let waited = now - start;
            let verdict = match delivery::judge(
                &status,
                wait.since,
                wait.before,
                wait.trail,
                wait.after_what,
            ) {
                Verdict::Pending if now >= deadline => {
                    delivery::timed_out(wait.within, &status, wait.after_what)
                }
                verdict => verdict,
            };
            if let Some(ended) = Delivery::ended(verdict, &status, waited) {
                tracing::info!(status = ?ended.status, latest_delivery_time = ?ended.latest_delivery_time, "delivery wait ended");
                return Ok(ended);
            }
            ui.delivery(waited, wait.within);
            tokio::time::sleep(delivery::POLL.min(deadline - now)).await;
        }
    }

    /// `apply`: converge, then, with `wait_for_delivery`, wait for
    /// CloudTrail to deliver a log file with the key (since the change, or
    /// since `started` when nothing changed).
    async fn apply_then_prove(
        &self,
        observed: Observed,
        auto_approve: bool,
        options: &ApplyOptions,
        wait_for_delivery: Option<Duration>,
        started: SystemTime,
        ui: &mut impl Ui,
    ) -> Result<Outcome, Error> {
        let trail = observed.trail.arn.clone();
        let before = observed.trail_status.latest_delivery_error.clone();
        let outcome = self.converge(observed, auto_approve, options, ui).await?;
        let (within, plan, done, mut result) = match (wait_for_delivery, outcome) {
            (Some(within), Outcome::Applied { plan, done, result }) => (within, plan, done, result),
            (_, outcome) => return Ok(outcome),
        };
        let (since, after_what) = if done.is_empty() {
            (started, "the start of the run")
        } else {
            (SystemTime::now(), "the change")
        };
        let wait = Wait {
            trail: &trail,
            since,
            after_what,
            before: before.as_deref(),
            within,
        };
        result.delivery = Some(Box::new(self.wait_for_delivery(&wait, ui).await?));
        Ok(Outcome::Applied { plan, done, result })
    }

    /// `destroy`: plan the backout; unless a dry run, confirm, apply it and
    /// check that the trail no longer names a key.
    async fn back_out(
        &self,
        observed: Observed,
        delete_key: Option<i32>,
        dry_run: bool,
        auto_approve: bool,
        ui: &mut impl Ui,
    ) -> Result<Outcome, Error> {
        let users = match (delete_key, &observed.key) {
            (Some(_), Some(k)) => Some(
                observe::key_users(self.connect.management(), self.keys, &k.info.key_id).await?,
            ),
            _ => None,
        };
        let deletion = delete_key.zip(users.as_ref());
        let (plan, observed) = self
            .planned(observed, |o| plan::plan_destroy(self.desired, o, deletion))
            .await?;
        if dry_run || !plan.has_changes() {
            return Ok(Outcome::Planned(plan));
        }
        ui.about_to_apply(&plan);
        if !auto_approve {
            ui.confirm(&plan)?;
        }
        let (done, after) = self
            .apply(&plan, &observed, &ApplyOptions::default(), ui)
            .await?;
        let after = after?;
        if let Some(key) = &after.trail.kms_key_id
            && plan.changes(Address::TrailEncryption)
        {
            return Err(Error::check(
                format!("destroy finished, but the trail still names a KMS key: {key}"),
                "another process may have changed the trail at the same time: run `trailkey destroy --dry-run`",
            ));
        }
        let result = ApplyResult::of(&after, Vec::new());
        Ok(Outcome::Applied { plan, done, result })
    }

    /// Applies `plan` and re-reads what it changed: the re-read
    /// (`observe::reread`) starts as soon as the steps on the key are done,
    /// so it runs concurrently with `UpdateTrail` (`apply::apply_then`).
    /// Returns the writes and the state read after them.
    async fn apply(
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
            connect.management(),
            keys,
            options,
            &progress,
            |key| observe::reread(connect, keys, desired, observed, read_trail, key),
        )
        .await?;
        let after = reread.into_observed(observed, apply::updated_trail(&done));
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

/// Whether every difference `again` (planned after apply) still shows can
/// be this apply's own writes not visible yet: it is on an address apply
/// wrote, and AWS shows there what it showed before apply, or nothing yet
/// (a new or moved alias), or anything for what apply created. A difference
/// apply did not write, or a third value (someone else's write), is not
/// waited for.
fn not_visible_yet(applied: &Plan, again: &Plan, done: &[Done]) -> bool {
    again
        .changes
        .iter()
        .filter(|c| c.action != plan::Action::NoOp)
        .all(|c| {
            let wrote = done.iter().any(|d| d.address == c.address.as_str());
            let before = applied.changes.iter().find(|p| p.address == c.address);
            wrote
                && before.is_some_and(|p| {
                    p.action == plan::Action::Create
                        || p.before == c.before
                        || c.before.is_null()
                        || between_states(p, c, done)
                })
        })
}

/// Whether `again` shows the key in the state apply's own
/// `CancelKeyDeletion` left it in before its `EnableKey` (`Disabled`), with
/// nothing else changed: KMS may show that in-between state while the
/// `EnableKey` propagates.
fn between_states(applied: &plan::Change, again: &plan::Change, done: &[Done]) -> bool {
    let cancelled = done.iter().any(|d| d.operation == "CancelKeyDeletion");
    if !cancelled || again.address != Address::KmsKey {
        return false;
    }
    let disabled = crate::aws::KeyState::Disabled;
    if again.before.get("state").and_then(|s| s.as_str()) != Some(disabled.as_str()) {
        return false;
    }
    let mut seen = again.before.clone();
    if let (Some(seen), Some(state)) = (seen.as_object_mut(), applied.before.get("state")) {
        seen.insert("state".to_owned(), state.clone());
    }
    seen == applied.before
}

/// The verification's error: the plan made after apply is not empty.
fn not_converged(again: &Plan) -> Error {
    Error::check_with(
        "apply finished, but AWS does not show the desired state yet:",
        crate::render::plan_human(again),
        "another process may have changed the key or trail at the same time: run `trailkey plan` and apply again",
    )
}

/// An apply whose plan has no change: nothing written, `observed` as it is.
fn unchanged(plan: Plan, observed: &Observed) -> Outcome {
    Outcome::Applied {
        plan,
        done: Vec::new(),
        result: ApplyResult::of(observed, Vec::new()),
    }
}

#[cfg(test)]
mod tests;
