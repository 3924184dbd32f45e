//! `trailkey lambda`: trailkey as an AWS Lambda function (custom runtime
//! `provided.al2023`), repairing drift within seconds of the API call that
//! caused it.
//!
//! The process starts once (a cold start): it reads the config
//! (`TRAILKEY_CONFIG`, default `trailkey.toml` next to the binary) and the
//! mode (`TRAILKEY_MODE`: `plan`, the default, or `apply`), and loads the
//! AWS configuration and the clients (the management account's, or in
//! Security Tooling that account's own), which every invocation then
//! reuses. Each event is judged by [`event::classify`] without any AWS
//! call; an event about the configured trail, trailkey's key or alias, a
//! schedule or a Control Tower lifecycle event runs the reconcile loop: a
//! plan, and in `apply` mode an apply when the plan shows drift (the loop's
//! `Apply` plans first and writes only on drift, so a converged setup costs
//! only the reads). Every plan
//! tells the process which key is trailkey's; a key event that comes before
//! the first plan is told apart by reading the trail's key, the alias's key
//! and the key's tags ([`may_be_trailkeys`]), and handled unless all three
//! were read and none points at that key. The response and one JSON log
//! line on stdout say what triggered the run, the plan and whether anything
//! was applied; a failed run's error names the event. A bad config, a bad
//! `TRAILKEY_MODE` or `TRAILKEY_VERBOSE`, or an event that is not an
//! EventBridge event (a body that is not JSON included, see `NotJson`)
//! gives an error response, one JSON log line and no AWS call.
//!
//! The first run observes as a trailkey run on the command line does: who
//! runs, the organization, the trail, and from the management account
//! `AssumeRole` into Security Tooling (10 calls in 2 rounds on a converged
//! setup). A run that succeeds leaves the next one what it need not read
//! again ([`observe::Warm`]): who runs and the organization, the trail's
//! ARN and its bucket's Region, the key it planned, and the Security
//! Tooling role's credentials, renewed before any call when they expire
//! within [`observe::RENEW_WITHIN`]. A warm invocation then reads the
//! trail, its status and tags, the alias and that key's policy, rotation
//! and tags in one round (7 calls; a repair by one wave of writes takes one
//! round more: the writes with the verification's reads, `UpdateTrail`'s
//! answer being the trail after it, and the key's writes and
//! `StartLogging` taken at their word where the read does not show them
//! yet, [`crate::apply::Verification::TakenAtTheirWord`], for the next run
//! to read back), and anything it did not expect (a
//! refused call, another bucket, a new delivery error, ...) sends it back
//! to the cold path, which reads everything again. A run that failed
//! (an AWS error, a conflict, a failed check) leaves nothing: the next one
//! is cold. One that found the setup broken in a way apply does not fix
//! answers an error too, but keeps what it read, which is current. The command line keeps nothing between
//! runs.
//!
//! Every invocation, whatever its outcome, also writes one line of
//! CloudWatch metrics in the embedded metric format ([`metrics`]): the
//! drift found and repaired, whether it ended in an error, and how long it
//! took, which the deployment template's alarms watch.
//!
//! The deployment template puts an SQS queue between the EventBridge rules
//! and the function: an invocation then carries a batch of events, which
//! runs the reconcile loop once for all of them (`Function::batch`).

mod batch;
pub mod event;
pub mod metrics;
mod not_json;

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use crate::aws::sdk::{Options, SdkConnect};
use crate::aws::{Connect, KeyStore, Management};
use crate::config::{self, Desired};
use crate::error::Error;
use crate::observe;
use crate::plan::{Address, Plan, Step};
use crate::reconcile::{self, Command, Outcome};
use crate::render::PlanJson;
use event::{EventInfo, Verdict};
use metrics::Measured;
use not_json::NotJson;
pub(crate) use not_json::Payload;

/// The environment variables the Lambda runtime interface needs; the
/// runtime client panics without them, so they are checked first.
const RUNTIME_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// What a handled event does besides planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Report drift only.
    Plan,
    /// Apply when the plan shows drift.
    Apply,
}

impl Mode {
    fn from_env(value: Option<&str>) -> Result<Mode, String> {
        match value {
            None | Some("plan") => Ok(Mode::Plan),
            Some("apply") => Ok(Mode::Apply),
            Some(other) => Err(format!(
                "TRAILKEY_MODE is {other:?}: set it to \"plan\" (report drift, the default) or \"apply\" (repair it)"
            )),
        }
    }
}

/// Where the config is: `-c` when given, else `TRAILKEY_CONFIG`, else
/// `trailkey.toml` next to the binary (`/var/task` in a Lambda deployment
/// package).
fn config_path(given: Option<PathBuf>) -> PathBuf {
    if let Some(path) = given.or_else(|| std::env::var_os("TRAILKEY_CONFIG").map(PathBuf::from)) {
        return path;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(config::DEFAULT_CONFIG)))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG))
}

/// `TRAILKEY_VERBOSE`: what `-v` (1) or `-vv` (2) log, for a function that
/// Lambda starts without arguments; unset or 0: nothing besides the
/// invocations' lines.
fn verbosity_from_env(value: Option<&str>) -> Result<u8, String> {
    match value {
        None | Some("" | "0") => Ok(0),
        Some("1") => Ok(1),
        Some("2") => Ok(2),
        Some(other) => Err(format!(
            "TRAILKEY_VERBOSE is {other:?}: set it to 1 (what trailkey does, as -v) or 2 (also every AWS call, as -vv), or leave it unset"
        )),
    }
}

/// What the process set up once, for every invocation.
pub(crate) struct Function<C: Connect> {
    /// The config and the clients, or why every invocation fails.
    ready: Result<(Desired, C, Mode), String>,
    /// trailkey's key ARN, once a run has seen it: key events about other
    /// keys are then ignored without an AWS call.
    known_key: RefCell<Option<String>>,
    /// The configured trail's ARN, once a run has seen it: trail events
    /// about same-named trails of other accounts are then ignored.
    known_trail: RefCell<Option<String>>,
    /// What the last run, if it succeeded, leaves the next one to observe
    /// from in one round (`observe::observe_warm`): who runs, the
    /// organization, the trail's ARN and bucket Region, the key, and the
    /// Security Tooling role's credentials. Taken by each run, and put back
    /// only by a run that succeeds; unlike `known_key`, which only sorts
    /// events, a failed run forgets it.
    warm: RefCell<Option<observe::Warm<C::KeyStore>>>,
    /// The metrics' `FunctionName` ([`metrics::function_name`]).
    function_name: String,
}

/// The response of one invocation, also written as the log line.
#[derive(Serialize)]
struct Response<'a> {
    event: &'a EventInfo,
    /// Whether the event ran the reconcile loop.
    handled: bool,
    /// Why an event was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<PlanJson<'a>>,
    /// Whether the run wrote anything.
    applied: bool,
    /// The writes, `operation target` each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    writes: Vec<String>,
    /// Changes the function leaves to `trailkey apply`: the landing zone's
    /// KMS key, whose `UpdateLandingZone` runs longer than a function may.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pending: Vec<String>,
}

/// Runs the Lambda runtime loop until the runtime ends it.
/// `config` is `-c` when given on the command line; `verbose` the number of
/// `-v`, whose logging the caller has set up already.
pub fn run(
    profile: Option<String>,
    config: Option<PathBuf>,
    verbose: u8,
) -> Result<crate::Status, Error> {
    if let Some(missing) = RUNTIME_ENV.iter().find(|v| std::env::var_os(v).is_none()) {
        return Err(Error::usage(
            format!("trailkey lambda runs inside AWS Lambda, but {missing} is not set"),
            "deploy the binary as `bootstrap` of a provided.al2023 function (docs/control-tower.md, event-driven repair); to try it locally, run it under a Lambda Runtime API emulator",
        ));
    }
    if std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|m| m.parse::<i32>().ok())
        .is_none()
    {
        return Err(Error::usage(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a whole number",
            "Lambda sets it to the function's memory in MB",
        ));
    }
    crate::block_on(async {
        let function = Function::start(profile, config, verbose).await;
        let not_json = NotJson::default();
        let handler = lambda_runtime::service_fn(|e: lambda_runtime::LambdaEvent<Value>| {
            let payload = match not_json.take(&e.context.request_id) {
                Some(why) => Err(why),
                None => Ok(e.payload),
            };
            function.answer(payload)
        });
        // What `lambda_runtime::run` builds (the runtime and its tracing
        // span per invocation), with `NotJson` in front of both.
        lambda_runtime::Runtime::new(handler)
            .layer(lambda_runtime::layers::TracingLayer::new())
            .layer(not_json.clone())
            .run()
            .await
            .map_err(|e| {
                Error::usage(
                    format!("the Lambda runtime stopped: {e}"),
                    "see the function's log for the invocation that stopped it",
                )
            })
    })?;
    Ok(crate::Status::Success)
}

impl Function<SdkConnect> {
    /// The cold start: the config, the mode, the log level and the
    /// clients. Makes no AWS call; a bad config, mode or log level is kept
    /// and answers every invocation.
    async fn start(profile: Option<String>, config: Option<PathBuf>, verbose: u8) -> Self {
        let path = config_path(config);
        let mode = Mode::from_env(std::env::var("TRAILKEY_MODE").ok().as_deref());
        let verbosity = verbosity_from_env(std::env::var("TRAILKEY_VERBOSE").ok().as_deref());
        if let (0, Ok(level)) = (verbose, &verbosity) {
            crate::logging::init(*level);
        }
        let ready = match (config::load(&path), mode, verbosity) {
            (Err(e), _, _) => Err(e.render()),
            (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            (Ok(desired), Ok(mode), Ok(_)) => {
                let options = Options {
                    profile,
                    management_role: desired.management_role.clone(),
                };
                let connect = SdkConnect::new(desired.region.as_str(), &options).await;
                Ok((desired, connect, mode))
            }
        };
        if let Err(e) = &ready {
            log_line(&serde_json::json!({"level": "error", "message": e}));
        }
        let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
        Function::new(ready, &metrics::function_name(name.as_deref()))
    }
}

impl<C: Connect> Function<C> {
    /// A process that has not seen trailkey's key yet, whose metrics name
    /// the function `function_name`.
    pub(crate) fn new(ready: Result<(Desired, C, Mode), String>, function_name: &str) -> Self {
        Function {
            ready,
            known_key: RefCell::new(None),
            known_trail: RefCell::new(None),
            warm: RefCell::new(None),
            function_name: function_name.to_owned(),
        }
    }

    /// One invocation of an event that is JSON, as the in-process tests
    /// send them.
    #[cfg(test)]
    pub(crate) async fn invoke(&self, payload: Value) -> Result<Value, lambda_runtime::Diagnostic> {
        self.answer(Ok(payload)).await
    }

    /// One invocation: the response, or the error Lambda reports, after
    /// its log line and its one line of metrics. The payload is an
    /// EventBridge event, an SQS batch of them, or why the body was not
    /// JSON ([`NotJson`]).
    pub(crate) async fn answer(
        &self,
        payload: Payload,
    ) -> Result<Value, lambda_runtime::Diagnostic> {
        let started = std::time::Instant::now();
        let mut measured = Measured::default();
        let answer = self.answered(payload, &mut measured).await;
        let error = answer.as_ref().err().map(|e| e.error_type.as_str());
        log_line(&measured.line(
            &self.function_name,
            error,
            started.elapsed(),
            metrics::now_ms(),
        ));
        answer
    }

    /// [`Function::answer`] without the metrics, which it fills in
    /// `measured`.
    async fn answered(
        &self,
        payload: Payload,
        measured: &mut Measured,
    ) -> Result<Value, lambda_runtime::Diagnostic> {
        let (desired, connect, mode) = self
            .ready
            .as_ref()
            .map_err(|e| failure("trailkey.ConfigError", e.clone(), None))?;
        measured.mode = Some(*mode);
        // The reason quotes no byte of the body, but is escaped all the same:
        // it is about text from outside.
        let payload = payload.map_err(|why| {
            failure(
                "trailkey.BadEvent",
                crate::escape::escape(&why).into_owned(),
                None,
            )
        })?;
        if let Some(records) = event::sqs_batch(&payload) {
            let records = records.map_err(|why| failure("trailkey.BadEvent", why, None))?;
            return Ok(self
                .batch(&records, desired, connect, *mode, measured)
                .await);
        }
        self.event(&payload, desired, connect, *mode, measured)
            .await
    }

    /// One EventBridge event: ignored, with the reason, or handled by one
    /// run of the reconcile loop.
    async fn event(
        &self,
        payload: &Value,
        desired: &Desired,
        connect: &C,
        mode: Mode,
        measured: &mut Measured,
    ) -> Result<Value, lambda_runtime::Diagnostic> {
        let known = self.known_key.borrow().clone();
        let trail = self.known_trail.borrow().clone();
        let (info, verdict) = event::classify(payload, desired, known.as_deref(), trail.as_deref())
            .map_err(|e| failure("trailkey.BadEvent", e, None))?;
        if let Some(reason) = ignored(verdict, &info, desired, connect).await {
            measured.outcome = Some(metrics::Outcome::Ignored);
            let response = Response {
                event: &info,
                handled: false,
                reason: Some(reason),
                mode,
                plan: None,
                applied: false,
                writes: Vec::new(),
                pending: Vec::new(),
            };
            return Ok(respond(&response));
        }
        let outcome = self.reconcile(desired, connect, mode).await.map_err(|e| {
            failure(
                e.kind,
                format!("{} ({}){}", e.rendered, info.described(), e.started),
                Some(&info),
            )
        })?;
        let (plan, done) = plan_and_writes(&outcome);
        measured.ran(plan, done);
        let response = Response {
            event: &info,
            handled: true,
            reason: None,
            mode,
            plan: Some(PlanJson::from(plan)),
            applied: !done.is_empty(),
            writes: writes(done),
            pending: pending(plan, self.known_key.borrow().as_deref()),
        };
        let answered = respond(&response);
        // A setup broken in a way apply does not fix (a foreign Deny that
        // stops CloudTrail's deliveries) fails the invocation, in either
        // mode, as `plan --detailed-exitcode` and `apply` exit 1: an alarm on
        // the function's errors then sees it.
        if let Some(e) = crate::plan::broken(&plan.findings) {
            let event = info.id.as_deref().unwrap_or("without an ID");
            return Err(failure(
                "trailkey.BrokenSetup",
                format!("{} (event {event})", e.render()),
                Some(&info),
            ));
        }
        Ok(answered)
    }

    /// One run of the reconcile loop in `mode`. Its plan tells the process
    /// which key and trail are trailkey's.
    async fn reconcile(
        &self,
        desired: &Desired,
        connect: &C,
        mode: Mode,
    ) -> Result<Outcome, RunError> {
        let command = match mode {
            Mode::Plan => Command::Plan,
            Mode::Apply => Command::Apply {
                auto_approve: true,
                policy_retry: crate::retry::DEFAULT_POLICY_RETRY,
                propagation_retry: crate::retry::DEFAULT_PROPAGATION_RETRY,
                wait_for_delivery: None,
                landing_zone: None,
                // The next run reads back what this one wrote: the write's
                // own event or the schedule starts it.
                verification: crate::apply::Verification::TakenAtTheirWord,
            },
        };
        let mut ui = Quiet::default();
        let started = SystemTime::now();
        let (observed, keys) = self
            .observe(desired, connect, started)
            .await
            .map_err(|e| run_error(e, &ui))?;
        let facts = observe::Facts::of(&observed);
        let outcome = reconcile::run_observed(
            connect,
            &keys,
            desired,
            command,
            (observed, started),
            &mut ui,
        )
        .await
        .map_err(|e| run_error(e, &ui))?;
        let (plan, _) = plan_and_writes(&outcome);
        let key = match &outcome {
            Outcome::Applied { result, .. } => result.key_arn.clone(),
            _ => plan.key.as_ref().map(|k| k.arn.clone()),
        };
        // Every plan says which key is trailkey's now: a key replaced
        // elsewhere (its trail re-pointed, its alias deleted) is learned
        // from the plan its events run, and none known means the next key
        // call is settled by reading AWS again.
        *self.known_key.borrow_mut() = key.clone();
        *self.known_trail.borrow_mut() = Some(plan.target.trail_arn.clone());
        *self.warm.borrow_mut() = observe::Warm::keep(desired, facts, key, keys);
        Ok(outcome)
    }

    /// Observes at `now`: from what the last run left (one round of calls)
    /// when it can, else cold, as a first run does. What the last run left
    /// is taken: if it is stale, or this run fails, the next run observes
    /// cold too.
    async fn observe(
        &self,
        desired: &Desired,
        connect: &C,
        now: SystemTime,
    ) -> Result<(crate::plan::Observed, C::KeyStore), Error> {
        let warm = self.warm.borrow_mut().take();
        if let Some(warm) = warm {
            match observe::observe_warm(connect, desired, warm, now).await {
                Ok(read) => {
                    tracing::info!("observed from what the last run left");
                    return Ok(read);
                }
                Err(stale) => {
                    tracing::info!(why = %stale, "what the last run left is stale: observing anew");
                }
            }
        }
        observe::observe(connect, desired).await
    }
}

/// A failed run as the function reports it; `ui` holds the apply steps it
/// started.
fn run_error(e: Error, ui: &Quiet) -> RunError {
    RunError {
        kind: match &e {
            Error::Aws { .. } => "trailkey.AwsError",
            Error::Conflict { .. } => "trailkey.Conflict",
            _ => "trailkey.CheckFailed",
        },
        rendered: e.render(),
        // An apply that stopped part-way: what it had started, which stays
        // done (a rerun continues from there).
        started: match ui.started.as_slice() {
            [] => String::new(),
            steps => format!("; apply steps started before it: {}", steps.join(", ")),
        },
    }
}

/// A failed run of the reconcile loop: its Lambda error type, the error's
/// text, and the apply steps started before it (empty, or `; apply steps
/// started before it: …`).
struct RunError {
    kind: &'static str,
    rendered: String,
    started: String,
}

/// The plan of a plan or apply run, and the apply's writes.
fn plan_and_writes(outcome: &Outcome) -> (&Plan, &[crate::apply::Done]) {
    match outcome {
        Outcome::Planned(plan) => (plan, &[]),
        Outcome::Applied { plan, done, .. } => (plan, done),
        Outcome::Policy(_) => unreachable!("only plan and apply run here"),
    }
}

/// The landing zone's change, which the function never makes: what it
/// would set, and who makes it.
/// `key` is the key the run left, when the plan could not name it (a key
/// the same run created).
pub(super) fn pending(plan: &Plan, key: Option<&str>) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| c.address == crate::plan::Address::LandingZone)
        .filter(|c| c.action != crate::plan::Action::NoOp)
        .map(|c| {
            let after = match (c.after["kms_key_arn"].as_str(), key) {
                (Some(crate::plan::KNOWN_AFTER_APPLY), Some(key)) => key.to_owned(),
                _ => c.after["kms_key_arn"].to_string(),
            };
            format!(
                "landing_zone: kms_key_arn {} -> {after}; run `trailkey apply` (UpdateLandingZone runs 20 to 60 minutes, longer than a Lambda function)",
                c.before["kms_key_arn"]
            )
        })
        .collect()
}

/// The writes, `operation target` each.
fn writes(done: &[crate::apply::Done]) -> Vec<String> {
    done.iter()
        .map(|d| format!("{} {}", d.operation, d.target))
        .collect()
}

/// The error Lambda reports, and its JSON log line, which names the event
/// when there is one.
fn failure(kind: &str, message: String, event: Option<&EventInfo>) -> lambda_runtime::Diagnostic {
    let mut line = serde_json::json!({"level": "error", "error_type": kind, "message": message});
    if let Some(event) = event {
        line["event"] = serde_json::to_value(event).unwrap_or_default();
    }
    log_line(&line);
    lambda_runtime::Diagnostic {
        error_type: kind.to_owned(),
        error_message: message,
    }
}

/// Why the event is ignored, or `None` when it runs the reconcile loop. A
/// call on a key the process does not know is settled by reading AWS
/// ([`may_be_trailkeys`]).
async fn ignored<C: Connect>(
    verdict: Verdict,
    info: &EventInfo,
    desired: &Desired,
    connect: &C,
) -> Option<String> {
    match verdict {
        Verdict::Handle => None,
        Verdict::Ignore(reason) => Some(reason),
        Verdict::IfTrailkeys(key) => (!may_be_trailkeys(connect, desired, &key).await).then(|| {
            format!(
                "{} of another key ({key:?}): not the trail's key, not the alias's, not tagged ManagedBy = trailkey",
                info.name.as_deref().unwrap_or("a call")
            )
        }),
    }
}

/// Whether the key `key` (an ID or an ARN in the key's account)
/// may be trailkey's: the key the trail uses, the key the alias names, or a
/// key tagged `ManagedBy = trailkey`. Reads the trail (`GetTrail`, or
/// from Security Tooling without the trail's ARN `DescribeTrails`) with
/// `AssumeRole` (none from Security Tooling), then the key's tags with the
/// alias's key:
/// 4 calls in 2 rounds (one call and one round more when who runs is not
/// known yet: `GetCallerIdentity` first). It is
/// not trailkey's only when all three were read and none points at it: a
/// tag removed or an alias moved behind trailkey's back still leaves the
/// trail's key, and anything unread (the role, a key policy or the network
/// refused) is left to the plan, which reports it.
async fn may_be_trailkeys<C: Connect>(connect: &C, desired: &Desired, key: &str) -> bool {
    let id = key.rsplit('/').next().unwrap_or(key);
    let is = |arn: &str| arn == key || arn.rsplit('/').next() == Some(id);
    let alias = desired.alias.full();
    // Who runs: named by the credentials (the template sets
    // AWS_ACCOUNT_ID), or known once a run asked STS; else asked now.
    let runner = match crate::observe::known_runner(connect, desired).await {
        Some(runner) => runner,
        // As the first round decides: no role for an account that is
        // neither Security Tooling nor the configured management account.
        None => match connect.management().caller_identity().await {
            Ok(identity) => {
                match crate::observe::known_caller(desired, Some(&identity.account)).runner() {
                    Some(runner) => runner,
                    None => return true,
                }
            }
            Err(_) => return true,
        },
    };
    // By name or ARN; from Security Tooling with only the trail's name,
    // among the trails DescribeTrails lists (the organization's included).
    let mgmt = connect.management();
    let read_trail = async {
        match crate::observe::trail_name_for(desired, Some(runner)) {
            Some(name) => mgmt.get_trail(&name).await.ok(),
            None => mgmt
                .describe_trails()
                .await
                .ok()
                .and_then(|trails| crate::observe::configured_trail(desired, trails))
                .map(|(trail, _)| trail),
        }
    };
    let (trail, keys) = tokio::join!(
        read_trail,
        crate::observe::key_store(connect, desired, runner),
    );
    let (Some(trail), Ok(keys)) = (trail, keys) else {
        return true;
    };
    if trail.kms_key_id.as_deref().is_some_and(is) {
        return true;
    }
    let (tags, aliased) = tokio::join!(keys.list_tags(key), keys.describe_key(&alias));
    match (tags, aliased) {
        (Ok(tags), Ok(aliased)) => {
            crate::model::tags::managed_by_trailkey(&tags) || aliased.is_some_and(|k| is(&k.arn))
        }
        _ => true,
    }
}

/// The response as JSON, also written as the invocation's log line.
fn respond(response: &Response<'_>) -> Value {
    let value = serde_json::to_value(response).expect("the response serializes");
    let mut line = serde_json::json!({"level": "info", "message": "trailkey lambda invocation"});
    line["response"] = value.clone();
    log_line(&line);
    value
}

/// One JSON object on one line of stdout, which Lambda sends to the
/// function's log.
fn log_line(value: &Value) {
    // Unit tests run invocations in process: there the line goes through
    // the test harness's captured output instead, and is kept for the
    // test's thread to read ([`logged`]).
    #[cfg(test)]
    {
        println!("{value}");
        LOGGED.with(|lines| lines.borrow_mut().push(value.clone()));
    }
    #[cfg(not(test))]
    crate::output::out(&format!("{value}\n"));
}

#[cfg(test)]
thread_local! {
    /// The lines [`log_line`] wrote on this thread since [`logged`] last
    /// took them.
    static LOGGED: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
}

/// The lines this thread's invocations wrote since the last call.
#[cfg(test)]
pub(crate) fn logged() -> Vec<Value> {
    LOGGED.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
}

/// The reconcile loop's UI in Lambda: no terminal, nothing to confirm
/// (apply runs auto-approved). The loop itself logs each step (`-v`,
/// `TRAILKEY_VERBOSE=1`); this keeps them, `operation address` each, for
/// the error of an apply that stops part-way.
#[derive(Default)]
struct Quiet {
    started: Vec<String>,
}

impl reconcile::Ui for Quiet {
    fn about_to_apply(&mut self, _plan: &Plan) {}

    fn confirm(&mut self, _plan: &Plan) -> Result<(), Error> {
        Ok(())
    }

    fn step(&mut self, _index: usize, _total: usize, address: Address, step: &Step) {
        self.started
            .push(format!("{} {}", step.operation(), address.as_str()));
    }

    fn planning_again(&mut self, why: &str, _plan: &Plan) {
        tracing::info!(why = %why, "planning again");
    }

    /// The wait itself is logged where it starts ([`crate::retry`]).
    fn waiting(&mut self, _retrying: &crate::retry::Retrying) {}

    fn delivery(&mut self, _waited: std::time::Duration, _within: std::time::Duration) {}

    /// Never called: the function makes no `UpdateLandingZone`.
    fn landing_zone(&mut self, _: &str, _: std::time::Duration, _: std::time::Duration) {}
}

#[cfg(test)]
mod handler_tests;
#[cfg(test)]
mod warm_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailkey_verbose_is_0_1_or_2() {
        for (value, level) in [
            (None, 0),
            (Some(""), 0),
            (Some("0"), 0),
            (Some("1"), 1),
            (Some("2"), 2),
        ] {
            assert_eq!(verbosity_from_env(value), Ok(level), "{value:?}");
        }
        for bad in ["3", "debug", "-1", " 1"] {
            let e = verbosity_from_env(Some(bad)).unwrap_err();
            assert!(e.starts_with("TRAILKEY_VERBOSE is"), "{e}");
        }
    }

    #[test]
    fn the_config_is_c_then_trailkey_config_then_next_to_the_binary() {
        let given = PathBuf::from("/etc/given.toml");
        assert_eq!(config_path(Some(given.clone())), given);
        if std::env::var_os("TRAILKEY_CONFIG").is_none() {
            let exe = std::env::current_exe().unwrap();
            assert_eq!(
                config_path(None),
                exe.parent().unwrap().join("trailkey.toml")
            );
        }
    }
}
