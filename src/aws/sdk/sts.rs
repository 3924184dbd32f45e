//! STS: who the caller is, and the roles trailkey assumes.

use aws_sdk_kms::config::Credentials;

use super::error::answer;
use crate::aws::{AwsError, AwsResult, CallerIdentity, code};

/// `GetCallerIdentity`.
pub(super) async fn caller_identity(sts: &aws_sdk_sts::Client) -> AwsResult<CallerIdentity> {
    let out = answer("GetCallerIdentity", sts.get_caller_identity().send()).await?;
    Ok(CallerIdentity {
        account: out.account().unwrap_or_default().to_owned(),
        arn: out.arn().unwrap_or_default().to_owned(),
    })
}

/// `AssumeRole` with the credentials of `sts`: the role's temporary
/// credentials.
pub(super) async fn assume_role(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    session: &str,
) -> AwsResult<Credentials> {
    let request = sts.assume_role().role_arn(role_arn);
    let out = answer("AssumeRole", request.role_session_name(session).send()).await?;
    let c = out.credentials().ok_or_else(|| {
        AwsError::new(
            "AssumeRole",
            code::NO_CREDENTIALS,
            "STS returned no credentials",
        )
    })?;
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        std::time::SystemTime::try_from(*c.expiration()).ok(),
        "trailkey-assume-role",
    ))
}
