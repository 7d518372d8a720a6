# `make bench`: the README's main job.  Builds the optimised binary, then
# generates the dataset suite, runs every correlator and writes
# bench/results/<UTC date>-<sha>/.  BENCH_ARGS passes options on
# (e.g. BENCH_ARGS=--quick).
.PHONY: bench bench-quick
bench: all
	$(TJ) bench $(BENCH_ARGS)

bench-quick: all
	$(TJ) bench --quick $(BENCH_ARGS)
