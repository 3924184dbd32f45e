//! Configuration: the TOML file as written ([`RawConfig`]) and the validated,
//! typed [`Desired`] state the rest of trailkey works from.
//!
//! Parsing is two-stage, in the ripgrep/uv spirit: `serde` reads the file into
//! a raw struct that rejects unknown keys, then [`RawConfig::validate`] turns
//! it into a [`Desired`] whose fields cannot hold an invalid value. Nothing
//! downstream re-checks input, and no AWS call happens before this succeeds.

mod diagnose;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Error;
pub use crate::model::tags::*;
pub use crate::model::{
    AccountId, AliasName, KNOWN_REGIONS, Principal, PrincipalKind, Region, RegionError, RoleRef,
    TrailRef,
};
use diagnose::{toml_error, type_hint};
pub use raw::RawConfig;
pub use validate::CONTROL_TOWER_TRAIL;

/// Default alias name (without the `alias/` prefix), as in the cloud-foundations template.
pub const DEFAULT_ALIAS: &str = "cloudtrail-org-key";
/// `-c/--config` when not given.
pub const DEFAULT_CONFIG: &str = "trailkey.toml";
/// Default trail home Region, as in the cloud-foundations template.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default role assumed in the Security Tooling account (Control Tower landing zones).
pub const DEFAULT_SECURITY_TOOLING_ROLE: &str = "AWSControlTowerExecution";

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
    /// `[control_tower] landing_zone`: the trail is Control Tower's own, its
    /// key is in the management account, and the landing zone's manifest
    /// points the trail at the key (`UpdateLandingZone`).
    pub landing_zone: bool,
    /// The account the key is in: Security Tooling, or with `landing_zone`
    /// the management account.
    pub key_account: AccountId,
    pub rotation: bool,
    /// `key.rotation_period_days`: the days between automatic rotations
    /// that rotation is set to; `None` leaves the period as it is (KMS's
    /// default, 365 days, for a key trailkey turns rotation on for).
    pub rotation_period_days: Option<i32>,
    /// Tags the key must carry: `ManagedBy = trailkey`, the alias tag, and the configured ones.
    pub tags: BTreeMap<String, String>,
    /// `trail.log_file_validation`: `Some(true)` turns it on, `Some(false)`
    /// leaves it as it is, `None` leaves it too but reports it when off.
    pub log_file_validation: Option<bool>,
    /// `trail.logging`: `Some(true)` starts a stopped trail (`StartLogging`),
    /// `Some(false)` leaves logging as it is, `None` leaves it too but warns
    /// when the trail is stopped.
    pub logging: Option<bool>,
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

/// At most this many `[readers]` entries (accounts and principals together):
/// each is one principal of a key policy statement, and KMS keeps key
/// policies under 32 KB (see also [`MAX_READERS_BYTES`]).
pub const MAX_READERS: usize = 50;
/// At most this many bytes of reader ARNs (each quoted, with its comma):
/// with trailkey's other statements (about 3 KB, and the protection's
/// exempt list twice with a rotation period) the policy stays well
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
        let own_role = if self.landing_zone {
            // Validation requires roles.management for the protection here.
            self.management_role.as_deref().unwrap_or_default()
        } else {
            ""
        };
        let role = match &self.security_tooling_role {
            _ if self.landing_zone => own_role.rsplit('/').next().unwrap_or(own_role).to_owned(),
            RoleRef::Name(n) => n.clone(),
            RoleRef::Arn(a) => a.rsplit('/').next().unwrap_or(a).to_owned(),
        };
        let account = &self.key_account;
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
    for section in ["accounts", "roles", "trail", "key", "control_tower"] {
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
