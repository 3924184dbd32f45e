//! Plan: a pure function from the desired state (the config) and the observed
//! state (what AWS returned) to a list of changes. No I/O here, so every
//! combination of observed state is unit-tested without a server.
//!
//! Each [`Change`] has an address, an action, `before`/`after` values for
//! display and JSON, the reasons, and the [`Step`]s `apply` executes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::{
    CallerIdentity, FeatureSet, KeyInfo, KeyManager, KeySpec, KeyState, KeyUsage, NewKey,
    Organization, Origin, Trail, TrailStatus,
};
use crate::config::{ALIAS_TAG, CREATED_TAG, Desired, MANAGED_BY_TAG, MAX_KEY_TAGS};
use crate::error::Error;
use crate::log_archive;
pub use crate::model::{Finding, FoundBy, Level, Observed, ObservedKey};
use crate::policy::{self, PolicyInputs};

/// JSON plan format version.
pub const FORMAT_VERSION: &str = "1";
/// Shown in `after` for values only known once apply has run.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Delete,
    NoOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Address {
    KmsKey,
    KmsAlias,
    KmsAliasPrevious,
    KmsKeyPolicy,
    KmsKeyRotation,
    TrailEncryption,
    TrailLogFileValidation,
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
    EnableRotation,
    /// `UpdateTrail` pointing the trail at the key, turning log-file
    /// validation on in the same call when `log_file_validation`.
    UpdateTrail {
        trail: String,
        log_file_validation: bool,
    },
    /// `UpdateTrail` turning log-file validation on, the key left as it is.
    EnableLogFileValidation(String),
    /// `UpdateTrail` with an empty `KmsKeyId`: back to SSE-S3 (destroy).
    DisableTrailEncryption(String),
    /// `ScheduleKeyDeletion` with this waiting period in days (destroy --delete-key).
    ScheduleKeyDeletion(i32),
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
            Step::EnableRotation => "EnableKeyRotation",
            Step::UpdateTrail { .. }
            | Step::EnableLogFileValidation(_)
            | Step::DisableTrailEncryption(_) => "UpdateTrail",
            Step::ScheduleKeyDeletion(_) => "ScheduleKeyDeletion",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    pub before: Value,
    pub after: Value,
    pub reasons: Vec<String>,
    /// For `kms_key_policy`: the statement-level differences.
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub region: String,
    pub management_account: String,
    pub security_tooling_account: String,
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
            trail_arn: observed.trail.arn.clone(),
            alias: desired.alias.full(),
            key_arn: observed.key.as_ref().map(|k| k.info.arn.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
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

/// Checks the caller and the organization against the config. Pure; called
/// by `observe` right after the first round of reads, before anything else
/// is interpreted.
pub fn check_context(
    desired: &Desired,
    identity: &CallerIdentity,
    org: &Organization,
) -> Result<(), Error> {
    check_caller_partition(
        identity,
        &desired.region,
        "region",
        "use credentials for the partition of `region`, or fix `region`",
    )?;
    if org.feature_set != FeatureSet::All {
        return Err(Error::check(
            format!(
                "organization {} has feature set {:?}; organization trails need all features",
                org.id,
                org.feature_set.as_str()
            ),
            "enable all features in AWS Organizations (Settings), then run again",
        ));
    }
    if let Some(m) = &desired.management
        && m.as_str() != org.management_account
    {
        return Err(Error::check(
            format!(
                "accounts.management is {m}, but the organization's management account is {}",
                org.management_account
            ),
            format!(
                "set accounts.management = \"{}\" in {}, or remove it (trailkey reads it from Organizations)",
                org.management_account,
                desired.source.display()
            ),
        ));
    }
    check_caller_is_management(
        identity,
        org,
        "trailkey",
        "run trailkey with credentials of the management account (e.g. --profile), or set roles.management to a role there",
    )?;
    for (field, acct) in [
        ("security_tooling", &desired.security_tooling),
        ("log_archive", &desired.log_archive),
    ] {
        if acct.as_str() == org.management_account {
            return Err(Error::check(
                format!("accounts.{field} is {acct}, the management account itself"),
                "the key belongs in the Security Tooling (Audit) account and the logs in Log Archive: use those accounts' IDs",
            ));
        }
    }
    Ok(())
}

/// Fails unless the credentials are in `region`'s partition. `region_word`
/// is how the command's user names the Region (the config's `region`, or
/// `--region`); `hint` is the command's own fix.
pub fn check_caller_partition(
    identity: &CallerIdentity,
    region: &crate::config::Region,
    region_word: &str,
    hint: &str,
) -> Result<(), Error> {
    let partition = identity.partition().unwrap_or_default();
    if partition != region.partition() {
        return Err(Error::check(
            format!(
                "the credentials are for partition {partition:?}, but {region_word} {region} is in {:?}",
                region.partition()
            ),
            hint,
        ));
    }
    Ok(())
}

/// Fails unless the caller is in the organization's management account.
/// `runner` is who runs as the caller (`trailkey`, `init`); `hint` is the
/// command's own fix.
pub fn check_caller_is_management(
    identity: &CallerIdentity,
    org: &Organization,
    runner: &str,
    hint: &str,
) -> Result<(), Error> {
    if identity.account != org.management_account {
        return Err(Error::check(
            format!(
                "{runner} runs as {} in account {}, which is not the management account {} of organization {}",
                identity.arn, identity.account, org.management_account, org.id
            ),
            hint,
        ));
    }
    Ok(())
}

/// The name Control Tower gives its organization trail.
pub const CONTROL_TOWER_TRAIL: &str = "aws-controltower-BaselineCloudTrail";

/// A tag that marks a trail as Control Tower's (a key mentioning it, with
/// or without dashes, any case).
pub fn control_tower_tag(tags: &BTreeMap<String, String>) -> Option<&String> {
    tags.keys().find(|k| {
        k.to_ascii_lowercase()
            .replace('-', "")
            .contains("controltower")
    })
}

/// Checks the trail against the config: its home Region, that it is an
/// organization trail, and the Control Tower guard (by name, and by tags
/// when they were read).
pub fn check_trail(
    desired: &Desired,
    trail: &Trail,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<(), Error> {
    let file = desired.source.display();
    if trail.home_region != desired.region.as_str() {
        return Err(Error::check(
            format!(
                "trail {} lives in {}, but region is {}",
                trail.arn, trail.home_region, desired.region
            ),
            format!(
                "the key, the trail and its bucket must be in one Region: set region = \"{}\" in {file}",
                trail.home_region
            ),
        ));
    }
    if desired.organization_trail && !trail.is_organization_trail {
        return Err(Error::check(
            format!("trail {} is not an organization trail", trail.arn),
            format!(
                "name the organization trail in trail.name, or set organization_trail = false under [trail] in {file} to encrypt this trail on purpose"
            ),
        ));
    }
    let tagged = tags.and_then(control_tower_tag);
    if !desired.allow_control_tower && (trail.name == CONTROL_TOWER_TRAIL || tagged.is_some()) {
        let why = match tagged {
            Some(tag) => format!("its tag {tag:?}"),
            None => format!("its name {CONTROL_TOWER_TRAIL}"),
        };
        return Err(Error::check(
            format!(
                "trail {} is managed by AWS Control Tower ({why}): Control Tower reverts changes made to it",
                trail.arn
            ),
            format!(
                "encrypt Control Tower's trail through the landing zone instead: Control Tower console, Landing zone settings, KMS encryption (a key in the management account), or update the landing zone's manifest. To change it anyway, set allow_control_tower = true under [trail] in {file}"
            ),
        ));
    }
    Ok(())
}

/// Checks the trail's bucket Region, when it could be read.
pub fn check_bucket(desired: &Desired, observed: &Observed) -> Result<(), Error> {
    match &observed.bucket_region {
        Ok(region) if region != desired.region.as_str() => Err(Error::check(
            format!(
                "the trail's bucket {} is in {region}, but region is {}",
                observed.trail.s3_bucket, desired.region
            ),
            "CloudTrail needs the key in the bucket's Region (it would only say KmsKeyNotFoundException): keep the trail, its bucket and region in one Region",
        )),
        _ => Ok(()),
    }
}

/// A key found only by its tags (no alias, no trail names it) is adopted
/// only if its policy grants nothing beyond what trailkey writes: tags can
/// be put on any key, so a key someone planted with trailkey's tags and a
/// grant of their own (`kms:*` for an outside account, say) would otherwise
/// get the trail's logs. Any foreign `Allow` statement counts, except one
/// that grants only to the Security Tooling account's root, which
/// trailkey's own administration statement grants anyway. trailkey's own
/// statements (its reserved Sids) are replaced by apply, whatever they say.
pub fn check_adoption(
    desired: &Desired,
    observed: &Observed,
    current: Option<&Value>,
) -> Result<(), Error> {
    let (Some(key), Some(policy)) = (&observed.key, current) else {
        return Ok(());
    };
    let named_by_trail = observed.trail.kms_key_id.as_deref() == Some(key.info.arn.as_str());
    if key.found_by != FoundBy::Tags || named_by_trail {
        return Ok(());
    }
    let root = format!(
        "arn:{}:iam::{}:root",
        desired.partition(),
        desired.security_tooling
    );
    let only_root = |s: &Value| {
        let principals: Vec<&str> = match s.get("Principal").and_then(|p| p.get("AWS")) {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => return false,
        };
        s.get("Principal")
            .and_then(Value::as_object)
            .is_some_and(|p| p.len() == 1)
            && !principals.is_empty()
            && principals
                .iter()
                .all(|p| *p == root || *p == desired.security_tooling.as_str())
            && s.get("NotPrincipal").is_none()
    };
    let grants: Vec<String> = policy::statements(policy)
        .into_iter()
        .filter(|s| !policy::is_ours(s))
        .filter(|s| s.get("Effect").and_then(Value::as_str) != Some("Deny"))
        .filter(|s| !only_root(s))
        .map(|s| {
            let who = s
                .get("Principal")
                .or_else(|| s.get("NotPrincipal"))
                .map_or("no principal".to_owned(), Value::to_string);
            format!("{:?} ({who})", policy::sid(s).unwrap_or("no Sid"))
        })
        .collect();
    if grants.is_empty() {
        return Ok(());
    }
    Err(Error::check(
        format!(
            "key {} carries trailkey's tags, but no alias or trail names it, and its policy grants more than trailkey writes: {}. A key found only by its tags is not adopted with grants of someone else's",
            key.info.arn,
            grants.join(", ")
        ),
        format!(
            "if this key is meant to be trailkey's, adopt it on purpose: point the alias at it (`aws kms create-alias --alias-name {} --target-key-id {}`, or update-alias), then plan again: its foreign statements are kept, and the plan reports what they grant. Otherwise remove its {} tag (`aws kms untag-resource --key-id {} --tag-keys {}`) and trailkey creates a key of its own",
            desired.alias.full(),
            key.info.key_id,
            MANAGED_BY_TAG.0,
            key.info.key_id,
            MANAGED_BY_TAG.0
        ),
    ))
}

/// Checks that the tags trailkey would add to an existing key (`TagResource`)
/// keep it within KMS's [`MAX_KEY_TAGS`], counting the tags others put on
/// it (but not AWS's own `aws:` tags): KMS would refuse the call part-way
/// through an apply.
pub fn check_tag_limit(desired: &Desired, key: &ObservedKey) -> Result<(), Error> {
    let added = desired
        .tags
        .keys()
        .filter(|t| !key.tags.contains_key(*t))
        .count();
    let present = key
        .tags
        .keys()
        .filter(|t| crate::config::counts_against_tag_limit(t))
        .count();
    if added == 0 || present + added <= MAX_KEY_TAGS {
        return Ok(());
    }
    Err(Error::check(
        format!(
            "key {} has {present} tags, and the {added} trailkey would add make {}: over KMS's limit of {MAX_KEY_TAGS} tags per key",
            key.info.arn,
            present + added
        ),
        format!(
            "remove tags the key does not need (`aws kms untag-resource --key-id {} --tag-keys ...`), or fewer from [key.tags], then run again",
            key.info.key_id
        ),
    ))
}

/// Checks that the key behind the alias can encrypt a trail at all. A key
/// that cannot is never modified or replaced silently.
pub fn check_key(desired: &Desired, key: &KeyInfo) -> Result<(), Error> {
    let mut problems = Vec::new();
    if key.key_manager != KeyManager::Customer {
        problems.push(format!("it is {}-managed", key.key_manager));
    }
    if key.key_spec != KeySpec::SymmetricDefault {
        problems.push(format!("its key spec is {}", key.key_spec));
    }
    if key.key_usage != KeyUsage::EncryptDecrypt {
        problems.push(format!("its key usage is {}", key.key_usage));
    }
    if key.origin != Origin::AwsKms {
        problems.push(format!("its origin is {}", key.origin));
    }
    if key.multi_region {
        problems.push("it is a multi-Region key".to_owned());
    }
    if let KeyState::Other(_) = key.state {
        problems.push(format!("its state is {}", key.state));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::check(
        format!(
            "{} names key {}, which trailkey will not use for the trail: {}",
            desired.alias.full(),
            key.arn,
            problems.join(", ")
        ),
        format!(
            "trailkey needs a single-Region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key with AWS_KMS origin: choose another ct_key_alias in {}, or move the alias off that key",
            desired.source.display()
        ),
    ))
}

/// The policy trailkey would attach, given what is observed.
pub fn desired_policy(desired: &Desired, observed: &Observed) -> Result<Value, Error> {
    merged_policy(desired, observed, current_policy(observed)?.as_ref())
}

/// The observed key's policy, parsed.
fn current_policy(observed: &Observed) -> Result<Option<Value>, Error> {
    observed
        .key
        .as_ref()
        .map(|k| parse_policy(&k.policy, &k.info.arn))
        .transpose()
}

/// trailkey's statements merged into `current`, within KMS's size limit.
fn merged_policy(
    desired: &Desired,
    observed: &Observed,
    current: Option<&Value>,
) -> Result<Value, Error> {
    let mut ours = policy::render(&PolicyInputs::of(
        desired,
        &observed.organization.management_account,
        &observed.trail.arn,
    ));
    let sharing: Vec<&str> = sharing_trails(desired, observed)
        .map(|t| t.arn.as_str())
        .collect();
    let alone = ours.clone();
    policy::allow_trails(&mut ours, &observed.trail.arn, &sharing);
    let merged = policy::merge(current, &ours);
    let size = policy::to_document(&merged).len();
    if size > policy::MAX_POLICY_BYTES {
        return Err(too_large(size, current, &ours, &alone, &sharing));
    }
    Ok(merged)
}

/// Why the merged policy is over KMS's limit, by what takes the room:
/// trailkey's statements, the `aws:SourceArn` lists in them (which grow
/// with every trail sharing the key), and the foreign statements. The
/// blame goes to whichever would make the policy fit if it were gone; when
/// both or neither would, to the larger. `alone` is `ours` for the
/// configured trail only.
fn too_large(
    size: usize,
    current: Option<&Value>,
    ours: &Value,
    alone: &Value,
    sharing: &[&str],
) -> Error {
    let max = policy::MAX_POLICY_BYTES;
    let bytes =
        |statements: &[&Value]| -> usize { statements.iter().map(|s| s.to_string().len()).sum() };
    let our_statements = policy::statements(ours);
    let our_bytes = bytes(&our_statements);
    let source_arns: Vec<&Value> = our_statements
        .iter()
        .filter_map(|s| s.pointer("/Condition/StringEquals/aws:SourceArn"))
        .collect();
    let arn_bytes = bytes(&source_arns);
    let trails = 1 + sharing.len();
    let foreign: Vec<&Value> = current
        .map(policy::statements)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !policy::is_ours(s))
        .collect();
    let foreign_bytes = bytes(&foreign);
    let compact =
        |ours: &Value, current: Option<&Value>| policy::merge(current, ours).to_string().len();
    let shared_bytes = compact(ours, current).saturating_sub(compact(alone, current));
    let fits_alone = policy::to_document(&policy::merge(current, alone)).len() <= max;
    let fits_without_foreign = policy::to_document(&policy::merge(None, ours)).len() <= max;
    let blame_trails = !sharing.is_empty()
        && match (fits_alone, fits_without_foreign) {
            (true, false) => true,
            (false, true) => false,
            _ => shared_bytes >= foreign_bytes,
        };
    let over = format!("the merged key policy would be {size} bytes; KMS accepts at most {max}");
    let foreign_text = match foreign.len() {
        0 => "the key has no foreign statements".to_owned(),
        1 => format!("1 foreign statement takes {foreign_bytes} bytes"),
        n => format!("{n} foreign statements take {foreign_bytes} bytes"),
    };
    if blame_trails {
        let shown = sharing.len().min(3);
        let more = match sharing.len() - shown {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Error::check(
            format!(
                "{over}: {trails} trails share the key; their ARNs in aws:SourceArn take {arn_bytes} bytes (each ARN is listed in {} statements), and the policy would be {shared_bytes} bytes smaller with the configured trail alone. The other trails: {}{more}. trailkey's statements take {our_bytes} bytes in all; {foreign_text}",
                source_arns.len(),
                sharing[..shown].join(", "),
            ),
            "use this key for fewer trails: point some of the other trails at a KMS key of their own (every trail of the management account that uses this key stays in aws:SourceArn, so that its delivery goes on), then run trailkey again",
        );
    }
    let arns = if trails > 1 {
        format!(", of which the aws:SourceArn lists, naming {trails} trails, take {arn_bytes}")
    } else {
        String::new()
    };
    if foreign.is_empty() {
        return Error::check(
            format!("{over}: trailkey's statements take {our_bytes} bytes{arns}"),
            "trailkey's own statements do not fit: declare fewer readers in [readers]",
        );
    }
    Error::check(
        format!("{over}: {foreign_text}; trailkey's statements take {our_bytes} bytes{arns}"),
        "the key's foreign statements leave no room for trailkey's: remove unused statements from the key policy",
    )
}

/// The IAM policy `reader` needs in its own account to read the trail's log
/// files (`policy --reader-iam`): `kms:Decrypt` on the key under the same
/// encryption-context condition as the key policy's reader statements, and
/// `s3:ListBucket`/`s3:GetObject` on the trail's bucket, under its prefix.
/// The reader must be one the key policy lets decrypt: of the Log Archive,
/// management or Security Tooling account, or one `[readers]` lists.
pub fn reader_iam_policy(
    desired: &Desired,
    observed: &Observed,
    reader: &crate::config::Principal,
) -> Result<Value, Error> {
    let management = observed.organization.management_account.as_str();
    // Those accounts' roots are in the key policy; the Security Tooling
    // account's root administers the key.
    let by_account = [
        desired.log_archive.as_str(),
        management,
        desired.security_tooling.as_str(),
    ]
    .contains(&reader.account.as_str());
    if !by_account && !desired.readers.covers(reader) {
        return Err(Error::usage(
            format!(
                "{} is not a reader: the key policy does not let it decrypt the log files",
                reader.arn
            ),
            format!(
                "add it to readers.principals, or its account {} to readers.accounts, in {}, run `trailkey apply`, then ask again",
                reader.account,
                desired.source.display()
            ),
        ));
    }
    let Some(key) = &observed.key else {
        return Err(Error::check(
            format!("the key {} does not exist yet", desired.alias.full()),
            "run `trailkey apply` first: the IAM policy names the key's ARN",
        ));
    };
    let ours = policy::render(&PolicyInputs::of(desired, management, &observed.trail.arn));
    let condition = policy::statements(&ours)
        .into_iter()
        .find(|s| policy::sid(s) == Some("TrailkeyLogReadersDecrypt"))
        .and_then(|s| s.get("Condition"))
        .cloned()
        .unwrap_or(Value::Null);
    let partition = desired.partition();
    let bucket = &observed.trail.s3_bucket;
    let logs = match observed.trail.s3_key_prefix.as_deref() {
        Some(prefix) => format!("{}/AWSLogs/", prefix.trim_end_matches('/')),
        None => "AWSLogs/".to_owned(),
    };
    Ok(json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DecryptCloudTrailLogFiles",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": key.info.arn,
                "Condition": condition
            },
            {
                "Sid": "ListCloudTrailLogFiles",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": format!("arn:{partition}:s3:::{bucket}"),
                "Condition": { "StringLike": { "s3:prefix": [format!("{logs}*")] } }
            },
            {
                "Sid": "ReadCloudTrailLogFiles",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": format!("arn:{partition}:s3:::{bucket}/{logs}*")
            }
        ]
    }))
}

/// `[readers]` must not repeat the management account, which the config
/// may leave out (it is read from AWS): its root is a reader already.
fn check_readers(desired: &Desired, management: &str) -> Result<(), Error> {
    let repeated = desired
        .readers
        .accounts
        .iter()
        .map(|a| (a.as_str(), "readers.accounts".to_owned()))
        .chain(
            desired
                .readers
                .principals
                .iter()
                .map(|p| (p.account.as_str(), format!("readers.principals {}", p.arn))),
        )
        .find(|(account, _)| *account == management);
    match repeated {
        None => Ok(()),
        Some((_, field)) => Err(Error::config(
            &desired.source,
            Some("readers".to_owned()),
            format!(
                "{field} names the management account {management}, whose root already reads the logs"
            ),
            "remove it from [readers]: the Log Archive and management accounts are always readers"
                .to_owned(),
        )),
    }
}

/// The other trails of the management account that use trailkey's key:
/// CloudTrail must keep its permission for them, or their log delivery
/// would stop (after a rename of `trail.name`, the old trail, until it
/// moves to another key). Only an unambiguous name counts, since this
/// grants: the key's ARN, or the alias's ARN in the Security Tooling
/// account and Region (a bare key ID or alias name on a management-account
/// trail would name a key of that account).
fn sharing_trails<'o>(
    desired: &Desired,
    observed: &'o Observed,
) -> impl Iterator<Item = &'o Trail> {
    let alias_arn = format!(
        "arn:{}:kms:{}:{}:{}",
        desired.partition(),
        desired.region,
        desired.security_tooling,
        desired.alias.full()
    );
    let prefix = format!("arn:{}:cloudtrail:", desired.partition());
    let management = format!(":{}:trail/", observed.organization.management_account);
    observed.other_trails.iter().filter(move |t| {
        t.arn.starts_with(&prefix)
            && t.arn.contains(&management)
            && observed.key.as_ref().is_some_and(|k| {
                t.kms_key_id
                    .as_deref()
                    .is_some_and(|id| id == k.info.arn || id == alias_arn)
            })
    })
}

fn parse_policy(text: &str, key_arn: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::check(
            format!("the policy of key {key_arn} is not valid JSON ({e})"),
            "inspect it with `aws kms get-key-policy --policy-name default`",
        )
    })
}

/// Builds the plan. Pure: the same inputs give the same plan.
pub fn plan(desired: &Desired, observed: &Observed) -> Result<Plan, Error> {
    check_context(desired, &observed.identity, &observed.organization)?;
    check_readers(desired, &observed.organization.management_account)?;
    check_trail(desired, &observed.trail, observed.trail_tags.as_ref())?;
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
    let trail = trail_change(desired, observed);
    let validation = validation_change(desired, &observed.trail, &trail);
    changes.push(trail);
    changes.extend(validation);
    let policy_unchanged = !changes
        .iter()
        .any(|c| c.address == Address::KmsKeyPolicy && c.action != Action::NoOp);
    let mut findings = findings(desired, observed, current.as_ref(), policy_unchanged);
    if changes
        .iter()
        .any(|c| c.address == Address::TrailEncryption && c.action != Action::NoOp)
    {
        findings.extend(log_archive_findings(desired, observed, false)?);
    }
    Ok(Plan {
        format_version: FORMAT_VERSION,
        target: Target::of(desired, observed),
        changes,
        findings,
        key: key.map(|k| k.info.clone()),
    })
}

/// The tags trailkey manages on the key itself (the alias tag belongs to `kms_alias`).
fn key_tags(desired: &Desired) -> impl Iterator<Item = (&String, &String)> {
    desired.tags.iter().filter(|(k, _)| k.as_str() != ALIAS_TAG)
}

/// The tags of a key trailkey creates: the desired ones and the mark that
/// trailkey created it ([`CREATED_TAG`]), which no other step sets.
fn new_key_tags(desired: &Desired) -> BTreeMap<String, String> {
    let mut tags = desired.tags.clone();
    tags.insert(CREATED_TAG.0.to_owned(), CREATED_TAG.1.to_owned());
    tags
}

/// Whether trailkey's own `CreateKey` made the key with these tags.
pub fn created_by_trailkey(tags: &BTreeMap<String, String>) -> bool {
    tags.get(CREATED_TAG.0).map(String::as_str) == Some(CREATED_TAG.1)
}

fn key_change(desired: &Desired, observed: &Observed, merged: &Value) -> Change {
    match &observed.key {
        None => key_creation(desired, merged),
        Some(k) => key_repair(desired, k),
    }
}

/// `kms_key` when there is no key: one `CreateKey` with the policy and tags.
fn key_creation(desired: &Desired, merged: &Value) -> Change {
    Change::new(
        Address::KmsKey,
        Action::Create,
        Value::Null,
        json!({
            "arn": KNOWN_AFTER_APPLY,
            "description": desired.key_description(),
            "key_spec": KeySpec::SymmetricDefault,
            "key_usage": KeyUsage::EncryptDecrypt,
            "origin": Origin::AwsKms,
            "multi_region": false,
            "state": KeyState::Enabled,
            "tags": new_key_tags(desired),
        }),
    )
    .because(format!(
        "no key is named {} or tagged for it in account {} ({})",
        desired.alias.full(),
        desired.security_tooling,
        desired.region
    ))
    .steps([Step::CreateKey(NewKey {
        description: desired.key_description(),
        policy: policy::to_document(merged),
        tags: new_key_tags(desired),
    })])
}

/// `kms_key` for an existing key: enabled again if needed, its tags set.
fn key_repair(desired: &Desired, k: &ObservedKey) -> Change {
    let mut change = state_repair(desired, k);
    let missing: BTreeMap<String, String> = key_tags(desired)
        .filter(|(t, v)| k.tags.get(*t) != Some(*v))
        .map(|(t, v)| (t.clone(), v.clone()))
        .collect();
    if !missing.is_empty() {
        change = change
            .because(format!(
                "tags to set: {}",
                missing
                    .iter()
                    .map(|(t, v)| format!("{t}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .steps([Step::TagKey(missing)]);
    }
    let mut after_tags = k.tags.clone();
    after_tags.extend(key_tags(desired).map(|(t, v)| (t.clone(), v.clone())));
    let view = |state: &KeyState, tags: &BTreeMap<String, String>| {
        json!({
            "arn": k.info.arn,
            "description": k.info.description,
            "key_spec": k.info.key_spec,
            "key_usage": k.info.key_usage,
            "origin": k.info.origin,
            "multi_region": k.info.multi_region,
            "state": state,
            "tags": tags,
        })
    };
    change.before = view(&k.info.state, &k.tags);
    change.after = view(&KeyState::Enabled, &after_tags);
    if !change.steps.is_empty() {
        change.action = Action::Update;
    }
    change
}

/// The steps that bring a key pending deletion or disabled back to
/// `Enabled` (none for an enabled key), in a change still to be completed.
fn state_repair(desired: &Desired, k: &ObservedKey) -> Change {
    let change = Change::new(Address::KmsKey, Action::NoOp, Value::Null, Value::Null);
    match k.info.state {
        KeyState::PendingDeletion => {
            let change = change
                .because(
                    "THE KEY IS PENDING DELETION: once it is deleted, every log it encrypted is unreadable for ever. trailkey cancels the deletion and enables the key",
                )
                .steps([Step::CancelKeyDeletion, Step::EnableKey]);
            if desired.rotation && k.rotation.is_none() {
                // KMS does not report rotation while deletion is pending.
                return change
                    .because("rotation is turned on again with the key")
                    .steps([Step::EnableRotation]);
            }
            change
        }
        KeyState::Disabled => change
            .because("the key is disabled: CloudTrail cannot deliver logs encrypted with it")
            .steps([Step::EnableKey]),
        KeyState::Enabled | KeyState::Other(_) => change,
    }
}

/// `kms_alias`, and `kms_alias_previous` when `ct_key_alias` was renamed.
fn alias_changes(desired: &Desired, observed: &Observed) -> Vec<Change> {
    let alias = desired.alias.full();
    let target = observed.alias_target.as_ref();
    let Some(k) = &observed.key else {
        return vec![
            Change::new(
                Address::KmsAlias,
                Action::Create,
                Value::Null,
                json!({ "name": alias, "target_key_id": KNOWN_AFTER_APPLY }),
            )
            .steps([Step::CreateAlias(alias.clone())]),
        ];
    };
    let before = json!({ "name": alias, "target_key_id": target.map(|t| &t.key_id) });
    let after = json!({ "name": alias, "target_key_id": k.info.key_id });
    let mut alias_change = match target {
        None => Change::new(Address::KmsAlias, Action::Create, Value::Null, after)
            .because(format!(
                "{alias} does not exist; trailkey's key {} was found by its tags",
                k.info.arn
            ))
            .steps([Step::CreateAlias(alias.clone())]),
        Some(t) if t.key_id != k.info.key_id => {
            Change::new(Address::KmsAlias, Action::Update, before, after)
                .because(format!(
                    "{alias} names key {}, which trailkey did not create; it is pointed back at {} (the other key is left as it is)",
                    t.arn, k.info.arn
                ))
                .steps([Step::UpdateAlias(alias.clone())])
        }
        Some(_) => Change::no_op(Address::KmsAlias, after),
    };
    let short = desired.alias.short();
    let tagged_for = k.tags.get(ALIAS_TAG).map(String::as_str);
    if tagged_for == Some(short) {
        return vec![alias_change];
    }
    let tag_step = Step::TagKey(BTreeMap::from([(ALIAS_TAG.to_owned(), short.to_owned())]));
    // The alias of the old name, if it still names the key: removed, then the
    // tag is updated, so a crash in between is retried by the next run.
    let previous = tagged_for
        .map(|old| format!("alias/{old}"))
        .filter(|old| k.aliases.iter().flatten().any(|a| a == old));
    let Some(previous) = previous else {
        let reason = match tagged_for {
            Some(old) => format!("the key was tagged for alias/{old}: tag {ALIAS_TAG} = {short}"),
            None => format!("tag {ALIAS_TAG} = {short} marks the key as the one for {alias}"),
        };
        if alias_change.action == Action::NoOp {
            alias_change.action = Action::Update;
        }
        return vec![alias_change.because(reason).steps([tag_step])];
    };
    let previous_change = Change::new(
        Address::KmsAliasPrevious,
        Action::Delete,
        json!({ "name": previous, "target_key_id": k.info.key_id }),
        Value::Null,
    )
    .because(format!(
        "ct_key_alias was renamed to {short}: the old alias {previous} is removed (the key and the logs it encrypted stay)"
    ))
    .steps([Step::DeleteAlias(previous.clone()), tag_step]);
    vec![alias_change, previous_change]
}

/// `current` is the observed key's policy, parsed (`None`: no key yet).
fn policy_change(desired: &Desired, current: Option<&Value>, merged: &Value) -> Change {
    let Some(current) = current else {
        let mut change = Change::new(
            Address::KmsKeyPolicy,
            Action::Create,
            Value::Null,
            merged.clone(),
        )
        .because("attached by CreateKey with the new key");
        change.statements = Some(policy::diff(None, merged, desired.partition()));
        return change;
    };
    let d = policy::diff(Some(current), merged, desired.partition());
    let same = policy::equivalent(current, merged, desired.partition());
    let mut change = Change::new(
        Address::KmsKeyPolicy,
        if same { Action::NoOp } else { Action::Update },
        current.clone(),
        merged.clone(),
    );
    change
        .reasons
        .extend(d.added.iter().map(|s| format!("+ statement {s} (missing)")));
    change.reasons.extend(
        d.changed
            .iter()
            .map(|c| format!("~ statement {} (differs)", c.sid)),
    );
    change.reasons.extend(
        d.removed
            .iter()
            .map(|s| format!("- statement {s} (no longer in the template)")),
    );
    if !same {
        change
            .steps
            .push(Step::PutKeyPolicy(policy::to_document(merged)));
    }
    change.statements = Some(d);
    change
}

fn rotation_change(desired: &Desired, key: Option<&ObservedKey>) -> Change {
    let enabled = |v: Option<bool>| json!({ "enabled": v });
    match (key, desired.rotation) {
        (None, true) => Change::new(
            Address::KmsKeyRotation,
            Action::Create,
            Value::Null,
            enabled(Some(true)),
        )
        .steps([Step::EnableRotation]),
        (Some(k), true) if k.rotation == Some(false) => Change::new(
            Address::KmsKeyRotation,
            Action::Update,
            enabled(Some(false)),
            enabled(Some(true)),
        )
        .because("automatic key rotation is off (CIS: rotation on)")
        .steps([Step::EnableRotation]),
        (k, rotation) => {
            let change =
                Change::no_op(Address::KmsKeyRotation, enabled(k.and_then(|k| k.rotation)));
            if rotation {
                change
            } else {
                change.because("key.rotation = false: trailkey leaves rotation as it is")
            }
        }
    }
}

fn trail_change(desired: &Desired, observed: &Observed) -> Change {
    let trail = &observed.trail;
    let alias = desired.alias.full();
    let before = json!({ "trail": trail.arn, "kms_key_id": trail.kms_key_id });
    let update = Step::UpdateTrail {
        trail: trail.arn.clone(),
        log_file_validation: enables_validation(desired, trail),
    };
    match &observed.key {
        None => Change::new(
            Address::TrailEncryption,
            Action::Update,
            before,
            json!({ "trail": trail.arn, "kms_key_id": KNOWN_AFTER_APPLY }),
        )
        .because(trail_reason(trail, None, &alias))
        .steps([update]),
        Some(k) if trail.kms_key_id.as_deref() == Some(k.info.arn.as_str()) => {
            Change::no_op(Address::TrailEncryption, before)
        }
        Some(k) => Change::new(
            Address::TrailEncryption,
            Action::Update,
            before,
            json!({ "trail": trail.arn, "kms_key_id": k.info.arn }),
        )
        .because(trail_reason(trail, Some(&k.info), &alias))
        .steps([update]),
    }
}

/// Whether the config turns log-file validation on and the trail has it off.
fn enables_validation(desired: &Desired, trail: &Trail) -> bool {
    desired.log_file_validation == Some(true) && !trail.log_file_validation
}

/// `trail.log_file_validation = true`: turned on, in the same `UpdateTrail`
/// as the key when `encryption` changes the trail, else on its own. Not
/// managed (no change at all) unless the config asks for it.
fn validation_change(desired: &Desired, trail: &Trail, encryption: &Change) -> Option<Change> {
    if desired.log_file_validation != Some(true) {
        return None;
    }
    let before = json!({ "trail": trail.arn, "log_file_validation": trail.log_file_validation });
    if !enables_validation(desired, trail) {
        return Some(Change::no_op(Address::TrailLogFileValidation, before));
    }
    let change = Change::new(
        Address::TrailLogFileValidation,
        Action::Update,
        before,
        json!({ "trail": trail.arn, "log_file_validation": true }),
    )
    .because("log_file_validation = true: CloudTrail will deliver signed digest files, so that changes to the log files can be detected (CIS AWS Foundations 3.2)");
    Some(if encryption.steps.is_empty() {
        change.steps([Step::EnableLogFileValidation(trail.arn.clone())])
    } else {
        change.because("in the same UpdateTrail call as the key")
    })
}

/// The Log Archive side of a change of the trail's key (to trailkey's key,
/// or with `back_to_sse_s3` to none): the bucket's policy must not deny
/// CloudTrail's writes with the new setting (else an [`Error::Check`]), and
/// for a key, its replication and encryption are reported. Without
/// `roles.log_archive`, a note that it was not checked; with it but the
/// bucket not read yet, nothing (the loop reads it and plans again).
fn log_archive_findings(
    desired: &Desired,
    observed: &Observed,
    back_to_sse_s3: bool,
) -> Result<Vec<Finding>, Error> {
    let bucket = &observed.trail.s3_bucket;
    if desired.log_archive_role.is_none() {
        return Ok(vec![Finding {
            level: Level::Note,
            message: format!(
                "the Log Archive side (the policy, encryption and replication of bucket {bucket}) was not checked: set roles.log_archive to a read-only role in account {} to check it before the trail changes",
                desired.log_archive
            ),
        }]);
    }
    let Some(read) = &observed.log_bucket else {
        return Ok(Vec::new());
    };
    let prefix = format!(
        "arn:{}:kms:{}:{}:key/",
        desired.partition(),
        desired.region,
        desired.security_tooling
    );
    let key = match &observed.key {
        _ if back_to_sse_s3 => log_archive::TrailKey::SseS3,
        Some(k) => log_archive::TrailKey::Arn(&k.info.arn),
        None => log_archive::TrailKey::New { prefix: &prefix },
    };
    let write = log_archive::Write {
        partition: desired.partition(),
        bucket,
        key,
    };
    log_archive::check(read, &write, desired.log_archive.as_str())
}

/// What the plan reports but does not change.
/// `current` is the observed key's policy, parsed.
fn findings(
    desired: &Desired,
    observed: &Observed,
    current: Option<&Value>,
    policy_unchanged: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(current) = current {
        out.extend(crate::exposure::findings(desired, observed, current));
    }
    if let (Some(k), Some(current)) = (&observed.key, current) {
        out.extend(policy_findings(
            desired,
            observed,
            k,
            current,
            policy_unchanged,
        ));
    }
    if let Some(status) = &observed.trail_status {
        out.extend(trail_findings(&observed.trail, status));
    }
    out.extend(trail_setting_findings(desired, &observed.trail));
    let sharing: Vec<&str> = sharing_trails(desired, observed)
        .map(|t| t.arn.as_str())
        .collect();
    if !sharing.is_empty() {
        out.push(Finding {
            level: Level::Note,
            message: format!(
                "trail(s) {} also use the key: trailkey's CloudTrail statements allow them too (aws:SourceArn), so that their log delivery keeps working; each leaves the policy once it no longer uses the key",
                sharing.join(", ")
            ),
        });
    }
    if let Err(why) = &observed.bucket_region {
        out.push(Finding {
            level: Level::Note,
            message: format!(
                "the Region of bucket {} could not be read ({why}); check that it is in {}",
                observed.trail.s3_bucket, desired.region
            ),
        });
    }
    if observed.key.is_none() && !observed.unreadable_keys.is_empty() {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "trailkey's role may not read {} key(s) of account {} (their key policies do not let it in): {}. trailkey creates a key of its own beside them; if one of them is a key an earlier trailkey run made whose policy was changed since, let the role in again first, or there will be two keys",
                observed.unreadable_keys.len(),
                desired.security_tooling,
                observed.unreadable_keys.join(", ")
            ),
        });
    }
    for other in &observed.other_keys {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "another key tagged for {} exists: {} ({}). trailkey uses {} and leaves the other alone; if no trail or bucket uses it, schedule its deletion",
                desired.alias.full(),
                other.arn,
                other.state,
                observed.key.as_ref().map_or("a new key", |k| k.info.arn.as_str())
            ),
        });
    }
    out
}

/// The key policy's foreign `Deny` statements that block CloudTrail or the
/// readers, and, when the policy does not change, the statements kept.
fn policy_findings(
    desired: &Desired,
    observed: &Observed,
    k: &ObservedKey,
    current: &Value,
    policy_unchanged: bool,
) -> Vec<Finding> {
    let partition = desired.partition();
    let root = |account: &str| format!("arn:{partition}:iam::{account}:root");
    // (ARN, description, whether a Deny of kms:Decrypt to it breaks the setup)
    let mut readers = vec![
        (
            root(desired.log_archive.as_str()),
            "the Log Archive account",
            true,
        ),
        (
            root(&observed.organization.management_account),
            "the management account",
            false,
        ),
    ];
    readers.extend(
        desired
            .readers
            .accounts
            .iter()
            .map(|a| (root(a.as_str()), "the declared reader account", false)),
    );
    readers.extend(
        desired
            .readers
            .principals
            .iter()
            .map(|p| (p.arn.clone(), "the declared reader", false)),
    );
    let readers: Vec<policy::Reader<'_>> = readers
        .iter()
        .map(|(arn, what, essential)| policy::Reader {
            arn,
            what,
            essential: *essential,
        })
        .collect();
    let key = policy::KeyArn::Known(&k.info.arn);
    let mut out: Vec<Finding> =
        policy::blocking_denies(current, partition, key, &observed.trail.arn, &readers)
            .into_iter()
            .map(|deny| Finding {
                level: if deny.breaks_delivery {
                    Level::Error
                } else {
                    Level::Warning
                },
                message: format!(
                    "{}. trailkey does not change statements it does not own: remove or narrow that statement in the key policy of {}",
                    deny.message, k.info.arn
                ),
            })
            .collect();
    out.extend(
        policy::unknown_reserved_sids(current)
            .into_iter()
            .map(|sid| Finding {
                level: Level::Warning,
                message: format!(
                    "statement {sid:?} is not one of trailkey's, but its Sid starts with {:?}, which trailkey reserves for its own statements: apply removes it. Rename it (any Sid not starting with {0:?}) to keep it",
                    policy::OUR_SID_PREFIX
                ),
            }),
    );
    // When the policy changes, the change itself lists the kept statements.
    let kept = policy::foreign_sids(current);
    if policy_unchanged && !kept.is_empty() {
        out.push(Finding {
            level: Level::Note,
            message: format!(
                "the key policy has {} statement(s) not managed by trailkey, kept on every write: {}",
                kept.len(),
                kept.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    out
}

/// What CIS AWS Foundations asks of the trail and trailkey does not set:
/// log-file validation when the config does not ask for it (3.2), and a
/// multi-Region trail (3.1). Warnings only: the exit code is unchanged.
fn trail_setting_findings(desired: &Desired, trail: &Trail) -> Vec<Finding> {
    let mut out = Vec::new();
    if !trail.log_file_validation && desired.log_file_validation.is_none() {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "log-file validation is off on trail {}: CloudTrail delivers no digest files, so a log file changed or deleted in the bucket cannot be detected (CIS AWS Foundations 3.2). Set log_file_validation = true under [trail] to turn it on, or false to keep it as it is without this warning",
                trail.arn
            ),
        });
    }
    if !trail.is_multi_region_trail {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "trail {} is not multi-Region: it records the events of {} only (CIS AWS Foundations 3.1). trailkey does not change that; `aws cloudtrail update-trail --name {} --is-multi-region-trail` does",
                trail.arn, trail.home_region, trail.arn
            ),
        });
    }
    out
}

/// A trail that is not logging, and its latest delivery errors.
fn trail_findings(trail: &Trail, status: &TrailStatus) -> Vec<Finding> {
    let mut out = Vec::new();
    if !status.is_logging {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "trail {} is not logging: no events are recorded. Start it with `aws cloudtrail start-logging --name {}`",
                trail.arn, trail.arn
            ),
        });
    }
    for (what, error) in [
        ("log", &status.latest_delivery_error),
        ("digest", &status.latest_digest_delivery_error),
    ] {
        if let Some(error) = error {
            out.push(Finding {
                level: Level::Warning,
                message: delivery_error(what, error),
            });
        }
    }
    out
}

/// A `GetTrailStatus` delivery error in plain language.
fn delivery_error(what: &str, error: &str) -> String {
    let meaning = if error.contains("KMS") || error.contains("kms") {
        "CloudTrail could not use the KMS key: check that the key is enabled, in the bucket's Region, and that its policy lets cloudtrail.amazonaws.com GenerateDataKey* for this trail (`trailkey plan` shows policy drift)"
    } else if error.contains("AccessDenied") {
        "the bucket policy does not let CloudTrail write: check the Log Archive bucket policy"
    } else if error.contains(crate::aws::code::NO_SUCH_BUCKET) {
        "the bucket is gone: fix the trail's S3 bucket"
    } else {
        "see the CloudTrail console for the trail's delivery status"
    };
    format!("the latest {what} file delivery failed with {error}: {meaning}")
}

/// Does `kms_key_id` (as a trail holds it) name `key`: by its ARN, its ID,
/// or one of `aliases` (`alias/...`, as a name or inside an alias ARN)?
pub fn names_key(kms_key_id: Option<&str>, key: &KeyInfo, aliases: &[&str]) -> bool {
    kms_key_id.is_some_and(|id| {
        id == key.arn
            || id == key.key_id
            || aliases
                .iter()
                .any(|alias| id == *alias || id.ends_with(&format!(":{alias}")))
    })
}

/// What decides whether a key may be deleted, read just before deciding
/// (`observe::key_users`): the key's tags, the aliases that name it, its
/// grants, every trail of every enabled Region (each read from its home
/// Region), and the CloudTrail Lake event data stores of the key's Region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUsers {
    pub tags: BTreeMap<String, String>,
    pub aliases: Vec<String>,
    pub trails: Vec<Trail>,
    /// The key's grants: AWS services and others that use the key.
    pub grants: Vec<crate::aws::Grant>,
    pub event_data_stores: Vec<crate::aws::EventDataStore>,
}

/// Refuses the deletion of `key` unless trailkey's own `CreateKey` made it
/// ([`created_by_trailkey`]) and nothing uses it: no grant, no event data
/// store and no trail ([`check_unused`]) naming it by ARN, ID, the
/// configured `alias` or any alias that names it. The error names every use
/// found. `moving_off` is the trail the same destroy moves back to SSE-S3
/// first (at plan time); just before `ScheduleKeyDeletion` it is `None`, so
/// that trail must not name the key either. The plan and the apply make
/// this one check.
pub fn check_deletion(
    alias: &str,
    key: &KeyInfo,
    users: &KeyUsers,
    moving_off: Option<&str>,
) -> Result<(), Error> {
    if !created_by_trailkey(&users.tags) {
        let how = if users.tags.get(MANAGED_BY_TAG.0).map(String::as_str) == Some(MANAGED_BY_TAG.1)
        {
            format!(
                "trailkey manages it but did not create it: it carries {}={} but not {}={}, so it is a key trailkey adopted (the alias named it first) or one an older trailkey created without that mark",
                MANAGED_BY_TAG.0, MANAGED_BY_TAG.1, CREATED_TAG.0, CREATED_TAG.1
            )
        } else {
            format!(
                "trailkey did not create it (no tag {}={})",
                CREATED_TAG.0, CREATED_TAG.1
            )
        };
        return Err(Error::check(
            format!(
                "--delete-key refused: key {} may encrypt more than this trail's logs; {how}",
                key.arn
            ),
            "trailkey deletes only keys it created: run destroy without --delete-key (the trail goes back to SSE-S3 and the key is kept), and delete that key yourself once you know nothing else uses it",
        ));
    }
    let mut aliases: Vec<&str> = users.aliases.iter().map(String::as_str).collect();
    aliases.push(alias);
    // Each kind of use: what the message says of it, and what the hint says
    // to do about it.
    let mut uses: Vec<String> = Vec::new();
    let mut fixes: Vec<String> = Vec::new();
    if !users.grants.is_empty() {
        let grants: Vec<String> = users
            .grants
            .iter()
            .map(|g| {
                format!(
                    "grant {} to {} ({})",
                    g.id,
                    g.grantee,
                    g.operations.join(", ")
                )
            })
            .collect();
        uses.push(format!(
            "is used through {} grant(s): {}",
            grants.len(),
            grants.join("; ")
        ));
        fixes.push(format!(
            "a grant is how an AWS service or another principal uses the key (`aws kms list-grants --key-id {}`): retire or revoke the grants whose data no longer needs the key",
            key.key_id
        ));
    }
    let stores: Vec<String> = users
        .event_data_stores
        .iter()
        .filter(|s| names_key(s.kms_key_id.as_deref(), key, &aliases))
        .map(|s| format!("{} ({}, status {})", s.name, s.arn, s.status))
        .collect();
    if !stores.is_empty() {
        uses.push(format!(
            "encrypts {} CloudTrail Lake event data store(s): {}",
            stores.len(),
            stores.join(", ")
        ));
        fixes.push(
            "an event data store's events cannot be read once its key is deleted, and its key cannot be changed: delete the event data store first if its events are no longer needed".to_owned(),
        );
    }
    if let Err(trails) = check_unused(key, &users.trails, &aliases, moving_off) {
        uses.push(format!("still encrypts trail(s) {}", trails.join(", ")));
        fixes.push("move those trails to another key first".to_owned());
    }
    if uses.is_empty() {
        return Ok(());
    }
    Err(Error::check(
        format!(
            "--delete-key refused: the key {} {}",
            key.arn,
            uses.join("; and it ")
        ),
        format!(
            "{}; or run destroy without --delete-key (the key is kept)",
            fixes.join("; ")
        ),
    ))
}

/// Whether any of `trails` but `moving_off` names `key`, by ARN, ID or one
/// of `aliases`; `Err` names those that do: ARN and home Region.
pub fn check_unused(
    key: &KeyInfo,
    trails: &[Trail],
    aliases: &[&str],
    moving_off: Option<&str>,
) -> Result<(), Vec<String>> {
    let using: Vec<String> = trails
        .iter()
        .filter(|t| Some(t.arn.as_str()) != moving_off)
        .filter(|t| names_key(t.kms_key_id.as_deref(), key, aliases))
        .map(|t| format!("{} (home Region {})", t.arn, t.home_region))
        .collect();
    if using.is_empty() { Ok(()) } else { Err(using) }
}

/// The destroy plan, the backout: the trail back to SSE-S3;
/// the key and alias kept, because existing logs need the key to be read,
/// unless `delete_key` (the deletion window in days, and the key's users
/// read for it), which removes the alias and schedules the key's deletion,
/// refused by [`check_deletion`].
pub fn plan_destroy(
    desired: &Desired,
    observed: &Observed,
    delete_key: Option<(i32, &KeyUsers)>,
) -> Result<Plan, Error> {
    check_context(desired, &observed.identity, &observed.organization)?;
    check_trail(desired, &observed.trail, observed.trail_tags.as_ref())?;
    let key = observed.key.as_ref();
    let backout = trail_backout(desired, observed);
    let findings = if backout.action == Action::Update {
        log_archive_findings(desired, observed, true)?
    } else {
        Vec::new()
    };
    // Only a trail this destroy moves off the key is exempt from the check.
    let moving_off = (backout.action == Action::Update).then_some(observed.trail.arn.as_str());
    let mut changes = vec![backout];
    match (key, delete_key) {
        (Some(k), Some((days, users))) => {
            check_deletion(&desired.alias.full(), &k.info, users, moving_off)?;
            changes.extend(key_deletion(desired, observed, k, days));
        }
        (Some(k), None) => changes.push(
            Change::no_op(
                Address::KmsKey,
                json!({ "arn": k.info.arn, "state": k.info.state }),
            )
            .because(
                "kept: the logs already written need the key to be read (--delete-key removes it)",
            ),
        ),
        (None, _) => {}
    }
    Ok(Plan {
        format_version: FORMAT_VERSION,
        target: Target::of(desired, observed),
        changes,
        findings,
        key: key.map(|k| k.info.clone()),
    })
}

/// Destroy's change to the trail: back to SSE-S3 if it names trailkey's key.
fn trail_backout(desired: &Desired, observed: &Observed) -> Change {
    let trail = &observed.trail;
    let alias = desired.alias.full();
    let before = json!({ "trail": trail.arn, "kms_key_id": trail.kms_key_id });
    match &observed.key {
        Some(k) if names_key(trail.kms_key_id.as_deref(), &k.info, &[&alias]) => Change::new(
            Address::TrailEncryption,
            Action::Update,
            before,
            json!({ "trail": trail.arn, "kms_key_id": null }),
        )
        .because("the trail goes back to SSE-S3: new log files are encrypted with S3-managed keys, not the KMS key")
        .steps([Step::DisableTrailEncryption(trail.arn.clone())]),
        _ if trail.kms_key_id.is_some() => Change::no_op(Address::TrailEncryption, before)
            .because("the trail uses a key trailkey does not manage: left as it is"),
        _ => Change::no_op(Address::TrailEncryption, before),
    }
}

/// `destroy --delete-key`'s changes to a key [`check_deletion`] allowed:
/// its alias removed, then its deletion scheduled after `days`.
fn key_deletion(desired: &Desired, observed: &Observed, k: &ObservedKey, days: i32) -> Vec<Change> {
    let alias = desired.alias.full();
    let mut changes = Vec::new();
    if observed
        .alias_target
        .as_ref()
        .is_some_and(|t| t.key_id == k.info.key_id)
    {
        changes.push(
            Change::new(
                Address::KmsAlias,
                Action::Delete,
                json!({ "name": alias, "target_key_id": k.info.key_id }),
                Value::Null,
            )
            .steps([Step::DeleteAlias(alias.clone())]),
        );
    }
    let view = json!({ "arn": k.info.arn, "state": k.info.state });
    changes.push(if k.info.state == KeyState::PendingDeletion {
        Change::no_op(Address::KmsKey, view).because("the key is already pending deletion")
    } else {
        Change::new(Address::KmsKey, Action::Delete, view, Value::Null)
            .because(format!(
                "KMS deletes the key after {days} days; every log file it encrypted is unreadable from then on. Until then `aws kms cancel-key-deletion` (or `trailkey apply`) rescues it"
            ))
            .steps([Step::ScheduleKeyDeletion(days)])
    });
    changes
}

fn trail_reason(trail: &Trail, key: Option<&KeyInfo>, alias: &str) -> String {
    let Some(current) = trail.kms_key_id.as_deref() else {
        return "the trail is not encrypted with a KMS key (SSE-S3 only)".to_owned();
    };
    match key {
        // Not by its ARN: that would be no change.
        Some(k) if names_key(Some(current), k, &[alias]) => {
            format!("the trail names the key as {current:?}, not by its key ARN")
        }
        _ => format!("the trail uses another key: {current}"),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
