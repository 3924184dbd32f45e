//! The KMS blind spot: event selectors that leave KMS's management write
//! events out, in each way CloudTrail allows, and what trailkey cannot
//! decide.

use super::*;
use crate::aws::{AdvancedEventSelector, EventSelector, EventSelectors, FieldSelector};
use crate::plan::blind_spot::{KMS_SOURCE, kms_blind_spot};

fn basic(rw: &str, management: bool, exclude: &[&str]) -> EventSelector {
    EventSelector {
        read_write_type: rw.to_owned(),
        include_management_events: management,
        exclude_management_event_sources: exclude.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn field(name: &str, op: &str, values: &[&str]) -> FieldSelector {
    let values: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
    let mut f = FieldSelector {
        field: name.to_owned(),
        ..FieldSelector::default()
    };
    match op {
        "Equals" => f.equals = values,
        "StartsWith" => f.starts_with = values,
        "EndsWith" => f.ends_with = values,
        "NotEquals" => f.not_equals = values,
        "NotStartsWith" => f.not_starts_with = values,
        "NotEndsWith" => f.not_ends_with = values,
        other => panic!("{other}"),
    }
    f
}

fn advanced(fields: Vec<FieldSelector>) -> AdvancedEventSelector {
    AdvancedEventSelector {
        name: Some("selector".to_owned()),
        field_selectors: fields,
    }
}

fn finding(selectors: EventSelectors) -> Option<Finding> {
    let (_, mut observed) = converged();
    observed.trail.has_custom_event_selectors = true;
    observed.event_selectors = Some(Ok(selectors));
    kms_blind_spot(&observed)
}

fn of_basic(list: Vec<EventSelector>) -> Option<String> {
    finding(EventSelectors {
        basic: list,
        advanced: Vec::new(),
    })
    .map(|f| f.message)
}

fn of_advanced(list: Vec<AdvancedEventSelector>) -> Option<String> {
    finding(EventSelectors {
        basic: Vec::new(),
        advanced: list,
    })
    .map(|f| f.message)
}

#[test]
fn basic_selectors_that_record_kms_writes_are_no_finding() {
    for selectors in [
        vec![basic("All", true, &[])],
        vec![basic("WriteOnly", true, &[])],
        vec![basic("All", true, &["rdsdata.amazonaws.com"])],
        // One selector that records them is enough.
        vec![basic("ReadOnly", true, &[]), basic("WriteOnly", true, &[])],
        vec![basic("All", true, &[KMS_SOURCE]), basic("All", true, &[])],
    ] {
        assert_eq!(of_basic(selectors.clone()), None, "{selectors:?}");
    }
}

#[test]
fn basic_selectors_that_leave_kms_out_say_how_in_each_of_the_three_ways() {
    let excluded = of_basic(vec![basic("All", true, &[KMS_SOURCE])]).unwrap();
    assert!(
        excluded.contains("ExcludeManagementEventSources names kms.amazonaws.com"),
        "{excluded}"
    );
    let none = of_basic(vec![basic("All", false, &[])]).unwrap();
    assert!(none.contains("records no management events"), "{none}");
    let read_only = of_basic(vec![basic("ReadOnly", true, &[])]).unwrap();
    assert!(
        read_only.contains("only read-only management events"),
        "{read_only}"
    );
    for message in [&excluded, &none, &read_only] {
        assert!(message.starts_with(&format!("trail {}", TRAIL_ARN)));
        assert!(
            message.contains("DisableKey, ScheduleKeyDeletion and PutKeyPolicy"),
            "{message}"
        );
        assert!(
            message.contains("Lambda function may get no event"),
            "{message}"
        );
        assert!(message.contains(KEY_ARN), "{message}");
    }
    // A read-only selector and one that excludes KMS: still blind.
    let mixed = of_basic(vec![
        basic("ReadOnly", true, &[]),
        basic("WriteOnly", true, &[KMS_SOURCE]),
    ])
    .unwrap();
    assert!(mixed.contains("ExcludeManagementEventSources"), "{mixed}");
    // No selector at all records nothing.
    assert!(
        of_basic(Vec::new())
            .unwrap()
            .contains("no management events")
    );
}

#[test]
fn advanced_selectors_on_event_source_are_evaluated() {
    let management = || field("eventCategory", "Equals", &["Management"]);
    // All management events, or all but RDS Data: recorded.
    assert_eq!(of_advanced(vec![advanced(vec![management()])]), None);
    assert_eq!(
        of_advanced(vec![advanced(vec![
            management(),
            field("eventSource", "NotEquals", &["rdsdata.amazonaws.com"])
        ])]),
        None
    );
    // KMS left out by NotEquals: every watched event is missed.
    let out = of_advanced(vec![advanced(vec![
        management(),
        field("eventSource", "NotEquals", &[KMS_SOURCE]),
    ])])
    .unwrap();
    assert!(out.contains("match no kms.amazonaws.com management event DisableKey, ScheduleKeyDeletion and PutKeyPolicy"), "{out}");
    // Only read-only ones, or only data events.
    for fields in [
        vec![management(), field("readOnly", "Equals", &["true"])],
        vec![field("eventCategory", "Equals", &["Data"])],
        vec![management(), field("eventSource", "StartsWith", &["s3."])],
        vec![
            management(),
            field("eventSource", "NotStartsWith", &["kms"]),
        ],
        vec![
            management(),
            field("eventSource", "NotEndsWith", &["amazonaws.com"]),
        ],
    ] {
        assert!(
            of_advanced(vec![advanced(fields.clone())]).is_some(),
            "{fields:?}"
        );
    }
    // Only some of the watched events.
    let some = of_advanced(vec![advanced(vec![
        management(),
        field("eventName", "Equals", &["DisableKey"]),
    ])])
    .unwrap();
    assert!(
        some.contains("event ScheduleKeyDeletion and PutKeyPolicy"),
        "{some}"
    );
    assert!(!some.contains("DisableKey,"), "{some}");
    // A data selector beside a management one changes nothing.
    assert_eq!(
        of_advanced(vec![
            advanced(vec![field("eventCategory", "Equals", &["Data"])]),
            advanced(vec![management()]),
        ]),
        None
    );
}

#[test]
fn a_field_trailkey_cannot_evaluate_makes_it_a_may() {
    let out = of_advanced(vec![advanced(vec![
        field("eventCategory", "Equals", &["Management"]),
        field(
            "userIdentity.arn",
            "NotStartsWith",
            &["arn:aws:sts::1:assumed-role/X"],
        ),
    ])])
    .unwrap();
    assert!(
        out.contains("may leave out DisableKey, ScheduleKeyDeletion and PutKeyPolicy"),
        "{out}"
    );
    assert!(out.contains("filter on userIdentity.arn"), "{out}");
    // But a selector that surely records them wins.
    assert_eq!(
        of_advanced(vec![
            advanced(vec![field("userIdentity.arn", "Equals", &["x"])]),
            advanced(vec![field("eventCategory", "Equals", &["Management"])]),
        ]),
        None
    );
}

#[test]
fn selectors_that_could_not_be_read_are_a_warning_naming_the_permission() {
    let (_, mut observed) = converged();
    observed.event_selectors = Some(Err("AccessDeniedException: no".to_owned()));
    let f = kms_blind_spot(&observed).unwrap();
    assert_eq!(f.level, Level::Warning);
    assert!(
        f.message.contains("cloudtrail:GetEventSelectors"),
        "{}",
        f.message
    );
    observed.event_selectors = None;
    assert_eq!(
        kms_blind_spot(&observed),
        None,
        "default selectors record everything"
    );
}

#[test]
fn a_read_write_type_trailkey_does_not_know_is_named_not_taken_for_an_exclusion() {
    let out = of_basic(vec![basic("SomethingNew", true, &[])]).unwrap();
    assert!(
        out.contains("ReadWriteType trailkey does not know (SomethingNew)"),
        "{out}"
    );
    assert!(!out.contains("ExcludeManagementEventSources"), "{out}");
}

#[test]
fn the_fields_named_are_those_of_the_selectors_that_may_match() {
    let out = of_advanced(vec![
        advanced(vec![
            field("eventCategory", "Equals", &["Data"]),
            field("resources.type", "Equals", &["AWS::S3::Object"]),
        ]),
        advanced(vec![
            field("eventCategory", "Equals", &["Management"]),
            field(
                "userIdentity.arn",
                "NotStartsWith",
                &["arn:aws:sts::1:assumed-role/X"],
            ),
        ]),
    ])
    .unwrap();
    assert!(out.contains("filter on userIdentity.arn,"), "{out}");
    assert!(!out.contains("resources.type"), "{out}");
}
