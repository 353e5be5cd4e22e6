# klab — QEMU + gdb kernel debug lab.
#   make vm-x86 / vm-arm     boot a kernel paused at its first instruction (console in this terminal);
#                            SNAPSHOT=1: restored at its shell from a snapshot instead
#   make gdb-x86 / gdb-arm   attach gdb-multiarch (symbols, klab commands, stopped at start_kernel)
#   make test                build everything and run every test (unit + real QEMU boots)
#   make install / uninstall   PREFIX=/usr/local DESTDIR=   (klab, libklab, man pages, completion, share/klab)
#   make deb                   a Debian package of klab for this machine's architecture (build/deb/)
# See README.md for the rest.

CC       ?= cc
CFLAGS   ?= -O2 -g
KLAB_VERSION := 0.1.0
SOVERSION  := 0
KLAB_BASE_CFLAGS := -std=c11 -Wall -Wextra -Werror -D_FILE_OFFSET_BITS=64 -DKLAB_VERSION='"$(KLAB_VERSION)"'
# build/klab runs its scripts and gdb package from this clone; the installed klab (build/install/) from its prefix.
KLAB_CFLAGS := $(KLAB_BASE_CFLAGS) -DKLAB_SOURCE_DIR='"$(CURDIR)"'
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# libklab's: zlib, LZO and snappy for kdump-compressed dumps; klab's: libdw and libelf. libvirt is loaded when
# a libvirt VM is used (vm/backend/libvirt_api.c), not linked: it would cost every klab command 8 ms.
LIBKLAB_LIBS := -lz -llzo2 -lsnappy
LDLIBS   := $(LIBKLAB_LIBS) -ldw -lelf

BUILD    := build
KLAB     := $(BUILD)/klab
KLAB_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/klab
export KLAB_CACHE

ROOTFS_SRC := rootfs/newc.c rootfs/gzseg.c rootfs/initramfs.c rootfs/init_script.c
VM_SRC     := $(wildcard vm/*/*.c)
LIBKLAB_SRC := $(wildcard gdb/lib/*.c)
LIBKLAB_HDR := $(wildcard gdb/lib/*.h)
# The klab program carries libklab inside it (regs, vtop, ptdump without gdb).
KLAB_SRC   := vm/main.c $(VM_SRC) $(ROOTFS_SRC) $(LIBKLAB_SRC)
HEADERS    := $(wildcard vm/*/*.h rootfs/*.h) $(LIBKLAB_HDR)
# vm/ includes name their folder ("run/runstate.h"), rootfs's by "rootfs/...".
KLAB_INC   := -Ivm -I. -Igdb/lib

.PHONY: install uninstall deb man kernel test-kernels module labs all deps kernels kernel-x86 kernel-arm kernel-x86-6.12 kernel-arm-6.12 crash rootfs busybox-x86 busybox-arm vm-x86 vm-arm gdb-x86 gdb-arm \
        test unit bench fuzz clean

all: $(KLAB) $(BUILD)/libklab.a $(BUILD)/libklab.so

# libklab: one public header (gdb/lib/klab.h), a static and a shared library.
$(BUILD)/libklab/%.o: gdb/lib/%.c $(LIBKLAB_HDR) | deps
	@mkdir -p $(dir $@)
	$(CC) $(KLAB_CFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<
$(BUILD)/libklab.a: $(patsubst gdb/lib/%.c,$(BUILD)/libklab/%.o,$(LIBKLAB_SRC))
	$(AR) rcs $@ $^
$(BUILD)/libklab.so: $(patsubst gdb/lib/%.c,$(BUILD)/libklab/%.o,$(LIBKLAB_SRC)) Makefile
	$(CC) -shared -Wl,-soname,libklab.so.$(SOVERSION) -o $@ $(filter %.o,$^) $(LIBKLAB_LIBS)

$(KLAB): $(KLAB_SRC) $(HEADERS) | $(BUILD) deps
	$(CC) $(KLAB_CFLAGS) $(CFLAGS) $(KLAB_INC) -o $@ $(KLAB_SRC) $(LDLIBS)

# The same program built with AddressSanitizer and UBSan: what the tests run. Its objects are the unit tests'
# too: each source is compiled once with the sanitizers into build/asan/obj/ (21 tests that each compiled every
# source again took minutes of every cold `make test`).
SAN_CFLAGS := $(KLAB_CFLAGS) -O1 -g $(SAN_FLAGS) -Irootfs $(KLAB_INC)
san_obj = $(patsubst %.c,$(BUILD)/asan/obj/%.o,$(1))
$(BUILD)/asan/obj/%.o: %.c $(HEADERS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -c -o $@ $<
# libtirpc is linked in: ASan intercepts its xdr functions and finds the real ones when the program starts, so
# in a libtirpc that came later with libvirt's dlopen they would be NULL (libvirt's first RPC jumps to 0).
$(BUILD)/asan/klab: $(call san_obj,$(KLAB_SRC)) | $(BUILD) deps
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS) -Wl,--no-as-needed -ltirpc -Wl,--as-needed

$(BUILD):
	@mkdir -p $@

# Every compile is order-only on deps: on a fresh machine `make vm-x86` builds klab first (vm-announce-*), and
# its headers (libvirt, libdw, lzo, snappy) come from the packages deps.sh installs. It runs once per make and
# only calls apt-get when a package is missing (under a second otherwise).
deps:
	@bash scripts/deps.sh

# --- kernels and busybox, fetched once into $(KLAB_CACHE) and shared by every clone ---------------------------
# KVER=6.12: Debian 12's 6.12 kernels (registered as debian-6.12-amd64, debian-6.12-arm64) beside the 6.1 ones
# (debian-amd64, debian-arm64); KERNEL=debian-6.12-* implies it.
KVER ?= $(if $(filter debian-6.12-%,$(KERNEL)),6.12,6.1)
DEBIAN_NAME = debian$(if $(filter 6.12,$(KVER)),-6.12)
kernels: kernel-x86 kernel-arm
kernel-x86: deps $(KLAB)
	@bash kernels/fetch-debian.sh amd64 $(KLAB_CACHE)/kernels/$(DEBIAN_NAME)-amd64 $(KLAB) $(KVER)
kernel-arm: deps $(KLAB)
	@bash kernels/fetch-debian.sh arm64 $(KLAB_CACHE)/kernels/$(DEBIAN_NAME)-arm64 $(KLAB) $(KVER)
# The other generation, for the tests that run on both (make test: x86_64; make test-kernels: both arches).
kernel-x86-6.12: deps $(KLAB)
	@bash kernels/fetch-debian.sh amd64 $(KLAB_CACHE)/kernels/debian-6.12-amd64 $(KLAB) 6.12
kernel-arm-6.12: deps $(KLAB)
	@bash kernels/fetch-debian.sh arm64 $(KLAB_CACHE)/kernels/debian-6.12-arm64 $(KLAB) 6.12

# Source-built lab kernels (kernels/configs/): make kernel PROFILE=x86_64|arm64-4k|arm64-16k|arm64-64k|arm64-64k-52
PROFILES := x86_64 arm64-4k arm64-16k arm64-64k arm64-64k-52
kernel: deps
	@case " $(PROFILES) " in *" $(PROFILE) "*) ;; *) echo "make kernel PROFILE=<one of: $(PROFILES)>" >&2; exit 2;; esac
	@bash kernels/build.sh $(PROFILE)

# crash 8.0.6 for x86_64 and arm64 dumps, built from source into $(KLAB_CACHE)/crash (scripts/crash-build.sh says
# why Debian 12's 8.0.2 is not enough); klab crash uses it first.
crash: deps
	@bash scripts/crash-build.sh x86_64 >/dev/null
	@bash scripts/crash-build.sh arm64 >/dev/null

busybox-x86: deps
	@bash rootfs/fetch-busybox.sh amd64 $(KLAB_CACHE)/busybox/amd64/busybox
busybox-arm: deps
	@bash rootfs/fetch-busybox.sh arm64 $(KLAB_CACHE)/busybox/arm64/busybox

rootfs: $(BUILD)/rootfs-x86_64.cpio.gz $(BUILD)/rootfs-arm64.cpio.gz
$(BUILD)/rootfs-x86_64.cpio.gz: busybox-x86 $(KLAB) FORCE
	@$(KLAB) rootfs --arch x86_64 -o $@
$(BUILD)/rootfs-arm64.cpio.gz: busybox-arm $(KLAB) FORCE
	@$(KLAB) rootfs --arch arm64 -o $@
FORCE:

# --- the lab -------------------------------------------------------------------------------------------------
# BOOT_ARGS passes options to klab boot, e.g. make vm-x86 BOOT_ARGS="--cpu qemu64 --smp 1".
# KERNEL=<profile> boots a source-built kernel instead of Debian's (built first if it is not yet).
# SNAPSHOT=1 restores the machine at its shell from its snapshot (saved by the first such boot; docs/snapshots.md).
snapshot_arg = $(if $(filter-out 0,$(SNAPSHOT)),--snapshot)
source_kernel = $(if $(filter-out debian-%,$(KERNEL)),@bash kernels/build.sh $(KERNEL))
# vm-announce-*: while kernels are fetched and the image built, `make gdb-*` waits for this VM (make's pid).
vm-announce-%: $(KLAB)
	@$(KLAB) boot --arch $* $(BOOT_ARGS) --announce $$PPID
vm-x86: vm-announce-x86_64 kernel-x86 $(BUILD)/rootfs-x86_64.cpio.gz
	$(source_kernel)
	$(KLAB) boot --arch x86_64 $(if $(or $(KERNEL),$(filter 6.12,$(KVER))),--kernel $(or $(KERNEL),$(DEBIAN_NAME)-amd64)) --initrd $(BUILD)/rootfs-x86_64.cpio.gz $(snapshot_arg) $(BOOT_ARGS)
vm-arm: vm-announce-arm64 kernel-arm $(BUILD)/rootfs-arm64.cpio.gz
	$(source_kernel)
	$(KLAB) boot --arch arm64 $(if $(or $(KERNEL),$(filter 6.12,$(KVER))),--kernel $(or $(KERNEL),$(DEBIAN_NAME)-arm64)) --initrd $(BUILD)/rootfs-arm64.cpio.gz $(snapshot_arg) $(BOOT_ARGS)

gdb-x86: $(KLAB) $(BUILD)/libklab.so
	$(KLAB) gdb x86_64 $(GDB_ARGS)
gdb-arm: $(KLAB) $(BUILD)/libklab.so
	$(KLAB) gdb arm64 $(GDB_ARGS)

# An out-of-tree module for a klab kernel: make module M=labs/hellodrv [KERNEL=debian-amd64|arm64-64k|...]
M ?= labs/hellodrv
module: $(KLAB)
	@bash kernels/module.sh $(M) $(or $(KERNEL),debian-amd64)

# Guest programs from labs/ (static, so they run in the busybox initramfs), one per architecture. They link at
# 0x10000000, away from busybox's 0x400000: a hardware breakpoint on their code stops in them only.
LAB_CFLAGS := -std=c11 -Wall -Wextra -Werror -O2 -g -static -Wl,-Ttext-segment=0x10000000
labs: $(BUILD)/labs/pagemap-x86_64 $(BUILD)/labs/pagemap-arm64 $(BUILD)/labs/ptlab-x86_64 $(BUILD)/labs/ptlab-arm64
$(BUILD)/labs/%-x86_64: labs/%/*.c Makefile | deps
	@mkdir -p $(dir $@)
	x86_64-linux-gnu-gcc $(LAB_CFLAGS) -o $@ $(filter %.c,$^)
$(BUILD)/labs/%-arm64: labs/%/*.c Makefile | deps
	@mkdir -p $(dir $@)
	aarch64-linux-gnu-gcc $(LAB_CFLAGS) -o $@ $(filter %.c,$^)

# --- tests and benchmarks ------------------------------------------------------------------------------------
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

# libklab's tests link the library sources only.
LIBKLAB_TESTS := $(BUILD)/tests/test_mmu $(BUILD)/tests/test_rsp $(BUILD)/tests/test_range $(BUILD)/tests/test_format \
                 $(BUILD)/tests/test_swp $(BUILD)/tests/test_search $(BUILD)/tests/test_elfcore $(BUILD)/tests/test_kdump \
                 $(BUILD)/tests/test_ptdiff $(BUILD)/tests/test_svg
$(LIBKLAB_TESTS): $(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(call san_obj,$(LIBKLAB_SRC)) | deps
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -pthread -o $@ $< $(call san_obj,$(LIBKLAB_SRC)) $(LIBKLAB_LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(call san_obj,$(VM_SRC) $(ROOTFS_SRC) $(LIBKLAB_SRC)) | deps
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -o $@ $< $(call san_obj,$(VM_SRC) $(ROOTFS_SRC) $(LIBKLAB_SRC)) $(LDLIBS)

unit: $(UNIT_TESTS)

test: deps kernels kernel-x86-6.12 crash rootfs all labs $(BUILD)/asan/klab unit
	@bash tests/run.sh

# Every source profile built and booted (minutes per profile the first time; cached after).
test-kernels: deps kernels kernel-x86-6.12 kernel-arm-6.12 crash rootfs all labs $(BUILD)/asan/klab
	@bash tests/run.sh kernels

bench: deps kernels rootfs all labs
	@bash bench/run.sh

# libFuzzer targets for the RSP parser/client and the walkers (clang), FUZZ_SECONDS each.
fuzz:
	@bash tests/fuzz/run.sh

clean:
	rm -rf $(BUILD)

# --- install, man pages, the Debian package ------------------------------------------------------------------
include mk/install.mk
