//! Run from Security Tooling as CloudTrail's delegated administrator, end
//! to end: the binary with Security Tooling's credentials only, against
//! moto under the real-AWS layer, which serves a registered delegated
//! administrator's calls on the organization trail from the management
//! account (moto keeps trails per account), answers a name from a member
//! account `TrailNotFoundException`, an unregistered member's writes
//! `NotOrganizationMasterAccountException`, and `ListDelegatedAdministrators`
//! from its registry.

use serde_json::Value;
use trailkey_testkit::rules::CLOUDTRAIL;
use trailkey_testkit::{Credentials, Moto, Run, Seed, on_sse_s3, trailkey_keys, transcript};

/// An organization whose Security Tooling account is CloudTrail's
/// delegated administrator, and credentials of a role there.
fn delegated() -> (Moto, Seed, Credentials) {
    let moto = Moto::start();
    let seed = moto.seed();
    moto.world
        .delegated_administrator(CLOUDTRAIL, &seed.security_tooling);
    let credentials = moto.assume_role(&seed.security_tooling, "TrailkeyRunner", moto.layer());
    (moto, seed, credentials)
}

/// `trailkey <args>` with Security Tooling's credentials.
fn run(moto: &Moto, seed: &Seed, credentials: &Credentials, args: &[&str]) -> std::process::Output {
    Run::new(moto)
        .config(&seed.config)
        .credentials(credentials)
        .args(args)
        .run()
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited")
}

/// Security Tooling's keys and the organization trail, as moto holds them.
fn state(moto: &Moto, seed: &Seed) -> Value {
    moto.state(seed)
}

#[test]
fn security_tooling_encrypts_the_organization_trail_and_a_rerun_writes_nothing() {
    let (moto, seed, st) = delegated();
    let before = moto.layer().exchanges().len();

    let plan = run(&moto, &seed, &st, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 2, "{}", transcript(&plan));

    moto.start_recording();
    let apply = run(&moto, &seed, &st, &["apply", "--auto-approve"]);
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));
    let mut writes = moto.recorded_writes();
    writes[1..3].sort();
    assert_eq!(
        writes,
        [
            "kms:CreateKey",
            "kms:CreateAlias",
            "kms:EnableKeyRotation",
            "cloudtrail:UpdateTrail"
        ],
        "{writes:?}"
    );
    let after = state(&moto, &seed);
    let keys = trailkey_keys(&after);
    assert_eq!(keys.len(), 1, "{after:#}");
    let arn = keys[0]["arn"].as_str().unwrap();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:kms:us-east-1:{}:key/",
            seed.security_tooling
        )),
        "{arn}"
    );
    // The management account's trail, on Security Tooling's key.
    assert_eq!(after["trail"]["kms_key_id"], arn, "{after:#}");
    assert_eq!(after["trail"]["arn"], seed.trail_arn.as_str());
    let policy = keys[0]["policy"].to_string();
    assert!(policy.contains(&seed.trail_arn), "{policy}");

    // Every CloudTrail call named the trail by its ARN: none was answered
    // TrailNotFoundException, as a name would be from a member account.
    let exchanges = moto.layer().exchanges();
    let ours = &exchanges[before..];
    assert!(
        ours.iter()
            .filter(|e| e.call().starts_with("cloudtrail:"))
            .all(|e| e.response.status == 200),
        "{:?}",
        ours.iter()
            .map(|e| (e.call(), e.response.status))
            .collect::<Vec<_>>()
    );

    moto.start_recording();
    let again = run(&moto, &seed, &st, &["apply", "--auto-approve"]);
    assert_eq!(code(&again), 0, "{}", transcript(&again));
    assert!(
        moto.recorded_writes().is_empty(),
        "{:?}",
        moto.recorded_writes()
    );
    moto.start_recording();
    let plan = run(&moto, &seed, &st, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&plan), 0, "{}", transcript(&plan));
    // The no-op plan: the management account's 10 calls, ListDelegatedAdministrators
    // in AssumeRole's place.
    let mut calls = moto.recorded();
    calls.sort();
    assert_eq!(
        calls,
        [
            "cloudtrail:DescribeTrails",
            "cloudtrail:GetTrailStatus",
            "kms:DescribeKey",
            "kms:GetKeyPolicy",
            "kms:GetKeyRotationStatus",
            "kms:ListResourceTags",
            "organizations:DescribeOrganization",
            "organizations:ListDelegatedAdministrators",
            "s3:ListBucket",
            "sts:GetCallerIdentity",
        ],
        "{calls:?}"
    );
    moto.assert_security_toolings_own(&seed);
}

#[test]
fn drift_is_repaired_from_security_tooling() {
    let (moto, seed, st) = delegated();
    let apply = run(&moto, &seed, &st, &["apply", "--auto-approve"]);
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));
    let key = trailkey_keys(&state(&moto, &seed))[0]["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    for (kind, extra) in [
        ("trail-unencrypt", vec![]),
        ("rotation-off", vec![]),
        (
            "policy-remove-statement",
            vec!["--sid", "TrailkeyCloudTrailEncrypt"],
        ),
    ] {
        let mut args = vec!["drift", kind, "--security-tooling", &seed.security_tooling];
        args.extend(extra);
        moto.fixture(&args);
        // As between two scheduled runs: CloudTrail sees the policy again.
        std::thread::sleep(trailkey_testkit::LAYER_WINDOW);
        let plan = run(&moto, &seed, &st, &["plan", "--detailed-exitcode"]);
        assert_eq!(code(&plan), 2, "{kind}: {}", transcript(&plan));
        let apply = run(&moto, &seed, &st, &["apply", "--auto-approve"]);
        assert_eq!(code(&apply), 0, "{kind}: {}", transcript(&apply));
        let plan = run(&moto, &seed, &st, &["plan", "--detailed-exitcode"]);
        assert_eq!(code(&plan), 0, "{kind}: {}", transcript(&plan));
        let after = state(&moto, &seed);
        assert_eq!(after["trail"]["kms_key_id"], key.as_str(), "{kind}");
        assert_eq!(trailkey_keys(&after).len(), 1, "{kind}: the same key");
        assert_eq!(trailkey_keys(&after)[0]["rotation_enabled"], true, "{kind}");
    }
    moto.assert_security_toolings_own(&seed);
}

#[test]
fn destroy_from_security_tooling_moves_the_trail_off_and_refuses_to_delete_the_key() {
    let (moto, seed, st) = delegated();
    let apply = run(&moto, &seed, &st, &["apply", "--auto-approve"]);
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));

    moto.start_recording();
    let refused = run(
        &moto,
        &seed,
        &st,
        &["destroy", "--auto-approve", "--delete-key"],
    );
    assert_eq!(code(&refused), 1, "{}", transcript(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--delete-key cannot run from Security Tooling"),
        "{err}"
    );
    assert!(moto.recorded_writes().is_empty());

    let destroy = run(&moto, &seed, &st, &["destroy", "--auto-approve"]);
    assert_eq!(code(&destroy), 0, "{}", transcript(&destroy));
    assert_eq!(moto.recorded_writes(), ["cloudtrail:UpdateTrail"]);
    let after = state(&moto, &seed);
    assert!(on_sse_s3(&after), "{after:#}");
    assert_eq!(trailkey_keys(&after).len(), 1, "the key is kept");
    moto.assert_security_toolings_own(&seed);
}

#[test]
fn security_tooling_not_registered_is_refused_before_any_write_with_the_command_that_registers_it()
{
    let moto = Moto::start();
    let seed = moto.seed();
    let st = moto.assume_role(&seed.security_tooling, "TrailkeyRunner", moto.layer());
    moto.start_recording();
    for args in [
        &["plan", "--detailed-exitcode"][..],
        &["apply", "--auto-approve"][..],
    ] {
        let out = run(&moto, &seed, &st, args);
        assert_eq!(code(&out), 1, "{}", transcript(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not CloudTrail's delegated administrator"),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "aws cloudtrail register-organization-delegated-admin --member-account-id {}",
                seed.security_tooling
            )),
            "{err}"
        );
    }
    assert!(
        moto.recorded_writes().is_empty(),
        "{:?}",
        moto.recorded_writes()
    );
    moto.assert_security_toolings_own(&seed);
    // Another member account keeps the error it had.
    let la = moto.assume_role(&seed.log_archive, "TrailkeyRunner", moto.layer());
    let out = run(&moto, &seed, &la, &["plan"]);
    assert_eq!(code(&out), 1, "{}", transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("which is not the management account"), "{err}");
}

#[test]
fn credentials_that_name_their_account_run_the_same_and_a_wrong_one_is_refused() {
    let (moto, seed, st) = delegated();
    let named = |account: &str| {
        Run::new(&moto)
            .config(&seed.config)
            .credentials(&st)
            .env("AWS_ACCOUNT_ID", account)
    };
    let apply = named(&seed.security_tooling)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));
    moto.assert_security_toolings_own(&seed);
    moto.start_recording();
    let wrong = named(&seed.management)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(code(&wrong), 1, "{}", transcript(&wrong));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("STS answers"), "{err}");
    assert!(moto.recorded_writes().is_empty());
}

/// The no-op plan's wall time by who runs and whether the credentials name
/// their account, with 50 ms added to every AWS request in front of the
/// real-AWS layer (which serves the delegated administrator): medians of
/// 10 runs each. Run with `make bench` (release build).
#[test]
#[ignore = "a measurement, run by make bench"]
fn no_op_plan_times_by_who_runs_and_what_the_credentials_say() {
    let (moto, seed, st) = delegated();
    let apply = run(&moto, &seed, &st, &["apply", "--auto-approve"]);
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));
    let (mut proxy, endpoint) = trailkey_testkit::latency_proxy(&moto.layer().endpoint, 50);
    let management = seed.management.clone();
    let security_tooling = seed.security_tooling.clone();
    let cases: [(&str, Option<&Credentials>, Option<&str>); 4] = [
        (
            "management, credentials naming the account",
            None,
            Some(&management),
        ),
        ("management, credentials not naming it", None, None),
        (
            "Security Tooling as delegated administrator, credentials naming the account",
            Some(&st),
            Some(&security_tooling),
        ),
        (
            "Security Tooling as delegated administrator, credentials not naming it",
            Some(&st),
            None,
        ),
    ];
    let mut report = Vec::new();
    for (what, credentials, account) in cases {
        let mut walls: Vec<f64> = (0..11)
            .map(|_| {
                let mut run = Run::at(&endpoint).config(&seed.config);
                if let Some(c) = credentials {
                    run = run.credentials(c);
                }
                if let Some(a) = account {
                    run = run.env("AWS_ACCOUNT_ID", a);
                }
                let started = std::time::Instant::now();
                let out = run.args(["plan", "--detailed-exitcode"]).run();
                let wall = started.elapsed().as_secs_f64() * 1000.0;
                assert_eq!(code(&out), 0, "{what}: {}", transcript(&out));
                wall
            })
            .skip(1)
            .collect();
        walls.sort_by(f64::total_cmp);
        let median = walls[walls.len() / 2];
        eprintln!(
            "no-op plan, {what}: median {median:.0} ms, min {:.0}, max {:.0}",
            walls[0],
            walls[walls.len() - 1]
        );
        report.push(serde_json::json!({"who": what, "median_ms": median.round(), "min_ms": walls[0].round(), "max_ms": walls[walls.len() - 1].round()}));
    }
    let _ = proxy.kill();
    let _ = proxy.wait();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
