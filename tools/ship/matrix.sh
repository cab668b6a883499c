#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The build matrix (`make matrix`): every Debian 6.12 kernel the package
# registry serves, x every module of the tree, x (build, load, tests).
#
#   - the kernels: `apt-cache search` for linux-headers-6.12.N+deb12-FLAVOUR
#     (FLAVOUR amd64, cloud-amd64, rt-amd64); nothing is hard-coded. Point
#     releases whose linux-image is served without headers are listed as
#     such (no build possible).
#   - per kernel, its headers, their common package and linux-kbuild are
#     fetched with `apt-get download` and unpacked with `dpkg -x` into
#     $MATRIX_CACHE/root/KVER (not installed: a headers package depends on
#     its image, and an installed rt or older image would change the
#     lab's default kernel for everyone on the machine);
#   - bgpmem's private libnvdimm headers come from linux-source-6.12 of the
#     same version (apt-get download linux-source-6.12=VERSION), through
#     tools/vm/ksrc.sh and its version check; a version the registry does
#     not serve leaves bgpmem "no source" for that kernel;
#   - every module of the Kbuild (the shipped and the test-only ones) is
#     built in a copy of the tree (the checkout's build is not touched),
#     one kernel at a time (make -j$(nproc)), at nice 10;
#   - the kernels named by --boot (default: the oldest and newest amd64 and
#     the newest rt-amd64; newest-rt: that one; none) also get their linux-image unpacked and a lab
#     run on it (LAB_KROOT: tools/vm/lab) of the areas in --areas, which
#     fills the load and tests columns; the other kernels are build-only
#     ("-").
#
# Writes $OUT (default build/matrix/matrix.txt) and prints it.
#
# --fetch-only downloads the packages a run needs (headers, linux-source,
# the images of --boot) into $CACHE/debs and stops: CI runs it beside the
# stock suite, on the network time the suite leaves idle.
#
# usage: matrix.sh [--boot KVER,...|newest-rt|none] [--areas A,B|all] [--only KVER,...]
#                  [--out FILE] [--fetch-only]
set -uo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${MATRIX_CACHE:-/var/cache/kmemlab/matrix}
OUT=$TOP/build/matrix/matrix.txt
BOOT=default
AREAS=all
ONLY=
FETCH_ONLY=0

die() {
	echo "matrix: error: $1" >&2
	[[ -n ${2:-} ]] && echo "matrix: hint: $2" >&2
	exit 2
}

say() {
	echo "matrix: $*" >&2
}

usage() {
	sed -n '3,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"
}

while (($#)); do
	case $1 in
	--boot) BOOT=${2:?--boot needs a list}; shift ;;
	--areas) AREAS=${2:?--areas needs a list}; shift ;;
	--only) ONLY=${2:?--only needs a list}; shift ;;
	--out) OUT=${2:?--out needs a file}; shift ;;
	--fetch-only) FETCH_ONLY=1 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument '$1'" "see matrix.sh --help" ;;
	esac
	shift
done
((EUID == 0)) || die "runs as root (apt-get download into $CACHE, the lab)" "run as root"
for t in apt-cache apt-get dpkg-deb rsync; do
	command -v $t >/dev/null || die "$t not found" "apt-get install ${t/dpkg-deb/dpkg}"
done
mkdir -p "$CACHE/debs" "$CACHE/root" "$CACHE/src" "$CACHE/results" "$(dirname "$OUT")"

# ---- discovery -----------------------------------------------------------

# every linux-headers-6.12.N+deb12-FLAVOUR the registry serves, oldest first
discover() {
	apt-cache search --names-only '^linux-headers-6\.12\.[0-9]+\+deb12-(amd64|cloud-amd64|rt-amd64)$' |
		awk '{print $1}' | sed 's/^linux-headers-//' | sort -V -u
}
# the point releases whose image is served without any headers
imageonly() {
	apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-(amd64|cloud-amd64|rt-amd64)$' |
		awk '{print $1}' | sed 's/^linux-image-//' | sort -V -u
}

mapfile -t KVERS < <(discover)
ALL_KVERS=("${KVERS[@]}")
((${#KVERS[@]})) || die "apt-cache lists no linux-headers-6.12.*+deb12-* package" "run apt-get update"
if [[ -n $ONLY ]]; then
	sel=()
	for k in "${KVERS[@]}"; do
		[[ ,$ONLY, == *,"$k",* ]] && sel+=("$k")
	done
	KVERS=("${sel[@]}")
	((${#KVERS[@]})) || die "--only $ONLY: none of them is served"
fi
flavour() {
	local k=${1#*+deb12-}
	echo "$k"
}
pick() {	# pick FLAVOUR oldest|newest
	local k list=()

	for k in "${KVERS[@]}"; do
		[[ $(flavour "$k") == "$1" ]] && list+=("$k")
	done
	((${#list[@]})) || return 0
	if [[ $2 == oldest ]]; then
		echo "${list[0]}"
	else
		echo "${list[-1]}"
	fi
}
case $BOOT in
default) BOOT=$(printf '%s,' "$(pick amd64 oldest)" "$(pick amd64 newest)" "$(pick rt-amd64 newest)") ;;
newest-rt) BOOT=$(pick rt-amd64 newest) ;;
none) BOOT= ;;
esac
say "kernels served with headers: ${#KVERS[@]} (${KVERS[0]} ... ${KVERS[-1]}); boot-tested: ${BOOT:-none}"

# ---- fetching --------------------------------------------------------------

# pkgver KVER: the Debian version of its headers package
pkgver() {
	apt-cache show "linux-headers-$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1
}

# fetch PKG=VERSION...: into $CACHE/debs (once); prints the .deb paths
fetch() {
	local p n v f out=()

	for p in "$@"; do
		n=${p%%=*}
		v=${p#*=}
		f=$(ls "$CACHE/debs/${n}_${v//:/%3a}_"*.deb 2>/dev/null | head -1)
		if [[ -z $f ]]; then
			(cd "$CACHE/debs" && apt-get download -q "$p" >/dev/null 2>"$CACHE/debs/.err") || {
				sed 's/^/    /' "$CACHE/debs/.err" >&2
				return 1
			}
			f=$(ls "$CACHE/debs/${n}_${v//:/%3a}_"*.deb 2>/dev/null | head -1)
		fi
		[[ -n $f ]] || return 1
		out+=("$f")
	done
	printf '%s\n' "${out[@]}"
}

# headers KVER: the headers tree, unpacked, usable as KDIR; prints it
headers() {
	local k=$1 v root common debs d

	v=$(pkgver "$k")
	root=$CACHE/root/$k
	if [[ ! -f $root/.headers ]]; then
		# 6.12.107+deb12-amd64 -> linux-headers-6.12.107+deb12-common
		common=linux-headers-${k%%+*}+deb12-common
		[[ $(flavour "$k") == rt-amd64 ]] && common+=-rt
		mapfile -t debs < <(fetch "linux-headers-$k=$v" "$common=$v" "linux-kbuild-${k%%+*}+deb12=$v") ||
			return 1
		((${#debs[@]} == 3)) || return 1
		mkdir -p "$root"
		for d in "${debs[@]}"; do
			dpkg-deb -x "$d" "$root" || return 1
		done
		# the flavour's Makefile includes the common one by its absolute path
		sed -i "s|^include /usr/src/|include $root/usr/src/|" "$root/usr/src/linux-headers-$k/Makefile"
		mkdir -p "$root/lib/modules/$k"
		ln -sfn "../../../usr/src/linux-headers-$k" "$root/lib/modules/$k/build"
		echo "$v" >"$root/.headers"
	fi
	echo "$root/usr/src/linux-headers-$k"
}

# image KVER: unpack its linux-image package into the same root
image() {
	local k=$1 v root debs

	v=$(pkgver "$k")
	root=$CACHE/root/$k
	[[ -f $root/.image ]] && return 0
	mapfile -t debs < <(fetch "linux-image-$k=$v") || return 1
	dpkg-deb -x "${debs[0]}" "$root" || return 1
	[[ -r $root/boot/vmlinuz-$k && -d $root/lib/modules/$k/kernel ]] || return 1
	echo "$v" >"$root/.image"
}

# ksrc KVER KDIR: the parts of linux-source-6.12 of the same version
# (tools/vm/ksrc.sh, with its check); prints the directory, or fails with
# the reason on stderr
ksrc() {
	local k=$1 kdir=$2 v src debs

	v=$(pkgver "$k")
	src=$CACHE/src/$v
	if [[ ! -f $src/ksrc/.kmemlab-ksrc ]]; then
		if ! apt-cache show "linux-source-6.12=$v" >/dev/null 2>&1; then
			echo "linux-source-6.12 $v is not served (apt-cache madison linux-source-6.12)" >&2
			return 1
		fi
		if [[ ! -r $src/pkg/usr/src/linux-source-6.12.tar.xz ]]; then
			mapfile -t debs < <(fetch "linux-source-6.12=$v") || return 1
			mkdir -p "$src/pkg"
			dpkg-deb -x "${debs[0]}" "$src/pkg" || return 1
		fi
		KSRC_TARBALL=$src/pkg/usr/src/linux-source-6.12.tar.xz KDIR=$kdir \
			"$TOP/tools/vm/ksrc.sh" "$k" "$src/ksrc" >/dev/null || return 1
		# the tarball stays: the boot's `make all` checks build/ksrc
		# against it (tools/vm/ksrc.sh)
	fi
	echo "$src/ksrc"
}

# ---- building --------------------------------------------------------------

# the modules' sources (the Kbuild, include/ and the modules' directories,
# as they are now): a build of the same sources against the same packages
# is not redone
# shellcheck disable=SC2046 # the Kbuild's directories, one word each
SRCKEY=$(cd "$TOP" && find Kbuild include $(sed -n 's/^obj-m += \(.*\)\/$/\1/p' Kbuild) \
	-type f ! -name '*.o' ! -name '*.ko' ! -name '*.mod*' ! -name '.*' ! -name 'modules.order' \
	! -name Module.symvers -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-16)

# the modules of the Kbuild, as modules.order names them (after a build of
# the checkout; else from the Kbuild's obj-m directories)
mapfile -t MODULES < <(cd "$TOP" && for d in $(sed -n 's/^obj-m += \(.*\)\/$/\1/p' Kbuild); do
	sed -n 's/^obj-m += \(.*\)\.o$/\1/p' "$d/Kbuild" "$d/Makefile" 2>/dev/null | head -1
done)

# build KVER: every module against the kernel's headers in a copy of the
# tree; writes $CACHE/results/KVER/build (MODULE RESULT NOTE)
build() {
	local k=$1 res=$CACHE/results/$1 kdir src tree m d note ksrc_err=

	mkdir -p "$res"
	# the same sources against the same packages: the last result stands
	if [[ -s $res/build && $(cat "$res/build.key" 2>/dev/null) == "$SRCKEY $(pkgver "$k")" ]]; then
		return
	fi
	rm -f "$res/build.key"
	: >"$res/build"
	if ! kdir=$(headers "$k"); then
		for m in "${MODULES[@]}"; do
			printf '%s\tfail\theaders packages not fetched\n' "$m" >>"$res/build"
		done
		return
	fi
	tree=$CACHE/build/$k
	sync "$tree"
	if src=$(ksrc "$k" "$kdir" 2>"$res/ksrc.err"); then
		ln -sfn "$src" "$tree/build/ksrc"
	else
		ksrc_err=$(tr '\n' ' ' <"$res/ksrc.err" | sed 's/ksrc: //g; s/ *$//')
	fi
	# one Kbuild pass builds all modules, and a compile error in one
	# directory stops modpost for all: a directory that failed is dropped
	# from the copy's Kbuild and the others are built again
	: >"$res/build.log"
	local pass dirs failed=() qt
	qt=$(sed 's/[.+]/\\&/g' <<<"$tree")
	for pass in 1 2 3 4 5; do
		echo "== pass $pass" >>"$res/build.log"
		nice -n 10 make -k -j"$(nproc)" -C "$kdir" M="$tree" KMEMLAB_KSRC="$tree/build/ksrc" modules \
			>>"$res/build.log" 2>&1 && break
		dirs=()
		for d in $(sed -n 's/^obj-m += \(.*\)\/$/\1/p' "$tree/Kbuild"); do
			sed -n "/^== pass $pass\$/,\$p" "$res/build.log" |
				grep -qE "^$qt/$d/[^ ]*: (fatal )?error:|\[[^]]*$qt/$d(/[^]]*)?\] Error" &&
				dirs+=("$d")
		done
		((${#dirs[@]})) || break
		for d in "${dirs[@]}"; do
			failed+=("$d")
			sed -i "\|^obj-m += $d/\$|d" "$tree/Kbuild"
		done
	done
	for m in "${MODULES[@]}"; do
		d=$(cd "$TOP" && for x in $(sed -n 's/^obj-m += \(.*\)\/$/\1/p' Kbuild); do
			grep -qs "^obj-m += $m\.o$" "$x/Kbuild" "$x/Makefile" && echo "$x" && break
		done)
		if [[ -f $tree/$d/$m.ko && " ${failed[*]} " != *" $d "* ]]; then
			note=$(modinfo -F vermagic "$tree/$d/$m.ko" | cut -d' ' -f1)
			[[ $note == "$k" ]] && printf '%s\tok\t\n' "$m" >>"$res/build" ||
				printf '%s\tfail\tvermagic %s\n' "$m" "$note" >>"$res/build"
		elif [[ $m == bgpmem && -n $ksrc_err ]]; then
			printf '%s\tno-src\t%s\n' "$m" "$ksrc_err" >>"$res/build"
		else
			note=$(grep -m1 -E "(error|ERROR)[: ]" "$res/build.log" | grep -E "$d/|$m" | head -1)
			[[ -n $note ]] || note=$(grep -m1 -E "$d/.*(error|ERROR)|ERROR: modpost: .*$m" "$res/build.log")
			[[ -n $note ]] || note=$(grep -m1 -E "kmemlab: .*$m|kmemlab: $d" "$res/build.log")
			printf '%s\tfail\t%s\n' "$m" "${note:-see $res/build.log}" >>"$res/build"
		fi
	done
	printf '%s\n' "${failed[@]}" >"$res/failed-dirs"
	echo "$SRCKEY $(pkgver "$k")" >"$res/build.key"
}

# sync TREE [RES]: the copy of the checkout a kernel builds and boots in;
# with RES, without the module directories that did not build (RES/failed-dirs)
sync() {
	local d

	mkdir -p "$1"
	rsync -a --delete --exclude=/build --exclude=/.git --exclude='*.o' --exclude='*.ko' \
		--exclude='*.mod*' --exclude='.*.cmd' --exclude=modules.order --exclude=Module.symvers \
		"$TOP/" "$1/"
	mkdir -p "$1/build"
	[[ -n ${2:-} && -s $2/failed-dirs ]] || return 0
	while read -r d; do
		[[ -n $d ]] && sed -i "\|^obj-m += $d/\$|d" "$1/Kbuild"
	done <"$2/failed-dirs"
}

# ---- booting ---------------------------------------------------------------

# boot KVER: the lab on the registry's image of KVER, with the modules of
# build(): `make all` in the copy tree for the tools and selftests, then
# `tools/vm/lab check` of the areas; writes $CACHE/results/KVER/{load,tests}
boot() {
	local k=$1 res=$CACHE/results/$1 tree=$CACHE/build/$1 kdir a args=() run

	kdir=$CACHE/root/$k/lib/modules/$k/build
	: >"$res/tests"
	if ! image "$k"; then
		echo "image	fail	linux-image-$k not fetched" >"$res/tests"
		return
	fi
	[[ $AREAS == all ]] || for a in ${AREAS//,/ }; do args+=(-a "$a"); done
	# the tests and tools of the checkout as it is now
	sync "$tree" "$res"
	say "$k: building tools and selftests in $tree, then the lab (areas: $AREAS)"
	KSRC_TARBALL=$CACHE/src/$(pkgver "$k")/pkg/usr/src/linux-source-6.12.tar.xz
	export KSRC_TARBALL
	(cd "$tree" && nice -n 10 make -s all KDIR="$kdir" >"$res/make-all.log" 2>&1) || true
	(cd "$tree" && nice -n 10 make -s nfit_test KDIR="$kdir" >"$res/nfit_test.log" 2>&1) || true
	# load: every module by name, on the NVDIMM boot, its message if refused
	LAB_KROOT=$CACHE/root/$k KVER=$k "$tree/tools/vm/lab" run -p nfit -t 600 \
		-c "bash $tree/tools/ship/matrix-load.sh ${MODULES[*]}" 2>&1 | tr -d '\r' >"$res/load.log"
	grep '^LOAD' "$res/load.log" >"$res/load"
	LAB_KROOT=$CACHE/root/$k KVER=$k "$tree/tools/vm/lab" check "${args[@]}" >"$res/check.log" 2>&1
	echo "$?" >"$res/check.rc"
	# the check's own run (its host tests start checks of fixtures too)
	run=$(sed -n '1,5s/^lab: kernel .*; logs: //p' "$res/check.log" | head -1)
	[[ -n $run ]] && cp "$run/results" "$res/tests" && echo "$run" >"$res/run"
}

# ---- the table -----------------------------------------------------------

table() {
	local k m b n load tests area why fb

	printf 'kmemlab build matrix, %s (tools/ship/matrix.sh; registry: %s)\n\n' \
		"$(date -u '+%Y-%m-%d %H:%M UTC')" \
		"$(apt-cache policy "linux-headers-${KVERS[-1]}" | sed -n 's/^ *[0-9]\+ \(http[^ ]*\) .*/\1/p' | head -1)"
	printf 'build: the module built against the kernel'"'"'s headers package (and, for\n'
	printf 'bgpmem, the same version'"'"'s linux-source-6.12); load: modprobe in a lab\n'
	printf 'boot of the registry'"'"'s image (- not booted); tests: make check'"'"'s results\n'
	printf 'of the module'"'"'s area in that boot; * known failure (tools/ship/matrix.expect)\n\n'
	printf '%-28s %-16s %-8s %-8s %-18s %s\n' kernel module build load tests note
	for k in "${KVERS[@]}"; do
		for m in "${MODULES[@]}"; do
			b=$(awk -F'\t' -v m="$m" '$1 == m {print $2; exit}' "$CACHE/results/$k/build" 2>/dev/null)
			n=$(awk -F'\t' -v m="$m" '$1 == m {print $3; exit}' "$CACHE/results/$k/build" 2>/dev/null)
			load=- tests=- fb=
			# a module that did not build is neither loaded nor tested;
			# a kernel not booted in this run has no load/tests cells
			# (an earlier run's are of other module sources)
			if [[ ,$BOOT, == *,"$k",* && -s $CACHE/results/$k/tests &&
			      $b == ok ]]; then
				area=$(area_of "$m")
				load=$(load_of "$k" "$m")
				tests=$(awk -F'\t' -v a="$area" '$2 == a {n[$1]++} END {
					t = n["PASS"] + n["FAIL"] + n["SKIP"]
					if (t) printf "%d/%d pass", n["PASS"], t; else printf "-"
					if (n["FAIL"]) printf ", %d fail", n["FAIL"] }' "$CACHE/results/$k/tests")
				# the boots the failures were in
				fb=$(awk -F'\t' -v a="$area" '$2 == a && $1 == "FAIL" {print $4}' \
					"$CACHE/results/$k/tests" | sort -u | tr '\n' ',' | sed 's/,$//')
				[[ -z $fb ]] || tests+=" [$fb]"
			fi
			if [[ $b == fail ]] && why=$(known "$k" "$m" build); then
				b="fail*" n="known: $why"
			elif [[ $b != ok ]]; then
				FAILED+=("$k $m build")
			fi
			if [[ $load == fail || $load == refused ]]; then
				if why=$(known "$k" "$m" load); then
					load="$load*"
				else
					FAILED+=("$k $m load")
				fi
			fi
			# (- : the module's area was not in the boot's --areas)
			if [[ $tests == *fail* ]]; then
				if why=$(known "$k" "$m" tests) || { [[ $fb != *,* ]] && why=$(known "$k" "$m" "tests@$fb"); }; then
					tests+="*"
					n+="${n:+; }known: $why"
				else
					FAILED+=("$k $m tests")
				fi
			fi
			printf '%-28s %-16s %-8s %-8s %-18s %s\n' "$k" "$m" "${b:-?}" "$load" "$tests" "$n"
		done
	done
	for k in $(imageonly); do
		printf '%s\n' "${ALL_KVERS[@]}" | grep -qx "$k" ||
			printf '%-28s %-16s %-8s %-8s %-18s %s\n' "$k" "(all)" "-" "-" "-" "image served without headers: no build"
	done
}

# known KVER MODULE COLUMN: the reason, if tools/ship/matrix.expect lists
# the failure
known() {
	local re m c why

	while IFS=$'\t' read -r re m c why; do
		[[ $re == '#'* || -z $re ]] && continue
		[[ $2 == "$m" && $3 == "$c" && $1 =~ $re ]] && { echo "$why"; return 0; }
	done <"$TOP/tools/ship/matrix.expect"
	return 1
}

# the selftest area of a module
area_of() {
	case $1 in
	bgpmem) echo bgpmem ;;
	spf_harness) echo spf ;;
	memcg_dirty | memcg_dirty_busy) echo memcg_dirty ;;
	kmemlab_labtest) echo lab ;;
	*) echo "$1" ;;
	esac
}

# load_of KVER MODULE: modprobe's result in the load boot (boot())
load_of() {
	local r

	r=$(awk -F'\t' -v m="$2" '$1 == "LOAD" && $2 == m {print $3; exit}' "$CACHE/results/$1/load" 2>/dev/null)
	echo "${r:-?}"
}

# prefetch: every package the build and boot steps unpack, downloaded only
prefetch() {
	local k v common n=0 bad=0

	for k in "${KVERS[@]}"; do
		v=$(pkgver "$k")
		common=linux-headers-${k%%+*}+deb12-common
		[[ $(flavour "$k") == rt-amd64 ]] && common+=-rt
		fetch "linux-headers-$k=$v" "$common=$v" "linux-kbuild-${k%%+*}+deb12=$v" >/dev/null ||
			bad=$((bad + 1))
		# the source is optional (a version the registry lacks is "no source")
		if apt-cache show "linux-source-6.12=$v" >/dev/null 2>&1; then
			fetch "linux-source-6.12=$v" >/dev/null || bad=$((bad + 1))
		fi
		if [[ ,$BOOT, == *,"$k",* ]]; then
			fetch "linux-image-$k=$v" >/dev/null || bad=$((bad + 1))
		fi
		n=$((n + 1))
		say "fetched $n of ${#KVERS[@]} kernels' packages ($k)"
	done
	((bad == 0)) || say "$bad package sets not fetched (the build step reports them)"
	return 0
}

main() {
if ((FETCH_ONLY)); then
	prefetch
	return
fi
for k in "${KVERS[@]}"; do
	say "$k: build"
	build "$k"
done
for k in ${BOOT//,/ }; do
	printf '%s\n' "${KVERS[@]}" | grep -qx "$k" || die "--boot $k: not a served kernel"
	say "$k: boot test"
	boot "$k"
done
FAILED=()
table >"$OUT"
cat "$OUT"
echo "matrix: table in $OUT; logs in $CACHE/results/KVER/" >&2
if ((${#FAILED[@]})); then
	printf 'matrix: failed (not in tools/ship/matrix.expect): %s\n' "${FAILED[@]}" >&2
	return 1
fi
}
# (a function: an edit of this file does not change a run in progress)
main
exit
