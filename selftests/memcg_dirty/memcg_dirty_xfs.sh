#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memcg_dirty selftest on xfs: the cells that depend on the filesystem
# (bound, no collapse, isolation, reaction, background, hierarchy, unload);
# the interface and negative cells run on ext4 (memcg_dirty_xfs_negative.sh:
# the negative cells on xfs, slow). See memcg_dirty.sh.
MDT_FS=xfs MDT_CELLS=${MDT_CELLS:-fs} MDT_BASELINE=${MDT_BASELINE:-0} \
	exec "$(dirname "$0")/memcg_dirty.sh"
