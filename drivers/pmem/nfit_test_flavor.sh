#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build bgpmem.ko for the nfit_test backend: nfit_test's namespaces are
# vmalloc memory behind fake physical addresses, reached only through the
# --wrap'ed memremap/resource helpers of nfit_test_iomap. The result
# (OUTDIR/bgpmem.ko) needs nfit_test's modules loaded.
#
# usage: nfit_test_flavor.sh KVER KSRC NFIT_TEST_BUILD OUTDIR
set -euo pipefail

KVER=${1:?usage: nfit_test_flavor.sh KVER KSRC NFIT_TEST_BUILD OUTDIR}
KSRC=${2:?}
NT=${3:?}
OUT=${4:?}
HERE=$(cd "$(dirname "$0")" && pwd)
SYMS=$NT/src/tools/testing/nvdimm/Module.symvers

[[ -f $SYMS ]] || {
	echo "bgpmem: error: $SYMS not found" >&2
	echo "bgpmem: hint: make nfit_test first" >&2
	exit 1
}
mkdir -p "$OUT"
cp "$HERE"/Kbuild "$HERE"/*.c "$HERE"/*.h "$OUT/"
make -C "${KDIR:-/lib/modules/$KVER/build}" M="$OUT" KMEMLAB_KSRC="$KSRC" \
	KMEMLAB_NFIT_TEST=1 KBUILD_EXTRA_SYMBOLS="$SYMS" \
	KMEMLAB_UAPI="$HERE/../../include/uapi" modules
