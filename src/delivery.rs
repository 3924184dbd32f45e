//! Proof of delivery (`apply --wait-for-delivery`): after apply, CloudTrail
//! must deliver a log file to the bucket. What `GetTrailStatus` says is
//! judged here ([`judge`]); the reconcile loop polls it.
//!
//! "Delivered after the change" compares CloudTrail's `LatestDeliveryTime`
//! (whole seconds, CloudTrail's clock) with this process's system clock at
//! the change. The two clocks may differ by a few seconds. A delivery counts
//! only when it is more than [`SKEW`] later than the change: a clock behind
//! CloudTrail's then cannot pass off a file delivered before the change as
//! proof. The price, with a clock ahead of CloudTrail's, is waiting for the
//! next delivery (CloudTrail delivers about every 5 minutes while there is
//! activity).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::aws::{TrailStatus, code};
use crate::error::Error;

/// The longest pause between two `GetTrailStatus` calls.
pub const POLL: Duration = Duration::from_secs(10);

/// How much later than the change a delivery must be to count.
pub const SKEW: Duration = Duration::from_secs(5);

/// How the wait ended, in `apply --format json` (`result.delivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// CloudTrail delivered a log file after the change.
    Delivered,
    /// A delivery error appeared after the change.
    Failed,
    /// The trail is not logging: CloudTrail delivers nothing.
    NotLogging,
    /// No log file arrived within the wait.
    TimedOut,
}

/// How the wait for a delivery ended. Apply's changes stand either way; a
/// status other than [`Status::Delivered`] makes the run fail
/// ([`Delivery::failure`]) after its result is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub status: Status,
    /// How long trailkey waited, whole seconds.
    pub waited_seconds: u64,
    /// CloudTrail's `LatestDeliveryTime` at the end, seconds since the
    /// Unix epoch (`null`: CloudTrail has never delivered).
    pub latest_delivery_time: Option<i64>,
    /// CloudTrail's `LatestDeliveryError` at the end, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_delivery_error: Option<String>,
    /// Why delivery is not proven, and what to check (not delivered only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Delivery {
    /// The end of a wait: `verdict` on `last`, after `waited`. `None` while
    /// the verdict is pending.
    pub fn ended(verdict: Verdict, last: &TrailStatus, waited: Duration) -> Option<Delivery> {
        let (status, error) = match verdict {
            Verdict::Pending => return None,
            Verdict::Delivered(_) => (Status::Delivered, None),
            Verdict::Failed(status, error) => (status, Some(error)),
        };
        Some(Delivery {
            status,
            waited_seconds: waited.as_secs(),
            latest_delivery_time: last.latest_delivery_time,
            latest_delivery_error: last.latest_delivery_error.clone(),
            hint: error.as_ref().map(|e| e.hint().to_owned()),
            error: error.map(|e| e.to_string()),
        })
    }

    /// The error the run ends with when delivery is not proven.
    pub fn failure(&self) -> Option<Error> {
        match (&self.error, &self.hint) {
            (Some(message), hint) if self.status != Status::Delivered => Some(Error::check(
                message.clone(),
                hint.clone().unwrap_or_default(),
            )),
            _ => None,
        }
    }
}

/// What one `GetTrailStatus` answer says.
#[derive(Debug)]
pub enum Verdict {
    /// A log file was delivered at this time (epoch seconds), after the change.
    Delivered(i64),
    /// Delivery cannot be proven: the trail is not logging, a new delivery
    /// error appeared, or the time is up.
    Failed(Status, Error),
    /// Nothing yet.
    Pending,
}

/// Judges `status`, read after a change made at `since` (the process's
/// clock); `before` is the `LatestDeliveryError` the run started with,
/// which alone does not fail the wait; `after_what` says what `since` was
/// ("the change", "the start of the run").
pub fn judge(
    status: &TrailStatus,
    since: SystemTime,
    before: Option<&str>,
    trail: &str,
    after_what: &str,
) -> Verdict {
    if !status.is_logging {
        return Verdict::Failed(
            Status::NotLogging,
            Error::check(
                format!("trail {trail} is not logging: CloudTrail delivers no log files"),
                format!(
                    "start it with `aws cloudtrail start-logging --name {trail}`, then run `trailkey apply --wait-for-delivery` again"
                ),
            ),
        );
    }
    if let Some(at) = status.latest_delivery_time
        && counts(at, since)
    {
        return Verdict::Delivered(at);
    }
    match &status.latest_delivery_error {
        Some(error) if before != Some(error.as_str()) => Verdict::Failed(
            Status::Failed,
            Error::check(
                format!(
                    "CloudTrail could not deliver a log file of trail {trail} after {after_what}: {error}"
                ),
                hint(error),
            ),
        ),
        _ => Verdict::Pending,
    }
}

/// Whether a delivery at `at` (epoch seconds) is more than [`SKEW`] after `since`.
fn counts(at: i64, since: SystemTime) -> bool {
    let Ok(at) = u64::try_from(at) else {
        return false;
    };
    let since = since.duration_since(UNIX_EPOCH).unwrap_or_default();
    Duration::from_secs(at) > since + SKEW
}

/// What to check for a `LatestDeliveryError`.
pub fn hint(error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    let names = |name: &str| lower.contains(&name.to_ascii_lowercase());
    if lower.contains("kms") {
        "CloudTrail could not use the KMS key: check that the key is enabled and not pending deletion, and that its key policy lets cloudtrail.amazonaws.com use it for this trail (`trailkey plan` shows key policy drift)"
    } else if names(code::ACCESS_DENIED) {
        "CloudTrail was denied writing the log file: check the bucket policy of the Log Archive bucket (cloudtrail.amazonaws.com needs s3:PutObject) and the key policy (it needs kms:GenerateDataKey* for this trail; `trailkey plan` shows key policy drift)"
    } else if names(code::NO_SUCH_BUCKET) {
        "the trail's S3 bucket does not exist: fix the trail's bucket"
    } else {
        "see the trail's delivery status in the CloudTrail console"
    }
    .to_owned()
}

/// The verdict when no log file arrived within `within`.
pub fn timed_out(within: Duration, last: &TrailStatus, after_what: &str) -> Verdict {
    let latest = last
        .latest_delivery_time
        .map_or_else(|| "never".to_owned(), timestamp);
    let standing = last
        .latest_delivery_error
        .as_ref()
        .map(|e| format!("; the trail's latest delivery error, there before this run: {e}"))
        .unwrap_or_default();
    // A delivery error older than the run may be what keeps every delivery
    // from arriving: its hint comes first.
    let hint = match &last.latest_delivery_error {
        Some(e) => format!(
            "{}; it was failing before this run already, so no log file may arrive until that is fixed",
            hint(e)
        ),
        None => "CloudTrail delivers log files about every 5 minutes while there is activity: wait longer (e.g. --wait-for-delivery=30m), and check the trail's delivery status in the CloudTrail console".to_owned(),
    };
    Verdict::Failed(
        Status::TimedOut,
        Error::check(
            format!(
                "no log file was delivered within {} after {after_what} (latest delivery: {latest}){standing}",
                human(within)
            ),
            hint,
        ),
    )
}

/// A duration as `--wait-for-delivery` takes it: `45s`, `15m`, `1h30m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// Epoch seconds as an RFC 3339 UTC timestamp, e.g. `2025-01-31T12:00:30Z`.
pub fn timestamp(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    // Days to a civil date (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail";

    fn status(time: Option<i64>, error: Option<&str>) -> TrailStatus {
        TrailStatus {
            is_logging: true,
            latest_delivery_time: time,
            latest_delivery_error: error.map(str::to_owned),
            ..TrailStatus::default()
        }
    }

    fn verdict(s: &TrailStatus, before: Option<&str>) -> Verdict {
        judge(
            s,
            UNIX_EPOCH + Duration::from_millis(1_000_500),
            before,
            TRAIL,
            "the change",
        )
    }

    #[test]
    fn a_delivery_counts_only_when_more_than_the_skew_after_the_change() {
        // The change at 1000.5 s: 1005.5 s is the earliest that could be
        // a clock 5 s behind CloudTrail's.
        for at in [900, 1000, 1005] {
            assert!(
                matches!(verdict(&status(Some(at), None), None), Verdict::Pending),
                "{at}"
            );
        }
        assert!(matches!(
            verdict(&status(Some(1006), None), None),
            Verdict::Delivered(1006)
        ));
        assert!(matches!(
            verdict(&status(None, None), None),
            Verdict::Pending
        ));
    }

    #[test]
    fn a_new_or_changed_delivery_error_fails_one_there_before_does_not() {
        let failing = status(Some(900), Some("AccessDenied"));
        let Verdict::Failed(Status::Failed, e) = verdict(&failing, None) else {
            panic!("fails");
        };
        let text = e.render();
        assert!(text.contains("after the change: AccessDenied"), "{text}");
        assert!(
            text.contains("bucket policy") && text.contains("key policy"),
            "{text}"
        );
        assert!(matches!(
            verdict(&failing, Some("AccessDenied")),
            Verdict::Pending
        ));
        assert!(matches!(
            verdict(&failing, Some("NoSuchBucket")),
            Verdict::Failed(Status::Failed, _)
        ));
        // A delivery after the change proves it, whatever the error field says.
        assert!(matches!(
            verdict(&status(Some(2000), Some("AccessDenied")), None),
            Verdict::Delivered(2000)
        ));
    }

    #[test]
    fn a_trail_that_is_not_logging_fails_with_the_start_logging_command() {
        let stopped = TrailStatus {
            is_logging: false,
            ..status(Some(2000), None)
        };
        let Verdict::Failed(Status::NotLogging, e) = verdict(&stopped, None) else {
            panic!("fails");
        };
        assert!(
            e.render()
                .contains(&format!("aws cloudtrail start-logging --name {TRAIL}")),
            "{}",
            e.render()
        );
    }

    #[test]
    fn a_timeout_behind_an_error_from_before_the_run_gives_that_errors_hint() {
        let within = Duration::from_secs(60);
        let error = |last: &TrailStatus| match timed_out(within, last, "the change") {
            Verdict::Failed(Status::TimedOut, e) => e,
            other => panic!("{other:?}"),
        };
        let plain = error(&status(Some(900), None));
        assert!(plain.hint().contains("wait longer"), "{}", plain.render());
        let failing = error(&status(Some(900), Some("AccessDenied")));
        let text = failing.render();
        assert!(
            text.contains("there before this run: AccessDenied"),
            "{text}"
        );
        assert!(failing.hint().contains("bucket policy"), "{text}");
        assert!(failing.hint().contains("failing before this run"), "{text}");
        assert!(!failing.hint().contains("wait longer"), "{text}");
    }

    #[test]
    fn each_kind_of_delivery_error_gets_its_own_hint() {
        assert!(hint("AccessDenied").contains("bucket policy"));
        assert!(hint("AccessDenied").contains("key policy"));
        assert!(hint("KMS.DisabledException").contains("enabled and not pending deletion"));
        assert!(hint("kms:GenerateDataKey denied").contains("KMS key"));
        assert!(hint("NoSuchBucket").contains("does not exist"));
        assert!(hint("InternalFailure").contains("CloudTrail console"));
    }

    #[test]
    fn durations_and_timestamps_read_as_people_write_them() {
        let secs = Duration::from_secs;
        assert_eq!(human(secs(45)), "45s");
        assert_eq!(human(secs(900)), "15m");
        assert_eq!(human(secs(5400)), "1h30m");
        assert_eq!(human(secs(0)), "0s");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(timestamp(1_738_324_830), "2025-01-31T12:00:30Z");
    }
}
