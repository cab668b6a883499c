# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# kmemlab/env.sh of the kselftest tarball (tools/ship/kselftest-tarball.sh),
# sourced by every test entry before it runs the test:
#   - KMEMLAB_DIR is the tarball's tree/ (the modules at their build paths,
#     where the tests' insmod fallbacks look), KMEMLAB_BIN its build/bin (the
#     tools), both on the tarball only;
#   - the modules become loadable by name (modprobe), once per boot: if
#     the running kernel does not have them already, they are built for it
#     (vermagic) and /lib/modules/$(uname -r) is writable, they are copied to
#     updates/kmemlab-kselftest/ and depmod runs. KMEMLAB_INSTALL_MODULES=0
#     leaves /lib/modules alone (tests then insmod from tree/, and those that
#     need modprobe skip or fail naming it).
#   - KMEMLAB_BACKEND (nfit, e820, nfit_test, cxl, none: the NVDIMM the tests may
#     use, as the lab names it) is found from the libnvdimm buses unless given.
# A test that needs a module or device this machine lacks skips with the
# reason.

KMEMLAB_KSFT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export KMEMLAB_KSFT
export KMEMLAB_DIR=$KMEMLAB_KSFT/tree
export KMEMLAB_BIN=$KMEMLAB_DIR/build/bin
export KMEMLAB_RESULTS=${KMEMLAB_RESULTS:-/tmp/kmemlab-results}
mkdir -p "$KMEMLAB_RESULTS" 2>/dev/null
PATH=$KMEMLAB_BIN:$PATH

km_ksft_install_modules() {
	local kver mods=() f m v dir

	[[ ${KMEMLAB_INSTALL_MODULES:-1} == 1 && $EUID == 0 ]] || return 0
	kver=$(uname -r)
	dir=/lib/modules/$kver/updates/kmemlab-kselftest
	mapfile -t mods < <(find "$KMEMLAB_DIR" -name '*.ko' | sort)
	((${#mods[@]})) || return 0
	# already there (ours, or the lab's, or an earlier test's)
	[[ -f /run/kmemlab-kselftest.modules ]] &&
		cmp -s /run/kmemlab-kselftest.modules <(sha1sum "${mods[@]}") && return 0
	for f in "${mods[@]}"; do
		m=$(basename "$f" .ko)
		if modinfo -n "$m" >/dev/null 2>&1 && [[ $(modinfo -n "$m") != "$dir/"* ]]; then
			echo "# kmemlab: $m is installed for $kver already ($(modinfo -n "$m")): using that one"
			continue
		fi
		v=$(modinfo -F vermagic "$f" 2>/dev/null)
		if [[ ${v%% *} != "$kver" ]]; then
			echo "# kmemlab: the tarball's $m.ko is built for ${v%% *}, this kernel is $kver: not installed"
			continue
		fi
		mkdir -p "$dir" 2>/dev/null && cp "$f" "$dir/" 2>/dev/null || {
			echo "# kmemlab: /lib/modules/$kver is not writable: $m not installed (tests insmod it from the tarball)"
			return 0
		}
	done
	[[ -d $dir ]] && depmod -a "$kver" 2>/dev/null
	sha1sum "${mods[@]}" >/run/kmemlab-kselftest.modules 2>/dev/null
	return 0
}
km_ksft_install_modules

# The NVDIMM the tests may use, as the lab names it (KMEMLAB_BACKEND), from
# the machine's libnvdimm buses when not given: nfit_test's, an ACPI NFIT,
# e820 (memmap=nn!ss), a CXL pmem region's (cxl_pmem), or none.
km_ksft_backend() {
	local p b=none

	if [[ -d /sys/module/nfit_test ]]; then
		echo nfit_test
		return
	fi
	for p in /sys/bus/nd/devices/ndbus*/provider; do
		[[ -r $p ]] || continue
		case $(<"$p") in
		ACPI.NFIT) b=nfit ;;
		e820) [[ $b == none ]] && b=e820 ;;
		CXL) [[ $b == none ]] && b=cxl ;;
		esac
	done
	echo "$b"
}
if [[ -z ${KMEMLAB_BACKEND:-} ]]; then
	KMEMLAB_BACKEND=$(km_ksft_backend)
	export KMEMLAB_BACKEND
fi
