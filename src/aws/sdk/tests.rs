//! The real SDK clients against `aws-smithy-mocks`: AWS errors moto
//! cannot produce are mapped to their codes (and so to their hints), the
//! retry configuration bounds throttling, and requests carry what they
//! must (never the policy-lockout bypass).

use std::time::Duration;

use aws_sdk_kms::operation::create_key::{CreateKeyError, CreateKeyOutput};
use aws_sdk_kms::operation::put_key_policy::PutKeyPolicyOutput;
use aws_sdk_kms::types::KeyMetadata;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use aws_sdk_kms::types::{KeySpec, KeyUsageType, OriginType};

use super::*;
use crate::aws::{AwsError, KeyStore, NewKey, code};
use crate::error::Error;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

const NONE: [&Rule; 0] = [];

fn management(trail_rules: &[&Rule]) -> SdkManagement {
    SdkManagement {
        caller: None,
        sts: mock_client!(aws_sdk_sts, RuleMode::Sequential, NONE),
        org: mock_client!(aws_sdk_organizations, RuleMode::Sequential, NONE),
        trail: mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, trail_rules),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .build(),
        ),
        account: mock_client!(aws_sdk_account, RuleMode::Sequential, NONE),
    }
}

#[test]
fn enabled_regions_are_asked_for_by_status_on_every_page() {
    use aws_sdk_account::operation::list_regions::ListRegionsOutput;
    use aws_sdk_account::types::{Region as OptRegion, RegionOptStatus};
    let region = |name: &str, status: RegionOptStatus| {
        OptRegion::builder()
            .region_name(name)
            .region_opt_status(status)
            .build()
    };
    let asks_enabled = |r: &aws_sdk_account::operation::list_regions::ListRegionsInput| {
        r.region_opt_status_contains()
            == [RegionOptStatus::Enabled, RegionOptStatus::EnabledByDefault]
    };
    let first = mock!(aws_sdk_account::Client::list_regions)
        .match_requests(move |r| asks_enabled(r) && r.next_token().is_none())
        .then_output(move || {
            ListRegionsOutput::builder()
                .regions(region("us-east-1", RegionOptStatus::EnabledByDefault))
                .regions(region("af-south-1", RegionOptStatus::Enabled))
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_account::Client::list_regions)
        .match_requests(move |r| asks_enabled(r) && r.next_token() == Some("page-2"))
        .then_output(move || {
            ListRegionsOutput::builder()
                .regions(region("eu-west-1", RegionOptStatus::EnabledByDefault))
                // Never answered with this filter; not called if it were.
                .regions(region("me-south-1", RegionOptStatus::Disabled))
                .build()
        });
    let management = SdkManagement {
        account: mock_client!(aws_sdk_account, RuleMode::Sequential, [&first, &second]),
        ..management(&[])
    };
    let regions = block_on(management.enabled_regions()).unwrap();
    assert_eq!(regions, ["us-east-1", "af-south-1", "eu-west-1"]);
}

#[test]
fn another_regions_trails_are_asked_for_without_shadow_copies() {
    use aws_sdk_cloudtrail::operation::describe_trails::DescribeTrailsOutput;
    let with_shadows = mock!(aws_sdk_cloudtrail::Client::describe_trails)
        .match_requests(|r| r.include_shadow_trails() == Some(true))
        .then_output(|| DescribeTrailsOutput::builder().build());
    let homed_only = mock!(aws_sdk_cloudtrail::Client::describe_trails)
        .match_requests(|r| r.include_shadow_trails() == Some(false))
        .then_output(|| DescribeTrailsOutput::builder().build());
    let management = SdkManagement {
        trail: mock_client!(
            aws_sdk_cloudtrail,
            RuleMode::MatchAny,
            [&with_shadows, &homed_only]
        ),
        ..management(&[])
    };
    block_on(management.describe_trails()).unwrap();
    block_on(management.describe_trails_in("eu-west-1")).unwrap();
    assert_eq!(with_shadows.num_calls(), 1, "the home Region's view");
    assert_eq!(homed_only.num_calls(), 1, "each Region's own trails");
}

#[test]
fn an_event_data_store_is_read_with_its_key() {
    use aws_sdk_cloudtrail::operation::get_event_data_store::GetEventDataStoreOutput;
    use aws_sdk_cloudtrail::types::EventDataStoreStatus;
    let arn = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/eds-1";
    let rule = mock!(aws_sdk_cloudtrail::Client::get_event_data_store)
        .match_requests(move |r| r.event_data_store() == Some(arn))
        .then_output(move || {
            GetEventDataStoreOutput::builder()
                .event_data_store_arn(arn)
                .name("audit-lake")
                .status(EventDataStoreStatus::Enabled)
                .kms_key_id("arn:aws:kms:us-east-1:111111111111:key/k-1")
                .build()
        });
    let store = block_on(management(&[&rule]).get_event_data_store(arn)).unwrap();
    assert_eq!(
        store,
        EventDataStore {
            arn: arn.to_owned(),
            name: "audit-lake".to_owned(),
            status: "ENABLED".to_owned(),
            kms_key_id: Some("arn:aws:kms:us-east-1:111111111111:key/k-1".to_owned()),
        }
    );
}

fn key_store(rules: &[&Rule]) -> SdkKeyStore {
    SdkKeyStore {
        kms: mock_client!(aws_sdk_kms, RuleMode::Sequential, rules, |c| kms_config(
            c.retry_config(retry_config().with_initial_backoff(Duration::from_millis(1)))
        )),
        expires: None,
    }
}

/// An AWS JSON-protocol error response as it comes over the wire, so
/// the SDK's own deserializer reads the error code.
fn json_error(code: &'static str, message: &'static str) -> impl Fn() -> HttpResponse {
    move || {
        HttpResponse::new(
            StatusCode::try_from(400).unwrap(),
            SdkBody::from(format!(r#"{{"__type":"{code}","message":"{message}"}}"#)),
        )
    }
}

#[test]
fn cloudtrail_errors_moto_cannot_produce_are_mapped_with_their_hints() {
    let cases = [
        (
            "InsufficientEncryptionPolicyException",
            "the key policy does not let CloudTrail use the key",
        ),
        (
            "KmsKeyNotFoundException",
            "the key must be in the trail's home Region and be named by its full key ARN",
        ),
        ("KmsKeyDisabledException", "the key is disabled"),
        (
            "NotOrganizationMasterAccountException",
            "only be changed from the management account",
        ),
        (
            "OrganizationNotInAllFeaturesModeException",
            "all features enabled",
        ),
    ];
    for (code, hint) in cases {
        let rule = mock!(aws_sdk_cloudtrail::Client::update_trail)
            .then_http_response(json_error(code, "as CloudTrail says it"));
        let e =
            block_on(management(&[&rule]).set_trail_key("org-trail", "arn:aws:kms:k")).unwrap_err();
        assert_eq!((e.operation, e.code.as_str()), ("UpdateTrail", code));
        assert_eq!(e.message, "as CloudTrail says it");
        let text = Error::aws("pointing the trail at the key", e).render();
        assert!(text.contains(hint), "{code}: {text}");
    }
}

#[test]
fn an_unknown_trail_is_trail_not_found() {
    let rule = mock!(aws_sdk_cloudtrail::Client::get_trail).then_http_response(json_error(
        "TrailNotFoundException",
        "Unknown trail: org-trail for the user: 123456789012",
    ));
    let e = block_on(management(&[&rule]).get_trail("org-trail")).unwrap_err();
    assert_eq!(
        (e.operation, e.code.as_str()),
        ("GetTrail", "TrailNotFoundException")
    );
    assert!(e.message.contains("Unknown trail"));
}

#[test]
fn a_denied_assume_role_names_the_role_and_its_trust() {
    let rule = mock!(aws_sdk_sts::Client::assume_role).then_error(|| {
            AssumeRoleError::generic(
                aws_sdk_sts::error::ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("User: arn:aws:iam::123456789012:user/ci is not authorized to perform: sts:AssumeRole")
                    .build(),
            )
        });
    let management = SdkManagement {
        sts: mock_client!(aws_sdk_sts, RuleMode::Sequential, [&rule]),
        ..management(&[])
    };
    let (caller, _) = super::credentials::Caller::wrap(
        aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::for_tests(),
        ),
    );
    let connect = SdkConnect {
        config: SdkConfig::builder().build(),
        caller,
        management_role: false,
        management,
        landing_zones: SdkLandingZones {
            ct: mock_client!(aws_sdk_controltower, RuleMode::Sequential, NONE),
        },
    };
    let Err(e) = block_on(
        connect.security_tooling("arn:aws:iam::111111111111:role/AWSControlTowerExecution"),
    ) else {
        panic!("AssumeRole must fail");
    };
    assert_eq!(
        (e.operation, e.code.as_str()),
        ("AssumeRole", "AccessDenied")
    );
    let text = Error::aws("assuming the role", e).render();
    assert!(
        text.contains(
            "check roles.security_tooling (the role name) and that its trust policy allows"
        ),
        "{text}"
    );
}

fn throttled() -> CreateKeyError {
    CreateKeyError::generic(
        aws_sdk_kms::error::ErrorMetadata::builder()
            .code("ThrottlingException")
            .message("Rate exceeded")
            .build(),
    )
}

fn created() -> CreateKeyOutput {
    CreateKeyOutput::builder()
        .key_metadata(
            KeyMetadata::builder()
                .key_id("k-1")
                .arn("arn:aws:kms:us-east-1:111111111111:key/k-1")
                .build()
                .unwrap(),
        )
        .build()
}

fn new_key() -> NewKey {
    NewKey {
        description: "d".to_owned(),
        policy: "{}".to_owned(),
        tags: BTreeMap::from([("ManagedBy".to_owned(), "trailkey".to_owned())]),
    }
}

#[test]
fn throttling_is_retried_by_the_sdk_and_succeeds() {
    let rule = mock!(aws_sdk_kms::Client::create_key)
        .sequence()
        .error(throttled)
        .times(2)
        .output(created)
        .build();
    let key = block_on(key_store(&[&rule]).create_key(&new_key())).unwrap();
    assert_eq!(key.key_id, "k-1");
    assert_eq!(rule.num_calls(), 3, "two throttles, then success");
}

#[test]
fn throttling_that_outlasts_the_bounded_retries_fails_with_its_hint() {
    let rule = mock!(aws_sdk_kms::Client::create_key)
        .sequence()
        .error(throttled)
        .repeatedly()
        .build();
    let e = block_on(key_store(&[&rule]).create_key(&new_key())).unwrap_err();
    assert_eq!(e.code, "ThrottlingException");
    assert_eq!(rule.num_calls(), MAX_ATTEMPTS as usize, "bounded attempts");
    assert!(
        Error::aws("creating the key", e)
            .render()
            .contains("wait a minute and run again")
    );
}

#[test]
fn a_kms_quota_is_limit_exceeded_with_its_hint() {
    let rule = mock!(aws_sdk_kms::Client::create_key).then_http_response(json_error(
        "LimitExceededException",
        "The request was rejected because a quota was exceeded.",
    ));
    let e = block_on(key_store(&[&rule]).create_key(&new_key())).unwrap_err();
    assert_eq!(e.code, "LimitExceededException");
    // Not throttling: the SDK's classifier would retry it 5 times.
    assert_eq!(rule.num_calls(), 1, "a quota is not retried");
    assert!(
        Error::aws("creating the key", e)
            .render()
            .contains("a KMS quota was reached")
    );
}

#[test]
fn keys_are_created_single_region_symmetric_tagged_and_never_bypass_the_lockout_check() {
    let rule = mock!(aws_sdk_kms::Client::create_key)
        .match_requests(|r| {
            r.key_spec() == Some(&KeySpec::SymmetricDefault)
                && r.key_usage() == Some(&KeyUsageType::EncryptDecrypt)
                && r.origin() == Some(&OriginType::AwsKms)
                && r.multi_region() == Some(false)
                && r.bypass_policy_lockout_safety_check().is_none()
                && r.policy() == Some("{}")
                && r.tags()
                    .iter()
                    .any(|t| t.tag_key() == "ManagedBy" && t.tag_value() == "trailkey")
        })
        .then_output(created);
    block_on(key_store(&[&rule]).create_key(&new_key())).unwrap();
    assert_eq!(rule.num_calls(), 1);

    let rule = mock!(aws_sdk_kms::Client::put_key_policy)
        .match_requests(|r| {
            r.bypass_policy_lockout_safety_check().is_none() && r.policy_name() == Some("default")
        })
        .then_output(|| PutKeyPolicyOutput::builder().build());
    block_on(key_store(&[&rule]).put_key_policy("k-1", "{}")).unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[test]
fn a_malformed_policy_is_reported_with_its_code() {
    let rule = mock!(aws_sdk_kms::Client::put_key_policy).then_http_response(json_error(
        "MalformedPolicyDocumentException",
        "Policy contains a statement with one or more invalid principals.",
    ));
    let e = block_on(key_store(&[&rule]).put_key_policy("k-1", "{}")).unwrap_err();
    assert_eq!(e.code, "MalformedPolicyDocumentException");
}

#[test]
fn accounts_are_read_by_state_and_by_status_only_without_it() {
    use aws_sdk_organizations::operation::list_accounts::ListAccountsOutput;
    use aws_sdk_organizations::types::{Account as OrgAccount, AccountState, AccountStatus};
    let rule = mock!(aws_sdk_organizations::Client::list_accounts).then_output(|| {
        ListAccountsOutput::builder()
            .accounts(
                OrgAccount::builder()
                    .id("111111111111")
                    .state(AccountState::Active)
                    .build(),
            )
            .accounts(
                OrgAccount::builder()
                    .id("222222222222")
                    .state(AccountState::PendingClosure)
                    .status(AccountStatus::Active)
                    .build(),
            )
            .accounts(
                OrgAccount::builder()
                    .id("333333333333")
                    .status(AccountStatus::Suspended)
                    .build(),
            )
            .build()
    });
    let management = SdkManagement {
        org: mock_client!(aws_sdk_organizations, RuleMode::Sequential, [&rule]),
        ..management(&[])
    };
    let accounts = block_on(management.list_accounts()).unwrap();
    let states: Vec<&str> = accounts.iter().map(|a| a.state.as_str()).collect();
    // State wins where both are sent; Status only when State is absent.
    assert_eq!(states, ["ACTIVE", "PENDING_CLOSURE", "SUSPENDED"]);
}

#[test]
fn the_bucket_region_comes_from_head_buckets_header_whatever_the_status() {
    let answer = |status: u16, region: Option<&'static str>| {
        move || {
            let mut response =
                HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
            if let Some(region) = region {
                response.headers_mut().insert("x-amz-bucket-region", region);
            }
            response
        }
    };
    let region_of = |status: u16, region: Option<&'static str>| {
        let rule =
            mock!(aws_sdk_s3::Client::head_bucket).then_http_response(answer(status, region));
        let management = SdkManagement {
            s3: mock_client!(aws_sdk_s3, RuleMode::Sequential, [&rule]),
            ..management(&[])
        };
        block_on(management.bucket_region("org-trail-logs"))
    };
    // The bucket owner's, another account's (denied), and another Region's (redirect).
    assert_eq!(
        region_of(200, Some("us-east-1")),
        Ok("us-east-1".to_owned())
    );
    assert_eq!(
        region_of(403, Some("eu-west-1")),
        Ok("eu-west-1".to_owned())
    );
    assert_eq!(
        region_of(301, Some("ap-south-1")),
        Ok("ap-south-1".to_owned())
    );
    let missing = region_of(404, None).unwrap_err();
    assert_eq!(
        (missing.operation, missing.code.as_str()),
        ("HeadBucket", code::NO_SUCH_BUCKET)
    );
    let unknown = region_of(403, None).unwrap_err();
    assert_eq!(unknown.code, "AccessDenied");
}

#[test]
fn an_answer_that_cannot_be_decoded_says_so_with_the_operation() {
    let rule = mock!(aws_sdk_kms::Client::create_key).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(400).unwrap(),
            SdkBody::from(vec![0xff, 0xfe, 0x00, 0x9f, b'{']),
        )
    });
    let e = block_on(key_store(&[&rule]).create_key(&new_key())).unwrap_err();
    assert_eq!(e.operation, "CreateKey");
    assert!(
        e.message
            .contains("AWS's answer to CreateKey (HTTP 400) could not be decoded"),
        "{e:?}"
    );
    let text = Error::aws("creating the key", e).render();
    assert!(text.contains("could not be decoded"), "{text}");
}

/// Control Tower's client as `SdkConnect` builds it (the SDK's standard
/// retries, at once), answering `rules`.
fn landing_zones(rules: &[&Rule]) -> SdkLandingZones {
    SdkLandingZones {
        ct: mock_client!(aws_sdk_controltower, RuleMode::Sequential, rules, |c| c
            .retry_config(
                retry_config().with_initial_backoff(Duration::from_millis(1))
            )),
    }
}

fn a_server_fault() -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(500).unwrap(),
        SdkBody::from(r#"{"message":"An internal error occurred"}"#),
    );
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", "InternalServerException");
    response
}

#[test]
fn update_landing_zone_is_sent_once_where_a_read_is_retried() {
    let manifest =
        serde_json::json!({"centralizedLogging": {"configurations": {"kmsKeyArn": "k"}}});
    let update = crate::aws::LandingZoneUpdate {
        arn: "arn:aws:controltower:us-east-1:333333333333:landingzone/1A2B3C4D5E6F",
        version: "3.3",
        remediation_types: &[],
        manifest: &manifest,
    };
    let sent = mock!(aws_sdk_controltower::Client::update_landing_zone)
        .sequence()
        .http_response(a_server_fault)
        .repeatedly()
        .build();
    let e = block_on(landing_zones(&[&sent]).update_landing_zone(update)).unwrap_err();
    assert_eq!(e.code, "InternalServerException");
    assert_eq!(
        sent.num_calls(),
        1,
        "no retry: an operation may have started"
    );
    assert!(
        Error::aws("updating the landing zone", e)
            .render()
            .contains("list-landing-zone-operations")
    );
    // A read of the same client gets the SDK's retries.
    let read = mock!(aws_sdk_controltower::Client::get_landing_zone_operation)
        .sequence()
        .http_response(a_server_fault)
        .repeatedly()
        .build();
    let e = block_on(landing_zones(&[&read]).get_operation("op")).unwrap_err();
    assert_eq!(e.code, "InternalServerException");
    assert_eq!(read.num_calls(), MAX_ATTEMPTS as usize);
}

#[test]
fn a_manifest_goes_to_control_tower_and_back_unchanged() {
    let manifest = serde_json::json!({
        "governedRegions": ["us-east-1", "eu-west-1"],
        "centralizedLogging": {"accountId": "222222222222", "enabled": true,
            "configurations": {"loggingBucket": {"retentionDays": 365}, "kmsKeyArn": "k"}},
        "negative": -3, "float": 1.5, "null": null, "nested": [[], {}]
    });
    let there = controltower::document_of(&manifest);
    assert_eq!(controltower::json_of(&there), manifest);
}

/// What AWS lists in no fixed order comes back sorted, so that a saved
/// plan, which compares what it read in order with what is read when it is
/// applied, is not stale for an order AWS chose: each list read in one
/// order and in another (across pages for accounts) comes back the same.
#[test]
fn lists_aws_gives_in_no_fixed_order_come_back_sorted() {
    use aws_sdk_cloudtrail::operation::describe_trails::DescribeTrailsOutput;
    use aws_sdk_controltower::operation::get_landing_zone::GetLandingZoneOutput;
    use aws_sdk_controltower::operation::list_landing_zone_operations::ListLandingZoneOperationsOutput;
    use aws_sdk_controltower::types::{
        LandingZoneDetail, LandingZoneOperationSummary, LandingZoneOperationType, RemediationType,
    };
    use aws_sdk_kms::operation::list_aliases::ListAliasesOutput;
    use aws_sdk_kms::operation::list_keys::ListKeysOutput;
    use aws_sdk_kms::types::{AliasListEntry, KeyListEntry};
    use aws_sdk_organizations::operation::list_accounts::ListAccountsOutput;
    use aws_sdk_organizations::types::{Account as OrgAccount, AccountState};

    type Read = (
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
    );
    let read = |reversed: bool| -> Read {
        let order = |mut items: Vec<&'static str>| {
            if reversed {
                items.reverse();
            }
            items
        };
        let trails = order(vec!["c", "a", "b"]);
        let describe = mock!(aws_sdk_cloudtrail::Client::describe_trails).then_output(move || {
            let list = trails.iter().map(|t| {
                aws_sdk_cloudtrail::types::Trail::builder()
                    .name(*t)
                    .trail_arn(format!(
                        "arn:aws:cloudtrail:us-east-1:333333333333:trail/{t}"
                    ))
                    .home_region("us-east-1")
                    .s3_bucket_name("logs")
                    .build()
            });
            DescribeTrailsOutput::builder()
                .set_trail_list(Some(list.collect()))
                .build()
        });
        // Two pages, each out of order, the second before the first in
        // the other order.
        let (first, second) = if reversed {
            (
                vec!["222222222222", "444444444444"],
                vec!["333333333333", "111111111111"],
            )
        } else {
            (
                vec!["333333333333", "111111111111"],
                vec!["444444444444", "222222222222"],
            )
        };
        let page = |ids: Vec<&'static str>, next: Option<&'static str>| {
            move || {
                let accounts = ids.iter().map(|id| {
                    OrgAccount::builder()
                        .id(*id)
                        .state(AccountState::Active)
                        .build()
                });
                ListAccountsOutput::builder()
                    .set_accounts(Some(accounts.collect()))
                    .set_next_token(next.map(str::to_owned))
                    .build()
            }
        };
        let page_one = mock!(aws_sdk_organizations::Client::list_accounts)
            .match_requests(|r| r.next_token().is_none())
            .then_output(page(first, Some("page-2")));
        let page_two = mock!(aws_sdk_organizations::Client::list_accounts)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(page(second, None));
        let management = SdkManagement {
            trail: mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&describe]),
            org: mock_client!(
                aws_sdk_organizations,
                RuleMode::MatchAny,
                [&page_one, &page_two]
            ),
            ..management(&[])
        };
        let trails = block_on(management.describe_trails()).unwrap();
        let accounts = block_on(management.list_accounts()).unwrap();

        let aliases = order(vec!["alias/zeta", "alias/alpha", "alias/mid"]);
        let list_aliases = mock!(aws_sdk_kms::Client::list_aliases).then_output(move || {
            let entries = aliases
                .iter()
                .map(|a| AliasListEntry::builder().alias_name(*a).build());
            ListAliasesOutput::builder()
                .set_aliases(Some(entries.collect()))
                .build()
        });
        let keys = order(vec!["k-3", "k-1", "k-2"]);
        let list_keys = mock!(aws_sdk_kms::Client::list_keys).then_output(move || {
            let entries = keys
                .iter()
                .map(|k| KeyListEntry::builder().key_id(*k).build());
            ListKeysOutput::builder()
                .set_keys(Some(entries.collect()))
                .build()
        });
        let kms = key_store(&[&list_aliases, &list_keys]);
        let aliases = block_on(kms.list_aliases("k-1")).unwrap();
        let keys = block_on(kms.list_keys()).unwrap();

        let remediation = order(vec!["INHERITANCE_DRIFT", "ZZ_FUTURE_TYPE"]);
        let zone = mock!(aws_sdk_controltower::Client::get_landing_zone).then_output(move || {
            let detail = LandingZoneDetail::builder()
                .version("3.3")
                .manifest(controltower::document_of(&serde_json::json!({})))
                .set_remediation_types(Some(
                    remediation
                        .iter()
                        .map(|r| RemediationType::from(*r))
                        .collect(),
                ))
                .build()
                .unwrap();
            GetLandingZoneOutput::builder().landing_zone(detail).build()
        });
        let operations = order(vec!["op-b", "op-a"]);
        let in_progress = mock!(aws_sdk_controltower::Client::list_landing_zone_operations)
            .then_output(move || {
                let summaries = operations.iter().map(|id| {
                    LandingZoneOperationSummary::builder()
                        .operation_identifier(*id)
                        .operation_type(LandingZoneOperationType::Update)
                        .build()
                });
                ListLandingZoneOperationsOutput::builder()
                    .set_landing_zone_operations(Some(summaries.collect()))
                    .build()
                    .unwrap()
            });
        let ct = landing_zones(&[&zone, &in_progress]);
        let zone = block_on(ct.get_landing_zone("arn:zone")).unwrap();
        let operations = block_on(ct.operations_in_progress()).unwrap();
        (
            trails.into_iter().map(|t| t.name).collect(),
            accounts.into_iter().map(|a| a.id).collect(),
            aliases,
            keys,
            zone.remediation_types,
            operations.into_iter().map(|o| o.id).collect(),
        )
    };
    let one = read(false);
    assert_eq!(one, read(true));
    assert_eq!(one.0, ["a", "b", "c"]);
    assert_eq!(
        one.1,
        [
            "111111111111",
            "222222222222",
            "333333333333",
            "444444444444"
        ]
    );
    assert_eq!(one.2, ["alias/alpha", "alias/mid", "alias/zeta"]);
    assert_eq!(one.3, ["k-1", "k-2", "k-3"]);
    assert_eq!(one.4, ["INHERITANCE_DRIFT", "ZZ_FUTURE_TYPE"]);
    assert_eq!(one.5, ["op-a", "op-b"]);
}

/// A read trailkey reports and carries on from says the same for the same
/// cause, whatever varies around it: the details of a failed connection,
/// or the role session an access denial names.
#[test]
fn a_reported_read_failure_reads_the_same_whatever_its_details() {
    use super::error::steady;
    let dispatch =
        |detail: &str| steady(AwsError::new("HeadBucket", code::DISPATCH_FAILURE, detail));
    assert_eq!(
        dispatch(
            "dispatch failure: io error: error trying to connect: tcp connect error: Connection refused (os error 111)"
        ),
        dispatch("dispatch failure: other: connection closed before message completed")
    );
    assert_eq!(
        dispatch("x").message,
        "no answer from AWS that could be read (`-v` logs why)"
    );
    let timeout = steady(AwsError::new(
        "GetEventSelectors",
        code::TIMEOUT,
        "after 3.1s",
    ));
    assert_eq!(
        (timeout.code.as_str(), timeout.operation),
        (code::TIMEOUT, "GetEventSelectors")
    );
    assert!(!timeout.message.contains("3.1s"), "{timeout:?}");
    let denied = |session: &str| {
        steady(AwsError::new(
            "GetEventSelectors",
            code::ACCESS_DENIED_EXCEPTION,
            format!(
                "User: arn:aws:sts::333333333333:assumed-role/TrailkeyRunner/{session} is not authorized to perform: cloudtrail:GetEventSelectors on resource: arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail because no identity-based policy allows the cloudtrail:GetEventSelectors action"
            ),
        ))
    };
    let plan = denied("trailkey-plan-1001");
    assert_eq!(plan, denied("trailkey-apply-1001"));
    assert_eq!(plan.code, code::ACCESS_DENIED_EXCEPTION);
    assert!(
        plan.message
            .starts_with("denied by a policy of the caller's"),
        "{plan:?}"
    );
    // Any other error is as AWS said it.
    let other = AwsError::new(
        "GetEventSelectors",
        "TrailNotFoundException",
        "Unknown trail",
    );
    assert_eq!(steady(other.clone()), other);

    // HeadBucket with no answer at all: the steady form, not the SDK's
    // words about the connection.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::for_tests())
            // Nothing listens on port 1 of loopback: the connection is refused.
            .endpoint_url("http://127.0.0.1:1")
            .force_path_style(true)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    );
    let management = SdkManagement {
        s3,
        ..management(&[])
    };
    let e = block_on(management.bucket_region("org-trail-logs")).unwrap_err();
    assert_eq!(
        (e.operation, e.code.as_str()),
        ("HeadBucket", code::DISPATCH_FAILURE)
    );
    assert_eq!(e.message, dispatch("x").message);
}
