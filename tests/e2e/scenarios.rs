//! End-to-end scenarios: the real `trailkey` binary against a moto server
//! (one per test), seeded with an organization, a Log Archive bucket and an
//! organization trail. Results are asserted on the AWS state read back from
//! moto by an independent client (boto3, `tests/testkit/fixture.py`), not on
//! trailkey's own output; moto's request recorder, or a recording proxy in
//! front of moto (`trailkey_testkit::proxy`), proves which calls were made.

use serde_json::Value;
use trailkey_testkit::proxy::{Exchange, hold_until};
use trailkey_testkit::{Moto, Run, Seed, is_write, on_sse_s3, transcript};

fn exit_code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited")
}

/// Replaces the values moto makes up (account IDs, key IDs, temp paths) so
/// snapshots are stable.
fn redact(text: &str, moto: &Moto, seed: &Seed) -> String {
    let mut s = text
        .replace(&seed.security_tooling, "[SECURITY_TOOLING]")
        .replace(&seed.log_archive, "[LOG_ARCHIVE]")
        .replace(&seed.management, "[MANAGEMENT]")
        .replace(moto.dir.path().to_str().unwrap(), "[TMP]");
    // Key IDs are UUIDs.
    let re = uuid_like(&s);
    for id in re {
        s = s.replace(&id, "[KEY_ID]");
    }
    s
}

fn uuid_like(s: &str) -> Vec<String> {
    let shape = [8, 4, 4, 4, 12];
    let mut found = Vec::new();
    for (i, _) in s.char_indices() {
        let rest = &s[i..];
        let candidate: String = rest.chars().take(36).collect();
        if candidate.len() == 36
            && candidate.split('-').map(str::len).eq(shape.iter().copied())
            && candidate.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        {
            found.push(candidate);
        }
    }
    found
}

fn only_key(state: &Value) -> &Value {
    let keys = state["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "exactly one customer key: {state:#}");
    &keys[0]
}

fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("statement {sid} in {policy:#}"))
}

#[test]
fn first_apply_encrypts_the_trail_and_a_second_apply_writes_nothing() {
    let moto = Moto::start();
    let seed = moto.seed();

    // Before: plan shows every resource, exit 2 with --detailed-exitcode.
    let plan = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(exit_code(&plan), 2, "{}", transcript(&plan));
    insta::assert_snapshot!(
        "plan_from_scratch",
        redact(&transcript(&plan), &moto, &seed)
    );
    let json = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--format", "json"])
        .run();
    assert_eq!(
        exit_code(&json),
        0,
        "without --detailed-exitcode changes exit 0"
    );
    let json: Value = serde_json::from_slice(&json.stdout).expect("JSON plan");
    assert_eq!(json["format_version"], "1");
    let actions: Vec<(String, String)> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        actions,
        vec![
            expect("kms_key", "create"),
            expect("kms_alias", "create"),
            expect("kms_key_policy", "create"),
            expect("kms_key_rotation", "create"),
            expect("trail_encryption", "update"),
        ]
    );
    assert_eq!(
        moto.state(&seed)["keys"].as_array().unwrap().len(),
        0,
        "plan wrote nothing"
    );

    // Apply, against moto alone: the counts are those of a run in which
    // nothing has to propagate (the real-AWS layer's scenarios are in
    // tests/real_aws.rs).
    moto.start_recording();
    let apply = Run::new(&moto)
        .direct()
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(exit_code(&apply), 0, "{}", transcript(&apply));
    let calls = moto.recorded();
    let mut writes: Vec<&str> = calls
        .iter()
        .filter(|c| is_write(c))
        .map(String::as_str)
        .collect();
    // CreateAlias and EnableKeyRotation run concurrently (one wave), in
    // either order; CreateKey comes before them and UpdateTrail after.
    writes[1..3].sort_unstable();
    assert_eq!(
        writes,
        [
            "kms:CreateKey",
            "kms:CreateAlias",
            "kms:EnableKeyRotation",
            "cloudtrail:UpdateTrail"
        ],
        "first apply writes: {calls:?}"
    );
    eprintln!("first apply: {} AWS calls: {calls:?}", calls.len());
    assert_eq!(calls.len(), 18, "first apply: 18 calls: {calls:?}");

    // The AWS state, read back by boto3.
    let state = moto.state(&seed);
    let key = only_key(&state);
    assert_eq!(key["key_state"], "Enabled");
    assert_eq!(key["key_spec"], "SYMMETRIC_DEFAULT");
    assert_eq!(key["key_usage"], "ENCRYPT_DECRYPT");
    assert_eq!(key["origin"], "AWS_KMS");
    assert_eq!(key["multi_region"], false);
    assert_eq!(key["rotation_enabled"], true);
    assert_eq!(key["tags"]["ManagedBy"], "trailkey");
    assert_eq!(key["tags"]["trailkey:alias"], "cloudtrail-org-key");
    let key_arn = key["arn"].as_str().unwrap();
    assert!(key_arn.starts_with(&format!(
        "arn:aws:kms:us-east-1:{}:key/",
        seed.security_tooling
    )));
    assert_eq!(
        state["aliases"],
        serde_json::json!([{"name": "alias/cloudtrail-org-key", "target_key_id": key["key_id"]}])
    );
    assert_eq!(
        state["trail"]["kms_key_id"], key_arn,
        "trail points at the key ARN"
    );

    let policy = &key["policy"];
    let p = |acct: &str| format!("arn:aws:iam::{acct}:root");
    let context = format!("arn:aws:cloudtrail:*:{}:trail/*", seed.management);
    let root = statement(policy, "TrailkeyRootAdministration");
    assert_eq!(root["Principal"]["AWS"], p(&seed.security_tooling));
    assert_eq!(root["Action"], "kms:*");
    let encrypt = statement(policy, "TrailkeyCloudTrailEncrypt");
    assert_eq!(encrypt["Principal"]["Service"], "cloudtrail.amazonaws.com");
    assert_eq!(encrypt["Action"], "kms:GenerateDataKey*");
    assert_eq!(
        encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        context.as_str()
    );
    assert_eq!(
        encrypt["Condition"]["StringEquals"]["aws:SourceArn"],
        seed.trail_arn.as_str()
    );
    let describe = statement(policy, "TrailkeyCloudTrailDescribeKey");
    assert_eq!(describe["Action"], "kms:DescribeKey");
    assert_eq!(
        describe["Condition"]["StringEquals"]["aws:SourceArn"],
        seed.trail_arn.as_str()
    );
    let readers = statement(policy, "TrailkeyLogReadersDecrypt");
    assert_eq!(
        readers["Principal"]["AWS"],
        serde_json::json!([p(&seed.log_archive), p(&seed.management)])
    );
    assert_eq!(readers["Action"], "kms:Decrypt");
    assert_eq!(
        readers["Condition"]["Null"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        "false"
    );
    assert_eq!(
        readers["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        context.as_str()
    );

    // After: plan is clean, exit 0.
    moto.start_recording();
    let plan = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(exit_code(&plan), 0, "{}", transcript(&plan));
    let plan_calls = moto.recorded();
    eprintln!("no-op plan: {} AWS calls: {plan_calls:?}", plan_calls.len());
    assert!(
        plan_calls.iter().all(|c| !is_write(c)),
        "plan is read-only: {plan_calls:?}"
    );
    assert_eq!(
        plan_calls.len(),
        10,
        "no-op plan reads (8 core, trail status, bucket Region): {plan_calls:?}"
    );
    insta::assert_snapshot!("plan_converged", redact(&transcript(&plan), &moto, &seed));

    // A second apply makes no write at all.
    moto.start_recording();
    let again = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(exit_code(&again), 0, "{}", transcript(&again));
    let calls = moto.recorded();
    assert!(
        calls.iter().all(|c| !is_write(c)),
        "second apply wrote: {calls:?}"
    );
    assert_eq!(
        calls.len(),
        10,
        "a no-op apply makes the plan's reads only: {calls:?}"
    );
    assert_eq!(moto.state(&seed)["keys"].as_array().unwrap().len(), 1);
}

#[test]
fn drift_behind_trailkeys_back_is_detected_and_repaired() {
    let moto = Moto::start();
    let seed = moto.seed();
    assert_eq!(
        exit_code(
            &Run::new(&moto)
                .config(&seed.config)
                .args(["apply", "--auto-approve"])
                .run()
        ),
        0
    );
    let key_arn = only_key(&moto.state(&seed))["arn"]
        .as_str()
        .unwrap()
        .to_owned();

    moto.fixture(&["drift", "trail-unencrypt", "--trail", &seed.trail_name]);
    moto.fixture(&[
        "drift",
        "rotation-off",
        "--security-tooling",
        &seed.security_tooling,
    ]);

    let plan = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode", "--format", "json"])
        .run();
    assert_eq!(exit_code(&plan), 2, "{}", transcript(&plan));
    let json: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let changed: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["kms_key_rotation", "trail_encryption"]);

    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(exit_code(&apply), 0, "{}", transcript(&apply));
    let state = moto.state(&seed);
    assert_eq!(
        only_key(&state)["arn"],
        key_arn.as_str(),
        "the same key, no second one"
    );
    assert_eq!(only_key(&state)["rotation_enabled"], true);
    assert_eq!(state["trail"]["kms_key_id"], key_arn.as_str());
    assert_eq!(
        exit_code(
            &Run::new(&moto)
                .config(&seed.config)
                .args(["plan", "--detailed-exitcode"])
                .run()
        ),
        0
    );
}

#[test]
fn missing_trail_fails_clearly_with_no_aws_write() {
    let moto = Moto::start();
    let seed = moto.seed();
    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(
        &seed.config,
        text.replace("name = \"org-trail\"", "name = \"no-such-trail\""),
    )
    .unwrap();

    moto.start_recording();
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let out = Run::new(&moto).config(&seed.config).args(args).run();
        assert_eq!(exit_code(&out), 1, "{}", transcript(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("is not among the trails visible in us-east-1"),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint: ") && stderr.contains("trail.name"),
            "{stderr}"
        );
    }
    let calls = moto.recorded();
    assert!(calls.iter().all(|c| !is_write(c)), "no write: {calls:?}");
    assert_eq!(moto.state(&seed)["keys"].as_array().unwrap().len(), 0);
}

#[test]
fn wrong_management_account_is_refused_before_any_write() {
    let moto = Moto::start();
    let seed = moto.seed();
    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(
        &seed.config,
        text.replace(
            &format!("management = \"{}\"", seed.management),
            "management = \"999999999999\"",
        ),
    )
    .unwrap();
    moto.start_recording();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(exit_code(&out), 1, "{}", transcript(&out));
    insta::assert_snapshot!(redact(&transcript(&out), &moto, &seed));
    assert!(moto.recorded().iter().all(|c| !is_write(c)));
}

#[test]
fn foreign_key_policy_statements_are_kept() {
    let moto = Moto::start();
    let seed = moto.seed();
    assert_eq!(
        exit_code(
            &Run::new(&moto)
                .config(&seed.config)
                .args(["apply", "--auto-approve"])
                .run()
        ),
        0
    );
    for kind in ["policy-foreign", "policy-remove-log-archive"] {
        moto.fixture(&["drift", kind, "--security-tooling", &seed.security_tooling]);
    }
    let plan = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(exit_code(&plan), 2, "{}", transcript(&plan));
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains("~ statement TrailkeyLogReadersDecrypt\n"),
        "{stdout}"
    );
    // The plan shows lists sorted.
    let root = |a: &str| format!("arn:aws:iam::{a}:root");
    let mut readers = vec![root(&seed.management), root(&seed.log_archive)];
    readers.sort();
    let principals = format!(
        "~ Principal.AWS = {} -> {}",
        serde_json::json!([root(&seed.management)]),
        serde_json::json!(readers)
    );
    assert!(stdout.contains(&principals), "{stdout}");
    assert!(
        stdout.contains("= statement \"ThirdPartyAudit\" (not managed by trailkey: kept)"),
        "{stdout}"
    );

    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(exit_code(&apply), 0, "{}", transcript(&apply));
    let state = moto.state(&seed);
    let policy = &only_key(&state)["policy"];
    let foreign = statement(policy, "ThirdPartyAudit");
    assert_eq!(
        foreign["Principal"]["AWS"],
        "arn:aws:iam::444455556666:root"
    );
    let readers = statement(policy, "TrailkeyLogReadersDecrypt");
    assert_eq!(
        readers["Principal"]["AWS"][0],
        format!("arn:aws:iam::{}:root", seed.log_archive)
    );
    assert_eq!(
        exit_code(
            &Run::new(&moto)
                .config(&seed.config)
                .args(["plan", "--detailed-exitcode"])
                .run()
        ),
        0
    );
}

#[test]
fn management_role_is_assumed_for_the_management_calls() {
    let moto = Moto::start();
    let seed = moto.seed();
    seed.add_management_role();

    moto.start_recording();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(exit_code(&out), 0, "{}", transcript(&out));
    // Scenarios run through the real-AWS layer by default: the new key was
    // not visible at once.
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("waiting for KMS to make the new key visible"),
        "{}",
        transcript(&out)
    );
    let calls = moto.recorded();
    let assumes = calls.iter().filter(|c| *c == "sts:AssumeRole").count();
    assert_eq!(
        assumes, 2,
        "management role, then Security Tooling role: {calls:?}"
    );
    let state = moto.state(&seed);
    assert_eq!(state["trail"]["kms_key_id"], only_key(&state)["arn"]);
}

#[test]
fn sixteen_concurrent_applies_leave_exactly_one_enabled_key() {
    const RUNS: usize = 16;
    let moto = Moto::start();
    let seed = moto.seed();
    let proxy = moto.layer_with(vec![
        // No key exists until two runs have asked for one: every run that
        // observes before then plans a key, so at least two create one.
        Box::new(hold_until("kms", "CreateKey", |t| {
            t.arrived("kms", "CreateKey") >= 2
        })),
        // No alias exists before two keys do: only one key gets it, so at
        // least one run that created a key loses the alias.
        Box::new(hold_until("kms", "CreateAlias", |t| {
            t.answered("kms", "CreateKey") >= 2
        })),
    ]);
    let started = std::time::Instant::now();
    let children: Vec<_> = (0..RUNS)
        .map(|_| {
            Run::new(&moto)
                .via(&proxy)
                .config(&seed.config)
                .args(["apply", "--auto-approve"])
                .command()
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn trailkey")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let elapsed = started.elapsed();
    assert_eq!(proxy.expired_holds(), Vec::<String>::new());
    let (mut lost_and_continued, mut lost_and_stopped) = (0, 0);
    for out in &outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                // A lost race, or the check after apply seeing another
                // run's write to the trail at the same time.
                assert!(
                    (stderr.contains("another trailkey run")
                        && stderr.contains("run trailkey again"))
                        || stderr.contains(
                            "another process may have changed the key or trail at the same time"
                        ),
                    "a clear message: {}",
                    transcript(out)
                );
                lost_and_stopped += 1;
            }
            _ => panic!("{}", transcript(out)),
        }
        lost_and_continued +=
            usize::from(stderr.contains("Planning again against the other run's key"));
    }
    let exit_zero = outputs
        .iter()
        .filter(|o| o.status.code() == Some(0))
        .count();
    let exchanges = proxy.exchanges();
    let count = |action: &str, status: u16| {
        exchanges
            .iter()
            .filter(|e| e.is("kms", action) && e.response.status == status)
            .count()
    };
    let (created, aliased, alias_taken) = (
        count("CreateKey", 200),
        count("CreateAlias", 200),
        exchanges
            .iter()
            .filter(|e| {
                e.is("kms", "CreateAlias") && e.response_text().contains("AlreadyExistsException")
            })
            .count(),
    );
    assert!(created >= 2, "at least two runs created a key: {created}");
    assert_eq!(aliased, 1, "one CreateAlias succeeded");
    assert!(alias_taken >= 1, "at least one run lost the alias");
    assert!(
        lost_and_continued + lost_and_stopped >= 1,
        "a run lost the race and said so: {}",
        outputs
            .iter()
            .map(transcript)
            .collect::<Vec<_>>()
            .join("\n")
    );

    let state = moto.state(&seed);
    let keys = state["keys"].as_array().unwrap();
    assert_eq!(
        keys.len(),
        created,
        "every key created is accounted for: {state:#}"
    );
    let enabled: Vec<&Value> = keys
        .iter()
        .filter(|k| k["key_state"] == "Enabled")
        .collect();
    assert_eq!(enabled.len(), 1, "exactly one enabled key: {state:#}");
    let winner = enabled[0];
    assert_eq!(winner["tags"]["ManagedBy"], "trailkey");
    for k in keys.iter().filter(|k| k["arn"] != winner["arn"]) {
        assert_eq!(
            k["key_state"], "PendingDeletion",
            "an orphan is on its way out: {k:#}"
        );
    }
    assert_eq!(
        state["aliases"],
        serde_json::json!([{"name": "alias/cloudtrail-org-key", "target_key_id": winner["key_id"]}])
    );
    assert_eq!(state["trail"]["kms_key_id"], winner["arn"]);
    eprintln!(
        "{RUNS} concurrent applies in {elapsed:.1?}: {exit_zero} exited 0 ({lost_and_continued} of them after losing the race and planning again), {lost_and_stopped} exited 1, {} keys created, {} scheduled for deletion, {alias_taken} CreateAlias refused",
        keys.len(),
        keys.len() - 1
    );
    let plan = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(exit_code(&plan), 0, "{}", transcript(&plan));
}

/// The lines of `stderr` that `tracing`'s formatter wrote: a timestamp,
/// then a level.
fn log_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| {
            let mut words = line.split_whitespace();
            let timestamp = words.next().unwrap_or_default();
            let level = words.next().unwrap_or_default();
            timestamp.starts_with(|c: char| c.is_ascii_digit())
                && timestamp.contains('T')
                && timestamp.ends_with('Z')
                && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level)
        })
        .collect()
}

#[test]
fn credentials_and_session_tokens_never_appear_in_any_output_at_any_verbosity() {
    const ACCESS_KEY: &str = "AKIATRAILKEYTESTKEY1";
    const SECRET: &str = "Sup3rSecretAccessKey/trailkey+TEST0000000";
    const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENtrailkey";
    // Run in this order on a fresh organization, with their exit statuses.
    // The last one runs with the trail renamed to a missing one.
    let commands: [(&[&str], i32); 7] = [
        (&["plan", "--detailed-exitcode"], 2),
        (&["apply", "--auto-approve"], 0),
        (&["apply", "--auto-approve", "--format", "json"], 0),
        (&["plan", "--format", "json"], 0),
        (&["policy"], 0),
        (&["destroy", "--dry-run", "--detailed-exitcode"], 2),
        (&["plan"], 1),
    ];
    let failing = commands.len() - 1;
    let expected: Vec<i32> = commands.iter().map(|(_, code)| *code).collect();
    for (level, verbosity) in [(0, &[][..]), (1, &["-v"]), (2, &["-vv"])] {
        let moto = Moto::start();
        let seed = moto.seed();
        // Both kinds of AssumeRole: aws-config's provider for the
        // management role, and trailkey's own for the Security Tooling role.
        seed.add_management_role();
        let proxy = moto.proxy();
        let mut outputs = Vec::new();
        for (i, (args, _)) in commands.iter().enumerate() {
            if i == failing {
                let text = std::fs::read_to_string(&seed.config).unwrap();
                std::fs::write(
                    &seed.config,
                    text.replace("name = \"org-trail\"", "name = \"gone\""),
                )
                .unwrap();
            }
            let out = Run::new(&moto)
                .via(&proxy)
                .config(&seed.config)
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .env("AWS_SESSION_TOKEN", TOKEN)
                .args(verbosity)
                .args(*args)
                .run();
            outputs.push(out);
        }
        let all: Vec<String> = outputs.iter().map(transcript).collect();
        let codes: Vec<i32> = outputs.iter().map(exit_code).collect();
        assert_eq!(
            codes, expected,
            "exit statuses with {verbosity:?}: {all:#?}"
        );

        // What AssumeRole handed out during these runs.
        let (assumed, handed_out) = trailkey_testkit::assumed_credentials(&proxy);
        assert!(
            assumed >= 2,
            "AssumeRole for both roles went through the proxy: {:?}",
            proxy
                .exchanges()
                .iter()
                .map(|e| e.call())
                .collect::<Vec<_>>()
        );
        let mut secrets = vec![ACCESS_KEY.to_owned(), SECRET.to_owned(), TOKEN.to_owned()];
        secrets.extend(handed_out);

        for ((out, all), (args, _)) in outputs.iter().zip(&all).zip(&commands) {
            for secret in &secrets {
                assert!(
                    !all.contains(secret.as_str()),
                    "{verbosity:?} {args:?}: {secret} leaked: {all}"
                );
            }
            // moto's assumed-role access keys start ASIA.
            assert!(!all.contains("ASIA"), "{verbosity:?} {args:?}: {all}");
            assert!(
                !all.to_lowercase().contains("secret"),
                "{verbosity:?} {args:?}: {all}"
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            let logs = log_lines(&stderr);
            let calls = logs.iter().filter(|l| l.contains("aws call")).count();
            match level {
                0 => assert!(logs.is_empty(), "no log without -v: {all}"),
                // -v logs what trailkey does, not each AWS call.
                1 => assert_eq!(calls, 0, "AWS calls are logged at -vv only: {all}"),
                _ => assert!(
                    logs.iter()
                        .any(|l| l.contains(" DEBUG ") && l.contains("aws call")),
                    "-vv logs every AWS call: {all}"
                ),
            }
        }
        if level == 1 {
            for ((out, all), (args, _)) in outputs.iter().zip(&all).zip(&commands) {
                if out.status.code() == Some(1) {
                    continue;
                }
                let stderr = String::from_utf8_lossy(&out.stderr);
                let logs = log_lines(&stderr);
                for what in ["observed", "planned"] {
                    assert!(
                        logs.iter()
                            .any(|l| l.contains(" INFO ") && l.contains(what)),
                        "-v logs what trailkey {what} for {args:?}: {all}"
                    );
                }
            }
            let first_apply = String::from_utf8_lossy(&outputs[1].stderr);
            let steps = log_lines(&first_apply)
                .into_iter()
                .filter(|l| l.contains(" INFO ") && l.contains("apply step"))
                .count();
            assert_eq!(steps, 4, "-v logs each apply step: {}", all[1]);
        }
        let logged: usize = outputs
            .iter()
            .map(|o| log_lines(&String::from_utf8_lossy(&o.stderr)).len())
            .sum();
        eprintln!(
            "{verbosity:?}: {} AWS calls through the proxy, {} AssumeRole, {logged} log lines",
            proxy.exchanges().len(),
            assumed
        );
    }
}

#[test]
fn the_confirmation_prompt_is_on_stderr_and_json_stdout_is_one_document() {
    const PROMPT: &str = "Do you want to perform these actions?";
    let moto = Moto::start();
    let seed = moto.seed();
    let proxy = moto.proxy();
    // Runs trailkey with stdin on a terminal that answers `answer`; returns
    // its output and the AWS calls it made.
    let confirm = |args: &[&str], answer: &str| {
        let before = proxy.exchanges().len();
        let out = Run::new(&moto)
            .via(&proxy)
            .config(&seed.config)
            .args(args)
            .tty(answer)
            .run();
        let calls = proxy.exchanges().split_off(before);
        assert!(!calls.is_empty(), "it read AWS: {}", transcript(&out));
        (out, calls)
    };
    let writes = |calls: &[Exchange]| -> Vec<String> {
        calls
            .iter()
            .filter(|e| e.is_write())
            .map(Exchange::call)
            .collect()
    };

    // Declined: exit 1, nothing written; with JSON nothing on stdout, in
    // human format the plan on stdout; the prompt on stderr either way.
    for (args, answer) in [
        (&["apply", "--format", "json"][..], "no"),
        (&["apply"], "no"),
        (&["apply", "--format", "json"], ""),
    ] {
        let (out, calls) = confirm(args, answer);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(exit_code(&out), 1, "{args:?}: {}", transcript(&out));
        assert!(stderr.contains(PROMPT), "{args:?}: {}", transcript(&out));
        assert!(
            stderr.contains("apply cancelled"),
            "{args:?}: {}",
            transcript(&out)
        );
        assert!(!stdout.contains(PROMPT), "{args:?}: {}", transcript(&out));
        if args.contains(&"json") {
            assert_eq!(stdout, "", "{args:?}: {}", transcript(&out));
            assert!(
                stderr.contains("+ kms_key will be created"),
                "the plan to confirm, on stderr: {}",
                transcript(&out)
            );
        } else {
            assert!(
                stdout.contains("+ kms_key will be created"),
                "{}",
                transcript(&out)
            );
        }
        assert_eq!(writes(&calls), Vec::<String>::new(), "{args:?} declined");
    }
    assert_eq!(moto.state(&seed)["keys"].as_array().unwrap().len(), 0);

    // Accepted: all of stdout is one JSON document.
    let (out, calls) = confirm(&["apply", "--format", "json"], "yes");
    assert_eq!(exit_code(&out), 0, "{}", transcript(&out));
    let applied: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", transcript(&out)));
    assert_eq!(applied["format_version"], "1", "{applied:#}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(PROMPT),
        "{}",
        transcript(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(PROMPT));
    assert!(
        writes(&calls).contains(&"kms:CreateKey".to_owned()),
        "{:?}",
        calls.iter().map(Exchange::call).collect::<Vec<_>>()
    );
    let state = moto.state(&seed);
    let key_arn = only_key(&state)["arn"].clone();
    assert_eq!(state["trail"]["kms_key_id"], key_arn);
    let applied_targets: Vec<&Value> = applied["applied"]
        .as_array()
        .expect("applied steps")
        .iter()
        .map(|d| &d["target"])
        .collect();
    assert!(applied_targets.contains(&&key_arn), "{applied:#}");

    // The same for destroy.
    let (out, calls) = confirm(&["destroy", "--format", "json"], "no");
    assert_eq!(exit_code(&out), 1, "{}", transcript(&out));
    assert_eq!(out.stdout, b"", "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(PROMPT));
    assert_eq!(writes(&calls), Vec::<String>::new(), "destroy declined");
    assert_eq!(moto.state(&seed)["trail"]["kms_key_id"], key_arn);

    let (out, calls) = confirm(&["destroy", "--format", "json"], "yes");
    assert_eq!(exit_code(&out), 0, "{}", transcript(&out));
    let destroyed: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", transcript(&out)));
    assert_eq!(destroyed["format_version"], "1", "{destroyed:#}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(PROMPT));
    assert!(
        writes(&calls).contains(&"cloudtrail:UpdateTrail".to_owned()),
        "{:?}",
        calls.iter().map(Exchange::call).collect::<Vec<_>>()
    );
    let state = moto.state(&seed);
    assert!(on_sse_s3(&state), "back on SSE-S3: {state:#}");
}

/// A key someone else made with trailkey's three tags and a grant of their
/// own is not adopted on a first run (no alias, no trail names it): the
/// plan refuses, naming the key and the grant, and nothing is written.
/// Pointing the alias at it adopts it on purpose, its statements kept.
#[test]
fn a_planted_key_with_trailkeys_tags_and_a_grant_of_its_own_is_not_adopted() {
    let moto = Moto::start();
    let seed = moto.seed();
    let st = seed.security_tooling.as_str();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{st}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "Backdoor", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::666666666666:root"}, "Action": "kms:*", "Resource": "*"}
        ]
    });
    let tag = |k: &str, v: &str| serde_json::json!({"TagKey": k, "TagValue": v});
    let planted = moto.calls_as_role(
        st,
        "Intruder",
        Some(moto.layer()),
        &serde_json::json!([
            {"op": "kms:CreateKey", "params": {
                "KeyUsage": "ENCRYPT_DECRYPT",
                "KeySpec": "SYMMETRIC_DEFAULT",
                "Policy": policy.to_string(),
                "Tags": [tag("ManagedBy", "trailkey"), tag("trailkey:alias", "cloudtrail-org-key"), tag("trailkey:created", "true")]
            }},
            {"op": "kms:DescribeKey", "params": {"KeyId": "$KeyId"}, "until_ok": 10.0}
        ]),
    );
    assert!(planted.iter().all(|r| r["ok"] == true), "{planted:#?}");
    let key_id = planted[0]["response"]["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();

    moto.start_recording();
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let out = Run::new(&moto).config(&seed.config).args(args).run();
        assert_eq!(exit_code(&out), 1, "{args:?}: {}", transcript(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&key_id)
                && stderr.contains("grants more than trailkey writes")
                && stderr.contains("\"Backdoor\"")
                && stderr.contains("666666666666"),
            "{stderr}"
        );
        assert!(
            stderr.contains("adopt it on purpose: point the alias at it"),
            "{stderr}"
        );
    }
    let calls = moto.recorded();
    assert!(calls.iter().all(|c| !is_write(c)), "no write: {calls:?}");

    // Adopted on purpose: the alias names it.
    let aliased = moto.calls_as_role(
        st,
        "Intruder",
        Some(moto.layer()),
        &serde_json::json!([
            {"op": "kms:CreateAlias", "params": {"AliasName": "alias/cloudtrail-org-key", "TargetKeyId": key_id}}
        ]),
    );
    assert!(aliased[0]["ok"] == true, "{aliased:#?}");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(exit_code(&apply), 0, "{}", transcript(&apply));
    let state = moto.state(&seed);
    assert!(
        state["trail"]["kms_key_id"]
            .as_str()
            .unwrap()
            .ends_with(&key_id),
        "{state:#}"
    );
    // Its grant is kept, and every plan says what it opens.
    let plan = Run::new(&moto).config(&seed.config).args(["plan"]).run();
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains("\"Backdoor\" lets arn:aws:iam::666666666666:root, of account 666666666666, outside the organization"),
        "{}",
        transcript(&plan)
    );
}
