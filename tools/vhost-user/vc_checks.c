// SPDX-License-Identifier: GPL-2.0
/*
 * vc_checks - vu-check's conformance checks (I/O, event index, dirty log,
 * migration, disabled/stopped rings, resets, reconnect, inflight).
 */
#include "vc.h"

/* ---- the checks ---------------------------------------------------------- */

bool vc_ro(struct vc *c)
{
	return c->acked & VU_BIT(VIRTIO_BLK_F_RO);
}

/* write a pattern (unless read-only) and read it back on queue @q */
bool vc_rw_check(struct vc *c, unsigned int q, uint64_t sector,
		 uint32_t len, uint32_t seed, bool indirect,
		 bool write, char *why, size_t wl)
{
	uint8_t *expect = malloc(len);
	struct vc_io io = { 0 };
	bool ok = false;

	vc_pattern(expect, len, sector, seed);
	if (write && !vc_ro(c)) {
		memcpy(vc_data(c, q), expect, len);
		io = (struct vc_io){ .type = VIRTIO_BLK_T_OUT, .sector = sector,
				     .len = len, .indirect = indirect };
		if (!vc_io_ok(c, q, &io, why, wl))
			goto out;
	}
	memset(vc_data(c, q), 0xa5, len);
	io = (struct vc_io){ .type = VIRTIO_BLK_T_IN, .sector = sector,
			     .len = len, .indirect = indirect };
	if (!vc_io_ok(c, q, &io, why, wl))
		goto out;
	if (!vc_ro(c) && memcmp(vc_data(c, q), expect, len)) {
		snprintf(why, wl, "data read back differs from data written");
		goto out;
	}
	ok = true;
out:
	free(expect);
	return ok;
}

static void vc_drain_calls(struct vc *c);
static bool vc_any_call(struct vc *c);

/*
 * EVENT_IDX: with used_event asking for an interrupt at this completion,
 * the call eventfd must fire (vc_wait_used() alone would not notice: it
 * also polls used->idx); once idle, avail_event must ask for a kick at
 * the next buffer (avail_event == avail->idx), or a guest never kicks.
 */
static void vc_check_event_idx(struct vc *c)
{
	struct vc_io io = { .type = VIRTIO_BLK_T_IN, .sector = c->sector,
			    .len = 4096 };
	struct vc_vq *vq = &c->vq[0];
	volatile uint16_t *avail_event = (uint16_t *)&vq->used->ring[VC_QSIZE];
	struct pollfd p = { vq->call, POLLIN, 0 };
	uint64_t deadline, cnt;
	bool called;
	uint32_t len;
	uint16_t id;

	if (!(c->acked & VU_BIT(VIRTIO_RING_F_EVENT_IDX))) {
		vc_result("event-idx", VC_SKIP, "EVENT_IDX not offered");
		return;
	}
	vc_drain_calls(c);
	vc_submit(c, 0, &io);		/* used_event = this completion */
	vc_kick(vq);
	called = poll(&p, 1, c->timeout_ms) > 0 &&
		 read(vq->call, &cnt, 8) == 8;
	if (vc_wait_used(c, 0, c->timeout_ms, &len, &id)) {
		vc_result("event-idx", VC_FAIL, "no completion within %d ms",
			  c->timeout_ms);
		return;
	}
	if (!called) {
		vc_result("event-idx", VC_FAIL,
			  "no call for a completion at used_event (the guest would wait forever)");
		return;
	}
	deadline = kml_now_ns() + 200 * 1000000ull;
	while (*avail_event != vq->avail_idx && kml_now_ns() < deadline)
		usleep(1000);
	if (*avail_event != vq->avail_idx)
		vc_result("event-idx", VC_FAIL,
			  "idle ring: avail_event %u, avail->idx %u (no kick would be sent)",
			  *avail_event, vq->avail_idx);
	else
		vc_result("event-idx", VC_PASS,
			  "call sent at used_event; idle ring asks for a kick at the next buffer");
}

#define VC_STREAM_REQS	20000
#define VC_STREAM_DEPTH	8

/*
 * EVENT_IDX as a guest uses it, with requests streaming: up to 8 in flight,
 * a kick only when avail_event asks for one, and sleeping on the call
 * eventfd only (used_event set first, then used->idx checked once more, as
 * Linux's virtqueue_enable_cb does). A back-end that suppresses kicks or
 * holds calls (vub --coalesce) and loses a wake-up stalls here.
 */
static void vc_check_event_stream(struct vc *c)
{
	struct vc_io io = { .type = VIRTIO_BLK_T_IN, .sector = c->sector,
			    .len = 4096 };
	struct vc_vq *vq = &c->vq[0];
	volatile uint16_t *avail_event = (uint16_t *)&vq->used->ring[VC_QSIZE];
	struct vring_desc d[3];
	unsigned int nd = vc_io_descs(c, 0, &io, d);
	bool busy[VC_SLOTS] = { false };
	unsigned int sent = 0, done = 0, inflight = 0, kicks = 0, calls = 0;
	uint64_t t0 = kml_now_ns();

	if (!(c->acked & VU_BIT(VIRTIO_RING_F_EVENT_IDX))) {
		vc_result("event-idx-stream", VC_SKIP, "EVENT_IDX not offered");
		return;
	}
	vc_drain_calls(c);
	while (done < VC_STREAM_REQS) {
		uint16_t old = vq->avail_idx, u;

		/* refill: the same 4K read, each chain in a free slot */
		while (inflight < VC_STREAM_DEPTH && sent < VC_STREAM_REQS) {
			unsigned int slot = 0;

			while (busy[slot])
				slot++;
			busy[slot] = true;
			vc_publish_at(c, 0, slot * 4, d, nd);
			sent++;
			inflight++;
		}
		if (vq->avail_idx != old &&
		    vring_need_event(*avail_event, vq->avail_idx, old)) {
			vc_kick(vq);
			kicks++;
		}
		/* ask for an interrupt at the next completion, then re-check */
		vq->avail->ring[VC_QSIZE] = vq->used_seen;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		u = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
		if (u == vq->used_seen) {
			struct pollfd p = { vq->call, POLLIN, 0 };
			uint64_t cnt;

			if (poll(&p, 1, c->timeout_ms) <= 0 ||
			    read(vq->call, &cnt, 8) != 8) {
				vc_result("event-idx-stream", VC_FAIL,
					  "stalled after %u of %u requests: no call within %d ms (avail->idx %u, avail_event %u, used->idx %u, used_event %u)",
					  done, VC_STREAM_REQS, c->timeout_ms,
					  vq->avail_idx, *avail_event,
					  vq->used->idx, vq->used_seen);
				return;
			}
			calls++;
			u = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
		}
		for (; vq->used_seen != u; vq->used_seen++) {
			uint32_t id = vq->used->ring[vq->used_seen % VC_QSIZE].id;

			if (id % 4 || id / 4 >= VC_SLOTS || !busy[id / 4]) {
				vc_result("event-idx-stream", VC_FAIL,
					  "used ring id %u is not an outstanding chain head",
					  id);
				return;
			}
			busy[id / 4] = false;
			inflight--;
			done++;
		}
	}
	vc_result("event-idx-stream", VC_PASS,
		  "%u 4K reads, %u in flight: %u kicks, %u calls, %.0f ms",
		  VC_STREAM_REQS, VC_STREAM_DEPTH, kicks, calls,
		  (kml_now_ns() - t0) / 1e6);
}

void vc_check_io(struct vc *c)
{
	char why[160];
	unsigned int q;
	struct vc_io io;

	if (vc_rw_check(c, 0, c->sector, 64 << 10, 1, false, true, why,
			sizeof(why)))
		vc_result("io", VC_PASS, "64K %s on queue 0",
			  vc_ro(c) ? "read (read-only device)" : "write + read back");
	else
		vc_result("io", VC_FAIL, "queue 0: %s", why);
	vc_check_event_idx(c);
	vc_check_event_stream(c);

	if (!(c->acked & VU_BIT(VIRTIO_RING_F_INDIRECT_DESC)))
		vc_result("indirect-desc", VC_SKIP, "INDIRECT_DESC not offered");
	else if (vc_rw_check(c, 0, c->sector + 128, 16 << 10, 2, true, true,
			     why, sizeof(why)))
		vc_result("indirect-desc", VC_PASS, "16K write + read via an indirect table");
	else
		vc_result("indirect-desc", VC_FAIL, "%s", why);

	if (c->nq < 2) {
		vc_result("multiqueue", VC_SKIP, "back-end has 1 queue");
	} else {
		for (q = 1; q < c->nq; q++)
			if (!vc_rw_check(c, q, c->sector + 160 + q * 8, 4096,
					 10 + q, false, true, why, sizeof(why)))
				break;
		if (q == c->nq)
			vc_result("multiqueue", VC_PASS, "I/O on queues 1..%u",
				  c->nq - 1);
		else
			vc_result("multiqueue", VC_FAIL, "queue %u: %s", q, why);
	}

	if (vc_ro(c)) {
		io = (struct vc_io){ .type = VIRTIO_BLK_T_OUT, .sector = c->sector, .len = 4096 };
		vc_do_io(c, 0, &io, c->timeout_ms);
		vc_result("read-only", io.status == VIRTIO_BLK_S_IOERR ?
			  VC_PASS : VC_FAIL,
			  "write to a read-only device: status %d (want %d)",
			  io.status, VIRTIO_BLK_S_IOERR);
	}
	if (!(c->acked & VU_BIT(VIRTIO_BLK_F_FLUSH))) {
		vc_result("flush", VC_SKIP, "FLUSH not offered");
	} else {
		io = (struct vc_io){ .type = VIRTIO_BLK_T_FLUSH, .sector = 0, .len = 0 };
		if (vc_io_ok(c, 0, &io, why, sizeof(why)))
			vc_result("flush", VC_PASS, "FLUSH completed with OK");
		else
			vc_result("flush", VC_FAIL, "%s", why);
	}
	io = (struct vc_io){ .type = VIRTIO_BLK_T_IN, .sector = c->capacity, .len = 512 };
	vc_do_io(c, 0, &io, c->timeout_ms);
	vc_result("out-of-range-io", io.status == VIRTIO_BLK_S_IOERR ?
		  VC_PASS : VC_FAIL,
		  "read at sector %" PRIu64 " (= capacity): status %d (want IOERR)",
		  c->capacity, io.status);
}

/*
 * I/O that must complete after a SET_FEATURES. If it does not, re-enable
 * the rings the way the seed patch did and report the deviation.
 */
static void vc_io_after_set_features(struct vc *c, const char *name,
				     const char *what, uint32_t seed,
				     uint64_t sector)
{
	char why[160];
	unsigned int q;

	if (vc_rw_check(c, 0, sector, 4096, seed, false, true, why,
			sizeof(why))) {
		vc_result(name, VC_PASS, "I/O completes after %s", what);
		return;
	}
	if (strncmp(why, "no completion", 13)) {
		vc_result(name, VC_FAIL, "after %s: %s", what, why);
		return;
	}
	/* the seed patch's workaround: remember enable state, re-enable */
	for (q = 0; q < c->nq; q++)
		if (vc_state(c, VU_SET_VRING_ENABLE, q, 1))
			break;
	{
		uint32_t len;
		uint16_t id;

		if (q == c->nq && !vc_wait_used(c, 0, c->timeout_ms, &len, &id))
			vc_result(name, VC_FAIL,
				  "deviating back-end: rings disabled by %s; I/O resumed only after the checker re-enabled them (spec: only SET_VRING_ENABLE changes enabled state)",
				  what);
		else
			vc_result(name, VC_FAIL,
				  "I/O hangs after %s, even after re-enabling the rings",
				  what);
	}
}

static bool vc_logged(struct vc *c, uint64_t gpa, uint64_t len)
{
	uint64_t a;

	for (a = gpa & ~(VU_LOG_PAGE - 1); a < gpa + len; a += VU_LOG_PAGE)
		if (!vu_log_test(c->log, c->log_size, a))
			return false;
	return true;
}

/*
 * A log shorter than guest memory (vu-check --short-log; QEMU never sends
 * one): {8 KiB, offset 4 KiB} covers GPA < 256 MiB, the rings, not the
 * buffers. Device writes beyond it are not logged and must not write past
 * the log (the fd around it is a guard), the used ring is still logged,
 * and I/O goes on. Not for libvhost-user: it asserts the page is inside.
 */
static void vc_check_short_log(struct vc *c)
{
	struct vu_log lb = { VC_SHORT_LOG, VC_SHORT_OFF };
	uint8_t *bits = c->log + VC_SHORT_OFF;
	struct vc_vq *vq = &c->vq[0];
	struct vu_msg m;
	const char *bad = NULL;
	char why[160];
	uint64_t i;
	int ret;

	memset(c->log, 0xa5, VC_LOGFD_SIZE);
	memset(bits, 0, VC_SHORT_LOG);
	c->fail_why = NULL;
	ret = vc_send(c, VU_SET_LOG_BASE, 0, &lb, sizeof(lb), &c->logfd, 1);
	if (!ret)
		ret = vc_recv_reply(c, VU_SET_LOG_BASE, &m);
	if (ret < 0) {
		vc_result("short-log", VC_FAIL, "SET_LOG_BASE {8K, 4K}: %s",
			  c->fail_why);
		return;
	}
	for (unsigned int k = 0; k < 2 && !bad; k++) {
		uint32_t sz = k ? 4096 : 64 << 10;
		struct vc_io io = { .type = VIRTIO_BLK_T_IN,
				    .sector = c->sector, .len = sz };
		uint16_t slot;

		if (!vc_io_ok(c, 0, &io, why, sizeof(why))) {
			bad = why;
			break;
		}
		slot = (vq->used_seen - 1) % VC_QSIZE;
		if (!vu_log_test(bits, VC_SHORT_LOG, vq->used_gpa + 4 + 8 * slot))
			bad = "used ring element (inside the log) not marked";
	}
	for (i = 0; i < VC_SHORT_OFF && !bad; i++)
		if (c->log[i] != 0xa5)
			bad = "bytes before mmap_offset written";
	for (i = VC_SHORT_OFF + VC_SHORT_LOG; i < VC_LOGFD_SIZE && !bad; i++)
		if (c->log[i] != 0xa5)
			bad = "bytes past the log written";
	if (bad) {
		vc_result("short-log", VC_FAIL, "%s", bad);
		return;
	}
	/* the full log again */
	lb = (struct vu_log){ c->log_size, 0 };
	memset(c->log, 0, VC_LOGFD_SIZE);
	ret = vc_send(c, VU_SET_LOG_BASE, 0, &lb, sizeof(lb), &c->logfd, 1);
	if (!ret)
		ret = vc_recv_reply(c, VU_SET_LOG_BASE, &m);
	vc_result("short-log", ret < 0 ? VC_FAIL : VC_PASS, "%s",
		  ret < 0 ? c->fail_why :
		  "log for GPA < 256 MiB at offset 4K: buffers beyond it not logged, nothing written outside it, used ring logged, I/O goes on");
}

void vc_check_migration(struct vc *c)
{
	struct vu_log lb = { c->log_size, 0 };
	struct vu_msg m;
	unsigned int q;
	char why[160];
	struct vc_io io;
	int ret;

	if (!(c->packed & VU_BIT(VU_PF_LOG_SHMFD))) {
		vc_result("log-base", VC_FAIL, "LOG_SHMFD not negotiated: QEMU cannot migrate");
		return;
	}
	/* migration start, exactly as QEMU 7.2: LOG_BASE, FEATURES, ADDR */
	memset(c->log, 0, c->log_size);
	c->fail_why = NULL;
	ret = vc_send(c, VU_SET_LOG_BASE, 0, &lb, sizeof(lb), &c->logfd, 1);
	if (!ret)
		ret = vc_recv_reply(c, VU_SET_LOG_BASE, &m);
	if (ret < 0 || (ret != 0 && ret != 8)) {
		vc_result("log-base", VC_FAIL, "SET_LOG_BASE {size, offset} + fd: %s",
			  c->fail_why ? c->fail_why : "reply size not 0 or 8");
		return;
	}
	vc_result("log-base", VC_PASS, "16-byte SET_LOG_BASE + fd: %s reply",
		  ret ? "u64" : "header-only");

	if (vc_u64(c, VU_SET_FEATURES, c->acked | VU_BIT(VHOST_F_LOG_ALL))) {
		vc_result("log-all-on", VC_FAIL, "SET_FEATURES(LOG_ALL): %s",
			  c->fail_why);
		return;
	}
	for (q = 0; q < c->nq; q++)
		if (vc_vring_addr(c, q, true)) {
			vc_result("log-all-on", VC_FAIL, "SET_VRING_ADDR(LOG): %s",
				  c->fail_why);
			return;
		}
	vc_io_after_set_features(c, "log-all-on",
				 "SET_FEATURES(LOG_ALL on) + SET_VRING_ADDR(LOG)", 3,
				 c->sector + 200);

	/*
	 * dirty log: a device write must mark the buffer and used ring; a
	 * large and a small read (a back-end may serve them differently,
	 * vub: worker pool vs its main thread)
	 */
	for (unsigned int k = 0; k < 2; k++) {
		uint32_t sz = k ? 4096 : 64 << 10;
		uint64_t b = vc_buf_gpa(0);
		struct vc_vq *vq = &c->vq[0];
		const char *miss;
		unsigned int set = 0;
		uint16_t slot;

		memset(c->log, 0, c->log_size);
		memset(vc_data(c, 0), 0, sz);
		io = (struct vc_io){ .type = VIRTIO_BLK_T_IN,
				     .sector = c->sector, .len = sz };
		if (!vc_io_ok(c, 0, &io, why, sizeof(why))) {
			vc_result("dirty-log", VC_FAIL, "%uK read with LOG_ALL: %s",
				  sz >> 10, why);
			break;
		}
		slot = (vq->used_seen - 1) % VC_QSIZE;
		miss = !vc_logged(c, b + VC_DATA_OFF, sz) ? "data buffer pages" :
		       !vc_logged(c, b + VC_STATUS_OFF, 1) ? "status byte page" :
		       !vc_logged(c, vq->used_gpa + 4 + 8 * slot, 8) ?
		       "used ring element" :
		       !vc_logged(c, vq->used_gpa + 2, 2) ? "used->idx" : NULL;
		for (uint64_t i = 0; i < c->log_size * 8; i++)
			if (c->log[i / 8] & (1u << (i % 8)))
				set++;
		if (miss) {
			vc_result("dirty-log", VC_FAIL,
				  "after a %uK device write: %s not marked (%u pages marked)",
				  sz >> 10, miss, set);
			break;
		}
		if (k)
			vc_result("dirty-log", VC_PASS,
				  "64K and 4K device writes: buffer, status and used ring marked (%u pages for 4K)",
				  set);
	}

	if (c->short_log)
		vc_check_short_log(c);

	/* migrate_cancel: LOG_ALL off again, no SET_VRING_ENABLE */
	if (vc_u64(c, VU_SET_FEATURES, c->acked)) {
		vc_result("log-all-off", VC_FAIL, "SET_FEATURES: %s",
			  c->fail_why);
		return;
	}
	for (q = 0; q < c->nq; q++)
		if (vc_vring_addr(c, q, false)) {
			vc_result("log-all-off", VC_FAIL, "SET_VRING_ADDR: %s",
				  c->fail_why);
			return;
		}
	vc_io_after_set_features(c, "log-all-off",
				 "SET_FEATURES(LOG_ALL off) as on migrate_cancel", 4,
				 c->sector + 208);
}

/*
 * After a kick on queue 0 with guest memory saved in @snap: true if the
 * request completed within @ms, or, when guest memory changed or a call
 * came meanwhile (a slow back-end at work), within the timeout. False if
 * nothing was touched for @ms, or (*touched) touched but never completed.
 */
static bool vc_kick_completes(struct vc *c, const uint8_t *snap, int ms,
			      uint32_t *len, uint16_t *id, bool *touched)
{
	*touched = false;
	if (!vc_wait_used(c, 0, ms, len, id))
		return true;
	if (!memcmp(snap, c->mem, VC_MEM_SIZE) && !vc_any_call(c))
		return false;
	*touched = true;
	return !vc_wait_used(c, 0, c->timeout_ms, len, id);
}

/*
 * SET_VRING_ENABLE 0 on started rings: a request made available and kicked
 * must not be executed (no guest-memory write, no call) and must complete
 * after SET_VRING_ENABLE 1. A back-end that executes it anyway is reported
 * as a skip: libvhost-user does that, and the spec only asks a disabled
 * ring to be processed "without causing any side effects".
 */
void vc_check_disabled(struct vc *c)
{
	struct vc_io io = { .type = VIRTIO_BLK_T_IN, .sector = c->sector,
			    .len = 4096 };
	const char *how;
	uint8_t *snap;
	unsigned int q;
	uint32_t len;
	uint16_t head, id;
	bool touched;

	for (q = 0; q < c->nq; q++)
		if (vc_state(c, VU_SET_VRING_ENABLE, q, 0)) {
			vc_result("disabled-ring", VC_FAIL,
				  "SET_VRING_ENABLE 0: %s", c->fail_why);
			return;
		}
	vc_drain_calls(c);
	memset(vc_data(c, 0), 0x5a, 4096);
	head = vc_submit(c, 0, &io);
	snap = malloc(VC_MEM_SIZE);
	memcpy(snap, c->mem, VC_MEM_SIZE);
	vc_kick(&c->vq[0]);
	if (vc_kick_completes(c, snap, 500, &len, &id, &touched)) {
		free(snap);
		for (q = 0; q < c->nq; q++)
			if (vc_state(c, VU_SET_VRING_ENABLE, q, 1))
				break;
		vc_result("disabled-ring", q == c->nq ? VC_SKIP : VC_FAIL,
			  "a request kicked on a disabled ring was executed (libvhost-user does this; the spec asks for no side effects)%s",
			  q == c->nq ? "" : "; SET_VRING_ENABLE 1 failed");
		return;
	}
	free(snap);
	if (touched) {
		vc_result("disabled-ring", VC_FAIL,
			  "a request kicked on a disabled ring did not complete, but guest memory changed or a call was signalled");
		return;
	}
	for (q = 0; q < c->nq; q++)
		if (vc_state(c, VU_SET_VRING_ENABLE, q, 1)) {
			vc_result("disabled-ring", VC_FAIL,
				  "SET_VRING_ENABLE 1: %s", c->fail_why);
			return;
		}
	if (!vc_wait_used(c, 0, 500, &len, &id)) {
		how = "resumed by SET_VRING_ENABLE 1 alone";
	} else {
		vc_kick(&c->vq[0]);
		if (vc_wait_used(c, 0, c->timeout_ms, &len, &id)) {
			vc_result("disabled-ring", VC_FAIL,
				  "the request kept pending on a disabled ring never completed after SET_VRING_ENABLE 1 and a kick");
			return;
		}
		how = "resumed by SET_VRING_ENABLE 1 and a kick";
	}
	if (id != head ||
	    *(uint8_t *)vc_gpa(c, vc_buf_gpa(0) + VC_STATUS_OFF) !=
	    VIRTIO_BLK_S_OK)
		vc_result("disabled-ring", VC_FAIL,
			  "pending request %s: wrong used id or status", how);
	else
		vc_result("disabled-ring", VC_PASS,
			  "kicked request untouched for 0.5 s (no write, no call); %s",
			  how);
}

/* GET_VRING_BASE: index, then no writes; then restart from that index */
void vc_check_stop_restart(struct vc *c)
{
	uint8_t *snap = malloc(VC_MEM_SIZE);
	struct vc_io io = { .type = VIRTIO_BLK_T_IN, .sector = 0, .len = 4096 };
	struct vu_msg m;
	unsigned int q;
	uint64_t cnt;
	bool bad_index = false, wrote = false, called = false;
	char why[160];

	io.sector = c->sector;
	/* SET_VRING_ENABLE 0 then GET_VRING_BASE, as QEMU at switchover */
	for (q = 0; q < c->nq; q++) {
		struct vhost_vring_state s = { q, 0 };

		if (vc_state(c, VU_SET_VRING_ENABLE, q, 0) ||
		    vc_send(c, VU_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0) ||
		    vc_recv_reply(c, VU_GET_VRING_BASE, &m) != 8) {
			vc_result("get-vring-base", VC_FAIL, "queue %u: %s", q,
				  c->fail_why ? c->fail_why : "bad reply size");
			free(snap);
			return;
		}
		if (m.p.state.index != q || m.p.state.num != c->vq[q].avail_idx)
			bad_index = true;
	}
	vc_result("get-vring-base", bad_index ? VC_FAIL : VC_PASS,
		  bad_index ? "returned index differs from the requests consumed" :
		  "every ring returned its last_avail_idx");

	/* a request made available while stopped must not be touched */
	for (q = 0; q < c->nq; q++)
		while (read(c->vq[q].call, &cnt, 8) > 0)
			;
	vc_submit(c, 0, &io);
	memcpy(snap, c->mem, VC_MEM_SIZE);
	vc_kick(&c->vq[0]);
	usleep(300000);
	wrote = memcmp(snap, c->mem, VC_MEM_SIZE) != 0;
	for (q = 0; q < c->nq; q++)
		if (read(c->vq[q].call, &cnt, 8) > 0)
			called = true;
	vc_result("stopped-no-writes", wrote || called ? VC_FAIL : VC_PASS,
		  wrote ? "guest memory changed after GET_VRING_BASE" :
		  called ? "call eventfd signalled after GET_VRING_BASE" :
		  "no guest-memory write or call in 300 ms after a kick on a stopped ring");
	free(snap);

	/* restart from the returned index: the pending request runs */
	for (q = 0; q < c->nq; q++) {
		uint16_t base = c->vq[q].avail_idx - (q == 0 ? 1 : 0);

		if (vc_vq_start(c, q, base, true)) {
			vc_result("restart", VC_FAIL, "queue %u: %s", q,
				  c->fail_why);
			return;
		}
	}
	{
		uint32_t len;
		uint16_t id;

		/* the spec starts a ring on a kick: pass on the pending one */
		vc_kick(&c->vq[0]);
		if (vc_wait_used(c, 0, c->timeout_ms, &len, &id))
			vc_result("restart", VC_FAIL,
				  "request made available while stopped not processed after restart");
		else if (!vc_rw_check(c, 0, c->sector + 216, 4096, 5, false,
				      true, why, sizeof(why)))
			vc_result("restart", VC_FAIL, "I/O after restart: %s", why);
		else
			vc_result("restart", VC_PASS,
				  "restarted at the returned index; pending request completed");
	}
}

static void vc_drain_calls(struct vc *c)
{
	uint64_t cnt;
	unsigned int q;

	for (q = 0; q < c->nq; q++)
		while (read(c->vq[q].call, &cnt, 8) > 0)
			;
}

static bool vc_any_call(struct vc *c)
{
	uint64_t cnt;
	unsigned int q;
	bool called = false;

	for (q = 0; q < c->nq; q++)
		if (read(c->vq[q].call, &cnt, 8) > 0)
			called = true;
	return called;
}

/*
 * Send @req (no payload), then a GET_FEATURES round trip so that it has
 * been handled (also without REPLY_ACK). 0, or -1 with c->fail_why.
 */
static int vc_req_sync(struct vc *c, uint32_t req)
{
	uint64_t v;

	c->fail_why = NULL;
	if (vc_req(c, req, NULL, 0, NULL, 0) ||
	    vc_get_u64(c, VU_GET_FEATURES, &v))
		return -1;
	return 0;
}

/* sectors [c->sector + 224, +32): 4 KiB per queue for the reset checks */
#define VC_RESET_SECTOR	224

/*
 * RESET_OWNER is deprecated: "It is recommended that back-ends either
 * ignore this message, or use it to disable all rings"; discarding the
 * connection state "would lead to bugs". So after it, a request made
 * available and kicked either completes (ignored), or waits untouched
 * (disabled) and completes after SET_VRING_ENABLE 1 alone, with the same
 * memory table, ring addresses, indexes and fds. A back-end that reset
 * its rings never completes it.
 */
void vc_check_reset_owner(struct vc *c)
{
	uint64_t sector = c->sector + VC_RESET_SECTOR;
	struct vc_io io = { .type = VIRTIO_BLK_T_OUT, .sector = sector,
			    .len = 4096 };
	const char *how = NULL;
	uint8_t *snap = NULL;
	unsigned int q;
	uint32_t len;
	uint16_t head, id;
	char why[160];
	bool touched;

	if (vc_req_sync(c, VU_RESET_OWNER)) {
		vc_result("reset-owner", VC_FAIL,
			  "RESET_OWNER: %s (spec: ignore it or disable the rings; the connection stays)",
			  c->fail_why);
		return;
	}
	vc_drain_calls(c);
	vc_pattern(vc_data(c, 0), 4096, sector, 20);
	if (vc_ro(c))
		io.type = VIRTIO_BLK_T_IN;	/* a write would get IOERR */
	head = vc_submit(c, 0, &io);
	snap = malloc(VC_MEM_SIZE);
	memcpy(snap, c->mem, VC_MEM_SIZE);
	vc_kick(&c->vq[0]);
	if (vc_kick_completes(c, snap, 500, &len, &id, &touched)) {
		how = "ignored: the rings kept running";
		goto done;
	}
	/* disabled: nothing may be touched until SET_VRING_ENABLE 1 */
	if (touched) {
		vc_result("reset-owner", VC_FAIL,
			  "after RESET_OWNER a kicked request did not complete, but guest memory changed or a call was signalled");
		goto out;
	}
	for (q = 0; q < c->nq; q++)
		if (vc_state(c, VU_SET_VRING_ENABLE, q, 1)) {
			vc_result("reset-owner", VC_FAIL,
				  "SET_VRING_ENABLE 1 after RESET_OWNER: %s",
				  c->fail_why);
			goto out;
		}
	if (!vc_wait_used(c, 0, 500, &len, &id)) {
		how = "disabled; pending request resumed by SET_VRING_ENABLE 1 alone";
		goto done;
	}
	vc_kick(&c->vq[0]);
	if (!vc_wait_used(c, 0, c->timeout_ms, &len, &id)) {
		how = "disabled; pending request resumed by SET_VRING_ENABLE 1 + a kick";
		goto done;
	}
	vc_result("reset-owner", VC_FAIL,
		  "RESET_OWNER discarded the ring state: a pending request never completed, not even after SET_VRING_ENABLE 1 and a kick (spec: ignore it or only disable the rings)");
	goto out;
done:
	if (id != head ||
	    *(uint8_t *)vc_gpa(c, vc_buf_gpa(0) + VC_STATUS_OFF) !=
	    VIRTIO_BLK_S_OK) {
		vc_result("reset-owner", VC_FAIL,
			  "after RESET_OWNER (%s): wrong used id or status", how);
		goto out;
	}
	/* the write landed, and every ring still works without any setup */
	for (q = 0; q < c->nq; q++)
		if (!vc_rw_check(c, q, sector + q * 8, 4096, 20 + q, false,
				 q > 0, why, sizeof(why))) {
			vc_result("reset-owner", VC_FAIL,
				  "after RESET_OWNER (%s): queue %u: %s", how, q,
				  why);
			goto out;
		}
	vc_result("reset-owner", VC_PASS, "%s; state kept, I/O on every queue",
		  how);
out:
	free(snap);
}

/*
 * RESET_DEVICE (protocol feature RESET_DEVICE): "disable all rings and
 * reset all internal device state to the initial state, ready to be
 * reinitialized"; the back-end keeps the connection and its ownership.
 * After it a kick on the old rings must touch nothing, and the rings must
 * take a full setup again (SET_VRING_NUM is refused on a started ring)
 * from index 0. The memory table belongs to the connection and is kept.
 */
void vc_check_reset_device(struct vc *c)
{
	uint64_t sector = c->sector + VC_RESET_SECTOR;
	struct vc_io io = { .type = VIRTIO_BLK_T_IN, .sector = sector,
			    .len = 4096 };
	uint8_t *snap;
	unsigned int q;
	char why[160];
	bool touched;

	if (!(c->packed & VU_BIT(VU_PF_RESET_DEVICE))) {
		vc_result("reset-device", VC_SKIP,
			  "protocol feature RESET_DEVICE not offered");
		return;
	}
	if (vc_req_sync(c, VU_RESET_DEVICE)) {
		vc_result("reset-device", VC_FAIL, "RESET_DEVICE: %s",
			  c->fail_why);
		return;
	}
	vc_drain_calls(c);
	vc_submit(c, 0, &io);
	snap = malloc(VC_MEM_SIZE);
	memcpy(snap, c->mem, VC_MEM_SIZE);
	vc_kick(&c->vq[0]);
	usleep(500000);
	touched = memcmp(snap, c->mem, VC_MEM_SIZE) || vc_any_call(c);
	free(snap);
	if (touched) {
		vc_result("reset-device", VC_FAIL,
			  "a kick after RESET_DEVICE was processed (guest memory written or call signalled): the rings were not reset");
		return;
	}
	if (vc_u64(c, VU_SET_FEATURES, c->acked)) {
		vc_result("reset-device", VC_FAIL,
			  "SET_FEATURES after RESET_DEVICE: %s", c->fail_why);
		return;
	}
	for (q = 0; q < c->nq; q++) {
		vc_vq_init_mem(c, q);
		if (vc_vq_start(c, q, 0, true)) {
			vc_result("reset-device", VC_FAIL,
				  "setting queue %u up again after RESET_DEVICE: %s",
				  q, c->fail_why);
			return;
		}
	}
	for (q = 0; q < c->nq; q++)
		if (!vc_rw_check(c, q, sector + q * 8, 4096, 30 + q, false,
				 true, why, sizeof(why))) {
			vc_result("reset-device", VC_FAIL,
				  "after RESET_DEVICE and a new ring setup: queue %u: %s",
				  q, why);
			return;
		}
	vc_result("reset-device", VC_PASS,
		  "old rings untouched after a kick; set up again from index 0, I/O on every queue");
}

void vc_check_reconnect(struct vc *c)
{
	char why[160];

	vc_close(c);
	if (vc_session(c, false, false)) {
		vc_result("reconnect", VC_FAIL, "second session: %s",
			  c->fail_why ? c->fail_why : "setup failed");
		return;
	}
	/* data from the first session must still be there */
	if (!vc_rw_check(c, 0, c->sector, 64 << 10, 1, false, false, why,
			 sizeof(why)))
		vc_result("reconnect", VC_FAIL, "no PROTOCOL_FEATURES, no SET_VRING_ENABLE: %s",
			  why);
	else
		vc_result("reconnect", VC_PASS,
			  "new connection without PROTOCOL_FEATURES: rings enabled at once, data persisted");
}

/*
 * INFLIGHT_SHMFD: a back-end restarted after a crash must resubmit exactly
 * the requests its predecessor had fetched and not completed, as recorded
 * in the inflight region (the spec's split-ring layout), and go on after
 * them. Without a VM and without killing anyone: a session with the
 * region does 3 requests (the region must show them done), the connection
 * is dropped, and the region and rings are left as a crashed back-end
 * would leave them: heads 12, 16, 20 fetched (avail 3..5), 20 then 16
 * completed out of order (used 3, 4), but the crash came after 16's used
 * index and before its inflight flag was cleared (used_idx 4, last batch
 * 16); head 24 is available, not fetched. A new session hands the region
 * back and restarts the ring at the used index (as QEMU does): the
 * back-end must complete 12 (resubmitted) and 24 (new), nothing else, and
 * leave the region with nothing in flight. Without inflight tracking it
 * redoes 20 and loses 12 (QEMU 7.2 with vub: "req.0:id 14 is not a head!").
 */
#define VC_IFL_OFF(k)	(VC_DATA_OFF + 32u * (k))

static void vc_ifl_publish(struct vc *c, unsigned int k, uint8_t status)
{
	uint64_t b = vc_buf_gpa(0);
	struct virtio_blk_outhdr *h = vc_gpa(c, b + VC_HDR_OFF);
	struct vring_desc d[3] = {
		{ b + VC_HDR_OFF, sizeof(*h), 0, 0 },
		{ b + VC_IFL_OFF(k), 20, VRING_DESC_F_WRITE, 0 },
		{ b + VC_STATUS_OFF + k, 1, VRING_DESC_F_WRITE, 0 },
	};

	h->type = VIRTIO_BLK_T_GET_ID;
	h->ioprio = 0;
	h->sector = 0;
	*(uint8_t *)vc_gpa(c, b + VC_STATUS_OFF + k) = status;
	vc_publish_at(c, 0, k * 4, d, 3);
}

static uint8_t vc_ifl_status(struct vc *c, unsigned int k)
{
	return *(volatile uint8_t *)vc_gpa(c, vc_buf_gpa(0) + VC_STATUS_OFF + k);
}

void vc_check_inflight(struct vc *c)
{
	struct vu_inflight_split *r;
	struct vc_vq *vq = &c->vq[0];
	unsigned int k, n;
	uint32_t len;
	uint16_t id, ids[2];
	uint64_t deadline;

	if (!(c->pfeatures & VU_BIT(VU_PF_INFLIGHT_SHMFD))) {
		vc_result("inflight", VC_SKIP,
			  "INFLIGHT_SHMFD not offered: requests in flight at a back-end crash are lost or redone");
		return;
	}
	vc_close(c);
	c->want_inflight = true;
	if (vc_session(c, true, false)) {
		vc_result("inflight", VC_FAIL, "session with GET/SET_INFLIGHT_FD: %s",
			  c->fail_why ? c->fail_why : "setup failed");
		goto out;
	}
	r = (void *)c->ifl;
	/* three requests, one at a time: heads 0, 4, 8 */
	for (k = 0; k < 3; k++) {
		vc_ifl_publish(c, k, 0xff);
		vc_kick(vq);
		if (vc_wait_used(c, 0, c->timeout_ms, &len, &id) ||
		    id != k * 4 || vc_ifl_status(c, k)) {
			vc_result("inflight", VC_FAIL, "GET_ID %u with the region: %s",
				  k, id != k * 4 ? "wrong used id" : "no completion or bad status");
			goto out;
		}
	}
	for (n = 0, k = 0; k < VC_QSIZE; k++)
		n += r->desc[k].inflight != 0;
	if (r->version != VU_INFLIGHT_VERSION || r->desc_num != VC_QSIZE ||
	    r->used_idx != 3 || n) {
		vc_result("inflight", VC_FAIL,
			  "after 3 completed requests the region says version %u, desc_num %u, used_idx %u, %u in flight (want 1, %u, 3, 0)",
			  r->version, r->desc_num, r->used_idx, n, VC_QSIZE);
		goto out;
	}
	/*
	 * The crash, and what the crashed back-end left behind. The ring is
	 * stopped first (GET_VRING_BASE): a back-end still in its ring loop
	 * would otherwise take the requests published below before it sees
	 * the connection close, which a dead one would not.
	 */
	{
		struct vhost_vring_state st = { 0, 0 };
		struct vu_msg m;

		if (vc_send(c, VU_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0) ||
		    vc_recv_reply(c, VU_GET_VRING_BASE, &m) != 8 ||
		    m.p.state.num != 3) {
			vc_result("inflight", VC_FAIL, "GET_VRING_BASE before the simulated crash: %s",
				  c->fail_why ? c->fail_why : "not 3");
			goto out;
		}
	}
	vc_close(c);
	for (k = 3; k < 7; k++)
		vc_ifl_publish(c, k, k == 4 || k == 5 ? 0x55 : 0xff);
	r->desc[12].counter = 100;
	r->desc[16].counter = 101;
	r->desc[20].counter = 102;
	vq->used->ring[3] = (struct vring_used_elem){ 20, 1 };
	vq->used->ring[4] = (struct vring_used_elem){ 16, 1 };
	vq->used->idx = 5;
	r->desc[12].inflight = 1;
	r->desc[16].inflight = 1;
	r->last_batch_head = 16;
	r->used_idx = 4;
	vq->used_seen = 5;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	c->resume = true;
	if (vc_session(c, true, false)) {
		vc_result("inflight", VC_FAIL, "reconnect with SET_INFLIGHT_FD: %s",
			  c->fail_why ? c->fail_why : "setup failed");
		goto out;
	}
	vc_kick(vq);	/* a guest would have kicked for head 24 */
	for (k = 0; k < 2; k++) {
		if (vc_wait_used(c, 0, c->timeout_ms, &len, &ids[k])) {
			vc_result("inflight", VC_FAIL,
				  "after the restart %u of 2 requests completed within %d ms (used->idx %u): the resubmission of head 12 or head 24 is missing",
				  k, c->timeout_ms, vq->used->idx);
			goto out;
		}
	}
	/* nothing else may come */
	deadline = kml_now_ns() + 300 * 1000000ull;
	while (kml_now_ns() < deadline && vq->used->idx == 7)
		usleep(10000);
	for (n = 0, k = 0; k < VC_QSIZE; k++)
		n += r->desc[k].inflight != 0;
	if (!((ids[0] == 12 && ids[1] == 24) || (ids[0] == 24 && ids[1] == 12)) ||
	    vq->used->idx != 7 || vc_ifl_status(c, 3) || vc_ifl_status(c, 6) ||
	    vc_ifl_status(c, 4) != 0x55 || vc_ifl_status(c, 5) != 0x55) {
		vc_result("inflight", VC_FAIL,
			  "after the restart: used ids %u, %u (want 12 and 24), used->idx %u (want 7), status of 12/16/20/24: 0x%x/0x%x/0x%x/0x%x (want 0/0x55/0x55/0: 16 and 20 were complete)",
			  ids[0], ids[1], vq->used->idx, vc_ifl_status(c, 3),
			  vc_ifl_status(c, 4), vc_ifl_status(c, 5),
			  vc_ifl_status(c, 6));
		goto out;
	}
	if (n || r->used_idx != 7) {
		vc_result("inflight", VC_FAIL,
			  "requests completed, but the region says %u in flight, used_idx %u (want 0, 7)",
			  n, r->used_idx);
		goto out;
	}
	vc_result("inflight", VC_PASS,
		  "after a simulated crash (fetched 12, 16, 20; 20 and 16 completed, 16's flag left set): resubmitted exactly 12, then took 24%s",
		  ids[0] == 12 ? "" : " (24 completed first)");
out:
	c->want_inflight = false;
	c->resume = false;
	vc_close(c);
	if (c->ifl)
		munmap(c->ifl, c->ifl_info.mmap_size);
	c->ifl = NULL;
	if (c->ifl_fd >= 0)
		close(c->ifl_fd);
	c->ifl_fd = -1;
	/* the other checks need their rings as vc_session() sets them up */
	if (!vc_session(c, true, false))
		return;
	kml_warn("reconnecting after the inflight check: %s",
		 c->fail_why ? c->fail_why : "failed");
}
