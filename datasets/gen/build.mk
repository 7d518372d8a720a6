# The built-in scenarios: every datasets/gen/scenarios/*.scn is compiled into
# the binary (gen_builtin_data.c, generated), so `tracejoin gen --scenario
# NAME` works from any directory and the files stay the one source.
GEN_SCNS := $(sort $(wildcard datasets/gen/scenarios/*.scn))
LIB_OBJS += $(BUILD)/datasets/gen/gen_builtin_data.o

$(BUILD)/datasets/gen/gen_builtin_data.c: $(GEN_SCNS) datasets/gen/embed-scenarios.sh datasets/gen/build.mk
	@mkdir -p $(dir $@)
	$(call msg,GEN,$@)
	$(Q)sh datasets/gen/embed-scenarios.sh $(GEN_SCNS) > $@.tmp && mv $@.tmp $@

$(BUILD)/datasets/gen/gen_builtin_data.o: $(BUILD)/datasets/gen/gen_builtin_data.c | $(BUILD)/.deps-ok
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<
