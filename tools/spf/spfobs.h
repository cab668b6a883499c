/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spfobs.h - userspace client of the spf_harness observer, shared by
 * tools/spf and selftests/spf (header only).
 */
#ifndef SPFOBS_H
#define SPFOBS_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <kmemlab/spf.h>

/**
 * struct spf_summary - what a counter snapshot means.
 * @user: user faults.
 * @vma_done: faults completed under the VMA lock (errors included).
 * @aborts: lock_vma_under_rcu() returned NULL: straight to mmap_lock.
 * @retries: VMA-lock faults that returned VM_FAULT_RETRY (then redone
 *	under mmap_lock; with FAULT_FLAG_TRIED if the retry was major).
 * @mmap: user handle_mm_fault() passes under mmap_lock (all of them).
 * @mmap_retries: mmap_lock passes that returned VM_FAULT_RETRY.
 * @completed: user handle_mm_fault() passes that did not retry: the faults
 *	the kernel accounts (getrusage min+maj) plus those that failed
 *	(SIGBUS, SIGSEGV, OOM from handle_mm_fault()).
 * @no_pass: user faults that ended without any handle_mm_fault() under
 *	the VMA lock nor an abort: access errors (SIGSEGV) under the VMA
 *	lock, counted by the kernel as VMA-lock successes.
 * @kernel: handle_mm_fault() calls without FAULT_FLAG_USER (GUP, kernel #PF).
 * @violations: invariant violations of all kinds.
 * @exact: counted by exit handlers (EXACT) rather than by entry order (FAST).
 */
struct spf_summary {
	uint64_t user, vma_done, aborts, retries, mmap, mmap_retries;
	uint64_t completed, no_pass, kernel, violations;
	int exact;
};

static inline uint64_t spf_sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/*
 * Both modes count aborts, VMA-lock retries and mmap_lock retries: EXACT
 * from return values, FAST from the order of passes per task (a pass
 * under mmap_lock after a VMA-lock pass of the same fault is a VMA-lock
 * retry, whether the kernel set FAULT_FLAG_TRIED for it (major) or not).
 * FAST derives only: completed under the VMA lock = VMA passes - retries.
 */
static inline void spf_summarize(const struct spf_counters *c,
				 struct spf_summary *s)
{
	const __u64 *v = c->c;
	int i;

	memset(s, 0, sizeof(*s));
	s->user = v[SPF_C_USER_FAULTS];
	s->kernel = v[SPF_C_KERNEL_FAULTS];
	s->mmap = v[SPF_C_MMAP_FAULTS] + v[SPF_C_MMAP_TRIED];
	for (i = SPF_C_VIOL_DETACHED; i <= SPF_C_VIOL_MM; i++)
		s->violations += v[i];
	s->aborts = v[SPF_C_VMA_ABORTS];
	s->retries = v[SPF_C_VMA_RETRY];
	s->mmap_retries = v[SPF_C_MMAP_RETRY];
	if (c->mode == SPF_OBS_EXACT) {
		s->exact = 1;
		s->vma_done = v[SPF_C_VMA_DONE];
	} else {
		s->vma_done = spf_sub0(v[SPF_C_VMA_FAULTS], s->retries);
	}
	s->completed = s->vma_done + spf_sub0(s->mmap, s->mmap_retries);
	s->no_pass = spf_sub0(s->user, s->aborts + v[SPF_C_VMA_FAULTS]);
}

/*
 * EXACT mode with SPF_FEAT_FAST_SHADOW: what FAST would have reported for
 * the same faults (its classification, counted alongside).
 */
static inline void spf_summarize_fast_shadow(const struct spf_counters *c,
					     struct spf_summary *s)
{
	struct spf_counters f = *c;

	f.mode = SPF_OBS_FAST;
	f.c[SPF_C_USER_FAULTS] = c->c[SPF_C_FAST_USER];
	f.c[SPF_C_VMA_ABORTS] = c->c[SPF_C_FAST_ABORTS];
	f.c[SPF_C_VMA_RETRY] = c->c[SPF_C_FAST_RETRY];
	f.c[SPF_C_MMAP_RETRY] = c->c[SPF_C_FAST_MMAP_RETRY];
	spf_summarize(&f, s);
}

/*
 * EXACT: the faults the kernel's getrusage() counts (min_flt + maj_flt,
 * mm_account_fault()): passes that neither retried nor failed, user and
 * kernel (GUP, kernel-mode #PF) alike.
 */
static inline uint64_t spf_exact_accounted(const struct spf_counters *c,
					   const struct spf_summary *s)
{
	const __u64 *v = c->c;

	return spf_sub0(s->completed, v[SPF_C_USER_ERROR]) +
	       spf_sub0(v[SPF_C_KERNEL_FAULTS],
			v[SPF_C_KERNEL_RETRY] + v[SPF_C_KERNEL_ERROR]);
}

/*
 * The fields FAST and EXACT must agree on for the same workload; returns
 * the name of the first that differs, or NULL.
 */
static inline const char *spf_summary_diff(const struct spf_summary *a,
					   const struct spf_summary *b)
{
	static const struct {
		const char *name;
		size_t off;
	} f[] = {
		{ "user", offsetof(struct spf_summary, user) },
		{ "vma_done", offsetof(struct spf_summary, vma_done) },
		{ "aborts", offsetof(struct spf_summary, aborts) },
		{ "retries", offsetof(struct spf_summary, retries) },
		{ "mmap", offsetof(struct spf_summary, mmap) },
		{ "mmap_retries", offsetof(struct spf_summary, mmap_retries) },
		{ "completed", offsetof(struct spf_summary, completed) },
		{ "no_pass", offsetof(struct spf_summary, no_pass) },
		{ "kernel", offsetof(struct spf_summary, kernel) },
		{ "violations", offsetof(struct spf_summary, violations) },
		{ NULL, 0 },
	};
	size_t i;

	for (i = 0; f[i].name; i++)
		if (*(const uint64_t *)((const char *)a + f[i].off) !=
		    *(const uint64_t *)((const char *)b + f[i].off))
			return f[i].name;
	return NULL;
}

/*
 * Open the harness, take the observer in @mode with @flags (SPF_OBS_F_*).
 * Returns fd or -errno.
 */
static inline int spf_obs_open_flags(uint32_t mode, uint32_t flags)
{
	struct spf_obs_config cfg = { .mode = mode, .flags = flags };
	int fd, err;

	fd = open(SPF_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SPF_IOC_OBS_SET, &cfg)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Open the harness, take the observer in @mode. Returns fd or -errno. */
static inline int spf_obs_open(uint32_t mode)
{
	return spf_obs_open_flags(mode, 0);
}

/* Track the calling process; returns the slot or -errno. */
static inline int spf_obs_track_self(int fd)
{
	struct spf_track t = { .pid = 0 };

	if (ioctl(fd, SPF_IOC_TRACK, &t))
		return -errno;
	return (int)t.slot;
}

static inline int spf_obs_read(int fd, uint32_t scope, struct spf_counters *c)
{
	memset(c, 0, sizeof(*c));
	c->scope = scope;
	return ioctl(fd, SPF_IOC_READ, c) ? -errno : 0;
}

/* @now - @before, counter by counter (for per-run deltas). */
static inline void spf_delta(struct spf_counters *now,
			     const struct spf_counters *before)
{
	int i;

	for (i = 0; i < SPF_C_MAX; i++)
		now->c[i] -= before->c[i];
}

/**
 * struct spf_snap - one end of an interval in which the observer's counts
 *	are compared with the kernel's own (getrusage).
 * @c: the observer's counters (SPF_IOC_READ).
 * @ru: getrusage(RUSAGE_SELF).
 */
struct spf_snap {
	struct spf_counters c;
	struct rusage ru;
};

/*
 * Take both snapshots of one end of an interval into @s; returns 0 or
 * -errno. Call spf_snap() twice on the same @s at each end (start and
 * finish) and nothing else in between; compare the second calls'.
 *
 * SPF_IOC_READ sums the counters, then copies them out; getrusage()
 * samples min_flt/maj_flt, then copies the rusage out. If a buffer's page
 * is write-protected (every private page of the process is after a
 * fork(), until it is written again) the copy-out takes a kernel-mode COW
 * fault after the sample: at the finish, the kernel's count misses the
 * fault of getrusage's own copy-out while the observer's later sum holds
 * it (observer = getrusage + 1, seen in spf_race's fork_during_cow).
 * Hence @s is written from user space first, before either sample. The
 * second call covers the rest of what a first call can fault on between
 * the two samples (a lazily bound PLT slot, a stack page): the first call
 * takes those faults at the start before both samples, at the finish
 * inside both intervals; the second, at the same stack depth, none.
 */
static inline int spf_snap(int fd, uint32_t scope, struct spf_snap *s)
{
	int ret;

	memset(s, 0, sizeof(*s));	/* user-mode write faults, if any, here */
	ret = spf_obs_read(fd, scope, &s->c);
	if (!ret && getrusage(RUSAGE_SELF, &s->ru))
		ret = -errno;
	return ret;
}

/* getrusage() min_flt + maj_flt of a snapshot. */
static inline long spf_snap_faults(const struct spf_snap *s)
{
	return s->ru.ru_minflt + s->ru.ru_majflt;
}

#endif /* SPFOBS_H */
