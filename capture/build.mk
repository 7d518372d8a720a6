# capture: the BPF object and its skeleton, generated in the build folder.
# vmlinux.h comes from the running kernel's BTF (CO-RE relocates the
# object to other kernels at load time), so building needs
# /sys/kernel/btf/vmlinux readable, but not the right to load BPF.

BPFTOOL  ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
CAP_GEN  := $(BUILD)/capture
BPF_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' \
	-e 's/ppc64le/powerpc/' -e 's/s390x/s390/' -e 's/riscv64/riscv/')

$(CAP_GEN)/vmlinux.h: | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	@test -r $(VMLINUX_BTF) || { echo "capture: $(VMLINUX_BTF) missing: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF), cannot build the BPF side" >&2; exit 1; }
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(CAP_GEN)/capture.bpf.o: capture/capture.bpf.c capture/capture_common.h $(wildcard capture/bpf/*.bpf.h) $(CAP_GEN)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(BPF_ARCH) \
		-I$(CAP_GEN) -Icapture -c $< -o $@

$(CAP_GEN)/capture.skel.h: $(CAP_GEN)/capture.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name capture_bpf > $@.tmp && mv $@.tmp $@

# The loader embeds the skeleton.
$(BUILD)/capture/loader.o: $(CAP_GEN)/capture.skel.h

# Test programs the capture tests trace (their own main each).
CAP_TEST_PROGS := $(patsubst tests/programs/%.c,$(BUILD)/tests/programs/%,$(wildcard tests/programs/*.c))
$(BUILD)/tests/programs/%: tests/programs/%.c | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lpthread
all: $(CAP_TEST_PROGS)

# The --stack test program: frame pointers, so the kernel can unwind it.
$(BUILD)/tests/programs/tcp-stacks $(BUILD)/tests/programs/libc-caller: CFLAGS += -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer

# capture --tag: the sock_ops program, its own object and skeleton.
$(CAP_GEN)/tag.bpf.o: capture/tag.bpf.c capture/tag_common.h capture/capture_common.h $(CAP_GEN)/vmlinux.h
	$(CLANG) -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(BPF_ARCH) \
		-I$(CAP_GEN) -Icapture -c $< -o $@

$(CAP_GEN)/tag.skel.h: $(CAP_GEN)/tag.bpf.o
	$(BPFTOOL) gen skeleton $< name tag_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/capture/tag.o: $(CAP_GEN)/tag.skel.h
