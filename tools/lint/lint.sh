#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make lint: the checks upstream maintainers run, on every module, tool and
# selftest wired into the build (Kbuild, tools/Makefile, selftests/Makefile):
#   - W=1 and sparse (C=2) over the modules, in a scratch copy of the tree so
#     everything is recompiled; any warning fails
#   - coccicheck MODE=report over the module sources
#   - checkpatch.pl --strict on our kernel code; on userspace code too, minus
#     the rules that only make sense inside the kernel (listed below)
#   - bash -n on every shell script, pyflakes on every Python script
#
# usage: lint.sh KVER KSRC
set -uo pipefail

KVER=${1:?usage: lint.sh KVER KSRC}
KSRC=${2:?}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
KDIR=/lib/modules/$KVER/build
OUT=$TOP/build/lint
failed=()

step() {
	echo "  LINT    $*"
}

# module dirs from the top-level Kbuild
mapfile -t MODDIRS < <(sed -n 's/^obj-m *+= *\(.*\)\/ *$/\1/p' "$TOP/Kbuild")
mapfile -t TOOLS < <(make -s -C "$TOP/tools" list | tr ' ' '\n')
mapfile -t AREAS < <(make -s -C "$TOP/selftests" list | tr ' ' '\n')

kfiles=()
for d in "${MODDIRS[@]}"; do
	while IFS= read -r f; do
		kfiles+=("$f")
	done < <(cd "$TOP" && find "$d" -maxdepth 1 -name '*.[ch]' ! -name '*.mod.c' | sort)
done
while IFS= read -r f; do
	kfiles+=("$f")
done < <(cd "$TOP" && find include -name '*.h' 2>/dev/null | sort)

ufiles=()
for d in "${TOOLS[@]/#/tools/}" "${AREAS[@]/#/selftests/}"; do
	while IFS= read -r f; do
		ufiles+=("$f")
	done < <(cd "$TOP" && find "$d" -name '*.[ch]' ! -name '*.mod.c' \
		 ! -path '*/module/*' | sort)
done

# ---- W=1 + sparse -------------------------------------------------------------
step "W=1 C=2 (sparse) over ${MODDIRS[*]}"
rm -rf "$OUT/tree"
mkdir -p "$OUT/tree"
(cd "$TOP" && cp -a --parents Kbuild include "${MODDIRS[@]}" "$OUT/tree/") 2>/dev/null
find "$OUT/tree" \( -name '*.o' -o -name '*.ko' -o -name '*.cmd' -o -name '*.mod*' \) -delete
make -C "$KDIR" M="$OUT/tree" KMEMLAB_KSRC="$KSRC" W=1 C=2 CHECK=sparse \
	-j"$(nproc)" modules >"$OUT/build.log" 2>&1
rc=$?
if ((rc)) || grep -qE 'warning:|error:' "$OUT/build.log"; then
	grep -E -A3 'warning:|error:' "$OUT/build.log" | sed "s|$OUT/tree/||" | head -60
	failed+=("W=1/sparse (log: $OUT/build.log)")
fi

# ---- coccicheck ---------------------------------------------------------------
step "coccicheck MODE=report"
if command -v spatch >/dev/null; then
	# the two OCaml-scripted rules need ocaml-nox; coccicheck skips what
	# spatch cannot run and says so
	(cd "$OUT/tree" && env srctree="$KSRC" KBUILD_EXTMOD="$OUT/tree" MODE=report V=0 \
		LINUXINCLUDE="-I$KDIR/include -I$KDIR/arch/x86/include -I$KDIR/arch/x86/include/generated -I$OUT/tree/include -I$OUT/tree/include/uapi" \
		bash "$KSRC/scripts/coccicheck") >"$OUT/cocci.log" 2>&1
	# report lines: FILE:LINE:COL-COL: WARNING/ERROR/...: text
	grep -E '^/[^ ]+:[0-9]+:[0-9-]+: ' "$OUT/cocci.log" >"$OUT/cocci.report"
	if [[ -s $OUT/cocci.report ]]; then
		sed "s|$OUT/tree/||" "$OUT/cocci.report" | head -40
		failed+=("coccicheck (log: $OUT/cocci.log)")
	fi
else
	failed+=("coccicheck: spatch not installed (make deps)")
fi

# ---- checkpatch ---------------------------------------------------------------
CP=("$KSRC/scripts/checkpatch.pl" --no-tree --strict --terse --show-types --quiet -f)
# TRACE_EVENT headers follow the layout every kernel trace header uses
# (TP_PROTO( on its own line, arguments aligned to the macro), which
# checkpatch's OPEN_ENDED_LINE and PARENTHESIS_ALIGNMENT checks flag.
TRACE_IGNORE=OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT
tfiles=() cfiles=()
for f in "${kfiles[@]}"; do
	if grep -q '^#include <trace/define_trace.h>' "$TOP/$f"; then
		tfiles+=("$f")
	else
		cfiles+=("$f")
	fi
done
step "checkpatch --strict: ${#cfiles[@]} kernel files, ${#tfiles[@]} trace headers"
out=$(cd "$TOP" && {
	((${#cfiles[@]} == 0)) || "${CP[@]}" "${cfiles[@]}"
	((${#tfiles[@]} == 0)) || "${CP[@]}" --ignore "$TRACE_IGNORE" "${tfiles[@]}"
} 2>&1 | grep -v '^total: 0 errors, 0 warnings, 0 checks')
if [[ -n $out ]]; then
	echo "$out"
	failed+=("checkpatch (kernel code)")
fi
# Userspace: kernel style, but the kernel-only macros (__printf, u64, strscpy)
# do not exist there, <inttypes.h> names are not CamelCase of ours, and
# usage texts and hints are long user-visible strings, never split.
USER_IGNORE=BIT_MACRO,LONG_LINE_STRING,EMBEDDED_FUNCTION_NAME,PREFER_DEFINED_ATTRIBUTE_MACRO,CAMELCASE,PREFER_KERNEL_TYPES,STRCPY,STRLCPY,STRNCPY,SSCANF_TO_KSTRTO,NEW_TYPEDEFS,SPLIT_STRING,VOLATILE,AVOID_EXTERNS,PREFER_PRINTF,PREFER_SCANF,PREFER_PACKED,PREFER_ALIGNED,MACRO_ARG_REUSE
step "checkpatch --strict: ${#ufiles[@]} userspace files"
if ((${#ufiles[@]})); then
	out=$(cd "$TOP" && "${CP[@]}" --ignore "$USER_IGNORE" "${ufiles[@]}" 2>&1 | grep -v '^total: 0 errors, 0 warnings, 0 checks')
	if [[ -n $out ]]; then
		echo "$out"
		failed+=("checkpatch (userspace)")
	fi
fi

# ---- shell --------------------------------------------------------------------
step "bash -n on shell scripts"
while IFS= read -r f; do
	bash -n "$f" 2>&1 || failed+=("bash -n $f")
done < <(cd "$TOP" && grep -rlE '^#!/bin/(ba)?sh' tools/vm tools/lint tools/ship \
	"${AREAS[@]/#/selftests/}" selftests/lib .ci 2>/dev/null)

# ---- python -------------------------------------------------------------------
# undefined names and unused imports: the Python front-ends run only in tests
step "pyflakes on Python scripts"
mapfile -t pyfiles < <(cd "$TOP" && git ls-files '*.py' 2>/dev/null || find . -name '*.py' ! -path './build/*')
if ! command -v pyflakes3 >/dev/null; then
	failed+=("pyflakes: pyflakes3 not installed (make deps)")
elif ((${#pyfiles[@]})); then
	out=$(cd "$TOP" && pyflakes3 "${pyfiles[@]}" 2>&1)
	if [[ -n $out ]]; then
		echo "$out"
		failed+=("pyflakes")
	fi
fi

# ---- lab rules ----------------------------------------------------------------
# The tracing options record-cmd and record-tgid act on the enabled events of
# every trace instance: writing either one unhooks or rehooks sched_switch and
# sched_wakeup, patching the scheduler, even while the lab holds that hook
# (Documentation/lab.rst, "Text patching under TCG"). No test touches them.
step "no test writes tracing's record-cmd/record-tgid"
out=$(cd "$TOP" && git grep -nE 'options/record-(cmd|tgid)' -- selftests tools bench \
	':!tools/lint/lint.sh' 2>/dev/null)
if [[ -n $out ]]; then
	echo "$out"
	failed+=("record-cmd/record-tgid written by a test (Documentation/lab.rst)")
fi

if ((${#failed[@]})); then
	echo "lint: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "lint: clean"
