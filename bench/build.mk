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
	$(call apt_install,grid-engines,$(GRID_DEBS))
