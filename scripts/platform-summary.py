#!/usr/bin/env python3
"""The platform tier's summary: each scenario's verdict, wall time in the guest, and every
expectation that is not PASS with its reason (runs.jsonl: the `aftershock run --json` outputs,
one after another; tier.txt: `<file> rc=<exit> wall=<s>s` lines). Exit 1 when any verdict is
FAIL or a run did not finish (a harness error), else 0."""
import json
import sys

runs_path, tier_path = sys.argv[1], sys.argv[2]
text = open(runs_path).read() if __import__("os").path.exists(runs_path) else ""
dec, at, docs = json.JSONDecoder(), 0, []
while at < len(text):
    while at < len(text) and text[at].isspace():
        at += 1
    if at >= len(text):
        break
    doc, at = dec.raw_decode(text, at)
    docs.append(doc)
runs = [r for d in docs for r in d.get("runs", [])]
walls = [l.split() for l in open(tier_path) if l.strip()]
bad = len(runs) < len(walls)
print(f"{'scenario':<32} {'verdict':<8} {'wall in guest':>13}")
for i, r in enumerate(runs):
    wall = walls[i][2].split("=")[1] if i < len(walls) else "?"
    verdict = r["verdict"].upper()
    bad |= verdict == "FAIL" or bool(r.get("error"))
    print(f"{r['scenario']:<32} {verdict:<8} {wall:>13}")
    if r.get("error"):
        print(f"    error: {r['error']}")
    for e in r.get("expectations", []):
        label = str(e.get("verdict", "?")).upper()
        if label != "PASS":
            print(f"    {label}: {e.get('title')}: {e.get('measured')} — {e.get('reason', '')[:300]}")
for w in walls[len(runs):]:
    print(f"{w[0]:<32} {'NO RUN':<8} {w[2].split('=')[1]:>13}  ({w[1]})")
sys.exit(1 if bad else 0)
