// SPDX-License-Identifier: GPL-2.0
/*
 * kmemlab_labtest - a module for testing the kmemlab test lab itself.
 *
 * Loads and unloads cleanly. Writing "warn" or "oops" to
 * /sys/kernel/debug/kmemlab_labtest/trigger makes the kernel WARN or oops,
 * so the lab's selftests can prove such failures are caught and reported.
 * With fail_init=1 the module refuses to load (-ENODEV), for the lab's
 * "module fails to load" case.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/uaccess.h>

static bool fail_init;
module_param(fail_init, bool, 0444);
MODULE_PARM_DESC(fail_init, "refuse to load with -ENODEV (default: false)");

static struct dentry *labtest_dir;

/* Keep the compiler from proving the NULL dereference and dropping it. */
static int *labtest_nullptr(void)
{
	int *p = NULL;

	OPTIMIZER_HIDE_VAR(p);
	return p;
}

static ssize_t labtest_trigger_write(struct file *file,
				     const char __user *ubuf, size_t len,
				     loff_t *ppos)
{
	char buf[8] = {};

	if (!len || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;

	if (sysfs_streq(buf, "warn")) {
		WARN(1, "kmemlab_labtest: WARN requested from userspace\n");
	} else if (sysfs_streq(buf, "oops")) {
		pr_info("oops requested from userspace\n");
		*labtest_nullptr() = 1;
	} else {
		return -EINVAL;
	}
	return len;
}

static const struct file_operations labtest_trigger_fops = {
	.owner = THIS_MODULE,
	.write = labtest_trigger_write,
	.llseek = noop_llseek,
};

static int __init labtest_init(void)
{
	if (fail_init) {
		pr_err("refusing to load: fail_init=1 was given\n");
		return -ENODEV;
	}
	labtest_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("trigger", 0200, labtest_dir, NULL,
			    &labtest_trigger_fops);
	pr_info("loaded\n");
	return 0;
}

static void __exit labtest_exit(void)
{
	debugfs_remove(labtest_dir);
	pr_info("unloaded\n");
}

module_init(labtest_init);
module_exit(labtest_exit);

MODULE_DESCRIPTION("kmemlab test-lab self-test module (WARN/oops triggers)");
MODULE_AUTHOR("kmemlab developers");
MODULE_LICENSE("GPL");
