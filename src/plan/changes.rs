//! The change of each address: key, alias, key policy, rotation, trail.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

/// The tags trailkey manages on the key itself (the alias tag belongs to `kms_alias`).
pub(super) fn key_tags(desired: &Desired) -> impl Iterator<Item = (&String, &String)> {
    desired.tags.iter().filter(|(k, _)| k.as_str() != ALIAS_TAG)
}

/// The tags of a key trailkey creates: the desired ones and the mark that
/// trailkey created it ([`CREATED_TAG`]), which no other step sets.
pub(super) fn new_key_tags(desired: &Desired) -> BTreeMap<String, String> {
    let mut tags = desired.tags.clone();
    tags.insert(CREATED_TAG.0.to_owned(), CREATED_TAG.1.to_owned());
    tags
}

pub(super) fn key_change(desired: &Desired, observed: &Observed, merged: &Value) -> Change {
    match &observed.key {
        None => key_creation(desired, merged),
        Some(k) => key_repair(desired, k),
    }
}

/// `kms_key` when there is no key: one `CreateKey` with the policy and tags.
pub(super) fn key_creation(desired: &Desired, merged: &Value) -> Change {
    Change::new(
        Address::KmsKey,
        Action::Create,
        Value::Null,
        json!({
            "arn": KNOWN_AFTER_APPLY,
            "description": desired.key_description(),
            "key_spec": KeySpec::SymmetricDefault,
            "key_usage": KeyUsage::EncryptDecrypt,
            "origin": Origin::AwsKms,
            "multi_region": false,
            "state": KeyState::Enabled,
            "tags": new_key_tags(desired),
        }),
    )
    .because(format!(
        "no key is named {} or tagged for it in account {} ({})",
        desired.alias.full(),
        desired.key_account,
        desired.region
    ))
    .steps([Step::CreateKey(NewKey {
        description: desired.key_description(),
        policy: policy::to_document(merged),
        tags: new_key_tags(desired),
    })])
}

/// `kms_key` for an existing key: enabled again if needed, its tags set.
pub(super) fn key_repair(desired: &Desired, k: &ObservedKey) -> Change {
    let mut change = state_repair(desired, k);
    let missing: BTreeMap<String, String> = key_tags(desired)
        .filter(|(t, v)| k.tags.get(*t) != Some(*v))
        .map(|(t, v)| (t.clone(), v.clone()))
        .collect();
    if !missing.is_empty() {
        change = change
            .because(format!(
                "tags to set: {}",
                missing
                    .iter()
                    .map(|(t, v)| format!("{t}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .steps([Step::TagKey(missing)]);
    }
    let mut after_tags = k.tags.clone();
    after_tags.extend(key_tags(desired).map(|(t, v)| (t.clone(), v.clone())));
    let view = |state: &KeyState, tags: &BTreeMap<String, String>| {
        json!({
            "arn": k.info.arn,
            "description": k.info.description,
            "key_spec": k.info.key_spec,
            "key_usage": k.info.key_usage,
            "origin": k.info.origin,
            "multi_region": k.info.multi_region,
            "state": state,
            "tags": tags,
        })
    };
    change.before = view(&k.info.state, &k.tags);
    change.after = view(&KeyState::Enabled, &after_tags);
    if !change.steps.is_empty() {
        change.action = Action::Update;
    }
    change
}

/// The steps that bring a key pending deletion or disabled back to
/// `Enabled` (none for an enabled key), in a change still to be completed.
pub(super) fn state_repair(desired: &Desired, k: &ObservedKey) -> Change {
    let change = Change::new(Address::KmsKey, Action::NoOp, Value::Null, Value::Null);
    match k.info.state {
        KeyState::PendingDeletion => {
            let change = change
                .because(
                    "THE KEY IS PENDING DELETION: once it is deleted, every log it encrypted is unreadable for ever. trailkey cancels the deletion and enables the key",
                )
                .steps([Step::CancelKeyDeletion, Step::EnableKey]);
            if desired.rotation && k.rotation.is_none() {
                // KMS does not report rotation while deletion is pending.
                return change
                    .because("rotation is turned on again with the key")
                    .steps([Step::EnableRotation(desired.rotation_period_days)]);
            }
            change
        }
        KeyState::Disabled => change
            .because("the key is disabled: CloudTrail cannot deliver logs encrypted with it")
            .steps([Step::EnableKey]),
        KeyState::Enabled | KeyState::Other(_) => change,
    }
}

/// `kms_alias`, and `kms_alias_previous` when `ct_key_alias` was renamed.
pub(super) fn alias_changes(desired: &Desired, observed: &Observed) -> Vec<Change> {
    let alias = desired.alias.full();
    let target = observed.alias_target.as_ref();
    let Some(k) = &observed.key else {
        return vec![
            Change::new(
                Address::KmsAlias,
                Action::Create,
                Value::Null,
                json!({ "name": alias, "target_key_id": KNOWN_AFTER_APPLY }),
            )
            .steps([Step::CreateAlias(alias.clone())]),
        ];
    };
    let mut alias_change = alias_change(&alias, target, k);
    let short = desired.alias.short();
    let tagged_for = k.tags.get(ALIAS_TAG).map(String::as_str);
    if tagged_for == Some(short) {
        return vec![alias_change];
    }
    let tag_step = Step::TagKey(BTreeMap::from([(ALIAS_TAG.to_owned(), short.to_owned())]));
    // The alias of the old name, if it still names the key: removed, then the
    // tag is updated, so a crash in between is retried by the next run.
    let previous = tagged_for
        .map(|old| format!("alias/{old}"))
        .filter(|old| k.aliases.iter().flatten().any(|a| a == old));
    let Some(previous) = previous else {
        let reason = match tagged_for {
            Some(old) => format!("the key was tagged for alias/{old}: tag {ALIAS_TAG} = {short}"),
            None => format!("tag {ALIAS_TAG} = {short} marks the key as the one for {alias}"),
        };
        if alias_change.action == Action::NoOp {
            alias_change.action = Action::Update;
        }
        return vec![alias_change.because(reason).steps([tag_step])];
    };
    let previous_change = Change::new(
        Address::KmsAliasPrevious,
        Action::Delete,
        json!({ "name": previous, "target_key_id": k.info.key_id }),
        Value::Null,
    )
    .because(format!(
        "ct_key_alias was renamed to {short}: the old alias {previous} is removed (the key and the logs it encrypted stay)"
    ))
    .steps([Step::DeleteAlias(previous.clone()), tag_step]);
    vec![alias_change, previous_change]
}

/// The alias `alias` (naming `target` now) onto trailkey's key `k`.
fn alias_change(alias: &str, target: Option<&KeyInfo>, k: &ObservedKey) -> Change {
    let before = json!({ "name": alias, "target_key_id": target.map(|t| &t.key_id) });
    let after = json!({ "name": alias, "target_key_id": k.info.key_id });
    match target {
        None => Change::new(Address::KmsAlias, Action::Create, Value::Null, after)
            .because(format!(
                "{alias} does not exist; trailkey's key {} was found by its tags",
                k.info.arn
            ))
            .steps([Step::CreateAlias(alias.to_owned())]),
        Some(t) if t.key_id != k.info.key_id => {
            Change::new(Address::KmsAlias, Action::Update, before, after)
                .because(format!(
                    "{alias} names key {}, which trailkey did not create; it is pointed back at {} (the other key is left as it is)",
                    t.arn, k.info.arn
                ))
                .steps([Step::UpdateAlias(alias.to_owned())])
        }
        Some(_) => Change::no_op(Address::KmsAlias, after),
    }
}

/// `current` is the observed key's policy, parsed (`None`: no key yet).
pub(super) fn policy_change(desired: &Desired, current: Option<&Value>, merged: &Value) -> Change {
    let Some(current) = current else {
        let mut change = Change::new(
            Address::KmsKeyPolicy,
            Action::Create,
            Value::Null,
            merged.clone(),
        )
        .because("attached by CreateKey with the new key");
        change.statements = Some(policy::diff(None, merged, desired.partition()));
        return change;
    };
    let d = policy::diff(Some(current), merged, desired.partition());
    let same = policy::equivalent(current, merged, desired.partition());
    let mut change = Change::new(
        Address::KmsKeyPolicy,
        if same { Action::NoOp } else { Action::Update },
        current.clone(),
        merged.clone(),
    );
    change
        .reasons
        .extend(d.added.iter().map(|s| format!("+ statement {s} (missing)")));
    change.reasons.extend(
        d.changed
            .iter()
            .map(|c| format!("~ statement {} (differs)", c.sid)),
    );
    change.reasons.extend(
        d.removed
            .iter()
            .map(|s| format!("- statement {s} (no longer in the template)")),
    );
    if !same {
        change
            .steps
            .push(Step::PutKeyPolicy(policy::to_document(merged)));
    }
    change.statements = Some(d);
    change
}

pub(super) fn rotation_change(desired: &Desired, key: Option<&ObservedKey>) -> Change {
    let want = desired.rotation_period_days;
    // The period is shown only when the config manages it.
    let view = |enabled: Option<bool>, days: Option<i32>| match want {
        Some(_) => json!({ "enabled": enabled, "rotation_period_days": days }),
        None => json!({ "enabled": enabled }),
    };
    let as_it_is = |k: Option<&ObservedKey>| {
        Change::no_op(
            Address::KmsKeyRotation,
            view(
                k.and_then(|k| k.rotation),
                k.and_then(|k| k.rotation_period_days),
            ),
        )
    };
    let step = Step::EnableRotation(want);
    let Some(k) = key else {
        if !desired.rotation {
            return as_it_is(None)
                .because("key.rotation = false: trailkey leaves rotation as it is");
        }
        return Change::new(
            Address::KmsKeyRotation,
            Action::Create,
            Value::Null,
            view(Some(true), want),
        )
        .steps([step]);
    };
    if !desired.rotation {
        return as_it_is(Some(k))
            .because("key.rotation = false: trailkey leaves rotation as it is");
    }
    match (k.rotation, want, k.rotation_period_days) {
        (Some(false), ..) => Change::new(
            Address::KmsKeyRotation,
            Action::Update,
            view(Some(false), None),
            view(Some(true), want),
        )
        .because("automatic key rotation is off (CIS: rotation on)")
        .steps([step]),
        (Some(true), Some(wanted), Some(days)) if days != wanted => Change::new(
            Address::KmsKeyRotation,
            Action::Update,
            view(Some(true), Some(days)),
            view(Some(true), want),
        )
        .because(format!(
            "the rotation period is {days} days; key.rotation_period_days is {wanted}"
        ))
        .steps([step]),
        // A period KMS does not report cannot be compared: setting it
        // again would be a change on every run.
        (Some(true), Some(_), None) => as_it_is(Some(k)).because(
            "KMS reports no rotation period for the key (GetKeyRotationStatus): trailkey cannot compare it with key.rotation_period_days and leaves it",
        ),
        _ => as_it_is(Some(k)),
    }
}

pub(super) fn trail_change(desired: &Desired, observed: &Observed) -> Change {
    let trail = &observed.trail;
    let alias = desired.alias.full();
    let before = json!({ "trail": trail.arn, "kms_key_id": trail.kms_key_id });
    let update = Step::UpdateTrail {
        trail: trail.arn.clone(),
        log_file_validation: enables_validation(desired, trail),
    };
    match &observed.key {
        None => Change::new(
            Address::TrailEncryption,
            Action::Update,
            before,
            json!({ "trail": trail.arn, "kms_key_id": KNOWN_AFTER_APPLY }),
        )
        .because(trail_reason(trail, None, &alias))
        .steps([update]),
        Some(k) if trail.kms_key_id.as_deref() == Some(k.info.arn.as_str()) => {
            Change::no_op(Address::TrailEncryption, before)
        }
        Some(k) => Change::new(
            Address::TrailEncryption,
            Action::Update,
            before,
            json!({ "trail": trail.arn, "kms_key_id": k.info.arn }),
        )
        .because(trail_reason(trail, Some(&k.info), &alias))
        .steps([update]),
    }
}

/// `trail_logging`, when `trail.logging` is set: `true` starts a stopped
/// trail (`StartLogging`, after the trail is on the key, so that the first
/// logs are encrypted with it); `false` leaves logging as it is.
pub(super) fn logging_change(desired: &Desired, observed: &Observed) -> Option<Change> {
    let wanted = desired.logging?;
    let trail = &observed.trail.arn;
    let logging = observed.trail_status.is_logging;
    let before = json!({ "trail": trail, "is_logging": logging });
    if logging {
        return Some(Change::no_op(Address::TrailLogging, before));
    }
    if !wanted {
        return Some(
            Change::no_op(Address::TrailLogging, before)
                .because("trail.logging = false: trailkey leaves the stopped trail as it is"),
        );
    }
    Some(
        Change::new(
            Address::TrailLogging,
            Action::Update,
            before,
            json!({ "trail": trail, "is_logging": true }),
        )
        .because("the trail is stopped: it records no events and delivers no log files; trail.logging = true starts it (StartLogging)")
        .steps([Step::StartLogging(trail.clone())]),
    )
}

/// Whether the config turns log-file validation on and the trail has it off.
pub(super) fn enables_validation(desired: &Desired, trail: &Trail) -> bool {
    desired.log_file_validation == Some(true) && !trail.log_file_validation
}

/// `trail.log_file_validation = true`: turned on, in the same `UpdateTrail`
/// as the key when `encryption` changes the trail, else on its own. Not
/// managed (no change at all) unless the config asks for it.
pub(super) fn validation_change(
    desired: &Desired,
    trail: &Trail,
    encryption: &Change,
) -> Option<Change> {
    if desired.log_file_validation != Some(true) {
        return None;
    }
    let before = json!({ "trail": trail.arn, "log_file_validation": trail.log_file_validation });
    if !enables_validation(desired, trail) {
        return Some(Change::no_op(Address::TrailLogFileValidation, before));
    }
    let change = Change::new(
        Address::TrailLogFileValidation,
        Action::Update,
        before,
        json!({ "trail": trail.arn, "log_file_validation": true }),
    )
    .because("log_file_validation = true: CloudTrail will deliver signed digest files, so that changes to the log files can be detected (CIS AWS Foundations 3.2)");
    Some(if encryption.steps.is_empty() {
        change.steps([Step::EnableLogFileValidation(trail.arn.clone())])
    } else {
        change.because("in the same UpdateTrail call as the key")
    })
}
