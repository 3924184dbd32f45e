//! The real AWS clients: the only module that imports `aws-sdk-*` types.
//!
//! Configuration comes from the standard AWS environment through
//! `aws-config` (profile, environment variables, SSO, `AWS_ENDPOINT_URL`,
//! ...), so the same binary runs against AWS or a local emulator. Retries
//! (throttling, transient errors) are the SDK's standard retry strategy.

use std::collections::BTreeMap;
use std::fmt::Debug;

use aws_config::retry::RetryConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::types::{KeySpec, KeyUsageType, OriginType, Tag};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;

use super::{
    Account, AwsError, AwsResult, BucketEncryption, CallerIdentity, Connect, EventDataStore, Grant,
    KeyInfo, KeyStore, LogArchive, Management, NewKey, Organization, Replication, ReplicationRule,
    Trail, TrailStatus, TrailUpdate, code,
};

/// Bounded attempts for the SDK's standard retry strategy (exponential
/// backoff with jitter for throttling and transient errors).
const MAX_ATTEMPTS: u32 = 5;

/// The SDK's standard retry strategy with [`MAX_ATTEMPTS`]: trailkey does
/// not retry throttling or transient errors itself.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// Where the caller's credentials come from.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A named profile (`--profile`); otherwise the default chain.
    pub profile: Option<String>,
    /// A role to assume for management-account calls (`roles.management`).
    pub management_role: Option<String>,
}

pub struct SdkConnect {
    config: SdkConfig,
    management: SdkManagement,
}

impl SdkConnect {
    /// Loads the AWS configuration for `region`. Makes no AWS call.
    pub async fn new(region: &str, options: &Options) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .retry_config(retry_config())
            .app_name(AppName::new("trailkey").expect("valid app name"));
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        let mut config = loader.load().await;
        if let Some(role) = &options.management_role {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name("trailkey-management")
                .configure(&config)
                .build()
                .await;
            config = config
                .into_builder()
                .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
                    provider,
                ))
                .build();
        }
        // Every client logs its calls (-vv).
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&config)
                        .interceptor(LogCalls)
                        .build(),
                )
            };
        }
        let management = SdkManagement {
            sts: client!(aws_sdk_sts),
            org: client!(aws_sdk_organizations),
            trail: client!(aws_sdk_cloudtrail),
            s3: client!(aws_sdk_s3),
            account: client!(aws_sdk_account),
        };
        Self { config, management }
    }
}

impl Connect for SdkConnect {
    type Management = SdkManagement;
    type KeyStore = SdkKeyStore;
    type LogArchive = SdkLogArchive;

    fn management(&self) -> &SdkManagement {
        &self.management
    }

    async fn security_tooling(&self, role_arn: &str) -> AwsResult<SdkKeyStore> {
        let creds = self.assume(role_arn, "trailkey").await?;
        let conf = kms_config(aws_sdk_kms::config::Builder::from(&self.config))
            .credentials_provider(creds)
            .build();
        Ok(SdkKeyStore {
            kms: aws_sdk_kms::Client::from_conf(conf),
        })
    }

    async fn log_archive(&self, role_arn: &str, bucket_region: &str) -> AwsResult<SdkLogArchive> {
        let creds = self.assume(role_arn, "trailkey-log-archive").await?;
        let conf = aws_sdk_s3::config::Builder::from(&self.config)
            .credentials_provider(creds)
            .region(Region::new(bucket_region.to_owned()))
            .interceptor(LogCalls)
            .build();
        Ok(SdkLogArchive {
            s3: aws_sdk_s3::Client::from_conf(conf),
        })
    }
}

impl SdkConnect {
    /// `AssumeRole` with the management credentials: the role's temporary
    /// credentials.
    async fn assume(
        &self,
        role_arn: &str,
        session: &str,
    ) -> AwsResult<aws_sdk_kms::config::Credentials> {
        let out = self
            .management
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session)
            .send()
            .await
            .map_err(|e| aws_error("AssumeRole", e))?;
        let c = out.credentials().ok_or_else(|| {
            AwsError::new("AssumeRole", "NoCredentials", "STS returned no credentials")
        })?;
        Ok(aws_sdk_kms::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            std::time::SystemTime::try_from(*c.expiration()).ok(),
            "trailkey-assume-role",
        ))
    }
}

/// S3 in the Log Archive account: the trail bucket's configuration, read only.
pub struct SdkLogArchive {
    s3: aws_sdk_s3::Client,
}

/// `Ok(None)` for the AWS error `absent` (the configuration does not exist).
fn absent_as_none<T>(result: AwsResult<T>, absent: &str) -> AwsResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code == absent => Ok(None),
        Err(e) => Err(e),
    }
}

impl LogArchive for SdkLogArchive {
    async fn bucket_policy(&self, bucket: &str) -> AwsResult<Option<String>> {
        let out = self
            .s3
            .get_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| aws_error("GetBucketPolicy", e))
            .map(|o| o.policy().unwrap_or_default().to_owned());
        absent_as_none(out, code::NO_SUCH_BUCKET_POLICY)
    }

    async fn bucket_encryption(&self, bucket: &str) -> AwsResult<Option<BucketEncryption>> {
        let out = self
            .s3
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| aws_error("GetBucketEncryption", e));
        let out = absent_as_none(out, code::NO_ENCRYPTION_CONFIGURATION)?;
        Ok(out.and_then(|o| {
            let rule = o.server_side_encryption_configuration()?.rules().first()?;
            let default = rule.apply_server_side_encryption_by_default();
            Some(BucketEncryption {
                algorithm: default
                    .map(|d| d.sse_algorithm().as_str().to_owned())
                    .unwrap_or_default(),
                kms_key_id: default
                    .and_then(|d| d.kms_master_key_id())
                    .map(str::to_owned),
                bucket_key_enabled: rule.bucket_key_enabled().unwrap_or(false),
            })
        }))
    }

    async fn bucket_replication(&self, bucket: &str) -> AwsResult<Option<Replication>> {
        let out = self
            .s3
            .get_bucket_replication()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| aws_error("GetBucketReplication", e));
        let Some(config) = absent_as_none(out, code::NO_REPLICATION_CONFIGURATION)?
            .and_then(|o| o.replication_configuration)
        else {
            return Ok(None);
        };
        let rules = config
            .rules()
            .iter()
            .map(|r| ReplicationRule {
                id: r.id().map(str::to_owned),
                enabled: r.status().as_str() == "Enabled",
                replicates_kms_encrypted: r
                    .source_selection_criteria()
                    .and_then(|c| c.sse_kms_encrypted_objects())
                    .is_some_and(|o| o.status().as_str() == "Enabled"),
                replica_kms_key_id: r
                    .destination()
                    .and_then(|d| d.encryption_configuration())
                    .and_then(|e| e.replica_kms_key_id())
                    .map(str::to_owned),
            })
            .collect();
        Ok(Some(Replication {
            role: config.role().to_owned(),
            rules,
        }))
    }
}

/// The KMS client's own settings: calls logged, and a quota is not throttling.
fn kms_config(builder: aws_sdk_kms::config::Builder) -> aws_sdk_kms::config::Builder {
    builder
        .interceptor(LogCalls)
        .retry_classifier(QuotaIsNotThrottling)
}

/// KMS's `LimitExceededException` is a quota (keys, aliases or grants per
/// account or key) or a key policy over 32 KB (kms model, shape
/// `LimitExceededException`), which no retry fixes; the SDK's standard
/// classifier lists it among the throttling errors (`THROTTLING_ERRORS` of
/// `aws-runtime`). This classifier runs after the SDK's and forbids the
/// retry, so the error and its hint come at once. The code is read from the
/// answer: `x-amzn-ErrorType`, else the body's `__type`.
#[derive(Debug)]
struct QuotaIsNotThrottling;

impl aws_smithy_runtime_api::client::retries::classifiers::ClassifyRetry for QuotaIsNotThrottling {
    fn classify_retry(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryAction {
        use aws_smithy_runtime_api::client::retries::classifiers::RetryAction;
        let Some(response) = ctx.response() else {
            return RetryAction::NoActionIndicated;
        };
        let from_header = response
            .headers()
            .get("x-amzn-errortype")
            .map(|v| v.split(':').next().unwrap_or_default().to_owned());
        let code = from_header.or_else(|| {
            let body: serde_json::Value = serde_json::from_slice(response.body().bytes()?).ok()?;
            let t = body.get("__type")?.as_str()?;
            Some(t.rsplit('#').next().unwrap_or(t).to_owned())
        });
        if code.as_deref() == Some("LimitExceededException") {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "trailkey: a KMS quota is not throttling"
    }

    fn priority(
        &self,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority {
        use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// Logs every AWS call (`-vv`): service, operation and HTTP status of the
/// last attempt. Nothing else of the request: no headers, no credentials.
#[derive(Debug)]
struct LogCalls;

impl Intercept for LogCalls {
    fn name(&self) -> &'static str {
        "trailkey-log-calls"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt > 1 {
            let (service, operation) = service_and_operation(cfg);
            tracing::info!(service, operation, attempt, "retrying");
            crate::output::err(&format!(
                "  retrying {service} {operation} (attempt {attempt} of {MAX_ATTEMPTS})\n"
            ));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = service_and_operation(cfg);
        let status = context.response().map(|r| r.status().as_u16());
        let ok = context.output_or_error().is_some_and(|r| r.is_ok());
        tracing::debug!(service, operation, status, ok, "aws call");
        Ok(())
    }
}

/// The service and operation of the call `cfg` belongs to.
fn service_and_operation(cfg: &ConfigBag) -> (&str, &str) {
    cfg.load::<Metadata>()
        .map_or(("?", "?"), |m| (m.service(), m.name()))
}

/// Reduces any SDK error to an [`AwsError`] with the AWS error code.
fn aws_error<E>(
    operation: &'static str,
    e: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = DisplayErrorContext(&e).to_string();
    let status = e.raw_response().map(|r| r.status().as_u16());
    let unreadable = |status: Option<u16>| {
        format!(
            "AWS's answer to {operation}{} could not be decoded (not UTF-8, or not the service's error format): {detail}",
            status.map_or(String::new(), |s| format!(" (HTTP {s})"))
        )
    };
    let (code, message) = match &e {
        SdkError::ServiceError(_) => match (e.code(), e.message()) {
            (Some(code), Some(message)) if !message.is_empty() => {
                (code.to_owned(), message.to_owned())
            }
            (Some(code), _) => (code.to_owned(), String::new()),
            (None, _) => ("Unknown".to_owned(), unreadable(status)),
        },
        SdkError::ResponseError(_) => ("ResponseError".to_owned(), unreadable(status)),
        SdkError::TimeoutError(_) => ("Timeout".to_owned(), detail),
        _ if detail.contains("credentials") && detail.contains("provider") => {
            ("CredentialsNotLoaded".to_owned(), detail)
        }
        _ => ("DispatchFailure".to_owned(), detail),
    };
    AwsError::new(operation, code, message)
}

pub struct SdkManagement {
    sts: aws_sdk_sts::Client,
    org: aws_sdk_organizations::Client,
    trail: aws_sdk_cloudtrail::Client,
    s3: aws_sdk_s3::Client,
    account: aws_sdk_account::Client,
}

/// A [`Trail`] from a CloudTrail answer that carries the trail's fields
/// (`types::Trail` of `GetTrail` and `DescribeTrails`, `UpdateTrailOutput`),
/// with its home Region as given.
macro_rules! trail_of {
    ($t:expr, $home_region:expr) => {{
        let t = $t;
        Trail {
            name: t.name().unwrap_or_default().to_owned(),
            arn: t.trail_arn().unwrap_or_default().to_owned(),
            home_region: $home_region,
            kms_key_id: non_empty(t.kms_key_id()),
            is_organization_trail: t.is_organization_trail().unwrap_or(false),
            is_multi_region_trail: t.is_multi_region_trail().unwrap_or(false),
            s3_bucket: t.s3_bucket_name().unwrap_or_default().to_owned(),
            s3_key_prefix: non_empty(t.s3_key_prefix()),
            log_file_validation: t.log_file_validation_enabled().unwrap_or(false),
        }
    }};
}

/// A trail as `GetTrail` and `DescribeTrails` return it.
fn trail_from(t: &aws_sdk_cloudtrail::types::Trail) -> Trail {
    // GetTrail may omit HomeRegion (moto does); the trail ARN carries it.
    let home_region = t
        .home_region()
        .filter(|r| !r.is_empty())
        .or_else(|| t.trail_arn().and_then(|a| a.split(':').nth(3)))
        .unwrap_or_default()
        .to_owned();
    trail_of!(t, home_region)
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

impl Management for SdkManagement {
    async fn caller_identity(&self) -> AwsResult<CallerIdentity> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| aws_error("GetCallerIdentity", e))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
        })
    }

    async fn describe_organization(&self) -> AwsResult<Organization> {
        let out = self
            .org
            .describe_organization()
            .send()
            .await
            .map_err(|e| aws_error("DescribeOrganization", e))?;
        let org = out.organization().ok_or_else(|| {
            AwsError::new(
                "DescribeOrganization",
                "NoOrganization",
                "no organization returned",
            )
        })?;
        Ok(Organization {
            id: org.id().unwrap_or_default().to_owned(),
            management_account: org.master_account_id().unwrap_or_default().to_owned(),
            feature_set: text(org.feature_set().map(|f| f.as_str())),
        })
    }

    async fn get_trail(&self, name: &str) -> AwsResult<Trail> {
        let out = self
            .trail
            .get_trail()
            .name(name)
            .send()
            .await
            .map_err(|e| aws_error("GetTrail", e))?;
        let t = out.trail().ok_or_else(|| {
            AwsError::new(
                "GetTrail",
                "TrailNotFoundException",
                format!("no trail {name}"),
            )
        })?;
        Ok(trail_from(t))
    }

    async fn update_trail(&self, trail: &str, update: TrailUpdate<'_>) -> AwsResult<Trail> {
        let t = self
            .trail
            .update_trail()
            .name(trail)
            .set_kms_key_id(update.kms_key_id.map(str::to_owned))
            .set_enable_log_file_validation(update.enable_log_file_validation.then_some(true))
            .send()
            .await
            .map_err(|e| aws_error("UpdateTrail", e))?;
        // UpdateTrail does not return the home Region; the caller keeps the
        // one it read.
        Ok(trail_of!(t, String::new()))
    }

    async fn trail_status(&self, trail: &str) -> AwsResult<TrailStatus> {
        let out = self
            .trail
            .get_trail_status()
            .name(trail)
            .send()
            .await
            .map_err(|e| aws_error("GetTrailStatus", e))?;
        let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(TrailStatus {
            is_logging: out.is_logging().unwrap_or(false),
            latest_delivery_error: non_empty(out.latest_delivery_error()),
            latest_digest_delivery_error: non_empty(out.latest_digest_delivery_error()),
            latest_delivery_time: out.latest_delivery_time().map(|t| t.secs()),
        })
    }

    async fn trail_tags(&self, trail_arn: &str) -> AwsResult<BTreeMap<String, String>> {
        let out = self
            .trail
            .list_tags()
            .resource_id_list(trail_arn)
            .send()
            .await
            .map_err(|e| aws_error("ListTags", e))?;
        Ok(out
            .resource_tag_list()
            .iter()
            .flat_map(|r| r.tags_list())
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect())
    }

    /// `HeadBucket`'s `x-amz-bucket-region` header, which S3 sends
    /// "regardless of the permissions on the bucket" (s3 model, `HeadBucket`),
    /// on a 403 or a redirect too. `GetBucketLocation` would need the Log
    /// Archive bucket policy's consent: "cross-account access won't be
    /// authorized" outside the bucket's Region (s3 model, `GetBucketLocation`).
    async fn bucket_region(&self, bucket: &str) -> AwsResult<String> {
        const HEADER: &str = "x-amz-bucket-region";
        let e = match self.s3.head_bucket().bucket(bucket).send().await {
            Ok(out) => {
                return out.bucket_region().map(str::to_owned).ok_or_else(|| {
                    AwsError::new(
                        "HeadBucket",
                        "NoBucketRegion",
                        format!("S3 sent no {HEADER} header"),
                    )
                });
            }
            Err(e) => e,
        };
        let raw = e.raw_response();
        if let Some(region) = raw.and_then(|r| r.headers().get(HEADER)) {
            return Ok(region.to_owned());
        }
        // A HEAD answer has no body, so no error code: only its status.
        match raw.map(|r| r.status().as_u16()) {
            Some(404) => Err(AwsError::new(
                "HeadBucket",
                code::NO_SUCH_BUCKET,
                format!("bucket {bucket} does not exist"),
            )),
            Some(status) => Err(AwsError::new(
                "HeadBucket",
                if status == 403 {
                    "AccessDenied"
                } else {
                    "Unknown"
                },
                format!("HTTP {status} without an {HEADER} header"),
            )),
            None => Err(aws_error("HeadBucket", e)),
        }
    }

    async fn list_accounts(&self) -> AwsResult<Vec<Account>> {
        let mut accounts = Vec::new();
        let mut pages = self.org.list_accounts().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("ListAccounts", e))?;
            accounts.extend(page.accounts().iter().map(|a| {
                Account {
                    id: a.id().unwrap_or_default().to_owned(),
                    name: a.name().unwrap_or_default().to_owned(),
                    email: a.email().unwrap_or_default().to_owned(),
                    // `Status` is retired (organizations model, `Account.Status`):
                    // only an answer without `State` falls back to it.
                    state: text(
                        a.state()
                            .map(|s| s.as_str())
                            .or_else(|| a.status().map(|s| s.as_str())),
                    ),
                }
            }));
        }
        Ok(accounts)
    }

    async fn describe_trails(&self) -> AwsResult<Vec<Trail>> {
        describe_trails(&self.trail, true).await
    }

    async fn enabled_regions(&self) -> AwsResult<Vec<String>> {
        use aws_sdk_account::types::RegionOptStatus;
        let mut regions = Vec::new();
        let mut pages = self
            .account
            .list_regions()
            .region_opt_status_contains(RegionOptStatus::Enabled)
            .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("ListRegions", e))?;
            // The filter is the service's; a Region answered in another
            // status anyway is not called.
            regions.extend(page.regions().iter().filter_map(|r| {
                matches!(
                    r.region_opt_status(),
                    Some(RegionOptStatus::Enabled | RegionOptStatus::EnabledByDefault)
                )
                .then(|| r.region_name())
                .flatten()
                .map(str::to_owned)
            }));
        }
        Ok(regions)
    }

    async fn describe_trails_in(&self, region: &str) -> AwsResult<Vec<Trail>> {
        // The management client's settings (credentials, retries, the call
        // log), in `region`.
        let conf = self
            .trail
            .config()
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build();
        describe_trails(&aws_sdk_cloudtrail::Client::from_conf(conf), false).await
    }

    async fn list_event_data_stores(&self) -> AwsResult<Vec<String>> {
        let mut arns = Vec::new();
        let mut pages = self.trail.list_event_data_stores().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("ListEventDataStores", e))?;
            arns.extend(
                page.event_data_stores()
                    .iter()
                    .filter_map(|s| s.event_data_store_arn().map(str::to_owned)),
            );
        }
        Ok(arns)
    }

    async fn get_event_data_store(&self, arn: &str) -> AwsResult<EventDataStore> {
        let out = self
            .trail
            .get_event_data_store()
            .event_data_store(arn)
            .send()
            .await
            .map_err(|e| aws_error("GetEventDataStore", e))?;
        Ok(EventDataStore {
            arn: out.event_data_store_arn().unwrap_or(arn).to_owned(),
            name: out.name().unwrap_or_default().to_owned(),
            status: out
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            kms_key_id: non_empty(out.kms_key_id()),
        })
    }
}

/// Every trail `client` sees in its Region, shadow copies included
/// (`DescribeTrails`).
/// `DescribeTrails` in the client's Region: with `shadows`, the trails that
/// apply there (shadow copies of multi-Region trails homed elsewhere
/// included), otherwise only the trails homed there.
async fn describe_trails(
    client: &aws_sdk_cloudtrail::Client,
    shadows: bool,
) -> AwsResult<Vec<Trail>> {
    let out = client
        .describe_trails()
        .include_shadow_trails(shadows)
        .send()
        .await
        .map_err(|e| aws_error("DescribeTrails", e))?;
    Ok(out.trail_list().iter().map(trail_from).collect())
}

pub struct SdkKeyStore {
    kms: aws_sdk_kms::Client,
}

/// An SDK enum's wire value as trailkey's type for it (`""` when absent).
fn text<'a, T: From<&'a str>>(value: Option<&'a str>) -> T {
    T::from(value.unwrap_or_default())
}

fn key_info(op: &'static str, m: Option<&aws_sdk_kms::types::KeyMetadata>) -> AwsResult<KeyInfo> {
    let m = m.ok_or_else(|| AwsError::new(op, "NoKeyMetadata", "KMS returned no key metadata"))?;
    Ok(KeyInfo {
        key_id: m.key_id().to_owned(),
        arn: m.arn().unwrap_or_default().to_owned(),
        state: text(m.key_state().map(|s| s.as_str())),
        key_spec: text(m.key_spec().map(|s| s.as_str())),
        key_usage: text(m.key_usage().map(|s| s.as_str())),
        origin: text(m.origin().map(|s| s.as_str())),
        multi_region: m.multi_region().unwrap_or(false),
        description: m.description().unwrap_or_default().to_owned(),
        key_manager: text(m.key_manager().map(|s| s.as_str())),
        created: m.creation_date().map(|d| d.secs()),
    })
}

fn kms_tags(op: &'static str, tags: &BTreeMap<String, String>) -> AwsResult<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AwsError::new(op, "InvalidTag", e.to_string()))
}

impl KeyStore for SdkKeyStore {
    async fn describe_key(&self, key: &str) -> AwsResult<Option<KeyInfo>> {
        match self.kms.describe_key().key_id(key).send().await {
            Ok(out) => key_info("DescribeKey", out.key_metadata()).map(Some),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws_error("DescribeKey", e)),
        }
    }

    async fn get_key_policy(&self, key_id: &str) -> AwsResult<String> {
        let out = self
            .kms
            .get_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .send()
            .await
            .map_err(|e| aws_error("GetKeyPolicy", e))?;
        Ok(out.policy().unwrap_or_default().to_owned())
    }

    async fn rotation_enabled(&self, key_id: &str) -> AwsResult<bool> {
        let out = self
            .kms
            .get_key_rotation_status()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| aws_error("GetKeyRotationStatus", e))?;
        Ok(out.key_rotation_enabled())
    }

    async fn list_tags(&self, key_id: &str) -> AwsResult<BTreeMap<String, String>> {
        let mut tags = BTreeMap::new();
        let mut pages = self
            .kms
            .list_resource_tags()
            .key_id(key_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("ListResourceTags", e))?;
            for t in page.tags() {
                tags.insert(t.tag_key().to_owned(), t.tag_value().to_owned());
            }
        }
        Ok(tags)
    }

    async fn list_keys(&self) -> AwsResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut pages = self.kms.list_keys().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("ListKeys", e))?;
            ids.extend(
                page.keys()
                    .iter()
                    .filter_map(|k| k.key_id().map(str::to_owned)),
            );
        }
        Ok(ids)
    }

    async fn list_grants(&self, key_id: &str) -> AwsResult<Vec<Grant>> {
        let mut grants = Vec::new();
        let mut pages = self
            .kms
            .list_grants()
            .key_id(key_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("ListGrants", e))?;
            grants.extend(page.grants().iter().map(|g| {
                Grant {
                    id: g.grant_id().unwrap_or_default().to_owned(),
                    grantee: g.grantee_principal().unwrap_or_default().to_owned(),
                    operations: g
                        .operations()
                        .iter()
                        .map(|o| o.as_str().to_owned())
                        .collect(),
                }
            }));
        }
        Ok(grants)
    }

    async fn list_aliases(&self, key_id: &str) -> AwsResult<Vec<String>> {
        let mut names = Vec::new();
        let mut pages = self
            .kms
            .list_aliases()
            .key_id(key_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("ListAliases", e))?;
            names.extend(
                page.aliases()
                    .iter()
                    .filter_map(|a| a.alias_name().map(str::to_owned)),
            );
        }
        Ok(names)
    }

    async fn create_key(&self, key: &NewKey) -> AwsResult<KeyInfo> {
        let tags = kms_tags("CreateKey", &key.tags)?;
        let out = self
            .kms
            .create_key()
            .description(&key.description)
            .key_spec(KeySpec::SymmetricDefault)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .origin(OriginType::AwsKms)
            .multi_region(false)
            .policy(&key.policy)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| aws_error("CreateKey", e))?;
        key_info("CreateKey", out.key_metadata())
    }

    async fn create_alias(&self, alias: &str, key_id: &str) -> AwsResult<()> {
        self.kms
            .create_alias()
            .alias_name(alias)
            .target_key_id(key_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("CreateAlias", e))
    }

    async fn update_alias(&self, alias: &str, key_id: &str) -> AwsResult<()> {
        self.kms
            .update_alias()
            .alias_name(alias)
            .target_key_id(key_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("UpdateAlias", e))
    }

    async fn delete_alias(&self, alias: &str) -> AwsResult<()> {
        self.kms
            .delete_alias()
            .alias_name(alias)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("DeleteAlias", e))
    }

    async fn put_key_policy(&self, key_id: &str, policy: &str) -> AwsResult<()> {
        self.kms
            .put_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("PutKeyPolicy", e))
    }

    async fn enable_rotation(&self, key_id: &str) -> AwsResult<()> {
        self.kms
            .enable_key_rotation()
            .key_id(key_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("EnableKeyRotation", e))
    }

    async fn enable_key(&self, key_id: &str) -> AwsResult<()> {
        self.kms
            .enable_key()
            .key_id(key_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("EnableKey", e))
    }

    async fn cancel_key_deletion(&self, key_id: &str) -> AwsResult<()> {
        self.kms
            .cancel_key_deletion()
            .key_id(key_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("CancelKeyDeletion", e))
    }

    async fn schedule_key_deletion(&self, key_id: &str, days: i32) -> AwsResult<()> {
        self.kms
            .schedule_key_deletion()
            .key_id(key_id)
            .pending_window_in_days(days)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("ScheduleKeyDeletion", e))
    }

    async fn tag_key(&self, key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        let tags = kms_tags("TagResource", tags)?;
        self.kms
            .tag_resource()
            .key_id(key_id)
            .set_tags(Some(tags))
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("TagResource", e))
    }
}

#[cfg(test)]
#[path = "sdk_tests.rs"]
mod tests;
