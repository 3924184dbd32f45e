//! The AWS boundary: small traits in domain terms, one real implementation
//! ([`sdk`], the only module that imports `aws-sdk-*` types) and a recording
//! fake (`fake`, compiled only for tests, never into the binary) for tests
//! of what moto cannot emulate.
//!
//! Two roles talk to AWS:
//! - [`Management`]: the caller's credentials (or `roles.management`):
//!   STS identity, Organizations, CloudTrail, the account's Regions.
//! - [`KeyStore`]: credentials of the role assumed in the Security Tooling
//!   account: every KMS call.
//! - [`LogArchive`]: credentials of `roles.log_archive`, assumed in the Log
//!   Archive account when set: read-only S3 calls on the trail's bucket.
//! - [`LandingZones`]: the management account's Control Tower calls, with
//!   `[control_tower] landing_zone = true`, where [`KeyStore`] is the
//!   management account's KMS too.
//!
//! Methods are `async fn` used from one task (observations run concurrently
//! with `tokio::join!`, never spawned), so no `Send` bound is needed.
#![allow(async_fn_in_trait)]

#[cfg(test)]
pub mod fake;
pub mod sdk;

use std::collections::BTreeMap;

use serde::Serialize;

/// CloudTrail's service principal, whose delegated administrator may run
/// trailkey from Security Tooling.
pub const CLOUDTRAIL_PRINCIPAL: &str = "cloudtrail.amazonaws.com";

/// Every AWS write trailkey makes, by operation name: the steps of a plan
/// (`plan::Step::operation`), of which `UpdateTrail` stands for the three
/// ways a plan changes the trail. What is not here trailkey only reads.
pub const WRITES: [&str; 13] = [
    "CreateKey",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "PutKeyPolicy",
    "EnableKeyRotation",
    "EnableKey",
    "CancelKeyDeletion",
    "ScheduleKeyDeletion",
    "TagResource",
    "UpdateTrail",
    "StartLogging",
    "UpdateLandingZone",
];

/// The AWS error codes trailkey acts on, and the codes it gives failures
/// without one (other codes only choose a hint, see `error::aws_hint`).
pub mod code {
    /// KMS: no such key or alias.
    pub const NOT_FOUND: &str = "NotFoundException";
    /// KMS `CreateAlias`: the alias exists.
    pub const ALREADY_EXISTS: &str = "AlreadyExistsException";
    /// KMS: the key's state does not allow the call (e.g. rotation of a key
    /// pending deletion).
    pub const KMS_INVALID_STATE: &str = "KMSInvalidStateException";
    /// KMS: the key is disabled.
    pub const DISABLED: &str = "DisabledException";
    /// KMS: a principal in the policy is unknown to IAM (yet), or the
    /// policy would lock the caller out (see `error::is_lockout`).
    pub const MALFORMED_POLICY: &str = "MalformedPolicyDocumentException";
    /// CloudTrail `UpdateTrail`: the key is disabled (or CloudTrail does not
    /// see it enabled yet).
    pub const KMS_KEY_DISABLED: &str = "KmsKeyDisabledException";
    /// CloudTrail `UpdateTrail`: "an issue with the specified KMS key"
    /// (cloudtrail model); the model says `KmsKeyDisabledException` is no
    /// longer in use, so a key CloudTrail still sees disabled may answer
    /// this instead.
    pub const KMS_EXCEPTION: &str = "KmsException";
    /// CloudTrail `UpdateTrail`: another change to the trail is under way;
    /// "wait a few minutes, then try again" (cloudtrail model). Control
    /// Tower `UpdateLandingZone`: another landing-zone operation is.
    pub const CONFLICT: &str = "ConflictException";
    /// CloudTrail `UpdateTrail`: it cannot find the key (or not yet).
    pub const KMS_KEY_NOT_FOUND: &str = "KmsKeyNotFoundException";
    /// CloudTrail `UpdateTrail`: the key policy does not let CloudTrail use
    /// the key for this trail (or CloudTrail does not see the new policy yet).
    pub const INSUFFICIENT_ENCRYPTION_POLICY: &str = "InsufficientEncryptionPolicyException";
    /// CloudTrail: no trail of that name or ARN.
    pub const TRAIL_NOT_FOUND: &str = "TrailNotFoundException";
    /// CloudTrail `GetEventDataStore`: no such event data store (deleted
    /// since it was listed).
    pub const EVENT_DATA_STORE_NOT_FOUND: &str = "EventDataStoreNotFoundException";
    /// Control Tower: the request was refused as invalid; for
    /// `UpdateLandingZone`, no operation started.
    pub const VALIDATION: &str = "ValidationException";
    /// Control Tower: no such landing zone or operation.
    pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
    /// S3: the bucket does not exist.
    pub const NO_SUCH_BUCKET: &str = "NoSuchBucket";
    /// S3 `GetBucketPolicy`: the bucket has no policy.
    pub const NO_SUCH_BUCKET_POLICY: &str = "NoSuchBucketPolicy";
    /// S3 `GetBucketEncryption`: no default encryption configured (buckets
    /// made before 2023).
    pub const NO_ENCRYPTION_CONFIGURATION: &str = "ServerSideEncryptionConfigurationNotFoundError";
    /// S3 `GetBucketReplication`: the bucket replicates nothing.
    pub const NO_REPLICATION_CONFIGURATION: &str = "ReplicationConfigurationNotFoundError";
    /// IAM denied the call, as STS and S3 write it (see `denied_by`).
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// IAM denied the call, as the JSON protocols (KMS, CloudTrail,
    /// Organizations, ...) write it.
    pub const ACCESS_DENIED_EXCEPTION: &str = "AccessDeniedException";
    /// KMS: a quota, or a key policy over 32 KB; not throttling, though the
    /// SDK's list says so (see `QuotaIsNotThrottling` in `sdk`).
    pub const LIMIT_EXCEEDED: &str = "LimitExceededException";

    // trailkey's own codes, for a failure AWS gave no error code for.

    /// An error answer without a code the SDK could read.
    pub const UNKNOWN: &str = "Unknown";
    /// An answer the SDK could not read at all.
    pub const RESPONSE_ERROR: &str = "ResponseError";
    /// The call timed out.
    pub const TIMEOUT: &str = "Timeout";
    /// The request could not be sent (network, proxy, endpoint).
    pub const DISPATCH_FAILURE: &str = "DispatchFailure";
    /// No credentials provider gave credentials.
    pub const CREDENTIALS_NOT_LOADED: &str = "CredentialsNotLoaded";
    /// `AssumeRole` answered without credentials.
    pub const NO_CREDENTIALS: &str = "NoCredentials";
    /// `DescribeOrganization` answered without an organization.
    pub const NO_ORGANIZATION: &str = "NoOrganization";
    /// KMS answered without key metadata.
    pub const NO_KEY_METADATA: &str = "NoKeyMetadata";
    /// `HeadBucket` answered without the bucket's Region.
    pub const NO_BUCKET_REGION: &str = "NoBucketRegion";
    /// A configured tag the SDK cannot build.
    pub const INVALID_TAG: &str = "InvalidTag";
    /// A step that needs a key, planned without one.
    pub const NO_KEY: &str = "NoKey";
    /// A landing-zone operation ended `FAILED`; the message is Control
    /// Tower's `statusMessage`.
    pub const LANDING_ZONE_FAILED: &str = "LandingZoneOperationFailed";
    /// A landing-zone operation was still in progress when
    /// `--landing-zone-timeout` ran out.
    pub const LANDING_ZONE_TIMEOUT: &str = "LandingZoneOperationTimeout";
    /// The landing zone changed between the plan and its update, which was
    /// not sent.
    pub const LANDING_ZONE_CHANGED: &str = "LandingZoneChanged";
    /// An apply that leaves the landing zone's change to another run (the
    /// Lambda function) was handed that change.
    pub const LANDING_ZONE_LEFT: &str = "LandingZoneLeftToApply";
}

/// An enum of the values an AWS string field takes that trailkey tells
/// apart, with `Other` for the rest (AWS adds values over time). It reads
/// from and shows as the AWS string, in JSON too.
macro_rules! aws_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value trailkey does not tell apart, as AWS wrote it.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

aws_enum! {
    /// A KMS key's state (`KeyState`).
    KeyState {
        Enabled = "Enabled",
        Disabled = "Disabled",
        PendingDeletion = "PendingDeletion",
    }
}

aws_enum! {
    /// A KMS key's `KeySpec`.
    KeySpec {
        SymmetricDefault = "SYMMETRIC_DEFAULT",
    }
}

aws_enum! {
    /// A KMS key's `KeyUsage`.
    KeyUsage {
        EncryptDecrypt = "ENCRYPT_DECRYPT",
    }
}

aws_enum! {
    /// Where a KMS key's material comes from (`Origin`).
    Origin {
        AwsKms = "AWS_KMS",
    }
}

aws_enum! {
    /// Who manages a KMS key (`KeyManager`).
    KeyManager {
        Customer = "CUSTOMER",
        Aws = "AWS",
    }
}

aws_enum! {
    /// An organization's feature set.
    FeatureSet {
        /// All features: what organization trails need.
        All = "ALL",
        ConsolidatedBilling = "CONSOLIDATED_BILLING",
    }
}

aws_enum! {
    /// An organization account's lifecycle state (`Account.State`; the
    /// older `Status` field was retired on 2026-09-09, see the
    /// organizations service model).
    AccountState {
        PendingActivation = "PENDING_ACTIVATION",
        Active = "ACTIVE",
        Suspended = "SUSPENDED",
        PendingClosure = "PENDING_CLOSURE",
        Closed = "CLOSED",
    }
}

aws_enum! {
    /// A landing zone's deployment status (`LandingZoneStatus`).
    LandingZoneStatus {
        Active = "ACTIVE",
        Processing = "PROCESSING",
        Failed = "FAILED",
    }
}

aws_enum! {
    /// Whether a landing zone drifted from its manifest (`LandingZoneDriftStatus`).
    DriftStatus {
        Drifted = "DRIFTED",
        InSync = "IN_SYNC",
    }
}

aws_enum! {
    /// A landing-zone operation's status (`LandingZoneOperationStatus`).
    OperationStatus {
        Succeeded = "SUCCEEDED",
        Failed = "FAILED",
        InProgress = "IN_PROGRESS",
    }
}

/// Which policy an `AccessDenied` answer blames, as AWS's message words it
/// ("... because no resource-based policy allows the kms:X action", "...
/// with an explicit deny in a service control policy", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedBy {
    /// A resource-based policy: for KMS, the key policy.
    Resource,
    /// The caller's own permissions or path: an identity-based policy, a
    /// permissions boundary, a session policy, a VPC endpoint policy, or an
    /// organization's SCP or RCP.
    Caller,
    /// The message does not say.
    Unknown,
}

/// For an `AccessDenied` or `AccessDeniedException`, which policy denied it;
/// `None` for any other error.
pub fn denied_by(e: &AwsError) -> Option<DeniedBy> {
    if !matches!(
        e.code.as_str(),
        code::ACCESS_DENIED | code::ACCESS_DENIED_EXCEPTION
    ) {
        return None;
    }
    let m = e.message.to_ascii_lowercase();
    let caller = [
        "identity-based policy",
        "service control policy",
        "resource control policy",
        "permissions boundary",
        "session policy",
        "vpc endpoint policy",
    ];
    Some(if caller.iter().any(|p| m.contains(p)) {
        DeniedBy::Caller
    } else if m.contains("resource-based policy") {
        DeniedBy::Resource
    } else {
        DeniedBy::Unknown
    })
}

/// A failed AWS call, reduced to what trailkey needs: which operation, the
/// AWS error code and message. Never carries credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {code}: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(
        operation: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            code: code.into(),
            message: message.into(),
        }
    }
}

pub type AwsResult<T> = Result<T, AwsError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

impl CallerIdentity {
    /// The partition from the caller ARN (`arn:<partition>:...`).
    pub fn partition(&self) -> Option<&str> {
        self.arn.strip_prefix("arn:")?.split(':').next()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: String,
    pub management_account: String,
    pub feature_set: FeatureSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trail {
    pub name: String,
    pub arn: String,
    pub home_region: String,
    /// As CloudTrail returns it: `None` when the trail uses SSE-S3.
    pub kms_key_id: Option<String>,
    pub is_organization_trail: bool,
    pub is_multi_region_trail: bool,
    pub s3_bucket: String,
    /// `S3KeyPrefix`: the log files are under `<prefix>/AWSLogs/`.
    pub s3_key_prefix: Option<String>,
    /// `LogFileValidationEnabled`: CloudTrail delivers signed digest files.
    pub log_file_validation: bool,
    /// `HasCustomEventSelectors`: the trail's event selectors are not the
    /// default (every read and write management event, no data event), so
    /// `GetEventSelectors` tells which events it records.
    pub has_custom_event_selectors: bool,
}

/// `GetEventSelectors`: which events a trail records. A trail has basic
/// selectors or advanced ones, never both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventSelectors {
    pub basic: Vec<EventSelector>,
    pub advanced: Vec<AdvancedEventSelector>,
}

/// A basic event selector (`EventSelector`), its management-event part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSelector {
    /// `ReadWriteType`: `ReadOnly`, `WriteOnly` or `All` (the default).
    pub read_write_type: String,
    /// `IncludeManagementEvents` (default true).
    pub include_management_events: bool,
    /// `ExcludeManagementEventSources`, e.g. `kms.amazonaws.com`.
    pub exclude_management_event_sources: Vec<String>,
}

/// An advanced event selector: it selects the events that match all of its
/// field selectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdvancedEventSelector {
    pub name: Option<String>,
    pub field_selectors: Vec<FieldSelector>,
}

/// `AdvancedFieldSelector`: a condition on one field of an event record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FieldSelector {
    pub field: String,
    pub equals: Vec<String>,
    pub starts_with: Vec<String>,
    pub ends_with: Vec<String>,
    pub not_equals: Vec<String>,
    pub not_starts_with: Vec<String>,
    pub not_ends_with: Vec<String>,
}

/// What one `UpdateTrail` call changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailUpdate<'a> {
    /// `KmsKeyId`: a key ARN, or `""` to turn SSE-KMS off (SSE-S3);
    /// `None` leaves the trail's key as it is.
    pub kms_key_id: Option<&'a str>,
    /// `EnableLogFileValidation = true`; `false` leaves the setting as it is.
    pub enable_log_file_validation: bool,
}

/// A grant on a key (`ListGrants`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub id: String,
    /// `GranteePrincipal`: who may use the key through the grant.
    pub grantee: String,
    /// `Operations`, e.g. `Decrypt`, `GenerateDataKey`.
    pub operations: Vec<String>,
}

/// A CloudTrail Lake event data store (`GetEventDataStore`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventDataStore {
    pub arn: String,
    pub name: String,
    /// `Status`: `CREATED`, `ENABLED`, `PENDING_DELETION`, ...
    pub status: String,
    /// The key that encrypts its events, as CloudTrail returns it; `None`
    /// when CloudTrail encrypts them with a key of its own.
    pub kms_key_id: Option<String>,
}

/// The rotation period KMS sets when `EnableKeyRotation` names none
/// (`RotationPeriodInDays`: "If no value is specified, the default value is
/// 365 days", KMS API model).
pub const DEFAULT_ROTATION_PERIOD_DAYS: i32 = 365;

/// What `GetKeyRotationStatus` tells about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RotationStatus {
    /// `KeyRotationEnabled`.
    pub enabled: bool,
    /// `RotationPeriodInDays`: KMS gives it for a key whose rotation is on.
    pub period_days: Option<i32>,
}

/// What `DescribeKey` tells about a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub key_id: String,
    pub arn: String,
    pub state: KeyState,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    pub origin: Origin,
    pub multi_region: bool,
    pub description: String,
    pub key_manager: KeyManager,
    /// Creation time, seconds since the Unix epoch.
    pub created: Option<i64>,
}

/// `GetTrailStatus`: is the trail logging, and does delivery work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrailStatus {
    pub is_logging: bool,
    pub latest_delivery_error: Option<String>,
    pub latest_digest_delivery_error: Option<String>,
    /// When CloudTrail last delivered a log file to the bucket
    /// (`LatestDeliveryTime`), seconds since the Unix epoch.
    pub latest_delivery_time: Option<i64>,
}

/// An account of the organization (`ListAccounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub email: String,
    /// `State`, or `Status` when an answer has no `State`.
    pub state: AccountState,
}

/// A key to create: trailkey always creates the same kind of key, so only
/// what varies is here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewKey {
    pub description: String,
    pub policy: String,
    pub tags: BTreeMap<String, String>,
}

/// A bucket's default encryption (`GetBucketEncryption`, its first rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketEncryption {
    /// `SSEAlgorithm`: `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    /// `KMSMasterKeyID`, when set.
    pub kms_key_id: Option<String>,
    /// `BucketKeyEnabled`: S3 uses a bucket-level key derived from the KMS key.
    pub bucket_key_enabled: bool,
}

/// A bucket's replication configuration (`GetBucketReplication`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replication {
    /// `Role`: the IAM role S3 assumes to replicate objects, for every rule.
    pub role: String,
    pub rules: Vec<ReplicationRule>,
}

/// A replication rule of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationRule {
    pub id: Option<String>,
    /// `Status = Enabled`.
    pub enabled: bool,
    /// `SourceSelectionCriteria.SseKmsEncryptedObjects.Status = Enabled`:
    /// objects encrypted with a KMS key are replicated too.
    pub replicates_kms_encrypted: bool,
    /// `Destination.EncryptionConfiguration.ReplicaKmsKeyID`: the key S3
    /// encrypts the replicas with (a key ARN or alias ARN).
    pub replica_kms_key_id: Option<String>,
}

/// The trail bucket's configuration as read from the Log Archive account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogBucket {
    /// The bucket policy document; `None`: the bucket has none.
    pub policy: Option<String>,
    /// `None`: no default encryption configured.
    pub encryption: Option<BucketEncryption>,
    /// `None`: the bucket has no replication configuration.
    pub replication: Option<Replication>,
}

/// A Control Tower landing zone (`GetLandingZone`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LandingZone {
    pub arn: String,
    /// The deployed version, e.g. `3.3`.
    pub version: String,
    /// The newest version Control Tower offers; trailkey never upgrades.
    pub latest_available_version: Option<String>,
    pub status: LandingZoneStatus,
    /// `None` when Control Tower does not say.
    pub drift_status: Option<DriftStatus>,
    /// The manifest, as JSON: opaque to trailkey but for the key's field.
    pub manifest: serde_json::Value,
    /// `remediationTypes`, sorted (a set to Control Tower: it gives them in
    /// no fixed order), and sent back so.
    pub remediation_types: Vec<String>,
}

/// A landing-zone operation (`GetLandingZoneOperation`,
/// `ListLandingZoneOperations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LandingZoneOperation {
    pub id: String,
    /// `CREATE`, `UPDATE`, `DELETE` or `RESET`.
    pub operation_type: String,
    pub status: OperationStatus,
    /// Control Tower's words on a failure.
    pub status_message: Option<String>,
}

/// What one `UpdateLandingZone` call sends: the live landing zone's
/// identifier, version and remediation types, and the manifest to set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LandingZoneUpdate<'a> {
    pub arn: &'a str,
    pub version: &'a str,
    pub remediation_types: &'a [String],
    pub manifest: &'a serde_json::Value,
}

/// Whether `id` has the shape of an operation identifier (the controltower
/// model's `OperationIdentifier`: 36 characters, `8-4-4-4-12` lower-case
/// hexadecimal digits).
pub fn is_operation_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    id.len() == 36
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// STS, Organizations, CloudTrail and the account's Regions (Account
/// Management), with management-account credentials.
pub trait Management {
    async fn caller_identity(&self) -> AwsResult<CallerIdentity>;
    async fn describe_organization(&self) -> AwsResult<Organization>;
    /// `GetTrail` by name or ARN in the client's Region.
    async fn get_trail(&self, name: &str) -> AwsResult<Trail>;
    /// `GetEventSelectors` of a trail, by name or ARN.
    async fn event_selectors(&self, trail: &str) -> AwsResult<EventSelectors>;
    /// `StartLogging` of a trail, by name or ARN.
    async fn start_logging(&self, trail: &str) -> AwsResult<()>;
    /// `UpdateTrail`: one call for every setting in `update`.
    async fn update_trail(&self, trail: &str, update: TrailUpdate<'_>) -> AwsResult<Trail>;
    /// `UpdateTrail` setting `KmsKeyId` only; an empty `key_arn` turns
    /// SSE-KMS off (SSE-S3).
    async fn set_trail_key(&self, trail: &str, key_arn: &str) -> AwsResult<Trail> {
        let update = TrailUpdate {
            kms_key_id: Some(key_arn),
            enable_log_file_validation: false,
        };
        self.update_trail(trail, update).await
    }
    /// `GetTrailStatus`.
    async fn trail_status(&self, trail: &str) -> AwsResult<TrailStatus>;
    /// The trail's tags (`ListTags`), by trail ARN.
    async fn trail_tags(&self, trail_arn: &str) -> AwsResult<BTreeMap<String, String>>;
    /// The Region of an S3 bucket (`HeadBucket`'s `x-amz-bucket-region`, which S3 sends whatever the caller's permissions on the bucket).
    async fn bucket_region(&self, bucket: &str) -> AwsResult<String>;
    /// Every account of the organization (`ListAccounts`, all pages),
    /// sorted by ID. Lists whose order AWS does not fix come back sorted
    /// from every method here: a saved plan compares what was read, in
    /// order, with what is read when it is applied.
    async fn list_accounts(&self) -> AwsResult<Vec<Account>>;
    /// The account IDs of `service_principal`'s delegated administrators
    /// (`ListDelegatedAdministrators`, all pages): callable by the
    /// management account and by a delegated administrator of any service.
    async fn delegated_administrators(&self, service_principal: &str) -> AwsResult<Vec<String>>;
    /// Every trail visible in the client's Region (`DescribeTrails`), the
    /// shadow copies of multi-Region trails homed in other Regions included,
    /// sorted by ARN.
    async fn describe_trails(&self) -> AwsResult<Vec<Trail>>;
    /// The Regions the account may use (`account:ListRegions`, all pages):
    /// those enabled by default and the opt-in Regions enabled, never a
    /// disabled one (CloudTrail cannot be called there).
    async fn enabled_regions(&self) -> AwsResult<Vec<String>>;
    /// The trails homed in `region` (`DescribeTrails` there, without shadow
    /// copies): each trail once, as its home Region shows it, sorted by ARN.
    async fn describe_trails_in(&self, region: &str) -> AwsResult<Vec<Trail>>;
    /// The ARNs of the CloudTrail Lake event data stores in the client's
    /// Region (`ListEventDataStores`, all pages; the list does not tell
    /// their keys).
    async fn list_event_data_stores(&self) -> AwsResult<Vec<String>>;
    /// One event data store, by ARN, with its key (`GetEventDataStore`).
    async fn get_event_data_store(&self, arn: &str) -> AwsResult<EventDataStore>;
}

/// KMS in the Security Tooling account.
pub trait KeyStore {
    /// When this client's credentials expire, when trailkey must renew them
    /// itself: those of the role it assumed (`Connect::security_tooling`).
    /// `None` for the caller's own credentials, which the SDK renews.
    fn expiry(&self) -> Option<std::time::SystemTime> {
        None
    }
    /// `DescribeKey`; `Ok(None)` when the key or alias does not exist.
    async fn describe_key(&self, key: &str) -> AwsResult<Option<KeyInfo>>;
    async fn get_key_policy(&self, key_id: &str) -> AwsResult<String>;
    async fn rotation_status(&self, key_id: &str) -> AwsResult<RotationStatus>;
    async fn list_tags(&self, key_id: &str) -> AwsResult<BTreeMap<String, String>>;
    /// IDs of every key in the account and Region (`ListKeys`, all pages),
    /// sorted.
    async fn list_keys(&self) -> AwsResult<Vec<String>>;
    /// Alias names (`alias/...`) that name the key (`ListAliases --key-id`),
    /// sorted.
    async fn list_aliases(&self, key_id: &str) -> AwsResult<Vec<String>>;
    /// The key's grants (`ListGrants`, all pages): how AWS services (EBS,
    /// RDS, Secrets Manager, ...) and others use a key.
    async fn list_grants(&self, key_id: &str) -> AwsResult<Vec<Grant>>;

    async fn create_key(&self, key: &NewKey) -> AwsResult<KeyInfo>;
    async fn create_alias(&self, alias: &str, key_id: &str) -> AwsResult<()>;
    async fn update_alias(&self, alias: &str, key_id: &str) -> AwsResult<()>;
    async fn delete_alias(&self, alias: &str) -> AwsResult<()>;
    async fn put_key_policy(&self, key_id: &str, policy: &str) -> AwsResult<()>;
    /// `EnableKeyRotation`, with `RotationPeriodInDays` when `period_days`
    /// is given (KMS's default otherwise: 365 days). On a key whose
    /// rotation is on, it changes the period.
    async fn enable_rotation(&self, key_id: &str, period_days: Option<i32>) -> AwsResult<()>;
    async fn enable_key(&self, key_id: &str) -> AwsResult<()>;
    async fn cancel_key_deletion(&self, key_id: &str) -> AwsResult<()>;
    /// Only for a key this run created and nothing uses (see `apply`).
    async fn schedule_key_deletion(&self, key_id: &str, days: i32) -> AwsResult<()>;
    async fn tag_key(&self, key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
}

/// Read-only S3 calls on the trail's bucket, with the credentials of the
/// role assumed in the Log Archive account.
pub trait LogArchive {
    /// `GetBucketPolicy`; `Ok(None)` when the bucket has no policy.
    async fn bucket_policy(&self, bucket: &str) -> AwsResult<Option<String>>;
    /// `GetBucketEncryption`; `Ok(None)` when none is configured.
    async fn bucket_encryption(&self, bucket: &str) -> AwsResult<Option<BucketEncryption>>;
    /// `GetBucketReplication`; `Ok(None)` when the bucket replicates nothing.
    async fn bucket_replication(&self, bucket: &str) -> AwsResult<Option<Replication>>;
}

/// Control Tower's landing zone, with management-account credentials.
pub trait LandingZones {
    /// The landing zones' ARNs (`ListLandingZones`: an organization has at
    /// most one).
    async fn list_landing_zones(&self) -> AwsResult<Vec<String>>;
    async fn get_landing_zone(&self, arn: &str) -> AwsResult<LandingZone>;
    /// The operations `IN_PROGRESS` (`ListLandingZoneOperations`, all
    /// pages), sorted by ID.
    async fn operations_in_progress(&self) -> AwsResult<Vec<LandingZoneOperation>>;
    /// `UpdateLandingZone`; returns the operation's identifier.
    async fn update_landing_zone(&self, update: LandingZoneUpdate<'_>) -> AwsResult<String>;
    async fn get_operation(&self, id: &str) -> AwsResult<LandingZoneOperation>;
}

/// Makes the clients. `security_tooling` and `log_archive` assume the given
/// role with the caller's credentials and fail early (with the STS error)
/// if they cannot.
pub trait Connect {
    type Management: Management;
    type KeyStore: KeyStore;
    type LogArchive: LogArchive;
    type LandingZones: LandingZones;
    fn management(&self) -> &Self::Management;
    fn landing_zones(&self) -> &Self::LandingZones;
    async fn security_tooling(&self, role_arn: &str) -> AwsResult<Self::KeyStore>;
    /// The caller's own KMS client, no role assumed: the management
    /// account's for a key of Control Tower's trail, Security Tooling's for
    /// a run as CloudTrail's delegated administrator.
    async fn own_keys(&self) -> AwsResult<Self::KeyStore>;
    /// The account of the caller's own credentials, when it is known
    /// without a call of trailkey's: the credentials name it (SSO, a role
    /// assumed by a profile, web identity, or `AWS_ACCOUNT_ID` /
    /// `aws_account_id` with keys), or a `GetCallerIdentity` of this
    /// connection answered it. With `roles.management`, the account of the
    /// credentials that assume that role, and never from `GetCallerIdentity`
    /// (which answers the role's). `None` otherwise.
    async fn caller_account(&self) -> Option<String>;
    /// The S3 client of `role_arn` in the Log Archive account, for a bucket
    /// in `bucket_region`.
    async fn log_archive(&self, role_arn: &str, bucket_region: &str)
    -> AwsResult<Self::LogArchive>;
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn an_operation_identifier_has_the_models_shape() {
        assert!(is_operation_id("0a1b2c3d-0000-4000-8000-00000000000f"));
        for odd in [
            "",
            "0A1B2C3D-0000-4000-8000-00000000000F",
            "0a1b2c3d-0000-4000-8000-00000000000",
            "0a1b2c3d00004000800000000000000f0000",
            "0a1b2c3d-0000-4000-8000-00000000000g",
            "0a1b2c3d-0000-4000-8000-0000000\u{1b}[2J",
        ] {
            assert!(!is_operation_id(odd), "{odd:?}");
        }
    }

    #[test]
    fn access_denied_messages_tell_which_policy_denied() {
        let denied =
            |code: &str, message: &str| denied_by(&AwsError::new("DescribeKey", code, message));
        let user = "User: arn:aws:sts::111111111111:assumed-role/R/s is not authorized to perform: kms:DescribeKey on resource: k";
        for (tail, by) in [
            (
                "because no resource-based policy allows the kms:DescribeKey action",
                DeniedBy::Resource,
            ),
            (
                "with an explicit deny in a resource-based policy",
                DeniedBy::Resource,
            ),
            (
                "because no identity-based policy allows the kms:DescribeKey action",
                DeniedBy::Caller,
            ),
            (
                "with an explicit deny in a service control policy",
                DeniedBy::Caller,
            ),
            (
                "with an explicit deny in a resource control policy",
                DeniedBy::Caller,
            ),
            (
                "because no permissions boundary allows the kms:DescribeKey action",
                DeniedBy::Caller,
            ),
            (
                "because no session policy allows the kms:DescribeKey action",
                DeniedBy::Caller,
            ),
            (
                "because no VPC endpoint policy allows the kms:DescribeKey action",
                DeniedBy::Caller,
            ),
            (
                "with an explicit deny in a VPC endpoint policy",
                DeniedBy::Caller,
            ),
        ] {
            assert_eq!(
                denied("AccessDeniedException", &format!("{user} {tail}")),
                Some(by),
                "{tail}"
            );
        }
        assert_eq!(denied("AccessDeniedException", ""), Some(DeniedBy::Unknown));
        assert_eq!(
            denied("AccessDenied", "Access Denied"),
            Some(DeniedBy::Unknown)
        );
        assert_eq!(
            denied(
                "NotFoundException",
                "because no resource-based policy allows"
            ),
            None
        );
    }
}
