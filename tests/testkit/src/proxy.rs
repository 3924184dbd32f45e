//! A recording HTTP/1.1 proxy on 127.0.0.1 in front of a moto server, for
//! tests that need to see or steer trailkey's AWS traffic; a [`Handler`] of
//! the kit's HTTP server ([`crate::http`]).
//!
//! Each client connection carries one request: the proxy reads it, asks its
//! [`Rule`]s what to do, forwards it to moto on a fresh connection (its
//! body dechunked) or answers it itself, records the [`Exchange`], writes
//! the response back (dechunked too) and closes both connections
//! (`Connection: close`).
//!
//! A rule can also rewrite the response moto gave to a forwarded request
//! ([`Rule::rewrite`]), e.g. to answer as real AWS would where moto is
//! lenient ([`crate::rules`]), and send moto another request in place of the
//! client's ([`Rule::upstream`]), e.g. the same call signed by other
//! credentials.
//!
//! A rule can hold a request until the traffic so far meets a condition
//! ([`hold_until`]): it is asked again each time the traffic changes. A hold
//! ends after [`HOLD_LIMIT`] at the latest: the request is then forwarded
//! and the hold is reported ([`Proxy::expired_holds`]; dropping the proxy
//! panics if there was one). Dropping the proxy ends the holds still
//! pending: their clients see the connection close.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::http::{
    self, Connection, Handler, Options, Server, header, read_response, without_hop_by_hop,
};
pub use crate::http::{Headers, Response};

/// The longest a rule may hold a request.
pub const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// Read and write timeout of both connections of an exchange.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A request as the client sent it, its body dechunked.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    /// The signing name from the SigV4 credential scope: `kms`, `sts`,
    /// `organizations`, `cloudtrail`, `s3`, `account`, `controltower`.
    pub service: String,
    /// The operation: the `X-Amz-Target` operation (KMS, Organizations,
    /// CloudTrail), the form's `Action` (STS), the path's operation for the
    /// Account Management API (`POST /listRegions` is `ListRegions`) and
    /// Control Tower (`POST /list-landingzones` is `ListLandingZones`,
    /// [`CONTROL_TOWER_OPERATIONS`]), else method and path (S3).
    pub action: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Whether this is `service:action`, e.g. `("kms", "CreateKey")`.
    pub fn is(&self, service: &str, action: &str) -> bool {
        self.service == service && self.action == action
    }
}

/// One request and the response the client got.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Request,
    pub response: Response,
    /// When the response was recorded, just before the client got it.
    pub at: Instant,
    /// Whether moto answered (the response possibly rewritten by a rule),
    /// not a rule.
    pub forwarded: bool,
    /// The request moto got in place of the client's, when a rule gave one
    /// ([`Rule::upstream`]); `request` stays what the client sent.
    pub upstream: Option<Request>,
}

impl Exchange {
    /// `service:action`, as [`crate::is_write`] takes it.
    pub fn call(&self) -> String {
        format!("{}:{}", self.request.service, self.request.action)
    }

    pub fn is(&self, service: &str, action: &str) -> bool {
        self.request.is(service, action)
    }

    /// Whether the call changes AWS state: an S3 request other than GET or
    /// HEAD, otherwise by its action ([`crate::is_write`]).
    pub fn is_write(&self) -> bool {
        if self.request.service == "s3" {
            !matches!(self.request.method.as_str(), "GET" | "HEAD")
        } else {
            crate::is_write(&self.request.action)
        }
    }

    pub fn response_text(&self) -> String {
        String::from_utf8_lossy(&self.response.body).into_owned()
    }
}

/// What the proxy has seen so far, as rules see it.
#[derive(Debug, Default)]
pub struct Traffic {
    /// `(service, action)` of every request received, held ones included,
    /// in arrival order.
    pub arrived: Vec<(String, String)>,
    /// Every exchange whose response has been read, in that order.
    pub exchanges: Vec<Exchange>,
}

impl Traffic {
    /// How many `service:action` requests have been received.
    pub fn arrived(&self, service: &str, action: &str) -> usize {
        self.arrived
            .iter()
            .filter(|(s, a)| s == service && a == action)
            .count()
    }

    /// How many `service:action` requests have been answered.
    pub fn answered(&self, service: &str, action: &str) -> usize {
        self.exchanges
            .iter()
            .filter(|e| e.is(service, action))
            .count()
    }
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Forward it to moto (unless another rule decides otherwise).
    Forward,
    /// Not yet: ask again when the traffic changes.
    Hold,
    /// Answer it without forwarding it.
    Respond(Response),
}

/// Decides about each request, given the traffic so far. The proxy asks
/// its rules in order; the first that does not say `Forward` decides. Rules
/// run under the proxy's lock: they must not call the proxy.
pub trait Rule: Send + Sync + 'static {
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision;

    /// The response to give for a request that moto answered, given moto's
    /// response and the traffic before it. Every rule rewrites in turn, in
    /// order; by default a rule keeps the response as it is.
    fn rewrite(&self, request: &Request, response: Response, traffic: &Traffic) -> Response {
        let _ = (request, traffic);
        response
    }

    /// The request to send moto in place of `request`, once every rule has
    /// decided to forward it; `None` (the default) keeps the client's. The
    /// first rule, in order, that gives one decides. The exchange records
    /// the client's request, which [`Rule::rewrite`] gets too.
    fn upstream(&self, request: &Request, traffic: &Traffic) -> Option<Request> {
        let _ = (request, traffic);
        None
    }
}

impl<F> Rule for F
where
    F: Fn(&Request, &Traffic) -> Decision + Send + Sync + 'static,
{
    fn decide(&self, request: &Request, traffic: &Traffic) -> Decision {
        self(request, traffic)
    }
}

/// Holds every `service:action` request until `ready` holds for the traffic.
pub fn hold_until(
    service: &'static str,
    action: &'static str,
    ready: impl Fn(&Traffic) -> bool + Send + Sync + 'static,
) -> impl Rule {
    move |request: &Request, traffic: &Traffic| {
        if request.is(service, action) && !ready(traffic) {
            Decision::Hold
        } else {
            Decision::Forward
        }
    }
}

/// The proxy; stopped when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// The moto endpoint it forwards to.
    pub upstream: String,
    shared: Arc<Shared>,
    server: Option<Server>,
}

struct Shared {
    /// `host:port` of moto.
    upstream: String,
    rules: Vec<Box<dyn Rule>>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    traffic: Traffic,
    /// The requests held for [`HOLD_LIMIT`], as `service:action`.
    expired: Vec<String>,
    /// The proxy is being dropped: holds end.
    stop: bool,
}

/// The server's side of the proxy.
struct Exchanges(Arc<Shared>);

/// What the rules made of a request.
enum Verdict {
    /// Forward it to moto, or this request in its place.
    Forward(Option<Request>),
    /// Answer it with this.
    Respond(Response),
}

impl Handler for Exchanges {
    fn handle(&self, request: http::Request, _: &Connection) -> Option<Response> {
        self.0.exchange(request)
    }

    fn stopping(&self) -> bool {
        self.0.lock().stop
    }
}

impl Proxy {
    /// A proxy that forwards every request to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        Proxy::with_rules(upstream, Vec::new())
    }

    /// A proxy that asks `rules` about each request.
    pub fn with_rules(upstream: &str, rules: Vec<Box<dyn Rule>>) -> Proxy {
        let host = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the proxy forwards to http:// only, not {upstream}"))
            .trim_end_matches('/')
            .to_owned();
        let shared = Arc::new(Shared {
            upstream: host,
            rules,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let server = Server::start(
            Options {
                name: "proxy",
                keep_alive: false,
                read_timeout: Some(IO_TIMEOUT),
                write_timeout: IO_TIMEOUT,
            },
            Exchanges(Arc::clone(&shared)),
        );
        Proxy {
            endpoint: server.endpoint(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            shared,
            server: Some(server),
        }
    }

    /// Every exchange so far, in the order the responses were read.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.lock().traffic.exchanges.clone()
    }

    /// The requests a rule held for [`HOLD_LIMIT`] before they were
    /// forwarded anyway, as `service:action`.
    pub fn expired_holds(&self) -> Vec<String> {
        self.shared.lock().expired.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        drop(self.server.take());
        let expired = self.expired_holds();
        if !expired.is_empty() && !std::thread::panicking() {
            panic!(
                "proxy: requests held for {HOLD_LIMIT:?} and then forwarded anyway: {expired:?}"
            );
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One exchange: the answer to the client's request, recorded; `None`
    /// if the proxy stopped while a rule held it.
    fn exchange(&self, request: http::Request) -> Option<Response> {
        let (service, action) = service_and_action(
            &request.method,
            &request.target,
            &request.headers,
            &request.body,
        );
        let request_line = format!("{} {} {}", request.method, request.target, request.version);
        let request = Request {
            method: request.method,
            target: request.target,
            headers: request.headers,
            body: request.body,
            service,
            action,
        };
        let (response, forwarded, upstream) = match self.decide(&request)? {
            Verdict::Respond(response) => (response, false, None),
            Verdict::Forward(upstream) => {
                match self.forward(&request_line, upstream.as_ref().unwrap_or(&request)) {
                    Ok(response) => (response, true, upstream),
                    Err(e) => (
                        Response {
                            status: 502,
                            headers: Vec::new(),
                            body: format!("proxy: forwarding to {} failed: {e}", self.upstream)
                                .into_bytes(),
                        },
                        false,
                        upstream,
                    ),
                }
            }
        };
        let mut state = self.lock();
        let response = if forwarded {
            self.rules.iter().fold(response, |response, rule| {
                rule.rewrite(&request, response, &state.traffic)
            })
        } else {
            response
        };
        state.traffic.exchanges.push(Exchange {
            request,
            response: response.clone(),
            at: Instant::now(),
            forwarded,
            upstream,
        });
        self.changed.notify_all();
        Some(response)
    }

    /// Records the request's arrival and asks the rules until they forward
    /// it (with the request moto is to get in its place, if a rule gives
    /// one: [`Rule::upstream`]) or answer it; `None` if the proxy stops
    /// meanwhile.
    fn decide(&self, request: &Request) -> Option<Verdict> {
        let deadline = Instant::now() + HOLD_LIMIT;
        let mut state = self.lock();
        state
            .traffic
            .arrived
            .push((request.service.clone(), request.action.clone()));
        self.changed.notify_all();
        loop {
            if state.stop {
                return None;
            }
            let decision = self
                .rules
                .iter()
                .map(|rule| rule.decide(request, &state.traffic))
                .find(|d| !matches!(d, Decision::Forward))
                .unwrap_or(Decision::Forward);
            match decision {
                Decision::Forward => {
                    let upstream = self
                        .rules
                        .iter()
                        .find_map(|rule| rule.upstream(request, &state.traffic));
                    return Some(Verdict::Forward(upstream));
                }
                Decision::Respond(response) => return Some(Verdict::Respond(response)),
                Decision::Hold => {
                    let now = Instant::now();
                    if now >= deadline {
                        let call = format!("{}:{}", request.service, request.action);
                        eprintln!("proxy: {call} held for {HOLD_LIMIT:?}; forwarding it anyway");
                        state.expired.push(call);
                        return Some(Verdict::Forward(None));
                    }
                    state = self
                        .changed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Sends the request to moto with its body dechunked (moto refuses
    /// chunk extensions) and `Connection: close`, and reads the whole
    /// response.
    fn forward(&self, request_line: &str, request: &Request) -> std::io::Result<Response> {
        let mut upstream = TcpStream::connect(&self.upstream)?;
        upstream.set_read_timeout(Some(IO_TIMEOUT))?;
        upstream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut out = format!("{request_line}\r\n");
        for (name, value) in without_hop_by_hop(&request.headers, &["expect", "content-length"]) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            request.body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&request.body);
        upstream.write_all(&bytes)?;
        upstream.flush()?;
        read_response(&mut BufReader::new(upstream), request.method == "HEAD")
    }
}

/// Control Tower's `POST` operations (rest-json, signing name
/// `controltower`) by `requestUri`, as the controltower model (2018-05-10)
/// lists them. Its tag operations (`/tags/{resourceArn}`, by method) are
/// left out: they keep method and path as their action.
pub const CONTROL_TOWER_OPERATIONS: [(&str, &str); 25] = [
    ("/create-landingzone", "CreateLandingZone"),
    ("/delete-landingzone", "DeleteLandingZone"),
    ("/get-landingzone", "GetLandingZone"),
    ("/get-landingzone-operation", "GetLandingZoneOperation"),
    ("/list-landingzone-operations", "ListLandingZoneOperations"),
    ("/list-landingzones", "ListLandingZones"),
    ("/reset-landingzone", "ResetLandingZone"),
    ("/update-landingzone", "UpdateLandingZone"),
    ("/disable-baseline", "DisableBaseline"),
    ("/enable-baseline", "EnableBaseline"),
    ("/get-baseline", "GetBaseline"),
    ("/get-baseline-operation", "GetBaselineOperation"),
    ("/get-enabled-baseline", "GetEnabledBaseline"),
    ("/list-baselines", "ListBaselines"),
    ("/list-enabled-baselines", "ListEnabledBaselines"),
    ("/reset-enabled-baseline", "ResetEnabledBaseline"),
    ("/update-enabled-baseline", "UpdateEnabledBaseline"),
    ("/disable-control", "DisableControl"),
    ("/enable-control", "EnableControl"),
    ("/get-control-operation", "GetControlOperation"),
    ("/get-enabled-control", "GetEnabledControl"),
    ("/list-control-operations", "ListControlOperations"),
    ("/list-enabled-controls", "ListEnabledControls"),
    ("/reset-enabled-control", "ResetEnabledControl"),
    ("/update-enabled-control", "UpdateEnabledControl"),
];

/// The service (SigV4 credential scope, else the `X-Amz-Target` prefix)
/// and the action of a request.
fn service_and_action(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (String, String) {
    let amz_target = header(headers, "x-amz-target");
    let signed = header(headers, "authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .map(str::to_owned);
    let service = signed.unwrap_or_else(|| match amz_target {
        Some(t) if t.starts_with("TrentService.") => "kms".to_owned(),
        Some(t) if t.starts_with("AWSOrganizations") => "organizations".to_owned(),
        Some(t) if t.contains("CloudTrail") => "cloudtrail".to_owned(),
        _ => "?".to_owned(),
    });
    let form_action = || {
        String::from_utf8_lossy(body)
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_owned)
    };
    // REST-JSON: the Account Management API's `POST /listRegions` is
    // `ListRegions`; Control Tower's paths are the model's `requestUri`s
    // ([`CONTROL_TOWER_OPERATIONS`]).
    let rest_json_action = || {
        let path = target.split('?').next().unwrap_or_default();
        if method != "POST" {
            return None;
        }
        match service.as_str() {
            "account" => {
                let name = path.strip_prefix('/').filter(|p| !p.contains('/'))?;
                let mut chars = name.chars();
                let first = chars.next()?;
                Some(first.to_ascii_uppercase().to_string() + chars.as_str())
            }
            "controltower" => CONTROL_TOWER_OPERATIONS
                .iter()
                .find(|(uri, _)| *uri == path)
                .map(|(_, operation)| (*operation).to_owned()),
            _ => None,
        }
    };
    let action = match amz_target {
        Some(t) => t.rsplit('.').next().unwrap_or(t).to_owned(),
        None => form_action()
            .or_else(rest_json_action)
            .unwrap_or_else(|| format!("{method} {target}")),
    };
    (service, action)
}
