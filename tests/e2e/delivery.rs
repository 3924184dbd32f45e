//! `apply --wait-for-delivery` end to end: the real binary against moto,
//! behind a proxy whose rules (`trailkey_testkit::rules::delivery`) make
//! `GetTrailStatus` report CloudTrail's deliveries over time, since moto
//! reports a delivery on every read.

use std::time::{Duration, Instant};

use serde_json::Value;
use trailkey_testkit::proxy::Proxy;
use trailkey_testkit::rules::delivery::{delivery, delivery_error};
use trailkey_testkit::{Moto, Run, Seed, transcript};

/// `apply --auto-approve --format json <extra>` through `proxy`; the
/// output and how long it took.
fn apply(
    moto: &Moto,
    proxy: &Proxy,
    seed: &Seed,
    extra: &[&str],
) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = Run::new(moto)
        .via(proxy)
        .config(&seed.config)
        .args(["apply", "--auto-approve", "--format", "json"])
        .args(extra)
        .run();
    eprintln!("{}", transcript(&out));
    (out, started.elapsed())
}

fn status_reads(proxy: &Proxy) -> usize {
    proxy
        .exchanges()
        .iter()
        .filter(|e| e.is("cloudtrail", "GetTrailStatus"))
        .count()
}

/// A log file delivered 8 s after the change (more than the 5 s margin
/// for clock skew): seen by the poll 10 s after the first.
#[test]
fn a_healthy_trail_exits_0_with_the_delivery_in_the_json() {
    let moto = Moto::start();
    let seed = moto.seed();
    let proxy = moto.layer_with(vec![Box::new(delivery(Duration::from_secs(8)))]);
    let (out, took) = apply(&moto, &proxy, &seed, &["--wait-for-delivery=60s"]);
    eprintln!("healthy: {took:?}");
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let delivered = &json["result"]["delivery"];
    assert_eq!(delivered["status"], "delivered", "{json:#}");
    assert_eq!(delivered["waited_seconds"], 10, "{json:#}");
    let update = proxy
        .exchanges()
        .into_iter()
        .find(|e| e.is("cloudtrail", "UpdateTrail"))
        .expect("apply changed the trail");
    // The delivery is the rule's, 8 s after UpdateTrail answered.
    let changed = std::time::SystemTime::now() - update.at.elapsed();
    let changed = changed
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = delivered["latest_delivery_time"].as_u64().unwrap();
    assert!(
        (changed + 7..=changed + 8).contains(&at),
        "{at} vs {changed}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("waiting for CloudTrail to deliver a log file with the key (0s of 1m)"),
        "{stderr}"
    );
    // Observation, verification (read again each time it waited for the
    // real-AWS layer to show apply's writes), then polls at 0 and 10 s.
    let rereads = stderr
        .matches("waiting for AWS to show what apply wrote")
        .count();
    assert_eq!(status_reads(&proxy), 4 + rereads);
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(30),
        "{took:?}"
    );

    // A second run changes nothing and proves a delivery after its start.
    let proxy = moto.layer_with(vec![Box::new(delivery(Duration::from_secs(8)))]);
    let out = Run::new(&moto)
        .via(&proxy)
        .config(&seed.config)
        .args(["apply", "--auto-approve", "--wait-for-delivery=1m"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("No changes."), "{stdout}");
    assert!(
        stdout.contains("CloudTrail delivered a log file at ")
            && stdout.ends_with("(waited 10s).\n"),
        "{stdout}"
    );
}

#[test]
fn a_delivery_error_after_the_change_exits_1_with_the_policy_hint() {
    let moto = Moto::start();
    let seed = moto.seed();
    let proxy = moto.layer_with(vec![Box::new(delivery_error("AccessDenied"))]);
    let (out, took) = apply(&moto, &proxy, &seed, &["--wait-for-delivery"]);
    eprintln!("failing: {took:?}");
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: CloudTrail could not deliver a log file of trail {} after the change: AccessDenied",
            seed.trail_arn
        )),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("hint: CloudTrail was denied writing the log file: check the bucket policy"),
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(10),
        "failed at the first poll: {took:?}"
    );
    // The apply itself went through, and its result says so with the failure.
    let state = moto.state(&seed);
    let key = state["trail"]["kms_key_id"].as_str().unwrap();
    assert!(key.starts_with("arn:aws:kms:"), "{state:#}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("the result on stdout");
    assert_eq!(json["result"]["trail_kms_key_id"], key, "{json:#}");
    let delivery = &json["result"]["delivery"];
    assert_eq!(delivery["status"], "failed", "{json:#}");
    assert_eq!(delivery["latest_delivery_error"], "AccessDenied");
    assert_eq!(
        delivery["error"],
        format!(
            "CloudTrail could not deliver a log file of trail {} after the change: AccessDenied",
            seed.trail_arn
        )
    );
    assert!(
        delivery["hint"]
            .as_str()
            .unwrap()
            .starts_with("CloudTrail was denied writing the log file"),
        "{json:#}"
    );

    // The human output: what apply did on stdout, the failure on stderr.
    let proxy = moto.layer_with(vec![Box::new(delivery_error("AccessDenied"))]);
    moto.fixture(&["drift", "trail-unencrypt"]);
    let out = Run::new(&moto)
        .via(&proxy)
        .config(&seed.config)
        .args(["apply", "--auto-approve", "--wait-for-delivery=1m"])
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Apply complete!"), "{stdout}");
    assert!(!stdout.contains("CloudTrail delivered"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: CloudTrail could not deliver a log file"),
        "{stderr}"
    );
}

#[test]
fn no_delivery_within_the_wait_exits_1_after_the_deadline() {
    let moto = Moto::start();
    let seed = moto.seed();
    let proxy = moto.layer_with(vec![Box::new(delivery(Duration::from_secs(3600)))]);
    let (out, took) = apply(&moto, &proxy, &seed, &["--wait-for-delivery=3s"]);
    eprintln!("timeout: {took:?}");
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "error: no log file was delivered within 3s after the change (latest delivery: never)"
        ),
        "{stderr}"
    );
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "{took:?}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("the result on stdout");
    let delivery = &json["result"]["delivery"];
    assert_eq!(delivery["status"], "timed_out", "{json:#}");
    assert_eq!(delivery["waited_seconds"], 3, "{json:#}");
    assert_eq!(delivery["latest_delivery_time"], Value::Null, "{json:#}");
    assert!(
        delivery["error"]
            .as_str()
            .unwrap()
            .starts_with("no log file was delivered within 3s"),
        "{json:#}"
    );
    // Polls at 0 and at the deadline, after the observation and the
    // verification (and its reads again while apply's writes propagate).
    let rereads = stderr
        .matches("waiting for AWS to show what apply wrote")
        .count();
    assert_eq!(status_reads(&proxy), 4 + rereads);
}
