//! `trailkey init` against moto: the real binary reads organizations of
//! several shapes (seeded by `tests/testkit/fixture.py`) and writes a config.
//! A config written when everything was found must validate, plan and apply;
//! where init cannot decide, the file lists the candidates and init exits 1.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use trailkey_testkit::{CountingServer, Moto, Run, Seed, is_write, transcript};

fn code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The account ID of the seeded account named `name`.
fn account_id(facts: &Value, name: &str) -> String {
    facts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no account {name:?} in {facts:#}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Replaces what moto makes up (account and organization IDs, the temp
/// dir) so snapshots are stable.
fn redact(text: &str, moto: &Moto, seed: &Seed, facts: &Value) -> String {
    let mut s = text
        .replace(moto.dir.path().to_str().unwrap(), "[TMP]")
        .replace(facts["organization_id"].as_str().unwrap(), "[ORG_ID]")
        .replace(&seed.management, "[MANAGEMENT]");
    // By name: "Log Archive" becomes [LOG_ARCHIVE].
    for a in facts["accounts"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap().to_uppercase().replace(' ', "_");
        s = s.replace(a["id"].as_str().unwrap(), &format!("[{name}]"));
    }
    s
}

/// The comments of a config as one line of prose, so that phrase checks do
/// not depend on where the lines wrap.
fn prose(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse(path: &Path) -> Result<trailkey::config::Desired, String> {
    trailkey::config::parse(path, read(path).as_bytes()).map_err(|e| e.render())
}

#[test]
fn standard_organization_gives_a_complete_config_that_plans_and_applies() {
    let moto = Moto::start();
    let (seed, facts) = moto.seed_with(&[]);

    moto.start_recording();
    let out = Run::new(&moto).config(&seed.config).arg("init").run();
    assert_eq!(code(&out), 0, "{}", transcript(&out));
    assert!(out.stderr.is_empty(), "no warning: {}", transcript(&out));

    // Read-only, and only these reads.
    let mut calls = moto.recorded();
    assert!(
        calls.iter().all(|c| !is_write(c)),
        "init writes nothing: {calls:?}"
    );
    calls.sort();
    assert_eq!(
        calls,
        [
            "cloudtrail:DescribeTrails",
            "cloudtrail:ListTags",
            "organizations:DescribeOrganization",
            "organizations:ListAccounts",
            "sts:GetCallerIdentity",
        ]
    );

    let text = read(&seed.config);
    insta::assert_snapshot!("standard_config", redact(&text, &moto, &seed, &facts));
    insta::assert_snapshot!(
        "standard_transcript",
        redact(&transcript(&out), &moto, &seed, &facts)
    );

    let desired = parse(&seed.config).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(desired.security_tooling.as_str(), seed.security_tooling);
    assert_eq!(desired.log_archive.as_str(), seed.log_archive);
    assert_eq!(
        desired.management.as_ref().map(|m| m.as_str()),
        Some(seed.management.as_str())
    );
    assert_eq!(desired.trail.as_api_name(), seed.trail_name);
    assert_eq!(desired.region.as_str(), "us-east-1");

    let validate = Run::new(&moto)
        .config(&seed.config)
        .args(["validate"])
        .run();
    assert_eq!(code(&validate), 0, "{}", transcript(&validate));

    // The config works: the plan has changes, apply makes them, then nothing is left.
    let plan = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(code(&plan), 2, "{}", transcript(&plan));
    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));
    let again = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(code(&again), 0, "{}", transcript(&again));
    let state = moto.state(&seed);
    let key_arn = state["keys"][0]["arn"].as_str().expect("a key");
    assert_eq!(state["trail"]["kms_key_id"], key_arn);
}

#[test]
fn control_tower_account_names_are_found() {
    let moto = Moto::start();
    let (seed, _) = moto.seed_with(&["--security-tooling-name", "Audit", "--extra-account", "Dev"]);
    let out = Run::new(&moto).config(&seed.config).arg("init").run();
    assert_eq!(code(&out), 0, "{}", transcript(&out));
    let desired = parse(&seed.config).unwrap();
    assert_eq!(desired.security_tooling.as_str(), seed.security_tooling);
    assert_eq!(desired.log_archive.as_str(), seed.log_archive);
    let text = read(&seed.config);
    assert!(
        prose(&text).contains(
            "This looks like a Control Tower landing zone (an account named \"Audit\"): keep the default."
        ),
        "{text}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "security_tooling  {}  \"Audit\" <audit@example.com>",
            seed.security_tooling
        )),
        "{stdout}"
    );
}

#[test]
fn control_tower_trail_is_written_with_its_warning() {
    let moto = Moto::start();
    let (seed, _) = moto.seed_with(&[
        "--security-tooling-name",
        "Audit",
        "--trail-name",
        "aws-controltower-BaselineCloudTrail",
    ]);
    let out = Run::new(&moto).config(&seed.config).arg("init").run();
    assert_eq!(code(&out), 0, "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "warning: trail aws-controltower-BaselineCloudTrail is managed by AWS Control Tower"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("allow_control_tower = true"), "{stderr}");
    assert!(
        stderr.contains("set landing_zone = true under [control_tower], and trailkey sets"),
        "{stderr}"
    );
    let text = read(&seed.config);
    // No landing zone (the layer's ListLandingZones lists none): the option
    // is pointed at, not written.
    assert!(!text.contains("# [control_tower]"), "{text}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("landing_zone"));
    assert!(
        text.contains(
            "name = \"aws-controltower-BaselineCloudTrail\"\n# allow_control_tower = true\n"
        ),
        "{text}"
    );
    assert!(
        prose(&text).contains(
            "aws-controltower-BaselineCloudTrail is managed by AWS Control Tower (recognised by its name): Control Tower reverts changes made to it outside Control Tower."
        ),
        "{text}"
    );
    assert_eq!(
        parse(&seed.config).unwrap().trail.as_api_name(),
        "aws-controltower-BaselineCloudTrail"
    );
    // plan refuses the trail, as the comment says.
    let plan = Run::new(&moto).config(&seed.config).args(["plan"]).run();
    assert_eq!(code(&plan), 1, "{}", transcript(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stderr).contains("allow_control_tower"),
        "{}",
        transcript(&plan)
    );
}

#[test]
fn beside_control_towers_landing_zone_the_option_is_written_and_uncommenting_it_plans() {
    let moto = Moto::start();
    let (seed, facts) = moto.seed_with(&["--security-tooling-name", "Audit"]);
    let zone = moto.control_tower(&seed, Duration::from_secs(1));

    moto.start_recording();
    let out = Run::new(&moto).config(&seed.config).arg("init").run();
    // The seed's organization trail and Control Tower's: init chooses none.
    assert_eq!(code(&out), 1, "{}", transcript(&out));
    let calls = moto.recorded();
    assert!(
        calls.iter().all(|c| !is_write(c)),
        "init writes nothing: {calls:?}"
    );
    assert!(
        calls.iter().any(|c| c == "controltower:ListLandingZones"),
        "{calls:?}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "  landing_zone      {}: [control_tower] landing_zone = true is commented in the file",
            zone.arn
        )),
        "{stdout}"
    );
    let text = read(&seed.config);
    let id = zone.arn.rsplit('/').next().unwrap();
    insta::assert_snapshot!(
        "control_tower_config",
        redact(&text, &moto, &seed, &facts).replace(id, "[LANDING_ZONE_ID]")
    );

    // Uncommenting the two lines is all it takes: no trail to choose.
    let on = text.replace(
        "# [control_tower]\n# landing_zone = true\n",
        "[control_tower]\nlanding_zone = true\n",
    );
    assert_ne!(on, text);
    std::fs::write(&seed.config, on).unwrap();
    let desired = parse(&seed.config).unwrap_or_else(|e| panic!("{e}"));
    assert!(desired.landing_zone);
    assert_eq!(
        desired.trail.as_api_name(),
        "aws-controltower-BaselineCloudTrail"
    );
    assert_eq!(desired.key_account.as_str(), seed.management);
    let plan = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(code(&plan), 2, "{}", transcript(&plan));
    let plan = transcript(&plan);
    assert!(plan.contains("~ landing_zone"), "{plan}");
    assert!(
        plan.contains(&format!("in management account {}", seed.management)),
        "{plan}"
    );
}

#[test]
fn without_matching_accounts_the_candidates_are_listed_and_init_exits_1() {
    let moto = Moto::start();
    let (seed, facts) = moto.seed_with(&[
        "--security-tooling-name",
        "Dev",
        "--log-archive-name",
        "Prod",
    ]);
    let out = Run::new(&moto).config(&seed.config).arg("init").run();
    assert_eq!(code(&out), 1, "{}", transcript(&out));
    insta::assert_snapshot!(
        "no_match_transcript",
        redact(&transcript(&out), &moto, &seed, &facts)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: init could not decide accounts.security_tooling, accounts.log_archive: edit {}",
            seed.config.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "{stderr}");

    let text = read(&seed.config);
    let (dev, prod) = (account_id(&facts, "Dev"), account_id(&facts, "Prod"));
    for field in ["security_tooling", "log_archive"] {
        for (id, name) in [(&dev, "Dev"), (&prod, "Prod")] {
            let line = format!(
                "# {field} = \"{id}\"  # \"{name}\" <{}@example.com>",
                name.to_lowercase()
            );
            assert!(text.contains(&line), "{line} in\n{text}");
        }
    }
    assert!(
        !text.contains(&format!("= \"{}\"  #", seed.management)),
        "the management account is no candidate:\n{text}"
    );
    let validate = Run::new(&moto)
        .config(&seed.config)
        .args(["validate"])
        .run();
    assert_eq!(code(&validate), 1);
    assert!(
        String::from_utf8_lossy(&validate.stderr).contains("accounts.security_tooling is required"),
        "{}",
        transcript(&validate)
    );

    // Uncommenting one line per field is all it takes.
    let edited = text
        .replace(
            &format!("# security_tooling = \"{dev}\""),
            &format!("security_tooling = \"{dev}\""),
        )
        .replace(
            &format!("# log_archive = \"{prod}\""),
            &format!("log_archive = \"{prod}\""),
        );
    std::fs::write(&seed.config, edited).unwrap();
    let desired = parse(&seed.config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(desired.security_tooling.as_str(), dev);
    assert_eq!(desired.log_archive.as_str(), prod);
}

#[test]
fn several_organization_trails_are_listed_and_none_is_chosen() {
    let moto = Moto::start();
    let (seed, _) = moto.seed_with(&[]);
    moto.fixture(&["create-trail", "--name", "second-org-trail"]);
    moto.fixture(&[
        "create-trail",
        "--name",
        "local-trail",
        "--not-organization",
    ]);
    let out = Run::new(&moto).config(&seed.config).arg("init").run();
    assert_eq!(code(&out), 1, "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: init could not decide trail.name: edit "),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "trail             not decided: 2 organization trails are homed in us-east-1; none was chosen"
        ),
        "{stdout}"
    );
    let text = read(&seed.config);
    assert!(
        prose(&text)
            .contains("init found 2 organization trails homed in us-east-1 and chose none."),
        "{text}"
    );
    for name in ["org-trail", "second-org-trail"] {
        assert!(
            text.contains(&format!("\n# name = \"{name}\"  # bucket ")),
            "{name}:\n{text}"
        );
    }
    assert!(text.contains("\n#   \"local-trail\": bucket "), "{text}");
    assert!(!text.contains("name = \"local-trail\""), "{text}");
    // The accounts were still found.
    assert!(
        text.contains(&format!(
            "\nsecurity_tooling = \"{}\"",
            seed.security_tooling
        )),
        "{text}"
    );
    let err = parse(&seed.config).unwrap_err();
    assert!(err.contains("trail.name is required"), "{err}");
}

#[test]
fn suspended_accounts_are_never_chosen() {
    let moto = Moto::start();
    let (seed, facts) = moto.seed_with(&["--closed-account", "Audit"]);
    let out = Run::new(&moto).config(&seed.config).arg("init").run();
    assert_eq!(code(&out), 0, "{}", transcript(&out));
    let text = read(&seed.config);
    assert!(
        text.contains(&format!(
            "\nsecurity_tooling = \"{}\"",
            seed.security_tooling
        )),
        "{text}"
    );
    let audit = account_id(&facts, "Audit");
    assert!(
        prose(&text).contains(&format!(
            "Not considered: {audit} \"Audit\" <audit@example.com> is SUSPENDED."
        )),
        "{text}"
    );
}

#[test]
fn outside_an_organization_init_fails_and_writes_nothing() {
    let moto = Moto::start();
    let config = moto.dir.path().join("trailkey.toml");
    let out = Run::new(&moto).config(&config).arg("init").run();
    assert_eq!(code(&out), 1, "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("organizations:DescribeOrganization"),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "{stderr}");
    assert!(!config.exists());
}

#[test]
fn an_existing_file_is_refused_without_any_aws_request_and_replaced_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trailkey.toml");
    std::fs::write(&config, "# my config\n").unwrap();

    let server = CountingServer::start();
    let out = Run::at(&server.endpoint).config(&config).arg("init").run();
    assert_eq!(code(&out), 1, "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: {} already exists; init does not overwrite it\nhint: pass --force",
            config.display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(server.connections(), 0, "no AWS request");
    assert_eq!(read(&config), "# my config\n");

    let moto = Moto::start();
    let (seed, _) = moto.seed_with(&[]);
    let out = Run::new(&moto)
        .config(&config)
        .args(["init", "--force"])
        .run();
    assert_eq!(code(&out), 0, "{}", transcript(&out));
    let desired = parse(&config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(desired.security_tooling.as_str(), seed.security_tooling);
}

#[test]
fn from_security_tooling_as_delegated_administrator_init_writes_a_config_that_applies_from_there() {
    let moto = Moto::start();
    let (seed, facts) = moto.seed_with(&[]);
    moto.world
        .delegated_administrator(trailkey_testkit::rules::CLOUDTRAIL, &seed.security_tooling);
    let st = moto.assume_role(&seed.security_tooling, "TrailkeyRunner", moto.layer());
    let as_st = || Run::new(&moto).config(&seed.config).credentials(&st);

    moto.start_recording();
    let out = as_st().arg("init").run();
    assert_eq!(code(&out), 0, "{}", transcript(&out));
    assert!(moto.recorded().iter().all(|c| !is_write(c)));
    let text = read(&seed.config);
    insta::assert_snapshot!(
        "delegated_administrator_config",
        redact(&text, &moto, &seed, &facts)
    );
    let desired = parse(&seed.config).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(desired.security_tooling.as_str(), seed.security_tooling);
    assert_eq!(desired.log_archive.as_str(), seed.log_archive);
    assert_eq!(desired.management_role, None);

    let plan = as_st().args(["plan", "--detailed-exitcode"]).run();
    assert_eq!(code(&plan), 2, "{}", transcript(&plan));
    let apply = as_st().args(["apply", "--auto-approve"]).run();
    assert_eq!(code(&apply), 0, "{}", transcript(&apply));
    let again = as_st().args(["plan", "--detailed-exitcode"]).run();
    assert_eq!(code(&again), 0, "{}", transcript(&again));
    let by_management = moto.requests_signed_in(moto.layer(), &seed.management);
    assert!(by_management.is_empty(), "{by_management:?}");
}
