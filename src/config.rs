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
/// `-c/--config` when not given.
pub const DEFAULT_CONFIG: &str = "trailkey.toml";
/// Default trail home Region, as in the cloud-foundations template.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default role assumed in the Security Tooling account (Control Tower landing zones).
pub const DEFAULT_SECURITY_TOOLING_ROLE: &str = "AWSControlTowerExecution";
/// Tag every key trailkey creates carries, so a rerun can recognise it.
pub const MANAGED_BY_TAG: (&str, &str) = ("ManagedBy", "trailkey");
/// Tag naming the alias a trailkey key was created for.
pub const ALIAS_TAG: &str = "trailkey:alias";
/// Tag that only trailkey's own `CreateKey` sets, in the same call that
/// creates the key: the mark that trailkey created the key, rather than
/// adopting one the alias named. Only such a key may be deleted by
/// `destroy --delete-key`. Tags trailkey adds to an existing key never
/// include it, and trailkey never removes a tag, so it survives reruns.
pub const CREATED_TAG: (&str, &str) = ("trailkey:created", "true");

/// The tags trailkey sets on a key it creates: `ManagedBy`, the alias tag
/// and [`CREATED_TAG`].
pub const TRAILKEY_TAGS: [&str; 3] = [MANAGED_BY_TAG.0, ALIAS_TAG, CREATED_TAG.0];

/// At most 50 tags per KMS key ("Tags in AWS KMS", AWS KMS Developer
/// Guide); tags whose keys start with `aws:` are AWS's and do not count.
pub const MAX_KEY_TAGS: usize = 50;

/// Whether the tag `key` counts against [`MAX_KEY_TAGS`]: AWS's own `aws:`
/// tags (in any case) do not.
pub fn counts_against_tag_limit(key: &str) -> bool {
    !key.to_ascii_lowercase().starts_with("aws:")
}
/// Tag keys starting with this are trailkey's own; a config may not set them.
pub const RESERVED_TAG_PREFIX: &str = "trailkey:";

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
    #[serde(default)]
    pub readers: RawReaders,
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
    pub log_archive: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrail {
    pub name: Option<String>,
    /// `false`: the trail is not an organization trail, on purpose.
    pub organization_trail: Option<bool>,
    /// `true`: change a trail managed by Control Tower anyway.
    pub allow_control_tower: Option<bool>,
    /// `true`: turn log-file validation on; `false`: leave it as it is.
    pub log_file_validation: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub rotation: Option<bool>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `true`: deny disabling, deleting and un-rotating the key to all but
    /// trailkey's role and `admins`.
    pub protect: Option<bool>,
    pub admins: Option<Vec<String>>,
}

/// `[readers]`: who else may decrypt the log files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReaders {
    pub accounts: Option<Vec<String>>,
    pub principals: Option<Vec<String>>,
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

/// Every AWS Region trailkey accepts, with its partition, sorted by partition
/// and name.
///
/// Source: `botocore/data/partitions.json` of botocore 1.44.5 (the version
/// pinned in tests/requirements.txt), checked against the partition table
/// built into aws-sdk-kms 1.129.0 (`endpoint_lib.rs`, which lacks only
/// `me-west-1` and `sa-west-1`) and the AWS documentation page "AWS Region
/// billing codes". Taken on 2026-11-24. The `*-global` pseudo-Regions of those
/// tables are not Regions a trail can live in and are left out.
///
/// A Region AWS opens later is rejected with a hint to upgrade trailkey; add
/// it here (with its partition) when that happens.
pub const KNOWN_REGIONS: &[(&str, &str)] = &[
    // Commercial (aws)
    ("af-south-1", "aws"),     // Africa (Cape Town)
    ("ap-east-1", "aws"),      // Asia Pacific (Hong Kong)
    ("ap-east-2", "aws"),      // Asia Pacific (Taipei)
    ("ap-northeast-1", "aws"), // Asia Pacific (Tokyo)
    ("ap-northeast-2", "aws"), // Asia Pacific (Seoul)
    ("ap-northeast-3", "aws"), // Asia Pacific (Osaka)
    ("ap-south-1", "aws"),     // Asia Pacific (Mumbai)
    ("ap-south-2", "aws"),     // Asia Pacific (Hyderabad)
    ("ap-southeast-1", "aws"), // Asia Pacific (Singapore)
    ("ap-southeast-2", "aws"), // Asia Pacific (Sydney)
    ("ap-southeast-3", "aws"), // Asia Pacific (Jakarta)
    ("ap-southeast-4", "aws"), // Asia Pacific (Melbourne)
    ("ap-southeast-5", "aws"), // Asia Pacific (Malaysia)
    ("ap-southeast-6", "aws"), // Asia Pacific (New Zealand)
    ("ap-southeast-7", "aws"), // Asia Pacific (Thailand)
    ("ca-central-1", "aws"),   // Canada (Central)
    ("ca-west-1", "aws"),      // Canada West (Calgary)
    ("eu-central-1", "aws"),   // Europe (Frankfurt)
    ("eu-central-2", "aws"),   // Europe (Zurich)
    ("eu-north-1", "aws"),     // Europe (Stockholm)
    ("eu-south-1", "aws"),     // Europe (Milan)
    ("eu-south-2", "aws"),     // Europe (Spain)
    ("eu-west-1", "aws"),      // Europe (Ireland)
    ("eu-west-2", "aws"),      // Europe (London)
    ("eu-west-3", "aws"),      // Europe (Paris)
    ("il-central-1", "aws"),   // Israel (Tel Aviv)
    ("me-central-1", "aws"),   // Middle East (UAE)
    ("me-south-1", "aws"),     // Middle East (Bahrain)
    ("me-west-1", "aws"),      // Middle East (Saudi Arabia)
    ("mx-central-1", "aws"),   // Mexico (Central)
    ("sa-east-1", "aws"),      // South America (Sao Paulo)
    ("sa-west-1", "aws"),      // South America (Chile)
    ("us-east-1", "aws"),      // US East (N. Virginia)
    ("us-east-2", "aws"),      // US East (Ohio)
    ("us-west-1", "aws"),      // US West (N. California)
    ("us-west-2", "aws"),      // US West (Oregon)
    // China (aws-cn)
    ("cn-north-1", "aws-cn"),     // China (Beijing)
    ("cn-northwest-1", "aws-cn"), // China (Ningxia)
    // AWS European Sovereign Cloud (aws-eusc)
    ("eusc-de-east-1", "aws-eusc"), // Germany
    // GovCloud (aws-us-gov)
    ("us-gov-east-1", "aws-us-gov"), // AWS GovCloud (US-East)
    ("us-gov-west-1", "aws-us-gov"), // AWS GovCloud (US-West)
    // ISO partitions
    ("us-iso-east-1", "aws-iso"),     // US ISO East
    ("us-iso-west-1", "aws-iso"),     // US ISO West
    ("us-isob-east-1", "aws-iso-b"),  // US ISOB East (Ohio)
    ("us-isob-west-1", "aws-iso-b"),  // US ISOB West
    ("eu-isoe-west-1", "aws-iso-e"),  // EU ISOE West
    ("us-isof-east-1", "aws-iso-f"),  // US ISOF East
    ("us-isof-south-1", "aws-iso-f"), // US ISOF South
];

/// An AWS Region name such as `us-east-1`, one of [`KNOWN_REGIONS`], with
/// the partition it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    name: &'static str,
    partition: &'static str,
}

impl Serialize for Region {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

/// Why a Region name was refused, as a message and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionError {
    pub message: String,
    pub hint: String,
}

impl Region {
    /// Accepts the Regions of [`KNOWN_REGIONS`] only.
    pub fn parse(s: &str) -> Option<Self> {
        Self::check(s).ok()
    }

    /// Like [`Region::parse`], saying why a name is refused: not the shape of
    /// a Region name, or well-formed but not a Region this build knows.
    pub fn check(s: &str) -> Result<Self, RegionError> {
        if let Some(&(name, partition)) = KNOWN_REGIONS.iter().find(|(name, _)| *name == s) {
            return Ok(Region { name, partition });
        }
        if !Self::well_formed(s) {
            return Err(RegionError {
                message: format!("{s:?} is not an AWS Region name"),
                hint: "use the Region code of the trail's home Region, such as region = \"us-east-1\" (not the display name \"US East (N. Virginia)\")".to_owned(),
            });
        }
        let suggestion = Self::nearest(s)
            .map(|r| format!("did you mean region = \"{r}\"? Otherwise, "))
            .unwrap_or_default();
        Err(RegionError {
            message: format!(
                "{s:?} looks like a Region name, but it is not one of the {} AWS Regions this trailkey {} knows",
                KNOWN_REGIONS.len(),
                env!("CARGO_PKG_VERSION"),
            ),
            hint: format!(
                "{suggestion}list the Regions of your account with `aws ec2 describe-regions --all-regions --query \"Regions[].RegionName\"`; a Region newer than this build of trailkey needs a newer trailkey"
            ),
        })
    }

    /// The shape of every Region name: lowercase words separated by `-`,
    /// ending in a number.
    fn well_formed(s: &str) -> bool {
        let parts: Vec<&str> = s.split('-').collect();
        let Some((last, words)) = parts.split_last() else {
            return false;
        };
        parts.len() >= 3
            && !last.is_empty()
            && last.bytes().all(|b| b.is_ascii_digit())
            && words
                .iter()
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
    }

    /// A known Region that differs from `s` by a typo (at most two edits) and
    /// has the same number, e.g. `us-esat-1` -> `us-east-1`.
    fn nearest(s: &str) -> Option<&'static str> {
        let number = s.rsplit('-').next()?;
        KNOWN_REGIONS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| name.rsplit('-').next() == Some(number))
            .map(|name| (strsim::damerau_levenshtein(s, name), name))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, name)| name)
    }

    pub fn as_str(&self) -> &'static str {
        self.name
    }
    /// The partition the Region belongs to; ARNs are built from it, never hard-coded.
    pub fn partition(&self) -> &'static str {
        self.partition
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
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
    /// The role in the Log Archive account trailkey assumes to read the
    /// trail bucket's configuration before it changes the trail; `None`:
    /// the bucket side is not checked.
    pub log_archive_role: Option<RoleRef>,
    pub trail: TrailRef,
    /// The trail must be an organization trail (default); `false` accepts another trail.
    pub organization_trail: bool,
    /// Change a trail Control Tower manages (it will revert the change).
    pub allow_control_tower: bool,
    pub rotation: bool,
    /// Tags the key must carry: `ManagedBy = trailkey`, the alias tag, and the configured ones.
    pub tags: BTreeMap<String, String>,
    /// `trail.log_file_validation`: `Some(true)` turns it on, `Some(false)`
    /// leaves it as it is, `None` leaves it too but reports it when off.
    pub log_file_validation: Option<bool>,
    /// `[readers]`: accounts and principals that may decrypt the log files,
    /// besides Log Archive and the management account.
    pub readers: Readers,
    /// `key.protect`: the admins exempt from the protection, besides
    /// trailkey's own role; `None` without protection.
    pub protect: Option<Vec<Principal>>,
}

/// Declared log readers, in config order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Readers {
    pub accounts: Vec<AccountId>,
    pub principals: Vec<Principal>,
}

impl Readers {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.principals.is_empty()
    }

    /// The key policy principals: the accounts' roots, then the principals.
    pub fn policy_principals(&self, partition: &str) -> Vec<String> {
        self.accounts
            .iter()
            .map(|a| format!("arn:{partition}:iam::{a}:root"))
            .chain(self.principals.iter().map(|p| p.arn.clone()))
            .collect()
    }

    /// Whether `principal` may read through these readers: it is listed,
    /// or its account is.
    pub fn covers(&self, principal: &Principal) -> bool {
        self.principals.iter().any(|p| p.same_as(principal))
            || self.accounts.contains(&principal.account)
    }
}

/// An IAM role or user, by ARN, as a key policy names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub arn: String,
    pub account: AccountId,
    pub kind: PrincipalKind,
    /// The name without the path.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Role,
    User,
}

impl Principal {
    /// Whether `self` and `other` are the same IAM principal, as IAM tells
    /// them apart: the same account and kind, and the same name without
    /// regard to case ("Names are not distinguished by case", IAM User
    /// Guide, "IAM object quotas" / IAM identifiers). A role's path does not
    /// make it another role: names are unique in an account whatever the
    /// path.
    pub fn same_as(&self, other: &Principal) -> bool {
        self.account == other.account
            && self.kind == other.kind
            && self.name.eq_ignore_ascii_case(&other.name)
    }

    /// Parses `arn:<partition>:iam::<account>:role/[<path>/]<name>` (or
    /// `user/`) in `partition`. Wildcards are refused: a key policy names
    /// principals exactly.
    pub fn parse(value: &str, partition: &str) -> Result<Principal, String> {
        let shape = || {
            format!(
                "{value:?} is not an IAM role or user ARN (arn:{partition}:iam::<12-digit account>:role/<name> or :user/<name>)"
            )
        };
        if value.contains(['*', '?']) {
            return Err(format!(
                "{value:?} contains a wildcard; a key policy names a principal by its exact ARN"
            ));
        }
        let rest = value.strip_prefix("arn:").ok_or_else(shape)?;
        let [p, service, region, account, resource] = rest.splitn(5, ':').collect::<Vec<_>>()[..]
        else {
            return Err(shape());
        };
        if service != "iam" || !region.is_empty() {
            return Err(shape());
        }
        let account = AccountId::parse(account).ok_or_else(shape)?;
        let (kind, path_and_name) = if let Some(r) = resource.strip_prefix("role/") {
            (PrincipalKind::Role, r)
        } else if let Some(u) = resource.strip_prefix("user/") {
            (PrincipalKind::User, u)
        } else {
            return Err(shape());
        };
        let (path, name) = path_and_name
            .rsplit_once('/')
            .unwrap_or(("", path_and_name));
        let path_ok = path.len() < 512 && path.chars().all(|c| ('!'..='~').contains(&c));
        if !valid_role_name(name) || !path_ok {
            return Err(format!(
                "{value:?} has an invalid name: IAM names are 1-64 letters, digits and +=,.@_-, after an optional path"
            ));
        }
        if p != partition {
            return Err(format!(
                "{value:?} is in partition {p:?}, but the Region is in {partition:?}"
            ));
        }
        Ok(Principal {
            arn: value.to_owned(),
            account,
            kind,
            name: name.to_owned(),
        })
    }
}

/// At most this many `[readers]` entries (accounts and principals together):
/// each is one principal of a key policy statement, and KMS keeps key
/// policies under 32 KB (see also [`MAX_READERS_BYTES`]).
pub const MAX_READERS: usize = 50;
/// At most this many bytes of reader ARNs (each quoted, with its comma):
/// with trailkey's other statements (about 3 KB) the policy stays well
/// under KMS's 32 KB, leaving room for foreign statements. The plan still
/// refuses a merged policy over the limit.
pub const MAX_READERS_BYTES: usize = 16 * 1024;
/// At most this many `key.admins`.
pub const MAX_ADMINS: usize = 10;

impl Desired {
    pub fn partition(&self) -> &'static str {
        self.region.partition()
    }
    pub fn security_tooling_role_arn(&self) -> String {
        self.security_tooling_role
            .arn(self.partition(), &self.security_tooling)
    }
    /// The ARN of `roles.log_archive`, when set.
    pub fn log_archive_role_arn(&self) -> Option<String> {
        self.log_archive_role
            .as_ref()
            .map(|r| r.arn(self.partition(), &self.log_archive))
    }
    /// The `aws:PrincipalArn` patterns the protection exempts: trailkey's
    /// own Security Tooling role (by name, with or without a path: a
    /// session's `aws:PrincipalArn` carries the role's path, and role names
    /// are unique in an account), then the admins. `None` without protection.
    pub fn protect_exempt(&self) -> Option<Vec<String>> {
        let admins = self.protect.as_ref()?;
        let partition = self.partition();
        let role = match &self.security_tooling_role {
            RoleRef::Name(n) => n.clone(),
            RoleRef::Arn(a) => a.rsplit('/').next().unwrap_or(a).to_owned(),
        };
        let account = &self.security_tooling;
        let mut exempt = vec![
            format!("arn:{partition}:iam::{account}:role/{role}"),
            format!("arn:{partition}:iam::{account}:role/*/{role}"),
        ];
        exempt.extend(admins.iter().map(|a| a.arn.clone()));
        Some(exempt)
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
    use std::io::Read as _;
    let read_error = |e: std::io::Error| {
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
    };
    // Read at most one byte more than the limit, so a huge file, a device
    // such as /dev/zero or a pipe that never ends is refused, not read whole.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    parse(path, &bytes)
}

/// Largest config file trailkey reads; a real one is well under 4 KiB.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Parses and validates config text; `path` is used in messages only.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Desired, Error> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(Error::config(
            path,
            None,
            format!(
                "the file is larger than {MAX_CONFIG_BYTES} bytes; a trailkey config is a few lines of TOML"
            ),
            "point -c/--config at the trailkey TOML file (see config/trailkey.example.toml)"
                .to_owned(),
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
            "point -c/--config at the trailkey TOML file (see config/trailkey.example.toml)"
                .to_owned(),
        )
    })?;
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Error::config(
            path,
            Some("accounts".to_owned()),
            "the file has no settings; [accounts] and [trail] are required".to_owned(),
            "start from config/trailkey.example.toml: set accounts.security_tooling, accounts.log_archive and trail.name".to_owned(),
        ));
    }
    if text.trim_start().starts_with('{') {
        return Err(Error::config(
            path,
            None,
            "the file looks like JSON; a trailkey config is TOML".to_owned(),
            "rewrite it as TOML, with [accounts] and [trail] tables; see config/trailkey.example.toml".to_owned(),
        ));
    }
    // The syntax, and that each section is a table: serde would otherwise
    // read a list such as accounts = ["1", "2", "3"] into the fields in order.
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    for section in ["accounts", "roles", "trail", "key"] {
        if let Some(value) = table.get(section)
            && !value.is_table()
        {
            return Err(Error::config(
                path,
                Some(section.to_owned()),
                format!(
                    "{section} is {} {}; it must be a table",
                    if value.is_array() || value.is_integer() {
                        "an"
                    } else {
                        "a"
                    },
                    value.type_str()
                ),
                type_hint(Some(section)),
            ));
        }
    }
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    raw.validate(path)
}

/// Turns a TOML/serde error into a config error that names the field.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let message = readable_message(e.message().trim());
    let start = e.span().map(|span| floor_char_boundary(text, span.start));
    let location = start.map(|start| {
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        format!("line {line}, column {col}")
    });
    let field = field_at(text, start);
    let hint = if message.starts_with("unknown field") {
        unknown_field_hint(&message)
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        type_hint(field.as_deref())
    } else if message.starts_with("duplicate key") {
        "each key may appear once per table: remove the repeated one".to_owned()
    } else if message.starts_with("missing field") {
        "add it; see config/trailkey.example.toml".to_owned()
    } else {
        "fix the TOML syntax (strings in double quotes, tables as [name]); see config/trailkey.example.toml".to_owned()
    };
    Error::config(path, field, with_location(message, location), hint)
}

/// serde's messages name trailkey's internal structs; say "a table" instead.
fn readable_message(message: &str) -> String {
    let mut m = message.to_owned();
    for internal in [
        "struct RawConfig",
        "struct RawAccounts",
        "struct RawRoles",
        "struct RawTrail",
        "struct RawKey",
        "a map",
    ] {
        m = m.replace(internal, "a table");
    }
    m
}

/// What each field's value looks like, for a value of the wrong type.
fn type_hint(field: Option<&str>) -> String {
    let hint = match field {
        Some("accounts") => {
            "[accounts] is a table: write [accounts] on its own line, then security_tooling = \"<12-digit ID>\" and log_archive = \"<12-digit ID>\" below it"
        }
        Some("roles") => {
            "[roles] is a table: write [roles] on its own line, then security_tooling = \"<role name or ARN>\" below it"
        }
        Some("trail") => {
            "[trail] is a table: write [trail] on its own line, then name = \"<trail name or ARN>\" below it"
        }
        Some("key") => {
            "[key] is a table: write [key] on its own line, then rotation = true below it"
        }
        Some(f) if f.starts_with("key.tags") => {
            "tags is a table of strings: tags = { CostCenter = \"security\" }, or a [key.tags] table"
        }
        Some(
            "key.rotation"
            | "key.protect"
            | "trail.organization_trail"
            | "trail.allow_control_tower"
            | "trail.log_file_validation",
        ) => "write true or false, without quotes",
        Some(f) if f.starts_with("accounts.") => {
            "an account ID is a quoted string of 12 digits, e.g. log_archive = \"222222222222\" (quotes keep leading zeros)"
        }
        Some("region") => "the Region is a quoted string, e.g. region = \"us-east-1\"",
        Some("ct_key_alias") => {
            "the alias is a quoted string, e.g. ct_key_alias = \"cloudtrail-org-key\""
        }
        Some(f) if f.starts_with("roles.") => {
            "a role is a quoted name or ARN, e.g. security_tooling = \"AWSControlTowerExecution\""
        }
        Some("trail.name") => "the trail is a quoted name or ARN, e.g. name = \"org-trail\"",
        Some("readers.accounts") => {
            "readers.accounts is a list of quoted 12-digit account IDs, e.g. accounts = [\"444455556666\"]"
        }
        Some("readers.principals") => {
            "readers.principals is a list of quoted role or user ARNs, e.g. principals = [\"arn:aws:iam::444455556666:role/SIEM\"]"
        }
        Some("key.admins") => {
            "key.admins is a list of quoted role or user ARNs, e.g. admins = [\"arn:aws:iam::111111111111:role/BreakGlass\"]"
        }
        _ => {
            "account IDs, names, the Region and the alias are quoted strings, e.g. log_archive = \"222222222222\"; rotation is true or false; see config/trailkey.example.toml"
        }
    };
    hint.to_owned()
}

/// The largest char boundary at or below `i` (clamped to the text).
fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
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
    let plausible = |k: &str| {
        k.chars()
            .all(|c| c.is_alphanumeric() || "_-.\"' :".contains(c))
    };
    if key.is_empty() || key.starts_with('#') || !plausible(key) {
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
        let region_text = self.region.as_deref().unwrap_or(DEFAULT_REGION);
        let region = Region::check(region_text)
            .map_err(|e| field_error(path, "region", e.message, &e.hint))?;

        let alias = parse_alias(self.ct_key_alias.as_deref().unwrap_or(DEFAULT_ALIAS))
            .map_err(|m| {
                field_error(
                    path,
                    "ct_key_alias",
                    m,
                    "use a name such as \"cloudtrail-org-key\": at most 250 letters, digits, '/', '_' and '-', not starting with \"aws/\"",
                )
            })?;

        let accounts = validate_accounts(self.accounts, path)?;
        let security_tooling_role = validate_security_tooling_role(
            self.roles.security_tooling,
            &region,
            &accounts.security_tooling,
            path,
        )?;
        let management_role = validate_management_role(
            self.roles.management,
            &region,
            accounts.management.as_ref(),
            path,
        )?;
        let log_archive_role = validate_log_archive_role(
            self.roles.log_archive,
            &region,
            &accounts.log_archive,
            path,
        )?;

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
        let trail = validate_trail_name(
            self.trail.as_ref().and_then(|t| t.name.clone()),
            &region,
            accounts.management.as_ref(),
            path,
        )?;

        let tags = validate_tags(&self.key.tags, &alias, path)?;
        let readers = validate_readers(self.readers, &region, &accounts, path)?;
        let protect = validate_protect(
            self.key.protect,
            self.key.admins,
            &region,
            &accounts.security_tooling,
            path,
        )?;
        let log_file_validation = self.trail.as_ref().and_then(|t| t.log_file_validation);

        let desired = Desired {
            source: path.to_owned(),
            region,
            alias,
            security_tooling: accounts.security_tooling,
            log_archive: accounts.log_archive,
            management: accounts.management,
            security_tooling_role,
            management_role,
            log_archive_role,
            trail,
            organization_trail,
            allow_control_tower,
            rotation: self.key.rotation.unwrap_or(true),
            tags,
            log_file_validation,
            readers,
            protect,
        };
        check_protect_exempts_trailkey(&desired, path)?;
        Ok(desired)
    }
}

/// The protection must never deny trailkey's own role: its sessions'
/// `aws:PrincipalArn` (the role ARN, with the role's path if it has one)
/// must be exempt, or trailkey could not repair a disabled key's rotation
/// nor run `destroy --delete-key`. Proven on the statement trailkey
/// writes, for the role without a path and under a path.
fn check_protect_exempts_trailkey(desired: &Desired, path: &Path) -> Result<(), Error> {
    let Some(exempt) = desired.protect_exempt() else {
        return Ok(());
    };
    let role = desired.security_tooling_role_arn();
    let (head, name) = role.rsplit_once('/').unwrap_or((role.as_str(), ""));
    let under_a_path = format!("{head}/a/path/{name}");
    for arn in [role.as_str(), under_a_path.as_str()] {
        if !crate::policy::protect_exempts(&exempt, arn) {
            return Err(field_error(
                path,
                "key.protect",
                format!("the protection would deny trailkey's own role {arn}"),
                "set roles.security_tooling to the role trailkey assumes, by name or ARN",
            ));
        }
    }
    Ok(())
}

/// `[readers]`: accounts of 12 digits, IAM role or user ARNs in the
/// Region's partition; no entry twice, none that Log Archive or the
/// management account already covers (their roots are readers), no
/// principal whose account is listed too, at most [`MAX_READERS`].
fn validate_readers(
    raw: RawReaders,
    region: &Region,
    accounts: &Accounts,
    path: &Path,
) -> Result<Readers, Error> {
    let account_hint =
        "list account IDs as quoted 12-digit strings, e.g. accounts = [\"444455556666\"]";
    let mut readers = Readers::default();
    let covered = |id: &AccountId| -> Option<&'static str> {
        if *id == accounts.log_archive {
            Some("accounts.log_archive")
        } else if accounts.management.as_ref() == Some(id) {
            Some("accounts.management")
        } else if *id == accounts.security_tooling {
            Some("accounts.security_tooling")
        } else {
            None
        }
    };
    for (i, value) in raw.accounts.unwrap_or_default().into_iter().enumerate() {
        let field = format!("readers.accounts[{i}]");
        let id = AccountId::parse(&value).ok_or_else(|| {
            field_error(
                path,
                &field,
                format!("{value:?} is not an AWS account ID (12 digits)"),
                account_hint,
            )
        })?;
        if let Some(other) = covered(&id) {
            return Err(field_error(
                path,
                &field,
                format!("{id} is {other}, which already reads the logs"),
                "remove it from readers.accounts: the Log Archive and management accounts are always readers, and the Security Tooling account administers the key",
            ));
        }
        if readers.accounts.contains(&id) {
            return Err(field_error(
                path,
                &field,
                format!("{id} is listed twice"),
                "list each account once",
            ));
        }
        readers.accounts.push(id);
    }
    for (i, value) in raw.principals.unwrap_or_default().into_iter().enumerate() {
        let field = format!("readers.principals[{i}]");
        let principal = Principal::parse(&value, region.partition()).map_err(|m| {
            field_error(
                path,
                &field,
                m,
                &format!(
                    "give the role or user ARN as IAM shows it, e.g. \"arn:{}:iam::444455556666:role/SIEM\"; for a whole account, list its ID in readers.accounts",
                    region.partition()
                ),
            )
        })?;
        let redundant = covered(&principal.account)
            .map(|other| format!("{other} ({})", principal.account))
            .or_else(|| {
                readers
                    .accounts
                    .contains(&principal.account)
                    .then(|| format!("readers.accounts ({})", principal.account))
            });
        if let Some(by) = redundant {
            return Err(field_error(
                path,
                &field,
                format!("{value:?} is in {by}, whose root already reads the logs"),
                "remove it: a listed account's root lets that account's IAM policies grant kms:Decrypt to any of its roles (`trailkey policy --reader-iam` prints the policy the role needs)",
            ));
        }
        if let Some(first) = readers.principals.iter().find(|p| p.same_as(&principal)) {
            let message = if first.arn == principal.arn {
                format!("{value:?} is listed twice")
            } else {
                format!(
                    "{value:?} is {:?} again: IAM does not tell role and user names apart by case, nor a role by its path",
                    first.arn
                )
            };
            return Err(field_error(
                path,
                &field,
                message,
                "list each principal once",
            ));
        }
        readers.principals.push(principal);
    }
    let bytes: usize = readers
        .policy_principals(region.partition())
        .iter()
        .map(|p| p.len() + 4)
        .sum();
    if bytes > MAX_READERS_BYTES {
        return Err(field_error(
            path,
            "readers",
            format!(
                "the readers' ARNs take {bytes} bytes of the key policy; trailkey allows at most {MAX_READERS_BYTES}, to keep it within KMS's 32 KB"
            ),
            "list whole accounts in readers.accounts instead of many roles of one account, or shorter role paths",
        ));
    }
    let count = readers.accounts.len() + readers.principals.len();
    if count > MAX_READERS {
        return Err(field_error(
            path,
            "readers",
            format!(
                "{count} readers are listed; trailkey allows at most {MAX_READERS}, to keep the key policy within KMS's 32 KB"
            ),
            "list whole accounts in readers.accounts instead of many roles of one account",
        ));
    }
    Ok(readers)
}

/// `key.protect` and `key.admins`: admins are IAM role or user ARNs of the
/// Security Tooling account (KMS does not let other accounts disable or
/// delete a key), each once, at most [`MAX_ADMINS`], and only with
/// `protect = true`.
fn validate_protect(
    protect: Option<bool>,
    admins: Option<Vec<String>>,
    region: &Region,
    security_tooling: &AccountId,
    path: &Path,
) -> Result<Option<Vec<Principal>>, Error> {
    let admins = admins.unwrap_or_default();
    if protect != Some(true) {
        if admins.is_empty() {
            return Ok(None);
        }
        return Err(field_error(
            path,
            "key.admins",
            "key.admins is set, but key.protect is not true".to_owned(),
            "set protect = true under [key] to deny kms:DisableKey, kms:ScheduleKeyDeletion and kms:DisableKeyRotation to all but trailkey and the admins, or remove admins",
        ));
    }
    let example = format!(
        "\"arn:{}:iam::{security_tooling}:role/BreakGlass\"",
        region.partition()
    );
    let mut out: Vec<Principal> = Vec::new();
    for (i, value) in admins.into_iter().enumerate() {
        let field = format!("key.admins[{i}]");
        let admin = Principal::parse(&value, region.partition()).map_err(|m| {
            field_error(
                path,
                &field,
                m,
                &format!(
                    "give an IAM role or user ARN of the Security Tooling account, e.g. {example}"
                ),
            )
        })?;
        if admin.account != *security_tooling {
            return Err(field_error(
                path,
                &field,
                format!(
                    "{value:?} is in account {}, not the Security Tooling account {security_tooling}: KMS lets only the key's own account disable or delete it",
                    admin.account
                ),
                &format!("give a role or user of the Security Tooling account, e.g. {example}"),
            ));
        }
        if out.contains(&admin) {
            return Err(field_error(
                path,
                &field,
                format!("{value:?} is listed twice"),
                "list each admin once",
            ));
        }
        out.push(admin);
    }
    if out.len() > MAX_ADMINS {
        return Err(field_error(
            path,
            "key.admins",
            format!(
                "{} admins are listed; trailkey allows at most {MAX_ADMINS}",
                out.len()
            ),
            "give the break-glass roles only: trailkey's own role is always exempt",
        ));
    }
    Ok(Some(out))
}

/// A config error about `field` of the file at `path`.
fn field_error(path: &Path, field: &str, message: String, hint: &str) -> Error {
    Error::config(path, Some(field.to_owned()), message, hint.to_owned())
}

/// The account IDs of a validated `[accounts]` table.
struct Accounts {
    security_tooling: AccountId,
    log_archive: AccountId,
    management: Option<AccountId>,
}

/// Checks `[accounts]`: present, with the two required IDs, every ID well
/// formed, and no account given twice.
fn validate_accounts(accounts: Option<RawAccounts>, path: &Path) -> Result<Accounts, Error> {
    let accounts = accounts.ok_or_else(|| {
        field_error(
            path,
            "accounts",
            "the [accounts] table is missing".to_owned(),
            "add [accounts] with security_tooling = \"<12-digit ID>\" and log_archive = \"<12-digit ID>\"",
        )
    })?;
    let security_tooling = required_account(
        "security_tooling",
        parse_account_field("security_tooling", accounts.security_tooling, path)?,
        path,
    )?;
    let log_archive = required_account(
        "log_archive",
        parse_account_field("log_archive", accounts.log_archive, path)?,
        path,
    )?;
    let management = parse_account_field("management", accounts.management, path)?;
    let accounts = Accounts {
        security_tooling,
        log_archive,
        management,
    };
    check_distinct_accounts(&accounts, path)?;
    Ok(accounts)
}

/// `accounts.<field>`, when given, as an account ID; the message names the
/// usual mistakes (a digit too few or many, the console's separators).
fn parse_account_field(
    field: &str,
    value: Option<String>,
    path: &Path,
) -> Result<Option<AccountId>, Error> {
    match value {
        None => Ok(None),
        Some(v) => AccountId::parse(&v).map(Some).ok_or_else(|| {
            let digits = v.bytes().filter(u8::is_ascii_digit).count();
            let bare: String = v.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
            let what = if v.bytes().all(|b| b.is_ascii_digit()) {
                format!("{v:?} has {digits} digits; an AWS account ID has exactly 12")
            } else if AccountId::parse(&bare).is_some() {
                format!("{v:?} is written with separators, as the console shows it; write {bare:?}")
            } else {
                format!("{v:?} is not an AWS account ID (12 digits)")
            };
            field_error(
                path,
                &format!("accounts.{field}"),
                what,
                "copy the ID from the Organizations console or `aws organizations list-accounts`, keeping leading zeros, as a quoted string",
            )
        }),
    }
}

/// `accounts.<field>`, which must be given.
fn required_account(
    field: &str,
    value: Option<AccountId>,
    path: &Path,
) -> Result<AccountId, Error> {
    value.ok_or_else(|| {
        field_error(
            path,
            &format!("accounts.{field}"),
            format!("accounts.{field} is required"),
            "add it under [accounts] as a quoted 12-digit ID",
        )
    })
}

/// The Security Tooling, Log Archive and management accounts are three
/// different accounts.
fn check_distinct_accounts(accounts: &Accounts, path: &Path) -> Result<(), Error> {
    let distinct = [
        ("security_tooling", Some(&accounts.security_tooling)),
        ("log_archive", Some(&accounts.log_archive)),
        ("management", accounts.management.as_ref()),
    ];
    for (i, (a_name, a)) in distinct.iter().enumerate() {
        for (b_name, b) in &distinct[i + 1..] {
            if let (Some(a), Some(b)) = (a, b)
                && a == b
            {
                return Err(field_error(
                    path,
                    &format!("accounts.{b_name}"),
                    format!("accounts.{a_name} and accounts.{b_name} are both {a}"),
                    "the Security Tooling, Log Archive and Management accounts are three different accounts; check the IDs",
                ));
            }
        }
    }
    Ok(())
}

/// `roles.security_tooling`: a role name, or a role ARN in the Security
/// Tooling account; [`DEFAULT_SECURITY_TOOLING_ROLE`] when not set.
fn validate_security_tooling_role(
    value: Option<String>,
    region: &Region,
    security_tooling: &AccountId,
    path: &Path,
) -> Result<RoleRef, Error> {
    let Some(r) = value else {
        return Ok(RoleRef::Name(DEFAULT_SECURITY_TOOLING_ROLE.to_owned()));
    };
    parse_role(&r, region, Some(("accounts.security_tooling", security_tooling))).map_err(|m| {
        field_error(
            path,
            "roles.security_tooling",
            m,
            &format!(
                "give a role name such as \"AWSControlTowerExecution\", or a role ARN in the Security Tooling account: \"arn:{}:iam::{security_tooling}:role/<name>\"",
                region.partition()
            ),
        )
    })
}

/// `roles.log_archive`, when set: a role name, or a role ARN in the Log
/// Archive account.
fn validate_log_archive_role(
    value: Option<String>,
    region: &Region,
    log_archive: &AccountId,
    path: &Path,
) -> Result<Option<RoleRef>, Error> {
    value
        .map(|r| {
            parse_role(&r, region, Some(("accounts.log_archive", log_archive))).map_err(|m| {
                field_error(
                    path,
                    "roles.log_archive",
                    m,
                    &format!(
                        "give a role name such as \"TrailkeyLogArchiveRead\", or a role ARN in the Log Archive account: \"arn:{}:iam::{log_archive}:role/<name>\"",
                        region.partition()
                    ),
                )
            })
        })
        .transpose()
}

/// `roles.management`, when set: a full role ARN, in `accounts.management`
/// when that is set.
fn validate_management_role(
    value: Option<String>,
    region: &Region,
    management: Option<&AccountId>,
    path: &Path,
) -> Result<Option<String>, Error> {
    value
        .map(|r| {
            let wrong = |message: String, name: &str| {
                let account =
                    management.map_or("<management account>".to_owned(), ToString::to_string);
                field_error(
                    path,
                    "roles.management",
                    message,
                    &format!(
                        "write it as \"arn:{}:iam::{account}:role/{name}\", the role in the management account that trailkey assumes for the CloudTrail, Organizations and STS calls",
                        region.partition()
                    ),
                )
            };
            let checked_against = management.map(|m| ("accounts.management", m));
            match parse_role(&r, region, checked_against) {
                Ok(RoleRef::Arn(a)) => Ok(a),
                Ok(RoleRef::Name(n)) => Err(wrong(
                    format!("{r:?} is a role name; the management role must be a full role ARN"),
                    &n,
                )),
                Err(m) => Err(wrong(m, "<name>")),
            }
        })
        .transpose()
}

/// `trail.name`: required, a trail name or ARN.
fn validate_trail_name(
    name: Option<String>,
    region: &Region,
    management: Option<&AccountId>,
    path: &Path,
) -> Result<TrailRef, Error> {
    let name = name.ok_or_else(|| {
        field_error(
            path,
            "trail.name",
            "trail.name is required".to_owned(),
            "add [trail] with name = \"<organization trail name or ARN>\" (see `aws cloudtrail describe-trails`)",
        )
    })?;
    parse_trail(&name, region, management).map_err(|(m, h)| field_error(path, "trail.name", m, &h))
}

/// The tags the key must carry: those of `[key.tags]`, checked against the
/// KMS rules and never one trailkey sets, plus trailkey's own.
fn validate_tags(
    configured: &BTreeMap<String, String>,
    alias: &AliasName,
    path: &Path,
) -> Result<BTreeMap<String, String>, Error> {
    let mut tags = BTreeMap::new();
    for (k, v) in configured {
        check_tag(k, v).map_err(|m| {
            field_error(
                path,
                &format!("key.tags.{k}"),
                m,
                "tag keys are 1-128 characters and values up to 256, of letters, digits, spaces and _ . : / = + - @; keys may not start with \"aws:\"",
            )
        })?;
        if k == MANAGED_BY_TAG.0 || k.to_lowercase().starts_with(RESERVED_TAG_PREFIX) {
            return Err(field_error(
                path,
                &format!("key.tags.{k}"),
                format!("the tag {k:?} is set by trailkey itself"),
                "remove it from [key.tags]: ManagedBy and every tag key starting with \"trailkey:\" are trailkey's own",
            ));
        }
        tags.insert(k.clone(), v.clone());
    }
    let own = TRAILKEY_TAGS.len();
    if tags.len() + own > MAX_KEY_TAGS {
        return Err(field_error(
            path,
            "key.tags",
            format!(
                "{} tags, with trailkey's own {own} ({}, {ALIAS_TAG}, {}), make {}: over KMS's limit of {MAX_KEY_TAGS} tags per key",
                tags.len(),
                MANAGED_BY_TAG.0,
                CREATED_TAG.0,
                tags.len() + own
            ),
            &format!(
                "keep at most {} tags in [key.tags] (\"Tags in AWS KMS\", AWS KMS Developer Guide)",
                MAX_KEY_TAGS - own
            ),
        ));
    }
    tags.insert(MANAGED_BY_TAG.0.to_owned(), MANAGED_BY_TAG.1.to_owned());
    tags.insert(ALIAS_TAG.to_owned(), alias.short().to_owned());
    Ok(tags)
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
    home: &Region,
    account: Option<(&str, &AccountId)>,
) -> Result<RoleRef, String> {
    let partition = home.partition();
    if let Some(rest) = value.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [p, service, region, acct, resource] = parts[..] else {
            return Err(format!("{value:?} is not a valid role ARN"));
        };
        let role_name = resource
            .strip_prefix("role/")
            .and_then(|path| path.rsplit('/').next())
            .unwrap_or_default();
        if service != "iam" || !region.is_empty() || !valid_role_name(role_name) {
            return Err(format!(
                "{value:?} is not an IAM role ARN (arn:{partition}:iam::<account>:role/<name>)"
            ));
        }
        if p != partition {
            return Err(format!(
                "{value:?} is in partition {p:?}, but region {home} is in {partition:?}"
            ));
        }
        let Some(acct_id) = AccountId::parse(acct) else {
            return Err(format!("{value:?} does not contain a 12-digit account ID"));
        };
        if let Some((field, expected)) = account
            && &acct_id != expected
        {
            return Err(format!(
                "{value:?} is in account {acct_id}, but {field} is {expected}; the role must be in that account"
            ));
        }
        return Ok(RoleRef::Arn(value.to_owned()));
    }
    if !valid_role_name(value) {
        return Err(format!(
            "{value:?} is not a valid IAM role name (1-64 characters: letters, digits and +=,.@_-)"
        ));
    }
    Ok(RoleRef::Name(value.to_owned()))
}

/// IAM's rule for role names: 1-64 letters, digits and `+=,.@_-`.
fn valid_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
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
                format!(
                    "use arn:{}:cloudtrail:{region}:<management account>:trail/<name> as `aws cloudtrail describe-trails` shows it, or just the trail name",
                    region.partition()
                ),
            )
        };
        let [p, service, trail_region, acct, resource] = parts[..] else {
            return Err(bad());
        };
        let name = resource.strip_prefix("trail/").ok_or_else(bad)?;
        if service == "cloudtrail" && in_ip_address_format(name) {
            return Err(ip_address_name(name));
        }
        if service != "cloudtrail" || !valid_trail_name(name) {
            return Err(bad());
        }
        let Some(acct_id) = AccountId::parse(acct) else {
            return Err(bad());
        };
        let home = Region::check(trail_region)
            .map_err(|e| (format!("in the trail ARN, {}", e.message), e.hint))?;
        if p != home.partition() {
            return Err((
                format!(
                    "the trail ARN is in partition {p:?}, but its Region {home} is in {:?}",
                    home.partition()
                ),
                "copy the trail ARN from `aws cloudtrail describe-trails`, or give just the trail name".to_owned(),
            ));
        }
        if home != *region {
            let partition_note = if home.partition() == region.partition() {
                String::new()
            } else {
                format!(
                    " (the trail is in partition {:?}, region {region} in {:?})",
                    home.partition(),
                    region.partition()
                )
            };
            return Err((
                format!(
                    "the trail's home Region is {home}, but region is {region}{partition_note}"
                ),
                format!(
                    "the key must be created in the trail's home Region: set region = \"{home}\""
                ),
            ));
        }
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
    if in_ip_address_format(value) {
        return Err(ip_address_name(value));
    }
    if !valid_trail_name(value) {
        return Err((
            format!("{value:?} is not a valid trail name"),
            "a trail name is 3-128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit, with no two of '._-' in a row; or give the trail ARN (see `aws cloudtrail describe-trails`)".to_owned(),
        ));
    }
    Ok(TrailRef::Name(value.to_owned()))
}

/// CloudTrail's rule for trail names: 3-128 ASCII letters, digits, `.`, `_`
/// and `-`, starting and ending with a letter or digit, no two of `._-` in a
/// row, and not in IP address format.
fn valid_trail_name(name: &str) -> bool {
    let punct = |c: char| "._-".contains(c);
    !in_ip_address_format(name)
        && (3..=128).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || punct(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name
            .as_bytes()
            .windows(2)
            .any(|w| punct(w[0] as char) && punct(w[1] as char))
}

/// "Not be in IP address format (for example, 192.168.5.4)" (CloudTrail's
/// `CreateTrail` and `UpdateTrail` `Name`): the format is the shape, four
/// numbers of one to three digits joined by dots, whatever their values, so
/// `10.0.0.256` is in it too. Three numbers (`1.2.3`) or five are not, nor
/// is a name with a letter among its dots (`org.trail-1`).
fn in_ip_address_format(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The error for a trail name in IP address format.
fn ip_address_name(name: &str) -> (String, String) {
    (
        format!(
            "{name:?} is not a valid trail name: it is in IP address format (four numbers joined by dots, like 192.168.5.4), which CloudTrail does not allow"
        ),
        "give the organization trail's name or ARN as `aws cloudtrail describe-trails` shows it; a trail name may contain dots, but not be four numbers joined by dots".to_owned(),
    )
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
    // KMS tags: Unicode letters, digits, spaces and _ . : / = + - @
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    if let Some(c) = key.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "tag key {key:?} contains {c:?}, which a tag may not contain"
        ));
    }
    if let Some(c) = value.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "the value of tag {key:?} contains {c:?}, which a tag may not contain"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Desired, Error> {
        parse(Path::new("t.toml"), text.as_bytes())
    }

    fn config_error(text: &str) -> (Option<String>, String, String) {
        match parse_str(text) {
            Err(Error::Config {
                field,
                message,
                hint,
                ..
            }) => (field, message, hint),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    const MINIMAL: &str = "[accounts]\nsecurity_tooling = \"111111111111\"\nlog_archive = \"222222222222\"\n[trail]\nname = \"org-trail\"\n";

    #[test]
    fn known_regions_are_well_formed_unique_and_in_the_right_partition() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, partition) in KNOWN_REGIONS {
            assert!(Region::well_formed(name), "{name}");
            assert!(seen.insert(name), "{name} listed twice");
            let expected = [
                ("us-gov-", "aws-us-gov"),
                ("cn-", "aws-cn"),
                ("us-isob-", "aws-iso-b"),
                ("us-isof-", "aws-iso-f"),
                ("us-iso-", "aws-iso"),
                ("eu-isoe-", "aws-iso-e"),
                ("eusc-", "aws-eusc"),
            ]
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or("aws", |(_, p)| p);
            assert_eq!(*partition, expected, "{name}");
            let region = Region::parse(name).unwrap();
            assert_eq!(region.as_str(), *name);
            assert_eq!(region.partition(), *partition);
        }
        assert!(KNOWN_REGIONS.len() >= 48);
    }

    #[test]
    fn region_check_tells_a_bad_shape_from_an_unknown_region_and_suggests_typos() {
        let shape = Region::check("US East 1").unwrap_err();
        assert!(
            shape.message.contains("not an AWS Region name"),
            "{shape:?}"
        );
        let unknown = Region::check("us-east-9").unwrap_err();
        assert!(unknown.message.contains("looks like a Region name"));
        assert!(unknown.hint.contains("aws ec2 describe-regions"));
        assert!(unknown.hint.contains("newer trailkey"));
        assert!(!unknown.hint.contains("did you mean"));
        let typo = Region::check("us-esat-1").unwrap_err();
        assert!(
            typo.hint
                .starts_with("did you mean region = \"us-east-1\"?"),
            "{typo:?}"
        );
        assert!(Region::check("moon-base-1").is_err());
        assert!(Region::check("").is_err());
        assert!(
            Region::check("aws-global").is_err(),
            "pseudo-Regions are refused"
        );
    }

    #[test]
    fn a_config_using_every_key_is_accepted() {
        let d = parse_str(
            "region = \"us-gov-west-1\"\nct_key_alias = \"alias/org/cloudtrail_key-1\"\n\
             [accounts]\nsecurity_tooling = \"011111111111\"\nlog_archive = \"222222222222\"\nmanagement = \"333333333333\"\n\
             [roles]\nsecurity_tooling = \"arn:aws-us-gov:iam::011111111111:role/path/to/Admin\"\n\
             management = \"arn:aws-us-gov:iam::333333333333:role/TrailkeyRunner\"\n\
             [trail]\nname = \"arn:aws-us-gov:cloudtrail:us-gov-west-1:333333333333:trail/org.trail_1\"\n\
             organization_trail = true\nallow_control_tower = false\n\
             [key]\nrotation = false\ntags = { \"Cost Center\" = \"sécurité\", \"team/owner\" = \"a+b=c@d\" }\n",
        )
        .unwrap();
        assert_eq!(d.partition(), "aws-us-gov");
        assert_eq!(d.security_tooling.as_str(), "011111111111");
        assert_eq!(d.alias.full(), "alias/org/cloudtrail_key-1");
        assert!(!d.rotation);
        assert_eq!(d.tags.len(), 4);
        assert_eq!(
            d.security_tooling_role_arn(),
            "arn:aws-us-gov:iam::011111111111:role/path/to/Admin"
        );
    }

    #[test]
    fn partitions_outside_aws_have_their_own_arns() {
        for (region, partition) in [
            ("cn-north-1", "aws-cn"),
            ("us-isof-south-1", "aws-iso-f"),
            ("eu-isoe-west-1", "aws-iso-e"),
            ("eusc-de-east-1", "aws-eusc"),
        ] {
            let d = parse_str(&format!("region = \"{region}\"\n{MINIMAL}")).unwrap();
            assert_eq!(d.partition(), partition);
            assert!(
                d.security_tooling_role_arn()
                    .starts_with(&format!("arn:{partition}:iam::"))
            );
        }
    }

    #[test]
    fn sections_must_be_tables_not_lists() {
        // serde would otherwise fill the fields of [accounts] from the list, in order.
        let (field, message, hint) = config_error(
            "accounts = [\"111111111111\", \"222222222222\", \"333333333333\"]\n[trail]\nname = \"org-trail\"\n",
        );
        assert_eq!(field.as_deref(), Some("accounts"));
        assert!(message.contains("must be a table"), "{message}");
        assert!(hint.contains("[accounts]"), "{hint}");
        let (field, ..) = config_error(&format!("key = [true]\n{MINIMAL}"));
        assert_eq!(field.as_deref(), Some("key"));
    }

    #[test]
    fn trail_names_and_role_arns_follow_the_aws_rules() {
        for bad in ["my--trail", "a.-b", "-abc", "ab", "org trail", "trail."] {
            let (field, ..) = config_error(&MINIMAL.replace("org-trail", bad));
            assert_eq!(field.as_deref(), Some("trail.name"), "{bad}");
        }
        for good in ["a.b_c-d", "abc", "Org-Trail-2"] {
            parse_str(&MINIMAL.replace("org-trail", good)).unwrap();
        }
        let (_, message, _) = config_error(&MINIMAL.replace(
            "org-trail",
            "arn:aws:cloudtrail:us-east-1:333333333333:trail/bad name",
        ));
        assert!(message.contains("not a CloudTrail trail ARN"), "{message}");
        for bad in [
            "arn:aws:iam::111111111111:role/",
            "arn:aws:iam::111111111111:user/Admin",
            "arn:aws:iam:us-east-1:111111111111:role/Admin",
            "arn:aws:sts::111111111111:role/Admin",
        ] {
            let (field, ..) =
                config_error(&format!("{MINIMAL}[roles]\nsecurity_tooling = \"{bad}\"\n"));
            assert_eq!(field.as_deref(), Some("roles.security_tooling"), "{bad}");
        }
    }

    /// CloudTrail: a trail name must "Not be in IP address format (for
    /// example, 192.168.5.4)".
    #[test]
    fn a_trail_name_in_ip_address_format_is_refused() {
        for bad in [
            "192.168.5.4",
            "10.0.0.256",
            "0.0.0.0",
            "001.02.3.4",
            "999.999.999.999",
        ] {
            let (field, message, hint) = config_error(&MINIMAL.replace("org-trail", bad));
            assert_eq!(field.as_deref(), Some("trail.name"), "{bad}");
            assert!(
                message.contains(&format!(
                    "{bad:?} is not a valid trail name: it is in IP address format"
                )),
                "{bad}: {message}"
            );
            assert!(
                hint.contains("aws cloudtrail describe-trails"),
                "{bad}: {hint}"
            );
            // In an ARN too.
            let arn = format!("arn:aws:cloudtrail:us-east-1:333333333333:trail/{bad}");
            let (field, message, _) = config_error(&MINIMAL.replace("org-trail", &arn));
            assert_eq!(field.as_deref(), Some("trail.name"), "{arn}");
            assert!(message.contains("IP address format"), "{arn}: {message}");
        }
        for good in [
            "1.2.3",
            "1.2.3.4.5",
            "1234.1.1.1",
            "org.trail-1",
            "192.168.5.a4",
            "a192.168.5.4",
            "192.168.5.4-trail",
            "192_168_5_4",
        ] {
            parse_str(&MINIMAL.replace("org-trail", good))
                .unwrap_or_else(|e| panic!("{good}: {}", e.render()));
        }
    }

    #[test]
    fn the_log_archive_role_is_a_name_or_an_arn_in_the_log_archive_account() {
        let d = parse_str(MINIMAL).unwrap();
        assert_eq!(d.log_archive_role_arn(), None);
        let d = parse_str(&format!("{MINIMAL}[roles]\nlog_archive = \"LogReader\"\n")).unwrap();
        assert_eq!(
            d.log_archive_role_arn().as_deref(),
            Some("arn:aws:iam::222222222222:role/LogReader")
        );
        let arn = "arn:aws:iam::222222222222:role/path/LogReader";
        let d = parse_str(&format!("{MINIMAL}[roles]\nlog_archive = \"{arn}\"\n")).unwrap();
        assert_eq!(d.log_archive_role_arn().as_deref(), Some(arn));
        for (bad, needle) in [
            (
                "arn:aws:iam::111111111111:role/LogReader",
                "but accounts.log_archive is 222222222222",
            ),
            ("arn:aws-cn:iam::222222222222:role/LogReader", "partition"),
            (
                "arn:aws:iam::222222222222:user/LogReader",
                "not an IAM role ARN",
            ),
            ("Log Reader", "not a valid IAM role name"),
            ("", "not a valid IAM role name"),
        ] {
            let (field, message, hint) =
                config_error(&format!("{MINIMAL}[roles]\nlog_archive = \"{bad}\"\n"));
            assert_eq!(field.as_deref(), Some("roles.log_archive"), "{bad}");
            assert!(message.contains(needle), "{bad}: {message}");
            assert!(
                hint.contains("arn:aws:iam::222222222222:role/<name>"),
                "{bad}: {hint}"
            );
        }
    }

    #[test]
    fn principals_are_compared_as_iam_compares_them() {
        let p = |arn: &str| Principal::parse(arn, "aws").unwrap();
        let siem = p("arn:aws:iam::444455556666:role/SIEM");
        assert!(siem.same_as(&p("arn:aws:iam::444455556666:role/siem")));
        assert!(siem.same_as(&p("arn:aws:iam::444455556666:role/tools/Siem")));
        assert!(!siem.same_as(&p("arn:aws:iam::444455556666:user/SIEM")));
        assert!(!siem.same_as(&p("arn:aws:iam::555566667777:role/SIEM")));
        assert!(!siem.same_as(&p("arn:aws:iam::444455556666:role/SIEM2")));
        let readers = Readers {
            accounts: Vec::new(),
            principals: vec![siem],
        };
        assert!(readers.covers(&p("arn:aws:iam::444455556666:role/siem")));
    }

    #[test]
    fn config_tags_and_trailkeys_own_stay_within_kmss_fifty() {
        let tags = |n: usize| {
            (0..n)
                .map(|i| format!("t{i} = \"v\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ok = format!("{MINIMAL}[key]\ntags = {{ {} }}\n", tags(47));
        assert_eq!(
            parse(Path::new("t.toml"), ok.as_bytes())
                .unwrap()
                .tags
                .len(),
            49
        );
        let (field, message, hint) =
            config_error(&format!("{MINIMAL}[key]\ntags = {{ {} }}\n", tags(48)));
        assert_eq!(field.as_deref(), Some("key.tags"));
        assert!(
            message.contains("48 tags, with trailkey's own 3"),
            "{message}"
        );
        assert!(
            message.contains("make 51: over KMS's limit of 50"),
            "{message}"
        );
        assert!(hint.contains("at most 47 tags"), "{hint}");
    }

    #[test]
    fn tags_follow_the_kms_rules() {
        for (tags, needle) in [
            ("{ \"aws:x\" = \"v\" }", "reserves"),
            ("{ \"AWS:x\" = \"v\" }", "reserves"),
            ("{ ManagedBy = \"v\" }", "set by trailkey"),
            ("{ \"trailkey:alias\" = \"v\" }", "set by trailkey"),
            ("{ \"trailkey:created\" = \"true\" }", "set by trailkey"),
            ("{ \"TrailKey:Created\" = \"true\" }", "set by trailkey"),
            ("{ \"trailkey:anything\" = \"v\" }", "set by trailkey"),
            ("{ \"a\\nb\" = \"v\" }", "may not contain"),
            ("{ k = \"semi;colon\" }", "may not contain"),
            ("{ \"\" = \"v\" }", "1-128"),
        ] {
            let (field, message, _) = config_error(&format!("{MINIMAL}[key]\ntags = {tags}\n"));
            assert!(field.unwrap().starts_with("key.tags."), "{tags}");
            assert!(message.contains(needle), "{tags}: {message}");
        }
    }

    #[test]
    fn type_errors_get_a_hint_for_the_field() {
        let (field, message, hint) = config_error(&format!("{MINIMAL}[key]\ntags = [\"a\"]\n"));
        assert_eq!(field.as_deref(), Some("key.tags"));
        assert!(!message.contains("map"), "{message}");
        assert!(hint.contains("tags = {"), "{hint}");
        let (_, _, hint) = config_error(&format!("region = 1\n{MINIMAL}"));
        assert!(hint.contains("region = \"us-east-1\""), "{hint}");
    }

    #[test]
    fn positions_count_characters_and_never_split_one() {
        // A multi-byte character before the error: the column is in characters.
        let (_, message, _) = config_error("# é ✓\nct_key_alias = \"é\" region = 1\n");
        assert!(message.contains("line 2, column 20"), "{message}");
        assert_eq!(floor_char_boundary("é", 1), 0);
        assert_eq!(floor_char_boundary("é", 99), 2);
    }

    #[test]
    fn load_reads_no_more_than_the_limit() {
        let started = std::time::Instant::now();
        match load(Path::new("/dev/zero")) {
            Err(Error::Config { message, .. }) => assert!(message.contains("larger than")),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn an_empty_or_comment_only_file_says_so() {
        for text in ["", "\n\n", "# just a comment\n   # another\n"] {
            let (field, message, hint) = config_error(text);
            assert_eq!(field.as_deref(), Some("accounts"));
            assert!(message.contains("no settings"), "{message}");
            assert!(hint.contains("config/trailkey.example.toml"));
        }
    }

    #[test]
    fn principals_are_role_or_user_arns_with_an_optional_path() {
        for ok in [
            "arn:aws:iam::444455556666:role/SIEM",
            "arn:aws:iam::444455556666:role/service-role/team/SIEM",
            "arn:aws:iam::444455556666:user/auditor",
            "arn:aws:iam::444455556666:role/a+b=c,d.e@f_g-h",
        ] {
            let p = Principal::parse(ok, "aws").unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(p.arn, ok);
            assert_eq!(p.account.as_str(), "444455556666");
        }
        assert_eq!(
            Principal::parse("arn:aws:iam::444455556666:role/team/SIEM", "aws")
                .unwrap()
                .name,
            "SIEM"
        );
        for bad in [
            "SIEM",
            "arn:aws:iam::444455556666:role/",
            "arn:aws:iam::444455556666:role/*",
            "arn:aws:iam::44445555666:role/SIEM",
            "arn:aws:iam::444455556666:group/SIEM",
            "arn:aws:iam::444455556666:root",
            "arn:aws:iam:us-east-1:444455556666:role/SIEM",
            "arn:aws:sts::444455556666:assumed-role/SIEM/s",
            "arn:aws-cn:iam::444455556666:role/SIEM",
            "arn:aws:iam::444455556666:role/name with space",
            &format!("arn:aws:iam::444455556666:role/{}", "x".repeat(65)),
        ] {
            assert!(Principal::parse(bad, "aws").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_protection_exempts_trailkeys_role_by_name_with_any_path_and_the_admins() {
        let d = parse_str(&format!(
            "{MINIMAL}[key]\nprotect = true\nadmins = [\"arn:aws:iam::111111111111:user/breakglass\"]\n"
        ))
        .unwrap();
        assert_eq!(
            d.protect_exempt().unwrap(),
            [
                "arn:aws:iam::111111111111:role/AWSControlTowerExecution",
                "arn:aws:iam::111111111111:role/*/AWSControlTowerExecution",
                "arn:aws:iam::111111111111:user/breakglass",
            ]
        );
        // A role given by ARN with a path: exempt by its name all the same.
        let d = parse_str(&format!(
            "{MINIMAL}[roles]\nsecurity_tooling = \"arn:aws:iam::111111111111:role/ops/Trailkey\"\n[key]\nprotect = true\n"
        ))
        .unwrap();
        let exempt = d.protect_exempt().unwrap();
        assert!(crate::policy::protect_exempts(
            &exempt,
            "arn:aws:iam::111111111111:role/ops/Trailkey"
        ));
        assert!(!crate::policy::protect_exempts(
            &exempt,
            "arn:aws:iam::111111111111:role/ops/Other"
        ));
        assert_eq!(parse_str(MINIMAL).unwrap().protect_exempt(), None);
    }
}
