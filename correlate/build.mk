# correlate/: deliberately broken plugins for the loader's tests, built
# beside the real ones (build/plugins/bad/*.so) by the same rule.
BAD_PLUGIN_SRCS := $(wildcard correlate/plugins/bad/*.c)
BAD_PLUGINS     := $(BAD_PLUGIN_SRCS:correlate/plugins/bad/%.c=$(BUILD)/plugins/bad/%.so)
all: $(BAD_PLUGINS)
$(BUILD)/plugins/bad/%.so: correlate/plugins/bad/%.c correlate/correlator.h | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared -fPIC -o $@ $<

# Plugins the unit tests load with dlopen() from a host that exports none
# of tracejoin's symbols (tests/unit/test_plugin_abi.c), built the same way.
TEST_PLUGIN_SRCS := $(wildcard tests/plugins/*.c)
TEST_PLUGINS     := $(TEST_PLUGIN_SRCS:tests/plugins/%.c=$(BUILD)/plugins/test/%.so)
all: $(TEST_PLUGINS)
$(BUILD)/plugins/test/%.so: tests/plugins/%.c correlate/correlator.h | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared -fPIC -o $@ $<
$(BUILD)/tests/test_plugin_abi: $(TEST_PLUGINS) $(PLUGINS)
