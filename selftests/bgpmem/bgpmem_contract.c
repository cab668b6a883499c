// SPDX-License-Identifier: GPL-2.0
/*
 * bgpmem poison contract (Documentation/bgpmem.rst): one TAP result per
 * cell, on the raw block device and through ext4 and xfs -o dax, then the
 * same cases on nd_pmem on the same namespace, printed side by side.
 *
 * Backends: e820 and nfit_test (the platform clears), nfit and cxl (QEMU
 * NFIT and QEMU's CXL memory device: cannot clear).
 * Needs root, bgpmem.ko, mkfs.ext4, mkfs.xfs and, but on e820, ndctl.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kmemlab/bgpmem.h>

#include "bgpmem_test.h"
#include "kml.h"

#define BLK		4096ULL
#define MNT		"/mnt/bgpmem-test"
#define MAX_RESULTS	128
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX	0x00200000
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON	100
#endif

/* ---- TAP -------------------------------------------------------------- */

static void tap_skip(const char *name, const char *why)
{
	printf("ok %d %s # SKIP %s\n", ++tap_n, name, why);
	fflush(stdout);
}

/* ---- environment ------------------------------------------------------ */

struct env {
	bool bgp;		/* bgpmem, else nd_pmem */
	bool can_clear;		/* the platform clears poison */
	char disk[32];		/* bgpmem0 / pmem0 */
	char dev[48];		/* /dev/... */
	int fd;			/* O_DIRECT, O_RDWR */
	uint64_t size;
	const char *fs;		/* NULL: raw block device */
};

/*
 * Default: every contract cell, quickly. --full (bgpmem_full.sh, a slow
 * test) adds the heavy cases: 50 load/unload cycles, a 20 s concurrent
 * inject/clear stress, and the nd_pmem comparison through ext4/xfs -o dax.
 */
static bool opt_full;
static int opt_cycles = 5;		/* --full: 50 */
static int opt_stress_secs = 1;		/* --full: 20 */

static char ns_name[64];	/* namespaceX.Y */
static char bind_dev[64];	/* namespaceX.Y or pfnX.Y */
static const char *kdir;

/*
 * Every shell step, bind and result also goes to /dev/kmsg, so the serial
 * log says what the test was doing if the VM dies (see "Limits" in
 * Documentation/bgpmem.rst: a QEMU TCG crash while the kernel patches code).
 */

static uint64_t sysfs_u64(const char *disk, const char *attr)
{
	char path[256], buf[64];

	snprintf(path, sizeof(path), "/sys/block/%s/bgpmem/%s", disk, attr);
	if (read_file(path, buf, sizeof(buf)))
		return UINT64_MAX;
	return strtoull(buf, NULL, 0);
}

static bool mounted_tracefs;

/*
 * The bgpmem trace events are enabled at every load and removed at every
 * unload. The test leaves tracing's options alone: writing record-cmd makes
 * the kernel start or stop recording comms for the enabled events of every
 * trace instance (trace_event_enable_cmd_record()), which registers or
 * unregisters the sched_switch/sched_wakeup probes and patches the
 * scheduler (text_poke_bp()). Under the lab's multi-threaded TCG that is
 * the stale-int3 oops the lab's comm recorder hold exists to prevent
 * (Documentation/lab.rst, "Text patching under TCG").
 */
static void trace_setup(void)
{
	if (access("/sys/kernel/tracing/trace", F_OK) &&
	    !sh("mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null"))
		mounted_tracefs = true;
}

static void trace_restore(void)
{
	if (mounted_tracefs)
		sh("umount /sys/kernel/tracing");
}

static bool nfit_test_flavor;	/* nfit_test: the --wrap build */

/*
 * --fault=LIST: the test-only fault build (drivers/pmem/fault_flavor.sh,
 * build/fault/KVER/pmem/{std,nfit_test}/bgpmem.ko, or
 * $KMEMLAB_BGPMEM_FAULT_KO) loaded with fault=LIST, and only the block
 * cells run (selftests/bgpmem/bgpmem_faults.sh). --cells=GROUP,... runs
 * only those groups of them (the cells that pin a bug: a bug run needs no
 * others): raw, inject, platform, race, clear_unit, scaling; default:
 * the first four.
 */
static const char *opt_fault;
static unsigned int opt_cells;
static const char *noclear_why;	/* bt_noclear_why() of the backend */
static char fault_ko_path[512];

#define FAULT_PARAM	"/sys/module/bgpmem/parameters/fault"
#define FAULT_HITS_BY	"/sys/module/bgpmem/parameters/fault_hits_by"
#define FAULT_HITS	"/sys/module/bgpmem/parameters/fault_hits"

static const char *fault_ko(void)
{
	const char *env = getenv("KMEMLAB_BGPMEM_FAULT_KO");
	char rel[128] = "";
	FILE *f;

	if (env && *env)
		return env;
	f = fopen("/proc/sys/kernel/osrelease", "r");
	if (f) {
		if (!fgets(rel, sizeof(rel), f))
			rel[0] = 0;
		fclose(f);
	}
	rel[strcspn(rel, "\n")] = 0;
	snprintf(fault_ko_path, sizeof(fault_ko_path),
		 "%s/build/fault/%s/pmem/%s/bgpmem.ko", kdir, rel,
		 nfit_test_flavor ? "nfit_test" : "std");
	return fault_ko_path;
}

static int fault_hits(void)
{
	char v[32];

	return read_file(FAULT_HITS, v, sizeof(v)) ? -1 : atoi(v);
}

static int load_bgpmem(const char *params)
{
	int rc;

	if (module_loaded("bgpmem"))
		return 0;
	if (opt_fault) {
		rc = sh("insmod %s fault=%s %s", fault_ko(), opt_fault, params);
		if (!rc)
			write_file("/sys/kernel/tracing/events/bgpmem/enable", "1");
		return rc;
	}
	if (nfit_test_flavor)
		rc = sh("insmod %s %s", nfit_test_ko(kdir), params);
	else
		rc = sh("modprobe bgpmem %s 2>/dev/null", params);
	if (rc && !nfit_test_flavor)
		rc = sh("insmod %s/drivers/pmem/bgpmem.ko %s", kdir, params);
	if (!rc)
		write_file("/sys/kernel/tracing/events/bgpmem/enable", "1");
	return rc;
}

/* bind bind_dev to @drv ("bgpmem" or "nd_pmem") */
static int bind_to(const char *drv)
{
	const char *cur = driver_of(bind_dev);
	char path[512];

	if (!strcmp(cur, drv))
		return 0;
	kmsg("bind %s: %s -> %s", bind_dev, cur[0] ? cur : "none", drv);
	if (cur[0]) {
		snprintf(path, sizeof(path), ND "/drivers/%s/unbind", cur);
		if (write_file(path, bind_dev))
			return -1;
	}
	snprintf(path, sizeof(path), ND "/drivers/%s/bind", drv);
	return write_file(path, bind_dev) ? -1 : 0;
}

static int disk_of(char *out, size_t len, const char *prefix)
{
	char path[128], buf[256];
	int i;

	for (i = 0; i < 16; i++) {
		/* the disk's parent is the nd device we bound */
		snprintf(path, sizeof(path), "/sys/block/%s%d/device/", prefix, i);
		if (!realpath(path, buf))
			continue;
		if (strstr(buf, bind_dev)) {
			snprintf(out, len, "%s%d", prefix, i);
			return 0;
		}
	}
	return -1;
}

static int env_open(struct env *e, bool bgp, bool can_clear)
{
	memset(e, 0, sizeof(*e));
	e->bgp = bgp;
	e->can_clear = can_clear;
	if (bind_to(bgp ? "bgpmem" : "nd_pmem"))
		return -1;
	if (disk_of(e->disk, sizeof(e->disk), bgp ? "bgpmem" : "pmem"))
		return -1;
	snprintf(e->dev, sizeof(e->dev), "/dev/%s", e->disk);
	e->fd = open(e->dev, O_RDWR | O_DIRECT);
	if (e->fd < 0)
		return -1;
	if (ioctl(e->fd, BLKGETSIZE64, &e->size))
		return -1;
	return 0;
}

static void env_close(struct env *e)
{
	if (e->fd > 0)
		close(e->fd);
	e->fd = -1;
}

/* ---- poison through the interface each driver has ---------------------- */

static int poison(struct env *e, uint64_t off, uint64_t len)
{
	char path[128], val[64];

	if (e->bgp) {
		struct bgpmem_range r = { .offset = off, .len = len };

		return ioctl(e->fd, BGPMEM_IOC_INJECT, &r) ? -errno : 0;
	}
	/* nd_pmem: the standard list, whole 512 B sectors */
	snprintf(path, sizeof(path), "/sys/block/%s/badblocks", e->disk);
	snprintf(val, sizeof(val), "%llu %llu",
		 (unsigned long long)(off / 512),
		 (unsigned long long)((off % 512 + len + 511) / 512));
	return write_file(path, val);
}

/* how much of [off, off + len) the badblocks list covers: 0, 1 part, 2 all */
static int listed(struct env *e, uint64_t off, uint64_t len)
{
	uint64_t s0 = off / 512, s1 = (off + len) / 512, hit = 0;
	char path[128], line[128];
	FILE *f;

	if (e->bgp) {
		/* the records, not the 512-entry mirror */
		struct bgpmem_range r[64];
		struct bgpmem_list l = { .start = off, .count = 64,
					 .ranges = (uintptr_t)r };
		uint32_t i;

		if (ioctl(e->fd, BGPMEM_IOC_LIST, &l))
			return -1;
		for (i = 0; i < l.count; i++) {
			uint64_t a = r[i].offset, b = a + r[i].len;

			if (a >= off + len)
				break;
			a = a > off ? a : off;
			b = b < off + len ? b : off + len;
			if (b > a)
				hit += (b - a) / 512;
		}
		return hit == 0 ? 0 : hit >= s1 - s0 ? 2 : 1;
	}
	snprintf(path, sizeof(path), "/sys/block/%s/badblocks", e->disk);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, n, a, b;

		if (sscanf(line, "%llu %llu", &s, &n) != 2)
			continue;
		a = s > s0 ? s : s0;
		b = s + n < s1 ? s + n : s1;
		if (b > a)
			hit += b - a;
	}
	fclose(f);
	return hit == 0 ? 0 : hit >= s1 - s0 ? 2 : 1;
}

static const char *state(struct env *e, uint64_t off, uint64_t len)
{
	switch (listed(e, off, len)) {
	case 0:
		return "cleared";
	case 1:
		return "half";
	case 2:
		return "kept";
	default:
		return "?";
	}
}

/* ---- result table ----------------------------------------------------- */

struct result {
	char name[64];
	char got[64];
	char want[64];		/* the contract (bgpmem cells only) */
};

static struct result results[2][MAX_RESULTS];	/* [bgp][i] */
static int nresults[2];

static void record(struct env *e, const char *name, const char *got)
{
	int b = e->bgp, i = nresults[b];

	kmsg("%s %s/%s: %s", e->bgp ? "bgpmem" : "nd_pmem",
	     e->fs ? e->fs : "blk", name, got);
	if (i >= MAX_RESULTS)
		return;
	snprintf(results[b][i].name, sizeof(results[b][i].name), "%s%s%s",
		 e->fs ? e->fs : "blk", "/", name);
	snprintf(results[b][i].got, sizeof(results[b][i].got), "%s", got);
	nresults[b]++;
}

static void record_want(struct env *e, const char *want)
{
	int b = e->bgp, i = nresults[b] - 1;

	if (i >= 0)
		snprintf(results[b][i].want, sizeof(results[b][i].want), "%s",
			 want);
}

/* a bgpmem cell: compare with the table; nd_pmem cells are only recorded */
static void cell(struct env *e, const char *name, const char *got,
		 const char *want)
{
	record(e, name, got);
	if (!e->bgp)
		return;
	record_want(e, want);
	if (strcmp(got, want)) {
		diag("%s %s: got %s, contract says %s", e->fs ? e->fs : "blk",
		     name, got, want);
		/* the driver's view: its last trace events */
		sh("tail -n 8 /sys/kernel/tracing/trace 2>/dev/null | sed 's/^/#   /'");
	}
	tap(!strcmp(got, want), "%s %s: %s", e->fs ? e->fs : "blk", name, got);
}

/*
 * A raw block cell of both drivers: bgpmem against @want, nd_pmem against
 * the table's nd_pmem column (@nd_can where the platform clears, else
 * @nd_cannot: upstream 6.12's behaviour, which the table documents).
 */
static void cell2(struct env *e, const char *name, const char *got,
		  const char *want, const char *nd_can, const char *nd_cannot)
{
	const char *nd_want = e->can_clear ? nd_can : nd_cannot;

	if (e->bgp) {
		cell(e, name, got, want);
		return;
	}
	record(e, name, got);
	if (strcmp(got, nd_want))
		diag("nd_pmem %s: got %s, the table says %s", name, got,
		     nd_want);
	tap(!strcmp(got, nd_want), "nd_pmem blk %s: %s", name, got);
}

/* ---- raw block device cases -------------------------------------------- */

static char *buf_a, *buf_b;	/* 1 MiB, 4K aligned */

static int pw(struct env *e, const void *b, size_t len, uint64_t off)
{
	ssize_t n = pwrite(e->fd, b, len, off);

	return n == (ssize_t)len ? 0 : n < 0 ? errno : EIO;
}

static int pr(struct env *e, void *b, size_t len, uint64_t off)
{
	ssize_t n = pread(e->fd, b, len, off);

	return n == (ssize_t)len ? 0 : n < 0 ? errno : EIO;
}

static void fill(char *b, size_t len, int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = (char)(seed + i * 7);
}

/* each case gets its own 16-block area, so poison that stays is harmless */
static uint64_t area(int idx)
{
	return (256 + idx * 16) * BLK;
}

static void raw_cases(struct env *e)
{
	char got[64];
	uint64_t a, blk;
	uint64_t range[2];
	int rc, idx = 0;

	/* clean cells: the device works */
	a = area(idx++);
	fill(buf_a, 4 * BLK, 1);
	rc = pw(e, buf_a, 4 * BLK, a);
	if (!rc)
		rc = pr(e, buf_b, 4 * BLK, a);
	if (!rc && memcmp(buf_a, buf_b, 4 * BLK))
		rc = EILSEQ;
	cell2(e, "clean_rw", err_name(rc), "OK", "OK", "OK");

	/* blk_read */
	a = area(idx++);
	blk = a + 2 * BLK;
	fill(buf_a, 4 * BLK, 2);
	pw(e, buf_a, 4 * BLK, a);
	poison(e, blk, BLK);
	rc = pr(e, buf_b, BLK, blk);
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, blk, BLK));
	cell2(e, "blk_read", got, "EIO,kept", "EIO,kept", "EIO,kept");

	/* blk_read_prefix: 16 blocks, the 8th poisoned */
	a = area(idx++);
	fill(buf_a, 16 * BLK, 3);
	pw(e, buf_a, 16 * BLK, a);
	poison(e, a + 7 * BLK, 1);
	memset(buf_b, 0, 16 * BLK);
	rc = pr(e, buf_b, 16 * BLK, a);
	snprintf(got, sizeof(got), "%s", err_name(rc));
	cell2(e, "blk_read_prefix", got, "EIO", "EIO", "EIO");

	/* blk_write_partial: 512 B into a poisoned block */
	a = area(idx++);
	blk = a + BLK;
	pw(e, buf_a, 4 * BLK, a);
	poison(e, blk, BLK);
	rc = pw(e, buf_a, 512, blk);
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, blk, BLK));
	cell2(e, "blk_write_partial", got, "EIO,kept", "OK,half", "EIO,kept");

	/* blk_write_prefix_partial: a clean block + 512 B of a poisoned one */
	a = area(idx++);
	fill(buf_a, 4 * BLK, 5);
	pw(e, buf_a, 4 * BLK, a);
	poison(e, a + BLK, BLK);
	fill(buf_b, 2 * BLK, 99);
	rc = pw(e, buf_b, BLK + 512, a);
	{
		char *chk = buf_b + 2 * BLK;
		bool prefix_kept = !pr(e, chk, BLK, a) &&
				   !memcmp(chk, buf_a, BLK);

		snprintf(got, sizeof(got), "%s,%s,%s", err_name(rc),
			 prefix_kept ? "prefix-unwritten" : "prefix-written",
			 state(e, a + BLK, BLK));
	}
	cell2(e, "blk_write_prefix_partial", got,
	      "EIO,prefix-unwritten,kept", "OK,prefix-written,half",
	      "EIO,prefix-written,kept");

	/* blk_write_whole */
	a = area(idx++);
	blk = a + BLK;
	poison(e, blk, BLK);
	fill(buf_a, BLK, 6);
	rc = pw(e, buf_a, BLK, blk);
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, blk, BLK));
	if (!rc && (pr(e, buf_b, BLK, blk) || memcmp(buf_a, buf_b, BLK)))
		strcat(got, ",bad-data");
	cell2(e, "blk_write_whole", got,
	      e->can_clear ? "OK,cleared" : "EIO,kept", "OK,cleared",
	      "EIO,kept");

	/* blk_write_buffered_partial: page cache read-modify-write */
	a = area(idx++);
	blk = a + BLK;
	pw(e, buf_a, 4 * BLK, a);
	poison(e, blk, BLK);
	{
		int bfd = open(e->dev, O_RDWR);
		ssize_t n;

		ioctl(bfd, BLKFLSBUF, 0);
		n = pwrite(bfd, buf_a, 512, blk + 512);
		rc = n == 512 ? 0 : n < 0 ? errno : EIO;
		if (!rc && fsync(bfd))
			rc = errno;
		close(bfd);
	}
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, blk, BLK));
	cell2(e, "blk_write_buffered_partial", got, "EIO,kept", "EIO,kept",
	      "EIO,kept");

	/* blk_zeroout_partial / whole */
	a = area(idx++);
	blk = a + BLK;
	poison(e, blk, BLK);
	range[0] = blk + 512;
	range[1] = 512;
	rc = ioctl(e->fd, BLKZEROOUT, range) ? errno : 0;
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, blk, BLK));
	cell2(e, "blk_zeroout_partial", got, "EIO,kept", "OK,half",
	      "EIO,kept");
	range[0] = blk;
	range[1] = BLK;
	rc = ioctl(e->fd, BLKZEROOUT, range) ? errno : 0;
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, blk, BLK));
	cell2(e, "blk_zeroout_whole", got,
	      e->can_clear ? "OK,cleared" : "EIO,kept", "OK,cleared",
	      "EIO,kept");

	/* explicit clear */
	a = area(idx++);
	blk = a + BLK;
	fill(buf_a, 4 * BLK, 8);
	pw(e, buf_a, 4 * BLK, a);
	poison(e, blk, BLK);
	{
		struct bgpmem_range r = { .offset = blk, .len = BLK };

		rc = ioctl(e->fd, BGPMEM_IOC_CLEAR, &r) ? errno : 0;
	}
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, blk, BLK));
	if (!rc) {
		memset(buf_a, 0, BLK);
		if (pr(e, buf_b, BLK, blk) || memcmp(buf_a, buf_b, BLK))
			strcat(got, ",not-zeroed");
	}
	cell2(e, "ioc_clear", got,
	      e->can_clear ? "OK,cleared" : "EOPNOTSUPP,kept",
	      "ENOTTY,kept", "ENOTTY,kept");
}

/* bgpmem only: bad input to the ioctls changes nothing */
static void bad_input_cases(struct env *e)
{
	struct { const char *what; uint64_t off, len; uint32_t flags; int want; }
	bad[] = {
		{ "unaligned offset", 512, BLK, 0, EINVAL },
		{ "unaligned length", 0, 512, 0, EINVAL },
		{ "zero length", 0, 0, 0, EINVAL },
		{ "beyond the end", e->size, BLK, 0, ERANGE },
		{ "offset+len overflow", UINT64_MAX - 511, BLK, 0, ERANGE },
		{ "flags", 0, BLK, 1, EINVAL },
	};
	struct bgpmem_info before, after;
	unsigned int i;
	bool ok = true;

	ioctl(e->fd, BGPMEM_IOC_INFO, &before);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct bgpmem_range r = { .offset = bad[i].off, .len = bad[i].len,
					  .flags = bad[i].flags };
		int rc = ioctl(e->fd, BGPMEM_IOC_CLEAR, &r) ? errno : 0;
		/* inject takes any alignment: only the other cases fail */
		bool unaligned = bad[i].off % BLK || bad[i].len % BLK;
		int rc2 = unaligned ? bad[i].want :
			  ioctl(e->fd, BGPMEM_IOC_INJECT, &r) ? errno : 0;

		if (rc != bad[i].want || rc2 != bad[i].want) {
			diag("%s: clear %s inject %s, want %s", bad[i].what,
			     err_name(rc), err_name(rc2), err_name(bad[i].want));
			ok = false;
		}
	}
	{
		struct bgpmem_list l = { .count = 0 };

		if (!ioctl(e->fd, BGPMEM_IOC_LIST, &l) || errno != EINVAL) {
			diag("list with count 0 accepted");
			ok = false;
		}
		l.count = BGPMEM_LIST_MAX + 1;
		if (!ioctl(e->fd, BGPMEM_IOC_LIST, &l) || errno != EINVAL) {
			diag("list with count > max accepted");
			ok = false;
		}
	}
	if (!ioctl(e->fd, _IO(BGPMEM_IOC_MAGIC, 99)) || errno != ENOTTY) {
		diag("unknown ioctl accepted");
		ok = false;
	}
	ioctl(e->fd, BGPMEM_IOC_INFO, &after);
	if (before.records != after.records ||
	    before.poisoned_bytes != after.poisoned_bytes) {
		diag("records changed: %llu -> %llu",
		     (unsigned long long)before.records,
		     (unsigned long long)after.records);
		ok = false;
	}
	tap(ok, "blk ioc_clear_bad: invalid ranges refused, nothing changed");

	/* poison_block_size: garbage refused; busy while records exist */
	{
		char path[128];
		bool pok = true;

		snprintf(path, sizeof(path),
			 "/sys/block/%s/bgpmem/poison_block_size", e->disk);
		if (write_file(path, "1000") != -EINVAL ||
		    write_file(path, "256") != -EINVAL ||
		    write_file(path, "8192") != -EINVAL ||
		    write_file(path, "x") != -EINVAL)
			pok = false;
		if (after.records && write_file(path, "512") != -EBUSY)
			pok = false;
		if (sysfs_u64(e->disk, "poison_block_size") != BLK)
			pok = false;
		tap(pok, "blk pbs_bad: poison_block_size validated");
	}
	/*
	 * The bus's clear unit (ARS_CAP), below which no poison block may go:
	 * nfit_test's is 256 bytes; nd_e820, QEMU NFIT and CXL have no ARS_CAP.
	 */
	{
		uint64_t unit = sysfs_u64(e->disk, "clear_unit");
		uint64_t want = nfit_test_flavor ? 256 : 0;

		tap(unit == want, "blk clear_unit: the bus's clear unit is %lld bytes (want %llu)",
		    (long long)unit, (unsigned long long)want);
	}
}

/* lines of @file containing @pat, -1 if it cannot be read */
static int sh_count(const char *pat, const char *file)
{
	char cmd[256], line[32] = "";
	FILE *p;

	if (access(file, R_OK))
		return -1;
	snprintf(cmd, sizeof(cmd), "grep -cE -- '%s' %s", pat, file);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(line, sizeof(line), p))
		line[0] = 0;
	pclose(p);
	return atoi(line);
}

/*
 * BGPMEM_IOC_CLEAR against BLKZEROOUT's rules: write access (EBADF), a
 * read-only device (EPERM), and the page cache of the range dropped before
 * zeroing, so a dirty cached page is not written back over the zeroes.
 */
static void clear_ioctl_cases(struct env *e)
{
	struct bgpmem_range r = { .offset = area(80), .len = BLK };
	char got[64], *zero;
	int fd, rc, ro;

	/* ioc_clear_rdonly: a read-only open may not clear */
	poison(e, r.offset, BLK);
	fd = open(e->dev, O_RDONLY);
	rc = fd < 0 ? -1 : ioctl(fd, BGPMEM_IOC_CLEAR, &r) ? errno : 0;
	snprintf(got, sizeof(got), "%s,%s", rc < 0 ? "open-failed" :
		 err_name(rc), state(e, r.offset, BLK));
	if (fd >= 0)
		close(fd);
	tap(!strcmp(got, "EBADF,kept"), "blk ioc_clear_rdonly: %s", got);

	/* ioc_clear_ro: nor may a clear on a device set read-only */
	ro = 1;
	rc = ioctl(e->fd, BLKROSET, &ro) ? -1 :
	     ioctl(e->fd, BGPMEM_IOC_CLEAR, &r) ? errno : 0;
	ro = 0;
	if (ioctl(e->fd, BLKROSET, &ro))
		diag("BLKROSET 0: %s", strerror(errno));
	snprintf(got, sizeof(got), "%s,%s", rc < 0 ? "BLKROSET-failed" :
		 err_name(rc), state(e, r.offset, BLK));
	tap(!strcmp(got, "EPERM,kept"), "blk ioc_clear_ro: %s", got);

	/* ioc_clear_dirty_cache: a dirty cached page does not come back */
	r.offset = area(81);
	fill(buf_a, BLK, 21);
	fd = open(e->dev, O_RDWR);
	zero = buf_b + BLK;
	memset(zero, 0, BLK);
	if (fd < 0 || pwrite(fd, buf_a, BLK, r.offset) != BLK) {
		snprintf(got, sizeof(got), "setup-failed");
	} else {
		rc = ioctl(e->fd, BGPMEM_IOC_CLEAR, &r) ? errno : 0;
		if (fsync(fd))
			diag("fsync: %s", strerror(errno));
		snprintf(got, sizeof(got), "%s,%s", err_name(rc),
			 pr(e, buf_b, BLK, r.offset) ? "read-failed" :
			 !memcmp(buf_b, zero, BLK) ? "zeroed" :
			 !memcmp(buf_b, buf_a, BLK) ? "stale-data" : "other-data");
	}
	if (fd >= 0)
		close(fd);
	tap(!strcmp(got, "OK,zeroed"), "blk ioc_clear_dirty_cache: %s", got);

	/*
	 * sysfs_pending_read: reads never take the driver's mutex (held
	 * across platform clears), so a read does not import a new sysfs
	 * badblocks entry (an import is a bgpmem_poison_set src=sysfs trace
	 * event, made under the mutex only; the driver's import work may
	 * make it, from a kworker) but still fails on its whole poison
	 * block; the whole-block write over it clears.
	 */
	r.offset = area(82);
	{
		char path[128], line[64], pat[64];
		int before, after, rr1, rr2, rw;

		snprintf(path, sizeof(path), "/sys/block/%s/badblocks",
			 e->disk);
		snprintf(line, sizeof(line), "%llu 1",
			 (unsigned long long)(r.offset + 1024) / 512);
		/* imports by this process (a read), not by the driver's work */
		snprintf(pat, sizeof(pat), "-%d +\\[.*src=sysfs", (int)getpid());
		before = sh_count(pat, "/sys/kernel/tracing/trace");
		write_file(path, line);
		rr1 = pr(e, buf_b, BLK, r.offset + BLK);	/* clean neighbour */
		rr2 = pr(e, buf_b, 512, r.offset);	/* same block */
		after = sh_count(pat, "/sys/kernel/tracing/trace");
		fill(buf_a, BLK, 22);
		rw = pw(e, buf_a, BLK, r.offset);
		snprintf(got, sizeof(got), "%s,%s,%s,%s,%s", err_name(rr1),
			 err_name(rr2), before < 0 ? "no-trace" :
			 after > before ? "imported-by-read" : "not-imported",
			 err_name(rw), state(e, r.offset, BLK));
	}
	tap(!strcmp(got, e->can_clear ? "OK,EIO,not-imported,OK,cleared" :
			 "OK,EIO,not-imported,EIO,kept"),
	    "blk sysfs_pending_read: %s", got);
}

/*
 * sysfs_pending_read_race: reads of a block with a new sysfs badblocks
 * entry, 16 tries, each after the neighbour's read scheduled the import
 * work: 16 reads 10 ms apart from 20 ms on, every one must fail. The
 * import clears the list's "changed" mark before it adds the records; a
 * read in between once found neither and returned the poisoned block's
 * data (the debug kernel, 3 runs in 4).
 * The fault build's import_delay holds the import in that gap for 200 ms,
 * so there the reads land in it (bgpmem_faults.sh); each try ends with a
 * LIST, which waits for the import, so the next one starts with none.
 * The neighbour's read runs on one CPU, the block's on another: the import
 * work runs where it was queued, so with bb_seq_storm its writes of the
 * list's seqlock race the read's lookup instead of taking turns with it.
 */
static void sysfs_race_case(struct env *e)
{
	char path[128], line[64], got[64];
	int i, r, ok = 0, first_bad = -1;
	cpu_set_t all, one, other;
	bool split = kml_cpu_split(&all, &one, &other);
	bool bad;

	snprintf(path, sizeof(path), "/sys/block/%s/badblocks", e->disk);
	for (i = 0; i < 16; i++) {
		uint64_t b = area(84) + i * BLK;

		snprintf(line, sizeof(line), "%llu 1",
			 (unsigned long long)(b + 1024) / 512);
		write_file(path, line);
		if (split)
			sched_setaffinity(0, sizeof(one), &one);
		pr(e, buf_b, 512, area(85));	/* clean: schedules the import */
		if (split)
			sched_setaffinity(0, sizeof(other), &other);
		usleep(20000);
		/* several lookups per gap: more chances to race a writer */
		for (r = 0, bad = 0; r < 16; r++, usleep(10000))
			bad |= pr(e, buf_b, 512, b) != EIO;
		if (!bad)
			ok++;
		else if (first_bad < 0)
			first_bad = i;
		/* LIST waits for the import: the next try starts with none */
		listed(e, b, BLK);
	}
	if (split)
		sched_setaffinity(0, sizeof(all), &all);
	if (e->can_clear)
		for (i = 0; i < 16; i++)
			pw(e, buf_a, BLK, area(84) + i * BLK);
	if (first_bad >= 0)
		diag("sysfs_pending_read_race: a read of try %d returned the poisoned block's data",
		     first_bad);
	snprintf(got, sizeof(got), "%d/16 EIO", ok);
	tap(ok == 16, "blk sysfs_pending_read_race: %s", got);
}

/*
 * bgpmem only: INFO on a partition describes the partition, as LIST, INJECT
 * and CLEAR do (offsets from its start): its size, its first byte's
 * physical address, and the records inside it (issue 15, defect 7: INFO
 * gave the partition's size beside the whole disk's records). An MBR with
 * one partition [7 MiB, 8 MiB) goes into sector 0 and is removed after.
 */
#define PART_START	(7ULL << 20)
#define PART_LEN	(1ULL << 20)

static void info_partition_case(struct env *e)
{
	char part[64], got[128], *mbr = buf_b, *save = buf_b + BLK;
	struct bgpmem_info whole, in;
	uint32_t lba = PART_START / 512, nsec = PART_LEN / 512;
	struct bgpmem_range r1 = { .offset = PART_START + 64 * 1024,
				   .len = BLK };
	struct bgpmem_range r2 = { .offset = PART_START + PART_LEN +
					     512 * 1024, .len = BLK };
	int fd = -1, i;

	snprintf(got, sizeof(got), "setup-failed");
	if (pr(e, save, 512, 0))
		goto out;
	memset(mbr, 0, 512);
	mbr[446 + 4] = 0x83;
	memcpy(mbr + 446 + 8, &lba, 4);
	memcpy(mbr + 446 + 12, &nsec, 4);
	mbr[510] = 0x55;
	mbr[511] = (char)0xaa;
	if (pw(e, mbr, 512, 0) || ioctl(e->fd, BLKRRPART))
		goto restore;
	snprintf(part, sizeof(part), "%sp1", e->dev);
	for (i = 0; i < 50 && fd < 0; i++) {
		fd = open(part, O_RDONLY);
		if (fd < 0)
			usleep(100000);
	}
	if (fd < 0 || ioctl(e->fd, BGPMEM_IOC_INJECT, &r1) ||
	    ioctl(e->fd, BGPMEM_IOC_INJECT, &r2) ||
	    ioctl(e->fd, BGPMEM_IOC_INFO, &whole) ||
	    ioctl(fd, BGPMEM_IOC_INFO, &in))
		goto restore;
	snprintf(got, sizeof(got), "%s,records=%llu,bytes=%llu,%s",
		 in.size == PART_LEN ? "size=part" :
		 in.size == whole.size ? "size=disk" : "size=other",
		 (unsigned long long)in.records,
		 (unsigned long long)in.poisoned_bytes,
		 in.phys_start == whole.phys_start + PART_START ?
		 "phys=part" : "phys=other");
	diag("info_partition: disk %llu bytes, %llu records; partition %llu bytes, %llu records",
	     (unsigned long long)whole.size,
	     (unsigned long long)whole.records,
	     (unsigned long long)in.size, (unsigned long long)in.records);
restore:
	if (fd >= 0)
		close(fd);
	if (pw(e, save, 512, 0) || ioctl(e->fd, BLKRRPART))
		diag("info_partition: could not remove the partition table");
	if (e->can_clear) {
		ioctl(e->fd, BGPMEM_IOC_CLEAR, &r1);
		ioctl(e->fd, BGPMEM_IOC_CLEAR, &r2);
	}
out:
	tap(!strcmp(got, "size=part,records=1,bytes=4096,phys=part"),
	    "blk info_partition: %s", got);
}

/* bgpmem only: sysfs badblocks, records at scale, rebind, 512 B blocks */
/*
 * The fastest of @rounds rounds of reads of the clean blocks between
 * records @first..@last - 1 of lookup_scaling_case()'s area (@off), in ns
 * per read.
 */
static double clean_read_ns(struct env *e, uint64_t off, int first, int last,
			    int rounds)
{
	uint64_t best = UINT64_MAX, t0, t;
	int i, k;

	for (k = 0; k < rounds; k++) {
		t0 = kml_now_ns();
		for (i = first; i < last; i++)
			pr(e, buf_b, BLK, off + (2 * i + 1) * BLK);
		t = kml_now_ns() - t0;
		if (t < best)
			best = t;
	}
	return (double)best / (last - first);
}

/*
 * lookup_scaling: the records are a tree, so a read next to poison costs
 * O(log n) whatever its place. Injects @nrec records, 4 KiB every 8 KiB
 * from @off, the last 10 first. Reads of the clean blocks between the
 * last records, in the 2 MiB chunk of the very last one (a chunk with
 * records: every read looks the records up), timed with those 10 records
 * and again with all @nrec: the fastest of 5 rounds each. The reads are
 * at the end of the set, where an O(n) walk from its start (the fault
 * build's linear_lookup) costs the most; the bound is 3x, above the
 * noise of a loaded host.
 */
static void lookup_scaling_case(struct env *e, uint64_t off, int nrec)
{
	uint64_t chunk = (off + 2 * (nrec - 1) * BLK) & ~((2ULL << 20) - 1);
	int i, n, first = nrec - 100;
	double few, many;

	/* the clean blocks read must be in the last record's chunk */
	while (off + (2 * first + 1) * BLK < chunk)
		first++;
	for (i = nrec - 10, n = 0; i < nrec; i++) {
		struct bgpmem_range r = { .offset = off + 2 * i * BLK,
					  .len = BLK };

		n += !ioctl(e->fd, BGPMEM_IOC_INJECT, &r);
	}
	clean_read_ns(e, off, first, nrec - 1, 1);	/* warm up */
	few = clean_read_ns(e, off, first, nrec - 1, 5);
	for (i = 0; i < nrec - 10; i++) {
		struct bgpmem_range r = { .offset = off + 2 * i * BLK,
					  .len = BLK };

		n += !ioctl(e->fd, BGPMEM_IOC_INJECT, &r);
	}
	many = clean_read_ns(e, off, first, nrec - 1, 5);
	tap(n == nrec && many < 3 * few,
	    "blk lookup_scaling: a read next to poison with %d records takes %.2fx its time with 10 (%.1f vs %.1f us, %d reads; bound 3x)",
	    n, many / few, many / 1e3, few / 1e3, nrec - 1 - first);
}

static void record_cases(struct env *e)
{
	char path[128], got[64], want[64];
	uint64_t off = area(40), t;
	struct bgpmem_info in;
	int i, rc, nrec;

	/* sysfs_badblocks: one sector becomes the whole block */
	snprintf(path, sizeof(path), "/sys/block/%s/badblocks", e->disk);
	snprintf(got, sizeof(got), "%llu 1",
		 (unsigned long long)(off + 1024) / 512);
	write_file(path, got);
	rc = pr(e, buf_b, 512, off);	/* another sector of that block */
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, off, BLK));
	cell(e, "sysfs_badblocks", got, "EIO,kept");

	/* inject_rebind: 1 byte at +5000 -> [4K, 8K), survives unbind/bind */
	off = area(41);
	{
		struct bgpmem_range r = { .offset = off + 5000, .len = 1 };

		ioctl(e->fd, BGPMEM_IOC_INJECT, &r);
	}
	env_close(e);
	bind_to("nd_pmem");
	rc = env_open(e, true, e->can_clear);
	snprintf(got, sizeof(got), "%s,%s,%s", rc ? "rebind-failed" : "OK",
		 state(e, off + BLK, BLK), state(e, off, BLK));
	cell(e, "inject_rebind", got, "OK,kept,cleared");

	/*
	 * many_records: 10,000 separated records (4 KiB every 8 KiB from
	 * 9 MiB, past the other cases), each enforced; fewer where the
	 * namespace is smaller (nfit_test: 32 MiB), but always well past the
	 * 512 ranges of the standard badblocks list.
	 */
	off = 2304 * BLK;
	nrec = 10000;
	if (e->size < off + 2 * nrec * BLK)
		nrec = e->size > off ? (e->size - off) / (2 * BLK) : 0;
	if (nrec < 2048) {
		tap_skip("blk many_records", "namespace too small for 2048 records");
		tap_skip("blk sysfs_write_many_records", "namespace too small for 2048 records");
		tap_skip("blk many_records_clear", "namespace too small for 2048 records");
		tap_skip("blk lookup_scaling", "namespace too small for 2048 records");
		return;
	}
	diag("many_records: %d records", nrec);
	ioctl(e->fd, BGPMEM_IOC_INFO, &in);
	t = in.records;
	lookup_scaling_case(e, off, nrec);
	ioctl(e->fd, BGPMEM_IOC_INFO, &in);
	rc = 0;
	for (i = 0; i < nrec; i += 997) {
		if (pr(e, buf_b, BLK, off + 2 * i * BLK) != EIO)
			rc = 1;
		if (pr(e, buf_b, BLK, off + (2 * i + 1) * BLK))
			rc = 1;
	}
	snprintf(got, sizeof(got), "%llu,%s",
		 (unsigned long long)(in.records - t),
		 rc ? "not-enforced" : "enforced");
	snprintf(want, sizeof(want), "%d,enforced", nrec);
	cell(e, "many_records", got, want);

	/*
	 * sysfs_write_many_records: with more records than the badblocks
	 * list holds, a line written to /sys/block/X/badblocks is still
	 * accepted and enforced (the driver keeps room in the list for it)
	 */
	{
		uint64_t b = area(83);
		char line[64];
		int wr, rr;

		snprintf(line, sizeof(line), "%llu 8",
			 (unsigned long long)b / 512);
		wr = write_file(path, line);
		rr = pr(e, buf_b, BLK, b);
		snprintf(got, sizeof(got), "%s,%s",
			 wr ? err_name(-wr) : "OK", err_name(rr));
		cell(e, "sysfs_write_many_records", got, "OK,EIO");
		/* many_records_clear counts the records since t: not this */
		if (!wr)
			t++;
	}
	{
		struct bgpmem_range r = { .offset = off,
					  .len = 2ULL * nrec * BLK };

		rc = ioctl(e->fd, BGPMEM_IOC_CLEAR, &r) ? errno : 0;
		ioctl(e->fd, BGPMEM_IOC_INFO, &in);
		snprintf(got, sizeof(got), "%s,%llu", err_name(rc),
			 (unsigned long long)(in.records - t));
		snprintf(want, sizeof(want), "%s,%d",
			 e->can_clear ? "OK" : "EOPNOTSUPP",
			 e->can_clear ? 0 : nrec);
		cell(e, "many_records_clear", got, want);
	}
}

/*
 * nfit_test only: poison through the bus's real ARS inject DSM, a scrub
 * reads it into the records, a whole-block write clears it through the
 * real clear-error DSM and the platform forgets it.
 */
static void platform_case(struct env *e)
{
	const char *bin = getenv("KMEMLAB_BIN");
	uint64_t blk = area(70);
	char got[96], s1[16], s2[16];
	int rc;

	if (!nfit_test_flavor) {
		tap_skip("blk platform_inject_scrub",
			 "needs a bus with ARS inject (nfit_test)");
		return;
	}
	if (!bin)
		bin = "build/bin";
	if (sh("ndctl inject-error -B %llu -n 8 %s >/dev/null 2>&1",
	       (unsigned long long)blk / 512, ns_name) ||
	    sh("%s/bgpmemctl -q scrub %s >/dev/null", bin, e->disk)) {
		tap(false, "blk platform_inject_scrub: ndctl inject-error or scrub failed");
		return;
	}
	snprintf(s1, sizeof(s1), "%s", state(e, blk, BLK));
	fill(buf_a, BLK, 21);
	rc = pw(e, buf_a, BLK, blk);
	snprintf(s2, sizeof(s2), "%s", state(e, blk, BLK));
	/* a second scrub must not bring it back: the platform forgot it */
	sh("%s/bgpmemctl -q scrub %s >/dev/null", bin, e->disk);
	snprintf(got, sizeof(got), "%s,%s,%s,%s", s1, err_name(rc), s2,
		 strcmp(state(e, blk, BLK), "cleared") ? "platform-bad" :
		 "platform-clean");
	cell(e, "platform_inject_scrub", got, "kept,OK,cleared,platform-clean");
}

/*
 * nfit_test only: bus poison found by a scrub becomes a record when the
 * 512-range badblocks mirror is full (600 separated injected records). A
 * driver that reads the bus into its mirror loses it there.
 */
static void platform_mirror_full_case(struct env *e)
{
	const char *bin = getenv("KMEMLAB_BIN");
	uint64_t blk = area(71), off = 2304 * BLK;
	char got[96], full[16], s1[16];
	int i, rc, nrec = 600;

	if (!nfit_test_flavor) {
		tap_skip("blk platform_scrub_mirror_full",
			 "needs a bus with ARS inject (nfit_test)");
		return;
	}
	if (!bin)
		bin = "build/bin";
	for (i = 0; i < nrec; i++) {
		struct bgpmem_range r = { .offset = off + 2 * i * BLK,
					  .len = BLK };

		if (ioctl(e->fd, BGPMEM_IOC_INJECT, &r))
			break;
	}
	snprintf(full, sizeof(full), "%s", i == nrec &&
		 sysfs_u64(e->disk, "badblocks_overflow") == 1 ?
		 "mirror-full" : "mirror-not-full");
	if (sh("ndctl inject-error -B %llu -n 8 %s >/dev/null 2>&1",
	       (unsigned long long)blk / 512, ns_name) ||
	    sh("%s/bgpmemctl -q scrub %s >/dev/null", bin, e->disk)) {
		tap(false, "blk platform_scrub_mirror_full: ndctl inject-error or scrub failed");
		return;
	}
	snprintf(s1, sizeof(s1), "%s", state(e, blk, BLK));
	/* leave no poison: the platform clears the block, then the records */
	fill(buf_a, BLK, 22);
	rc = pw(e, buf_a, BLK, blk);
	{
		struct bgpmem_range r = { .offset = off,
					  .len = 2ULL * nrec * BLK };

		if (ioctl(e->fd, BGPMEM_IOC_CLEAR, &r))
			rc = rc ? rc : errno;
	}
	snprintf(got, sizeof(got), "%s,%s,%s", full, s1, err_name(rc));
	cell(e, "platform_scrub_mirror_full", got, "mirror-full,kept,OK");
}

/*
 * Fault build only: environment failures the driver must survive, injected
 * at run time on top of the loaded fault list (issue 15, defect 3). The
 * flush after a platform clear fails (virtio-pmem can fail it): the write
 * fails and the record stays. The node that a whole-block write inside a
 * larger record needs for the split cannot be allocated: the write fails
 * before the platform clear and every block stays poisoned (the code
 * before the fix wrote the block and lost the record's tail).
 */
static void fault_injection_cases(struct env *e)
{
	char cur[128], with[160], got[96], s1[16], s2[16], s3[16];
	uint64_t a, many = 2304 * BLK;
	int i, rc, rc2, rr, h0, h1;
	bool full;

	if (!e->can_clear) {
		tap_skip("blk blk_write_flush_fails", noclear_why);
		tap_skip("blk blk_write_split_nomem", noclear_why);
		return;
	}
	if (read_file(FAULT_PARAM, cur, sizeof(cur)))
		snprintf(cur, sizeof(cur), "none");
	cur[strcspn(cur, "\n")] = 0;

	/* blk_write_flush_fails */
	a = area(90);
	fill(buf_a, 4 * BLK, 31);
	pw(e, buf_a, 4 * BLK, a);
	poison(e, a + BLK, BLK);
	snprintf(with, sizeof(with), "%s%sflush_eio",
		 strcmp(cur, "none") ? cur : "", strcmp(cur, "none") ? "," : "");
	h0 = fault_hits();
	rc = write_file(FAULT_PARAM, with) ? -1 : pw(e, buf_a, BLK, a + BLK);
	h1 = fault_hits();
	write_file(FAULT_PARAM, cur);
	snprintf(s1, sizeof(s1), "%s", state(e, a + BLK, BLK));
	rc2 = pw(e, buf_a, BLK, a + BLK);
	snprintf(got, sizeof(got), "%s,%s,%s,%s%s",
		 rc < 0 ? "set-failed" : err_name(rc), s1, err_name(rc2),
		 state(e, a + BLK, BLK), h1 > h0 ? "" : ",not-injected");
	cell(e, "blk_write_flush_fails", got, "EIO,kept,OK,cleared");

	/*
	 * blk_write_split_nomem: the middle block of a 3-block record, with
	 * the badblocks mirror full (600 separated records), so that it
	 * cannot hand a lost record back: before the fix the driver wrote the
	 * block and lost the tail [a + 2 BLK, a + 3 BLK) (OK,kept,cleared,
	 * cleared,OK); with room in the mirror the next I/O re-imported it
	 */
	for (i = 0; i < 600; i++) {
		struct bgpmem_range r = { .offset = many + 2 * i * BLK,
					  .len = BLK };

		if (ioctl(e->fd, BGPMEM_IOC_INJECT, &r))
			break;
	}
	full = i == 600 && sysfs_u64(e->disk, "badblocks_overflow") == 1;
	a = area(91);
	fill(buf_a, 4 * BLK, 32);
	pw(e, buf_a, 4 * BLK, a);
	poison(e, a, 3 * BLK);
	snprintf(with, sizeof(with), "%s%snomem_io",
		 strcmp(cur, "none") ? cur : "", strcmp(cur, "none") ? "," : "");
	h0 = fault_hits();
	rc = write_file(FAULT_PARAM, with) ? -1 : pw(e, buf_a, BLK, a + BLK);
	h1 = fault_hits();
	write_file(FAULT_PARAM, cur);
	snprintf(s1, sizeof(s1), "%s", state(e, a, BLK));
	snprintf(s2, sizeof(s2), "%s", state(e, a + BLK, BLK));
	snprintf(s3, sizeof(s3), "%s", state(e, a + 2 * BLK, BLK));
	rr = pr(e, buf_b, BLK, a + 2 * BLK);
	snprintf(got, sizeof(got), "%s,%s,%s,%s,%s,%s",
		 full ? "mirror-full" : "mirror-not-full",
		 rc < 0 ? "set-failed" : err_name(rc), s1, s2, s3,
		 err_name(rr));
	/* without the fault the same write clears the block alone */
	rc2 = pw(e, buf_a, BLK, a + BLK);
	snprintf(got + strlen(got), sizeof(got) - strlen(got),
		 ",%s,%s,%s,%s%s", err_name(rc2), state(e, a, BLK),
		 state(e, a + BLK, BLK), state(e, a + 2 * BLK, BLK),
		 h1 > h0 ? "" : ",not-injected");
	cell(e, "blk_write_split_nomem", got,
	     "mirror-full,EIO,kept,kept,kept,EIO,OK,kept,cleared,kept");
	{
		struct bgpmem_range r = { .offset = many,
					  .len = 2ULL * 600 * BLK };

		if (ioctl(e->fd, BGPMEM_IOC_CLEAR, &r))
			diag("clearing the 600 records: %s", strerror(errno));
	}
}

/* concurrent clean I/O while another thread injects and clears */
struct conc {
	struct env *e;
	volatile bool stop;
	long errors, ops, toggles, cerrors;
};

static void *conc_io(void *arg)
{
	struct conc *c = arg;
	char *b;
	long i = 0;

	if (posix_memalign((void **)&b, BLK, 2 * BLK))
		return NULL;
	while (!c->stop) {
		uint64_t off = (1024 + (i * 37) % 512) * BLK;

		fill(b, BLK, (int)i);
		if (pw(c->e, b, BLK, off) || pr(c->e, b + BLK, BLK, off) ||
		    memcmp(b, b + BLK, BLK))
			c->errors++;
		c->ops++;
		i++;
	}
	free(b);
	return NULL;
}

static void *conc_poison(void *arg)
{
	struct conc *c = arg;
	long i = 0;

	while (!c->stop) {
		struct bgpmem_range r = { .offset = (2048 + i % 64) * BLK,
					  .len = BLK };

		if (ioctl(c->e->fd, BGPMEM_IOC_INJECT, &r))
			c->cerrors++;
		if (c->e->can_clear && ioctl(c->e->fd, BGPMEM_IOC_CLEAR, &r))
			c->cerrors++;
		c->toggles++;
		i++;
	}
	return NULL;
}

static void concurrency_case(struct env *e)
{
	struct conc c = { .e = e };
	pthread_t a, b;

	pthread_create(&a, NULL, conc_io, &c);
	pthread_create(&b, NULL, conc_poison, &c);
	sleep(opt_stress_secs);
	c.stop = true;
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	diag("concurrent: %d s, %ld clean I/Os, %ld inject/clear rounds",
	     opt_stress_secs, c.ops, c.toggles);
	tap(!c.errors && !c.cerrors && c.ops && c.toggles,
	    "blk concurrent_inject_clear: %ld I/O errors, %ld poison op errors",
	    c.errors, c.cerrors);
}

/* poison_block_size=512 (module parameter): a 512 B write is a whole block */
static void pbs512_case(struct env *e)
{
	char got[64];
	uint64_t blk = area(60);
	int rc;

	env_close(e);
	sh("rmmod bgpmem");
	bind_to("nd_pmem");
	if (load_bgpmem("poison_block_size=512") || env_open(e, true, e->can_clear)) {
		tap(false, "blk pbs512_write_whole: cannot load with poison_block_size=512");
		return;
	}
	poison(e, blk + 700, 1);		/* -> [512, 1024) */
	rc = pw(e, buf_a, 512, blk + 512);
	snprintf(got, sizeof(got), "%llu,%s,%s,%s",
		 (unsigned long long)sysfs_u64(e->disk, "poison_block_size"),
		 err_name(rc), state(e, blk + 512, 512), state(e, blk, 512));
	cell(e, "pbs512_write_whole", got,
	     e->can_clear ? "512,OK,cleared,cleared" : "512,EIO,kept,cleared");
}

/* ---- DAX file cases ---------------------------------------------------- */

static uint64_t file_phys(int fd, uint64_t off)
{
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[32];
	} f;
	unsigned int i;

	memset(&f, 0, sizeof(f));
	f.fm.fm_start = 0;
	f.fm.fm_length = ~0ULL;
	f.fm.fm_flags = FIEMAP_FLAG_SYNC;
	f.fm.fm_extent_count = 32;
	if (ioctl(fd, FS_IOC_FIEMAP, &f.fm))
		return UINT64_MAX;
	for (i = 0; i < f.fm.fm_mapped_extents; i++) {
		struct fiemap_extent *x = &f.ext[i];

		if (off >= x->fe_logical && off < x->fe_logical + x->fe_length)
			return x->fe_physical + off - x->fe_logical;
	}
	return UINT64_MAX;
}

/* a 64 KiB file with block 2 poisoned; returns fd, *phys the block */
static int pfile(struct env *e, const char *name, uint64_t *phys)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), MNT "/%s", name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	fill(buf_a, 16 * BLK, 11);
	if (pwrite(fd, buf_a, 16 * BLK, 0) != 16 * BLK || fsync(fd)) {
		close(fd);
		return -1;
	}
	*phys = file_phys(fd, 2 * BLK);
	if (*phys == UINT64_MAX || poison(e, *phys, BLK)) {
		close(fd);
		return -1;
	}
	return fd;
}

static sigjmp_buf bus_jmp;
static volatile int bus_code;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	bus_code = si->si_code;
	siglongjmp(bus_jmp, 1);
}

/* load @p in a child; "OK" or "SIGBUS(code)" */
static const char *touch(volatile char *p, bool hwpoison)
{
	static char out[32];
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		struct sigaction sa = { .sa_sigaction = on_bus,
					.sa_flags = SA_SIGINFO };

		sigaction(SIGBUS, &sa, NULL);
		if (sigsetjmp(bus_jmp, 1))
			_exit(10 + bus_code);
		if (hwpoison &&
		    madvise((void *)((uintptr_t)p & ~(BLK - 1)), BLK,
			    MADV_HWPOISON))
			_exit(2);
		(void)*p;
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return "child-died";
	switch (WEXITSTATUS(status)) {
	case 0:
		return "OK";
	case 2:
		return "madvise-failed";
	case 10 + BUS_ADRERR:
		return "SIGBUS(BUS_ADRERR)";
	case 10 + BUS_MCEERR_AR:
		return "SIGBUS(BUS_MCEERR_AR)";
	default:
		snprintf(out, sizeof(out), "exit%d", WEXITSTATUS(status));
		return out;
	}
}

/*
 * A source buffer whose first touch waits on a userfaultfd handler that,
 * meanwhile, adds sysfs poison elsewhere and reads the device: a driver
 * that copies from the buffer with its poison lock held waits for the
 * handler, whose read waits for that lock.
 */
struct fault_src {
	struct env *e;
	int uffd, stop[2];
	char *buf;		/* BLK, registered for missing pages */
	char data[BLK];		/* what the handler fills it with */
	char bb[64];		/* sysfs badblocks line */
	int faults;
};

static void *fault_src_handler(void *arg)
{
	struct fault_src *f = arg;
	char path[128], *io;

	snprintf(path, sizeof(path), "/sys/block/%s/badblocks", f->e->disk);
	if (posix_memalign((void **)&io, BLK, BLK))
		return NULL;
	for (;;) {
		struct pollfd p[2] = { { .fd = f->uffd, .events = POLLIN },
				       { .fd = f->stop[0], .events = POLLIN } };
		struct uffdio_copy cp = { .len = BLK };
		struct uffd_msg msg;

		if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
			break;
		if (read(f->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
		    msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		if (!f->faults++) {
			write_file(path, f->bb);
			pr(f->e, io, BLK, 0);
		}
		cp.dst = msg.arg.pagefault.address & ~(BLK - 1);
		cp.src = (uintptr_t)f->data;
		ioctl(f->uffd, UFFDIO_COPY, &cp);
	}
	free(io);
	return NULL;
}

/*
 * In the child: pwrite BLK bytes at @pos of @fd from a fault_src buffer.
 * Return: errno or 0, -1 when the set-up failed.
 */
static int fault_src_do_pwrite(struct env *e, int fd, uint64_t pos,
			       uint64_t bad_sector, int *faults)
{
	struct fault_src f = { .e = e, .stop = { -1, -1 } };
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	pthread_t t;
	ssize_t n;
	int rc = -1;

	fill(f.data, BLK, 13);
	snprintf(f.bb, sizeof(f.bb), "%llu 1\n",
		 (unsigned long long)bad_sector);
	f.uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	f.buf = mmap(NULL, BLK, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	reg.range.start = (uintptr_t)f.buf;
	reg.range.len = BLK;
	if (f.uffd < 0 || f.buf == MAP_FAILED || pipe(f.stop) ||
	    ioctl(f.uffd, UFFDIO_API, &api) ||
	    ioctl(f.uffd, UFFDIO_REGISTER, &reg) ||
	    pthread_create(&t, NULL, fault_src_handler, &f))
		goto out;
	n = pwrite(fd, f.buf, BLK, pos);
	rc = n == BLK ? 0 : n < 0 ? errno : EIO;
	if (write(f.stop[1], "x", 1) != 1)
		pthread_cancel(t);
	pthread_join(t, NULL);
	*faults = f.faults;
out:
	if (rc < 0)
		diag("userfaultfd set-up failed: %s", strerror(errno));
	return rc;
}

/* a pwrite of one block normally takes milliseconds, also under TCG */
#define FAULT_SRC_DEADLINE_S	30

/* what the kernel says the stuck tasks wait for, into the log */
static void dump_stuck(pid_t pid)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd),
		 "for t in /proc/%d/task/*; do echo \"== $t $(cat $t/comm) $(grep State: $t/status)\"; cat $t/stack; done 2>&1 | sed 's/^/#   /'",
		 (int)pid);
	if (system(cmd))
		diag("cannot read the stacks of %d", (int)pid);
	/* blocked tasks (and, with lockdep, the locks held) to the console */
	write_file("/proc/sysrq-trigger", "w");
}

/*
 * pwrite BLK bytes at @pos of @fd from a fault_src buffer: errno or 0, -1
 * when the set-up failed; @data gets what was written.
 *
 * The pwrite runs in a child, and the parent waits for it at most
 * FAULT_SRC_DEADLINE_S: a driver that waits for the handler while the
 * handler waits for the driver leaves tasks that cannot be killed, and
 * the test must say so at once, not 120 s later through the hung-task
 * panic. The child's stdout and stderr are not the runner's: a stuck child
 * must not keep the runner waiting for the end of the output.
 */
static int fault_src_pwrite(struct env *e, int fd, uint64_t pos,
			    uint64_t bad_sector, char *data, int *faults)
{
	struct { int rc, faults; } res = { -1, 0 };
	struct pollfd p;
	int pfd[2], rc;
	pid_t pid;

	fill(data, BLK, 13);
	if (pipe(pfd))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		close(pfd[0]);
		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		res.rc = fault_src_do_pwrite(e, fd, pos, bad_sector,
					     &res.faults);
		_exit(write(pfd[1], &res, sizeof(res)) == sizeof(res) ? 0 : 1);
	}
	close(pfd[1]);
	p = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
	rc = poll(&p, 1, FAULT_SRC_DEADLINE_S * 1000);
	if (rc == 1 && read(pfd[0], &res, sizeof(res)) == sizeof(res)) {
		close(pfd[0]);
		waitpid(pid, NULL, 0);
		*faults = res.faults;
		return res.rc;
	}
	close(pfd[0]);
	if (rc == 0) {
		diag("the pwrite from a userfaultfd buffer did not return in %d s: a deadlock between the driver and the fault handler; stacks:",
		     FAULT_SRC_DEADLINE_S);
		dump_stuck(pid);
		kill(pid, SIGKILL);
		return -2;
	}
	waitpid(pid, NULL, 0);
	return -1;
}

static void dax_cases(struct env *e)
{
	bool xfs = !strcmp(e->fs, "xfs");
	uint64_t phys;
	char got[96];
	int fd, rc;
	ssize_t n;

	/* dax_read */
	fd = pfile(e, "read", &phys);
	n = pread(fd, buf_b, BLK, 2 * BLK);
	snprintf(got, sizeof(got), "%s", err_name(n < 0 ? errno : 0));
	cell(e, "dax_read", got, "EIO");
	close(fd);

	/* dax_write_partial */
	fd = pfile(e, "wpart", &phys);
	n = pwrite(fd, buf_a, 512, 2 * BLK + 512);
	snprintf(got, sizeof(got), "%s,%s", err_name(n < 0 ? errno : 0),
		 state(e, phys, BLK));
	cell(e, "dax_write_partial", got,
	     e->can_clear ? "EFAULT,kept" : "EIO,kept");
	close(fd);

	/* dax_write_whole */
	fd = pfile(e, "wwhole", &phys);
	fill(buf_a, BLK, 12);
	n = pwrite(fd, buf_a, BLK, 2 * BLK);
	snprintf(got, sizeof(got), "%s,%s", err_name(n < 0 ? errno : 0),
		 state(e, phys, BLK));
	if (n == BLK && (pread(fd, buf_b, BLK, 2 * BLK) != BLK ||
			 memcmp(buf_a, buf_b, BLK)))
		strcat(got, ",bad-data");
	cell(e, "dax_write_whole", got,
	     e->can_clear ? "OK,cleared" : "EIO,kept");
	close(fd);

	/*
	 * dax_write_fault_src: the same from a buffer whose page fault waits
	 * for I/O to the device (a userfaultfd handler that writes a sysfs
	 * badblocks line for block 5, then reads the device)
	 */
	fd = pfile(e, "wfault", &phys);
	{
		uint64_t bad = file_phys(fd, 5 * BLK);
		int faults = 0;

		rc = bad == UINT64_MAX ? -1 :
		     fault_src_pwrite(e, fd, 2 * BLK, bad / 512, buf_a,
				      &faults);
		if (rc == -2) {
			/* the device is wedged: nothing after this can run */
			cell(e, "dax_write_fault_src", "HUNG",
			     e->can_clear ? "OK,cleared" : "EIO,kept");
			printf("Bail out! %s dax_write_fault_src: the pwrite hung (deadline %d s)\n",
			       e->fs, FAULT_SRC_DEADLINE_S);
			fflush(NULL);
			_exit(1);
		}
		snprintf(got, sizeof(got), "%s,%s",
			 rc < 0 ? "setup-failed" : err_name(rc),
			 state(e, phys, BLK));
		if (!rc && (pread(fd, buf_b, BLK, 2 * BLK) != BLK ||
			    memcmp(buf_a, buf_b, BLK)))
			strcat(got, ",bad-data");
		if (!rc && !faults)
			strcat(got, ",no-fault");
	}
	cell(e, "dax_write_fault_src", got,
	     e->can_clear ? "OK,cleared" : "EIO,kept");
	close(fd);

	/* dax_mmap_read */
	fd = pfile(e, "mmap", &phys);
	{
		char *m = mmap(NULL, 16 * BLK, PROT_READ, MAP_SHARED, fd, 0);

		snprintf(got, sizeof(got), "%s",
			 m == MAP_FAILED ? "mmap-failed" :
			 touch(m + 2 * BLK + 8, false));
		if (m != MAP_FAILED)
			munmap(m, 16 * BLK);
	}
	cell(e, "dax_mmap_read", got, "SIGBUS(BUS_MCEERR_AR)");
	close(fd);

	/* dax_zero_range_partial */
	fd = pfile(e, "zpart", &phys);
	rc = fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		       2 * BLK + 100, 200) ? errno : 0;
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, phys, BLK));
	cell(e, "dax_zero_range_partial", got, "EIO,kept");
	close(fd);

	/* dax_zero_range_whole: the fs does not call the driver */
	fd = pfile(e, "zwhole", &phys);
	rc = fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		       2 * BLK, BLK) ? errno : 0;
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, phys, BLK));
	cell(e, "dax_zero_range_whole", got, "OK,kept");
	close(fd);

	/* dax_punch_hole then rewrite: a new block; the record stays */
	fd = pfile(e, "punch", &phys);
	rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       2 * BLK, BLK) ? errno : 0;
	if (!rc)
		rc = pwrite(fd, buf_a, BLK, 2 * BLK) == BLK && !fsync(fd) ?
		     0 : errno;
	snprintf(got, sizeof(got), "%s,%s", err_name(rc), state(e, phys, BLK));
	cell(e, "dax_punch_hole", got, "OK,kept");
	close(fd);

	/* dax_truncate_mid: `truncate -s 23` over a poisoned first block */
	{
		char path[128];

		snprintf(path, sizeof(path), MNT "/foo.txt");
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		fill(buf_a, BLK, 13);
		if (fd >= 0 && pwrite(fd, buf_a, 2 * BLK, 0) == 2 * BLK &&
		    !fsync(fd)) {
			phys = file_phys(fd, 0);
			poison(e, phys, BLK);
			rc = ftruncate(fd, 23) ? errno : 0;
			snprintf(got, sizeof(got), "%s,%s", err_name(rc),
				 state(e, phys, BLK));
		} else {
			snprintf(got, sizeof(got), "setup-failed");
		}
		if (fd >= 0)
			close(fd);
	}
	cell(e, "dax_truncate_mid", got, xfs ? "EIO,kept" : "OK,kept");

	/*
	 * dax_madv_hwpoison: memory_failure on a DAX page. nfit_test's DAX
	 * pages are the vmalloc'ed pages behind its fake physical addresses,
	 * not ZONE_DEVICE pages: memory_failure would poison a kernel page
	 * and never reach the driver.
	 */
	if (nfit_test_flavor) {
		char name[64];

		snprintf(name, sizeof(name), "%s dax_madv_hwpoison", e->fs);
		if (e->bgp)
			tap_skip(name, "nfit_test DAX pages are vmalloc pages, not ZONE_DEVICE (no memory_failure path to the driver)");
		return;
	}
	{
		char path[128];
		char *m;

		snprintf(path, sizeof(path), MNT "/hwp");
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		fill(buf_a, 4 * BLK, 14);
		if (fd < 0 || pwrite(fd, buf_a, 4 * BLK, 0) != 4 * BLK ||
		    fsync(fd)) {
			snprintf(got, sizeof(got), "setup-failed");
		} else {
			phys = file_phys(fd, BLK);
			m = mmap(NULL, 4 * BLK, PROT_READ, MAP_SHARED, fd, 0);
			if (m == MAP_FAILED) {
				snprintf(got, sizeof(got), "mmap-failed");
			} else {
				const char *sig;

				(void)*(volatile char *)(m + BLK);
				sig = touch(m + BLK, true);
				snprintf(got, sizeof(got), "%s,%s", sig,
					 state(e, phys, BLK));
				munmap(m, 4 * BLK);
			}
		}
		if (fd >= 0)
			close(fd);
	}
	cell(e, "dax_madv_hwpoison", got,
	     e->bgp ? "SIGBUS(BUS_MCEERR_AR),kept" : "");
}

static const char * const dax_names[] = {
	"dax_read", "dax_write_partial", "dax_write_whole",
	"dax_write_fault_src", "dax_mmap_read",
	"dax_zero_range_partial", "dax_zero_range_whole", "dax_punch_hole",
	"dax_truncate_mid", "dax_madv_hwpoison",
};

static int mount_fs(struct env *e, const char *fs)
{
	struct statx stx;
	int fd;

	e->fs = fs;
	sh("umount " MNT " 2>/dev/null");
	mkdir(MNT, 0700);
	if (!strcmp(fs, "ext4")) {
		if (sh("mkfs.ext4 -q -F -b 4096 %s >/dev/null 2>&1", e->dev))
			return -1;
	} else if (sh("%smkfs.xfs -q -f -m reflink=0 %s >/dev/null 2>&1",
		      /* nfit_test: under mkfs.xfs's 300 MB minimum */
		      e->size < (300ULL << 20) ?
		      "TEST_DIR=/tmp TEST_DEV=x QA_CHECK_FS=1 " : "",
		      e->dev)) {
		return -1;
	}
	if (sh("mount -t %s -o dax %s " MNT, fs, e->dev))
		return -1;
	fd = open(MNT "/probe", O_RDWR | O_CREAT, 0600);
	if (fd < 0 || statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) ||
	    !(stx.stx_attributes & STATX_ATTR_DAX)) {
		if (fd >= 0)
			close(fd);
		sh("umount " MNT);
		return 1;	/* mounted, but no DAX */
	}
	close(fd);
	return 0;
}

static void umount_fs(struct env *e)
{
	sh("umount " MNT " 2>/dev/null");
	e->fs = NULL;
}

/* ---- setup ------------------------------------------------------------- */

#define N_RAW		10
#define N_BAD		9	/* bad input 3, clear ioctl 4, info, race */
#define N_REC		6
#define N_MISC		6	/* platform x2, concurrency, pbs512, unload_busy, cycles */
#define N_DAX		10	/* dax_names[] */
/* bgpmem and nd_pmem raw cells, the rest bgpmem only */
#define N_PLAN		(2 * N_RAW + N_BAD + N_REC + N_MISC + 2 * N_DAX + 1)

/* the first namespace with a size in a writable region */
static int find_namespace(void)
{
	char path[128], buf[64];
	int r, i;

	for (r = 0; r < 8; r++) {
		/*
		 * nfit_test.1's region2 is read-only: every write would fail
		 * with EPERM (it came first once this test's own nfit_test
		 * labelling had left namespace0.0 without a size)
		 */
		snprintf(path, sizeof(path), ND "/devices/region%d/read_only", r);
		if (read_file(path, buf, sizeof(buf)) || buf[0] != '0')
			continue;
		for (i = 0; i < 4; i++) {
			snprintf(path, sizeof(path),
				 ND "/devices/namespace%d.%d/size", r, i);
			if (read_file(path, buf, sizeof(buf)) ||
			    !strtoull(buf, NULL, 0))
				continue;
			snprintf(ns_name, sizeof(ns_name), "namespace%d.%d",
				 r, i);
			snprintf(bind_dev, sizeof(bind_dev), "%s", ns_name);
			return 0;
		}
	}
	return -1;
}

/* QEMU NFIT and CXL raw namespaces have no struct pages: make it fsdax */
/*
 * nfit_test's DIMMs come up without labels, and ndctl cannot label a DIMM
 * whose region is active ("failed to initialize labels"): give the bus
 * labels first, as ndctl's own tests do, then create an fsdax namespace in
 * the region of ns_name. Undone by nfit_test_unlabel().
 */
static bool nfit_test_labelled;
static char nt_region[32];
#define NT_BUS	"-b nfit_test.0"

static int nfit_test_fsdax(void)
{
	char *region = nt_region, out[1024], *p;
	unsigned int r;

	if (sscanf(ns_name, "namespace%u.", &r) != 1)
		return -1;
	snprintf(region, sizeof(nt_region), "region%u", r);
	if (sh("ndctl disable-region " NT_BUS " all >/dev/null 2>&1") ||
	    sh("ndctl init-labels -f " NT_BUS " all >/dev/null 2>&1") ||
	    sh("ndctl enable-region " NT_BUS " all >/dev/null 2>&1"))
		return -1;
	nfit_test_labelled = true;
	if (sh("ndctl create-namespace -r %s -m fsdax --map=mem >/tmp/bgp-ns.json 2>/dev/null",
	       region) ||
	    read_file("/tmp/bgp-ns.json", out, sizeof(out)))
		return -1;
	unlink("/tmp/bgp-ns.json");
	p = strstr(out, "\"dev\":\"");
	if (!p)
		return -1;
	p += 7;
	p[strcspn(p, "\"")] = 0;
	snprintf(ns_name, sizeof(ns_name), "%s", p);
	return 0;
}

/*
 * nfit_test: a raw namespace over the region again. Zeroing the labels (as
 * this once did) left the region with no namespace of any size: the tests
 * after this one then found nfit_test.1's read-only or small namespaces.
 */
static void nfit_test_unlabel(void)
{
	if (!nfit_test_labelled)
		return;
	if (sh("ndctl destroy-namespace -f " NT_BUS " all >/dev/null 2>&1; "
	       "ndctl create-namespace " NT_BUS " -r %s -m raw >/dev/null 2>&1",
	       nt_region))
		diag("could not make a raw namespace on nfit_test.0 %s again",
		     nt_region);
}

static int make_fsdax(void)
{
	char path[128], holder[64];

	if (nfit_test_flavor) {
		if (nfit_test_fsdax())
			return -1;
	} else if (sh("ndctl create-namespace -f -e %s -m fsdax --map=mem >/dev/null 2>&1",
		      ns_name)) {
		return -1;
	}
	snprintf(path, sizeof(path), ND "/devices/%s/holder", ns_name);
	if (read_file(path, holder, sizeof(holder)))
		return -1;
	holder[strcspn(holder, "\n")] = 0;
	if (!holder[0])
		return -1;
	snprintf(bind_dev, sizeof(bind_dev), "%s", holder);
	return 0;
}

/*
 * Negative control: nd_pmem's per-sector semantics, measured on the same
 * cells, must violate the contract somewhere, or the cells cannot fail.
 */
static void negative_control(void)
{
	int i, j, bad = 0, compared = 0;

	for (i = 0; i < nresults[1]; i++) {
		for (j = 0; j < nresults[0]; j++) {
			if (strcmp(results[0][j].name, results[1][i].name) ||
			    !results[1][i].want[0] ||
			    strstr(results[1][i].name, "madv") ||
			    strstr(results[1][i].name, "ioc_"))
				continue;
			compared++;
			if (strcmp(results[0][j].got, results[1][i].want)) {
				diag("nd_pmem breaks %s: %s (contract %s)",
				     results[1][i].name, results[0][j].got,
				     results[1][i].want);
				bad++;
			}
		}
	}
	tap(bad > 0, "negative_control: nd_pmem violates %d of %d contract cells",
	    bad, compared);
}

static void print_diff(void)
{
	int i, j;

	diag("bgpmem vs nd_pmem on %s (same cases, same poison):", ns_name);
	diag("%-34s %-28s %s", "case", "bgpmem", "nd_pmem");
	for (i = 0; i < nresults[1]; i++) {
		const char *nd = "-";

		for (j = 0; j < nresults[0]; j++)
			if (!strcmp(results[0][j].name, results[1][i].name))
				nd = results[0][j].got;
		diag("%-34s %-28s %s%s", results[1][i].name,
		     results[1][i].got, nd,
		     strcmp(nd, results[1][i].got) ? "   <- differs" : "");
	}
}

static void module_cases(struct env *e)
{
	char slab0[64], slab1[64];
	int i, ok = 1;

	/* unload refused while mounted (no DAX needed) */
	mkdir(MNT, 0700);
	if (!sh("mkfs.ext4 -q -F -b 4096 %s >/dev/null 2>&1", e->dev) &&
	    !sh("mount -t ext4 %s " MNT, e->dev)) {
		int rc = sh("rmmod bgpmem 2>/dev/null");

		tap(rc != 0 && module_loaded("bgpmem"),
		    "unload_busy: rmmod refused while mounted");
		sh("umount " MNT);
	} else {
		tap(false, "unload_busy: mkfs/mount failed");
	}
	env_close(e);

	/* load/unload cycles (50 with --full); slab must not grow */
	sh("sync; echo 3 > /proc/sys/vm/drop_caches");
	sh("grep -E '^Slab' /proc/meminfo > /tmp/bgp-slab0");
	/*
	 * Every 5th cycle probes the namespace (memmap init of the whole
	 * namespace is slow under TCG); the others hold it on nd_pmem and
	 * exercise module init/exit and driver (un)registration.
	 */
	for (i = 0; i < opt_cycles && ok; i++) {
		bool probe = i % 5 == 0;

		if (sh("rmmod bgpmem") ||
		    (!probe && bind_to("nd_pmem")) || load_bgpmem("") ||
		    (probe && bind_to("bgpmem")))
			ok = 0;
	}
	bind_to("bgpmem");
	sh("sync; echo 3 > /proc/sys/vm/drop_caches");
	sh("grep -E '^Slab' /proc/meminfo > /tmp/bgp-slab1");
	read_file("/tmp/bgp-slab0", slab0, sizeof(slab0));
	read_file("/tmp/bgp-slab1", slab1, sizeof(slab1));
	{
		long a = strtol(slab0 + 5, NULL, 10);
		long b = strtol(slab1 + 5, NULL, 10);

		diag("slab before %ld kB, after %d cycles %ld kB", a, i, b);
		tap(ok && i == opt_cycles && b - a < 4096,
		    "load_unload: %d cycles (%d probing), slab %+ld kB",
		    i, (i + 4) / 5, b - a);
	}
	unlink("/tmp/bgp-slab0");
	unlink("/tmp/bgp-slab1");
}

/* the --cells groups of a --fault run, and their TAP lines */
enum {
	CELLS_RAW,
	CELLS_INJECT,
	CELLS_PLATFORM,
	CELLS_RACE,
	CELLS_CLEAR_UNIT,
	CELLS_SCALING,
};

static const struct {
	const char *name;
	int lines;
} cell_groups[] = {
	[CELLS_RAW] = { "raw", N_RAW },
	[CELLS_INJECT] = { "inject", 2 },
	[CELLS_PLATFORM] = { "platform", 2 },
	[CELLS_RACE] = { "race", 1 },
	[CELLS_CLEAR_UNIT] = { "clear_unit", 2 },
	[CELLS_SCALING] = { "scaling", 1 },
};

/* "raw,race" -> bit mask of cell_groups; 0 on an unknown name */
static unsigned int parse_cells(const char *list)
{
	char buf[128], *tok, *p = buf;
	unsigned int mask = 0, i;

	snprintf(buf, sizeof(buf), "%s", list);
	while ((tok = strsep(&p, ","))) {
		for (i = 0; i < ARRAY_SIZE(cell_groups); i++)
			if (!strcmp(tok, cell_groups[i].name))
				break;
		if (i == ARRAY_SIZE(cell_groups))
			return 0;
		mask |= 1U << i;
	}
	return mask;
}

/*
 * --fault=clear_unit_2k: the bus's ARS_CAP reports a 2 KiB clear unit. A
 * device that probes with poison_block_size=512 uses 2048 instead, and
 * sysfs refuses a block size below the unit (a clear of such a block would
 * fail with ENXIO: every whole-block overwrite of poison would fail).
 */
static void clear_unit_case(struct env *e)
{
	char path[128], got[64];
	int r1024, r2048, r4096;
	uint64_t unit, pbs;

	env_close(e);
	sh("rmmod bgpmem");
	bind_to("nd_pmem");
	if (load_bgpmem("poison_block_size=512") || env_open(e, true, e->can_clear)) {
		tap(false, "blk clear_unit_probe: cannot load with poison_block_size=512");
		tap(false, "blk clear_unit_pbs: not run");
		return;
	}
	unit = sysfs_u64(e->disk, "clear_unit");
	pbs = sysfs_u64(e->disk, "poison_block_size");
	snprintf(got, sizeof(got), "%llu,%llu", (unsigned long long)unit,
		 (unsigned long long)pbs);
	cell(e, "clear_unit_probe", got, "2048,2048");
	snprintf(path, sizeof(path), "/sys/block/%s/bgpmem/poison_block_size",
		 e->disk);
	r1024 = write_file(path, "1024");
	pbs = sysfs_u64(e->disk, "poison_block_size");
	r4096 = write_file(path, "4096");
	r2048 = write_file(path, "2048");
	snprintf(got, sizeof(got), "%s,%llu,%s,%s,%llu", err_name(-r1024),
		 (unsigned long long)pbs, err_name(-r4096), err_name(-r2048),
		 (unsigned long long)sysfs_u64(e->disk, "poison_block_size"));
	cell(e, "clear_unit_pbs", got, "EINVAL,2048,OK,OK,2048");
}

/*
 * --fault=LIST: the block cells against the fault build, which must be
 * loaded with exactly LIST in force (else nothing else runs); ends with
 * "# fault LIST: fault_hits N". Return: 0 when every cell held.
 */
static int fault_main(const char *backend, bool can_clear)
{
	char cur[128] = "";
	int hits, plan = 1;
	unsigned int i;
	struct env e;
	bool active;

	for (i = 0; i < ARRAY_SIZE(cell_groups); i++)
		if (opt_cells & (1U << i))
			plan += cell_groups[i].lines;
	printf("TAP version 13\n1..%d\n", plan);
	read_file(FAULT_PARAM, cur, sizeof(cur));
	cur[strcspn(cur, "\n")] = 0;
	active = !strcmp(cur, opt_fault);
	diag("backend %s: platform %s clear; namespace %s; fault build %s",
	     backend, can_clear ? "can" : "cannot", ns_name, fault_ko());
	tap(active, "fault_build_active: fault=%s (wanted %s)",
	    cur[0] ? cur : "no such parameter: not the fault build",
	    opt_fault);
	if (!active) {
		printf("Bail out! the fault build is not loaded with fault=%s\n",
		       opt_fault);
		sh("rmmod bgpmem 2>/dev/null");
		trace_restore();
		return 1;
	}
	if (env_open(&e, true, can_clear)) {
		printf("Bail out! cannot bind %s to bgpmem\n", bind_dev);
		sh("rmmod bgpmem 2>/dev/null");
		trace_restore();
		return 1;
	}
	if (opt_cells & (1U << CELLS_RAW))
		raw_cases(&e);
	if (opt_cells & (1U << CELLS_INJECT))
		fault_injection_cases(&e);
	if (opt_cells & (1U << CELLS_PLATFORM)) {
		platform_case(&e);
		platform_mirror_full_case(&e);
	}
	if (opt_cells & (1U << CELLS_RACE))
		sysfs_race_case(&e);
	if (opt_cells & (1U << CELLS_CLEAR_UNIT))
		clear_unit_case(&e);
	/* as many_records: 10,000 records from 9 MiB (the 512 MiB backends) */
	if (opt_cells & (1U << CELLS_SCALING))
		lookup_scaling_case(&e, 2304 * BLK, 10000);
	hits = fault_hits();
	printf("# fault %s: fault_hits %d\n", opt_fault, hits);
	kmsg("fault %s: fault_hits %d", opt_fault, hits);
	if (!read_file(FAULT_HITS_BY, cur, sizeof(cur)))
		printf("# fault %s: fault_hits_by %s", opt_fault, cur);
	env_close(&e);
	sh("rmmod bgpmem 2>/dev/null");
	trace_restore();
	bind_to("nd_pmem");
	diag("%d of %d failed", tap_fail, tap_n);
	return tap_fail ? 1 : 0;
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--full | --fault=LIST [--cells=GROUP,...]]\n"
		"  GROUP: raw, inject, platform, race, clear_unit, scaling\n", argv0);
	return 2;
}

int main(int argc, char **argv)
{
	const char *backend;
	bool can_clear, dax_raw;
	struct env e;
	int layer, rc;

	bt_name = "bgpmem_contract";
	kdir = getenv("KMEMLAB_DIR");
	if (!kdir)
		kdir = ".";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "--full")) {
		opt_full = true;
		opt_cycles = 50;
		opt_stress_secs = 20;
	} else if (argc > 1 && !strncmp(argv[1], "--fault=", 8) && argv[1][8]) {
		opt_fault = argv[1] + 8;
		opt_cells = (1U << CELLS_CLEAR_UNIT) - 1;
		if (argc > 2 && !strncmp(argv[2], "--cells=", 8)) {
			opt_cells = parse_cells(argv[2] + 8);
			argc--;
		}
		if (!opt_cells || argc > 2)
			return usage(argv[0]);
	} else if (argc > 1) {
		return usage(argv[0]);
	}
	backend = bt_require_backend(kdir, &nfit_test_flavor);
	can_clear = bt_backend_clears(backend);
	noclear_why = bt_noclear_why(backend);
	dax_raw = !strcmp(backend, "e820");
	if (posix_memalign((void **)&buf_a, BLK, 1 << 20) ||
	    posix_memalign((void **)&buf_b, BLK, 1 << 20))
		return 1;

	sh("modprobe nd_pmem 2>/dev/null");
	if (find_namespace())
		skip_all("no pmem namespace");
	if (!module_loaded("nd_pmem"))
		skip_all("nd_pmem not available for the comparison");
	trace_setup();
	if (load_bgpmem("")) {
		trace_restore();
		skip_all("cannot load bgpmem");
	}

	if (opt_fault)
		return fault_main(backend, can_clear);
	printf("TAP version 13\n1..%d\n", N_PLAN);
	/* trace events explain failures (enabled at each load) */
	write_file("/sys/kernel/tracing/events/bgpmem/enable", "1");
	diag("backend %s: platform %s clear; namespace %s; %s set", backend,
	     can_clear ? "can" : "cannot", ns_name,
	     opt_full ? "full" : "default (quick)");

	/* nd_pmem first (its poison is lost on unbind), then bgpmem */
	if (env_open(&e, false, can_clear)) {
		diag("cannot bind %s to nd_pmem", bind_dev);
	} else {
		raw_cases(&e);
		env_close(&e);
	}
	/* a fresh bgpmem: records from nothing */
	sh("rmmod bgpmem");
	bind_to("nd_pmem");
	load_bgpmem("");
	if (env_open(&e, true, can_clear)) {
		printf("Bail out! cannot bind %s to bgpmem\n", bind_dev);
		trace_restore();
		return 1;
	}
	{
		char cs[32], path[128];

		snprintf(path, sizeof(path), "/sys/block/%s/bgpmem/clear_support",
			 e.disk);
		read_file(path, cs, sizeof(cs));
		diag("%s clear_support: %s", e.disk, cs);
	}
	raw_cases(&e);
	bad_input_cases(&e);
	clear_ioctl_cases(&e);
	sysfs_race_case(&e);
	info_partition_case(&e);
	record_cases(&e);
	platform_case(&e);
	platform_mirror_full_case(&e);
	concurrency_case(&e);
	pbs512_case(&e);

	/* DAX: reload for clean records, fsdax where raw has no pages */
	env_close(&e);
	sh("rmmod bgpmem");
	bind_to("nd_pmem");
	if (!dax_raw && make_fsdax())
		diag("ndctl create-namespace -m fsdax failed");
	load_bgpmem("");
	for (layer = 0; layer < 2; layer++) {
		const char *fs = layer ? "xfs" : "ext4";
		int drv;

		/* nd_pmem through the file systems: --full only (slow) */
		for (drv = opt_full ? 0 : 1; drv < 2; drv++) {
			if (drv) {
				/* no records left from the previous layer */
				sh("rmmod bgpmem");
				load_bgpmem("");
			}
			if (env_open(&e, drv, can_clear)) {
				if (drv) {
					for (rc = 0; rc < N_DAX; rc++)
						tap(false, "%s dax: cannot bind %s",
						    fs, bind_dev);
				}
				continue;
			}
			rc = mount_fs(&e, fs);
			if (rc) {
				/*
				 * every backend of the lab does DAX
				 * (e820 raw, nfit and nfit_test fsdax):
				 * no DAX is a failure, not a skip
				 */
				const char *why = rc > 0 ?
					"mounted, but DAX not active" :
					"mount -o dax failed";
				int k;

				if (drv) {
					for (k = 0; k < N_DAX; k++)
						tap(false, "%s %s: %s", fs,
						    dax_names[k], why);
				}
				env_close(&e);
				continue;
			}
			dax_cases(&e);
			umount_fs(&e);
			env_close(&e);
		}
	}

	/* a fresh module: records that the platform cannot clear are gone */
	sh("rmmod bgpmem");
	load_bgpmem("");
	if (env_open(&e, true, can_clear)) {
		tap(false, "unload_busy: cannot bind");
		tap(false, "load_unload: cannot bind");
	} else {
		module_cases(&e);
	}
	negative_control();
	print_diff();

	/* leave it as found: nd_pmem bound, bgpmem unloaded, tracefs */
	env_close(&e);
	sh("rmmod bgpmem 2>/dev/null");
	trace_restore();
	bind_to("nd_pmem");
	if (nfit_test_flavor)
		nfit_test_unlabel();
	else if (strcmp(bind_dev, ns_name) &&
		 sh("ndctl create-namespace -f -e %s -m raw >/dev/null 2>&1",
		    ns_name))
		diag("could not turn %s back into a raw namespace", ns_name);
	rmdir(MNT);
	free(buf_a);
	free(buf_b);
	diag("%d of %d failed", tap_fail, tap_n);
	return tap_fail ? 1 : 0;
}
