// SPDX-License-Identifier: GPL-2.0
/*
 * vc_bad - vu-check --malformed: broken messages and rings, each on a
 * fresh connection.
 */
#include "vc.h"

/* ---- malformed-message checks ------------------------------------------- */

/* true if the back-end closes @sock within @ms (after an optional NACK) */
static bool vc_closed_within(int sock, int ms)
{
	uint64_t deadline = kml_now_ns() + (uint64_t)ms * 1000000;
	char buf[512];

	while (kml_now_ns() < deadline) {
		struct pollfd p = { sock, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
	return false;
}

struct vc_bad {
	const char *name;
	int (*send)(struct vc *c);
	bool needs_rings;
};

static int vc_raw(struct vc *c, uint32_t req, uint32_t flags, uint32_t size,
		  const void *payload, uint32_t psize, const int *fds, int nfds)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.request = req;
	m.hdr.flags = flags;
	m.hdr.size = size;
	if (psize)	/* payload may be NULL: memcpy(.., NULL, 0) is UB */
		memcpy(&m.p, payload, psize);
	/* send the header claiming @size but only @psize payload bytes */
	m.hdr.size = psize;
	if (size != psize) {
		struct vu_hdr h = { req, flags, size };
		struct iovec iov[2] = { { &h, sizeof(h) },
					{ (void *)payload, psize } };

		return vu_send_fds(c->sock, iov, 2, fds, nfds,
				   MSG_NOSIGNAL) < 0 ? -1 : 0;
	}
	return vu_msg_send(c->sock, &m, fds, nfds);
}

static int bad_huge_size(struct vc *c)
{
	uint64_t v = 0;

	return vc_raw(c, VU_SET_FEATURES, VU_VERSION, 4096, &v, 8, NULL, 0);
}

static int bad_short_payload(struct vc *c)
{
	uint32_t v = 0;

	return vc_raw(c, VU_SET_FEATURES, VU_VERSION, 4, &v, 4, NULL, 0);
}

static int bad_truncated(struct vc *c)
{
	uint32_t v = 0;

	/* header promises 8 bytes, only 4 arrive: back-end must time out */
	return vc_raw(c, VU_SET_FEATURES, VU_VERSION, 8, &v, 4, NULL, 0);
}

static int bad_version(struct vc *c)
{
	return vc_raw(c, VU_GET_FEATURES, 0x2, 0, NULL, 0, NULL, 0);
}

static int bad_unknown(struct vc *c)
{
	return vc_raw(c, 99, VU_VERSION, 0, NULL, 0, NULL, 0);
}

static int bad_fd_on_set_features(struct vc *c)
{
	uint64_t v = c->acked;

	return vc_raw(c, VU_SET_FEATURES, VU_VERSION, 8, &v, 8, &c->memfd, 1);
}

static int bad_kick_two_fds(struct vc *c)
{
	uint64_t v = 0;
	int fds[2] = { c->vq[0].kick, c->vq[0].kick };

	return vc_raw(c, VU_SET_VRING_KICK, VU_VERSION, 8, &v, 8, fds, 2);
}

static int bad_kick_no_fd(struct vc *c)
{
	uint64_t v = 0;

	return vc_raw(c, VU_SET_VRING_KICK, VU_VERSION, 8, &v, 8, NULL, 0);
}

static int bad_too_many_fds(struct vc *c)
{
	struct vu_hdr h = { VU_SET_FEATURES, VU_VERSION, 8 };
	uint64_t v = 0;
	struct iovec iov[2] = { { &h, sizeof(h) }, { &v, 8 } };
	int fds[VU_MAX_FDS + 4];
	unsigned int i;

	for (i = 0; i < KML_ARRAY_SIZE(fds); i++)
		fds[i] = c->memfd;
	/* more fds than the protocol allows on one message */
	return vu_send_fds(c->sock, iov, 2, fds, KML_ARRAY_SIZE(fds),
			   MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static int bad_mem_table_fd_count(struct vc *c)
{
	struct vu_mem_table t = { .nregions = 2 };

	t.regions[0] = (struct vu_region){ 0x40000000, 4096, 0x7000000000, 0 };
	t.regions[1] = (struct vu_region){ 0x50000000, 4096, 0x7100000000, 0 };
	return vc_raw(c, VU_SET_MEM_TABLE, VU_VERSION, 8 + 64, &t, 8 + 64,
		      &c->memfd, 1);
}

static int bad_mem_table_size(struct vc *c)
{
	struct vu_mem_table t = { .nregions = 2 };
	int fds[2] = { c->memfd, c->memfd };

	/* nregions says 2, payload holds 1 */
	t.regions[0] = (struct vu_region){ 0x40000000, 4096, 0x7000000000, 0 };
	return vc_raw(c, VU_SET_MEM_TABLE, VU_VERSION, 8 + 32, &t, 8 + 32,
		      fds, 2);
}

static int vc_add_reg(struct vc *c, struct vu_region r)
{
	struct vu_mem_reg mr = { 0, r };

	return vc_raw(c, VU_ADD_MEM_REG, VU_VERSION, sizeof(mr), &mr,
		      sizeof(mr), &c->memfd, 1);
}

static int bad_region_past_fd(struct vc *c)
{
	/* 64 MiB region on an 8 MiB memfd: would SIGBUS if mapped */
	return vc_add_reg(c, (struct vu_region){ 0x80000000, 64 << 20,
						 0x7200000000, 0 });
}

static int bad_region_overflow(struct vc *c)
{
	return vc_add_reg(c, (struct vu_region){ ~0ull - 4095, 8192,
						 0x7300000000, 0 });
}

static int bad_region_zero(struct vc *c)
{
	return vc_add_reg(c, (struct vu_region){ 0x90000000, 0,
						 0x7400000000, 0 });
}

static int bad_region_overlap(struct vc *c)
{
	return vc_add_reg(c, (struct vu_region){ VC_R1_GPA + 4096, 4096,
						 0x7500000000, 0 });
}

static int bad_vring_index(struct vc *c)
{
	struct vhost_vring_state s = { 200, 64 };

	return vc_raw(c, VU_SET_VRING_NUM, VU_VERSION, 8, &s, 8, NULL, 0);
}

static int bad_vring_num(struct vc *c)
{
	struct vhost_vring_state s = { 0, 3 };

	return vc_raw(c, VU_GET_VRING_BASE, VU_VERSION, 8, &s, 8, NULL, 0) ||
	       vc_raw(c, VU_SET_VRING_NUM, VU_VERSION, 8, &s, 8, NULL, 0);
}

/* the ring is running: its size and index may not change under it */
static int bad_vring_num_running(struct vc *c)
{
	struct vhost_vring_state s = { 0, VC_QSIZE / 2 };

	return vc_raw(c, VU_SET_VRING_NUM, VU_VERSION, 8, &s, 8, NULL, 0);
}

static int bad_vring_base_running(struct vc *c)
{
	struct vhost_vring_state s = { 0, 7 };

	return vc_raw(c, VU_SET_VRING_BASE, VU_VERSION, 8, &s, 8, NULL, 0);
}

static int bad_vring_addr_outside(struct vc *c)
{
	struct vhost_vring_addr a = {
		.index = 0,
		.desc_user_addr = 0x7f0000000000ull,
		.used_user_addr = 0x7f0000001000ull,
		.avail_user_addr = 0x7f0000002000ull,
	};
	struct vhost_vring_state s = { 0, 0 };
	uint64_t v = 0;
	int fd = c->vq[0].kick;

	/* stop the ring, point it outside the table, start it */
	return vc_raw(c, VU_GET_VRING_BASE, VU_VERSION, 8, &s, 8, NULL, 0) ||
	       vc_raw(c, VU_SET_VRING_ADDR, VU_VERSION, sizeof(a), &a,
		      sizeof(a), NULL, 0) ||
	       vc_raw(c, VU_SET_VRING_KICK, VU_VERSION, 8, &v, 8, &fd, 1);
}

static int bad_vring_addr_running(struct vc *c)
{
	struct vhost_vring_addr a = {
		.index = 0,
		.desc_user_addr = 0x7f0000000000ull,
		.used_user_addr = 0x7f0000001000ull,
		.avail_user_addr = 0x7f0000002000ull,
	};

	/* the ring is running: new addresses must be checked at once */
	return vc_raw(c, VU_SET_VRING_ADDR, VU_VERSION, sizeof(a), &a,
		      sizeof(a), NULL, 0);
}

static int bad_enable_without_protocol(struct vc *c)
{
	struct vhost_vring_state s = { 0, 1 };
	uint64_t f = VU_BIT(VIRTIO_F_VERSION_1);
	int fd = vc_connect(c->sock_path, 2000);

	if (fd < 0)
		return -1;
	/* a new connection that never negotiates PROTOCOL_FEATURES */
	close(c->sock);
	c->sock = fd;
	return vc_raw(c, VU_SET_FEATURES, VU_VERSION, 8, &f, 8, NULL, 0) ||
	       vc_raw(c, VU_SET_VRING_ENABLE, VU_VERSION, 8, &s, 8, NULL, 0);
}

static int bad_desc_loop(struct vc *c)
{
	struct vring_desc d[2] = {
		{ vc_buf_gpa(0), 16, VRING_DESC_F_NEXT, 0 },
		{ vc_buf_gpa(0), 16, VRING_DESC_F_NEXT, 0 },
	};
	uint16_t head = vc_publish(c, 0, d, 2);

	/* vc_publish linked head -> head+1; close the loop */
	c->vq[0].desc[head + 1].flags = VRING_DESC_F_NEXT;
	c->vq[0].desc[head + 1].next = head;
	vc_kick(&c->vq[0]);
	return 0;
}

static int bad_desc_outside(struct vc *c)
{
	struct virtio_blk_outhdr *h = vc_gpa(c, vc_buf_gpa(0));
	struct vring_desc d[3] = {
		{ vc_buf_gpa(0), 16, 0, 0 },
		/* device-writable data buffer far outside the table */
		{ 0x7000000000ull, 4096, VRING_DESC_F_WRITE, 0 },
		{ vc_buf_gpa(0) + VC_STATUS_OFF, 1, VRING_DESC_F_WRITE, 0 },
	};

	h->type = VIRTIO_BLK_T_IN;
	h->sector = 0;
	vc_publish(c, 0, d, 3);
	vc_kick(&c->vq[0]);
	return 0;
}

static int bad_desc_straddle(struct vc *c)
{
	struct virtio_blk_outhdr *h = vc_gpa(c, vc_buf_gpa(0));
	struct vring_desc d[3] = {
		{ vc_buf_gpa(0), 16, 0, 0 },
		/* starts inside region 1, runs 4 KiB past its end */
		{ VC_R1_GPA + VC_REG_SIZE - 4096, 8192, VRING_DESC_F_WRITE, 0 },
		{ vc_buf_gpa(0) + VC_STATUS_OFF, 1, VRING_DESC_F_WRITE, 0 },
	};

	h->type = VIRTIO_BLK_T_IN;
	h->sector = 0;
	vc_publish(c, 0, d, 3);
	vc_kick(&c->vq[0]);
	return 0;
}

static int bad_desc_next_range(struct vc *c)
{
	struct vring_desc d[2] = {
		{ vc_buf_gpa(0), 16, VRING_DESC_F_NEXT, 0 },
		{ vc_buf_gpa(0) + VC_STATUS_OFF, 1, VRING_DESC_F_WRITE, 0 },
	};
	uint16_t head = vc_publish(c, 0, d, 1);

	c->vq[0].desc[head].flags = VRING_DESC_F_NEXT;
	c->vq[0].desc[head].next = VC_QSIZE + 7;
	vc_kick(&c->vq[0]);
	return 0;
}

static int bad_head_range(struct vc *c)
{
	struct vc_vq *vq = &c->vq[0];

	vq->avail->ring[vq->avail_idx % VC_QSIZE] = VC_QSIZE + 1;
	vq->avail_idx++;
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	vc_kick(vq);
	return 0;
}

static int bad_avail_jump(struct vc *c)
{
	struct vc_vq *vq = &c->vq[0];

	__atomic_store_n(&vq->avail->idx, vq->avail_idx + VC_QSIZE + 5,
			 __ATOMIC_RELEASE);
	vc_kick(vq);
	return 0;
}

static int bad_indirect_outside(struct vc *c)
{
	struct vring_desc d = { 0x7000000000ull, 48, VRING_DESC_F_INDIRECT, 0 };

	vc_publish(c, 0, &d, 1);
	vc_kick(&c->vq[0]);
	return 0;
}

static int bad_indirect_nested(struct vc *c)
{
	uint64_t t = vc_buf_gpa(0) + VC_INDIR_OFF;
	struct vring_desc *tab = vc_gpa(c, t);
	struct vring_desc d = { t, 32, VRING_DESC_F_INDIRECT, 0 };

	tab[0] = (struct vring_desc){ t, 32, VRING_DESC_F_INDIRECT, 0 };
	tab[1] = (struct vring_desc){ t, 16, 0, 0 };
	vc_publish(c, 0, &d, 1);
	vc_kick(&c->vq[0]);
	return 0;
}

static int bad_indirect_len(struct vc *c)
{
	struct vring_desc d = { vc_buf_gpa(0) + VC_INDIR_OFF, 20,
				VRING_DESC_F_INDIRECT, 0 };

	vc_publish(c, 0, &d, 1);
	vc_kick(&c->vq[0]);
	return 0;
}

static int bad_log_base_past_fd(struct vc *c)
{
	struct vu_log lb = { 1ull << 30, 0 };

	return vc_raw(c, VU_SET_LOG_BASE, VU_VERSION, sizeof(lb), &lb,
		      sizeof(lb), &c->logfd, 1);
}

static int bad_features_unoffered(struct vc *c)
{
	uint64_t v = c->acked | VU_BIT(63);

	return vc_raw(c, VU_SET_FEATURES, VU_VERSION, 8, &v, 8, NULL, 0);
}

static int bad_config_range(struct vc *c)
{
	struct vu_config cfg = { .offset = 250, .size = 100 };

	return vc_raw(c, VU_GET_CONFIG, VU_VERSION, 12 + 100, &cfg, 12 + 100,
		      NULL, 0);
}

static const struct vc_bad vc_bads[] = {
	{ "bad-size-huge", bad_huge_size, false },
	{ "bad-size-short", bad_short_payload, false },
	{ "bad-size-truncated", bad_truncated, false },
	{ "bad-version", bad_version, false },
	{ "bad-request-unknown", bad_unknown, false },
	{ "bad-fds-on-set-features", bad_fd_on_set_features, false },
	{ "bad-fds-kick-two", bad_kick_two_fds, true },
	{ "bad-fds-kick-none", bad_kick_no_fd, true },
	{ "bad-fds-too-many", bad_too_many_fds, false },
	{ "bad-fds-mem-table", bad_mem_table_fd_count, false },
	{ "bad-size-mem-table", bad_mem_table_size, false },
	{ "bad-region-past-fd", bad_region_past_fd, true },
	{ "bad-region-overflow", bad_region_overflow, true },
	{ "bad-region-zero", bad_region_zero, true },
	{ "bad-region-overlap", bad_region_overlap, true },
	{ "bad-log-past-fd", bad_log_base_past_fd, true },
	{ "bad-features-unoffered", bad_features_unoffered, true },
	{ "bad-config-range", bad_config_range, true },
	{ "bad-vring-index", bad_vring_index, true },
	{ "bad-vring-num", bad_vring_num, true },
	{ "bad-vring-num-running", bad_vring_num_running, true },
	{ "bad-vring-base-running", bad_vring_base_running, true },
	{ "bad-vring-addr-outside", bad_vring_addr_outside, true },
	{ "bad-vring-addr-running", bad_vring_addr_running, true },
	{ "bad-enable-no-protocol", bad_enable_without_protocol, false },
	{ "bad-desc-loop", bad_desc_loop, true },
	{ "bad-desc-outside-table", bad_desc_outside, true },
	{ "bad-desc-straddles-region", bad_desc_straddle, true },
	{ "bad-desc-next-range", bad_desc_next_range, true },
	{ "bad-desc-head-range", bad_head_range, true },
	{ "bad-avail-idx-jump", bad_avail_jump, true },
	{ "bad-indirect-outside", bad_indirect_outside, true },
	{ "bad-indirect-nested", bad_indirect_nested, true },
	{ "bad-indirect-len", bad_indirect_len, true },
};

void vc_run_malformed(struct vc *c)
{
	struct vc by = *c;	/* a bystander connection on its own RAM */
	char why[160];
	unsigned int i;

	vc_setup_mem(&by);
	for (i = 0; i < VC_MAX_Q; i++) {
		by.vq[i].kick = -1;
		by.vq[i].call = -1;
	}
	if (vc_session(&by, true, false) ||
	    !vc_rw_check(&by, 0, by.sector, 4096, 7, false, true, why,
			 sizeof(why))) {
		vc_result("bystander", VC_FAIL, "could not set up: %s",
			  by.fail_why ? by.fail_why : why);
		return;
	}
	vc_result("bystander", VC_PASS, "second connection set up and doing I/O");
	for (i = 0; i < KML_ARRAY_SIZE(vc_bads); i++) {
		const struct vc_bad *b = &vc_bads[i];
		uint8_t *snap = NULL;
		bool closed, alive, touched = false;

		if (vc_session(c, true, false)) {
			vc_result(b->name, VC_FAIL,
				  "setup on a second connection failed (%s): the back-end must serve concurrent connections for these checks",
				  c->fail_why);
			vc_close(c);
			break;
		}
		/* a malformed ring must not change our memory outside it */
		snap = malloc(VC_MEM_SIZE);
		memcpy(snap, c->mem, VC_MEM_SIZE);
		if (b->send(c)) {
			vc_result(b->name, VC_FAIL, "could not send the message: %s",
				  strerror(errno));
			vc_close(c);
			free(snap);
			continue;
		}
		closed = vc_closed_within(c->sock, 4000);
		/* only the rings and the status byte may have changed */
		for (uint64_t off = 0; off < VC_MEM_SIZE; off += 4096) {
			uint64_t gpa = off < VC_REG_SIZE ? VC_R0_GPA + off :
				       VC_R1_GPA + off - VC_REG_SIZE;

			if (gpa >= vc_ring_gpa(0) && gpa < vc_ring_gpa(0) + 0x3000)
				continue;
			if (gpa == vc_buf_gpa(0))
				continue;
			if (memcmp(snap + off, c->mem + off, 4096)) {
				touched = true;
				break;
			}
		}
		free(snap);
		vc_close(c);
		alive = vc_rw_check(&by, 0, by.sector, 4096, 7, false, false,
				    why, sizeof(why));
		vc_result(b->name, closed && alive && !touched ? VC_PASS : VC_FAIL,
			  "%s; %s%s", closed ? "connection closed" :
			  "connection NOT closed within 4 s",
			  alive ? "other connection still served" :
			  "other connection broken: ",
			  touched ? "; guest memory written" : alive ? "" : why);
		if (!alive)
			break;
	}
	vc_close(&by);
	/* and a fresh connection still works */
	if (vc_session(c, true, false) ||
	    !vc_rw_check(c, 0, c->sector, 4096, 7, false, false, why,
			 sizeof(why)))
		vc_result("fresh-connection", VC_FAIL, "after the bad messages: %s",
			  c->fail_why ? c->fail_why : why);
	else
		vc_result("fresh-connection", VC_PASS, "back-end still accepts and serves");
	vc_close(c);
}
