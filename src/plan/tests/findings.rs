//! What a plan reports but does not change: foreign denies, other keys, the
//! trail's health and settings, who else the key policy lets in.

use super::*;

/// The plan's warnings, in order.
fn warnings(planned: &Plan) -> Vec<&str> {
    planned
        .findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .map(|f| f.message.as_str())
        .collect()
}

/// The plan's findings of `level`, in order.
fn at_level(planned: &Plan, level: Level) -> Vec<&str> {
    planned
        .findings
        .iter()
        .filter(|f| f.level == level)
        .map(|f| f.message.as_str())
        .collect()
}

// ---------------------------------------------------------------------------
// Foreign denies

/// `converged()` with `extra` statements added to the key policy, planned.
fn planned_with_statements(extra: Vec<Value>) -> Plan {
    let (desired, mut observed) = converged();
    let mut policy = ours(&desired);
    policy["Statement"].as_array_mut().unwrap().extend(extra);
    observed.key.as_mut().unwrap().policy = policy.to_string();
    plan(&desired, &observed).unwrap()
}

fn deny(sid: &str, principal: Value, action: Value) -> Value {
    json!({"Sid": sid, "Effect": "Deny", "Principal": principal, "Action": action, "Resource": "*"})
}

#[test]
fn a_foreign_deny_that_breaks_delivery_is_an_error_not_a_change() {
    let cloudtrail = || json!({"Service": "cloudtrail.amazonaws.com"});
    let planned = planned_with_statements(vec![
        deny("NoTrail", cloudtrail(), json!("kms:GenerateDataKey*")),
        deny("NoReaders", json!({"AWS": LOG_ARCHIVE}), json!(["kms:*"])),
        deny("NoOne", json!("*"), json!("kms:Decrypt")),
        // Warnings only: CloudTrail's Decrypt (needed with an S3 Bucket
        // Key), the management account's, and a Deny under conditions.
        deny("NoTrailDecrypt", cloudtrail(), json!("kms:Decrypt")),
        deny(
            "NoManagement",
            json!({"AWS": format!("arn:aws:iam::{MANAGEMENT}:root")}),
            json!("kms:Decrypt"),
        ),
        {
            let mut d = deny(
                "NoTrailFromVpc",
                cloudtrail(),
                json!("kms:GenerateDataKey*"),
            );
            d["Condition"] = json!({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}});
            d
        },
        // Not blocking: another principal, or an action nobody needs.
        deny(
            "Unrelated",
            json!({"AWS": "arn:aws:iam::444444444444:root"}),
            json!("kms:*"),
        ),
        deny("NoDelete", json!("*"), json!("kms:ScheduleKeyDeletion")),
    ]);
    assert!(
        !planned.has_changes(),
        "trailkey never overrides a foreign statement"
    );
    let errors = at_level(&planned, Level::Error);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "statement \"NoTrail\" explicitly denies kms:GenerateDataKey to CloudTrail:"
        ),
        "{errors:#?}"
    );
    // The readers need kms:Decrypt only.
    assert!(errors[1].starts_with("statement \"NoReaders\" explicitly denies kms:Decrypt to the Log Archive account (222222222222):"), "{errors:#?}");
    assert!(errors[2].starts_with("statement \"NoOne\" explicitly denies kms:Decrypt to CloudTrail, the Log Archive account (222222222222) and the management account (333333333333):"), "{errors:#?}");
    assert!(errors.iter().all(|e| e.contains(&format!(
        "remove or narrow that statement in the key policy of {KEY_ARN}"
    ))));
    let warnings = warnings(&planned);
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(
        warnings[0].starts_with(
            "statement \"NoTrailDecrypt\" explicitly denies kms:Decrypt to CloudTrail:"
        ),
        "{warnings:#?}"
    );
    assert!(warnings[1].starts_with("statement \"NoManagement\" explicitly denies kms:Decrypt to the management account (333333333333):"), "{warnings:#?}");
    assert!(warnings[2].starts_with("statement \"NoTrailFromVpc\" may deny kms:GenerateDataKey to CloudTrail (under conditions trailkey does not evaluate):"), "{warnings:#?}");
    let broken = crate::plan::broken(&planned.findings).expect("an error");
    assert!(
        broken.to_string().contains("\"NoTrail\"") && broken.to_string().contains("\"NoOne\""),
        "{broken}"
    );
    assert!(broken.hint().contains("remove the foreign statement"));
    let note = at_level(&planned, Level::Note);
    assert!(
        note[0].contains("\"NoTrail\", \"NoReaders\", \"NoOne\", \"NoTrailDecrypt\", \"NoManagement\", \"NoTrailFromVpc\", \"Unrelated\", \"NoDelete\""),
        "{note:?}"
    );
}

/// `NotPrincipal`, `NotAction` and `NotResource` deny everything except
/// what they list; `Resource` limits a Deny to the keys it names.
#[test]
fn foreign_denies_read_not_elements_and_resources_as_iam_does() {
    let cloudtrail = || json!({"Service": "cloudtrail.amazonaws.com"});
    let level_of = |statement: Value| -> Vec<(Level, String)> {
        planned_with_statements(vec![statement])
            .findings
            .into_iter()
            .filter(|f| f.level != Level::Note)
            .map(|f| (f.level, f.message))
            .collect()
    };
    let with = |mut d: Value, field: &str, value: Value| {
        if field.starts_with("Not") {
            d.as_object_mut()
                .unwrap()
                .remove(field.trim_start_matches("Not"));
        }
        d[field] = value;
        d
    };
    let encrypt = || deny("D", cloudtrail(), json!("kms:GenerateDataKey*"));

    // NotPrincipal exempting CloudTrail: CloudTrail may encrypt, and the
    // readers do not need kms:GenerateDataKey*.
    assert_eq!(level_of(with(encrypt(), "NotPrincipal", cloudtrail())), []);
    // NotPrincipal exempting someone else: CloudTrail is denied.
    let f = level_of(with(
        encrypt(),
        "NotPrincipal",
        json!({"AWS": format!("arn:aws:iam::{SECURITY_TOOLING}:root")}),
    ));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, Level::Error);
    assert!(
        f[0].1.contains("denies kms:GenerateDataKey to CloudTrail"),
        "{f:#?}"
    );
    // NotPrincipal naming a role of the Log Archive account but not the
    // account: the account is still denied ("you must also specify the
    // account ARN").
    let decrypt = || deny("D", json!("*"), json!("kms:Decrypt"));
    let role = format!("arn:aws:iam::{LOG_ARCHIVE}:role/Reader");
    let f = level_of(with(
        decrypt(),
        "NotPrincipal",
        json!({"AWS": [role], "Service": "cloudtrail.amazonaws.com"}),
    ));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].1.contains(
            "kms:Decrypt to the Log Archive account (222222222222) and the management account"
        ),
        "{f:#?}"
    );
    let f = level_of(with(
        decrypt(),
        "NotPrincipal",
        json!({"AWS": [LOG_ARCHIVE, MANAGEMENT], "Service": "cloudtrail.amazonaws.com"}),
    ));
    assert_eq!(f, []);

    // NotAction excluding GenerateDataKey*: CloudTrail may still encrypt;
    // its DescribeKey and Decrypt are denied (warning).
    let f = level_of(with(
        encrypt(),
        "NotAction",
        json!(["kms:GenerateDataKey*"]),
    ));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, Level::Warning);
    assert!(
        f[0].1
            .contains("explicitly denies kms:DescribeKey, kms:Decrypt to CloudTrail:"),
        "{f:#?}"
    );
    assert_eq!(level_of(with(encrypt(), "NotAction", json!(["kms:*"]))), []);

    // Resource naming another key: not this key's statement.
    let other = "arn:aws:kms:us-east-1:111111111111:key/0000aaaa-0000-4000-8000-00000000ffff";
    assert_eq!(level_of(with(encrypt(), "Resource", json!(other))), []);
    assert_eq!(
        level_of(with(
            encrypt(),
            "Resource",
            json!("arn:aws:kms:us-east-1:111111111111:alias/*")
        )),
        []
    );
    // Resource naming this key, exactly or by a pattern: it counts.
    for named in [
        json!(KEY_ARN),
        json!([other, KEY_ARN]),
        json!("arn:aws:kms:*:111111111111:key/*"),
        json!("arn:aws:kms:us-east-1:111111111111:key/1234abcd-*"),
    ] {
        let f = level_of(with(encrypt(), "Resource", named.clone()));
        assert_eq!(
            f.iter().map(|f| f.0).collect::<Vec<_>>(),
            [Level::Error],
            "{named}: {f:#?}"
        );
    }
    // NotResource: every key but those listed.
    assert_eq!(level_of(with(encrypt(), "NotResource", json!(KEY_ARN))), []);
    assert_eq!(level_of(with(encrypt(), "NotResource", json!("*"))), []);
    let f = level_of(with(encrypt(), "NotResource", json!(other)));
    assert_eq!(f.iter().map(|f| f.0).collect::<Vec<_>>(), [Level::Error]);

    // Conditions on aws:SourceArn alone are evaluated for the trail.
    let on_source = |op: &str, arn: &str| {
        let mut d = encrypt();
        d["Condition"] = json!({op: {"aws:SourceArn": arn}});
        level_of(d).into_iter().map(|f| f.0).collect::<Vec<_>>()
    };
    assert_eq!(on_source("StringEquals", TRAIL_ARN), [Level::Error]);
    assert_eq!(
        on_source("ArnLike", "arn:aws:cloudtrail:*:333333333333:trail/*"),
        [Level::Error]
    );
    assert_eq!(on_source("StringEquals", OTHER_TRAIL_ARN), []);
    assert_eq!(on_source("StringNotEquals", TRAIL_ARN), []);
    assert_eq!(on_source("StringNotLike", OTHER_TRAIL_ARN), [Level::Error]);
    assert_eq!(
        on_source("StringEqualsIfExists", TRAIL_ARN),
        [Level::Warning]
    );
}

#[test]
fn a_foreign_deny_on_a_declared_reader_is_a_warning_not_a_change() {
    let (_, mut observed) = converged();
    let desired = config_with("", "", READERS);
    let deny = |sid: &str, principal: &str, action: &str| json!({"Sid": sid, "Effect": "Deny", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"});
    let mut policy = ours(&desired);
    let list = policy["Statement"].as_array_mut().unwrap();
    list.push(deny(
        "NoSiem",
        "arn:aws:iam::777788889999:role/SIEM",
        "kms:Decrypt",
    ));
    // An account's root, here as a bare ID, stands for all its principals.
    list.push(deny("NoSiemAccount", "777788889999", "kms:*"));
    list.push(deny(
        "NoReaderAccount",
        "arn:aws:iam::444455556666:root",
        "kms:Decrypt",
    ));
    // Not blocking: another role of the reader's account.
    list.push(deny(
        "NoOther",
        "arn:aws:iam::777788889999:role/Other",
        "kms:Decrypt",
    ));
    observed.key.as_mut().unwrap().policy = policy.to_string();

    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes(), "{:?}", ops(&planned));
    let warnings = warnings(&planned);
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].starts_with("statement \"NoSiem\" explicitly denies kms:Decrypt to the declared reader (arn:aws:iam::777788889999:role/SIEM)"), "{warnings:#?}");
    assert!(warnings[1].contains("\"NoSiemAccount\" explicitly denies kms:Decrypt to the declared reader (arn:aws:iam::777788889999:role/SIEM)"), "{warnings:#?}");
    assert!(warnings[2].contains("\"NoReaderAccount\" explicitly denies kms:Decrypt to the declared reader account (444455556666)"), "{warnings:#?}");
}

// ---------------------------------------------------------------------------
// Other keys, the bucket, the trail

#[test]
fn other_trailkey_keys_for_the_alias_are_reported_and_left_alone() {
    let (desired, mut observed) = converged();
    observed.other_keys.push(KeyInfo {
        key_id: OTHER_KEY_ID.to_owned(),
        arn: OTHER_KEY_ARN.to_owned(),
        ..key_info("Enabled")
    });
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    assert!(planned.steps().next().is_none());
    let f = &planned.findings[0];
    assert_eq!(f.level, Level::Warning);
    assert!(
        f.message.contains(OTHER_KEY_ARN)
            && f.message.contains(&format!("trailkey uses {KEY_ARN}"))
    );
}

#[test]
fn an_unreadable_bucket_region_is_a_note_not_an_error() {
    let (desired, mut observed) = converged();
    observed.bucket_region = Err("AccessDenied: Access Denied".to_owned());
    let planned = plan(&desired, &observed).unwrap();
    assert!(planned.findings.iter().any(|f| {
        f.level == Level::Note
            && f.message
                .contains("could not be read (AccessDenied: Access Denied)")
    }));
}

#[test]
fn delivery_errors_and_a_stopped_trail_are_warnings_with_their_meaning() {
    let (desired, mut observed) = converged();
    observed.trail_status = crate::aws::TrailStatus {
        is_logging: false,
        latest_delivery_error: Some("InsufficientEncryptionPolicyException: KMS".to_owned()),
        latest_digest_delivery_error: Some("AccessDenied".to_owned()),
        ..Default::default()
    };
    let planned = plan(&desired, &observed).unwrap();
    let warnings = warnings(&planned);
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].contains("is not logging") && warnings[0].contains("start-logging"));
    assert!(
        warnings[1].contains("latest log file delivery failed")
            && warnings[1].contains("could not use the KMS key")
    );
    assert!(
        warnings[2].contains("latest digest file delivery failed")
            && warnings[2].contains("bucket policy")
    );
}

#[test]
fn unset_validation_that_is_off_is_a_warning_false_is_silent_and_nothing_changes() {
    let (_, observed) = converged();
    let off = validation_off(observed);
    let warned = |desired: &Desired| {
        let planned = plan(desired, &off).unwrap();
        assert!(!planned.has_changes(), "{planned:?}");
        assert!(
            planned
                .changes
                .iter()
                .all(|c| c.address != Address::TrailLogFileValidation),
            "not managed"
        );
        planned
            .findings
            .iter()
            .filter(|f| f.message.starts_with("log-file validation is off"))
            .map(|f| f.level)
            .collect::<Vec<_>>()
    };
    assert_eq!(warned(&config(true)), [Level::Warning]);
    let kept_off = config_with("log_file_validation = false", "", "");
    assert_eq!(warned(&kept_off), Vec::<Level>::new());
}

#[test]
fn a_trail_that_is_not_multi_region_is_a_warning_and_nothing_changes() {
    let (desired, mut observed) = converged();
    observed.trail.is_multi_region_trail = false;
    let planned = plan(&desired, &observed).unwrap();
    assert!(!planned.has_changes());
    let f: Vec<&Finding> = planned
        .findings
        .iter()
        .filter(|f| f.message.contains("is not multi-Region"))
        .collect();
    assert_eq!(f.len(), 1, "{:?}", planned.findings);
    assert_eq!(f[0].level, Level::Warning);
    assert!(f[0].message.contains("CIS AWS Foundations 3.1"));
}

// ---------------------------------------------------------------------------
// Who else the key policy lets in

fn exposure(desired: &Desired, observed: &Observed) -> Vec<String> {
    let planned = plan(desired, observed).unwrap();
    warnings(&planned)
        .into_iter()
        .filter(|w| w.contains("decrypt with the key or manage it"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_statement_that_opens_the_key_to_anyone_is_a_warning() {
    for principal in [json!("*"), json!({"AWS": "*"})] {
        let (d, o) = converged_with(grant("Public", principal.clone(), "kms:Decrypt", None));
        let w = exposure(&d, &o);
        assert_eq!(w.len(), 1, "{principal}: {w:?}");
        assert!(w[0].contains("\"Public\" lets anyone"), "{w:?}");
        // Narrowed to the organization, or to a known account: not anyone.
        let org = json!({"StringEquals": {"aws:PrincipalOrgID": o.organization.id}});
        let (d, o) = converged_with(grant(
            "OrgOnly",
            principal.clone(),
            "kms:Decrypt",
            Some(org),
        ));
        assert!(exposure(&d, &o).is_empty());
        let caller = json!({"StringEquals": {"kms:CallerAccount": "222222222222"}});
        let (d, o) = converged_with(grant("LogArchive", principal, "kms:*", Some(caller)));
        assert!(exposure(&d, &o).is_empty());
    }
    // NotPrincipal in an Allow lets in everyone else.
    let mut s = grant("AllBut", json!({"AWS": "*"}), "kms:Decrypt", None);
    s.as_object_mut().unwrap().remove("Principal");
    s["NotPrincipal"] = json!({"AWS": "arn:aws:iam::999999999999:root"});
    let (d, o) = converged_with(s);
    assert_eq!(exposure(&d, &o).len(), 1);
}

#[test]
fn an_account_outside_the_organization_is_a_warning_once_the_accounts_are_read() {
    let outside = json!({"AWS": "arn:aws:iam::666666666666:root"});
    let (d, mut o) = converged_with(grant("Backdoor", outside, "kms:*", None));
    assert!(
        crate::exposure::needs_accounts(&d, &o),
        "an account trailkey does not know"
    );
    o.organization_accounts =
        OnDemand::Read(vec!["333333333333".to_owned(), "444455556666".to_owned()]);
    assert!(!crate::exposure::needs_accounts(&d, &o));
    let w = exposure(&d, &o);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("\"Backdoor\" lets arn:aws:iam::666666666666:root, of account 666666666666, outside the organization"), "{w:?}");
    // An account of the organization, without [readers]: fine.
    let inside = json!({"AWS": "arn:aws:iam::444455556666:role/SIEM"});
    let (d, mut o) = converged_with(grant("Siem", inside, "kms:Decrypt", None));
    o.organization_accounts = OnDemand::Read(vec!["444455556666".to_owned()]);
    assert!(exposure(&d, &o).is_empty());
    // What only describes or encrypts is not decrypting or managing.
    let (d, o) = converged_with(grant("Describe", json!("*"), "kms:DescribeKey", None));
    assert!(exposure(&d, &o).is_empty());
    assert!(!crate::exposure::needs_accounts(&d, &o));
    // A NotAction that leaves kms:Decrypt in.
    let mut s = grant(
        "Most",
        json!({"AWS": "arn:aws:iam::666666666666:root"}),
        "x",
        None,
    );
    s.as_object_mut().unwrap().remove("Action");
    s["NotAction"] = json!(["kms:PutKeyPolicy"]);
    let (d, mut o) = converged_with(s);
    o.organization_accounts = OnDemand::Read(Vec::new());
    assert_eq!(exposure(&d, &o).len(), 1);
}

#[test]
fn with_readers_declared_an_undeclared_principal_is_a_warning() {
    let text = "region = \"us-east-1\"\n[accounts]\nsecurity_tooling = \"111111111111\"\nlog_archive = \"222222222222\"\n[trail]\nname = \"org-trail\"\n[readers]\nprincipals = [\"arn:aws:iam::444455556666:role/SIEM\"]\n";
    let desired = crate::config::parse(std::path::Path::new("t.toml"), text.as_bytes()).unwrap();
    let (_, mut observed) = converged_with(grant(
        "Other",
        json!({"AWS": "arn:aws:iam::444455556666:role/Analyst"}),
        "kms:Decrypt",
        None,
    ));
    observed.organization_accounts = OnDemand::Read(vec!["444455556666".to_owned()]);
    let w: Vec<String> = plan(&desired, &observed)
        .unwrap()
        .findings
        .iter()
        .filter(|f| f.message.contains("decrypt with the key or manage it"))
        .map(|f| f.message.clone())
        .collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("neither one of trailkey's principals nor a declared reader"),
        "{w:?}"
    );
    // The declared reader, by any case of its name, is fine.
    let (_, mut observed) = converged_with(grant(
        "Siem",
        json!({"AWS": "arn:aws:iam::444455556666:role/siem"}),
        "kms:Decrypt",
        None,
    ));
    observed.organization_accounts = OnDemand::Read(vec!["444455556666".to_owned()]);
    assert!(
        plan(&desired, &observed)
            .unwrap()
            .findings
            .iter()
            .all(|f| !f.message.contains("decrypt with the key or manage it"))
    );
}
