//! The KMS blind spot: a trail whose event selectors leave out KMS's
//! management events records no `DisableKey`, `ScheduleKeyDeletion` or
//! `PutKeyPolicy` on the trail's own key, and the Lambda function then
//! hears of none of them.
//!
//! CloudTrail's rule (`EventSelector`, CloudTrail API Reference): "When an
//! event occurs in your account, CloudTrail evaluates the event selector for
//! all trails. For each trail, if the event matches any event selector, the
//! trail processes and logs the event." A basic selector matches a
//! management write event when it includes management events
//! (`IncludeManagementEvents`, default true), its `ReadWriteType` is `All`
//! or `WriteOnly`, and `ExcludeManagementEventSources` does not name
//! `kms.amazonaws.com`. An advanced selector matches an event when every one
//! of its field selectors does; within one field selector every operator
//! given must hold (`Equals` and the `StartsWith`/`EndsWith` lists match any
//! of their values, the `Not` lists none of theirs).
//!
//! The events are those of [`WATCHED`]: management events
//! (`eventCategory` `Management`), `eventSource` `kms.amazonaws.com`, not
//! read-only. A field selector on another field (e.g. `userIdentity.arn`)
//! cannot be decided here: a selector that depends on one only *may* match.

use super::*;
use std::collections::BTreeSet;

use crate::aws::{AdvancedEventSelector, EventSelector, EventSelectors, FieldSelector};

/// KMS's event source.
pub const KMS_SOURCE: &str = "kms.amazonaws.com";

/// The calls on the key that trailkey repairs and a trail must see.
pub const WATCHED: [&str; 3] = ["DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy"];

/// Whether a selector matches an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    /// It depends on a field trailkey does not evaluate.
    Maybe,
}

/// A warning when the trail's event selectors leave out (or may leave out)
/// KMS's management write events; a note when they could not be read.
pub(super) fn kms_blind_spot(observed: &Observed) -> Option<Finding> {
    let trail = &observed.trail.arn;
    let selectors = match observed.event_selectors.as_ref()? {
        Ok(selectors) => selectors,
        Err(why) => {
            return Some(Finding {
                level: Level::Warning,
                message: format!(
                    "trail {trail} has custom event selectors, which trailkey could not read ({why}): whether it records KMS management events from {KMS_SOURCE} is unknown. Let trailkey's role call cloudtrail:GetEventSelectors on the trail"
                ),
            });
        }
    };
    let (why, unseen) = if selectors.advanced.is_empty() {
        (basic_gap(&selectors.basic)?, WATCHED.to_vec())
    } else {
        advanced_gap(selectors)?
    };
    let key = observed.key.as_ref().map_or_else(
        || "the trail's key".to_owned(),
        |k| format!("key {}", k.info.arn),
    );
    Some(Finding {
        level: Level::Warning,
        message: format!(
            "trail {trail} {why}: {} on {key} leave no record in the trail, and trailkey's Lambda function may get no event to repair them. Record {KMS_SOURCE} write management events in the trail, or run `trailkey plan` on a schedule",
            list(&unseen)
        ),
    })
}

/// Why basic selectors leave KMS's write events out, if they do.
fn basic_gap(selectors: &[EventSelector]) -> Option<String> {
    if selectors.iter().any(|s| basic_matches(s) == Match::Yes) {
        return None;
    }
    let management: Vec<&EventSelector> = selectors
        .iter()
        .filter(|s| s.include_management_events)
        .collect();
    if management.is_empty() {
        return Some("records no management events (IncludeManagementEvents is false in every event selector)".to_owned());
    }
    if management.iter().all(|s| s.read_write_type == "ReadOnly") {
        return Some(
            "records only read-only management events (ReadWriteType ReadOnly)".to_owned(),
        );
    }
    if let Some(other) = management
        .iter()
        .map(|s| s.read_write_type.as_str())
        .find(|t| !matches!(*t, "All" | "WriteOnly" | "ReadOnly"))
    {
        return Some(format!(
            "has a ReadWriteType trailkey does not know ({other}), and no event selector that surely records write management events"
        ));
    }
    Some(format!(
        "leaves KMS out of its management events (ExcludeManagementEventSources names {KMS_SOURCE})"
    ))
}

fn basic_matches(s: &EventSelector) -> Match {
    let writes = matches!(s.read_write_type.as_str(), "All" | "WriteOnly");
    let kms_excluded = s
        .exclude_management_event_sources
        .iter()
        .any(|source| source == KMS_SOURCE);
    if s.include_management_events && writes && !kms_excluded {
        Match::Yes
    } else {
        Match::No
    }
}

/// Why advanced selectors leave KMS's watched events out, if they do or
/// may, and which of them.
fn advanced_gap(selectors: &EventSelectors) -> Option<(String, Vec<&'static str>)> {
    let mut missed = Vec::new();
    let mut unsure = Vec::new();
    for event in WATCHED {
        let verdicts: Vec<Match> = selectors
            .advanced
            .iter()
            .map(|s| advanced_matches(s, event))
            .collect();
        if verdicts.contains(&Match::Yes) {
            continue;
        }
        if verdicts.contains(&Match::Maybe) {
            unsure.push(event);
        } else {
            missed.push(event);
        }
    }
    if missed.is_empty() && unsure.is_empty() {
        return None;
    }
    let mut why = Vec::new();
    if !missed.is_empty() {
        why.push(format!(
            "has advanced event selectors that match no {KMS_SOURCE} management event {}",
            list(&missed)
        ));
    }
    if !unsure.is_empty() {
        // The fields of the selectors that may match, not of those that
        // surely do not.
        let fields: BTreeSet<&str> = selectors
            .advanced
            .iter()
            .filter(|s| {
                unsure
                    .iter()
                    .any(|e| advanced_matches(s, e) == Match::Maybe)
            })
            .flat_map(|s| &s.field_selectors)
            .map(|f| f.field.as_str())
            .filter(|f| !KNOWN_FIELDS.contains(f))
            .collect();
        why.push(format!(
            "may leave out {} (its advanced event selectors filter on {}, which trailkey does not evaluate)",
            list(&unsure),
            fields.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let unseen = WATCHED
        .into_iter()
        .filter(|e| missed.contains(e) || unsure.contains(e))
        .collect();
    Some((why.join(", and "), unseen))
}

/// The fields whose value trailkey knows for a watched event.
const KNOWN_FIELDS: [&str; 4] = ["eventCategory", "eventSource", "readOnly", "eventName"];

fn advanced_matches(selector: &AdvancedEventSelector, event: &str) -> Match {
    let mut verdict = Match::Yes;
    for f in &selector.field_selectors {
        let value = match f.field.as_str() {
            "eventCategory" => "Management",
            "eventSource" => KMS_SOURCE,
            "readOnly" => "false",
            "eventName" => event,
            _ => {
                verdict = Match::Maybe;
                continue;
            }
        };
        if !field_matches(f, value) {
            return Match::No;
        }
    }
    verdict
}

fn field_matches(f: &FieldSelector, value: &str) -> bool {
    let any = |list: &[String], test: &dyn Fn(&str) -> bool| list.iter().any(|v| test(v));
    (f.equals.is_empty() || any(&f.equals, &|v| value == v))
        && (f.starts_with.is_empty() || any(&f.starts_with, &|v| value.starts_with(v)))
        && (f.ends_with.is_empty() || any(&f.ends_with, &|v| value.ends_with(v)))
        && !any(&f.not_equals, &|v| value == v)
        && !any(&f.not_starts_with, &|v| value.starts_with(v))
        && !any(&f.not_ends_with, &|v| value.ends_with(v))
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
