#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memcg_dirty on xfs: the bound and isolation measurements with the module
# not loaded (upstream rules) and loaded, printed side by side; B also runs
# alone for its elapsed time. Slow (device-bound upstream runs): settings
# slow_tests, make check SLOW=1. See memcg_dirty.sh.
MDT_FS=xfs MDT_CELLS=compare exec "$(dirname "$0")/memcg_dirty.sh"
