//! Control Tower's landing-zone API, which moto 5.2.5 does not have at
//! all, answered by the layer from the landing zone in the [`World`]
//! (controltower model, rest-json, API version 2018-05-10).

mod completion;
#[cfg(test)]
mod tests;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::world::World;
use super::{json_answer, page, rest_json_error, signing_region};
use crate::proxy::{Decision, Request, Response, Rule, Traffic};

/// Control Tower's landing zone as a test sets it up ([`World::landing_zone`])
/// and as it is after its operations ([`World::landing_zone_state`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LandingZone {
    /// `arn:aws:controltower:<home Region>:<management account>:landingzone/<id>`.
    pub arn: String,
    /// The Region Control Tower was set up in: its API answers there only.
    pub home_region: String,
    /// The only account that may call Control Tower's API.
    pub management_account: String,
    /// `o-...`: the `aws:SourceOrgID` AWS Config's requests to the key carry.
    pub organization_id: String,
    /// `version` (`LandingZoneVersion`, e.g. `3.3`).
    pub version: String,
    /// `latestAvailableVersion`: the one version, besides `version`, an
    /// update may ask for (an upgrade).
    pub latest_available_version: String,
    /// `status`: `ACTIVE`, `PROCESSING` or `FAILED` (`LandingZoneStatus`).
    pub status: String,
    /// `driftStatus.status`: `DRIFTED` or `IN_SYNC` (`LandingZoneDriftStatus`).
    pub drift_status: String,
    /// `manifest`: the landing zone's settings, a JSON object.
    pub manifest: Value,
    /// `remediationTypes` (`INHERITANCE_DRIFT`); left out of answers when
    /// empty, as the model's list has at least one member.
    pub remediation_types: Vec<String>,
    /// Control Tower's trail (`aws-controltower-BaselineCloudTrail`) in moto:
    /// the trail an update points at the manifest's key, and the
    /// `aws:SourceArn` of CloudTrail's requests to the key.
    pub trail_arn: String,
    /// The member account (the Log Archive account, or another) whose AWS
    /// Config the key check speaks for: the `aws:SourceAccount` of Config's
    /// requests to the key.
    pub config_account: String,
    /// How long an operation takes, from its start to its end.
    pub operation_time: Duration,
}

/// A landing-zone operation as the emulator keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct LandingZoneOperation {
    /// `operationIdentifier`: 36 characters, UUID-shaped.
    pub id: String,
    /// `operationType`: `CREATE`, `UPDATE`, `RESET` or `DELETE`.
    pub operation_type: String,
    /// `status`: `IN_PROGRESS`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub start_time: SystemTime,
    /// When it ended; `None` while `IN_PROGRESS`.
    pub end_time: Option<SystemTime>,
    /// `statusMessage`: why it `FAILED`.
    pub status_message: Option<String>,
    /// The body of the `UpdateLandingZone` that started it; `None` for an
    /// operation a test planted ([`World::operation_in_progress`]).
    pub request: Option<Value>,
    /// When it ends.
    due: Instant,
}

/// The landing zone and everything done to it, for a test's assertions
/// ([`World::landing_zone_state`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LandingZoneState {
    /// As it is now: `version`, `status`, `manifest`, ...
    pub landing_zone: LandingZone,
    /// Every operation, oldest first.
    pub operations: Vec<LandingZoneOperation>,
    /// Every version other than the landing zone's own that an
    /// `UpdateLandingZone` asked for, accepted (an upgrade to
    /// `latestAvailableVersion`) or refused, in order.
    pub upgrades: Vec<String>,
}

/// Control Tower's part of the [`World`].
#[derive(Debug, Default)]
pub(crate) struct ControlTower {
    landing_zone: Option<LandingZone>,
    operations: Vec<LandingZoneOperation>,
    /// Updates end `FAILED` with this message ([`World::fail_updates`]).
    fail_updates: Option<String>,
    upgrades: Vec<String>,
}

const IN_PROGRESS: &str = "IN_PROGRESS";
const OPERATION_TYPES: [&str; 4] = ["DELETE", "CREATE", "UPDATE", "RESET"];
const OPERATION_STATUSES: [&str; 3] = ["SUCCEEDED", "FAILED", IN_PROGRESS];
const REMEDIATION_TYPES: [&str; 1] = ["INHERITANCE_DRIFT"];

/// How many operations a `ListLandingZoneOperations` page holds without
/// `maxResults`. AWS does not document its default page size; a small one
/// makes a client follow `nextToken` (the model's paginator).
pub const DEFAULT_OPERATIONS_PAGE: usize = 5;

impl World {
    /// Control Tower's landing zone is `zone`, replacing any other; its
    /// operations so far are kept.
    pub fn landing_zone(&self, zone: LandingZone) {
        self.facts().control_tower.landing_zone = Some(zone);
    }

    /// Plants an operation of `operation_type` (`CREATE`, `UPDATE`, `RESET`,
    /// `DELETE`) `IN_PROGRESS` on the landing zone, as if someone else
    /// started it: the landing zone is `PROCESSING`, an `UpdateLandingZone`
    /// meanwhile is a `ConflictException`. It ends `SUCCEEDED` after the
    /// landing zone's `operation_time`, changing nothing. Returns its ID.
    ///
    /// Panics without a landing zone ([`World::landing_zone`]).
    pub fn operation_in_progress(&self, operation_type: &str) -> String {
        assert!(
            OPERATION_TYPES.contains(&operation_type),
            "an operation type of the model: {OPERATION_TYPES:?}, not {operation_type:?}"
        );
        let mut facts = self.facts();
        let ct = &mut facts.control_tower;
        let zone = ct
            .landing_zone
            .as_mut()
            .expect("World::landing_zone first: an operation runs on a landing zone");
        zone.status = "PROCESSING".to_owned();
        let operation = LandingZoneOperation::start(operation_type, zone.operation_time, None);
        let id = operation.id.clone();
        ct.operations.push(operation);
        id
    }

    /// With `Some(message)`, every operation an `UpdateLandingZone`
    /// started that ends from now on ends `FAILED` with `message`, and the
    /// landing zone `FAILED`, whatever the key: Control Tower failing for
    /// reasons of its own. `None`: updates end as the key check decides.
    /// Operations a test planted end `SUCCEEDED` either way.
    pub fn fail_updates(&self, message: Option<&str>) {
        self.facts().control_tower.fail_updates = message.map(str::to_owned);
    }

    /// The landing zone, its operations and the upgrades asked for, as they
    /// are now (without settling the operations due: see
    /// [`World::settle_landing_zone`]); `None` without a landing zone.
    pub fn landing_zone_state(&self) -> Option<LandingZoneState> {
        let facts = self.facts();
        let ct = &facts.control_tower;
        Some(LandingZoneState {
            landing_zone: ct.landing_zone.clone()?,
            operations: ct.operations.clone(),
            upgrades: ct.upgrades.clone(),
        })
    }

    /// Answers a Control Tower request (the caller's account already
    /// known), after the rule settled the operations due.
    fn control_tower_answer(&self, request: &Request, caller: &str) -> Response {
        let mut facts = self.facts();
        let management = facts
            .control_tower
            .landing_zone
            .as_ref()
            .map(|z| z.management_account.clone())
            .or_else(|| facts.default_account.clone());
        if let Some(management) = management.filter(|m| m != caller) {
            return rest_json_error(
                403,
                "AccessDeniedException",
                &format!(
                    "Account {caller} is not authorized to perform controltower:{}: AWS Control Tower's API answers its management account ({management}) only",
                    request.action
                ),
            );
        }
        let body: Value = if request.body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            match serde_json::from_slice(&request.body) {
                Ok(v @ Value::Object(_)) => v,
                _ => return invalid("The request body is not a JSON object"),
            }
        };
        let region = signing_region(request).unwrap_or_default();
        let ct = &mut facts.control_tower;
        let answer = match request.action.as_str() {
            "ListLandingZones" => ct.list_landing_zones(&region, &body),
            "GetLandingZone" => ct.get_landing_zone(&region, &body),
            "UpdateLandingZone" => ct.update_landing_zone(&region, &body),
            "GetLandingZoneOperation" => ct.get_operation(&region, &body),
            "ListLandingZoneOperations" => ct.list_operations(&region, &body),
            other => Err(rest_json_error(
                400,
                "UnknownOperationException",
                &format!(
                    "the real-AWS layer emulates Control Tower's ListLandingZones, GetLandingZone, UpdateLandingZone, GetLandingZoneOperation and ListLandingZoneOperations only, not {other}"
                ),
            )),
        };
        match answer {
            Ok(body) => json_answer("application/json", body),
            Err(error) => error,
        }
    }
}

/// Control Tower's landing-zone API, which moto 5.2.5 does not have,
/// answered from the [`World`]'s landing zone ([`World::landing_zone`]) as
/// the controltower model (2018-05-10, rest-json, signing name
/// `controltower`) and the Control Tower guide describe it. Every
/// `controltower` request is answered here, none reaches moto, and each is
/// recorded ([`World::answered`]).
///
/// **Operations** (`POST`, JSON bodies with the model's member names;
/// timestamps as ISO 8601 strings, the model's `timestampFormat` for its
/// `Timestamp` shape):
///
/// * `/list-landingzones` (`ListLandingZones`): `{"landingZones": [{"arn"}]}`,
///   empty without a landing zone; `maxResults` 1 to 1;
/// * `/get-landingzone` (`GetLandingZone`, `landingZoneIdentifier`
///   required, the ARN): `{"landingZone": LandingZoneDetail}`, i.e.
///   `version`, `remediationTypes` (when any), `arn`, `status`,
///   `latestAvailableVersion`, `driftStatus: {status}`, `manifest`;
/// * `/update-landingzone` (`UpdateLandingZone`, `version` and
///   `landingZoneIdentifier` required, `manifest` and `remediationTypes`
///   optional): starts an `UPDATE` operation, answered
///   `{"operationIdentifier"}`;
/// * `/get-landingzone-operation` (`GetLandingZoneOperation`,
///   `operationIdentifier` required): `{"operationDetails":
///   {operationType, operationIdentifier, status, startTime, endTime,
///   statusMessage}}`, the last two once it ended;
/// * `/list-landingzone-operations` (`ListLandingZoneOperations`):
///   `{"landingZoneOperations": [{operationType, operationIdentifier,
///   status}], "nextToken"}`, the most recent first ("Results are sorted by
///   time, with the most recent operation first"), `filter` by `types` and
///   `statuses` (one value each, the model's lists having one member at
///   most), `maxResults` 1 to 100, [`DEFAULT_OPERATIONS_PAGE`] without it.
///
/// **Errors** as rest-json sends them ([`rest_json_error`]), each with the
/// model's HTTP status and only where the operation lists it:
/// `ValidationException` (400) for an input the model refuses (a required
/// member missing, a value of the wrong type, out of its range or length,
/// off its pattern or enum, a `nextToken` the layer did not give, a
/// manifest that is not a JSON object) and for a version the landing zone
/// cannot go to; `AccessDeniedException` (403) for any signer but the
/// management account (the landing zone's, else the default credentials'
/// account: moto's management account); `ResourceNotFoundException` (404)
/// for an unknown landing zone ARN or operation (Get and Update only: the
/// List operations do not list it); `ConflictException` (409) for an
/// update while an operation is `IN_PROGRESS`. The layer never answers
/// `ThrottlingException` or `InternalServerException`. A request signed for
/// another Region than the home Region finds no landing zone there.
///
/// **Update.** Refused while any operation is `IN_PROGRESS`. The version
/// must be the landing zone's own, or its `latestAvailableVersion` (an
/// upgrade); any other version asked for, and every upgrade, is recorded
/// ([`LandingZoneState::upgrades`]). An accepted update records its body
/// with the operation, sets the landing zone `PROCESSING`, its manifest to
/// the one sent (kept when the request sends none: the model does not
/// require one) and its remediation types to those sent (kept likewise),
/// and starts an `UPDATE` operation `IN_PROGRESS`.
///
/// **Completion.** An operation ends once the landing zone's
/// `operation_time` has passed since it started; every Control Tower
/// request settles the operations due first
/// ([`World::settle_landing_zone`]). An update then checks the manifest's
/// key and points Control Tower's trail at it in moto, as
/// [`World::settle_landing_zone`] tells.
pub fn control_tower_landing_zone(world: World) -> impl Rule {
    move |request: &Request, traffic: &Traffic| {
        if request.service != "controltower" {
            return Decision::Forward;
        }
        world.answering(request);
        world.settle_landing_zone();
        let caller = world.account(request, traffic);
        Decision::Respond(world.control_tower_answer(request, &caller))
    }
}

impl ControlTower {
    /// The landing zone, if `region` is its home Region.
    fn here(&self, region: &str) -> Option<&LandingZone> {
        self.landing_zone
            .as_ref()
            .filter(|z| z.home_region == region)
    }

    /// The landing zone `arn` names, if it is the one in `region`.
    fn named(&self, region: &str, arn: &str) -> Result<&LandingZone, Response> {
        self.here(region).filter(|z| z.arn == arn).ok_or_else(|| {
            rest_json_error(
                404,
                "ResourceNotFoundException",
                &format!("The landing zone {arn} does not exist"),
            )
        })
    }

    fn list_landing_zones(&self, region: &str, body: &Value) -> Result<Value, Response> {
        let size = integer(body, "maxResults", 1, 1)?.unwrap_or(1);
        let token = string(body, "nextToken")?;
        let zones: Vec<Value> = self
            .here(region)
            .map(|z| json!({"arn": z.arn}))
            .into_iter()
            .collect();
        paged(&zones, token.as_deref(), size, "landingZones")
    }

    fn get_landing_zone(&self, region: &str, body: &Value) -> Result<Value, Response> {
        let arn = required_string(body, "landingZoneIdentifier")?;
        let zone = self.named(region, &arn)?;
        let mut detail = json!({
            "version": zone.version,
            "arn": zone.arn,
            "status": zone.status,
            "latestAvailableVersion": zone.latest_available_version,
            "driftStatus": {"status": zone.drift_status},
            "manifest": zone.manifest,
        });
        if !zone.remediation_types.is_empty() {
            detail["remediationTypes"] = json!(zone.remediation_types);
        }
        Ok(json!({ "landingZone": detail }))
    }

    fn update_landing_zone(&mut self, region: &str, body: &Value) -> Result<Value, Response> {
        let version = required_string(body, "version")?;
        check_version(&version)?;
        let arn = required_string(body, "landingZoneIdentifier")?;
        let remediation = match body.get("remediationTypes").filter(|v| !v.is_null()) {
            None => None,
            Some(list) => Some(enum_list(list, "remediationTypes", &REMEDIATION_TYPES)?),
        };
        let manifest = match body.get("manifest").filter(|v| !v.is_null()) {
            None => None,
            Some(m @ Value::Object(_)) => Some(m.clone()),
            Some(_) => return Err(invalid("The manifest must be a JSON object")),
        };
        let zone = self.named(region, &arn)?;
        if version != zone.version {
            let (current, latest) = (zone.version.clone(), zone.latest_available_version.clone());
            self.upgrades.push(version.clone());
            if version != latest {
                return Err(invalid(&format!(
                    "The landing zone cannot be updated to version {version}: its version is {current}, and the latest available version is {latest}"
                )));
            }
        }
        if let Some(busy) = self.operations.iter().find(|o| o.status == IN_PROGRESS) {
            return Err(rest_json_error(
                409,
                "ConflictException",
                &format!(
                    "The landing zone has an operation in progress ({} {}): wait until it completes",
                    busy.operation_type, busy.id
                ),
            ));
        }
        let zone = self
            .landing_zone
            .as_mut()
            .expect("named found the landing zone");
        zone.status = "PROCESSING".to_owned();
        if let Some(manifest) = manifest {
            zone.manifest = manifest;
        }
        if let Some(remediation) = remediation {
            zone.remediation_types = remediation;
        }
        let operation =
            LandingZoneOperation::start("UPDATE", zone.operation_time, Some(body.clone()));
        let id = operation.id.clone();
        self.operations.push(operation);
        Ok(json!({ "operationIdentifier": id }))
    }

    fn get_operation(&self, region: &str, body: &Value) -> Result<Value, Response> {
        let id = required_string(body, "operationIdentifier")?;
        check_operation_id(&id)?;
        let operation = self
            .here(region)
            .and_then(|_| self.operations.iter().find(|o| o.id == id))
            .ok_or_else(|| {
                rest_json_error(
                    404,
                    "ResourceNotFoundException",
                    &format!("The landing zone operation {id} does not exist"),
                )
            })?;
        let mut details = json!({
            "operationType": operation.operation_type,
            "operationIdentifier": operation.id,
            "status": operation.status,
            "startTime": iso8601(operation.start_time),
        });
        if let Some(end) = operation.end_time {
            details["endTime"] = json!(iso8601(end));
        }
        if let Some(message) = &operation.status_message {
            details["statusMessage"] = json!(message);
        }
        Ok(json!({ "operationDetails": details }))
    }

    fn list_operations(&self, region: &str, body: &Value) -> Result<Value, Response> {
        let (mut types, mut statuses) = (None, None);
        match body.get("filter").filter(|v| !v.is_null()) {
            None => {}
            Some(filter @ Value::Object(_)) => {
                if let Some(list) = filter.get("types").filter(|v| !v.is_null()) {
                    types = Some(enum_list(list, "filter.types", &OPERATION_TYPES)?);
                }
                if let Some(list) = filter.get("statuses").filter(|v| !v.is_null()) {
                    statuses = Some(enum_list(list, "filter.statuses", &OPERATION_STATUSES)?);
                }
            }
            Some(_) => return Err(invalid("Value at 'filter' must be a structure")),
        }
        let size = integer(body, "maxResults", 1, 100)?.unwrap_or(DEFAULT_OPERATIONS_PAGE);
        let token = string(body, "nextToken")?;
        let listed: Vec<Value> = match self.here(region) {
            None => Vec::new(),
            Some(_) => self
                .operations
                .iter()
                .rev()
                .filter(|o| types.as_ref().is_none_or(|t| t.contains(&o.operation_type)))
                .filter(|o| statuses.as_ref().is_none_or(|s| s.contains(&o.status)))
                .map(|o| {
                    json!({
                        "operationType": o.operation_type,
                        "operationIdentifier": o.id,
                        "status": o.status,
                    })
                })
                .collect(),
        };
        paged(&listed, token.as_deref(), size, "landingZoneOperations")
    }
}

impl LandingZoneOperation {
    /// A new operation `IN_PROGRESS`, due `operation_time` from now.
    fn start(operation_type: &str, operation_time: Duration, request: Option<Value>) -> Self {
        LandingZoneOperation {
            id: operation_id(),
            operation_type: operation_type.to_owned(),
            status: IN_PROGRESS.to_owned(),
            start_time: SystemTime::now(),
            end_time: None,
            status_message: None,
            request,
            due: Instant::now() + operation_time,
        }
    }
}

/// `{<items>: page, "nextToken"}` for the page `token` and `size` start.
fn paged(items: &[Value], token: Option<&str>, size: usize, name: &str) -> Result<Value, Response> {
    let Some((items, next)) = page(items, token, size) else {
        return Err(invalid("The nextToken is not valid"));
    };
    let mut answer = json!({ name: items });
    if let Some(next) = next {
        answer["nextToken"] = json!(next);
    }
    Ok(answer)
}

/// A `ValidationException` (400).
fn invalid(message: &str) -> Response {
    rest_json_error(400, "ValidationException", message)
}

/// A constraint a member's value fails, in the words AWS's validation
/// errors use.
fn constraint(value: &Value, member: &str, constraint: &str) -> Response {
    let value = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    invalid(&format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must {constraint}"
    ))
}

/// A string member, if present.
fn string(body: &Value, member: &str) -> Result<Option<String>, Response> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(constraint(other, member, "be a string")),
    }
}

/// A string member the model requires.
fn required_string(body: &Value, member: &str) -> Result<String, Response> {
    string(body, member)?.ok_or_else(|| {
        invalid(&format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// An integer member in `min..=max`, if present.
fn integer(body: &Value, member: &str, min: u64, max: u64) -> Result<Option<usize>, Response> {
    let Some(value) = body.get(member).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if !(value.is_i64() || value.is_u64()) {
        return Err(constraint(value, member, "be an integer"));
    }
    match value.as_u64() {
        Some(n) if n > max => Err(constraint(
            value,
            member,
            &format!("have value less than or equal to {max}"),
        )),
        Some(n) if n >= min => Ok(Some(n as usize)),
        _ => Err(constraint(
            value,
            member,
            &format!("have value greater than or equal to {min}"),
        )),
    }
}

/// A list of one enum value (the model's `RemediationTypes`,
/// `LandingZoneOperationTypes` and `LandingZoneOperationStatuses` each
/// have one member at least and at most).
fn enum_list(list: &Value, member: &str, values: &[&str]) -> Result<Vec<String>, Response> {
    let Some(items) = list.as_array() else {
        return Err(constraint(list, member, "be a list"));
    };
    if items.is_empty() {
        return Err(constraint(
            list,
            member,
            "have length greater than or equal to 1",
        ));
    }
    if items.len() > 1 {
        return Err(constraint(
            list,
            member,
            "have length less than or equal to 1",
        ));
    }
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(s) if values.contains(&s) => Ok(s.to_owned()),
            _ => Err(constraint(
                item,
                &format!("{member}.member"),
                &format!("satisfy enum value set: [{}]", values.join(", ")),
            )),
        })
        .collect()
}

/// `LandingZoneVersion`: length 3 to 10 and the pattern `\d+.\d+`. A
/// smithy pattern is not anchored and its `.` is any character: the value
/// must contain a digit, any character, a digit.
fn check_version(version: &str) -> Result<(), Response> {
    let value = json!(version);
    let length = version.chars().count();
    if length < 3 {
        return Err(constraint(
            &value,
            "version",
            "have length greater than or equal to 3",
        ));
    }
    if length > 10 {
        return Err(constraint(
            &value,
            "version",
            "have length less than or equal to 10",
        ));
    }
    let chars: Vec<char> = version.chars().collect();
    let matches = chars
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[2].is_ascii_digit());
    if !matches {
        return Err(constraint(
            &value,
            "version",
            r"satisfy regular expression pattern: \d+.\d+",
        ));
    }
    Ok(())
}

/// `OperationIdentifier`: 36 characters of the pattern
/// `[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}`.
fn check_operation_id(id: &str) -> Result<(), Response> {
    let value = json!(id);
    let length = id.chars().count();
    if length < 36 {
        return Err(constraint(
            &value,
            "operationIdentifier",
            "have length greater than or equal to 36",
        ));
    }
    if length > 36 {
        return Err(constraint(
            &value,
            "operationIdentifier",
            "have length less than or equal to 36",
        ));
    }
    let groups: Vec<&str> = id.split('-').collect();
    let shaped = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if !shaped {
        return Err(constraint(
            &value,
            "operationIdentifier",
            "satisfy regular expression pattern: [a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}",
        ));
    }
    Ok(())
}

/// A random 64-bit number (std's hasher keys are random per process and
/// per `RandomState`).
fn random_u64() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// A new operation identifier: a random (version 4) UUID, lower-case.
fn operation_id() -> String {
    let (a, b) = (random_u64(), random_u64());
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        8 + (b >> 62),
        &hex[17..20],
        &hex[20..32]
    )
}

/// The last part of a landing zone ARN as Control Tower makes it: twelve
/// upper-case letters and digits (`landingzone/1A2B3C4D5E6F`).
pub fn landing_zone_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..12)
        .map(|_| ALPHABET[(random_u64() % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// `t` as an ISO 8601 date-time in UTC with milliseconds, e.g.
/// `2024-05-01T12:34:56.789Z`.
fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let time = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        time / 3600,
        time % 3600 / 60,
        time % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of the day `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
