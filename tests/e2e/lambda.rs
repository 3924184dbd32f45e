//! `trailkey lambda` end to end: the real binary as a Lambda custom runtime,
//! under a local Lambda Runtime API (`trailkey_testkit::lambda_api`), against moto
//! through the real-AWS layer.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use trailkey_testkit::lambda_api::{
    FUNCTION_ARN, RuntimeApi, appending, kms_event, update_trail_event,
};
use trailkey_testkit::{
    CountingServer, Moto, Run, Seed, is_write, on_sse_s3, repo_root, trailkey_bin, transcript,
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
    // As the template sets it: the function's own account, whose role's
    // credentials Lambda hands it.
    let account = FUNCTION_ARN.split(':').nth(4).unwrap();
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

    // The same process serves the next event: a warm, converged run makes
    // the no-op plan's 10 calls and writes nothing.
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
    assert_eq!(calls.len(), 10, "{calls:?}");
    assert!(calls.iter().all(|c| !is_write(c)), "{calls:?}");
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

fn sorted(mut calls: Vec<String>) -> Vec<String> {
    calls.sort_unstable();
    calls
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
    moto.fixture(&[
        "drift",
        "key-disable",
        "--security-tooling",
        &seed.security_tooling,
    ]);
    moto.start_recording();
    let id = ours.rsplit('/').next().unwrap();
    let r = response(&api, &api.invoke(kms_event(&seed, "DisableKey", id)));
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
/// each, and no AWS call. The process serves the next event as usual.
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
    assert_eq!(
        lines.len(),
        bad.len() + 1,
        "one JSON line per invocation:\n{log}"
    );
    for line in &lines[..bad.len()] {
        assert_eq!(line["level"], "error", "{line}");
        assert_eq!(line["error_type"], "trailkey.BadEvent", "{line}");
    }
    assert_eq!(
        log.lines().filter(|l| !l.trim().is_empty()).count(),
        lines.len(),
        "nothing else logged:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "{log}");
    assert_eq!(nobody.connections(), 0, "no AWS request");
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

/// The latency proxy of `make bench` (`tests/bench/latency_proxy.py`) in
/// front of `endpoint`: 50 ms added to every AWS request.
fn latency_proxy(endpoint: &str) -> (Child, String) {
    let upstream = endpoint.trim_start_matches("http://");
    let mut child = Command::new(trailkey_testkit::venv().join("bin/python"))
        .arg(repo_root().join("tests/bench/latency_proxy.py"))
        .args(["--upstream", upstream, "--delay-ms", "50"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the latency proxy");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let address = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("latency proxy: {line:?}"))
        .trim()
        .to_owned();
    (child, format!("http://{address}"))
}

/// Cold start and warm invocations on a converged setup, timed: run with
/// `make bench` (release build). Cold: from starting the process to its
/// first response (config, clients, the first plan). Warm: from the event's
/// hand-out to its response, as the Runtime API sees it. Directly against
/// moto and with 50 ms added to every AWS request.
#[test]
#[ignore = "a measurement, run by make bench"]
fn lambda_cold_start_and_warm_invocation_times() {
    let moto = Moto::start();
    let seed = moto.seed();
    applied(&seed, &moto);
    let mut report = Vec::new();
    for latency in [0, 50] {
        let (proxy, endpoint) = if latency == 0 {
            (None, moto.endpoint.clone())
        } else {
            let (child, endpoint) = latency_proxy(&moto.endpoint);
            (Some(child), endpoint)
        };
        let api = RuntimeApi::start();
        let started = std::time::Instant::now();
        let function = start_function(&api, Run::at(&endpoint), &seed.config, "apply");
        let first = api.invoke(schedule_event(0));
        let cold = response(&api, &first);
        let cold_ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(cold["applied"], false, "{cold:#}");
        let mut warm: Vec<f64> = (1..=10)
            .map(|n| {
                let id = api.invoke(schedule_event(n));
                let invocation = api.wait_result(&id, WAIT);
                assert_eq!(invocation.response()["handled"], true);
                invocation.took.as_secs_f64() * 1000.0
            })
            .collect();
        stop(function);
        if let Some(mut p) = proxy {
            let _ = p.kill();
            let _ = p.wait();
        }
        warm.sort_by(f64::total_cmp);
        eprintln!("latency {latency} ms: cold {cold_ms:.1} ms, warm {warm:?}");
        report.push(json!({
            "latency_ms": latency,
            "cold_start_ms": (cold_ms * 10.0).round() / 10.0,
            "warm_ms": {"min": warm[0], "median": warm[warm.len() / 2], "max": warm[warm.len() - 1]},
        }));
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

/// The deployment templates forward exactly the calls the function acts on
/// (an event the function handles but no rule sends would never arrive), and
/// each rule reaches the function through the queue: read as CloudFormation
/// reads them, for either `KeyAccount`. With `SecurityTooling` (the
/// default) the key's KMS calls come from the Security Tooling account,
/// through the forwarder and the bus policy that admits it; with
/// `Management` they are the management account's own, and no other account
/// may put events on its bus.
#[test]
fn the_templates_send_exactly_the_events_the_function_handles() {
    use trailkey::lambda::event::{ALIAS_CALLS, CLOUDTRAIL_CALLS, KEY_CALLS, LIFECYCLE_EVENTS};
    const TEMPLATE: &str = "docs/examples/lambda/template.yaml";
    let list = |names: &[&[&str]]| -> Value { json!(names.concat()) };
    let kms = list(&[&KEY_CALLS, &ALIAS_CALLS]);
    let forwarder =
        trailkey_testkit::cloudformation("docs/examples/lambda/security-tooling-forwarder.yaml");
    let resources = |t: &Value| t["Resources"].as_object().unwrap().clone();
    let forwarder_resources = resources(&forwarder);
    let get_att = |what: &str| json!({"Fn::GetAtt": what});
    let param = |name: &str| json!({"Fn::Ref": name});
    assert_eq!(
        trailkey_testkit::cloudformation_with(TEMPLATE, &[]),
        trailkey_testkit::cloudformation_with(TEMPLATE, &[("KeyAccount", "SecurityTooling")]),
        "KeyAccount defaults to SecurityTooling"
    );
    for key_account in ["SecurityTooling", "Management"] {
        let main = trailkey_testkit::cloudformation_with(TEMPLATE, &[("KeyAccount", key_account)]);
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
        // forwarded, or the management account's own.
        let key_account_id = match key_account {
            "SecurityTooling" => param("SecurityToolingAccountId"),
            _ => param("AWS::AccountId"),
        };
        assert_eq!(pattern("KeyCallsRule")["source"], json!(["aws.kms"]));
        assert_eq!(
            pattern("KeyCallsRule")["account"],
            json!([key_account_id]),
            "{key_account}"
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
}

/// A foreign Deny that stops CloudTrail from encrypting breaks delivery in
/// a way apply does not fix: the scheduled check fails its invocation (so
/// an alarm on the function's errors sees it), in plan mode as in apply
/// mode, with the finding's text and one JSON log line.
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
