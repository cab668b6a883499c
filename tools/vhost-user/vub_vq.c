// SPDX-License-Identifier: GPL-2.0
/*
 * vub_vq - vub's virtqueues: split-ring descriptor chains, the used ring, notifications
 * (call coalescing) and inflight tracking (INFLIGHT_SHMFD).
 */
#include "vub.h"

/* main thread only: kicks read (eventfd counts) and calls sent */
uint64_t vub_kicks, vub_calls;

/* split [gpa, gpa+len) at region boundaries and append it */
static int vub_add_buf(struct vub_conn *c, struct vub_seg *segs,
		       unsigned int *n, uint64_t gpa, uint32_t len)
{
	while (len) {
		unsigned int i;
		uint64_t chunk = 0;
		uint8_t *host = NULL;

		for (i = 0; i < c->nregions; i++) {
			struct vub_region *r = &c->regions[i];

			if (gpa >= r->gpa && gpa - r->gpa < r->size) {
				chunk = r->size - (gpa - r->gpa);
				host = r->host + (gpa - r->gpa);
				break;
			}
		}
		if (!host)
			return vub_failf(c, "descriptor buffer 0x%" PRIx64 "+%u outside the memory table (%u regions)",
					 gpa, len, c->nregions);
		if (*n >= VUB_MAX_SEGS)
			return vub_fail(c, "request has too many segments");
		if (chunk > len)
			chunk = len;
		segs[*n].host = host;
		segs[*n].gpa = gpa;
		segs[*n].len = chunk;
		(*n)++;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

/* walk a descriptor chain into rd/wr segment lists */
static int vub_walk_chain(struct vub_conn *c, struct vub_vq *vq,
			  uint16_t head, struct vub_req *rq)
{
	struct vring_desc *table = vq->desc;
	unsigned int tsize = vq->num, count = 0;
	bool indirect = false;
	uint16_t idx = head;
	struct vring_desc d;
	int ret;

	rq->nrd = 0;
	rq->nwr = 0;
	rq->rd_len = 0;
	rq->wr_len = 0;
	for (;;) {
		if (idx >= tsize)
			return vub_fail(c, "descriptor index outside the descriptor table");
		if (++count > tsize)
			return vub_fail(c, "descriptor chain loops");
		/* one snapshot per descriptor: the guest may change it */
		memcpy(&d, (void *)&table[idx], sizeof(d));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vub_has(c, VIRTIO_RING_F_INDIRECT_DESC))
				return vub_fail(c, "indirect descriptor without INDIRECT_DESC");
			if (indirect)
				return vub_fail(c, "nested indirect descriptor");
			if (d.flags & VRING_DESC_F_NEXT)
				return vub_fail(c, "indirect descriptor with NEXT set");
			if (!d.len || d.len % sizeof(d) ||
			    d.len / sizeof(d) > VUB_MAX_INDIRECT)
				return vub_fail(c, "indirect table length invalid");
			table = vub_gpa(c, d.addr, d.len);
			if (!table || (uintptr_t)table % 2)
				return vub_fail(c, "indirect table outside the memory table");
			tsize = d.len / sizeof(d);
			indirect = true;
			count = 0;
			idx = 0;
			continue;
		}
		if (d.flags & VRING_DESC_F_WRITE) {
			ret = vub_add_buf(c, rq->wr, &rq->nwr, d.addr, d.len);
			rq->wr_len += d.len;
		} else {
			if (rq->nwr)
				return vub_fail(c, "device-readable descriptor after a writable one");
			ret = vub_add_buf(c, rq->rd, &rq->nrd, d.addr, d.len);
			rq->rd_len += d.len;
		}
		if (ret)
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

/*
 * The one segment walker: call @fn with each piece of bytes [off, off+len)
 * of a segment list (its host address, gpa and length), in order; returns
 * the number of pieces.
 */
static unsigned int vub_segs_walk(const struct vub_seg *s, unsigned int n,
				  uint64_t off, uint64_t len,
				  void (*fn)(const struct vub_seg *piece,
					     void *arg),
				  void *arg)
{
	unsigned int i, k = 0;

	for (i = 0; i < n && len; i++) {
		struct vub_seg piece;
		uint64_t take;

		if (off >= s[i].len) {
			off -= s[i].len;
			continue;
		}
		take = s[i].len - off;
		if (take > len)
			take = len;
		piece.host = s[i].host + off;
		piece.gpa = s[i].gpa + off;
		piece.len = take;
		fn(&piece, arg);
		k++;
		len -= take;
		off = 0;
	}
	return k;
}

static void vub_piece_read(const struct vub_seg *piece, void *arg)
{
	uint8_t **out = arg;

	memcpy(*out, piece->host, piece->len);
	*out += piece->len;
}

/* copy @len bytes at byte offset @off of a segment list out to @dst */
void vub_segs_read(const struct vub_seg *s, unsigned int n,
		   uint64_t off, void *dst, uint64_t len)
{
	uint8_t *out = dst;

	vub_segs_walk(s, n, off, len, vub_piece_read, &out);
}

static void vub_piece_iov(const struct vub_seg *piece, void *arg)
{
	struct iovec **iov = arg;

	(*iov)->iov_base = piece->host;
	(*iov)->iov_len = piece->len;
	(*iov)++;
}

/* build an iovec for bytes [off, off+len) of a segment list */
int vub_segs_iov(const struct vub_seg *s, unsigned int n, uint64_t off,
		 uint64_t len, struct iovec *iov)
{
	return vub_segs_walk(s, n, off, len, vub_piece_iov, &iov);
}

struct vub_piece_log {
	struct vub *v;
	struct vub_conn *c;
};

static void vub_piece_log(const struct vub_seg *piece, void *arg)
{
	struct vub_piece_log *l = arg;

	vub_log_gpa(l->v, l->c, piece->gpa, piece->len);
}

/* log every guest page in bytes [off, off+len) of a writable list */
void vub_segs_log(struct vub *v, struct vub_conn *c,
		  const struct vub_seg *s, unsigned int n, uint64_t off,
		  uint64_t len)
{
	struct vub_piece_log l = { v, c };

	vub_segs_walk(s, n, off, len, vub_piece_log, &l);
}

int vub_vq_map(struct vub_conn *c, struct vub_vq *vq)
{
	bool ev = vub_has(c, VIRTIO_RING_F_EVENT_IDX);

	vq->desc = vub_uva(c, vq->addr.desc_user_addr, vu_desc_size(vq->num));
	vq->avail = vub_uva(c, vq->addr.avail_user_addr,
			    vu_avail_size(vq->num, ev));
	vq->used = vub_uva(c, vq->addr.used_user_addr,
			   vu_used_size(vq->num, ev));
	if (!vq->desc || !vq->avail || !vq->used)
		return vub_failf(c, "vring address outside the memory table (desc 0x%llx avail 0x%llx used 0x%llx, %u regions)",
				 (unsigned long long)vq->addr.desc_user_addr,
				 (unsigned long long)vq->addr.avail_user_addr,
				 (unsigned long long)vq->addr.used_user_addr,
				 c->nregions);
	return 0;
}

void vub_notify(struct vub_vq *vq)
{
	uint64_t one = 1;

	if (vq->call_fd < 0)
		return;
	vub_calls++;
	/*
	 * The call fd is a non-blocking eventfd (vub_vring_fd()): EAGAIN
	 * means its counter is at its maximum, so the front-end will see it
	 * non-zero and be woken anyway. Never wait for it.
	 */
	if (write(vq->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		kml_warn("call eventfd write failed: %s", strerror(errno));
}

/* put one completed chain into the used ring (main thread only) */
static void vub_used_push(struct vub *v, struct vub_conn *c, struct vub_vq *vq,
			  uint16_t head, uint32_t written)
{
	struct vring_used_elem *ue;

	if (!vq->completed) {
		vq->completed = true;
		vq->notify_old = vq->used_idx;
	}
	/*
	 * Inflight tracking, as the spec's split-ring procedure (a batch of
	 * one): the head is the last batch before used->idx moves, and is
	 * no longer in flight after. A crash between the two leaves
	 * used_idx behind used->idx: vub_inflight_start() then clears it.
	 */
	if (vq->ifl)
		vq->ifl->last_batch_head = head;
	ue = &vq->used->ring[vq->used_idx % vq->num];
	ue->id = head;
	ue->len = written;
	vub_log_used(v, c, vq, 4 + 8ull * (vq->used_idx % vq->num), 8);
	vq->used_idx++;
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	vub_log_used(v, c, vq, 2, 2);
	if (vq->ifl) {
		vq->ifl->desc[head].inflight = 0;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		vq->ifl->used_idx = vq->used_idx;
	}
	c->requests++;
	v->total_requests++;
	vq->win_reqs++;
}

static void vub_vq_signal(struct vub *v, struct vub_conn *c,
			  struct vub_vq *vq);

/*
 * Take everything available on a started and enabled ring and check each
 * chain. A request the page cache can serve without blocking is done here
 * (preadv2/pwritev2 RWF_NOWAIT: no thread hand-off, no wake-ups) and goes
 * straight to the used ring, with its own notification check (EVENT_IDX
 * suppresses all but the one the guest waits for); the rest go to the
 * workers, whose completions vub_complete() writes to the used ring, also
 * in the main thread, with one notification check per batch.
 */
static int vub_vq_process_ring(struct vub *v, struct vub_conn *c,
			       struct vub_vq *vq)
{
	bool ev = vub_has(c, VIRTIO_RING_F_EVENT_IDX);
	int ret;

	if (!vq->started || !vq->enabled || c->dead)
		return 0;
	ret = vub_vq_map(c, vq);
	if (ret)
		return ret;
	for (;;) {
		bool redo = vq->resubmit_pos < vq->nresubmit;
		uint16_t avail_idx, head;
		struct vub_job *job;
		int64_t written;

		/* requests in flight when the last back-end stopped, first */
		if (redo)
			goto fetch;
		avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
		if ((uint16_t)(avail_idx - vq->last_avail) > vq->num)
			return vub_fail(c, "avail index moved by more than the queue size");
		if (avail_idx == vq->last_avail) {
			/*
			 * While a call is held (--coalesce) the guest need not
			 * kick: vub_held_calls() looks at the ring again.
			 */
			if (!ev || vq->held)
				break;
			/* ask for a kick at the next buffer, then re-check */
			((uint16_t *)vq->used->ring)[vq->num * 4] = vq->last_avail;
			vub_log_used(v, c, vq, 4 + 8ull * vq->num, 2);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) ==
			    vq->last_avail)
				break;
			continue;
		}
fetch:
		job = vub_job_get(c);
		if (!job)
			break;	/* resumed by vub_complete() */
		c->cur_job = job;	/* put back if a SIGBUS ends this */
		head = redo ? vq->resubmit[vq->resubmit_pos] :
		       vq->avail->ring[vq->last_avail % vq->num];
		ret = vub_walk_chain(c, vq, head, &job->rq);
		if (!ret)
			ret = vub_blk_check(c, job);
		if (ret) {
			c->cur_job = NULL;
			vub_job_put(c, job);
			return ret;
		}
		job->c = c;
		job->q = vq - c->vqs;
		job->head = head;
		if (redo) {
			vq->resubmit_pos++;
		} else {
			vq->last_avail++;
			if (vq->ifl) {
				vq->ifl->desc[head].counter = vq->counter++;
				__atomic_thread_fence(__ATOMIC_RELEASE);
				vq->ifl->desc[head].inflight = 1;
			}
		}
		written = vub_blk_request(v, c, job, true);
		if (written >= 0) {
			/*
			 * Signal it now if the guest waits for it
			 * (used_event), not at the end of the batch: the
			 * guest refills its queue while we go on.
			 */
			c->cur_job = NULL;
			vub_job_put(c, job);
			vub_used_push(v, c, vq, head, written);
			vub_vq_signal(v, c, vq);
			v->total_inline++;
			continue;
		}
		c->cur_job = NULL;
		c->inflight++;
		vub_submit(v, job);
	}
	vub_vq_signal(v, c, vq);
	return 0;
}

/* vub_vq_process_ring() under a recovery point (a SIGBUS drops @c) */
int vub_vq_process(struct vub *v, struct vub_conn *c, struct vub_vq *vq)
{
	if (c->faulted)
		return -EPROTO;
	return VUB_GUARDED(c, -EPROTO, vub_vq_process_ring(v, c, vq));
}

/* call the guest for the completions since the last check if it asked to */
static bool vub_notify_check_ring(struct vub_conn *c, struct vub_vq *vq)
{
	uint16_t old = vq->notify_old;

	vq->completed = false;
	if (vq->used_idx == old)
		return false;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vub_has(c, VIRTIO_RING_F_EVENT_IDX)) {
		uint16_t event = vq->avail->ring[vq->num];

		if (!vring_need_event(event, vq->used_idx, old))
			return false;
	} else if (__atomic_load_n(&vq->avail->flags, __ATOMIC_ACQUIRE) &
		   VRING_AVAIL_F_NO_INTERRUPT) {
		return false;
	}
	vub_notify(vq);
	return true;
}

static bool vub_notify_check(struct vub_conn *c, struct vub_vq *vq)
{
	if (c->faulted) {
		vq->completed = false;
		return false;
	}
	return VUB_GUARDED(c, false, vub_notify_check_ring(c, vq));
}

/*
 * Interrupt coalescing (--coalesce, off by default), as SPDK's vhost
 * target does it: a ring that completed more than hold_iops requests per
 * second in the last window calls the guest at most once per hold_ns. A
 * held call stays pending (vq->completed) and its ring unarmed for kicks:
 * the guest queues more requests without a kick or an interrupt each, and
 * vub_held_calls() serves them and sends the call when the time is up.
 * That trades up to hold_ns of latency for fewer guest exits per request.
 */
static void vub_vq_signal(struct vub *v, struct vub_conn *c,
			  struct vub_vq *vq)
{
	uint64_t now;

	if (!vq->completed || vq->held)
		return;		/* held: vub_held_calls() sends it */
	if (!v->hold_ns) {
		vub_notify_check(c, vq);
		return;
	}
	now = kml_now_ns();
	if (now - vq->win_start >= VUB_RATE_WINDOW_NS) {
		vq->fast = vq->win_reqs * VUB_NS_PER_SEC >
			   v->hold_iops * (now - vq->win_start);
		vq->win_start = now;
		vq->win_reqs = 0;
	}
	if (vq->fast && now < vq->next_call) {
		v->total_held++;
		vq->held = true;
		return;
	}
	if (vub_notify_check(c, vq))
		vq->next_call = now + v->hold_ns;
}

/*
 * Send the held calls whose time is up, after serving what the guest
 * queued meanwhile (it did not kick). Returns the time in ns until the
 * next one is due, -1 if none is held.
 */
int64_t vub_held_calls(struct vub *v)
{
	int64_t next = -1;
	unsigned int s, q;
	uint64_t now;

	if (!v->hold_ns)
		return -1;
	now = kml_now_ns();
	for (s = 0; s < VUB_MAX_CONNS; s++) {
		struct vub_conn *c = v->conns[s];

		for (q = 0; c && !c->dead && q < v->nqueues; q++) {
			struct vub_vq *vq = &c->vqs[q];

			if (!vq->held)
				continue;
			if (now >= vq->next_call &&
			    (v->bugs & BUG_COALESCE_NO_REARM)) {
				/*
				 * The lost wake-up vu_coalesce.sh must catch:
				 * the call goes out, but the ring is not looked
				 * at again, so avail_event is not re-armed and
				 * what the guest queued without a kick waits.
				 */
				vq->held = false;
				__atomic_fetch_add(&v->bug_hits, 1,
						   __ATOMIC_RELAXED);
				if (vub_notify_check(c, vq))
					vq->next_call = now + v->hold_ns;
				continue;
			}
			if (now >= vq->next_call) {
				vq->held = false;
				vq->next_call = now;
				if (vub_vq_process(v, c, vq)) {
					c->dead = true;
					break;
				}
				if (!vq->held)
					continue;
			}
			if (next < 0 || vq->next_call - now < (uint64_t)next)
				next = vq->next_call - now;
		}
	}
	return next;
}

/*
 * Send @c's held calls now, before a message changes its rings or memory;
 * vub_held_resume() looks at those rings again once it is handled (the
 * guest may have queued requests without a kick).
 */
static void vub_held_flush(struct vub_conn *c)
{
	unsigned int q;

	for (q = 0; q < VUB_MAX_QUEUES; q++) {
		struct vub_vq *vq = &c->vqs[q];

		if (vq->held) {
			vq->held = false;
			vq->resume = true;
			vub_notify_check(c, vq);
		}
	}
}

int vub_held_resume(struct vub *v, struct vub_conn *c)
{
	unsigned int q;
	int ret = 0;

	for (q = 0; q < VUB_MAX_QUEUES && !ret; q++) {
		if (c->vqs[q].resume) {
			c->vqs[q].resume = false;
			ret = vub_vq_process(v, c, &c->vqs[q]);
		}
	}
	return ret;
}

/*
 * Put finished jobs into their used rings (main thread only), notify, and
 * take more from rings that were waiting for a free job. @busy: a
 * connection being drained, which gets no new submissions.
 */
void vub_complete(struct vub *v, struct vub_conn *busy)
{
	struct vub_job *job, *list;
	uint64_t cnt;
	unsigned int s, q;

	if (read(v->done_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		kml_warn("done eventfd: %s", strerror(errno));
	pthread_mutex_lock(&v->lock);
	list = v->done_head;
	v->done_head = NULL;
	pthread_mutex_unlock(&v->lock);

	while ((job = list)) {
		struct vub_conn *c = job->c;

		list = job->next;
		if (job->fault)
			vub_faulted(c, job->fault);
		else if (!c->faulted)
			VUB_GUARDED(c, 0, (vub_used_push(v, c, &c->vqs[job->q],
							 job->head, job->written), 0));
		c->inflight--;
		vub_job_put(c, job);
	}
	for (s = 0; s < VUB_MAX_CONNS; s++) {
		struct vub_conn *c = v->conns[s];

		if (!c)
			continue;
		for (q = 0; q < v->nqueues; q++) {
			struct vub_vq *vq = &c->vqs[q];

			if (!vq->completed)
				continue;
			vub_vq_signal(v, c, vq);
			if (c != busy && !c->dead && vub_vq_process(v, c, vq))
				c->dead = true;
		}
	}
}

/* wait until nothing of @c is in flight: before messages and teardown */
void vub_drain(struct vub *v, struct vub_conn *c)
{
	while (c->inflight) {
		struct pollfd p = { v->done_fd, POLLIN, 0 };

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			kml_die(1, NULL, "poll: %s", strerror(errno));
		vub_complete(v, c);
	}
	vub_held_flush(c);
}

/* ---- inflight tracking (INFLIGHT_SHMFD) --------------------------------- */

/*
 * With VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD the front-end keeps a region
 * for the back-end (GET_INFLIGHT_FD makes it, SET_INFLIGHT_FD hands it
 * back, also to the next back-end after a crash) in which every split ring
 * records, in the spec's layout, which heads it fetched and not yet
 * completed (vub_vq_process_ring(), vub_used_push()). A ring started with
 * such a region resubmits those first, in the order they were fetched.
 */
void vub_inflight_unmap(struct vub_conn *c)
{
	if (c->ifl_map)
		munmap(c->ifl_map, c->ifl_map_len);
	c->ifl_map = NULL;
	c->ifl_map_len = 0;
	c->ifl_base = NULL;
	c->ifl_nq = 0;
	c->ifl_qsize = 0;
}

static int vub_inflight_order(const void *a, const void *b, void *arg)
{
	const struct vu_inflight_split *r = arg;
	uint64_t x = r->desc[*(const uint16_t *)a].counter;
	uint64_t y = r->desc[*(const uint16_t *)b].counter;

	return x < y ? -1 : x > y;
}

/*
 * SET_VRING_KICK on a connection with an inflight region: a fresh region
 * is initialised; one a previous back-end used is repaired (a batch whose
 * used->idx update landed but whose inflight flags were not cleared) and
 * its in-flight heads become the resubmit list, the ring going on at
 * used->idx + their number (as libvhost-user: SET_VRING_BASE is the used
 * index QEMU restored after the crash, not where fetching stopped).
 */
int vub_inflight_start(struct vub *v, struct vub_conn *c,
		       struct vub_vq *vq)
{
	unsigned int q = vq - c->vqs, i, n = 0;
	struct vu_inflight_split *r;
	uint64_t max = 0;
	uint16_t used;

	free(vq->resubmit);
	vq->resubmit = NULL;
	vq->nresubmit = 0;
	vq->resubmit_pos = 0;
	vq->ifl = NULL;
	if (!c->ifl_map)
		return 0;
	if (q >= c->ifl_nq)
		return vub_fail(c, "ring index beyond the inflight region's num_queues");
	if (vq->num != c->ifl_qsize)
		return vub_fail(c, "ring size differs from the inflight region's queue_size");
	r = (void *)(c->ifl_base + q * vu_inflight_queue_size(c->ifl_qsize));
	used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	if (!r->version) {
		r->features = 0;
		r->desc_num = vq->num;
		r->last_batch_head = 0;
		r->used_idx = vq->used_idx;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		r->version = VU_INFLIGHT_VERSION;
		vq->counter = 1;
		vq->ifl = r;
		return 0;
	}
	if (r->version != VU_INFLIGHT_VERSION || r->desc_num != vq->num ||
	    r->features)
		return vub_failf(c, "inflight region of queue %u: version %u, %u descriptors, features 0x%llx (want 1, %u, 0)",
				 q, r->version, r->desc_num,
				 (unsigned long long)r->features, vq->num);
	/* the last batch reached the used ring: it is not in flight */
	if (r->used_idx != used && (v->bugs & BUG_INFLIGHT_NO_REPAIR)) {
		/* the defect: that batch is resubmitted, done twice */
		__atomic_fetch_add(&v->bug_hits, 1, __ATOMIC_RELAXED);
	} else if (r->used_idx != used) {
		if (r->last_batch_head >= vq->num)
			return vub_fail(c, "inflight region: last_batch_head outside the ring");
		r->desc[r->last_batch_head].inflight = 0;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		r->used_idx = used;
	}
	vq->resubmit = malloc(vq->num * sizeof(*vq->resubmit));
	if (!vq->resubmit)
		return vub_fail(c, "out of memory for the resubmit list");
	for (i = 0; i < vq->num; i++) {
		if (r->desc[i].inflight > 1)
			return vub_fail(c, "inflight region: an inflight flag is neither 0 nor 1");
		if (!r->desc[i].inflight)
			continue;
		vq->resubmit[n++] = i;
		if (r->desc[i].counter > max)
			max = r->desc[i].counter;
	}
	qsort_r(vq->resubmit, n, sizeof(*vq->resubmit), vub_inflight_order, r);
	vq->nresubmit = n;
	vq->counter = max + 1;
	vq->used_idx = used;
	vq->last_avail = used + n;
	vq->ifl = r;
	if (n)
		kml_warn("conn %u: queue %u: resubmitting %u request%s in flight when the last back-end stopped",
			 c->id, q, n, n == 1 ? "" : "s");
	return 0;
}
