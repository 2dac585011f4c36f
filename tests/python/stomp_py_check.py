#!/usr/bin/env python3
"""Checks a Banter node with the stock STOMP client stomp.py (PyPI), over WebSocket at /ws.

Connects with the access token as passcode (stomp.py sends a STOMP frame, no subprotocol, and an
Origin of the node itself), subscribes to /rooms/<room> with a receipt, sends <body> with a receipt,
waits for the RECEIPT (with seq and message-id) and for its own MESSAGE, disconnects with a receipt.
Prints `ok seq=<n> message-id=<id>` and exits 0 on success; prints the reason and exits 1 otherwise.
"""

import argparse
import sys
import threading

import stomp


class Listener(stomp.ConnectionListener):
    """Collects receipts, messages and errors, and signals waiters."""

    def __init__(self):
        self.cond = threading.Condition()
        self.receipts = {}
        self.messages = []
        self.errors = []
        self.disconnected = False

    def on_receipt(self, frame):
        with self.cond:
            self.receipts[frame.headers.get("receipt-id")] = frame.headers
            self.cond.notify_all()

    def on_message(self, frame):
        with self.cond:
            self.messages.append(frame)
            self.cond.notify_all()

    def on_error(self, frame):
        with self.cond:
            self.errors.append(frame)
            self.cond.notify_all()

    def on_disconnected(self):
        with self.cond:
            self.disconnected = True
            self.cond.notify_all()

    def wait(self, what, predicate, timeout):
        """Waits until predicate() holds; fails on an ERROR frame or the timeout."""
        with self.cond:
            ok = self.cond.wait_for(lambda: predicate() or self.errors, timeout=timeout)
            if self.errors:
                err = self.errors[0]
                raise RuntimeError(f"ERROR while waiting for {what}: {err.headers} {err.body!r}")
            if not ok:
                raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()

    destination = f"/rooms/{args.room}"
    listener = Listener()
    conn = stomp.WSStompConnection(
        [(args.host, args.port)],
        ws_path="/ws",
        heartbeats=(0, 0),
        reconnect_attempts_max=1,
        timeout=args.timeout,
    )
    conn.set_listener("check", listener)
    conn.connect(login="banter", passcode=args.token, wait=True)

    conn.subscribe(destination=destination, id="py-1", ack="auto", headers={"receipt": "sub-1"})
    listener.wait("the SUBSCRIBE receipt", lambda: "sub-1" in listener.receipts, args.timeout)

    conn.send(destination=destination, body=args.body, content_type="text/plain;charset=utf-8",
              headers={"receipt": "send-1"})
    listener.wait("the SEND receipt", lambda: "send-1" in listener.receipts, args.timeout)
    receipt = listener.receipts["send-1"]
    seq, message_id = receipt.get("seq"), receipt.get("message-id")
    if not seq or not message_id:
        raise RuntimeError(f"RECEIPT lacks seq or message-id: {receipt}")

    listener.wait("the MESSAGE", lambda: any(m.body == args.body for m in listener.messages), args.timeout)
    message = next(m for m in listener.messages if m.body == args.body)
    headers = message.headers
    expected = {"destination": destination, "subscription": "py-1", "event": "message",
                "seq": seq, "message-id": message_id, "room-id": str(args.room)}
    wrong = {k: (headers.get(k), v) for k, v in expected.items() if headers.get(k) != v}
    if wrong:
        raise RuntimeError(f"MESSAGE headers differ (got, expected): {wrong}")

    conn.disconnect(receipt="bye-1")
    print(f"ok seq={seq} message-id={message_id}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # report any failure as a non-zero exit with its reason
        print(f"stomp_py_check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
