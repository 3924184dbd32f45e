//! CLI behaviour without any AWS: the exit code, stdout and stderr of the
//! real binary, snapshotted with insta. Every bad config must fail with
//! exit 1, a message naming the file, field and fix, and zero AWS requests
//! (the AWS endpoint points at a server that counts connections).

use std::path::Path;
use std::process::Command;

use trailkey_testkit::{CountingServer, Run, transcript};

/// Corpus files whose error is about the whole file, so there is no field.
const FILE_LEVEL_ERRORS: &[&str] = &["binary-garbage.toml", "syntax-json-instead-of-toml.toml"];

/// The corpus holds at least 30 bad configs, one mistake each, so that every
/// kind of mistake docs/testing.md lists keeps a case.
#[test]
fn the_bad_config_corpus_has_at_least_30_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/bad");
    let count = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(count >= 30, "{count} files in {}", dir.display());
}

#[test]
fn bad_configs_fail_clearly_without_any_aws_request() {
    insta::glob!("../configs/bad", "*.toml", |path| {
        let server = CountingServer::start();
        let rel = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .to_str()
            .unwrap();
        for command in ["validate", "plan"] {
            let out = Run::at(&server.endpoint).args(["-c", rel, command]).run();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{rel} {command}: {stderr}");
            assert!(out.stdout.is_empty(), "{rel}: nothing on stdout");
            assert!(
                stderr.starts_with("error: invalid config "),
                "{rel}: {stderr}"
            );
            assert!(
                stderr.contains(rel),
                "{rel}: the message names the file: {stderr}"
            );
            assert!(stderr.contains("\nhint: "), "{rel}: a hint: {stderr}");
            // Every message names the field, except where the file as a
            // whole is not a config (not text at all).
            if !FILE_LEVEL_ERRORS.iter().any(|f| rel.ends_with(f)) {
                assert!(stderr.contains("\n  field: "), "{rel}: a field: {stderr}");
            }
            assert!(!stderr.contains("panicked"), "{rel}: {stderr}");
            if command == "plan" {
                insta::assert_snapshot!(transcript(&out));
            }
        }
        assert_eq!(server.connections(), 0, "{rel}: no AWS request");
    });
}

#[test]
fn binary_garbage_and_huge_files_are_rejected_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.toml");
    std::fs::write(&garbage, [0xff, 0xfe, 0x00, 0x9c, 0x80, 0x01, 0x02]).unwrap();
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, "# padding\n".repeat(1024 * 1024)).unwrap();
    let server = CountingServer::start();
    for (path, needle) in [(&garbage, "not UTF-8"), (&huge, "bytes")] {
        let out = Run::at(&server.endpoint)
            .args(["-c", path.to_str().unwrap(), "plan"])
            .run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(stderr.contains("hint:"), "{stderr}");
    }
    assert_eq!(server.connections(), 0);
}

/// A config someone else wrote, with escape sequences in its name and in
/// a quoted key: every error shows them escaped, and nothing of the
/// message is lost to them (a terminal, or the stripping of colour codes,
/// would take `ESC X` or `ESC ]` and the text after it as a sequence);
/// exit 1, no request.
#[test]
fn escape_sequences_in_a_config_are_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "k\u{1b}X.toml",
            "region = \"us-east-1\"\nfoo = 1\n",
            ["k\\u{1b}X.toml", "field: foo"],
        ),
        (
            "osc.toml",
            "region = \"us-east-1\"\n\"\\u001b]0;owned\\u0007\" = 1\n",
            ["\\u{1b}]0;owned\\u{7}", "unknown field"],
        ),
    ];
    let server = CountingServer::start();
    for (name, text, shown) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = Run::at(&server.endpoint)
            .args(["-c", path.to_str().unwrap(), "plan"])
            .env_remove("CLICOLOR_FORCE")
            .run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        for needle in shown {
            assert!(stderr.contains(needle), "{name}: {needle}: {stderr:?}");
        }
        assert!(!stderr.contains('\u{1b}'), "{name}: {stderr:?}");
        assert!(!stderr.contains('\u{7}'), "{name}: {stderr:?}");
    }
    assert_eq!(server.connections(), 0);
}

#[test]
fn missing_config_file_names_the_path_and_the_example() {
    let server = CountingServer::start();
    let out = Run::at(&server.endpoint)
        .args(["-c", "does/not/exist.toml", "plan"])
        .run();
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(server.connections(), 0);
}

#[test]
fn validate_summarises_a_good_config_offline() {
    let server = CountingServer::start();
    let out = Run::at(&server.endpoint)
        .args(["-c", "config/trailkey.example.toml", "validate"])
        .run();
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(server.connections(), 0);
}

#[test]
fn apply_without_a_terminal_or_auto_approve_refuses_before_any_request() {
    let server = CountingServer::start();
    let out = Run::at(&server.endpoint)
        .args(["-c", "tests/configs/good/minimal.toml", "apply"])
        .run();
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(server.connections(), 0);
}

#[test]
fn offline_policy_renders_the_template_with_the_config_ids() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("trailkey.toml");
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/good/minimal.toml"),
    )
    .unwrap();
    std::fs::write(
        &cfg,
        base.replace(
            "log_archive = \"222222222222\"",
            "log_archive = \"222222222222\"\nmanagement = \"333333333333\"",
        ),
    )
    .unwrap();
    let server = CountingServer::start();
    let out = Run::at(&server.endpoint)
        .args(["-c", cfg.to_str().unwrap(), "policy", "--offline"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(server.connections(), 0);
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn help_lists_the_commands() {
    let server = CountingServer::start();
    let out = Run::at(&server.endpoint).args(["--help"]).run();
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn colour_only_when_forced_or_on_a_terminal_and_never_with_no_color() {
    let server = CountingServer::start();
    let run = |no_color: Option<&str>, force: Option<&str>| {
        let mut run = Run::at(&server.endpoint)
            .args(["-c", "tests/configs/bad/account-13-digits.toml", "plan"])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        if let Some(v) = no_color {
            run = run.env("NO_COLOR", v);
        }
        if let Some(v) = force {
            run = run.env("CLICOLOR_FORCE", v);
        }
        let out = run.run();
        String::from_utf8_lossy(&out.stderr).contains('\x1b')
    };
    assert!(!run(None, None), "not a terminal: no colour");
    assert!(run(None, Some("1")), "CLICOLOR_FORCE: colour");
    assert!(!run(Some("1"), Some("1")), "NO_COLOR wins");
}

/// Runs the venv's parliament (IAM policy linter, pinned in
/// tests/requirements.txt) on every `*.json` policy in `dir`, with the
/// settings in tests/testkit/parliament.yaml; returns its exit code and
/// findings (one JSON object per line).
fn parliament(dir: &Path, community: bool) -> (Option<i32>, Vec<serde_json::Value>) {
    let bin = trailkey_testkit::venv().join("bin/parliament");
    assert!(
        bin.exists(),
        "no parliament in the test venv: run `make test`, which installs tests/requirements.txt"
    );
    let mut cmd = Command::new(bin);
    cmd.arg("--directory")
        .arg(dir)
        .args(["--include_policy_extension", ".json"])
        .args(["--minimum_severity", "INFO", "--json", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testkit/parliament.yaml"))
        // parliament reads a policy from stdin when stdin is not a terminal.
        .stdin(std::process::Stdio::null());
    if community {
        cmd.arg("--include-community-auditors");
    }
    let out = cmd.output().expect("run parliament");
    assert!(
        out.stderr.is_empty(),
        "parliament: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out.status.code(), findings)
}

/// The one community-auditor finding trailkey's policy is expected to have:
/// "permissions management" actions that are all KMS actions on this key
/// (kms:PutKeyPolicy, kms:CreateGrant, ... from `kms:*`), which only
/// `TrailkeyRootAdministration` grants, to the Security Tooling account's
/// root, so the key stays manageable (docs/testing.md). Any other finding,
/// or such actions of another service, is unexpected.
fn unexpected(findings: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    findings
        .into_iter()
        .filter(|f| {
            let kms_only = f["location"]["actions"].as_array().is_some_and(|a| {
                !a.is_empty()
                    && a.iter()
                        .all(|x| x.as_str().is_some_and(|s| s.starts_with("kms:")))
            });
            !(f["issue"] == "PERMISSIONS_MANAGEMENT_ACTIONS" && kms_only)
        })
        .collect()
}

#[test]
fn the_offline_policy_passes_the_parliament_linter() {
    let dir = tempfile::tempdir().unwrap();
    let server = CountingServer::start();
    let mut policies = Vec::new();
    // With the key's protection and its rotation period, so that the
    // policy holds both Deny statements too.
    for region in ["us-east-1", "us-gov-west-1", "cn-north-1"] {
        let cfg = dir.path().join(format!("{region}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "region = \"{region}\"\n[accounts]\nsecurity_tooling = \"111111111111\"\n\
                 log_archive = \"222222222222\"\nmanagement = \"333333333333\"\n\
                 [trail]\nname = \"org-trail\"\n\
                 [key]\nprotect = true\nrotation_period_days = 180\n"
            ),
        )
        .unwrap();
        let out = Run::at(&server.endpoint)
            .args(["-c", cfg.to_str().unwrap(), "policy", "--offline"])
            .run();
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        let policies_dir = dir.path().join(region);
        std::fs::create_dir(&policies_dir).unwrap();
        std::fs::write(policies_dir.join("trailkey-key-policy.json"), &out.stdout).unwrap();
        policies.push((policies_dir, String::from_utf8(out.stdout).unwrap()));
    }
    assert_eq!(server.connections(), 0);

    for (policies_dir, _) in &policies {
        // parliament's own auditors: no finding at all, down to INFO.
        let (code, findings) = parliament(policies_dir, false);
        assert_eq!(findings, Vec::<serde_json::Value>::new());
        assert_eq!(code, Some(0));
        // With the community auditors: only the expected KMS administration.
        let (_, findings) = parliament(policies_dir, true);
        assert_eq!(unexpected(findings), Vec::<serde_json::Value>::new());
    }

    // The linter does look: a misspelled action is reported, and so is a
    // permissions management action of another service.
    let broken = |name: &str, policy: String| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("trailkey-key-policy.json"), policy).unwrap();
        d
    };
    let typo = broken(
        "typo",
        policies[0]
            .1
            .replacen("\"kms:DescribeKey\"", "\"kms:DescribeKee\"", 1),
    );
    let (code, findings) = parliament(&typo, false);
    assert_eq!(code, Some(1));
    assert!(
        findings.iter().any(|f| f["issue"] == "UNKNOWN_ACTION"),
        "{findings:?}"
    );
    let pass_role = broken(
        "pass-role",
        policies[0]
            .1
            .replacen("\"kms:*\"", "[\"kms:*\", \"iam:PassRole\"]", 1),
    );
    let (_, findings) = parliament(&pass_role, true);
    assert!(
        unexpected(findings)
            .iter()
            .any(|f| f["issue"] == "PERMISSIONS_MANAGEMENT_ACTIONS"),
        "iam:PassRole is not a KMS action"
    );
}

#[test]
fn a_command_line_typo_exits_1_never_2_which_means_drift() {
    let server = CountingServer::start();
    for args in [
        &["plna"][..],
        &["plan", "--detailed-exit-code"],
        &["destroy", "--detailed-exitcode"],
    ] {
        let out = Run::at(&server.endpoint).args(args).run();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", transcript(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
    }
    for args in [&["--help"][..], &["--version"], &["plan", "--help"]] {
        assert_eq!(
            Run::at(&server.endpoint).args(args).run().status.code(),
            Some(0),
            "{args:?}"
        );
    }
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_bad_wait_for_delivery_exits_1_with_what_is_expected_and_no_request() {
    let server = CountingServer::start();
    let out = Run::at(&server.endpoint)
        .args([
            "-c",
            "tests/configs/good/minimal.toml",
            "apply",
            "--auto-approve",
            "--wait-for-delivery=abc",
        ])
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(server.connections(), 0);
}

/// Bad flag values: exit 1, the flag and the value named, no AWS request.
#[test]
fn bad_flag_values_fail_clearly_without_any_aws_request() {
    let server = CountingServer::start();
    let example = "config/trailkey.example.toml";
    let cases: [(&[&str], &[&str]); 10] = [
        (
            &["destroy", "--delete-key", "--deletion-window-days", "6"],
            &["--deletion-window-days", "6 is not in 7..=30"],
        ),
        (
            &["destroy", "--delete-key", "--deletion-window-days", "31"],
            &["--deletion-window-days", "31 is not in 7..=30"],
        ),
        (
            &["policy", "--reader-iam", "not-an-arn"],
            &["--reader-iam", "\"not-an-arn\"", "hint: "],
        ),
        (
            &["init", "--region", "bogus"],
            &["--region", "\"bogus\"", "hint: "],
        ),
        (&["policy", "--offline"], &["accounts.management", "hint: "]),
        (
            &["apply", "--policy-retry-timeout", "soon"],
            &["--policy-retry-timeout", "soon"],
        ),
        // Absurd values: refused with the maximum, before any AWS call
        // (they used to overflow time arithmetic, after apply had written,
        // or spin counting retries).
        (
            &["apply", "--wait-for-delivery=9223372036854775807s"],
            &["--wait-for-delivery", "longer than the maximum, 24h"],
        ),
        (
            &["apply", "--propagation-timeout", "18446744073709551615"],
            &["--propagation-timeout", "more than the maximum, 3600"],
        ),
        (
            &["apply", "--policy-retry-timeout", "100000000000"],
            &["--policy-retry-timeout", "more than the maximum, 3600"],
        ),
        (
            &["apply", "--propagation-timeout", "18446744073709551616"],
            &[
                "--propagation-timeout",
                "not a whole number of seconds (0 to 3600)",
            ],
        ),
    ];
    for (args, needles) in cases {
        let mut all = vec!["-c", example];
        all.extend_from_slice(args);
        let out = Run::at(&server.endpoint).args(&all).run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{args:?}: {needle:?} in {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(server.connections(), 0, "no AWS request");
}

/// A failed write to stdout (a full disk) is a failed run: exit 1 and a
/// message, not an empty plan with a success code. A closed pipe is not.
#[test]
fn a_failed_write_to_stdout_exits_1_and_a_closed_pipe_does_not() {
    let server = CountingServer::start();
    let example = "config/trailkey.example.toml";
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = Run::at(&server.endpoint)
        .args(["-c", example, "validate"])
        .command()
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("could not write the output to stdout") && stderr.contains("hint: "),
        "{stderr}"
    );

    // `| head -c0`: the reader is gone; the run still ends as it would.
    let mut child = Run::at(&server.endpoint)
        .args(["-c", example, "validate"])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The help of the commands that write, apply and show a saved plan.
#[test]
fn plan_apply_and_show_explain_saved_plans_in_their_help() {
    let server = CountingServer::start();
    for command in ["plan", "apply", "show"] {
        let out = Run::at(&server.endpoint).args([command, "--help"]).run();
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        insta::assert_snapshot!(format!("{command}_help"), transcript(&out));
    }
    assert_eq!(server.connections(), 0);
}

/// Terraform's `-out=FILE` is no option of trailkey's (clap has no one-dash
/// long options): refused with the spelling to use, before any request.
#[test]
fn terraforms_one_dash_out_is_refused_naming_the_two_dash_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let server = CountingServer::start();
    let out = Run::at(&server.endpoint)
        .current_dir(dir.path())
        .args(["plan", "-out=trailkey.plan"])
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(server.connections(), 0);
}

/// `plan --out` into a directory that does not exist: refused before any
/// request, nothing written.
#[test]
fn plan_out_to_a_file_that_cannot_be_written_fails_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = CountingServer::start();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/good/minimal.toml");
    std::fs::copy(&config, dir.path().join("trailkey.toml")).unwrap();
    for (out_file, says) in [
        (
            "no/such/dir/trailkey.plan",
            "cannot write the plan to no/such/dir/trailkey.plan: No such file or directory",
        ),
        (".", "cannot write the plan to .: it is a directory"),
        (
            "trailkey.toml",
            "--out trailkey.toml is the config file: the plan would replace it",
        ),
    ] {
        let out = Run::at(&server.endpoint)
            .current_dir(dir.path())
            .args(["plan", "--out", out_file])
            .run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
        assert!(stderr.starts_with(&format!("error: {says}")), "{stderr}");
        assert!(stderr.contains("\nhint: "), "{stderr}");
        if out_file == "." {
            insta::assert_snapshot!(transcript(&out));
        }
    }
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "only the config: {files:?}");
    assert_eq!(server.connections(), 0);
}

/// What is no saved plan (not JSON, JSON of another shape, too large, not
/// a file, missing) is refused by `apply FILE` and `show FILE` with exit 1
/// and a hint, before any request, without a panic.
#[test]
fn a_file_that_is_no_saved_plan_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = CountingServer::start();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        name.to_owned()
    };
    let cases = [
        (
            write("text.plan", b"Plan: 4 to add\n"),
            "is not a trailkey saved plan: it is not JSON",
        ),
        (
            write("empty.plan", b""),
            "is not a trailkey saved plan: it is not JSON",
        ),
        (
            write("garbage.plan", &[0xff, 0xfe, 0x00, 0x9c, 0x1b]),
            "is not a trailkey saved plan: it is not JSON",
        ),
        (
            write(
                "plan-json.plan",
                br#"{"format_version": "1", "changes": []}"#,
            ),
            "is not a trailkey saved plan: it has no \"trailkey_plan\" field",
        ),
        (
            write("huge.plan", &vec![b' '; 5 * 1024 * 1024]),
            "is larger than a saved plan can be (4194304 bytes)",
        ),
        (".".to_owned(), "is not a regular file"),
        (
            "missing.plan".to_owned(),
            "cannot read the saved plan missing.plan: No such file or directory",
        ),
    ];
    for (file, says) in &cases {
        for command in ["apply", "show"] {
            let out = Run::at(&server.endpoint)
                .current_dir(dir.path())
                .args([command, file])
                .run();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{command} {file}: {stderr}");
            assert!(out.stdout.is_empty(), "{command} {file}");
            assert!(
                stderr.starts_with("error: ") && stderr.contains(says),
                "{command} {file}: {stderr}"
            );
            assert!(stderr.contains("\nhint: "), "{command} {file}: {stderr}");
            assert!(!stderr.contains('\u{1b}'), "{command} {file}: {stderr:?}");
            if command == "apply" && file == "plan-json.plan" {
                insta::assert_snapshot!(transcript(&out));
            }
        }
    }
    assert_eq!(server.connections(), 0, "no AWS request");
}
