#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memcg_dirty on xfs: the negative cells (fault=passthrough and fault=stale
# must fail the bound, fault=everyone the isolation check, fault=nodomreset
# the reaction check). They run on ext4 by default;
# on xfs they are slow_tests (make check T=memcg_dirty SLOW=1).
MDT_FS=xfs MDT_CELLS=negative exec "$(dirname "$0")/memcg_dirty.sh"
