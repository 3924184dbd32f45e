//! Every wait trailkey makes on its own, decided in one place.
//!
//! The SDK retries throttling and transient errors itself (`aws::sdk`).
//! What is here are the waits for AWS to catch up with a write: KMS and
//! CloudTrail are eventually consistent ("AWS KMS eventual consistency",
//! KMS Developer Guide), IAM may not know a principal created a moment ago,
//! and CloudTrail refuses an `UpdateTrail` while another change to the
//! trail is under way. [`Why`] names each of them and the budget it spends;
//! [`STEP_ERRORS`] says which error of which step is one of them; one
//! [`Backoff`] schedules every wait; and every wait is told through a
//! [`Retrying`] before it starts, which the reconcile loop hands to its UI.

use std::time::Duration;

use crate::aws::{AwsError, code};
use crate::error::Handling;
use crate::plan::Step;

/// How long to keep retrying KMS's `MalformedPolicyDocumentException`
/// (a principal in the policy that IAM does not know yet: eventual
/// consistency after an account or role was just created), by default.
pub const DEFAULT_POLICY_RETRY: Duration = Duration::from_secs(120);

/// How long to wait, by default, for AWS to show this run's own writes (a
/// new key, alias or policy) to the calls that follow them.
pub const DEFAULT_PROPAGATION_RETRY: Duration = Duration::from_secs(120);

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a run waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// `UpdateTrail` after this run's `CreateKey`: CloudTrail does not find
    /// the key yet.
    CloudTrailSeesNewKey,
    /// `UpdateTrail` after this run's `CreateKey` or `PutKeyPolicy`:
    /// CloudTrail still reads the old policy.
    CloudTrailSeesNewPolicy,
    /// `UpdateTrail` after this run's `EnableKey` or `CancelKeyDeletion`:
    /// CloudTrail still sees the key disabled.
    CloudTrailSeesKeyEnabled,
    /// A step on the key this run created: KMS does not show it yet.
    KmsShowsNewKey,
    /// A step on the key after this run's `EnableKey` or
    /// `CancelKeyDeletion`: KMS still shows the old state.
    KmsShowsKeyState,
    /// `UpdateTrail` while another change to the trail is under way
    /// (`ConflictException`), whatever this run wrote.
    TrailChangeUnderWay,
    /// `CreateKey` or `PutKeyPolicy` refused with a principal IAM does not
    /// know yet, whatever this run wrote.
    PrincipalNotKnownYet,
    /// Another run won the race for the alias; this run reads until KMS
    /// shows that alias.
    OtherRunsAlias,
    /// The check after apply still differs only where apply wrote.
    WritesVisible,
    /// `UpdateLandingZone` after this run's `CreateKey`, `PutKeyPolicy`,
    /// `EnableKey` or `CancelKeyDeletion`: Control Tower does not see the
    /// key, its policy or its state yet.
    ControlTowerSeesKey,
}

impl Why {
    /// The line the user reads while the run waits.
    pub fn says(self) -> &'static str {
        match self {
            Why::CloudTrailSeesNewKey => "waiting for CloudTrail to see the new key",
            Why::CloudTrailSeesNewPolicy => "waiting for CloudTrail to see the new key policy",
            Why::CloudTrailSeesKeyEnabled => "waiting for CloudTrail to see the key enabled",
            Why::KmsShowsNewKey => "waiting for KMS to make the new key visible",
            Why::KmsShowsKeyState => "waiting for KMS to show the key's new state",
            Why::TrailChangeUnderWay => "waiting for another change to the trail to finish",
            Why::PrincipalNotKnownYet => {
                "the key policy is not accepted yet: IAM may not know a new principal"
            }
            Why::OtherRunsAlias => "waiting for KMS to show the other run's alias",
            Why::WritesVisible => "waiting for AWS to show what apply wrote",
            Why::ControlTowerSeesKey => "waiting for Control Tower to see the key and its policy",
        }
    }

    /// The budget the wait spends.
    pub fn budget(self) -> Budget {
        match self {
            Why::PrincipalNotKnownYet => Budget::Policy,
            _ => Budget::Propagation,
        }
    }
}

/// The run's two time budgets for waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// `--policy-retry-timeout`, for each key-policy write on its own.
    Policy,
    /// `--propagation-timeout`, one budget for every other wait of the run.
    Propagation,
}

/// This run's own writes, which the calls after them may not see yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// The key the steps act on is the one this run created.
    pub key: bool,
    /// This run set the key's policy (`CreateKey` or `PutKeyPolicy`).
    pub policy: bool,
    /// This run changed the key's state (`EnableKey` or `CancelKeyDeletion`).
    pub state: bool,
}

/// The steps a [`StepError`] row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// `UpdateTrail` onto a key.
    TrailOntoKey,
    /// Any call on the trail (`UpdateTrail`, however it changes the trail).
    Trail,
    /// A call on an existing key: not `CreateKey`, `DeleteAlias` or a call
    /// on the trail.
    OnKey,
    /// A call carrying a key policy: `CreateKey` or `PutKeyPolicy`.
    PolicyWrite,
    /// `UpdateLandingZone`.
    LandingZone,
}

impl Steps {
    fn cover(self, step: &Step) -> bool {
        match self {
            Steps::TrailOntoKey => matches!(step, Step::UpdateTrail { .. }),
            Steps::Trail => step.writes_trail(),
            Steps::OnKey => {
                !(step.writes_trail()
                    || matches!(
                        step,
                        Step::CreateKey(_) | Step::DeleteAlias(_) | Step::UpdateLandingZone(_)
                    ))
            }
            Steps::PolicyWrite => matches!(step, Step::CreateKey(_) | Step::PutKeyPolicy(_)),
            Steps::LandingZone => matches!(step, Step::UpdateLandingZone(_)),
        }
    }
}

/// The own write a [`StepError`] row needs before the error to wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// This run created the key.
    NewKey,
    /// This run created the key or set its policy.
    NewKeyOrPolicy,
    /// This run changed the key's state.
    NewState,
    /// This run created the key, set its policy or changed its state.
    AnyKeyWrite,
    /// Nothing: the error is waited for whatever this run wrote.
    Anything,
}

impl After {
    fn holds(self, written: Written) -> bool {
        match self {
            After::NewKey => written.key,
            After::NewKeyOrPolicy => written.key || written.policy,
            After::NewState => written.state,
            After::AnyKeyWrite => written.key || written.policy || written.state,
            After::Anything => true,
        }
    }
}

/// One row of [`STEP_ERRORS`]: the error `code` of one of `steps`, which
/// the error table ([`crate::error::handling`]) handles as `handling`, is
/// waited for as `why` when `after` holds.
#[derive(Debug, Clone, Copy)]
pub struct StepError {
    pub code: &'static str,
    pub handling: Handling,
    pub steps: Steps,
    pub after: After,
    pub why: Why,
}

/// Every error of a step that is waited for, and why. An
/// [`Handling::AfterOwnWrite`] error is waited for only after the own write
/// that can cause it (the same error without it fails at once, with its
/// hint); a [`Handling::Wait`] error whatever this run wrote. KMS's
/// lockout safety check shares `MalformedPolicyDocumentException` with an
/// unknown principal, but the error table handles it as a hint: waiting
/// does not change the caller's permissions, so it fails at once.
#[rustfmt::skip]
pub const STEP_ERRORS: &[StepError] = &[
    //  code                                   handling                  steps                 after                   why
    row(code::KMS_KEY_NOT_FOUND,               Handling::AfterOwnWrite,  Steps::TrailOntoKey,  After::NewKey,          Why::CloudTrailSeesNewKey),
    row(code::INSUFFICIENT_ENCRYPTION_POLICY,  Handling::AfterOwnWrite,  Steps::TrailOntoKey,  After::NewKeyOrPolicy,  Why::CloudTrailSeesNewPolicy),
    row(code::KMS_KEY_DISABLED,                Handling::AfterOwnWrite,  Steps::TrailOntoKey,  After::NewState,        Why::CloudTrailSeesKeyEnabled),
    row(code::KMS_EXCEPTION,                   Handling::AfterOwnWrite,  Steps::TrailOntoKey,  After::NewState,        Why::CloudTrailSeesKeyEnabled),
    row(code::NOT_FOUND,                       Handling::AfterOwnWrite,  Steps::OnKey,         After::NewKey,          Why::KmsShowsNewKey),
    row(code::DISABLED,                        Handling::AfterOwnWrite,  Steps::OnKey,         After::NewState,        Why::KmsShowsKeyState),
    row(code::KMS_INVALID_STATE,               Handling::AfterOwnWrite,  Steps::OnKey,         After::NewState,        Why::KmsShowsKeyState),
    row(code::CONFLICT,                        Handling::Wait,           Steps::Trail,         After::Anything,        Why::TrailChangeUnderWay),
    row(code::MALFORMED_POLICY,                Handling::Wait,           Steps::PolicyWrite,   After::Anything,        Why::PrincipalNotKnownYet),
    row(code::VALIDATION,                      Handling::AfterOwnWrite,  Steps::LandingZone,   After::AnyKeyWrite,     Why::ControlTowerSeesKey),
];

const fn row(
    code: &'static str,
    handling: Handling,
    steps: Steps,
    after: After,
    why: Why,
) -> StepError {
    StepError {
        code,
        handling,
        steps,
        after,
        why,
    }
}

/// Whether `step`'s error `e`, after this run's `written`, is waited for,
/// and why: the row of [`STEP_ERRORS`] that matches it, if any.
pub fn step_error(step: &Step, written: Written, e: &AwsError) -> Option<Why> {
    let handling = crate::error::handling(e.operation, &e.code, &e.message)?;
    STEP_ERRORS
        .iter()
        .find(|r| {
            r.code == e.code
                && r.handling == handling
                && r.steps.cover(step)
                && r.after.holds(written)
        })
        .map(|r| r.why)
}

/// A wait about to start, as the UI tells it.
#[derive(Debug, Clone, Copy)]
pub struct Retrying<'a> {
    pub why: Why,
    /// The failed call and AWS's error code (AWS's text: escape it before
    /// printing), when an error is what is waited out.
    pub error: Option<&'a AwsError>,
    /// The attempt that follows the wait, and the attempts at most.
    pub attempt: usize,
    pub attempts: usize,
    pub wait: Duration,
}

/// Where a wait is in its [`Backoff`] schedule.
#[derive(Debug)]
pub struct Turns {
    schedule: Backoff,
    attempts: usize,
    attempt: usize,
    wait: Duration,
}

impl Turns {
    /// Waits before the next attempt if the schedule (its attempts and its
    /// deadline) allows one, after telling `told` about it; `false` when
    /// the schedule is spent.
    pub async fn wait(
        &mut self,
        why: Why,
        error: Option<&AwsError>,
        told: impl FnOnce(&Retrying),
    ) -> bool {
        let deadline_allows = self.schedule.deadline.is_none_or(|d| {
            tokio::time::Instant::now()
                .checked_add(self.wait)
                .is_some_and(|end| end <= d)
        });
        if self.attempt >= self.attempts || !deadline_allows {
            return false;
        }
        self.attempt += 1;
        let retrying = Retrying {
            why,
            error,
            attempt: self.attempt,
            attempts: self.attempts,
            wait: self.wait,
        };
        tracing::info!(
            why = ?why,
            operation = error.map(|e| e.operation),
            code = error.map(|e| e.code.as_str()),
            wait = ?self.wait,
            attempt = self.attempt,
            attempts = self.attempts,
            "retrying"
        );
        told(&retrying);
        tokio::time::sleep(self.wait).await;
        self.wait = Backoff::after(self.wait);
        true
    }
}

/// A bounded retry with exponential backoff: waits `first`, then twice as
/// long each time up to [`MAX_BACKOFF`], as long as the next wait still ends
/// within `total` of the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub total: Duration,
    pub first: Duration,
    /// No wait may end after this: a budget shared by every retry of a run.
    pub deadline: Option<tokio::time::Instant>,
}

impl Backoff {
    /// How many attempts the schedule allows at most: the first, and one
    /// after each wait.
    /// Computed, not counted wait by wait: the doubling waits below
    /// [`MAX_BACKOFF`] are at most a few dozen, and the rest fit in the time
    /// left divided by [`MAX_BACKOFF`], whatever `total` is.
    pub fn attempts(&self) -> usize {
        let (mut spent, mut wait, mut attempts) = (Duration::ZERO, self.first, 1usize);
        if wait.is_zero() {
            return attempts;
        }
        while wait < MAX_BACKOFF && spent.saturating_add(wait) <= self.total {
            spent += wait;
            wait = Self::after(wait);
            attempts += 1;
        }
        if wait >= MAX_BACKOFF {
            let left = self.total.saturating_sub(spent).as_nanos() / MAX_BACKOFF.as_nanos();
            attempts = attempts.saturating_add(usize::try_from(left).unwrap_or(usize::MAX));
        }
        attempts
    }

    /// The schedule from its first attempt on.
    pub fn turns(&self) -> Turns {
        Turns {
            schedule: *self,
            attempts: self.attempts(),
            attempt: 1,
            wait: self.first,
        }
    }

    /// The wait after `wait`: twice as long, at most [`MAX_BACKOFF`].
    pub fn after(wait: Duration) -> Duration {
        (wait * 2).min(MAX_BACKOFF)
    }
}

/// The schedules of a run's waits, by [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedules {
    pub policy: Backoff,
    pub propagation: Backoff,
}

impl Schedules {
    pub fn of(&self, budget: Budget) -> Backoff {
        match budget {
            Budget::Policy => self.policy,
            Budget::Propagation => self.propagation,
        }
    }

    /// Calls `call` until it succeeds, fails with an error `waited_for`
    /// does not wait for, or the budget of what it waits for is spent; then
    /// the error says how long it was retried. Each budget has its own
    /// turns, so waits of one kind do not spend the other's.
    pub async fn retry<T, F, Fut>(
        &self,
        waited_for: impl Fn(&AwsError) -> Option<Why>,
        told: impl Fn(&Retrying),
        mut call: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        let started = tokio::time::Instant::now();
        let (mut policy, mut propagation) = (self.policy.turns(), self.propagation.turns());
        loop {
            let e = match call().await {
                Err(e) => e,
                ok => return ok,
            };
            let Some(why) = waited_for(&e) else {
                return Err(e);
            };
            let turns = match why.budget() {
                Budget::Policy => &mut policy,
                Budget::Propagation => &mut propagation,
            };
            if !turns.wait(why, Some(&e), &told).await {
                let mut e = e;
                e.message = format!(
                    "{} (still rejected after retrying for {:.0?})",
                    e.message,
                    started.elapsed()
                );
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;

    /// A step of each kind [`Steps`] tells apart.
    fn steps() -> Vec<Step> {
        vec![
            Step::CreateKey(crate::aws::NewKey {
                description: String::new(),
                policy: String::new(),
                tags: Default::default(),
            }),
            Step::PutKeyPolicy(String::new()),
            Step::EnableKey,
            Step::CreateAlias("alias/a".into()),
            Step::DeleteAlias("alias/a".into()),
            Step::UpdateTrail {
                trail: "t".into(),
                log_file_validation: false,
            },
            Step::EnableLogFileValidation("t".into()),
            Step::UpdateLandingZone(Box::new(crate::plan::LandingZoneStep {
                arn: "lz".into(),
                version: "3.3".into(),
                remediation_types: Vec::new(),
                manifest: serde_json::Value::Null,
                set_key: true,
            })),
        ]
    }

    #[test]
    fn every_row_agrees_with_the_error_table_for_a_step_it_covers() {
        for r in STEP_ERRORS {
            let agrees = steps().iter().any(|s| {
                r.steps.cover(s)
                    && crate::error::handling(s.operation(), r.code, "") == Some(r.handling)
            });
            assert!(agrees, "{r:?}: no covered step's operation handles it so");
        }
    }

    #[test]
    fn an_error_after_own_write_is_waited_for_only_after_that_write() {
        let trail = &steps()[5];
        let e = AwsError::new("UpdateTrail", code::KMS_KEY_NOT_FOUND, "no such key");
        assert_eq!(step_error(trail, Written::default(), &e), None);
        let created = Written {
            key: true,
            ..Written::default()
        };
        assert_eq!(
            step_error(trail, created, &e),
            Some(Why::CloudTrailSeesNewKey)
        );
        let conflict = AwsError::new("UpdateTrail", code::CONFLICT, "busy");
        assert_eq!(
            step_error(trail, Written::default(), &conflict),
            Some(Why::TrailChangeUnderWay)
        );
    }

    #[test]
    fn kms_lockout_check_is_never_waited_for_an_unknown_principal_is() {
        let put = &steps()[1];
        let lockout = AwsError::new(
            "PutKeyPolicy",
            code::MALFORMED_POLICY,
            "The new key policy will not allow you to update the key policy in the future.",
        );
        assert_eq!(step_error(put, Written::default(), &lockout), None);
        let unknown = AwsError::new(
            "PutKeyPolicy",
            code::MALFORMED_POLICY,
            "Policy contains a statement with one or more invalid principals.",
        );
        assert_eq!(
            step_error(put, Written::default(), &unknown),
            Some(Why::PrincipalNotKnownYet)
        );
        assert_eq!(Why::PrincipalNotKnownYet.budget(), Budget::Policy);
    }

    #[test]
    fn the_backoff_doubles_up_to_ten_seconds_within_its_total() {
        let schedule = |total: u64| Backoff {
            total: std::time::Duration::from_secs(total),
            first: std::time::Duration::from_secs(1),
            deadline: None,
        };
        // 1 + 2 + 4 + 8 = 15, then 10 s at a time: 120 s allow 1 + 4 + 10 attempts.
        assert_eq!(schedule(120).attempts(), 15);
        assert_eq!(schedule(0).attempts(), 1);
        assert_eq!(schedule(1).attempts(), 2);
        assert_eq!(
            Backoff::after(std::time::Duration::from_secs(8)),
            std::time::Duration::from_secs(10)
        );
    }
}
