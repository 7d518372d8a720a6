#!/usr/bin/env python3
"""mn-signals.py: what an M:N runtime's events still say (correlate/ASYNC.md,
"M:N runtimes").  For a labeled dataset, per (process, destination) queue of
calls, teacher-forced (the labels feed the bookkeeping, as `tracejoin
features` does): the share of calls whose true parent is

  fifo        the oldest in-flight request with no call to this destination
  ready_fifo  the same, ordered by readiness (arrival, or the reply of the
              request's latest earlier call)
  latest      the newest such request
  tid_req     the request the writing thread last read
  tid_reply   the parent of the call whose reply the writing thread last read
              (and how many calls had such a reply from *another* destination:
              the continuation pattern)

and, per process, how many requests' call groups are pinned by nesting alone
(a request arrives before its first call and answers after its last call's
reply; each request owns one group): constraint propagation from the groups
with one feasible request.  What propagation leaves is a set of equally
feasible matchings; where the service times before the first call and after
the last reply are exponential (tj-service, the Go workload), every feasible
matching has the same likelihood, so no black-box method can do better than
guessing among them.

  python3 bench/mn-signals.py [--tj build/tracejoin] DATASET_DIR
"""
import collections, csv, glob, subprocess, sys

def messages(ds, tj):
    """Rebuild messages from the logs: per socket, a request run then its reply."""
    msgs = {}
    for log in sorted(glob.glob(ds + '/node-*.evlog')):
        out = subprocess.run([tj, 'dump', '--csv', log], capture_output=True, text=True, check=True).stdout
        role, state = {}, {}
        for e in csv.DictReader(out.splitlines()):
            t, s = e['type'], e['sock']
            if t in ('accept', 'connect'):
                role[s] = 'in' if t == 'accept' else 'out'
                continue
            if t not in ('send', 'recv') or int(e['bytes']) <= 0 or s not in role:
                continue
            r, ts, tid = role[s], int(e['ts_ns']), int(e['tid'])
            ph, key = state.get(s, (None, None))
            if t == ('send' if r == 'out' else 'recv'):
                if ph != 'req':
                    key = '%s:%s:%s:%s' % (e['node'], s, r, e['offset'])
                    msgs[key] = dict(key=key, pid=int(e['pid']), dir=r, ts=ts, tid=tid, ts_reply=None,
                                     tid_reply=None, dest=e['raddr'] + ':' + e['rport'])
                    state[s] = ('req', key)
            elif key is not None and ph == 'req':
                msgs[key].update(ts_reply=ts, tid_reply=tid)
                state[s] = ('rep', key)
    return msgs

def main():
    args, tj = sys.argv[1:], 'build/tracejoin'
    if len(args) == 3 and args[0] == '--tj':
        tj, args = args[1], args[2:]
    if len(args) != 1:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    ds = args[0]
    m = messages(ds, tj)
    lab = {r['child']: r['parent'] or None for r in csv.DictReader(open(ds + '/labels.csv'))}
    for pid in sorted({x['pid'] for x in m.values() if x['dir'] == 'out'}):
        reqs = sorted((x for x in m.values() if x['pid'] == pid and x['dir'] == 'in'), key=lambda x: x['ts'])
        calls = sorted((x for x in m.values() if x['pid'] == pid and x['dir'] == 'out'), key=lambda x: x['ts'])
        if not reqs:
            continue
        made = collections.defaultdict(list)
        for c in calls:
            if lab.get(c['key']):
                made[lab[c['key']]].append(c)
        for d in sorted({c['dest'] for c in calls}):
            st = collections.Counter()
            for c in (c for c in calls if c['dest'] == d and lab.get(c['key'])):
                p = lab[c['key']]
                st['calls'] += 1
                cand = [r for r in reqs if r['ts'] < c['ts'] and (r['ts_reply'] is None or r['ts_reply'] > c['ts'])
                        and not any(x['dest'] == d and x['ts'] < c['ts'] for x in made[r['key']])]
                def ready(r):
                    t = r['ts']
                    for x in made[r['key']]:
                        if x['ts'] < c['ts']:
                            t = max(t, x['ts_reply']) if x['ts_reply'] and x['ts_reply'] < c['ts'] else float('inf')
                    return t
                if p in [r['key'] for r in cand]:
                    st['one_candidate'] += len(cand) == 1
                    st['fifo'] += min(cand, key=lambda r: r['ts'])['key'] == p
                    st['latest'] += max(cand, key=lambda r: r['ts'])['key'] == p
                    st['ready_fifo'] += min(cand, key=ready)['key'] == p
                prq = [r for r in reqs if r['ts'] < c['ts'] and r['tid'] == c['tid']]
                st['tid_req'] += bool(prq) and max(prq, key=lambda r: r['ts'])['key'] == p
                prev = [x for x in calls if x['ts_reply'] and x['ts_reply'] < c['ts'] and x['tid_reply'] == c['tid']]
                if prev:
                    x = max(prev, key=lambda x: x['ts_reply'])
                    st['tid_reply'] += lab.get(x['key']) == p
                    st['tid_reply_other_dest'] += x['dest'] != d
            n = st['calls']
            print('pid %d -> %s: %d calls; ' % (pid, d, n) + ', '.join(
                '%s %.3f' % (k, st[k] / n) for k in ('one_candidate', 'fifo', 'ready_fifo', 'latest', 'tid_req',
                                                     'tid_reply', 'tid_reply_other_dest')))
        # nesting: group (first call, last reply) vs request (arrival, response)
        groups = {p: (min(x['ts'] for x in cs), max(x['ts_reply'] or x['ts'] for x in cs)) for p, cs in made.items()}
        byk = {r['key']: r for r in reqs}
        feas = {k: {r for r, x in byk.items() if x['ts'] < f and (x['ts_reply'] or float('inf')) > e}
                for k, (f, e) in groups.items()}
        owner = collections.defaultdict(set)
        for k, rs in feas.items():
            for r in rs:
                owner[r].add(k)
        fixed, changed = {}, True
        while changed:
            changed = False
            for k in feas:
                if k not in fixed and len(feas[k]) == 1:
                    r = next(iter(feas[k]))
                    fixed[k] = r
                    changed = True
                    for k2 in owner[r]:
                        if k2 != k:
                            feas[k2].discard(r)
            taken = set(fixed.values())
            for r, ks in owner.items():
                live = [k for k in ks if k not in fixed and r in feas[k]]
                if r not in taken and len(live) == 1 and len(feas[live[0]]) > 1:
                    feas[live[0]] = {r}
                    changed = True
        left = collections.Counter(min(len(feas[k]), 6) for k in feas if k not in fixed)
        # guessing uniformly among what is left: the expected share right
        guess = sum(n / max(s, 1) for s, n in left.items())
        print('pid %d: %d call groups, %d pinned by nesting (%d right), left with 2/3/4/5/6+ feasible requests: %s;'
              ' pinned + a uniform guess among the rest: %.3f' % (
                  pid, len(groups), len(fixed), sum(fixed[k] == k for k in fixed),
                  '/'.join(str(left[i]) for i in range(2, 7)), (len(fixed) + guess) / max(len(groups), 1)))

main()
