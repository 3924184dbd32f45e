//! Unit tests of `trailkey init`, against the fake AWS.

use std::collections::BTreeMap;
use std::future::Future;

use super::template::WIDTH;
use super::*;
use crate::aws::CallerIdentity;
use crate::aws::fake::FakeCloud;
use crate::plan::CONTROL_TOWER_TRAIL;

const MANAGEMENT: &str = "333333333333";

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

fn account(id: &str, name: &str) -> Account {
    Account {
        id: id.to_owned(),
        name: name.to_owned(),
        email: format!("{}@example.com", normalize(name)),
        state: crate::aws::AccountState::from("ACTIVE"),
    }
}

fn region() -> Region {
    Region::parse("us-east-1").unwrap()
}

/// An organization with one organization trail and these member accounts.
fn cloud(accounts: &[(&str, &str)]) -> FakeCloud {
    let fake = FakeCloud::new("us-east-1", MANAGEMENT, "111111111111", "org-trail");
    let mut s = fake.state.borrow_mut();
    s.accounts.push(account(MANAGEMENT, "Management"));
    s.accounts
        .extend(accounts.iter().map(|(id, name)| account(id, name)));
    drop(s);
    fake
}

fn add_trail(fake: &FakeCloud, name: &str, region: &str, org: bool) {
    let arn = format!("arn:aws:cloudtrail:{region}:{MANAGEMENT}:trail/{name}");
    fake.state.borrow_mut().trails.insert(
        arn.clone(),
        Trail {
            name: name.to_owned(),
            arn,
            home_region: region.to_owned(),
            kms_key_id: None,
            is_organization_trail: org,
            is_multi_region_trail: true,
            s3_bucket: "bucket".to_owned(),
            s3_key_prefix: None,
            log_file_validation: true,
            has_custom_event_selectors: false,
        },
    );
}

/// Runs init quietly into a temp dir: (the outcome, the file, the dir).
fn init(fake: &FakeCloud) -> (Result<Written, Error>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trailkey.toml");
    let result = block_on(write_config(fake, fake, &region(), &path, false));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if let Ok(w) = &result {
        assert_eq!(w.text, text);
    }
    (result, text, dir)
}

/// The comments as one line, independent of where they wrap.
fn prose(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn decided(result: &Result<Written, Error>) -> bool {
    matches!(
        result,
        Ok(Written {
            outcome: Ok(()),
            ..
        })
    )
}

fn undecided_message(result: Result<Written, Error>) -> String {
    result.unwrap().outcome.unwrap_err().render()
}

#[test]
fn names_are_normalized_and_matched_exactly() {
    use AccountKind::*;
    for name in [
        "Audit",
        "audit",
        "Security Tooling",
        "SecurityTooling",
        "security-tooling",
        "SECURITY_TOOLING",
        "Security",
        "Security Tools",
    ] {
        assert_eq!(
            name_match(SecurityTooling, name),
            Some(NameMatch::Exact),
            "{name}"
        );
        assert_eq!(name_match(LogArchive, name), None, "{name}");
    }
    for name in [
        "Log Archive",
        "LogArchive",
        "log-archive",
        "log_archive",
        "Logs",
        "Logging",
    ] {
        assert_eq!(
            name_match(LogArchive, name),
            Some(NameMatch::Exact),
            "{name}"
        );
        assert_eq!(name_match(SecurityTooling, name), None, "{name}");
    }
    for (kind, name) in [
        (SecurityTooling, "acme-audit"),
        (SecurityTooling, "Security Sandbox"),
        (LogArchive, "acme-log-archive"),
        (LogArchive, "Central Logs"),
    ] {
        assert_eq!(name_match(kind, name), Some(NameMatch::Similar), "{name}");
    }
    for name in ["Dev", "Prod", "Shared Services", "Network", "Catalog"] {
        assert_eq!(name_match(SecurityTooling, name), None, "{name}");
        assert_eq!(name_match(LogArchive, name), None, "{name}");
    }
}

#[test]
fn control_tower_names_are_found_and_the_config_validates() {
    let fake = cloud(&[
        ("111111111111", "Audit"),
        ("222222222222", "Log Archive"),
        ("444444444444", "Dev"),
    ]);
    let (result, text, dir) = init(&fake);
    assert!(decided(&result), "{result:?}");
    let d = config::parse(&dir.path().join("trailkey.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}\n{text}", e.render()));
    assert_eq!(d.security_tooling.as_str(), "111111111111");
    assert_eq!(d.log_archive.as_str(), "222222222222");
    assert_eq!(d.management.as_ref().unwrap().as_str(), MANAGEMENT);
    assert_eq!(d.trail.as_api_name(), "org-trail");
    assert!(
        text.contains("looks like a Control Tower landing zone"),
        "{text}"
    );
    assert!(!text.contains("444444444444"), "Dev is not listed: {text}");
    assert_eq!(
        fake.calls(),
        [
            "GetCallerIdentity",
            "DescribeOrganization",
            "ListAccounts",
            "DescribeTrails",
            "ListTags"
        ],
        "reads only"
    );
}

#[test]
fn several_matches_are_listed_and_none_is_chosen() {
    let fake = cloud(&[
        ("111111111111", "Audit"),
        ("555555555555", "Security Tooling"),
        ("222222222222", "Log Archive"),
    ]);
    let (result, text, _dir) = init(&fake);
    let err = undecided_message(result);
    assert!(
        err.contains("init could not decide accounts.security_tooling: edit "),
        "{err}"
    );
    assert!(
        text.contains("# security_tooling = \"111111111111\"  # \"Audit\" <audit@example.com>"),
        "{text}"
    );
    assert!(
        text.contains("# security_tooling = \"555555555555\"  # \"Security Tooling\""),
        "{text}"
    );
    assert!(text.contains("\nlog_archive = \"222222222222\""), "{text}");
    let e = config::parse(Path::new("t.toml"), text.as_bytes()).unwrap_err();
    assert!(
        e.render().contains("accounts.security_tooling is required"),
        "{}",
        e.render()
    );
}

#[test]
fn without_a_match_every_account_is_a_candidate_the_likeliest_first() {
    let fake = cloud(&[
        ("444444444444", "Dev"),
        ("666666666666", "acme-log-archive"),
        ("777777777777", "Prod"),
    ]);
    fake.state.borrow_mut().trails.values_mut().for_each(|t| {
        t.s3_bucket = "aws-controltower-logs-777777777777-us-east-1".to_owned();
    });
    let (result, text, _dir) = init(&fake);
    assert!(!decided(&result));
    let lines = |field: &str| -> Vec<&str> {
        text.lines()
            .filter(|l| {
                l.strip_prefix(&format!("# {field} = \""))
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .collect()
    };
    assert_eq!(
        lines("log_archive"),
        [
            "# log_archive = \"666666666666\"  # \"acme-log-archive\" <acmelogarchive@example.com>, similar name",
            "# log_archive = \"777777777777\"  # \"Prod\" <prod@example.com>, the trail's bucket aws-controltower-logs-777777777777-us-east-1 carries this ID",
            "# log_archive = \"444444444444\"  # \"Dev\" <dev@example.com>",
        ],
        "{text}"
    );
    assert_eq!(
        lines("security_tooling"),
        [
            "# security_tooling = \"666666666666\"  # \"acme-log-archive\" <acmelogarchive@example.com>",
            "# security_tooling = \"444444444444\"  # \"Dev\" <dev@example.com>",
            "# security_tooling = \"777777777777\"  # \"Prod\" <prod@example.com>",
        ],
        "{text}"
    );
    assert!(!text.contains(&format!("= \"{MANAGEMENT}\"  #")), "{text}");
    for line in text.lines() {
        assert!(
            line.len() <= WIDTH || line.contains(" = ") || !line.starts_with('#'),
            "comment over {WIDTH} columns: {line}"
        );
    }
}

#[test]
fn a_found_log_archive_is_no_security_tooling_candidate() {
    let fake = cloud(&[("444444444444", "Dev"), ("222222222222", "Log Archive")]);
    let (result, text, _dir) = init(&fake);
    assert!(!decided(&result));
    assert!(text.contains("\nlog_archive = \"222222222222\""), "{text}");
    assert!(
        text.contains("# security_tooling = \"444444444444\""),
        "{text}"
    );
    assert!(
        !text.contains("# security_tooling = \"222222222222\""),
        "{text}"
    );
}

#[test]
fn more_than_max_candidates_are_cut_with_a_pointer_to_the_cli() {
    let ids: Vec<(String, String)> = (0..MAX_CANDIDATES + 5)
        .map(|i| {
            (
                format!("{:012}", 500_000_000_000_u64 + i as u64),
                format!("Workload {i:02}"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = ids.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let fake = cloud(&refs);
    let (_, text, _dir) = init(&fake);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("# security_tooling = \"5"))
            .count(),
        MAX_CANDIDATES
    );
    assert!(
        text.contains("# ... and 5 more: `aws organizations list-accounts`"),
        "{text}"
    );
}

#[test]
fn only_active_accounts_are_chosen() {
    let fake = cloud(&[
        ("111111111111", "Audit"),
        ("555555555555", "Security Tooling"),
        ("222222222222", "Log Archive"),
    ]);
    fake.state.borrow_mut().accounts[2].state = crate::aws::AccountState::from("SUSPENDED");
    let (result, text, _dir) = init(&fake);
    assert!(decided(&result), "{result:?}\n{text}");
    assert!(
        text.contains("\nsecurity_tooling = \"111111111111\""),
        "{text}"
    );
    assert!(
        prose(&text).contains("Not considered: 555555555555 \"Security Tooling\""),
        "{text}"
    );
    assert!(text.contains("is SUSPENDED."), "{text}");
}

#[test]
fn several_organization_trails_are_listed_with_the_other_trails() {
    let fake = cloud(&[("111111111111", "Audit"), ("222222222222", "Log Archive")]);
    add_trail(&fake, "second-org-trail", "us-east-1", true);
    add_trail(&fake, "local-trail", "us-east-1", false);
    add_trail(&fake, "eu-org-trail", "eu-west-1", true);
    let (result, text, _dir) = init(&fake);
    let err = undecided_message(result);
    assert!(err.contains("could not decide trail.name"), "{err}");
    assert!(text.contains("# name = \"org-trail\"  # bucket"), "{text}");
    assert!(
        text.contains("# name = \"second-org-trail\"  # bucket"),
        "{text}"
    );
    assert!(text.contains("#   \"local-trail\": bucket"), "{text}");
    assert!(!text.contains("name = \"local-trail\""), "{text}");
    assert!(
        text.contains("\"eu-org-trail\" in eu-west-1 (run `trailkey init --region eu-west-1`"),
        "{text}"
    );
}

#[test]
fn control_tower_trail_is_written_with_a_warning_comment() {
    let fake = FakeCloud::new("us-east-1", MANAGEMENT, "111111111111", CONTROL_TOWER_TRAIL);
    fake.state.borrow_mut().accounts = vec![
        account(MANAGEMENT, "Management"),
        account("111111111111", "Audit"),
        account("222222222222", "Log Archive"),
    ];
    let (result, text, _dir) = init(&fake);
    assert!(decided(&result), "{result:?}");
    assert!(
        prose(&text).contains(&format!(
            "{CONTROL_TOWER_TRAIL} is managed by AWS Control Tower (recognised by its name): Control Tower reverts changes"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "name = \"{CONTROL_TOWER_TRAIL}\"\n# allow_control_tower = true"
        )),
        "{text}"
    );
    // No landing zone in the organization: the option is pointed at, not written.
    assert!(fake.calls().contains(&"ListLandingZones"));
    assert!(!text.contains("# [control_tower]"), "{text}");
}

/// Control Tower's trail alone, with the Audit and Log Archive accounts.
fn control_tower_cloud() -> FakeCloud {
    let fake = FakeCloud::new("us-east-1", MANAGEMENT, "111111111111", CONTROL_TOWER_TRAIL);
    fake.state.borrow_mut().accounts = vec![
        account(MANAGEMENT, "Management"),
        account("111111111111", "Audit"),
        account("222222222222", "Log Archive"),
    ];
    fake
}

/// `text` with the commented `[control_tower]` section switched on.
fn with_landing_zone_on(text: &str) -> String {
    let on = text.replace(
        "# [control_tower]\n# landing_zone = true\n",
        "[control_tower]\nlanding_zone = true\n",
    );
    assert_ne!(on, text, "no commented [control_tower] in\n{text}");
    on
}

#[test]
fn beside_control_towers_trail_the_landing_zone_option_is_written_commented() {
    let fake = control_tower_cloud().with_landing_zone("3.3");
    let arn = format!("arn:aws:controltower:us-east-1:{MANAGEMENT}:landingzone/FAKE0LZ00001");
    let (result, text, dir) = init(&fake);
    assert!(decided(&result), "{result:?}\n{text}");
    let written = result.unwrap();
    assert_eq!(
        written.discovery.landing_zone.as_deref(),
        Some(arn.as_str())
    );
    assert_eq!(
        fake.calls(),
        [
            "GetCallerIdentity",
            "DescribeOrganization",
            "ListAccounts",
            "DescribeTrails",
            "ListTags",
            "ListLandingZones"
        ],
        "reads only, the landing zone's list and no more"
    );
    // As written: a trail of its own's config, the option commented.
    assert!(
        text.contains("\n# [control_tower]\n# landing_zone = true\n\n[key]\n"),
        "{text}"
    );
    let prose = prose(&text);
    assert!(
        prose.contains(&format!("Control Tower's landing zone: {arn} Choose this")),
        "{text}"
    );
    assert!(
        prose.contains("Choose this over an organization trail of your own to keep one trail, Control Tower's, with a key trailkey makes in the management account (docs/control-tower.md):"),
        "{text}"
    );
    assert!(
        prose.contains("Prefer [control_tower] landing_zone = true (commented below): trailkey then sets the landing zone's KMS key"),
        "{text}"
    );
    assert!(!prose.contains("Control Tower console"), "{text}");
    for line in text.lines() {
        assert!(
            line.len() <= WIDTH || line.contains(" = ") || !line.starts_with('#'),
            "comment over {WIDTH} columns: {line}"
        );
    }
    let warning = &written.discovery.warnings;
    assert_eq!(warning.len(), 1, "{warning:?}");
    assert!(
        warning[0]
            .contains("set landing_zone = true under [control_tower] (commented in the file)"),
        "{warning:?}"
    );
    assert!(
        written.summary.contains(&format!(
            "  landing_zone      {arn}: [control_tower] landing_zone = true is commented in the file\n"
        )),
        "{}",
        written.summary
    );
    let path = dir.path().join("trailkey.toml");
    let as_written = config::parse(&path, text.as_bytes()).unwrap();
    assert!(!as_written.landing_zone);

    // Uncommenting the two lines is all it takes.
    let on = with_landing_zone_on(&text);
    let d = config::parse(&path, on.as_bytes()).unwrap_or_else(|e| panic!("{}\n{on}", e.render()));
    assert!(d.landing_zone);
    assert_eq!(d.key_account.as_str(), MANAGEMENT);
    assert_eq!(d.security_tooling.as_str(), "111111111111");
    assert_eq!(d.trail.as_api_name(), CONTROL_TOWER_TRAIL);
}

#[test]
fn beside_several_trails_the_landing_zone_option_needs_no_trail_name() {
    let fake = control_tower_cloud().with_landing_zone("3.3");
    add_trail(&fake, "org-trail", "us-east-1", true);
    let (result, text, dir) = init(&fake);
    let err = undecided_message(result);
    assert!(err.contains("could not decide trail.name"), "{err}");
    assert!(
        prose(&text).contains(&format!(
            "With landing_zone = true the trail is {CONTROL_TOWER_TRAIL}, and name under [trail] may stay commented. Choose this"
        )),
        "{text}"
    );
    let d = config::parse(
        &dir.path().join("trailkey.toml"),
        with_landing_zone_on(&text).as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{}\n{text}", e.render()));
    assert!(d.landing_zone);
    assert_eq!(d.trail.as_api_name(), CONTROL_TOWER_TRAIL);
}

#[test]
fn a_landing_zone_is_looked_for_only_beside_control_towers_trail() {
    let fake = cloud(&[("111111111111", "Audit"), ("222222222222", "Log Archive")])
        .with_landing_zone("3.3");
    let (result, text, _dir) = init(&fake);
    assert!(decided(&result), "{result:?}");
    assert!(
        !fake.calls().contains(&"ListLandingZones"),
        "{:?}",
        fake.calls()
    );
    assert!(!text.contains("control_tower]"), "{text}");
    assert!(result.unwrap().discovery.landing_zone.is_none());
}

#[test]
fn a_landing_zone_that_cannot_be_listed_is_none_and_init_succeeds() {
    for failure in ["AccessDeniedException", "ResourceNotFoundException"] {
        let fake = control_tower_cloud().with_landing_zone("3.3");
        fake.fail_next("ListLandingZones", failure, "no");
        let (result, text, _dir) = init(&fake);
        assert!(decided(&result), "{failure}: {result:?}");
        assert!(fake.calls().contains(&"ListLandingZones"));
        let written = result.unwrap();
        assert!(written.discovery.landing_zone.is_none());
        assert!(!text.contains("# [control_tower]"), "{failure}: {text}");
        assert!(!text.contains(failure), "{failure}: {text}");
        assert!(
            !written.summary.contains("landing_zone"),
            "{}",
            written.summary
        );
        // The pointer to the option stays; nothing says it is in the file.
        let warning = written.discovery.warnings.join("\n");
        assert!(
            warning.contains("set landing_zone = true under [control_tower], and trailkey"),
            "{warning}"
        );
        assert!(!warning.contains(failure), "{warning}");
        assert!(
            prose(&text).contains("Prefer [control_tower] landing_zone = true: trailkey"),
            "{text}"
        );
    }
}

#[test]
fn a_trail_tagged_by_control_tower_is_recognised() {
    let fake = cloud(&[("111111111111", "Audit"), ("222222222222", "Log Archive")]);
    let arn = format!("arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/org-trail");
    fake.state.borrow_mut().trail_tags.insert(
        arn,
        BTreeMap::from([("aws-control-tower".to_owned(), "managed".to_owned())]),
    );
    let found = block_on(discover(&fake, &fake, &region())).unwrap();
    let t = found.trail.one().expect("one trail");
    assert_eq!(
        t.control_tower.as_deref(),
        Some("recognised by its tag \"aws-control-tower\"")
    );
    assert_eq!(found.warnings.len(), 1, "{:?}", found.warnings);
}

#[test]
fn credentials_of_another_partition_fail_and_write_nothing() {
    let fake = cloud(&[("111111111111", "Audit"), ("222222222222", "Log Archive")]);
    fake.state.borrow_mut().identity = Some(CallerIdentity {
        account: MANAGEMENT.to_owned(),
        arn: format!("arn:aws-cn:iam::{MANAGEMENT}:user/dev"),
    });
    let (result, text, _dir) = init(&fake);
    assert_eq!(
        result.unwrap_err().render(),
        "error: the credentials are for partition \"aws-cn\", but Region us-east-1 is in \"aws\"\n\
         hint: pass --region with a Region of the credentials' partition, or use credentials for that partition\n"
    );
    assert!(text.is_empty(), "no file");
}

#[test]
fn not_in_an_organization_or_not_the_management_account_fails_and_writes_nothing() {
    let fake = cloud(&[("111111111111", "Audit")]);
    fake.state.borrow_mut().organization = None;
    let (result, text, _dir) = init(&fake);
    let err = result.unwrap_err().render();
    assert!(err.contains("organizations:DescribeOrganization"), "{err}");
    assert!(err.contains("not in an organization"), "{err}");
    assert!(text.is_empty(), "no file");

    let fake = cloud(&[("111111111111", "Audit")]);
    fake.state.borrow_mut().identity = Some(CallerIdentity {
        account: "111111111111".to_owned(),
        arn: "arn:aws:iam::111111111111:user/dev".to_owned(),
    });
    fake.fail_next("ListAccounts", "AccessDeniedException", "no");
    let (result, text, _dir) = init(&fake);
    let err = result.unwrap_err().render();
    assert!(
        err.contains("which is not the management account 333333333333"),
        "{err}"
    );
    assert!(
        err.contains("hint: run `trailkey init` with credentials of the management account"),
        "{err}"
    );
    assert!(text.is_empty(), "no file");
}

#[test]
fn an_existing_file_is_kept_without_force_and_no_call_is_made() {
    let fake = cloud(&[("111111111111", "Audit"), ("222222222222", "Log Archive")]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trailkey.toml");
    std::fs::write(&path, "# mine\n").unwrap();
    let err = block_on(write_config(&fake, &fake, &region(), &path, false)).unwrap_err();
    assert!(err.render().contains("already exists"), "{}", err.render());
    assert!(err.render().contains("--force"), "{}", err.render());
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");

    let written = block_on(write_config(&fake, &fake, &region(), &path, true)).unwrap();
    assert!(written.outcome.is_ok());
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("security_tooling = \"111111111111\"")
    );
}

#[test]
fn a_missing_directory_is_reported_before_any_call() {
    let fake = cloud(&[]);
    let err = block_on(write_config(
        &fake,
        &fake,
        &region(),
        Path::new("/nonexistent/trailkey-init/trailkey.toml"),
        false,
    ))
    .unwrap_err();
    assert!(err.render().contains("does not exist"), "{}", err.render());
    assert!(fake.calls().is_empty());
}

#[test]
fn account_names_cannot_break_out_of_a_comment() {
    let fake = cloud(&[
        ("555555555555", "Security\nname = \"x\""),
        ("222222222222", "Log Archive"),
    ]);
    // "Security\nname..." normalizes to securitynamex: similar, so listed.
    let (result, text, _dir) = init(&fake);
    assert!(!decided(&result));
    assert!(
        text.contains("# security_tooling = \"555555555555\"  # \"Security name = \\\"x\\\"\""),
        "{text}"
    );
    assert!(!text.contains("\nname = \"x\""), "{text}");
}

/// The organization of [`cloud`], `init` run with the credentials of a role
/// of account `caller`, CloudTrail's delegated administrator when
/// `delegated`.
fn as_member(accounts: &[(&str, &str)], caller: &str, delegated: bool) -> FakeCloud {
    let fake = cloud(accounts);
    {
        let mut s = fake.state.borrow_mut();
        s.identity = Some(CallerIdentity {
            account: caller.to_owned(),
            arn: format!("arn:aws:sts::{caller}:assumed-role/TrailkeyRunner/pipeline"),
        });
        if delegated {
            s.delegated_administrators = vec![(
                crate::aws::CLOUDTRAIL_PRINCIPAL.to_owned(),
                caller.to_owned(),
            )];
        }
    }
    fake
}

#[test]
fn from_cloudtrails_delegated_administrator_init_writes_the_config_for_a_run_from_there() {
    // Two accounts are named like Security Tooling: the caller's account is
    // the one, whatever its name.
    let fake = as_member(
        &[
            ("111111111111", "Security Tooling"),
            ("555555555555", "Audit"),
            ("222222222222", "Log Archive"),
        ],
        "111111111111",
        true,
    );
    let (result, text, dir) = init(&fake);
    assert!(decided(&result), "{result:?}\n{text}");
    let d = config::parse(&dir.path().join("trailkey.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}\n{text}", e.render()));
    assert_eq!(d.security_tooling.as_str(), "111111111111");
    assert_eq!(d.log_archive.as_str(), "222222222222");
    assert_eq!(d.management.as_ref().unwrap().as_str(), MANAGEMENT);
    assert_eq!(d.management_role, None);
    let prose = prose(&text);
    assert!(
        prose.contains("CloudTrail's delegated administrator"),
        "{text}"
    );
    assert!(
        text.contains("# security_tooling = \"TrailkeyRunner\""),
        "{text}"
    );
    assert!(!text.contains("[control_tower]"), "{text}");
    assert!(!text.contains("management = \"arn:"), "{text}");
    let calls = fake.calls();
    assert!(calls.contains(&"ListDelegatedAdministrators"), "{calls:?}");
    assert!(!calls.contains(&"ListLandingZones"), "{calls:?}");
    let summary = &result.unwrap().summary;
    assert!(summary.contains("none assumed"), "{summary}");
}

#[test]
fn a_member_that_is_not_cloudtrails_delegated_administrator_is_told_how_to_register_it() {
    let fake = as_member(
        &[("111111111111", "Audit"), ("222222222222", "Log Archive")],
        "111111111111",
        false,
    );
    let (result, text, _dir) = init(&fake);
    let err = result.unwrap_err().render();
    assert!(err.contains("which is not the management account"), "{err}");
    assert!(
        err.contains(
            "aws cloudtrail register-organization-delegated-admin --member-account-id <Security Tooling ID>"
        ),
        "{err}"
    );
    assert!(text.is_empty(), "no file");
    assert_eq!(count_writes(&fake), 0);
    // Throttled: the AWS error, not a verdict.
    let fake = as_member(&[("111111111111", "Audit")], "111111111111", false);
    fake.fail_next(
        "ListDelegatedAdministrators",
        "TooManyRequestsException",
        "slow down",
    );
    let (result, _, _dir) = init(&fake);
    let err = result.unwrap_err().render();
    assert!(err.contains("TooManyRequestsException"), "{err}");
}

#[test]
fn a_delegated_administrator_not_named_like_security_tooling_is_written_with_a_warning() {
    let fake = as_member(
        &[("111111111111", "Log Archive"), ("222222222222", "Audit")],
        "111111111111",
        true,
    );
    let (result, text, _dir) = init(&fake);
    let written = result.unwrap();
    assert!(
        text.contains("security_tooling = \"111111111111\""),
        "{text}"
    );
    assert!(
        written
            .discovery
            .warnings
            .iter()
            .any(|w| w.contains("not named exactly like a Security Tooling account")),
        "{:?}",
        written.discovery.warnings
    );
}

fn count_writes(fake: &FakeCloud) -> usize {
    fake.writes().len()
}
