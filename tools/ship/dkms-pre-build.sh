#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# dkms.conf's PRE_BUILD: extract bgpmem's private libnvdimm headers (and the
# rest of tools/vm/ksrc.sh's parts) from linux-source-6.12 into build/ksrc of
# the DKMS build directory, after checking that the source is the release of
# the kernel's headers. DKMS ignores a PRE_BUILD's exit status, so the reason
# of a failure is also left in build/ksrc.error, which the Kbuild
# (KMEMLAB_KSRC_CHECK=1) prints when it stops.
#
# usage: dkms-pre-build.sh KVER KERNEL_SOURCE_DIR   (run in the build dir)
set -uo pipefail

KVER=${1:?usage: dkms-pre-build.sh KVER KERNEL_SOURCE_DIR}
export KDIR=${2:?usage: dkms-pre-build.sh KVER KERNEL_SOURCE_DIR}

rm -f build/ksrc.error
mkdir -p build
if ! tools/vm/ksrc.sh "$KVER" build/ksrc 2>build/ksrc.err; then
	cat build/ksrc.err >&2
	# one line for make's $(error)
	tr '\n' ' ' <build/ksrc.err | sed 's/ *$//' >build/ksrc.error
	[[ -s build/ksrc.error ]] || echo "tools/vm/ksrc.sh failed" >build/ksrc.error
	exit 1
fi
cat build/ksrc.err >&2
rm -f build/ksrc.err
