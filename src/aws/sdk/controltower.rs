//! Control Tower: the landing zone and its operations (the `controltower`
//! model, rest-json). The manifest travels as a smithy `Document`; trailkey
//! holds it as JSON, converted both ways here without losing a field.

use aws_sdk_controltower::types::{
    LandingZoneOperationFilter, LandingZoneOperationStatus, RemediationType,
};
use aws_smithy_types::{Document, Number};
use serde_json::Value;

use super::error::answer;
use super::text;
use crate::aws::{AwsResult, LandingZone, LandingZoneOperation, LandingZoneUpdate};

/// The ARNs `ListLandingZones` gives, every page.
pub(super) async fn list_landing_zones(
    client: &aws_sdk_controltower::Client,
) -> AwsResult<Vec<String>> {
    let pages: Vec<_> = answer(
        "ListLandingZones",
        client
            .list_landing_zones()
            .into_paginator()
            .send()
            .collect(),
    )
    .await?;
    let arns = pages.iter().flat_map(|p| p.landing_zones());
    Ok(arns.filter_map(|z| z.arn()).map(str::to_owned).collect())
}

pub(super) async fn get_landing_zone(
    client: &aws_sdk_controltower::Client,
    arn: &str,
) -> AwsResult<LandingZone> {
    let out = answer(
        "GetLandingZone",
        client
            .get_landing_zone()
            .landing_zone_identifier(arn)
            .send(),
    )
    .await?;
    let Some(z) = out.landing_zone() else {
        return Err(crate::aws::AwsError::new(
            "GetLandingZone",
            crate::aws::code::RESPONSE_ERROR,
            "Control Tower answered without the landing zone",
        ));
    };
    let mut remediation_types: Vec<String> = z
        .remediation_types()
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    // A set, in no fixed order.
    remediation_types.sort();
    Ok(LandingZone {
        arn: z.arn().unwrap_or(arn).to_owned(),
        version: z.version().to_owned(),
        latest_available_version: z.latest_available_version().map(str::to_owned),
        status: text(z.status().map(|s| s.as_str())),
        drift_status: z
            .drift_status()
            .and_then(|d| d.status())
            .map(|s| s.as_str().into()),
        manifest: json_of(z.manifest()),
        remediation_types,
    })
}

pub(super) async fn operations_in_progress(
    client: &aws_sdk_controltower::Client,
) -> AwsResult<Vec<LandingZoneOperation>> {
    let filter = LandingZoneOperationFilter::builder()
        .statuses(LandingZoneOperationStatus::InProgress)
        .build();
    let pages: Vec<_> = answer(
        "ListLandingZoneOperations",
        client
            .list_landing_zone_operations()
            .filter(filter)
            .into_paginator()
            .send()
            .collect(),
    )
    .await?;
    let operations = pages.iter().flat_map(|p| p.landing_zone_operations());
    let mut operations: Vec<LandingZoneOperation> = operations
        .map(|o| LandingZoneOperation {
            id: o.operation_identifier().unwrap_or_default().to_owned(),
            operation_type: o
                .operation_type()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            status: text(o.status().map(|s| s.as_str())),
            status_message: None,
        })
        .collect();
    // Listed in no fixed order, across pages.
    operations.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(operations)
}

pub(super) async fn update_landing_zone(
    client: &aws_sdk_controltower::Client,
    update: LandingZoneUpdate<'_>,
) -> AwsResult<String> {
    let remediation = update
        .remediation_types
        .iter()
        .map(|r| RemediationType::from(r.as_str()))
        .collect();
    let out = answer(
        "UpdateLandingZone",
        client
            .update_landing_zone()
            .landing_zone_identifier(update.arn)
            .version(update.version)
            .set_remediation_types((!update.remediation_types.is_empty()).then_some(remediation))
            .manifest(document_of(update.manifest))
            // Sent once: after an answer lost on the way, a retry could
            // start a second operation, or answer ConflictException for
            // this one (see `apply::landing_zone`).
            .customize()
            .config_override(
                aws_sdk_controltower::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send(),
    )
    .await?;
    Ok(out.operation_identifier().to_owned())
}

pub(super) async fn get_operation(
    client: &aws_sdk_controltower::Client,
    id: &str,
) -> AwsResult<LandingZoneOperation> {
    let out = answer(
        "GetLandingZoneOperation",
        client
            .get_landing_zone_operation()
            .operation_identifier(id)
            .send(),
    )
    .await?;
    let o = out.operation_details();
    Ok(LandingZoneOperation {
        id: o
            .and_then(|o| o.operation_identifier())
            .unwrap_or(id)
            .to_owned(),
        operation_type: o
            .and_then(|o| o.operation_type())
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        status: text(o.and_then(|o| o.status()).map(|s| s.as_str())),
        status_message: o
            .and_then(|o| o.status_message())
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
    })
}

/// A smithy document as JSON.
pub(super) fn json_of(d: &Document) -> Value {
    match d {
        Document::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), json_of(v))).collect())
        }
        Document::Array(a) => Value::Array(a.iter().map(json_of).collect()),
        Document::Number(Number::PosInt(n)) => Value::from(*n),
        Document::Number(Number::NegInt(n)) => Value::from(*n),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Bool(b) => Value::Bool(*b),
        Document::Null => Value::Null,
    }
}

/// JSON as a smithy document.
pub(super) fn document_of(v: &Value) -> Document {
    match v {
        Value::Object(o) => {
            Document::Object(o.iter().map(|(k, v)| (k.clone(), document_of(v))).collect())
        }
        Value::Array(a) => Document::Array(a.iter().map(document_of).collect()),
        Value::Number(n) => Document::Number(match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Number::PosInt(u),
            (None, Some(i)) => Number::NegInt(i),
            _ => Number::Float(n.as_f64().unwrap_or_default()),
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Bool(b) => Document::Bool(*b),
        Value::Null => Document::Null,
    }
}
