//! Control Tower's trail through the landing zone: the guards before any
//! write, the `landing_zone` change, and hostile manifests, which are
//! refused and never sent back altered in a way the plan did not show.

use super::*;
use crate::aws::{
    DriftStatus, LandingZone, LandingZoneOperation, LandingZoneStatus, OperationStatus,
};

const CT_TRAIL_ARN: &str =
    "arn:aws:cloudtrail:us-east-1:333333333333:trail/aws-controltower-BaselineCloudTrail";

fn ct_config() -> Desired {
    let text = format!(
        "[accounts]\nsecurity_tooling = \"{SECURITY_TOOLING}\"\nlog_archive = \"{LOG_ARCHIVE}\"\nmanagement = \"{MANAGEMENT}\"\n[control_tower]\nlanding_zone = true\n"
    );
    crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap()
}

fn zone(manifest: Value) -> LandingZone {
    LandingZone {
        arn: "arn:aws:controltower:us-east-1:333333333333:landingzone/1A2B3C4D5E6F".to_owned(),
        version: "3.3".to_owned(),
        latest_available_version: Some("3.3".to_owned()),
        status: LandingZoneStatus::Active,
        drift_status: Some(DriftStatus::InSync),
        manifest,
        remediation_types: Vec::new(),
    }
}

fn manifest() -> Value {
    json!({
        "governedRegions": ["us-east-1"],
        "centralizedLogging": {
            "accountId": LOG_ARCHIVE,
            "configurations": {"loggingBucket": {"retentionDays": 365}},
            "enabled": true
        },
        "securityRoles": {"accountId": SECURITY_TOOLING}
    })
}

/// Control Tower's organization with `zone`, its trail on SSE-S3, no key.
fn ct_observed(zone: LandingZone) -> Observed {
    let mut observed = observed_without_key(None);
    observed.trail.name = CONTROL_TOWER_TRAIL.to_owned();
    observed.trail.arn = CT_TRAIL_ARN.to_owned();
    observed.landing_zone = Some(ObservedLandingZone {
        zone: Some(zone),
        in_progress: Vec::new(),
    });
    observed
}

#[test]
fn a_first_plan_creates_the_key_and_changes_only_the_landing_zone_not_the_trail() {
    let planned = plan(&ct_config(), &ct_observed(zone(manifest()))).unwrap();
    assert_eq!(
        ops(&planned),
        [
            "CreateKey",
            "CreateAlias",
            "EnableKeyRotation",
            "UpdateLandingZone"
        ]
    );
    assert!(!planned.changes_trail(), "no UpdateTrail");
    let c = change(&planned, Address::LandingZone);
    assert_eq!(c.before["kms_key_arn"], Value::Null);
    assert_eq!(c.after["kms_key_arn"], KNOWN_AFTER_APPLY);
    let Step::UpdateLandingZone(step) = &c.steps[0] else {
        panic!("{c:?}");
    };
    assert_eq!(step.version, "3.3");
    // The manifest sent: the live one, only the key added.
    let sent = step.manifest_with(Some("arn:aws:kms:us-east-1:333333333333:key/k"));
    let mut expected = manifest();
    expected["centralizedLogging"]["configurations"]["kmsKeyArn"] =
        json!("arn:aws:kms:us-east-1:333333333333:key/k");
    assert_eq!(sent, expected);
    assert_eq!(planned.target.key_account, MANAGEMENT);
    // The key's policy: the management account administers it, AWS Config
    // may use it for the organization's accounts, the Audit account reads.
    let Step::CreateKey(new) = planned.steps().next().unwrap().1 else {
        panic!("CreateKey first");
    };
    let policy: Value = serde_json::from_str(&new.policy).unwrap();
    let root = statement_mut(&mut policy.clone(), "TrailkeyRootAdministration").clone();
    assert_eq!(
        root["Principal"]["AWS"],
        format!("arn:aws:iam::{MANAGEMENT}:root")
    );
    let config = statement_mut(&mut policy.clone(), crate::policy::CONFIG_SID).clone();
    assert_eq!(
        config["Condition"]["StringEquals"]["aws:SourceOrgID"],
        "o-example111"
    );
    let readers = statement_mut(&mut policy.clone(), "TrailkeyLogReadersDecrypt").clone();
    assert!(
        readers["Principal"]["AWS"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("arn:aws:iam::{SECURITY_TOOLING}:root"))),
        "{readers}"
    );
    let encrypt = statement_mut(&mut policy.clone(), "TrailkeyCloudTrailEncrypt").clone();
    assert_eq!(
        encrypt["Condition"]["StringEquals"]["aws:SourceArn"],
        CT_TRAIL_ARN
    );
}

#[test]
fn the_guards_refuse_before_any_step_is_planned() {
    let desired = ct_config();
    let mut in_progress = ct_observed(zone(manifest()));
    in_progress.landing_zone.as_mut().unwrap().in_progress = vec![LandingZoneOperation {
        id: "op-\u{1b}[31m".to_owned(),
        operation_type: "UPDATE".to_owned(),
        status: OperationStatus::InProgress,
        status_message: None,
    }];
    let mut failed = ct_observed(zone(manifest()));
    failed
        .landing_zone
        .as_mut()
        .unwrap()
        .zone
        .as_mut()
        .unwrap()
        .status = LandingZoneStatus::Failed;
    let mut processing = ct_observed(zone(manifest()));
    processing
        .landing_zone
        .as_mut()
        .unwrap()
        .zone
        .as_mut()
        .unwrap()
        .status = LandingZoneStatus::Processing;
    let mut none = ct_observed(zone(manifest()));
    none.landing_zone.as_mut().unwrap().zone = None;
    for (observed, says) in [
        (&in_progress, "in progress"),
        (&failed, "is FAILED, not ACTIVE"),
        (&processing, "is PROCESSING, not ACTIVE"),
        (&none, "no AWS Control Tower landing zone"),
    ] {
        let text = plan_error(&desired, observed).render();
        assert!(text.contains(says), "{text}");
        assert!(!text.contains('\u{1b}'), "escaped: {text:?}");
    }
    // Nothing to write: the plan reports it, and refuses nothing.
    for (observed, says) in [
        (&in_progress, "in progress"),
        (&failed, "is FAILED, not ACTIVE"),
    ] {
        let destroy = plan_destroy(&desired, observed, None).unwrap();
        assert!(!destroy.has_changes());
        assert!(
            destroy
                .findings
                .iter()
                .any(|f| f.level == Level::Warning && f.message.contains(says)),
            "{:?}",
            destroy.findings
        );
    }
}

#[test]
fn hostile_manifests_are_refused_and_never_sent() {
    let desired = ct_config();
    for bad in [
        json!(null),
        json!([]),
        json!("manifest"),
        json!({}),
        json!({"centralizedLogging": "on"}),
        json!({"centralizedLogging": {"configurations": "none"}}),
        json!({"centralizedLogging": {"configurations": []}}),
        json!({"centralizedLogging": {"configurations": {"kmsKeyArn": 7}}}),
        json!({"centralizedLogging": {"configurations": {"kmsKeyArn": {"arn": "x"}}}}),
    ] {
        let e = plan_error(&desired, &ct_observed(zone(bad.clone())));
        assert!(e.render().contains("manifest"), "{bad}: {}", e.render());
    }
    // A centralizedLogging without configurations gets them, with the key.
    let planned = plan(
        &desired,
        &ct_observed(zone(json!({"centralizedLogging": {"enabled": true}}))),
    )
    .unwrap();
    let c = change(&planned, Address::LandingZone);
    let Step::UpdateLandingZone(step) = &c.steps[0] else {
        panic!("{c:?}");
    };
    assert_eq!(
        step.manifest_with(Some("k")),
        json!({"centralizedLogging": {"enabled": true, "configurations": {"kmsKeyArn": "k"}}})
    );
}

#[test]
fn a_drifted_landing_zone_is_refused_a_change_and_only_reported_without_one() {
    let desired = ct_config();
    let mut drifted = zone(manifest());
    drifted.drift_status = Some(DriftStatus::Drifted);
    let text = plan_error(&desired, &ct_observed(drifted.clone())).render();
    assert!(text.contains("has drifted"), "{text}");
    assert!(text.contains("reset-landing-zone"), "{text}");

    // Converged: the manifest and the trail name the key. No change, a warning.
    let (_, converged) = converged();
    let key_arn = converged.key.as_ref().unwrap().info.arn.clone();
    let mut set = manifest();
    set["centralizedLogging"]["configurations"]["kmsKeyArn"] = json!(key_arn);
    let mut observed = ct_observed(LandingZone {
        manifest: set,
        ..drifted
    });
    observed.key = converged.key.clone();
    observed.alias_target = converged.alias_target.clone();
    observed.trail.kms_key_id = Some(key_arn);
    let planned = plan(&desired, &observed).unwrap();
    assert_eq!(change(&planned, Address::LandingZone).action, Action::NoOp);
    assert!(
        planned
            .findings
            .iter()
            .any(|f| f.level == Level::Warning && f.message.contains("has drifted")),
        "{:?}",
        planned.findings
    );
}

#[test]
fn an_older_version_is_kept_and_noted() {
    let mut older = zone(manifest());
    older.version = "3.2".to_owned();
    let planned = plan(&ct_config(), &ct_observed(older)).unwrap();
    let Step::UpdateLandingZone(step) = &change(&planned, Address::LandingZone).steps[0] else {
        panic!("an update");
    };
    assert_eq!(step.version, "3.2");
    assert!(
        planned
            .findings
            .iter()
            .any(|f| f.level == Level::Note && f.message.contains("trailkey keeps 3.2")),
        "{:?}",
        planned.findings
    );
}

#[test]
fn destroy_removes_only_the_key_it_manages() {
    let desired = ct_config();
    let (_, converged) = converged();
    let ours = converged.key.as_ref().unwrap().info.arn.clone();
    for (named, changes) in [
        (ours.as_str(), true),
        ("arn:aws:kms:us-east-1:333333333333:key/other", false),
    ] {
        let mut set = manifest();
        set["centralizedLogging"]["configurations"]["kmsKeyArn"] = json!(named);
        let mut observed = ct_observed(zone(set));
        observed.key = converged.key.clone();
        observed.alias_target = converged.alias_target.clone();
        observed.trail.kms_key_id = Some(named.to_owned());
        let planned = plan_destroy(&desired, &observed, None).unwrap();
        assert_eq!(planned.changes(Address::LandingZone), changes, "{named}");
        if changes {
            let Step::UpdateLandingZone(step) = &change(&planned, Address::LandingZone).steps[0]
            else {
                panic!("an update");
            };
            assert_eq!(
                step.manifest_with(Some(named)),
                manifest(),
                "the key removed, the rest kept"
            );
        }
    }
}

#[test]
fn a_failed_landing_zone_lets_the_key_be_repaired_and_refuses_only_its_own_update() {
    let desired = ct_config();
    let (_, converged) = converged();
    let key_arn = converged.key.as_ref().unwrap().info.arn.clone();
    let mut set = manifest();
    set["centralizedLogging"]["configurations"]["kmsKeyArn"] = json!(key_arn);
    let mut failed = zone(set);
    failed.status = LandingZoneStatus::Failed;
    let mut observed = ct_observed(failed.clone());
    observed.key = converged.key.clone();
    observed.alias_target = converged.alias_target.clone();
    observed.trail.kms_key_id = Some(key_arn);
    // The key policy (trailkey's for another mode) is repaired: no refusal.
    let planned = plan(&desired, &observed).unwrap();
    assert!(planned.changes(Address::KmsKeyPolicy), "{planned:?}");
    assert!(!planned.changes(Address::LandingZone));
    assert!(
        planned
            .findings
            .iter()
            .any(|f| f.message.contains("is FAILED"))
    );
    // Its own update is refused.
    let text = plan_error(
        &desired,
        &ct_observed(zone(manifest())).tap_status(LandingZoneStatus::Failed),
    )
    .render();
    assert!(text.contains("is FAILED, not ACTIVE"), "{text}");
}

#[test]
fn delete_key_is_refused_while_the_manifest_names_the_key_for_aws_config() {
    let desired = ct_config();
    let (_, converged) = converged();
    let key = converged.key.clone().unwrap();
    let mut set = manifest();
    set["centralizedLogging"]["configurations"]["kmsKeyArn"] = json!(key.info.arn);
    set["config"] = json!({"configurations": {"kmsKeyArn": key.info.key_id}, "enabled": true});
    let mut observed = ct_observed(zone(set));
    observed.key = Some(key.clone());
    observed.alias_target = converged.alias_target.clone();
    observed.trail.kms_key_id = Some(key.info.arn.clone());
    let users = KeyUsers {
        tags: BTreeMap::from([
            (CREATED_TAG.0.to_owned(), CREATED_TAG.1.to_owned()),
            (MANAGED_BY_TAG.0.to_owned(), MANAGED_BY_TAG.1.to_owned()),
        ]),
        ..KeyUsers::default()
    };
    let text = plan_destroy(&desired, &observed, Some((7, &users)))
        .unwrap_err()
        .render();
    assert!(text.contains("/config/configurations/kmsKeyArn"), "{text}");
    // Without it, the deletion is planned after the landing zone's backout.
    let mut observed = observed.clone();
    let manifest = &mut observed
        .landing_zone
        .as_mut()
        .unwrap()
        .zone
        .as_mut()
        .unwrap()
        .manifest;
    manifest.as_object_mut().unwrap().remove("config");
    let planned = plan_destroy(&desired, &observed, Some((7, &users))).unwrap();
    assert_eq!(
        ops(&planned),
        ["UpdateLandingZone", "DeleteAlias", "ScheduleKeyDeletion"]
    );
}

/// A landing zone's status, changed in place.
trait TapStatus {
    fn tap_status(self, status: LandingZoneStatus) -> Self;
}

impl TapStatus for Observed {
    fn tap_status(mut self, status: LandingZoneStatus) -> Self {
        self.landing_zone
            .as_mut()
            .unwrap()
            .zone
            .as_mut()
            .unwrap()
            .status = status;
        self
    }
}
