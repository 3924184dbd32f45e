//! Proxy rules that answer as real AWS does where moto 5.2.5 is lenient, to
//! put in front of moto (`Moto::real_aws`, `Moto::proxy_with`). Each rule
//! reads what it needs from the traffic so far: rules keep no state of their
//! own, so the same traffic always gets the same answers.
//!
//! Errors are AWS JSON 1.1 errors as KMS and CloudTrail send them: status
//! 400, `Content-Type: application/x-amz-json-1.1`, the code in
//! `x-amzn-ErrorType` and in the body's `__type` (the AWS SDK for Rust
//! reads the header first, then `__type`; see `json_errors.rs` of
//! `aws-sdk-kms` and `aws-sdk-cloudtrail`).
//!
//! The account of a request is the account of the role whose credentials
//! signed it, learnt from the `sts:AssumeRole` answers in the traffic; for
//! other credentials (the default ones) it is their access key ID. Aliases
//! are per account, key IDs are unique.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cloudtrail_policy::{Bucket, cloudtrail_accepts};
use super::key_policy;
use super::proxy::{Decision, Exchange, Request, Response, Rule, Traffic};

/// The content type of KMS and CloudTrail requests and answers.
pub const AWS_JSON_1_1: &str = "application/x-amz-json-1.1";

/// Every rule of this module: what a test puts in front of moto to meet
/// AWS as it is. `window` is how long a new key or alias stays unseen
/// ([`kms_propagation`]), and how long CloudTrail keeps evaluating a key's
/// previous policy after `PutKeyPolicy` ([`cloudtrail_key_policy_check`]).
/// The order is KMS's: a key not visible yet is not found before its
/// policy is evaluated, and a request its policy denies is denied whatever
/// the key's state.
pub fn real_aws(window: Duration, world: &World) -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(account_regions(world.clone())),
        Box::new(cloudtrail_lake(world.clone())),
        Box::new(s3_bucket_region_across_accounts(world.clone())),
        Box::new(cloudtrail_conflicts(world.clone())),
        Box::new(cloudtrail_key_in_the_buckets_region(world.clone())),
        Box::new(kms_propagation(window)),
        Box::new(kms_key_policy_denies()),
        Box::new(kms_policy_principals_and_lockout(world.clone())),
        Box::new(kms_state_changes_propagate(window)),
        Box::new(kms_key_states()),
        Box::new(update_alias_needs_an_alias()),
        Box::new(describe_trails_honours_names()),
        Box::new(cloudtrail_key_policy_check(window)),
        Box::new(s3_replication_as_put()),
        Box::new(organizations_accounts_have_no_status()),
        Box::new(kms_tag_limit()),
    ]
}

/// What the test fixture set up outside the layer's sight and AWS knows:
/// who owns each bucket and in which Region it is, which bucket each trail
/// writes to, and the account of the harness's default credentials. The
/// harness fills it from what `fixture.py` reports (`Moto::fixture`); the
/// rules only read it. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct World(Arc<Mutex<Facts>>);

#[derive(Debug, Default)]
struct Facts {
    /// Principal ARNs IAM does not know, and until when (`None`: ever).
    unknown_principals: HashMap<String, Option<Instant>>,
    /// Role ARNs whose IAM permissions do not allow `kms:PutKeyPolicy`.
    cannot_put_key_policy: Vec<String>,
    /// Until when another change to the trails is under way.
    trails_busy_until: Option<Instant>,
    /// By bucket name: owner account and Region.
    buckets: HashMap<String, (String, String)>,
    /// By trail ARN: its bucket.
    trails: HashMap<String, String>,
    /// The account of the default credentials (moto's management account).
    default_account: Option<String>,
    /// The Regions `ListRegions` answers, with their opt-in status; `None`:
    /// [`DEFAULT_REGIONS`].
    regions: Option<Vec<(String, String)>>,
    /// The CloudTrail Lake event data stores, each in the account and
    /// Region of its ARN.
    event_data_stores: Vec<EventDataStore>,
    /// The calls the layer answered itself, which moto never sees.
    answered: Vec<Answered>,
}

/// The Regions of an account as `ListRegions` shows them unless a test says
/// otherwise ([`World::regions`]): five of the Regions enabled by default,
/// the opt-in Region af-south-1 enabled, and the opt-in Region me-south-1
/// left disabled, as every opt-in Region is until the account enables it.
pub const DEFAULT_REGIONS: [(&str, &str); 7] = [
    ("us-east-1", "ENABLED_BY_DEFAULT"),
    ("us-east-2", "ENABLED_BY_DEFAULT"),
    ("us-west-2", "ENABLED_BY_DEFAULT"),
    ("eu-west-1", "ENABLED_BY_DEFAULT"),
    ("ap-southeast-2", "ENABLED_BY_DEFAULT"),
    ("af-south-1", "ENABLED"),
    ("me-south-1", "DISABLED"),
];

/// A CloudTrail Lake event data store, as `GetEventDataStore` shows it.
#[derive(Debug, Clone)]
pub struct EventDataStore {
    /// `arn:<partition>:cloudtrail:<Region>:<account>:eventdatastore/<id>`.
    pub arn: String,
    pub name: String,
    /// `KmsKeyId`: a key ARN; `None` when CloudTrail encrypts with a key of
    /// its own (the field is left out then).
    pub kms_key_id: Option<String>,
    /// `Status`, e.g. `ENABLED`.
    pub status: String,
}

/// A call the layer answered itself: the service and operation, the access
/// key ID that signed it, and the Region it was signed for.
#[derive(Debug, Clone)]
pub struct Answered {
    pub service: String,
    pub action: String,
    pub access_key: String,
    pub region: String,
}

impl World {
    fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bucket `name` belongs to `owner` and is in `region`.
    pub fn bucket(&self, name: &str, owner: &str, region: &str) {
        self.facts()
            .buckets
            .insert(name.to_owned(), (owner.to_owned(), region.to_owned()));
    }

    /// Trail `arn` writes to `bucket`.
    pub fn trail(&self, arn: &str, bucket: &str) {
        self.facts()
            .trails
            .insert(arn.to_owned(), bucket.to_owned());
    }

    /// IAM does not know principal `arn` (a role or user ARN), for `how_long`
    /// from now (`None`: ever): a role just created, or a typo.
    pub fn unknown_principal(&self, arn: &str, how_long: Option<Duration>) {
        let until = how_long.map(|d| Instant::now() + d);
        self.facts()
            .unknown_principals
            .insert(arn.to_owned(), until);
    }

    /// The IAM permissions of role `arn` (or an SCP or permissions boundary)
    /// do not allow `kms:PutKeyPolicy`.
    pub fn cannot_put_key_policy(&self, role_arn: &str) {
        self.facts().cannot_put_key_policy.push(role_arn.to_owned());
    }

    /// Another change to the trails is under way for `how_long` from now:
    /// `UpdateTrail` answers `ConflictException` meanwhile.
    pub fn trail_change_under_way(&self, how_long: Duration) {
        self.facts().trails_busy_until = Some(Instant::now() + how_long);
    }

    /// `ListRegions` answers these Regions, `(name, opt-in status)`, in
    /// this order, instead of [`DEFAULT_REGIONS`].
    pub fn regions(&self, regions: &[(&str, &str)]) {
        self.facts().regions = Some(
            regions
                .iter()
                .map(|(r, s)| ((*r).to_owned(), (*s).to_owned()))
                .collect(),
        );
    }

    /// The Regions `ListRegions` answers, `(name, opt-in status)`.
    pub fn listed_regions(&self) -> Vec<(String, String)> {
        self.facts().regions.clone().unwrap_or_else(|| {
            DEFAULT_REGIONS
                .iter()
                .map(|(r, s)| ((*r).to_owned(), (*s).to_owned()))
                .collect()
        })
    }

    /// A CloudTrail Lake event data store exists (in the account and Region
    /// of its ARN).
    pub fn event_data_store(&self, store: EventDataStore) {
        self.facts().event_data_stores.push(store);
    }

    /// The calls the layer answered itself since the last
    /// [`World::forget_answered`], in order.
    pub fn answered(&self) -> Vec<Answered> {
        self.facts().answered.clone()
    }

    pub fn forget_answered(&self) {
        self.facts().answered.clear();
    }

    /// Notes that the layer answered `request` itself.
    fn answering(&self, request: &Request) {
        let access_key = request
            .header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').next())
            .unwrap_or_default()
            .to_owned();
        self.facts().answered.push(Answered {
            service: request.service.clone(),
            action: request.action.clone(),
            access_key,
            region: signing_region(request).unwrap_or_default(),
        });
    }

    /// The default credentials act in `account`.
    pub fn default_account(&self, account: &str) {
        self.facts().default_account = Some(account.to_owned());
    }

    /// Records what a `fixture.py` answer says: `bucket` with
    /// `bucket_owner` and `bucket_region`, `trail_arn` with `bucket`, and
    /// `management_account` as the default credentials' account.
    pub fn learn(&self, answer: &Value) {
        let text = |field: &str| answer.get(field).and_then(Value::as_str);
        if let (Some(bucket), Some(owner), Some(region)) =
            (text("bucket"), text("bucket_owner"), text("bucket_region"))
        {
            self.bucket(bucket, owner, region);
        }
        if let (Some(arn), Some(bucket)) = (text("trail_arn"), text("bucket")) {
            self.trail(arn, bucket);
        }
        if let Some(account) = text("management_account") {
            self.default_account(account);
        }
    }

    /// The account a request acts in, the default credentials' included.
    fn account(&self, request: &Request, traffic: &Traffic) -> String {
        let account = account_of(request, traffic);
        match &self.facts().default_account {
            Some(default) if !is_account(&account) => default.clone(),
            _ => account,
        }
    }
}

/// An AWS JSON 1.1 error answer: status 400, `code` in `x-amzn-ErrorType`
/// and in the body's `__type`.
pub fn json_error(code: &str, message: &str) -> Response {
    Response {
        status: 400,
        headers: vec![
            ("Content-Type".to_owned(), AWS_JSON_1_1.to_owned()),
            ("x-amzn-ErrorType".to_owned(), code.to_owned()),
        ],
        body: json!({"__type": code, "message": message})
            .to_string()
            .into_bytes(),
    }
}

/// The error code of an answer: `x-amzn-ErrorType` up to a `:`, else the
/// body's `__type` after a `#`.
pub fn error_code(response: &Response) -> Option<String> {
    let header = response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amzn-errortype"))
        .map(|(_, v)| v.split(':').next().unwrap_or_default().to_owned());
    header.or_else(|| {
        serde_json::from_slice::<Value>(&response.body)
            .ok()?
            .get("__type")?
            .as_str()
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
    })
}

// ------------------------------------------------------------ propagation

/// KMS and CloudTrail while a new key or alias propagates.
///
/// The KMS API is eventually consistent: a change usually takes less than
/// a few seconds to propagate, sometimes minutes, and meanwhile calls can
/// fail with errors such as `NotFoundException`, e.g. a call naming a key
/// right after its `CreateKey`
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/accessing-kms.html#programming-eventual-consistency>,
/// "AWS KMS eventual consistency"). This rule makes such a window certain
/// for new keys and for aliases just created or moved:
///
/// * For `window` after a `CreateKey` answer, every KMS request whose
///   `KeyId` or `TargetKeyId` names the new key, by ID or ARN, is answered
///   `NotFoundException` ("Key '<ARN>' does not exist"): `DescribeKey`,
///   `GetKeyPolicy`, `PutKeyPolicy`, `CreateAlias`, `UpdateAlias`, ...
/// * For `window` after a successful `CreateAlias` or `UpdateAlias`, a KMS
///   request whose `KeyId` names the alias (name or ARN) in that account is
///   answered `NotFoundException` ("Alias <name> is not found.").
/// * A CloudTrail `UpdateTrail` or `CreateTrail` whose `KmsKeyId` names a
///   key or an alias still in its window is answered
///   `KmsKeyNotFoundException`, CloudTrail's error for a KMS key that does
///   not exist
///   (<https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_UpdateTrail.html>).
///
/// None of these reach moto. After the window, requests pass.
pub fn kms_propagation(window: Duration) -> impl Rule {
    KmsPropagation { window }
}

struct KmsPropagation {
    window: Duration,
}

/// A key as a `CreateKey` answer gave it.
struct NewKey {
    id: String,
    arn: String,
    at: Instant,
}

/// An alias as a successful `CreateAlias` or `UpdateAlias` set it.
struct SetAlias {
    account: String,
    name: String,
    target: String,
    at: Instant,
}

impl Rule for KmsPropagation {
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision {
        let now = Instant::now();
        let young = |at: Instant| now < at + self.window;
        let keys: Vec<NewKey> = created_keys(traffic)
            .into_iter()
            .filter(|k| young(k.at))
            .collect();
        let aliases: Vec<SetAlias> = set_aliases(traffic)
            .into_iter()
            .filter(|a| young(a.at))
            .collect();
        if keys.is_empty() && aliases.is_empty() {
            return Decision::Forward;
        }
        let body = json_body(request);
        if request.service == "kms" && request.action != "CreateKey" {
            let account = account_of(request, traffic);
            for field in ["KeyId", "TargetKeyId"] {
                let Some(named) = body.get(field).and_then(Value::as_str) else {
                    continue;
                };
                match KeyName::parse(named) {
                    KeyName::Key(id) => {
                        if let Some(k) = keys.iter().find(|k| k.id == id) {
                            return Decision::Respond(json_error(
                                "NotFoundException",
                                &format!("Key '{}' does not exist", k.arn),
                            ));
                        }
                    }
                    KeyName::Alias {
                        name,
                        account: in_arn,
                    } => {
                        let seen = aliases.iter().any(|a| {
                            a.name == name && a.account == in_arn.map_or(account.as_str(), |x| x)
                        });
                        if seen {
                            return Decision::Respond(json_error(
                                "NotFoundException",
                                &format!("Alias {named} is not found."),
                            ));
                        }
                    }
                }
            }
        }
        if request.is("cloudtrail", "UpdateTrail") || request.is("cloudtrail", "CreateTrail") {
            let Some(named) = body.get("KmsKeyId").and_then(Value::as_str) else {
                return Decision::Forward;
            };
            let young_key = match KeyName::parse(named) {
                KeyName::Key(id) => keys.iter().any(|k| k.id == id),
                // The alias is looked up in the account of its ARN; a bare
                // name names any account's.
                KeyName::Alias { name, account } => aliases.iter().any(|a| {
                    a.name == name
                        && account.is_none_or(|x| a.account == x || !is_account(&a.account))
                }),
            };
            if young_key {
                return Decision::Respond(json_error(
                    "KmsKeyNotFoundException",
                    &format!("KMS key not found: {named}"),
                ));
            }
        }
        Decision::Forward
    }
}

/// Every key `CreateKey` answered, in order.
fn created_keys(traffic: &Traffic) -> Vec<NewKey> {
    traffic
        .exchanges
        .iter()
        .filter(|e| e.is("kms", "CreateKey") && e.response.status == 200)
        .filter_map(|e| {
            let meta = response_json(e).get("KeyMetadata")?.clone();
            Some(NewKey {
                id: meta.get("KeyId")?.as_str()?.to_owned(),
                arn: meta.get("Arn")?.as_str()?.to_owned(),
                at: e.at,
            })
        })
        .collect()
}

/// Every alias a successful `CreateAlias` or `UpdateAlias` set, in order.
fn set_aliases(traffic: &Traffic) -> Vec<SetAlias> {
    traffic
        .exchanges
        .iter()
        .filter(|e| {
            (e.is("kms", "CreateAlias") || e.is("kms", "UpdateAlias")) && e.response.status == 200
        })
        .filter_map(|e| {
            let body = json_body(&e.request);
            Some(SetAlias {
                account: account_of(&e.request, traffic),
                name: body.get("AliasName")?.as_str()?.to_owned(),
                target: key_id_of(body.get("TargetKeyId")?.as_str()?),
                at: e.at,
            })
        })
        .collect()
}

// ------------------------------------------------------------- key states

/// Writes on a key in a state that refuses them fail with the codes real
/// KMS gives, where moto 5.2.5 lets them through, per the key state table
/// of <https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html>
/// ("Key states of AWS KMS keys"; `doc_source/key-state.md` of
/// awsdocs/aws-kms-developer-guide):
///
/// | operation | Disabled | PendingDeletion |
/// |---|---|---|
/// | CreateAlias, UpdateAlias (of the target key) | ✓ | `KMSInvalidStateException` |
/// | PutKeyPolicy, GetKeyPolicy, DescribeKey, ListResourceTags | ✓ | ✓ |
/// | GetKeyRotationStatus | ✓ | ✓ |
/// | EnableKeyRotation, DisableKeyRotation | `DisabledException` | `KMSInvalidStateException` |
/// | TagResource, UntagResource, UpdateKeyDescription | ✓ | `KMSInvalidStateException` |
/// | EnableKey, DisableKey, ScheduleKeyDeletion | ✓ | `KMSInvalidStateException` |
/// | CancelKeyDeletion | `KMSInvalidStateException` (also when Enabled) | ✓ |
/// | Encrypt, Decrypt, GenerateDataKey*, ReEncrypt*, CreateGrant, Sign, Verify | `DisabledException` | `KMSInvalidStateException` |
///
/// (CreateKey uses no existing key: the table leaves it out.) The messages
/// are the table's: "<key ARN> is disabled.", "<key ARN> is pending
/// deletion.", "<key ARN> is not pending deletion.".
///
/// A key's state is what the traffic last showed: `CreateKey` (Enabled),
/// `DescribeKey` answers, and successful `DisableKey`, `EnableKey`,
/// `ScheduleKeyDeletion` and `CancelKeyDeletion` (Disabled). Keys the
/// traffic says nothing about are left to moto.
pub fn kms_key_states() -> impl Rule {
    |request: &Request, traffic: &Traffic| {
        if request.service != "kms" {
            return Decision::Forward;
        }
        let Some(named) = key_named(request) else {
            return Decision::Forward;
        };
        let account = account_of(request, traffic);
        let Some(id) = resolve(&named, &account, traffic) else {
            return Decision::Forward;
        };
        let known = key_states(traffic);
        let Some(key) = known.get(&id) else {
            return Decision::Forward;
        };
        match refusal(&request.action, &key.state) {
            Some((code, why)) => Decision::Respond(json_error(code, &format!("{} {why}", key.arn))),
            None => Decision::Forward,
        }
    }
}

/// A key's state and ARN as the traffic last showed them.
struct KeyState {
    state: String,
    arn: String,
}

/// The code and message ending real KMS answers `action` with on a key in
/// `state`, if it refuses it (the table of [`kms_key_states`]).
fn refusal(action: &str, state: &str) -> Option<(&'static str, &'static str)> {
    const INVALID: &str = "KMSInvalidStateException";
    let cryptographic = matches!(
        action,
        "Encrypt"
            | "Decrypt"
            | "ReEncrypt"
            | "GenerateDataKey"
            | "GenerateDataKeyWithoutPlaintext"
            | "GenerateDataKeyPair"
            | "GenerateDataKeyPairWithoutPlaintext"
            | "GenerateMac"
            | "VerifyMac"
            | "Sign"
            | "Verify"
            | "CreateGrant"
            | "GetPublicKey"
    );
    match state {
        "Enabled" if action == "CancelKeyDeletion" => Some((INVALID, "is not pending deletion.")),
        "Disabled" => match action {
            "CancelKeyDeletion" => Some((INVALID, "is not pending deletion.")),
            "EnableKeyRotation" | "DisableKeyRotation" => {
                Some(("DisabledException", "is disabled."))
            }
            _ if cryptographic => Some(("DisabledException", "is disabled.")),
            _ => None,
        },
        "PendingDeletion" => match action {
            "CancelKeyDeletion"
            | "DescribeKey"
            | "GetKeyPolicy"
            | "PutKeyPolicy"
            | "GetKeyRotationStatus"
            | "ListResourceTags"
            | "ListAliases"
            | "ListGrants"
            | "ListKeyPolicies"
            | "ListRetirableGrants"
            | "RetireGrant"
            | "RevokeGrant"
            | "ListKeyRotations" => None,
            _ => Some((INVALID, "is pending deletion.")),
        },
        _ => None,
    }
}

/// The state and ARN of every key the traffic shows, by key ID.
fn key_states(traffic: &Traffic) -> HashMap<String, KeyState> {
    key_states_before(traffic, None)
}

/// The answer header of a `DescribeKey` that [`kms_state_changes_propagate`]
/// rewrote to show a key's old state: [`key_states`] does not learn from it.
const STALE_STATE: &str = "x-trailkey-layer-stale-state";

/// [`key_states`] as the traffic showed them before `before` (all of it
/// for `None`).
fn key_states_before(traffic: &Traffic, before: Option<Instant>) -> HashMap<String, KeyState> {
    let mut keys: HashMap<String, KeyState> = HashMap::new();
    for e in traffic.exchanges.iter().filter(|e| {
        e.request.service == "kms"
            && e.response.status == 200
            && before.is_none_or(|at| e.at < at)
            && !e.response.headers.iter().any(|(n, _)| n == STALE_STATE)
    }) {
        let answer = response_json(e);
        if let Some(meta) = answer.get("KeyMetadata") {
            let (Some(id), Some(arn)) = (
                meta.get("KeyId").and_then(Value::as_str),
                meta.get("Arn").and_then(Value::as_str),
            ) else {
                continue;
            };
            let state = meta
                .get("KeyState")
                .and_then(Value::as_str)
                .unwrap_or("Enabled");
            keys.insert(
                id.to_owned(),
                KeyState {
                    state: state.to_owned(),
                    arn: arn.to_owned(),
                },
            );
            continue;
        }
        let state = match e.request.action.as_str() {
            "DisableKey" | "CancelKeyDeletion" => "Disabled",
            "EnableKey" => "Enabled",
            "ScheduleKeyDeletion" => "PendingDeletion",
            _ => continue,
        };
        let named = key_named(&e.request);
        let account = account_of(&e.request, traffic);
        let Some(id) = named.and_then(|n| resolve_before(&n, &account, traffic, e.at)) else {
            continue;
        };
        let arn = match keys.get(&id) {
            Some(k) => k.arn.clone(),
            None => named_arn(&e.request).unwrap_or_else(|| id.clone()),
        };
        keys.insert(
            id,
            KeyState {
                state: state.to_owned(),
                arn,
            },
        );
    }
    keys
}

/// A key's state change takes time to reach KMS's and CloudTrail's other
/// hosts: KMS is eventually consistent, and "a change usually takes less
/// than a few seconds to propagate" ("AWS KMS eventual consistency", AWS
/// KMS Developer Guide; each KMS operation's model text "Eventual
/// consistency: The KMS API follows an eventual consistency model", e.g.
/// `EnableKey`, `CancelKeyDeletion`). moto shows it at once.
///
/// For `window` after a successful `EnableKey` or `CancelKeyDeletion`, the
/// key keeps, for the calls that name it, the state the traffic showed
/// before the change ([`key_states`]):
///
/// * `DescribeKey` goes to moto, and its answer shows the old `KeyState`
///   (and `Enabled`);
/// * a write on the key is refused as in that state ([`refusal`]: e.g.
///   `EnableKeyRotation` on a key still seen disabled is
///   `DisabledException`, anything but `CancelKeyDeletion` on a key still
///   seen pending deletion `KMSInvalidStateException`);
/// * `UpdateTrail` whose `KmsKeyId` names it (ID, ARN, or alias as the
///   traffic set it) while it is still seen anything but enabled is
///   `KmsKeyDisabledException`.
///
/// A key whose state before the change the traffic never showed is left
/// alone.
pub fn kms_state_changes_propagate(window: Duration) -> impl Rule {
    StateChanges { window }
}

struct StateChanges {
    window: Duration,
}

impl StateChanges {
    /// The old state of key `id`, if a state change of it is still
    /// propagating.
    fn old_state(&self, id: &str, traffic: &Traffic) -> Option<KeyState> {
        let now = Instant::now();
        let change = traffic.exchanges.iter().rev().find(|e| {
            e.request.service == "kms"
                && matches!(e.request.action.as_str(), "EnableKey" | "CancelKeyDeletion")
                && e.response.status == 200
                && now < e.at + self.window
                && key_named(&e.request).and_then(|n| {
                    resolve_before(&n, &account_of(&e.request, traffic), traffic, e.at)
                }) == Some(id.to_owned())
        })?;
        key_states_before(traffic, Some(change.at)).remove(id)
    }

    /// The key a request names, resolved, when one of its state changes
    /// propagates, with its old state.
    fn named(&self, request: &Request, traffic: &Traffic) -> Option<(String, KeyState)> {
        let named = if request.is("cloudtrail", "UpdateTrail") {
            json_body(request).get("KmsKeyId")?.as_str()?.to_owned()
        } else if request.service == "kms" {
            key_named(request)?
        } else {
            return None;
        };
        let id = resolve(&named, &account_of(request, traffic), traffic)?;
        let old = self.old_state(&id, traffic)?;
        Some((id, old))
    }
}

impl Rule for StateChanges {
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision {
        let Some((_, old)) = self.named(request, traffic) else {
            return Decision::Forward;
        };
        if request.is("cloudtrail", "UpdateTrail") {
            if old.state == "Enabled" {
                return Decision::Forward;
            }
            return Decision::Respond(json_error(
                "KmsKeyDisabledException",
                &format!("KMS key {} is disabled.", old.arn),
            ));
        }
        match refusal(&request.action, &old.state) {
            Some((code, why)) => Decision::Respond(json_error(code, &format!("{} {why}", old.arn))),
            None => Decision::Forward,
        }
    }

    fn rewrite(&self, request: &Request, mut response: Response, traffic: &Traffic) -> Response {
        if !request.is("kms", "DescribeKey") || response.status != 200 {
            return response;
        }
        let Some((_, old)) = self.named(request, traffic) else {
            return response;
        };
        let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        if let Some(meta) = answer.get_mut("KeyMetadata").and_then(Value::as_object_mut) {
            meta.insert("KeyState".to_owned(), json!(old.state));
            meta.insert("Enabled".to_owned(), json!(old.state == "Enabled"));
        }
        response.body = answer.to_string().into_bytes();
        response
            .headers
            .push((STALE_STATE.to_owned(), "1".to_owned()));
        response
    }
}

/// The `KeyId` of a request if it is a key ARN.
fn named_arn(request: &Request) -> Option<String> {
    json_body(request)
        .get("KeyId")
        .and_then(Value::as_str)
        .filter(|k| k.starts_with("arn:") && k.contains(":key/"))
        .map(str::to_owned)
}

// ------------------------------------------------------------ UpdateAlias

/// `UpdateAlias` of an alias that does not exist is answered
/// `NotFoundException` ("Alias <name> is not found."): UpdateAlias
/// "associates an existing KMS alias with a different KMS key"
/// (<https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdateAlias.html>).
///
/// An alias does not exist when, in the caller's account, the traffic's
/// last word on it is a successful `DeleteAlias`, or a complete
/// `ListAliases` (no `KeyId`, not truncated) left it out and nothing
/// created it since. Otherwise the request goes to moto, which in 5.2.5
/// refuses an alias it does not have in the same way.
pub fn update_alias_needs_an_alias() -> impl Rule {
    |request: &Request, traffic: &Traffic| {
        if !request.is("kms", "UpdateAlias") {
            return Decision::Forward;
        }
        let body = json_body(request);
        let Some(name) = body.get("AliasName").and_then(Value::as_str) else {
            return Decision::Forward;
        };
        let account = account_of(request, traffic);
        if alias_exists(name, &account, traffic) == Some(false) {
            Decision::Respond(json_error(
                "NotFoundException",
                &format!("Alias {name} is not found."),
            ))
        } else {
            Decision::Forward
        }
    }
}

/// Whether the traffic shows alias `name` of `account` to exist, if it says.
fn alias_exists(name: &str, account: &str, traffic: &Traffic) -> Option<bool> {
    let mut exists: HashMap<String, bool> = HashMap::new();
    let mut listed = false;
    for e in traffic.exchanges.iter().filter(|e| {
        e.request.service == "kms"
            && e.response.status == 200
            && account_of(&e.request, traffic) == account
    }) {
        let body = json_body(&e.request);
        let alias = body.get("AliasName").and_then(Value::as_str);
        match (e.request.action.as_str(), alias) {
            ("CreateAlias" | "UpdateAlias", Some(a)) => {
                exists.insert(a.to_owned(), true);
            }
            ("DeleteAlias", Some(a)) => {
                exists.insert(a.to_owned(), false);
            }
            ("ListAliases", _) if body.get("KeyId").is_none() => {
                let answer = response_json(e);
                if answer.get("Truncated").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                exists = answer
                    .get("Aliases")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.get("AliasName")?.as_str())
                    .map(|a| (a.to_owned(), true))
                    .collect();
                listed = true;
            }
            _ => {}
        }
    }
    exists
        .get(name)
        .copied()
        .or(if listed { Some(false) } else { None })
}

// --------------------------------------------------------- DescribeTrails

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

// ------------------------------------------------------- S3 bucket Region

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

/// The Region of a request's SigV4 credential scope.
pub fn signing_region(request: &Request) -> Option<String> {
    request
        .header("authorization")?
        .split("Credential=")
        .nth(1)?
        .split('/')
        .nth(2)
        .map(str::to_owned)
}

// ------------------------------------------------- key policy principals

/// KMS checks a key policy before it takes it (`CreateKey`'s `Policy`,
/// `PutKeyPolicy`), and answers `MalformedPolicyDocumentException` (kms
/// model: "the specified policy is not syntactically or semantically
/// correct"):
///
/// * "Policy contains a statement with one or more invalid principals."
///   when a statement names a principal IAM does not know: a role or user
///   that does not exist, or was created moments ago (IAM is eventually
///   consistent too). The [`World`] says which ([`World::unknown_principal`]).
/// * "The new key policy will not allow you to update the key policy in
///   the future." when the caller could not change the policy afterwards:
///   KMS's policy lockout safety check, which considers the caller's IAM
///   permissions, SCPs and permissions boundaries too (`CreateKey` and
///   `PutKeyPolicy`, `BypassPolicyLockoutSafetyCheck`, kms model). The
///   [`World`] says whose IAM permissions do not allow `kms:PutKeyPolicy`
///   ([`World::cannot_put_key_policy`]), by the role of the signing session.
///   A request with `BypassPolicyLockoutSafetyCheck` is not checked for it.
///
/// moto takes any policy.
pub fn kms_policy_principals_and_lockout(world: World) -> impl Rule {
    move |request: &Request, traffic: &Traffic| {
        if !(request.is("kms", "CreateKey") || request.is("kms", "PutKeyPolicy")) {
            return Decision::Forward;
        }
        let body = json_body(request);
        let Some(policy) = body.get("Policy").and_then(Value::as_str) else {
            return Decision::Forward;
        };
        let document: Value = serde_json::from_str(policy).unwrap_or(Value::Null);
        let facts = world.facts();
        let now = Instant::now();
        let unknown = principals_of(&document).into_iter().any(|p| {
            facts
                .unknown_principals
                .get(&p)
                .is_some_and(|until| until.is_none_or(|u| now < u))
        });
        if unknown {
            return Decision::Respond(json_error(
                "MalformedPolicyDocumentException",
                "Policy contains a statement with one or more invalid principals.",
            ));
        }
        let bypass = body
            .get("BypassPolicyLockoutSafetyCheck")
            .and_then(Value::as_bool)
            == Some(true);
        let caller = session_of(request, traffic).map(|s| s.role_arn);
        if !bypass && caller.is_some_and(|c| facts.cannot_put_key_policy.contains(&c)) {
            return Decision::Respond(json_error(
                "MalformedPolicyDocumentException",
                "The new key policy will not allow you to update the key policy in the future.",
            ));
        }
        Decision::Forward
    }
}

/// The AWS principal ARNs a policy's statements name (`Principal.AWS`).
fn principals_of(policy: &Value) -> Vec<String> {
    let statements = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    statements
        .into_iter()
        .filter_map(|s| s.get("Principal")?.get("AWS"))
        .flat_map(|p| match p {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect::<Vec<_>>(),
            Value::String(one) => vec![one.as_str()],
            _ => Vec::new(),
        })
        .map(str::to_owned)
        .collect()
}

// ------------------------------------------------ CloudTrail conflicts

/// `UpdateTrail` while another change to the trail is under way (the
/// [`World`] says until when, [`World::trail_change_under_way`]) is
/// answered `ConflictException`: "This exception is thrown when the
/// specified resource is not ready for an operation. This can occur when
/// you try to run an operation on a resource before CloudTrail has time to
/// fully load the resource, or because another operation is modifying the
/// resource. If this exception occurs, wait a few minutes, and then try the
/// operation again." (cloudtrail model, shape `ConflictException`, listed
/// by `UpdateTrail`). moto never answers it.
pub fn cloudtrail_conflicts(world: World) -> impl Rule {
    move |request: &Request, _: &Traffic| {
        let busy = world
            .facts()
            .trails_busy_until
            .is_some_and(|until| Instant::now() < until);
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

// ------------------------------------------------------------- KMS tags

/// At most 50 tags per KMS key ("Tags in AWS KMS", AWS KMS Developer
/// Guide; tags whose keys start with `aws:` do not count): a `TagResource`
/// that would take a key past that is answered `LimitExceededException`
/// (kms model: "a length constraint or quota was exceeded", listed by
/// `TagResource`). moto takes any number. The key's tags are what the
/// traffic last showed: its `CreateKey`'s `Tags`, a `ListResourceTags`
/// answer (not truncated), then `TagResource` and `UntagResource`. A key
/// whose tags the traffic never showed goes to moto.
pub fn kms_tag_limit() -> impl Rule {
    |request: &Request, traffic: &Traffic| {
        if !request.is("kms", "TagResource") {
            return Decision::Forward;
        }
        let Some(named) = key_named(request) else {
            return Decision::Forward;
        };
        let account = account_of(request, traffic);
        let Some(id) = resolve(&named, &account, traffic) else {
            return Decision::Forward;
        };
        let Some(mut tags) = key_tags(&id, &account, traffic) else {
            return Decision::Forward;
        };
        tags.extend(tag_keys(&json_body(request)));
        let counted = tags
            .iter()
            .filter(|t| !t.to_ascii_lowercase().starts_with("aws:"))
            .count();
        if counted > 50 {
            Decision::Respond(json_error(
                "LimitExceededException",
                "The request was rejected because a quota was exceeded. For more information, see Quotas in the Key Management Service Developer Guide.",
            ))
        } else {
            Decision::Forward
        }
    }
}

/// The `TagKey`s of a request's or answer's `Tags`.
fn tag_keys(body: &Value) -> Vec<String> {
    body.get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("TagKey")?.as_str().map(str::to_owned))
        .collect()
}

/// The tag keys of key `id` as the traffic last showed them.
fn key_tags(
    id: &str,
    account: &str,
    traffic: &Traffic,
) -> Option<std::collections::BTreeSet<String>> {
    let mut tags: Option<std::collections::BTreeSet<String>> = None;
    for e in traffic
        .exchanges
        .iter()
        .filter(|e| e.request.service == "kms" && e.response.status == 200)
    {
        let body = json_body(&e.request);
        let this_key = || {
            key_named(&e.request)
                .and_then(|n| resolve_before(&n, account, traffic, e.at))
                .as_deref()
                == Some(id)
        };
        match e.request.action.as_str() {
            "CreateKey" => {
                let made = response_json(e)
                    .get("KeyMetadata")
                    .and_then(|m| m.get("KeyId"))
                    .and_then(Value::as_str)
                    == Some(id);
                if made {
                    tags = Some(tag_keys(&body).into_iter().collect());
                }
            }
            "ListResourceTags" if this_key() => {
                let answer = response_json(e);
                if answer.get("Truncated").and_then(Value::as_bool) != Some(true) {
                    tags = Some(tag_keys(&answer).into_iter().collect());
                }
            }
            "TagResource" if this_key() => {
                if let Some(t) = tags.as_mut() {
                    t.extend(tag_keys(&body));
                }
            }
            "UntagResource" if this_key() => {
                if let Some(t) = tags.as_mut() {
                    for k in body
                        .get("TagKeys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(k) = k.as_str() {
                            t.remove(k);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    tags
}

// ------------------------------------------------ Organizations accounts

/// `Account` answers carry `State` only: Organizations retired
/// `Account.Status` on 2026-09-09 ("The `Status` parameter in the `Account`
/// object will be retired on September 9, 2026 ... use the `State`
/// parameter instead", organizations service model, shape `Account`, member
/// `Status`; it names `DescribeAccount`, `ListAccounts` and
/// `ListAccountsForParent`). moto 5.2.5 still sends both. The request goes
/// to moto; `Status` is dropped from every account of its answer.
pub fn organizations_accounts_have_no_status() -> impl Rule {
    AccountsHaveNoStatus
}

struct AccountsHaveNoStatus;

impl Rule for AccountsHaveNoStatus {
    fn decide(&self, _: &Request, _: &Traffic) -> Decision {
        Decision::Forward
    }

    fn rewrite(&self, request: &Request, mut response: Response, _: &Traffic) -> Response {
        let listed = ["ListAccounts", "ListAccountsForParent", "DescribeAccount"];
        if request.service != "organizations"
            || !listed.contains(&request.action.as_str())
            || response.status != 200
        {
            return response;
        }
        let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        let accounts = match answer.get_mut("Accounts").and_then(Value::as_array_mut) {
            Some(list) => list.iter_mut().collect::<Vec<_>>(),
            None => answer.get_mut("Account").into_iter().collect(),
        };
        for account in accounts {
            if let Some(fields) = account.as_object_mut() {
                fields.remove("Status");
            }
        }
        response.body = answer.to_string().into_bytes();
        response
    }
}

// ------------------------------------------------------ S3 replication

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

// ------------------------------------------------- CloudTrail key policy

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

/// Whether bucket `bucket` uses an S3 Bucket Key, as the traffic last
/// showed its default encryption (`/<bucket>?encryption`): the first
/// `BucketKeyEnabled` (its first rule's) of a successful
/// `PutBucketEncryption` request or of a `GetBucketEncryption` answer;
/// after a successful `DeleteBucketEncryption`, or a `GetBucketEncryption`
/// answered `ServerSideEncryptionConfigurationNotFoundError`, none. A bucket
/// the traffic says nothing about has none.
fn bucket_key_enabled(bucket: &str, traffic: &Traffic) -> bool {
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

/// The policy CloudTrail evaluates for key `key_id` now: the last one the
/// traffic wrote, a `PutKeyPolicy` counting only once `window` has passed
/// since it; `None` if the traffic wrote none.
fn policy_seen_by_cloudtrail(key_id: &str, traffic: &Traffic, window: Duration) -> Option<Value> {
    let now = Instant::now();
    let mut policy = None;
    for e in traffic
        .exchanges
        .iter()
        .filter(|e| e.request.service == "kms" && e.response.status == 200)
    {
        let body = json_body(&e.request);
        let written = match e.request.action.as_str() {
            "CreateKey" => {
                let meta = response_json(e).get("KeyMetadata").cloned();
                let meta = meta.as_ref();
                if meta.and_then(|m| m.get("KeyId")?.as_str()) != Some(key_id) {
                    continue;
                }
                let arn = meta
                    .and_then(|m| m.get("Arn")?.as_str())
                    .unwrap_or_default();
                match body.get("Policy").and_then(Value::as_str) {
                    Some(text) => parse_policy(text),
                    None => default_key_policy(arn),
                }
            }
            "PutKeyPolicy" => {
                if now < e.at + window {
                    continue;
                }
                if request_key_id(e, traffic).as_deref() != Some(key_id) {
                    continue;
                }
                parse_policy(
                    body.get("Policy")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
            }
            // What a read showed was in effect by then (policies written
            // around the layer, e.g. by another actor), unless this key's
            // policy was written through the layer within `window` before
            // that read: CloudTrail may not see that write yet.
            "GetKeyPolicy" => {
                if request_key_id(e, traffic).as_deref() != Some(key_id)
                    || written_within(key_id, traffic, e.at, window)
                {
                    continue;
                }
                parse_policy(
                    response_json(e)
                        .get("Policy")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
            }
            _ => continue,
        };
        policy = Some(written);
    }
    policy
}

/// Whether key `key_id`'s policy was written through the layer in the
/// `window` before `at`.
fn written_within(key_id: &str, traffic: &Traffic, at: Instant, window: Duration) -> bool {
    traffic.exchanges.iter().any(|e| {
        e.is("kms", "PutKeyPolicy")
            && e.response.status == 200
            && e.at <= at
            && at < e.at + window
            && request_key_id(e, traffic).as_deref() == Some(key_id)
    })
}

/// The key ID the `KeyId` of exchange `e`'s request named when it was sent
/// (an ID, a key ARN, or an alias resolved as the traffic then stood).
fn request_key_id(e: &Exchange, traffic: &Traffic) -> Option<String> {
    let account = account_of(&e.request, traffic);
    json_body(&e.request)
        .get("KeyId")
        .and_then(Value::as_str)
        .and_then(|n| resolve_before(n, &account, traffic, e.at))
}

/// A policy document; one that is not JSON gives CloudTrail nothing.
fn parse_policy(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

/// KMS's default key policy for a key created without one: the key's
/// account (its root) may do anything with the key
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html>,
/// "Default key policy").
fn default_key_policy(key_arn: &str) -> Value {
    let parts: Vec<&str> = key_arn.split(':').collect();
    let partition = parts.get(1).copied().unwrap_or("aws");
    let account = parts.get(4).copied().unwrap_or_default();
    json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*",
        }],
    })
}

// --------------------------------------------------------- KMS key policy

/// A KMS request on a key whose key policy explicitly denies the caller is
/// answered `AccessDeniedException` ("User: <session ARN> is not authorized
/// to perform: kms:<Action> on resource: <key ARN> with an explicit deny in
/// a resource-based policy", as KMS words it); moto 5.2.5 does not evaluate
/// key policies at all. An explicit `Deny` wins over any `Allow` ("Policy
/// evaluation logic", IAM User Guide); the evaluator is
/// [`key_policy::evaluate`] (`key_policy.rs`, which cites the IAM pages it
/// follows).
///
/// * The request: `X-Amz-Target` `TrentService.<Action>`, with a `KeyId`
///   (`TargetKeyId` for `CreateAlias` and `UpdateAlias`) by key ID or ARN,
///   or by alias name or ARN as the traffic's `CreateAlias`/`UpdateAlias`
///   set it in the caller's account. Its `EncryptionContext`, if any, gives
///   the `kms:EncryptionContext:<key>` condition keys.
/// * The caller: the role session whose access key signed the request
///   (SigV4 `Credential=`), learnt from a successful `sts:AssumeRole` in
///   the traffic: its `RoleArn` (`aws:PrincipalArn`, path included) and
///   account, and `RoleSessionName` for the message.
/// * The policy: the last one the traffic shows for the key, with no
///   propagation window: the `Policy` of its `CreateKey` (without one,
///   KMS's default key policy), a successful `PutKeyPolicy`, or what a
///   `GetKeyPolicy` answered.
///
/// A request the policy does not allow at all (an implicit deny: no
/// statement for the caller, its role or its account) is answered
/// `AccessDeniedException` too ("... because no resource-based policy
/// allows the kms:<Action> action"): KMS authorizes the key calls trailkey
/// makes by the key policy ("Required permissions: kms:<Action> (key
/// policy)", kms model, each operation), and IAM policies count only where
/// the key policy delegates to the account. `ListKeys`, `ListAliases` and
/// `CreateKey` are IAM-only, and are left out. The evaluator does not see
/// IAM, so a statement naming the caller's account counts as allowing.
///
/// Requests from callers the rule cannot name (the default credentials),
/// on keys whose policy the traffic never showed, or naming no key, go to
/// moto, which allows everything.
pub fn kms_key_policy_denies() -> impl Rule {
    |request: &Request, traffic: &Traffic| {
        let kms = request
            .header("x-amz-target")
            .is_some_and(|t| t.starts_with("TrentService."));
        if !kms {
            return Decision::Forward;
        }
        let Some(named) = key_named(request) else {
            return Decision::Forward;
        };
        let Some(session) = session_of(request, traffic) else {
            return Decision::Forward;
        };
        let Some(id) = resolve(&named, &account_of(request, traffic), traffic) else {
            return Decision::Forward;
        };
        let Some(policy) = policy_seen_by_cloudtrail(&id, traffic, Duration::ZERO) else {
            return Decision::Forward;
        };
        let context: Vec<(String, String)> = json_body(request)
            .get("EncryptionContext")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                Some((format!("kms:EncryptionContext:{k}"), v.as_str()?.to_owned()))
            })
            .collect();
        let action = format!("kms:{}", request.action);
        let asked = key_policy::Request {
            caller: key_policy::Caller::Aws {
                arn: &session.role_arn,
                account: &session.account,
            },
            action: &action,
            context: context
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        };
        match key_policy::evaluate(&policy, &asked) {
            key_policy::Decision::ExplicitlyDenied { .. } => Decision::Respond(json_error(
                "AccessDeniedException",
                &format!(
                    "User: {} is not authorized to perform: {action} on resource: {} \
                     with an explicit deny in a resource-based policy",
                    session.arn,
                    key_arn(&id, &named, traffic)
                ),
            )),
            // Only the key policy can let a principal use a key ("Required
            // permissions: kms:X (key policy)", kms model): without a
            // statement for the caller or its account, IAM cannot help.
            key_policy::Decision::NotAllowed
                if !["ListAliases", "ListKeys", "CreateKey"].contains(&request.action.as_str()) =>
            {
                Decision::Respond(json_error(
                    "AccessDeniedException",
                    &format!(
                        "User: {} is not authorized to perform: {action} on resource: {} \
                         because no resource-based policy allows the {action} action",
                        session.arn,
                        key_arn(&id, &named, traffic)
                    ),
                ))
            }
            _ => Decision::Forward,
        }
    }
}

/// A role session, as the `sts:AssumeRole` that made it shows it.
struct Session {
    /// `arn:<partition>:iam::<account>:role/<path><name>`.
    role_arn: String,
    account: String,
    /// `arn:<partition>:sts::<account>:assumed-role/<name>/<session name>`.
    arn: String,
}

/// The role session whose access key signed `request`, if a successful
/// `sts:AssumeRole` in the traffic gave that key.
fn session_of(request: &Request, traffic: &Traffic) -> Option<Session> {
    let key = request
        .header("authorization")?
        .split("Credential=")
        .nth(1)?
        .split('/')
        .next()?
        .to_owned();
    traffic
        .exchanges
        .iter()
        .filter(|e| e.is("sts", "AssumeRole") && e.response.status == 200)
        .find_map(|e| {
            if xml_text(&e.response_text(), "AccessKeyId")? != key {
                return None;
            }
            let role_arn = form_value(&e.request.body, "RoleArn")?;
            let session = form_value(&e.request.body, "RoleSessionName")?;
            let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
            let [_, partition, _, _, account, resource] = parts[..] else {
                return None;
            };
            let name = resource.strip_prefix("role/")?.rsplit('/').next()?;
            Some(Session {
                arn: format!("arn:{partition}:sts::{account}:assumed-role/{name}/{session}"),
                account: account.to_owned(),
                role_arn,
            })
        })
}

/// The value of `name` in a form-encoded body (`a=b&c=d`, percent-encoded).
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let raw = text
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The ARN of key `id` for messages: as `CreateKey` or another answer
/// showed it, else the key ARN the request named, else the ID.
fn key_arn(id: &str, named: &str, traffic: &Traffic) -> String {
    created_keys(traffic)
        .into_iter()
        .find(|k| k.id == id)
        .map(|k| k.arn)
        .or_else(|| key_states(traffic).remove(id).map(|k| k.arn))
        .filter(|arn| arn.starts_with("arn:"))
        .or_else(|| {
            (named.starts_with("arn:") && named.contains(":key/")).then(|| named.to_owned())
        })
        .unwrap_or_else(|| id.to_owned())
}

// ---------------------------------------------------------------- helpers

/// How a request names a key.
enum KeyName<'a> {
    /// A key ID, or the ID in a key ARN.
    Key(&'a str),
    /// An alias name (`alias/...`), with the account of an alias ARN.
    Alias {
        name: &'a str,
        account: Option<&'a str>,
    },
}

impl<'a> KeyName<'a> {
    fn parse(named: &'a str) -> KeyName<'a> {
        if named.starts_with("alias/") {
            return KeyName::Alias {
                name: named,
                account: None,
            };
        }
        if named.starts_with("arn:") {
            if let Some(at) = named.find(":alias/") {
                return KeyName::Alias {
                    name: &named[at + 1..],
                    account: named.split(':').nth(4),
                };
            }
            if let Some((_, id)) = named.split_once(":key/") {
                return KeyName::Key(id);
            }
        }
        KeyName::Key(named)
    }
}

/// The key ID in a key ID or key ARN; anything else as it is.
fn key_id_of(named: &str) -> String {
    match KeyName::parse(named) {
        KeyName::Key(id) => id.to_owned(),
        KeyName::Alias { name, .. } => name.to_owned(),
    }
}

/// The key ID that `named` (key ID, key ARN, alias name or ARN) stands for
/// in `account`, aliases as the traffic set them.
fn resolve(named: &str, account: &str, traffic: &Traffic) -> Option<String> {
    resolve_before(named, account, traffic, Instant::now())
}

/// The same, with the aliases as set before `at`.
fn resolve_before(named: &str, account: &str, traffic: &Traffic, at: Instant) -> Option<String> {
    match KeyName::parse(named) {
        KeyName::Key(id) => Some(id.to_owned()),
        KeyName::Alias {
            name,
            account: in_arn,
        } => {
            let account = in_arn.unwrap_or(account);
            set_aliases(traffic)
                .into_iter()
                .rev()
                .find(|a| a.at < at && a.name == name && a.account == account)
                .map(|a| a.target)
        }
    }
}

/// The account a request acts in: the account of the assumed role whose
/// credentials signed it, else the signing access key ID.
fn account_of(request: &Request, traffic: &Traffic) -> String {
    let key = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned();
    traffic
        .exchanges
        .iter()
        .filter(|e| e.is("sts", "AssumeRole") && e.response.status == 200)
        .find_map(|e| {
            let xml = e.response_text();
            (xml_text(&xml, "AccessKeyId")? == key)
                .then(|| xml_text(&xml, "Arn")?.split(':').nth(4).map(str::to_owned))?
        })
        .unwrap_or(key)
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The text of the first `<tag>` element of `xml`.
fn xml_text<'x>(xml: &'x str, tag: &str) -> Option<&'x str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + end].trim())
}

/// The key a KMS request names, as the caller wrote it (an ID, an ARN or
/// an alias): `TargetKeyId` of `CreateAlias` and `UpdateAlias`, else `KeyId`.
fn key_named(request: &Request) -> Option<String> {
    let field = match request.action.as_str() {
        "CreateAlias" | "UpdateAlias" => "TargetKeyId",
        _ => "KeyId",
    };
    json_body(request)
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A JSON request body, or `null`.
fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

/// A JSON answer body, or `null`.
fn response_json(exchange: &Exchange) -> Value {
    serde_json::from_slice(&exchange.response.body).unwrap_or(Value::Null)
}

// ----------------------------------------------- Regions and CloudTrail Lake

/// A REST-JSON error as the Account Management API sends it: `status`, the
/// code in `x-amzn-ErrorType`, the message in the body's `message`.
pub fn rest_json_error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("x-amzn-ErrorType".to_owned(), code.to_owned()),
        ],
        body: json!({ "message": message }).to_string().into_bytes(),
    }
}

/// A successful answer with the JSON `body` and `content_type`.
fn json_answer(content_type: &str, body: Value) -> Response {
    Response {
        status: 200,
        headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
        body: body.to_string().into_bytes(),
    }
}

/// The page of `items` that `NextToken` (an index this layer made) and a
/// page size start, and the token of the next page; `None` for a token
/// the layer did not make.
fn page<T: Clone>(
    items: &[T],
    token: Option<&str>,
    size: usize,
) -> Option<(Vec<T>, Option<String>)> {
    let start = match token {
        None => 0,
        Some(t) => t
            .strip_prefix("trailkey-layer-page-")?
            .parse::<usize>()
            .ok()
            .filter(|i| *i <= items.len())?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| format!("trailkey-layer-page-{end}"));
    Some((items[start..end].to_vec(), next))
}

/// `account:ListRegions`, which moto 5.2.5 does not have, answered from the
/// [`World`]'s Regions ([`World::regions`], else [`DEFAULT_REGIONS`]), as the
/// Account Management API does
/// (<https://docs.aws.amazon.com/accounts/latest/reference/API_ListRegions.html>;
/// account model, `ListRegions`):
///
/// * `POST /listRegions` (REST-JSON), answered
///   `{"Regions": [{"RegionName", "RegionOptStatus"}], "NextToken"}`;
/// * `RegionOptStatusContains` keeps the Regions whose status it lists;
///   a value outside the model's enum (`ENABLED`, `ENABLING`, `DISABLING`,
///   `DISABLED`, `ENABLED_BY_DEFAULT`) is a `ValidationException`;
/// * `MaxResults` is 1 to 50, else `ValidationException`. Without it the
///   layer pages by 4: AWS does not document its default page size, and a
///   client must follow `NextToken` anyway (the account model's paginator);
///   a `NextToken` the layer did not give is a `ValidationException`;
/// * `AccountId` asks about a member account; the layer answers every
///   account with the same Regions.
///
/// The layer records the call ([`World::answered`]).
pub fn account_regions(world: World) -> impl Rule {
    move |request: &Request, _: &Traffic| {
        if !request.is("account", "ListRegions") {
            return Decision::Forward;
        }
        world.answering(request);
        let body = json_body(request);
        const STATUSES: [&str; 5] = [
            "ENABLED",
            "ENABLING",
            "DISABLING",
            "DISABLED",
            "ENABLED_BY_DEFAULT",
        ];
        let wanted: Option<Vec<String>> = body
            .get("RegionOptStatusContains")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            });
        if let Some(bad) = wanted
            .iter()
            .flatten()
            .find(|s| !STATUSES.contains(&s.as_str()))
        {
            return Decision::Respond(rest_json_error(
                400,
                "ValidationException",
                &format!("Invalid RegionOptStatus: {bad}"),
            ));
        }
        let size = match body.get("MaxResults").map(Value::as_u64) {
            None => 4,
            Some(Some(n)) if (1..=50).contains(&n) => n as usize,
            Some(_) => {
                return Decision::Respond(rest_json_error(
                    400,
                    "ValidationException",
                    "MaxResults must be between 1 and 50",
                ));
            }
        };
        let regions: Vec<Value> = world
            .listed_regions()
            .into_iter()
            .filter(|(_, status)| wanted.as_ref().is_none_or(|w| w.contains(status)))
            .map(|(name, status)| json!({"RegionName": name, "RegionOptStatus": status}))
            .collect();
        let token = body.get("NextToken").and_then(Value::as_str);
        let Some((regions, next)) = page(&regions, token, size) else {
            return Decision::Respond(rest_json_error(
                400,
                "ValidationException",
                "The NextToken is not valid",
            ));
        };
        let mut answer = json!({ "Regions": regions });
        if let Some(next) = next {
            answer["NextToken"] = json!(next);
        }
        Decision::Respond(json_answer("application/json", answer))
    }
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
