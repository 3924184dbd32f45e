//! An in-memory AWS for tests of what moto cannot emulate: scripted errors
//! (CloudTrail's `InsufficientEncryptionPolicyException`, throttling that
//! outlasts retries, ...) and a crash between two writes. It records every
//! call so tests can assert what was, and was not, written.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use trailkey_testkit::cloudtrail_policy;

use super::WRITES;
use super::{
    Account, AwsError, AwsResult, CallerIdentity, Connect, DEFAULT_ROTATION_PERIOD_DAYS,
    EventDataStore, EventSelectors, FeatureSet, KeyInfo, KeyManager, KeySpec, KeyState, KeyStore,
    KeyUsage, LandingZone, LandingZoneOperation, LandingZoneStatus, LandingZoneUpdate,
    LandingZones, LogArchive, LogBucket, Management, NewKey, OperationStatus, Organization, Origin,
    RotationStatus, Trail, TrailStatus, TrailUpdate, code,
};

#[derive(Debug, Clone)]
pub struct FakeKey {
    pub info: KeyInfo,
    pub policy: String,
    pub rotation: bool,
    /// The rotation period KMS keeps, in days: set by `EnableKeyRotation`
    /// (365 without one), reported while rotation is on.
    pub rotation_period: i32,
    pub tags: BTreeMap<String, String>,
}

/// Something another actor does at the moment trailkey calls an operation,
/// before the fake answers it (see [`FakeCloud::before`]).
pub struct Hook(Box<dyn FnOnce(&mut FakeState)>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub identity: Option<CallerIdentity>,
    pub organization: Option<Organization>,
    /// Trails by ARN.
    pub trails: BTreeMap<String, Trail>,
    pub keys: Vec<FakeKey>,
    /// Alias name (`alias/...`) to key ID.
    pub aliases: BTreeMap<String, String>,
    /// Every operation called, in order (`AssumeRole` included).
    pub calls: Vec<&'static str>,
    /// Errors to return, by operation, each used once.
    pub failures: HashMap<&'static str, Vec<AwsError>>,
    /// Fail every write after this many writes succeeded (a crash).
    pub crash_after_writes: Option<usize>,
    /// Simulated latency of every call (on tokio's clock): with a paused
    /// clock, the time a run takes divided by this is its number of
    /// sequential rounds of AWS calls.
    pub latency: Option<std::time::Duration>,
    pub region: String,
    pub security_tooling_account: String,
    /// `GetTrailStatus` by trail ARN (default: logging, no errors).
    pub trail_status: BTreeMap<String, TrailStatus>,
    /// By trail ARN: its custom event selectors (`HasCustomEventSelectors`
    /// is set from them); a trail without an entry has the default ones.
    pub event_selectors: BTreeMap<String, EventSelectors>,
    /// Trail tags by trail ARN.
    pub trail_tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Bucket Regions (default: the fake's Region).
    pub bucket_regions: BTreeMap<String, String>,
    /// What the Log Archive role reads of each bucket (default: no policy,
    /// no default encryption, no replication).
    pub log_buckets: BTreeMap<String, LogBucket>,
    /// The roles assumed, in order.
    pub assumed: Vec<String>,
    /// The principal ARN the KMS calls on a key are made as (a role's ARN
    /// for its sessions), for the key policy check: an explicit `Deny` of
    /// the call to it fails with `AccessDeniedException`. `None`: no check.
    pub caller: Option<String>,
    pub accounts: Vec<Account>,
    /// CloudTrail delivering over time: this long after the first
    /// `GetTrailStatus` (see `status_clock`), `GetTrailStatus` reports a
    /// log file delivered at that moment (`latest_delivery_time`).
    pub delivery_after: Option<std::time::Duration>,
    /// This long after the first `GetTrailStatus`, `GetTrailStatus` reports
    /// this `LatestDeliveryError`.
    pub delivery_error_after: Option<(std::time::Duration, String)>,
    /// Tokio's clock and the system clock at the first `GetTrailStatus`:
    /// the fake's delivery times are tokio's clock mapped onto the system
    /// clock, so a paused clock moves them too. Reset it to start again.
    pub status_clock: Option<(tokio::time::Instant, std::time::SystemTime)>,
    /// What other actors do when trailkey calls an operation, each once.
    pub hooks: Vec<(&'static str, Hook)>,
    /// KMS's eventual consistency, as AWS shows it: for this long after
    /// `CreateKey`, the new key is not found (`NotFoundException`, and
    /// `KmsKeyNotFoundException` from `UpdateTrail`), nor listed; for this
    /// long after `CreateAlias` or `UpdateAlias`, the alias is not found.
    pub propagation: Option<std::time::Duration>,
    /// When each new key (by ID) or new or moved alias becomes visible.
    pub visible_at: HashMap<String, tokio::time::Instant>,
    /// By key ID, the policy a key had before its last `PutKeyPolicy` and
    /// when that call was made: for `propagation` after it, CloudTrail
    /// still evaluates that previous policy on `UpdateTrail`.
    pub previous_policies: HashMap<String, (String, tokio::time::Instant)>,
    /// By key ID, the state a key had before its last `EnableKey` or
    /// `CancelKeyDeletion` and when that call was made: for `propagation`
    /// after it, KMS and CloudTrail still see that state (`DescribeKey`
    /// shows it, writes are refused in it, `UpdateTrail` naming a key still
    /// seen disabled answers `KmsKeyDisabledException`).
    pub previous_states: HashMap<String, (KeyState, tokio::time::Instant)>,
    /// KMS's and CloudTrail's eventual consistency for what trailkey reads
    /// back: for this long after a key's `PutKeyPolicy`,
    /// `EnableKeyRotation` or `TagResource`, `GetKeyPolicy`,
    /// `GetKeyRotationStatus` and `ListResourceTags` answer as before the
    /// write, and `GetTrailStatus` shows a trail's logging as before its
    /// `StartLogging` (a write within that time starts it again, the reads
    /// still showing the value from before the first). `None`: reads show
    /// a write at once.
    pub read_lag: Option<std::time::Duration>,
    /// By key ID, the key as it was before the first of its writes still
    /// within `read_lag`, and when that write was made.
    pub lagging_keys: HashMap<String, (FakeKey, tokio::time::Instant)>,
    /// By trail ARN, whether it logged before a `StartLogging` still within
    /// `read_lag`, and when that call was made.
    pub lagging_logging: HashMap<String, (bool, tokio::time::Instant)>,
    /// The `RotationPeriodInDays` of the `EnableKeyRotation` being
    /// answered, for the key policy's `kms:RotationPeriodInDays`.
    pub period_asked: Option<i32>,
    /// Grants by key ID (`ListGrants`).
    pub grants: HashMap<String, Vec<super::Grant>>,
    /// The account's Regions and their opt-in status (`ListRegions`:
    /// `ENABLED`, `ENABLED_BY_DEFAULT`, `DISABLED`, ...). Empty: the fake's
    /// Region alone, enabled by default.
    pub regions: Vec<(String, String)>,
    /// The Regions `DescribeTrails` was called in, in order.
    pub trails_described_in: Vec<String>,
    /// The CloudTrail Lake event data stores of the fake's Region.
    pub event_data_stores: Vec<EventDataStore>,
    /// Key IDs whose key policy does not let the caller in: every KMS call
    /// on them fails with `AccessDeniedException` (other teams' keys, keys
    /// of other services).
    pub unreadable: Vec<String>,
    /// Control Tower's landing zone, if the organization has one.
    pub landing_zone: Option<LandingZone>,
    /// Landing-zone operations, oldest first, each with when it ends (on
    /// tokio's clock) and the trail and key it sets then.
    pub landing_zone_operations: Vec<(LandingZoneOperation, tokio::time::Instant)>,
    /// How long an `UpdateLandingZone` operation runs (tokio's clock).
    pub landing_zone_operation_time: std::time::Duration,
    /// The `UpdateLandingZone` calls, as sent.
    pub landing_zone_updates: Vec<(String, serde_json::Value)>,
    /// When set, update operations end `FAILED` with this message.
    pub landing_zone_failure: Option<String>,
    /// The caller's credentials do not name their account (as the EC2 and
    /// container providers, or keys without `AWS_ACCOUNT_ID`): only
    /// `GetCallerIdentity` tells it. Default: they name it.
    pub credentials_unnamed: bool,
    /// Organizations' delegated administrators, as (service principal,
    /// account) (`ListDelegatedAdministrators`).
    pub delegated_administrators: Vec<(String, String)>,
    /// The account `GetCallerIdentity` answered, as the connection keeps it.
    pub answered_account: Option<String>,
    /// How long the credentials `AssumeRole` hands out for Security Tooling
    /// last; `None`: an hour, STS's default.
    pub role_session: Option<std::time::Duration>,
}

impl FakeState {
    /// A trail as `GetTrail` and `DescribeTrails` describe it:
    /// `HasCustomEventSelectors` when it has selectors of its own.
    fn described(&self, trail: &Trail) -> Trail {
        Trail {
            has_custom_event_selectors: self.event_selectors.contains_key(&trail.arn),
            ..trail.clone()
        }
    }

    /// The caller's account and the organization's management account.
    fn caller_and_management(&self) -> (Option<&str>, Option<&str>) {
        (
            self.identity.as_ref().map(|i| i.account.as_str()),
            self.organization
                .as_ref()
                .map(|o| o.management_account.as_str()),
        )
    }

    /// Whether `name` (a key ID, key ARN or alias name) is still hidden by
    /// propagation: a key created, or an alias created or moved, moments ago.
    fn hidden(&self, name: &str) -> bool {
        let now = tokio::time::Instant::now();
        let later = |id: &str| self.visible_at.get(id).is_some_and(|at| *at > now);
        if name.starts_with("alias/") {
            return later(name) || self.aliases.get(name).is_some_and(|id| later(id));
        }
        self.keys
            .iter()
            .find(|k| k.info.key_id == name || k.info.arn == name)
            .is_some_and(|k| later(&k.info.key_id))
    }

    /// Records a key's state change `(key ID, old state)`, seen late for
    /// `propagation` (see [`FakeState::previous_states`]).
    fn state_changed(&mut self, (id, old): (String, KeyState)) {
        if self.propagation.is_some() {
            self.previous_states
                .insert(id, (old, tokio::time::Instant::now()));
        }
    }

    /// After a write of a key's policy, rotation or tags: `before`, the
    /// key as it was, is what reads show for `read_lag` ([`lag_write`]).
    fn lag_key(&mut self, before: FakeKey) {
        let id = before.info.key_id.clone();
        lag_write(self.read_lag, &mut self.lagging_keys, id, before);
    }

    /// `key` as its reads show it now (`read_lag`).
    fn read_key(&self, key: FakeKey) -> FakeKey {
        lagged(self.read_lag, &self.lagging_keys, &key.info.key_id)
            .cloned()
            .unwrap_or(key)
    }

    /// The state KMS shows for `key` now: the one before its last state
    /// change, while that change propagates.
    fn seen_state(&self, key: &FakeKey) -> KeyState {
        let now = tokio::time::Instant::now();
        match self.previous_states.get(&key.info.key_id) {
            Some((old, at)) if self.propagation.is_some_and(|w| now < *at + w) => old.clone(),
            _ => key.info.state.clone(),
        }
    }

    /// Starts the propagation window of `id` (a key ID or alias name).
    fn propagating(&mut self, id: &str) {
        if let Some(window) = self.propagation {
            self.visible_at
                .insert(id.to_owned(), tokio::time::Instant::now() + window);
        }
    }
}

/// A fake AWS: cheap to clone, clones share state.
/// The partition of `region`, as AWS builds its ARNs (`aws` for a name the
/// config would refuse).
fn partition_of(region: &str) -> &'static str {
    crate::config::Region::check(region).map_or("aws", |r| r.partition())
}

#[derive(Debug, Clone, Default)]
pub struct FakeCloud {
    pub state: Rc<RefCell<FakeState>>,
    /// As the Security Tooling client of an assumed role: when its
    /// credentials expire. A call made with them after that fails as STS
    /// credentials fail (`ExpiredTokenException`).
    pub expires: Option<std::time::SystemTime>,
}

impl FakeCloud {
    /// `DescribeTrails` in `region`: the trails homed there and, with
    /// `shadows`, the multi-Region trails homed elsewhere.
    async fn trails_in(&self, region: &str, shadows: bool) -> AwsResult<Vec<Trail>> {
        self.call("DescribeTrails").await?;
        let mut s = self.state.borrow_mut();
        s.trails_described_in.push(region.to_owned());
        Ok(s.trails
            .values()
            .filter(|t| t.home_region == region || (shadows && t.is_multi_region_trail))
            .map(|t| s.described(t))
            .collect())
    }

    /// An organization with management account `management`, a trail named
    /// `trail` in `region`, and an empty Security Tooling account.
    pub fn new(region: &str, management: &str, security_tooling: &str, trail: &str) -> Self {
        let partition = partition_of(region);
        let arn = format!("arn:{partition}:cloudtrail:{region}:{management}:trail/{trail}");
        let state = FakeState {
            identity: Some(CallerIdentity {
                account: management.to_owned(),
                arn: format!("arn:{partition}:iam::{management}:user/admin"),
            }),
            organization: Some(Organization {
                id: "o-fake00001".to_owned(),
                management_account: management.to_owned(),
                feature_set: FeatureSet::All,
            }),
            trails: BTreeMap::from([(
                arn.clone(),
                Trail {
                    name: trail.to_owned(),
                    arn,
                    home_region: region.to_owned(),
                    kms_key_id: None,
                    is_organization_trail: true,
                    is_multi_region_trail: true,
                    s3_bucket: "org-trail-logs".to_owned(),
                    s3_key_prefix: None,
                    log_file_validation: true,
                    has_custom_event_selectors: false,
                },
            )]),
            region: region.to_owned(),
            security_tooling_account: security_tooling.to_owned(),
            ..FakeState::default()
        };
        Self {
            state: Rc::new(RefCell::new(state)),
            expires: None,
        }
    }

    /// Makes the next call of `operation` fail with `code`.
    pub fn fail_next(&self, operation: &'static str, code: &str, message: &str) {
        self.state
            .borrow_mut()
            .failures
            .entry(operation)
            .or_default()
            .push(AwsError::new(operation, code, message));
    }

    /// The next time trailkey calls `operation`, `then` changes the state
    /// first, as another actor would between trailkey's reads and that call.
    pub fn before(&self, operation: &'static str, then: impl FnOnce(&mut FakeState) + 'static) {
        self.state
            .borrow_mut()
            .hooks
            .push((operation, Hook(Box::new(then))));
    }

    pub fn calls(&self) -> Vec<&'static str> {
        self.state.borrow().calls.clone()
    }

    /// The write operations called, in order.
    pub fn writes(&self) -> Vec<&'static str> {
        self.calls()
            .into_iter()
            .filter(|c| WRITES.contains(c))
            .collect()
    }

    pub fn clear_calls(&self) {
        self.state.borrow_mut().calls.clear();
    }

    async fn delay(&self) {
        let latency = self.state.borrow().latency;
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
    }

    /// One call of `op`: recorded, failed if scripted to, and otherwise
    /// taking the simulated latency.
    async fn call(&self, op: &'static str) -> AwsResult<()> {
        self.record(op)?;
        self.delay().await;
        Ok(())
    }

    /// Records the call and returns the scripted failure, if any.
    fn record(&self, op: &'static str) -> AwsResult<()> {
        let mut s = self.state.borrow_mut();
        if self
            .expires
            .is_some_and(|at| at <= std::time::SystemTime::now())
        {
            s.calls.push(op);
            return Err(AwsError::new(
                op,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ));
        }
        if WRITES.contains(&op)
            && let Some(limit) = s.crash_after_writes
        {
            let writes = s.calls.iter().filter(|c| WRITES.contains(c)).count();
            if writes >= limit {
                return Err(AwsError::new(op, "Crash", "the process stopped here"));
            }
        }
        s.calls.push(op);
        if let Some(i) = s.hooks.iter().position(|(o, _)| *o == op) {
            let (_, Hook(then)) = s.hooks.remove(i);
            then(&mut s);
        }
        if let Some(list) = s.failures.get_mut(op)
            && !list.is_empty()
        {
            return Err(list.remove(0));
        }
        Ok(())
    }

    fn with_key<T>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&mut FakeKey) -> T,
    ) -> AwsResult<T> {
        let mut s = self.state.borrow_mut();
        if s.hidden(key) {
            return Err(AwsError::new(
                op,
                code::NOT_FOUND,
                format!("key {key} not found"),
            ));
        }
        let id = s
            .aliases
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_owned());
        let caller = s.caller.clone();
        let index = s
            .keys
            .iter()
            .position(|k| k.info.key_id == id || k.info.arn == id)
            .ok_or_else(|| AwsError::new(op, code::NOT_FOUND, format!("key {key} not found")))?;
        if s.unreadable.contains(&s.keys[index].info.key_id) {
            let caller = caller.unwrap_or_else(|| {
                format!(
                    "arn:aws:sts::{}:assumed-role/AWSControlTowerExecution/trailkey",
                    s.security_tooling_account
                )
            });
            return Err(AwsError::new(
                op,
                code::ACCESS_DENIED_EXCEPTION,
                format!(
                    "User: {caller} is not authorized to perform: kms:{op} on resource: {} because no resource-based policy allows the kms:{op} action",
                    s.keys[index].info.arn
                ),
            ));
        }
        let period = s.period_asked.map(|d| d.to_string());
        let found = &mut s.keys[index];
        if let Some(denied) = key_policy_denies(caller.as_deref(), op, found, period.as_deref()) {
            return Err(denied);
        }
        Ok(f(found))
    }

    /// [`FakeCloud::with_key`] for a write, refused as KMS refuses it in the
    /// key's state ("Key states of AWS KMS keys" in the AWS KMS Developer
    /// Guide): a key pending deletion takes only `CancelKeyDeletion` and
    /// `PutKeyPolicy`; a disabled key refuses `EnableKeyRotation`; only a
    /// key pending deletion can have its deletion cancelled.
    fn write_key<T>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&mut FakeKey) -> T,
    ) -> AwsResult<T> {
        let seen = self.with_key(op, key, |k| k.clone())?;
        let state = self.state.borrow().seen_state(&seen);
        let refused = match (&state, op) {
            (KeyState::PendingDeletion, "CancelKeyDeletion" | "PutKeyPolicy") => None,
            (KeyState::PendingDeletion, _) => Some(code::KMS_INVALID_STATE),
            (KeyState::Disabled, "EnableKeyRotation") => Some(code::DISABLED),
            (_, "CancelKeyDeletion") => Some(code::KMS_INVALID_STATE),
            _ => None,
        };
        if let Some(code) = refused {
            return Err(AwsError::new(op, code, format!("{key} is {state}.")));
        }
        self.with_key(op, key, f)
    }

    /// `write` of `key`'s policy, rotation or tags, shown to reads
    /// `read_lag` late once it succeeded ([`FakeState::lag_key`]).
    fn lagging_write<T>(
        &self,
        op: &'static str,
        key: &str,
        write: impl FnOnce() -> AwsResult<T>,
    ) -> AwsResult<T> {
        let before = self.with_key(op, key, |k| k.clone())?;
        let written = write()?;
        self.state.borrow_mut().lag_key(before);
        Ok(written)
    }

    /// The ARN of the trail `name` (a name or an ARN). As CloudTrail does,
    /// a name is looked up in the caller's own account: a member account
    /// (CloudTrail's delegated administrator too) must name an
    /// organization trail by its ARN.
    fn find_trail(&self, op: &'static str, name: &str) -> AwsResult<String> {
        let s = self.state.borrow();
        let (caller, management) = s.caller_and_management();
        if !name.starts_with("arn:") && caller != management {
            return Err(AwsError::new(
                op,
                code::TRAIL_NOT_FOUND,
                format!(
                    "Unknown trail: {name} for the user: {}",
                    caller.unwrap_or_default()
                ),
            ));
        }
        drop(s);
        self.state
            .borrow()
            .trails
            .values()
            .find(|t| t.arn == name || t.name == name)
            .map(|t| t.arn.clone())
            .ok_or_else(|| {
                AwsError::new(op, code::TRAIL_NOT_FOUND, format!("Unknown trail: {name}"))
            })
    }
}

/// After a write of `id`: `before`, its value as it was, is what reads
/// show for `lag` from now (`FakeState::read_lag`). While an earlier
/// write's window runs, what reads show stays, and the window starts again.
fn lag_write<T>(
    lag: Option<std::time::Duration>,
    shown: &mut HashMap<String, (T, tokio::time::Instant)>,
    id: String,
    before: T,
) {
    if lag.is_none() {
        return;
    }
    let now = tokio::time::Instant::now();
    let kept = match shown.remove(&id) {
        Some((earlier, at)) if lagged_at(lag, at) => earlier,
        _ => before,
    };
    shown.insert(id, (kept, now));
}

/// What reads of `id` show instead of its value, while a write of it is
/// within `lag` ([`lag_write`]).
fn lagged<'a, T>(
    lag: Option<std::time::Duration>,
    shown: &'a HashMap<String, (T, tokio::time::Instant)>,
    id: &str,
) -> Option<&'a T> {
    shown
        .get(id)
        .filter(|(_, at)| lagged_at(lag, *at))
        .map(|(value, _)| value)
}

/// Whether a write made `at` is still unseen by reads `lag` late.
fn lagged_at(lag: Option<std::time::Duration>, at: tokio::time::Instant) -> bool {
    lag.is_some_and(|lag| tokio::time::Instant::now() < at + lag)
}

/// KMS's check of `key`'s policy for a call `op` by `caller` (see
/// [`FakeState::caller`]), with the evaluator of the real-AWS test layer
/// (`tests/testkit/src/key_policy.rs`): an explicit `Deny` fails the call with
/// `AccessDeniedException`, worded as KMS words it. Only explicit denies:
/// what the key policy does not allow may still be allowed by IAM, which
/// the fake does not model.
fn key_policy_denies(
    caller: Option<&str>,
    op: &'static str,
    key: &FakeKey,
    period: Option<&str>,
) -> Option<AwsError> {
    use trailkey_testkit::key_policy::{Caller, Decision, Request, evaluate};
    let caller = caller?;
    let document = serde_json::from_str(&key.policy).unwrap_or(serde_json::Value::Null);
    let action = format!("kms:{op}");
    let request = Request {
        caller: Caller::aws(caller),
        action: &action,
        context: period
            .filter(|_| op == "EnableKeyRotation")
            .map(|days| ("kms:RotationPeriodInDays", days))
            .into_iter()
            .collect(),
    };
    match evaluate(&document, &request) {
        Decision::ExplicitlyDenied { .. } => Some(AwsError::new(
            op,
            code::ACCESS_DENIED_EXCEPTION,
            format!(
                "User: {caller} is not authorized to perform: {action} on resource: {} \
                 with an explicit deny in a resource-based policy",
                key.info.arn
            ),
        )),
        Decision::Allowed | Decision::NotAllowed => None,
    }
}

impl Management for FakeCloud {
    async fn caller_identity(&self) -> AwsResult<CallerIdentity> {
        self.call("GetCallerIdentity").await?;
        let mut s = self.state.borrow_mut();
        let identity = s.identity.clone().expect("fake identity");
        s.answered_account = Some(identity.account.clone());
        Ok(identity)
    }

    async fn describe_organization(&self) -> AwsResult<Organization> {
        self.call("DescribeOrganization").await?;
        self.state.borrow().organization.clone().ok_or_else(|| {
            AwsError::new(
                "DescribeOrganization",
                "AWSOrganizationsNotInUseException",
                "Your account is not a member of an organization.",
            )
        })
    }

    async fn get_trail(&self, name: &str) -> AwsResult<Trail> {
        self.call("GetTrail").await?;
        let arn = self.find_trail("GetTrail", name)?;
        let s = self.state.borrow();
        Ok(s.described(&s.trails[&arn]))
    }

    async fn update_trail(&self, trail: &str, update: TrailUpdate<'_>) -> AwsResult<Trail> {
        self.call("UpdateTrail").await?;
        let arn = self.find_trail("UpdateTrail", trail)?;
        let mut s = self.state.borrow_mut();
        // UpdateTrail changes everything or nothing: validation is set with
        // the key, once the key passed CloudTrail's checks.
        let validation = update.enable_log_file_validation;
        let Some(key_arn) = update.kms_key_id else {
            let t = s.trails.get_mut(&arn).expect("found above");
            t.log_file_validation |= validation;
            return Ok(t.clone());
        };
        // "the S3 bucket and the KMS key are not in the same Region"
        // (cloudtrail model, `KmsKeyNotFoundException`).
        let bucket = &s.trails[&arn].s3_bucket;
        let bucket_region = s.bucket_regions.get(bucket).unwrap_or(&s.region);
        let key_region = key_arn
            .split(':')
            .nth(3)
            .filter(|_| key_arn.starts_with("arn:"));
        if key_region.is_some_and(|r| r != bucket_region) {
            return Err(AwsError::new(
                "UpdateTrail",
                code::KMS_KEY_NOT_FOUND,
                format!("Cannot find KMS key {key_arn}"),
            ));
        }
        if !key_arn.is_empty() && s.hidden(key_arn) {
            return Err(AwsError::new(
                "UpdateTrail",
                code::KMS_KEY_NOT_FOUND,
                format!("Cannot find KMS key {key_arn}"),
            ));
        }
        // CloudTrail's check of the key policy, as the real-AWS test layer
        // applies it (`tests/testkit/src/cloudtrail_policy.rs`), on the policy
        // CloudTrail sees: the previous one for `propagation` after a
        // `PutKeyPolicy`, with `kms:Decrypt` asked for too when the trail's
        // bucket uses an S3 Bucket Key (`log_buckets`). A key the fake does
        // not hold is not checked.
        let id = s.aliases.get(key_arn).map_or(key_arn, String::as_str);
        if let Some(key) = s
            .keys
            .iter()
            .find(|k| !key_arn.is_empty() && (k.info.key_id == id || k.info.arn == id))
        {
            if s.seen_state(key) != KeyState::Enabled {
                return Err(AwsError::new(
                    "UpdateTrail",
                    code::KMS_KEY_DISABLED,
                    format!("KMS key {key_arn} is disabled"),
                ));
            }
            let now = tokio::time::Instant::now();
            let policy = match s.previous_policies.get(&key.info.key_id) {
                Some((previous, changed)) if s.propagation.is_some_and(|w| now < *changed + w) => {
                    previous
                }
                _ => &key.policy,
            };
            let management = s
                .organization
                .as_ref()
                .map(|o| o.management_account.clone())
                .unwrap_or_default();
            let partition = arn.split(':').nth(1).unwrap_or("aws");
            let document = serde_json::from_str(policy).unwrap_or(serde_json::Value::Null);
            let bucket_key = s
                .log_buckets
                .get(&s.trails[&arn].s3_bucket)
                .and_then(|b| b.encryption.as_ref())
                .is_some_and(|e| e.bucket_key_enabled);
            let bucket = if bucket_key {
                cloudtrail_policy::Bucket::BucketKey
            } else {
                cloudtrail_policy::Bucket::Plain
            };
            if let Err(why) = cloudtrail_policy::cloudtrail_accepts(
                &document,
                &arn,
                &management,
                partition,
                bucket,
            ) {
                return Err(AwsError::new(
                    "UpdateTrail",
                    code::INSUFFICIENT_ENCRYPTION_POLICY,
                    format!("Insufficient permissions to use KMS key {key_arn} for {arn}: {why}"),
                ));
            }
        }
        let t = s.trails.get_mut(&arn).expect("found above");
        t.kms_key_id = Some(key_arn.to_owned()).filter(|k| !k.is_empty());
        t.log_file_validation |= validation;
        Ok(t.clone())
    }

    async fn event_selectors(&self, trail: &str) -> AwsResult<EventSelectors> {
        self.call("GetEventSelectors").await?;
        let arn = self.find_trail("GetEventSelectors", trail)?;
        let s = self.state.borrow();
        Ok(s.event_selectors
            .get(&arn)
            .cloned()
            .unwrap_or_else(|| EventSelectors {
                basic: vec![crate::aws::EventSelector {
                    read_write_type: "All".to_owned(),
                    include_management_events: true,
                    exclude_management_event_sources: Vec::new(),
                }],
                advanced: Vec::new(),
            }))
    }

    async fn start_logging(&self, trail: &str) -> AwsResult<()> {
        self.call("StartLogging").await?;
        let arn = self.find_trail("StartLogging", trail)?;
        let mut s = self.state.borrow_mut();
        let s = &mut *s;
        let was = s.trail_status.get(&arn).is_none_or(|t| t.is_logging);
        lag_write(s.read_lag, &mut s.lagging_logging, arn.clone(), was);
        s.trail_status.entry(arn).or_default().is_logging = true;
        Ok(())
    }

    async fn trail_status(&self, trail: &str) -> AwsResult<TrailStatus> {
        self.call("GetTrailStatus").await?;
        let arn = self.find_trail("GetTrailStatus", trail)?;
        let mut s = self.state.borrow_mut();
        let now = tokio::time::Instant::now();
        let (origin, wall) = *s
            .status_clock
            .get_or_insert((now, std::time::SystemTime::now()));
        let elapsed = now.saturating_duration_since(origin);
        let mut status = s.trail_status.get(&arn).cloned().unwrap_or(TrailStatus {
            is_logging: true,
            ..TrailStatus::default()
        });
        if let Some(after) = s.delivery_after
            && elapsed >= after
        {
            let at = (wall + after)
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after the epoch");
            status.latest_delivery_time = Some(i64::try_from(at.as_secs()).expect("in range"));
        }
        if let Some((after, error)) = &s.delivery_error_after
            && elapsed >= *after
        {
            status.latest_delivery_error = Some(error.clone());
        }
        if let Some(was) = lagged(s.read_lag, &s.lagging_logging, &arn) {
            status.is_logging = *was;
        }
        Ok(status)
    }

    async fn trail_tags(&self, trail_arn: &str) -> AwsResult<BTreeMap<String, String>> {
        self.call("ListTags").await?;
        let arn = self.find_trail("ListTags", trail_arn)?;
        Ok(self
            .state
            .borrow()
            .trail_tags
            .get(&arn)
            .cloned()
            .unwrap_or_default())
    }

    async fn bucket_region(&self, bucket: &str) -> AwsResult<String> {
        self.call("HeadBucket").await?;
        let s = self.state.borrow();
        Ok(s.bucket_regions
            .get(bucket)
            .cloned()
            .unwrap_or_else(|| s.region.clone()))
    }

    async fn list_accounts(&self) -> AwsResult<Vec<Account>> {
        self.call("ListAccounts").await?;
        // Sorted, as the real-AWS layer gives them.
        let mut accounts = self.state.borrow().accounts.clone();
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(accounts)
    }

    /// As Organizations answers: the management account and a delegated
    /// administrator get the list, another member `AccessDeniedException`.
    async fn delegated_administrators(&self, service_principal: &str) -> AwsResult<Vec<String>> {
        self.call("ListDelegatedAdministrators").await?;
        let s = self.state.borrow();
        let (caller, management) = s.caller_and_management();
        // A delegated administrator of any service may list them.
        if caller != management
            && !caller.is_some_and(|c| s.delegated_administrators.iter().any(|(_, a)| a == c))
        {
            return Err(AwsError::new(
                "ListDelegatedAdministrators",
                code::ACCESS_DENIED_EXCEPTION,
                "You don't have permissions to access this resource.",
            ));
        }
        Ok(s.delegated_administrators
            .iter()
            .filter(|(p, _)| p == service_principal)
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn describe_trails(&self) -> AwsResult<Vec<Trail>> {
        let region = self.state.borrow().region.clone();
        self.trails_in(&region, true).await
    }

    async fn enabled_regions(&self) -> AwsResult<Vec<String>> {
        self.call("ListRegions").await?;
        let s = self.state.borrow();
        if s.regions.is_empty() {
            return Ok(vec![s.region.clone()]);
        }
        Ok(s.regions
            .iter()
            .filter(|(_, status)| matches!(status.as_str(), "ENABLED" | "ENABLED_BY_DEFAULT"))
            .map(|(name, _)| name.clone())
            .collect())
    }

    /// The trails homed in `region`, and the multi-Region ones, whose
    /// shadow copies every Region shows.
    async fn describe_trails_in(&self, region: &str) -> AwsResult<Vec<Trail>> {
        self.trails_in(region, false).await
    }

    async fn list_event_data_stores(&self) -> AwsResult<Vec<String>> {
        self.call("ListEventDataStores").await?;
        let s = self.state.borrow();
        Ok(s.event_data_stores.iter().map(|e| e.arn.clone()).collect())
    }

    async fn get_event_data_store(&self, arn: &str) -> AwsResult<EventDataStore> {
        self.call("GetEventDataStore").await?;
        let s = self.state.borrow();
        s.event_data_stores
            .iter()
            .find(|e| e.arn == arn)
            .cloned()
            .ok_or_else(|| {
                AwsError::new(
                    "GetEventDataStore",
                    code::EVENT_DATA_STORE_NOT_FOUND,
                    format!("Event data store {arn} not found"),
                )
            })
    }
}

impl Connect for FakeCloud {
    type Management = FakeCloud;
    type KeyStore = FakeCloud;
    type LogArchive = FakeCloud;
    type LandingZones = FakeCloud;

    fn management(&self) -> &FakeCloud {
        self
    }

    fn landing_zones(&self) -> &FakeCloud {
        self
    }

    async fn own_keys(&self) -> AwsResult<FakeCloud> {
        Ok(FakeCloud {
            expires: None,
            ..self.clone()
        })
    }

    async fn caller_account(&self) -> Option<String> {
        let s = self.state.borrow();
        if s.credentials_unnamed {
            return s.answered_account.clone();
        }
        s.identity.as_ref().map(|i| i.account.clone())
    }

    async fn security_tooling(&self, role_arn: &str) -> AwsResult<FakeCloud> {
        self.call("AssumeRole").await?;
        let mut s = self.state.borrow_mut();
        s.assumed.push(role_arn.to_owned());
        let lasts = s
            .role_session
            .unwrap_or(std::time::Duration::from_secs(3600));
        Ok(FakeCloud {
            state: self.state.clone(),
            expires: Some(std::time::SystemTime::now() + lasts),
        })
    }

    async fn log_archive(&self, role_arn: &str, _bucket_region: &str) -> AwsResult<FakeCloud> {
        self.call("AssumeRole").await?;
        self.state.borrow_mut().assumed.push(role_arn.to_owned());
        Ok(self.clone())
    }
}

impl FakeCloud {
    /// The caller is a role of the Security Tooling account, registered as
    /// CloudTrail's delegated administrator.
    pub fn as_delegated_administrator(self) -> Self {
        {
            let mut s = self.state.borrow_mut();
            let account = s.security_tooling_account.clone();
            let partition = partition_of(&s.region);
            s.identity = Some(CallerIdentity {
                arn: format!("arn:{partition}:sts::{account}:assumed-role/TrailkeyRunner/pipeline"),
                account: account.clone(),
            });
            s.delegated_administrators =
                vec![(crate::aws::CLOUDTRAIL_PRINCIPAL.to_owned(), account)];
        }
        self
    }

    /// A Control Tower landing zone at `version`, `ACTIVE`, with a 3.x
    /// manifest without a key, and Control Tower's trail; the fake's keys
    /// are made in the management account.
    pub fn with_landing_zone(self, version: &str) -> Self {
        {
            let mut s = self.state.borrow_mut();
            let region = s.region.clone();
            let management = s
                .organization
                .as_ref()
                .expect("organization")
                .management_account
                .clone();
            s.security_tooling_account = management.clone();
            s.landing_zone = Some(LandingZone {
                arn: format!("arn:aws:controltower:{region}:{management}:landingzone/FAKE0LZ00001"),
                version: version.to_owned(),
                latest_available_version: Some(version.to_owned()),
                status: LandingZoneStatus::Active,
                drift_status: None,
                manifest: serde_json::json!({
                    "governedRegions": [region],
                    "centralizedLogging": {
                        "accountId": "222222222222",
                        "configurations": {"loggingBucket": {"retentionDays": 365}},
                        "enabled": true
                    }
                }),
                remediation_types: Vec::new(),
            });
            s.landing_zone_operation_time = std::time::Duration::from_secs(60);
        }
        self
    }

    /// Ends the landing-zone operations whose time has come: Control
    /// Tower's trail then names the manifest's key (none: SSE-S3).
    fn settle_landing_zone(&self) {
        let now = tokio::time::Instant::now();
        let mut s = self.state.borrow_mut();
        let failure = s.landing_zone_failure.clone();
        let mut ended = false;
        for (op, at) in &mut s.landing_zone_operations {
            if op.status == OperationStatus::InProgress && *at <= now {
                op.status = if failure.is_some() {
                    OperationStatus::Failed
                } else {
                    OperationStatus::Succeeded
                };
                op.status_message = failure.clone();
                ended = true;
            }
        }
        if !ended {
            return;
        }
        let Some(zone) = s.landing_zone.as_mut() else {
            return;
        };
        if failure.is_some() {
            zone.status = LandingZoneStatus::Failed;
            return;
        }
        zone.status = LandingZoneStatus::Active;
        let key = zone
            .manifest
            .pointer("/centralizedLogging/configurations/kmsKeyArn")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        for t in s.trails.values_mut() {
            // Control Tower's trail (`config::CONTROL_TOWER_TRAIL`).
            if t.name == "aws-controltower-BaselineCloudTrail" {
                t.kms_key_id = key.clone();
            }
        }
    }

    fn landing_zone_call(&self, op: &'static str) -> AwsResult<()> {
        self.settle_landing_zone();
        self.record(op)
    }

    fn log_bucket(&self, bucket: &str) -> Option<LogBucket> {
        self.state.borrow().log_buckets.get(bucket).cloned()
    }
}

impl LogArchive for FakeCloud {
    async fn bucket_policy(&self, bucket: &str) -> AwsResult<Option<String>> {
        self.call("GetBucketPolicy").await?;
        Ok(self.log_bucket(bucket).and_then(|b| b.policy))
    }

    async fn bucket_encryption(&self, bucket: &str) -> AwsResult<Option<super::BucketEncryption>> {
        self.call("GetBucketEncryption").await?;
        Ok(self.log_bucket(bucket).and_then(|b| b.encryption))
    }

    async fn bucket_replication(&self, bucket: &str) -> AwsResult<Option<super::Replication>> {
        self.call("GetBucketReplication").await?;
        Ok(self.log_bucket(bucket).and_then(|b| b.replication))
    }
}

impl LandingZones for FakeCloud {
    async fn list_landing_zones(&self) -> AwsResult<Vec<String>> {
        self.landing_zone_call("ListLandingZones")?;
        self.delay().await;
        Ok(self
            .state
            .borrow()
            .landing_zone
            .iter()
            .map(|z| z.arn.clone())
            .collect())
    }

    async fn get_landing_zone(&self, arn: &str) -> AwsResult<LandingZone> {
        self.landing_zone_call("GetLandingZone")?;
        self.delay().await;
        let mut zone = self.state.borrow().landing_zone.clone();
        // Sorted, as the real-AWS layer gives them.
        if let Some(zone) = zone.as_mut() {
            zone.remediation_types.sort();
        }
        zone.filter(|z| z.arn == arn).ok_or_else(|| {
            AwsError::new(
                "GetLandingZone",
                code::RESOURCE_NOT_FOUND,
                format!("no landing zone {arn}"),
            )
        })
    }

    async fn operations_in_progress(&self) -> AwsResult<Vec<LandingZoneOperation>> {
        self.landing_zone_call("ListLandingZoneOperations")?;
        self.delay().await;
        let s = self.state.borrow();
        let mut operations: Vec<LandingZoneOperation> = s
            .landing_zone_operations
            .iter()
            .map(|(op, _)| op)
            .filter(|op| op.status == OperationStatus::InProgress)
            .cloned()
            .collect();
        // Sorted, as the real-AWS layer gives them.
        operations.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(operations)
    }

    async fn update_landing_zone(&self, update: LandingZoneUpdate<'_>) -> AwsResult<String> {
        self.landing_zone_call("UpdateLandingZone")?;
        self.delay().await;
        let mut s = self.state.borrow_mut();
        if s.landing_zone_operations
            .iter()
            .any(|(op, _)| op.status == OperationStatus::InProgress)
        {
            return Err(AwsError::new(
                "UpdateLandingZone",
                code::CONFLICT,
                "AWS Control Tower cannot begin another operation while one is in progress",
            ));
        }
        let id = format!(
            "00000000-0000-4000-8000-{:012}",
            s.landing_zone_operations.len() + 1
        );
        let ends = tokio::time::Instant::now() + s.landing_zone_operation_time;
        s.landing_zone_updates
            .push((update.version.to_owned(), update.manifest.clone()));
        let zone = s.landing_zone.as_mut().ok_or_else(|| {
            AwsError::new(
                "UpdateLandingZone",
                code::RESOURCE_NOT_FOUND,
                "no landing zone",
            )
        })?;
        zone.manifest = update.manifest.clone();
        zone.status = LandingZoneStatus::Processing;
        let op = LandingZoneOperation {
            id: id.clone(),
            operation_type: "UPDATE".to_owned(),
            status: OperationStatus::InProgress,
            status_message: None,
        };
        s.landing_zone_operations.push((op, ends));
        Ok(id)
    }

    async fn get_operation(&self, id: &str) -> AwsResult<LandingZoneOperation> {
        self.landing_zone_call("GetLandingZoneOperation")?;
        self.delay().await;
        let s = self.state.borrow();
        s.landing_zone_operations
            .iter()
            .map(|(op, _)| op)
            .find(|op| op.id == id)
            .cloned()
            .ok_or_else(|| {
                AwsError::new(
                    "GetLandingZoneOperation",
                    code::RESOURCE_NOT_FOUND,
                    format!("no operation {id}"),
                )
            })
    }
}

impl KeyStore for FakeCloud {
    fn expiry(&self) -> Option<std::time::SystemTime> {
        self.expires
    }

    async fn describe_key(&self, key: &str) -> AwsResult<Option<KeyInfo>> {
        self.call("DescribeKey").await?;
        match self.with_key("DescribeKey", key, |k| k.clone()) {
            Ok(k) => Ok(Some(KeyInfo {
                state: self.state.borrow().seen_state(&k),
                ..k.info
            })),
            Err(e) if e.code == code::NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_key_policy(&self, key_id: &str) -> AwsResult<String> {
        self.call("GetKeyPolicy").await?;
        let key = self.with_key("GetKeyPolicy", key_id, |k| k.clone())?;
        Ok(self.state.borrow().read_key(key).policy)
    }

    async fn rotation_status(&self, key_id: &str) -> AwsResult<RotationStatus> {
        self.call("GetKeyRotationStatus").await?;
        let key = self.with_key("GetKeyRotationStatus", key_id, |k| k.clone())?;
        let k = self.state.borrow().read_key(key);
        Ok(RotationStatus {
            enabled: k.rotation,
            period_days: k.rotation.then_some(k.rotation_period),
        })
    }

    async fn list_tags(&self, key_id: &str) -> AwsResult<BTreeMap<String, String>> {
        self.call("ListResourceTags").await?;
        let key = self.with_key("ListResourceTags", key_id, |k| k.clone())?;
        Ok(self.state.borrow().read_key(key).tags)
    }

    async fn list_keys(&self) -> AwsResult<Vec<String>> {
        self.call("ListKeys").await?;
        let s = self.state.borrow();
        let mut keys: Vec<String> = s
            .keys
            .iter()
            .filter(|k| !s.hidden(&k.info.key_id))
            .map(|k| k.info.key_id.clone())
            .collect();
        // Sorted, as the real-AWS layer gives them.
        keys.sort();
        Ok(keys)
    }

    async fn list_grants(&self, key_id: &str) -> AwsResult<Vec<super::Grant>> {
        self.call("ListGrants").await?;
        let id = self.with_key("ListGrants", key_id, |k| k.info.key_id.clone())?;
        Ok(self
            .state
            .borrow()
            .grants
            .get(&id)
            .cloned()
            .unwrap_or_default())
    }

    async fn list_aliases(&self, key_id: &str) -> AwsResult<Vec<String>> {
        self.call("ListAliases").await?;
        let s = self.state.borrow();
        Ok(s.aliases
            .iter()
            .filter(|(_, target)| *target == key_id)
            .map(|(name, _)| name.clone())
            .collect())
    }

    async fn create_key(&self, key: &NewKey) -> AwsResult<KeyInfo> {
        self.call("CreateKey").await?;
        let mut s = self.state.borrow_mut();
        let key_id = format!("00000000-0000-4000-8000-{:012}", s.keys.len() + 1);
        let info = KeyInfo {
            arn: format!(
                "arn:{}:kms:{}:{}:key/{key_id}",
                partition_of(&s.region),
                s.region,
                s.security_tooling_account
            ),
            key_id,
            state: KeyState::Enabled,
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            origin: Origin::AwsKms,
            multi_region: false,
            description: key.description.clone(),
            key_manager: KeyManager::Customer,
            created: Some(1_700_000_000 + s.keys.len() as i64),
        };
        s.keys.push(FakeKey {
            info: info.clone(),
            policy: key.policy.clone(),
            rotation: false,
            rotation_period: DEFAULT_ROTATION_PERIOD_DAYS,
            tags: key.tags.clone(),
        });
        s.propagating(&info.key_id);
        Ok(info)
    }

    async fn create_alias(&self, alias: &str, key_id: &str) -> AwsResult<()> {
        self.call("CreateAlias").await?;
        self.write_key("CreateAlias", key_id, |_| ())?;
        let mut s = self.state.borrow_mut();
        if s.aliases.contains_key(alias) {
            return Err(AwsError::new(
                "CreateAlias",
                code::ALREADY_EXISTS,
                format!("An alias with the name {alias} already exists"),
            ));
        }
        s.aliases.insert(alias.to_owned(), key_id.to_owned());
        s.propagating(alias);
        Ok(())
    }

    async fn update_alias(&self, alias: &str, key_id: &str) -> AwsResult<()> {
        self.call("UpdateAlias").await?;
        self.write_key("UpdateAlias", key_id, |_| ())?;
        let mut s = self.state.borrow_mut();
        // UpdateAlias "associates an existing alias" (KMS API reference).
        if !s.aliases.contains_key(alias) {
            return Err(AwsError::new(
                "UpdateAlias",
                code::NOT_FOUND,
                format!("Alias {alias} is not found."),
            ));
        }
        s.aliases.insert(alias.to_owned(), key_id.to_owned());
        s.propagating(alias);
        Ok(())
    }

    async fn delete_alias(&self, alias: &str) -> AwsResult<()> {
        self.call("DeleteAlias").await?;
        match self.state.borrow_mut().aliases.remove(alias) {
            Some(_) => Ok(()),
            None => Err(AwsError::new(
                "DeleteAlias",
                code::NOT_FOUND,
                format!("Alias {alias} is not found."),
            )),
        }
    }

    async fn put_key_policy(&self, key_id: &str, policy: &str) -> AwsResult<()> {
        self.call("PutKeyPolicy").await?;
        let (id, previous) = self.lagging_write("PutKeyPolicy", key_id, || {
            self.with_key("PutKeyPolicy", key_id, |k| {
                (
                    k.info.key_id.clone(),
                    std::mem::replace(&mut k.policy, policy.to_owned()),
                )
            })
        })?;
        self.state
            .borrow_mut()
            .previous_policies
            .insert(id, (previous, tokio::time::Instant::now()));
        Ok(())
    }

    async fn enable_rotation(&self, key_id: &str, period_days: Option<i32>) -> AwsResult<()> {
        self.call("EnableKeyRotation").await?;
        if let Some(days) = period_days.filter(|d| !(90..=2560).contains(d)) {
            // The constraint of `RotationPeriodInDaysType` in the KMS model.
            return Err(AwsError::new(
                "EnableKeyRotation",
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{days}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560"
                ),
            ));
        }
        self.state.borrow_mut().period_asked = period_days;
        let written = self.lagging_write("EnableKeyRotation", key_id, || {
            self.write_key("EnableKeyRotation", key_id, |k| {
                k.rotation = true;
                k.rotation_period = period_days.unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
            })
        });
        self.state.borrow_mut().period_asked = None;
        written
    }

    async fn enable_key(&self, key_id: &str) -> AwsResult<()> {
        self.call("EnableKey").await?;
        let changed = self.write_key("EnableKey", key_id, |k| {
            let old = std::mem::replace(&mut k.info.state, KeyState::Enabled);
            (k.info.key_id.clone(), old)
        })?;
        self.state.borrow_mut().state_changed(changed);
        Ok(())
    }

    async fn cancel_key_deletion(&self, key_id: &str) -> AwsResult<()> {
        self.call("CancelKeyDeletion").await?;
        let changed = self.write_key("CancelKeyDeletion", key_id, |k| {
            let old = std::mem::replace(&mut k.info.state, KeyState::Disabled);
            (k.info.key_id.clone(), old)
        })?;
        self.state.borrow_mut().state_changed(changed);
        Ok(())
    }

    async fn schedule_key_deletion(&self, key_id: &str, _days: i32) -> AwsResult<()> {
        self.call("ScheduleKeyDeletion").await?;
        self.write_key("ScheduleKeyDeletion", key_id, |k| {
            k.info.state = KeyState::PendingDeletion
        })
    }

    async fn tag_key(&self, key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.call("TagResource").await?;
        self.lagging_write("TagResource", key_id, || {
            let over = self.write_key("TagResource", key_id, |k| {
                let mut after = k.tags.clone();
                after.extend(tags.iter().map(|(a, b)| (a.clone(), b.clone())));
                let counted = after
                    .keys()
                    .filter(|t| crate::config::counts_against_tag_limit(t))
                    .count();
                if counted > crate::config::MAX_KEY_TAGS {
                    return true;
                }
                k.tags = after;
                false
            })?;
            if over {
                return Err(AwsError::new(
                    "TagResource",
                    code::LIMIT_EXCEEDED,
                    "The request was rejected because a quota was exceeded.",
                ));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn one_key(state: KeyState) -> FakeCloud {
        let fake = FakeCloud::new("us-east-1", "333333333333", "111111111111", "org-trail");
        let key = FakeKey {
            info: KeyInfo {
                key_id: "k-1".to_owned(),
                arn: "arn:aws:kms:us-east-1:111111111111:key/k-1".to_owned(),
                state,
                key_spec: KeySpec::SymmetricDefault,
                key_usage: KeyUsage::EncryptDecrypt,
                origin: Origin::AwsKms,
                multi_region: false,
                description: String::new(),
                key_manager: KeyManager::Customer,
                created: None,
            },
            policy: "{}".to_owned(),
            rotation: false,
            rotation_period: DEFAULT_ROTATION_PERIOD_DAYS,
            tags: BTreeMap::new(),
        };
        fake.state.borrow_mut().keys.push(key);
        fake
    }

    fn code_of<T>(result: AwsResult<T>) -> String {
        result.err().map_or_else(|| "ok".to_owned(), |e| e.code)
    }

    /// Writes fail in the key's state as KMS's key-state table says.
    #[tokio::test]
    async fn writes_follow_the_key_state_table() {
        let pending = one_key(KeyState::PendingDeletion);
        assert_eq!(
            code_of(pending.enable_rotation("k-1", None).await),
            code::KMS_INVALID_STATE
        );
        assert_eq!(
            code_of(pending.tag_key("k-1", &BTreeMap::new()).await),
            code::KMS_INVALID_STATE
        );
        assert_eq!(
            code_of(pending.create_alias("alias/a", "k-1").await),
            code::KMS_INVALID_STATE
        );
        assert_eq!(
            code_of(pending.enable_key("k-1").await),
            code::KMS_INVALID_STATE
        );
        assert_eq!(code_of(pending.put_key_policy("k-1", "{}").await), "ok");
        assert_eq!(code_of(pending.cancel_key_deletion("k-1").await), "ok");
        let disabled = one_key(KeyState::Disabled);
        assert_eq!(
            code_of(disabled.enable_rotation("k-1", None).await),
            code::DISABLED
        );
        assert_eq!(
            code_of(disabled.cancel_key_deletion("k-1").await),
            code::KMS_INVALID_STATE
        );
        assert_eq!(
            code_of(disabled.tag_key("k-1", &BTreeMap::new()).await),
            "ok"
        );
        assert_eq!(code_of(disabled.enable_key("k-1").await), "ok");
        assert_eq!(code_of(disabled.enable_rotation("k-1", None).await), "ok");
    }

    #[tokio::test]
    async fn update_alias_needs_an_existing_alias() {
        let fake = one_key(KeyState::Enabled);
        assert_eq!(
            code_of(fake.update_alias("alias/a", "k-1").await),
            code::NOT_FOUND
        );
        fake.create_alias("alias/a", "k-1").await.unwrap();
        assert_eq!(code_of(fake.update_alias("alias/a", "k-1").await), "ok");
    }

    /// With a caller set, a KMS call on a key that its key policy
    /// explicitly denies to that caller fails as KMS fails it.
    #[tokio::test]
    async fn an_explicit_deny_in_the_key_policy_refuses_the_caller() {
        let fake = one_key(KeyState::Enabled);
        let protect = serde_json::json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "TrailkeyProtectKey", "Effect": "Deny", "Principal": {"AWS": "*"},
             "Action": ["kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:DisableKeyRotation"],
             "Resource": "*",
             "Condition": {"ArnNotLike": {"aws:PrincipalArn":
                 "arn:aws:iam::111111111111:role/AWSControlTowerExecution"}}},
        ]});
        fake.state.borrow_mut().keys[0].policy = protect.to_string();
        // No caller: nothing is checked.
        assert_eq!(code_of(fake.schedule_key_deletion("k-1", 7).await), "ok");
        fake.cancel_key_deletion("k-1").await.unwrap();

        fake.state.borrow_mut().caller = Some("arn:aws:iam::111111111111:role/SomeoneElse".into());
        let denied = fake.schedule_key_deletion("k-1", 7).await.unwrap_err();
        assert_eq!(denied.code, code::ACCESS_DENIED_EXCEPTION);
        assert_eq!(
            denied.message,
            "User: arn:aws:iam::111111111111:role/SomeoneElse is not authorized to perform: \
             kms:ScheduleKeyDeletion on resource: arn:aws:kms:us-east-1:111111111111:key/k-1 \
             with an explicit deny in a resource-based policy"
        );
        assert_eq!(
            fake.state.borrow().keys[0].info.state,
            KeyState::Disabled,
            "unchanged"
        );
        assert_eq!(code_of(fake.enable_key("k-1").await), "ok", "not denied");
        assert_eq!(code_of(fake.put_key_policy("k-1", "{}").await), "ok");
        assert_eq!(code_of(fake.schedule_key_deletion("k-1", 7).await), "ok");

        let exempt = one_key(KeyState::Enabled);
        exempt.state.borrow_mut().keys[0].policy = protect.to_string();
        exempt.state.borrow_mut().caller =
            Some("arn:aws:iam::111111111111:role/AWSControlTowerExecution".into());
        assert_eq!(code_of(exempt.schedule_key_deletion("k-1", 7).await), "ok");
    }

    use crate::aws::Management;
    use crate::config::AccountId;

    const TRAIL_ARN: &str = "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail";

    fn cloud() -> FakeCloud {
        FakeCloud::new("us-east-1", "333333333333", "111111111111", "org-trail")
    }

    /// trailkey's rendered policy for the fake's trail.
    fn trailkeys_policy() -> String {
        let account = |id: &str| AccountId::parse(id).expect("an account ID");
        crate::policy::to_document(&crate::policy::render(&crate::policy::PolicyInputs {
            partition: "aws",
            key_account: &account("111111111111"),
            management: "333333333333",
            log_archive: &account("222222222222"),
            trail_arn: TRAIL_ARN,
            readers: Vec::new(),
            protect_exempt: None,
            protect_period: None,
            control_tower: None,
        }))
    }

    fn new_key(policy: &str) -> NewKey {
        NewKey {
            description: "test".to_owned(),
            policy: policy.to_owned(),
            tags: BTreeMap::new(),
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn update_trail_checks_the_key_policy_cloudtrail_sees() {
        let fake = cloud();
        fake.state.borrow_mut().propagation = Some(Duration::from_secs(5));
        run(async {
            let placeholder = fake.create_key(&new_key("{}")).await.unwrap();
            tokio::time::advance(Duration::from_secs(6)).await;
            let refused = fake
                .set_trail_key(TRAIL_ARN, &placeholder.arn)
                .await
                .unwrap_err();
            assert_eq!(refused.code, code::INSUFFICIENT_ENCRYPTION_POLICY);
            assert!(refused.message.contains("no Statement"), "{refused:?}");

            fake.put_key_policy(&placeholder.key_id, &trailkeys_policy())
                .await
                .unwrap();
            let during = fake
                .set_trail_key(TRAIL_ARN, &placeholder.arn)
                .await
                .unwrap_err();
            assert_eq!(
                during.code,
                code::INSUFFICIENT_ENCRYPTION_POLICY,
                "the previous policy during propagation"
            );
            tokio::time::advance(Duration::from_secs(6)).await;
            let trail = fake
                .set_trail_key(TRAIL_ARN, &placeholder.arn)
                .await
                .unwrap();
            assert_eq!(trail.kms_key_id.as_deref(), Some(placeholder.arn.as_str()));

            // Back to the placeholder: the good policy holds for a while.
            fake.put_key_policy(&placeholder.arn, "{}").await.unwrap();
            fake.set_trail_key(TRAIL_ARN, &placeholder.arn)
                .await
                .unwrap();
            tokio::time::advance(Duration::from_secs(6)).await;
            assert!(fake.set_trail_key(TRAIL_ARN, "").await.is_ok(), "no key");
            let after = fake
                .set_trail_key(TRAIL_ARN, &placeholder.arn)
                .await
                .unwrap_err();
            assert_eq!(after.code, code::INSUFFICIENT_ENCRYPTION_POLICY);
        });
    }

    #[test]
    fn update_trail_to_a_bucket_with_a_bucket_key_needs_decrypt_without_a_context() {
        let fake = cloud();
        // trailkey's policy with its CloudTrail Decrypt statement edited.
        let with_decrypt = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut policy: serde_json::Value = serde_json::from_str(&trailkeys_policy()).unwrap();
            for statement in policy["Statement"].as_array_mut().unwrap() {
                if statement["Sid"] == "TrailkeyCloudTrailDecrypt" {
                    edit(statement);
                }
            }
            policy.to_string()
        };
        let with_context = with_decrypt(&|s| {
            s["Condition"]["Null"] =
                serde_json::json!({"kms:EncryptionContext:aws:cloudtrail:arn": "false"});
        });
        let without_decrypt = with_decrypt(&|s| {
            s["Action"] = serde_json::json!("kms:DescribeKey");
        });
        run(async {
            let ours = fake
                .create_key(&new_key(&trailkeys_policy()))
                .await
                .unwrap();
            let context = fake.create_key(&new_key(&with_context)).await.unwrap();
            let none = fake.create_key(&new_key(&without_decrypt)).await.unwrap();
            for key in [&ours, &context, &none] {
                fake.set_trail_key(TRAIL_ARN, &key.arn).await.unwrap();
            }

            fake.state.borrow_mut().log_buckets.insert(
                "org-trail-logs".to_owned(),
                LogBucket {
                    policy: None,
                    encryption: Some(crate::aws::BucketEncryption {
                        algorithm: "aws:kms".to_owned(),
                        kms_key_id: None,
                        bucket_key_enabled: true,
                    }),
                    replication: None,
                },
            );
            for key in [&context, &none] {
                let refused = fake.set_trail_key(TRAIL_ARN, &key.arn).await.unwrap_err();
                assert_eq!(refused.code, code::INSUFFICIENT_ENCRYPTION_POLICY);
                assert!(
                    refused.message.contains("kms:Decrypt")
                        && refused.message.contains("S3 Bucket Key"),
                    "{refused:?}"
                );
            }
            let trail = fake.set_trail_key(TRAIL_ARN, &ours.arn).await.unwrap();
            assert_eq!(trail.kms_key_id.as_deref(), Some(ours.arn.as_str()));
        });
    }

    #[test]
    fn update_trail_by_alias_checks_the_aliased_key() {
        let fake = cloud();
        run(async {
            let ours = fake
                .create_key(&new_key(&trailkeys_policy()))
                .await
                .unwrap();
            fake.create_alias("alias/ours", &ours.key_id).await.unwrap();
            fake.set_trail_key(TRAIL_ARN, "alias/ours").await.unwrap();
            let placeholder = fake.create_key(&new_key("{}")).await.unwrap();
            fake.update_alias("alias/ours", &placeholder.key_id)
                .await
                .unwrap();
            let refused = fake
                .set_trail_key(TRAIL_ARN, "alias/ours")
                .await
                .unwrap_err();
            assert_eq!(refused.code, code::INSUFFICIENT_ENCRYPTION_POLICY);
        });
    }
}
