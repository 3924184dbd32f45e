//! What the rules know that the traffic does not show: the [`World`] the
//! fixture set up and the tests describe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::control_tower::ControlTower;
use super::delegated::{self, MOTO_DELEGATION_PRINCIPALS};
use super::iam_sts::{account_of, is_account};
use super::signing_region;
use crate::proxy::{Exchange, Request, Traffic};

/// What the test fixture set up outside the layer's sight and AWS knows:
/// who owns each bucket and in which Region it is, which bucket each trail
/// writes to, and the account of the harness's default credentials. The
/// harness fills it from what `fixture.py` reports (`Moto::fixture`); the
/// rules only read it. Clones share it.
///
/// Three parts of it the layer also writes, the only state of the layer.
/// The rotation period of each key (`EnableKeyRotation`'s
/// `RotationPeriodInDays`), which moto 5.2.5 drops: KMS keeps it, and a
/// period set behind the layer's back (the fixture's `drift
/// rotation-period`) is in no traffic of the layer.
/// The registry of delegated administrators for the services moto 5.2.5
/// does not take ([`World::delegated_administrator`],
/// [`organizations_delegated_administrators`](super::organizations_delegated_administrators)):
/// a registration is Organizations' state, which a request's traffic shows
/// only if it went through this layer. And Control Tower's landing zone
/// ([`World::landing_zone`], [`control_tower_landing_zone`](super::control_tower_landing_zone)). A landing-zone operation outlasts the
/// request that starts it: `UpdateLandingZone` answers at once, and the
/// landing zone changes, and Control Tower changes its trail in moto, only
/// when the operation ends, once, minutes later in AWS. What the later
/// requests see depends on that end, which no request's traffic shows.
#[derive(Debug, Clone, Default)]
pub struct World(Arc<Mutex<Facts>>);

#[derive(Debug, Default)]
pub(super) struct Facts {
    /// Principal ARNs IAM does not know, and until when (`None`: ever).
    pub(super) unknown_principals: HashMap<String, Option<Instant>>,
    /// Role ARNs whose IAM permissions do not allow `kms:PutKeyPolicy`.
    pub(super) cannot_put_key_policy: Vec<String>,
    /// Another change to the trails under way.
    pub(super) trails_busy: Option<TrailsBusy>,
    /// By bucket name: owner account and Region.
    pub(super) buckets: HashMap<String, (String, String)>,
    /// By trail ARN: its bucket.
    pub(super) trails: HashMap<String, String>,
    /// The account of the default credentials (moto's management account).
    pub(super) default_account: Option<String>,
    /// The Regions `ListRegions` answers, with their opt-in status; `None`:
    /// [`DEFAULT_REGIONS`].
    pub(super) regions: Option<Vec<(String, String)>>,
    /// The CloudTrail Lake event data stores, each in the account and
    /// Region of its ARN.
    pub(super) event_data_stores: Vec<EventDataStore>,
    /// The calls the layer answered itself, which moto never sees.
    pub(super) answered: Vec<Answered>,
    /// The moto server behind the layer, `http://host:port`, which the
    /// Control Tower emulator calls itself (`Moto::start` sets it).
    pub(super) moto: Option<String>,
    /// Control Tower's landing zone and its operations.
    pub(super) control_tower: ControlTower,
    /// The delegated administrators of the services moto does not take
    /// ([`MOTO_DELEGATION_PRINCIPALS`]), in the order of registration.
    pub(super) delegations: Vec<Delegation>,
    /// By role ARN: the identity policies attached to the role, which the
    /// layer enforces on its sessions ([`iam_identity_policies`](super::iam_identity_policies)).
    pub(super) identity_policies: HashMap<String, Vec<Value>>,
    /// The requests those policies did not allow, in order.
    pub(super) identity_denials: Vec<IdentityDenial>,
    /// By key ID: the rotation period of the last `EnableKeyRotation`
    /// (365 days without one), which moto 5.2.5 drops
    /// ([`kms_rotation_period`](super::kms_rotation_period)).
    pub(super) rotation_periods: HashMap<String, i64>,
    /// The ARNs of the trails with event selectors of their own
    /// ([`cloudtrail_custom_event_selectors`](super::cloudtrail_custom_event_selectors)).
    pub(super) custom_event_selectors: Vec<String>,
}

/// A request of a role session that the role's identity policies did not
/// allow ([`World::identity_denials`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityDenial {
    /// The session's ARN (`arn:<p>:sts::<account>:assumed-role/<role>/<session>`).
    pub principal: String,
    /// The IAM action, e.g. `kms:CreateAlias`.
    pub action: String,
    /// The resource it was asked on (`*` for an action without resource
    /// types; empty when the layer could not map the request).
    pub resource: String,
    /// The `Deny` statement that applied (`statement "<Sid>"`); `None` for
    /// an implicit deny.
    pub statement: Option<String>,
    /// The message of the answer.
    pub message: String,
}

/// A member account registered as the delegated administrator of a service
/// (`RegisterDelegatedAdministrator`), as Organizations' `DelegatedService`
/// shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delegation {
    pub account: String,
    /// E.g. `cloudtrail.amazonaws.com`.
    pub service_principal: String,
    /// `DelegationEnabledDate`, in seconds since the Unix epoch.
    pub enabled: f64,
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

/// How long another change to the trails is under way.
#[derive(Debug, Clone, Copy)]
pub(super) enum TrailsBusy {
    /// Until then.
    Until(Instant),
    /// Until `how_long` after the first `UpdateTrail` answered
    /// `ConflictException` since `since`.
    AfterFirstConflict { since: Instant, how_long: Duration },
}

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
    pub(super) fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
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
        self.facts().trails_busy = Some(TrailsBusy::Until(Instant::now() + how_long));
    }

    /// Another change to the trails is under way from now until `how_long`
    /// after the first `UpdateTrail` the layer answers `ConflictException`
    /// for it: however long a run takes to get to its `UpdateTrail`, it meets
    /// the change and has to wait it out.
    pub fn trail_change_met_for(&self, how_long: Duration) {
        self.facts().trails_busy = Some(TrailsBusy::AfterFirstConflict {
            since: Instant::now(),
            how_long,
        });
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
    pub(super) fn answering(&self, request: &Request) {
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

    /// The moto server behind the layer is at `endpoint` (`http://host:port`).
    pub fn moto_endpoint(&self, endpoint: &str) {
        self.facts().moto = Some(endpoint.trim_end_matches('/').to_owned());
    }

    /// The default credentials act in `account`.
    pub fn default_account(&self, account: &str) {
        self.facts().default_account = Some(account.to_owned());
    }

    /// Records what a `fixture.py` answer says: `bucket` with
    /// `bucket_owner` and `bucket_region`, `trail_arn` with `bucket`,
    /// `management_account` as the default credentials' account,
    /// `key_id` with `rotation_period_days` as that key's rotation period,
    /// and `custom_event_selectors_trail` as a trail with event selectors
    /// of its own.
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
        if let Some(trail) = text("custom_event_selectors_trail") {
            self.custom_event_selectors(trail);
        }
        if let (Some(key), Some(days)) = (
            text("key_id"),
            answer.get("rotation_period_days").and_then(Value::as_i64),
        ) {
            self.rotation_period(key, days);
        }
    }

    /// The trail `arn` has event selectors of its own.
    pub fn custom_event_selectors(&self, arn: &str) {
        let mut facts = self.facts();
        if !facts.custom_event_selectors.iter().any(|t| t == arn) {
            facts.custom_event_selectors.push(arn.to_owned());
        }
    }

    /// Whether the trail `arn` has event selectors of its own.
    pub fn has_custom_event_selectors(&self, arn: &str) -> bool {
        self.facts().custom_event_selectors.iter().any(|t| t == arn)
    }

    /// KMS keeps `days` as the rotation period of key `key_id` (its ID).
    pub fn rotation_period(&self, key_id: &str, days: i64) {
        self.facts()
            .rotation_periods
            .insert(key_id.to_owned(), days);
    }

    /// The rotation period KMS keeps for key `key_id`, if one was set.
    pub fn rotation_period_of(&self, key_id: &str) -> Option<i64> {
        self.facts().rotation_periods.get(key_id).copied()
    }

    /// Registers member `account` as the delegated administrator of the
    /// service `service_principal` (e.g. `cloudtrail.amazonaws.com`), as the
    /// management account's `organizations:RegisterDelegatedAdministrator`
    /// does: in moto for the services moto takes
    /// ([`MOTO_DELEGATION_PRINCIPALS`]; the moto endpoint must be known,
    /// [`World::moto_endpoint`]), in the layer's registry for the others.
    /// Panics if moto refuses the registration; registering an account
    /// already registered for that service changes nothing.
    pub fn delegated_administrator(&self, service_principal: &str, account: &str) {
        if MOTO_DELEGATION_PRINCIPALS.contains(&service_principal) {
            let moto = self.facts().moto.clone().expect(
                "registering a service moto takes needs the moto endpoint (World::moto_endpoint)",
            );
            delegated::register_in_moto(&moto, service_principal, account).unwrap_or_else(
                |(code, message)| {
                    panic!(
                        "moto did not register {account} for {service_principal}: {code}: {message}"
                    )
                },
            );
            return;
        }
        let mut facts = self.facts();
        if !facts
            .delegations
            .iter()
            .any(|d| d.account == account && d.service_principal == service_principal)
        {
            facts.delegations.push(Delegation {
                account: account.to_owned(),
                service_principal: service_principal.to_owned(),
                enabled: delegated::now(),
            });
        }
    }

    /// The delegated administrators of `service_principal`, in the order of
    /// registration: moto's for the services moto takes, the layer's
    /// registry's for the others (whether a test or a request through the
    /// layer registered them).
    pub fn delegated_administrators(&self, service_principal: &str) -> Vec<String> {
        if MOTO_DELEGATION_PRINCIPALS.contains(&service_principal) {
            let moto = self.facts().moto.clone();
            return moto
                .and_then(|m| {
                    delegated::moto_delegated_administrators(&m, Some(service_principal)).ok()
                })
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a["Id"].as_str().map(str::to_owned))
                .collect();
        }
        self.facts()
            .delegations
            .iter()
            .filter(|d| d.service_principal == service_principal)
            .map(|d| d.account.clone())
            .collect()
    }

    /// Attaches the identity policy `policy` (a policy document, its
    /// placeholders filled in) to the role `role_arn`
    /// (`arn:<p>:iam::<account>:role/<name>`): from now on the layer answers
    /// the requests of that role's sessions as IAM would with the role's
    /// policies, and only what they allow reaches moto
    /// ([`iam_identity_policies`](super::iam_identity_policies)). A role
    /// with no policy attached is not checked (moto allows everything).
    pub fn attach_identity_policy(&self, role_arn: &str, policy: Value) {
        self.facts()
            .identity_policies
            .entry(role_arn.to_owned())
            .or_default()
            .push(policy);
    }

    /// Detaches every identity policy of `role_arn`: its sessions are no
    /// longer checked.
    pub fn detach_identity_policies(&self, role_arn: &str) {
        self.facts().identity_policies.remove(role_arn);
    }

    /// The identity policies attached to `role_arn`; `None` when none is.
    pub fn identity_policies(&self, role_arn: &str) -> Option<Vec<Value>> {
        self.facts().identity_policies.get(role_arn).cloned()
    }

    /// Whether any role has an identity policy attached.
    pub(super) fn has_identity_policies(&self) -> bool {
        !self.facts().identity_policies.is_empty()
    }

    /// The requests the identity policies did not allow, in order.
    pub fn identity_denials(&self) -> Vec<IdentityDenial> {
        self.facts().identity_denials.clone()
    }

    pub(super) fn note_identity_denial(&self, denial: IdentityDenial) {
        self.facts().identity_denials.push(denial);
    }

    /// The layer registry's delegations, in the order of registration.
    pub fn delegations(&self) -> Vec<Delegation> {
        self.facts().delegations.clone()
    }

    /// The exchanges among `exchanges` whose request credentials of
    /// `account` signed (the default credentials are the management
    /// account's, [`World::default_account`]; a role session's are its
    /// role's account's, as the `sts:AssumeRole` among `exchanges` that
    /// gave them tells), the fixture's own left out (a `User-Agent` or
    /// `X-Amz-User-Agent` naming `trailkey-fixture`). What the client sent
    /// counts, not what a rule sent moto in its place
    /// ([`Exchange::upstream`]). E.g. that a run with a member account's
    /// credentials signed nothing as the management account:
    /// `world.signed_in(&moto.layer().exchanges(), &seed.management)` is
    /// empty.
    pub fn signed_in(&self, exchanges: &[Exchange], account: &str) -> Vec<Exchange> {
        let traffic = Traffic {
            arrived: Vec::new(),
            exchanges: exchanges.to_vec(),
        };
        exchanges
            .iter()
            .filter(|e| !delegated::from_the_fixture(&e.request))
            .filter(|e| self.account(&e.request, &traffic) == account)
            .cloned()
            .collect()
    }

    /// The account a request acts in, the default credentials' included.
    pub(super) fn account(&self, request: &Request, traffic: &Traffic) -> String {
        let account = account_of(request, traffic);
        match &self.facts().default_account {
            Some(default) if !is_account(&account) => default.clone(),
            _ => account,
        }
    }
}
