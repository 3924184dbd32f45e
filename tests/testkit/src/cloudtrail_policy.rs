//! CloudTrail's check of a KMS key policy on `UpdateTrail`, as the real-AWS
//! layer (`rules/`) and the in-memory fake (`src/aws/fake.rs`) apply
//! it. It depends on std and serde_json only and shares no code with
//! trailkey's own policy handling, so that it checks trailkey rather than
//! agreeing with it.
//!
//! What CloudTrail needs ("Configure AWS KMS key policies for CloudTrail",
//! <https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html>,
//! "Required KMS key policy sections for use with CloudTrail"): the key
//! policy must let `cloudtrail.amazonaws.com` encrypt with the key
//! (`kms:GenerateDataKey*`, under the encryption context
//! `aws:cloudtrail:arn` = the trail's ARN, `aws:SourceArn` = the trail's ARN)
//! and describe it (`kms:DescribeKey`); otherwise `UpdateTrail` fails with
//! `InsufficientEncryptionPolicyException`
//! (<https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_UpdateTrail.html>).
//!
//! When the trail's bucket uses an S3 Bucket Key, CloudTrail needs
//! `kms:Decrypt` too: "If you are using an existing S3 bucket with an S3
//! Bucket Key, `kms:Decrypt` permissions are required to create or update a
//! trail with SSE-KMS encryption enabled" (same page, "Granting decrypt
//! permissions"). The page's statement for it, "Allow CloudTrail to decrypt
//! a trail", has no condition at all, and what encryption context that
//! check's request carries is not documented. So the check asks for
//! `kms:Decrypt` with only what every CloudTrail request to the key carries,
//! `aws:SourceArn` and `aws:SourceAccount`, and no
//! `kms:EncryptionContext:*` key: a statement that needs an encryption
//! context does not count.
//!
//! The evaluation is [`crate::key_policy::evaluate`] (`key_policy.rs`), for the
//! service principal `cloudtrail.amazonaws.com` and the
//! condition keys CloudTrail's requests carry; that module cites the IAM
//! pages it follows and says where it is conservative. A policy this
//! refuses may be one AWS accepts, never the other way round.

use crate::key_policy::{Caller, Decision, Request, evaluate};
use serde_json::Value;

/// The principal CloudTrail acts as.
const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";

/// The trail's bucket as CloudTrail's check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// No S3 Bucket Key (or not known to have one).
    Plain,
    /// The bucket's default encryption has `BucketKeyEnabled`: CloudTrail
    /// needs `kms:Decrypt` as well.
    BucketKey,
}

/// Whether CloudTrail accepts `policy` (a key policy document) for the
/// trail `trail_arn` of the organization whose management account is
/// `management_account`, in `partition`, the trail writing to `bucket`;
/// otherwise why not.
pub fn cloudtrail_accepts(
    policy: &Value,
    trail_arn: &str,
    management_account: &str,
    partition: &str,
    bucket: Bucket,
) -> Result<(), String> {
    let expected_prefix = format!("arn:{partition}:cloudtrail:");
    let owner = trail_arn.split(':').nth(4).unwrap_or_default();
    if !trail_arn.starts_with(&expected_prefix) || owner != management_account {
        return Err(format!(
            "{trail_arn} is not a trail of account {management_account} in partition {partition}"
        ));
    }
    if !matches!(
        policy.get("Statement"),
        Some(Value::Array(_) | Value::Object(_))
    ) {
        return Err("the key policy has no Statement".to_owned());
    }
    let encrypt = Request {
        caller: Caller::Service(CLOUDTRAIL),
        action: "kms:GenerateDataKey",
        context: vec![
            ("aws:SourceArn", trail_arn),
            ("aws:SourceAccount", management_account),
            ("kms:EncryptionContext:aws:cloudtrail:arn", trail_arn),
        ],
    };
    let describe = Request {
        caller: Caller::Service(CLOUDTRAIL),
        action: "kms:DescribeKey",
        context: vec![
            ("aws:SourceArn", trail_arn),
            ("aws:SourceAccount", management_account),
        ],
    };
    // No encryption context: see the module's notes.
    let decrypt = Request {
        caller: Caller::Service(CLOUDTRAIL),
        action: "kms:Decrypt",
        context: vec![
            ("aws:SourceArn", trail_arn),
            ("aws:SourceAccount", management_account),
        ],
    };
    let mut checks = vec![
        (
            &encrypt,
            format!(
                "{CLOUDTRAIL} kms:GenerateDataKey* with aws:SourceArn = {trail_arn} and \
                 kms:EncryptionContext:aws:cloudtrail:arn = {trail_arn}"
            ),
        ),
        (
            &describe,
            format!("{CLOUDTRAIL} kms:DescribeKey with aws:SourceArn = {trail_arn}"),
        ),
    ];
    if bucket == Bucket::BucketKey {
        checks.push((
            &decrypt,
            format!(
                "{CLOUDTRAIL} kms:Decrypt with aws:SourceArn = {trail_arn} and no encryption \
                 context, which CloudTrail needs for a bucket with an S3 Bucket Key"
            ),
        ));
    }
    for (request, what) in checks {
        match evaluate(policy, request) {
            Decision::Allowed => {}
            Decision::ExplicitlyDenied { statement } => {
                return Err(format!("{statement} explicitly denies {what}"));
            }
            Decision::NotAllowed => return Err(format!("no statement allows {what}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TRAIL: &str = "arn:aws:cloudtrail:eu-west-1:111111111111:trail/org-trail";
    const MANAGEMENT: &str = "111111111111";

    fn encrypt(condition: Value) -> Value {
        json!({
            "Sid": "Encrypt",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": condition,
        })
    }

    fn describe() -> Value {
        json!({
            "Sid": "Describe",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceArn": TRAIL}},
        })
    }

    fn documented_encrypt() -> Value {
        encrypt(json!({
            "StringLike": {
                "kms:EncryptionContext:aws:cloudtrail:arn":
                    "arn:aws:cloudtrail:*:111111111111:trail/*"
            },
            "StringEquals": {"aws:SourceArn": TRAIL},
        }))
    }

    fn policy(statements: Vec<Value>) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    fn check(p: &Value) -> Result<(), String> {
        cloudtrail_accepts(p, TRAIL, MANAGEMENT, "aws", Bucket::Plain)
    }

    fn check_with_bucket_key(p: &Value) -> Result<(), String> {
        cloudtrail_accepts(p, TRAIL, MANAGEMENT, "aws", Bucket::BucketKey)
    }

    #[test]
    fn the_documented_statements_are_accepted() {
        assert_eq!(
            check(&policy(vec![documented_encrypt(), describe()])),
            Ok(())
        );
    }

    #[test]
    fn each_missing_permission_is_named() {
        let e = check(&policy(vec![documented_encrypt()])).unwrap_err();
        assert!(
            e.contains("no statement allows") && e.contains("kms:DescribeKey"),
            "{e}"
        );
        let e = check(&policy(vec![describe()])).unwrap_err();
        assert!(e.contains("kms:GenerateDataKey*"), "{e}");
        let e = check(&json!({"Version": "2012-10-17"})).unwrap_err();
        assert!(e.contains("no Statement"), "{e}");
        assert!(check(&json!({})).is_err());
    }

    #[test]
    fn a_source_arn_of_another_trail_is_refused() {
        let other = "arn:aws:cloudtrail:eu-west-1:111111111111:trail/other";
        let wrong = encrypt(json!({"StringEquals": {"aws:SourceArn": other}}));
        assert!(check(&policy(vec![wrong, describe()])).is_err());
        // A list of values is ORed.
        let listed = encrypt(json!({"StringEquals": {"aws:SourceArn": [other, TRAIL]}}));
        assert_eq!(check(&policy(vec![listed, describe()])), Ok(()));
    }

    #[test]
    fn the_encryption_context_must_name_the_management_account() {
        let stale = encrypt(json!({
            "StringLike": {
                "kms:EncryptionContext:aws:cloudtrail:arn":
                    "arn:aws:cloudtrail:*:999999999999:trail/*"
            }
        }));
        assert!(check(&policy(vec![stale, describe()])).is_err());
        let arn_like = encrypt(json!({
            "ArnLike": {
                "kms:EncryptionContext:aws:cloudtrail:arn":
                    ["arn:aws:cloudtrail:*:999999999999:trail/*", "arn:aws:cloudtrail:*:111111111111:trail/*"]
            }
        }));
        assert_eq!(check(&policy(vec![arn_like, describe()])), Ok(()));
    }

    #[test]
    fn principals_as_string_list_or_star() {
        for principal in [
            json!({"Service": ["ec2.amazonaws.com", "cloudtrail.amazonaws.com"]}),
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": ["arn:aws:iam::111111111111:root", "*"]}),
        ] {
            let mut e = documented_encrypt();
            e["Principal"] = principal.clone();
            assert_eq!(check(&policy(vec![e, describe()])), Ok(()), "{principal}");
        }
        let mut root = documented_encrypt();
        root["Principal"] = json!({"AWS": "arn:aws:iam::111111111111:root"});
        assert!(check(&policy(vec![root, describe()])).is_err());
    }

    #[test]
    fn actions_match_with_wildcards_and_case_insensitively() {
        for action in [
            json!("kms:*"),
            json!("KMS:generatedatakey*"),
            json!(["kms:Decrypt", "kms:Generate?ataKey"]),
            json!("*"),
        ] {
            let mut e = documented_encrypt();
            e["Action"] = action.clone();
            assert_eq!(check(&policy(vec![e, describe()])), Ok(()), "{action}");
        }
        let mut e = documented_encrypt();
        e["Action"] = json!("kms:Encrypt");
        assert!(check(&policy(vec![e, describe()])).is_err());
        let mut not_action = documented_encrypt();
        not_action
            .as_object_mut()
            .unwrap()
            .remove("Action")
            .unwrap();
        not_action["NotAction"] = json!("kms:Decrypt");
        assert_eq!(check(&policy(vec![not_action, describe()])), Ok(()));
    }

    #[test]
    fn condition_keys_compare_case_insensitively_values_do_not() {
        let upper = encrypt(json!({"StringEquals": {"AWS:SOURCEARN": TRAIL}}));
        assert_eq!(check(&policy(vec![upper, describe()])), Ok(()));
        let shouting = encrypt(json!({"StringEquals": {"aws:SourceArn": TRAIL.to_uppercase()}}));
        assert!(check(&policy(vec![shouting, describe()])).is_err());
        let ignore_case =
            encrypt(json!({"StringEqualsIgnoreCase": {"aws:SourceArn": TRAIL.to_uppercase()}}));
        assert_eq!(check(&policy(vec![ignore_case, describe()])), Ok(()));
    }

    #[test]
    fn an_explicit_deny_wins() {
        let deny = json!({
            "Sid": "NoCloudTrail",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
        });
        let e = check(&policy(vec![documented_encrypt(), describe(), deny])).unwrap_err();
        assert!(e.contains("\"NoCloudTrail\" explicitly denies"), "{e}");
        // A Deny whose condition excludes CloudTrail's request does not bite.
        let elsewhere = json!({
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringNotLike": {"aws:SourceArn": "arn:aws:cloudtrail:*"}},
        });
        assert_eq!(
            check(&policy(vec![documented_encrypt(), describe(), elsewhere])),
            Ok(())
        );
    }

    #[test]
    fn what_the_evaluator_does_not_understand_never_allows_and_always_denies() {
        let unknown_operator = encrypt(json!({"NumericLessThan": {"aws:SourceArn": "5"}}));
        assert!(check(&policy(vec![unknown_operator, describe()])).is_err());
        let unknown_key = encrypt(json!({"StringEquals": {"aws:PrincipalOrgID": "o-1"}}));
        assert!(check(&policy(vec![unknown_key, describe()])).is_err());
        let deny = json!({
            "Sid": "Unclear",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        });
        let e = check(&policy(vec![documented_encrypt(), describe(), deny])).unwrap_err();
        assert!(e.contains("\"Unclear\""), "{e}");
    }

    #[test]
    fn null_and_if_exists_test_presence() {
        // DescribeKey carries no encryption context.
        let mut d = describe();
        d["Condition"] = json!({"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}});
        assert!(check(&policy(vec![documented_encrypt(), d])).is_err());
        let mut d = describe();
        d["Condition"] =
            json!({"StringLikeIfExists": {"kms:EncryptionContext:aws:cloudtrail:arn": "x"}});
        assert_eq!(check(&policy(vec![documented_encrypt(), d])), Ok(()));
        let e = encrypt(json!({"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": false}}));
        assert_eq!(check(&policy(vec![e, describe()])), Ok(()));
    }

    fn decrypt(condition: Option<Value>) -> Value {
        let mut statement = json!({
            "Sid": "Decrypt",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        });
        if let Some(condition) = condition {
            statement["Condition"] = condition;
        }
        statement
    }

    #[test]
    fn a_bucket_key_needs_decrypt_scoped_by_the_source_arn_alone() {
        // trailkey's statement: the trail and another trail sharing the key.
        let other = "arn:aws:cloudtrail:eu-west-1:111111111111:trail/old-trail";
        let trailkeys = decrypt(Some(
            json!({"StringEquals": {"aws:SourceArn": [TRAIL, other]}}),
        ));
        let with_it = policy(vec![documented_encrypt(), describe(), trailkeys]);
        assert_eq!(check_with_bucket_key(&with_it), Ok(()));
        // The CloudTrail guide's statement, with no condition at all.
        let documented = policy(vec![documented_encrypt(), describe(), decrypt(None)]);
        assert_eq!(check_with_bucket_key(&documented), Ok(()));
        // Scoped to another trail only: not this one's.
        let elsewhere = decrypt(Some(json!({"StringEquals": {"aws:SourceArn": other}})));
        let e = check_with_bucket_key(&policy(vec![documented_encrypt(), describe(), elsewhere]))
            .unwrap_err();
        assert!(
            e.contains("no statement allows") && e.contains("kms:Decrypt"),
            "{e}"
        );
    }

    #[test]
    fn a_bucket_key_refuses_decrypt_that_needs_an_encryption_context() {
        // The request carries no encryption context, so neither a Null
        // test of it nor a match on its value holds.
        for condition in [
            json!({
                "Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"},
                "StringLike": {
                    "kms:EncryptionContext:aws:cloudtrail:arn":
                        "arn:aws:cloudtrail:*:111111111111:trail/*"
                },
                "StringEquals": {"aws:SourceArn": TRAIL},
            }),
            json!({"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": TRAIL}}),
            json!({"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::*"}}),
        ] {
            let p = policy(vec![
                documented_encrypt(),
                describe(),
                decrypt(Some(condition.clone())),
            ]);
            let e = check_with_bucket_key(&p).unwrap_err();
            assert!(
                e.contains("kms:Decrypt") && e.contains("S3 Bucket Key"),
                "{condition}: {e}"
            );
            assert_eq!(check(&p), Ok(()), "without a Bucket Key: {condition}");
        }
    }

    #[test]
    fn a_bucket_key_refuses_a_policy_without_decrypt_or_denying_it() {
        let without = policy(vec![documented_encrypt(), describe()]);
        assert_eq!(check(&without), Ok(()), "no Bucket Key, no Decrypt needed");
        let e = check_with_bucket_key(&without).unwrap_err();
        assert!(
            e.contains("no statement allows") && e.contains("kms:Decrypt"),
            "{e}"
        );
        let deny = json!({
            "Sid": "NoDecrypt",
            "Effect": "Deny",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        });
        let denied = policy(vec![documented_encrypt(), describe(), decrypt(None), deny]);
        let e = check_with_bucket_key(&denied).unwrap_err();
        assert!(e.contains("\"NoDecrypt\" explicitly denies"), "{e}");
        assert_eq!(check(&denied), Ok(()), "Decrypt is not asked for");
    }

    #[test]
    fn a_single_statement_object_counts() {
        let p = json!({"Statement": {
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
        }});
        assert_eq!(check(&p), Ok(()));
    }
}
