use std::path::Path;

use serde_json::json;

use super::*;

const KEY: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn desired() -> Desired {
    crate::config::parse(
        Path::new("t.toml"),
        b"[accounts]\nsecurity_tooling = \"111111111111\"\nlog_archive = \"222222222222\"\n[trail]\nname = \"org-trail\"\n",
    )
    .unwrap()
}

fn api(source: &str, name: &str, params: Value, account: &str) -> Value {
    json!({
        "id": "e-1", "source": format!("aws.{source}"), "detail-type": "AWS API Call via CloudTrail",
        "account": account, "region": "us-east-1",
        "detail": {"eventSource": format!("{source}.amazonaws.com"), "eventName": name,
                   "awsRegion": "us-east-1", "recipientAccountId": account,
                   "eventID": "ct-1", "requestParameters": params}
    })
}

fn verdict(event: &Value, known: Option<&str>) -> Verdict {
    classify(event, &desired(), known, None).unwrap().1
}

#[test]
fn trail_calls_on_the_configured_trail_are_handled_others_ignored() {
    for name in CLOUDTRAIL_CALLS {
        for trail in [
            "org-trail",
            "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail",
        ] {
            let e = api("cloudtrail", name, json!({"name": trail}), "333333333333");
            assert_eq!(verdict(&e, None), Verdict::Handle, "{name} {trail}");
        }
        let other = api(
            "cloudtrail",
            name,
            json!({"name": "other-trail"}),
            "333333333333",
        );
        assert!(matches!(verdict(&other, None), Verdict::Ignore(_)));
    }
    let create = api(
        "cloudtrail",
        "CreateTrail",
        json!({"name": "org-trail"}),
        "333333333333",
    );
    assert!(matches!(verdict(&create, None), Verdict::Ignore(_)));
}

/// A trail event is matched by ARN: account, Region and name. A
/// same-named trail in another account or Region is not the trail.
#[test]
fn trail_calls_match_the_trail_by_arn() {
    let ours = "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail";
    let with_management = crate::config::parse(
        Path::new("t.toml"),
        b"[accounts]\nsecurity_tooling = \"111111111111\"\nlog_archive = \"222222222222\"\nmanagement = \"333333333333\"\n[trail]\nname = \"org-trail\"\n",
    )
    .unwrap();
    let delete = |account: &str, region: &str, name: &str| {
        let mut e = api("cloudtrail", "DeleteTrail", json!({"name": name}), account);
        e["detail"]["awsRegion"] = json!(region);
        e["region"] = json!(region);
        e
    };
    let judge = |desired: &Desired, e: &Value, known: Option<&str>| {
        classify(e, desired, None, known).unwrap().1
    };
    for (desired, known) in [(&with_management, None), (&desired(), Some(ours))] {
        // The trail, by name in its account and Region, or by ARN.
        for e in [
            delete("333333333333", "us-east-1", "org-trail"),
            delete("999999999999", "eu-west-1", ours),
        ] {
            assert_eq!(judge(desired, &e, known), Verdict::Handle, "{e}");
        }
        // A same-named trail of another account, or Region, or another ARN.
        for e in [
            delete("999999999999", "us-east-1", "org-trail"),
            delete("333333333333", "eu-west-1", "org-trail"),
            delete(
                "333333333333",
                "us-east-1",
                "arn:aws:cloudtrail:us-east-1:999999999999:trail/org-trail",
            ),
        ] {
            assert!(
                matches!(judge(desired, &e, known), Verdict::Ignore(_)),
                "{e}"
            );
        }
    }
    // Before the first plan, without accounts.management: the name and
    // the Region decide, and the plan learns the rest.
    let e = delete("999999999999", "us-east-1", "org-trail");
    assert_eq!(judge(&desired(), &e, None), Verdict::Handle);
    let e = delete("333333333333", "eu-west-1", "org-trail");
    assert!(matches!(judge(&desired(), &e, None), Verdict::Ignore(_)));
}

#[test]
fn key_calls_in_security_tooling_are_handled_then_only_for_trailkeys_key() {
    for name in KEY_CALLS {
        let ours = api("kms", name, json!({"keyId": KEY}), "111111111111");
        assert_eq!(verdict(&ours, None), Verdict::IfTrailkeys(KEY.into()));
        assert_eq!(verdict(&ours, Some(KEY)), Verdict::Handle, "{name}");
        let by_id = api(
            "kms",
            name,
            json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}),
            "111111111111",
        );
        assert_eq!(verdict(&by_id, Some(KEY)), Verdict::Handle, "{name}");
        let other = api(
            "kms",
            name,
            json!({"keyId": "99999999-0000"}),
            "111111111111",
        );
        assert_eq!(
            verdict(&other, None),
            Verdict::IfTrailkeys("99999999-0000".into()),
            "trailkey's key not known yet: AWS reads tell"
        );
        assert!(matches!(verdict(&other, Some(KEY)), Verdict::Ignore(_)));
        // The key named only in `resources`, as CloudTrail records it.
        let mut in_resources = api("kms", name, json!({}), "111111111111");
        in_resources["detail"]["resources"] =
            json!([{"accountId": "111111111111", "type": "AWS::KMS::Key", "ARN": KEY}]);
        assert_eq!(
            verdict(&in_resources, None),
            Verdict::IfTrailkeys(KEY.into())
        );
        assert_eq!(verdict(&in_resources, Some(KEY)), Verdict::Handle);
        let nameless = api("kms", name, json!({}), "111111111111");
        assert_eq!(
            verdict(&nameless, None),
            Verdict::Handle,
            "plan to find out"
        );
        let elsewhere = api("kms", name, json!({"keyId": KEY}), "444455556666");
        assert!(matches!(verdict(&elsewhere, None), Verdict::Ignore(_)));
    }
    let encrypt = api("kms", "Encrypt", json!({"keyId": KEY}), "111111111111");
    assert!(matches!(verdict(&encrypt, None), Verdict::Ignore(_)));
}

#[test]
fn alias_calls_are_handled_only_for_the_configured_alias() {
    for name in ALIAS_CALLS {
        let ours = api(
            "kms",
            name,
            json!({"aliasName": "alias/cloudtrail-org-key"}),
            "111111111111",
        );
        assert_eq!(verdict(&ours, Some(KEY)), Verdict::Handle);
        let other = api(
            "kms",
            name,
            json!({"aliasName": "alias/app"}),
            "111111111111",
        );
        assert!(matches!(verdict(&other, None), Verdict::Ignore(_)));
    }
}

#[test]
fn schedules_and_lifecycle_events_are_handled_and_the_rest_ignored() {
    let schedule = json!({"id": "s-1", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let (info, v) = classify(&schedule, &desired(), None, None).unwrap();
    assert_eq!(v, Verdict::Handle);
    assert_eq!(info.id.as_deref(), Some("s-1"));
    for name in LIFECYCLE_EVENTS {
        let e = json!({"id": "c-1", "source": "aws.controltower",
            "detail-type": "AWS Service Event via CloudTrail", "detail": {"eventName": name}});
        assert_eq!(verdict(&e, None), Verdict::Handle, "{name}");
    }
    let other_ct = json!({"source": "aws.controltower",
        "detail-type": "AWS Service Event via CloudTrail", "detail": {"eventName": "EnableGuardrail"}});
    assert!(matches!(verdict(&other_ct, None), Verdict::Ignore(_)));
    let s3 = json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    assert!(matches!(verdict(&s3, None), Verdict::Ignore(_)));
}

/// EventBridge envelopes whose fields have the wrong types: judged
/// without a panic, and never handled as an API call they do not name.
#[test]
fn fields_of_the_wrong_type_are_judged_without_a_panic() {
    let envelope = |detail: Value, resources: Value| {
        json!({"id": 7, "source": "aws.kms", "detail-type": "AWS API Call via CloudTrail",
               "account": ["111111111111"], "region": {"r": 1},
               "resources": resources, "detail": detail})
    };
    let details = [
        json!("a string"),
        json!(42),
        json!([{"eventName": "DisableKey"}]),
        json!({"eventName": 42, "eventSource": "kms.amazonaws.com"}),
        json!({"eventName": "DisableKey", "eventSource": ["kms.amazonaws.com"]}),
        json!({"eventName": "DisableKey", "eventSource": "kms.amazonaws.com",
               "recipientAccountId": 111111111111_u64, "awsRegion": null,
               "requestParameters": [1, 2]}),
        json!({"eventName": "DisableKey", "eventSource": "kms.amazonaws.com",
               "recipientAccountId": "111111111111", "awsRegion": "us-east-1",
               "requestParameters": {"keyId": {"nested": true}},
               "resources": "arn:aws:kms:us-east-1:111111111111:key/x"}),
        json!({"eventName": "UpdateTrail", "eventSource": "cloudtrail.amazonaws.com",
               "requestParameters": {"name": ["org-trail"]}}),
    ];
    let resources = [
        json!(null),
        json!("arn:aws:kms:us-east-1:111111111111:key/x"),
        json!([1, null, {"ARN": 5}, {"arn": "x"}, [KEY]]),
    ];
    for detail in &details {
        for res in &resources {
            let event = envelope(detail.clone(), res.clone());
            for known in [None, Some(KEY)] {
                let (info, verdict) = classify(&event, &desired(), known, None).unwrap();
                assert_eq!(info.id, None, "a number is not an ID");
                if verdict == Verdict::Handle || matches!(verdict, Verdict::IfTrailkeys(_)) {
                    // Only a well-formed KMS call in Security Tooling
                    // that names no key (or an unknown one) gets here.
                    assert_eq!(detail["recipientAccountId"], "111111111111", "{event}");
                    assert_eq!(detail["eventSource"], "kms.amazonaws.com", "{event}");
                }
            }
        }
    }
}

#[test]
fn an_sqs_batch_is_read_record_by_record() {
    let event = json!({"id": "s-1", "source": "aws.events", "detail-type": "Scheduled Event"});
    let batch = json!({"Records": [
        {"messageId": "m-1", "eventSource": "aws:sqs", "body": event.to_string()},
        {"messageId": "m-2", "eventSource": "aws:sqs", "body": "not json {"},
        {"messageId": "m-3", "eventSource": "aws:s3", "body": event.to_string()},
        {"messageId": "m-4", "eventSource": "aws:sqs", "body": 42},
        {"messageId": "m-5", "body": "[1, 2]"},
    ]});
    let records = sqs_batch(&batch).unwrap().unwrap();
    let ids: Vec<&str> = records.iter().map(|r| r.message_id).collect();
    assert_eq!(ids, ["m-1", "m-2", "m-3", "m-4", "m-5"]);
    assert_eq!(records[0].event, Ok(event));
    assert!(records[1].event.as_ref().unwrap_err().contains("not JSON"));
    assert!(records[2].event.as_ref().unwrap_err().contains("aws:s3"));
    assert!(
        records[3]
            .event
            .as_ref()
            .unwrap_err()
            .contains("no \"body\"")
    );
    // JSON, but not an event: classify says so.
    let not_an_event = records[4].event.as_ref().unwrap();
    assert!(classify(not_an_event, &desired(), None, None).is_err());

    assert_eq!(sqs_batch(&json!({"source": "aws.events"})), None);
    assert_eq!(sqs_batch(&json!([1])), None);
    assert_eq!(sqs_batch(&json!({"Records": []})), Some(Ok(Vec::new())));
    for bad in [
        json!({"Records": "x"}),
        json!({"Records": [{"body": "{}"}]}),
        json!({"Records": [{"messageId": 7, "body": "{}"}]}),
    ] {
        assert!(sqs_batch(&bad).unwrap().is_err(), "{bad}");
    }
}

#[test]
fn truncated_cuts_at_a_character_boundary() {
    assert_eq!(truncated("abc", 3), "abc");
    assert_eq!(truncated("abcd", 3), "abc…");
    assert_eq!(truncated("ééé", 2), "éé…");
}

#[test]
fn an_event_that_is_not_from_eventbridge_is_an_error() {
    for bad in [
        json!(null),
        json!("text"),
        json!([1, 2]),
        json!({"detail": {}}),
    ] {
        let e = classify(&bad, &desired(), None, None).unwrap_err();
        assert!(e.contains("not an EventBridge event"), "{e}");
    }
}
