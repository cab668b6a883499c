// SPDX-License-Identifier: GPL-2.0
/*
 * pcmig_frames - a real pcmig destination (libpcmig, memfd region,
 * userfaultfd registered) is fed malformed, truncated, oversized, stale,
 * replayed, out-of-range and badly authenticated frames by a hand-written
 * source. Each must be rejected with the link paused and the region
 * untouched. A valid page on the same path (positive control) must change
 * the region, so a destination that ignored every frame would fail here.
 * Per-page checksums: a page whose checksum does not match is rejected; a
 * destination that requires checksums rejects a page sent without one.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest.h"
#include "kml.h"
#include "pcmig.h"

#define NPAGES	256
#define LEN	(NPAGES * PCM_PAGE_SIZE)
#define SESSION	0x5eed5eed12345678ULL

struct dest {
	int memfd, uffd;
	void *reg;		/* uffd-registered mapping (the "workload") */
	unsigned char *view;	/* plain mapping to inspect contents */
	struct pcm_dst *d;
	pthread_t thr;
	char addr[108];
	const char *key;
};

static bool dest_page_sums;	/* the next dest_start() requires them */

struct link {
	int m, b;
	uint64_t seq_m, seq_b;
	uint32_t epoch;
	bool keyed;
	uint8_t ns[PCM_NONCE_LEN], nd[PCM_NONCE_LEN];
	/* the link's tag keys: [channel kind - 1][direction - 1] */
	uint64_t k[2][2][2];
};

/* the key send_raw() tags with (the HELLO key of the current secret) */
static uint64_t key[2];
static unsigned char buf[PCM_HDR_SIZE + PCM_MAX_PAYLOAD + 64];

static void *dest_thread(void *arg)
{
	struct dest *t = arg;

	pcm_dst_run(t->d, t->addr);
	return NULL;
}

static int dest_start(struct dest *t, const char *secret, const char *tag)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct pcm_opts o;
	char err[200];
	int i;

	memset(t, 0, sizeof(*t));
	t->memfd = memfd_create("pcmig-frames", MFD_CLOEXEC);
	if (t->memfd < 0 || ftruncate(t->memfd, LEN))
		return -1;
	t->view = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
		       t->memfd, 0);
	t->reg = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
		      t->memfd, 0);
	if (t->view == MAP_FAILED || t->reg == MAP_FAILED)
		return -1;
	memset(t->view, 0xa5, LEN);
	t->uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (t->uffd < 0)
		return -2;
	reg.range.start = (uintptr_t)t->reg;
	reg.range.len = LEN;
	if (ioctl(t->uffd, UFFDIO_API, &api) ||
	    ioctl(t->uffd, UFFDIO_REGISTER, &reg))
		return -2;
	pcm_opts_default(&o);
	o.link_timeout_ms = 400;
	o.linger_ms = 0;
	o.key = secret;
	o.quiet = true;
	o.page_sums = dest_page_sums;
	t->d = pcm_dst_create(t->memfd, LEN, t->uffd, (uintptr_t)t->reg, &o,
			      NULL, err, sizeof(err));
	if (!t->d)
		return -1;
	snprintf(t->addr, sizeof(t->addr), "unix:/tmp/pcmig-frames-%d-%s.sock",
		 getpid(), tag);
	unlink(t->addr + 5);
	pthread_create(&t->thr, NULL, dest_thread, t);
	/* listening (bind, then listen: a little slack after the file) */
	for (i = 0; i < 200 && access(t->addr + 5, F_OK); i++)
		usleep(25000);
	usleep(50000);
	return 0;
}

static uint64_t region_digest(struct dest *t)
{
	uint64_t h[NPAGES];
	int i;

	for (i = 0; i < NPAGES; i++)
		h[i] = pcm_page_hash(t->view + i * PCM_PAGE_SIZE);
	return pcm_digest(h, NPAGES);
}

static int send_k(int fd, int type, uint64_t session, uint32_t epoch,
		  uint64_t seq, const void *p, uint32_t len,
		  const uint64_t *k)
{
	struct pcm_hdr h = {
		.magic = PCM_MAGIC, .type = type,
		.session = session, .epoch = epoch, .len = len, .seq = seq,
	};
	size_t n = pcm_encode(buf, &h, p, k, k);

	return send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int send_raw(int fd, int type, uint64_t session, uint32_t epoch,
		    uint64_t seq, const void *p, uint32_t len, bool has_key,
		    uint16_t flags, uint32_t magic)
{
	struct pcm_hdr h = {
		.magic = magic, .type = type, .flags = flags,
		.session = session, .epoch = epoch, .len = len, .seq = seq,
	};
	size_t n = pcm_encode(buf, &h, p, key, has_key);

	return send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* the key of @kind, source to destination, of an established link */
static const uint64_t *s2d(struct link *l, int kind)
{
	return l->keyed ? l->k[kind - 1][PCM_DIR_S2D - 1] : NULL;
}

static int send_ok(struct link *l, bool bulk, int type, const void *p,
		   uint32_t len, bool has_key)
{
	return send_k(bulk ? l->b : l->m, type, SESSION, l->epoch,
		      bulk ? l->seq_b++ : l->seq_m++, p, len,
		      has_key ? s2d(l, bulk ? PCM_CH_BULK : PCM_CH_MAIN) :
		      NULL);
}

static unsigned char rxp[PCM_MAX_PAYLOAD];

/* read frames on main until @type; 0 when seen */
static int expect(struct link *l, int type, struct pcm_chan *c)
{
	struct pcm_frame f;

	for (;;) {
		if (pcm_recv(c, &f, rxp, 1000))
			return -1;
		if (f.h.type == type)
			return 0;
	}
}

static struct pcm_chan rxc;

static void hello(struct pcm_hello *h, int ch)
{
	memset(h, 0, sizeof(*h));
	h->version = htole32(PCM_VERSION);
	h->channel = htole32(ch);
	h->npages = htole64(NPAGES);
	h->page_size = htole32(PCM_PAGE_SIZE);
}

static bool rxc_live;

static int link_up(struct dest *t, struct link *l, uint32_t epoch,
		   bool has_key, const char *secret)
{
	struct pcm_hello h;
	char err[200];
	int kind, dir;

	memset(l, 0, sizeof(*l));
	l->epoch = epoch;
	l->keyed = has_key;
	l->m = pcm_connect(t->addr, 1000, err, sizeof(err));
	l->b = pcm_connect(t->addr, 1000, err, sizeof(err));
	if (l->m < 0 || l->b < 0)
		return -1;
	pcm_random(l->ns, sizeof(l->ns));
	if (has_key)
		pcm_key_hello(secret, key);
	hello(&h, PCM_CH_MAIN);
	memcpy(h.nonce, l->ns, sizeof(h.nonce));
	send_raw(l->m, PCM_T_HELLO, SESSION, epoch, l->seq_m++, &h, sizeof(h),
		 has_key, 0, PCM_MAGIC);
	h.channel = htole32(PCM_CH_BULK);
	send_raw(l->b, PCM_T_HELLO, SESSION, epoch, l->seq_b++, &h, sizeof(h),
		 has_key, 0, PCM_MAGIC);
	if (rxc_live)
		pcm_chan_destroy(&rxc);
	pcm_chan_init(&rxc, dup(l->m), PCM_CH_MAIN, SESSION, epoch,
		      has_key ? secret : NULL, 1000, true);
	rxc_live = true;
	memcpy(rxc.nonce_s, l->ns, sizeof(l->ns));
	rxc.await_nonce = true;
	if (expect(l, PCM_T_HELLO_ACK, &rxc))
		return -1;
	memcpy(l->nd, rxp + offsetof(struct pcm_hello_ack, nonce),
	       sizeof(l->nd));
	if (has_key)
		for (kind = PCM_CH_MAIN; kind <= PCM_CH_BULK; kind++)
			for (dir = PCM_DIR_S2D; dir <= PCM_DIR_D2S; dir++)
				pcm_key_link(secret, l->ns, l->nd, SESSION,
					     epoch, kind, dir,
					     l->k[kind - 1][dir - 1]);
	send_ok(l, false, PCM_T_RESUME, NULL, 0, has_key);
	return expect(l, PCM_T_RESUME_ACK, &rxc);
}

/* idempotent: also after a failed link_up() */
static void link_down(struct link *l)
{
	if (l->m >= 0)
		close(l->m);
	if (l->b >= 0)
		close(l->b);
	l->m = -1;
	l->b = -1;
	if (rxc_live)
		pcm_chan_destroy(&rxc);
	rxc_live = false;
}

static int count_fds(void)
{
	char path[64];
	int n = 0, i;

	for (i = 0; i < 4096; i++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", i);
		if (!access(path, F_OK))
			n++;
	}
	return n;
}

/* wait until the dest shows @link and @rejected rejected frames */
static bool wait_state(struct dest *t, int link, uint64_t rejected)
{
	struct pcm_stats st;
	int i;

	for (i = 0; i < 300; i++) {
		pcm_dst_status(t->d, &st);
		if (st.link == link && st.rejected_frames >= rejected)
			return true;
		usleep(10000);
	}
	ksft_print_msg("link %s rejected %llu (want %s, %llu): %s\n",
		       pcm_link_name(st.link),
		       (unsigned long long)st.rejected_frames,
		       pcm_link_name(link), (unsigned long long)rejected,
		       st.last_error);
	return false;
}

/* wait up to 3 s for the first byte of page @idx to become @byte */
static bool wait_byte(struct dest *t, uint64_t idx, unsigned char byte)
{
	int i;

	for (i = 0; i < 300; i++) {
		if (__atomic_load_n(&t->view[idx * PCM_PAGE_SIZE],
				    __ATOMIC_ACQUIRE) == byte)
			return true;
		usleep(10000);
	}
	return false;
}

static uint64_t rejected(struct dest *t)
{
	struct pcm_stats st;

	pcm_dst_status(t->d, &st);
	return st.rejected_frames;
}

struct page_frame {
	uint64_t idx;
	unsigned char data[PCM_PAGE_SIZE];
} __attribute__((packed));

static struct page_frame pf;

struct page_sum_frame {
	uint64_t idx;
	uint64_t sum;
	unsigned char data[PCM_PAGE_SIZE];
} __attribute__((packed));

static struct page_sum_frame psf;

static void fill(uint64_t idx, int byte)
{
	pf.idx = htole64(idx);
	memset(pf.data, byte, sizeof(pf.data));
}

/* a PAGE_SUM frame for @idx filled with @byte; @flip spoils the checksum */
static void fill_sum(uint64_t idx, int byte, uint64_t flip)
{
	psf.idx = htole64(idx);
	memset(psf.data, byte, sizeof(psf.data));
	psf.sum = htole64(pcm_page_hash(psf.data) ^ flip);
}

enum bad {
	B_MAGIC, B_FLAGS, B_TYPE, B_OVERSIZE, B_SHORTLEN, B_RANGE, B_RANGE_HUGE,
	B_TRUNC, B_SESSION, B_EPOCH, B_REPLAY, B_DISCARD_RANGE,
	B_DISCARD_ALIGN, B_DISCARD_NBITS, B_WRONG_DIR, B_HELLO_REPLAY,
	B_SUM_BAD, B_MAX
};

static const char *const bad_name[B_MAX] = {
	"bad magic", "nonzero flags", "unknown type",
	"oversized length (16 MiB)", "page frame with short length",
	"page index == npages", "page index 2^63",
	"truncated page frame", "wrong session id", "stale epoch",
	"replayed frame (same seq)", "discard bitmap past the region",
	"discard bitmap unaligned start", "discard bitmap nbits > chunk",
	"received-bitmap frame from the source", "replayed old HELLO",
	"page whose checksum does not match",
};

static uint32_t next_epoch = 1;

static bool run_bad(struct dest *t, int which, uint64_t *baseline)
{
	struct pcm_bitmap_hdr bh = { 0 };
	unsigned char bm[PCM_HDR_SIZE + 64] = { 0 };
	uint64_t before = rejected(t), d0 = *baseline;
	struct link l;
	int ok;

	if (link_up(t, &l, next_epoch++, false, NULL)) {
		ksft_print_msg("link setup failed\n");
		return false;
	}
	fill(7, 0x3c);
	switch (which) {
	case B_MAGIC:
		send_raw(l.b, PCM_T_PAGE, SESSION, l.epoch, 1, &pf, sizeof(pf),
			 false, 0, 0xdeadbeef);
		break;
	case B_FLAGS:
		send_raw(l.b, PCM_T_PAGE, SESSION, l.epoch, 1, &pf, sizeof(pf),
			 false, 1, PCM_MAGIC);
		break;
	case B_TYPE:
		send_raw(l.b, 99, SESSION, l.epoch, 1, &pf, sizeof(pf), false,
			 0, PCM_MAGIC);
		break;
	case B_OVERSIZE: {
		/* header only: the dest must reject before reading 16 MiB */
		struct pcm_hdr h = { .magic = PCM_MAGIC, .type = PCM_T_PAGE,
				     .session = SESSION, .epoch = l.epoch,
				     .len = 0, .seq = 1 };
		uint32_t big = htole32(16 << 20);

		pcm_encode(buf, &h, NULL, key, false);
		memcpy(buf + offsetof(struct pcm_hdr, len), &big, 4);
		if (send(l.b, buf, PCM_HDR_SIZE, MSG_NOSIGNAL) < 0)
			break;
		break;
	}
	case B_SHORTLEN:
		send_raw(l.b, PCM_T_PAGE, SESSION, l.epoch, 1, &pf,
			 sizeof(pf) - 1, false, 0, PCM_MAGIC);
		break;
	case B_RANGE:
		fill(NPAGES, 0x3c);
		send_ok(&l, true, PCM_T_PAGE, &pf, sizeof(pf), false);
		break;
	case B_RANGE_HUGE:
		fill(1ull << 63, 0x3c);
		send_ok(&l, true, PCM_T_PAGE, &pf, sizeof(pf), false);
		break;
	case B_TRUNC: {
		struct pcm_hdr h = { .magic = PCM_MAGIC, .type = PCM_T_PAGE,
				     .session = SESSION, .epoch = l.epoch,
				     .len = sizeof(pf), .seq = 1 };
		size_t n = pcm_encode(buf, &h, &pf, key, false);

		if (send(l.b, buf, n / 2, MSG_NOSIGNAL) < 0)
			break;
		usleep(50000);
		close(l.b);
		l.b = open("/dev/null", O_RDONLY);
		before--;	/* a cut link is a lost link, not a reject */
		break;
	}
	case B_SESSION:
		send_raw(l.b, PCM_T_PAGE, SESSION + 1, l.epoch, 1, &pf,
			 sizeof(pf), false, 0, PCM_MAGIC);
		break;
	case B_EPOCH:
		send_raw(l.b, PCM_T_PAGE, SESSION, l.epoch - 1, 1, &pf,
			 sizeof(pf), false, 0, PCM_MAGIC);
		break;
	case B_REPLAY: {
		size_t n;
		static unsigned char first[PCM_HDR_SIZE + sizeof(pf)];
		struct pcm_hdr h = { .magic = PCM_MAGIC, .type = PCM_T_PAGE,
				     .session = SESSION, .epoch = l.epoch,
				     .len = sizeof(pf), .seq = 1 };

		/* A (page 9 = 0x11) then B (page 9 = 0x22), replay A */
		fill(9, 0x11);
		n = pcm_encode(first, &h, &pf, key, false);
		send(l.b, first, n, MSG_NOSIGNAL);
		fill(9, 0x22);
		l.seq_b = 2;
		send_ok(&l, true, PCM_T_PAGE, &pf, sizeof(pf), false);
		usleep(50000);
		send(l.b, first, n, MSG_NOSIGNAL);
		break;
	}
	case B_DISCARD_RANGE:
	case B_DISCARD_ALIGN:
	case B_DISCARD_NBITS:
		bh.first = htole64(which == B_DISCARD_ALIGN ? 8 :
				   which == B_DISCARD_RANGE ? 192 : 0);
		bh.nbits = htole32(which == B_DISCARD_NBITS ?
				   PCM_BITMAP_CHUNK_BITS + 8 : 128);
		memcpy(bm, &bh, sizeof(bh));
		memset(bm + sizeof(bh), 0xff, 16);
		if (which == B_DISCARD_NBITS) {
			struct pcm_hdr h = {
				.magic = PCM_MAGIC, .type = PCM_T_DISCARD,
				.session = SESSION, .epoch = l.epoch,
				.len = sizeof(bh) + 16, .seq = 1 };
			size_t n = pcm_encode(buf, &h, bm, key, false);

			send(l.b, buf, n, MSG_NOSIGNAL);
		} else {
			send_ok(&l, true, PCM_T_DISCARD, bm, sizeof(bh) + 16,
				false);
		}
		break;
	case B_SUM_BAD:
		/* one bit of the checksum off: the page must not land */
		fill_sum(7, 0x3c, 1ull << 17);
		send_ok(&l, true, PCM_T_PAGE_SUM, &psf, sizeof(psf), false);
		break;
	case B_WRONG_DIR:
		bh.nbits = htole32(64);
		memcpy(bm, &bh, sizeof(bh));
		send_ok(&l, false, PCM_T_RBITMAP, bm, sizeof(bh) + 8, false);
		break;
	case B_HELLO_REPLAY: {
		/* a new connection replaying epoch 1's HELLO */
		struct pcm_hello h;
		char err[200];
		int fd;

		link_down(&l);
		wait_state(t, PCM_LINK_PAUSED, 0);
		fd = pcm_connect(t->addr, 1000, err, sizeof(err));
		hello(&h, PCM_CH_MAIN);
		send_raw(fd, PCM_T_HELLO, SESSION, 1, 0, &h, sizeof(h), false,
			 0, PCM_MAGIC);
		ok = wait_state(t, PCM_LINK_PAUSED, before + 1);
		close(fd);
		return ok && region_digest(t) == d0;
	}
	}
	ok = wait_state(t, PCM_LINK_PAUSED, before + 1);
	if (which == B_REPLAY) {
		/* page 9 must hold B, not the replayed A */
		unsigned char want[PCM_PAGE_SIZE];

		memset(want, 0x22, sizeof(want));
		ok = ok && !memcmp(t->view + 9 * PCM_PAGE_SIZE, want,
				   sizeof(want));
		*baseline = d0 = region_digest(t);
	}
	link_down(&l);
	if (region_digest(t) != d0) {
		ksft_print_msg("region changed\n");
		ok = false;
	}
	return ok;
}

static bool hex_eq(const uint8_t *b, size_t n, const char *hex)
{
	char s[2 * 64 + 1];
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", b[i]);
	return !strcmp(s, hex);
}

/* the key schedule's primitives against their published test vectors */
static bool kdf_vectors(void)
{
	uint8_t out[42], ikm[22], salt[13], info[10];
	bool ok;
	int i;

	pcm_sha256("abc", 3, NULL, 0, out);
	ok = hex_eq(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	pcm_hmac_sha256("Jefe", 4, "what do ya want ", 16, "for nothing?", 12,
			out);
	ok = ok && hex_eq(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(ikm, 0x0b, sizeof(ikm));
	for (i = 0; i < 13; i++)
		salt[i] = i;
	for (i = 0; i < 10; i++)
		info[i] = 0xf0 + i;
	pcm_hkdf(salt, sizeof(salt), ikm, sizeof(ikm), info, sizeof(info),
		 out, 42);
	return ok && hex_eq(out, 42, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

/* does bitmap @a equal @b in bits [0, @n)? */
static bool bits_eq(const uint64_t *a, const uint64_t *b, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		if (pcm_test_bit(a, i) != pcm_test_bit(b, i))
			return false;
	return true;
}

/*
 * The bitmap chunk codec (pcm_send_bitmap, pcm_bitmap_decode), the one
 * both sides use for RBITMAP and DISCARD, over a socketpair: sizes around
 * word and chunk boundaries round-trip bit-exactly in the expected chunks;
 * with skip_empty only the empty chunks are left out; decoding changes no
 * bit outside its chunk; a chunk beyond the region is refused and changes
 * nothing.
 */
static bool codec_roundtrip(void)
{
	static const uint64_t sizes[] = {
		1, 63, 64, 65, 4095, PCM_BITMAP_CHUNK_BITS,
		PCM_BITMAP_CHUNK_BITS + 1, PCM_BITMAP_CHUNK_BITS + 130,
	};
	unsigned int si, skip;
	bool ok = true;

	srand(1234);
	for (si = 0; si < KML_ARRAY_SIZE(sizes) && ok; si++) {
		for (skip = 0; skip < 2 && ok; skip++) {
			uint64_t n = sizes[si], nw = (n + 63) / 64, i;
			uint64_t nchunks = (n + PCM_BITMAP_CHUNK_BITS - 1) /
					   PCM_BITMAP_CHUNK_BITS, want = 0;
			uint64_t *in = calloc(nw, 8), *out = calloc(nw, 8);
			struct pcm_chan tx, rx;
			struct pcm_frame f;
			int sv[2];

			if (!in || !out ||
			    socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
				free(in);
				free(out);
				return false;
			}
			for (i = 0; i < n; i++)
				if (rand() % 3 == 0)
					pcm_set_bit(in, i);
			/* an empty first chunk, to be left out with skip */
			if (skip && n > PCM_BITMAP_CHUNK_BITS)
				memset(in, 0, PCM_BITMAP_CHUNK_BITS / 8);
			/* without skip every bit is sent: start from ones */
			if (!skip)
				memset(out, 0xff, nw * 8);
			for (i = 0; i < nchunks; i++) {
				uint64_t b, e = (i + 1) * PCM_BITMAP_CHUNK_BITS;

				for (b = i * PCM_BITMAP_CHUNK_BITS; b < e && b < n; b++)
					if (pcm_test_bit(in, b))
						break;
				want += !skip || (b < e && b < n);
			}
			pcm_chan_init(&tx, sv[0], PCM_CH_MAIN, SESSION, 1, NULL,
				      1000, false);
			pcm_chan_init(&rx, sv[1], PCM_CH_MAIN, SESSION, 1, NULL,
				      1000, true);
			ok = !pcm_send_bitmap(&tx, PCM_T_RBITMAP, in, n, skip) &&
			     !pcm_flush(&tx);
			for (i = 0; i < want && ok; i++) {
				uint64_t first, nbits;

				ok = !pcm_recv(&rx, &f, rxp, 1000) &&
				     f.h.type == PCM_T_RBITMAP &&
				     !pcm_bitmap_decode(&f, n, out, &first,
							&nbits) &&
				     first % PCM_BITMAP_CHUNK_BITS == 0 &&
				     nbits == (n - first < PCM_BITMAP_CHUNK_BITS ?
					       n - first : PCM_BITMAP_CHUNK_BITS);
			}
			/* nothing more was sent */
			ok = ok && pcm_recv(&rx, &f, rxp, 50) != 0;
			ok = ok && bits_eq(in, out, n);
			/* bits past n in the last word: untouched (ones) */
			if (ok && !skip && n % 64)
				ok = (out[nw - 1] >> (n % 64)) ==
				     ~0ull >> (n % 64);
			if (!ok)
				ksft_print_msg("codec: %llu bits, skip_empty %u: mismatch\n",
					       (unsigned long long)n, skip);
			pcm_chan_destroy(&tx);
			pcm_chan_destroy(&rx);
			free(in);
			free(out);
		}
	}
	/* a chunk of 4095 bits does not fit a 64-page region: refused */
	if (ok) {
		uint64_t in[64] = { 0 }, out[64], first, nbits;
		struct pcm_chan tx, rx;
		struct pcm_frame f;
		int sv[2];

		memset(in, 0xa5, sizeof(in));
		memset(out, 0x5a, sizeof(out));
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			return false;
		pcm_chan_init(&tx, sv[0], PCM_CH_MAIN, SESSION, 1, NULL, 1000,
			      false);
		pcm_chan_init(&rx, sv[1], PCM_CH_MAIN, SESSION, 1, NULL, 1000,
			      true);
		ok = !pcm_send_bitmap(&tx, PCM_T_DISCARD, in, 4095, false) &&
		     !pcm_flush(&tx) && !pcm_recv(&rx, &f, rxp, 1000) &&
		     pcm_bitmap_decode(&f, 64, out, &first, &nbits) ==
		     -PCM_E_RANGE && out[0] == 0x5a5a5a5a5a5a5a5aull &&
		     out[63] == 0x5a5a5a5a5a5a5a5aull;
		pcm_chan_destroy(&tx);
		pcm_chan_destroy(&rx);
	}
	return ok;
}

int main(void)
{
	struct dest t, tk, ts;
	struct link l;
	uint64_t base, d1;
	int i, r;
	bool ok;

	ksft_print_header();
	r = dest_start(&t, NULL, "plain");
	if (r == -2)
		ksft_exit_skip("userfaultfd unavailable: %s (run as root)\n",
			       strerror(errno));
	if (r)
		ksft_exit_fail_msg("destination setup: %s\n", strerror(errno));
	ksft_set_plan(B_MAX + 16);
	ksft_test_result(kdf_vectors(),
			 "key schedule: SHA-256 (FIPS 180-2 'abc'), HMAC (RFC 4231 #2), HKDF (RFC 5869 #1) vectors\n");

	/* positive control: a valid page lands in the region */
	base = region_digest(&t);
	ok = !link_up(&t, &l, next_epoch++, false, NULL);
	fill(3, 0x5a);
	ok = ok && !send_ok(&l, true, PCM_T_PAGE, &pf, sizeof(pf), false);
	ok = ok && wait_byte(&t, 3, 0x5a) &&
	     t.view[4 * PCM_PAGE_SIZE] == 0xa5;
	d1 = region_digest(&t);
	ksft_test_result(ok && d1 != base,
			 "positive control: a valid page frame is applied\n");
	link_down(&l);
	wait_state(&t, PCM_LINK_PAUSED, 0);
	base = d1;

	for (i = 0; i < B_MAX; i++)
		ksft_test_result(run_bad(&t, i, &base), "rejected: %s\n",
				 bad_name[i]);

	/* the link still works after all that (recovery after rejects) */
	ok = !link_up(&t, &l, next_epoch++, false, NULL);
	fill(4, 0x77);
	ok = ok && !send_ok(&l, true, PCM_T_PAGE, &pf, sizeof(pf), false);
	ksft_test_result(ok && wait_byte(&t, 4, 0x77),
			 "a new link resumes after the rejects\n");
	link_down(&l);
	wait_state(&t, PCM_LINK_PAUSED, 0);

	/* per-page checksums: a correct one is accepted */
	ok = !link_up(&t, &l, next_epoch++, false, NULL);
	fill_sum(5, 0x55, 0);
	ok = ok && !send_ok(&l, true, PCM_T_PAGE_SUM, &psf, sizeof(psf),
			    false);
	ksft_test_result(ok && wait_byte(&t, 5, 0x55) &&
			 t.view[6 * PCM_PAGE_SIZE] == 0xa5,
			 "positive control: a page with a correct checksum is applied\n");
	link_down(&l);
	wait_state(&t, PCM_LINK_PAUSED, 0);

	/* a destination that requires them refuses a page without one */
	dest_page_sums = true;
	if (dest_start(&ts, NULL, "sums"))
		ksft_exit_fail_msg("checksumming destination setup failed\n");
	dest_page_sums = false;
	base = region_digest(&ts);
	next_epoch = 1;
	ok = !link_up(&ts, &l, next_epoch++, false, NULL);
	fill(8, 0x3c);
	ok = ok && !send_ok(&l, true, PCM_T_PAGE, &pf, sizeof(pf), false);
	ok = ok && wait_state(&ts, PCM_LINK_PAUSED, 1);
	ksft_test_result(ok && region_digest(&ts) == base,
			 "rejected: page without a checksum where they are required\n");
	link_down(&l);
	ok = !link_up(&ts, &l, next_epoch++, false, NULL);
	fill_sum(8, 0x3c, 0);
	ok = ok && !send_ok(&l, true, PCM_T_PAGE_SUM, &psf, sizeof(psf),
			    false);
	ksft_test_result(ok && wait_byte(&ts, 8, 0x3c),
			 "positive control: checksummed page applied where they are required\n");
	link_down(&l);

	/*
	 * A fresh destination pairs a link's two HELLOs only with the same
	 * session, epoch and source nonce: a bulk HELLO of another session
	 * gets no HELLO_ACK (and adopts nothing).
	 */
	{
		struct dest tf;
		struct pcm_hello h;
		struct pcm_chan c;
		struct pcm_frame f;
		struct pcm_stats st;
		char err[200];
		int m, b;

		if (dest_start(&tf, NULL, "fresh"))
			ksft_exit_fail_msg("fresh destination setup failed\n");
		/* dest_start() does not wait for the listening socket */
		for (r = 0; r < 100; r++) {
			m = pcm_connect(tf.addr, 1000, err, sizeof(err));
			if (m >= 0)
				break;
			usleep(50000);
		}
		b = pcm_connect(tf.addr, 1000, err, sizeof(err));
		hello(&h, PCM_CH_MAIN);
		memset(h.nonce, 0x42, sizeof(h.nonce));
		send_raw(m, PCM_T_HELLO, SESSION, 1, 0, &h, sizeof(h), false,
			 0, PCM_MAGIC);
		h.channel = htole32(PCM_CH_BULK);
		send_raw(b, PCM_T_HELLO, SESSION ^ 0xff, 1, 0, &h, sizeof(h),
			 false, 0, PCM_MAGIC);
		pcm_chan_init(&c, dup(m), PCM_CH_MAIN, SESSION, 1, NULL, 1000,
			      true);
		/* no HELLO_ACK: silence, or dropped at the HELLO deadline */
		r = pcm_recv(&c, &f, rxp, 1000);
		pcm_chan_destroy(&c);
		pcm_dst_status(tf.d, &st);
		if (r != -PCM_E_TIMEOUT && r != -PCM_E_IO)
			ksft_print_msg("recv: %d (%s)\n", r, pcm_err_name(r));
		ksft_test_result(m >= 0 && b >= 0 &&
				 (r == -PCM_E_TIMEOUT || r == -PCM_E_IO) &&
				 st.session == 0 && st.phase == PCM_PH_NEW,
				 "main and bulk HELLOs of different sessions do not make a link\n");
		close(m);
		close(b);
		unlink(tf.addr + 5);
	}

	/* authentication */
	if (dest_start(&tk, "frames-secret-1", "key"))
		ksft_exit_fail_msg("keyed destination setup failed\n");
	base = region_digest(&tk);
	next_epoch = 1;
	r = link_up(&tk, &l, next_epoch++, true, "wrong-secret-22");
	ksft_test_result(r && rejected(&tk) >= 1,
			 "rejected: HELLO tagged with the wrong key\n");
	link_down(&l);
	r = link_up(&tk, &l, next_epoch++, true, "frames-secret-1");
	fill(6, 0x66);
	{
		struct pcm_hdr h = { .magic = PCM_MAGIC, .type = PCM_T_PAGE,
				     .session = SESSION, .epoch = l.epoch,
				     .len = sizeof(pf), .seq = 1 };
		size_t n = pcm_encode(buf, &h, &pf, s2d(&l, PCM_CH_BULK), true);

		buf[n - 1] ^= 1;	/* tamper after tagging */
		send(l.b, buf, n, MSG_NOSIGNAL);
	}
	ok = !r && wait_state(&tk, PCM_LINK_PAUSED, 2);
	ksft_test_result(ok && region_digest(&tk) == base,
			 "rejected: tampered page under a valid key\n");
	link_down(&l);
	r = link_up(&tk, &l, next_epoch++, true, "frames-secret-1");
	fill(6, 0x66);
	ok = !r && !send_ok(&l, true, PCM_T_PAGE, &pf, sizeof(pf), true);
	ksft_test_result(ok && wait_byte(&tk, 6, 0x66),
			 "positive control: correctly tagged page applied\n");
	link_down(&l);
	wait_state(&tk, PCM_LINK_PAUSED, 0);

	/*
	 * Channel and direction are bound into the keys: a frame that is
	 * valid on the bulk channel (right seq for main), or one the
	 * destination itself sent (reflected), is refused on main; the same
	 * PING under the main s->d key is accepted (control).
	 */
	for (i = 0; i < 3; i++) {
		static const char *const what[] = {
			"positive control: PING under the main s->d key accepted",
			"rejected: frame moved from the bulk to the main channel",
			"rejected: frame reflected back (d->s key) on main",
		};
		const uint64_t *k;
		struct pcm_stats st;
		uint64_t rej = rejected(&tk);

		r = link_up(&tk, &l, next_epoch++, true, "frames-secret-1");
		k = i == 0 ? l.k[PCM_CH_MAIN - 1][PCM_DIR_S2D - 1] :
		    i == 1 ? l.k[PCM_CH_BULK - 1][PCM_DIR_S2D - 1] :
			     l.k[PCM_CH_MAIN - 1][PCM_DIR_D2S - 1];
		ok = !r && !send_k(l.m, PCM_T_PING, SESSION, l.epoch,
				   l.seq_m++, NULL, 0, k);
		if (i == 0) {
			/* still up after a heartbeat interval, nothing refused */
			usleep(300000);
			pcm_dst_status(tk.d, &st);
			ok = ok && st.link == PCM_LINK_ACTIVE &&
			     st.rejected_frames == rej;
		} else {
			ok = ok && wait_state(&tk, PCM_LINK_PAUSED, rej + 1);
			pcm_dst_status(tk.d, &st);
			ok = ok && strstr(st.last_error, "authentication");
			if (!ok)
				ksft_print_msg("last error: %s\n",
					       st.last_error);
		}
		ksft_test_result(ok, "%s\n", what[i]);
		link_down(&l);
		wait_state(&tk, PCM_LINK_PAUSED, 0);
	}

	/*
	 * Pre-authentication DoS: 50 idle and 50 garbage connections are
	 * open; a keyed source still gets its link up within 1 s.
	 */
	{
		int fds[100], n = 0, fd0 = count_fds();
		uint64_t t0;
		char junk[200], err[200];

		memset(junk, 0x5a, sizeof(junk));
		for (i = 0; i < 100; i++) {
			fds[i] = pcm_connect(tk.addr, 1000, err, sizeof(err));
			if (fds[i] >= 0)
				n++;
			if (fds[i] >= 0 && i % 2)
				send(fds[i], junk, sizeof(junk), MSG_NOSIGNAL);
		}
		t0 = kml_now_ns();
		r = link_up(&tk, &l, next_epoch++, true, "frames-secret-1");
		t0 = kml_now_ns() - t0;
		ksft_print_msg("%d hostile connections open; link up in %.0f ms\n",
			       n, t0 / 1e6);
		ksft_test_result(n == 100 && !r && t0 < 1000000000ull,
				 "a keyed source connects within 1 s while 100 idle/garbage connections are open\n");
		link_down(&l);
		for (i = 0; i < 100; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		/* every pre-auth slot is freed by the HELLO deadline */
		wait_state(&tk, PCM_LINK_PAUSED, 0);
		usleep(600000);
		ksft_test_result(count_fds() <= fd0,
				 "cleanup: no connection left open by the destination (%d fds, %d before)\n",
				 count_fds(), fd0);
	}
	ksft_test_result(codec_roundtrip(),
			 "bitmap chunk codec: round trip at word and chunk edges, skip_empty, out-of-region chunk refused\n");
	unlink(t.addr + 5);
	unlink(tk.addr + 5);
	unlink(ts.addr + 5);
	ksft_finished();
}
