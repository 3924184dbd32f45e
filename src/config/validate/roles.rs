//! `[roles]`: the role trailkey assumes in each account.

use super::{Accounts, field_error};
use crate::config::raw::RawRoles;
use crate::config::*;

/// A validated `[roles]` table.
pub(super) struct Roles {
    pub(super) security_tooling: RoleRef,
    pub(super) management: Option<String>,
    pub(super) log_archive: Option<RoleRef>,
}

pub(super) fn validate_roles(
    raw: RawRoles,
    region: &Region,
    accounts: &Accounts,
    path: &Path,
) -> Result<Roles, Error> {
    Ok(Roles {
        security_tooling: validate_security_tooling_role(
            raw.security_tooling,
            region,
            &accounts.security_tooling,
            path,
        )?,
        management: validate_management_role(
            raw.management,
            region,
            accounts.management.as_ref(),
            path,
        )?,
        log_archive: validate_log_archive_role(
            raw.log_archive,
            region,
            &accounts.log_archive,
            path,
        )?,
    })
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
        if service != "iam" || !region.is_empty() || !crate::model::valid_iam_name(role_name) {
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
    if !crate::model::valid_iam_name(value) {
        return Err(format!(
            "{value:?} is not a valid IAM role name (1-64 characters: letters, digits and +=,.@_-)"
        ));
    }
    Ok(RoleRef::Name(value.to_owned()))
}
