//! `[trail]`: the trail by name or ARN, in the configured Region, and its
//! settings.

use super::{Accounts, field_error, required};
use crate::config::raw::RawTrail;
use crate::config::*;

/// A validated `[trail]` table, its defaults filled in.
pub(super) struct TrailSettings {
    pub(super) name: TrailRef,
    pub(super) organization_trail: bool,
    pub(super) allow_control_tower: bool,
    pub(super) log_file_validation: Option<bool>,
    pub(super) logging: Option<bool>,
}

/// `[trail]`, absent or not: its name, and the defaults of the rest.
pub(super) fn validate_trail(
    raw: Option<RawTrail>,
    region: &Region,
    accounts: &Accounts,
    path: &Path,
) -> Result<TrailSettings, Error> {
    let t = raw.unwrap_or_default();
    Ok(TrailSettings {
        name: validate_trail_name(t.name, region, accounts.management.as_ref(), path)?,
        organization_trail: t.organization_trail.unwrap_or(true),
        allow_control_tower: t.allow_control_tower.unwrap_or(false),
        log_file_validation: t.log_file_validation,
        logging: t.logging,
    })
}

/// `trail.name`: required, a trail name or ARN.
fn validate_trail_name(
    name: Option<String>,
    region: &Region,
    management: Option<&AccountId>,
    path: &Path,
) -> Result<TrailRef, Error> {
    let name = required(
        name,
        path,
        "trail.name",
        "trail.name is required",
        "add [trail] with name = \"<organization trail name or ARN>\" (see `aws cloudtrail describe-trails`)",
    )?;
    parse_trail(&name, region, management).map_err(|(m, h)| field_error(path, "trail.name", m, &h))
}

fn parse_trail(
    value: &str,
    region: &Region,
    management: Option<&AccountId>,
) -> Result<TrailRef, (String, String)> {
    if let Some(rest) = value.strip_prefix("arn:") {
        return parse_trail_arn(value, rest, region, management);
    }
    if in_ip_address_format(value) {
        return Err(ip_address_name(value));
    }
    if !valid_trail_name(value) {
        return Err((
            format!("{value:?} is not a valid trail name"),
            "a trail name is 3-128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit, with no two of '._-' in a row; or give the trail ARN (see `aws cloudtrail describe-trails`)".to_owned(),
        ));
    }
    Ok(TrailRef::Name(value.to_owned()))
}

/// A trail named by ARN (`rest` is what follows `arn:`): a CloudTrail trail
/// ARN in `region`, of the management account when that is given.
fn parse_trail_arn(
    value: &str,
    rest: &str,
    region: &Region,
    management: Option<&AccountId>,
) -> Result<TrailRef, (String, String)> {
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let bad = || {
        (
            format!("{value:?} is not a CloudTrail trail ARN"),
            format!(
                "use arn:{}:cloudtrail:{region}:<management account>:trail/<name> as `aws cloudtrail describe-trails` shows it, or just the trail name",
                region.partition()
            ),
        )
    };
    let [p, service, trail_region, acct, resource] = parts[..] else {
        return Err(bad());
    };
    let name = resource.strip_prefix("trail/").ok_or_else(bad)?;
    if service == "cloudtrail" && in_ip_address_format(name) {
        return Err(ip_address_name(name));
    }
    if service != "cloudtrail" || !valid_trail_name(name) {
        return Err(bad());
    }
    let Some(acct_id) = AccountId::parse(acct) else {
        return Err(bad());
    };
    check_trail_home(p, trail_region, region)?;
    if let Some(m) = management
        && &acct_id != m
    {
        return Err((
            format!(
                "the trail ARN is in account {acct_id}, but accounts.management is {m}"
            ),
            "an organization trail belongs to the management account; fix the ARN or accounts.management".to_owned(),
        ));
    }
    Ok(TrailRef::Arn(value.to_owned()))
}

/// A trail ARN's partition `p` and Region `trail_region`: a Region of that
/// partition, and the configured `region` (where the key is created).
fn check_trail_home(p: &str, trail_region: &str, region: &Region) -> Result<(), (String, String)> {
    let home = Region::check(trail_region)
        .map_err(|e| (format!("in the trail ARN, {}", e.message), e.hint))?;
    if p != home.partition() {
        return Err((
            format!(
                "the trail ARN is in partition {p:?}, but its Region {home} is in {:?}",
                home.partition()
            ),
            "copy the trail ARN from `aws cloudtrail describe-trails`, or give just the trail name"
                .to_owned(),
        ));
    }
    if home == *region {
        return Ok(());
    }
    let partition_note = if home.partition() == region.partition() {
        String::new()
    } else {
        format!(
            " (the trail is in partition {:?}, region {region} in {:?})",
            home.partition(),
            region.partition()
        )
    };
    Err((
        format!("the trail's home Region is {home}, but region is {region}{partition_note}"),
        format!("the key must be created in the trail's home Region: set region = \"{home}\""),
    ))
}

/// CloudTrail's rule for trail names: 3-128 ASCII letters, digits, `.`, `_`
/// and `-`, starting and ending with a letter or digit, no two of `._-` in a
/// row, and not in IP address format.
fn valid_trail_name(name: &str) -> bool {
    let punct = |c: char| "._-".contains(c);
    !in_ip_address_format(name)
        && (3..=128).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || punct(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name
            .as_bytes()
            .windows(2)
            .any(|w| punct(w[0] as char) && punct(w[1] as char))
}

/// "Not be in IP address format (for example, 192.168.5.4)" (CloudTrail's
/// `CreateTrail` and `UpdateTrail` `Name`): the format is the shape, four
/// numbers of one to three digits joined by dots, whatever their values, so
/// `10.0.0.256` is in it too. Three numbers (`1.2.3`) or five are not, nor
/// is a name with a letter among its dots (`org.trail-1`).
fn in_ip_address_format(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The error for a trail name in IP address format.
fn ip_address_name(name: &str) -> (String, String) {
    (
        format!(
            "{name:?} is not a valid trail name: it is in IP address format (four numbers joined by dots, like 192.168.5.4), which CloudTrail does not allow"
        ),
        "give the organization trail's name or ARN as `aws cloudtrail describe-trails` shows it; a trail name may contain dots, but not be four numbers joined by dots".to_owned(),
    )
}
