// SPDX-License-Identifier: GPL-2.0
/*
 * spf_ioctl - the spf_harness interface contract: bad input is refused
 * with the documented errno and changes nothing, one observer owner at a
 * time, tagged pages, generation bumps, SIGBUS past the end, ->map_pages
 * decides VMA-lock faults, the observer counts, unload is refused while
 * a mapping exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
	struct spf_counters c;
	struct spf_track t;
	bool ok = true;
	int fd = open(SPF_DEV_PATH, O_RDWR);

	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_OBS_SET, &cfg), EINVAL);
	cfg = (struct spf_obs_config){ .mode = SPF_OBS_FAST, .flags = 1 };
	EXPECT_ERR(ok, ioctl(fd, SPF_IOC_OBS_SET, &cfg), EINVAL);
	cfg = (struct spf_obs_config){ .mode = SPF_OBS_FAST, .reserved[1] = 1 };
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
	ksft_set_plan(10);

	test_obs_bad_input();
	test_obs_second_owner();
	test_dev_bad_input();
	test_dev_tags_bump(SPF_DEV_MAP_PAGES, "dev_tags_bump_map_pages");
	test_dev_tags_bump(0, "dev_tags_bump_no_map_pages");
	test_dev_tags_bump(SPF_DEV_BROKEN_GEN, "dev_broken_gen_is_stale");
	test_dev_delay();
	test_observer_counts(SPF_OBS_FAST, "observer_fast_counts");
	test_observer_counts(SPF_OBS_EXACT, "observer_exact_counts");
	test_unload_refused();

	if ((spf_taint() & TAINT_WARN) && !(taint & TAINT_WARN))
		ksft_print_msg("kernel WARNed during the test\n");
	spf_unload();
	if ((spf_taint() & TAINT_WARN) && !(taint & TAINT_WARN))
		ksft_exit_fail_msg("kernel WARN taint set\n");
	ksft_finished();
}
