//! Proxy rules that make moto's `GetTrailStatus` report CloudTrail
//! delivering log files over time, for `apply --wait-for-delivery`.
//!
//! moto 5.2.5 answers `LatestDeliveryTime` with the moment of each
//! `GetTrailStatus` while the trail logs, as if CloudTrail delivered a file
//! on every read, and never a `LatestDeliveryError`. These rules replace
//! both. Time counts from the trail's latest `UpdateTrail` answer (the
//! change), else from the first `GetTrailStatus` answer (the start of a run
//! that changes nothing), as the traffic shows them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::proxy::{Decision, Request, Response, Rule, Traffic};

/// CloudTrail delivers a log file `after` the change, and none before: a
/// `GetTrailStatus` answered earlier has no `LatestDeliveryTime`, one
/// answered later reports the moment of that delivery.
pub fn delivery(after: Duration) -> impl Rule {
    Delivery { after, error: None }
}

/// CloudTrail reports `error` as its `LatestDeliveryError` from the first
/// `GetTrailStatus` after the change on, and delivers nothing.
pub fn delivery_error(error: &str) -> impl Rule {
    Delivery {
        after: Duration::MAX,
        error: Some(error.to_owned()),
    }
}

struct Delivery {
    after: Duration,
    error: Option<String>,
}

/// When the change happened: the latest `UpdateTrail` answer, else the
/// first `GetTrailStatus` answer; `None` before either.
fn change(traffic: &Traffic) -> Option<Instant> {
    let answered = |action| {
        traffic
            .exchanges
            .iter()
            .filter(move |e| e.is("cloudtrail", action) && e.response.status == 200)
            .map(|e| e.at)
    };
    answered("UpdateTrail")
        .next_back()
        .or_else(|| answered("GetTrailStatus").next())
}

/// `at` on the system clock, seconds since the Unix epoch.
fn epoch_seconds(at: Instant) -> u64 {
    let now = Instant::now();
    let wall = SystemTime::now() - now.saturating_duration_since(at);
    wall.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

impl Rule for Delivery {
    fn decide(&self, _: &Request, _: &Traffic) -> Decision {
        Decision::Forward
    }

    fn rewrite(&self, request: &Request, response: Response, traffic: &Traffic) -> Response {
        if !request.is("cloudtrail", "GetTrailStatus") || response.status != 200 {
            return response;
        }
        let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        let Some(fields) = answer.as_object_mut() else {
            return response;
        };
        fields.remove("LatestDeliveryTime");
        if let Some(change) = change(traffic) {
            if let Some(delivered) = change.checked_add(self.after)
                && Instant::now() >= delivered
            {
                fields.insert(
                    "LatestDeliveryTime".to_owned(),
                    epoch_seconds(delivered).into(),
                );
            }
            if let Some(error) = &self.error {
                fields.insert("LatestDeliveryError".to_owned(), error.clone().into());
            }
        }
        Response {
            body: answer.to_string().into_bytes(),
            ..response
        }
    }
}
