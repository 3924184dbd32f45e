//! The S3 rules: replication rules as they were put, the bucket's Region
//! seen from another account.

use serde_json::{Value, json};
use trailkey_testkit::Moto;
use trailkey_testkit::rules;

use super::{call, outcomes};

#[test]
fn get_bucket_replication_answers_the_rules_as_they_were_put() {
    let moto = Moto::start();
    let seed = moto.seed();
    let bucket = seed.bucket.as_str();
    let put = call(
        "s3:PutBucketReplication",
        json!({"Bucket": bucket, "ReplicationConfiguration": {
            "Role": format!("arn:aws:iam::{}:role/replication", seed.log_archive),
            "Rules": [{"ID": "logs", "Status": "Enabled", "Priority": 1,
                "Filter": {"Prefix": "AWSLogs/"},
                "DeleteMarkerReplication": {"Status": "Disabled"},
                "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                "Destination": {"Bucket": "arn:aws:s3:::log-replica",
                    "EncryptionConfiguration": {"ReplicaKmsKeyID": "arn:aws:kms:us-east-1:111111111111:key/replica"}}}]}}),
    );
    let calls = json!([
        call(
            "s3:PutBucketVersioning",
            json!({"Bucket": bucket, "VersioningConfiguration": {"Status": "Enabled"}})
        ),
        put,
        call("s3:GetBucketReplication", json!({"Bucket": bucket})),
        call("s3:DeleteBucketReplication", json!({"Bucket": bucket})),
        call("s3:GetBucketReplication", json!({"Bucket": bucket})),
    ]);
    let rule_of = |r: &Value| r["response"]["ReplicationConfiguration"]["Rules"][0].clone();

    let alone = moto.calls_as(&seed.log_archive, None, &calls);
    assert_eq!(
        outcomes(&alone),
        [
            "ok",
            "ok",
            "ok",
            "ok",
            "ReplicationConfigurationNotFoundError"
        ]
    );
    let rule = rule_of(&alone[2]);
    assert_eq!(
        rule["SourceSelectionCriteria"],
        Value::Null,
        "moto alone drops it: {rule}"
    );
    assert_eq!(rule["Filter"]["Prefix"], "", "moto alone drops it: {rule}");

    let layer = moto.proxy_with(vec![Box::new(rules::s3_replication_as_put())]);
    let results = moto.calls_as(&seed.log_archive, Some(&layer), &calls);
    assert_eq!(
        outcomes(&results),
        [
            "ok",
            "ok",
            "ok",
            "ok",
            "ReplicationConfigurationNotFoundError"
        ]
    );
    let rule = rule_of(&results[2]);
    assert_eq!(
        rule["SourceSelectionCriteria"],
        json!({"SseKmsEncryptedObjects": {"Status": "Enabled"}})
    );
    assert_eq!(rule["Filter"], json!({"Prefix": "AWSLogs/"}));
    assert_eq!(rule["ID"], "logs");
    assert_eq!(
        rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"],
        "arn:aws:kms:us-east-1:111111111111:key/replica"
    );
    assert_eq!(
        results[2]["response"]["ReplicationConfiguration"]["Role"],
        format!("arn:aws:iam::{}:role/replication", seed.log_archive)
    );
}

#[test]
fn the_log_archive_bucket_tells_other_accounts_its_region_only_through_head_bucket() {
    let moto = Moto::start();
    let seed = moto.seed();
    let calls = json!([
        call("s3:GetBucketLocation", json!({"Bucket": seed.bucket})),
        call("s3:HeadBucket", json!({"Bucket": seed.bucket})),
    ]);
    // moto alone answers the management account both.
    assert_eq!(outcomes(&moto.calls(None, &calls)), ["ok", "ok"]);

    let rule = moto.proxy_with(vec![Box::new(rules::s3_bucket_region_across_accounts(
        moto.world.clone(),
    ))]);
    let through = moto.calls(Some(&rule), &calls);
    assert_eq!(outcomes(&through), ["AccessDenied", "403"], "{through:#?}");
    let exchanges = rule.exchanges();
    let location = exchanges
        .iter()
        .find(|e| e.request.method == "GET")
        .unwrap();
    assert!(!location.forwarded, "the rule answered GetBucketLocation");
    let head = exchanges
        .iter()
        .find(|e| e.request.method == "HEAD")
        .unwrap();
    assert_eq!(head.response.status, 403);
    let region = head
        .response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-bucket-region"))
        .map(|(_, v)| v.as_str());
    assert_eq!(
        region,
        Some("us-east-1"),
        "the Region, whatever the permissions"
    );
    // The owner reads both.
    let owner = moto.calls_as(&seed.log_archive, Some(&rule), &calls);
    assert_eq!(outcomes(&owner), ["ok", "ok"], "{owner:#?}");
}
