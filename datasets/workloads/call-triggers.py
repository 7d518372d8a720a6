#!/usr/bin/env python3
"""call-triggers.py: what each service's calling thread last received
before it wrote each call, in a labeled real dataset (datasets/real/).

A call written right after its thread read a *request* is the easy case
(the thread's latest request is its parent).  A call written right after
the thread read a *reply* to an earlier call was issued from a reply
handler: a chained call of the same request, or a call that waited in a
keepalive pool's queue and was written when another request's reply freed
a connection.  The share of the latter says which regime a capture is in
(datasets/real/README.md).  Also: the share of calls written on another
thread than the one that read their parent request (labels.csv: M:N
runtimes and hand-off pools), the threads that wrote calls, and the
connections per downstream address.

  call-triggers.py [--tj TRACEJOIN] [--edges EDGES.csv] DATASET_DIR

Prints a Markdown table, one row per node that made calls.  With --edges
(a correlator's output on the dataset), a second table: per node, the
share of calls whose predicted parent is right, by the call's position
among its parent request's calls (first, second, ...), which separates
chained calls from first ones."""
import collections
import csv
import json
import os
import subprocess
import sys


def node_rows(tj, log):
    dump = subprocess.run([tj, "dump", "--csv", log], capture_output=True, text=True)
    if dump.returncode != 0:
        sys.exit("call-triggers.py: %s: tracejoin dump failed: %s" % (log, dump.stderr.strip()))
    client, last, prev = set(), {}, {}
    counts = collections.Counter()
    conns = collections.defaultdict(set)
    tids = set()
    first = {}  # message key (sock, dir, offset) -> (time, thread) of its first byte
    for e in csv.DictReader(dump.stdout.splitlines()):
        s, t, tid = e["sock"], e["type"], e["tid"]
        if t == "connect":
            client.add(s)
            conns[e["raddr"]].add(s)
        if t not in ("send", "recv"):
            continue
        first.setdefault((s, "out" if t == "send" else "in", e["offset"]), (int(e["ts_ns"]), tid))
        if t == "send" and s in client and prev.get(s) != "send":  # a call's first byte
            counts[last.get(tid, "nothing")] += 1
            tids.add(tid)
        if t == "recv" and prev.get(s) != "recv":  # a message's first byte
            last[tid] = "reply" if s in client else "request"
        prev[s] = t
    return counts, tids, conns, first


def main():
    args = sys.argv[1:]
    tj = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/tracejoin")
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return
    edges = None
    while args[:1] in (["--tj"], ["--edges"]):
        if len(args) < 2:
            sys.exit("call-triggers.py: %s needs a value" % args[0])
        if args[0] == "--tj":
            tj = args[1]
        else:
            edges = args[1]
        args = args[2:]
    if len(args) != 1 or args[0].startswith("-"):
        sys.exit("call-triggers.py: one DATASET_DIR expected (try --help)")
    ds = args[0]
    try:
        with open(os.path.join(ds, "manifest.json")) as f:
            nodes = json.load(f)["parameters"]["nodes"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit("call-triggers.py: %s: not a labeled real dataset (manifest.json with "
                 "parameters.nodes): %s" % (ds, e))
    parent_of = {}
    with open(os.path.join(ds, "labels.csv")) as f:
        for row in csv.DictReader(f):
            if row["parent"]:
                parent_of[row["child"]] = row["parent"]
    predicted = None
    if edges is not None:
        try:
            with open(edges) as f:
                predicted = {r["child"]: r["parent"] for r in csv.DictReader(f)}
        except (OSError, KeyError, csv.Error) as e:
            sys.exit("call-triggers.py: %s: not an edges CSV (child,parent,...): %s" % (edges, e))
    by_position = []
    print("| node | kind | calls | after a request % | after a reply % | "
          "on another thread than the request % | calling threads | connections per downstream |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for name, v in nodes.items():
        if v.get("kind") == "load":
            continue
        log = os.path.join(ds, "node-%s.evlog" % v["node"])
        if not os.path.exists(log):
            sys.exit("call-triggers.py: %s: no such log (node %s)" % (log, name))
        counts, tids, conns, first = node_rows(tj, log)
        n = sum(counts.values())
        if not n:
            continue
        moved = paired = 0
        kids = collections.defaultdict(list)
        for child, parent in parent_of.items():
            c, p = child.split(":"), parent.split(":")
            if c[0] != str(v["node"]) or p[0] != c[0]:
                continue
            fc, fp = first.get((c[1], c[2], c[3])), first.get((p[1], p[2], p[3]))
            if fc is not None and fp is not None:
                paired += 1
                moved += fc[1] != fp[1]
                kids[parent].append((fc[0], child))
        if predicted is not None:
            right, seen = collections.Counter(), collections.Counter()
            for parent, calls in kids.items():
                for i, (_, child) in enumerate(sorted(calls)):
                    seen[i] += 1
                    right[i] += predicted.get(child) == parent
            by_position.append((name, right, seen))
        print("| %s | %s | %d | %.1f | %.1f | %s | %d | %s |" % (
            name, v.get("kind"), n, 100.0 * counts["request"] / n, 100.0 * counts["reply"] / n,
            "%.1f" % (100.0 * moved / paired) if paired else "-",
            len(tids), " ".join(str(len(c)) for _, c in sorted(conns.items()))))
    if predicted is not None:
        most = max((len(seen) for _, _, seen in by_position), default=0)
        print()
        print("| node | " + " | ".join("call %d right %%" % (i + 1) for i in range(most)) + " |")
        print("|---|" + "---:|" * most)
        for name, right, seen in by_position:
            print("| %s | " % name + " | ".join(
                "%.1f" % (100.0 * right[i] / seen[i]) if seen[i] else "-" for i in range(most)) + " |")


if __name__ == "__main__":
    main()
