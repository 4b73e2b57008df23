#!/usr/bin/env python3
"""faultproxy.py: a loopback HTTP/1.1 proxy that injects S3-style faults.

It sits between an S3 client and the RADOS Gateway. The client is pointed at
the proxy as if the proxy were the server (endpoint http://127.0.0.1:PORT); the
proxy forwards every request byte for byte, Host header included, to the
upstream. SigV4 signs the Host header the client sent (127.0.0.1:PORT), and RGW
checks the signature against the Host header it receives, which is that same
one, so no rewriting is needed (tests/integration/test_s3_harness.sh checks
it). Python 3 standard library only; one thread per client connection.

For a share of the requests (--fault-rate, deterministic per request number
with --seed) it injects one of --faults:
  500         answers 500 InternalError (S3 XML body), request not forwarded
  503slowdown answers 503 SlowDown (S3 XML body), request not forwarded
  400expiredtoken answers 400 ExpiredToken, as S3 does for an expired session token
  reset-request   resets the connection (close with SO_LINGER 0, so a TCP
              RST) in the middle of the request body, after forwarding its
              first half (a request without a body: right after its head, not
              forwarded)
  reset-response  forwards the request whole and resets the connection in
              the middle of the response body (for an empty response body:
              right before the response head, after the upstream carried the
              request out)
  reset       reset-request for a request with a body, else reset-response
  stall       reads the request and never answers; the connection is closed
              after --stall-seconds (or at exit)
Every other request is forwarded: keep-alive, Content-Length and chunked
bodies (both ways), Expect: 100-continue and interim responses; bodies are
streamed in 64 KiB pieces, never held whole.

  faultproxy.py --listen 127.0.0.1:0 --upstream 127.0.0.1:7480 \
      --fault-rate 0.2 --faults 500,503slowdown,reset,stall --stall-seconds 20 \
      --seed 1 --log FILE [--port-file FILE] [--only-methods PUT,POST] \
      [--fault-after N] [--only-paths TEXT] [--max-faults N] [--delay-s S]

--only-paths faults only requests whose path (with its query) contains TEXT
("?uploads" for CreateMultipartUpload); --max-faults stops after N faults.

--delay-s S holds every request that matches --only-paths and --only-methods
(all requests when neither is given) for S seconds after its head arrived,
before forwarding it (a slow server: the client's body waits in the socket
buffers); faults still apply to it. Logged as "c=<conn> <n> <method> <path>
delay=<S>s" when the wait begins.

One log line per request: "c=<conn> <n> <method> <path> fault=<kind>" or
"c=<conn> <n> <method> <path> status=<code> in=<bytes> out=<bytes> ms=<ms>"
(conn: the client connection's number, n: the request's), and a
"# summary" line at exit. SIGTERM or SIGINT: stops listening, closes the
connections, writes the summary and exits 0.
"""

import argparse
import random
import select
import signal
import socket
import struct
import sys
import threading
import time

CHUNK = 65536
MAX_HEAD = 65536
FAULT_KINDS = ("500", "503slowdown", "reset", "reset-request", "reset-response", "stall",
               "400expiredtoken")


class Closed(Exception):
    """The peer closed the connection (or it broke)."""


class Reader:
    """A socket with a receive buffer: heads, lines and counted bytes."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        try:
            data = self.sock.recv(CHUNK)
        except OSError as e:
            raise Closed(str(e))
        if not data:
            raise Closed("eof")
        self.buf += data

    def at_eof(self):
        """True when the peer closed before sending anything more."""
        if self.buf:
            return False
        try:
            self._fill()
        except Closed:
            return True
        return False

    def read_until(self, sep, limit=MAX_HEAD):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[: i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise Closed("head too long")
            self._fill()

    def read_some(self, n):
        """Up to n bytes (at least one)."""
        if not self.buf:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def has_buffered(self):
        return bool(self.buf)


def parse_head(raw):
    """(start line tokens, {lower-case name: value}) of a request or response head."""
    lines = raw.decode("latin-1").split("\r\n")
    start = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if not line or ":" not in line:
            continue
        name, value = line.split(":", 1)
        name = name.strip().lower()
        value = value.strip()
        if name in headers:
            headers[name] += ", " + value
        else:
            headers[name] = value
    return start, headers


def body_framing(headers):
    """("chunked", None), ("length", n) or ("none", 0) for a request."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return "chunked", None
    if "content-length" in headers:
        return "length", int(headers["content-length"])
    return "none", 0


def wants_close(version, headers):
    conn = headers.get("connection", "").lower()
    if "close" in conn:
        return True
    if version.upper() == "HTTP/1.0" and "keep-alive" not in conn:
        return True
    return False


def copy_length(src, n, send, stop_after=None):
    """Copies n bytes from Reader src to send(); stops after stop_after bytes
    (returns the count copied)."""
    done = 0
    limit = n if stop_after is None else min(n, stop_after)
    while done < limit:
        data = src.read_some(min(CHUNK, limit - done))
        send(data)
        done += len(data)
    return done


def copy_chunked(src, send, stop_after=None):
    """Copies a chunked body (sizes, data, trailers) byte for byte. With
    stop_after, stops after about that many data bytes and returns None."""
    total = 0
    while True:
        line = src.read_until(b"\r\n")
        send(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, then the empty line
                t = src.read_until(b"\r\n")
                send(t)
                if t == b"\r\n":
                    return total
        left = size
        while left > 0:
            if stop_after is not None and total >= stop_after:
                return None
            data = src.read_some(min(CHUNK, left))
            send(data)
            left -= len(data)
            total += len(data)
        send(src.read_until(b"\r\n"))


def discard(_data):
    pass


def reset(sock):
    """Closes with SO_LINGER 0: the peer gets a TCP RST."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def close_quietly(sock):
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


class Proxy:
    def __init__(self, args):
        self.args = args
        host, port = args.upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
        for f in self.faults:
            if f not in FAULT_KINDS:
                raise SystemExit("faultproxy: unknown fault %r (known: %s)" % (f, ",".join(FAULT_KINDS)))
        self.only = None
        if args.only_methods:
            self.only = {m.strip().upper() for m in args.only_methods.split(",") if m.strip()}
        self.lock = threading.Lock()
        self.seq = 0
        self.nfaults = 0
        self.nconn = 0
        self.counts = {}
        self.stopping = threading.Event()
        self.conns = set()
        self.log_file = open(args.log, "a", buffering=1) if args.log else None

    # --- bookkeeping -------------------------------------------------------
    def log(self, line):
        with self.lock:
            if self.log_file:
                self.log_file.write(line + "\n")
            elif not self.args.quiet:
                sys.stderr.write(line + "\n")

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def next_request(self, method, path=""):
        """(request number, fault kind or None), deterministic per number."""
        with self.lock:
            self.seq += 1
            n = self.seq
            if self.args.only_paths and self.args.only_paths not in path:
                return n, None
            if self.args.max_faults is not None and self.nfaults >= self.args.max_faults:
                return n, None
        rng = random.Random("%d:%d" % (self.args.seed, n))
        roll = rng.random()
        kind = rng.choice(self.faults) if self.faults else None
        if (
            kind is None
            or n <= self.args.fault_after
            or (self.only is not None and method.upper() not in self.only)
            or roll >= self.args.fault_rate
        ):
            return n, None
        with self.lock:
            self.nfaults += 1
        return n, kind

    def delay_for(self, method, path):
        """Seconds to hold this request (--delay-s), 0 if it does not match."""
        if not self.args.delay_s:
            return 0.0
        if self.args.only_paths and self.args.only_paths not in path:
            return 0.0
        if self.only is not None and method.upper() not in self.only:
            return 0.0
        return self.args.delay_s

    # --- faults -----------------------------------------------------------
    def error_response(self, status, n, method, path, close):
        if status == 503:
            code, reason, msg = "SlowDown", "Slow Down", "Please reduce your request rate."
        elif status == 400:
            code, reason, msg = "ExpiredToken", "Bad Request", \
                "The provided token has expired."
        else:
            code, reason, msg = "InternalError", "Internal Server Error", \
                "We encountered an internal error. Please try again."
        rid = "faultproxy-%d" % n
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource>"
            "<RequestId>%s</RequestId><HostId>faultproxy</HostId></Error>"
            % (code, msg, path.split("?", 1)[0].replace("&", "&amp;").replace("<", "&lt;"), rid)
        ).encode()
        head = (
            "HTTP/1.1 %d %s\r\n"
            "Content-Type: application/xml\r\n"
            "Content-Length: %d\r\n"
            "x-amz-request-id: %s\r\n"
            "Date: %s\r\n"
            "Server: faultproxy\r\n"
            "Connection: %s\r\n\r\n"
            % (status, reason, len(body), rid,
               time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
               "close" if close else "keep-alive")
        ).encode()
        return head + (b"" if method.upper() == "HEAD" else body)

    # --- one client connection ---------------------------------------------
    def serve(self, client, cid):
        cr = Reader(client)
        up = None
        ur = None
        try:
            while not self.stopping.is_set():
                if cr.at_eof():
                    return
                t0 = time.monotonic()
                raw = cr.read_until(b"\r\n\r\n")
                start, headers = parse_head(raw)
                if len(start) < 3:
                    return
                method, path, version = start
                framing, length = body_framing(headers)
                expect = "100-continue" in headers.get("expect", "").lower()
                client_close = wants_close(version, headers)
                n, fault = self.next_request(method, path)
                delay = self.delay_for(method, path)
                if delay > 0:
                    self.count("delay")
                    self.log("c=%d %d %s %s delay=%gs" % (cid, n, method, path, delay))
                    if self.stopping.wait(delay):
                        return
                has_body = framing == "chunked" or (framing == "length" and length > 0)
                if fault == "reset":
                    fault = "reset-request" if has_body else "reset-response"
                if fault == "reset-request" and not has_body:
                    self.count(fault)
                    self.log("c=%d %d %s %s fault=reset-request (after the head)" % (cid, n, method, path))
                    reset(client)
                    client = None
                    return

                if fault in ("500", "503slowdown", "stall", "400expiredtoken"):
                    self.count(fault)
                    # Without Expect, the body is on its way: read it so the
                    # connection can go on. With Expect, the client waits for
                    # our word: answer (or stall) without reading it, then close.
                    close = client_close or (expect and has_body)
                    if not (expect and has_body):
                        if framing == "chunked":
                            copy_chunked(cr, discard)
                        elif framing == "length":
                            copy_length(cr, length, discard)
                    if fault == "stall":
                        self.log("c=%d %d %s %s fault=stall" % (cid, n, method, path))
                        self.stopping.wait(self.args.stall_seconds)
                        return
                    status = {"503slowdown": 503, "400expiredtoken": 400}.get(fault, 500)
                    client.sendall(self.error_response(status, n, method, path, close))
                    self.log("c=%d %d %s %s fault=%s" % (cid, n, method, path, fault))
                    if close:
                        return
                    continue

                # Forward the request.
                if up is not None and self.upstream_gone(up):
                    close_quietly(up)
                    up = None
                if up is None:
                    up = socket.create_connection(self.upstream, timeout=None)
                    up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    ur = Reader(up)
                up.sendall(raw)
                sent = 0
                if expect and has_body:
                    # Wait (briefly) for the upstream's interim or final answer.
                    up.settimeout(2.0)
                    try:
                        rhead = ur.read_until(b"\r\n\r\n")
                    except Closed:
                        rhead = None
                    except socket.timeout:
                        rhead = None
                    finally:
                        up.settimeout(None)
                    if rhead is not None:
                        rstart, rheaders = parse_head(rhead)
                        status = int(rstart[1])
                        if status != 100 and fault == "reset-request":
                            self.count(fault)
                            self.log("c=%d %d %s %s fault=reset-request (before the body, upstream said %d)"
                                     % (cid, n, method, path, status))
                            reset(client)
                            client = None
                            return
                        if status != 100:
                            # Final answer before the body: pass it on, close.
                            client.sendall(rhead)
                            self.relay_response_body(ur, client, method, status, rheaders)
                            self.log("c=%d %d %s %s status=%d (before body)" % (cid, n, method, path, status))
                            return
                        client.sendall(rhead)
                if fault == "reset-request":
                    # Forward half the body, then reset both sides.
                    half = (length // 2) if framing == "length" else CHUNK
                    self.count(fault)
                    if framing == "chunked":
                        copy_chunked(cr, up.sendall, stop_after=half)
                    else:
                        copy_length(cr, length, up.sendall, stop_after=half)
                    self.log("c=%d %d %s %s fault=reset-request (request body)" % (cid, n, method, path))
                    reset(client)
                    client = None
                    reset(up)
                    up = None
                    return
                if framing == "chunked":
                    sent = copy_chunked(cr, up.sendall)
                elif framing == "length":
                    sent = copy_length(cr, length, up.sendall)

                # The response (interim ones first).
                while True:
                    rhead = ur.read_until(b"\r\n\r\n")
                    rstart, rheaders = parse_head(rhead)
                    status = int(rstart[1])
                    if 100 <= status < 200 and status != 101:
                        client.sendall(rhead)
                        continue
                    break
                if fault == "reset-response":
                    self.count(fault)
                    got = self.relay_response_body(ur, client, method, status, rheaders,
                                                   head=rhead, reset_midway=True)
                    self.log("c=%d %d %s %s fault=reset-response (response %s, status %d)"
                             % (cid, n, method, path, "body" if got else "head", status))
                    reset(client)
                    client = None
                    close_quietly(up)
                    up = None
                    return
                client.sendall(rhead)
                got, upstream_closed = self.relay_response_body(ur, client, method, status, rheaders)
                self.count("status=%d" % status)
                self.log("c=%d %d %s %s status=%d in=%d out=%d ms=%d"
                         % (cid, n, method, path, status, sent, got, (time.monotonic() - t0) * 1000))
                if upstream_closed or wants_close(rstart[0], rheaders):
                    close_quietly(up)
                    up = None
                    # Keep the client's connection only if the response was
                    # framed; a close-delimited body ends with the close.
                    if upstream_closed:
                        return
                if client_close:
                    return
        except (Closed, OSError, ValueError) as e:
            if not self.stopping.is_set():
                self.log("# c=%d connection ended: %s" % (cid, e))
        finally:
            close_quietly(client)
            close_quietly(up)

    @staticmethod
    def upstream_gone(up):
        """True when an idle upstream connection was closed by the server
        (or sent something unasked): a new one is needed."""
        try:
            r, _, _ = select.select([up], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    def relay_response_body(self, ur, client, method, status, headers, head=None, reset_midway=False):
        """Forwards a response body. Returns (bytes, upstream closed) or, with
        reset_midway, the number of body bytes sent before stopping (the head
        is sent only if the body is not empty)."""
        no_body = method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200
        te = headers.get("transfer-encoding", "").lower()
        if reset_midway:
            if no_body:
                return 0
            if "chunked" in te:
                # the head, the first chunk's size line and half its data
                client.sendall(head)
                line = ur.read_until(b"\r\n")
                client.sendall(line)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size > 1:
                    copy_length(ur, size, client.sendall, stop_after=size // 2)
                return 1
            if "content-length" in headers:
                cl = int(headers["content-length"])
                if cl == 0:
                    return 0
                client.sendall(head)
                return max(1, copy_length(ur, cl, client.sendall, stop_after=max(1, cl // 2)))
            client.sendall(head)
            return len(ur.read_some(CHUNK // 2))
        if no_body:
            return 0, False
        if "chunked" in te:
            return copy_chunked(ur, client.sendall), False
        if "content-length" in headers:
            return copy_length(ur, int(headers["content-length"]), client.sendall), False
        # Close-delimited body.
        got = 0
        while True:
            try:
                data = ur.read_some(CHUNK)
            except Closed:
                return got, True
            client.sendall(data)
            got += len(data)

    # --- main loop ---------------------------------------------------------
    def run(self):
        host, port = self.args.listen.rsplit(":", 1)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, int(port)))
        ls.listen(128)
        ls.settimeout(0.2)
        bound = ls.getsockname()[1]
        if self.args.port_file:
            tmp = self.args.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % bound)
            import os
            os.replace(tmp, self.args.port_file)
        self.log("# faultproxy listening on %s:%d, upstream %s:%d, fault-rate %g, faults %s, seed %d"
                 % (host, bound, self.upstream[0], self.upstream[1], self.args.fault_rate,
                    ",".join(self.faults), self.args.seed))

        def stop(_sig, _frame):
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not self.stopping.is_set():
            try:
                client, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    break
                raise
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conns.add(client)
                self.nconn += 1
                cid = self.nconn
            t = threading.Thread(target=self._serve_and_forget, args=(client, cid), daemon=True)
            t.start()
        ls.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.lock:
            summary = " ".join("%s=%d" % kv for kv in sorted(self.counts.items()))
            total = self.seq
        self.log("# summary requests=%d %s" % (total, summary))
        if self.log_file:
            self.log_file.close()
        return 0

    def _serve_and_forget(self, client, cid):
        try:
            self.serve(client, cid)
        finally:
            with self.lock:
                self.conns.discard(client)


def main():
    p = argparse.ArgumentParser(description="Loopback HTTP/1.1 proxy that injects S3 faults.")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any free port)")
    p.add_argument("--upstream", default="127.0.0.1:7480", help="HOST:PORT of the S3 server")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of requests to fault (0..1)")
    p.add_argument("--faults", default="500,503slowdown,reset,stall",
                   help="comma-separated kinds: " + ",".join(FAULT_KINDS))
    p.add_argument("--stall-seconds", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log", help="log file (appended); default stderr")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--only-methods", help="fault only these methods, e.g. PUT,POST")
    p.add_argument("--fault-after", type=int, default=0, help="the first N requests are never faulted")
    p.add_argument("--only-paths", help="fault only requests whose path contains this text")
    p.add_argument("--max-faults", type=int, help="inject at most this many faults")
    p.add_argument("--delay-s", type=float, default=0.0,
                   help="hold matching requests (--only-paths, --only-methods) this many seconds")
    p.add_argument("--quiet", action="store_true", help="no log on stderr when --log is not given")
    args = p.parse_args()
    if not 0.0 <= args.fault_rate <= 1.0:
        p.error("--fault-rate must be within 0..1")
    if args.delay_s < 0:
        p.error("--delay-s must not be negative")
    return Proxy(args).run()


if __name__ == "__main__":
    sys.exit(main())
