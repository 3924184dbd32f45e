//! An SQS batch of EventBridge events: judged record by record, then at
//! most one run of the reconcile loop for all the relevant records,
//! whatever their number. A flood of events within the event source
//! mapping's batching window costs one plan.
//!
//! The answer is a partial batch response
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>),
//! `{"batchItemFailures": [{"itemIdentifier": messageId}, …]}`, naming the
//! records SQS is to deliver again:
//! - a record whose body is not an event trailkey accepts (not JSON, not an
//!   EventBridge event);
//! - when the run fails (an AWS error, a conflict) or finds the setup
//!   broken, every relevant record: they come back after the queue's
//!   visibility timeout, and after `maxReceiveCount` receives go to the
//!   dead-letter queue.
//!
//! Ignored records, and relevant ones whose run succeeded, are done. A key
//! event about a key the process does not know yet is settled by reading
//! AWS when it is the batch's only such key and nothing else in the batch
//! runs the plan; with another relevant record, or several unknown keys,
//! the one plan settles them. One JSON log line sums the batch up, and one
//! line of metrics counts it as one invocation: the one plan's drift, and
//! an error when any record failed.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::event::{self, SqsRecord, Verdict};
use super::metrics::{Measured, Outcome};
use super::{Function, Mode, log_line, may_be_trailkeys, pending, plan_and_writes, writes};
use crate::aws::Connect;
use crate::config::Desired;
use crate::render::PlanJson;

/// How many failed records a batch's log line names.
const LOGGED_FAILURES: usize = 10;

/// What each record of a batch is: a verdict, or why it is not an event.
type Judged = Result<Verdict, String>;

/// How the batch's one run ended (`outcome` in its log line, `metric` in
/// its line of metrics), and the error its relevant records fail with
/// (Lambda's error type and message), if any.
struct Ran {
    outcome: &'static str,
    error: Option<(&'static str, String)>,
    metric: Outcome,
}

impl<C: Connect> Function<C> {
    /// Answers the batch `records` (see the module's documentation), and
    /// fills in what it `measured`.
    pub(super) async fn batch(
        &self,
        records: &[SqsRecord<'_>],
        desired: &Desired,
        connect: &C,
        mode: Mode,
        measured: &mut Measured,
    ) -> Value {
        let judged = self.judge(records, desired);
        let unknown_keys_relevant = unknown_keys_relevant(&judged, desired, connect).await;
        let relevant = |v: &Judged| match v {
            Ok(Verdict::Handle) => true,
            Ok(Verdict::IfTrailkeys(_)) => unknown_keys_relevant,
            _ => false,
        };
        let relevant_count = judged.iter().filter(|v| relevant(v)).count();
        let undecodable = judged.iter().filter(|v| v.is_err()).count();

        let mut line = json!({"level": "info", "message": "trailkey lambda invocation"});
        let ran = if relevant_count == 0 {
            Ran {
                outcome: "ignored",
                error: None,
                metric: Outcome::Ignored,
            }
        } else {
            let about = format!(
                "SQS batch of {} records, {relevant_count} relevant",
                records.len()
            );
            self.run_once(desired, connect, mode, &about, &mut line, measured)
                .await
        };
        measured.outcome = Some(ran.metric);
        let failed: Vec<(&str, &str)> = records
            .iter()
            .zip(&judged)
            .filter_map(|(record, verdict)| match verdict {
                Err(why) => Some((record.message_id, why.as_str())),
                v if ran.error.is_some() && relevant(v) => {
                    Some((record.message_id, "the run failed"))
                }
                _ => None,
            })
            .collect();
        line["batch"] = json!({
            "records": records.len(),
            "relevant": relevant_count,
            "ignored": records.len() - relevant_count - undecodable,
            "failed": failed.len(),
            "outcome": ran.outcome,
        });
        line["mode"] = json!(mode);
        measured.failed_records = !failed.is_empty();
        log_line(&summary(line, &failed, ran.error.as_ref()));
        let failures: Vec<Value> = failed
            .iter()
            .map(|(id, _)| json!({"itemIdentifier": id}))
            .collect();
        json!({"batchItemFailures": failures})
    }

    /// Each record's verdict, without an AWS call.
    fn judge(&self, records: &[SqsRecord<'_>], desired: &Desired) -> Vec<Judged> {
        let known = self.known_key.borrow().clone();
        let trail = self.known_trail.borrow().clone();
        records
            .iter()
            .map(|r| {
                let event = r.event.as_ref().map_err(Clone::clone)?;
                event::classify(event, desired, known.as_deref(), trail.as_deref())
                    .map(|(_, verdict)| verdict)
            })
            .collect()
    }

    /// The batch's one run of the reconcile loop; its plan and writes go
    /// into the log `line`, and the drift it found and repaired into
    /// `measured`.
    async fn run_once(
        &self,
        desired: &Desired,
        connect: &C,
        mode: Mode,
        about: &str,
        line: &mut Value,
        measured: &mut Measured,
    ) -> Ran {
        match self.reconcile(desired, connect, mode).await {
            Err(e) => Ran {
                outcome: "failed",
                error: Some((e.kind, format!("{} ({about}){}", e.rendered, e.started))),
                metric: Outcome::Failed,
            },
            Ok(outcome) => {
                let (plan, done) = plan_and_writes(&outcome);
                let metric = measured.ran(plan, done);
                line["plan"] = serde_json::to_value(PlanJson::from(plan)).unwrap_or_default();
                line["writes"] = json!(writes(done));
                let pending = pending(plan, self.known_key.borrow().as_deref());
                if !pending.is_empty() {
                    line["pending"] = json!(pending);
                }
                match crate::plan::broken(&plan.findings) {
                    Some(e) => Ran {
                        outcome: "broken",
                        error: Some(("trailkey.BrokenSetup", format!("{} ({about})", e.render()))),
                        metric: Outcome::Broken,
                    },
                    None if done.is_empty() => Ran {
                        outcome: "planned",
                        error: None,
                        metric,
                    },
                    None => Ran {
                        outcome: "applied",
                        error: None,
                        metric,
                    },
                }
            }
        }
    }
}

/// Whether the key events about keys the process does not know are
/// relevant: with another relevant record, or several such keys, the one
/// plan settles them; one such key alone is settled by reading AWS.
async fn unknown_keys_relevant<C: Connect>(
    judged: &[Judged],
    desired: &Desired,
    connect: &C,
) -> bool {
    let handles = judged.iter().any(|v| matches!(v, Ok(Verdict::Handle)));
    let unknown_keys: BTreeSet<&str> = judged
        .iter()
        .filter_map(|v| match v {
            Ok(Verdict::IfTrailkeys(key)) => Some(key.as_str()),
            _ => None,
        })
        .collect();
    match unknown_keys.first() {
        None => false,
        Some(_) if handles || unknown_keys.len() > 1 => true,
        Some(key) => may_be_trailkeys(connect, desired, key).await,
    }
}

/// The batch's log `line` with its failures and error. Message IDs and
/// reasons are text from the queue: escaped, cut short, and only the first
/// few, so that a batch of any size logs one line of bounded length.
fn summary(mut line: Value, failed: &[(&str, &str)], error: Option<&(&str, String)>) -> Value {
    line["failures"] = failed
        .iter()
        .take(LOGGED_FAILURES)
        .map(|(id, why)| {
            json!({
                "message_id": crate::escape::escape(&event::truncated(id, 128)),
                "why": crate::escape::escape(&event::truncated(why, 300)),
            })
        })
        .collect();
    if let Some((kind, message)) = error {
        line["level"] = json!("error");
        line["error_type"] = json!(kind);
        line["error"] = json!(message);
    } else if !failed.is_empty() {
        // Only records that are not events failed: the run itself went well.
        line["level"] = json!("error");
        line["error_type"] = json!("trailkey.BadEvent");
    }
    line
}
