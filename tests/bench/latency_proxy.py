#!/usr/bin/env python3
"""A loopback TCP proxy that adds a fixed latency to every HTTP request.

    latency_proxy.py --upstream 127.0.0.1:5000 [--delay-ms 50] [--port 0]
    latency_proxy.py --self-test [--delay-ms 50]

It listens on 127.0.0.1 (a free port unless --port is given), prints one line
`listening 127.0.0.1:PORT` on stdout once it accepts connections, and forwards
every connection to --upstream, which must be a loopback address: the proxy
exists to put latency in front of a local moto server and refuses anything
else.

The delay is per request, not per connection. AWS SDKs and the AWS CLI keep
connections alive and send many requests over one, so the proxy tracks each
connection's direction of travel: the first bytes the client sends after a
response (or after connecting) open a new request, and that burst is held for
--delay-ms before it is forwarded. The rest of the same request (a body sent
after its headers) and everything the server sends back pass straight through.
A `100 Continue` interim response does not open a new request. Connections are
independent, so concurrent requests on separate connections are each delayed
once, at the same time: N sequential requests take about N x delay, and N
concurrent ones about one delay.

--self-test starts a small HTTP server and the proxy in front of it, then checks
exactly that (sequential requests over one keep-alive connection, and 4
concurrent connections), prints the figures as JSON and exits non-zero if they
are off by more than the tolerance.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import statistics
import sys
import threading
import time

LOOPBACK_HOSTS = {"localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_hostport(text: str) -> tuple[str, int]:
    text = text.removeprefix("http://").rstrip("/")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT or http://HOST:PORT")
    host = host.strip("[]")
    if not is_loopback(host):
        raise argparse.ArgumentTypeError(f"{host!r} is not a loopback address; the proxy only fronts local servers")
    return host, int(port)


class Connection:
    """One client connection and its upstream twin."""

    def __init__(self, delay: float):
        self.delay = delay
        self.awaiting_request = True  # the next client bytes open a new request

    async def client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.awaiting_request:
                    self.awaiting_request = False
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            close(writer)

    async def server_to_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not data.startswith(b"HTTP/1.1 100 ") and not data.startswith(b"HTTP/1.0 100 "):
                    self.awaiting_request = True
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            close(writer)


def close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
    except (ConnectionError, RuntimeError):
        pass


async def serve(upstream: tuple[str, int], delay: float, port: int, ready: callable) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*upstream)
        except OSError:
            close(client_writer)
            return
        for w in (client_writer, server_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(delay)
        await asyncio.gather(
            conn.client_to_server(client_reader, server_writer),
            conn.server_to_client(server_reader, client_writer),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    ready(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


# ----------------------------------------------------------------- self-test


def start_upstream() -> int:
    """A tiny keep-alive HTTP/1.1 server in a thread; returns its port."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd.server_address[1]


class ProxyProcess:
    """This script run as a separate process (as the benchmark runs it)."""

    def __init__(self, upstream: str, delay_ms: float):
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, __file__, "--upstream", upstream, "--delay-ms", str(delay_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.process.kill()
            raise RuntimeError(f"latency proxy did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def self_test(delay_ms: float, sequential: int = 10, concurrent: int = 4) -> int:
    upstream = start_upstream()
    proxy = ProxyProcess(f"127.0.0.1:{upstream}", delay_ms)
    try:
        return measure(upstream, proxy.port, delay_ms, sequential, concurrent)
    finally:
        proxy.stop()


def measure(upstream: int, proxy_port: int, delay_ms: float, sequential: int, concurrent: int) -> int:
    import http.client

    def timed_requests(port: int, n: int) -> float:
        """n requests, one after the other, over one keep-alive connection."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        start = time.perf_counter()
        for _ in range(n):
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        elapsed = time.perf_counter() - start
        conn.close()
        return elapsed

    timed_requests(proxy_port, 1)  # warm up
    direct = statistics.median(timed_requests(upstream, sequential) for _ in range(3))
    seq = [timed_requests(proxy_port, sequential) for _ in range(5)]

    par = []
    for _ in range(5):
        barrier = threading.Barrier(concurrent + 1)

        def one() -> None:
            barrier.wait()
            timed_requests(proxy_port, 1)

        threads = [threading.Thread(target=one) for _ in range(concurrent)]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        par.append(time.perf_counter() - start)

    seq_median = statistics.median(seq)
    par_median = statistics.median(par)
    added_per_request = (seq_median - direct) / sequential * 1000
    report = {
        "delay_ms": delay_ms,
        "sequential": {
            "requests": sequential,
            "over_one_keep_alive_connection": True,
            "direct_ms": round(direct * 1000, 1),
            "proxied_ms": [round(s * 1000, 1) for s in seq],
            "expected_ms": sequential * delay_ms,
            "added_per_request_ms": round(added_per_request, 1),
        },
        "concurrent": {
            "requests": concurrent,
            "connections": concurrent,
            "proxied_ms": [round(p * 1000, 1) for p in par],
            "expected_ms": delay_ms,
        },
    }
    # Each request is delayed once (not per connection, not twice), and
    # concurrent requests overlap (one delay, not `concurrent` of them). The
    # bounds leave room for scheduling on a busy machine.
    ok = delay_ms * 0.95 <= added_per_request <= delay_ms * 1.5 and par_median * 1000 < delay_ms * 2
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", type=parse_hostport, help="HOST:PORT of the (loopback) server")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="added to every request (default: 50)")
    parser.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--self-test", action="store_true", help="measure the proxy and exit")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test(args.delay_ms)
    if args.upstream is None:
        parser.error("--upstream is required")

    def ready(port: int) -> None:
        print(f"listening 127.0.0.1:{port}", flush=True)

    try:
        asyncio.run(serve(args.upstream, args.delay_ms / 1000, args.port, ready))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
