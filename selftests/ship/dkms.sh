#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# DKMS ships what it must, and the lab runs on what DKMS built. From a fresh
# copy of the tree (git's files, as a clone has them), in a temporary DKMS
# tree, source tree, install tree and signing key (the host's /var/lib/dkms,
# /usr/src and /lib/modules are left as found):
#   - PRE_BUILD without linux-source-6.12 stops the build with a message
#     naming the package;
#   - a non-6.12 kernel is refused by DKMS (BUILD_EXCLUSIVE_KERNEL, exit 77);
#   - dkms add/build/install installs bgpmem, spf_harness and memcg_dirty
#     and no test-only module, each with the kernel's vermagic;
#   - `make install DESTDIR=` of another fresh copy installs the same three
#     modules and the tools, `make uninstall` removes every file again;
#   - a lab boot with those modules staged (LAB_MODULES) instead of the
#     build tree's: each is the DKMS build and loads, answers one request and
#     unloads (dkms_guest.sh).

. "$(dirname "$0")/../lib/kmemlab.sh"
km_require_root
[[ ${KMEMLAB_BACKEND:-} == host ]] || km_skip_all "runs on the host (host_tests in settings)"
[[ ${KMEMLAB_KERNEL:-stock} == stock ]] ||
	km_skip_all "DKMS builds for Debian's kernel packages, not the ${KMEMLAB_KERNEL} kernel"
km_require_cmd dkms git xz

TOP=$KMEMLAB_DIR
KVER=${KMEMLAB_KVER:?}
SHIPPED=(bgpmem spf_harness memcg_dirty)
TESTONLY=(kmemlab_labtest memcg_dirty_busy)
T=$(mktemp -d /tmp/kmemlab-dkms.XXXXXX)
km_cleanup "rm -rf $T"
mkdir -p "$T"/{tree,src,dkms,key,ko} "$T/inst/$KVER"
# a signing key of our own: dkms would create one in /var/lib/dkms
export mok_signing_key=$T/key/mok.key mok_certificate=$T/key/mok.pub
DK=(dkms --dkmstree "$T/dkms" --sourcetree "$T/src" --installtree "$T/inst")
VER=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$TOP/dkms.conf")
MOD=kmemlab/$VER

ktap_print_header
ktap_set_plan 10

# the tree as a clone has it: tracked and new files, nothing ignored
# (build/, objects)
(cd "$TOP" && git ls-files -co --exclude-standard -z) |
	(cd "$TOP" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
	(cd "$TOP" && xargs -0 -r cp --parents -t "$T/tree/")
km_check "dkms add of a fresh copy of the tree" "${DK[@]}" add "$T/tree"

# PRE_BUILD without the kernel source: the build stops, naming the package
nosrc() {
	local out rc log=$T/dkms/kmemlab/$VER/build/make.log

	out=$(KSRC_TARBALL=$T/none.tar.xz "${DK[@]}" build "$MOD" -k "$KVER" 2>&1)
	rc=$?
	echo "$out"
	echo "make.log:"
	cat "$log" 2>/dev/null
	((rc != 0)) && [[ $out == *"install the package linux-source-6.12"* ]] &&
		grep -q "kmemlab: no private libnvdimm headers in build/ksrc: .*linux-source-6.12" "$log" &&
		[[ ! -d $T/dkms/kmemlab/$VER/$KVER ]]
}
km_check "without linux-source-6.12 the build stops, naming the package" nosrc

# another kernel series: refused by DKMS itself, before any compiler runs
other() {
	local out rc

	out=$("${DK[@]}" build "$MOD" -k 6.1.0-99-amd64 --kernelsourcedir "/lib/modules/$KVER/build" 2>&1)
	rc=$?
	echo "$out"
	((rc == 77)) && [[ $out == *"BUILD_EXCLUSIVE directive which does not match"* ]]
}
km_check "a non-6.12 kernel is refused by BUILD_EXCLUSIVE_KERNEL (exit 77)" other

t0=$SECONDS
km_check "dkms build $MOD for $KVER" nice -n 5 "${DK[@]}" build "$MOD" -k "$KVER" ||
	cat "$T/dkms/kmemlab/$VER/build/make.log" 2>/dev/null | tail -30 | sed 's/^/# /'
echo "# dkms build: $((SECONDS - t0)) s"
km_check "dkms install (into the temporary install tree)" \
	"${DK[@]}" install "$MOD" -k "$KVER" --no-depmod

# what was installed: exactly the shipped modules, built for KVER
installed() {
	local m f ok=0 v

	for m in "${SHIPPED[@]}"; do
		f=$(find "$T/inst/$KVER" -name "$m.ko*" | head -1)
		if [[ -z $f ]]; then
			echo "$m: not installed"
			ok=1
			continue
		fi
		v=$(modinfo -F vermagic "$f")
		echo "$m: ${f#"$T"/inst/} vermagic $v"
		[[ ${v%% *} == "$KVER" ]] || ok=1
		case $f in
		*.ko.xz) xz -dc "$f" >"$T/ko/$m.ko" ;;
		*) cp "$f" "$T/ko/$m.ko" ;;
		esac
	done
	for m in "${TESTONLY[@]}"; do
		f=$(find "$T/inst" "$T/dkms" -name "$m.ko*" | head -1)
		[[ -z $f ]] || { echo "test-only module shipped: $f"; ok=1; }
	done
	return $ok
}
km_check "installed: ${SHIPPED[*]} with vermagic $KVER, no test-only module" installed

# make install without DKMS, staged in DESTDIR; make uninstall undoes it
cp -a "$T/tree" "$T/tree2"
D=$T/destdir
mkinstall() {
	local f m n=0 v

	nice -n 5 make -s -C "$T/tree2" KVER="$KVER" DESTDIR="$D" install >"$T/install.log" 2>&1 ||
		{ tail -30 "$T/install.log"; return 1; }
	tail -3 "$T/install.log"
	for f in "$D/lib/modules/$KVER/updates/kmemlab/"*; do
		m=$(basename "$f" .ko)
		v=$(modinfo -F vermagic "$f")
		echo "$m: vermagic $v"
		[[ " ${SHIPPED[*]} " == *" $m "* && ${v%% *} == "$KVER" ]] || return 1
		n=$((n + 1))
	done
	((n == ${#SHIPPED[@]})) || { echo "$n modules installed, want ${#SHIPPED[@]}"; return 1; }
	for f in bgpmemctl spf-bench memcg-dirtyctl; do
		[[ -x $D/usr/local/bin/$f ]] || { echo "$f not installed"; return 1; }
	done
}
km_check "make install (DESTDIR): the shipped modules for $KVER and the tools" mkinstall
mkuninstall() {
	make -s -C "$T/tree2" KVER="$KVER" DESTDIR="$D" uninstall || return 1
	find "$D" -type f | grep . && return 1
	return 0
}
km_check "make uninstall (DESTDIR) removes every file" mkuninstall
rm -rf "$T/tree2"

# the lab on the DKMS-installed modules
args=()
for m in "${SHIPPED[@]}"; do
	[[ -f $T/ko/$m.ko ]] && args+=("$m=$(sha1sum "$T/ko/$m.ko" | cut -d' ' -f1)")
done
out=$(LAB_MODULES=$T/ko "$TOP/tools/vm/lab" run -p nfit -t 600 \
	-c "bash $TOP/selftests/ship/dkms_guest.sh $KMEMLAB_BIN ${args[*]}" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -v '^GUEST ' | sed 's/^/# /'
nok=$(grep -c '^GUEST not ok' <<<"$out")
nall=$(grep -c '^GUEST \(not \)\?ok' <<<"$out")
grep '^GUEST ' <<<"$out" | sed 's/^GUEST /# guest: /'
if ((rc == 0 && nok == 0 && nall == ${#SHIPPED[@]} * 2)); then
	ktap_test_pass "the lab on the DKMS modules: $nall checks, each module the DKMS build, loads, answers, unloads"
else
	ktap_test_fail "the lab on the DKMS modules: lab exit $rc, $nok of $nall checks failed (want $((${#SHIPPED[@]} * 2)))"
fi

# the host's DKMS state is untouched
km_check "the host's DKMS tree has no kmemlab" bash -c "! dkms status kmemlab 2>/dev/null | grep -q ."
km_finish
