// SPDX-License-Identifier: GPL-2.0
/*
 * kmemlab_labtest - a module for testing the kmemlab test lab itself.
 *
 * Loads and unloads cleanly. Each word written to
 * /sys/kernel/debug/kmemlab_labtest/trigger makes the kernel print one class
 * of report, so the lab's selftests can prove each is caught and named:
 *
 *   warn        WARN()
 *   warn_later  WARN() from a work item one second later
 *   oops        NULL pointer dereference
 *   atomic      might_sleep() and a sleep under a spinlock
 *   uaf         a read of freed slab memory (KASAN, or KFENCE when the
 *               object came from its pool: the fixture retries until then)
 *   lockdep     two mutexes taken in both orders (one thread, no deadlock)
 *   leak        a kmalloc() whose only pointer is dropped (kmemleak)
 *
 * With fail_init=1 the module refuses to load (-ENODEV), for the lab's
 * "module fails to load" case.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kfence.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

static bool fail_init;
module_param(fail_init, bool, 0444);
MODULE_PARM_DESC(fail_init, "refuse to load with -ENODEV (default: false)");

static struct dentry *labtest_dir;

static DEFINE_SPINLOCK(labtest_spin);
static DEFINE_MUTEX(labtest_mutex_a);
static DEFINE_MUTEX(labtest_mutex_b);

static void labtest_warn_fn(struct work_struct *work)
{
	WARN(1, "kmemlab_labtest: delayed WARN requested from userspace\n");
}

static DECLARE_DELAYED_WORK(labtest_warn_work, labtest_warn_fn);

/*
 * Sleep in atomic context. With DEBUG_ATOMIC_SLEEP, might_sleep() reports
 * "BUG: sleeping function called from invalid context"; without it (the
 * stock kernel) the scheduler reports "BUG: scheduling while atomic" and
 * resets the preempt count, which the preempt_disable() puts back so that
 * the unlock balances.
 */
static void labtest_atomic(void)
{
	spin_lock(&labtest_spin);
	might_sleep();
	msleep(20);
	if (!preempt_count())
		preempt_disable();
	spin_unlock(&labtest_spin);
}

/*
 * An object a use after free is caught on: any with KASAN; without it,
 * allocate until KFENCE samples one of ours (as mm/kfence/kfence_test.c
 * does), for up to 20 s: -ETIMEDOUT if it never does (KFENCE off).
 */
static char *labtest_uaf_object(void)
{
	unsigned long deadline = jiffies + 20 * HZ;
	char *p;

	for (;;) {
		p = kmalloc(32, GFP_KERNEL);
		if (!p)
			return ERR_PTR(-ENOMEM);
		if (IS_ENABLED(CONFIG_KASAN) || is_kfence_address(p))
			return p;
		kfree(p);
		if (time_after(jiffies, deadline))
			return ERR_PTR(-ETIMEDOUT);
		cond_resched();
	}
}

/* Read an object after kfree(). */
static int labtest_uaf(void)
{
	char *p = labtest_uaf_object();
	unsigned long addr;

	if (IS_ERR(p))
		return PTR_ERR(p);
	/* through an integer: the compiler must not see the use after free */
	addr = (unsigned long)p;
	kfree(p);
	OPTIMIZER_HIDE_VAR(addr);
	pr_info("read %d from a freed object\n", READ_ONCE(*(char *)addr));
	return 0;
}

/* A then B, and B then A: lockdep's circular dependency, without a deadlock. */
static void labtest_lockdep(void)
{
	mutex_lock(&labtest_mutex_a);
	mutex_lock(&labtest_mutex_b);
	mutex_unlock(&labtest_mutex_b);
	mutex_unlock(&labtest_mutex_a);

	mutex_lock(&labtest_mutex_b);
	mutex_lock(&labtest_mutex_a);
	mutex_unlock(&labtest_mutex_a);
	mutex_unlock(&labtest_mutex_b);
}

static void *labtest_leaked;

/* The only pointer is overwritten: kmemleak reports it unreferenced. */
static int labtest_leak(void)
{
	labtest_leaked = kmalloc(128, GFP_KERNEL);
	if (!labtest_leaked)
		return -ENOMEM;
	memset(labtest_leaked, 0x6b, 128);
	WRITE_ONCE(labtest_leaked, NULL);
	return 0;
}

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
	char buf[16] = {};
	int ret = 0;

	if (!len || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;

	if (sysfs_streq(buf, "warn")) {
		WARN(1, "kmemlab_labtest: WARN requested from userspace\n");
	} else if (sysfs_streq(buf, "warn_later")) {
		schedule_delayed_work(&labtest_warn_work, HZ);
	} else if (sysfs_streq(buf, "oops")) {
		pr_info("oops requested from userspace\n");
		*labtest_nullptr() = 1;
	} else if (sysfs_streq(buf, "atomic")) {
		labtest_atomic();
	} else if (sysfs_streq(buf, "uaf")) {
		ret = labtest_uaf();
	} else if (sysfs_streq(buf, "lockdep")) {
		labtest_lockdep();
	} else if (sysfs_streq(buf, "leak")) {
		ret = labtest_leak();
	} else {
		return -EINVAL;
	}
	return ret ? ret : len;
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
	cancel_delayed_work_sync(&labtest_warn_work);
	pr_info("unloaded\n");
}

module_init(labtest_init);
module_exit(labtest_exit);

MODULE_DESCRIPTION("kmemlab test-lab self-test module (kernel report triggers)");
MODULE_AUTHOR("kmemlab developers");
MODULE_LICENSE("GPL");
