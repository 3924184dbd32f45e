//! The raw config checked value by value into a [`Desired`]: a file for
//! each table (`accounts`, `roles`, `trail`, `key`, `readers`), and here
//! the whole and what the tables share.

mod accounts;
mod control_tower;
mod key;
mod readers;
mod roles;
mod trail;

use std::path::Path;

use super::raw::*;
use super::*;
use crate::error::Error;
use accounts::validate_accounts;
pub use control_tower::CONTROL_TOWER_TRAIL;
use control_tower::{key_account, validate_control_tower};
use key::{validate_protect, validate_rotation_period, validate_tags};
use readers::validate_readers;
use roles::validate_roles;
use trail::validate_trail;

impl RawConfig {
    /// Checks every value and builds the typed [`Desired`].
    pub fn validate(mut self, path: &Path) -> Result<Desired, Error> {
        let landing_zone = validate_control_tower(&mut self, path)?;
        let region_text = self.region.as_deref().unwrap_or(DEFAULT_REGION);
        let region = Region::check(region_text)
            .map_err(|e| field_error(path, "region", e.message, &e.hint))?;

        let alias = AliasName::parse(self.ct_key_alias.as_deref().unwrap_or(DEFAULT_ALIAS))
            .map_err(|m| {
                field_error(
                    path,
                    "ct_key_alias",
                    m,
                    "use a name such as \"cloudtrail-org-key\": at most 250 letters, digits, '/', '_' and '-', not starting with \"aws/\"",
                )
            })?;

        let accounts = validate_accounts(self.accounts, path)?;
        let roles = validate_roles(self.roles, &region, &accounts, path)?;
        let trail = validate_trail(self.trail, &region, &accounts, path)?;
        let tags = validate_tags(&self.key.tags, &alias, path)?;
        let readers = validate_readers(self.readers, &region, &accounts, path)?;
        let key_account = key_account(
            landing_zone,
            &accounts,
            self.key.protect == Some(true),
            roles.management.as_deref(),
            path,
        )?;
        let protect = validate_protect(
            self.key.protect,
            self.key.admins,
            &region,
            &key_account,
            path,
        )?;

        let rotation = self.key.rotation.unwrap_or(true);
        let rotation_period_days =
            validate_rotation_period(self.key.rotation_period_days, rotation, path)?;

        let desired = Desired {
            source: path.to_owned(),
            region,
            alias,
            security_tooling: accounts.security_tooling,
            log_archive: accounts.log_archive,
            management: accounts.management,
            security_tooling_role: roles.security_tooling,
            management_role: roles.management,
            log_archive_role: roles.log_archive,
            trail: trail.name,
            organization_trail: trail.organization_trail,
            allow_control_tower: trail.allow_control_tower,
            landing_zone,
            key_account,
            rotation,
            rotation_period_days,
            tags,
            log_file_validation: trail.log_file_validation,
            logging: trail.logging,
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
    let role = match &desired.management_role {
        Some(role) if desired.landing_zone => role.clone(),
        _ => desired.security_tooling_role_arn(),
    };
    let (head, name) = role.rsplit_once('/').unwrap_or((role.as_str(), ""));
    let under_a_path = format!("{head}/a/path/{name}");
    for arn in [role.as_str(), under_a_path.as_str()] {
        if !crate::policy::protect_exempts(&exempt, arn) {
            return Err(field_error(
                path,
                "key.protect",
                format!("the protection would deny trailkey's own role {arn}"),
                if desired.landing_zone {
                    "set roles.management to the role trailkey runs as in the management account"
                } else {
                    "set roles.security_tooling to the role trailkey assumes, by name or ARN"
                },
            ));
        }
    }
    Ok(())
}

/// The account IDs of a validated `[accounts]` table.
pub(super) struct Accounts {
    pub(super) security_tooling: AccountId,
    pub(super) log_archive: AccountId,
    pub(super) management: Option<AccountId>,
}

/// `value`, which the field `field` must give; without it, the error
/// `message`, with `hint`.
pub(super) fn required<T>(
    value: Option<T>,
    path: &Path,
    field: &str,
    message: &str,
    hint: &str,
) -> Result<T, Error> {
    value.ok_or_else(|| field_error(path, field, message.to_owned(), hint))
}

/// A config error about `field` of the file at `path`.
pub(super) fn field_error(path: &Path, field: &str, message: String, hint: &str) -> Error {
    Error::config(path, Some(field.to_owned()), message, hint.to_owned())
}

/// A list field whose entries are each given once: `list` names the field
/// (absent: an empty list) and `what` an entry, for the hint. Every entry
/// is parsed by `parse` from its field name (`list[i]`) and value, then
/// looked for among the entries before it by `repeats`, which says how it
/// repeats one of them.
pub(super) fn each_once<T>(
    values: Option<Vec<String>>,
    (list, what): (&str, &str),
    path: &Path,
    mut parse: impl FnMut(&str, &str) -> Result<T, Error>,
    repeats: impl Fn(&str, &T, &[T]) -> Option<String>,
) -> Result<Vec<T>, Error> {
    let mut out = Vec::new();
    for (i, value) in values.unwrap_or_default().into_iter().enumerate() {
        let field = format!("{list}[{i}]");
        let entry = parse(&field, &value)?;
        if let Some(message) = repeats(&value, &entry, &out) {
            let hint = format!("list each {what} once");
            return Err(field_error(path, &field, message, &hint));
        }
        out.push(entry);
    }
    Ok(out)
}

/// What [`each_once`] says of an entry equal to one before it; `shown` is
/// the entry as the message shows it.
pub(super) fn listed_twice(shown: &str) -> String {
    format!("{shown} is listed twice")
}

/// `value`, the list entry `field`, as an IAM role or user ARN of the
/// Region's partition; `hint` says what to give.
pub(super) fn principal(
    path: &Path,
    field: &str,
    value: &str,
    region: &Region,
    hint: &str,
) -> Result<Principal, Error> {
    Principal::parse(value, region.partition()).map_err(|m| field_error(path, field, m, hint))
}
