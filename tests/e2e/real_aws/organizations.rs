//! Organizations: throttling, and accounts without `Status`.

use serde_json::{Value, json};
use trailkey_testkit::rules;
use trailkey_testkit::{Moto, Run, transcript};

use super::{call, outcomes};

/// AWS answers a request rate it does not accept with
/// `ThrottlingException` (HTTP 400); the SDK's standard strategy retries it
/// with backoff. trailkey bounds that at 5 attempts and says each retry on
/// stderr: throttled twice, the plan goes on; throttled every time, it
/// stops after the 5th attempt with the error.
#[test]
fn throttling_is_retried_on_stderr_and_bounded_at_five_attempts() {
    let moto = Moto::start();
    let seed = moto.seed();
    for (throttled, expect) in [(2, 2), (usize::MAX, 1)] {
        let proxy = moto.layer_with(vec![Box::new(
            move |request: &trailkey_testkit::proxy::Request,
                  traffic: &trailkey_testkit::proxy::Traffic| {
                if request.is("organizations", "DescribeOrganization")
                    && traffic.arrived("organizations", "DescribeOrganization") <= throttled
                {
                    trailkey_testkit::proxy::Decision::Respond(rules::json_error(
                        "ThrottlingException",
                        "Rate exceeded",
                    ))
                } else {
                    trailkey_testkit::proxy::Decision::Forward
                }
            },
        )]);
        let out = Run::new(&moto)
            .via(&proxy)
            .config(&seed.config)
            .args(["plan", "--detailed-exitcode"])
            .run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(expect), "{}", transcript(&out));
        let attempts = proxy
            .exchanges()
            .iter()
            .filter(|e| e.is("organizations", "DescribeOrganization"))
            .count();
        let retries: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("retrying") && l.contains("DescribeOrganization"))
            .collect();
        if expect == 2 {
            assert_eq!(attempts, 3, "{stderr}");
            assert_eq!(retries.len(), 2, "{stderr}");
            assert!(retries[1].contains("(attempt 3 of 5)"), "{stderr}");
        } else {
            assert_eq!(attempts, 5, "bounded: {stderr}");
            assert_eq!(retries.len(), 4, "{stderr}");
            assert!(retries[3].contains("(attempt 5 of 5)"), "{stderr}");
            assert!(stderr.contains("ThrottlingException"), "{stderr}");
            assert!(stderr.contains("hint:"), "{stderr}");
        }
    }
}

#[test]
fn account_answers_carry_state_only_as_organizations_sends_them_now() {
    let moto = Moto::start();
    let seed = moto.seed();
    let calls = json!([
        call("organizations:ListAccounts", json!({})),
        call(
            "organizations:DescribeAccount",
            json!({"AccountId": seed.log_archive})
        ),
    ]);
    let accounts = |results: &[Value]| -> Vec<Value> {
        let mut all = results[0]["response"]["Accounts"]
            .as_array()
            .unwrap()
            .clone();
        all.push(results[1]["response"]["Account"].clone());
        all
    };
    // moto alone still sends the retired Status beside State.
    let direct = moto.calls(None, &calls);
    assert_eq!(outcomes(&direct), ["ok", "ok"]);
    assert!(
        accounts(&direct)
            .iter()
            .all(|a| a["Status"] == "ACTIVE" && a["State"] == "ACTIVE")
    );
    // Through the rule, State only.
    let rule = moto.proxy_with(vec![Box::new(
        rules::organizations_accounts_have_no_status(),
    )]);
    let through = moto.calls(Some(&rule), &calls);
    assert_eq!(outcomes(&through), ["ok", "ok"]);
    let seen = accounts(&through);
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert!(
        seen.iter()
            .all(|a| a.get("Status").is_none() && a["State"] == "ACTIVE"),
        "{seen:#?}"
    );
}
