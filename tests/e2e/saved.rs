//! Saved plans end to end, as a pipeline with an approval step runs them:
//! `plan --out FILE` in one stage, `show FILE` for the person who
//! approves, `apply FILE` in a later stage (no terminal, no
//! `--auto-approve`). The real binary against moto through the real-AWS
//! layer; what was written is read from moto's request recorder, and a
//! file refused before any AWS call is proved so with a server that counts
//! connections.

use std::path::{Path, PathBuf};

use serde_json::Value;
use trailkey_testkit::{CountingServer, Moto, Run, Seed, is_write, transcript};

fn exit_code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A path for a plan file beside the seeded config.
fn plan_file(moto: &Moto, name: &str) -> PathBuf {
    moto.dir.path().join(name)
}

fn run(moto: &Moto, seed: &Seed, args: &[&str]) -> std::process::Output {
    Run::new(moto).config(&seed.config).args(args).run()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).expect("a JSON file")
}

/// `(address, operation)` pairs, sorted: the steps of a wave run
/// concurrently, in either order.
fn pairs(list: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap().to_owned(),
                s["operation"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn a_saved_plan_is_shown_applied_exactly_without_a_prompt_and_refused_the_second_time() {
    let moto = Moto::start();
    let seed = moto.seed();
    let file = plan_file(&moto, "trailkey.plan");

    // plan --out: the plan as plan shows it, the exit codes as plan's.
    let plain = run(&moto, &seed, &["plan", "--detailed-exitcode"]);
    assert_eq!(exit_code(&plain), 2, "{}", transcript(&plain));
    moto.start_recording();
    let saved = run(
        &moto,
        &seed,
        &["plan", "--detailed-exitcode", "--out", arg(&file)],
    );
    assert_eq!(exit_code(&saved), 2, "{}", transcript(&saved));
    assert_eq!(saved.stdout, plain.stdout, "the same plan on stdout");
    let reads = moto.recorded();
    assert!(reads.iter().all(|c| !is_write(c)), "read-only: {reads:?}");
    let saved_file = read_json(&file);
    let digest = saved_file["sha256"].as_str().unwrap();
    assert!(
        stderr(&saved).ends_with(&format!(
            "\nSaved the plan to {} (plan digest {digest}). To make exactly these changes: trailkey -c {} apply {} --expect-sha256 {digest}\n",
            file.display(),
            seed.config.display(),
            file.display()
        )),
        "{}",
        stderr(&saved)
    );
    assert_eq!(saved_file["trailkey_plan"], 1);
    assert_eq!(moto.state(&seed)["keys"].as_array().unwrap().len(), 0);
    // It holds the key policy and the organization's account IDs: only its
    // owner may read it.
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    // With --format json, the JSON plan on stdout is the saved one.
    let json_file = plan_file(&moto, "trailkey-json.plan");
    let json = run(
        &moto,
        &seed,
        &["plan", "--format", "json", "--out", arg(&json_file)],
    );
    assert_eq!(exit_code(&json), 0, "{}", transcript(&json));
    let stdout: Value = serde_json::from_slice(&json.stdout).expect("JSON on stdout");
    assert_eq!(stdout, read_json(&json_file)["plan"]);
    assert_eq!(stdout, saved_file["plan"]);

    // show: what the approver reads, human and JSON, offline.
    let server = CountingServer::start();
    let show = Run::at(&server.endpoint).args(["show", arg(&file)]).run();
    assert_eq!(exit_code(&show), 0, "{}", transcript(&show));
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.starts_with(&format!(
            "Saved plan {} (plan digest {digest}), made with the config {}:\n\n",
            file.display(),
            seed.config.display()
        )),
        "{shown}"
    );
    assert!(
        shown.ends_with(&*String::from_utf8_lossy(&plain.stdout)),
        "{shown}"
    );
    let show_json = Run::at(&server.endpoint)
        .args(["show", arg(&file), "--format", "json"])
        .run();
    assert_eq!(exit_code(&show_json), 0, "{}", transcript(&show_json));
    assert_eq!(
        show_json.stdout, json.stdout,
        "show --format json is plan's JSON"
    );
    assert_eq!(server.connections(), 0, "show makes no AWS call");

    // With another plan digest than the file's, as when the file in hand is
    // not the plan that was approved: refused before any AWS call, naming
    // both digests.
    let approved = "ab".repeat(32);
    let out = Run::at(&server.endpoint)
        .config(&seed.config)
        .args(["apply", arg(&file), "--expect-sha256", &approved])
        .run();
    assert_eq!(exit_code(&out), 1, "{}", transcript(&out));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).starts_with(&format!(
            "error: the saved plan {} is not the approved plan: its plan digest is {digest}, and --expect-sha256 is {approved}: nothing was changed\nhint: ",
            file.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.connections(), 0, "no AWS call");

    // apply FILE with the approved digest (in either case): no terminal and
    // no --auto-approve, and no prompt; the writes are exactly the saved
    // steps.
    moto.start_recording();
    let apply = run(
        &moto,
        &seed,
        &[
            "apply",
            arg(&file),
            "--format",
            "json",
            "--expect-sha256",
            &digest.to_uppercase(),
        ],
    );
    assert_eq!(exit_code(&apply), 0, "{}", transcript(&apply));
    assert!(
        !stderr(&apply).contains("Do you want"),
        "{}",
        stderr(&apply)
    );
    let result: Value = serde_json::from_slice(&apply.stdout).expect("apply's JSON");
    assert_eq!(pairs(&result["applied"]), pairs(&saved_file["steps"]));
    assert_eq!(result["plan"], saved_file["plan"]);
    assert_eq!(result["result"]["converged"], true);
    // The writes are the saved steps, each once, in their order: exactly
    // what was recorded, CreateAlias and EnableKeyRotation (one wave, run
    // at once) in either order.
    let steps: Vec<&str> = saved_file["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "CreateKey",
            "CreateAlias",
            "EnableKeyRotation",
            "UpdateTrail"
        ]
    );
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
        "{:?}",
        moto.recorded()
    );
    let state = moto.state(&seed);
    let key = &state["keys"][0];
    assert_eq!(state["trail"]["kms_key_id"], key["arn"]);

    // The same file again: what it rests on is gone. Exit 1, no write.
    moto.start_recording();
    let again = run(&moto, &seed, &["apply", arg(&file)]);
    assert_eq!(exit_code(&again), 1, "{}", transcript(&again));
    let text = stderr(&again);
    assert!(
        text.contains(&format!(
            "error: the saved plan {} is stale: AWS has changed since the plan was made, and nothing was changed; a plan made now has no changes: was this plan applied already?",
            file.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "\n  - the trail's key (trail.kms_key_id): null when planned, \"arn:aws:kms:"
        ),
        "{text}"
    );
    assert!(
        text.contains("\nhint: plan again (`trailkey plan --out FILE`)"),
        "{text}"
    );
    assert!(again.stdout.is_empty(), "nothing shown as if applied");
    let calls = moto.recorded();
    assert!(calls.iter().all(|c| !is_write(c)), "no write: {calls:?}");
    assert_eq!(moto.state(&seed)["keys"].as_array().unwrap().len(), 1);
}

#[test]
fn a_plan_made_stale_by_a_change_to_the_trail_or_the_key_policy_is_refused_without_a_write() {
    let moto = Moto::start();
    let seed = moto.seed();
    let apply = run(&moto, &seed, &["apply", "--auto-approve"]);
    assert_eq!(exit_code(&apply), 0, "{}", transcript(&apply));
    let drift = |kind: &str| {
        moto.fixture(&[
            "drift",
            kind,
            "--security-tooling",
            &seed.security_tooling,
            "--trail",
            &seed.trail_name,
        ]);
    };
    drift("rotation-off");
    for (kind, named) in [
        (
            "trail-other-key",
            "the trail's key (trail.kms_key_id): \"arn:aws:kms:",
        ),
        ("policy-foreign", "the key policy (key.policy)"),
    ] {
        let file = plan_file(&moto, &format!("{kind}.plan"));
        let plan = run(&moto, &seed, &["plan", "--out", arg(&file)]);
        assert_eq!(exit_code(&plan), 0, "{}", transcript(&plan));
        // Behind the approver's back, between plan and apply.
        drift(kind);
        moto.start_recording();
        let out = run(&moto, &seed, &["apply", arg(&file)]);
        assert_eq!(exit_code(&out), 1, "{kind}: {}", transcript(&out));
        let text = stderr(&out);
        assert!(text.contains("is stale"), "{kind}: {text}");
        assert!(text.contains(&format!("\n  - {named}")), "{kind}: {text}");
        let calls = moto.recorded();
        assert!(
            calls.iter().all(|c| !is_write(c)),
            "{kind}: no write: {calls:?}"
        );
    }
    // Planned again, approved again: applied.
    let file = plan_file(&moto, "again.plan");
    let plan = run(&moto, &seed, &["plan", "--out", arg(&file)]);
    assert_eq!(exit_code(&plan), 0, "{}", transcript(&plan));
    let apply = run(&moto, &seed, &["apply", arg(&file)]);
    assert_eq!(exit_code(&apply), 0, "{}", transcript(&apply));
    let plan = run(&moto, &seed, &["plan", "--detailed-exitcode"]);
    assert_eq!(exit_code(&plan), 0, "{}", transcript(&plan));
}

#[test]
fn an_altered_plan_file_is_refused_before_any_aws_call() {
    let moto = Moto::start();
    let seed = moto.seed();
    let file = plan_file(&moto, "trailkey.plan");
    let plan = run(&moto, &seed, &["plan", "--out", arg(&file)]);
    assert_eq!(exit_code(&plan), 0, "{}", transcript(&plan));
    // One byte of the changes ("create" to "dreate"), the digest left as
    // it is.
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text
        .find("\"action\": \"create\"")
        .expect("a created resource")
        + 11;
    let mut bytes = text.into_bytes();
    assert_eq!(bytes[at], b'c');
    bytes[at] = b'd';
    std::fs::write(&file, bytes).unwrap();

    let server = CountingServer::start();
    for args in [&["apply", arg(&file)][..], &["show", arg(&file)]] {
        let out = Run::at(&server.endpoint)
            .config(&seed.config)
            .args(args)
            .run();
        assert_eq!(exit_code(&out), 1, "{args:?}: {}", transcript(&out));
        assert!(out.stdout.is_empty());
        assert!(
            stderr(&out).contains(&format!(
                "error: the saved plan {} was altered or damaged: its content does not match its plan digest\nhint: ",
                file.display()
            )),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(server.connections(), 0, "no AWS call");
    assert_eq!(moto.state(&seed)["keys"].as_array().unwrap().len(), 0);
}

#[test]
fn a_plan_for_another_config_is_refused_before_any_aws_call_and_comments_do_not_count() {
    let moto = Moto::start();
    let seed = moto.seed();
    let file = plan_file(&moto, "trailkey.plan");
    let plan = run(&moto, &seed, &["plan", "--out", arg(&file)]);
    assert_eq!(exit_code(&plan), 0, "{}", transcript(&plan));
    let text = std::fs::read_to_string(&seed.config).unwrap();

    // The config now asks for something else: refused, naming it.
    std::fs::write(&seed.config, format!("{text}\n[key]\nrotation = false\n")).unwrap();
    let server = CountingServer::start();
    let out = Run::at(&server.endpoint)
        .config(&seed.config)
        .args(["apply", arg(&file)])
        .run();
    assert_eq!(exit_code(&out), 1, "{}", transcript(&out));
    let config = seed.config.display();
    assert!(
        stderr(&out).contains(&format!(
            "error: the config {config} asks for something other than the config the saved plan {} was made with ({config}): nothing was changed\nhint: apply the plan with the config it was made with (-c), or plan again with this one",
            file.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.connections(), 0, "no AWS call");

    // The same setup with a comment: the plan applies.
    std::fs::write(&seed.config, format!("# reviewed\n{text}")).unwrap();
    let out = run(&moto, &seed, &["apply", arg(&file)]);
    assert_eq!(exit_code(&out), 0, "{}", transcript(&out));
    assert_eq!(moto.state(&seed)["keys"].as_array().unwrap().len(), 1);
}
