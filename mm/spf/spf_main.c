// SPDX-License-Identifier: GPL-2.0
/*
 * spf_harness - observe and exercise page faults under per-VMA locks.
 *
 * /dev/spf_harness: every open file may own the fault observer
 * (spf_obs.c) and may be set up as a tagged test device (spf_dev.c).
 * The module cannot be unloaded while a file is open or mapped: the
 * mapping holds the file, the file holds the module.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "spf_internal.h"

#define CREATE_TRACE_POINTS
#include "spf_trace.h"

static int spf_open(struct inode *inode, struct file *file)
{
	struct spf_file *sf;

	sf = kzalloc(sizeof(*sf), GFP_KERNEL);
	if (!sf)
		return -ENOMEM;
	spf_dev_open(sf, inode);
	file->private_data = sf;
	/* Mappings of this file go to sf->mapping (see spf_dev_bump()). */
	file->f_mapping = &sf->mapping;
	return 0;
}

static int spf_release(struct inode *inode, struct file *file)
{
	struct spf_file *sf = file->private_data;

	spf_obs_release(file);
	spf_dev_release(sf);
	kfree(sf);
	return 0;
}

static long spf_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case SPF_IOC_OBS_SET:
	case SPF_IOC_TRACK:
	case SPF_IOC_UNTRACK:
	case SPF_IOC_READ:
	case SPF_IOC_RESET:
	case SPF_IOC_LAT_READ:
		return spf_obs_ioctl(file, cmd, argp);
	case SPF_IOC_DEV_SETUP:
	case SPF_IOC_DEV_DELAY:
	case SPF_IOC_DEV_BUMP:
	case SPF_IOC_DEV_STATS:
		return spf_dev_ioctl(file, cmd, argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations spf_fops = {
	.owner		= THIS_MODULE,
	.open		= spf_open,
	.release	= spf_release,
	.unlocked_ioctl	= spf_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= spf_dev_mmap,
	.llseek		= noop_llseek,
};

static struct miscdevice spf_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "spf_harness",
	.fops	= &spf_fops,
	.mode	= 0600,
};

static int __init spf_init(void)
{
	int ret;

	ret = spf_obs_init();
	if (ret)
		return ret;
	ret = misc_register(&spf_misc);
	if (ret) {
		pr_err("misc_register failed: %d\n", ret);
		goto err_obs;
	}
	return 0;

err_obs:
	spf_obs_exit();
	return ret;
}

static void __exit spf_exit(void)
{
	misc_deregister(&spf_misc);
	spf_obs_exit();
}

module_init(spf_init);
module_exit(spf_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmemlab: per-VMA lock fault observer and tagged test device");
MODULE_AUTHOR("kmemlab");
