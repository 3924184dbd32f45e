//! `trailkey lambda` end to end: the real binary as a Lambda custom runtime,
//! under a local Lambda Runtime API (`trailkey_testkit::lambda_api`), against moto
//! through the real-AWS layer.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use serde_json::{Value, json};
use trailkey_testkit::emf;
use trailkey_testkit::lambda_api::{
    FUNCTION_ARN, RuntimeApi, appending, kms_event, update_trail_event,
};
use trailkey_testkit::rules::CLOUDTRAIL;
use trailkey_testkit::{
    CountingServer, Moto, Run, Seed, is_write, on_sse_s3, repo_root, trailkey_bin, trailkey_keys,
    transcript,
};

const WAIT: Duration = Duration::from_secs(60);

/// A running `trailkey lambda`, its stdout and stderr (the function's log)
/// going to files, so that a long run never blocks on a full pipe.
struct Function {
    child: Child,
    log: tempfile::NamedTempFile,
}

/// `run` as the function `api` serves, its stdout and stderr going to the
/// log.
fn spawn_function(api: &RuntimeApi, run: Run) -> Function {
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = run
        .envs(api.lambda_env())
        .command()
        .stdout(appending(&log))
        .stderr(appending(&log))
        .spawn()
        .expect("start the function");
    Function { child, log }
}

/// `trailkey lambda` serving `api`, with AWS where `run` points, the config
/// at `config` (`TRAILKEY_CONFIG`) and `mode` (`TRAILKEY_MODE`).
fn start_function(api: &RuntimeApi, run: Run, config: &Path, mode: &str) -> Function {
    let account = FUNCTION_ARN.split(':').nth(4).unwrap();
    start_function_in(api, run, config, mode, account)
}

/// [`start_function`] deployed in `account`: `AWS_ACCOUNT_ID` set to it,
/// as the template sets it to the function's own account, whose role's
/// credentials Lambda hands it.
fn start_function_in(
    api: &RuntimeApi,
    run: Run,
    config: &Path,
    mode: &str,
    account: &str,
) -> Function {
    let run = run
        .env("AWS_ACCOUNT_ID", account)
        .arg("lambda")
        .env("TRAILKEY_CONFIG", config)
        .env("TRAILKEY_MODE", mode);
    spawn_function(api, run)
}

/// Stops the function and returns what it logged.
fn stop(mut function: Function) -> String {
    let _ = function.child.kill();
    let _ = function.child.wait();
    std::fs::read_to_string(function.log.path()).unwrap()
}

fn applied(seed: &Seed, moto: &Moto) {
    let out = Run::new(moto)
        .config(&seed.config)
        .args(["apply", "--auto-approve"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

fn response(api: &RuntimeApi, id: &str) -> Value {
    api.wait_result(id, WAIT).response().clone()
}

fn error(api: &RuntimeApi, id: &str) -> Value {
    api.wait_result(id, WAIT).error().clone()
}

#[test]
fn a_drift_event_in_apply_mode_repairs_then_a_second_event_is_a_no_op_plan() {
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    moto.fixture(&["drift", "trail-unencrypt"]);
    assert!(on_sse_s3(&moto.state(&seed)));

    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &seed.config, "apply");
    moto.start_recording();
    let first = api.invoke(update_trail_event(&seed));
    let r = response(&api, &first);
    assert_eq!(r["handled"], true, "{r:#}");
    assert_eq!(r["mode"], "apply");
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(r["event"]["name"], "UpdateTrail");
    assert_eq!(r["event"]["id"], "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    assert_eq!(r["plan"]["summary"]["change"], 1, "{r:#}");
    let writes = moto.recorded_writes();
    assert_eq!(writes, ["cloudtrail:UpdateTrail"]);
    let state = moto.state(&seed);
    assert!(!on_sse_s3(&state), "repaired: {state:#}");

    // The same process serves the next event: warm, on a converged setup,
    // it reads in one round what it did not keep from the first run (7
    // calls, see `a_warm_invocation_…`) and writes nothing.
    moto.start_recording();
    let second = api.invoke(update_trail_event(&seed));
    let r = response(&api, &second);
    assert_eq!(
        (r["handled"].clone(), r["applied"].clone()),
        (json!(true), json!(false)),
        "{r:#}"
    );
    assert_eq!(
        r["plan"]["summary"],
        json!({"add": 0, "change": 0, "destroy": 0})
    );
    let calls = moto.recorded();
    assert_eq!(sorted(calls.clone()), WARM_NO_OP, "{calls:?}");
    assert!(
        api.polls() >= 3,
        "one process polled for both events and the next"
    );
    let log = stop(function);
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "trailkey lambda invocation")
        .collect();
    assert_eq!(lines.len(), 2, "one JSON log line per invocation:\n{log}");
    assert_eq!(lines[0]["response"]["applied"], true);
}

/// With `trail.logging = true`, a `StopLogging` event in apply mode is
/// repaired with one `StartLogging`, and nothing else is written.
#[test]
fn a_stop_logging_event_in_apply_mode_starts_the_trail_again() {
    let moto = Moto::start();
    let seed = moto.seed();
    let text = std::fs::read_to_string(&seed.config).unwrap();
    std::fs::write(
        &seed.config,
        text.replace("[trail]\n", "[trail]\nlogging = true\n"),
    )
    .unwrap();
    applied(&seed, &moto);
    moto.fixture(&["drift", "trail-stop-logging"]);
    assert_eq!(moto.state(&seed)["trail"]["is_logging"], false);

    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &seed.config, "apply");
    let mut event = update_trail_event(&seed);
    event["detail"]["eventName"] = json!("StopLogging");
    event["detail"]["requestParameters"] = json!({"name": seed.trail_arn});
    moto.start_recording();
    let id = api.invoke(event);
    let r = response(&api, &id);
    stop(function);
    assert_eq!(r["handled"], true, "{r:#}");
    assert_eq!(r["event"]["name"], "StopLogging");
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(moto.recorded_writes(), ["cloudtrail:StartLogging"]);
    assert_eq!(moto.state(&seed)["trail"]["is_logging"], true);
}

#[test]
fn the_same_event_in_plan_mode_reports_the_drift_and_writes_nothing() {
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    moto.fixture(&["drift", "trail-unencrypt"]);
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &seed.config, "plan");
    moto.start_recording();
    let id = api.invoke(update_trail_event(&seed));
    let r = response(&api, &id);
    stop(function);
    assert_eq!(
        (r["handled"].clone(), r["applied"].clone()),
        (json!(true), json!(false)),
        "{r:#}"
    );
    assert_eq!(r["mode"], "plan");
    let changed: Vec<&Value> = r["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no-op")
        .collect();
    assert_eq!(changed.len(), 1, "{r:#}");
    assert_eq!(changed[0]["address"], "trail_encryption");
    assert!(moto.recorded().iter().all(|c| !is_write(c)));
    assert!(on_sse_s3(&moto.state(&seed)), "nothing written");
}

#[test]
fn an_unrelated_event_is_acknowledged_with_no_aws_call() {
    let moto = Moto::start();
    let seed = moto.seed();
    let nobody = CountingServer::start();
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::at(&nobody.endpoint), &seed.config, "apply");
    let mut other_trail = update_trail_event(&seed);
    other_trail["detail"]["requestParameters"]["name"] = json!("someone-elses-trail");
    // A trail of the same name in another account: not the trail (matched
    // by ARN: account, Region and name).
    let mut same_name_elsewhere = update_trail_event(&seed);
    same_name_elsewhere["detail"]["requestParameters"]["name"] = json!(seed.trail_name);
    same_name_elsewhere["detail"]["recipientAccountId"] = json!("999999999999");
    same_name_elsewhere["account"] = json!("999999999999");
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    for event in [other_trail, same_name_elsewhere, s3] {
        let id = api.invoke(event);
        let r = response(&api, &id);
        assert_eq!(r["handled"], false, "{r:#}");
        assert!(r["reason"].as_str().is_some_and(|s| !s.is_empty()), "{r:#}");
    }
    stop(function);
    assert_eq!(nobody.connections(), 0, "no AWS request");
}

/// Disables trailkey's key `arn` behind its back, starts moto's recorder,
/// and hands the function the `DisableKey` event CloudTrail records (by key
/// ID): its response.
fn disable_the_key_and_send_its_event(
    moto: &Moto,
    seed: &Seed,
    api: &RuntimeApi,
    arn: &str,
) -> Value {
    moto.fixture(&[
        "drift",
        "key-disable",
        "--security-tooling",
        &seed.security_tooling,
    ]);
    moto.start_recording();
    let id = arn.rsplit('/').next().unwrap();
    response(api, &api.invoke(kms_event(seed, "DisableKey", id)))
}

fn sorted(mut calls: Vec<String>) -> Vec<String> {
    calls.sort_unstable();
    calls
}

/// What a warm invocation reads on a converged setup, as moto's recorder
/// names the calls: the trail, its status and tags, the alias, and the key's
/// policy, rotation and tags; no STS, Organizations or S3 call.
const WARM_NO_OP: [&str; 7] = [
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:ListTags",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
];

/// The first invocation of a process observes as a trailkey run does (the
/// no-op plan's 10 calls, `AssumeRole` among them); the second, warm,
/// reads at once only what it did not keep ([`WARM_NO_OP`]). Drifts after
/// it are repaired by the warm process with the one write each needs
/// (`UpdateTrail` for the trail, `EnableKey` for the key) and verified,
/// without asking again who runs or assuming the role again; the next
/// invocation, once KMS shows the `EnableKey` (the layer's window: the
/// write's own event comes later than that), is warm and finds nothing
/// to do.
#[test]
fn a_warm_invocation_reads_what_it_did_not_keep_and_repairs_the_drifts_after_it() {
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &seed.config, "apply");

    moto.start_recording();
    let r = response(&api, &api.invoke(schedule_event(1)));
    assert_eq!(r["applied"], false, "{r:#}");
    let cold = moto.recorded();
    assert_eq!(cold.len(), 10, "{cold:?}");
    for call in ["sts:GetCallerIdentity", "sts:AssumeRole"] {
        assert!(cold.iter().any(|c| c == call), "{call}: {cold:?}");
    }

    moto.start_recording();
    let r = response(&api, &api.invoke(schedule_event(2)));
    assert_eq!(r["plan"]["summary"]["change"], 0, "{r:#}");
    assert_eq!(sorted(moto.recorded()), WARM_NO_OP);

    let not_cold = |calls: &[String]| {
        assert!(
            calls
                .iter()
                .all(|c| !c.starts_with("sts:") && !c.starts_with("organizations:")),
            "{calls:?}"
        );
    };
    moto.fixture(&["drift", "trail-unencrypt"]);
    moto.start_recording();
    let r = response(&api, &api.invoke(update_trail_event(&seed)));
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(moto.recorded_writes(), ["cloudtrail:UpdateTrail"]);
    not_cold(&moto.recorded());
    let state = moto.state(&seed);
    let key = state["trail"]["kms_key_id"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with(&format!(
            "arn:aws:kms:us-east-1:{}:key/",
            seed.security_tooling
        )),
        "repaired: {state:#}"
    );

    let r = disable_the_key_and_send_its_event(&moto, &seed, &api, &key);
    assert_eq!(r["applied"], true, "{r:#}");
    assert_eq!(moto.recorded_writes(), ["kms:EnableKey"]);
    not_cold(&moto.recorded());
    let state = moto.state(&seed);
    assert_eq!(
        trailkey_testkit::key_with_arn(&state, &key)["key_state"],
        "Enabled",
        "{state:#}"
    );

    std::thread::sleep(trailkey_testkit::LAYER_WINDOW);
    moto.start_recording();
    let r = response(&api, &api.invoke(schedule_event(3)));
    assert_eq!(r["plan"]["summary"]["change"], 0, "{r:#}");
    assert_eq!(sorted(moto.recorded()), WARM_NO_OP);
    stop(function);
}

#[test]
fn a_call_on_another_key_costs_four_reads_until_the_first_plan_then_nothing() {
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    // Another team's key in the Security Tooling account.
    let create = json!([{"op": "kms:CreateKey", "params": {"Description": "GuardDuty findings"}}]);
    let other = moto.calls_as(&seed.security_tooling, None, &create)[0]["response"]["KeyMetadata"]
        ["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &seed.config, "apply");

    moto.start_recording();
    let r = response(&api, &api.invoke(kms_event(&seed, "DisableKey", &other)));
    assert_eq!(r["handled"], false, "{r:#}");
    assert!(
        r["reason"].as_str().unwrap().contains("another key"),
        "{r:#}"
    );
    assert_eq!(
        sorted(moto.recorded()),
        [
            "cloudtrail:GetTrail",
            "kms:DescribeKey",
            "kms:ListResourceTags",
            "sts:AssumeRole"
        ],
        "the trail's key, the alias's key and the key's tags"
    );

    // trailkey's key disabled: it is the trail's key, so the plan runs and
    // repairs; the process now knows the key.
    let ours = moto.state(&seed)["trail"]["kms_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = disable_the_key_and_send_its_event(&moto, &seed, &api, &ours);
    assert_eq!(
        (r["handled"].clone(), r["applied"].clone()),
        (json!(true), json!(true)),
        "{r:#}"
    );
    let calls = moto.recorded();
    assert_eq!(
        sorted(calls[..2].to_vec()),
        ["cloudtrail:GetTrail", "sts:AssumeRole"]
    );
    let writes: Vec<&String> = calls.iter().filter(|c| is_write(c)).collect();
    assert_eq!(writes, ["kms:EnableKey"]);
    let state = moto.state(&seed);
    let key = trailkey_testkit::key_with_arn(&state, &ours);
    assert_eq!(key["key_state"], "Enabled", "{state:#}");

    moto.start_recording();
    let r = response(&api, &api.invoke(kms_event(&seed, "PutKeyPolicy", &other)));
    assert_eq!(r["handled"], false, "{r:#}");
    assert_eq!(moto.recorded(), Vec::<String>::new(), "no AWS call");
    stop(function);
}

#[test]
fn a_bad_config_or_a_bad_event_gives_an_error_response_and_no_aws_call() {
    let moto = Moto::start();
    let seed = moto.seed();
    let nobody = CountingServer::start();

    let bad = moto.dir.path().join("bad.toml");
    std::fs::write(&bad, "[accounts]\nsecurity_tooling = \"1111\"\n").unwrap();
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::at(&nobody.endpoint), &bad, "apply");
    let id = api.invoke(update_trail_event(&seed));
    let e = error(&api, &id);
    assert_eq!(e["errorType"], "trailkey.ConfigError", "{e}");
    assert!(
        e["errorMessage"].as_str().unwrap().contains("bad.toml"),
        "{e}"
    );
    stop(function);

    // A good config, but an event that is not from EventBridge, or a bad mode.
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::at(&nobody.endpoint), &seed.config, "apply");
    let id = api.invoke(json!({"hello": "world"}));
    let e = error(&api, &id);
    assert_eq!(e["errorType"], "trailkey.BadEvent", "{e}");
    stop(function);
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::at(&nobody.endpoint), &seed.config, "repair");
    let id = api.invoke(update_trail_event(&seed));
    let e = error(&api, &id);
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .contains("TRAILKEY_MODE"),
        "{e}"
    );
    stop(function);
    assert_eq!(nobody.connections(), 0, "no AWS request");
}

/// The function's JSON log lines: every line of `log` that is a JSON object.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

/// A body that is not JSON, or JSON that is not an event trailkey accepts:
/// an error response of trailkey's own type, saying why, one JSON log line
/// and one line of metrics (an error) each, and no AWS call. The process
/// serves the next event as usual.
#[test]
fn a_body_that_is_not_json_or_not_an_event_is_a_bad_event_with_one_log_line() {
    let moto = Moto::start();
    let seed = moto.seed();
    let nobody = CountingServer::start();
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::at(&nobody.endpoint), &seed.config, "apply");
    let bad: [(&[u8], &str); 11] = [
        (b"not json {", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe\x1b[2J", "not JSON"),
        (b"{\"source\": \"aws.events\"} trailing", "not JSON"),
        // JSON a parser that only skips over values accepts, but that does
        // not parse into a value: a number out of range, a lone surrogate,
        // a string that is not UTF-8.
        (b"{\"x\": 1e400}", "not JSON"),
        (b"\"\\ud800\"", "not JSON"),
        (b"{\"a\": \"\xff\"}", "not JSON"),
        (b"{\"hello\": \"world\"}", "not an EventBridge event"),
        (b"[1, 2]", "not an EventBridge event"),
        (b"{\"Records\": \"x\"}", "not an SQS batch"),
        (b"{\"Records\": [{\"body\": \"{}\"}]}", "no \"messageId\""),
    ];
    for (body, why) in bad {
        let e = error(&api, &api.invoke_raw(body));
        assert_eq!(e["errorType"], "trailkey.BadEvent", "{e}");
        let message = e["errorMessage"].as_str().unwrap();
        assert!(message.contains(why), "{why}: {e}");
        assert!(!message.chars().any(char::is_control), "escaped: {e}");
    }
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let r = response(&api, &api.invoke(s3));
    assert_eq!(r["handled"], false, "{r:#}");
    let log = stop(function);
    let lines = json_lines(&log);
    let (metrics, lines): (Vec<Value>, Vec<Value>) =
        lines.into_iter().partition(|l| l.get("_aws").is_some());
    assert_eq!(
        lines.len(),
        bad.len() + 1,
        "one JSON line per invocation:\n{log}"
    );
    for line in &lines[..bad.len()] {
        assert_eq!(line["level"], "error", "{line}");
        assert_eq!(line["error_type"], "trailkey.BadEvent", "{line}");
    }
    let said: Vec<(Value, Value)> = metric_lines(&log)
        .iter()
        .map(|(line, m)| (line["Outcome"].clone(), json!(m["Errors"])))
        .collect();
    let mut expected = vec![(json!("bad_event"), json!(1.0)); bad.len()];
    expected.push((json!("ignored"), json!(0.0)));
    assert_eq!(said, expected, "one line of metrics per invocation:\n{log}");
    assert_eq!(
        log.lines().filter(|l| !l.trim().is_empty()).count(),
        lines.len() + metrics.len(),
        "nothing else logged:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "{log}");
    assert_eq!(nobody.connections(), 0, "no AWS request");
}

/// The function's lines of metrics in `log`, in order: each line that is
/// a JSON object with `_aws`, which must be a line of the embedded metric
/// format (`trailkey_testkit::emf`) defining each metric once; with its
/// metrics' values by name.
fn metric_lines(log: &str) -> Vec<(Value, std::collections::BTreeMap<String, f64>)> {
    log.lines()
        .filter(|l| emf::is_emf(l))
        .map(|l| {
            let metrics = emf::metrics(l).unwrap_or_else(|e| panic!("{e}"));
            let values: std::collections::BTreeMap<String, f64> =
                metrics.iter().map(|m| (m.name.clone(), m.value)).collect();
            assert_eq!(values.len(), metrics.len(), "each metric once: {l}");
            (serde_json::from_str(l).unwrap(), values)
        })
        .collect()
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64
}

/// Each invocation writes one line of CloudWatch metrics to stdout, in the
/// embedded metric format, after its log line: a converged event is in
/// sync, a drift event in `apply` mode found and repaired one change, a bad
/// event and a run that fails (the configured trail is gone) are one error
/// each; each line stamped with the time it was written and the time the
/// invocation took. The metrics are those the template's alarms watch:
/// their namespace, their metric names, and their one dimension, the name
/// Lambda gives the function (`AWS_LAMBDA_FUNCTION_NAME`), which the alarms
/// take from the function (`Ref`).
#[test]
fn each_invocation_writes_one_line_of_metrics_which_the_templates_alarms_watch() {
    use trailkey_testkit::lambda_api::FUNCTION_NAME;
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    let started = now_ms();
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &seed.config, "apply");
    let r = response(&api, &api.invoke(update_trail_event(&seed)));
    assert_eq!(
        (r["handled"].clone(), r["applied"].clone()),
        (json!(true), json!(false)),
        "{r:#}"
    );
    moto.fixture(&["drift", "trail-unencrypt"]);
    let r = response(&api, &api.invoke(update_trail_event(&seed)));
    assert_eq!(r["applied"], true, "{r:#}");
    assert!(!on_sse_s3(&moto.state(&seed)), "repaired");
    let e = error(&api, &api.invoke(json!({"hello": "world"})));
    assert_eq!(e["errorType"], "trailkey.BadEvent", "{e}");
    let log = stop(function);

    let gone = moto.dir.path().join("gone.toml");
    std::fs::write(
        &gone,
        std::fs::read_to_string(&seed.config)
            .unwrap()
            .replace("name = \"org-trail\"", "name = \"gone\""),
    )
    .unwrap();
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &gone, "plan");
    let e = error(&api, &api.invoke(schedule_event(1)));
    assert!(e["errorMessage"].as_str().unwrap().contains("gone"), "{e}");
    let failed_log = stop(function);
    let ended = now_ms();

    let mut lines = metric_lines(&log);
    lines.extend(metric_lines(&failed_log));
    let said: Vec<(&str, &str, [f64; 3])> = lines
        .iter()
        .map(|(line, m)| {
            (
                line["Outcome"].as_str().unwrap(),
                line["Mode"].as_str().unwrap(),
                [m["DriftFound"], m["DriftRepaired"], m["Errors"]],
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("in_sync", "apply", [0.0, 0.0, 0.0]),
            ("repaired", "apply", [1.0, 1.0, 0.0]),
            ("bad_event", "apply", [0.0, 0.0, 1.0]),
            ("failed", "plan", [0.0, 0.0, 1.0]),
        ],
        "one line of metrics per invocation:\n{log}\n{failed_log}"
    );
    for (line, m) in &lines {
        let at = line["_aws"]["Timestamp"].as_f64().unwrap();
        assert!(
            (started..=ended).contains(&at),
            "{at} not within the test: {line}"
        );
        assert!(
            m["HandlingTime"] >= 0.0 && m["HandlingTime"] <= ended - started,
            "{line}"
        );
        assert_eq!(line["FunctionName"], FUNCTION_NAME, "{line}");
    }
    // A run against moto takes a measurable time.
    assert!(lines[1].1["HandlingTime"] > 0.0, "{}", lines[1].0);
    // Each line of metrics follows its invocation's log line.
    let order: Vec<bool> = json_lines(&log)
        .iter()
        .map(|l| l.get("_aws").is_some())
        .collect();
    assert_eq!(
        order,
        [false, true, false, true, false, true],
        "log line, then metrics:\n{log}"
    );

    // What the template's alarms watch is what the function wrote.
    let written = emf::metrics(&lines[0].0.to_string()).unwrap();
    for (key_account, run_from) in MODES {
        let template = trailkey_testkit::cloudformation_with(
            TEMPLATE,
            &[("KeyAccount", key_account), ("RunFrom", run_from)],
        );
        let alarms = metric_alarms(&template);
        let mut watched: Vec<&str> = alarms
            .iter()
            .map(|a| a["MetricName"].as_str().unwrap())
            .collect();
        watched.sort_unstable();
        assert_eq!(watched, ["DriftFound", "Errors"], "{run_from}");
        for alarm in alarms {
            let name = alarm["MetricName"].as_str().unwrap();
            let metric = written
                .iter()
                .find(|m| m.name == name)
                .unwrap_or_else(|| panic!("the function writes no {name}"));
            assert_eq!(alarm["Namespace"], metric.namespace.as_str(), "{name}");
            let dimensions: Vec<(&str, Value)> = alarm["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| (d["Name"].as_str().unwrap(), d["Value"].clone()))
                .collect();
            // Lambda names the function as the template does, and the
            // function's name is the dimension's value.
            let written: Vec<(&str, Value)> = metric
                .dimensions
                .iter()
                .map(|(d, v)| {
                    assert_eq!((d.as_str(), v.as_str()), ("FunctionName", FUNCTION_NAME));
                    (d.as_str(), json!({"Fn::Ref": "Function"}))
                })
                .collect();
            assert_eq!(dimensions, written, "{name}");
            assert!(
                alarm.get("Unit").is_none() || alarm["Unit"] == metric.unit.as_deref().unwrap(),
                "{name}: an alarm with another unit sees no data"
            );
        }
    }
}

/// The alarms of `template` on trailkey's own metrics (any namespace but
/// AWS's), their properties.
fn metric_alarms(template: &Value) -> Vec<Value> {
    template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|r| r["Properties"].clone())
        .filter(|p| !p["Namespace"].as_str().unwrap().starts_with("AWS/"))
        .collect()
}

/// An SQS batch as Lambda's event source mapping delivers it: one record
/// per (messageId, body).
fn sqs_batch(records: &[(String, String)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({"messageId": id, "receiptHandle": format!("handle-{id}"), "body": body,
                   "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764504000000",
                                  "SenderId": "AIDAIEVENTBRIDGE", "ApproximateFirstReceiveTimestamp": "1764504000001"},
                   "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:trailkey-events",
                   "awsRegion": "us-east-1"})
        })
        .collect();
    json!({"Records": records})
}

/// `n` records, `prefix-0` to `prefix-{n-1}`, each `event` with its own ID.
fn records_of(prefix: &str, n: usize, event: &Value) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let mut e = event.clone();
            e["id"] = json!(format!("{prefix}-event-{i}"));
            (format!("{prefix}-{i}"), e.to_string())
        })
        .collect()
}

/// The log line that sums up each batch.
fn batch_lines(log: &str) -> Vec<Value> {
    json_lines(log)
        .into_iter()
        .filter(|l| l["message"] == "trailkey lambda invocation" && l["batch"].is_object())
        .collect()
}

/// 200 relevant events coalesced by the queue into one batch run one plan:
/// the no-op plan's 10 AWS calls, not 200 plans' 2,000.
#[test]
fn two_hundred_relevant_events_in_one_sqs_batch_run_one_plan() {
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &seed.config, "apply");
    let records = records_of("update", 200, &update_trail_event(&seed));
    moto.start_recording();
    let r = response(&api, &api.invoke(sqs_batch(&records)));
    assert_eq!(r, json!({"batchItemFailures": []}));
    let calls = moto.recorded();
    eprintln!(
        "an SQS batch of 200 relevant events: {} AWS calls",
        calls.len()
    );
    assert_eq!(calls.len(), 10, "one no-op plan: {calls:?}");
    assert!(calls.iter().all(|c| !is_write(c)), "{calls:?}");
    let log = stop(function);
    let lines = batch_lines(&log);
    assert_eq!(lines.len(), 1, "one line for the batch:\n{log}");
    assert_eq!(
        lines[0]["batch"],
        json!({"records": 200, "relevant": 200, "ignored": 0, "failed": 0, "outcome": "planned"})
    );
    assert_eq!(
        lines[0]["plan"]["summary"],
        json!({"add": 0, "change": 0, "destroy": 0})
    );
}

/// A batch with a body that is not JSON, one that is not an event, an
/// ignored event and a relevant one: the two bad records' messageIds in
/// `batchItemFailures` (a messageId is untrusted text: escaped in the log),
/// the rest done, one plan.
#[test]
fn a_mixed_sqs_batch_reports_the_undecodable_records_and_runs_one_plan() {
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &seed.config, "apply");
    let hostile = "bad\u{1b}[2J\nforged";
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let mut records = records_of("update", 2, &update_trail_event(&seed));
    records.push((hostile.to_owned(), "not json {".to_owned()));
    records.push((
        "not-an-event".to_owned(),
        json!({"hello": "world"}).to_string(),
    ));
    records.extend(records_of("s3", 3, &s3));
    moto.start_recording();
    let r = response(&api, &api.invoke(sqs_batch(&records)));
    assert_eq!(
        r,
        json!({"batchItemFailures": [{"itemIdentifier": hostile}, {"itemIdentifier": "not-an-event"}]})
    );
    assert_eq!(moto.recorded().len(), 10, "{:?}", moto.recorded());
    let log = stop(function);
    assert!(!log.contains('\u{1b}'), "{log}");
    let lines = batch_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert_eq!(
        lines[0]["batch"],
        json!({"records": 7, "relevant": 2, "ignored": 3, "failed": 2, "outcome": "planned"})
    );
    assert_eq!(
        (&lines[0]["level"], &lines[0]["error_type"]),
        (&json!("error"), &json!("trailkey.BadEvent")),
        "records that are not events make the line an error: {}",
        lines[0]
    );
    assert_eq!(
        lines[0]["failures"][0]["message_id"],
        "bad\\u{1b}[2J\\nforged"
    );
    assert!(
        lines[0]["failures"][1]["why"]
            .as_str()
            .unwrap()
            .contains("not an EventBridge event"),
        "{}",
        lines[0]
    );
}

/// A batch of only events trailkey does not act on: no plan, no AWS call.
#[test]
fn an_sqs_batch_of_irrelevant_events_makes_no_aws_call() {
    let moto = Moto::start();
    let seed = moto.seed();
    let nobody = CountingServer::start();
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::at(&nobody.endpoint), &seed.config, "apply");
    let mut other_trail = update_trail_event(&seed);
    other_trail["detail"]["requestParameters"]["name"] = json!("someone-elses-trail");
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let mut records = records_of("other-trail", 100, &other_trail);
    records.extend(records_of("s3", 100, &s3));
    let r = response(&api, &api.invoke(sqs_batch(&records)));
    assert_eq!(r, json!({"batchItemFailures": []}));
    let log = stop(function);
    assert_eq!(nobody.connections(), 0, "no AWS request");
    let lines = batch_lines(&log);
    assert_eq!(
        lines[0]["batch"],
        json!({"records": 200, "relevant": 0, "ignored": 200, "failed": 0, "outcome": "ignored"}),
        "{log}"
    );
}

/// `trailkey -c PATH lambda` reads PATH, whatever `TRAILKEY_CONFIG` says;
/// a bad `TRAILKEY_VERBOSE` is a config error.
#[test]
fn c_wins_over_trailkey_config_and_a_bad_trailkey_verbose_is_refused() {
    let moto = Moto::start();
    let seed = moto.seed();
    let nobody = CountingServer::start();
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let start = |verbose: &str| {
        let api = RuntimeApi::start();
        let run = Run::at(&nobody.endpoint)
            .config(&seed.config)
            .arg("lambda")
            .env("TRAILKEY_CONFIG", "/nonexistent/trailkey.toml")
            .env("TRAILKEY_VERBOSE", verbose);
        let function = spawn_function(&api, run);
        (api, function)
    };
    let (api, function) = start("1");
    let r = response(&api, &api.invoke(s3.clone()));
    stop(function);
    assert_eq!(r["handled"], false, "the config of -c was read: {r:#}");
    let (api, function) = start("loud");
    let e = error(&api, &api.invoke(s3));
    stop(function);
    assert_eq!(e["errorType"], "trailkey.ConfigError", "{e}");
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .contains("TRAILKEY_VERBOSE"),
        "{e}"
    );
    assert_eq!(nobody.connections(), 0);
}

/// Credentials never appear in what the function says: not in its log at
/// the most verbose level (`TRAILKEY_VERBOSE=2`: every AWS call), not in a
/// response, not in an error. Both kinds of AssumeRole run (aws-config's for
/// `roles.management`, trailkey's own for Security Tooling), in a repair
/// and in a run that fails.
#[test]
fn credentials_never_appear_in_the_functions_log_or_responses() {
    const ACCESS_KEY: &str = "AKIATRAILKEYLAMBDA01";
    const SECRET: &str = "Sup3rSecretLambdaKey/trailkey+TEST000000";
    const TOKEN: &str = "IQoJb3JpZ2luX2VjLAMBDASESSIONTOKENtrailkey";
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    moto.fixture(&["drift", "trail-unencrypt"]);
    seed.add_management_role();
    let gone = moto.dir.path().join("gone.toml");
    std::fs::write(
        &gone,
        std::fs::read_to_string(&seed.config)
            .unwrap()
            .replace("name = \"org-trail\"", "name = \"gone\""),
    )
    .unwrap();
    let proxy = moto.proxy();
    let mut said = Vec::new();
    let mut results = Vec::new();
    for (config, event) in [
        (&seed.config, update_trail_event(&seed)),
        (&gone, schedule_event(0)),
    ] {
        let api = RuntimeApi::start();
        let run = Run::new(&moto)
            .via(&proxy)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", TOKEN)
            .env("TRAILKEY_VERBOSE", "2");
        let function = start_function(&api, run, config, "apply");
        let id = api.invoke(event);
        let result = api.wait_result(&id, WAIT);
        said.push(format!("{result:?}"));
        said.push(stop(function));
        results.push(result);
    }
    assert_eq!(results[0].response()["applied"], true, "{}", said[0]);
    let e = results[1].error();
    assert!(
        e["errorMessage"].as_str().unwrap().contains("gone"),
        "the missing trail: {e}"
    );
    for log in [&said[1], &said[3]] {
        assert!(
            log.contains("aws call"),
            "TRAILKEY_VERBOSE=2 logs every AWS call: {log}"
        );
    }

    let (assumed, handed_out) = trailkey_testkit::assumed_credentials(&proxy);
    assert!(assumed >= 3, "both roles, in both processes: {assumed}");
    let mut secrets = vec![ACCESS_KEY.to_owned(), SECRET.to_owned(), TOKEN.to_owned()];
    secrets.extend(handed_out);
    for text in &said {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} leaked: {text}");
        }
        assert!(!text.contains("ASIA"), "{text}");
        assert!(!text.to_lowercase().contains("secret"), "{text}");
    }
}

/// A scheduled event, as EventBridge Scheduler's rule target gets it.
fn schedule_event(n: usize) -> Value {
    json!({"version": "0", "id": format!("schedule-{n}"), "detail-type": "Scheduled Event",
           "source": "aws.events", "region": "us-east-1", "resources": [], "detail": {}})
}

/// Cold start and warm invocations, timed: run with `make bench` (release
/// build). Cold: from starting the process to its first response (config,
/// clients, the first plan, on a converged setup). Warm: from the event's
/// hand-out to its response, as the Runtime API sees it, for an invocation
/// that finds nothing to do, one that repairs the trail (unencrypted
/// behind trailkey's back: `UpdateTrail`) and one that repairs the key
/// (disabled: `EnableKey`). Directly against moto and with 50 ms added to
/// every AWS request (the latency proxy of `make bench`); each kind's AWS
/// calls as moto recorded them.
#[test]
#[ignore = "a measurement, run by make bench"]
fn lambda_cold_start_and_warm_invocation_times() {
    const RUNS: usize = 10;
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    let mut report = Vec::new();
    for latency in [0, 50] {
        let (proxy, endpoint) = if latency == 0 {
            (None, moto.endpoint.clone())
        } else {
            let (child, endpoint) = trailkey_testkit::latency_proxy(&moto.endpoint, 50);
            (Some(child), endpoint)
        };
        let api = RuntimeApi::start();
        moto.start_recording();
        let started = std::time::Instant::now();
        let function = start_function(&api, Run::at(&endpoint), &seed.config, "apply");
        let first = api.invoke(schedule_event(0));
        let cold = response(&api, &first);
        let cold_ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(cold["applied"], false, "{cold:#}");
        let cold_calls = moto.recorded().len();
        // One warm invocation of `event`, after `drift`: its time in ms and
        // its calls; it wrote `writes`.
        let timed = |drift: &dyn Fn(), event: Value, writes: &[&str]| {
            drift();
            moto.start_recording();
            let id = api.invoke(event);
            let invocation = api.wait_result(&id, WAIT);
            let r = invocation.response();
            assert_eq!(r["applied"], !writes.is_empty(), "{r:#}");
            assert_eq!(moto.recorded_writes(), writes);
            (
                invocation.took.as_secs_f64() * 1000.0,
                moto.recorded().len(),
            )
        };
        let key = moto.state(&seed)["trail"]["kms_key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let key_id = key.rsplit('/').next().unwrap().to_owned();
        let nothing = || {};
        let unencrypt = || {
            moto.fixture(&["drift", "trail-unencrypt"]);
        };
        let disable = || {
            moto.fixture(&[
                "drift",
                "key-disable",
                "--security-tooling",
                &seed.security_tooling,
            ]);
        };
        let mut kinds = Vec::new();
        for (kind, drift, writes) in [
            ("warm_no_drift", &nothing as &dyn Fn(), &[][..]),
            (
                "warm_repair_trail",
                &unencrypt,
                &["cloudtrail:UpdateTrail"][..],
            ),
            ("warm_repair_key", &disable, &["kms:EnableKey"][..]),
        ] {
            let mut times = Vec::new();
            let mut calls = 0;
            for n in 1..=RUNS {
                let event = match kind {
                    "warm_repair_trail" => update_trail_event(&seed),
                    "warm_repair_key" => kms_event(&seed, "DisableKey", &key_id),
                    _ => schedule_event(n),
                };
                let (ms, made) = timed(drift, event, writes);
                times.push(ms);
                calls = made;
            }
            times.sort_by(f64::total_cmp);
            let round = |ms: f64| (ms * 10.0).round() / 10.0;
            eprintln!("latency {latency} ms: {kind}: {calls} calls, {times:?}");
            kinds.push((
                kind,
                json!({
                    "calls": calls,
                    "ms": {"min": round(times[0]), "median": round(times[RUNS / 2]),
                           "max": round(times[RUNS - 1])},
                }),
            ));
        }
        stop(function);
        if let Some(mut p) = proxy {
            let _ = p.kill();
            let _ = p.wait();
        }
        eprintln!("latency {latency} ms: cold {cold_ms:.1} ms, {cold_calls} calls");
        let mut line = json!({
            "latency_ms": latency,
            "cold_start": {"calls": cold_calls, "ms": (cold_ms * 10.0).round() / 10.0},
        });
        for (kind, figures) in kinds {
            line[kind] = figures;
        }
        report.push(line);
    }
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

/// As Lambda deploys it: the binary named `bootstrap`, started with no
/// argument, with `trailkey.toml` next to it and no `TRAILKEY_CONFIG`.
#[test]
fn a_binary_named_bootstrap_runs_the_function_with_the_config_next_to_it() {
    let moto = Moto::start();
    let seed = moto.seed();
    // Hard-linked next to the binary rather than copied: a copy is a file
    // open for writing, which a child another test forks meanwhile holds
    // until it execs, and running it then fails with "Text file busy".
    let exe = trailkey_bin();
    let task = tempfile::Builder::new()
        .prefix("lambda-task-")
        .tempdir_in(exe.parent().unwrap())
        .unwrap();
    let bootstrap = task.path().join("bootstrap");
    std::fs::hard_link(&exe, &bootstrap).unwrap();
    std::fs::copy(&seed.config, task.path().join("trailkey.toml")).unwrap();
    let nobody = CountingServer::start();
    let api = RuntimeApi::start();
    let run = Run::at(&nobody.endpoint)
        .program(&bootstrap)
        .env_remove("TRAILKEY_CONFIG")
        .env_remove("TRAILKEY_MODE")
        .current_dir(std::env::temp_dir());
    let function = spawn_function(&api, run);
    let s3 =
        json!({"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}});
    let id = api.invoke(s3);
    let r = response(&api, &id);
    let log = stop(function);
    assert_eq!(r["handled"], false, "{r:#}\n{log}");
    assert_eq!(r["mode"], "plan", "the default mode");
    assert_eq!(nobody.connections(), 0);
}

/// The Lambda deployment template.
const TEMPLATE: &str = "docs/examples/lambda/template.yaml";

/// The template's modes, `KeyAccount` and `RunFrom`: in the management
/// account with the key in Security Tooling (the default) or in the
/// management account (the landing zone), and in Security Tooling as
/// CloudTrail's delegated administrator.
const MODES: [(&str, &str); 3] = [
    ("SecurityTooling", "Management"),
    ("Management", "Management"),
    ("SecurityTooling", "SecurityTooling"),
];

/// The deployment templates forward exactly the calls the function acts on
/// (an event the function handles but no rule sends would never arrive), and
/// each rule reaches the function through the queue: read as CloudFormation
/// reads them, in each mode ([`MODES`]). In the management account with
/// `KeyAccount=SecurityTooling` (the default) the key's KMS calls come from
/// the Security Tooling account, through its forwarder and the bus policy
/// that admits it; with `KeyAccount=Management` they are the management
/// account's own, and no other account may put events on its bus. In
/// Security Tooling (`RunFrom=SecurityTooling`) the KMS calls are its own,
/// and the trail's CloudTrail calls and Control Tower's lifecycle events,
/// made in the management account, come through the management forwarder,
/// whose rules are this template's trail and Control Tower rules, and the
/// bus policy that admits exactly their sources from that account.
#[test]
fn the_templates_send_exactly_the_events_the_function_handles() {
    use trailkey::lambda::event::{ALIAS_CALLS, CLOUDTRAIL_CALLS, KEY_CALLS, LIFECYCLE_EVENTS};
    let list = |names: &[&[&str]]| -> Value { json!(names.concat()) };
    let kms = list(&[&KEY_CALLS, &ALIAS_CALLS]);
    let forwarder =
        trailkey_testkit::cloudformation("docs/examples/lambda/security-tooling-forwarder.yaml");
    let management_forwarder =
        trailkey_testkit::cloudformation("docs/examples/lambda/management-forwarder.yaml");
    let resources = |t: &Value| t["Resources"].as_object().unwrap().clone();
    let forwarder_resources = resources(&forwarder);
    let management_forwarder_resources = resources(&management_forwarder);
    let get_att = |what: &str| json!({"Fn::GetAtt": what});
    let param = |name: &str| json!({"Fn::Ref": name});
    assert_eq!(
        trailkey_testkit::cloudformation_with(TEMPLATE, &[]),
        trailkey_testkit::cloudformation_with(
            TEMPLATE,
            &[("KeyAccount", "SecurityTooling"), ("RunFrom", "Management")]
        ),
        "KeyAccount defaults to SecurityTooling, RunFrom to Management"
    );
    for (key_account, run_from) in MODES {
        let mode = format!("KeyAccount={key_account} RunFrom={run_from}");
        let main = trailkey_testkit::cloudformation_with(
            TEMPLATE,
            &[("KeyAccount", key_account), ("RunFrom", run_from)],
        );
        let main_resources = resources(&main);

        // The function as Lambda runs a custom runtime, with as many runs at
        // once as the event source mapping starts.
        let function = &main_resources["Function"]["Properties"];
        assert_eq!(function["Runtime"], "provided.al2023");
        assert_eq!(function["Handler"], "bootstrap");
        assert_eq!(
            function["Environment"]["Variables"]["TRAILKEY_MODE"],
            param("Mode")
        );

        // The queue between the rules and the function: its visibility timeout
        // at least six times the function's timeout, as AWS advises; SSE; a
        // redrive policy to the dead-letter queue.
        let queue = &main_resources["EventQueue"];
        assert_eq!(queue["Type"], "AWS::SQS::Queue");
        let queue = &queue["Properties"];
        assert!(
            queue["VisibilityTimeout"].as_u64().unwrap()
                >= 6 * function["Timeout"].as_u64().unwrap(),
            "{queue:#}"
        );
        assert_eq!(queue["SqsManagedSseEnabled"], true);
        assert_eq!(
            queue["RedrivePolicy"]["deadLetterTargetArn"],
            get_att("DeadLetterQueue.Arn")
        );
        assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap() >= 1);
        let dead_letters = &main_resources["DeadLetterQueue"]["Properties"];
        assert_eq!(dead_letters["SqsManagedSseEnabled"], true);
        assert!(
            dead_letters["MessageRetentionPeriod"].as_u64()
                > queue["MessageRetentionPeriod"].as_u64(),
            "the dead letters outlive the queue's messages"
        );

        // The event source mapping: batches gathered over a window, partial
        // batch responses, within Lambda's limits, and no more runs at once
        // than the function may have.
        let mapping = &main_resources["EventSourceMapping"];
        assert_eq!(mapping["Type"], "AWS::Lambda::EventSourceMapping");
        let mapping = &mapping["Properties"];
        assert_eq!(mapping["EventSourceArn"], get_att("EventQueue.Arn"));
        assert_eq!(mapping["FunctionName"], param("Function"));
        assert_eq!(
            mapping["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"])
        );
        let window = mapping["MaximumBatchingWindowInSeconds"].as_u64().unwrap();
        let batch = mapping["BatchSize"].as_u64().unwrap();
        assert!((1..=300).contains(&window), "{mapping:#}");
        assert!((200..=10_000).contains(&batch), "{mapping:#}");
        let concurrency = mapping["ScalingConfig"]["MaximumConcurrency"]
            .as_u64()
            .unwrap();
        assert!(
            function["ReservedConcurrentExecutions"].as_u64().unwrap() >= concurrency,
            "Lambda would throttle the mapping's batches"
        );

        // Failures a partial batch response reports do not count in the
        // function's Errors metric: an alarm watches the queue for an event the
        // function keeps failing on, and another the dead-letter queue.
        for (alarm, queue, metric) in [
            (
                "FailingEventsAlarm",
                "EventQueue",
                "ApproximateAgeOfOldestMessage",
            ),
            (
                "DeadLetterAlarm",
                "DeadLetterQueue",
                "ApproximateNumberOfMessagesVisible",
            ),
        ] {
            let a = &main_resources[alarm];
            assert_eq!(a["Type"], "AWS::CloudWatch::Alarm", "{alarm}");
            let a = &a["Properties"];
            assert_eq!(a["Namespace"], "AWS/SQS", "{alarm}");
            assert_eq!(a["MetricName"], metric, "{alarm}");
            assert_eq!(
                a["Dimensions"][0]["Value"],
                get_att(&format!("{queue}.QueueName")),
                "{alarm}"
            );
        }
        let oldest = &main_resources["FailingEventsAlarm"]["Properties"]["Threshold"];
        assert!(
            oldest.as_u64().unwrap() < queue["VisibilityTimeout"].as_u64().unwrap(),
            "the alarm fires before a failed event comes back: {oldest}"
        );

        // The role lets the mapping read and delete the queue's messages.
        let role = &main_resources["FunctionRole"]["Properties"]["Policies"];
        let reads_queue = role.as_array().unwrap().iter().any(|p| {
            p["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| {
                    s["Resource"] == get_att("EventQueue.Arn")
                        && s["Action"]
                            == json!([
                                "sqs:ReceiveMessage",
                                "sqs:DeleteMessage",
                                "sqs:GetQueueAttributes"
                            ])
                })
        });
        assert!(reads_queue, "{role:#}");

        // Every rule targets the queue, with the dead-letter queue, and the
        // queue's policy lets exactly these rules send to it. Nothing invokes
        // the function but the mapping.
        let rules: Vec<(&String, &Value)> = main_resources
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::Events::Rule")
            .map(|(name, r)| (name, &r["Properties"]))
            .collect();
        assert_eq!(
            rules.len(),
            4,
            "trail calls, key calls, Control Tower, schedule"
        );
        let policy = &main_resources["EventQueuePolicy"]["Properties"];
        assert_eq!(policy["Queues"], json!([param("EventQueue")]));
        let statements = policy["PolicyDocument"]["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1, "{policy:#}");
        let send = &statements[0];
        assert_eq!(
            (
                send["Effect"].clone(),
                send["Principal"].clone(),
                send["Action"].clone(),
                send["Resource"].clone()
            ),
            (
                json!("Allow"),
                json!({"Service": "events.amazonaws.com"}),
                json!("sqs:SendMessage"),
                get_att("EventQueue.Arn")
            )
        );
        let sources: Vec<Value> = rules
            .iter()
            .map(|(name, _)| get_att(&format!("{name}.Arn")))
            .collect();
        let mut allowed = send["Condition"]["ArnEquals"]["aws:SourceArn"]
            .as_array()
            .unwrap()
            .clone();
        allowed.sort_by_key(Value::to_string);
        let mut expected = sources.clone();
        expected.sort_by_key(Value::to_string);
        assert_eq!(allowed, expected, "scoped to the stack's rules");
        for (name, rule) in &rules {
            let targets = rule["Targets"].as_array().unwrap();
            assert_eq!(targets.len(), 1, "{name}");
            assert_eq!(targets[0]["Arn"], get_att("EventQueue.Arn"), "{name}");
            assert_eq!(
                targets[0]["DeadLetterConfig"]["Arn"],
                get_att("DeadLetterQueue.Arn"),
                "{name}"
            );
        }
        assert!(
            !main_resources
                .values()
                .any(|r| r["Type"] == "AWS::Lambda::Permission"),
            "no rule invokes the function directly"
        );
        let pattern = |name: &str| &main_resources[name]["Properties"]["EventPattern"];
        assert_eq!(
            pattern("TrailCallsRule")["source"],
            json!(["aws.cloudtrail"])
        );
        assert_eq!(
            pattern("TrailCallsRule")["detail"]["eventName"],
            list(&[&CLOUDTRAIL_CALLS])
        );
        // KMS calls arrive from the key's account only: Security Tooling's,
        // forwarded to the management account, or the function's account's
        // own.
        let key_account_id = match (key_account, run_from) {
            ("SecurityTooling", "Management") => param("SecurityToolingAccountId"),
            _ => param("AWS::AccountId"),
        };
        assert_eq!(pattern("KeyCallsRule")["source"], json!(["aws.kms"]));
        assert_eq!(
            pattern("KeyCallsRule")["account"],
            json!([key_account_id]),
            "{mode}"
        );
        assert_eq!(pattern("KeyCallsRule")["detail"]["eventName"], kms);
        assert_eq!(
            pattern("ControlTowerRule")["detail"]["eventName"],
            list(&[&LIFECYCLE_EVENTS])
        );
        assert_eq!(
            main_resources["ScheduleRule"]["Properties"]["ScheduleExpression"],
            param("Schedule")
        );
        let bus_policies: Vec<&String> = main_resources
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::Events::EventBusPolicy")
            .map(|(name, _)| name)
            .collect();
        if key_account == "Management" {
            assert!(bus_policies.is_empty(), "{bus_policies:?}");
            continue;
        }
        if run_from == "SecurityTooling" {
            // The trail and Control Tower rules take any account's events:
            // this one's and the management account's, forwarded with their
            // account. The management forwarder's rules are exactly them,
            // and the bus takes their sources from the management account.
            for rule in ["TrailCallsRule", "ControlTowerRule"] {
                assert!(pattern(rule).get("account").is_none(), "{rule}");
            }
            let sorted_values = |mut v: Vec<Value>| {
                v.sort_by_key(Value::to_string);
                v
            };
            let forwarded: Vec<Value> = management_forwarder_resources
                .values()
                .filter(|r| r["Type"] == "AWS::Events::Rule")
                .map(|r| r["Properties"]["EventPattern"].clone())
                .collect();
            assert_eq!(
                sorted_values(forwarded.clone()),
                sorted_values(vec![
                    pattern("TrailCallsRule").clone(),
                    pattern("ControlTowerRule").clone()
                ]),
                "the management forwarder sends what the trail and Control Tower rules take"
            );
            assert_eq!(bus_policies, ["ManagementEventsAllowed"], "{mode}");
            let bus = &main_resources["ManagementEventsAllowed"]["Properties"]["Statement"];
            assert_eq!(
                bus["Principal"]["AWS"],
                json!({"Fn::Sub": "arn:${AWS::Partition}:iam::${ManagementAccountId}:root"})
            );
            assert_eq!(bus["Action"], "events:PutEvents");
            assert_eq!(
                bus["Resource"],
                json!({"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"})
            );
            let sources: Vec<Value> = forwarded.iter().map(|p| p["source"][0].clone()).collect();
            assert!(
                forwarded
                    .iter()
                    .all(|p| p["source"].as_array().unwrap().len() == 1)
            );
            assert_eq!(
                sorted_values(
                    bus["Condition"]["StringEquals"]["events:source"]
                        .as_array()
                        .unwrap()
                        .clone()
                ),
                sorted_values(sources)
            );
            continue;
        }
        // The bus takes KMS events from the Security Tooling account.
        assert_eq!(bus_policies, ["SecurityToolingEventsAllowed"]);
        let bus = &main_resources["SecurityToolingEventsAllowed"]["Properties"]["Statement"];
        assert_eq!(
            bus["Principal"]["AWS"],
            json!({"Fn::Sub": "arn:${AWS::Partition}:iam::${SecurityToolingAccountId}:root"})
        );
        assert_eq!(bus["Action"], "events:PutEvents");
        assert_eq!(bus["Condition"]["StringEquals"]["events:source"], "aws.kms");
    }

    // The forwarder sends the same KMS calls to the management account's
    // default bus, in its own Region, with a role allowed to put them there.
    let management_bus = json!({"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${ManagementAccountId}:event-bus/default"});
    let forward = &forwarder_resources["KeyCallsForwardRule"]["Properties"];
    assert_eq!(forward["EventPattern"]["source"], json!(["aws.kms"]));
    assert_eq!(forward["EventPattern"]["detail"]["eventName"], kms);
    let target = &forward["Targets"][0];
    assert_eq!(target["Arn"], management_bus);
    assert_eq!(target["RoleArn"], get_att("ForwardRole.Arn"));
    let role = &forwarder_resources["ForwardRole"]["Properties"];
    let put = &role["Policies"][0]["PolicyDocument"]["Statement"][0];
    assert_eq!(
        (put["Action"].clone(), put["Resource"].clone()),
        (json!("events:PutEvents"), management_bus)
    );
    let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(
        trust["Condition"]["StringEquals"]["aws:SourceAccount"],
        param("AWS::AccountId")
    );

    // The management forwarder sends to the Security Tooling account's
    // default bus, in its own Region, with a role allowed to put events
    // there and nowhere else.
    let security_tooling_bus = json!({"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${SecurityToolingAccountId}:event-bus/default"});
    let rules: Vec<&Value> = management_forwarder_resources
        .values()
        .filter(|r| r["Type"] == "AWS::Events::Rule")
        .collect();
    assert_eq!(rules.len(), 2, "trail calls, Control Tower");
    for rule in rules {
        let targets = rule["Properties"]["Targets"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{rule:#}");
        assert_eq!(targets[0]["Arn"], security_tooling_bus);
        assert_eq!(targets[0]["RoleArn"], get_att("ForwardRole.Arn"));
    }
    let role = &management_forwarder_resources["ForwardRole"]["Properties"];
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(statements.len(), 1, "{role:#}");
    assert_eq!(
        (
            statements[0]["Action"].clone(),
            statements[0]["Resource"].clone()
        ),
        (json!("events:PutEvents"), security_tooling_bus)
    );
    let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(
        trust["Condition"]["StringEquals"]["aws:SourceAccount"],
        param("AWS::AccountId")
    );
}

/// The template's alarms, in each mode ([`MODES`]): on trailkey's metrics,
/// one on `Errors` and one on `DriftFound` (at least 1 in 5 minutes), in the
/// namespace, dimension and metric names of the product's constants (what
/// the function writes, `each_invocation_writes_one_line_of_metrics_…`
/// checks), the dimension's value the template's function; beside them the
/// two on the queues. Every alarm notifies the stack's SNS topic, and the
/// topic of `AlarmTopicArn` too when one is given, and treats no data as
/// not breaching. The topic is encrypted with a key of the stack whose
/// policy lets this account's CloudWatch alarms use it for this topic only
/// (the AWS managed `aws/sns` key would not let them publish). An email
/// address is subscribed only when `AlarmEmail` names one.
#[test]
fn the_templates_alarms_watch_the_functions_metrics_and_notify_its_encrypted_topic() {
    use trailkey::lambda::metrics::{DIMENSION, DRIFT_FOUND, ERRORS, METRICS, NAMESPACE};
    let get_att = |what: &str| json!({"Fn::GetAtt": what});
    let reference = |name: &str| json!({"Fn::Ref": name});
    let sub = |text: &str| json!({"Fn::Sub": text});
    let of_type = |template: &Value, kind: &str| -> Vec<(String, Value)> {
        template["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Type"] == kind)
            .map(|(name, r)| (name.clone(), r.clone()))
            .collect()
    };
    for (key_account, run_from) in MODES {
        let mode = format!("KeyAccount={key_account} RunFrom={run_from}");
        let with = |extra: &[(&str, &str)]| {
            let mut parameters = vec![("KeyAccount", key_account), ("RunFrom", run_from)];
            parameters.extend_from_slice(extra);
            trailkey_testkit::cloudformation_with(TEMPLATE, &parameters)
        };
        let template = with(&[]);
        let resources = &template["Resources"];

        // The alarms on the function's metrics.
        let alarms = metric_alarms(&template);
        let mut watched: Vec<&str> = alarms
            .iter()
            .map(|a| a["MetricName"].as_str().unwrap())
            .collect();
        watched.sort_unstable();
        assert_eq!(watched, [DRIFT_FOUND, ERRORS], "{mode}");
        for alarm in &alarms {
            let name = alarm["MetricName"].as_str().unwrap();
            assert!(METRICS.iter().any(|(m, _)| *m == name), "{name}");
            assert_eq!(alarm["Namespace"], NAMESPACE, "{mode}: {name}");
            assert_eq!(
                alarm["Dimensions"],
                json!([{"Name": DIMENSION, "Value": reference("Function")}]),
                "{mode}: {name}"
            );
            assert!(alarm.get("Unit").is_none(), "{mode}: {name}");
            assert_eq!(
                (
                    &alarm["Statistic"],
                    &alarm["Threshold"],
                    &alarm["ComparisonOperator"],
                    &alarm["EvaluationPeriods"]
                ),
                (
                    &json!("Sum"),
                    &json!(1),
                    &json!("GreaterThanOrEqualToThreshold"),
                    &json!(1)
                ),
                "{mode}: {name}"
            );
        }

        // Every alarm notifies the stack's topic, and AlarmTopicArn's too.
        let all_alarms = of_type(&template, "AWS::CloudWatch::Alarm");
        assert_eq!(all_alarms.len(), 4, "{mode}");
        let with_topic = with(&[("AlarmTopicArn", "arn:aws:sns:us-east-1:333333333333:ops")]);
        for (name, alarm) in &all_alarms {
            let properties = &alarm["Properties"];
            assert_eq!(properties["TreatMissingData"], "notBreaching", "{name}");
            assert_eq!(
                properties["AlarmActions"],
                json!([reference("AlarmTopic")]),
                "{mode}: {name}"
            );
            assert_eq!(
                with_topic["Resources"][name]["Properties"]["AlarmActions"],
                json!([reference("AlarmTopic"), reference("AlarmTopicArn")]),
                "{mode}: {name}"
            );
        }

        // The topic, and its key.
        let topic = &resources["AlarmTopic"];
        assert_eq!(topic["Type"], "AWS::SNS::Topic");
        assert_eq!(
            topic["Properties"]["KmsMasterKeyId"],
            reference("AlarmTopicKey"),
            "{mode}"
        );
        let topic_name = topic["Properties"]["TopicName"]["Fn::Sub"]
            .as_str()
            .expect("a TopicName of the stack's");
        let key = &resources["AlarmTopicKey"];
        assert_eq!(key["Type"], "AWS::KMS::Key");
        assert_eq!(key["Properties"]["EnableKeyRotation"], true);
        let statements = key["Properties"]["KeyPolicy"]["Statement"]
            .as_array()
            .unwrap();
        let cloudwatch: Vec<&Value> = statements
            .iter()
            .filter(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com")
            .collect();
        assert_eq!(cloudwatch.len(), 1, "{statements:#?}");
        let cloudwatch = cloudwatch[0];
        assert_eq!(
            (&cloudwatch["Effect"], &cloudwatch["Action"]),
            (
                &json!("Allow"),
                &json!(["kms:Decrypt", "kms:GenerateDataKey*"])
            )
        );
        assert_eq!(
            cloudwatch["Condition"],
            json!({
                "StringEquals": {
                    "aws:SourceAccount": reference("AWS::AccountId"),
                    "kms:EncryptionContext:aws:sns:topicArn": sub(&format!(
                        "arn:${{AWS::Partition}}:sns:${{AWS::Region}}:${{AWS::AccountId}}:{topic_name}"
                    )),
                },
                "ArnLike": {
                    "aws:SourceArn": sub(
                        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
                    ),
                },
            }),
            "this account's alarms, for this topic only"
        );
        // Nothing else but the account's own administration.
        for s in statements {
            if s["Sid"] != cloudwatch["Sid"] {
                assert_eq!(
                    s["Principal"],
                    json!({"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")}),
                    "{s:#}"
                );
            }
        }
        assert_eq!(
            template["Outputs"]["AlarmTopic"]["Value"],
            reference("AlarmTopic")
        );

        // The email subscription, only with an address.
        assert!(
            of_type(&template, "AWS::SNS::Subscription").is_empty(),
            "{mode}: no AlarmEmail, no subscription"
        );
        let emailed = with(&[("AlarmEmail", "security-ops@example.com")]);
        let subscriptions = of_type(&emailed, "AWS::SNS::Subscription");
        assert_eq!(subscriptions.len(), 1, "{mode}");
        assert_eq!(
            subscriptions[0].1["Properties"],
            json!({"TopicArn": reference("AlarmTopic"), "Protocol": "email",
                   "Endpoint": reference("AlarmEmail")}),
            "{mode}"
        );
        // The queue alarms still watch the queues.
        for (alarm, queue) in [
            ("FailingEventsAlarm", "EventQueue"),
            ("DeadLetterAlarm", "DeadLetterQueue"),
        ] {
            assert_eq!(
                resources[alarm]["Properties"]["Dimensions"][0]["Value"],
                get_att(&format!("{queue}.QueueName"))
            );
        }
    }
}

/// A foreign Deny that stops CloudTrail from encrypting breaks delivery in
/// a way apply does not fix: the scheduled check fails its invocation (so
/// an alarm on the function's errors sees it), in plan mode as in apply
/// mode, with the finding's text, one JSON log line and one line of
/// metrics that counts an error.
#[test]
fn a_broken_setup_fails_the_invocation_in_either_mode() {
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    moto.fixture(&[
        "drift",
        "policy-deny",
        "--security-tooling",
        &seed.security_tooling,
    ]);
    for mode in ["plan", "apply"] {
        let api = RuntimeApi::start();
        let function = start_function(&api, Run::new(&moto), &seed.config, mode);
        let e = error(&api, &api.invoke(schedule_event(1)));
        assert_eq!(e["errorType"], "trailkey.BrokenSetup", "{mode}: {e}");
        let message = e["errorMessage"].as_str().unwrap();
        assert!(
            message.contains("DenyCloudTrailEncrypt"),
            "{mode}: {message}"
        );
        assert!(message.contains("(event schedule-1)"), "{mode}: {message}");
        let log = stop(function);
        let broken: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("\"error_type\":\"trailkey.BrokenSetup\""))
            .collect();
        assert_eq!(broken.len(), 1, "{mode}: {log}");
        let metrics = metric_lines(&log);
        assert_eq!(metrics.len(), 1, "{mode}: {log}");
        let (line, m) = &metrics[0];
        assert_eq!(
            (
                &line["Outcome"],
                &line["Mode"],
                m["Errors"],
                m["DriftFound"]
            ),
            (&json!("broken"), &json!(mode), 1.0, 0.0),
            "{line}"
        );
    }
}

/// With `[control_tower] landing_zone = true`, the function repairs the key
/// of Control Tower's trail but never starts `UpdateLandingZone`, which
/// runs longer than a function may: it reports the landing zone's change
/// as pending, and `trailkey apply` makes it.
#[test]
fn with_the_landing_zone_the_function_repairs_the_key_and_leaves_the_landing_zone_to_apply() {
    let moto = Moto::start();
    let seed = moto.seed();
    moto.control_tower(&seed, Duration::from_secs(1));
    let config = moto.control_tower_config(&seed, "control-tower.toml", "");
    let api = RuntimeApi::start();
    let function = start_function(&api, Run::new(&moto), &config, "apply");

    // A first run: the key is made and its policy set, the landing zone
    // left pending.
    moto.start_recording();
    let r = response(&api, &api.invoke(schedule_event(1)));
    assert_eq!(r["applied"], true, "{r:#}");
    let summary = &r["plan"]["summary"];
    let first_found = ["add", "change", "destroy"]
        .iter()
        .map(|n| summary[n].as_f64().unwrap())
        .sum::<f64>();
    let pending = r["pending"].as_array().expect("a pending change");
    assert_eq!(pending.len(), 1, "{r:#}");
    assert!(
        pending[0].as_str().unwrap().contains("trailkey apply"),
        "{r:#}"
    );
    let writes = moto.recorded_writes();
    assert!(
        !writes.iter().any(|w| w.starts_with("controltower:")),
        "{writes:?}"
    );
    assert!(writes.contains(&"kms:CreateKey".to_owned()), "{writes:?}");
    // As the template delivers events, in an SQS batch: the batch's log
    // line reports the pending change too.
    let batch = sqs_batch(&records_of("pending", 2, &schedule_event(2)));
    let _ = api.wait_result(&api.invoke(batch), WAIT);
    assert!(
        moto.world
            .landing_zone_state()
            .unwrap()
            .operations
            .is_empty()
    );

    // `trailkey apply` sets the landing zone.
    let out = Run::new(&moto)
        .config(&config)
        .args([
            "apply",
            "--auto-approve",
            "--landing-zone-poll-interval",
            "1s",
        ])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(moto.world.landing_zone_state().unwrap().operations.len(), 1);

    // Someone drops AWS Config's statement: the event on the management
    // account's key is repaired, with nothing pending.
    let state = moto.fixture(&["state", "--security-tooling", &seed.management]);
    let key = &state["keys"][0];
    let key_id = key["key_id"].as_str().unwrap();
    moto.drop_config_statement(key_id, &key["policy"]);
    let mut event = kms_event(&seed, "PutKeyPolicy", key_id);
    let text = event
        .to_string()
        .replace(&seed.security_tooling, &seed.management);
    event = serde_json::from_str(&text).unwrap();
    moto.start_recording();
    let r = response(&api, &api.invoke(event));
    assert_eq!(r["handled"], true, "{r:#}");
    assert!(r.get("pending").is_none(), "{r:#}");
    assert_eq!(moto.recorded_writes(), ["kms:PutKeyPolicy"]);
    assert_eq!(moto.world.landing_zone_state().unwrap().operations.len(), 1);
    let log = stop(function);
    // The landing zone's change is drift found, never repaired by the
    // function.
    let metrics: Vec<(String, [f64; 3])> = metric_lines(&log)
        .iter()
        .map(|(line, m)| {
            (
                line["Outcome"].as_str().unwrap().to_owned(),
                [m["DriftFound"], m["DriftRepaired"], m["Errors"]],
            )
        })
        .collect();
    assert_eq!(
        metrics,
        [
            ("repaired".to_owned(), [first_found, first_found - 1.0, 0.0]),
            ("drift".to_owned(), [1.0, 0.0, 0.0]),
            ("repaired".to_owned(), [1.0, 1.0, 0.0]),
        ],
        "{log}"
    );
    let batches = batch_lines(&log);
    assert_eq!(batches.len(), 1, "{log}");
    let pending = batches[0]["pending"]
        .as_array()
        .expect("pending in the batch line");
    assert!(
        pending[0].as_str().unwrap().contains("arn:aws:kms:"),
        "the key the first run made: {pending:?}"
    );
}

/// Deployed in the Security Tooling account (the template's
/// `RunFrom=SecurityTooling`), CloudTrail's delegated administrator: the
/// function runs on that account's own credentials, with `AWS_ACCOUNT_ID`
/// set to it as the template sets it. A schedule converges from scratch; an
/// `UpdateTrail` made in the management account after the trail was
/// unencrypted behind trailkey's back, as `management-forwarder.yaml`
/// forwards it (its `account` still the management account's), is
/// repaired; a `DisableKey` on trailkey's key, an event of the function's
/// own account, is repaired. No role is assumed, nothing is signed with the
/// management account's credentials, and the template's function role in
/// that mode grants every call the function made.
#[test]
fn in_security_tooling_the_function_repairs_forwarded_trail_calls_and_its_own_key_calls() {
    let moto = Moto::start();
    let seed = moto.seed();
    moto.world
        .delegated_administrator(CLOUDTRAIL, &seed.security_tooling);
    let st = moto.assume_role(&seed.security_tooling, "TrailkeyRunner", moto.layer());
    let api = RuntimeApi::start();
    let function = start_function_in(
        &api,
        Run::new(&moto).credentials(&st),
        &seed.config,
        "apply",
        &seed.security_tooling,
    );
    let mut calls = std::collections::BTreeSet::new();

    moto.start_recording();
    let r = response(&api, &api.invoke(schedule_event(1)));
    assert_eq!(
        (r["handled"].clone(), r["applied"].clone()),
        (json!(true), json!(true)),
        "{r:#}"
    );
    let state = moto.state(&seed);
    let keys = trailkey_keys(&state);
    assert_eq!(keys.len(), 1, "{state:#}");
    let key = keys[0]["arn"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with(&format!(
            "arn:aws:kms:us-east-1:{}:key/",
            seed.security_tooling
        )),
        "{key}"
    );
    assert_eq!(state["trail"]["kms_key_id"], key.as_str(), "{state:#}");
    calls.extend(moto.recorded());

    // Someone in the management account unencrypts the trail: the event
    // reaches Security Tooling's bus through the forwarder, as the
    // management account's.
    moto.fixture(&["drift", "trail-unencrypt"]);
    assert!(on_sse_s3(&moto.state(&seed)));
    let forwarded = update_trail_event(&seed);
    assert_eq!(forwarded["account"], seed.management.as_str());
    assert_eq!(
        forwarded["detail"]["recipientAccountId"],
        seed.management.as_str()
    );
    moto.start_recording();
    let r = response(&api, &api.invoke(forwarded));
    assert_eq!(
        (r["handled"].clone(), r["applied"].clone()),
        (json!(true), json!(true)),
        "{r:#}"
    );
    assert_eq!(moto.recorded_writes(), ["cloudtrail:UpdateTrail"]);
    let state = moto.state(&seed);
    assert_eq!(state["trail"]["kms_key_id"], key.as_str(), "{state:#}");
    calls.extend(moto.recorded());

    // trailkey's key disabled in Security Tooling: the function's own
    // account's KMS event.
    let r = disable_the_key_and_send_its_event(&moto, &seed, &api, &key);
    assert_eq!(
        (r["handled"].clone(), r["applied"].clone()),
        (json!(true), json!(true)),
        "{r:#}"
    );
    assert_eq!(moto.recorded_writes(), ["kms:EnableKey"]);
    let state = moto.state(&seed);
    assert_eq!(
        trailkey_testkit::key_with_arn(&state, &key)["key_state"],
        "Enabled",
        "{state:#}"
    );
    calls.extend(moto.recorded());
    let log = stop(function);
    assert_eq!(
        json_lines(&log)
            .iter()
            .filter(|l| l["message"] == "trailkey lambda invocation")
            .count(),
        3,
        "{log}"
    );
    moto.assert_security_toolings_own(&seed);
    let granted = delegated_administrator_statements();
    for expected in [
        "organizations:ListDelegatedAdministrators",
        "cloudtrail:UpdateTrail",
        "kms:CreateKey",
        "kms:EnableKey",
        "s3:ListBucket",
    ] {
        assert!(calls.contains(expected), "{expected} in {calls:?}");
    }
    for call in &calls {
        assert!(
            allows(&granted, call),
            "{TEMPLATE} with RunFrom=SecurityTooling does not grant {call}, which the function called"
        );
    }
}

/// A value of a policy statement (`Action` or `Resource`) as a list of
/// strings, each `!Sub` as its text with CloudFormation's pseudo-parameters
/// as the policy files' placeholders; `this_account` is the file's name for
/// `AWS::AccountId`.
fn in_policy_terms(value: &Value, this_account: &str) -> Value {
    let one = |v: &Value| -> Value {
        let text = v
            .get("Fn::Sub")
            .unwrap_or(v)
            .as_str()
            .unwrap_or_else(|| panic!("not a string or a !Sub: {v}"));
        json!(
            text.replace("${AWS::Partition}", "${Partition}")
                .replace("${AWS::Region}", "${Region}")
                .replace("${AWS::AccountId}", &format!("${{{this_account}}}"))
        )
    };
    match value {
        Value::Array(list) => list.iter().map(one).collect(),
        other => json!([one(other)]),
    }
}

/// A statement as the comparisons below see it: `Sid`, `Effect`, actions
/// and resources as lists in the policy files' terms, `Condition`.
fn statement_in_policy_terms(s: &Value, this_account: &str) -> Value {
    json!({
        "Sid": s["Sid"],
        "Effect": s["Effect"],
        "Action": in_policy_terms(&s["Action"], this_account),
        "Resource": in_policy_terms(&s["Resource"], this_account),
        "Condition": s.get("Condition").cloned().unwrap_or(Value::Null),
    })
}

/// The statements for trailkey's calls of the function role the template
/// makes in Security Tooling (`RunFrom=SecurityTooling`), in the policy
/// files' terms: this account is `${SecurityToolingAccountId}`.
fn delegated_administrator_statements() -> Vec<Value> {
    let template =
        trailkey_testkit::cloudformation_with(TEMPLATE, &[("RunFrom", "SecurityTooling")]);
    let policies = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .clone();
    let policy = policies
        .iter()
        .find(|p| p["PolicyName"] == "trailkey-delegated-administrator")
        .unwrap_or_else(|| panic!("the trailkey-delegated-administrator policy: {policies:#?}"));
    policy["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| statement_in_policy_terms(s, "SecurityToolingAccountId"))
        .collect()
}

/// Each (effect, action, resource) `statements` grant, sorted.
fn grants(statements: &[Value]) -> Vec<(String, String, String)> {
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap().to_owned())
                .collect(),
            Value::String(one) => vec![one.clone()],
            other => panic!("{other}"),
        }
    };
    let mut grants: Vec<(String, String, String)> = statements
        .iter()
        .flat_map(|s| {
            let effect = s["Effect"].as_str().unwrap().to_owned();
            let resources = list(&s["Resource"]);
            list(&s["Action"]).into_iter().flat_map(move |a| {
                let effect = effect.clone();
                resources
                    .clone()
                    .into_iter()
                    .map(move |r| (effect.clone(), a.clone(), r))
            })
        })
        .collect();
    grants.sort();
    grants.dedup();
    grants
}

/// Whether an `Allow` among `statements` names `action`.
fn allows(statements: &[Value], action: &str) -> bool {
    statements
        .iter()
        .any(|s| s["Effect"] == "Allow" && s["Action"].as_array().unwrap().contains(&json!(action)))
}

/// In Security Tooling the function role has what a run as CloudTrail's
/// delegated administrator calls, on its own credentials: the KMS
/// statements of `policies/iam-security-tooling-role.json` on this
/// account's keys, the trail's reads and `UpdateTrail` on the management
/// account's trail, `ListDelegatedAdministrators` for CloudTrail only, and
/// no role to assume but Log Archive's. Not what only `destroy
/// --delete-key` reads (refused from Security Tooling), nor what is there
/// for CloudTrail's checks of a management-account caller.
#[test]
fn in_security_tooling_the_function_role_has_a_delegated_administrators_calls_and_no_other_role() {
    let statements = delegated_administrator_statements();
    let sid = |s: &Value| s["Sid"].as_str().unwrap().to_owned();
    assert_eq!(
        statements.iter().map(sid).collect::<Vec<_>>(),
        [
            "TrailkeyCallerIdentity",
            "TrailkeyReadOrganization",
            "TrailkeyCheckTheDelegation",
            "TrailkeyListTrails",
            "TrailkeyReadTrailTags",
            "TrailkeyReadAndEncryptTheTrail",
            "TrailkeyReadBucketRegion",
            "TrailkeyAssumeLogArchiveRole",
            "TrailkeyReadKeys",
            "TrailkeyListKeysAndAliases",
            "TrailkeyCreateOnlyItsKindOfKey",
            "TrailkeyRepairKeys",
            "TrailkeyManageItsAlias",
            "TrailkeyScheduleDeletionOfItsOwnKeysOnly",
            "TrailkeyNeverBypassTheLockoutSafetyCheck",
        ]
    );
    let by_sid = |name: &str| {
        statements
            .iter()
            .find(|s| s["Sid"] == name)
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };

    // What the shipped runner policy for this mode grants, action by
    // action and resource by resource (the template splits the trail's
    // statement in two, as its other modes do).
    let path = repo_root().join("policies/iam-security-tooling-delegated-admin.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let file: Vec<Value> = file["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| statement_in_policy_terms(s, "SecurityToolingAccountId"))
        .collect();
    assert_eq!(grants(&statements), grants(&file));
    // The KMS statements are the shipped file's, condition for condition.
    for expected in file
        .iter()
        .filter(|s| s["Sid"].as_str().unwrap().contains("Key"))
    {
        assert_eq!(by_sid(expected["Sid"].as_str().unwrap()), *expected);
    }

    // The trail is the management account's, named by its ARN.
    assert_eq!(
        by_sid("TrailkeyReadAndEncryptTheTrail")["Resource"],
        json!(["arn:${Partition}:cloudtrail:${Region}:${ManagementAccountId}:trail/${TrailName}"])
    );
    assert_eq!(
        by_sid("TrailkeyReadAndEncryptTheTrail")["Action"],
        json!([
            "cloudtrail:GetEventSelectors",
            "cloudtrail:GetTrail",
            "cloudtrail:GetTrailStatus",
            "cloudtrail:StartLogging",
            "cloudtrail:UpdateTrail"
        ])
    );
    assert_eq!(
        by_sid("TrailkeyReadTrailTags")["Resource"],
        json!(["arn:${Partition}:cloudtrail:${Region}:${ManagementAccountId}:trail/${TrailName}"])
    );
    // The delegation, asked for CloudTrail only.
    let delegation = by_sid("TrailkeyCheckTheDelegation");
    assert_eq!(
        delegation["Action"],
        json!(["organizations:ListDelegatedAdministrators"])
    );
    assert_eq!(
        delegation["Condition"],
        json!({"StringEquals": {"organizations:ServicePrincipal": "cloudtrail.amazonaws.com"}})
    );
    // No role to assume but Log Archive's.
    let assume: Vec<&Value> = statements
        .iter()
        .filter(|s| {
            s["Action"]
                .as_array()
                .unwrap()
                .contains(&json!("sts:AssumeRole"))
        })
        .collect();
    assert_eq!(assume.len(), 1, "{assume:#?}");
    assert_eq!(
        assume[0]["Resource"],
        json!(["arn:${Partition}:iam::${LogArchiveAccountId}:role/${LogArchiveRoleName}"])
    );
    for never in [
        "account:ListRegions",
        "cloudtrail:ListEventDataStores",
        "cloudtrail:GetEventDataStore",
        "iam:GetRole",
        "organizations:ListAWSServiceAccessForOrganization",
    ] {
        assert!(!allows(&statements, never), "{never}");
    }
}
