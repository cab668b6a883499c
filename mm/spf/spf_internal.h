/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spf_harness internals shared by the observer, the test device and the
 * misc device glue.
 */
#ifndef SPF_INTERNAL_H
#define SPF_INTERNAL_H

#include <linux/fs.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/xarray.h>
#include <kmemlab/spf.h>

/**
 * struct spf_file - per open file of /dev/spf_harness.
 * @mapping: private address space; f_mapping points here so that a
 *	generation bump zaps only this file's mappings.
 * @lock: serialises setup, page creation and generation bumps.
 * @pages: page index -> struct page *, page_private() = generation.
 * @id: mapping id written in every tag.
 * @gen: current generation (starts at 1).
 * @npages: device size in pages; 0 until SPF_IOC_DEV_SETUP.
 * @flags: SPF_DEV_* flags.
 * @delay_us: delay in ->fault.
 * @st: statistics, see &struct spf_dev_stats.
 */
struct spf_file {
	struct address_space mapping;
	struct mutex lock;	/* setup, page creation, bumps */
	struct xarray pages;
	u64 id;
	u64 gen;
	u64 npages;
	u32 flags;
	u32 delay_us;
	struct {
		atomic64_t faults;
		atomic64_t faults_vma_lock;
		atomic64_t faults_mmap_lock;
		atomic64_t map_pages;
		atomic64_t rebuilt;
		atomic64_t sigbus;
		atomic64_t violations;
		atomic64_t pages;
	} st;
};

/* spf_obs.c */
int spf_obs_init(void);
void spf_obs_exit(void);
void spf_obs_release(struct file *file);
long spf_obs_ioctl(struct file *file, unsigned int cmd, void __user *argp);
u32 spf_check_vma(struct vm_area_struct *vma, unsigned long address);

/* spf_dev.c */
void spf_dev_open(struct spf_file *sf, struct inode *inode);
void spf_dev_release(struct spf_file *sf);
int spf_dev_mmap(struct file *file, struct vm_area_struct *vma);
long spf_dev_ioctl(struct file *file, unsigned int cmd, void __user *argp);

#endif /* SPF_INTERNAL_H */
