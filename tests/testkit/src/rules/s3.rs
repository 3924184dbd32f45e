//! S3 where moto 5.2.5 is lenient: the Log Archive bucket seen from another
//! account, replication rules as they were put, and what the traffic shows
//! of a bucket's default encryption.

use super::world::World;
use super::xml_text;
use crate::proxy::{Decision, Request, Response, Rule, Traffic};

/// The bucket and sub-resource of a path-style S3 request (`/bucket?query`),
/// as the SDKs send them to an IP address endpoint.
fn s3_target(request: &Request) -> Option<(String, String)> {
    if request.service != "s3" {
        return None;
    }
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let bucket = path.strip_prefix('/')?;
    (!bucket.is_empty() && !bucket.contains('/')).then(|| (bucket.to_owned(), query.to_owned()))
}

/// The Log Archive bucket seen from another account, as S3 answers
/// (s3 model):
///
/// * `GetBucketLocation` (`GET /<bucket>?location`) from an account that
///   does not own the bucket is answered `AccessDenied`: "In a bucket's home
///   Region, calls to the GetBucketLocation operation are governed by the
///   bucket's policy. In other Regions, the bucket policy doesn't apply,
///   which means that cross-account access won't be authorized" (shape
///   `GetBucketLocation`). No bucket policy of the landing zone grants it.
/// * `HeadBucket` (`HEAD /<bucket>`) from such an account is answered 403
///   with no body, and with the bucket's Region in `x-amz-bucket-region`:
///   "regardless of the permissions on the bucket, you will receive a
///   response header with the correct bucket location" (shape `HeadBucket`).
///   The request goes to moto, which answers 200 with the header; the
///   answer becomes a 403 with the same header.
///
/// Owners come from the [`World`]; a bucket it does not know goes to moto.
pub fn s3_bucket_region_across_accounts(world: World) -> impl Rule {
    BucketAcrossAccounts { world }
}

struct BucketAcrossAccounts {
    world: World,
}

impl BucketAcrossAccounts {
    /// The bucket a request names, when the requester does not own it.
    fn foreign_bucket(&self, request: &Request, traffic: &Traffic) -> Option<(String, String)> {
        let (bucket, query) = s3_target(request)?;
        let owner = self.world.facts().buckets.get(&bucket)?.0.clone();
        (owner != self.world.account(request, traffic)).then_some((bucket, query))
    }
}

impl Rule for BucketAcrossAccounts {
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision {
        let Some((_, query)) = self.foreign_bucket(request, traffic) else {
            return Decision::Forward;
        };
        let location = query
            .split('&')
            .any(|p| p == "location" || p == "location=");
        if request.method == "GET" && location {
            return Decision::Respond(s3_error(403, "AccessDenied", "Access Denied"));
        }
        Decision::Forward
    }

    fn rewrite(&self, request: &Request, mut response: Response, traffic: &Traffic) -> Response {
        if request.method != "HEAD" || response.status != 200 {
            return response;
        }
        let Some((_, query)) = self.foreign_bucket(request, traffic) else {
            return response;
        };
        if !query.is_empty() {
            return response;
        }
        response.status = 403;
        response.body.clear();
        response
    }
}

/// An S3 REST error answer: `status`, `Content-Type: application/xml` and
/// an `<Error>` document.
pub fn s3_error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".to_owned(), "application/xml".to_owned())],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>TRAILKEYLAYER</RequestId></Error>"
        )
        .into_bytes(),
    }
}

/// `GetBucketReplication` answers the rules as they were put, each with its
/// `Filter` and `SourceSelectionCriteria`
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketReplication.html>);
/// moto 5.2.5 drops `SourceSelectionCriteria` and the filter's prefix, so
/// every rule looks as if it did not replicate KMS-encrypted objects. A
/// successful `GetBucketReplication` is answered with the body of the
/// bucket's last successful `PutBucketReplication` in the traffic, unless a
/// `DeleteBucketReplication` came after it. A configuration put around the
/// proxy is left as moto answers it.
pub fn s3_replication_as_put() -> impl Rule {
    ReplicationAsPut
}

struct ReplicationAsPut;

impl Rule for ReplicationAsPut {
    fn decide(&self, _: &Request, _: &Traffic) -> Decision {
        Decision::Forward
    }

    fn rewrite(&self, request: &Request, response: Response, traffic: &Traffic) -> Response {
        if request.service != "s3" || request.method != "GET" || response.status != 200 {
            return response;
        }
        let Some(bucket) = replication_of(&request.target) else {
            return response;
        };
        let last = traffic.exchanges.iter().rev().find(|e| {
            matches!(e.request.method.as_str(), "PUT" | "DELETE")
                && (200..300).contains(&e.response.status)
                && replication_of(&e.request.target) == Some(bucket)
        });
        match last {
            Some(put) if put.request.method == "PUT" => Response {
                body: put.request.body.clone(),
                ..response
            },
            _ => response,
        }
    }
}

/// The bucket of a path-style `/<bucket>?replication` request target (the
/// AWS SDK for Rust sends `/<bucket>/?replication`).
fn replication_of(target: &str) -> Option<&str> {
    let (path, query) = target.split_once('?')?;
    let bucket = path.strip_prefix('/')?;
    let bucket = bucket.strip_suffix('/').unwrap_or(bucket);
    let replication = query
        .split('&')
        .any(|p| p == "replication" || p == "replication=");
    (replication && !bucket.is_empty() && !bucket.contains('/')).then_some(bucket)
}

/// Whether bucket `bucket` uses an S3 Bucket Key, as the traffic last
/// showed its default encryption (`/<bucket>?encryption`): the first
/// `BucketKeyEnabled` (its first rule's) of a successful
/// `PutBucketEncryption` request or of a `GetBucketEncryption` answer;
/// after a successful `DeleteBucketEncryption`, or a `GetBucketEncryption`
/// answered `ServerSideEncryptionConfigurationNotFoundError`, none. A bucket
/// the traffic says nothing about has none.
pub(super) fn bucket_key_enabled(bucket: &str, traffic: &Traffic) -> bool {
    let enabled =
        |xml: &[u8]| xml_text(&String::from_utf8_lossy(xml), "BucketKeyEnabled") == Some("true");
    let mut bucket_key = false;
    for e in traffic
        .exchanges
        .iter()
        .filter(|e| e.request.service == "s3" && encryption_of(&e.request.target) == Some(bucket))
    {
        let ok = (200..300).contains(&e.response.status);
        bucket_key = match e.request.method.as_str() {
            "PUT" if ok => enabled(&e.request.body),
            "DELETE" if ok => false,
            "GET" if ok => enabled(&e.response.body),
            "GET"
                if e.response_text()
                    .contains("<Code>ServerSideEncryptionConfigurationNotFoundError</Code>") =>
            {
                false
            }
            _ => continue,
        };
    }
    bucket_key
}

/// The bucket of a path-style `/<bucket>?encryption` request target, with
/// or without a `/` after the bucket.
fn encryption_of(target: &str) -> Option<&str> {
    let (path, query) = target.split_once('?')?;
    let bucket = path.strip_prefix('/')?;
    let bucket = bucket.strip_suffix('/').unwrap_or(bucket);
    let encryption = query
        .split('&')
        .any(|p| p == "encryption" || p == "encryption=");
    (encryption && !bucket.is_empty() && !bucket.contains('/')).then_some(bucket)
}
