#!/usr/bin/env python3
"""Turns the raw results of bench/run.sh into the printed table and bench-out/results.json.

    report.py RAW_DIR OUT_JSON

RAW_DIR holds wrk.jsonl (one line per wrk run: chat.lua's BENCH_RESULT plus target/conc/stream
and the CPU seconds the target's process spent during the run),
ttfb.jsonl (one line per ttfb.py run) and meta.json (run parameters, gateway peak RSS).
Kept apart from run.sh so the numbers can be re-reported from a saved RAW_DIR.
"""

import json
import sys
from pathlib import Path

TARGETS = ("direct", "nginx", "gateway", "gateway-keys", "gateway-redis", "gateway-ledger", "gateway-audit", "gateway-guards")


def load_jsonl(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def errors_of(r):
    return (
        r["non2xx"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    )


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def summarize(group):
    """A target's runs of one load shape (one per round) as one row of medians."""
    first = group[0]
    row = {"target": first["target"], "conc": first["conc"], "stream": first["stream"]}
    for key in ("rps", "p50_us", "p99_us", "added_p50_us", "added_p99_us", "vs_nginx", "cpu_us", "cpu_vs_gw"):
        row[key] = median(r[key] for r in group)
    ratios = [r["vs_nginx"] for r in group if r["vs_nginx"] is not None]
    row["vs_nginx_range"] = (
        [min(ratios), max(ratios)] if ratios and first["target"] != "nginx" else None
    )
    row["errors"] = sum(r["errors"] for r in group)
    row["rounds"] = group
    return row


def fmt(v, spec="", sign=False):
    if v is None:
        return "-"
    return format(v, ("+" if sign else "") + spec)


def main():
    raw, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    meta = json.loads((raw / "meta.json").read_text())
    runs = load_jsonl(raw / "wrk.jsonl")
    ttfb = {t["target"]: t for t in load_jsonl(raw / "ttfb.jsonl")}

    # Overheads are only meaningful against the same load shape (concurrency, streaming) and,
    # with several rounds, the same round (the machine state the runs shared).
    by_key = {(r["target"], r["conc"], r["stream"], r.get("round", 1)): r for r in runs}
    for r in runs:
        rnd = r.get("round", 1)
        direct = by_key.get(("direct", r["conc"], r["stream"], rnd))
        nginx = by_key.get(("nginx", r["conc"], r["stream"], rnd))
        r["errors"] = errors_of(r)
        r["added_p50_us"] = r["p50_us"] - direct["p50_us"] if direct and r["target"] != "direct" else None
        r["added_p99_us"] = r["p99_us"] - direct["p99_us"] if direct and r["target"] != "direct" else None
        r["vs_nginx"] = (
            round(r["rps"] / nginx["rps"], 3)
            if nginx and nginx["rps"] and r["target"] != "direct"
            else None
        )
        # CPU time of the target's process per request it answered (older raw files lack it).
        r["cpu_us"] = (
            round(r["cpu_s"] * 1e6 / r["requests"], 1)
            if r.get("cpu_s") is not None and r["requests"]
            else None
        )
    for r in runs:
        gateway = by_key.get(("gateway", r["conc"], r["stream"], r.get("round", 1)))
        r["cpu_vs_gw"] = (
            round(r["cpu_us"] / gateway["cpu_us"], 3)
            if gateway and gateway.get("cpu_us") and r["cpu_us"] is not None
            and r["target"].startswith("gateway")
            else None
        )

    # One row per target and load shape: the median of each figure over the rounds.
    rounds = {}
    for r in runs:
        rounds.setdefault((r["target"], r["conc"], r["stream"]), []).append(r)
    rows = [summarize(group) for group in rounds.values()]

    direct_ttfb = ttfb.get("direct", {})
    for t in ttfb.values():
        if t["target"] != "direct" and direct_ttfb.get("p50_us") is not None and t["p50_us"] is not None:
            t["added_p50_us"] = t["p50_us"] - direct_ttfb["p50_us"]
            t["added_p99_us"] = t["p99_us"] - direct_ttfb["p99_us"]

    several = meta.get("rounds", 1) > 1
    lines = []
    if several:
        lines.append(f"medians of {meta['rounds']} interleaved rounds; vs-nginx range over the rounds")
    lines.append(
        f"{'target':<13} {'conc':>4} {'stream':<6} {'req/s':>9} {'p50(us)':>8} {'p99(us)':>8} "
        f"{'+p50(us)':>8} {'+p99(us)':>8} {'vs-nginx':>8} {'cpu(us)':>8} {'cpu-vs-gw':>9} {'errors':>6}"
        + (f" {'range':>11}" if several else "")
    )
    order = sorted(
        rows, key=lambda r: (r["stream"], r["conc"], TARGETS.index(r["target"]))
    )
    prev = None
    for r in order:
        if prev is not None and (r["conc"], r["stream"]) != prev:
            lines.append("")
        prev = (r["conc"], r["stream"])
        spread = r["vs_nginx_range"]
        lines.append(
            f"{r['target']:<13} {r['conc']:>4} {'yes' if r['stream'] else 'no':<6} "
            f"{r['rps']:>9.0f} {r['p50_us']:>8.0f} {r['p99_us']:>8.0f} "
            f"{fmt(r['added_p50_us'], '.0f', True):>8} {fmt(r['added_p99_us'], '.0f', True):>8} "
            f"{fmt(r['vs_nginx'], '.2f'):>8} {fmt(r['cpu_us'], '.1f'):>8} "
            f"{fmt(r['cpu_vs_gw'], '.3f'):>9} {r['errors']:>6}"
            + (
                f" {f'{spread[0]:.2f}-{spread[1]:.2f}' if spread else '-':>11}"
                if several
                else ""
            )
        )

    parts = []
    for name in TARGETS:
        t = ttfb.get(name)
        if not t:
            continue
        s = f"{name} {fmt(t['p50_us'])} / {fmt(t['p99_us'])}"
        if "added_p50_us" in t:
            s += f" ({fmt(t['added_p50_us'], 'd', True)} / {fmt(t['added_p99_us'], 'd', True)})"
        if t["errors"]:
            s += f" [{t['errors']} errors: {t.get('first_error', '?')}]"
        parts.append(s)
    if parts:
        n = next(iter(ttfb.values()))["n"]
        lines.append("")
        lines.append(f"stream TTFB p50/p99 (us), {n} sequential requests: " + ", ".join(parts))
    rss = meta.get("gateway_peak_rss_mb")
    lines.append(f"gateway peak RSS: {rss:.1f} MB" if rss is not None else "gateway peak RSS: -")

    print("\n".join(lines))

    result = {
        "meta": meta,
        "runs": order,
        "ttfb": [ttfb[n] for n in TARGETS if n in ttfb],
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults: {out_path}")


if __name__ == "__main__":
    main()
