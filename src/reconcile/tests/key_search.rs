//! The search for a key an earlier run made, beside keys whose key policy
//! shuts trailkey's role out: those are skipped, but never a key the
//! denial may hide, which would make a second key.

use crate::aws::fake::FakeCloud;
use crate::testing::*;

/// A key of another team or service, whose key policy does not let
/// trailkey's role in (`FakeState::unreadable`); returns its ARN.
fn add_unreadable_key(fake: &FakeCloud, id: &str) -> String {
    let arn = format!("arn:aws:kms:{REGION}:{SECURITY_TOOLING}:key/{id}");
    let mut s = fake.state.borrow_mut();
    s.keys.push(crate::aws::fake::FakeKey {
        info: crate::aws::KeyInfo {
            key_id: id.to_owned(),
            arn: arn.clone(),
            state: crate::aws::KeyState::Enabled,
            key_spec: crate::aws::KeySpec::SymmetricDefault,
            key_usage: crate::aws::KeyUsage::EncryptDecrypt,
            origin: crate::aws::Origin::AwsKms,
            multi_region: false,
            description: "another team's key".to_owned(),
            key_manager: crate::aws::KeyManager::Customer,
            created: Some(1_600_000_000),
        },
        policy: "{}".to_owned(),
        rotation: true,
        rotation_period: crate::aws::DEFAULT_ROTATION_PERIOD_DAYS,
        tags: std::collections::BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
    });
    s.unreadable.push(id.to_owned());
    arn
}

/// The search for a key an earlier run made skips keys whose policy shuts
/// trailkey's role out: a first apply converges beside them.
#[test]
fn keys_trailkey_may_not_read_are_skipped_by_the_search() {
    let fake = empty_cloud();
    let theirs = add_unreadable_key(&fake, "aaaaaaaa-0000-4000-8000-000000000001");
    let (planned, _) = apply_now(&fake, &desired());
    assert_eq!(
        sorted(step_operations(&planned)),
        sorted(FROM_SCRATCH.to_vec())
    );
    assert!(
        fake.calls().contains(&"ListResourceTags"),
        "{:?}",
        fake.calls()
    );
    let s = fake.state.borrow();
    assert_eq!(s.keys.len(), 2);
    let ours = s.keys.iter().find(|k| k.info.arn != theirs).unwrap();
    assert_eq!(
        s.trails[TRAIL_ARN].kms_key_id.as_deref(),
        Some(ours.info.arn.as_str())
    );
    drop(s);
    assert!(!plan_now(&fake, &desired()).has_changes());
}

/// When the key the alias names is the unreadable one, the error says its
/// key policy, not trailkey's IAM policies, shuts trailkey out.
#[test]
fn an_alias_on_a_key_trailkey_may_not_read_blames_the_key_policy() {
    let fake = empty_cloud();
    let theirs = add_unreadable_key(&fake, "aaaaaaaa-0000-4000-8000-000000000002");
    fake.state.borrow_mut().aliases.insert(
        ALIAS.to_owned(),
        theirs.rsplit('/').next().unwrap().to_owned(),
    );
    let text = apply_error(&fake, &desired()).render();
    assert!(
        text.contains("reading the key named by the alias (kms:DescribeKey)")
            && text.contains("AWS DescribeKey returned AccessDeniedException"),
        "{text}"
    );
    assert!(
        text.contains("because no resource-based policy allows"),
        "{text}"
    );
    assert!(
        text.contains("hint: the key policy of alias/cloudtrail-org-key does not let arn:aws:iam::111111111111:role/AWSControlTowerExecution use the key; trailkey's IAM policies are not the cause"),
        "{text}"
    );
    assert!(fake.writes().is_empty());
}

/// A denial that blames the caller's own policies is not skipped: it stops
/// the run with the IAM hint, so that a key trailkey made is never missed
/// (and a second one made) because its role lost a permission.
#[test]
fn a_key_read_denied_by_iam_stops_the_search() {
    let fake = empty_cloud();
    add_unreadable_key(&fake, "aaaaaaaa-0000-4000-8000-000000000003");
    fake.state.borrow_mut().unreadable.clear();
    fake.fail_next(
        "ListResourceTags",
        "AccessDeniedException",
        "User: arn:aws:sts::111111111111:assumed-role/AWSControlTowerExecution/trailkey is not authorized to perform: kms:ListResourceTags on resource: k because no identity-based policy allows the kms:ListResourceTags action",
    );
    let text = apply_error(&fake, &desired()).render();
    assert!(text.contains("kms:ListResourceTags"), "{text}");
    assert!(
        text.contains("policies/iam-security-tooling-role.json"),
        "{text}"
    );
    assert!(fake.writes().is_empty());
}

/// A denial that does not blame the key's policy (no message at all, or the
/// caller's own IAM or VPC endpoint policy) may hide trailkey's own key:
/// the search stops rather than skip it, and no second key is made.
#[test]
fn a_denial_that_does_not_blame_the_key_policy_never_makes_a_second_key() {
    for message in [
        "",
        "User: arn:aws:sts::111111111111:assumed-role/AWSControlTowerExecution/trailkey is not authorized to perform: kms:ListResourceTags on resource: k because no VPC endpoint policy allows the kms:ListResourceTags action",
        "User: arn:aws:sts::111111111111:assumed-role/AWSControlTowerExecution/trailkey is not authorized to perform: kms:ListResourceTags on resource: k with an explicit deny in a VPC endpoint policy",
    ] {
        let fake = empty_cloud();
        apply_now(&fake, &desired());
        fake.state.borrow_mut().aliases.clear();
        fake.clear_calls();
        fake.fail_next("ListResourceTags", "AccessDeniedException", message);
        let e = apply_error(&fake, &desired());
        assert_eq!(e.aws_code(), Some("AccessDeniedException"), "{message:?}");
        assert!(fake.writes().is_empty(), "{message:?}: {:?}", fake.writes());
        assert_eq!(fake.state.borrow().keys.len(), 1, "{message:?}");
    }
}

/// trailkey's own key, whose policy someone changed to shut its role out,
/// is the trail's key: it is not skipped (which would make a second key and
/// move the trail), the run stops and names the key policy.
#[test]
fn the_trails_own_key_shut_out_by_its_policy_stops_the_run() {
    let fake = empty_cloud();
    apply_now(&fake, &desired());
    let id = only_key(&fake).info.key_id;
    {
        let mut s = fake.state.borrow_mut();
        s.aliases.clear();
        s.unreadable.push(id);
    }
    fake.clear_calls();
    let text = apply_error(&fake, &desired()).render();
    assert!(
        text.contains("the tags of the trail's key (kms:ListResourceTags)"),
        "{text}"
    );
    assert!(
        text.contains("trailkey's IAM policies are not the cause"),
        "{text}"
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    assert_eq!(fake.state.borrow().keys.len(), 1);
}

/// A key skipped by the search is named in the plan's warnings when the
/// plan creates a key: if it was trailkey's own, there would be two.
#[test]
fn a_plan_that_creates_a_key_beside_unreadable_ones_names_them() {
    let fake = empty_cloud();
    let theirs = add_unreadable_key(&fake, "aaaaaaaa-0000-4000-8000-000000000004");
    let planned = plan_now(&fake, &desired());
    let warned = planned.findings.iter().any(|f| {
        f.level == crate::plan::Level::Warning
            && f.message.contains(&theirs)
            && f.message.contains("or there will be two keys")
    });
    assert!(warned, "{:#?}", planned.findings);
}
