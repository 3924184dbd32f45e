//! AWS Organizations: the organization and its accounts.

use super::error::answer;
use super::text;
use crate::aws::{Account, AwsError, AwsResult, Organization, code};

/// `DescribeOrganization`.
pub(super) async fn describe_organization(
    org: &aws_sdk_organizations::Client,
) -> AwsResult<Organization> {
    let out = answer("DescribeOrganization", org.describe_organization().send()).await?;
    let org = out.organization().ok_or_else(|| {
        AwsError::new(
            "DescribeOrganization",
            code::NO_ORGANIZATION,
            "no organization returned",
        )
    })?;
    Ok(Organization {
        id: org.id().unwrap_or_default().to_owned(),
        management_account: org.master_account_id().unwrap_or_default().to_owned(),
        feature_set: text(org.feature_set().map(|f| f.as_str())),
    })
}

/// `ListAccounts`, all pages.
pub(super) async fn list_accounts(org: &aws_sdk_organizations::Client) -> AwsResult<Vec<Account>> {
    let pages = org.list_accounts().into_paginator().send();
    let pages = answer("ListAccounts", pages.try_collect()).await?;
    let accounts = pages.iter().flat_map(|page| page.accounts());
    let mut accounts: Vec<Account> = accounts
        .map(|a| Account {
            id: a.id().unwrap_or_default().to_owned(),
            name: a.name().unwrap_or_default().to_owned(),
            email: a.email().unwrap_or_default().to_owned(),
            // `Status` is retired (organizations model, `Account.Status`):
            // only an answer without `State` falls back to it.
            state: text(
                a.state()
                    .map(|s| s.as_str())
                    .or_else(|| a.status().map(|s| s.as_str())),
            ),
        })
        .collect();
    // Organizations lists them in no fixed order, across pages.
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(accounts)
}

/// `ListDelegatedAdministrators` for `service_principal`, all pages: the
/// accounts' IDs.
pub(super) async fn delegated_administrators(
    org: &aws_sdk_organizations::Client,
    service_principal: &str,
) -> AwsResult<Vec<String>> {
    let request = org
        .list_delegated_administrators()
        .service_principal(service_principal);
    let pages = request.into_paginator().send();
    let pages = answer("ListDelegatedAdministrators", pages.try_collect()).await?;
    Ok(pages
        .iter()
        .flat_map(|page| page.delegated_administrators())
        .filter_map(|a| a.id().map(str::to_owned))
        .collect())
}
