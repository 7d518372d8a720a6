# `make dataset-real` (root, BPF, network namespaces): every workload
# config of REAL_CONFIGS (datasets/workloads/configs/NAME.cfg) runs with each
# node in its own network namespace, captured with --payload and labeled
# into $(REAL_OUT)/NAME (datasets/real/README.md).  A config that cannot
# run here (no nginx, say) is skipped with its reason; a config whose
# labels do not cover the workload's calls fails the target.
# REAL_ATTACH=1: capture starts on the running services once the load has
# warmed every pool (run-real.sh --attach).
REAL_CONFIGS ?= thread-new pool-keepalive epoll-shared epoll-shared-open fanout nginx-proxy external
REAL_OUT     ?= datasets/real
REAL_ATTACH  ?= 0

.PHONY: dataset-real
dataset-real: $(TJ) $(WORKLOADS)
	@start=$$(date +%s); made=0; \
	for c in $(REAL_CONFIGS); do \
		echo "dataset-real: $$c"; \
		bash datasets/workloads/run-real.sh --tj $(TJ) --bin $(WL_DIR) \
			$(if $(filter 1,$(REAL_ATTACH)),--attach) \
			--config datasets/workloads/configs/$$c.cfg --name $$c --out $(REAL_OUT)/$$c; rc=$$?; \
		if [ $$rc -eq 77 ]; then echo "dataset-real: $$c skipped"; \
		elif [ $$rc -ne 0 ]; then echo "dataset-real: $$c failed" >&2; exit $$rc; \
		else made=$$((made + 1)); fi; \
	done; \
	echo "dataset-real: $$made datasets in $(REAL_OUT) in $$(( $$(date +%s) - start )) s"
