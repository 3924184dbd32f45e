//! Apply: execute exactly the steps of a [`Plan`], in the plan's order (in
//! waves of independent steps), through the AWS traits. Nothing is decided
//! here; the plan already says what to do. The one read is a safety check:
//! right before `ScheduleKeyDeletion`, the plan's deletion check is made
//! again on what AWS says then.
//!
//! Order matters and is the plan's: the key (created with its policy and
//! tags in one `CreateKey`, so a crash never leaves an untagged or
//! policy-less key), then the alias, the policy, rotation, and last the
//! trail, which CloudTrail only accepts once the key policy lets it in.
//! Consecutive steps that do not depend on each other (the key's tags,
//! alias, policy, rotation) run concurrently: see [`waves`].
//!
//! If a step fails, the steps that succeeded stay done and the error says
//! so; running `apply` again observes that state and converges.

use std::time::Duration;

use crate::aws::{AwsError, KeyInfo, KeyStore, LandingZones, Management, Trail, TrailUpdate, code};
use crate::error::Error;
use crate::observe;
use crate::plan::{self, Address, Finding, Plan, Step};
use crate::retry::{
    Backoff, DEFAULT_POLICY_RETRY, DEFAULT_PROPAGATION_RETRY, Retrying, Schedules, Written,
};

/// What apply tells while it runs: each step before it starts, and each
/// wait before it starts. Steps of a wave run concurrently, hence `&self`.
pub trait Progress {
    fn step(&self, address: Address, step: &Step);
    fn retrying(&self, retrying: &Retrying);
    /// The landing-zone operation `operation` is still in progress after
    /// `waited` of at most `within`; apply reads its status again soon.
    fn landing_zone(&self, operation: &str, waited: Duration, within: Duration);
}

/// How long an `UpdateLandingZone` operation may take, by default: users
/// report 20 minutes to an hour.
pub const DEFAULT_LANDING_ZONE_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// How often a landing-zone operation's status is read, by default.
pub const DEFAULT_LANDING_ZONE_POLL: Duration = Duration::from_secs(30);

/// Days before a key this run created, and lost to a concurrent run, is deleted.
pub const ORPHAN_DELETION_DAYS: i32 = 7;

/// Tunables of an apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Total time to retry `MalformedPolicyDocumentException`; zero: no retry.
    pub policy_retry: Duration,
    /// Total time to wait for this run's own writes to propagate, when a
    /// call after them fails as if they had not happened; zero: no wait.
    pub propagation_retry: Duration,
    /// When the run's whole propagation budget ends (`propagation_retry`
    /// after the run started); `None`: each wait is bounded on its own.
    pub propagation_deadline: Option<tokio::time::Instant>,
    /// First backoff between retries; doubles up to 10 s.
    pub retry_backoff: Duration,
    /// How long to wait for a landing-zone operation to end.
    pub landing_zone_timeout: Duration,
    /// How often to read a landing-zone operation's status.
    pub landing_zone_poll: Duration,
    /// Whether apply makes the landing zone's change (`UpdateLandingZone`);
    /// `false` leaves it pending (the Lambda function, which an operation
    /// of up to an hour would outlast).
    pub landing_zone_updates: bool,
    /// How the check after apply learns what the last wave wrote.
    pub verification: Verification,
}

/// How the check after apply learns the state the last wave of writes
/// left. The rest of the state is read either way.
///
/// `UpdateTrail` answers with the trail after the write, so its check reads
/// what it does not change while it runs, in every mode. The key's writes
/// (`EnableKey`, `TagResource`, `PutKeyPolicy`, `EnableKeyRotation`) and
/// `StartLogging` answer with nothing of the state they set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verification {
    /// Read the key and the trail's status back after those writes: one
    /// round more, and the waits for KMS to show them
    /// ([`crate::reconcile`]'s check). The command line.
    #[default]
    ReadBack,
    /// Take those writes of the last wave at their word: the check reads
    /// everything at the same time as the writes, and where it still shows
    /// the value from before a write, a success means AWS now holds what
    /// the step sent (the policy document, the state, the period, the
    /// tags, logging on) ([`as_written`]). A run of the Lambda function, whose
    /// next run reads them back: the write's own CloudTrail event starts
    /// it (every such write is among the events the function acts on), or
    /// the schedule does.
    TakenAtTheirWord,
}

impl ApplyOptions {
    /// What of `plan` this apply carries out: all of it, or without the
    /// landing zone's change when it leaves that pending.
    pub fn applied_part(&self, plan: &Plan) -> Plan {
        let mut part = plan.clone();
        if !self.landing_zone_updates {
            part.changes.retain(|c| c.address != Address::LandingZone);
        }
        part
    }

    /// The schedules of the run's waits: the policy's for each key-policy
    /// write; the propagation's shared by every other wait, in apply and in
    /// the check after it, until `propagation_deadline`.
    pub fn schedules(&self) -> Schedules {
        Schedules {
            policy: Backoff {
                total: self.policy_retry,
                first: self.retry_backoff,
                deadline: None,
            },
            propagation: Backoff {
                total: self.propagation_retry,
                first: self.retry_backoff,
                deadline: self.propagation_deadline,
            },
        }
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            policy_retry: DEFAULT_POLICY_RETRY,
            propagation_retry: DEFAULT_PROPAGATION_RETRY,
            propagation_deadline: None,
            retry_backoff: Duration::from_secs(1),
            landing_zone_timeout: DEFAULT_LANDING_ZONE_TIMEOUT,
            landing_zone_poll: DEFAULT_LANDING_ZONE_POLL,
            landing_zone_updates: true,
            verification: Verification::ReadBack,
        }
    }
}

/// What one step did, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Done {
    pub address: &'static str,
    pub operation: &'static str,
    pub target: String,
    /// The trail as `UpdateTrail` returned it, so the verification after
    /// apply need not read it again.
    #[serde(skip)]
    pub trail: Option<Trail>,
    /// The step, when its write ran while the check after apply read the
    /// state ([`Verification::TakenAtTheirWord`]): the state after it is
    /// what the step sent, not what that read saw ([`as_written`]).
    #[serde(skip)]
    pub unread: Option<Step>,
}

/// What the check after an apply read: the state apply left, as the
/// result of `apply` and `destroy` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplyResult {
    pub key_arn: Option<String>,
    pub trail_kms_key_id: Option<String>,
    pub converged: bool,
    /// Findings of the verification after apply (trail health included).
    pub findings: Vec<Finding>,
    /// With `--wait-for-delivery`: the log file delivered after apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Box<crate::delivery::Delivery>>,
}

impl ApplyResult {
    /// The result as `state` (read after apply) shows it, with `findings`.
    pub fn of(state: &crate::plan::Observed, findings: Vec<Finding>) -> Self {
        ApplyResult {
            key_arn: state.key.as_ref().map(|k| k.info.arn.clone()),
            trail_kms_key_id: state.trail.kms_key_id.clone(),
            converged: true,
            findings,
            delivery: None,
        }
    }
}

/// The trail as the last `UpdateTrail` of an apply returned it.
pub fn updated_trail(done: &[Done]) -> Option<&Trail> {
    done.iter().rev().find_map(|d| d.trail.as_ref())
}

/// The state after apply: `read` (the check after apply), with what each
/// step in `done` that ran while it read ([`Done::unread`]) sent, where the
/// read may not show that step yet: it shows the value from `before` (the
/// state apply started from), or what the step sent. Any other value there
/// (someone else's write, a key scheduled for deletion, the trail stopped
/// again) is kept as read, and so is everything about another key or trail
/// than the one the step wrote: the plan made from the result shows it.
/// On a key this run rescued from pending deletion, the key's state and
/// its rotation (which KMS did not report before) may show any value from
/// before the writes, so they are all taken as not shown yet.
pub fn as_written(
    mut read: plan::Observed,
    before: &plan::Observed,
    done: &[Done],
) -> plan::Observed {
    use crate::aws::KeyState;
    let cancelled = done.iter().any(|d| d.operation == "CancelKeyDeletion");
    for d in done {
        let Some(step) = &d.unread else { continue };
        if let Step::StartLogging(trail) = step {
            let was = before.trail_status.is_logging;
            if *trail == read.trail.arn && read.trail_status.is_logging == was {
                read.trail_status.is_logging = true;
            }
            continue;
        }
        let Some(key) = read.key.as_mut().filter(|k| k.info.arn == d.target) else {
            continue;
        };
        let Some(was) = before.key.as_ref().filter(|k| k.info.arn == d.target) else {
            continue;
        };
        match step {
            Step::EnableKey => {
                // After this run's CancelKeyDeletion, KMS may still show
                // the key pending deletion, or disabled (its state between).
                let unseen = key.info.state == was.info.state
                    || (cancelled
                        && matches!(
                            key.info.state,
                            KeyState::PendingDeletion | KeyState::Disabled
                        ));
                if unseen {
                    key.info.state = KeyState::Enabled;
                }
            }
            Step::PutKeyPolicy(doc) if key.policy == was.policy => key.policy = doc.clone(),
            Step::EnableRotation(days) => {
                // A key pending deletion had its rotation unreported: any
                // value read after this run rescued it may be from before.
                let as_before = was.rotation.is_none()
                    || (key.rotation == was.rotation
                        && key.rotation_period_days == was.rotation_period_days);
                let as_sent = key.rotation == Some(true)
                    && days.is_none_or(|d| key.rotation_period_days == Some(d));
                if as_before && !as_sent {
                    key.rotation = Some(true);
                    // Without a period, KMS gives its default.
                    key.rotation_period_days =
                        Some(days.unwrap_or(crate::aws::DEFAULT_ROTATION_PERIOD_DAYS));
                }
            }
            Step::TagKey(tags) => {
                for (tag, value) in tags {
                    if key.tags.get(tag) == was.tags.get(tag) {
                        key.tags.insert(tag.clone(), value.clone());
                    }
                }
            }
            _ => {}
        }
    }
    read
}

/// Runs the plan's steps, wave by wave ([`waves`]), then `after`: a read of
/// the result (the verification) that starts as soon as every step on the
/// key is done, given the key's ARN. It runs concurrently with the last wave
/// when that wave only updates the trail (whose result is `UpdateTrail`'s
/// answer), or, with [`Verification::TakenAtTheirWord`], only makes writes
/// taken at their word ([`Step::taken_at_its_word`]); after the last wave
/// otherwise. Its output is returned only if every step succeeded.
/// `progress` is told about each step and each wait before it starts.
///
/// A concurrent run can win the race to create the alias. Then this run's
/// `CreateAlias` fails with `AlreadyExistsException`, and the key this run
/// just created is unused: unless the alias or the trail names it, its
/// deletion is scheduled ([`ORPHAN_DELETION_DAYS`]), and the result is
/// [`Error::Conflict`], after which the caller plans again against the
/// winner's key.
pub async fn apply_then<M, K, L, T, F, Fut>(
    plan: &Plan,
    (mgmt, keys, lz): (&M, &K, &L),
    options: &ApplyOptions,
    progress: &impl Progress,
    after: F,
) -> Result<(Vec<Done>, T), Error>
where
    M: Management,
    K: KeyStore,
    L: LandingZones,
    F: FnOnce(Option<String>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut run = Run {
        plan,
        key: plan.key.clone(),
        created: None,
        written: Written::default(),
        done: Vec::new(),
        read_meanwhile: false,
    };
    let mut waves = waves(plan);
    let word = options.verification == Verification::TakenAtTheirWord;
    let with_the_read = waves.last().is_some_and(|w| {
        w.iter()
            .all(|(_, s)| s.is_trail_update() || (word && s.taken_at_its_word()))
    });
    let last_wave = if with_the_read { waves.pop() } else { None };
    let aws = (mgmt, keys, lz);
    for wave in &waves {
        run.wave(wave, aws, options, progress).await?;
    }
    let after = after(run.key.as_ref().map(|k| k.arn.clone()));
    let read = match last_wave {
        Some(wave) => {
            run.read_meanwhile = word;
            let (applied, read) = tokio::join!(run.wave(&wave, aws, options, progress), after);
            applied?;
            read
        }
        None => after.await,
    };
    Ok((run.done, read))
}

/// The state of an apply between waves.
struct Run<'p> {
    plan: &'p Plan,
    /// The key the steps act on: the plan's, or the one `CreateKey` made.
    key: Option<KeyInfo>,
    /// The key this run created, if any.
    created: Option<KeyInfo>,
    written: Written,
    done: Vec<Done>,
    /// Whether the check after apply reads the state while this wave
    /// writes, taking its writes at their word.
    read_meanwhile: bool,
}

/// What one step did: the target for the report, the trail as
/// `UpdateTrail` returned it, and the key `CreateKey` made.
struct Outcome {
    target: String,
    trail: Option<Trail>,
    created: Option<KeyInfo>,
}

impl Outcome {
    fn on(target: impl Into<String>) -> Self {
        Outcome {
            target: target.into(),
            trail: None,
            created: None,
        }
    }

    /// The outcome of `CreateKey`: the new key, by its ARN.
    fn created(key: KeyInfo) -> Self {
        Outcome {
            target: key.arn.clone(),
            trail: None,
            created: Some(key),
        }
    }
}

/// A step of a wave that failed.
type Failed<'s> = (Address, &'s Step, AwsError);

impl Run<'_> {
    /// Runs one wave's steps concurrently and records what they did.
    async fn wave<M: Management, K: KeyStore, L: LandingZones>(
        &mut self,
        wave: &[(Address, &Step)],
        (mgmt, keys, lz): (&M, &K, &L),
        options: &ApplyOptions,
        progress: &impl Progress,
    ) -> Result<(), Error> {
        for (address, step) in wave {
            progress.step(*address, step);
        }
        self.check_before_deletion(wave, mgmt, keys).await?;
        let (key, written) = (self.key.clone(), self.written);
        let results = futures_util::future::join_all(wave.iter().map(|(_, step)| {
            run_step(
                step,
                (mgmt, keys, lz),
                options,
                key.as_ref(),
                written,
                progress,
            )
        }))
        .await;
        // Record every step that succeeded before acting on any failure.
        let mut race = None;
        let mut failed: Vec<Failed> = Vec::new();
        for (&(address, step), result) in wave.iter().zip(results) {
            match (result, step) {
                (Ok(outcome), _) => self.record(address, step, outcome),
                (Err(e), Step::CreateAlias(alias)) if e.code == code::ALREADY_EXISTS => {
                    race = Some((address, step, alias.as_str()))
                }
                (Err(e), _) => failed.push((address, step, e)),
            }
        }
        if let Some((address, step, alias)) = race {
            self.resolve_race(address, step, alias, mgmt, keys).await?;
        }
        let mut failed = failed.into_iter();
        match failed.next() {
            None => Ok(()),
            Some((address, step, e)) => {
                let others: Vec<String> = failed
                    .map(|(a, s, e)| format!("{} ({}): {}", a.as_str(), s.operation(), e.code))
                    .collect();
                Err(stopped(address, step, &self.done, &others, e))
            }
        }
    }

    fn record(&mut self, address: Address, step: &Step, outcome: Outcome) {
        self.done.push(Done {
            address: address.as_str(),
            operation: step.operation(),
            target: outcome.target,
            trail: outcome.trail,
            unread: (self.read_meanwhile && step.taken_at_its_word()).then(|| step.clone()),
        });
        if let Some(key) = outcome.created {
            self.key = Some(key.clone());
            self.created = Some(key);
            self.written = Written {
                key: true,
                policy: true,
                state: false,
            };
        }
        match step {
            Step::PutKeyPolicy(_) => self.written.policy = true,
            Step::EnableKey | Step::CancelKeyDeletion => self.written.state = true,
            _ => {}
        }
    }

    /// Right before `ScheduleKeyDeletion`: the plan's own check
    /// ([`plan::check_deletion`]) on the key's tags, aliases and trails read
    /// now, with no trail exempt (destroy moved its trail off the key first).
    async fn check_before_deletion<M: Management, K: KeyStore>(
        &self,
        wave: &[(Address, &Step)],
        mgmt: &M,
        keys: &K,
    ) -> Result<(), Error> {
        let deletes = wave
            .iter()
            .any(|(_, s)| matches!(s, Step::ScheduleKeyDeletion(_)));
        let (true, Some(key)) = (deletes, &self.key) else {
            return Ok(());
        };
        let checked = match observe::key_users(mgmt, keys, &key.key_id).await {
            Ok(users) => plan::check_deletion(&self.plan.target.alias, key, &users, None),
            Err(e) => Err(e),
        };
        checked.map_err(|e| e.noting(&finished(&self.done)))
    }

    /// `CreateAlias` found the alias taken: [`alias_race`] decides whether
    /// that is this run's own key (done) or a lost race ([`Error::Conflict`]).
    async fn resolve_race<M: Management, K: KeyStore>(
        &mut self,
        address: Address,
        step: &Step,
        alias: &str,
        mgmt: &M,
        keys: &K,
    ) -> Result<(), Error> {
        let Some(wanted) = self.key.clone() else {
            return Err(Error::check(
                format!("{alias} exists, and this apply has no key to put it on"),
                "run `trailkey plan` to see the state, then apply again",
            ));
        };
        let race = alias_race(
            mgmt,
            keys,
            alias,
            &wanted,
            self.created.as_ref(),
            &mut self.done,
        )
        .await?;
        match race {
            // The alias already names the key: a concurrent run found it by
            // its tags and aliased it. Nothing lost.
            Race::AlreadyDone => {
                self.record(address, step, Outcome::on(wanted.arn));
                Ok(())
            }
            Race::Lost(cleanup) => Err(Error::conflict(
                format!("another trailkey run created {alias} first{cleanup}"),
                "run trailkey again: it continues with the other run's key",
            )),
        }
    }
}

/// The plan's steps in waves: the steps of a wave run concurrently, the
/// waves one after the other, in the plan's order. Only consecutive steps
/// that set independent properties of the key share a wave: its tags,
/// alias, policy and rotation, with two limits. A step never shares a wave
/// with a `PutKeyPolicy` before it, since the new policy may be what lets it
/// in. `CreateAlias` shares a wave only on a key this run created: if it
/// loses the race for the alias, that key's deletion is scheduled, so what
/// the rest of the wave wrote to it does not matter, whereas an existing
/// key must not be changed alongside a `CreateAlias` that may lose.
///
/// Everything else runs alone: `CreateKey` (the others need its key),
/// `CancelKeyDeletion` and `EnableKey` (a key pending deletion or disabled
/// refuses the others), `DeleteAlias` (after the alias that replaces it
/// exists), the trail (CloudTrail checks the key policy, and after a lost
/// alias race the trail must not name this run's key), and
/// `ScheduleKeyDeletion`.
///
/// A first apply is three waves: `CreateKey`; `CreateAlias` with
/// `EnableKeyRotation`; `UpdateTrail`.
pub fn waves(plan: &Plan) -> Vec<Vec<(Address, &Step)>> {
    let creates = plan.steps().any(|(_, s)| matches!(s, Step::CreateKey(_)));
    let shares = |s: &Step| match s {
        Step::TagKey(_)
        | Step::UpdateAlias(_)
        | Step::PutKeyPolicy(_)
        | Step::EnableRotation(_) => true,
        // Only on a key this run created: if the alias race is lost, that
        // key is unused and its deletion is scheduled, so what the rest of
        // the wave wrote to it does not matter. On an existing key, nothing
        // may be written to it alongside a CreateAlias that may lose.
        Step::CreateAlias(_) => creates,
        _ => false,
    };
    let mut waves: Vec<Vec<(Address, &Step)>> = Vec::new();
    for (address, step) in plan.steps() {
        match waves.last_mut() {
            Some(wave)
                if shares(step)
                    && wave.iter().all(|(_, s)| shares(s))
                    // The policy may be what lets the later steps in: they
                    // wait for it, as they did when every step ran alone.
                    && !wave.iter().any(|(_, s)| matches!(s, Step::PutKeyPolicy(_))) =>
            {
                wave.push((address, step))
            }
            _ => waves.push(vec![(address, step)]),
        }
    }
    waves
}

/// The error of a wave that failed at `step` (and at `others`, the other
/// steps of the same wave that failed), saying what was done.
fn stopped(address: Address, step: &Step, done: &[Done], others: &[String], e: AwsError) -> Error {
    let also = if others.is_empty() {
        String::new()
    } else {
        format!(" and at {}", others.join(", "))
    };
    // A landing-zone operation that failed, outlasted the wait or met
    // another: the next run is refused until Control Tower is done (the
    // error's hint says what to do).
    let again = if matches!(step, Step::UpdateLandingZone(_)) {
        "The error's hint says when to run apply again"
    } else {
        "Running apply again continues from there"
    };
    Error::aws(
        format!(
            "apply stopped at {} ({}){also}; {}. {again}",
            address.as_str(),
            step.operation(),
            finished(done)
        ),
        e,
    )
}

/// What an apply did before it stopped, in a sentence.
fn finished(done: &[Done]) -> String {
    if done.is_empty() {
        return "no change was made before it".to_owned();
    }
    format!(
        "done: {}",
        done.iter()
            .map(|d| format!("{} {}", d.operation, d.target))
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// How a `CreateAlias` that found the alias taken ends.
#[derive(Debug, PartialEq, Eq)]
enum Race {
    /// The alias names the key this run wanted it on.
    AlreadyDone,
    /// Another key holds it; the text says what this run cleaned up.
    Lost(String),
}

/// After `CreateAlias` found the alias taken: if another key holds it and
/// this run created `created`, that key is unused, and its deletion is
/// scheduled, unless the trail uses it (a key a trail uses is never deleted).
async fn alias_race<M: Management, K: KeyStore>(
    mgmt: &M,
    keys: &K,
    alias: &str,
    wanted: &KeyInfo,
    created: Option<&KeyInfo>,
    done: &mut Vec<Done>,
) -> Result<Race, Error> {
    let context = "resolving a concurrent run (the alias already exists)";
    let holder = keys
        .describe_key(alias)
        .await
        .map_err(|e| Error::aws(context, e))?;
    if holder.as_ref().is_some_and(|h| h.key_id == wanted.key_id) {
        return Ok(Race::AlreadyDone);
    }
    let Some(ours) = created else {
        return Ok(Race::Lost(String::new()));
    };
    // Not even a key this run made moments ago is deleted while a trail
    // names it. No alias names it (its CreateAlias just failed), and it is
    // this run's own, so only the trails are read (its tags may not be
    // visible yet).
    let trails = mgmt
        .describe_trails()
        .await
        .map_err(|e| Error::aws(context, e))?;
    if let Err(using) = plan::check_unused(ours, &trails, &[], None) {
        return Ok(Race::Lost(format!(
            "; the key this run created ({}) is kept because trail(s) {} use it",
            ours.arn,
            using.join(", ")
        )));
    }
    if let Err(e) = keys
        .schedule_key_deletion(&ours.key_id, ORPHAN_DELETION_DAYS)
        .await
    {
        // E.g. a tag-conditioned IAM policy that does not see the new key's
        // tags yet: the winner's key is fine; report the leftover.
        tracing::warn!(key = %ours.arn, code = %e.code, "could not schedule deletion of this run's unused key");
        return Ok(Race::Lost(format!(
            "; the key this run created ({}) is unused, but scheduling its deletion failed ({}: {}): schedule it by hand with `aws kms schedule-key-deletion --key-id {}`",
            ours.arn, e.code, e.message, ours.key_id
        )));
    }
    done.push(Done {
        address: Address::KmsKey.as_str(),
        operation: "ScheduleKeyDeletion",
        target: ours.arn.clone(),
        trail: None,
        unread: None,
    });
    Ok(Race::Lost(format!(
        "; the key this run created ({}) is not used and is scheduled for deletion in {ORPHAN_DELETION_DAYS} days",
        ours.arn
    )))
}

/// Runs one step, retried while it fails with an error the run waits out
/// ([`crate::retry::step_error`]: this run's own earlier writes not
/// propagated yet, a principal IAM does not know yet, another change to the
/// trail under way).
async fn run_step<M: Management, K: KeyStore, L: LandingZones>(
    step: &Step,
    (mgmt, keys, lz): (&M, &K, &L),
    options: &ApplyOptions,
    key: Option<&KeyInfo>,
    written: Written,
    progress: &impl Progress,
) -> Result<Outcome, AwsError> {
    if let Step::UpdateLandingZone(update) = step {
        return landing_zone::run(lz, (step, update), key, written, options, progress).await;
    }
    options
        .schedules()
        .retry(
            |e| crate::retry::step_error(step, written, e),
            |r| progress.retrying(r),
            || call_step(step, mgmt, keys, key),
        )
        .await
}

async fn call_step<M: Management, K: KeyStore>(
    step: &Step,
    mgmt: &M,
    keys: &K,
    key: Option<&KeyInfo>,
) -> Result<Outcome, AwsError> {
    let k = || {
        key.ok_or_else(|| {
            AwsError::new(
                step.operation(),
                code::NO_KEY,
                "the plan names no key for this step and no CreateKey came before it",
            )
        })
    };
    match step {
        Step::CreateKey(new) => {
            return Ok(Outcome::created(keys.create_key(new).await?));
        }
        Step::CancelKeyDeletion => keys.cancel_key_deletion(&k()?.key_id).await?,
        Step::EnableKey => keys.enable_key(&k()?.key_id).await?,
        Step::TagKey(tags) => keys.tag_key(&k()?.key_id, tags).await?,
        Step::CreateAlias(alias) => keys.create_alias(alias, &k()?.key_id).await?,
        Step::UpdateAlias(alias) => keys.update_alias(alias, &k()?.key_id).await?,
        Step::DeleteAlias(alias) => {
            keys.delete_alias(alias).await?;
            return Ok(Outcome::on(alias));
        }
        Step::PutKeyPolicy(doc) => keys.put_key_policy(&k()?.key_id, doc).await?,
        Step::EnableRotation(days) => keys.enable_rotation(&k()?.key_id, *days).await?,
        Step::UpdateTrail {
            trail,
            log_file_validation,
        } => return trail_step(mgmt, trail, Some(&k()?.arn), *log_file_validation).await,
        Step::EnableLogFileValidation(trail) => return trail_step(mgmt, trail, None, true).await,
        Step::StartLogging(trail) => {
            mgmt.start_logging(trail).await?;
            return Ok(Outcome::on(format!("{trail}: logging started")));
        }
        Step::DisableTrailEncryption(trail) => {
            let updated = mgmt.set_trail_key(trail, "").await?;
            return Ok(Outcome {
                trail: Some(updated),
                ..Outcome::on(format!("{trail} -> SSE-S3"))
            });
        }
        // Checked right before, in the wave (`Run::check_before_deletion`).
        Step::ScheduleKeyDeletion(days) => keys.schedule_key_deletion(&k()?.key_id, *days).await?,
        // `run_step` runs it (`landing_zone::run`).
        Step::UpdateLandingZone(_) => unreachable!("run_step runs the landing zone's step"),
    }
    Ok(Outcome::on(&k()?.arn))
}

/// One `UpdateTrail` of `trail`: onto the key `arn` (when given) and, with
/// `log_file_validation`, turning validation on.
async fn trail_step<M: Management>(
    mgmt: &M,
    trail: &str,
    arn: Option<&str>,
    log_file_validation: bool,
) -> Result<Outcome, AwsError> {
    let update = TrailUpdate {
        kms_key_id: arn,
        enable_log_file_validation: log_file_validation,
    };
    let updated = mgmt.update_trail(trail, update).await?;
    let target = match (arn, log_file_validation) {
        (Some(arn), true) => format!("{trail} -> {arn}, log-file validation on"),
        (Some(arn), false) => format!("{trail} -> {arn}"),
        (None, _) => format!("{trail}: log-file validation on"),
    };
    Ok(Outcome {
        trail: Some(updated),
        ..Outcome::on(target)
    })
}

mod landing_zone;

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
