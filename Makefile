# tracejoin build.  `make` builds build/tracejoin; `make test` builds a
# sanitizer build in build/asan and runs every test; `make bench` runs the
# benchmark (README.md).  Components add their own rules in */build.mk.

BUILD   ?= build
CC      ?= cc
CLANG   ?= clang
MODE    ?= release

# Quiet by default, as the kernel and libbpf-tools build: one line per
# target ("  CC       build/lib/evlog.o"); `make V=1` prints the commands.
ifeq ($(V),1)
Q   :=
msg :=
else
Q   := @
msg = @printf '  %-8s %s\n' '$(1)' '$(2)';
endif

# Debian packages the project needs; `make deps` installs the missing ones.
DEBS := build-essential clang llvm libclang-rt-14-dev pkg-config \
	libbpf-dev bpftool libelf-dev zlib1g-dev libdeflate-dev libcsv-dev \
	libgsl-dev libcmocka-dev libjansson-dev nettle-dev gnuplot-nox iproute2 nftables

GIT_SHA := $(shell git rev-parse --short HEAD 2>/dev/null)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)

# snprintf truncation is how we bound text on purpose; gcc cannot tell.
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter -Wno-format-truncation
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -I. -I$(BUILD) -D_GNU_SOURCE -MMD -MP
LDLIBS  := -lbpf -lelf -ljansson -lcsv -lgsl -lgslcblas -lnettle -ldeflate -lz -lm -ldl -lpthread
LDFLAGS ?=

ifeq ($(MODE),fuzz)
CFLAGS  += -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(MODE),asan)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# Library sources: everything in the component folders but programs with
# their own main (*-bench.c, workload programs), BPF code and plugins.
LIB_DIRS := lib logs replay correlate datasets/gen datasets/import datasets/label models bench capture export
PROG_SRCS := $(wildcard bench/*-*.c)
LIB_SRCS := $(filter-out %.bpf.c $(PROG_SRCS), \
	$(wildcard $(addsuffix /*.c,$(LIB_DIRS))))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/*.c))
LIBTJ    := $(BUILD)/libtracejoin.a
TJ       := $(BUILD)/tracejoin

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BINS := $(PROG_SRCS:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzzbin/%)
PLUGIN_SRCS := $(wildcard correlate/plugins/*.c)
PLUGINS     := $(PLUGIN_SRCS:correlate/plugins/%.c=$(BUILD)/plugins/%.so)

.PHONY: all deps test unit-tests benches bench fuzz fuzz-bins clean models
all: $(TJ) $(PLUGINS)

# Objects that include generated headers (BPF skeleton) list them in
# capture/build.mk; this keeps the rest of the build free of BPF tools.
-include $(wildcard */build.mk */*/build.mk)
-include datasets/workloads/real.mk

$(BUILD)/.deps-ok: Makefile
	@$(MAKE) --no-print-directory deps
	@mkdir -p $(BUILD) && touch $@

# $(call apt_install,TARGET,PACKAGES): install the missing ones (root).
define apt_install
	@missing=$$(for p in $(2); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "make $(1): installing" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make $(1): need root to apt-get install" $$missing >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,deps,$(DEBS))

$(BUILD)/%.o: %.c | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# version.o is rebuilt whenever the commit (or dirtiness) changes.
$(BUILD)/git-sha.txt: FORCE
	@mkdir -p $(BUILD); echo '$(GIT_SHA)' | cmp -s - $@ || echo '$(GIT_SHA)' > $@
FORCE:
$(BUILD)/lib/version.o: $(BUILD)/git-sha.txt
$(BUILD)/lib/version.o: CFLAGS += $(if $(GIT_SHA),-DTJ_GIT_SHA='"$(GIT_SHA)"')

$(LIBTJ): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(TJ): $(CLI_OBJS) $(LIBTJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $(CLI_OBJS) -Wl,--whole-archive $(LIBTJ) -Wl,--no-whole-archive $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBTJ)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBTJ) -lcmocka $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIBTJ)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBTJ) $(LDLIBS)

# Plugins are built as a third party would: the interface header only.
$(BUILD)/plugins/%.so: correlate/plugins/%.c correlate/correlator.h | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared -fPIC -o $@ $<

unit-tests: $(UNIT_BINS)

# libFuzzer targets (tests/fuzz/fuzz_NAME.c, seed corpus in
# tests/fuzz/corpus/NAME/), built by clang in their own build folder.
$(BUILD)/fuzzbin/%: tests/fuzz/%.c $(LIBTJ)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(LIBTJ) $(LDLIBS)
fuzz-bins: $(FUZZ_BINS)
fuzz:
	@$(MAKE) --no-print-directory CC=$(CLANG) MODE=fuzz BUILD=$(BUILD)/fuzz fuzz-bins

# The README's test command.  Sanitizers on; every test runs; the runner
# prints "N passed, N failed, N skipped" last.
test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory MODE=asan BUILD=$(BUILD)/asan all unit-tests benches
	@$(MAKE) --no-print-directory all benches
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory consumers
	@$(MAKE) --no-print-directory grid-engines
	TJ_CONSUMERS=$(BUILD)/consumers TJ_BUILD=$(BUILD)/asan TJ_RELEASE_BUILD=$(BUILD) TJ_FUZZ_BUILD=$(BUILD)/fuzz tests/run.sh

benches: $(BENCH_BINS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
