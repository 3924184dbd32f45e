//! trailkey's error table ([`trailkey::error::handling`]) against AWS's own
//! list of errors: the botocore service models in the venv. For every
//! operation trailkey calls ([`trailkey::error::OPERATIONS`]), botocore
//! itself loads the service model and lists the operation's error shapes
//! with the code each has on the wire (the shape's `error.code` where the
//! model gives one, as STS does, else the shape's name). The test fails on
//! an operation the model does not have, on any listed code the table does
//! not classify, on a table entry whose hint disagrees with its handling
//! (the generic hint exactly for `Generic`), and on a server fault in the
//! model that the table does not leave to the SDK's retries. All failures
//! are printed at once.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;
use trailkey::error::{GENERIC_HINT, Handling, OPERATIONS, handling, hint};
use trailkey_testkit::venv;

/// Prints, as JSON, `{service: {operation: [[shape, code, fault], ...] or
/// null when the model has no such operation}}` for the services and
/// operations in `sys.argv[1]`.
const DUMP: &str = r#"
import json, sys
import botocore.session

wanted = json.loads(sys.argv[1])
session = botocore.session.get_session()
loader = session.get_component("data_loader")
out = {}
for service, operations in wanted.items():
    model = session.get_service_model(service)
    # Shape objects leave out "fault" (a server error); the loaded JSON has it.
    shapes = loader.load_service_model(service, "service-2")["shapes"]
    names = set(model.operation_names)
    out[service] = {}
    for op in operations:
        if op not in names:
            out[service][op] = None
            continue
        out[service][op] = [
            [
                shape.name,
                shape.metadata.get("error", {}).get("code", shape.name),
                bool(shapes[shape.name].get("fault", False)),
            ]
            for shape in model.operation_model(op).error_shapes
        ]
print(json.dumps(out))
"#;

/// One error the model lists for one operation.
struct Listed {
    service: String,
    operation: String,
    shape: String,
    code: String,
    fault: bool,
}

fn listed_errors() -> (Vec<Listed>, Vec<String>) {
    let wanted: BTreeMap<&str, &[&str]> = OPERATIONS.iter().copied().collect();
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", DUMP, &serde_json::to_string(&wanted).unwrap()])
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "botocore could not list the models' errors:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump: Value = serde_json::from_slice(&out.stdout).expect("JSON from python");
    let mut listed = Vec::new();
    let mut missing_operations = Vec::new();
    for (service, operations) in OPERATIONS {
        for operation in *operations {
            match &dump[service][operation] {
                Value::Null => missing_operations.push(format!("{service} {operation}")),
                Value::Array(errors) => {
                    for e in errors {
                        listed.push(Listed {
                            service: (*service).to_owned(),
                            operation: (*operation).to_owned(),
                            shape: e[0].as_str().unwrap().to_owned(),
                            code: e[1].as_str().unwrap().to_owned(),
                            fault: e[2].as_bool().unwrap(),
                        });
                    }
                }
                other => panic!("unexpected dump for {service} {operation}: {other}"),
            }
        }
    }
    (listed, missing_operations)
}

#[test]
fn every_error_the_service_models_list_is_classified() {
    let (listed, missing_operations) = listed_errors();
    assert!(
        missing_operations.is_empty(),
        "operations in trailkey::error::OPERATIONS that the botocore models do not have:\n  {}",
        missing_operations.join("\n  ")
    );
    assert!(listed.len() > 100, "only {} errors listed", listed.len());

    let mut unclassified = Vec::new();
    let mut disagreeing = Vec::new();
    let mut faults_not_retried = Vec::new();
    let mut counts: BTreeMap<Handling, usize> = BTreeMap::new();
    for e in &listed {
        let named = if e.code == e.shape {
            format!("{} {} {}", e.service, e.operation, e.code)
        } else {
            format!(
                "{} {} {} (shape {})",
                e.service, e.operation, e.code, e.shape
            )
        };
        let Some(h) = handling(&e.operation, &e.code, "") else {
            unclassified.push(named);
            continue;
        };
        *counts.entry(h).or_default() += 1;
        let generic = hint(&e.operation, &e.code, "") == GENERIC_HINT;
        if generic != (h == Handling::Generic) {
            disagreeing.push(format!("{named}: {h:?} with the generic hint: {generic}"));
        }
        let sent_once = trailkey::error::SENT_ONCE.contains(&e.operation.as_str());
        if e.fault && h != Handling::SdkRetry && !(sent_once && h == Handling::Hint) {
            faults_not_retried.push(format!("{named}: {h:?}"));
        }
    }
    eprintln!(
        "{} (operation, code) pairs listed by the models: {counts:?}",
        listed.len()
    );
    let mut failures = String::new();
    if !unclassified.is_empty() {
        failures += &format!(
            "\nnot in trailkey::error's table (add them, with how trailkey handles them):\n  {}\n",
            unclassified.join("\n  ")
        );
    }
    if !disagreeing.is_empty() {
        failures += &format!(
            "\nhint and handling disagree (Generic must show the generic hint, every other handling a hint of its own):\n  {}\n",
            disagreeing.join("\n  ")
        );
    }
    if !faults_not_retried.is_empty() {
        failures += &format!(
            "\nserver faults in the model (HTTP 5xx, which the SDK's standard retry strategy retries) not classified SdkRetry:\n  {}\n",
            faults_not_retried.join("\n  ")
        );
    }
    assert!(failures.is_empty(), "{failures}");
}
