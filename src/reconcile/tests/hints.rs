//! AWS errors reach the user with a plain-language hint. These run observe
//! and apply against the fake with an error scripted on one AWS call, so
//! they check what the user sees after a run, not only the error table
//! (whose own tests are in `src/error_tests.rs`).

use crate::aws::fake::FakeCloud;
use crate::observe::observe;
use crate::testing::*;

#[test]
fn an_unknown_trail_is_an_observe_error_pointing_at_trail_name_and_region() {
    // The organization has no trail of that name.
    let fake = FakeCloud::new(REGION, MANAGEMENT, SECURITY_TOOLING, "another-trail");
    let e = block_on(observe(&fake, &desired()))
        .map(|_| ())
        .unwrap_err();
    let text = e.render();
    assert!(text.contains("hint:"), "{text}");
    assert!(
        e.hint().contains("trail.name") && e.hint().contains("region"),
        "{text}"
    );
    assert!(
        text.contains("org-trail") && text.contains(REGION),
        "{text}"
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
}

#[test]
fn a_denied_assume_role_points_at_the_role_name_and_its_trust() {
    let fake = empty_cloud();
    fake.fail_next(
        "AssumeRole",
        "AccessDenied",
        "User is not authorized to perform: sts:AssumeRole",
    );
    let e = block_on(observe(&fake, &desired()))
        .map(|_| ())
        .unwrap_err();
    let text = e.render();
    assert!(
        e.hint().contains("roles.security_tooling") && e.hint().contains("trust"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:iam::111111111111:role/AWSControlTowerExecution"),
        "{text}"
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
}

#[test]
fn a_key_cloudtrail_cannot_find_points_at_region_and_arn() {
    // An existing key: nothing this run wrote explains the error, so it is
    // not waited for.
    let fake = converged_with_unencrypted_trail();
    fake.fail_next(
        "UpdateTrail",
        "KmsKeyNotFoundException",
        "Cannot find KMS key",
    );
    let e = apply_error(&fake, &desired());
    assert_eq!(
        fake.calls().iter().filter(|c| **c == "UpdateTrail").count(),
        1,
        "no retry"
    );
    assert!(
        e.hint().contains("Region") && e.hint().contains("ARN"),
        "{}",
        e.render()
    );
    assert!(e.render().contains("hint:"));
}

#[test]
fn throttling_that_outlasts_the_retries_says_wait_and_run_again() {
    // During apply...
    let fake = empty_cloud();
    fake.fail_next("CreateAlias", "ThrottlingException", "Rate exceeded");
    let e = apply_error(&fake, &desired());
    assert!(
        e.hint().contains("wait") && e.hint().contains("run again"),
        "{}",
        e.render()
    );
    assert!(
        e.to_string()
            .contains("apply stopped at kms_alias (CreateAlias)")
    );

    // ...and during observe.
    let fake = empty_cloud();
    fake.fail_next("DescribeKey", "ThrottlingException", "Rate exceeded");
    let e = block_on(observe(&fake, &desired()))
        .map(|_| ())
        .unwrap_err();
    assert!(
        e.hint().contains("wait") && e.hint().contains("run again"),
        "{}",
        e.render()
    );
    assert!(fake.writes().is_empty());
}

/// `operation` fails with `code`; the error the user sees carries `hint`.
fn assert_hint(operation: &'static str, code: &str, hint: &str) {
    let desired = desired();
    let fake = empty_cloud();
    fake.fail_next(operation, code, "as AWS says it");
    let e = block_on(run_apply(&fake, &desired)).unwrap_err();
    let text = e.render();
    assert!(text.contains(code), "{text}");
    assert!(text.contains(hint), "{operation} {code}: {text}");
    assert!(!text.contains("testing"), "no credentials in messages");
}

#[test]
fn every_aws_error_the_domain_names_gets_a_plain_language_hint() {
    assert_hint(
        "UpdateTrail",
        "KmsKeyDisabledException",
        "the key is disabled: `trailkey apply` enables it",
    );
    assert_hint(
        "UpdateTrail",
        "NotOrganizationMasterAccountException",
        "organization trails can only be changed from the management account",
    );
    assert_hint(
        "UpdateTrail",
        "OrganizationNotInAllFeaturesModeException",
        "organization trails need AWS Organizations with all features enabled",
    );
    assert_hint(
        "GetCallerIdentity",
        "ExpiredToken",
        "the AWS credentials have expired",
    );
    assert_hint(
        "CreateKey",
        "LimitExceededException",
        "a KMS quota was reached",
    );
    assert_hint(
        "DescribeOrganization",
        "AWSOrganizationsNotInUseException",
        "not in an organization",
    );
}
