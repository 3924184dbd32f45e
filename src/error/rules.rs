//! The error table: for every operation trailkey calls and every error code
//! it can get, how trailkey handles it and the hint it shows.

use crate::aws::code;

use super::handling::{Message, Ops, Rule, Treat, rule};
use super::hints::*;
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
        Ops::Of(&["UpdateTrail"]),
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
    // trailkey sends no input but the SDK's pagination token.
    rule(
        Ops::Of(ORGANIZATIONS),
        &["InvalidInputException"],
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
