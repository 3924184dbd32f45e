//! Observe: read the current state from AWS. Read-only, and concurrent
//! where the calls do not depend on each other:
//!
//! 1. caller identity, organization, trail and `AssumeRole` into Security
//!    Tooling, all at once;
//! 2. the key behind the alias (`DescribeKey alias/<name>`);
//! 3. its policy, rotation status and tags, all at once.

use crate::aws::{Connect, KeyStore, Management};
use crate::config::Desired;
use crate::error::Error;
use crate::plan::{self, Observed, ObservedKey};

/// Reads everything the plan needs. Returns the Security Tooling KMS client
/// too, so `apply` and the verification after it reuse the assumed role.
pub async fn observe<C: Connect>(
    connect: &C,
    desired: &Desired,
) -> Result<(Observed, C::KeyStore), Error> {
    let mgmt = connect.management();
    let role_arn = desired.security_tooling_role_arn();
    let (identity, organization, trail, keys) = tokio::join!(
        mgmt.caller_identity(),
        mgmt.describe_organization(),
        mgmt.get_trail(desired.trail.as_api_name()),
        connect.security_tooling(&role_arn),
    );
    // Report in dependency order: who we are first, then what we can see.
    let identity = identity
        .map_err(|e| Error::aws("reading the caller identity (sts:GetCallerIdentity)", e))?;
    let organization = organization.map_err(|e| {
        Error::aws(
            "reading the organization (organizations:DescribeOrganization)",
            e,
        )
    })?;
    plan::check_context(desired, &identity, &organization)?;
    let trail = trail.map_err(|e| {
        Error::aws(
            format!(
                "reading trail {:?} in {} (cloudtrail:GetTrail)",
                desired.trail.as_api_name(),
                desired.region
            ),
            e,
        )
    })?;
    plan::check_trail(desired, &trail)?;
    let keys = keys.map_err(|e| {
        Error::aws(
            format!("assuming {role_arn} in the Security Tooling account (sts:AssumeRole)"),
            e,
        )
    })?;
    let key = observe_key(&keys, desired).await?;
    Ok((
        Observed {
            identity,
            organization,
            trail,
            key,
        },
        keys,
    ))
}

/// Re-reads what apply may have changed (the trail and the key), keeping
/// the identity and organization already known.
pub async fn refresh<C: Connect>(
    connect: &C,
    keys: &C::KeyStore,
    desired: &Desired,
    previous: &Observed,
) -> Result<Observed, Error> {
    let (trail, key) = tokio::join!(
        connect.management().get_trail(&previous.trail.arn),
        observe_key(keys, desired),
    );
    let trail = trail
        .map_err(|e| Error::aws("re-reading the trail after apply (cloudtrail:GetTrail)", e))?;
    Ok(Observed {
        trail,
        key: key?,
        ..previous.clone()
    })
}

/// The key behind the alias, with its policy, rotation and tags.
pub async fn observe_key<K: KeyStore>(
    keys: &K,
    desired: &Desired,
) -> Result<Option<ObservedKey>, Error> {
    let alias = desired.alias.full();
    let ctx = |what: &str| {
        format!(
            "reading {what} of {alias} in account {}",
            desired.security_tooling
        )
    };
    let Some(info) = keys
        .describe_key(&alias)
        .await
        .map_err(|e| Error::aws(ctx("the key (kms:DescribeKey)"), e))?
    else {
        return Ok(None);
    };
    let (policy, rotation, tags) = tokio::join!(
        keys.get_key_policy(&info.key_id),
        keys.rotation_enabled(&info.key_id),
        keys.list_tags(&info.key_id),
    );
    let rotation = match rotation {
        // KMS does not report rotation for a key pending deletion; apply
        // enables rotation again after cancelling the deletion.
        Err(e) if e.code == "KMSInvalidStateException" && info.state == "PendingDeletion" => {
            Ok(false)
        }
        other => other,
    };
    Ok(Some(ObservedKey {
        policy: policy.map_err(|e| Error::aws(ctx("the key policy (kms:GetKeyPolicy)"), e))?,
        rotation: rotation
            .map_err(|e| Error::aws(ctx("the rotation status (kms:GetKeyRotationStatus)"), e))?,
        tags: tags.map_err(|e| Error::aws(ctx("the tags (kms:ListResourceTags)"), e))?,
        info,
    }))
}
