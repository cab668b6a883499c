// SPDX-License-Identifier: GPL-2.0
/*
 * vu_guest - the guest side of the vhost-user migration tests (static,
 * runs as the only program of a tiny initramfs guest; see vu_migrate.py).
 *
 * On /dev/vda it keeps two oracles busy while the host migrates the VM:
 *
 *  - self-describing blocks: 2048 4K blocks, each {magic, lba, seq, crc32}
 *    + payload derived from (lba, seq); every iteration rewrites some and
 *    re-reads others, and the end verifies all of them against the seq
 *    table kept in guest memory;
 *  - dirty-log oracle: two 16 MiB regions with known patterns A and B are
 *    read with O_DIRECT, alternately, into one 16 MiB buffer, which is
 *    verified right after the read and again before the next one. Only
 *    the device writes the buffer, so if the back-end does not log its
 *    writes the destination of a migration sees stale pages.
 *
 * Progress goes to the console ("VU-ITER n"); the host ends the run by
 * writing a stop marker into the image; the last line is "VU-RESULT ok" or
 * "VU-RESULT fail: <why>".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096u
#define NBLOCKS		2048u			/* self-describing, at 0 */
#define REGION_SIZE	(16u << 20)
#define REGION_A	(16ull << 20)
#define REGION_B	(32ull << 20)
#define STOP_OFF	(100ull << 20)		/* host writes the marker here */
#define STOP_MAGIC	"VU-STOP!"
#define BLK_MAGIC	0x76756231626c6b00ull	/* "vub1blk" */
#define MAX_SECS	900

struct blk_hdr {
	uint64_t magic;
	uint64_t lba;
	uint64_t seq;
	uint32_t crc;
	uint32_t pad;
};

static uint32_t crc_table[256];
static uint64_t seqs[NBLOCKS];
static int fd;
static uint8_t *iobuf, *blkbuf, *exp_a, *exp_b;

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void result_fail(const char *fmt, ...)
{
	va_list ap;

	printf("VU-RESULT fail: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;

	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void io(bool write, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write ? pwrite(fd, (char *)buf + done, len - done, off + done) :
				    pread(fd, (char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			result_fail("%s at %llu: %s", write ? "write" : "read",
				    (unsigned long long)(off + done),
				    n < 0 ? strerror(errno) : "short");
		done += n;
	}
}

static void fill_region(uint8_t *p, unsigned int tag)
{
	for (uint32_t pg = 0; pg < REGION_SIZE / PAGE; pg++) {
		uint64_t *q = (uint64_t *)(p + (size_t)pg * PAGE);

		for (unsigned int i = 0; i < PAGE / 8; i++)
			q[i] = ((uint64_t)tag << 56) | ((uint64_t)pg << 16) | i;
	}
}

static void make_block(uint8_t *b, uint64_t lba, uint64_t seq)
{
	struct blk_hdr *h = (struct blk_hdr *)b;
	uint64_t s = lba * 0x9e3779b97f4a7c15ull ^ seq;

	for (unsigned int i = sizeof(*h); i < PAGE; i += 8) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(b + i, &s, 8);
	}
	h->magic = BLK_MAGIC;
	h->lba = lba;
	h->seq = seq;
	h->pad = 0;
	h->crc = crc32(b + sizeof(*h), PAGE - sizeof(*h));
}

static void write_block(uint64_t lba)
{
	seqs[lba]++;
	make_block(blkbuf, lba, seqs[lba]);
	io(true, blkbuf, PAGE, lba * PAGE);
}

static void check_block(uint64_t lba, const char *when)
{
	struct blk_hdr *h = (struct blk_hdr *)blkbuf;

	io(false, blkbuf, PAGE, lba * PAGE);
	if (h->magic != BLK_MAGIC || h->lba != lba)
		result_fail("%s: block %llu: bad header (magic %llx lba %llu)",
			    when, (unsigned long long)lba,
			    (unsigned long long)h->magic,
			    (unsigned long long)h->lba);
	if (h->seq != seqs[lba])
		result_fail("%s: block %llu: seq %llu, expected %llu (lost write)",
			    when, (unsigned long long)lba,
			    (unsigned long long)h->seq,
			    (unsigned long long)seqs[lba]);
	if (h->crc != crc32(blkbuf + sizeof(*h), PAGE - sizeof(*h)))
		result_fail("%s: block %llu: payload crc mismatch", when,
			    (unsigned long long)lba);
}

static void verify_buffer(const uint8_t *expect, char tag, unsigned long iter)
{
	unsigned int bad = 0, first = 0;

	for (uint32_t pg = 0; pg < REGION_SIZE / PAGE; pg++) {
		if (memcmp(iobuf + (size_t)pg * PAGE, expect + (size_t)pg * PAGE,
			   PAGE)) {
			if (!bad)
				first = pg;
			bad++;
		}
	}
	if (bad)
		result_fail("iter %lu: %u of %u buffer pages stale after an O_DIRECT read of region %c (first page %u holds tag %c): device writes not migrated",
			    iter, bad, REGION_SIZE / PAGE, tag, first,
			    (char)(((uint64_t *)(iobuf + (size_t)first * PAGE))[0] >> 56));
}

static bool stop_requested(void)
{
	io(false, blkbuf, PAGE, STOP_OFF);
	return !memcmp(blkbuf, STOP_MAGIC, 8);
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/vda";
	double start = now(), t;
	unsigned long iter;

	crc_init();
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0)
		result_fail("open %s: %s", dev, strerror(errno));
	if (posix_memalign((void **)&iobuf, PAGE, REGION_SIZE) ||
	    posix_memalign((void **)&blkbuf, PAGE, PAGE) ||
	    posix_memalign((void **)&exp_a, PAGE, REGION_SIZE) ||
	    posix_memalign((void **)&exp_b, PAGE, REGION_SIZE))
		result_fail("out of memory");
	fill_region(exp_a, 'A');
	fill_region(exp_b, 'B');
	io(true, exp_a, REGION_SIZE, REGION_A);
	io(true, exp_b, REGION_SIZE, REGION_B);
	memset(blkbuf, 0, PAGE);
	io(true, blkbuf, PAGE, STOP_OFF);
	for (uint64_t b = 0; b < NBLOCKS; b++)
		write_block(b);
	say("VU-LIVE fill done in %.1fs\n", now() - start);

	for (iter = 0;; iter++) {
		bool b = iter & 1;

		/*
		 * The device writes the whole buffer; the CPU only reads it.
		 * It must hold the pattern from right after the read until
		 * the next read, so a switchover anywhere in the loop finds
		 * pages the back-end wrote but did not log.
		 */
		io(false, iobuf, REGION_SIZE, b ? REGION_B : REGION_A);
		verify_buffer(b ? exp_b : exp_a, b ? 'B' : 'A', iter);
		for (int i = 0; i < 16; i++)
			write_block(rnd() % NBLOCKS);
		for (int i = 0; i < 16; i++)
			check_block(rnd() % NBLOCKS, "live");
		usleep(200000);
		verify_buffer(b ? exp_b : exp_a, b ? 'B' : 'A', iter);
		t = now() - start;
		say("VU-ITER %lu t=%.1f\n", iter, t);
		if (stop_requested())
			break;
		if (t > MAX_SECS)
			result_fail("no stop marker from the host after %d s",
				    MAX_SECS);
	}
	for (uint64_t blk = 0; blk < NBLOCKS; blk++)
		check_block(blk, "final");
	say("VU-RESULT ok: %lu iterations, %u blocks verified\n", iter + 1,
	    NBLOCKS);
	return 0;
}
