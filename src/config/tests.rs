use super::diagnose::floor_char_boundary;
use super::*;

fn parse_str(text: &str) -> Result<Desired, Error> {
    parse(Path::new("t.toml"), text.as_bytes())
}

fn config_error(text: &str) -> (Option<String>, String, String) {
    match parse_str(text) {
        Err(Error::Config {
            field,
            message,
            hint,
            ..
        }) => (field, message, hint),
        other => panic!("expected a config error, got {other:?}"),
    }
}

const MINIMAL: &str = "[accounts]\nsecurity_tooling = \"111111111111\"\nlog_archive = \"222222222222\"\n[trail]\nname = \"org-trail\"\n";

#[test]
fn a_config_using_every_key_is_accepted() {
    let d = parse_str(
        "region = \"us-gov-west-1\"\nct_key_alias = \"alias/org/cloudtrail_key-1\"\n\
         [accounts]\nsecurity_tooling = \"011111111111\"\nlog_archive = \"222222222222\"\nmanagement = \"333333333333\"\n\
         [roles]\nsecurity_tooling = \"arn:aws-us-gov:iam::011111111111:role/path/to/Admin\"\n\
         management = \"arn:aws-us-gov:iam::333333333333:role/TrailkeyRunner\"\n\
         [trail]\nname = \"arn:aws-us-gov:cloudtrail:us-gov-west-1:333333333333:trail/org.trail_1\"\n\
         organization_trail = true\nallow_control_tower = false\n\
         [key]\nrotation = false\ntags = { \"Cost Center\" = \"sécurité\", \"team/owner\" = \"a+b=c@d\" }\n",
    )
    .unwrap();
    assert_eq!(d.partition(), "aws-us-gov");
    assert_eq!(d.security_tooling.as_str(), "011111111111");
    assert_eq!(d.alias.full(), "alias/org/cloudtrail_key-1");
    assert!(!d.rotation);
    assert_eq!(d.tags.len(), 4);
    assert_eq!(
        d.security_tooling_role_arn(),
        "arn:aws-us-gov:iam::011111111111:role/path/to/Admin"
    );
}

#[test]
fn partitions_outside_aws_have_their_own_arns() {
    for (region, partition) in [
        ("cn-north-1", "aws-cn"),
        ("us-isof-south-1", "aws-iso-f"),
        ("eu-isoe-west-1", "aws-iso-e"),
        ("eusc-de-east-1", "aws-eusc"),
    ] {
        let d = parse_str(&format!("region = \"{region}\"\n{MINIMAL}")).unwrap();
        assert_eq!(d.partition(), partition);
        assert!(
            d.security_tooling_role_arn()
                .starts_with(&format!("arn:{partition}:iam::"))
        );
    }
}

#[test]
fn sections_must_be_tables_not_lists() {
    // serde would otherwise fill the fields of [accounts] from the list, in order.
    let (field, message, hint) = config_error(
        "accounts = [\"111111111111\", \"222222222222\", \"333333333333\"]\n[trail]\nname = \"org-trail\"\n",
    );
    assert_eq!(field.as_deref(), Some("accounts"));
    assert!(message.contains("must be a table"), "{message}");
    assert!(hint.contains("[accounts]"), "{hint}");
    let (field, ..) = config_error(&format!("key = [true]\n{MINIMAL}"));
    assert_eq!(field.as_deref(), Some("key"));
}

#[test]
fn trail_names_and_role_arns_follow_the_aws_rules() {
    for bad in ["my--trail", "a.-b", "-abc", "ab", "org trail", "trail."] {
        let (field, ..) = config_error(&MINIMAL.replace("org-trail", bad));
        assert_eq!(field.as_deref(), Some("trail.name"), "{bad}");
    }
    for good in ["a.b_c-d", "abc", "Org-Trail-2"] {
        parse_str(&MINIMAL.replace("org-trail", good)).unwrap();
    }
    let (_, message, _) = config_error(&MINIMAL.replace(
        "org-trail",
        "arn:aws:cloudtrail:us-east-1:333333333333:trail/bad name",
    ));
    assert!(message.contains("not a CloudTrail trail ARN"), "{message}");
    for bad in [
        "arn:aws:iam::111111111111:role/",
        "arn:aws:iam::111111111111:user/Admin",
        "arn:aws:iam:us-east-1:111111111111:role/Admin",
        "arn:aws:sts::111111111111:role/Admin",
    ] {
        let (field, ..) =
            config_error(&format!("{MINIMAL}[roles]\nsecurity_tooling = \"{bad}\"\n"));
        assert_eq!(field.as_deref(), Some("roles.security_tooling"), "{bad}");
    }
}

/// CloudTrail: a trail name must "Not be in IP address format (for
/// example, 192.168.5.4)".
#[test]
fn a_trail_name_in_ip_address_format_is_refused() {
    for bad in [
        "192.168.5.4",
        "10.0.0.256",
        "0.0.0.0",
        "001.02.3.4",
        "999.999.999.999",
    ] {
        let (field, message, hint) = config_error(&MINIMAL.replace("org-trail", bad));
        assert_eq!(field.as_deref(), Some("trail.name"), "{bad}");
        assert!(
            message.contains(&format!(
                "{bad:?} is not a valid trail name: it is in IP address format"
            )),
            "{bad}: {message}"
        );
        assert!(
            hint.contains("aws cloudtrail describe-trails"),
            "{bad}: {hint}"
        );
        // In an ARN too.
        let arn = format!("arn:aws:cloudtrail:us-east-1:333333333333:trail/{bad}");
        let (field, message, _) = config_error(&MINIMAL.replace("org-trail", &arn));
        assert_eq!(field.as_deref(), Some("trail.name"), "{arn}");
        assert!(message.contains("IP address format"), "{arn}: {message}");
    }
    for good in [
        "1.2.3",
        "1.2.3.4.5",
        "1234.1.1.1",
        "org.trail-1",
        "192.168.5.a4",
        "a192.168.5.4",
        "192.168.5.4-trail",
        "192_168_5_4",
    ] {
        parse_str(&MINIMAL.replace("org-trail", good))
            .unwrap_or_else(|e| panic!("{good}: {}", e.render()));
    }
}

#[test]
fn the_log_archive_role_is_a_name_or_an_arn_in_the_log_archive_account() {
    let d = parse_str(MINIMAL).unwrap();
    assert_eq!(d.log_archive_role_arn(), None);
    let d = parse_str(&format!("{MINIMAL}[roles]\nlog_archive = \"LogReader\"\n")).unwrap();
    assert_eq!(
        d.log_archive_role_arn().as_deref(),
        Some("arn:aws:iam::222222222222:role/LogReader")
    );
    let arn = "arn:aws:iam::222222222222:role/path/LogReader";
    let d = parse_str(&format!("{MINIMAL}[roles]\nlog_archive = \"{arn}\"\n")).unwrap();
    assert_eq!(d.log_archive_role_arn().as_deref(), Some(arn));
    for (bad, needle) in [
        (
            "arn:aws:iam::111111111111:role/LogReader",
            "but accounts.log_archive is 222222222222",
        ),
        ("arn:aws-cn:iam::222222222222:role/LogReader", "partition"),
        (
            "arn:aws:iam::222222222222:user/LogReader",
            "not an IAM role ARN",
        ),
        ("Log Reader", "not a valid IAM role name"),
        ("", "not a valid IAM role name"),
    ] {
        let (field, message, hint) =
            config_error(&format!("{MINIMAL}[roles]\nlog_archive = \"{bad}\"\n"));
        assert_eq!(field.as_deref(), Some("roles.log_archive"), "{bad}");
        assert!(message.contains(needle), "{bad}: {message}");
        assert!(
            hint.contains("arn:aws:iam::222222222222:role/<name>"),
            "{bad}: {hint}"
        );
    }
}

#[test]
fn principals_are_compared_as_iam_compares_them() {
    let p = |arn: &str| Principal::parse(arn, "aws").unwrap();
    let siem = p("arn:aws:iam::444455556666:role/SIEM");
    assert!(siem.same_as(&p("arn:aws:iam::444455556666:role/siem")));
    assert!(siem.same_as(&p("arn:aws:iam::444455556666:role/tools/Siem")));
    assert!(!siem.same_as(&p("arn:aws:iam::444455556666:user/SIEM")));
    assert!(!siem.same_as(&p("arn:aws:iam::555566667777:role/SIEM")));
    assert!(!siem.same_as(&p("arn:aws:iam::444455556666:role/SIEM2")));
    let readers = Readers {
        accounts: Vec::new(),
        principals: vec![siem],
    };
    assert!(readers.covers(&p("arn:aws:iam::444455556666:role/siem")));
}

#[test]
fn config_tags_and_trailkeys_own_stay_within_kmss_fifty() {
    let tags = |n: usize| {
        (0..n)
            .map(|i| format!("t{i} = \"v\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ok = format!("{MINIMAL}[key]\ntags = {{ {} }}\n", tags(47));
    assert_eq!(
        parse(Path::new("t.toml"), ok.as_bytes())
            .unwrap()
            .tags
            .len(),
        49
    );
    let (field, message, hint) =
        config_error(&format!("{MINIMAL}[key]\ntags = {{ {} }}\n", tags(48)));
    assert_eq!(field.as_deref(), Some("key.tags"));
    assert!(
        message.contains("48 tags, with trailkey's own 3"),
        "{message}"
    );
    assert!(
        message.contains("make 51: over KMS's limit of 50"),
        "{message}"
    );
    assert!(hint.contains("at most 47 tags"), "{hint}");
}

#[test]
fn tags_follow_the_kms_rules() {
    for (tags, needle) in [
        ("{ \"aws:x\" = \"v\" }", "reserves"),
        ("{ \"AWS:x\" = \"v\" }", "reserves"),
        ("{ ManagedBy = \"v\" }", "set by trailkey"),
        ("{ \"trailkey:alias\" = \"v\" }", "set by trailkey"),
        ("{ \"trailkey:created\" = \"true\" }", "set by trailkey"),
        ("{ \"TrailKey:Created\" = \"true\" }", "set by trailkey"),
        ("{ \"trailkey:anything\" = \"v\" }", "set by trailkey"),
        ("{ \"a\\nb\" = \"v\" }", "may not contain"),
        ("{ k = \"semi;colon\" }", "may not contain"),
        ("{ \"\" = \"v\" }", "1-128"),
    ] {
        let (field, message, _) = config_error(&format!("{MINIMAL}[key]\ntags = {tags}\n"));
        assert!(field.unwrap().starts_with("key.tags."), "{tags}");
        assert!(message.contains(needle), "{tags}: {message}");
    }
}

#[test]
fn type_errors_get_a_hint_for_the_field() {
    let (field, message, hint) = config_error(&format!("{MINIMAL}[key]\ntags = [\"a\"]\n"));
    assert_eq!(field.as_deref(), Some("key.tags"));
    assert!(!message.contains("map"), "{message}");
    assert!(hint.contains("tags = {"), "{hint}");
    let (_, _, hint) = config_error(&format!("region = 1\n{MINIMAL}"));
    assert!(hint.contains("region = \"us-east-1\""), "{hint}");
}

#[test]
fn positions_count_characters_and_never_split_one() {
    // A multi-byte character before the error: the column is in characters.
    let (_, message, _) = config_error("# é ✓\nct_key_alias = \"é\" region = 1\n");
    assert!(message.contains("line 2, column 20"), "{message}");
    assert_eq!(floor_char_boundary("é", 1), 0);
    assert_eq!(floor_char_boundary("é", 99), 2);
}

#[test]
fn load_reads_no_more_than_the_limit() {
    let started = std::time::Instant::now();
    match load(Path::new("/dev/zero")) {
        Err(Error::Config { message, .. }) => assert!(message.contains("larger than")),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn an_empty_or_comment_only_file_says_so() {
    for text in ["", "\n\n", "# just a comment\n   # another\n"] {
        let (field, message, hint) = config_error(text);
        assert_eq!(field.as_deref(), Some("accounts"));
        assert!(message.contains("no settings"), "{message}");
        assert!(hint.contains("config/trailkey.example.toml"));
    }
}

#[test]
fn the_protection_exempts_trailkeys_role_by_name_with_any_path_and_the_admins() {
    let d = parse_str(&format!(
        "{MINIMAL}[key]\nprotect = true\nadmins = [\"arn:aws:iam::111111111111:user/breakglass\"]\n"
    ))
    .unwrap();
    assert_eq!(
        d.protect_exempt().unwrap(),
        [
            "arn:aws:iam::111111111111:role/AWSControlTowerExecution",
            "arn:aws:iam::111111111111:role/*/AWSControlTowerExecution",
            "arn:aws:iam::111111111111:user/breakglass",
        ]
    );
    // A role given by ARN with a path: exempt by its name all the same.
    let d = parse_str(&format!(
        "{MINIMAL}[roles]\nsecurity_tooling = \"arn:aws:iam::111111111111:role/ops/Trailkey\"\n[key]\nprotect = true\n"
    ))
    .unwrap();
    let exempt = d.protect_exempt().unwrap();
    assert!(crate::policy::protect_exempts(
        &exempt,
        "arn:aws:iam::111111111111:role/ops/Trailkey"
    ));
    assert!(!crate::policy::protect_exempts(
        &exempt,
        "arn:aws:iam::111111111111:role/ops/Other"
    ));
    assert_eq!(parse_str(MINIMAL).unwrap().protect_exempt(), None);
}

const CONTROL_TOWER: &str = "[accounts]\nsecurity_tooling = \"111111111111\"\nlog_archive = \"222222222222\"\nmanagement = \"333333333333\"\n[control_tower]\nlanding_zone = true\n";

#[test]
fn the_landing_zone_takes_control_towers_trail_and_a_key_in_the_management_account() {
    let d = parse_str(CONTROL_TOWER).unwrap();
    assert!(d.landing_zone);
    assert_eq!(d.trail, TrailRef::Name(CONTROL_TOWER_TRAIL.to_owned()));
    assert_eq!(d.key_account.as_str(), "333333333333");
    assert_eq!(d.security_tooling.as_str(), "111111111111");
    // Control Tower's trail by its ARN is the same trail.
    let by_arn = CONTROL_TOWER.replace(
        "[control_tower]",
        "[trail]\nname = \"arn:aws:cloudtrail:us-east-1:333333333333:trail/aws-controltower-BaselineCloudTrail\"\n[control_tower]",
    );
    assert!(parse_str(&by_arn).unwrap().landing_zone);
    // Off, or absent: today's key in Security Tooling.
    let off = MINIMAL.to_owned() + "[control_tower]\nlanding_zone = false\n";
    let d = parse_str(&off).unwrap();
    assert!(!d.landing_zone);
    assert_eq!(d.key_account.as_str(), "111111111111");
}

#[test]
fn with_the_landing_zone_the_protection_exempts_the_management_role_and_takes_admins_of_the_management_account()
 {
    let text = CONTROL_TOWER.to_owned()
        + "[roles]\nmanagement = \"arn:aws:iam::333333333333:role/ops/TrailkeyRunner\"\n\
           [key]\nprotect = true\nadmins = [\"arn:aws:iam::333333333333:role/BreakGlass\"]\n";
    let d = parse_str(&text).unwrap();
    let exempt = d.protect_exempt().unwrap();
    assert_eq!(
        exempt,
        [
            "arn:aws:iam::333333333333:role/TrailkeyRunner",
            "arn:aws:iam::333333333333:role/*/TrailkeyRunner",
            "arn:aws:iam::333333333333:role/BreakGlass",
        ]
    );
    let (field, message, _) = config_error(&text.replace(
        "role/BreakGlass",
        "role/BreakGlass\", \"arn:aws:iam::111111111111:role/Other",
    ));
    assert_eq!(field.as_deref(), Some("key.admins[1]"));
    assert!(message.contains("not the key's account"), "{message}");
}

#[test]
fn the_rotation_period_is_90_to_2560_days_with_rotation_on() {
    for days in [90, 365, 2560] {
        let d = parse_str(&format!("{MINIMAL}[key]\nrotation_period_days = {days}\n")).unwrap();
        assert_eq!(d.rotation_period_days, Some(days), "{days}");
        assert!(d.rotation);
    }
    assert_eq!(parse_str(MINIMAL).unwrap().rotation_period_days, None);
    for days in [
        "89",
        "2561",
        "0",
        "-365",
        "9223372036854775807",
        "-9223372036854775808",
    ] {
        let (field, message, hint) =
            config_error(&format!("{MINIMAL}[key]\nrotation_period_days = {days}\n"));
        assert_eq!(field.as_deref(), Some("key.rotation_period_days"), "{days}");
        assert!(
            message.starts_with(&format!("{days} days is outside")),
            "{message}"
        );
        assert!(hint.contains("from 90 to 2560"), "{hint}");
    }
    let (field, message, hint) = config_error(&format!(
        "{MINIMAL}[key]\nrotation = false\nrotation_period_days = 180\n"
    ));
    assert_eq!(field.as_deref(), Some("key.rotation_period_days"));
    assert!(message.contains("key.rotation = false"), "{message}");
    assert!(hint.contains("rotation = true"), "{hint}");
}

#[test]
fn a_rotation_period_that_is_not_a_whole_number_names_the_field() {
    for value in ["\"180\"", "180.5", "true", "1e3"] {
        let (field, _, hint) =
            config_error(&format!("{MINIMAL}[key]\nrotation_period_days = {value}\n"));
        assert_eq!(
            field.as_deref(),
            Some("key.rotation_period_days"),
            "{value}"
        );
        assert!(hint.contains("whole number of days"), "{value}: {hint}");
    }
}
