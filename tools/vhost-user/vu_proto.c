// SPDX-License-Identifier: GPL-2.0
/*
 * vu_proto - vhost-user message framing and validation shared by vub and
 * vu-check. See vu_proto.h.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "vu_proto.h"

#define REQ(n, lo, hi, fds, rep) \
	[VU_##n] = { #n, (lo), (hi), (fds), (rep), true }

#define SZ(t) ((uint16_t)sizeof(t))

static const struct vu_req_info vu_reqs[VU_REQ_MAX] = {
	REQ(GET_FEATURES, 0, 0, 0, true),
	REQ(SET_FEATURES, 8, 8, 0, false),
	REQ(SET_OWNER, 0, 0, 0, false),
	REQ(RESET_OWNER, 0, 0, 0, false),
	/* nregions decides the exact size; checked in vu_msg_validate() */
	REQ(SET_MEM_TABLE, 8 + SZ(struct vu_region), SZ(struct vu_mem_table),
	    VU_MAX_TABLE_REGIONS, false),
	/* the spec table says u64; QEMU sends {size, offset}: require that */
	REQ(SET_LOG_BASE, SZ(struct vu_log), SZ(struct vu_log), 1, true),
	REQ(SET_LOG_FD, 0, 0, 1, false),
	REQ(SET_VRING_NUM, 8, 8, 0, false),
	REQ(SET_VRING_ADDR, SZ(struct vhost_vring_addr),
	    SZ(struct vhost_vring_addr), 0, false),
	REQ(SET_VRING_BASE, 8, 8, 0, false),
	REQ(GET_VRING_BASE, 8, 8, 0, true),
	REQ(SET_VRING_KICK, 8, 8, 1, false),
	REQ(SET_VRING_CALL, 8, 8, 1, false),
	REQ(SET_VRING_ERR, 8, 8, 1, false),
	REQ(GET_PROTOCOL_FEATURES, 0, 0, 0, true),
	REQ(SET_PROTOCOL_FEATURES, 8, 8, 0, false),
	REQ(GET_QUEUE_NUM, 0, 0, 0, true),
	REQ(SET_VRING_ENABLE, 8, 8, 0, false),
	REQ(SET_BACKEND_REQ_FD, 0, 0, 1, false),
	REQ(GET_CONFIG, 12, SZ(struct vu_config), 0, true),
	REQ(SET_CONFIG, 12, SZ(struct vu_config), 0, false),
	REQ(RESET_DEVICE, 0, 0, 0, false),
	REQ(GET_MAX_MEM_SLOTS, 0, 0, 0, true),
	REQ(ADD_MEM_REG, SZ(struct vu_mem_reg), SZ(struct vu_mem_reg), 1,
	    false),
	/* QEMU 7.2 sends no fd, older front-ends sent one: accept both */
	REQ(REM_MEM_REG, SZ(struct vu_mem_reg), SZ(struct vu_mem_reg), 1,
	    false),
	REQ(GET_INFLIGHT_FD, SZ(struct vu_inflight), SZ(struct vu_inflight), 0,
	    true),
	REQ(SET_INFLIGHT_FD, SZ(struct vu_inflight), SZ(struct vu_inflight), 1,
	    false),
};

static const char *const vu_unknown_names[VU_REQ_MAX] = {
	[VU_SEND_RARP] = "SEND_RARP",
	[VU_NET_SET_MTU] = "NET_SET_MTU",
	[VU_IOTLB_MSG] = "IOTLB_MSG",
	[VU_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
	[VU_CREATE_CRYPTO_SESSION] = "CREATE_CRYPTO_SESSION",
	[VU_CLOSE_CRYPTO_SESSION] = "CLOSE_CRYPTO_SESSION",
	[VU_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
	[VU_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
	[VU_POSTCOPY_END] = "POSTCOPY_END",
	[VU_GPU_SET_SOCKET] = "GPU_SET_SOCKET",
	[VU_VRING_KICK] = "VRING_KICK",
	[VU_SET_STATUS] = "SET_STATUS",
	[VU_GET_STATUS] = "GET_STATUS",
};

const struct vu_req_info *vu_req_info(uint32_t request)
{
	static const struct vu_req_info unknown = { "UNKNOWN", 0, 0, 0,
						    false, false };

	if (request < VU_REQ_MAX && vu_reqs[request].known)
		return &vu_reqs[request];
	return &unknown;
}

const char *vu_req_name(uint32_t request)
{
	if (request < VU_REQ_MAX && vu_reqs[request].known)
		return vu_reqs[request].name;
	if (request < VU_REQ_MAX && vu_unknown_names[request])
		return vu_unknown_names[request];
	return "UNKNOWN";
}

void vu_msg_close_fds(struct vu_msg *msg)
{
	int i;

	for (i = 0; i < msg->nfds; i++)
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	msg->nfds = 0;
}

/* read exactly @len bytes (no ancillary data); 0 on EOF at offset 0 */
static int read_full(int sock, void *buf, size_t len, size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = recv(sock, (char *)buf + *got, len - *got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return *got ? -EPIPE : 0;
		*got += n;
	}
	return 1;
}

int vu_msg_recv(int sock, struct vu_msg *msg, const char **err)
{
	char cbuf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
	struct iovec iov = { &msg->hdr, sizeof(msg->hdr) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	size_t got;
	ssize_t n;
	int ret;

	memset(msg, 0, sizeof(*msg));
	*err = NULL;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		*err = errno == EAGAIN ? "timed out waiting for a message" :
					 "recvmsg failed";
		return -errno;
	}
	if (n == 0)
		return 0;

	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t nfd;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfd + msg->nfds > VU_MAX_FDS)
			nfd = VU_MAX_FDS - msg->nfds;
		memcpy(&msg->fds[msg->nfds], CMSG_DATA(cm), nfd * sizeof(int));
		msg->nfds += nfd;
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		*err = "too many file descriptors (ancillary data truncated)";
		vu_msg_close_fds(msg);
		return -EMSGSIZE;
	}
	if ((size_t)n < sizeof(msg->hdr)) {
		ret = read_full(sock, (char *)&msg->hdr + n,
				sizeof(msg->hdr) - n, &got);
		if (ret <= 0) {
			*err = "connection closed inside a message header";
			vu_msg_close_fds(msg);
			return ret ? ret : -EPIPE;
		}
	}
	if ((msg->hdr.flags & VU_VERSION_MASK) != VU_VERSION) {
		*err = "bad protocol version in header flags";
		vu_msg_close_fds(msg);
		return -EPROTO;
	}
	if (msg->hdr.size > sizeof(msg->p)) {
		*err = "payload size larger than any vhost-user message";
		vu_msg_close_fds(msg);
		return -EMSGSIZE;
	}
	if (msg->hdr.size) {
		ret = read_full(sock, &msg->p, msg->hdr.size, &got);
		if (ret <= 0) {
			*err = ret == -EAGAIN ?
			       "timed out reading the payload (short message)" :
			       "connection closed inside a payload";
			vu_msg_close_fds(msg);
			return ret ? ret : -EPIPE;
		}
	}
	return 1;
}

void vu_rx_reset(struct vu_rx *rx)
{
	vu_msg_close_fds(&rx->msg);
	memset(rx, 0, sizeof(*rx));
}

/* take the SCM_RIGHTS fds of one recvmsg(); false if there were too many */
static bool vu_rx_fds(struct msghdr *mh, struct vu_msg *msg)
{
	struct cmsghdr *cm;
	bool ok = !(mh->msg_flags & MSG_CTRUNC);

	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t nfd, i;
		int fd;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (msg->nfds < VU_MAX_FDS) {
				msg->fds[msg->nfds++] = fd;
			} else {
				close(fd);
				ok = false;
			}
		}
	}
	return ok;
}

int vu_msg_recv_nb(int sock, struct vu_rx *rx, const char **err)
{
	const size_t hlen = sizeof(rx->msg.hdr);
	struct vu_msg *msg = &rx->msg;

	*err = NULL;
	for (;;) {
		char cbuf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		bool in_hdr = rx->got < hlen;
		struct iovec iov = {
			in_hdr ? (char *)&msg->hdr + rx->got :
				 (char *)&msg->p + (rx->got - hlen),
			in_hdr ? hlen - rx->got : hlen + msg->hdr.size - rx->got,
		};
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cbuf,
			.msg_controllen = sizeof(cbuf),
		};
		ssize_t n;

		if (!in_hdr && rx->got == hlen + msg->hdr.size)
			return 1;
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return -EAGAIN;
		if (n < 0) {
			*err = "recvmsg failed";
			n = -errno;
			vu_msg_close_fds(msg);
			return n;
		}
		if (!vu_rx_fds(&mh, msg)) {
			*err = "too many file descriptors (ancillary data truncated)";
			vu_msg_close_fds(msg);
			return -EMSGSIZE;
		}
		if (n == 0) {
			if (!rx->got && !msg->nfds)
				return 0;
			*err = in_hdr ? "connection closed inside a message header" :
					"connection closed inside a payload";
			vu_msg_close_fds(msg);
			return -EPIPE;
		}
		rx->got += n;
		if (!in_hdr || rx->got < hlen)
			continue;
		/* the header is complete: check it before the payload */
		if ((msg->hdr.flags & VU_VERSION_MASK) != VU_VERSION) {
			*err = "bad protocol version in header flags";
			vu_msg_close_fds(msg);
			return -EPROTO;
		}
		if (msg->hdr.size > sizeof(msg->p)) {
			*err = "payload size larger than any vhost-user message";
			vu_msg_close_fds(msg);
			return -EMSGSIZE;
		}
	}
}

const char *vu_msg_validate(const struct vu_msg *msg)
{
	const struct vu_req_info *ri = vu_req_info(msg->hdr.request);

	if (!ri->known)
		return "unknown or unsupported request";
	if (msg->hdr.flags & VU_FLAG_REPLY)
		return "REPLY flag set on a request";
	if (msg->hdr.flags & ~(VU_VERSION_MASK | VU_FLAG_REPLY |
			       VU_FLAG_NEED_REPLY))
		return "unknown header flags";
	if (msg->hdr.size < ri->min_size || msg->hdr.size > ri->max_size)
		return "payload size wrong for this request";
	if (msg->nfds > ri->max_fds)
		return "more file descriptors than this request carries";
	if (msg->hdr.request == VU_SET_MEM_TABLE) {
		uint32_t n = msg->p.mem.nregions;

		if (n == 0 || n > VU_MAX_TABLE_REGIONS)
			return "SET_MEM_TABLE region count out of range (1..8)";
		if (msg->hdr.size != 8 + n * sizeof(struct vu_region))
			return "SET_MEM_TABLE size does not match nregions";
		if ((uint32_t)msg->nfds != n)
			return "SET_MEM_TABLE needs exactly one fd per region";
	}
	if (msg->hdr.request == VU_GET_CONFIG ||
	    msg->hdr.request == VU_SET_CONFIG) {
		if (msg->p.config.size > VU_CONFIG_MAX ||
		    msg->hdr.size != 12 + msg->p.config.size)
			return "config size does not match the payload";
	}
	if ((msg->hdr.request == VU_SET_LOG_FD ||
	     msg->hdr.request == VU_SET_BACKEND_REQ_FD ||
	     msg->hdr.request == VU_SET_INFLIGHT_FD ||
	     msg->hdr.request == VU_ADD_MEM_REG) && msg->nfds != 1)
		return "request needs exactly one file descriptor";
	if (msg->hdr.request == VU_SET_VRING_KICK ||
	    msg->hdr.request == VU_SET_VRING_CALL ||
	    msg->hdr.request == VU_SET_VRING_ERR) {
		uint64_t v = msg->p.u64;
		bool one_fd = msg->nfds == 1;

		if (v & ~(VU_VRING_IDX_MASK | VU_VRING_NOFD))
			return "reserved bits set in vring fd payload";
		if (!!(v & VU_VRING_NOFD) == one_fd)
			return "vring fd count does not match the NOFD bit";
	}
	return NULL;
}

ssize_t vu_send_fds(int sock, struct iovec *iov, int iovcnt, const int *fds,
		    int nfds, int flags)
{
	char cbuf[CMSG_SPACE(VU_SEND_MAX_FDS * sizeof(int))];
	struct msghdr mh = {
		.msg_iov = iov,
		.msg_iovlen = iovcnt,
	};
	ssize_t n;

	if (nfds < 0 || nfds > VU_SEND_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	do {
		n = sendmsg(sock, &mh, flags);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int vu_msg_send(int sock, const struct vu_msg *msg, const int *fds, int nfds)
{
	struct iovec iov[2] = {
		{ (void *)&msg->hdr, sizeof(msg->hdr) },
		{ (void *)&msg->p, msg->hdr.size },
	};
	size_t total = sizeof(msg->hdr) + msg->hdr.size;
	ssize_t n;

	if (nfds < 0 || nfds > VU_MAX_FDS || msg->hdr.size > sizeof(msg->p))
		return -EINVAL;
	n = vu_send_fds(sock, iov, msg->hdr.size ? 2 : 1, fds, nfds,
			MSG_NOSIGNAL);
	if (n < 0)
		return n;
	if ((size_t)n != total) {
		/* a stream socket may take part of it; send the rest plainly */
		size_t off = n;

		while (off < total) {
			const char *p = off < sizeof(msg->hdr) ?
				(const char *)&msg->hdr + off :
				(const char *)&msg->p + (off - sizeof(msg->hdr));
			size_t chunk = off < sizeof(msg->hdr) ?
				sizeof(msg->hdr) - off : total - off;

			n = send(sock, p, chunk, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n < 0 ? -errno : -EPIPE;
			off += n;
		}
	}
	return 0;
}
