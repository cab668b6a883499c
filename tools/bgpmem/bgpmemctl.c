// SPDX-License-Identifier: GPL-2.0
/*
 * bgpmemctl - list, inject, clear and scrub poison on bgpmem devices, and
 * move namespaces between nd_pmem and bgpmem.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kmemlab/bgpmem.h>

#include "kml.h"

#define ND_DEVICES	"/sys/bus/nd/devices"
#define ND_DRIVERS	"/sys/bus/nd/drivers"
#define LIST_CHUNK	4096

static bool opt_json;
static bool opt_all;
static bool opt_quiet;

#define HINT_NO_DEVICE \
	"run `bgpmemctl list` for bgpmem devices; bind a namespace with `bgpmemctl bind namespaceX.Y`"

static void usage(FILE *f)
{
	fprintf(f, "usage: bgpmemctl [--json] [--all] COMMAND [ARGS]\n"
		"\n"
		"  list [DEV]              devices: namespace, mode, size, poison block size,\n"
		"                          platform clear support, poisoned ranges\n"
		"  inject DEV OFFSET LEN [COUNT STRIDE]\n"
		"                          add poison (rounded outward to poison blocks);\n"
		"                          with COUNT STRIDE: COUNT ranges, STRIDE apart\n"
		"  clear DEV OFFSET LEN    zero and clear whole poison blocks (aligned)\n"
		"  scrub DEV               ask the bus to scrub (ARS, where it can), then\n"
		"                          re-read its poison list into the device\n"
		"  bind NAMESPACE          move a namespace (or its pfn device) from nd_pmem\n"
		"                          to bgpmem\n"
		"  unbind NAMESPACE        move it back to nd_pmem\n"
		"\n"
		"  DEV: bgpmemN, /dev/bgpmemN or a partition; OFFSET, LEN: bytes with\n"
		"  optional K/M/G/T suffix, relative to DEV.\n"
		"  --json   machine-readable output      --all   list every range\n"
		"  --quiet  no progress lines            -h, --help\n");
}

/* ---- sysfs helpers ---------------------------------------------------- */

static int read_str(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* ---- device access ---------------------------------------------------- */

struct dev {
	char name[64];		/* bgpmem0 or bgpmem0p1 */
	char path[PATH_MAX];
	int fd;
	struct bgpmem_info info;
};

/* /sys/block/NAME/ro is 1 */
static bool dev_read_only(const char *name)
{
	char path[PATH_MAX], v[8] = "";

	snprintf(path, sizeof(path), "/sys/block/%s/ro", name);
	return !read_str(path, v, sizeof(v)) && v[0] == '1';
}

/*
 * The bus's clear unit (ARS_CAP) in bytes, 0 where the bus reports none,
 * -1 if sysfs does not say: struct bgpmem_info predates it. A partition's
 * is its disk's.
 */
static long long dev_clear_unit(const char *name)
{
	char path[PATH_MAX], v[32], *end;
	unsigned long long u;
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/sys/class/block/%s/%sbgpmem/clear_unit",
			 name, i ? "../" : "");
		if (read_str(path, v, sizeof(v)))
			continue;
		errno = 0;
		u = strtoull(v, &end, 10);
		if (!errno && end != v && !*end && u <= UINT32_MAX)
			return (long long)u;
	}
	return -1;
}

/* @write: open for writing (BGPMEM_IOC_CLEAR needs it, as BLKZEROOUT) */
static int dev_open_mode(const char *arg, struct dev *d, bool must,
			 bool write)
{
	const char *base = strrchr(arg, '/');

	base = base ? base + 1 : arg;
	snprintf(d->name, sizeof(d->name), "%s", base);
	if (arg[0] == '/')
		snprintf(d->path, sizeof(d->path), "%s", arg);
	else
		snprintf(d->path, sizeof(d->path), "/dev/%s", base);
	d->fd = open(d->path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (d->fd < 0) {
		int err = errno;

		if (must)
			kml_die(1, err == ENOENT ? HINT_NO_DEVICE : "run as root",
				"%s: %s", d->path, strerror(err));
		return -err;
	}
	if (ioctl(d->fd, BGPMEM_IOC_INFO, &d->info)) {
		int err = errno;

		if (must)
			kml_die(1, "bgpmem devices are /dev/bgpmemN; see `bgpmemctl list`",
				"%s: not a bgpmem device (%s)", d->path,
				strerror(err));
		close(d->fd);
		return -err;
	}
	return 0;
}

static int dev_open(const char *arg, struct dev *d, bool must)
{
	return dev_open_mode(arg, d, must, false);
}

static const char *clear_name(unsigned int c)
{
	switch (c) {
	case BGPMEM_CLEAR_SUPPORTED:
		return "supported";
	case BGPMEM_CLEAR_UNSUPPORTED:
		return "unsupported";
	default:
		return "unknown";
	}
}

/* fetch all ranges; returns the count, *out malloc'ed */
static size_t dev_ranges(struct dev *d, struct bgpmem_range **out)
{
	struct bgpmem_range *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t start = 0;

	for (;;) {
		struct bgpmem_list l = { .start = start, .count = LIST_CHUNK };

		if (n + LIST_CHUNK > cap) {
			cap = n + LIST_CHUNK;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				kml_die(1, NULL, "out of memory");
		}
		l.ranges = (uintptr_t)(v + n);
		if (ioctl(d->fd, BGPMEM_IOC_LIST, &l))
			kml_die(1, NULL, "%s: listing records: %s", d->path,
				strerror(errno));
		n += l.count;
		if (l.count < LIST_CHUNK)
			break;
		start = v[n - 1].offset + v[n - 1].len;
	}
	*out = v;
	return n;
}

/* ---- list ------------------------------------------------------------- */

static void list_one(struct dev *d, struct kml_json *j)
{
	struct bgpmem_info *in = &d->info;
	char a[KML_SIZE_BUF], b[KML_SIZE_BUF], c[KML_SIZE_BUF];
	long long unit = dev_clear_unit(d->name);
	struct bgpmem_range *r;
	size_t i, n = dev_ranges(d, &r);
	size_t shown = opt_all ? n : (n > 16 ? 16 : n);

	if (j) {
		kml_json_obj_begin(j, NULL);
		kml_json_str(j, "device", d->name);
		kml_json_str(j, "namespace", in->namespace);
		kml_json_str(j, "mode", in->mode == BGPMEM_MODE_FSDAX ?
			     "fsdax" : "raw");
		kml_json_u64(j, "size", in->size);
		kml_json_u64(j, "poison_block_size", in->poison_block_size);
		kml_json_str(j, "clear_support", clear_name(in->clear_support));
		if (unit >= 0)
			kml_json_u64(j, "clear_unit", unit);
		kml_json_u64(j, "records", in->records);
		kml_json_u64(j, "poisoned_bytes", in->poisoned_bytes);
		kml_json_u64(j, "clear_failures", in->clear_failures);
		kml_json_u64(j, "clear_unsupported", in->clear_unsupported);
		kml_json_u64(j, "refused_io", in->refused_io);
		kml_json_arr_begin(j, "ranges");
		for (i = 0; i < n; i++) {
			kml_json_obj_begin(j, NULL);
			kml_json_u64(j, "offset", r[i].offset);
			kml_json_u64(j, "len", r[i].len);
			kml_json_obj_end(j);
		}
		kml_json_arr_end(j);
		kml_json_obj_end(j);
	} else {
		if (unit > 0)
			kml_format_size(unit, c, sizeof(c));
		else
			snprintf(c, sizeof(c), "%s", unit ? "unknown" : "none");
		printf("%s: %s %s, size %s, poison block %s, platform clear %s, clear unit %s\n",
		       d->name, in->namespace,
		       in->mode == BGPMEM_MODE_FSDAX ? "fsdax" : "raw",
		       kml_format_size(in->size, a, sizeof(a)),
		       kml_format_size(in->poison_block_size, b, sizeof(b)),
		       clear_name(in->clear_support), c);
		printf("  poison: %llu range(s), %s; refused I/O %llu, clear failures %llu, clears unsupported %llu\n",
		       (unsigned long long)in->records,
		       kml_format_size(in->poisoned_bytes, a, sizeof(a)),
		       (unsigned long long)in->refused_io,
		       (unsigned long long)in->clear_failures,
		       (unsigned long long)in->clear_unsupported);
		for (i = 0; i < shown; i++)
			printf("  %s +%s\n",
			       kml_format_size(r[i].offset, a, sizeof(a)),
			       kml_format_size(r[i].len, b, sizeof(b)));
		if (shown < n)
			printf("  ... %zu more (--all)\n", n - shown);
	}
	free(r);
}

static int cmd_list(int argc, char **argv)
{
	struct kml_json j, *jp = NULL;
	struct dirent *de;
	struct dev d;
	DIR *dir;
	int found = 0;

	if (argc > 1)
		kml_die(2, "usage: bgpmemctl list [DEV]", "too many arguments");
	if (opt_json) {
		kml_json_init(&j, stdout);
		jp = &j;
		kml_json_arr_begin(jp, NULL);
	}
	if (argc == 1) {
		dev_open(argv[0], &d, true);
		list_one(&d, jp);
		close(d.fd);
		found = 1;
	} else {
		dir = opendir("/sys/block");
		if (!dir)
			kml_die(1, "is sysfs mounted?", "/sys/block: %s",
				strerror(errno));
		while ((de = readdir(dir))) {
			if (strncmp(de->d_name, "bgpmem", 6))
				continue;
			if (dev_open(de->d_name, &d, false))
				continue;
			list_one(&d, jp);
			close(d.fd);
			found++;
		}
		closedir(dir);
	}
	if (jp) {
		kml_json_arr_end(jp);
		kml_json_finish(jp);
	} else if (!found) {
		printf("no bgpmem devices%s\n",
		       exists(ND_DRIVERS "/bgpmem") ? "" :
		       " (bgpmem is not loaded: modprobe bgpmem)");
	}
	return 0;
}

/* ---- inject / clear / scrub ------------------------------------------ */

static void parse_range(const char *o, const char *l, struct dev *d,
			struct bgpmem_range *r)
{
	char a[KML_SIZE_BUF];
	uint64_t off, len, end;

	memset(r, 0, sizeof(*r));
	if (kml_parse_size(o, &off))
		kml_die(2, "use bytes or a K/M/G/T suffix, e.g. 4K",
			"bad offset '%s'", o);
	if (kml_parse_size(l, &len))
		kml_die(2, "use bytes or a K/M/G/T suffix, e.g. 4K",
			"bad length '%s'", l);
	r->offset = off;
	r->len = len;
	if (!r->len)
		kml_die(2, "give a length of at least one byte",
			"zero length");
	if (__builtin_add_overflow(r->offset, r->len, &end) ||
	    end > d->info.size)
		kml_die(2, NULL, "out of range: %s+%s is beyond the end of %s (%s)",
			o, l, d->name,
			kml_format_size(d->info.size, a, sizeof(a)));
}

static void report_op(const char *op, struct dev *d,
		      const struct bgpmem_range *r)
{
	char a[KML_SIZE_BUF], b[KML_SIZE_BUF];

	if (ioctl(d->fd, BGPMEM_IOC_INFO, &d->info))
		kml_die(1, NULL, "%s: %s", d->path, strerror(errno));
	if (opt_json) {
		struct kml_json j;

		kml_json_init(&j, stdout);
		kml_json_obj_begin(&j, NULL);
		kml_json_str(&j, "device", d->name);
		kml_json_str(&j, "op", op);
		if (r) {
			kml_json_u64(&j, "offset", r->offset);
			kml_json_u64(&j, "len", r->len);
		}
		kml_json_u64(&j, "records", d->info.records);
		kml_json_u64(&j, "poisoned_bytes", d->info.poisoned_bytes);
		kml_json_obj_end(&j);
		kml_json_finish(&j);
		return;
	}
	if (r)
		printf("%s: %s %s+%s: %llu range(s) poisoned\n", d->name, op,
		       kml_format_size(r->offset, a, sizeof(a)),
		       kml_format_size(r->len, b, sizeof(b)),
		       (unsigned long long)d->info.records);
	else
		printf("%s: %s: %llu range(s) poisoned\n", d->name, op,
		       (unsigned long long)d->info.records);
}

/* inject COUNT ranges STRIDE apart: many records in one process */
static int inject_many(struct dev *d, struct bgpmem_range *r,
		       const char *count_s, const char *stride_s)
{
	uint64_t count, stride, i, last;
	struct kml_progress pr;

	if (kml_parse_u64(count_s, &count) || !count)
		kml_die(2, "COUNT is a positive number", "bad count '%s'",
			count_s);
	if (kml_parse_size(stride_s, &stride) || stride < r->len)
		kml_die(2, "STRIDE is a size >= LEN, e.g. 8K",
			"bad stride '%s'", stride_s);
	if (__builtin_mul_overflow(count - 1, stride, &last) ||
	    __builtin_add_overflow(last, r->offset + r->len, &last) ||
	    last > d->info.size)
		kml_die(2, NULL, "out of range: %llu ranges %s apart end beyond %s",
			(unsigned long long)count, stride_s, d->name);
	kml_progress_begin(&pr, "inject", count, opt_quiet);
	for (i = 0; i < count; i++) {
		struct bgpmem_range x = *r;

		x.offset += i * stride;
		if (ioctl(d->fd, BGPMEM_IOC_INJECT, &x))
			kml_die(1, NULL, "%s: inject #%llu: %s", d->name,
				(unsigned long long)i, strerror(errno));
		kml_progress_update(&pr, i + 1, NULL);
	}
	kml_progress_end(&pr);
	report_op("inject", d, r);
	return 0;
}

static int cmd_inject_clear(int argc, char **argv, bool clear)
{
	const char *op = clear ? "clear" : "inject";
	char a[KML_SIZE_BUF];
	struct bgpmem_range r;
	struct dev d;

	if (!clear && argc == 5) {
		dev_open(argv[0], &d, true);
		parse_range(argv[1], argv[2], &d, &r);
		return inject_many(&d, &r, argv[3], argv[4]);
	}
	if (argc != 3)
		kml_die(2, clear ? "usage: bgpmemctl clear DEV OFFSET LEN" :
			"usage: bgpmemctl inject DEV OFFSET LEN",
			"%s needs DEV OFFSET LEN", op);
	dev_open_mode(argv[0], &d, true, clear);
	parse_range(argv[1], argv[2], &d, &r);
	if (clear && (r.offset % d.info.poison_block_size ||
		      r.len % d.info.poison_block_size))
		kml_die(2, "offset and length must be multiples of the poison block size; clear whole blocks",
			"unaligned range: %s has a %s poison block size",
			d.name, kml_format_size(d.info.poison_block_size, a,
						sizeof(a)));
	if (ioctl(d.fd, clear ? BGPMEM_IOC_CLEAR : BGPMEM_IOC_INJECT, &r)) {
		int err = errno;

		switch (err) {
		case EOPNOTSUPP:
			kml_die(1, "this bus has no clear-error command (e.g. QEMU NFIT); poisoned blocks stay bad, use another region or rewrite the data elsewhere",
				"%s: clear unsupported on this platform", d.name);
		case EIO:
			kml_die(1, "see `bgpmemctl list` (clear failures) and dmesg; the records are kept",
				"%s: platform clear failed", d.name);
		case EPERM:
		case EACCES:
			if (clear && dev_read_only(d.name))
				kml_die(1, "the device is read-only (its region may be: ndctl list -R); blockdev --setrw if it may be written",
					"%s: clear refused: read-only device",
					d.name);
			kml_die(1, "run as root (CAP_SYS_ADMIN)", "%s: %s: %s",
				d.name, op, strerror(err));
		case EINVAL:
			kml_die(1, "offset and length must be multiples of the poison block size",
				"%s: unaligned or invalid range", d.name);
		case ERANGE:
			kml_die(1, NULL, "%s: out of range", d.name);
		default:
			kml_die(1, NULL, "%s: %s: %s", d.name, op, strerror(err));
		}
	}
	report_op(op, &d, &r);
	close(d.fd);
	return 0;
}

/* the bus directory (ndbusN) of a namespace: ndbusN/regionM/namespaceM.K */
static int bus_of(const char *ns, char *bus, size_t len)
{
	char path[PATH_MAX], real[PATH_MAX], *p;

	snprintf(path, sizeof(path), ND_DEVICES "/%s", ns);
	if (!realpath(path, real))
		return -errno;
	p = strrchr(real, '/');
	if (!p)
		return -EINVAL;
	*p = 0;
	p = strrchr(real, '/');
	if (!p)
		return -EINVAL;
	*p = 0;
	snprintf(bus, len, "%s", real);
	return 0;
}

static int cmd_scrub(int argc, char **argv)
{
	char bus[PATH_MAX], path[PATH_MAX + 16], buf[64];
	struct kml_progress pr;
	uint64_t t0;
	struct dev d;

	if (argc != 1)
		kml_die(2, "usage: bgpmemctl scrub DEV", "scrub needs DEV");
	dev_open(argv[0], &d, true);
	if (!bus_of(d.info.namespace, bus, sizeof(bus))) {
		snprintf(path, sizeof(path), "%s/nfit/scrub", bus);
		if (exists(path) && !write_str(path, "1")) {
			kml_progress_begin(&pr, "bus scrub (ARS)", 0, opt_quiet);
			t0 = kml_now_ns();
			/* "N+" while a scrub runs, "N" when done */
			while (!read_str(path, buf, sizeof(buf)) &&
			       strchr(buf, '+')) {
				if (kml_now_ns() - t0 > 120ULL * 1000000000) {
					kml_warn("bus scrub still running after 120 s; using the current list");
					break;
				}
				kml_progress_update(&pr, 0, "ARS running, scrub count %s", buf);
				usleep(100000);
			}
			kml_progress_end(&pr);
		}
	}
	if (ioctl(d.fd, BGPMEM_IOC_SCRUB))
		kml_die(1, errno == EPERM ? "run as root" : NULL,
			"%s: scrub: %s", d.name, strerror(errno));
	report_op("scrub", &d, NULL);
	close(d.fd);
	return 0;
}

/* ---- bind / unbind ---------------------------------------------------- */

/* the device to (un)bind: the namespace, or the pfn device that claims it */
static void bind_target(const char *ns, char *out, size_t len)
{
	char path[PATH_MAX], holder[128];

	snprintf(path, sizeof(path), ND_DEVICES "/%s", ns);
	if (!exists(path))
		kml_die(1, "namespaces are in " ND_DEVICES " (ndctl list -N)",
			"no such namespace or pfn device: %s", ns);
	snprintf(path, sizeof(path), ND_DEVICES "/%s/holder", ns);
	if (!strncmp(ns, "namespace", 9) &&
	    !read_str(path, holder, sizeof(holder)) && holder[0]) {
		snprintf(out, len, "%s", holder);
		return;
	}
	snprintf(out, len, "%s", ns);
}

static void driver_of(const char *dev, char *drv, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;
	char *p;

	snprintf(path, sizeof(path), ND_DEVICES "/%s/driver", dev);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		drv[0] = 0;
		return;
	}
	link[n] = 0;
	p = strrchr(link, '/');
	p = p ? p + 1 : link;
	if (strlen(p) >= len)
		p = "(unknown)";
	memcpy(drv, p, strlen(p) + 1);
}

/* modprobe -q @mod, as ndctl loads the nd drivers it needs; 0 on success */
static int load_module(const char *mod)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		execlp("modprobe", "modprobe", "-q", mod, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

static int move(const char *ns, const char *to)
{
	char dev[128], drv[64], path[PATH_MAX];
	int err;

	bind_target(ns, dev, sizeof(dev));
	snprintf(path, sizeof(path), ND_DRIVERS "/%s/bind", to);
	if (!exists(path) && (load_module(to) || !exists(path)))
		kml_die(1, !strcmp(to, "bgpmem") ? "modprobe bgpmem" :
			"modprobe nd_pmem",
			"driver %s is not loaded and modprobe %s failed", to,
			to);
	driver_of(dev, drv, sizeof(drv));
	if (!strcmp(drv, to)) {
		printf("%s: already bound to %s\n", dev, to);
		return 0;
	}
	if (drv[0]) {
		snprintf(path, sizeof(path), ND_DRIVERS "/%s/unbind", drv);
		err = write_str(path, dev);
		if (err)
			kml_die(1, "unmount file systems on the device first",
				"%s: unbind from %s: %s", dev, drv,
				strerror(-err));
	}
	snprintf(path, sizeof(path), ND_DRIVERS "/%s/bind", to);
	err = write_str(path, dev);
	if (err) {
		if (drv[0]) {
			snprintf(path, sizeof(path), ND_DRIVERS "/%s/bind", drv);
			write_str(path, dev);
		}
		kml_die(1, "see dmesg for the probe error",
			"%s: bind to %s: %s", dev, to, strerror(-err));
	}
	if (opt_json) {
		struct kml_json j;

		kml_json_init(&j, stdout);
		kml_json_obj_begin(&j, NULL);
		kml_json_str(&j, "device", dev);
		kml_json_str(&j, "from", drv);
		kml_json_str(&j, "to", to);
		kml_json_obj_end(&j);
		kml_json_finish(&j);
	} else {
		printf("%s: %s -> %s\n", dev, drv[0] ? drv : "(none)", to);
	}
	return 0;
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	const char *cmd;
	int c;

	kml_init(argv[0]);
	while ((c = getopt_long(argc, argv, "+jaqh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			opt_json = true;
			break;
		case 'a':
			opt_all = true;
			break;
		case 'q':
			opt_quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	argc -= optind;
	argv += optind;
	if (!strcmp(cmd, "list"))
		return cmd_list(argc, argv);
	if (!strcmp(cmd, "inject"))
		return cmd_inject_clear(argc, argv, false);
	if (!strcmp(cmd, "clear"))
		return cmd_inject_clear(argc, argv, true);
	if (!strcmp(cmd, "scrub"))
		return cmd_scrub(argc, argv);
	if (!strcmp(cmd, "bind") || !strcmp(cmd, "unbind")) {
		if (argc != 1)
			kml_die(2, "e.g. bgpmemctl bind namespace0.0",
				"%s needs NAMESPACE", cmd);
		return move(argv[0], !strcmp(cmd, "bind") ? "bgpmem" : "nd_pmem");
	}
	kml_die(2, "see bgpmemctl --help", "unknown command '%s'", cmd);
}
