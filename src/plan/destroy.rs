//! `destroy`: the trail back to SSE-S3 and, with `--delete-key`, the key's
//! deletion, refused while anything uses the key.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

/// Does `kms_key_id` (as a trail holds it) name `key`: by its ARN, its ID,
/// or one of `aliases` (`alias/...`, as a name or inside an alias ARN)?
pub fn names_key(kms_key_id: Option<&str>, key: &KeyInfo, aliases: &[&str]) -> bool {
    kms_key_id.is_some_and(|id| {
        id == key.arn
            || id == key.key_id
            || aliases
                .iter()
                .any(|alias| id == *alias || id.ends_with(&format!(":{alias}")))
    })
}

/// What decides whether a key may be deleted, read just before deciding
/// (`observe::key_users`): the key's tags, the aliases that name it, its
/// grants, every trail of every enabled Region (each read from its home
/// Region), and the CloudTrail Lake event data stores of the key's Region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUsers {
    pub tags: BTreeMap<String, String>,
    pub aliases: Vec<String>,
    pub trails: Vec<Trail>,
    /// The key's grants: AWS services and others that use the key.
    pub grants: Vec<crate::aws::Grant>,
    pub event_data_stores: Vec<crate::aws::EventDataStore>,
}

/// Refuses the deletion of `key` unless trailkey's own `CreateKey` made it
/// ([`created_by_trailkey`]) and nothing uses it: no grant, no event data
/// store and no trail ([`check_unused`]) naming it by ARN, ID, the
/// configured `alias` or any alias that names it. The error names every use
/// found. `moving_off` is the trail the same destroy moves back to SSE-S3
/// first (at plan time); just before `ScheduleKeyDeletion` it is `None`, so
/// that trail must not name the key either. The plan and the apply make
/// this one check.
pub fn check_deletion(
    alias: &str,
    key: &KeyInfo,
    users: &KeyUsers,
    moving_off: Option<&str>,
) -> Result<(), Error> {
    check_created(key, users)?;
    let mut aliases: Vec<&str> = users.aliases.iter().map(String::as_str).collect();
    aliases.push(alias);
    // Each kind of use: what the message says of it, and what the hint says
    // to do about it.
    let uses: Vec<(String, String)> = [
        grant_use(key, users),
        store_use(key, users, &aliases),
        check_unused(key, &users.trails, &aliases, moving_off)
            .err()
            .map(|trails| {
                (
                    format!("still encrypts trail(s) {}", trails.join(", ")),
                    "move those trails to another key first".to_owned(),
                )
            }),
    ]
    .into_iter()
    .flatten()
    .collect();
    if uses.is_empty() {
        return Ok(());
    }
    let (what, fixes): (Vec<String>, Vec<String>) = uses.into_iter().unzip();
    Err(Error::check(
        format!(
            "--delete-key refused: the key {} {}",
            key.arn,
            what.join("; and it ")
        ),
        format!(
            "{}; or run destroy without --delete-key (the key is kept)",
            fixes.join("; ")
        ),
    ))
}

/// Refuses a key trailkey's own `CreateKey` did not make.
fn check_created(key: &KeyInfo, users: &KeyUsers) -> Result<(), Error> {
    if created_by_trailkey(&users.tags) {
        return Ok(());
    }
    let how = if managed_by_trailkey(&users.tags) {
        format!(
            "trailkey manages it but did not create it: it carries {}={} but not {}={}, so it is a key trailkey adopted (the alias named it first) or one an older trailkey created without that mark",
            MANAGED_BY_TAG.0, MANAGED_BY_TAG.1, CREATED_TAG.0, CREATED_TAG.1
        )
    } else {
        format!(
            "trailkey did not create it (no tag {}={})",
            CREATED_TAG.0, CREATED_TAG.1
        )
    };
    Err(Error::check(
        format!(
            "--delete-key refused: key {} may encrypt more than this trail's logs; {how}",
            key.arn
        ),
        "trailkey deletes only keys it created: run destroy without --delete-key (the trail goes back to SSE-S3 and the key is kept), and delete that key yourself once you know nothing else uses it",
    ))
}

/// The key's grants as a use: what the refusal says, and what to do.
fn grant_use(key: &KeyInfo, users: &KeyUsers) -> Option<(String, String)> {
    if users.grants.is_empty() {
        return None;
    }
    let grants: Vec<String> = users
        .grants
        .iter()
        .map(|g| {
            format!(
                "grant {} to {} ({})",
                g.id,
                g.grantee,
                g.operations.join(", ")
            )
        })
        .collect();
    Some((
        format!(
            "is used through {} grant(s): {}",
            grants.len(),
            grants.join("; ")
        ),
        format!(
            "a grant is how an AWS service or another principal uses the key (`aws kms list-grants --key-id {}`): retire or revoke the grants whose data no longer needs the key",
            key.key_id
        ),
    ))
}

/// The event data stores the key encrypts, as a use.
fn store_use(key: &KeyInfo, users: &KeyUsers, aliases: &[&str]) -> Option<(String, String)> {
    let stores: Vec<String> = users
        .event_data_stores
        .iter()
        .filter(|s| names_key(s.kms_key_id.as_deref(), key, aliases))
        .map(|s| format!("{} ({}, status {})", s.name, s.arn, s.status))
        .collect();
    (!stores.is_empty()).then(|| {
        (
            format!(
                "encrypts {} CloudTrail Lake event data store(s): {}",
                stores.len(),
                stores.join(", ")
            ),
            "an event data store's events cannot be read once its key is deleted, and its key cannot be changed: delete the event data store first if its events are no longer needed".to_owned(),
        )
    })
}

/// Whether any of `trails` but `moving_off` names `key`, by ARN, ID or one
/// of `aliases`; `Err` names those that do: ARN and home Region.
pub fn check_unused(
    key: &KeyInfo,
    trails: &[Trail],
    aliases: &[&str],
    moving_off: Option<&str>,
) -> Result<(), Vec<String>> {
    let using: Vec<String> = trails
        .iter()
        .filter(|t| Some(t.arn.as_str()) != moving_off)
        .filter(|t| names_key(t.kms_key_id.as_deref(), key, aliases))
        .map(|t| format!("{} (home Region {})", t.arn, t.home_region))
        .collect();
    if using.is_empty() { Ok(()) } else { Err(using) }
}

/// `destroy --delete-key` from Security Tooling: what decides the
/// deletion cannot be seen from there. The management account's own
/// trails and event data stores, which a foreign key-policy statement may
/// let use the key, are not listed to a member account (CloudTrail lists a
/// member the organization's trails, as shadow trails, and its own), so
/// [`check_deletion`] could pass a key still in use.
pub fn delete_key_as_delegated_administrator(desired: &Desired) -> Error {
    Error::check(
        "destroy --delete-key cannot run from Security Tooling as CloudTrail's delegated administrator: the management account's own trails and event data stores, which may use the key, are not visible from there",
        format!(
            "run `trailkey destroy` here to move the trail off the key, then `trailkey destroy --delete-key` with credentials of the management account (with roles.security_tooling set to a role it may assume in {}), or schedule the key's deletion yourself once nothing uses it",
            desired.security_tooling
        ),
    )
}

/// The destroy plan, the backout: the trail back to SSE-S3;
/// the key and alias kept, because existing logs need the key to be read,
/// unless `delete_key` (the deletion window in days, and the key's users
/// read for it), which removes the alias and schedules the key's deletion,
/// refused by [`check_deletion`].
pub fn plan_destroy(
    desired: &Desired,
    observed: &Observed,
    delete_key: Option<(i32, &KeyUsers)>,
) -> Result<Planned, Error> {
    check_context(
        desired,
        observed.runner,
        &observed.identity,
        &observed.organization,
    )?;
    if delete_key.is_some() && observed.runner == Runner::DelegatedAdministrator {
        return Err(delete_key_as_delegated_administrator(desired));
    }
    check_trail(desired, &observed.trail, observed.trail_tags.read())?;
    let zone = check_landing_zone(desired, observed)?;
    let key = observed.key.as_ref();
    let backout = match zone {
        Some(zone) => landing_zone_backout(desired, observed, zone)?,
        None => trail_backout(desired, observed),
    };
    let moves = backout.action == Action::Update;
    // Only a trail this destroy moves off the key is exempt from the check,
    // made before any read planning asks for: a key still in use stops the
    // destroy whatever the Log Archive side says.
    let moving_off = moves.then_some(observed.trail.arn.as_str());
    // The key's deletion, or the trail's own backout (without the landing
    // zone), write to the key's side; the landing zone's backout to it.
    let writes_key = (key.is_some() && delete_key.is_some()) || (moves && zone.is_none());
    let busy = refuse_while_busy(observed, zone, writes_key, moves && zone.is_some())?;
    if let (Some(k), Some((_, users))) = (key, delete_key) {
        check_deletion(&desired.alias.full(), &k.info, users, moving_off)?;
        if let Some(zone) = zone {
            check_manifest_uses(desired, zone, &k.info, users)?;
        }
    }
    let wanted = [
        (Need::OrganizationAccounts, false),
        (
            Need::TrailTags,
            observed.trail.kms_key_id.is_some() && !desired.landing_zone,
        ),
        (Need::LogBucket, moves && desired.log_archive_role.is_some()),
    ];
    Planned::unless_needs(observed, wanted, || {
        let findings = if moves {
            log_archive_findings(desired, observed, true)?
        } else {
            Vec::new()
        };
        let mut findings = findings;
        findings.extend(busy.clone());
        let mut changes = vec![backout];
        match (key, delete_key) {
            (Some(k), Some((days, _))) => changes.extend(key_deletion(desired, observed, k, days)),
            (Some(k), None) => changes.push(
                Change::no_op(
                    Address::KmsKey,
                    json!({ "arn": k.info.arn, "state": k.info.state }),
                )
                .because(
                    "kept: the logs already written need the key to be read (--delete-key removes it)",
                ),
            ),
            (None, _) => {}
        }
        Ok(Plan::of(desired, observed, changes, findings, key))
    })
}

/// Destroy's change to the trail: back to SSE-S3 if it names trailkey's key.
pub(super) fn trail_backout(desired: &Desired, observed: &Observed) -> Change {
    let trail = &observed.trail;
    let alias = desired.alias.full();
    let before = json!({ "trail": trail.arn, "kms_key_id": trail.kms_key_id });
    match &observed.key {
        Some(k) if names_key(trail.kms_key_id.as_deref(), &k.info, &[&alias]) => Change::new(
            Address::TrailEncryption,
            Action::Update,
            before,
            json!({ "trail": trail.arn, "kms_key_id": null }),
        )
        .because("the trail goes back to SSE-S3: new log files are encrypted with S3-managed keys, not the KMS key")
        .steps([Step::DisableTrailEncryption(trail.arn.clone())]),
        _ if trail.kms_key_id.is_some() => Change::no_op(Address::TrailEncryption, before)
            .because("the trail uses a key trailkey does not manage: left as it is"),
        _ => Change::no_op(Address::TrailEncryption, before),
    }
}

/// `destroy --delete-key`'s changes to a key [`check_deletion`] allowed:
/// its alias removed, then its deletion scheduled after `days`.
pub(super) fn key_deletion(
    desired: &Desired,
    observed: &Observed,
    k: &ObservedKey,
    days: i32,
) -> Vec<Change> {
    let alias = desired.alias.full();
    let mut changes = Vec::new();
    if observed
        .alias_target
        .as_ref()
        .is_some_and(|t| t.key_id == k.info.key_id)
    {
        changes.push(
            Change::new(
                Address::KmsAlias,
                Action::Delete,
                json!({ "name": alias, "target_key_id": k.info.key_id }),
                Value::Null,
            )
            .steps([Step::DeleteAlias(alias.clone())]),
        );
    }
    let view = json!({ "arn": k.info.arn, "state": k.info.state });
    changes.push(if k.info.state == KeyState::PendingDeletion {
        Change::no_op(Address::KmsKey, view).because("the key is already pending deletion")
    } else {
        Change::new(Address::KmsKey, Action::Delete, view, Value::Null)
            .because(format!(
                "KMS deletes the key after {days} days; every log file it encrypted is unreadable from then on. Until then `aws kms cancel-key-deletion` (or `trailkey apply`) rescues it"
            ))
            .steps([Step::ScheduleKeyDeletion(days)])
    });
    changes
}

pub(super) fn trail_reason(trail: &Trail, key: Option<&KeyInfo>, alias: &str) -> String {
    let Some(current) = trail.kms_key_id.as_deref() else {
        return "the trail is not encrypted with a KMS key (SSE-S3 only)".to_owned();
    };
    match key {
        // Not by its ARN: that would be no change.
        Some(k) if names_key(Some(current), k, &[alias]) => {
            format!("the trail names the key as {current:?}, not by its key ARN")
        }
        _ => format!("the trail uses another key: {current}"),
    }
}

/// Refuses `--delete-key` while the landing zone's manifest names the key
/// elsewhere than for Control Tower's trail ([`manifest_uses`]).
fn check_manifest_uses(
    desired: &Desired,
    zone: &crate::aws::LandingZone,
    key: &KeyInfo,
    users: &KeyUsers,
) -> Result<(), Error> {
    let alias = desired.alias.full();
    let mut aliases: Vec<&str> = users.aliases.iter().map(String::as_str).collect();
    aliases.push(&alias);
    let uses = manifest_uses(zone, key, &aliases);
    if uses.is_empty() {
        return Ok(());
    }
    Err(Error::check(
        format!(
            "--delete-key refused: the landing zone's manifest names the key {} at {} (on landing zone 4.0, /config/configurations/kmsKeyArn is AWS Config's own key)",
            key.arn,
            uses.join(", ")
        ),
        "point that setting at another key first (Control Tower console, Landing zone settings), or run destroy without --delete-key (the key is kept)",
    ))
}
