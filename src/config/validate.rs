//! The raw config checked value by value into a [`Desired`].

use std::collections::BTreeMap;
use std::path::Path;

use super::raw::*;
use super::*;
use crate::error::Error;

impl RawConfig {
    /// Checks every value and builds the typed [`Desired`].
    pub fn validate(self, path: &Path) -> Result<Desired, Error> {
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
        let protect = validate_protect(
            self.key.protect,
            self.key.admins,
            &region,
            &accounts.security_tooling,
            path,
        )?;

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
            rotation: self.key.rotation.unwrap_or(true),
            tags,
            log_file_validation: trail.log_file_validation,
            readers,
            protect,
        };
        check_protect_exempts_trailkey(&desired, path)?;
        Ok(desired)
    }
}

/// A validated `[roles]` table.
struct Roles {
    security_tooling: RoleRef,
    management: Option<String>,
    log_archive: Option<RoleRef>,
}

fn validate_roles(
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

/// A validated `[trail]` table, its defaults filled in.
struct TrailSettings {
    name: TrailRef,
    organization_trail: bool,
    allow_control_tower: bool,
    log_file_validation: Option<bool>,
}

fn validate_trail(
    raw: Option<RawTrail>,
    region: &Region,
    accounts: &Accounts,
    path: &Path,
) -> Result<TrailSettings, Error> {
    let (name, organization_trail, allow_control_tower, log_file_validation) = match raw {
        Some(t) => (
            t.name,
            t.organization_trail,
            t.allow_control_tower,
            t.log_file_validation,
        ),
        None => (None, None, None, None),
    };
    Ok(TrailSettings {
        name: validate_trail_name(name, region, accounts.management.as_ref(), path)?,
        organization_trail: organization_trail.unwrap_or(true),
        allow_control_tower: allow_control_tower.unwrap_or(false),
        log_file_validation,
    })
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
    let accounts_read = reader_accounts(raw.accounts, accounts, path)?;
    let readers = Readers {
        principals: reader_principals(raw.principals, region, accounts, &accounts_read, path)?,
        accounts: accounts_read,
    };
    check_readers_size(&readers, region, path)?;
    Ok(readers)
}

/// The entries of the list field `list` (absent: none), each with its field
/// name, `list[i]`.
fn entries(values: Option<Vec<String>>, list: &str) -> impl Iterator<Item = (String, String)> {
    values
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(move |(i, value)| (format!("{list}[{i}]"), value))
}

/// The error for an entry given twice in one list; `shown` is the entry as
/// the message shows it.
fn listed_twice(path: &Path, field: &str, shown: &str, what: &str) -> Error {
    field_error(
        path,
        field,
        format!("{shown} is listed twice"),
        &format!("list each {what} once"),
    )
}

/// Which of the config's own accounts `id` is, if any: those already read
/// the logs (Log Archive, management) or administer the key (Security
/// Tooling).
fn covered_by(accounts: &Accounts, id: &AccountId) -> Option<&'static str> {
    if *id == accounts.log_archive {
        Some("accounts.log_archive")
    } else if accounts.management.as_ref() == Some(id) {
        Some("accounts.management")
    } else if *id == accounts.security_tooling {
        Some("accounts.security_tooling")
    } else {
        None
    }
}

/// `readers.accounts`: 12-digit IDs, each once, none of the config's own.
fn reader_accounts(
    raw: Option<Vec<String>>,
    accounts: &Accounts,
    path: &Path,
) -> Result<Vec<AccountId>, Error> {
    let mut out: Vec<AccountId> = Vec::new();
    for (field, value) in entries(raw, "readers.accounts") {
        let id = AccountId::parse(&value).ok_or_else(|| {
            field_error(
                path,
                &field,
                format!("{value:?} is not an AWS account ID (12 digits)"),
                "list account IDs as quoted 12-digit strings, e.g. accounts = [\"444455556666\"]",
            )
        })?;
        if let Some(other) = covered_by(accounts, &id) {
            return Err(field_error(
                path,
                &field,
                format!("{id} is {other}, which already reads the logs"),
                "remove it from readers.accounts: the Log Archive and management accounts are always readers, and the Security Tooling account administers the key",
            ));
        }
        if out.contains(&id) {
            return Err(listed_twice(path, &field, id.as_str(), "account"));
        }
        out.push(id);
    }
    Ok(out)
}

/// `readers.principals`: role or user ARNs of the Region's partition, each
/// once as IAM tells principals apart, none in an account that already
/// reads the logs.
fn reader_principals(
    raw: Option<Vec<String>>,
    region: &Region,
    accounts: &Accounts,
    reader_accounts: &[AccountId],
    path: &Path,
) -> Result<Vec<Principal>, Error> {
    let mut out: Vec<Principal> = Vec::new();
    for (field, value) in entries(raw, "readers.principals") {
        let principal = reader_principal(&field, &value, region, accounts, reader_accounts, path)?;
        match out.iter().find(|p| p.same_as(&principal)) {
            Some(first) if first.arn == principal.arn => {
                return Err(listed_twice(
                    path,
                    &field,
                    &format!("{value:?}"),
                    "principal",
                ));
            }
            Some(first) => {
                return Err(field_error(
                    path,
                    &field,
                    format!(
                        "{value:?} is {:?} again: IAM does not tell role and user names apart by case, nor a role by its path",
                        first.arn
                    ),
                    "list each principal once",
                ));
            }
            None => out.push(principal),
        }
    }
    Ok(out)
}

/// One of `readers.principals`: a role or user ARN of the Region's
/// partition, in no account that already reads the logs.
fn reader_principal(
    field: &str,
    value: &str,
    region: &Region,
    accounts: &Accounts,
    reader_accounts: &[AccountId],
    path: &Path,
) -> Result<Principal, Error> {
    let principal = Principal::parse(value, region.partition()).map_err(|m| {
        field_error(
            path,
            field,
            m,
            &format!(
                "give the role or user ARN as IAM shows it, e.g. \"arn:{}:iam::444455556666:role/SIEM\"; for a whole account, list its ID in readers.accounts",
                region.partition()
            ),
        )
    })?;
    let account = &principal.account;
    let redundant = covered_by(accounts, account)
        .map(|other| format!("{other} ({account})"))
        .or_else(|| {
            reader_accounts
                .contains(account)
                .then(|| format!("readers.accounts ({account})"))
        });
    match redundant {
        Some(by) => Err(field_error(
            path,
            field,
            format!("{value:?} is in {by}, whose root already reads the logs"),
            "remove it: a listed account's root lets that account's IAM policies grant kms:Decrypt to any of its roles (`trailkey policy --reader-iam` prints the policy the role needs)",
        )),
        None => Ok(principal),
    }
}

/// At most [`MAX_READERS`] readers and [`MAX_READERS_BYTES`] of their ARNs,
/// so that the key policy stays within KMS's 32 KB.
fn check_readers_size(readers: &Readers, region: &Region, path: &Path) -> Result<(), Error> {
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
    Ok(())
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
    for (field, value) in entries(Some(admins), "key.admins") {
        let admin = admin(&field, &value, region, security_tooling, &example, path)?;
        if out.contains(&admin) {
            return Err(listed_twice(path, &field, &format!("{value:?}"), "admin"));
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

/// One of `key.admins`: an IAM role or user ARN of the Security Tooling
/// account (KMS lets only the key's own account disable or delete it).
fn admin(
    field: &str,
    value: &str,
    region: &Region,
    security_tooling: &AccountId,
    example: &str,
    path: &Path,
) -> Result<Principal, Error> {
    let admin = Principal::parse(value, region.partition()).map_err(|m| {
        field_error(
            path,
            field,
            m,
            &format!(
                "give an IAM role or user ARN of the Security Tooling account, e.g. {example}"
            ),
        )
    })?;
    if admin.account != *security_tooling {
        return Err(field_error(
            path,
            field,
            format!(
                "{value:?} is in account {}, not the Security Tooling account {security_tooling}: KMS lets only the key's own account disable or delete it",
                admin.account
            ),
            &format!("give a role or user of the Security Tooling account, e.g. {example}"),
        ));
    }
    Ok(admin)
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

fn parse_trail(
    value: &str,
    region: &Region,
    management: Option<&AccountId>,
) -> Result<TrailRef, (String, String)> {
    if let Some(rest) = value.strip_prefix("arn:") {
        return parse_trail_arn(value, rest, region, management);
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

/// A trail named by ARN (`rest` is what follows `arn:`): a CloudTrail trail
/// ARN in `region`, of the management account when that is given.
fn parse_trail_arn(
    value: &str,
    rest: &str,
    region: &Region,
    management: Option<&AccountId>,
) -> Result<TrailRef, (String, String)> {
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
    check_trail_home(p, trail_region, region)?;
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
    Ok(TrailRef::Arn(value.to_owned()))
}

/// A trail ARN's partition `p` and Region `trail_region`: a Region of that
/// partition, and the configured `region` (where the key is created).
fn check_trail_home(p: &str, trail_region: &str, region: &Region) -> Result<(), (String, String)> {
    let home = Region::check(trail_region)
        .map_err(|e| (format!("in the trail ARN, {}", e.message), e.hint))?;
    if p != home.partition() {
        return Err((
            format!(
                "the trail ARN is in partition {p:?}, but its Region {home} is in {:?}",
                home.partition()
            ),
            "copy the trail ARN from `aws cloudtrail describe-trails`, or give just the trail name"
                .to_owned(),
        ));
    }
    if home == *region {
        return Ok(());
    }
    let partition_note = if home.partition() == region.partition() {
        String::new()
    } else {
        format!(
            " (the trail is in partition {:?}, region {region} in {:?})",
            home.partition(),
            region.partition()
        )
    };
    Err((
        format!("the trail's home Region is {home}, but region is {region}{partition_note}"),
        format!("the key must be created in the trail's home Region: set region = \"{home}\""),
    ))
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
