// SPDX-License-Identifier: GPL-2.0
/*
 * pcmig source: precopy rounds with dirty tracking, switchover (freeze,
 * discard bitmap, RUN), the postcopy background stream, page requests
 * served on the main channel ahead of the stream, and recovery after any
 * number of transport failures.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kml.h"
#include "pcmig.h"
#include "pcmig_sess.h"
#include "uffd_compat.h"

struct pcm_src {
	struct pcm_sess ss;	/* link state, channels, stats */
	unsigned char *base;
	size_t len;
	uint64_t npages, nwords;
	struct pcm_opts o;
	char *key;
	struct pcm_region_ops ops;
	uint64_t *need, *sent_ep, *recv_bm;
	uint64_t *dset;		/* the discard set sent at switchover */

	int dmode, duffd, pmfd;

	uint32_t epoch;
	uint64_t session;
	bool switch_req, switch_pending, frozen, connected_once;
	bool digest_valid, complete_sent;
	uint64_t digest;
	uint64_t ack_deadline;	/* COMPLETE sent: COMPLETE_ACK due by then */

	pthread_t thr[2];	/* rx (main channel), bulk stream */
	uint64_t bulk_bytes, bulk_t0;
};

#define ADD(s, f, v) PCM_ADD(&(s)->ss, f, v)

/* ---- dirty tracking ---- */

static int wp_async_init(struct pcm_src *s, char *err, size_t errlen)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = {
		.range = { (uintptr_t)s->base, s->len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { (uintptr_t)s->base, s->len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int fd;

	fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "userfaultfd: %s", strerror(errno));
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api) ||
	    !(api.features & UFFD_FEATURE_WP_ASYNC)) {
		snprintf(err, errlen, "userfaultfd WP_ASYNC not supported (kernel < 6.7?)");
		goto fail;
	}
	if (ioctl(fd, UFFDIO_REGISTER, &reg) ||
	    ioctl(fd, UFFDIO_WRITEPROTECT, &wp)) {
		snprintf(err, errlen, "userfaultfd WP register: %s",
			 strerror(errno));
		goto fail;
	}
	s->pmfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (s->pmfd < 0) {
		snprintf(err, errlen, "open /proc/self/pagemap: %s",
			 strerror(errno));
		goto fail;
	}
	s->duffd = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

static int clear_refs(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	int ret = -1;

	if (fd < 0)
		return -1;
	if (write(fd, "4", 1) == 1)
		ret = 0;
	close(fd);
	return ret;
}

static int soft_dirty_bit(int pmfd, void *addr)
{
	uint64_t e;

	if (pread(pmfd, &e, 8, (uintptr_t)addr / PCM_PAGE_SIZE * 8) != 8)
		return -1;
	return !!(e & (1ull << 55));
}

static int soft_dirty_init(struct pcm_src *s, char *err, size_t errlen)
{
	volatile unsigned char *probe = s->base;
	unsigned char c;

	s->pmfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (s->pmfd < 0) {
		snprintf(err, errlen, "open /proc/self/pagemap: %s",
			 strerror(errno));
		return -1;
	}
	/* probe: a write after clear_refs must set bit 55 */
	c = probe[0];
	if (clear_refs() || soft_dirty_bit(s->pmfd, s->base) != 0) {
		snprintf(err, errlen, "soft-dirty not supported (CONFIG_MEM_SOFT_DIRTY off?)");
		goto fail;
	}
	probe[0] = c;
	if (soft_dirty_bit(s->pmfd, s->base) != 1) {
		snprintf(err, errlen, "soft-dirty bit not set after a write");
		goto fail;
	}
	clear_refs();
	return 0;
fail:
	close(s->pmfd);
	s->pmfd = -1;
	return -1;
}

/* a written page must be sent again (the test hook forgets it instead) */
static void mark_dirty(struct pcm_src *s, uint64_t p)
{
	if (s->o.broken_dirty && s->ss.st.rounds)
		PCM_ADD(&s->ss, dirty_dropped, 1);
	else
		pcm_set_bit(s->need, p);
}

/* OR the pages written since the last call into need; returns how many */
static int64_t dirty_collect(struct pcm_src *s)
{
	uint64_t n = 0, i;

	if (s->dmode == PCM_DIRTY_WP_ASYNC) {
		struct page_region vec[512];
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = (uintptr_t)s->base,
			.end = (uintptr_t)s->base + s->len,
			.vec = (uintptr_t)vec,
			.vec_len = KML_ARRAY_SIZE(vec),
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};

		while (a.start < a.end) {
			long r = ioctl(s->pmfd, PAGEMAP_SCAN, &a);
			long k;

			if (r < 0)
				return -errno;
			for (k = 0; k < r; k++) {
				uint64_t p = (vec[k].start - (uintptr_t)s->base)
					     / PCM_PAGE_SIZE;
				uint64_t e = (vec[k].end - (uintptr_t)s->base)
					     / PCM_PAGE_SIZE;

				for (; p < e; p++, n++)
					mark_dirty(s, p);
			}
			a.start = a.walk_end;
		}
		return n;
	}
	/*
	 * soft-dirty: reading the bits and clearing them are two steps, so
	 * the workload is parked in between or a write could be lost.
	 */
	{
		uint64_t buf[4096], first = (uintptr_t)s->base / PCM_PAGE_SIZE;

		if (s->ops.freeze && !s->frozen)
			s->ops.freeze(s->ops.arg);
		for (i = 0; i < s->npages; i += KML_ARRAY_SIZE(buf)) {
			uint64_t cnt = s->npages - i, k;

			if (cnt > KML_ARRAY_SIZE(buf))
				cnt = KML_ARRAY_SIZE(buf);
			if (pread(s->pmfd, buf, cnt * 8, (first + i) * 8) !=
			    (ssize_t)(cnt * 8))
				return -EIO;
			for (k = 0; k < cnt; k++)
				if (buf[k] & (1ull << 55)) {
					mark_dirty(s, i + k);
					n++;
				}
		}
		clear_refs();
		if (s->ops.thaw && !s->frozen)
			s->ops.thaw(s->ops.arg);
	}
	return n;
}

/* ---- create / status / control ---- */

struct pcm_src *pcm_src_create(void *base, size_t len,
			       const struct pcm_opts *o,
			       const struct pcm_region_ops *ops, char *err,
			       size_t errlen)
{
	struct pcm_src *s;
	char e1[128] = "", e2[128] = "";
	uint64_t i;

	if (!len || len % PCM_PAGE_SIZE || (uintptr_t)base % PCM_PAGE_SIZE ||
	    len / PCM_PAGE_SIZE > PCM_MAX_PAGES) {
		snprintf(err, errlen, "region must be page aligned, non-empty and at most %llu pages",
			 PCM_MAX_PAGES);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	s->base = base;
	s->len = len;
	s->npages = len / PCM_PAGE_SIZE;
	s->nwords = (s->npages + 63) / 64;
	s->o = *o;
	if (o->key) {
		s->key = strdup(o->key);
		s->o.key = s->key;
	}
	if (ops)
		s->ops = *ops;
	s->need = calloc(s->nwords, 8);
	s->sent_ep = calloc(s->nwords, 8);
	s->recv_bm = calloc(s->nwords, 8);
	s->dset = calloc(s->nwords, 8);
	if (!s->need || !s->sent_ep || !s->recv_bm || !s->dset)
		goto nomem;
	for (i = 0; i < s->npages; i++)
		pcm_set_bit(s->need, i);
	s->duffd = -1;
	s->pmfd = -1;
	pcm_sess_init(&s->ss, o);
	s->session = o->session;
	while (!s->session) {
		if (getrandom_u64(&s->session))
			s->session = kml_now_ns() ^ ((uint64_t)getpid() << 32);
	}
	if ((o->dirty == PCM_DIRTY_AUTO || o->dirty == PCM_DIRTY_WP_ASYNC) &&
	    !wp_async_init(s, e1, sizeof(e1))) {
		s->dmode = PCM_DIRTY_WP_ASYNC;
	} else if (o->dirty != PCM_DIRTY_WP_ASYNC &&
		   !soft_dirty_init(s, e2, sizeof(e2))) {
		s->dmode = PCM_DIRTY_SOFT_DIRTY;
	} else {
		snprintf(err, errlen, "no dirty tracking: %s%s%s", e1,
			 *e1 && *e2 ? "; " : "", e2);
		pcm_src_destroy(s);
		return NULL;
	}
	/* start clean: every page is in need already */
	dirty_collect(s);
	for (i = 0; i < s->npages; i++)
		pcm_set_bit(s->need, i);
	s->ss.phase = PCM_PH_PRECOPY;
	s->ss.link = PCM_LINK_PAUSED;
	return s;
nomem:
	snprintf(err, errlen, "out of memory for %zu-byte region state", len);
	if (s)
		pcm_src_destroy(s);
	return NULL;
}

void pcm_src_destroy(struct pcm_src *s)
{
	if (s->duffd >= 0)
		close(s->duffd);
	if (s->pmfd >= 0)
		close(s->pmfd);
	free(s->need);
	free(s->sent_ep);
	free(s->recv_bm);
	free(s->dset);
	free(s->key);
	pcm_sess_destroy(&s->ss);
	free(s);
}

void pcm_src_status(struct pcm_src *s, struct pcm_stats *st)
{
	pthread_mutex_lock(&s->ss.lock);
	*st = s->ss.st;
	st->phase = s->ss.phase;
	st->link = s->ss.link;
	st->epoch = s->epoch;
	st->session = s->session;
	st->npages = s->npages;
	st->digest_src = s->digest_valid ? s->digest : 0;
	pthread_mutex_unlock(&s->ss.lock);
	st->received = s->npages - pcm_bitmap_weight(s->need, s->npages);
	snprintf(st->dirty_mode, sizeof(st->dirty_mode), "%s%s",
		 s->dmode == PCM_DIRTY_WP_ASYNC ? "wp-async" : "soft-dirty",
		 s->o.broken_dirty ? "-broken" : "");
}

void pcm_src_pause(struct pcm_src *s)
{
	pcm_sess_pause(&s->ss);
}

int pcm_src_recover(struct pcm_src *s, const char *addr)
{
	return pcm_sess_recover(&s->ss, addr);
}

void pcm_src_switchover(struct pcm_src *s)
{
	pthread_mutex_lock(&s->ss.lock);
	s->switch_req = true;
	pthread_mutex_unlock(&s->ss.lock);
}

/* ---- sending ---- */

static bool page_is_zero(const uint64_t *w)
{
	unsigned int i;

	for (i = 0; i < PCM_PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/*
 * A page the workload may still write (precopy) can be sent torn: dirty
 * tracking has seen the write and the page goes again. Only a checksummed
 * page is copied first, so that its hash matches what is sent.
 */
static int send_page(struct pcm_src *s, struct pcm_chan *c, uint64_t idx,
		     bool flush)
{
	const uint64_t *page = (const uint64_t *)(s->base +
						  idx * PCM_PAGE_SIZE);
	uint64_t buf[PCM_PAGE_SIZE / 8];
	uint64_t hdr[2] = { htole64(idx) };
	int ret;

	if (page_is_zero(page)) {
		ret = pcm_send(c, PCM_T_ZERO, hdr, 8, NULL, 0, flush);
	} else if (s->o.page_sums) {
		memcpy(buf, page, PCM_PAGE_SIZE);
		hdr[1] = htole64(pcm_page_hash(buf));
		ret = pcm_send(c, PCM_T_PAGE_SUM, hdr, 16, buf, PCM_PAGE_SIZE,
			       flush);
		if (!ret)
			ADD(s, pages_summed, 1);
	} else {
		ret = pcm_send(c, PCM_T_PAGE, hdr, 8, page, PCM_PAGE_SIZE,
			       flush);
	}
	if (!ret)
		ADD(s, pages_sent, 1);
	return ret;
}

static int handle_req(struct pcm_src *s, const struct pcm_frame *f)
{
	uint64_t idx;

	memcpy(&idx, f->p, 8);
	idx = le64toh(idx);
	if (idx >= s->npages)
		return -PCM_E_RANGE;
	if (s->ss.phase != PCM_PH_POSTCOPY)
		return -PCM_E_STATE;
	ADD(s, pages_req, 1);
	pcm_test_and_clear(s->need, idx);
	ADD(s, pages_urgent, 1);
	return send_page(s, &s->ss.main, idx, true) ? -PCM_E_IO : 0;
}

static void rate_limit(struct pcm_src *s, uint64_t bytes)
{
	uint64_t want, now;
	struct timespec ts;

	s->bulk_bytes += bytes;
	if (!s->o.bw_limit)
		return;
	want = s->bulk_t0 + s->bulk_bytes * 1000000000ull / s->o.bw_limit;
	now = kml_now_ns();
	if (want > now + 1000000) {
		ts.tv_sec = (want - now) / 1000000000ull;
		ts.tv_nsec = (want - now) % 1000000000ull;
		nanosleep(&ts, NULL);
	}
}

/* send every page in need once; 0 when the pass completed */
static int stream_pass(struct pcm_src *s, bool precopy)
{
	uint64_t w, bits, i;

	for (w = 0; w < s->nwords; w++) {
		if (__atomic_load_n(&s->ss.failed, __ATOMIC_ACQUIRE))
			return -PCM_E_IO;
		if (!__atomic_load_n(&s->need[w], __ATOMIC_RELAXED))
			continue;
		/* a requested switchover does not wait for the pass to end */
		if (precopy && __atomic_load_n(&s->switch_req, __ATOMIC_ACQUIRE))
			return 1;
		bits = __atomic_exchange_n(&s->need[w], 0, __ATOMIC_ACQ_REL);
		if (precopy)
			__atomic_fetch_or(&s->sent_ep[w], bits,
					  __ATOMIC_ACQ_REL);
		while (bits) {
			i = w * 64 + __builtin_ctzll(bits);
			bits &= bits - 1;
			if (send_page(s, &s->ss.bulk, i, false)) {
				/* put back what was not sent */
				pcm_set_bit(s->need, i);
				__atomic_fetch_or(&s->need[w], bits,
						  __ATOMIC_ACQ_REL);
				return -PCM_E_IO;
			}
			rate_limit(s, PCM_HDR_SIZE + 8 + PCM_PAGE_SIZE);
		}
	}
	return pcm_flush(&s->ss.bulk) ? -PCM_E_IO : 0;
}

static void do_switchover(struct pcm_src *s)
{
	int64_t n;

	if (s->ops.freeze)
		s->ops.freeze(s->ops.arg);
	pthread_mutex_lock(&s->ss.lock);
	s->frozen = true;
	pthread_mutex_unlock(&s->ss.lock);
	n = dirty_collect(s);
	if (n >= 0)
		s->ss.st.dirty_last = n;
	/*
	 * Keep the discard set: if RUN is lost with the link, the destination
	 * may still hold stale copies of these pages (DISCARD not applied)
	 * while the postcopy pass already cleared them from need.
	 */
	memcpy(s->dset, s->need, s->nwords * 8);
	pthread_mutex_lock(&s->ss.lock);
	s->ss.phase = PCM_PH_POSTCOPY;
	s->switch_pending = true;
	pthread_mutex_unlock(&s->ss.lock);
}

static void *bulk_thread(void *arg)
{
	struct pcm_src *s = arg;
	int64_t n;
	int ret;

	s->bulk_t0 = kml_now_ns();
	s->bulk_bytes = 0;
	while (!__atomic_load_n(&s->ss.failed, __ATOMIC_ACQUIRE)) {
		if (s->ss.phase == PCM_PH_PRECOPY) {
			bool sw;

			ret = stream_pass(s, true);
			if (ret < 0)
				break;
			if (ret > 0) {
				do_switchover(s);
				continue;
			}
			ADD(s, rounds, 1);
			n = dirty_collect(s);
			if (n < 0) {
				pcm_sess_error(&s->ss, "dirty tracking scan failed: %s",
					       strerror((int)-n));
				n = s->npages;
			}
			s->ss.st.dirty_last = n;
			pthread_mutex_lock(&s->ss.lock);
			sw = s->switch_req ||
			     (!s->o.manual_switch &&
			      (s->ss.st.rounds >= (uint64_t)s->o.max_rounds ||
			       (uint64_t)n <= s->o.switch_pages));
			pthread_mutex_unlock(&s->ss.lock);
			if (sw)
				do_switchover(s);
			continue;
		}
		if (s->ss.phase != PCM_PH_POSTCOPY)
			break;
		if (s->switch_pending) {
			ret = pcm_send_bitmap(&s->ss.bulk, PCM_T_DISCARD,
					      s->need, s->npages, true);
			if (!ret)
				ret = pcm_send(&s->ss.bulk, PCM_T_RUN, NULL, 0,
					       NULL, 0, true);
			if (ret) {
				pcm_sess_fail(&s->ss, -PCM_E_IO, "switchover");
				break;
			}
			s->switch_pending = false;
		}
		if (stream_pass(s, false))
			break;
		if (!s->complete_sent) {
			uint64_t le;

			if (!s->digest_valid) {
				uint64_t d = pcm_region_digest(s->base,
								   s->npages);

				pthread_mutex_lock(&s->ss.lock);
				s->digest = d;
				s->digest_valid = true;
				pthread_mutex_unlock(&s->ss.lock);
			}
			le = htole64(s->digest);
			s->complete_sent = true;
			if (pcm_send(&s->ss.bulk, PCM_T_COMPLETE, &le, 8, NULL, 0,
				     true))
				break;
			/*
			 * The destination answers on the main channel once it
			 * has read COMPLETE: allow it the link timeout twice
			 * over (the bulk channel's queue drains first).
			 */
			__atomic_store_n(&s->ack_deadline, kml_now_ns() +
					 (uint64_t)s->o.link_timeout_ms * 2000000,
					 __ATOMIC_RELEASE);
		}
		break;
	}
	if (__atomic_load_n(&s->ss.failed, __ATOMIC_ACQUIRE) == 0 &&
	    s->ss.phase != PCM_PH_POSTCOPY && s->ss.phase != PCM_PH_COMPLETED)
		pcm_sess_fail(&s->ss, -PCM_E_IO, "bulk stream");
	return NULL;
}

static void *rx_thread(void *arg)
{
	struct pcm_src *s = arg;
	unsigned char *buf = malloc(PCM_MAX_PAYLOAD);
	struct pcm_frame f;
	int ret;

	while (buf && !__atomic_load_n(&s->ss.failed, __ATOMIC_ACQUIRE)) {
		ret = pcm_recv(&s->ss.main, &f, buf, -1);
		if (ret) {
			pcm_sess_fail(&s->ss, ret, "main channel");
			break;
		}
		switch (f.h.type) {
		case PCM_T_PING:
			break;
		case PCM_T_REQ:
			ret = handle_req(s, &f);
			break;
		case PCM_T_COMPLETE_ACK: {
			struct pcm_complete_ack a;

			memcpy(&a, f.p, sizeof(a));
			pthread_mutex_lock(&s->ss.lock);
			s->ss.st.digest_dst = le64toh(a.digest);
			if (!s->complete_sent || a.pad || a.ok > 1) {
				ret = -PCM_E_STATE;
			} else if (a.ok && s->ss.st.digest_dst == s->digest) {
				s->ss.phase = PCM_PH_COMPLETED;
				pcm_send(&s->ss.main, PCM_T_BYE, NULL, 0, NULL,
					 0, true);
			} else {
				s->ss.phase = PCM_PH_FAILED;
				snprintf(s->ss.st.last_error,
					 sizeof(s->ss.st.last_error),
					 "digest mismatch: source %016llx destination %016llx",
					 (unsigned long long)s->digest,
					 (unsigned long long)s->ss.st.digest_dst);
				s->ss.verdict = true;
			}
			pthread_cond_broadcast(&s->ss.cond);
			pthread_mutex_unlock(&s->ss.lock);
			break;
		}
		default:
			ret = -PCM_E_STATE;
		}
		if (ret) {
			pcm_sess_fail(&s->ss, ret, "main channel");
			break;
		}
		if (s->ss.phase == PCM_PH_COMPLETED || s->ss.phase == PCM_PH_FAILED)
			break;
	}
	free(buf);
	return NULL;
}

/* ---- handshake and the connection loop ---- */

static int handshake(struct pcm_src *s, unsigned char *buf)
{
	struct pcm_hello h = {
		.version = htole32(PCM_VERSION),
		.npages = htole64(s->npages),
		.page_size = htole32(PCM_PAGE_SIZE),
	};
	struct pcm_hello_ack ack;
	struct pcm_frame f;
	uint64_t w, got = 0, lost = 0;
	/* the whole handshake, bitmap included, has a deadline */
	uint64_t dl = pcm_sess_hs_deadline(&s->ss);
	uint32_t dphase;
	int ret;

	h.channel = htole32(PCM_CH_MAIN);
	if (pcm_random(h.nonce, sizeof(h.nonce))) {
		pcm_sess_error(&s->ss, "getrandom: %s", strerror(errno));
		return -PCM_E_IO;
	}
	memcpy(s->ss.main.nonce_s, h.nonce, sizeof(h.nonce));
	s->ss.main.await_nonce = true;
	ret = pcm_send(&s->ss.main, PCM_T_HELLO, &h, sizeof(h), NULL, 0, true);
	h.channel = htole32(PCM_CH_BULK);
	if (!ret)
		ret = pcm_send(&s->ss.bulk, PCM_T_HELLO, &h, sizeof(h), NULL, 0,
			       true);
	if (ret)
		return -PCM_E_IO;
	/* HELLO_ACK: its tag is checked under the link key (our nonce too) */
	ret = pcm_sess_hs_recv(&s->ss, &f, buf, dl);
	if (ret)
		return ret;
	if (f.h.type != PCM_T_HELLO_ACK)
		return -PCM_E_STATE;
	memcpy(&ack, f.p, sizeof(ack));
	pcm_chan_set_link(&s->ss.bulk, h.nonce, ack.nonce);
	dphase = le32toh(ack.phase);
	if (dphase > PCM_PH_COMPLETED || ack.pad)
		return -PCM_E_STATE;
	if (dphase == PCM_PH_COMPLETED) {
		pthread_mutex_lock(&s->ss.lock);
		s->ss.phase = s->digest_valid ? PCM_PH_COMPLETED : s->ss.phase;
		pthread_mutex_unlock(&s->ss.lock);
		if (s->ss.phase != PCM_PH_COMPLETED)
			return -PCM_E_STATE;
		pcm_send(&s->ss.main, PCM_T_BYE, NULL, 0, NULL, 0, true);
		return 0;
	}
	if (dphase == PCM_PH_NEW && s->connected_once) {
		pcm_sess_error(&s->ss, "destination lost its state (restarted?); cannot resume");
		return -PCM_E_STATE - 1000;
	}
	if (dphase == PCM_PH_POSTCOPY && s->ss.phase == PCM_PH_PRECOPY)
		return -PCM_E_STATE;
	if (dphase != PCM_PH_NEW) {
		memset(s->recv_bm, 0, s->nwords * 8);
		for (;;) {
			uint64_t first, nbits;

			ret = pcm_sess_hs_recv(&s->ss, &f, buf, dl);
			if (ret)
				return ret;
			if (f.h.type == PCM_T_RBITMAP_END) {
				memcpy(&got, f.p, 8);
				got = le64toh(got);
				break;
			}
			if (f.h.type != PCM_T_RBITMAP)
				return -PCM_E_STATE;
			ret = pcm_bitmap_decode(&f, s->npages, s->recv_bm,
						&first, &nbits);
			if (ret)
				return ret;
		}
		if (got != pcm_bitmap_weight(s->recv_bm, s->npages))
			return -PCM_E_STATE;
		for (w = 0; w < s->nwords; w++) {
			uint64_t miss = ~s->recv_bm[w];

			if (w == s->nwords - 1 && s->npages % 64)
				miss &= (1ull << (s->npages % 64)) - 1;
			if (s->o.broken_no_bitmap) {
				/* what it drops: lost, and not queued again */
				lost += __builtin_popcountll(miss & ~s->need[w]);
				continue;
			}
			if (s->ss.phase == PCM_PH_PRECOPY)
				s->need[w] |= miss | s->sent_ep[w];
			else if (dphase == PCM_PH_PRECOPY)
				s->need[w] |= miss | s->sent_ep[w] | s->dset[w];
			else
				s->need[w] = miss;
		}
		if (s->o.broken_no_bitmap)
			__atomic_store_n(&s->ss.st.pages_not_resent, lost,
					 __ATOMIC_RELAXED);
		/*
		 * Whether DISCARD + RUN must be (re)sent depends only on what
		 * the destination applied: a RUN that went out just before a
		 * send error may well have arrived.
		 */
		s->switch_pending = s->ss.phase == PCM_PH_POSTCOPY &&
				    dphase == PCM_PH_PRECOPY;
	}
	memset(s->sent_ep, 0, s->nwords * 8);
	s->complete_sent = false;
	__atomic_store_n(&s->ack_deadline, 0, __ATOMIC_RELEASE);
	ret = pcm_send(&s->ss.main, PCM_T_RESUME, NULL, 0, NULL, 0, true);
	if (ret)
		return -PCM_E_IO;
	for (;;) {
		ret = pcm_sess_hs_recv(&s->ss, &f, buf, dl);
		if (ret)
			return ret;
		if (f.h.type == PCM_T_RESUME_ACK)
			break;
		if (f.h.type == PCM_T_REQ)
			ret = handle_req(s, &f);
		else if (f.h.type != PCM_T_PING)
			ret = -PCM_E_STATE;
		if (ret)
			return ret;
	}
	s->connected_once = true;
	return 0;
}

static int connect_both(struct pcm_src *s, char *err, size_t errlen)
{
	char addr[256];
	int fm, fb, tmo = s->o.link_timeout_ms;

	pthread_mutex_lock(&s->ss.lock);
	strcpy(addr, s->ss.addr);
	pthread_mutex_unlock(&s->ss.lock);
	fm = pcm_connect(addr, tmo, err, errlen);
	if (fm < 0)
		return -1;
	fb = pcm_connect(addr, tmo, err, errlen);
	if (fb < 0) {
		close(fm);
		return -1;
	}
	pcm_sock_tune(fm, tmo, false);
	pcm_sock_tune(fb, tmo, true);
	s->epoch++;
	if (pcm_chan_init(&s->ss.main, fm, PCM_CH_MAIN, s->session, s->epoch,
			  s->o.key, tmo, true)) {
		close(fm);
		close(fb);
		return -1;
	}
	if (pcm_chan_init(&s->ss.bulk, fb, PCM_CH_BULK, s->session, s->epoch,
			  s->o.key, tmo, true)) {
		pcm_chan_destroy(&s->ss.main);
		close(fb);
		return -1;
	}
	return 0;
}

/* with ss.lock held: the migration is over, no link needed */
static bool src_done(void *arg)
{
	struct pcm_src *s = arg;

	return s->ss.phase == PCM_PH_COMPLETED || s->ss.phase == PCM_PH_FAILED;
}

/* COMPLETE went out and no COMPLETE_ACK came back in time */
static const char *src_expired(void *arg)
{
	struct pcm_src *s = arg;
	uint64_t dl = __atomic_load_n(&s->ack_deadline, __ATOMIC_ACQUIRE);
	int outq = 0;

	if (!dl || kml_now_ns() <= dl)
		return NULL;
	/*
	 * Bytes still unacknowledged on the bulk channel: COMPLETE has not
	 * even left (a stalled send fails by TCP_USER_TIMEOUT); count the
	 * deadline from when the queue drains.
	 */
	if (!ioctl(s->ss.bulk.fd, SIOCOUTQ, &outq) && outq > 0) {
		__atomic_store_n(&s->ack_deadline, kml_now_ns() +
				 (uint64_t)s->o.link_timeout_ms * 2000000,
				 __ATOMIC_RELEASE);
		return NULL;
	}
	return "no COMPLETE_ACK within 2x the link timeout of COMPLETE";
}

int pcm_src_run(struct pcm_src *s, const char *addr)
{
	unsigned char *buf = malloc(PCM_MAX_PAYLOAD);
	char err[200];
	uint64_t t0, last_warn = 0;
	int ret, result = -1;

	if (!buf || strlen(addr) >= sizeof(s->ss.addr)) {
		free(buf);
		return -1;
	}
	pthread_mutex_lock(&s->ss.lock);
	strcpy(s->ss.addr, addr);
	pthread_mutex_unlock(&s->ss.lock);
	for (;;) {
		pthread_mutex_lock(&s->ss.lock);
		pcm_sess_wait_unpaused(&s->ss);
		pcm_sess_give_up(&s->ss);
		if (s->ss.phase == PCM_PH_COMPLETED || s->ss.phase == PCM_PH_FAILED) {
			pthread_mutex_unlock(&s->ss.lock);
			break;
		}
		s->ss.link = PCM_LINK_RECOVERING;
		pthread_mutex_unlock(&s->ss.lock);
		t0 = kml_now_ns();
		if (connect_both(s, err, sizeof(err))) {
			pcm_sess_error(&s->ss, "%s", err);
			if (!s->o.quiet && kml_now_ns() - last_warn > 5000000000ull) {
				kml_warn("%s (retrying every %d ms)", err,
					 s->o.retry_ms);
				last_warn = kml_now_ns();
			}
			pcm_sess_paused(&s->ss, false);
			usleep(s->o.retry_ms * 1000);
			continue;
		}
		__atomic_store_n(&s->ss.failed, 0, __ATOMIC_RELEASE);
		ret = handshake(s, buf);
		if (ret < -1000) {
			pthread_mutex_lock(&s->ss.lock);
			s->ss.phase = PCM_PH_FAILED;
			pthread_mutex_unlock(&s->ss.lock);
		} else if (ret) {
			pcm_sess_handshake_failed(&s->ss, ret);
		}
		if (ret || s->ss.phase == PCM_PH_COMPLETED) {
			/* nothing ran on this link yet: just drop it */
			pcm_chan_destroy(&s->ss.main);
			pcm_chan_destroy(&s->ss.bulk);
			pcm_sess_paused(&s->ss, ret && ret > -1000);
			if (ret && ret > -1000)
				usleep(s->o.retry_ms * 1000);
			continue;
		}
		pcm_sess_active(&s->ss, t0);
		pthread_create(&s->thr[0], NULL, rx_thread, s);
		pthread_create(&s->thr[1], NULL, bulk_thread, s);
		pcm_sess_heartbeat(&s->ss, src_done, src_expired, s, true);
		ret = src_done(s);
		pthread_mutex_unlock(&s->ss.lock);
		/* done or failed: stop both threads and drop the connection */
		pcm_sess_down(&s->ss, s->thr, 2);
		pcm_sess_paused(&s->ss, !ret);
	}
	result = s->ss.phase == PCM_PH_COMPLETED ? 0 : -1;
	free(buf);
	return result;
}
