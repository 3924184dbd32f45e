//! Observe: read the current state from AWS. Read-only, and concurrent
//! where the calls do not depend on each other:
//!
//! 1. caller identity, organization, trail, trail status and access to the
//!    key's account (`AssumeRole` into Security Tooling, or, run from
//!    Security Tooling as CloudTrail's delegated administrator, the
//!    delegation's check), all at once when the credentials tell who runs
//!    (`caller`);
//! 2. the key behind the alias (`DescribeKey alias/<name>`) and the trail's
//!    bucket Region, and with them, speculatively, the policy, rotation
//!    status and tags of the key the trail names (the key the alias names,
//!    once converged), all at once.
//!
//! So a converged setup is read in two rounds of calls, each API once. When
//! the alias names another key than the trail, its details take a third
//! round. When the trail names no key of Security Tooling at all (a first
//! run), round 2 also reads what a change needs: the key list for the tag
//! search and the trail's tags for the Control Tower guard.
//!
//! Only when the alias is missing or names a key trailkey did not create are
//! the account's keys searched by tag (see [`observe_keys`], in `keys`).
//! The search reads the tags of up to 8 keys at a time, so in an account
//! with many keys it adds rounds.

use std::collections::BTreeMap;

use futures_util::future::OptionFuture;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::aws::{
    AwsError, AwsResult, CallerIdentity, Connect, DeniedBy, EventDataStore, KeyInfo, KeyManager,
    KeyState, KeyStore, LandingZoneOperation, LandingZones, LogArchive, LogBucket, Management,
    Organization, RotationStatus, Trail, TrailStatus, code, denied_by,
};
use crate::config::{ALIAS_TAG, Desired, TrailRef, managed_by_trailkey};
use crate::error::Error;
use crate::plan::{self, FoundBy, Observed, ObservedKey, ObservedLandingZone, OnDemand, Runner};

mod caller;
mod keys;
mod warm;

use caller::*;
pub use caller::{Known, known_caller, known_runner, runner_of, trail_name_for};
pub use keys::{FoundKeys, observe_keys};
pub use warm::{Facts, RENEW_WITHIN, Stale, Warm, observe_warm};

/// Reads everything the plan needs. Returns the Security Tooling KMS client
/// too, so `apply` and the verification after it reuse the assumed role.
pub async fn observe<C: Connect>(
    connect: &C,
    desired: &Desired,
) -> Result<(Observed, C::KeyStore), Error> {
    let mgmt = connect.management();
    let first = first_round(connect, desired).await?;
    let trail = &first.trail;
    let likely = trail_key(desired, trail);
    // Without a likely key the trail will change: the Control Tower guard
    // needs its tags.
    let trail_tags = OptionFuture::from(
        (likely.is_none() && !desired.landing_zone).then(|| read_trail_tags(mgmt, &trail.arn)),
    );
    let landing_zone = OptionFuture::from(
        first
            .landing_zones
            .as_ref()
            .and_then(|(arns, _)| arns.first())
            .map(|arn| read_landing_zone(connect, arn)),
    );
    let status = async {
        match &first.trail_status {
            Some(status) => Ok(status.clone()),
            None => mgmt.trail_status(&trail.arn).await,
        }
    };
    let delegated = OptionFuture::from(
        first
            .delegation_pending
            .then(|| mgmt.delegated_administrators(crate::aws::CLOUDTRAIL_PRINCIPAL)),
    );
    // Control Tower sets its own trail's selectors.
    let selectors = OptionFuture::from(
        (trail.has_custom_event_selectors && !desired.landing_zone)
            .then(|| mgmt.event_selectors(&trail.arn)),
    );
    let (found, bucket_region, trail_tags, zone, status, delegated, selectors) = tokio::join!(
        observe_keys(&first.keys, desired, trail, likely),
        mgmt.bucket_region(&trail.s3_bucket),
        trail_tags,
        landing_zone,
        status,
        delegated,
        selectors,
    );
    if let Some(delegated) = delegated {
        check_delegated(desired, &first.organization, delegated)?;
    }
    let trail_status = status.map_err(|e| status_error(&trail.arn, e))?;
    let found = found?;
    let trail_tags = trail_tags.transpose()?;
    let zone = zone.transpose()?;
    let bucket_region = match bucket_region {
        Ok(region) => Ok(region),
        Err(e) if e.code == code::NO_SUCH_BUCKET => {
            return Err(Error::check(
                format!("the trail's bucket {} does not exist", trail.s3_bucket),
                "CloudTrail cannot deliver logs: fix the trail's S3 bucket first",
            ));
        }
        // The bucket belongs to Log Archive; its policy may not let the
        // management account read its location. Reported, not fatal.
        Err(e) => Err(format!("{}: {}", e.code, e.message)),
    };
    Ok((
        Observed {
            runner: first.runner,
            identity: first.identity,
            organization: first.organization,
            trail: first.trail,
            other_trails: first.other_trails,
            trail_status,
            trail_tags: trail_tags.map_or(OnDemand::NotRead, OnDemand::Read),
            bucket_region,
            // Not fatal: the plan reports what it could not read.
            event_selectors: selectors.map(|s| s.map_err(|e| format!("{}: {}", e.code, e.message))),
            alias_target: found.alias_target,
            key: found.key,
            other_keys: found.other_keys,
            unreadable_keys: found.unreadable_keys,
            organization_accounts: OnDemand::NotRead,
            log_bucket: OnDemand::NotRead,
            landing_zone: first
                .landing_zones
                .map(|(_, in_progress)| ObservedLandingZone { zone, in_progress }),
        },
        first.keys,
    ))
}

/// The KMS client of the key's account: the role assumed in Security
/// Tooling; the caller's own with the landing zone (the management
/// account's) or as delegated administrator (Security Tooling's).
pub async fn key_store<C: Connect>(
    connect: &C,
    desired: &Desired,
    runner: Runner,
) -> Result<C::KeyStore, Error> {
    if desired.landing_zone || runner == Runner::DelegatedAdministrator {
        return connect.own_keys().await.map_err(|e| {
            Error::aws(
                format!("making the KMS client of account {}", desired.key_account),
                e,
            )
        });
    }
    let role_arn = desired.security_tooling_role_arn();
    connect.security_tooling(&role_arn).await.map_err(|e| {
        Error::aws(
            format!("assuming {role_arn} in the Security Tooling account (sts:AssumeRole)"),
            e,
        )
    })
}

/// The landing zones' ARNs and the operations in progress
/// (`ListLandingZones`, `ListLandingZoneOperations`), at once.
async fn list_landing_zones<C: Connect>(
    connect: &C,
) -> Result<(Vec<String>, Vec<LandingZoneOperation>), Error> {
    let ct = connect.landing_zones();
    let (zones, operations) =
        tokio::join!(ct.list_landing_zones(), operations_in_progress(connect));
    let zones = zones.map_err(|e| {
        Error::aws(
            "listing the Control Tower landing zones (controltower:ListLandingZones)",
            e,
        )
    })?;
    Ok((zones, operations?))
}

/// The landing-zone operations in progress (`ListLandingZoneOperations`).
async fn operations_in_progress<C: Connect>(
    connect: &C,
) -> Result<Vec<LandingZoneOperation>, Error> {
    connect
        .landing_zones()
        .operations_in_progress()
        .await
        .map_err(|e| {
            Error::aws(
                "listing the landing-zone operations in progress (controltower:ListLandingZoneOperations)",
                e,
            )
        })
}

/// The landing zone: manifest, version, status, drift (`GetLandingZone`).
pub async fn read_landing_zone<C: Connect>(
    connect: &C,
    arn: &str,
) -> Result<crate::aws::LandingZone, Error> {
    connect
        .landing_zones()
        .get_landing_zone(arn)
        .await
        .map_err(|e| {
            Error::aws(
                format!("reading the landing zone {arn} (controltower:GetLandingZone)"),
                e,
            )
        })
}

/// What the first round of `observe` read, checked against the config.
struct FirstRound<K> {
    runner: Runner,
    /// The delegation is to be asked in the second round.
    delegation_pending: bool,
    identity: CallerIdentity,
    organization: Organization,
    trail: Trail,
    other_trails: Vec<Trail>,
    /// `None`: not read yet, for want of the trail's ARN.
    trail_status: Option<TrailStatus>,
    keys: K,
    /// With the landing zone: its ARNs and the operations in progress.
    landing_zones: Option<(Vec<String>, Vec<LandingZoneOperation>)>,
}

/// The first round: caller identity, organization, every trail visible from
/// the home Region (`DescribeTrails`: the configured trail and the others
/// that may share its key), trail status and access to the key's account,
/// all at once. Errors are reported in dependency order, who we are first,
/// then what we can see, and the caller, organization and trail are checked
/// against the config before anything else is read.
///
/// Access to the key's account depends on who the caller is ([`Runner`]):
/// the management account assumes the Security Tooling role
/// (`AssumeRole`); Security Tooling, CloudTrail's delegated administrator,
/// uses its own credentials and proves the delegation
/// (`ListDelegatedAdministrators`). When the credentials name their account
/// ([`Connect::caller_account`]) that is known before the round and all of
/// it runs at once; otherwise `GetCallerIdentity` answers it first, and
/// the access waits for that answer: a role is never assumed, nor the
/// delegation asked, for a caller it is not meant for (unless credentials
/// misstate their account, which `GetCallerIdentity` then refutes before
/// any write).
async fn first_round<C: Connect>(
    connect: &C,
    desired: &Desired,
) -> Result<FirstRound<C::KeyStore>, Error> {
    let mgmt = connect.management();
    let named = connect.caller_account().await;
    if desired.management_role.is_some()
        && !desired.landing_zone
        && named.as_deref() == Some(desired.security_tooling.as_str())
    {
        return Err(management_role_as_delegated(desired));
    }
    let known = known_caller(desired, named.as_deref());
    // Without a name to call it by here, read once DescribeTrails has
    // answered the trail's ARN.
    let status_of = trail_name_for(desired, known.runner());
    let status = OptionFuture::from(status_of.as_deref().map(|t| mgmt.trail_status(t)));
    let zones = OptionFuture::from(desired.landing_zone.then(|| list_landing_zones(connect)));
    let who = async {
        let identity_and_organization =
            async { tokio::join!(mgmt.caller_identity(), mgmt.describe_organization()) };
        match known {
            Known::Runner(runner) => {
                let ((identity, organization), access) = tokio::join!(
                    identity_and_organization,
                    access(connect, desired, runner, true)
                );
                (identity, organization, Some(access))
            }
            Known::Neither => {
                let (identity, organization) = identity_and_organization.await;
                (identity, organization, None)
            }
            Known::Unknown => {
                let (identity, organization) = identity_and_organization.await;
                let runner = match (&identity, &organization) {
                    (Ok(id), _)
                        if runner_of(desired, &id.account) == Runner::DelegatedAdministrator =>
                    {
                        Some(Runner::DelegatedAdministrator)
                    }
                    (Ok(id), Ok(org)) if id.account == org.management_account => {
                        Some(Runner::Management)
                    }
                    _ => None,
                };
                let access = match runner {
                    Some(runner) => Some(access(connect, desired, runner, false).await),
                    None => None,
                };
                (identity, organization, access)
            }
        }
    };
    let ((identity, organization, access), trails, status, zones) =
        tokio::join!(who, mgmt.describe_trails(), status, zones);
    let identity = identity
        .map_err(|e| Error::aws("reading the caller identity (sts:GetCallerIdentity)", e))?;
    // With roles.management, STS answers for the role, not for the
    // credentials that assumed it.
    let verified = named
        .as_deref()
        .filter(|_| desired.management_role.is_none());
    if let Some(named) = verified.filter(|n| *n != identity.account) {
        return Err(Error::check(
            format!(
                "the credentials say they are account {named}'s, but STS answers {} in account {}",
                identity.arn, identity.account
            ),
            "the account comes from AWS_ACCOUNT_ID, the profile's aws_account_id or the credential source: fix or remove it",
        ));
    }
    let runner = runner_of(desired, &identity.account);
    let organization = organization.map_err(|e| {
        Error::aws(
            "reading the organization (organizations:DescribeOrganization)",
            e,
        )
    })?;
    plan::check_context(desired, runner, &identity, &organization)?;
    // Not made for a caller that is neither the management account nor the
    // delegated administrator, which check_context has refused.
    let access = access.ok_or_else(|| {
        Error::check(
            format!("trailkey runs as {} in account {}, which is neither the management account nor CloudTrail's delegated administrator", identity.arn, identity.account),
            "run trailkey with credentials of the management account, or of the Security Tooling account registered as CloudTrail's delegated administrator",
        )
    })?;
    let Access { keys, delegation } = access?;
    let delegation_pending = matches!(delegation, Delegation::Pending);
    if let Delegation::Answered(delegated) = delegation {
        check_delegated(desired, &organization, delegated)?;
    }
    // A caller not known to be the delegated administrator yet hears that
    // first, before what it could not see of the trail.
    // A failure of the check itself (throttling, a fault) leaves `e` as it is.
    let unless_undelegated = |e: Error| async {
        if delegation_pending {
            let delegated = mgmt
                .delegated_administrators(crate::aws::CLOUDTRAIL_PRINCIPAL)
                .await;
            let verdict = match &delegated {
                Ok(_) => true,
                Err(err) => denied_by(err) == Some(DeniedBy::Unknown),
            };
            if verdict {
                check_delegated(desired, &organization, delegated)?;
            }
        }
        Err::<FirstRound<C::KeyStore>, Error>(e)
    };
    // Without a landing zone there is no Control Tower trail either: say so
    // first.
    let landing_zones = zones.transpose()?;
    if landing_zones
        .as_ref()
        .is_some_and(|(arns, _)| arns.is_empty())
    {
        return Err(plan::no_landing_zone(desired));
    }
    let trail_name = desired.trail.as_api_name();
    let found = trails
        .map_err(|e| {
            Error::aws(
                format!(
                    "reading the trails in {} (cloudtrail:DescribeTrails)",
                    desired.region
                ),
                e,
            )
        })
        .and_then(|trails| {
            configured_trail(desired, trails).ok_or_else(|| {
                Error::check(
                    format!(
                        "trail {trail_name:?} is not among the trails visible in {} (cloudtrail:DescribeTrails)",
                        desired.region
                    ),
                    crate::error::TRAIL_NOT_FOUND_HINT,
                )
            })
        })
        .and_then(|(trail, others)| {
            plan::check_trail(desired, &trail, None)?;
            Ok((trail, others))
        });
    let (trail, other_trails) = match found {
        Ok(found) => found,
        Err(e) => return unless_undelegated(e).await,
    };
    let trail_status = match status.map(|status| status.map_err(|e| status_error(&trail.arn, e))) {
        Some(Err(e)) => return unless_undelegated(e).await,
        Some(Ok(status)) => Some(status),
        None => None,
    };
    Ok(FirstRound {
        runner,
        delegation_pending,
        identity,
        organization,
        trail,
        other_trails,
        trail_status,
        keys,
        landing_zones,
    })
}

fn status_error(trail: &str, e: AwsError) -> Error {
    Error::aws(
        format!("reading the status of trail {trail} (cloudtrail:GetTrailStatus)"),
        e,
    )
}

/// The configured trail among `trails`, and the others. By ARN, or by name:
/// the trail of that name homed in the configured Region, else one homed
/// elsewhere (a shadow copy, so that `check_trail` says where it lives).
pub fn configured_trail(desired: &Desired, mut trails: Vec<Trail>) -> Option<(Trail, Vec<Trail>)> {
    let index = match &desired.trail {
        TrailRef::Arn(arn) => trails.iter().position(|t| &t.arn == arn),
        TrailRef::Name(name) => trails
            .iter()
            .position(|t| &t.name == name && t.home_region == desired.region.as_str())
            .or_else(|| trails.iter().position(|t| &t.name == name)),
    }?;
    let trail = trails.remove(index);
    trails.retain(|t| t.arn != trail.arn);
    Some((trail, trails))
}

/// The key ARN the trail names, when it is a key of the Security Tooling
/// account in the configured Region: the key trailkey most likely manages,
/// whose details `observe` reads before knowing what the alias names.
fn trail_key<'t>(desired: &Desired, trail: &'t Trail) -> Option<&'t str> {
    let arn = trail.kms_key_id.as_deref()?;
    arn.strip_prefix(&key_arn(desired, ""))
        .filter(|id| !id.is_empty())
        .map(|_| arn)
}

/// The ARN of key `id` of the key's account in the configured Region.
fn key_arn(desired: &Desired, id: &str) -> String {
    format!(
        "arn:{}:kms:{}:{}:key/{id}",
        desired.partition(),
        desired.region,
        desired.key_account
    )
}

/// The trail's tags, read only when a plan would change the trail (for the
/// Control Tower guard), so that a no-op plan does not pay for them.
pub async fn trail_tags<C: Connect>(
    connect: &C,
    observed: &Observed,
) -> Result<BTreeMap<String, String>, Error> {
    read_trail_tags(connect.management(), &observed.trail.arn).await
}

/// The organization's account IDs, read only when a foreign statement of
/// the key policy names an account trailkey does not know.
pub async fn organization_accounts<C: Connect>(connect: &C) -> Result<Vec<String>, Error> {
    let accounts = connect.management().list_accounts().await.map_err(|e| {
        Error::aws(
            "listing the organization's accounts, for an account a key policy statement names (organizations:ListAccounts)",
            e,
        )
    })?;
    Ok(accounts.into_iter().map(|a| a.id).collect())
}

/// The trail bucket's policy, default encryption and replication, read
/// with `role_arn` in the Log Archive account: `AssumeRole`, then the three
/// reads at once. Read only when a plan would change the trail.
pub async fn log_bucket<C: Connect>(
    connect: &C,
    desired: &Desired,
    observed: &Observed,
    role_arn: &str,
) -> Result<LogBucket, Error> {
    let bucket = &observed.trail.s3_bucket;
    let region = observed
        .bucket_region
        .as_deref()
        .unwrap_or(desired.region.as_str());
    let s3 = connect.log_archive(role_arn, region).await.map_err(|e| {
        Error::aws(
            format!("assuming {role_arn} in the Log Archive account (sts:AssumeRole)"),
            e,
        )
    })?;
    let (policy, encryption, replication) = tokio::join!(
        s3.bucket_policy(bucket),
        s3.bucket_encryption(bucket),
        s3.bucket_replication(bucket),
    );
    let ctx = |what: &str| {
        format!(
            "reading {what} of bucket {bucket} in the Log Archive account {}",
            desired.log_archive
        )
    };
    Ok(LogBucket {
        policy: policy.map_err(|e| Error::aws(ctx("the policy (s3:GetBucketPolicy)"), e))?,
        encryption: encryption.map_err(|e| {
            Error::aws(
                ctx("the default encryption (s3:GetEncryptionConfiguration)"),
                e,
            )
        })?,
        replication: replication.map_err(|e| {
            Error::aws(
                ctx("the replication configuration (s3:GetReplicationConfiguration)"),
                e,
            )
        })?,
    })
}

async fn read_trail_tags<M: Management>(
    mgmt: &M,
    trail_arn: &str,
) -> Result<BTreeMap<String, String>, Error> {
    mgmt.trail_tags(trail_arn)
        .await
        .map_err(|e| Error::aws("reading the trail's tags (cloudtrail:ListTags)", e))
}

/// Re-reads the trail, its status and the key, keeping the identity and
/// organization already known (after a lost race for the alias, to plan
/// again against the other run's key).
pub async fn refresh<C: Connect>(
    connect: &C,
    keys: &C::KeyStore,
    desired: &Desired,
    previous: &Observed,
) -> Result<Observed, Error> {
    reread(connect, keys, desired, previous, true, None)
        .await
        .into_observed(previous, None)
}

/// What decides whether `key_id` may be deleted ([`plan::check_deletion`]):
/// its tags, the aliases naming it, its grants, every trail of every
/// Region the account has enabled (each read from its home Region), and
/// the CloudTrail Lake event data stores of the home Region, the key's.
/// Read for `destroy --delete-key` when planning, and again just before
/// `ScheduleKeyDeletion`; never by plan or apply. Only what the management
/// account can see: trails and event data stores of other accounts that a
/// foreign key-policy statement lets use the key are not among them. Two
/// rounds: the Regions and the list of event data stores first, with the
/// KMS reads.
pub async fn key_users<M: Management, K: KeyStore>(
    mgmt: &M,
    keys: &K,
    key_id: &str,
) -> Result<plan::KeyUsers, Error> {
    let (trails, event_data_stores, tags, aliases, grants) = tokio::join!(
        trails_in_enabled_regions(mgmt),
        event_data_stores(mgmt),
        keys.list_tags(key_id),
        keys.list_aliases(key_id),
        keys.list_grants(key_id),
    );
    Ok(plan::KeyUsers {
        trails: trails?,
        event_data_stores: event_data_stores?,
        tags: tags.map_err(|e| Error::aws("reading the key's tags (kms:ListResourceTags)", e))?,
        aliases: aliases
            .map_err(|e| Error::aws("reading the key's aliases (kms:ListAliases)", e))?,
        grants: grants.map_err(|e| Error::aws("reading the key's grants (kms:ListGrants)", e))?,
    })
}

/// How many Regions (or event data stores) are read at once.
const READS_AT_ONCE: usize = 8;

/// Every trail of every enabled Region (`ListRegions`, then
/// `DescribeTrails` in each, [`READS_AT_ONCE`] at a time), once each: each
/// Region is asked only for the trails homed there (no shadow copies), so a
/// trail is read from its home Region, which may be another than
/// trailkey's, and never from a shadow copy that has not caught up with a
/// change just made (the trail this destroy has just moved off the key). A
/// disabled Region is not called: its endpoints do not answer the account.
async fn trails_in_enabled_regions<M: Management>(mgmt: &M) -> Result<Vec<Trail>, Error> {
    let regions = mgmt.enabled_regions().await.map_err(|e| {
        Error::aws(
            "listing the account's enabled Regions, whose trails may use the key (account:ListRegions)",
            e,
        )
    })?;
    let lists: Vec<Vec<Trail>> = stream::iter(&regions)
        .map(|region| async move {
            mgmt.describe_trails_in(region).await.map_err(|e| {
                Error::aws(
                    format!(
                        "listing the trails of {region} that may use the key (cloudtrail:DescribeTrails)"
                    ),
                    e,
                )
            })
        })
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(lists.into_iter().flatten().collect())
}

/// The CloudTrail Lake event data stores of the client's Region, with
/// their keys (`ListEventDataStores`, then `GetEventDataStore` for each,
/// [`READS_AT_ONCE`] at a time: the list does not tell the key). One
/// deleted between the two calls is left out.
async fn event_data_stores<M: Management>(mgmt: &M) -> Result<Vec<EventDataStore>, Error> {
    let arns = mgmt.list_event_data_stores().await.map_err(|e| {
        Error::aws(
            "listing the CloudTrail Lake event data stores that may use the key (cloudtrail:ListEventDataStores)",
            e,
        )
    })?;
    let stores: Vec<Option<EventDataStore>> = stream::iter(&arns)
        .map(|arn| async move {
            match mgmt.get_event_data_store(arn).await {
                Ok(store) => Ok(Some(store)),
                Err(e) if e.code == code::EVENT_DATA_STORE_NOT_FOUND => Ok(None),
                Err(e) => Err(Error::aws(
                    "reading a CloudTrail Lake event data store's key (cloudtrail:GetEventDataStore)",
                    e,
                )),
            }
        })
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(stores.into_iter().flatten().collect())
}

/// What [`reread`] read: the verification after apply, before it is
/// interpreted.
#[derive(Debug)]
pub struct Reread {
    trail: Option<AwsResult<Trail>>,
    status: AwsResult<TrailStatus>,
    found: Result<FoundKeys, Error>,
    landing_zone: Option<Result<ObservedLandingZone, Error>>,
}

/// Re-reads what apply may have changed: the trail status, the keys (with
/// `key`, the key the alias should name now, read speculatively, see
/// [`observe_keys`]) and, if `read_trail`, the trail (otherwise it is
/// `UpdateTrail`'s answer, see [`Reread::into_observed`]). One round when the
/// alias names `key`, a trailkey key. The verification after apply starts
/// it while `UpdateTrail` runs (`apply::apply_then`), so it adds no round.
pub async fn reread<C: Connect>(
    connect: &C,
    keys: &C::KeyStore,
    desired: &Desired,
    previous: &Observed,
    read_trail: bool,
    key: Option<String>,
) -> Reread {
    let mgmt = connect.management();
    let trail = OptionFuture::from(read_trail.then(|| mgmt.get_trail(&previous.trail.arn)));
    let zone_arn = previous
        .landing_zone
        .as_ref()
        .and_then(|l| l.zone.as_ref())
        .map(|z| z.arn.as_str());
    let landing_zone = OptionFuture::from(zone_arn.map(|arn| reread_landing_zone(connect, arn)));
    let (trail, status, found, landing_zone) = tokio::join!(
        trail,
        mgmt.trail_status(&previous.trail.arn),
        observe_keys(keys, desired, &previous.trail, key.as_deref()),
        landing_zone,
    );
    Reread {
        trail,
        status,
        found,
        landing_zone,
    }
}

/// The landing zone and its operations in progress, again.
async fn reread_landing_zone<C: Connect>(
    connect: &C,
    arn: &str,
) -> Result<ObservedLandingZone, Error> {
    let (zone, in_progress) = tokio::join!(
        read_landing_zone(connect, arn),
        operations_in_progress(connect),
    );
    Ok(ObservedLandingZone {
        zone: Some(zone?),
        in_progress: in_progress?,
    })
}

impl Reread {
    /// The state after apply: `previous` with what was re-read, and the
    /// trail as `UpdateTrail` returned it when apply updated it.
    pub fn into_observed(
        self,
        previous: &Observed,
        updated_trail: Option<&Trail>,
    ) -> Result<Observed, Error> {
        let trail = match (updated_trail, self.trail) {
            // What UpdateTrail returned is the trail after the write.
            (Some(t), _) => Trail {
                home_region: previous.trail.home_region.clone(),
                has_custom_event_selectors: previous.trail.has_custom_event_selectors,
                ..t.clone()
            },
            (None, Some(read)) => read.map_err(|e| {
                Error::aws("re-reading the trail after apply (cloudtrail:GetTrail)", e)
            })?,
            (None, None) => previous.trail.clone(),
        };
        let status = self.status.map_err(|e| {
            Error::aws(
                "re-reading the trail status after apply (cloudtrail:GetTrailStatus)",
                e,
            )
        })?;
        let found = self.found?;
        let landing_zone = match self.landing_zone {
            Some(read) => Some(read?),
            None => previous.landing_zone.clone(),
        };
        Ok(Observed {
            trail,
            trail_status: status,
            landing_zone,
            alias_target: found.alias_target,
            key: found.key,
            other_keys: found.other_keys,
            unreadable_keys: found.unreadable_keys,
            ..previous.clone()
        })
    }
}

#[cfg(test)]
mod tests;
