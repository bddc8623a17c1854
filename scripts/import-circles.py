#!/usr/bin/env python3
"""Import circles between modules of a crate's src/ (the libraries' layering inside a crate,
which Cargo cannot check; `make test-pure` runs it on model/, harness/ and cli/). Node = a module (file). Edge
A -> B when A's library code names B (a `use` or a `crate::`/`super::`/`self::` path; `pub use`
re-exports followed to where the item lives). Test-only code is left out: files with
`#![cfg(test)]`, `#[cfg(test)] mod x { .. }` blocks and `mod tests;` files. An edge between a
module and its own ancestor is not counted (a parent declares its children). Prints each
strongly connected component of more than one module among siblings."""
import os, re, sys
from collections import defaultdict

def files(src):
    out = {}
    for root, _, fs in os.walk(src):
        for f in fs:
            if f.endswith('.rs'):
                rel = os.path.relpath(os.path.join(root, f), src)[:-3].split('/')
                if rel[-1] in ('lib', 'main', 'mod'):
                    rel = rel[:-1]
                out[tuple(rel)] = os.path.join(root, f)
    return out

def clean(text):
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r'//[^\n]*', '', text)
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    while (m := re.search(r'#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{', text)):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {'{': 1, '}': -1}.get(text[i], 0); i += 1
        text = text[:m.start()] + text[i:]
    return text

def test_only(path, raw, parent_text):
    name = path[-1] if path else ''
    if re.search(r'^\s*#!\[cfg\(test\)\]', raw, re.M):
        return True
    return bool(re.search(r'#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*mod\s+' + re.escape(name) + r'\s*;', parent_text))

def expand(tree):
    tree = tree.strip()
    i = tree.find('{')
    if i < 0:
        return [tree]
    head, body = tree[:i], tree[i + 1:tree.rfind('}')]
    parts, depth, cur = [], 0, ''
    for ch in body:
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''; continue
        depth += {'{': 1, '}': -1}.get(ch, 0); cur += ch
    parts.append(cur)
    return [head + x for p in parts if p.strip() for x in expand(p)]

def to_abs(path, here, mods):
    segs = [re.sub(r'\s+as\s+\w+$', '', s.strip()) for s in path.split('::') if s.strip()]
    if not segs:
        return None
    if segs[0] == 'crate':
        return segs[1:]
    if segs[0] in ('self', 'super'):
        cur = list(here)
        while segs and segs[0] in ('self', 'super'):
            if segs[0] == 'super':
                cur = cur[:-1]
            segs = segs[1:]
        return cur + segs
    if tuple(list(here) + [segs[0]]) in mods:   # `use child::x` (2018 paths)
        return list(here) + segs
    return None

def run(src):
    mods = files(src)
    raw = {m: open(p).read() for m, p in mods.items()}
    text = {m: clean(t) for m, t in raw.items()}
    lib = {m for m in mods if not any(test_only(m[:k + 1], raw[m[:k + 1]], raw.get(m[:k], ''))
                                      for k in range(len(m)) if m[:k + 1] in mods)}
    reexports = defaultdict(dict)
    for m in lib:
        for u in re.findall(r'\bpub(?:\([^)]*\))?\s+use\s+([^;]+);', text[m]):
            for p in expand(u):
                a = to_abs(p, m, mods)
                if a and a[-1] != '*':
                    alias = re.search(r'\bas\s+(\w+)\s*$', p)
                    reexports[m][alias.group(1) if alias else a[-1]] = a
    def owner(a, hops=0):
        k = max(k for k in range(len(a) + 1) if tuple(a[:k]) in mods)
        m, rest = tuple(a[:k]), a[k:]
        if rest and rest[0] in reexports[m] and hops < 10:
            return owner(reexports[m][rest[0]] + rest[1:], hops + 1)
        return m
    edges = defaultdict(set)
    for m in lib:
        paths = [p for u in re.findall(r'\buse\s+([^;]+);', text[m]) for p in expand(u)]
        paths += re.findall(r'\b(?:crate|super|self)(?:\s*::\s*\w+)+', text[m])
        for p in paths:
            a = to_abs(p, m, mods)
            if a is None:
                continue
            t = owner(a)
            if t != m and t in lib:
                edges[m].add(t)
    by_parent = defaultdict(lambda: defaultdict(set))
    for a, bs in edges.items():
        for b in bs:
            k = 0
            while k < min(len(a), len(b)) and a[k] == b[k]:
                k += 1
            if k < len(a) and k < len(b):
                by_parent[a[:k]][a[k]].add(b[k])
    found = []
    for parent, g in sorted(by_parent.items()):
        for comp in sccs(g):
            if len(comp) > 1:
                where = '::'.join(parent) or 'crate'
                found.append(f"{src}: circle under {where}: {' ⇄ '.join(sorted(comp))}")
    n_edges = sum(len(v) for v in edges.values())
    print(f"{src}: {len(lib)} library modules ({len(mods) - len(lib)} test-only left out), {n_edges} edges, {len(found)} circle(s)")
    for f in found:
        print('  ' + f)
    return len(found)

def sccs(g):
    idx, low, st, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        idx[v] = low[v] = n[0]; n[0] += 1; st.append(v); on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in idx:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = set()
            while True:
                w = st.pop(); on.discard(w); comp.add(w)
                if w == v:
                    break
            out.append(comp)
    for v in sorted(set(g) | {w for ws in g.values() for w in ws}):
        if v not in idx:
            visit(v)
    return out

sys.setrecursionlimit(10000)
total = sum(run(s) for s in sys.argv[1:])
print(f"total: {total} circle(s)")
sys.exit(1 if total else 0)
