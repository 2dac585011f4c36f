#!/usr/bin/env python3
"""A stand-in OTLP/HTTP collector for the benchmarks: answers every POST (/v1/traces, /v1/metrics,
/v1/logs) with 200 and an empty response (zero bytes of protobuf), and prints what it took when
stopped: requests, bytes, and the spans of the trace exports by name (read with a minimal protobuf walk of
ExportTraceServiceRequest → ResourceSpans(1) → ScopeSpans(2) → Span(2) → name(5)).

    scripts/otlp_sink.py PORT

The bench measures the node's cost of tracing, so the collector only has to accept; what it
received (requests, bytes) goes to standard output at SIGTERM.
"""
import collections
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

taken = {"requests": 0, "bytes": 0}
names = collections.Counter()
lock = threading.Lock()


def fields(buf):
    """Yields (field number, wire type, value) of a protobuf message; values of length-delimited
    fields are bytes, varints are ints, fixed ones are skipped."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = None, i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = None, i + 4
        else:
            return
        yield number, wire, value


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def span_names(body):
    for n1, w1, rs in fields(body):
        if n1 != 1 or w1 != 2:
            continue
        for n2, w2, ss in fields(rs):
            if n2 != 2 or w2 != 2:
                continue
            for n3, w3, span in fields(ss):
                if n3 != 2 or w3 != 2:
                    continue
                for n4, w4, name in fields(span):
                    if n4 == 5 and w4 == 2:
                        yield name.decode("utf-8", "replace")


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        # Metrics and logs come too: only a trace export's body holds spans.
        got = collections.Counter(span_names(body) if self.path == "/v1/traces" else ())
        with lock:
            taken["requests"] += 1
            taken["bytes"] += n
            names.update(got)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink)

    def stop(*_):
        spans = ", ".join(f"{k} {v}" for k, v in sorted(names.items()))
        print(f"otlp sink: {taken['requests']} requests, {taken['bytes']} bytes; spans: {spans}",
              flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
