// SPDX-License-Identifier: GPL-2.0
/*
 * pcmig destination: receives precopy pages into the region's memfd,
 * applies the discard bitmap, enters postcopy on RUN, resolves the
 * workload's userfaultfd MISSING faults by requesting pages, and keeps the
 * userfaultfd open across any number of transport failures so that
 * faulting threads wait (never read zeros) until a new connection resumes,
 * or until the source is declared lost: then the on_lost policy decides
 * (wait, poison the missing pages, or kill the workload).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kml.h"
#include "pcmig.h"
#include "pcmig_sess.h"
#include "uffd_compat.h"

/*
 * Connections that have not sent a valid HELLO yet: at most PEND_MAX, at
 * most PEND_PER_ADDR from one peer address (the oldest goes first), each
 * for at most the HELLO deadline; they are served together, so idle or
 * garbage connections cannot keep a source out.
 */
#define PEND_MAX	64
#define PEND_PER_ADDR	8
#define HELLO_MS_MAX	1000

struct pconn {
	int fd;			/* -1: free */
	uint64_t t0;
	unsigned char addr[16];	/* peer IP; zeros for a UNIX socket */
	size_t got;
	bool hello;		/* a valid HELLO was read */
	int kind;
	uint64_t session;
	uint32_t epoch;
	uint8_t nonce[PCM_NONCE_LEN];
	unsigned char b[PCM_HDR_SIZE + sizeof(struct pcm_hello)];
};

struct pcm_dst {
	struct pcm_sess ss;	/* link state, channels, stats */
	struct pconn pend[PEND_MAX];
	uint8_t nonce_d[PCM_NONCE_LEN];	/* ours, for the link being set up */
	int memfd;
	unsigned char *map;
	size_t len;
	uint64_t npages, nwords;
	int uffd;
	uint64_t uffd_base;
	struct pcm_opts o;
	char *key;
	struct pcm_region_ops ops;
	uint64_t *recv, *reqd, *ph, *req_ts;
	uint64_t *dbm;		/* the DISCARD chunk being applied */
	uint64_t *lat;
	uint64_t lat_n;
	uint64_t zero_hash;

	uint32_t last_epoch;
	uint64_t session;
	bool bye;
	int lfd;

	pthread_t thr[2];	/* rx main, rx bulk */
	pthread_t fault_thr;
	bool fault_started;
	bool postcopy_started;	/* the workload runs on the region */
	int stop_pipe[2];
};

#define ADD(d, f, v) PCM_ADD(&(d)->ss, f, v)

static const uint64_t zero_page[PCM_PAGE_SIZE / 8];

struct pcm_dst *pcm_dst_create(int memfd, size_t len, int uffd,
			       uint64_t uffd_base, const struct pcm_opts *o,
			       const struct pcm_region_ops *ops, char *err,
			       size_t errlen)
{
	struct pcm_dst *d;
	int i;

	if (!len || len % PCM_PAGE_SIZE || uffd_base % PCM_PAGE_SIZE ||
	    len / PCM_PAGE_SIZE > PCM_MAX_PAGES) {
		snprintf(err, errlen, "region must be page aligned, non-empty and at most %llu pages",
			 PCM_MAX_PAGES);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		goto nomem;
	d->memfd = memfd;
	d->len = len;
	d->npages = len / PCM_PAGE_SIZE;
	d->nwords = (d->npages + 63) / 64;
	d->uffd = uffd;
	d->uffd_base = uffd_base;
	d->o = *o;
	d->lfd = -1;
	for (i = 0; i < PEND_MAX; i++)
		d->pend[i].fd = -1;
	d->stop_pipe[0] = -1;
	d->stop_pipe[1] = -1;
	if (o->key) {
		d->key = strdup(o->key);
		d->o.key = d->key;
	}
	if (ops)
		d->ops = *ops;
	d->session = o->session;
	d->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (d->map == MAP_FAILED) {
		snprintf(err, errlen, "mmap of the region memfd: %s",
			 strerror(errno));
		d->map = NULL;
		pcm_dst_destroy(d);
		return NULL;
	}
	d->recv = calloc(d->nwords, 8);
	d->reqd = calloc(d->nwords, 8);
	d->dbm = calloc(d->nwords, 8);
	d->ph = calloc(d->npages, 8);
	d->req_ts = calloc(d->npages, 8);
	d->lat = calloc(PCM_LAT_MAX, 8);
	if (!d->recv || !d->reqd || !d->dbm || !d->ph || !d->req_ts ||
	    !d->lat)
		goto nomem;
	if (pipe2(d->stop_pipe, O_CLOEXEC))
		goto nomem;
	d->zero_hash = pcm_page_hash(zero_page);
	pcm_sess_init(&d->ss, o);
	d->ss.phase = PCM_PH_NEW;
	return d;
nomem:
	snprintf(err, errlen, "out of memory for %zu-byte region state", len);
	if (d)
		pcm_dst_destroy(d);
	return NULL;
}

void pcm_dst_destroy(struct pcm_dst *d)
{
	int i;

	for (i = 0; i < PEND_MAX; i++)
		if (d->pend[i].fd >= 0)
			close(d->pend[i].fd);
	if (d->fault_started) {
		if (write(d->stop_pipe[1], "x", 1) != 1)
			pthread_cancel(d->fault_thr);
		pthread_join(d->fault_thr, NULL);
	}
	if (d->stop_pipe[0] >= 0) {
		close(d->stop_pipe[0]);
		close(d->stop_pipe[1]);
	}
	if (d->lfd >= 0)
		close(d->lfd);
	if (d->map)
		munmap(d->map, d->len);
	free(d->recv);
	free(d->reqd);
	free(d->dbm);
	free(d->ph);
	free(d->req_ts);
	free(d->lat);
	free(d->key);
	pcm_sess_destroy(&d->ss);
	free(d);
}

void pcm_dst_status(struct pcm_dst *d, struct pcm_stats *st)
{
	uint64_t n = __atomic_load_n(&d->lat_n, __ATOMIC_ACQUIRE), *v;

	pthread_mutex_lock(&d->ss.lock);
	*st = d->ss.st;
	st->phase = d->ss.phase;
	st->link = d->ss.link;
	st->epoch = d->last_epoch;
	st->session = d->session;
	st->npages = d->npages;
	pthread_mutex_unlock(&d->ss.lock);
	st->received = pcm_bitmap_weight(d->recv, d->npages);
	snprintf(st->dirty_mode, sizeof(st->dirty_mode), "-");
	if (n > PCM_LAT_MAX)
		n = PCM_LAT_MAX;
	st->lat_n = __atomic_load_n(&d->lat_n, __ATOMIC_ACQUIRE);
	v = malloc(n * 8 + 8);
	if (v && n) {
		memcpy(v, d->lat, n * 8);
		st->lat_p50 = kml_percentile(v, n, 50);
		st->lat_p90 = kml_percentile(v, n, 90);
		st->lat_p99 = kml_percentile(v, n, 99);
		st->lat_max = kml_percentile(v, n, 100);
	}
	free(v);
}

uint64_t pcm_dst_memory_digest(struct pcm_dst *d)
{
	return pcm_region_digest(d->map, d->npages);
}

void pcm_dst_pause(struct pcm_dst *d)
{
	pcm_sess_pause(&d->ss);
}

int pcm_dst_recover(struct pcm_dst *d, const char *addr)
{
	return pcm_sess_recover(&d->ss, addr);
}

int pcm_dst_abandon(struct pcm_dst *d, char *err, size_t errlen)
{
	int ret = -1;

	pthread_mutex_lock(&d->ss.lock);
	if (d->o.on_lost == PCM_LOST_WAIT)
		snprintf(err, errlen, "the policy is --on-source-lost wait: the workload waits for the source; start the destination with --on-source-lost poison or kill to abandon");
	else if (d->ss.phase == PCM_PH_COMPLETED ||
		 d->ss.phase == PCM_PH_FAILED)
		snprintf(err, errlen, "the migration has %s already",
			 pcm_phase_name(d->ss.phase));
	else
		ret = 0;
	if (!ret) {
		d->ss.stop_req = true;
		pthread_cond_broadcast(&d->ss.cond);
	}
	pthread_mutex_unlock(&d->ss.lock);
	if (!ret)
		pcm_sess_fail(&d->ss, 0, "abandon");
	return ret;
}

/*
 * Make every page not received a memory error in the workload's mapping;
 * waiting faults are woken and refault into SIGBUS. Runs when nothing
 * places pages any more, so a page is either present or poisoned.
 */
static uint64_t poison_missing(struct pcm_dst *d)
{
	uint64_t idx, n = 0;

	for (idx = 0; idx < d->npages; idx++) {
		struct uffdio_poison p = {
			.range.start = d->uffd_base + idx * PCM_PAGE_SIZE,
			.range.len = PCM_PAGE_SIZE,
		};
		int tries = 0, r;

		if (pcm_test_bit(d->recv, idx))
			continue;
		/* EAGAIN: the workload's mm is changing (mremap, fork) */
		while ((r = ioctl(d->uffd, UFFDIO_POISON, &p)) &&
		       errno == EAGAIN && ++tries < 1000)
			usleep(1000);
		if (!r) {
			n++;
		} else if (errno != EEXIST) {	/* EEXIST: present after all */
			pcm_sess_error(&d->ss, "UFFDIO_POISON of page %llu: %s",
				       (unsigned long long)idx, strerror(errno));
			break;
		}
	}
	return n;
}

/* the source is lost for good (abandon or give-up): apply on_lost */
static void source_lost(struct pcm_dst *d)
{
	uint64_t missing = d->npages - pcm_bitmap_weight(d->recv, d->npages);
	char what[80] = "";
	uint64_t n;

	pthread_mutex_lock(&d->ss.lock);
	if (d->ss.stop_req && d->ss.phase != PCM_PH_COMPLETED) {
		d->ss.phase = PCM_PH_FAILED;
		d->ss.st.abandoned = 1;
		snprintf(d->ss.st.last_error, sizeof(d->ss.st.last_error),
			 "abandoned (pcmig ctl abandon): the source is declared lost with %llu of %llu pages missing",
			 (unsigned long long)missing,
			 (unsigned long long)d->npages);
	}
	pthread_cond_broadcast(&d->ss.cond);
	pthread_mutex_unlock(&d->ss.lock);
	if (!d->postcopy_started || !missing)
		return;
	switch (d->o.on_lost) {
	case PCM_LOST_POISON:
		n = poison_missing(d);
		ADD(d, pages_poisoned, n);
		snprintf(what, sizeof(what), "; %llu missing pages poisoned",
			 (unsigned long long)n);
		break;
	case PCM_LOST_KILL:
		if (d->ops.source_lost)
			d->ops.source_lost(d->ops.arg);
		snprintf(what, sizeof(what), "; workload killed");
		break;
	case PCM_LOST_WAIT:
		break;
	}
	pthread_mutex_lock(&d->ss.lock);
	strncat(d->ss.st.last_error, what, sizeof(d->ss.st.last_error) -
		strlen(d->ss.st.last_error) - 1);
	pthread_mutex_unlock(&d->ss.lock);
}

/* ---- the fault handler ---- */

static int send_req(struct pcm_dst *d, uint64_t idx)
{
	uint64_t le = htole64(idx);
	int ret = 0;

	pthread_rwlock_rdlock(&d->ss.conn_lock);
	if (d->ss.conn_up)
		ret = pcm_send(&d->ss.main, PCM_T_REQ, &le, 8, NULL, 0, true);
	pthread_rwlock_unlock(&d->ss.conn_lock);
	if (ret)
		pcm_sess_fail(&d->ss, -PCM_E_IO, "page request");
	return ret;
}

static void wake(struct pcm_dst *d, uint64_t idx)
{
	struct uffdio_range r = {
		.start = d->uffd_base + idx * PCM_PAGE_SIZE,
		.len = PCM_PAGE_SIZE,
	};

	ioctl(d->uffd, UFFDIO_WAKE, &r);
}

static void *fault_thread(void *arg)
{
	struct pcm_dst *d = arg;
	struct uffd_msg msg[64];

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = d->uffd, .events = POLLIN },
			{ .fd = d->stop_pipe[0], .events = POLLIN },
		};
		ssize_t n;
		int i;

		/*
		 * poll + read (the uffd is O_NONBLOCK: a fault woken before
		 * the read gives EAGAIN); pcm_dst_destroy() stops us through
		 * the pipe, not by cancellation
		 */
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		n = read(d->uffd, msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < n / (ssize_t)sizeof(msg[0]); i++) {
			uint64_t a = msg[i].arg.pagefault.address, idx;

			if (msg[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			if (a < d->uffd_base || a >= d->uffd_base + d->len)
				continue;
			idx = (a - d->uffd_base) / PCM_PAGE_SIZE;
			if (pcm_test_bit(d->recv, idx)) {
				wake(d, idx);
				continue;
			}
			if (pcm_test_and_set(d->reqd, idx))
				continue;
			__atomic_store_n(&d->req_ts[idx], kml_now_ns(),
					 __ATOMIC_RELEASE);
			ADD(d, pages_req, 1);
			/* placed meanwhile: the copy woke the fault already */
			if (pcm_test_bit(d->recv, idx))
				continue;
			send_req(d, idx);
		}
	}
	return NULL;
}

/* ---- placing pages ---- */

/*
 * Place page @idx (@data, or zeros when NULL) whose hash is @h, or
 * unknown when @h is NULL: then it is computed, in postcopy after the
 * copy has woken the faulting thread (it is not on the fault's path).
 */
static int place(struct pcm_dst *d, uint64_t idx, const void *data,
		 const uint64_t *hp)
{
	const void *src = data ? data : zero_page;
	uint64_t h;

	if (d->ss.phase == PCM_PH_PRECOPY) {
		memcpy(d->map + idx * PCM_PAGE_SIZE, src, PCM_PAGE_SIZE);
		d->ph[idx] = hp ? *hp : data ? pcm_page_hash(data) :
			     d->zero_hash;
		if (!pcm_test_and_set(d->recv, idx))
			ADD(d, pages_recv, 1);
		return 0;
	}
	if (pcm_test_bit(d->recv, idx)) {
		ADD(d, pages_dup, 1);
		return 0;
	}
	for (;;) {
		struct uffdio_copy c = {
			.dst = d->uffd_base + idx * PCM_PAGE_SIZE,
			.src = (uintptr_t)src,
			.len = PCM_PAGE_SIZE,
		};

		if (ioctl(d->uffd, UFFDIO_COPY, &c) == 0)
			break;
		if (errno == EAGAIN)
			continue;
		if (errno == EEXIST) {
			wake(d, idx);
			break;
		}
		pcm_sess_detail(&d->ss, "UFFDIO_COPY of page %llu: %s (workload gone?)",
				(unsigned long long)idx, strerror(errno));
		return -1;
	}
	h = hp ? *hp : data ? pcm_page_hash(data) : d->zero_hash;
	d->ph[idx] = h;
	if (pcm_test_and_set(d->recv, idx)) {
		ADD(d, pages_dup, 1);
		return 0;
	}
	ADD(d, pages_recv, 1);
	if (pcm_test_and_clear(d->reqd, idx)) {
		uint64_t t = __atomic_load_n(&d->req_ts[idx], __ATOMIC_ACQUIRE);
		uint64_t k;

		if (t) {
			k = __atomic_fetch_add(&d->lat_n, 1, __ATOMIC_ACQ_REL);
			d->lat[k % PCM_LAT_MAX] = kml_now_ns() - t;
		}
	}
	return 0;
}

static int handle_page(struct pcm_dst *d, const struct pcm_frame *f,
		       bool urgent)
{
	const unsigned char *data = NULL;	/* ZERO */
	uint64_t idx, sum, h = 0;

	memcpy(&idx, f->p, 8);
	idx = le64toh(idx);
	if (idx >= d->npages)
		return -PCM_E_RANGE;
	/* every page frame read is checked, a late duplicate too */
	if (f->h.type == PCM_T_PAGE_SUM) {
		memcpy(&sum, f->p + 8, 8);
		sum = le64toh(sum);
		h = pcm_page_hash(f->p + 16);
		if (h != sum)
			return -PCM_E_SUM;
		ADD(d, pages_summed, 1);
		data = f->p + 16;
	} else if (f->h.type == PCM_T_PAGE) {
		if (d->o.page_sums)
			return -PCM_E_NOSUM;
		data = f->p + 8;
	}
	if (f->h.type != PCM_T_ZERO)
		ADD(d, page_frames, 1);
	if (urgent) {
		/* an answer to a request the bulk stream beat to completion */
		if (d->ss.phase == PCM_PH_COMPLETED) {
			ADD(d, pages_dup, 1);
			return 0;
		}
		if (d->ss.phase != PCM_PH_POSTCOPY)
			return -PCM_E_STATE;
		ADD(d, pages_urgent, 1);
	}
	if (place(d, idx, data, f->h.type == PCM_T_PAGE_SUM ? &h : NULL)) {
		pthread_mutex_lock(&d->ss.lock);
		d->ss.phase = PCM_PH_FAILED;
		pthread_mutex_unlock(&d->ss.lock);
		return -PCM_E_STATE;
	}
	return 0;
}

static int apply_discard(struct pcm_dst *d, const struct pcm_frame *f)
{
	uint64_t first, nbits, k, run = 0, start = 0;
	int ret;

	if (d->ss.phase != PCM_PH_PRECOPY)
		return -PCM_E_STATE;
	ret = pcm_bitmap_decode(f, d->npages, d->dbm, &first, &nbits);
	if (ret)
		return ret;
	for (k = first; k <= first + nbits; k++) {
		bool set = k < first + nbits && pcm_test_bit(d->dbm, k);

		if (set) {
			if (!run)
				start = k;
			run++;
			pcm_clear_bit(d->recv, k);
			continue;
		}
		if (run && fallocate(d->memfd, FALLOC_FL_PUNCH_HOLE |
				     FALLOC_FL_KEEP_SIZE,
				     start * PCM_PAGE_SIZE,
				     run * PCM_PAGE_SIZE)) {
			pcm_sess_detail(&d->ss, "discard: fallocate: %s", strerror(errno));
			return -PCM_E_STATE;
		}
		run = 0;
	}
	return 0;
}

static int enter_postcopy(struct pcm_dst *d)
{
	if (d->ss.phase != PCM_PH_PRECOPY)
		return -PCM_E_STATE;
	pthread_mutex_lock(&d->ss.lock);
	d->ss.phase = PCM_PH_POSTCOPY;
	d->postcopy_started = true;
	pthread_mutex_unlock(&d->ss.lock);
	if (!d->fault_started) {
		int fl = fcntl(d->uffd, F_GETFL);

		fcntl(d->uffd, F_SETFL, fl | O_NONBLOCK);
		if (pthread_create(&d->fault_thr, NULL, fault_thread, d))
			return -PCM_E_STATE;
		d->fault_started = true;
	}
	if (d->ops.postcopy_start)
		d->ops.postcopy_start(d->ops.arg);
	return 0;
}

static int complete(struct pcm_dst *d, const struct pcm_frame *f)
{
	struct pcm_complete_ack a = { 0 };
	uint64_t src, dig;

	if (d->ss.phase != PCM_PH_POSTCOPY)
		return -PCM_E_STATE;
	if (pcm_bitmap_weight(d->recv, d->npages) != d->npages) {
		pcm_sess_detail(&d->ss, "COMPLETE with %llu pages missing",
				(unsigned long long)(d->npages -
				pcm_bitmap_weight(d->recv, d->npages)));
		return -PCM_E_STATE;
	}
	memcpy(&src, f->p, 8);
	src = le64toh(src);
	dig = pcm_digest(d->ph, d->npages);
	a.ok = htole32(dig == src);
	a.digest = htole64(dig);
	/*
	 * The verdict is recorded before the ACK goes out: the source's BYE
	 * may arrive on the main channel before this thread runs again.
	 */
	pthread_mutex_lock(&d->ss.lock);
	d->ss.st.digest_src = src;
	d->ss.st.digest_dst = dig;
	if (dig == src) {
		d->ss.phase = PCM_PH_COMPLETED;
	} else {
		snprintf(d->ss.st.last_error, sizeof(d->ss.st.last_error),
			 "digest mismatch: source %016llx destination %016llx (a page changed in transit; page checksums catch that, on by default)",
			 (unsigned long long)src, (unsigned long long)dig);
		d->ss.verdict = true;
	}
	pthread_mutex_unlock(&d->ss.lock);
	if (pcm_send(&d->ss.main, PCM_T_COMPLETE_ACK, &a, sizeof(a), NULL, 0,
		     true))
		return -PCM_E_IO;
	pthread_mutex_lock(&d->ss.lock);
	if (dig != src)
		d->ss.phase = PCM_PH_FAILED;
	pthread_cond_broadcast(&d->ss.cond);
	pthread_mutex_unlock(&d->ss.lock);
	return 0;
}

static void *rx_thread(struct pcm_dst *d, struct pcm_chan *c)
{
	unsigned char *buf = malloc(PCM_MAX_PAYLOAD);
	bool bulk = c->kind == PCM_CH_BULK;
	struct pcm_frame f;
	int ret;

	while (buf && !__atomic_load_n(&d->ss.failed, __ATOMIC_ACQUIRE)) {
		/* both channels carry the source's heartbeats */
		ret = pcm_recv(c, &f, buf, -1);
		if (ret) {
			pcm_sess_fail(&d->ss, ret, bulk ? "bulk channel" : "main channel");
			break;
		}
		switch (f.h.type) {
		case PCM_T_PING:
			break;
		case PCM_T_PAGE:
		case PCM_T_PAGE_SUM:
		case PCM_T_ZERO:
			ret = handle_page(d, &f, !bulk);
			break;
		case PCM_T_DISCARD:
			ret = bulk ? apply_discard(d, &f) : -PCM_E_STATE;
			break;
		case PCM_T_RUN:
			ret = bulk ? enter_postcopy(d) : -PCM_E_STATE;
			break;
		case PCM_T_COMPLETE:
			ret = bulk ? complete(d, &f) : -PCM_E_STATE;
			break;
		case PCM_T_BYE:
			if (bulk || d->ss.phase != PCM_PH_COMPLETED) {
				ret = -PCM_E_STATE;
				break;
			}
			pthread_mutex_lock(&d->ss.lock);
			d->bye = true;
			pthread_cond_broadcast(&d->ss.cond);
			pthread_mutex_unlock(&d->ss.lock);
			break;
		default:
			ret = -PCM_E_STATE;
		}
		if (ret) {
			pcm_sess_fail(&d->ss, ret, bulk ? "bulk channel" : "main channel");
			break;
		}
		if (d->ss.phase == PCM_PH_FAILED || d->bye ||
		    (bulk && d->ss.phase == PCM_PH_COMPLETED))
			break;
	}
	free(buf);
	return NULL;
}

static void *rx_main(void *arg)
{
	struct pcm_dst *d = arg;

	return rx_thread(d, &d->ss.main);
}

static void *rx_bulk(void *arg)
{
	struct pcm_dst *d = arg;

	return rx_thread(d, &d->ss.bulk);
}

/* ---- accepting a link ---- */

static void pend_drop(struct pconn *p)
{
	if (p->fd >= 0)
		close(p->fd);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

static void peer_key(const struct sockaddr_storage *sa, unsigned char k[16])
{
	memset(k, 0, 16);
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;

		k[10] = 0xff;
		k[11] = 0xff;
		memcpy(k + 12, &a->sin_addr, 4);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;

		memcpy(k, &a->sin6_addr, 16);
	}
}

/* accept every waiting connection into a pending slot */
static void pend_accept(struct pcm_dst *d)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		unsigned char k[16];
		struct pconn *old_addr = NULL, *old_all = NULL, *free_p = NULL;
		int fd, i, same = 0;

		fd = accept4(d->lfd, (struct sockaddr *)&sa, &sl,
			     SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		peer_key(&sa, k);
		for (i = 0; i < PEND_MAX; i++) {
			struct pconn *p = &d->pend[i];

			if (p->fd < 0) {
				free_p = free_p ? free_p : p;
				continue;
			}
			if (!old_all || p->t0 < old_all->t0)
				old_all = p;
			if (memcmp(p->addr, k, 16))
				continue;
			same++;
			if (!old_addr || p->t0 < old_addr->t0)
				old_addr = p;
		}
		if (same >= PEND_PER_ADDR) {
			pend_drop(old_addr);
			free_p = old_addr;
		} else if (!free_p) {
			pend_drop(old_all);
			free_p = old_all;
		}
		free_p->fd = fd;
		free_p->t0 = kml_now_ns();
		memcpy(free_p->addr, k, 16);
	}
}

static void pend_reject(struct pcm_dst *d, struct pconn *p, int err)
{
	pcm_sess_error(&d->ss, "rejected connection: %s", pcm_err_name(err));
	ADD(d, rejected_frames, 1);
	pend_drop(p);
}

/* read what @p sent; validate its HELLO once complete */
static void pend_read(struct pcm_dst *d, struct pconn *p)
{
	struct pcm_hello hi;
	struct pcm_hdr h;
	ssize_t r;
	int ret;

	if (p->hello) {
		/* nothing may follow the HELLO before our HELLO_ACK */
		char c;

		r = recv(p->fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			pend_drop(p);
		else if (r > 0)
			pend_reject(d, p, -PCM_E_STATE);
		return;
	}
	r = recv(p->fd, p->b + p->got, sizeof(p->b) - p->got, MSG_DONTWAIT);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		pend_drop(p);	/* cut before its HELLO: not a reject */
		return;
	}
	if (r < 0)
		return;
	p->got += r;
	if (p->got < sizeof(p->b))
		return;
	ret = pcm_hello_parse(p->b, d->o.key, d->session, &h, &hi);
	if (!ret && le64toh(hi.npages) != d->npages) {
		pcm_sess_error(&d->ss, "source region has %llu pages, destination %llu",
			       (unsigned long long)le64toh(hi.npages),
			       (unsigned long long)d->npages);
		ADD(d, rejected_frames, 1);
		pend_drop(p);
		return;
	}
	if (!ret && h.epoch <= d->last_epoch)
		ret = -PCM_E_EPOCH;
	if (ret) {
		pend_reject(d, p, ret);
		return;
	}
	p->hello = true;
	p->kind = le32toh(hi.channel);
	p->session = h.session;
	p->epoch = h.epoch;
	memcpy(p->nonce, hi.nonce, sizeof(p->nonce));
}

/* a main and a bulk HELLO of the same link: session, epoch and nonce */
static bool pend_pair(struct pcm_dst *d, struct pconn **m, struct pconn **b)
{
	int i, j;

	for (i = 0; i < PEND_MAX; i++) {
		struct pconn *p = &d->pend[i];

		if (p->fd < 0 || !p->hello || p->kind != PCM_CH_MAIN)
			continue;
		for (j = 0; j < PEND_MAX; j++) {
			struct pconn *q = &d->pend[j];

			if (q->fd >= 0 && q->hello && q->kind == PCM_CH_BULK &&
			    q->session == p->session && q->epoch == p->epoch &&
			    !memcmp(q->nonce, p->nonce, PCM_NONCE_LEN)) {
				*m = p;
				*b = q;
				return true;
			}
		}
	}
	return false;
}

/*
 * Serve the listening socket and every pending connection for up to
 * @ms; set up d->ss.main and d->ss.bulk (link keys included) and return
 * true when both HELLOs of one link arrived.
 */
static bool gather_link(struct pcm_dst *d, int ms)
{
	struct pollfd pfd[PEND_MAX + 1];
	struct pconn *idx[PEND_MAX + 1], *m, *b;
	uint8_t ns[PCM_NONCE_LEN];
	uint64_t now, hello_ns;
	int n = 0, i, tmo = d->o.link_timeout_ms;

	hello_ns = (uint64_t)(tmo < HELLO_MS_MAX ? tmo : HELLO_MS_MAX) *
		   1000000;
	pfd[n].fd = d->lfd;
	pfd[n].events = POLLIN;
	idx[n++] = NULL;
	for (i = 0; i < PEND_MAX; i++)
		if (d->pend[i].fd >= 0) {
			pfd[n].fd = d->pend[i].fd;
			pfd[n].events = POLLIN;
			idx[n++] = &d->pend[i];
		}
	if (poll(pfd, n, ms) < 0)
		return false;
	for (i = 1; i < n; i++)
		if (pfd[i].revents && idx[i]->fd == pfd[i].fd)
			pend_read(d, idx[i]);
	if (pfd[0].revents)
		pend_accept(d);
	now = kml_now_ns();
	for (i = 0; i < PEND_MAX; i++)
		if (d->pend[i].fd >= 0 && now - d->pend[i].t0 > hello_ns)
			pend_drop(&d->pend[i]);
	if (!pend_pair(d, &m, &b))
		return false;
	if (pcm_random(d->nonce_d, sizeof(d->nonce_d))) {
		pcm_sess_error(&d->ss, "getrandom: %s", strerror(errno));
		return false;
	}
	if (pcm_chan_init(&d->ss.main, m->fd, PCM_CH_MAIN, m->session,
			  m->epoch, d->o.key, tmo, false))
		return false;
	if (pcm_chan_init(&d->ss.bulk, b->fd, PCM_CH_BULK, b->session,
			  b->epoch, d->o.key, tmo, false)) {
		d->ss.main.fd = -1;
		pcm_chan_destroy(&d->ss.main);
		return false;
	}
	memcpy(ns, m->nonce, sizeof(ns));
	m->fd = -1;
	b->fd = -1;
	pend_drop(m);
	pend_drop(b);
	d->ss.main.rx_seq = 1;
	d->ss.bulk.rx_seq = 1;
	/* the bulk channel has a bigger tx buffer only on the source */
	d->ss.bulk.tx_flush_at = 0;
	for (i = 0; i < 2; i++) {
		struct pcm_chan *c = i ? &d->ss.bulk : &d->ss.main;
		int fl = fcntl(c->fd, F_GETFL);

		fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
		pcm_sock_tune(c->fd, tmo, false);
		pcm_chan_set_link(c, ns, d->nonce_d);
	}
	return true;
}

/*
 * After both HELLOs: HELLO_ACK (our nonce, tagged under the link key),
 * the received bitmap, then RESUME. Nothing changes here before RESUME
 * arrived with a valid tag: a replayed HELLO pair (valid under the HELLO
 * key) gets no further than that, and adopts no session and no epoch.
 */
static int dst_handshake(struct pcm_dst *d, unsigned char *buf)
{
	struct pcm_hello_ack ack = { 0 };
	struct pcm_frame f;
	uint64_t w, le;
	uint64_t dl = pcm_sess_hs_deadline(&d->ss);
	int ret;

	memcpy(ack.nonce, d->nonce_d, sizeof(ack.nonce));
	ack.phase = htole32(d->ss.phase);
	ack.received = htole64(pcm_bitmap_weight(d->recv, d->npages));
	ret = pcm_send(&d->ss.main, PCM_T_HELLO_ACK, &ack, sizeof(ack), NULL, 0,
		       d->ss.phase == PCM_PH_NEW || d->ss.phase == PCM_PH_COMPLETED);
	if (ret)
		return -PCM_E_IO;
	if (d->ss.phase == PCM_PH_COMPLETED) {
		/* the source lost our COMPLETE_ACK; it now says goodbye */
		ret = pcm_sess_hs_recv(&d->ss, &f, buf, dl);
		if (ret)
			return ret;
		if (f.h.type != PCM_T_BYE)
			return -PCM_E_STATE;
		pthread_mutex_lock(&d->ss.lock);
		d->bye = true;
		pthread_mutex_unlock(&d->ss.lock);
		return 0;
	}
	if (d->ss.phase != PCM_PH_NEW) {
		if (pcm_send_bitmap(&d->ss.main, PCM_T_RBITMAP, d->recv,
				    d->npages, false))
			return -PCM_E_IO;
		le = htole64(pcm_bitmap_weight(d->recv, d->npages));
		if (pcm_send(&d->ss.main, PCM_T_RBITMAP_END, &le, 8, NULL, 0,
			     true))
			return -PCM_E_IO;
	}
	for (;;) {
		ret = pcm_sess_hs_recv(&d->ss, &f, buf, dl);
		if (ret)
			return ret;
		if (f.h.type == PCM_T_RESUME)
			break;
		if (f.h.type != PCM_T_PING)
			return -PCM_E_STATE;
	}
	pthread_mutex_lock(&d->ss.lock);
	d->last_epoch = d->ss.main.epoch;
	if (!d->session)
		d->session = d->ss.main.session;
	if (d->ss.phase == PCM_PH_NEW)
		d->ss.phase = PCM_PH_PRECOPY;
	pthread_mutex_unlock(&d->ss.lock);
	pthread_rwlock_wrlock(&d->ss.conn_lock);
	d->ss.conn_up = true;
	pthread_rwlock_unlock(&d->ss.conn_lock);
	/* re-send the requests that may have been lost with the old link */
	for (w = 0; w < d->npages; w++)
		if (pcm_test_bit(d->reqd, w) && !pcm_test_bit(d->recv, w)) {
			le = htole64(w);
			if (pcm_send(&d->ss.main, PCM_T_REQ, &le, 8, NULL, 0,
				     false))
				return -PCM_E_IO;
		}
	if (pcm_send(&d->ss.main, PCM_T_RESUME_ACK, NULL, 0, NULL, 0, true))
		return -PCM_E_IO;
	return 0;
}

/* with ss.lock held: the link must come down (or stay down) */
static bool dst_done(void *arg)
{
	struct pcm_dst *d = arg;

	return d->bye || d->ss.phase == PCM_PH_FAILED || d->ss.stop_req;
}

int pcm_dst_run(struct pcm_dst *d, const char *addr)
{
	unsigned char *buf = malloc(PCM_MAX_PAYLOAD);
	char err[200];
	int ret;
	uint64_t t0, linger = 0;

	if (!buf || strlen(addr) >= sizeof(d->ss.addr)) {
		free(buf);
		return -1;
	}
	strcpy(d->ss.addr, addr);
	d->lfd = pcm_listen(addr, err, sizeof(err));
	if (d->lfd < 0) {
		pcm_sess_error(&d->ss, "%s", err);
		free(buf);
		return -1;
	}
	fcntl(d->lfd, F_SETFL, fcntl(d->lfd, F_GETFL) | O_NONBLOCK);
	pthread_mutex_lock(&d->ss.lock);
	d->ss.down_since = kml_now_ns();
	pthread_mutex_unlock(&d->ss.lock);
	while (!d->bye && d->ss.phase != PCM_PH_FAILED &&
	       !(d->ss.phase == PCM_PH_COMPLETED && kml_now_ns() > linger)) {
		pthread_mutex_lock(&d->ss.lock);
		pcm_sess_wait_unpaused(&d->ss);
		if (d->ss.stop_req || pcm_sess_give_up(&d->ss)) {
			pthread_mutex_unlock(&d->ss.lock);
			break;
		}
		if (d->ss.addr_changed) {
			int nfd = pcm_listen(d->ss.addr, err, sizeof(err));

			d->ss.addr_changed = false;
			if (nfd < 0) {
				snprintf(d->ss.st.last_error,
					 sizeof(d->ss.st.last_error), "%.150s", err);
			} else {
				close(d->lfd);
				d->lfd = nfd;
				fcntl(d->lfd, F_SETFL,
				      fcntl(d->lfd, F_GETFL) | O_NONBLOCK);
			}
		}
		pthread_mutex_unlock(&d->ss.lock);
		if (!gather_link(d, 100))
			continue;
		t0 = kml_now_ns();
		pthread_mutex_lock(&d->ss.lock);
		d->ss.link = PCM_LINK_RECOVERING;
		pthread_mutex_unlock(&d->ss.lock);
		__atomic_store_n(&d->ss.failed, 0, __ATOMIC_RELEASE);
		ret = dst_handshake(d, buf);
		if (ret) {
			pcm_sess_handshake_failed(&d->ss, ret);
			pcm_sess_down(&d->ss, NULL, 0);
			pcm_sess_paused(&d->ss, true);
			continue;
		}
		if (d->bye) {
			pcm_sess_down(&d->ss, NULL, 0);
			break;
		}
		pcm_sess_active(&d->ss, t0);
		pthread_create(&d->thr[0], NULL, rx_main, d);
		pthread_create(&d->thr[1], NULL, rx_bulk, d);
		pcm_sess_heartbeat(&d->ss, dst_done, NULL, d, false);
		ret = d->ss.phase == PCM_PH_COMPLETED || d->ss.phase == PCM_PH_FAILED;
		if (d->ss.phase == PCM_PH_COMPLETED && !linger)
			linger = kml_now_ns() +
				 (uint64_t)d->o.linger_ms * 1000000;
		pthread_mutex_unlock(&d->ss.lock);
		pcm_sess_down(&d->ss, d->thr, 2);
		pcm_sess_paused(&d->ss, !ret);
	}
	/* the receive threads are down: no page is placed any more */
	if (d->ss.stop_req || d->ss.st.gave_up)
		source_lost(d);
	free(buf);
	return d->ss.phase == PCM_PH_COMPLETED ? 0 : -1;
}
