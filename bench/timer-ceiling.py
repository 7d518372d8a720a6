#!/usr/bin/env python3
"""How far can any correlator get on a labeled dataset, per process?

For event loops that answer from a timer (correlate/ASYNC.md, "Timer-driven
loops"), the kernel shows no causal link between a request and its calls:
what is left is *nesting* (a request's calls are written after it arrived
and answered before its response) and *timing* (the delay from the request
to its first call, and from its last call's reply to its response).  This
prints, per process that makes labeled calls:

  feasible  mean number of requests of the process a call nests in
  chains    requests with labeled calls (each request's calls, from the labels)
  nest      expected share of chains given their right request when every
            assignment of whole chains to requests that nests is equally
            likely (the best a correlator can do from nesting alone, even
            knowing which calls form one request's chain)
  timed     the same, each assignment weighted by the delay densities of
            the right answer (histograms of the labels' own pre and post
            delays, quarter-octave bins): the best a fitted delay model
            could add.  Decided per chain by its most frequent request.
  rank      for processes calling two or more destinations: share of the
            i-th calls to the two busiest destinations that share a parent

Both ceilings sample assignments by Metropolis swaps of two chains'
requests (started from the labels, which the model says is a typical draw).

  bench/timer-ceiling.py [--tj BIN] [--samples N] [--seed N] DATASET...
"""
import argparse
import bisect
import collections
import csv
import glob
import math
import os
import random
import subprocess
import sys


def die(msg, code=2):
    print("timer-ceiling.py: " + msg, file=sys.stderr)
    sys.exit(code)


def load_messages(tj, ds):
    """Messages from `tracejoin dump --csv`, cut as DESIGN.md's keys say:
    node:sock:dir:offset of the first byte; a call/request is the run of
    sends (client) or receives (server) until the direction flips."""
    msgs = {}
    logs = sorted(glob.glob(os.path.join(ds, "node-*.evlog")))
    if not logs:
        die(f"{ds}: no node-*.evlog files")
    for log in logs:
        r = subprocess.run([tj, "dump", "--csv", log], capture_output=True, text=True)
        if r.returncode not in (0, 3):
            die(f"{log}: dump failed: {r.stderr.strip()}", 1)
        side = {}
        cur = {}
        for e in csv.DictReader(r.stdout.splitlines()):
            t = e["type"]
            s = (e["node"], e["sock"])
            if t == "accept":
                side[s], cur[s] = "in", None
                continue
            if t == "connect":
                side[s], cur[s] = "out", None
                continue
            if t not in ("send", "recv") or s not in side:
                continue
            first = "recv" if side[s] == "in" else "send"
            ts = int(e["ts_ns"])
            m = cur[s]
            if t == first:
                if m is None or m["reply"] is not None:
                    m = {"key": f"{e['node']}:{e['sock']}:{side[s]}:{e['offset']}",
                         "side": side[s], "proc": (e["node"], e["pid"]),
                         "dest": (e["raddr"], e["rport"]), "ts": ts, "reply": None}
                    cur[s] = m
                    msgs[m["key"]] = m
            elif m is not None and m["reply"] is None:
                m["reply"] = ts
    return msgs


def load_labels(ds):
    path = os.path.join(ds, "labels.csv")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as ex:
        die(f"{path}: {ex.strerror}")
    if rows and not {"child", "parent"} <= set(rows[0]):
        die(f"{path}: no child,parent columns")
    return {r["child"]: r["parent"] for r in rows if r["parent"]}


def qbin(ns):
    return int(4 * math.log2(max(ns, 1000) / 1000.0))


def ceiling(chains, reqs, samples, rng, weighted):
    """chains: {P: (first write, last reply)}; reqs: {P: (arrival, response)}."""
    feas = {P: [Q for Q, (a, r) in reqs.items() if a <= w and r >= e]
            for P, (w, e) in chains.items()}
    fset = {P: set(v) for P, v in feas.items()}
    hp, hq = collections.Counter(), collections.Counter()
    for P, (w, e) in chains.items():
        hp[qbin(w - reqs[P][0])] += 1
        hq[qbin(reqs[P][1] - e)] += 1
    n = len(chains)

    def logp(P, Q):
        if not weighted:
            return 0.0
        w, e = chains[P]
        a, r = reqs[Q]
        return (math.log((hp[qbin(w - a)] + 0.1) / (n + 3)) +
                math.log((hq[qbin(r - e)] + 0.1) / (n + 3)))

    asg = {P: P for P in chains}
    inv = dict(asg)
    keys = sorted(chains)
    seen = collections.defaultdict(collections.Counter)
    for it in range(samples):
        a = rng.choice(keys)
        qb = rng.choice(feas[a])
        b, qa = inv[qb], asg[a]
        if b != a and qa in fset[b]:
            d = logp(a, qb) + logp(b, qa) - logp(a, qa) - logp(b, qb)
            if d >= 0 or rng.random() < math.exp(d):
                asg[a], asg[b], inv[qb], inv[qa] = qb, qa, a, b
        if it % 20 == 0:
            for P in keys:
                seen[P][asg[P]] += 1
    return sum(seen[P].most_common(1)[0][0] == P for P in keys) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tj", default="build/tracejoin")
    ap.add_argument("--samples", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("datasets", nargs="+", metavar="DATASET")
    o = ap.parse_args()
    if not os.access(o.tj, os.X_OK):
        die(f"--tj {o.tj}: not an executable (make first)")
    if o.samples < 1000:
        die(f"--samples {o.samples}: at least 1000")
    for ds in o.datasets:
        if not os.path.isfile(os.path.join(ds, "labels.csv")):
            die(f"{ds}: no labels.csv (not a labeled dataset)")
    print(f"{'dataset':<28} {'process':<22} {'calls':>6} {'feasible':>8} {'chains':>6} "
          f"{'nest':>6} {'timed':>6} {'rank':>6}")
    for ds in o.datasets:
        msgs = load_messages(o.tj, ds)
        lab = load_labels(ds)
        rng = random.Random(o.seed)
        procs = collections.defaultdict(lambda: ([], []))
        for m in msgs.values():
            if m["reply"] is not None:
                procs[m["proc"]][0 if m["side"] == "in" else 1].append(m)
        for proc in sorted(procs):
            reqs_l, calls = procs[proc]
            calls = [c for c in calls if c["key"] in lab]
            if not calls:
                continue
            reqs = {q["key"]: (q["ts"], q["reply"]) for q in reqs_l}
            arr = sorted(reqs.values())
            starts = [a for a, _ in arr]
            nf = []
            for c in calls:
                i = bisect.bisect_right(starts, c["ts"])
                nf.append(sum(1 for a, r in arr[:i] if r >= c["reply"]))
            by = collections.defaultdict(list)
            for c in calls:
                by[lab[c["key"]]].append(c)
            chains = {P: (min(c["ts"] for c in cs), max(c["reply"] for c in cs))
                      for P, cs in by.items() if P in reqs}
            creqs = {P: reqs[P] for P in chains}
            nest = ceiling(chains, creqs, o.samples, rng, False) if chains else float("nan")
            timed = ceiling(chains, creqs, o.samples, rng, True) if chains else float("nan")
            q = collections.defaultdict(list)
            for c in sorted(calls, key=lambda c: c["ts"]):
                q[c["dest"]].append(lab[c["key"]])
            rank = "-"
            if len(q) >= 2:
                a, b = sorted(q.values(), key=len, reverse=True)[:2]
                rank = f"{sum(x == y for x, y in zip(a, b)) / len(b):.3f}"
            print(f"{os.path.basename(ds.rstrip('/')):<28} {proc[0] + ':' + proc[1]:<22} "
                  f"{len(calls):>6} {sum(nf) / len(nf):>8.2f} {len(chains):>6} "
                  f"{nest:>6.3f} {timed:>6.3f} {rank:>6}")


if __name__ == "__main__":
    main()
