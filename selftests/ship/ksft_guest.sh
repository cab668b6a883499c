#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest half of kselftest_tarball.sh, as a farm's DUT would run the
# tarball: unpack it in tmpfs, and run the kernel's run_kselftest.sh on the
# given collections with a clean environment (nothing of the lab's: no
# KMEMLAB_DIR/BIN, no PATH into the checkout). The lab staged none of our
# modules (LAB_MODULES=none); /lib/modules gets a writable overlay, as a
# DUT's root file system is writable.
#
# The NVDIMM backend is not passed: the tarball's env.sh finds it.
#
# usage: ksft_guest.sh TARBALL COLLECTION[:TEST]...

TARBALL=${1:?usage: ksft_guest.sh TARBALL COLLECTION...}
shift
kver=$(uname -r)
W=$(mktemp -d /tmp/ksft.XXXXXX)

for m in kmemlab_labtest bgpmem spf_harness memcg_dirty; do
	if modinfo -n "$m" >/dev/null 2>&1; then
		echo "KSFT-SETUP-ERROR: $m is installed in the guest before the tarball ($(modinfo -n $m))"
		exit 1
	fi
done
mkdir -p "$W/up" "$W/work" "$W/run"
mount -t overlay -o "lowerdir=/lib/modules/$kver,upperdir=$W/up,workdir=$W/work" \
	overlay "/lib/modules/$kver" || { echo "KSFT-SETUP-ERROR: cannot overlay /lib/modules/$kver"; exit 1; }
tar -xzf "$TARBALL" -C "$W/run" || { echo "KSFT-SETUP-ERROR: cannot unpack $TARBALL"; exit 1; }
args=()
for c in "$@"; do
	# COLLECTION, or COLLECTION:TEST (one test of it)
	[[ $c == *:* ]] && args+=(-t "$c") || args+=(-c "$c")
done
cd "$W/run/kselftest" || exit 1
echo "KSFT-BEGIN"
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
	./run_kselftest.sh "${args[@]}"
rc=$?
echo "KSFT-END rc=$rc"
