// SPDX-License-Identifier: GPL-2.0
/*
 * spf_race - faults racing VMA changes, checked by a shadow-map oracle.
 *
 * Reader threads read random pages of a region; a mutator (the main
 * thread) changes the region with one kind of operation per scenario.
 * Before an operation the mutator publishes, per page, the state the
 * page will have (the shadow map); a reader accepts what it read (a
 * value, zero, SIGSEGV, SIGBUS, a device tag generation) only if it
 * matches the state before or after a transition that overlapped its
 * read. Reads overlapping more than one transition are not judged.
 *
 * Each scenario also checks, through spf_harness (this process tracked),
 * that faults completed under the VMA lock, that fallbacks happened where
 * churn forces them, and that no per-VMA lock invariant was violated. The
 * last scenario runs the device in its deliberately broken mode (faults
 * ignore the generation): the oracle must report violations there, or it
 * is blind.
 *
 * The kernel is the oracle of the observer: every scenario runs in EXACT
 * mode, where the observer's accounted faults (passes that neither
 * retried nor failed, user and kernel) must equal the getrusage()
 * min_flt + maj_flt delta of the process, and FAST's classification of
 * the same faults (counted alongside) must equal EXACT's; then again in
 * FAST mode, where completed user faults minus the reads that got SIGBUS,
 * plus kernel faults, must equal the getrusage() delta, exactly (both
 * ends taken with spf_snap(): fork_during_cow's getrusage() copy-out
 * COW-faulted after its sample, see there). A broken FAST
 * (SPF_OBS_F_BROKEN_FAST) must be caught by the FAST == EXACT comparison.
 *
 * userfaultfd faults and stack growth always end under mmap_lock (the
 * VMA-lock path releases the lock and retries, or finds no VMA): those
 * scenarios require fallbacks, and that uffd faults really happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "kml.h"
#include "spf_test.h"

#define PG		4096UL
#define NPG		512UL		/* 2 MiB: one THP */
#define LEN		(NPG * PG)
#define NREADERS	2

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

enum { K_ZERO = 1, K_VAL, K_SEGV, K_BUS, K_FREE, K_DEV };

#define ST(k, v)	(((uint64_t)(k) << 56) | ((v) & ((1ULL << 56) - 1)))
#define ST_KIND(s)	((int)((s) >> 56))
#define ST_PAY(s)	((s) & ((1ULL << 56) - 1))

enum backing { B_ANON, B_SHMEM, B_STACK, B_DEV, B_DEV_NOMP, B_DEV_BROKEN,
	       B_DEV_DELAY };

/*
 * B_DEV_DELAY: ->fault sleeps this long under the VMA lock, so a VMA
 * writer (mprotect, MAP_FIXED) waits for the readers' faults in flight,
 * and their next faults find the VMA being written: a fallback by
 * construction, not by a lucky hit.
 */
#define DEV_DELAY_US	2000u

struct scenario {
	const char *name;
	enum backing backing;
	void (*op)(void);
	bool want_fallback;	/* churn must make some faults fall back */
	bool want_violations;	/* the broken mode: the oracle must fire */
	bool uffd;		/* needs userfaultfd; must see uffd faults */
};

static char *reservation;	/* 4 * LEN: region, scratch, slack */
static char *base;		/* NPG pages, 2 MiB aligned */
static char *scratch;		/* NPG pages reserved for mremap targets */
static int backing_fd = -1;
static enum backing cur_backing;
static uint64_t next_val = 1;
static uint64_t rng_state = 88172645463325252ULL;

static _Atomic uint64_t sh_seq[NPG], sh_cur[NPG], sh_nxt[NPG];
static atomic_int stop;
static atomic_ulong n_reads, n_checked, n_viol, n_unjudged, n_sig, n_bus;

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- shadow map ------------------------------------------------------ */

static void sh_begin(size_t a, size_t b, uint64_t (*st)(size_t))
{
	size_t i;

	for (i = a; i < b; i++) {
		atomic_store(&sh_nxt[i], st(i));
		atomic_fetch_add(&sh_seq[i], 1);	/* odd: in transition */
	}
}

static void sh_end(size_t a, size_t b)
{
	size_t i;

	for (i = a; i < b; i++) {
		atomic_store(&sh_cur[i], atomic_load(&sh_nxt[i]));
		atomic_fetch_add(&sh_seq[i], 1);
	}
}

/* What an accessible page holds, kept by the mutator only. */
static uint64_t content[NPG];
static uint64_t dev_gen = 1;

static uint64_t st_segv(size_t i) { return ST(K_SEGV, 0); }
static uint64_t st_bus(size_t i) { return ST(K_BUS, 0); }
static uint64_t st_content(size_t i) { return content[i]; }

static void set_content(size_t a, size_t b, int kind)
{
	size_t i;

	for (i = a; i < b; i++) {
		uint64_t old = content[i];

		switch (kind) {
		case K_ZERO:
			content[i] = ST(K_ZERO, 0);
			break;
		case K_FREE:
			if (ST_KIND(old) == K_VAL)
				content[i] = ST(K_FREE, ST_PAY(old));
			break;
		case K_DEV:
			content[i] = ST(K_DEV, dev_gen);
			break;
		}
	}
}

static bool matches(uint64_t st, int sig, uint64_t val)
{
	switch (ST_KIND(st)) {
	case K_ZERO:
		return !sig && val == 0;
	case K_VAL:
		return !sig && val == st;
	case K_SEGV:
		return sig == SIGSEGV;
	case K_BUS:
		return sig == SIGBUS;
	case K_FREE:
		return !sig && (val == 0 || val == ST(K_VAL, ST_PAY(st)));
	case K_DEV:
		return !sig && val == ST_PAY(st);
	}
	return false;
}

/* Write new values into [a, b): the mutator's own (COW, anon) faults. */
static void write_vals(size_t a, size_t b)
{
	size_t i;

	next_val++;
	for (i = a; i < b; i++)
		content[i] = ST(K_VAL, (next_val << 12) | i);
	sh_begin(a, b, st_content);
	for (i = a; i < b; i++)
		*(volatile uint64_t *)(base + i * PG) = content[i];
	sh_end(a, b);
}

/* ---- readers --------------------------------------------------------- */

static void *reader(void *arg)
{
	uint64_t rs = (uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
	size_t off = cur_backing >= B_DEV ? offsetof(struct spf_tag, gen) : 0;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		size_t i = xorshift(&rs) % NPG;
		uint64_t s1, s2, c1, n1, c2, n2, val = 0;
		bool ok;
		int sig;

		s1 = atomic_load(&sh_seq[i]);
		c1 = atomic_load(&sh_cur[i]);
		n1 = atomic_load(&sh_nxt[i]);
		sig = spf_read_u64(base + i * PG + off, &val);
		atomic_thread_fence(memory_order_seq_cst);
		s2 = atomic_load(&sh_seq[i]);
		c2 = atomic_load(&sh_cur[i]);
		n2 = atomic_load(&sh_nxt[i]);
		atomic_fetch_add_explicit(&n_reads, 1, memory_order_relaxed);
		if (sig)
			atomic_fetch_add_explicit(&n_sig, 1,
						  memory_order_relaxed);
		if (sig == SIGBUS)
			atomic_fetch_add_explicit(&n_bus, 1,
						  memory_order_relaxed);
		if (s2 - s1 > 2) {
			atomic_fetch_add_explicit(&n_unjudged, 1,
						  memory_order_relaxed);
			continue;
		}
		atomic_fetch_add_explicit(&n_checked, 1, memory_order_relaxed);
		if (s1 == s2 && !(s1 & 1))
			ok = matches(c1, sig, val);
		else
			ok = matches(c1, sig, val) || matches(n1, sig, val) ||
			     matches(c2, sig, val) || matches(n2, sig, val);
		if (ok)
			continue;
		if (atomic_fetch_add(&n_viol, 1) < 3)
			ksft_print_msg("oracle: page %zu read %s 0x%llx, shadow 0x%llx/0x%llx seq %llu..%llu\n",
				       i, sig == SIGSEGV ? "SIGSEGV" :
				       sig == SIGBUS ? "SIGBUS" : "value",
				       (unsigned long long)val,
				       (unsigned long long)c2,
				       (unsigned long long)n2,
				       (unsigned long long)s1,
				       (unsigned long long)s2);
	}
	return NULL;
}

/* ---- operations (one per scenario) ------------------------------------ */

static void rand_range(size_t *a, size_t *b)
{
	size_t len = 1 + xorshift(&rng_state) % 32;

	*a = 1 + xorshift(&rng_state) % (NPG - len - 1);
	*b = *a + len;
}

static void die_errno(const char *what)
{
	ksft_exit_fail_msg("%s: %s\n", what, strerror(errno));
}

/* Drop [a, b) so readers fault it in again (zero pages), then refill. */
static void refault(size_t a, size_t b)
{
	set_content(a, b, K_ZERO);
	sh_begin(a, b, st_content);
	if (madvise(base + a * PG, (b - a) * PG, MADV_DONTNEED))
		die_errno("madvise DONTNEED");
	sh_end(a, b);
	write_vals(a, b);
}

static void protect(size_t a, size_t b)
{
	sh_begin(a, b, st_segv);
	if (mprotect(base + a * PG, (b - a) * PG, PROT_NONE))
		die_errno("mprotect NONE");
	sh_end(a, b);
	sh_begin(a, b, st_content);
	if (mprotect(base + a * PG, (b - a) * PG, PROT_READ | PROT_WRITE))
		die_errno("mprotect RW");
	sh_end(a, b);
}

static void op_mprotect_whole(void)
{
	protect(0, NPG);
	refault(0, NPG);
}

static void op_mprotect_split(void)
{
	size_t a, b;

	rand_range(&a, &b);
	protect(a, b);		/* split, then merge back */
	refault(a, b);
}

static void op_munmap_remap(void)
{
	size_t a, b;
	void *p;

	rand_range(&a, &b);
	sh_begin(a, b, st_segv);
	if (munmap(base + a * PG, (b - a) * PG))
		die_errno("munmap");
	sh_end(a, b);
	set_content(a, b, K_ZERO);
	sh_begin(a, b, st_content);
	p = mmap(base + a * PG, (b - a) * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != base + a * PG)
		die_errno("mmap into the hole");
	sh_end(a, b);
	/* first faults of a new VMA: anon_vma creation racing the merge */
	write_vals(a, b);
}

static void op_map_fixed(void)
{
	size_t a, b;

	rand_range(&a, &b);
	set_content(a, b, K_ZERO);
	sh_begin(a, b, st_content);
	if (mmap(base + a * PG, (b - a) * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		die_errno("mmap MAP_FIXED");
	sh_end(a, b);
	write_vals(a, b);
}

static void op_mremap_move(void)
{
	size_t a, b, len;

	rand_range(&a, &b);
	len = (b - a) * PG;
	sh_begin(a, b, st_segv);
	if (mremap(base + a * PG, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
		   scratch) == MAP_FAILED)
		die_errno("mremap away");
	sh_end(a, b);
	sh_begin(a, b, st_content);
	if (mremap(scratch, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
		   base + a * PG) == MAP_FAILED)
		die_errno("mremap back");
	sh_end(a, b);
	/* keep the scratch area reserved */
	if (mmap(scratch, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED)
		die_errno("re-reserve scratch");
	refault(a, b);
}

static void op_mremap_shrink_grow(void)
{
	size_t keep = NPG - 1 - xorshift(&rng_state) % 64;

	sh_begin(keep, NPG, st_segv);
	if (mremap(base, LEN, keep * PG, 0) == MAP_FAILED)
		die_errno("mremap shrink");
	sh_end(keep, NPG);
	set_content(keep, NPG, K_ZERO);
	sh_begin(keep, NPG, st_content);
	if (mremap(base, keep * PG, LEN, 0) == MAP_FAILED)
		die_errno("mremap grow");
	sh_end(keep, NPG);
	write_vals(keep, NPG);
}

static void op_mremap_dontunmap(void)
{
	size_t a, b, len;

	rand_range(&a, &b);
	len = (b - a) * PG;
	set_content(a, b, K_ZERO);	/* the source stays, empty */
	sh_begin(a, b, st_content);
	if (mremap(base + a * PG, len, len, MREMAP_MAYMOVE | MREMAP_FIXED |
		   MREMAP_DONTUNMAP, scratch) == MAP_FAILED)
		die_errno("mremap DONTUNMAP");
	sh_end(a, b);
	if (mmap(scratch, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_FIXED, -1, 0) == MAP_FAILED)
		die_errno("re-reserve scratch");
	write_vals(a, b);
}

static void madv(int advice, int kind)
{
	size_t a, b;

	rand_range(&a, &b);
	set_content(a, b, kind);
	sh_begin(a, b, st_content);
	if (madvise(base + a * PG, (b - a) * PG, advice) && errno != EINVAL)
		die_errno("madvise");
	sh_end(a, b);
	write_vals(a, b);
}

static void op_dontneed(void) { madv(MADV_DONTNEED, K_ZERO); }
static void op_free(void) { madv(MADV_FREE, K_FREE); }
static void op_pageout(void) { madv(MADV_PAGEOUT, K_VAL); }

/* AnonHugePages (kB) of the VMA that starts at @p, from smaps. */
static long anon_huge_kb(const void *p)
{
	char line[256], key[32];
	unsigned long start, end;
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = start == (uintptr_t)p;
			continue;
		}
		if (in && sscanf(line, "%31s %ld", key, &kb) == 2 &&
		    !strcmp(key, "AnonHugePages:"))
			break;
		kb = -1;
	}
	fclose(f);
	return kb;
}

static atomic_ulong n_collapsed, n_thp;
static int collapse_errno;

static void op_collapse(void)
{
	/* the region is 2 MiB aligned: a THP candidate */
	sh_begin(0, NPG, st_content);
	madvise(base, LEN, MADV_HUGEPAGE);
	if (madvise(base, LEN, MADV_COLLAPSE)) {
		collapse_errno = errno;	/* EAGAIN, ENOMEM, EINVAL: why */
	} else {
		atomic_fetch_add(&n_collapsed, 1);
		/* a THP now maps the region (until the zap below) */
		if (anon_huge_kb(base) >= (long)(LEN >> 10))
			atomic_fetch_add(&n_thp, 1);
	}
	madvise(base, LEN, MADV_NOHUGEPAGE);	/* split/merge the flags */
	sh_end(0, NPG);
	op_dontneed();
}

static void op_fork_cow(void)
{
	size_t a, b, i;
	pid_t pid;
	int status;

	rand_range(&a, &b);
	pid = fork();
	if (pid < 0)
		die_errno("fork");
	if (!pid) {
		/* the child sees the parent's values at fork time */
		for (i = a; i < b; i++)
			if (!matches(content[i], 0,
				     *(volatile uint64_t *)(base + i * PG)))
				_exit(1);
		_exit(0);
	}
	write_vals(a, b);	/* COW faults racing the fork's copy */
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		atomic_fetch_add(&n_viol, 1);
		ksft_print_msg("fork child saw wrong values\n");
	}
}

static void op_mlock(void)
{
	size_t a, b;

	rand_range(&a, &b);
	sh_begin(a, b, st_content);
	if (mlock(base + a * PG, (b - a) * PG))
		die_errno("mlock");
	if (munlock(base + a * PG, (b - a) * PG))
		die_errno("munlock");
	sh_end(a, b);
	refault(a, b);
}

static void op_punch_hole(void)
{
	size_t a, b;

	rand_range(&a, &b);
	set_content(a, b, K_ZERO);
	sh_begin(a, b, st_content);
	if (fallocate(backing_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(a * PG), (off_t)((b - a) * PG)))
		die_errno("punch hole");
	sh_end(a, b);
	write_vals(a, b);
}

static void op_truncate(void)
{
	size_t keep = NPG - 1 - xorshift(&rng_state) % 64;

	sh_begin(keep, NPG, st_bus);
	if (ftruncate(backing_fd, (off_t)(keep * PG)))
		die_errno("truncate");
	sh_end(keep, NPG);
	set_content(keep, NPG, K_ZERO);
	sh_begin(keep, NPG, st_content);
	if (ftruncate(backing_fd, (off_t)LEN))
		die_errno("extend");
	sh_end(keep, NPG);
	write_vals(keep, NPG);
}

static void op_dev_bump(void)
{
	uint64_t gen;

	dev_gen++;
	set_content(0, NPG, K_DEV);
	sh_begin(0, NPG, st_content);
	if (ioctl(backing_fd, SPF_IOC_DEV_BUMP, &gen))
		die_errno("DEV_BUMP");
	sh_end(0, NPG);
	if (gen != dev_gen)
		ksft_exit_fail_msg("bump returned gen %llu, want %llu\n",
				   (unsigned long long)gen,
				   (unsigned long long)dev_gen);
}

/*
 * B_DEV_DELAY: zap every page (bump, every 8th op: the readers take
 * that long to fault all pages back in), so that the readers fault and sit
 * in the delayed ->fault under the VMA lock, then split [a, b) off with
 * mprotect and merge it back: vma_start_write() waits for the faults in
 * flight while the readers' next faults find the VMA being written.
 */
static unsigned long dev_ops;

static void op_dev_mprotect_split(void)
{
	size_t a, b;

	if (!(dev_ops++ % 8))
		op_dev_bump();
	rand_range(&a, &b);
	sh_begin(a, b, st_segv);
	if (mprotect(base + a * PG, (b - a) * PG, PROT_NONE))
		die_errno("mprotect NONE");
	sh_end(a, b);
	sh_begin(a, b, st_content);
	if (mprotect(base + a * PG, (b - a) * PG, PROT_READ))
		die_errno("mprotect R");
	sh_end(a, b);
}

/* B_DEV_DELAY: as above, with MAP_FIXED of the same device pages. */
static void op_dev_map_fixed(void)
{
	size_t a, b;

	if (!(dev_ops++ % 8))
		op_dev_bump();
	rand_range(&a, &b);
	sh_begin(a, b, st_content);	/* the same tags before and after */
	if (mmap(base + a * PG, (b - a) * PG, PROT_READ, MAP_SHARED |
		 MAP_FIXED, backing_fd, (off_t)(a * PG)) == MAP_FAILED)
		die_errno("mmap MAP_FIXED of the device");
	sh_end(a, b);
}

/* ---- userfaultfd ------------------------------------------------------ */

static atomic_ulong n_uffd;	/* uffd faults handled / pending at close */
static char uffd_buf[PG] __attribute__((aligned(4096)));

static int uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void uffd_register(int fd, size_t a, size_t b)
{
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)(base + a * PG),
			   .len = (b - a) * PG },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	if (ioctl(fd, UFFDIO_REGISTER, &r))
		die_errno("UFFDIO_REGISTER");
}

/* A range big enough for readers to fault in it while it is registered. */
static void uffd_range(size_t *a, size_t *b)
{
	size_t len = 64 + xorshift(&rng_state) % 64;

	*a = xorshift(&rng_state) % (NPG - len);
	*b = *a + len;
}

static void *uffd_waiter(void *p);

/*
 * Drop [a, b) and register it (missing mode); for a few milliseconds
 * resolve the readers' faults with UFFDIO_COPY of a new value (the shadow
 * accepts zero, for pages read before the registration, or that value);
 * unregister (waking waiters), drain the queue, write new values. A
 * waiter thread reads the range's first page, so a uffd fault happens
 * in every operation for certain: the window stays open until one was
 * resolved (10 s deadline), however slowly the readers run (the debug
 * kernel under a loaded host once saw none in two 5 ms windows).
 */
static void op_uffd_register(void)
{
	struct uffdio_range r;
	struct uffd_msg msg;
	struct timespec t0, t;
	size_t a, b, i;
	unsigned long handled = 0;
	long el;
	pthread_t w;
	bool waiter;
	int fd;

	fd = uffd_open();
	if (fd < 0)
		ksft_exit_fail_msg("userfaultfd: %s\n", strerror(-fd));
	uffd_range(&a, &b);
	r.start = (uintptr_t)(base + a * PG);
	r.len = (b - a) * PG;
	set_content(a, b, K_ZERO);
	sh_begin(a, b, st_content);
	if (madvise(base + a * PG, (b - a) * PG, MADV_DONTNEED))
		die_errno("madvise DONTNEED");
	sh_end(a, b);
	next_val++;
	for (i = a; i < b; i++)
		content[i] = ST(K_FREE, (next_val << 12) | i);
	sh_begin(a, b, st_content);
	uffd_register(fd, a, b);
	/*
	 * Readers map the zero page where they read since the drop above
	 * (all of [a, b) if this thread was descheduled before registering:
	 * then no uffd fault at all, 0 in 10 s seen twice on a loaded host):
	 * drop the range again, now registered, so that the waiter's read
	 * (or a reader's before it) is a uffd fault for certain.
	 */
	if (madvise(base + a * PG, (b - a) * PG, MADV_DONTNEED))
		die_errno("madvise DONTNEED");
	sh_end(a, b);
	waiter = !pthread_create(&w, NULL, uffd_waiter, base + a * PG);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct uffdio_copy cp = { .len = PG };

		if (poll(&pfd, 1, 1) <= 0 || read(fd, &msg, sizeof(msg)) !=
		    sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
			goto next;
		cp.dst = msg.arg.pagefault.address & ~(PG - 1);
		i = (cp.dst - (uintptr_t)base) / PG;
		if (i < a || i >= b)
			ksft_exit_fail_msg("uffd fault outside the range\n");
		*(uint64_t *)uffd_buf = ST(K_VAL, ST_PAY(content[i]));
		cp.src = (uintptr_t)uffd_buf;
		if (ioctl(fd, UFFDIO_COPY, &cp) && errno != EEXIST &&
		    errno != EAGAIN)
			die_errno("UFFDIO_COPY");
		atomic_fetch_add(&n_uffd, 1);
		handled++;
next:
		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (t.tv_sec - t0.tv_sec) * 1000000000L +
		     (t.tv_nsec - t0.tv_nsec);
	} while (el < 5000000L || (waiter && !handled && el < 10000000000L));
	/* wakes the waiters: they retry and fault normally */
	if (ioctl(fd, UFFDIO_UNREGISTER, &r))
		die_errno("UFFDIO_UNREGISTER");
	if (waiter)
		pthread_join(w, NULL);
	while (read(fd, &msg, sizeof(msg)) == sizeof(msg))
		;	/* stale events of the unregistered range */
	close(fd);
	write_vals(a, b);
}

/* A reader of one page of a registered range: its fault waits for sure. */
static void *uffd_waiter(void *p)
{
	uint64_t v;

	spf_read_u64(p, &v);
	return NULL;
}

/*
 * Register a dropped range and close the uffd while a fault waits in
 * handle_userfault() (no one resolves it): a waiter thread reads a page
 * of the range, so a fault is pending for certain (the mutator polls for
 * it with a 10 s deadline); readers fault there too. Closing the uffd
 * must wake them all: they retry and read zero pages.
 */
/*
 * The readers of the scenario running: op_uffd_close() moves them off the
 * closer's CPU.
 */
static pthread_t reader_tid[NREADERS];

static void pin_readers(const cpu_set_t *set)
{
	int i, rc;

	for (i = 0; i < NREADERS; i++) {
		rc = pthread_setaffinity_np(reader_tid[i], sizeof(*set), set);
		if (rc)
			ksft_exit_fail_msg("reader affinity: %s\n", strerror(rc));
	}
}

/*
 * Closing the userfaultfd while threads fault in its range. The closer has
 * a CPU of its own: on the stock 6.12 kernel, once close() has marked the
 * context released, handle_userfault() answers each fault in the range
 * with VM_FAULT_RETRY and do_user_addr_fault() retries at once, without a
 * resched point, until userfaultfd_release() gets the mmap_lock for writing
 * and unregisters the range. A closer descheduled in between on a CPU where
 * such a thread spins never runs again under preempt=voluntary: a soft
 * lockup (Documentation/spf.rst, Findings). main() needs two CPUs for this.
 */
static void op_uffd_close(void)
{
	struct pollfd pfd = { .events = POLLIN };
	cpu_set_t all, mine, rest;
	pthread_attr_t attr;
	pthread_t waiter;
	size_t a, b;
	int rc;

	if (!kml_cpu_split(&all, &mine, &rest))
		ksft_exit_fail_msg("uffd_close: needs two CPUs\n");
	pfd.fd = uffd_open();
	if (pfd.fd < 0)
		ksft_exit_fail_msg("userfaultfd: %s\n", strerror(-pfd.fd));
	uffd_range(&a, &b);
	set_content(a, b, K_ZERO);
	sh_begin(a, b, st_content);
	/*
	 * Register, then drop: dropped first, the readers could map the
	 * zero page before the registration and never fault in the range.
	 */
	uffd_register(pfd.fd, a, b);
	if (madvise(base + a * PG, (b - a) * PG, MADV_DONTNEED))
		die_errno("madvise DONTNEED");
	sh_end(a, b);
	pin_readers(&rest);
	if (sched_setaffinity(0, sizeof(mine), &mine))
		die_errno("closer affinity");
	if (pthread_attr_init(&attr) ||
	    pthread_attr_setaffinity_np(&attr, sizeof(rest), &rest))
		ksft_exit_fail_msg("waiter attributes\n");
	rc = pthread_create(&waiter, &attr, uffd_waiter,
			    base + (a + (b - a) / 2) * PG);
	pthread_attr_destroy(&attr);
	if (rc)
		ksft_exit_fail_msg("uffd waiter thread: %s\n", strerror(rc));
	if (poll(&pfd, 1, 10000) > 0)
		atomic_fetch_add(&n_uffd, 1);	/* a fault is waiting */
	else
		ksft_print_msg("uffd_close: no fault pending after 10 s\n");
	close(pfd.fd);
	pthread_join(waiter, NULL);	/* woken by the close */
	if (sched_setaffinity(0, sizeof(all), &all))
		die_errno("closer affinity");
	pin_readers(&all);
	write_vals(a, b);
}

/* ---- stack growth ----------------------------------------------------- */

/*
 * B_STACK: [NPG/2, NPG) starts as a MAP_GROWSDOWN mapping with a hole
 * below it; any access in the hole expands the stack (under mmap_lock:
 * lock_vma_under_rcu() finds no VMA there) and reads zero. The mutator
 * unmaps the part below NPG/2 again, then writes a random range of the
 * hole, growing the stack down to it, while readers grow it too.
 */
static void op_stack_grow(void)
{
	size_t len = 1 + xorshift(&rng_state) % 32;
	size_t a = xorshift(&rng_state) % (NPG / 2 - len);

	set_content(0, NPG / 2, K_ZERO);
	sh_begin(0, NPG / 2, st_content);
	if (munmap(base, LEN / 2))
		die_errno("munmap below the stack");
	sh_end(0, NPG / 2);
	write_vals(a, a + len);
}

static const struct scenario scenarios[] = {
	{ "mprotect_whole", B_ANON, op_mprotect_whole, false, false, false },
	/* fallbacks by luck here: required in the _dev variants below */
	{ "mprotect_split_merge", B_ANON, op_mprotect_split, false, false, false },
	{ "munmap_remap", B_ANON, op_munmap_remap, true, false, false },
	{ "map_fixed_over_live", B_ANON, op_map_fixed, false, false, false },
	{ "mremap_move", B_ANON, op_mremap_move, true, false, false },
	{ "mremap_shrink_grow", B_ANON, op_mremap_shrink_grow, true, false, false },
	{ "mremap_dontunmap", B_ANON, op_mremap_dontunmap, false, false, false },
	{ "madv_dontneed", B_ANON, op_dontneed, false, false, false },
	{ "madv_free", B_ANON, op_free, false, false, false },
	{ "madv_pageout", B_ANON, op_pageout, false, false, false },
	{ "madv_hugepage_collapse", B_ANON, op_collapse, false, false, false },
	{ "fork_during_cow", B_ANON, op_fork_cow, false, false, false },
	{ "mlock_munlock", B_ANON, op_mlock, false, false, false },
	{ "shmem_punch_hole", B_SHMEM, op_punch_hole, false, false, false },
	{ "shmem_truncate", B_SHMEM, op_truncate, false, false, false },
	{ "uffd_register_unregister", B_ANON, op_uffd_register, true, false,
	  true },
	{ "uffd_close_mid_fault", B_ANON, op_uffd_close, true, false, true },
	{ "stack_growth", B_STACK, op_stack_grow, true, false, false },
	{ "dev_bump_map_pages", B_DEV, op_dev_bump, false, false, false },
	{ "dev_bump_no_map_pages", B_DEV_NOMP, op_dev_bump, false, false, false },
	{ "mprotect_split_merge_dev", B_DEV_DELAY, op_dev_mprotect_split, true,
	  false, false },
	{ "map_fixed_over_live_dev", B_DEV_DELAY, op_dev_map_fixed, true, false,
	  false },
	{ "oracle_catches_broken_gen", B_DEV_BROKEN, op_dev_bump, false, true, false },
};

/* ---- setup and one scenario ------------------------------------------- */

static void setup_region(enum backing bk)
{
	struct spf_dev_setup s = { .size = LEN };
	char *res, *p;
	size_t i;
	int flags = MAP_FIXED | MAP_SHARED;

	/* reserve 2 MiB-aligned space for the region and the scratch area */
	res = mmap(NULL, 4 * LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (res == MAP_FAILED)
		die_errno("reserve");
	reservation = res;
	base = (char *)(((uintptr_t)res + LEN - 1) & ~(LEN - 1));
	scratch = base + 2 * LEN;
	backing_fd = -1;
	switch (bk) {
	case B_ANON:
		p = mmap(base, LEN, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		break;
	case B_STACK:
		/* a hole below a stack: only the stack can grow into it */
		if (munmap(base, LEN / 2))
			die_errno("hole");
		p = mmap(base + LEN / 2, LEN / 2, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_GROWSDOWN, -1, 0);
		if (p == base + LEN / 2)
			p = base;
		break;
	case B_SHMEM:
		backing_fd = memfd_create("spf_race", MFD_CLOEXEC);
		if (backing_fd < 0 || ftruncate(backing_fd, (off_t)LEN))
			die_errno("memfd");
		p = mmap(base, LEN, PROT_READ | PROT_WRITE, flags, backing_fd,
			 0);
		break;
	default:
		backing_fd = open(SPF_DEV_PATH, O_RDWR | O_CLOEXEC);
		s.flags = bk == B_DEV || bk == B_DEV_DELAY ? SPF_DEV_MAP_PAGES :
			  bk == B_DEV_BROKEN ? SPF_DEV_MAP_PAGES |
					       SPF_DEV_BROKEN_GEN : 0;
		s.delay_us = bk == B_DEV_DELAY ? DEV_DELAY_US : 0;
		if (backing_fd < 0 || ioctl(backing_fd, SPF_IOC_DEV_SETUP, &s))
			die_errno("device");
		p = mmap(base, LEN, PROT_READ, flags, backing_fd, 0);
		break;
	}
	if (p != base)
		die_errno("map region");
	cur_backing = bk;
	dev_gen = 1;
	for (i = 0; i < NPG; i++) {
		atomic_store(&sh_seq[i], 0);
		content[i] = bk >= B_DEV ? ST(K_DEV, 1) : ST(K_ZERO, 0);
		atomic_store(&sh_cur[i], content[i]);
		atomic_store(&sh_nxt[i], content[i]);
	}
	if (bk < B_DEV)
		write_vals(0, NPG);
}

static void teardown_region(void)
{
	munmap(reservation, 4 * LEN);	/* region, scratch and slack */
	if (backing_fd >= 0)
		close(backing_fd);
}

static double secs(void)
{
	const char *e = getenv("SPF_RACE_SECS");
	double d = e ? atof(e) : 1.5;

	return d > 0.1 && d < 60 ? d : 1.5;
}

/* A /proc/vmstat counter, or -1. */
static long vmstat(const char *name)
{
	char key[64];
	long v, r = -1;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &v) == 2)
		if (!strcmp(key, name)) {
			r = v;
			break;
		}
	fclose(f);
	return r;
}

/* ---- swap for madv_pageout: a zram device, swapon'd by us ------------- */

#define ZRAM_SIZE	(64UL << 20)
static bool swap_ours, zram_loaded_by_us;
static char swap_why[160];
static const char *swap_dev = "/dev/zram0";
/* without zram (the debug kernel has none): the second scratch disk */
#define SWAP_DISK	"/dev/vdb"
#define SWAP_DISK_SIZE	(64UL << 20)

static bool write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, val, strlen(val)) == (ssize_t)strlen(val);

	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * Give the guest swap so that MADV_PAGEOUT really pages out: zram0 of
 * ZRAM_SIZE with a swap header written here (mkswap's format: version 1,
 * last page, "SWAPSPACE2" at the end of page 0) and swapon(2).
 */
static bool swap_setup(void)
{
	static char page[PG];
	uint32_t *hdr = (uint32_t *)(page + 1024);
	char sz[32];
	unsigned long size = ZRAM_SIZE;
	bool had_zram = !access("/sys/block/zram0", F_OK);
	int fd;

	if (kml_swap_active())
		return true;
	if (!had_zram && system("modprobe zram num_devices=1 2>/dev/null")) {
		if (access(SWAP_DISK, F_OK)) {
			snprintf(swap_why, sizeof(swap_why),
				 "no zram (modprobe zram failed) and no %s (settings disks=)",
				 SWAP_DISK);
			return false;
		}
		swap_dev = SWAP_DISK;
		size = SWAP_DISK_SIZE;
	} else {
		if (access("/sys/block/zram0", F_OK)) {
			snprintf(swap_why, sizeof(swap_why),
				 "zram loaded but no /sys/block/zram0");
			return false;
		}
		zram_loaded_by_us = !had_zram;
		snprintf(sz, sizeof(sz), "%lu", ZRAM_SIZE);
		if (!write_file("/sys/block/zram0/disksize", sz)) {
			snprintf(swap_why, sizeof(swap_why),
				 "zram0 disksize: %s (in use?)",
				 strerror(errno));
			return false;
		}
	}
	hdr[0] = 1;				/* version */
	hdr[1] = size / PG - 1;			/* last_page */
	memcpy(page + PG - 10, "SWAPSPACE2", 10);
	fd = open(swap_dev, O_RDWR | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, page, PG, 0) != (ssize_t)PG || fsync(fd)) {
		snprintf(swap_why, sizeof(swap_why), "%s: %s", swap_dev,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	if (swapon(swap_dev, 0)) {
		snprintf(swap_why, sizeof(swap_why), "swapon %s: %s", swap_dev,
			 strerror(errno));
		return false;
	}
	swap_ours = true;
	return true;
}

static void swap_teardown(void)
{
	if (swap_ours && swapoff(swap_dev))
		ksft_print_msg("swapoff %s: %s\n", swap_dev, strerror(errno));
	if (swap_ours && !strcmp(swap_dev, "/dev/zram0"))
		write_file("/sys/block/zram0/reset", "1");
	if (zram_loaded_by_us && system("rmmod zram"))
		ksft_print_msg("rmmod zram failed\n");
}

static int obs_mode(int fd, uint32_t mode, uint32_t flags)
{
	struct spf_obs_config cfg = { .mode = mode, .flags = flags };

	return ioctl(fd, SPF_IOC_OBS_SET, &cfg) ? -errno : 0;
}

static void print_summary(const char *name, const char *what,
			  const struct spf_summary *s)
{
	ksft_print_msg("%s: %s: user %llu vma_done %llu aborts %llu retries %llu mmap %llu mmap_retries %llu completed %llu no_pass %llu kernel %llu\n",
		       name, what, (unsigned long long)s->user,
		       (unsigned long long)s->vma_done,
		       (unsigned long long)s->aborts,
		       (unsigned long long)s->retries,
		       (unsigned long long)s->mmap,
		       (unsigned long long)s->mmap_retries,
		       (unsigned long long)s->completed,
		       (unsigned long long)s->no_pass,
		       (unsigned long long)s->kernel);
}

/*
 * The kernel as the oracle of the observer (see the top of the file).
 * Returns true if the observer agrees.
 */
static bool observer_agrees(const struct scenario *sc,
			    const struct spf_counters *d,
			    const struct spf_summary *sm, long ru, bool broken)
{
	struct spf_summary fast;
	const char *diff;
	uint64_t acc;
	bool ok = true;

	if (d->mode == SPF_OBS_EXACT) {
		acc = spf_exact_accounted(d, sm);
		if (acc != (uint64_t)ru) {
			ksft_print_msg("%s: EXACT accounts %llu faults, getrusage %ld (user errors %llu, kernel retries %llu errors %llu)\n",
				       sc->name, (unsigned long long)acc, ru,
				       (unsigned long long)d->c[SPF_C_USER_ERROR],
				       (unsigned long long)d->c[SPF_C_KERNEL_RETRY],
				       (unsigned long long)d->c[SPF_C_KERNEL_ERROR]);
			ok = false;
		}
		if (!(d->features & SPF_FEAT_FAST_SHADOW)) {
			ksft_print_msg("%s: FAST's classification not counted alongside EXACT\n",
				       sc->name);
			return false;
		}
		if (broken && !(d->features & SPF_FEAT_BROKEN_FAST)) {
			/* not active: report "agrees", the control fails */
			ksft_print_msg("%s: broken FAST not active\n", sc->name);
			return true;
		}
		spf_summarize_fast_shadow(d, &fast);
		diff = spf_summary_diff(&fast, sm);
		if (diff) {
			print_summary(sc->name, "exact", sm);
			print_summary(sc->name, "fast (same faults)", &fast);
			ksft_print_msg("%s: FAST != EXACT in %s\n", sc->name,
				       diff);
			ok = false;
		}
		return ok;
	}
	/*
	 * FAST: no exit handlers, so failed passes are the reads that got
	 * SIGBUS (the readers' only hmf errors) and kernel passes are taken
	 * as done.
	 */
	acc = spf_sub0(sm->completed, atomic_load(&n_bus)) + sm->kernel;
	if (acc != (uint64_t)ru) {
		print_summary(sc->name, "fast", sm);
		ksft_print_msg("%s: FAST accounts %llu faults (SIGBUS reads %lu), getrusage %ld\n",
			       sc->name, (unsigned long long)acc,
			       atomic_load(&n_bus), ru);
		ok = false;
	}
	return ok;
}

/* Run @sc with the observer in @mode; returns the TAP verdict. */
static bool run(const struct scenario *sc, int obs_fd, int slot,
		uint32_t mode, uint32_t flags)
{
	struct spf_snap start, end;
	struct spf_counters *after = &end.c;
	struct spf_dev_stats st = { 0 };
	struct spf_summary sm;
	struct timespec ts;
	double t0, dur = secs();
	unsigned long iters = 0;
	long ru, maj, swpout0 = 0;
	bool ok = true;
	int i;

	if (obs_mode(obs_fd, mode, flags))
		ksft_exit_fail_msg("observer mode %u flags 0x%x: %s\n", mode,
				   flags, strerror(errno));

	atomic_store(&n_reads, 0);
	atomic_store(&n_checked, 0);
	atomic_store(&n_viol, 0);
	atomic_store(&n_unjudged, 0);
	atomic_store(&n_sig, 0);
	atomic_store(&n_bus, 0);
	atomic_store(&n_collapsed, 0);
	atomic_store(&n_thp, 0);
	collapse_errno = 0;
	atomic_store(&n_uffd, 0);
	atomic_store(&stop, 0);
	setup_region(sc->backing);
	/* twice: see spf_snap() */
	spf_snap(obs_fd, (uint32_t)slot, &start);
	spf_snap(obs_fd, (uint32_t)slot, &start);
	if (sc->op == op_pageout)
		swpout0 = vmstat("pswpout");
	for (i = 0; i < NREADERS; i++)
		pthread_create(&reader_tid[i], NULL, reader,
			       (void *)(uintptr_t)(i + 1));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	do {
		sc->op();
		iters++;
		clock_gettime(CLOCK_MONOTONIC, &ts);
	} while ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0 < dur);
	atomic_store(&stop, 1);
	for (i = 0; i < NREADERS; i++)
		pthread_join(reader_tid[i], NULL);
	spf_snap(obs_fd, (uint32_t)slot, &end);
	spf_snap(obs_fd, (uint32_t)slot, &end);
	ru = spf_snap_faults(&end) - spf_snap_faults(&start);
	maj = end.ru.ru_majflt - start.ru.ru_majflt;
	spf_delta(after, &start.c);
	spf_summarize(after, &sm);
	if (backing_fd >= 0 && sc->backing >= B_DEV)
		ioctl(backing_fd, SPF_IOC_DEV_STATS, &st);
	teardown_region();

	ksft_print_msg("%s [%s]: %lu ops, %lu reads (%lu judged, %lu unjudged, %lu signals), %lu oracle violations; faults %llu: vma-lock %llu, aborts %llu, retries %llu, invariant violations %llu; device vma/mmap %llu/%llu; getrusage min+maj %ld\n",
		       sc->name, mode == SPF_OBS_EXACT ? "exact" : "fast",
		       iters, atomic_load(&n_reads),
		       atomic_load(&n_checked), atomic_load(&n_unjudged),
		       atomic_load(&n_sig), atomic_load(&n_viol),
		       (unsigned long long)sm.user,
		       (unsigned long long)sm.vma_done,
		       (unsigned long long)sm.aborts,
		       (unsigned long long)sm.retries,
		       (unsigned long long)sm.violations,
		       (unsigned long long)st.faults_vma_lock,
		       (unsigned long long)st.faults_mmap_lock, ru);
	if (sc->want_violations) {
		if (!atomic_load(&n_viol)) {
			ksft_print_msg("the oracle missed the broken device\n");
			ok = false;
		}
	} else if (atomic_load(&n_viol)) {
		ok = false;
	}
	if (atomic_load(&n_checked) < 100 || sm.violations ||
	    st.violations || after->missed)
		ok = false;
	if (sc->backing == B_DEV_NOMP) {
		/* no ->map_pages: every device fault retries */
		if (st.faults_vma_lock || !st.faults_mmap_lock || !sm.retries)
			ok = false;
	} else if (sc->backing >= B_DEV) {
		if (!st.faults_vma_lock || !sm.vma_done)
			ok = false;
	} else if (!sm.vma_done) {
		ok = false;
	}
	if (sc->op == op_pageout) {
		long out = vmstat("pswpout") - swpout0;

		/*
		 * Pages left (swapped out) and came back through faults:
		 * major ones from zram (synchronous swap-in); from a disk the
		 * refaults mostly hit the swap cache while writeback runs.
		 */
		ksft_print_msg("%s: %ld pages swapped out to %s, %ld major faults\n",
			       sc->name, out, swap_dev, maj);
		if (out <= 0 || !sm.user ||
		    (!strcmp(swap_dev, "/dev/zram0") && maj <= 0))
			ok = false;
	}
	if (sc->op == op_collapse) {
		ksft_print_msg("%s: MADV_COLLAPSE succeeded %lu times, THP seen %lu times; last error: %s\n",
			       sc->name, atomic_load(&n_collapsed),
			       atomic_load(&n_thp),
			       collapse_errno ? strerror(collapse_errno) : "none");
		if (!atomic_load(&n_thp))
			ok = false;
	}
	if (sc->uffd) {
		ksft_print_msg("%s: %lu userfaultfd faults seen\n", sc->name,
			       atomic_load(&n_uffd));
		if (!atomic_load(&n_uffd))
			ok = false;
	}
	if (sc->want_fallback && !(sm.aborts + sm.retries)) {
		ksft_print_msg("%s: no fault fell back to mmap_lock\n",
			       sc->name);
		ok = false;
	}
	if (flags & SPF_OBS_F_BROKEN_FAST)
		return observer_agrees(sc, after, &sm, ru, true);
	if (!observer_agrees(sc, after, &sm, ru, false))
		ok = false;
	return ok;
}

/*
 * The negative control of FAST == EXACT: with the broken FAST switch on
 * (proved active by SPF_FEAT_BROKEN_FAST), a scenario whose faults retry
 * must show FAST != EXACT.
 */
static void run_broken_fast(int fd, int slot)
{
	const struct scenario *sc = NULL;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(scenarios); i++)
		if (scenarios[i].backing == B_DEV_NOMP)
			sc = &scenarios[i];
	ksft_test_result(sc && !run(sc, fd, slot, SPF_OBS_EXACT,
				    SPF_OBS_F_BROKEN_FAST),
			 "fast_eq_exact_catches_broken_fast\n");
}

int main(int argc, char **argv)
{
	unsigned long taint;
	size_t i;
	int fd, slot, uffd_err;
	cpu_set_t cpus, one, rest;

	ksft_print_header();
	spf_load_or_skip();
	spf_catch_signals();
	taint = spf_taint();
	fd = spf_obs_open(SPF_OBS_EXACT);
	if (fd == -EBUSY)
		ksft_exit_skip("the spf_harness observer is owned by another process\n");
	if (fd < 0)
		ksft_exit_fail_msg("observer: %s\n", strerror(-fd));
	slot = spf_obs_track_self(fd);
	if (slot < 0)
		ksft_exit_fail_msg("track: %s\n", strerror(-slot));
	ksft_print_msg("%zu scenarios, %d readers, %.1fs each\n",
		       ARRAY_SIZE(scenarios), NREADERS, secs());
	ksft_set_plan(2 * ARRAY_SIZE(scenarios) + 1);
	if (!swap_setup())
		ksft_print_msg("no swap: %s\n", swap_why);
	uffd_err = uffd_open();
	if (uffd_err >= 0) {
		close(uffd_err);
		uffd_err = 0;
	}
	for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
		const struct scenario *sc = &scenarios[i];

		if (argc >= 2 && !strstr(sc->name, argv[1])) {
			ksft_test_result_skip("%s: not selected\n", sc->name);
			ksft_test_result_skip("%s_fast: not selected\n",
					      sc->name);
		} else if (sc->op == op_pageout && !kml_swap_active()) {
			ksft_test_result_fail("%s: no swap: %s\n", sc->name,
					      swap_why);
			ksft_test_result_fail("%s_fast: no swap\n", sc->name);
		} else if (sc->op == op_uffd_close &&
			   !kml_cpu_split(&cpus, &one, &rest)) {
			ksft_test_result_skip("%s: needs two CPUs (the stock kernel can livelock on one: Documentation/spf.rst)\n",
					      sc->name);
			ksft_test_result_skip("%s_fast: needs two CPUs\n",
					      sc->name);
		} else if (sc->uffd && uffd_err) {
			ksft_test_result_skip("%s: userfaultfd: %s\n",
					      sc->name, strerror(-uffd_err));
			ksft_test_result_skip("%s_fast: userfaultfd: %s\n",
					      sc->name, strerror(-uffd_err));
		} else {
			ksft_test_result(run(sc, fd, slot, SPF_OBS_EXACT, 0),
					 "%s\n", sc->name);
			ksft_test_result(run(sc, fd, slot, SPF_OBS_FAST, 0),
					 "%s_fast\n", sc->name);
		}
	}
	run_broken_fast(fd, slot);
	swap_teardown();
	close(fd);
	spf_unload();
	if ((spf_taint() & TAINT_WARN) && !(taint & TAINT_WARN))
		ksft_exit_fail_msg("kernel WARN taint set during the test\n");
	ksft_finished();
}
