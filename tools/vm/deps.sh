#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages kmemlab needs, idempotently. Quick when all are
# present: only dpkg-query runs.
set -euo pipefail

PKGS=(
	# the target kernel, its headers and its source (kselftest headers,
	# private driver headers, checkpatch, coccinelle, tools/testing/nvdimm)
	linux-image-6.12-amd64 linux-headers-6.12-amd64 linux-source-6.12
	# building modules and tools
	gcc make libc6-dev bc flex bison libelf-dev pahole kmod xz-utils
	sparse coccinelle ocaml-nox python3 pyflakes3
	# the vhost-user fuzz targets (libFuzzer, ASan, UBSan)
	clang libclang-rt-14-dev
	# shipping: the DKMS package (selftests/ship)
	dkms
	# the VM
	qemu-system-x86 qemu-utils busybox-static cpio
	# used in the guest from the host root
	ndctl daxctl e2fsprogs xfsprogs fio trace-cmd util-linux procps
	iproute2 gawk file rsync
	# spf-bench --plot (PNG)
	gnuplot-nox
)

missing=()
for p in "${PKGS[@]}"; do
	[[ $p == \#* ]] && continue
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $st == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

if ((EUID != 0)); then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: hint: run 'make deps' as root (it uses apt-get)" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# refresh package lists if they are older than a day or absent
if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1) ]]; then
	apt-get update -q
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
