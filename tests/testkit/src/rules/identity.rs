//! IAM's identity-based policies, which moto 5.2.5 does not evaluate
//! (it allows every request): the permissions policies a test attaches to
//! a role ([`World::attach_identity_policy`]) decide what the role's
//! sessions may call, through the layer.
//!
//! For a request signed by a session of such a role (as the
//! `sts:AssumeRole` answer in the traffic that gave its access key shows
//! it), the rule names what IAM authorizes, one action on one resource
//! each ([`authorizations`]), and asks [`identity_policy::evaluate`] about
//! each with the role's policies. Where one is not allowed (no statement
//! allows it, or a `Deny` applies), the request is answered
//! `AccessDenied` as the service words it, `User: <session ARN> is not
//! authorized to perform: <action> on resource: <resource> because no
//! identity-based policy allows the <action> action` (or `with an explicit
//! deny in an identity-based policy`), and the layer notes the denial
//! ([`World::identity_denials`]). A request of a role with no policy
//! attached, or of the default credentials, goes on as before: moto allows
//! it. The fixture's own requests are checked too when it signs them with
//! such a role (`Moto::calls_as_role` through the layer).
//!
//! `sts:GetCallerIdentity` is never refused: "No permissions are required to
//! perform this operation. If an administrator attaches a policy to your
//! identity that explicitly denies access to the sts:GetCallerIdentity
//! action, you can still perform this operation" (sts model).
//!
//! **Cross-account requests.** A resource of another account is named by
//! its own ARN (the management account's organization trail, to the
//! Security Tooling account's role), and the identity policy must allow
//! that ARN; AWS then also requires the resource's owner to allow the
//! request ("Cross-account policy evaluation logic", IAM User Guide). That
//! second part is left to the rules after this one, which already answer
//! for the owner: CloudTrail's delegation for the management account's
//! organization trails ([`cloudtrail_delegated_administrator`](super::cloudtrail_delegated_administrator)),
//! Organizations' for its data, a key policy's explicit and implicit
//! denies ([`kms_key_policy_denies`](super::kms_key_policy_denies)), the
//! Log Archive bucket seen from another account
//! ([`s3_bucket_region_across_accounts`](super::s3_bucket_region_across_accounts)).
//! A bucket policy's grants and a role's trust policy are not evaluated
//! (moto allows every `AssumeRole`). This rule comes first in
//! [`real_aws`](super::real_aws): IAM authorizes a request before the
//! service looks at what it names, so a trail named by a name the caller's
//! account has no trail of is refused here, for the ARN in the caller's
//! own account, before CloudTrail answers `TrailNotFoundException`.
//!
//! **Resources** (Service Authorization Reference, and the services'
//! guides where they say more):
//!
//! * KMS: a key named by ID is the key ARN in the caller's account and the
//!   request's Region; by alias, the key the alias names (moto is asked,
//!   with the caller's access key: an alias it does not know goes on to the
//!   service, which answers `NotFoundException`). `CreateAlias` is checked
//!   on the alias and on its target key, `UpdateAlias` on the alias, the
//!   new target and the key the alias names now, `DeleteAlias` on the alias
//!   and its key ("Controlling access to aliases", AWS KMS Developer
//!   Guide). `CreateKey`, `ListKeys` and `ListAliases` are on `*`;
//!   `CreateKey` with `Tags` also needs `kms:TagResource` on a key not
//!   created yet, which only a pattern covering every key of the account
//!   and Region matches: "the permission must cover all KMS keys in the
//!   account and Region" ("Managing KMS key tags with API operations").
//! * CloudTrail: a trail named by ARN is that ARN, by name the trail of
//!   that name in the caller's account and the request's Region;
//!   `ListTags` is checked on each trail it names; `GetEventDataStore` on
//!   the event data store; `DescribeTrails`, `ListTrails` and
//!   `ListEventDataStores` on `*`.
//! * Organizations: `DescribeOrganization`, `ListAccounts` and
//!   `ListDelegatedAdministrators` on `*`.
//! * S3, by method and sub-resource of a path-style request: `HeadBucket`
//!   is `s3:ListBucket`, `?policy` `s3:GetBucketPolicy`, `?encryption`
//!   `s3:GetEncryptionConfiguration`, `?replication`
//!   `s3:GetReplicationConfiguration`, `?location` `s3:GetBucketLocation`,
//!   each on the bucket's ARN.
//! * STS: `AssumeRole` on the `RoleArn`.
//! * The Account Management API's `ListRegions` (without `AccountId`) on
//!   the caller's own account; Control Tower's `GetLandingZone` and
//!   `UpdateLandingZone` on the landing zone's ARN, its lists and
//!   `GetLandingZoneOperation` on `*`.
//!
//! Any other request from such a role is refused, with a message that says
//! the layer cannot authorize it: a role under this rule does only what
//! the rule knows how to check.
//!
//! **Condition keys**: `aws:PrincipalArn` and `aws:PrincipalAccount`;
//! `aws:RequestTag/<key>` of `CreateKey` and `TagResource` (the request's
//! tags, and no other); `kms:KeySpec`, `kms:KeyUsage`, `kms:KeyOrigin`,
//! `kms:MultiRegion` of `CreateKey` and `kms:BypassPolicyLockoutSafetyCheck`
//! of `CreateKey` and `PutKeyPolicy`, as the request sets them (absent
//! when it does not); `aws:ResourceTag/<key>` of a request on a key, the
//! key's tags as moto holds them, read only when a policy of the role names
//! `aws:ResourceTag`. Any other key is not understood, so a statement that
//! needs it never allows (and a `Deny` that does applies).

use serde_json::{Value, json};

use super::delegated::{USER_AGENT, access_key};
use super::iam_sts::{Session, form_value, session_of};
use super::s3::s3_error;
use super::world::{IdentityDenial, World};
use super::{json_body, json_error, moto_call, rest_json_error, signing_region};
use crate::identity_policy::{self, Request as Authorization};
use crate::key_policy::Decision as Verdict;
use crate::proxy::{Decision, Request, Response, Rule, Traffic};

/// Enforces the identity policies the [`World`] has for a role on the
/// requests of its sessions (see the module's notes).
pub fn iam_identity_policies(world: World) -> impl Rule {
    IdentityPolicies { world }
}

struct IdentityPolicies {
    world: World,
}

impl Rule for IdentityPolicies {
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision {
        if request.is("sts", "GetCallerIdentity") || !self.world.has_identity_policies() {
            return Decision::Forward;
        }
        let Some(session) = session_of(request, traffic) else {
            return Decision::Forward;
        };
        let Some(policies) = self.world.identity_policies(&session.role_arn) else {
            return Decision::Forward;
        };
        let moto = self.world.facts().moto.clone();
        let tags_matter = policies.iter().any(|p| {
            p.to_string()
                .to_ascii_lowercase()
                .contains("aws:resourcetag")
        });
        let ask = Asker {
            request,
            session: &session,
            moto: moto.as_deref(),
            tags_matter,
        };
        let needed = match authorizations(&ask) {
            Ok(Some(needed)) => needed,
            Ok(None) => return Decision::Forward,
            Err(why) => {
                let message = format!(
                    "the test layer cannot authorize {}:{} for {}: {why}",
                    request.service, request.action, session.arn
                );
                self.world.note_identity_denial(IdentityDenial {
                    principal: session.arn.clone(),
                    action: format!("{}:{}", request.service, request.action),
                    resource: String::new(),
                    statement: None,
                    message: message.clone(),
                });
                return Decision::Respond(access_denied(request, &message, None));
            }
        };
        for one in needed {
            let verdict = identity_policy::evaluate(&policies, &one);
            let statement = match verdict {
                Verdict::Allowed => continue,
                Verdict::ExplicitlyDenied { statement } => Some(statement),
                Verdict::NotAllowed => None,
            };
            let why = match &statement {
                Some(_) => "with an explicit deny in an identity-based policy".to_owned(),
                None => format!(
                    "because no identity-based policy allows the {} action",
                    one.action
                ),
            };
            let message = format!(
                "User: {} is not authorized to perform: {} on resource: {} {why}",
                session.arn, one.action, one.resource
            );
            self.world.note_identity_denial(IdentityDenial {
                principal: session.arn.clone(),
                action: one.action.clone(),
                resource: one.resource.clone(),
                statement,
                message: message.clone(),
            });
            let bucket_region = if request.service == "s3" {
                bucket_of(request).and_then(|b| self.world.facts().buckets.get(&b).cloned())
            } else {
                None
            };
            return Decision::Respond(access_denied(
                request,
                &message,
                bucket_region.map(|(_, region)| region),
            ));
        }
        Decision::Forward
    }
}

/// What the rule knows of a request while it names its authorizations.
struct Asker<'a> {
    request: &'a Request,
    session: &'a Session,
    moto: Option<&'a str>,
    /// Whether a policy of the role names `aws:ResourceTag`: only then are
    /// a key's tags read.
    tags_matter: bool,
}

impl Asker<'_> {
    fn partition(&self) -> &str {
        self.session.role_arn.split(':').nth(1).unwrap_or("aws")
    }

    fn region(&self) -> String {
        signing_region(self.request).unwrap_or_default()
    }

    /// `action` on `resource`, with no condition key of the request's own.
    fn on(&self, action: &str, resource: &str) -> Authorization {
        let mut one = Authorization::new(&self.session.role_arn, action, resource);
        one.account = self.session.account.clone();
        one
    }

    /// A KMS call of the rule's own to moto, signed by the caller's access
    /// key (moto takes the account from it).
    fn kms(&self, operation: &str, body: &Value) -> Result<Value, (String, String)> {
        let moto = self.moto.ok_or_else(|| {
            (
                "NoMoto".to_owned(),
                "the moto endpoint is not known".to_owned(),
            )
        })?;
        moto_call(
            moto,
            &access_key(self.request),
            USER_AGENT,
            ("kms", &self.region(), &format!("TrentService.{operation}")),
            body,
        )
    }

    /// The ARN of the key `key_id` names (an ID, a key ARN, an alias name
    /// or alias ARN); `None` for an alias moto does not know.
    fn key_arn(&self, key_id: &str) -> Result<Option<String>, String> {
        let is_alias = key_id.starts_with("alias/") || key_id.contains(":alias/");
        if key_id.starts_with("arn:") && !is_alias {
            return Ok(Some(key_id.to_owned()));
        }
        if !is_alias {
            return Ok(Some(format!(
                "arn:{}:kms:{}:{}:key/{key_id}",
                self.partition(),
                self.region(),
                self.session.account
            )));
        }
        match self.kms("DescribeKey", &json!({ "KeyId": key_id })) {
            Ok(answer) => answer["KeyMetadata"]["Arn"]
                .as_str()
                .map(|a| Some(a.to_owned()))
                .ok_or_else(|| format!("DescribeKey of {key_id} gave no key ARN")),
            Err((code, _)) if code == "NotFoundException" => Ok(None),
            Err((code, message)) => Err(format!("DescribeKey of {key_id}: {code}: {message}")),
        }
    }

    /// The alias ARN of alias name `alias` (`alias/...`) in the caller's
    /// account and the request's Region.
    fn alias_arn(&self, alias: &str) -> String {
        if alias.starts_with("arn:") {
            return alias.to_owned();
        }
        format!(
            "arn:{}:kms:{}:{}:{alias}",
            self.partition(),
            self.region(),
            self.session.account
        )
    }

    /// `action` on key `arn`, with the key's tags as `aws:ResourceTag/...`
    /// when they matter.
    fn on_key(&self, action: &str, arn: &str) -> Authorization {
        let mut one = self.on(action, arn);
        if self.tags_matter
            && let Ok(answer) = self.kms("ListResourceTags", &json!({ "KeyId": arn }))
        {
            for tag in answer["Tags"].as_array().into_iter().flatten() {
                if let (Some(k), Some(v)) = (tag["TagKey"].as_str(), tag["TagValue"].as_str()) {
                    one.context
                        .push((format!("aws:ResourceTag/{k}"), v.to_owned()));
                }
            }
            one.absent.push("aws:ResourceTag/".to_owned());
        }
        one
    }
}

/// The request's tags (`Tags`: `TagKey`, `TagValue`) as
/// `aws:RequestTag/...` keys of `one`, which then has no other.
fn request_tags(one: &mut Authorization, body: &Value) {
    for tag in body["Tags"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (tag["TagKey"].as_str(), tag["TagValue"].as_str()) {
            one.context
                .push((format!("aws:RequestTag/{k}"), v.to_owned()));
        }
    }
    one.absent.push("aws:RequestTag/".to_owned());
}

/// The KMS condition key `key` from the body's member `member` (a string
/// or a boolean), or absent.
fn kms_key(one: &mut Authorization, body: &Value, member: &str, key: &str) {
    match &body[member] {
        Value::String(s) => one.context.push((key.to_owned(), s.clone())),
        Value::Bool(b) => one.context.push((key.to_owned(), b.to_string())),
        _ => one.absent.push(key.to_owned()),
    }
}

/// What IAM authorizes for the request, one action on one resource each;
/// `Ok(None)` for a request the service refuses before IAM is asked (an
/// alias it does not know); `Err` for one the rule cannot map.
fn authorizations(ask: &Asker<'_>) -> Result<Option<Vec<Authorization>>, String> {
    let request = ask.request;
    let action = format!("{}:{}", request.service, request.action);
    let body = json_body(request);
    let text = |member: &str| body[member].as_str().map(str::to_owned);
    let one = |resource: &str| Ok(Some(vec![ask.on(&action, resource)]));
    match request.service.as_str() {
        "kms" => kms_authorizations(ask, &action, &body),
        "cloudtrail" => {
            let trail = |name: &str| {
                if name.starts_with("arn:") {
                    name.to_owned()
                } else {
                    format!(
                        "arn:{}:cloudtrail:{}:{}:trail/{name}",
                        ask.partition(),
                        ask.region(),
                        ask.session.account
                    )
                }
            };
            match request.action.as_str() {
                "DescribeTrails" | "ListTrails" | "ListEventDataStores" => one("*"),
                "GetTrail" | "GetTrailStatus" | "UpdateTrail" | "StartLogging" | "StopLogging"
                | "DeleteTrail" => {
                    let name = text("Name").ok_or("no Name")?;
                    one(&trail(&name))
                }
                "GetEventSelectors"
                | "PutEventSelectors"
                | "GetInsightSelectors"
                | "PutInsightSelectors" => {
                    let name = text("TrailName").ok_or("no TrailName")?;
                    one(&trail(&name))
                }
                "ListTags" => {
                    let names: Vec<&str> = body["ResourceIdList"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    if names.is_empty() {
                        return Err("no ResourceIdList".to_owned());
                    }
                    Ok(Some(
                        names.iter().map(|n| ask.on(&action, &trail(n))).collect(),
                    ))
                }
                "GetEventDataStore" => {
                    let store = text("EventDataStore").ok_or("no EventDataStore")?;
                    if store.starts_with("arn:") {
                        one(&store)
                    } else {
                        one(&format!(
                            "arn:{}:cloudtrail:{}:{}:eventdatastore/{store}",
                            ask.partition(),
                            ask.region(),
                            ask.session.account
                        ))
                    }
                }
                _ => Err("an operation the layer does not map to its resource".to_owned()),
            }
        }
        "organizations" => match request.action.as_str() {
            "DescribeOrganization" | "ListAccounts" | "ListDelegatedAdministrators" => one("*"),
            _ => Err("an operation the layer does not map to its resource".to_owned()),
        },
        "s3" => {
            let bucket = bucket_of(request).ok_or("no bucket in a path-style request")?;
            let query = request.target.split_once('?').map(|(_, q)| q).unwrap_or("");
            let has = |name: &str| {
                query
                    .split('&')
                    .any(|p| p == name || p.starts_with(&format!("{name}=")))
            };
            let s3_action = match request.method.as_str() {
                "HEAD" if query.is_empty() => "s3:ListBucket",
                "GET" if has("policy") => "s3:GetBucketPolicy",
                "GET" if has("encryption") => "s3:GetEncryptionConfiguration",
                "GET" if has("replication") => "s3:GetReplicationConfiguration",
                "GET" if has("location") => "s3:GetBucketLocation",
                _ => return Err("an S3 request the layer does not map to its action".to_owned()),
            };
            Ok(Some(vec![ask.on(
                s3_action,
                &format!("arn:{}:s3:::{bucket}", ask.partition()),
            )]))
        }
        "sts" => match request.action.as_str() {
            "AssumeRole" => {
                let role = form_value(&request.body, "RoleArn").ok_or("no RoleArn")?;
                one(&role)
            }
            _ => Err("an operation the layer does not map to its resource".to_owned()),
        },
        "account" => match request.action.as_str() {
            "ListRegions" if body.get("AccountId").is_none() => one(&format!(
                "arn:{}:account::{}:account",
                ask.partition(),
                ask.session.account
            )),
            _ => Err("an operation the layer does not map to its resource".to_owned()),
        },
        "controltower" => match request.action.as_str() {
            "ListLandingZones" | "ListLandingZoneOperations" | "GetLandingZoneOperation" => {
                one("*")
            }
            "GetLandingZone" | "UpdateLandingZone" => {
                let zone = text("landingZoneIdentifier").ok_or("no landingZoneIdentifier")?;
                one(&zone)
            }
            _ => Err("an operation the layer does not map to its resource".to_owned()),
        },
        _ => Err("a service the layer does not map".to_owned()),
    }
}

/// KMS's authorizations for `action` (see the module's notes).
fn kms_authorizations(
    ask: &Asker<'_>,
    action: &str,
    body: &Value,
) -> Result<Option<Vec<Authorization>>, String> {
    let key_id = |member: &str| -> Result<Option<String>, String> {
        let id = body[member]
            .as_str()
            .ok_or_else(|| format!("no {member}"))?;
        ask.key_arn(id)
    };
    match ask.request.action.as_str() {
        "ListKeys" | "ListAliases" => Ok(Some(vec![ask.on(action, "*")])),
        "CreateKey" => {
            let mut create = ask.on(action, "*");
            kms_key(&mut create, body, "KeySpec", "kms:KeySpec");
            kms_key(&mut create, body, "KeyUsage", "kms:KeyUsage");
            kms_key(&mut create, body, "Origin", "kms:KeyOrigin");
            kms_key(&mut create, body, "MultiRegion", "kms:MultiRegion");
            kms_key(
                &mut create,
                body,
                "BypassPolicyLockoutSafetyCheck",
                "kms:BypassPolicyLockoutSafetyCheck",
            );
            request_tags(&mut create, body);
            let mut needed = vec![create.clone()];
            if body["Tags"].as_array().is_some_and(|t| !t.is_empty()) {
                let mut tag = create;
                tag.action = "kms:TagResource".to_owned();
                tag.resource = format!(
                    "arn:{}:kms:{}:{}:key/*",
                    ask.partition(),
                    ask.region(),
                    ask.session.account
                );
                needed.push(tag);
            }
            Ok(Some(needed))
        }
        "CreateAlias" => {
            let alias = body["AliasName"].as_str().ok_or("no AliasName")?;
            let Some(target) = key_id("TargetKeyId")? else {
                return Ok(None);
            };
            Ok(Some(vec![
                ask.on(action, &ask.alias_arn(alias)),
                ask.on_key(action, &target),
            ]))
        }
        "UpdateAlias" | "DeleteAlias" => {
            let alias = body["AliasName"].as_str().ok_or("no AliasName")?;
            let Some(current) = ask.key_arn(alias)? else {
                return Ok(None);
            };
            let mut needed = vec![
                ask.on(action, &ask.alias_arn(alias)),
                ask.on_key(action, &current),
            ];
            if ask.request.action == "UpdateAlias" {
                let Some(target) = key_id("TargetKeyId")? else {
                    return Ok(None);
                };
                needed.push(ask.on_key(action, &target));
            }
            Ok(Some(needed))
        }
        _ => {
            let Some(key) = key_id("KeyId")? else {
                return Ok(None);
            };
            let mut one = ask.on_key(action, &key);
            match ask.request.action.as_str() {
                "PutKeyPolicy" => kms_key(
                    &mut one,
                    body,
                    "BypassPolicyLockoutSafetyCheck",
                    "kms:BypassPolicyLockoutSafetyCheck",
                ),
                "TagResource" => request_tags(&mut one, body),
                _ => {}
            }
            Ok(Some(vec![one]))
        }
    }
}

/// The bucket of a path-style S3 request (`/bucket`, `/bucket/`,
/// `/bucket?query`).
fn bucket_of(request: &Request) -> Option<String> {
    if request.service != "s3" {
        return None;
    }
    let path = request.target.split('?').next().unwrap_or_default();
    let bucket = path.strip_prefix('/')?;
    let bucket = bucket.strip_suffix('/').unwrap_or(bucket);
    (!bucket.is_empty() && !bucket.contains('/')).then(|| bucket.to_owned())
}

/// IAM's denial as the service answers it: AWS JSON 1.1
/// `AccessDeniedException` (KMS, CloudTrail, Organizations), STS's XML
/// `AccessDenied` (403), a REST-JSON `AccessDeniedException` (403: the
/// Account Management API, Control Tower), S3's `AccessDenied` (403; a
/// `HEAD` without a body, with the bucket's Region in `x-amz-bucket-region`
/// when it is known, as S3 sends it whatever the caller's permissions).
fn access_denied(request: &Request, message: &str, bucket_region: Option<String>) -> Response {
    match request.service.as_str() {
        "sts" => Response {
            status: 403,
            headers: vec![("Content-Type".to_owned(), "text/xml".to_owned())],
            body: format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{}</Message></Error><RequestId>TRAILKEYLAYER</RequestId></ErrorResponse>",
                xml_escape(message)
            )
            .into_bytes(),
        },
        "s3" => {
            let mut response = s3_error(403, "AccessDenied", &xml_escape(message));
            if request.method == "HEAD" {
                response.body.clear();
            }
            if let Some(region) = bucket_region {
                response
                    .headers
                    .push(("x-amz-bucket-region".to_owned(), region));
            }
            response
        }
        "account" | "controltower" => rest_json_error(403, "AccessDeniedException", message),
        _ => json_error("AccessDeniedException", message),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
