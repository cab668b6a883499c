// SPDX-License-Identifier: GPL-2.0
/*
 * vub_msg - vub's the vhost-user messages: connection state and each request's handler.
 */
#include "vub.h"

void vub_log(struct vub *v, const char *fmt, ...)
{
	va_list ap;

	if (!v->verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "vub: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Record the first fatal error of a connection; always returns -EPROTO. */
int vub_fail(struct vub_conn *c, const char *why)
{
	if (!c->why)
		c->why = why;
	return -EPROTO;
}

/* vub_fail() with details (addresses, sizes) in the message */
int vub_failf(struct vub_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->why)
		return -EPROTO;
	va_start(ap, fmt);
	vsnprintf(c->whybuf, sizeof(c->whybuf), fmt, ap);
	va_end(ap);
	c->why = c->whybuf;
	return -EPROTO;
}

static bool vub_protocol_negotiated(const struct vub_conn *c)
{
	return c->pfeatures_set ||
	       (c->features & VU_BIT(VU_F_PROTOCOL_FEATURES));
}

bool vub_has(const struct vub_conn *c, unsigned int bit)
{
	return c->features & VU_BIT(bit);
}

uint64_t vub_features(const struct vub *v)
{
	uint64_t f = VU_BIT(VIRTIO_F_VERSION_1) |
		     VU_BIT(VU_F_PROTOCOL_FEATURES) |
		     VU_BIT(VHOST_F_LOG_ALL) |
		     VU_BIT(VIRTIO_RING_F_EVENT_IDX) |
		     VU_BIT(VIRTIO_RING_F_INDIRECT_DESC) |
		     VU_BIT(VIRTIO_BLK_F_SEG_MAX) |
		     VU_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		     VU_BIT(VIRTIO_BLK_F_FLUSH) |
		     VU_BIT(VIRTIO_BLK_F_MQ);

	if (v->read_only)
		f |= VU_BIT(VIRTIO_BLK_F_RO);
	return f;
}

uint64_t vub_protocol_features(void)
{
	return VU_BIT(VU_PF_MQ) | VU_BIT(VU_PF_LOG_SHMFD) |
	       VU_BIT(VU_PF_REPLY_ACK) | VU_BIT(VU_PF_CONFIG) |
	       VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS) |
	       VU_BIT(VU_PF_RESET_DEVICE) | VU_BIT(VU_PF_INFLIGHT_SHMFD);
}

/* ---- connection state --------------------------------------------------- */

static void vub_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void vub_vq_reset(struct vub_vq *vq)
{
	free(vq->resubmit);
	vub_close_fd(&vq->kick_fd);
	vub_close_fd(&vq->call_fd);
	vub_close_fd(&vq->err_fd);
	memset(vq, 0, sizeof(*vq));
	vq->kick_fd = -1;
	vq->call_fd = -1;
	vq->err_fd = -1;
}

void vub_conn_free(struct vub *v, struct vub_conn *c)
{
	struct vub_job *job;
	unsigned int i;

	vub_drain(v, c);
	while ((job = c->free_jobs)) {
		c->free_jobs = job->next;
		free(job);
	}
	for (i = 0; i < VUB_MAX_QUEUES; i++)
		vub_vq_reset(&c->vqs[i]);
	vub_unmap_all(c);
	vub_log_unmap(c);
	vub_inflight_unmap(c);
	vu_rx_reset(&c->rx);	/* fds of a message that never completed */
	close(c->sock);
	free(c);
}

/* RESET_DEVICE: every ring stopped, disabled, fds closed; features, log */
static void vub_reset_device(struct vub_conn *c)
{
	for (unsigned int i = 0; i < VUB_MAX_QUEUES; i++)
		vub_vq_reset(&c->vqs[i]);
	c->features = 0;
	vub_log_unmap(c);
}

static struct vub_vq *vub_vq_get(struct vub *v, struct vub_conn *c,
				 uint32_t index)
{
	if (index >= v->nqueues) {
		vub_fail(c, "vring index out of range");
		return NULL;
	}
	return &c->vqs[index];
}

/*
 * Send queued reply bytes as far as the socket takes them now; the rest
 * waits for POLLOUT (vub_loop()). 0, or -EPROTO if the socket failed.
 */
int vub_flush(struct vub_conn *c)
{
	while (c->out_len) {
		ssize_t n = send(c->sock, c->out, c->out_len,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return vub_fail(c, "sending the reply failed");
		memmove(c->out, c->out + n, c->out_len - n);
		c->out_len -= n;
	}
	return 0;
}

/*
 * Queue a reply (header + @size payload bytes; vub never sends fds) and
 * send what the socket takes. While any of it is queued the connection's
 * next message is not read, so the queue holds at most one reply, and it
 * must be gone within VUB_IO_TIMEOUT_NS (vub_loop()).
 */
int vub_reply(struct vub_conn *c, struct vu_msg *m, uint32_t size)
{
	size_t len = sizeof(m->hdr) + size;

	m->hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	m->hdr.size = size;
	if (size > sizeof(m->p) || len > sizeof(c->out) - c->out_len)
		return vub_fail(c, "reply queue full: the front-end does not read its replies");
	if (!c->out_len)
		c->out_deadline = kml_now_ns() + VUB_IO_TIMEOUT_NS;
	memcpy(c->out + c->out_len, &m->hdr, sizeof(m->hdr));
	memcpy(c->out + c->out_len + sizeof(m->hdr), &m->p, size);
	c->out_len += len;
	return vub_flush(c);
}

static int vub_set_mem_table(struct vub *v, struct vub_conn *c,
			     struct vu_msg *m)
{
	struct vub_region tmp[VU_MAX_TABLE_REGIONS];
	unsigned int i, n = m->p.mem.nregions;
	const char *err;

	for (i = 0; i < n; i++) {
		err = vub_region_map(tmp, i, &m->p.mem.regions[i], m->fds[i],
				     &tmp[i]);
		m->fds[i] = -1;
		if (err) {
			while (i--)
				vub_region_unmap(&tmp[i]);
			for (i = 0; i < n; i++)
				if (m->fds[i] >= 0)
					close(m->fds[i]);
			m->nfds = 0;
			return vub_fail(c, err);
		}
	}
	m->nfds = 0;
	vub_unmap_all(c);
	memcpy(c->regions, tmp, n * sizeof(tmp[0]));
	c->nregions = n;
	return 0;
}

static int vub_add_mem_reg(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	const char *err;

	if (!(c->pfeatures & VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS)))
		return vub_fail(c, "ADD_MEM_REG without CONFIGURE_MEM_SLOTS");
	if (c->nregions >= VUB_MAX_SLOTS)
		return vub_fail(c, "ADD_MEM_REG beyond GET_MAX_MEM_SLOTS");
	err = vub_region_map(c->regions, c->nregions, &m->p.memreg.region,
			     m->fds[0], &c->regions[c->nregions]);
	m->fds[0] = -1;
	m->nfds = 0;
	if (err)
		return vub_fail(c, err);
	vub_log(v, "conn %u: region %u: guest 0x%" PRIx64 "+0x%" PRIx64 " at front-end 0x%" PRIx64,
		c->id, c->nregions, c->regions[c->nregions].gpa,
		c->regions[c->nregions].size, c->regions[c->nregions].uva);
	c->nregions++;
	return 0;
}

static int vub_rem_mem_reg(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	const struct vu_region *r = &m->p.memreg.region;
	unsigned int i;

	vu_msg_close_fds(m);
	if (!(c->pfeatures & VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS)))
		return vub_fail(c, "REM_MEM_REG without CONFIGURE_MEM_SLOTS");
	for (i = 0; i < c->nregions; i++) {
		if (c->regions[i].gpa == r->guest_phys_addr &&
		    c->regions[i].size == r->memory_size &&
		    c->regions[i].uva == r->userspace_addr) {
			vub_region_unmap(&c->regions[i]);
			c->regions[i] = c->regions[--c->nregions];
			memset(&c->regions[c->nregions], 0,
			       sizeof(c->regions[0]));
			return 0;
		}
	}
	return vub_fail(c, "REM_MEM_REG for a region that is not in the table");
}

static int vub_set_log_base(struct vub *v, struct vub_conn *c,
			    struct vu_msg *m)
{
	uint64_t size = m->p.log.mmap_size, off = m->p.log.mmap_offset, len;
	struct stat st;
	int fd;
	void *p;

	if (!(c->pfeatures & VU_BIT(VU_PF_LOG_SHMFD)))
		return vub_fail(c, "SET_LOG_BASE without LOG_SHMFD");
	if (m->nfds != 1)
		return vub_fail(c, "SET_LOG_BASE needs the log fd");
	fd = m->fds[0];
	m->fds[0] = -1;
	m->nfds = 0;
	if (!size || !vu_add_ok(size, off, &len) || len > SIZE_MAX) {
		close(fd);
		return vub_fail(c, "SET_LOG_BASE size/offset invalid");
	}
	if (fstat(fd, &st) < 0 ||
	    (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len)) {
		close(fd);
		return vub_fail(c, "SET_LOG_BASE log larger than its fd");
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return vub_fail(c, "mmap of the log fd failed");
	vub_log_unmap(c);
	c->log_map = p;
	c->log_map_len = len;
	c->log = (uint8_t *)p + off;
	c->log_size = size;
	c->log_warned = false;
	/* QEMU 7.2 waits for a reply; header only, as DPDK and QEMU's tests */
	return vub_reply(c, m, 0);
}

/*
 * A reply with one fd (GET_INFLIGHT_FD): the fd goes with its first byte,
 * so it is sent at once; whatever the socket does not take is queued as
 * in vub_reply(). The queue is empty here: no message is read while it
 * is not.
 */
static int vub_reply_fd(struct vub_conn *c, struct vu_msg *m, uint32_t size,
			int fd)
{
	struct iovec iov[2] = {
		{ &m->hdr, sizeof(m->hdr) },
		{ &m->p, size },
	};
	size_t len = sizeof(m->hdr) + size;
	ssize_t n;

	m->hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	m->hdr.size = size;
	if (c->out_len || size > sizeof(m->p))
		return vub_fail(c, "reply queue full: the front-end does not read its replies");
	n = vu_send_fds(c->sock, iov, 2, &fd, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n <= 0)
		return vub_fail(c, "sending the reply with its fd failed (the front-end's socket is full?)");
	if ((size_t)n < len) {
		uint8_t all[sizeof(struct vu_hdr) + sizeof(union vu_payload)];

		memcpy(all, &m->hdr, sizeof(m->hdr));
		memcpy(all + sizeof(m->hdr), &m->p, size);
		c->out_len = len - n;
		memcpy(c->out, all + n, c->out_len);
		c->out_deadline = kml_now_ns() + VUB_IO_TIMEOUT_NS;
	}
	return 0;
}

/* the sizes of a GET/SET_INFLIGHT_FD request; NULL if acceptable */
static const char *vub_inflight_sizes(struct vub *v, const struct vu_inflight *in)
{
	if (!in->num_queues || in->num_queues > v->nqueues)
		return "inflight num_queues is 0 or more than the back-end's queues";
	if (!in->queue_size || in->queue_size & (in->queue_size - 1))
		return "inflight queue_size is not a power of 2";
	return NULL;
}

static int vub_get_inflight_fd(struct vub *v, struct vub_conn *c,
			       struct vu_msg *m)
{
	struct vu_inflight *in = &m->p.inflight;
	const char *err = vub_inflight_sizes(v, in);
	uint64_t size;
	int fd, ret;
	void *p;

	if (!(c->pfeatures & VU_BIT(VU_PF_INFLIGHT_SHMFD)))
		return vub_fail(c, "GET_INFLIGHT_FD without INFLIGHT_SHMFD");
	if (err)
		return vub_fail(c, err);
	size = in->num_queues * vu_inflight_queue_size(in->queue_size);
	/* vub's own memory: sealed, so the front-end cannot shrink it */
	fd = memfd_create("vub-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return vub_fail(c, "memfd_create for the inflight region failed");
	if (ftruncate(fd, size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		close(fd);
		return vub_fail(c, "sizing the inflight region failed");
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return vub_fail(c, "mmap of the inflight region failed");
	}
	vub_inflight_unmap(c);
	c->ifl_map = p;
	c->ifl_map_len = size;
	c->ifl_base = p;
	c->ifl_nq = in->num_queues;
	c->ifl_qsize = in->queue_size;
	in->mmap_size = size;
	in->mmap_offset = 0;
	ret = vub_reply_fd(c, m, sizeof(*in), fd);
	close(fd);
	return ret;
}

static int vub_set_inflight_fd(struct vub *v, struct vub_conn *c,
			       struct vu_msg *m)
{
	struct vu_inflight *in = &m->p.inflight;
	const char *err = vub_inflight_sizes(v, in);
	uint64_t len;
	struct stat st;
	unsigned int i;
	int fd;
	void *p;

	if (!(c->pfeatures & VU_BIT(VU_PF_INFLIGHT_SHMFD)))
		return vub_fail(c, "SET_INFLIGHT_FD without INFLIGHT_SHMFD");
	if (err)
		return vub_fail(c, err);
	for (i = 0; i < v->nqueues; i++)
		if (c->vqs[i].started)
			return vub_fail(c, "SET_INFLIGHT_FD while a ring runs");
	if (in->mmap_size < in->num_queues * vu_inflight_queue_size(in->queue_size) ||
	    in->mmap_offset % VUB_REGION_ALIGN ||
	    !vu_add_ok(in->mmap_size, in->mmap_offset, &len) || len > SIZE_MAX)
		return vub_fail(c, "SET_INFLIGHT_FD mmap_size/mmap_offset invalid for num_queues and queue_size");
	fd = m->fds[0];
	m->fds[0] = -1;
	m->nfds = 0;
	if (fstat(fd, &st) < 0 || (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len)) {
		close(fd);
		return vub_fail(c, "SET_INFLIGHT_FD region larger than its fd");
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return vub_fail(c, "mmap of the inflight fd failed");
	vub_inflight_unmap(c);
	c->ifl_map = p;
	c->ifl_map_len = len;
	c->ifl_base = (uint8_t *)p + in->mmap_offset;
	c->ifl_nq = in->num_queues;
	c->ifl_qsize = in->queue_size;
	return 0;
}

static int vub_set_features(struct vub *v, struct vub_conn *c,
			    struct vu_msg *m)
{
	uint64_t f = m->p.u64, changed = f ^ c->features;
	unsigned int i;

	if (f & ~vub_features(v))
		return vub_fail(c, "SET_FEATURES acks features that were not offered");
	for (i = 0; i < v->nqueues; i++) {
		if (c->vqs[i].started && (changed & ~VU_BIT(VHOST_F_LOG_ALL)))
			return vub_fail(c, "SET_FEATURES changes more than LOG_ALL while a ring runs");
	}
	c->features = f;
	if (!(f & VU_BIT(VU_F_PROTOCOL_FEATURES))) {
		/* spec: without PROTOCOL_FEATURES all rings are enabled */
		for (i = 0; i < v->nqueues; i++)
			c->vqs[i].enabled = true;
	} else if (v->bugs & BUG_DISABLE_ON_SET_FEATURES) {
		/* the rust-vmm vhost-user-backend < 0.12 defect */
		for (i = 0; i < v->nqueues; i++)
			c->vqs[i].enabled = false;
		__atomic_fetch_add(&v->bug_hits, 1, __ATOMIC_RELAXED);
	}
	/* SET_FEATURES never disables a ring: nothing else to do */
	return 0;
}

static int vub_get_config(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	struct virtio_blk_config cfg;
	uint8_t buf[VU_CONFIG_MAX];
	uint32_t off = m->p.config.offset, size = m->p.config.size;

	if (!(c->pfeatures & VU_BIT(VU_PF_CONFIG)))
		return vub_fail(c, "GET_CONFIG without the CONFIG protocol feature");
	if (off > VU_CONFIG_MAX || size > VU_CONFIG_MAX - off)
		return vub_fail(c, "GET_CONFIG offset/size out of range");
	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = v->capacity / VUB_SECTOR;
	cfg.seg_max = VUB_SEG_MAX;
	cfg.blk_size = VUB_SECTOR;
	cfg.num_queues = v->nqueues;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &cfg, sizeof(cfg) < sizeof(buf) ? sizeof(cfg) : sizeof(buf));
	memcpy(m->p.config.region, buf + off, size);
	return vub_reply(c, m, 12 + size);
}

/*
 * NULL if @fd is an eventfd (for a kick fd: not in semaphore mode, whose
 * reads take 1 at a time and would keep it readable), else why not. The
 * checks of vub_kick()/vub_notify() rely on it: an eventfd read returns 8
 * bytes, and a write fails with EAGAIN only when the counter is full.
 */
static const char *vub_check_eventfd(int fd, bool kick)
{
	char path[64], buf[512];
	ssize_t n;
	int pfd;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	pfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pfd < 0)
		return "cannot read the vring fd's /proc/self/fdinfo (is /proc mounted?)";
	n = read(pfd, buf, sizeof(buf) - 1);
	close(pfd);
	if (n < 0)
		return "cannot read the vring fd's /proc/self/fdinfo";
	buf[n] = '\0';
	if (!strstr(buf, "\neventfd-count:"))
		return "vring fd is not an eventfd";
	if (kick && strstr(buf, "\neventfd-semaphore: 1"))
		return "kick fd is a semaphore-mode eventfd (it would stay readable)";
	return NULL;
}

int vub_vring_fd(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	struct vub_vq *vq = vub_vq_get(v, c, m->p.u64 & VU_VRING_IDX_MASK);
	int fd = m->nfds ? m->fds[0] : -1;
	const char *err;

	if (!vq)
		return -EPROTO;
	if (m->hdr.request == VU_SET_VRING_KICK && fd < 0)
		return vub_fail(c, "SET_VRING_KICK without an fd (polling mode) is not supported");
	if (fd >= 0) {
		/* the main thread never waits on a ring fd: all three */
		err = vub_check_eventfd(fd, m->hdr.request == VU_SET_VRING_KICK);
		if (err)
			return vub_fail(c, err);
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
			return vub_fail(c, "cannot make the vring fd non-blocking");
	}
	m->nfds = 0;
	switch (m->hdr.request) {
	case VU_SET_VRING_CALL:
		vub_close_fd(&vq->call_fd);
		vq->call_fd = fd;
		return 0;
	case VU_SET_VRING_ERR:
		vub_close_fd(&vq->err_fd);
		vq->err_fd = fd;
		return 0;
	}
	/* SET_VRING_KICK starts the ring */
	vub_close_fd(&vq->kick_fd);
	vq->kick_fd = fd;
	if (!vq->num || !vq->have_addr)
		return vub_fail(c, "SET_VRING_KICK before SET_VRING_NUM/SET_VRING_ADDR");
	if (vub_vq_map(c, vq) ||
	    VUB_GUARDED(c, -EPROTO, vub_inflight_start(v, c, vq)))
		return -EPROTO;
	vq->started = true;
	if (!vub_protocol_negotiated(c))
		vq->enabled = true;
	return vub_vq_process(v, c, vq);
}

/* returns 0 if handled (reply sent if needed), -EPROTO to drop the client */
int vub_handle(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	const struct vu_req_info *ri = vu_req_info(m->hdr.request);
	bool ack = (m->hdr.flags & VU_FLAG_NEED_REPLY) &&
		   (c->pfeatures & VU_BIT(VU_PF_REPLY_ACK)) && !ri->reply;
	struct vub_vq *vq;
	const char *err;
	int ret = 0;

	err = vu_msg_validate(m);
	if (err) {
		ret = vub_fail(c, err);
		goto out;
	}
	switch (m->hdr.request) {
	case VU_GET_FEATURES:
		m->p.u64 = vub_features(v);
		ret = vub_reply(c, m, 8);
		break;
	case VU_SET_FEATURES:
		ret = vub_set_features(v, c, m);
		break;
	case VU_GET_PROTOCOL_FEATURES:
		m->p.u64 = vub_protocol_features();
		ret = vub_reply(c, m, 8);
		break;
	case VU_SET_PROTOCOL_FEATURES:
		if (m->p.u64 & ~vub_protocol_features()) {
			ret = vub_fail(c, "SET_PROTOCOL_FEATURES acks features that were not offered");
			break;
		}
		c->pfeatures = m->p.u64;
		c->pfeatures_set = true;
		break;
	case VU_SET_OWNER:
		break;
	case VU_RESET_OWNER:
		/*
		 * Deprecated; the spec recommends ignoring it or disabling
		 * all rings, and warns that discarding connection state leads
		 * to bugs. Like libvhost-user: disable the rings, keep the
		 * rest (SET_VRING_ENABLE 1 resumes them).
		 */
		if (v->bugs & BUG_RESET_OWNER_DISCARDS) {
			vub_reset_device(c);
			__atomic_fetch_add(&v->bug_hits, 1, __ATOMIC_RELAXED);
			break;
		}
		for (unsigned int i = 0; i < VUB_MAX_QUEUES; i++)
			c->vqs[i].enabled = false;
		break;
	case VU_RESET_DEVICE:
		if (!(v->bugs & BUG_RESET_DEVICE_IGNORED))
			vub_reset_device(c);
		else
			__atomic_fetch_add(&v->bug_hits, 1, __ATOMIC_RELAXED);
		break;
	case VU_GET_QUEUE_NUM:
		m->p.u64 = v->nqueues;
		ret = vub_reply(c, m, 8);
		break;
	case VU_GET_MAX_MEM_SLOTS:
		m->p.u64 = VUB_MAX_SLOTS;
		ret = vub_reply(c, m, 8);
		break;
	case VU_SET_MEM_TABLE:
		ret = vub_set_mem_table(v, c, m);
		break;
	case VU_ADD_MEM_REG:
		ret = vub_add_mem_reg(v, c, m);
		break;
	case VU_REM_MEM_REG:
		ret = vub_rem_mem_reg(v, c, m);
		break;
	case VU_SET_LOG_BASE:
		ret = vub_set_log_base(v, c, m);
		break;
	case VU_SET_LOG_FD:
		/* only used with the old shared-memory logging we don't offer */
		ret = vub_fail(c, "SET_LOG_FD is not supported");
		break;
	case VU_SET_VRING_NUM:
		vq = vub_vq_get(v, c, m->p.state.index);
		if (!vq) {
			ret = -EPROTO;
		} else if (vq->started) {
			ret = vub_fail(c, "SET_VRING_NUM on a started ring");
		} else if (!m->p.state.num || m->p.state.num > VU_MAX_QUEUE_SIZE ||
			   (m->p.state.num & (m->p.state.num - 1))) {
			ret = vub_fail(c, "SET_VRING_NUM size not a power of 2 in 1..32768");
		} else {
			vq->num = m->p.state.num;
		}
		break;
	case VU_SET_VRING_BASE:
		vq = vub_vq_get(v, c, m->p.state.index);
		if (!vq) {
			ret = -EPROTO;
		} else if (vq->started) {
			ret = vub_fail(c, "SET_VRING_BASE on a started ring");
		} else if (m->p.state.num > 0xffff) {
			ret = vub_fail(c, "SET_VRING_BASE index above 65535");
		} else {
			vq->last_avail = m->p.state.num;
			vq->used_idx = m->p.state.num;
		}
		break;
	case VU_SET_VRING_ADDR: {
		struct vhost_vring_addr *a = &m->p.addr;
		uint64_t end;

		vq = vub_vq_get(v, c, a->index);
		if (!vq) {
			ret = -EPROTO;
		} else if (a->flags & ~(1u << VHOST_VRING_F_LOG)) {
			ret = vub_fail(c, "SET_VRING_ADDR unknown flags");
		} else if (a->desc_user_addr % 16 || a->avail_user_addr % 2 ||
			   a->used_user_addr % 4 ||
			   ((a->flags & (1u << VHOST_VRING_F_LOG)) &&
			    (a->log_guest_addr % 4 ||
			     !vu_add_ok(a->log_guest_addr,
					vu_used_size(VU_MAX_QUEUE_SIZE, true),
					&end)))) {
			ret = vub_fail(c, "SET_VRING_ADDR addresses misaligned or overflowing");
		} else {
			struct vhost_vring_addr old = vq->addr;

			vq->addr = *a;
			vq->have_addr = true;
			/* a running ring must stay inside the table */
			if (vq->started && vub_vq_map(c, vq)) {
				vq->addr = old;
				ret = -EPROTO;
			}
		}
		break;
	}
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		ret = vub_vring_fd(v, c, m);
		break;
	case VU_GET_VRING_BASE:
		vq = vub_vq_get(v, c, m->p.state.index);
		if (!vq) {
			ret = -EPROTO;
			break;
		}
		/* stop: no more guest-memory writes or calls on this ring */
		vq->started = false;
		vub_close_fd(&vq->kick_fd);
		m->p.state.num = vq->last_avail;
		ret = vub_reply(c, m, 8);
		break;
	case VU_SET_VRING_ENABLE:
		vq = vub_vq_get(v, c, m->p.state.index);
		if (!vq) {
			ret = -EPROTO;
		} else if (!vub_protocol_negotiated(c)) {
			ret = vub_fail(c, "SET_VRING_ENABLE without PROTOCOL_FEATURES");
		} else if (m->p.state.num > 1) {
			ret = vub_fail(c, "SET_VRING_ENABLE value not 0 or 1");
		} else {
			vq->enabled = m->p.state.num;
			ret = vub_vq_process(v, c, vq);
		}
		break;
	case VU_GET_CONFIG:
		ret = vub_get_config(v, c, m);
		break;
	case VU_SET_CONFIG:
		/* the only writable field (wce) needs CONFIG_WCE: not offered */
		if (!ack)
			kml_warn("conn %u: SET_CONFIG ignored (no writable fields)",
				 c->id);
		if (ack) {
			m->p.u64 = 1;
			ret = vub_reply(c, m, 8);
			return ret;
		}
		break;
	case VU_GET_INFLIGHT_FD:
		ret = vub_get_inflight_fd(v, c, m);
		break;
	case VU_SET_INFLIGHT_FD:
		ret = vub_set_inflight_fd(v, c, m);
		break;
	case VU_SET_BACKEND_REQ_FD:
		ret = vub_fail(c, "SET_BACKEND_REQ_FD without BACKEND_REQ");
		break;
	default:
		ret = vub_fail(c, "unsupported request");
		break;
	}
out:
	vu_msg_close_fds(m);
	if (ack) {
		struct vu_msg r = { .hdr = { m->hdr.request } };

		r.p.u64 = ret ? 1 : 0;
		vub_reply(c, &r, 8);
	}
	return ret;
}

/*
 * The connection's socket is readable: take what has arrived of its next
 * message without waiting for the rest (a front-end that sends it a byte
 * at a time must not hold up the others; vub_loop() closes the connection
 * if it is not complete VUB_IO_TIMEOUT_NS after its first byte), and
 * handle it once it is complete.
 */
int vub_conn_read(struct vub *v, struct vub_conn *c)
{
	struct vu_msg *mp = &c->rx.msg;
	bool started = c->rx.got;
	const char *err;
	int ret;

	ret = vu_msg_recv_nb(c->sock, &c->rx, &err);
	if (ret == -EAGAIN) {
		if (!started && c->rx.got)
			c->rx_deadline = kml_now_ns() + VUB_IO_TIMEOUT_NS;
		return 0;
	}
	if (ret == 0 && !c->msgs) {
		/* e.g. a second vub checking whether the socket is in use */
		v->total_probes++;
		kml_warn("conn %u: closed before its first message: a probe (another vub checking this socket?), not a front-end",
			 c->id);
		return -ECONNRESET;
	}
	if (ret == 0) {
		vub_log(v, "conn %u: front-end closed the connection", c->id);
		return -ECONNRESET;
	}
	if (ret < 0) {
		kml_err("close the front-end or fix the message it sends",
			"conn %u: %s: closing the connection", c->id,
			err ? err : strerror(-ret));
		return vub_fail(c, err ? err : "receive failed");
	}
	c->msgs++;
	vub_log(v, "conn %u: %s flags 0x%x size %u fds %d", c->id,
		vu_req_name(mp->hdr.request), mp->hdr.flags, mp->hdr.size,
		mp->nfds);
	/* every message sees a quiescent device: nothing in flight */
	vub_drain(v, c);
	ret = vub_handle(v, c, mp);
	if (!ret)
		ret = vub_held_resume(v, c);
	if (ret && c->why)
		kml_err(vub_hint(c, "close the front-end or fix the message it sends"),
			"conn %u: %s (%s): closing the connection", c->id,
			c->why, vu_req_name(mp->hdr.request));
	vu_rx_reset(&c->rx);
	return ret;
}

int vub_kick(struct vub *v, struct vub_conn *c, struct vub_vq *vq)
{
	uint64_t cnt = 0;
	ssize_t n;

	n = read(vq->kick_fd, &cnt, sizeof(cnt));
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return vub_fail(c, "reading the kick eventfd failed");
	/* an eventfd (vub_check_eventfd()) reads 8 bytes or fails */
	if (n >= 0 && n != sizeof(cnt))
		return vub_failf(c, "kick fd read returned %zd bytes, not an eventfd count",
				 n);
	vub_kicks += cnt;
	return vub_vq_process(v, c, vq);
}

/* a connection on socket @fd (non-blocking), no state yet */
struct vub_conn *vub_conn_new(struct vub *v, int fd)
{
	struct vub_conn *c = calloc(1, sizeof(*c));
	unsigned int i;

	if (!c)
		return NULL;
	c->sock = fd;
	c->id = ++v->next_id;
	for (i = 0; i < VUB_MAX_QUEUES; i++) {
		c->vqs[i].kick_fd = -1;
		c->vqs[i].call_fd = -1;
		c->vqs[i].err_fd = -1;
	}
	return c;
}
