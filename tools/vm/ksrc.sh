#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract the parts of the 6.12 kernel source that linux-headers lacks
# (kselftest headers, private nvdimm headers, tools/testing/nvdimm, checkpatch,
# coccinelle) from linux-source-6.12 into $BUILD/ksrc, after checking that the
# source is the same release as the headers we build against.
#
# usage: ksrc.sh KVER OUTDIR
set -euo pipefail

KVER=${1:?usage: ksrc.sh KVER OUTDIR}
OUT=${2:?usage: ksrc.sh KVER OUTDIR}
TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
KDIR=${KDIR:-/lib/modules/$KVER/build}
TOP=linux-source-6.12

PARTS=(
	Makefile
	tools/testing/selftests/kselftest.h
	tools/testing/selftests/kselftest_harness.h
	tools/testing/selftests/kselftest
	tools/testing/selftests/run_kselftest.sh
	tools/testing/nvdimm
	drivers/nvdimm
	drivers/acpi/nfit
	drivers/dax
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
	scripts/coccicheck
	scripts/coccinelle
	scripts/faddr2line
	scripts/decode_stacktrace.sh
	.clang-format
)

die() {
	echo "ksrc: error: $1" >&2
	[[ -n ${2:-} ]] && echo "ksrc: hint: $2" >&2
	exit 1
}

[[ -r $TARBALL ]] ||
	die "$TARBALL not found" "install the package linux-source-6.12: apt-get install linux-source-6.12 (make deps)"
[[ -r $KDIR/include/config/kernel.release ]] ||
	die "no headers for $KVER in $KDIR" "install linux-headers-$KVER (make deps)"

release=$(<"$KDIR/include/config/kernel.release")
want=${release%%[+-]*}	# 6.12.117+deb12-amd64 -> 6.12.117

# Same Debian package version for headers and source, when dpkg knows both.
hdr_pkg=$(dpkg-query -S "$KDIR/" 2>/dev/null | head -1 | cut -d: -f1 || true)
if [[ -n $hdr_pkg ]]; then
	hv=$(dpkg-query -W -f='${Version}' "$hdr_pkg" 2>/dev/null || true)
	sv=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || true)
	if [[ -n $hv && -n $sv && $hv != "$sv" ]]; then
		die "linux-source-6.12 is $sv but $hdr_pkg is $hv" \
		    "install matching versions: apt-get install linux-source-6.12=$hv (or pick another KVER=)"
	fi
fi

stamp=$OUT/.kmemlab-ksrc
# the stamp names the parts too: a part added here extracts again
key="$want $(stat -c %Y "$TARBALL") $(echo "${PARTS[*]}" | md5sum | cut -c1-8)"
if [[ -f $stamp && $(<"$stamp") == "$key" ]]; then
	exit 0
fi

echo "  KSRC    extracting kernel source parts for $want into $OUT"
tmp=$OUT.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
tar -xJf "$TARBALL" -C "$tmp" --strip-components=1 "${PARTS[@]/#/$TOP/}" ||
	die "extracting from $TARBALL failed" "reinstall linux-source-6.12"

have=$(awk '/^VERSION =/{v=$3} /^PATCHLEVEL =/{p=$3} /^SUBLEVEL =/{s=$3} END{print v"."p"."s}' "$tmp/Makefile")
if [[ $have != "$want" ]]; then
	rm -rf "$tmp"
	die "linux-source-6.12 is $have but the headers are $release" \
	    "install matching linux-source-6.12 and linux-headers (make deps), or set KVER="
fi

rm -rf "$OUT"
mv "$tmp" "$OUT"
echo "$key" > "$stamp"
