//! `[accounts]`: the three account IDs, and which of them an account is.

use super::{Accounts, field_error, required};
use crate::config::raw::RawAccounts;
use crate::config::*;

/// Checks `[accounts]`: present, with the two required IDs, every ID well
/// formed, and no account given twice.
pub(super) fn validate_accounts(raw: Option<RawAccounts>, path: &Path) -> Result<Accounts, Error> {
    let accounts = required(
        raw,
        path,
        "accounts",
        "the [accounts] table is missing",
        "add [accounts] with security_tooling = \"<12-digit ID>\" and log_archive = \"<12-digit ID>\"",
    )?;
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
    let field = format!("accounts.{field}");
    let message = format!("{field} is required");
    required(
        value,
        path,
        &field,
        &message,
        "add it under [accounts] as a quoted 12-digit ID",
    )
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

/// Which of the config's own accounts `id` is, if any: those already read
/// the logs (Log Archive, management) or administer the key (Security
/// Tooling).
pub(super) fn covered_by(accounts: &Accounts, id: &AccountId) -> Option<&'static str> {
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
