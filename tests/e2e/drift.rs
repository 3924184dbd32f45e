//! The drift catalogue: each way the setup can drift, caused behind
//! trailkey's back with direct AWS calls (boto3, `fixture.py drift`), is
//! detected by `plan --detailed-exitcode` (exit 2, the resource and the
//! reason named in human and JSON output), repaired by `apply`, and followed
//! by a clean plan. The repaired state is read back from moto.

use serde_json::{Value, json};
use trailkey_testkit::{Moto, Run, Seed, is_write, key_with_arn, trailkey_keys, transcript};

struct Converged {
    moto: Moto,
    seed: Seed,
    key_id: String,
    key_arn: String,
}

impl Converged {
    /// A seeded organization on which `trailkey apply` has run.
    fn new() -> Converged {
        Self::with_config(|text| text)
    }

    /// Same, with the config text changed first.
    fn with_config(edit: impl FnOnce(String) -> String) -> Converged {
        let moto = Moto::start();
        let seed = moto.seed();
        let text = std::fs::read_to_string(&seed.config).unwrap();
        std::fs::write(&seed.config, edit(text)).unwrap();
        let out = Run::new(&moto)
            .config(&seed.config)
            .args(["apply", "--auto-approve"])
            .run();
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        let state = moto.state(&seed);
        let key = trailkey_keys(&state)[0].clone();
        Converged {
            key_id: key["key_id"].as_str().unwrap().to_owned(),
            key_arn: key["arn"].as_str().unwrap().to_owned(),
            moto,
            seed,
        }
    }

    fn drift(&self, kind: &str, extra: &[&str]) -> Value {
        let mut args = vec![
            "drift",
            kind,
            "--security-tooling",
            &self.seed.security_tooling,
        ];
        args.extend_from_slice(extra);
        self.moto.fixture(&args)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Run::new(&self.moto)
            .config(&self.seed.config)
            .args(args)
            .run()
    }

    /// Plan detects the drift: exit 2; the JSON plan changes exactly
    /// `addresses` (address, action), each with a reason; the human plan
    /// contains every text of `human`.
    fn plan_detects(&self, addresses: &[(&str, &str)], human: &[&str]) {
        let out = self.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for text in human {
            assert!(stdout.contains(text), "missing {text:?} in:\n{stdout}");
        }
        let out = self.run(&["plan", "--detailed-exitcode", "--format", "json"]);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
        let json: Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
        let changed: Vec<(String, String)> = json["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"] != "no-op")
            .map(|c| {
                let has_reason =
                    !c["reasons"].as_array().unwrap().is_empty() || c["statements"].is_object();
                assert!(has_reason, "a reason for {c:#}");
                (
                    c["address"].as_str().unwrap().to_owned(),
                    c["action"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = addresses
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(changed, expected, "changes in the JSON plan");
    }

    /// Apply repairs it, a second plan is clean, and the state read back is
    /// the converged one on the same key.
    fn apply_repairs(&self) -> Value {
        let out = self.run(&["apply", "--auto-approve"]);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        let out = self.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        let state = self.moto.state(&self.seed);
        let ours = trailkey_keys(&state);
        assert_eq!(ours.len(), 1, "one trailkey key: {state:#}");
        let key = ours[0];
        assert_eq!(
            key["arn"],
            self.key_arn.as_str(),
            "the same key, never a new one"
        );
        assert_eq!(key["key_state"], "Enabled");
        assert_eq!(key["rotation_enabled"], true);
        assert_eq!(state["trail"]["kms_key_id"], self.key_arn.as_str());
        let alias = state["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "alias/cloudtrail-org-key")
            .expect("the alias");
        assert_eq!(alias["target_key_id"], self.key_id.as_str());
        assert_policy_is_trailkeys(&key["policy"], &self.seed);
        state
    }
}

fn statement<'a>(policy: &'a Value, sid: &str) -> Option<&'a Value> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
}

/// trailkey's five statements with the organization's IDs.
fn assert_policy_is_trailkeys(policy: &Value, seed: &Seed) {
    let root = |a: &str| format!("arn:aws:iam::{a}:root");
    let get = |sid| statement(policy, sid).unwrap_or_else(|| panic!("{sid} in {policy:#}"));
    assert_eq!(
        get("TrailkeyRootAdministration")["Principal"]["AWS"],
        root(&seed.security_tooling)
    );
    for sid in [
        "TrailkeyCloudTrailEncrypt",
        "TrailkeyCloudTrailDescribeKey",
        "TrailkeyCloudTrailDecrypt",
    ] {
        assert_eq!(
            get(sid)["Condition"]["StringEquals"]["aws:SourceArn"],
            seed.trail_arn.as_str(),
            "{sid}"
        );
    }
    assert_eq!(
        get("TrailkeyCloudTrailEncrypt")["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        format!("arn:aws:cloudtrail:*:{}:trail/*", seed.management)
    );
    assert_eq!(
        get("TrailkeyLogReadersDecrypt")["Principal"]["AWS"],
        serde_json::json!([root(&seed.log_archive), root(&seed.management)])
    );
}

// 1. The trail's KmsKeyId.

#[test]
fn trail_key_removed_is_put_back() {
    let c = Converged::new();
    c.drift("trail-unencrypt", &[]);
    c.plan_detects(
        &[("trail_encryption", "update")],
        &[
            "~ trail_encryption",
            "the trail is not encrypted with a KMS key",
        ],
    );
    c.apply_repairs();
}

#[test]
fn trail_on_another_key_is_pointed_back() {
    let c = Converged::new();
    let other = c.drift("trail-other-key", &[]);
    let other_arn = other["other_key_arn"].as_str().unwrap();
    c.plan_detects(
        &[("trail_encryption", "update")],
        &[&format!("the trail uses another key: {other_arn}")],
    );
    let state = c.apply_repairs();
    assert_eq!(
        state["keys"].as_array().unwrap().len(),
        2,
        "the other key is left alone"
    );
}

#[test]
fn trail_naming_the_alias_is_set_to_the_key_arn() {
    let c = Converged::new();
    c.drift("trail-alias", &[]);
    c.plan_detects(
        &[("trail_encryption", "update")],
        &["names the key as \"alias/cloudtrail-org-key\", not by its key ARN"],
    );
    c.apply_repairs();
}

#[test]
fn trail_naming_the_key_id_is_set_to_the_key_arn() {
    let c = Converged::new();
    c.drift("trail-key-id", &[]);
    c.plan_detects(
        &[("trail_encryption", "update")],
        &[&format!(
            "names the key as \"{}\", not by its key ARN",
            c.key_id
        )],
    );
    c.apply_repairs();
}

// 2. The alias.

#[test]
fn deleted_alias_is_recreated_on_the_same_key() {
    let c = Converged::new();
    c.drift("alias-delete", &[]);
    c.plan_detects(
        &[("kms_alias", "create")],
        &[
            "alias/cloudtrail-org-key does not exist; trailkey's key",
            "found by its tags",
        ],
    );
    c.apply_repairs();
}

#[test]
fn alias_moved_to_another_key_is_pointed_back() {
    let c = Converged::new();
    let other = c.drift("alias-repoint", &[]);
    let other_arn = other["other_key_arn"].as_str().unwrap();
    c.plan_detects(
        &[("kms_alias", "update")],
        &[&format!(
            "names key {other_arn}, which trailkey did not create"
        )],
    );
    let state = c.apply_repairs();
    let other = key_with_arn(&state, other_arn);
    assert!(
        other["tags"].as_object().unwrap().is_empty(),
        "and not adopted"
    );
}

// 3. The key's state.

#[test]
fn disabled_key_is_enabled() {
    let c = Converged::new();
    c.drift("key-disable", &[]);
    c.plan_detects(
        &[("kms_key", "update")],
        &["the key is disabled", "\"Disabled\" -> \"Enabled\""],
    );
    c.apply_repairs();
}

#[test]
fn key_pending_deletion_is_rescued_loudly() {
    let c = Converged::new();
    c.drift("key-pending-deletion", &[]);
    c.plan_detects(
        &[("kms_key", "update")],
        &[
            "THE KEY IS PENDING DELETION",
            "unreadable for ever",
            "\"PendingDeletion\" -> \"Enabled\"",
        ],
    );
    c.apply_repairs();
}

// 4. Rotation.

#[test]
fn rotation_turned_off_is_turned_on() {
    let c = Converged::new();
    c.drift("rotation-off", &[]);
    c.plan_detects(
        &[("kms_key_rotation", "update")],
        &["~ enabled = false -> true", "automatic key rotation is off"],
    );
    c.apply_repairs();
}

/// A configured rotation period: apply sets it with rotation; another
/// period set behind trailkey's back is drift, set back by apply; the
/// state KMS keeps is read back through the real-AWS layer, which keeps the
/// period moto drops.
#[test]
fn a_rotation_period_other_than_the_configured_one_is_set_back() {
    let c = Converged::with_config(|t| format!("{t}\n[key]\nrotation_period_days = 180\n"));
    let world = &c.moto.world;
    assert_eq!(
        world.rotation_period_of(&c.key_id),
        Some(180),
        "set by apply"
    );
    let out = c.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));

    let drift = c.drift("rotation-period", &["--days", "730"]);
    assert_eq!(drift["rotation_period_days"], 730);
    c.plan_detects(
        &[("kms_key_rotation", "update")],
        &[
            "~ rotation_period_days = 730 -> 180",
            "the rotation period is 730 days; key.rotation_period_days is 180",
        ],
    );
    c.moto.start_recording();
    c.apply_repairs();
    assert_eq!(world.rotation_period_of(&c.key_id), Some(180));
    let writes: Vec<String> = c
        .moto
        .recorded_writes()
        .into_iter()
        .filter(|w| w.starts_with("kms:") || w.starts_with("cloudtrail:"))
        .collect();
    assert_eq!(
        writes,
        ["kms:EnableKeyRotation"],
        "one call sets the period"
    );
}

/// Without `rotation_period_days`, a period someone chose is left alone.
#[test]
fn without_a_configured_period_the_keys_period_is_left_as_it_is() {
    let c = Converged::new();
    assert_eq!(c.moto.world.rotation_period_of(&c.key_id), Some(365));
    c.drift("rotation-period", &["--days", "90"]);
    let out = c.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    c.moto.start_recording();
    let out = c.run(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(c.moto.world.rotation_period_of(&c.key_id), Some(90));
}

/// `trail.logging = true`: a stopped trail is drift, started by one
/// `StartLogging`; `false` leaves it stopped, and without the field a
/// stopped trail is a warning only.
#[test]
fn a_stopped_trail_is_started_with_logging_true_and_left_otherwise() {
    let c = Converged::with_config(|t| t.replace("[trail]\n", "[trail]\nlogging = true\n"));
    assert!(
        std::fs::read_to_string(&c.seed.config)
            .unwrap()
            .contains("logging = true")
    );
    c.moto.fixture(&["drift", "trail-stop-logging"]);
    c.plan_detects(
        &[("trail_logging", "update")],
        &["~ is_logging = false -> true", "the trail is stopped"],
    );
    c.moto.start_recording();
    let state = c.apply_repairs();
    assert_eq!(state["trail"]["is_logging"], true);
    let writes = c.moto.recorded_writes();
    assert_eq!(writes, ["cloudtrail:StartLogging"], "one call starts it");

    for (setting, warned) in [("logging = false\n", false), ("", true)] {
        let text = std::fs::read_to_string(&c.seed.config).unwrap();
        std::fs::write(&c.seed.config, text.replace("logging = true\n", setting)).unwrap();
        c.moto.fixture(&["drift", "trail-stop-logging"]);
        c.moto.start_recording();
        let plan = c.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(0), "{}", transcript(&plan));
        let stderr = String::from_utf8_lossy(&plan.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&plan.stdout).into_owned();
        assert_eq!(
            stdout.contains("is not logging") || stderr.contains("is not logging"),
            warned,
            "{setting:?}: {}",
            transcript(&plan)
        );
        let apply = c.run(&["apply", "--auto-approve"]);
        assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
        assert_eq!(
            c.moto.recorded_writes(),
            Vec::<String>::new(),
            "{setting:?}"
        );
        assert_eq!(c.moto.state(&c.seed)["trail"]["is_logging"], false);
        // Put it back for the next setting.
        std::fs::write(
            &c.seed.config,
            std::fs::read_to_string(&c.seed.config)
                .unwrap()
                .replace("[trail]\n", "[trail]\nlogging = true\n")
                .replace("logging = false\n", ""),
        )
        .unwrap();
    }
}

/// Event selectors that leave KMS's write management events out, in each
/// way: `plan` warns, naming kms.amazonaws.com and what goes unseen, and
/// exits 0 (nothing for apply to change). `GetEventSelectors` is called
/// only when `DescribeTrails` says `HasCustomEventSelectors`, which the
/// real-AWS layer sets as AWS does.
#[test]
fn selectors_that_hide_kms_are_warned_about_in_each_of_the_ways() {
    let c = Converged::new();
    c.moto.start_recording();
    let out = c.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(
        !transcript(&out).contains("kms.amazonaws.com"),
        "{}",
        transcript(&out)
    );
    let calls = c.moto.recorded();
    assert_eq!(
        calls.len(),
        10,
        "the default selectors are not read: {calls:?}"
    );

    for (kind, why) in [
        (
            "selectors-exclude-kms",
            "ExcludeManagementEventSources names kms.amazonaws.com",
        ),
        (
            "selectors-read-only",
            "records only read-only management events",
        ),
        ("selectors-no-management", "records no management events"),
        (
            "selectors-advanced-no-kms",
            "advanced event selectors that match no kms.amazonaws.com management event",
        ),
    ] {
        let drift = c.moto.fixture(&["drift", kind]);
        assert_eq!(
            drift["custom_event_selectors_trail"],
            c.seed.trail_arn.as_str()
        );
        c.moto.start_recording();
        let out = c.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", transcript(&out));
        let text = transcript(&out);
        assert!(text.contains(why), "{kind}: {text}");
        assert!(
            text.contains("DisableKey, ScheduleKeyDeletion and PutKeyPolicy"),
            "{kind}: {text}"
        );
        assert!(text.contains(&c.key_arn), "{kind}: {text}");
        let calls = c.moto.recorded();
        assert_eq!(
            calls
                .iter()
                .filter(|c| *c == "cloudtrail:GetEventSelectors")
                .count(),
            1,
            "{kind}: {calls:?}"
        );
        assert_eq!(calls.len(), 11, "{kind}: {calls:?}");
        let json = c.run(&["plan", "--format", "json"]);
        let plan: Value = serde_json::from_slice(&json.stdout).unwrap();
        assert!(
            plan["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["level"] == "warning"
                    && f["message"].as_str().unwrap().contains("kms.amazonaws.com")),
            "{kind}: {plan:#}"
        );
    }
}

// 5. The key policy.

#[test]
fn removed_statement_is_added_back() {
    let c = Converged::new();
    c.drift(
        "policy-remove-statement",
        &["--sid", "TrailkeyCloudTrailDescribeKey"],
    );
    c.plan_detects(
        &[("kms_key_policy", "update")],
        &["+ statement TrailkeyCloudTrailDescribeKey"],
    );
    c.apply_repairs();
}

#[test]
fn changed_conditions_are_restored_and_shown_before_and_after() {
    let c = Converged::new();
    c.drift("policy-condition", &[]);
    let other_trail = c
        .seed
        .trail_arn
        .replace(&c.seed.trail_name, "another-trail");
    c.plan_detects(
        &[("kms_key_policy", "update")],
        &[
            "~ statement TrailkeyCloudTrailEncrypt",
            &format!(
                "~ Condition.StringEquals.aws:sourcearn = [\"{other_trail}\"] -> [\"{}\"]",
                c.seed.trail_arn
            ),
            &format!(
                "[\"arn:aws:cloudtrail:*:999999999999:trail/*\"] -> [\"arn:aws:cloudtrail:*:{}:trail/*\"]",
                c.seed.management
            ),
        ],
    );
    c.apply_repairs();
}

#[test]
fn removed_log_archive_reader_is_restored() {
    let c = Converged::new();
    c.drift("policy-remove-log-archive", &[]);
    c.plan_detects(
        &[("kms_key_policy", "update")],
        &["~ statement TrailkeyLogReadersDecrypt", "~ Principal.AWS"],
    );
    c.apply_repairs();
}

#[test]
fn removed_management_reader_is_restored() {
    let c = Converged::new();
    c.drift("policy-remove-management", &[]);
    c.plan_detects(
        &[("kms_key_policy", "update")],
        &["~ statement TrailkeyLogReadersDecrypt", "~ Principal.AWS"],
    );
    c.apply_repairs();
}

#[test]
fn policy_replaced_by_the_kms_default_gets_ours_back_and_keeps_the_default() {
    let c = Converged::new();
    c.drift("policy-default", &[]);
    c.plan_detects(
        &[("kms_key_policy", "update")],
        &[
            "+ statement TrailkeyRootAdministration",
            "+ statement TrailkeyCloudTrailEncrypt",
            "+ statement TrailkeyLogReadersDecrypt",
            "= statement \"Enable IAM User Permissions\" (not managed by trailkey: kept)",
        ],
    );
    let state = c.apply_repairs();
    let policy = &trailkey_keys(&state)[0]["policy"];
    assert!(
        statement(policy, "Enable IAM User Permissions").is_some(),
        "kept: {policy:#}"
    );
}

// 6. Statements trailkey does not own.

#[test]
fn foreign_statement_alone_is_no_drift_and_is_listed_as_kept() {
    let c = Converged::new();
    c.drift("policy-foreign", &[]);
    c.moto.start_recording();
    for args in [
        &["plan", "--detailed-exitcode"][..],
        &["apply", "--auto-approve"],
    ] {
        let out = c.run(args);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("No changes."), "{stdout}");
        assert!(
            stdout.contains("Note: the key policy has 1 statement(s) not managed by trailkey, kept on every write: \"ThirdPartyAudit\""),
            "{stdout}"
        );
    }
    assert!(c.moto.recorded().iter().all(|r| !is_write(r)), "no write");
}

/// A foreign Deny of kms:GenerateDataKey* to CloudTrail: the trail cannot
/// deliver, and apply cannot fix it, so a scheduled drift check must alert.
#[test]
fn foreign_deny_blocking_cloudtrail_is_an_error_trailkey_does_not_override() {
    let c = Converged::new();
    c.drift("policy-deny", &[]);
    c.moto.start_recording();
    let out = c.run(&["plan", "--detailed-exitcode", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a broken setup fails the drift check: {}",
        transcript(&out)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["summary"],
        serde_json::json!({"add": 0, "change": 0, "destroy": 0}),
        "nothing trailkey would change: {json:#}"
    );
    let error = &json["findings"][0];
    assert_eq!(error["level"], "error", "{json:#}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(
            "\"DenyCloudTrailEncrypt\" explicitly denies kms:GenerateDataKey to CloudTrail"
        ),
        "{message}"
    );
    assert!(
        message.contains("does not change statements it does not own"),
        "{message}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"DenyCloudTrailEncrypt\""), "{stderr}");
    assert!(stderr.contains("remove the foreign statement"), "{stderr}");
    // Without --detailed-exitcode, plan only shows it.
    let out = c.run(&["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Error: statement \"DenyCloudTrailEncrypt\""),
        "{}",
        transcript(&out)
    );
    // Apply has nothing to write, shows the error and fails with it.
    let out = c.run(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Error: statement \"DenyCloudTrailEncrypt\""),
        "{}",
        transcript(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "\"DenyCloudTrailEncrypt\" explicitly denies kms:GenerateDataKey to CloudTrail"
        ) && stderr.contains("remove the foreign statement"),
        "{stderr}"
    );
    assert!(c.moto.recorded().iter().all(|r| !is_write(r)), "no write");
    let state = c.moto.state(&c.seed);
    assert!(statement(&trailkey_keys(&state)[0]["policy"], "DenyCloudTrailEncrypt").is_some());
}

/// The same Deny with `NotPrincipal` CloudTrail denies everyone *but*
/// CloudTrail: nothing trailkey's statements allow is denied.
#[test]
fn foreign_deny_exempting_cloudtrail_is_no_finding() {
    let c = Converged::new();
    c.drift("policy-deny-not-cloudtrail", &[]);
    let out = c.run(&["plan", "--detailed-exitcode", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "only the kept statement: {json:#}");
    assert_eq!(findings[0]["level"], "note", "{json:#}");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("\"DenyOthersEncrypt\""),
        "{json:#}"
    );
}

/// A foreign statement whose Sid holds an escape sequence and a line that
/// looks like the plan's summary: the human plan shows it escaped, with no
/// ESC byte and no second `Plan:` line.
#[test]
fn a_hostile_foreign_sid_is_shown_escaped_in_the_human_plan() {
    const HOSTILE: &str = "TrailkeyZ\u{1b}[31m\nPlan: 0 to add, 0 to change, 0 to destroy.";
    let c = Converged::new();
    let mut policy = c.policy();
    policy["Statement"].as_array_mut().unwrap().push(json!({
        "Sid": HOSTILE,
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", c.seed.security_tooling)},
        "Action": "kms:DescribeKey",
        "Resource": "*",
    }));
    let put = json!([{"op": "kms:PutKeyPolicy", "params": {
        "KeyId": c.key_id, "PolicyName": "default", "Policy": policy.to_string(),
    }}]);
    let results = c.moto.calls_as(&c.seed.security_tooling, None, &put);
    assert!(results[0].get("error").is_none(), "{results:#?}");
    assert!(
        statement(&c.policy(), HOSTILE).is_some(),
        "the Sid is stored as sent"
    );

    // Without colour, and with colour forced as on a terminal (where the
    // renderer's own colour codes are printed); with every AWS call logged
    // too, where no ESC byte may reach stderr either.
    for colour in [false, true] {
        let mut run =
            Run::new(&c.moto)
                .config(&c.seed.config)
                .args(["-vv", "plan", "--detailed-exitcode"]);
        if colour {
            run = run.env("CLICOLOR_FORCE", "1").env_remove("NO_COLOR");
        }
        let out = run.run();
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("GetKeyPolicy"),
            "-vv logs the calls: {stderr}"
        );
        if !colour {
            assert!(!stderr.contains('\u{1b}'), "ESC bytes in:\n{stderr}");
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let escaped = "TrailkeyZ\\u{1b}[31m\\nPlan: 0 to add, 0 to change, 0 to destroy.";
        assert!(stdout.contains(escaped), "missing {escaped} in:\n{stdout}");
        assert!(!stdout.contains("\u{1b}[31m\nPlan"), "{stdout}");
        assert_eq!(stdout.contains('\u{1b}'), colour, "ESC bytes in:\n{stdout}");
        let plans: Vec<String> = stdout
            .lines()
            .map(without_colour)
            .filter(|l| l.starts_with("Plan:"))
            .collect();
        assert_eq!(
            plans,
            ["Plan: 0 to add, 1 to change, 0 to destroy."],
            "{stdout}"
        );
    }
}

/// `line` without its `ESC [ ... m` colour codes.
fn without_colour(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("\u{1b}[") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        rest = rest.find('m').map_or("", |m| &rest[m + 1..]);
    }
    out.push_str(rest);
    out
}

/// A foreign Deny with 30 wildcards in one action: someone allowed
/// `PutKeyPolicy` must not be able to stall every scheduled drift check.
#[test]
fn a_foreign_deny_full_of_wildcards_does_not_stall_plan() {
    let c = Converged::new();
    c.drift("policy-wildcard-deny", &[]);
    let started = std::time::Instant::now();
    let out = c.run(&["plan", "--detailed-exitcode", "--format", "json"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    // It matches none of the actions CloudTrail and the readers need, so it
    // is only listed as a kept foreign statement.
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json:#}");
    assert_eq!(findings[0]["level"], "note");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("\"ManyWildcards\""),
        "{json:#}"
    );
    eprintln!("plan with 30 wildcards in a foreign Deny: {took:?}");
}

// 7. Tags.

#[test]
fn removed_tags_are_restored() {
    let c =
        Converged::with_config(|t| format!("{t}\n[key]\ntags = {{ CostCenter = \"security\" }}\n"));
    c.drift("tags-remove", &["--tag-key", "CostCenter"]);
    c.plan_detects(
        &[("kms_key", "update")],
        &["tags to set: CostCenter=security, ManagedBy=trailkey"],
    );
    let state = c.apply_repairs();
    assert_eq!(trailkey_keys(&state)[0]["tags"]["CostCenter"], "security");
}

// 8. The config changed.

#[test]
fn renamed_alias_moves_and_the_old_alias_is_removed() {
    let c = Converged::new();
    let text = std::fs::read_to_string(&c.seed.config).unwrap();
    std::fs::write(
        &c.seed.config,
        text.replace(
            "ct_key_alias = \"cloudtrail-org-key\"",
            "ct_key_alias = \"org-trail-logs\"",
        ),
    )
    .unwrap();
    c.plan_detects(
        &[("kms_alias", "create"), ("kms_alias_previous", "delete")],
        &[
            "+ kms_alias will be created",
            "- kms_alias_previous will be destroyed",
            "- name          = \"alias/cloudtrail-org-key\"",
            "the old alias alias/cloudtrail-org-key is removed (the key and the logs it encrypted stay)",
        ],
    );
    let out = c.run(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = c.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let state = c.moto.state(&c.seed);
    let ours = trailkey_keys(&state);
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["arn"], c.key_arn.as_str(), "the same key");
    assert_eq!(ours[0]["tags"]["trailkey:alias"], "org-trail-logs");
    assert_eq!(
        state["aliases"],
        serde_json::json!([{"name": "alias/org-trail-logs", "target_key_id": c.key_id}])
    );
    assert_eq!(state["trail"]["kms_key_id"], c.key_arn.as_str());
}

#[test]
fn new_log_archive_account_updates_the_readers() {
    let c = Converged::new();
    let text = std::fs::read_to_string(&c.seed.config).unwrap();
    let new_log_archive = "210987654321";
    std::fs::write(
        &c.seed.config,
        text.replace(
            &format!("log_archive = \"{}\"", c.seed.log_archive),
            &format!("log_archive = \"{new_log_archive}\""),
        ),
    )
    .unwrap();
    c.plan_detects(
        &[("kms_key_policy", "update")],
        &[
            "~ statement TrailkeyLogReadersDecrypt",
            &format!("arn:aws:iam::{new_log_archive}:root"),
        ],
    );
    let out = c.run(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let state = c.moto.state(&c.seed);
    let readers = &statement(
        &trailkey_keys(&state)[0]["policy"],
        "TrailkeyLogReadersDecrypt",
    )
    .unwrap()["Principal"]["AWS"];
    assert_eq!(
        readers,
        &serde_json::json!([
            format!("arn:aws:iam::{new_log_archive}:root"),
            format!("arn:aws:iam::{}:root", c.seed.management)
        ])
    );
    assert_eq!(
        c.run(&["plan", "--detailed-exitcode"]).status.code(),
        Some(0)
    );
}

#[test]
fn trail_renamed_in_config_moves_the_key_to_the_new_trail_without_cutting_off_the_old_one() {
    let c = Converged::new();
    let old_arn = c.seed.trail_arn.clone();
    let new_trail = c.moto.fixture(&["create-trail", "--name", "org-trail-2"]);
    let new_arn = new_trail["trail_arn"].as_str().unwrap().to_owned();
    let text = std::fs::read_to_string(&c.seed.config).unwrap();
    std::fs::write(
        &c.seed.config,
        text.replace("name = \"org-trail\"", "name = \"org-trail-2\""),
    )
    .unwrap();
    // The old trail still uses the key: CloudTrail keeps its permission for
    // it, next to the new trail's, and the plan says why.
    c.plan_detects(
        &[("kms_key_policy", "update"), ("trail_encryption", "update")],
        &[
            "the trail is not encrypted with a KMS key",
            &format!("trail(s) {old_arn} also use the key"),
        ],
    );
    let out = c.run(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let source_arns = |c: &Converged| {
        let state = c.moto.state(&c.seed);
        let policy = trailkey_keys(&state)[0]["policy"].clone();
        [
            "TrailkeyCloudTrailEncrypt",
            "TrailkeyCloudTrailDescribeKey",
            "TrailkeyCloudTrailDecrypt",
        ]
        .map(|sid| {
            statement(&policy, sid).unwrap()["Condition"]["StringEquals"]["aws:SourceArn"].clone()
        })
    };
    for arns in source_arns(&c) {
        assert_eq!(arns, serde_json::json!([new_arn, old_arn]));
    }
    let state = c.moto.fixture(&[
        "state",
        "--security-tooling",
        &c.seed.security_tooling,
        "--trail",
        "org-trail-2",
    ]);
    assert_eq!(state["trail"]["kms_key_id"], c.key_arn.as_str());
    assert_eq!(
        c.moto.state(&c.seed)["trail"]["kms_key_id"],
        c.key_arn.as_str(),
        "the old trail is left as it is"
    );
    assert_eq!(
        c.run(&["plan", "--detailed-exitcode"]).status.code(),
        Some(0)
    );

    // Once the old trail no longer uses the key, the next apply drops it.
    c.moto
        .fixture(&["drift", "trail-unencrypt", "--trail", "org-trail"]);
    c.plan_detects(&[("kms_key_policy", "update")], &[]);
    let out = c.run(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    for arns in source_arns(&c) {
        assert_eq!(arns, new_arn.as_str());
    }
    assert_eq!(
        c.run(&["plan", "--detailed-exitcode"]).status.code(),
        Some(0)
    );
}

// 9. A key that cannot encrypt a trail.

#[test]
fn unusable_keys_behind_the_alias_are_refused_with_no_write() {
    for (kind, problem) in [
        ("multi-region", "it is a multi-Region key"),
        ("asymmetric", "its key spec is RSA_2048"),
        ("hmac", "its key spec is HMAC_256"),
        ("external", "its origin is EXTERNAL"),
    ] {
        let moto = Moto::start();
        let seed = moto.seed();
        moto.fixture(&[
            "make-key",
            "--security-tooling",
            &seed.security_tooling,
            "--alias",
            "cloudtrail-org-key",
            "--kind",
            kind,
        ]);
        moto.start_recording();
        for args in [
            &["plan", "--detailed-exitcode"][..],
            &["apply", "--auto-approve"],
        ] {
            let out = Run::new(&moto).config(&seed.config).args(args).run();
            assert_eq!(out.status.code(), Some(1), "{kind}: {}", transcript(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("which trailkey will not use for the trail"),
                "{kind}: {stderr}"
            );
            assert!(stderr.contains(problem), "{kind}: {stderr}");
            assert!(
                stderr.contains("hint: trailkey needs a single-Region SYMMETRIC_DEFAULT"),
                "{stderr}"
            );
        }
        let calls = moto.recorded();
        assert!(
            calls.iter().all(|c| !is_write(c)),
            "{kind}: no write: {calls:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Declared in the config: readers, log-file validation, key protection.
// Each is added, kept on reruns and removed with the config, and what
// trailkey does not own stays.

const READERS_SID: &str = "TrailkeyDeclaredReadersDecrypt";
const PROTECT_SID: &str = "TrailkeyProtectKey";

impl Converged {
    /// The config with `text` appended (whole tables).
    fn append_config(&self, text: &str) {
        let mut config = std::fs::read_to_string(&self.seed.config).unwrap();
        config.push_str(text);
        std::fs::write(&self.seed.config, config).unwrap();
    }

    /// The config with `from` replaced by `to`.
    fn edit_config(&self, from: &str, to: &str) {
        let config = std::fs::read_to_string(&self.seed.config).unwrap();
        assert!(config.contains(from), "{from:?} in {config}");
        std::fs::write(&self.seed.config, config.replace(from, to)).unwrap();
    }

    /// The key's policy as moto holds it.
    fn policy(&self) -> Value {
        let state = self.moto.state(&self.seed);
        key_with_arn(&state, &self.key_arn)["policy"].clone()
    }

    /// `apply` exits 0; returns the writes it made.
    fn apply_writes(&self) -> Vec<String> {
        self.moto.start_recording();
        let out = self.run(&["apply", "--auto-approve"]);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        self.moto.recorded_writes()
    }
}

fn principals_of(statement: &Value) -> Vec<String> {
    match &statement["Principal"]["AWS"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        other => panic!("{other}"),
    }
}

#[test]
fn declared_readers_are_added_kept_and_removed_with_the_config() {
    let c = Converged::new();
    c.drift("policy-foreign", &[]);
    let foreign = statement(&c.policy(), "ThirdPartyAudit").unwrap().clone();
    let siem = "arn:aws:iam::777788889999:role/SIEM";
    let secops = "arn:aws:iam::777788889999:role/SecOps";
    c.append_config(&format!(
        "\n[readers]\naccounts = [\"444455556666\"]\nprincipals = [\"{siem}\", \"{secops}\"]\n"
    ));

    // Added: the plan shows the statement, apply writes only the policy.
    c.plan_detects(
        &[("kms_key_policy", "update")],
        &[&format!("+ statement {READERS_SID}")],
    );
    assert_eq!(c.apply_writes(), ["kms:PutKeyPolicy"]);
    let policy = c.policy();
    let readers = statement(&policy, READERS_SID).expect("the readers' statement");
    assert_eq!(
        principals_of(readers),
        ["arn:aws:iam::444455556666:root", siem, secops]
    );
    assert_eq!(readers["Action"], "kms:Decrypt");
    assert_eq!(
        readers["Condition"],
        statement(&policy, "TrailkeyLogReadersDecrypt").unwrap()["Condition"]
    );
    assert_eq!(statement(&policy, "ThirdPartyAudit"), Some(&foreign));

    // A second apply writes nothing.
    assert_eq!(c.apply_writes(), Vec::<String>::new());

    // One reader removed: only its part goes.
    c.edit_config(&format!(", \"{secops}\""), "");
    c.plan_detects(&[("kms_key_policy", "update")], &[READERS_SID]);
    assert_eq!(c.apply_writes(), ["kms:PutKeyPolicy"]);
    let after = c.policy();
    assert_eq!(
        principals_of(statement(&after, READERS_SID).unwrap()),
        ["arn:aws:iam::444455556666:root", siem]
    );
    assert_eq!(statement(&after, "ThirdPartyAudit"), Some(&foreign));
    for sid in [
        "TrailkeyRootAdministration",
        "TrailkeyCloudTrailEncrypt",
        "TrailkeyLogReadersDecrypt",
    ] {
        assert_eq!(statement(&after, sid), statement(&policy, sid), "{sid}");
    }

    // `policy --reader-iam` for a listed reader; refused for another.
    let out = c.run(&["policy", "--reader-iam", siem]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let iam: Value = serde_json::from_slice(&out.stdout).unwrap();
    let decrypt = statement(&iam, "DecryptCloudTrailLogFiles").unwrap();
    assert_eq!(decrypt["Resource"], c.key_arn.as_str());
    assert_eq!(decrypt["Action"], "kms:Decrypt");
    assert_eq!(
        decrypt["Condition"],
        statement(&after, "TrailkeyLogReadersDecrypt").unwrap()["Condition"]
    );
    assert_eq!(
        statement(&iam, "ReadCloudTrailLogFiles").unwrap()["Resource"],
        format!("arn:aws:s3:::{}/AWSLogs/*", c.seed.bucket)
    );
    assert_eq!(
        statement(&iam, "ListCloudTrailLogFiles").unwrap()["Resource"],
        format!("arn:aws:s3:::{}", c.seed.bucket)
    );
    let out = c.run(&["policy", "--reader-iam", secops]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a reader"));

    // All readers removed: the statement goes, the foreign one stays.
    let config = std::fs::read_to_string(&c.seed.config).unwrap();
    let without = &config[..config.find("\n[readers]").unwrap()];
    std::fs::write(&c.seed.config, format!("{without}\n")).unwrap();
    assert_eq!(c.apply_writes(), ["kms:PutKeyPolicy"]);
    let last = c.policy();
    assert!(statement(&last, READERS_SID).is_none(), "{last:#}");
    assert_eq!(statement(&last, "ThirdPartyAudit"), Some(&foreign));
}

#[test]
fn log_file_validation_is_turned_on_in_the_same_update_trail_as_the_key() {
    let moto = Moto::start();
    let config = moto.dir.path().join("trailkey.toml");
    let (seed, _) = moto.seed_with(&[
        "--no-log-file-validation",
        "--write-config",
        config.to_str().unwrap(),
    ]);
    // Not set: a warning, no change of the setting.
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--format", "json"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        plan["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["level"] == "warning"
                && f["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("log-file validation is off")),
        "{plan:#}"
    );
    assert!(
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["address"] != "trail_log_file_validation")
    );

    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(
        &seed.config,
        text.replace(
            "name = \"org-trail\"\n",
            "name = \"org-trail\"\nlog_file_validation = true\n",
        ),
    )
    .unwrap();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("~ trail_log_file_validation will be updated in place")
            && stdout.contains("~ log_file_validation = false -> true"),
        "{stdout}"
    );
    assert!(!stdout.contains("log-file validation is off"), "{stdout}");

    // From scratch: one UpdateTrail carries the key and the validation.
    moto.start_recording();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let updates = moto
        .recorded()
        .into_iter()
        .filter(|c| c == "cloudtrail:UpdateTrail")
        .count();
    assert_eq!(updates, 1);
    let state = moto.state(&seed);
    assert_eq!(state["trail"]["log_file_validation"], true, "{state:#}");
    let key_arn = trailkey_keys(&state)[0]["arn"].as_str().unwrap().to_owned();
    assert_eq!(state["trail"]["kms_key_id"], key_arn.as_str());

    // Turned off behind trailkey's back: one UpdateTrail, nothing on the key.
    moto.fixture(&["drift", "trail-validation-off"]);
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    moto.start_recording();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let writes = moto.recorded_writes();
    assert_eq!(writes, ["cloudtrail:UpdateTrail"]);
    let state = moto.state(&seed);
    assert_eq!(state["trail"]["log_file_validation"], true);
    assert_eq!(state["trail"]["kms_key_id"], key_arn.as_str());
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));

    // `false`: left as it is, and no warning.
    moto.fixture(&["drift", "trail-validation-off"]);
    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(
        &seed.config,
        text.replace("log_file_validation = true", "log_file_validation = false"),
    )
    .unwrap();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("log-file validation is off"));
}

#[test]
fn key_protection_is_turned_on_and_off_and_never_stops_trailkey() {
    let c = Converged::new();
    c.drift("policy-foreign", &[]);
    let admin = format!("arn:aws:iam::{}:role/BreakGlass", c.seed.security_tooling);
    c.append_config(&format!(
        "\n[key]\nprotect = true\nadmins = [\"{admin}\"]\n"
    ));
    c.plan_detects(
        &[("kms_key_policy", "update")],
        &[&format!("+ statement {PROTECT_SID}")],
    );
    assert_eq!(c.apply_writes(), ["kms:PutKeyPolicy"]);
    let policy = c.policy();
    let protect = statement(&policy, PROTECT_SID).expect("the protect statement");
    assert_eq!(protect["Effect"], "Deny");
    assert_eq!(
        protect["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
        serde_json::json!([
            format!(
                "arn:aws:iam::{}:role/AWSControlTowerExecution",
                c.seed.security_tooling
            ),
            format!(
                "arn:aws:iam::{}:role/*/AWSControlTowerExecution",
                c.seed.security_tooling
            ),
            admin
        ])
    );
    assert!(statement(&policy, "ThirdPartyAudit").is_some());
    assert_eq!(c.apply_writes(), Vec::<String>::new());

    // trailkey's own role still repairs rotation under the protection.
    c.drift("rotation-off", &[]);
    assert_eq!(c.apply_writes(), ["kms:EnableKeyRotation"]);

    // Off again: the statement goes, the foreign one stays.
    c.edit_config(
        &format!("protect = true\nadmins = [\"{admin}\"]\n"),
        "protect = false\n",
    );
    c.plan_detects(&[("kms_key_policy", "update")], &[PROTECT_SID]);
    assert_eq!(c.apply_writes(), ["kms:PutKeyPolicy"]);
    let after = c.policy();
    assert!(statement(&after, PROTECT_SID).is_none(), "{after:#}");
    assert!(statement(&after, "ThirdPartyAudit").is_some());
}

#[test]
fn destroy_delete_key_still_works_for_trailkey_under_the_protection() {
    let c = Converged::with_config(|text| format!("{text}\n[key]\nprotect = true\n"));
    assert!(statement(&c.policy(), PROTECT_SID).is_some());
    let out = c.run(&[
        "destroy",
        "--auto-approve",
        "--delete-key",
        "--deletion-window-days",
        "7",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let state = c.moto.state(&c.seed);
    assert_eq!(
        key_with_arn(&state, &c.key_arn)["key_state"],
        "PendingDeletion"
    );
}

/// What the key policy trailkey wrote lets readers and admins do, judged by
/// an IAM-style evaluator (`trailkey_testkit::key_policy`, which shares no code with
/// trailkey), and the protection enforced by the real-AWS layer on a role
/// it does not exempt.
#[test]
fn the_written_policy_lets_declared_readers_decrypt_and_protects_the_key() {
    use trailkey_testkit::key_policy::{Caller, Decision, Request, evaluate};
    let siem = "arn:aws:iam::777788889999:role/SIEM";
    let c = Converged::with_config(|text| {
        format!(
            "{text}\n[key]\nprotect = true\nadmins = [\"arn:aws:iam::{{ST}}:role/BreakGlass\"]\n\n[readers]\naccounts = [\"444455556666\"]\nprincipals = [\"{siem}\"]\n"
        )
        .replace("{ST}", &security_tooling_of(&text))
    });
    let policy = c.policy();
    let st = &c.seed.security_tooling;
    let trail = &c.seed.trail_arn;
    let decrypt = |arn: &str, context: bool| {
        let mut request = Request {
            caller: Caller::aws(arn),
            action: "kms:Decrypt",
            context: Vec::new(),
        };
        if context {
            request
                .context
                .push(("kms:EncryptionContext:aws:cloudtrail:arn", trail.as_str()));
        }
        evaluate(&policy, &request)
    };
    // The SIEM role decrypts CloudTrail's log files, and nothing else.
    assert_eq!(decrypt(siem, true), Decision::Allowed);
    assert_eq!(decrypt(siem, false), Decision::NotAllowed);
    // Another role of its account is not listed, so it may not.
    assert_eq!(
        decrypt("arn:aws:iam::777788889999:role/Other", true),
        Decision::NotAllowed
    );
    // Any role of a listed account may (its own IAM policy permitting).
    assert_eq!(
        decrypt("arn:aws:iam::444455556666:role/Anyone", true),
        Decision::Allowed
    );

    // The protection: a non-admin role of Security Tooling may not disable
    // the key, an admin and trailkey's own role may; nobody is denied
    // PutKeyPolicy.
    let call = |arn: &str, action: &str| {
        evaluate(
            &policy,
            &Request {
                caller: Caller::aws(arn),
                action,
                context: Vec::new(),
            },
        )
    };
    let developer = format!("arn:aws:iam::{st}:role/Developer");
    for action in [
        "kms:DisableKey",
        "kms:ScheduleKeyDeletion",
        "kms:DisableKeyRotation",
    ] {
        assert_eq!(
            call(&developer, action),
            Decision::ExplicitlyDenied {
                statement: format!("statement \"{PROTECT_SID}\"")
            },
            "{action}"
        );
        for exempt in [
            format!("arn:aws:iam::{st}:role/BreakGlass"),
            format!("arn:aws:iam::{st}:role/AWSControlTowerExecution"),
        ] {
            assert_eq!(
                call(&exempt, action),
                Decision::Allowed,
                "{exempt} {action}"
            );
        }
    }
    assert_eq!(call(&developer, "kms:PutKeyPolicy"), Decision::Allowed);

    // Through the real-AWS layer: the developer's DisableKey is refused, the
    // key stays enabled and trailkey finds nothing to do.
    let results = c.moto.calls_as_role(
        st,
        "Developer",
        Some(c.moto.layer()),
        &serde_json::json!([{"op": "kms:DisableKey", "params": {"KeyId": c.key_id}}]),
    );
    assert_eq!(results[0]["code"], "AccessDeniedException", "{results:?}");
    let out = c.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

/// With `key.protect` and `key.rotation_period_days`, the policy keeps the
/// period: through the real-AWS layer, another role of Security Tooling may
/// not set another period or leave it out (which sets KMS's default), and
/// may set the configured one. trailkey's own role is exempt: what it
/// sets is seen as drift and put back.
#[test]
fn the_protection_keeps_the_configured_rotation_period() {
    let c = Converged::with_config(|text| {
        format!("{text}\n[key]\nprotect = true\nrotation_period_days = 180\n")
    });
    let policy = c.policy();
    assert!(
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["Sid"] == trailkey::policy::PROTECT_PERIOD_SID),
        "{policy:#}"
    );
    let st = &c.seed.security_tooling;
    let rotate = |role: &str, days: Option<i32>| {
        let mut params = serde_json::json!({"KeyId": c.key_id});
        if let Some(days) = days {
            params["RotationPeriodInDays"] = days.into();
        }
        let results = c.moto.calls_as_role(
            st,
            role,
            Some(c.moto.layer()),
            &serde_json::json!([{"op": "kms:EnableKeyRotation", "params": params}]),
        );
        results[0]["code"].as_str().unwrap_or("ok").to_owned()
    };
    assert_eq!(rotate("Developer", Some(2560)), "AccessDeniedException");
    assert_eq!(rotate("Developer", None), "AccessDeniedException");
    assert_eq!(rotate("Developer", Some(180)), "ok");
    // trailkey's own role is exempt; trailkey puts its period back.
    assert_eq!(rotate("AWSControlTowerExecution", Some(730)), "ok");
    std::thread::sleep(trailkey_testkit::LAYER_WINDOW);
    let out = c.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rotation_period_days = 730 -> 180"),
        "{}",
        transcript(&out)
    );
    let out = c.run(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = c.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

fn security_tooling_of(config: &str) -> String {
    config
        .lines()
        .find_map(|l| l.strip_prefix("security_tooling = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("security_tooling in the seeded config")
        .to_owned()
}

/// Foreign statements that open the key: to anyone, and (with `[readers]`)
/// to a principal that is neither trailkey's nor declared, are warnings
/// naming the Sid and the principal. The same `*` narrowed to the
/// organization, and a Deny whose `Resource` names another key, are no
/// finding. Warnings are not drift: `plan --detailed-exitcode` exits 0, and
/// apply writes nothing and keeps every statement.
#[test]
fn grants_to_anyone_or_an_undeclared_principal_are_warnings_and_a_deny_on_another_key_is_none() {
    let c = Converged::new();
    c.append_config("\n[readers]\naccounts = [\"444455556666\"]\n");
    assert_eq!(
        c.apply_writes(),
        ["kms:PutKeyPolicy"],
        "the readers' statement"
    );
    let org = c.moto.calls_as(
        &c.seed.management,
        None,
        &json!([{"op": "organizations:DescribeOrganization", "params": {}}]),
    );
    let org_id = org[0]["response"]["Organization"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_key = format!(
        "arn:aws:kms:us-east-1:{}:key/00000000-0000-4000-8000-000000000000",
        c.seed.security_tooling
    );
    // A role in a member account of the organization that `[readers]` does
    // not declare (the accounts trailkey grants, and the declared ones, are
    // no finding).
    let member = c.moto.calls_as(
        &c.seed.management,
        None,
        &json!([{"op": "organizations:CreateAccount", "params": {
            "AccountName": "Workloads", "Email": "workloads@example.com",
        }}]),
    );
    let member = member[0]["response"]["CreateAccountStatus"]["AccountId"]
        .as_str()
        .unwrap_or_else(|| panic!("{member:#?}"))
        .to_owned();
    let undeclared = format!("arn:aws:iam::{member}:role/Someone");
    let mut policy = c.policy();
    let statements = policy["Statement"].as_array_mut().unwrap();
    statements.extend([
        json!({"Sid": "PublicDecrypt", "Effect": "Allow", "Principal": "*",
               "Action": "kms:Decrypt", "Resource": "*"}),
        json!({"Sid": "OrgDecrypt", "Effect": "Allow", "Principal": {"AWS": "*"},
               "Action": "kms:Decrypt", "Resource": "*",
               "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}}),
        json!({"Sid": "UndeclaredDecrypt", "Effect": "Allow",
               "Principal": {"AWS": undeclared}, "Action": "kms:Decrypt", "Resource": "*"}),
        json!({"Sid": "DenyOtherKey", "Effect": "Deny",
               "Principal": {"Service": "cloudtrail.amazonaws.com"},
               "Action": "kms:GenerateDataKey*", "Resource": other_key}),
    ]);
    let put = json!([{"op": "kms:PutKeyPolicy", "params": {
        "KeyId": c.key_id, "PolicyName": "default", "Policy": policy.to_string(),
    }}]);
    let results = c.moto.calls_as(&c.seed.security_tooling, None, &put);
    assert!(results[0]["ok"] == true, "{results:#?}");

    c.moto.start_recording();
    let out = c.run(&["plan", "--detailed-exitcode", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings: Vec<(&str, &str)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["level"].as_str().unwrap(), f["message"].as_str().unwrap()))
        .filter(|(level, _)| *level != "note")
        .collect();
    assert_eq!(findings.len(), 2, "{json:#}");
    assert_eq!(findings[0].0, "warning");
    assert!(
        findings[0]
            .1
            .starts_with("key policy statement \"PublicDecrypt\" lets anyone"),
        "{findings:#?}"
    );
    assert_eq!(findings[1].0, "warning");
    assert!(
        findings[1].1.starts_with(&format!(
            "key policy statement \"UndeclaredDecrypt\" lets {undeclared}, neither one of trailkey's principals nor a declared reader"
        )),
        "{findings:#?}"
    );
    let human = c.run(&["plan"]);
    let stdout = String::from_utf8_lossy(&human.stdout);
    assert!(
        stdout.contains("Warning: key policy statement \"PublicDecrypt\" lets anyone"),
        "{stdout}"
    );
    assert!(!stdout.contains("OrgDecrypt\" lets"), "{stdout}");
    assert!(!stdout.contains("DenyOtherKey\" "), "{stdout}");

    let out = c.run(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(c.moto.recorded_writes(), Vec::<String>::new());
    let kept = c.policy();
    for sid in [
        "PublicDecrypt",
        "OrgDecrypt",
        "UndeclaredDecrypt",
        "DenyOtherKey",
    ] {
        assert!(statement(&kept, sid).is_some(), "{sid} kept: {kept:#}");
    }
}

/// AWS answers trailkey cannot read well: an `AccessDeniedException` with
/// no message on the key's policy, and an answer that is not UTF-8 (a
/// middlebox between trailkey and AWS). Each is an error naming the call,
/// with a hint that names the key policy for the first, and exit 1 with no
/// write and no panic.
#[test]
fn an_access_denied_without_a_message_or_an_undecodable_answer_is_explained() {
    use trailkey_testkit::proxy::{Decision, Request, Response, Traffic};
    let c = Converged::new();
    let answers: [(&str, Response); 2] = [
        (
            "access denied",
            trailkey_testkit::rules::json_error("AccessDeniedException", ""),
        ),
        (
            "not UTF-8",
            Response {
                status: 400,
                headers: vec![(
                    "Content-Type".to_owned(),
                    "application/x-amz-json-1.1".to_owned(),
                )],
                body: vec![0xff, 0xfe, b'{', 0x80, b'}'],
            },
        ),
    ];
    for (case, answer) in answers {
        let proxy = c
            .moto
            .layer_with(vec![Box::new(move |request: &Request, _: &Traffic| {
                if request.is("kms", "GetKeyPolicy") {
                    Decision::Respond(answer.clone())
                } else {
                    Decision::Forward
                }
            })]);
        c.moto.start_recording();
        let out = Run::new(&c.moto)
            .via(&proxy)
            .config(&c.seed.config)
            .args(["plan", "--detailed-exitcode"])
            .run();
        assert_eq!(out.status.code(), Some(1), "{case}: {}", transcript(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("GetKeyPolicy"), "{case}: {stderr}");
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        match case {
            "access denied" => assert!(
                stderr.contains(
                    "hint: KMS did not say which policy denied it: the key policy of arn:aws:kms:"
                ) && stderr.contains("may not let arn:aws:iam::"),
                "{case}: {stderr}"
            ),
            _ => assert!(stderr.contains("could not be decoded"), "{case}: {stderr}"),
        }
        assert!(c.moto.recorded_writes().is_empty(), "{case}: no write");
    }
}
