//! CLI behaviour without any AWS: the exit code, stdout and stderr of the
//! real binary, snapshotted with insta. Every bad config must fail with
//! exit 1, a message naming the file, field and fix, and zero AWS requests
//! (the AWS endpoint points at a server that counts connections).

mod support;

use std::path::Path;
use std::process::Command;

use support::{CountingServer, isolate_aws_env, transcript};

fn trailkey(server: &CountingServer, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailkey"));
    isolate_aws_env(&mut cmd, &server.endpoint);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run trailkey")
}

#[test]
fn bad_configs_fail_clearly_without_any_aws_request() {
    insta::glob!("configs/bad/*.toml", |path| {
        let server = CountingServer::start();
        let rel = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .to_str()
            .unwrap();
        for command in ["validate", "plan"] {
            let out = trailkey(&server, &["-c", rel, command]);
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
        let out = trailkey(&server, &["-c", path.to_str().unwrap(), "plan"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(stderr.contains("hint:"), "{stderr}");
    }
    assert_eq!(server.connections(), 0);
}

#[test]
fn missing_config_file_names_the_path_and_the_example() {
    let server = CountingServer::start();
    let out = trailkey(&server, &["-c", "does/not/exist.toml", "plan"]);
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(server.connections(), 0);
}

#[test]
fn validate_summarises_a_good_config_offline() {
    let server = CountingServer::start();
    let out = trailkey(&server, &["-c", "config/trailkey.example.toml", "validate"]);
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(server.connections(), 0);
}

#[test]
fn apply_without_a_terminal_or_auto_approve_refuses_before_any_request() {
    let server = CountingServer::start();
    let out = trailkey(&server, &["-c", "tests/configs/good/minimal.toml", "apply"]);
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
    let out = trailkey(
        &server,
        &["-c", cfg.to_str().unwrap(), "policy", "--offline"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(server.connections(), 0);
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn help_lists_the_commands() {
    let server = CountingServer::start();
    let out = trailkey(&server, &["--help"]);
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn colour_only_when_forced_or_on_a_terminal_and_never_with_no_color() {
    let server = CountingServer::start();
    let run = |no_color: Option<&str>, force: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailkey"));
        isolate_aws_env(&mut cmd, &server.endpoint);
        cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        if let Some(v) = force {
            cmd.env("CLICOLOR_FORCE", v);
        }
        let out = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["-c", "tests/configs/bad/account-13-digits.toml", "plan"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).contains('\x1b')
    };
    assert!(!run(None, None), "not a terminal: no colour");
    assert!(run(None, Some("1")), "CLICOLOR_FORCE: colour");
    assert!(!run(Some("1"), Some("1")), "NO_COLOR wins");
}
