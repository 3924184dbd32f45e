//! The CloudTrail rules: a key not visible yet, `DescribeTrails` by name,
//! the key policy check of `UpdateTrail`, the bucket's Region, conflicts,
//! CloudTrail Lake, custom event selectors.

use std::time::Duration;

use serde_json::{Value, json};
use trailkey_testkit::rules::{self, error_code};
use trailkey_testkit::{Moto, Run, trailkey_keys, transcript};

use super::{WINDOW, answered_by_the_layer, call, key_policy, only_exchange, outcomes, until_ok};

#[test]
fn update_trail_naming_a_new_key_or_alias_is_kms_key_not_found_during_its_window() {
    let moto = Moto::start();
    let seed = moto.seed();
    let trail = seed.trail_name.as_str();
    let alone = moto.calls(
        None,
        &json!([
            call("kms:CreateKey", json!({})),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": trail, "KmsKeyId": "$Arn"})
            ),
        ]),
    );
    assert_eq!(outcomes(&alone), ["ok"; 2], "moto alone: {alone:#?}");

    let layer = moto.real_aws(WINDOW);
    let results = moto.calls(
        Some(&layer),
        &json!([
            call("kms:CreateKey", json!({})),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": trail, "KmsKeyId": "$Arn"})
            ),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": trail, "KmsKeyId": "$KeyId"})
            ),
            until_ok(
                "cloudtrail:UpdateTrail",
                json!({"Name": trail, "KmsKeyId": "$Arn"})
            ),
            call(
                "kms:CreateAlias",
                json!({"AliasName": "alias/trail-key", "TargetKeyId": "$KeyId"})
            ),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": trail, "KmsKeyId": "alias/trail-key"})
            ),
            until_ok(
                "cloudtrail:UpdateTrail",
                json!({"Name": trail, "KmsKeyId": "alias/trail-key"})
            ),
        ]),
    );
    let refused = "KmsKeyNotFoundException";
    assert_eq!(
        outcomes(&results),
        ["ok", refused, refused, "ok", "ok", refused, "ok"],
        "{results:#?}"
    );
    assert!(results[3]["attempts"].as_u64() > Some(1));
    let exchanges = layer.exchanges();
    assert!(answered_by_the_layer(&exchanges, refused).len() >= 3);
    let created = only_exchange(&exchanges, "kms", "CreateKey");
    let updated = exchanges
        .iter()
        .find(|e| e.is("cloudtrail", "UpdateTrail") && e.forwarded)
        .expect("an UpdateTrail reached moto");
    assert!(updated.at - created.at >= WINDOW);
    eprintln!(
        "UpdateTrail with the new key's ARN went through {:.2?} after CreateKey",
        updated.at - created.at
    );
}

#[test]
fn describe_trails_with_a_name_list_returns_only_those_trails() {
    let moto = Moto::start();
    let seed = moto.seed();
    let other = moto.fixture(&["create-trail", "--name", "another-trail"]);
    let other_arn = other["trail_arn"].as_str().unwrap();
    let names = |r: &Value| -> Vec<String> {
        let mut names: Vec<String> = r["response"]["trailList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["Name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let calls = json!([
        call(
            "cloudtrail:DescribeTrails",
            json!({"trailNameList": [seed.trail_name]})
        ),
        call(
            "cloudtrail:DescribeTrails",
            json!({"trailNameList": [other_arn]})
        ),
        call(
            "cloudtrail:DescribeTrails",
            json!({"trailNameList": [seed.trail_name, other_arn]})
        ),
        call("cloudtrail:DescribeTrails", json!({})),
    ]);
    let both = vec!["another-trail".to_owned(), seed.trail_name.clone()];
    let alone = moto.calls(None, &calls);
    for r in &alone {
        assert_eq!(names(r), both, "moto alone ignores the list");
    }

    let layer = moto.proxy_with(vec![Box::new(rules::describe_trails_honours_names())]);
    let results = moto.calls(Some(&layer), &calls);
    assert_eq!(names(&results[0]), [seed.trail_name.as_str()]);
    assert_eq!(names(&results[1]), ["another-trail"]);
    assert_eq!(names(&results[2]), both);
    assert_eq!(names(&results[3]), both);
    assert!(layer.exchanges().iter().all(|e| e.forwarded));
}

/// The statements "Configure AWS KMS key policies for CloudTrail" asks for:
/// CloudTrail may encrypt for `trail_arn` and describe the key.
fn cloudtrail_statements(trail_arn: &str, management: &str) -> Vec<Value> {
    vec![
        json!({
            "Sid": "Allow CloudTrail to encrypt logs",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceArn": trail_arn},
                "StringLike": {
                    "kms:EncryptionContext:aws:cloudtrail:arn":
                        format!("arn:aws:cloudtrail:*:{management}:trail/*")
                },
            },
        }),
        json!({
            "Sid": "Allow CloudTrail to describe key",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
        }),
    ]
}

/// Policies CloudTrail refuses for the seeded trail, each with what is
/// wrong with it.
fn wrong_policies(trail_arn: &str, management: &str) -> Vec<(&'static str, String)> {
    let right = cloudtrail_statements(trail_arn, management);
    let other_trail = format!("arn:aws:cloudtrail:us-east-1:{management}:trail/another-trail");
    let mut for_other_trail = right.clone();
    for s in &mut for_other_trail {
        s["Condition"]["StringEquals"]["aws:SourceArn"] = Value::from(other_trail.clone());
    }
    let deny = json!({
        "Sid": "NoDataKeysForServices",
        "Effect": "Deny",
        "Principal": {"Service": ["cloudtrail.amazonaws.com", "config.amazonaws.com"]},
        "Action": "kms:GenerateDataKey*",
        "Resource": "*",
    });
    let mut denied = right.clone();
    denied.push(deny);
    vec![
        (
            "aws:SourceArn names another trail",
            key_policy(management, &for_other_trail),
        ),
        (
            "no DescribeKey statement",
            key_policy(management, &right[..1]),
        ),
        ("a foreign explicit Deny", key_policy(management, &denied)),
        ("nothing for CloudTrail", key_policy(management, &[])),
    ]
}

#[test]
fn update_trail_is_refused_unless_the_key_policy_lets_cloudtrail_use_the_key() {
    const REFUSED: &str = "InsufficientEncryptionPolicyException";
    let moto = Moto::start();
    let seed = moto.seed();
    let (trail, management) = (seed.trail_arn.as_str(), seed.management.as_str());
    let wrong = wrong_policies(trail, management);
    let right = key_policy(management, &cloudtrail_statements(trail, management));
    // Each key, then UpdateTrail to it by ARN.
    let mut calls = Vec::new();
    for policy in wrong.iter().map(|(_, p)| p).chain([&right]) {
        calls.push(call("kms:CreateKey", json!({"Policy": policy})));
        calls.push(call(
            "cloudtrail:UpdateTrail",
            json!({"Name": trail, "KmsKeyId": "$Arn"}),
        ));
    }
    // By the trail's name, as DescribeTrails shows it; by an alias.
    calls.extend([
        call("kms:CreateKey", json!({"Policy": wrong[0].1})),
        call(
            "cloudtrail:DescribeTrails",
            json!({"trailNameList": [seed.trail_name]}),
        ),
        call(
            "cloudtrail:UpdateTrail",
            json!({"Name": seed.trail_name, "KmsKeyId": "$Arn"}),
        ),
        call(
            "kms:CreateAlias",
            json!({"AliasName": "alias/wrong-for-cloudtrail", "TargetKeyId": "$KeyId"}),
        ),
        call(
            "cloudtrail:UpdateTrail",
            json!({"Name": trail, "KmsKeyId": "alias/wrong-for-cloudtrail"}),
        ),
    ]);
    let calls = Value::Array(calls);
    let alone = moto.calls(None, &calls);
    assert_eq!(
        outcomes(&alone),
        vec!["ok"; calls.as_array().unwrap().len()],
        "moto alone: {alone:#?}"
    );

    let moto = Moto::start();
    let seed = moto.seed();
    assert_eq!(seed.trail_arn, trail, "the same trail in a fresh moto");
    let layer = moto.proxy_with(vec![Box::new(rules::cloudtrail_key_policy_check(WINDOW))]);
    let results = moto.calls(Some(&layer), &calls);
    let mut expected = Vec::new();
    for _ in &wrong {
        expected.extend(["ok", REFUSED]);
    }
    expected.extend(["ok", "ok", "ok", "ok", REFUSED, "ok", REFUSED]);
    assert_eq!(outcomes(&results), expected, "{results:#?}");
    for (i, (what, _)) in wrong.iter().enumerate() {
        let message = results[2 * i + 1]["message"].as_str().unwrap();
        eprintln!("{what}: {message}");
        assert!(message.contains(trail), "{what}: {message}");
    }
    assert!(
        results[5]["message"]
            .as_str()
            .unwrap()
            .contains("\"NoDataKeysForServices\" explicitly denies"),
        "{:#?}",
        results[5]
    );
    assert!(
        results[3]["message"]
            .as_str()
            .unwrap()
            .contains("kms:DescribeKey"),
        "{:#?}",
        results[3]
    );
    let exchanges = layer.exchanges();
    assert_eq!(
        answered_by_the_layer(&exchanges, REFUSED).len(),
        wrong.len() + 2
    );
    let passed: Vec<_> = exchanges
        .iter()
        .filter(|e| e.is("cloudtrail", "UpdateTrail") && e.forwarded)
        .collect();
    assert_eq!(passed.len(), 1, "only the right policy reached moto");
    let state = moto.state(&seed);
    assert_eq!(
        state["trail"]["kms_key_id"],
        results[2 * wrong.len()]["response"]["KeyMetadata"]["Arn"],
        "{state:#}"
    );
}

/// A statement letting CloudTrail `kms:Decrypt` under `condition`.
fn cloudtrail_decrypt(condition: Value) -> Value {
    json!({
        "Sid": "Allow CloudTrail to decrypt a trail",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": condition,
    })
}

/// With an S3 Bucket Key on the trail's bucket, CloudTrail needs
/// `kms:Decrypt` on the key, which a statement requiring an encryption
/// context does not give: the layer learns the Bucket Key from the bucket's
/// `PutBucketEncryption` or `GetBucketEncryption`, and the trail's bucket
/// from `DescribeTrails`.
#[test]
fn update_trail_to_a_bucket_with_a_bucket_key_needs_decrypt_without_an_encryption_context() {
    const REFUSED: &str = "InsufficientEncryptionPolicyException";
    let moto = Moto::start();
    let seed = moto.seed();
    let (trail, management) = (seed.trail_arn.as_str(), seed.management.as_str());
    let bucket = seed.bucket.as_str();
    let with = |decrypt: Option<Value>| {
        let mut statements = cloudtrail_statements(trail, management);
        statements.extend(decrypt);
        key_policy(management, &statements)
    };
    let no_decrypt = with(None);
    let with_context = with(Some(cloudtrail_decrypt(json!({
        "Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"},
        "StringLike": {
            "kms:EncryptionContext:aws:cloudtrail:arn":
                format!("arn:aws:cloudtrail:*:{management}:trail/*")
        },
        "StringEquals": {"aws:SourceArn": trail},
    }))));
    let context_free = with(Some(cloudtrail_decrypt(
        json!({"StringEquals": {"aws:SourceArn": trail}}),
    )));
    let to_key = |policy: &str| {
        [
            call("kms:CreateKey", json!({"Policy": policy})),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": trail, "KmsKeyId": "$Arn"}),
            ),
        ]
    };
    let bucket_key = call(
        "s3:PutBucketEncryption",
        json!({"Bucket": bucket, "ServerSideEncryptionConfiguration": {"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
            "BucketKeyEnabled": true}]}}),
    );
    let layer = moto.proxy_with(vec![Box::new(rules::cloudtrail_key_policy_check(WINDOW))]);
    let as_log_archive = |proxy: Option<&trailkey_testkit::proxy::Proxy>, calls: Value| {
        let results = moto.calls_as(&seed.log_archive, proxy, &calls);
        assert!(results.iter().all(|r| r["ok"] == true), "{results:#?}");
        results
    };
    as_log_archive(Some(&layer), json!([bucket_key]));

    let mut calls = vec![call(
        "cloudtrail:DescribeTrails",
        json!({"trailNameList": [trail]}),
    )];
    calls.extend(to_key(&no_decrypt));
    calls.extend(to_key(&with_context));
    let alone = moto.calls(None, &Value::Array(calls.clone()));
    assert_eq!(outcomes(&alone), ["ok"; 5], "moto alone: {alone:#?}");

    calls.extend(to_key(&context_free));
    let results = moto.calls(Some(&layer), &Value::Array(calls));
    assert_eq!(
        outcomes(&results),
        ["ok", "ok", REFUSED, "ok", REFUSED, "ok", "ok"],
        "{results:#?}"
    );
    for refused in [&results[2], &results[4]] {
        let message = refused["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "no statement allows cloudtrail.amazonaws.com kms:Decrypt with aws:SourceArn = {trail} and no encryption context"
            )) && message.contains("S3 Bucket Key"),
            "{message}"
        );
    }
    let exchanges = layer.exchanges();
    assert_eq!(answered_by_the_layer(&exchanges, REFUSED).len(), 2);
    assert_eq!(
        moto.state(&seed)["trail"]["kms_key_id"],
        results[5]["response"]["KeyMetadata"]["Arn"]
    );

    // Without the Bucket Key, Decrypt is not needed.
    as_log_archive(
        Some(&layer),
        json!([call("s3:DeleteBucketEncryption", json!({"Bucket": bucket}))]),
    );
    let after = moto.calls(Some(&layer), &Value::Array(to_key(&no_decrypt).to_vec()));
    assert_eq!(outcomes(&after), ["ok"; 2], "{after:#?}");

    // A Bucket Key set around the layer counts once a read shows it.
    as_log_archive(None, json!([bucket_key]));
    let unseen = moto.calls(Some(&layer), &Value::Array(to_key(&no_decrypt).to_vec()));
    assert_eq!(outcomes(&unseen), ["ok"; 2], "{unseen:#?}");
    let read = as_log_archive(
        Some(&layer),
        json!([call("s3:GetBucketEncryption", json!({"Bucket": bucket}))]),
    );
    assert_eq!(
        read[0]["response"]["ServerSideEncryptionConfiguration"]["Rules"][0]["BucketKeyEnabled"],
        true,
        "{read:#?}"
    );
    let seen = moto.calls(Some(&layer), &Value::Array(to_key(&no_decrypt).to_vec()));
    assert_eq!(outcomes(&seen), ["ok", REFUSED], "{seen:#?}");
}

/// CloudTrail sees a key policy change late, like other KMS changes: for
/// the window after `PutKeyPolicy` it evaluates the previous policy.
#[test]
fn after_put_key_policy_cloudtrail_evaluates_the_previous_policy_during_the_window() {
    const REFUSED: &str = "InsufficientEncryptionPolicyException";
    let moto = Moto::start();
    let seed = moto.seed();
    let (trail, management) = (seed.trail_arn.as_str(), seed.management.as_str());
    let wrong = wrong_policies(trail, management).remove(0).1;
    let right = key_policy(management, &cloudtrail_statements(trail, management));
    let update = json!({"Name": trail, "KmsKeyId": "$Arn"});
    let put = |policy: &str| {
        call(
            "kms:PutKeyPolicy",
            json!({"KeyId": "$KeyId", "PolicyName": "default", "Policy": policy}),
        )
    };
    let alone = moto.calls(
        None,
        &json!([
            call("kms:CreateKey", json!({"Policy": wrong})),
            call("cloudtrail:UpdateTrail", update.clone()),
            put(&right),
            call("cloudtrail:UpdateTrail", update.clone()),
        ]),
    );
    assert_eq!(outcomes(&alone), ["ok"; 4], "moto alone: {alone:#?}");

    let layer = moto.real_aws(WINDOW);
    let results = moto.calls(
        Some(&layer),
        &json!([
            call("kms:CreateKey", json!({"Policy": wrong})),
            until_ok("kms:DescribeKey", json!({"KeyId": "$KeyId"})),
            call("cloudtrail:UpdateTrail", update.clone()),
            put(&right),
            call("cloudtrail:UpdateTrail", update.clone()),
            until_ok("cloudtrail:UpdateTrail", update.clone()),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        ["ok", "ok", REFUSED, "ok", REFUSED, "ok"],
        "{results:#?}"
    );
    assert!(results[5]["attempts"].as_u64() > Some(1), "{results:#?}");
    let exchanges = layer.exchanges();
    assert!(answered_by_the_layer(&exchanges, REFUSED).len() >= 3);
    let fixed = only_exchange(&exchanges, "kms", "PutKeyPolicy");
    let accepted = exchanges
        .iter()
        .find(|e| e.is("cloudtrail", "UpdateTrail") && e.forwarded)
        .expect("an UpdateTrail reached moto");
    let waited = accepted.at - fixed.at;
    assert!(
        waited >= WINDOW && waited < WINDOW + Duration::from_secs(5),
        "accepted {waited:?} after PutKeyPolicy"
    );
    eprintln!(
        "UpdateTrail was accepted {waited:.2?} after the PutKeyPolicy that fixed the policy, at attempt {}",
        results[5]["attempts"]
    );
}

/// Someone narrows CloudTrail's statement to another trail and turns the
/// trail's encryption off; apply puts the policy back and then points the
/// trail at the key. CloudTrail still sees the wrong policy for a moment
/// after `PutKeyPolicy`, so `UpdateTrail` is refused until it sees the new
/// one: trailkey waits, and converges in one run.
#[test]
fn a_policy_repair_then_the_trail_converge_in_one_run_through_the_layer() {
    let moto = Moto::start();
    let seed = moto.seed();
    let layer = moto.layer();
    let first = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(first.status.code(), Some(0), "{}", transcript(&first));
    // The drift goes through the layer too, so that it knows the policy.
    let st = seed.security_tooling.as_str();
    moto.fixture_via(
        layer,
        &["drift", "policy-condition", "--security-tooling", st],
    );
    moto.fixture_via(layer, &["drift", "trail-unencrypt"]);
    // Until the window has passed, CloudTrail would still see the policy
    // before the drift: let the drift take effect.
    std::thread::sleep(WINDOW + Duration::from_millis(100));
    let repair = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(repair.status.code(), Some(0), "{}", transcript(&repair));
    let stderr = String::from_utf8_lossy(&repair.stderr);
    let put = stderr.find("kms_key_policy: PutKeyPolicy").expect(&stderr);
    let trail = stderr.find("trail_encryption: UpdateTrail").expect(&stderr);
    assert!(put < trail, "the policy first: {stderr}");
    assert!(
        stderr.contains("waiting for CloudTrail to see the new key policy"),
        "UpdateTrail was refused while CloudTrail saw the old policy: {stderr}"
    );
    let refused = layer
        .exchanges()
        .iter()
        .filter(|e| {
            error_code(&e.response).as_deref() == Some("InsufficientEncryptionPolicyException")
        })
        .count();
    assert!(
        refused >= 1,
        "the layer's check refused the first UpdateTrail"
    );
    let state = moto.state(&seed);
    let keys = trailkey_keys(&state);
    assert_eq!(keys.len(), 1, "{state:#}");
    assert_eq!(state["trail"]["kms_key_id"], keys[0]["arn"]);
    let plan = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(plan.status.code(), Some(0), "{}", transcript(&plan));
}

#[test]
fn update_trail_with_a_key_outside_the_buckets_region_is_kms_key_not_found() {
    let moto = Moto::start();
    let seed = moto.seed();
    let key = |region: &str| {
        format!(
            "arn:aws:kms:{region}:{}:key/00000000-0000-4000-8000-000000000001",
            seed.security_tooling
        )
    };
    let update = |region: &str| {
        json!([call(
            "cloudtrail:UpdateTrail",
            json!({"Name": seed.trail_name, "KmsKeyId": key(region)})
        )])
    };
    // moto alone accepts a key in any Region.
    assert_eq!(outcomes(&moto.calls(None, &update("eu-west-1"))), ["ok"]);
    let rule = moto.proxy_with(vec![Box::new(rules::cloudtrail_key_in_the_buckets_region(
        moto.world.clone(),
    ))]);
    assert_eq!(
        outcomes(&moto.calls(Some(&rule), &update("eu-west-1"))),
        ["KmsKeyNotFoundException"]
    );
    assert_eq!(
        answered_by_the_layer(&rule.exchanges(), "KmsKeyNotFoundException").len(),
        1
    );
    // The bucket's own Region passes to moto.
    assert_eq!(
        outcomes(&moto.calls(Some(&rule), &update("us-east-1"))),
        ["ok"]
    );
}

#[test]
fn a_conflict_on_the_trail_is_waited_out_by_trailkey() {
    let moto = Moto::start();
    let seed = moto.seed();
    let update = json!([call(
        "cloudtrail:UpdateTrail",
        json!({"Name": seed.trail_name})
    )]);
    moto.world.trail_change_under_way(Duration::from_secs(600));
    // moto alone never answers ConflictException.
    assert_eq!(outcomes(&moto.calls(None, &update)), ["ok"]);
    let rule = moto.proxy_with(vec![Box::new(rules::cloudtrail_conflicts(
        moto.world.clone(),
    ))]);
    assert_eq!(
        outcomes(&moto.calls(Some(&rule), &update)),
        ["ConflictException"]
    );

    // A change that ends 3 s after it first refuses trailkey's UpdateTrail.
    moto.world.trail_change_met_for(Duration::from_secs(3));
    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("waiting for another change to the trail to finish (UpdateTrail returned ConflictException)"),
        "{stderr}"
    );
    let again = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(again.status.code(), Some(0), "{}", transcript(&again));
}

#[test]
fn cloudtrail_lake_answers_the_worlds_event_data_stores_with_their_keys() {
    let moto = Moto::start();
    let seed = moto.seed();
    let m = seed.management.as_str();
    let alone = moto.calls(
        None,
        &json!([call("cloudtrail:ListEventDataStores", json!({}))]),
    );
    assert_ne!(
        alone[0]["ok"], true,
        "moto 5.2.5 has no CloudTrail Lake: {alone:#?}"
    );

    let key = "arn:aws:kms:us-east-1:111111111111:key/k-1";
    let arn =
        |id: &str, region: &str| format!("arn:aws:cloudtrail:{region}:{m}:eventdatastore/{id}");
    for (id, name, region, kms) in [
        ("e-1", "lake-one", "us-east-1", Some(key)),
        ("e-2", "lake-two", "us-east-1", None),
        ("e-3", "lake-three", "us-east-1", None),
        ("e-4", "lake-eu", "eu-west-1", Some(key)),
    ] {
        moto.world.event_data_store(rules::EventDataStore {
            arn: arn(id, region),
            name: name.to_owned(),
            kms_key_id: kms.map(str::to_owned),
            status: "ENABLED".to_owned(),
        });
    }
    let layer = moto.proxy_with(vec![Box::new(rules::cloudtrail_lake(moto.world.clone()))]);
    let first = moto.calls(
        Some(&layer),
        &json!([call("cloudtrail:ListEventDataStores", json!({}))]),
    );
    let token = first[0]["response"]["NextToken"]
        .as_str()
        .expect("two pages");
    let results = moto.calls(
        Some(&layer),
        &json!([
            call(
                "cloudtrail:ListEventDataStores",
                json!({"NextToken": token})
            ),
            call(
                "cloudtrail:GetEventDataStore",
                json!({"EventDataStore": arn("e-1", "us-east-1")})
            ),
            call(
                "cloudtrail:GetEventDataStore",
                json!({"EventDataStore": "e-2"})
            ),
            call(
                "cloudtrail:GetEventDataStore",
                json!({"EventDataStore": arn("e-4", "eu-west-1")})
            ),
            call(
                "cloudtrail:GetEventDataStore",
                json!({"EventDataStore": format!("arn:aws:cloudtrail:us-east-1:{m}:trail/t")})
            ),
            call(
                "cloudtrail:ListEventDataStores",
                json!({"NextToken": "not-the-layers"})
            ),
        ]),
    );
    let listed: Vec<Value> = first[0]["response"]["EventDataStores"]
        .as_array()
        .unwrap()
        .iter()
        .chain(
            results[0]["response"]["EventDataStores"]
                .as_array()
                .unwrap(),
        )
        .cloned()
        .collect();
    let names: Vec<&str> = listed.iter().map(|s| s["Name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["lake-one", "lake-two", "lake-three"],
        "this Region's only"
    );
    assert!(
        listed.iter().all(|s| s.get("KmsKeyId").is_none()),
        "the list shape has no key: {listed:#?}"
    );
    assert_eq!(results[1]["response"]["KmsKeyId"], key);
    assert_eq!(results[1]["response"]["Name"], "lake-one");
    assert_eq!(
        results[2]["response"]["EventDataStoreArn"],
        arn("e-2", "us-east-1")
    );
    assert!(results[2]["response"].get("KmsKeyId").is_none());
    assert_eq!(
        outcomes(&results[3..]),
        [
            "EventDataStoreNotFoundException",
            "EventDataStoreARNInvalidException",
            "InvalidNextTokenException"
        ]
    );
    assert_eq!(
        answered_by_the_layer(&layer.exchanges(), "EventDataStoreNotFoundException").len(),
        1
    );
    assert!(layer.exchanges().iter().all(|e| !e.forwarded));
    let answered: Vec<String> = moto
        .world
        .answered()
        .iter()
        .map(|a| format!("{}:{}:{}", a.service, a.action, a.region))
        .collect();
    assert_eq!(answered.len(), 7, "{answered:?}");
    assert!(
        answered.iter().all(|a| a.ends_with(":us-east-1")),
        "{answered:?}"
    );
}

#[test]
fn custom_event_selectors_are_told_and_the_default_ones_read_as_aws_answers_them() {
    let moto = Moto::start();
    let seed = moto.seed();
    let trail = seed.trail_arn.as_str();
    let describe = || {
        call(
            "cloudtrail:DescribeTrails",
            json!({"trailNameList": [trail]}),
        )
    };
    let calls = json!([
        describe(),
        call("cloudtrail:GetEventSelectors", json!({"TrailName": trail})),
        call(
            "cloudtrail:PutEventSelectors",
            json!({"TrailName": trail, "EventSelectors": [{
                "ReadWriteType": "All", "IncludeManagementEvents": true,
                "ExcludeManagementEventSources": ["kms.amazonaws.com"]}]})
        ),
        describe(),
        call("cloudtrail:GetTrail", json!({"Name": trail})),
    ]);
    let custom = |r: &Value, path: &str| r["response"].pointer(path).cloned();
    let alone = moto.calls(None, &calls);
    assert_eq!(outcomes(&alone), ["ok"; 5], "{alone:#?}");
    assert_eq!(
        custom(&alone[3], "/trailList/0/HasCustomEventSelectors"),
        Some(json!(false)),
        "moto never says so"
    );
    assert_eq!(custom(&alone[1], "/EventSelectors"), Some(json!([])));

    let other = Moto::start();
    let seed = other.seed();
    let trail = seed.trail_arn.as_str();
    let mut calls = calls;
    for c in calls.as_array_mut().unwrap() {
        let params = &mut c["params"];
        for field in ["TrailName", "Name"] {
            if params.get(field).is_some() {
                params[field] = json!(trail);
            }
        }
        if params.get("trailNameList").is_some() {
            params["trailNameList"] = json!([trail]);
        }
    }
    let through = other.calls(Some(other.layer()), &calls);
    assert_eq!(outcomes(&through), ["ok"; 5], "{through:#?}");
    assert_eq!(
        custom(&through[0], "/trailList/0/HasCustomEventSelectors"),
        Some(json!(false))
    );
    assert_eq!(
        custom(&through[1], "/EventSelectors/0/ReadWriteType"),
        Some(json!("All")),
        "the default selector, as AWS answers it"
    );
    assert_eq!(
        custom(&through[3], "/trailList/0/HasCustomEventSelectors"),
        Some(json!(true))
    );
    assert_eq!(
        custom(&through[4], "/Trail/HasCustomEventSelectors"),
        Some(json!(true))
    );
}
