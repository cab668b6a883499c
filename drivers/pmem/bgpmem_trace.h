/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM bgpmem

#if !defined(_BGPMEM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _BGPMEM_TRACE_H

#include <linux/tracepoint.h>

/* where a record came from, or what refused I/O */
#define BGPMEM_SRC_BUS		0	/* ARS / badrange */
#define BGPMEM_SRC_SYSFS	1	/* /sys/block/X/badblocks */
#define BGPMEM_SRC_INJECT	2
#define BGPMEM_SRC_MF		3	/* memory_failure */
#define BGPMEM_SRC_STORE	4	/* re-added after unbind/bind */

/* what an I/O refused because of poison was */
#define BGP_OP_READ		0	/* bio read */
#define BGP_OP_WRITE		1	/* bio write or write-zeroes */
#define BGP_OP_DAX		2	/* DAX access, zeroing, recovery write */
#define BGP_OP_CLEAR		3	/* BGPMEM_IOC_CLEAR */

#define show_bgpmem_src(s)					\
	__print_symbolic(s, { BGPMEM_SRC_BUS, "bus" },		\
			 { BGPMEM_SRC_SYSFS, "sysfs" },		\
			 { BGPMEM_SRC_INJECT, "inject" },	\
			 { BGPMEM_SRC_MF, "memory_failure" },	\
			 { BGPMEM_SRC_STORE, "store" })

DECLARE_EVENT_CLASS(bgpmem_range_class,
	TP_PROTO(const char *disk, u64 offset, u64 len, int src),
	TP_ARGS(disk, offset, len, src),
	TP_STRUCT__entry(
		__string(disk, disk)
		__field(u64, offset)
		__field(u64, len)
		__field(int, src)
	),
	TP_fast_assign(
		__assign_str(disk);
		__entry->offset = offset;
		__entry->len = len;
		__entry->src = src;
	),
	TP_printk("%s offset=%llu len=%llu src=%s", __get_str(disk),
		  __entry->offset, __entry->len,
		  show_bgpmem_src(__entry->src))
);

/* a poison record was added (rounded outward to the poison block size) */
DEFINE_EVENT(bgpmem_range_class, bgpmem_poison_set,
	TP_PROTO(const char *disk, u64 offset, u64 len, int src),
	TP_ARGS(disk, offset, len, src));

/* poisoned blocks were cleared: data written and flushed, record dropped */
TRACE_EVENT(bgpmem_poison_clear,
	TP_PROTO(const char *disk, u64 offset, u64 len),
	TP_ARGS(disk, offset, len),
	TP_STRUCT__entry(
		__string(disk, disk)
		__field(u64, offset)
		__field(u64, len)
	),
	TP_fast_assign(
		__assign_str(disk);
		__entry->offset = offset;
		__entry->len = len;
	),
	TP_printk("%s offset=%llu len=%llu", __get_str(disk),
		  __entry->offset, __entry->len)
);

/* an I/O was refused because of poison; op: BGP_OP_* */
TRACE_EVENT(bgpmem_io_refused,
	TP_PROTO(const char *disk, u64 offset, u64 len, int op, int err),
	TP_ARGS(disk, offset, len, op, err),
	TP_STRUCT__entry(
		__string(disk, disk)
		__field(u64, offset)
		__field(u64, len)
		__field(int, op)
		__field(int, err)
	),
	TP_fast_assign(
		__assign_str(disk);
		__entry->offset = offset;
		__entry->len = len;
		__entry->op = op;
		__entry->err = err;
	),
	TP_printk("%s offset=%llu len=%llu op=%s err=%d", __get_str(disk),
		  __entry->offset, __entry->len,
		  __print_symbolic(__entry->op, { BGP_OP_READ, "read" },
				   { BGP_OP_WRITE, "write" },
				   { BGP_OP_DAX, "dax" },
				   { BGP_OP_CLEAR, "clear" }),
		  __entry->err)
);

/* the platform could not clear: err -EOPNOTSUPP means unsupported */
TRACE_EVENT(bgpmem_clear_failed,
	TP_PROTO(const char *disk, u64 phys, u64 len, long err),
	TP_ARGS(disk, phys, len, err),
	TP_STRUCT__entry(
		__string(disk, disk)
		__field(u64, phys)
		__field(u64, len)
		__field(long, err)
	),
	TP_fast_assign(
		__assign_str(disk);
		__entry->phys = phys;
		__entry->len = len;
		__entry->err = err;
	),
	TP_printk("%s phys=%#llx len=%llu err=%ld", __get_str(disk),
		  __entry->phys, __entry->len, __entry->err)
);

#endif /* _BGPMEM_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE bgpmem_trace
#include <trace/define_trace.h>
