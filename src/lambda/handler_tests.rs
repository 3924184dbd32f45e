//! `trailkey lambda` invocations: the function's own code path on the
//! in-memory fake, with the shared fixtures of [`crate::testing`].

use serde_json::{Value, json};

use crate::aws::fake::FakeCloud;
use crate::config::Desired;
use crate::testing::*;

// ---------------------------------------------------------------------------
// `trailkey lambda` invocations: the function's own code path on the fake.

/// The EventBridge event of a KMS call `name` on the key `key_id`.
pub(super) fn kms_event(name: &str, key_id: &str) -> Value {
    json!({
        "id": format!("event-{name}"), "source": "aws.kms",
        "detail-type": "AWS API Call via CloudTrail",
        "account": SECURITY_TOOLING, "region": REGION,
        "detail": {"eventSource": "kms.amazonaws.com", "eventName": name,
                   "awsRegion": REGION, "recipientAccountId": SECURITY_TOOLING,
                   "requestParameters": {"keyId": key_id}}
    })
}

/// The function's name in these tests, the metrics' `FunctionName`.
const FUNCTION_NAME: &str = "trailkey-test";

pub(super) fn schedule_event() -> Value {
    json!({"id": "schedule", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
}

/// A function process in `mode` on `fake`, before its first invocation.
pub(super) fn lambda_function(
    fake: &FakeCloud,
    desired: &Desired,
    mode: crate::lambda::Mode,
) -> crate::lambda::Function<FakeCloud> {
    crate::lambda::Function::new(Ok((desired.clone(), fake.clone(), mode)), FUNCTION_NAME)
}

/// (calls, rounds, response) of one invocation.
pub(super) fn invoke(
    fake: &FakeCloud,
    function: &crate::lambda::Function<FakeCloud>,
    event: Value,
) -> (usize, u128, Value) {
    let mut response = Value::Null;
    let (calls, rounds) = calls_and_rounds(fake, async {
        response = function
            .invoke(event)
            .await
            .unwrap_or_else(|e| panic!("{}: {}", e.error_type, e.error_message));
    });
    (calls, rounds, response)
}

/// Makes the next run fail as Organizations refuses
/// `DescribeOrganization`, warm or cold: a warm run's `DescribeTrails`
/// fails too, which sends it cold, where `DescribeOrganization` fails.
pub(super) fn organizations_refuses(fake: &FakeCloud) {
    fake.fail_next("DescribeTrails", "AccessDeniedException", "not allowed");
    fake.fail_next(
        "DescribeOrganization",
        "AccessDeniedException",
        "not allowed",
    );
}

/// The calls of a warm invocation on a converged setup, in one round.
pub(super) const WARM_NO_OP: [&str; 7] = [
    "DescribeKey",
    "DescribeTrails",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetTrailStatus",
    "ListResourceTags",
    "ListTags",
];

/// The first invocation is the cold no-op plan (10 calls in 2 rounds);
/// each one after it reads the trail, its status and tags, the alias and
/// the known key's policy, rotation and tags at once, from what the first
/// one learned: 7 calls in 1 round, no `GetCallerIdentity`,
/// `DescribeOrganization`, `AssumeRole` or `HeadBucket`.
#[test]
fn a_warm_lambda_invocation_on_a_converged_setup_is_seven_calls_in_one_round() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Apply);
    let (calls, rounds, cold) = invoke(&fake, &function, schedule_event());
    eprintln!("cold lambda invocation: {calls} calls in {rounds} rounds");
    assert_eq!((calls, rounds), (10, 2), "cold: {:?}", fake.calls());
    assert_eq!(cold["applied"], false, "{cold:#}");
    for n in 0..3 {
        let (calls, rounds, warm) = invoke(&fake, &function, schedule_event());
        if n == 0 {
            eprintln!("warm lambda invocation: {calls} calls in {rounds} rounds");
        }
        assert_eq!((calls, rounds), (7, 1), "warm: {:?}", fake.calls());
        assert_eq!(sorted(fake.calls()), WARM_NO_OP);
        assert!(fake.writes().is_empty());
        assert_eq!(
            (warm["handled"].clone(), warm["applied"].clone()),
            (json!(true), json!(false)),
            "{warm:#}"
        );
    }
}

/// Adds an untagged key of another team to the Security Tooling account of
/// `fake`; returns its ID.
pub(super) fn add_foreign_key(fake: &FakeCloud, id: &str) -> String {
    let mut s = fake.state.borrow_mut();
    let mut other = s.keys[0].clone();
    other.info.key_id = id.to_owned();
    other.info.arn = format!("arn:aws:kms:{REGION}:{SECURITY_TOOLING}:key/{id}");
    other.tags.clear();
    s.keys.push(other);
    id.to_owned()
}

/// From Security Tooling as CloudTrail's delegated administrator, with only
/// the trail's name (no `accounts.management` to build its ARN from): the
/// trail is found among those `DescribeTrails` lists, never asked for by
/// name, and no role is assumed.
#[test]
fn from_security_tooling_a_key_event_before_the_first_plan_reads_the_trail_from_the_list() {
    let desired = desired();
    let fake = empty_cloud().as_delegated_administrator();
    apply_now(&fake, &desired);
    let ours = only_key(&fake);
    let foreign = add_foreign_key(&fake, "0000aaaa-0000-4000-8000-00000000f00d");
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Apply);
    let (calls, rounds, r) = invoke(&fake, &function, kms_event("DisableKey", &foreign));
    assert_eq!((calls, rounds), (3, 2), "{:?}", fake.calls());
    assert_eq!(
        sorted(fake.calls()),
        ["DescribeKey", "DescribeTrails", "ListResourceTags"]
    );
    assert_eq!(r["handled"], false, "{r:#}");
    // The trail's own key goes to the plan, which repairs it.
    fake.state.borrow_mut().keys[0].info.state = crate::aws::KeyState::from("Disabled");
    let (_, _, r) = invoke(&fake, &function, kms_event("DisableKey", &ours.info.key_id));
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(fake.writes(), ["EnableKey"]);
    assert_eq!(count(&fake, "AssumeRole"), 0);
}

#[test]
fn before_its_first_plan_the_function_tells_a_key_event_by_the_trail_the_alias_and_the_tags() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let ours = only_key(&fake);
    let foreign = add_foreign_key(&fake, "0000aaaa-0000-4000-8000-00000000f00d");
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Apply);

    // A call on another key: the trail (and AssumeRole), then the key's
    // tags and the alias's key; none names it, so the event is ignored.
    for _ in 0..2 {
        let (calls, rounds, r) = invoke(&fake, &function, kms_event("DisableKey", &foreign));
        assert_eq!((calls, rounds), (4, 2), "{:?}", fake.calls());
        assert_eq!(
            sorted(fake.calls()),
            ["AssumeRole", "DescribeKey", "GetTrail", "ListResourceTags"]
        );
        assert_eq!(r["handled"], false, "{r:#}");
        assert!(
            r["reason"].as_str().unwrap().contains("another key"),
            "{r:#}"
        );
    }

    // trailkey's key disabled: it is the trail's key, so the plan runs at
    // once and repairs, and the process now knows the key.
    fake.state.borrow_mut().keys[0].info.state = crate::aws::KeyState::from("Disabled");
    let (_, _, r) = invoke(&fake, &function, kms_event("DisableKey", &ours.info.key_id));
    assert_eq!(
        sorted(fake.calls()[..2].to_vec()),
        ["AssumeRole", "GetTrail"]
    );
    assert_eq!(
        (r["handled"].clone(), r["applied"].clone()),
        (json!(true), json!(true)),
        "{r:#}"
    );
    assert_eq!(fake.writes(), ["EnableKey"]);

    // From now on a call on another key costs nothing, and one on
    // trailkey's key, by ID or ARN, goes straight to the plan, warm.
    let (calls, _, r) = invoke(&fake, &function, kms_event("PutKeyPolicy", &foreign));
    assert_eq!(calls, 0, "{:?}", fake.calls());
    assert_eq!(r["handled"], false);
    let (calls, rounds, r) = invoke(&fake, &function, kms_event("PutKeyPolicy", &ours.info.arn));
    assert_eq!((calls, rounds), (7, 1), "{:?}", fake.calls());
    assert_eq!(r["applied"], false, "{r:#}");
}

#[test]
fn a_plan_that_finds_no_key_makes_the_function_forget_the_one_it_knew() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let ours = only_key(&fake).info.key_id;
    let foreign = add_foreign_key(&fake, "0000aaaa-0000-4000-8000-00000000f00d");
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Plan);
    invoke(&fake, &function, schedule_event());
    let (calls, _, _) = invoke(&fake, &function, kms_event("DisableKey", &foreign));
    assert_eq!(calls, 0, "the key is known");
    // trailkey's key and alias gone (deleted elsewhere), the trail on SSE-S3.
    {
        let mut s = fake.state.borrow_mut();
        s.keys.retain(|k| k.info.key_id != ours);
        s.aliases.clear();
        s.trails.get_mut(TRAIL_ARN).unwrap().kms_key_id = None;
    }
    let (_, _, r) = invoke(&fake, &function, schedule_event());
    assert!(r["plan"]["target"]["key_arn"].is_null(), "no key: {r:#}");
    // Nothing known now: the next key call is settled by reading AWS.
    let (calls, rounds, r) = invoke(&fake, &function, kms_event("DisableKey", &foreign));
    assert_eq!((calls, rounds), (4, 2), "{:?}", fake.calls());
    assert_eq!(r["handled"], false, "{r:#}");
}

#[test]
fn a_failed_run_is_an_error_naming_the_event() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Apply);
    fake.fail_next(
        "DescribeOrganization",
        "AccessDeniedException",
        "not allowed",
    );
    let mut result = None;
    block_on(async {
        result = Some(function.invoke(kms_event("DisableKey", "any")).await);
    });
    let e = result.unwrap().expect_err("the plan failed");
    assert_eq!(e.error_type, "trailkey.AwsError");
    assert!(
        e.error_message
            .contains("organizations:DescribeOrganization"),
        "{e:?}"
    );
    assert!(
        e.error_message
            .ends_with("(DisableKey event event-DisableKey)"),
        "{e:?}"
    );
}

#[test]
fn an_apply_that_stops_part_way_names_the_steps_it_started() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    // The trail back on SSE-S3 and rotation off: two steps; the trail's fails.
    {
        let mut s = fake.state.borrow_mut();
        s.trails.get_mut(TRAIL_ARN).unwrap().kms_key_id = None;
        s.keys[0].rotation = false;
    }
    fake.fail_next("UpdateTrail", "AccessDeniedException", "not allowed");
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Apply);
    let mut result = None;
    block_on(async {
        result = Some(function.invoke(schedule_event()).await);
    });
    let e = result.unwrap().expect_err("the apply failed");
    assert_eq!(e.error_type, "trailkey.AwsError", "{e:?}");
    assert!(
        e.error_message
            .contains("(Scheduled Event event schedule); apply steps started before it: "),
        "{e:?}"
    );
    for step in [
        "EnableKeyRotation kms_key_rotation",
        "UpdateTrail trail_encryption",
    ] {
        assert!(e.error_message.contains(step), "{step}: {e:?}");
    }
    let s = fake.state.borrow();
    assert!(s.keys[0].rotation, "what was done stays done");
    assert_eq!(s.trails[TRAIL_ARN].kms_key_id, None);
}

/// Before its first plan, the function is never talked out of a key that
/// may be trailkey's: each hostile or broken case runs the plan.
#[test]
fn a_key_that_may_be_trailkeys_is_planned_for_not_ignored() {
    type Setup = fn(&FakeCloud, &str);
    let cases: [(&str, Setup); 6] = [
        ("trailkey's key, its tags removed", |f, _| {
            f.state.borrow_mut().keys[0].tags.clear();
        }),
        ("a second key tagged ManagedBy = trailkey", |f, id| {
            let mut s = f.state.borrow_mut();
            let tags = s.keys[0].tags.clone();
            s.keys
                .iter_mut()
                .find(|k| k.info.key_id == id)
                .unwrap()
                .tags = tags;
        }),
        ("the key the alias names, untagged", |f, id| {
            f.state
                .borrow_mut()
                .aliases
                .insert(ALIAS.to_owned(), id.to_owned());
        }),
        ("its tags unreadable", |f, _| {
            f.fail_next("ListResourceTags", "AccessDeniedException", "not allowed");
        }),
        ("the trail unreadable", |f, _| {
            f.fail_next("GetTrail", "AccessDeniedException", "not allowed");
        }),
        ("the role refused", |f, _| {
            f.fail_next("AssumeRole", "AccessDenied", "not allowed");
        }),
    ];
    let desired = desired();
    for (name, setup) in cases {
        let fake = empty_cloud();
        apply_now(&fake, &desired);
        let ours = only_key(&fake).info.key_id;
        let other = add_foreign_key(&fake, "0000aaaa-0000-4000-8000-00000000f00d");
        let key = if name.starts_with("trailkey's") {
            ours
        } else {
            other
        };
        setup(&fake, &key);
        let function = lambda_function(&fake, &desired, crate::lambda::Mode::Plan);
        let mut response = None;
        block_on(async {
            response = Some(function.invoke(kms_event("DisableKey", &key)).await);
        });
        match response.unwrap() {
            Ok(r) => assert_eq!(r["handled"], true, "{name}: {r:#}"),
            // The plan ran and reported the refusal.
            Err(e) => assert_eq!(e.error_type, "trailkey.AwsError", "{name}: {e:?}"),
        }
        assert!(
            fake.calls().contains(&"DescribeOrganization"),
            "{name}: the plan ran: {:?}",
            fake.calls()
        );
    }
}

/// An SQS batch as Lambda's event source mapping delivers it: one record
/// per (messageId, body).
fn sqs_batch(records: &[(String, String)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({"messageId": id, "receiptHandle": format!("handle-{id}"), "body": body,
                   "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                   "eventSource": "aws:sqs", "awsRegion": REGION,
                   "eventSourceARN": format!("arn:aws:sqs:{REGION}:{MANAGEMENT}:trailkey-events")})
        })
        .collect();
    json!({"Records": records})
}

/// `n` records of `event`, `prefix-0` to `prefix-{n-1}`.
fn records_of(prefix: &str, n: usize, event: &Value) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("{prefix}-{i}"), event.to_string()))
        .collect()
}

/// The messageIds of a partial batch response.
fn failed_ids(response: &Value) -> Vec<&str> {
    response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a partial batch response: {response:#}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect()
}

/// A flood of relevant events coalesced by the queue costs one plan: 200
/// records, the no-op plan's 10 calls in 2 rounds, as one event does (7 in
/// 1 round once the process is warm). Records that are not events are
/// reported for SQS to deliver again.
#[test]
fn an_sqs_batch_of_200_relevant_events_runs_one_no_op_plan() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Apply);
    let mut records = records_of("schedule", 100, &schedule_event());
    let trail_call = json!({"id": "t-1", "source": "aws.cloudtrail",
        "detail-type": "AWS API Call via CloudTrail", "account": MANAGEMENT, "region": REGION,
        "detail": {"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
                   "awsRegion": REGION, "recipientAccountId": MANAGEMENT,
                   "requestParameters": {"name": "org-trail"}}});
    records.extend(records_of("stop", 100, &trail_call));
    let (calls, rounds, r) = invoke(&fake, &function, sqs_batch(&records));
    eprintln!("an SQS batch of 200 relevant events: {calls} calls in {rounds} rounds");
    assert_eq!((calls, rounds), (10, 2), "{:?}", fake.calls());
    assert_eq!(r, json!({"batchItemFailures": []}));
    assert!(fake.writes().is_empty());

    // Mixed: a body that is not JSON, JSON that is not an event, an
    // ignored event, and relevant ones; still one plan.
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let mut mixed = records_of("schedule", 3, &schedule_event());
    mixed.push(("not-json".into(), "not json {".into()));
    mixed.push(("not-an-event".into(), json!({"hello": "world"}).to_string()));
    mixed.extend(records_of("s3", 2, &s3));
    let (calls, rounds, r) = invoke(&fake, &function, sqs_batch(&mixed));
    assert_eq!((calls, rounds), (7, 1), "{:?}", fake.calls());
    assert_eq!(failed_ids(&r), ["not-json", "not-an-event"]);
}

/// The batch's one plan fails: every relevant record is reported, so SQS
/// delivers it again, with the undecodable ones; the ignored records are
/// done.
#[test]
fn when_a_batchs_plan_fails_its_relevant_records_are_reported_and_the_ignored_are_not() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Apply);
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let mut records = records_of("s3", 2, &s3);
    records.extend(records_of("schedule", 2, &schedule_event()));
    records.push(("not-json".into(), "{".into()));
    organizations_refuses(&fake);
    let (_, _, r) = invoke(&fake, &function, sqs_batch(&records));
    assert_eq!(failed_ids(&r), ["schedule-0", "schedule-1", "not-json"]);
    assert!(fake.writes().is_empty());
}

/// A batch of ignored records makes no AWS call; key events about keys the
/// process does not know cost one key's reads (4 calls) when they all name
/// the same key, and the one plan when they name several.
#[test]
fn an_sqs_batch_without_relevant_events_costs_no_plan() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let foreign = add_foreign_key(&fake, "0000aaaa-0000-4000-8000-00000000f00d");
    let other = add_foreign_key(&fake, "0000bbbb-0000-4000-8000-00000000f00d");
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Apply);
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let (calls, _, r) = invoke(&fake, &function, sqs_batch(&records_of("s3", 500, &s3)));
    assert_eq!(calls, 0, "{:?}", fake.calls());
    assert_eq!(r, json!({"batchItemFailures": []}));
    let (calls, _, _) = invoke(&fake, &function, sqs_batch(&[]));
    assert_eq!(calls, 0);

    let same_key = records_of("disable", 300, &kms_event("DisableKey", &foreign));
    let (calls, rounds, r) = invoke(&fake, &function, sqs_batch(&same_key));
    assert_eq!(
        (calls, rounds),
        (4, 2),
        "one key's reads: {:?}",
        fake.calls()
    );
    assert_eq!(r, json!({"batchItemFailures": []}));
    let mut two_keys = same_key.clone();
    two_keys.extend(records_of("other", 300, &kms_event("DisableKey", &other)));
    let (calls, _, _) = invoke(&fake, &function, sqs_batch(&two_keys));
    assert_eq!(calls, 10, "the one plan settles them: {:?}", fake.calls());
    // The plan told the process trailkey's key: foreign keys cost nothing now.
    let (calls, _, _) = invoke(&fake, &function, sqs_batch(&two_keys));
    assert_eq!(calls, 0, "{:?}", fake.calls());
}

/// What the one line of metrics of the invocation just made says:
/// `Outcome`, then `DriftFound`, `DriftRepaired` and `Errors`. Of the lines
/// the invocation logged, exactly one is metrics, the last; it is a line of
/// the embedded metric format as its specification states it
/// (`trailkey_testkit::emf`), each metric once, in the namespace `trailkey`
/// with the function's name as its one dimension, and its handling time a
/// number of milliseconds.
fn metrics_logged() -> (String, [u64; 3]) {
    let lines = crate::lambda::logged();
    let emf: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(
        emf.len(),
        1,
        "one line of metrics per invocation: {lines:#?}"
    );
    assert_eq!(
        lines.last(),
        Some(emf[0]),
        "the metrics come last: {lines:#?}"
    );
    let line = emf[0];
    let metrics = trailkey_testkit::emf::metrics(&line.to_string())
        .unwrap_or_else(|e| panic!("not EMF: {e}"));
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["DriftFound", "DriftRepaired", "Errors", "HandlingTime"],
        "{line}"
    );
    for m in &metrics {
        assert_eq!(m.namespace, "trailkey", "{line}");
        assert_eq!(
            m.dimensions,
            [("FunctionName".to_owned(), FUNCTION_NAME.to_owned())],
            "{line}"
        );
        assert!(m.value >= 0.0 && m.value.is_finite(), "{line}");
    }
    assert_eq!(metrics[3].unit.as_deref(), Some("Milliseconds"));
    let count = |i: usize| {
        assert_eq!(metrics[i].unit.as_deref(), Some("Count"), "{line}");
        assert_eq!(metrics[i].value.fract(), 0.0, "{line}");
        metrics[i].value as u64
    };
    (
        line["Outcome"].as_str().unwrap().to_owned(),
        [count(0), count(1), count(2)],
    )
}

/// `function`'s answer to `payload`, whatever it is, and the metrics it
/// logged ([`metrics_logged`]); the fake's calls are the answer's.
fn answer_measured(
    fake: &FakeCloud,
    function: &crate::lambda::Function<FakeCloud>,
    payload: crate::lambda::Payload,
) -> (
    Result<Value, lambda_runtime::Diagnostic>,
    (String, [u64; 3]),
) {
    crate::lambda::logged();
    fake.clear_calls();
    let mut answer = None;
    block_on(async {
        answer = Some(function.answer(payload).await);
    });
    (answer.unwrap(), metrics_logged())
}

/// (outcome, [DriftFound, DriftRepaired, Errors]) of one line of metrics.
fn said(outcome: &str, counts: [u64; 3]) -> (String, [u64; 3]) {
    (outcome.to_owned(), counts)
}

/// The foreign `Deny` that stops CloudTrail from encrypting: a setup apply
/// does not fix.
fn deny_cloudtrail(fake: &FakeCloud) {
    edit_policy(fake, |s| {
        s.push(json!({"Sid": "DenyCloudTrailEncrypt", "Effect": "Deny",
                      "Principal": {"Service": "cloudtrail.amazonaws.com"},
                      "Action": "kms:GenerateDataKey*", "Resource": "*"}));
    });
}

/// One event at a time: each outcome writes its one line of metrics, with
/// the plan's changes as the drift found, the apply's as repaired, and 1
/// error for every error response, a bad config included.
#[test]
fn every_single_event_writes_one_line_of_metrics_whatever_its_outcome() {
    use crate::lambda::Mode;
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let apply = lambda_function(&fake, &desired, Mode::Apply);
    let plan = lambda_function(&fake, &desired, Mode::Plan);
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});

    let (r, m) = answer_measured(&fake, &apply, Ok(schedule_event()));
    assert_eq!(r.unwrap()["applied"], false);
    assert_eq!(m, said("in_sync", [0, 0, 0]));
    let (r, m) = answer_measured(&fake, &apply, Ok(s3));
    assert_eq!(r.unwrap()["handled"], false);
    assert_eq!(m, said("ignored", [0, 0, 0]));

    // Two drifts: plan mode finds them, apply mode repairs them.
    rotation_off(&fake);
    trail_unencrypted(&fake);
    let (r, m) = answer_measured(&fake, &plan, Ok(schedule_event()));
    assert_eq!(r.unwrap()["plan"]["summary"]["change"], 2);
    assert_eq!(m, said("drift", [2, 0, 0]));
    assert!(fake.writes().is_empty());
    let (r, m) = answer_measured(&fake, &apply, Ok(schedule_event()));
    assert_eq!(r.unwrap()["applied"], true);
    assert_eq!(m, said("repaired", [2, 2, 0]));
    let (_, m) = answer_measured(&fake, &apply, Ok(schedule_event()));
    assert_eq!(m, said("in_sync", [0, 0, 0]));

    // From scratch: every change is made, the key's policy with the key.
    let scratch = empty_cloud();
    let first = lambda_function(&scratch, &desired, Mode::Apply);
    let (r, m) = answer_measured(&scratch, &first, Ok(schedule_event()));
    let summary = &r.unwrap()["plan"]["summary"];
    let changes = ["add", "change", "destroy"]
        .iter()
        .map(|n| summary[n].as_u64().unwrap())
        .sum::<u64>();
    assert!(changes >= 4, "{summary}");
    assert_eq!(m, said("repaired", [changes, changes, 0]));

    // Errors: a failed run, a broken setup (whose response line comes
    // first), bad events.
    organizations_refuses(&fake);
    let (r, m) = answer_measured(&fake, &apply, Ok(schedule_event()));
    assert_eq!(r.unwrap_err().error_type, "trailkey.AwsError");
    assert_eq!(m, said("failed", [0, 0, 1]));
    deny_cloudtrail(&fake);
    let (r, m) = answer_measured(&fake, &plan, Ok(schedule_event()));
    assert_eq!(r.unwrap_err().error_type, "trailkey.BrokenSetup");
    assert_eq!(m, said("broken", [0, 0, 1]));
    for bad in [
        Err("the event is not JSON (3 bytes): expected value".to_owned()),
        Ok(json!({"hello": "world"})),
        Ok(json!({"Records": "x"})),
    ] {
        let (r, m) = answer_measured(&fake, &apply, bad.clone());
        assert_eq!(r.unwrap_err().error_type, "trailkey.BadEvent", "{bad:?}");
        assert_eq!(m, said("bad_event", [0, 0, 1]), "{bad:?}");
    }

    // A bad config: every invocation fails, without a mode to name.
    let broken: crate::lambda::Function<FakeCloud> =
        crate::lambda::Function::new(Err("trailkey.toml: bad".to_owned()), FUNCTION_NAME);
    let (r, m) = answer_measured(&fake, &broken, Ok(schedule_event()));
    assert_eq!(r.unwrap_err().error_type, "trailkey.ConfigError");
    assert_eq!(m, said("config_error", [0, 0, 1]));
    block_on(async {
        let _ = apply.invoke(schedule_event()).await;
    });
    let logged = crate::lambda::logged();
    assert_eq!(logged.last().unwrap()["Mode"], "apply", "{logged:#?}");
    block_on(async {
        let _ = broken.invoke(schedule_event()).await;
    });
    let logged = crate::lambda::logged();
    assert!(logged.last().unwrap().get("Mode").is_none(), "{logged:#?}");
}

/// An SQS batch is one invocation: one line of metrics, with its one
/// plan's drift, and 1 error when it reports any record as failed (its run
/// failed or found the setup broken, or a record is not an event).
#[test]
fn an_sqs_batch_writes_one_line_of_metrics_with_an_error_when_a_record_failed() {
    let desired = desired();
    let fake = empty_cloud();
    apply_now(&fake, &desired);
    let function = lambda_function(&fake, &desired, crate::lambda::Mode::Apply);
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let schedules = records_of("schedule", 3, &schedule_event());

    let (_, m) = answer_measured(&fake, &function, Ok(sqs_batch(&records_of("s3", 50, &s3))));
    assert_eq!(m, said("ignored", [0, 0, 0]));
    let (_, m) = answer_measured(&fake, &function, Ok(sqs_batch(&[])));
    assert_eq!(m, said("ignored", [0, 0, 0]));
    let (_, m) = answer_measured(&fake, &function, Ok(sqs_batch(&schedules)));
    assert_eq!(m, said("in_sync", [0, 0, 0]));
    let mut mixed = schedules.clone();
    mixed.push(("not-json".into(), "not json {".into()));
    let (r, m) = answer_measured(&fake, &function, Ok(sqs_batch(&mixed)));
    assert_eq!(failed_ids(&r.unwrap()), ["not-json"]);
    assert_eq!(m, said("in_sync", [0, 0, 1]));

    key_disabled(&fake);
    let (r, m) = answer_measured(&fake, &function, Ok(sqs_batch(&schedules)));
    assert!(failed_ids(&r.unwrap()).is_empty());
    assert_eq!(m, said("repaired", [1, 1, 0]));
    assert_eq!(fake.writes(), ["EnableKey"]);

    organizations_refuses(&fake);
    let (r, m) = answer_measured(&fake, &function, Ok(sqs_batch(&schedules)));
    assert_eq!(failed_ids(&r.unwrap()).len(), 3);
    assert_eq!(m, said("failed", [0, 0, 1]));
    deny_cloudtrail(&fake);
    let (r, m) = answer_measured(&fake, &function, Ok(sqs_batch(&schedules)));
    assert_eq!(failed_ids(&r.unwrap()).len(), 3);
    assert_eq!(m, said("broken", [0, 0, 1]));
}
