//! What trailkey read from AWS, as the plan sees it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aws::{
    CallerIdentity, EventSelectors, KeyInfo, LandingZone, LandingZoneOperation, LogBucket,
    Organization, Trail, TrailStatus,
};

/// How trailkey found the key it manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// `alias/<ct_key_alias>` names it.
    Alias,
    /// Its tags `ManagedBy = trailkey` and `trailkey:alias = <ct_key_alias>`
    /// (the alias is missing or names another key).
    Tags,
    /// The trail uses it and it is tagged `ManagedBy = trailkey` for another
    /// alias: `ct_key_alias` was renamed.
    Trail,
}

/// The key trailkey manages, with what it manages on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedKey {
    pub info: KeyInfo,
    /// The key policy as KMS returned it (a JSON document).
    pub policy: String,
    /// `None` when KMS does not tell (a key pending deletion).
    pub rotation: Option<bool>,
    /// The days between rotations, which KMS gives while rotation is on.
    pub rotation_period_days: Option<i32>,
    pub tags: BTreeMap<String, String>,
    pub found_by: FoundBy,
    /// The aliases naming the key, read only when the key's alias tag differs
    /// from `ct_key_alias` (to find the alias of a renamed `ct_key_alias`).
    pub aliases: Option<Vec<String>>,
}

/// Whose credentials a run works with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    /// The management account's (or `roles.management`'s), with a role
    /// assumed in Security Tooling for KMS (none with the landing zone,
    /// whose key is the management account's).
    #[default]
    Management,
    /// The Security Tooling account's, CloudTrail's delegated
    /// administrator: its own KMS, no role assumed, and the organization
    /// trail, which stays in the management account, named by its ARN.
    DelegatedAdministrator,
}

/// Everything `observe` read from AWS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observed {
    pub runner: Runner,
    pub identity: CallerIdentity,
    pub organization: Organization,
    pub trail: Trail,
    /// Every other trail visible from the home Region (`DescribeTrails`,
    /// shadow copies of multi-Region trails included): those that use the
    /// key keep CloudTrail's permission on it.
    pub other_trails: Vec<Trail>,
    /// `GetTrailStatus`.
    pub trail_status: TrailStatus,
    /// The trail's tags: the Control Tower guard needs them when the trail
    /// would change.
    pub trail_tags: OnDemand<BTreeMap<String, String>>,
    /// The Region of the trail's S3 bucket, or why it could not be read.
    pub bucket_region: Result<String, String>,
    /// The trail's event selectors (`GetEventSelectors`), read only when
    /// the trail has custom ones (`HasCustomEventSelectors`), or why they
    /// could not be read; `None` for the default selectors (every
    /// management event) and with the landing zone.
    pub event_selectors: Option<Result<EventSelectors, String>>,
    /// The key `alias/<ct_key_alias>` names, if the alias exists.
    pub alias_target: Option<KeyInfo>,
    /// The key trailkey manages (see [`FoundBy`]), if there is one.
    pub key: Option<ObservedKey>,
    /// Other keys tagged by trailkey for the same alias (left by a crash or
    /// a concurrent run): reported, never touched.
    pub other_keys: Vec<KeyInfo>,
    /// Keys the tag search skipped because their key policy does not let
    /// trailkey's role read them (their ARNs).
    pub unreadable_keys: Vec<String>,
    /// The organization's account IDs: needed when a foreign statement
    /// opens the key to an account trailkey does not know.
    pub organization_accounts: OnDemand<Vec<String>>,
    /// The trail bucket as `roles.log_archive` reads it: needed when the
    /// trail's key would change and the role is set.
    pub log_bucket: OnDemand<LogBucket>,
    /// With `[control_tower] landing_zone`: the landing zone and its
    /// operations in progress; `None` otherwise.
    pub landing_zone: Option<ObservedLandingZone>,
}

/// Control Tower's landing zone, as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedLandingZone {
    /// `None`: `ListLandingZones` found none.
    pub zone: Option<LandingZone>,
    /// The operations `IN_PROGRESS` (`ListLandingZoneOperations`).
    pub in_progress: Vec<LandingZoneOperation>,
}

/// A fact observe does not read up front, because only some plans depend
/// on it: planning asks for it when it does (`plan::Need`), the reconcile
/// loop reads it, and planning starts again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnDemand<T> {
    /// No plan has asked for it yet.
    #[default]
    NotRead,
    Read(T),
}

impl<T> OnDemand<T> {
    /// The fact, if it was read.
    pub fn read(&self) -> Option<&T> {
        match self {
            OnDemand::NotRead => None,
            OnDemand::Read(t) => Some(t),
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, OnDemand::Read(_))
    }
}

/// As JSON: the fact, or `null` when not read.
impl<T: Serialize> Serialize for OnDemand<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.read().serialize(serializer)
    }
}
