#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Write build/kselftest.tar.gz in the layout of the kernel's
# `make kselftest-install` (what LAVA's and KernelCI's kselftest jobs take):
#
#   kselftest/run_kselftest.sh        the kernel's runner (linux-source-6.12)
#   kselftest/kselftest/runner.sh ... its helpers
#   kselftest/kselftest-list.txt      collection:test, e.g. kmemlab/spf:spf_ioctl
#   kselftest/kmemlab/<area>/         one collection per area: settings
#                                     (timeout=) and one entry per test
#   kselftest/kmemlab/.tests/         the tests as `make` installs them
#                                     (build/selftests: areas, lib/, kselftest/)
#   kselftest/kmemlab/tree/           the modules at their build paths and the
#                                     tools in build/bin: what the tests take
#                                     as KMEMLAB_DIR / KMEMLAB_BIN
#   kselftest/kmemlab/env.sh          sets those, and makes the modules
#                                     loadable (Documentation/lab.rst)
#
# Each collection entry is a small script of the test's name that sources
# env.sh and runs the real test, so the names, counts and TAP are the
# test's own and nothing points into the checkout. A collection lists the
# tests `make check` runs in the VM: not the host_tests (they boot QEMU
# peers on the lab host) and not the slow_tests (SLOW=1).
#
# usage: kselftest-tarball.sh TOP BUILD KSRC OUT
set -euo pipefail

TOP=${1:?usage: kselftest-tarball.sh TOP BUILD KSRC OUT}
BUILD=${2:?}
KSRC=${3:?}
OUT=${4:?}
KS=$KSRC/tools/testing/selftests
STAGE=$(dirname "$OUT")/kselftest-tarball.stage
K=$STAGE/kselftest
M=$K/kmemlab

die() {
	echo "kselftest-tarball: error: $1" >&2
	[[ -n ${2:-} ]] && echo "kselftest-tarball: hint: $2" >&2
	exit 1
}

[[ -r $KS/run_kselftest.sh && -r $KS/kselftest/runner.sh ]] ||
	die "no run_kselftest.sh in $KS" "run 'make ksrc' (extracts it from linux-source-6.12)"
[[ -f $TOP/modules.order ]] || die "modules are not built" "run 'make'"

setting() {
	sed -n "s/^$1=//p" "$2" 2>/dev/null | tail -1
}

in_csv() {
	[[ ,$2, == *,"$1",* ]]
}

rm -rf "$STAGE"
mkdir -p "$K/kselftest" "$M/tree/build/bin" "$M/.tests"
install -m 755 "$KS/run_kselftest.sh" "$K/"
for f in runner.sh prefix.pl module.sh ktap_helpers.sh ksft.py; do
	[[ -f $KS/kselftest/$f ]] && install -m 755 "$KS/kselftest/$f" "$K/kselftest/"
done

# the modules, at the paths the tests fall back to (insmod $KMEMLAB_DIR/...)
while read -r m; do
	m=${m%.o}
	m=${m%.ko}
	m=${m#"$TOP"/}
	[[ -f $TOP/$m.ko ]] || die "$m.ko is listed in modules.order but not built" "run 'make'"
	mkdir -p "$M/tree/$(dirname "$m")"
	cp "$TOP/$m.ko" "$M/tree/$m.ko"
done <"$TOP/modules.order"
cp -a "$BUILD/bin/." "$M/tree/build/bin/"

install -m 644 "$TOP/tools/ship/kselftest-env.sh" "$M/env.sh"

: >"$K/kselftest-list.txt"
for area in $(make -s -C "$TOP/selftests" list); do
	src=$BUILD/selftests/$area
	[[ -f $src/tests.list ]] || die "selftest area $area is not built" "run 'make'"
	hosts=$(setting host_tests "$src/settings")
	slow=$(setting slow_tests "$src/settings")
	tests=()
	while read -r t; do
		[[ -n $t ]] || continue
		in_csv "$t" "$hosts" || in_csv "$t" "$slow" || tests+=("$t")
	done <"$src/tests.list"
	((${#tests[@]})) || continue
	mkdir -p "$M/.tests/$area" "$M/$area"
	(cd "$src" && find . -type f ! -name '*.o' ! -name '*.d' -print0 |
		xargs -0 cp --parents -t "$M/.tests/$area/")
	# settings: the kernel's runner evaluates every key=value line, so
	# only timeout= (the longest of the area's and its listed tests')
	to=$(setting timeout "$src/settings")
	to=${to:-45}
	for t in "${tests[@]}"; do
		o=$(setting "timeout_${t%.*}" "$src/settings")
		[[ -n $o ]] && ((o > to)) && to=$o
		cat >"$M/$area/$t" <<-EOT
		#!/bin/bash
		# kmemlab/$area:$t from the kmemlab kselftest tarball: the test
		# in ../.tests/$area, with the tarball's modules and tools
		. "\$(dirname "\$0")/../env.sh" || exit 1
		exec "\$KMEMLAB_KSFT/.tests/$area/$t" "\$@"
		EOT
		chmod 755 "$M/$area/$t"
		echo "kmemlab/$area:$t" >>"$K/kselftest-list.txt"
	done
	echo "timeout=$to" >"$M/$area/settings"
done
cp -a "$BUILD/selftests/lib" "$BUILD/selftests/kselftest" "$M/.tests/"

mkdir -p "$(dirname "$OUT")"
tar -C "$STAGE" --owner=0 --group=0 -czf "$OUT.tmp" kselftest
mv "$OUT.tmp" "$OUT"
echo "  TAR     $OUT: $(wc -l <"$K/kselftest-list.txt") tests in $(cut -d: -f1 "$K/kselftest-list.txt" | sort -u | wc -l) collections"
