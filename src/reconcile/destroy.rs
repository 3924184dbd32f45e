//! `destroy`: the trail back to SSE-S3 and, with `--delete-key`, the alias
//! and the key's scheduled deletion, when trailkey created the key and
//! nothing else uses it.

use super::*;

impl<C: Connect> Reconcile<'_, C> {
    /// `destroy`: plan the backout; unless a dry run, confirm, apply it and
    /// check that the trail no longer names a key.
    pub(super) async fn back_out(
        &self,
        observed: Observed,
        delete_key: Option<i32>,
        dry_run: bool,
        auto_approve: bool,
        landing_zone: LandingZoneWait,
        ui: &mut impl Ui,
    ) -> Result<Outcome, Error> {
        if delete_key.is_some() && observed.runner == plan::Runner::DelegatedAdministrator {
            return Err(plan::delete_key_as_delegated_administrator(self.desired));
        }
        let users = match (delete_key, &observed.key) {
            (Some(_), Some(k)) => Some(
                observe::key_users(self.connect.management(), self.keys, &k.info.key_id).await?,
            ),
            _ => None,
        };
        let deletion = delete_key.zip(users.as_ref());
        let (plan, observed) = self
            .planned(observed, |o| plan::plan_destroy(self.desired, o, deletion))
            .await?;
        if dry_run || !plan.has_changes() {
            return Ok(Outcome::Planned(plan));
        }
        ui.about_to_apply(&plan);
        if !auto_approve {
            ui.confirm(&plan)?;
        }
        let options = ApplyOptions {
            landing_zone_timeout: landing_zone.timeout,
            landing_zone_poll: landing_zone.poll,
            ..ApplyOptions::default()
        };
        let (done, after) = self.apply(&plan, &observed, &options, ui).await?;
        let mut after = after?;
        // Control Tower's trail follows its operation, and may lag its end:
        // read again within the propagation budget, counted from now.
        let through_landing_zone = plan.changes(Address::LandingZone);
        let mut propagation = options.schedules().propagation;
        propagation.deadline = tokio::time::Instant::now().checked_add(options.propagation_retry);
        let mut turns = propagation.turns();
        while through_landing_zone
            && after.trail.kms_key_id.is_some()
            && turns
                .wait(Why::WritesVisible, None, |r| ui.waiting(r))
                .await
        {
            after = observe::refresh(self.connect, self.keys, self.desired, &observed).await?;
        }
        if let Some(key) = &after.trail.kms_key_id
            && (plan.changes(Address::TrailEncryption) || through_landing_zone)
        {
            let hint = if through_landing_zone {
                "Control Tower's operation ended, but its trail still names the key: Control Tower may still be applying its manifest, or the landing zone may have drifted. Run `trailkey destroy --dry-run` in a few minutes; the Control Tower console (Landing zone settings) shows a drift"
            } else {
                "another process may have changed the trail at the same time: run `trailkey destroy --dry-run`"
            };
            return Err(Error::check(
                format!("destroy finished, but the trail still names a KMS key: {key}"),
                hint,
            ));
        }
        let result = ApplyResult::of(&after, Vec::new());
        Ok(Outcome::Applied { plan, done, result })
    }
}
