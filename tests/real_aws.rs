//! The real-AWS rules layer (`trailkey_testkit::rules`): each rule answers as
//! real AWS does where moto is lenient. Each test first shows what moto
//! alone answers, then the same calls through the rule, so that the rule
//! is what makes the difference; the proxy's record shows the rule, not
//! moto, gave the answer. Calls are sent by boto3 (`fixture.py calls`),
//! trailkey's by the real binary.

use std::time::Duration;

use serde_json::{Value, json};
use trailkey_testkit::proxy::Exchange;
use trailkey_testkit::rules::{self, AWS_JSON_1_1, error_code};
use trailkey_testkit::{Moto, trailkey_keys, transcript};

/// How long a new key or alias stays unseen behind the layer.
const WINDOW: Duration = Duration::from_secs(1);

/// How long a test waits for the window to pass: far more than `WINDOW`.
const PATIENCE: f64 = 10.0;

fn call(op: &str, params: Value) -> Value {
    json!({"op": op, "params": params})
}

/// `op` sent again until it succeeds, for at most [`PATIENCE`].
fn until_ok(op: &str, params: Value) -> Value {
    json!({"op": op, "params": params, "until_ok": PATIENCE})
}

/// `ok` or the error code of each result.
fn outcomes(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| {
            if r["ok"] == true {
                "ok".to_owned()
            } else {
                r["code"].as_str().unwrap_or("?").to_owned()
            }
        })
        .collect()
}

/// The exchanges the proxy answered itself with error `code`.
fn answered_by_the_layer<'e>(exchanges: &'e [Exchange], code: &str) -> Vec<&'e Exchange> {
    exchanges
        .iter()
        .filter(|e| error_code(&e.response).as_deref() == Some(code))
        .inspect(|e| {
            assert!(!e.forwarded, "moto, not the layer, answered {code}: {e:?}");
            assert_eq!(e.response.status, 400);
            assert_eq!(
                e.request.header("content-type"),
                Some(AWS_JSON_1_1),
                "a JSON 1.1 request"
            );
            let content_type = e
                .response
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.as_str());
            assert_eq!(content_type, Some(AWS_JSON_1_1));
        })
        .collect()
}

fn only_exchange<'e>(exchanges: &'e [Exchange], service: &str, action: &str) -> &'e Exchange {
    let found: Vec<_> = exchanges.iter().filter(|e| e.is(service, action)).collect();
    assert_eq!(found.len(), 1, "one {service}:{action}");
    found[0]
}

#[test]
fn a_new_key_is_not_found_by_id_or_arn_until_its_window_has_passed() {
    let moto = Moto::start();
    let calls = json!([
        call("kms:CreateKey", json!({})),
        call("kms:DescribeKey", json!({"KeyId": "$KeyId"})),
        call("kms:DescribeKey", json!({"KeyId": "$Arn"})),
        call(
            "kms:GetKeyPolicy",
            json!({"KeyId": "$KeyId", "PolicyName": "default"})
        ),
        call(
            "kms:GetKeyPolicy",
            json!({"KeyId": "$Arn", "PolicyName": "default"})
        ),
        call(
            "kms:CreateAlias",
            json!({"AliasName": "alias/young", "TargetKeyId": "$KeyId"})
        ),
    ]);
    let alone = moto.calls(None, &calls);
    let alias = Value::from("alias/young-behind-the-layer");
    let mut calls = calls;
    calls[5]["params"]["AliasName"] = alias.clone();
    assert_eq!(outcomes(&alone), ["ok"; 6], "moto alone: {alone:#?}");

    let layer = moto.real_aws(WINDOW);
    let mut through = calls.as_array().unwrap().clone();
    through.extend([
        until_ok("kms:DescribeKey", json!({"KeyId": "$KeyId"})),
        call("kms:DescribeKey", json!({"KeyId": "$Arn"})),
        call(
            "kms:GetKeyPolicy",
            json!({"KeyId": "$Arn", "PolicyName": "default"}),
        ),
        call(
            "kms:CreateAlias",
            json!({"AliasName": alias, "TargetKeyId": "$KeyId"}),
        ),
    ]);
    let results = moto.calls(Some(&layer), &Value::Array(through));
    let not_found = "NotFoundException";
    assert_eq!(
        outcomes(&results),
        [
            "ok", not_found, not_found, not_found, not_found, not_found, "ok", "ok", "ok", "ok"
        ],
        "{results:#?}"
    );
    let arn = results[0]["response"]["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap();
    assert_eq!(
        results[1]["message"],
        format!("Key '{arn}' does not exist"),
        "real KMS's message"
    );

    let exchanges = layer.exchanges();
    let created = only_exchange(&exchanges, "kms", "CreateKey");
    let refused = answered_by_the_layer(&exchanges, not_found);
    assert!(refused.len() >= 5, "{refused:#?}");
    let found = exchanges
        .iter()
        .find(|e| e.is("kms", "DescribeKey") && e.forwarded)
        .expect("a DescribeKey reached moto");
    let waited = found.at - created.at;
    assert!(
        waited >= WINDOW && waited < WINDOW + Duration::from_secs(5),
        "found {waited:?} after CreateKey"
    );
    eprintln!(
        "the new key was found {waited:.2?} after CreateKey, at the {}th DescribeKey by ID",
        results[6]["attempts"]
    );
}

#[test]
fn a_new_or_moved_alias_is_not_found_by_describe_key_during_its_window() {
    let moto = Moto::start();
    let alone = moto.calls(
        None,
        &json!([
            call("kms:CreateKey", json!({})),
            call(
                "kms:CreateAlias",
                json!({"AliasName": "alias/moto", "TargetKeyId": "$KeyId"})
            ),
            call("kms:DescribeKey", json!({"KeyId": "alias/moto"})),
        ]),
    );
    assert_eq!(outcomes(&alone), ["ok"; 3], "moto alone: {alone:#?}");

    let layer = moto.real_aws(WINDOW);
    let results = moto.calls(
        Some(&layer),
        &json!([
            call("kms:CreateKey", json!({})),
            until_ok("kms:DescribeKey", json!({"KeyId": "$KeyId"})),
            call(
                "kms:CreateAlias",
                json!({"AliasName": "alias/fresh", "TargetKeyId": "$KeyId"})
            ),
            call("kms:DescribeKey", json!({"KeyId": "alias/fresh"})),
            until_ok("kms:DescribeKey", json!({"KeyId": "alias/fresh"})),
            call("kms:CreateKey", json!({})),
            until_ok("kms:DescribeKey", json!({"KeyId": "$KeyId"})),
            call(
                "kms:UpdateAlias",
                json!({"AliasName": "alias/fresh", "TargetKeyId": "$KeyId"})
            ),
            call("kms:DescribeKey", json!({"KeyId": "alias/fresh"})),
            until_ok("kms:DescribeKey", json!({"KeyId": "alias/fresh"})),
        ]),
    );
    let not_found = "NotFoundException";
    assert_eq!(
        outcomes(&results),
        [
            "ok", "ok", "ok", not_found, "ok", "ok", "ok", "ok", not_found, "ok"
        ],
        "{results:#?}"
    );
    let key_of = |r: &Value| r["response"]["KeyMetadata"]["KeyId"].clone();
    assert_eq!(key_of(&results[4]), key_of(&results[0]));
    assert_eq!(key_of(&results[9]), key_of(&results[5]), "the moved alias");
    assert!(results[4]["attempts"].as_u64() > Some(1));

    let exchanges = layer.exchanges();
    assert!(answered_by_the_layer(&exchanges, not_found).len() >= 2);
    for action in ["CreateAlias", "UpdateAlias"] {
        let set = only_exchange(&exchanges, "kms", action);
        let found = exchanges
            .iter()
            .find(|e| {
                e.is("kms", "DescribeKey")
                    && e.forwarded
                    && e.at > set.at
                    && String::from_utf8_lossy(&e.request.body).contains("alias/fresh")
            })
            .expect("DescribeKey of the alias reached moto");
        let waited = found.at - set.at;
        assert!(waited >= WINDOW, "{action}: found after {waited:?}");
        eprintln!("after {action}, the alias was found {waited:.2?} later");
    }
}

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
fn key_states_refuse_writes_with_the_codes_of_real_kms() {
    const INVALID: &str = "KMSInvalidStateException";
    const DISABLED: &str = "DisabledException";
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*",
            "Resource": "*",
        }],
    })
    .to_string();
    let key = json!({"KeyId": "$KeyId"});
    let put_policy = json!({"KeyId": "$KeyId", "PolicyName": "default", "Policy": policy});
    let tag = json!({"KeyId": "$KeyId", "Tags": [{"TagKey": "Team", "TagValue": "Security"}]});
    let tag_by_arn = json!({"KeyId": "$Arn", "Tags": [{"TagKey": "Team", "TagValue": "Security"}]});
    let alias = |name: &str| json!({"AliasName": name, "TargetKeyId": "$KeyId"});
    // Each call and what real KMS answers; moto 5.2.5 answers "ok" to all.
    let script: Vec<(Value, &str)> = vec![
        (call("kms:CreateKey", json!({})), "ok"),
        (call("kms:CancelKeyDeletion", key.clone()), INVALID),
        (call("kms:DisableKey", key.clone()), "ok"),
        (call("kms:EnableKeyRotation", key.clone()), DISABLED),
        (call("kms:CancelKeyDeletion", key.clone()), INVALID),
        (call("kms:PutKeyPolicy", put_policy.clone()), "ok"),
        (call("kms:TagResource", tag.clone()), "ok"),
        (call("kms:CreateAlias", alias("alias/disabled")), "ok"),
        (call("kms:GetKeyRotationStatus", key.clone()), "ok"),
        (
            call(
                "kms:ScheduleKeyDeletion",
                json!({"KeyId": "$KeyId", "PendingWindowInDays": 7}),
            ),
            "ok",
        ),
        (call("kms:CreateAlias", alias("alias/pending")), INVALID),
        (call("kms:UpdateAlias", alias("alias/disabled")), INVALID),
        (call("kms:TagResource", tag_by_arn), INVALID),
        (call("kms:EnableKeyRotation", key.clone()), INVALID),
        (
            call(
                "kms:ScheduleKeyDeletion",
                json!({"KeyId": "$KeyId", "PendingWindowInDays": 7}),
            ),
            INVALID,
        ),
        (call("kms:EnableKey", key.clone()), INVALID),
        (call("kms:GetKeyRotationStatus", key.clone()), "ok"),
        (call("kms:PutKeyPolicy", put_policy), "ok"),
        (call("kms:DescribeKey", key.clone()), "ok"),
        (call("kms:CancelKeyDeletion", key.clone()), "ok"),
        (call("kms:EnableKey", key.clone()), "ok"),
        (call("kms:EnableKeyRotation", key.clone()), "ok"),
        (call("kms:CancelKeyDeletion", key), INVALID),
    ];
    let calls = Value::Array(script.iter().map(|(c, _)| c.clone()).collect());
    let real: Vec<&str> = script.iter().map(|(_, o)| *o).collect();

    let alone = Moto::start().calls(None, &calls);
    assert_eq!(
        outcomes(&alone),
        vec!["ok"; script.len()],
        "moto alone: {alone:#?}"
    );

    let moto = Moto::start();
    let layer = moto.proxy_with(vec![Box::new(rules::kms_key_states())]);
    let results = moto.calls(Some(&layer), &calls);
    assert_eq!(outcomes(&results), real, "{results:#?}");
    let arn = results[0]["response"]["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap();
    for (result, message) in [
        (&results[1], "is not pending deletion."),
        (&results[3], "is disabled."),
        (&results[10], "is pending deletion."),
    ] {
        assert_eq!(result["message"], format!("{arn} {message}"));
    }
    let exchanges = layer.exchanges();
    let refused = answered_by_the_layer(&exchanges, INVALID).len()
        + answered_by_the_layer(&exchanges, DISABLED).len();
    assert_eq!(refused, real.iter().filter(|o| **o != "ok").count());
}

#[test]
fn update_alias_of_an_alias_that_is_gone_is_not_found() {
    let moto = Moto::start();
    let calls = json!([
        call("kms:CreateKey", json!({})),
        call("kms:ListAliases", json!({})),
        call(
            "kms:UpdateAlias",
            json!({"AliasName": "alias/missing", "TargetKeyId": "$KeyId"})
        ),
        call(
            "kms:CreateAlias",
            json!({"AliasName": "alias/there", "TargetKeyId": "$KeyId"})
        ),
        call(
            "kms:UpdateAlias",
            json!({"AliasName": "alias/there", "TargetKeyId": "$KeyId"})
        ),
        call("kms:DeleteAlias", json!({"AliasName": "alias/there"})),
        call(
            "kms:UpdateAlias",
            json!({"AliasName": "alias/there", "TargetKeyId": "$KeyId"})
        ),
    ]);
    let not_found = "NotFoundException";
    let expected = ["ok", "ok", not_found, "ok", "ok", "ok", not_found];
    // moto 5.2.5 is not lenient here: it refuses an alias it does not have.
    let alone = moto.calls(None, &calls);
    assert_eq!(outcomes(&alone), expected, "moto alone: {alone:#?}");

    let layer = moto.proxy_with(vec![Box::new(rules::update_alias_needs_an_alias())]);
    let results = moto.calls(Some(&layer), &calls);
    assert_eq!(outcomes(&results), expected, "{results:#?}");
    assert_eq!(results[2]["message"], "Alias alias/missing is not found.");
    let exchanges = layer.exchanges();
    let refused = answered_by_the_layer(&exchanges, not_found);
    assert_eq!(refused.len(), 2, "the rule, not moto, refused both");
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
fn a_first_apply_through_the_layer_converges_in_one_run() {
    let moto = Moto::start();
    let seed = moto.seed();
    let layer = moto.real_aws(WINDOW);
    let apply = moto
        .trailkey_via(&layer, &seed.config)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    eprintln!("{}", transcript(&apply));
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let state = moto.state(&seed);
    let keys = trailkey_keys(&state);
    assert_eq!(keys.len(), 1, "one key: {state:#}");
    assert_eq!(state["keys"].as_array().unwrap().len(), 1, "{state:#}");
    assert_eq!(state["trail"]["kms_key_id"], keys[0]["arn"]);
    let plan = moto
        .trailkey_via(&layer, &seed.config)
        .args(["plan", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", transcript(&plan));
}

/// Someone moves the alias to another key; apply moves it back, and the
/// check after apply waits for the moved alias to show.
#[test]
fn a_moved_alias_is_moved_back_in_one_run_through_the_layer() {
    let moto = Moto::start();
    let seed = moto.seed();
    let layer = moto.real_aws(WINDOW);
    let run = |args: &[&str]| {
        moto.trailkey_via(&layer, &seed.config)
            .args(args)
            .output()
            .unwrap()
    };
    let first = run(&["apply", "--auto-approve"]);
    assert_eq!(first.status.code(), Some(0), "{}", transcript(&first));
    let ours = trailkey_keys(&moto.state(&seed))[0]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    moto.fixture(&[
        "drift",
        "alias-repoint",
        "--security-tooling",
        &seed.security_tooling,
    ]);
    let repair = run(&["apply", "--auto-approve"]);
    assert_eq!(repair.status.code(), Some(0), "{}", transcript(&repair));
    let stderr = String::from_utf8_lossy(&repair.stderr);
    assert!(stderr.contains("kms_alias: UpdateAlias"), "{stderr}");
    assert!(
        stderr.contains("waiting for AWS to show what apply wrote"),
        "the moved alias was not visible at once: {stderr}"
    );
    let state = moto.state(&seed);
    let alias = &state["aliases"].as_array().unwrap()[0];
    assert_eq!(alias["target_key_id"], ours.as_str());
    assert_eq!(trailkey_keys(&state).len(), 1, "{state:#}");
    let plan = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", transcript(&plan));
}

/// A key policy document: the account's root administers the key, plus
/// `statements`.
fn key_policy(account: &str, statements: &[Value]) -> String {
    let mut all = vec![json!({
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": "kms:*",
        "Resource": "*",
    })];
    all.extend_from_slice(statements);
    json!({"Version": "2012-10-17", "Statement": all}).to_string()
}

/// trailkey's key protection for a key of `account`: `Deny` of disabling
/// the key, its deletion and disabling its rotation, to every principal but
/// the role trailkey assumes (with or without a path) and a declared admin.
fn protect_statement(account: &str) -> Value {
    json!({
        "Sid": "TrailkeyProtectKey",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": ["kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:DisableKeyRotation"],
        "Resource": "*",
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": [
            format!("arn:aws:iam::{account}:role/AWSControlTowerExecution"),
            format!("arn:aws:iam::{account}:role/*/AWSControlTowerExecution"),
            format!("arn:aws:iam::{account}:role/BreakGlass"),
        ]}},
    })
}

#[test]
fn a_key_policy_deny_refuses_the_roles_it_does_not_exempt() {
    const DENIED: &str = "AccessDeniedException";
    const OTHER: &str = "SomeoneElse";
    let moto = Moto::start();
    let seed = moto.seed();
    let st = seed.security_tooling.as_str();
    let create = json!([call(
        "kms:CreateKey",
        json!({"Policy": key_policy(st, &[protect_statement(st)])})
    )]);
    // By ARN where moto 5.2.5 takes one (it fails DisableKey and
    // ScheduleKeyDeletion by ARN with a 500).
    let protected = |key: &Value| {
        let id = json!({"KeyId": key["KeyId"]});
        json!([
            call("kms:DisableKeyRotation", json!({"KeyId": key["Arn"]})),
            call("kms:DisableKey", id),
            call(
                "kms:ScheduleKeyDeletion",
                json!({"KeyId": key["KeyId"], "PendingWindowInDays": 7})
            ),
        ])
    };
    // The role trailkey assumes creates the key; another role of the same
    // account disables it.
    let key = moto.calls_as(st, None, &create)[0]["response"]["KeyMetadata"].clone();
    let alone = moto.calls_as_role(st, OTHER, None, &protected(&key));
    assert_eq!(outcomes(&alone), ["ok"; 3], "moto alone: {alone:#?}");

    let layer = moto.proxy_with(vec![Box::new(rules::kms_key_policy_denies())]);
    let key = moto.calls_as(st, Some(&layer), &create)[0]["response"]["KeyMetadata"].clone();
    let (id, arn) = (key["KeyId"].as_str().unwrap(), key["Arn"].as_str().unwrap());
    let other = moto.calls_as_role(st, OTHER, Some(&layer), &protected(&key));
    assert_eq!(outcomes(&other), [DENIED; 3], "{other:#?}");
    assert_eq!(
        other[1]["message"],
        format!(
            "User: arn:aws:sts::{st}:assumed-role/{OTHER}/trailkey-fixture is not authorized to \
             perform: kms:DisableKey on resource: {arn} with an explicit deny in a resource-based policy"
        ),
        "real KMS's message"
    );
    let unprotected = moto.calls_as_role(
        st,
        OTHER,
        Some(&layer),
        &json!([
            call("kms:DescribeKey", json!({"KeyId": id})),
            call("kms:EnableKeyRotation", json!({"KeyId": id})),
        ]),
    );
    assert_eq!(
        outcomes(&unprotected),
        ["ok"; 2],
        "other actions: {unprotected:#?}"
    );
    for exempt in [
        "AWSControlTowerExecution",
        "cross/path/AWSControlTowerExecution",
        "BreakGlass",
    ] {
        let mut calls = protected(&key).as_array().unwrap().clone();
        calls.extend([
            call("kms:CancelKeyDeletion", json!({"KeyId": id})),
            call("kms:EnableKey", json!({"KeyId": id})),
            call("kms:EnableKeyRotation", json!({"KeyId": id})),
        ]);
        let results = moto.calls_as_role(st, exempt, Some(&layer), &Value::Array(calls));
        assert_eq!(outcomes(&results), ["ok"; 6], "{exempt}: {results:#?}");
    }
    // Anyone may replace the policy; without the statement, nothing is
    // protected.
    let put = json!({"KeyId": id, "PolicyName": "default", "Policy": key_policy(st, &[])});
    let mut calls = vec![call("kms:PutKeyPolicy", put)];
    calls.extend(protected(&key).as_array().unwrap().iter().cloned());
    let after = moto.calls_as_role(st, OTHER, Some(&layer), &Value::Array(calls));
    assert_eq!(outcomes(&after), ["ok"; 4], "{after:#?}");

    let exchanges = layer.exchanges();
    let refused = answered_by_the_layer(&exchanges, DENIED);
    assert_eq!(refused.len(), 3, "the rule, not moto, refused them");
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
    let first = moto.run(&seed.config, &["apply", "--auto-approve"]);
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
    let repair = moto.run(&seed.config, &["apply", "--auto-approve"]);
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
    let plan = moto.run(&seed.config, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", transcript(&plan));
}

/// AWS answers a request rate it does not accept with
/// `ThrottlingException` (HTTP 400); the SDK's standard strategy retries it
/// with backoff. trailkey bounds that at 5 attempts and says each retry on
/// stderr: throttled twice, the plan goes on; throttled every time, it
/// stops after the 5th attempt with the error.
#[test]
fn throttling_is_retried_on_stderr_and_bounded_at_five_attempts() {
    let moto = Moto::start();
    let seed = moto.seed();
    for (throttled, expect) in [(2, 2), (usize::MAX, 1)] {
        let proxy = moto.layer_with(vec![Box::new(
            move |request: &trailkey_testkit::proxy::Request,
                  traffic: &trailkey_testkit::proxy::Traffic| {
                if request.is("organizations", "DescribeOrganization")
                    && traffic.arrived("organizations", "DescribeOrganization") <= throttled
                {
                    trailkey_testkit::proxy::Decision::Respond(rules::json_error(
                        "ThrottlingException",
                        "Rate exceeded",
                    ))
                } else {
                    trailkey_testkit::proxy::Decision::Forward
                }
            },
        )]);
        let out = moto
            .trailkey_via(&proxy, &seed.config)
            .args(["plan", "--detailed-exitcode"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(expect), "{}", transcript(&out));
        let attempts = proxy
            .exchanges()
            .iter()
            .filter(|e| e.is("organizations", "DescribeOrganization"))
            .count();
        let retries: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("retrying") && l.contains("DescribeOrganization"))
            .collect();
        if expect == 2 {
            assert_eq!(attempts, 3, "{stderr}");
            assert_eq!(retries.len(), 2, "{stderr}");
            assert!(retries[1].contains("(attempt 3 of 5)"), "{stderr}");
        } else {
            assert_eq!(attempts, 5, "bounded: {stderr}");
            assert_eq!(retries.len(), 4, "{stderr}");
            assert!(retries[3].contains("(attempt 5 of 5)"), "{stderr}");
            assert!(stderr.contains("ThrottlingException"), "{stderr}");
            assert!(stderr.contains("hint:"), "{stderr}");
        }
    }
}

#[test]
fn account_answers_carry_state_only_as_organizations_sends_them_now() {
    let moto = Moto::start();
    let seed = moto.seed();
    let calls = json!([
        call("organizations:ListAccounts", json!({})),
        call(
            "organizations:DescribeAccount",
            json!({"AccountId": seed.log_archive})
        ),
    ]);
    let accounts = |results: &[Value]| -> Vec<Value> {
        let mut all = results[0]["response"]["Accounts"]
            .as_array()
            .unwrap()
            .clone();
        all.push(results[1]["response"]["Account"].clone());
        all
    };
    // moto alone still sends the retired Status beside State.
    let direct = moto.calls(None, &calls);
    assert_eq!(outcomes(&direct), ["ok", "ok"]);
    assert!(
        accounts(&direct)
            .iter()
            .all(|a| a["Status"] == "ACTIVE" && a["State"] == "ACTIVE")
    );
    // Through the rule, State only.
    let rule = moto.proxy_with(vec![Box::new(
        rules::organizations_accounts_have_no_status(),
    )]);
    let through = moto.calls(Some(&rule), &calls);
    assert_eq!(outcomes(&through), ["ok", "ok"]);
    let seen = accounts(&through);
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert!(
        seen.iter()
            .all(|a| a.get("Status").is_none() && a["State"] == "ACTIVE"),
        "{seen:#?}"
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

/// A key another team made in Security Tooling, whose policy lets only
/// that team's role in. KMS authorizes key calls by the key policy, so
/// trailkey's role is denied; moto lets it through. trailkey's search skips
/// such a key (`-v` names it) and converges beside it; an alias on it is
/// refused before any write, blaming the key policy.
#[test]
fn a_key_whose_policy_shuts_trailkey_out_is_skipped_or_refused_with_the_key_policy_named() {
    const TEAM: &str = "PaymentsAdmin";
    let moto = Moto::start();
    let seed = moto.seed();
    let st = seed.security_tooling.as_str();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TeamOnly",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{st}:role/{TEAM}")},
            "Action": "kms:*",
            "Resource": "*"
        }]
    });
    let made = moto.calls_as_role(
        st,
        TEAM,
        Some(moto.layer()),
        &json!([
            call(
                "kms:CreateKey",
                json!({"Policy": policy.to_string(), "Description": "payments"})
            ),
            until_ok("kms:DescribeKey", json!({"KeyId": "$KeyId"})),
        ]),
    );
    assert_eq!(outcomes(&made), ["ok", "ok"], "{made:#?}");
    let key_id = made[0]["response"]["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();

    let read = json!([call("kms:ListResourceTags", json!({"KeyId": key_id}))]);
    // moto alone lets trailkey's role read it; the layer does not.
    let role = "AWSControlTowerExecution";
    assert_eq!(outcomes(&moto.calls_as_role(st, role, None, &read)), ["ok"]);
    let denied = moto.calls_as_role(st, role, Some(moto.layer()), &read);
    assert_eq!(outcomes(&denied), ["AccessDeniedException"]);
    assert!(
        denied[0]["message"]
            .as_str()
            .unwrap()
            .contains("because no resource-based policy allows the kms:ListResourceTags action"),
        "{denied:#?}"
    );

    // The first apply skips it and converges.
    let apply = moto.run(&seed.config, &["-v", "apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("skipped a key trailkey's role may not read") && stderr.contains(&key_id),
        "-v names the skipped key: {stderr}"
    );
    let state = moto.state(&seed);
    assert_eq!(trailkey_keys(&state).len(), 1, "one key of trailkey's");
    let again = moto.run(&seed.config, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", transcript(&again));

    // The alias moved onto the team's key: refused, before any write.
    let moved = moto.calls_as_role(
        st,
        TEAM,
        Some(moto.layer()),
        &json!([call(
            "kms:UpdateAlias",
            json!({"AliasName": "alias/cloudtrail-org-key", "TargetKeyId": key_id})
        )]),
    );
    assert_eq!(outcomes(&moved), ["ok"], "{moved:#?}");
    std::thread::sleep(Duration::from_millis(1200));
    moto.start_recording();
    let plan = moto.run(&seed.config, &["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", transcript(&plan));
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert!(
        stderr.contains("AWS DescribeKey returned AccessDeniedException"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not let arn:aws:iam::")
            && stderr.contains("trailkey's IAM policies are not the cause"),
        "{stderr}"
    );
    assert!(moto.recorded_writes().is_empty());
}

#[test]
fn a_keys_new_state_reaches_kms_and_cloudtrail_late() {
    let moto = Moto::start();
    let seed = moto.seed();
    let enable_then_use = json!([
        call("kms:CreateKey", json!({})),
        call("kms:DescribeKey", json!({"KeyId": "$KeyId"})),
        call("kms:DisableKey", json!({"KeyId": "$KeyId"})),
        call("kms:EnableKey", json!({"KeyId": "$KeyId"})),
        call("kms:DescribeKey", json!({"KeyId": "$KeyId"})),
        call("kms:EnableKeyRotation", json!({"KeyId": "$KeyId"})),
        call(
            "cloudtrail:UpdateTrail",
            json!({"Name": seed.trail_name, "KmsKeyId": "$Arn"})
        ),
        until_ok("kms:EnableKeyRotation", json!({"KeyId": "$KeyId"})),
    ]);
    let state = |r: &Value| r["response"]["KeyMetadata"]["KeyState"].clone();
    // moto alone: enabled at once.
    let alone = moto.calls(None, &enable_then_use);
    assert_eq!(outcomes(&alone), ["ok"; 8]);
    assert_eq!(state(&alone[4]), "Enabled");

    let rule = moto.proxy_with(vec![Box::new(rules::kms_state_changes_propagate(WINDOW))]);
    let through = moto.calls(Some(&rule), &enable_then_use);
    assert_eq!(
        outcomes(&through),
        [
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "DisabledException",
            "KmsKeyDisabledException",
            "ok"
        ],
        "{through:#?}"
    );
    assert_eq!(
        state(&through[4]),
        "Disabled",
        "DescribeKey shows the old state"
    );
    assert!(
        through[7]["attempts"].as_u64().unwrap() > 1,
        "until the window passed"
    );

    // A cancelled deletion: the key is still seen pending deletion.
    let cancel_then_tag = json!([
        call("kms:CreateKey", json!({})),
        call(
            "kms:ScheduleKeyDeletion",
            json!({"KeyId": "$KeyId", "PendingWindowInDays": 7})
        ),
        call("kms:DescribeKey", json!({"KeyId": "$KeyId"})),
        call("kms:CancelKeyDeletion", json!({"KeyId": "$KeyId"})),
        call(
            "kms:TagResource",
            json!({"KeyId": "$KeyId", "Tags": [{"TagKey": "a", "TagValue": "b"}]})
        ),
        until_ok(
            "kms:TagResource",
            json!({"KeyId": "$KeyId", "Tags": [{"TagKey": "a", "TagValue": "b"}]})
        ),
    ]);
    let through = moto.calls(Some(&rule), &cancel_then_tag);
    assert_eq!(
        outcomes(&through),
        ["ok", "ok", "ok", "ok", "KMSInvalidStateException", "ok"],
        "{through:#?}"
    );
}

#[test]
fn kms_refuses_a_principal_iam_does_not_know_yet_and_trailkey_waits_for_it() {
    let moto = Moto::start();
    let seed = moto.seed();
    let siem = "arn:aws:iam::555566667777:role/SIEM".to_owned();
    moto.world.unknown_principal(&siem, None);
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Siem", "Effect": "Allow", "Principal": {"AWS": siem}, "Action": "kms:Decrypt", "Resource": "*"}]
    });
    let create = json!([call("kms:CreateKey", json!({"Policy": policy.to_string()}))]);
    // moto alone takes any principal.
    assert_eq!(outcomes(&moto.calls(None, &create)), ["ok"]);
    let rule = moto.proxy_with(vec![Box::new(rules::kms_policy_principals_and_lockout(
        moto.world.clone(),
    ))]);
    let refused = moto.calls(Some(&rule), &create);
    assert_eq!(outcomes(&refused), ["MalformedPolicyDocumentException"]);
    assert_eq!(
        refused[0]["message"],
        "Policy contains a statement with one or more invalid principals."
    );

    // trailkey, with the new role as a reader, waits until IAM knows it,
    // 3 s after trailkey starts.
    moto.world
        .unknown_principal(&siem, Some(Duration::from_secs(3)));
    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(
        &seed.config,
        format!("{text}\n[readers]\nprincipals = [\"{siem}\"]\n"),
    )
    .unwrap();
    let apply = moto.run(&seed.config, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("IAM may not know a new principal") && stderr.contains("retrying in"),
        "{stderr}"
    );
    let again = moto.run(&seed.config, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", transcript(&again));
}

#[test]
fn the_lockout_safety_check_refuses_at_once_and_trailkey_names_the_callers_permissions() {
    let moto = Moto::start();
    let seed = moto.seed();
    let role = format!(
        "arn:aws:iam::{}:role/AWSControlTowerExecution",
        seed.security_tooling
    );
    moto.world.cannot_put_key_policy(&role);
    let create = json!([call(
        "kms:CreateKey",
        json!({"Policy": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"})
    )]);
    let st = seed.security_tooling.as_str();
    // moto alone takes it.
    assert_eq!(
        outcomes(&moto.calls_as_role(st, "AWSControlTowerExecution", None, &create)),
        ["ok"]
    );
    let refused = moto.calls_as_role(st, "AWSControlTowerExecution", Some(moto.layer()), &create);
    assert_eq!(outcomes(&refused), ["MalformedPolicyDocumentException"]);
    assert_eq!(
        refused[0]["message"],
        "The new key policy will not allow you to update the key policy in the future."
    );

    moto.start_recording();
    let apply = moto.run(&seed.config, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(1), "{}", transcript(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(!stderr.contains("retrying"), "not retried: {stderr}");
    assert!(stderr.contains("kms:PutKeyPolicy"), "{stderr}");
    let creates = moto
        .recorded()
        .iter()
        .filter(|c| c.as_str() == "kms:CreateKey")
        .count();
    assert_eq!(
        creates, 0,
        "the layer, not moto, answered the one CreateKey"
    );
    let layer_creates = moto
        .layer()
        .exchanges()
        .iter()
        .filter(|e| e.is("kms", "CreateKey") && !e.forwarded)
        .count();
    assert_eq!(layer_creates, 2, "the fixture's and trailkey's one attempt");
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

    // A change that ends 3 s after trailkey starts.
    moto.world.trail_change_under_way(Duration::from_secs(3));
    let apply = moto.run(&seed.config, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("waiting for another change to the trail to finish (UpdateTrail returned ConflictException)"),
        "{stderr}"
    );
    let again = moto.run(&seed.config, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", transcript(&again));
}

#[test]
fn kms_keeps_a_key_within_fifty_tags_and_trailkey_refuses_before_any_write() {
    let moto = Moto::start();
    let seed = moto.seed();
    let apply = moto.run(&seed.config, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let state = moto.state(&seed);
    let key_id = trailkey_keys(&state)[0]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another team tags the key up to KMS's limit, and removes ManagedBy.
    let many: Vec<Value> = (0..47)
        .map(|i| json!({"TagKey": format!("team-{i:02}"), "TagValue": "x"}))
        .collect();
    let st = seed.security_tooling.as_str();
    let tagged = moto.calls_as_role(
        st,
        "AWSControlTowerExecution",
        Some(moto.layer()),
        &json!([
            call("kms:ListResourceTags", json!({"KeyId": key_id})),
            call(
                "kms:UntagResource",
                json!({"KeyId": key_id, "TagKeys": ["ManagedBy"]})
            ),
            call("kms:TagResource", json!({"KeyId": key_id, "Tags": many})),
            call(
                "kms:TagResource",
                json!({"KeyId": key_id, "Tags": [{"TagKey": "one-more", "TagValue": "x"}]})
            ),
            call(
                "kms:TagResource",
                json!({"KeyId": key_id, "Tags": [{"TagKey": "two-more", "TagValue": "x"}]})
            ),
        ]),
    );
    // trailkey:alias and trailkey:created with 47 + 1 make 50; one more is refused.
    assert_eq!(
        outcomes(&tagged),
        ["ok", "ok", "ok", "ok", "LimitExceededException"],
        "{tagged:#?}"
    );
    // moto alone takes the 51st.
    let alone = moto.calls_as_role(
        st,
        "AWSControlTowerExecution",
        None,
        &json!([call(
            "kms:TagResource",
            json!({"KeyId": key_id, "Tags": [{"TagKey": "two-more", "TagValue": "x"}]})
        )]),
    );
    assert_eq!(outcomes(&alone), ["ok"]);
    let untag = json!([call(
        "kms:UntagResource",
        json!({"KeyId": key_id, "TagKeys": ["two-more"]})
    )]);
    assert_eq!(
        outcomes(&moto.calls_as_role(st, "AWSControlTowerExecution", Some(moto.layer()), &untag)),
        ["ok"]
    );

    // Putting ManagedBy back would make 51: the plan refuses, before any write.
    moto.start_recording();
    let plan = moto.run(&seed.config, &["plan"]);
    assert_eq!(plan.status.code(), Some(1), "{}", transcript(&plan));
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert!(
        stderr.contains(
            "has 50 tags, and the 1 trailkey would add make 51: over KMS's limit of 50 tags per key"
        ),
        "{stderr}"
    );
    let apply = moto.run(&seed.config, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(1), "{}", transcript(&apply));
    assert!(
        moto.recorded_writes().is_empty(),
        "{:?}",
        moto.recorded_writes()
    );
}

/// The Regions and opt-in status of the calls' results, page by page.
fn regions_of(result: &Value) -> Vec<(String, String)> {
    result["response"]["Regions"]
        .as_array()
        .unwrap_or_else(|| panic!("no Regions in {result:#}"))
        .iter()
        .map(|r| {
            (
                r["RegionName"].as_str().unwrap().to_owned(),
                r["RegionOptStatus"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn list_regions_answers_the_worlds_regions_by_status_page_by_page() {
    let moto = Moto::start();
    let enabled = json!({"RegionOptStatusContains": ["ENABLED", "ENABLED_BY_DEFAULT"]});
    let alone = moto.calls(None, &json!([call("account:ListRegions", enabled.clone())]));
    assert_ne!(
        alone[0]["ok"], true,
        "moto 5.2.5 has no ListRegions: {alone:#?}"
    );

    let layer = moto.proxy_with(vec![Box::new(rules::account_regions(moto.world.clone()))]);
    let first = moto.calls(
        Some(&layer),
        &json!([call("account:ListRegions", enabled.clone())]),
    );
    assert_eq!(first[0]["ok"], true, "{first:#?}");
    let token = first[0]["response"]["NextToken"]
        .as_str()
        .expect("more than one page");
    let mut next = enabled.clone();
    next["NextToken"] = json!(token);
    let results = moto.calls(
        Some(&layer),
        &json!([
            call("account:ListRegions", next),
            call(
                "account:ListRegions",
                json!({"RegionOptStatusContains": ["DISABLED"]})
            ),
            call("account:ListRegions", json!({"MaxResults": 50})),
            call(
                "account:ListRegions",
                json!({"NextToken": "not-the-layers"})
            ),
            call(
                "account:ListRegions",
                json!({"RegionOptStatusContains": ["OPTED_IN"]})
            ),
        ]),
    );
    let mut all = regions_of(&first[0]);
    all.extend(regions_of(&results[0]));
    let names: Vec<&str> = all.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "us-east-1",
            "us-east-2",
            "us-west-2",
            "eu-west-1",
            "ap-southeast-2",
            "af-south-1"
        ],
        "every enabled Region once, the disabled opt-in Region never"
    );
    assert!(results[0]["response"].get("NextToken").is_none());
    assert_eq!(
        regions_of(&results[1]),
        [("me-south-1".to_owned(), "DISABLED".to_owned())]
    );
    assert_eq!(regions_of(&results[2]).len(), rules::DEFAULT_REGIONS.len());
    assert_eq!(
        outcomes(&results[3..]),
        ["ValidationException", "ValidationException"]
    );
    // The layer answered every call itself, and noted them.
    let exchanges = layer.exchanges();
    assert!(
        exchanges
            .iter()
            .all(|e| !e.forwarded && e.is("account", "ListRegions"))
    );
    assert_eq!(moto.world.answered().len(), 6);

    // A test's own Regions.
    moto.world.regions(&[
        ("us-east-1", "ENABLED_BY_DEFAULT"),
        ("ap-east-1", "DISABLING"),
    ]);
    let own = moto.calls(Some(&layer), &json!([call("account:ListRegions", enabled)]));
    assert_eq!(
        regions_of(&own[0]),
        [("us-east-1".to_owned(), "ENABLED_BY_DEFAULT".to_owned())]
    );
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
