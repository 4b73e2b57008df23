#!/usr/bin/env python3
"""call_cycles.py BUILD_DIR: fails (exit 1) when two or more source files of
coffer's libraries call each other in a loop, directly or through others.

It reads the object files of the module libraries with nm: a file depends on
the file that defines a symbol it uses. The modules' own link lines already
form a DAG (CMake would refuse otherwise); this keeps the files inside a
module acyclic too, so each can be read and tested from the bottom up."""
import collections
import glob
import os
import subprocess
import sys

MODULES = ["common", "crypto", "http", "storage", "catalog", "repo", "agent"]


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    objs = []
    for m in MODULES:
        objs += glob.glob(os.path.join(build, m, "CMakeFiles", "**", "*.o"), recursive=True)
    if not objs:
        print("call_cycles: no object files under %s (build first)" % build, file=sys.stderr)
        return 2
    defs, uses = {}, {}
    for o in objs:
        out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
        name = o.split(".dir" + os.sep)[-1].replace(".c.o", "")
        d, u = set(), set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "TDBRC":
                d.add(parts[2])
            elif len(parts) == 2 and parts[0] == "U":
                u.add(parts[1])
        defs[name], uses[name] = d, u
    owner = {s: n for n, d in defs.items() for s in d}
    edges = collections.defaultdict(set)
    for n, u in uses.items():
        for s in u:
            if s in owner and owner[s] != n:
                edges[n].add(owner[s])
    # Tarjan's strongly connected components.
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(defs):
        if v not in index:
            visit(v)
    if comps:
        for c in comps:
            print("call_cycles: these files call each other in a loop: " + ", ".join(c),
                  file=sys.stderr)
        return 1
    print("call_cycles: %d files, no loop" % len(objs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
