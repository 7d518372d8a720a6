# `make dataset-real` (root, BPF, network namespaces): every workload
# config of REAL_CONFIGS (datasets/workloads/configs/NAME.cfg) runs with each
# node in its own network namespace, captured with --payload and labeled
# into $(REAL_OUT)/NAME (datasets/real/README.md).  A config that cannot
# run here (no nginx, say) is skipped with its reason; a config whose
# labels do not cover the workload's calls fails the target.
# REAL_SEED=N: every config's tj-load --seed is shifted by N (0: the
# configs as written), for held-out captures of other request sequences.
# REAL_ATTACH=1: capture starts on the running services once the load has
# warmed every pool (run-real.sh --attach).
REAL_CONFIGS ?= thread-new pool-keepalive epoll-shared epoll-shared-open fanout nginx-proxy external \
	epoll-chain pipelined mn-pool node-chain node-parallel go-mn nginx-auth
REAL_OUT     ?= datasets/real
REAL_ATTACH  ?= 0
REAL_SEED    ?= 0

# Real runtimes (datasets/real/README.md): the Node.js service runs on
# Debian's nodejs, the Go service is built by Debian's golang-go from the
# committed source (standard library only: offline, GOPROXY=off, its
# build cache in $(BUILD)); `make deps` installs both (CI is a fresh
# machine).  Where go is missing the Go configs are skipped with the reason.
DEBS += nodejs golang-go
$(BUILD)/.deps-ok: datasets/workloads/real.mk
GO := $(shell command -v go 2>/dev/null)
ifneq ($(GO),)
all: $(WL_DIR)/tj-go-service
$(WL_DIR)/tj-go-service: datasets/workloads/go/main.go datasets/workloads/go/go.mod
	@mkdir -p $(dir $@)
	cd datasets/workloads/go && GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local \
		GOCACHE=$(abspath $(BUILD))/go-cache GOPATH=$(abspath $(BUILD))/go-path CGO_ENABLED=0 \
		$(GO) build -trimpath -o $(abspath $@).tmp . && mv $(abspath $@).tmp $(abspath $@)
endif

# nginx (nginx-proxy, nginx-auth) is no build dependency: dataset-real
# (root) installs it when missing, as make deps does the others.
REAL_DEBS := nginx
.PHONY: dataset-real deps-real
deps-real:
	@$(MAKE) --no-print-directory deps DEBS="$(REAL_DEBS)"

dataset-real: deps-real $(TJ) $(WORKLOADS)
	@start=$$(date +%s); made=0; \
	for c in $(REAL_CONFIGS); do \
		echo "dataset-real: $$c"; \
		bash datasets/workloads/run-real.sh --tj $(TJ) --bin $(WL_DIR) \
			$(if $(filter 1,$(REAL_ATTACH)),--attach) --seed-shift '$(REAL_SEED)' \
			--config datasets/workloads/configs/$$c.cfg --name $$c --out $(REAL_OUT)/$$c; rc=$$?; \
		if [ $$rc -eq 77 ]; then echo "dataset-real: $$c skipped"; \
		elif [ $$rc -ne 0 ]; then echo "dataset-real: $$c failed" >&2; exit $$rc; \
		else made=$$((made + 1)); fi; \
	done; \
	echo "dataset-real: $$made datasets in $(REAL_OUT) in $$(( $$(date +%s) - start )) s"
