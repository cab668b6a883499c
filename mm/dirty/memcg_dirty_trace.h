/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memcg_dirty trace events: the limits applied to a memcg writeback domain
 * and the throttle decisions taken under them.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM memcg_dirty

#if !defined(_MEMCG_DIRTY_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _MEMCG_DIRTY_TRACE_H

#include <linux/tracepoint.h>

/**
 * memcg_dirty_limits - limits computed from the knobs for a memcg domain
 * @cgid: cgroup id of the dirtying memcg (the domain)
 * @knob_cgid: cgroup id whose knob is binding (the cgroup or an ancestor)
 * @dirty: fresh dirty + writeback pages counted against @thresh
 * @thresh: dirty threshold in pages
 * @bg_thresh: background threshold in pages
 * @avail: available pages the binding knob's ratios are of (its own
 *	cgroup's); 0 for byte limits on an ancestor
 */
TRACE_EVENT(memcg_dirty_limits,
	TP_PROTO(u64 cgid, u64 knob_cgid, unsigned long dirty,
		 unsigned long thresh, unsigned long bg_thresh,
		 unsigned long avail),
	TP_ARGS(cgid, knob_cgid, dirty, thresh, bg_thresh, avail),
	TP_STRUCT__entry(
		__field(u64, cgid)
		__field(u64, knob_cgid)
		__field(unsigned long, dirty)
		__field(unsigned long, thresh)
		__field(unsigned long, bg_thresh)
		__field(unsigned long, avail)
	),
	TP_fast_assign(
		__entry->cgid = cgid;
		__entry->knob_cgid = knob_cgid;
		__entry->dirty = dirty;
		__entry->thresh = thresh;
		__entry->bg_thresh = bg_thresh;
		__entry->avail = avail;
	),
	TP_printk("cgid=%llu knob_cgid=%llu dirty=%lu thresh=%lu bg_thresh=%lu avail=%lu",
		  __entry->cgid, __entry->knob_cgid, __entry->dirty,
		  __entry->thresh, __entry->bg_thresh, __entry->avail)
);

/**
 * memcg_dirty_throttle - a dirtier in a cgroup with a knob was paused
 * @cgid: cgroup id of the dirtying memcg
 * @pause: pause in jiffies
 * @period: throttle period in jiffies
 * @dirty: dirty pages of the domain that throttled
 * @thresh: its threshold in pages
 */
TRACE_EVENT(memcg_dirty_throttle,
	TP_PROTO(u64 cgid, long pause, unsigned long period,
		 unsigned long dirty, unsigned long thresh),
	TP_ARGS(cgid, pause, period, dirty, thresh),
	TP_STRUCT__entry(
		__field(u64, cgid)
		__field(long, pause)
		__field(unsigned long, period)
		__field(unsigned long, dirty)
		__field(unsigned long, thresh)
	),
	TP_fast_assign(
		__entry->cgid = cgid;
		__entry->pause = pause;
		__entry->period = period;
		__entry->dirty = dirty;
		__entry->thresh = thresh;
	),
	TP_printk("cgid=%llu pause=%ld period=%lu dirty=%lu thresh=%lu",
		  __entry->cgid, __entry->pause, __entry->period,
		  __entry->dirty, __entry->thresh)
);

#endif /* _MEMCG_DIRTY_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE memcg_dirty_trace
#include <trace/define_trace.h>
