/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memcg_dirty - internal declarations shared by main.c and layout.c.
 */
#ifndef MEMCG_DIRTY_H
#define MEMCG_DIRTY_H

#include <linux/types.h>

struct wb_domain;
struct bdi_writeback;
struct fprop_local_percpu;

/*
 * struct dirty_throttle_control is private to mm/page-writeback.c. This is
 * a pinned copy of its 6.12 layout (CONFIG_CGROUP_WRITEBACK=y). It is never
 * trusted: mdirty_verify_layout() compares every member name and offset and
 * the size with the running kernel's BTF before the hook is installed.
 */
struct dirty_throttle_control {
	struct wb_domain *dom;
	struct dirty_throttle_control *gdtc;	/* only set in memcg dtc's */
	struct bdi_writeback *wb;
	struct fprop_local_percpu *wb_completions;

	unsigned long avail;		/* dirtyable */
	unsigned long dirty;		/* file_dirty + write + nfs */
	unsigned long thresh;		/* dirty threshold */
	unsigned long bg_thresh;	/* dirty background threshold */

	unsigned long wb_dirty;		/* per-wb counterparts */
	unsigned long wb_thresh;
	unsigned long wb_bg_thresh;

	unsigned long pos_ratio;
	bool freerun;
	bool dirty_exceeded;
};

/* the function whose calls are redirected */
#define MDIRTY_HOOK_FUNC	"domain_dirty_limits"
#define MDIRTY_DTC_STRUCT	"dirty_throttle_control"

int mdirty_verify_layout(bool fault_layout);

#endif /* MEMCG_DIRTY_H */
