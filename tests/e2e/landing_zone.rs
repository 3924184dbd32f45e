//! Landing-zone checks before any write, and the backout (`destroy`),
//! against moto: the real binary, state read back with boto3.

use std::collections::BTreeSet;

use trailkey_testkit::rules::{DEFAULT_REGIONS, EventDataStore, signing_region};
use trailkey_testkit::{
    Moto, Run, Seed, is_write, key_with_arn, on_sse_s3, trailkey_keys, transcript,
};

/// Seeds, adds a trail with `create_trail` arguments, and points the config at it.
fn seeded_with_trail(create_trail: &[&str]) -> (Moto, Seed) {
    let moto = Moto::start();
    let seed = moto.seed();
    let mut args = vec!["create-trail"];
    args.extend_from_slice(create_trail);
    let trail = moto.fixture(&args);
    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(
        &seed.config,
        text.replace(
            "name = \"org-trail\"",
            &format!("name = \"{}\"", trail["trail_name"].as_str().unwrap()),
        ),
    )
    .unwrap();
    (moto, seed)
}

/// Both plan and apply refuse with `message` and `hint`, and nothing is written.
fn refused_before_any_write(moto: &Moto, seed: &Seed, message: &str, hint: &str) {
    moto.start_recording();
    for args in [
        &["plan", "--detailed-exitcode"][..],
        &["apply", "--auto-approve"],
    ] {
        let out = Run::new(moto).config(&seed.config).args(args).run();
        assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
        assert!(stderr.contains(hint), "{stderr}");
    }
    let calls = moto.recorded();
    assert!(calls.iter().all(|c| !is_write(c)), "no write: {calls:?}");
    assert_eq!(moto.state(seed)["keys"].as_array().unwrap().len(), 0);
}

/// The bucket belongs to Log Archive, so the management account may not
/// read its location (`GetBucketLocation` is denied across accounts behind
/// the layer); `HeadBucket` tells the Region anyway, and the plan refuses
/// before any write, where `UpdateTrail` would only say
/// `KmsKeyNotFoundException` after the key was made.
#[test]
fn a_bucket_in_another_region_is_refused_before_any_write() {
    let moto = Moto::start();
    let seed = moto.seed();
    let trail = moto.fixture(&[
        "create-trail",
        "--name",
        "eu-bucket-trail",
        "--bucket-region",
        "eu-west-1",
        "--bucket-owner",
        &seed.log_archive,
    ]);
    assert_eq!(trail["bucket_owner"], seed.log_archive.as_str());
    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(
        &seed.config,
        text.replace("name = \"org-trail\"", "name = \"eu-bucket-trail\""),
    )
    .unwrap();
    refused_before_any_write(
        &moto,
        &seed,
        "the trail's bucket eu-bucket-trail-logs is in eu-west-1, but region is us-east-1",
        "KmsKeyNotFoundException",
    );
}

#[test]
fn a_trail_that_is_not_an_organization_trail_is_refused_unless_opted_in() {
    let (moto, seed) = seeded_with_trail(&["--name", "account-trail", "--not-organization"]);
    refused_before_any_write(
        &moto,
        &seed,
        "is not an organization trail",
        "organization_trail = false",
    );

    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(&seed.config, format!("{text}organization_trail = false\n")).unwrap();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn a_control_tower_trail_is_refused_with_the_landing_zone_way() {
    let (moto, seed) = seeded_with_trail(&["--name", "aws-controltower-BaselineCloudTrail"]);
    refused_before_any_write(
        &moto,
        &seed,
        "is managed by AWS Control Tower (its name aws-controltower-BaselineCloudTrail): Control Tower reverts changes made to it",
        "set landing_zone = true under [control_tower]",
    );
    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(&seed.config, format!("{text}allow_control_tower = true\n")).unwrap();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "explicit opt-in: {}",
        transcript(&out)
    );
}

#[test]
fn destroy_sets_the_trail_back_to_sse_s3_and_keeps_the_key_by_default() {
    let moto = Moto::start();
    let seed = moto.seed();
    assert_eq!(
        Run::new(&moto)
            .config(&seed.config)
            .args(["apply", "--auto-approve"])
            .run()
            .status
            .code(),
        Some(0)
    );

    let dry = Run::new(&moto)
        .config(&seed.config)
        .args(["destroy", "--dry-run", "--detailed-exitcode"])
        .run();
    assert_eq!(dry.status.code(), Some(2), "{}", transcript(&dry));
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        stdout.contains("~ trail_encryption will be updated in place"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{stdout}"
    );

    let refused = Run::new(&moto).config(&seed.config).args(["destroy"]).run();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("destroy needs confirmation"));

    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["destroy", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is back on SSE-S3"));
    let state = moto.state(&seed);
    assert!(on_sse_s3(&state), "SSE-S3: {state:#}");
    let key = trailkey_keys(&state)[0];
    assert_eq!(
        key["key_state"], "Enabled",
        "the key is kept for the logs already written"
    );
    assert_eq!(
        state["aliases"].as_array().unwrap().len(),
        1,
        "the alias is kept"
    );

    let again = Run::new(&moto)
        .config(&seed.config)
        .args(["destroy", "--dry-run", "--detailed-exitcode"])
        .run();
    assert_eq!(
        again.status.code(),
        Some(0),
        "nothing left to destroy: {}",
        transcript(&again)
    );
    // And apply brings encryption back on the same key.
    assert_eq!(
        Run::new(&moto)
            .config(&seed.config)
            .args(["apply", "--auto-approve"])
            .run()
            .status
            .code(),
        Some(0)
    );
    assert_eq!(moto.state(&seed)["trail"]["kms_key_id"], key["arn"]);
}

#[test]
fn destroy_delete_key_removes_the_alias_and_schedules_deletion() {
    let moto = Moto::start();
    let seed = moto.seed();
    assert_eq!(
        Run::new(&moto)
            .config(&seed.config)
            .args(["apply", "--auto-approve"])
            .run()
            .status
            .code(),
        Some(0)
    );
    let out = Run::new(&moto)
        .config(&seed.config)
        .args([
            "destroy",
            "--auto-approve",
            "--delete-key",
            "--deletion-window-days",
            "7",
        ])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("- kms_key will be destroyed"), "{stdout}");
    assert!(stdout.contains("- kms_alias will be destroyed"), "{stdout}");
    assert!(stdout.contains("scheduled for deletion"), "{stdout}");
    let state = moto.state(&seed);
    assert_eq!(trailkey_keys(&state)[0]["key_state"], "PendingDeletion");
    assert!(state["aliases"].as_array().unwrap().is_empty());
}

#[test]
fn destroy_delete_key_is_refused_while_another_trail_uses_the_key() {
    let moto = Moto::start();
    let seed = moto.seed();
    apply_ok(&moto, &seed);
    moto.fixture(&["create-trail", "--name", "second-trail"]);
    // Point the second trail at trailkey's key, as another team might.
    moto.fixture(&["drift", "trail-alias", "--trail", "second-trail"]);
    delete_key_refused(&moto, &seed, "second-trail");
}

/// A grant is how AWS services use a key: a key with one is in use, even
/// if no trail names it.
#[test]
fn destroy_delete_key_is_refused_while_a_grant_uses_the_key() {
    let moto = Moto::start();
    let seed = moto.seed();
    apply_ok(&moto, &seed);
    let key = trailkey_keys(&moto.state(&seed))[0]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let st = seed.security_tooling.as_str();
    let grantee =
        format!("arn:aws:iam::{st}:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS");
    let granted = moto.calls_as_role(
        st,
        "AWSControlTowerExecution",
        Some(moto.layer()),
        &serde_json::json!([{"op": "kms:CreateGrant", "params": {
            "KeyId": key, "GranteePrincipal": grantee, "Operations": ["Decrypt", "GenerateDataKey"]
        }}]),
    );
    assert_eq!(granted[0]["ok"], true, "{granted:#?}");
    delete_key_refused(&moto, &seed, "is used through 1 grant(s): grant");
    delete_key_refused(&moto, &seed, &grantee);
}

/// The ARN of trailkey's key, after an apply.
fn key_arn(moto: &Moto, seed: &Seed) -> String {
    trailkey_keys(&moto.state(seed))[0]["arn"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The Regions `DescribeTrails` went to through the layer so far.
fn regions_described(moto: &Moto) -> BTreeSet<String> {
    moto.layer()
        .exchanges()
        .iter()
        .filter(|e| e.is("cloudtrail", "DescribeTrails"))
        .filter_map(|e| signing_region(&e.request))
        .collect()
}

/// The Regions the layer lists as enabled, by default or by opting in.
fn enabled_regions() -> BTreeSet<String> {
    DEFAULT_REGIONS
        .iter()
        .filter(|(_, status)| *status != "DISABLED")
        .map(|(r, _)| (*r).to_owned())
        .collect()
}

/// A single-Region trail of another team homed in eu-west-1, an enabled
/// Region, on trailkey's key: only `DescribeTrails` in eu-west-1 shows it.
/// Its bucket is the organization trail's, in us-east-1 with the key, as
/// CloudTrail requires of a trail's key and bucket (the layer's
/// `cloudtrail_key_in_the_buckets_region`); the trail's own Region may
/// differ.
#[test]
fn destroy_delete_key_is_refused_while_a_trail_of_another_region_uses_the_key() {
    let moto = Moto::start();
    let seed = moto.seed();
    apply_ok(&moto, &seed);
    let key = key_arn(&moto, &seed);
    let trail = moto.fixture(&[
        "create-trail",
        "--region",
        "eu-west-1",
        "--name",
        "team-eu",
        "--single-region",
        "--not-organization",
        "--bucket",
        &seed.bucket,
        "--kms-key-id",
        &key,
    ]);
    let arn = trail["trail_arn"].as_str().unwrap();
    assert!(arn.starts_with("arn:aws:cloudtrail:eu-west-1:"), "{arn}");
    delete_key_refused(
        &moto,
        &seed,
        &format!("still encrypts trail(s) {arn} (home Region eu-west-1)"),
    );
    // Every enabled Region was read; the disabled one never.
    assert_eq!(regions_described(&moto), enabled_regions());
}

/// A trail homed in an opt-in Region the account has not enabled
/// (me-south-1) is not looked at: trailkey cannot call there. The deletion
/// goes ahead.
#[test]
fn destroy_delete_key_does_not_look_at_a_disabled_region() {
    let moto = Moto::start();
    let seed = moto.seed();
    apply_ok(&moto, &seed);
    let key = key_arn(&moto, &seed);
    moto.fixture(&[
        "create-trail",
        "--region",
        "me-south-1",
        "--name",
        "dormant",
        "--single-region",
        "--not-organization",
        "--bucket",
        &seed.bucket,
        "--kms-key-id",
        &key,
    ]);
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["destroy", "--auto-approve", "--delete-key"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(
        key_with_arn(&moto.state(&seed), &key)["key_state"],
        "PendingDeletion"
    );
    let described = regions_described(&moto);
    assert!(!described.contains("me-south-1"), "{described:?}");
    assert_eq!(described, enabled_regions());
    let answered: Vec<String> = moto
        .world
        .answered()
        .iter()
        .map(|a| format!("{}:{}", a.service, a.action))
        .collect();
    // Twice each: when planning and right before ScheduleKeyDeletion.
    for call in ["account:ListRegions", "cloudtrail:ListEventDataStores"] {
        assert!(
            answered.iter().filter(|a| *a == call).count() >= 2,
            "{call}: {answered:?}"
        );
    }
}

/// A CloudTrail Lake event data store encrypted with the key blocks the
/// deletion: its key cannot be changed, and its events cannot be read
/// without it. Its name comes from AWS: an escape sequence and a line break
/// in it are shown escaped, never sent to the terminal.
#[test]
fn destroy_delete_key_is_refused_while_an_event_data_store_uses_the_key() {
    let moto = Moto::start();
    let seed = moto.seed();
    apply_ok(&moto, &seed);
    let key = key_arn(&moto, &seed);
    let m = seed.management.as_str();
    let store = |id: &str, name: &str, region: &str, key: Option<&str>| EventDataStore {
        arn: format!("arn:aws:cloudtrail:{region}:{m}:eventdatastore/{id}"),
        name: name.to_owned(),
        kms_key_id: key.map(str::to_owned),
        status: "ENABLED".to_owned(),
    };
    let hostile = "lake\u{1b}[2J\nPlan: 0 to add, 0 to change, 0 to destroy.";
    let using = store("0a1b2c3d-lake", hostile, "us-east-1", Some(&key));
    moto.world.event_data_store(using.clone());
    // CloudTrail's own key, and a key of another Region: not uses.
    moto.world
        .event_data_store(store("4e5f-own", "own-key-lake", "us-east-1", None));
    moto.world.event_data_store(store(
        "6a7b-eu",
        "eu-lake",
        "eu-west-1",
        Some("arn:aws:kms:eu-west-1:111111111111:key/other"),
    ));
    let stderr = delete_key_refused(
        &moto,
        &seed,
        &format!(
            "encrypts 1 CloudTrail Lake event data store(s): lake\\u{{1b}}[2J\\nPlan: 0 to add, 0 to change, 0 to destroy. ({}, status ENABLED)",
            using.arn
        ),
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(
        !stderr.lines().any(|l| l.starts_with("Plan:")),
        "no forged line: {stderr}"
    );
    assert!(!stderr.contains("own-key-lake"), "{stderr}");
    assert!(
        stderr.contains("delete the event data store first"),
        "{stderr}"
    );
}

fn apply_ok(moto: &Moto, seed: &Seed) {
    let out = Run::new(moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

/// `destroy --auto-approve --delete-key` exits 1 saying `says`, and writes
/// nothing at all: the trail keeps the key, which stays enabled. Returns
/// its stderr.
fn delete_key_refused(moto: &Moto, seed: &Seed, says: &str) -> String {
    let before = moto.state(seed);
    moto.start_recording();
    let out = Run::new(moto)
        .config(&seed.config)
        .args(["destroy", "--auto-approve", "--delete-key"])
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--delete-key refused"), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
    let writes = moto.recorded_writes();
    assert!(writes.is_empty(), "no write at all: {writes:?}");
    let after = moto.state(seed);
    assert_eq!(after, before, "nothing changed");
    let key = after["trail"]["kms_key_id"]
        .as_str()
        .expect("the trail keeps its key");
    assert_eq!(key_with_arn(&after, key)["key_state"], "Enabled");
    stderr.into_owned()
}

#[test]
fn destroy_delete_key_never_deletes_a_key_trailkey_adopted() {
    let moto = Moto::start();
    let seed = moto.seed();
    // A key made by hand for other data, and the alias pointed at it.
    let made = moto.fixture(&[
        "make-key",
        "--security-tooling",
        &seed.security_tooling,
        "--alias",
        "cloudtrail-org-key",
        "--kind",
        "plain",
        "--description",
        "payments data key",
    ]);
    apply_ok(&moto, &seed);
    apply_ok(&moto, &seed);
    let state = moto.state(&seed);
    let keys = state["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "adopted, not replaced: {state:#}");
    assert_eq!(keys[0]["key_id"], made["key_id"]);
    assert_eq!(keys[0]["tags"]["ManagedBy"], "trailkey", "adopted");
    assert!(
        keys[0]["tags"].get("trailkey:created").is_none(),
        "adoption and reruns never set the created mark: {:#}",
        keys[0]["tags"]
    );
    assert_eq!(state["trail"]["kms_key_id"], made["arn"]);
    delete_key_refused(&moto, &seed, "trailkey manages it but did not create it");
    // The backout without --delete-key still works and keeps the key.
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["destroy", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(trailkey_keys(&moto.state(&seed))[0]["key_state"], "Enabled");
}

#[test]
fn destroy_delete_key_treats_a_key_of_an_older_trailkey_as_adopted() {
    let moto = Moto::start();
    let seed = moto.seed();
    apply_ok(&moto, &seed);
    let created = trailkey_keys(&moto.state(&seed))[0]["tags"].clone();
    assert_eq!(created["trailkey:created"], "true", "{created:#}");
    // What an older trailkey left: ManagedBy and trailkey:alias only.
    moto.fixture(&[
        "drift",
        "tags-remove",
        "--security-tooling",
        &seed.security_tooling,
        "--tag-key",
        "trailkey:created",
    ]);
    apply_ok(&moto, &seed);
    let tags = trailkey_keys(&moto.state(&seed))[0]["tags"].clone();
    assert_eq!(tags["ManagedBy"], "trailkey");
    assert!(tags.get("trailkey:created").is_none(), "{tags:#}");
    delete_key_refused(&moto, &seed, "an older trailkey created without that mark");
}

#[test]
fn destroy_delete_key_is_refused_while_a_trail_homed_elsewhere_uses_the_key() {
    let moto = Moto::start();
    let seed = moto.seed();
    apply_ok(&moto, &seed);
    let state = moto.state(&seed);
    let key_arn = trailkey_keys(&state)[0]["arn"].as_str().unwrap().to_owned();
    let bucket = state["trail"]["s3_bucket"].as_str().unwrap();
    // A multi-Region trail homed in eu-west-1, writing to the organization
    // trail's bucket in the key's Region: from us-east-1 it is only a
    // shadow copy.
    let args = [
        "create-trail",
        "--region",
        "eu-west-1",
        "--name",
        "eu-trail",
        "--bucket",
        bucket,
        "--kms-key-id",
        &key_arn,
    ];
    let eu = moto.fixture(&args);
    let eu_arn = eu["trail_arn"].as_str().unwrap();
    assert!(eu_arn.contains(":eu-west-1:"), "{eu_arn}");
    delete_key_refused(&moto, &seed, eu_arn);
}

#[test]
fn destroy_backs_out_only_the_configured_trail() {
    let moto = Moto::start();
    let seed = moto.seed();
    apply_ok(&moto, &seed);
    let key_arn = trailkey_keys(&moto.state(&seed))[0]["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    moto.fixture(&[
        "create-trail",
        "--name",
        "second-trail",
        "--kms-key-id",
        &key_arn,
    ]);
    // The next apply lets CloudTrail use the key for the second trail too.
    apply_ok(&moto, &seed);
    let policy_before = key_with_arn(&moto.state(&seed), &key_arn)["policy"].clone();
    assert!(policy_before.to_string().contains("trail/second-trail"));
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["destroy", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let state = moto.state(&seed);
    assert!(
        on_sse_s3(&state),
        "the configured trail is back on SSE-S3: {state:#}"
    );
    let second = moto.fixture(&[
        "state",
        "--security-tooling",
        &seed.security_tooling,
        "--trail",
        "second-trail",
    ]);
    assert_eq!(second["trail"]["kms_key_id"], key_arn.as_str());
    let key = key_with_arn(&state, &key_arn);
    assert_eq!(key["key_state"], "Enabled");
    // The other trail keeps CloudTrail's permission on the key.
    assert_eq!(key["policy"], policy_before);
}

// The Log Archive side (`roles.log_archive`): before the trail is pointed at
// the key, trailkey reads the bucket's policy, default encryption and
// replication with that role. The bucket belongs to the Log Archive account,
// so these tests set it up with that account's credentials.

/// Sends `calls` (S3 operations on the trail bucket) as the Log Archive
/// account, through the real-AWS layer; each must succeed.
fn as_log_archive(moto: &Moto, seed: &Seed, calls: serde_json::Value) {
    for r in moto.calls_as(&seed.log_archive, Some(moto.layer()), &calls) {
        assert_eq!(r["ok"], true, "{r}");
    }
}

/// The AWS SRA log bucket template's `DenyWrongKMSKey`: CloudTrail's
/// writes are denied unless `s3:x-amz-server-side-encryption-aws-kms-key-id`
/// passes `operator` against `key`.
fn deny_wrong_key(moto: &Moto, seed: &Seed, operator: &str, key: &str) {
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyWrongKMSKey", "Effect": "Deny", "Principal": "*",
         "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{}/*", seed.bucket),
         "Condition": {operator: {"s3:x-amz-server-side-encryption-aws-kms-key-id": key}}}
    ]});
    as_log_archive(
        moto,
        seed,
        serde_json::json!([{"op": "s3:PutBucketPolicy",
            "params": {"Bucket": seed.bucket, "Policy": policy.to_string()}}]),
    );
}

/// Since `start_recording`, trailkey read nothing of the bucket but its Region.
fn no_bucket_reads(moto: &Moto) {
    let calls = moto.recorded();
    assert!(!calls.iter().any(|c| c.starts_with("s3:Get")), "{calls:?}");
}

/// The bucket's reads were made with the Log Archive role, and only those.
fn bucket_read_by(moto: &Moto, role: &str) {
    let requests = moto.recorded_requests();
    let reads: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| {
            [
                "GetBucketPolicy",
                "GetEncryptionConfiguration",
                "GetReplicationConfiguration",
            ]
            .contains(&r["action"].as_str().unwrap())
        })
        .collect();
    assert!(!reads.is_empty(), "the bucket was not read: {requests:?}");
    let session = role
        .replace(":iam::", ":sts::")
        .replace(":role/", ":assumed-role/")
        + "/";
    for r in reads {
        assert!(
            r["principal"].as_str().unwrap().starts_with(&session),
            "read by {} rather than {role}",
            r["principal"]
        );
    }
}

#[test]
fn a_bucket_policy_that_would_deny_the_key_is_refused_before_any_write() {
    let moto = Moto::start();
    let seed = moto.seed();
    let role = seed.add_log_archive_role();
    let other = format!(
        "arn:aws:kms:us-east-1:{}:key/0000abcd-0000-4000-8000-000000000000",
        seed.log_archive
    );
    let account_keys = format!("arn:aws:kms:us-east-1:{}:key/", seed.security_tooling);

    // From scratch: the statement names another key, so the new one is denied.
    deny_wrong_key(&moto, &seed, "StringNotEquals", &other);
    refused_before_any_write(
        &moto,
        &seed,
        &format!(
            "statement \"DenyWrongKMSKey\" of the policy of bucket {} (account {}) would deny CloudTrail's s3:PutObject of log files encrypted with it",
            seed.bucket, seed.log_archive
        ),
        &format!("StringNotLike with \"{account_keys}*\""),
    );
    bucket_read_by(&moto, &role);
    assert!(on_sse_s3(&moto.state(&seed)));

    // The statement allows the Security Tooling account's keys: apply goes on.
    deny_wrong_key(&moto, &seed, "StringNotLike", &format!("{account_keys}*"));
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let state = moto.state(&seed);
    let keys = trailkey_keys(&state);
    assert_eq!(keys.len(), 1, "{state:#}");
    let key_arn = keys[0]["arn"].as_str().unwrap().to_owned();
    assert_eq!(state["trail"]["kms_key_id"], key_arn.as_str());

    // Someone narrows the statement to another key, and the trail drifts to
    // SSE-S3: trailkey does not re-point it into a bucket that would refuse
    // the log files.
    deny_wrong_key(&moto, &seed, "StringNotEquals", &other);
    moto.fixture(&["drift", "trail-unencrypt"]);
    moto.start_recording();
    for args in [
        &["plan", "--detailed-exitcode"][..],
        &["apply", "--auto-approve"],
    ] {
        let out = Run::new(&moto).config(&seed.config).args(args).run();
        assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("refusing to point the trail at {key_arn}")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("allow {key_arn} in that condition")),
            "{stderr}"
        );
    }
    let calls = moto.recorded();
    assert!(calls.iter().all(|c| !is_write(c)), "no write: {calls:?}");
    let state = moto.state(&seed);
    assert!(on_sse_s3(&state), "{state:#}");
    assert_eq!(trailkey_keys(&state).len(), 1);

    // The statement names trailkey's key: the trail is re-pointed.
    deny_wrong_key(&moto, &seed, "StringNotEquals", &key_arn);
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let state = moto.state(&seed);
    assert_eq!(state["trail"]["kms_key_id"], key_arn.as_str());
    assert_eq!(trailkey_keys(&state).len(), 1);
}

#[test]
fn replication_rules_name_their_role_and_keys_a_bucket_key_is_noted_and_apply_goes_on() {
    let moto = Moto::start();
    let seed = moto.seed();
    seed.add_log_archive_role();
    let replication_role = format!("arn:aws:iam::{}:role/replication", seed.log_archive);
    let replica_key = format!("arn:aws:kms:us-east-1:{}:key/replica", seed.log_archive);
    let rule = |id: &str, priority: u32, kms_objects: bool| {
        let mut r = serde_json::json!({"ID": id, "Status": "Enabled", "Priority": priority,
            "Filter": {"Prefix": format!("{id}/")},
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": "arn:aws:s3:::log-replica"}});
        if kms_objects {
            r["SourceSelectionCriteria"] =
                serde_json::json!({"SseKmsEncryptedObjects": {"Status": "Enabled"}});
            r["Destination"]["EncryptionConfiguration"] =
                serde_json::json!({"ReplicaKmsKeyID": replica_key});
        }
        r
    };
    as_log_archive(
        &moto,
        &seed,
        serde_json::json!([
            {"op": "s3:PutBucketEncryption", "params": {"Bucket": seed.bucket,
                "ServerSideEncryptionConfiguration": {"Rules": [{
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                    "BucketKeyEnabled": true}]}}},
            {"op": "s3:PutBucketVersioning", "params": {"Bucket": seed.bucket,
                "VersioningConfiguration": {"Status": "Enabled"}}},
            {"op": "s3:PutBucketReplication", "params": {"Bucket": seed.bucket,
                "ReplicationConfiguration": {
                    "Role": replication_role,
                    "Rules": [rule("plain", 1, false), rule("kms", 2, true)]}}}
        ]),
    );

    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--format", "json"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings: Vec<(String, String)> = plan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["level"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let replication: Vec<_> = findings
        .iter()
        .filter(|(_, m)| m.starts_with("replication rule"))
        .collect();
    assert_eq!(replication.len(), 2, "one per rule: {findings:#?}");
    assert!(
        replication.iter().all(|(level, _)| level == "warning"),
        "{findings:#?}"
    );
    // The key does not exist yet: the role must be let use the key apply creates.
    let new_key = format!(
        "the key this apply creates (arn:aws:kms:us-east-1:{}:key/<known after apply>)",
        seed.security_tooling
    );
    let plain = &replication[0].1;
    assert!(
        plain.starts_with(&format!(
            "replication rule \"plain\" of bucket {} does not replicate KMS-encrypted objects",
            seed.bucket
        )),
        "{findings:#?}"
    );
    assert!(
        plain.contains(&format!(
            "the replication role {replication_role} then needs kms:Decrypt on {new_key}"
        )),
        "{plain}"
    );
    let kms = &replication[1].1;
    assert!(
        kms.starts_with(&format!(
            "replication rule \"kms\" of bucket {} replicates KMS-encrypted objects as the role {replication_role}: once the trail uses {new_key}, new log files are replicated only if that role has kms:Decrypt on {new_key}",
            seed.bucket
        )),
        "{kms}"
    );
    assert!(
        kms.contains(&format!("kms:Encrypt on the replica key {replica_key}")),
        "{kms}"
    );
    assert!(
        findings.iter().any(|(level, m)| level == "note"
            && m.starts_with(&format!("bucket {} uses an S3 Bucket Key", seed.bucket))
            && m.contains("trailkey's key policy grants it (statement TrailkeyCloudTrailDecrypt)")),
        "{findings:#?}"
    );
    assert!(
        !findings.iter().any(|(_, m)| m.contains("was not checked")),
        "{findings:#?}"
    );

    // Findings do not stop the apply; the human plan shows them too.
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Warning: replication rule \"plain\""),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "Warning: replication rule \"kms\" of bucket {} replicates KMS-encrypted objects as the role {replication_role}",
            seed.bucket
        )),
        "{stdout}"
    );
    assert!(stdout.contains("uses an S3 Bucket Key"), "{stdout}");
    let state = moto.state(&seed);
    assert_eq!(trailkey_keys(&state).len(), 1);
    assert_eq!(
        state["trail"]["kms_key_id"],
        trailkey_keys(&state)[0]["arn"]
    );

    // Once converged, the trail does not change and the bucket is not read.
    moto.start_recording();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    no_bucket_reads(&moto);
}

/// With an S3 Bucket Key on the trail's bucket, CloudTrail needs
/// `kms:Decrypt` on the key with no encryption context; the layer checks it
/// on `UpdateTrail`. trailkey's key policy grants it, so a first apply
/// converges in one run. A key whose `TrailkeyCloudTrailDecrypt` still
/// requires the encryption context (as trailkey wrote it before) shows that
/// statement changed, once, and apply repairs it.
#[test]
fn with_a_bucket_key_apply_converges_in_one_run_and_an_older_decrypt_statement_is_repaired() {
    let moto = Moto::start();
    let seed = moto.seed();
    as_log_archive(
        &moto,
        &seed,
        serde_json::json!([
            {"op": "s3:PutBucketEncryption", "params": {"Bucket": seed.bucket,
                "ServerSideEncryptionConfiguration": {"Rules": [{
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                    "BucketKeyEnabled": true}]}}}
        ]),
    );
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let state = moto.state(&seed);
    let keys = trailkey_keys(&state);
    assert_eq!(keys.len(), 1, "{state:#}");
    assert_eq!(state["trail"]["kms_key_id"], keys[0]["arn"]);
    let decrypt = keys[0]["policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "TrailkeyCloudTrailDecrypt")
        .expect("the Decrypt statement")
        .clone();
    assert_eq!(
        decrypt["Condition"],
        serde_json::json!({"StringEquals": {"aws:SourceArn": seed.trail_arn}}),
        "scoped by aws:SourceArn alone"
    );
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));

    // The statement as it required the encryption context.
    let key_arn = keys[0]["arn"].as_str().unwrap().to_owned();
    let mut policy = keys[0]["policy"].clone();
    for s in policy["Statement"].as_array_mut().unwrap() {
        if s["Sid"] == "TrailkeyCloudTrailDecrypt" {
            s["Condition"]["Null"] =
                serde_json::json!({"kms:EncryptionContext:aws:cloudtrail:arn": "false"});
            s["Condition"]["StringLike"] = serde_json::json!({
                "kms:EncryptionContext:aws:cloudtrail:arn":
                    format!("arn:aws:cloudtrail:*:{}:trail/*", seed.management)});
        }
    }
    for r in moto.calls_as(
        &seed.security_tooling,
        Some(moto.layer()),
        &serde_json::json!([{"op": "kms:PutKeyPolicy", "params": {"KeyId": key_arn,
            "PolicyName": "default", "Policy": policy.to_string()}}]),
    ) {
        assert_eq!(r["ok"], true, "{r}");
    }
    // KMS shows the policy once the layer's window has passed.
    std::thread::sleep(trailkey_testkit::LAYER_WINDOW);
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "~ statement TrailkeyCloudTrailDecrypt",
        "~ Condition.Null = {\"kms:encryptioncontext:aws:cloudtrail:arn\":[\"false\"]} -> null",
        &format!(
            "~ Condition.StringLike = {{\"kms:encryptioncontext:aws:cloudtrail:arn\":[\"arn:aws:cloudtrail:*:{}:trail/*\"]}} -> null",
            seed.management
        ),
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(!stdout.contains("Warning"), "{stdout}");
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["plan", "--detailed-exitcode"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn without_roles_log_archive_the_plan_says_the_bucket_was_not_checked() {
    let moto = Moto::start();
    let seed = moto.seed();
    moto.start_recording();
    let out = Run::new(&moto).config(&seed.config).args(["plan"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "Note: the Log Archive side (the policy, encryption and replication of bucket {}) was not checked: set roles.log_archive",
            seed.bucket
        )),
        "{stdout}"
    );
    no_bucket_reads(&moto);
}

#[test]
fn destroy_is_refused_while_the_bucket_policy_would_deny_sse_s3_log_files() {
    let moto = Moto::start();
    let seed = moto.seed();
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let key_arn = moto.state(&seed)["trail"]["kms_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The SRA bucket: only files encrypted with trailkey's key.
    deny_wrong_key(&moto, &seed, "StringNotEquals", &key_arn);

    // Without roles.log_archive, destroy says the bucket was not checked.
    let dry = Run::new(&moto)
        .config(&seed.config)
        .args(["destroy", "--dry-run"])
        .run();
    assert_eq!(dry.status.code(), Some(0), "{}", transcript(&dry));
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        stdout.contains(
            "Note: the Log Archive side (the policy, encryption and replication of bucket"
        ),
        "{stdout}"
    );

    let role = seed.add_log_archive_role();
    moto.start_recording();
    for args in [
        &["destroy", "--dry-run", "--detailed-exitcode"][..],
        &["destroy", "--auto-approve"],
        &["destroy", "--auto-approve", "--delete-key"],
    ] {
        let out = Run::new(&moto).config(&seed.config).args(args).run();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", transcript(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "refusing to move the trail back to SSE-S3: statement \"DenyWrongKMSKey\" of the policy of bucket {} (account {}) would deny CloudTrail's s3:PutObject of log files not encrypted with a KMS key",
                seed.bucket, seed.log_archive
            )),
            "{stderr}"
        );
        assert!(stderr.contains("hint: the trail keeps its key"), "{stderr}");
    }
    let calls = moto.recorded();
    assert!(calls.iter().all(|c| !is_write(c)), "no write: {calls:?}");
    bucket_read_by(&moto, &role);
    let state = moto.state(&seed);
    assert_eq!(state["trail"]["kms_key_id"], key_arn.as_str(), "{state:#}");
    assert_eq!(key_with_arn(&state, &key_arn)["key_state"], "Enabled");

    // Once the bucket takes SSE-S3 files, destroy backs out.
    as_log_archive(
        &moto,
        &seed,
        serde_json::json!([{"op": "s3:DeleteBucketPolicy", "params": {"Bucket": seed.bucket}}]),
    );
    let out = Run::new(&moto)
        .config(&seed.config)
        .args(["destroy", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(on_sse_s3(&moto.state(&seed)));
}
