//! The AWS boundary: small traits in domain terms, one real implementation
//! ([`sdk`], the only module that imports `aws-sdk-*` types) and a recording
//! fake ([`fake`]) for tests of what moto cannot emulate.
//!
//! Two roles talk to AWS:
//! - [`Management`]: the caller's credentials (or `roles.management`):
//!   STS identity, Organizations, CloudTrail.
//! - [`KeyStore`]: credentials of the role assumed in the Security Tooling
//!   account: every KMS call.
//!
//! Methods are `async fn` used from one task (observations run concurrently
//! with `tokio::join!`, never spawned), so no `Send` bound is needed.
#![allow(async_fn_in_trait)]

pub mod fake;
pub mod sdk;

use std::collections::BTreeMap;

use serde::Serialize;

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
    /// `ALL` or `CONSOLIDATED_BILLING`.
    pub feature_set: String,
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
}

/// What `DescribeKey` tells about a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub key_id: String,
    pub arn: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, `PendingImport`, `Unavailable`, ...
    pub state: String,
    pub key_spec: String,
    pub key_usage: String,
    pub origin: String,
    pub multi_region: bool,
    pub description: String,
    pub key_manager: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: Option<i64>,
}

/// `GetTrailStatus`: is the trail logging, and does delivery work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrailStatus {
    pub is_logging: bool,
    pub latest_delivery_error: Option<String>,
    pub latest_digest_delivery_error: Option<String>,
}

/// An account of the organization (`ListAccounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub email: String,
    /// `ACTIVE`, `SUSPENDED`, ...
    pub status: String,
}

/// A key to create: trailkey always creates the same kind of key, so only
/// what varies is here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewKey {
    pub description: String,
    pub policy: String,
    pub tags: BTreeMap<String, String>,
}

/// STS, Organizations and CloudTrail, with management-account credentials.
pub trait Management {
    async fn caller_identity(&self) -> AwsResult<CallerIdentity>;
    async fn describe_organization(&self) -> AwsResult<Organization>;
    /// `GetTrail` by name or ARN in the client's Region.
    async fn get_trail(&self, name: &str) -> AwsResult<Trail>;
    /// `UpdateTrail` setting `KmsKeyId`; an empty `key_arn` turns SSE-KMS off (SSE-S3).
    async fn set_trail_key(&self, trail: &str, key_arn: &str) -> AwsResult<Trail>;
    /// `GetTrailStatus`.
    async fn trail_status(&self, trail: &str) -> AwsResult<TrailStatus>;
    /// The trail's tags (`ListTags`), by trail ARN.
    async fn trail_tags(&self, trail_arn: &str) -> AwsResult<BTreeMap<String, String>>;
    /// The Region of an S3 bucket (`GetBucketLocation`, normalized: `us-east-1` for none, `eu-west-1` for `EU`).
    async fn bucket_region(&self, bucket: &str) -> AwsResult<String>;
    /// Every account of the organization (`ListAccounts`, all pages).
    async fn list_accounts(&self) -> AwsResult<Vec<Account>>;
    /// Every trail visible in the client's Region (`DescribeTrails`), the
    /// shadow copies of multi-Region trails homed in other Regions included.
    async fn describe_trails(&self) -> AwsResult<Vec<Trail>>;
}

/// KMS in the Security Tooling account.
pub trait KeyStore {
    /// `DescribeKey`; `Ok(None)` when the key or alias does not exist.
    async fn describe_key(&self, key: &str) -> AwsResult<Option<KeyInfo>>;
    async fn get_key_policy(&self, key_id: &str) -> AwsResult<String>;
    async fn rotation_enabled(&self, key_id: &str) -> AwsResult<bool>;
    async fn list_tags(&self, key_id: &str) -> AwsResult<BTreeMap<String, String>>;
    /// IDs of every key in the account and Region (`ListKeys`, all pages).
    async fn list_keys(&self) -> AwsResult<Vec<String>>;
    /// Alias names (`alias/...`) that name the key (`ListAliases --key-id`).
    async fn list_aliases(&self, key_id: &str) -> AwsResult<Vec<String>>;

    async fn create_key(&self, key: &NewKey) -> AwsResult<KeyInfo>;
    async fn create_alias(&self, alias: &str, key_id: &str) -> AwsResult<()>;
    async fn update_alias(&self, alias: &str, key_id: &str) -> AwsResult<()>;
    async fn delete_alias(&self, alias: &str) -> AwsResult<()>;
    async fn put_key_policy(&self, key_id: &str, policy: &str) -> AwsResult<()>;
    async fn enable_rotation(&self, key_id: &str) -> AwsResult<()>;
    async fn enable_key(&self, key_id: &str) -> AwsResult<()>;
    async fn cancel_key_deletion(&self, key_id: &str) -> AwsResult<()>;
    /// Only for a key this run created and nothing uses (see `apply`).
    async fn schedule_key_deletion(&self, key_id: &str, days: i32) -> AwsResult<()>;
    async fn tag_key(&self, key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
}

/// Makes the two clients. `security_tooling` assumes the given role with the
/// management credentials and fails early (with the STS error) if it cannot.
pub trait Connect {
    type Management: Management;
    type KeyStore: KeyStore;
    fn management(&self) -> &Self::Management;
    async fn security_tooling(&self, role_arn: &str) -> AwsResult<Self::KeyStore>;
}
