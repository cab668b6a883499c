#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memcg_dirty selftest on ext4: every cell (MDT_BASELINE=1 also prints the
# upstream measurements first). See memcg_dirty.sh.
MDT_FS=ext4 MDT_CELLS=${MDT_CELLS:-all} MDT_BASELINE=${MDT_BASELINE:-0} \
	exec "$(dirname "$0")/memcg_dirty.sh"
