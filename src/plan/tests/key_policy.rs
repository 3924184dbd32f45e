//! The key policy trailkey writes: its statements merged with foreign ones,
//! the 32 KB limit, the trails that share the key, declared readers and the
//! key's protection.

use super::*;

// ---------------------------------------------------------------------------
// Foreign statements

#[test]
fn a_foreign_statement_survives_a_policy_update_after_ours() {
    let desired = config(true);
    let mut current = ours(&desired);
    // A foreign statement between ours, and one of ours missing.
    let list = current["Statement"].as_array_mut().unwrap();
    list.insert(2, third_party_statement());
    list.retain(|s| s["Sid"] != "TrailkeyCloudTrailDecrypt");
    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = policy::to_document(&current);

    let planned = plan(&desired, &observed).unwrap();
    let c = change(&planned, Address::KmsKeyPolicy);
    assert_eq!(c.action, Action::Update);
    let [Step::PutKeyPolicy(doc)] = c.steps.as_slice() else {
        panic!("{:?}", c.steps)
    };
    let sent: Value = serde_json::from_str(doc).unwrap();
    let mut expected = statements_of(&ours(&desired));
    expected.push(third_party_statement());
    assert_eq!(statements_of(&sent), expected);
    assert_eq!(statements_of(&c.after), expected);
    assert!(
        c.reasons
            .contains(&"+ statement TrailkeyCloudTrailDecrypt (missing)".to_owned())
    );
    assert_eq!(c.statements.as_ref().unwrap().kept, vec!["ThirdParty"]);
}

#[test]
fn policy_order_and_value_shape_do_not_count_but_a_value_does() {
    let desired = config(true);
    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = PolicyCase::Reformatted.text(&ours(&desired));
    assert!(!plan(&desired, &observed).unwrap().has_changes());

    let mut stale = ours(&desired);
    statement_mut(&mut stale, "TrailkeyLogReadersDecrypt")["Principal"]["AWS"][0] =
        json!("arn:aws:iam::999999999999:root");
    observed.key.as_mut().unwrap().policy = policy::to_document(&stale);
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(
        change(&planned, Address::KmsKeyPolicy).action,
        Action::Update
    );
}

/// A statement someone else named with trailkey's Sid prefix is replaced
/// like one of trailkey's: the plan removes it, and says why, loudly.
#[test]
fn a_foreign_statement_with_trailkeys_sid_prefix_is_removed_with_a_warning() {
    let (desired, mut observed) = converged();
    let mut policy = ours(&desired);
    policy["Statement"].as_array_mut().unwrap().push(json!({
        "Sid": "TrailkeySiemRead", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::777788889999:root"},
        "Action": "kms:Decrypt", "Resource": "*"
    }));
    observed.key.as_mut().unwrap().policy = policy.to_string();
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(ops(&planned), ["PutKeyPolicy"]);
    let diff = change(&planned, Address::KmsKeyPolicy)
        .statements
        .clone()
        .unwrap();
    assert_eq!(diff.removed, ["TrailkeySiemRead"]);
    let warning = planned
        .findings
        .iter()
        .find(|f| f.level == Level::Warning && f.message.contains("TrailkeySiemRead"))
        .expect("a warning");
    assert!(
        warning.message.contains("apply removes it"),
        "{}",
        warning.message
    );
    // trailkey's own optional statements, left over from an earlier config,
    // are removed without that warning.
    let policy = ours(&config_with("", "", READERS));
    observed.key.as_mut().unwrap().policy = policy.to_string();
    let planned = plan(&desired, &observed).unwrap();
    assert!(
        planned
            .findings
            .iter()
            .all(|f| !f.message.contains("reserves")),
        "{:?}",
        planned.findings
    );
}

// ---------------------------------------------------------------------------
// Size and shape of the current policy

/// The key's current policy: the KMS default plus a foreign statement
/// naming `readers` roles.
fn policy_with_readers(readers: usize) -> String {
    let principals: Vec<String> = (0..readers)
        .map(|i| format!("arn:aws:iam::444444444444:role/log-reader-{i:05}"))
        .collect();
    let mut big = third_party_statement();
    big["Principal"]["AWS"] = json!(principals);
    policy::to_document(&json!({
        "Version": "2012-10-17",
        "Statement": [kms_default_statement(), big]
    }))
}

#[test]
fn a_merged_policy_over_32_kb_is_an_error_and_one_just_under_is_not() {
    let desired = config(true);
    let ours = ours(&desired);
    let merged_size = |text: &str| {
        let current: Value = serde_json::from_str(text).unwrap();
        policy::to_document(&policy::merge(Some(&current), &ours)).len()
    };
    let fits = (0..)
        .take_while(|&n| merged_size(&policy_with_readers(n + 1)) <= policy::MAX_POLICY_BYTES)
        .last()
        .unwrap()
        + 1;
    let (_, mut observed) = converged();

    // The largest policy that fits is planned...
    observed.key.as_mut().unwrap().policy = policy_with_readers(fits);
    assert!(merged_size(&policy_with_readers(fits)) <= policy::MAX_POLICY_BYTES);
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(
        change(&planned, Address::KmsKeyPolicy).action,
        Action::Update
    );

    // ...one more reader is refused, although KMS accepts the current policy.
    let current = policy_with_readers(fits + 1);
    assert!(current.len() < policy::MAX_POLICY_BYTES, "KMS stores it");
    observed.key.as_mut().unwrap().policy = current;
    let e = plan_error(&desired, &observed);
    assert!(e.to_string().contains("32768"), "{e}");
    assert!(e.hint().contains("foreign statements"), "{}", e.hint());
}

/// The converged state with `n` more trails of the management account
/// using the key, and `current` as the key's policy.
fn sharing_the_key(n: usize, current: String) -> (Desired, Observed) {
    let (desired, mut observed) = converged();
    observed.other_trails = (0..n)
        .map(|i| trail_named(&format!("team-trail-{i:03}"), MANAGEMENT, Some(KEY_ARN)))
        .collect();
    observed.key.as_mut().unwrap().policy = current;
    (desired, observed)
}

#[test]
fn a_policy_over_32_kb_because_many_trails_share_the_key_says_so() {
    let small = policy_with_readers(1);
    // A hundred trails fit.
    let (desired, observed) = sharing_the_key(100, small.clone());
    plan(&desired, &observed).unwrap_or_else(|e| panic!("{}", e.render()));

    let (desired, observed) = sharing_the_key(200, small);
    let e = plan_error(&desired, &observed);
    let message = e.to_string();
    assert!(message.contains("KMS accepts at most 32768"), "{message}");
    assert!(
        message.contains("201 trails share the key; their ARNs in aws:SourceArn take "),
        "{message}"
    );
    assert!(
        message.contains("(each ARN is listed in 3 statements)"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "The other trails: arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/team-trail-000, "
        )),
        "{message}"
    );
    assert!(message.contains(" and 197 more."), "{message}");
    assert!(message.contains("2 foreign statements take "), "{message}");
    // The bytes it names are those of the policy: the ARN lists are most of it.
    let arn_bytes: usize = message
        .split("aws:SourceArn take ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!(arn_bytes > policy::MAX_POLICY_BYTES * 3 / 4, "{message}");
    assert!(
        e.hint().contains("use this key for fewer trails"),
        "{}",
        e.hint()
    );
    assert!(
        e.hint().contains("at a KMS key of their own"),
        "{}",
        e.hint()
    );
    assert!(!e.hint().contains("foreign statements"), "{}", e.hint());
}

#[test]
fn a_policy_over_32_kb_because_of_foreign_statements_blames_them_though_trails_share_the_key() {
    let desired = config(true);
    let ours = ours(&desired);
    // The first number of readers in a foreign statement that does not fit
    // next to trailkey's statements for one trail.
    let over = (1..)
        .find(|&n| {
            let current: Value = serde_json::from_str(&policy_with_readers(n)).unwrap();
            policy::to_document(&policy::merge(Some(&current), &ours)).len()
                > policy::MAX_POLICY_BYTES
        })
        .unwrap();
    let (desired, observed) = sharing_the_key(2, policy_with_readers(over + 20));
    let e = plan_error(&desired, &observed);
    let message = e.to_string();
    assert!(message.contains("2 foreign statements take "), "{message}");
    assert!(
        message.contains("of which the aws:SourceArn lists, naming 3 trails, take "),
        "{message}"
    );
    assert!(!message.contains("share the key"), "{message}");
    assert!(e.hint().contains("foreign statements"), "{}", e.hint());
    assert!(!e.hint().contains("fewer trails"), "{}", e.hint());
}

#[test]
fn a_current_policy_that_is_not_json_is_an_error() {
    let (desired, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = "{\"Version\": \"2012-10-17\", ".to_owned();
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("not valid JSON"), "{message}");
    assert!(message.contains(KEY_ARN), "{message}");
}

/// KMS stores whatever document it was given; one written compactly can hold
/// trailkey's statements and large foreign ones well under 32 KB.
#[test]
fn an_up_to_date_policy_that_kms_holds_is_never_refused_for_its_size() {
    let desired = config(true);
    let mut current = ours(&desired);
    let readers: Vec<String> = (0..600)
        .map(|i| format!("arn:aws:iam::444444444444:role/r{i:05}"))
        .collect();
    let mut big = third_party_statement();
    big["Principal"]["AWS"] = json!(readers);
    current["Statement"].as_array_mut().unwrap().push(big);
    let stored = current.to_string();
    assert!(stored.len() < policy::MAX_POLICY_BYTES, "KMS holds it");

    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = stored;
    let planned = plan(&desired, &observed).unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(change(&planned, Address::KmsKeyPolicy).action, Action::NoOp);
}

// ---------------------------------------------------------------------------
// Other trails on the key

fn trail_named(name: &str, account: &str, kms_key_id: Option<&str>) -> Trail {
    Trail {
        name: name.to_owned(),
        arn: format!("arn:aws:cloudtrail:us-east-1:{account}:trail/{name}"),
        kms_key_id: kms_key_id.map(str::to_owned),
        ..observed_without_key(None).trail
    }
}

fn source_arns(policy: &Value, sid: &str) -> Value {
    policy::statements(policy)
        .into_iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no {sid}"))["Condition"]["StringEquals"]["aws:SourceArn"]
        .clone()
}

#[test]
fn every_trail_that_uses_the_key_keeps_cloudtrails_permission() {
    let (desired, mut observed) = converged();
    let old = trail_named("old-trail", MANAGEMENT, Some(KEY_ARN));
    observed.other_trails = vec![
        old.clone(),
        // By the alias's ARN: the same key.
        trail_named(
            "alias-trail",
            MANAGEMENT,
            Some("arn:aws:kms:us-east-1:111111111111:alias/cloudtrail-org-key"),
        ),
        // A bare alias name or key ID on a management-account trail names
        // a key of that account: not granted.
        trail_named("bare-alias-trail", MANAGEMENT, Some(ALIAS)),
        trail_named("bare-id-trail", MANAGEMENT, Some(KEY_ID)),
        // The same alias name in another account: not ours.
        trail_named(
            "their-alias-trail",
            MANAGEMENT,
            Some("arn:aws:kms:us-east-1:555555555555:alias/cloudtrail-org-key"),
        ),
        // Another key, no key, another account: not ours to allow.
        trail_named("other-key-trail", MANAGEMENT, Some(OTHER_KEY_ARN)),
        trail_named("plain-trail", MANAGEMENT, None),
        trail_named("foreign-trail", "444444444444", Some(KEY_ARN)),
    ];
    let planned = plan(&desired, &observed).unwrap();
    let policy_change = change(&planned, Address::KmsKeyPolicy);
    assert_eq!(policy_change.action, Action::Update, "{policy_change:#?}");
    let alias_trail = "arn:aws:cloudtrail:us-east-1:333333333333:trail/alias-trail";
    for sid in [
        "TrailkeyCloudTrailEncrypt",
        "TrailkeyCloudTrailDescribeKey",
        "TrailkeyCloudTrailDecrypt",
    ] {
        assert_eq!(
            source_arns(&policy_change.after, sid),
            json!([TRAIL_ARN, old.arn, alias_trail]),
            "{sid}"
        );
    }
    let note = planned
        .findings
        .iter()
        .find(|f| f.message.contains("also use the key"))
        .expect("the plan names them and says why");
    assert!(note.message.contains(&old.arn) && note.message.contains(alias_trail));
    for not_granted in [
        "foreign-trail",
        "bare-alias-trail",
        "bare-id-trail",
        "their-alias-trail",
    ] {
        assert!(!note.message.contains(not_granted), "{}", note.message);
    }
    // The trail is not changed for them, nor is the key.
    assert!(!planned.changes(Address::TrailEncryption));

    // Applied: the policy holds them, and planning again changes nothing.
    let mut converged = observed.clone();
    converged.key.as_mut().unwrap().policy = policy::to_document(&policy_change.after);
    assert!(!plan(&desired, &converged).unwrap().has_changes());

    // Once the old trails use another key, the next plan drops them.
    converged.other_trails.retain(|t| t.name == "plain-trail");
    let later = plan(&desired, &converged).unwrap();
    let c = change(&later, Address::KmsKeyPolicy);
    assert_eq!(c.action, Action::Update);
    assert_eq!(
        source_arns(&c.after, "TrailkeyCloudTrailEncrypt"),
        json!(TRAIL_ARN)
    );
}

// ---------------------------------------------------------------------------
// Declared readers, key protection

fn statement<'p>(policy: &'p Value, sid: &str) -> Option<&'p Value> {
    policy::statements(policy)
        .into_iter()
        .find(|s| policy::sid(s) == Some(sid))
}

#[test]
fn declared_readers_get_their_own_statement_with_the_log_readers_condition() {
    let desired = config_with("", "", READERS);
    let ours = ours(&desired);
    let readers = statement(&ours, policy::READERS_SID).expect("the readers' statement");
    let log_readers = statement(&ours, "TrailkeyLogReadersDecrypt").unwrap();
    assert_eq!(
        readers["Principal"],
        json!({"AWS": ["arn:aws:iam::444455556666:root", "arn:aws:iam::777788889999:role/SIEM"]})
    );
    assert_eq!(readers["Action"], "kms:Decrypt");
    assert_eq!(readers["Condition"], log_readers["Condition"]);
    assert_eq!(readers["Effect"], "Allow");
    // Without readers, no such statement.
    assert!(statement(&cached_ours(), policy::READERS_SID).is_none());
}

#[test]
fn readers_added_changed_and_removed_keep_foreign_statements() {
    let (_, mut observed) = converged();
    let with_readers = config_with("", "", READERS);
    let without = config(true);
    let key = observed.key.as_mut().unwrap();
    let mut current: Value = serde_json::from_str(&key.policy).unwrap();
    current["Statement"]
        .as_array_mut()
        .unwrap()
        .push(third_party_statement());
    key.policy = current.to_string();

    // Added: one PutKeyPolicy, the new statement shown, the foreign one kept.
    let added = plan(&with_readers, &observed).unwrap();
    assert_eq!(ops(&added), ["PutKeyPolicy"]);
    let diff = change(&added, Address::KmsKeyPolicy)
        .statements
        .clone()
        .unwrap();
    assert_eq!(diff.added, [policy::READERS_SID]);
    let Step::PutKeyPolicy(doc) = added.steps().next().unwrap().1 else {
        unreachable!()
    };
    let sent: Value = serde_json::from_str(doc).unwrap();
    assert!(statement(&sent, "ThirdParty").is_some());

    // Removed from the config: only that statement goes.
    observed.key.as_mut().unwrap().policy = doc.clone();
    let removed = plan(&without, &observed).unwrap();
    let diff = change(&removed, Address::KmsKeyPolicy)
        .statements
        .clone()
        .unwrap();
    assert_eq!(diff.removed, [policy::READERS_SID]);
    let Step::PutKeyPolicy(doc) = removed.steps().next().unwrap().1 else {
        unreachable!()
    };
    let sent: Value = serde_json::from_str(doc).unwrap();
    assert!(statement(&sent, policy::READERS_SID).is_none());
    assert!(statement(&sent, "ThirdParty").is_some());
}

#[test]
fn readers_may_not_repeat_the_management_account_read_from_aws() {
    let desired = config_with(
        "",
        "",
        &format!("[readers]\nprincipals = [\"arn:aws:iam::{MANAGEMENT}:role/Audit\"]\n"),
    );
    let e = plan(&desired, &observed_without_key(None)).expect_err("refused");
    let text = e.render();
    assert!(text.contains("names the management account"), "{text}");
    assert!(matches!(e, Error::Config { .. }), "{text}");
}

#[test]
fn protect_denies_the_three_calls_to_all_but_trailkeys_role_and_the_admins() {
    let desired = config_with(
        "",
        &format!("protect = true\nadmins = [\"arn:aws:iam::{SECURITY_TOOLING}:role/BreakGlass\"]"),
        "",
    );
    let ours = ours(&desired);
    let protect = statement(&ours, policy::PROTECT_SID).expect("the protect statement");
    assert_eq!(protect["Effect"], "Deny");
    assert_eq!(protect["Principal"], json!({"AWS": "*"}));
    assert_eq!(
        protect["Action"],
        json!([
            "kms:DisableKey",
            "kms:ScheduleKeyDeletion",
            "kms:DisableKeyRotation"
        ])
    );
    let exempt: Vec<String> =
        serde_json::from_value(protect["Condition"]["ArnNotLike"]["aws:PrincipalArn"].clone())
            .unwrap();
    let role = format!("arn:aws:iam::{SECURITY_TOOLING}:role/AWSControlTowerExecution");
    for free in [
        role.clone(),
        format!("arn:aws:iam::{SECURITY_TOOLING}:role/some/path/AWSControlTowerExecution"),
        format!("arn:aws:iam::{SECURITY_TOOLING}:role/BreakGlass"),
    ] {
        assert!(policy::protect_exempts(&exempt, &free), "{free}");
    }
    for denied in [
        format!("arn:aws:iam::{SECURITY_TOOLING}:role/Developer"),
        format!("arn:aws:iam::{SECURITY_TOOLING}:role/xAWSControlTowerExecution"),
        format!("arn:aws:iam::{SECURITY_TOOLING}:root"),
        "arn:aws:iam::999999999999:role/AWSControlTowerExecution".to_owned(),
    ] {
        assert!(!policy::protect_exempts(&exempt, &denied), "{denied}");
    }
    // It never denies changing the policy: nobody is locked out.
    let actions = protect["Action"].to_string().to_ascii_lowercase();
    assert!(
        !actions.contains("putkeypolicy") && !actions.contains('*'),
        "{actions}"
    );

    // Turned off (or never set): the statement goes, foreign ones stay.
    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = policy::to_document(&ours);
    let off = plan(&config(true), &observed).unwrap();
    let diff = change(&off, Address::KmsKeyPolicy)
        .statements
        .clone()
        .unwrap();
    assert_eq!(diff.removed, [policy::PROTECT_SID]);
}

/// With `key.protect` and `key.rotation_period_days`, a second `Deny` keeps
/// the period: `kms:EnableKeyRotation` with another period or none, for all
/// but the exempt roles. Without either setting, no such statement; a
/// changed period changes it, as drift of trailkey's own statement.
#[test]
fn protect_with_a_rotation_period_denies_setting_another_period() {
    let both = config_with("", "protect = true\nrotation_period_days = 180", "");
    let ours_both = ours(&both);
    let period = statement(&ours_both, policy::PROTECT_PERIOD_SID).expect("the period statement");
    assert_eq!(period["Effect"], "Deny");
    assert_eq!(period["Action"], "kms:EnableKeyRotation");
    assert_eq!(
        period["Condition"]["NumericNotEqualsIfExists"],
        json!({"kms:RotationPeriodInDays": "180"})
    );
    let protect = statement(&ours_both, policy::PROTECT_SID).unwrap();
    assert_eq!(
        period["Condition"]["ArnNotLike"], protect["Condition"]["ArnNotLike"],
        "the same roles are exempt"
    );
    for (key, why) in [
        ("protect = true", "no period"),
        ("rotation_period_days = 180", "no protection"),
    ] {
        let desired = config_with("", key, "");
        assert!(
            statement(&ours(&desired), policy::PROTECT_PERIOD_SID).is_none(),
            "{why}"
        );
    }

    // Another period: the statement changes with it.
    let (_, mut observed) = converged();
    observed.key.as_mut().unwrap().policy = policy::to_document(&ours_both);
    let other = config_with("", "protect = true\nrotation_period_days = 90", "");
    let planned = plan(&other, &observed).unwrap();
    let diff = change(&planned, Address::KmsKeyPolicy)
        .statements
        .clone()
        .unwrap();
    let changed: Vec<&str> = diff.changed.iter().map(|c| c.sid.as_str()).collect();
    assert_eq!(changed, [policy::PROTECT_PERIOD_SID]);
}
