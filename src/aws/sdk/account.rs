//! Account Management: the Regions the account may use.

use aws_sdk_account::types::{Region as OptRegion, RegionOptStatus};

use super::error::answer;
use crate::aws::AwsResult;

/// `ListRegions`, all pages, of the Regions enabled by default and the
/// opt-in Regions enabled.
pub(super) async fn enabled_regions(account: &aws_sdk_account::Client) -> AwsResult<Vec<String>> {
    let pages = account
        .list_regions()
        .region_opt_status_contains(RegionOptStatus::Enabled)
        .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
        .into_paginator()
        .send();
    let pages = answer("ListRegions", pages.try_collect()).await?;
    // The filter is the service's; a Region answered in another status
    // anyway is not called.
    let enabled = |r: &&OptRegion| {
        matches!(
            r.region_opt_status(),
            Some(RegionOptStatus::Enabled | RegionOptStatus::EnabledByDefault)
        )
    };
    Ok(pages
        .iter()
        .flat_map(|page| page.regions())
        .filter(enabled)
        .filter_map(|r| r.region_name().map(str::to_owned))
        .collect())
}
