//! Key policies: explicit and implicit denies, unknown principals and the
//! lockout safety check.

use std::time::Duration;

use serde_json::{Value, json};
use trailkey_testkit::rules;
use trailkey_testkit::{Moto, Run, trailkey_keys, transcript};

use super::{answered_by_the_layer, call, key_policy, outcomes, until_ok};

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
    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["-v", "apply", "--auto-approve"])
        .run();
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("skipped a key trailkey's role may not read") && stderr.contains(&key_id),
        "-v names the skipped key: {stderr}"
    );
    let state = moto.state(&seed);
    assert_eq!(trailkey_keys(&state).len(), 1, "one key of trailkey's");
    let again = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
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
    let plan = Run::new(&moto).config(&seed.config).args(["plan"]).run();
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
    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(apply.status.code(), Some(0), "{}", transcript(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("IAM may not know a new principal") && stderr.contains("retrying in"),
        "{stderr}"
    );
    let again = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
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
    let apply = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
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
