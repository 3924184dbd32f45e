use super::*;

fn acct(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

fn ours() -> Value {
    render(&PolicyInputs {
        partition: "aws",
        key_account: &acct("111111111111"),
        management: "333333333333",
        log_archive: &acct("222222222222"),
        trail_arn: "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail",
        readers: Vec::new(),
        protect_exempt: None,
        protect_period: None,
        control_tower: None,
    })
}

#[test]
fn render_fills_every_placeholder() {
    let text = ours().to_string();
    assert!(!text.contains("${"), "{text}");
    assert!(text.contains("arn:aws:iam::111111111111:root"));
    assert!(text.contains("arn:aws:iam::222222222222:root"));
    assert!(text.contains("arn:aws:iam::333333333333:root"));
    assert!(text.contains("arn:aws:cloudtrail:*:333333333333:trail/*"));
    assert!(text.contains(
        "\"aws:SourceArn\":\"arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail\""
    ));
    assert!(statements(&ours()).iter().all(|s| is_ours(s)));
}

#[test]
fn merge_keeps_foreign_statements_in_order_and_replaces_ours() {
    let current = json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "TrailkeyLogReadersDecrypt", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "kms:Decrypt", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444444444444:root"}, "Action": "kms:Encrypt", "Resource": "*"}
        ]
    });
    let merged = merge(Some(&current), &ours());
    let sids: Vec<_> = statements(&merged).iter().map(|s| sid(s)).collect();
    assert_eq!(
        sids,
        vec![
            Some("TrailkeyRootAdministration"),
            Some("TrailkeyCloudTrailEncrypt"),
            Some("TrailkeyCloudTrailDescribeKey"),
            Some("TrailkeyCloudTrailDecrypt"),
            Some("TrailkeyLogReadersDecrypt"),
            Some("Enable IAM User Permissions"),
            None,
        ]
    );
    assert_eq!(merged["Id"], "key-default-1");
    let d = diff(Some(&current), &merged, "aws");
    let changed: Vec<&str> = d.changed.iter().map(|c| c.sid.as_str()).collect();
    assert_eq!(changed, vec!["TrailkeyLogReadersDecrypt"]);
    assert_eq!(d.added.len(), 4);
    assert_eq!(d.kept, vec!["Enable IAM User Permissions", "(no Sid)"]);
    assert!(!equivalent(&current, &merged, "aws"));
    // Merging again changes nothing.
    assert!(equivalent(&merge(Some(&merged), &ours()), &merged, "aws"));
}

#[test]
fn normalize_ignores_order_shape_and_account_id_form() {
    let a = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "A", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::222222222222:root", "333333333333"]},
         "Action": ["kms:Decrypt"], "Resource": "*",
         "Condition": {"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}}},
        {"Sid": "B", "Effect": "Allow", "Principal": "*", "Action": "kms:DescribeKey", "Resource": ["*"]}
    ]});
    let b = json!({"Statement": [
            {"Resource": "*", "Action": "kms:DescribeKey", "Effect": "Allow", "Principal": {"AWS": "*"}, "Sid": "B"},
            {"Condition": {"Null": {"kms:encryptioncontext:aws:cloudtrail:arn": ["false"]}}, "Resource": ["*"],
             "Action": "KMS:Decrypt", "Principal": {"AWS": ["arn:aws:iam::333333333333:root", "222222222222"]},
             "Effect": "Allow", "Sid": "A"}
        ], "Version": "2012-10-17", "Id": "other"});
    assert!(equivalent(&a, &b, "aws"));
    let mut c = b.clone();
    c["Statement"][1]["Principal"]["AWS"][0] = json!("arn:aws:iam::444444444444:root");
    assert!(!equivalent(&a, &c, "aws"));
}

/// KMS returns policies pretty-printed with its own spacing, and IAM
/// may show a principal in the account-ID form.
#[test]
fn a_policy_as_kms_returns_it_equals_the_one_sent() {
    let sent = ours();
    let returned = to_document(&sent)
        .replace("\n", "\r\n")
        .replace("  ", "    ")
        .replace("\"arn:aws:iam::111111111111:root\"", "\"111111111111\"");
    let returned: Value = serde_json::from_str(&returned).unwrap();
    assert_ne!(returned, sent);
    assert!(equivalent(&returned, &sent, "aws"));
    // A deleted role shows as an opaque principal ID: that is a difference.
    let mut rewritten = sent.clone();
    rewritten["Statement"][4]["Principal"]["AWS"][0] = json!("AROAEXAMPLEID1234567");
    assert!(!equivalent(&rewritten, &sent, "aws"));
}

#[test]
fn field_changes_show_whole_lists_before_and_after() {
    let before = normalize_statement(
        &json!({"Sid": "X", "Principal": {"AWS": ["arn:aws:iam::222222222222:root", "333333333333"]},
                    "Condition": {"StringEquals": {"aws:SourceArn": "arn:a"}}}),
        "aws",
    );
    let after = normalize_statement(
        &json!({"Sid": "X", "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
                    "Condition": {"StringEquals": {"aws:SourceArn": "arn:b"}}}),
        "aws",
    );
    let changes = field_changes(&before, &after);
    let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        ["Condition.StringEquals.aws:sourcearn", "Principal.AWS"]
    );
    assert_eq!(changes[0].before, json!(["arn:a"]));
    assert_eq!(changes[0].after, json!(["arn:b"]));
    assert_eq!(
        changes[1].before,
        json!([
            "arn:aws:iam::222222222222:root",
            "arn:aws:iam::333333333333:root"
        ])
    );
}

#[test]
fn field_changes_name_fields_added_removed_or_of_another_type() {
    let before = json!({"Sid": "X", "Effect": "Allow", "Condition": {"Bool": {"a": ["true"]}}});
    let after = json!({"Sid": "X", "Effect": "Deny", "Condition": "odd", "Resource": ["*"]});
    let changes = field_changes(&before, &after);
    let seen: Vec<(&str, &Value, &Value)> = changes
        .iter()
        .map(|c| (c.path.as_str(), &c.before, &c.after))
        .collect();
    assert_eq!(
        seen,
        [
            ("Condition", &before["Condition"], &json!("odd")),
            ("Effect", &json!("Allow"), &json!("Deny")),
            ("Resource", &Value::Null, &json!(["*"])),
        ]
    );
    assert!(field_changes(&after, &after).is_empty());
}

#[test]
fn iam_wildcards_match_like_iam() {
    assert!(wildcard_match("kms:*", "kms:decrypt"));
    assert!(wildcard_match(
        "kms:generatedatakey*",
        "kms:generatedatakey"
    ));
    assert!(wildcard_match("*", "kms:describekey"));
    assert!(wildcard_match("kms:de?rypt", "kms:decrypt"));
    assert!(!wildcard_match("kms:encrypt", "kms:decrypt"));
    assert!(!wildcard_match("s3:*", "kms:decrypt"));
    assert!(wildcard_match("**?*", "k"));
    assert!(!wildcard_match("*?", ""));
    assert!(wildcard_match("", ""));
    assert!(!wildcard_match("", "k"));
}

/// The plain definition of the wildcards, by backtracking: exponential,
/// so only for the short strings of the property below.
fn reference_match(p: &[char], t: &[char]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some('*'), _) => {
            reference_match(&p[1..], t) || (!t.is_empty() && reference_match(p, &t[1..]))
        }
        (Some('?'), Some(_)) => reference_match(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => reference_match(&p[1..], &t[1..]),
        _ => false,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(4096))]
    /// Small alphabets, so that stars, `?` and letters meet often.
    #[test]
    fn wildcard_match_agrees_with_the_reference(
        pattern in "[ab*?é]{0,12}",
        text in "[abé]{0,12}",
    ) {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        proptest::prop_assert_eq!(
            wildcard_match(&pattern, &text),
            reference_match(&chars(&pattern), &chars(&text)),
            "pattern {:?} text {:?}", pattern, text
        );
    }
}

fn hostile_deny(action: String) -> Value {
    json!({"Sid": "Hostile", "Effect": "Deny",
               "Principal": {"Service": "cloudtrail.amazonaws.com"},
               "Action": [action], "Resource": "*"})
}

const KEY: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail";
const LOG_ARCHIVE: Reader<'static> = Reader {
    arn: "arn:aws:iam::222222222222:root",
    what: "the Log Archive account",
    essential: true,
};

/// The messages of [`blocking_denies`] for the key [`KEY`], with the
/// Log Archive account as the only reader.
fn denies(policy: &Value) -> Vec<String> {
    blocking_denies(policy, "aws", KeyArn::Known(KEY), TRAIL, &[LOG_ARCHIVE])
        .into_iter()
        .map(|d| d.message)
        .collect()
}

fn with_statements(extra: Vec<Value>) -> Value {
    let mut policy = ours();
    policy["Statement"].as_array_mut().unwrap().extend(extra);
    policy
}

/// A foreign Deny whose action has 30 wildcards before a letter no
/// action ends with: a backtracking matcher tries every way to split
/// each needed action among the stars, and never finishes.
#[test]
fn thirty_wildcards_in_a_foreign_deny_are_matched_at_once() {
    let action = format!("kms:{}q", "*".repeat(30));
    let policy = with_statements(vec![hostile_deny(action)]);
    assert_eq!(denies(&policy), Vec::<String>::new());
    // The same stars before a letter the actions do end with: a match.
    let policy = with_statements(vec![hostile_deny(format!("kms:{}y", "*".repeat(30)))]);
    let denies = denies(&policy);
    assert_eq!(denies.len(), 1, "{denies:?}");
    assert!(denies[0].contains("kms:DescribeKey"), "{denies:?}");
    assert!(!denies[0].contains("kms:Decrypt"), "{denies:?}");
}

/// A key not created yet is named only by `*` or a pattern that matches
/// every key of the account and Region.
#[test]
fn a_new_key_is_named_only_by_patterns_for_every_key_of_the_account() {
    let new = KeyArn::New {
        prefix: "arn:aws:kms:us-east-1:111111111111:key/",
    };
    for every in [
        "*",
        "arn:aws:kms:us-east-1:111111111111:key/*",
        "arn:aws:kms:*:111111111111:*",
        "arn:aws:kms:us-east-1:111111111111:k*",
        "arn:aws:kms:*",
    ] {
        assert!(resource_matches(every, new), "{every}");
    }
    for some in [
        KEY,
        "arn:aws:kms:us-east-1:111111111111:key/1234*",
        "arn:aws:kms:us-east-1:111111111111:alias/*",
        "arn:aws:kms:us-east-1:444444444444:key/*",
        "arn:aws:kms:eu-west-1:111111111111:key/*",
    ] {
        assert!(!resource_matches(some, new), "{some}");
    }
    // An existing key: its ARN, part by part.
    assert!(resource_matches(
        "arn:aws:kms:*:111111111111:key/*",
        KeyArn::Known(KEY)
    ));
    assert!(!resource_matches(
        "arn:aws:kms:*:*:key/0000*",
        KeyArn::Known(KEY)
    ));
    // A Deny whose Resource names another key does not count, one that
    // names this key or every key of the account does.
    let mut deny = hostile_deny("kms:GenerateDataKey*".into());
    deny["Resource"] = json!("arn:aws:kms:us-east-1:111111111111:key/0000*");
    let policy = with_statements(vec![deny.clone()]);
    let found = |key| blocking_denies(&policy, "aws", key, TRAIL, &[LOG_ARCHIVE]);
    assert_eq!(found(new), []);
    assert_eq!(found(KeyArn::Known(KEY)), []);
    deny["Resource"] = json!("arn:aws:kms:us-east-1:111111111111:key/*");
    let policy = with_statements(vec![deny]);
    let found = |key| blocking_denies(&policy, "aws", key, TRAIL, &[LOG_ARCHIVE]);
    assert!(found(new)[0].breaks_delivery);
    assert!(found(KeyArn::Known(KEY))[0].breaks_delivery);
}

/// `NotPrincipal` exempts what it lists; the Log Archive account is
/// exempt only by its root, not by one of its roles.
#[test]
fn not_principal_exempts_only_what_it_lists() {
    let mut deny = json!({"Sid": "D", "Effect": "Deny", "Action": "kms:*", "Resource": "*",
            "NotPrincipal": {"Service": "cloudtrail.amazonaws.com"}});
    let found = |deny: &Value| {
        blocking_denies(
            &with_statements(vec![deny.clone()]),
            "aws",
            KeyArn::Known(KEY),
            TRAIL,
            &[LOG_ARCHIVE],
        )
    };
    let f = found(&deny);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].message.starts_with("statement \"D\" explicitly denies kms:Decrypt to the Log Archive account (222222222222):"), "{f:?}");
    assert!(f[0].breaks_delivery);
    deny["NotPrincipal"]["AWS"] = json!("arn:aws:iam::222222222222:role/Reader");
    assert_eq!(found(&deny).len(), 1);
    deny["NotPrincipal"]["AWS"] = json!("222222222222");
    assert_eq!(found(&deny), []);
    // Without CloudTrail in it, CloudTrail is denied too.
    deny["NotPrincipal"] = json!({"AWS": "222222222222"});
    let f = found(&deny);
    assert!(
        f[0].message.contains(
            "explicitly denies kms:GenerateDataKey, kms:DescribeKey, kms:Decrypt to CloudTrail:"
        ),
        "{f:?}"
    );
    assert!(f[0].breaks_delivery);
}

/// A policy close to KMS's 32 KB limit, with 1,000 wildcards in one
/// action and more in the statements that fill it.
pub(crate) fn near_limit_policy_with_wildcards() -> Value {
    let mut extra = vec![hostile_deny(format!("kms:{}q", "*".repeat(1000)))];
    let mut i = 0;
    while to_document(&with_statements(extra.clone())).len() < MAX_POLICY_BYTES - 400 {
        extra.push(hostile_deny(format!("kms:{}?{i}", "*?".repeat(20))));
        i += 1;
    }
    with_statements(extra)
}

#[test]
fn a_thousand_wildcards_in_a_policy_near_the_size_limit_are_matched_at_once() {
    let policy = near_limit_policy_with_wildcards();
    let size = to_document(&policy).len();
    assert!(
        size > MAX_POLICY_BYTES - 1024 && size <= MAX_POLICY_BYTES,
        "{size}"
    );
    assert_eq!(denies(&policy), Vec::<String>::new());
    assert!(equivalent(&policy, &policy.clone(), "aws"));
    let d = diff(Some(&policy), &merge(Some(&policy), &ours()), "aws");
    assert!(d.is_empty(), "{d:?}");
}

/// Key order inside statements never matters, though serde_json keeps
/// it (`preserve_order`).
#[test]
fn key_order_inside_statements_does_not_count() {
    let a: Value = serde_json::from_str(
            r#"{"Statement": [
                {"Sid": "B", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Principal": {"AWS": "*"}},
                {"Sid": "A", "Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", "Principal": {"AWS": "*"}}
            ]}"#,
        )
        .unwrap();
    let b: Value = serde_json::from_str(
            r#"{"Statement": [
                {"Action": "kms:Decrypt", "Sid": "B", "Principal": {"AWS": "*"}, "Resource": "*", "Effect": "Allow"},
                {"Resource": "*", "Effect": "Allow", "Principal": {"AWS": "*"}, "Sid": "A", "Action": "kms:Encrypt"}
            ]}"#,
        )
        .unwrap();
    assert!(equivalent(&a, &b, "aws"));
    assert_eq!(
        normalize(&a, "aws").to_string(),
        normalize(&b, "aws").to_string()
    );
}

#[test]
fn single_statement_object_counts_as_a_list() {
    let one = json!({"Version": "2012-10-17", "Statement": {"Sid": "X", "Effect": "Allow", "Action": "kms:*", "Resource": "*", "Principal": {"AWS": "111111111111"}}});
    assert_eq!(statements(&one).len(), 1);
    let list = json!({"Version": "2012-10-17", "Statement": [{"Sid": "X", "Effect": "Allow", "Action": ["kms:*"], "Resource": "*", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}}]});
    assert!(equivalent(&one, &list, "aws"));
}

/// Every policy file the README, the docs, the examples and trailkey's own
/// messages send a reader to is one that ships in `policies/`.
#[test]
fn every_policy_file_named_in_docs_and_hints_ships() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs"), root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| ["md", "rs", "yaml", "yml", "snap"].contains(&e.to_str().unwrap()))
            {
                files.push(path);
            }
        }
    }
    let mut named = std::collections::BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, _) in text.match_indices("iam-") {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '-' || c == '.'))
                .unwrap_or(rest.len());
            let name = rest[..end].trim_end_matches('.');
            if let Some(stem) = name.strip_suffix(".json") {
                named.insert((format!("{stem}.json"), file.display().to_string()));
            }
        }
    }
    assert!(named.len() > 10, "{named:?}");
    let missing: Vec<_> = named
        .iter()
        .filter(|(name, _)| !root.join("policies").join(name).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "named but not in policies/: {missing:#?}"
    );
}
