// SPDX-License-Identifier: GPL-2.0
/*
 * spf-bench - page-fault throughput and per-VMA lock behaviour.
 *
 * Each worker thread loops: mmap a region, touch every page, munmap
 * (will-it-scale page_fault1/2/3 style). Actual faults are counted with
 * getrusage(RUSAGE_THREAD), so THP shows as fewer, larger faults. With
 * spf_harness loaded, the observer (tracking this process only) gives the
 * share of faults completed under the VMA lock, aborts and retries.
 * An optional writer thread churns its own region of the same mm and its
 * operation latency is reported as percentiles.
 *
 * Configurations are run interleaved, --reps times; medians are printed.
 * With --latency the observer also times every fault (SPF_OBS_F_LATENCY)
 * and a table of latency by outcome (p50/p99/max from its log2
 * histograms) follows; --plot FILE writes the histograms as a PNG
 * (gnuplot).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "kml.h"
#include "spfobs.h"

#define EXT4_MAGIC	0xEF53
#define TMPFS_MAGIC	0x01021994
#define HPAGE		(2UL << 20)
#define MAX_THREADS	64
#define MAX_LAT		(1u << 20)
#define BATCH		16		/* pages timed together */
#define MAX_BATCHES	(1u << 16)	/* per worker and run */

/*
 * cold-ext4: a file with data on ext4, its page cache dropped before
 * every iteration and read with MADV_RANDOM: every fault a page-cache
 * miss (I/O; the VMA lock is dropped for it and the fault retried).
 * swapin: anonymous pages written, paged out (MADV_PAGEOUT: needs swap),
 * then read back: swap-in faults.
 */
enum wl { WL_ANON, WL_PRIV_TMPFS, WL_SHARED_TMPFS, WL_PRIV_EXT4,
	  WL_SHARED_EXT4, WL_DEV, WL_DEV_MP, WL_COLD_EXT4, WL_SWAPIN, WL_NR };
static const char *const wl_names[WL_NR] = {
	"anon", "private-tmpfs", "shared-tmpfs", "private-ext4",
	"shared-ext4", "dev", "dev-mp", "cold-ext4", "swapin",
};

static const char *const lat_names[SPF_LAT_NR] = {
	"vma", "vma_major", "fallback", "fallback_major", "retry",
	"retry_major", "error",
};

enum wr { WR_NONE, WR_MUNMAP, WR_MPROTECT, WR_MREMAP, WR_DONTNEED, WR_NR };
static const char *const wr_names[WR_NR] = {
	"none", "munmap", "mprotect", "mremap", "dontneed",
};

static const char *const obs_names[] = { "off", "fast", "exact" };

struct opts {
	unsigned int wl_mask;
	unsigned int threads[8];
	int nthreads;
	uint64_t size;
	double duration;
	int thp;		/* -1 keep, 0 off, 1 on */
	unsigned int wr_mask;
	uint64_t wsize;
	int reps;
	unsigned int obs_mask;	/* SPF_OBS_* modes to compare */
	bool obs_set;
	const char *tmpdir;
	const char *ext4dir;
	bool json;
	bool quiet;
	bool latency;
	const char *plot;
	uint64_t slow_ns;	/* --slow-ns: spf_slow_fault threshold, 0 none */
};

struct cfg {
	enum wl wl;
	unsigned int threads;
	enum wr wr;
	int obs;		/* SPF_OBS_* of this configuration */
	/* per repetition */
	double *fps;
	double *vma_share, *aborts_k, *retries_k, *viol;
	double *w_p50, *w_p99, *w_ops;
	double *fault_ns;	/* median ns per page touch, see worker_fn() */
	double *ru_faults;	/* getrusage(RUSAGE_SELF) min+maj delta */
	double *obs_faults;	/* the same, as the observer accounts it */
	/* --latency: histograms summed over repetitions */
	struct spf_latency *lat;
	uint64_t lat_completed;	/* completed user passes, all reps */
};

struct worker {
	pthread_t tid;
	const struct opts *o;
	enum wl wl;
	int fd;			/* file or device, -1 for anon */
	uint64_t faults;
	uint64_t pages;
	uint64_t *bt;		/* batch durations (ns) */
	size_t nbt;
	int err;
};

static atomic_int stop_flag;
static pthread_barrier_t start_barrier;

/* ---- workers -------------------------------------------------------- */

static bool wl_is_dev(enum wl wl)
{
	return wl == WL_DEV || wl == WL_DEV_MP;
}

static bool wl_is_shared(enum wl wl)
{
	return wl == WL_SHARED_TMPFS || wl == WL_SHARED_EXT4 ||
	       wl == WL_COLD_EXT4 || wl_is_dev(wl);
}

static bool wl_is_ext4(enum wl wl)
{
	return wl == WL_PRIV_EXT4 || wl == WL_SHARED_EXT4 || wl == WL_COLD_EXT4;
}

/* read-only mappings: the device, and the cold file (reads only) */
static bool wl_is_ro(enum wl wl)
{
	return wl_is_dev(wl) || wl == WL_COLD_EXT4;
}

/* Fill @fd with @len bytes of data on disk (not a sparse file). */
static int fill_file(int fd, uint64_t len)
{
	static char buf[1 << 16];
	uint64_t off;
	ssize_t n;

	memset(buf, 0x5a, sizeof(buf));
	for (off = 0; off < len; off += (uint64_t)n) {
		n = pwrite(fd, buf, len - off < sizeof(buf) ? len - off :
				    sizeof(buf), (off_t)off);
		if (n <= 0)
			return -(n ? errno : EIO);
	}
	return fsync(fd) ? -errno : 0;
}

/*
 * One end of a measured interval: the observer's counters (if on) and
 * getrusage(RUSAGE_SELF), taken twice (see spf_snap()). Returns 0 or
 * -errno of the observer's read.
 */
static int bench_snap(int obs_fd, int slot, struct spf_snap *s,
		      struct spf_latency *lat)
{
	int i, ret = 0;

	for (i = 0; i < 2; i++) {
		if (lat)
			memset(lat, 0, sizeof(*lat));
		if (obs_fd >= 0) {
			ret = spf_snap(obs_fd, (uint32_t)slot, s);
			if (!ret && lat) {
				lat->scope = (uint32_t)slot;
				if (ioctl(obs_fd, SPF_IOC_LAT_READ, lat))
					ret = -errno;
			}
		} else {
			memset(s, 0, sizeof(*s));
			getrusage(RUSAGE_SELF, &s->ru);
		}
	}
	return ret;
}

static uint64_t thread_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

static int open_backing(const struct opts *o, enum wl wl)
{
	struct spf_dev_setup s = { .size = o->size };
	const char *dir;
	char path[4096];
	int fd;

	if (wl == WL_ANON || wl == WL_SWAPIN)
		return -1;
	if (wl_is_dev(wl)) {
		fd = open(SPF_DEV_PATH, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		s.flags = wl == WL_DEV_MP ? SPF_DEV_MAP_PAGES : 0;
		if (ioctl(fd, SPF_IOC_DEV_SETUP, &s)) {
			close(fd);
			return -errno;
		}
		return fd;
	}
	dir = wl_is_ext4(wl) ? o->ext4dir : o->tmpdir;
	snprintf(path, sizeof(path), "%s/spf-bench.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (ftruncate(fd, (off_t)o->size)) {
		close(fd);
		return -errno;
	}
	if (wl == WL_COLD_EXT4) {
		int ret = fill_file(fd, o->size);

		if (ret) {
			close(fd);
			return ret;
		}
	}
	return fd;
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	const struct opts *o = w->o;
	size_t len = o->size, maplen = len;
	bool shared = wl_is_shared(w->wl), ro = wl_is_ro(w->wl);
	int prot = ro ? PROT_READ : PROT_READ | PROT_WRITE;
	int flags = (shared ? MAP_SHARED : MAP_PRIVATE) |
		    (w->fd < 0 ? MAP_ANONYMOUS : 0);
	uint64_t f0, t = 0;
	size_t off;

	if (o->thp == 1 && w->wl == WL_ANON)
		maplen = len + HPAGE;	/* room to align to 2M */
	pthread_barrier_wait(&start_barrier);
	f0 = thread_faults();
	while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
		char *map = mmap(NULL, maplen, prot, flags, w->fd, 0);
		volatile char *p;

		if (map == MAP_FAILED) {
			w->err = errno;
			break;
		}
		p = (volatile char *)map;
		if (maplen != len)
			p = (volatile char *)(((uintptr_t)map + HPAGE - 1) &
					      ~(HPAGE - 1));
		if (o->thp >= 0 && w->wl == WL_ANON)
			madvise((void *)p, len,
				o->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		if (w->wl == WL_COLD_EXT4) {
			/* drop the clean cache: every read a miss, no readahead */
			posix_fadvise(w->fd, 0, (off_t)len, POSIX_FADV_DONTNEED);
			madvise((void *)p, len, MADV_RANDOM);
		}
		if (w->wl == WL_SWAPIN) {
			madvise((void *)p, len, MADV_NOHUGEPAGE);
			for (off = 0; off < len; off += 4096)
				p[off] = 1;
			if (madvise((void *)p, len, MADV_PAGEOUT)) {
				w->err = errno;
				munmap(map, maplen);
				break;
			}
		}
		/*
		 * Time every BATCH touches: on a shared host the vCPU is
		 * descheduled now and then, and the median batch time is the
		 * cost of a fault when it was not (wall-clock faults/s is not).
		 */
		for (off = 0; off < len; off += 4096) {
			if (!(off / 4096 % BATCH))
				t = kml_now_ns();
			if (ro || w->wl == WL_SWAPIN)
				(void)p[off];
			else
				p[off] = 1;
			if (off / 4096 % BATCH == BATCH - 1 &&
			    w->nbt < MAX_BATCHES)
				w->bt[w->nbt++] = kml_now_ns() - t;
		}
		w->pages += len / 4096;
		munmap(map, maplen);
	}
	w->faults = thread_faults() - f0;
	return NULL;
}

/* ---- writer --------------------------------------------------------- */

struct writer {
	pthread_t tid;
	enum wr op;
	size_t len;
	uint64_t *lat;
	size_t n;
	int err;
};

static void touch(char *p, size_t len)
{
	size_t off;

	for (off = 0; off < len; off += 4096)
		((volatile char *)p)[off] = 1;
}

static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	int prot = PROT_READ | PROT_WRITE;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	char *p, *alt = NULL, *q;
	bool ro = false;
	uint64_t t0;
	int ret = 0;

	p = mmap(NULL, w->len, prot, flags, -1, 0);
	if (p == MAP_FAILED) {
		w->err = errno;
		pthread_barrier_wait(&start_barrier);
		return NULL;
	}
	if (w->op == WR_MREMAP) {
		/* a reserved destination to move to and back from */
		alt = mmap(NULL, w->len, PROT_NONE, flags, -1, 0);
		if (alt == MAP_FAILED) {
			w->err = errno;
			alt = NULL;
		}
	}
	touch(p, w->len);
	pthread_barrier_wait(&start_barrier);
	while (!w->err &&
	       !atomic_load_explicit(&stop_flag, memory_order_relaxed) &&
	       w->n < MAX_LAT) {
		t0 = kml_now_ns();
		switch (w->op) {
		case WR_MUNMAP:
			/* Another thread may take the hole: then map anywhere. */
			ret = munmap(p, w->len);
			q = mmap(p, w->len, prot, flags | MAP_FIXED_NOREPLACE,
				 -1, 0);
			if (q == MAP_FAILED)
				q = mmap(NULL, w->len, prot, flags, -1, 0);
			if (q == MAP_FAILED)
				ret = -1;
			else
				p = q;
			break;
		case WR_MPROTECT:
			ro = !ro;
			ret = mprotect(p, w->len, ro ? PROT_READ : prot);
			break;
		case WR_MREMAP:
			q = mremap(p, w->len, w->len,
				   MREMAP_MAYMOVE | MREMAP_FIXED, alt);
			if (q == MAP_FAILED) {
				ret = -1;
				break;
			}
			/* Reserve the old place again (never MREMAP_FIXED
			 * over a hole another thread may have mapped).
			 */
			alt = mmap(p, w->len, PROT_NONE,
				   flags | MAP_FIXED_NOREPLACE, -1, 0);
			if (alt == MAP_FAILED)
				alt = mmap(NULL, w->len, PROT_NONE, flags,
					   -1, 0);
			p = q;
			if (alt == MAP_FAILED) {
				alt = NULL;
				ret = -1;
			}
			break;
		case WR_DONTNEED:
			ret = madvise(p, w->len, MADV_DONTNEED);
			break;
		default:
			break;
		}
		w->lat[w->n++] = kml_now_ns() - t0;
		if (ret) {
			w->err = errno;
			break;
		}
		if (!ro)
			touch(p, w->len);
	}
	munmap(p, w->len);
	if (alt)
		munmap(alt, w->len);
	return NULL;
}

/* ---- one run -------------------------------------------------------- */

struct run_result {
	double fps;
	double fault_ns;
	struct spf_summary s;
	bool have_obs;
	uint64_t ru_faults, obs_faults;
	double w_p50, w_p99, w_ops;
	struct spf_latency lat;	/* --latency: this run's histograms */
	bool have_lat;
};

static int run_one(const struct opts *o, int obs_fd, int slot, struct cfg *c,
		   struct run_result *r)
{
	struct worker ws[MAX_THREADS];
	struct writer wr = { .op = c->wr, .len = o->wsize };
	struct spf_snap start, end;
	struct spf_latency *lat0 = NULL;
	unsigned int i, nthr = c->threads;
	uint64_t t0, t1, faults = 0;
	int obs_err;
	struct timespec ts;
	size_t n;
	int ret = 0;

	memset(ws, 0, sizeof(ws));
	memset(r, 0, sizeof(*r));
	for (i = 0; i < nthr; i++) {
		ws[i].o = o;
		ws[i].wl = c->wl;
		ws[i].bt = calloc(MAX_BATCHES, sizeof(*ws[i].bt));
		if (!ws[i].bt)
			kml_die(1, NULL, "out of memory");
		ws[i].fd = open_backing(o, c->wl);
		if (ws[i].fd < -1) {
			ret = ws[i].fd;
			free(ws[i].bt);
			while (i--) {
				if (ws[i].fd >= 0)
					close(ws[i].fd);
				free(ws[i].bt);
			}
			return ret;
		}
	}
	if (c->wr != WR_NONE) {
		wr.lat = calloc(MAX_LAT, sizeof(*wr.lat));
		if (!wr.lat)
			kml_die(1, NULL, "out of memory");
	}
	atomic_store(&stop_flag, 0);
	/*
	 * The kernel's own count of the same interval, every thread of the
	 * process: before any thread starts, after all are joined (twice at
	 * each end, see spf_snap()).
	 */
	if (o->latency && obs_fd >= 0) {
		lat0 = calloc(1, sizeof(*lat0));
		if (!lat0)
			kml_die(1, NULL, "out of memory");
	}
	r->have_lat = false;
	/* max_ns is kept since the last reset: make it this run's */
	if (lat0 && ioctl(obs_fd, SPF_IOC_RESET))
		kml_die(1, NULL, "cannot reset the observer: %s",
			strerror(errno));
	bench_snap(obs_fd, slot, &start, lat0);
	pthread_barrier_init(&start_barrier, NULL,
			     nthr + 1 + (c->wr != WR_NONE));
	for (i = 0; i < nthr; i++)
		pthread_create(&ws[i].tid, NULL, worker_fn, &ws[i]);
	if (c->wr != WR_NONE)
		pthread_create(&wr.tid, NULL, writer_fn, &wr);
	pthread_barrier_wait(&start_barrier);
	t0 = kml_now_ns();
	ts.tv_sec = (time_t)o->duration;
	ts.tv_nsec = (long)((o->duration - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	atomic_store(&stop_flag, 1);
	for (i = 0; i < nthr; i++) {
		pthread_join(ws[i].tid, NULL);
		/* gather every batch in ws[0].bt for the median */
		if (i) {
			n = ws[i].nbt;
			if (n > MAX_BATCHES - ws[0].nbt)
				n = MAX_BATCHES - ws[0].nbt;
			memcpy(ws[0].bt + ws[0].nbt, ws[i].bt,
			       n * sizeof(*ws[0].bt));
			ws[0].nbt += n;
		}
		faults += ws[i].faults;
		if (ws[i].err && !ret)
			ret = -ws[i].err;
		if (ws[i].fd >= 0)
			close(ws[i].fd);
	}
	t1 = kml_now_ns();
	if (c->wr != WR_NONE) {
		pthread_join(wr.tid, NULL);
		if (wr.err && !ret)
			ret = -wr.err;
		r->w_ops = (double)wr.n / ((double)(t1 - t0) / 1e9);
		r->w_p50 = (double)kml_percentile(wr.lat, wr.n, 50) / 1e3;
		r->w_p99 = (double)kml_percentile(wr.lat, wr.n, 99) / 1e3;
		free(wr.lat);
	}
	pthread_barrier_destroy(&start_barrier);
	r->fault_ns = (double)kml_percentile(ws[0].bt, ws[0].nbt, 50) / BATCH;
	for (i = 0; i < nthr; i++)
		free(ws[i].bt);
	obs_err = bench_snap(obs_fd, slot, &end, lat0 ? &r->lat : NULL);
	r->ru_faults = (uint64_t)(spf_snap_faults(&end) -
				  spf_snap_faults(&start));
	if (obs_fd >= 0 && !obs_err) {
		spf_delta(&end.c, &start.c);
		spf_summarize(&end.c, &r->s);
		r->have_obs = true;
		/* FAST: the workloads' passes neither fail nor retry in GUP */
		r->obs_faults = end.c.mode == SPF_OBS_EXACT ?
				spf_exact_accounted(&end.c, &r->s) :
				r->s.completed + r->s.kernel;
		if (lat0) {
			int b, k;

			for (k = 0; k < SPF_LAT_NR; k++)
				for (b = 0; b < SPF_LAT_BUCKETS; b++)
					r->lat.count[k][b] -= lat0->count[k][b];
			r->lat.lost -= lat0->lost;
			r->have_lat = true;
		}
	}
	free(lat0);
	r->fps = (double)faults / ((double)(t1 - t0) / 1e9);
	return ret;
}

/* ---- statistics and output ------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double tmp[256];
	int i;

	if (n <= 0)
		return 0;
	for (i = 0; i < n && i < 256; i++)
		tmp[i] = v[i];
	qsort(tmp, (size_t)i, sizeof(double), cmp_double);
	return i % 2 ? tmp[i / 2] : (tmp[i / 2 - 1] + tmp[i / 2]) / 2;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: spf-bench [options]\n"
		"Page-fault throughput and per-VMA lock behaviour (needs spf_harness for\n"
		"the VMA-lock columns; runs without it).\n\n"
		"  -w, --workload LIST   anon,private-tmpfs,shared-tmpfs,private-ext4,\n"
		"                        shared-ext4,dev,dev-mp,cold-ext4 (page cache\n"
		"                        dropped every iteration), swapin (paged out and\n"
		"                        read back: needs swap) or all (default anon)\n"
		"  -t, --threads LIST    worker thread counts, e.g. 1,2 (default 1)\n"
		"  -s, --size SIZE       region per thread and iteration (default 16M)\n"
		"  -d, --duration SEC    seconds per run (default 1)\n"
		"  -r, --reps N          interleaved repetitions, medians reported (default 3)\n"
		"      --thp on|off|keep THP for anon regions via madvise (default keep)\n"
		"  -W, --writer LIST     none,munmap,mprotect,mremap,dontneed (default none)\n"
		"      --writer-size SIZE region the writer churns (default 1M)\n"
		"  -o, --observer LIST   off,fast,exact: modes compared in one run, interleaved\n"
		"                        (default fast when loaded); vs_off = median of\n"
		"                        per-repetition ratios to off\n"
		"      --tmpdir DIR      tmpfs directory (default /dev/shm)\n"
		"      --ext4-dir DIR    ext4 directory for the *-ext4 workloads\n"
		"      --latency         also time every fault by outcome (the observer's\n"
		"                        histograms: vma, fallback, retry, each minor/major,\n"
		"                        error) and print p50/p99/max per configuration\n"
		"      --plot FILE       with --latency: the histograms as a PNG (gnuplot)\n"
		"      --slow-ns NS      with --latency: trace faults that took >= NS ns\n"
		"                        (event spf_harness:spf_slow_fault; default none)\n"
		"      --json            JSON on stdout instead of a table\n"
		"  -q, --quiet           no progress on stderr\n"
		"  -h, --help            this text\n\n"
		"Columns: faults/s (all threads, wall clock); ns/touch = median time of a\n"
		"page touch (timed in batches of 16: robust to a descheduled vCPU);\n"
		"vs_off = median paired ratio of ns/touch to observer off, vs_offw the same\n"
		"from faults/s; vma%% = faults completed under the VMA\n"
		"lock / user faults, abort/k and retry/k per 1000 user faults, writer\n"
		"operation latency p50/p99 in microseconds.\n");
}

static unsigned int parse_list(const char *arg, const char *const *names,
			       int n, const char *what)
{
	char *dup = strdup(arg), *tok, *save = NULL;
	unsigned int mask = 0;
	int i;

	for (tok = strtok_r(dup, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "all")) {
			mask = (1u << n) - 1;
			continue;
		}
		for (i = 0; i < n; i++)
			if (!strcmp(tok, names[i]))
				break;
		if (i == n)
			kml_die(2, "see spf-bench --help for the names",
				"unknown %s '%s'", what, tok);
		mask |= 1u << i;
	}
	free(dup);
	if (!mask)
		kml_die(2, "give at least one name", "empty %s list", what);
	return mask;
}

static void parse_threads(struct opts *o, const char *arg)
{
	char *dup = strdup(arg), *tok, *save = NULL;
	uint64_t v;

	o->nthreads = 0;
	for (tok = strtok_r(dup, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (kml_parse_u64(tok, &v) || !v || v > MAX_THREADS)
			kml_die(2, "use 1..64, comma separated",
				"bad thread count '%s'", tok);
		if (o->nthreads == 8)
			kml_die(2, "give at most 8 counts", "too many counts");
		o->threads[o->nthreads++] = (unsigned int)v;
	}
	free(dup);
	if (!o->nthreads)
		kml_die(2, "e.g. -t 1,2", "empty thread list");
}

static void check_dir(const char *dir, long magic, const char *what)
{
	struct statfs sf;

	if (statfs(dir, &sf))
		kml_die(2, "give an existing directory",
			"%s '%s': %s", what, dir, strerror(errno));
	if (magic && sf.f_type != magic)
		kml_die(2, magic == EXT4_MAGIC ?
			"mount an ext4 filesystem and pass its directory" :
			"pass a tmpfs directory such as /dev/shm",
			"%s '%s' is not on %s", what, dir,
			magic == EXT4_MAGIC ? "ext4" : "tmpfs");
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "workload", required_argument, NULL, 'w' },
		{ "threads", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "reps", required_argument, NULL, 'r' },
		{ "thp", required_argument, NULL, 'T' },
		{ "writer", required_argument, NULL, 'W' },
		{ "writer-size", required_argument, NULL, 'S' },
		{ "observer", required_argument, NULL, 'o' },
		{ "tmpdir", required_argument, NULL, 'M' },
		{ "ext4-dir", required_argument, NULL, 'E' },
		{ "json", no_argument, NULL, 'j' },
		{ "latency", no_argument, NULL, 'L' },
		{ "plot", required_argument, NULL, 'P' },
		{ "slow-ns", required_argument, NULL, 'N' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	uint64_t v;
	char *end;
	int c;

	*o = (struct opts){ .wl_mask = 1u << WL_ANON, .threads = { 1 },
			    .nthreads = 1, .size = 16 << 20, .duration = 1,
			    .thp = -1, .wr_mask = 1u << WR_NONE,
			    .wsize = 1 << 20, .reps = 3,
			    .obs_mask = 1u << SPF_OBS_FAST,
			    .tmpdir = "/dev/shm" };
	while ((c = getopt_long(argc, argv, "w:t:s:d:r:W:o:qh", lo,
				NULL)) != -1) {
		switch (c) {
		case 'w':
			o->wl_mask = parse_list(optarg, wl_names, WL_NR,
						"workload");
			break;
		case 't':
			parse_threads(o, optarg);
			break;
		case 's':
		case 'S':
			if (kml_parse_size(optarg, &v) || v < 4096 ||
			    v % 4096 || v > (16ULL << 30))
				kml_die(2, "use a multiple of 4K up to 16G, e.g. 16M",
					"bad size '%s'", optarg);
			if (c == 's')
				o->size = v;
			else
				o->wsize = v;
			break;
		case 'd':
			errno = 0;
			o->duration = strtod(optarg, &end);
			if (errno || *end || !(o->duration >= 0.05 &&
					       o->duration <= 3600))
				kml_die(2, "use 0.05..3600 seconds",
					"bad duration '%s'", optarg);
			break;
		case 'r':
			if (kml_parse_u64(optarg, &v) || !v || v > 256)
				kml_die(2, "use 1..256", "bad reps '%s'",
					optarg);
			o->reps = (int)v;
			break;
		case 'T':
			if (!strcmp(optarg, "on"))
				o->thp = 1;
			else if (!strcmp(optarg, "off"))
				o->thp = 0;
			else if (!strcmp(optarg, "keep"))
				o->thp = -1;
			else
				kml_die(2, "use on, off or keep",
					"bad --thp '%s'", optarg);
			break;
		case 'W':
			o->wr_mask = parse_list(optarg, wr_names, WR_NR,
						"writer");
			break;
		case 'o':
			o->obs_mask = parse_list(optarg, obs_names, 3,
						 "observer mode");
			o->obs_set = true;
			break;
		case 'M':
			o->tmpdir = optarg;
			break;
		case 'E':
			o->ext4dir = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'L':
			o->latency = true;
			break;
		case 'P':
			o->plot = optarg;
			o->latency = true;
			break;
		case 'N':
			if (kml_parse_u64(optarg, &v) || !v)
				kml_die(2, "nanoseconds, e.g. --slow-ns 1000000 (1 ms)",
					"bad --slow-ns '%s'", optarg);
			o->slow_ns = v;
			o->latency = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc)
		kml_die(2, "see spf-bench --help", "unexpected argument '%s'",
			argv[optind]);
	if (o->wl_mask & ((1u << WL_PRIV_TMPFS) | (1u << WL_SHARED_TMPFS)))
		check_dir(o->tmpdir, TMPFS_MAGIC, "--tmpdir");
	if ((o->wl_mask & (1u << WL_SWAPIN)) && !kml_swap_active())
		kml_die(2, "swapon a swap device first (e.g. a zram device: modprobe zram; mkswap; swapon)",
			"the swapin workload needs swap: /proc/swaps lists none");
	if (o->plot && o->obs_mask == (1u << SPF_OBS_OFF))
		kml_die(2, "add -o fast or -o exact",
			"--plot needs the observer on");
	if (o->slow_ns && o->obs_mask == (1u << SPF_OBS_OFF))
		kml_die(2, "add -o fast or -o exact",
			"--slow-ns needs the observer on");
	if (o->wl_mask & ((1u << WL_PRIV_EXT4) | (1u << WL_SHARED_EXT4) |
			  (1u << WL_COLD_EXT4))) {
		if (!o->ext4dir)
			kml_die(2, "pass --ext4-dir DIR on an ext4 filesystem",
				"the ext4 workloads need a directory");
		check_dir(o->ext4dir, EXT4_MAGIC, "--ext4-dir");
	}
}

/*
 * Median over reps of this configuration's rate / the same one without
 * the observer in the same repetition (paired: host drifts cancel).
 * @wall: from wall-clock faults/s; else from the median fault time.
 */
static double ratio_vs_off(const struct opts *o, struct cfg *cfgs, int n,
			   const struct cfg *c, double *reps, bool wall)
{
	const struct cfg *off = NULL;
	int i;

	for (i = 0; i < n; i++)
		if (cfgs[i].wl == c->wl && cfgs[i].threads == c->threads &&
		    cfgs[i].wr == c->wr && cfgs[i].obs == SPF_OBS_OFF)
			off = &cfgs[i];
	if (!off || c->obs <= SPF_OBS_OFF)
		return 0;
	for (i = 0; i < o->reps; i++)
		if (wall)
			reps[i] = off->fps[i] > 0 ? c->fps[i] / off->fps[i] : 0;
		else
			reps[i] = c->fault_ns[i] > 0 ?
				  off->fault_ns[i] / c->fault_ns[i] : 0;
	return median(reps, o->reps);
}

static const char *obs_name(int obs)
{
	return obs < 0 ? "absent" : obs_names[obs];
}

static void obs_list(const struct opts *o, char *buf, size_t len)
{
	int i;

	buf[0] = 0;
	for (i = 0; i < 3; i++)
		if (o->obs_mask & (1u << i))
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
				 buf[0] ? "," : "", obs_names[i]);
}

/* ---- latency by outcome ------------------------------------------------ */

/* A zeroed histogram set if @want, else NULL. */
static struct spf_latency *lat_alloc(bool want)
{
	struct spf_latency *l = want ? calloc(1, sizeof(*l)) : NULL;

	if (want && !l)
		kml_die(1, NULL, "out of memory");
	return l;
}

static void lat_accumulate(struct cfg *c, const struct run_result *r)
{
	int k, b;

	if (!c->lat)
		return;
	for (k = 0; k < SPF_LAT_NR; k++) {
		for (b = 0; b < SPF_LAT_BUCKETS; b++)
			c->lat->count[k][b] += r->lat.count[k][b];
		c->lat->sum_ns[k] += r->lat.sum_ns[k];
		if (r->lat.max_ns[k] > c->lat->max_ns[k])
			c->lat->max_ns[k] = r->lat.max_ns[k];
	}
	c->lat->lost += r->lat.lost;
	c->lat_completed += r->s.completed;
}

static uint64_t lat_count(const struct spf_latency *l, int k)
{
	uint64_t n = 0;
	int b;

	for (b = 0; b < SPF_LAT_BUCKETS; b++)
		n += l->count[k][b];
	return n;
}

/*
 * The @q quantile (0..1) of outcome @k in ns, interpolated linearly
 * within its log2 bucket [2^b, 2^(b+1)): exact to a factor of 2.
 */
static double lat_quantile(const struct spf_latency *l, int k, double q)
{
	double target = q * (double)lat_count(l, k), cum = 0, lo, hi;
	int b;

	for (b = 0; b < SPF_LAT_BUCKETS; b++) {
		double c = (double)l->count[k][b];

		if (c > 0 && cum + c >= target) {
			lo = b ? (double)(1ULL << b) : 0;
			hi = (double)(1ULL << (b + 1));
			return lo + (target - cum) / c * (hi - lo);
		}
		cum += c;
	}
	return 0;
}

static void print_lat_table(struct cfg *cfgs, int n)
{
	int i, k;

	printf("# latency by outcome: all repetitions, from the fault's start to its last\n"
	       "# handle_mm_fault() pass; p50/p99 within a log2 bucket (a factor of 2)\n");
	printf("%-14s %3s %-9s %-6s %-15s %9s %10s %10s %10s\n", "workload",
	       "thr", "writer", "obs", "outcome", "faults", "p50_us",
	       "p99_us", "max_us");
	for (i = 0; i < n; i++) {
		struct cfg *c = &cfgs[i];

		if (!c->lat)
			continue;
		for (k = 0; k < SPF_LAT_NR; k++) {
			uint64_t cnt = lat_count(c->lat, k);

			if (!cnt)
				continue;
			printf("%-14s %3u %-9s %-6s %-15s %9" PRIu64 " %10.1f %10.1f %10.1f\n",
			       wl_names[c->wl], c->threads, wr_names[c->wr],
			       obs_name(c->obs), lat_names[k], cnt,
			       lat_quantile(c->lat, k, 0.5) / 1e3,
			       lat_quantile(c->lat, k, 0.99) / 1e3,
			       (double)c->lat->max_ns[k] / 1e3);
		}
	}
}

static void json_lat(struct kml_json *j, const struct cfg *c)
{
	uint64_t total = 0, cnt;
	int k, b;

	kml_json_obj_begin(j, "latency");
	for (k = 0; k < SPF_LAT_NR; k++) {
		cnt = lat_count(c->lat, k);
		total += cnt;
		kml_json_obj_begin(j, lat_names[k]);
		kml_json_u64(j, "faults", cnt);
		kml_json_double(j, "p50_us", lat_quantile(c->lat, k, 0.5) / 1e3);
		kml_json_double(j, "p99_us", lat_quantile(c->lat, k, 0.99) / 1e3);
		kml_json_double(j, "max_us", (double)c->lat->max_ns[k] / 1e3);
		kml_json_arr_begin(j, "log2_ns_buckets");
		for (b = 0; b < SPF_LAT_BUCKETS; b++)
			kml_json_u64(j, NULL, c->lat->count[k][b]);
		kml_json_arr_end(j);
		kml_json_obj_end(j);
	}
	/* the histograms must hold every completed user pass once */
	kml_json_u64(j, "histogram_faults", total);
	kml_json_u64(j, "lost", c->lat->lost);
	kml_json_u64(j, "completed_user_passes", c->lat_completed);
	kml_json_obj_end(j);
}

/*
 * The histograms as a PNG: one line per configuration and outcome, the
 * share of its faults per log2 bucket over the bucket's lower bound in
 * microseconds (log scale). gnuplot draws it. Returns 0 or -1.
 */
static int write_plot(const char *png, struct cfg *cfgs, int n)
{
	char dat[] = "/tmp/spf-bench-plot.XXXXXX";
	int i, k, b, fd, series = 0, st;
	FILE *f, *g;

	fd = mkstemp(dat);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(dat);
		return -1;
	}
	for (i = 0; i < n; i++)
		for (k = 0; cfgs[i].lat && k < SPF_LAT_NR; k++) {
			uint64_t cnt = lat_count(cfgs[i].lat, k);

			if (!cnt)
				continue;
			fprintf(f, "# %s/%u/%s/%s %s\n", wl_names[cfgs[i].wl],
				cfgs[i].threads, wr_names[cfgs[i].wr],
				obs_name(cfgs[i].obs), lat_names[k]);
			for (b = 0; b < SPF_LAT_BUCKETS; b++)
				if (cfgs[i].lat->count[k][b])
					fprintf(f, "%g %g\n",
						(double)(1ULL << b) / 1e3,
						(double)cfgs[i].lat->count[k][b] /
						(double)cnt);
			fprintf(f, "\n\n");
			series++;
		}
	fclose(f);
	if (!series) {
		unlink(dat);
		return -1;
	}
	g = popen("gnuplot", "w");
	if (!g) {
		unlink(dat);
		return -1;
	}
	fprintf(g, "set terminal pngcairo size 1200,700 noenhanced\n"
		"set output '%s'\n"
		"set title 'spf-bench: fault latency by outcome (log2 buckets)'\n"
		"set logscale x 2\nset xlabel 'fault time, us (bucket lower bound)'\n"
		"set ylabel 'share of the outcome''s faults'\nset key outside right\n"
		"set grid\nplot", png);
	series = 0;
	for (i = 0; i < n; i++)
		for (k = 0; cfgs[i].lat && k < SPF_LAT_NR; k++) {
			if (!lat_count(cfgs[i].lat, k))
				continue;
			fprintf(g, "%s '%s' index %d with linespoints title '%s/%u/%s/%s %s'",
				series ? "," : "", dat, series,
				wl_names[cfgs[i].wl], cfgs[i].threads,
				wr_names[cfgs[i].wr], obs_name(cfgs[i].obs),
				lat_names[k]);
			series++;
		}
	fprintf(g, "\n");
	st = pclose(g);
	unlink(dat);
	return st == 0 && !access(png, R_OK) ? 0 : -1;
}

static void print_table(const struct opts *o, struct cfg *cfgs, int n)
{
	double tmp[256];
	char sz[KML_SIZE_BUF], ol[32];
	int i;

	obs_list(o, ol, sizeof(ol));
	printf("# spf-bench: size %s/thread, %.2fs x %d reps (interleaved, medians), thp %s, observer %s\n",
	       kml_format_size(o->size, sz, sizeof(sz)), o->duration, o->reps,
	       o->thp < 0 ? "keep" : o->thp ? "on" : "off",
	       cfgs[0].obs < 0 ? "absent" : ol);
	printf("%-14s %3s %-9s %-6s %10s %8s %7s %7s %6s %8s %8s %5s %10s %10s %9s\n",
	       "workload", "thr", "writer", "obs", "faults/s", "ns/touch",
	       "vs_off", "vs_offw", "vma%", "abort/k", "retry/k", "viol",
	       "w_p50_us", "w_p99_us", "w_ops/s");
	for (i = 0; i < n; i++) {
		struct cfg *c = &cfgs[i];
		double r = ratio_vs_off(o, cfgs, n, c, tmp, false);
		double rw = ratio_vs_off(o, cfgs, n, c, tmp, true);

		printf("%-14s %3u %-9s %-6s %10.0f %8.0f ", wl_names[c->wl],
		       c->threads, wr_names[c->wr], obs_name(c->obs),
		       median(c->fps, o->reps), median(c->fault_ns, o->reps));
		if (r > 0)
			printf("%7.3f %7.3f ", r, rw);
		else
			printf("%7s %7s ", "-", "-");
		if (c->obs > SPF_OBS_OFF)
			printf("%6.1f %8.1f %8.1f %5.0f ",
			       median(c->vma_share, o->reps),
			       median(c->aborts_k, o->reps),
			       median(c->retries_k, o->reps),
			       median(c->viol, o->reps));
		else
			printf("%6s %8s %8s %5s ", "-", "-", "-", "-");
		if (c->wr != WR_NONE)
			printf("%10.1f %10.1f %9.0f\n",
			       median(c->w_p50, o->reps),
			       median(c->w_p99, o->reps),
			       median(c->w_ops, o->reps));
		else
			printf("%10s %10s %9s\n", "-", "-", "-");
	}
}

static void json_arr(struct kml_json *j, const char *key, const double *v,
		     int n)
{
	int i;

	kml_json_arr_begin(j, key);
	for (i = 0; i < n; i++)
		kml_json_double(j, NULL, v[i]);
	kml_json_arr_end(j);
}

static void print_json(const struct opts *o, struct cfg *cfgs, int n)
{
	double tmp[256];
	struct kml_json j;
	char ol[32];
	int i;

	kml_json_init(&j, stdout);
	kml_json_obj_begin(&j, NULL);
	kml_json_u64(&j, "size", o->size);
	kml_json_double(&j, "duration_s", o->duration);
	kml_json_u64(&j, "reps", (uint64_t)o->reps);
	kml_json_str(&j, "thp", o->thp < 0 ? "keep" : o->thp ? "on" : "off");
	obs_list(o, ol, sizeof(ol));
	kml_json_str(&j, "observer", cfgs[0].obs < 0 ? "absent" : ol);
	kml_json_arr_begin(&j, "results");
	for (i = 0; i < n; i++) {
		struct cfg *c = &cfgs[i];

		kml_json_obj_begin(&j, NULL);
		kml_json_str(&j, "workload", wl_names[c->wl]);
		kml_json_u64(&j, "threads", c->threads);
		kml_json_str(&j, "writer", wr_names[c->wr]);
		kml_json_str(&j, "observer", obs_name(c->obs));
		kml_json_double(&j, "faults_per_s", median(c->fps, o->reps));
		json_arr(&j, "faults_per_s_reps", c->fps, o->reps);
		kml_json_double(&j, "touch_ns", median(c->fault_ns, o->reps));
		json_arr(&j, "touch_ns_reps", c->fault_ns, o->reps);
		if (ratio_vs_off(o, cfgs, n, c, tmp, false) > 0) {
			kml_json_double(&j, "ratio_vs_off",
					median(tmp, o->reps));
			json_arr(&j, "ratio_vs_off_reps", tmp, o->reps);
			ratio_vs_off(o, cfgs, n, c, tmp, true);
			kml_json_double(&j, "ratio_vs_off_wall",
					median(tmp, o->reps));
			json_arr(&j, "ratio_vs_off_wall_reps", tmp, o->reps);
		}
		if (c->obs > SPF_OBS_OFF) {
			kml_json_double(&j, "vma_lock_pct",
					median(c->vma_share, o->reps));
			json_arr(&j, "vma_lock_pct_reps", c->vma_share,
				 o->reps);
			kml_json_double(&j, "aborts_per_1000",
					median(c->aborts_k, o->reps));
			kml_json_double(&j, "retries_per_1000",
					median(c->retries_k, o->reps));
			kml_json_double(&j, "violations",
					median(c->viol, o->reps));
			/* the kernel as the oracle: must be equal, rep by rep */
			json_arr(&j, "kernel_faults_reps", c->ru_faults,
				 o->reps);
			json_arr(&j, "observer_faults_reps", c->obs_faults,
				 o->reps);
		}
		if (c->lat)
			json_lat(&j, c);
		if (c->wr != WR_NONE) {
			kml_json_double(&j, "writer_p50_us",
					median(c->w_p50, o->reps));
			kml_json_double(&j, "writer_p99_us",
					median(c->w_p99, o->reps));
			kml_json_double(&j, "writer_ops_per_s",
					median(c->w_ops, o->reps));
		}
		kml_json_obj_end(&j);
	}
	kml_json_arr_end(&j);
	kml_json_obj_end(&j);
	kml_json_finish(&j);
}

int main(int argc, char **argv)
{
	struct kml_progress prog;
	struct run_result r;
	struct cfg *cfgs;
	struct opts o;
	int obs_fd = -1, slot = -1, n = 0, i, k, rep, ret;
	static const char busy[] =
		"another process took the observer; run one user at a time";
	int cur_obs = SPF_OBS_OFF;
	unsigned int wl, wr, t, m;
	bool absent = false;

	kml_init(argv[0]);
	parse_opts(&o, argc, argv);

	if (o.wl_mask & ((1u << WL_DEV) | (1u << WL_DEV_MP)) &&
	    access(SPF_DEV_PATH, R_OK | W_OK))
		kml_die(1, "modprobe spf_harness (and run as root)",
			"the dev workloads need %s: %s", SPF_DEV_PATH,
			strerror(errno));
	if (o.obs_mask & ~(1u << SPF_OBS_OFF)) {
		obs_fd = spf_obs_open(SPF_OBS_OFF);
		if (obs_fd == -EBUSY)
			kml_die(1, "wait for the other user (one observer owner at a time)",
				"the spf_harness observer is in use");
		if (obs_fd < 0 && o.obs_set)
			kml_die(1, "modprobe spf_harness, or use --observer off",
				"cannot open the observer: %s",
				strerror(-obs_fd));
		if (obs_fd >= 0) {
			slot = spf_obs_track_self(obs_fd);
			if (slot < 0)
				kml_die(1, "untrack a process or reload spf_harness",
					"cannot track this process: %s",
					strerror(-slot));
		} else {
			if (!o.quiet)
				kml_warn("spf_harness not loaded: no VMA-lock columns (modprobe spf_harness)");
			absent = true;
			o.obs_mask = 1u << SPF_OBS_OFF;
		}
	}

	cfgs = calloc(WL_NR * WR_NR * 8 * 3, sizeof(*cfgs));
	if (!cfgs)
		kml_die(1, NULL, "out of memory");
	for (wl = 0; wl < WL_NR; wl++)
		for (t = 0; t < (unsigned int)o.nthreads; t++)
			for (wr = 0; wr < WR_NR; wr++)
				for (m = 0; m < 3; m++) {
					struct cfg *c = &cfgs[n];

					if (!(o.wl_mask & (1u << wl)) ||
					    !(o.wr_mask & (1u << wr)) ||
					    !(o.obs_mask & (1u << m)))
						continue;
					c->wl = wl;
					c->threads = o.threads[t];
					c->wr = wr;
					c->obs = absent ? -1 : (int)m;
					c->fps = calloc((size_t)o.reps * 11,
							sizeof(double));
					if (!c->fps)
						kml_die(1, NULL, "out of memory");
					c->vma_share = c->fps + o.reps;
					c->aborts_k = c->fps + 2 * o.reps;
					c->retries_k = c->fps + 3 * o.reps;
					c->viol = c->fps + 4 * o.reps;
					c->w_p50 = c->fps + 5 * o.reps;
					c->w_p99 = c->fps + 6 * o.reps;
					c->w_ops = c->fps + 7 * o.reps;
					c->fault_ns = c->fps + 8 * o.reps;
					c->ru_faults = c->fps + 9 * o.reps;
					c->obs_faults = c->fps + 10 * o.reps;
					c->lat = lat_alloc(o.latency && !absent &&
							   m != SPF_OBS_OFF);
					n++;
				}

	kml_progress_begin(&prog, "spf-bench", (uint64_t)n * o.reps, o.quiet);
	for (rep = 0; rep < o.reps; rep++)
		for (k = 0; k < n; k++) {
			/* rotate the order: no configuration always first */
			struct cfg *c = &cfgs[(k + rep) % n];

			kml_progress_update(&prog, (uint64_t)rep * n + k,
					    "%s x%u writer=%s observer=%s",
					    wl_names[c->wl], c->threads,
					    wr_names[c->wr], obs_name(c->obs));
			if (obs_fd >= 0 && c->obs != cur_obs) {
				struct spf_obs_config oc = {
					.mode = (uint32_t)c->obs,
					.flags = o.latency && c->obs > SPF_OBS_OFF ?
						 SPF_OBS_F_LATENCY : 0,
					/* slow-fault events: --slow-ns only */
					.slow_ns = !o.latency || c->obs == SPF_OBS_OFF ? 0 :
						   o.slow_ns ? o.slow_ns : ~0ULL,
				};

				if (ioctl(obs_fd, SPF_IOC_OBS_SET, &oc))
					kml_die(1, errno == EBUSY ? busy : NULL,
						"cannot set observer %s: %s",
						obs_name(c->obs),
						strerror(errno));
				cur_obs = c->obs;
			}
			ret = run_one(&o, c->obs > SPF_OBS_OFF ? obs_fd : -1,
				      (uint32_t)slot, c, &r);
			if (ret)
				kml_die(1, ret == -ENOMEM ?
					"use a smaller --size or fewer threads" :
					NULL, "%s x%u writer=%s failed: %s",
					wl_names[c->wl], c->threads,
					wr_names[c->wr], strerror(-ret));
			c->fps[rep] = r.fps;
			c->fault_ns[rep] = r.fault_ns;
			c->w_p50[rep] = r.w_p50;
			c->w_p99[rep] = r.w_p99;
			c->w_ops[rep] = r.w_ops;
			if (r.have_obs && r.s.user) {
				c->vma_share[rep] = 100.0 * (double)r.s.vma_done /
						    (double)r.s.user;
				c->aborts_k[rep] = 1000.0 * (double)r.s.aborts /
						   (double)r.s.user;
				c->retries_k[rep] = 1000.0 * (double)r.s.retries /
						    (double)r.s.user;
			}
			c->viol[rep] = (double)r.s.violations;
			c->ru_faults[rep] = (double)r.ru_faults;
			c->obs_faults[rep] = (double)r.obs_faults;
			if (r.have_lat)
				lat_accumulate(c, &r);
		}
	kml_progress_end(&prog);

	if (o.json) {
		print_json(&o, cfgs, n);
	} else {
		print_table(&o, cfgs, n);
		if (o.latency)
			print_lat_table(cfgs, n);
	}
	if (o.plot && write_plot(o.plot, cfgs, n))
		kml_die(1, "install gnuplot (Debian: apt-get install gnuplot-nox; make deps)",
			"cannot write the plot %s", o.plot);
	for (i = 0; i < n; i++) {
		free(cfgs[i].fps);
		free(cfgs[i].lat);
	}
	free(cfgs);
	if (obs_fd >= 0)
		close(obs_fd);
	return 0;
}
