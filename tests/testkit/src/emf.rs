//! CloudWatch's embedded metric format (EMF), as its specification states
//! it ("Specification: Embedded metric format",
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>):
//! what a log event must be for CloudWatch Logs to extract its metrics. The
//! tests hold trailkey's metric lines to it; it shares no code with
//! trailkey's own serializer.

use serde_json::Value;

/// The units a `MetricDefinition` may name (CloudWatch's `StandardUnit`).
pub const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One metric a line defines: namespace, the dimension set's (name, value)
/// pairs, the metric's name, unit and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub namespace: String,
    pub dimensions: Vec<(String, String)>,
    pub name: String,
    pub unit: Option<String>,
    pub value: f64,
}

/// The metrics of the log event `text` (one line of a function's log), or
/// why CloudWatch Logs would extract none or reject it: the event must be a
/// JSON object and nothing else; its `_aws` an object with a numeric
/// `Timestamp` and a `CloudWatchMetrics` array of metric directives; each
/// directive a `Namespace` (1 to 255 characters, not starting with `:`),
/// `Dimensions` (an array of dimension sets of at most 30 names each, every
/// name a top-level member whose value is a string of 1 to 1,024
/// characters) and `Metrics` (at most 100 definitions, each a `Name` whose
/// top-level member is a number or an array of at most 100 numbers, a
/// `Unit` among [`UNITS`] if any, a `StorageResolution` of 1 or 60 if
/// any, and no other member). A metric with an array of values gives one
/// [`Metric`] per value.
pub fn metrics(text: &str) -> Result<Vec<Metric>, String> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| format!("not one JSON value: {e}: {text}"))?;
    let root = root
        .as_object()
        .ok_or_else(|| format!("not a JSON object: {text}"))?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    if !aws.get("Timestamp").is_some_and(Value::is_number) {
        return Err(format!("_aws.Timestamp is not a number: {text}"));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("_aws.CloudWatchMetrics is not an array")?;
    let mut out = Vec::new();
    for directive in directives {
        let namespace = directive["Namespace"]
            .as_str()
            .filter(|n| (1..=255).contains(&n.chars().count()) && !n.starts_with(':'))
            .ok_or_else(|| format!("a bad Namespace: {directive}"))?;
        let sets = directive["Dimensions"]
            .as_array()
            .ok_or_else(|| format!("Dimensions is not an array: {directive}"))?;
        let definitions = directive["Metrics"]
            .as_array()
            .filter(|m| m.len() <= 100)
            .ok_or_else(|| format!("Metrics is not an array of at most 100: {directive}"))?;
        let mut dimension_sets = Vec::new();
        for set in sets {
            let names = set
                .as_array()
                .filter(|s| s.len() <= 30)
                .ok_or_else(|| format!("a dimension set that is not at most 30 names: {set}"))?;
            let mut dimensions = Vec::new();
            for name in names {
                let name = name
                    .as_str()
                    .ok_or_else(|| format!("a dimension name that is not a string: {name}"))?;
                let value = root
                    .get(name)
                    .and_then(Value::as_str)
                    .filter(|v| (1..=1024).contains(&v.chars().count()))
                    .ok_or_else(|| {
                        format!("dimension {name}: no string member of 1 to 1024 characters")
                    })?;
                dimensions.push((name.to_owned(), value.to_owned()));
            }
            dimension_sets.push(dimensions);
        }
        for definition in definitions {
            let fields = definition.as_object().ok_or_else(|| {
                format!("a metric definition that is not an object: {definition}")
            })?;
            if let Some(other) = fields
                .keys()
                .find(|k| !["Name", "Unit", "StorageResolution"].contains(&k.as_str()))
            {
                return Err(format!(
                    "a metric definition with a member {other}: {definition}"
                ));
            }
            let name = definition["Name"]
                .as_str()
                .filter(|n| (1..=255).contains(&n.chars().count()))
                .ok_or_else(|| format!("a bad metric Name: {definition}"))?;
            let unit = match definition.get("Unit") {
                None => None,
                Some(Value::String(u)) if UNITS.contains(&u.as_str()) => Some(u.clone()),
                Some(other) => return Err(format!("metric {name}: Unit {other} is not a unit")),
            };
            if let Some(r) = definition.get("StorageResolution")
                && r != 1
                && r != 60
            {
                return Err(format!("metric {name}: StorageResolution {r}"));
            }
            let values: Vec<f64> = match root.get(name) {
                Some(Value::Number(n)) => vec![n.as_f64().unwrap()],
                Some(Value::Array(a)) if a.len() <= 100 && a.iter().all(Value::is_number) => {
                    a.iter().map(|v| v.as_f64().unwrap()).collect()
                }
                other => return Err(format!("metric {name}: its value is {other:?}")),
            };
            for dimensions in &dimension_sets {
                for value in &values {
                    out.push(Metric {
                        namespace: namespace.to_owned(),
                        dimensions: dimensions.clone(),
                        name: name.to_owned(),
                        unit: unit.clone(),
                        value: *value,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Whether the log event `text` is meant as an EMF line: a JSON object with
/// an `_aws` member.
pub fn is_emf(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v.get("_aws").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["D"]],"Metrics":[{"Name":"M","Unit":"Count"},{"Name":"T"}]}]},"D":"d","M":2,"T":[1.5,2.5]}"#;

    #[test]
    fn a_line_of_the_specifications_shape_gives_its_metrics() {
        let metrics = metrics(GOOD).unwrap();
        let names: Vec<(&str, f64)> = metrics.iter().map(|m| (m.name.as_str(), m.value)).collect();
        assert_eq!(names, [("M", 2.0), ("T", 1.5), ("T", 2.5)]);
        assert_eq!(metrics[0].dimensions, [("D".to_owned(), "d".to_owned())]);
        assert_eq!(metrics[0].unit.as_deref(), Some("Count"));
    }

    #[test]
    fn what_the_specification_rejects_is_an_error() {
        for (from, to) in [
            (r#""Timestamp":1"#, r#""Timestamp":"1""#),
            (r#""D":"d""#, r#""D":1"#),
            (r#""D":"d""#, r#""D":"""#),
            (r#""M":2"#, r#""M":"2""#),
            (r#""Unit":"Count""#, r#""Unit":"count""#),
            (r#""Namespace":"n""#, r#""Namespace":":n""#),
            (r#"{"Name":"T"}"#, r#"{"Name":"T","Value":1}"#),
        ] {
            let bad = GOOD.replace(from, to);
            assert_ne!(bad, GOOD);
            assert!(metrics(&bad).is_err(), "{bad}");
        }
        assert!(metrics(&format!("{GOOD} x")).is_err());
        assert!(metrics("[1]").is_err());
        assert!(is_emf(GOOD) && !is_emf(r#"{"level":"info"}"#) && !is_emf("text"));
    }
}
