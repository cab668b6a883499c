/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pcmig wire protocol: framing, validation, authentication, hashing.
 *
 * Every frame starts with a 40-byte little-endian header carrying the
 * session id and the link epoch, a per-channel sequence number and an
 * optional SipHash-2-4 tag over header and payload. With a shared secret,
 * the tag key of each channel and direction of a link is derived with
 * HKDF-SHA256 from the secret, both sides' nonces, the session and the
 * epoch (protocol version 2, Documentation/postcopy.rst "Keys"). The payload length is
 * checked against the exact size (or the bound) of the frame type before a
 * single payload byte is read, so a peer can neither make us allocate nor
 * write outside the region.
 */
#ifndef PCMIG_PROTO_H
#define PCMIG_PROTO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCM_MAGIC		0x474d4350u	/* "PCMG" */
#define PCM_VERSION		2
#define PCM_NONCE_LEN		16
#define PCM_PAGE_SIZE		4096u
#define PCM_HDR_SIZE		40u
/* a bitmap chunk carries at most this many bits (64 KiB of bitmap) */
#define PCM_BITMAP_CHUNK_BITS	(65536u * 8)
#define PCM_MAX_PAYLOAD		(16u + PCM_BITMAP_CHUNK_BITS / 8)
/* regions up to 64 GiB of 4 KiB pages */
#define PCM_MAX_PAGES		(16ull << 20)

enum pcm_type {
	PCM_T_HELLO = 1,	/* src->dst, both channels */
	PCM_T_HELLO_ACK,	/* dst->src main: dest phase */
	PCM_T_RBITMAP,		/* dst->src main: received-bitmap chunk */
	PCM_T_RBITMAP_END,	/* dst->src main: received count */
	PCM_T_RESUME,		/* src->dst main */
	PCM_T_RESUME_ACK,	/* dst->src main */
	PCM_T_PAGE,		/* src->dst: index + page */
	PCM_T_ZERO,		/* src->dst: index of an all-zero page */
	PCM_T_REQ,		/* dst->src main: page request */
	PCM_T_DISCARD,		/* src->dst bulk: bitmap chunk of stale pages */
	PCM_T_RUN,		/* src->dst bulk: enter postcopy */
	PCM_T_COMPLETE,		/* src->dst bulk: source digest */
	PCM_T_COMPLETE_ACK,	/* dst->src main: verdict + dest digest */
	PCM_T_PING,		/* both, main: heartbeat */
	PCM_T_BYE,		/* src->dst main: COMPLETE_ACK seen */
	PCM_T_PAGE_SUM,		/* src->dst: index + page hash + page */
	PCM_T_MAX,
};

enum pcm_chan_kind { PCM_CH_MAIN = 1, PCM_CH_BULK = 2 };
enum pcm_dir { PCM_DIR_S2D = 1, PCM_DIR_D2S = 2 };

struct pcm_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t flags;		/* must be 0 */
	uint64_t session;
	uint32_t epoch;
	uint32_t len;		/* payload bytes */
	uint64_t seq;		/* per channel and direction, from 0 */
	uint64_t mac;		/* SipHash-2-4(key, hdr with mac=0 | payload) */
} __attribute__((packed));

struct pcm_hello {
	uint32_t version;
	uint32_t channel;
	uint64_t npages;
	uint32_t page_size;
	uint32_t flags;
	uint8_t nonce[PCM_NONCE_LEN];	/* source's, the same on both channels */
} __attribute__((packed));

struct pcm_hello_ack {
	uint32_t phase;
	uint32_t pad;
	uint64_t received;
	uint8_t nonce[PCM_NONCE_LEN];	/* destination's, fresh per link */
} __attribute__((packed));

struct pcm_bitmap_hdr {		/* RBITMAP and DISCARD */
	uint64_t first;		/* multiple of 64 */
	uint32_t nbits;		/* 1..PCM_BITMAP_CHUNK_BITS */
	uint32_t pad;
} __attribute__((packed));	/* followed by (nbits + 7) / 8 bytes */

struct pcm_complete_ack {
	uint32_t ok;
	uint32_t pad;
	uint64_t digest;
} __attribute__((packed));

/* protocol errors, reported as negative values */
enum pcm_err {
	PCM_E_IO = 1,		/* EOF, reset, timeout */
	PCM_E_MAGIC,
	PCM_E_TYPE,
	PCM_E_LEN,
	PCM_E_SESSION,
	PCM_E_EPOCH,
	PCM_E_SEQ,
	PCM_E_MAC,
	PCM_E_RANGE,		/* index or bitmap outside the region */
	PCM_E_STATE,		/* frame not allowed now */
	PCM_E_SUM,		/* page checksum mismatch */
	PCM_E_NOSUM,		/* page without the required checksum */
	PCM_E_TIMEOUT,		/* silent channel / no answer before a deadline */
	PCM_E_MAX,
};

const char *pcm_err_name(int err);
/* a lost or silent link, not a rejected frame */
static inline bool pcm_err_is_link(int err)
{
	return err == -PCM_E_IO || err == -PCM_E_TIMEOUT;
}

/*
 * One connection. tx is serialised by tx_lock; rx has a single reader.
 * Never copied (it holds a mutex and owns its buffers): set up in place
 * with pcm_chan_init(), passed by pointer.
 */
struct pcm_chan {
	int fd;
	int kind;
	uint64_t session;
	uint32_t epoch;
	uint64_t tx_seq, rx_seq;
	bool has_key;
	bool is_src;		/* our side: source (tx s->d) or destination */
	bool await_nonce;	/* source main: HELLO_ACK brings the link keys */
	const char *secret;	/* owned by the caller, outlives the channel */
	uint8_t nonce_s[PCM_NONCE_LEN];
	uint64_t tx_key[2], rx_key[2];
	int timeout_ms;		/* rx silence / tx stall limit */
	int rcvtimeo_ms;	/* SO_RCVTIMEO currently set */
	pthread_mutex_t tx_lock;
	unsigned char *txbuf;
	size_t txlen, txcap, tx_flush_at;
	unsigned char *rxbuf;
	size_t rxpos, rxlen, rxcap;
	uint64_t bytes_tx, bytes_rx;
	uint64_t last_tx_ns;
};

struct pcm_frame {
	struct pcm_hdr h;	/* host order */
	unsigned char *p;	/* payload (points into a caller buffer) */
};

/*
 * @key: the shared secret or NULL. Until pcm_chan_set_link() the tags use
 * the HELLO key (only HELLO frames are valid under it).
 */
int pcm_chan_init(struct pcm_chan *c, int fd, int kind, uint64_t session,
		  uint32_t epoch, const char *key, int timeout_ms, bool is_src);
/* switch to the link keys of (@ns, @nd, session, epoch, kind, direction) */
void pcm_chan_set_link(struct pcm_chan *c, const uint8_t *ns,
		       const uint8_t *nd);
void pcm_chan_destroy(struct pcm_chan *c);
/* Append a frame; flush when @flush or the buffer is full. 0 or -errno. */
int pcm_send(struct pcm_chan *c, int type, const void *p1, size_t l1,
	     const void *p2, size_t l2, bool flush);
int pcm_flush(struct pcm_chan *c);
/*
 * A PING unless the channel is busy (its sender holds it, or has frames
 * queued, or the socket buffer is full): never blocks the caller on a
 * congested channel. 0 or -errno.
 */
int pcm_ping_nowait(struct pcm_chan *c);
/*
 * Read and validate one frame into @buf (PCM_MAX_PAYLOAD bytes).
 * @timeout_ms < 0: the channel's timeout. Returns 0 or -PCM_E_*.
 */
int pcm_recv(struct pcm_chan *c, struct pcm_frame *f, unsigned char *buf,
	     int timeout_ms);
/*
 * Validate a HELLO frame (PCM_HDR_SIZE + sizeof(struct pcm_hello) bytes
 * at @b) of a fresh connection: header, @session when non-zero, seq 0,
 * the tag under the HELLO key of @secret, version, page size, channel.
 * 0 or -PCM_E_*; @h (host order) and @hi (wire order) filled.
 */
int pcm_hello_parse(const unsigned char *b, const char *secret,
		    uint64_t session, struct pcm_hdr *h, struct pcm_hello *hi);
/* exact payload size for fixed types, or 0 for variable ones */
size_t pcm_type_len(int type);
/* validate a bitmap chunk against @npages; 0 or -PCM_E_RANGE/-PCM_E_LEN */
int pcm_bitmap_check(const struct pcm_frame *f, uint64_t npages);
/*
 * The bitmap chunk codec, the only one (proto.c). pcm_send_bitmap() sends
 * bits [0, @npages) of @bm as chunks of @type (PCM_T_RBITMAP or
 * PCM_T_DISCARD) of PCM_BITMAP_CHUNK_BITS bits (the last one shorter),
 * leaving out chunks without a set bit when @skip_empty; nothing is
 * flushed. 0 or -errno.
 */
int pcm_send_bitmap(struct pcm_chan *c, int type, const uint64_t *bm,
		    uint64_t npages, bool skip_empty);
/*
 * pcm_bitmap_decode() checks a received chunk against @npages
 * (pcm_bitmap_check()) and copies its bits into @bm (@npages bits): bits
 * [*@first, *@first + *@nbits) become the chunk's, no other bit changes.
 * 0 or -PCM_E_*; @bm is untouched on error.
 */
int pcm_bitmap_decode(const struct pcm_frame *f, uint64_t npages,
		      uint64_t *bm, uint64_t *first, uint64_t *nbits);

/* raw encoder used by the tests to craft frames (no state change) */
size_t pcm_encode(unsigned char *out, const struct pcm_hdr *h,
		  const void *payload, const uint64_t key[2], bool has_key);

/* SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104), HKDF-SHA256 (RFC 5869) */
void pcm_sha256(const void *a, size_t alen, const void *b, size_t blen,
		uint8_t out[32]);
void pcm_hmac_sha256(const void *key, size_t klen, const void *a,
		     size_t alen, const void *b, size_t blen,
		     uint8_t out[32]);
void pcm_hkdf(const void *salt, size_t slen, const void *ikm, size_t ilen,
	      const void *info, size_t infolen, uint8_t *out, size_t outlen);
/* the key HELLO frames are tagged with (knowing the secret, nothing more) */
void pcm_key_hello(const char *secret, uint64_t key[2]);
/* the tag key of one channel and direction of one link */
void pcm_key_link(const char *secret, const uint8_t *ns, const uint8_t *nd,
		  uint64_t session, uint32_t epoch, int kind, int dir,
		  uint64_t key[2]);
/*
 * A key file's secret must hold >= 128 bits by a per-byte entropy
 * estimate (and >= 16 distinct bytes); NULL or why it is refused.
 */
const char *pcm_secret_weak(const unsigned char *s, size_t n);

uint64_t pcm_siphash(const uint64_t key[2], const void *a, size_t alen,
		     const void *b, size_t blen);
/* fast 64-bit hash of one page, and the region digest over page hashes */
uint64_t pcm_page_hash(const void *page);
uint64_t pcm_digest(const uint64_t *page_hashes, uint64_t npages);
/* pcm_digest() of the pages at @base as they are now; 0: out of memory */
uint64_t pcm_region_digest(const void *base, uint64_t npages);

/* addresses: "tcp:HOST:PORT", "HOST:PORT", "unix:PATH" or "/path" */
int pcm_listen(const char *addr, char *err, size_t errlen);
int pcm_connect(const char *addr, int timeout_ms, char *err, size_t errlen);
/* accept with a timeout; -1 with errno ETIMEDOUT */
int pcm_accept(int lfd, int timeout_ms);
void pcm_sock_tune(int fd, int timeout_ms, bool bulk);

/* bitmaps of 64-bit words, atomic ops */
static inline bool pcm_test_bit(const uint64_t *bm, uint64_t i)
{
	return __atomic_load_n(&bm[i / 64], __ATOMIC_ACQUIRE) &
	       (1ull << (i % 64));
}

static inline void pcm_set_bit(uint64_t *bm, uint64_t i)
{
	__atomic_fetch_or(&bm[i / 64], 1ull << (i % 64), __ATOMIC_ACQ_REL);
}

static inline void pcm_clear_bit(uint64_t *bm, uint64_t i)
{
	__atomic_fetch_and(&bm[i / 64], ~(1ull << (i % 64)),
			   __ATOMIC_ACQ_REL);
}

static inline bool pcm_test_and_set(uint64_t *bm, uint64_t i)
{
	return __atomic_fetch_or(&bm[i / 64], 1ull << (i % 64),
				 __ATOMIC_ACQ_REL) & (1ull << (i % 64));
}

static inline bool pcm_test_and_clear(uint64_t *bm, uint64_t i)
{
	return __atomic_fetch_and(&bm[i / 64], ~(1ull << (i % 64)),
				  __ATOMIC_ACQ_REL) & (1ull << (i % 64));
}

uint64_t pcm_bitmap_weight(const uint64_t *bm, uint64_t nbits);

/* 0 on success */
int getrandom_u64(uint64_t *v);
int pcm_random(void *p, size_t n);

#endif /* PCMIG_PROTO_H */
