// SPDX-License-Identifier: GPL-2.0
/*
 * memcg_dirty_busy - test-only module for selftests/memcg_dirty: a kprobe
 * with a post_handler on domain_dirty_limits(). On x86 such a kprobe is an
 * ftrace IPMODIFY user, so memcg_dirty must refuse to load (-EBUSY) while
 * this module is loaded.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kprobes.h>
#include <linux/module.h>

static void mdbusy_post(struct kprobe *p, struct pt_regs *regs,
			unsigned long flags)
{
}

static struct kprobe mdbusy_kp = {
	.symbol_name = "domain_dirty_limits",
	.post_handler = mdbusy_post,
};

static int __init mdbusy_init(void)
{
	int ret = register_kprobe(&mdbusy_kp);

	if (ret)
		pr_err("cannot probe domain_dirty_limits (%d)\n", ret);
	return ret;
}

static void __exit mdbusy_exit(void)
{
	unregister_kprobe(&mdbusy_kp);
}

module_init(mdbusy_init);
module_exit(mdbusy_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("test-only IPMODIFY user of domain_dirty_limits for memcg_dirty selftests");
