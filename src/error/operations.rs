//! The AWS operations trailkey calls, and the groups of them the error
//! table's rules name.

/// The AWS operations trailkey calls, by botocore service name, as
/// `AwsError.operation` names them.
pub const OPERATIONS: &[(&str, &[&str])] = &[
    ("sts", STS),
    ("organizations", ORGANIZATIONS),
    ("cloudtrail", CLOUDTRAIL),
    ("s3", S3),
    ("kms", KMS),
    ("account", ACCOUNT),
    ("controltower", CONTROLTOWER),
];

pub(super) const STS: &[&str] = &["AssumeRole", "GetCallerIdentity"];
pub(super) const ORGANIZATIONS: &[&str] = &[
    "DescribeOrganization",
    "ListAccounts",
    "ListDelegatedAdministrators",
];
pub(super) const CLOUDTRAIL: &[&str] = &[
    "DescribeTrails",
    "GetEventDataStore",
    "GetEventSelectors",
    "GetTrail",
    "GetTrailStatus",
    "ListEventDataStores",
    "ListTags",
    "StartLogging",
    "UpdateTrail",
];
/// The operations the SDK does not retry (`aws/sdk/controltower.rs`): a
/// retry after an answer lost on the way could repeat the write. Their
/// server faults get a hint, not the SDK's retries.
pub const SENT_ONCE: &[&str] = &["UpdateLandingZone"];

/// The landing zone, with `[control_tower] landing_zone`.
pub(super) const CONTROLTOWER: &[&str] = &[
    "GetLandingZone",
    "GetLandingZoneOperation",
    "ListLandingZoneOperations",
    "ListLandingZones",
    "UpdateLandingZone",
];
/// The Regions `DescribeTrails` is called in by `destroy --delete-key`.
pub(super) const ACCOUNT: &[&str] = &["ListRegions"];
/// `HeadBucket` reads the bucket's Region; the other three read the Log
/// Archive bucket.
pub(super) const S3: &[&str] = &[
    "HeadBucket",
    "GetBucketPolicy",
    "GetBucketEncryption",
    "GetBucketReplication",
];
pub(super) const KMS: &[&str] = &[
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateKey",
    "DeleteAlias",
    "DescribeKey",
    "EnableKey",
    "EnableKeyRotation",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "ListAliases",
    "ListGrants",
    "ListKeys",
    "ListResourceTags",
    "PutKeyPolicy",
    "ScheduleKeyDeletion",
    "TagResource",
    "UpdateAlias",
];

/// The KMS calls IAM alone authorizes (kms model, "Required permissions");
/// the key policy authorizes the others, the calls on a key, first.
pub(super) const KMS_IAM_ONLY: &[&str] = &["CreateKey", "ListAliases", "ListKeys"];

/// KMS calls that name a key by its ID (or, for aliases, their target key),
/// other than `DescribeKey`, which reads `NotFoundException` as "no such
/// key".
pub(super) const KMS_NAMING_A_KEY: &[&str] = &[
    "CancelKeyDeletion",
    "CreateAlias",
    "EnableKey",
    "EnableKeyRotation",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "ListResourceTags",
    "PutKeyPolicy",
    "TagResource",
    "UpdateAlias",
];

/// The KMS writes to a key that can follow this run's own `EnableKey` or
/// `CancelKeyDeletion`.
pub(super) const KMS_KEY_WRITES: &[&str] = &[
    "CreateAlias",
    "EnableKey",
    "EnableKeyRotation",
    "PutKeyPolicy",
    "TagResource",
    "UpdateAlias",
];
