// SPDX-License-Identifier: GPL-2.0
/*
 * bgpmem lifetime across unbind (Documentation/bgpmem.rst, contract row
 * "ioctl on a file opened before unbind"): a file opened on /dev/bgpmemN
 * keeps the gendisk, and 6.12's blkdev_ioctl() still calls the driver's
 * ioctl after del_gendisk(). Every bgpmem ioctl on it must then fail with
 * ENXIO, without touching the unmapped pmem or freed memory, and an ioctl
 * in flight must hold the unbind back until it is done.
 *
 *   unbind_open_fd      open, ndctl disable-namespace, then INFO, LIST,
 *                       INJECT, CLEAR and SCRUB on the open fd: ENXIO each
 *   unbind_rebind       close, bind again: the new device works, and the
 *                       refused INJECT left no record
 *   unbind_ioctl_race   two threads loop over the ioctls (one a CLEAR of
 *                       up to 8 MiB) while the namespace is unbound under
 *                       them, 3 times: every call succeeds or fails with
 *                       ENXIO, never succeeds after ENXIO, and ENXIO from
 *                       the moment the unbind returned
 *
 * Every case also fails on a kernel report (BUG, Oops, WARNING, KASAN, ...)
 * in /dev/kmsg while it ran. The namespace is left bound to the driver it
 * had, and bgpmem unloaded if the test loaded it.
 *
 * Backends: e820, nfit, nfit_test (the --wrap build of bgpmem). Needs root
 * and bgpmem.ko; ndctl for disable-namespace (else sysfs unbind).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kmemlab/bgpmem.h>

#include "bgpmem_test.h"

#define BLK		4096ULL
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define N_PLAN		3
#define RACE_ROUNDS	3
#define RACE_THREADS	2
#define CLEAR_BIG	(8ULL << 20)

static char ns_name[64];
static char orig_driver[64];
static bool loaded_here, nfit_test_flavor, can_clear;
static const char *kdir;
static int kmsg_fd = -1;

/* ---- kernel reports ----------------------------------------------------- */

/* from now on, kmsg_report() sees only new records */
static void kmsg_mark(void)
{
	if (kmsg_fd < 0)
		kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kmsg_fd >= 0)
		lseek(kmsg_fd, 0, SEEK_END);
}

/* new kernel reports since kmsg_mark(): their count, the first one quoted */
static int kmsg_report(void)
{
	static const char *pat =
		"BUG:|Oops|WARNING:|KASAN|general protection|Unable to handle|"
		"unable to handle|list_(add|del) corruption|refcount_t:|"
		"kernel BUG|Call Trace|watchdog: |hung_task|blocked for more than";
	char rec[2048];
	regex_t re;
	int n = 0;
	ssize_t len;

	if (kmsg_fd < 0 || regcomp(&re, pat, REG_EXTENDED | REG_NOSUB))
		return 0;
	for (;;) {
		len = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (len < 0) {
			if (errno == EPIPE)	/* overwritten: go on */
				continue;
			break;
		}
		rec[len] = 0;
		/* "prio,seq,usec,flags;text": our own lines are not reports */
		if (strstr(rec, "bgpmem_unbind: ") ||
		    regexec(&re, rec, 0, NULL, 0))
			continue;
		if (!n++)
			diag("kernel: %s", strchr(rec, ';') ?
			     strchr(rec, ';') + 1 : rec);
	}
	regfree(&re);
	return n;
}

/* ---- binding ------------------------------------------------------------ */

static int load_bgpmem(void)
{
	int rc;

	if (module_loaded("bgpmem"))
		return 0;
	if (nfit_test_flavor)
		return sh("insmod %s", nfit_test_ko(kdir));
	rc = sh("modprobe bgpmem 2>/dev/null");
	if (rc)
		rc = sh("insmod %s/drivers/pmem/bgpmem.ko", kdir);
	return rc;
}

static int unbind_sysfs(void)
{
	char path[256];
	const char *cur = driver_of(ns_name);

	if (!cur[0])
		return 0;
	snprintf(path, sizeof(path), ND "/drivers/%s/unbind", cur);
	kmsg("unbind %s from %s", ns_name, cur);
	return write_file(path, ns_name);
}

static int bind_to(const char *drv)
{
	char path[256];

	if (!strcmp(driver_of(ns_name), drv))
		return 0;
	if (unbind_sysfs())
		return -1;
	snprintf(path, sizeof(path), ND "/drivers/%s/bind", drv);
	kmsg("bind %s to %s", ns_name, drv);
	return write_file(path, ns_name) ? -1 : 0;
}

/* ndctl disable-namespace where ndctl is there, else sysfs unbind */
static int disable_ns(void)
{
	if (!sh("command -v ndctl >/dev/null"))
		return sh("ndctl disable-namespace %s >/dev/null 2>&1",
			  ns_name) ? -1 : 0;
	return unbind_sysfs();
}

/* the first namespace with a size in a writable region */
static int find_namespace(void)
{
	char path[128], buf[64];
	int r, i;

	for (r = 0; r < 8; r++) {
		/* nfit_test.1's region2 is read-only */
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
			return 0;
		}
	}
	return -1;
}

/* /dev/bgpmemN of ns_name, opened O_RDWR | O_DIRECT; -1 if none */
static int open_disk(char *dev, size_t len)
{
	char path[128], buf[256];
	int i;

	for (i = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "/sys/block/bgpmem%d/device/", i);
		if (!realpath(path, buf) || !strstr(buf, ns_name))
			continue;
		snprintf(dev, len, "/dev/bgpmem%d", i);
		return open(dev, O_RDWR | O_DIRECT);
	}
	return -1;
}

/* ---- the ioctls --------------------------------------------------------- */

enum {
	IOC_INFO, IOC_LIST, IOC_INJECT, IOC_CLEAR, IOC_SCRUB, IOC_CLEAR_BIG,
	IOC_N
};

static const char * const ioc_names[IOC_N] = {
	"INFO", "LIST", "INJECT", "CLEAR", "SCRUB", "CLEAR(big)",
};

/*
 * Scratch blocks, from the device size (nfit_test's namespaces are small):
 * INJECT at a quarter, CLEAR of one clean block 8 blocks later, the big
 * CLEAR (at most 8 MiB, clean) from the middle.
 */
static uint64_t inj_off, clr_off, big_off, big_len;

static int set_offsets(int fd)
{
	uint64_t size;

	if (ioctl(fd, BLKGETSIZE64, &size) || size < 64 * BLK)
		return -1;
	inj_off = size / 4 / BLK * BLK;
	clr_off = inj_off + 8 * BLK;
	big_off = size / 2 / BLK * BLK;
	big_len = size / 4 / BLK * BLK;
	if (big_len > CLEAR_BIG)
		big_len = CLEAR_BIG;
	return 0;
}

/* one ioctl; 0 or errno */
static int do_ioc(int fd, int which)
{
	struct bgpmem_range ranges[4];
	struct bgpmem_list l = { .count = 4, .ranges = (uintptr_t)ranges };
	struct bgpmem_range r = { .len = BLK };
	struct bgpmem_info info;
	int rc;

	switch (which) {
	case IOC_INFO:
		rc = ioctl(fd, BGPMEM_IOC_INFO, &info);
		break;
	case IOC_LIST:
		rc = ioctl(fd, BGPMEM_IOC_LIST, &l);
		break;
	case IOC_INJECT:
		r.offset = inj_off;
		rc = ioctl(fd, BGPMEM_IOC_INJECT, &r);
		break;
	case IOC_CLEAR:
		r.offset = clr_off;
		rc = ioctl(fd, BGPMEM_IOC_CLEAR, &r);
		break;
	case IOC_SCRUB:
		rc = ioctl(fd, BGPMEM_IOC_SCRUB);
		break;
	default:
		r.offset = big_off;
		r.len = big_len;
		rc = ioctl(fd, BGPMEM_IOC_CLEAR, &r);
		break;
	}
	return rc ? errno : 0;
}

/* records touching the INJECT block: 0, 1, or -1 if LIST failed */
static int injected(int fd)
{
	struct bgpmem_range r;
	struct bgpmem_list l = { .start = inj_off, .count = 1,
				 .ranges = (uintptr_t)&r };

	if (ioctl(fd, BGPMEM_IOC_LIST, &l))
		return -1;
	return l.count && r.offset < inj_off + BLK;
}

/* a verified O_DIRECT write and read of one block */
static int rw_ok(int fd)
{
	char *a, *b;
	int ok = 0;
	size_t i;

	if (posix_memalign((void **)&a, BLK, BLK) ||
	    posix_memalign((void **)&b, BLK, BLK))
		return 0;
	for (i = 0; i < BLK; i++)
		a[i] = (char)(i * 13 + 5);
	if (pwrite(fd, a, BLK, clr_off) == (ssize_t)BLK &&
	    pread(fd, b, BLK, clr_off) == (ssize_t)BLK && !memcmp(a, b, BLK))
		ok = 1;
	free(a);
	free(b);
	return ok;
}

/* ---- cases -------------------------------------------------------------- */

static bool open_fd_case(void)
{
	static const int order[] = { IOC_INFO, IOC_LIST, IOC_INJECT,
				     IOC_CLEAR, IOC_SCRUB };
	char dev[64], got[128] = "", want[128] = "", dev2[64];
	unsigned int i;
	int fd, rep;
	bool ok;

	if (bind_to("bgpmem")) {
		tap(false, "unbind_open_fd: cannot bind %s to bgpmem", ns_name);
		tap(false, "unbind_rebind: not run");
		return false;
	}
	fd = open_disk(dev, sizeof(dev));
	if (fd < 0 || set_offsets(fd) || do_ioc(fd, IOC_INFO) ||
	    injected(fd)) {
		tap(false, "unbind_open_fd: %s does not answer INFO and LIST, or is poisoned at %llu",
		    dev, (unsigned long long)inj_off);
		tap(false, "unbind_rebind: not run");
		return false;
	}
	diag("%s open on %s; disabling the namespace", dev, ns_name);
	kmsg_mark();
	if (disable_ns() || driver_of(ns_name)[0]) {
		tap(false, "unbind_open_fd: disable-namespace %s failed", ns_name);
		close(fd);
		tap(false, "unbind_rebind: not run");
		return false;
	}
	for (i = 0; i < ARRAY_SIZE(order); i++) {
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s=%s",
			 i ? "," : "", ioc_names[order[i]],
			 err_name(do_ioc(fd, order[i])));
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
			 "%s%s=ENXIO", i ? "," : "", ioc_names[order[i]]);
	}
	close(fd);
	rep = kmsg_report();
	ok = !strcmp(got, want) && !rep;
	if (!ok)
		diag("want %s, no kernel report", want);
	tap(ok, "unbind_open_fd: %s, %d kernel reports", got, rep);

	/* close, bind again: a working device, no record from the INJECT */
	kmsg_mark();
	fd = -1;
	if (!bind_to("bgpmem"))
		fd = open_disk(dev2, sizeof(dev2));
	if (fd < 0) {
		tap(false, "unbind_rebind: cannot bind %s to bgpmem again",
		    ns_name);
		return false;
	}
	{
		int inj = injected(fd);
		int rw = rw_ok(fd);

		close(fd);
		rep = kmsg_report();
		tap(inj == 0 && rw && !rep,
		    "unbind_rebind: %s: INFO/LIST %s, record of the refused INJECT %s, I/O %s, %d kernel reports",
		    dev2, inj < 0 ? "failed" : "OK",
		    inj > 0 ? "present" : "absent", rw ? "OK" : "failed", rep);
	}
	return true;
}

struct racer {
	int fd;
	int id;
	volatile bool *stop;
	/* per ioctl: calls that succeeded, failed with ENXIO, other errno */
	long ok[IOC_N], enxio[IOC_N], other[IOC_N];
	long ok_after_enxio;	/* a success once ENXIO was seen */
	int first_other;
	bool seen_enxio;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;
	long i = r->id;

	while (!*r->stop) {
		int which = i++ % IOC_N;
		int rc;

		/* poison left behind must be clearable (and is cleared) */
		if (which == IOC_INJECT && !can_clear)
			continue;
		rc = do_ioc(r->fd, which);
		if (!rc) {
			r->ok[which]++;
			if (r->seen_enxio)
				r->ok_after_enxio++;
		} else if (rc == ENXIO) {
			r->enxio[which]++;
			r->seen_enxio = true;
		} else {
			r->other[which]++;
			if (!r->first_other)
				r->first_other = rc;
		}
	}
	return NULL;
}

static void race_case(void)
{
	long ok_total = 0, enxio_total = 0, other = 0, after = 0;
	int round, t, w, bad_after_unbind = 0, rep, first_other = 0;
	char dev[64];
	bool ok = true;

	kmsg_mark();
	for (round = 0; round < RACE_ROUNDS && ok; round++) {
		struct racer r[RACE_THREADS];
		pthread_t th[RACE_THREADS];
		volatile bool stop = false;
		int fd;

		fd = bind_to("bgpmem") ? -1 : open_disk(dev, sizeof(dev));
		if (fd < 0) {
			diag("round %d: cannot bind %s to bgpmem", round, ns_name);
			ok = false;
			break;
		}
		memset(r, 0, sizeof(r));
		for (t = 0; t < RACE_THREADS; t++) {
			r[t].fd = fd;
			r[t].id = t * 3;
			r[t].stop = &stop;
			pthread_create(&th[t], NULL, race_thread, &r[t]);
		}
		usleep(300 * 1000);
		if (round == 0 ? disable_ns() : unbind_sysfs()) {
			diag("round %d: unbind failed", round);
			ok = false;
		}
		/* the unbind has returned: whatever starts now is refused */
		for (w = 0; w < IOC_N; w++) {
			if (w == IOC_INJECT && !can_clear)
				continue;
			if (do_ioc(fd, w) != ENXIO)
				bad_after_unbind++;
		}
		usleep(200 * 1000);
		stop = true;
		for (t = 0; t < RACE_THREADS; t++) {
			pthread_join(th[t], NULL);
			for (w = 0; w < IOC_N; w++) {
				ok_total += r[t].ok[w];
				enxio_total += r[t].enxio[w];
				other += r[t].other[w];
			}
			after += r[t].ok_after_enxio;
			if (!first_other)
				first_other = r[t].first_other;
		}
		close(fd);
	}
	/* the race left poison on inj_off only where it can be cleared */
	if (can_clear && !bind_to("bgpmem")) {
		int fd = open_disk(dev, sizeof(dev));

		if (fd >= 0) {
			struct bgpmem_range r = { .offset = inj_off, .len = BLK };

			ioctl(fd, BGPMEM_IOC_CLEAR, &r);
			close(fd);
		}
	}
	rep = kmsg_report();
	if (other)
		diag("%ld calls failed otherwise, first with %s", other,
		     err_name(first_other));
	tap(ok && ok_total && enxio_total && !other && !after &&
	    !bad_after_unbind && !rep,
	    "unbind_ioctl_race: %d rounds, %ld OK, %ld ENXIO, %ld other, %ld OK after ENXIO, %d not ENXIO after unbind, %d kernel reports",
	    round, ok_total, enxio_total, other, after, bad_after_unbind, rep);
}

int main(int argc, char **argv)
{
	const char *backend;

	bt_name = "bgpmem_unbind";
	kdir = getenv("KMEMLAB_DIR");
	if (!kdir)
		kdir = ".";
	setvbuf(stdout, NULL, _IOLBF, 0);
	backend = bt_require_backend(kdir, &nfit_test_flavor);
	can_clear = bt_backend_clears(backend);
	sh("modprobe nd_pmem 2>/dev/null");
	if (find_namespace())
		skip_all("no pmem namespace");
	snprintf(orig_driver, sizeof(orig_driver), "%s", driver_of(ns_name));
	loaded_here = !module_loaded("bgpmem");
	if (load_bgpmem())
		skip_all("cannot load bgpmem");

	printf("TAP version 13\n1..%d\n", N_PLAN);
	diag("backend %s, namespace %s (was on %s)", backend, ns_name,
	     orig_driver[0] ? orig_driver : "no driver");
	if (open_fd_case())
		race_case();
	else
		tap(false, "unbind_ioctl_race: not run");

	/* leave it as found */
	if (orig_driver[0]) {
		if (bind_to(orig_driver))
			diag("could not bind %s back to %s", ns_name,
			     orig_driver);
	} else {
		unbind_sysfs();
	}
	if (loaded_here)
		sh("rmmod bgpmem");
	diag("%d of %d failed", tap_fail, tap_n);
	return tap_fail ? 1 : 0;
}
