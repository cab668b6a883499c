// SPDX-License-Identifier: GPL-2.0
/*
 * vc_front - vu-check's front-end: the results table, its guest memory,
 * messages, split rings and requests, and session setup (negotiation,
 * memory table, rings).
 */
#include "vc.h"

/* ---- results table ------------------------------------------------------ */

struct vc_check checks[96];
unsigned int nchecks;

void vc_result(const char *name, enum vc_result res, const char *fmt,
	       ...)
{
	struct vc_check *c;
	va_list ap;

	if (nchecks >= KML_ARRAY_SIZE(checks))
		return;
	c = &checks[nchecks++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->res = res;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
}

const char *const vc_res_name[] = { "pass", "FAIL", "skip" };

/* ---- guest memory ------------------------------------------------------- */

void *vc_gpa(struct vc *c, uint64_t gpa)
{
	/* region 0 starts at guest-physical 0 */
	if (gpa < VC_R0_GPA + VC_REG_SIZE)
		return c->mem + (gpa - VC_R0_GPA);
	if (gpa >= VC_R1_GPA && gpa < VC_R1_GPA + VC_REG_SIZE)
		return c->mem + VC_REG_SIZE + (gpa - VC_R1_GPA);
	return NULL;
}

static uint64_t vc_uva(struct vc *c, uint64_t gpa)
{
	return (uint64_t)(uintptr_t)vc_gpa(c, gpa);
}

/* per-queue layout: rings in region 0, buffers in region 1 */
uint64_t vc_ring_gpa(unsigned int q)
{
	return VC_R0_GPA + 0x10000 + q * 0x10000ull;
}

uint64_t vc_buf_gpa(unsigned int q)
{
	return VC_R1_GPA + 0x10000 + q * 0x80000ull;
}

void vc_setup_mem(struct vc *c)
{
	c->memfd = memfd_create("vu-check-ram", MFD_CLOEXEC);
	if (c->memfd < 0 || ftruncate(c->memfd, VC_MEM_SIZE) < 0)
		kml_die(1, NULL, "memfd for guest RAM: %s", strerror(errno));
	c->mem = mmap(NULL, VC_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->memfd, 0);
	if (c->mem == MAP_FAILED)
		kml_die(1, NULL, "mmap guest RAM: %s", strerror(errno));
	c->log_size = vu_log_bytes(VC_R1_GPA + VC_REG_SIZE);
	/* the fd has room for the short-log check (offset + guard) */
	c->logfd = memfd_create("vu-check-log", MFD_CLOEXEC);
	if (c->logfd < 0 || ftruncate(c->logfd, VC_LOGFD_SIZE) < 0)
		kml_die(1, NULL, "memfd for the dirty log: %s",
			strerror(errno));
	c->log = mmap(NULL, VC_LOGFD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      c->logfd, 0);
	if (c->log == MAP_FAILED)
		kml_die(1, NULL, "mmap dirty log: %s", strerror(errno));
}

/* ---- messages ----------------------------------------------------------- */

int vc_connect(const char *path, int wait_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = kml_now_ns() + (uint64_t)wait_ms * 1000000;
	struct timeval tv = { .tv_sec = 5 };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		kml_die(2, "use a shorter socket path", "socket path too long");
	strcpy(sa.sun_path, path);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			kml_die(1, NULL, "socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(fd);
		if (kml_now_ns() > deadline)
			return -errno;
		usleep(50000);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

int vc_send(struct vc *c, uint32_t req, uint32_t flags,
	    const void *payload, uint32_t size, const int *fds, int nfds)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.request = req;
	m.hdr.flags = VU_VERSION | flags;
	m.hdr.size = size;
	if (size)
		memcpy(&m.p, payload, size);
	if (c->verbose)
		fprintf(stderr, "vu-check: -> %s size %u fds %d\n",
			vu_req_name(req), size, nfds);
	if (vu_msg_send(c->sock, &m, fds, nfds) < 0) {
		c->fail_why = "send failed (back-end closed the connection?)";
		return -1;
	}
	return 0;
}

/* receive the reply to @req; returns payload size or -1 */
int vc_recv_reply(struct vc *c, uint32_t req, struct vu_msg *m)
{
	const char *err;
	int ret = vu_msg_recv(c->sock, m, &err);

	if (ret <= 0) {
		c->fail_why = ret == 0 ? "back-end closed the connection" :
			      err ? err : "receive failed";
		return -1;
	}
	vu_msg_close_fds(m);
	if (m->hdr.request != req || !(m->hdr.flags & VU_FLAG_REPLY)) {
		c->fail_why = "reply has the wrong request number or no REPLY flag";
		return -1;
	}
	return m->hdr.size;
}

/*
 * Send a request without its own reply. With REPLY_ACK negotiated it asks
 * for one and checks it is 0. Returns 0 or -1.
 */
int vc_req(struct vc *c, uint32_t req, const void *payload,
	   uint32_t size, const int *fds, int nfds)
{
	bool ack = c->packed & VU_BIT(VU_PF_REPLY_ACK);
	struct vu_msg m;

	if (vc_send(c, req, ack ? VU_FLAG_NEED_REPLY : 0, payload, size, fds,
		    nfds))
		return -1;
	if (!ack)
		return 0;
	if (vc_recv_reply(c, req, &m) != 8) {
		if (!c->fail_why)
			c->fail_why = "REPLY_ACK reply is not a u64";
		return -1;
	}
	if (m.p.u64) {
		c->fail_why = "back-end NACKed the request";
		return -1;
	}
	return 0;
}

int vc_get_u64(struct vc *c, uint32_t req, uint64_t *val)
{
	struct vu_msg m;

	if (vc_send(c, req, 0, NULL, 0, NULL, 0))
		return -1;
	if (vc_recv_reply(c, req, &m) != 8) {
		if (!c->fail_why)
			c->fail_why = "reply is not a u64";
		return -1;
	}
	*val = m.p.u64;
	return 0;
}

int vc_u64(struct vc *c, uint32_t req, uint64_t val)
{
	return vc_req(c, req, &val, 8, NULL, 0);
}

int vc_state(struct vc *c, uint32_t req, unsigned int idx,
	     unsigned int num)
{
	struct vhost_vring_state s = { idx, num };

	return vc_req(c, req, &s, sizeof(s), NULL, 0);
}

/* ---- rings and I/O ------------------------------------------------------ */

static void vc_vq_layout(struct vc *c, unsigned int q)
{
	struct vc_vq *vq = &c->vq[q];

	vq->desc_gpa = vc_ring_gpa(q);
	vq->avail_gpa = vq->desc_gpa + 0x1000;
	vq->used_gpa = vq->desc_gpa + 0x2000;
	vq->desc = vc_gpa(c, vq->desc_gpa);
	vq->avail = vc_gpa(c, vq->avail_gpa);
	vq->used = vc_gpa(c, vq->used_gpa);
}

int vc_vring_addr(struct vc *c, unsigned int q, bool log)
{
	struct vc_vq *vq = &c->vq[q];
	struct vhost_vring_addr a = {
		.index = q,
		.flags = log ? 1u << VHOST_VRING_F_LOG : 0,
		.desc_user_addr = vc_uva(c, vq->desc_gpa),
		.used_user_addr = vc_uva(c, vq->used_gpa),
		.avail_user_addr = vc_uva(c, vq->avail_gpa),
		.log_guest_addr = vq->used_gpa,
	};

	return vc_req(c, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

static int vc_vring_fd(struct vc *c, uint32_t req, unsigned int q, int fd)
{
	uint64_t v = q;

	return vc_req(c, req, &v, 8, &fd, 1);
}

/* (re)start ring @q at @base, as QEMU's vhost_virtqueue_start() */
int vc_vq_start(struct vc *c, unsigned int q, uint16_t base,
		bool enable)
{
	struct vc_vq *vq = &c->vq[q];

	if (vq->kick >= 0)
		close(vq->kick);
	vq->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->call < 0)
		vq->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->kick < 0 || vq->call < 0)
		kml_die(1, NULL, "eventfd: %s", strerror(errno));
	if (vc_state(c, VU_SET_VRING_NUM, q, VC_QSIZE) ||
	    vc_state(c, VU_SET_VRING_BASE, q, base) ||
	    vc_vring_addr(c, q, false) ||
	    vc_vring_fd(c, VU_SET_VRING_CALL, q, vq->call) ||
	    vc_vring_fd(c, VU_SET_VRING_KICK, q, vq->kick))
		return -1;
	if (enable && vc_state(c, VU_SET_VRING_ENABLE, q, 1))
		return -1;
	return 0;
}

void vc_vq_init_mem(struct vc *c, unsigned int q)
{
	struct vc_vq *vq = &c->vq[q];

	vc_vq_layout(c, q);
	memset(vq->desc, 0, 0x3000);
	vq->avail_idx = 0;
	vq->used_seen = 0;
}

void vc_kick(struct vc_vq *vq)
{
	uint64_t one = 1;

	if (write(vq->kick, &one, sizeof(one)) < 0)
		kml_warn("kick: %s", strerror(errno));
}

/* publish a chain of @n descriptors at descriptor @head */
uint16_t vc_publish_at(struct vc *c, unsigned int q, uint16_t head,
		       const struct vring_desc *d, unsigned int n)
{
	struct vc_vq *vq = &c->vq[q];
	unsigned int i;

	for (i = 0; i < n; i++) {
		vq->desc[head + i] = d[i];
		if (i + 1 < n) {
			vq->desc[head + i].flags |= VRING_DESC_F_NEXT;
			vq->desc[head + i].next = head + i + 1;
		}
	}
	vq->avail->ring[vq->avail_idx % VC_QSIZE] = head;
	/* with EVENT_IDX: interrupt us at every completion */
	vq->avail->ring[VC_QSIZE] = vq->used_seen;
	vq->avail_idx++;
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return head;
}

/* ... at the slot for this index */
uint16_t vc_publish(struct vc *c, unsigned int q,
		    const struct vring_desc *d, unsigned int n)
{
	return vc_publish_at(c, q, (c->vq[q].avail_idx % VC_SLOTS) * 4, d, n);
}

/* wait until used->idx reaches used_seen + 1; 0, or -1 on timeout */
int vc_wait_used(struct vc *c, unsigned int q, int timeout_ms,
		 uint32_t *len, uint16_t *id)
{
	struct vc_vq *vq = &c->vq[q];
	uint64_t deadline = kml_now_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		uint16_t u = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);

		if (u != vq->used_seen) {
			struct vring_used_elem *e =
				&vq->used->ring[vq->used_seen % VC_QSIZE];

			*len = e->len;
			*id = e->id;
			vq->used_seen++;
			return 0;
		}
		if (kml_now_ns() > deadline)
			return -1;
		struct pollfd p = { vq->call, POLLIN, 0 };
		uint64_t cnt;

		if (poll(&p, 1, 20) > 0 && read(vq->call, &cnt, 8) < 0)
			kml_warn("call read: %s", strerror(errno));
	}
}

/*
 * The descriptors (at most 3) of one virtio-blk request on @q, in its
 * buffer area, whose header and status byte it sets up; returns how many.
 */
unsigned int vc_io_descs(struct vc *c, unsigned int q,
			 struct vc_io *io, struct vring_desc *d)
{
	uint64_t b = vc_buf_gpa(q);
	struct virtio_blk_outhdr *h = vc_gpa(c, b + VC_HDR_OFF);
	uint8_t *status = vc_gpa(c, b + VC_STATUS_OFF);
	unsigned int n = 0;
	bool dev_writes = io->type == VIRTIO_BLK_T_IN ||
			  io->type == VIRTIO_BLK_T_GET_ID;

	h->type = io->type;
	h->ioprio = 0;
	h->sector = io->sector;
	*status = 0xff;
	d[n++] = (struct vring_desc){ b + VC_HDR_OFF, sizeof(*h), 0, 0 };
	if (io->len)
		d[n++] = (struct vring_desc){ b + VC_DATA_OFF, io->len,
			dev_writes ? VRING_DESC_F_WRITE : 0, 0 };
	d[n++] = (struct vring_desc){ b + VC_STATUS_OFF, 1,
		VRING_DESC_F_WRITE, 0 };
	if (io->indirect) {
		struct vring_desc *t = vc_gpa(c, b + VC_INDIR_OFF);
		unsigned int i;

		for (i = 0; i < n; i++) {
			t[i] = d[i];
			if (i + 1 < n) {
				t[i].flags |= VRING_DESC_F_NEXT;
				t[i].next = i + 1;
			}
		}
		d[0] = (struct vring_desc){ b + VC_INDIR_OFF,
			n * sizeof(*t), VRING_DESC_F_INDIRECT, 0 };
		n = 1;
	}
	return n;
}

/* submit one virtio-blk request on @q using its buffer area; no wait */
uint16_t vc_submit(struct vc *c, unsigned int q, struct vc_io *io)
{
	struct vring_desc d[3];
	unsigned int n = vc_io_descs(c, q, io, d);

	return vc_publish(c, q, d, n);
}

void vc_do_io(struct vc *c, unsigned int q, struct vc_io *io,
	      int timeout_ms)
{
	uint16_t head = vc_submit(c, q, io), id;

	vc_kick(&c->vq[q]);
	io->status = -1;
	io->bad_id = false;
	if (vc_wait_used(c, q, timeout_ms, &io->used_len, &id))
		return;
	io->bad_id = id != head;
	io->status = *(uint8_t *)vc_gpa(c, vc_buf_gpa(q) + VC_STATUS_OFF);
}

uint8_t *vc_data(struct vc *c, unsigned int q)
{
	return vc_gpa(c, vc_buf_gpa(q) + VC_DATA_OFF);
}

void vc_pattern(uint8_t *p, uint32_t len, uint64_t sector,
		uint32_t seed)
{
	uint32_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t v = (sector + i / 512) << 32 | (seed ^ i);

		memcpy(p + i, &v, 8);
	}
}

/* one read or write, checked; returns true if it passed */
bool vc_io_ok(struct vc *c, unsigned int q, struct vc_io *io,
	      char *why, size_t whylen)
{
	uint32_t expect_used;

	vc_do_io(c, q, io, c->timeout_ms);
	if (io->status < 0) {
		snprintf(why, whylen, "no completion within %d ms",
			 c->timeout_ms);
		return false;
	}
	if (io->bad_id) {
		snprintf(why, whylen, "used ring id is not the chain head");
		return false;
	}
	if (io->status != VIRTIO_BLK_S_OK) {
		snprintf(why, whylen, "status %d", io->status);
		return false;
	}
	expect_used = 1 + (io->type == VIRTIO_BLK_T_IN ? io->len : 0);
	if (io->used_len != expect_used && io->type != VIRTIO_BLK_T_GET_ID) {
		snprintf(why, whylen, "used len %u, expected %u", io->used_len,
			 expect_used);
		return false;
	}
	return true;
}

/* ---- session setup ------------------------------------------------------ */

static uint64_t vc_wanted_features(struct vc *c, bool protocol)
{
	uint64_t want = VU_BIT(VIRTIO_F_VERSION_1) |
			VU_BIT(VIRTIO_RING_F_EVENT_IDX) |
			VU_BIT(VIRTIO_RING_F_INDIRECT_DESC) |
			VU_BIT(VIRTIO_BLK_F_FLUSH) | VU_BIT(VIRTIO_BLK_F_MQ) |
			VU_BIT(VIRTIO_BLK_F_BLK_SIZE) |
			VU_BIT(VIRTIO_BLK_F_SEG_MAX) | VU_BIT(VIRTIO_BLK_F_RO);

	if (protocol)
		want |= VU_BIT(VU_F_PROTOCOL_FEATURES);
	return c->features & want;
}

static int vc_add_regions(struct vc *c, bool slots)
{
	struct vu_region r[2] = {
		{ VC_R0_GPA, VC_REG_SIZE, (uintptr_t)c->mem, 0 },
		{ VC_R1_GPA, VC_REG_SIZE, (uintptr_t)c->mem + VC_REG_SIZE,
		  VC_REG_SIZE },
	};
	int fds[2] = { c->memfd, c->memfd };
	struct vu_mem_table t = { .nregions = 2 };

	if (slots) {
		for (int i = 0; i < 2; i++) {
			struct vu_mem_reg mr = { 0, r[i] };

			if (vc_req(c, VU_ADD_MEM_REG, &mr, sizeof(mr),
				   &c->memfd, 1))
				return -1;
		}
		return 0;
	}
	memcpy(t.regions, r, sizeof(r));
	return vc_req(c, VU_SET_MEM_TABLE, &t, 8 + sizeof(r), fds, 2);
}

/*
 * QEMU's inflight set-up before the rings start: GET_INFLIGHT_FD for all
 * queues (first session only: the region outlives the back-end) and
 * SET_INFLIGHT_FD with what it returned.
 */
static int vc_inflight_fd(struct vc *c)
{
	struct vu_inflight in = { .num_queues = c->nq, .queue_size = VC_QSIZE };
	const char *err;
	struct vu_msg m;

	if (!(c->packed & VU_BIT(VU_PF_INFLIGHT_SHMFD))) {
		c->fail_why = "INFLIGHT_SHMFD not negotiated";
		return -1;
	}
	if (c->ifl_fd < 0) {
		if (vc_send(c, VU_GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0))
			return -1;
		if (vu_msg_recv(c->sock, &m, &err) <= 0) {
			c->fail_why = err ? err : "GET_INFLIGHT_FD: no reply";
			return -1;
		}
		if (m.hdr.request != VU_GET_INFLIGHT_FD ||
		    m.hdr.size != sizeof(in) || m.nfds != 1) {
			vu_msg_close_fds(&m);
			c->fail_why = "GET_INFLIGHT_FD reply is not 24 bytes + one fd";
			return -1;
		}
		c->ifl_info = m.p.inflight;
		c->ifl_fd = m.fds[0];
		if (c->ifl_info.mmap_size < in.num_queues *
		    vu_inflight_queue_size(in.queue_size)) {
			c->fail_why = "GET_INFLIGHT_FD region smaller than the spec's layout";
			return -1;
		}
		c->ifl = mmap(NULL, c->ifl_info.mmap_size, PROT_READ | PROT_WRITE,
			      MAP_SHARED, c->ifl_fd, c->ifl_info.mmap_offset);
		if (c->ifl == MAP_FAILED) {
			c->ifl = NULL;
			c->fail_why = "mmap of the inflight fd failed";
			return -1;
		}
	}
	return vc_req(c, VU_SET_INFLIGHT_FD, &c->ifl_info, sizeof(c->ifl_info),
		      &c->ifl_fd, 1);
}

/*
 * Full QEMU-7.2-like bring-up. @protocol: negotiate PROTOCOL_FEATURES
 * (else: SET_MEM_TABLE, no ENABLE). @report: record the checks.
 */
int vc_session(struct vc *c, bool protocol, bool report)
{
	char why[160];
	uint64_t want, v;
	unsigned int q;

	c->fail_why = NULL;
	c->acked = 0;
	c->packed = 0;
	c->sock = vc_connect(c->sock_path, report ? 5000 : 2000);
	if (c->sock < 0) {
		if (report)
			vc_result("connect", VC_FAIL, "%s: %s", c->sock_path,
				  strerror(-c->sock));
		return -1;
	}
	if (report)
		vc_result("connect", VC_PASS, "%s", c->sock_path);

	if (vc_get_u64(c, VU_GET_FEATURES, &c->features)) {
		if (report)
			vc_result("features", VC_FAIL, "GET_FEATURES: %s",
				  c->fail_why);
		return -1;
	}
	if (report) {
		const char *miss = NULL;

		if (!(c->features & VU_BIT(VIRTIO_F_VERSION_1)))
			miss = "VERSION_1";
		else if (!(c->features & VU_BIT(VU_F_PROTOCOL_FEATURES)))
			miss = "PROTOCOL_FEATURES";
		else if (!(c->features & VU_BIT(VHOST_F_LOG_ALL)))
			miss = "LOG_ALL (QEMU: \"Migration disabled\")";

		if (miss)
			vc_result("features", VC_FAIL,
				  "missing %s (offered 0x%" PRIx64 ")", miss,
				  c->features);
		else
			vc_result("features", VC_PASS,
				  "0x%" PRIx64 ": VERSION_1 PROTOCOL_FEATURES LOG_ALL%s%s",
				  c->features,
				  c->features & VU_BIT(VIRTIO_RING_F_EVENT_IDX) ? " EVENT_IDX" : "",
				  c->features & VU_BIT(VIRTIO_RING_F_INDIRECT_DESC) ?
				  " INDIRECT_DESC" : "");
		if (miss)
			return -1;
	}
	if (protocol && (c->features & VU_BIT(VU_F_PROTOCOL_FEATURES))) {
		if (vc_get_u64(c, VU_GET_PROTOCOL_FEATURES, &c->pfeatures))
			goto proto_fail;
		want = c->pfeatures & (VU_BIT(VU_PF_MQ) |
				       VU_BIT(VU_PF_LOG_SHMFD) |
				       VU_BIT(VU_PF_REPLY_ACK) |
				       VU_BIT(VU_PF_CONFIG) |
				       VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS) |
				       VU_BIT(VU_PF_RESET_DEVICE) |
				       (c->want_inflight ?
					VU_BIT(VU_PF_INFLIGHT_SHMFD) : 0));
		if (vc_u64(c, VU_SET_PROTOCOL_FEATURES, want))
			goto proto_fail;
		c->packed = want;
		if (report)
			vc_result("protocol-features",
				  want & VU_BIT(VU_PF_LOG_SHMFD) ? VC_PASS : VC_FAIL,
				  "0x%" PRIx64 ":%s%s%s%s%s", c->pfeatures,
				  want & VU_BIT(VU_PF_LOG_SHMFD) ? " LOG_SHMFD" : " no LOG_SHMFD (needed for migration)",
				  want & VU_BIT(VU_PF_REPLY_ACK) ? " REPLY_ACK" : "",
				  want & VU_BIT(VU_PF_CONFIG) ? " CONFIG" : "",
				  want & VU_BIT(VU_PF_MQ) ? " MQ" : "",
				  want & VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS) ?
				  " CONFIGURE_MEM_SLOTS" : "");
		c->queue_num = 1;
		if ((want & VU_BIT(VU_PF_MQ)) &&
		    vc_get_u64(c, VU_GET_QUEUE_NUM, &c->queue_num))
			goto proto_fail;
		if (want & VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS)) {
			if (vc_get_u64(c, VU_GET_MAX_MEM_SLOTS, &v))
				goto proto_fail;
			if (report)
				vc_result("max-mem-slots", v >= 2 ? VC_PASS : VC_FAIL,
					  "%" PRIu64 " slots", v);
		}
	} else {
		c->queue_num = 1;
	}
	/* SET_OWNER, with REPLY_ACK if negotiated */
	if (vc_req(c, VU_SET_OWNER, NULL, 0, NULL, 0)) {
		if (report)
			vc_result("reply-ack", VC_FAIL, "SET_OWNER: %s",
				  c->fail_why);
		return -1;
	}
	if (report && (c->packed & VU_BIT(VU_PF_REPLY_ACK)))
		vc_result("reply-ack", VC_PASS, "SET_OWNER acked with 0");
	if (!c->queue_num) {
		if (report)
			vc_result("queue-num", VC_FAIL, "GET_QUEUE_NUM returned 0");
		return -1;
	}
	c->nq = c->queue_num < VC_MAX_Q ? c->queue_num : VC_MAX_Q;

	if (c->packed & VU_BIT(VU_PF_CONFIG)) {
		/* 60 bytes: QEMU 7.2's struct virtio_blk_config */
		struct vu_config cfg = { .size = 60 };
		struct virtio_blk_config *bc = (void *)cfg.region;
		struct vu_msg m;

		if (vc_send(c, VU_GET_CONFIG, 0, &cfg, 12 + cfg.size, NULL, 0) ||
		    vc_recv_reply(c, VU_GET_CONFIG, &m) != (int)(12 + cfg.size)) {
			if (report)
				vc_result("get-config", VC_FAIL, "%s",
					  c->fail_why ? c->fail_why :
					  "reply size is not 12 + 60 (0 = back-end refused)");
			return -1;
		}
		bc = (void *)m.p.config.region;
		c->capacity = bc->capacity;
		if (report) {
			bool ok = bc->capacity >= VC_TEST_SECTORS;
			bool mq = c->features & VU_BIT(VIRTIO_BLK_F_MQ);

			if (mq && bc->num_queues != c->queue_num)
				ok = false;
			vc_result("get-config", ok ? VC_PASS : VC_FAIL,
				  "capacity %" PRIu64
				  " sectors, blk_size %u, num_queues %u (GET_QUEUE_NUM %"
				  PRIu64 ")",
				  (uint64_t)bc->capacity, bc->blk_size,
				  mq ? bc->num_queues : 1, c->queue_num);
		}
	}
	for (q = 0; q < c->nq; q++) {
		if (c->resume && !q)
			vc_vq_layout(c, q);
		else
			vc_vq_init_mem(c, q);
		if (c->vq[q].call < 0)
			c->vq[q].call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vc_vring_fd(c, VU_SET_VRING_CALL, q, c->vq[q].call))
			goto proto_fail;
	}
	c->acked = vc_wanted_features(c, protocol);
	if (vc_u64(c, VU_SET_FEATURES, c->acked))
		goto proto_fail;
	if (vc_add_regions(c, c->packed & VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS))) {
		if (report)
			vc_result("mem-table", VC_FAIL, "%s", c->fail_why);
		return -1;
	}
	if (report)
		vc_result("mem-table", VC_PASS, "2 regions via %s (GPA != VA)",
			  c->packed & VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS) ?
			  "ADD_MEM_REG" : "SET_MEM_TABLE");
	if (c->want_inflight && vc_inflight_fd(c))
		return -1;
	for (q = 0; q < c->nq; q++) {
		/* after a crash QEMU restarts a ring at its used index */
		uint16_t base = c->resume && !q ? c->vq[0].used->idx : 0;

		if (vc_vq_start(c, q, base, protocol)) {
			if (report)
				vc_result("ring-setup", VC_FAIL, "queue %u: %s", q,
					  c->fail_why);
			return -1;
		}
	}
	if (report)
		vc_result("ring-setup", VC_PASS, "%u queue%s of %u, %s", c->nq,
			  c->nq > 1 ? "s" : "", VC_QSIZE,
			  protocol ? "SET_VRING_ENABLE 1" :
			  "no PROTOCOL_FEATURES: enabled at once");
	(void)why;
	return 0;

proto_fail:
	if (report)
		vc_result("negotiation", VC_FAIL, "%s", c->fail_why);
	return -1;
}

void vc_close(struct vc *c)
{
	unsigned int q;

	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
	for (q = 0; q < VC_MAX_Q; q++) {
		if (c->vq[q].kick >= 0)
			close(c->vq[q].kick);
		if (c->vq[q].call >= 0)
			close(c->vq[q].call);
		c->vq[q].kick = -1;
		c->vq[q].call = -1;
	}
}
