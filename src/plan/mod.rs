//! Plan: a pure function from the desired state (the config) and the observed
//! state (what AWS returned) to a list of changes. No I/O here, so every
//! combination of observed state is unit-tested without a server.
//!
//! Each [`Change`] has an address, an action, `before`/`after` values for
//! display and JSON, the reasons, and the [`Step`]s `apply` executes.
//!
//! The plan's types and [`plan`] live here; the checks before any write
//! (`checks`), the key policy (`key_policy`), the change of each address
//! (`changes`), the findings (`findings`) and `destroy` in their own files.

mod blind_spot;
mod changes;
mod checks;
mod destroy;
mod findings;
mod key_policy;
mod landing_zone;

use changes::*;
pub use checks::*;
pub use destroy::*;
use findings::*;
pub use key_policy::*;
pub use landing_zone::*;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{
    CallerIdentity, FeatureSet, KeyInfo, KeyManager, KeySpec, KeyState, KeyUsage, NewKey,
    Organization, Origin, Trail, TrailStatus,
};
use crate::config::{
    ALIAS_TAG, CREATED_TAG, Desired, MANAGED_BY_TAG, MAX_KEY_TAGS, created_by_trailkey,
    managed_by_trailkey,
};
use crate::error::Error;
use crate::log_archive;
pub use crate::model::{
    Finding, FoundBy, Level, Observed, ObservedKey, ObservedLandingZone, OnDemand, Runner,
};
use crate::policy::{self, PolicyInputs};

/// JSON plan format version.
pub const FORMAT_VERSION: &str = "1";

/// A plan read back has this trailkey's format: the saved plan it comes
/// from was made by this trailkey (`crate::saved`).
fn format_version() -> &'static str {
    FORMAT_VERSION
}
/// Shown in `after` for values only known once apply has run.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Delete,
    NoOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Address {
    KmsKey,
    KmsAlias,
    KmsAliasPrevious,
    KmsKeyPolicy,
    KmsKeyRotation,
    TrailEncryption,
    TrailLogFileValidation,
    /// Whether the trail logs (`GetTrailStatus`'s `IsLogging`).
    TrailLogging,
    /// The landing zone's KMS key, for Control Tower's trail.
    LandingZone,
}

impl Address {
    pub fn as_str(self) -> &'static str {
        match self {
            Address::KmsKey => "kms_key",
            Address::KmsAlias => "kms_alias",
            Address::KmsAliasPrevious => "kms_alias_previous",
            Address::KmsKeyPolicy => "kms_key_policy",
            Address::KmsKeyRotation => "kms_key_rotation",
            Address::TrailEncryption => "trail_encryption",
            Address::TrailLogFileValidation => "trail_log_file_validation",
            Address::TrailLogging => "trail_logging",
            Address::LandingZone => "landing_zone",
        }
    }
}

/// One AWS write. Steps that act on "the key" use the existing key or the
/// one created by [`Step::CreateKey`] earlier in the same apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateKey(NewKey),
    CancelKeyDeletion,
    EnableKey,
    TagKey(BTreeMap<String, String>),
    CreateAlias(String),
    UpdateAlias(String),
    DeleteAlias(String),
    PutKeyPolicy(String),
    /// `EnableKeyRotation`, with `RotationPeriodInDays` when given: turns
    /// rotation on, or sets the period of a key whose rotation is on.
    EnableRotation(Option<i32>),
    /// `UpdateTrail` pointing the trail at the key, turning log-file
    /// validation on in the same call when `log_file_validation`.
    UpdateTrail {
        trail: String,
        log_file_validation: bool,
    },
    /// `UpdateTrail` turning log-file validation on, the key left as it is.
    EnableLogFileValidation(String),
    /// `StartLogging` of the trail (its ARN).
    StartLogging(String),
    /// `UpdateTrail` with an empty `KmsKeyId`: back to SSE-S3 (destroy).
    DisableTrailEncryption(String),
    /// `ScheduleKeyDeletion` with this waiting period in days (destroy --delete-key).
    ScheduleKeyDeletion(i32),
    /// `UpdateLandingZone`, then its operation awaited: Control Tower
    /// points its trail at the key (or back to SSE-S3).
    UpdateLandingZone(Box<LandingZoneStep>),
}

impl Step {
    /// Whether the step is an `UpdateTrail` call.
    pub fn is_trail_update(&self) -> bool {
        matches!(
            self,
            Step::UpdateTrail { .. }
                | Step::EnableLogFileValidation(_)
                | Step::DisableTrailEncryption(_)
        )
    }

    /// Whether a success of the step says what state it left, with the
    /// step itself: it sets the key's state, tags, policy or rotation, or
    /// starts logging, to exactly what it sends, and answers nothing
    /// ([`crate::apply::Verification::TakenAtTheirWord`]).
    pub fn taken_at_its_word(&self) -> bool {
        matches!(
            self,
            Step::EnableKey
                | Step::TagKey(_)
                | Step::PutKeyPolicy(_)
                | Step::EnableRotation(_)
                | Step::StartLogging(_)
        )
    }

    /// Whether the step writes to the trail: `UpdateTrail` or `StartLogging`.
    pub fn writes_trail(&self) -> bool {
        self.is_trail_update() || matches!(self, Step::StartLogging(_))
    }

    /// The AWS API operation the step calls.
    pub fn operation(&self) -> &'static str {
        match self {
            Step::CreateKey(_) => "CreateKey",
            Step::CancelKeyDeletion => "CancelKeyDeletion",
            Step::EnableKey => "EnableKey",
            Step::TagKey(_) => "TagResource",
            Step::CreateAlias(_) => "CreateAlias",
            Step::UpdateAlias(_) => "UpdateAlias",
            Step::DeleteAlias(_) => "DeleteAlias",
            Step::PutKeyPolicy(_) => "PutKeyPolicy",
            Step::EnableRotation(_) => "EnableKeyRotation",
            Step::UpdateTrail { .. }
            | Step::EnableLogFileValidation(_)
            | Step::DisableTrailEncryption(_) => "UpdateTrail",
            Step::StartLogging(_) => "StartLogging",
            Step::ScheduleKeyDeletion(_) => "ScheduleKeyDeletion",
            Step::UpdateLandingZone(_) => "UpdateLandingZone",
        }
    }
}

/// Serialized for `plan --format json`, and read back from a saved plan
/// (`crate::saved`) without its steps: applying a saved plan plans again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    pub before: Value,
    pub after: Value,
    pub reasons: Vec<String>,
    /// For `kms_key_policy`: the statement-level differences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statements: Option<policy::StatementDiff>,
    #[serde(skip)]
    pub steps: Vec<Step>,
}

impl Change {
    fn new(address: Address, action: Action, before: Value, after: Value) -> Self {
        Change {
            address,
            action,
            before,
            after,
            reasons: Vec::new(),
            statements: None,
            steps: Vec::new(),
        }
    }

    fn no_op(address: Address, value: Value) -> Self {
        Change::new(address, Action::NoOp, value.clone(), value)
    }

    fn because(mut self, reason: impl Into<String>) -> Self {
        self.reasons.push(reason.into());
        self
    }

    fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Self {
        self.steps.extend(steps);
        self
    }
}

/// The error for `findings` that hold an error-level finding: the setup is
/// broken in a way apply does not fix, so `plan --detailed-exitcode` and
/// `apply` exit 1 with it. Its message is the findings' text.
pub fn broken(findings: &[Finding]) -> Option<Error> {
    let errors: Vec<&str> = findings
        .iter()
        .filter(|f| f.level == Level::Error)
        .map(|f| f.message.as_str())
        .collect();
    (!errors.is_empty()).then(|| {
        Error::check(
            errors.join("\n"),
            "remove the foreign statement from the key policy, or narrow it so that it no longer denies CloudTrail or the Log Archive account (trailkey never changes statements it does not own), then run `trailkey plan` again",
        )
    })
}

/// Where the plan applies; shown above the changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub region: String,
    pub management_account: String,
    pub security_tooling_account: String,
    /// The account the key is in: Security Tooling, or with the landing
    /// zone the management account.
    pub key_account: String,
    pub trail_arn: String,
    pub alias: String,
    /// The existing key, if the alias names one.
    pub key_arn: Option<String>,
}

impl Target {
    fn of(desired: &Desired, observed: &Observed) -> Target {
        Target {
            region: desired.region.to_string(),
            management_account: observed.organization.management_account.clone(),
            security_tooling_account: desired.security_tooling.to_string(),
            key_account: desired.key_account.to_string(),
            trail_arn: observed.trail.arn.clone(),
            alias: desired.alias.full(),
            key_arn: observed.key.as_ref().map(|k| k.info.arn.clone()),
        }
    }
}

/// A saved plan (`crate::saved`) reads back what `plan --format json`
/// shows; what is skipped (the steps, the key) only a plan made from AWS has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(skip_deserializing, default = "format_version")]
    pub format_version: &'static str,
    pub target: Target,
    pub changes: Vec<Change>,
    pub findings: Vec<Finding>,
    /// The existing key the steps act on (`None`: a `CreateKey` step makes it).
    #[serde(skip)]
    pub key: Option<KeyInfo>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    /// The plan of `changes` and `findings` for `desired` and `observed`,
    /// on the key `key` (none yet: the key apply creates).
    fn of(
        desired: &Desired,
        observed: &Observed,
        changes: Vec<Change>,
        findings: Vec<Finding>,
        key: Option<&ObservedKey>,
    ) -> Plan {
        Plan {
            format_version: FORMAT_VERSION,
            target: Target::of(desired, observed),
            changes,
            findings,
            key: key.map(|k| k.info.clone()),
        }
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// Whether the plan changes `address`.
    pub fn changes(&self, address: Address) -> bool {
        self.changes
            .iter()
            .any(|c| c.address == address && c.action != Action::NoOp)
    }

    /// Whether applying the plan writes to the trail (`UpdateTrail`).
    pub fn changes_trail(&self) -> bool {
        self.steps().any(|(_, s)| s.is_trail_update())
    }

    pub fn summary(&self) -> Summary {
        let count = |a| self.changes.iter().filter(|c| c.action == a).count();
        Summary {
            add: count(Action::Create),
            change: count(Action::Update),
            destroy: count(Action::Delete),
        }
    }

    pub fn steps(&self) -> impl Iterator<Item = (Address, &Step)> {
        self.changes
            .iter()
            .flat_map(|c| c.steps.iter().map(move |s| (c.address, s)))
    }
}

/// A read a plan may depend on that observe does not make up front
/// ([`OnDemand`]): planning asks for it, the reconcile loop reads it, and
/// planning starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The organization's accounts (`organizations:ListAccounts`): a foreign
    /// statement of the key policy opens the key to an account trailkey does
    /// not know, and its finding says whether that account is in the
    /// organization.
    OrganizationAccounts,
    /// The trail's tags, for the Control Tower guard: the trail would change.
    TrailTags,
    /// The trail bucket as `roles.log_archive` reads it: the trail's key
    /// would change, and the bucket must take CloudTrail's files after.
    LogBucket,
}

impl Need {
    /// Every kind of read planning may ask for.
    pub const ALL: [Need; 3] = [Need::OrganizationAccounts, Need::TrailTags, Need::LogBucket];

    /// Whether `observed` holds what this read gives.
    fn is_read(self, observed: &Observed) -> bool {
        match self {
            Need::OrganizationAccounts => observed.organization_accounts.is_read(),
            Need::TrailTags => observed.trail_tags.is_read(),
            Need::LogBucket => observed.log_bucket.is_read(),
        }
    }
}

/// What planning came to.
#[derive(Debug)]
pub enum Planned {
    Ready(Box<Plan>),
    /// The plan depends on these reads, none of them made yet.
    Needs(Vec<Need>),
}

impl Planned {
    /// The reads among `wanted` (each with whether the plan depends on it)
    /// not made yet, or `ready` when there are none.
    fn unless_needs(
        observed: &Observed,
        wanted: [(Need, bool); Need::ALL.len()],
        ready: impl FnOnce() -> Result<Plan, Error>,
    ) -> Result<Planned, Error> {
        let needs: Vec<Need> = wanted
            .into_iter()
            .filter(|&(need, wanted)| wanted && !need.is_read(observed))
            .map(|(need, _)| need)
            .collect();
        if needs.is_empty() {
            ready().map(|plan| Planned::Ready(Box::new(plan)))
        } else {
            Ok(Planned::Needs(needs))
        }
    }
}

/// Whether `changes` write to the trail, and whether they change its key.
fn trail_writes(changes: &[Change]) -> (bool, bool) {
    let writes = changes
        .iter()
        .flat_map(|c| &c.steps)
        .any(Step::writes_trail);
    let rekeys = changes.iter().any(|c| {
        matches!(c.address, Address::TrailEncryption | Address::LandingZone)
            && c.action != Action::NoOp
    });
    (writes, rekeys)
}

/// Builds the plan, or says which reads it depends on first ([`Need`]).
/// Pure: the same inputs give the same answer.
pub fn plan(desired: &Desired, observed: &Observed) -> Result<Planned, Error> {
    plan_for(desired, observed, true)
}

/// [`plan`] for a run that makes the landing zone's change
/// (`landing_zone_updates`) or leaves it pending (the Lambda function's
/// apply): a pending change is no write that Control Tower's being busy
/// holds back.
pub fn plan_for(
    desired: &Desired,
    observed: &Observed,
    landing_zone_updates: bool,
) -> Result<Planned, Error> {
    check_context(
        desired,
        observed.runner,
        &observed.identity,
        &observed.organization,
    )?;
    check_readers(desired, &observed.organization.management_account)?;
    // The Control Tower guard (the trail's tags) only when the plan writes
    // the trail, below: a trail already as configured is never refused.
    check_trail(desired, &observed.trail, None)?;
    let zone = check_landing_zone(desired, observed)?;
    check_bucket(desired, observed)?;
    if let Some(k) = &observed.key {
        check_key(desired, &k.info)?;
        check_tag_limit(desired, k)?;
    }
    let current = current_policy(observed)?;
    check_adoption(desired, observed, current.as_ref())?;
    let merged = merged_policy(desired, observed, current.as_ref())?;
    let key = observed.key.as_ref();
    let mut changes = vec![key_change(desired, observed, &merged)];
    changes.extend(alias_changes(desired, observed));
    changes.push(policy_change(desired, current.as_ref(), &merged));
    changes.push(rotation_change(desired, key));
    match zone {
        Some(zone) => changes.push(landing_zone_change(desired, observed, zone)?),
        None => {
            let trail = trail_change(desired, observed);
            let validation = validation_change(desired, &observed.trail, &trail);
            changes.push(trail);
            changes.extend(validation);
            changes.extend(logging_change(desired, observed));
        }
    }
    let writes = |lz: bool| {
        changes
            .iter()
            .any(|c| (c.address == Address::LandingZone) == lz && !c.steps.is_empty())
    };
    let writes_landing_zone = landing_zone_updates && writes(true);
    let busy = refuse_while_busy(observed, zone, writes(false), writes_landing_zone)?;
    let (writes_trail, rekeys_trail) = trail_writes(&changes);
    if writes_trail {
        check_trail(desired, &observed.trail, observed.trail_tags.read())?;
    }
    let wanted = [
        (
            Need::OrganizationAccounts,
            crate::exposure::needs_accounts(desired, observed),
        ),
        (Need::TrailTags, writes_trail),
        (
            Need::LogBucket,
            rekeys_trail && desired.log_archive_role.is_some(),
        ),
    ];
    Planned::unless_needs(observed, wanted, || {
        let policy_unchanged = !changes
            .iter()
            .any(|c| c.address == Address::KmsKeyPolicy && c.action != Action::NoOp);
        let mut findings = findings(desired, observed, current.as_ref(), policy_unchanged);
        findings.extend(zone.map_or_else(Vec::new, |z| landing_zone_findings(observed, z)));
        findings.extend(busy);
        if rekeys_trail {
            findings.extend(log_archive_findings(desired, observed, false)?);
        }
        Ok(Plan::of(desired, observed, changes, findings, key))
    })
}

#[cfg(test)]
mod tests;
