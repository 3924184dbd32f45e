//! The Control Tower emulator: the model's answers and errors without moto,
//! then the fixture, the key checks and the trail against a real moto.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::http::read_response;
use crate::proxy::Proxy;
use crate::rules::error_code;
use crate::{Moto, on_sse_s3};

const MANAGEMENT: &str = "111111111111";
const LOG_ARCHIVE: &str = "222222222222";
const REGION: &str = "us-east-1";
const TRAIL: &str =
    "arn:aws:cloudtrail:us-east-1:111111111111:trail/aws-controltower-BaselineCloudTrail";

/// A landing zone of the management account [`MANAGEMENT`], 3.3 with 3.4
/// available.
fn zone(operation_time: Duration) -> LandingZone {
    LandingZone {
        arn: format!(
            "arn:aws:controltower:{REGION}:{MANAGEMENT}:landingzone/{}",
            landing_zone_id()
        ),
        home_region: REGION.to_owned(),
        management_account: MANAGEMENT.to_owned(),
        organization_id: "o-abcdef1234".to_owned(),
        version: "3.3".to_owned(),
        latest_available_version: "3.4".to_owned(),
        status: "ACTIVE".to_owned(),
        drift_status: "DRIFTED".to_owned(),
        manifest: json!({
            "governedRegions": [REGION],
            "centralizedLogging": {"accountId": LOG_ARCHIVE, "enabled": true},
        }),
        remediation_types: Vec::new(),
        trail_arn: TRAIL.to_owned(),
        config_account: LOG_ARCHIVE.to_owned(),
        operation_time,
    }
}

/// A world whose default credentials act in the management account, with
/// `zone`, and a proxy in front of no moto that asks the emulator alone: it
/// answers every Control Tower request itself.
fn emulator(zone: Option<LandingZone>) -> (World, Proxy) {
    let world = World::default();
    world.default_account(MANAGEMENT);
    if let Some(zone) = zone {
        world.landing_zone(zone);
    }
    let proxy = Proxy::with_rules(
        "http://127.0.0.1:9",
        vec![Box::new(control_tower_landing_zone(world.clone()))],
    );
    (world, proxy)
}

/// What the proxy answered: status, error code, JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    code: Option<String>,
    body: Value,
}

/// `POST <path>` with `body` to the proxy, signed for `controltower` in
/// `region` by `access_key`, as the AWS SDKs send a rest-json request.
fn post_as(proxy: &Proxy, access_key: &str, region: &str, path: &str, body: &Value) -> Answer {
    let host = proxy.endpoint.strip_prefix("http://").unwrap();
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAuthorization: AWS4-HMAC-SHA256 Credential={access_key}/20240101/{region}/controltower/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(host).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let response = read_response(&mut BufReader::new(stream), false).unwrap();
    Answer {
        status: response.status,
        code: error_code(&response),
        body: serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    }
}

/// [`post_as`] with the default credentials in the home Region.
fn post(proxy: &Proxy, path: &str, body: Value) -> Answer {
    post_as(proxy, "testing", REGION, path, &body)
}

fn ok(answer: Answer) -> Value {
    assert_eq!(answer.status, 200, "{answer:#?}");
    answer.body
}

/// The status and code of an error answer.
fn error(answer: &Answer) -> (u16, &str) {
    (answer.status, answer.code.as_deref().unwrap_or("(none)"))
}

fn update(arn: &str, version: &str, manifest: &Value) -> Value {
    json!({"landingZoneIdentifier": arn, "version": version, "manifest": manifest})
}

#[test]
fn list_and_get_answer_the_landing_zone_with_the_models_members() {
    let (world, proxy) = emulator(None);
    let none = ok(post(&proxy, "/list-landingzones", json!({})));
    assert_eq!(none, json!({"landingZones": []}), "no landing zone");

    let mut z = zone(Duration::from_secs(60));
    z.remediation_types = vec!["INHERITANCE_DRIFT".to_owned()];
    world.landing_zone(z.clone());
    let list = ok(post(&proxy, "/list-landingzones", json!({"maxResults": 1})));
    assert_eq!(list, json!({"landingZones": [{"arn": z.arn}]}));
    let get = ok(post(
        &proxy,
        "/get-landingzone",
        json!({"landingZoneIdentifier": z.arn}),
    ));
    assert_eq!(
        get,
        json!({"landingZone": {
            "version": "3.3",
            "remediationTypes": ["INHERITANCE_DRIFT"],
            "arn": z.arn,
            "status": "ACTIVE",
            "latestAvailableVersion": "3.4",
            "driftStatus": {"status": "DRIFTED"},
            "manifest": z.manifest,
        }})
    );

    // Another Region has no landing zone.
    let elsewhere = post_as(
        &proxy,
        "testing",
        "eu-west-1",
        "/list-landingzones",
        &json!({}),
    );
    assert_eq!(ok(elsewhere), json!({"landingZones": []}));
    let elsewhere = post_as(
        &proxy,
        "testing",
        "eu-west-1",
        "/get-landingzone",
        &json!({"landingZoneIdentifier": z.arn}),
    );
    assert_eq!(error(&elsewhere), (404, "ResourceNotFoundException"));

    // The proxy names the operations by the model's paths; the layer
    // answered them all, and recorded them.
    let actions: Vec<String> = proxy
        .exchanges()
        .iter()
        .inspect(|e| assert!(!e.forwarded))
        .map(|e| e.call())
        .collect();
    assert_eq!(
        actions,
        [
            "controltower:ListLandingZones",
            "controltower:ListLandingZones",
            "controltower:GetLandingZone",
            "controltower:ListLandingZones",
            "controltower:GetLandingZone",
        ]
    );
    let answered = world.answered();
    assert_eq!(answered.len(), 5);
    assert!(
        answered
            .iter()
            .all(|a| a.service == "controltower" && a.access_key == "testing")
    );
}

#[test]
fn inputs_the_model_refuses_are_validation_exceptions() {
    let (world, proxy) = emulator(Some(zone(Duration::from_secs(60))));
    let arn = world.landing_zone_state().unwrap().landing_zone.arn;
    let manifest = json!({"governedRegions": [REGION]});
    let op = "0123abcd-0123-4567-89ab-0123456789ab";
    let cases = [
        ("/list-landingzones", json!({"maxResults": 0})),
        ("/list-landingzones", json!({"maxResults": 2})),
        ("/list-landingzones", json!({"maxResults": "1"})),
        ("/list-landingzones", json!({"nextToken": "not-the-layers"})),
        ("/get-landingzone", json!({})),
        ("/get-landingzone", json!({"landingZoneIdentifier": 7})),
        ("/update-landingzone", json!({"landingZoneIdentifier": arn})),
        ("/update-landingzone", json!({"version": "3.3"})),
        ("/update-landingzone", update(&arn, "3", &manifest)),
        (
            "/update-landingzone",
            update(&arn, "3.3.3.3.3.3", &manifest),
        ),
        ("/update-landingzone", update(&arn, "v.x", &manifest)),
        (
            "/update-landingzone",
            update(&arn, "3.3", &json!(["not", "an", "object"])),
        ),
        (
            "/update-landingzone",
            json!({"landingZoneIdentifier": arn, "version": "3.3", "remediationTypes": ["NONE"]}),
        ),
        (
            "/update-landingzone",
            json!({"landingZoneIdentifier": arn, "version": "3.3", "remediationTypes": []}),
        ),
        // Neither its version nor the latest available one.
        ("/update-landingzone", update(&arn, "3.2", &manifest)),
        ("/get-landingzone-operation", json!({})),
        (
            "/get-landingzone-operation",
            json!({"operationIdentifier": "short"}),
        ),
        (
            "/get-landingzone-operation",
            json!({"operationIdentifier": op.to_uppercase()}),
        ),
        (
            "/get-landingzone-operation",
            json!({"operationIdentifier": format!("{op}0")}),
        ),
        ("/list-landingzone-operations", json!({"maxResults": 0})),
        ("/list-landingzone-operations", json!({"maxResults": 101})),
        ("/list-landingzone-operations", json!({"nextToken": "x"})),
        (
            "/list-landingzone-operations",
            json!({"filter": {"types": ["MOVE"]}}),
        ),
        (
            "/list-landingzone-operations",
            json!({"filter": {"statuses": ["IN_PROGRESS", "FAILED"]}}),
        ),
        (
            "/list-landingzone-operations",
            json!({"filter": {"statuses": []}}),
        ),
        ("/list-landingzone-operations", json!({"filter": "UPDATE"})),
    ];
    for (path, body) in &cases {
        let answer = post(&proxy, path, body.clone());
        assert_eq!(
            error(&answer),
            (400, "ValidationException"),
            "{path} {body}: {answer:#?}"
        );
        let message = answer.body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{path} {body}: {answer:#?}");
    }
    let answer = post(&proxy, "/update-landingzone", update(&arn, "3", &manifest));
    assert_eq!(
        answer.body["message"],
        "1 validation error detected: Value '3' at 'version' failed to satisfy constraint: Member must have length greater than or equal to 3"
    );

    // Nothing changed; the one version asked for besides 3.3 is recorded.
    let state = world.landing_zone_state().unwrap();
    assert!(state.operations.is_empty());
    assert_eq!(
        state.landing_zone,
        zone_like(&state.landing_zone, "3.3", "ACTIVE")
    );
    assert_eq!(state.upgrades, ["3.2"]);

    // The latest available version is an upgrade: accepted, and recorded.
    let accepted = ok(post(
        &proxy,
        "/update-landingzone",
        update(&arn, "3.4", &manifest),
    ));
    assert_eq!(world.landing_zone_state().unwrap().upgrades, ["3.2", "3.4"]);
    assert!(check_operation_id(accepted["operationIdentifier"].as_str().unwrap()).is_ok());
}

/// `zone` with `version` and `status`, for comparisons.
fn zone_like(zone: &LandingZone, version: &str, status: &str) -> LandingZone {
    LandingZone {
        version: version.to_owned(),
        status: status.to_owned(),
        ..zone.clone()
    }
}

#[test]
fn unknown_landing_zones_and_operations_are_not_found() {
    let (_, proxy) = emulator(Some(zone(Duration::from_secs(60))));
    let other = format!("arn:aws:controltower:{REGION}:{MANAGEMENT}:landingzone/ABCDEFGHIJKL");
    for (path, body) in [
        ("/get-landingzone", json!({"landingZoneIdentifier": other})),
        ("/update-landingzone", update(&other, "3.3", &json!({}))),
        (
            "/get-landingzone-operation",
            json!({"operationIdentifier": "0123abcd-0123-4567-89ab-0123456789ab"}),
        ),
    ] {
        let answer = post(&proxy, path, body.clone());
        assert_eq!(
            error(&answer),
            (404, "ResourceNotFoundException"),
            "{path} {body}"
        );
    }
    // The List operations do not list ResourceNotFoundException.
    let (_, empty) = emulator(None);
    assert_eq!(
        ok(post(&empty, "/list-landingzone-operations", json!({}))),
        json!({"landingZoneOperations": []})
    );
    // An operation the emulator does not emulate says so.
    let unknown = post(&proxy, "/create-landingzone", json!({}));
    assert_eq!(error(&unknown), (400, "UnknownOperationException"));
}

#[test]
fn an_update_conflicts_with_an_operation_in_progress_and_operations_end_lazily() {
    let time = Duration::from_millis(300);
    let (world, proxy) = emulator(Some(zone(time)));
    let arn = world.landing_zone_state().unwrap().landing_zone.arn;
    let planted = world.operation_in_progress("RESET");
    let mut manifest = world.landing_zone_state().unwrap().landing_zone.manifest;
    manifest["centralizedLogging"]["configurations"] = json!({"kmsKeyArn": "arn:aws:kms:x"});

    let busy = post(
        &proxy,
        "/update-landingzone",
        update(&arn, "3.3", &manifest),
    );
    assert_eq!(error(&busy), (409, "ConflictException"), "{busy:#?}");
    let in_progress = ok(post(
        &proxy,
        "/list-landingzone-operations",
        json!({"filter": {"statuses": ["IN_PROGRESS"]}}),
    ));
    assert_eq!(
        in_progress,
        json!({"landingZoneOperations": [
            {"operationType": "RESET", "operationIdentifier": planted, "status": "IN_PROGRESS"}
        ]})
    );
    let get = |id: &str| {
        ok(post(
            &proxy,
            "/get-landingzone-operation",
            json!({"operationIdentifier": id}),
        ))["operationDetails"]
            .clone()
    };
    let details = get(&planted);
    assert_eq!(details["status"], "IN_PROGRESS");
    assert!(details.get("endTime").is_none(), "{details}");
    let landing_zone = |proxy: &Proxy| {
        ok(post(
            proxy,
            "/get-landingzone",
            json!({"landingZoneIdentifier": arn}),
        ))["landingZone"]
            .clone()
    };
    assert_eq!(landing_zone(&proxy)["status"], "PROCESSING");

    // Once the operation time has passed, the next request sees it ended.
    std::thread::sleep(time);
    let details = get(&planted);
    assert_eq!(details["status"], "SUCCEEDED", "{details}");
    assert!(details["endTime"].as_str().unwrap() >= details["startTime"].as_str().unwrap());
    assert_eq!(landing_zone(&proxy)["status"], "ACTIVE");

    // Control Tower failing on its own: the update ends FAILED with the
    // message, whatever the key (no moto is asked).
    world.fail_updates(Some(
        "AWS Control Tower failed to deploy the baseline stack set",
    ));
    let started = ok(post(
        &proxy,
        "/update-landingzone",
        update(&arn, "3.3", &manifest),
    ));
    let id = started["operationIdentifier"].as_str().unwrap().to_owned();
    assert_eq!(get(&id)["status"], "IN_PROGRESS");
    let during = landing_zone(&proxy);
    assert_eq!(during["status"], "PROCESSING");
    assert_eq!(during["manifest"], manifest, "the manifest sent, at once");
    std::thread::sleep(time);
    world.settle_landing_zone();
    let state = world.landing_zone_state().unwrap();
    let ended = state.operations.last().unwrap();
    assert_eq!(
        (
            ended.id.as_str(),
            ended.status.as_str(),
            ended.status_message.as_deref()
        ),
        (
            id.as_str(),
            "FAILED",
            Some("AWS Control Tower failed to deploy the baseline stack set")
        )
    );
    assert_eq!(ended.request, Some(update(&arn, "3.3", &manifest)));
    assert_eq!(state.landing_zone.status, "FAILED");
    assert_eq!(state.landing_zone.manifest, manifest);
    let details = get(&id);
    assert_eq!(
        details["statusMessage"],
        "AWS Control Tower failed to deploy the baseline stack set"
    );
    assert_eq!(details["operationType"], "UPDATE");
    assert_eq!(state.operations.len(), 2, "the refused update started none");
}

#[test]
fn operations_are_listed_most_recent_first_page_by_page() {
    let (world, proxy) = emulator(Some(zone(Duration::ZERO)));
    // Three that end at the next request, then four that stay.
    let mut ids: Vec<String> = ["CREATE", "UPDATE", "UPDATE"]
        .iter()
        .map(|t| world.operation_in_progress(t))
        .collect();
    world.landing_zone(zone_like_with_time(&world, Duration::from_secs(600)));
    ids.extend(
        ["UPDATE", "RESET", "UPDATE", "UPDATE"]
            .iter()
            .map(|t| world.operation_in_progress(t)),
    );
    ids.reverse();

    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"maxResults": 3});
        if let Some(token) = &token {
            body["nextToken"] = json!(token);
        }
        let page = ok(post(&proxy, "/list-landingzone-operations", body));
        pages += 1;
        listed.extend(page["landingZoneOperations"].as_array().unwrap().clone());
        match page.get("nextToken") {
            Some(next) => token = Some(next.as_str().unwrap().to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let listed_ids: Vec<&str> = listed
        .iter()
        .map(|o| o["operationIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(listed_ids, ids, "each once, the most recent first");
    let statuses: Vec<&str> = listed
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "IN_PROGRESS",
            "IN_PROGRESS",
            "IN_PROGRESS",
            "IN_PROGRESS",
            "SUCCEEDED",
            "SUCCEEDED",
            "SUCCEEDED"
        ]
    );
    for member in listed.iter().flat_map(|o| o.as_object().unwrap().keys()) {
        assert!(["operationType", "operationIdentifier", "status"].contains(&member.as_str()));
    }

    // Without maxResults, pages of DEFAULT_OPERATIONS_PAGE.
    let first = ok(post(&proxy, "/list-landingzone-operations", json!({})));
    assert_eq!(
        first["landingZoneOperations"].as_array().unwrap().len(),
        DEFAULT_OPERATIONS_PAGE
    );
    assert!(first["nextToken"].is_string());

    let filtered = |filter: Value| {
        ok(post(
            &proxy,
            "/list-landingzone-operations",
            json!({"filter": filter, "maxResults": 100}),
        ))["landingZoneOperations"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(filtered(json!({"types": ["UPDATE"]})), 5);
    assert_eq!(filtered(json!({"types": ["RESET"]})), 1);
    assert_eq!(filtered(json!({"types": ["DELETE"]})), 0);
    assert_eq!(filtered(json!({"statuses": ["SUCCEEDED"]})), 3);
    assert_eq!(
        filtered(json!({"statuses": ["IN_PROGRESS"], "types": ["UPDATE"]})),
        3
    );
}

/// The world's landing zone with another operation time.
fn zone_like_with_time(world: &World, operation_time: Duration) -> LandingZone {
    LandingZone {
        operation_time,
        ..world.landing_zone_state().unwrap().landing_zone
    }
}

#[test]
fn timestamps_and_identifiers_have_the_models_shapes() {
    let at = |secs: u64, millis: u64| {
        iso8601(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
    };
    assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
    assert_eq!(at(1_700_000_000, 123), "2023-11-14T22:13:20.123Z");
    assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    for _ in 0..100 {
        let id = operation_id();
        assert!(check_operation_id(&id).is_ok(), "{id}");
        let zone = landing_zone_id();
        assert_eq!(zone.len(), 12);
        assert!(
            zone.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{zone}"
        );
    }
    assert_ne!(operation_id(), operation_id());
}

// ------------------------------------------------------------- with moto

/// The key policy the Control Tower guide asks for ("Update the KMS key
/// policy"), with AWS Config scoped to the organization, for a key of
/// `management`; without the Config statement if `config` is false.
fn guide_policy(management: &str, trail: &str, organization: &str, config: bool) -> Value {
    let mut statements = vec![
        json!({
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{management}:root")},
            "Action": "kms:*",
            "Resource": "*",
        }),
        json!({
            "Sid": "Allow CloudTrail to use KMS for encryption",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceArn": trail},
                "StringLike": {
                    "kms:EncryptionContext:aws:cloudtrail:arn": format!("arn:aws:cloudtrail:*:{management}:trail/*")
                },
            },
        }),
    ];
    if config {
        statements.push(json!({
            "Sid": "Allow Config to use KMS for encryption",
            "Effect": "Allow",
            "Principal": {"Service": "config.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceOrgID": organization}},
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// A key made in moto directly, by the default credentials or, with
/// `account`, a role of that account; its ARN.
fn make_key(moto: &Moto, account: Option<&str>, policy: &Value, multi_region: bool) -> String {
    let calls = json!([{"op": "kms:CreateKey", "params": {
        "Policy": policy.to_string(),
        "KeySpec": "SYMMETRIC_DEFAULT",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "MultiRegion": multi_region,
    }}]);
    let results = match account {
        Some(account) => moto.calls_as(account, None, &calls),
        None => moto.calls(None, &calls),
    };
    assert_eq!(results[0]["ok"], true, "{results:#?}");
    results[0]["response"]["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Control Tower's trail's `KmsKeyId` in moto (`""` or absent: SSE-S3).
fn trail_key(moto: &Moto, seed: &crate::Seed) -> Value {
    let state = moto.fixture(&[
        "state",
        "--security-tooling",
        &seed.security_tooling,
        "--trail",
        "aws-controltower-BaselineCloudTrail",
    ]);
    assert!(state["trail"].is_object(), "{state:#}");
    state
}

#[test]
fn the_fixture_makes_a_landing_zone_that_only_the_management_account_may_call() {
    let moto = Moto::start();
    let seed = moto.seed();
    let zone = moto.control_tower(&seed, Duration::from_millis(200));
    assert!(zone.arn.starts_with(&format!(
        "arn:aws:controltower:us-east-1:{}:landingzone/",
        seed.management
    )));
    assert_eq!(
        zone.trail_arn,
        format!(
            "arn:aws:cloudtrail:us-east-1:{}:trail/aws-controltower-BaselineCloudTrail",
            seed.management
        )
    );
    assert_eq!(
        zone.manifest["centralizedLogging"]["accountId"],
        seed.log_archive.as_str()
    );
    assert_eq!(
        zone.manifest["securityRoles"]["accountId"],
        seed.security_tooling.as_str()
    );
    let state = trail_key(&moto, &seed);
    let trail = &state["trail"];
    let bucket = format!("aws-controltower-logs-{}-us-east-1", seed.log_archive);
    assert_eq!(trail["s3_bucket"], bucket.as_str());
    assert_eq!(trail["is_organization_trail"], true);
    assert_eq!(trail["is_multi_region_trail"], true);
    assert!(on_sse_s3(&state));
    // The World learnt the bucket and the trail as it learns seed's.
    {
        let facts = moto.world.facts();
        assert_eq!(
            facts.buckets.get(&bucket),
            Some(&(seed.log_archive.clone(), "us-east-1".to_owned()))
        );
        assert_eq!(facts.trails.get(&zone.trail_arn), Some(&bucket));
    }

    // Through the whole real-AWS layer, with boto3 reading the answers by
    // the model.
    let layer = moto.real_aws(Duration::from_millis(100));
    let results = moto.calls(
        Some(&layer),
        &json!([
            {"op": "controltower:ListLandingZones"},
            {"op": "controltower:GetLandingZone", "params": {"landingZoneIdentifier": zone.arn}},
        ]),
    );
    assert_eq!(
        results[0]["response"]["landingZones"],
        json!([{"arn": zone.arn}]),
        "{results:#?}"
    );
    let got = &results[1]["response"]["landingZone"];
    assert_eq!(got["manifest"], zone.manifest);
    assert_eq!(
        (got["version"].as_str(), got["status"].as_str()),
        (Some("3.3"), Some("ACTIVE"))
    );

    // A member account is refused.
    let member = moto.calls_as(
        &seed.log_archive,
        Some(&layer),
        &json!([{"op": "controltower:ListLandingZones"}]),
    );
    assert_eq!(
        (member[0]["status"].as_u64(), member[0]["code"].as_str()),
        (Some(403), Some("AccessDeniedException")),
        "{member:#?}"
    );
    let answered: Vec<(String, String)> = moto
        .world
        .answered()
        .into_iter()
        .map(|a| (a.service, a.action))
        .collect();
    assert_eq!(answered.len(), 3, "{answered:?}");
    assert!(answered.iter().all(|(s, _)| s == "controltower"));
}

#[test]
fn an_update_checks_the_key_as_control_tower_does_then_points_its_trail_at_it() {
    let time = Duration::from_millis(200);
    let moto = Moto::start();
    let seed = moto.seed();
    let zone = moto.control_tower(&seed, time);
    let layer = moto.real_aws(Duration::from_millis(100));
    moto.start_recording();
    let management = seed.management.as_str();
    let good = guide_policy(management, &zone.trail_arn, &zone.organization_id, true);

    // Updates the landing zone with the launch manifest and `key`, waits
    // for the operation to end, returns its details (boto3's reading).
    let run = |key: Option<&str>| {
        let mut manifest = zone.manifest.clone();
        if let Some(key) = key {
            manifest["centralizedLogging"]["configurations"]["kmsKeyArn"] = json!(key);
        }
        let started = moto.calls(
            Some(&layer),
            &json!([{"op": "controltower:UpdateLandingZone", "params": {
                "landingZoneIdentifier": zone.arn, "version": "3.3", "manifest": manifest,
            }}]),
        );
        assert_eq!(started[0]["ok"], true, "{started:#?}");
        let id = started[0]["response"]["operationIdentifier"]
            .as_str()
            .unwrap()
            .to_owned();
        std::thread::sleep(time);
        let ended = moto.calls(
            Some(&layer),
            &json!([{"op": "controltower:GetLandingZoneOperation", "params": {"operationIdentifier": id}}]),
        );
        assert_eq!(ended[0]["ok"], true, "{ended:#?}");
        (manifest, ended[0]["response"]["operationDetails"].clone())
    };
    let failed = |key: &str, why: &str| {
        let (_, details) = run(Some(key));
        assert_eq!(details["status"], "FAILED", "{details:#}");
        let message = details["statusMessage"].as_str().unwrap();
        assert!(
            message.contains(key) && message.contains(why),
            "{why}: {message}"
        );
        assert_eq!(
            moto.world.landing_zone_state().unwrap().landing_zone.status,
            "FAILED"
        );
        assert!(
            on_sse_s3(&trail_key(&moto, &seed)),
            "the trail is left as it was"
        );
    };

    let no_config = make_key(
        &moto,
        None,
        &guide_policy(management, &zone.trail_arn, &zone.organization_id, false),
        false,
    );
    failed(&no_config, "config.amazonaws.com");
    let other_trail = guide_policy(
        management,
        &zone.trail_arn.replace("BaselineCloudTrail", "Other"),
        &zone.organization_id,
        true,
    );
    failed(
        &make_key(&moto, None, &other_trail, false),
        "cloudtrail.amazonaws.com",
    );
    failed(&make_key(&moto, None, &good, true), "multi-Region");
    let audit_key = make_key(&moto, Some(&seed.security_tooling), &good, false);
    failed(&audit_key, "not in the management account");
    let missing =
        format!("arn:aws:kms:us-east-1:{management}:key/0123abcd-0123-4567-89ab-0123456789ab");
    failed(&missing, "does not exist");
    failed(&missing.replace("us-east-1", "eu-west-1"), "home Region");
    failed(
        &format!("arn:aws:kms:us-east-1:{management}:alias/ct"),
        "not a KMS key ARN",
    );

    // A good key: the trail names it in moto, the landing zone is ACTIVE
    // at its version, with every field of the manifest sent.
    let key = make_key(&moto, None, &good, false);
    let (manifest, details) = run(Some(&key));
    assert_eq!(details["status"], "SUCCEEDED", "{details:#}");
    assert!(details["endTime"].is_string() && details["startTime"].is_string());
    assert_eq!(trail_key(&moto, &seed)["trail"]["kms_key_id"], key.as_str());
    let state = moto.world.landing_zone_state().unwrap();
    assert_eq!(state.landing_zone.status, "ACTIVE");
    assert_eq!(state.landing_zone.version, "3.3");
    assert_eq!(state.landing_zone.manifest, manifest);
    assert_eq!(
        state.operations.last().unwrap().request.as_ref().unwrap()["manifest"],
        manifest
    );
    assert!(state.upgrades.is_empty());

    // Without kmsKeyArn, the trail goes back to SSE-S3.
    let (_, details) = run(None);
    assert_eq!(details["status"], "SUCCEEDED", "{details:#}");
    assert!(on_sse_s3(&trail_key(&moto, &seed)));

    // Control Tower's own calls to moto are not among the calls recorded.
    let recorded = moto.recorded();
    assert!(
        recorded.iter().all(|c| c.starts_with("controltower:")),
        "{recorded:?}"
    );
    assert!(recorded.contains(&"controltower:UpdateLandingZone".to_owned()));
}
