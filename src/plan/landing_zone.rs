//! Control Tower's trail, encrypted through the landing zone
//! (`[control_tower] landing_zone`): the guards before any write, the
//! change of the manifest's KMS key (`landing_zone`), destroy's backout of
//! it, and what the landing zone shows beside it.
//!
//! The manifest is Control Tower's and its schema is not published: trailkey
//! changes one field of the live manifest, `centralizedLogging.
//! configurations.kmsKeyArn`, and sends every other field back as it read
//! it, with the live version (Control Tower guide, landing-zone API pages:
//! the version is the one to deploy, so another would be an upgrade).

use serde_json::{Map, Value, json};

use super::*;
use crate::aws::{DriftStatus, LandingZone, LandingZoneStatus};

/// Where the manifest names the key of Control Tower's trail.
const MANIFEST_KEY: [&str; 3] = ["centralizedLogging", "configurations", "kmsKeyArn"];

/// The key the manifest names for Control Tower's trail, if any.
pub fn manifest_key(manifest: &Value) -> Option<&str> {
    manifest
        .get(MANIFEST_KEY[0])?
        .get(MANIFEST_KEY[1])?
        .get(MANIFEST_KEY[2])?
        .as_str()
}

/// One `UpdateLandingZone`: the live landing zone's identifier, version,
/// remediation types and manifest, whose key apply sets to the key's ARN
/// (`set_key`; the key may be created by the same apply) or removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandingZoneStep {
    pub arn: String,
    pub version: String,
    pub remediation_types: Vec<String>,
    pub manifest: Value,
    pub set_key: bool,
}

impl LandingZoneStep {
    fn of(zone: &LandingZone, set_key: bool) -> Self {
        LandingZoneStep {
            arn: zone.arn.clone(),
            version: zone.version.clone(),
            remediation_types: zone.remediation_types.clone(),
            manifest: zone.manifest.clone(),
            set_key,
        }
    }

    /// The manifest to send: the live one with only its key changed, to
    /// `key_arn` when the step sets it, removed otherwise.
    pub fn manifest_with(&self, key_arn: Option<&str>) -> Value {
        let mut manifest = self.manifest.clone();
        let [logging, configurations, field] = MANIFEST_KEY;
        let Some(logging) = manifest.get_mut(logging).and_then(Value::as_object_mut) else {
            return manifest;
        };
        let configurations = logging
            .entry(configurations)
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(configurations) = configurations.as_object_mut() else {
            return manifest;
        };
        match key_arn.filter(|_| self.set_key) {
            Some(arn) => {
                configurations.insert(field.to_owned(), json!(arn));
            }
            None => {
                configurations.remove(field);
            }
        }
        manifest
    }
}

/// What planning needs of the landing zone, with `[control_tower]
/// landing_zone`: there is one, and its manifest has the centralized
/// logging whose key trailkey sets. Returns the landing zone, or `None`
/// without the option. Whether Control Tower is busy is
/// [`refuse_while_busy`]'s to say.
pub fn check_landing_zone<'o>(
    desired: &Desired,
    observed: &'o Observed,
) -> Result<Option<&'o LandingZone>, Error> {
    if !desired.landing_zone {
        return Ok(None);
    }
    let file = desired.source.display();
    let Some(read) = &observed.landing_zone else {
        return Err(Error::check(
            "the landing zone was not read",
            "this is a bug in trailkey: run again with -v and report it",
        ));
    };
    let Some(zone) = &read.zone else {
        return Err(no_landing_zone(desired));
    };
    check_manifest(zone, &file.to_string())?;
    Ok(Some(zone))
}

/// The manifest has the shape trailkey changes: a `centralizedLogging`
/// object whose `configurations`, when present, is an object whose
/// `kmsKeyArn`, when present, is a string. Anything else is Control
/// Tower's to explain; trailkey sends nothing it could not change as planned.
fn check_manifest(zone: &LandingZone, file: &str) -> Result<(), Error> {
    let logging = zone.manifest.get(MANIFEST_KEY[0]);
    let Some(logging) = logging.filter(|l| l.is_object()) else {
        return Err(Error::check(
            format!(
                "the manifest of landing zone {} has no centralizedLogging: Control Tower runs no trail whose key trailkey could set",
                zone.arn
            ),
            format!(
                "turn on centralized logging in the landing zone, or remove [control_tower] landing_zone from {file}"
            ),
        ));
    };
    let configurations = logging.get(MANIFEST_KEY[1]);
    let key = configurations.and_then(|c| c.get(MANIFEST_KEY[2]));
    if configurations.is_some_and(|c| !c.is_object()) || key.is_some_and(|k| !k.is_string()) {
        return Err(Error::check(
            format!(
                "the manifest of landing zone {} has a centralizedLogging.configurations that is not an object with a kmsKeyArn string; trailkey does not know how to set its key",
                zone.arn
            ),
            "check the landing zone's settings in the Control Tower console (`aws controltower get-landing-zone` shows the manifest)",
        ));
    }
    Ok(())
}

/// No landing zone in the organization, as `ListLandingZones` answers in
/// the configured Region.
pub fn no_landing_zone(desired: &Desired) -> Error {
    Error::check(
        format!(
            "no AWS Control Tower landing zone was found in {} (controltower:ListLandingZones)",
            desired.region
        ),
        format!(
            "set region to Control Tower's home Region and run trailkey with management-account credentials, or remove [control_tower] landing_zone from {} to encrypt an organization trail of your own",
            desired.source.display()
        ),
    )
}

/// Control Tower's state, when it is not idle: an operation in progress
/// or a landing zone still `PROCESSING` holds back every write; a `FAILED`
/// landing zone only the landing zone's own update (the key may need the
/// repair that lets a retry of the landing zone succeed).
struct Busy {
    message: String,
    hint: String,
    /// Whether writes to the key are held back too.
    holds_key_writes: bool,
}

/// Why Control Tower is busy, if it is ([`Busy`]).
fn busy(observed: &Observed, zone: &LandingZone) -> Option<Busy> {
    let in_progress = observed.landing_zone.as_ref()?.in_progress.first();
    if let Some(op) = in_progress {
        let ended = match shown_operation(&op.id) {
            Some(id) => format!(
                " (`aws controltower get-landing-zone-operation --operation-identifier {id}`)"
            ),
            None => String::new(),
        };
        return Some(Busy {
            message: format!(
                "a landing-zone operation is in progress: {} ({}); trailkey changes nothing while Control Tower works",
                crate::escape::truncated(&op.id, 64),
                crate::escape::truncated(&op.operation_type, 16)
            ),
            hint: format!(
                "run trailkey again when it has ended{ended}; landing-zone operations take 20 to 60 minutes"
            ),
            holds_key_writes: true,
        });
    }
    if zone.status == LandingZoneStatus::Active {
        return None;
    }
    let processing = zone.status == LandingZoneStatus::Processing;
    let hint = if processing {
        "Control Tower is still deploying the landing zone: run trailkey again when its status is ACTIVE (`aws controltower get-landing-zone`)".to_owned()
    } else {
        let reset = match plausible_arn(&zone.arn) {
            true => format!(
                " (or `aws controltower reset-landing-zone --landing-zone-identifier {}`)",
                zone.arn
            ),
            false => String::new(),
        };
        format!(
            "the Control Tower console (Landing zone settings) says why; repair or retry the landing zone there{reset}, then run trailkey again. trailkey still repairs the key meanwhile, but leaves the landing zone as it is"
        )
    };
    Some(Busy {
        message: format!(
            "the landing zone {} is {}, not ACTIVE; trailkey does not update it until it is",
            crate::escape::truncated(&zone.arn, 256),
            zone.status
        ),
        hint,
        holds_key_writes: processing,
    })
}

/// `id` when it has an operation identifier's shape, to put in a command.
fn shown_operation(id: &str) -> Option<&str> {
    crate::aws::is_operation_id(id).then_some(id)
}

/// Whether `arn` looks like an ARN (`arn:` and ARN characters only, of an
/// ARN's length), to put in a command.
fn plausible_arn(arn: &str) -> bool {
    arn.starts_with("arn:")
        && arn.len() <= 2048
        && arn
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":/_.-+=,@".contains(&b))
}

/// The error of an apply that finds Control Tower busy ([`busy`]) and
/// nothing to write: its trail may not be on the key yet, so the run is
/// not reported converged.
pub fn busy_error(observed: &Observed) -> Option<Error> {
    let zone = observed.landing_zone.as_ref()?.zone.as_ref()?;
    busy(observed, zone).map(|b| Error::check(b.message, b.hint))
}

/// While Control Tower is busy ([`busy`]): refuses a plan that writes what
/// it holds back (`writes_key`: the key, its alias or policy;
/// `writes_landing_zone`: the landing zone), and otherwise returns the
/// warning the plan reports.
pub(super) fn refuse_while_busy(
    observed: &Observed,
    zone: Option<&LandingZone>,
    writes_key: bool,
    writes_landing_zone: bool,
) -> Result<Option<Finding>, Error> {
    let Some(busy) = zone.and_then(|z| busy(observed, z)) else {
        return Ok(None);
    };
    if writes_landing_zone || (writes_key && busy.holds_key_writes) {
        return Err(Error::check(busy.message, busy.hint));
    }
    Ok(Some(Finding {
        level: Level::Warning,
        message: format!("{}: {}", busy.message, busy.hint),
    }))
}

/// The error for an `UpdateLandingZone` on a drifted landing zone, which
/// would redeploy it: Control Tower's resources would change beyond the key.
fn drifted(zone: &LandingZone) -> Option<Error> {
    (zone.drift_status == Some(DriftStatus::Drifted)).then(|| {
        Error::check(
            format!(
                "the landing zone {} has drifted, and an UpdateLandingZone would redeploy it: trailkey changes its KMS key only on a landing zone in sync",
                zone.arn
            ),
            format!(
                "resolve the drift first (Control Tower console, Landing zone settings, Reset; or `aws controltower reset-landing-zone --landing-zone-identifier {}`), then run trailkey again",
                zone.arn
            ),
        )
    })
}

/// The landing zone's KMS key: set to the key's ARN when the manifest names
/// another or none. Refused on a drifted landing zone: an update redeploys
/// it, which would also change what drifted.
pub(super) fn landing_zone_change(
    desired: &Desired,
    observed: &Observed,
    zone: &LandingZone,
) -> Result<Change, Error> {
    let current = manifest_key(&zone.manifest);
    let before = view(zone, current);
    let key = observed.key.as_ref();
    if current.is_some() && current == key.map(|k| k.info.arn.as_str()) {
        return Ok(Change::no_op(Address::LandingZone, before));
    }
    if let Some(refused) = drifted(zone) {
        return Err(refused);
    }
    let alias = desired.alias.full();
    let reason = match (current, key) {
        (None, _) => "Control Tower's trail is not encrypted with a KMS key (SSE-S3)".to_owned(),
        (Some(named), Some(k)) if names_key(Some(named), &k.info, &[&alias]) => {
            format!("the landing zone names the key as {named:?}, not by its key ARN")
        }
        (Some(other), _) => format!("the landing zone names another key: {other}"),
    };
    let after = key.map_or(KNOWN_AFTER_APPLY, |k| k.info.arn.as_str());
    Ok(Change::new(
        Address::LandingZone,
        Action::Update,
        before,
        view(zone, Some(after)),
    )
    .because(reason)
    .because(format!(
        "UpdateLandingZone with the live manifest, only centralizedLogging.configurations.kmsKeyArn changed, at version {} (never an upgrade); Control Tower then points {} at the key, in 20 to 60 minutes",
        zone.version, desired.trail.as_api_name()
    ))
    .steps([Step::UpdateLandingZone(Box::new(LandingZoneStep::of(zone, true)))]))
}

/// Destroy's change to the landing zone: its key removed when it is
/// trailkey's, so that Control Tower's trail goes back to SSE-S3.
pub(super) fn landing_zone_backout(
    desired: &Desired,
    observed: &Observed,
    zone: &LandingZone,
) -> Result<Change, Error> {
    let current = manifest_key(&zone.manifest);
    let before = view(zone, current);
    let alias = desired.alias.full();
    Ok(match &observed.key {
        Some(k) if names_key(current, &k.info, &[&alias]) => {
            if let Some(refused) = drifted(zone) {
                return Err(refused);
            }
            Change::new(Address::LandingZone, Action::Update, before, view(zone, None))
                .because("UpdateLandingZone with the live manifest without centralizedLogging.configurations.kmsKeyArn: Control Tower's trail goes back to SSE-S3, and new log files are encrypted with S3-managed keys")
                .steps([Step::UpdateLandingZone(Box::new(LandingZoneStep::of(zone, false)))])
        }
        _ if current.is_some() => Change::no_op(Address::LandingZone, before)
            .because("the landing zone uses a key trailkey does not manage: left as it is"),
        _ => Change::no_op(Address::LandingZone, before),
    })
}

/// The landing zone as a change shows it: which, at which version, with
/// which key.
fn view(zone: &LandingZone, key: Option<&str>) -> Value {
    json!({ "landing_zone": zone.arn, "version": zone.version, "kms_key_arn": key })
}

/// What the landing zone shows beside the change: a version Control Tower
/// could upgrade to (trailkey keeps the deployed one), a drift, and a
/// manifest whose key Control Tower's trail does not use yet.
pub(super) fn landing_zone_findings(observed: &Observed, zone: &LandingZone) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(latest) = zone
        .latest_available_version
        .as_deref()
        .filter(|l| *l != zone.version)
    {
        out.push(Finding {
            level: Level::Note,
            message: format!(
                "the landing zone is at version {}; Control Tower offers {latest}. trailkey keeps {} (it never upgrades a landing zone)",
                zone.version, zone.version
            ),
        });
    }
    if zone.drift_status == Some(DriftStatus::Drifted) {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "the landing zone {} has drifted: Control Tower's resources differ from its manifest. trailkey does not reset it; the Control Tower console (Landing zone settings) does",
                zone.arn
            ),
        });
    }
    let key = manifest_key(&zone.manifest);
    let trail_key = observed.trail.kms_key_id.as_deref();
    // The same key named two ways (its ARN, its ID) is the same key.
    let same = observed
        .key
        .as_ref()
        .is_some_and(|k| names_key(key, &k.info, &[]) && names_key(trail_key, &k.info, &[]));
    if key.is_some() && trail_key != key && !same {
        out.push(Finding {
            level: Level::Warning,
            message: format!(
                "the landing zone names the key {}, but Control Tower's trail {} uses {}: Control Tower has not applied its manifest to the trail",
                key.unwrap_or_default(),
                observed.trail.arn,
                observed.trail.kms_key_id.as_deref().unwrap_or("no KMS key (SSE-S3)")
            ),
        });
    }
    out
}

/// Where the manifest names `key` (by ARN, ID or one of `aliases`) beside
/// the key of Control Tower's trail, which destroy removes: JSON pointers,
/// e.g. `/config/configurations/kmsKeyArn` (AWS Config's own key, on
/// landing zone 4.0). A key named there still encrypts something after
/// destroy, so `--delete-key` is refused.
pub fn manifest_uses(zone: &LandingZone, key: &KeyInfo, aliases: &[&str]) -> Vec<String> {
    fn walk(value: &Value, at: String, found: &mut Vec<String>, key: &KeyInfo, aliases: &[&str]) {
        match value {
            Value::String(s) if names_key(Some(s), key, aliases) => found.push(at),
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{at}/{i}"), found, key, aliases);
                }
            }
            Value::Object(fields) => {
                for (name, v) in fields {
                    let name = name.replace('~', "~0").replace('/', "~1");
                    walk(v, format!("{at}/{name}"), found, key, aliases);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(&zone.manifest, String::new(), &mut found, key, aliases);
    let trails = format!("/{}", MANIFEST_KEY.join("/"));
    found.retain(|at| *at != trails);
    found
}
