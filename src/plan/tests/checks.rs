//! The inputs that must stop trailkey before any write: the caller, the
//! organization, the trail, the bucket, the key's shape.

use super::*;

// ---------------------------------------------------------------------------
// Inputs that are errors, not plans

#[test]
fn a_key_that_cannot_encrypt_a_trail_is_an_error_naming_the_problem() {
    type Spoil = fn(&mut KeyInfo);
    let cases: [(&str, Spoil); 7] = [
        ("multi-Region", |k| k.multi_region = true),
        ("RSA_2048", |k| {
            k.key_spec = crate::aws::KeySpec::from("RSA_2048")
        }),
        ("SIGN_VERIFY", |k| {
            k.key_usage = crate::aws::KeyUsage::from("SIGN_VERIFY")
        }),
        ("EXTERNAL", |k| {
            k.origin = crate::aws::Origin::from("EXTERNAL")
        }),
        ("HMAC_256", |k| {
            k.key_spec = crate::aws::KeySpec::from("HMAC_256");
            k.key_usage = crate::aws::KeyUsage::from("GENERATE_VERIFY_MAC");
        }),
        ("AWS-managed", |k| {
            k.key_manager = crate::aws::KeyManager::from("AWS")
        }),
        ("PendingImport", |k| {
            k.state = crate::aws::KeyState::from("PendingImport")
        }),
    ];
    for (problem, spoil) in cases {
        let (desired, mut observed) = converged();
        spoil(&mut observed.key.as_mut().unwrap().info);
        let message = plan_error(&desired, &observed).to_string();
        assert!(message.contains(problem), "{problem}: {message}");
        assert!(
            message.contains(ALIAS) && message.contains(KEY_ARN),
            "{message}"
        );
    }
}

#[test]
fn a_caller_outside_the_management_account_is_an_error() {
    let (desired, mut observed) = converged();
    observed.identity = CallerIdentity {
        account: "444444444444".to_owned(),
        arn: "arn:aws:iam::444444444444:user/someone".to_owned(),
    };
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("444444444444"), "{message}");
    assert!(
        message.contains(&format!("not the management account {MANAGEMENT}")),
        "{message}"
    );
}

#[test]
fn a_configured_management_account_that_differs_is_an_error() {
    let desired = crate::config::parse(
        Path::new("t.toml"),
        config_text(true, Some("444444444444")).as_bytes(),
    )
    .unwrap();
    let (_, observed) = converged();
    let e = plan_error(&desired, &observed);
    assert!(
        e.to_string()
            .contains("accounts.management is 444444444444")
    );
    assert!(e.hint().contains(MANAGEMENT), "{}", e.hint());
}

#[test]
fn an_organization_without_all_features_is_an_error() {
    let (desired, mut observed) = converged();
    observed.organization.feature_set = crate::aws::FeatureSet::from("CONSOLIDATED_BILLING");
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("CONSOLIDATED_BILLING"), "{message}");
}

#[test]
fn a_trail_in_another_region_is_an_error() {
    let (desired, mut observed) = converged();
    observed.trail.home_region = "eu-west-1".to_owned();
    let e = plan_error(&desired, &observed);
    let message = e.to_string();
    assert!(
        message.contains("eu-west-1") && message.contains("us-east-1"),
        "{message}"
    );
    assert!(e.hint().contains("region = \"eu-west-1\""), "{}", e.hint());
}

#[test]
fn credentials_of_another_partition_are_an_error() {
    let (desired, mut observed) = converged();
    observed.identity.arn = format!("arn:aws-us-gov:iam::{MANAGEMENT}:user/admin");
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("aws-us-gov"), "{message}");
}

#[test]
fn a_security_tooling_account_that_is_the_management_account_is_an_error() {
    let (desired, mut observed) = converged();
    observed.identity.account = SECURITY_TOOLING.to_owned();
    observed.identity.arn = format!("arn:aws:iam::{SECURITY_TOOLING}:user/admin");
    observed.organization.management_account = SECURITY_TOOLING.to_owned();
    let message = plan_error(&desired, &observed).to_string();
    assert!(message.contains("accounts.security_tooling"), "{message}");
}

// ---------------------------------------------------------------------------
// Landing-zone checks

#[test]
fn a_bucket_in_another_region_is_an_error_before_any_write() {
    let (desired, mut observed) = converged();
    observed.bucket_region = Ok("eu-west-1".to_owned());
    let text = plan_error(&desired, &observed).render();
    assert!(
        text.contains("bucket org-trail-logs is in eu-west-1, but region is us-east-1"),
        "{text}"
    );
    assert!(text.contains("KmsKeyNotFoundException"), "{text}");
}

#[test]
fn a_trail_that_is_not_an_organization_trail_needs_the_opt_in() {
    let (desired, mut observed) = converged();
    observed.trail.is_organization_trail = false;
    let text = plan_error(&desired, &observed).render();
    assert!(text.contains("is not an organization trail"), "{text}");
    assert!(text.contains("organization_trail = false"), "{text}");
    let text = config_text(true, None).replace("[trail]", "[trail]\norganization_trail = false");
    let opted_in = crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap();
    assert!(plan(&opted_in, &observed).is_ok());
}

#[test]
fn a_control_tower_trail_is_refused_by_name_or_tag_unless_allowed() {
    let (desired, observed) = converged();
    let mut by_name = observed.clone();
    by_name.trail.name = CONTROL_TOWER_TRAIL.to_owned();
    let mut tagged = observed.clone();
    tagged.trail_tags = OnDemand::Read(BTreeMap::from([(
        "aws-control-tower".to_owned(),
        "managed-by-control-tower".to_owned(),
    )]));
    // The tags guard a write of the trail: a tagged trail already on the
    // key plans no change, whether its tags were read or not.
    assert!(!plan(&desired, &tagged).unwrap().has_changes());
    let mut by_tag = tagged.clone();
    by_tag.trail.kms_key_id = None;
    for o in [&by_name, &by_tag] {
        let text = plan_error(&desired, o).render();
        assert!(text.contains("is managed by AWS Control Tower"), "{text}");
        assert!(text.contains("Control Tower reverts changes"), "{text}");
        assert!(
            text.contains("landing_zone = true under [control_tower]"),
            "{text}"
        );
        assert!(text.contains("allow_control_tower = true"), "{text}");
    }
    let text = config_text(true, None).replace("[trail]", "[trail]\nallow_control_tower = true");
    let allowed = crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap();
    assert!(plan(&allowed, &by_name).is_ok());
    assert!(plan(&allowed, &by_tag).is_ok());
}
