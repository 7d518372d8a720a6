# `make bench`: the README's main job.  Builds the optimised binary, then
# generates the dataset suite, runs every correlator and writes
# bench/results/<UTC date>-<sha>/.  BENCH_ARGS passes options on
# (e.g. BENCH_ARGS=--quick).
.PHONY: bench bench-quick
bench: all
	$(TJ) bench $(BENCH_ARGS)

bench-quick: all
	$(TJ) bench --quick $(BENCH_ARGS)

# The engines `bench --run --executor parallel|slurm` hands a grid to, for
# whoever runs grids (and the test): not in DEBS, users without grids do
# not need them.
GRID_DEBS := parallel slurm-wlm munge
.PHONY: grid-engines
grid-engines:
	@missing=$$(for p in $(GRID_DEBS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "make grid-engines: installing" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make grid-engines: need root to apt-get install" $$missing >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
