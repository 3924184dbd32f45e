//! Configuration: the TOML file as written ([`RawConfig`]) and the validated,
//! typed [`Desired`] state the rest of trailkey works from.
//!
//! Parsing is two-stage, in the ripgrep/uv spirit: `serde` reads the file into
//! a raw struct that rejects unknown keys, then [`RawConfig::validate`] turns
//! it into a [`Desired`] whose fields cannot hold an invalid value. Nothing
//! downstream re-checks input, and no AWS call happens before this succeeds.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Default alias name (without the `alias/` prefix), as in the cloud-foundations template.
pub const DEFAULT_ALIAS: &str = "cloudtrail-org-key";
/// Default trail home Region, as in the cloud-foundations template.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default role assumed in the Security Tooling account (Control Tower landing zones).
pub const DEFAULT_SECURITY_TOOLING_ROLE: &str = "AWSControlTowerExecution";
/// Tag every key trailkey creates carries, so a rerun can recognise it.
pub const MANAGED_BY_TAG: (&str, &str) = ("ManagedBy", "trailkey");
/// Tag naming the alias a trailkey key was created for.
pub const ALIAS_TAG: &str = "trailkey:alias";

/// The config file exactly as written. Unknown keys are an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub region: Option<String>,
    pub ct_key_alias: Option<String>,
    pub accounts: Option<RawAccounts>,
    #[serde(default)]
    pub roles: RawRoles,
    pub trail: Option<RawTrail>,
    #[serde(default)]
    pub key: RawKey,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccounts {
    pub security_tooling: Option<String>,
    pub log_archive: Option<String>,
    pub management: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoles {
    pub security_tooling: Option<String>,
    pub management: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrail {
    pub name: Option<String>,
    /// `false`: the trail is not an organization trail, on purpose.
    pub organization_trail: Option<bool>,
    /// `true`: change a trail managed by Control Tower anyway.
    pub allow_control_tower: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub rotation: Option<bool>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A 12-digit AWS account ID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// Accepts exactly twelve ASCII digits.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS Region name such as `us-east-1`, with the partition it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Region(String);

impl Region {
    /// Accepts the shape of every commercial, GovCloud, China and ISO Region
    /// name: lowercase words separated by `-`, ending in a number.
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('-').collect();
        let (last, words) = parts.split_last()?;
        let ok = parts.len() >= 3
            && !last.is_empty()
            && last.bytes().all(|b| b.is_ascii_digit())
            && words
                .iter()
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
        ok.then(|| Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The partition the Region belongs to; ARNs are built from it, never hard-coded.
    pub fn partition(&self) -> &'static str {
        if self.0.starts_with("us-gov-") {
            "aws-us-gov"
        } else if self.0.starts_with("cn-") {
            "aws-cn"
        } else if self.0.starts_with("us-isob-") {
            "aws-iso-b"
        } else if self.0.starts_with("us-iso-") {
            "aws-iso"
        } else {
            "aws"
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A KMS alias name, stored without the `alias/` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AliasName(String);

impl AliasName {
    /// The name as KMS APIs take it: `alias/<name>`.
    pub fn full(&self) -> String {
        format!("alias/{}", self.0)
    }
    pub fn short(&self) -> &str {
        &self.0
    }
}

/// How the trail is named in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrailRef {
    Name(String),
    Arn(String),
}

impl TrailRef {
    /// What `GetTrail` / `UpdateTrail` take as `Name`.
    pub fn as_api_name(&self) -> &str {
        match self {
            TrailRef::Name(n) | TrailRef::Arn(n) => n,
        }
    }
}

/// The role trailkey assumes in the Security Tooling account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleRef {
    Name(String),
    Arn(String),
}

impl RoleRef {
    pub fn arn(&self, partition: &str, account: &AccountId) -> String {
        match self {
            RoleRef::Name(n) => format!("arn:{partition}:iam::{account}:role/{n}"),
            RoleRef::Arn(a) => a.clone(),
        }
    }
}

/// The validated desired state. Every value in it has been checked.
#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    #[serde(skip)]
    pub source: PathBuf,
    pub region: Region,
    pub alias: AliasName,
    pub security_tooling: AccountId,
    pub log_archive: AccountId,
    pub management: Option<AccountId>,
    pub security_tooling_role: RoleRef,
    pub management_role: Option<String>,
    pub trail: TrailRef,
    /// The trail must be an organization trail (default); `false` accepts another trail.
    pub organization_trail: bool,
    /// Change a trail Control Tower manages (it will revert the change).
    pub allow_control_tower: bool,
    pub rotation: bool,
    /// Tags the key must carry: `ManagedBy = trailkey`, the alias tag, and the configured ones.
    pub tags: BTreeMap<String, String>,
}

impl Desired {
    pub fn partition(&self) -> &'static str {
        self.region.partition()
    }
    pub fn security_tooling_role_arn(&self) -> String {
        self.security_tooling_role
            .arn(self.partition(), &self.security_tooling)
    }
    /// Description set on keys trailkey creates.
    pub fn key_description(&self) -> String {
        format!(
            "CloudTrail organization trail logs ({}), managed by trailkey",
            self.trail.as_api_name()
        )
    }
}

/// Reads and validates a config file. Any problem is an [`Error::Config`]
/// naming the file, the field and the fix.
pub fn load(path: &Path) -> Result<Desired, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "create it from config/trailkey.example.toml, or pass another file with -c/--config"
                .to_owned()
        } else {
            "check the path and its permissions".to_owned()
        };
        Error::config(
            path,
            None,
            format!("cannot read the config file: {e}"),
            hint,
        )
    })?;
    parse(path, &bytes)
}

/// Largest config file trailkey reads; a real one is well under 4 KiB.
const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Parses and validates config text; `path` is used in messages only.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Desired, Error> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(Error::config(
            path,
            None,
            format!(
                "the file is {} bytes; a trailkey config is a few lines of TOML (limit {MAX_CONFIG_BYTES} bytes)",
                bytes.len()
            ),
            "point -c/--config at the trailkey TOML file".to_owned(),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::config(
            path,
            None,
            format!(
                "the file is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
            "point -c/--config at the trailkey TOML file".to_owned(),
        )
    })?;
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    raw.validate(path)
}

/// Turns a TOML/serde error into a config error that names the field.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let message = e.message().trim().to_owned();
    let location = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("line {line}, column {col}")
    });
    let field = field_at(text, e.span().map(|s| s.start));
    let hint = if message.starts_with("unknown field") {
        return Error::config(
            path,
            field,
            with_location(message, location),
            unknown_field_hint(e.message()),
        );
    } else if message.starts_with("invalid type") {
        "account IDs, names and the Region are quoted strings, e.g. log_archive = \"222222222222\"; rotation is true or false"
    } else {
        "fix the TOML syntax; see config/trailkey.example.toml"
    };
    Error::config(
        path,
        field,
        with_location(message, location),
        hint.to_owned(),
    )
}

fn with_location(message: String, location: Option<String>) -> String {
    match location {
        Some(loc) => format!("{message} (at {loc})"),
        None => message,
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": suggests the
/// closest accepted key.
fn unknown_field_hint(message: &str) -> String {
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let generic = "remove or rename the key; the accepted keys are listed above and in config/trailkey.example.toml".to_owned();
    let Some((unknown, expected)) = quoted.split_first() else {
        return generic;
    };
    expected
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(generic, |(_, k)| {
            format!("did you mean `{k}`? Rename the key; see config/trailkey.example.toml")
        })
}

/// Best effort: the dotted key path (`accounts.log_archive`) at a byte offset,
/// from the nearest table header above it and the key on its line.
fn field_at(text: &str, offset: Option<usize>) -> Option<String> {
    let offset = offset?.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    if line.starts_with('[') {
        return Some(
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned(),
        );
    }
    let key = line.split('=').next()?.trim();
    if key.is_empty() || key.starts_with('#') {
        return table;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

impl RawConfig {
    /// Checks every value and builds the typed [`Desired`].
    pub fn validate(self, path: &Path) -> Result<Desired, Error> {
        let err = |field: &str, message: String, hint: &str| {
            Error::config(path, Some(field.to_owned()), message, hint.to_owned())
        };

        let region_text = self.region.as_deref().unwrap_or(DEFAULT_REGION);
        let region = Region::parse(region_text).ok_or_else(|| {
            err(
                "region",
                format!("{region_text:?} is not an AWS Region name"),
                "use the trail's home Region, e.g. region = \"us-east-1\"",
            )
        })?;

        let alias = parse_alias(self.ct_key_alias.as_deref().unwrap_or(DEFAULT_ALIAS))
            .map_err(|m| err("ct_key_alias", m, "use a name such as \"cloudtrail-org-key\": letters, digits, '/', '_' and '-', not starting with \"aws/\""))?;

        let accounts = self.accounts.ok_or_else(|| {
            err(
                "accounts",
                "the [accounts] table is missing".to_owned(),
                "add [accounts] with security_tooling = \"<12-digit ID>\" and log_archive = \"<12-digit ID>\"",
            )
        })?;
        let account = |field: &str, value: Option<String>| -> Result<Option<AccountId>, Error> {
            match value {
                None => Ok(None),
                Some(v) => AccountId::parse(&v).map(Some).ok_or_else(|| {
                    let digits = v.bytes().filter(u8::is_ascii_digit).count();
                    let what = if v.bytes().all(|b| b.is_ascii_digit()) {
                        format!("{v:?} has {digits} digits; an AWS account ID has exactly 12")
                    } else {
                        format!("{v:?} is not an AWS account ID (12 digits)")
                    };
                    err(
                        &format!("accounts.{field}"),
                        what,
                        "copy the ID from the Organizations console or `aws organizations list-accounts`, keeping leading zeros, as a quoted string",
                    )
                }),
            }
        };
        let required = |field: &str, value: Option<AccountId>| {
            value.ok_or_else(|| {
                err(
                    &format!("accounts.{field}"),
                    format!("accounts.{field} is required"),
                    "add it under [accounts] as a quoted 12-digit ID",
                )
            })
        };
        let security_tooling = required(
            "security_tooling",
            account("security_tooling", accounts.security_tooling)?,
        )?;
        let log_archive = required("log_archive", account("log_archive", accounts.log_archive)?)?;
        let management = account("management", accounts.management)?;

        let distinct = [
            ("security_tooling", Some(&security_tooling)),
            ("log_archive", Some(&log_archive)),
            ("management", management.as_ref()),
        ];
        for (i, (a_name, a)) in distinct.iter().enumerate() {
            for (b_name, b) in &distinct[i + 1..] {
                if let (Some(a), Some(b)) = (a, b)
                    && a == b
                {
                    return Err(err(
                        &format!("accounts.{b_name}"),
                        format!("accounts.{a_name} and accounts.{b_name} are both {a}"),
                        "the Security Tooling, Log Archive and Management accounts are three different accounts; check the IDs",
                    ));
                }
            }
        }

        let security_tooling_role = match self.roles.security_tooling {
            None => RoleRef::Name(DEFAULT_SECURITY_TOOLING_ROLE.to_owned()),
            Some(r) => parse_role(&r, region.partition(), Some(&security_tooling)).map_err(|m| {
                err(
                    "roles.security_tooling",
                    m,
                    "give a role name such as \"AWSControlTowerExecution\" or a role ARN in the Security Tooling account",
                )
            })?,
        };
        let management_role = match self.roles.management {
            None => None,
            Some(r) => match parse_role(&r, region.partition(), management.as_ref()) {
                Ok(RoleRef::Arn(a)) => Some(a),
                Ok(RoleRef::Name(_)) => {
                    return Err(err(
                        "roles.management",
                        format!(
                            "{r:?} is a role name; the management role must be a full role ARN"
                        ),
                        "write it as \"arn:aws:iam::<management account>:role/<name>\"",
                    ));
                }
                Err(m) => {
                    return Err(err(
                        "roles.management",
                        m,
                        "write it as \"arn:aws:iam::<management account>:role/<name>\"",
                    ));
                }
            },
        };

        let organization_trail = self
            .trail
            .as_ref()
            .and_then(|t| t.organization_trail)
            .unwrap_or(true);
        let allow_control_tower = self
            .trail
            .as_ref()
            .and_then(|t| t.allow_control_tower)
            .unwrap_or(false);
        let trail_name = self.trail.and_then(|t| t.name).ok_or_else(|| {
            err(
                "trail.name",
                "trail.name is required".to_owned(),
                "add [trail] with name = \"<organization trail name or ARN>\" (see `aws cloudtrail describe-trails`)",
            )
        })?;
        let trail = parse_trail(&trail_name, &region, management.as_ref())
            .map_err(|(m, h)| err("trail.name", m, &h))?;

        let mut tags = BTreeMap::new();
        for (k, v) in &self.key.tags {
            check_tag(k, v).map_err(|m| {
                err(
                    &format!("key.tags.{k}"),
                    m,
                    "tag keys are 1-128 characters, values up to 256, and may not start with \"aws:\"",
                )
            })?;
            if k == MANAGED_BY_TAG.0 || k == ALIAS_TAG {
                return Err(err(
                    &format!("key.tags.{k}"),
                    format!("the tag {k:?} is set by trailkey itself"),
                    "remove it from [key.tags]",
                ));
            }
            tags.insert(k.clone(), v.clone());
        }
        tags.insert(MANAGED_BY_TAG.0.to_owned(), MANAGED_BY_TAG.1.to_owned());
        tags.insert(ALIAS_TAG.to_owned(), alias.short().to_owned());

        Ok(Desired {
            source: path.to_owned(),
            region,
            alias,
            security_tooling,
            log_archive,
            management,
            security_tooling_role,
            management_role,
            trail,
            organization_trail,
            allow_control_tower,
            rotation: self.key.rotation.unwrap_or(true),
            tags,
        })
    }
}

fn parse_alias(value: &str) -> Result<AliasName, String> {
    let name = value.strip_prefix("alias/").unwrap_or(value);
    if name.is_empty() {
        return Err("the alias name is empty".to_owned());
    }
    if name.starts_with("aws/") {
        return Err(format!(
            "{value:?} starts with \"aws/\", which AWS reserves for AWS managed keys"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-')))
    {
        return Err(format!(
            "{value:?} contains {c:?}, which an alias may not contain"
        ));
    }
    // KMS limits the whole alias name, "alias/" included, to 256 characters.
    if name.len() + "alias/".len() > 256 {
        return Err(format!(
            "the alias is {} characters long; KMS allows 250 after \"alias/\"",
            name.len()
        ));
    }
    Ok(AliasName(name.to_owned()))
}

fn parse_role(
    value: &str,
    partition: &str,
    account: Option<&AccountId>,
) -> Result<RoleRef, String> {
    if let Some(rest) = value.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [p, service, region, acct, resource] = parts[..] else {
            return Err(format!("{value:?} is not a valid role ARN"));
        };
        if service != "iam" || !region.is_empty() || !resource.starts_with("role/") {
            return Err(format!(
                "{value:?} is not an IAM role ARN (arn:{partition}:iam::<account>:role/<name>)"
            ));
        }
        if p != partition {
            return Err(format!(
                "{value:?} is in partition {p:?}, but the Region is in {partition:?}"
            ));
        }
        let Some(acct_id) = AccountId::parse(acct) else {
            return Err(format!("{value:?} does not contain a 12-digit account ID"));
        };
        if let Some(expected) = account
            && &acct_id != expected
        {
            return Err(format!(
                "{value:?} is in account {acct_id}, not in the configured account {expected}"
            ));
        }
        return Ok(RoleRef::Arn(value.to_owned()));
    }
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !valid {
        return Err(format!(
            "{value:?} is not a valid IAM role name (1-64 characters: letters, digits and +=,.@_-)"
        ));
    }
    Ok(RoleRef::Name(value.to_owned()))
}

fn parse_trail(
    value: &str,
    region: &Region,
    management: Option<&AccountId>,
) -> Result<TrailRef, (String, String)> {
    if let Some(rest) = value.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let bad = || {
            (
                format!("{value:?} is not a CloudTrail trail ARN"),
                "use arn:<partition>:cloudtrail:<home Region>:<management account>:trail/<name>, or just the trail name".to_owned(),
            )
        };
        let [p, service, trail_region, acct, resource] = parts[..] else {
            return Err(bad());
        };
        let name = resource.strip_prefix("trail/").ok_or_else(bad)?;
        if service != "cloudtrail" || name.is_empty() {
            return Err(bad());
        }
        if p != region.partition() {
            return Err((
                format!(
                    "the trail ARN is in partition {p:?}, but region {region} is in {:?}",
                    region.partition()
                ),
                "the key, the trail and its bucket must be in one Region: set `region` to the trail's home Region".to_owned(),
            ));
        }
        if trail_region != region.as_str() {
            return Err((
                format!("the trail's home Region is {trail_region}, but region is {region}"),
                format!(
                    "the key must be created in the trail's home Region: set region = \"{trail_region}\""
                ),
            ));
        }
        let Some(acct_id) = AccountId::parse(acct) else {
            return Err(bad());
        };
        if let Some(m) = management
            && &acct_id != m
        {
            return Err((
                format!(
                    "the trail ARN is in account {acct_id}, but accounts.management is {m}"
                ),
                "an organization trail belongs to the management account; fix the ARN or accounts.management".to_owned(),
            ));
        }
        return Ok(TrailRef::Arn(value.to_owned()));
    }
    let valid = (3..=128).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err((
            format!("{value:?} is not a valid trail name"),
            "a trail name is 3-128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit; or give the trail ARN".to_owned(),
        ));
    }
    Ok(TrailRef::Name(value.to_owned()))
}

fn check_tag(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(format!("tag key {key:?} must be 1-128 characters"));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(format!(
            "tag key {key:?} starts with \"aws:\", which AWS reserves"
        ));
    }
    if value.chars().count() > 256 {
        return Err(format!("the value of tag {key:?} is over 256 characters"));
    }
    Ok(())
}
