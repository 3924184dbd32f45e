//! `[key]`: the rotation period, the key's tags, and the protection with
//! its admins.

use std::collections::BTreeMap;

use super::{each_once, field_error, listed_twice, principal};
use crate::config::*;

/// The days between automatic rotations KMS accepts
/// (`RotationPeriodInDaysType` of the KMS API: min 90, max 2560).
pub const ROTATION_PERIOD_DAYS: std::ops::RangeInclusive<i64> = 90..=2560;

/// `key.rotation_period_days`: within KMS's range, and only with rotation
/// on (a period for a rotation trailkey leaves off would never be set).
pub(super) fn validate_rotation_period(
    days: Option<i64>,
    rotation: bool,
    path: &Path,
) -> Result<Option<i32>, Error> {
    let Some(days) = days else {
        return Ok(None);
    };
    let field = "key.rotation_period_days";
    if !ROTATION_PERIOD_DAYS.contains(&days) {
        return Err(field_error(
            path,
            field,
            format!("{days} days is outside the rotation periods KMS accepts"),
            &format!(
                "set a number of days from {} to {} (EnableKeyRotation's RotationPeriodInDays), or remove the field to leave the period as it is",
                ROTATION_PERIOD_DAYS.start(),
                ROTATION_PERIOD_DAYS.end()
            ),
        ));
    }
    if !rotation {
        return Err(field_error(
            path,
            field,
            format!(
                "a rotation period of {days} days is set, but key.rotation = false leaves rotation as it is"
            ),
            "remove key.rotation_period_days, or set key.rotation = true (the default) to have trailkey turn rotation on with that period",
        ));
    }
    Ok(Some(i32::try_from(days).expect("within 90..=2560")))
}

/// The tags the key must carry: those of `[key.tags]`, checked against the
/// KMS rules and never one trailkey sets, plus trailkey's own.
pub(super) fn validate_tags(
    configured: &BTreeMap<String, String>,
    alias: &AliasName,
    path: &Path,
) -> Result<BTreeMap<String, String>, Error> {
    let mut tags = BTreeMap::new();
    for (k, v) in configured {
        check_tag(k, v).map_err(|m| {
            field_error(
                path,
                &format!("key.tags.{k}"),
                m,
                "tag keys are 1-128 characters and values up to 256, of letters, digits, spaces and _ . : / = + - @; keys may not start with \"aws:\"",
            )
        })?;
        if k == MANAGED_BY_TAG.0 || k.to_lowercase().starts_with(RESERVED_TAG_PREFIX) {
            return Err(field_error(
                path,
                &format!("key.tags.{k}"),
                format!("the tag {k:?} is set by trailkey itself"),
                "remove it from [key.tags]: ManagedBy and every tag key starting with \"trailkey:\" are trailkey's own",
            ));
        }
        tags.insert(k.clone(), v.clone());
    }
    let own = TRAILKEY_TAGS.len();
    if tags.len() + own > MAX_KEY_TAGS {
        return Err(field_error(
            path,
            "key.tags",
            format!(
                "{} tags, with trailkey's own {own} ({}, {ALIAS_TAG}, {}), make {}: over KMS's limit of {MAX_KEY_TAGS} tags per key",
                tags.len(),
                MANAGED_BY_TAG.0,
                CREATED_TAG.0,
                tags.len() + own
            ),
            &format!(
                "keep at most {} tags in [key.tags] (\"Tags in AWS KMS\", AWS KMS Developer Guide)",
                MAX_KEY_TAGS - own
            ),
        ));
    }
    tags.insert(MANAGED_BY_TAG.0.to_owned(), MANAGED_BY_TAG.1.to_owned());
    tags.insert(ALIAS_TAG.to_owned(), alias.short().to_owned());
    Ok(tags)
}

fn check_tag(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(format!("tag key {key:?} must be 1-128 characters"));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(format!(
            "tag key {key:?} starts with \"aws:\", which AWS reserves"
        ));
    }
    if value.chars().count() > 256 {
        return Err(format!("the value of tag {key:?} is over 256 characters"));
    }
    // KMS tags: Unicode letters, digits, spaces and _ . : / = + - @
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    if let Some(c) = key.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "tag key {key:?} contains {c:?}, which a tag may not contain"
        ));
    }
    if let Some(c) = value.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "the value of tag {key:?} contains {c:?}, which a tag may not contain"
        ));
    }
    Ok(())
}

/// `key.protect` and `key.admins`: admins are IAM role or user ARNs of the
/// Security Tooling account (KMS does not let other accounts disable or
/// delete a key), each once, at most [`MAX_ADMINS`], and only with
/// `protect = true`.
pub(super) fn validate_protect(
    protect: Option<bool>,
    admins: Option<Vec<String>>,
    region: &Region,
    key_account: &AccountId,
    path: &Path,
) -> Result<Option<Vec<Principal>>, Error> {
    let admins = admins.unwrap_or_default();
    if protect != Some(true) {
        if admins.is_empty() {
            return Ok(None);
        }
        return Err(field_error(
            path,
            "key.admins",
            "key.admins is set, but key.protect is not true".to_owned(),
            "set protect = true under [key] to deny kms:DisableKey, kms:ScheduleKeyDeletion and kms:DisableKeyRotation to all but trailkey and the admins, or remove admins",
        ));
    }
    let example = format!(
        "\"arn:{}:iam::{key_account}:role/BreakGlass\"",
        region.partition()
    );
    let parse = |field: &str, value: &str| admin(field, value, region, key_account, &example, path);
    let repeats = |value: &str, admin: &Principal, before: &[Principal]| {
        before
            .contains(admin)
            .then(|| listed_twice(&format!("{value:?}")))
    };
    let out = each_once(Some(admins), ("key.admins", "admin"), path, parse, repeats)?;
    if out.len() > MAX_ADMINS {
        return Err(field_error(
            path,
            "key.admins",
            format!(
                "{} admins are listed; trailkey allows at most {MAX_ADMINS}",
                out.len()
            ),
            "give the break-glass roles only: trailkey's own role is always exempt",
        ));
    }
    Ok(Some(out))
}

/// One of `key.admins`: an IAM role or user ARN of the key's account
/// (Security Tooling, or the management account with the landing zone):
/// KMS lets only the key's own account disable or delete it.
fn admin(
    field: &str,
    value: &str,
    region: &Region,
    key_account: &AccountId,
    example: &str,
    path: &Path,
) -> Result<Principal, Error> {
    let hint = format!(
        "give an IAM role or user ARN of the key's account (Security Tooling, or the management account with [control_tower] landing_zone), e.g. {example}"
    );
    let admin = principal(path, field, value, region, &hint)?;
    if admin.account != *key_account {
        return Err(field_error(
            path,
            field,
            format!(
                "{value:?} is in account {}, not the key's account {key_account}: KMS lets only the key's own account disable or delete it",
                admin.account
            ),
            &format!("give a role or user of the key's account, e.g. {example}"),
        ));
    }
    Ok(admin)
}
