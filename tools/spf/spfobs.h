/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spfobs.h - userspace client of the spf_harness observer, shared by
 * tools/spf and selftests/spf (header only).
 */
#ifndef SPFOBS_H
#define SPFOBS_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <kmemlab/spf.h>

/**
 * struct spf_summary - what a counter snapshot means.
 * @user: user faults (lock_vma_under_rcu() calls).
 * @vma_done: faults completed under the VMA lock.
 * @aborts: lock_vma_under_rcu() returned NULL (or the access was denied).
 * @retries: VMA-lock faults that returned VM_FAULT_RETRY.
 * @mmap: user faults handled under mmap_lock (first passes + retries).
 * @kernel: handle_mm_fault() calls without FAULT_FLAG_USER (GUP, kernel #PF).
 * @violations: invariant violations of all kinds.
 * @exact: counted by exit handlers (EXACT) rather than derived (FAST).
 */
struct spf_summary {
	uint64_t user, vma_done, aborts, retries, mmap, kernel, violations;
	int exact;
};

static inline uint64_t spf_sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/*
 * FAST mode: each user fault enters lock_vma_under_rcu() once; it then
 * either aborts to the mmap_lock path, or runs handle_mm_fault() under the
 * VMA lock and completes or retries under mmap_lock. So
 *   aborts  = user - vma_faults
 *   retries = mmap_first_pass - aborts
 * exact but for faults that end in SIGSEGV before handle_mm_fault().
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
	if (c->mode == SPF_OBS_EXACT) {
		s->exact = 1;
		s->aborts = v[SPF_C_VMA_ABORTS];
		s->retries = v[SPF_C_VMA_RETRY];
		s->vma_done = v[SPF_C_VMA_DONE];
	} else {
		s->aborts = spf_sub0(s->user, v[SPF_C_VMA_FAULTS]);
		s->retries = spf_sub0(v[SPF_C_MMAP_FAULTS], s->aborts);
		s->vma_done = spf_sub0(v[SPF_C_VMA_FAULTS], s->retries);
	}
}

/* Open the harness, take the observer in @mode. Returns fd or -errno. */
static inline int spf_obs_open(uint32_t mode)
{
	struct spf_obs_config cfg = { .mode = mode };
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

#endif /* SPFOBS_H */
