//! `trailkey init`: read the organization and write a commented config.
//!
//! # What it reads
//!
//! `sts:GetCallerIdentity`, `organizations:DescribeOrganization`,
//! `organizations:ListAccounts` and `cloudtrail:DescribeTrails`, all at once
//! (`tokio::join!`), then `cloudtrail:ListTags` of the organization trails
//! homed in the Region (to recognise Control Tower's trail by its tags, as
//! `plan` does), and, when one of them is Control Tower's,
//! `controltower:ListLandingZones`. Nothing is written to AWS. The caller
//! must be in the management account of an organization, or be CloudTrail's
//! delegated administrator (`organizations:ListDelegatedAdministrators`,
//! asked only of a caller outside the management account); anything else is
//! an error, and no file is written. A landing zone that cannot be listed
//! (no permission, no Control Tower in the Region) is taken as none: init
//! does not fail on it and says nothing of it but at `-v`.
//!
//! # Run from Security Tooling
//!
//! CloudTrail's delegated administrator is the account trailkey runs from
//! without management-account credentials, and its account is then
//! `accounts.security_tooling` by definition: init writes it as such, not
//! by name, with the management account, and looks for Log Archive and the
//! trail as below. It writes no `roles.management` (an error from there),
//! and no `[control_tower]` (the landing zone's key is the management
//! account's, set with its credentials); the role the caller runs as is
//! written commented under `[roles]`, for `key.protect`.
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
//! Tower manages it and reverts changes, that `plan` refuses it unless
//! `allow_control_tower = true`, and that the supported way is
//! `[control_tower] landing_zone = true`. When the landing zone is found,
//! that option is written commented, with when to choose it.
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

use std::io::Write as _;
use std::path::Path;

use anstyle::{AnsiColor, Style};

use crate::Status;
use crate::aws::{Account, LandingZones, Management, Organization, Trail};
use crate::config::{self, Region};
use crate::error::{Error, Painted};
use crate::output;

mod discover;
mod template;
#[cfg(test)]
mod tests;

pub use discover::{discover, name_match, normalize};
pub use template::render;
use template::{config_arg, open_fields, summary};

/// At most this many accounts are listed as candidates for one field.
pub const MAX_CANDIDATES: usize = 20;

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

/// An account init proposes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub account: Account,
    pub name_match: Option<NameMatch>,
    /// Log Archive only: an organization trail's bucket whose name carries
    /// the account ID (Control Tower: `aws-controltower-logs-<ID>-<Region>`).
    pub bucket: Option<String>,
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
    /// The landing zone's ARN (`ListLandingZones`), looked for only when an
    /// organization trail is Control Tower's; `None` also when it could not
    /// be listed.
    pub landing_zone: Option<String>,
    /// Run from Security Tooling as CloudTrail's delegated administrator:
    /// the caller's role, when it runs as one (`None`: the management
    /// account runs).
    pub delegated: Option<Delegated>,
    pub warnings: Vec<String>,
}

/// The caller of an init run from Security Tooling, CloudTrail's delegated
/// administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegated {
    /// The caller's ARN.
    pub caller: String,
    /// The role it runs as, when it is a role's session.
    pub role: Option<String>,
}

/// Reads the organization (and, beside Control Tower's trail, the landing
/// zone with `lz`) and writes a config to `path`; prints what it found and
/// the next steps.
pub async fn run<M: Management, L: LandingZones>(
    mgmt: &M,
    lz: &L,
    region: &Region,
    path: &Path,
    force: bool,
) -> Result<Status, Error> {
    let written = write_config(mgmt, lz, region, path, force).await?;
    output::out(&written.summary);
    for w in &written.discovery.warnings {
        output::err(&format!("{WARNING} {}\n", crate::escape::escape(w)));
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
pub async fn write_config<M: Management, L: LandingZones>(
    mgmt: &M,
    lz: &L,
    region: &Region,
    path: &Path,
    force: bool,
) -> Result<Written, Error> {
    check_target(path, force)?;
    let discovery = discover(mgmt, lz, region).await?;
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

/// The error for a written file that does not validate yet.
fn undecided(d: &Discovery, path: &Path, e: &Error) -> Error {
    let open = open_fields(d);
    let file = path.display();
    if open.is_empty() {
        // Every field was found, yet the file is invalid: say why.
        return Error::check_with(
            format!("init wrote {file}, but it does not validate:"),
            e.render(),
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
