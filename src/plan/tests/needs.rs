//! What planning asks to be read first: the production `plan` and
//! `plan_destroy`, which answer `Planned::Needs` until the reads are there.

use super::*;

fn needs(planned: Result<Planned, Error>) -> Vec<Need> {
    match planned.unwrap() {
        Planned::Needs(needs) => needs,
        Planned::Ready(plan) => panic!("planned without asking: {plan:?}"),
    }
}

#[test]
fn a_converged_state_asks_for_no_read() {
    let (desired, mut observed) = converged();
    observed.trail_tags = OnDemand::NotRead;
    assert!(matches!(
        crate::plan::plan(&desired, &observed).unwrap(),
        Planned::Ready(_)
    ));
}

#[test]
fn a_change_of_the_trail_asks_for_its_tags_and_with_roles_log_archive_its_bucket() {
    let desired = config(true);
    let mut observed = observed_without_key(None);
    observed.trail_tags = OnDemand::NotRead;
    assert_eq!(
        needs(crate::plan::plan(&desired, &observed)),
        [Need::TrailTags]
    );
    let text = format!(
        "{}\n[roles]\nlog_archive = \"TrailkeyLogArchiveRead\"\n",
        config_text(true, None)
    );
    let with_role = crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap();
    assert_eq!(
        needs(crate::plan::plan(&with_role, &observed)),
        [Need::TrailTags, Need::LogBucket]
    );
    // What was read is never asked for again.
    observed.trail_tags = OnDemand::Read(BTreeMap::new());
    assert_eq!(
        needs(crate::plan::plan(&with_role, &observed)),
        [Need::LogBucket]
    );
}

#[test]
fn a_foreign_statement_naming_an_unknown_account_asks_for_the_organizations_accounts() {
    let outside = json!({"AWS": "arn:aws:iam::666666666666:root"});
    let (desired, mut observed) = converged_with(grant("Backdoor", outside, "kms:*", None));
    assert_eq!(
        needs(crate::plan::plan(&desired, &observed)),
        [Need::OrganizationAccounts]
    );
    observed.organization_accounts = OnDemand::Read(vec![MANAGEMENT.to_owned()]);
    let planned = plan(&desired, &observed).unwrap();
    assert!(
        planned
            .findings
            .iter()
            .any(|f| f.message.contains("outside the organization")),
        "{:?}",
        planned.findings
    );
}

#[test]
fn destroy_asks_for_the_tags_of_a_trail_on_a_key_and_for_nothing_else_without_a_role() {
    let (desired, mut observed) = converged();
    observed.trail_tags = OnDemand::NotRead;
    assert_eq!(
        needs(crate::plan::plan_destroy(&desired, &observed, None)),
        [Need::TrailTags]
    );
    let mut unencrypted = observed_without_key(None);
    unencrypted.trail_tags = OnDemand::NotRead;
    assert!(matches!(
        crate::plan::plan_destroy(&desired, &unencrypted, None).unwrap(),
        Planned::Ready(_)
    ));
}

#[test]
fn a_key_still_in_use_stops_destroy_delete_key_before_any_read_is_asked_for() {
    let (_, mut observed) = converged();
    observed.trail_tags = OnDemand::NotRead;
    let text = format!(
        "{}\n[roles]\nlog_archive = \"TrailkeyLogArchiveRead\"\n",
        config_text(true, None)
    );
    let with_role = crate::config::parse(Path::new("t.toml"), text.as_bytes()).unwrap();
    let mut tags = observed.key.as_ref().unwrap().tags.clone();
    tags.insert(CREATED_TAG.0.to_owned(), CREATED_TAG.1.to_owned());
    let users = KeyUsers {
        tags,
        aliases: vec![ALIAS.to_owned()],
        trails: Vec::new(),
        grants: vec![crate::aws::Grant {
            id: "0123abcd".to_owned(),
            grantee: "arn:aws:iam::111111111111:role/Other".to_owned(),
            operations: vec!["Decrypt".to_owned()],
        }],
        event_data_stores: Vec::new(),
    };
    let refused = crate::plan::plan_destroy(&with_role, &observed, Some((7, &users)));
    let text = refused.unwrap_err().render();
    assert!(text.contains("grant 0123abcd"), "{text}");
}
