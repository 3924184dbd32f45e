//! The Account Management API's `ListRegions`, which moto 5.2.5 does not
//! have.

use serde_json::{Value, json};

use super::world::World;
use super::{json_answer, json_body, page, rest_json_error};
use crate::proxy::{Decision, Request, Rule, Traffic};

/// `account:ListRegions`, which moto 5.2.5 does not have, answered from the
/// [`World`]'s Regions ([`World::regions`], else [`DEFAULT_REGIONS`]), as the
/// Account Management API does
/// (<https://docs.aws.amazon.com/accounts/latest/reference/API_ListRegions.html>;
/// account model, `ListRegions`):
///
/// * `POST /listRegions` (REST-JSON), answered
///   `{"Regions": [{"RegionName", "RegionOptStatus"}], "NextToken"}`;
/// * `RegionOptStatusContains` keeps the Regions whose status it lists;
///   a value outside the model's enum (`ENABLED`, `ENABLING`, `DISABLING`,
///   `DISABLED`, `ENABLED_BY_DEFAULT`) is a `ValidationException`;
/// * `MaxResults` is 1 to 50, else `ValidationException`. Without it the
///   layer pages by 4: AWS does not document its default page size, and a
///   client must follow `NextToken` anyway (the account model's paginator);
///   a `NextToken` the layer did not give is a `ValidationException`;
/// * `AccountId` asks about a member account; the layer answers every
///   account with the same Regions.
///
/// The layer records the call ([`World::answered`]).
pub fn account_regions(world: World) -> impl Rule {
    move |request: &Request, _: &Traffic| {
        if !request.is("account", "ListRegions") {
            return Decision::Forward;
        }
        world.answering(request);
        let body = json_body(request);
        const STATUSES: [&str; 5] = [
            "ENABLED",
            "ENABLING",
            "DISABLING",
            "DISABLED",
            "ENABLED_BY_DEFAULT",
        ];
        let wanted: Option<Vec<String>> = body
            .get("RegionOptStatusContains")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            });
        if let Some(bad) = wanted
            .iter()
            .flatten()
            .find(|s| !STATUSES.contains(&s.as_str()))
        {
            return Decision::Respond(rest_json_error(
                400,
                "ValidationException",
                &format!("Invalid RegionOptStatus: {bad}"),
            ));
        }
        let size = match body.get("MaxResults").map(Value::as_u64) {
            None => 4,
            Some(Some(n)) if (1..=50).contains(&n) => n as usize,
            Some(_) => {
                return Decision::Respond(rest_json_error(
                    400,
                    "ValidationException",
                    "MaxResults must be between 1 and 50",
                ));
            }
        };
        let regions: Vec<Value> = world
            .listed_regions()
            .into_iter()
            .filter(|(_, status)| wanted.as_ref().is_none_or(|w| w.contains(status)))
            .map(|(name, status)| json!({"RegionName": name, "RegionOptStatus": status}))
            .collect();
        let token = body.get("NextToken").and_then(Value::as_str);
        let Some((regions, next)) = page(&regions, token, size) else {
            return Decision::Respond(rest_json_error(
                400,
                "ValidationException",
                "The NextToken is not valid",
            ));
        };
        let mut answer = json!({ "Regions": regions });
        if let Some(next) = next {
            answer["NextToken"] = json!(next);
        }
        Decision::Respond(json_answer("application/json", answer))
    }
}
