# SPDX-License-Identifier: GPL-2.0
#
# kmemlab: out-of-tree memory-management modules for Debian's 6.12 kernel,
# their tools and their selftests, tested in a QEMU VM.
#
#   make deps     install the Debian packages the project needs (root)
#   make          build modules, tools and selftests
#   make run      boot the test VM (CMD='...' runs one command, PMEM=backend;
#                 make exits 2 when CMD fails, tools/vm/lab run -c gives the
#                 exact status)
#   make check    run every selftest in the VM (T=area for one area)
#   make lint     sparse, W=1, coccicheck, checkpatch
#   make bench    benchmarks (B=name), tables in build/results/
#   make kselftest-tarball   build/kselftest.tar.gz for LAVA/KernelCI
#   make matrix   build every module against every Debian 6.12 kernel the
#                 registry serves, boot-test three (build/matrix/matrix.txt)
#   make install  the shipped modules to /lib/modules/$KVER/updates/kmemlab,
#                 tools to /usr/local/bin; make uninstall removes them
#
# KVER selects the kernel (default: the newest installed 6.12 with headers).

TOP       := $(CURDIR)
BUILD     := $(TOP)/build
LAB       := $(TOP)/tools/vm/lab

# The kernel: KERNEL=stock (Debian's, KVER), KERNEL=debug (the lab's debug
# kernel, built by `make kernel KERNEL=debug`), or KDIR=/path/to/linux-build
# (a 6.12 tree you built; the lab boots its bzImage).
KERNEL    ?= stock
ifeq ($(KERNEL),debug)
KDIR      := $(BUILD)/kernel-debug/obj
else ifneq ($(KERNEL),stock)
$(error KERNEL=$(KERNEL): use stock (default) or debug, or KDIR=/path/to/linux-build)
endif
ifneq ($(KDIR),)
KVER      := $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)
else
KVER      ?= $(shell KERNEL=stock $(LAB) kver 2>/dev/null)
KDIR      := /lib/modules/$(KVER)/build
endif
KSRC      := $(BUILD)/ksrc
KBUILD    := $(MAKE) -C $(KDIR) M=$(TOP) KMEMLAB_KSRC=$(KSRC)
NFIT_TEST := $(BUILD)/nfit_test/$(KVER)

export KVER KDIR KERNEL

all: modules tools selftests

deps:
	@$(TOP)/tools/vm/deps.sh

kver-check:
	@test -n "$(KVER)" || $(LAB) kver

# the kernel to build against and boot: only the debug kernel is built here
kernel:
ifeq ($(KERNEL),debug)
	+@$(TOP)/tools/vm/kernel/build.sh $(BUILD)/kernel-debug
endif

ksrc: kver-check
	@$(TOP)/tools/vm/ksrc.sh $(KVER) $(KSRC)

# The lab stages modules from build/ under build/vm/.lock: never rebuild them
# under a staging in progress (a half-written .ko would boot).
modules: ksrc
	@mkdir -p $(BUILD)/vm
	+flock $(BUILD)/vm/.lock $(KBUILD) modules

tools:
	+$(MAKE) -C tools

selftests: ksrc tools
	+$(MAKE) -C selftests

# tools/testing/nvdimm from the kernel source, for the nfit_test backend.
# A module that must be built differently to bind nfit_test's namespaces
# ships <dir>/nfit_test_flavor.sh KVER KSRC NFIT_TEST_BUILD OUTDIR; the lab
# uses those builds instead of the normal ones on that backend.
FLAVORS = $(wildcard $(TOP)/drivers/*/nfit_test_flavor.sh $(TOP)/mm/*/nfit_test_flavor.sh)
# Test-only fault builds (<dir>/fault_flavor.sh KVER KSRC OUTDIR NFIT_TEST_BUILD,
# into build/fault/KVER/<dir>/): loaded by the area's negative tests, never
# staged by the lab; built here, with the nfit_test flavours
FAULT_FLAVORS = $(wildcard $(TOP)/drivers/*/fault_flavor.sh)

nfit_test: ksrc modules
	+$(TOP)/tools/vm/nfit_test.sh $(KVER) $(KSRC) $(NFIT_TEST)
	+@for f in $(FLAVORS); do \
		d=$$(basename $$(dirname $$f)); \
		$$f $(KVER) $(KSRC) $(NFIT_TEST) $(NFIT_TEST)/flavors/$$d >$(NFIT_TEST)/flavor-$$d.log 2>&1 || \
			{ tail -20 $(NFIT_TEST)/flavor-$$d.log; echo "nfit_test: error: $$f failed (log: $(NFIT_TEST)/flavor-$$d.log)" >&2; exit 1; }; \
	done
	+@for f in $(FAULT_FLAVORS); do \
		d=$$(basename $$(dirname $$f)); o=$(BUILD)/fault/$(KVER)/$$d; mkdir -p $$o; \
		$$f $(KVER) $(KSRC) $$o $(NFIT_TEST) >$$o.log 2>&1 || \
			{ tail -20 $$o.log; echo "fault build: error: $$f failed (log: $$o.log)" >&2; exit 1; }; \
	done

run: deps
	+$(MAKE) kernel
	+$(MAKE) all nfit_test-if-needed PMEM=$(PMEM)
	$(LAB) run $(if $(PMEM),-p $(PMEM)) $(if $(CMD),-c '$(subst ','\'',$(value CMD))')

check: deps
	+$(MAKE) kernel
	+$(MAKE) all nfit_test
	$(LAB) check $(foreach a,$(subst $(comma), ,$(T)),-a $(a))

nfit_test-if-needed:
	$(if $(filter nfit_test,$(PMEM)),+$(MAKE) nfit_test)

lint: ksrc
	+$(TOP)/tools/lint/lint.sh $(KVER) $(KSRC)

# Benchmarks: bench/<name>/run.sh each, B=name[,name] for some; tables go to
# build/results/. A bench that runs inside the lab VM has its lab options
# in BENCH_VM_<name>; the others run on the host (and boot VMs themselves).
BENCHES = $(if $(B),$(subst $(comma), ,$(B)),$(notdir $(wildcard bench/*)))
BENCH_VM_bgpmem      := -p nfit
# instruction-counted guest time: repeatable to 0.5 %, where multi-threaded
# TCG varied 1.5x between back-to-back runs (Documentation/bgpmem.rst)
BENCH_ENV_bgpmem     := LAB_NVDIMM_DIR=/dev/shm LAB_CLOCK=icount
BENCH_VM_spf         := -p none --disk 512M
BENCH_VM_memcg_dirty := -p none --disk 1G

# benchmark boots without the stock kernel's boot-time checkers (slub_debug,
# KFENCE, page poisoning: Documentation/lab.rst)
bench bench-%: export LAB_HARDEN := 0

bench: deps
	+$(MAKE) all nfit_test
	+$(MAKE) $(addprefix bench-,$(BENCHES))

bench-%:
	@test -x bench/$*/run.sh || { echo "bench: no bench/$*/run.sh" >&2; exit 2; }
	@echo "== bench $*"
	$(if $(BENCH_VM_$*),$(BENCH_ENV_$*) $(LAB) run $(BENCH_VM_$*) -c $(TOP)/bench/$*/run.sh,$(TOP)/bench/$*/run.sh)

# Install the shipped modules (dkms.conf's list: not the test-only ones) in
# /lib/modules/$KVER/updates/kmemlab and the tools in /usr/local/bin, for
# KVER on this machine; `make uninstall` removes them (for every kernel) and
# a DKMS registration of kmemlab. DESTDIR= stages instead (no depmod). The
# DKMS way: README.md, "Install on your own machine".
DKMS_VER  := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' $(TOP)/dkms.conf)
SHIP_KO   := $(shell awk -F'"' '/^BUILT_MODULE_(NAME|LOCATION)\[/ { \
		split($$1, k, /[][]/); if ($$1 ~ /NAME/) n[k[2]] = $$2; else l[k[2]] = $$2 } \
		END { for (i in n) print l[i] n[i] ".ko" }' $(TOP)/dkms.conf)
MODDIR    := $(DESTDIR)/lib/modules/$(KVER)/updates/kmemlab
BINDIR    := $(DESTDIR)/usr/local/bin
MANIFEST  := $(DESTDIR)/usr/local/share/kmemlab/installed-tools

install: modules tools
	@if [ -z "$(DESTDIR)" ] && command -v dkms >/dev/null && \
	    dkms status -k $(KVER) kmemlab 2>/dev/null | grep -q installed; then \
		echo "install: error: kmemlab is installed for $(KVER) through DKMS (dkms status)" >&2; \
		echo "install: hint: dkms remove kmemlab/$(DKMS_VER) -k $(KVER) first, or keep the DKMS one" >&2; \
		exit 1; \
	fi
	install -d $(MODDIR) $(BINDIR) $(dir $(MANIFEST))
	install -m 644 $(addprefix $(TOP)/,$(SHIP_KO)) $(MODDIR)/
	strip --strip-debug $(addprefix $(MODDIR)/,$(notdir $(SHIP_KO)))
	$(if $(DESTDIR),,depmod -a $(KVER))
	install -m 755 $(wildcard $(BUILD)/bin/*) $(BINDIR)/
	printf '%s\n' $(notdir $(wildcard $(BUILD)/bin/*)) >$(MANIFEST)
	@echo "installed for $(KVER): $(notdir $(SHIP_KO)) in $(MODDIR); tools in $(BINDIR)"

uninstall:
	@for d in $(DESTDIR)/lib/modules/*/updates/kmemlab; do \
		[ -d "$$d" ] || continue; \
		echo "rm -r $$d"; rm -r "$$d"; \
		k=$${d%/updates/kmemlab}; k=$${k##*/}; \
		[ -n "$(DESTDIR)" ] || depmod -a "$$k"; \
	done
	@if [ -f $(MANIFEST) ]; then \
		for t in $$(cat $(MANIFEST)); do rm -fv $(BINDIR)/$$t; done; \
		rm -rv $(dir $(MANIFEST)); \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v dkms >/dev/null && \
	    dkms status kmemlab/$(DKMS_VER) 2>/dev/null | grep -q .; then \
		dkms remove kmemlab/$(DKMS_VER) --all; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -e /usr/src/kmemlab-$(DKMS_VER)/dkms.conf ]; then \
		echo "rm -r /usr/src/kmemlab-$(DKMS_VER)"; rm -r /usr/src/kmemlab-$(DKMS_VER); \
	fi

# The kselftest tarball for other people's farms (LAVA, KernelCI): the
# layout of the kernel's `make kselftest-install`, with our modules and tools
# inside (tools/ship/kselftest-tarball.sh, Documentation/lab.rst).
kselftest-tarball: all
	$(TOP)/tools/ship/kselftest-tarball.sh $(TOP) $(BUILD) $(KSRC) $(BUILD)/kselftest.tar.gz

# The build matrix: every Debian 6.12 kernel the registry serves (apt-cache)
# x every module x (build, load, tests); boot tests of the oldest and newest
# amd64 and the newest rt-amd64 (tools/ship/matrix.sh; MATRIX_ARGS='--boot
# none' builds only, '--areas lab,spf' limits the boot tests).
matrix:
	$(TOP)/tools/ship/matrix.sh $(MATRIX_ARGS)

clean:
	-+$(KBUILD) clean
	+$(MAKE) -C tools clean
	+$(MAKE) -C selftests clean

distclean: clean
	rm -rf $(BUILD)

comma := ,

.PHONY: all deps kver-check kernel ksrc modules tools selftests nfit_test run check \
	nfit_test-if-needed lint bench install uninstall kselftest-tarball matrix clean distclean
