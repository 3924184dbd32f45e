//! `[readers]`: the accounts and principals that may decrypt the log files.

use super::accounts::covered_by;
use super::{Accounts, each_once, field_error, listed_twice, principal};
use crate::config::raw::RawReaders;
use crate::config::*;

/// `[readers]`: accounts of 12 digits, IAM role or user ARNs in the
/// Region's partition; no entry twice, none that Log Archive or the
/// management account already covers (their roots are readers), no
/// principal whose account is listed too, at most [`MAX_READERS`].
pub(super) fn validate_readers(
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

/// `readers.accounts`: 12-digit IDs, each once, none of the config's own.
fn reader_accounts(
    raw: Option<Vec<String>>,
    accounts: &Accounts,
    path: &Path,
) -> Result<Vec<AccountId>, Error> {
    let parse = |field: &str, value: &str| {
        let id = AccountId::parse(value).ok_or_else(|| {
            field_error(
                path,
                field,
                format!("{value:?} is not an AWS account ID (12 digits)"),
                "list account IDs as quoted 12-digit strings, e.g. accounts = [\"444455556666\"]",
            )
        })?;
        match covered_by(accounts, &id) {
            Some(other) => Err(field_error(
                path,
                field,
                format!("{id} is {other}, which already reads the logs"),
                "remove it from readers.accounts: the Log Archive and management accounts are always readers, and the Security Tooling account administers the key",
            )),
            None => Ok(id),
        }
    };
    let repeats = |_: &str, id: &AccountId, before: &[AccountId]| {
        before.contains(id).then(|| listed_twice(id.as_str()))
    };
    each_once(raw, ("readers.accounts", "account"), path, parse, repeats)
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
    let parse = |field: &str, value: &str| {
        reader_principal(field, value, region, accounts, reader_accounts, path)
    };
    let repeats = |value: &str, principal: &Principal, before: &[Principal]| {
        let first = before.iter().find(|p| p.same_as(principal))?;
        Some(if first.arn == principal.arn {
            listed_twice(&format!("{value:?}"))
        } else {
            format!(
                "{value:?} is {:?} again: IAM does not tell role and user names apart by case, nor a role by its path",
                first.arn
            )
        })
    };
    each_once(
        raw,
        ("readers.principals", "principal"),
        path,
        parse,
        repeats,
    )
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
    let hint = format!(
        "give the role or user ARN as IAM shows it, e.g. \"arn:{}:iam::444455556666:role/SIEM\"; for a whole account, list its ID in readers.accounts",
        region.partition()
    );
    let principal = principal(path, field, value, region, &hint)?;
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
