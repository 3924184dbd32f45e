//! The KMS rules: new keys and aliases, key states and their changes, a
//! missing alias, the tag limit.

use std::time::Duration;

use serde_json::{Value, json};
use trailkey_testkit::rules;
use trailkey_testkit::{Moto, Run, trailkey_keys, transcript};

use super::{WINDOW, answered_by_the_layer, call, only_exchange, outcomes, until_ok};

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
fn a_first_apply_through_the_layer_converges_in_one_run() {
    let moto = Moto::start();
    let seed = moto.seed();
    let layer = moto.real_aws(WINDOW);
    let apply = Run::new(&moto)
        .via(&layer)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    eprintln!("{}", transcript(&apply));
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let state = moto.state(&seed);
    let keys = trailkey_keys(&state);
    assert_eq!(keys.len(), 1, "one key: {state:#}");
    assert_eq!(state["keys"].as_array().unwrap().len(), 1, "{state:#}");
    assert_eq!(state["trail"]["kms_key_id"], keys[0]["arn"]);
    let plan = Run::new(&moto)
        .via(&layer)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
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
        Run::new(&moto)
            .via(&layer)
            .config(&seed.config)
            .args(args)
            .run()
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

/// A key's new policy, rotation and tags reach its reads late: within the
/// window after the writes, `GetKeyPolicy`, `GetKeyRotationStatus` and
/// `ListResourceTags` answer as before them (moto alone answers the new
/// values at once); after it, the new values. A key never read before its
/// write is left alone.
#[test]
fn a_keys_new_policy_rotation_and_tags_reach_its_reads_late() {
    let moto = Moto::start();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "New", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*", "Resource": "*"}]
    })
    .to_string();
    let reads = |key: &str| {
        [
            call(
                "kms:GetKeyPolicy",
                json!({"KeyId": key, "PolicyName": "default"}),
            ),
            call("kms:GetKeyRotationStatus", json!({"KeyId": key})),
            call("kms:ListResourceTags", json!({"KeyId": key})),
        ]
    };
    let writes = |key: &str| {
        [
            call(
                "kms:PutKeyPolicy",
                json!({"KeyId": key, "PolicyName": "default", "Policy": policy}),
            ),
            call("kms:EnableKeyRotation", json!({"KeyId": key})),
            call(
                "kms:TagResource",
                json!({"KeyId": key, "Tags": [{"TagKey": "a", "TagValue": "b"}]}),
            ),
        ]
    };
    let shown = |r: &[Value]| {
        (
            r[0]["response"]["Policy"]
                .as_str()
                .unwrap()
                .contains("\"New\""),
            r[1]["response"]["KeyRotationEnabled"].clone(),
            r[2]["response"]["Tags"].as_array().unwrap().len(),
        )
    };
    let script = |key: &str| {
        let mut all: Vec<Value> = reads(key).into();
        all.extend(writes(key));
        all.extend(reads(key));
        Value::Array(all)
    };
    let new_key = |proxy| {
        let r = moto.calls(proxy, &json!([call("kms:CreateKey", json!({}))]));
        r[0]["response"]["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // moto alone: the new values at once.
    let key = new_key(None);
    let alone = moto.calls(None, &script(&key));
    assert_eq!(outcomes(&alone), ["ok"; 9]);
    assert_eq!(shown(&alone[..3]), (false, json!(false), 0));
    assert_eq!(shown(&alone[6..]), (true, json!(true), 1));

    let rule = moto.proxy_with(vec![Box::new(rules::kms_reads_propagate(WINDOW))]);
    let key = new_key(Some(&rule));
    let through = moto.calls(Some(&rule), &script(&key));
    assert_eq!(outcomes(&through), ["ok"; 9]);
    assert_eq!(
        shown(&through[6..]),
        (false, json!(false), 0),
        "{through:#?}"
    );
    std::thread::sleep(WINDOW);
    let after = moto.calls(Some(&rule), &Value::Array(reads(&key).into()));
    assert_eq!(shown(&after), (true, json!(true), 1), "{after:#?}");
    // A later write: its reads show the answer read after the first
    // writes, not the one replayed while they propagated.
    let tag_again = call(
        "kms:TagResource",
        json!({"KeyId": key, "Tags": [{"TagKey": "c", "TagValue": "d"}]}),
    );
    let mut again = vec![tag_again];
    again.extend(reads(&key));
    let again = moto.calls(Some(&rule), &Value::Array(again));
    assert_eq!(shown(&again[1..]), (true, json!(true), 1), "{again:#?}");
    std::thread::sleep(WINDOW);
    let settled = moto.calls(Some(&rule), &Value::Array(reads(&key).into()));
    assert_eq!(shown(&settled), (true, json!(true), 2), "{settled:#?}");

    // Never read before its writes: left alone.
    let key = new_key(Some(&rule));
    let mut unread: Vec<Value> = writes(&key).into();
    unread.extend(reads(&key));
    let through = moto.calls(Some(&rule), &Value::Array(unread));
    assert_eq!(shown(&through[3..]), (true, json!(true), 1), "{through:#?}");
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
fn kms_keeps_a_key_within_fifty_tags_and_trailkey_refuses_before_any_write() {
    let moto = Moto::start();
    let seed = moto.seed();
    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
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

    // Putting ManagedBy back would make 51: the plan refuses, before any
    // write (once KMS shows the untagging: the layer's window).
    std::thread::sleep(trailkey_testkit::LAYER_WINDOW);
    moto.start_recording();
    let plan = Run::new(&moto).config(&seed.config).args(["plan"]).run();
    assert_eq!(plan.status.code(), Some(1), "{}", transcript(&plan));
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert!(
        stderr.contains(
            "has 50 tags, and the 1 trailkey would add make 51: over KMS's limit of 50 tags per key"
        ),
        "{stderr}"
    );
    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(apply.status.code(), Some(1), "{}", transcript(&apply));
    assert!(
        moto.recorded_writes().is_empty(),
        "{:?}",
        moto.recorded_writes()
    );
}

#[test]
fn kms_checks_and_keeps_the_rotation_period_that_moto_drops() {
    let moto = Moto::start();
    let status = || call("kms:GetKeyRotationStatus", json!({"KeyId": "$KeyId"}));
    let enable = |days: Option<i64>| {
        let mut params = json!({"KeyId": "$Arn"});
        if let Some(days) = days {
            params["RotationPeriodInDays"] = json!(days);
        }
        call("kms:EnableKeyRotation", params)
    };
    let calls = json!([
        call("kms:CreateKey", json!({})),
        enable(Some(2561)),
        enable(Some(180)),
        status(),
        enable(None),
        status(),
        enable(Some(90)),
        call("kms:DisableKeyRotation", json!({"KeyId": "$KeyId"})),
        status(),
    ]);
    let period = |r: &Value| r["response"].get("RotationPeriodInDays").cloned();

    let alone = moto.calls(None, &calls);
    assert_eq!(outcomes(&alone), ["ok"; 9], "moto alone: {alone:#?}");
    assert_eq!(period(&alone[3]), None, "moto drops the period");

    let mut through = calls.as_array().unwrap().clone();
    // The key must be visible before the layer lets calls name it.
    through[1] = until_ok("kms:DescribeKey", json!({"KeyId": "$KeyId"}));
    through.insert(2, enable(Some(2561)));
    let results = moto.calls(Some(moto.layer()), &Value::Array(through));
    assert_eq!(
        outcomes(&results),
        [
            "ok",
            "ok",
            "ValidationException",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok"
        ],
        "{results:#?}"
    );
    assert!(
        results[2]["message"]
            .as_str()
            .unwrap()
            .contains("Member must have value less than or equal to 2560"),
        "{results:#?}"
    );
    assert_eq!(period(&results[4]), Some(json!(180)), "{results:#?}");
    assert_eq!(
        period(&results[6]),
        Some(json!(365)),
        "no period is KMS's default"
    );
    assert_eq!(results[9]["response"]["KeyRotationEnabled"], false);
    assert_eq!(period(&results[9]), None, "no period while rotation is off");
}
