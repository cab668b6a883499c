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

/*
 * The balance_dirty_pages tracepoint probe: void *data, then TP_PROTO of
 * include/trace/events/writeback.h. layout.c checks it, argument by
 * argument (mdirty_probe_args), against the running kernel's
 * btf_trace_balance_dirty_pages; main.c asserts that its probe has it.
 */
typedef void (*mdirty_bdp_probe_t)(void *data, struct bdi_writeback *wb,
				   unsigned long thresh,
				   unsigned long bg_thresh,
				   unsigned long dirty,
				   unsigned long bdi_thresh,
				   unsigned long bdi_dirty,
				   unsigned long dirty_ratelimit,
				   unsigned long task_ratelimit,
				   unsigned long dirtied,
				   unsigned long period,
				   long pause, unsigned long start_time);
#define MDIRTY_BDP_TYPEDEF	"btf_trace_balance_dirty_pages"

/* test-only perturbations of what mdirty_verify_layout() expects */
enum mdirty_layout_fault {
	MDIRTY_LF_NONE,
	MDIRTY_LF_SIZE,		/* the struct one byte larger */
	MDIRTY_LF_MEMBER,	/* another name for one member */
	MDIRTY_LF_OFFSET,	/* one member one word further */
	MDIRTY_LF_PROTO,	/* the hook returning int */
	MDIRTY_LF_PROBE,	/* the probe's pause unsigned */
	MDIRTY_LF_NOBTF,	/* the BTF read from a missing file */
};

int mdirty_verify_layout(enum mdirty_layout_fault fault);

#endif /* MEMCG_DIRTY_H */
