//! CloudTrail's organization delegated administrator and Organizations'
//! registry of delegated administrators, as the real-AWS layer emulates
//! them in front of a real moto (`rules::cloudtrail_delegated_administrator`,
//! `rules::organizations_delegated_administrators`), and a run with a member
//! account's own credentials (`Run::as_account`).

use serde_json::{Value, json};
use trailkey_testkit::rules::{CLOUDTRAIL, LAYER_CALLER_HEADER, MANAGEMENT_ACCESS_KEY};
use trailkey_testkit::{Moto, Run, Seed, call, outcomes, transcript, venv};

/// A key ARN of the Security Tooling account that no request created: the
/// layer's KMS rules leave it alone, moto stores it as given.
fn key_arn(seed: &Seed) -> String {
    format!(
        "arn:aws:kms:us-east-1:{}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        seed.security_tooling
    )
}

/// The organization trail as the management account reads it from moto
/// directly, without the layer.
fn trail_in_moto(moto: &Moto, seed: &Seed) -> Value {
    let results = moto.calls(
        None,
        &json!([
            call("cloudtrail:GetTrail", json!({"Name": seed.trail_name})),
            call(
                "cloudtrail:GetTrailStatus",
                json!({"Name": seed.trail_name})
            ),
        ]),
    );
    assert_eq!(outcomes(&results), ["ok", "ok"], "{results:#?}");
    let mut trail = results[0]["response"]["Trail"].clone();
    trail["IsLogging"] = results[1]["response"]["IsLogging"].clone();
    trail
}

/// The `TrailARN`s of a `DescribeTrails` or `ListTrails` answer.
fn trail_arns(result: &Value) -> Vec<String> {
    let answer = &result["response"];
    answer["trailList"]
        .as_array()
        .or_else(|| answer["Trails"].as_array())
        .unwrap_or_else(|| panic!("no trails in {result:#}"))
        .iter()
        .map(|t| t["TrailARN"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_delegated_administrator_reads_and_updates_the_organization_trail_by_its_arn() {
    let moto = Moto::start();
    let seed = moto.seed();
    let (st, arn) = (seed.security_tooling.as_str(), seed.trail_arn.as_str());
    moto.world.delegated_administrator(CLOUDTRAIL, st);
    let tagged = moto.calls(
        None,
        &json!([call(
            "cloudtrail:AddTags",
            json!({"ResourceId": arn, "TagsList": [{"Key": "Owner", "Value": "security"}]})
        )]),
    );
    assert_eq!(outcomes(&tagged), ["ok"], "{tagged:#?}");
    let key = key_arn(&seed);

    let results = moto.calls_as(
        st,
        Some(moto.layer()),
        &json!([
            call("cloudtrail:GetTrail", json!({"Name": arn})),
            call("cloudtrail:GetTrailStatus", json!({"Name": arn})),
            call("cloudtrail:ListTags", json!({"ResourceIdList": [arn]})),
            call("cloudtrail:GetEventSelectors", json!({"TrailName": arn})),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": arn, "KmsKeyId": key})
            ),
            call("cloudtrail:GetTrail", json!({"Name": arn})),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": arn, "IsOrganizationTrail": false})
            ),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        [
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "NotOrganizationMasterAccountException"
        ],
        "{results:#?}"
    );
    assert_eq!(results[0]["response"]["Trail"]["TrailARN"], arn);
    assert_eq!(results[0]["response"]["Trail"]["IsOrganizationTrail"], true);
    assert_eq!(results[1]["response"]["IsLogging"], true);
    assert_eq!(
        results[2]["response"]["ResourceTagList"],
        json!([{"ResourceId": arn, "TagsList": [{"Key": "Owner", "Value": "security"}]}]),
        "the management account's tags"
    );
    assert_eq!(results[4]["response"]["TrailARN"], arn);
    assert_eq!(results[5]["response"]["Trail"]["KmsKeyId"], key.as_str());
    let trail = trail_in_moto(&moto, &seed);
    assert_eq!(
        trail["KmsKeyId"],
        key.as_str(),
        "the management account's trail"
    );
    assert_eq!(
        trail["IsOrganizationTrail"], true,
        "still an organization trail"
    );

    // What moto got: the same call, signed by the management account.
    let exchanges = moto.layer().exchanges();
    let update = exchanges
        .iter()
        .find(|e| e.is("cloudtrail", "UpdateTrail") && e.response.status == 200)
        .expect("the UpdateTrail");
    let client = update.request.header("authorization").unwrap();
    assert!(!client.contains(&format!("Credential={MANAGEMENT_ACCESS_KEY}/")));
    let sent = update
        .upstream
        .as_ref()
        .expect("sent as the management account");
    assert!(
        sent.header("authorization")
            .unwrap()
            .contains(&format!("Credential={MANAGEMENT_ACCESS_KEY}/"))
    );
    let client_key = client
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap();
    assert_eq!(sent.header(LAYER_CALLER_HEADER), Some(client_key));
    assert_eq!(sent.header("x-amz-security-token"), None);
    assert_eq!(sent.body, update.request.body);
}

#[test]
fn describe_trails_shows_a_member_the_organization_trails_as_shadow_trails() {
    let moto = Moto::start();
    let seed = moto.seed();
    let (arn, name) = (seed.trail_arn.as_str(), seed.trail_name.as_str());
    let own = moto.calls_as(
        &seed.security_tooling,
        None,
        &json!([
            call(
                "s3:CreateBucket",
                json!({"Bucket": format!("own-trail-{}", seed.security_tooling)})
            ),
            call(
                "cloudtrail:CreateTrail",
                json!({"Name": "own-trail", "S3BucketName": format!("own-trail-{}", seed.security_tooling)})
            ),
        ]),
    );
    assert_eq!(outcomes(&own), ["ok", "ok"], "{own:#?}");
    let own_arn = own[1]["response"]["TrailARN"].as_str().unwrap().to_owned();
    let reads = json!([
        call("cloudtrail:DescribeTrails", json!({})),
        call(
            "cloudtrail:DescribeTrails",
            json!({"includeShadowTrails": false})
        ),
        call(
            "cloudtrail:DescribeTrails",
            json!({"trailNameList": [name]})
        ),
        call("cloudtrail:DescribeTrails", json!({"trailNameList": [arn]})),
        call("cloudtrail:ListTrails", json!({})),
    ]);
    let alone = moto.calls_as(&seed.security_tooling, None, &reads);
    assert!(
        alone
            .iter()
            .all(|r| !trail_arns(r).contains(&arn.to_owned())),
        "moto alone keeps the trail in the management account: {alone:#?}"
    );

    for member in [&seed.log_archive, &seed.security_tooling] {
        if member == &seed.security_tooling {
            moto.world.delegated_administrator(CLOUDTRAIL, member);
        }
        let results = moto.calls_as(member, Some(moto.layer()), &reads);
        assert_eq!(outcomes(&results), ["ok"; 5], "{results:#?}");
        let mine = |arns: Vec<String>| -> Vec<String> {
            arns.into_iter().filter(|a| a != &own_arn).collect()
        };
        assert_eq!(mine(trail_arns(&results[0])), [arn], "{results:#?}");
        let shown = &results[0]["response"]["trailList"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["TrailARN"] == arn)
            .unwrap()
            .clone();
        assert_eq!(shown["IsOrganizationTrail"], true);
        assert_eq!(shown["HomeRegion"], "us-east-1");
        assert_eq!(shown["Name"], name);
        assert!(mine(trail_arns(&results[1])).is_empty(), "no shadow trails");
        assert!(
            mine(trail_arns(&results[2])).is_empty(),
            "by name: not its own"
        );
        assert_eq!(trail_arns(&results[3]), [arn], "by ARN");
        assert_eq!(mine(trail_arns(&results[4])), [arn], "ListTrails");
        if member == &seed.security_tooling {
            assert!(
                trail_arns(&results[0]).contains(&own_arn),
                "its own trail too"
            );
        }
    }
}

#[test]
fn by_name_the_delegated_administrator_finds_no_trail_of_its_own() {
    let moto = Moto::start();
    let seed = moto.seed();
    moto.world
        .delegated_administrator(CLOUDTRAIL, &seed.security_tooling);
    let name = seed.trail_name.as_str();
    let results = moto.calls_as(
        &seed.security_tooling,
        Some(moto.layer()),
        &json!([
            call("cloudtrail:GetTrail", json!({"Name": name})),
            call("cloudtrail:GetTrailStatus", json!({"Name": name})),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": name, "KmsKeyId": key_arn(&seed)})
            ),
            call("cloudtrail:StopLogging", json!({"Name": name})),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        ["TrailNotFoundException"; 4],
        "{results:#?}"
    );
    // Not found before anything else is checked: after a DescribeTrails
    // that showed the organization trail's name, a key not visible yet
    // (the layer's KMS rules) does not come first.
    let results = moto.calls_as(
        &seed.security_tooling,
        Some(moto.layer()),
        &json!([
            call("cloudtrail:DescribeTrails", json!({})),
            call("kms:CreateKey", json!({})),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": name, "KmsKeyId": "$Arn"})
            ),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        ["ok", "ok", "TrailNotFoundException"],
        "{results:#?}"
    );
    let trail = trail_in_moto(&moto, &seed);
    assert_eq!(trail.get("KmsKeyId"), None, "{trail:#}");
    assert_eq!(trail["IsLogging"], true);
}

#[test]
fn a_member_not_registered_reads_the_organization_trail_and_cannot_change_it() {
    let moto = Moto::start();
    let seed = moto.seed();
    let arn = seed.trail_arn.as_str();
    let results = moto.calls_as(
        &seed.log_archive,
        Some(moto.layer()),
        &json!([
            call("cloudtrail:GetTrail", json!({"Name": arn})),
            call("cloudtrail:GetTrailStatus", json!({"Name": arn})),
            call("cloudtrail:ListTags", json!({"ResourceIdList": [arn]})),
            call("cloudtrail:GetEventSelectors", json!({"TrailName": arn})),
            call(
                "cloudtrail:UpdateTrail",
                json!({"Name": arn, "KmsKeyId": key_arn(&seed)})
            ),
            call("cloudtrail:StopLogging", json!({"Name": arn})),
            call(
                "cloudtrail:AddTags",
                json!({"ResourceId": arn, "TagsList": [{"Key": "k", "Value": "v"}]})
            ),
        ]),
    );
    let wrong_account = "CloudTrailARNInvalidException";
    let not_management = "NotOrganizationMasterAccountException";
    assert_eq!(
        outcomes(&results),
        [
            "ok",
            "ok",
            wrong_account,
            wrong_account,
            not_management,
            not_management,
            not_management
        ],
        "{results:#?}"
    );
    assert_eq!(results[0]["response"]["Trail"]["TrailARN"], arn);
    assert!(
        results[2]["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("AccountID {}.", seed.log_archive))
    );
    let trail = trail_in_moto(&moto, &seed);
    assert_eq!(trail.get("KmsKeyId"), None, "{trail:#}");
    assert_eq!(trail["IsLogging"], true);
    let exchanges = moto.layer().exchanges();
    assert!(
        exchanges
            .iter()
            .filter(|e| e.is("cloudtrail", "UpdateTrail") || e.is("cloudtrail", "StopLogging"))
            .all(|e| !e.forwarded),
        "refused by the layer"
    );

    // Registered, the same member may.
    moto.world
        .delegated_administrator(CLOUDTRAIL, &seed.log_archive);
    let results = moto.calls_as(
        &seed.log_archive,
        Some(moto.layer()),
        &json!([call("cloudtrail:StopLogging", json!({"Name": arn}))]),
    );
    assert_eq!(outcomes(&results), ["ok"], "{results:#?}");
    assert_eq!(trail_in_moto(&moto, &seed)["IsLogging"], false);
}

#[test]
fn list_delegated_administrators_answers_the_registry() {
    let moto = Moto::start();
    let (seed, v) = moto.seed_with(&["--extra-account", "Dev", "--extra-account", "Audit"]);
    let account = |name: &str| {
        v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (dev, audit) = (account("Dev"), account("Audit"));
    let (st, la) = (seed.security_tooling.as_str(), seed.log_archive.as_str());
    let layer = moto.layer();
    let list = |principal: Option<&str>| {
        let mut params = json!({"MaxResults": 20});
        if let Some(p) = principal {
            params["ServicePrincipal"] = json!(p);
        }
        call("organizations:ListDelegatedAdministrators", params)
    };
    let ids = |result: &Value| -> Vec<String> {
        result["response"]["DelegatedAdministrators"]
            .as_array()
            .unwrap_or_else(|| panic!("{result:#}"))
            .iter()
            .map(|a| a["Id"].as_str().unwrap().to_owned())
            .collect()
    };

    let alone = moto.calls(
        None,
        &json!([call(
            "organizations:RegisterDelegatedAdministrator",
            json!({"AccountId": st, "ServicePrincipal": CLOUDTRAIL})
        )]),
    );
    assert_eq!(
        outcomes(&alone),
        ["InvalidInputException"],
        "moto alone does not take CloudTrail"
    );

    let results = moto.calls(
        Some(layer),
        &json!([
            list(Some(CLOUDTRAIL)),
            call(
                "cloudtrail:RegisterOrganizationDelegatedAdmin",
                json!({"MemberAccountId": st})
            ),
            call(
                "cloudtrail:RegisterOrganizationDelegatedAdmin",
                json!({"MemberAccountId": st})
            ),
            call(
                "cloudtrail:RegisterOrganizationDelegatedAdmin",
                json!({"MemberAccountId": seed.management})
            ),
            call(
                "cloudtrail:RegisterOrganizationDelegatedAdmin",
                json!({"MemberAccountId": "999999999999"})
            ),
            call(
                "organizations:RegisterDelegatedAdministrator",
                json!({"AccountId": la, "ServicePrincipal": CLOUDTRAIL})
            ),
            call(
                "organizations:RegisterDelegatedAdministrator",
                json!({"AccountId": seed.management, "ServicePrincipal": CLOUDTRAIL})
            ),
            call(
                "organizations:RegisterDelegatedAdministrator",
                json!({"AccountId": audit, "ServicePrincipal": "guardduty.amazonaws.com"})
            ),
            list(Some(CLOUDTRAIL)),
            list(None),
            list(Some("guardduty.amazonaws.com")),
            call(
                "organizations:ListDelegatedServicesForAccount",
                json!({"AccountId": st})
            ),
            call(
                "organizations:ListDelegatedAdministrators",
                json!({"ServicePrincipal": CLOUDTRAIL, "MaxResults": 1})
            ),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        [
            "ok",
            "ok",
            "AccountRegisteredException",
            "CannotDelegateManagementAccountException",
            "AccountNotFoundException",
            "ok",
            "ConstraintViolationException",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok"
        ],
        "{results:#?}"
    );
    assert!(ids(&results[0]).is_empty());
    assert_eq!(ids(&results[8]), [st, la]);
    assert_eq!(
        ids(&results[9]),
        [st, la, audit.as_str()],
        "moto's and the layer's"
    );
    assert_eq!(ids(&results[10]), [audit.as_str()]);
    let admin = &results[8]["response"]["DelegatedAdministrators"][0];
    assert_eq!(admin["Name"], "Security Tooling");
    assert!(admin["DelegationEnabledDate"].is_string(), "{admin:#}");
    assert_eq!(
        results[11]["response"]["DelegatedServices"][0]["ServicePrincipal"],
        CLOUDTRAIL
    );
    assert_eq!(ids(&results[12]), [st]);
    assert!(results[12]["response"]["NextToken"].is_string());
    assert_eq!(moto.world.delegated_administrators(CLOUDTRAIL), [st, la]);
    assert_eq!(
        moto.world
            .delegated_administrators("guardduty.amazonaws.com"),
        [audit.as_str()]
    );

    // A delegated administrator (of any service) reads the registry and the
    // organization's accounts; another member account may not.
    let reads = json!([
        list(Some(CLOUDTRAIL)),
        call("organizations:ListAccounts", json!({})),
        call("organizations:DescribeAccount", json!({"AccountId": dev})),
        call(
            "cloudtrail:RegisterOrganizationDelegatedAdmin",
            json!({"MemberAccountId": dev})
        ),
        call(
            "organizations:RegisterDelegatedAdministrator",
            json!({"AccountId": dev, "ServicePrincipal": CLOUDTRAIL})
        ),
    ]);
    for member in [st, audit.as_str()] {
        let results = moto.calls_as(member, Some(layer), &reads);
        assert_eq!(
            outcomes(&results),
            [
                "ok",
                "ok",
                "ok",
                "NotOrganizationManagementAccountException",
                "AccessDeniedException"
            ],
            "{member}: {results:#?}"
        );
        assert_eq!(ids(&results[0]), [st, la]);
        assert_eq!(
            results[1]["response"]["Accounts"].as_array().unwrap().len(),
            5,
            "the organization's accounts"
        );
        assert_eq!(results[2]["response"]["Account"]["Name"], "Dev");
    }
    let denied = moto.calls_as(&dev, Some(layer), &reads);
    assert_eq!(
        outcomes(&denied),
        [
            "AccessDeniedException",
            "AccessDeniedException",
            "AccessDeniedException",
            "NotOrganizationManagementAccountException",
            "AccessDeniedException"
        ],
        "{denied:#?}"
    );
    assert_eq!(
        denied[0]["message"],
        "You don't have permissions to access this resource."
    );

    let results = moto.calls(
        Some(layer),
        &json!([
            call(
                "cloudtrail:DeregisterOrganizationDelegatedAdmin",
                json!({"DelegatedAdminAccountId": la})
            ),
            call(
                "cloudtrail:DeregisterOrganizationDelegatedAdmin",
                json!({"DelegatedAdminAccountId": la})
            ),
            call(
                "cloudtrail:RegisterOrganizationDelegatedAdmin",
                json!({"MemberAccountId": dev})
            ),
            call(
                "cloudtrail:RegisterOrganizationDelegatedAdmin",
                json!({"MemberAccountId": audit})
            ),
            call(
                "cloudtrail:RegisterOrganizationDelegatedAdmin",
                json!({"MemberAccountId": la})
            ),
            list(Some(CLOUDTRAIL)),
        ]),
    );
    assert_eq!(
        outcomes(&results),
        [
            "ok",
            "AccountNotRegisteredException",
            "ok",
            "ok",
            "DelegatedAdminAccountLimitExceededException",
            "ok"
        ],
        "{results:#?}"
    );
    assert_eq!(ids(&results[5]), [st, dev.as_str(), audit.as_str()]);
    let answered: Vec<String> = moto
        .world
        .answered()
        .iter()
        .map(|a| format!("{}:{}", a.service, a.action))
        .collect();
    assert!(answered.contains(&"cloudtrail:RegisterOrganizationDelegatedAdmin".to_owned()));
}

#[test]
fn the_management_account_sees_no_change() {
    let moto = Moto::start();
    let seed = moto.seed();
    let (arn, name) = (seed.trail_arn.as_str(), seed.trail_name.as_str());
    let calls = json!([
        call("cloudtrail:GetTrail", json!({"Name": name})),
        call("cloudtrail:GetTrail", json!({"Name": arn})),
        call("cloudtrail:DescribeTrails", json!({})),
        call(
            "cloudtrail:DescribeTrails",
            json!({"trailNameList": [name]})
        ),
        call("cloudtrail:ListTrails", json!({})),
        call("cloudtrail:ListTags", json!({"ResourceIdList": [arn]})),
        call(
            "cloudtrail:UpdateTrail",
            json!({"Name": arn, "EnableLogFileValidation": true})
        ),
        call("organizations:ListAccounts", json!({})),
        call("organizations:DescribeOrganization", json!({})),
    ]);
    let responses = |results: &[Value]| -> Vec<Value> {
        assert!(results.iter().all(|r| r["ok"] == true), "{results:#?}");
        results.iter().map(|r| r["response"].clone()).collect()
    };
    let before = responses(&moto.calls(Some(moto.layer()), &calls));
    moto.world
        .delegated_administrator(CLOUDTRAIL, &seed.security_tooling);
    moto.world
        .delegated_administrator("guardduty.amazonaws.com", &seed.log_archive);
    let after = responses(&moto.calls(Some(moto.layer()), &calls));
    assert_eq!(before, after);
    let direct = responses(&moto.calls(None, &calls));
    assert_eq!(after[..7], direct[..7], "CloudTrail as moto answers it");
    assert!(
        moto.layer()
            .exchanges()
            .iter()
            .all(|e| e.upstream.is_none()),
        "nothing sent in another's name"
    );
}

#[test]
fn a_run_as_the_security_tooling_account_signs_nothing_as_the_management_account() {
    let moto = Moto::start();
    let seed = moto.seed();
    let st = seed.security_tooling.as_str();
    moto.world.delegated_administrator(CLOUDTRAIL, st);
    moto.start_recording();
    let key = key_arn(&seed);
    let script = r#"
import json, sys, boto3
arn, key = sys.argv[1], sys.argv[2]
identity = boto3.client("sts").get_caller_identity()
cloudtrail = boto3.client("cloudtrail")
cloudtrail.update_trail(Name=arn, KmsKeyId=key)
trail = cloudtrail.get_trail(Name=arn)["Trail"]
print(json.dumps({"caller": identity["Arn"], "key": trail["KmsKeyId"]}))
"#;
    let out = Run::as_account(&moto, st)
        .program(venv().join("bin/python"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .args(["-c", script, &seed.trail_arn, &key])
        .run();
    assert!(out.status.success(), "{}", transcript(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["caller"],
        format!("arn:aws:sts::{st}:assumed-role/AWSControlTowerExecution/trailkey-fixture")
    );
    assert_eq!(printed["key"], key.as_str());
    assert_eq!(trail_in_moto(&moto, &seed)["KmsKeyId"], key.as_str());

    assert_eq!(
        moto.requests_signed_in(moto.layer(), &seed.management),
        Vec::<String>::new()
    );
    assert_eq!(
        moto.requests_signed_in(moto.layer(), st),
        [
            "sts:GetCallerIdentity",
            "cloudtrail:UpdateTrail",
            "cloudtrail:GetTrail"
        ]
    );
    // moto's recording names the client's credentials, and the ones moto
    // got in their place.
    let recorded = moto.recorded_requests();
    let update = recorded
        .iter()
        .find(|r| r["action"] == "UpdateTrail")
        .unwrap_or_else(|| panic!("{recorded:#?}"));
    assert_eq!(update["layer_signed_as"], MANAGEMENT_ACCESS_KEY);
    assert_eq!(
        update["principal"],
        format!("arn:aws:sts::{st}:assumed-role/AWSControlTowerExecution/trailkey-fixture")
    );
    assert!(
        recorded
            .iter()
            .all(|r| r["access_key"] != MANAGEMENT_ACCESS_KEY),
        "{recorded:#?}"
    );
}
