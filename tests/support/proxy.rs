//! A recording HTTP/1.1 proxy on 127.0.0.1 in front of a moto server, for
//! tests that need to see or steer trailkey's AWS traffic.
//!
//! Each client connection carries one request: the proxy reads it, asks its
//! [`Rule`]s what to do, forwards it to moto on a fresh connection (its
//! body dechunked) or answers it itself, records the [`Exchange`], writes
//! the response back (dechunked too) and closes both connections
//! (`Connection: close`).
//!
//! A rule can also rewrite the response moto gave to a forwarded request
//! ([`Rule::rewrite`]), e.g. to answer as real AWS would where moto is
//! lenient (`aws_rules.rs`).
//!
//! A rule can hold a request until the traffic so far meets a condition
//! ([`hold_until`]): it is asked again each time the traffic changes. A hold
//! ends after [`HOLD_LIMIT`] at the latest: the request is then forwarded
//! and the hold is reported ([`Proxy::expired_holds`]; dropping the proxy
//! panics if there was one).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a rule may hold a request.
pub const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// Header names and values, in order.
pub type Headers = Vec<(String, String)>;

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
    /// `organizations`, `cloudtrail`, `s3`, `account`.
    pub service: String,
    /// The operation: the `X-Amz-Target` operation (KMS, Organizations,
    /// CloudTrail), the form's `Action` (STS), the path's operation for the
    /// Account Management API (`POST /listRegions` is `ListRegions`), else
    /// method and path (S3).
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

/// A response, its body dechunked.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
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
}

impl Exchange {
    /// `service:action`, as `support::is_write` takes it.
    pub fn call(&self) -> String {
        format!("{}:{}", self.request.service, self.request.action)
    }

    pub fn is(&self, service: &str, action: &str) -> bool {
        self.request.is(service, action)
    }

    /// Whether the call changes AWS state: an S3 request other than GET or
    /// HEAD, otherwise by its action (`support::is_write`).
    pub fn is_write(&self) -> bool {
        if self.request.service == "s3" {
            !matches!(self.request.method.as_str(), "GET" | "HEAD")
        } else {
            super::is_write(&self.request.action)
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
    address: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    /// `host:port` of moto.
    upstream: String,
    rules: Vec<Box<dyn Rule>>,
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

#[derive(Default)]
struct State {
    traffic: Traffic,
    /// The requests held for [`HOLD_LIMIT`], as `service:action`.
    expired: Vec<String>,
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
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream: host,
            rules,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || {
                    if let Err(e) = shared.serve(client) {
                        eprintln!("proxy: an exchange failed: {e}");
                    }
                });
            }
        });
        Proxy {
            endpoint: format!("http://{address}"),
            upstream: upstream.trim_end_matches('/').to_owned(),
            shared,
            address,
            accept: Some(accept),
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
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop up so that it sees `stop`.
        let _ = TcpStream::connect(self.address);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
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

    /// One exchange on one client connection.
    fn serve(&self, mut client: TcpStream) -> std::io::Result<()> {
        client.set_read_timeout(Some(IO_TIMEOUT))?;
        client.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut reader = BufReader::new(client.try_clone()?);
        // A connection closed before a request (e.g. `Drop`'s wake-up).
        let Some((request_line, headers)) = read_head(&mut reader)? else {
            return Ok(());
        };
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        if header(&headers, "expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
            client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = read_body(&mut reader, &headers, true)?;
        let (service, action) = service_and_action(&method, &target, &headers, &body);
        let request = Request {
            method,
            target,
            headers,
            body,
            service,
            action,
        };
        let (response, forwarded) = match self.decide(&request) {
            Some(response) => (response, false),
            None => match self.forward(&request_line, &request) {
                Ok(response) => (response, true),
                Err(e) => (
                    Response {
                        status: 502,
                        headers: Vec::new(),
                        body: format!("proxy: forwarding to {} failed: {e}", self.upstream)
                            .into_bytes(),
                    },
                    false,
                ),
            },
        };
        let head_only = request.method == "HEAD";
        let reply = {
            let mut state = self.lock();
            let response = if forwarded {
                self.rules.iter().fold(response, |response, rule| {
                    rule.rewrite(&request, response, &state.traffic)
                })
            } else {
                response
            };
            let reply = encode_response(&response, head_only);
            state.traffic.exchanges.push(Exchange {
                request,
                response,
                at: Instant::now(),
                forwarded,
            });
            self.changed.notify_all();
            reply
        };
        client.write_all(&reply)?;
        client.flush()
    }

    /// Records the request's arrival and asks the rules until they forward
    /// it (`None`) or answer it.
    fn decide(&self, request: &Request) -> Option<Response> {
        let deadline = Instant::now() + HOLD_LIMIT;
        let mut state = self.lock();
        state
            .traffic
            .arrived
            .push((request.service.clone(), request.action.clone()));
        self.changed.notify_all();
        loop {
            let decision = self
                .rules
                .iter()
                .map(|rule| rule.decide(request, &state.traffic))
                .find(|d| !matches!(d, Decision::Forward))
                .unwrap_or(Decision::Forward);
            match decision {
                Decision::Forward => return None,
                Decision::Respond(response) => return Some(response),
                Decision::Hold => {
                    let now = Instant::now();
                    if now >= deadline {
                        let call = format!("{}:{}", request.service, request.action);
                        eprintln!("proxy: {call} held for {HOLD_LIMIT:?}; forwarding it anyway");
                        state.expired.push(call);
                        return None;
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

        let mut reader = BufReader::new(upstream);
        // Interim (1xx) responses are skipped.
        let (status, headers) = loop {
            let (status_line, headers) = read_head(&mut reader)?.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no response")
            })?;
            let status: u16 = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("bad status line {status_line:?}"),
                    )
                })?;
            if !(100..200).contains(&status) {
                break (status, headers);
            }
        };
        let bodiless = request.method == "HEAD" || matches!(status, 204 | 304);
        let body = if bodiless {
            Vec::new()
        } else {
            read_body(&mut reader, &headers, false)?
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The request or status line and the headers; `None` at end of stream.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<(String, Headers)>> {
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "end of stream in the headers",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    Ok(Some((
        first.trim_end_matches(['\r', '\n']).to_owned(),
        headers,
    )))
}

/// The body, dechunked. Without a length or chunking, a request has no
/// body and a response runs to the end of the stream.
fn read_body(
    reader: &mut impl BufRead,
    headers: &[(String, String)],
    is_request: bool,
) -> std::io::Result<Vec<u8>> {
    if header(headers, "transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        return read_chunked(reader);
    }
    match header(headers, "content-length") {
        Some(length) => {
            let length: usize = length.parse().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "bad Content-Length")
            })?;
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            Ok(body)
        }
        None if is_request => Ok(Vec::new()),
        None => {
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            Ok(body)
        }
    }
}

/// The data of a chunked body; trailers are dropped.
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut data = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(bad("end of stream in a chunked body"));
        }
        let size = size_line
            .trim_end_matches(['\r', '\n'])
            .split(';')
            .next()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to an empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0
                    || line.trim_end_matches(['\r', '\n']).is_empty()
                {
                    return Ok(data);
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        data.extend_from_slice(&chunk[..size]);
    }
}

/// The response as the client gets it: the body with a length, and
/// `Connection: close`. To a HEAD request, moto's headers and no body.
fn encode_response(response: &Response, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    let framing: &[&str] = if head_only { &[] } else { &["content-length"] };
    for (name, value) in without_hop_by_hop(&response.headers, framing) {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !head_only {
        out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    bytes
}

/// `headers` without the connection-level ones and `also`, and without
/// `Transfer-Encoding` when `also` names `content-length` (the body is
/// sent dechunked with its length then).
fn without_hop_by_hop<'a>(
    headers: &'a [(String, String)],
    also: &'a [&str],
) -> impl Iterator<Item = &'a (String, String)> {
    let reframed = also.contains(&"content-length");
    headers.iter().filter(move |(name, _)| {
        let name = name.to_ascii_lowercase();
        let dropped = matches!(
            name.as_str(),
            "connection" | "keep-alive" | "proxy-connection"
        ) || also.contains(&name.as_str())
            || (reframed && name == "transfer-encoding");
        !dropped
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

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
    // REST-JSON of the Account Management API: `POST /listRegions` is
    // `ListRegions`.
    let rest_json_action = || {
        let path = target.split('?').next().unwrap_or_default();
        let name = path.strip_prefix('/').filter(|p| !p.contains('/'))?;
        let mut chars = name.chars();
        let first = chars.next()?;
        (service == "account" && method == "POST")
            .then(|| first.to_ascii_uppercase().to_string() + chars.as_str())
    };
    let action = match amz_target {
        Some(t) => t.rsplit('.').next().unwrap_or(t).to_owned(),
        None => form_action()
            .or_else(rest_json_action)
            .unwrap_or_else(|| format!("{method} {target}")),
    };
    (service, action)
}
