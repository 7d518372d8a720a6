# The built-in scenarios: every datasets/scenarios/*.scn is compiled into
# the binary (gen_builtin_data.c, generated), so `tracejoin gen --scenario
# NAME` works from any directory and the files stay the one source.
GEN_SCNS := $(sort $(wildcard datasets/scenarios/*.scn))
LIB_OBJS += $(BUILD)/datasets/gen_builtin_data.o

$(BUILD)/datasets/gen_builtin_data.c: $(GEN_SCNS) datasets/embed-scenarios.sh datasets/build.mk
	@mkdir -p $(dir $@)
	sh datasets/embed-scenarios.sh $(GEN_SCNS) > $@.tmp && mv $@.tmp $@

$(BUILD)/datasets/gen_builtin_data.o: $(BUILD)/datasets/gen_builtin_data.c | $(BUILD)/.deps-ok
	$(CC) $(CFLAGS) -c -o $@ $<
