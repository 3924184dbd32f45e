//! The Account Management API's `ListRegions`.

use serde_json::{Value, json};
use trailkey_testkit::Moto;
use trailkey_testkit::rules;

use super::{call, outcomes};

/// The Regions and opt-in status of the calls' results, page by page.
fn regions_of(result: &Value) -> Vec<(String, String)> {
    result["response"]["Regions"]
        .as_array()
        .unwrap_or_else(|| panic!("no Regions in {result:#}"))
        .iter()
        .map(|r| {
            (
                r["RegionName"].as_str().unwrap().to_owned(),
                r["RegionOptStatus"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn list_regions_answers_the_worlds_regions_by_status_page_by_page() {
    let moto = Moto::start();
    let enabled = json!({"RegionOptStatusContains": ["ENABLED", "ENABLED_BY_DEFAULT"]});
    let alone = moto.calls(None, &json!([call("account:ListRegions", enabled.clone())]));
    assert_ne!(
        alone[0]["ok"], true,
        "moto 5.2.5 has no ListRegions: {alone:#?}"
    );

    let layer = moto.proxy_with(vec![Box::new(rules::account_regions(moto.world.clone()))]);
    let first = moto.calls(
        Some(&layer),
        &json!([call("account:ListRegions", enabled.clone())]),
    );
    assert_eq!(first[0]["ok"], true, "{first:#?}");
    let token = first[0]["response"]["NextToken"]
        .as_str()
        .expect("more than one page");
    let mut next = enabled.clone();
    next["NextToken"] = json!(token);
    let results = moto.calls(
        Some(&layer),
        &json!([
            call("account:ListRegions", next),
            call(
                "account:ListRegions",
                json!({"RegionOptStatusContains": ["DISABLED"]})
            ),
            call("account:ListRegions", json!({"MaxResults": 50})),
            call(
                "account:ListRegions",
                json!({"NextToken": "not-the-layers"})
            ),
            call(
                "account:ListRegions",
                json!({"RegionOptStatusContains": ["OPTED_IN"]})
            ),
        ]),
    );
    let mut all = regions_of(&first[0]);
    all.extend(regions_of(&results[0]));
    let names: Vec<&str> = all.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "us-east-1",
            "us-east-2",
            "us-west-2",
            "eu-west-1",
            "ap-southeast-2",
            "af-south-1"
        ],
        "every enabled Region once, the disabled opt-in Region never"
    );
    assert!(results[0]["response"].get("NextToken").is_none());
    assert_eq!(
        regions_of(&results[1]),
        [("me-south-1".to_owned(), "DISABLED".to_owned())]
    );
    assert_eq!(regions_of(&results[2]).len(), rules::DEFAULT_REGIONS.len());
    assert_eq!(
        outcomes(&results[3..]),
        ["ValidationException", "ValidationException"]
    );
    // The layer answered every call itself, and noted them.
    let exchanges = layer.exchanges();
    assert!(
        exchanges
            .iter()
            .all(|e| !e.forwarded && e.is("account", "ListRegions"))
    );
    assert_eq!(moto.world.answered().len(), 6);

    // A test's own Regions.
    moto.world.regions(&[
        ("us-east-1", "ENABLED_BY_DEFAULT"),
        ("ap-east-1", "DISABLING"),
    ]);
    let own = moto.calls(Some(&layer), &json!([call("account:ListRegions", enabled)]));
    assert_eq!(
        regions_of(&own[0]),
        [("us-east-1".to_owned(), "ENABLED_BY_DEFAULT".to_owned())]
    );
}
