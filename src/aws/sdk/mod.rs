//! The real AWS clients: the only module that imports `aws-sdk-*` types.
//!
//! Configuration comes from the standard AWS environment through
//! `aws-config` (profile, environment variables, SSO, `AWS_ENDPOINT_URL`,
//! ...), so the same binary runs against AWS or a local emulator. Retries
//! (throttling, transient errors) are the SDK's standard retry strategy.
//!
//! This file makes the clients ([`SdkConnect`]) and answers [`Management`]
//! from the service files: `sts`, `organizations`, `cloudtrail`, `s3` and
//! `account`; `kms` is the [`KeyStore`](super::KeyStore), `s3` the
//! [`LogArchive`](super::LogArchive) too, and `controltower` the
//! [`LandingZones`](super::LandingZones). `error` reduces SDK errors to
//! [`AwsError`](super::AwsError)s, `intercept` holds the call log and the
//! KMS retry classifier.

mod account;
mod cloudtrail;
mod controltower;
mod credentials;
mod error;
mod intercept;
mod kms;
mod organizations;
mod s3;
mod sts;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use aws_config::retry::RetryConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};

use super::{
    Account, AwsResult, CallerIdentity, Connect, EventDataStore, EventSelectors, LandingZone,
    LandingZoneOperation, LandingZoneUpdate, LandingZones, Management, Organization, Trail,
    TrailStatus, TrailUpdate,
};
use intercept::{LogCalls, kms_config};
pub use kms::SdkKeyStore;
pub use s3::SdkLogArchive;

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
    /// Whose the caller's own credentials are.
    caller: credentials::Caller,
    /// `roles.management` is assumed: `GetCallerIdentity` answers for it.
    management_role: bool,
    management: SdkManagement,
    landing_zones: SdkLandingZones,
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
        let (caller, provider) = credentials::Caller::wrap(
            config
                .credentials_provider()
                .unwrap_or_else(|| SharedCredentialsProvider::new(NoCredentials)),
        );
        config = config.into_builder().credentials_provider(provider).build();
        if let Some(role) = &options.management_role {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name("trailkey-management")
                .configure(&config)
                .build()
                .await;
            config = config
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
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
            caller: (options.management_role.is_none()).then(|| caller.clone()),
            sts: client!(aws_sdk_sts),
            org: client!(aws_sdk_organizations),
            trail: client!(aws_sdk_cloudtrail),
            s3: client!(aws_sdk_s3),
            account: client!(aws_sdk_account),
        };
        let landing_zones = SdkLandingZones {
            ct: client!(aws_sdk_controltower),
        };
        Self {
            config,
            caller,
            management_role: options.management_role.is_some(),
            management,
            landing_zones,
        }
    }
}

impl Connect for SdkConnect {
    type Management = SdkManagement;
    type KeyStore = SdkKeyStore;
    type LogArchive = SdkLogArchive;
    type LandingZones = SdkLandingZones;

    fn management(&self) -> &SdkManagement {
        &self.management
    }

    fn landing_zones(&self) -> &SdkLandingZones {
        &self.landing_zones
    }

    async fn caller_account(&self) -> Option<String> {
        if self.management_role {
            self.caller.named().await
        } else {
            self.caller.account().await
        }
    }

    async fn own_keys(&self) -> AwsResult<SdkKeyStore> {
        let conf = kms_config(aws_sdk_kms::config::Builder::from(&self.config)).build();
        Ok(SdkKeyStore {
            kms: aws_sdk_kms::Client::from_conf(conf),
            expires: None,
        })
    }

    async fn security_tooling(&self, role_arn: &str) -> AwsResult<SdkKeyStore> {
        let creds = sts::assume_role(&self.management.sts, role_arn, "trailkey").await?;
        let expires = creds.expiry();
        let conf = kms_config(aws_sdk_kms::config::Builder::from(&self.config))
            .credentials_provider(creds)
            .build();
        Ok(SdkKeyStore {
            kms: aws_sdk_kms::Client::from_conf(conf),
            expires,
        })
    }

    async fn log_archive(&self, role_arn: &str, bucket_region: &str) -> AwsResult<SdkLogArchive> {
        let session = "trailkey-log-archive";
        let creds = sts::assume_role(&self.management.sts, role_arn, session).await?;
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

/// No source of credentials was found: every call fails as the SDK's own
/// chain would have failed it.
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no credentials provider is configured",
        )))
    }
}

/// The management account's clients: STS, Organizations, CloudTrail, S3
/// (a bucket's Region) and Account Management.
pub struct SdkManagement {
    /// Told `GetCallerIdentity`'s answer, without `roles.management`.
    caller: Option<credentials::Caller>,
    sts: aws_sdk_sts::Client,
    org: aws_sdk_organizations::Client,
    trail: aws_sdk_cloudtrail::Client,
    s3: aws_sdk_s3::Client,
    account: aws_sdk_account::Client,
}

impl Management for SdkManagement {
    async fn caller_identity(&self) -> AwsResult<CallerIdentity> {
        let identity = sts::caller_identity(&self.sts).await?;
        if let Some(caller) = &self.caller {
            caller.answered(&identity.account);
        }
        Ok(identity)
    }

    async fn describe_organization(&self) -> AwsResult<Organization> {
        organizations::describe_organization(&self.org).await
    }

    async fn get_trail(&self, name: &str) -> AwsResult<Trail> {
        cloudtrail::get_trail(&self.trail, name).await
    }

    async fn update_trail(&self, trail: &str, update: TrailUpdate<'_>) -> AwsResult<Trail> {
        cloudtrail::update_trail(&self.trail, trail, update).await
    }

    async fn event_selectors(&self, trail: &str) -> AwsResult<EventSelectors> {
        cloudtrail::event_selectors(&self.trail, trail).await
    }

    async fn start_logging(&self, trail: &str) -> AwsResult<()> {
        cloudtrail::start_logging(&self.trail, trail).await
    }

    async fn trail_status(&self, trail: &str) -> AwsResult<TrailStatus> {
        cloudtrail::trail_status(&self.trail, trail).await
    }

    async fn trail_tags(&self, trail_arn: &str) -> AwsResult<BTreeMap<String, String>> {
        cloudtrail::trail_tags(&self.trail, trail_arn).await
    }

    async fn bucket_region(&self, bucket: &str) -> AwsResult<String> {
        s3::bucket_region(&self.s3, bucket).await
    }

    async fn list_accounts(&self) -> AwsResult<Vec<Account>> {
        organizations::list_accounts(&self.org).await
    }

    async fn delegated_administrators(&self, service_principal: &str) -> AwsResult<Vec<String>> {
        organizations::delegated_administrators(&self.org, service_principal).await
    }

    async fn describe_trails(&self) -> AwsResult<Vec<Trail>> {
        cloudtrail::describe_trails(&self.trail, true).await
    }

    async fn enabled_regions(&self) -> AwsResult<Vec<String>> {
        account::enabled_regions(&self.account).await
    }

    async fn describe_trails_in(&self, region: &str) -> AwsResult<Vec<Trail>> {
        cloudtrail::describe_trails_in(&self.trail, region).await
    }

    async fn list_event_data_stores(&self) -> AwsResult<Vec<String>> {
        cloudtrail::list_event_data_stores(&self.trail).await
    }

    async fn get_event_data_store(&self, arn: &str) -> AwsResult<EventDataStore> {
        cloudtrail::get_event_data_store(&self.trail, arn).await
    }
}

/// Control Tower, with the management account's credentials.
pub struct SdkLandingZones {
    ct: aws_sdk_controltower::Client,
}

impl LandingZones for SdkLandingZones {
    async fn list_landing_zones(&self) -> AwsResult<Vec<String>> {
        controltower::list_landing_zones(&self.ct).await
    }

    async fn get_landing_zone(&self, arn: &str) -> AwsResult<LandingZone> {
        controltower::get_landing_zone(&self.ct, arn).await
    }

    async fn operations_in_progress(&self) -> AwsResult<Vec<LandingZoneOperation>> {
        controltower::operations_in_progress(&self.ct).await
    }

    async fn update_landing_zone(&self, update: LandingZoneUpdate<'_>) -> AwsResult<String> {
        controltower::update_landing_zone(&self.ct, update).await
    }

    async fn get_operation(&self, id: &str) -> AwsResult<LandingZoneOperation> {
        controltower::get_operation(&self.ct, id).await
    }
}

/// An SDK enum's wire value as trailkey's type for it (`""` when absent).
fn text<'a, T: From<&'a str>>(value: Option<&'a str>) -> T {
    T::from(value.unwrap_or_default())
}

/// The strings `field` gives of the items of every page, where it gives one.
fn listed<'a, P, I: 'a>(
    pages: &'a [P],
    items: impl Fn(&'a P) -> &'a [I],
    field: impl Fn(&'a I) -> Option<&'a str>,
) -> Vec<String> {
    let items = pages.iter().flat_map(items);
    items.filter_map(field).map(str::to_owned).collect()
}

/// A string AWS sent, where an empty one means none.
fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}
