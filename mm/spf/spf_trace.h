/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM spf_harness

#if !defined(_SPF_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _SPF_TRACE_H

#include <linux/tracepoint.h>

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

#endif /* _SPF_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE spf_trace
#include <trace/define_trace.h>
