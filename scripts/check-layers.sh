#!/usr/bin/env bash
# Layering of the top-level modules of src/ (a file or folder directly under src/).
#
# Lists, per top-level module, the other top-level modules it references (`crate::X`,
# `use crate::{X, …}`, or `super::` chains that climb to the crate root), outside comments.
# Fails when a file under src/backend/ references one of the layers above the compute seam
# (fit, stats, report, analyze, groups, io, cli, settings), or when a cycle between top-level
# modules appears that is not among the known ones below (docs/ARCHITECTURE.md §5).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 - <<'PY'
import os, re, sys

SRC = "src"
FORBIDDEN_FOR_BACKEND = {"fit", "stats", "report", "analyze", "groups", "io", "cli", "settings"}
# Cycles still open (docs/ARCHITECTURE.md §5): reported, not failed on.
KNOWN_CYCLES = []

modules = sorted(
    name[:-3] if name.endswith(".rs") else name
    for name in os.listdir(SRC)
    if (name.endswith(".rs") and name not in ("lib.rs", "main.rs"))
    or os.path.isdir(os.path.join(SRC, name))
)
top = set(modules)

def files_of(module):
    path = os.path.join(SRC, module)
    if os.path.isdir(path):
        for root, _, names in os.walk(path):
            for n in sorted(names):
                if n.endswith(".rs"):
                    yield os.path.join(root, n)
    else:
        yield path + ".rs"

def module_path(file):
    parts = os.path.relpath(file, SRC)[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts

def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        if line.lstrip().startswith("//"):
            continue
        out.append(re.sub(r'\s//[^"]*$', "", line))
    return "\n".join(out)

def brace_heads(text, start):
    """First identifiers of the top-level items of the `{…}` that opens at `start`."""
    depth, item, heads = 0, "", []
    for i in range(start, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
            if depth == 1:
                continue
        elif c == "}":
            depth -= 1
            if depth == 0:
                heads.append(item)
                break
        if depth == 1 and c == ",":
            heads.append(item)
            item = ""
        elif depth >= 1:
            item += c
    return [m.group(0) for h in heads if (m := re.match(r"\w+", h.strip()))]

refs = {m: {} for m in modules}  # module -> {other: first file}
for m in modules:
    for f in files_of(m):
        text = strip_comments(open(f, encoding="utf-8").read())
        found = []
        for hit in re.finditer(r"\bcrate::(\{|\w+)", text):
            if hit.group(1) == "{":
                found += brace_heads(text, hit.start(1))
            else:
                found.append(hit.group(1))
        here = module_path(f)
        for hit in re.finditer(r"\b((?:super::)+)(\{|\w+)", text):
            up = hit.group(1).count("super::")
            if len(here) - up != 0:
                continue
            if hit.group(2) == "{":
                found += brace_heads(text, hit.start(2))
            else:
                found.append(hit.group(2))
        for x in found:
            if x in top and x != m:
                refs[m].setdefault(x, f)

failed = False
print("references between top-level modules of src/:")
for m in modules:
    print(f"  {m:<10} -> {', '.join(sorted(refs[m])) or '(none)'}")

bad = sorted(x for x in refs.get("backend", {}) if x in FORBIDDEN_FOR_BACKEND)
for x in bad:
    print(f"FAIL: backend references {x} ({refs['backend'][x]})")
    failed = True
if not bad:
    print("backend references none of: " + ", ".join(sorted(FORBIDDEN_FOR_BACKEND)))

# Strongly connected components (Tarjan) of the reference graph.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in sorted(refs[v]):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = set()
        while True:
            w = stack.pop(); on.discard(w); comp.add(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(comp)
sys.setrecursionlimit(10000)
for v in modules:
    if v not in index:
        visit(v)

if not sccs:
    print("cycles between top-level modules: none")
for comp in sccs:
    pairs = sorted(f"{a} <-> {b}" for a in comp for b in comp if a < b and b in refs[a] and a in refs[b])
    detail = "; ".join(pairs) if pairs else "a longer loop"
    names = " , ".join(sorted(comp))
    if any(comp <= k for k in KNOWN_CYCLES):
        print(f"cycle (known, docs/ARCHITECTURE.md §5): {{{names}}}: {detail}")
    else:
        print(f"FAIL: new cycle between top-level modules: {{{names}}}: {detail}")
        for a in sorted(comp):
            for b in sorted(refs[a]):
                if b in comp:
                    print(f"        {a} -> {b} ({refs[a][b]})")
        failed = True

sys.exit(1 if failed else 0)
PY
