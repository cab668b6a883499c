// SPDX-License-Identifier: GPL-2.0
/* pcmig framing, validation, SipHash authentication, hashing, sockets. */
#include <endian.h>
#include <math.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kml.h"
#include "pcmig_proto.h"

#define RXCAP		(256u * 1024)
#define TXCAP_BULK	(256u * 1024)

static const char *const err_names[PCM_E_MAX] = {
	[0] = "ok",
	[PCM_E_IO] = "connection lost",
	[PCM_E_MAGIC] = "bad magic or flags",
	[PCM_E_TYPE] = "unknown frame type",
	[PCM_E_LEN] = "bad payload length",
	[PCM_E_SESSION] = "wrong session id",
	[PCM_E_EPOCH] = "stale or wrong epoch",
	[PCM_E_SEQ] = "replayed or out-of-order frame",
	[PCM_E_MAC] = "authentication tag mismatch",
	[PCM_E_RANGE] = "page index or bitmap outside the region",
	[PCM_E_STATE] = "frame not allowed in this state",
	[PCM_E_SUM] = "page checksum mismatch (page corrupted in transit)",
	[PCM_E_NOSUM] = "page without a checksum: this side requires them (the source runs with --no-page-checksums: drop that, or give it here too)",
	[PCM_E_TIMEOUT] = "silent for longer than the link timeout",
};

const char *pcm_err_name(int err)
{
	if (err < 0)
		err = -err;
	if (err >= PCM_E_MAX)
		return "unknown error";
	return err_names[err];
}

/* ---- SipHash-2-4 (Aumasson, Bernstein), over two concatenated buffers */

#define ROTL(x, b) ((uint64_t)(((x) << (b)) | ((x) >> (64 - (b)))))
#define SIPROUND do {						\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;			\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;			\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

static inline unsigned char cat_byte(const unsigned char *a, size_t alen,
				     const unsigned char *b, size_t i)
{
	return i < alen ? a[i] : b[i - alen];
}

uint64_t pcm_siphash(const uint64_t key[2], const void *a, size_t alen,
		     const void *b, size_t blen)
{
	const unsigned char *pa = a, *pb = b;
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
	uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
	uint64_t v3 = 0x7465646279746573ULL ^ key[1];
	size_t len = alen + blen, i, j;
	uint64_t m;

	for (i = 0; i + 8 <= len; i += 8) {
		if (i + 8 <= alen) {
			memcpy(&m, pa + i, 8);
		} else if (i >= alen) {
			memcpy(&m, pb + i - alen, 8);
		} else {
			m = 0;
			for (j = 0; j < 8; j++)
				m |= (uint64_t)cat_byte(pa, alen, pb, i + j)
				     << (8 * j);
		}
		m = le64toh(m);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	m = (uint64_t)len << 56;
	for (j = 0; i + j < len; j++)
		m |= (uint64_t)cat_byte(pa, alen, pb, i + j) << (8 * j);
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- SHA-256, HMAC-SHA256, HKDF-SHA256 (RFC 5869) ---- */

static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

struct sha256 {
	uint32_t h[8];
	unsigned char blk[64];
	size_t n;		/* bytes in blk */
	uint64_t total;
};

#define ROR32(x, b) (((x) >> (b)) | ((x) << (32 - (b))))

static void sha_block(struct sha256 *c, const unsigned char *p)
{
	uint32_t w[64], a, b, d, e, f, g, h, cc, t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (; i < 64; i++)
		w[i] = w[i - 16] + w[i - 7] +
		       (ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^
			(w[i - 15] >> 3)) +
		       (ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^
			(w[i - 2] >> 10));
	a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3];
	e = c->h[4]; f = c->h[5]; g = c->h[6]; h = c->h[7];
	for (i = 0; i < 64; i++) {
		t1 = h + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) +
		     ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
		t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) +
		     ((a & b) ^ (a & cc) ^ (b & cc));
		h = g; g = f; f = e; e = d + t1;
		d = cc; cc = b; b = a; a = t1 + t2;
	}
	c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
	c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void sha_init(struct sha256 *c)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(c->h, iv, sizeof(iv));
	c->n = 0;
	c->total = 0;
}

static void sha_update(struct sha256 *c, const void *data, size_t len)
{
	const unsigned char *p = data;

	c->total += len;
	while (len) {
		size_t k = 64 - c->n < len ? 64 - c->n : len;

		memcpy(c->blk + c->n, p, k);
		c->n += k;
		p += k;
		len -= k;
		if (c->n == 64) {
			sha_block(c, c->blk);
			c->n = 0;
		}
	}
}

static void sha_final(struct sha256 *c, uint8_t out[32])
{
	uint64_t bits = c->total * 8;
	unsigned char pad = 0x80, z = 0, lenb[8];
	int i;

	sha_update(c, &pad, 1);
	while (c->n != 56)
		sha_update(c, &z, 1);
	for (i = 0; i < 8; i++)
		lenb[i] = bits >> (56 - 8 * i);
	sha_update(c, lenb, 8);
	for (i = 0; i < 8; i++) {
		out[4 * i] = c->h[i] >> 24;
		out[4 * i + 1] = c->h[i] >> 16;
		out[4 * i + 2] = c->h[i] >> 8;
		out[4 * i + 3] = c->h[i];
	}
}

void pcm_sha256(const void *a, size_t alen, const void *b, size_t blen,
		uint8_t out[32])
{
	struct sha256 c;

	sha_init(&c);
	sha_update(&c, a, alen);
	sha_update(&c, b, blen);
	sha_final(&c, out);
}

void pcm_hmac_sha256(const void *key, size_t klen, const void *a,
		     size_t alen, const void *b, size_t blen, uint8_t out[32])
{
	unsigned char k[64] = { 0 }, pad[64];
	uint8_t inner[32];
	struct sha256 c;
	int i;

	if (klen > 64)
		pcm_sha256(key, klen, NULL, 0, k);
	else
		memcpy(k, key, klen);
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	sha_init(&c);
	sha_update(&c, pad, 64);
	sha_update(&c, a, alen);
	sha_update(&c, b, blen);
	sha_final(&c, inner);
	for (i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	sha_init(&c);
	sha_update(&c, pad, 64);
	sha_update(&c, inner, 32);
	sha_final(&c, out);
	memset(k, 0, sizeof(k));
	memset(pad, 0, sizeof(pad));
}

void pcm_hkdf(const void *salt, size_t slen, const void *ikm, size_t ilen,
	      const void *info, size_t infolen, uint8_t *out, size_t outlen)
{
	unsigned char prk[32], t[32 + 256 + 1];
	size_t tl = 0, done = 0;
	unsigned char i = 1;
	static const unsigned char zero[32];

	/* Extract: PRK = HMAC(salt, IKM); Expand: T(i) = HMAC(PRK, T(i-1)|info|i) */
	if (!salt || !slen)
		salt = zero, slen = 32;
	pcm_hmac_sha256(salt, slen, ikm, ilen, NULL, 0, prk);
	if (infolen > 256)
		infolen = 256;
	while (done < outlen && outlen <= 255 * 32) {
		uint8_t blk[32];
		size_t k;

		memcpy(t + tl, info, infolen);
		t[tl + infolen] = i++;
		pcm_hmac_sha256(prk, 32, t, tl + infolen + 1, NULL, 0, blk);
		memcpy(t, blk, 32);
		tl = 32;
		k = outlen - done < 32 ? outlen - done : 32;
		memcpy(out + done, blk, k);
		done += k;
	}
	memset(prk, 0, sizeof(prk));
	memset(t, 0, sizeof(t));
}

static void key_from(const uint8_t okm[16], uint64_t key[2])
{
	memcpy(&key[0], okm, 8);
	memcpy(&key[1], okm + 8, 8);
	key[0] = le64toh(key[0]);
	key[1] = le64toh(key[1]);
}

void pcm_key_hello(const char *secret, uint64_t key[2])
{
	static const char salt[] = "pcmig-v2 hello salt";
	static const char info[] = "pcmig-v2 hello s->d";
	uint8_t okm[16];

	pcm_hkdf(salt, sizeof(salt) - 1, secret, strlen(secret), info,
		 sizeof(info) - 1, okm, sizeof(okm));
	key_from(okm, key);
}

void pcm_key_link(const char *secret, const uint8_t *ns, const uint8_t *nd,
		  uint64_t session, uint32_t epoch, int kind, int dir,
		  uint64_t key[2])
{
	/* salt: both nonces; info: label, session, epoch, channel, direction */
	unsigned char salt[2 * PCM_NONCE_LEN], info[32];
	uint64_t sl = htole64(session);
	uint32_t el = htole32(epoch);
	uint8_t okm[16];

	memcpy(salt, ns, PCM_NONCE_LEN);
	memcpy(salt + PCM_NONCE_LEN, nd, PCM_NONCE_LEN);
	memcpy(info, "pcmig-v2 link", 13);
	memcpy(info + 13, &sl, 8);
	memcpy(info + 21, &el, 4);
	info[25] = kind;
	info[26] = dir;
	pcm_hkdf(salt, sizeof(salt), secret, strlen(secret), info, 27, okm,
		 sizeof(okm));
	key_from(okm, key);
}

const char *pcm_secret_weak(const unsigned char *s, size_t n)
{
	unsigned int cnt[256] = { 0 }, distinct = 0, i;
	double bits = 0;

	if (n < 16)
		return "shorter than 16 bytes";
	for (i = 0; i < n; i++)
		if (!cnt[s[i]]++)
			distinct++;
	for (i = 0; i < 256; i++)
		if (cnt[i])
			bits -= cnt[i] * log2((double)cnt[i] / n);
	if (distinct < 16)
		return "fewer than 16 distinct byte values (low entropy)";
	if (bits < 128)
		return "estimated entropy below 128 bits (a passphrase?)";
	return NULL;
}

/* ---- page hash (4 lanes, xxh64-like rounds) and region digest ---- */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL

static inline uint64_t hround(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	acc = ROTL(acc, 31);
	return acc * P1;
}

uint64_t pcm_page_hash(const void *page)
{
	const uint64_t *w = page;
	uint64_t a = P1 + P2, b = P2, c = 0, d = -P1, h;
	unsigned int i;

	for (i = 0; i < PCM_PAGE_SIZE / 8; i += 4) {
		a = hround(a, w[i]);
		b = hround(b, w[i + 1]);
		c = hround(c, w[i + 2]);
		d = hround(d, w[i + 3]);
	}
	h = ROTL(a, 1) + ROTL(b, 7) + ROTL(c, 12) + ROTL(d, 18);
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	return h ^ (h >> 32);
}

uint64_t pcm_digest(const uint64_t *ph, uint64_t npages)
{
	uint64_t h = P3 ^ npages, i;

	for (i = 0; i < npages; i++) {
		h = hround(h, ph[i] ^ i);
		h = ROTL(h, 27) * P1 + P3;
	}
	return h ^ (h >> 31);
}

uint64_t pcm_region_digest(const void *base, uint64_t npages)
{
	uint64_t *ph = malloc(npages * 8), d, i;

	if (!ph)
		return 0;
	for (i = 0; i < npages; i++)
		ph[i] = pcm_page_hash((const unsigned char *)base +
				      i * PCM_PAGE_SIZE);
	d = pcm_digest(ph, npages);
	free(ph);
	return d;
}

uint64_t pcm_bitmap_weight(const uint64_t *bm, uint64_t nbits)
{
	uint64_t n = 0, i;

	for (i = 0; i < nbits / 64; i++)
		n += __builtin_popcountll(__atomic_load_n(&bm[i],
							  __ATOMIC_RELAXED));
	if (nbits % 64)
		n += __builtin_popcountll(bm[i] &
					  ((1ull << (nbits % 64)) - 1));
	return n;
}

/* ---- frames ---- */

size_t pcm_type_len(int type)
{
	switch (type) {
	case PCM_T_HELLO:
		return sizeof(struct pcm_hello);
	case PCM_T_HELLO_ACK:
		return sizeof(struct pcm_hello_ack);
	case PCM_T_RBITMAP_END:
	case PCM_T_ZERO:
	case PCM_T_REQ:
	case PCM_T_COMPLETE:
		return 8;
	case PCM_T_PAGE:
		return 8 + PCM_PAGE_SIZE;
	case PCM_T_PAGE_SUM:
		return 16 + PCM_PAGE_SIZE;
	case PCM_T_COMPLETE_ACK:
		return sizeof(struct pcm_complete_ack);
	case PCM_T_RESUME:
	case PCM_T_RESUME_ACK:
	case PCM_T_RUN:
	case PCM_T_PING:
	case PCM_T_BYE:
		return 0;
	default:
		return 0;
	}
}

static bool type_is_bitmap(int type)
{
	return type == PCM_T_RBITMAP || type == PCM_T_DISCARD;
}

static void hdr_to_le(struct pcm_hdr *o, const struct pcm_hdr *h)
{
	o->magic = htole32(h->magic);
	o->type = htole16(h->type);
	o->flags = htole16(h->flags);
	o->session = htole64(h->session);
	o->epoch = htole32(h->epoch);
	o->len = htole32(h->len);
	o->seq = htole64(h->seq);
	o->mac = htole64(h->mac);
}

static void hdr_from_le(struct pcm_hdr *h, const struct pcm_hdr *i)
{
	h->magic = le32toh(i->magic);
	h->type = le16toh(i->type);
	h->flags = le16toh(i->flags);
	h->session = le64toh(i->session);
	h->epoch = le32toh(i->epoch);
	h->len = le32toh(i->len);
	h->seq = le64toh(i->seq);
	h->mac = le64toh(i->mac);
}

size_t pcm_encode(unsigned char *out, const struct pcm_hdr *h,
		  const void *payload, const uint64_t key[2], bool has_key)
{
	struct pcm_hdr le;
	struct pcm_hdr tmp = *h;

	tmp.mac = 0;
	hdr_to_le(&le, &tmp);
	if (has_key)
		le.mac = htole64(pcm_siphash(key, &le, sizeof(le), payload,
					     h->len));
	else
		le.mac = htole64(h->mac);
	memcpy(out, &le, sizeof(le));
	if (h->len)
		memcpy(out + sizeof(le), payload, h->len);
	return sizeof(le) + h->len;
}

int pcm_chan_init(struct pcm_chan *c, int fd, int kind, uint64_t session,
		  uint32_t epoch, const char *key, int timeout_ms, bool is_src)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->kind = kind;
	c->session = session;
	c->epoch = epoch;
	c->timeout_ms = timeout_ms;
	c->is_src = is_src;
	if (key) {
		c->has_key = true;
		c->secret = key;
		pcm_key_hello(key, c->tx_key);
		memcpy(c->rx_key, c->tx_key, sizeof(c->rx_key));
	}
	c->txcap = kind == PCM_CH_BULK ? TXCAP_BULK :
		   PCM_HDR_SIZE + PCM_MAX_PAYLOAD;
	c->tx_flush_at = kind == PCM_CH_BULK ? 64 * 1024 : 0;
	c->txbuf = malloc(c->txcap);
	c->rxcap = RXCAP;
	c->rxbuf = malloc(c->rxcap);
	if (!c->txbuf || !c->rxbuf) {
		free(c->txbuf);
		free(c->rxbuf);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->tx_lock, NULL);
	return 0;
}

void pcm_chan_set_link(struct pcm_chan *c, const uint8_t *ns,
		       const uint8_t *nd)
{
	int tx = c->is_src ? PCM_DIR_S2D : PCM_DIR_D2S;
	int rx = c->is_src ? PCM_DIR_D2S : PCM_DIR_S2D;

	c->await_nonce = false;
	if (!c->has_key)
		return;
	pcm_key_link(c->secret, ns, nd, c->session, c->epoch, c->kind, tx,
		     c->tx_key);
	pcm_key_link(c->secret, ns, nd, c->session, c->epoch, c->kind, rx,
		     c->rx_key);
}

void pcm_chan_destroy(struct pcm_chan *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->txbuf);
	free(c->rxbuf);
	c->txbuf = NULL;
	c->rxbuf = NULL;
	pthread_mutex_destroy(&c->tx_lock);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= r;
	}
	return 0;
}

static int flush_locked(struct pcm_chan *c)
{
	int ret;

	if (!c->txlen)
		return 0;
	ret = write_all(c->fd, c->txbuf, c->txlen);
	c->bytes_tx += c->txlen;
	c->txlen = 0;
	c->last_tx_ns = kml_now_ns();
	return ret;
}

int pcm_flush(struct pcm_chan *c)
{
	int ret;

	pthread_mutex_lock(&c->tx_lock);
	ret = flush_locked(c);
	pthread_mutex_unlock(&c->tx_lock);
	return ret;
}

int pcm_send(struct pcm_chan *c, int type, const void *p1, size_t l1,
	     const void *p2, size_t l2, bool flush)
{
	struct pcm_hdr h = {
		.magic = PCM_MAGIC, .type = type, .session = c->session,
		.epoch = c->epoch, .len = l1 + l2,
	};
	struct pcm_hdr le;
	unsigned char *out;
	int ret = 0;

	if (l1 + l2 > PCM_MAX_PAYLOAD)
		return -EMSGSIZE;
	pthread_mutex_lock(&c->tx_lock);
	if (c->txlen + PCM_HDR_SIZE + l1 + l2 > c->txcap) {
		ret = flush_locked(c);
		if (ret)
			goto out;
	}
	h.seq = c->tx_seq++;
	out = c->txbuf + c->txlen;
	if (l1)
		memcpy(out + PCM_HDR_SIZE, p1, l1);
	if (l2)
		memcpy(out + PCM_HDR_SIZE + l1, p2, l2);
	hdr_to_le(&le, &h);
	if (c->has_key)
		le.mac = htole64(pcm_siphash(c->tx_key, &le, sizeof(le),
					     out + PCM_HDR_SIZE, l1 + l2));
	memcpy(out, &le, sizeof(le));
	c->txlen += PCM_HDR_SIZE + l1 + l2;
	if (flush || c->txlen >= c->tx_flush_at)
		ret = flush_locked(c);
out:
	pthread_mutex_unlock(&c->tx_lock);
	return ret;
}

int pcm_ping_nowait(struct pcm_chan *c)
{
	unsigned char out[PCM_HDR_SIZE];
	struct pcm_hdr h = {
		.magic = PCM_MAGIC, .type = PCM_T_PING, .session = c->session,
		.epoch = c->epoch,
	};
	struct pcm_hdr le;
	ssize_t r;
	int ret = 0;

	/* the channel's sender is busy: not idle, no heartbeat needed */
	if (pthread_mutex_trylock(&c->tx_lock))
		return 0;
	if (c->txlen)
		goto out;
	h.seq = c->tx_seq;
	hdr_to_le(&le, &h);
	if (c->has_key)
		le.mac = htole64(pcm_siphash(c->tx_key, &le, sizeof(le), NULL,
					     0));
	memcpy(out, &le, sizeof(le));
	r = send(c->fd, out, sizeof(out), MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r < 0) {
		/* a full socket buffer: data in flight, TCP_USER_TIMEOUT */
		if (errno != EAGAIN && errno != EINTR)
			ret = -errno;
		goto out;
	}
	c->tx_seq++;
	if (r < (ssize_t)sizeof(out))
		ret = write_all(c->fd, out + r, sizeof(out) - r);
	c->bytes_tx += sizeof(out);
	c->last_tx_ns = kml_now_ns();
out:
	pthread_mutex_unlock(&c->tx_lock);
	return ret;
}

/* read exactly @n bytes before @deadline (ns); 0, -PCM_E_IO or _TIMEOUT */
static int read_exact(struct pcm_chan *c, unsigned char *dst, size_t n,
		      uint64_t deadline)
{
	while (n) {
		size_t avail = c->rxlen - c->rxpos;
		uint64_t now;
		ssize_t r;
		int ms;

		if (avail) {
			if (avail > n)
				avail = n;
			memcpy(dst, c->rxbuf + c->rxpos, avail);
			c->rxpos += avail;
			dst += avail;
			n -= avail;
			continue;
		}
		c->rxpos = 0;
		c->rxlen = 0;
		/*
		 * Blocking recv with SO_RCVTIMEO as the tick: one syscall per
		 * read on the latency path, no poll round trip.
		 */
		now = kml_now_ns();
		if (now >= deadline)
			return -PCM_E_TIMEOUT;
		ms = (deadline - now) / 1000000 + 1;
		if (ms > 1000)
			ms = 1000;
		if (ms != c->rcvtimeo_ms) {
			struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

			setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
				   sizeof(tv));
			c->rcvtimeo_ms = ms;
		}
		r = recv(c->fd, c->rxbuf, c->rxcap, 0);
		if (r == 0)
			return -PCM_E_IO;
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				return -PCM_E_IO;
			continue;
		}
		c->rxlen = r;
		c->bytes_rx += r;
	}
	return 0;
}

int pcm_recv(struct pcm_chan *c, struct pcm_frame *f, unsigned char *buf,
	     int timeout_ms)
{
	struct pcm_hdr le, *h = &f->h;
	uint64_t deadline, mac;
	size_t want;
	int ret;

	if (timeout_ms < 0)
		timeout_ms = c->timeout_ms;
	deadline = kml_now_ns() + (uint64_t)timeout_ms * 1000000;
	ret = read_exact(c, (unsigned char *)&le, sizeof(le), deadline);
	if (ret)
		return ret;
	hdr_from_le(h, &le);
	if (h->magic != PCM_MAGIC || h->flags)
		return -PCM_E_MAGIC;
	if (h->type < PCM_T_HELLO || h->type >= PCM_T_MAX)
		return -PCM_E_TYPE;
	want = pcm_type_len(h->type);
	if (h->len > PCM_MAX_PAYLOAD)
		return -PCM_E_LEN;
	if (type_is_bitmap(h->type)) {
		if (h->len < sizeof(struct pcm_bitmap_hdr) + 1)
			return -PCM_E_LEN;
	} else if (h->len != want) {
		return -PCM_E_LEN;
	}
	if (c->session && h->session != c->session)
		return -PCM_E_SESSION;
	if (c->epoch && h->epoch != c->epoch)
		return -PCM_E_EPOCH;
	if (h->seq != c->rx_seq)
		return -PCM_E_SEQ;
	/* the payload is read even for a short deadline: a frame is atomic */
	ret = read_exact(c, buf, h->len, deadline + 1000000000ULL);
	if (ret)
		return ret;
	if (c->await_nonce) {
		/* source main: the link keys come with the destination's nonce */
		if (h->type != PCM_T_HELLO_ACK)
			return -PCM_E_STATE;
		pcm_chan_set_link(c, c->nonce_s, buf +
				  offsetof(struct pcm_hello_ack, nonce));
	}
	if (c->has_key) {
		le.mac = 0;
		mac = pcm_siphash(c->rx_key, &le, sizeof(le), buf, h->len);
		if (mac != h->mac)
			return -PCM_E_MAC;
	}
	c->rx_seq++;
	f->p = buf;
	return 0;
}

int pcm_hello_parse(const unsigned char *b, const char *secret,
		    uint64_t session, struct pcm_hdr *h, struct pcm_hello *hi)
{
	struct pcm_hdr le;
	uint64_t key[2];
	int kind;

	memcpy(&le, b, sizeof(le));
	hdr_from_le(h, &le);
	if (h->magic != PCM_MAGIC || h->flags)
		return -PCM_E_MAGIC;
	if (h->type != PCM_T_HELLO)
		return h->type < PCM_T_MAX ? -PCM_E_STATE : -PCM_E_TYPE;
	if (h->len != sizeof(*hi))
		return -PCM_E_LEN;
	if (!h->session || (session && h->session != session))
		return -PCM_E_SESSION;
	if (h->seq)
		return -PCM_E_SEQ;
	if (secret) {
		pcm_key_hello(secret, key);
		le.mac = 0;
		if (pcm_siphash(key, &le, sizeof(le), b + PCM_HDR_SIZE,
				sizeof(*hi)) != h->mac)
			return -PCM_E_MAC;
	}
	memcpy(hi, b + PCM_HDR_SIZE, sizeof(*hi));
	kind = le32toh(hi->channel);
	if (le32toh(hi->version) != PCM_VERSION ||
	    le32toh(hi->page_size) != PCM_PAGE_SIZE || hi->flags ||
	    (kind != PCM_CH_MAIN && kind != PCM_CH_BULK))
		return -PCM_E_STATE;
	return 0;
}

int pcm_bitmap_check(const struct pcm_frame *f, uint64_t npages)
{
	struct pcm_bitmap_hdr bh;

	memcpy(&bh, f->p, sizeof(bh));
	bh.first = le64toh(bh.first);
	bh.nbits = le32toh(bh.nbits);
	if (bh.nbits == 0 || bh.nbits > PCM_BITMAP_CHUNK_BITS || bh.pad)
		return -PCM_E_LEN;
	if (f->h.len != sizeof(bh) + (bh.nbits + 7) / 8)
		return -PCM_E_LEN;
	if (bh.first % 64 || bh.first >= npages ||
	    bh.nbits > npages - bh.first)
		return -PCM_E_RANGE;
	return 0;
}

/*
 * The bitmap chunk codec (RBITMAP, DISCARD), both directions in one place.
 * A chunk is struct pcm_bitmap_hdr + (nbits + 7) / 8 bytes: the bits of
 * pages first .. first + nbits - 1, little-endian 64-bit words cut to
 * whole bytes, no bit set past nbits.
 */
int pcm_send_bitmap(struct pcm_chan *c, int type, const uint64_t *bm,
		    uint64_t npages, bool skip_empty)
{
	/* one chunk's words: PCM_BITMAP_CHUNK_BITS is a multiple of 64 */
	unsigned char *bytes = malloc(PCM_BITMAP_CHUNK_BITS / 8);
	uint64_t first;
	int ret = 0;

	if (!bytes)
		return -ENOMEM;
	for (first = 0; first < npages && !ret;
	     first += PCM_BITMAP_CHUNK_BITS) {
		uint64_t nbits = npages - first, k, any = 0;
		struct pcm_bitmap_hdr bh = { 0 };

		if (nbits > PCM_BITMAP_CHUNK_BITS)
			nbits = PCM_BITMAP_CHUNK_BITS;
		for (k = 0; k < (nbits + 63) / 64; k++) {
			uint64_t v = __atomic_load_n(&bm[first / 64 + k],
						     __ATOMIC_ACQUIRE);

			if (k == nbits / 64)	/* the partial last word */
				v &= (1ull << (nbits % 64)) - 1;
			any |= v;
			v = htole64(v);
			memcpy(bytes + k * 8, &v, 8);
		}
		if (skip_empty && !any)
			continue;
		bh.first = htole64(first);
		bh.nbits = htole32(nbits);
		ret = pcm_send(c, type, &bh, sizeof(bh), bytes,
			       (nbits + 7) / 8, false);
	}
	free(bytes);
	return ret;
}

int pcm_bitmap_decode(const struct pcm_frame *f, uint64_t npages,
		      uint64_t *bm, uint64_t *first, uint64_t *nbits)
{
	const unsigned char *bytes = f->p + sizeof(struct pcm_bitmap_hdr);
	struct pcm_bitmap_hdr bh;
	size_t len;
	uint64_t k;
	int ret = pcm_bitmap_check(f, npages);

	if (ret)
		return ret;
	memcpy(&bh, f->p, sizeof(bh));
	*first = le64toh(bh.first);
	*nbits = le32toh(bh.nbits);
	len = (*nbits + 7) / 8;
	for (k = 0; k < (*nbits + 63) / 64; k++) {
		uint64_t v = 0, mask = ~0ull, *w = &bm[*first / 64 + k];

		memcpy(&v, bytes + k * 8, len - k * 8 < 8 ? len - k * 8 : 8);
		v = le64toh(v);
		if (k == *nbits / 64)	/* the partial last word */
			mask = (1ull << (*nbits % 64)) - 1;
		*w = (*w & ~mask) | (v & mask);
	}
	return 0;
}

/* ---- sockets ---- */

static int parse_addr(const char *addr, struct sockaddr_storage *ss,
		      socklen_t *sl, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char host[256];
	const char *p, *colon;
	int r;

	memset(ss, 0, sizeof(*ss));
	if (!strncmp(addr, "unix:", 5) || addr[0] == '/' || addr[0] == '.') {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		p = strncmp(addr, "unix:", 5) ? addr : addr + 5;
		if (!*p || strlen(p) >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "unix socket path '%s' is empty or longer than %zu bytes",
				 p, sizeof(un->sun_path) - 1);
			return -1;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, p);
		*sl = sizeof(*un);
		return 0;
	}
	p = strncmp(addr, "tcp:", 4) ? addr : addr + 4;
	colon = strrchr(p, ':');
	if (!colon || colon == p || !colon[1] ||
	    (size_t)(colon - p) >= sizeof(host)) {
		snprintf(err, errlen, "address '%s' is not tcp:HOST:PORT or unix:PATH",
			 addr);
		return -1;
	}
	memcpy(host, p, colon - p);
	host[colon - p] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "cannot resolve '%s': %s", addr,
			 gai_strerror(r));
		return -1;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int pcm_listen(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	if (parse_addr(addr, &ss, &sl, err, errlen))
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	else
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 128)) {
		snprintf(err, errlen, "cannot listen on '%s': %s", addr,
			 strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int pcm_connect(const char *addr, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t sl, el = sizeof(int);
	int fd, fl, e = 0;

	if (parse_addr(addr, &ss, &sl, err, errlen))
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS) {
		e = errno;
		goto fail;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, timeout_ms) <= 0) {
		e = ETIMEDOUT;
		goto fail;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
	if (e)
		goto fail;
	fcntl(fd, F_SETFL, fl);
	return fd;
fail:
	snprintf(err, errlen, "cannot connect to '%s': %s", addr,
		 strerror(e));
	close(fd);
	errno = e;
	return -1;
}

int pcm_accept(int lfd, int timeout_ms)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int r = poll(&pfd, 1, timeout_ms);

	if (r <= 0) {
		errno = r ? errno : ETIMEDOUT;
		return -1;
	}
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

void pcm_sock_tune(int fd, int timeout_ms, bool bulk)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	unsigned int uto = timeout_ms;
	int one = 1;

	/* a stalled send (peer gone, link down) fails instead of hanging */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto,
			   sizeof(uto));
	(void)bulk;
}

int getrandom_u64(uint64_t *v)
{
	return getrandom(v, sizeof(*v), 0) == sizeof(*v) ? 0 : -1;
}

int pcm_random(void *p, size_t n)
{
	return getrandom(p, n, 0) == (ssize_t)n ? 0 : -1;
}
