//! Who runs: the management account, or Security Tooling as CloudTrail's
//! delegated administrator; what is known of it before the first call, how
//! the run reaches the key's account, and the delegation's check.

use super::*;

/// What is known of who runs before the first call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// The credentials name their account, or the config decides
    /// (`roles.management`, the landing zone: the management account runs).
    Runner(Runner),
    /// The credentials name an account that is neither Security Tooling nor
    /// the configured management account: no access is made for it.
    Neither,
    /// Only `GetCallerIdentity` and `DescribeOrganization` will tell.
    Unknown,
}

impl Known {
    pub fn runner(self) -> Option<Runner> {
        match self {
            Known::Runner(runner) => Some(runner),
            Known::Neither | Known::Unknown => None,
        }
    }
}

/// Who runs, as far as the config and the account the credentials name
/// (`named`) tell before any call.
pub fn known_caller(desired: &Desired, named: Option<&str>) -> Known {
    if desired.management_role.is_some() || desired.landing_zone {
        return Known::Runner(Runner::Management);
    }
    match named {
        Some(account) if account == desired.security_tooling.as_str() => {
            Known::Runner(Runner::DelegatedAdministrator)
        }
        Some(account)
            if desired
                .management
                .as_ref()
                .is_some_and(|m| m.as_str() != account) =>
        {
            Known::Neither
        }
        Some(_) => Known::Runner(Runner::Management),
        None => Known::Unknown,
    }
}

/// Who runs, by the caller's account: Security Tooling, without the
/// landing zone (whose key is the management account's) and without
/// `roles.management`, is CloudTrail's delegated administrator.
pub fn runner_of(desired: &Desired, account: &str) -> Runner {
    if account == desired.security_tooling.as_str()
        && !desired.landing_zone
        && desired.management_role.is_none()
    {
        Runner::DelegatedAdministrator
    } else {
        Runner::Management
    }
}

/// `roles.management` with credentials of Security Tooling: the run would
/// assume a management-account role from Security Tooling.
pub(super) fn management_role_as_delegated(desired: &Desired) -> Error {
    Error::config(
        &desired.source,
        Some("roles.management".to_owned()),
        format!(
            "the credentials are the Security Tooling account's ({}), which runs as CloudTrail's delegated administrator with no management-account role",
            desired.security_tooling
        ),
        "remove roles.management to run from Security Tooling as CloudTrail's delegated administrator, or run with credentials of the management account".to_owned(),
    )
}

/// Who runs, when the credentials tell it without a call
/// ([`Connect::caller_account`]); `None` otherwise, and for an account that
/// is neither Security Tooling nor the configured management account.
pub async fn known_runner<C: Connect>(connect: &C, desired: &Desired) -> Option<Runner> {
    let account = connect.caller_account().await?;
    known_caller(desired, Some(&account)).runner()
}

/// How a caller names the configured trail: by name in its own account,
/// by ARN from a member account (built when the management account is
/// configured). `None` when only `DescribeTrails` can tell the ARN.
pub fn trail_name_for(desired: &Desired, runner: Option<Runner>) -> Option<String> {
    match (&desired.trail, runner) {
        (TrailRef::Arn(arn), _) => Some(arn.clone()),
        (TrailRef::Name(name), Some(Runner::Management)) => Some(name.clone()),
        (TrailRef::Name(name), _) => desired
            .management
            .as_ref()
            .map(|m| trail_arn(desired, m.as_str(), name)),
    }
}

/// The ARN of the trail `name` of the management account `management`,
/// homed in the configured Region: how a member account names an
/// organization trail.
pub(super) fn trail_arn(desired: &Desired, management: &str, name: &str) -> String {
    format!(
        "arn:{}:cloudtrail:{}:{management}:trail/{name}",
        desired.partition(),
        desired.region
    )
}

/// How the run reaches the key's account, and, for a delegated
/// administrator, CloudTrail's delegated administrators as Organizations
/// lists them.
pub(super) struct Access<K> {
    pub(super) keys: K,
    pub(super) delegation: Delegation,
}

/// The delegated administrator's proof, `ListDelegatedAdministrators`.
pub(super) enum Delegation {
    /// The management account runs: nothing to prove.
    NotNeeded,
    /// Asked in the first round.
    Answered(AwsResult<Vec<String>>),
    /// Asked in the second round, with the reads it does not hold back
    /// (the caller was known only once `GetCallerIdentity` answered), and
    /// checked before they are interpreted.
    Pending,
}

/// The access of `runner`; `ask` asks for the delegation now.
pub(super) async fn access<C: Connect>(
    connect: &C,
    desired: &Desired,
    runner: Runner,
    ask: bool,
) -> Result<Access<C::KeyStore>, Error> {
    let delegation = async {
        match runner {
            Runner::Management => Delegation::NotNeeded,
            Runner::DelegatedAdministrator if !ask => Delegation::Pending,
            Runner::DelegatedAdministrator => Delegation::Answered(
                connect
                    .management()
                    .delegated_administrators(crate::aws::CLOUDTRAIL_PRINCIPAL)
                    .await,
            ),
        }
    };
    let (keys, delegation) = tokio::join!(key_store(connect, desired, runner), delegation);
    Ok(Access {
        keys: keys?,
        delegation,
    })
}

/// Fails unless Organizations lists Security Tooling among CloudTrail's
/// delegated administrators. Organizations answers a member account that
/// is no delegated administrator of any service `AccessDeniedException`
/// ("You can only call this operation from the management account or a
/// member account that is a delegated administrator", organizations model,
/// `ListDelegatedAdministrators`), and an IAM policy without the action
/// the same code, blaming that policy.
pub(super) fn check_delegated(
    desired: &Desired,
    org: &Organization,
    delegated: AwsResult<Vec<String>>,
) -> Result<(), Error> {
    let account = desired.security_tooling.as_str();
    let register = format!(
        "`aws cloudtrail register-organization-delegated-admin --member-account-id {account}`"
    );
    match delegated {
        Ok(list) if list.iter().any(|a| a == account) => Ok(()),
        Ok(_) => Err(Error::check(
            format!(
                "the caller is the Security Tooling account {account}, which is not CloudTrail's delegated administrator in organization {}",
                org.id
            ),
            format!(
                "register it once, from the management account {}: {register}; or run trailkey with credentials of the management account",
                org.management_account
            ),
        )),
        // Organizations' own refusal of a member that is no delegated
        // administrator names no policy ("You don't have permissions to
        // access this resource."), nor may an IAM denial: both causes.
        Err(e) if denied_by(&e) == Some(DeniedBy::Unknown) => Err(Error::check_with(
            format!(
                "the caller is the Security Tooling account {account}, and Organizations refused to list CloudTrail's delegated administrators (organizations:ListDelegatedAdministrators): it is not CloudTrail's delegated administrator (nor another service's), or its role lacks that permission",
            ),
            format!(
                "  AWS {} returned {}: {}",
                e.operation,
                crate::escape::escape(&e.code),
                crate::escape::escape(&e.message)
            ),
            format!(
                "register it once, from the management account {}: {register}; if it is registered, give the role organizations:ListDelegatedAdministrators (policies/iam-security-tooling-delegated-admin.json)",
                org.management_account
            ),
        )),
        Err(e) => Err(Error::aws(
            "checking that Security Tooling is CloudTrail's delegated administrator (organizations:ListDelegatedAdministrators)",
            e,
        )),
    }
}
