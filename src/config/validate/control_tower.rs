//! `[control_tower]`: with `landing_zone = true`, the trail is Control
//! Tower's own and the key is made in the management account; the settings
//! that only make sense for a trail of one's own are refused here, each
//! with the field to remove.

use super::{Accounts, field_error};
use crate::config::raw::{RawConfig, RawTrail};
use crate::config::*;

/// Control Tower's organization trail.
pub const CONTROL_TOWER_TRAIL: &str = "aws-controltower-BaselineCloudTrail";

/// Whether `[control_tower] landing_zone` is on; when it is, fills in
/// `trail.name` (Control Tower's trail) and refuses what contradicts it.
/// Runs before the other tables are checked, on the raw config.
pub(super) fn validate_control_tower(raw: &mut RawConfig, path: &Path) -> Result<bool, Error> {
    if raw.control_tower.landing_zone != Some(true) {
        return Ok(false);
    }
    let why = "with [control_tower] landing_zone = true";
    let trail = raw.trail.get_or_insert_with(RawTrail::default);
    if trail.allow_control_tower.is_some() {
        return Err(field_error(
            path,
            "trail.allow_control_tower",
            format!(
                "{why}, trailkey encrypts Control Tower's trail through the landing zone, never by changing the trail"
            ),
            "remove allow_control_tower from [trail]",
        ));
    }
    if trail.organization_trail == Some(false) {
        return Err(field_error(
            path,
            "trail.organization_trail",
            format!("{why}, the trail is Control Tower's organization trail"),
            "remove organization_trail from [trail]",
        ));
    }
    if trail.log_file_validation.is_some() {
        return Err(field_error(
            path,
            "trail.log_file_validation",
            format!(
                "{why}, Control Tower manages its trail's settings; trailkey sets only the landing zone's KMS key"
            ),
            "remove log_file_validation from [trail]",
        ));
    }
    if trail.logging.is_some() {
        return Err(field_error(
            path,
            "trail.logging",
            format!(
                "{why}, Control Tower manages whether its trail logs; trailkey sets only the landing zone's KMS key"
            ),
            "remove logging from [trail]",
        ));
    }
    match trail.name.as_deref() {
        None => trail.name = Some(CONTROL_TOWER_TRAIL.to_owned()),
        Some(name)
            if name == CONTROL_TOWER_TRAIL
                || name.ends_with(&format!(":trail/{CONTROL_TOWER_TRAIL}")) => {}
        Some(name) => {
            return Err(field_error(
                path,
                "trail.name",
                format!("{why}, the trail is Control Tower's, {CONTROL_TOWER_TRAIL}, not {name:?}"),
                "remove name from [trail] (it defaults to Control Tower's trail), or turn landing_zone off to encrypt a trail of your own",
            ));
        }
    }
    if raw.roles.security_tooling.is_some() {
        return Err(field_error(
            path,
            "roles.security_tooling",
            format!(
                "{why}, the key is in the management account: trailkey assumes no role in Security Tooling"
            ),
            "remove security_tooling from [roles]; set roles.management if trailkey should assume a role in the management account",
        ));
    }
    Ok(true)
}

/// With `landing_zone`, the management account must be named (the key is
/// made there), and `key.protect` needs `roles.management`, the role it
/// exempts as trailkey's own.
pub(super) fn key_account(
    landing_zone: bool,
    accounts: &Accounts,
    protect: bool,
    management_role: Option<&str>,
    path: &Path,
) -> Result<AccountId, Error> {
    if !landing_zone {
        return Ok(accounts.security_tooling.clone());
    }
    let Some(management) = &accounts.management else {
        return Err(field_error(
            path,
            "accounts.management",
            "with [control_tower] landing_zone = true, the key is made in the management account, which the config must name".to_owned(),
            "add management = \"<12-digit ID>\" to [accounts]: the account that runs Control Tower (`aws organizations describe-organization`)",
        ));
    };
    if protect && management_role.is_none() {
        return Err(field_error(
            path,
            "key.protect",
            "with [control_tower] landing_zone = true, the protection exempts trailkey's own role in the management account, and the config does not name it".to_owned(),
            "set roles.management to the role ARN trailkey runs as in the management account, or remove protect from [key]",
        ));
    }
    Ok(management.clone())
}
