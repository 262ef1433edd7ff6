#!/usr/bin/env python3
"""Small raw-socket HTTP/1.1 client for bench/run.sh (stdlib only).

    ttfb.py ttfb  URL --model M [--key K] [--n 2000] [--warmup 50] [--target NAME]
    ttfb.py check URL --model M [--key K] [--target NAME]
    ttfb.py wait  URL [--timeout 30] [--any-status]
    ttfb.py load  URL --model M [--key K] [--n 1000] [--stream] [--connections 4]
    ttfb.py key   BASE_URL --master M

`ttfb` sends N sequential streaming chat requests over one keep-alive connection and prints one
JSON line with the time-to-first-SSE-event percentiles (µs). `check` makes one plain and one
streaming request and fails unless both are well-formed 200s (wrk only notices >= 400, so a
target that answered 200 with garbage would otherwise look fast). `wait` polls a GET URL until
it answers 200 (or anything at all, with --any-status). `load` sends N chat requests spread
round-robin over a few keep-alive connections, each one in flight at a time per connection, and
fails on any answer that is not a complete 200 (for bench/instructions.sh, where the load's pace
does not matter but every request must be a real one). `key` creates a virtual key through the
admin API with the master key, with request, token and in-flight limits far above any load here
(so every check runs and none refuses), and prints its secret.

Why raw sockets instead of http.client: http.client hides when each body byte arrives, and its
per-request overhead is larger and less predictable. The client cost here is the same for every
target, so differences between targets are meaningful even though absolute numbers include it.
"""

import argparse
import json
import socket
import sys
import time
from urllib.parse import urlsplit


class ProtocolError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection that can parse chunked and Content-Length bodies."""

    def __init__(self, host, port, timeout=10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = None
        self.buf = bytearray()

    def _connect(self):
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        # Without this a small request can sit in the kernel waiting for an ACK (Nagle), which
        # would add tens of ms to some samples and swamp the proxy's overhead.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf.clear()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ProtocolError("connection closed mid-response")
        self.buf += data

    def request(self, raw, watch=None):
        """Sends `raw` and reads the whole response.

        Returns (status, headers, body, ns_to_watch) where ns_to_watch is the time from just
        before sending to the read in which the decoded body first contained `watch` (or None).
        """
        if self.sock is None:
            self._connect()
        t0 = time.perf_counter_ns()
        self.sock.sendall(raw)

        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(f"bad status line {head[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()

        body = bytearray()
        t_watch = None

        def seen():
            nonlocal t_watch
            if watch is not None and t_watch is None and watch in body:
                t_watch = time.perf_counter_ns() - t0

        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._read_chunked(body, seen)
        elif "content-length" in headers:
            need = int(headers["content-length"])
            while len(self.buf) < need:
                self._fill()
            body += self.buf[:need]
            del self.buf[:need]
            seen()
        else:
            # No framing: the body runs to the end of the connection.
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.buf += data
            body += self.buf
            self.buf.clear()
            seen()
            self.close()
            return status, headers, bytes(body), t_watch

        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, bytes(body), t_watch

    def _read_chunked(self, body, seen):
        # Decode whatever has arrived after every recv so that `seen` timestamps the read in
        # which the first event actually showed up, not the end of the stream.
        while True:
            while (eol := self.buf.find(b"\r\n")) < 0:
                self._fill()
            size_line = bytes(self.buf[:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_line!r}") from None
            del self.buf[: eol + 2]
            if size == 0:
                break
            while size > 0:
                if not self.buf:
                    self._fill()
                take = min(size, len(self.buf))
                body += self.buf[:take]
                del self.buf[:take]
                size -= take
                seen()
            while len(self.buf) < 2:
                self._fill()
            if self.buf[:2] != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
            del self.buf[:2]
        # Trailer section: header lines up to an empty line (normally just the empty line).
        while True:
            while (eol := self.buf.find(b"\r\n")) < 0:
                self._fill()
            line = self.buf[:eol]
            del self.buf[: eol + 2]
            if not line:
                return


def build_post(host, port, path, key, payload):
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def chat_payload(model, stream):
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello to the benchmark"}],
        "max_tokens": 64,
    }
    if stream:
        payload["stream"] = True
    return payload


def sse_events(body):
    """The `data:` payloads of an SSE body, in order."""
    events = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")]
        if data:
            events.append(b"\n".join(data))
    return events


def stream_problem(status, body):
    """Why a streaming response is not a complete, successful stream (None if it is)."""
    if status != 200:
        return f"status {status}: {body[:200]!r}"
    events = sse_events(body)
    if not events or events[-1] != b"[DONE]":
        return f"stream does not end with [DONE] ({len(events)} events)"
    return None


def percentile(sorted_vals, q):
    """Nearest-rank percentile, the same definition for every target."""
    if not sorted_vals:
        return None
    rank = max(1, -(-len(sorted_vals) * q // 100))  # ceil without floats
    return sorted_vals[int(rank) - 1]


def target_of(url):
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        sys.exit(f"ttfb.py: only http:// URLs are supported, got {url}")
    return u.hostname, u.port or 80, u.path or "/"


def cmd_ttfb(args):
    host, port, path = target_of(args.url)
    raw = build_post(host, port, path, args.key, chat_payload(args.model, True))
    conn = Conn(host, port)
    samples, errors, first_error, events = [], 0, None, 0
    for i in range(args.warmup + args.n):
        body, ttfb = b"", None
        try:
            status, _, body, ttfb = conn.request(raw, watch=b"data:")
            problem = stream_problem(status, body)
        except (OSError, ProtocolError) as e:
            conn.close()  # start over on a fresh connection
            problem = f"{type(e).__name__}: {e}"
        if i < args.warmup:
            continue
        if problem is None and ttfb is not None:
            samples.append(ttfb / 1000)
            events = len(sse_events(body))
        else:
            errors += 1
            first_error = first_error or problem or "no data: event"
    conn.close()
    samples.sort()
    out = {
        "target": args.target,
        "n": args.n,
        "ok": len(samples),
        "errors": errors,
        "p50_us": round(percentile(samples, 50)) if samples else None,
        "p90_us": round(percentile(samples, 90)) if samples else None,
        "p99_us": round(percentile(samples, 99)) if samples else None,
        "events_per_stream": events,
    }
    if first_error:
        out["first_error"] = first_error
    print(json.dumps(out))


def cmd_check(args):
    host, port, path = target_of(args.url)
    conn = Conn(host, port)
    name = args.target or args.url
    try:
        status, _, body, _ = conn.request(
            build_post(host, port, path, args.key, chat_payload(args.model, False))
        )
        if status != 200:
            sys.exit(f"check {name}: non-streaming request got status {status}: {body[:300]!r}")
        try:
            reply = json.loads(body)
            content = reply["choices"][0]["message"]["content"]
            tokens = (reply.get("usage") or {}).get("completion_tokens")
        except (ValueError, KeyError, IndexError, TypeError):
            sys.exit(f"check {name}: non-streaming body is not a chat completion: {body[:300]!r}")
        if not content:
            sys.exit(f"check {name}: empty completion: {body[:300]!r}")

        status, headers, body, _ = conn.request(
            build_post(host, port, path, args.key, chat_payload(args.model, True))
        )
        problem = stream_problem(status, body)
        if problem:
            sys.exit(f"check {name}: streaming request: {problem}")
        ctype = headers.get("content-type", "")
        if not ctype.startswith("text/event-stream"):
            sys.exit(f"check {name}: streaming content-type is {ctype!r}")
    except (OSError, ProtocolError) as e:
        sys.exit(f"check {name}: {type(e).__name__}: {e}")
    finally:
        conn.close()
    print(
        f"check {name}: ok ({tokens} completion tokens, "
        f"{len(sse_events(body))} SSE events per stream)"
    )


def cmd_wait(args):
    host, port, path = target_of(args.url)
    raw = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    deadline = time.monotonic() + args.timeout
    last = "no answer"
    while time.monotonic() < deadline:
        conn = Conn(host, port, timeout=2.0)
        try:
            status, _, _, _ = conn.request(raw)
            if status == 200 or args.any_status:
                return
            last = f"status {status}"
        except (OSError, ProtocolError) as e:
            last = f"{type(e).__name__}: {e}"
        finally:
            conn.close()
        time.sleep(0.1)
    sys.exit(f"wait: {args.url} not ready after {args.timeout}s ({last})")


def cmd_load(args):
    host, port, path = target_of(args.url)
    raw = build_post(host, port, path, args.key, chat_payload(args.model, args.stream))
    conns = [Conn(host, port) for _ in range(args.connections)]
    try:
        for i in range(args.n):
            if args.unique:
                payload = chat_payload(args.model, args.stream)
                payload["messages"][0]["content"] += f" {args.unique_from + i}"
                raw = build_post(host, port, path, args.key, payload)
            status, _, body, _ = conns[i % len(conns)].request(raw)
            problem = stream_problem(status, body) if args.stream else (
                None if status == 200 else f"status {status}: {body[:200]!r}")
            if problem:
                sys.exit(f"load: request {i}: {problem}")
    except (OSError, ProtocolError) as e:
        sys.exit(f"load: {type(e).__name__}: {e}")
    finally:
        for conn in conns:
            conn.close()


def cmd_key(args):
    import urllib.request

    body = json.dumps(
        {"alias": "bench", "limits": {"rpm": 10**9, "tpm": 10**12, "max_parallel": 10**6}}
    ).encode()
    request = urllib.request.Request(
        f"{args.url.rstrip('/')}/admin/keys",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {args.master}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        print(json.loads(response.read())["key"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("ttfb", "check"):
        s = sub.add_parser(name)
        s.add_argument("url")
        s.add_argument("--model", required=True)
        s.add_argument("--key", default="bench-key")
        s.add_argument("--target", default="")
    t = sub.choices["ttfb"]
    t.add_argument("--n", type=int, default=2000)
    t.add_argument("--warmup", type=int, default=50)
    ld = sub.add_parser("load")
    ld.add_argument("url")
    ld.add_argument("--model", required=True)
    ld.add_argument("--key", default="bench-key")
    ld.add_argument("--n", type=int, default=1000)
    ld.add_argument("--stream", action="store_true")
    ld.add_argument("--connections", type=int, default=4)
    ld.add_argument("--unique", action="store_true", help="a prompt of its own per request")
    ld.add_argument("--unique-from", type=int, default=0, help="the first request's number")
    w = sub.add_parser("wait")
    w.add_argument("url")
    w.add_argument("--timeout", type=float, default=30)
    w.add_argument("--any-status", action="store_true", help="any HTTP answer will do")
    k = sub.add_parser("key")
    k.add_argument("url")
    k.add_argument("--master", required=True)
    args = p.parse_args()
    {"ttfb": cmd_ttfb, "check": cmd_check, "wait": cmd_wait, "load": cmd_load, "key": cmd_key}[
        args.cmd
    ](args)


if __name__ == "__main__":
    main()
