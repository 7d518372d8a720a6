# `make import-traceweaver`: the four Jaeger folders of the TraceWeaver
# artifact -> labeled datasets in $(BUILD)/datasets/traceweaver/NAME (made
# here, never committed).  TRACEWEAVER=DIR reads them from elsewhere;
# TW_KEEPALIVE=K imports with a pool of K connections per service pair.
TRACEWEAVER ?= ../shared/data/traceweaver
TRACEWEAVER_SETS := hotel_load25 hotel_load100 node_load50 node_load100
TW_KEEPALIVE ?= 0
TW_OUT := $(BUILD)/datasets/traceweaver

.PHONY: import-traceweaver
import-traceweaver: $(TJ)
	@test -d "$(TRACEWEAVER)" || { echo "make import-traceweaver: no folder $(TRACEWEAVER) (set TRACEWEAVER=DIR)" >&2; exit 1; }
	@start=$$(date +%s%N); \
	for s in $(TRACEWEAVER_SETS); do \
		echo "import-traceweaver: $$s"; \
		$(TJ) import --format jaeger --force --keepalive $(TW_KEEPALIVE) \
			"$(TRACEWEAVER)/$$s" -o "$(TW_OUT)/$$s"; rc=$$?; \
		if [ $$rc -eq 3 ]; then echo "import-traceweaver: $$s: some traces skipped (see above)" >&2; \
		elif [ $$rc -ne 0 ]; then exit $$rc; fi; \
	done; \
	end=$$(date +%s%N); \
	echo "import-traceweaver: $(words $(TRACEWEAVER_SETS)) datasets in $(TW_OUT) in $$(( (end - start) / 1000000 )) ms"
