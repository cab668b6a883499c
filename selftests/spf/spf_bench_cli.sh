#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# spf_bench_cli - spf-bench: --help, bad input refused with a cause and a
# hint (exit 2), a short anon run in table and --json form.
set -u
BIN=${KMEMLAB_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
B=$BIN/spf-bench
n=0 fail=0

ok() { n=$((n + 1)); echo "ok $n $1"; }
nok() { n=$((n + 1)); fail=1; echo "not ok $n $1"; }

echo "TAP version 13"
if [[ ! -x $B ]]; then
	echo "1..0 # SKIP $B not built (make -C tools/spf)"
	exit 4
fi
echo "1..4"

if "$B" --help | grep -q -- "--workload"; then ok help; else nok help; fi

bad=0
for args in "-t 0" "-t 65" "-s 5K" "-s 0" "-s 99999999999G" "-d 0" "-d x" \
	    "-r 0" "-w nope" "-W nope" "--thp maybe" "-o nope" "-o off,nope" \
	    "-w shared-ext4" "-w cold-ext4" "--plot /tmp/spf-x.png" \
	    "--slow-ns 0" "--slow-ns x" "--slow-ns 1000" \
	    "--tmpdir /nonexistent -w shared-tmpfs" "extra"; do
	# shellcheck disable=SC2086
	err=$("$B" $args -o off 2>&1 >/dev/null)
	rc=$?
	if [[ $rc -ne 2 ]] || ! grep -q "error:" <<<"$err" ||
	   ! grep -q "hint:" <<<"$err"; then
		echo "# '$args': exit $rc, stderr: $err"
		bad=1
	fi
done
if [[ $bad -eq 0 ]]; then ok bad_input_refused; else nok bad_input_refused; fi

out=$("$B" -q -w anon -s 1M -d 0.1 -r 2 -o off 2>&1)
if grep -q "^anon  *1 none  *off " <<<"$out"; then ok table; else echo "# $out"; nok table; fi

json=$("$B" -q --json -w anon -s 1M -d 0.1 -r 2 -o off)
if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); r=d["results"][0]; assert r["workload"]=="anon" and len(r["faults_per_s_reps"])==2 and r["faults_per_s"]>0' "$json" 2>/dev/null; then
	ok json
else
	echo "# $json"
	nok json
fi
exit $fail
