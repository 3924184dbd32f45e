//! A run from Security Tooling as CloudTrail's delegated administrator:
//! no role assumed, the trail named by its ARN, the delegation checked
//! before anything is written; and who runs told by the credentials, or by
//! `GetCallerIdentity` when they do not say.

use crate::testing::*;

fn delegated_cloud() -> crate::aws::fake::FakeCloud {
    empty_cloud().as_delegated_administrator()
}

fn trail_arn() -> String {
    format!("arn:aws:cloudtrail:{REGION}:{MANAGEMENT}:trail/org-trail")
}

#[test]
fn the_delegated_administrator_converges_with_its_own_credentials_and_the_trails_arn() {
    let desired = desired();
    let fake = delegated_cloud();
    let (planned, _) = apply_now(&fake, &desired);
    assert_eq!(
        sorted(step_operations(&planned)),
        sorted(FROM_SCRATCH.to_vec())
    );
    assert_eq!(trail_kms_key_id(&fake), Some(only_key(&fake).info.arn));
    let calls = fake.calls();
    assert_eq!(count(&fake, "AssumeRole"), 0, "{calls:?}");
    assert_eq!(count(&fake, "ListDelegatedAdministrators"), 1, "{calls:?}");
    assert!(fake.state.borrow().assumed.is_empty());
    // The key was made in Security Tooling, and its policy lets CloudTrail
    // encrypt for the management account's trail.
    let key = only_key(&fake);
    assert!(key.info.arn.contains(&format!(":{SECURITY_TOOLING}:key/")));
    assert!(key.policy.contains(&trail_arn()), "{}", key.policy);
    // A rerun writes nothing.
    fake.clear_calls();
    let (again, done) = apply_now(&fake, &desired);
    assert!(
        step_operations(&again).is_empty(),
        "{:?}",
        step_operations(&again)
    );
    assert!(done.is_empty());
    assert!(fake.writes().is_empty(), "{:?}", fake.calls());
}

#[test]
fn a_delegated_administrators_no_op_plan_is_ten_calls_in_two_rounds_without_assume_role() {
    let desired = desired();
    let fake = delegated_cloud();
    apply_now(&fake, &desired);
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    eprintln!("no-op plan as delegated administrator: {calls} calls in {rounds} rounds");
    // Round 1: identity, organization, trails and the delegation. Round 2:
    // the trail's status by its ARN (no accounts.management here to build
    // it from), the bucket Region, the alias, and the trail's key's policy,
    // rotation and tags.
    assert_eq!((calls, rounds), (10, 2), "{:?}", fake.calls());
    assert_eq!(count(&fake, "AssumeRole"), 0);
    assert_eq!(count(&fake, "ListDelegatedAdministrators"), 1);
}

#[test]
fn without_the_account_in_the_credentials_a_delegated_administrator_still_takes_two_rounds() {
    let desired = desired();
    let fake = delegated_cloud();
    apply_now(&fake, &desired);
    fake.state.borrow_mut().credentials_unnamed = true;
    fake.state.borrow_mut().answered_account = None;
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    assert_eq!((calls, rounds), (10, 2), "{:?}", fake.calls());
    assert_eq!(count(&fake, "AssumeRole"), 0);
}

#[test]
fn without_the_account_in_the_credentials_the_management_accounts_role_waits_for_sts() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    fake.state.borrow_mut().credentials_unnamed = true;
    fake.state.borrow_mut().answered_account = None;
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    eprintln!("no-op plan, credentials without their account: {calls} calls in {rounds} rounds");
    // GetCallerIdentity, then AssumeRole, then the key's reads.
    assert_eq!((calls, rounds), (10, 3), "{:?}", fake.calls());
    let calls = fake.calls();
    let identity = calls.iter().position(|c| *c == "GetCallerIdentity");
    let assume = calls.iter().position(|c| *c == "AssumeRole");
    assert!(identity < assume, "{calls:?}");
    // A connection that has asked once knows (a warm Lambda function).
    let (calls, rounds) = calls_and_rounds(&fake, run_command(&fake, &desired, plan_command()));
    assert_eq!((calls, rounds), (10, 2), "{:?}", fake.calls());
}

#[test]
fn security_tooling_not_registered_is_refused_before_any_write_with_the_registration_command() {
    let desired = desired();
    for unnamed in [false, true] {
        let fake = delegated_cloud();
        {
            let mut s = fake.state.borrow_mut();
            s.delegated_administrators.clear();
            s.credentials_unnamed = unnamed;
        }
        let text = apply_error(&fake, &desired).render();
        assert!(
            text.contains("not CloudTrail's delegated administrator"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "aws cloudtrail register-organization-delegated-admin --member-account-id {SECURITY_TOOLING}"
            )),
            "{text}"
        );
        assert!(fake.writes().is_empty(), "{:?}", fake.calls());
        assert_eq!(count(&fake, "AssumeRole"), 0);
    }
}

#[test]
fn another_services_delegated_administrator_is_not_cloudtrails() {
    let desired = desired();
    let fake = delegated_cloud();
    // Registered for GuardDuty: Organizations answers it the list, in which
    // Security Tooling is not CloudTrail's.
    fake.state.borrow_mut().delegated_administrators = vec![(
        "guardduty.amazonaws.com".to_owned(),
        SECURITY_TOOLING.to_owned(),
    )];
    let text = apply_error(&fake, &desired).render();
    assert!(
        text.contains("which is not CloudTrail's delegated administrator"),
        "{text}"
    );
    assert!(!text.contains("Organizations refused"), "{text}");
    assert!(fake.writes().is_empty());
    assert_eq!(count(&fake, "AssumeRole"), 0);
}

#[test]
fn an_iam_policy_without_the_delegation_check_says_so_not_that_it_is_unregistered() {
    let desired = desired();
    let fake = delegated_cloud();
    fake.fail_next(
        "ListDelegatedAdministrators",
        "AccessDeniedException",
        "User: arn:aws:sts::111111111111:assumed-role/TrailkeyRunner/pipeline is not authorized to perform: organizations:ListDelegatedAdministrators because no identity-based policy allows the organizations:ListDelegatedAdministrators action",
    );
    let text = apply_error(&fake, &desired).render();
    assert!(
        text.contains("organizations:ListDelegatedAdministrators"),
        "{text}"
    );
    assert!(
        !text.contains("register-organization-delegated-admin"),
        "{text}"
    );
    assert!(fake.writes().is_empty());
}

#[test]
fn credentials_that_name_another_account_than_sts_answers_are_refused_before_any_write() {
    let desired = desired();
    let fake = empty_cloud();
    // The credentials say Security Tooling (a stale AWS_ACCOUNT_ID), STS
    // answers the management account.
    fake.state.borrow_mut().credentials_unnamed = true;
    fake.state.borrow_mut().answered_account = Some(SECURITY_TOOLING.to_owned());
    let text = apply_error(&fake, &desired).render();
    assert!(text.contains("STS answers"), "{text}");
    assert!(fake.writes().is_empty(), "{:?}", fake.calls());
}

#[test]
fn a_trail_named_by_name_is_asked_by_arn_once_describe_trails_tells_it() {
    // Without accounts.management, the ARN comes from DescribeTrails: the
    // status is read in round 2, and never by name.
    let desired = desired();
    let fake = delegated_cloud();
    apply_now(&fake, &desired);
    fake.clear_calls();
    let planned = plan_now(&fake, &desired);
    assert!(step_operations(&planned).is_empty());
    assert_eq!(count(&fake, "GetTrailStatus"), 1);
}

#[test]
fn roles_management_with_security_toolings_credentials_is_a_config_error_before_any_call() {
    let desired =
        desired_with("[roles]\nmanagement = \"arn:aws:iam::333333333333:role/TrailkeyManagement\"");
    let fake = delegated_cloud();
    let e = apply_error(&fake, &desired);
    let text = e.render();
    assert!(text.contains("roles.management"), "{text}");
    assert!(text.contains("remove roles.management"), "{text}");
    assert!(matches!(e, crate::error::Error::Config { .. }), "{e:?}");
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[test]
fn protection_run_from_security_tooling_exempts_the_role_it_runs_as_or_is_refused() {
    // The caller runs as TrailkeyRunner: roles.security_tooling must name it.
    let refused = desired_with("[key]\nprotect = true");
    let fake = delegated_cloud();
    let text = apply_error(&fake, &refused).render();
    assert!(
        text.contains("key.protect would deny the role trailkey runs as"),
        "{text}"
    );
    assert!(
        text.contains("roles.security_tooling = \"TrailkeyRunner\""),
        "{text}"
    );
    assert!(fake.writes().is_empty());
    let fine =
        desired_with("[key]\nprotect = true\n[roles]\nsecurity_tooling = \"TrailkeyRunner\"");
    let fake = delegated_cloud();
    fake.state.borrow_mut().caller = Some(format!(
        "arn:aws:iam::{SECURITY_TOOLING}:role/TrailkeyRunner"
    ));
    apply_now(&fake, &fine);
    assert!(only_key(&fake).policy.contains("TrailkeyRunner"));
    fake.clear_calls();
    let (again, _) = apply_now(&fake, &fine);
    assert!(step_operations(&again).is_empty());
}

#[test]
fn destroy_with_delete_key_is_refused_from_security_tooling_before_any_read_of_the_keys_users() {
    let desired = desired();
    let fake = delegated_cloud();
    apply_now(&fake, &desired);
    fake.clear_calls();
    let destroy = crate::reconcile::Command::Destroy {
        delete_key: Some(7),
        dry_run: false,
        auto_approve: true,
        landing_zone: Default::default(),
    };
    let e = block_on(crate::reconcile::run(
        &fake,
        &desired,
        destroy,
        &mut Yes::default(),
    ))
    .expect_err("refused");
    let text = e.render();
    assert!(
        text.contains("destroy --delete-key cannot run from Security Tooling"),
        "{text}"
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.calls());
    assert_eq!(count(&fake, "ListRegions"), 0);
    // Without --delete-key, destroy moves the trail off the key by its ARN.
    let destroy = crate::reconcile::Command::Destroy {
        delete_key: None,
        dry_run: false,
        auto_approve: true,
        landing_zone: Default::default(),
    };
    block_on(crate::reconcile::run(
        &fake,
        &desired,
        destroy,
        &mut Yes::default(),
    ))
    .unwrap();
    assert_eq!(trail_kms_key_id(&fake), None);
    assert_eq!(fake.writes(), ["UpdateTrail"]);
    assert!(fake.state.borrow().assumed.is_empty());
}

#[test]
fn roles_management_assumed_from_another_account_is_not_taken_for_a_mismatch() {
    // The credentials name a tooling account; STS answers for the
    // management role they assume.
    let desired =
        desired_with("[roles]\nmanagement = \"arn:aws:iam::333333333333:role/TrailkeyManagement\"");
    let fake = empty_cloud();
    fake.state.borrow_mut().credentials_unnamed = true;
    fake.state.borrow_mut().answered_account = Some("999999999999".to_owned());
    let (planned, _) = apply_now(&fake, &desired);
    assert_eq!(
        sorted(step_operations(&planned)),
        sorted(FROM_SCRATCH.to_vec())
    );
    assert_eq!(count(&fake, "AssumeRole"), 1);
}

fn log_archive_caller(fake: &crate::aws::fake::FakeCloud, unnamed: bool) {
    let mut s = fake.state.borrow_mut();
    s.identity = Some(crate::aws::CallerIdentity {
        account: "222222222222".to_owned(),
        arn: "arn:aws:sts::222222222222:assumed-role/TrailkeyRunner/pipeline".to_owned(),
    });
    s.credentials_unnamed = unnamed;
}

#[test]
fn another_member_is_refused_as_before_and_no_role_is_assumed_for_it() {
    let with_management = {
        let text = format!(
            "region = \"{REGION}\"\n[accounts]\nsecurity_tooling = \"{SECURITY_TOOLING}\"\nlog_archive = \"222222222222\"\nmanagement = \"{MANAGEMENT}\"\n[trail]\nname = \"org-trail\"\n"
        );
        crate::config::parse(std::path::Path::new("t.toml"), text.as_bytes()).unwrap()
    };
    // Credentials that do not name their account: STS and Organizations
    // answer first. Credentials that name it: the configured management
    // account tells it is neither.
    for (desired, unnamed) in [(desired(), true), (with_management, false)] {
        let fake = empty_cloud();
        log_archive_caller(&fake, unnamed);
        let text = apply_error(&fake, &desired).render();
        assert!(
            text.contains("which is not the management account"),
            "{text}"
        );
        assert_eq!(count(&fake, "AssumeRole"), 0, "{:?}", fake.calls());
        assert_eq!(count(&fake, "ListDelegatedAdministrators"), 0);
        assert!(fake.writes().is_empty());
    }
}

#[test]
fn security_tooling_with_the_landing_zone_is_told_to_run_from_the_management_account() {
    let desired = {
        let text = format!(
            "region = \"{REGION}\"\n[accounts]\nsecurity_tooling = \"{SECURITY_TOOLING}\"\nlog_archive = \"222222222222\"\nmanagement = \"{MANAGEMENT}\"\n[control_tower]\nlanding_zone = true\n"
        );
        crate::config::parse(std::path::Path::new("t.toml"), text.as_bytes()).unwrap()
    };
    let fake = empty_cloud()
        .as_delegated_administrator()
        .with_landing_zone("3.3");
    let text = apply_error(&fake, &desired).render();
    assert!(
        text.contains("which is not the management account"),
        "{text}"
    );
    assert!(!text.contains("remove roles.management"), "{text}");
    assert!(fake.writes().is_empty());
    assert_eq!(count(&fake, "ListDelegatedAdministrators"), 0);
    // roles.management is how the landing zone runs from another account:
    // not refused there.
    let with_role = {
        let text = format!(
            "region = \"{REGION}\"\n[accounts]\nsecurity_tooling = \"{SECURITY_TOOLING}\"\nlog_archive = \"222222222222\"\nmanagement = \"{MANAGEMENT}\"\n[roles]\nmanagement = \"arn:aws:iam::{MANAGEMENT}:role/TrailkeyRunner\"\n[control_tower]\nlanding_zone = true\n"
        );
        crate::config::parse(std::path::Path::new("t.toml"), text.as_bytes()).unwrap()
    };
    // The fake's STS still answers Security Tooling (it assumes no role):
    // the run stops at the caller's check, not at the config.
    let e = apply_error(&fake, &with_role);
    assert!(!matches!(e, crate::error::Error::Config { .. }), "{e:?}");
    let text = e.render();
    assert!(!text.contains("remove roles.management"), "{text}");
    assert!(
        text.contains("which is not the management account"),
        "{text}"
    );
}

#[test]
fn a_throttled_or_failed_delegation_check_is_reported_as_it_is_not_as_unregistered() {
    let desired = desired();
    for code in ["TooManyRequestsException", "ServiceException"] {
        let fake = delegated_cloud();
        fake.fail_next("ListDelegatedAdministrators", code, "try later");
        let text = apply_error(&fake, &desired).render();
        assert!(text.contains(code), "{text}");
        assert!(
            !text.contains("not CloudTrail's delegated administrator"),
            "{text}"
        );
        assert!(fake.writes().is_empty());
    }
}

#[test]
fn an_unregistered_caller_hears_it_before_a_trail_it_cannot_find_whatever_its_credentials() {
    let mut wrong_trail = desired();
    wrong_trail.trail = crate::config::TrailRef::Name("no-such-trail".to_owned());
    for unnamed in [false, true] {
        let fake = delegated_cloud();
        fake.state.borrow_mut().delegated_administrators.clear();
        fake.state.borrow_mut().credentials_unnamed = unnamed;
        let text = apply_error(&fake, &wrong_trail).render();
        assert!(
            text.contains("not CloudTrail's delegated administrator"),
            "unnamed {unnamed}: {text}"
        );
    }
}

#[test]
fn an_unregistered_caller_hears_it_before_a_trail_status_it_could_not_read() {
    // accounts.management set: the trail's ARN is built, and its status
    // read in the first round, beside STS.
    let desired = {
        let text = format!(
            "region = \"{REGION}\"\n[accounts]\nsecurity_tooling = \"{SECURITY_TOOLING}\"\nlog_archive = \"222222222222\"\nmanagement = \"{MANAGEMENT}\"\n[trail]\nname = \"org-trail\"\n"
        );
        crate::config::parse(std::path::Path::new("t.toml"), text.as_bytes()).unwrap()
    };
    let fake = delegated_cloud();
    fake.state.borrow_mut().delegated_administrators.clear();
    fake.state.borrow_mut().credentials_unnamed = true;
    fake.fail_next(
        "GetTrailStatus",
        "AccessDeniedException",
        "User: x is not authorized",
    );
    let text = apply_error(&fake, &desired).render();
    assert!(
        text.contains("not CloudTrail's delegated administrator"),
        "{text}"
    );
    // A failed check (throttled) leaves the first error as it was.
    let fake = delegated_cloud();
    fake.state.borrow_mut().credentials_unnamed = true;
    fake.fail_next(
        "GetTrailStatus",
        "AccessDeniedException",
        "User: x is not authorized",
    );
    fake.fail_next(
        "ListDelegatedAdministrators",
        "TooManyRequestsException",
        "slow down",
    );
    let text = apply_error(&fake, &desired).render();
    assert!(text.contains("cloudtrail:GetTrailStatus"), "{text}");
    assert!(fake.writes().is_empty());
}
