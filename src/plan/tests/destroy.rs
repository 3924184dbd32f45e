//! `destroy`'s plan and the checks of `--delete-key`: the trail back to
//! SSE-S3, the key kept or scheduled for deletion, refused while anything
//! uses it or when trailkey did not create it.

use super::*;

/// The key's users as `observe::key_users` reads them: the observed key's
/// tags with the mark that trailkey created it, no other alias, `trails`.
fn created_key_users(observed: &Observed, trails: &[Trail]) -> KeyUsers {
    let mut tags = observed.key.as_ref().expect("a key").tags.clone();
    tags.insert(CREATED_TAG.0.to_owned(), CREATED_TAG.1.to_owned());
    KeyUsers {
        tags,
        aliases: vec![ALIAS.to_owned()],
        trails: trails.to_vec(),
        grants: Vec::new(),
        event_data_stores: Vec::new(),
    }
}

#[test]
fn delete_key_is_refused_while_a_grant_uses_the_key() {
    let (desired, observed) = converged();
    let mut users = created_key_users(&observed, &[]);
    assert!(check_deletion(ALIAS, &observed.key.as_ref().unwrap().info, &users, None).is_ok());
    users.grants.push(crate::aws::Grant {
        id: "0123abcd".to_owned(),
        grantee:
            "arn:aws:iam::111111111111:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"
                .to_owned(),
        operations: vec!["Decrypt".to_owned(), "GenerateDataKey".to_owned()],
    });
    let text = check_deletion(ALIAS, &observed.key.as_ref().unwrap().info, &users, None)
        .unwrap_err()
        .render();
    assert!(text.contains("is used through 1 grant(s): grant 0123abcd to arn:aws:iam::111111111111:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS (Decrypt, GenerateDataKey)"), "{text}");
    assert!(text.contains("aws kms list-grants"), "{text}");
    let _ = desired;
}

#[test]
fn delete_key_names_every_use_at_once_with_outside_text_escaped() {
    let (_, observed) = converged();
    let key = &observed.key.as_ref().unwrap().info;
    let mut users = created_key_users(&observed, &[]);
    users.grants.push(crate::aws::Grant {
        id: "g1".to_owned(),
        grantee: "arn:aws:iam::111111111111:role/R".to_owned(),
        operations: vec!["Decrypt".to_owned()],
    });
    users.event_data_stores = vec![
        crate::aws::EventDataStore {
            arn: "arn:aws:cloudtrail:us-east-1:333333333333:eventdatastore/e1".to_owned(),
            name: "lake\u{1b}[2J\nPlan: 0 to add, 0 to change, 0 to destroy.".to_owned(),
            status: "ENABLED".to_owned(),
            // By the key ID: the same key.
            kms_key_id: Some(key.key_id.clone()),
        },
        crate::aws::EventDataStore {
            arn: "arn:aws:cloudtrail:us-east-1:333333333333:eventdatastore/e2".to_owned(),
            name: "not-ours".to_owned(),
            status: "ENABLED".to_owned(),
            kms_key_id: None,
        },
    ];
    let mut trail = observed.trail.clone();
    // A title-setting escape (OSC ... BEL) in the name.
    trail.arn = "arn:aws:cloudtrail:ap-south-1:333333333333:trail/t\u{1b}]0;pwned\u{7}".to_owned();
    trail.home_region = "ap-south-1".to_owned();
    trail.kms_key_id = Some(key.arn.clone());
    users.trails = vec![trail];
    let text = check_deletion(ALIAS, key, &users, None)
        .unwrap_err()
        .render();
    assert!(
        text.contains(&format!(
            "--delete-key refused: the key {} is used through 1 grant(s): grant g1 to arn:aws:iam::111111111111:role/R (Decrypt); and it encrypts 1 CloudTrail Lake event data store(s): lake\\u{{1b}}[2J\\nPlan: 0 to add, 0 to change, 0 to destroy. (arn:aws:cloudtrail:us-east-1:333333333333:eventdatastore/e1, status ENABLED); and it still encrypts trail(s) arn:aws:cloudtrail:ap-south-1:333333333333:trail/t\\u{{1b}}]0;pwned\\u{{7}} (home Region ap-south-1)",
            key.arn
        )),
        "{text}"
    );
    assert!(!text.contains("not-ours"), "{text}");
    assert!(!text.contains(['\u{1b}', '\u{7}']), "{text}");
    assert_eq!(text.lines().count(), 2, "an error line and a hint: {text}");
    assert!(
        text.contains("retire or revoke the grants")
            && text.contains("delete the event data store first")
            && text.contains(
                "move those trails to another key first; or run destroy without --delete-key"
            ),
        "{text}"
    );
}

fn destroy(
    desired: &Desired,
    observed: &Observed,
    delete_key: Option<i32>,
    trails: &[Trail],
) -> Result<Plan, Error> {
    let users = delete_key.map(|_| created_key_users(observed, trails));
    plan_destroy(desired, observed, delete_key.zip(users.as_ref()))
}

#[test]
fn destroy_sets_the_trail_back_to_sse_s3_and_keeps_the_key() {
    let (desired, observed) = converged();
    let planned = destroy(&desired, &observed, None, &[]).unwrap();
    let ops: Vec<&str> = planned.steps().map(|(_, s)| s.operation()).collect();
    assert_eq!(ops, ["UpdateTrail"]);
    assert!(
        matches!(planned.steps().next().unwrap().1, Step::DisableTrailEncryption(t) if t == TRAIL_ARN)
    );
    let key = change(&planned, Address::KmsKey);
    assert_eq!(key.action, Action::NoOp);
    assert!(key.reasons[0].contains("the logs already written need the key"));
    assert_eq!(
        planned.summary(),
        Summary {
            add: 0,
            change: 1,
            destroy: 0
        }
    );
}

#[test]
fn destroy_with_delete_key_removes_the_alias_then_schedules_deletion() {
    let (desired, observed) = converged();
    let planned = destroy(
        &desired,
        &observed,
        Some(7),
        std::slice::from_ref(&observed.trail),
    )
    .unwrap();
    let ops: Vec<(Address, &str)> = planned.steps().map(|(a, s)| (a, s.operation())).collect();
    assert_eq!(
        ops,
        [
            (Address::TrailEncryption, "UpdateTrail"),
            (Address::KmsAlias, "DeleteAlias"),
            (Address::KmsKey, "ScheduleKeyDeletion"),
        ]
    );
    assert!(
        planned
            .steps()
            .any(|(_, s)| *s == Step::ScheduleKeyDeletion(7))
    );
    assert!(change(&planned, Address::KmsKey).reasons[0].contains("unreadable"));
    assert_eq!(
        planned.summary(),
        Summary {
            add: 0,
            change: 1,
            destroy: 2
        }
    );
}

#[test]
fn destroy_never_deletes_a_key_another_trail_uses() {
    let (desired, observed) = converged();
    let mut other = observed.trail.clone();
    other.arn = OTHER_TRAIL_ARN.to_owned();
    for id in [KEY_ARN, KEY_ID, ALIAS] {
        other.kms_key_id = Some(id.to_owned());
        let text = destroy(
            &desired,
            &observed,
            Some(30),
            &[observed.trail.clone(), other.clone()],
        )
        .unwrap_err()
        .render();
        assert!(text.contains("--delete-key refused"), "{text}");
        assert!(text.contains(OTHER_TRAIL_ARN), "{text}");
    }
}

#[test]
fn destroy_leaves_a_trail_on_someone_elses_key_alone() {
    let (desired, mut observed) = converged();
    observed.trail.kms_key_id = Some(OTHER_KEY_ARN.to_owned());
    let planned = destroy(&desired, &observed, None, &[]).unwrap();
    assert!(!planned.has_changes());
}

#[test]
fn destroy_never_deletes_a_key_trailkey_did_not_create() {
    let (desired, observed) = converged();
    let created = created_key_users(&observed, &[]);
    // Adopted: tagged ManagedBy by trailkey's repair, never marked as created.
    let mut adopted = created.clone();
    adopted.tags.remove(CREATED_TAG.0);
    assert_eq!(
        adopted.tags.get("ManagedBy").map(String::as_str),
        Some("trailkey")
    );
    // Made by hand, never seen by trailkey.
    let mut foreign = adopted.clone();
    foreign.tags.remove("ManagedBy");
    // The mark with another value is no mark.
    let mut forged = created.clone();
    forged
        .tags
        .insert(CREATED_TAG.0.to_owned(), "yes".to_owned());
    for (users, says) in [
        (&adopted, "trailkey manages it but did not create it"),
        (&foreign, "trailkey did not create it"),
        (&forged, "trailkey manages it but did not create it"),
    ] {
        let text = plan_destroy(&desired, &observed, Some((30, users)))
            .unwrap_err()
            .render();
        assert!(text.contains("--delete-key refused"), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(text.contains("run destroy without --delete-key"), "{text}");
    }
    assert!(plan_destroy(&desired, &observed, Some((30, &created))).is_ok());
    // Without --delete-key the backout itself still works.
    assert!(destroy(&desired, &observed, None, &[]).is_ok());
}

#[test]
fn only_trailkeys_create_key_marks_a_key_as_created() {
    let desired = cached_config(true);
    let from_scratch = plan(&desired, &observed_without_key(None)).unwrap();
    let Some((_, Step::CreateKey(new))) = from_scratch.steps().next() else {
        panic!("a first plan creates the key");
    };
    assert_eq!(
        new.tags.get(CREATED_TAG.0).map(String::as_str),
        Some(CREATED_TAG.1)
    );
    assert!(!desired.tags.contains_key(CREATED_TAG.0));
    // Every repair of an existing key, adopted or not: no step sets the mark.
    for case in all_cases()
        .iter()
        .filter(|c| c.key.is_some() && !c.refuses_adoption())
    {
        let desired = case.desired();
        let planned = plan(&desired, &case.observed(&desired)).unwrap();
        for (_, step) in planned.steps() {
            if let Step::TagKey(tags) = step {
                assert!(!tags.contains_key(CREATED_TAG.0), "{case:?}: {tags:?}");
            }
            assert!(!matches!(step, Step::CreateKey(_)), "{case:?}");
        }
    }
}

#[test]
fn destroy_never_deletes_a_key_a_trail_names_by_another_alias_or_from_another_region() {
    let (desired, observed) = converged();
    let mut users = created_key_users(&observed, std::slice::from_ref(&observed.trail));
    users.aliases.push("alias/team-x".to_owned());
    // A multi-Region trail homed in another Region, seen here as a shadow
    // copy, naming the key through the other alias's ARN.
    let shadow = Trail {
        name: "eu-trail".to_owned(),
        arn: "arn:aws:cloudtrail:eu-west-1:333333333333:trail/eu-trail".to_owned(),
        home_region: "eu-west-1".to_owned(),
        kms_key_id: Some("arn:aws:kms:us-east-1:111111111111:alias/team-x".to_owned()),
        ..observed.trail.clone()
    };
    users.trails.push(shadow.clone());
    let text = plan_destroy(&desired, &observed, Some((7, &users)))
        .unwrap_err()
        .render();
    assert!(text.contains(&shadow.arn), "{text}");
    // The check made right before ScheduleKeyDeletion exempts no trail: the
    // configured one must have left the key by then.
    users.trails.pop();
    let k = &observed.key.as_ref().unwrap().info;
    assert!(check_deletion(ALIAS, k, &users, Some(TRAIL_ARN)).is_ok());
    let text = check_deletion(ALIAS, k, &users, None).unwrap_err().render();
    assert!(text.contains(TRAIL_ARN), "{text}");
    // The configured trail names the key through the other alias: destroy
    // does not move it off, so it is not exempt, and the plan refuses.
    let mut observed = observed.clone();
    observed.trail.kms_key_id = Some("alias/team-x".to_owned());
    users.trails = vec![observed.trail.clone()];
    let text = plan_destroy(&desired, &observed, Some((7, &users)))
        .unwrap_err()
        .render();
    assert!(text.contains(TRAIL_ARN), "{text}");
}
