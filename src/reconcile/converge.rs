//! `apply`: plan, confirm, apply, then check the result by planning again,
//! waiting while AWS does not show this run's writes yet; once more against
//! the other run's key after a lost race for the alias. With a saved plan,
//! the plan made first must be the saved one, and there is no second plan.

use serde_json::Value;

use super::*;

impl<C: Connect> Reconcile<'_, C> {
    /// `apply`: plan, confirm, apply and verify; once more after a lost
    /// race for the alias, when auto-approved without a saved plan.
    pub(super) async fn converge(
        &self,
        observed: Observed,
        approval: Approval<'_>,
        options: &ApplyOptions,
        ui: &mut impl Ui,
    ) -> Result<Outcome, Error> {
        let Approval {
            auto_approve,
            saved,
        } = approval;
        let (plan, observed) = self.plan(observed).await?;
        // Before anything is shown or written: the plan made now must be
        // the saved one.
        if let Some(saved) = saved {
            saved.check(&plan, &observed)?;
        }
        ui.about_to_apply(&plan);
        let applying = options.applied_part(&plan);
        if !applying.has_changes() {
            return unchanged(plan, &observed, options);
        }
        if !auto_approve {
            ui.confirm(&plan)?;
        }
        let message = match self.apply_verified(&applying, &observed, options, ui).await {
            Ok((done, result)) => return Ok(Outcome::Applied { plan, done, result }),
            // Another run created the key and alias first. Without approval
            // for a new plan, stop; otherwise continue with its key (the new
            // plan creates none), once. A saved plan approved that plan only.
            Err(Error::Conflict { message, .. }) if saved.is_some() => {
                return Err(Error::conflict(
                    message,
                    "the saved plan no longer applies: plan again (`trailkey plan --out FILE`), which plans against the other run's key, have the new plan reviewed, and apply that file",
                ));
            }
            Err(Error::Conflict { message, .. }) if auto_approve => message,
            Err(e) => return Err(e),
        };
        let observed = self.winners_alias(&observed, options, ui).await?;
        let (plan, observed) = self.plan(observed).await?;
        ui.planning_again(&message, &plan);
        let applying = options.applied_part(&plan);
        if !applying.has_changes() {
            return unchanged(plan, &observed, options);
        }
        let (done, result) = self
            .apply_verified(&applying, &observed, options, ui)
            .await?;
        Ok(Outcome::Applied { plan, done, result })
    }

    /// The state after another run won the alias: read again until the
    /// alias, which `CreateAlias` just said exists, is visible (a new alias
    /// may not be at once), within the run's propagation budget. Planning
    /// without it would pick a key by its tags, maybe another loser's,
    /// whose deletion that run is about to schedule.
    async fn winners_alias(
        &self,
        observed: &Observed,
        options: &ApplyOptions,
        ui: &mut impl Ui,
    ) -> Result<Observed, Error> {
        let mut turns = options.schedules().propagation.turns();
        loop {
            let now = observe::refresh(self.connect, self.keys, self.desired, observed).await?;
            if now.alias_target.is_some()
                || !turns
                    .wait(Why::OtherRunsAlias, None, |r| ui.waiting(r))
                    .await
            {
                return Ok(now);
            }
        }
    }

    /// Applies `plan`, then checks that a plan made from the state after it
    /// is empty. AWS may not show this run's writes at once (KMS is
    /// eventually consistent), so while the only differences left are on
    /// what apply wrote, or a re-read does not find this run's key yet, it
    /// reads again, on the same bounded backoff as apply's own retries. Any
    /// other difference fails at once.
    async fn apply_verified(
        &self,
        plan: &Plan,
        observed: &Observed,
        options: &ApplyOptions,
        ui: &mut impl Ui,
    ) -> Result<(Vec<Done>, ApplyResult), Error> {
        let (done, mut read) = self.apply(plan, observed, options, ui).await?;
        let created = done.iter().any(|d| d.operation == "CreateKey");
        let landing_zone = done.iter().any(|d| d.operation == "UpdateLandingZone");
        let mut propagation = options.schedules().propagation;
        if landing_zone {
            // The operation may have taken an hour: the check after it gets
            // the whole budget again.
            propagation.deadline =
                tokio::time::Instant::now().checked_add(options.propagation_retry);
        }
        let mut turns = propagation.turns();
        loop {
            // Control Tower's list may still show the operation that just
            // ended, or the landing zone not ACTIVE yet.
            let busy = match &read {
                Ok(after) if landing_zone => plan::busy_error(after),
                _ => None,
            };
            let (propagating, error) = match (read, busy) {
                (Ok(_), Some(busy)) => (true, busy),
                (Ok(after), None) => {
                    let (again, after) = self.plan(after).await?;
                    let again = options.applied_part(&again);
                    // Written, but Control Tower's landing zone is not
                    // well (FAILED): the run does not end converged.
                    let unwell = plan::busy_error(&after).filter(|_| options.landing_zone_updates);
                    match (trail_off_the_key(&after), unwell) {
                        (None, Some(unwell)) if !again.has_changes() => return Err(unwell),
                        (None, None) if !again.has_changes() => {
                            return Ok((done, ApplyResult::of(&after, again.findings)));
                        }
                        (Some(error), _) if !again.has_changes() => (true, error),
                        _ => (not_visible_yet(plan, &again, &done), not_converged(&again)),
                    }
                }
                // This run's new key, not visible to the re-read yet.
                (Err(e), _) if created && e.aws_code() == Some(code::NOT_FOUND) => (true, e),
                (Err(e), _) => return Err(e),
            };
            if !propagating
                || !turns
                    .wait(Why::WritesVisible, None, |r| ui.waiting(r))
                    .await
            {
                return Err(error);
            }
            read = observe::refresh(self.connect, self.keys, self.desired, observed)
                .await
                .map(|read| apply::as_written(read, observed, &done));
        }
    }
}

/// Whether every difference `again` (planned after apply) still shows can
/// be this apply's own writes not visible yet: it is on an address apply
/// wrote, and AWS shows there what it showed before apply, or nothing yet
/// (a new or moved alias), or anything for what apply created. A difference
/// apply did not write, or a third value (someone else's write), is not
/// waited for.
fn not_visible_yet(applied: &Plan, again: &Plan, done: &[Done]) -> bool {
    again
        .changes
        .iter()
        .filter(|c| c.action != plan::Action::NoOp)
        .all(|c| {
            // A rescued key's rotation is turned on by a step of `kms_key`.
            let wrote = done.iter().any(|d| {
                d.address == c.address.as_str()
                    || (c.address == Address::KmsKeyRotation && d.operation == "EnableKeyRotation")
            });
            let before = applied.changes.iter().find(|p| p.address == c.address);
            wrote
                && before.is_some_and(|p| {
                    p.action == plan::Action::Create
                        || before_or_after(&p.before, &written(applied, p), &c.before)
                        || c.before.is_null()
                        || unreported(p)
                        || between_states(applied, p, c, done)
                })
        })
}

/// Whether every field of `seen` (read after apply) is as `before` or as
/// `after` (the applied plan's), each on its own: KMS may show one write
/// of a key (its tags) before another (its state). A value that is
/// neither is someone else's.
fn before_or_after(before: &Value, after: &Value, seen: &Value) -> bool {
    if seen == before || seen == after {
        return true;
    }
    let (Some(b), Some(a), Some(s)) = (before.as_object(), after.as_object(), seen.as_object())
    else {
        return false;
    };
    let null = Value::Null;
    b.keys().chain(a.keys()).chain(s.keys()).all(|k| {
        let field = [b, a, s].map(|o| o.get(k).unwrap_or(&null));
        before_or_after(field[0], field[1], field[2])
    })
}

/// Whether the plan's `before` of `change` holds a value KMS did not
/// report: the rotation of a key pending deletion. Whatever KMS shows
/// after this run rescued the key may be from before its own write, and
/// so may a third party's change made at that time, which the check
/// then waits for until its budget ends before it fails.
fn unreported(change: &plan::Change) -> bool {
    change.address == Address::KmsKeyRotation
        && change.before.get("enabled").is_some_and(|e| e.is_null())
}

/// Whether `again` shows the key in the state apply's own
/// `CancelKeyDeletion` left it in before its `EnableKey` (`Disabled`), with
/// nothing else changed: KMS may show that in-between state while the
/// `EnableKey` propagates.
fn between_states(
    plan: &Plan,
    applied: &plan::Change,
    again: &plan::Change,
    done: &[Done],
) -> bool {
    let cancelled = done.iter().any(|d| d.operation == "CancelKeyDeletion");
    if !cancelled || again.address != Address::KmsKey {
        return false;
    }
    let disabled = crate::aws::KeyState::Disabled;
    if again.before.get("state").and_then(|s| s.as_str()) != Some(disabled.as_str()) {
        return false;
    }
    let mut seen = again.before.clone();
    if let (Some(seen), Some(state)) = (seen.as_object_mut(), applied.before.get("state")) {
        seen.insert("state".to_owned(), state.clone());
    }
    before_or_after(&applied.before, &written(plan, applied), &seen)
}

/// What `change` of `plan` leaves: its `after`, and for the key the tags
/// every step of the plan sets (the alias's tag is set by `kms_alias`).
fn written(plan: &Plan, change: &plan::Change) -> Value {
    let mut after = change.after.clone();
    if change.address == Address::KmsKey
        && let Some(tags) = after.get_mut("tags").and_then(Value::as_object_mut)
    {
        for (_, step) in plan.steps() {
            if let plan::Step::TagKey(set) = step {
                for (tag, value) in set {
                    tags.insert(tag.clone(), Value::String(value.clone()));
                }
            }
        }
    }
    after
}

/// With the landing zone, Control Tower's trail must name the key the
/// manifest names (once no operation runs); the error when it does not.
fn trail_off_the_key(after: &Observed) -> Option<Error> {
    let zone = after.landing_zone.as_ref()?.zone.as_ref()?;
    let key = plan::manifest_key(&zone.manifest)?;
    let trail = &after.trail;
    let used = trail.kms_key_id.as_deref();
    // The same key named two ways (its ARN, its ID) is the same key.
    let same = after.key.as_ref().is_some_and(|k| {
        plan::names_key(Some(key), &k.info, &[]) && plan::names_key(used, &k.info, &[])
    });
    (used != Some(key) && !same).then(|| {
        Error::check(
            format!(
                "the landing zone names the key {key}, but Control Tower's trail {} uses {}",
                trail.arn,
                used.unwrap_or("no KMS key (SSE-S3)")
            ),
            "Control Tower may still be applying its manifest: run `trailkey plan` in a few minutes. If the trail still does not name the key, the landing zone may have drifted: the Control Tower console (Landing zone settings) shows it",
        )
    })
}

/// The verification's error: the plan made after apply is not empty.
fn not_converged(again: &Plan) -> Error {
    Error::check_with(
        "apply finished, but AWS does not show the desired state yet:",
        crate::render::plan_human(again),
        "another process may have changed the key or trail at the same time: run `trailkey plan` and apply again",
    )
}

/// An apply whose plan has no change: nothing written, `observed` as it
/// is. While Control Tower works on the landing zone, an apply that makes
/// its changes is not converged yet: it fails, saying so.
fn unchanged(plan: Plan, observed: &Observed, options: &ApplyOptions) -> Result<Outcome, Error> {
    let busy = plan::busy_error(observed);
    if options.landing_zone_updates
        && let Some(busy) = busy
    {
        return Err(busy);
    }
    // Idle, and the manifest names a key Control Tower's trail does not use:
    // not converged, and nothing trailkey may write fixes it.
    if busy.is_none()
        && let Some(off_key) = trail_off_the_key(observed)
    {
        return Err(off_key);
    }
    Ok(Outcome::Applied {
        plan,
        done: Vec::new(),
        result: ApplyResult::of(observed, Vec::new()),
    })
}
