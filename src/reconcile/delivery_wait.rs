//! `apply --wait-for-delivery`: after the change (or with none, since the
//! start of the run), poll the trail's status until CloudTrail delivers a log
//! file with the key, reports a new delivery error, or the wait ends.

use super::*;

/// What `apply --wait-for-delivery` waits for.
struct Wait<'a> {
    /// The trail's ARN.
    trail: &'a str,
    /// A delivery must be later than this (the process's clock).
    since: SystemTime,
    /// What `since` was, for messages.
    after_what: &'static str,
    /// The `LatestDeliveryError` the run started with.
    before: Option<&'a str>,
    /// How long to wait at most.
    within: Duration,
}

impl<C: Connect> Reconcile<'_, C> {
    /// Reads `GetTrailStatus` at once, then every [`delivery::POLL`] at
    /// most, until CloudTrail reports a log file delivered after
    /// `wait.since` (see [`delivery`] for the clock skew), a new delivery
    /// error, or a trail that is not logging; or until `wait.within` has
    /// passed. Each of these ends is a [`Delivery`], part of the apply's
    /// result; only a `GetTrailStatus` that fails is an error here.
    async fn wait_for_delivery(
        &self,
        wait: &Wait<'_>,
        ui: &mut impl Ui,
    ) -> Result<Delivery, Error> {
        let start = tokio::time::Instant::now();
        // Within the longest wait the flag takes, so the sum cannot overflow.
        let deadline = start + wait.within.min(crate::cli::MAX_DELIVERY_WAIT);
        loop {
            let status = self
                .connect
                .management()
                .trail_status(wait.trail)
                .await
                .map_err(|e| {
                    Error::aws(
                        "reading the trail's delivery status (cloudtrail:GetTrailStatus)",
                        e,
                    )
                })?;
            let now = tokio::time::Instant::now();
            let waited = now - start;
            let verdict = match delivery::judge(
                &status,
                wait.since,
                wait.before,
                wait.trail,
                wait.after_what,
            ) {
                Verdict::Pending if now >= deadline => {
                    delivery::timed_out(wait.within, &status, wait.after_what)
                }
                verdict => verdict,
            };
            if let Some(ended) = Delivery::ended(verdict, &status, waited) {
                tracing::info!(status = ?ended.status, latest_delivery_time = ?ended.latest_delivery_time, "delivery wait ended");
                return Ok(ended);
            }
            ui.delivery(waited, wait.within);
            tokio::time::sleep(delivery::POLL.min(deadline - now)).await;
        }
    }

    /// `apply`: converge, then, with `wait_for_delivery`, wait for
    /// CloudTrail to deliver a log file with the key (since the change, or
    /// since `started` when nothing changed).
    pub(super) async fn apply_then_prove(
        &self,
        observed: Observed,
        approval: Approval<'_>,
        options: &ApplyOptions,
        wait_for_delivery: Option<Duration>,
        started: SystemTime,
        ui: &mut impl Ui,
    ) -> Result<Outcome, Error> {
        let trail = observed.trail.arn.clone();
        let before = observed.trail_status.latest_delivery_error.clone();
        let outcome = self.converge(observed, approval, options, ui).await?;
        let (within, plan, done, mut result) = match (wait_for_delivery, outcome) {
            (Some(within), Outcome::Applied { plan, done, result }) => (within, plan, done, result),
            (_, outcome) => return Ok(outcome),
        };
        let (since, after_what) = if done.is_empty() {
            (started, "the start of the run")
        } else {
            (SystemTime::now(), "the change")
        };
        let wait = Wait {
            trail: &trail,
            since,
            after_what,
            before: before.as_deref(),
            within,
        };
        result.delivery = Some(Box::new(self.wait_for_delivery(&wait, ui).await?));
        Ok(Outcome::Applied { plan, done, result })
    }
}
