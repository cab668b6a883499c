// SPDX-License-Identifier: GPL-2.0
/*
 * vu_fuzz - libFuzzer targets for vub's message and ring handling, built
 * with clang -fsanitize=fuzzer,address,undefined (tools/vhost-user/Makefile:
 * build/bin/vu-fuzz-msg and vu-fuzz-ring; run by selftests/vhost_user/
 * vu_fuzz.sh with the seed corpus in selftests/vhost_user/fuzz/).
 *
 * It links vub's units (vub_msg.c, vub_mem.c, vub_vq.c, vub_blk.c: all but
 * vub.c's main loop), so the targets run vub's own functions, not a copy.
 * Its worker pool is replaced by v->sync (vub_submit() does each job at
 * once), so a run is one thread and repeatable.
 *
 * VU_FUZZ_MSG: the input is a stream of vhost-user messages. The harness
 *   cuts it at the header sizes and sends each piece over a socketpair
 *   with the fds its request carries (a memfd of guest memory per
 *   SET_MEM_TABLE region, one for ADD_MEM_REG and SET_LOG_BASE, an eventfd
 *   for SET_VRING_KICK/CALL/ERR without NOFD), then vub_conn_read() takes
 *   the messages until the connection fails or ends.
 * VU_FUZZ_RING: a valid set-up (the features and queue size of the first
 *   bytes, one 64 KiB region, dirty log if asked for) and the rest of the
 *   input as guest memory (descriptor table, avail ring, buffers), then a
 *   kick, completions, a second kick; optionally the memfd shrinks before
 *   the kick (the SIGBUS recovery points), and optionally an inflight
 *   region (SET_INFLIGHT_FD) whose contents are input bytes too: the
 *   repair and resubmission of vub_inflight_start().
 *
 * VU_FUZZ_VERBOSE=1 prints what each input reached (messages, requests,
 * the error that ended it). VU_FUZZ_CANARY=1 in the environment makes an input starting with
 * "CANARY" overflow a heap buffer: vu_fuzz.sh's proof that a sanitizer
 * report fails the run.
 */
#include "vub.h"

#define FZ_MEM		(64u << 10)
#define FZ_UVA		0x7f0000000000ull
/* ring layout (queue 1's avail and used rings FZ_QSTRIDE further) */
#define FZ_DESC		0x0000
#define FZ_AVAIL	0x0100
#define FZ_USED		0x0200
#define FZ_QSTRIDE	0x0400
#define FZ_LOG		4096u

static struct vub fz_v = { .nqueues = 2, .img_fd = -1,
			   .nowait = { true, true }, .sync = true };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct vub *v = &fz_v;

	kml_init("vub");
	signal(SIGPIPE, SIG_IGN);
	vub_sigbus_init();
	v->img_fd = memfd_create("vu-fuzz-image", MFD_CLOEXEC);
	if (v->img_fd < 0 || ftruncate(v->img_fd, 1 << 20) < 0)
		kml_die(1, NULL, "image memfd: %s", strerror(errno));
	v->capacity = 1 << 20;
	v->file = "vu-fuzz-image";
	v->sock_path = "-";
	v->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->done_fd < 0)
		kml_die(1, NULL, "eventfd: %s", strerror(errno));
	pthread_mutex_init(&v->lock, NULL);
	return 0;
}

static void fz_canary(const uint8_t *data, size_t size)
{
	static const char tag[] = "CANARY";
	volatile char *p;

	if (size < 6 || memcmp(data, tag, 6) || !getenv("VU_FUZZ_CANARY"))
		return;
	p = malloc(8);
	if (p)
		p[8] = data[0];		/* one byte past the end */
	free((void *)p);
}

/* a guest-memory memfd of FZ_MEM bytes, or -1 */
static int fz_memfd(const uint8_t *fill, size_t len)
{
	int fd = memfd_create("vu-fuzz-mem", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, FZ_MEM) < 0 ||
	    (len && pwrite(fd, fill, len < FZ_MEM ? len : FZ_MEM, 0) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* a connection in slot 0 on one end of a socketpair; @peer: the other */
static struct vub_conn *fz_conn(int *peer)
{
	int sv[2];
	struct vub_conn *c;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       sv) < 0)
		kml_die(1, NULL, "socketpair: %s", strerror(errno));
	c = vub_conn_new(&fz_v, sv[0]);
	if (!c)
		kml_die(1, NULL, "out of memory");
	fz_v.conns[0] = c;
	*peer = sv[1];
	return c;
}

static void fz_conn_end(struct vub_conn *c, int peer)
{
	vub_complete(&fz_v, NULL);
	/* what a seed reached (VU_FUZZ_VERBOSE=1) */
	if (getenv("VU_FUZZ_VERBOSE"))
		fprintf(stderr, "vu-fuzz: %" PRIu64 " messages, %" PRIu64 " requests, %s\n",
			c->msgs, c->requests, c->why ? c->why : "no error");
	vub_conn_free(&fz_v, c);
	fz_v.conns[0] = NULL;
	close(peer);
}

#ifdef VU_FUZZ_MSG
/* how many fds a front-end sends with this message */
static int fz_nfds(const struct vu_hdr *h, const uint8_t *p, size_t len)
{
	uint64_t u = 0;
	uint32_t n = 0;

	switch (h->request) {
	case VU_SET_MEM_TABLE:
		if (len >= 4)
			memcpy(&n, p, 4);
		return n > VU_MAX_FDS ? VU_MAX_FDS : n;
	case VU_ADD_MEM_REG:
	case VU_SET_LOG_BASE:
	case VU_SET_INFLIGHT_FD:
		return 1;
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		memcpy(&u, p, len < 8 ? len : 8);
		return u & VU_VRING_NOFD ? 0 : 1;
	}
	return 0;
}

static void fz_send(int sock, const uint8_t *buf, size_t len, int nfds,
		    const uint8_t *fill, size_t fill_len, int request)
{
	struct iovec iov = { (void *)buf, len };
	int fds[VU_MAX_FDS], i, n = 0;
	ssize_t sent;

	for (i = 0; i < nfds; i++) {
		bool ring = request == VU_SET_VRING_KICK ||
			    request == VU_SET_VRING_CALL ||
			    request == VU_SET_VRING_ERR;
		int fd = ring ? eventfd(0, EFD_CLOEXEC) :
			 fz_memfd(fill, fill_len);

		if (fd >= 0)
			fds[n++] = fd;
	}
	sent = vu_send_fds(sock, &iov, 1, fds, n, MSG_NOSIGNAL);
	if (sent < 0 && sent != -EAGAIN)
		kml_die(1, NULL, "sendmsg: %s", strerror(-sent));
	for (i = 0; i < n; i++)
		close(fds[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vub_conn *c;
	size_t off = 0;
	int peer, i;

	fz_canary(data, size);
	if (size > 16384)
		return -1;
	c = fz_conn(&peer);
	/* guest memory is the input itself (rings, buffers: anything) */
	while (off < size) {
		struct vu_hdr h;
		size_t len;

		if (size - off < sizeof(h)) {
			fz_send(peer, data + off, size - off, 0, NULL, 0, 0);
			break;
		}
		memcpy(&h, data + off, sizeof(h));
		len = sizeof(h) + h.size;
		if (len > size - off)
			len = size - off;
		fz_send(peer, data + off, len,
			fz_nfds(&h, data + off + sizeof(h), len - sizeof(h)),
			data, size, h.request);
		off += len;
	}
	shutdown(peer, SHUT_WR);
	/* as vub_loop(): the next message only once the last reply is out */
	for (i = 0; i < 1024 && !c->dead; i++) {
		if (c->out_len && (vub_flush(c) || c->out_len))
			break;
		if (vub_conn_read(&fz_v, c))
			break;
		vub_complete(&fz_v, NULL);
	}
	fz_conn_end(c, peer);
	return 0;
}
#endif /* VU_FUZZ_MSG */

#ifdef VU_FUZZ_RING
/* one request through vub_handle(), as vub_conn_read() hands it over */
static int fz_msg(struct vub_conn *c, uint32_t req, const void *p,
		  uint32_t size, int fd)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.request = req;
	m.hdr.flags = VU_VERSION;
	m.hdr.size = size;
	if (size)
		memcpy(&m.p, p, size);
	if (fd >= 0) {
		m.fds[0] = fd;
		m.nfds = 1;
	}
	vub_drain(&fz_v, c);
	return vub_handle(&fz_v, c, &m);
}

/*
 * Input: [0] feature choices (1 EVENT_IDX, 2 INDIRECT_DESC, 4 LOG_ALL and
 * a log, 8 an inflight region: guest memory from 0x2000 on is its
 * contents), [1] log2 of the queue size (mod 9), [2..3] the ring base,
 * [4] where the memfd ends before the kick (0: untouched, else that many
 * KiB, mod 64), then guest memory from gpa 0.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vub *v = &fz_v;
	uint64_t feat, pfeat, u;
	struct vub_conn *c;
	struct vu_mem_table mt = { .nregions = 1 };
	struct vhost_vring_state st;
	struct vhost_vring_addr a;
	struct vu_log lg = { FZ_LOG, 0 };
	uint8_t choice;
	uint16_t base;
	int peer, memfd, fd;

	fz_canary(data, size);
	if (size < 5 || size > FZ_MEM + 5)
		return -1;
	choice = data[0];
	base = data[2] | data[3] << 8;
	c = fz_conn(&peer);
	memfd = fz_memfd(data + 5, size - 5);
	if (memfd < 0)
		goto out;
	feat = VU_BIT(VIRTIO_F_VERSION_1) | VU_BIT(VU_F_PROTOCOL_FEATURES);
	if (choice & 1)
		feat |= VU_BIT(VIRTIO_RING_F_EVENT_IDX);
	if (choice & 2)
		feat |= VU_BIT(VIRTIO_RING_F_INDIRECT_DESC);
	if (choice & 4)
		feat |= VU_BIT(VHOST_F_LOG_ALL);
	pfeat = vub_protocol_features();
	if (fz_msg(c, VU_SET_PROTOCOL_FEATURES, &pfeat, 8, -1) ||
	    fz_msg(c, VU_SET_FEATURES, &feat, 8, -1))
		goto out;
	mt.regions[0] = (struct vu_region){ 0, FZ_MEM, FZ_UVA, 0 };
	if (fz_msg(c, VU_SET_MEM_TABLE, &mt, 8 + sizeof(mt.regions[0]),
		   dup(memfd)))
		goto out;
	if (choice & 4) {
		fd = memfd_create("vu-fuzz-log", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, FZ_LOG) < 0 ||
		    fz_msg(c, VU_SET_LOG_BASE, &lg, sizeof(lg), fd))
			goto out;
	}
	if (choice & 8) {
		struct vu_inflight in = { .num_queues = v->nqueues,
					  .queue_size = 1u << (data[1] % 9) };

		in.mmap_size = in.num_queues * vu_inflight_queue_size(in.queue_size);
		fd = memfd_create("vu-fuzz-inflight", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, in.mmap_size) < 0 ||
		    (size > 5 + 0x2000 &&
		     pwrite(fd, data + 5 + 0x2000, size - 5 - 0x2000 < in.mmap_size ?
			    size - 5 - 0x2000 : in.mmap_size, 0) < 0) ||
		    fz_msg(c, VU_SET_INFLIGHT_FD, &in, sizeof(in), fd))
			goto out;
	}
	for (unsigned int q = 0; q < v->nqueues; q++) {
		st = (struct vhost_vring_state){ q, 1u << (data[1] % 9) };
		if (fz_msg(c, VU_SET_VRING_NUM, &st, sizeof(st), -1))
			goto out;
		st.num = base;
		if (fz_msg(c, VU_SET_VRING_BASE, &st, sizeof(st), -1))
			goto out;
		/* queue 1 shares the descriptor table, its own rings */
		a = (struct vhost_vring_addr){
			.index = q,
			.flags = choice & 4 ? 1u << VHOST_VRING_F_LOG : 0,
			.desc_user_addr = FZ_UVA + FZ_DESC,
			.used_user_addr = FZ_UVA + FZ_USED + q * FZ_QSTRIDE,
			.avail_user_addr = FZ_UVA + FZ_AVAIL + q * FZ_QSTRIDE,
			.log_guest_addr = FZ_USED + q * FZ_QSTRIDE,
		};
		if (fz_msg(c, VU_SET_VRING_ADDR, &a, sizeof(a), -1))
			goto out;
		u = q;
		if (fz_msg(c, VU_SET_VRING_CALL, &u, 8,
			   eventfd(0, EFD_CLOEXEC)))
			goto out;
		/* the kick starts the ring: it processes what is there */
		if (data[4] && q == v->nqueues - 1 &&
		    ftruncate(memfd, (data[4] % 64) * 1024) < 0)
			goto out;
		if (fz_msg(c, VU_SET_VRING_KICK, &u, 8,
			   eventfd(0, EFD_CLOEXEC)))
			goto out;
		st = (struct vhost_vring_state){ q, 1 };
		if (fz_msg(c, VU_SET_VRING_ENABLE, &st, sizeof(st), -1))
			goto out;
	}
	/* completions, then a kick on each ring, then stop them */
	vub_complete(v, NULL);
	for (unsigned int q = 0; q < v->nqueues && !c->dead; q++) {
		uint64_t one = 1;

		if (write(c->vqs[q].kick_fd, &one, 8) < 0 ||
		    vub_kick(v, c, &c->vqs[q]))
			goto out;
		vub_complete(v, NULL);
		st = (struct vhost_vring_state){ q, 0 };
		if (fz_msg(c, VU_GET_VRING_BASE, &st, sizeof(st), -1))
			goto out;
	}
out:
	if (memfd >= 0)
		close(memfd);
	fz_conn_end(c, peer);
	return 0;
}
#endif /* VU_FUZZ_RING */
