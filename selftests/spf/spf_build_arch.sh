#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# spf_build_arch - spf_harness refuses to build for a kernel without
# CONFIG_X86_64 with a clear message (its probes read x86-64 argument
# registers), and builds for the x86-64 kernel (the positive control: the
# refusal is the check, not a broken copy). Host test; builds a copy of
# mm/spf in a temporary directory, so the tree's objects are untouched.
set -u
# the source tree: KMEMLAB_DIR, or up from selftests/spf or build/selftests/spf
TOP=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
[[ -d $TOP/mm/spf ]] || TOP=$(cd "$TOP/.." && pwd)
# the lab's target kernel (the host may run another): KDIR, or the newest 6.12
KDIR=${KDIR:-$(ls -d /lib/modules/6.12.*-amd64/build 2>/dev/null | sort -V | tail -1)}
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
nok() { n=$((n + 1)); fail=1; echo "not ok $n $1"; }

echo "TAP version 13"
if [[ ! -f $KDIR/Makefile || ! -d $TOP/mm/spf ]]; then
	echo "1..0 # SKIP no kernel build tree at $KDIR or no mm/spf under $TOP"
	exit 4
fi
echo "1..2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/mm/spf" "$tmp/include/uapi/kmemlab"
cp "$TOP"/mm/spf/{Kbuild,*.c,*.h} "$tmp/mm/spf/"
cp "$TOP"/include/uapi/kmemlab/spf.h "$tmp/include/uapi/kmemlab/"

out=$(make -C "$KDIR" M="$tmp/mm/spf" CONFIG_X86_64= modules 2>&1)
rc=$?
if [[ $rc -ne 0 ]] && grep -q "spf_harness is x86-64 only" <<<"$out" &&
   [[ ! -e $tmp/mm/spf/spf_obs.o ]]; then
	ok refused_without_x86_64
else
	echo "# exit $rc; output: $(tail -3 <<<"$out")"
	nok refused_without_x86_64
fi

out=$(nice -n 5 make -C "$KDIR" M="$tmp/mm/spf" modules 2>&1)
rc=$?
if [[ $rc -eq 0 && -f $tmp/mm/spf/spf_harness.ko ]]; then
	ok builds_for_x86_64
else
	echo "# exit $rc; output: $(tail -5 <<<"$out")"
	nok builds_for_x86_64
fi
exit $fail
