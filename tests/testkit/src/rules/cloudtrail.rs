//! CloudTrail where moto 5.2.5 is lenient or missing: `DescribeTrails` by
//! name, a key in the bucket's Region, conflicts, the key policy check of
//! `UpdateTrail`, custom event selectors, and CloudTrail Lake's event data
//! stores.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::iam_sts::{account_of, is_account};
use super::kms::{KeyName, key_id_of, set_aliases};
use super::kms_policy::policy_seen_by_cloudtrail;
use super::s3::bucket_key_enabled;
use super::world::{EventDataStore, TrailsBusy, World};
use super::{
    AWS_JSON_1_1, error_code, json_answer, json_body, json_error, page, response_json,
    signing_region,
};
use crate::cloudtrail_policy::{Bucket, cloudtrail_accepts};
use crate::proxy::{Decision, Request, Response, Rule, Traffic};

/// `DescribeTrails` with a `trailNameList` returns only the trails it
/// names, by name or ARN; moto 5.2.5 ignores the list and returns every
/// trail. "trailNameList: Specifies a list of trail names, trail ARNs, or
/// both, of the trails to describe"
/// (<https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DescribeTrails.html>).
/// The request goes to moto; its answer's `trailList` is filtered.
pub fn describe_trails_honours_names() -> impl Rule {
    DescribeTrailsHonoursNames
}

struct DescribeTrailsHonoursNames;

impl Rule for DescribeTrailsHonoursNames {
    fn decide(&self, _: &Request, _: &Traffic) -> Decision {
        Decision::Forward
    }

    fn rewrite(&self, request: &Request, response: Response, _: &Traffic) -> Response {
        if !request.is("cloudtrail", "DescribeTrails") || response.status != 200 {
            return response;
        }
        let names: Vec<String> = json_body(request)
            .get("trailNameList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        if names.is_empty() {
            return response;
        }
        let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        let named = |t: &Value| {
            ["Name", "TrailARN"].iter().any(|f| {
                t.get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|v| names.iter().any(|n| n == v))
            })
        };
        if let Some(trails) = answer.get_mut("trailList").and_then(Value::as_array_mut) {
            trails.retain(named);
        }
        Response {
            body: answer.to_string().into_bytes(),
            ..response
        }
    }
}

/// `UpdateTrail` naming a key in another Region than the trail's bucket is
/// answered `KmsKeyNotFoundException`: "This exception is thrown when the
/// KMS key does not exist, when the S3 bucket and the KMS key are not in
/// the same Region, ..." (cloudtrail model, shape
/// `KmsKeyNotFoundException`). moto 5.2.5 accepts any key. The key's Region
/// is its ARN's (a key ID or alias is in the request's Region); the trail's
/// bucket and the bucket's Region come from the [`World`]. A trail or bucket
/// it does not know goes to moto.
pub fn cloudtrail_key_in_the_buckets_region(world: World) -> impl Rule {
    move |request: &Request, _: &Traffic| {
        if !request.is("cloudtrail", "UpdateTrail") {
            return Decision::Forward;
        }
        let body = json_body(request);
        let (Some(name), Some(key)) = (
            body.get("Name").and_then(Value::as_str),
            body.get("KmsKeyId").and_then(Value::as_str),
        ) else {
            return Decision::Forward;
        };
        let key_region = match key.strip_prefix("arn:") {
            Some(arn) => arn.split(':').nth(2).unwrap_or_default().to_owned(),
            None => signing_region(request).unwrap_or_default(),
        };
        let facts = world.facts();
        let bucket_region = facts
            .trails
            .iter()
            .find(|(arn, _)| *arn == name || arn.rsplit('/').next() == Some(name))
            .and_then(|(_, bucket)| facts.buckets.get(bucket))
            .map(|(_, region)| region.clone());
        match bucket_region {
            Some(region) if !key.is_empty() && region != key_region => {
                Decision::Respond(json_error(
                    "KmsKeyNotFoundException",
                    &format!("KMS key not found: {key}"),
                ))
            }
            _ => Decision::Forward,
        }
    }
}

/// `UpdateTrail` while another change to the trail is under way (the
/// [`World`] says until when: [`World::trail_change_under_way`], or
/// [`World::trail_change_met_for`], as the traffic tells) is
/// answered `ConflictException`: "This exception is thrown when the
/// specified resource is not ready for an operation. This can occur when
/// you try to run an operation on a resource before CloudTrail has time to
/// fully load the resource, or because another operation is modifying the
/// resource. If this exception occurs, wait a few minutes, and then try the
/// operation again." (cloudtrail model, shape `ConflictException`, listed
/// by `UpdateTrail`). moto never answers it.
pub fn cloudtrail_conflicts(world: World) -> impl Rule {
    move |request: &Request, traffic: &Traffic| {
        let now = Instant::now();
        let busy = match world.facts().trails_busy {
            None => false,
            Some(TrailsBusy::Until(until)) => now < until,
            Some(TrailsBusy::AfterFirstConflict { since, how_long }) => traffic
                .exchanges
                .iter()
                .find(|e| {
                    e.is("cloudtrail", "UpdateTrail")
                        && !e.forwarded
                        && e.at >= since
                        && error_code(&e.response).as_deref() == Some("ConflictException")
                })
                .is_none_or(|first| now < first.at + how_long),
        };
        if request.is("cloudtrail", "UpdateTrail") && busy {
            Decision::Respond(json_error(
                "ConflictException",
                "You tried to update a resource while another operation is modifying it. Wait a few minutes, and then try the operation again.",
            ))
        } else {
            Decision::Forward
        }
    }
}

/// `UpdateTrail` with a KMS key whose policy does not let CloudTrail use the
/// key for that trail is answered `InsufficientEncryptionPolicyException`
/// ("This exception is thrown when the policy on the S3 bucket or KMS key
/// does not have sufficient permissions for the operation",
/// <https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_UpdateTrail.html>);
/// moto 5.2.5 accepts any key. What CloudTrail needs is
/// [`cloudtrail_accepts`] (`cloudtrail_policy.rs`, which cites the
/// CloudTrail and IAM pages it follows).
///
/// * The key: `KmsKeyId` by key ID or ARN, or by alias name or ARN as the
///   traffic's successful `CreateAlias`/`UpdateAlias` set it (in the
///   alias ARN's account, else the caller's, else any account's) or as a
///   `DescribeKey` answer for that name showed it.
/// * Its policy: the one the traffic last wrote, from the request body of
///   a successful `CreateKey` (without `Policy`: KMS's default key policy,
///   which gives CloudTrail nothing) or `PutKeyPolicy`. The rule does not
///   ask moto: a key the traffic never wrote a policy for goes to moto
///   unchecked, and so would a policy written around the proxy.
/// * Key policy changes propagate like other KMS changes ("AWS KMS
///   eventual consistency", see [`kms_propagation`]): for `window` after a
///   successful `PutKeyPolicy`, CloudTrail still evaluates the key's
///   previous policy.
/// * The trail: `Name` if it is an ARN; else the `TrailARN` of the trail
///   of that name in a `DescribeTrails` or `GetTrail` answer; else
///   `arn:aws:cloudtrail:<Region of the signing scope>:<caller's
///   account>:trail/<name>` when the caller's account is known (an
///   assumed role's). Otherwise the request goes to moto unchecked. The
///   trail's account is the organization's management account, and its
///   partition the partition of the check.
/// * The trail's bucket: the request's `S3BucketName`, else the
///   `S3BucketName` of the trail (by ARN) in the last `DescribeTrails` or
///   `GetTrail` answer that shows it. When the traffic shows that bucket
///   with an S3 Bucket Key (see [`bucket_key_enabled`]), CloudTrail needs
///   `kms:Decrypt` too, with no encryption context ([`Bucket::BucketKey`]);
///   a bucket the traffic says nothing about is taken to have none.
pub fn cloudtrail_key_policy_check(window: Duration) -> impl Rule {
    CloudTrailKeyPolicyCheck { window }
}

struct CloudTrailKeyPolicyCheck {
    window: Duration,
}

impl Rule for CloudTrailKeyPolicyCheck {
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision {
        if !request.is("cloudtrail", "UpdateTrail") {
            return Decision::Forward;
        }
        let body = json_body(request);
        let Some(named) = body
            .get("KmsKeyId")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
        else {
            return Decision::Forward;
        };
        let Some(trail) = body.get("Name").and_then(Value::as_str) else {
            return Decision::Forward;
        };
        let Some(trail_arn) = trail_arn_of(trail, request, traffic) else {
            return Decision::Forward;
        };
        let parts: Vec<&str> = trail_arn.split(':').collect();
        let (Some(partition), Some(management)) = (parts.get(1), parts.get(4)) else {
            return Decision::Forward;
        };
        let account = account_of(request, traffic);
        let Some(key_id) = trail_key_id(named, &account, traffic) else {
            return Decision::Forward;
        };
        let Some(policy) = policy_seen_by_cloudtrail(&key_id, traffic, self.window) else {
            return Decision::Forward;
        };
        let bucket = match trail_bucket(&body, &trail_arn, traffic) {
            Some(name) if bucket_key_enabled(&name, traffic) => Bucket::BucketKey,
            _ => Bucket::Plain,
        };
        match cloudtrail_accepts(&policy, &trail_arn, management, partition, bucket) {
            Ok(()) => Decision::Forward,
            Err(why) => Decision::Respond(json_error(
                "InsufficientEncryptionPolicyException",
                &format!("Insufficient permissions to use KMS key {named} for {trail_arn}: {why}"),
            )),
        }
    }
}

/// The bucket the trail `trail_arn` of an `UpdateTrail` (its request body
/// `body`) writes to (see [`cloudtrail_key_policy_check`]).
fn trail_bucket(body: &Value, trail_arn: &str, traffic: &Traffic) -> Option<String> {
    if let Some(name) = body.get("S3BucketName").and_then(Value::as_str) {
        return Some(name.to_owned());
    }
    described_trail_field(traffic, ("TrailARN", trail_arn), "S3BucketName")
}

/// Field `wanted` of the trail whose field `by.0` is `by.1`, in the latest
/// `DescribeTrails` or `GetTrail` answer that shows such a trail.
fn described_trail_field(traffic: &Traffic, by: (&str, &str), wanted: &str) -> Option<String> {
    traffic
        .exchanges
        .iter()
        .rev()
        .filter(|e| {
            (e.is("cloudtrail", "DescribeTrails") || e.is("cloudtrail", "GetTrail"))
                && e.response.status == 200
        })
        .find_map(|e| {
            let answer = response_json(e);
            let trails = match answer.get("Trail") {
                Some(one) => vec![one.clone()],
                None => answer.get("trailList")?.as_array()?.clone(),
            };
            trails
                .iter()
                .find(|t| t.get(by.0).and_then(Value::as_str) == Some(by.1))
                .and_then(|t| t.get(wanted)?.as_str().map(str::to_owned))
        })
}

/// The ARN of the trail an `UpdateTrail` names (see
/// [`cloudtrail_key_policy_check`]).
fn trail_arn_of(name: &str, request: &Request, traffic: &Traffic) -> Option<String> {
    if name.starts_with("arn:") {
        return Some(name.to_owned());
    }
    let described = described_trail_field(traffic, ("Name", name), "TrailARN");
    if described.is_some() {
        return described;
    }
    let account = account_of(request, traffic);
    if !is_account(&account) {
        return None;
    }
    let region = request
        .header("authorization")?
        .split("Credential=")
        .nth(1)?
        .split('/')
        .nth(2)?
        .to_owned();
    Some(format!(
        "arn:aws:cloudtrail:{region}:{account}:trail/{name}"
    ))
}

/// The key ID an `UpdateTrail`'s `KmsKeyId` stands for, if the traffic
/// tells (see [`cloudtrail_key_policy_check`]).
fn trail_key_id(named: &str, account: &str, traffic: &Traffic) -> Option<String> {
    let KeyName::Alias {
        name,
        account: in_arn,
    } = KeyName::parse(named)
    else {
        return Some(key_id_of(named));
    };
    let aliases = set_aliases(traffic);
    let set = |account: Option<&str>| {
        aliases
            .iter()
            .rev()
            .find(|a| a.name == name && account.is_none_or(|x| a.account == x))
            .map(|a| a.target.clone())
    };
    let from_aliases = match in_arn {
        Some(owner) => set(Some(owner)),
        None => set(Some(account)).or_else(|| set(None)),
    };
    from_aliases.or_else(|| {
        traffic
            .exchanges
            .iter()
            .rev()
            .filter(|e| e.is("kms", "DescribeKey") && e.response.status == 200)
            .filter(|e| json_body(&e.request).get("KeyId").and_then(Value::as_str) == Some(named))
            .find_map(|e| {
                Some(
                    response_json(e)
                        .get("KeyMetadata")?
                        .get("KeyId")?
                        .as_str()?
                        .to_owned(),
                )
            })
    })
}

/// CloudTrail Lake, which moto 5.2.5 does not have, answered from the
/// [`World`]'s event data stores ([`World::event_data_store`]), each in the
/// account and Region of its ARN, as CloudTrail does (cloudtrail model;
/// <https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_ListEventDataStores.html>,
/// <https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetEventDataStore.html>):
///
/// * `ListEventDataStores` answers the stores of the caller's account in
///   the signing Region, `EventDataStoreArn`, `Name` and `Status` each:
///   the list shape (`EventDataStore`) has no `KmsKeyId`. `MaxResults` is 1
///   to 1000, else `InvalidMaxResultsException`; without it the layer
///   pages by 2 (AWS does not document its default); a `NextToken` the
///   layer did not give is `InvalidNextTokenException`.
/// * `GetEventDataStore` names a store by ARN or by the ID at the end of
///   its ARN, and answers its `EventDataStoreArn`, `Name`, `Status` and, if
///   it has one, `KmsKeyId` (a key ARN, "in the following format" of the
///   model). An ARN that is not an event data store ARN is
///   `EventDataStoreARNInvalidException`; no such store in the caller's
///   account and Region is `EventDataStoreNotFoundException` ("The
///   specified event data store was not found.").
///
/// The layer records both ([`World::answered`]).
pub fn cloudtrail_lake(world: World) -> impl Rule {
    move |request: &Request, traffic: &Traffic| {
        let list = request.is("cloudtrail", "ListEventDataStores");
        if !list && !request.is("cloudtrail", "GetEventDataStore") {
            return Decision::Forward;
        }
        world.answering(request);
        let account = world.account(request, traffic);
        let region = signing_region(request).unwrap_or_default();
        let here: Vec<EventDataStore> = world
            .facts()
            .event_data_stores
            .iter()
            .filter(|s| {
                let parts: Vec<&str> = s.arn.split(':').collect();
                parts.get(3) == Some(&region.as_str()) && parts.get(4) == Some(&account.as_str())
            })
            .cloned()
            .collect();
        let body = json_body(request);
        if list {
            let size = match body.get("MaxResults").map(Value::as_u64) {
                None => 2,
                Some(Some(n)) if (1..=1000).contains(&n) => n as usize,
                Some(_) => {
                    return Decision::Respond(json_error(
                        "InvalidMaxResultsException",
                        "MaxResults must be between 1 and 1000",
                    ));
                }
            };
            let token = body.get("NextToken").and_then(Value::as_str);
            let Some((stores, next)) = page(&here, token, size) else {
                return Decision::Respond(json_error(
                    "InvalidNextTokenException",
                    "A token that is not valid was provided.",
                ));
            };
            let stores: Vec<Value> = stores
                .iter()
                .map(|s| json!({"EventDataStoreArn": s.arn, "Name": s.name, "Status": s.status}))
                .collect();
            let mut answer = json!({ "EventDataStores": stores });
            if let Some(next) = next {
                answer["NextToken"] = json!(next);
            }
            return Decision::Respond(json_answer(AWS_JSON_1_1, answer));
        }
        let named = body
            .get("EventDataStore")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if named.starts_with("arn:")
            && !named
                .split(':')
                .nth(5)
                .is_some_and(|r| r.starts_with("eventdatastore/"))
        {
            return Decision::Respond(json_error(
                "EventDataStoreARNInvalidException",
                "The specified event data store ARN is not valid or does not map to an event data store in your account.",
            ));
        }
        let Some(store) = here
            .iter()
            .find(|s| s.arn == named || s.arn.rsplit('/').next() == Some(named))
        else {
            return Decision::Respond(json_error(
                "EventDataStoreNotFoundException",
                "The specified event data store was not found.",
            ));
        };
        let mut answer = json!({
            "EventDataStoreArn": store.arn,
            "Name": store.name,
            "Status": store.status,
            "MultiRegionEnabled": true,
            "OrganizationEnabled": false,
            "RetentionPeriod": 2557,
            "TerminationProtectionEnabled": true,
        });
        if let Some(key) = &store.kms_key_id {
            answer["KmsKeyId"] = json!(key);
        }
        Decision::Respond(json_answer(AWS_JSON_1_1, answer))
    }
}

/// `HasCustomEventSelectors`, which moto 5.2.5 always answers `false`, and
/// the default event selectors, which its `GetEventSelectors` answers as
/// none. As AWS has it: "By default, trails created without specific event
/// selectors will be configured to log all read and write management
/// events, and no data events" (`EventSelector`, CloudTrail API Reference),
/// and a trail's `HasCustomEventSelectors` ("Specifies if the trail has
/// custom event selectors", `Trail` in the cloudtrail model) is true once
/// `PutEventSelectors` gave it selectors of its own.
///
/// The trails with selectors of their own are kept in the [`World`]: each
/// successful `PutEventSelectors` through the layer adds its trail, and so
/// does the fixture's `drift selectors-*` ([`World::learn`]). `GetTrail`
/// and `DescribeTrails` answers say `HasCustomEventSelectors` for them;
/// `GetEventSelectors` of any other trail answers the default selector.
pub fn cloudtrail_custom_event_selectors(world: World) -> impl Rule {
    CustomEventSelectors { world }
}

struct CustomEventSelectors {
    world: World,
}

impl Rule for CustomEventSelectors {
    fn decide(&self, _: &Request, _: &Traffic) -> Decision {
        Decision::Forward
    }

    fn rewrite(&self, request: &Request, response: Response, _: &Traffic) -> Response {
        if request.service != "cloudtrail" || response.status != 200 {
            return response;
        }
        let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        let custom = |t: &mut Value| {
            let arn = t
                .get("TrailARN")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let has = self.world.has_custom_event_selectors(arn);
            if let Some(t) = t.as_object_mut() {
                t.insert("HasCustomEventSelectors".to_owned(), Value::Bool(has));
            }
        };
        match request.action.as_str() {
            "PutEventSelectors" => {
                if let Some(arn) = answer.get("TrailARN").and_then(Value::as_str) {
                    self.world.custom_event_selectors(arn);
                }
                return response;
            }
            "GetTrail" => match answer.get_mut("Trail") {
                Some(t) => custom(t),
                None => return response,
            },
            "DescribeTrails" => match answer.get_mut("trailList").and_then(Value::as_array_mut) {
                Some(trails) => trails.iter_mut().for_each(custom),
                None => return response,
            },
            "GetEventSelectors" => {
                let arn = answer
                    .get("TrailARN")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let none = |field: &str| {
                    answer
                        .get(field)
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty)
                };
                if self.world.has_custom_event_selectors(arn)
                    || !none("EventSelectors")
                    || !none("AdvancedEventSelectors")
                {
                    return response;
                }
                answer["EventSelectors"] = json!([{
                    "ReadWriteType": "All",
                    "IncludeManagementEvents": true,
                    "DataResources": [],
                    "ExcludeManagementEventSources": []
                }]);
            }
            _ => return response,
        }
        Response {
            body: answer.to_string().into_bytes(),
            ..response
        }
    }
}
