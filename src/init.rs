//! `trailkey init`: read the organization and write a commented config.
//!
//! # What it reads
//!
//! `sts:GetCallerIdentity`, `organizations:DescribeOrganization`,
//! `organizations:ListAccounts` and `cloudtrail:DescribeTrails`, all at once
//! (`tokio::join!`), then `cloudtrail:ListTags` of the organization trails
//! homed in the Region (to recognise Control Tower's trail by its tags, as
//! `plan` does). Nothing is written to AWS. The caller must be in the
//! management account of an organization; anything else is an error, and no
//! file is written.
//!
//! # How the accounts are found
//!
//! By name, among the organization's **ACTIVE** accounts other than the
//! management account. A name is *normalized* by lower-casing it and keeping
//! only its letters and digits (`"Log-Archive"`, `"log_archive"` and
//! `"LogArchive"` all become `logarchive`). An account is a match when its
//! normalized name is exactly one of:
//!
//! | field | normalized names | as written in landing zones |
//! | --- | --- | --- |
//! | `accounts.security_tooling` | `audit`, `security`, `securitytooling`, `securitytools` | Control Tower's "Audit", the SRA's "Security Tooling" |
//! | `accounts.log_archive` | `logarchive`, `logarchives`, `logs`, `log`, `logging` | "Log Archive" |
//!
//! Exactly one match is written as the value. None or several: the key is
//! written commented out, with one ready-to-uncomment line per candidate (ID,
//! name and email), and the file does not validate until one is chosen. The
//! candidates are the matches when there are several. When there is none,
//! they are every other ACTIVE account (at most [`MAX_CANDIDATES`]), the
//! likeliest first: names that merely *contain* `audit`, `security`,
//! `logarchive`, `logs` or `logging` (such as "acme-log-archive"), then for
//! Log Archive an account whose ID is in an organization trail's bucket name
//! (Control Tower's is `aws-controltower-logs-<Log Archive ID>-<Region>`).
//! Such hints never choose an account on their own: a key in the wrong
//! account is worse than one line to uncomment. Once Log Archive is found,
//! it is no Security Tooling candidate. Matching accounts that are not
//! ACTIVE are mentioned, never chosen.
//!
//! # How the trail is found
//!
//! Among the trails `DescribeTrails` returns for the Region: the
//! organization trails homed there. One: it is written as `trail.name`. None
//! or several: each is listed as a commented `name = ...` line. Trails that
//! are not organization trails are listed as comments. Control Tower's trail
//! (named `aws-controltower-BaselineCloudTrail`, or tagged by Control Tower)
//! is written when it is the one, with a comment and a warning that Control
//! Tower manages it and reverts changes, and that `plan` refuses it unless
//! `allow_control_tower = true`.
//!
//! # Files and exit status
//!
//! An existing file is never replaced without `--force`; that is checked
//! before any AWS call, and the file is created with `O_EXCL` so one that
//! appears meanwhile is not overwritten either.
//!
//! The file is always written once the organization could be read, so that
//! the candidates are in front of the user. Then it is validated like
//! `trailkey validate` does:
//! - it validates (every field was decided): exit 0; a summary and the next
//!   steps on stdout, warnings (Control Tower's trail, ...) on stderr;
//! - it does not (something could not be decided): the same summary on
//!   stdout, and an error naming the fields to edit and the file on stderr,
//!   exit 1. A pipeline running `trailkey init && trailkey plan` thus stops
//!   at init instead of failing later on an incomplete config.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anstyle::{AnsiColor, Style};

use crate::Status;
use crate::aws::{
    Account, AccountStatus, AwsError, CallerIdentity, FeatureSet, Management, Organization, Trail,
};
use crate::config::{
    self, DEFAULT_ALIAS, DEFAULT_CONFIG, DEFAULT_REGION, DEFAULT_SECURITY_TOOLING_ROLE, Region,
};
use crate::error::{Error, Painted};
use crate::output;
use crate::plan::CONTROL_TOWER_TRAIL;

/// At most this many accounts are listed as candidates for one field.
pub const MAX_CANDIDATES: usize = 20;

/// The role AWS Organizations creates in the accounts it creates.
const ORGANIZATIONS_ROLE: &str = "OrganizationAccountAccessRole";

/// The two landing-zone accounts init looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    SecurityTooling,
    LogArchive,
}

impl AccountKind {
    /// The config field under `[accounts]`.
    pub fn field(self) -> &'static str {
        match self {
            AccountKind::SecurityTooling => "security_tooling",
            AccountKind::LogArchive => "log_archive",
        }
    }

    /// Normalized names that are a match.
    fn exact(self) -> &'static [&'static str] {
        match self {
            AccountKind::SecurityTooling => {
                &["audit", "security", "securitytooling", "securitytools"]
            }
            AccountKind::LogArchive => &["logarchive", "logarchives", "logs", "log", "logging"],
        }
    }

    /// Parts of a normalized name that make it similar.
    fn similar(self) -> &'static [&'static str] {
        match self {
            AccountKind::SecurityTooling => &["audit", "security"],
            AccountKind::LogArchive => &["logarchive", "logs", "logging"],
        }
    }

    /// The names it matches, as a person writes them.
    fn examples(self) -> &'static str {
        match self {
            AccountKind::SecurityTooling => {
                "\"Audit\", \"Security Tooling\", \"SecurityTooling\", \"Security\""
            }
            AccountKind::LogArchive => "\"Log Archive\", \"LogArchive\", \"log-archive\", \"Logs\"",
        }
    }
}

/// How an account name relates to an [`AccountKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NameMatch {
    /// The normalized name is one of the kind's names: chosen when alone.
    Exact,
    /// The normalized name contains one of them: listed, never chosen.
    Similar,
}

/// Lower-cased letters and digits of `name`; everything else is dropped.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `name` names an account of `kind`.
pub fn name_match(kind: AccountKind, name: &str) -> Option<NameMatch> {
    let n = normalize(name);
    if kind.exact().contains(&n.as_str()) {
        Some(NameMatch::Exact)
    } else if kind.similar().iter().any(|s| n.contains(s)) {
        Some(NameMatch::Similar)
    } else {
        None
    }
}

/// What init found for one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<T> {
    /// Exactly one match: written as the value.
    One(T),
    /// Several matches: listed, none chosen.
    Several(Vec<T>),
    /// No match: the listed candidates are the other possibilities.
    None {
        candidates: Vec<T>,
        /// Candidates left out after [`MAX_CANDIDATES`].
        more: usize,
    },
}

impl<T> Found<T> {
    pub fn one(&self) -> Option<&T> {
        match self {
            Found::One(t) => Some(t),
            _ => None,
        }
    }
}

/// The trails of a [`Found`]: the one, the several, or none.
fn trail_list(found: &Found<TrailInfo>) -> Vec<&TrailInfo> {
    match found {
        Found::One(t) => vec![t],
        Found::Several(ts) => ts.iter().collect(),
        Found::None { .. } => Vec::new(),
    }
}

/// A trail and what init knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailInfo {
    pub trail: Trail,
    /// Why it is Control Tower's: its name, or a tag key.
    pub control_tower: Option<String>,
    /// `ListTags` failed (its code): Control Tower's tags could not be checked.
    pub tags_error: Option<String>,
}

/// Everything init learned, before it is rendered.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub region: Region,
    pub organization: Organization,
    pub security_tooling: Found<Candidate>,
    pub log_archive: Found<Candidate>,
    pub trail: Found<TrailInfo>,
    /// Trails in the Region that are not organization trails.
    pub other_trails: Vec<Trail>,
    /// Organization trails `DescribeTrails` returned with another home Region.
    pub elsewhere: Vec<Trail>,
    /// Accounts named like a landing-zone account but not ACTIVE.
    pub inactive: Vec<(AccountKind, Account)>,
    /// Looks like a Control Tower landing zone, and why.
    pub control_tower: Option<String>,
    pub warnings: Vec<String>,
}

/// Reads the organization and writes a config to `path`; prints what it
/// found and the next steps.
pub async fn run<M: Management>(
    mgmt: &M,
    region: &Region,
    path: &Path,
    force: bool,
) -> Result<Status, Error> {
    let written = write_config(mgmt, region, path, force).await?;
    output::out(&written.summary);
    for w in &written.discovery.warnings {
        output::err(&format!("{WARNING} {w}\n"));
    }
    written.outcome.map(|_| Status::Success)
}

/// A config file init wrote.
#[derive(Debug)]
pub struct Written {
    pub discovery: Discovery,
    pub text: String,
    /// For stdout: what was found and written, and the next steps.
    pub summary: String,
    /// `Ok` when the file validates; otherwise the error naming what to edit.
    pub outcome: Result<(), Error>,
}

/// [`run`] without printing.
pub async fn write_config<M: Management>(
    mgmt: &M,
    region: &Region,
    path: &Path,
    force: bool,
) -> Result<Written, Error> {
    check_target(path, force)?;
    let discovery = discover(mgmt, region).await?;
    let text = render(&discovery);
    write(path, &text, force)?;
    let validated = config::parse(path, text.as_bytes());
    let summary = summary(&discovery, path, validated.is_ok());
    let outcome = validated
        .map(drop)
        .map_err(|e| undecided(&discovery, path, &e));
    Ok(Written {
        discovery,
        text,
        summary,
        outcome,
    })
}

const YELLOW_BOLD: Style = AnsiColor::Yellow.on_default().bold();

const WARNING: Painted = Painted(YELLOW_BOLD, "warning:");

/// Refuses to replace a file without `--force`, and a missing directory,
/// before any AWS call.
fn check_target(path: &Path, force: bool) -> Result<(), Error> {
    if path.is_dir() {
        return Err(Error::usage(
            format!("{} is a directory", path.display()),
            "pass the config file to write with -c/--config, e.g. -c trailkey.toml",
        ));
    }
    if !force && (path.exists() || path.is_symlink()) {
        return Err(Error::usage(
            format!(
                "{} already exists; init does not overwrite it",
                path.display()
            ),
            "pass --force to replace it, or -c/--config to write another file",
        ));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent
        && !dir.is_dir()
    {
        return Err(Error::usage(
            format!(
                "cannot write {}: the directory {} does not exist",
                path.display(),
                dir.display()
            ),
            "create the directory first, or pass another path with -c/--config",
        ));
    }
    Ok(())
}

fn write(path: &Path, text: &str, force: bool) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
                "another process created it meanwhile: pass --force to replace it"
            } else {
                "check the path and its permissions, or pass another file with -c/--config"
            };
            Error::usage(format!("cannot write {}: {e}", path.display()), hint)
        })
}

/// Reads the organization, its accounts and the Region's trails.
pub async fn discover<M: Management>(mgmt: &M, region: &Region) -> Result<Discovery, Error> {
    let (identity, organization, accounts, trails) = tokio::join!(
        mgmt.caller_identity(),
        mgmt.describe_organization(),
        mgmt.list_accounts(),
        mgmt.describe_trails(),
    );
    // Who we are first: a member account's ListAccounts error says less.
    let caller = identity
        .map_err(|e| Error::aws("reading the caller identity (sts:GetCallerIdentity)", e))?;
    let organization = organization.map_err(|e| {
        Error::aws(
            "reading the organization (organizations:DescribeOrganization)",
            e,
        )
    })?;
    check_caller(region, &caller, &organization)?;
    let accounts = accounts.map_err(|e| {
        Error::aws(
            "listing the organization's accounts (organizations:ListAccounts)",
            e,
        )
    })?;
    let trails = trails.map_err(|e| {
        Error::aws(
            format!("listing the trails in {region} (cloudtrail:DescribeTrails)"),
            e,
        )
    })?;

    let mut warnings = Vec::new();
    if organization.feature_set != FeatureSet::All {
        warnings.push(format!(
            "organization {} has feature set {:?}: organization trails need all features; enable them in AWS Organizations (Settings)",
            organization.id, organization.feature_set.as_str()
        ));
    }

    let (trail, other_trails, elsewhere) = pick_trail(mgmt, region, trails).await;
    if let Some(t) = trail.one()
        && let Some(why) = &t.control_tower
    {
        warnings.push(format!(
            "trail {} is managed by AWS Control Tower ({why}): Control Tower reverts changes made to it, and `trailkey plan` refuses it unless allow_control_tower = true is set under [trail]. The supported way is the landing zone's own KMS key setting (Control Tower console, Landing zone settings).",
            t.trail.name
        ));
    }
    let buckets: Vec<String> = trail_list(&trail)
        .iter()
        .map(|t| t.trail.s3_bucket.clone())
        .collect();

    let members: Vec<&Account> = accounts
        .iter()
        .filter(|a| a.id != organization.management_account)
        .collect();
    let id = |f: &Found<Candidate>| f.one().map(|c| c.account.id.clone());
    let security_tooling = pick_account(AccountKind::SecurityTooling, &members, None, &buckets);
    let log_archive = pick_account(
        AccountKind::LogArchive,
        &members,
        id(&security_tooling).as_deref(),
        &buckets,
    );
    // Once Log Archive is known, it is no Security Tooling candidate.
    let security_tooling = match security_tooling {
        Found::One(a) => Found::One(a),
        _ => pick_account(
            AccountKind::SecurityTooling,
            &members,
            id(&log_archive).as_deref(),
            &buckets,
        ),
    };
    let mut inactive = Vec::new();
    for kind in [AccountKind::SecurityTooling, AccountKind::LogArchive] {
        for a in &members {
            if a.status != AccountStatus::Active
                && name_match(kind, &a.name) == Some(NameMatch::Exact)
            {
                inactive.push((kind, (*a).clone()));
            }
        }
    }

    let control_tower = trail_list(&trail)
        .into_iter()
        .find(|t| t.control_tower.is_some())
        .map(|t| format!("trail {}", t.trail.name))
        .or_else(|| {
            members
                .iter()
                .find(|a| a.status == AccountStatus::Active && normalize(&a.name) == "audit")
                .map(|a| format!("an account named {:?}", a.name))
        });

    Ok(Discovery {
        region: region.clone(),
        organization,
        security_tooling,
        log_archive,
        trail,
        other_trails,
        elsewhere,
        inactive,
        control_tower,
        warnings,
    })
}

fn check_caller(region: &Region, caller: &CallerIdentity, org: &Organization) -> Result<(), Error> {
    let partition = caller.partition().unwrap_or_default();
    if partition != region.partition() {
        return Err(Error::check(
            format!(
                "the credentials are for partition {partition:?}, but Region {region} is in {:?}",
                region.partition()
            ),
            "pass --region with a Region of the credentials' partition, or use credentials for that partition",
        ));
    }
    if caller.account != org.management_account {
        return Err(Error::check(
            format!(
                "init runs as {} in account {}, which is not the management account {} of organization {}",
                caller.arn, caller.account, org.management_account, org.id
            ),
            "run `trailkey init` with credentials of the management account (e.g. --profile NAME): only it can list the organization's accounts and manage its organization trail",
        ));
    }
    Ok(())
}

/// An account init proposes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub account: Account,
    pub name_match: Option<NameMatch>,
    /// Log Archive only: an organization trail's bucket whose name carries
    /// the account ID (Control Tower: `aws-controltower-logs-<ID>-<Region>`).
    pub bucket: Option<String>,
}

/// Chooses the account of `kind` among the members, leaving out `taken`.
/// Only an exact name match among ACTIVE accounts is chosen; otherwise
/// every other ACTIVE account is a candidate, the likeliest first.
fn pick_account(
    kind: AccountKind,
    members: &[&Account],
    taken: Option<&str>,
    buckets: &[String],
) -> Found<Candidate> {
    let mut candidates: Vec<Candidate> = members
        .iter()
        .filter(|a| a.status == AccountStatus::Active && Some(a.id.as_str()) != taken)
        .map(|a| Candidate {
            account: (*a).clone(),
            name_match: name_match(kind, &a.name),
            bucket: (kind == AccountKind::LogArchive)
                .then(|| buckets.iter().find(|b| b.contains(&a.id)).cloned())
                .flatten(),
        })
        .collect();
    // Exact names first, then similar names, then a bucket named after it.
    candidates.sort_by_cached_key(|c| {
        (
            c.name_match.map_or(2, |m| m as u8),
            c.bucket.is_none(),
            normalize(&c.account.name),
            c.account.id.clone(),
        )
    });
    let exact = candidates
        .iter()
        .take_while(|c| c.name_match == Some(NameMatch::Exact))
        .count();
    match exact {
        1 => Found::One(candidates.swap_remove(0)),
        2.. => {
            candidates.truncate(exact);
            Found::Several(candidates)
        }
        0 => {
            let more = candidates.len().saturating_sub(MAX_CANDIDATES);
            candidates.truncate(MAX_CANDIDATES);
            Found::None { candidates, more }
        }
    }
}

/// Chooses the organization trail homed in `region`; returns it, the other
/// trails there, and organization trails homed elsewhere.
async fn pick_trail<M: Management>(
    mgmt: &M,
    region: &Region,
    trails: Vec<Trail>,
) -> (Found<TrailInfo>, Vec<Trail>, Vec<Trail>) {
    let mut org = Vec::new();
    let mut other = Vec::new();
    let mut elsewhere = Vec::new();
    for t in trails {
        if t.home_region != region.as_str() {
            if t.is_organization_trail {
                elsewhere.push(t);
            }
        } else if t.is_organization_trail {
            org.push(t);
        } else {
            other.push(t);
        }
    }
    for v in [&mut org, &mut other, &mut elsewhere] {
        v.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let tags = futures_util::future::join_all(org.iter().map(|t| mgmt.trail_tags(&t.arn))).await;
    let mut infos: Vec<TrailInfo> = org
        .into_iter()
        .zip(tags)
        .map(|(trail, tags)| trail_info(trail, tags))
        .collect();
    let found = match infos.len() {
        0 => Found::None {
            candidates: Vec::new(),
            more: 0,
        },
        1 => Found::One(infos.remove(0)),
        _ => Found::Several(infos),
    };
    (found, other, elsewhere)
}

fn trail_info(trail: Trail, tags: Result<BTreeMap<String, String>, AwsError>) -> TrailInfo {
    let (tag, tags_error) = match &tags {
        Ok(tags) => (crate::plan::control_tower_tag(tags).cloned(), None),
        Err(e) => (None, Some(e.code.clone())),
    };
    let control_tower = if trail.name == CONTROL_TOWER_TRAIL {
        Some("recognised by its name".to_owned())
    } else {
        tag.map(|k| format!("recognised by its tag {k:?}"))
    };
    TrailInfo {
        trail,
        control_tower,
        tags_error,
    }
}

/// A TOML basic string (`"..."`), also used for names in comments.
fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04X}", u32::from(c));
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Text from AWS made safe for a one-line comment.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Width of the comment paragraphs.
const WIDTH: usize = 80;

/// Writes `text` as `# ` comment lines of at most [`WIDTH`] columns (a
/// longer word keeps its own line).
fn para(o: &mut String, text: &str) {
    // Words, a `quoted command` kept as one.
    let mut words: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        match words.last_mut() {
            Some(last) if last.matches('`').count() % 2 == 1 => {
                last.push(' ');
                last.push_str(w);
            }
            _ => words.push(w.to_owned()),
        }
    }
    let mut line = String::from("#");
    for word in &words {
        if line.len() > 1 && line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(o, "{line}");
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    let _ = writeln!(o, "{line}");
}

fn describe_account(a: &Account) -> String {
    format!("{} <{}>", quote(&clean(&a.name)), clean(&a.email))
}

fn describe_trail(t: &Trail) -> String {
    let encryption = match &t.kms_key_id {
        Some(k) => format!("encrypted with {}", clean(k)),
        None => "not encrypted with KMS".to_owned(),
    };
    format!(
        "bucket {}, {}, {encryption}",
        clean(&t.s3_bucket),
        if t.is_multi_region_trail {
            "multi-Region"
        } else {
            "single-Region"
        }
    )
}

/// The config text, every setting commented like config/trailkey.example.toml.
pub fn render(d: &Discovery) -> String {
    let mut o = String::new();
    let partition = d.region.partition();
    let management = &d.organization.management_account;
    para(
        &mut o,
        "trailkey configuration: encrypt the organization CloudTrail trail with a customer-managed KMS key owned by the Security Tooling account.",
    );
    para(
        &mut o,
        &format!(
            "Written by `trailkey init` from organization {} (management account {management}). Check it offline with `trailkey validate`, then run `trailkey plan`.",
            d.organization.id
        ),
    );
    let open = open_fields(d);
    if !open.is_empty() {
        o.push_str("#\n");
        para(
            &mut o,
            &format!(
                "TO DO: init could not decide {}. For each, uncomment one of the candidate lines below (or write the right value), then run `trailkey validate`.",
                open.join(" and ")
            ),
        );
    }
    let _ = writeln!(
        o,
        "
# The trail's home Region: the key is created here. Default \"{DEFAULT_REGION}\".
region = {}

# Alias of the key (an \"alias/\" prefix is accepted). Must not start with \"aws/\".
# Default \"{DEFAULT_ALIAS}\".
ct_key_alias = {}

[accounts]",
        quote(d.region.as_str()),
        quote(DEFAULT_ALIAS)
    );
    render_account(&mut o, AccountKind::SecurityTooling, &d.security_tooling, d);
    render_account(&mut o, AccountKind::LogArchive, &d.log_archive, d);
    let _ = writeln!(
        o,
        "# Management account, read from organizations:DescribeOrganization. trailkey
# stops if the organization's management account is ever another one.
management = {}

[roles]
# Role assumed in the Security Tooling account: a role name or a full role ARN.
# Default \"{DEFAULT_SECURITY_TOOLING_ROLE}\" (Control Tower landing zones); accounts
# created by AWS Organizations have \"{ORGANIZATIONS_ROLE}\" instead.",
        quote(management)
    );
    match &d.control_tower {
        Some(why) => para(
            &mut o,
            &format!(
                "This looks like a Control Tower landing zone ({}): keep the default.",
                clean(why)
            ),
        ),
        None => para(
            &mut o,
            &format!(
                "init saw no sign of Control Tower (no account named \"Audit\", no trail {CONTROL_TOWER_TRAIL}): if the accounts were not enrolled in Control Tower, use the second line."
            ),
        ),
    }
    let _ = writeln!(
        o,
        "# security_tooling = \"{DEFAULT_SECURITY_TOOLING_ROLE}\"
# security_tooling = \"{ORGANIZATIONS_ROLE}\"
# Optional role (full ARN) in the management account for the CloudTrail,
# Organizations and STS calls. Default: the caller's own credentials.
# management = \"arn:{partition}:iam::{management}:role/TrailkeyRunner\"
"
    );
    render_trail(&mut o, d);
    o.push_str(
        "
[key]
# Enable automatic key rotation. Default true; false leaves rotation as it is.
# rotation = true
# Extra tags for the key. Every key trailkey creates also carries
# ManagedBy = \"trailkey\" and trailkey:alias = \"<alias name>\".
# tags = { CostCenter = \"security\" }
",
    );
    o
}

fn render_account(o: &mut String, kind: AccountKind, found: &Found<Candidate>, d: &Discovery) {
    let field = kind.field();
    let (title, owns) = match kind {
        AccountKind::SecurityTooling => (
            "Security Tooling (Control Tower: \"Audit\") account: owns the key. Required.",
            "should own the key",
        ),
        AccountKind::LogArchive => (
            "Log Archive account: owns the log bucket; may decrypt the logs. Required.",
            "owns the log bucket",
        ),
    };
    let _ = writeln!(o, "# {title}");
    match found {
        Found::One(c) => {
            para(
                o,
                &format!("Found by its name: {}.", describe_account(&c.account)),
            );
            let _ = writeln!(o, "{field} = {}", quote(&c.account.id));
        }
        Found::Several(list) => {
            para(
                o,
                &format!(
                    "init found {} ACTIVE accounts named like it ({}) and chose none. Uncomment the one that {owns}:",
                    list.len(),
                    kind.examples()
                ),
            );
            for c in list {
                let _ = writeln!(o, "{}", candidate_line(kind, c));
            }
        }
        Found::None { candidates, .. } if candidates.is_empty() => {
            para(
                o,
                &format!(
                    "init found no ACTIVE account named like it ({}), and the organization has no other ACTIVE account: create it first (Control Tower creates \"Audit\" and \"Log Archive\"), then write its ID here:",
                    kind.examples()
                ),
            );
            let _ = writeln!(o, "# {field} = \"<12-digit account ID>\"");
        }
        Found::None { candidates, more } => {
            para(
                o,
                &format!(
                    "init found no ACTIVE account named like it ({}). Candidates, the likeliest first; uncomment the one that {owns}:",
                    kind.examples()
                ),
            );
            for c in candidates {
                let _ = writeln!(o, "{}", candidate_line(kind, c));
            }
            if *more > 0 {
                let _ = writeln!(
                    o,
                    "# ... and {more} more: `aws organizations list-accounts`"
                );
            }
        }
    }
    for (k, a) in &d.inactive {
        if *k == kind {
            para(
                o,
                &format!(
                    "Not considered: {} {} is {}.",
                    a.id,
                    describe_account(a),
                    clean(a.status.as_str())
                ),
            );
        }
    }
}

/// `# field = "ID"  # "Name" <email>`, and why it is a candidate.
fn candidate_line(kind: AccountKind, c: &Candidate) -> String {
    let mut line = format!(
        "# {} = {}  # {}",
        kind.field(),
        quote(&c.account.id),
        describe_account(&c.account)
    );
    if c.name_match == Some(NameMatch::Similar) {
        line.push_str(", similar name");
    }
    if let Some(bucket) = &c.bucket {
        let _ = write!(
            line,
            ", the trail's bucket {} carries this ID",
            clean(bucket)
        );
    }
    line
}

fn render_trail(o: &mut String, d: &Discovery) {
    let region = &d.region;
    o.push_str("[trail]\n# Name or ARN of the organization trail. Required.\n");
    let info = |t: &TrailInfo| {
        let mut s = describe_trail(&t.trail);
        if let Some(code) = &t.tags_error {
            let _ = write!(s, "; its tags could not be read ({})", clean(code));
        }
        s
    };
    match &d.trail {
        Found::One(t) => {
            para(
                o,
                &format!(
                    "Found: the only organization trail homed in {region} ({}).",
                    info(t)
                ),
            );
            control_tower_comment(o, t);
            let _ = writeln!(o, "name = {}", quote(&t.trail.name));
            if t.control_tower.is_some() {
                let _ = writeln!(o, "# allow_control_tower = true");
            }
        }
        Found::Several(list) => {
            para(
                o,
                &format!(
                    "init found {} organization trails homed in {region} and chose none. Uncomment the one whose logs the key should encrypt:",
                    list.len()
                ),
            );
            for t in list {
                let _ = writeln!(o, "# name = {}  # {}", quote(&t.trail.name), info(t));
            }
            for t in list {
                control_tower_comment(o, t);
            }
        }
        Found::None { .. } => {
            para(
                o,
                &format!(
                    "init found no organization trail homed in {region}. Create one (CloudTrail console, or `aws cloudtrail create-trail --is-organization-trail`), or run `trailkey init --region <home Region>` if it lives in another Region; then:"
                ),
            );
            let _ = writeln!(o, "# name = \"<organization trail name>\"");
        }
    }
    if !d.elsewhere.is_empty() {
        let _ = writeln!(o, "# Organization trails homed in other Regions:");
        for t in &d.elsewhere {
            let r = clean(&t.home_region);
            let _ = writeln!(
                o,
                "#   {} in {r} (run `trailkey init --region {r}` for it)",
                quote(&t.name)
            );
        }
    }
    if !d.other_trails.is_empty() {
        para(
            o,
            &format!(
                "Trails in {region} that are not organization trails (trailkey encrypts one only with organization_trail = false under [trail]):"
            ),
        );
        for t in &d.other_trails {
            let _ = writeln!(o, "#   {}: {}", quote(&t.name), describe_trail(t));
        }
    }
}

fn control_tower_comment(o: &mut String, t: &TrailInfo) {
    if let Some(why) = &t.control_tower {
        para(
            o,
            &format!(
                "{} is managed by AWS Control Tower ({}): Control Tower reverts changes made to it outside Control Tower. Prefer the landing zone's own KMS key setting (Control Tower console, Landing zone settings). `trailkey plan` refuses this trail unless allow_control_tower = true.",
                clean(&t.trail.name),
                clean(why)
            ),
        );
    }
}

/// The fields init left for the user, as config paths.
fn open_fields(d: &Discovery) -> Vec<&'static str> {
    let mut open = Vec::new();
    if d.security_tooling.one().is_none() {
        open.push("accounts.security_tooling");
    }
    if d.log_archive.one().is_none() {
        open.push("accounts.log_archive");
    }
    if d.trail.one().is_none() {
        open.push("trail.name");
    }
    open
}

/// Why an account field is open, in a few words.
fn account_reason(found: &Found<Candidate>) -> String {
    match found {
        Found::One(_) => String::new(),
        Found::Several(list) => format!(
            "{} ACTIVE accounts are named like it; none was chosen",
            list.len()
        ),
        Found::None { candidates, .. } if candidates.is_empty() => {
            "no ACTIVE account is named like it, and there is no other".to_owned()
        }
        Found::None { candidates, more } => format!(
            "no ACTIVE account is named like it; {} listed in the file",
            plural(candidates.len() + more, "candidate")
        ),
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// ` -c PATH`, unless `path` is the default.
fn config_arg(path: &Path) -> String {
    if path == Path::new(DEFAULT_CONFIG) {
        String::new()
    } else {
        format!(" -c {}", path.display())
    }
}

/// What init found and wrote, and what to do next (stdout).
fn summary(d: &Discovery, path: &Path, valid: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Organization {}: management account {}, Region {}",
        d.organization.id, d.organization.management_account, d.region
    );
    for (kind, found) in [
        (AccountKind::SecurityTooling, &d.security_tooling),
        (AccountKind::LogArchive, &d.log_archive),
    ] {
        let value = match found {
            Found::One(c) => format!("{}  {}", c.account.id, describe_account(&c.account)),
            other => format!("not decided: {}", account_reason(other)),
        };
        let _ = writeln!(o, "  {:<17} {value}", kind.field());
    }
    let trail = match &d.trail {
        Found::One(t) => format!(
            "{}  organization trail, {}",
            clean(&t.trail.name),
            describe_trail(&t.trail)
        ),
        Found::Several(list) => format!(
            "not decided: {} organization trails are homed in {}; none was chosen",
            list.len(),
            d.region
        ),
        Found::None { .. } => format!(
            "not decided: no organization trail is homed in {}",
            d.region
        ),
    };
    let _ = writeln!(o, "  {:<17} {trail}", "trail");
    let role = match &d.control_tower {
        Some(_) => {
            format!("{DEFAULT_SECURITY_TOOLING_ROLE} (default; a Control Tower landing zone)")
        }
        None => format!(
            "{DEFAULT_SECURITY_TOOLING_ROLE} (default; no sign of Control Tower: see [roles])"
        ),
    };
    let _ = writeln!(o, "  {:<17} {role}", "role");

    let c = config_arg(path);
    let file = path.display();
    if valid {
        let _ = writeln!(
            o,
            "\nWrote {file}. Next:\n  trailkey{c} validate   check it offline\n  trailkey{c} plan       see what apply would change (read-only)\n  trailkey{c} apply"
        );
    } else {
        let open = open_fields(d);
        let _ = writeln!(
            o,
            "\nWrote {file}, with {} to fill in. Next:\n  edit {file}: uncomment one candidate line for {}\n  trailkey{c} validate\n  trailkey{c} plan",
            plural(open.len(), "field"),
            open.join(", ")
        );
    }
    o
}

/// The error for a written file that does not validate yet.
fn undecided(d: &Discovery, path: &Path, e: &Error) -> Error {
    let open = open_fields(d);
    let file = path.display();
    if open.is_empty() {
        // Every field was found, yet the file is invalid: say why.
        return Error::check(
            format!(
                "init wrote {file}, but it does not validate:\n{}",
                e.render().trim_end()
            ),
            format!(
                "edit {file} and run `trailkey{} validate`",
                config_arg(path)
            ),
        );
    }
    Error::check(
        format!("init could not decide {}: edit {file}", open.join(", ")),
        format!(
            "uncomment one of the candidate lines init wrote for each (or write the right value), then run `trailkey{} validate`",
            config_arg(path)
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;
    use crate::aws::fake::FakeCloud;

    const MANAGEMENT: &str = "333333333333";

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    fn account(id: &str, name: &str) -> Account {
        Account {
            id: id.to_owned(),
            name: name.to_owned(),
            email: format!("{}@example.com", normalize(name)),
            status: crate::aws::AccountStatus::from("ACTIVE"),
        }
    }

    fn region() -> Region {
        Region::parse("us-east-1").unwrap()
    }

    /// An organization with one organization trail and these member accounts.
    fn cloud(accounts: &[(&str, &str)]) -> FakeCloud {
        let fake = FakeCloud::new("us-east-1", MANAGEMENT, "111111111111", "org-trail");
        let mut s = fake.state.borrow_mut();
        s.accounts.push(account(MANAGEMENT, "Management"));
        s.accounts
            .extend(accounts.iter().map(|(id, name)| account(id, name)));
        drop(s);
        fake
    }

    fn add_trail(fake: &FakeCloud, name: &str, region: &str, org: bool) {
        let arn = format!("arn:aws:cloudtrail:{region}:{MANAGEMENT}:trail/{name}");
        fake.state.borrow_mut().trails.insert(
            arn.clone(),
            Trail {
                name: name.to_owned(),
                arn,
                home_region: region.to_owned(),
                kms_key_id: None,
                is_organization_trail: org,
                is_multi_region_trail: true,
                s3_bucket: "bucket".to_owned(),
            },
        );
    }

    /// Runs init quietly into a temp dir: (the outcome, the file, the dir).
    fn init(fake: &FakeCloud) -> (Result<Written, Error>, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trailkey.toml");
        let result = block_on(write_config(fake, &region(), &path, false));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Ok(w) = &result {
            assert_eq!(w.text, text);
        }
        (result, text, dir)
    }

    /// The comments as one line, independent of where they wrap.
    fn prose(text: &str) -> String {
        text.lines()
            .filter_map(|l| l.strip_prefix('#'))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn decided(result: &Result<Written, Error>) -> bool {
        matches!(
            result,
            Ok(Written {
                outcome: Ok(()),
                ..
            })
        )
    }

    fn undecided_message(result: Result<Written, Error>) -> String {
        result.unwrap().outcome.unwrap_err().render()
    }

    #[test]
    fn names_are_normalized_and_matched_exactly() {
        use AccountKind::*;
        for name in [
            "Audit",
            "audit",
            "Security Tooling",
            "SecurityTooling",
            "security-tooling",
            "SECURITY_TOOLING",
            "Security",
            "Security Tools",
        ] {
            assert_eq!(
                name_match(SecurityTooling, name),
                Some(NameMatch::Exact),
                "{name}"
            );
            assert_eq!(name_match(LogArchive, name), None, "{name}");
        }
        for name in [
            "Log Archive",
            "LogArchive",
            "log-archive",
            "log_archive",
            "Logs",
            "Logging",
        ] {
            assert_eq!(
                name_match(LogArchive, name),
                Some(NameMatch::Exact),
                "{name}"
            );
            assert_eq!(name_match(SecurityTooling, name), None, "{name}");
        }
        for (kind, name) in [
            (SecurityTooling, "acme-audit"),
            (SecurityTooling, "Security Sandbox"),
            (LogArchive, "acme-log-archive"),
            (LogArchive, "Central Logs"),
        ] {
            assert_eq!(name_match(kind, name), Some(NameMatch::Similar), "{name}");
        }
        for name in ["Dev", "Prod", "Shared Services", "Network", "Catalog"] {
            assert_eq!(name_match(SecurityTooling, name), None, "{name}");
            assert_eq!(name_match(LogArchive, name), None, "{name}");
        }
    }

    #[test]
    fn control_tower_names_are_found_and_the_config_validates() {
        let fake = cloud(&[
            ("111111111111", "Audit"),
            ("222222222222", "Log Archive"),
            ("444444444444", "Dev"),
        ]);
        let (result, text, dir) = init(&fake);
        assert!(decided(&result), "{result:?}");
        let d = config::parse(&dir.path().join("trailkey.toml"), text.as_bytes())
            .unwrap_or_else(|e| panic!("{}\n{text}", e.render()));
        assert_eq!(d.security_tooling.as_str(), "111111111111");
        assert_eq!(d.log_archive.as_str(), "222222222222");
        assert_eq!(d.management.as_ref().unwrap().as_str(), MANAGEMENT);
        assert_eq!(d.trail.as_api_name(), "org-trail");
        assert!(
            text.contains("looks like a Control Tower landing zone"),
            "{text}"
        );
        assert!(!text.contains("444444444444"), "Dev is not listed: {text}");
        assert_eq!(
            fake.calls(),
            [
                "GetCallerIdentity",
                "DescribeOrganization",
                "ListAccounts",
                "DescribeTrails",
                "ListTags"
            ],
            "reads only"
        );
    }

    #[test]
    fn several_matches_are_listed_and_none_is_chosen() {
        let fake = cloud(&[
            ("111111111111", "Audit"),
            ("555555555555", "Security Tooling"),
            ("222222222222", "Log Archive"),
        ]);
        let (result, text, _dir) = init(&fake);
        let err = undecided_message(result);
        assert!(
            err.contains("init could not decide accounts.security_tooling: edit "),
            "{err}"
        );
        assert!(
            text.contains("# security_tooling = \"111111111111\"  # \"Audit\" <audit@example.com>"),
            "{text}"
        );
        assert!(
            text.contains("# security_tooling = \"555555555555\"  # \"Security Tooling\""),
            "{text}"
        );
        assert!(text.contains("\nlog_archive = \"222222222222\""), "{text}");
        let e = config::parse(Path::new("t.toml"), text.as_bytes()).unwrap_err();
        assert!(
            e.render().contains("accounts.security_tooling is required"),
            "{}",
            e.render()
        );
    }

    #[test]
    fn without_a_match_every_account_is_a_candidate_the_likeliest_first() {
        let fake = cloud(&[
            ("444444444444", "Dev"),
            ("666666666666", "acme-log-archive"),
            ("777777777777", "Prod"),
        ]);
        fake.state.borrow_mut().trails.values_mut().for_each(|t| {
            t.s3_bucket = "aws-controltower-logs-777777777777-us-east-1".to_owned();
        });
        let (result, text, _dir) = init(&fake);
        assert!(!decided(&result));
        let lines = |field: &str| -> Vec<&str> {
            text.lines()
                .filter(|l| {
                    l.strip_prefix(&format!("# {field} = \""))
                        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
                })
                .collect()
        };
        assert_eq!(
            lines("log_archive"),
            [
                "# log_archive = \"666666666666\"  # \"acme-log-archive\" <acmelogarchive@example.com>, similar name",
                "# log_archive = \"777777777777\"  # \"Prod\" <prod@example.com>, the trail's bucket aws-controltower-logs-777777777777-us-east-1 carries this ID",
                "# log_archive = \"444444444444\"  # \"Dev\" <dev@example.com>",
            ],
            "{text}"
        );
        assert_eq!(
            lines("security_tooling"),
            [
                "# security_tooling = \"666666666666\"  # \"acme-log-archive\" <acmelogarchive@example.com>",
                "# security_tooling = \"444444444444\"  # \"Dev\" <dev@example.com>",
                "# security_tooling = \"777777777777\"  # \"Prod\" <prod@example.com>",
            ],
            "{text}"
        );
        assert!(!text.contains(&format!("= \"{MANAGEMENT}\"  #")), "{text}");
        for line in text.lines() {
            assert!(
                line.len() <= WIDTH || line.contains(" = ") || !line.starts_with('#'),
                "comment over {WIDTH} columns: {line}"
            );
        }
    }

    #[test]
    fn a_found_log_archive_is_no_security_tooling_candidate() {
        let fake = cloud(&[("444444444444", "Dev"), ("222222222222", "Log Archive")]);
        let (result, text, _dir) = init(&fake);
        assert!(!decided(&result));
        assert!(text.contains("\nlog_archive = \"222222222222\""), "{text}");
        assert!(
            text.contains("# security_tooling = \"444444444444\""),
            "{text}"
        );
        assert!(
            !text.contains("# security_tooling = \"222222222222\""),
            "{text}"
        );
    }

    #[test]
    fn more_than_max_candidates_are_cut_with_a_pointer_to_the_cli() {
        let ids: Vec<(String, String)> = (0..MAX_CANDIDATES + 5)
            .map(|i| {
                (
                    format!("{:012}", 500_000_000_000_u64 + i as u64),
                    format!("Workload {i:02}"),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = ids.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let fake = cloud(&refs);
        let (_, text, _dir) = init(&fake);
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("# security_tooling = \"5"))
                .count(),
            MAX_CANDIDATES
        );
        assert!(
            text.contains("# ... and 5 more: `aws organizations list-accounts`"),
            "{text}"
        );
    }

    #[test]
    fn only_active_accounts_are_chosen() {
        let fake = cloud(&[
            ("111111111111", "Audit"),
            ("555555555555", "Security Tooling"),
            ("222222222222", "Log Archive"),
        ]);
        fake.state.borrow_mut().accounts[2].status = crate::aws::AccountStatus::from("SUSPENDED");
        let (result, text, _dir) = init(&fake);
        assert!(decided(&result), "{result:?}\n{text}");
        assert!(
            text.contains("\nsecurity_tooling = \"111111111111\""),
            "{text}"
        );
        assert!(
            prose(&text).contains("Not considered: 555555555555 \"Security Tooling\""),
            "{text}"
        );
        assert!(text.contains("is SUSPENDED."), "{text}");
    }

    #[test]
    fn several_organization_trails_are_listed_with_the_other_trails() {
        let fake = cloud(&[("111111111111", "Audit"), ("222222222222", "Log Archive")]);
        add_trail(&fake, "second-org-trail", "us-east-1", true);
        add_trail(&fake, "local-trail", "us-east-1", false);
        add_trail(&fake, "eu-org-trail", "eu-west-1", true);
        let (result, text, _dir) = init(&fake);
        let err = undecided_message(result);
        assert!(err.contains("could not decide trail.name"), "{err}");
        assert!(text.contains("# name = \"org-trail\"  # bucket"), "{text}");
        assert!(
            text.contains("# name = \"second-org-trail\"  # bucket"),
            "{text}"
        );
        assert!(text.contains("#   \"local-trail\": bucket"), "{text}");
        assert!(!text.contains("name = \"local-trail\""), "{text}");
        assert!(
            text.contains("\"eu-org-trail\" in eu-west-1 (run `trailkey init --region eu-west-1`"),
            "{text}"
        );
    }

    #[test]
    fn control_tower_trail_is_written_with_a_warning_comment() {
        let fake = FakeCloud::new("us-east-1", MANAGEMENT, "111111111111", CONTROL_TOWER_TRAIL);
        fake.state.borrow_mut().accounts = vec![
            account(MANAGEMENT, "Management"),
            account("111111111111", "Audit"),
            account("222222222222", "Log Archive"),
        ];
        let (result, text, _dir) = init(&fake);
        assert!(decided(&result), "{result:?}");
        assert!(
            prose(&text).contains(&format!(
                "{CONTROL_TOWER_TRAIL} is managed by AWS Control Tower (recognised by its name): Control Tower reverts changes"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "name = \"{CONTROL_TOWER_TRAIL}\"\n# allow_control_tower = true"
            )),
            "{text}"
        );
    }

    #[test]
    fn a_trail_tagged_by_control_tower_is_recognised() {
        let fake = cloud(&[("111111111111", "Audit"), ("222222222222", "Log Archive")]);
        let arn = format!("arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/org-trail");
        fake.state.borrow_mut().trail_tags.insert(
            arn,
            BTreeMap::from([("aws-control-tower".to_owned(), "managed".to_owned())]),
        );
        let found = block_on(discover(&fake, &region())).unwrap();
        let t = found.trail.one().expect("one trail");
        assert_eq!(
            t.control_tower.as_deref(),
            Some("recognised by its tag \"aws-control-tower\"")
        );
        assert_eq!(found.warnings.len(), 1, "{:?}", found.warnings);
    }

    #[test]
    fn not_in_an_organization_or_not_the_management_account_fails_and_writes_nothing() {
        let fake = cloud(&[("111111111111", "Audit")]);
        fake.state.borrow_mut().organization = None;
        let (result, text, _dir) = init(&fake);
        let err = result.unwrap_err().render();
        assert!(err.contains("organizations:DescribeOrganization"), "{err}");
        assert!(err.contains("not in an organization"), "{err}");
        assert!(text.is_empty(), "no file");

        let fake = cloud(&[("111111111111", "Audit")]);
        fake.state.borrow_mut().identity = Some(CallerIdentity {
            account: "111111111111".to_owned(),
            arn: "arn:aws:iam::111111111111:user/dev".to_owned(),
        });
        fake.fail_next("ListAccounts", "AccessDeniedException", "no");
        let (result, text, _dir) = init(&fake);
        let err = result.unwrap_err().render();
        assert!(
            err.contains("which is not the management account 333333333333"),
            "{err}"
        );
        assert!(
            err.contains("hint: run `trailkey init` with credentials of the management account"),
            "{err}"
        );
        assert!(text.is_empty(), "no file");
    }

    #[test]
    fn an_existing_file_is_kept_without_force_and_no_call_is_made() {
        let fake = cloud(&[("111111111111", "Audit"), ("222222222222", "Log Archive")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trailkey.toml");
        std::fs::write(&path, "# mine\n").unwrap();
        let err = block_on(write_config(&fake, &region(), &path, false)).unwrap_err();
        assert!(err.render().contains("already exists"), "{}", err.render());
        assert!(err.render().contains("--force"), "{}", err.render());
        assert!(fake.calls().is_empty(), "{:?}", fake.calls());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");

        let written = block_on(write_config(&fake, &region(), &path, true)).unwrap();
        assert!(written.outcome.is_ok());
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("security_tooling = \"111111111111\"")
        );
    }

    #[test]
    fn a_missing_directory_is_reported_before_any_call() {
        let fake = cloud(&[]);
        let err = block_on(write_config(
            &fake,
            &region(),
            Path::new("/nonexistent/trailkey-init/trailkey.toml"),
            false,
        ))
        .unwrap_err();
        assert!(err.render().contains("does not exist"), "{}", err.render());
        assert!(fake.calls().is_empty());
    }

    #[test]
    fn account_names_cannot_break_out_of_a_comment() {
        let fake = cloud(&[
            ("555555555555", "Security\nname = \"x\""),
            ("222222222222", "Log Archive"),
        ]);
        // "Security\nname..." normalizes to securitynamex: similar, so listed.
        let (result, text, _dir) = init(&fake);
        assert!(!decided(&result));
        assert!(
            text.contains("# security_tooling = \"555555555555\"  # \"Security name = \\\"x\\\"\""),
            "{text}"
        );
        assert!(!text.contains("\nname = \"x\""), "{text}");
    }
}
