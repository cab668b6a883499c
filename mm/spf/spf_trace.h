/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM spf_harness

#if !defined(_SPF_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _SPF_TRACE_H

#include <linux/tracepoint.h>
#include <kmemlab/spf.h>

TRACE_EVENT(spf_dev_fault,
	TP_PROTO(u64 id, unsigned long pgoff, u64 gen, bool vma_locked,
		 u32 delay_us),
	TP_ARGS(id, pgoff, gen, vma_locked, delay_us),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(unsigned long, pgoff)
		__field(u64, gen)
		__field(bool, vma_locked)
		__field(u32, delay_us)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->pgoff = pgoff;
		__entry->gen = gen;
		__entry->vma_locked = vma_locked;
		__entry->delay_us = delay_us;
	),
	TP_printk("id=%llu pgoff=%lu gen=%llu lock=%s delay_us=%u",
		  __entry->id, __entry->pgoff, __entry->gen,
		  __entry->vma_locked ? "vma" : "mmap", __entry->delay_us)
);

TRACE_EVENT(spf_dev_bump,
	TP_PROTO(u64 id, u64 gen, u64 pages),
	TP_ARGS(id, gen, pages),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, gen)
		__field(u64, pages)
	),
	TP_fast_assign(
		__entry->id = id;
		__entry->gen = gen;
		__entry->pages = pages;
	),
	TP_printk("id=%llu gen=%llu pages=%llu",
		  __entry->id, __entry->gen, __entry->pages)
);

TRACE_EVENT(spf_violation,
	TP_PROTO(unsigned long address, unsigned long vm_start,
		 unsigned long vm_end, u32 mask),
	TP_ARGS(address, vm_start, vm_end, mask),
	TP_STRUCT__entry(
		__field(unsigned long, address)
		__field(unsigned long, vm_start)
		__field(unsigned long, vm_end)
		__field(u32, mask)
	),
	TP_fast_assign(
		__entry->address = address;
		__entry->vm_start = vm_start;
		__entry->vm_end = vm_end;
		__entry->mask = mask;
	),
	TP_printk("address=0x%lx vma=[0x%lx,0x%lx) mask=0x%x",
		  __entry->address, __entry->vm_start, __entry->vm_end,
		  __entry->mask)
);

TRACE_DEFINE_ENUM(SPF_LAT_VMA);
TRACE_DEFINE_ENUM(SPF_LAT_VMA_MAJOR);
TRACE_DEFINE_ENUM(SPF_LAT_FALLBACK);
TRACE_DEFINE_ENUM(SPF_LAT_FALLBACK_MAJOR);
TRACE_DEFINE_ENUM(SPF_LAT_RETRY);
TRACE_DEFINE_ENUM(SPF_LAT_RETRY_MAJOR);
TRACE_DEFINE_ENUM(SPF_LAT_ERROR);

/*
 * A user fault that took at least the observer's slow_ns (SPF_OBS_F_LATENCY):
 * @ns from its start to the return of its last handle_mm_fault() pass,
 * @outcome an &enum spf_lat_outcome, @ret that pass's vm_fault_t, @flags
 * its FAULT_FLAG_*.
 */
TRACE_EVENT(spf_slow_fault,
	TP_PROTO(unsigned long address, u64 ns, u32 outcome, u32 ret,
		 u32 flags),
	TP_ARGS(address, ns, outcome, ret, flags),
	TP_STRUCT__entry(
		__field(unsigned long, address)
		__field(u64, ns)
		__field(u32, outcome)
		__field(u32, ret)
		__field(u32, flags)
	),
	TP_fast_assign(
		__entry->address = address;
		__entry->ns = ns;
		__entry->outcome = outcome;
		__entry->ret = ret;
		__entry->flags = flags;
	),
	TP_printk("address=0x%lx ns=%llu outcome=%s ret=0x%x flags=0x%x",
		  __entry->address, __entry->ns,
		  __print_symbolic(__entry->outcome,
				   { SPF_LAT_VMA, "vma" },
				   { SPF_LAT_VMA_MAJOR, "vma_major" },
				   { SPF_LAT_FALLBACK, "fallback" },
				   { SPF_LAT_FALLBACK_MAJOR, "fallback_major" },
				   { SPF_LAT_RETRY, "retry" },
				   { SPF_LAT_RETRY_MAJOR, "retry_major" },
				   { SPF_LAT_ERROR, "error" }),
		  __entry->ret, __entry->flags)
);

#endif /* _SPF_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE spf_trace
#include <trace/define_trace.h>
