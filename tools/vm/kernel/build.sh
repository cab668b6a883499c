#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the lab's debug kernel from linux-source-6.12: the release of the
# stock headers (checked), configured as x86_64_defconfig + the kernel's
# kvm_guest.config + lab.config (what the lab boots) + debug.config (the
# kernel's checkers). The result is cached outside the checkout, keyed by
# the source package version, the compiler and the config inputs, so a
# rebuild happens only when one of them changes; LINK (build/kernel-debug)
# points at the cache entry:
#   obj/   the O= build tree (bzImage, vmlinux, what M= module builds need)
#   mod/   modules_install output (lib/modules/<release>)
#   build.log, build-secs
#
# usage: build.sh LINK
# env:   KMEMLAB_CACHE (default /var/cache/kmemlab), KSRC_TARBALL, STOCK_KVER
#        (the stock kernel whose headers the source must match; default the
#        lab's, the newest installed 6.12)
set -euo pipefail

LINK=${1:?usage: build.sh LINK}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
CACHE=${KMEMLAB_CACHE:-/var/cache/kmemlab}
FRAGMENTS=("$HERE/lab.config" "$HERE/debug.config")
# bump when the build steps below change what is built
RECIPE=1

die() {
	echo "kernel: error: $1" >&2
	[[ -n ${2:-} ]] && echo "kernel: hint: $2" >&2
	exit 1
}

[[ -r $TARBALL ]] || die "$TARBALL not found" "install linux-source-6.12 (make deps)"
command -v pahole >/dev/null || die "pahole not found (BTF)" "install pahole (make deps)"

# the same release as the stock kernel's headers
sv=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null) ||
	die "linux-source-6.12 is not installed" "make deps"
stock=$(KERNEL=stock KDIR= KVER=${STOCK_KVER:-} "$TOP/tools/vm/lab" kver) || exit 1
hpkg=$(dpkg-query -S "/lib/modules/$stock/build/" 2>/dev/null | head -1 | cut -d: -f1 || true)
if [[ -n $hpkg ]]; then
	hv=$(dpkg-query -W -f='${Version}' "$hpkg")
	[[ $hv == "$sv" ]] ||
		die "linux-source-6.12 is $sv but the stock headers ($hpkg) are $hv" \
		    "install matching versions: apt-get install linux-source-6.12=$hv"
fi

key=$( (echo "recipe $RECIPE source $sv"; gcc --version | head -1; pahole --version
	cat "${FRAGMENTS[@]}") | sha1sum | cut -c1-16)
entry=$CACHE/kernel-debug/$key
mkdir -p "$CACHE/kernel-debug" "$(dirname "$LINK")"
exec 8>"$CACHE/kernel-debug/.lock"
flock 8

if [[ -f $entry/.done ]]; then
	ln -sfn "$entry" "$LINK"
	touch "$entry/.done"
	exit 0
fi

# the source, extracted once per package version
src=$CACHE/src-$sv/linux-source-6.12
if [[ ! -f $CACHE/src-$sv/.done ]]; then
	echo "  KERNEL  extracting linux-source-6.12 $sv into $CACHE/src-$sv"
	rm -rf "$CACHE/src-$sv"
	mkdir -p "$CACHE/src-$sv"
	tar -xJf "$TARBALL" -C "$CACHE/src-$sv" || die "extracting $TARBALL failed"
	touch "$CACHE/src-$sv/.done"
fi

start=$(date +%s)
rm -rf "$entry"
mkdir -p "$entry/obj"
obj=$entry/obj
log=$entry/build.log
echo "  KERNEL  configuring the debug kernel ($sv, key $key) in $entry"
{
	make -C "$src" O="$obj" x86_64_defconfig
	KCONFIG_CONFIG=$obj/.config "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" \
		"$obj/.config" "$src/kernel/configs/kvm_guest.config" "${FRAGMENTS[@]}"
	make -C "$src" O="$obj" olddefconfig
} >"$log" 2>&1 || { tail -20 "$log" >&2; die "configuring failed (log: $log)"; }

# every option the fragments ask for must have survived olddefconfig (a
# dependency it lacks would silently drop it)
bad=()
while IFS= read -r l; do
	case $l in
	CONFIG_*=*)
		grep -qxF -- "$l" "$obj/.config" ||
			bad+=("$l (got: $(grep "^${l%%=*}=" "$obj/.config" || echo 'not set'))")
		;;
	"# CONFIG_"*" is not set")
		o=${l#\# }
		o=${o%% *}
		! grep -q "^$o=" "$obj/.config" || bad+=("$o off (got: $(grep "^$o=" "$obj/.config"))")
		;;
	esac
done < <(cat "${FRAGMENTS[@]}")
((${#bad[@]} == 0)) ||
	die "the config lacks: ${bad[*]}" "fix tools/vm/kernel/*.config (a dependency missing?)"

# progress on a long build: one line a minute
(
	while sleep 60; do
		printf '  KERNEL  building: %d objects compiled, %d s\n' \
			"$(grep -c '^  CC' "$log" 2>/dev/null)" $(($(date +%s) - start))
	done
) &
ticker=$!
trap 'kill $ticker 2>/dev/null || :' EXIT
echo "  KERNEL  building bzImage and modules with $(nproc) jobs (log: $log; about 20 min on 2 cores)"
make -C "$src" O="$obj" -j"$(nproc)" bzImage modules >>"$log" 2>&1 ||
	{ tail -30 "$log" >&2; die "the build failed (log: $log)"; }
make -C "$src" O="$obj" INSTALL_MOD_PATH="$entry/mod" INSTALL_MOD_STRIP=1 \
	modules_install >>"$log" 2>&1 ||
	{ tail -20 "$log" >&2; die "modules_install failed (log: $log)"; }
kill $ticker 2>/dev/null || :
secs=$(($(date +%s) - start))
echo "$secs" >"$entry/build-secs"
touch "$entry/.done"
ln -sfn "$entry" "$LINK"
echo "  KERNEL  built $(<"$obj/include/config/kernel.release") in ${secs} s"

# keep the two most recently used builds
n=0
for old in $(ls -1t "$CACHE"/kernel-debug/*/.done 2>/dev/null); do
	n=$((n + 1))
	((n > 2)) && rm -rf "${old%/.done}"
done
exit 0
