// SPDX-License-Identifier: GPL-2.0
/*
 * pcmig-bench - pcmig against its floors, measured in the same run:
 *
 *  1. fault latency: a thread touches missing pages of the destination
 *     region during postcopy over TCP loopback (touch -> return), against
 *     the floor = a 4 KiB TCP loopback round trip + a local userfaultfd
 *     fault resolved by UFFDIO_COPY (touch -> return, same machine, no
 *     network), and against the strict floor = RTT + the UFFDIO_COPY
 *     ioctl alone; pcmig faults and floor samples are taken in
 *     interleaved rounds, so host load changes hit both alike;
 *  2. background throughput: the postcopy stream of the whole region
 *     (RUN -> every page placed) against a plain TCP loopback stream of the
 *     same size received straight into memory;
 *  3. recovery: from a new connection to postcopy-active after a link
 *     failure, for the whole region (bitmap exchange included).
 *
 * Source and destination run in this process (two libpcmig sessions over a
 * real TCP loopback connection). Results: a markdown table of ratios.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kml.h"
#include "pcmig.h"
#include "workload.h"

#define PG PCM_PAGE_SIZE

static uint64_t nsamples = 20000;

/* interleaved rounds of pcmig faults and floor measurements */
#define ROUNDS	10
static double round_ratio[ROUNDS];

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static bool quiet;

struct lat {
	uint64_t p50, p99;
};

static struct lat summarize(uint64_t *v, size_t n)
{
	struct lat l = { kml_percentile(v, n, 50), kml_percentile(v, n, 99) };

	return l;
}

/* ---- floor 1: 4 KiB TCP loopback round trip ---- */

static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (void *)&sa, sl) || listen(l, 1) ||
	    getsockname(l, (void *)&sa, &sl))
		return -1;
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(*a, (void *)&sa, sl))
		return -1;
	*b = accept(l, NULL, NULL);
	close(l);
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return *b < 0 ? -1 : 0;
}

static int rd(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return -1;
		p = (char *)p + r;
		n -= r;
	}
	return 0;
}

static void *echo_thread(void *arg)
{
	int fd = *(int *)arg;
	char req[48], page[PG + 48];

	memset(page, 0x5a, sizeof(page));
	/* answer like pcmig: a 48-byte request, a 4 KiB + 48-byte page */
	while (!rd(fd, req, sizeof(req)))
		if (write(fd, page, sizeof(page)) != sizeof(page))
			break;
	return NULL;
}

struct rttx {
	int a, b;
	pthread_t t;
};

static void rtt_open(struct rttx *x)
{
	char req[48] = { 0 }, page[PG + 48];
	int i;

	if (tcp_pair(&x->a, &x->b))
		kml_die(1, "is loopback up?", "loopback TCP: %s",
			strerror(errno));
	pthread_create(&x->t, NULL, echo_thread, &x->b);
	for (i = 0; i < 1000; i++)	/* warm-up */
		if (write(x->a, req, sizeof(req)) != sizeof(req) ||
		    rd(x->a, page, sizeof(page)))
			kml_die(1, NULL, "loopback TCP round trip failed");
}

/* @n round trips (48-byte request, 4 KiB + 48-byte answer) into @v */
static void rtt_batch(struct rttx *x, uint64_t *v, uint64_t n)
{
	char req[48] = { 0 }, page[PG + 48];
	uint64_t i;

	for (i = 0; i < n; i++) {
		uint64_t t0 = kml_now_ns();

		if (write(x->a, req, sizeof(req)) != sizeof(req) ||
		    rd(x->a, page, sizeof(page)))
			kml_die(1, NULL, "loopback TCP round trip failed");
		v[i] = kml_now_ns() - t0;
	}
}

static void rtt_close(struct rttx *x)
{
	close(x->a);
	pthread_join(x->t, NULL);
	close(x->b);
}

/* ---- floor 2: a local userfaultfd fault resolved with UFFDIO_COPY ---- */

struct local_uffd {
	int uffd;
	uint64_t *copy_ns;
	uint64_t ncopy;
};

static void *local_handler(void *arg)
{
	struct local_uffd *u = arg;
	static char page[PG];
	struct uffd_msg m;

	memset(page, 0x33, sizeof(page));
	while (read(u->uffd, &m, sizeof(m)) == sizeof(m)) {
		struct uffdio_copy c = {
			.dst = m.arg.pagefault.address & ~(uint64_t)(PG - 1),
			.src = (uintptr_t)page, .len = PG,
		};
		uint64_t t0 = kml_now_ns();

		if (ioctl(u->uffd, UFFDIO_COPY, &c) && errno != EEXIST)
			break;
		if (u->ncopy < nsamples)
			u->copy_ns[u->ncopy++] = kml_now_ns() - t0;
	}
	return NULL;
}

struct lfx {
	struct local_uffd u;
	volatile char *p;
	uint64_t next;
	pthread_t t;
};

static void lf_open(struct lfx *x)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	memset(x, 0, sizeof(*x));
	x->p = mmap(NULL, nsamples * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x->u.uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	x->u.copy_ns = calloc(nsamples, 8);
	reg.range.start = (uintptr_t)x->p;
	reg.range.len = nsamples * PG;
	if (x->p == MAP_FAILED || x->u.uffd < 0 ||
	    ioctl(x->u.uffd, UFFDIO_API, &api) ||
	    ioctl(x->u.uffd, UFFDIO_REGISTER, &reg))
		kml_die(1, "run as root", "userfaultfd: %s", strerror(errno));
	pthread_create(&x->t, NULL, local_handler, &x->u);
}

/* @n local faults (touch -> return) on fresh pages into @v */
static void lf_batch(struct lfx *x, uint64_t *v, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n && x->next < nsamples; i++, x->next++) {
		uint64_t t0 = kml_now_ns();

		(void)x->p[x->next * PG];
		v[i] = kml_now_ns() - t0;
	}
}

static void lf_close(struct lfx *x, struct lat *copy)
{
	close(x->u.uffd);
	pthread_cancel(x->t);
	pthread_join(x->t, NULL);
	*copy = summarize(x->u.copy_ns, x->u.ncopy);
	munmap((void *)x->p, nsamples * PG);
	free(x->u.copy_ns);
}

/* ---- plain TCP stream of the same size ---- */

struct stream {
	int fd;
	unsigned char *mem;
	uint64_t len;
};

static void *stream_sender(void *arg)
{
	struct stream *s = arg;
	uint64_t off = 0;

	while (off < s->len) {
		ssize_t r = write(s->fd, s->mem + off,
				  s->len - off < 262144 ? s->len - off : 262144);

		if (r <= 0)
			break;
		off += r;
	}
	return NULL;
}

static double plain_tcp(unsigned char *src, uint64_t len)
{
	unsigned char *dst = mmap(NULL, len, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct stream s = { .mem = src, .len = len };
	uint64_t off = 0, t0;
	pthread_t t;
	int a, b;

	if (dst == MAP_FAILED || tcp_pair(&a, &b))
		kml_die(1, NULL, "plain TCP stream setup failed");
	s.fd = a;
	t0 = kml_now_ns();
	pthread_create(&t, NULL, stream_sender, &s);
	while (off < len) {
		ssize_t r = read(b, dst + off, len - off);

		if (r <= 0)
			break;
		off += r;
	}
	pthread_join(t, NULL);
	t0 = kml_now_ns() - t0;
	close(a);
	close(b);
	munmap(dst, len);
	return (double)len / (t0 / 1e9);
}

/* ---- pcmig in-process: source + destination over TCP loopback ---- */

struct run {
	uint64_t len;
	unsigned char *src_mem;
	int memfd, uffd;
	unsigned char *reg;
	struct pcm_src *s;
	struct pcm_dst *d;
	pthread_t st, dt, toucher;
	char addr[64];
	uint64_t run_ns, done_ns;
	bool touch;
	uint64_t *lat;
	uint64_t nlat;
	int stop;
	/* interleaving: the toucher stops after each batch until go */
	uint64_t batch;
	pthread_mutex_t m;
	pthread_cond_t c;
	uint64_t done, go;
};

static void *toucher_thread(void *arg)
{
	struct run *r = arg;
	uint64_t n = r->len / PG, rng = 88172645463325252ULL, i;
	volatile unsigned char *p = r->reg;

	for (i = 0; i < nsamples && !r->stop; i++) {
		uint64_t pg, t0;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		pg = rng % n;
		t0 = kml_now_ns();
		(void)p[pg * PG];
		r->lat[r->nlat++] = kml_now_ns() - t0;
		if (r->batch && r->nlat % r->batch == 0) {
			pthread_mutex_lock(&r->m);
			r->done = r->nlat / r->batch;
			pthread_cond_broadcast(&r->c);
			while (r->go < r->done)
				pthread_cond_wait(&r->c, &r->m);
			pthread_mutex_unlock(&r->m);
		}
	}
	return NULL;
}

static void on_postcopy(void *arg)
{
	struct run *r = arg;

	r->run_ns = kml_now_ns();
	if (r->touch)
		pthread_create(&r->toucher, NULL, toucher_thread, r);
}

static void *src_thread(void *arg)
{
	struct run *r = arg;

	pcm_src_run(r->s, r->addr);
	return NULL;
}

static void *dst_thread(void *arg)
{
	struct run *r = arg;

	pcm_dst_run(r->d, r->addr);
	r->done_ns = kml_now_ns();
	return NULL;
}

static void run_setup(struct run *r, unsigned char *src_mem, uint64_t len,
		      bool touch, uint64_t batch, uint64_t bw, int port)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct pcm_region_ops dops = { .postcopy_start = on_postcopy };
	struct pcm_opts o;
	char err[200];

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->m, NULL);
	pthread_cond_init(&r->c, NULL);
	r->len = len;
	r->src_mem = src_mem;
	r->touch = touch;
	r->batch = batch;
	r->lat = calloc(nsamples, 8);
	r->memfd = memfd_create("pcmig-bench", MFD_CLOEXEC);
	if (r->memfd < 0 || ftruncate(r->memfd, len))
		kml_die(1, NULL, "memfd: %s", strerror(errno));
	r->reg = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
		      r->memfd, 0);
	r->uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	reg.range.start = (uintptr_t)r->reg;
	reg.range.len = len;
	if (r->reg == MAP_FAILED || r->uffd < 0 ||
	    ioctl(r->uffd, UFFDIO_API, &api) ||
	    ioctl(r->uffd, UFFDIO_REGISTER, &reg))
		kml_die(1, "run as root", "userfaultfd: %s", strerror(errno));
	snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%d", port);
	pcm_opts_default(&o);
	o.quiet = true;
	o.manual_switch = true;
	o.bw_limit = bw;
	o.linger_ms = 0;
	dops.arg = r;
	r->d = pcm_dst_create(r->memfd, len, r->uffd, (uintptr_t)r->reg, &o,
			      &dops, err, sizeof(err));
	r->s = pcm_src_create(src_mem, len, &o, NULL, err, sizeof(err));
	if (!r->d || !r->s)
		kml_die(1, NULL, "pcmig setup: %s", err);
	/* straight to postcopy: every page is missing on the destination */
	pcm_src_switchover(r->s);
	pthread_create(&r->dt, NULL, dst_thread, r);
	usleep(100000);
	pthread_create(&r->st, NULL, src_thread, r);
}

static void run_wait(struct run *r)
{
	pthread_join(r->dt, NULL);
	pthread_join(r->st, NULL);
	if (r->touch)
		pthread_join(r->toucher, NULL);
}

static void run_free(struct run *r)
{
	pcm_src_destroy(r->s);
	pcm_dst_destroy(r->d);
	close(r->uffd);
	munmap(r->reg, r->len);
	close(r->memfd);
	free(r->lat);
}

static void wait_link(struct run *r, int link)
{
	struct pcm_stats st;
	int i;

	for (i = 0; i < 3000; i++) {
		pcm_src_status(r->s, &st);
		if (st.link == link)
			return;
		usleep(1000);
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "size", 1, 0, 's' }, { "samples", 1, 0, 'n' },
		{ "output", 1, 0, 'o' }, { "json", 0, 0, 'j' },
		{ "quiet", 0, 0, 'q' }, { "help", 0, 0, 'h' }, { 0 } };
	uint64_t size = 1ull << 30, rec[5], v, busy_n = 0;
	const char *out = NULL;
	struct lat rtt, lfault, lcopy, pf_idle, pf_busy;
	double tcp_bps, pc_bps, floor, floor_strict;
	unsigned char *mem;
	struct run r;
	struct wl w;
	bool json = false;
	int ch, port = 20000 + getpid() % 20000, i;
	char a[KML_SIZE_BUF];
	FILE *f;

	kml_init(argv[0]);
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (kml_parse_size(optarg, &size) || size % PG ||
			    size < (16u << 20))
				kml_die(2, "at least 16M, 4K aligned",
					"bad --size '%s'", optarg);
			break;
		case 'n':
			if (kml_parse_u64(optarg, &nsamples) || nsamples < 100 ||
			    nsamples > 1000000)
				kml_die(2, "use 100..1000000",
					"bad --samples '%s'", optarg);
			break;
		case 'o':
			out = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		default:
			printf("usage: pcmig-bench [--size 1G] [--samples 20000] [--output FILE.md] [--json]\n"
			       "Fault latency, background throughput and recovery time of\n"
			       "pcmig against floors measured in the same run.\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	if (size / PG < nsamples * 4)
		nsamples = size / PG / 4;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || wl_init(&w, mem, size / PG, 1, false))
		kml_die(1, "use a smaller --size", "cannot map %" PRIu64 " bytes",
			size);
	wl_fill(&w);

	if (!quiet)
		fprintf(stderr, "pcmig-bench: plain TCP stream of %s...\n",
			kml_format_size(size, a, sizeof(a)));
	tcp_bps = plain_tcp(mem, size);

	/* background throughput: postcopy stream, nobody faults */
	if (!quiet)
		fprintf(stderr, "pcmig-bench: pcmig postcopy stream...\n");
	run_setup(&r, mem, size, false, 0, 0, port);
	run_wait(&r);
	pc_bps = (double)size / ((r.done_ns - r.run_ns) / 1e9);
	run_free(&r);

	/*
	 * Fault latency (background stream limited to 5% of plain TCP),
	 * interleaved with the floors: ROUNDS times a batch of pcmig faults,
	 * then a batch of TCP round trips and one of local faults, so that a
	 * change of host load hits both sides alike. Ratios: pooled p50s and
	 * the median of the per-round ratios.
	 */
	if (!quiet)
		fprintf(stderr, "pcmig-bench: fault latency (quiet link) and floors, %d interleaved rounds...\n",
			ROUNDS);
	{
		uint64_t b = nsamples / ROUNDS, k;
		uint64_t *vr = calloc(nsamples, 8), *vl = calloc(nsamples, 8);
		struct rttx rx;
		struct lfx lx;

		rtt_open(&rx);
		lf_open(&lx);
		run_setup(&r, mem, size, true, b, (uint64_t)(tcp_bps / 20),
			  port + 1);
		for (k = 0; k < ROUNDS; k++) {
			struct lat a1, a2, a3;

			pthread_mutex_lock(&r.m);
			while (r.done <= k)
				pthread_cond_wait(&r.c, &r.m);
			pthread_mutex_unlock(&r.m);
			rtt_batch(&rx, vr + k * b, b);
			lf_batch(&lx, vl + k * b, b);
			a1 = summarize(r.lat + k * b, b);
			a2 = summarize(vr + k * b, b);
			a3 = summarize(vl + k * b, b);
			round_ratio[k] = (double)a1.p50 / (a2.p50 + a3.p50);
			pthread_mutex_lock(&r.m);
			r.go = k + 1;
			pthread_cond_broadcast(&r.c);
			pthread_mutex_unlock(&r.m);
		}
		pthread_join(r.toucher, NULL);
		pf_idle = summarize(r.lat, b * ROUNDS);
		rtt = summarize(vr, b * ROUNDS);
		lfault = summarize(vl, b * ROUNDS);
		lf_close(&lx, &lcopy);
		rtt_close(&rx);
		free(vr);
		free(vl);
		pthread_join(r.dt, NULL);
		pthread_join(r.st, NULL);
		run_free(&r);
	}
	floor = rtt.p50 + lfault.p50;
	floor_strict = rtt.p50 + lcopy.p50;
	qsort(round_ratio, ROUNDS, sizeof(round_ratio[0]), cmp_double);

	/* fault latency with the stream at full speed */
	if (!quiet)
		fprintf(stderr, "pcmig-bench: fault latency (full stream)...\n");
	run_setup(&r, mem, size, true, 0, 0, port + 2);
	run_wait(&r);
	{
		/* only real faults count: the destination's own samples */
		struct pcm_stats st;

		pcm_dst_status(r.d, &st);
		pf_busy.p50 = st.lat_p50;
		pf_busy.p99 = st.lat_p99;
		busy_n = st.lat_n;
	}
	run_free(&r);

	/* recovery: pause the link mid-postcopy, time reconnect -> active */
	if (!quiet)
		fprintf(stderr, "pcmig-bench: recovery time...\n");
	run_setup(&r, mem, size, false, 0, 16 << 20, port + 3);
	wait_link(&r, PCM_LINK_ACTIVE);
	usleep(300000);
	for (i = 0; i < 5; i++) {
		struct pcm_stats st;

		pcm_src_pause(r.s);
		wait_link(&r, PCM_LINK_PAUSED);
		usleep(100000);
		pcm_src_recover(r.s, NULL);
		usleep(20000);
		wait_link(&r, PCM_LINK_ACTIVE);
		pcm_src_status(r.s, &st);
		rec[i] = st.recover_ns_last;
		usleep(100000);
	}
	v = kml_percentile(rec, 5, 100);

	f = out ? fopen(out, "w") : stdout;
	if (!f)
		kml_die(1, NULL, "cannot write %s: %s", out, strerror(errno));
	if (json) {
		struct kml_json j;

		kml_json_init(&j, f);
		kml_json_obj_begin(&j, NULL);
		kml_json_u64(&j, "size", size);
		kml_json_u64(&j, "rtt_p50_ns", rtt.p50);
		kml_json_u64(&j, "local_fault_p50_ns", lfault.p50);
		kml_json_u64(&j, "uffdio_copy_p50_ns", lcopy.p50);
		kml_json_u64(&j, "fault_quiet_p50_ns", pf_idle.p50);
		kml_json_u64(&j, "fault_quiet_p99_ns", pf_idle.p99);
		kml_json_double(&j, "fault_floor_ratio_round_median",
				(round_ratio[ROUNDS / 2 - 1] +
				 round_ratio[ROUNDS / 2]) / 2);
		kml_json_u64(&j, "fault_busy_p50_ns", pf_busy.p50);
		kml_json_u64(&j, "fault_busy_p99_ns", pf_busy.p99);
		kml_json_double(&j, "tcp_bytes_per_s", tcp_bps);
		kml_json_double(&j, "postcopy_bytes_per_s", pc_bps);
		kml_json_u64(&j, "recover_max_ns", v);
		kml_json_obj_end(&j);
		kml_json_finish(&j);
	} else {
		fprintf(f, "# pcmig bench, %s region, TCP loopback, %" PRIu64 " samples\n\n",
			kml_format_size(size, a, sizeof(a)), nsamples);
		fprintf(f, "Fault latency and its floor are measured in %d interleaved rounds (a batch\n"
			"of pcmig faults, then a batch of TCP round trips and of local faults),\n"
			"pooled p50s in the first row, per-round ratios in the second.\n\n",
			ROUNDS);
		fprintf(f, "| metric | pcmig | peer / floor | ratio | goal |\n");
		fprintf(f, "|---|---|---|---|---|\n");
		fprintf(f, "| fault p50, quiet link (us) | %.1f | %.1f (RTT %.1f + local uffd fault %.1f) | %.2fx | <= 1.5x |\n",
			pf_idle.p50 / 1e3, floor / 1e3, rtt.p50 / 1e3,
			lfault.p50 / 1e3, pf_idle.p50 / floor);
		fprintf(f, "| fault p50 / floor p50 per round, median (min-max) of %d interleaved rounds | - | - | %.2fx (%.2f-%.2f) | <= 1.5x |\n",
			ROUNDS, (round_ratio[ROUNDS / 2 - 1] + round_ratio[ROUNDS / 2]) / 2,
			round_ratio[0], round_ratio[ROUNDS - 1]);
		fprintf(f, "| fault p50 vs strict floor (us) | %.1f | %.1f (RTT + UFFDIO_COPY ioctl %.1f) | %.2fx | - |\n",
			pf_idle.p50 / 1e3, floor_strict / 1e3, lcopy.p50 / 1e3,
			pf_idle.p50 / floor_strict);
		fprintf(f, "| fault p99, quiet link (us) | %.1f | %.1f (RTT p99) | %.2fx | reported |\n",
			pf_idle.p99 / 1e3, rtt.p99 / 1e3,
			(double)pf_idle.p99 / rtt.p99);
		fprintf(f, "| fault p50 / p99 during full-speed stream, %" PRIu64 " faults, fault read -> placed (us) | %.1f / %.1f | %.1f | %.2fx | reported |\n",
			busy_n, pf_busy.p50 / 1e3, pf_busy.p99 / 1e3,
			floor / 1e3, pf_busy.p50 / floor);
		fprintf(f, "| background throughput (MB/s) | %.0f | %.0f (plain TCP stream) | %.2f | >= 0.50 |\n",
			pc_bps / 1e6, tcp_bps / 1e6, pc_bps / tcp_bps);
		fprintf(f, "| new connection -> postcopy-active, max of 5 (ms) | %.2f | 1000 | %.4f | <= 1 s |\n",
			v / 1e6, v / 1e9);
	}
	if (out)
		fclose(f);
	/* the recovery run is still streaming at 16 MB/s: just leave */
	fflush(NULL);
	_exit(0);
}
