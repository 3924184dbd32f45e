//! The checks before any write: the caller, the organization, the trail,
//! the bucket, a key found by its tags, the key's tags and shape.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

/// Checks the caller and the organization against the config. Pure; called
/// by `observe` right after the first round of reads, before anything else
/// is interpreted.
pub fn check_context(
    desired: &Desired,
    runner: Runner,
    identity: &CallerIdentity,
    org: &Organization,
) -> Result<(), Error> {
    check_caller_partition(
        identity,
        &desired.region,
        "region",
        "use credentials for the partition of `region`, or fix `region`",
    )?;
    if org.feature_set != FeatureSet::All {
        return Err(Error::check(
            format!(
                "organization {} has feature set {:?}; organization trails need all features",
                org.id,
                org.feature_set.as_str()
            ),
            "enable all features in AWS Organizations (Settings), then run again",
        ));
    }
    if let Some(m) = &desired.management
        && m.as_str() != org.management_account
    {
        return Err(Error::check(
            format!(
                "accounts.management is {m}, but the organization's management account is {}",
                org.management_account
            ),
            format!(
                "set accounts.management = \"{}\" in {}, or remove it (trailkey reads it from Organizations)",
                org.management_account,
                desired.source.display()
            ),
        ));
    }
    match runner {
        Runner::Management => check_caller_is_management(
            identity,
            org,
            "trailkey",
            "run trailkey with credentials of the management account (e.g. --profile), or set roles.management to a role there",
        )?,
        // observe decided so from this identity; it checks the delegation
        // itself right after this.
        Runner::DelegatedAdministrator => check_protection_exempts_runner(desired, identity)?,
    }
    for (field, acct) in [
        ("security_tooling", &desired.security_tooling),
        ("log_archive", &desired.log_archive),
    ] {
        if acct.as_str() == org.management_account {
            return Err(Error::check(
                format!("accounts.{field} is {acct}, the management account itself"),
                "the key belongs in the Security Tooling (Audit) account and the logs in Log Archive: use those accounts' IDs",
            ));
        }
    }
    Ok(())
}

/// With `key.protect`, run from Security Tooling: the protection exempts
/// `roles.security_tooling` as trailkey's own role, so the role the caller
/// runs as must be that one, or the policy trailkey writes would deny
/// trailkey its own repairs.
fn check_protection_exempts_runner(
    desired: &Desired,
    identity: &CallerIdentity,
) -> Result<(), Error> {
    let Some(exempt) = desired.protect_exempt() else {
        return Ok(());
    };
    // A session's ARN, arn:<partition>:sts::<account>:assumed-role/<name>/<session>:
    // the role is arn:<partition>:iam::<account>:role/<name>, its path unknown
    // here (a path-less pattern and a `role/*/` one are both exempt).
    let role = identity
        .arn
        .split_once(":assumed-role/")
        .and_then(|(_, rest)| rest.split('/').next())
        .map(|name| {
            format!(
                "arn:{}:iam::{}:role/{name}",
                desired.partition(),
                identity.account
            )
        });
    match role {
        Some(role) if crate::policy::protect_exempts(&exempt, &role) => Ok(()),
        Some(role) => Err(Error::check(
            format!(
                "key.protect would deny the role trailkey runs as, {role}: the protection exempts roles.security_tooling ({})",
                desired.security_tooling_role_arn()
            ),
            format!(
                "set roles.security_tooling = \"{}\" in {}: from Security Tooling it names the role trailkey runs as",
                role.rsplit('/').next().unwrap_or_default(),
                desired.source.display()
            ),
        )),
        None => Err(Error::check(
            format!(
                "key.protect needs trailkey to run as a role, but the caller is {}",
                identity.arn
            ),
            "run trailkey from Security Tooling as the role roles.security_tooling names (a user cannot be exempt from the protection)",
        )),
    }
}

/// Fails unless the credentials are in `region`'s partition. `region_word`
/// is how the command's user names the Region (the config's `region`, or
/// `--region`); `hint` is the command's own fix.
pub fn check_caller_partition(
    identity: &CallerIdentity,
    region: &crate::config::Region,
    region_word: &str,
    hint: &str,
) -> Result<(), Error> {
    let partition = identity.partition().unwrap_or_default();
    if partition != region.partition() {
        return Err(Error::check(
            format!(
                "the credentials are for partition {partition:?}, but {region_word} {region} is in {:?}",
                region.partition()
            ),
            hint,
        ));
    }
    Ok(())
}

/// Fails unless the caller is in the organization's management account.
/// `runner` is who runs as the caller (`trailkey`, `init`); `hint` is the
/// command's own fix.
pub fn check_caller_is_management(
    identity: &CallerIdentity,
    org: &Organization,
    runner: &str,
    hint: &str,
) -> Result<(), Error> {
    if identity.account != org.management_account {
        return Err(Error::check(
            format!(
                "{runner} runs as {} in account {}, which is not the management account {} of organization {}",
                identity.arn, identity.account, org.management_account, org.id
            ),
            hint,
        ));
    }
    Ok(())
}

pub use crate::config::CONTROL_TOWER_TRAIL;

/// A tag that marks a trail as Control Tower's (a key mentioning it, with
/// or without dashes, any case).
pub fn control_tower_tag(tags: &BTreeMap<String, String>) -> Option<&String> {
    tags.keys().find(|k| {
        k.to_ascii_lowercase()
            .replace('-', "")
            .contains("controltower")
    })
}

/// Checks the trail against the config: its home Region, that it is an
/// organization trail, and the Control Tower guard (by name, and by tags
/// when they were read).
pub fn check_trail(
    desired: &Desired,
    trail: &Trail,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<(), Error> {
    let file = desired.source.display();
    if trail.home_region != desired.region.as_str() {
        return Err(Error::check(
            format!(
                "trail {} lives in {}, but region is {}",
                trail.arn, trail.home_region, desired.region
            ),
            format!(
                "the key, the trail and its bucket must be in one Region: set region = \"{}\" in {file}",
                trail.home_region
            ),
        ));
    }
    if desired.organization_trail && !trail.is_organization_trail {
        return Err(Error::check(
            format!("trail {} is not an organization trail", trail.arn),
            format!(
                "name the organization trail in trail.name, or set organization_trail = false under [trail] in {file} to encrypt this trail on purpose"
            ),
        ));
    }
    let tagged = tags.and_then(control_tower_tag);
    // With the landing zone, Control Tower itself changes its trail.
    if !desired.allow_control_tower
        && !desired.landing_zone
        && (trail.name == CONTROL_TOWER_TRAIL || tagged.is_some())
    {
        let why = match tagged {
            Some(tag) => format!("its tag {tag:?}"),
            None => format!("its name {CONTROL_TOWER_TRAIL}"),
        };
        return Err(Error::check(
            format!(
                "trail {} is managed by AWS Control Tower ({why}): Control Tower reverts changes made to it",
                trail.arn
            ),
            format!(
                "encrypt Control Tower's trail through the landing zone instead: set landing_zone = true under [control_tower] in {file} (a key in the management account, set with UpdateLandingZone; docs/control-tower.md), and remove trail.name. To change the trail directly anyway, set allow_control_tower = true under [trail]"
            ),
        ));
    }
    Ok(())
}

/// Checks the trail's bucket Region, when it could be read.
pub fn check_bucket(desired: &Desired, observed: &Observed) -> Result<(), Error> {
    match &observed.bucket_region {
        Ok(region) if region != desired.region.as_str() => Err(Error::check(
            format!(
                "the trail's bucket {} is in {region}, but region is {}",
                observed.trail.s3_bucket, desired.region
            ),
            "CloudTrail needs the key in the bucket's Region (it would only say KmsKeyNotFoundException): keep the trail, its bucket and region in one Region",
        )),
        _ => Ok(()),
    }
}

/// A key found only by its tags (no alias, no trail names it) is adopted
/// only if its policy grants nothing beyond what trailkey writes: tags can
/// be put on any key, so a key someone planted with trailkey's tags and a
/// grant of their own (`kms:*` for an outside account, say) would otherwise
/// get the trail's logs. Any foreign `Allow` statement counts, except one
/// that grants only to the Security Tooling account's root, which
/// trailkey's own administration statement grants anyway. trailkey's own
/// statements (its reserved Sids) are replaced by apply, whatever they say.
pub fn check_adoption(
    desired: &Desired,
    observed: &Observed,
    current: Option<&Value>,
) -> Result<(), Error> {
    let (Some(key), Some(policy)) = (&observed.key, current) else {
        return Ok(());
    };
    let named_by_trail = observed.trail.kms_key_id.as_deref() == Some(key.info.arn.as_str());
    if key.found_by != FoundBy::Tags || named_by_trail {
        return Ok(());
    }
    let grants: Vec<String> = policy::statements(policy)
        .into_iter()
        .filter(|s| !policy::is_ours(s))
        .filter(|s| s.get("Effect").and_then(Value::as_str) != Some("Deny"))
        .filter(|s| !only_key_account(desired, s))
        .map(|s| {
            let who = s
                .get("Principal")
                .or_else(|| s.get("NotPrincipal"))
                .map_or("no principal".to_owned(), Value::to_string);
            format!("{:?} ({who})", policy::sid(s).unwrap_or("no Sid"))
        })
        .collect();
    if grants.is_empty() {
        return Ok(());
    }
    Err(Error::check(
        format!(
            "key {} carries trailkey's tags, but no alias or trail names it, and its policy grants more than trailkey writes: {}. A key found only by its tags is not adopted with grants of someone else's",
            key.info.arn,
            grants.join(", ")
        ),
        format!(
            "if this key is meant to be trailkey's, adopt it on purpose: point the alias at it (`aws kms create-alias --alias-name {} --target-key-id {}`, or update-alias), then plan again: its foreign statements are kept, and the plan reports what they grant. Otherwise remove its {} tag (`aws kms untag-resource --key-id {} --tag-keys {}`) and trailkey creates a key of its own",
            desired.alias.full(),
            key.info.key_id,
            MANAGED_BY_TAG.0,
            key.info.key_id,
            MANAGED_BY_TAG.0
        ),
    ))
}

/// Whether statement `s` names only the key's account (its root or its
/// ID) as its `AWS` principal: what trailkey's own administration grants,
/// and nothing beyond.
fn only_key_account(desired: &Desired, s: &Value) -> bool {
    let root = format!(
        "arn:{}:iam::{}:root",
        desired.partition(),
        desired.key_account
    );
    let principals: Vec<&str> = match s.get("Principal").and_then(|p| p.get("AWS")) {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return false,
    };
    s.get("Principal")
        .and_then(Value::as_object)
        .is_some_and(|p| p.len() == 1)
        && !principals.is_empty()
        && principals
            .iter()
            .all(|p| *p == root || *p == desired.key_account.as_str())
        && s.get("NotPrincipal").is_none()
}

/// Checks that the tags trailkey would add to an existing key (`TagResource`)
/// keep it within KMS's [`MAX_KEY_TAGS`], counting the tags others put on
/// it (but not AWS's own `aws:` tags): KMS would refuse the call part-way
/// through an apply.
pub fn check_tag_limit(desired: &Desired, key: &ObservedKey) -> Result<(), Error> {
    let added = desired
        .tags
        .keys()
        .filter(|t| !key.tags.contains_key(*t))
        .count();
    let present = key
        .tags
        .keys()
        .filter(|t| crate::config::counts_against_tag_limit(t))
        .count();
    if added == 0 || present + added <= MAX_KEY_TAGS {
        return Ok(());
    }
    Err(Error::check(
        format!(
            "key {} has {present} tags, and the {added} trailkey would add make {}: over KMS's limit of {MAX_KEY_TAGS} tags per key",
            key.info.arn,
            present + added
        ),
        format!(
            "remove tags the key does not need (`aws kms untag-resource --key-id {} --tag-keys ...`), or fewer from [key.tags], then run again",
            key.info.key_id
        ),
    ))
}

/// Checks that the key behind the alias can encrypt a trail at all. A key
/// that cannot is never modified or replaced silently.
pub fn check_key(desired: &Desired, key: &KeyInfo) -> Result<(), Error> {
    let mut problems = Vec::new();
    if key.key_manager != KeyManager::Customer {
        problems.push(format!("it is {}-managed", key.key_manager));
    }
    if key.key_spec != KeySpec::SymmetricDefault {
        problems.push(format!("its key spec is {}", key.key_spec));
    }
    if key.key_usage != KeyUsage::EncryptDecrypt {
        problems.push(format!("its key usage is {}", key.key_usage));
    }
    if key.origin != Origin::AwsKms {
        problems.push(format!("its origin is {}", key.origin));
    }
    if key.multi_region {
        problems.push("it is a multi-Region key".to_owned());
    }
    if let KeyState::Other(_) = key.state {
        problems.push(format!("its state is {}", key.state));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::check(
        format!(
            "{} names key {}, which trailkey will not use for the trail: {}",
            desired.alias.full(),
            key.arn,
            problems.join(", ")
        ),
        format!(
            "trailkey needs a single-Region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key with AWS_KMS origin: choose another ct_key_alias in {}, or move the alias off that key",
            desired.source.display()
        ),
    ))
}
