use std::path::Path;

use super::keys::*;
use super::*;

fn desired(trail: &str) -> Desired {
    let text = format!(
        "region = \"us-east-1\"\n[accounts]\nsecurity_tooling = \"111111111111\"\nlog_archive = \"222222222222\"\n[trail]\nname = \"{trail}\"\n"
    );
    crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap()
}

fn trail(name: &str, region: &str) -> Trail {
    Trail {
        name: name.to_owned(),
        arn: format!("arn:aws:cloudtrail:{region}:333333333333:trail/{name}"),
        home_region: region.to_owned(),
        kms_key_id: None,
        is_organization_trail: true,
        is_multi_region_trail: true,
        s3_bucket: "logs".to_owned(),
        s3_key_prefix: None,
        log_file_validation: true,
        has_custom_event_selectors: false,
    }
}

fn chosen(config: &str, trails: &[Trail]) -> Option<(String, Vec<String>)> {
    configured_trail(&desired(config), trails.to_vec())
        .map(|(t, others)| (t.arn, others.into_iter().map(|o| o.arn).collect()))
}

#[test]
fn the_configured_trail_is_found_by_name_in_its_region_or_by_arn() {
    let home = trail("org-trail", "us-east-1");
    let shadow = trail("org-trail", "eu-west-1");
    let other = trail("other", "us-east-1");
    let all = [shadow.clone(), other.clone(), home.clone()];
    // By name: the one homed in the configured Region, whatever the order.
    assert_eq!(
        chosen("org-trail", &all),
        Some((
            home.arn.clone(),
            vec![shadow.arn.clone(), other.arn.clone()]
        ))
    );
    // By ARN: exactly that trail.
    assert_eq!(chosen(&home.arn, &all).map(|c| c.0), Some(home.arn.clone()));
    assert_eq!(chosen(&home.arn, &[shadow.clone(), other.clone()]), None);
    // Only a shadow copy of that name: it is chosen, so that the plan
    // says where the trail lives.
    assert_eq!(
        chosen("org-trail", &[shadow.clone(), other.clone()]).map(|c| c.0),
        Some(shadow.arn.clone())
    );
    // None of that name.
    assert_eq!(chosen("missing", &all), None);
}

#[test]
fn the_role_kms_refused_is_read_from_its_message_only_in_the_shape_of_an_arn() {
    let session = "User: arn:aws:sts::111111111111:assumed-role/TrailkeyRunner/pipeline is not authorized to perform: kms:GetKeyPolicy on resource: k because no resource-based policy allows the kms:GetKeyPolicy action";
    assert_eq!(
        denied_role(session).as_deref(),
        Some("arn:aws:iam::111111111111:role/TrailkeyRunner")
    );
    assert_eq!(
        denied_role("User: arn:aws-us-gov:iam::111111111111:user/ci is not authorized").as_deref(),
        Some("arn:aws-us-gov:iam::111111111111:user/ci")
    );
    for odd in [
        "",
        "Access Denied",
        "User: is not authorized",
        "User: arn:aws:s3:::bucket is not authorized",
        "User: arn:aws:sts::111111111111:assumed-role/\u{1b}[2J/s is not authorized",
        "User: arn:aws:sts::111111111111:federated-user/x is not authorized",
        "no User: arn:aws:iam::111111111111:user/ci is not authorized",
    ] {
        assert_eq!(denied_role(odd), None, "{odd:?}");
    }
    // In the hint: the role KMS names, not the configured one.
    let e = AwsError::new("GetKeyPolicy", code::ACCESS_DENIED_EXCEPTION, session);
    let text = key_error(&desired("org-trail"), "the key policy", "k", e).render();
    assert!(
        text.contains("does not let arn:aws:iam::111111111111:role/TrailkeyRunner use the key"),
        "{text}"
    );
}
