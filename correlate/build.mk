# correlate/: deliberately broken plugins for the loader's tests, built
# beside the real ones (build/plugins/bad/*.so) by the same rule.
BAD_PLUGIN_SRCS := $(wildcard correlate/plugins/bad/*.c)
BAD_PLUGINS     := $(BAD_PLUGIN_SRCS:correlate/plugins/bad/%.c=$(BUILD)/plugins/bad/%.so)
all: $(BAD_PLUGINS)
$(BUILD)/plugins/bad/%.so: correlate/plugins/bad/%.c correlate/correlator.h | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -fPIC -o $@ $<
