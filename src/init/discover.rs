//! What `trailkey init` reads: the caller, the organization, its accounts,
//! the Region's trails and, beside Control Tower's trail, the landing zone;
//! and how it picks the accounts (by name) and the trail among them. See
//! the [module documentation](super) for the rules.

use std::collections::BTreeMap;

use super::{
    AccountKind, Candidate, Delegated, Discovery, Found, MAX_CANDIDATES, NameMatch, TrailInfo,
};
use crate::aws::{
    Account, AccountState, AwsError, CallerIdentity, FeatureSet, LandingZones, Management,
    Organization, Trail,
};
use crate::config::Region;
use crate::error::Error;
use crate::plan::{self, CONTROL_TOWER_TRAIL};

/// Lower-cased letters and digits of `name`; everything else is dropped.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `name` names an account of `kind`.
pub fn name_match(kind: AccountKind, name: &str) -> Option<NameMatch> {
    let n = normalize(name);
    if kind.exact().contains(&n.as_str()) {
        Some(NameMatch::Exact)
    } else if kind.similar().iter().any(|s| n.contains(s)) {
        Some(NameMatch::Similar)
    } else {
        None
    }
}

/// The trails of a [`Found`]: the one, the several, or none.
fn trail_list(found: &Found<TrailInfo>) -> Vec<&TrailInfo> {
    match found {
        Found::One(t) => vec![t],
        Found::Several(ts) => ts.iter().collect(),
        Found::None { .. } => Vec::new(),
    }
}

/// Reads the organization, its accounts and the Region's trails, and the
/// landing zone when an organization trail is Control Tower's.
pub async fn discover<M: Management, L: LandingZones>(
    mgmt: &M,
    lz: &L,
    region: &Region,
) -> Result<Discovery, Error> {
    let (organization, accounts, trails, delegated) = read_organization(mgmt, region).await?;
    let (trail, other_trails, elsewhere) = pick_trail(mgmt, region, trails).await;
    // Control Tower's API is the management account's.
    let landing_zone = match delegated {
        None => find_landing_zone(lz, &trail).await,
        Some(_) => None,
    };
    let mut warnings = warnings(
        &organization,
        &trail,
        landing_zone.is_some(),
        delegated.is_some(),
    );
    let members: Vec<&Account> = accounts
        .iter()
        .filter(|a| a.id != organization.management_account)
        .collect();
    let (security_tooling, log_archive) = match &delegated {
        None => pick_accounts(&members, &trail_buckets(&trail)),
        Some((account, _)) => {
            let own = members
                .iter()
                .find(|a| &a.id == account)
                .map(|a| Candidate {
                    account: (*a).clone(),
                    name_match: name_match(AccountKind::SecurityTooling, &a.name),
                    bucket: None,
                });
            let log_archive = pick_account(
                AccountKind::LogArchive,
                &members,
                Some(account),
                &trail_buckets(&trail),
            );
            if let Some(c) = &own
                && c.name_match != Some(NameMatch::Exact)
            {
                warnings.push(format!(
                    "CloudTrail's delegated administrator here is account {} {:?}, not named exactly like a Security Tooling account ({}): it is written as accounts.security_tooling, where trailkey makes the key. If the key belongs in another account, register that one as CloudTrail's delegated administrator and run init there, or run init from the management account",
                    c.account.id,
                    c.account.name,
                    AccountKind::SecurityTooling.examples()
                ));
            }
            let security_tooling = match own {
                Some(c) => Found::One(c),
                None => Found::None {
                    candidates: Vec::new(),
                    more: 0,
                },
            };
            (security_tooling, log_archive)
        }
    };
    let inactive = inactive_accounts(&members);
    let control_tower = control_tower_sign(&trail, &members);
    Ok(Discovery {
        region: region.clone(),
        organization,
        security_tooling,
        log_archive,
        trail,
        other_trails,
        elsewhere,
        inactive,
        control_tower,
        landing_zone,
        delegated: delegated.map(|(_, d)| d),
        warnings,
    })
}

/// The landing zone's ARN (`ListLandingZones`), looked for only when an
/// organization trail of the Region is Control Tower's. An error (no
/// permission, no Control Tower in the Region) is "none": init says
/// nothing of it but at `-v`.
async fn find_landing_zone<L: LandingZones>(lz: &L, trail: &Found<TrailInfo>) -> Option<String> {
    if !trail_list(trail).iter().any(|t| t.control_tower.is_some()) {
        return None;
    }
    match lz.list_landing_zones().await {
        Ok(arns) => arns.into_iter().next(),
        Err(e) => {
            tracing::info!(
                code = %e.code,
                message = %e.message,
                "could not list Control Tower's landing zones (controltower:ListLandingZones); the config leaves [control_tower] out"
            );
            None
        }
    }
}

/// Reads the caller, the organization, its accounts and the Region's trails
/// at once; fails unless the caller is in the organization's management
/// account, or is CloudTrail's delegated administrator (asked then), and in
/// the Region's partition. With the delegated administrator: its account
/// and how it runs.
async fn read_organization<M: Management>(
    mgmt: &M,
    region: &Region,
) -> Result<
    (
        Organization,
        Vec<Account>,
        Vec<Trail>,
        Option<(String, Delegated)>,
    ),
    Error,
> {
    let (identity, organization, accounts, trails) = tokio::join!(
        mgmt.caller_identity(),
        mgmt.describe_organization(),
        mgmt.list_accounts(),
        mgmt.describe_trails(),
    );
    // Who we are first: a member account's ListAccounts error says less.
    let caller = identity
        .map_err(|e| Error::aws("reading the caller identity (sts:GetCallerIdentity)", e))?;
    let organization = organization.map_err(|e| {
        Error::aws(
            "reading the organization (organizations:DescribeOrganization)",
            e,
        )
    })?;
    let delegated = check_caller(mgmt, region, &caller, &organization).await?;
    let accounts = accounts.map_err(|e| {
        Error::aws(
            "listing the organization's accounts (organizations:ListAccounts)",
            e,
        )
    })?;
    let trails = trails.map_err(|e| {
        Error::aws(
            format!("listing the trails in {region} (cloudtrail:DescribeTrails)"),
            e,
        )
    })?;
    Ok((
        organization,
        accounts,
        trails,
        delegated.then(|| {
            let role = caller
                .arn
                .split_once(":assumed-role/")
                .and_then(|(_, rest)| rest.split('/').next())
                .map(str::to_owned);
            (
                caller.account.clone(),
                Delegated {
                    caller: caller.arn.clone(),
                    role,
                },
            )
        }),
    ))
}

/// The caller checks `plan` makes too, worded for `init --region`; a
/// caller outside the management account must be CloudTrail's delegated
/// administrator (`true`).
async fn check_caller<M: Management>(
    mgmt: &M,
    region: &Region,
    caller: &CallerIdentity,
    org: &Organization,
) -> Result<bool, Error> {
    plan::check_caller_partition(
        caller,
        region,
        "Region",
        "pass --region with a Region of the credentials' partition, or use credentials for that partition",
    )?;
    if caller.account == org.management_account {
        return Ok(false);
    }
    // Refused (a member that is no delegated administrator of any service,
    // or a role, SCP or boundary without the permission): not the
    // management account is what init knows, with both ways out. A
    // failure of the check itself (throttling, a fault) is reported as it is.
    let delegated = match mgmt
        .delegated_administrators(crate::aws::CLOUDTRAIL_PRINCIPAL)
        .await
    {
        Ok(list) => list.contains(&caller.account),
        Err(e) if crate::aws::denied_by(&e).is_some() => false,
        Err(e) => {
            return Err(Error::aws(
                "checking whether the caller is CloudTrail's delegated administrator (organizations:ListDelegatedAdministrators)",
                e,
            ));
        }
    };
    if delegated {
        return Ok(true);
    }
    plan::check_caller_is_management(
        caller,
        org,
        "init",
        "run `trailkey init` with credentials of the management account (e.g. --profile NAME), or from the Security Tooling account once the management account registered it as CloudTrail's delegated administrator (`aws cloudtrail register-organization-delegated-admin --member-account-id <Security Tooling ID>`) and with a role that may call organizations:ListDelegatedAdministrators",
    )?;
    Ok(false)
}

/// What init warns about on stderr: an organization without all features,
/// and a trail Control Tower manages (with `landing_zone`: a landing zone
/// was found, and the file has `[control_tower]` commented).
fn warnings(
    organization: &Organization,
    trail: &Found<TrailInfo>,
    landing_zone: bool,
    delegated: bool,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if organization.feature_set != FeatureSet::All {
        warnings.push(format!(
            "organization {} has feature set {:?}: organization trails need all features; enable them in AWS Organizations (Settings)",
            organization.id, organization.feature_set.as_str()
        ));
    }
    if let Some(t) = trail.one()
        && let Some(why) = &t.control_tower
    {
        let written = if landing_zone {
            " (commented in the file)"
        } else if delegated {
            ", with credentials of the management account, where the landing zone's key is made"
        } else {
            ""
        };
        warnings.push(format!(
            "trail {} is managed by AWS Control Tower ({why}): Control Tower reverts changes made to it, and `trailkey plan` refuses it unless allow_control_tower = true is set under [trail]. The supported way is through the landing zone: set landing_zone = true under [control_tower]{written}, and trailkey sets the landing zone's KMS key (a key in the management account), which Control Tower applies to its trail.",
            t.trail.name
        ));
    }
    warnings
}

/// The buckets of the organization trails found: Log Archive's ID may be
/// in their names.
fn trail_buckets(trail: &Found<TrailInfo>) -> Vec<String> {
    trail_list(trail)
        .iter()
        .map(|t| t.trail.s3_bucket.clone())
        .collect()
}

/// Picks the Security Tooling and the Log Archive accounts among the
/// members.
fn pick_accounts(members: &[&Account], buckets: &[String]) -> (Found<Candidate>, Found<Candidate>) {
    let id = |f: &Found<Candidate>| f.one().map(|c| c.account.id.clone());
    let security_tooling = pick_account(AccountKind::SecurityTooling, members, None, buckets);
    let log_archive = pick_account(
        AccountKind::LogArchive,
        members,
        id(&security_tooling).as_deref(),
        buckets,
    );
    // Once Log Archive is known, it is no Security Tooling candidate.
    let security_tooling = match security_tooling {
        Found::One(a) => Found::One(a),
        _ => pick_account(
            AccountKind::SecurityTooling,
            members,
            id(&log_archive).as_deref(),
            buckets,
        ),
    };
    (security_tooling, log_archive)
}

/// The members named like a landing-zone account that are not ACTIVE.
fn inactive_accounts(members: &[&Account]) -> Vec<(AccountKind, Account)> {
    let mut inactive = Vec::new();
    for kind in [AccountKind::SecurityTooling, AccountKind::LogArchive] {
        for a in members {
            if a.state != AccountState::Active
                && name_match(kind, &a.name) == Some(NameMatch::Exact)
            {
                inactive.push((kind, (*a).clone()));
            }
        }
    }
    inactive
}

/// Why this looks like a Control Tower landing zone: its trail, or else an
/// ACTIVE account named "Audit".
fn control_tower_sign(trail: &Found<TrailInfo>, members: &[&Account]) -> Option<String> {
    trail_list(trail)
        .into_iter()
        .find(|t| t.control_tower.is_some())
        .map(|t| format!("trail {}", t.trail.name))
        .or_else(|| {
            members
                .iter()
                .find(|a| a.state == AccountState::Active && normalize(&a.name) == "audit")
                .map(|a| format!("an account named {:?}", a.name))
        })
}

/// Chooses the account of `kind` among the members, leaving out `taken`.
/// Only an exact name match among ACTIVE accounts is chosen; otherwise
/// every other ACTIVE account is a candidate, the likeliest first.
fn pick_account(
    kind: AccountKind,
    members: &[&Account],
    taken: Option<&str>,
    buckets: &[String],
) -> Found<Candidate> {
    let mut candidates: Vec<Candidate> = members
        .iter()
        .filter(|a| a.state == AccountState::Active && Some(a.id.as_str()) != taken)
        .map(|a| Candidate {
            account: (*a).clone(),
            name_match: name_match(kind, &a.name),
            bucket: (kind == AccountKind::LogArchive)
                .then(|| buckets.iter().find(|b| b.contains(&a.id)).cloned())
                .flatten(),
        })
        .collect();
    // Exact names first, then similar names, then a bucket named after it.
    candidates.sort_by_cached_key(|c| {
        (
            c.name_match.map_or(2, |m| m as u8),
            c.bucket.is_none(),
            normalize(&c.account.name),
            c.account.id.clone(),
        )
    });
    let exact = candidates
        .iter()
        .take_while(|c| c.name_match == Some(NameMatch::Exact))
        .count();
    match exact {
        1 => Found::One(candidates.swap_remove(0)),
        2.. => {
            candidates.truncate(exact);
            Found::Several(candidates)
        }
        0 => {
            let more = candidates.len().saturating_sub(MAX_CANDIDATES);
            candidates.truncate(MAX_CANDIDATES);
            Found::None { candidates, more }
        }
    }
}

/// Chooses the organization trail homed in `region`; returns it, the other
/// trails there, and organization trails homed elsewhere.
async fn pick_trail<M: Management>(
    mgmt: &M,
    region: &Region,
    trails: Vec<Trail>,
) -> (Found<TrailInfo>, Vec<Trail>, Vec<Trail>) {
    let mut org = Vec::new();
    let mut other = Vec::new();
    let mut elsewhere = Vec::new();
    for t in trails {
        if t.home_region != region.as_str() {
            if t.is_organization_trail {
                elsewhere.push(t);
            }
        } else if t.is_organization_trail {
            org.push(t);
        } else {
            other.push(t);
        }
    }
    for v in [&mut org, &mut other, &mut elsewhere] {
        v.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let tags = futures_util::future::join_all(org.iter().map(|t| mgmt.trail_tags(&t.arn))).await;
    let mut infos: Vec<TrailInfo> = org
        .into_iter()
        .zip(tags)
        .map(|(trail, tags)| trail_info(trail, tags))
        .collect();
    let found = match infos.len() {
        0 => Found::None {
            candidates: Vec::new(),
            more: 0,
        },
        1 => Found::One(infos.remove(0)),
        _ => Found::Several(infos),
    };
    (found, other, elsewhere)
}

fn trail_info(trail: Trail, tags: Result<BTreeMap<String, String>, AwsError>) -> TrailInfo {
    let (tag, tags_error) = match &tags {
        Ok(tags) => (plan::control_tower_tag(tags).cloned(), None),
        Err(e) => (None, Some(e.code.clone())),
    };
    let control_tower = if trail.name == CONTROL_TOWER_TRAIL {
        Some("recognised by its name".to_owned())
    } else {
        tag.map(|k| format!("recognised by its tag {k:?}"))
    };
    TrailInfo {
        trail,
        control_tower,
        tags_error,
    }
}
