/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * spf_harness: speculative-fault (per-VMA lock) observer and tagged test
 * device. Shared by mm/spf/, tools/spf/ and selftests/spf/.
 *
 * One misc device, /dev/spf_harness. Every open file is independent:
 *  - it may own the fault observer (one owner at a time, -EBUSY otherwise;
 *    closing the owner or setting OFF turns the observer off and gives up
 *    ownership, counters stay readable); the processes it tracks stay
 *    tracked until it is closed;
 *  - after SPF_IOC_DEV_SETUP it is a test device whose mmap() gives pages
 *    tagged with (mapping id, generation, page index).
 */
#ifndef _UAPI_KMEMLAB_SPF_H
#define _UAPI_KMEMLAB_SPF_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SPF_DEV_PATH		"/dev/spf_harness"
#define SPF_IOC_MAGIC		0xB9

/* ---- observer ---------------------------------------------------------- */

/**
 * enum spf_obs_mode - how the observer probes the fault path.
 * @SPF_OBS_OFF: no probes attached.
 * @SPF_OBS_FAST: the exceptions:page_fault_user/kernel tracepoints and
 *	plain ftrace_ops (entry only, no pt_regs) on handle_mm_fault() and
 *	lock_mm_and_find_vma(), with the invariant checks. Aborts and retries
 *	are counted by remembering, per task, whether the fault's last pass
 *	ran under the VMA lock (see Documentation/spf.rst). The cheap default.
 * @SPF_OBS_EXACT: fprobes with exit handlers on lock_vma_under_rcu() and
 *	handle_mm_fault(): aborts (NULL from lock_vma_under_rcu) and
 *	VM_FAULT_RETRY are counted directly; costlier.
 */
enum spf_obs_mode {
	SPF_OBS_OFF	= 0,
	SPF_OBS_FAST	= 1,
	SPF_OBS_EXACT	= 2,
};

/**
 * struct spf_obs_config - argument of SPF_IOC_OBS_SET.
 * @mode: an &enum spf_obs_mode.
 * @flags: SPF_OBS_F_* bits: %SPF_OBS_F_BROKEN_FAST (a test switch; in
 *	EXACT mode it breaks the SPF_C_FAST_* counters), %SPF_OBS_F_LATENCY.
 * @slow_ns: with %SPF_OBS_F_LATENCY: user faults that take at least this
 *	long (from the fault's start to the return of its last
 *	handle_mm_fault() pass) fire the spf_harness:spf_slow_fault trace
 *	event (0: every fault). Must be 0 without the flag. Changing only
 *	@slow_ns keeps the observer attached and its counters.
 * @reserved: must be 0.
 */
struct spf_obs_config {
	__u32 mode;
	__u32 flags;
	__u64 slow_ns;
	__u64 reserved;
};

/*
 * &struct spf_obs_config.flags. BROKEN: FAST forgets that a fault's pass
 * ran under the VMA lock, so VMA-lock retries count as aborts (the
 * pre-fix derivation's class of error). For the selftests' negative
 * control; READ reports %SPF_FEAT_BROKEN_FAST while it is active.
 */
#define SPF_OBS_F_BROKEN_FAST	(1u << 0)
/*
 * LATENCY: time every user fault (FAST or EXACT; needs the
 * exceptions:page_fault_user tracepoint) into per-outcome log2
 * histograms (SPF_IOC_LAT_READ); in FAST mode handle_mm_fault() gets an
 * exit hook (an fprobe) for it, which costs what EXACT's does.
 */
#define SPF_OBS_F_LATENCY	(1u << 1)
#define SPF_OBS_F_ALL		(SPF_OBS_F_BROKEN_FAST | SPF_OBS_F_LATENCY)

/*
 * Counter indices in &struct spf_counters.c. USER_FAULTS: FAST counts the
 * page_fault_user tracepoint, EXACT the lock_vma_under_rcu() calls of the
 * fault handler (not those of userfaultfd or TCP zerocopy receive).
 * VMA_ABORTS, VMA_RETRY, MMAP_RETRY: EXACT counts return values; FAST
 * counts entries of lock_mm_and_find_vma() with no pass yet / after a
 * VMA-lock pass / after an mmap_lock pass of the same fault.
 */
enum spf_counter {
	SPF_C_USER_FAULTS,	/* user faults */
	SPF_C_VMA_FAULTS,	/* handle_mm_fault() with FAULT_FLAG_VMA_LOCK */
	SPF_C_MMAP_FAULTS,	/* user handle_mm_fault() under mmap_lock */
	SPF_C_MMAP_TRIED,	/* ... of which with FAULT_FLAG_TRIED */
	SPF_C_KERNEL_FAULTS,	/* handle_mm_fault() without FAULT_FLAG_USER */
	SPF_C_KERNEL_PF,	/* exceptions:page_fault_kernel tracepoint */
	SPF_C_VMA_ABORTS,	/* lock_vma_under_rcu() returned NULL */
	SPF_C_VMA_DONE,		/* EXACT: VMA-lock fault did not retry */
	SPF_C_VMA_RETRY,	/* VMA-lock fault returned VM_FAULT_RETRY */
	SPF_C_MMAP_RETRY,	/* mmap_lock fault returned VM_FAULT_RETRY */
	SPF_C_VIOL_DETACHED,	/* invariant: VMA detached during a VMA-lock fault */
	SPF_C_VIOL_UNLOCKED,	/* invariant: VMA rwsem not held */
	SPF_C_VIOL_WRLOCKED,	/* invariant: vm_lock_seq == mm_lock_seq */
	SPF_C_VIOL_RANGE,	/* invariant: address outside [vm_start, vm_end) */
	SPF_C_VIOL_MM,		/* invariant: vma->vm_mm != current->mm */
	/*
	 * EXACT only: FAST's classification of the same faults, counted
	 * alongside (SPF_FEAT_FAST_SHADOW), so that FAST == EXACT can be
	 * checked on one run; and what the kernel's own accounting needs.
	 */
	SPF_C_FAST_USER,	/* FAST's USER_FAULTS (page_fault_user) */
	SPF_C_FAST_ABORTS,	/* FAST's VMA_ABORTS */
	SPF_C_FAST_RETRY,	/* FAST's VMA_RETRY */
	SPF_C_FAST_MMAP_RETRY,	/* FAST's MMAP_RETRY */
	SPF_C_USER_ERROR,	/* EXACT: user pass returned VM_FAULT_ERROR */
	SPF_C_KERNEL_RETRY,	/* EXACT: non-user pass returned VM_FAULT_RETRY */
	SPF_C_KERNEL_ERROR,	/* EXACT: non-user pass returned VM_FAULT_ERROR */
	SPF_C_NR,
};

#define SPF_C_MAX		32
#define SPF_MAX_TRACK		8

/* &struct spf_counters.scope */
#define SPF_SCOPE_GLOBAL	0xffffffffu	/* otherwise a tracking slot */

/* &struct spf_counters.features */
#define SPF_FEAT_KERNEL_TP	(1u << 0)	/* SPF_C_KERNEL_PF is counted */
#define SPF_FEAT_USER_TP	(1u << 1)	/* FAST: USER_FAULTS from page_fault_user */
#define SPF_FEAT_BROKEN_FAST	(1u << 2)	/* SPF_OBS_F_BROKEN_FAST is active */
#define SPF_FEAT_FAST_SHADOW	(1u << 3)	/* EXACT: SPF_C_FAST_* are counted */
#define SPF_FEAT_LATENCY	(1u << 4)	/* SPF_OBS_F_LATENCY is active */

/**
 * struct spf_counters - argument of SPF_IOC_READ.
 * @scope: in: %SPF_SCOPE_GLOBAL or a slot from SPF_IOC_TRACK.
 * @mode: out: the current &enum spf_obs_mode.
 * @features: out: SPF_FEAT_* bits.
 * @nr: out: number of valid entries in @c (SPF_C_NR).
 * @missed: out: probe hits lost (fprobe nmissed), all probes.
 * @pid: out: the tracked tgid of @scope (0 for global).
 * @reserved: must be 0.
 * @c: out: counters, indexed by &enum spf_counter.
 */
struct spf_counters {
	__u32 scope;
	__u32 mode;
	__u32 features;
	__u32 nr;
	__u64 missed;
	__s32 pid;
	__u32 reserved;
	__u64 c[SPF_C_MAX];
};

/**
 * struct spf_track - argument of SPF_IOC_TRACK / SPF_IOC_UNTRACK.
 * @pid: process to track; 0 means the caller. Ignored by UNTRACK.
 * @slot: out (TRACK) / in (UNTRACK): the tracking slot.
 */
struct spf_track {
	__s32 pid;
	__u32 slot;
};

#define SPF_IOC_OBS_SET		_IOW(SPF_IOC_MAGIC, 0x01, struct spf_obs_config)
#define SPF_IOC_TRACK		_IOWR(SPF_IOC_MAGIC, 0x02, struct spf_track)
#define SPF_IOC_UNTRACK		_IOW(SPF_IOC_MAGIC, 0x03, struct spf_track)
#define SPF_IOC_READ		_IOWR(SPF_IOC_MAGIC, 0x04, struct spf_counters)
#define SPF_IOC_RESET		_IO(SPF_IOC_MAGIC, 0x05)

/*
 * Fault latency by outcome (SPF_OBS_F_LATENCY). A user fault is timed
 * from the exceptions:page_fault_user tracepoint to the return of its
 * last handle_mm_fault() pass (the first that did not return
 * VM_FAULT_RETRY) and counted once, under the outcome of that pass:
 * @SPF_LAT_VMA: completed under the VMA lock at the first try.
 * @SPF_LAT_FALLBACK: no VMA lock (lock_vma_under_rcu() found none or
 *	could not lock it): completed under mmap_lock.
 * @SPF_LAT_RETRY: the VMA-lock pass returned VM_FAULT_RETRY (I/O, a lock
 *	wait, ->fault without ->map_pages): completed under mmap_lock.
 * The _MAJOR variants: what the kernel accounts as major (maj_flt: the
 * last pass returned VM_FAULT_MAJOR or ran with FAULT_FLAG_TRIED).
 * @SPF_LAT_ERROR: the last pass returned VM_FAULT_ERROR (SIGBUS,
 *	SIGSEGV, OOM). The counts of all outcomes add up to the completed
 *	user passes (&struct spf_counters), less @lost.
 */
enum spf_lat_outcome {
	SPF_LAT_VMA,
	SPF_LAT_VMA_MAJOR,
	SPF_LAT_FALLBACK,
	SPF_LAT_FALLBACK_MAJOR,
	SPF_LAT_RETRY,
	SPF_LAT_RETRY_MAJOR,
	SPF_LAT_ERROR,
	SPF_LAT_NR,
};

#define SPF_LAT_MAX_OUT		8
/* bucket i: [2^i, 2^(i+1)) ns; bucket 0 also holds 0; the last: >= 2^31 */
#define SPF_LAT_BUCKETS		32

/**
 * struct spf_latency - argument of SPF_IOC_LAT_READ.
 * @scope: in: %SPF_SCOPE_GLOBAL or a slot from SPF_IOC_TRACK.
 * @nr_outcomes: out: SPF_LAT_NR.
 * @nr_buckets: out: SPF_LAT_BUCKETS.
 * @reserved: must be 0.
 * @lost: out: last passes whose fault start was not found (two tasks
 *	sharing a slot of the observer's per-task table at the same time).
 * @count: out: per outcome, faults per log2 bucket of nanoseconds.
 * @max_ns: out: per outcome, the longest fault.
 * @sum_ns: out: per outcome, the total time.
 */
struct spf_latency {
	__u32 scope;
	__u32 nr_outcomes;
	__u32 nr_buckets;
	__u32 reserved;
	__u64 lost;
	__u64 count[SPF_LAT_MAX_OUT][SPF_LAT_BUCKETS];
	__u64 max_ns[SPF_LAT_MAX_OUT];
	__u64 sum_ns[SPF_LAT_MAX_OUT];
};

#define SPF_IOC_LAT_READ	_IOWR(SPF_IOC_MAGIC, 0x06, struct spf_latency)

/* ---- tagged test device ------------------------------------------------ */

/* &struct spf_dev_setup.flags */
#define SPF_DEV_MAP_PAGES	(1u << 0)	/* vm_ops have ->map_pages */
#define SPF_DEV_BROKEN_GEN	(1u << 1)	/* BROKEN: faults ignore generation */
#define SPF_DEV_FLAGS_ALL	(SPF_DEV_MAP_PAGES | SPF_DEV_BROKEN_GEN)

#define SPF_DEV_MAX_SIZE	(1ull << 30)	/* 1 GiB of tagged pages */
#define SPF_DELAY_MAX_US	100000u		/* 100 ms */

/**
 * struct spf_dev_setup - argument of SPF_IOC_DEV_SETUP (once per open file).
 * @size: bytes of tagged pages, page aligned, 1 page .. SPF_DEV_MAX_SIZE.
 *	Faults beyond it get SIGBUS.
 * @flags: SPF_DEV_* flags.
 * @delay_us: delay inside ->fault while the fault lock is held,
 *	0..SPF_DELAY_MAX_US.
 * @reserved: must be 0.
 * @id: out: the mapping id written in every tag.
 */
struct spf_dev_setup {
	__u64 size;
	__u32 flags;
	__u32 delay_us;
	__u64 reserved;
	__u64 id;
};

/**
 * struct spf_tag - what every 32 bytes of a device page hold.
 * @magic: SPF_TAG_MAGIC.
 * @id: &struct spf_dev_setup.id.
 * @gen: generation at the time the page was (re)built.
 * @index: page index in the device (the mmap pgoff of the page).
 */
struct spf_tag {
	__u64 magic;
	__u64 id;
	__u64 gen;
	__u64 index;
};

#define SPF_TAG_MAGIC		0x5350465441473031ull	/* "SPFTAG01" */

/**
 * struct spf_dev_stats - argument of SPF_IOC_DEV_STATS.
 * @id: mapping id.
 * @gen: current generation (starts at 1).
 * @faults: ->fault calls.
 * @faults_vma_lock: ... with FAULT_FLAG_VMA_LOCK.
 * @faults_mmap_lock: ... without it (under mmap_lock).
 * @map_pages: ->map_pages calls.
 * @rebuilt: pages rebuilt because their generation was stale.
 * @sigbus: faults beyond the size.
 * @violations: invariant violations seen by ->fault under the VMA lock.
 * @pages: pages currently allocated.
 * @flags: SPF_DEV_* flags.
 * @delay_us: current delay.
 */
struct spf_dev_stats {
	__u64 id;
	__u64 gen;
	__u64 faults;
	__u64 faults_vma_lock;
	__u64 faults_mmap_lock;
	__u64 map_pages;
	__u64 rebuilt;
	__u64 sigbus;
	__u64 violations;
	__u64 pages;
	__u32 flags;
	__u32 delay_us;
};

#define SPF_IOC_DEV_SETUP	_IOWR(SPF_IOC_MAGIC, 0x10, struct spf_dev_setup)
#define SPF_IOC_DEV_DELAY	_IOW(SPF_IOC_MAGIC, 0x11, __u32)
/* Bump the generation, zap every mapping of this file; returns new gen. */
#define SPF_IOC_DEV_BUMP	_IOR(SPF_IOC_MAGIC, 0x12, __u64)
#define SPF_IOC_DEV_STATS	_IOR(SPF_IOC_MAGIC, 0x13, struct spf_dev_stats)

#endif /* _UAPI_KMEMLAB_SPF_H */
