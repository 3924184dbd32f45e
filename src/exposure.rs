//! Who else the key policy lets decrypt with the key or manage it. trailkey
//! keeps every statement it does not own, but a security tool for this key
//! must say when one of them opens it: to anyone, to an account outside the
//! organization, or (with `[readers]` declared) to a principal that is
//! neither trailkey's nor a declared reader. Each such statement is a
//! warning naming its Sid and the principal. Pure: it reads the policy, the
//! config and, when a statement names an account trailkey does not know,
//! the organization's accounts (read by the caller only then, see
//! [`needs_accounts`]).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::config::{AccountId, Desired};
use crate::model::{Finding, Level, Observed, OnDemand};
use crate::policy;

/// The KMS actions by which a principal reads what the key encrypted or
/// takes the key from its owners: decrypt, re-encrypt out, grant, and the
/// administration that changes who may do those or ends the key.
const SENSITIVE: &[&str] = &[
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:CreateGrant",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
];

/// Condition keys that narrow a `*` principal to accounts or an
/// organization (IAM global condition keys, and KMS's `kms:CallerAccount`).
const NARROWING: &[&str] = &[
    "aws:principalorgid",
    "aws:principalaccount",
    "kms:calleraccount",
];

/// One principal a statement lets in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    /// `*`, `{"AWS": "*"}`, or an `Allow` with `NotPrincipal`.
    Anyone,
    /// An account, its root or any principal of it.
    Account { account: String, arn: String },
}

/// Whether the plan's findings need the organization's accounts: a foreign
/// statement lets an account trailkey does not know decrypt or manage, and
/// they have not been read.
pub fn needs_accounts(desired: &Desired, observed: &Observed) -> bool {
    if observed.organization_accounts.is_read() {
        return false;
    }
    let Some(policy) = current(observed) else {
        return false;
    };
    let known = known_accounts(desired, observed);
    exposed(&policy).into_iter().any(|(_, who)| match who {
        Who::Account { account, .. } => !known.contains(&account),
        Who::Anyone => false,
    })
}

/// The warnings: one per statement and principal it opens the key to.
pub fn findings(desired: &Desired, observed: &Observed, policy: &Value) -> Vec<Finding> {
    let known = known_accounts(desired, observed);
    let organization = &observed.organization.id;
    let mut out = Vec::new();
    for (sid, who) in exposed(policy) {
        let why = match &who {
            Who::Anyone => Some(format!(
                "anyone (a \"*\" principal not narrowed to the organization {organization} by aws:PrincipalOrgID, aws:PrincipalAccount or kms:CallerAccount)"
            )),
            Who::Account { account, arn } => {
                let in_org = observed
                    .organization_accounts
                    .read()
                    .is_some_and(|all| all.contains(account));
                if !known.contains(account) && !in_org {
                    Some(match &observed.organization_accounts {
                        OnDemand::Read(_) => format!(
                            "{arn}, of account {account}, outside the organization {organization}"
                        ),
                        OnDemand::NotRead => format!(
                            "{arn}, of account {account}, which trailkey could not find in the organization {organization}"
                        ),
                    })
                } else if !desired.readers.is_empty()
                    && !trailkeys_or_reader(desired, observed, account, arn)
                {
                    Some(format!(
                        "{arn}, neither one of trailkey's principals nor a declared reader"
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(why) = why {
            out.push(Finding {
                level: Level::Warning,
                message: format!(
                    "key policy statement {sid:?} lets {why} decrypt with the key or manage it; trailkey keeps statements it does not own: remove or narrow it if that is not intended"
                ),
            });
        }
    }
    out
}

/// The current key policy, parsed.
fn current(observed: &Observed) -> Option<Value> {
    serde_json::from_str(&observed.key.as_ref()?.policy).ok()
}

/// The accounts trailkey knows: the management, Security Tooling and Log
/// Archive accounts, and the declared readers'.
fn known_accounts(desired: &Desired, observed: &Observed) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = [
        observed.organization.management_account.clone(),
        desired.security_tooling.to_string(),
        desired.log_archive.to_string(),
    ]
    .into_iter()
    .collect();
    known.extend(desired.readers.accounts.iter().map(ToString::to_string));
    known.extend(
        desired
            .readers
            .principals
            .iter()
            .map(|p| p.account.to_string()),
    );
    known
}

/// Whether `arn` (of `account`) is one of trailkey's own principals (the
/// accounts it grants) or covered by `[readers]`.
fn trailkeys_or_reader(desired: &Desired, observed: &Observed, account: &str, arn: &str) -> bool {
    let own = [
        observed.organization.management_account.as_str(),
        desired.security_tooling.as_str(),
        desired.log_archive.as_str(),
    ];
    if own.contains(&account)
        || desired
            .readers
            .accounts
            .iter()
            .any(|a| a.as_str() == account)
    {
        return true;
    }
    crate::config::Principal::parse(arn, desired.partition())
        .is_ok_and(|p| desired.readers.covers(&p))
}

/// Every foreign `Allow` statement that grants a [`SENSITIVE`] action, with
/// each principal it lets in.
fn exposed(policy: &Value) -> Vec<(String, Who)> {
    let mut out = Vec::new();
    for s in policy::statements(policy) {
        if policy::is_ours(s) || s.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        if !grants_sensitive(s) {
            continue;
        }
        let sid = policy::sid(s).unwrap_or("(no Sid)").to_owned();
        for who in principals(s) {
            out.push((sid.clone(), who));
        }
    }
    out
}

/// Whether the statement's `Action` (or what its `NotAction` leaves) takes
/// in a [`SENSITIVE`] action.
fn grants_sensitive(s: &Value) -> bool {
    let matches = |patterns: &Value, action: &str| {
        strings(patterns).iter().any(|p| {
            crate::model::pattern::wildcard_match(
                &p.to_ascii_lowercase(),
                &action.to_ascii_lowercase(),
            )
        })
    };
    match (s.get("Action"), s.get("NotAction")) {
        (Some(a), _) => SENSITIVE.iter().any(|x| matches(a, x)),
        (None, Some(not)) => SENSITIVE.iter().any(|x| !matches(not, x)),
        (None, None) => false,
    }
}

/// The principals a statement lets in, with a `*` narrowed by its
/// conditions to the accounts they name (an organization ID narrows it to
/// the organization: nobody outside).
fn principals(s: &Value) -> Vec<Who> {
    if s.get("NotPrincipal").is_some() {
        return vec![Who::Anyone];
    }
    let aws: Vec<String> = match s.get("Principal") {
        Some(Value::String(star)) if star == "*" => vec!["*".to_owned()],
        Some(Value::Object(p)) => p.get("AWS").map(strings).unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for p in aws {
        if p == "*" {
            match narrowed(s) {
                Narrowed::No => out.push(Who::Anyone),
                Narrowed::Organization => {}
                Narrowed::Accounts(accounts) => {
                    out.extend(accounts.into_iter().map(|a| Who::Account {
                        arn: a.clone(),
                        account: a,
                    }))
                }
            }
        } else if let Some(account) = account_of(&p) {
            out.push(Who::Account { account, arn: p });
        }
    }
    out
}

/// How a statement's conditions narrow a `*` principal.
enum Narrowed {
    No,
    Organization,
    Accounts(Vec<String>),
}

fn narrowed(s: &Value) -> Narrowed {
    let Some(conditions) = s.get("Condition").and_then(Value::as_object) else {
        return Narrowed::No;
    };
    let mut accounts = Vec::new();
    for (operator, keys) in conditions {
        // Only a positive match narrows: StringEquals, StringLike (and
        // their IfExists forms hold when the key is absent, so they do not).
        let op = operator.to_ascii_lowercase();
        if !(op == "stringequals" || op == "stringlike") {
            continue;
        }
        for (key, values) in keys.as_object().into_iter().flatten() {
            let key = key.to_ascii_lowercase();
            if !NARROWING.contains(&key.as_str()) {
                continue;
            }
            let values = strings(values);
            if values.iter().any(|v| v.contains(['*', '?'])) {
                continue;
            }
            if key == "aws:principalorgid" {
                return Narrowed::Organization;
            }
            accounts.extend(values);
        }
    }
    if accounts.is_empty() {
        Narrowed::No
    } else {
        Narrowed::Accounts(accounts)
    }
}

/// The account of a principal: a bare account ID or an IAM ARN.
fn account_of(principal: &str) -> Option<String> {
    let account = match principal.strip_prefix("arn:") {
        Some(arn) => arn.split(':').nth(3)?,
        None => principal,
    };
    AccountId::parse(account).map(|a| a.to_string())
}

/// A string or a list of strings, as policies write them.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
