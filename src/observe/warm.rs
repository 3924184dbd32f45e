//! The warm path: a process that has run before (a warm Lambda function)
//! observes in one round of calls, from what its last run told it.
//!
//! What it keeps ([`Warm`]) is what does not change under a running
//! process, or what a call of the round would contradict: who runs and
//! the organization (`GetCallerIdentity`, `DescribeOrganization`, and for
//! CloudTrail's delegated administrator the delegation, which is asked
//! again every time), the trail's ARN and bucket with the bucket's Region
//! (`HeadBucket`), whether the trail has custom event selectors, the
//! trail's last delivery error, with the landing zone its ARN, the key
//! trailkey planned, and the KMS client of the key's account with the
//! credentials of the role assumed for it (`AssumeRole`). What trailkey
//! manages is read every time: the trail, its status and tags, the alias,
//! the key's policy, rotation and tags.
//!
//! [`observe_warm`] makes its reads at once: `DescribeTrails`,
//! `GetTrailStatus` and `ListTags` of the trail by its ARN,
//! `DescribeKey` of the alias and, speculatively, `GetKeyPolicy`,
//! `GetKeyRotationStatus` and `ListResourceTags` of the known key; with
//! them `GetEventSelectors` when the trail had custom selectors,
//! `ListDelegatedAdministrators` for the delegated administrator, and
//! `GetLandingZone` and `ListLandingZoneOperations` with the landing zone.
//! The trail's tags, which cold observe reads only for a plan that changes
//! the trail (the Control Tower guard), are read up front so that a
//! repair of the trail needs no round for them; refused, they are left
//! unread, for the plan to ask for as after cold observe.
//!
//! Credentials that expire within [`RENEW_WITHIN`] are renewed first: then
//! `AssumeRole` runs with the trail's reads and the key's reads wait for
//! it, a round more.
//!
//! The answers are checked against what the process knew. Any surprise (a
//! call that failed, the speculative `ListTags` aside; the trail under
//! another ARN or with another bucket; a delivery error it had not seen;
//! custom event selectors it did not read; the delegation gone;
//! credentials it could not renew) is [`Stale`]: the caller forgets
//! everything and observes cold, as a first run does, which reports an
//! error as a first run would. The alias naming another key than the known
//! one is no surprise: the known key's answers are dropped and the alias's
//! key read next, as cold observe does when the trail's key is not the
//! alias's. So, for the same AWS state, the warm path observes what cold
//! observe would, and the plan is the same, with one exception: the bucket
//! is not asked again (`HeadBucket`), so a bucket deleted since the last run
//! is seen when CloudTrail reports a delivery error (then the path goes
//! cold, which refuses a missing bucket) or when `UpdateTrail` is refused
//! for it, not before.

use std::time::{Duration, SystemTime};

use super::keys::{FirstKeyReads, found_keys, read_details};
use super::*;

/// Credentials that expire within this are renewed before an invocation
/// uses them: the longest a Lambda invocation may run, so that they never
/// expire within one.
pub const RENEW_WITHIN: Duration = Duration::from_secs(15 * 60);

/// What a warm process knows from its last successful run; see the
/// module's documentation. It holds the KMS client, with its credentials:
/// only in memory, never logged (no `Debug`).
pub struct Warm<K> {
    facts: Facts,
    /// The key the last run planned, or the one it created.
    key_arn: String,
    keys: K,
}

/// The facts of an observed state that a warm process keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    runner: Runner,
    identity: CallerIdentity,
    organization: Organization,
    trail_arn: String,
    bucket: String,
    /// `None`: `HeadBucket` did not answer it; nothing is kept then.
    bucket_region: Option<String>,
    custom_selectors: bool,
    delivery_error: Option<String>,
    /// With the landing zone: its ARN.
    landing_zone: Option<String>,
}

impl Facts {
    /// What of `observed` a warm process keeps.
    pub fn of(observed: &Observed) -> Facts {
        Facts {
            runner: observed.runner,
            identity: observed.identity.clone(),
            organization: observed.organization.clone(),
            trail_arn: observed.trail.arn.clone(),
            bucket: observed.trail.s3_bucket.clone(),
            bucket_region: observed.bucket_region.as_ref().ok().cloned(),
            custom_selectors: observed.trail.has_custom_event_selectors,
            delivery_error: observed.trail_status.latest_delivery_error.clone(),
            landing_zone: observed
                .landing_zone
                .as_ref()
                .and_then(|l| l.zone.as_ref())
                .map(|z| z.arn.clone()),
        }
    }
}

impl<K: KeyStore> Warm<K> {
    /// What a process keeps after a run that observed `facts` with `keys`
    /// and left `key_arn` as trailkey's key. `None` when a warm invocation
    /// could not start from it: no key, the bucket's Region unread, or with
    /// the landing zone none found.
    pub fn keep(desired: &Desired, facts: Facts, key_arn: Option<String>, keys: K) -> Option<Self> {
        if facts.bucket_region.is_none() || (desired.landing_zone && facts.landing_zone.is_none()) {
            return None;
        }
        Some(Warm {
            facts,
            key_arn: key_arn?,
            keys,
        })
    }

    /// The key the process knows as trailkey's.
    pub fn key_arn(&self) -> &str {
        &self.key_arn
    }

    /// When the kept credentials expire, if trailkey renews them.
    pub fn expiry(&self) -> Option<SystemTime> {
        self.keys.expiry()
    }

    /// The kept KMS client, for tests that age its credentials.
    #[cfg(test)]
    pub fn keys_mut(&mut self) -> &mut K {
        &mut self.keys
    }
}

/// Why the warm path gave up: what it did not expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale(pub String);

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a failed call says, for [`Stale`].
fn failed(e: &AwsError) -> Stale {
    Stale(format!("{} failed: {}", e.operation, e.code))
}

/// An error of the warm path's own reads, for [`Stale`].
fn refused(e: &Error) -> Stale {
    let Error::Aws { source, .. } = e else {
        return Stale(e.render());
    };
    failed(source)
}

/// Observes from what `warm` knows, at `now`: one round of calls (see the
/// module's documentation), or [`Stale`]. Returns the KMS client the state
/// was read with: the kept one, or the one of renewed credentials.
pub async fn observe_warm<C: Connect>(
    connect: &C,
    desired: &Desired,
    warm: Warm<C::KeyStore>,
    now: SystemTime,
) -> Result<(Observed, C::KeyStore), Stale> {
    let Warm {
        facts,
        key_arn,
        keys,
    } = warm;
    let mgmt = connect.management();
    let arn = facts.trail_arn.as_str();
    let alias = desired.alias.full();
    let fresh = keys.expiry().is_none_or(|at| at > now + RENEW_WITHIN);
    let key_reads = async {
        let keys = if fresh {
            keys
        } else {
            drop(keys);
            key_store(connect, desired, facts.runner)
                .await
                .map_err(|e| refused(&e))?
        };
        let (aliased, details) =
            tokio::join!(keys.describe_key(&alias), read_details(&keys, &key_arn));
        Ok::<_, Stale>((keys, aliased, details))
    };
    // As cold observe: Control Tower sets its own trail's selectors, and a
    // plan of the landing zone never writes the trail.
    let tags = OptionFuture::from((!desired.landing_zone).then(|| mgmt.trail_tags(arn)));
    let selectors = OptionFuture::from(
        (facts.custom_selectors && !desired.landing_zone).then(|| mgmt.event_selectors(arn)),
    );
    let delegation = OptionFuture::from(
        (facts.runner == Runner::DelegatedAdministrator)
            .then(|| mgmt.delegated_administrators(crate::aws::CLOUDTRAIL_PRINCIPAL)),
    );
    let landing_zone = OptionFuture::from(facts.landing_zone.as_deref().map(|zone| async {
        tokio::join!(
            read_landing_zone(connect, zone),
            operations_in_progress(connect)
        )
    }));
    let (trails, status, tags, selectors, delegation, landing_zone, key_reads) = tokio::join!(
        mgmt.describe_trails(),
        mgmt.trail_status(arn),
        tags,
        selectors,
        delegation,
        landing_zone,
        key_reads,
    );

    if let Some(delegated) = delegation {
        check_delegated(desired, &facts.organization, delegated).map_err(|e| refused(&e))?;
    }
    let trails = trails.map_err(|e| failed(&e))?;
    let (trail, other_trails) = configured_trail(desired, trails)
        .ok_or_else(|| Stale("the trail is not among those DescribeTrails lists".to_owned()))?;
    if trail.arn != facts.trail_arn {
        return Err(Stale(format!("the trail is {} now", trail.arn)));
    }
    if trail.s3_bucket != facts.bucket {
        return Err(Stale("the trail's bucket changed".to_owned()));
    }
    plan::check_trail(desired, &trail, None).map_err(|e| refused(&e))?;
    let trail_status = status.map_err(|e| failed(&e))?;
    if trail_status.latest_delivery_error.is_some()
        && trail_status.latest_delivery_error != facts.delivery_error
    {
        return Err(Stale("the trail reports a new delivery error".to_owned()));
    }
    // Speculative: refused, they are read when a plan asks for them, as
    // after cold observe, and refused again there if they still are.
    let trail_tags = match tags {
        Some(Ok(tags)) => OnDemand::Read(tags),
        Some(Err(_)) | None => OnDemand::NotRead,
    };
    let event_selectors = match (
        trail.has_custom_event_selectors && !desired.landing_zone,
        selectors,
    ) {
        (false, _) => None,
        (true, None) => {
            return Err(Stale("the trail has custom event selectors now".to_owned()));
        }
        (true, Some(read)) => Some(Ok(read.map_err(|e| failed(&e))?)),
    };
    let landing_zone = match landing_zone {
        Some((zone, in_progress)) => Some(ObservedLandingZone {
            zone: Some(zone.map_err(|e| refused(&e))?),
            in_progress: in_progress.map_err(|e| refused(&e))?,
        }),
        None => None,
    };
    let (keys, aliased, details) = key_reads?;
    let first = FirstKeyReads {
        likely: Some(&key_arn),
        aliased: Ok(aliased.map_err(|e| failed(&e))?),
        prefetched: Some(details),
        listed: None,
    };
    let found = found_keys(&keys, desired, &trail, first)
        .await
        .map_err(|e| refused(&e))?;
    let bucket_region = facts
        .bucket_region
        .ok_or_else(|| Stale("the bucket's Region is not known".to_owned()))?;
    let observed = Observed {
        runner: facts.runner,
        identity: facts.identity,
        organization: facts.organization,
        trail,
        other_trails,
        trail_status,
        trail_tags,
        bucket_region: Ok(bucket_region),
        event_selectors,
        alias_target: found.alias_target,
        key: found.key,
        other_keys: found.other_keys,
        unreadable_keys: found.unreadable_keys,
        organization_accounts: OnDemand::NotRead,
        log_bucket: OnDemand::NotRead,
        landing_zone,
    };
    Ok((observed, keys))
}

#[cfg(test)]
mod tests;
