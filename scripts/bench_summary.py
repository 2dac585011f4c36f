#!/usr/bin/env python3
"""Summarises a bench run (results.jsonl of scripts/bench.sh): Banter beside the baseline and beside
the ceilings of its broker and database, with the issues' targets."""

import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def by(reports, scenario, target=None):
    return [r for r in reports
            if r.get("scenario") == scenario and (target is None or r.get("target") == target)]


def rate_of(reports, prefix):
    for r in reports:
        if r.get("what", "").startswith(prefix):
            return r
    return None


def main():
    reports = load(sys.argv[1])
    out = ["", "== summary =="]

    for scenario in ("fanout", "chat"):
        base = by(reports, scenario, "baseline")
        ban = by(reports, scenario, "banter")
        if not (base and ban):
            continue
        out.append(f"{scenario}: offered msgs/s | deliveries/s banter / baseline = ratio | "
                   "deliver p99 ms banter / baseline | clean banter, baseline")
        for b, s in zip(base[-1]["steps"], ban[-1]["steps"]):
            ratio = s["deliveries_per_sec"] / b["deliveries_per_sec"] if b["deliveries_per_sec"] else 0
            out.append(f"  {s['offered']:>8.0f} | {s['deliveries_per_sec']:>10.0f} / "
                       f"{b['deliveries_per_sec']:>10.0f} = {ratio:.2f} | "
                       f"{s['deliver']['p99_ms']:>7.2f} / {b['deliver']['p99_ms']:>7.2f} | "
                       f"{ban[-1]['clean']}, {base[-1]['clean']}")
        cpu = [(s["offered"], s["server_cpu"]["us_per_message"], b["server_cpu"]["us_per_message"])
               for b, s in zip(base[-1]["steps"], ban[-1]["steps"])
               if s.get("server_cpu") and b.get("server_cpu")]
        if cpu:
            out.append(f"{scenario}: server CPU µs per message, banter / baseline = ratio "
                       "(every delivery and write of it included)")
            for offered, us, base_us in cpu:
                out.append(f"  {offered:>8.0f} | {us:>8.1f} / {base_us:>8.1f} = "
                           f"{us / base_us if base_us else 0:.2f}")

    idle = [r for r in reports if "rss_per_connection" in r]
    for r in idle:
        per = r.get("rss_per_connection")
        out.append(f"idle {r['target']}: {r['open']}/{r['spec']['connections']} open, "
                   f"{(per or 0) / 1024:.1f} KiB RSS per connection (target <= 8 KiB, issue #18)")

    produce = rate_of(reports, "rdkafka produce")
    wp = by(reports, "write-path")
    if produce and wp:
        banter = wp[-1]["steps"][-1]["messages_per_sec"]
        out.append(f"write path (a): WebSocket → RECEIPT {banter:.0f} msgs/s vs rdkafka alone "
                   f"{produce['per_sec']:.0f}/s = {banter / produce['per_sec']:.2f} (target ≥ 0.8); "
                   f"clean {wp[-1]['clean']}")
    half = by(reports, "write-path-half")
    if half:
        s = half[-1]["steps"][0]
        out.append(f"write path (a) at {s['offered']:.0f} msgs/s: send → RECEIPT p99 "
                   f"{s['receipt']['p99_ms']:.2f} ms (target < 20), {s['messages_per_sec']:.0f} msgs/s; "
                   f"clean {half[-1]['clean']}")
    alone = [r for r in reports if "ack" in r and "offered" in r]
    if alone:
        a = alone[-1]
        out.append(f"  rdkafka alone at {a['offered']:.0f} records/s: enqueue → ack p99 "
                   f"{a['ack']['p99_ms']:.2f} ms, p50 {a['ack']['p50_ms']:.2f} ms (the broker's own latency)")
    durable = by(reports, "chat-durable")
    if durable:
        s = durable[-1]["steps"][0]
        out.append(f"chat, durable acks at {s['offered']:.0f} msgs/s: send → deliver p99 "
                   f"{s['deliver']['p99_ms']:.2f} ms (target < 10); clean {durable[-1]['clean']}")
    drain = rate_of(reports, "persister drain")
    insert = rate_of(reports, "plain multi-row INSERT")
    if drain and insert:
        out.append(f"write path (b): persister {drain['per_sec']:.0f} rows/s vs plain INSERT "
                   f"{insert['per_sec']:.0f} rows/s = {drain['per_sec'] / insert['per_sec']:.2f} "
                   "(target ≥ 0.8)")
    consume = rate_of(reports, "rdkafka consume")
    if drain and consume:
        out.append(f"write path (b): persister / rdkafka consuming alone {consume['per_sec']:.0f}/s = "
                   f"{drain['per_sec'] / consume['per_sec']:.2f} (the broker's reads bound the persister)")
    normal = by(reports, "chat-normal-sync", "banter")
    if normal:
        out.append("chat, in-process journal with store.sqlite_synchronous = normal: offered | msgs/s | "
                   "deliver p50 / p99 ms")
        for s in normal[-1]["steps"]:
            out.append(f"  {s['offered']:>8.0f} | {s['messages_per_sec']:>8.0f} | "
                       f"{s['deliver']['p50_ms']:.2f} / {s['deliver']['p99_ms']:.2f}")
    chat = by(reports, "chat", "banter")
    if chat:
        for s in chat[-1]["steps"]:
            if s["offered"] and s["offered"] >= 10000:
                out.append(f"chat, in-process journal at {s['offered']:.0f} msgs/s: deliver p99 "
                           f"{s['deliver']['p99_ms']:.2f} ms (target < 2)")
    off = by(reports, "tracing-off", "banter")
    if off:
        out.append("tracing: server CPU µs per message, export on / off = ratio (target ≤ 1.1 at 1%)")
        # "away": 1% with the collector's port closed (every export fails).
        for label in ("0.01", "1", "away"):
            on = by(reports, f"tracing-{label}", "banter")
            if not on:
                continue
            for a, b in zip(on[-1]["steps"], off[-1]["steps"]):
                if a.get("server_cpu") and b.get("server_cpu"):
                    us, base = a["server_cpu"]["us_per_message"], b["server_cpu"]["us_per_message"]
                    out.append(f"  ratio {label:>4} at {a['offered']:>6.0f} msgs/s: {us:>7.1f} / "
                               f"{base:>7.1f} = {us / base if base else 0:.2f}; delivered "
                               f"{a.get('delivered', 0)} / {b.get('delivered', 0)}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
