# `make consumers`: the real programs the export and the HTML report are
# checked with (tests/consumers/README.md): Node.js and npm, the
# OpenTelemetry protobuf definitions (@opentelemetry/otlp-transformer, whose
# generated code is protobufjs built from opentelemetry-proto) installed
# into $(BUILD)/consumers, and Debian's chromium for the report.  Never
# needed at run time of tracejoin.  Without network the step warns and the
# tests that need a consumer say SKIPPED; it never fails the build.
CONSUMERS_DEBS := nodejs npm chromium
OTLP_NPM := @opentelemetry/otlp-transformer@0.52.1
.PHONY: consumers
consumers: $(BUILD)/consumers/.ok
$(BUILD)/consumers/.ok: export/build.mk
	@mkdir -p $(BUILD)/consumers
	@start=$$(date +%s); \
	missing=""; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "make consumers: apt-get install$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make consumers: need root to install$$missing (tests will skip)" >&2; \
		else (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
			|| echo "make consumers: apt-get install$$missing failed (tests will skip)" >&2; fi; \
	fi; \
	if command -v npm >/dev/null; then \
		npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
			--prefix $(BUILD)/consumers $(OTLP_NPM) >/dev/null \
			|| echo "make consumers: npm install $(OTLP_NPM) failed (no registry?): the OTLP test will skip" >&2; \
	fi; \
	echo "make consumers: ready in $$(( $$(date +%s) - start )) s"
	@if [ -f $(BUILD)/consumers/node_modules/@opentelemetry/otlp-transformer/package.json ]; then touch $@; fi
