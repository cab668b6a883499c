#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kselftest tarball runs where LAVA and KernelCI run it. Builds it
# (tools/ship/kselftest-tarball.sh, what `make kselftest-tarball` runs),
# checks its layout against the kernel's `make kselftest-install`, then
# boots the lab with none of our modules staged (LAB_MODULES=none), unpacks
# only the tarball in the guest and runs the kernel's own run_kselftest.sh
# on the collections of the areas that need no host-side peer and run on
# the nfit backend (KSFT_COLLECTIONS: collections, or collection:test
# entries as run_kselftest.sh -t takes them); its TAP, parsed with LAVA's
# rules (ksft_tap.py), must give each test the verdict and case counts
# `make check` gave it (this check's results when those areas ran in it,
# else the newest check's in build/vm/runs/ that ran them).
#
# By default lab, bgpmem and spf's spf_ioctl (the entry that needs the
# scratch disks of spf's settings); SLOW=1 runs the whole spf collection
# too, whose spf_race and bench take 10 more minutes in this boot: spf's
# verdicts are make check's to give, this test's is the tarball's.

. "$(dirname "$0")/../lib/kmemlab.sh"
km_require_root
[[ ${KMEMLAB_BACKEND:-} == host ]] || km_skip_all "runs on the host (host_tests in settings)"

TOP=$KMEMLAB_DIR
BUILD=$KMEMLAB_BUILD
HERE=$TOP/selftests/ship
if [[ ${SLOW:-0} == 1 ]]; then
	KSFT_DEFAULT="kmemlab/lab kmemlab/spf kmemlab/bgpmem"
else
	KSFT_DEFAULT="kmemlab/lab kmemlab/spf:spf_ioctl kmemlab/bgpmem"
fi
read -r -a COLLECTIONS <<<"${KSFT_COLLECTIONS:-$KSFT_DEFAULT}"
# the guest sees the host under build/ (not under the host's /tmp)
W=$BUILD/ship-ksft-$$
km_cleanup "rm -rf $W"
mkdir -p "$W"

ktap_print_header
ktap_set_plan 5

build() {
	"$TOP/tools/ship/kselftest-tarball.sh" "$TOP" "$BUILD" "$BUILD/ksrc" "$W/kselftest.tar.gz"
}
km_check "the tarball builds (make kselftest-tarball)" build

# the layout of `make kselftest-install`, nothing pointing into the checkout
layout() {
	local k=$W/kselftest-tarball.stage/kselftest f c t n=0 bad=0

	tar -tzf "$W/kselftest.tar.gz" | grep -qx 'kselftest/run_kselftest.sh' || { echo "no run_kselftest.sh"; bad=1; }
	for f in runner.sh prefix.pl module.sh ktap_helpers.sh; do
		[[ -x $k/kselftest/$f ]] || { echo "no kselftest/$f"; bad=1; }
	done
	cmp -s "$k/run_kselftest.sh" "$BUILD/ksrc/tools/testing/selftests/run_kselftest.sh" ||
		{ echo "run_kselftest.sh is not the kernel's"; bad=1; }
	while IFS=: read -r c t; do
		n=$((n + 1))
		[[ $c =~ ^kmemlab/[a-z_]+$ && -x $k/$c/$t && -f $k/$c/settings ]] ||
			{ echo "bad entry $c:$t"; bad=1; }
		grep -qv '^timeout=[0-9]*$' "$k/$c/settings" && { echo "$c/settings: not only timeout="; bad=1; }
	done <"$k/kselftest-list.txt"
	echo "$n tests in kselftest-list.txt: $(cut -d: -f1 "$k/kselftest-list.txt" | sort -u | tr '\n' ' ')"
	((n > 0)) || bad=1
	# scripts only: compiled files carry their build paths in debug info
	f=$(grep -rIl -- "$TOP" "$k" | head -3)
	[[ -z $f ]] || { echo "files naming the checkout $TOP: $f"; bad=1; }
	for c in "${COLLECTIONS[@]}"; do
		if [[ $c == *:* ]]; then
			grep -qxF "$c" "$k/kselftest-list.txt" || { echo "test $c is not in the list"; bad=1; }
		else
			grep -q "^$c:" "$k/kselftest-list.txt" || { echo "collection $c is not in the list"; bad=1; }
		fi
	done
	return $bad
}
km_check "layout of make kselftest-install: run_kselftest.sh, kselftest/, collection:test list, settings" layout

# the scratch disks the spf collection's settings ask for (disks=64M,64M;
# a LAVA device without them skips those cases, and make check has them)
out=$(LAB_MODULES=none "$TOP/tools/vm/lab" run -p nfit -t 1500 \
	--disk 64M --disk 64M -c "bash $HERE/ksft_guest.sh $W/kselftest.tar.gz ${COLLECTIONS[*]}" 2>&1)
rc=$?
# the guest's console ends its lines with CR LF
out=${out//$'\r'/}
printf '%s\n' "$out" | sed 's/^/# /'
sed -n '/^KSFT-BEGIN$/,/^KSFT-END/p' <<<"$out" >"$W/tap.log"
end=$(sed -n 's/^KSFT-END rc=//p' <<<"$out")
if ((rc == 0)) && [[ $end == 0 ]] && ! grep -q KSFT-SETUP-ERROR <<<"$out"; then
	ktap_test_pass "run_kselftest.sh ran ${COLLECTIONS[*]} from the tarball alone (no kernel report)"
else
	ktap_test_fail "run_kselftest.sh from the tarball: lab exit $rc, runner exit ${end:-none}"
fi

# the parser reads every result kselftest.h and the harness print: a
# kselftest.h skip is "ok N # SKIP reason" (its name is in the directive),
# which an earlier version dropped (spf_ioctl: 16 pass, 0 skip against make
# check's 16 pass, 1 skip; issue 20)
parser() {
	local d=$W/parser
	mkdir -p "$d/none"
	printf '%s\n' '# selftests: kmemlab/t: x' '# ok 1 a' '# ok 2 # SKIP b: reason' \
		'# not ok 3 c # exit=1' '# ok 4 d # SKIP reason' 'not ok 1 selftests: kmemlab/t: x # exit=1' >"$d/tap"
	sed 's/kmemlab\///' "$d/tap" >"$d/none/tap.log"
	printf 't\tx\tnone\t1\t1\t2\t0\n' >"$d/cases"
	printf 'FAIL\tt\tx\tnone\texit=1\n' >"$d/results"
	python3 "$HERE/ksft_tap.py" "$d/tap" "$d/cases" none | grep -qx \
		'SAME t: x: fail (cases 1 pass, 1 fail, 2 skip); fail (cases 1 pass, 1 fail, 2 skip) \[make check, none\]' || return 1
	# and sees a difference of one case's result
	sed -i 's/# ok 1 a/# not ok 1 a/' "$d/none/tap.log"
	! python3 "$HERE/ksft_tap.py" "$d/tap" "$d/cases" none >/dev/null
}
km_check "the TAP parser (LAVA's rules) counts a kselftest.h skip and sees a one-case difference" parser

# the verdicts, by LAVA's rules, against make check's: this check's when
# it ran those areas, else the newest check that did (build/vm/runs/)
areas=()
for c in "${COLLECTIONS[@]}"; do
	c=${c%%:*}
	[[ " ${areas[*]} " == *" ${c#kmemlab/} "* ]] || areas+=("${c#kmemlab/}")
done
has_areas() {
	local a

	[[ -s $1/cases ]] || return 1
	for a in "${areas[@]}"; do
		grep -q "^$a	" "$1/cases" || return 1
	done
}
cases=
for d in ${KMEMLAB_CHECK:-} $(ls -1td "$BUILD"/vm/runs/*-check-* 2>/dev/null); do
	if has_areas "$d"; then
		cases=$d/cases
		break
	fi
done
if [[ -z $cases ]]; then
	ktap_test_fail "no make check results of ${areas[*]} to compare with (run make check T=${areas[*]// /,} first)"
else
	echo "# make check's results: $cases"
	KSFT_UNCOMPARED=$(sed -n 's/^uncompared=//p' "$HERE/settings")
	export KSFT_UNCOMPARED
	km_check "LAVA's parse of the TAP gives every test and case make check's verdict" \
		python3 "$HERE/ksft_tap.py" "$W/tap.log" "$cases" nfit
fi
km_finish
