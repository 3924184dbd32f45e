//! The end of a landing-zone operation: Control Tower's check of the
//! manifest's KMS key, and its trail pointed at the key in moto.

use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::{ControlTower, IN_PROGRESS, LandingZone};
use crate::key_policy::{Caller, Decision, Request, evaluate};
use crate::rules::{MANAGEMENT_ACCESS_KEY, World, moto_call};

/// In the `User-Agent` of the emulator's own moto requests: `fixture.py
/// recording show` leaves out requests whose agent names `trailkey-fixture`,
/// so that Control Tower's calls never count as trailkey's.
const USER_AGENT: &str = "trailkey-fixture control-tower-emulator";

/// Where the manifest names the landing zone's KMS key (landing zone 3.x).
const KMS_KEY_POINTER: &str = "/centralizedLogging/configurations/kmsKeyArn";

impl World {
    /// Ends every operation due (the landing zone's `operation_time` passed
    /// since it started); the rule does it at every Control Tower request,
    /// a test may do it at any time.
    ///
    /// An operation a test planted ([`World::operation_in_progress`]) ends
    /// `SUCCEEDED`. An update ends `FAILED` with the message of
    /// [`World::fail_updates`] if a test set one. Otherwise, as Control
    /// Tower checks a KMS key ("Optionally configure AWS KMS keys", AWS
    /// Control Tower User Guide: the key must be enabled, symmetric, not
    /// multi-Region, in the management account, with the permissions of
    /// "Update the KMS key policy"), when the manifest names one
    /// (`centralizedLogging.configurations.kmsKeyArn`) it must be:
    ///
    /// * a key ARN (`arn:<partition>:kms:<Region>:<account>:key/<id>`) of
    ///   the management account and the home Region;
    /// * a key moto has, `Enabled`, `SYMMETRIC_DEFAULT` and
    ///   `ENCRYPT_DECRYPT` (moto leaves `KeySpec` and `KeyUsage` out of
    ///   `DescribeKey` unless `CreateKey` had them: those defaults then),
    ///   not multi-Region;
    /// * with a key policy ([`evaluate`]) that allows
    ///   `cloudtrail.amazonaws.com` `kms:GenerateDataKey` for Control
    ///   Tower's trail (`aws:SourceArn` and
    ///   `kms:EncryptionContext:aws:cloudtrail:arn` the trail's ARN,
    ///   `aws:SourceAccount` the management account: the context
    ///   [`crate::cloudtrail_policy`] gives CloudTrail's requests too), and
    ///   `config.amazonaws.com` `kms:Decrypt` and `kms:GenerateDataKey` as
    ///   AWS Config asks from the member account
    ///   [`LandingZone::config_account`] (`aws:SourceAccount` that account,
    ///   `aws:SourceOrgID` the organization).
    ///
    /// The key is read from moto directly (`DescribeKey`, `GetKeyPolicy`
    /// with `PolicyName` `default`), as the management account. A check
    /// that fails ends the operation `FAILED` with a message saying which,
    /// and the landing zone `FAILED`; its trail is left as it was. When all
    /// pass, Control Tower's trail is pointed at the key in moto
    /// (`UpdateTrail` with `KmsKeyId` the key ARN) or, when the manifest
    /// names no key, taken back to SSE-S3 (`UpdateTrail` with `KmsKeyId`
    /// `""`, which moto takes as no key: `fixture.py`'s `unencrypt_trail`),
    /// each only if the trail is not so already; then the operation ends
    /// `SUCCEEDED` and the landing zone is `ACTIVE`, `IN_SYNC`, at the
    /// version the update asked for.
    ///
    /// A failed update keeps the manifest it sent: the landing zone shows
    /// what was asked for, `FAILED`.
    pub fn settle_landing_zone(&self) {
        // The lock is held through the calls to moto, which never come
        // back to the layer: no other request sees an operation half ended,
        // and none ends twice.
        let mut facts = self.facts();
        let moto = facts.moto.clone();
        let now = Instant::now();
        let ct = &mut facts.control_tower;
        let due: Vec<usize> = (0..ct.operations.len())
            .filter(|&i| ct.operations[i].status == IN_PROGRESS && ct.operations[i].due <= now)
            .collect();
        for index in due {
            complete(ct, index, moto.as_deref());
        }
    }
}

/// Ends operation `index`.
fn complete(ct: &mut ControlTower, index: usize, moto: Option<&str>) {
    let Some(zone) = ct.landing_zone.clone() else {
        return;
    };
    let request = ct.operations[index].request.clone();
    let outcome = match &request {
        None => Ok(()),
        Some(_) => match &ct.fail_updates {
            Some(message) => Err(message.clone()),
            None => apply(&zone, moto),
        },
    };
    let operation = &mut ct.operations[index];
    operation.end_time = Some(SystemTime::now());
    let zone = ct.landing_zone.as_mut().expect("cloned above");
    match outcome {
        Ok(()) => {
            operation.status = "SUCCEEDED".to_owned();
            zone.status = "ACTIVE".to_owned();
            if let Some(version) = request.as_ref().and_then(|r| r["version"].as_str()) {
                zone.version = version.to_owned();
                zone.drift_status = "IN_SYNC".to_owned();
            }
        }
        Err(message) => {
            operation.status = "FAILED".to_owned();
            operation.status_message = Some(message);
            zone.status = "FAILED".to_owned();
        }
    }
    if ct.operations.iter().any(|o| o.status == IN_PROGRESS)
        && let Some(zone) = ct.landing_zone.as_mut()
    {
        zone.status = "PROCESSING".to_owned();
    }
}

/// Checks the manifest's key and points Control Tower's trail at it (or
/// back to SSE-S3); the message of the first check that fails.
fn apply(zone: &LandingZone, moto: Option<&str>) -> Result<(), String> {
    let moto = moto.ok_or(
        "AWS Control Tower could not reach AWS: the layer knows no moto endpoint (World::moto_endpoint)",
    )?;
    let key = match zone.manifest.pointer(KMS_KEY_POINTER) {
        None | Some(Value::Null) => None,
        Some(Value::String(arn)) => {
            check_key(moto, zone, arn)?;
            Some(arn.as_str())
        }
        Some(other) => {
            return Err(format!(
                "The manifest's centralizedLogging.configurations.kmsKeyArn must be a KMS key ARN, not {other}"
            ));
        }
    };
    point_trail(moto, zone, key.unwrap_or(""))
}

/// The checks Control Tower makes of the key `arn` before it uses it.
fn check_key(moto: &str, zone: &LandingZone, arn: &str) -> Result<(), String> {
    let cannot = |why: String| format!("AWS Control Tower cannot use the KMS key {arn}: {why}");
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "kms", region, account, resource] = parts[..] else {
        return Err(cannot("it is not a KMS key ARN".to_owned()));
    };
    if !resource.starts_with("key/") {
        return Err(cannot(
            "it is not a KMS key ARN (an alias is not accepted)".to_owned(),
        ));
    }
    if account != zone.management_account {
        return Err(cannot(format!(
            "the key is in account {account}, not in the management account {}",
            zone.management_account
        )));
    }
    if region != zone.home_region {
        return Err(cannot(format!(
            "the key is in {region}, not in the landing zone's home Region {}",
            zone.home_region
        )));
    }
    let kms = |operation: &str, body: Value| {
        call(
            moto,
            "kms",
            region,
            &format!("TrentService.{operation}"),
            &body,
        )
    };
    let meta = match kms("DescribeKey", json!({ "KeyId": arn })) {
        Ok(answer) => answer["KeyMetadata"].clone(),
        Err((code, _)) if code == "NotFoundException" => {
            return Err(cannot("the key does not exist".to_owned()));
        }
        Err((code, message)) => {
            return Err(cannot(format!(
                "describing the key failed: {code}: {message}"
            )));
        }
    };
    let field = |name: &str, default: &str| {
        meta.get(name)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let state = field("KeyState", "");
    if state != "Enabled" {
        return Err(cannot(format!(
            "the key is not enabled (its state is {state})"
        )));
    }
    let (spec, usage) = (
        field("KeySpec", "SYMMETRIC_DEFAULT"),
        field("KeyUsage", "ENCRYPT_DECRYPT"),
    );
    if spec != "SYMMETRIC_DEFAULT" || usage != "ENCRYPT_DECRYPT" {
        return Err(cannot(format!(
            "the key is not a symmetric encryption key (KeySpec {spec}, KeyUsage {usage})"
        )));
    }
    if meta.get("MultiRegion").and_then(Value::as_bool) == Some(true) {
        return Err(cannot(
            "the key is a multi-Region key, which AWS Control Tower does not support".to_owned(),
        ));
    }
    let policy = match kms(
        "GetKeyPolicy",
        json!({ "KeyId": arn, "PolicyName": "default" }),
    ) {
        Ok(answer) => answer["Policy"]
            .as_str()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .unwrap_or(Value::Null),
        Err((code, message)) => {
            return Err(cannot(format!(
                "reading the key policy failed: {code}: {message}"
            )));
        }
    };
    for request in service_requests(zone) {
        let why = match evaluate(&policy, &request) {
            Decision::Allowed => continue,
            Decision::ExplicitlyDenied { statement } => format!("its {statement} denies it"),
            Decision::NotAllowed => "no statement allows it".to_owned(),
        };
        let (service, whose) = match request.caller {
            Caller::Service(service @ "cloudtrail.amazonaws.com") => {
                (service, format!("for the trail {}", zone.trail_arn))
            }
            Caller::Service(service) => (
                service,
                format!(
                    "for account {} of organization {}",
                    zone.config_account, zone.organization_id
                ),
            ),
            Caller::Aws { arn, .. } => (arn, String::new()),
        };
        return Err(cannot(format!(
            "the key policy does not allow {service} to call {} {whose} ({why})",
            request.action
        )));
    }
    Ok(())
}

/// The requests CloudTrail and AWS Config make to the landing zone's key,
/// with the condition keys each carries.
fn service_requests(zone: &LandingZone) -> Vec<Request<'_>> {
    let trail = zone.trail_arn.as_str();
    let cloudtrail = vec![
        ("aws:SourceArn", trail),
        ("aws:SourceAccount", zone.management_account.as_str()),
        ("kms:EncryptionContext:aws:cloudtrail:arn", trail),
    ];
    let config = vec![
        ("aws:SourceAccount", zone.config_account.as_str()),
        ("aws:SourceOrgID", zone.organization_id.as_str()),
    ];
    let request = |service, action, context| Request {
        caller: Caller::Service(service),
        action,
        context,
    };
    vec![
        request(
            "cloudtrail.amazonaws.com",
            "kms:GenerateDataKey",
            cloudtrail,
        ),
        request("config.amazonaws.com", "kms:Decrypt", config.clone()),
        request("config.amazonaws.com", "kms:GenerateDataKey", config),
    ]
}

/// Points Control Tower's trail at `key` (`""`: SSE-S3) in moto, unless it
/// is so already.
fn point_trail(moto: &str, zone: &LandingZone, key: &str) -> Result<(), String> {
    let trail = &zone.trail_arn;
    let failed = |what: &str, (code, message): (String, String)| {
        format!("AWS Control Tower could not {what} its trail {trail}: {code}: {message}")
    };
    let (region, name) = trail
        .split_once(":trail/")
        .and_then(|(head, name)| Some((head.split(':').nth(3)?, name)))
        .ok_or_else(|| format!("AWS Control Tower's trail {trail} is not a trail ARN"))?;
    let cloudtrail = |operation: &str, body: Value| {
        call(
            moto,
            "cloudtrail",
            region,
            &format!("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.{operation}"),
            &body,
        )
    };
    let current = cloudtrail("GetTrail", json!({ "Name": name })).map_err(|e| failed("read", e))?;
    let current = current["Trail"]["KmsKeyId"].as_str().unwrap_or("");
    if current == key {
        return Ok(());
    }
    cloudtrail("UpdateTrail", json!({ "Name": name, "KmsKeyId": key }))
        .map_err(|e| failed("update", e))?;
    Ok(())
}

/// One AWS JSON 1.1 call to moto as the management account: the answer, or
/// the error's code and message.
fn call(
    moto: &str,
    service: &str,
    region: &str,
    target: &str,
    body: &Value,
) -> Result<Value, (String, String)> {
    moto_call(
        moto,
        MANAGEMENT_ACCESS_KEY,
        USER_AGENT,
        (service, region, target),
        body,
    )
}
