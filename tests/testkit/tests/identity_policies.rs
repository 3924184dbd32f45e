//! IAM identity policies attached to a role, as the real-AWS layer
//! enforces them on the role's sessions in front of a real moto
//! (`rules::iam_identity_policies`): what the policies allow reaches moto,
//! the rest is `AccessDenied` as the service words it; a request on another
//! account's resource needs the caller's policy to name that resource and
//! the owner to allow it (for an organization trail, CloudTrail's
//! delegation).

use serde_json::{Value, json};
use trailkey_testkit::rules::CLOUDTRAIL;
use trailkey_testkit::{Moto, Seed, call, outcomes};

const ROLE: &str = "TrailkeyDelegatedAdministrator";

/// `call`, repeated until it succeeds or 5 s have passed.
fn until_ok(mut call: Value) -> Value {
    call["until_ok"] = json!(5);
    call
}

fn role_arn(seed: &Seed) -> String {
    format!("arn:aws:iam::{}:role/{ROLE}", seed.security_tooling)
}

fn policy(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// `calls` signed by a session of [`ROLE`] in Security Tooling, through
/// the layer.
fn as_role(moto: &Moto, seed: &Seed, calls: Value) -> Vec<Value> {
    moto.calls_as_role(&seed.security_tooling, ROLE, Some(moto.layer()), &calls)
}

#[test]
fn a_role_with_a_policy_attached_does_only_what_it_allows_and_others_are_unchanged() {
    let moto = Moto::start();
    let seed = moto.seed();
    let st = seed.security_tooling.as_str();
    moto.world.attach_identity_policy(
        &role_arn(&seed),
        policy(json!([
            {"Sid": "List", "Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"},
            {"Sid": "Read", "Effect": "Allow", "Action": "kms:DescribeKey",
             "Resource": format!("arn:aws:kms:us-east-1:{st}:key/*")},
            {"Sid": "NoLists", "Effect": "Deny", "Action": "kms:ListAliases", "Resource": "*"}
        ])),
    );
    let calls = json!([
        call("kms:ListKeys", json!({})),
        call("kms:ListAliases", json!({})),
        call("kms:CreateKey", json!({"Description": "not allowed"})),
        call("sts:GetCallerIdentity", json!({})),
    ]);
    let results = as_role(&moto, &seed, calls.clone());
    assert_eq!(
        outcomes(&results),
        ["ok", "AccessDeniedException", "AccessDeniedException", "ok"],
        "{results:#?}"
    );
    let session = format!("arn:aws:sts::{st}:assumed-role/{ROLE}/trailkey-fixture");
    assert_eq!(
        results[1]["message"],
        format!(
            "User: {session} is not authorized to perform: kms:ListAliases on resource: * with an explicit deny in an identity-based policy"
        )
    );
    assert_eq!(
        results[2]["message"],
        format!(
            "User: {session} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action"
        )
    );
    let denials = moto.world.identity_denials();
    assert_eq!(denials.len(), 2, "{denials:#?}");
    assert_eq!(
        denials[0].statement.as_deref(),
        Some("statement \"NoLists\"")
    );
    assert_eq!(denials[1].statement, None);

    // Another role of the same account, with no policy attached: as moto
    // answers it.
    let other = moto.calls_as_role(st, "AWSControlTowerExecution", Some(moto.layer()), &calls);
    assert_eq!(outcomes(&other), ["ok", "ok", "ok", "ok"], "{other:#?}");
    assert_eq!(moto.world.identity_denials().len(), 2);

    // Detached: the role's sessions are no longer checked.
    moto.world.detach_identity_policies(&role_arn(&seed));
    let after = as_role(&moto, &seed, json!([call("kms:ListAliases", json!({}))]));
    assert_eq!(outcomes(&after), ["ok"], "{after:#?}");
}

/// The organization trail is the management account's: the member's policy
/// must name its ARN there, and CloudTrail's delegation must let the
/// member act on it.
#[test]
fn a_trail_of_the_management_account_needs_its_arn_in_the_policy_and_the_delegation() {
    let moto = Moto::start();
    let seed = moto.seed();
    let arn = seed.trail_arn.as_str();
    let update = |name: &str| {
        call(
            "cloudtrail:UpdateTrail",
            json!({"Name": name, "EnableLogFileValidation": true}),
        )
    };
    let trail_policy = |resource: &str| {
        policy(json!([{
            "Sid": "Trail", "Effect": "Allow",
            "Action": ["cloudtrail:GetTrail", "cloudtrail:UpdateTrail"],
            "Resource": resource
        }]))
    };
    moto.world
        .attach_identity_policy(&role_arn(&seed), trail_policy(arn));

    // Allowed by the policy, not by the owner: Security Tooling is not
    // CloudTrail's delegated administrator yet.
    let results = as_role(&moto, &seed, json!([update(arn)]));
    assert_eq!(
        outcomes(&results),
        ["NotOrganizationMasterAccountException"],
        "{results:#?}"
    );
    assert!(moto.world.identity_denials().is_empty());

    moto.world
        .delegated_administrator(CLOUDTRAIL, &seed.security_tooling);
    let results = as_role(
        &moto,
        &seed,
        json!([
            update(arn),
            call("cloudtrail:GetTrail", json!({"Name": arn})),
            // By name: the trail of that name in Security Tooling, which the
            // policy does not name; IAM refuses it before CloudTrail looks.
            update(&seed.trail_name),
            // Not in the policy at all.
            call("cloudtrail:DescribeTrails", json!({})),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        ["ok", "ok", "AccessDeniedException", "AccessDeniedException"],
        "{results:#?}"
    );
    assert_eq!(
        results[1]["response"]["Trail"]["LogFileValidationEnabled"],
        true
    );
    let own = format!(
        "arn:aws:cloudtrail:us-east-1:{}:trail/{}",
        seed.security_tooling, seed.trail_name
    );
    let message = results[2]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("cloudtrail:UpdateTrail on resource: {own} ")),
        "{message}"
    );

    // Delegated, but the policy names another trail: IAM refuses.
    moto.world.detach_identity_policies(&role_arn(&seed));
    moto.world
        .attach_identity_policy(&role_arn(&seed), trail_policy(&format!("{arn}-other")));
    let results = as_role(&moto, &seed, json!([update(arn)]));
    assert_eq!(
        outcomes(&results),
        ["AccessDeniedException"],
        "{results:#?}"
    );
    let last = moto.world.identity_denials().pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.resource.as_str()),
        ("cloudtrail:UpdateTrail", arn)
    );
}

/// KMS: a key named by alias is checked as the key, an alias operation on
/// the alias and its keys, `CreateKey` on its request's keys and tags (and
/// `kms:TagResource` on every key of the account for its tags),
/// `ScheduleKeyDeletion` on the key's tags as moto holds them.
#[test]
fn kms_requests_are_checked_on_their_keys_aliases_tags_and_conditions() {
    let moto = Moto::start();
    let seed = moto.seed();
    let st = seed.security_tooling.as_str();
    let keys = format!("arn:aws:kms:us-east-1:{st}:key/*");
    let ours = format!("arn:aws:kms:us-east-1:{st}:alias/ours");
    moto.world.attach_identity_policy(
        &role_arn(&seed),
        policy(json!([
            {"Sid": "Create", "Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestTag/ManagedBy": "trailkey",
                                            "kms:KeySpec": "SYMMETRIC_DEFAULT"},
                           "Bool": {"kms:MultiRegion": "false"}}},
            {"Sid": "Tag", "Effect": "Allow", "Action": "kms:TagResource", "Resource": keys},
            {"Sid": "Read", "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": keys},
            {"Sid": "Alias", "Effect": "Allow", "Action": "kms:CreateAlias", "Resource": [ours, keys]},
            {"Sid": "Delete", "Effect": "Allow", "Action": "kms:ScheduleKeyDeletion", "Resource": keys,
             "Condition": {"StringEquals": {"aws:ResourceTag/trailkey:created": "true"}}},
            {"Sid": "NoBypass", "Effect": "Deny", "Action": "kms:CreateKey", "Resource": "*",
             "Condition": {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}}
        ])),
    );
    let create = |tags: Value, extra: Value| {
        let mut params =
            json!({"KeySpec": "SYMMETRIC_DEFAULT", "MultiRegion": false, "Tags": tags});
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        call("kms:CreateKey", params)
    };
    let tagged = json!([{"TagKey": "ManagedBy", "TagValue": "trailkey"},
                        {"TagKey": "trailkey:created", "TagValue": "true"}]);
    let results = as_role(
        &moto,
        &seed,
        json!([
            create(tagged.clone(), json!({})),
            // Again until the layer's KMS window lets the new key and alias
            // be seen.
            until_ok(call(
                "kms:CreateAlias",
                json!({"AliasName": "alias/ours", "TargetKeyId": "$KeyId"})
            )),
            until_ok(call("kms:DescribeKey", json!({"KeyId": "alias/ours"}))),
            call(
                "kms:ScheduleKeyDeletion",
                json!({"KeyId": "$KeyId", "PendingWindowInDays": 7})
            ),
            call(
                "kms:CreateAlias",
                json!({"AliasName": "alias/theirs", "TargetKeyId": "$KeyId"})
            ),
            create(json!([]), json!({})),
            create(
                tagged.clone(),
                json!({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"})
            ),
            create(tagged, json!({"BypassPolicyLockoutSafetyCheck": true})),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        [
            "ok",
            "ok",
            "ok",
            "ok",
            "AccessDeniedException",
            "AccessDeniedException",
            "AccessDeniedException",
            "AccessDeniedException"
        ],
        "{results:#?}"
    );
    let denials = moto.world.identity_denials();
    let resources: Vec<(&str, &str)> = denials
        .iter()
        .map(|d| (d.action.as_str(), d.resource.as_str()))
        .collect();
    assert_eq!(
        resources[0],
        (
            "kms:CreateAlias",
            format!("arn:aws:kms:us-east-1:{st}:alias/theirs").as_str()
        )
    );
    assert_eq!(
        denials[3].statement.as_deref(),
        Some("statement \"NoBypass\"")
    );

    // A key someone else made, without trailkey's tag: its deletion is
    // refused. Without `kms:TagResource` on every key, a tagged CreateKey
    // is refused too.
    let other = moto.calls_as(st, None, &json!([call("kms:CreateKey", json!({}))]));
    let other = other[0]["response"]["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap();
    let results = as_role(
        &moto,
        &seed,
        json!([call(
            "kms:ScheduleKeyDeletion",
            json!({"KeyId": other, "PendingWindowInDays": 7})
        )]),
    );
    assert_eq!(
        outcomes(&results),
        ["AccessDeniedException"],
        "{results:#?}"
    );
    moto.world.detach_identity_policies(&role_arn(&seed));
    moto.world.attach_identity_policy(
        &role_arn(&seed),
        policy(json!([
            {"Sid": "Create", "Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"},
            {"Sid": "Tag", "Effect": "Allow", "Action": "kms:TagResource",
             "Resource": format!("arn:aws:kms:us-east-1:{st}:key/1234abcd-12ab-34cd-56ef-1234567890ab")}
        ])),
    );
    let results = as_role(
        &moto,
        &seed,
        json!([
            call("kms:CreateKey", json!({})),
            call(
                "kms:CreateKey",
                json!({"Tags": [{"TagKey": "a", "TagValue": "b"}]})
            ),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        ["ok", "AccessDeniedException"],
        "{results:#?}"
    );
    assert_eq!(
        moto.world.identity_denials().pop().unwrap().resource,
        format!("arn:aws:kms:us-east-1:{st}:key/*")
    );
}

/// S3 and STS answer IAM's denial in their own way: S3's `HeadBucket` a
/// 403 with no body and the bucket's Region, STS's `AccessDenied`.
#[test]
fn s3_and_sts_deny_as_they_do() {
    let moto = Moto::start();
    let seed = moto.seed();
    let log_archive_role = format!(
        "arn:aws:iam::{}:role/TrailkeyLogArchiveRead",
        seed.log_archive
    );
    moto.world.attach_identity_policy(
        &role_arn(&seed),
        policy(json!([
            {"Sid": "Region", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": "arn:aws:s3:::another-bucket"},
            {"Sid": "Assume", "Effect": "Allow", "Action": "sts:AssumeRole",
             "Resource": log_archive_role}
        ])),
    );
    let results = as_role(
        &moto,
        &seed,
        json!([
            call("s3:HeadBucket", json!({"Bucket": seed.bucket})),
            call("s3:GetBucketPolicy", json!({"Bucket": seed.bucket})),
            call(
                "sts:AssumeRole",
                json!({"RoleArn": log_archive_role, "RoleSessionName": "test"})
            ),
            call(
                "sts:AssumeRole",
                json!({
                    "RoleArn": format!("arn:aws:iam::{}:role/TrailkeyRunner", seed.management),
                    "RoleSessionName": "test"
                })
            ),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        ["403", "AccessDenied", "ok", "AccessDenied"],
        "{results:#?}"
    );
    assert_eq!(results[0]["status"], 403);
    let actions: Vec<String> = moto
        .world
        .identity_denials()
        .iter()
        .map(|d| format!("{} {}", d.action, d.resource))
        .collect();
    assert_eq!(
        actions,
        [
            format!("s3:ListBucket arn:aws:s3:::{}", seed.bucket),
            format!("s3:GetBucketPolicy arn:aws:s3:::{}", seed.bucket),
            format!(
                "sts:AssumeRole arn:aws:iam::{}:role/TrailkeyRunner",
                seed.management
            ),
        ]
    );
}
