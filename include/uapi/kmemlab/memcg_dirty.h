/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * memcg_dirty: per-cgroup dirty limits. Shared by mm/dirty/,
 * tools/dirty/ (memcg-dirtyctl) and selftests/memcg_dirty/.
 *
 * The interface is configfs, one directory per cgroup named by its cgroup
 * id, MEMCG_DIRTY_CONFIGFS/<id>/ (Documentation/memcg_dirty.rst).
 *
 * Ratios (dirty_ratio, background_ratio) are percentages with up to two
 * decimals: "5", "0.25", "12.5". They are kept in basis points (1/100 of a
 * percent, 0..MEMCG_DIRTY_RATIO_BP_MAX) and read back in the shortest form
 * ("5", "0.25", "12.5"). Whole percentages, the only form before the
 * "fractional_ratio" feature, mean what they meant.
 */
#ifndef _UAPI_KMEMLAB_MEMCG_DIRTY_H
#define _UAPI_KMEMLAB_MEMCG_DIRTY_H

#define MEMCG_DIRTY_CONFIGFS		"/sys/kernel/config/memcg_dirty"

/* basis points per percent, and the largest ratio (100%) */
#define MEMCG_DIRTY_BP_PER_PCT		100
#define MEMCG_DIRTY_RATIO_BP_MAX	10000
/* decimals a ratio may have (0.01% steps) */
#define MEMCG_DIRTY_RATIO_DECIMALS	2

/* byte limits: at least two pages (as vm.dirty_bytes), below 16 TiB */
#define MEMCG_DIRTY_MIN_PAGES		2

#endif /* _UAPI_KMEMLAB_MEMCG_DIRTY_H */
