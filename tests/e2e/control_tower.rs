//! `[control_tower] landing_zone = true` end to end: Control Tower's own
//! trail, encrypted with a management-account key through the landing zone,
//! against moto and the test kit's Control Tower emulator (moto has no
//! Control Tower), under the real-AWS layer. The emulator checks the key as
//! Control Tower does when the operation ends, and then points Control
//! Tower's trail at it in moto.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use trailkey_testkit::rules::LandingZone;
use trailkey_testkit::{Moto, Run, Seed, on_sse_s3, transcript};

const CT_TRAIL: &str = "aws-controltower-BaselineCloudTrail";

/// How long an emulated landing-zone operation runs.
const OPERATION: Duration = Duration::from_secs(1);

/// A Control Tower organization and a config in landing-zone mode.
fn control_tower(moto: &Moto) -> (Seed, LandingZone, PathBuf) {
    let seed = moto.seed();
    let zone = moto.control_tower(&seed, OPERATION);
    let config = moto.control_tower_config(&seed, "control-tower.toml", "");
    (seed, zone, config)
}

/// `trailkey <args>` with the config, polling the operation every second.
fn run(moto: &Moto, config: &PathBuf, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    if matches!(args.first(), Some(&"apply" | &"destroy")) {
        all.extend(["--auto-approve", "--landing-zone-poll-interval", "1s"]);
    }
    Run::new(moto).config(config).args(all).run()
}

/// The management account's keys and Control Tower's trail, read by boto3.
fn state(moto: &Moto, seed: &Seed) -> Value {
    moto.fixture(&[
        "state",
        "--security-tooling",
        &seed.management,
        "--trail",
        CT_TRAIL,
    ])
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited")
}

fn the_key(state: &Value) -> &Value {
    let keys = state["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "one key: {state:#}");
    &keys[0]
}

#[test]
fn control_towers_trail_is_encrypted_through_one_landing_zone_update_and_a_rerun_writes_nothing() {
    let moto = Moto::start();
    let (seed, zone, config) = control_tower(&moto);

    let plan = run(&moto, &config, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 2, "{}", transcript(&plan));
    let text = transcript(&plan);
    assert!(text.contains("landing_zone"), "{text}");
    assert!(
        text.contains(&format!("in management account {}", seed.management)),
        "{text}"
    );

    moto.start_recording();
    let apply = run(&moto, &config, &["apply"]);
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));
    let err = String::from_utf8_lossy(&apply.stderr);
    assert!(
        err.contains("waiting for Control Tower's landing-zone operation"),
        "{err}"
    );
    // CreateAlias and EnableKeyRotation run at once, in either order.
    let mut writes = moto.recorded_writes();
    writes[1..3].sort();
    assert_eq!(
        writes,
        [
            "kms:CreateKey",
            "kms:CreateAlias",
            "kms:EnableKeyRotation",
            "controltower:UpdateLandingZone"
        ],
        "{writes:?}"
    );
    // No role assumed: every KMS call is signed by the caller's own
    // credentials, in the management account.
    let requests = moto.recorded_requests();
    assert!(
        !requests.iter().any(|r| r["action"] == "AssumeRole"),
        "{requests:#?}"
    );

    let after = state(&moto, &seed);
    let key = the_key(&after);
    let arn = key["arn"].as_str().unwrap();
    assert!(
        arn.starts_with(&format!("arn:aws:kms:us-east-1:{}:key/", seed.management)),
        "{arn}"
    );
    assert_eq!(after["trail"]["kms_key_id"], arn, "{after:#}");

    // One operation; the live version; the manifest with only the key set.
    let lz = moto.world.landing_zone_state().unwrap();
    assert_eq!(lz.operations.len(), 1);
    assert_eq!(lz.operations[0].status, "SUCCEEDED");
    assert!(lz.upgrades.is_empty(), "{:?}", lz.upgrades);
    let sent = lz.operations[0].request.clone().unwrap();
    assert_eq!(sent["version"], "3.3");
    let mut expected = zone.manifest.clone();
    expected["centralizedLogging"]["configurations"]["kmsKeyArn"] = json!(arn);
    assert_eq!(sent["manifest"], expected);
    assert_eq!(lz.landing_zone.manifest, expected);

    // The rerun: nothing written, and the no-op plan's calls.
    moto.start_recording();
    let again = run(&moto, &config, &["apply"]);
    assert_eq!(code(&again), 0, "{}", transcript(&again));
    assert!(moto.recorded_writes().is_empty(), "{:?}", moto.recorded());
    moto.start_recording();
    let plan = run(&moto, &config, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "{}", transcript(&plan));
    let calls = moto.recorded();
    eprintln!(
        "no-op plan with the landing zone: {} calls: {calls:?}",
        calls.len()
    );
    assert_eq!(calls.len(), 12, "{calls:?}");
    for call in [
        "controltower:ListLandingZones",
        "controltower:GetLandingZone",
        "controltower:ListLandingZoneOperations",
    ] {
        assert!(calls.iter().any(|c| c == call), "{call}: {calls:?}");
    }
}

#[test]
fn a_hand_removed_config_statement_is_repaired_with_no_new_landing_zone_update() {
    let moto = Moto::start();
    let (seed, _, config) = control_tower(&moto);
    assert_eq!(code(&run(&moto, &config, &["apply"])), 0);
    let key = the_key(&state(&moto, &seed)).clone();
    moto.drop_config_statement(key["key_id"].as_str().unwrap(), &key["policy"]);

    let plan = run(&moto, &config, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 2, "{}", transcript(&plan));
    let text = transcript(&plan);
    assert!(text.contains("kms_key_policy"), "{text}");
    assert!(!text.contains("~ landing_zone"), "{text}");

    moto.start_recording();
    let apply = run(&moto, &config, &["apply"]);
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));
    assert_eq!(moto.recorded_writes(), ["kms:PutKeyPolicy"]);
    assert_eq!(moto.world.landing_zone_state().unwrap().operations.len(), 1);
    let repaired = the_key(&state(&moto, &seed))["policy"].to_string();
    assert!(repaired.contains("config.amazonaws.com"), "{repaired}");
}

#[test]
fn plan_and_apply_refuse_while_an_operation_is_in_progress() {
    let moto = Moto::start();
    let (seed, zone, config) = control_tower(&moto);
    // An operation of someone else's that runs longer than this test.
    moto.world.landing_zone(LandingZone {
        operation_time: Duration::from_secs(600),
        ..zone
    });
    let id = moto.world.operation_in_progress("UPDATE");
    moto.start_recording();
    for args in [&["plan"][..], &["apply"][..]] {
        let out = run(&moto, &config, args);
        assert_eq!(code(&out), 1, "{}", transcript(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&id), "names the operation: {err}");
        assert!(
            err.contains("run trailkey again when it has ended"),
            "{err}"
        );
    }
    assert!(moto.recorded_writes().is_empty(), "{:?}", moto.recorded());
    assert!(state(&moto, &seed)["keys"].as_array().unwrap().is_empty());
}

#[test]
fn plan_and_apply_refuse_while_the_landing_zone_is_failed() {
    let moto = Moto::start();
    let (seed, zone, config) = control_tower(&moto);
    moto.world.landing_zone(LandingZone {
        status: "FAILED".to_owned(),
        ..zone
    });
    moto.start_recording();
    for args in [&["plan"][..], &["apply"][..]] {
        let out = run(&moto, &config, args);
        assert_eq!(code(&out), 1, "{}", transcript(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is FAILED, not ACTIVE"), "{err}");
        assert!(err.contains("reset-landing-zone"), "{err}");
    }
    assert!(moto.recorded_writes().is_empty(), "{:?}", moto.recorded());
    assert!(state(&moto, &seed)["keys"].as_array().unwrap().is_empty());
}

#[test]
fn an_older_landing_zone_version_is_kept_as_it_is() {
    let moto = Moto::start();
    let (seed, zone, config) = control_tower(&moto);
    moto.world.landing_zone(LandingZone {
        version: "3.2".to_owned(),
        latest_available_version: "3.3".to_owned(),
        ..zone
    });
    let plan = run(&moto, &config, &["plan"]);
    let text = transcript(&plan);
    assert!(text.contains("trailkey keeps 3.2"), "{text}");
    let apply = run(&moto, &config, &["apply"]);
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));
    let lz = moto.world.landing_zone_state().unwrap();
    assert_eq!(lz.landing_zone.version, "3.2");
    assert!(lz.upgrades.is_empty(), "{:?}", lz.upgrades);
    assert_eq!(lz.operations[0].request.as_ref().unwrap()["version"], "3.2");
    let after = state(&moto, &seed);
    let arn = the_key(&after)["arn"].as_str().expect("the key's ARN");
    assert_eq!(after["trail"]["kms_key_id"], arn, "{after:#}");
}

#[test]
fn a_failed_operation_is_reported_with_control_towers_message_and_a_hint() {
    let moto = Moto::start();
    let (seed, _, config) = control_tower(&moto);
    let message =
        "AWSControlTowerBP-BASELINE-CONFIG failed: InsufficientDeliveryPolicyException \u{1b}[2J";
    moto.world.fail_updates(Some(message));
    let out = run(&moto, &config, &["apply"]);
    assert_eq!(code(&out), 1, "{}", transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FAILED"), "{err}");
    assert!(err.contains("InsufficientDeliveryPolicyException"), "{err}");
    assert!(!err.contains('\u{1b}'), "AWS text is escaped: {err:?}");
    assert!(err.contains("\nhint: "), "{err}");
    // Control Tower did not point its trail at the key.
    let after = state(&moto, &seed);
    assert!(after["trail"].is_object(), "{after:#}");
    assert!(on_sse_s3(&after), "{after:#}");
    // The rerun refuses: the landing zone is FAILED.
    let again = run(&moto, &config, &["apply"]);
    assert_eq!(code(&again), 1, "{}", transcript(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is FAILED, not ACTIVE"));
}

#[test]
fn destroy_takes_control_towers_trail_back_to_sse_s3_through_the_landing_zone() {
    let moto = Moto::start();
    let (seed, zone, config) = control_tower(&moto);
    assert_eq!(code(&run(&moto, &config, &["apply"])), 0);
    assert!(!on_sse_s3(&state(&moto, &seed)), "encrypted before destroy");
    let out = run(&moto, &config, &["destroy"]);
    assert_eq!(code(&out), 0, "{}", transcript(&out));
    let after = state(&moto, &seed);
    assert!(after["trail"].is_object(), "{after:#}");
    assert!(on_sse_s3(&after), "{after:#}");
    assert_eq!(
        after["keys"].as_array().unwrap().len(),
        1,
        "the key is kept"
    );
    let lz = moto.world.landing_zone_state().unwrap();
    assert_eq!(lz.operations.len(), 2);
    assert_eq!(
        lz.landing_zone.manifest, zone.manifest,
        "every other field kept"
    );
    // Nothing left to back out.
    let again = run(
        &moto,
        &config,
        &["destroy", "--dry-run", "--detailed-exitcode"],
    );
    assert_eq!(code(&again), 0, "{}", transcript(&again));
}
