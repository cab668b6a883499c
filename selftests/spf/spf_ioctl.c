// SPDX-License-Identifier: GPL-2.0
/*
 * spf_ioctl - the spf_harness interface contract: bad input is refused
 * with the documented errno and changes nothing, one observer owner at a
 * time, tagged pages, generation bumps, SIGBUS past the end, ->map_pages
 * decides VMA-lock faults, the observer counts, unload is refused while
 * a mapping exists; the observer against the kernel's own counts
 * (getrusage) on a cold-cache file, FAST == EXACT, a broken FAST is
 * caught; userfaultfd and TCP zerocopy calls of lock_vma_under_rcu() are
 * not faults; TRACK needs ptrace-read permission.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "spf_test.h"

#define PG	4096UL

static int dev_open(uint64_t size, uint32_t flags, struct spf_dev_setup *s)
{
	int fd = open(SPF_DEV_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		ksft_exit_fail_msg("open %s: %s\n", SPF_DEV_PATH,
				   strerror(errno));
	memset(s, 0, sizeof(*s));
	s->size = size;
	s->flags = flags;
	if (ioctl(fd, SPF_IOC_DEV_SETUP, s))
		ksft_exit_fail_msg("DEV_SETUP: %s\n", strerror(errno));
	return fd;
}

static int err_of(int ret)
{
	return ret ? errno : 0;
}

#define EXPECT_ERR(ok, call, want) do {					\
	int __e = err_of(call);						\
	if (__e != (want)) {						\
		ksft_print_msg("%s: got %s, want %s\n", #call,		\
			       strerror(__e), strerror(want));		\
		ok = false;						\
	}								\
} while (0)

static void test_obs_bad_input(void)
{
	struct spf_obs_config cfg = { .mode = 7 };
	struct spf_latency *lat;
	struct spf_counters c;
	struct spf_track t;
	bool ok = true;
	int fd = open(SPF_DEV_PATH, O_RDWR);

	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_OBS_SET, &cfg), EINVAL);
	cfg = (struct spf_obs_config){ .mode = SPF_OBS_FAST, .flags = 1u << 7 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_OBS_SET, &cfg), EINVAL);
	/* a slow-fault threshold needs the latency flag; flags need a mode */
	cfg = (struct spf_obs_config){ .mode = SPF_OBS_FAST, .slow_ns = 5 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_OBS_SET, &cfg), EINVAL);
	cfg = (struct spf_obs_config){ .mode = SPF_OBS_OFF,
				       .flags = SPF_OBS_F_LATENCY };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_OBS_SET, &cfg), EINVAL);
	/* the broken-FAST switch needs the observer on */
	cfg = (struct spf_obs_config){ .mode = SPF_OBS_OFF,
				       .flags = SPF_OBS_F_BROKEN_FAST };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_OBS_SET, &cfg), EINVAL);
	cfg = (struct spf_obs_config){ .mode = SPF_OBS_FAST, .reserved = 1 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_OBS_SET, &cfg), EINVAL);
	memset(&c, 0, sizeof(c));
	c.scope = 99;
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_READ, &c), EINVAL);
	c.scope = 3;
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_READ, &c), ENOENT);
	c.scope = SPF_SCOPE_GLOBAL;
	c.reserved = 1;
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_READ, &c), EINVAL);
	t = (struct spf_track){ .pid = -5 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_TRACK, &t), EINVAL);
	t = (struct spf_track){ .pid = 0x3fffffff };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_TRACK, &t), ESRCH);
	t = (struct spf_track){ .pid = 0, .slot = 5 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_TRACK, &t), EINVAL);
	t = (struct spf_track){ .slot = 100 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_UNTRACK, &t), EINVAL);
	t = (struct spf_track){ .slot = 2 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_UNTRACK, &t), ENOENT);
	EXPECT_ERR(ok, ioctl(fd, _IO(SPF_IOC_MAGIC, 0x7f)), ENOTTY);
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_READ, (void *)16), EFAULT);
	lat = calloc(1, sizeof(*lat));
	if (!lat)
		ksft_exit_fail_msg("out of memory\n");
	lat->scope = 99;
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_LAT_READ, lat), EINVAL);
	lat->scope = 3;
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_LAT_READ, lat), ENOENT);
	lat->scope = SPF_SCOPE_GLOBAL;
	lat->reserved = 1;
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_LAT_READ, lat), EINVAL);
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_LAT_READ, (void *)16), EFAULT);
	free(lat);
	/* nothing changed: the observer is still off */
	c = (struct spf_counters){ .scope = SPF_SCOPE_GLOBAL };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_READ, &c), 0);
	if (c.mode != SPF_OBS_OFF) {
		ksft_print_msg("observer mode %u after bad input\n", c.mode);
		ok = false;
	}
	close(fd);
	ksft_test_result(ok, "obs_bad_input\n");
}

static void test_obs_second_owner(void)
{
	struct spf_obs_config cfg = { .mode = SPF_OBS_FAST };
	struct spf_counters c = { .scope = SPF_SCOPE_GLOBAL };
	struct spf_track t = { 0 };
	bool ok = true;
	int a = spf_obs_open(SPF_OBS_FAST);
	int b = open(SPF_DEV_PATH, O_RDWR);

	if (a < 0)
		ksft_exit_fail_msg("observer: %s\n", strerror(-a));
	EXPECT_ERR(ok, ioctl(b, SPF_IOC_OBS_SET, &cfg), EBUSY);
	EXPECT_ERR(ok, ioctl(b, SPF_IOC_TRACK, &t), EBUSY);
	EXPECT_ERR(ok, ioctl(b, SPF_IOC_RESET), EBUSY);
	EXPECT_ERR(ok, ioctl(b, SPF_IOC_READ, &c), 0);
	if (c.mode != SPF_OBS_FAST)
		ok = false;
	EXPECT_ERR(ok, ioctl(a, SPF_IOC_TRACK, &t), 0);
	EXPECT_ERR(ok, ioctl(a, SPF_IOC_TRACK, &t), EEXIST);
	close(a);	/* owner gone: observer off, slots freed */
	c = (struct spf_counters){ .scope = SPF_SCOPE_GLOBAL };
	EXPECT_ERR(ok, ioctl(b, SPF_IOC_READ, &c), 0);
	if (c.mode != SPF_OBS_OFF)
		ok = false;
	c.scope = t.slot;
	EXPECT_ERR(ok, ioctl(b, SPF_IOC_READ, &c), ENOENT);
	EXPECT_ERR(ok, ioctl(b, SPF_IOC_OBS_SET, &cfg), 0);
	cfg.mode = SPF_OBS_OFF;
	EXPECT_ERR(ok, ioctl(b, SPF_IOC_OBS_SET, &cfg), 0);
	/*
	 * OFF gives up ownership; a slot belongs to the file that tracked
	 * it even then, and closing that file (not the owner) frees it.
	 */
	a = open(SPF_DEV_PATH, O_RDWR);
	EXPECT_ERR(ok, ioctl(b, SPF_IOC_TRACK, &t), 0);
	EXPECT_ERR(ok, ioctl(a, SPF_IOC_TRACK, &t), EEXIST);
	cfg.mode = SPF_OBS_FAST;
	EXPECT_ERR(ok, ioctl(a, SPF_IOC_OBS_SET, &cfg), 0);
	close(b);	/* not the owner: the observer stays on */
	c = (struct spf_counters){ .scope = t.slot };
	EXPECT_ERR(ok, ioctl(a, SPF_IOC_READ, &c), ENOENT);
	c.scope = SPF_SCOPE_GLOBAL;
	EXPECT_ERR(ok, ioctl(a, SPF_IOC_READ, &c), 0);
	if (c.mode != SPF_OBS_FAST)
		ok = false;
	close(a);
	ksft_test_result(ok, "obs_one_owner\n");
}

static void test_dev_bad_input(void)
{
	struct spf_dev_setup s;
	uint32_t delay;
	uint64_t gen;
	bool ok = true;
	void *p;
	int fd = open(SPF_DEV_PATH, O_RDWR);

	p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED || errno != ENODEV) {
		ksft_print_msg("mmap before setup: %s\n", strerror(errno));
		ok = false;
	}
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_BUMP, &gen), ENODEV);
	delay = 1;
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_DELAY, &delay), ENODEV);
	s = (struct spf_dev_setup){ .size = 0 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), EINVAL);
	s = (struct spf_dev_setup){ .size = PG + 1 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), EINVAL);
	s = (struct spf_dev_setup){ .size = SPF_DEV_MAX_SIZE + PG };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), EINVAL);
	s = (struct spf_dev_setup){ .size = ~0ULL & ~(PG - 1) };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), EINVAL);
	s = (struct spf_dev_setup){ .size = PG, .flags = 0x80 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), EINVAL);
	s = (struct spf_dev_setup){ .size = PG,
				    .delay_us = SPF_DELAY_MAX_US + 1 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), EINVAL);
	s = (struct spf_dev_setup){ .size = PG, .reserved = 1 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), EINVAL);
	s = (struct spf_dev_setup){ .size = PG, .id = 1 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), EINVAL);
	s = (struct spf_dev_setup){ .size = 4 * PG };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), 0);
	s = (struct spf_dev_setup){ .size = 8 * PG };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_SETUP, &s), EBUSY);
	delay = SPF_DELAY_MAX_US + 1;
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_DEV_DELAY, &delay), EINVAL);
	p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED || errno != EACCES) {
		ksft_print_msg("writable shared mmap: %s\n", strerror(errno));
		ok = false;
	}
	p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ok = false;
	} else {
		if (!mprotect(p, PG, PROT_READ | PROT_WRITE)) {
			ksft_print_msg("mprotect RW of a shared mapping worked\n");
			ok = false;
		}
		munmap(p, PG);
	}
	close(fd);
	ksft_test_result(ok, "dev_bad_input\n");
}

static bool check_tags(const char *p, size_t npages, uint64_t id,
		       uint64_t gen, uint64_t first)
{
	size_t i, j;

	for (i = 0; i < npages; i++)
		for (j = 0; j < PG / sizeof(struct spf_tag); j += 37) {
			const struct spf_tag *t =
				(const void *)(p + i * PG + j * sizeof(*t));

			if (t->magic != SPF_TAG_MAGIC || t->id != id ||
			    t->gen != gen || t->index != first + i) {
				ksft_print_msg("page %zu: tag id %llu gen %llu index %llu, want %llu %llu %llu\n",
					       i, (unsigned long long)t->id,
					       (unsigned long long)t->gen,
					       (unsigned long long)t->index,
					       (unsigned long long)id,
					       (unsigned long long)gen,
					       (unsigned long long)(first + i));
				return false;
			}
		}
	return true;
}

static void test_dev_tags_bump(uint32_t flags, const char *name)
{
	struct spf_dev_setup s;
	struct spf_dev_stats st;
	bool broken = flags & SPF_DEV_BROKEN_GEN;
	uint64_t gen = 0, v;
	bool ok = true;
	char *p;
	int fd = dev_open(8 * PG, flags, &s);

	/* map pages 2..7 plus one page past the end */
	p = mmap(NULL, 7 * PG, PROT_READ, MAP_SHARED, fd, 2 * PG);
	if (p == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	ok &= check_tags(p, 6, s.id, 1, 2);
	if (spf_read_u64(p + 6 * PG, &v) != SIGBUS) {
		ksft_print_msg("no SIGBUS past the end\n");
		ok = false;
	}
	if (ioctl(fd, SPF_IOC_DEV_BUMP, &gen) || gen != 2)
		ok = false;
	ok &= check_tags(p, 6, s.id, broken ? 1 : 2, 2);
	ioctl(fd, SPF_IOC_DEV_STATS, &st);
	if (st.gen != 2 || st.sigbus != 1 || st.pages != 6 ||
	    st.rebuilt != (broken ? 0 : 6) ||
	    st.faults != st.faults_vma_lock + st.faults_mmap_lock) {
		ksft_print_msg("stats: gen %llu sigbus %llu pages %llu rebuilt %llu\n",
			       (unsigned long long)st.gen,
			       (unsigned long long)st.sigbus,
			       (unsigned long long)st.pages,
			       (unsigned long long)st.rebuilt);
		ok = false;
	}
	/* ->map_pages decides whether ->fault runs under the VMA lock */
	if (flags & SPF_DEV_MAP_PAGES) {
		if (st.faults_mmap_lock || !st.faults_vma_lock || !st.map_pages)
			ok = false;
	} else if (st.faults_vma_lock || !st.faults_mmap_lock) {
		ok = false;
	}
	if (!ok)
		ksft_print_msg("faults %llu vma %llu mmap %llu map_pages %llu\n",
			       (unsigned long long)st.faults,
			       (unsigned long long)st.faults_vma_lock,
			       (unsigned long long)st.faults_mmap_lock,
			       (unsigned long long)st.map_pages);
	if (st.violations)
		ok = false;
	munmap(p, 7 * PG);
	close(fd);
	ksft_test_result(ok, "%s\n", name);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_dev_delay(void)
{
	struct spf_dev_setup s;
	uint32_t delay = 50000;
	bool ok = true;
	double t;
	char *p;
	int fd = dev_open(2 * PG, SPF_DEV_MAP_PAGES, &s);

	ok &= !ioctl(fd, SPF_IOC_DEV_DELAY, &delay);
	p = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0);
	t = now_s();
	ok &= p != MAP_FAILED && check_tags(p, 1, s.id, 1, 0);
	/* functional lower bound: the fault waited for the delay */
	t = now_s() - t;
	if (t < 0.045) {
		ksft_print_msg("fault took %.3fs, delay is 0.050s\n", t);
		ok = false;
	}
	munmap(p, 2 * PG);
	close(fd);
	ksft_test_result(ok, "dev_delay\n");
}

static void test_observer_counts(uint32_t mode, const char *name)
{
	struct spf_counters before, after;
	struct spf_summary sm;
	char *p, *buf;
	bool ok = true;
	int fd, slot, nul, i;

	fd = spf_obs_open(mode);
	if (fd < 0)
		ksft_exit_fail_msg("observer: %s\n", strerror(-fd));
	slot = spf_obs_track_self(fd);
	p = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	buf = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(p, 64 * PG, MADV_NOHUGEPAGE);
	madvise(buf, 16 * PG, MADV_NOHUGEPAGE);
	if (slot < 0 || p == MAP_FAILED || buf == MAP_FAILED)
		ksft_exit_fail_msg("setup failed\n");
	p[0] = 1;	/* the first fault of a VMA may need mmap_lock */
	spf_obs_read(fd, (uint32_t)slot, &before);
	for (i = 1; i < 64; i++)
		p[i * PG] = 1;
	/* kernel-mode faults: read() copies into untouched pages */
	nul = open("/dev/zero", O_RDONLY);
	if (read(nul, buf, 16 * PG) != (ssize_t)(16 * PG))
		ok = false;
	close(nul);
	spf_obs_read(fd, (uint32_t)slot, &after);
	spf_delta(&after, &before);
	spf_summarize(&after, &sm);
	if (after.mode != mode || sm.user < 63 || sm.vma_done < 60 ||
	    sm.kernel < 1 || sm.violations ||
	    after.c[SPF_C_VMA_FAULTS] < 63 || after.missed) {
		ksft_print_msg("mode %u user %llu vma_done %llu kernel %llu viol %llu missed %llu\n",
			       after.mode, (unsigned long long)sm.user,
			       (unsigned long long)sm.vma_done,
			       (unsigned long long)sm.kernel,
			       (unsigned long long)sm.violations,
			       (unsigned long long)after.missed);
		ok = false;
	}
	if ((after.features & SPF_FEAT_KERNEL_TP) &&
	    after.c[SPF_C_KERNEL_PF] < 1) {
		ksft_print_msg("page_fault_kernel tracepoint counted nothing\n");
		ok = false;
	}
	munmap(p, 64 * PG);
	munmap(buf, 16 * PG);
	close(fd);
	ksft_test_result(ok, "%s\n", name);
}

/*
 * Cold-cache file faults on the scratch disk's block device (a real
 * virtio-blk read per page): filemap_fault() drops the VMA lock for the
 * read and returns VM_FAULT_RETRY|MAJOR; the mmap_lock pass runs with
 * FAULT_FLAG_TRIED and the kernel accounts a major fault. Each mode must
 * count every fault as a VMA-lock retry, equal to getrusage's ru_majflt
 * delta, and FAST must equal EXACT.
 */
#define COLD_PAGES	256
#define SCRATCH_DISK	"/dev/vda"

struct cold_run {
	struct spf_summary sm;
	long minflt, majflt;
	uint32_t features;
	uint64_t missed;
	bool cold;
};

static int cold_run(int disk, uint32_t mode, uint32_t flags, struct cold_run *r)
{
	struct spf_snap s0, s1;
	size_t len = COLD_PAGES * PG, i;
	unsigned char vec[COLD_PAGES];
	volatile const char *p;
	int fd, slot;
	char sum = 0;

	memset(r, 0, sizeof(*r));
	fd = spf_obs_open_flags(mode, flags);
	if (fd < 0)
		return fd;
	slot = spf_obs_track_self(fd);
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, disk, 0);
	if (slot < 0 || p == MAP_FAILED) {
		close(fd);
		return -EIO;
	}
	madvise((void *)p, len, MADV_RANDOM);	/* no readahead, no fault-around hits */
	posix_fadvise(disk, 0, len, POSIX_FADV_DONTNEED);
	r->cold = !mincore((void *)p, len, vec);
	for (i = 0; i < COLD_PAGES; i++)
		r->cold &= !(vec[i] & 1);
	/* twice at each end: see spf_snap() */
	spf_snap(fd, (uint32_t)slot, &s0);
	spf_snap(fd, (uint32_t)slot, &s0);
	for (i = 0; i < COLD_PAGES; i++)
		sum += p[i * PG];
	spf_snap(fd, (uint32_t)slot, &s1);
	spf_snap(fd, (uint32_t)slot, &s1);
	(void)sum;
	spf_delta(&s1.c, &s0.c);
	spf_summarize(&s1.c, &r->sm);
	r->minflt = s1.ru.ru_minflt - s0.ru.ru_minflt;
	r->majflt = s1.ru.ru_majflt - s0.ru.ru_majflt;
	r->features = s1.c.features;
	r->missed = s1.c.missed;
	munmap((void *)p, len);
	close(fd);
	return 0;
}

static void cold_print(const char *what, const struct cold_run *r)
{
	ksft_print_msg("%s: user %llu vma_done %llu aborts %llu retries %llu mmap %llu mmap_retries %llu completed %llu no_pass %llu; getrusage min %ld maj %ld; features 0x%x missed %llu cold %d\n",
		       what, (unsigned long long)r->sm.user,
		       (unsigned long long)r->sm.vma_done,
		       (unsigned long long)r->sm.aborts,
		       (unsigned long long)r->sm.retries,
		       (unsigned long long)r->sm.mmap,
		       (unsigned long long)r->sm.mmap_retries,
		       (unsigned long long)r->sm.completed,
		       (unsigned long long)r->sm.no_pass,
		       r->minflt, r->majflt, r->features,
		       (unsigned long long)r->missed, r->cold);
}

/* The kernel's accounting agrees with the observer's for this run. */
static bool cold_agrees(const struct cold_run *r)
{
	return r->cold && r->majflt >= COLD_PAGES &&
	       r->sm.retries == (uint64_t)r->majflt &&
	       r->sm.completed == (uint64_t)(r->minflt + r->majflt) &&
	       !r->missed && !r->sm.violations;
}

static void test_observer_cold_file(void)
{
	struct cold_run fast, exact, broken;
	const char *diff;
	bool ok = true;
	int disk;

	disk = open(SCRATCH_DISK, O_RDONLY | O_CLOEXEC);
	if (disk < 0) {
		ksft_test_result_skip("observer_cold_file: no scratch disk %s (%s): settings disks= gives one\n",
				      SCRATCH_DISK, strerror(errno));
		ksft_test_result_skip("observer_broken_fast_caught: no scratch disk\n");
		return;
	}
	if (cold_run(disk, SPF_OBS_FAST, 0, &fast) ||
	    cold_run(disk, SPF_OBS_EXACT, 0, &exact))
		ksft_exit_fail_msg("cold run setup: %s\n", strerror(errno));
	cold_print("fast", &fast);
	cold_print("exact", &exact);
	if (!cold_agrees(&exact)) {
		ksft_print_msg("EXACT disagrees with getrusage\n");
		ok = false;
	}
	if (!cold_agrees(&fast)) {
		ksft_print_msg("FAST disagrees with getrusage\n");
		ok = false;
	}
	diff = spf_summary_diff(&fast.sm, &exact.sm);
	if (diff) {
		ksft_print_msg("FAST != EXACT in %s\n", diff);
		ok = false;
	}
	ksft_test_result(ok, "observer_cold_file\n");

	/* the negative control: active, and caught by the same comparison */
	ok = true;
	errno = 0;
	if (cold_run(disk, SPF_OBS_FAST, SPF_OBS_F_BROKEN_FAST, &broken)) {
		ksft_print_msg("broken FAST cannot be set: %s\n",
			       strerror(errno));
		ok = false;
	} else if (cold_print("broken-fast", &broken),
		   !(broken.features & SPF_FEAT_BROKEN_FAST)) {
		ksft_print_msg("broken FAST not active (features 0x%x)\n",
			       broken.features);
		ok = false;
	} else if (cold_agrees(&broken) ||
		   !spf_summary_diff(&broken.sm, &exact.sm)) {
		ksft_print_msg("broken FAST not caught\n");
		ok = false;
	}
	close(disk);
	ksft_test_result(ok, "observer_broken_fast_caught\n");
}

/* Fault counters that calls which are not faults must leave alone. */
static bool no_fault_counted(const char *what, const struct spf_counters *d)
{
	static const int idx[] = { SPF_C_USER_FAULTS, SPF_C_VMA_FAULTS,
				   SPF_C_MMAP_FAULTS, SPF_C_MMAP_TRIED,
				   SPF_C_VMA_ABORTS, SPF_C_VMA_DONE,
				   SPF_C_VMA_RETRY, SPF_C_MMAP_RETRY };
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(idx); i++)
		if (d->c[idx[i]]) {
			ksft_print_msg("%s: counter %d moved by %llu\n", what,
				       idx[i], (unsigned long long)d->c[idx[i]]);
			ok = false;
		}
	return ok;
}

#define NF_ITERS	64

/* UFFDIO_COPY into a registered range: lock_vma_under_rcu(), no fault. */
static int uffd_copy_loop(char *dst, const char *src, int uffd)
{
	struct uffdio_copy cp;
	int i;

	for (i = 0; i < NF_ITERS; i++) {
		cp = (struct uffdio_copy){ .dst = (unsigned long)dst,
					   .src = (unsigned long)src,
					   .len = PG };
		if (ioctl(uffd, UFFDIO_COPY, &cp) || cp.copy != (long)PG)
			return -1;
		/* zap it again so that the next copy installs a page */
		if (madvise(dst, PG, MADV_DONTNEED))
			return -1;
	}
	return 0;
}

/* TCP_ZEROCOPY_RECEIVE on loopback: lock_vma_under_rcu(), no fault. */
static int tcp_zc_loop(int tx, int rx, char *zc_area, char *buf)
{
	struct tcp_zerocopy_receive zc;
	socklen_t zl;
	ssize_t n;
	size_t left;
	int i;

	for (i = 0; i < NF_ITERS; i++) {
		if (send(tx, buf, 4 * PG, 0) != (ssize_t)(4 * PG))
			return -1;
		left = 4 * PG;
		while (left) {
			memset(&zc, 0, sizeof(zc));
			zc.address = (unsigned long)zc_area;
			zc.length = left;
			zl = sizeof(zc);
			if (getsockopt(rx, IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE,
				       &zc, &zl))
				return -1;
			left -= zc.length;
			if (zc.recv_skip_hint) {
				n = recv(rx, buf, zc.recv_skip_hint, 0);
				if (n <= 0)
					return -1;
				left -= (size_t)n;
			}
		}
	}
	return 0;
}

static int tcp_pair(int *tx, int *rx)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || *tx < 0 || bind(l, (void *)&a, sizeof(a)) ||
	    listen(l, 1) || getsockname(l, (void *)&a, &al) ||
	    connect(*tx, (void *)&a, sizeof(a)))
		return -1;
	*rx = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	return *rx < 0 ? -1 : 0;
}

static void test_not_faults(uint32_t mode, const char *name)
{
	struct uffdio_register reg;
	struct uffdio_api api = { .api = UFFD_API };
	struct spf_counters before, after;
	char *dst, *src, *zc_area, *buf;
	int fd, slot, uffd, tx, rx, pass;
	bool ok = true;

	fd = spf_obs_open(mode);
	slot = fd < 0 ? -1 : spf_obs_track_self(fd);
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	dst = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	buf = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (slot < 0 || uffd < 0 || dst == MAP_FAILED || src == MAP_FAILED ||
	    buf == MAP_FAILED || ioctl(uffd, UFFDIO_API, &api))
		ksft_exit_fail_msg("%s setup: %s\n", name, strerror(errno));
	reg = (struct uffdio_register){
		.range = { .start = (unsigned long)dst, .len = PG },
		.mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		ksft_exit_fail_msg("UFFDIO_REGISTER: %s\n", strerror(errno));
	if (tcp_pair(&tx, &rx))
		ksft_exit_fail_msg("loopback TCP: %s\n", strerror(errno));
	zc_area = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, rx, 0);
	if (zc_area == MAP_FAILED)
		ksft_exit_fail_msg("mmap of a TCP socket: %s\n", strerror(errno));

	/* pass 0 warms up (code, stack, libc); pass 1 is counted */
	for (pass = 0; pass < 2 && ok; pass++) {
		spf_obs_read(fd, (uint32_t)slot, &before);
		if (uffd_copy_loop(dst, src, uffd)) {
			ksft_print_msg("UFFDIO_COPY: %s\n", strerror(errno));
			ok = false;
		}
		spf_obs_read(fd, (uint32_t)slot, &after);
		spf_delta(&after, &before);
		if (pass && !no_fault_counted("UFFDIO_COPY loop", &after))
			ok = false;
		spf_obs_read(fd, (uint32_t)slot, &before);
		if (tcp_zc_loop(tx, rx, zc_area, buf)) {
			ksft_print_msg("TCP_ZEROCOPY_RECEIVE: %s\n",
				       strerror(errno));
			ok = false;
		}
		spf_obs_read(fd, (uint32_t)slot, &after);
		spf_delta(&after, &before);
		if (pass && !no_fault_counted("TCP_ZEROCOPY_RECEIVE loop", &after))
			ok = false;
	}
	munmap(zc_area, 4 * PG);
	close(tx);
	close(rx);
	close(uffd);
	munmap(dst, PG);
	munmap(src, 4 * PG);
	munmap(buf, 4 * PG);
	close(fd);
	ksft_test_result(ok, "%s\n", name);
}

/*
 * TRACK of another process needs ptrace-read permission, as /proc does: a
 * child that gave up root (and CAP_SYS_PTRACE) may track itself but not a
 * root process, through the same open file.
 */
static void test_track_permission(void)
{
	struct spf_track t;
	pid_t victim, child;
	int fd, st, res;

	fd = spf_obs_open(SPF_OBS_FAST);
	if (fd < 0)
		ksft_exit_fail_msg("observer: %s\n", strerror(-fd));
	victim = fork();
	if (!victim) {
		pause();
		_exit(0);
	}
	child = fork();
	if (!child) {
		if (setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(10);
		t = (struct spf_track){ .pid = victim };
		res = ioctl(fd, SPF_IOC_TRACK, &t) ? errno : 0;
		if (res != EPERM) {
			printf("# TRACK of a root process as nobody: %s, want EPERM\n",
			       strerror(res));
			_exit(1);
		}
		t = (struct spf_track){ .pid = getpid() };
		if (ioctl(fd, SPF_IOC_TRACK, &t)) {
			printf("# TRACK of itself as nobody: %s\n",
			       strerror(errno));
			_exit(2);
		}
		_exit(0);
	}
	waitpid(child, &st, 0);
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	/* root still may track the (now gone or any) root process: itself */
	t = (struct spf_track){ .pid = getpid() };
	res = ioctl(fd, SPF_IOC_TRACK, &t) ? errno : 0;
	close(fd);
	ksft_test_result(WIFEXITED(st) && !WEXITSTATUS(st) && !res,
			 "track_needs_ptrace_read (child status 0x%x, root self-track %s)\n",
			 st, strerror(res));
}

/*
 * /proc/vmstat read into a buffer touched beforehand: reading it causes no
 * page fault of its own between the snapshots.
 */
static char vmstat_buf[64 * 1024];

static bool vmstat_read(const char *const *names, long *vals, int n)
{
	int fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC);
	ssize_t len = fd < 0 ? -1 : read(fd, vmstat_buf, sizeof(vmstat_buf) - 1);
	char *p;
	int i;

	if (fd >= 0)
		close(fd);
	if (len <= 0)
		return false;
	vmstat_buf[len] = 0;
	for (i = 0; i < n; i++) {
		p = strstr(vmstat_buf, names[i]);
		if (!p || p[strlen(names[i])] != ' ')
			return false;
		vals[i] = atol(p + strlen(names[i]) + 1);
	}
	return true;
}

/*
 * With CONFIG_PER_VMA_LOCK_STATS (the lab's debug kernel) the kernel
 * counts VMA-lock outcomes in /proc/vmstat: success (completed under the
 * VMA lock, including access errors found under it), abort (no VMA lock
 * taken), retry; miss (a detached VMA found and looked up again inside
 * lock_vma_under_rcu()) is not observable by the observer and is only
 * reported. EXACT's global counters must equal the deltas, on anonymous
 * faults (successes), reads of a hole (aborts: SIGSEGV) and cold-cache
 * file faults (retries).
 */
static void test_vmstat_vma_lock(void)
{
	static const char *const names[] = {
		"vma_lock_success", "vma_lock_abort", "vma_lock_retry",
		"vma_lock_miss" };
	long v0[4], v1[4];
	struct spf_counters before, after;
	struct spf_summary sm;
	size_t len = 32 * PG, i;
	uint64_t val;
	char *anon, *hole, *file = MAP_FAILED;
	int fd, disk, nseg = 0;
	char sum = 0;
	bool ok = true;

	memset(vmstat_buf, 1, sizeof(vmstat_buf));
	if (!vmstat_read(names, v0, 4)) {
		ksft_test_result_skip("observer_vs_vmstat_vma_lock: no vma_lock_* lines in /proc/vmstat (CONFIG_PER_VMA_LOCK_STATS off: the stock kernel)\n");
		return;
	}
	fd = spf_obs_open(SPF_OBS_EXACT);
	if (fd < 0)
		ksft_exit_fail_msg("observer: %s\n", strerror(-fd));
	anon = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	hole = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED || hole == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	madvise(anon, len, MADV_NOHUGEPAGE);
	munmap(hole, PG);
	anon[0] = 1;	/* the anon_vma: its first fault may retry */
	disk = open(SCRATCH_DISK, O_RDONLY | O_CLOEXEC);
	if (disk >= 0) {
		file = mmap(NULL, len, PROT_READ, MAP_SHARED, disk, 0);
		if (file != MAP_FAILED) {
			madvise(file, len, MADV_RANDOM);
			posix_fadvise(disk, 0, len, POSIX_FADV_DONTNEED);
		}
	}
	spf_obs_read(fd, SPF_SCOPE_GLOBAL, &before);
	vmstat_read(names, v0, 4);
	for (i = 1; i < len / PG; i++)
		anon[i * PG] = 1;
	for (i = 0; i < 16; i++)
		nseg += spf_read_u64(hole, &val) == SIGSEGV;
	if (file != MAP_FAILED)
		for (i = 0; i < len / PG; i++)
			sum += ((volatile const char *)file)[i * PG];
	vmstat_read(names, v1, 4);
	spf_obs_read(fd, SPF_SCOPE_GLOBAL, &after);
	(void)sum;
	spf_delta(&after, &before);
	spf_summarize(&after, &sm);
	for (i = 0; i < 4; i++)
		v1[i] -= v0[i];
	ksft_print_msg("vmstat: success %ld abort %ld retry %ld miss %ld; observer: success %llu (done %llu + no_pass %llu) abort %llu retry %llu; %d SIGSEGV reads\n",
		       v1[0], v1[1], v1[2], v1[3],
		       (unsigned long long)(sm.vma_done + sm.no_pass),
		       (unsigned long long)sm.vma_done,
		       (unsigned long long)sm.no_pass,
		       (unsigned long long)sm.aborts,
		       (unsigned long long)sm.retries, nseg);
	if ((uint64_t)v1[0] != sm.vma_done + sm.no_pass ||
	    (uint64_t)v1[1] != sm.aborts || (uint64_t)v1[2] != sm.retries)
		ok = false;
	/* the workload must have produced every outcome */
	if (v1[0] < 31 || v1[1] < 16 || (file != MAP_FAILED && v1[2] < 32))
		ok = false;
	if (file != MAP_FAILED)
		munmap(file, len);
	if (disk >= 0)
		close(disk);
	munmap(anon, len);
	close(fd);
	ksft_test_result(ok, "observer_vs_vmstat_vma_lock\n");
}

/*
 * /proc/vmstat pgfault counts every handle_mm_fault() pass that did not
 * retry (failed ones too), all processes: with nothing else faulting in
 * the guest, the observer's global completed user passes + kernel passes
 * - kernel retries (EXACT) must equal its delta, on anonymous faults,
 * SIGSEGV reads of a hole (no pass: not counted by either) and kernel-mode
 * faults (read() into untouched pages).
 */
static void test_vmstat_pgfault(void)
{
	static const char *const names[] = { "pgfault" };
	struct spf_counters before, after;
	struct spf_summary sm;
	size_t len = 32 * PG, i;
	long v0, v1;
	uint64_t val, obs;
	char *anon, *hole, *buf;
	int fd, nul;
	bool ok = true;

	memset(vmstat_buf, 1, sizeof(vmstat_buf));
	fd = spf_obs_open(SPF_OBS_EXACT);
	if (fd < 0)
		ksft_exit_fail_msg("observer: %s\n", strerror(-fd));
	anon = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	hole = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	nul = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (anon == MAP_FAILED || buf == MAP_FAILED || hole == MAP_FAILED ||
	    nul < 0)
		ksft_exit_fail_msg("setup: %s\n", strerror(errno));
	madvise(anon, len, MADV_NOHUGEPAGE);
	madvise(buf, len, MADV_NOHUGEPAGE);
	munmap(hole, PG);
	anon[0] = 1;
	buf[0] = 1;
	/* a dry round: no snapshot's own buffers fault between them */
	spf_obs_read(fd, SPF_SCOPE_GLOBAL, &after);
	vmstat_read(names, &v1, 1);
	spf_obs_read(fd, SPF_SCOPE_GLOBAL, &before);
	if (!vmstat_read(names, &v0, 1))
		ksft_exit_fail_msg("no pgfault in /proc/vmstat\n");
	for (i = 1; i < len / PG; i++)
		anon[i * PG] = 1;
	for (i = 0; i < 8; i++)
		spf_read_u64(hole, &val);
	if (read(nul, buf + PG, len - PG) != (ssize_t)(len - PG))
		ok = false;
	vmstat_read(names, &v1, 1);
	spf_obs_read(fd, SPF_SCOPE_GLOBAL, &after);
	spf_delta(&after, &before);
	spf_summarize(&after, &sm);
	obs = sm.completed + spf_sub0(after.c[SPF_C_KERNEL_FAULTS],
				      after.c[SPF_C_KERNEL_RETRY]);
	ksft_print_msg("pgfault delta %ld; observer: completed user %llu, kernel passes %llu (retried %llu)\n",
		       v1 - v0, (unsigned long long)sm.completed,
		       (unsigned long long)after.c[SPF_C_KERNEL_FAULTS],
		       (unsigned long long)after.c[SPF_C_KERNEL_RETRY]);
	if ((uint64_t)(v1 - v0) != obs || sm.completed < 31 ||
	    after.c[SPF_C_KERNEL_FAULTS] < 31)
		ok = false;
	close(nul);
	munmap(anon, len);
	munmap(buf, len);
	close(fd);
	ksft_test_result(ok, "observer_vs_vmstat_pgfault\n");
}

/* fork() a child that exits at once: every private page is now COW. */
static void fork_and_reap(void)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		ksft_exit_fail_msg("fork: %s\n", strerror(errno));
	if (!pid)
		_exit(0);
	waitpid(pid, &st, 0);
}

/* EXACT's accounted faults minus getrusage's, from @a to @b. */
static long snap_excess(const struct spf_snap *a, struct spf_snap *b)
{
	struct spf_summary sm;

	spf_delta(&b->c, &a->c);
	spf_summarize(&b->c, &sm);
	return (long)spf_exact_accounted(&b->c, &sm) -
	       (spf_snap_faults(b) - spf_snap_faults(a));
}

/*
 * The cause of spf_race fork_during_cow's "observer = getrusage + 1":
 * getrusage() copies the rusage out after its sample; after a fork() the
 * buffer's page is write-protected, so the copy-out takes a kernel-mode
 * COW fault that the kernel accounts after the sample while the
 * observer's next snapshot holds it. Deterministic: the old way of ending
 * an interval (getrusage into a buffer not written since the fork, then
 * SPF_IOC_READ) must give exactly +1 every time, and spf_snap() (buffers
 * written first, taken twice) exactly 0.
 */
#define SNAP_REPS	3

static void test_snapshot_after_fork(void)
{
	struct spf_snap *s0, *s1;
	struct rusage *ru_old;
	long old[SNAP_REPS], fixed[SNAP_REPS];
	uint64_t kern[SNAP_REPS];
	bool ok = true;
	char *region;
	int fd, slot, i;

	fd = spf_obs_open(SPF_OBS_EXACT);
	if (fd < 0)
		ksft_exit_fail_msg("observer: %s\n", strerror(-fd));
	slot = spf_obs_track_self(fd);
	/* each buffer on a page of its own */
	region = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (slot < 0 || region == MAP_FAILED)
		ksft_exit_fail_msg("setup failed\n");
	madvise(region, 8 * PG, MADV_NOHUGEPAGE);
	memset(region, 1, 8 * PG);
	s0 = (struct spf_snap *)region;
	s1 = (struct spf_snap *)(region + 2 * PG);
	ru_old = (struct rusage *)(region + 4 * PG);
	for (i = 0; i < SNAP_REPS; i++) {
		spf_snap(fd, (uint32_t)slot, s0);
		spf_snap(fd, (uint32_t)slot, s0);
		fork_and_reap();
		/* the old finish: only getrusage's buffer left untouched */
		memset(&s1->c, 0, sizeof(s1->c));
		getrusage(RUSAGE_SELF, ru_old);
		spf_obs_read(fd, (uint32_t)slot, &s1->c);
		s1->ru = *ru_old;
		kern[i] = s1->c.c[SPF_C_KERNEL_FAULTS] - s0->c.c[SPF_C_KERNEL_FAULTS];
		old[i] = snap_excess(s0, s1);

		spf_snap(fd, (uint32_t)slot, s0);
		spf_snap(fd, (uint32_t)slot, s0);
		fork_and_reap();
		spf_snap(fd, (uint32_t)slot, s1);
		spf_snap(fd, (uint32_t)slot, s1);
		fixed[i] = snap_excess(s0, s1);
		ksft_print_msg("rep %d: getrusage copy-out after fork: observer - getrusage = %ld (kernel-mode faults %llu); with spf_snap(): %ld\n",
			       i, old[i], (unsigned long long)kern[i], fixed[i]);
		if (old[i] != 1 || !kern[i] || fixed[i])
			ok = false;
	}
	if (s1->c.missed)
		ok = false;
	munmap(region, 8 * PG);
	close(fd);
	ksft_test_result(ok, "oracle_getrusage_copyout_after_fork\n");
}

/* ---- fault latency by outcome ------------------------------------------ */

static const char *const lat_names[SPF_LAT_NR] = {
	"vma", "vma_major", "fallback", "fallback_major", "retry",
	"retry_major", "error",
};

#define TRACEFS		"/sys/kernel/tracing"
#define SLOW_EV		TRACEFS "/events/spf_harness/spf_slow_fault"

static bool tr_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, val, strlen(val)) == (ssize_t)strlen(val);

	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * Count this process's spf_slow_fault events in the trace buffer; check
 * every one's fields: a known outcome, 0 < ns < 60 s. @addr_lo..@addr_hi:
 * the anonymous region, whose faults must be among them (*@in_region);
 * *@fb: the events at @fb_addr (if not 0) with outcome "fallback".
 */
static long slow_events(uintptr_t addr_lo, uintptr_t addr_hi, long *in_region,
			bool *fields_ok, uintptr_t fb_addr, long *fb)
{
	char line[512], out[32];
	unsigned long long ns;
	unsigned long addr;
	const char *f;
	long n = 0;
	int i;
	FILE *t = fopen(TRACEFS "/trace", "r");

	*in_region = 0;
	*fields_ok = true;
	*fb = 0;
	if (!t)
		return -1;
	while (fgets(line, sizeof(line), t)) {
		f = strstr(line, "spf_slow_fault: ");
		if (!f)
			continue;
		n++;
		if (sscanf(f, "spf_slow_fault: address=0x%lx ns=%llu outcome=%31s",
			   &addr, &ns, out) != 3) {
			*fields_ok = false;
			continue;
		}
		for (i = 0; i < SPF_LAT_NR; i++)
			if (!strcmp(out, lat_names[i]))
				break;
		if (i == SPF_LAT_NR || !ns || ns > 60000000000ULL)
			*fields_ok = false;
		if (addr >= addr_lo && addr < addr_hi)
			(*in_region)++;
		if (fb_addr && addr == fb_addr && i == SPF_LAT_FALLBACK)
			(*fb)++;
	}
	fclose(t);
	return n;
}

struct lat_snap {
	struct spf_snap s;
	struct spf_latency lat;
};

/* As spf_snap(), with the latency histograms; take it twice. */
static void lat_snap(int fd, int slot, struct lat_snap *ls)
{
	memset(&ls->lat, 0, sizeof(ls->lat));
	spf_snap(fd, (uint32_t)slot, &ls->s);
	ls->lat.scope = (uint32_t)slot;
	if (ioctl(fd, SPF_IOC_LAT_READ, &ls->lat))
		ksft_exit_fail_msg("LAT_READ: %s\n", strerror(errno));
}

/*
 * A fault that falls back (SPF_LAT_FALLBACK: lock_vma_under_rcu() finds
 * no VMA it can lock, the fault is served under mmap_lock, no VMA-lock
 * pass before it), made on demand with the device's delay, not by luck:
 * a reader sits in the delayed ->fault of page 0 under the VMA lock
 * (->map_pages); mprotect(PROT_NONE) of page 0 by another thread then
 * waits in vma_start_write() for it, seen as that thread in D state in
 * mprotect(); a fault on page 8 meanwhile finds a writer queued on the
 * VMA lock, falls back and is served after the mprotect().
 */
#define FB_DELAY_US	100000u
#define FB_PAGE		8

struct fb_ctx {
	volatile const char *map;
	atomic_int tid;
	atomic_int done;
	int err;
};

/*
 * Its load is redone after the fault, maybe after the mprotect(): a
 * SIGSEGV then, caught.
 */
static void *fb_reader(void *arg)
{
	struct fb_ctx *c = arg;
	uint64_t v;

	spf_read_u64((const void *)c->map, &v);
	return NULL;
}

static void *fb_mprotect(void *arg)
{
	struct fb_ctx *c = arg;

	atomic_store(&c->tid, (int)syscall(SYS_gettid));
	if (mprotect((void *)c->map, PG, PROT_NONE))
		c->err = errno;
	atomic_store(&c->done, 1);
	return NULL;
}

/* Is thread @tid of this process asleep (D) in syscall @nr? */
static bool task_blocked_in(int tid, long nr)
{
	char path[64], buf[512], *p;
	bool in = false;
	long cur;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "r");
	if (f) {
		in = fscanf(f, "%ld", &cur) == 1 && cur == nr;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return in && p && p[1] == ' ' && p[2] == 'D';
}

/*
 * One attempt at the fallback on a fresh mapping of @fd. Return 1 if the
 * fault on page FB_PAGE fell back (the device saw its ->fault under
 * mmap_lock and none under the VMA lock: with ->map_pages nothing else
 * does that), 0 if a step came too late (the reader's delay ran out before
 * the mprotect() waited, or before the fault), -1 on a hard failure;
 * *@addr: the address of that fault.
 */
static int fb_attempt(const char *name, int fd, uintptr_t *addr)
{
	struct spf_dev_stats st, st0;
	struct fb_ctx c = { 0 };
	pthread_t rd, mp;
	bool waiting = false;
	double t0;
	int ret = -1;

	c.map = mmap(NULL, 16 * PG, PROT_READ, MAP_SHARED, fd, 0);
	if (c.map == MAP_FAILED)
		ksft_exit_fail_msg("%s: fallback mmap: %s\n", name,
				   strerror(errno));
	if (ioctl(fd, SPF_IOC_DEV_STATS, &st0))
		ksft_exit_fail_msg("DEV_STATS: %s\n", strerror(errno));
	if (pthread_create(&rd, NULL, fb_reader, &c))
		ksft_exit_fail_msg("%s: pthread_create\n", name);
	/* the reader is in ->fault under the VMA lock (10 s deadline) */
	for (t0 = now_s(); now_s() - t0 < 10; usleep(1000)) {
		if (ioctl(fd, SPF_IOC_DEV_STATS, &st))
			ksft_exit_fail_msg("DEV_STATS: %s\n", strerror(errno));
		if (st.faults > st0.faults)
			break;
	}
	if (st.faults_vma_lock == st0.faults_vma_lock) {
		ksft_print_msg("%s: fallback: the reader's fault not under the VMA lock (%llu faults)\n",
			       name, (unsigned long long)(st.faults - st0.faults));
		goto join_reader;
	}
	if (pthread_create(&mp, NULL, fb_mprotect, &c))
		ksft_exit_fail_msg("%s: pthread_create\n", name);
	/* the mprotect() waits for the VMA's write lock */
	for (t0 = now_s(); now_s() - t0 < 10; usleep(200)) {
		int tid = atomic_load(&c.tid);

		if (tid && task_blocked_in(tid, SYS_mprotect)) {
			waiting = true;
			break;
		}
		if (atomic_load(&c.done))
			break;	/* too late: the reader's delay ran out */
	}
	if (ioctl(fd, SPF_IOC_DEV_STATS, &st0))
		ksft_exit_fail_msg("DEV_STATS: %s\n", strerror(errno));
	if (waiting) {
		*addr = (uintptr_t)(c.map + FB_PAGE * PG);
		(void)c.map[FB_PAGE * PG];	/* falls back */
	}
	pthread_join(mp, NULL);
	if (ioctl(fd, SPF_IOC_DEV_STATS, &st))
		ksft_exit_fail_msg("DEV_STATS: %s\n", strerror(errno));
	if (c.err)
		ksft_print_msg("%s: fallback: mprotect: %s\n", name,
			       strerror(c.err));
	else if (waiting)
		ret = st.faults_mmap_lock - st0.faults_mmap_lock == 1 &&
		      st.faults_vma_lock == st0.faults_vma_lock;
	else
		ret = 0;
join_reader:
	pthread_join(rd, NULL);
	munmap((void *)c.map, 16 * PG);
	return ret;
}

/*
 * Make one fallback; return the address of the fault that fell back, or
 * 0 (with a message). Each attempt proves its fault fell back; one that
 * lost the race against the reader's delay (a loaded host) is repeated,
 * up to 10 times.
 */
static uintptr_t lat_fallback(const char *name)
{
	struct spf_dev_setup s;
	uintptr_t addr = 0;
	uint32_t delay = FB_DELAY_US;
	int fd = dev_open(16 * PG, SPF_DEV_MAP_PAGES, &s);
	int i, r = 0;

	if (ioctl(fd, SPF_IOC_DEV_DELAY, &delay))
		ksft_exit_fail_msg("%s: DEV_DELAY: %s\n", name,
				   strerror(errno));
	for (i = 0; i < 10 && !r; i++)
		r = fb_attempt(name, fd, &addr);
	close(fd);
	if (r != 1) {
		ksft_print_msg("%s: fallback: no fault fell back in %d attempts\n",
			       name, i);
		return 0;
	}
	if (i > 1)
		ksft_print_msg("%s: fallback: made in attempt %d\n", name, i);
	return addr;
}

/* The faults of every outcome the lab can make on demand. */
static void lat_workload(char *anon, size_t anon_pages, int disk)
{
	struct spf_dev_setup s;
	volatile const char *p, *dev;
	size_t i;
	uint64_t v;
	char sum = 0;
	int dfd = dev_open(16 * PG, 0, &s);	/* no ->map_pages: retries */

	for (i = 0; i < anon_pages; i++)
		anon[i * PG] = 1;			/* vma */
	dev = mmap(NULL, 17 * PG, PROT_READ, MAP_SHARED, dfd, 0);
	if (dev == MAP_FAILED)
		ksft_exit_fail_msg("mmap device: %s\n", strerror(errno));
	for (i = 0; i < 16; i++)
		sum += dev[i * PG];			/* retry */
	spf_read_u64((const void *)(dev + 16 * PG), &v);	/* error: SIGBUS */
	munmap((void *)dev, 17 * PG);
	close(dfd);
	if (disk >= 0) {				/* retry_major: cold */
		p = mmap(NULL, 16 * PG, PROT_READ, MAP_SHARED, disk, 0);
		if (p != MAP_FAILED) {
			madvise((void *)p, 16 * PG, MADV_RANDOM);
			posix_fadvise(disk, 0, 16 * PG, POSIX_FADV_DONTNEED);
			for (i = 0; i < 16; i++)
				sum += p[i * PG];
			munmap((void *)p, 16 * PG);
		}
	}
	(void)sum;
}

/*
 * SPF_OBS_F_LATENCY in @mode: the histograms count every completed user
 * pass once (sum over outcomes == completed, 0 lost), each outcome the
 * workload makes shows up, max_ns lies in the highest non-empty bucket;
 * with slow_ns = 0 the trace event fires once per fault with sane fields
 * (and for the anonymous region's faults); with slow_ns = 60 s it fires
 * for none while the histograms still count.
 */
static void test_latency(uint32_t mode, const char *name)
{
	struct spf_obs_config cfg = { .mode = mode, .flags = SPF_OBS_F_LATENCY };
	struct lat_snap *a, *b;
	struct spf_summary sm;
	uint64_t total = 0, n;
	long ev, in_region, ev_quiet, fb_ev;
	bool ok = true, fields_ok, have_tr;
	uintptr_t fb_addr;
	char pid[32], *anon;
	int fd, slot, disk, o, k, top;
	const size_t anon_pages = 64;

	a = calloc(2, sizeof(*a));
	anon = mmap(NULL, anon_pages * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = open(SPF_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (!a || anon == MAP_FAILED || fd < 0 ||
	    ioctl(fd, SPF_IOC_OBS_SET, &cfg))
		ksft_exit_fail_msg("%s: setup: %s\n", name, strerror(errno));
	b = a + 1;
	madvise(anon, anon_pages * PG, MADV_NOHUGEPAGE);
	slot = spf_obs_track_self(fd);
	disk = open(SCRATCH_DISK, O_RDONLY | O_CLOEXEC);
	snprintf(pid, sizeof(pid), "common_pid == %d", getpid());
	/* the buffers hot before the event is on: no fault between them */
	lat_snap(fd, slot, a);
	lat_snap(fd, slot, a);
	have_tr = tr_write(SLOW_EV "/filter", pid) &&
		  tr_write(TRACEFS "/trace", "") &&
		  tr_write(SLOW_EV "/enable", "1");
	if (!have_tr)
		ksft_print_msg("%s: no tracefs event %s: %s\n", name, SLOW_EV,
			       strerror(errno));
	lat_snap(fd, slot, a);
	lat_workload(anon, anon_pages, disk);
	lat_snap(fd, slot, b);
	lat_snap(fd, slot, b);
	tr_write(SLOW_EV "/enable", "0");
	spf_delta(&b->s.c, &a->s.c);
	spf_summarize(&b->s.c, &sm);
	if (!(b->s.c.features & SPF_FEAT_LATENCY)) {
		ksft_print_msg("%s: SPF_FEAT_LATENCY not reported\n", name);
		ok = false;
	}
	for (o = 0; o < SPF_LAT_NR; o++) {
		n = 0;
		top = -1;
		for (k = 0; k < SPF_LAT_BUCKETS; k++) {
			b->lat.count[o][k] -= a->lat.count[o][k];
			n += b->lat.count[o][k];
			if (b->lat.count[o][k])
				top = k;
		}
		total += n;
		ksft_print_msg("%s: %-14s %6llu faults, max %llu ns\n", name,
			       lat_names[o], (unsigned long long)n,
			       (unsigned long long)b->lat.max_ns[o]);
		/* a cumulative max: the interval's top bucket cannot exceed it */
		if (top >= 0 && b->lat.max_ns[o] < (top ? 1ULL << top : 0)) {
			ksft_print_msg("%s: %s max %llu ns below its top bucket %d\n",
				       name, lat_names[o],
				       (unsigned long long)b->lat.max_ns[o], top);
			ok = false;
		}
	}
	b->lat.lost -= a->lat.lost;
	ksft_print_msg("%s: histograms %llu + lost %llu, completed user passes %llu (user faults %llu)\n",
		       name, (unsigned long long)total,
		       (unsigned long long)b->lat.lost,
		       (unsigned long long)sm.completed,
		       (unsigned long long)sm.user);
	if (total + b->lat.lost != sm.completed || b->lat.lost) {
		ksft_print_msg("%s: histogram counts != completed faults\n", name);
		ok = false;
	}
	if (total < anon_pages + 16 + 1)
		ok = false;
	for (o = 0, n = 0; o < SPF_LAT_BUCKETS; o++)
		n += b->lat.count[SPF_LAT_ERROR][o];
	if (!n) {
		ksft_print_msg("%s: the SIGBUS fault not in 'error'\n", name);
		ok = false;
	}
	if (mode == SPF_OBS_EXACT && n != b->s.c.c[SPF_C_USER_ERROR]) {
		ksft_print_msg("%s: error %llu != USER_ERROR %llu\n", name,
			       (unsigned long long)n,
			       (unsigned long long)b->s.c.c[SPF_C_USER_ERROR]);
		ok = false;
	}
	/* the device without ->map_pages: every fault retries, minor */
	for (o = 0, n = 0; o < SPF_LAT_BUCKETS; o++)
		n += b->lat.count[SPF_LAT_RETRY][o];
	if (n < 16) {
		ksft_print_msg("%s: %llu device faults in retry, want 16\n",
			       name, (unsigned long long)n);
		ok = false;
	}
	if (disk >= 0) {
		for (o = 0, n = 0; o < SPF_LAT_BUCKETS; o++)
			n += b->lat.count[SPF_LAT_RETRY_MAJOR][o];
		if (n < 16) {
			ksft_print_msg("%s: %llu cold-file faults in retry_major, want 16\n",
				       name, (unsigned long long)n);
			ok = false;
		}
	}
	if (have_tr) {
		ev = slow_events((uintptr_t)anon,
				 (uintptr_t)anon + anon_pages * PG,
				 &in_region, &fields_ok, 0, &fb_ev);
		ksft_print_msg("%s: slow_ns 0: %ld spf_slow_fault events (%ld in the anonymous region), fields %s\n",
			       name, ev, in_region, fields_ok ? "ok" : "BAD");
		if (ev != (long)total || in_region < (long)anon_pages ||
		    !fields_ok)
			ok = false;
		/*
		 * A fault made to fall back (this thread's; its helpers'
		 * faults are not in the pid-filtered trace): counted in
		 * 'fallback', and its own event says "fallback".
		 */
		tr_write(TRACEFS "/trace", "");
		tr_write(SLOW_EV "/enable", "1");
		lat_snap(fd, slot, a);
		lat_snap(fd, slot, a);
		fb_addr = lat_fallback(name);
		lat_snap(fd, slot, b);
		lat_snap(fd, slot, b);
		tr_write(SLOW_EV "/enable", "0");
		slow_events(0, 0, &in_region, &fields_ok, fb_addr, &fb_ev);
		for (o = 0, n = 0; o < SPF_LAT_BUCKETS; o++)
			n += b->lat.count[SPF_LAT_FALLBACK][o] -
			     a->lat.count[SPF_LAT_FALLBACK][o];
		ksft_print_msg("%s: fallback made at %#lx: %llu counted in 'fallback', %ld event(s) at it say fallback, fields %s\n",
			       name, (unsigned long)fb_addr,
			       (unsigned long long)n, fb_ev,
			       fields_ok ? "ok" : "BAD");
		if (!fb_addr || !n || fb_ev != 1 || !fields_ok)
			ok = false;
		/* a threshold of 60 s: no event, the histograms still count */
		cfg.slow_ns = 60000000000ULL;
		if (ioctl(fd, SPF_IOC_OBS_SET, &cfg))
			ok = false;
		tr_write(TRACEFS "/trace", "");
		tr_write(SLOW_EV "/enable", "1");
		lat_snap(fd, slot, a);
		madvise(anon, anon_pages * PG, MADV_DONTNEED);
		lat_workload(anon, anon_pages, -1);
		lat_snap(fd, slot, b);
		tr_write(SLOW_EV "/enable", "0");
		ev_quiet = slow_events(0, 0, &in_region, &fields_ok, 0, &fb_ev);
		for (o = 0, n = 0; o < SPF_LAT_BUCKETS; o++)
			n += b->lat.count[SPF_LAT_VMA][o] -
			     a->lat.count[SPF_LAT_VMA][o];
		ksft_print_msg("%s: slow_ns 60 s: %ld events, %llu vma faults counted\n",
			       name, ev_quiet, (unsigned long long)n);
		if (ev_quiet || n < anon_pages)
			ok = false;
		tr_write(SLOW_EV "/filter", "0");
	} else {
		ok = false;
	}
	if (disk >= 0)
		close(disk);
	munmap(anon, anon_pages * PG);
	close(fd);
	free(a);
	ksft_test_result(ok, "%s\n", name);
}

static void test_unload_refused(void)
{
	struct spf_dev_setup s;
	bool ok = true;
	char *p;
	int fd;

	if (!spf_we_loaded) {
		ksft_test_result_skip("unload_refused_while_mapped: the module was loaded by someone else\n");
		return;
	}
	fd = dev_open(PG, 0, &s);
	p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);	/* only the mapping holds the module now */
	if (p == MAP_FAILED)
		ok = false;
	if (!system("rmmod spf_harness 2>/dev/null")) {
		ksft_print_msg("rmmod succeeded with a live mapping\n");
		spf_we_loaded = false;
		ok = false;
	} else {
		ok &= check_tags(p, 1, s.id, 1, 0);
	}
	munmap(p, PG);
	ksft_test_result(ok, "unload_refused_while_mapped\n");
}

int main(void)
{
	unsigned long taint;

	ksft_print_header();
	spf_load_or_skip();
	spf_catch_signals();
	taint = spf_taint();
	ksft_set_plan(20);

	test_obs_bad_input();
	test_obs_second_owner();
	test_dev_bad_input();
	test_dev_tags_bump(SPF_DEV_MAP_PAGES, "dev_tags_bump_map_pages");
	test_dev_tags_bump(0, "dev_tags_bump_no_map_pages");
	test_dev_tags_bump(SPF_DEV_BROKEN_GEN, "dev_broken_gen_is_stale");
	test_dev_delay();
	test_observer_counts(SPF_OBS_FAST, "observer_fast_counts");
	test_observer_counts(SPF_OBS_EXACT, "observer_exact_counts");
	test_observer_cold_file();
	test_not_faults(SPF_OBS_EXACT, "not_faults_exact");
	test_not_faults(SPF_OBS_FAST, "not_faults_fast");
	test_track_permission();
	test_vmstat_vma_lock();
	test_vmstat_pgfault();
	test_snapshot_after_fork();
	test_latency(SPF_OBS_FAST, "latency_by_outcome_fast");
	test_latency(SPF_OBS_EXACT, "latency_by_outcome_exact");
	test_unload_refused();

	if ((spf_taint() & TAINT_WARN) && !(taint & TAINT_WARN))
		ksft_print_msg("kernel WARNed during the test\n");
	spf_unload();
	if ((spf_taint() & TAINT_WARN) && !(taint & TAINT_WARN))
		ksft_exit_fail_msg("kernel WARN taint set\n");
	ksft_finished();
}
