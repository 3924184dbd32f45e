//! The function's CloudWatch metrics: every invocation writes one line to
//! stdout in CloudWatch's embedded metric format (EMF), whatever its
//! outcome, besides its JSON log line. Lambda sends stdout to the
//! function's log group, and CloudWatch Logs turns each such line into one
//! value of each metric below ("Specification: Embedded metric format",
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//!
//! The line is one JSON object: `_aws` holds `Timestamp` (milliseconds
//! since the Unix epoch) and `CloudWatchMetrics`, one metric directive with
//! the namespace [`NAMESPACE`], one dimension set holding [`DIMENSION`],
//! and each metric's `Name` and `Unit`; the dimension's value and each metric's
//! value are top-level members, as the specification's target members.
//! `Mode` and `Outcome` are top-level members too, which CloudWatch Logs
//! keeps as fields of the log event (for Logs Insights) and makes no metric
//! of. For example:
//!
//! ```json
//! {"_aws":{"Timestamp":1764504000000,"CloudWatchMetrics":[{"Namespace":"trailkey",
//!   "Dimensions":[["FunctionName"]],"Metrics":[{"Name":"DriftFound","Unit":"Count"},
//!   {"Name":"DriftRepaired","Unit":"Count"},{"Name":"Errors","Unit":"Count"},
//!   {"Name":"HandlingTime","Unit":"Milliseconds"}]}]},
//!  "FunctionName":"trailkey-trailkey","Mode":"apply","Outcome":"repaired",
//!  "DriftFound":1,"DriftRepaired":1,"Errors":0,"HandlingTime":412.503}
//! ```
//!
//! (one line in the log). The only text in it is trailkey's own (the
//! names, the mode, the outcome) and the function's name, which Lambda sets
//! ([`function_name`] keeps it to the characters Lambda allows); nothing
//! from an event or from AWS reaches it, and its values are numbers.
//!
//! The dimension is the function's name only, not the mode: an alarm on a
//! metric names all of its dimensions, and one that named the mode would
//! go quiet when the mode changed outside the template.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Value, json};

use super::Mode;
use crate::apply::Done;
use crate::plan::{Action, Address, Plan};

/// The metrics' namespace.
pub const NAMESPACE: &str = "trailkey";

/// The metrics' one dimension, the function's name (Lambda's
/// `AWS_LAMBDA_FUNCTION_NAME`, the name CloudFormation's `Ref` of the
/// function gives).
pub const DIMENSION: &str = "FunctionName";

/// The number of changes the invocation's plan shows (its summary's add,
/// change and destroy): 0 when the plan shows no drift, or when no plan
/// ran (an ignored event, a bad event or config, a run that failed before
/// its plan). A first run, which creates the key, counts its creations.
pub const DRIFT_FOUND: &str = "DriftFound";

/// The number of those changes the invocation's apply made (`apply` mode):
/// 0 in `plan` mode, and a landing-zone change left to `trailkey apply` is
/// found, not repaired.
pub const DRIFT_REPAIRED: &str = "DriftRepaired";

/// 1 when the invocation ended in an error, else 0: an error response (a
/// bad config, mode or event, a run that failed, a broken setup), or an SQS
/// batch that reports records as failed (the batch's log line then has
/// `"level": "error"`).
pub const ERRORS: &str = "Errors";

/// How long the invocation took, from the event reaching the handler to
/// its answer, in milliseconds (to the microsecond).
pub const HANDLING_TIME: &str = "HandlingTime";

/// Each metric's name and unit, in the order of the line.
pub const METRICS: [(&str, &str); 4] = [
    (DRIFT_FOUND, "Count"),
    (DRIFT_REPAIRED, "Count"),
    (ERRORS, "Count"),
    (HANDLING_TIME, "Milliseconds"),
];

/// The longest name Lambda gives a function.
const NAME_MAX: usize = 64;

/// How an invocation ended, the line's `Outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// No plan ran: the event (or every record of the batch) is about
    /// something else.
    Ignored,
    /// The plan shows no drift.
    InSync,
    /// The plan shows drift that this invocation did not repair (`plan`
    /// mode, or only the landing zone's change, which is left pending).
    Drift,
    /// The apply made changes.
    Repaired,
    /// The run failed (an AWS error, a conflict, a failed check).
    Failed,
    /// The plan found the setup broken in a way apply does not fix.
    Broken,
    /// The payload is not an event or a batch trailkey accepts.
    BadEvent,
    /// The config, `TRAILKEY_MODE` or `TRAILKEY_VERBOSE` is bad.
    ConfigError,
}

impl Outcome {
    /// The outcome of an error response of Lambda error type `kind`.
    pub(crate) fn of_error(kind: &str) -> Outcome {
        match kind {
            "trailkey.ConfigError" => Outcome::ConfigError,
            "trailkey.BadEvent" => Outcome::BadEvent,
            "trailkey.BrokenSetup" => Outcome::Broken,
            _ => Outcome::Failed,
        }
    }
}

/// What an invocation measured, filled in as it goes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Measured {
    /// The mode, once the config and environment are known to be good.
    pub(crate) mode: Option<Mode>,
    /// How the invocation ended when it answered without an error.
    pub(crate) outcome: Option<Outcome>,
    pub(crate) drift_found: usize,
    pub(crate) drift_repaired: usize,
    /// An SQS batch reported records as failed.
    pub(crate) failed_records: bool,
}

impl Measured {
    /// Records a run's `plan` and the apply's writes `done` (none for a
    /// plan): the drift found and repaired, and the outcome they make,
    /// which it returns.
    pub(crate) fn ran(&mut self, plan: &Plan, done: &[Done]) -> Outcome {
        let changes = || plan.changes.iter().filter(|c| c.action != Action::NoOp);
        self.drift_found = changes().count();
        // An apply that wrote made every change but the landing zone's,
        // which the function leaves to `trailkey apply` (`pending`), a
        // change without a write of its own included (a new key's policy,
        // which CreateKey attaches).
        let left = changes()
            .filter(|c| c.address == Address::LandingZone)
            .count();
        self.drift_repaired = if done.is_empty() {
            0
        } else {
            self.drift_found - left
        };
        let outcome = match (self.drift_found, self.drift_repaired) {
            (0, _) => Outcome::InSync,
            (_, 0) => Outcome::Drift,
            _ => Outcome::Repaired,
        };
        self.outcome = Some(outcome);
        outcome
    }

    /// The EMF line of an invocation that measured `self`, answered with
    /// the error of Lambda type `error` (if any), took `took`, and ended at
    /// `timestamp_ms`, for the function `function` (a name
    /// [`function_name`] made).
    pub(crate) fn line(
        &self,
        function: &str,
        error: Option<&str>,
        took: Duration,
        timestamp_ms: u64,
    ) -> Value {
        let outcome = match error {
            Some(kind) => Outcome::of_error(kind),
            // Every answer without an error says how it ended; a missing
            // one would be trailkey's bug, reported as a failure.
            None => self.outcome.unwrap_or(Outcome::Failed),
        };
        let errors = u8::from(error.is_some() || self.failed_records);
        let metrics: Vec<Value> = METRICS
            .iter()
            .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
            .collect();
        let mut line = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": metrics,
                }],
            },
            DIMENSION: function,
        });
        if let Some(mode) = self.mode {
            line["Mode"] = json!(mode);
        }
        line["Outcome"] = json!(outcome);
        line[DRIFT_FOUND] = json!(self.drift_found);
        line[DRIFT_REPAIRED] = json!(self.drift_repaired);
        line[ERRORS] = json!(errors);
        // Microseconds as a fraction of a millisecond: a whole number of
        // them, so the value prints without a float's rounding noise.
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        line[HANDLING_TIME] = json!(micros as f64 / 1000.0);
        line
    }
}

/// The `FunctionName` dimension's value for Lambda's `name`: the name as it
/// is when it is one Lambda gives (letters, digits, `-` and `_`, at most 64
/// characters), which is what an alarm on the function finds; otherwise
/// each other character becomes `_` and the name is cut to 64, so that the
/// line carries nothing but such a name. `unknown` when there is none.
pub(crate) fn function_name(name: Option<&str>) -> String {
    let name = name.unwrap_or_default();
    if name.is_empty() {
        return "unknown".to_owned();
    }
    name.chars()
        .take(NAME_MAX)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '_',
        })
        .collect()
}

/// Now, in milliseconds since the Unix epoch (0 on a clock set before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line as the specification shapes it, member by member.
    #[test]
    fn the_line_is_one_metric_directive_with_its_target_members() {
        let measured = Measured {
            mode: Some(Mode::Apply),
            outcome: Some(Outcome::Repaired),
            drift_found: 2,
            drift_repaired: 1,
            failed_records: false,
        };
        let line = measured.line(
            "trailkey-trailkey",
            None,
            Duration::from_micros(412_503),
            1_764_504_000_000,
        );
        assert_eq!(
            line.to_string(),
            concat!(
                r#"{"_aws":{"Timestamp":1764504000000,"CloudWatchMetrics":[{"Namespace":"trailkey","#,
                r#""Dimensions":[["FunctionName"]],"Metrics":[{"Name":"DriftFound","Unit":"Count"},"#,
                r#"{"Name":"DriftRepaired","Unit":"Count"},{"Name":"Errors","Unit":"Count"},"#,
                r#"{"Name":"HandlingTime","Unit":"Milliseconds"}]}]},"#,
                r#""FunctionName":"trailkey-trailkey","Mode":"apply","Outcome":"repaired","#,
                r#""DriftFound":2,"DriftRepaired":1,"Errors":0,"HandlingTime":412.503}"#
            )
        );
    }

    #[test]
    fn an_error_response_counts_one_error_and_says_which() {
        for (kind, outcome) in [
            ("trailkey.ConfigError", "config_error"),
            ("trailkey.BadEvent", "bad_event"),
            ("trailkey.BrokenSetup", "broken"),
            ("trailkey.AwsError", "failed"),
            ("trailkey.Conflict", "failed"),
            ("trailkey.CheckFailed", "failed"),
        ] {
            let line = Measured::default().line("f", Some(kind), Duration::ZERO, 0);
            assert_eq!(line[ERRORS], 1, "{kind}");
            assert_eq!(line["Outcome"], outcome, "{kind}");
            assert!(line.get("Mode").is_none(), "no mode known: {line}");
            assert_eq!(line[HANDLING_TIME], 0.0);
        }
        // A batch that answered, but reported records as failed.
        let batch = Measured {
            mode: Some(Mode::Plan),
            outcome: Some(Outcome::InSync),
            failed_records: true,
            ..Measured::default()
        };
        let line = batch.line("f", None, Duration::from_millis(3), 0);
        assert_eq!(
            (&line[ERRORS], &line["Outcome"]),
            (&json!(1), &json!("in_sync"))
        );
        assert_eq!(line[HANDLING_TIME], 3.0);
    }

    #[test]
    fn the_function_name_is_kept_to_what_lambda_allows() {
        assert_eq!(function_name(Some("trailkey-prod_1")), "trailkey-prod_1");
        assert_eq!(function_name(None), "unknown");
        assert_eq!(function_name(Some("")), "unknown");
        assert_eq!(function_name(Some("a\"b\\c\n\u{1b}[2J}é")), "a_b_c___2J__");
        let long = "x".repeat(10_000);
        assert_eq!(function_name(Some(&long)), "x".repeat(64));
        let line = Measured::default().line(
            &function_name(Some("bad\"},\"Errors\":0,\"x\":{\"")),
            Some("trailkey.BadEvent"),
            Duration::ZERO,
            0,
        );
        assert_eq!(line[ERRORS], 1, "{line}");
        assert!(
            line[DIMENSION]
                .as_str()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{line}"
        );
    }

    #[test]
    fn a_time_beyond_any_clock_is_bounded() {
        let line = Measured::default().line("f", None, Duration::MAX, u64::MAX);
        assert!(line[HANDLING_TIME].as_f64().unwrap().is_finite());
        assert_eq!(line["_aws"]["Timestamp"], u64::MAX);
    }
}
