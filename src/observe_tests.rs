use std::path::Path;

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
