//! The error table: for every operation trailkey calls and every error code
//! it can get, how trailkey handles it and the hint it shows (the hints
//! follow the table).

use crate::aws::code;

use super::handling::{Message, Ops, Rule, Treat, rule};
use super::operations::*;

/// The throttling codes of the SDK's standard retry strategy
/// (`THROTTLING_ERRORS` of `aws-runtime`), without KMS's
/// `LimitExceededException`: a quota, which no retry fixes.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// IAM denied the call, in the words of either protocol.
const DENIED: &[&str] = &[code::ACCESS_DENIED, code::ACCESS_DENIED_EXCEPTION];

/// The table: for every operation trailkey calls and every error code it
/// can get, how trailkey handles it. The first rule that matches decides.
/// Sources: the botocore service models (`tests/aws_models.rs` checks that
/// every code they list for these operations is here) and
/// `docs/errors.md`.
pub(super) static RULES: &[Rule] = &[
    // --- KMS ---
    rule(
        Ops::Of(&["DescribeKey"]),
        &[code::NOT_FOUND],
        Treat::Answer(KMS_NOT_FOUND),
    ),
    // A key this run created may not be visible yet, to the steps after
    // CreateKey and to the re-read after apply. The ListKeys scan reads
    // ListResourceTags' NotFoundException as a key deleted since.
    rule(
        Ops::Of(KMS_NAMING_A_KEY),
        &[code::NOT_FOUND],
        Treat::AfterOwnWrite(KMS_NOT_FOUND),
    ),
    rule(
        Ops::Of(&[
            "DeleteAlias",
            "ScheduleKeyDeletion",
            "ListAliases",
            "ListGrants",
        ]),
        &[code::NOT_FOUND],
        Treat::Hint(KMS_NOT_FOUND),
    ),
    // KMS reports no rotation status for a key pending deletion.
    rule(
        Ops::Of(&["GetKeyRotationStatus"]),
        &[code::KMS_INVALID_STATE],
        Treat::Answer(KMS_INVALID_STATE),
    ),
    // After this run's EnableKey or CancelKeyDeletion, KMS may still show
    // the key's old state for a while.
    rule(
        Ops::Of(KMS_KEY_WRITES),
        &[code::KMS_INVALID_STATE, code::DISABLED],
        Treat::AfterOwnWrite(KEY_DISABLED_OR_STATE),
    ),
    rule(
        Ops::Of(KMS),
        &[code::KMS_INVALID_STATE],
        Treat::Hint(KMS_INVALID_STATE),
    ),
    rule(Ops::Of(KMS), &[code::DISABLED], Treat::Hint(KEY_DISABLED)),
    // Another run created the alias first: apply continues with its key.
    rule(
        Ops::Of(&["CreateAlias"]),
        &[code::ALREADY_EXISTS],
        Treat::Answer(ALREADY_EXISTS),
    ),
    rule(
        Ops::Of(KMS),
        &[code::ALREADY_EXISTS],
        Treat::Hint(ALREADY_EXISTS),
    ),
    Rule {
        ops: Ops::Of(&["CreateKey", "PutKeyPolicy"]),
        codes: &[code::MALFORMED_POLICY],
        message: Message::Lockout,
        treat: Treat::Hint(LOCKOUT),
    },
    // A principal IAM does not know yet: retried for
    // `--policy-retry-timeout`.
    rule(
        Ops::Of(&["CreateKey", "PutKeyPolicy"]),
        &[code::MALFORMED_POLICY],
        Treat::Wait(PRINCIPAL_NOT_YET),
    ),
    rule(
        Ops::Of(KMS),
        &["InvalidArnException"],
        Treat::Hint(INVALID_ARN),
    ),
    rule(
        Ops::Of(KMS),
        &["InvalidAliasNameException"],
        Treat::Hint(INVALID_ALIAS),
    ),
    // A quota or a policy over 32 KB: not throttling, though the SDK's
    // list says so.
    rule(
        Ops::Of(KMS),
        &[code::LIMIT_EXCEEDED],
        Treat::Hint(KMS_QUOTA),
    ),
    rule(
        Ops::Of(KMS),
        &["UnsupportedOperationException"],
        Treat::Hint(KMS_UNSUPPORTED),
    ),
    rule(Ops::Of(KMS), &["TagException"], Treat::Hint(TAG)),
    // Server faults in the kms model: HTTP 5xx, retried by the SDK.
    rule(
        Ops::Of(KMS),
        &["KMSInternalException", "DependencyTimeoutException"],
        Treat::SdkRetry(TRANSIENT),
    ),
    // trailkey creates keys with key material from KMS only, never in a
    // custom key store; pagination markers are the SDK's; it names no grant.
    rule(
        Ops::Of(KMS),
        &[
            "CustomKeyStoreNotFoundException",
            "CustomKeyStoreInvalidStateException",
            "CloudHsmClusterInvalidConfigurationException",
            "XksKeyInvalidConfigurationException",
            "XksKeyAlreadyInUseException",
            "XksKeyNotFoundException",
            "InvalidMarkerException",
            "InvalidGrantIdException",
        ],
        Treat::Generic,
    ),
    // --- CloudTrail ---
    rule(
        Ops::Of(&["UpdateTrail"]),
        &[code::KMS_KEY_NOT_FOUND],
        Treat::AfterOwnWrite(KMS_KEY_NOT_FOUND),
    ),
    rule(
        Ops::Of(&["UpdateTrail"]),
        &[code::INSUFFICIENT_ENCRYPTION_POLICY],
        Treat::AfterOwnWrite(INSUFFICIENT_ENCRYPTION_POLICY),
    ),
    rule(
        Ops::Of(&["UpdateTrail"]),
        &[code::KMS_KEY_DISABLED],
        Treat::AfterOwnWrite(KEY_DISABLED),
    ),
    // The model says KmsKeyDisabledException is no longer in use: a key
    // CloudTrail still sees disabled after this run's EnableKey may answer
    // this instead.
    rule(
        Ops::Of(&["UpdateTrail"]),
        &[code::KMS_EXCEPTION],
        Treat::AfterOwnWrite(KMS_EXCEPTION),
    ),
    rule(
        Ops::Of(&["UpdateTrail", "StartLogging"]),
        &[code::CONFLICT],
        Treat::Wait(CONFLICT),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &[code::TRAIL_NOT_FOUND],
        Treat::Hint(TRAIL_NOT_FOUND_HINT),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["NotOrganizationMasterAccountException"],
        Treat::Hint(NOT_MANAGEMENT_ACCOUNT),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["OrganizationNotInAllFeaturesModeException"],
        Treat::Hint(NOT_ALL_FEATURES),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["OrganizationsNotInUseException"],
        Treat::Hint(NOT_IN_ORGANIZATION),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["CloudTrailAccessNotEnabledException"],
        Treat::Hint(TRUSTED_ACCESS),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["InsufficientDependencyServiceAccessPermissionException"],
        Treat::Hint(DEPENDENCY_ACCESS),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["NoManagementAccountSLRExistsException"],
        Treat::Hint(NO_SERVICE_LINKED_ROLE),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["InvalidHomeRegionException"],
        Treat::Hint(HOME_REGION),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &[code::KMS_EXCEPTION],
        Treat::Hint(KMS_EXCEPTION),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["InvalidKmsKeyIdException"],
        Treat::Hint(INVALID_KMS_KEY_ID),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["InvalidTrailNameException"],
        Treat::Hint(INVALID_TRAIL_NAME),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["CloudTrailARNInvalidException"],
        Treat::Hint(TRAIL_ARN_INVALID),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["ResourceNotFoundException"],
        Treat::Hint(TRAIL_RESOURCE_NOT_FOUND),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["UnsupportedOperationException"],
        Treat::Hint(CLOUDTRAIL_UNSUPPORTED),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["OperationNotPermittedException"],
        Treat::Hint(CLOUDTRAIL_NOT_PERMITTED),
    ),
    // UpdateTrail checks the trail's other settings too, which trailkey
    // leaves as they are.
    rule(
        Ops::Of(CLOUDTRAIL),
        &["S3BucketDoesNotExistException"],
        Treat::Hint(NO_BUCKET),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &["InsufficientS3BucketPolicyException"],
        Treat::Hint(BUCKET_POLICY),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &[
            "InsufficientSnsTopicPolicyException",
            "CloudTrailInvalidClientTokenIdException",
        ],
        Treat::Hint(SNS_TOPIC),
    ),
    rule(
        Ops::Of(CLOUDTRAIL),
        &[
            "InvalidCloudWatchLogsLogGroupArnException",
            "InvalidCloudWatchLogsRoleArnException",
            "CloudWatchLogsDeliveryUnavailableException",
        ],
        Treat::Hint(CLOUDWATCH_LOGS),
    ),
    // An event data store deleted between ListEventDataStores and its
    // GetEventDataStore uses no key any more: it is left out.
    rule(
        Ops::Of(&["GetEventDataStore"]),
        &[code::EVENT_DATA_STORE_NOT_FOUND],
        Treat::Answer(EVENT_DATA_STORE_GONE),
    ),
    // Parameters trailkey never sends, event data stores named only by the
    // ARNs ListEventDataStores gave, channels it never names, pagination
    // the SDK does, and codes the model marks as unused.
    rule(
        Ops::Of(CLOUDTRAIL),
        &[
            "InvalidS3BucketNameException",
            "InvalidS3PrefixException",
            "InvalidSnsTopicNameException",
            "InvalidEventSelectorsException",
            "InvalidParameterCombinationException",
            "InvalidParameterException",
            "TrailNotProvidedException",
            "EventDataStoreARNInvalidException",
            "ChannelARNInvalidException",
            "ResourceTypeNotSupportedException",
            "InactiveEventDataStoreException",
            code::EVENT_DATA_STORE_NOT_FOUND,
            "InvalidTokenException",
            "InvalidMaxResultsException",
            "InvalidNextTokenException",
        ],
        Treat::Generic,
    ),
    // --- Organizations ---
    rule(
        Ops::Of(ORGANIZATIONS),
        &["AWSOrganizationsNotInUseException"],
        Treat::Hint(NOT_IN_ORGANIZATION),
    ),
    rule(
        Ops::Of(ORGANIZATIONS),
        &["ConcurrentModificationException"],
        Treat::Hint(CONCURRENT_MODIFICATION),
    ),
    // A server fault in the organizations model: HTTP 5xx.
    rule(
        Ops::Of(ORGANIZATIONS),
        &["ServiceException"],
        Treat::SdkRetry(TRANSIENT),
    ),
    // trailkey sends no input but the SDK's pagination token (and, to
    // ListDelegatedAdministrators, CloudTrail's service principal).
    rule(
        Ops::Of(ORGANIZATIONS),
        &["InvalidInputException"],
        Treat::Generic,
    ),
    // "This action isn't available in the current Amazon Web Services
    // Region" (organizations model): Organizations is reached at its own
    // endpoint unless one is configured.
    rule(
        Ops::Of(&["ListDelegatedAdministrators"]),
        &["UnsupportedAPIEndpointException"],
        Treat::Hint(ORGANIZATIONS_ENDPOINT),
    ),
    // A limit of a write ("attaching too many policies ..."): a list call
    // meets none.
    rule(
        Ops::Of(&["ListDelegatedAdministrators"]),
        &["ConstraintViolationException"],
        Treat::Generic,
    ),
    // --- Account Management ---
    // A server fault in the account model: HTTP 500.
    rule(
        Ops::Of(ACCOUNT),
        &["InternalServerException"],
        Treat::SdkRetry(TRANSIENT),
    ),
    // trailkey sends only the opt-in status filter and the SDK's
    // pagination token.
    rule(Ops::Of(ACCOUNT), &["ValidationException"], Treat::Generic),
    // --- Control Tower ---
    // Another landing-zone operation began after trailkey's check: not
    // waited for, as an operation runs up to an hour.
    rule(
        Ops::Of(&["UpdateLandingZone"]),
        &[code::CONFLICT],
        Treat::Hint(LANDING_ZONE_CONFLICT),
    ),
    rule(
        Ops::Of(CONTROLTOWER),
        &[code::RESOURCE_NOT_FOUND],
        Treat::Hint(LANDING_ZONE_NOT_FOUND),
    ),
    // Control Tower may not see a key, or its policy, this run has just
    // written: no operation started, so the call is made again, bounded.
    rule(
        Ops::Of(&["UpdateLandingZone"]),
        &[code::VALIDATION],
        Treat::AfterOwnWrite(LANDING_ZONE_VALIDATION),
    ),
    // trailkey sends the identifiers Control Tower gave it, and the SDK's
    // pagination token.
    rule(Ops::Of(CONTROLTOWER), &[code::VALIDATION], Treat::Generic),
    // UpdateLandingZone is sent once (the SDK does not retry it): after
    // an answer that never came, or a server fault, an operation may have
    // started; after throttling, none did.
    rule(
        Ops::Of(&["UpdateLandingZone"]),
        &[
            "InternalServerException",
            code::TIMEOUT,
            code::DISPATCH_FAILURE,
            code::RESPONSE_ERROR,
            code::UNKNOWN,
        ],
        Treat::Hint(LANDING_ZONE_MAYBE_STARTED),
    ),
    rule(
        Ops::Of(&["UpdateLandingZone"]),
        THROTTLING,
        Treat::Hint(LANDING_ZONE_THROTTLED),
    ),
    // A server fault in the controltower model: HTTP 500.
    rule(
        Ops::Of(CONTROLTOWER),
        &["InternalServerException"],
        Treat::SdkRetry(TRANSIENT),
    ),
    // trailkey's codes for an operation that ended FAILED, or that
    // outlasted --landing-zone-timeout.
    rule(
        Ops::Of(&["UpdateLandingZone"]),
        &[code::LANDING_ZONE_FAILED],
        Treat::Hint(LANDING_ZONE_FAILED),
    ),
    rule(
        Ops::Of(&["GetLandingZoneOperation"]),
        &[code::LANDING_ZONE_TIMEOUT],
        Treat::Hint(LANDING_ZONE_TIMEOUT),
    ),
    rule(
        Ops::Of(&["UpdateLandingZone"]),
        &[code::LANDING_ZONE_CHANGED],
        Treat::Hint(LANDING_ZONE_CHANGED),
    ),
    // A bug: the Lambda's apply leaves the landing zone to `trailkey apply`.
    rule(
        Ops::Of(&["UpdateLandingZone"]),
        &[code::LANDING_ZONE_LEFT],
        Treat::Generic,
    ),
    // --- STS ---
    rule(
        Ops::Of(&["AssumeRole"]),
        DENIED,
        Treat::Hint(ASSUME_ROLE_DENIED),
    ),
    rule(
        Ops::Of(STS),
        &["RegionDisabledException"],
        Treat::Hint(REGION_DISABLED),
    ),
    // trailkey passes no session policy and no session tags. These are the
    // codes on the wire (the shapes are MalformedPolicyDocumentException and
    // PackedPolicyTooLargeException).
    rule(
        Ops::Of(STS),
        &["MalformedPolicyDocument", "PackedPolicyTooLarge"],
        Treat::Generic,
    ),
    // --- S3 ---
    // The bucket's Region: trailkey stops with a message of its own.
    rule(
        Ops::Of(&["HeadBucket"]),
        &[code::NO_SUCH_BUCKET],
        Treat::Answer(NO_BUCKET),
    ),
    rule(Ops::Of(S3), &[code::NO_SUCH_BUCKET], Treat::Hint(NO_BUCKET)),
    rule(
        Ops::Of(&["GetBucketPolicy"]),
        &[code::NO_SUCH_BUCKET_POLICY],
        Treat::Answer(NO_BUCKET_POLICY),
    ),
    rule(
        Ops::Of(&["GetBucketEncryption"]),
        &[code::NO_ENCRYPTION_CONFIGURATION],
        Treat::Answer(NO_ENCRYPTION_CONFIGURATION),
    ),
    rule(
        Ops::Of(&["GetBucketReplication"]),
        &[code::NO_REPLICATION_CONFIGURATION],
        Treat::Answer(NO_REPLICATION_CONFIGURATION),
    ),
    // --- Any operation: codes outside the models (IAM, credentials, the
    // SDK's own) ---
    // KMS authorizes the calls on a key by its key policy first ("Required
    // permissions: kms:X (key policy)", kms model): the hint names it. IAM
    // alone authorizes the others.
    rule(Ops::Of(KMS_IAM_ONLY), DENIED, Treat::Hint(ACCESS_DENIED)),
    rule(Ops::Of(KMS), DENIED, Treat::Hint(KMS_KEY_ACCESS_DENIED)),
    rule(Ops::Any, DENIED, Treat::Hint(ACCESS_DENIED)),
    rule(
        Ops::Any,
        &["ExpiredToken", "ExpiredTokenException", "RequestExpired"],
        Treat::Hint(EXPIRED),
    ),
    rule(
        Ops::Any,
        &[
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "SignatureDoesNotMatch",
        ],
        Treat::Hint(INVALID_CREDENTIALS),
    ),
    rule(
        Ops::Any,
        &[code::CREDENTIALS_NOT_LOADED],
        Treat::Hint(NO_CREDENTIALS),
    ),
    // The cloudtrail model lists it for RegisterOrganizationDelegatedAdmin
    // and PutEventConfiguration only, which trailkey does not call.
    rule(
        Ops::Any,
        &["InsufficientIAMAccessPermissionException"],
        Treat::Hint(IAM_ACCESS),
    ),
    rule(Ops::Any, THROTTLING, Treat::SdkRetry(THROTTLED)),
    // The SDK's transient codes (`TRANSIENT_ERRORS` of `aws-runtime`).
    rule(
        Ops::Any,
        &["RequestTimeout", "RequestTimeoutException"],
        Treat::SdkRetry(TRANSIENT),
    ),
    // trailkey's codes for SDK errors without an answer from AWS: retried by
    // the SDK when the connection failed or timed out.
    rule(
        Ops::Any,
        &[code::DISPATCH_FAILURE, code::TIMEOUT],
        Treat::SdkRetry(UNREACHABLE),
    ),
    // trailkey's codes for an answer without an error code or without what
    // it needs (no credentials, no organization, no key metadata), a tag the
    // SDK cannot build, and a step without a key.
    rule(
        Ops::Any,
        &[
            code::UNKNOWN,
            code::NO_CREDENTIALS,
            code::NO_ORGANIZATION,
            code::NO_KEY_METADATA,
            code::NO_BUCKET_REGION,
            code::INVALID_TAG,
            code::NO_KEY,
        ],
        Treat::Generic,
    ),
];

// The hints: what to do about each error, in plain language.

const LANDING_ZONE_CONFLICT: &str = "another landing-zone operation began since trailkey checked: run trailkey again when it has ended (`aws controltower list-landing-zone-operations --filter statuses=IN_PROGRESS`)";
const LANDING_ZONE_NOT_FOUND: &str = "Control Tower does not know that landing zone or operation: run trailkey in the Control Tower home Region (region in the config) with management-account credentials";
const LANDING_ZONE_VALIDATION: &str = "Control Tower refused the update, and no operation started: trailkey sent the live manifest back with only centralizedLogging.configurations.kmsKeyArn changed, at the landing zone's own version (it never upgrades); Control Tower's message says what it refused. If it asks for a newer landing-zone version, upgrade the landing zone first (Control Tower console, Landing zone settings), then run trailkey again";
const LANDING_ZONE_MAYBE_STARTED: &str = "the update may have started an operation all the same: `aws controltower list-landing-zone-operations --filter statuses=IN_PROGRESS` shows it. trailkey refuses to write while one runs; run it again when the operation has ended, and it finds the key set or not";
const LANDING_ZONE_THROTTLED: &str = "Control Tower throttled the update, which started nothing (trailkey sends it once): run trailkey again in a minute";
const LANDING_ZONE_CHANGED: &str = "someone changed the landing zone while trailkey worked: run `trailkey plan` to see it as it is now, then apply again";
const LANDING_ZONE_FAILED: &str = "Control Tower could not apply the landing zone's new KMS key, and the landing zone is now FAILED: fix what its message names (the key policy must let cloudtrail.amazonaws.com and config.amazonaws.com use the key; `trailkey plan` shows the policy), retry the landing zone in the Control Tower console (Landing zone settings) or with `aws controltower reset-landing-zone`, then run trailkey again";
const LANDING_ZONE_TIMEOUT: &str = "the operation goes on in Control Tower: run trailkey again when it has ended (`aws controltower get-landing-zone-operation --operation-identifier` with the identifier above); it then finds the key set, or the operation's end. Until then a run that would write is refused. A longer --landing-zone-timeout lets the next apply wait for its own operation";

/// What to do when the configured trail does not exist.
pub const TRAIL_NOT_FOUND_HINT: &str = "no trail with that name in this Region and account: check trail.name and region (the trail's home Region), and run trailkey with the management account's credentials";

const INSUFFICIENT_ENCRYPTION_POLICY: &str = "the key policy does not let CloudTrail use the key (UpdateTrail checks the bucket policy too): run `trailkey plan` to see the key policy changes, and check that no foreign Deny statement blocks cloudtrail.amazonaws.com";
const KMS_KEY_NOT_FOUND: &str = "CloudTrail could not find the key: the key must be in the trail's home Region and be named by its full key ARN, and the trail's bucket must be in that Region too";
const KEY_DISABLED: &str =
    "the key is disabled: `trailkey apply` enables it, or enable it with `aws kms enable-key`";
const KEY_DISABLED_OR_STATE: &str = "the key is disabled, or its state does not allow this call (e.g. pending deletion): run `trailkey apply` again, which enables the key and cancels its deletion; `aws kms describe-key` shows its state";
const NOT_MANAGEMENT_ACCOUNT: &str = "organization trails can only be changed from the management account or by CloudTrail's delegated administrator: run trailkey with management-account credentials (or set roles.management), or from the Security Tooling account once the management account registered it (`aws cloudtrail register-organization-delegated-admin --member-account-id <security tooling>`)";
const ORGANIZATIONS_ENDPOINT: &str = "AWS Organizations does not answer this call at the endpoint used: unset AWS_ENDPOINT_URL_ORGANIZATIONS (or the AWS_ENDPOINT_URL that covers it) so that the SDK uses Organizations' own endpoint";
const NOT_ALL_FEATURES: &str = "organization trails need AWS Organizations with all features enabled: enable all features in the Organizations console";
const NOT_IN_ORGANIZATION: &str = "the caller's account is not in an organization: run trailkey with the management account's credentials";
const ASSUME_ROLE_DENIED: &str = "could not assume the role named above: check roles.security_tooling (the role name) and that its trust policy allows the management account (or roles.management) to assume it; for the Log Archive account's role, roles.log_archive";
const KMS_KEY_ACCESS_DENIED: &str = "KMS denied the call on the key: the key's policy must let trailkey's role in (a statement for the role, or for the account root, which delegates to IAM) and, through the root, the role's IAM policy must grant the call (policies/iam-security-tooling-role.json; run from Security Tooling as delegated administrator, policies/iam-security-tooling-delegated-admin.json; with [control_tower] landing_zone, policies/iam-management-control-tower.json); AWS's message says which denied it: \"resource-based policy\" is the key policy";
const ACCESS_DENIED: &str = "the caller lacks a permission for this call: policies/iam-management.json and policies/iam-security-tooling-role.json list what trailkey needs; run from Security Tooling as delegated administrator, policies/iam-security-tooling-delegated-admin.json; with [control_tower] landing_zone, policies/iam-management-control-tower.json (docs/control-tower.md explains them)";
const TRUSTED_ACCESS: &str = "CloudTrail's trusted access to AWS Organizations is not enabled: enable it from the management account, in the CloudTrail console or with `aws organizations enable-aws-service-access --service-principal cloudtrail.amazonaws.com`";
const DEPENDENCY_ACCESS: &str = "the caller lacks an AWS Organizations permission CloudTrail checks for organization trails (organizations:ListAWSServiceAccessForOrganization): see policies/iam-management.json";
const IAM_ACCESS: &str = "the caller lacks the IAM permissions to view or create CloudTrail's service-linked role (iam:GetRole, iam:CreateServiceLinkedRole): see policies/iam-management.json";
const NO_SERVICE_LINKED_ROLE: &str = "CloudTrail's service-linked role AWSServiceRoleForCloudTrail is missing in the management account: create it there with `aws iam create-service-linked-role --aws-service-name cloudtrail.amazonaws.com`, then run again";
const HOME_REGION: &str = "CloudTrail changes a trail only in its home Region (where it was created): set region to the trail's HomeRegion, which `aws cloudtrail describe-trails` shows";
const KMS_EXCEPTION: &str = "CloudTrail could not use the key: it must be an enabled symmetric encryption key in the trail's home Region whose policy lets cloudtrail.amazonaws.com use it; `trailkey plan` shows what is missing";
const INVALID_KMS_KEY_ID: &str = "CloudTrail rejected the key's ARN: trailkey names the key by its full ARN, which must be a key in the trail's home Region; check region and run `trailkey plan`";
const CONFLICT: &str = "another change to the trail is still under way: wait a few minutes and run again, or wait longer with `trailkey apply --propagation-timeout 600`";
const INVALID_TRAIL_NAME: &str = "CloudTrail rejected the trail name: trail.name is either the trail's ARN or 3 to 128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit";
const TRAIL_ARN_INVALID: &str = "CloudTrail rejected the trail ARN: in trail.name, an ARN looks like arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME";
const TRAIL_RESOURCE_NOT_FOUND: &str = "CloudTrail found no trail with that ARN: it may have been deleted since trailkey read it; run `trailkey plan` again";
const CLOUDTRAIL_UNSUPPORTED: &str = "CloudTrail does not support this call here: check that region is a Region where the account can use CloudTrail";
const CLOUDTRAIL_NOT_PERMITTED: &str = "CloudTrail does not permit this call for this account or trail: run trailkey with the management account's credentials (member accounts can read an organization trail but not change it), and check trail.name";
const NO_BUCKET: &str = "the trail's S3 bucket does not exist: CloudTrail cannot deliver logs; fix the trail's bucket first";
const BUCKET_POLICY: &str = "the bucket policy does not let CloudTrail write to the trail's bucket: fix the Log Archive bucket policy (trailkey does not change it)";
const SNS_TOPIC: &str = "CloudTrail rejected the trail's SNS topic (its policy, or an account that is suspended): fix the topic or the trail's SNS setting; trailkey does not change them";
const CLOUDWATCH_LOGS: &str = "CloudTrail rejected the trail's CloudWatch Logs settings (log group, role, or delivery in this Region), which trailkey does not change: fix them with `aws cloudtrail update-trail`, then run again";
const EVENT_DATA_STORE_GONE: &str =
    "the CloudTrail Lake event data store was deleted since trailkey listed it: run again";
const KMS_NOT_FOUND: &str = "KMS found no such key or alias: it may have been deleted since trailkey read it; run `trailkey plan` again";
const ALREADY_EXISTS: &str =
    "the alias already exists: another run may have just created it; run `trailkey plan` again";
const INVALID_ARN: &str = "KMS rejected an ARN, in the request or in the key policy: check the account IDs and role ARNs in the config, and run `trailkey policy` to see the policy";
const KMS_INVALID_STATE: &str = "the key's state does not allow this call (e.g. pending deletion): `aws kms describe-key` shows it; `trailkey plan` shows what trailkey would change";
const INVALID_ALIAS: &str =
    "KMS rejected the alias name: check ct_key_alias (`trailkey validate` checks it)";
const KMS_UNSUPPORTED: &str = "KMS does not support this on this key: trailkey needs a symmetric encryption key whose key material KMS generated (not imported, not in a custom key store)";
const TAG: &str = "KMS rejected a tag: check [key.tags] in the config (keys up to 128 characters, values up to 256, no aws: prefix)";
const KMS_QUOTA: &str = "a KMS quota was reached (keys per account and Region, or aliases or tags per key), or the key policy is over 32 KB: remove unused keys, aliases or policy statements, or ask for a quota increase (\"Quotas\" in the AWS KMS Developer Guide), then run again";
const PRINCIPAL_NOT_YET: &str = "KMS rejected the key policy: a principal in it may not exist yet (new accounts take a few minutes); run `trailkey policy` to inspect it and run again, or wait longer with `trailkey apply --policy-retry-timeout 600`";
const LOCKOUT: &str = "KMS's policy lockout safety check refused the key policy: the Security Tooling role could not change it afterwards. Its IAM permissions, an SCP or a permissions boundary do not allow kms:PutKeyPolicy on the key (check policies/iam-security-tooling-role.json; run from Security Tooling as delegated administrator, policies/iam-security-tooling-delegated-admin.json), or a Deny statement kept in the key policy denies it to the role; trailkey never sets BypassPolicyLockoutSafetyCheck";
const TRANSIENT: &str = "AWS had an internal error or a timeout, and the SDK's retries did not get past it: it is transient, run again";
const THROTTLED: &str =
    "AWS kept throttling the requests after the retries: wait a minute and run again";
const UNREACHABLE: &str =
    "could not reach AWS: check the network, proxy settings and AWS_ENDPOINT_URL";
const REGION_DISABLED: &str = "STS is not active in this Region for the account of the role: activate it in that account's IAM console (Account settings, Security Token Service)";
const CONCURRENT_MODIFICATION: &str =
    "the organization is being changed by another request: wait a minute and run again";
const EXPIRED: &str =
    "the AWS credentials have expired: refresh them (e.g. `aws sso login`) and run again";
const INVALID_CREDENTIALS: &str = "the AWS credentials are not valid: check AWS_PROFILE / AWS_ACCESS_KEY_ID and run `aws sts get-caller-identity`";
const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`";
const NO_BUCKET_POLICY: &str = "the bucket has no policy, which CloudTrail needs to write to it: fix the Log Archive bucket policy";
const NO_ENCRYPTION_CONFIGURATION: &str =
    "the bucket has no default encryption configuration: S3 encrypts new objects with SSE-S3";
const NO_REPLICATION_CONFIGURATION: &str =
    "the bucket has no replication configuration: no replica needs the key";
