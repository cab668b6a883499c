#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Parse the TAP of the kernel's run_kselftest.sh with the rules of Linaro's
kselftest test definition (automated/linux/kselftest/kselftest.sh,
parse_output) and compare it with a `make check` run's results.

LAVA's rules: a "# selftests: DIR" header names the running test (':' and
'/' with the spaces after them become '.'); every line "(# )*(not )?ok N
NAME [# SKIP...]" is one result: SKIP anywhere after '#' is skip, "not" is
fail, else pass; NAME starting with "selftests: " is fully qualified (the
test itself), any other is DIR.NAME (a case of the running test).

usage: ksft_tap.py TAP_LOG CASES_FILE BACKEND
  CASES_FILE: the lab's cases file (AREA TEST BACKEND OK NOT-OK SKIP-DECL
  SKIP-UNDECL) and its results file next to it (STATUS AREA TEST BACKEND).
Prints one line per test and exits 1 on any difference.
"""
import os
import re
import sys

HDR = re.compile(r'^# selftests: (.*)$')
RES = re.compile(r'^(?:# )*(not )?ok \d+ ([^#]+)(# (SKIP)?)?')


def dotted(s):
    return re.sub(r'[:/]\s*', '.', s.strip())


def lava_results(lines):
    testdir = None
    out = []
    for line in lines:
        line = line.rstrip('\n')
        m = HDR.match(line)
        if m:
            testdir = dotted(m.group(1))
            continue
        m = RES.match(line)
        if not m:
            continue
        name = m.group(2).rstrip()
        if m.group(4) == 'SKIP':
            res = 'skip'
        elif m.group(1):
            res = 'fail'
        else:
            res = 'pass'
        if name.startswith('selftests: '):
            out.append((dotted(name[len('selftests: '):]), res, True))
        else:
            out.append(('%s.%s' % (testdir, name), res, False))
    return out


def main():
    tap, cases_file, backend = sys.argv[1:4]
    with open(tap, errors='replace') as f:
        results = lava_results(f)
    # per test: its own result, and its cases' counts
    tests = {}
    for name, res, top in results:
        if top:
            tests.setdefault(name, {'pass': 0, 'fail': 0, 'skip': 0})['result'] = res
    for name, res, top in results:
        if top:
            continue
        for t in tests:
            if name.startswith(t + '.'):
                tests[t][res] += 1
                break
    # make check's: cases and verdicts, on BACKEND if it ran there, else
    # on the backend it ran on
    lab = {}
    with open(cases_file) as f:
        for line in f:
            area, test, b, ok, nok, sd, su = line.rstrip('\n').split('\t')
            key = 'kmemlab.%s.%s' % (area, test)
            if key in lab and lab[key]['backend'] == backend:
                continue
            lab[key] = {'backend': b, 'pass': int(ok), 'fail': int(nok),
                        'skip': int(sd) + int(su)}
    status = {}
    with open(os.path.join(os.path.dirname(cases_file), 'results')) as f:
        for line in f:
            p = line.rstrip('\n').split('\t')
            if len(p) >= 4:
                status[('kmemlab.%s.%s' % (p[1], p[2]), p[3])] = p[0]
    bad = 0
    for t in sorted(tests):
        r = tests[t]
        mine = '%s (cases %d pass, %d fail, %d skip)' % (
            r.get('result', 'none'), r['pass'], r['fail'], r['skip'])
        if t not in lab:
            print('DIFF %s: %s; make check has no result for it' % (t, mine))
            bad = 1
            continue
        c = lab[t]
        st = status.get((t, c['backend']), '?')
        want = {'PASS': 'pass', 'FAIL': 'fail', 'SKIP': 'skip'}.get(st, st)
        theirs = '%s (cases %d pass, %d fail, %d skip) [make check, %s]' % (
            want, c['pass'], c['fail'], c['skip'], c['backend'])
        same = (r.get('result') == want and
                all(r[k] == c[k] for k in ('pass', 'fail', 'skip')))
        print('%s %s: %s; %s' % ('SAME' if same else 'DIFF', t, mine, theirs))
        bad |= not same
    if not tests:
        print('DIFF: no test results in %s' % tap)
        bad = 1
    return bad


if __name__ == '__main__':
    sys.exit(main())
