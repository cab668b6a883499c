#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the kernel's tools/testing/nvdimm (nfit_test: an emulated NFIT bus
# with ARS, clear-error and error injection, and replacement libnvdimm, nfit,
# nd_pmem, nd_btt, nd_e820 and dax modules) out of tree against the headers,
# from the source parts ksrc.sh extracted.
#
# usage: nfit_test.sh KVER KSRC OUTDIR
set -euo pipefail

KVER=${1:?usage: nfit_test.sh KVER KSRC OUTDIR}
KSRC=${2:?}
OUT=${3:?}
KDIR=${KDIR:-/lib/modules/$KVER/build}

stamp=$OUT/.kmemlab-nfit_test
if [[ -f $stamp && $stamp -nt $KSRC/.kmemlab-ksrc && $stamp -nt $0 &&
      $stamp -nt $KDIR/Module.symvers ]]; then
	exit 0
fi

echo "  NFIT    building tools/testing/nvdimm (nfit_test) for $KVER"
rm -rf "$OUT"
mkdir -p "$OUT/src/drivers/acpi" "$OUT/src/tools/testing"
cp -a "$KSRC/drivers/nvdimm" "$KSRC/drivers/dax" "$OUT/src/drivers/"
cp -a "$KSRC/drivers/acpi/nfit" "$OUT/src/drivers/acpi/"
cp -a "$KSRC/tools/testing/nvdimm" "$OUT/src/tools/testing/"

# Its Kbuild files take private headers from $(srctree), which for an
# external build is the headers package: point them at this source copy.
sed -i 's|\$(srctree)/drivers/|$(src)/../../../drivers/|' \
	"$OUT/src/tools/testing/nvdimm/Kbuild"
sed -i 's|\$(srctree)/drivers/|$(src)/../../../../drivers/|' \
	"$OUT/src/tools/testing/nvdimm/test/Kbuild"

make -C "$KDIR" M="$OUT/src/tools/testing/nvdimm" -j"$(nproc)" modules >"$OUT/build.log" 2>&1 || {
	tail -30 "$OUT/build.log" >&2
	echo "nfit_test: error: building tools/testing/nvdimm failed (log: $OUT/build.log)" >&2
	exit 1
}
touch "$stamp"
