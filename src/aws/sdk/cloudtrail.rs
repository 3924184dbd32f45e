//! CloudTrail: the trail, its status and tags, the trails of each Region,
//! and the CloudTrail Lake event data stores.

use std::collections::BTreeMap;

use aws_config::Region;

use super::error::{answer, steady};
use super::{listed, non_empty};
use crate::aws::{
    AdvancedEventSelector, AwsError, AwsResult, EventDataStore, EventSelector, EventSelectors,
    FieldSelector, Trail, TrailStatus, TrailUpdate, code,
};

/// A [`Trail`] from a CloudTrail answer that carries the trail's fields
/// (`types::Trail` of `GetTrail` and `DescribeTrails`, `UpdateTrailOutput`),
/// with its home Region as given.
macro_rules! trail_of {
    ($t:expr, $home_region:expr, $custom_selectors:expr) => {{
        let t = $t;
        Trail {
            name: t.name().unwrap_or_default().to_owned(),
            arn: t.trail_arn().unwrap_or_default().to_owned(),
            home_region: $home_region,
            kms_key_id: non_empty(t.kms_key_id()),
            is_organization_trail: t.is_organization_trail().unwrap_or(false),
            is_multi_region_trail: t.is_multi_region_trail().unwrap_or(false),
            s3_bucket: t.s3_bucket_name().unwrap_or_default().to_owned(),
            s3_key_prefix: non_empty(t.s3_key_prefix()),
            log_file_validation: t.log_file_validation_enabled().unwrap_or(false),
            has_custom_event_selectors: $custom_selectors,
        }
    }};
}

/// A trail as `GetTrail` and `DescribeTrails` return it.
fn trail_from(t: &aws_sdk_cloudtrail::types::Trail) -> Trail {
    // GetTrail may omit HomeRegion (moto does); the trail ARN carries it.
    let home_region = t
        .home_region()
        .filter(|r| !r.is_empty())
        .or_else(|| t.trail_arn().and_then(|a| a.split(':').nth(3)))
        .unwrap_or_default()
        .to_owned();
    trail_of!(
        t,
        home_region,
        t.has_custom_event_selectors().unwrap_or(false)
    )
}

/// `GetTrail` by name or ARN.
pub(super) async fn get_trail(client: &aws_sdk_cloudtrail::Client, name: &str) -> AwsResult<Trail> {
    let out = answer("GetTrail", client.get_trail().name(name).send()).await?;
    let t = out.trail().ok_or_else(|| {
        AwsError::new(
            "GetTrail",
            code::TRAIL_NOT_FOUND,
            format!("no trail {name}"),
        )
    })?;
    Ok(trail_from(t))
}

/// `UpdateTrail`: one call for every setting in `update`.
pub(super) async fn update_trail(
    client: &aws_sdk_cloudtrail::Client,
    trail: &str,
    update: TrailUpdate<'_>,
) -> AwsResult<Trail> {
    let request = client
        .update_trail()
        .name(trail)
        .set_kms_key_id(update.kms_key_id.map(str::to_owned))
        .set_enable_log_file_validation(update.enable_log_file_validation.then_some(true));
    let t = answer("UpdateTrail", request.send()).await?;
    // UpdateTrail returns neither the home Region nor whether the event
    // selectors are custom; the caller keeps what it read.
    Ok(trail_of!(t, String::new(), false))
}

/// `GetEventSelectors`: the management-event part of the basic selectors,
/// and the advanced selectors.
pub(super) async fn event_selectors(
    client: &aws_sdk_cloudtrail::Client,
    trail: &str,
) -> AwsResult<EventSelectors> {
    // Reported, not fatal: in a steady form.
    let out = answer(
        "GetEventSelectors",
        client.get_event_selectors().trail_name(trail).send(),
    )
    .await
    .map_err(steady)?;
    let basic = out
        .event_selectors()
        .iter()
        .map(|s| EventSelector {
            read_write_type: s.read_write_type().map_or("All", |t| t.as_str()).to_owned(),
            include_management_events: s.include_management_events().unwrap_or(true),
            exclude_management_event_sources: s.exclude_management_event_sources().to_vec(),
        })
        .collect();
    let advanced = out
        .advanced_event_selectors()
        .iter()
        .map(|s| AdvancedEventSelector {
            name: s.name().map(str::to_owned),
            field_selectors: s
                .field_selectors()
                .iter()
                .map(|f| FieldSelector {
                    field: f.field().to_owned(),
                    equals: f.equals().to_vec(),
                    starts_with: f.starts_with().to_vec(),
                    ends_with: f.ends_with().to_vec(),
                    not_equals: f.not_equals().to_vec(),
                    not_starts_with: f.not_starts_with().to_vec(),
                    not_ends_with: f.not_ends_with().to_vec(),
                })
                .collect(),
        })
        .collect();
    Ok(EventSelectors { basic, advanced })
}

/// `StartLogging`.
pub(super) async fn start_logging(
    client: &aws_sdk_cloudtrail::Client,
    trail: &str,
) -> AwsResult<()> {
    answer("StartLogging", client.start_logging().name(trail).send()).await?;
    Ok(())
}

/// `GetTrailStatus`.
pub(super) async fn trail_status(
    client: &aws_sdk_cloudtrail::Client,
    trail: &str,
) -> AwsResult<TrailStatus> {
    let out = answer(
        "GetTrailStatus",
        client.get_trail_status().name(trail).send(),
    )
    .await?;
    Ok(TrailStatus {
        is_logging: out.is_logging().unwrap_or(false),
        latest_delivery_error: non_empty(out.latest_delivery_error()),
        latest_digest_delivery_error: non_empty(out.latest_digest_delivery_error()),
        latest_delivery_time: out.latest_delivery_time().map(|t| t.secs()),
    })
}

/// The trail's tags (`ListTags`), by trail ARN.
pub(super) async fn trail_tags(
    client: &aws_sdk_cloudtrail::Client,
    trail_arn: &str,
) -> AwsResult<BTreeMap<String, String>> {
    let request = client.list_tags().resource_id_list(trail_arn);
    let out = answer("ListTags", request.send()).await?;
    Ok(out
        .resource_tag_list()
        .iter()
        .flat_map(|r| r.tags_list())
        .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect())
}

/// `DescribeTrails` in the client's Region: with `shadows`, the trails that
/// apply there (shadow copies of multi-Region trails homed elsewhere
/// included), otherwise only the trails homed there.
pub(super) async fn describe_trails(
    client: &aws_sdk_cloudtrail::Client,
    shadows: bool,
) -> AwsResult<Vec<Trail>> {
    let request = client.describe_trails().include_shadow_trails(shadows);
    let out = answer("DescribeTrails", request.send()).await?;
    let mut trails: Vec<Trail> = out.trail_list().iter().map(trail_from).collect();
    // CloudTrail lists them in no fixed order.
    trails.sort_by(|a, b| a.arn.cmp(&b.arn));
    Ok(trails)
}

/// The trails homed in `region`, asked with the settings of `client`
/// (credentials, retries, the call log).
pub(super) async fn describe_trails_in(
    client: &aws_sdk_cloudtrail::Client,
    region: &str,
) -> AwsResult<Vec<Trail>> {
    let conf = client
        .config()
        .to_builder()
        .region(Region::new(region.to_owned()))
        .build();
    describe_trails(&aws_sdk_cloudtrail::Client::from_conf(conf), false).await
}

/// The ARNs of the event data stores (`ListEventDataStores`, all pages).
pub(super) async fn list_event_data_stores(
    client: &aws_sdk_cloudtrail::Client,
) -> AwsResult<Vec<String>> {
    let pages = client.list_event_data_stores().into_paginator().send();
    let pages = answer("ListEventDataStores", pages.try_collect()).await?;
    Ok(listed(
        &pages,
        |page| page.event_data_stores(),
        |s| s.event_data_store_arn(),
    ))
}

/// One event data store, by ARN, with its key (`GetEventDataStore`).
pub(super) async fn get_event_data_store(
    client: &aws_sdk_cloudtrail::Client,
    arn: &str,
) -> AwsResult<EventDataStore> {
    let request = client.get_event_data_store().event_data_store(arn);
    let out = answer("GetEventDataStore", request.send()).await?;
    Ok(EventDataStore {
        arn: out.event_data_store_arn().unwrap_or(arn).to_owned(),
        name: out.name().unwrap_or_default().to_owned(),
        status: out
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        kms_key_id: non_empty(out.kms_key_id()),
    })
}
