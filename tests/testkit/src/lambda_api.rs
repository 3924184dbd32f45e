//! A local Lambda Runtime API on 127.0.0.1, for tests that run trailkey as
//! a Lambda custom runtime (`trailkey lambda`) without AWS.
//!
//! It serves version 2018-06-01 of the API as documented in "Using the
//! Lambda runtime API for custom runtimes",
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>:
//!
//! - `GET /2018-06-01/runtime/invocation/next` waits, without a time limit,
//!   until an event is queued ([`RuntimeApi::invoke`]), then answers 200
//!   with the event as the body (`Content-Type: application/json`) and the
//!   headers `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`
//!   (Unix epoch milliseconds), `Lambda-Runtime-Invoked-Function-Arn` and
//!   `Lambda-Runtime-Trace-Id`. Events are handed out in the order they
//!   were queued, one per request.
//! - `POST /2018-06-01/runtime/invocation/{id}/response` (the handler's
//!   result) and `POST /2018-06-01/runtime/invocation/{id}/error` (an error
//!   document such as `{"errorMessage": …, "errorType": …}`, possibly with a
//!   `Lambda-Runtime-Function-Error-Type` header) answer 202 and record the
//!   result for [`RuntimeApi::wait_result`]. A post for an ID that was not
//!   handed out, or that already has a result, answers 400 and is recorded
//!   in [`RuntimeApi::rejected`] instead.
//! - `POST /2018-06-01/runtime/init/error` answers 202 and records the
//!   body ([`RuntimeApi::init_errors`]).
//! - Anything else answers 404.
//!
//! Connections are HTTP/1.1 and kept alive, as the `lambda_runtime` crate
//! (hyper 1) expects: the kit's HTTP server ([`crate::http`]) gives each
//! connection its own thread, which reads one request after another (bodies
//! with `Content-Length` or chunked, whose trailers count as headers here)
//! and answers each with a `Content-Length`, until the client closes the
//! connection or asks for `Connection: close`. A long poll only holds its
//! own connection's thread.
//!
//! A poll whose client has gone (e.g. a runtime process that was killed) is
//! dropped when an event arrives instead of taking it, so that a later
//! process gets the event. Dropping the [`RuntimeApi`] shuts every open
//! connection down, pending polls included: a runtime that is waiting for
//! an event sees its connection close (with `lambda_runtime`, its run loop
//! then ends with an error) instead of hanging the test.
//!
//! Not emulated: the response streaming mode (such a body is recorded as
//! its text), SnapStart's `/restore` paths, concurrent invocations in one
//! environment (`AWS_LAMBDA_MAX_CONCURRENCY`), and the function timeout:
//! the deadline header is informational, nothing happens when it passes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::Seed;
use crate::http::{Connection, Handler, Options, Request, Response, Server};

/// The EventBridge event CloudTrail sends for `UpdateTrail` of the seed's
/// trail, with `KmsKeyId` set to `""` (back to SSE-S3).
pub fn update_trail_event(seed: &Seed) -> Value {
    serde_json::json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail",
        "account": seed.management, "time": "2026-11-30T12:00:00Z", "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09", "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "UpdateTrail", "awsRegion": "us-east-1",
            "eventID": "0b4cc7f3-0bb5-4d3a-9b3c-2b3c1f0e9d11",
            "recipientAccountId": seed.management,
            "requestParameters": {"name": seed.trail_name, "kmsKeyId": ""}
        }
    })
}

/// The event of the KMS call `name` on the key `key_id`, as CloudTrail
/// records it in the Security Tooling account and the forwarding rule
/// hands it to the management account's bus.
pub fn kms_event(seed: &Seed, name: &str, key_id: &str) -> Value {
    serde_json::json!({
        "version": "0", "id": format!("kms-{name}-{key_id}"),
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
        "account": seed.security_tooling, "time": "2026-11-30T12:00:00Z", "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08", "eventSource": "kms.amazonaws.com", "eventName": name,
            "awsRegion": "us-east-1", "recipientAccountId": seed.security_tooling,
            "requestParameters": {"keyId": key_id},
            "resources": [{"accountId": seed.security_tooling, "type": "AWS::KMS::Key",
                           "ARN": format!("arn:aws:kms:us-east-1:{}:key/{key_id}", seed.security_tooling)}]
        }
    })
}

/// `file` opened for appending: give one to the function's stdout and
/// another to its stderr, and neither overwrites what the other wrote (two
/// plain handles on one file each keep their own offset).
pub fn appending(file: &tempfile::NamedTempFile) -> std::fs::File {
    std::fs::OpenOptions::new()
        .append(true)
        .open(file.path())
        .expect("open the log for appending")
}

/// The function the emulated environment runs.
pub const FUNCTION_NAME: &str = "trailkey-test";

/// Its ARN, as `Lambda-Runtime-Invoked-Function-Arn` gives it: moto's
/// account and the region [`crate::isolate_aws_env`] sets.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:trailkey-test";

/// How long an invocation may run by default: its deadline is this long
/// after `/next` hands it out ([`RuntimeApi::invoke_with_timeout`] sets
/// another).
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);

const API_PREFIX: &str = "/2018-06-01/runtime/";

/// How often a waiting poll checks that its client is still there.
pub const CLIENT_CHECK: Duration = Duration::from_millis(50);

/// Write timeout of every connection. Reads have none: a keep-alive
/// connection may stay idle between requests for as long as its client
/// likes, and dropping the emulator shuts it down.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the runtime posted for an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The body of `/response`, as JSON (a body that is not JSON is kept as
    /// a JSON string of its text).
    Response(Value),
    /// The body of `/error`, as JSON like a response's, and its
    /// `Lambda-Runtime-Function-Error-Type` header if it had one.
    Error {
        body: Value,
        error_type: Option<String>,
    },
}

/// One invocation's result.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: Outcome,
    /// From when `/next` handed the event out to when the result's post
    /// (its body read) arrived: the time the runtime took for it.
    pub took: Duration,
}

impl Invocation {
    /// The response; panics, showing the error, if the runtime posted one.
    pub fn response(&self) -> &Value {
        match &self.outcome {
            Outcome::Response(body) => body,
            Outcome::Error { .. } => panic!("{} ended in an error: {self:?}", self.request_id),
        }
    }

    /// The error document; panics if the runtime posted a response.
    pub fn error(&self) -> &Value {
        match &self.outcome {
            Outcome::Error { body, .. } => body,
            Outcome::Response(_) => panic!("{} did not fail: {self:?}", self.request_id),
        }
    }
}

/// The emulator; stopped when dropped.
pub struct RuntimeApi {
    /// `127.0.0.1:<port>`, the `host:port` that `AWS_LAMBDA_RUNTIME_API`
    /// holds.
    pub address: String,
    shared: Arc<Shared>,
    port: u16,
    server: Option<Server>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled on every change of `state`.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    stop: bool,
    /// Queued and not handed out yet.
    queue: VecDeque<Queued>,
    /// Handed out, no result yet: when.
    handed_out: HashMap<String, Instant>,
    results: HashMap<String, Invocation>,
    init_errors: Vec<Value>,
    polls: usize,
    /// Polls waiting for an event now.
    waiting: usize,
    rejected: Vec<String>,
    /// Every request ID given out by `invoke`, for fresh IDs.
    invoked: u64,
}

struct Queued {
    request_id: String,
    /// The body `/next` answers with.
    body: Vec<u8>,
    timeout: Duration,
}

/// The server's side of the emulator.
struct Api(Arc<Shared>);

impl Handler for Api {
    fn handle(&self, request: Request, connection: &Connection) -> Option<Response> {
        if request.method == "GET" && request.path() == next_path() {
            // `None`: stopped, or the client went away while it waited.
            self.0.next_event(connection)
        } else {
            Some(self.0.post(&request))
        }
    }

    fn stopping(&self) -> bool {
        self.0.lock().stop
    }
}

impl RuntimeApi {
    /// An emulator on a free loopback port, with no event queued.
    pub fn start() -> RuntimeApi {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let server = Server::start(
            Options {
                name: "lambda runtime API",
                keep_alive: true,
                read_timeout: None,
                write_timeout: WRITE_TIMEOUT,
            },
            Api(Arc::clone(&shared)),
        );
        RuntimeApi {
            address: server.address().to_string(),
            port: server.address().port(),
            shared,
            server: Some(server),
        }
    }

    /// Queues `event` with the default [`FUNCTION_TIMEOUT`]; returns its
    /// request ID.
    pub fn invoke(&self, event: Value) -> String {
        self.invoke_with_timeout(event, FUNCTION_TIMEOUT)
    }

    /// Queues `event` for the next `/next` poll, to be handed out with a
    /// deadline `timeout` after that poll; returns its request ID.
    pub fn invoke_with_timeout(&self, event: Value, timeout: Duration) -> String {
        self.queue(event.to_string().into_bytes(), timeout)
    }

    /// Queues `body` as it is, JSON or not (Lambda's own `Invoke` takes
    /// only JSON, but a runtime must not trust that), with the default
    /// [`FUNCTION_TIMEOUT`]; returns its request ID.
    pub fn invoke_raw(&self, body: &[u8]) -> String {
        self.queue(body.to_vec(), FUNCTION_TIMEOUT)
    }

    fn queue(&self, body: Vec<u8>, timeout: Duration) -> String {
        let mut state = self.shared.lock();
        state.invoked += 1;
        // UUID-shaped like Lambda's: the port tells emulators apart, the
        // count invocations.
        let request_id = format!("{:08x}-0000-4000-8000-{:012x}", self.port, state.invoked);
        state.queue.push_back(Queued {
            request_id: request_id.clone(),
            body,
            timeout,
        });
        self.shared.changed.notify_all();
        request_id
    }

    /// The result of `request_id` once the runtime has posted it; panics
    /// after `timeout` without one, telling how far the invocation got.
    pub fn wait_result(&self, request_id: &str, timeout: Duration) -> Invocation {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if let Some(invocation) = state.results.get(request_id) {
                return invocation.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                let stage = if state.queue.iter().any(|q| q.request_id == request_id) {
                    "still queued: no runtime polled /next for it"
                } else if state.handed_out.contains_key(request_id) {
                    "handed out by /next, no response or error posted"
                } else {
                    "never invoked on this emulator"
                };
                panic!(
                    "lambda runtime API: no result for {request_id} after {timeout:?}: {stage} \
                     ({} polls of /next; init errors {:?}; rejected posts {:?})",
                    state.polls, state.init_errors, state.rejected
                );
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The bodies posted to `/runtime/init/error`, as JSON (`null` for an
    /// empty one), in order.
    pub fn init_errors(&self) -> Vec<Value> {
        self.shared.lock().init_errors.clone()
    }

    /// How many `/next` requests have arrived, answered or waiting: one
    /// process that served n events has polled n + 1 times once it waits
    /// for another.
    pub fn polls(&self) -> usize {
        self.shared.lock().polls
    }

    /// The polls waiting for an event now: a poll whose client has gone
    /// stops waiting within [`CLIENT_CHECK`] of the emulator seeing it.
    pub fn waiting(&self) -> usize {
        self.shared.lock().waiting
    }

    /// The posts answered 400 (unknown request ID, or a second result for
    /// one), as `METHOD path: reason`.
    pub fn rejected(&self) -> Vec<String> {
        self.shared.lock().rejected.clone()
    }

    /// The environment Lambda gives a custom runtime, pointing at this
    /// emulator: everything `lambda_runtime` 1.5 reads (it panics without
    /// the function name, memory size or version), for `Command::envs`.
    /// AWS credentials and the region are not in it: take them from
    /// [`crate::isolate_aws_env`].
    pub fn lambda_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{FUNCTION_NAME}"),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("2026/01/01/[$LATEST]{:032x}", self.port),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ]
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        // Wakes pending polls up: they see `stop` and end.
        self.shared.changed.notify_all();
        // Closes every connection, idle keep-alive ones included.
        drop(self.server.take());
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The long poll: waits for an event and hands it out; `None` if the
    /// emulator stops or the client closes its connection first.
    fn next_event(&self, client: &Connection) -> Option<Response> {
        let mut state = self.lock();
        state.polls += 1;
        state.waiting += 1;
        self.changed.notify_all();
        // A client seen gone, whether an event is queued or not (checked
        // again every CLIENT_CHECK while waiting), gives its place up.
        let queued = loop {
            if state.stop || client.peer_closed() {
                state.waiting -= 1;
                self.changed.notify_all();
                return None;
            }
            if let Some(queued) = state.queue.pop_front() {
                state.waiting -= 1;
                break queued;
            }
            state = self
                .changed
                .wait_timeout(state, CLIENT_CHECK)
                .map(|(state, _)| state)
                .unwrap_or_else(|e| e.into_inner().0);
        };
        let deadline = SystemTime::now() + queued.timeout;
        state
            .handed_out
            .insert(queued.request_id.clone(), Instant::now());
        self.changed.notify_all();
        let headers = [
            ("Content-Type", "application/json".to_owned()),
            ("Lambda-Runtime-Aws-Request-Id", queued.request_id.clone()),
            ("Lambda-Runtime-Deadline-Ms", epoch_ms(deadline).to_string()),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                FUNCTION_ARN.to_owned(),
            ),
            ("Lambda-Runtime-Trace-Id", trace_id(state.polls)),
        ];
        Some(Response {
            status: 200,
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            body: queued.body,
        })
    }

    /// Every request but `/next`.
    fn post(&self, request: &Request) -> Response {
        let arrived = Instant::now();
        let route = (request.method == "POST")
            .then(|| request.path().strip_prefix(API_PREFIX))
            .flatten();
        if route == Some("init/error") {
            let mut state = self.lock();
            state
                .init_errors
                .push(json_or_text(&request.body, Value::Null));
            self.changed.notify_all();
            return accepted();
        }
        let result = route
            .and_then(|r| r.strip_prefix("invocation/"))
            .and_then(|r| r.rsplit_once('/'))
            .filter(|(id, kind)| !id.is_empty() && !id.contains('/') && kind_known(kind));
        let Some((request_id, kind)) = result else {
            return error_answer(
                404,
                "NotFound",
                &format!("no {} {}", request.method, request.path()),
            );
        };
        let body = json_or_text(&request.body, Value::String(String::new()));
        let mut state = self.lock();
        let problem = if state.results.contains_key(request_id) {
            Some("a result was already posted for this request ID")
        } else if !state.handed_out.contains_key(request_id) {
            Some("/next did not hand this request ID out")
        } else {
            None
        };
        if let Some(problem) = problem {
            state
                .rejected
                .push(format!("{} {}: {problem}", request.method, request.path()));
            self.changed.notify_all();
            return error_answer(400, "InvalidRequestID", problem);
        }
        let handed_out = state.handed_out.remove(request_id).unwrap_or(arrived);
        let outcome = if kind == "response" {
            Outcome::Response(body)
        } else {
            Outcome::Error {
                body,
                error_type: request
                    .field("lambda-runtime-function-error-type")
                    .map(str::to_owned),
            }
        };
        state.results.insert(
            request_id.to_owned(),
            Invocation {
                request_id: request_id.to_owned(),
                outcome,
                took: arrived.saturating_duration_since(handed_out),
            },
        );
        self.changed.notify_all();
        accepted()
    }
}

fn next_path() -> String {
    format!("{API_PREFIX}invocation/next")
}

fn kind_known(kind: &str) -> bool {
    matches!(kind, "response" | "error")
}

fn accepted() -> Response {
    Response {
        status: 202,
        headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
        body: br#"{"status":"OK"}"#.to_vec(),
    }
}

fn error_answer(status: u16, error_type: &str, message: &str) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
        body: serde_json::json!({"errorMessage": message, "errorType": error_type})
            .to_string()
            .into_bytes(),
    }
}

/// The body as JSON; `empty` if there is none; a JSON string of its text
/// if it is not JSON.
fn json_or_text(body: &[u8], empty: Value) -> Value {
    if body.is_empty() {
        return empty;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn epoch_ms(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// An X-Ray trace header shaped like Lambda's, different for each poll.
fn trace_id(poll: usize) -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!("Root=1-{seconds:08x}-{poll:024x};Parent={poll:016x};Sampled=0")
}

/// The emulator against a runtime client made of std `TcpStream`s, which
/// writes requests as hyper does (keep-alive, `Content-Length` or chunked
/// bodies).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Headers, header, read_fields};
    use serde_json::json;
    use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
    use std::net::TcpStream;
    use std::sync::mpsc;

    /// Far more than anything here takes on loopback.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// One runtime connection.
    struct Client {
        stream: TcpStream,
        reader: BufReader<TcpStream>,
    }

    /// A response as the client read it.
    struct Reply {
        status: u16,
        headers: Headers,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> &str {
            header(&self.headers, name).unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
        }

        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).expect("a JSON body")
        }
    }

    impl Client {
        fn connect(api: &RuntimeApi) -> Client {
            let stream = TcpStream::connect(&api.address).expect("connect");
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let reader = BufReader::new(stream.try_clone().unwrap());
            Client { stream, reader }
        }

        fn send(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).expect("send");
        }

        /// A request with `Content-Length` (none without a body), and its
        /// response.
        fn request(&mut self, method: &str, path: &str, extra: &str, body: &[u8]) -> Reply {
            let length = if body.is_empty() {
                String::new()
            } else {
                format!("content-length: {}\r\n", body.len())
            };
            let mut bytes = format!(
                "{method} {path} HTTP/1.1\r\nhost: runtime\r\nuser-agent: std-test\r\n{extra}{length}\r\n"
            )
            .into_bytes();
            bytes.extend_from_slice(body);
            self.send(&bytes);
            self.read_reply()
                .expect("a response, not the end of the connection")
        }

        fn next(&mut self) -> Reply {
            self.request("GET", "/2018-06-01/runtime/invocation/next", "", b"")
        }

        /// The next response; `None` if the server closed the connection.
        fn read_reply(&mut self) -> Option<Reply> {
            let mut status_line = String::new();
            if self
                .reader
                .read_line(&mut status_line)
                .expect("read a response")
                == 0
            {
                return None;
            }
            let status = status_line
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            let headers = read_fields(&mut self.reader).unwrap();
            let length: usize = header(&headers, "content-length")
                .expect("every answer has a Content-Length")
                .parse()
                .unwrap();
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body).unwrap();
            Some(Reply {
                status,
                headers,
                body,
            })
        }

        /// Whether the server closed the connection (within [`PATIENCE`]).
        fn closed_by_server(&mut self) -> bool {
            match self.reader.read(&mut [0u8; 1]) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            }
        }
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(Instant::now() < deadline, "not within {PATIENCE:?}: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn now_ms() -> u128 {
        epoch_ms(SystemTime::now())
    }

    #[test]
    fn one_kept_alive_connection_serves_two_invocations() {
        let api = RuntimeApi::start();
        let first = api.invoke(json!({"n": 1}));
        let second = api.invoke_with_timeout(json!({"n": 2}), Duration::from_secs(5));
        assert_ne!(first, second);
        let mut runtime = Client::connect(&api);

        let before = now_ms();
        let event = runtime.next();
        assert_eq!(event.status, 200);
        assert_eq!(event.json(), json!({"n": 1}));
        assert_eq!(event.header("Content-Type"), "application/json");
        assert_eq!(event.header("Lambda-Runtime-Aws-Request-Id"), first);
        assert_eq!(
            event.header("Lambda-Runtime-Invoked-Function-Arn"),
            FUNCTION_ARN
        );
        assert!(
            event
                .header("Lambda-Runtime-Trace-Id")
                .starts_with("Root=1-")
        );
        let deadline: u128 = event.header("Lambda-Runtime-Deadline-Ms").parse().unwrap();
        let timeout = FUNCTION_TIMEOUT.as_millis();
        assert!(
            (before + timeout..=now_ms() + timeout).contains(&deadline),
            "deadline {deadline} is not {FUNCTION_TIMEOUT:?} after the poll at {before}"
        );
        assert!(header(&event.headers, "connection").is_none());
        let posted = runtime.request(
            "POST",
            &format!("/2018-06-01/runtime/invocation/{first}/response"),
            "content-type: application/json\r\n",
            br#"{"ok":true}"#,
        );
        assert_eq!(posted.status, 202);

        // The same connection again: the second event, and an error posted
        // with a chunked body (an extension, a trailer) as hyper streams it.
        let event = runtime.next();
        assert_eq!(event.header("Lambda-Runtime-Aws-Request-Id"), second);
        assert_eq!(event.json(), json!({"n": 2}));
        let deadline: u128 = event.header("Lambda-Runtime-Deadline-Ms").parse().unwrap();
        assert!(deadline <= now_ms() + 5_000);
        let chunks = [
            r#"{"errorMessage":"#,
            r#""no key","#,
            r#""errorType":"Missing"}"#,
        ];
        let mut body = String::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let extension = if i == 1 { ";name=value" } else { "" };
            body.push_str(&format!("{:x}{extension}\r\n{chunk}\r\n", chunk.len()));
        }
        body.push_str("0\r\nx-trailer: seen\r\n\r\n");
        runtime.send(
            format!(
                "POST /2018-06-01/runtime/invocation/{second}/error HTTP/1.1\r\nhost: runtime\r\n\
                 lambda-runtime-function-error-type: Unhandled\r\n\
                 transfer-encoding: chunked\r\n\r\n{body}"
            )
            .as_bytes(),
        );
        assert_eq!(runtime.read_reply().unwrap().status, 202);

        let done = api.wait_result(&first, PATIENCE);
        assert_eq!(done.request_id, first);
        assert_eq!(done.response(), &json!({"ok": true}));
        assert!(done.took < PATIENCE);
        let failed = api.wait_result(&second, PATIENCE);
        assert_eq!(
            failed.outcome,
            Outcome::Error {
                body: json!({"errorMessage": "no key", "errorType": "Missing"}),
                error_type: Some("Unhandled".to_owned()),
            }
        );
        assert_eq!(api.polls(), 2);
        assert!(api.rejected().is_empty());
        assert!(api.init_errors().is_empty());
    }

    #[test]
    fn next_waits_for_a_later_invoke_without_blocking_other_connections() {
        let api = RuntimeApi::start();
        let (sender, received) = mpsc::channel();
        let mut runtime = Client::connect(&api);
        let poller = std::thread::spawn(move || {
            let event = runtime.next();
            sender.send((Instant::now(), event)).unwrap();
        });
        wait_until("the poll arrives", || api.polls() == 1);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            received.try_recv().is_err(),
            "/next answered without an event"
        );

        // Another connection is served meanwhile.
        let mut other = Client::connect(&api);
        let posted = other.request("POST", "/2018-06-01/runtime/init/error", "", b"{}");
        assert_eq!(posted.status, 202);

        let invoked = Instant::now();
        let id = api.invoke(json!({"late": true}));
        let (arrived, event) = received.recv_timeout(PATIENCE).expect("the event");
        poller.join().unwrap();
        assert_eq!(event.header("Lambda-Runtime-Aws-Request-Id"), id);
        assert_eq!(event.json(), json!({"late": true}));
        assert!(arrived - invoked < Duration::from_secs(1));
        assert_eq!(api.polls(), 1);
    }

    #[test]
    fn init_errors_unknown_paths_and_request_ids() {
        let api = RuntimeApi::start();
        let mut runtime = Client::connect(&api);
        let error = json!({"errorMessage": "no config", "errorType": "Runtime.InitError"});
        let posted = runtime.request(
            "POST",
            "/2018-06-01/runtime/init/error",
            "lambda-runtime-function-error-type: Runtime.InitError\r\n",
            error.to_string().as_bytes(),
        );
        assert_eq!(posted.status, 202);
        assert_eq!(api.init_errors(), vec![error]);

        for (method, path) in [
            ("GET", "/2018-06-01/runtime/invocation/x/response"),
            ("POST", "/2018-06-01/runtime/invocation/x/y/response"),
            ("POST", "/2018-06-01/runtime/invocation/x/result"),
            ("POST", "/2018-06-01/runtime/invocation/next"),
            ("GET", "/2018-06-01/runtime/next"),
            ("GET", "/"),
        ] {
            let reply = runtime.request(method, path, "", b"");
            assert_eq!(reply.status, 404, "{method} {path}");
            assert_eq!(reply.json()["errorType"], "NotFound");
        }

        // A result for an ID /next never handed out, then one twice.
        let unknown = runtime.request(
            "POST",
            "/2018-06-01/runtime/invocation/not-handed-out/response",
            "",
            b"{}",
        );
        assert_eq!(unknown.status, 400);
        let id = api.invoke(json!({}));
        runtime.next();
        let path = format!("/2018-06-01/runtime/invocation/{id}/response");
        assert_eq!(runtime.request("POST", &path, "", b"1").status, 202);
        assert_eq!(runtime.request("POST", &path, "", b"2").status, 400);
        assert_eq!(api.wait_result(&id, PATIENCE).response(), &json!(1));
        assert_eq!(api.rejected().len(), 2, "{:?}", api.rejected());

        // `Connection: close` is honoured.
        let reply = runtime.request("GET", "/", "connection: close\r\n", b"");
        assert_eq!(reply.header("Connection"), "close");
        assert!(runtime.closed_by_server());
    }

    #[test]
    fn a_poll_whose_client_left_does_not_take_the_event() {
        let api = RuntimeApi::start();
        let mut gone = Client::connect(&api);
        gone.send(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: runtime\r\n\r\n");
        wait_until("the first poll arrives", || api.polls() == 1);
        drop(gone);
        // The emulator sees the client gone on its own, event or not.
        wait_until("the gone poll stops waiting", || api.waiting() == 0);

        let mut runtime = Client::connect(&api);
        let id = api.invoke(json!({"for": "the live one"}));
        let event = runtime.next();
        assert_eq!(event.header("Lambda-Runtime-Aws-Request-Id"), id);
        assert_eq!(api.polls(), 2);
    }

    #[test]
    fn dropping_it_closes_pending_polls_and_idle_connections() {
        let api = RuntimeApi::start();
        let mut polling = Client::connect(&api);
        polling.send(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: runtime\r\n\r\n");
        let mut idle = Client::connect(&api);
        assert_eq!(idle.request("GET", "/", "", b"").status, 404);
        wait_until("the poll arrives", || api.polls() == 1);

        // Dropped on another thread: a drop that waits for its connections'
        // threads forever fails the test instead of hanging it.
        let (dropped, done) = mpsc::channel();
        std::thread::spawn(move || {
            drop(api);
            let _ = dropped.send(());
        });
        done.recv_timeout(Duration::from_secs(2))
            .expect("dropping the emulator returns");
        assert!(polling.closed_by_server());
        assert!(idle.closed_by_server());
    }
}
