// SPDX-License-Identifier: GPL-2.0
/*
 * pcmig destination: receives precopy pages into the region's memfd,
 * applies the discard bitmap, enters postcopy on RUN, resolves the
 * workload's userfaultfd MISSING faults by requesting pages, and keeps the
 * userfaultfd open across any number of transport failures so that
 * faulting threads wait (never read zeros) until a new connection resumes.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
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

struct pcm_dst {
	struct pcm_sess ss;	/* link state, channels, stats */
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
	d->ph = calloc(d->npages, 8);
	d->req_ts = calloc(d->npages, 8);
	d->lat = calloc(PCM_LAT_MAX, 8);
	if (!d->recv || !d->reqd || !d->ph || !d->req_ts || !d->lat)
		goto nomem;
	if (pipe2(d->stop_pipe, O_CLOEXEC))
		goto nomem;
	d->zero_hash = pcm_page_hash(zero_page);
	pcm_sess_init(&d->ss, o->link_timeout_ms);
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
	if (d->fault_started) {
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
	uint64_t *ph = malloc(d->npages * 8), r, i;

	if (!ph)
		return 0;
	for (i = 0; i < d->npages; i++)
		ph[i] = pcm_page_hash(d->map + i * PCM_PAGE_SIZE);
	r = pcm_digest(ph, d->npages);
	free(ph);
	return r;
}

void pcm_dst_pause(struct pcm_dst *d)
{
	pcm_sess_pause(&d->ss);
}

int pcm_dst_recover(struct pcm_dst *d, const char *addr)
{
	return pcm_sess_recover(&d->ss, addr);
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

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	for (;;) {
		ssize_t n;
		int i;

		/* blocking: one syscall per fault; stopped by cancellation */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		n = read(d->uffd, msg, sizeof(msg));
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
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
		pcm_sess_error(&d->ss, "UFFDIO_COPY of page %llu: %s (workload gone?)",
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
	struct pcm_bitmap_hdr bh;
	uint64_t k, run = 0, start = 0;
	int ret = pcm_bitmap_check(f, d->npages);

	if (ret)
		return ret;
	if (d->ss.phase != PCM_PH_PRECOPY)
		return -PCM_E_STATE;
	memcpy(&bh, f->p, sizeof(bh));
	bh.first = le64toh(bh.first);
	bh.nbits = le32toh(bh.nbits);
	for (k = 0; k <= bh.nbits; k++) {
		bool set = k < bh.nbits &&
			   (f->p[sizeof(bh) + k / 8] & (1u << (k % 8)));

		if (set) {
			if (!run)
				start = bh.first + k;
			run++;
			pcm_clear_bit(d->recv, bh.first + k);
			continue;
		}
		if (run && fallocate(d->memfd, FALLOC_FL_PUNCH_HOLE |
				     FALLOC_FL_KEEP_SIZE,
				     start * PCM_PAGE_SIZE,
				     run * PCM_PAGE_SIZE)) {
			pcm_sess_error(&d->ss, "discard: fallocate: %s", strerror(errno));
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
	pthread_mutex_unlock(&d->ss.lock);
	if (!d->fault_started) {
		int fl = fcntl(d->uffd, F_GETFL);

		fcntl(d->uffd, F_SETFL, fl & ~O_NONBLOCK);
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
		pcm_sess_error(&d->ss, "COMPLETE with %llu pages missing",
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
	if (dig == src)
		d->ss.phase = PCM_PH_COMPLETED;
	else
		snprintf(d->ss.st.last_error, sizeof(d->ss.st.last_error),
			 "digest mismatch: source %016llx destination %016llx",
			 (unsigned long long)src, (unsigned long long)dig);
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
		/* the bulk channel may be idle for long; main has heartbeats */
		ret = pcm_recv(c, &f, buf, bulk ? 24 * 3600 * 1000 : -1);
		if (ret) {
			pcm_sess_fail(&d->ss, ret, bulk ? "bulk channel" : "main channel");
			break;
		}
		switch (f.h.type) {
		case PCM_T_PING:
			ret = bulk ? -PCM_E_STATE : 0;
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

struct pending {
	bool have;
	struct pcm_chan c;
	uint32_t epoch;
};

static void pending_drop(struct pending *p)
{
	if (p->have)
		pcm_chan_destroy(&p->c);
	p->have = false;
}

/* read and validate a HELLO on a fresh connection; -PCM_E_* or kind */
static int read_hello(struct pcm_dst *d, int fd, struct pending *slots,
		      unsigned char *buf)
{
	struct pcm_chan c;
	struct pcm_frame f;
	struct pcm_hello h;
	int ret, kind;

	pcm_sock_tune(fd, d->o.link_timeout_ms, false);
	if (pcm_chan_init(&c, fd, 0, d->session, 0, d->o.key,
			  d->o.link_timeout_ms)) {
		close(fd);
		return -PCM_E_IO;
	}
	ret = pcm_recv(&c, &f, buf, -1);
	if (!ret && f.h.type != PCM_T_HELLO)
		ret = -PCM_E_STATE;
	if (ret)
		goto bad;
	memcpy(&h, f.p, sizeof(h));
	kind = le32toh(h.channel);
	if (le32toh(h.version) != PCM_VERSION ||
	    le32toh(h.page_size) != PCM_PAGE_SIZE || h.flags ||
	    (kind != PCM_CH_MAIN && kind != PCM_CH_BULK)) {
		ret = -PCM_E_STATE;
		goto bad;
	}
	if (le64toh(h.npages) != d->npages) {
		pcm_sess_error(&d->ss, "source region has %llu pages, destination %llu",
			       (unsigned long long)le64toh(h.npages),
			       (unsigned long long)d->npages);
		ret = -PCM_E_RANGE;
		goto bad;
	}
	if (f.h.epoch <= d->last_epoch || f.h.session == 0) {
		ret = -PCM_E_EPOCH;
		goto bad;
	}
	c.kind = kind;
	c.epoch = f.h.epoch;
	c.session = f.h.session;
	if (kind == PCM_CH_BULK) {
		/* the bulk channel has a bigger tx buffer only on the source */
		c.tx_flush_at = 0;
	}
	pending_drop(&slots[kind - 1]);
	slots[kind - 1].c = c;
	slots[kind - 1].have = true;
	slots[kind - 1].epoch = f.h.epoch;
	return kind;
bad:
	/* a connection cut before its HELLO arrived is a lost link */
	if (ret != -PCM_E_IO) {
		pcm_sess_error(&d->ss, "rejected connection: %s", pcm_err_name(ret));
		ADD(d, rejected_frames, 1);
	}
	pcm_chan_destroy(&c);
	return ret;
}

static int dst_handshake(struct pcm_dst *d, unsigned char *buf)
{
	struct pcm_hello_ack ack = { 0 };
	struct pcm_frame f;
	uint64_t w, le;
	int ret;

	ack.phase = htole32(d->ss.phase);
	ack.received = htole64(pcm_bitmap_weight(d->recv, d->npages));
	ret = pcm_send(&d->ss.main, PCM_T_HELLO_ACK, &ack, sizeof(ack), NULL, 0,
		       d->ss.phase == PCM_PH_NEW || d->ss.phase == PCM_PH_COMPLETED);
	if (ret)
		return -PCM_E_IO;
	if (d->ss.phase == PCM_PH_COMPLETED) {
		/* the source lost our COMPLETE_ACK; it now says goodbye */
		ret = pcm_recv(&d->ss.main, &f, buf, -1);
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
		uint64_t first, k;

		for (first = 0; first < d->npages;
		     first += PCM_BITMAP_CHUNK_BITS) {
			uint64_t nbits = d->npages - first;
			struct pcm_bitmap_hdr bh = { 0 };
			unsigned char *bytes;

			if (nbits > PCM_BITMAP_CHUNK_BITS)
				nbits = PCM_BITMAP_CHUNK_BITS;
			bytes = calloc(1, (nbits + 63) / 64 * 8);
			if (!bytes)
				return -PCM_E_IO;
			for (k = 0; k < (nbits + 63) / 64; k++) {
				w = __atomic_load_n(&d->recv[first / 64 + k],
						    __ATOMIC_ACQUIRE);
				w = htole64(w);
				memcpy(bytes + k * 8, &w, 8);
			}
			bh.first = htole64(first);
			bh.nbits = htole32(nbits);
			ret = pcm_send(&d->ss.main, PCM_T_RBITMAP, &bh,
				       sizeof(bh), bytes, (nbits + 7) / 8,
				       false);
			free(bytes);
			if (ret)
				return -PCM_E_IO;
		}
		le = htole64(pcm_bitmap_weight(d->recv, d->npages));
		if (pcm_send(&d->ss.main, PCM_T_RBITMAP_END, &le, 8, NULL, 0,
			     true))
			return -PCM_E_IO;
	}
	for (;;) {
		ret = pcm_recv(&d->ss.main, &f, buf, -1);
		if (ret)
			return ret;
		if (f.h.type == PCM_T_RESUME)
			break;
		if (f.h.type != PCM_T_PING)
			return -PCM_E_STATE;
	}
	pthread_mutex_lock(&d->ss.lock);
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

	return d->bye || d->ss.phase == PCM_PH_FAILED;
}

int pcm_dst_run(struct pcm_dst *d, const char *addr)
{
	unsigned char *buf = malloc(PCM_MAX_PAYLOAD);
	struct pending slots[2] = { 0 };
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
	while (!d->bye && d->ss.phase != PCM_PH_FAILED &&
	       !(d->ss.phase == PCM_PH_COMPLETED && kml_now_ns() > linger)) {
		int fd;

		pthread_mutex_lock(&d->ss.lock);
		pcm_sess_wait_unpaused(&d->ss);
		if (d->ss.addr_changed) {
			int nfd = pcm_listen(d->ss.addr, err, sizeof(err));

			d->ss.addr_changed = false;
			if (nfd < 0) {
				snprintf(d->ss.st.last_error,
					 sizeof(d->ss.st.last_error), "%.150s", err);
			} else {
				close(d->lfd);
				d->lfd = nfd;
			}
		}
		pthread_mutex_unlock(&d->ss.lock);
		fd = pcm_accept(d->lfd, 200);
		if (fd < 0)
			continue;
		t0 = kml_now_ns();
		read_hello(d, fd, slots, buf);
		if (!slots[0].have || !slots[1].have ||
		    slots[0].epoch != slots[1].epoch) {
			/* drop the older half of a link */
			if (slots[0].have && slots[1].have) {
				if (slots[0].epoch < slots[1].epoch)
					pending_drop(&slots[0]);
				else
					pending_drop(&slots[1]);
			}
			continue;
		}
		d->ss.main = slots[0].c;
		d->ss.bulk = slots[1].c;
		slots[0].have = false;
		slots[1].have = false;
		pthread_mutex_lock(&d->ss.lock);
		d->last_epoch = d->ss.main.epoch;
		if (!d->session)
			d->session = d->ss.main.session;
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
		pcm_sess_heartbeat(&d->ss, dst_done, d);
		ret = d->ss.phase == PCM_PH_COMPLETED || d->ss.phase == PCM_PH_FAILED;
		if (d->ss.phase == PCM_PH_COMPLETED && !linger)
			linger = kml_now_ns() +
				 (uint64_t)d->o.linger_ms * 1000000;
		pthread_mutex_unlock(&d->ss.lock);
		pcm_sess_down(&d->ss, d->thr, 2);
		pcm_sess_paused(&d->ss, !ret);
	}
	pending_drop(&slots[0]);
	pending_drop(&slots[1]);
	free(buf);
	return d->ss.phase == PCM_PH_COMPLETED ? 0 : -1;
}

/* ---- shared helpers ---- */

const char *pcm_phase_name(int phase)
{
	static const char *const n[] = { "new", "precopy", "postcopy-active",
					  "completed", "failed" };

	return phase >= 0 && phase < (int)KML_ARRAY_SIZE(n) ? n[phase] : "?";
}

const char *pcm_link_name(int link)
{
	static const char *const n[] = { "active", "paused", "recovering" };

	return link >= 0 && link < (int)KML_ARRAY_SIZE(n) ? n[link] : "?";
}

void pcm_stats_json(const struct pcm_stats *st, void *jp)
{
	struct kml_json *j = jp;
	char sid[24];

	snprintf(sid, sizeof(sid), "%016llx", (unsigned long long)st->session);
	kml_json_str(j, "state", st->link == PCM_LINK_ACTIVE ||
		     st->phase >= PCM_PH_COMPLETED ?
		     pcm_phase_name(st->phase) :
		     st->link == PCM_LINK_PAUSED ? "paused" : "recovering");
	kml_json_str(j, "phase", pcm_phase_name(st->phase));
	kml_json_str(j, "link", pcm_link_name(st->link));
	kml_json_str(j, "session", sid);
	kml_json_u64(j, "epoch", st->epoch);
	kml_json_u64(j, "npages", st->npages);
	kml_json_u64(j, "pages_done", st->received);
	kml_json_u64(j, "pages_sent", st->pages_sent);
	kml_json_u64(j, "pages_received", st->pages_recv);
	kml_json_u64(j, "pages_requested", st->pages_req);
	kml_json_u64(j, "pages_urgent", st->pages_urgent);
	kml_json_u64(j, "pages_duplicate", st->pages_dup);
	kml_json_u64(j, "pages_checksummed", st->pages_summed);
	kml_json_u64(j, "precopy_rounds", st->rounds);
	kml_json_u64(j, "dirty_last_round", st->dirty_last);
	kml_json_str(j, "dirty_tracking", st->dirty_mode);
	kml_json_u64(j, "failures", st->failures);
	kml_json_u64(j, "recoveries", st->recoveries);
	kml_json_u64(j, "rejected_frames", st->rejected_frames);
	kml_json_u64(j, "recover_ns_last", st->recover_ns_last);
	kml_json_u64(j, "recover_ns_max", st->recover_ns_max);
	kml_json_u64(j, "fault_samples", st->lat_n);
	kml_json_u64(j, "fault_p50_ns", st->lat_p50);
	kml_json_u64(j, "fault_p90_ns", st->lat_p90);
	kml_json_u64(j, "fault_p99_ns", st->lat_p99);
	kml_json_u64(j, "fault_max_ns", st->lat_max);
	snprintf(sid, sizeof(sid), "%016llx",
		 (unsigned long long)st->digest_src);
	kml_json_str(j, "digest_source", sid);
	snprintf(sid, sizeof(sid), "%016llx",
		 (unsigned long long)st->digest_dst);
	kml_json_str(j, "digest_destination", sid);
	kml_json_str(j, "last_error", st->last_error);
}
