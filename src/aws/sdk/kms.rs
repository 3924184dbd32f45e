//! KMS in the Security Tooling account: every call on the key, its alias,
//! policy, rotation, tags and grants.

use std::collections::BTreeMap;

use aws_sdk_kms::types::{KeySpec, KeyUsageType, OriginType, Tag};

use super::error::{answer, aws_error};
use super::{listed, text};
use crate::aws::{AwsError, AwsResult, Grant, KeyInfo, KeyStore, NewKey, RotationStatus, code};

/// KMS in the Security Tooling account, with the assumed role's credentials.
pub struct SdkKeyStore {
    pub(super) kms: aws_sdk_kms::Client,
    /// When the assumed role's credentials expire; `None` for the caller's
    /// own, which the SDK renews.
    pub(super) expires: Option<std::time::SystemTime>,
}

/// What KMS says of a key (`KeyMetadata` of `DescribeKey` and `CreateKey`).
fn key_info(op: &'static str, m: Option<&aws_sdk_kms::types::KeyMetadata>) -> AwsResult<KeyInfo> {
    let m =
        m.ok_or_else(|| AwsError::new(op, code::NO_KEY_METADATA, "KMS returned no key metadata"))?;
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

/// The tags to set on a key, as KMS takes them.
fn kms_tags(op: &'static str, tags: &BTreeMap<String, String>) -> AwsResult<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AwsError::new(op, code::INVALID_TAG, e.to_string()))
}

impl KeyStore for SdkKeyStore {
    fn expiry(&self) -> Option<std::time::SystemTime> {
        self.expires
    }

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
        let request = self.kms.get_key_policy().key_id(key_id);
        let out = answer("GetKeyPolicy", request.policy_name("default").send()).await?;
        Ok(out.policy().unwrap_or_default().to_owned())
    }

    async fn rotation_status(&self, key_id: &str) -> AwsResult<RotationStatus> {
        let request = self.kms.get_key_rotation_status().key_id(key_id);
        let out = answer("GetKeyRotationStatus", request.send()).await?;
        Ok(RotationStatus {
            enabled: out.key_rotation_enabled(),
            period_days: out.rotation_period_in_days(),
        })
    }

    async fn list_tags(&self, key_id: &str) -> AwsResult<BTreeMap<String, String>> {
        let pages = self
            .kms
            .list_resource_tags()
            .key_id(key_id)
            .into_paginator();
        let pages = answer("ListResourceTags", pages.send().try_collect()).await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.tags())
            .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
            .collect())
    }

    async fn list_keys(&self) -> AwsResult<Vec<String>> {
        let pages = self.kms.list_keys().into_paginator().send();
        let pages = answer("ListKeys", pages.try_collect()).await?;
        // KMS lists them in no documented order.
        let mut keys = listed(&pages, |page| page.keys(), |k| k.key_id());
        keys.sort();
        Ok(keys)
    }

    async fn list_grants(&self, key_id: &str) -> AwsResult<Vec<Grant>> {
        let pages = self.kms.list_grants().key_id(key_id).into_paginator();
        let pages = answer("ListGrants", pages.send().try_collect()).await?;
        let grants = pages.iter().flat_map(|page| page.grants());
        Ok(grants
            .map(|g| Grant {
                id: g.grant_id().unwrap_or_default().to_owned(),
                grantee: g.grantee_principal().unwrap_or_default().to_owned(),
                operations: g
                    .operations()
                    .iter()
                    .map(|o| o.as_str().to_owned())
                    .collect(),
            })
            .collect())
    }

    async fn list_aliases(&self, key_id: &str) -> AwsResult<Vec<String>> {
        let pages = self.kms.list_aliases().key_id(key_id).into_paginator();
        let pages = answer("ListAliases", pages.send().try_collect()).await?;
        // KMS lists them in no documented order.
        let mut aliases = listed(&pages, |page| page.aliases(), |a| a.alias_name());
        aliases.sort();
        Ok(aliases)
    }

    async fn create_key(&self, key: &NewKey) -> AwsResult<KeyInfo> {
        let tags = kms_tags("CreateKey", &key.tags)?;
        let request = self
            .kms
            .create_key()
            .description(&key.description)
            .key_spec(KeySpec::SymmetricDefault)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .origin(OriginType::AwsKms)
            .multi_region(false)
            .policy(&key.policy)
            .set_tags(Some(tags));
        let out = answer("CreateKey", request.send()).await?;
        key_info("CreateKey", out.key_metadata())
    }

    async fn create_alias(&self, alias: &str, key_id: &str) -> AwsResult<()> {
        let request = self.kms.create_alias().alias_name(alias);
        answer("CreateAlias", request.target_key_id(key_id).send()).await?;
        Ok(())
    }

    async fn update_alias(&self, alias: &str, key_id: &str) -> AwsResult<()> {
        let request = self.kms.update_alias().alias_name(alias);
        answer("UpdateAlias", request.target_key_id(key_id).send()).await?;
        Ok(())
    }

    async fn delete_alias(&self, alias: &str) -> AwsResult<()> {
        let request = self.kms.delete_alias().alias_name(alias);
        answer("DeleteAlias", request.send()).await?;
        Ok(())
    }

    async fn put_key_policy(&self, key_id: &str, policy: &str) -> AwsResult<()> {
        let request = self.kms.put_key_policy().key_id(key_id).policy(policy);
        answer("PutKeyPolicy", request.policy_name("default").send()).await?;
        Ok(())
    }

    async fn enable_rotation(&self, key_id: &str, period_days: Option<i32>) -> AwsResult<()> {
        let request = self
            .kms
            .enable_key_rotation()
            .key_id(key_id)
            .set_rotation_period_in_days(period_days);
        answer("EnableKeyRotation", request.send()).await?;
        Ok(())
    }

    async fn enable_key(&self, key_id: &str) -> AwsResult<()> {
        let request = self.kms.enable_key().key_id(key_id);
        answer("EnableKey", request.send()).await?;
        Ok(())
    }

    async fn cancel_key_deletion(&self, key_id: &str) -> AwsResult<()> {
        let request = self.kms.cancel_key_deletion().key_id(key_id);
        answer("CancelKeyDeletion", request.send()).await?;
        Ok(())
    }

    async fn schedule_key_deletion(&self, key_id: &str, days: i32) -> AwsResult<()> {
        let request = self.kms.schedule_key_deletion().key_id(key_id);
        answer(
            "ScheduleKeyDeletion",
            request.pending_window_in_days(days).send(),
        )
        .await?;
        Ok(())
    }

    async fn tag_key(&self, key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        let tags = kms_tags("TagResource", tags)?;
        let request = self.kms.tag_resource().key_id(key_id).set_tags(Some(tags));
        answer("TagResource", request.send()).await?;
        Ok(())
    }
}
