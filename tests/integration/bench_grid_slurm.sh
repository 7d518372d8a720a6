#!/usr/bin/env bash
# tracejoin bench --run --executor slurm on a one-node Slurm cluster
# started here (munged, slurmctld -D, slurmd -D on localhost, a minimal
# slurm.conf in a temp folder; `make grid-engines` installs them): the
# 3-seed quick grid's collected accuracy columns are byte-identical to
# the local executor's, and the wall times of both are printed.  Stops
# its daemons by pid; SKIPPED with the reason where Slurm cannot start.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ_RELEASE
[ "$(id -u)" = 0 ] || skip "slurm test needs root (slurmd)"
for p in munged slurmctld slurmd sbatch; do
	command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] ||
		skip "$p missing (make grid-engines installs slurm-wlm and munge)"
done
tmp=$(mktemp -d /tmp/tj-slurm.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool"
chmod 711 "$tmp" "$tmp/munge"
head -c 1024 /dev/urandom >"$tmp/munge/key"
chmod 600 "$tmp/munge/key"
PATH=/usr/sbin:$PATH
munged -F --force --key-file="$tmp/munge/key" -S "$tmp/munge/sock" --log-file="$tmp/munge/log" \
	--pid-file="$tmp/munge/pid" --seed-file="$tmp/munge/seed" >"$tmp/munged.out" 2>&1 &
pids+=($!)
# ports from our pid, so two runs on one machine do not collide
port=$((20000 + ($$ % 20000)))
host=$(hostname -s)
cat >"$tmp/slurm.conf" <<CONF
ClusterName=tj$$
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$tmp/munge/sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,sched_min_interval=0,bf_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=tj Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$tmp/slurm.conf
for i in $(seq 50); do [ -S "$tmp/munge/sock" ] && break; sleep 0.1; done
[ -S "$tmp/munge/sock" ] || skip "munged did not start: $(tail -2 "$tmp/munged.out")"
slurmctld -D -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 &
pids+=($!)
up=
for i in $(seq 100); do
	sinfo -h -o %T 2>/dev/null | grep -q idle && { up=1; break; }
	sleep 0.2
done
[ -n "$up" ] || skip "slurm did not start: $(tail -2 "$tmp/slurmctld.out" "$tmp/slurmd.out" | tr '\n' ' ')"

grid="--quick --seeds 1-3 --scenarios async,deep-chain --requests 120"
"$tj" bench --plan "$tmp/local" $grid >/dev/null || fail "plan"
"$tj" bench --plan "$tmp/slurm" $grid >/dev/null || fail "plan"
t0=$(date +%s.%N)
"$tj" bench --run "$tmp/local" --executor local 2>"$tmp/l.err" || fail "local: $(tail -2 "$tmp/l.err")"
t1=$(date +%s.%N)
"$tj" bench --run "$tmp/slurm" --executor slurm --slurm-args "--partition=tj" 2>"$tmp/s.err" ||
	fail "slurm: $(tail -2 "$tmp/s.err"; tail -3 "$tmp/slurm/logs/"slurm-* 2>/dev/null)"
t2=$(date +%s.%N)
for d in local slurm; do
	"$tj" bench --collect "$tmp/$d" --no-plots >/dev/null 2>&1 || fail "collect $d"
	cut -d, -f1-6,8-14 "$tmp/$d/results/results.csv" | sed "s|$tmp/$d|X|g" >"$tmp/$d.acc"
done
cmp -s "$tmp/local.acc" "$tmp/slurm.acc" || fail "slurm and local differ: $(diff "$tmp/local.acc" "$tmp/slurm.acc" | head -4)"
ls "$tmp/slurm/plan/slurm-task.sh" "$tmp/slurm/plan/slurm-correlate.txt" >/dev/null || fail "no slurm stage files"
awk -v g="$grid" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "bench_grid_slurm: grid %s: local %.1f s, slurm %.1f s, ratio %.2f\n", g, b - a, c - b, (c - b) / (b - a) }'
# bad input
expect_exit 2 "$tj" bench --run "$tmp/slurm" --executor local --slurm-args "-p x"
echo "bench_grid_slurm: ok"
