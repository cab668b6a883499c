// SPDX-License-Identifier: GPL-2.0
/*
 * spf_obs - count how user faults are served on a stock 6.12 kernel.
 *
 * x86 do_user_addr_fault() calls lock_vma_under_rcu() for every user
 * fault, then handle_mm_fault(..., FAULT_FLAG_VMA_LOCK) if it got a VMA;
 * a NULL VMA or VM_FAULT_RETRY sends the fault to lock_mm_and_find_vma()
 * and handle_mm_fault() without FAULT_FLAG_VMA_LOCK. Both functions are
 * fentry-traceable, so ftrace sees every step without kprobe int3s.
 * PER_VMA_LOCK_STATS is off in Debian's kernel, hence this module.
 *
 * FAST mode (the cheap default) counts user faults with the
 * exceptions:page_fault_user tracepoint (a direct call) and classifies
 * handle_mm_fault() by its flags with a plain ftrace_ops: its trampoline
 * saves the argument registers only and calls spf_hmf_ftrace() directly
 * (no pt_regs, no fprobe/rethook layer). Every way to the mmap_lock pass
 * goes through lock_mm_and_find_vma(): a second ftrace_ops there tells an
 * abort (no pass yet), a VMA-lock retry (the last pass of this task's
 * fault ran under the VMA lock) and an mmap_lock retry apart, from a
 * per-task mark set by the VMA-lock pass (spf_pend). EXACT mode uses
 * fprobes with exit handlers on lock_vma_under_rcu() and handle_mm_fault()
 * to count NULL returns and VM_FAULT_RETRY directly, and counts only the
 * lock_vma_under_rcu() calls of the fault handler (userfaultfd and TCP
 * zerocopy receive call it too). Counters are per-cpu, globally and for
 * up to SPF_MAX_TRACK tracked processes (by mm).
 *
 * Each handle_mm_fault() under the VMA lock is checked: the VMA must be
 * attached, its rwsem held, not write-locked in the current mmap_lock
 * cycle, contain the address and belong to current->mm.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fprobe.h>
#include <linux/ftrace.h>
#include <linux/kallsyms.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/pid.h>
#include <linux/sched/clock.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>

#include <linux/cred.h>
#include <linux/hash.h>
#include <linux/ptrace.h>
#include <linux/sched/coredump.h>
#include <linux/spinlock.h>
#include <linux/user_namespace.h>

#include "spf_internal.h"
#include "spf_trace.h"

/* The probes read the x86-64 argument registers (regs->di, si, dx). */
#ifndef CONFIG_X86_64
#error "spf_harness supports x86-64 only: its probes read x86-64 argument registers"
#endif

#define SPF_VIOL_DETACHED	BIT(0)
#define SPF_VIOL_UNLOCKED	BIT(1)
#define SPF_VIOL_WRLOCKED	BIT(2)
#define SPF_VIOL_RANGE		BIT(3)
#define SPF_VIOL_MM		BIT(4)

struct spf_pcpu {
	u64 c[SPF_C_NR];
};

/* Latency histograms (SPF_OBS_F_LATENCY), per cpu. */
struct spf_lat_pcpu {
	u64 count[SPF_LAT_NR][SPF_LAT_BUCKETS];
	u64 max_ns[SPF_LAT_NR];
	u64 sum_ns[SPF_LAT_NR];
	u64 lost;
};

/*
 * A tracked process. @mm is compared only, never dereferenced in probes.
 * @by is the file that tracked it: closing that file frees the slot.
 */
struct spf_slot {
	struct mm_struct *mm;
	struct file *by;
	pid_t pid;
	struct spf_pcpu __percpu *cnt;
	struct spf_lat_pcpu __percpu *lat;
};

/* Per-call data handed from an entry to an exit handler (EXACT mode). */
struct spf_call {
	int slot;
	int kind;
	unsigned long address;
	unsigned int flags;
};

enum { SPF_K_VMA, SPF_K_MMAP, SPF_K_OTHER };

static DEFINE_MUTEX(spf_obs_lock);
static struct file *spf_obs_owner;
static u32 spf_obs_mode;
static u32 spf_features;
static struct spf_pcpu __percpu *spf_global;
static struct spf_lat_pcpu __percpu *spf_global_lat;
static struct spf_slot spf_slots[SPF_MAX_TRACK];
static struct tracepoint *spf_tp_kernel;
static struct tracepoint *spf_tp_user;
static bool spf_broken_fast;
/*
 * Where FAST's classification goes: the main counters in FAST mode, the
 * SPF_C_FAST_* shadow in EXACT mode. Set before the probes attach.
 */
static int spf_fc_user = SPF_C_USER_FAULTS;
static int spf_fc_abort = SPF_C_VMA_ABORTS;
static int spf_fc_retry = SPF_C_VMA_RETRY;
static int spf_fc_mretry = SPF_C_MMAP_RETRY;

/*
 * FAST: what the current fault of a task did last, one word per task
 * hash (direct mapped): the task_struct pointer | SPF_P_*. Set by the
 * VMA-lock pass and by lock_mm_and_find_vma(), cleared when the task's
 * next user fault starts (page_fault_user), read by
 * lock_mm_and_find_vma(). Only the task itself writes its word, except
 * when two tasks share a hash: then one overwrites the other (see
 * Documentation/spf.rst, Limits). task_struct is cache-line aligned, so
 * the low bits are free.
 */
#define SPF_PEND_BITS	12
#define SPF_P_VMA	1UL	/* the last pass ran under the VMA lock */
#define SPF_P_MMAP	2UL	/* the last pass ran under mmap_lock */
#define SPF_P_MASK	3UL
static unsigned long spf_pend[1 << SPF_PEND_BITS];

/*
 * SPF_OBS_F_LATENCY: the fault in progress of a task, by the same task
 * hash as spf_pend: @task (0: none), its start (local_clock()) and
 * whether a VMA-lock pass of it returned VM_FAULT_RETRY. Written by the
 * task itself (page_fault_user starts it, the exit of its last
 * handle_mm_fault() pass ends it); a task sharing the slot at the same
 * moment makes the other's last pass "lost".
 */
struct spf_lat_task {
	unsigned long task;
	u64 t0;
	unsigned long retried;
};

static struct spf_lat_task spf_lat_tasks[1 << SPF_PEND_BITS];
static bool spf_lat_on;
static u64 spf_slow_ns;

static inline unsigned long *spf_pend_word(void)
{
	return &spf_pend[hash_ptr(current, SPF_PEND_BITS)];
}

/* Return what the current task's fault did last (0: nothing), then mark @st. */
static inline unsigned long spf_pend_xchg(unsigned long st)
{
	unsigned long *w = spf_pend_word();
	unsigned long old = READ_ONCE(*w);
	unsigned long me = (unsigned long)current;

	old = (old & ~SPF_P_MASK) == me ? old & SPF_P_MASK : 0;
	if (st || old)
		WRITE_ONCE(*w, st ? me | st : 0);
	return old;
}

static inline void spf_inc(int slot, int c)
{
	this_cpu_inc(spf_global->c[c]);
	if (slot >= 0)
		this_cpu_inc(spf_slots[slot].cnt->c[c]);
}

static inline int spf_slot_of(const struct mm_struct *mm)
{
	int i;

	for (i = 0; i < SPF_MAX_TRACK; i++)
		if (READ_ONCE(spf_slots[i].mm) == mm)
			return i;
	return -1;
}

/**
 * spf_check_vma() - check the per-VMA lock invariants of a fault.
 * @vma: the VMA handle_mm_fault() got with FAULT_FLAG_VMA_LOCK
 * @address: the faulting address
 *
 * Must be called by the task holding the VMA read lock.
 * Return: a mask of SPF_VIOL_* bits, 0 when all invariants hold.
 */
u32 spf_check_vma(struct vm_area_struct *vma, unsigned long address)
{
	struct mm_struct *mm = vma->vm_mm;
	u32 viol = 0;

	if (READ_ONCE(vma->detached))
		viol |= SPF_VIOL_DETACHED;
	if (!rwsem_is_locked(&vma->vm_lock->lock))
		viol |= SPF_VIOL_UNLOCKED;
	/*
	 * vma_start_write() sets vm_lock_seq to mm_lock_seq under the rwsem
	 * held for write; while we hold it for read they cannot be equal.
	 * Debian's 6.12 has mm_lock_seq as a seqcount_t.
	 */
	if (READ_ONCE(vma->vm_lock_seq) == raw_read_seqcount(&mm->mm_lock_seq))
		viol |= SPF_VIOL_WRLOCKED;
	if (address < vma->vm_start || address >= vma->vm_end)
		viol |= SPF_VIOL_RANGE;
	if (mm != current->mm)
		viol |= SPF_VIOL_MM;
	if (unlikely(viol))
		trace_spf_violation(address, vma->vm_start, vma->vm_end, viol);
	return viol;
}

static void spf_count_viol(int slot, u32 viol)
{
	if (viol & SPF_VIOL_DETACHED)
		spf_inc(slot, SPF_C_VIOL_DETACHED);
	if (viol & SPF_VIOL_UNLOCKED)
		spf_inc(slot, SPF_C_VIOL_UNLOCKED);
	if (viol & SPF_VIOL_WRLOCKED)
		spf_inc(slot, SPF_C_VIOL_WRLOCKED);
	if (viol & SPF_VIOL_RANGE)
		spf_inc(slot, SPF_C_VIOL_RANGE);
	if (viol & SPF_VIOL_MM)
		spf_inc(slot, SPF_C_VIOL_MM);
	pr_warn_ratelimited("per-VMA lock invariant violated: mask 0x%x\n",
			    viol);
}

/*
 * lock_vma_under_rcu() call sites by return address: the x86 fault
 * handler, or another caller (userfaultfd's uffd_lock_vma() and
 * uffd_move_lock(), TCP zerocopy receive's find_tcp_vma()), which is not
 * a fault. Learned on first sight by the caller's symbol name (no address
 * is looked up, nothing is called through one); a handful of sites exist.
 */
#define SPF_CALLERS	16
static struct {
	unsigned long ip;
	bool fault;
} spf_callers[SPF_CALLERS];
static unsigned int spf_ncallers;
static DEFINE_RAW_SPINLOCK(spf_callers_lock);

/**
 * spf_caller_is_fault() - is @ret_ip in the page-fault handler?
 * @ret_ip: return address of a lock_vma_under_rcu() call
 *
 * Return: true if the caller is do_user_addr_fault() (or what it is
 * inlined into), false for any other caller.
 */
static bool spf_caller_is_fault(unsigned long ret_ip)
{
	/* pairs with the release below: entries [0, n) are complete */
	unsigned int i, n = smp_load_acquire(&spf_ncallers);
	char name[64];
	unsigned long flags;
	bool fault;

	for (i = 0; i < n; i++)
		if (spf_callers[i].ip == ret_ip)
			return spf_callers[i].fault;
	snprintf(name, sizeof(name), "%ps", (void *)ret_ip);
	fault = !strcmp(name, "do_user_addr_fault") ||
		!strcmp(name, "exc_page_fault") ||
		!strcmp(name, "handle_page_fault");
	raw_spin_lock_irqsave(&spf_callers_lock, flags);
	n = spf_ncallers;
	for (i = 0; i < n; i++)
		if (spf_callers[i].ip == ret_ip)
			break;
	if (i == n && n < SPF_CALLERS) {
		spf_callers[n].ip = ret_ip;
		spf_callers[n].fault = fault;
		/* publish the entry before the count (acquire above) */
		smp_store_release(&spf_ncallers, n + 1);
	}
	raw_spin_unlock_irqrestore(&spf_callers_lock, flags);
	return fault;
}

/* lock_vma_under_rcu(struct mm_struct *mm, unsigned long address) */
static int spf_lvur_entry(struct fprobe *fp, unsigned long ip,
			  unsigned long ret_ip, struct pt_regs *regs,
			  void *data)
{
	struct spf_call *call = data;
	int slot;

	if (!spf_caller_is_fault(ret_ip))
		return 1;	/* not a fault: no count, no exit handler */
	slot = spf_slot_of((struct mm_struct *)regs->di);
	spf_inc(slot, SPF_C_USER_FAULTS);
	if (call)
		call->slot = slot;
	else	/* FAST fallback (no tracepoint): a user fault starts */
		spf_pend_xchg(0);
	return 0;
}

static void spf_lvur_exit(struct fprobe *fp, unsigned long ip,
			  unsigned long ret_ip, struct pt_regs *regs,
			  void *data)
{
	struct spf_call *call = data;

	if (!regs_return_value(regs))
		spf_inc(call->slot, SPF_C_VMA_ABORTS);
}

/*
 * Classify one handle_mm_fault(vma, address, flags, regs) call and run the
 * invariant checks of a VMA-lock fault. Returns the slot through @slotp.
 */
static __always_inline int spf_hmf_count(struct vm_area_struct *vma,
					 unsigned long address,
					 unsigned int flags, int *slotp)
{
	int slot = spf_slot_of(vma->vm_mm);
	u32 viol;

	*slotp = slot;
	if (!(flags & FAULT_FLAG_USER)) {
		spf_inc(slot, SPF_C_KERNEL_FAULTS);
		return SPF_K_OTHER;
	}
	if (flags & FAULT_FLAG_VMA_LOCK) {
		spf_inc(slot, SPF_C_VMA_FAULTS);
		if (!spf_broken_fast)
			spf_pend_xchg(SPF_P_VMA);
		viol = spf_check_vma(vma, address);
		if (unlikely(viol))
			spf_count_viol(slot, viol);
		return SPF_K_VMA;
	}
	spf_inc(slot, (flags & FAULT_FLAG_TRIED) ?
		      SPF_C_MMAP_TRIED : SPF_C_MMAP_FAULTS);
	return SPF_K_MMAP;
}

/* EXACT: fprobe entry, hands slot and kind to spf_hmf_exit(). */
static int spf_hmf_entry(struct fprobe *fp, unsigned long ip,
			 unsigned long ret_ip, struct pt_regs *regs,
			 void *data)
{
	struct spf_call *call = data;
	int slot, kind;

	kind = spf_hmf_count((struct vm_area_struct *)regs->di, regs->si,
			     regs->dx, &slot);
	if (!call)
		return 0;
	call->slot = slot;
	call->kind = kind;
	call->address = regs->si;
	call->flags = regs->dx;
	return 0;
}

/*
 * FAST: a plain ftrace_ops callback. Its trampoline saves only the
 * argument registers (no SAVE_REGS, no pt_regs) and calls this directly:
 * no fprobe layer, no recursion lock (nothing here is traceable by this
 * ops: the filter holds handle_mm_fault only).
 */
static void spf_hmf_ftrace(unsigned long ip, unsigned long parent_ip,
			   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	int slot;

	spf_hmf_count((struct vm_area_struct *)ftrace_regs_get_argument(fregs, 0),
		      ftrace_regs_get_argument(fregs, 1),
		      ftrace_regs_get_argument(fregs, 2), &slot);
}

/*
 * FAST: lock_mm_and_find_vma(mm, address, regs), entered by the x86 fault
 * handler before every mmap_lock pass: after an abort (no pass yet), after
 * a VMA-lock pass that returned VM_FAULT_RETRY, or after an mmap_lock pass
 * that did. Kernel-mode faults come here too (they never try the VMA lock).
 */
static void spf_lmfv_ftrace(unsigned long ip, unsigned long parent_ip,
			    struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct pt_regs *regs = (struct pt_regs *)ftrace_regs_get_argument(fregs, 2);
	struct mm_struct *mm = (struct mm_struct *)ftrace_regs_get_argument(fregs, 0);
	unsigned long last;
	int slot;

	if (!regs || !user_mode(regs))
		return;
	slot = spf_slot_of(mm);
	last = spf_pend_xchg(SPF_P_MMAP);
	if (last == SPF_P_VMA)
		spf_inc(slot, spf_fc_retry);
	else if (last == SPF_P_MMAP)
		spf_inc(slot, spf_fc_mretry);
	else
		spf_inc(slot, spf_fc_abort);
}

static void spf_lat_add(struct spf_lat_pcpu __percpu *lat, int out, u64 ns)
{
	int b = ns ? min_t(int, fls64(ns) - 1, SPF_LAT_BUCKETS - 1) : 0;

	this_cpu_inc(lat->count[out][b]);
	this_cpu_add(lat->sum_ns[out], ns);
	if (ns > this_cpu_read(lat->max_ns[out]))
		this_cpu_write(lat->max_ns[out], ns);
}

static void spf_lat_lost(int slot)
{
	this_cpu_inc(spf_global_lat->lost);
	if (slot >= 0)
		this_cpu_inc(spf_slots[slot].lat->lost);
}

/*
 * SPF_OBS_F_LATENCY: a user handle_mm_fault() pass of the current task
 * returned @ret. A VMA-lock pass that retries marks its fault; the last
 * pass (no VM_FAULT_RETRY) ends it: its time goes into the histogram of
 * its outcome, and the trace event fires if it was slow.
 */
static void spf_lat_pass(const struct spf_call *call, vm_fault_t ret)
{
	struct spf_lat_task *t = &spf_lat_tasks[hash_ptr(current, SPF_PEND_BITS)];
	bool major;
	int out;
	u64 ns;

	if (READ_ONCE(t->task) != (unsigned long)current) {
		if (!(ret & VM_FAULT_RETRY))
			spf_lat_lost(call->slot);
		return;
	}
	if (ret & VM_FAULT_RETRY) {
		if (call->kind == SPF_K_VMA)
			t->retried = 1;
		return;
	}
	ns = local_clock() - t->t0;
	WRITE_ONCE(t->task, 0);
	if (ret & VM_FAULT_ERROR) {
		out = SPF_LAT_ERROR;
	} else {
		/* what mm_account_fault() counts as major */
		major = (ret & VM_FAULT_MAJOR) || (call->flags & FAULT_FLAG_TRIED);
		out = call->kind == SPF_K_VMA ? SPF_LAT_VMA :
		      t->retried ? SPF_LAT_RETRY : SPF_LAT_FALLBACK;
		out += major;
	}
	spf_lat_add(spf_global_lat, out, ns);
	if (call->slot >= 0)
		spf_lat_add(spf_slots[call->slot].lat, out, ns);
	if (ns >= READ_ONCE(spf_slow_ns))
		trace_spf_slow_fault(call->address, ns, out, (__force u32)ret,
				     call->flags);
}

static void spf_hmf_exit(struct fprobe *fp, unsigned long ip,
			 unsigned long ret_ip, struct pt_regs *regs,
			 void *data)
{
	struct spf_call *call = data;
	vm_fault_t ret = (__force vm_fault_t)regs_return_value(regs);

	if (READ_ONCE(spf_lat_on) && call->kind != SPF_K_OTHER)
		spf_lat_pass(call, ret);
	/* FAST with SPF_OBS_F_LATENCY: latency only, FAST counts the rest */
	if (spf_obs_mode != SPF_OBS_EXACT)
		return;
	if (call->kind == SPF_K_VMA)
		spf_inc(call->slot, (ret & VM_FAULT_RETRY) ?
				    SPF_C_VMA_RETRY : SPF_C_VMA_DONE);
	else if (ret & VM_FAULT_RETRY)
		spf_inc(call->slot, call->kind == SPF_K_MMAP ?
				    SPF_C_MMAP_RETRY : SPF_C_KERNEL_RETRY);
	/* what mm_account_fault() leaves out of min_flt/maj_flt */
	if (!(ret & VM_FAULT_RETRY) && (ret & VM_FAULT_ERROR))
		spf_inc(call->slot, call->kind == SPF_K_OTHER ?
				    SPF_C_KERNEL_ERROR : SPF_C_USER_ERROR);
}

/* trace_page_fault_kernel(address, regs, error_code) */
static void spf_tp_kernel_probe(void *data, unsigned long address,
				struct pt_regs *regs, unsigned long error_code)
{
	spf_inc(current->mm ? spf_slot_of(current->mm) : -1, SPF_C_KERNEL_PF);
}

/* handle_mm_fault() may sleep: many calls can be in flight at once. */
#define SPF_MAXACTIVE	1024

/*
 * A fresh fprobe per attach: ftrace_free_filter() in unregister_fprobe()
 * frees the filter hashes without clearing the ops, so a struct fprobe
 * must never be registered twice.
 */
static struct fprobe *spf_fprobe_new(bool with_exit, fprobe_entry_cb entry,
				     fprobe_exit_cb exit)
{
	struct fprobe *fp = kzalloc(sizeof(*fp), GFP_KERNEL);

	if (!fp)
		return NULL;
	fp->entry_handler = entry;
	if (with_exit) {
		fp->exit_handler = exit;
		fp->entry_data_size = sizeof(struct spf_call);
		fp->nr_maxactive = SPF_MAXACTIVE;
	}
	return fp;
}

static struct fprobe *spf_fp_lvur;
static struct fprobe *spf_fp_hmf;

/*
 * trace_page_fault_user(address, regs, error_code): FAST mode counts user
 * faults here rather than with an fprobe on lock_vma_under_rcu(): a
 * tracepoint probe is a direct call, an fprobe saves a full pt_regs.
 * do_user_addr_fault() calls lock_vma_under_rcu() for every user fault
 * but those ending early (SMAP/reserved-bit/kprobe faults), so the two
 * counts agree but for such faults.
 */
static void spf_tp_user_probe(void *data, unsigned long address,
			      struct pt_regs *regs, unsigned long error_code)
{
	spf_inc(spf_slot_of(current->mm), spf_fc_user);
	spf_pend_xchg(0);	/* a new fault: forget the last one */
	if (READ_ONCE(spf_lat_on)) {
		struct spf_lat_task *t =
			&spf_lat_tasks[hash_ptr(current, SPF_PEND_BITS)];

		WRITE_ONCE(t->task, (unsigned long)current);
		t->retried = 0;
		t->t0 = local_clock();
	}
}

static void spf_find_tp(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "page_fault_kernel"))
		spf_tp_kernel = tp;
	else if (!strcmp(tp->name, "page_fault_user"))
		spf_tp_user = tp;
}

static u64 spf_missed(void)
{
	u64 n = 0;

	if (spf_fp_lvur)
		n += READ_ONCE(spf_fp_lvur->nmissed);
	if (spf_fp_hmf)
		n += READ_ONCE(spf_fp_hmf->nmissed);
	return n;
}

static struct ftrace_ops *spf_fops;
static struct ftrace_ops *spf_fops_lmfv;

/* A fresh ftrace_ops per attach, filtered on @sym only, stored in @slot. */
static int spf_fops_attach(struct ftrace_ops **slot, const char *sym,
			   ftrace_func_t func)
{
	char buf[KSYM_NAME_LEN];
	struct ftrace_ops *ops;
	int ret;

	ops = kzalloc(sizeof(*ops), GFP_KERNEL);
	if (!ops)
		return -ENOMEM;
	ops->func = func;
	strscpy(buf, sym, sizeof(buf));
	ret = ftrace_set_filter(ops, buf, strlen(buf), 1);
	if (!ret)
		ret = register_ftrace_function(ops);
	if (ret) {
		pr_err("cannot trace %s: %d\n", sym, ret);
		ftrace_free_filter(ops);
		kfree(ops);
		return ret;
	}
	*slot = ops;
	return 0;
}

static void spf_fops_detach(struct ftrace_ops **slot)
{
	if (!*slot)
		return;
	/* Waits for running callbacks (RCU tasks) before returning. */
	unregister_ftrace_function(*slot);
	ftrace_free_filter(*slot);
	kfree(*slot);
	*slot = NULL;
}

/* Detach every probe. Called with spf_obs_lock held. */
static void spf_obs_detach(void)
{
	if (spf_features & SPF_FEAT_KERNEL_TP) {
		tracepoint_probe_unregister(spf_tp_kernel,
					    spf_tp_kernel_probe, NULL);
		spf_features &= ~SPF_FEAT_KERNEL_TP;
	}
	if (spf_features & SPF_FEAT_USER_TP) {
		tracepoint_probe_unregister(spf_tp_user, spf_tp_user_probe,
					    NULL);
		spf_features &= ~SPF_FEAT_USER_TP;
	}
	spf_fops_detach(&spf_fops_lmfv);
	spf_fops_detach(&spf_fops);
	if (spf_fp_hmf) {
		unregister_fprobe(spf_fp_hmf);
		kfree(spf_fp_hmf);
		spf_fp_hmf = NULL;
	}
	if (spf_fp_lvur) {
		unregister_fprobe(spf_fp_lvur);
		kfree(spf_fp_lvur);
		spf_fp_lvur = NULL;
	}
	/* Tracepoint probes may still run until a grace period passes. */
	tracepoint_synchronize_unregister();
	spf_obs_mode = SPF_OBS_OFF;
	spf_broken_fast = false;
	spf_lat_on = false;
	spf_features &= ~(SPF_FEAT_BROKEN_FAST | SPF_FEAT_FAST_SHADOW |
			  SPF_FEAT_LATENCY);
	memset(spf_pend, 0, sizeof(spf_pend));
	memset(spf_lat_tasks, 0, sizeof(spf_lat_tasks));
}

static int spf_fprobe_attach(struct fprobe **slot, bool with_exit,
			     const char *sym, fprobe_entry_cb entry,
			     fprobe_exit_cb exit)
{
	struct fprobe *fp = spf_fprobe_new(with_exit, entry, exit);
	int ret;

	if (!fp)
		return -ENOMEM;
	ret = register_fprobe_syms(fp, &sym, 1);
	if (ret) {
		pr_err("cannot probe %s: %d\n", sym, ret);
		kfree(fp);
		return ret;
	}
	*slot = fp;
	return 0;
}

static int spf_tp_user_attach(void)
{
	if (!spf_tp_user ||
	    tracepoint_probe_register(spf_tp_user, spf_tp_user_probe, NULL))
		return -ENOENT;
	spf_features |= SPF_FEAT_USER_TP;
	return 0;
}

/*
 * Attach the probes of @mode (@flags: SPF_OBS_F_*). Called with
 * spf_obs_lock held, all off.
 */
static int spf_obs_attach(u32 mode, u32 flags, u64 slow_ns)
{
	bool lat = flags & SPF_OBS_F_LATENCY;
	int ret = 0;

	/* Before the probes run: they read these without the lock. */
	spf_obs_mode = mode;
	spf_broken_fast = flags & SPF_OBS_F_BROKEN_FAST;
	spf_slow_ns = slow_ns;
	spf_lat_on = lat;
	/* the latency clock starts at page_fault_user */
	if (lat && !spf_tp_user) {
		pr_err("latency needs the exceptions:page_fault_user tracepoint\n");
		ret = -ENOENT;
		goto err;
	}
	spf_fc_user = mode == SPF_OBS_EXACT ? SPF_C_FAST_USER : SPF_C_USER_FAULTS;
	spf_fc_abort = mode == SPF_OBS_EXACT ? SPF_C_FAST_ABORTS : SPF_C_VMA_ABORTS;
	spf_fc_retry = mode == SPF_OBS_EXACT ? SPF_C_FAST_RETRY : SPF_C_VMA_RETRY;
	spf_fc_mretry = mode == SPF_OBS_EXACT ? SPF_C_FAST_MMAP_RETRY :
						SPF_C_MMAP_RETRY;

	if (mode == SPF_OBS_EXACT) {
		ret = spf_fprobe_attach(&spf_fp_lvur, true, "lock_vma_under_rcu",
					spf_lvur_entry, spf_lvur_exit);
		if (!ret)
			ret = spf_fprobe_attach(&spf_fp_hmf, true,
						"handle_mm_fault",
						spf_hmf_entry, spf_hmf_exit);
		/* FAST's classification alongside, into SPF_C_FAST_* */
		if (!ret && !spf_tp_user_attach()) {
			ret = spf_fops_attach(&spf_fops_lmfv,
					      "lock_mm_and_find_vma",
					      spf_lmfv_ftrace);
			if (!ret)
				spf_features |= SPF_FEAT_FAST_SHADOW;
		}
	} else {
		/* FAST: the tracepoint, or an fprobe if it is missing */
		if (spf_tp_user_attach())
			ret = spf_fprobe_attach(&spf_fp_lvur, false,
						"lock_vma_under_rcu",
						spf_lvur_entry, NULL);
		/* latency needs the return of every pass: an fprobe */
		if (!ret && lat)
			ret = spf_fprobe_attach(&spf_fp_hmf, true,
						"handle_mm_fault",
						spf_hmf_entry, spf_hmf_exit);
		else if (!ret)
			ret = spf_fops_attach(&spf_fops, "handle_mm_fault",
					      spf_hmf_ftrace);
		if (!ret)
			ret = spf_fops_attach(&spf_fops_lmfv,
					      "lock_mm_and_find_vma",
					      spf_lmfv_ftrace);
	}
	if (ret)
		goto err;
	/* Optional: kernel-mode #PF count; the lab works without it. */
	if (spf_tp_kernel &&
	    !tracepoint_probe_register(spf_tp_kernel, spf_tp_kernel_probe,
				       NULL))
		spf_features |= SPF_FEAT_KERNEL_TP;
	if (spf_broken_fast)
		spf_features |= SPF_FEAT_BROKEN_FAST;
	if (lat)
		spf_features |= SPF_FEAT_LATENCY;
	return 0;
err:
	spf_obs_detach();
	return ret;
}

static void spf_zero(struct spf_pcpu __percpu *cnt,
		     struct spf_lat_pcpu __percpu *lat)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		memset(per_cpu_ptr(cnt, cpu), 0, sizeof(struct spf_pcpu));
		memset(per_cpu_ptr(lat, cpu), 0, sizeof(struct spf_lat_pcpu));
	}
}

static void spf_untrack(int i)
{
	struct mm_struct *mm = spf_slots[i].mm;

	if (!mm)
		return;
	/* Probes only compare the pointer: no grace period needed. */
	WRITE_ONCE(spf_slots[i].mm, NULL);
	spf_slots[i].pid = 0;
	spf_slots[i].by = NULL;
	mmdrop(mm);
}

/**
 * spf_may_read_mm() - may the caller read @task's memory-management state?
 * @task: the task to be tracked
 *
 * The credential and dumpability part of __ptrace_may_access() for
 * PTRACE_MODE_READ_FSCREDS, as /proc/<pid>/ files check with mm_access(),
 * written with exported API only (ptrace_may_access() and mm_access() are
 * not exported; the LSM hook security_ptrace_access_check() is not either,
 * so Yama/SELinux ptrace policies are not applied). Called with
 * @task->signal->exec_update_lock held for read, like mm_access().
 *
 * Return: true if the caller is in @task's thread group, or its fsuid and
 * fsgid match all of @task's uids and gids, or it has CAP_SYS_PTRACE in
 * @task's user namespace; and, if @task's mm is not dumpable, it has
 * CAP_SYS_PTRACE in the mm's user namespace.
 */
static bool spf_may_read_mm(struct task_struct *task)
{
	const struct cred *cred = current_cred(), *tcred;
	struct mm_struct *mm;
	bool ok;

	if (same_thread_group(task, current))
		return true;
	rcu_read_lock();
	tcred = __task_cred(task);
	ok = (uid_eq(cred->fsuid, tcred->euid) &&
	      uid_eq(cred->fsuid, tcred->suid) &&
	      uid_eq(cred->fsuid, tcred->uid) &&
	      gid_eq(cred->fsgid, tcred->egid) &&
	      gid_eq(cred->fsgid, tcred->sgid) &&
	      gid_eq(cred->fsgid, tcred->gid)) ||
	     ns_capable(tcred->user_ns, CAP_SYS_PTRACE);
	rcu_read_unlock();
	if (!ok)
		return false;
	task_lock(task);
	mm = task->mm;
	ok = !mm || get_dumpable(mm) == SUID_DUMP_USER ||
	     ns_capable(mm->user_ns, CAP_SYS_PTRACE);
	task_unlock(task);
	return ok;
}

static int spf_track(struct file *file, struct spf_track __user *argp)
{
	struct spf_track t;
	struct task_struct *task;
	struct mm_struct *mm;
	struct pid *pid;
	int i, free = -1;

	if (copy_from_user(&t, argp, sizeof(t)))
		return -EFAULT;
	if (t.pid < 0 || t.slot)
		return -EINVAL;
	pid = t.pid ? find_get_pid(t.pid) : get_task_pid(current, PIDTYPE_TGID);
	if (!pid)
		return -ESRCH;
	task = get_pid_task(pid, PIDTYPE_TGID);
	put_pid(pid);
	if (!task)
		return -ESRCH;
	/* As mm_access(): the check and the mm of one exec, not of two. */
	if (down_read_killable(&task->signal->exec_update_lock)) {
		put_task_struct(task);
		return -EINTR;
	}
	if (!spf_may_read_mm(task)) {
		up_read(&task->signal->exec_update_lock);
		put_task_struct(task);
		return -EPERM;
	}
	mm = get_task_mm(task);
	up_read(&task->signal->exec_update_lock);
	t.pid = task_tgid_nr(task);
	put_task_struct(task);
	if (!mm)
		return -EINVAL;	/* a kernel thread */

	for (i = 0; i < SPF_MAX_TRACK; i++) {
		if (spf_slots[i].mm == mm) {
			mmput(mm);
			return -EEXIST;
		}
		if (!spf_slots[i].mm && free < 0)
			free = i;
	}
	if (free < 0) {
		mmput(mm);
		return -ENOSPC;
	}
	t.slot = free;
	if (copy_to_user(argp, &t, sizeof(t))) {
		mmput(mm);
		return -EFAULT;
	}
	spf_zero(spf_slots[free].cnt, spf_slots[free].lat);
	spf_slots[free].pid = t.pid;
	spf_slots[free].by = file;
	mmgrab(mm);
	mmput(mm);
	WRITE_ONCE(spf_slots[free].mm, mm);
	return 0;
}

static int spf_read(struct spf_counters __user *argp)
{
	struct spf_counters *out;
	struct spf_pcpu __percpu *cnt;
	int cpu, i, ret = 0;

	out = memdup_user(argp, sizeof(*out));
	if (IS_ERR(out))
		return PTR_ERR(out);
	if (out->reserved) {
		ret = -EINVAL;
		goto out;
	}
	if (out->scope == SPF_SCOPE_GLOBAL) {
		cnt = spf_global;
		out->pid = 0;
	} else if (out->scope < SPF_MAX_TRACK && spf_slots[out->scope].mm) {
		cnt = spf_slots[out->scope].cnt;
		out->pid = spf_slots[out->scope].pid;
	} else {
		ret = out->scope < SPF_MAX_TRACK ? -ENOENT : -EINVAL;
		goto out;
	}
	memset(out->c, 0, sizeof(out->c));
	for_each_possible_cpu(cpu)
		for (i = 0; i < SPF_C_NR; i++)
			out->c[i] += per_cpu_ptr(cnt, cpu)->c[i];
	out->mode = spf_obs_mode;
	out->features = spf_features;
	out->nr = SPF_C_NR;
	out->missed = spf_missed();
	if (copy_to_user(argp, out, sizeof(*out)))
		ret = -EFAULT;
out:
	kfree(out);
	return ret;
}

static int spf_lat_read(struct spf_latency __user *argp)
{
	struct spf_lat_pcpu __percpu *lat;
	struct spf_latency *out;
	const struct spf_lat_pcpu *l;
	int cpu, o, b, ret = 0;
	u32 scope;

	out = memdup_user(argp, sizeof(*out));
	if (IS_ERR(out))
		return PTR_ERR(out);
	if (out->reserved) {
		ret = -EINVAL;
		goto out;
	}
	if (out->scope == SPF_SCOPE_GLOBAL) {
		lat = spf_global_lat;
	} else if (out->scope < SPF_MAX_TRACK && spf_slots[out->scope].mm) {
		lat = spf_slots[out->scope].lat;
	} else {
		ret = out->scope < SPF_MAX_TRACK ? -ENOENT : -EINVAL;
		goto out;
	}
	scope = out->scope;
	memset(out, 0, sizeof(*out));
	out->scope = scope;
	out->nr_outcomes = SPF_LAT_NR;
	out->nr_buckets = SPF_LAT_BUCKETS;
	for_each_possible_cpu(cpu) {
		l = per_cpu_ptr(lat, cpu);
		out->lost += l->lost;
		for (o = 0; o < SPF_LAT_NR; o++) {
			for (b = 0; b < SPF_LAT_BUCKETS; b++)
				out->count[o][b] += l->count[o][b];
			out->sum_ns[o] += l->sum_ns[o];
			out->max_ns[o] = max(out->max_ns[o], l->max_ns[o]);
		}
	}
	if (copy_to_user(argp, out, sizeof(*out)))
		ret = -EFAULT;
out:
	kfree(out);
	return ret;
}

static int spf_obs_set(struct file *file, struct spf_obs_config __user *argp)
{
	struct spf_obs_config cfg;
	int ret;

	if (copy_from_user(&cfg, argp, sizeof(cfg)))
		return -EFAULT;
	if ((cfg.flags & ~SPF_OBS_F_ALL) || cfg.reserved ||
	    cfg.mode > SPF_OBS_EXACT)
		return -EINVAL;
	if (cfg.flags && cfg.mode == SPF_OBS_OFF)
		return -EINVAL;
	if (cfg.slow_ns && !(cfg.flags & SPF_OBS_F_LATENCY))
		return -EINVAL;
	if (cfg.mode == spf_obs_mode &&
	    !!(cfg.flags & SPF_OBS_F_BROKEN_FAST) == spf_broken_fast &&
	    !!(cfg.flags & SPF_OBS_F_LATENCY) == spf_lat_on) {
		WRITE_ONCE(spf_slow_ns, cfg.slow_ns);
		return 0;
	}
	spf_obs_detach();
	if (cfg.mode == SPF_OBS_OFF) {
		spf_obs_owner = NULL;
		return 0;
	}
	ret = spf_obs_attach(cfg.mode, cfg.flags, cfg.slow_ns);
	spf_obs_owner = ret ? NULL : file;
	return ret;
}

/**
 * spf_obs_ioctl() - observer ioctls of /dev/spf_harness.
 * @file: the calling file
 * @cmd: SPF_IOC_OBS_SET, _TRACK, _UNTRACK, _READ, _LAT_READ or _RESET
 * @argp: user argument
 *
 * Everything but READ and LAT_READ needs @file to own the observer, or the observer to
 * be unowned (then SET makes @file the owner).
 * Return: 0 or a negative errno.
 */
long spf_obs_ioctl(struct file *file, unsigned int cmd, void __user *argp)
{
	struct spf_track t;
	int i, ret = 0;

	mutex_lock(&spf_obs_lock);
	if (cmd == SPF_IOC_READ) {
		ret = spf_read(argp);
		goto out;
	}
	if (cmd == SPF_IOC_LAT_READ) {
		ret = spf_lat_read(argp);
		goto out;
	}
	if (spf_obs_owner && spf_obs_owner != file) {
		ret = -EBUSY;
		goto out;
	}
	switch (cmd) {
	case SPF_IOC_OBS_SET:
		ret = spf_obs_set(file, argp);
		break;
	case SPF_IOC_TRACK:
		ret = spf_track(file, argp);
		break;
	case SPF_IOC_UNTRACK:
		if (copy_from_user(&t, argp, sizeof(t))) {
			ret = -EFAULT;
			break;
		}
		if (t.slot >= SPF_MAX_TRACK)
			ret = -EINVAL;
		else if (!spf_slots[t.slot].mm)
			ret = -ENOENT;
		else
			spf_untrack(t.slot);
		break;
	case SPF_IOC_RESET:
		spf_zero(spf_global, spf_global_lat);
		for (i = 0; i < SPF_MAX_TRACK; i++)
			spf_zero(spf_slots[i].cnt, spf_slots[i].lat);
		break;
	default:
		ret = -ENOTTY;
	}
out:
	mutex_unlock(&spf_obs_lock);
	return ret;
}

/**
 * spf_obs_release() - a file is closed: free the slots it tracked; if it
 * owns the observer, turn the observer off. Counters stay readable.
 * @file: the file being released
 */
void spf_obs_release(struct file *file)
{
	int i;

	mutex_lock(&spf_obs_lock);
	if (spf_obs_owner == file) {
		spf_obs_detach();
		spf_obs_owner = NULL;
	}
	for (i = 0; i < SPF_MAX_TRACK; i++)
		if (spf_slots[i].by == file)
			spf_untrack(i);
	mutex_unlock(&spf_obs_lock);
}

int spf_obs_init(void)
{
	int i;

	spf_global = alloc_percpu(struct spf_pcpu);
	if (!spf_global)
		return -ENOMEM;
	spf_global_lat = alloc_percpu(struct spf_lat_pcpu);
	if (!spf_global_lat)
		goto err_global;
	for (i = 0; i < SPF_MAX_TRACK; i++) {
		spf_slots[i].cnt = alloc_percpu(struct spf_pcpu);
		spf_slots[i].lat = alloc_percpu(struct spf_lat_pcpu);
		if (!spf_slots[i].cnt || !spf_slots[i].lat) {
			free_percpu(spf_slots[i].cnt);
			free_percpu(spf_slots[i].lat);
			goto err_slots;
		}
	}
	for_each_kernel_tracepoint(spf_find_tp, NULL);
	if (!spf_tp_kernel)
		pr_info("no page_fault_kernel tracepoint: kernel #PF not counted\n");
	return 0;

err_slots:
	while (--i >= 0) {
		free_percpu(spf_slots[i].cnt);
		free_percpu(spf_slots[i].lat);
	}
	free_percpu(spf_global_lat);
err_global:
	free_percpu(spf_global);
	return -ENOMEM;
}

void spf_obs_exit(void)
{
	int i;

	/* No file is open (the module is referenced by open files). */
	mutex_lock(&spf_obs_lock);
	spf_obs_detach();
	for (i = 0; i < SPF_MAX_TRACK; i++)
		spf_untrack(i);
	mutex_unlock(&spf_obs_lock);
	for (i = 0; i < SPF_MAX_TRACK; i++) {
		free_percpu(spf_slots[i].cnt);
		free_percpu(spf_slots[i].lat);
	}
	free_percpu(spf_global_lat);
	free_percpu(spf_global);
}
