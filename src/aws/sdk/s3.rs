//! S3: a bucket's Region, with the management credentials, and the trail
//! bucket's configuration, read in the Log Archive account.

use super::error::{absent_as_none, answer, aws_error, steady};
use crate::aws::{
    AwsError, AwsResult, BucketEncryption, LogArchive, Replication, ReplicationRule, code,
};

/// `HeadBucket`'s `x-amz-bucket-region` header, which S3 sends
/// "regardless of the permissions on the bucket" (s3 model, `HeadBucket`),
/// on a 403 or a redirect too. `GetBucketLocation` would need the Log
/// Archive bucket policy's consent: "cross-account access won't be
/// authorized" outside the bucket's Region (s3 model, `GetBucketLocation`).
pub(super) async fn bucket_region(s3: &aws_sdk_s3::Client, bucket: &str) -> AwsResult<String> {
    const HEADER: &str = "x-amz-bucket-region";
    let e = match s3.head_bucket().bucket(bucket).send().await {
        Ok(out) => {
            return out.bucket_region().map(str::to_owned).ok_or_else(|| {
                AwsError::new(
                    "HeadBucket",
                    code::NO_BUCKET_REGION,
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
                code::ACCESS_DENIED
            } else {
                code::UNKNOWN
            },
            format!("HTTP {status} without an {HEADER} header"),
        )),
        // No answer at all: why varies from one try to the next.
        None => Err(steady(aws_error("HeadBucket", e))),
    }
}

/// S3 in the Log Archive account: the trail bucket's configuration, read only.
pub struct SdkLogArchive {
    pub(super) s3: aws_sdk_s3::Client,
}

impl LogArchive for SdkLogArchive {
    async fn bucket_policy(&self, bucket: &str) -> AwsResult<Option<String>> {
        let request = self.s3.get_bucket_policy().bucket(bucket);
        let out = answer("GetBucketPolicy", request.send()).await;
        let out = absent_as_none(out, code::NO_SUCH_BUCKET_POLICY)?;
        Ok(out.map(|o| o.policy().unwrap_or_default().to_owned()))
    }

    async fn bucket_encryption(&self, bucket: &str) -> AwsResult<Option<BucketEncryption>> {
        let request = self.s3.get_bucket_encryption().bucket(bucket);
        let out = answer("GetBucketEncryption", request.send()).await;
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
        let request = self.s3.get_bucket_replication().bucket(bucket);
        let out = answer("GetBucketReplication", request.send()).await;
        let Some(config) = absent_as_none(out, code::NO_REPLICATION_CONFIGURATION)?
            .and_then(|o| o.replication_configuration)
        else {
            return Ok(None);
        };
        let rules = config.rules().iter().map(replication_rule).collect();
        Ok(Some(Replication {
            role: config.role().to_owned(),
            rules,
        }))
    }
}

/// One rule of a bucket's replication configuration.
fn replication_rule(r: &aws_sdk_s3::types::ReplicationRule) -> ReplicationRule {
    ReplicationRule {
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
    }
}
