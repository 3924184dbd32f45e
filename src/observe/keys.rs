//! The keys: the alias's, the trail's, and the search by tags for a key
//! an earlier run created; the errors of reads a key policy refuses.

use super::*;

/// The keys observe found in the Security Tooling account.
#[derive(Debug, Clone, Default)]
pub struct FoundKeys {
    pub alias_target: Option<KeyInfo>,
    pub key: Option<ObservedKey>,
    pub other_keys: Vec<KeyInfo>,
    /// ARNs of the keys the tag search skipped: their key policy does not
    /// let trailkey's role read them.
    pub unreadable_keys: Vec<String>,
}

/// Finds the key trailkey manages.
///
/// The common case is one round: `DescribeKey` of the alias and, at the same
/// time, the policy, rotation and tags of `likely` (a key ID or ARN: the key
/// the alias is expected to name), and the alias names that key, tagged
/// `ManagedBy = trailkey`. If the alias names another key, that key's
/// details are read next and `likely`'s are dropped. With no `likely` key,
/// the key list is read in the first round too, for the tag search. Otherwise
/// (no alias, or an alias on a key trailkey did not create) the account's
/// keys are searched by their tags, so that a key created by an earlier run
/// (which crashed before `CreateAlias`, or whose alias was deleted or moved)
/// is used again rather than replaced. Failing that, a key the alias names
/// is adopted; failing that too, there is no key and the plan creates one.
pub async fn observe_keys<K: KeyStore>(
    keys: &K,
    desired: &Desired,
    trail: &Trail,
    likely: Option<&str>,
) -> Result<FoundKeys, Error> {
    let alias = desired.alias.full();
    let prefetch = OptionFuture::from(likely.map(|key| read_details(keys, key)));
    let list = OptionFuture::from(likely.is_none().then(|| keys.list_keys()));
    let (aliased, prefetched, listed) = tokio::join!(keys.describe_key(&alias), prefetch, list);
    let first = FirstKeyReads {
        likely,
        aliased,
        prefetched,
        listed,
    };
    found_keys(keys, desired, trail, first).await
}

/// The answers of the first round of key reads: `DescribeKey` of the
/// alias, the details of the `likely` key read with it (if any), and the
/// key list (read with it when there was no likely key).
pub(super) struct FirstKeyReads<'a> {
    pub(super) likely: Option<&'a str>,
    pub(super) aliased: AwsResult<Option<KeyInfo>>,
    pub(super) prefetched: Option<Details>,
    pub(super) listed: Option<AwsResult<Vec<String>>>,
}

/// [`observe_keys`] from the answers of its first round, however they were
/// read (the warm path reads them with the trail): whatever `likely` was,
/// the same keys are found, its details are only used when the key found
/// is that key.
pub(super) async fn found_keys<K: KeyStore>(
    keys: &K,
    desired: &Desired,
    trail: &Trail,
    first: FirstKeyReads<'_>,
) -> Result<FoundKeys, Error> {
    let FirstKeyReads {
        likely,
        aliased,
        mut prefetched,
        listed,
    } = first;
    let alias = desired.alias.full();
    let aliased = aliased.map_err(|e| {
        key_error(
            desired,
            "the key named by the alias (kms:DescribeKey)",
            &alias,
            e,
        )
    })?;
    let is_likely = |info: &KeyInfo| likely.is_some_and(|l| l == info.key_id || l == info.arn);
    let aliased = match aliased {
        Some(info) => {
            let details = prefetched.take_if(|_| is_likely(&info));
            Some(key_details(keys, desired, info, FoundBy::Alias, details).await?)
        }
        None => None,
    };
    let alias_target = aliased.as_ref().map(|k| k.info.clone());
    if let Some(k) = aliased.as_ref().filter(|k| managed_by_trailkey(&k.tags)) {
        return Ok(FoundKeys {
            alias_target,
            key: Some(k.clone()),
            other_keys: Vec::new(),
            unreadable_keys: Vec::new(),
        });
    }

    let skip = alias_target.as_ref().map(|k| k.key_id.as_str());
    let trail_key = trail.kms_key_id.as_deref();
    let (tagged, unreadable) = tagged_keys(keys, desired, skip, trail_key, listed).await?;
    let (chosen, other_keys) = choose(tagged, desired.alias.short(), trail);
    let key = match chosen {
        Some(((info, _), found_by)) => {
            let details = prefetched.take_if(|_| is_likely(&info));
            Some(key_details(keys, desired, info, found_by, details).await?)
        }
        None => aliased,
    };
    Ok(FoundKeys {
        alias_target,
        key,
        other_keys,
        unreadable_keys: unreadable,
    })
}

/// A key trailkey tagged, with its tags.
pub(super) type Tagged = (KeyInfo, BTreeMap<String, String>);

/// Among the keys tagged by trailkey: the one it manages and how it was
/// found (tagged for `alias`, else, after a renamed `ct_key_alias`, the
/// trail's key tagged for its old alias), and the others tagged for
/// `alias` that are not on their way out. The trail's key is preferred,
/// then an enabled one, then the oldest.
pub(super) fn choose(
    mut tagged: Vec<Tagged>,
    alias: &str,
    trail: &Trail,
) -> (Option<(Tagged, FoundBy)>, Vec<KeyInfo>) {
    let same_alias = |t: &Tagged| t.1.get(ALIAS_TAG).map(String::as_str) == Some(alias);
    let uses = |k: &KeyInfo| trail.kms_key_id.as_deref() == Some(k.arn.as_str());
    tagged.sort_by_key(|(k, _)| {
        (
            !uses(k),
            k.state != KeyState::Enabled,
            k.created,
            k.key_id.clone(),
        )
    });
    let chosen = match tagged.iter().position(same_alias) {
        Some(i) => Some((tagged.remove(i), FoundBy::Tags)),
        None => tagged
            .iter()
            .position(|(k, _)| uses(k))
            .map(|i| (tagged.remove(i), FoundBy::Trail)),
    };
    // Keys pending deletion are the losers of concurrent runs, on their way out.
    let others = tagged
        .into_iter()
        .filter(|t| same_alias(t) && t.0.state != KeyState::PendingDeletion)
        .map(|(k, _)| k)
        .collect();
    (chosen, others)
}

pub(super) fn ctx(desired: &Desired, what: &str) -> String {
    format!(
        "reading {what} in account {} ({})",
        desired.key_account, desired.region
    )
}

/// The error of a read of `key` (an ID, ARN or alias) that trailkey needs.
/// KMS authorizes key calls by the key policy first (kms model, "Required
/// permissions: ... (key policy)"), so an `AccessDeniedException` that
/// blames a resource-based policy means the key's policy shuts trailkey's
/// role out. One that names no policy may be either.
pub(super) fn key_error(desired: &Desired, what: &str, key: &str, e: AwsError) -> Error {
    // Who KMS refused, as its message names it; else who trailkey would
    // be in this mode (from Security Tooling itself, the caller's role).
    let configured = desired.security_tooling_role_arn();
    let name = |arn: &str| arn.rsplit('/').next().map(str::to_owned);
    let role = match (denied_role(&e.message), &desired.management_role) {
        // The configured ARN keeps the role's path, which KMS's message
        // does not tell.
        (Some(denied), _) if !desired.landing_zone && name(&denied) == name(&configured) => {
            configured
        }
        (Some(denied), _) => denied,
        (None, _) if !desired.landing_zone => configured,
        (None, Some(role)) => role.clone(),
        (None, None) => "trailkey's credentials in the management account".to_owned(),
    };
    let hint = match denied_by(&e) {
        Some(DeniedBy::Resource) => format!(
            "the key policy of {key} does not let {role} use the key; trailkey's IAM policies are not the cause. If trailkey should manage this key, add a key policy statement allowing {role} (or the account root, to delegate to IAM) the kms:* actions of policies/iam-security-tooling-role.json (run from Security Tooling itself: iam-security-tooling-delegated-admin.json); otherwise give ct_key_alias a name of its own"
        ),
        Some(DeniedBy::Unknown) => format!(
            "KMS did not say which policy denied it: the key policy of {key} may not let {role} in, or the role's IAM policy, an SCP, a permissions boundary or a VPC endpoint policy may lack {}; policies/iam-security-tooling-role.json lists what the role needs (run from Security Tooling itself: iam-security-tooling-delegated-admin.json)",
            kms_action(&e)
        ),
        _ => return Error::aws(ctx(desired, what), e),
    };
    Error::Aws {
        context: ctx(desired, what),
        source: e,
        hint,
    }
}

/// The role an `AccessDenied` message names ("User: arn:...:sts::<account>:
/// assumed-role/<name>/<session> is not authorized ..."), as the role's
/// ARN a key policy statement would name; a user's or role's ARN as it is.
/// `None` when the message names none, or not in the shape of an ARN.
pub(super) fn denied_role(message: &str) -> Option<String> {
    let arn = message
        .strip_prefix("User: ")?
        .split(' ')
        .next()
        .filter(|a| a.starts_with("arn:"))?;
    let safe = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-:/".contains(c);
    if !arn.chars().all(safe) {
        return None;
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "sts", "", account, resource] => {
            let name = resource.strip_prefix("assumed-role/")?.split('/').next()?;
            Some(format!("arn:{partition}:iam::{account}:role/{name}"))
        }
        ["arn", _, "iam", "", _, _] => Some(arn.to_owned()),
        _ => None,
    }
}

/// The IAM action of a KMS call, for messages.
pub(super) fn kms_action(e: &AwsError) -> String {
    format!("kms:{}", e.operation)
}

/// Whether an error on a key in the tag search means the key's policy shuts
/// trailkey's role out, as KMS's message says ("because no resource-based
/// policy allows", "with an explicit deny in a resource-based policy"):
/// such a key is skipped. A denial that names no policy, or the caller's
/// own (IAM, SCP, boundary, VPC endpoint), stops the search, so that a lost
/// permission never hides trailkey's own key.
pub(super) fn shut_out(e: &AwsError) -> bool {
    denied_by(e) == Some(DeniedBy::Resource)
}

/// Customer-managed keys tagged `ManagedBy = trailkey`, with their tags,
/// and the ARNs of the keys whose key policy does not let trailkey's role
/// read their tags (skipped: another team's or service's keys; see
/// [`shut_out`]). Lists the keys unless `listed` already did; reads tags,
/// then describes the tagged keys, up to 8 keys at a time. The key the
/// trail uses (`trail_key`) is never skipped: that it cannot be read is an
/// error.
pub(super) async fn tagged_keys<K: KeyStore>(
    keys: &K,
    desired: &Desired,
    skip: Option<&str>,
    trail_key: Option<&str>,
    listed: Option<AwsResult<Vec<String>>>,
) -> Result<(Vec<(KeyInfo, BTreeMap<String, String>)>, Vec<String>), Error> {
    /// What `ListResourceTags` told of one key.
    enum Seen {
        Tags(String, BTreeMap<String, String>),
        Unreadable(String, AwsError),
        Gone,
    }
    let ids = match listed {
        Some(ids) => ids,
        None => keys.list_keys().await,
    }
    .map_err(|e| Error::aws(ctx(desired, "the keys (kms:ListKeys)"), e))?;
    let seen: Vec<Seen> = stream::iter(ids)
        .filter(|id| std::future::ready(Some(id.as_str()) != skip))
        .map(|id| async move {
            match keys.list_tags(&id).await {
                Ok(tags) => Ok(Seen::Tags(id, tags)),
                // Deleted since ListKeys.
                Err(e) if e.code == code::NOT_FOUND => Ok(Seen::Gone),
                Err(e) if shut_out(&e) => Ok(Seen::Unreadable(id, e)),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(8)
        .try_collect()
        .await
        .map_err(|e| Error::aws(ctx(desired, "key tags (kms:ListResourceTags)"), e))?;
    let mut tags = Vec::new();
    let mut unreadable = Vec::new();
    for found in seen {
        match found {
            Seen::Tags(id, t) if managed_by_trailkey(&t) => tags.push((id, t)),
            Seen::Tags(..) | Seen::Gone => {}
            Seen::Unreadable(id, e) => {
                let arn = key_arn(desired, &id);
                if trail_key == Some(arn.as_str()) {
                    return Err(key_error(
                        desired,
                        "the tags of the trail's key (kms:ListResourceTags)",
                        &arn,
                        e,
                    ));
                }
                tracing::info!(key = %arn, code = %e.code, "skipped a key trailkey's role may not read (its key policy does not allow it)");
                unreadable.push(arn);
            }
        }
    }
    unreadable.sort();
    let tagged = stream::iter(tags)
        .map(|(id, tags)| async move {
            let info = keys.describe_key(&id).await?;
            Ok::<_, crate::aws::AwsError>(
                info.filter(|i| i.key_manager == KeyManager::Customer)
                    .map(|info| (info, tags)),
            )
        })
        .buffered(8)
        .try_filter_map(|found| std::future::ready(Ok(found)))
        .try_collect()
        .await
        .map_err(|e| Error::aws(ctx(desired, "a tagged key (kms:DescribeKey)"), e))?;
    Ok((tagged, unreadable))
}

/// A key's policy, rotation status and tags, as read.
pub(super) type Details = (
    AwsResult<String>,
    AwsResult<RotationStatus>,
    AwsResult<BTreeMap<String, String>>,
);

/// Reads a key's policy, rotation status and tags in parallel.
pub(super) async fn read_details<K: KeyStore>(keys: &K, key: &str) -> Details {
    tokio::join!(
        keys.get_key_policy(key),
        keys.rotation_status(key),
        keys.list_tags(key),
    )
}

/// Policy, rotation and tags of a key (read now unless `read` already
/// holds them); its aliases too when its alias tag differs from
/// `ct_key_alias`.
pub(super) async fn key_details<K: KeyStore>(
    keys: &K,
    desired: &Desired,
    info: KeyInfo,
    found_by: FoundBy,
    read: Option<Details>,
) -> Result<ObservedKey, Error> {
    let (policy, rotation, tags) = match read {
        Some(details) => details,
        None => read_details(keys, &info.key_id).await,
    };
    let rotation = match rotation {
        Ok(r) => Some(r),
        // KMS does not report rotation for a key pending deletion.
        Err(e) if e.code == code::KMS_INVALID_STATE && info.state == KeyState::PendingDeletion => {
            None
        }
        Err(e) => {
            return Err(key_error(
                desired,
                "the rotation status (kms:GetKeyRotationStatus)",
                &info.arn,
                e,
            ));
        }
    };
    let arn = info.arn.clone();
    let tags =
        tags.map_err(|e| key_error(desired, "the key tags (kms:ListResourceTags)", &arn, e))?;
    let aliases = if tags.get(ALIAS_TAG).map(String::as_str) == Some(desired.alias.short()) {
        None
    } else {
        Some(
            keys.list_aliases(&info.key_id)
                .await
                .map_err(|e| Error::aws(ctx(desired, "the key's aliases (kms:ListAliases)"), e))?,
        )
    };
    Ok(ObservedKey {
        policy: policy
            .map_err(|e| key_error(desired, "the key policy (kms:GetKeyPolicy)", &arn, e))?,
        rotation: rotation.map(|r| r.enabled),
        rotation_period_days: rotation.and_then(|r| r.period_days),
        tags,
        found_by,
        aliases,
        info,
    })
}
