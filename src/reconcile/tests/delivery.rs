//! Proof of delivery: `apply --wait-for-delivery` on a paused clock.

use serde_json::Value;

use crate::aws::fake::FakeCloud;
use crate::error::Error;
use crate::plan::{Address, Plan, Step};
use crate::testing::*;

/// A [`crate::reconcile::Ui`] that records when it was told of the wait.
#[derive(Default)]
struct Watch {
    /// `(waited, within)` of each [`crate::reconcile::Ui::delivery`].
    delivery: Vec<(std::time::Duration, std::time::Duration)>,
}

impl crate::reconcile::Ui for Watch {
    fn about_to_apply(&mut self, _: &Plan) {}
    fn confirm(&mut self, _: &Plan) -> Result<(), Error> {
        Ok(())
    }
    fn step(&mut self, _: usize, _: usize, _: Address, _: &Step) {}
    fn planning_again(&mut self, _: &str, _: &Plan) {}
    fn waiting(&mut self, _: &crate::retry::Retrying) {}
    fn delivery(&mut self, waited: std::time::Duration, within: std::time::Duration) {
        self.delivery.push((waited, within));
    }

    fn landing_zone(&mut self, _: &str, _: std::time::Duration, _: std::time::Duration) {}
}

/// What an `apply --auto-approve [--wait-for-delivery=<wait>]` did.
struct Waited {
    outcome: Result<crate::reconcile::Outcome, Error>,
    /// Tokio's clock when each `GetTrailStatus` was called, from the start of the run.
    status_reads: Vec<std::time::Duration>,
    /// The run's duration on the paused clock.
    took: std::time::Duration,
    ui: Watch,
}

/// `apply --auto-approve` with `wait` through the reconcile loop on a
/// paused clock, every `GetTrailStatus` timed.
fn apply_waiting(fake: &FakeCloud, wait: Option<std::time::Duration>) -> Waited {
    let desired = desired();
    fake.clear_calls();
    fake.state.borrow_mut().status_clock = None;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let started = tokio::time::Instant::now();
            let reads = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            for _ in 0..200 {
                let reads = std::rc::Rc::clone(&reads);
                fake.before("GetTrailStatus", move |_| {
                    reads.borrow_mut().push(started.elapsed());
                });
            }
            let command = crate::reconcile::Command::Apply {
                auto_approve: true,
                policy_retry: std::time::Duration::ZERO,
                propagation_retry: std::time::Duration::ZERO,
                wait_for_delivery: wait,
                landing_zone: Some(Default::default()),
                verification: crate::apply::Verification::ReadBack,
            };
            let mut ui = Watch::default();
            let outcome = crate::reconcile::run(fake, &desired, command, &mut ui).await;
            let took = started.elapsed();
            fake.state
                .borrow_mut()
                .hooks
                .retain(|(op, _)| *op != "GetTrailStatus");
            let status_reads = reads.borrow().clone();
            Waited {
                outcome,
                status_reads,
                took,
                ui,
            }
        })
}

const SECOND: std::time::Duration = std::time::Duration::from_secs(1);

fn delivered(w: &Waited) -> &crate::delivery::Delivery {
    match &w.outcome {
        Ok(crate::reconcile::Outcome::Applied { result, .. }) => {
            result.delivery.as_deref().expect("a delivery")
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => panic!("{}", e.render()),
    }
}

/// The error a wait that proved no delivery ends the run with.
fn wait_error(w: &Waited) -> String {
    delivered(w)
        .failure()
        .unwrap_or_else(|| panic!("no error: {:?}", w.outcome))
        .render()
}

/// The times between the `GetTrailStatus` calls of the wait (the last
/// `polls` calls).
fn gaps(w: &Waited, polls: usize) -> Vec<u64> {
    let reads = &w.status_reads[w.status_reads.len() - polls..];
    reads.windows(2).map(|p| (p[1] - p[0]).as_secs()).collect()
}

#[test]
fn a_healthy_trail_is_proven_by_the_first_delivery_after_the_change() {
    // Without the flag: the first apply's reads, no wait.
    let fake = converged_with_unencrypted_trail();
    let plain = apply_waiting(&fake, None);
    assert!(plain.outcome.is_ok());
    let without = count(&fake, "GetTrailStatus");
    assert_eq!(plain.took, std::time::Duration::ZERO);

    let fake = converged_with_unencrypted_trail();
    fake.state.borrow_mut().delivery_after = Some(30 * SECOND);
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    let delivery = delivered(&w).clone();
    assert_eq!(fake.writes(), ["UpdateTrail"]);
    assert_eq!(delivery.waited_seconds, 30);
    assert_eq!(delivery.status, crate::delivery::Status::Delivered);
    // Polled at once, then every 10 s: at 0, 10, 20 and 30 s.
    let polls = count(&fake, "GetTrailStatus") - without;
    assert_eq!(polls, 4, "{:?}", fake.calls());
    assert_eq!(gaps(&w, polls), [10, 10, 10]);
    assert_eq!(w.took, 30 * SECOND);
    let minutes = 15 * 60 * SECOND;
    assert_eq!(
        w.ui.delivery,
        [
            (std::time::Duration::ZERO, minutes),
            (10 * SECOND, minutes),
            (20 * SECOND, minutes)
        ]
    );
    // In the JSON result, and only there with the flag.
    let Ok(crate::reconcile::Outcome::Applied { plan, done, result }) = w.outcome else {
        unreachable!()
    };
    let json: Value =
        serde_json::from_str(&crate::render::apply_json(&plan, &done, result)).unwrap();
    assert_eq!(json["result"]["delivery"]["status"], "delivered");
    assert_eq!(json["result"]["delivery"]["waited_seconds"], 30);
    assert_eq!(
        json["result"]["delivery"]["latest_delivery_time"],
        delivery.latest_delivery_time.unwrap()
    );
    let Ok(crate::reconcile::Outcome::Applied { plan, done, result }) = plain.outcome else {
        unreachable!()
    };
    let json: Value =
        serde_json::from_str(&crate::render::apply_json(&plan, &done, result)).unwrap();
    assert!(json["result"].get("delivery").is_none(), "{json:#}");
}

#[test]
fn a_delivery_before_the_change_is_no_proof() {
    let fake = converged_with_unencrypted_trail();
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    trail_status_now(
        &fake,
        crate::aws::TrailStatus {
            is_logging: true,
            latest_delivery_time: Some(i64::try_from(an_hour_ago).unwrap()),
            ..Default::default()
        },
    );
    let w = apply_waiting(&fake, Some(60 * SECOND));
    let text = wait_error(&w);
    assert!(
        text.contains("no log file was delivered within 1m after the change"),
        "{text}"
    );
}

/// What `GetTrailStatus` answers for the configured trail from now on.
fn trail_status_now(fake: &FakeCloud, status: crate::aws::TrailStatus) {
    fake.state
        .borrow_mut()
        .trail_status
        .insert(TRAIL_ARN.to_owned(), status);
}

#[test]
fn a_delivery_error_that_appears_fails_with_the_bucket_and_key_policy_hint() {
    let fake = converged_with_unencrypted_trail();
    fake.state.borrow_mut().delivery_error_after = Some((20 * SECOND, "AccessDenied".to_owned()));
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    let text = wait_error(&w);
    assert!(
        text.starts_with(&format!(
            "error: CloudTrail could not deliver a log file of trail {TRAIL_ARN} after the change: AccessDenied\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("bucket policy") && text.contains("key policy"),
        "{text}"
    );
    let delivery = delivered(&w);
    assert_eq!(delivery.status, crate::delivery::Status::Failed);
    assert_eq!(
        delivery.latest_delivery_error.as_deref(),
        Some("AccessDenied")
    );
    assert_eq!(delivery.waited_seconds, 20);
    assert_eq!(w.took, 20 * SECOND, "failed at the poll that saw it");
    assert_eq!(fake.writes(), ["UpdateTrail"], "apply itself went through");
}

#[test]
fn a_delivery_error_from_before_the_run_does_not_fail_the_wait() {
    let fake = converged_with_unencrypted_trail();
    trail_status_now(
        &fake,
        crate::aws::TrailStatus {
            is_logging: true,
            latest_delivery_error: Some("AccessDenied".to_owned()),
            ..Default::default()
        },
    );
    fake.state.borrow_mut().delivery_after = Some(40 * SECOND);
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    assert_eq!(delivered(&w).waited_seconds, 40);
    // Without a delivery, the timeout names the standing error.
    let fake = converged_with_unencrypted_trail();
    trail_status_now(
        &fake,
        crate::aws::TrailStatus {
            is_logging: true,
            latest_delivery_error: Some("AccessDenied".to_owned()),
            ..Default::default()
        },
    );
    let text = wait_error(&apply_waiting(&fake, Some(30 * SECOND)));
    assert!(
        text.contains("latest delivery: never); the trail's latest delivery error, there before this run: AccessDenied"),
        "{text}"
    );
}

#[test]
fn a_trail_that_is_not_logging_fails_at_once_with_the_start_logging_hint() {
    let fake = converged_with_unencrypted_trail();
    trail_status_now(
        &fake,
        crate::aws::TrailStatus {
            is_logging: false,
            ..Default::default()
        },
    );
    fake.state.borrow_mut().delivery_after = Some(SECOND);
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    let text = wait_error(&w);
    assert!(text.contains("is not logging"), "{text}");
    assert!(
        text.contains(&format!(
            "hint: start it with `aws cloudtrail start-logging --name {TRAIL_ARN}`"
        )),
        "{text}"
    );
    assert_eq!(delivered(&w).status, crate::delivery::Status::NotLogging);
    assert_eq!(w.took, std::time::Duration::ZERO);
    assert!(w.ui.delivery.is_empty());
}

#[test]
fn no_delivery_within_the_wait_fails_once_the_deadline_has_passed() {
    let fake = converged_with_unencrypted_trail();
    let w = apply_waiting(&fake, Some(95 * SECOND));
    let text = wait_error(&w);
    assert!(
        text.starts_with("error: no log file was delivered within 1m35s after the change (latest delivery: never)\n"),
        "{text}"
    );
    assert!(
        text.contains("hint: CloudTrail delivers log files about every 5 minutes"),
        "{text}"
    );
    let delivery = delivered(&w);
    assert_eq!(delivery.status, crate::delivery::Status::TimedOut);
    assert_eq!(
        (delivery.waited_seconds, delivery.latest_delivery_time),
        (95, None)
    );
    // Polls at 0, 10, ..., 90 s, and a last one at the deadline.
    assert_eq!(w.took, 95 * SECOND);
    assert_eq!(gaps(&w, 11), [10, 10, 10, 10, 10, 10, 10, 10, 10, 5]);
    assert_eq!(*w.status_reads.last().unwrap(), 95 * SECOND);
}

#[test]
fn a_no_op_apply_waits_for_a_delivery_after_the_start_of_the_run() {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    fake.state.borrow_mut().delivery_after = Some(20 * SECOND);
    let w = apply_waiting(&fake, Some(15 * 60 * SECOND));
    assert_eq!(delivered(&w).waited_seconds, 20);
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    // The observation's read, then polls at 0, 10 and 20 s.
    assert_eq!(count(&fake, "GetTrailStatus"), 4, "{:?}", fake.calls());

    // The same without the flag: the observation's read only.
    let w = apply_waiting(&fake, None);
    assert!(w.outcome.is_ok());
    assert_eq!(count(&fake, "GetTrailStatus"), 1, "{:?}", fake.calls());
    assert_eq!(fake.calls().len(), 10);
}

#[test]
fn apply_wait_for_delivery_through_the_command_line_adapter_succeeds() {
    let desired = desired();
    let fake = converged_with_unencrypted_trail();
    fake.state.borrow_mut().delivery_after = Some(30 * SECOND);
    fake.state.borrow_mut().status_clock = None;
    let command = crate::cli::Command::Apply {
        plan: None,
        expect_sha256: None,
        auto_approve: true,
        format: crate::cli::Format::Json,
        policy_retry_timeout: 0,
        propagation_timeout: 0,
        wait_for_delivery: Some(60 * SECOND),
        landing_zone: Default::default(),
    };
    let crate::Dispatch::Online(command, view) = crate::dispatch(command) else {
        panic!("apply talks to AWS");
    };
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(crate::run_online(&fake, &desired, command, view));
    assert_eq!(status.map_err(|e| e.render()), Ok(crate::Status::Success));
}
