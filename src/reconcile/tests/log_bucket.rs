//! The Log Archive side of a trail change, read with `roles.log_archive`: a
//! bucket policy that would refuse the key stops the apply before any
//! write; otherwise what the bucket says shows as findings.

use std::path::Path;

use crate::aws::fake::FakeCloud;
use crate::config::Desired;
use crate::error::Error;
use crate::testing::*;

fn desired_with_log_archive_role() -> Desired {
    let text = format!(
        r#"
region = "{REGION}"
[accounts]
security_tooling = "{SECURITY_TOOLING}"
log_archive = "222222222222"
[roles]
log_archive = "LogReader"
[trail]
name = "org-trail"
"#
    );
    crate::config::parse(Path::new("t.toml"), text.as_bytes())
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

fn auto_apply() -> crate::reconcile::Command {
    crate::reconcile::Command::Apply {
        auto_approve: true,
        policy_retry: std::time::Duration::ZERO,
        propagation_retry: std::time::Duration::ZERO,
        wait_for_delivery: None,
        landing_zone: Some(Default::default()),
        verification: crate::apply::Verification::ReadBack,
    }
}

fn deny_wrong_key(bucket: &str, key_arn: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyWrongKMSKey", "Effect": "Deny", "Principal": "*",
         "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/*"),
         "Condition": {"StringNotEquals": {
             "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}}}]})
    .to_string()
}

fn set_log_bucket(fake: &FakeCloud, bucket: crate::aws::LogBucket) {
    let name = fake
        .state
        .borrow()
        .trails
        .values()
        .next()
        .unwrap()
        .s3_bucket
        .clone();
    fake.state.borrow_mut().log_buckets.insert(name, bucket);
}

fn trail_bucket(fake: &FakeCloud) -> String {
    fake.state
        .borrow()
        .trails
        .values()
        .next()
        .unwrap()
        .s3_bucket
        .clone()
}

#[test]
fn a_bucket_policy_denying_the_key_refuses_the_apply_before_any_write() {
    let desired = desired_with_log_archive_role();
    let fake = empty_cloud();
    let other = "arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000000";
    set_log_bucket(
        &fake,
        crate::aws::LogBucket {
            policy: Some(deny_wrong_key(&trail_bucket(&fake), other)),
            encryption: None,
            replication: None,
        },
    );
    let mut ui = Yes::default();
    let e = block_on(crate::reconcile::run(
        &fake,
        &desired,
        auto_apply(),
        &mut ui,
    ))
    .unwrap_err();
    let Error::Check { message, hint, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("\"DenyWrongKMSKey\""), "{message}");
    assert!(hint.contains("StringNotLike"), "{hint}");
    assert_eq!(fake.writes(), Vec::<&str>::new());
    let assumed = fake.state.borrow().assumed.clone();
    assert!(
        assumed.contains(&"arn:aws:iam::222222222222:role/LogReader".to_owned()),
        "{assumed:?}"
    );
    for read in [
        "GetBucketPolicy",
        "GetBucketEncryption",
        "GetBucketReplication",
    ] {
        assert_eq!(
            fake.calls().iter().filter(|c| **c == read).count(),
            1,
            "{read}"
        );
    }
}

#[test]
fn a_bucket_policy_naming_the_key_lets_the_trail_change_and_findings_show() {
    let desired = desired_with_log_archive_role();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let key = only_key(&fake).info.arn;
    // The trail goes back to SSE-S3 (someone reverted it): the plan changes it again.
    trail_unencrypted(&fake);
    set_log_bucket(
        &fake,
        crate::aws::LogBucket {
            policy: Some(deny_wrong_key(&trail_bucket(&fake), &key)),
            encryption: Some(crate::aws::BucketEncryption {
                algorithm: "aws:kms".to_owned(),
                kms_key_id: Some(key.clone()),
                bucket_key_enabled: true,
            }),
            replication: Some(crate::aws::Replication {
                role: "arn:aws:iam::222222222222:role/replication".to_owned(),
                rules: vec![crate::aws::ReplicationRule {
                    id: Some("to-dr".to_owned()),
                    enabled: true,
                    replicates_kms_encrypted: false,
                    replica_kms_key_id: None,
                }],
            }),
        },
    );
    let mut ui = Yes::default();
    let outcome = block_on(crate::reconcile::run(
        &fake,
        &desired,
        auto_apply(),
        &mut ui,
    ))
    .unwrap();
    let crate::reconcile::Outcome::Applied { plan, done, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(trail_kms_key_id(&fake), Some(key.clone()));
    let levels: Vec<_> = plan
        .findings
        .iter()
        .map(|f| (f.level, f.message.clone()))
        .collect();
    assert!(
        levels.iter().any(|(l, m)| *l == crate::plan::Level::Warning
            && m.contains("replication of new log files would stop")
            && m.contains(&format!(
                "the replication role arn:aws:iam::222222222222:role/replication then needs kms:Decrypt on {key}"
            ))),
        "{levels:?}"
    );
    assert!(
        levels.iter().any(|(l, m)| *l == crate::plan::Level::Note && m.contains("TrailkeyCloudTrailDecrypt")),
        "{levels:?}"
    );
    assert!(
        !levels.iter().any(|(_, m)| m.contains("was not checked")),
        "{levels:?}"
    );
}

#[test]
fn without_the_role_a_trail_change_notes_the_unchecked_bucket_and_a_no_op_reads_nothing_more() {
    let desired = desired();
    let fake = empty_cloud();
    let (planned, _) = block_on(observe_and_plan(&fake, &desired)).unwrap();
    let notes: Vec<_> = planned
        .findings
        .iter()
        .filter(|f| f.message.contains("Log Archive side"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", planned.findings);
    assert_eq!(notes[0].level, crate::plan::Level::Note);
    assert!(notes[0].message.contains("roles.log_archive"));
    apply_now(&fake, &desired);
    let (planned, _) = block_on(observe_and_plan(&fake, &desired)).unwrap();
    assert!(
        planned
            .findings
            .iter()
            .all(|f| !f.message.contains("Log Archive side"))
    );
    // With the role, a no-op plan does not assume it either.
    fake.clear_calls();
    let mut ui = Yes::default();
    let role = desired_with_log_archive_role();
    block_on(crate::reconcile::run(
        &fake,
        &role,
        crate::reconcile::Command::Plan,
        &mut ui,
    ))
    .unwrap();
    assert!(
        !fake.calls().contains(&"GetBucketPolicy"),
        "{:?}",
        fake.calls()
    );
}
