#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The bgpmem contract with the heavy cases (a slow test: make check SLOW=1):
# 50 module load/unload cycles (10 probing the namespace), a 20 s concurrent
# inject/clear stress, and every DAX case also on nd_pmem for the side-by-side
# comparison. The default bgpmem_contract runs every cell quickly.
exec "$(dirname "$0")/bgpmem_contract" --full
