/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vu_proto - the vhost-user protocol as both kmemlab programs speak it:
 * message numbers, payload layouts, framing over a UNIX stream socket with
 * SCM_RIGHTS file descriptors, and the per-request validation table.
 *
 * Written once; linked into vub (back-end) and vu-check (front-end).
 * Reference: QEMU docs/interop/vhost-user.rst (10.0) and the QEMU 7.2
 * front-end's actual behaviour (SET_LOG_BASE carries 16 bytes).
 */
#ifndef VU_PROTO_H
#define VU_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vhost_types.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

/* ---- message numbers (front-end -> back-end) --------------------------- */
enum vu_request {
	VU_NONE = 0,
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SEND_RARP = 19,
	VU_NET_SET_MTU = 20,
	VU_SET_BACKEND_REQ_FD = 21,
	VU_IOTLB_MSG = 22,
	VU_SET_VRING_ENDIAN = 23,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_CREATE_CRYPTO_SESSION = 26,
	VU_CLOSE_CRYPTO_SESSION = 27,
	VU_POSTCOPY_ADVISE = 28,
	VU_POSTCOPY_LISTEN = 29,
	VU_POSTCOPY_END = 30,
	VU_GET_INFLIGHT_FD = 31,
	VU_SET_INFLIGHT_FD = 32,
	VU_GPU_SET_SOCKET = 33,
	VU_RESET_DEVICE = 34,
	VU_VRING_KICK = 35,
	VU_GET_MAX_MEM_SLOTS = 36,
	VU_ADD_MEM_REG = 37,
	VU_REM_MEM_REG = 38,
	VU_SET_STATUS = 39,
	VU_GET_STATUS = 40,
	VU_REQ_MAX
};

/* header flags */
#define VU_VERSION		0x1u
#define VU_VERSION_MASK		0x3u
#define VU_FLAG_REPLY		(1u << 2)
#define VU_FLAG_NEED_REPLY	(1u << 3)

/* feature bits outside the virtio headers */
#define VU_F_PROTOCOL_FEATURES	30

/* protocol feature bits */
enum vu_protocol_feature {
	VU_PF_MQ = 0,
	VU_PF_LOG_SHMFD = 1,
	VU_PF_RARP = 2,
	VU_PF_REPLY_ACK = 3,
	VU_PF_NET_MTU = 4,
	VU_PF_BACKEND_REQ = 5,
	VU_PF_CROSS_ENDIAN = 6,
	VU_PF_CRYPTO_SESSION = 7,
	VU_PF_PAGEFAULT = 8,
	VU_PF_CONFIG = 9,
	VU_PF_BACKEND_SEND_FD = 10,
	VU_PF_HOST_NOTIFIER = 11,
	VU_PF_INFLIGHT_SHMFD = 12,
	VU_PF_RESET_DEVICE = 13,
	VU_PF_INBAND_NOTIFICATIONS = 14,
	VU_PF_CONFIGURE_MEM_SLOTS = 15,
	VU_PF_STATUS = 16,
};

#define VU_BIT(n)		(1ull << (n))

/* SET_MEM_TABLE carries at most this many regions (and fds) */
#define VU_MAX_TABLE_REGIONS	8
/* fds accepted on any single message */
#define VU_MAX_FDS		8
/* virtio split ring limits */
#define VU_MAX_QUEUE_SIZE	32768
/* SET_VRING_KICK/CALL/ERR payload */
#define VU_VRING_IDX_MASK	0xffull
#define VU_VRING_NOFD		(1ull << 8)
/* dirty log granularity */
#define VU_LOG_PAGE		((uint64_t)4096)

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vu_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_region regions[VU_MAX_TABLE_REGIONS];
};

struct vu_mem_reg {
	uint64_t padding;
	struct vu_region region;
};

/* QEMU's real SET_LOG_BASE payload (the spec table says u64) */
struct vu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

/* GET_INFLIGHT_FD / SET_INFLIGHT_FD (QEMU's VhostUserInflight, 24 bytes) */
struct vu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
};

/*
 * The spec's inflight region of one split queue ("Inflight I/O tracking"):
 * a header and one entry per descriptor, entries meaningful for heads.
 */
struct vu_inflight_desc {
	uint8_t inflight;	/* 1 while the request is in flight */
	uint8_t padding[5];
	uint16_t next;		/* the last batch of used heads */
	uint64_t counter;	/* order in which heads were fetched */
};

struct vu_inflight_split {
	uint64_t features;	/* 0 */
	uint16_t version;	/* 1 once initialised; 0: a fresh region */
	uint16_t desc_num;	/* queue size */
	uint16_t last_batch_head;
	uint16_t used_idx;	/* used->idx when the last batch was done */
	struct vu_inflight_desc desc[];
};

#define VU_INFLIGHT_VERSION	1
#define VU_INFLIGHT_ALIGN	64

/* one queue's share of the region, as libvhost-user lays it out */
static inline uint64_t vu_inflight_queue_size(uint16_t queue_size)
{
	uint64_t n = sizeof(struct vu_inflight_desc) * (uint64_t)queue_size +
		     sizeof(uint16_t);

	return (n + VU_INFLIGHT_ALIGN - 1) & ~(uint64_t)(VU_INFLIGHT_ALIGN - 1);
}

#define VU_CONFIG_MAX 256
struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VU_CONFIG_MAX];
};

union vu_payload {
	uint64_t u64;
	struct vhost_vring_state state;
	struct vhost_vring_addr addr;
	struct vu_mem_table mem;
	struct vu_mem_reg memreg;
	struct vu_log log;
	struct vu_config config;
	struct vu_inflight inflight;
};

struct vu_msg {
	struct vu_hdr hdr;
	union vu_payload p;
	int fds[VU_MAX_FDS];
	int nfds;
};

/**
 * struct vu_req_info - what a valid request looks like
 * @name: the spec's name without the VHOST_USER_ prefix
 * @min_size: smallest payload accepted
 * @max_size: largest payload accepted
 * @max_fds: most file descriptors the message may carry
 * @reply: the request always has a reply payload (GET_*)
 * @known: false for numbers this implementation does not handle
 */
struct vu_req_info {
	const char *name;
	uint16_t min_size;
	uint16_t max_size;
	uint8_t max_fds;
	bool reply;
	bool known;
};

const struct vu_req_info *vu_req_info(uint32_t request);
const char *vu_req_name(uint32_t request);

/**
 * vu_msg_recv() - read one message (header, fds, payload) from @sock.
 * @msg: filled in; msg->fds holds received descriptors (caller owns them)
 * @err: on failure, a static string naming what was wrong
 *
 * Checks the version bits, the payload size against the maximum the
 * union can hold and that no descriptors were truncated. Per-request
 * checks are vu_msg_validate().
 * Return: 1 on a message, 0 on orderly EOF, -errno on failure.
 */
int vu_msg_recv(int sock, struct vu_msg *msg, const char **err);

/**
 * struct vu_rx - one message being reassembled from a socket that is read
 * without blocking (vu_msg_recv_nb()), so that a peer sending it a byte at
 * a time holds nobody up. Zero it (vu_rx_reset()) before the first message
 * and after each one.
 * @msg: the message so far; its fds are collected from every chunk
 * @got: bytes of header + payload received
 */
struct vu_rx {
	struct vu_msg msg;
	size_t got;
};

/** vu_rx_reset() - close any fds of a partial message and start afresh. */
void vu_rx_reset(struct vu_rx *rx);

/**
 * vu_msg_recv_nb() - read what has arrived of one message, never waiting.
 * @err: on failure, a static string naming what was wrong
 *
 * Reads at most up to the end of the current message (the next one's fds
 * come with its own first bytes), with the checks of vu_msg_recv(); fds
 * may come with any chunk of the message, at most VU_MAX_FDS in all.
 * Return: 1 when rx->msg is complete (the caller owns its fds and resets
 * @rx for the next), 0 on orderly EOF between messages, -EAGAIN when the
 * rest has not arrived yet, other -errno on failure (the fds received so
 * far are closed).
 */
int vu_msg_recv_nb(int sock, struct vu_rx *rx, const char **err);

/**
 * vu_msg_validate() - check payload size and fd count of a request
 * against the table. Return: NULL if valid, else a message.
 */
const char *vu_msg_validate(const struct vu_msg *msg);

/* the most fds vu_send_fds() takes: more than VU_MAX_FDS, for a checker */
#define VU_SEND_MAX_FDS		(2 * VU_MAX_FDS)

/**
 * vu_send_fds() - one sendmsg() of @iov with @nfds fds as SCM_RIGHTS
 * @flags: sendmsg() flags (MSG_NOSIGNAL, MSG_DONTWAIT)
 *
 * The one SCM_RIGHTS send of vub and vu-check; EINTR is retried.
 * Return: the bytes sent (possibly fewer than @iov holds), or -errno
 * (-EINVAL for more than VU_SEND_MAX_FDS fds).
 */
ssize_t vu_send_fds(int sock, struct iovec *iov, int iovcnt, const int *fds,
		    int nfds, int flags);

/** vu_msg_send() - send header+payload (hdr.size bytes) and @nfds fds. */
int vu_msg_send(int sock, const struct vu_msg *msg, const int *fds, int nfds);

/** vu_msg_close_fds() - close every fd a received message carried. */
void vu_msg_close_fds(struct vu_msg *msg);

/* ---- split virtqueue layout --------------------------------------------- */
static inline uint64_t vu_desc_size(unsigned int num)
{
	return 16ull * num;
}

static inline uint64_t vu_avail_size(unsigned int num, bool event_idx)
{
	return 4ull + 2ull * num + (event_idx ? 2 : 0);
}

static inline uint64_t vu_used_size(unsigned int num, bool event_idx)
{
	return 4ull + 8ull * num + (event_idx ? 2 : 0);
}

/* log bytes needed to cover guest physical addresses below @gpa_end */
static inline uint64_t vu_log_bytes(uint64_t gpa_end)
{
	return (gpa_end / VU_LOG_PAGE + 7) / 8;
}

static inline bool vu_log_test(const uint8_t *log, uint64_t size, uint64_t gpa)
{
	uint64_t page = gpa / VU_LOG_PAGE;

	if (page / 8 >= size)
		return false;
	return log[page / 8] & (1u << (page % 8));
}

/* a + b without wrapping; false on overflow */
static inline bool vu_add_ok(uint64_t a, uint64_t b, uint64_t *sum)
{
	return !__builtin_add_overflow(a, b, sum);
}

#endif /* VU_PROTO_H */
