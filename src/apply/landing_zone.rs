//! Apply's landing-zone step: the landing zone checked again right before
//! the write, one `UpdateLandingZone`, and its operation followed to its
//! end.
//!
//! Control Tower's operations run 20 to 60 minutes, so much can happen
//! between the plan and the write (a confirmation prompt, the key's own
//! steps and their waits): the live landing zone must still be the one the
//! plan was made from, or the update would undo someone else's change. The
//! call is sent once (the SDK does not retry it: a retry after an answer
//! lost on the way could start a second operation); only an error that
//! means no operation started, after this run's own write to the key, is
//! tried again ([`crate::retry::step_error`]).

use super::{ApplyOptions, Outcome, Progress};
use crate::aws::{
    AwsError, KeyInfo, LandingZone, LandingZoneOperation, LandingZoneStatus, LandingZoneUpdate,
    LandingZones, OperationStatus, code,
};
use crate::error::Handling;
use crate::plan::{LandingZoneStep, Step};
use crate::retry::Written;

/// The longest part of Control Tower's `statusMessage` an error repeats.
const MAX_STATUS_MESSAGE: usize = 2000;

/// `step` (its [`Step`] and what it holds): the landing zone checked again,
/// `UpdateLandingZone` with the live manifest holding the key of `key` (or
/// none), then the operation read every `landing_zone_poll` until it ends,
/// for at most `landing_zone_timeout`. An operation that ends `FAILED`,
/// or outlasts the timeout, is an error naming it.
pub(super) async fn run<L: LandingZones>(
    lz: &L,
    (step, update): (&Step, &LandingZoneStep),
    key: Option<&KeyInfo>,
    written: Written,
    options: &ApplyOptions,
    progress: &impl Progress,
) -> Result<Outcome, AwsError> {
    if !options.landing_zone_updates {
        return Err(AwsError::new(
            "UpdateLandingZone",
            code::LANDING_ZONE_LEFT,
            "this run leaves the landing zone's change to `trailkey apply`",
        ));
    }
    let key_arn = match key {
        Some(k) if update.set_key => Some(k.arn.as_str()),
        None if update.set_key => {
            return Err(AwsError::new(
                "UpdateLandingZone",
                code::NO_KEY,
                "the plan names no key for this step and no CreateKey came before it",
            ));
        }
        _ => None,
    };
    let manifest = update.manifest_with(key_arn);
    let sent = LandingZoneUpdate {
        arn: &update.arn,
        version: &update.version,
        remediation_types: &update.remediation_types,
        manifest: &manifest,
    };
    let id = options
        .schedules()
        .retry(
            |e| crate::retry::step_error(step, written, e),
            |r| progress.retrying(r),
            // Each send, the first and any after a ValidationException,
            // right after its own check.
            || async {
                unchanged_since_plan(lz, update).await?;
                lz.update_landing_zone(sent.clone()).await
            },
        )
        .await?;
    if !crate::aws::is_operation_id(&id) {
        return Err(AwsError::new(
            "UpdateLandingZone",
            code::RESPONSE_ERROR,
            format!("Control Tower answered an operation identifier that is not one: {id:?}"),
        ));
    }
    follow(lz, &id, options, progress).await?;
    let to = key_arn.unwrap_or("SSE-S3");
    Ok(Outcome::on(format!(
        "{} -> {to} (operation {id})",
        update.arn
    )))
}

/// Reads the landing zone and its operations in progress again, and
/// refuses the write unless the landing zone is still the one the plan was
/// made from: the same manifest, version and remediation types, `ACTIVE`,
/// in sync and with nothing in progress.
async fn unchanged_since_plan<L: LandingZones>(
    lz: &L,
    update: &LandingZoneStep,
) -> Result<(), AwsError> {
    let (zone, in_progress) = tokio::join!(
        lz.get_landing_zone(&update.arn),
        lz.operations_in_progress()
    );
    let (zone, in_progress) = (zone?, in_progress?);
    match changed_since_plan(&zone, &in_progress, update) {
        None => Ok(()),
        Some(what) => Err(AwsError::new(
            "UpdateLandingZone",
            code::LANDING_ZONE_CHANGED,
            format!(
                "the landing zone changed since the plan ({what}); nothing was sent to Control Tower"
            ),
        )),
    }
}

/// What differs between the live landing zone and the one `update` was
/// planned from, if anything does.
fn changed_since_plan(
    zone: &LandingZone,
    in_progress: &[LandingZoneOperation],
    update: &LandingZoneStep,
) -> Option<String> {
    if let Some(op) = in_progress.first() {
        return Some(format!("operation {} is in progress", op.id));
    }
    if zone.status != LandingZoneStatus::Active {
        return Some(format!("its status is {}", zone.status));
    }
    if zone.drift_status == Some(crate::aws::DriftStatus::Drifted) {
        return Some("it has drifted".to_owned());
    }
    if zone.version != update.version {
        return Some(format!(
            "its version is {}, not {}",
            zone.version, update.version
        ));
    }
    let sorted = |types: &[String]| {
        let mut types = types.to_vec();
        types.sort();
        types
    };
    if sorted(&zone.remediation_types) != sorted(&update.remediation_types) {
        return Some("its remediation types changed".to_owned());
    }
    (zone.manifest != update.manifest).then(|| "its manifest changed".to_owned())
}

/// Reads operation `id` every `landing_zone_poll` until it ends, telling
/// `progress` before each wait. A read that fails the way a wait mends
/// (throttling, a server error, the network: [`Handling::SdkRetry`]) is
/// read again at the next turn; any other failure, `FAILED` and the
/// timeout end the wait with an error naming the operation.
async fn follow<L: LandingZones>(
    lz: &L,
    id: &str,
    options: &ApplyOptions,
    progress: &impl Progress,
) -> Result<(), AwsError> {
    let (timeout, poll) = (options.landing_zone_timeout, options.landing_zone_poll);
    let started = tokio::time::Instant::now();
    loop {
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(AwsError::new(
                "GetLandingZoneOperation",
                code::LANDING_ZONE_TIMEOUT,
                format!(
                    "the landing-zone operation {id} was still in progress after {} (--landing-zone-timeout)",
                    crate::delivery::human(waited)
                ),
            ));
        }
        progress.landing_zone(id, waited, timeout);
        tokio::time::sleep(poll.min(timeout - waited)).await;
        let operation = match lz.get_operation(id).await {
            Ok(operation) => operation,
            Err(e) if passes(&e) => continue,
            Err(e) => {
                return Err(AwsError {
                    message: format!("reading operation {id}: {}", e.message),
                    ..e
                });
            }
        };
        match operation.status {
            OperationStatus::Succeeded => return Ok(()),
            OperationStatus::Failed => {
                let message = operation
                    .status_message
                    .as_deref()
                    .unwrap_or("Control Tower gave no message");
                return Err(AwsError::new(
                    "UpdateLandingZone",
                    code::LANDING_ZONE_FAILED,
                    format!(
                        "the landing-zone operation {id} FAILED: {}",
                        crate::escape::truncated(message, MAX_STATUS_MESSAGE)
                    ),
                ));
            }
            _ => {}
        }
    }
}

/// Whether a failed read of the operation is one a later read may not
/// meet: throttling, a server error, or the network.
fn passes(e: &AwsError) -> bool {
    crate::error::handling(e.operation, &e.code, &e.message) == Some(Handling::SdkRetry)
}
