//! The one HTTP/1.1 server of the test kit, on 127.0.0.1: the test proxy
//! ([`crate::proxy`]) and the Lambda Runtime API emulator
//! ([`crate::lambda_api`]) are both a [`Handler`] behind it.
//!
//! Each connection has its own thread, which reads one request after
//! another: the request line (empty lines before it are skipped, RFC 9112
//! 2.2), the header fields, an `Expect: 100-continue` answered before the
//! body, and the body, with a `Content-Length` or chunked (chunk extensions
//! ignored, trailers kept apart); without either a request has no body. The
//! handler answers it, and the answer goes out with a `Content-Length` (to a
//! `HEAD` request: the handler's header fields as they are and no body).
//! The connection is kept alive until the client closes it or asks for
//! `Connection: close` (HTTP/1.0 without `keep-alive` too), unless the
//! server closes every connection after one answer ([`Options::keep_alive`]),
//! saying `Connection: close`.
//!
//! Dropping the [`Server`] stops it: it accepts no more connections, shuts
//! every open one down (a client waiting for an answer sees its connection
//! close) and waits for their threads. A handler that waits for something
//! must stop waiting when its owner stops it, before the server is dropped.
//!
//! The client side, to forward a request and read the answer, is here too
//! ([`read_response`]).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Header (or trailer) names and values, in order.
pub type Headers = Vec<(String, String)>;

/// A request as the client sent it, its body dechunked.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as on the request line.
    pub target: String,
    /// `HTTP/1.1`.
    pub version: String,
    pub headers: Headers,
    /// The trailer fields of a chunked body.
    pub trailers: Headers,
    pub body: Vec<u8>,
    /// Whether the client wants the connection closed after the answer.
    pub close: bool,
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// A header field, else a trailer field, by name (any case).
    pub fn field(&self, name: &str) -> Option<&str> {
        header(&self.headers, name).or_else(|| header(&self.trailers, name))
    }
}

/// A response: to send, or as read from a server, its body dechunked.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// One connection, as a handler sees it.
pub struct Connection<'a> {
    stream: &'a TcpStream,
}

impl Connection<'_> {
    /// Whether the client has closed its end: reading would give end of
    /// stream. Pending bytes (a pipelined request) count as open.
    pub fn peer_closed(&self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return true;
        }
        let closed = match self.stream.peek(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != ErrorKind::WouldBlock,
        };
        let _ = self.stream.set_nonblocking(false);
        closed
    }
}

/// What answers the requests.
pub trait Handler: Send + Sync + 'static {
    /// The answer to `request`; `None` closes the connection without one.
    fn handle(&self, request: Request, connection: &Connection) -> Option<Response>;

    /// Whether the owner is stopping the server: a connection that fails
    /// then is not reported.
    fn stopping(&self) -> bool {
        false
    }
}

/// How a server treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Named in the reports of failed connections.
    pub name: &'static str,
    /// Keep connections alive between requests; otherwise each answer
    /// closes its connection.
    pub keep_alive: bool,
    /// Read timeout of every connection; `None`: a connection may stay idle
    /// as long as its client likes.
    pub read_timeout: Option<Duration>,
    pub write_timeout: Duration,
}

/// The server; stopped when dropped.
pub struct Server {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    options: Options,
    handler: Box<dyn Handler>,
    stop: AtomicBool,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    /// The open connections, to shut them down on drop.
    connections: HashMap<u64, TcpStream>,
    /// The connections' threads, to join them on drop.
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// A server on a free loopback port.
    pub fn start(options: Options, handler: impl Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("{}: bind a loopback port: {e}", options.name));
        let address = listener.local_addr().expect("the server's address");
        let shared = Arc::new(Shared {
            options,
            handler: Box::new(handler),
            stop: AtomicBool::new(false),
            open: Mutex::new(Open::default()),
        });
        let accepting = Arc::clone(&shared);
        let accept = std::thread::spawn(move || {
            for (number, client) in (0u64..).zip(listener.incoming()) {
                let Ok(client) = client else { continue };
                let mut open = accepting.open();
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(handle) = client.try_clone() else {
                    continue;
                };
                open.connections.insert(number, handle);
                let shared = Arc::clone(&accepting);
                let thread = std::thread::spawn(move || {
                    let served = shared.serve(&client);
                    let stopped = shared.stop.load(Ordering::SeqCst) || shared.handler.stopping();
                    if let Err(e) = served
                        && !stopped
                    {
                        eprintln!("{}: a connection failed: {e}", shared.options.name);
                    }
                    shared.open().connections.remove(&number);
                });
                open.threads.push(thread);
            }
        });
        Server {
            address,
            shared,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        {
            let open = self.shared.open();
            self.shared.stop.store(true, Ordering::SeqCst);
            // Ends reads on idle keep-alive connections and waits; clients
            // see the connections close.
            for connection in open.connections.values() {
                let _ = connection.shutdown(Shutdown::Both);
            }
        }
        // Wakes the accept loop up so that it sees `stop`.
        let _ = TcpStream::connect(self.address);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let threads = std::mem::take(&mut self.shared.open().threads);
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn open(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One connection: requests until the client closes it, asks for
    /// `Connection: close`, the handler ends it or the server stops.
    fn serve(&self, client: &TcpStream) -> std::io::Result<()> {
        client.set_read_timeout(self.options.read_timeout)?;
        client.set_write_timeout(Some(self.options.write_timeout))?;
        client.set_nodelay(true)?;
        let mut reader = BufReader::new(client.try_clone()?);
        let mut writer = client;
        while let Some(request) = read_request(&mut reader, &mut writer)? {
            let close = request.close || !self.options.keep_alive;
            let head_only = request.method == "HEAD";
            let connection = Connection { stream: client };
            let Some(response) = self.handler.handle(request, &connection) else {
                return Ok(());
            };
            writer.write_all(&encode_response(&response, head_only, close))?;
            writer.flush()?;
            if close {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// The next request on a connection; `None` if the client closed it
/// between requests. Answers `Expect: 100-continue` before the body.
fn read_request(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
) -> std::io::Result<Option<Request>> {
    let bad = |what: String| std::io::Error::new(ErrorKind::InvalidData, what);
    let mut line = String::new();
    // Empty lines before a request are allowed (RFC 9112, 2.2).
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("bad request line {line:?}")));
    };
    let (method, target, version) = (method.to_owned(), target.to_owned(), version.to_owned());
    let headers = read_fields(reader)?;
    let close = match header(&headers, "connection") {
        Some(c) if c.eq_ignore_ascii_case("close") => true,
        Some(c) if c.eq_ignore_ascii_case("keep-alive") => false,
        _ => version != "HTTP/1.1",
    };
    if header(&headers, "expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }
    let (body, trailers) = read_body(reader, &headers, true)?;
    Ok(Some(Request {
        method,
        target,
        version,
        headers,
        trailers,
        body,
        close,
    }))
}

/// A server's response to a request sent on `reader`'s connection, interim
/// (1xx) responses skipped; `head` for a request whose answer has no body
/// (`HEAD`). Without a length or chunking, the body runs to the end of the
/// stream.
pub fn read_response(reader: &mut impl BufRead, head: bool) -> std::io::Result<Response> {
    let (status, headers) = loop {
        let mut status_line = String::new();
        if reader.read_line(&mut status_line)? == 0 {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "no response"));
        }
        let headers = read_fields(reader)?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!("bad status line {:?}", status_line.trim_end()),
                )
            })?;
        if !(100..200).contains(&status) {
            break (status, headers);
        }
    };
    let body = if head || matches!(status, 204 | 304) {
        Vec::new()
    } else {
        read_body(reader, &headers, false)?.0
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Header (or trailer) fields up to an empty line.
pub fn read_fields(reader: &mut impl BufRead) -> std::io::Result<Headers> {
    let mut fields = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "end of stream in the header fields",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(fields);
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
}

/// The body, dechunked, and a chunked body's trailers. Without a length or
/// chunking, a request has no body and a response runs to the end of the
/// stream.
fn read_body(
    reader: &mut impl BufRead,
    headers: &[(String, String)],
    is_request: bool,
) -> std::io::Result<(Vec<u8>, Headers)> {
    if header(headers, "transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        return read_chunked(reader);
    }
    let body = match header(headers, "content-length") {
        Some(length) => {
            let length: usize = length.parse().map_err(|_| {
                std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!("bad Content-Length {length:?}"),
                )
            })?;
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            body
        }
        None if is_request => Vec::new(),
        None => {
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            body
        }
    };
    Ok((body, Vec::new()))
}

/// A chunked body's data and its trailers.
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<(Vec<u8>, Headers)> {
    let bad = |what: &str| std::io::Error::new(ErrorKind::InvalidData, what.to_owned());
    let mut data = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(bad("end of stream in a chunked body"));
        }
        // Chunk extensions (`;name=value`) are ignored.
        let size = size_line
            .split(';')
            .next()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| bad("bad chunk size"))?;
        if size == 0 {
            return Ok((data, read_fields(reader)?));
        }
        let start = data.len();
        data.resize(start + size, 0);
        reader.read_exact(&mut data[start..])?;
        let mut end = [0u8; 2];
        reader.read_exact(&mut end)?;
        if &end != b"\r\n" {
            return Err(bad("a chunk does not end with CRLF"));
        }
    }
}

/// The response on the wire: its header fields without the
/// connection-level ones, the body with its length, and `Connection: close`
/// if the connection ends after it. To a `HEAD` request (`head_only`), the
/// header fields as they are, framing included, and no body.
fn encode_response(response: &Response, head_only: bool, close: bool) -> Vec<u8> {
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
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&response.body);
    }
    bytes
}

/// `headers` without the connection-level ones and `also`, and without
/// `Transfer-Encoding` when `also` names `content-length` (the body is
/// sent dechunked with its length then).
pub fn without_hop_by_hop<'a>(
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
        202 => "Accepted",
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

/// The value of the first field `name` (any case) of `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
