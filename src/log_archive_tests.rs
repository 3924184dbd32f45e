use serde_json::json;

use super::*;
use crate::aws::{BucketEncryption, Replication};

const THIS: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-0000-0000-0000-000000000001";
const OTHER: &str = "arn:aws:kms:us-east-1:222222222222:key/9999abcd-0000-0000-0000-000000000009";
const PREFIX: &str = "arn:aws:kms:us-east-1:111111111111:key/";
const ROLE: &str = "arn:aws:iam::222222222222:role/replication";
const REPLICA: &str = "arn:aws:kms:us-west-2:222222222222:key/replica";

fn rule(id: &str, enabled: bool, kms: bool, replica: Option<&str>) -> ReplicationRule {
    ReplicationRule {
        id: Some(id.to_owned()),
        enabled,
        replicates_kms_encrypted: kms,
        replica_kms_key_id: replica.map(str::to_owned),
    }
}

fn write(key: TrailKey<'_>) -> Write<'_> {
    Write {
        partition: "aws",
        bucket: "log-bucket",
        key,
    }
}

/// The AWS SRA log bucket template's statements, the key as given.
fn sra(key: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyExternalPrincipals", "Effect": "Deny", "Principal": "*",
         "Action": "s3:*", "Resource": ["arn:aws:s3:::log-bucket", "arn:aws:s3:::log-bucket/*"],
         "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"},
                       "Bool": {"aws:PrincipalIsAWSService": "false"}}},
        {"Sid": "SecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::log-bucket", "arn:aws:s3:::log-bucket/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "AWSBucketPermissionsCheck", "Effect": "Allow",
         "Principal": {"Service": ["cloudtrail.amazonaws.com", "config.amazonaws.com"]},
         "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::log-bucket"},
        {"Sid": "DenyUnencryptedObjects", "Effect": "Deny", "Principal": "*",
         "Action": "s3:PutObject", "Resource": "arn:aws:s3:::log-bucket/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
        {"Sid": "DenyWrongKMSKey", "Effect": "Deny", "Principal": "*",
         "Action": "s3:PutObject", "Resource": "arn:aws:s3:::log-bucket/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key}}}
    ]})
    .to_string()
}

fn deny(principal: Value, action: Value, condition: Value) -> String {
    json!({"Statement": [{"Sid": "D", "Effect": "Deny", "Principal": principal,
            "Action": action, "Resource": "arn:aws:s3:::log-bucket/*", "Condition": condition}]})
    .to_string()
}

fn sids(policy: &str, key: TrailKey<'_>) -> Vec<String> {
    denials(policy, &write(key))
        .unwrap()
        .into_iter()
        .map(|d| d.sid)
        .collect()
}

#[test]
fn the_sra_deny_wrong_kms_key_naming_another_key_denies() {
    assert_eq!(sids(&sra(OTHER), TrailKey::Arn(THIS)), ["DenyWrongKMSKey"]);
    let d = &denials(&sra(OTHER), &write(TrailKey::Arn(THIS))).unwrap()[0];
    assert!(d.unknown.is_empty(), "{d:?}");
    assert!(d.because[0].contains(OTHER), "{d:?}");
}

#[test]
fn the_sra_template_naming_this_key_denies_nothing() {
    assert_eq!(sids(&sra(THIS), TrailKey::Arn(THIS)), Vec::<String>::new());
    let listed = deny(
        json!("*"),
        json!("s3:PutObject"),
        json!({"StringNotEqualsIfExists": {KEY_ID: [OTHER, THIS]}}),
    );
    assert!(sids(&listed, TrailKey::Arn(THIS)).is_empty());
}

#[test]
fn a_new_key_is_denied_by_a_condition_naming_one_key_but_not_by_the_accounts_keys() {
    let new = TrailKey::New { prefix: PREFIX };
    assert_eq!(sids(&sra(OTHER), new), ["DenyWrongKMSKey"]);
    let accounts_keys = deny(
        json!("*"),
        json!("s3:PutObject"),
        json!({"StringNotLike": {KEY_ID: format!("{PREFIX}*")}}),
    );
    assert!(sids(&accounts_keys, new).is_empty());
    let some_keys = deny(
        json!("*"),
        json!("s3:PutObject"),
        json!({"StringNotLike": {KEY_ID: format!("{PREFIX}ab*")}}),
    );
    let d = &denials(&some_keys, &write(new)).unwrap()[0];
    assert_eq!(d.unknown.len(), 1, "{d:?}");
}

#[test]
fn back_on_sse_s3_a_bucket_that_requires_a_kms_key_denies() {
    // The SRA bucket denies files without aws:kms, and files without its key.
    assert_eq!(
        sids(&sra(THIS), TrailKey::SseS3),
        ["DenyUnencryptedObjects", "DenyWrongKMSKey"]
    );
    // No key ID header: negated operators and ...IfExists hold, the
    // others fail; Null holds for "true".
    let on_key_id = |operator: &str, value: &str| {
        sids(
            &deny(
                json!("*"),
                json!("s3:PutObject"),
                json!({operator: {KEY_ID: value}}),
            ),
            TrailKey::SseS3,
        )
    };
    for denies in [
        ("StringNotEquals", THIS),
        ("StringNotLike", PREFIX),
        ("ArnNotEquals", THIS),
        ("StringNotEqualsIfExists", THIS),
        ("StringEqualsIfExists", THIS),
        ("Null", "true"),
    ] {
        assert_eq!(on_key_id(denies.0, denies.1), ["D"], "{denies:?}");
    }
    for passes in [
        ("StringEquals", THIS),
        ("StringLike", "*"),
        ("Null", "false"),
    ] {
        assert!(on_key_id(passes.0, passes.1).is_empty(), "{passes:?}");
    }
}

#[test]
fn back_on_sse_s3_a_condition_that_depends_on_whether_the_header_is_sent_is_unknown() {
    let on_sse = |condition: Value| {
        denials(
            &deny(json!("*"), json!("s3:PutObject"), condition),
            &write(TrailKey::SseS3),
        )
        .unwrap()
    };
    // AES256 sent or the header left out: the same answer either way.
    assert!(on_sse(json!({"StringEquals": {SSE: "aws:kms"}})).is_empty());
    let d = on_sse(json!({"StringNotEquals": {SSE: "aws:kms"}}));
    assert!(d[0].unknown.is_empty(), "{d:?}");
    // Different answers: taken to deny, as a condition trailkey cannot evaluate.
    for condition in [
        json!({"StringNotEquals": {SSE: ["AES256", "aws:kms"]}}),
        json!({"StringNotEqualsIfExists": {SSE: ["AES256", "aws:kms"]}}),
        json!({"StringEquals": {SSE: "AES256"}}),
        json!({"Null": {SSE: "true"}}),
    ] {
        let d = on_sse(condition.clone());
        assert_eq!(d.len(), 1, "{condition}");
        assert_eq!(d[0].unknown.len(), 1, "{condition}: {d:?}");
    }
}

#[test]
fn back_on_sse_s3_the_refusal_keeps_the_key_and_replication_is_not_reported() {
    let bucket = LogBucket {
        policy: Some(sra(THIS)),
        encryption: Some(BucketEncryption {
            algorithm: "aws:kms".to_owned(),
            kms_key_id: Some(THIS.to_owned()),
            bucket_key_enabled: true,
        }),
        replication: Some(Replication {
            role: ROLE.to_owned(),
            rules: vec![rule("r", true, false, None)],
        }),
    };
    let e = check(&bucket, &write(TrailKey::SseS3), "222222222222").unwrap_err();
    let text = e.render();
    assert!(
            text.contains("refusing to move the trail back to SSE-S3: statement \"DenyUnencryptedObjects\" of the policy of bucket log-bucket (account 222222222222)"),
            "{text}"
        );
    assert!(text.contains("the trail keeps its key"), "{text}");
    let open = LogBucket {
        policy: None,
        ..bucket
    };
    assert!(
        check(&open, &write(TrailKey::SseS3), "222222222222")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn wildcard_actions_and_principals_apply() {
    for action in [
        json!("s3:*"),
        json!(["s3:Get*", "s3:Put*"]),
        json!("*"),
        json!("S3:PUTOBJECT"),
    ] {
        for principal in [
            json!("*"),
            json!({"AWS": "*"}),
            json!({"Service": "cloudtrail.amazonaws.com"}),
        ] {
            let p = deny(
                principal.clone(),
                action.clone(),
                json!({"StringNotEquals": {KEY_ID: OTHER}}),
            );
            assert_eq!(sids(&p, TrailKey::Arn(THIS)), ["D"], "{action} {principal}");
        }
    }
    let other_action = deny(
        json!("*"),
        json!("s3:GetObject"),
        json!({"StringNotEquals": {KEY_ID: OTHER}}),
    );
    assert!(sids(&other_action, TrailKey::Arn(THIS)).is_empty());
    let other_principal = deny(
        json!({"AWS": "arn:aws:iam::222222222222:role/App"}),
        json!("s3:PutObject"),
        json!({"StringNotEquals": {KEY_ID: OTHER}}),
    );
    assert!(sids(&other_principal, TrailKey::Arn(THIS)).is_empty());
}

#[test]
fn an_encryption_header_other_than_kms_is_judged_too() {
    let aes_only = deny(
        json!("*"),
        json!("s3:PutObject"),
        json!({"StringNotEquals": {SSE: "AES256"}}),
    );
    assert_eq!(sids(&aes_only, TrailKey::Arn(THIS)), ["D"]);
    let kms = deny(
        json!("*"),
        json!("s3:PutObject"),
        json!({"StringNotEquals": {SSE: ["AES256", "aws:kms"]}}),
    );
    assert!(sids(&kms, TrailKey::Arn(THIS)).is_empty());
    let header_missing = deny(
        json!("*"),
        json!("s3:PutObject"),
        json!({"Null": {KEY_ID: "true"}}),
    );
    assert!(sids(&header_missing, TrailKey::Arn(THIS)).is_empty());
}

#[test]
fn a_deny_that_does_not_depend_on_encryption_is_not_the_keys_business() {
    let org_only = deny(
        json!("*"),
        json!("s3:*"),
        json!({"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"}}),
    );
    assert!(sids(&org_only, TrailKey::Arn(THIS)).is_empty());
    let no_condition = json!({"Statement": {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}}).to_string();
    assert!(sids(&no_condition, TrailKey::Arn(THIS)).is_empty());
}

#[test]
fn unknown_operators_and_keys_next_to_an_encryption_condition_count_as_denying() {
    let unknown_operator = deny(
        json!("*"),
        json!("s3:PutObject"),
        json!({"ForAnyValue:StringNotLike": {KEY_ID: THIS}}),
    );
    let d = &denials(&unknown_operator, &write(TrailKey::Arn(THIS))).unwrap()[0];
    assert!(
        d.unknown[0].starts_with("ForAnyValue:StringNotLike"),
        "{d:?}"
    );
    let unknown_key = deny(
        json!("*"),
        json!("s3:PutObject"),
        json!({"StringNotEquals": {KEY_ID: OTHER, "aws:SourceVpce": "vpce-1"}}),
    );
    let d = &denials(&unknown_key, &write(TrailKey::Arn(THIS))).unwrap()[0];
    assert_eq!((d.because.len(), d.unknown.len()), (1, 1), "{d:?}");
    // An unknown condition does not rescue a statement whose known
    // encryption condition fails.
    let fails = deny(
        json!("*"),
        json!("s3:PutObject"),
        json!({"StringNotEquals": {KEY_ID: THIS}, "Weird": {"aws:SourceVpce": "x"}}),
    );
    assert!(sids(&fails, TrailKey::Arn(THIS)).is_empty());
}

#[test]
fn statements_without_a_sid_are_named_by_position() {
    let p = json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*",
             "Condition": {"StringNotEquals": {KEY_ID: OTHER}}}]})
    .to_string();
    assert_eq!(sids(&p, TrailKey::Arn(THIS)), ["#2 (no Sid)"]);
}

#[test]
fn resources_of_other_buckets_do_not_apply() {
    let p = json!({"Statement": [{"Sid": "D", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
            "Resource": ["arn:aws:s3:::other-bucket/*", "arn:aws:s3:::log-bucket/one-object"],
            "Condition": {"StringNotEquals": {KEY_ID: OTHER}}}]})
        .to_string();
    assert!(sids(&p, TrailKey::Arn(THIS)).is_empty());
    let prefix = p.replace(
        "arn:aws:s3:::other-bucket/*",
        "arn:aws:s3:::log-bucket/AWSLogs/*",
    );
    assert_eq!(sids(&prefix, TrailKey::Arn(THIS)), ["D"]);
}

#[test]
fn malformed_and_oversized_policies_are_refused_not_evaluated() {
    for bad in ["not json", "{}", "[]", "{\"Statement\": 3}"] {
        assert!(denials(bad, &write(TrailKey::Arn(THIS))).is_err(), "{bad}");
    }
    let huge = format!(
        "{{\"Statement\": [], \"Pad\": \"{}\"}}",
        "x".repeat(MAX_BUCKET_POLICY_BYTES)
    );
    let e = denials(&huge, &write(TrailKey::Arn(THIS))).unwrap_err();
    assert!(e.contains("more than S3 allows"), "{e}");
}

/// A policy at the size cap full of statements whose patterns have
/// many wildcards: matched in linear time (a backtracking matcher would
/// not finish), without a panic.
#[test]
fn a_huge_hostile_policy_is_evaluated_quickly() {
    let pattern = format!("arn:{}q", "*".repeat(200));
    let statement = json!({"Sid": "H", "Effect": "Deny", "Principal": "*",
            "Action": format!("s3:{}z", "*".repeat(60)), "Resource": "*",
            "Condition": {"StringNotLike": {KEY_ID: pattern}}});
    let one = statement.to_string().len() + 1;
    let statements: Vec<Value> = (0..(MAX_BUCKET_POLICY_BYTES - 32) / one)
        .map(|_| statement.clone())
        .collect();
    let mut policy = json!({"Statement": statements}).to_string();
    assert!(policy.len() <= MAX_BUCKET_POLICY_BYTES, "{}", policy.len());
    let started = std::time::Instant::now();
    assert!(sids(&policy, TrailKey::Arn(THIS)).is_empty());
    // The same statements with an action that does match: every one denies.
    policy = policy.replace("*z\"", "*t\"");
    assert_eq!(sids(&policy, TrailKey::Arn(THIS)).len(), statements.len());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(denials(&deep, &write(TrailKey::Arn(THIS))).is_err());
}

fn bucket(policy: Option<String>) -> LogBucket {
    LogBucket {
        policy,
        encryption: None,
        replication: None,
    }
}

#[test]
fn the_refusal_names_the_statement_and_the_fix() {
    let e = check(
        &bucket(Some(sra(OTHER))),
        &write(TrailKey::Arn(THIS)),
        "222222222222",
    )
    .unwrap_err();
    let Error::Check { message, hint, .. } = e else {
        panic!("{e:?}")
    };
    assert!(message.contains("\"DenyWrongKMSKey\""), "{message}");
    assert!(
        message.contains("log-bucket (account 222222222222)"),
        "{message}"
    );
    assert!(
        hint.contains(&format!("allow {THIS} in that condition")),
        "{hint}"
    );
    assert!(hint.contains("nothing was written"), "{hint}");
}

fn replicated(role: &str, rules: Vec<ReplicationRule>) -> LogBucket {
    LogBucket {
        replication: Some(Replication {
            role: role.to_owned(),
            rules,
        }),
        ..bucket(None)
    }
}

#[test]
fn replication_without_kms_objects_warns_and_a_bucket_key_is_noted() {
    let b = LogBucket {
        policy: Some(sra(THIS)),
        encryption: Some(BucketEncryption {
            algorithm: "aws:kms".to_owned(),
            kms_key_id: None,
            bucket_key_enabled: true,
        }),
        ..replicated(
            ROLE,
            vec![
                rule("to-dr", true, false, None),
                rule("off", false, false, None),
            ],
        )
    };
    let f = check(&b, &write(TrailKey::Arn(THIS)), "222222222222").unwrap();
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].level, Level::Warning);
    let m = &f[0].message;
    assert!(
            m.starts_with("replication rule \"to-dr\" of bucket log-bucket does not replicate KMS-encrypted objects"),
            "{m}"
        );
    assert!(m.contains("replication of new log files would stop"), "{m}");
    assert!(
        m.contains(&format!(
            "the replication role {ROLE} then needs kms:Decrypt on {THIS}"
        )),
        "{m}"
    );
    assert!(
        m.contains("set Destination.EncryptionConfiguration.ReplicaKmsKeyID"),
        "{m}"
    );
    assert_eq!(f[1].level, Level::Note);
    assert!(f[1].message.contains("TrailkeyCloudTrailDecrypt"));
    assert!(
        check(&bucket(None), &write(TrailKey::Arn(THIS)), "222222222222")
            .unwrap()
            .is_empty()
    );
}

/// Replication of KMS-encrypted objects works only while the role may
/// decrypt with the trail's key: every enabled rule names the role, the
/// key and the replica key.
#[test]
fn each_enabled_rule_names_the_role_and_the_keys_it_needs() {
    let b = replicated(
        ROLE,
        vec![
            rule("with-replica-key", true, true, Some(REPLICA)),
            rule("without-replica-key", true, true, None),
            rule("off", false, true, Some(REPLICA)),
        ],
    );
    let f = check(&b, &write(TrailKey::Arn(THIS)), "222222222222").unwrap();
    assert_eq!(f.len(), 2, "one finding per enabled rule: {f:?}");
    assert!(f.iter().all(|f| f.level == Level::Warning), "{f:?}");
    let (with, without) = (&f[0].message, &f[1].message);
    assert!(
            with.starts_with(&format!(
                "replication rule \"with-replica-key\" of bucket log-bucket replicates KMS-encrypted objects as the role {ROLE}: once the trail uses {THIS}, new log files are replicated only if that role has kms:Decrypt on {THIS}"
            )),
            "{with}"
        );
    assert!(
        with.contains("statement TrailkeyLogReadersDecrypt"),
        "{with}"
    );
    assert!(
            with.ends_with(&format!(
                "and kms:Encrypt on the replica key {REPLICA} (Destination.EncryptionConfiguration.ReplicaKmsKeyID)"
            )),
            "{with}"
        );
    assert!(without.contains("\"without-replica-key\""), "{without}");
    assert!(
        without.contains(
            "the rule does not name: set Destination.EncryptionConfiguration.ReplicaKmsKeyID"
        ),
        "{without}"
    );
    assert!(!f.iter().any(|f| f.message.contains("\"off\"")), "{f:?}");

    // A key the plan creates has no ARN yet.
    let new = check(&b, &write(TrailKey::New { prefix: PREFIX }), "222222222222").unwrap();
    assert!(
        new[0].message.contains(&format!(
            "kms:Decrypt on the key this apply creates ({PREFIX}<known after apply>)"
        )),
        "{}",
        new[0].message
    );
}

#[test]
fn a_role_outside_the_log_archive_account_needs_the_key_policy_too() {
    let b = replicated(
        "arn:aws:iam::555555555555:role/replication",
        vec![rule("r", true, true, Some(REPLICA))],
    );
    let f = check(&b, &write(TrailKey::Arn(THIS)), "222222222222").unwrap();
    let m = &f[0].message;
    assert!(m.contains("in its IAM policy and in the key policy"), "{m}");
    assert!(m.contains("declare it in [readers]"), "{m}");
    assert!(!m.contains("TrailkeyLogReadersDecrypt"), "{m}");
}
