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
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,sched_min_interval=0,bf_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(($(awk '/^MemTotal/ { print int($2 / 1024) }' /proc/meminfo) / 2)) State=UNKNOWN
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

# TJ_SLURM_GRID: the grid to time (the whole 3-seed quick grid is
# "--quick --seeds 1-3"; CI times a smaller one to stay short)
grid=${TJ_SLURM_GRID:-"--quick --seeds 1-3 --scenarios async,deep-chain --requests 120"}
# a first job: the node's first launch is slower than any later one, and
# is the cluster's start, not a grid's cost
warm=$(sbatch --parsable --partition=tj -o /dev/null --wrap true) || fail "sbatch of a first job"
for i in $(seq 100); do [ -z "$(squeue -h -j "$warm" -o %i 2>/dev/null)" ] && break; sleep 0.2; done
# the engine's overhead: the same grid local and through Slurm, in turn,
# three times (a shared machine's load moves both alike); the median ratio
ratios=()
for r in 1 2 3; do
	rm -rf "$tmp/local" "$tmp/slurm"
	"$tj" bench --plan "$tmp/local" $grid >/dev/null || fail "plan"
	"$tj" bench --plan "$tmp/slurm" $grid >/dev/null || fail "plan"
	t0=$(date +%s.%N)
	"$tj" bench --run "$tmp/local" --executor local 2>"$tmp/l.err" || fail "local: $(tail -2 "$tmp/l.err")"
	t1=$(date +%s.%N)
	# as many tasks as the cluster has CPUs, consecutive datasets sharing one
	"$tj" bench --run "$tmp/slurm" --executor slurm --slurm-tasks "$(nproc)" \
		--slurm-args "--partition=tj" 2>"$tmp/s.err" ||
		fail "slurm: $(tail -2 "$tmp/s.err"; tail -3 "$tmp/slurm/logs/"slurm-* 2>/dev/null)"
	t2=$(date +%s.%N)
	ratios+=("$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.2f %.1f %.1f", (c - b) / (b - a), b - a, c - b }')")
done
for d in local slurm; do
	"$tj" bench --collect "$tmp/$d" --no-plots >/dev/null 2>&1 || fail "collect $d"
	cut -d, -f1-6,8-14 "$tmp/$d/results/results.csv" | sed "s|$tmp/$d|X|g" >"$tmp/$d.acc"
done
cmp -s "$tmp/local.acc" "$tmp/slurm.acc" || fail "slurm and local differ: $(diff "$tmp/local.acc" "$tmp/slurm.acc" | head -4)"
ls "$tmp/slurm/plan/slurm-task.sh" "$tmp/slurm/plan/slurm-dataset-"*M-1c.txt >/dev/null || fail "no slurm task files"
# --slurm-tasks N: N lines, consecutive datasets' jobs in the plan's order
[ "$(cat "$tmp/slurm/plan/slurm-dataset-"*.txt | wc -l)" -eq "$(nproc)" ] || fail "want $(nproc) tasks"
ngen=$(grep -c '^gen--' "$tmp/slurm/plan/jobs.tsv")
[ "$(cat "$tmp/slurm/plan/slurm-dataset-"*.txt | tr ' ' '\n' | grep -c '^gen--')" -eq "$ngen" ] ||
	fail "the tasks do not hold the plan's $ngen datasets"
printf '%s\n' "${ratios[@]}" | sort -n | awk -v g="$grid" '{ r[NR] = $0 } END {
	split(r[2], m, " ")
	printf "bench_grid_slurm: grid %s, Slurm --slurm-tasks (CPUs): ratio to local (slurm s / local s) %s; median %.2f (local %.1f s, slurm %.1f s)\n",
		g, r[1] " | " r[2] " | " r[3], m[1], m[2], m[3] }'

# --slurm-pack job: a task a job, arrays chained stage by stage, each
# array asking the memory its jobs' kind was planned with
"$tj" bench --plan "$tmp/job" $grid --mem correlate:regression=300 >/dev/null || fail "plan"
t3=$(date +%s.%N)
"$tj" bench --run "$tmp/job" --executor slurm --slurm-pack job --slurm-args "--partition=tj" 2>"$tmp/j.err" ||
	fail "slurm --slurm-pack job: $(tail -2 "$tmp/j.err"; tail -3 "$tmp/job/logs/"slurm-* 2>/dev/null)"
t4=$(date +%s.%N)
"$tj" bench --collect "$tmp/job" --no-plots >/dev/null 2>&1 || fail "collect job"
cut -d, -f1-6,8-14 "$tmp/job/results/results.csv" | sed "s|$tmp/job|X|g" | cmp -s - "$tmp/local.acc" ||
	fail "slurm --slurm-pack job and local differ"
ls "$tmp/job/plan/slurm-gen-256M-1c.txt" "$tmp/job/plan/slurm-correlate-300M-1c.txt" \
	"$tmp/job/plan/slurm-correlate-256M-1c.txt" "$tmp/job/plan/slurm-score-256M-1c.txt" >/dev/null ||
	fail "no array per kind and memory: $(ls "$tmp/job/plan")"
[ "$(wc -l <"$tmp/job/plan/slurm-correlate-300M-1c.txt")" -eq "$ngen" ] || fail "regression's array"
awk -v a="$t0" -v b="$t1" -v c="$t3" -v d="$t4" 'BEGIN { printf "bench_grid_slurm: a Slurm task a job: %.1f s, ratio %.2f to the last local run\n", d - c, (d - c) / (b - a) }'

# a job killed midway is rerun alone through Slurm, with the same figures
victim=$(awk -F'\t' '$2 == "correlate" { print $1; exit }' "$tmp/slurm/plan/jobs.tsv")
ds=$(awk -F'\t' -v id="$victim" '$1 == id { print $5 }' "$tmp/slurm/plan/jobs.tsv")
rm -f "$tmp/slurm/status/$victim.done" "$tmp/slurm/status/score--$ds.done"
touch -d '2000-01-01' "$tmp/slurm/status/"*.done
"$tj" bench --run "$tmp/slurm" --executor slurm --slurm-args "--partition=tj" 2>"$tmp/s.err" || fail "slurm rerun"
newer=$(find "$tmp/slurm/status" -name '*.done' -newermt '2001-01-01' | sort | xargs -n1 basename | paste -sd' ')
[ "$newer" = "$victim.done score--$ds.done" ] || fail "the slurm rerun redid more than the killed job: $newer"
[ "$(cat "$tmp/slurm/plan/slurm-dataset-"*.txt | wc -l)" -eq 1 ] || fail "the rerun: want one task, for the one dataset"
"$tj" bench --collect "$tmp/slurm" --no-plots >/dev/null 2>&1 || fail "collect after the rerun"
cut -d, -f1-6,8-14 "$tmp/slurm/results/results.csv" | sed "s|$tmp/slurm|X|g" | cmp -s - "$tmp/local.acc" ||
	fail "the slurm rerun changed the figures"

# a job that fails through Slurm is named by collect, exit 1
case "$grid" in
*--scenarios*) first=${grid#*--scenarios }; first=${first%%,*}; first=${first%% *} ;;
*) first=async ;;
esac
"$tj" bench --plan "$tmp/f" --quick --seeds 1 --scenarios "$first" --requests 60 \
	--algo regression --param regression:nosuchparam=1 >/dev/null || fail "plan with --param"
expect_exit 1 "$tj" bench --run "$tmp/f" --executor slurm --slurm-args "--partition=tj"
"$tj" bench --collect "$tmp/f" --no-plots >"$tmp/f.out" 2>&1 && fail "collect of a failed slurm job exited 0"
grep -q "failed regression@nosuchparam=1 on $first-medium-s1: job cor--$first-medium-s1--regression@nosuchparam=1 failed: exit 2" \
	"$tmp/f.out" || fail "collect does not name the failed slurm job: $(head -3 "$tmp/f.out")"

# bad input
expect_exit 2 "$tj" bench --run "$tmp/slurm" --executor local --slurm-args "-p x"
expect_exit 2 "$tj" bench --run "$tmp/slurm" --executor slurm --slurm-pack nope
expect_exit 2 "$tj" bench --run "$tmp/slurm" --slurm-pack job
for bad in 0 x -3; do
	expect_exit 2 "$tj" bench --run "$tmp/slurm" --executor slurm --slurm-tasks "$bad"
done
expect_exit 2 "$tj" bench --run "$tmp/slurm" --executor slurm --slurm-pack job --slurm-tasks 2
expect_exit 2 "$tj" bench --run "$tmp/slurm" --slurm-tasks 2
echo "bench_grid_slurm: ok"
