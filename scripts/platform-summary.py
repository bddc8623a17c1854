#!/usr/bin/env python3
"""The platform tier's summary: each scenario's verdict, wall time in the guest, and every
expectation that is not PASS with its reason (runs.jsonl: the `aftershock run --json` outputs,
one after another; tier.txt: `<file> rc=<exit> wall=<s>s` lines). Exit 1 when any verdict is
FAIL or a run did not finish (no report), else 0. A run whose fault could not be carried out
(a harness error, e.g. an ensemble with no leader to select under emulation) is UNKNOWN and
its error is printed: it is the tier's honest answer, not a failure of the tier."""
import json
import os
import sys

runs_path, tier_path = sys.argv[1], sys.argv[2]
text = open(runs_path).read() if os.path.exists(runs_path) else ""
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
# Each file's run by its scenario's name (a refused file has none: it would shift the rest).
by_name = {r["scenario"]: r for r in runs}
bad = False
print(f"{'scenario':<32} {'verdict':<8} {'wall':>6}")
for w in walls:
    name = os.path.basename(w[0]).removesuffix(".toml")
    wall = w[2].split("=")[1] if len(w) > 2 else "?"
    r = by_name.pop(name, None)
    if r is None:
        bad = True
        print(f"{name:<32} {'NO RUN':<8} {wall:>6}  ({w[1]})")
        continue
    verdict = r["verdict"].upper()
    bad |= verdict == "FAIL"
    print(f"{r['scenario']:<32} {verdict:<8} {wall:>6}")
    if r.get("platform"):
        p = r["platform"]
        print(f"    on {p['engine']}, API {p['api']} (negotiated {p['negotiated']}), cgroup v{p['cgroup']} ({p['cgroup_driver']})")
    if r.get("error"):
        print(f"    error: {r['error']}")
    for e in r.get("expectations", []):
        label = str(e.get("verdict", "?")).upper()
        if label != "PASS":
            print(f"    {label}: {e.get('title')}: {e.get('measured')} — {e.get('reason', '')[:300]}")
sys.exit(1 if bad else 0)
