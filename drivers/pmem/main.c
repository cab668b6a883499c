// SPDX-License-Identifier: GPL-2.0
/*
 * bgpmem - persistent memory block + DAX driver with block-granular poison.
 *
 * An nd-bus namespace driver like nd_pmem (drivers/nvdimm/pmem.c), but media
 * poison is managed at one granularity per device, the poison block size,
 * on every path: reads touching a poisoned block fail, writes and zeroing
 * that cover a poisoned block only partially fail before any byte is
 * written, whole-block overwrites clear (platform clear, data, flush, then
 * the record is dropped), and clearing is also an explicit ioctl.
 * Documentation/bgpmem.rst has the contract table.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/badblocks.h>
#include <linux/blkdev.h>
#include <linux/dax.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/idr.h>
#include <linux/ioport.h>
#include <linux/kstrtox.h>
#include <linux/libnvdimm.h>
#include <linux/log2.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/nd.h>
#include <linux/pagemap.h>
#include <linux/pfn_t.h>
#include <linux/rwsem.h>
#include <linux/sched/mm.h>
#include <linux/set_memory.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include <asm/cacheflush.h>

#include "pfn.h"
#include "nd.h"

#include <kmemlab/bgpmem.h>
#include "bgpmem.h"

#define CREATE_TRACE_POINTS
#include "bgpmem_trace.h"

static unsigned int poison_block_size = PAGE_SIZE;

static bool bgp_valid_pbs(unsigned long v)
{
	return is_power_of_2(v) && v >= SECTOR_SIZE && v <= PAGE_SIZE;
}

static int pbs_param_set(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int rc = kstrtouint(val, 0, &v);

	if (rc)
		return rc;
	if (!bgp_valid_pbs(v))
		return -EINVAL;
	*(unsigned int *)kp->arg = v;
	return 0;
}

static const struct kernel_param_ops pbs_param_ops = {
	.set = pbs_param_set,
	.get = param_get_uint,
};

module_param_cb(poison_block_size, &pbs_param_ops, &poison_block_size, 0644);
MODULE_PARM_DESC(poison_block_size,
		 "poison granularity in bytes for new devices: power of two, 512..PAGE_SIZE (default PAGE_SIZE)");

#ifdef BGPMEM_FAULTS
unsigned long bgp_faults;
atomic_t bgp_fault_hits[BGP_NR_FAULTS];

static const char * const bgp_fault_names[BGP_NR_FAULTS] = {
	[BGP_FAULT_PARTIAL_CLEAR] = "partial_clear",
	[BGP_FAULT_DROP_EARLY] = "drop_early",
	[BGP_FAULT_MIRROR_DROP] = "mirror_drop",
	[BGP_FAULT_FLUSH_EIO] = "flush_eio",
	[BGP_FAULT_NOMEM_IO] = "nomem_io",
	[BGP_FAULT_IMPORT_DELAY] = "import_delay",
	[BGP_FAULT_IMPORT_UNSEEN] = "import_unseen",
	[BGP_FAULT_BB_SEQ_STORM] = "bb_seq_storm",
	[BGP_FAULT_BB_RETRY_MISS] = "bb_retry_miss",
	[BGP_FAULT_CLEAR_UNIT_2K] = "clear_unit_2k",
	[BGP_FAULT_LINEAR_LOOKUP] = "linear_lookup",
};

/* "none" or a comma-separated list of bgp_fault_names; nothing changes on error */
static int fault_param_set(const char *val, const struct kernel_param *kp)
{
	char *buf, *p, *tok;
	unsigned long set = 0;
	int i, rc = 0;

	buf = kstrdup(val, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	p = strim(buf);
	if (!strcmp(p, "none") || !*p)
		goto done;
	while ((tok = strsep(&p, ","))) {
		i = match_string(bgp_fault_names, BGP_NR_FAULTS, strim(tok));
		if (i < 0) {
			pr_err("fault: unknown '%s'\n", tok);
			rc = -EINVAL;
			goto out;
		}
		set |= BIT(i);
	}
done:
	WRITE_ONCE(bgp_faults, set);
	pr_warn("test-only fault build: faults now 0x%lx\n", set);
out:
	kfree(buf);
	return rc;
}

static int fault_param_get(char *buf, const struct kernel_param *kp)
{
	unsigned long set = READ_ONCE(bgp_faults);
	int i, n = 0;

	if (!set)
		return sysfs_emit(buf, "none\n");
	for (i = 0; i < BGP_NR_FAULTS; i++)
		if (set & BIT(i))
			n += sysfs_emit_at(buf, n, "%s%s", n ? "," : "",
					   bgp_fault_names[i]);
	return n + sysfs_emit_at(buf, n, "\n");
}

static const struct kernel_param_ops fault_param_ops = {
	.set = fault_param_set,
	.get = fault_param_get,
};

module_param_cb(fault, &fault_param_ops, NULL, 0644);
MODULE_PARM_DESC(fault,
		 "TEST-ONLY: none, or a list of partial_clear, drop_early, mirror_drop, flush_eio, nomem_io, import_delay, import_unseen, bb_seq_storm, bb_retry_miss, clear_unit_2k, linear_lookup");

static int fault_hits_get(char *buf, const struct kernel_param *kp)
{
	int i, sum = 0;

	for (i = 0; i < BGP_NR_FAULTS; i++)
		sum += atomic_read(&bgp_fault_hits[i]);
	return sysfs_emit(buf, "%d\n", sum);
}

static const struct kernel_param_ops fault_hits_ops = {
	.get = fault_hits_get,
};

module_param_cb(fault_hits, &fault_hits_ops, NULL, 0444);
MODULE_PARM_DESC(fault_hits, "TEST-ONLY: faulty paths taken since load");

/* "name=N" for each fault taken, comma-separated, or "none" */
static int fault_hits_by_get(char *buf, const struct kernel_param *kp)
{
	int i, h, n = 0;

	for (i = 0; i < BGP_NR_FAULTS; i++) {
		h = atomic_read(&bgp_fault_hits[i]);
		if (h)
			n += sysfs_emit_at(buf, n, "%s%s=%d", n ? "," : "",
					   bgp_fault_names[i], h);
	}
	return n + sysfs_emit_at(buf, n, "%s\n", n ? "" : "none");
}

static const struct kernel_param_ops fault_hits_by_ops = {
	.get = fault_hits_by_get,
};

module_param_cb(fault_hits_by, &fault_hits_by_ops, NULL, 0444);
MODULE_PARM_DESC(fault_hits_by, "TEST-ONLY: faulty paths taken since load, per fault");
#endif

static DEFINE_IDA(bgpmem_ida);

/**
 * struct bgpmem_device - one bound namespace
 * @dev: the namespace or pfn device on the nd bus
 * @ndns: the namespace
 * @nd_region: its region
 * @phys_addr: physical start of the namespace
 * @data_offset: start of the data (pfn info block and memmap before it)
 * @pfn_pad: trimmed tail of a pfn namespace
 * @size: namespace size
 * @capacity: bytes exported by the block device
 * @virt_addr: kernel mapping of the namespace
 * @pfn_flags: PFN_DEV, plus PFN_MAP when struct pages exist
 * @fsdax: a pfn (fsdax) device
 * @id: N of bgpmemN
 * @pbs: poison block size
 * @lock: protects @poison against the I/O path
 * @mutex: serialises every change of @poison, @bb and platform clears.
 *	The bio path takes it, under filesystem locks: nothing that can wait
 *	for such a lock may run under it: no call into libnvdimm that takes
 *	the bus's reconfig_mutex (nd_ioctl() holds that across user copies;
 *	see bgp_populate()), no user copy that can fault (see
 *	bgpmem_recovery_write()), no allocation that can recurse into I/O
 * @clear_seq: incremented, under @mutex, whenever records are dropped
 *	after a platform clear; bgp_populate() checks it
 * @poison: the records, device byte offsets, poison-block aligned
 * @chunks: one bit per 2 MiB of the device: set while a record touches it,
 *	so I/O far from any poison skips the lock and the tree
 * @bb: standard badblocks, a mirror for /sys/block/X/badblocks
 * @bb_state: sysfs dirent of badblocks for notifications
 * @bb_overflow: @bb could not hold every record
 * @bb_importing: bgp_import_bb() is running (under @mutex)
 * @import_work: imports sysfs badblocks entries that I/O ran into (I/O
 *	never takes @mutex); cancelled in bgpmem_release()
 * @spare: a node for the split of a record by a clear, allocated before
 *	the platform clear (under @mutex)
 * @store: injected poison kept across unbind/bind
 * @clear_support: BGPMEM_CLEAR_*
 * @clear_unit: the bus's clear-error unit in bytes (ARS_CAP), 0 where the
 *	bus has none (nd_e820 clears anything; QEMU NFIT clears nothing);
 *	@pbs is never smaller
 * @clear_failures: platform clears that failed
 * @clear_unsupported: clears refused because the platform cannot clear
 * @refused_io: I/O refused because of poison
 * @dax_dev: the dax device
 * @disk: the block device
 * @added: @disk was added: it owns @bp from then on (bgpmem_free_disk())
 * @gate: held for read by ioctls and memory_failure for their whole run,
 *	for write to change @live
 * @live: the pmem mapping, @dax_dev and @dev may be used; see bgp_enter()
 * @pgmap: struct pages for fsdax
 *
 * Lifetime. @bp is kzalloc'ed; once @disk is added, the gendisk owns it:
 * bgpmem_free_disk() frees it when the last reference to the disk goes,
 * which is after unbind if /dev/bgpmemN is still open then (6.12's
 * blkdev_ioctl() still calls bgpmem_ioctl() after del_gendisk()). What bp
 * owns is freed with it: the records, @chunks, @bb, the locks. What belongs
 * to the bound device goes at unbind, in devres order: bgpmem_release()
 * (not live, dax, del_gendisk), the pmem mapping and @pgmap, the id, and
 * last bgp_put(), which drops the driver's reference to the disk. @pgmap
 * is embedded in @bp, and memunmap_pages() waits for the memory_failure
 * calls in flight: bp outlives it because bgp_put() is registered before
 * the mapping is made.
 *
 * Entry points and unbind. Bios: del_gendisk() waits for the ones in flight
 * and fails new ones. sysfs attributes: device_del() in del_gendisk()
 * removes them and waits for readers. DAX operations: kill_dax() (callers
 * hold dax_read_lock() and check dax_alive()). That leaves the ioctls and
 * pgmap->memory_failure, which can also run before probe is done: they go
 * through bgp_enter(), which fails until probe sets @live and again from
 * the start of bgpmem_release(), which waits for those inside. They never
 * wait for user memory inside (the ioctls copy in before, out after).
 */
struct bgpmem_device {
	struct device *dev;
	struct nd_namespace_common *ndns;
	struct nd_region *nd_region;
	phys_addr_t phys_addr;
	phys_addr_t data_offset;
	u32 pfn_pad;
	size_t size;
	u64 capacity;
	void *virt_addr;
	u64 pfn_flags;
	bool fsdax;
	int id;
	unsigned int pbs;
	rwlock_t lock;
	struct mutex mutex;	/* see kernel-doc above: serialises poison changes */
	unsigned long clear_seq;
	struct bgp_set poison;
	unsigned long *chunks;
	struct badblocks bb;
	struct kernfs_node *bb_state;
	bool bb_overflow;
	bool bb_importing;
	struct work_struct import_work;
	struct bgp_range *spare;
	struct bgp_store *store;
	int clear_support;
	unsigned int clear_unit;
	atomic64_t clear_failures;
	atomic64_t clear_unsupported;
	atomic64_t refused_io;
	struct dax_device *dax_dev;
	struct gendisk *disk;
	bool added;
	struct rw_semaphore gate;
	bool live;
	struct dev_pagemap pgmap;
};

/**
 * bgp_set_live() - open or close @bp to ioctls and memory_failure
 * @bp: the device
 * @live: true when probe is done, false at the start of teardown
 *
 * Taking @bp->gate for write waits for every caller between bgp_enter() and
 * bgp_exit(): once this returns with @live false, none is left and no new
 * one gets in.
 *
 * Context: process; may sleep.
 */
static void bgp_set_live(struct bgpmem_device *bp, bool live)
{
	down_write(&bp->gate);
	bp->live = live;
	up_write(&bp->gate);
}

/**
 * bgp_enter() - start an operation that needs the bound device
 * @bp: the device
 *
 * For entry points that can run while @bp is not live (ioctls on a file
 * opened before unbind, memory_failure during probe or teardown). On
 * success the caller may use the pmem mapping, @bp->dax_dev and @bp->dev
 * until it calls bgp_exit().
 *
 * Context: process; may sleep. Must not be nested (rwsem).
 * Return: true, with @bp->gate held for read, if @bp is live; else false.
 */
static bool bgp_enter(struct bgpmem_device *bp)
{
	down_read(&bp->gate);
	if (likely(bp->live))
		return true;
	up_read(&bp->gate);
	return false;
}

/**
 * bgp_exit() - end an operation started by a successful bgp_enter()
 * @bp: the device
 */
static void bgp_exit(struct bgpmem_device *bp)
{
	up_read(&bp->gate);
}

static const char *bgp_name(struct bgpmem_device *bp)
{
	return bp->disk->disk_name;
}

static u64 bgp_to_phys(struct bgpmem_device *bp, u64 off)
{
	return bp->phys_addr + bp->data_offset + off;
}

static void *bgp_to_virt(struct bgpmem_device *bp, u64 off)
{
	return bp->virt_addr + bp->data_offset + off;
}

/* ---- records -------------------------------------------------------- */

#define BGP_CHUNK_SHIFT	21

static u64 bgp_nchunks(u64 capacity)
{
	return DIV_ROUND_UP_ULL(capacity, 1ULL << BGP_CHUNK_SHIFT);
}

/* under the write lock, after adding [start, end) */
static void bgp_chunks_set(struct bgpmem_device *bp, u64 start, u64 end)
{
	u64 c;

	for (c = start >> BGP_CHUNK_SHIFT; c <= (end - 1) >> BGP_CHUNK_SHIFT; c++)
		set_bit(c, bp->chunks);
}

/* under the write lock, after removing [start, end) */
static void bgp_chunks_update(struct bgpmem_device *bp, u64 start, u64 end)
{
	u64 c;

	for (c = start >> BGP_CHUNK_SHIFT; c <= (end - 1) >> BGP_CHUNK_SHIFT;
	     c++) {
		if (!bgp_set_first(&bp->poison, c << BGP_CHUNK_SHIFT,
				   (c + 1) << BGP_CHUNK_SHIFT))
			clear_bit(c, bp->chunks);
	}
}

/* may a record touch [off, off + len)? O(chunks), no lock */
static bool bgp_chunks_hit(struct bgpmem_device *bp, u64 off, u64 len)
{
	u64 first = off >> BGP_CHUNK_SHIFT;
	u64 last = (off + len - 1) >> BGP_CHUNK_SHIFT;
	u64 n = bgp_nchunks(bp->capacity);

	if (!len || first >= n)
		return false;
	last = min(last, n - 1);
	return find_next_bit(bp->chunks, last + 1, first) <= last;
}

/* the standard badblocks list takes int sector counts */
#define BGP_BB_CHUNK	BIT_ULL(30)

static void bgp_bb_notify(struct bgpmem_device *bp)
{
	if (bp->bb_state)
		sysfs_notify_dirent(bp->bb_state);
}

static void bgp_import_bb(struct bgpmem_device *bp, int src, u64 skip_start,
			  u64 skip_end);
static void bgp_bb_set(struct bgpmem_device *bp, u64 start, u64 end);

/*
 * Rebuild the badblocks mirror from the records (a clear could not split).
 * Entries written to /sys/block/X/badblocks and not imported yet are
 * imported first, but for [@skip_start, @skip_end): the range whose records
 * were just dropped, with the data written, whose entries could not be
 * cleared.
 */
static void bgp_resync_bb(struct bgpmem_device *bp, u64 skip_start,
			  u64 skip_end)
{
	sector_t s, n = bp->capacity >> SECTOR_SHIFT;
	struct bgp_range *r;

	lockdep_assert_held(&bp->mutex);
	if (READ_ONCE(bp->bb.changed))
		bgp_import_bb(bp, BGPMEM_SRC_SYSFS, skip_start, skip_end);
	for (s = 0; s < n; s += BGP_BB_CHUNK)
		badblocks_clear(&bp->bb, s, min_t(u64, BGP_BB_CHUNK, n - s));
	bp->bb_overflow = false;
	for (r = bgp_set_first(&bp->poison, 0, U64_MAX); r;
	     r = bgp_set_next(r, U64_MAX)) {
		bgp_bb_set(bp, r->start, r->end);
		if (bp->bb_overflow)
			break;
	}
}

/*
 * badblocks_check(), repeated whole while the list's seqlock says a writer
 * ran during it: 6.12's _badblocks_check() retries a pass that raced with
 * a writer (bgp_import_bb() takes the write seqlock to copy the list) over
 * the range it has already consumed, that is over nothing, and answers 0
 * (no bad blocks) whatever the list holds.
 */
static int bgp_bb_check(struct badblocks *bb, sector_t s, int sectors)
{
	sector_t first;
	unsigned int seq;
	int n, rv;

	do {
		seq = read_seqbegin(&bb->lock);
		rv = badblocks_check(bb, s, sectors, &first, &n);
	} while (read_seqretry(&bb->lock, seq) &&
		 /* test-only bug: the stock answer, from a retried pass */
		 !bgp_fault(BGP_FAULT_BB_RETRY_MISS));
	return rv;
}

/* does the badblocks list hold a bad sector in [start, end)? lockless */
static bool bgp_bb_hit(struct bgpmem_device *bp, u64 start, u64 end)
{
	sector_t s = start >> SECTOR_SHIFT;
	sector_t e = DIV_ROUND_UP_ULL(end, SECTOR_SIZE);

	for (; s < e; s += BGP_BB_CHUNK)
		if (bgp_bb_check(&bp->bb, s, min_t(u64, BGP_BB_CHUNK, e - s)))
			return true;
	return false;
}

/*
 * The driver's records fill at most this much of the badblocks list: the
 * rest is for lines written to /sys/block/X/badblocks, which must not be
 * refused because the driver's records filled the list.
 */
#define BGP_BB_OURS	(MAX_BADBLOCKS - 64)

static void bgp_bb_set(struct bgpmem_device *bp, u64 start, u64 end)
{
	u64 s = start >> SECTOR_SHIFT, e = end >> SECTOR_SHIFT;

	for (; s < e; s += BGP_BB_CHUNK)
		if (READ_ONCE(bp->bb.count) >= BGP_BB_OURS ||
		    badblocks_set(&bp->bb, s, min(BGP_BB_CHUNK, e - s), 1))
			bp->bb_overflow = true;
}

static void bgp_bb_clear(struct bgpmem_device *bp, u64 start, u64 end)
{
	u64 s = start >> SECTOR_SHIFT, e = end >> SECTOR_SHIFT;

	for (; s < e; s += BGP_BB_CHUNK) {
		u64 n = min(BGP_BB_CHUNK, e - s);

		/*
		 * badblocks_clear() returns 1 both when there was nothing to
		 * clear and when the list was full and the clear needed a
		 * split: only what is left tells them apart.
		 */
		badblocks_clear(&bp->bb, s, n);
		if (bgp_bb_hit(bp, s << SECTOR_SHIFT, (s + n) << SECTOR_SHIFT)) {
			bgp_resync_bb(bp, start, end);
			return;
		}
	}
}

/*
 * After the driver's own change of @bb (which sets bb.changed, as a write
 * to /sys/block/X/badblocks does): import at once, under the mutex held
 * for that change anyway, so bb.changed is clear again and I/O does not
 * look the list up until sysfs really changes it. Entries written to sysfs
 * meanwhile are imported with them, but for [@skip_start, @skip_end).
 */
static void bgp_settle_bb(struct bgpmem_device *bp, u64 skip_start,
			  u64 skip_end)
{
	lockdep_assert_held(&bp->mutex);
	if (!bp->bb_importing && READ_ONCE(bp->bb.changed))
		bgp_import_bb(bp, BGPMEM_SRC_SYSFS, skip_start, skip_end);
}

/* is [start, end) already fully recorded? */
static bool bgp_covered(struct bgpmem_device *bp, u64 start, u64 end)
{
	struct bgp_range *r = bgp_set_first(&bp->poison, start, end);

	return r && r->start <= start && r->end >= end;
}

/**
 * bgp_add_record() - record poison, rounded outward to poison blocks
 * @bp: the device
 * @off: device byte offset
 * @len: bytes
 * @src: BGPMEM_SRC_*, for the trace event
 *
 * Context: process, @bp->mutex held.
 * Return: 0 or -ENOMEM.
 */
static int bgp_add_record(struct bgpmem_device *bp, u64 off, u64 len, int src)
{
	u64 start = round_down(off, bp->pbs);
	u64 end = min(round_up(off + len, bp->pbs), bp->capacity);
	struct bgp_range *spare;

	lockdep_assert_held(&bp->mutex);
	if (start >= end || bgp_covered(bp, start, end))
		return 0;
	spare = bgp_set_prealloc(GFP_NOIO);
	if (!spare)
		return -ENOMEM;
	write_lock(&bp->lock);
	bgp_set_add(&bp->poison, start, end, &spare);
	bgp_chunks_set(bp, start, end);
	write_unlock(&bp->lock);
	kfree(spare);
	bgp_bb_set(bp, start, end);
	trace_bgpmem_poison_set(bgp_name(bp), start, end - start, src);
	bgp_settle_bb(bp, 0, 0);
	return 0;
}

/* drop the records in [start, end): the data there is written and flushed */
static void bgp_drop_records(struct bgpmem_device *bp, u64 start, u64 end)
{
	lockdep_assert_held(&bp->mutex);
	bp->clear_seq++;
	write_lock(&bp->lock);
	/* bp->spare was allocated by bgp_write_begin(); kept if unused */
	bgp_set_remove(&bp->poison, start, end, &bp->spare);
	bgp_chunks_update(bp, start, end);
	write_unlock(&bp->lock);
	bgp_bb_clear(bp, start, end);
	bgp_settle_bb(bp, start, end);
	if (bp->store)
		bgp_store_remove(bp->store, bgp_to_phys(bp, start), end - start);
	bgp_bb_notify(bp);
	trace_bgpmem_poison_clear(bgp_name(bp), start, end - start);
}

/*
 * Test-only (fault build): the import work waits 200 ms in its gap; with
 * bb_seq_storm it keeps the list's write seqlock busy meanwhile (sections
 * that change nothing, as its copy of the list is one), so that lockless
 * lookups race a writer in nearly every pass. It sleeps a little every
 * 2 ms: the workqueue must not see a CPU hog.
 */
static void bgp_import_hold(struct bgpmem_device *bp)
{
	unsigned long end = jiffies + msecs_to_jiffies(200), flags;
	ktime_t burst;

	if (!bgp_fault(BGP_FAULT_BB_SEQ_STORM)) {
		msleep(200);
		return;
	}
	while (time_before(jiffies, end)) {
		burst = ktime_add_us(ktime_get(), 2000);
		while (ktime_before(ktime_get(), burst)) {
			write_seqlock_irqsave(&bp->bb.lock, flags);
			write_sequnlock_irqrestore(&bp->bb.lock, flags);
			cpu_relax();
		}
		usleep_range(50, 100);
	}
}

/*
 * Import the badblocks list (writes to /sys/block/X/badblocks) into the
 * records. The list only ever holds a subset of the records plus such new
 * entries, so importing again is harmless.
 */
static void bgp_import_bb(struct bgpmem_device *bp, int src, u64 skip_start,
			  u64 skip_end)
{
	unsigned long flags;
	int i, n, pass;
	u64 *copy;

	lockdep_assert_held(&bp->mutex);
	copy = kmalloc(PAGE_SIZE, GFP_NOIO);
	if (!copy)
		return;
	WRITE_ONCE(bp->bb_importing, true);
	/*
	 * Adding a record sets bb.changed again (the mirror gets the whole
	 * block): a second pass finds everything recorded and leaves it clear
	 * unless sysfs changed the list meanwhile.
	 */
	for (pass = 0; pass < 3 && READ_ONCE(bp->bb.changed); pass++) {
		write_seqlock_irqsave(&bp->bb.lock, flags);
		bp->bb.changed = 0;
		n = min_t(int, bp->bb.count, PAGE_SIZE / sizeof(u64));
		memcpy(copy, bp->bb.page, n * sizeof(u64));
		write_sequnlock_irqrestore(&bp->bb.lock, flags);
		/* test-only: hold the gap open that bgp_bb_pending() covers */
		if (pass == 0 && current_work() == &bp->import_work &&
		    bgp_fault(BGP_FAULT_IMPORT_DELAY))
			bgp_import_hold(bp);

		for (i = 0; i < n; i++) {
			u64 s = BB_OFFSET(copy[i]) << SECTOR_SHIFT;
			u64 l = (u64)BB_LEN(copy[i]) << SECTOR_SHIFT;

			if (s >= bp->capacity)
				continue;
			if (skip_start >= skip_end) {
				bgp_add_record(bp, s, l, src);
				continue;
			}
			/* the parts outside [skip_start, skip_end) */
			if (s < skip_start)
				bgp_add_record(bp, s,
					       min(s + l, skip_start) - s, src);
			if (s + l > skip_end)
				bgp_add_record(bp, max(s, skip_end),
					       s + l - max(s, skip_end), src);
		}
	}
	/* lockless readers that see false see the records (bgp_bb_pending) */
	smp_store_release(&bp->bb_importing, false);
	kfree(copy);
}

/**
 * bgp_read_bus_poison() - the bus's poison on the device, into a set
 * @bp: the device
 * @scratch: an empty badblocks list, for nvdimm_badblocks_populate()
 * @out: an empty set; gets device byte ranges, 512 B aligned
 *
 * nvdimm_badblocks_populate() fills a struct badblocks, which holds at
 * most MAX_BADBLOCKS ranges of at most BB_MAX_LEN sectors and drops what
 * does not fit. So the device is read in windows: a window that fills the
 * list is read again in halves, and the window grows again after one that
 * fits. A window of fewer than MAX_BADBLOCKS sectors cannot fill it, so
 * nothing the bus reports is lost.
 *
 * Context: process, no bgpmem lock held: nvdimm_badblocks_populate() takes
 * the bus's reconfig_mutex.
 * Return: 0 or -ENOMEM; @out holds what was found either way.
 */
static int bgp_read_bus_poison(struct bgpmem_device *bp,
			       struct badblocks *scratch, struct bgp_set *out)
{
	u64 base = bgp_to_phys(bp, 0), pos = 0, win = bp->capacity;
	struct bgp_range *spare = NULL;
	int rc = 0;

	while (pos < bp->capacity && !rc) {
		u64 len = min(win, bp->capacity - pos);
		struct range range = {
			.start = base + pos,
			.end = base + pos + len - 1,
		};
		int i;

		scratch->count = 0;
		/* test-only bug: what a full mirror cannot hold is lost */
		if (READ_ONCE(bp->bb_overflow) &&
		    bgp_fault(BGP_FAULT_MIRROR_DROP)) {
			pos += len;
			continue;
		}
		nvdimm_badblocks_populate(bp->nd_region, scratch, &range);
		if (badblocks_full(scratch) && len >= 2 * SECTOR_SIZE) {
			/* some of the window's poison may not have fit */
			win = round_down(len / 2, SECTOR_SIZE);
			continue;
		}
		for (i = 0; i < scratch->count; i++) {
			u64 s = pos + (BB_OFFSET(scratch->page[i]) << SECTOR_SHIFT);
			u64 l = (u64)BB_LEN(scratch->page[i]) << SECTOR_SHIFT;

			if (!spare)
				spare = bgp_set_prealloc(GFP_KERNEL);
			if (!spare) {
				rc = -ENOMEM;
				break;
			}
			bgp_set_add(out, s, s + l, &spare);
		}
		pos += len;
		win = len * 2;
		cond_resched();
	}
	kfree(spare);
	return rc;
}

/* a clear racing with the bus read: read again at most this many times */
#define BGP_POPULATE_RETRIES	3

/**
 * bgp_populate() - add the bus's poison (ARS results, badrange) to the records
 * @bp: the device
 *
 * The bus is read into a scratch set with no bgpmem lock held, and
 * @bp->mutex is taken only to import from it: the bio path takes
 * @bp->mutex under filesystem locks, and nvdimm_badblocks_populate() takes
 * the bus's reconfig_mutex, which nd_ioctl() holds across copies to and
 * from user memory (mmap_lock, and from there filesystem locks).
 *
 * A block that a write clears between the bus read and the import was
 * still in the bus's list when it was read, and would come back as a
 * record (stale: a read of good data would fail). Clears drop records only
 * under @bp->mutex and count in @bp->clear_seq, so such a read is done
 * again; after BGP_POPULATE_RETRIES the last one is imported anyway, as a
 * record too many is safe and a record too few is not.
 *
 * Context: process; takes @bp->mutex, the caller must not hold it.
 * Return: 0 or -ENOMEM (some bus poison may have no record).
 */
static int bgp_populate(struct bgpmem_device *bp)
{
	struct bgp_set found = BGP_SET_INIT;
	struct badblocks scratch;
	unsigned long seq;
	struct bgp_range *r;
	int rc, tries;

	/* not devm: an ioctl may run this while the device is unbound */
	if (badblocks_init(&scratch, 1))
		return -ENOMEM;
	for (tries = 0;; tries++) {
		mutex_lock(&bp->mutex);
		seq = bp->clear_seq;
		mutex_unlock(&bp->mutex);

		rc = bgp_read_bus_poison(bp, &scratch, &found);

		mutex_lock(&bp->mutex);
		if (bp->clear_seq == seq || tries == BGP_POPULATE_RETRIES)
			break;
		mutex_unlock(&bp->mutex);
		bgp_set_destroy(&found);
	}
	for (r = bgp_set_first(&found, 0, U64_MAX); r;
	     r = bgp_set_next(r, U64_MAX)) {
		if (r->start < bp->capacity &&
		    bgp_add_record(bp, r->start, r->end - r->start,
				   BGPMEM_SRC_BUS))
			rc = -ENOMEM;
	}
	mutex_unlock(&bp->mutex);
	bgp_set_destroy(&found);
	badblocks_exit(&scratch);
	return rc;
}

/*
 * bgp_import_bb() clears bb.changed before it adds the records: in between,
 * only bb_importing says that the list holds entries the records lack yet.
 * Pairs with the write barrier of the seqlock there (importing set before
 * changed is cleared) and with its release of bb_importing (records added
 * before it reads false).
 */
static bool bgp_bb_pending(struct bgpmem_device *bp)
{
	if (READ_ONCE(bp->bb.changed))
		return true;
	/* changed read before bb_importing: the seqlock's smp_wmb() */
	smp_rmb();
	/* true, or false and the records are there: smp_store_release() */
	if (!smp_load_acquire(&bp->bb_importing))
		return false;
	/* test-only bug: the import in flight is not seen */
	return !bgp_fault(BGP_FAULT_IMPORT_UNSEEN);
}

static bool bgp_may_be_poisoned(struct bgpmem_device *bp)
{
	return bgp_bb_pending(bp) || READ_ONCE(bp->poison.nr);
}

/*
 * Import entries written to /sys/block/X/badblocks; when they took the
 * list past the driver's share, rebuild it from the records, so that room
 * is left for the next ones. Context: @bp->mutex held.
 */
static void bgp_import_pending(struct bgpmem_device *bp)
{
	lockdep_assert_held(&bp->mutex);
	if (!READ_ONCE(bp->bb.changed))
		return;
	bgp_import_bb(bp, BGPMEM_SRC_SYSFS, 0, 0);
	if (READ_ONCE(bp->bb.count) > BGP_BB_OURS)
		bgp_resync_bb(bp, 0, 0);
	bgp_bb_notify(bp);
}

/*
 * pick up writes to /sys/block/X/badblocks, and wait for an import in
 * flight (the import work's): its entries are in neither the mark nor the
 * records until it is done
 */
static void bgp_sync_sysfs(struct bgpmem_device *bp)
{
	if (likely(!bgp_bb_pending(bp)))
		return;
	mutex_lock(&bp->mutex);
	bgp_import_pending(bp);
	mutex_unlock(&bp->mutex);
}

static void bgp_import_workfn(struct work_struct *work)
{
	bgp_sync_sysfs(container_of(work, struct bgpmem_device, import_work));
}

/*
 * Does [off, off + len) touch a poisoned block? Never takes @bp->mutex:
 * readers do not wait for platform clears, and the I/O path takes the
 * mutex only to clear poison it overwrites. Entries written to
 * /sys/block/X/badblocks and not imported yet are looked up in the list
 * itself (lockless), over the range rounded out to whole poison blocks,
 * as they will be once imported.
 */
static bool bgp_poisoned(struct bgpmem_device *bp, u64 off, u64 len)
{
	u64 pbs = READ_ONCE(bp->pbs);
	bool bad;

	if (likely(!bgp_may_be_poisoned(bp)))
		return false;
	if (bgp_bb_pending(bp)) {
		/* sysfs entries to import: not here, by the work */
		schedule_work(&bp->import_work);
		if (bgp_bb_hit(bp, round_down(off, pbs),
			       round_up(off + len, pbs)))
			return true;
	}
	if (!READ_ONCE(bp->poison.nr) || !bgp_chunks_hit(bp, off, len))
		return false;
	read_lock(&bp->lock);
	bad = bgp_set_first(&bp->poison, off, off + len);
	read_unlock(&bp->lock);
	return bad;
}

/* ---- clearing ------------------------------------------------------- */

/* struct pages of fully cleared pages may be mapped again */
static void bgp_mkpage_present(struct bgpmem_device *bp, u64 phys, u64 len)
{
	unsigned long pfn, pfn_start = PHYS_PFN(PAGE_ALIGN(phys));
	unsigned long pfn_end = PHYS_PFN(phys + len);

	if (!(bp->pfn_flags & PFN_MAP) || is_vmalloc_addr(bp->virt_addr))
		return;
	for (pfn = pfn_start; pfn < pfn_end; pfn++) {
		struct page *page = pfn_to_page(pfn);

		if (IS_ENABLED(CONFIG_MEMORY_FAILURE) &&
		    TestClearPageHWPoison(page))
			clear_mce_nospec(pfn);
	}
}

/*
 * Platform clear of [start, end). Return: 0, -EOPNOTSUPP when the bus has
 * no clear-error command, -EIO when a clear failed or was short.
 */
static int bgp_platform_clear(struct bgpmem_device *bp, u64 start, u64 end)
{
	u64 off;

	if (READ_ONCE(bp->clear_support) == BGPMEM_CLEAR_UNSUPPORTED) {
		atomic64_inc(&bp->clear_unsupported);
		trace_bgpmem_clear_failed(bgp_name(bp), bgp_to_phys(bp, start),
					  end - start, -EOPNOTSUPP);
		return -EOPNOTSUPP;
	}
	for (off = start; off < end;) {
		unsigned int n = min_t(u64, end - off, SZ_1G);
		u64 phys = bgp_to_phys(bp, off);
		unsigned int noio = memalloc_noio_save();
		long cleared = nvdimm_clear_poison(bp->dev, phys, n);

		memalloc_noio_restore(noio);
		if (cleared == -ENOTTY || cleared == -EOPNOTSUPP) {
			WRITE_ONCE(bp->clear_support, BGPMEM_CLEAR_UNSUPPORTED);
			atomic64_inc(&bp->clear_unsupported);
			trace_bgpmem_clear_failed(bgp_name(bp), phys, n,
						  -EOPNOTSUPP);
			return -EOPNOTSUPP;
		}
		if (cleared < 0 || cleared < n) {
			atomic64_inc(&bp->clear_failures);
			trace_bgpmem_clear_failed(bgp_name(bp), phys, n,
						  cleared < 0 ? cleared : -EIO);
			dev_warn_ratelimited(bp->dev,
					     "platform clear of %#llx+%u failed: %ld\n",
					     phys, n, cleared);
			return -EIO;
		}
		bgp_mkpage_present(bp, phys, n);
		arch_invalidate_pmem(bgp_to_virt(bp, off), n);
		WRITE_ONCE(bp->clear_support, BGPMEM_CLEAR_SUPPORTED);
		off += n;
	}
	return 0;
}

static void bgp_refused(struct bgpmem_device *bp, u64 off, u64 len, int op,
			int err)
{
	atomic64_inc(&bp->refused_io);
	trace_bgpmem_io_refused(bgp_name(bp), off, len, op, err);
}

/**
 * bgp_write_begin() - check and prepare a write or zeroing of [off, off+len)
 * @bp: the device
 * @off: device byte offset
 * @len: bytes
 * @op: BGP_OP_*, for the trace event
 * @locked: set when poisoned blocks were cleared at the platform; the caller
 *	then writes the data and calls bgp_write_end(), with @bp->mutex held
 *
 * Fails, before anything is written, if a poisoned block is only partly
 * covered, or if a covered poisoned block cannot be cleared.
 *
 * Return: 0, -EIO, or -EOPNOTSUPP (the platform cannot clear).
 */
static int bgp_write_begin(struct bgpmem_device *bp, u64 off, u64 len, int op,
			   bool *locked)
{
	u64 end = off + len, pbs = READ_ONCE(bp->pbs);
	u64 bs = round_down(off, pbs), be = round_up(end, pbs);
	struct bgp_range *r;
	int rc;

	*locked = false;
	if (!len || !bgp_poisoned(bp, bs, be - bs))
		return 0;

	mutex_lock(&bp->mutex);
	bgp_import_pending(bp);
	/* records only change under the mutex: no read lock needed */
	if ((bs < off && bgp_set_first(&bp->poison, bs, bs + pbs)) ||
	    (be > end && bgp_set_first(&bp->poison, be - pbs, be))) {
		rc = -EIO;
		/* test-only bug: clear the partly written blocks whole */
		if (!bgp_fault(BGP_FAULT_PARTIAL_CLEAR))
			goto refuse;
		off = bs;
		end = be;
	}
	/* test-only: a spare from before would hide the injected failure */
	if (bp->spare && bgp_fault_on(BGP_FAULT_NOMEM_IO)) {
		kfree(bp->spare);
		bp->spare = NULL;
	}
	/* dropping the records may split one: no allocation after a clear */
	if (!bp->spare)
		bp->spare = bgp_set_prealloc(GFP_NOIO);
	if (!bp->spare) {
		rc = -ENOMEM;
		goto refuse;
	}
	/* test-only bug: the records go before the blocks are good */
	if (bgp_fault(BGP_FAULT_DROP_EARLY)) {
		bgp_drop_records(bp, off, end);
		rc = bgp_platform_clear(bp, off, end);
		if (rc)
			goto refuse;
	}
	for (r = bgp_set_first(&bp->poison, off, end); r;
	     r = bgp_set_next(r, end)) {
		rc = bgp_platform_clear(bp, max(r->start, off),
					min(r->end, end));
		if (rc)
			goto refuse;
	}
	*locked = true;
	return 0;

refuse:
	mutex_unlock(&bp->mutex);
	bgp_refused(bp, off, len, op, rc);
	return rc;
}

/*
 * The data is written: make it durable, then drop the records. A failed
 * flush (virtio-pmem can fail it) keeps them: the blocks are not known to
 * be good. Return: 0, or the flush's error (the I/O must fail).
 */
static int bgp_write_end(struct bgpmem_device *bp, u64 off, u64 len, bool ok)
{
	int rc = 0;

	if (ok) {
		/* test-only: the partly written blocks were cleared whole */
		if (bgp_fault_on(BGP_FAULT_PARTIAL_CLEAR)) {
			u64 pbs = READ_ONCE(bp->pbs), end = off + len;

			off = round_down(off, pbs);
			len = round_up(end, pbs) - off;
		}
		/* test-only: a flush that fails (virtio-pmem can) */
		rc = bgp_fault(BGP_FAULT_FLUSH_EIO) ? -EIO :
		     nvdimm_flush(bp->nd_region, NULL);
		if (!rc)
			bgp_drop_records(bp, off, off + len);
	}
	mutex_unlock(&bp->mutex);
	return rc;
}

/* ---- I/O ------------------------------------------------------------ */

static void bgp_zero(struct bgpmem_device *bp, u64 off, u64 len)
{
	void *addr = bgp_to_virt(bp, off);

	while (len) {
		unsigned int n = min_t(u64, len, PAGE_SIZE);

		memcpy_flushcache(addr, page_address(ZERO_PAGE(0)), n);
		addr += n;
		len -= n;
		cond_resched();
	}
}

static blk_status_t bgp_copy_bio(struct bgpmem_device *bp, struct bio *bio,
				 bool write)
{
	struct bvec_iter iter;
	struct bio_vec bvec;

	bio_for_each_segment(bvec, bio, iter) {
		void *pmem = bgp_to_virt(bp, (u64)iter.bi_sector << SECTOR_SHIFT);
		void *mem = kmap_local_page(bvec.bv_page);
		unsigned long rem = 0;

		if (write) {
			flush_dcache_page(bvec.bv_page);
			memcpy_flushcache(pmem, mem + bvec.bv_offset,
					  bvec.bv_len);
		} else {
			rem = copy_mc_to_kernel(mem + bvec.bv_offset, pmem,
						bvec.bv_len);
			flush_dcache_page(bvec.bv_page);
		}
		kunmap_local(mem);
		if (rem)
			return BLK_STS_IOERR;
	}
	return BLK_STS_OK;
}

static void bgpmem_submit_bio(struct bio *bio)
{
	struct bgpmem_device *bp = bio->bi_bdev->bd_disk->private_data;
	u64 off = (u64)bio->bi_iter.bi_sector << SECTOR_SHIFT;
	u64 len = bio->bi_iter.bi_size;
	blk_status_t sts = BLK_STS_OK;
	unsigned long start = 0;
	bool do_acct, locked;
	int ret = 0;

	if (bio->bi_opf & REQ_PREFLUSH) {
		ret = nvdimm_flush(bp->nd_region, NULL);
		if (ret) {
			bio->bi_status = errno_to_blk_status(ret);
			bio_endio(bio);
			return;
		}
	}

	do_acct = blk_queue_io_stat(bio->bi_bdev->bd_disk->queue);
	if (do_acct)
		start = bio_start_io_acct(bio);

	switch (bio_op(bio)) {
	case REQ_OP_READ:
		if (len && bgp_poisoned(bp, off, len)) {
			bgp_refused(bp, off, len, BGP_OP_READ, -EIO);
			sts = BLK_STS_IOERR;
			break;
		}
		sts = bgp_copy_bio(bp, bio, false);
		break;
	case REQ_OP_WRITE:
	case REQ_OP_WRITE_ZEROES:
		if (bgp_write_begin(bp, off, len, BGP_OP_WRITE, &locked)) {
			sts = BLK_STS_IOERR;
			break;
		}
		if (bio_op(bio) == REQ_OP_WRITE)
			sts = bgp_copy_bio(bp, bio, true);
		else
			bgp_zero(bp, off, len);
		if (locked && bgp_write_end(bp, off, len, sts == BLK_STS_OK))
			sts = BLK_STS_IOERR;
		break;
	case REQ_OP_FLUSH:
		break;
	default:
		sts = BLK_STS_NOTSUPP;
		break;
	}
	bio->bi_status = sts;

	if (do_acct)
		bio_end_io_acct(bio, start);

	if ((bio->bi_opf & REQ_FUA) && !bio->bi_status) {
		ret = nvdimm_flush(bp->nd_region, bio);
#ifdef NVDIMM_FLUSH_ASYNC
		/* virtio-pmem ends @bio from its flush work (6.12.113 on) */
		if (ret == NVDIMM_FLUSH_ASYNC)
			return;
#endif
		/* before: it chained a child flush bio to @bio and returned 0 */
		if (ret)
			bio->bi_status = errno_to_blk_status(ret);
	}
	bio_endio(bio);
}

/* ---- ioctls --------------------------------------------------------- */

static int bgp_check_range(struct block_device *bdev,
			   const struct bgpmem_range *r, u64 *off)
{
	u64 end;

	if (r->flags || r->reserved || !r->len)
		return -EINVAL;
	if (check_add_overflow(r->offset, r->len, &end) ||
	    end > bdev_nr_bytes(bdev))
		return -ERANGE;
	*off = r->offset + ((u64)bdev->bd_start_sect << SECTOR_SHIFT);
	return 0;
}

static int bgp_ioc_info(struct bgpmem_device *bp, struct block_device *bdev,
			struct bgpmem_info *info)
{
	info->size = bdev_nr_bytes(bdev);
	info->poison_block_size = READ_ONCE(bp->pbs);
	info->clear_support = READ_ONCE(bp->clear_support);
	info->mode = bp->fsdax ? BGPMEM_MODE_FSDAX : BGPMEM_MODE_RAW;
	info->clear_failures = atomic64_read(&bp->clear_failures);
	info->clear_unsupported = atomic64_read(&bp->clear_unsupported);
	info->refused_io = atomic64_read(&bp->refused_io);
	info->phys_start = bgp_to_phys(bp, (u64)bdev->bd_start_sect <<
				       SECTOR_SHIFT);
	bgp_sync_sysfs(bp);
	read_lock(&bp->lock);
	if (!bdev_is_partition(bdev)) {
		info->records = bp->poison.nr;
		info->poisoned_bytes = bp->poison.bytes;
	} else {
		/* a partition: its records, clipped, as LIST gives them */
		u64 base = (u64)bdev->bd_start_sect << SECTOR_SHIFT;
		u64 limit = base + bdev_nr_bytes(bdev);
		struct bgp_range *r;

		info->records = 0;
		info->poisoned_bytes = 0;
		for (r = bgp_set_first(&bp->poison, base, limit); r;
		     r = bgp_set_next(r, limit)) {
			info->records++;
			info->poisoned_bytes += min(r->end, limit) -
						max(r->start, base);
		}
	}
	read_unlock(&bp->lock);
	strscpy(info->namespace, dev_name(&bp->ndns->dev),
		sizeof(info->namespace));
	return 0;
}

/* fills *@outp (kvfree() it) with up to @l->count records; sets @l->count */
static int bgp_ioc_list(struct bgpmem_device *bp, struct block_device *bdev,
			struct bgpmem_list *l, struct bgpmem_range **outp)
{
	u64 base = (u64)bdev->bd_start_sect << SECTOR_SHIFT;
	u64 limit = base + bdev_nr_bytes(bdev);
	struct bgpmem_range *out;
	struct bgp_range *r;
	u32 n = 0;

	if (l->reserved || !l->count || l->count > BGPMEM_LIST_MAX)
		return -EINVAL;
	if (l->start >= limit - base) {
		l->count = 0;
		return 0;
	}
	out = kvcalloc(l->count, sizeof(*out), GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	bgp_sync_sysfs(bp);
	read_lock(&bp->lock);
	for (r = bgp_set_first(&bp->poison, base + l->start, limit);
	     r && n < l->count; r = bgp_set_next(r, limit)) {
		u64 s = max(r->start, base), e = min(r->end, limit);

		out[n].offset = s - base;
		out[n].len = e - s;
		n++;
	}
	read_unlock(&bp->lock);
	l->count = n;
	*outp = out;
	return 0;
}

static int bgp_ioc_inject(struct bgpmem_device *bp, struct block_device *bdev,
			  const struct bgpmem_range *r)
{
	u64 off, start, end, pbs;
	int rc;

	rc = bgp_check_range(bdev, r, &off);
	if (rc)
		return rc;
	pbs = READ_ONCE(bp->pbs);
	start = round_down(off, pbs);
	end = min(round_up(off + r->len, pbs), bp->capacity);
	mutex_lock(&bp->mutex);
	rc = bp->store ? bgp_store_add(bp->store, bgp_to_phys(bp, start),
				       end - start) : 0;
	if (!rc)
		rc = bgp_add_record(bp, start, end - start, BGPMEM_SRC_INJECT);
	mutex_unlock(&bp->mutex);
	bgp_bb_notify(bp);
	return rc;
}

/*
 * Drop the block device's page cache of [start, end] (bytes, inclusive) as
 * 6.12's truncate_bdev_range() does for BLKZEROOUT (not exported): with a
 * temporary claim, or, when someone else holds the device exclusively (a
 * mounted file system), by invalidating, which fails with -EBUSY on pages
 * that are dirty or in use. Dirty pages left in the cache would be written
 * back over the zeroes.
 */
static int bgp_truncate_bdev_range(struct block_device *bdev, blk_mode_t mode,
				   loff_t start, loff_t end)
{
	if (!(mode & BLK_OPEN_EXCL)) {
		if (bd_prepare_to_claim(bdev, bgp_truncate_bdev_range, NULL))
			return invalidate_inode_pages2_range(bdev->bd_mapping,
							     start >> PAGE_SHIFT,
							     end >> PAGE_SHIFT);
	}
	truncate_inode_pages_range(bdev->bd_mapping, start, end);
	if (!(mode & BLK_OPEN_EXCL))
		bd_abort_claiming(bdev, bgp_truncate_bdev_range);
	return 0;
}

/*
 * BGPMEM_IOC_CLEAR: like BLKZEROOUT (write access, not read-only, the page
 * cache of the range dropped first and kept out while zeroing), but only
 * whole poison blocks, and poisoned blocks are cleared at the platform.
 */
static int bgp_ioc_clear(struct bgpmem_device *bp, struct block_device *bdev,
			 blk_mode_t mode, const struct bgpmem_range *r)
{
	struct address_space *mapping = bdev->bd_mapping;
	bool locked;
	u64 off, pbs;
	int rc;

	if (!(mode & BLK_OPEN_WRITE))
		return -EBADF;
	if (bdev_read_only(bdev))
		return -EPERM;
	rc = bgp_check_range(bdev, r, &off);
	if (rc)
		return rc;
	pbs = READ_ONCE(bp->pbs);
	if (!IS_ALIGNED(off, pbs) || !IS_ALIGNED(r->len, pbs))
		return -EINVAL;

	inode_lock(mapping->host);
	filemap_invalidate_lock(mapping);
	rc = bgp_truncate_bdev_range(bdev, mode, r->offset,
				     r->offset + r->len - 1);
	if (rc)
		goto out;
	rc = bgp_write_begin(bp, off, r->len, BGP_OP_CLEAR, &locked);
	if (rc)
		goto out;
	bgp_zero(bp, off, r->len);
	if (locked)
		rc = bgp_write_end(bp, off, r->len, true);
	else
		rc = nvdimm_flush(bp->nd_region, NULL);
	if (rc > 0)	/* NVDIMM_FLUSH_ASYNC is for bios only */
		rc = 0;
out:
	filemap_invalidate_unlock(mapping);
	inode_unlock(mapping->host);
	return rc;
}

static int bgp_ioc_scrub(struct bgpmem_device *bp)
{
	int rc = bgp_populate(bp);

	bgp_sync_sysfs(bp);
	bgp_bb_notify(bp);
	return rc;
}

/* the argument of every BGPMEM_IOC_*, _IOC_SIZE(cmd) bytes of it */
union bgp_ioc_arg {
	struct bgpmem_info info;
	struct bgpmem_list list;
	struct bgpmem_range range;
};

/*
 * The argument is copied in before bgp_enter() and out after bgp_exit():
 * an unbind waits for the ioctls inside, never for user memory (a fault
 * that userfaultfd holds, say). On a device that is not live, -ENXIO.
 */
static int bgpmem_ioctl(struct block_device *bdev, blk_mode_t mode,
			unsigned int cmd, unsigned long arg)
{
	struct bgpmem_device *bp = bdev->bd_disk->private_data;
	void __user *argp = (void __user *)arg;
	struct bgpmem_range *out = NULL;
	union bgp_ioc_arg u = {};
	int rc;

	switch (cmd) {
	case BGPMEM_IOC_INFO:
	case BGPMEM_IOC_LIST:
		break;
	case BGPMEM_IOC_INJECT:
	case BGPMEM_IOC_CLEAR:
	case BGPMEM_IOC_SCRUB:
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		break;
	default:
		return -ENOTTY;
	}
	BUILD_BUG_ON(_IOC_SIZE(BGPMEM_IOC_LIST) > sizeof(u) ||
		     _IOC_SIZE(BGPMEM_IOC_INFO) > sizeof(u) ||
		     _IOC_SIZE(BGPMEM_IOC_CLEAR) > sizeof(u));
	if ((_IOC_DIR(cmd) & _IOC_WRITE) &&
	    copy_from_user(&u, argp, _IOC_SIZE(cmd)))
		return -EFAULT;

	if (!bgp_enter(bp))
		return -ENXIO;
	switch (cmd) {
	case BGPMEM_IOC_INFO:
		rc = bgp_ioc_info(bp, bdev, &u.info);
		break;
	case BGPMEM_IOC_LIST:
		rc = bgp_ioc_list(bp, bdev, &u.list, &out);
		break;
	case BGPMEM_IOC_INJECT:
		rc = bgp_ioc_inject(bp, bdev, &u.range);
		break;
	case BGPMEM_IOC_CLEAR:
		rc = bgp_ioc_clear(bp, bdev, mode, &u.range);
		break;
	default:
		rc = bgp_ioc_scrub(bp);
		break;
	}
	bgp_exit(bp);

	if (!rc && out &&
	    copy_to_user(u64_to_user_ptr(u.list.ranges), out,
			 u.list.count * sizeof(*out)))
		rc = -EFAULT;
	kvfree(out);
	if (!rc && (_IOC_DIR(cmd) & _IOC_READ) &&
	    copy_to_user(argp, &u, _IOC_SIZE(cmd)))
		rc = -EFAULT;
	return rc;
}

static void bgp_free(struct bgpmem_device *bp)
{
	/* a disk added and released by a failed probe: no bio is left */
	cancel_work_sync(&bp->import_work);
	bgp_set_destroy(&bp->poison);
	kfree(bp->spare);
	bitmap_free(bp->chunks);
	badblocks_exit(&bp->bb);
	mutex_destroy(&bp->mutex);
	kfree(bp);
}

/* the last reference to an added disk is gone: nothing can reach bp */
static void bgpmem_free_disk(struct gendisk *disk)
{
	bgp_free(disk->private_data);
}

static const struct block_device_operations bgpmem_fops = {
	.owner		= THIS_MODULE,
	.submit_bio	= bgpmem_submit_bio,
	.ioctl		= bgpmem_ioctl,
	.compat_ioctl	= blkdev_compat_ptr_ioctl,
	.free_disk	= bgpmem_free_disk,
};

/* ---- DAX ------------------------------------------------------------ */

static long bgpmem_dax_direct_access(struct dax_device *dax_dev, pgoff_t pgoff,
				     long nr_pages, enum dax_access_mode mode,
				     void **kaddr, pfn_t *pfn)
{
	struct bgpmem_device *bp = dax_get_private(dax_dev);
	u64 off = PFN_PHYS(pgoff);
	long avail;

	if (off >= bp->capacity)
		return -ERANGE;
	avail = PHYS_PFN(bp->capacity - off);
	if (kaddr)
		*kaddr = bgp_to_virt(bp, off);
	if (pfn)
		*pfn = phys_to_pfn_t(bgp_to_phys(bp, off), bp->pfn_flags);

	nr_pages = min(nr_pages, avail);
#ifdef BGPMEM_NFIT_TEST
	/* nfit_test: vmalloc memory, one page at a time (as its pmem-dax.c) */
	if (is_vmalloc_addr(bp->virt_addr)) {
		if (pfn)
			*pfn = page_to_pfn_t(vmalloc_to_page(bgp_to_virt(bp, off)));
		nr_pages = 1;
		avail = 1;
	}
#endif
	if (!bgp_may_be_poisoned(bp))
		return avail;
	if (bgp_poisoned(bp, off, PFN_PHYS(nr_pages))) {
		if (mode != DAX_RECOVERY_WRITE) {
			trace_bgpmem_io_refused(bgp_name(bp), off,
						PFN_PHYS(nr_pages), BGP_OP_DAX,
						-EHWPOISON);
			return -EHWPOISON;
		}
		/* no point letting fs/dax turn a sure failure into EFAULT */
		if (READ_ONCE(bp->clear_support) == BGPMEM_CLEAR_UNSUPPORTED) {
			atomic64_inc(&bp->clear_unsupported);
			bgp_refused(bp, off, PFN_PHYS(nr_pages), BGP_OP_DAX,
				    -EIO);
			return -EIO;
		}
	}
	/*
	 * The whole range, also in recovery mode: recovery_write then sees
	 * the entire remaining write and can refuse it before writing a byte.
	 */
	return nr_pages;
}

static int bgpmem_dax_zero_page_range(struct dax_device *dax_dev,
				      pgoff_t pgoff, size_t nr_pages)
{
	struct bgpmem_device *bp = dax_get_private(dax_dev);
	u64 off = PFN_PHYS(pgoff), len = PFN_PHYS(nr_pages);
	bool locked;

	if (off >= bp->capacity || len > bp->capacity - off)
		return -ERANGE;
	if (bgp_write_begin(bp, off, len, BGP_OP_DAX, &locked))
		return -EIO;
	bgp_zero(bp, off, len);
	if (locked && bgp_write_end(bp, off, len, true))
		return -EIO;
	return 0;
}

/*
 * When poisoned blocks were cleared, the copy from the caller's buffer runs
 * with bp->mutex held, and must not fault there: a fault takes mmap_lock
 * and the source file's locks, and can wait for I/O to this device (whose
 * bgp_sync_sysfs() takes bp->mutex) or for a userfaultfd handler doing such
 * I/O. So the source is faulted in first and copied with page faults
 * disabled; a copy cut short (the source was reclaimed or unmapped in
 * between) keeps the records and is done again.
 */
static size_t bgpmem_recovery_write(struct dax_device *dax_dev, pgoff_t pgoff,
				    void *addr, size_t bytes,
				    struct iov_iter *i)
{
	struct bgpmem_device *bp = dax_get_private(dax_dev);
	u64 off = PFN_PHYS(pgoff) + offset_in_page(addr);
	bool locked;
	size_t n;

	for (;;) {
		/* what cannot be read of the source fails as in any write */
		bytes -= fault_in_iov_iter_readable(i, bytes);
		/* refused: fs/dax reports 0 bytes as EFAULT (Documentation) */
		if (!bytes ||
		    bgp_write_begin(bp, off, bytes, BGP_OP_DAX, &locked))
			return 0;
		if (!locked)
			return _copy_from_iter_flushcache(addr, bytes, i);
		pagefault_disable();
		n = _copy_from_iter_flushcache(addr, bytes, i);
		pagefault_enable();
		if (bgp_write_end(bp, off, bytes, n == bytes)) {
			/* not durable: the records stay, the write fails */
			iov_iter_revert(i, n);
			return 0;
		}
		if (n == bytes)
			return n;
		iov_iter_revert(i, n);
	}
}

static const struct dax_operations bgpmem_dax_ops = {
	.direct_access		= bgpmem_dax_direct_access,
	.zero_page_range	= bgpmem_dax_zero_page_range,
	.recovery_write		= bgpmem_recovery_write,
};

/* ---- sysfs ---------------------------------------------------------- */

static struct bgpmem_device *dev_to_bgp(struct device *dev)
{
	return dev_to_disk(dev)->private_data;
}

static ssize_t poison_block_size_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(dev_to_bgp(dev)->pbs));
}

static ssize_t poison_block_size_store(struct device *dev,
				       struct device_attribute *attr,
				       const char *buf, size_t len)
{
	struct bgpmem_device *bp = dev_to_bgp(dev);
	unsigned int v;
	int rc;

	rc = kstrtouint(buf, 0, &v);
	if (rc)
		return rc;
	/* a smaller block could not be cleared on its own */
	if (!bgp_valid_pbs(v) || v < bp->clear_unit)
		return -EINVAL;
	bgp_sync_sysfs(bp);
	mutex_lock(&bp->mutex);
	if (bp->poison.nr)
		rc = -EBUSY;
	else
		WRITE_ONCE(bp->pbs, v);
	mutex_unlock(&bp->mutex);
	return rc ? rc : len;
}
static DEVICE_ATTR_RW(poison_block_size);

static ssize_t namespace_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", dev_name(&dev_to_bgp(dev)->ndns->dev));
}
static DEVICE_ATTR_RO(namespace);

static ssize_t mode_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%s\n", dev_to_bgp(dev)->fsdax ? "fsdax" : "raw");
}
static DEVICE_ATTR_RO(mode);

static ssize_t clear_support_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	static const char * const names[] = {
		[BGPMEM_CLEAR_UNKNOWN] = "unknown",
		[BGPMEM_CLEAR_SUPPORTED] = "supported",
		[BGPMEM_CLEAR_UNSUPPORTED] = "unsupported",
	};

	return sysfs_emit(buf, "%s\n",
			  names[READ_ONCE(dev_to_bgp(dev)->clear_support)]);
}
static DEVICE_ATTR_RO(clear_support);

static ssize_t clear_unit_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", dev_to_bgp(dev)->clear_unit);
}
static DEVICE_ATTR_RO(clear_unit);

static ssize_t records_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct bgpmem_device *bp = dev_to_bgp(dev);

	bgp_sync_sysfs(bp);
	return sysfs_emit(buf, "%llu\n", READ_ONCE(bp->poison.nr));
}
static DEVICE_ATTR_RO(records);

static ssize_t poisoned_bytes_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	struct bgpmem_device *bp = dev_to_bgp(dev);

	bgp_sync_sysfs(bp);
	return sysfs_emit(buf, "%llu\n", READ_ONCE(bp->poison.bytes));
}
static DEVICE_ATTR_RO(poisoned_bytes);

static ssize_t bgp_counter_show(char *buf, atomic64_t *counter)
{
	return sysfs_emit(buf, "%lld\n", atomic64_read(counter));
}

static ssize_t clear_failures_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	return bgp_counter_show(buf, &dev_to_bgp(dev)->clear_failures);
}
static DEVICE_ATTR_RO(clear_failures);

static ssize_t clear_unsupported_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	return bgp_counter_show(buf, &dev_to_bgp(dev)->clear_unsupported);
}
static DEVICE_ATTR_RO(clear_unsupported);

static ssize_t refused_io_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return bgp_counter_show(buf, &dev_to_bgp(dev)->refused_io);
}
static DEVICE_ATTR_RO(refused_io);

static ssize_t badblocks_overflow_show(struct device *dev,
				       struct device_attribute *attr,
				       char *buf)
{
	return sysfs_emit(buf, "%d\n", READ_ONCE(dev_to_bgp(dev)->bb_overflow));
}
static DEVICE_ATTR_RO(badblocks_overflow);

static struct attribute *bgpmem_attrs[] = {
	&dev_attr_poison_block_size.attr,
	&dev_attr_namespace.attr,
	&dev_attr_mode.attr,
	&dev_attr_clear_support.attr,
	&dev_attr_clear_unit.attr,
	&dev_attr_records.attr,
	&dev_attr_poisoned_bytes.attr,
	&dev_attr_clear_failures.attr,
	&dev_attr_clear_unsupported.attr,
	&dev_attr_refused_io.attr,
	&dev_attr_badblocks_overflow.attr,
	NULL,
};

static const struct attribute_group bgpmem_attr_group = {
	.name	= "bgpmem",
	.attrs	= bgpmem_attrs,
};

static const struct attribute_group *bgpmem_attr_groups[] = {
	&bgpmem_attr_group,
	NULL,
};

/* ---- probe / remove ------------------------------------------------- */

static int bgpmem_pagemap_memory_failure(struct dev_pagemap *pgmap,
					 unsigned long pfn,
					 unsigned long nr_pages, int mf_flags)
{
	struct bgpmem_device *bp =
		container_of(pgmap, struct bgpmem_device, pgmap);
	u64 len = (u64)nr_pages << PAGE_SHIFT;
	u64 off;
	int rc;

	/* the pgmap exists before probe is done and after teardown began */
	if (!bgp_enter(bp))
		return -ENXIO;
	off = PFN_PHYS(pfn) - bp->phys_addr - bp->data_offset;
	if (!(mf_flags & MF_MEM_PRE_REMOVE) && off < bp->capacity) {
		mutex_lock(&bp->mutex);
		bgp_add_record(bp, off, min(len, bp->capacity - off),
			       BGPMEM_SRC_MF);
		mutex_unlock(&bp->mutex);
		bgp_bb_notify(bp);
	}
	rc = dax_holder_notify_failure(bp->dax_dev, off, len, mf_flags);
	bgp_exit(bp);
	return rc;
}

static const struct dev_pagemap_ops bgpmem_pagemap_ops = {
	.memory_failure	= bgpmem_pagemap_memory_failure,
};

static int bgp_clear_support_of(struct nd_region *nd_region)
{
	struct nvdimm_bus_descriptor *nd_desc =
		to_nd_desc(to_nvdimm_bus(nd_region->dev.parent));

	/* no command handler: libnvdimm reports clears as done (nd_e820) */
	if (!nd_desc->ndctl)
		return BGPMEM_CLEAR_SUPPORTED;
	if (test_bit(ND_CMD_ARS_CAP, &nd_desc->cmd_mask) &&
	    test_bit(ND_CMD_CLEAR_ERROR, &nd_desc->cmd_mask))
		return BGPMEM_CLEAR_UNKNOWN;
	return BGPMEM_CLEAR_UNSUPPORTED;
}

/*
 * The clear-error unit the bus reports for @ndns (ND_CMD_ARS_CAP), as
 * nvdimm_clear_poison() will ask it: a clear of a block not aligned to it
 * fails with -ENXIO, so no poison block may be smaller. 0: no unit (no
 * command handler, or no ARS_CAP/CLEAR_ERROR: clear_support says which).
 */
static unsigned int bgp_clear_unit_of(struct nd_region *nd_region,
				      struct nd_namespace_common *ndns)
{
	struct nvdimm_bus_descriptor *nd_desc =
		to_nd_desc(to_nvdimm_bus(nd_region->dev.parent));
	struct resource *res = &to_nd_namespace_io(&ndns->dev)->res;
	struct nd_cmd_ars_cap cap = {
		.address = res->start,
		.length = resource_size(res),
	};
	int rc, cmd_rc = 0;

	if (bgp_clear_support_of(nd_region) != BGPMEM_CLEAR_UNKNOWN)
		return 0;
	rc = nd_desc->ndctl(nd_desc, NULL, ND_CMD_ARS_CAP, &cap, sizeof(cap),
			    &cmd_rc);
	if (rc < 0 || cmd_rc < 0 || !is_power_of_2(cap.clear_err_unit))
		return 0;
	if (bgp_fault(BGP_FAULT_CLEAR_UNIT_2K))
		return SZ_2K;
	return cap.clear_err_unit;
}

static int bgp_readd_stored(void *arg, u64 phys, u64 len)
{
	struct bgpmem_device *bp = arg;

	return bgp_add_record(bp, phys - bgp_to_phys(bp, 0), len,
			      BGPMEM_SRC_STORE);
}

/*
 * Teardown of what belongs to the bound device (devm action, the first to
 * run at unbind): close the gate, then dax and the disk. The mapping goes
 * after this, bp with the disk (bgp_put(), bgpmem_free_disk()).
 */
static void bgpmem_release(void *data)
{
	struct bgpmem_device *bp = data;

	bgp_set_live(bp, false);
	dax_remove_host(bp->disk);
	kill_dax(bp->dax_dev);
	put_dax(bp->dax_dev);
	del_gendisk(bp->disk);
	/* no bio (the only one to queue it) is left */
	cancel_work_sync(&bp->import_work);
	/* no bio, sysfs reader or notify (device_lock) can use it now */
	sysfs_put(bp->bb_state);
	bp->bb_state = NULL;
}

/*
 * devm action registered right after bp is allocated, so it runs last:
 * after the pmem and the pgmap embedded in bp are gone. Drops the driver's
 * reference to the disk; a disk that was never added does not call
 * ->free_disk, so bp is freed here then.
 */
static void bgp_put(void *data)
{
	struct bgpmem_device *bp = data;

	if (bp->added) {
		put_disk(bp->disk);
		return;
	}
	if (bp->disk)
		put_disk(bp->disk);
	bgp_free(bp);
}

static void bgp_free_id(void *data)
{
	struct bgpmem_device *bp = data;

	ida_free(&bgpmem_ida, bp->id);
}

static struct bgpmem_device *bgp_alloc(struct device *dev,
				       struct nd_namespace_common *ndns,
				       struct nd_region *nd_region)
{
	struct bgpmem_device *bp = kzalloc(sizeof(*bp), GFP_KERNEL);

	if (!bp)
		return NULL;
	if (badblocks_init(&bp->bb, 1)) {
		kfree(bp);
		return NULL;
	}
	bp->dev = dev;
	bp->ndns = ndns;
	bp->nd_region = nd_region;
	bp->pbs = READ_ONCE(poison_block_size);
	rwlock_init(&bp->lock);
	mutex_init(&bp->mutex);
	INIT_WORK(&bp->import_work, bgp_import_workfn);
	init_rwsem(&bp->gate);
	bp->poison.root = RB_ROOT;
	atomic64_set(&bp->clear_failures, 0);
	atomic64_set(&bp->clear_unsupported, 0);
	atomic64_set(&bp->refused_io, 0);
	bp->clear_support = bgp_clear_support_of(nd_region);
	bp->clear_unit = bgp_clear_unit_of(nd_region, ndns);
	if (bp->clear_unit > PAGE_SIZE) {
		dev_warn(dev, "the bus clears poison in units of %u bytes, more than a poison block can be (%lu): poison will not be cleared\n",
			 bp->clear_unit, PAGE_SIZE);
		bp->clear_support = BGPMEM_CLEAR_UNSUPPORTED;
	} else if (bp->pbs < bp->clear_unit) {
		dev_warn(dev, "poison_block_size=%u is smaller than the bus's clear unit: %u used\n",
			 bp->pbs, bp->clear_unit);
		bp->pbs = bp->clear_unit;
	}
	return bp;
}

static int bgpmem_attach_disk(struct device *dev,
			      struct nd_namespace_common *ndns)
{
	struct nd_namespace_io *nsio = to_nd_namespace_io(&ndns->dev);
	struct nd_region *nd_region = to_nd_region(dev->parent);
	struct queue_limits lim = {
		.logical_block_size	= pmem_sector_size(ndns),
		.physical_block_size	= PAGE_SIZE,
		.max_hw_sectors		= UINT_MAX,
		.max_write_zeroes_sectors = UINT_MAX,
		.features		= BLK_FEAT_WRITE_CACHE |
					  BLK_FEAT_SYNCHRONOUS,
	};
	struct resource *res = &nsio->res;
	struct bgpmem_device *bp;
	struct nd_pfn *nd_pfn = NULL;
	struct dax_device *dax_dev;
	struct gendisk *disk;
	void *addr;
	int rc, fua;

#ifndef BGPMEM_NFIT_TEST
	/* nfit_test: vmalloc memory behind fake physical addresses */
	if (region_intersects(res->start, resource_size(res), IORESOURCE_MEM,
			      IORES_DESC_NONE) == REGION_DISJOINT) {
		dev_err(dev, "%pR is not in iomem (nfit_test?): build bgpmem with KMEMLAB_NFIT_TEST=1\n",
			res);
		return -ENXIO;
	}
#endif

	/* until the disk is added, errors free bp through bgp_put() */
	bp = bgp_alloc(dev, ndns, nd_region);
	if (!bp)
		return -ENOMEM;
	rc = devm_add_action_or_reset(dev, bgp_put, bp);
	if (rc)
		return rc;
	bp->store = bgp_store_get(dev_name(&ndns->dev));
	if (!bp->store)
		return -ENOMEM;

	rc = devm_namespace_enable(dev, ndns, nd_info_block_reserve());
	if (rc)
		return rc;
	if (is_nd_pfn(dev)) {
		nd_pfn = to_nd_pfn(dev);
		rc = nvdimm_setup_pfn(nd_pfn, &bp->pgmap);
		if (rc)
			return rc;
	}
	devm_namespace_disable(dev, ndns);

	dev_set_drvdata(dev, bp);
	bp->phys_addr = res->start;
	bp->size = resource_size(res);
	fua = nvdimm_has_flush(nd_region);
	if (!IS_ENABLED(CONFIG_ARCH_HAS_UACCESS_FLUSHCACHE) || fua < 0) {
		dev_warn(dev, "unable to guarantee persistence of writes\n");
		fua = 0;
	}
	if (fua)
		lim.features |= BLK_FEAT_FUA;
	if (nd_pfn || pmem_should_map_pages(dev))
		lim.features |= BLK_FEAT_DAX;

	bp->id = ida_alloc(&bgpmem_ida, GFP_KERNEL);
	if (bp->id < 0)
		return bp->id;
	rc = devm_add_action_or_reset(dev, bgp_free_id, bp);
	if (rc)
		return rc;

	disk = blk_alloc_disk(&lim, dev_to_node(dev));
	if (IS_ERR(disk))
		return PTR_ERR(disk);
	bp->disk = disk;
	disk->fops = &bgpmem_fops;
	disk->private_data = bp;
	snprintf(disk->disk_name, DISK_NAME_LEN, "bgpmem%d", bp->id);
	disk->bb = &bp->bb;

	if (!devm_request_mem_region(dev, res->start, resource_size(res),
				     dev_name(&ndns->dev))) {
		dev_warn(dev, "could not reserve region %pR\n", res);
		return -EBUSY;
	}

	bp->pfn_flags = PFN_DEV;
	bp->pgmap.owner = bp;
	if (nd_pfn) {
		bp->fsdax = true;
		bp->pgmap.type = MEMORY_DEVICE_FS_DAX;
		bp->pgmap.ops = &bgpmem_pagemap_ops;
		addr = devm_memremap_pages(dev, &bp->pgmap);
		bp->data_offset = le64_to_cpu(nd_pfn->pfn_sb->dataoff);
		bp->pfn_pad = resource_size(res) - range_len(&bp->pgmap.range);
		bp->pfn_flags |= PFN_MAP;
	} else if (pmem_should_map_pages(dev)) {
		bp->pgmap.range.start = res->start;
		bp->pgmap.range.end = res->end;
		bp->pgmap.nr_range = 1;
		bp->pgmap.type = MEMORY_DEVICE_FS_DAX;
		bp->pgmap.ops = &bgpmem_pagemap_ops;
		addr = devm_memremap_pages(dev, &bp->pgmap);
		bp->pfn_flags |= PFN_MAP;
	} else {
		addr = devm_memremap(dev, bp->phys_addr, bp->size,
				     ARCH_MEMREMAP_PMEM);
	}
	if (IS_ERR(addr))
		return PTR_ERR(addr);
	bp->virt_addr = addr;
	bp->capacity = bp->size - bp->pfn_pad - bp->data_offset;
	bp->chunks = bitmap_zalloc(bgp_nchunks(bp->capacity), GFP_KERNEL);
	if (!bp->chunks)
		return -ENOMEM;
	set_capacity(disk, bp->capacity >> SECTOR_SHIFT);

	rc = bgp_populate(bp);
	if (rc)
		return rc;
	mutex_lock(&bp->mutex);
	rc = bgp_store_for_each(bp->store, bgp_to_phys(bp, 0), bp->capacity,
				bgp_readd_stored, bp);
	mutex_unlock(&bp->mutex);
	if (rc)
		return rc;

	dax_dev = alloc_dax(bp, &bgpmem_dax_ops);
	if (IS_ERR(dax_dev)) {
		rc = PTR_ERR(dax_dev);
		if (rc != -EOPNOTSUPP)
			return rc;
		dax_dev = NULL;
	} else {
		set_dax_nocache(dax_dev);
		set_dax_nomc(dax_dev);
		if (is_nvdimm_sync(nd_region))
			set_dax_synchronous(dax_dev);
		rc = dax_add_host(dax_dev, disk);
		if (rc)
			goto out_dax;
		dax_write_cache(dax_dev, nvdimm_has_cache(nd_region));
	}
	bp->dax_dev = dax_dev;

	/* ioctls and memory_failure from here; bgpmem_release() undoes it */
	bgp_set_live(bp, true);
	rc = device_add_disk(dev, disk, bgpmem_attr_groups);
	if (rc)
		goto out_live;
	bp->added = true;

	rc = devm_add_action_or_reset(dev, bgpmem_release, bp);
	if (rc)
		return rc;

	nvdimm_check_and_set_ro(disk);
	bp->bb_state = sysfs_get_dirent(disk_to_dev(disk)->kobj.sd,
					"badblocks");
	if (!bp->bb_state)
		dev_warn(dev, "'badblocks' notification disabled\n");
	dev_info(dev, "%s: %s, %llu bytes, poison block %u, %llu poison records, clear %s\n",
		 disk->disk_name, bp->fsdax ? "fsdax" : "raw", bp->capacity,
		 bp->pbs, bp->poison.nr,
		 bp->clear_support == BGPMEM_CLEAR_UNSUPPORTED ?
		 "unsupported" : "supported");
	return 0;

out_live:
	bgp_set_live(bp, false);
	if (dax_dev)
		dax_remove_host(disk);
out_dax:
	kill_dax(dax_dev);
	put_dax(dax_dev);
	return rc;
}

static int bgpmem_probe(struct device *dev)
{
	struct nd_namespace_common *ndns;
	int rc;

	ndns = nvdimm_namespace_common_probe(dev);
	if (IS_ERR(ndns))
		return PTR_ERR(ndns);

	if (is_nd_btt(dev)) {
		dev_info(dev, "btt is not supported by bgpmem, use nd_pmem\n");
		return -EOPNOTSUPP;
	}
	if (is_nd_pfn(dev))
		return bgpmem_attach_disk(dev, ndns);

	rc = devm_namespace_enable(dev, ndns, nd_info_block_reserve());
	if (rc)
		return rc;

	/* an info block makes a btt/pfn/dax seed claim the namespace */
	rc = nd_btt_probe(dev, ndns);
	if (rc == 0)
		return -ENXIO;
	rc = nd_pfn_probe(dev, ndns);
	if (rc == 0)
		return -ENXIO;
	else if (rc == -EOPNOTSUPP)
		return rc;
	rc = nd_dax_probe(dev, ndns);
	if (rc == 0)
		return -ENXIO;
	else if (rc == -EOPNOTSUPP)
		return rc;

	devm_namespace_disable(dev, ndns);
	return bgpmem_attach_disk(dev, ndns);
}

static void bgpmem_remove(struct device *dev)
{
	/* the teardown is bgpmem_release(), a devm action */
	nvdimm_flush(to_nd_region(dev->parent), NULL);
}

static void bgpmem_shutdown(struct device *dev)
{
	nvdimm_flush(to_nd_region(dev->parent), NULL);
}

static void bgpmem_notify(struct device *dev, enum nvdimm_event event)
{
	struct bgpmem_device *bp = dev_get_drvdata(dev);

	if (!bp)
		return;
	switch (event) {
	case NVDIMM_REVALIDATE_POISON:
		if (bgp_populate(bp))
			dev_warn(dev, "%s: no memory for all of the bus's poison records\n",
				 bgp_name(bp));
		bgp_bb_notify(bp);
		break;
	case NVDIMM_REVALIDATE_REGION:
		nvdimm_check_and_set_ro(bp->disk);
		break;
	default:
		dev_dbg(dev, "notify: unknown event %d\n", event);
		break;
	}
}

static struct nd_device_driver bgpmem_driver = {
	.probe		= bgpmem_probe,
	.remove		= bgpmem_remove,
	.notify		= bgpmem_notify,
	.shutdown	= bgpmem_shutdown,
	.drv = {
		.name	= "bgpmem",
	},
	.type		= ND_DRIVER_NAMESPACE_IO | ND_DRIVER_NAMESPACE_PMEM,
};

static int __init bgpmem_init(void)
{
	if (!bgp_valid_pbs(poison_block_size)) {
		pr_err("poison_block_size=%u: must be a power of two from 512 to %lu\n",
		       poison_block_size, PAGE_SIZE);
		return -EINVAL;
	}
	return nd_driver_register(&bgpmem_driver);
}

static void __exit bgpmem_exit(void)
{
	driver_unregister(&bgpmem_driver.drv);
	bgp_store_exit();
	ida_destroy(&bgpmem_ida);
}

module_init(bgpmem_init);
module_exit(bgpmem_exit);

MODULE_DESCRIPTION("pmem block + DAX driver with block-granular poison");
MODULE_LICENSE("GPL");
