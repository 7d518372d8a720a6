# The workload programs of labeled real captures (datasets/real/README.md):
# tj-service and tj-load, built beside tracejoin in $(BUILD)/datasets/
# workloads/ with the same flags (the sanitizer build gets sanitized
# services).  They link the library for the trace-context rule
# (datasets/label/label.h), so the services and the labeler share one definition.
WL_DIR  := $(BUILD)/datasets/workloads
WL_COMMON := datasets/workloads/http.c
WL_SVC_SRCS := datasets/workloads/tj-service.c datasets/workloads/svc_common.c \
	datasets/workloads/svc_threads.c datasets/workloads/svc_epoll.c
WORKLOADS := $(WL_DIR)/tj-service $(WL_DIR)/tj-load

all: $(WORKLOADS)

$(WL_DIR)/tj-service: $(patsubst datasets/workloads/%.c,$(WL_DIR)/%.o,$(WL_SVC_SRCS) $(WL_COMMON)) $(LIBTJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(WL_DIR)/tj-load: $(WL_DIR)/tj-load.o $(WL_DIR)/http.o $(LIBTJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
