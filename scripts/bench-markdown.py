#!/usr/bin/env python3
"""Prints the Markdown table of BENCHMARKS.md's "One command" section from a `gryning bench`
result file (schema gryning-bench/1): one line per row, each figure as median (min-max), the
baseline's figures, the ratios and the targets met or missed.

    python3 scripts/bench-markdown.py bench/results-scale79.json
"""
import json
import sys


def number(x):
    if x is None:
        return "—"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def unit(u):
    return {"x": "×", "ev/s": " ev/s", "/s": " /s"}.get(u, " " + u)


def figure(f):
    u = unit(f["unit"])
    return f"`{f['name']}` {number(f['median'])}{u} ({number(f['min'])}–{number(f['max'])})"


def target(t):
    if t["met"] is None:
        if t.get("from_events"):
            return f"{t['text']}: **not judged (set for {t['from_events']:,} events and more)**"
        return f"{t['text']}: **not judged**"
    return f"{t['text']}: **{'met' if t['met'] else 'missed'}**"


def main(path):
    result = json.load(open(path))
    print("| row | gryning: median (min–max) | baseline in the same run | ratio | target |")
    print("|---|---|---|---|---|")
    for row in result["rows"]:
        ours = "<br>".join(figure(f) for f in row["figures"])
        base = row["baseline"]
        if "unavailable" in base:
            theirs = f"unavailable: {base['unavailable']}"
        else:
            theirs = "<br>".join(figure(f) for f in base["figures"]) or "—"
        ratios = "<br>".join(figure(r) for r in row["ratios"]) or "—"
        targets = "<br>".join(target(t) for t in row["targets"]) or "—"
        print(f"| `{row['id']}` | {ours} | {theirs} | {ratios} | {targets} |")
    la = result["load_average"]
    print()
    print(
        f"{result['data']['events']:,} events, {result['repeat']} repetitions, {result['build']} build, "
        f"{result['seconds'] / 60:.0f} minutes; load average {la['start']} at the start, {la['end']} at the end."
    )


if __name__ == "__main__":
    main(sys.argv[1])
