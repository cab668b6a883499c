#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the test-only fault build of bgpmem.ko (KMEMLAB_BGPMEM_FAULTS=1:
# module parameters "fault" and "fault_hits", Documentation/bgpmem.rst) from
# a copy of the sources, for the normal backends (OUTDIR/std) and, when
# NFIT_TEST_BUILD has nfit_test's Module.symvers, for nfit_test
# (OUTDIR/nfit_test, the --wrap build of nfit_test_flavor.sh).
# selftests/bgpmem/bgpmem_faults.sh loads it; the lab never stages it.
#
# usage: fault_flavor.sh KVER KSRC OUTDIR [NFIT_TEST_BUILD]
set -euo pipefail

KVER=${1:?usage: fault_flavor.sh KVER KSRC OUTDIR [NFIT_TEST_BUILD]}
KSRC=${2:?}
OUT=${3:?}
NT=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
KDIR=${KDIR:-/lib/modules/$KVER/build}

build() {	# DIR [make args]
	local d=$1

	shift
	rm -rf "$d"
	mkdir -p "$d"
	cp "$HERE"/Kbuild "$HERE"/*.c "$HERE"/*.h "$d/"
	rm -f "$d"/*.mod.c
	make -C "$KDIR" M="$d" KMEMLAB_KSRC="$KSRC" KMEMLAB_BGPMEM_FAULTS=1 \
		KMEMLAB_UAPI="$HERE/../../include/uapi" "$@" modules
}

build "$OUT/std"
if [[ -n $NT ]]; then
	SYMS=$NT/src/tools/testing/nvdimm/Module.symvers
	[[ -f $SYMS ]] || {
		echo "bgpmem: error: $SYMS not found" >&2
		echo "bgpmem: hint: make nfit_test first" >&2
		exit 1
	}
	build "$OUT/nfit_test" KMEMLAB_NFIT_TEST=1 KBUILD_EXTRA_SYMBOLS="$SYMS"
fi
