// SPDX-License-Identifier: GPL-2.0
/*
 * vu-check - a vhost-user-blk front-end conformance checker that needs no
 * VM. It connects to a back-end socket, shares its own memfd "guest RAM"
 * (two regions, guest-physical addresses different from its own virtual
 * addresses), builds split virtqueues in it and drives the back-end the
 * way QEMU 7.2 does, checking every step:
 *
 *   negotiation, memory table, ring setup, I/O (plain, indirect, every
 *   queue), flush, the 2023 seed scenario (rings enabled, LOG_ALL toggled
 *   with SET_FEATURES on and off: I/O must still complete; a back-end that
 *   disabled its rings is re-enabled, as the seed patch did, and reported
 *   as deviating), dirty-log contents after device writes (buffers and the
 *   used ring), no guest-memory writes after GET_VRING_BASE, restart from
 *   the returned index, reconnect without PROTOCOL_FEATURES (rings enabled
 *   at once).
 *
 * With --malformed it instead sends broken messages and broken rings on
 * fresh connections and checks that each gets an error and a closed
 * connection while another connection keeps working.
 *
 * The checker writes to the device: sectors [--sector, +256) are saved
 * first and restored at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "kml.h"
#include "vu_proto.h"

#define VC_MEM_SIZE	(8ull << 20)		/* memfd: two 4 MiB regions */
#define VC_R0_GPA	0x0ull			/* rings */
#define VC_R1_GPA	0x10000000ull		/* buffers, at 256 MiB */
#define VC_REG_SIZE	(4ull << 20)
#define VC_QSIZE	128
#define VC_MAX_Q	4
#define VC_SLOTS	(VC_QSIZE / 4)
#define VC_IO_MAX	(128u << 10)
#define VC_TEST_SECTORS	256			/* 128 KiB test area */
/* short log: bits for GPA < 256 MiB only, at offset 4 KiB of the fd */
#define VC_SHORT_LOG	(VC_R1_GPA / 4096 / 8)
#define VC_SHORT_OFF	4096ull
#define VC_LOGFD_SIZE	(VC_SHORT_OFF + VC_SHORT_LOG + 8192)

struct vc_vq {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;	/* next index we publish */
	uint16_t used_seen;	/* used entries consumed */
	int kick, call;
};

struct vc {
	const char *sock_path;
	int sock;
	int memfd, logfd;
	uint8_t *mem;		/* VC_MEM_SIZE, our "guest RAM" */
	uint8_t *log;
	uint64_t log_size;
	uint64_t features, pfeatures;	/* offered */
	uint64_t acked, packed;		/* acked */
	unsigned int nq;		/* queues we use */
	uint64_t queue_num;
	uint64_t capacity;		/* sectors */
	struct vc_vq vq[VC_MAX_Q];
	int timeout_ms;
	uint64_t sector;
	bool verbose;
	bool short_log;			/* also check a log shorter than RAM */
	/* inflight check: negotiate INFLIGHT_SHMFD, GET (once) + SET */
	bool want_inflight;
	bool resume;			/* queue 0's rings kept, base used->idx */
	int ifl_fd;
	struct vu_inflight ifl_info;
	uint8_t *ifl;
	const char *fail_why;		/* last protocol failure */
};

/* ---- results table ------------------------------------------------------ */

enum vc_result { VC_PASS, VC_FAIL, VC_SKIP };

struct vc_check {
	char name[48];
	enum vc_result res;
	char detail[200];
};

static struct vc_check checks[96];
static unsigned int nchecks;

static void vc_result(const char *name, enum vc_result res, const char *fmt,
		      ...) __attribute__((format(printf, 3, 4)));

static void vc_result(const char *name, enum vc_result res, const char *fmt,
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

static const char *const vc_res_name[] = { "pass", "FAIL", "skip" };

/* ---- guest memory ------------------------------------------------------- */

static void *vc_gpa(struct vc *c, uint64_t gpa)
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
static uint64_t vc_ring_gpa(unsigned int q)
{
	return VC_R0_GPA + 0x10000 + q * 0x10000ull;
}

static uint64_t vc_buf_gpa(unsigned int q)
{
	return VC_R1_GPA + 0x10000 + q * 0x80000ull;
}

#define VC_HDR_OFF	0x0
#define VC_STATUS_OFF	0x100
#define VC_INDIR_OFF	0x800
#define VC_DATA_OFF	0x1000

static void vc_setup_mem(struct vc *c)
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

static int vc_connect(const char *path, int wait_ms)
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

static int vc_send(struct vc *c, uint32_t req, uint32_t flags,
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
static int vc_recv_reply(struct vc *c, uint32_t req, struct vu_msg *m)
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
static int vc_req(struct vc *c, uint32_t req, const void *payload,
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

static int vc_get_u64(struct vc *c, uint32_t req, uint64_t *val)
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

static int vc_u64(struct vc *c, uint32_t req, uint64_t val)
{
	return vc_req(c, req, &val, 8, NULL, 0);
}

static int vc_state(struct vc *c, uint32_t req, unsigned int idx,
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

static int vc_vring_addr(struct vc *c, unsigned int q, bool log)
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
static int vc_vq_start(struct vc *c, unsigned int q, uint16_t base,
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

static void vc_vq_init_mem(struct vc *c, unsigned int q)
{
	struct vc_vq *vq = &c->vq[q];

	vc_vq_layout(c, q);
	memset(vq->desc, 0, 0x3000);
	vq->avail_idx = 0;
	vq->used_seen = 0;
}

static void vc_kick(struct vc_vq *vq)
{
	uint64_t one = 1;

	if (write(vq->kick, &one, sizeof(one)) < 0)
		kml_warn("kick: %s", strerror(errno));
}

/* publish a chain of @n descriptors at descriptor @head */
static uint16_t vc_publish_at(struct vc *c, unsigned int q, uint16_t head,
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
static uint16_t vc_publish(struct vc *c, unsigned int q,
			   const struct vring_desc *d, unsigned int n)
{
	return vc_publish_at(c, q, (c->vq[q].avail_idx % VC_SLOTS) * 4, d, n);
}

/* wait until used->idx reaches used_seen + 1; 0, or -1 on timeout */
static int vc_wait_used(struct vc *c, unsigned int q, int timeout_ms,
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

struct vc_io {
	uint32_t type;
	uint64_t sector;
	uint32_t len;		/* data bytes */
	bool indirect;
	/* results */
	int status;		/* -1: no completion */
	uint32_t used_len;
	bool bad_id;
};

/*
 * The descriptors (at most 3) of one virtio-blk request on @q, in its
 * buffer area, whose header and status byte it sets up; returns how many.
 */
static unsigned int vc_io_descs(struct vc *c, unsigned int q,
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
static uint16_t vc_submit(struct vc *c, unsigned int q, struct vc_io *io)
{
	struct vring_desc d[3];
	unsigned int n = vc_io_descs(c, q, io, d);

	return vc_publish(c, q, d, n);
}

static void vc_do_io(struct vc *c, unsigned int q, struct vc_io *io,
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

static uint8_t *vc_data(struct vc *c, unsigned int q)
{
	return vc_gpa(c, vc_buf_gpa(q) + VC_DATA_OFF);
}

static void vc_pattern(uint8_t *p, uint32_t len, uint64_t sector,
		       uint32_t seed)
{
	uint32_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t v = (sector + i / 512) << 32 | (seed ^ i);

		memcpy(p + i, &v, 8);
	}
}

/* one read or write, checked; returns true if it passed */
static bool vc_io_ok(struct vc *c, unsigned int q, struct vc_io *io,
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
static int vc_session(struct vc *c, bool protocol, bool report)
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

static void vc_close(struct vc *c)
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

/* ---- the checks ---------------------------------------------------------- */

static bool vc_ro(struct vc *c)
{
	return c->acked & VU_BIT(VIRTIO_BLK_F_RO);
}

/* write a pattern (unless read-only) and read it back on queue @q */
static bool vc_rw_check(struct vc *c, unsigned int q, uint64_t sector,
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

static void vc_check_io(struct vc *c)
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

static void vc_check_migration(struct vc *c)
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
static void vc_check_disabled(struct vc *c)
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
static void vc_check_stop_restart(struct vc *c)
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
static void vc_check_reset_owner(struct vc *c)
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
static void vc_check_reset_device(struct vc *c)
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

static void vc_check_reconnect(struct vc *c)
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

static void vc_check_inflight(struct vc *c)
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

static void vc_run_malformed(struct vc *c)
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

/* ---- main ---------------------------------------------------------------- */

static void vc_usage(FILE *f)
{
	fprintf(f,
		"usage: vu-check --socket PATH [options]\n"
		"\n"
		"Front-end conformance checker for vhost-user-blk back-ends (no VM).\n"
		"Writes to the device: sectors [SECTOR, SECTOR+256) are saved and restored.\n"
		"\n"
		"  -s, --socket PATH     back-end socket (waits up to 5 s for it)\n"
		"  -S, --sector N        first sector of the 128K test area (default 0)\n"
		"  -t, --timeout TIME    per-I/O completion timeout in ms (default 2000)\n"
		"  -m, --malformed       run the malformed-message checks instead\n"
		"  -L, --short-log       also check a dirty log shorter than guest memory\n"
		"                        (pages beyond it unlogged, I/O goes on)\n"
		"  -j, --json            JSON instead of the table\n"
		"  -v, --verbose         log every message sent\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: 0 if every check passed (skips allowed), 1 if any failed,\n"
		"2 on usage errors.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "sector", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 't' },
		{ "malformed", no_argument, NULL, 'm' },
		{ "short-log", no_argument, NULL, 'L' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct vc c = { .timeout_ms = 2000, .sock = -1 };
	bool json = false, malformed = false;
	unsigned int i, failed = 0, passed = 0, skipped = 0;
	uint8_t *saved = NULL;
	uint64_t val;
	int opt;

	kml_init(argv[0]);
	while ((opt = getopt_long(argc, argv, "s:S:t:mLjvh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			c.sock_path = optarg;
			break;
		case 'S':
			if (kml_parse_u64(optarg, &c.sector))
				kml_die(2, "give a sector number", "bad --sector '%s'",
					optarg);
			break;
		case 't':
			if (kml_parse_u64(optarg, &val) || !val || val > 600000)
				kml_die(2, "give milliseconds, 1..600000",
					"bad --timeout '%s'", optarg);
			c.timeout_ms = val;
			break;
		case 'm':
			malformed = true;
			break;
		case 'L':
			c.short_log = true;
			break;
		case 'j':
			json = true;
			break;
		case 'v':
			c.verbose = true;
			break;
		case 'h':
			vc_usage(stdout);
			return 0;
		default:
			vc_usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		kml_die(2, "see vu-check --help", "unexpected argument '%s'",
			argv[optind]);
	if (!c.sock_path)
		kml_die(2, "e.g. vu-check --socket /tmp/vub.sock",
			"--socket is required");
	signal(SIGPIPE, SIG_IGN);
	vc_setup_mem(&c);
	for (i = 0; i < VC_MAX_Q; i++) {
		c.vq[i].kick = -1;
		c.vq[i].call = -1;
	}
	c.ifl_fd = -1;

	if (malformed) {
		vc_run_malformed(&c);
	} else if (!vc_session(&c, true, true)) {
		struct vc_io io = { .type = VIRTIO_BLK_T_IN, .sector = c.sector,
				    .len = VC_TEST_SECTORS * 512 };
		char why[160];

		if (!c.capacity)
			c.capacity = c.sector + VC_TEST_SECTORS;
		if (c.sector + VC_TEST_SECTORS > c.capacity)
			kml_die(2, "use a larger image or a smaller --sector",
				"test area [%" PRIu64 ", +256) is beyond the %" PRIu64 "-sector device",
				c.sector, c.capacity);
		/* save the test area; restored at the end */
		if (vc_io_ok(&c, 0, &io, why, sizeof(why))) {
			saved = malloc(io.len);
			memcpy(saved, vc_data(&c, 0), io.len);
		}
		vc_check_io(&c);
		vc_check_migration(&c);
		vc_check_disabled(&c);
		vc_check_stop_restart(&c);
		vc_check_reset_owner(&c);
		vc_check_reset_device(&c);
		vc_check_reconnect(&c);
		vc_check_inflight(&c);
		if (saved && !vc_ro(&c)) {
			memcpy(vc_data(&c, 0), saved, io.len);
			io = (struct vc_io){ .type = VIRTIO_BLK_T_OUT,
					     .sector = c.sector,
					     .len = VC_TEST_SECTORS * 512 };
			if (!vc_io_ok(&c, 0, &io, why, sizeof(why)))
				kml_warn("restoring the test area failed: %s", why);
		}
		free(saved);
		vc_close(&c);
	}

	for (i = 0; i < nchecks; i++) {
		failed += checks[i].res == VC_FAIL;
		passed += checks[i].res == VC_PASS;
		skipped += checks[i].res == VC_SKIP;
	}
	if (json) {
		struct kml_json j;

		kml_json_init(&j, stdout);
		kml_json_obj_begin(&j, NULL);
		kml_json_str(&j, "socket", c.sock_path);
		kml_json_str(&j, "mode", malformed ? "malformed" : "conformance");
		kml_json_arr_begin(&j, "checks");
		for (i = 0; i < nchecks; i++) {
			kml_json_obj_begin(&j, NULL);
			kml_json_str(&j, "name", checks[i].name);
			kml_json_str(&j, "result", checks[i].res == VC_PASS ? "pass" :
				     checks[i].res == VC_FAIL ? "fail" : "skip");
			kml_json_str(&j, "detail", checks[i].detail);
			kml_json_obj_end(&j);
		}
		kml_json_arr_end(&j);
		kml_json_u64(&j, "passed", passed);
		kml_json_u64(&j, "failed", failed);
		kml_json_u64(&j, "skipped", skipped);
		kml_json_bool(&j, "ok", !failed && nchecks);
		kml_json_obj_end(&j);
		kml_json_finish(&j);
	} else {
		printf("%-28s %-6s %s\n", "CHECK", "RESULT", "DETAIL");
		for (i = 0; i < nchecks; i++)
			printf("%-28s %-6s %s\n", checks[i].name,
			       vc_res_name[checks[i].res], checks[i].detail);
		printf("\n%u passed, %u failed, %u skipped: %s\n", passed,
		       failed, skipped, !failed && nchecks ?
		       "back-end conforms" : "back-end does NOT conform");
	}
	return !failed && nchecks ? 0 : 1;
}
