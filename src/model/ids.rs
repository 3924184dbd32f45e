//! Identifiers of AWS things trailkey names: accounts, aliases, trails,
//! roles and principals, each checked when made.

use std::fmt;

use serde::Serialize;

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

/// A KMS alias name, stored without the `alias/` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AliasName(String);

impl AliasName {
    /// Accepts `name` or `alias/name`, as KMS allows alias names: letters,
    /// digits, `/`, `_` and `-`, at most 256 characters with `alias/`, not
    /// in the `aws/` namespace AWS reserves.
    pub fn parse(value: &str) -> Result<AliasName, String> {
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
        if !valid_iam_name(name) || !path_ok {
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

/// IAM's rule for role and user names: 1-64 letters, digits and `+=,.@_-`.
pub(crate) fn valid_iam_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
