#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Parse the TAP of the kernel's run_kselftest.sh with the rules of Linaro's
kselftest test definition (test-definitions, automated/linux/kselftest/
parse-output.py, what LAVA jobs record) and compare it, test by test and
case by case, with the TAP the same tests printed in a `make check` run.

Linaro's rules: a line containing "# selftests: " names the running test;
any line with "ok N " or "not ok N " in it, at any nesting depth, is one
result: "not ok" is fail, "# SKIP" anywhere in the rest is skip, else pass.
The name is the rest of the line ("# SKIP" removed); a name starting with
"selftests: " is the test itself, any other is a case of the running test.
Note that a kselftest.h skip is "ok N # SKIP reason": its name is in the
directive, and it is a skip, not a missing line (an earlier version of
this parser dropped it: spf_ioctl's one declared skip, issue 20).

Both TAPs go through the same parser, so the comparison is exact: for each
test of the tarball's run, its verdict and its list of (case number, case
id, result) must equal make check's, where a case id is the case's name up
to the first blank or ':' (the rest is free text: measured figures).

usage: ksft_tap.py TAP_LOG CASES_FILE BACKEND
  CASES_FILE: the lab's cases file (AREA TEST BACKEND OK NOT-OK SKIP-DECL
  SKIP-UNDECL) of a make check run; that run's per-boot TAP is
  <dir of CASES_FILE>/<backend>/tap.log and its verdicts are in results
  next to it (STATUS AREA TEST BACKEND). A test is compared with its run on
  BACKEND if make check ran it there, else with the boot it ran in.
Prints one line per test, and each differing case; exits 1 on any
difference.
"""
import os
import re
import sys

RESULT = re.compile(r'^.*?(not )?ok (\d{1,5}) (.*)$')


def case_id(name):
    """The stable part of a case's name: its first word."""
    name = name.replace('# SKIP', '').strip()
    return re.split(r'[\s:]', name, maxsplit=1)[0] if name else ''


def parse(lines):
    """Linaro's reading of a TAP stream: {test: {'result', 'cases'}} where a
    test is 'collection/area: test' as the header names it (without the
    'kmemlab/' collection prefix, which make check's TAP lacks) and cases
    is a list of (number, id, result, text)."""
    tests = {}
    cur = None
    for line in lines:
        line = line.rstrip('\r\n')
        if '# selftests: ' in line:
            cur = norm(line.split('# selftests: ', 1)[1])
            tests.setdefault(cur, {'result': None, 'cases': []})
            continue
        m = RESULT.match(line)
        if not m:
            continue
        rest = m.group(3)
        if m.group(1):
            res = 'fail'
        elif '# SKIP' in rest:
            res = 'skip'
        else:
            res = 'pass'
        if rest.startswith('selftests: '):
            t = norm(re.sub(r' # .*$', '', rest[len('selftests: '):]))
            tests.setdefault(t, {'result': None, 'cases': []})['result'] = res
            cur = None
        elif cur is not None:
            tests[cur]['cases'].append((int(m.group(2)), case_id(rest), res,
                                        rest.strip()))
    return tests


def norm(name):
    """'kmemlab/spf: spf_ioctl' and 'spf: spf_ioctl' -> 'spf: spf_ioctl'"""
    name = name.strip()
    return name[len('kmemlab/'):] if name.startswith('kmemlab/') else name


def counts(cases):
    c = {'pass': 0, 'fail': 0, 'skip': 0}
    for _, _, res, _ in cases:
        c[res] += 1
    return '%d pass, %d fail, %d skip' % (c['pass'], c['fail'], c['skip'])


def main():
    tap, cases_file, backend = sys.argv[1:4]
    checkdir = os.path.dirname(os.path.abspath(cases_file))
    with open(tap, errors='replace') as f:
        mine = parse(f)
    # the boot each test ran in, in make check: BACKEND's if it ran there
    boot = {}
    with open(cases_file) as f:
        for line in f:
            area, test, b = line.rstrip('\n').split('\t')[:3]
            key = '%s: %s' % (area, test)
            if key in boot and boot[key] == backend:
                continue
            boot[key] = b
    status = {}
    with open(os.path.join(checkdir, 'results')) as f:
        for line in f:
            p = line.rstrip('\n').split('\t')
            if len(p) >= 4:
                status[('%s: %s' % (p[1], p[2]), p[3])] = p[0]
    # AREA: TEST: reason lines (ship's settings, uncompared=)
    uncompared = {}
    for line in os.environ.get('KSFT_UNCOMPARED', '').splitlines():
        p = line.split(': ', 2)
        if len(p) == 3:
            uncompared['%s: %s' % (p[0], p[1])] = p[2]
    theirs_by_boot = {}
    bad = 0
    for t in sorted(mine):
        r = mine[t]
        if t in uncompared:
            print('NOT COMPARED %s: %s (%s)' % (t, r['result'] or 'none',
                                               uncompared[t]))
            continue
        desc = '%s (cases %s)' % (r['result'] or 'none', counts(r['cases']))
        if t not in boot:
            print('DIFF %s: %s; make check has no result for it' % (t, desc))
            bad = 1
            continue
        b = boot[t]
        if b not in theirs_by_boot:
            with open(os.path.join(checkdir, b, 'tap.log'), errors='replace') as f:
                theirs_by_boot[b] = parse(f)
        c = theirs_by_boot[b].get(t, {'result': None, 'cases': []})
        st = status.get((t, b), '?')
        verdict = {'PASS': 'pass', 'FAIL': 'fail', 'SKIP': 'skip'}.get(st, st)
        tdesc = '%s (cases %s) [make check, %s]' % (verdict, counts(c['cases']), b)
        mk = [x[:3] for x in r['cases']]
        ck = [x[:3] for x in c['cases']]
        same = r['result'] == verdict and mk == ck
        print('%s %s: %s; %s' % ('SAME' if same else 'DIFF', t, desc, tdesc))
        if r['result'] != verdict:
            print('  verdict: tarball %s, make check %s' % (r['result'], verdict))
        if mk != ck:
            texts = {x[:3]: x[3] for x in r['cases']}
            ctexts = {x[:3]: x[3] for x in c['cases']}
            for x in r['cases']:
                if x[:3] not in ck:
                    print('  only in the tarball run: %s %d %s' % (x[2], x[0], texts[x[:3]]))
            for x in c['cases']:
                if x[:3] not in mk:
                    print('  only in make check: %s %d %s' % (x[2], x[0], ctexts[x[:3]]))
            if sorted(mk) == sorted(ck):
                print('  same cases in another order')
        bad |= not same
    if not mine:
        print('DIFF: no test results in %s' % tap)
        bad = 1
    return bad


if __name__ == '__main__':
    sys.exit(main())
