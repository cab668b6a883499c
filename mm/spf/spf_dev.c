// SPDX-License-Identifier: GPL-2.0
/*
 * spf_dev - a tagged test device for per-VMA lock faults.
 *
 * Every 32 bytes of a page hold a struct spf_tag (mapping id, generation,
 * page index), so a reader can tell which mapping and which generation it
 * sees. A generation bump zaps every mapping of the file and makes each
 * page stale; the next fault rebuilds it with the new generation.
 *
 * Fault vs bump: ->fault returns the page locked (VM_FAULT_LOCKED) after
 * checking its generation under the page lock; the core keeps it locked
 * until the PTE is set. A bump raises the generation, then locks and
 * unlocks every page (waiting for faults that checked the old generation
 * to finish installing their PTE), then zaps. So no PTE of an old
 * generation survives a completed bump. SPF_DEV_BROKEN_GEN skips the
 * check and the rebuild: stale tags reappear after a bump, and the
 * selftests' oracle must catch it.
 *
 * With SPF_DEV_MAP_PAGES the vm_ops have a ->map_pages (which maps
 * nothing): 6.12 then calls ->fault under the VMA lock
 * (vmf_can_call_fault()); without it every fault retries under mmap_lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/uaccess.h>

#include "spf_internal.h"
#include "spf_trace.h"

static atomic64_t spf_next_id = ATOMIC64_INIT(0);

static struct page *spf_build_page(struct spf_file *sf, pgoff_t index,
				   u64 gen)
{
	struct spf_tag *tag;
	struct page *page;
	unsigned int i;

	page = alloc_page(GFP_KERNEL);
	if (!page)
		return NULL;
	tag = page_address(page);
	for (i = 0; i < PAGE_SIZE / sizeof(*tag); i++) {
		tag[i].magic = SPF_TAG_MAGIC;
		tag[i].id = sf->id;
		tag[i].gen = gen;
		tag[i].index = index;
	}
	set_page_private(page, gen);
	return page;
}

/*
 * Return the page for @index with a reference, built for the current
 * generation (or, BROKEN_GEN, whatever generation it had).
 */
static struct page *spf_get_page(struct spf_file *sf, pgoff_t index,
				 bool *rebuilt)
{
	struct page *page, *old;
	u64 gen;

	mutex_lock(&sf->lock);
	gen = sf->gen;
	page = xa_load(&sf->pages, index);
	if (page && (page_private(page) == gen ||
		     (sf->flags & SPF_DEV_BROKEN_GEN)))
		goto found;

	page = spf_build_page(sf, index, gen);
	if (!page)
		goto out;
	old = xa_store(&sf->pages, index, page, GFP_KERNEL);
	if (xa_is_err(old)) {
		__free_page(page);
		page = NULL;
		goto out;
	}
	if (old) {
		put_page(old);	/* mappings keep their own references */
		*rebuilt = true;
	} else {
		atomic64_inc(&sf->st.pages);
	}
found:
	get_page(page);
out:
	mutex_unlock(&sf->lock);
	return page;
}

static vm_fault_t spf_dev_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct spf_file *sf = vma->vm_file->private_data;
	bool vma_locked = vmf->flags & FAULT_FLAG_VMA_LOCK;
	bool rebuilt = false;
	struct page *page;
	u32 delay;

	atomic64_inc(&sf->st.faults);
	if (vma_locked) {
		atomic64_inc(&sf->st.faults_vma_lock);
		if (spf_check_vma(vma, vmf->address))
			atomic64_inc(&sf->st.violations);
	} else {
		atomic64_inc(&sf->st.faults_mmap_lock);
	}
	if (vmf->pgoff >= sf->npages) {
		atomic64_inc(&sf->st.sigbus);
		return VM_FAULT_SIGBUS;
	}

	/* Widen race windows while the fault lock (VMA or mmap) is held. */
	delay = READ_ONCE(sf->delay_us);
	if (delay)
		fsleep(delay);

	for (;;) {
		page = spf_get_page(sf, vmf->pgoff, &rebuilt);
		if (!page)
			return VM_FAULT_OOM;
		lock_page(page);
		if (page_private(page) == READ_ONCE(sf->gen) ||
		    (READ_ONCE(sf->flags) & SPF_DEV_BROKEN_GEN))
			break;
		/* A bump raced with us: rebuild for the new generation. */
		unlock_page(page);
		put_page(page);
	}
	if (rebuilt)
		atomic64_inc(&sf->st.rebuilt);
	trace_spf_dev_fault(sf->id, vmf->pgoff, page_private(page), vma_locked,
			    delay);
	vmf->page = page;
	return VM_FAULT_LOCKED;
}

/*
 * Map nothing: its presence alone lets 6.12 run ->fault under the VMA
 * lock. Called under rcu_read_lock(), must not sleep.
 */
static vm_fault_t spf_dev_map_pages(struct vm_fault *vmf, pgoff_t start,
				    pgoff_t end)
{
	struct spf_file *sf = vmf->vma->vm_file->private_data;

	atomic64_inc(&sf->st.map_pages);
	return 0;
}

static const struct vm_operations_struct spf_vm_ops = {
	.fault		= spf_dev_fault,
};

static const struct vm_operations_struct spf_vm_ops_map_pages = {
	.fault		= spf_dev_fault,
	.map_pages	= spf_dev_map_pages,
};

/**
 * spf_dev_mmap() - map tagged pages of a set-up file.
 * @file: the file
 * @vma: the new VMA
 *
 * Shared mappings are read-only (VM_MAYWRITE cleared): tags are the
 * device's data. Private mappings may be written (COW).
 * Return: 0, -ENODEV before SPF_IOC_DEV_SETUP, -EACCES for a writable
 * shared mapping.
 */
int spf_dev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct spf_file *sf = file->private_data;
	u64 npages;
	u32 flags;

	mutex_lock(&sf->lock);
	flags = sf->flags;
	npages = sf->npages;
	mutex_unlock(&sf->lock);
	if (!npages)
		return -ENODEV;
	if (vma->vm_flags & VM_SHARED) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		vm_flags_clear(vma, VM_MAYWRITE);
	}
	vma->vm_ops = (flags & SPF_DEV_MAP_PAGES) ? &spf_vm_ops_map_pages :
						    &spf_vm_ops;
	return 0;
}

static int spf_dev_setup(struct spf_file *sf, struct spf_dev_setup __user *argp)
{
	struct spf_dev_setup s;
	int ret = 0;

	if (copy_from_user(&s, argp, sizeof(s)))
		return -EFAULT;
	if (!s.size || s.size > SPF_DEV_MAX_SIZE || !PAGE_ALIGNED(s.size) ||
	    s.flags & ~SPF_DEV_FLAGS_ALL || s.delay_us > SPF_DELAY_MAX_US ||
	    s.reserved || s.id)
		return -EINVAL;

	/*
	 * The id is fixed at open: report it before taking sf->lock, which
	 * ->mmap takes under mmap_lock, so that no user copy (a fault takes
	 * mmap_lock) happens under it. A refused setup leaves the caller's
	 * output field filled, nothing else.
	 */
	s.id = sf->id;
	if (copy_to_user(argp, &s, sizeof(s)))
		return -EFAULT;

	mutex_lock(&sf->lock);
	if (sf->npages) {
		ret = -EBUSY;
		goto out;
	}
	sf->flags = s.flags;
	sf->delay_us = s.delay_us;
	sf->npages = s.size >> PAGE_SHIFT;
out:
	mutex_unlock(&sf->lock);
	return ret;
}

static u64 spf_dev_bump(struct spf_file *sf)
{
	struct page *page;
	unsigned long idx;
	u64 gen;

	mutex_lock(&sf->lock);
	gen = ++sf->gen;
	/* Wait for faults that checked the old generation (see top). */
	xa_for_each(&sf->pages, idx, page) {
		lock_page(page);
		unlock_page(page);
	}
	mutex_unlock(&sf->lock);
	/* Zap shared PTEs in every VMA of this file; keep private COW copies. */
	unmap_mapping_range(&sf->mapping, 0, 0, 0);
	trace_spf_dev_bump(sf->id, gen, atomic64_read(&sf->st.pages));
	return gen;
}

/**
 * spf_dev_ioctl() - test device ioctls.
 * @file: the file
 * @cmd: SPF_IOC_DEV_SETUP, _DELAY, _BUMP or _STATS
 * @argp: user argument
 * Return: 0 or a negative errno; nothing changes on error.
 */
long spf_dev_ioctl(struct file *file, unsigned int cmd, void __user *argp)
{
	struct spf_file *sf = file->private_data;
	struct spf_dev_stats st;
	u32 delay;
	u64 gen;

	switch (cmd) {
	case SPF_IOC_DEV_SETUP:
		return spf_dev_setup(sf, argp);
	case SPF_IOC_DEV_DELAY:
		if (get_user(delay, (u32 __user *)argp))
			return -EFAULT;
		if (delay > SPF_DELAY_MAX_US)
			return -EINVAL;
		if (!READ_ONCE(sf->npages))
			return -ENODEV;
		WRITE_ONCE(sf->delay_us, delay);
		return 0;
	case SPF_IOC_DEV_BUMP:
		if (!READ_ONCE(sf->npages))
			return -ENODEV;
		gen = spf_dev_bump(sf);
		return put_user(gen, (u64 __user *)argp);
	case SPF_IOC_DEV_STATS:
		memset(&st, 0, sizeof(st));
		st.id = sf->id;
		st.gen = READ_ONCE(sf->gen);
		st.faults = atomic64_read(&sf->st.faults);
		st.faults_vma_lock = atomic64_read(&sf->st.faults_vma_lock);
		st.faults_mmap_lock = atomic64_read(&sf->st.faults_mmap_lock);
		st.map_pages = atomic64_read(&sf->st.map_pages);
		st.rebuilt = atomic64_read(&sf->st.rebuilt);
		st.sigbus = atomic64_read(&sf->st.sigbus);
		st.violations = atomic64_read(&sf->st.violations);
		st.pages = atomic64_read(&sf->st.pages);
		st.flags = READ_ONCE(sf->flags);
		st.delay_us = READ_ONCE(sf->delay_us);
		return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
	default:
		return -ENOTTY;
	}
}

/**
 * spf_dev_open() - initialise the per-file state.
 * @sf: zeroed state
 * @inode: the device inode (host of the private address space)
 */
void spf_dev_open(struct spf_file *sf, struct inode *inode)
{
	address_space_init_once(&sf->mapping);
	sf->mapping.host = inode;
	sf->mapping.a_ops = &empty_aops;
	mutex_init(&sf->lock);
	xa_init(&sf->pages);
	sf->id = atomic64_inc_return(&spf_next_id);
	sf->gen = 1;
}

/**
 * spf_dev_release() - drop the pages; no mapping exists any more (each
 * VMA holds a reference on the file).
 * @sf: the state
 */
void spf_dev_release(struct spf_file *sf)
{
	struct page *page;
	unsigned long idx;

	xa_for_each(&sf->pages, idx, page)
		put_page(page);
	xa_destroy(&sf->pages);
	mutex_destroy(&sf->lock);
}
