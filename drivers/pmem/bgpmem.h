/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bgpmem - internal definitions shared by main.c and poison.c.
 */
#ifndef BGPMEM_H
#define BGPMEM_H

#include <linux/atomic.h>
#include <linux/badblocks.h>
#include <linux/bitops.h>
#include <linux/blkdev.h>
#include <linux/memremap.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/spinlock.h>
#include <linux/types.h>

/**
 * struct bgp_range - one poisoned range, [@start, @end) in bytes
 * @node: in &struct bgp_set.root, ordered by @start
 * @start: first byte
 * @end: one past the last byte
 */
struct bgp_range {
	struct rb_node node;
	u64 start;
	u64 end;
};

/**
 * struct bgp_set - disjoint, non-adjacent ranges in an rb-tree
 * @root: the ranges
 * @nr: number of ranges
 * @bytes: bytes covered
 *
 * Not locked: callers serialise modifications and exclude readers.
 * Adding or removing needs at most one new node, which the caller
 * allocates beforehand (bgp_set_prealloc()) so that no allocation happens
 * under a spinlock.
 */
struct bgp_set {
	struct rb_root root;
	u64 nr;
	u64 bytes;
};

#define BGP_SET_INIT { .root = RB_ROOT }

struct bgp_range *bgp_set_prealloc(gfp_t gfp);
void bgp_set_add(struct bgp_set *set, u64 start, u64 end,
		 struct bgp_range **spare);
void bgp_set_remove(struct bgp_set *set, u64 start, u64 end,
		    struct bgp_range **spare);
struct bgp_range *bgp_set_first(const struct bgp_set *set, u64 start,
				u64 end);
struct bgp_range *bgp_set_next(const struct bgp_range *r, u64 end);
void bgp_set_destroy(struct bgp_set *set);

/*
 * Injected poison kept per namespace across unbind/bind, in physical
 * addresses. Entries live until module unload.
 */
struct bgp_store;
struct bgp_store *bgp_store_get(const char *ns_name);
int bgp_store_add(struct bgp_store *st, u64 phys, u64 len);
void bgp_store_remove(struct bgp_store *st, u64 phys, u64 len);
/* calls @fn for every stored range intersecting [phys, phys + len) */
int bgp_store_for_each(struct bgp_store *st, u64 phys, u64 len,
		       int (*fn)(void *arg, u64 phys, u64 len), void *arg);
void bgp_store_exit(void);

/*
 * Test-only faults (KMEMLAB_BGPMEM_FAULTS=1 build, drivers/pmem/
 * fault_flavor.sh; never in the shipped module): module parameter
 * "fault", a comma-separated list, readable and writable at run time, and
 * "fault_hits", how often a faulty path was taken ("fault_hits_by": per
 * fault). Documentation/bgpmem.rst,
 * "Test-only fault build".
 */
enum bgp_fault_id {
	BGP_FAULT_PARTIAL_CLEAR,	/* bug: a partial write clears its blocks */
	BGP_FAULT_DROP_EARLY,		/* bug: record dropped before the block is good */
	BGP_FAULT_MIRROR_DROP,		/* bug: a full mirror drops bus poison */
	BGP_FAULT_FLUSH_EIO,		/* injected: the flush after a clear fails */
	BGP_FAULT_NOMEM_IO,		/* injected: GFP_NOIO node allocations fail */
	BGP_FAULT_IMPORT_DELAY,		/* injected: the import work waits 200 ms */
	BGP_FAULT_IMPORT_UNSEEN,	/* bug: readers miss an import in flight */
	BGP_FAULT_BB_SEQ_STORM,		/* injected: that wait keeps the list's seqlock busy */
	BGP_FAULT_BB_RETRY_MISS,	/* bug: a lookup takes a retried pass's answer */
	BGP_FAULT_CLEAR_UNIT_2K,	/* injected: ARS_CAP reports a 2 KiB clear unit */
	BGP_FAULT_LINEAR_LOOKUP,	/* bug: record lookups walk the set in order */
	BGP_NR_FAULTS,
};

#ifdef BGPMEM_FAULTS
extern unsigned long bgp_faults;
extern atomic_t bgp_fault_hits[BGP_NR_FAULTS];

/* is fault @f on? (not counted) */
static inline bool bgp_fault_on(enum bgp_fault_id f)
{
	return test_bit(f, &bgp_faults);
}

/* take the faulty path of @f if it is on, and count it */
static inline bool bgp_fault(enum bgp_fault_id f)
{
	if (!bgp_fault_on(f))
		return false;
	atomic_inc(&bgp_fault_hits[f]);
	return true;
}
#else
static inline bool bgp_fault_on(enum bgp_fault_id f)
{
	return false;
}

static inline bool bgp_fault(enum bgp_fault_id f)
{
	return false;
}
#endif

#endif /* BGPMEM_H */
