// SPDX-License-Identifier: GPL-2.0
/*
 * memcg-dirtyctl - set, show, clear and watch the per-cgroup dirty limits of
 * the memcg_dirty module.
 *
 * The module keeps one configfs directory per cgroup, named by the cgroup
 * id (the inode number of the cgroup v2 directory):
 *	/sys/kernel/config/memcg_dirty/<id>/{dirty_bytes,dirty_ratio,
 *		background_bytes,background_ratio,path,state,stat}
 * This tool maps cgroup paths to those directories and checks everything it
 * can before it writes, so that a bad request changes nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <kmemlab/memcg_dirty.h>

#include "kml.h"

#define CFG_ROOT	MEMCG_DIRTY_CONFIGFS
#define CGROUP2_MAGIC	0x63677270
#define CONFIGFS_MAGIC	0x62656570
/* two pages, like vm.dirty_bytes */
#define MIN_BYTES	(MEMCG_DIRTY_MIN_PAGES * 4096ULL)
#define RATIO_BUF	16	/* "100.00%" */

static bool opt_json;

struct cg {
	char path[PATH_MAX];	/* absolute path of the cgroup directory */
	char rel[PATH_MAX];	/* path relative to the cgroup2 mount */
	uint64_t id;
};

struct knob {
	uint64_t id;
	char dir[PATH_MAX];
	char path[PATH_MAX];
	bool live;
	bool configured;	/* has a configfs entry */
	/* ratios in basis points (1/100 %) */
	uint64_t dirty_bytes, dirty_ratio, bg_bytes, bg_ratio;
	/* from stat */
	uint64_t eff_dirty, eff_bg, dirty, writeback, avail;
	uint64_t evals, binding, throttle_events, pause_ns;
	/* from memory.stat (live cgroups) */
	bool have_memstat;
	uint64_t file_dirty, file_writeback;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: memcg-dirtyctl set CGROUP [--dirty-bytes SIZE | --dirty-ratio PCT]\n"
		"                                [--background-bytes SIZE | --background-ratio PCT]\n"
		"       memcg-dirtyctl show [CGROUP] [--json]\n"
		"       memcg-dirtyctl clear CGROUP | --all | --removed\n"
		"       memcg-dirtyctl watch CGROUP [--interval SEC] [--count N] [--json]\n"
		"\n"
		"Per-cgroup dirty page limits (module memcg_dirty). CGROUP is a cgroup v2\n"
		"path, absolute (/sys/fs/cgroup/a/b) or relative to the cgroup2 mount (a/b).\n"
		"SIZE takes K/M/G suffixes. PCT is a percentage from 0.01 to 100 with up\n"
		"to two decimals and an optional %% sign (5, 0.25, 12.5%%): a ratio of the\n"
		"cgroup's own available memory (file pages + headroom under memory.max/high,\n"
		"as the kernel's memcg writeback domain counts it).\n"
		"Bytes win over ratios; a background limit needs\n"
		"a dirty limit and must be below it; without one it is half the dirty limit.\n"
		"The effective limit of a cgroup is the strictest of its own and its\n"
		"ancestors' limits. show of a cgroup without limits reports it with none\n"
		"configured and its memory.stat file_dirty/file_writeback.\n"
		"\n"
		"  --json            machine-readable output (show, watch)\n"
		"  --interval SEC    watch sampling period (default 1, minimum 0.1)\n"
		"  --count N         watch: stop after N samples (default: until interrupted)\n"
		"  -h, --help        this help\n");
}

/* ---- small file helpers ------------------------------------------------ */

static int read_str(const char *dir, const char *name, char *buf, size_t len)
{
	char p[PATH_MAX * 2];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "r");
	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

static int read_u64(const char *dir, const char *name, uint64_t *v)
{
	char buf[64];
	int ret = read_str(dir, name, buf, sizeof(buf));

	if (ret)
		return ret;
	return kml_parse_u64(buf, v);
}

/* write "@val\n" to @dir/@name; 0 or -errno */
static int write_knob(const char *dir, const char *name, const char *val)
{
	char p[PATH_MAX * 2];
	FILE *f;
	int ret = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f)
		return -errno;
	if (fputs(val, f) == EOF || fputc('\n', f) == EOF || fflush(f) == EOF)
		ret = -errno;
	if (fclose(f) == EOF && !ret)
		ret = -errno;
	return ret;
}

static int write_u64(const char *dir, const char *name, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return write_knob(dir, name, buf);
}

/*
 * A percentage with up to two decimals ("5", "0.25", "12.5", and with
 * @pct_sign a trailing '%') in basis points. Returns 0, -EINVAL or -ERANGE
 * (above 100%), as the module does for its configfs files.
 */
static int parse_pct(const char *s, bool pct_sign, uint64_t *bp)
{
	const char *p = s;
	uint64_t ip = 0, frac = 0;
	int ndig = 0, ndec = 0;
	bool big = false;

	for (; *p >= '0' && *p <= '9'; p++, ndig++) {
		if (ip > 100)
			big = true;
		else
			ip = ip * 10 + (uint64_t)(*p - '0');
	}
	if (!ndig)
		return -EINVAL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, ndec++) {
			if (ndec == MEMCG_DIRTY_RATIO_DECIMALS)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*p - '0');
		}
		if (!ndec)
			return -EINVAL;
		if (ndec == 1)
			frac *= 10;
	}
	if (pct_sign && *p == '%')
		p++;
	if (*p)
		return -EINVAL;
	if (big || ip * MEMCG_DIRTY_BP_PER_PCT + frac > MEMCG_DIRTY_RATIO_BP_MAX)
		return -ERANGE;
	*bp = ip * MEMCG_DIRTY_BP_PER_PCT + frac;
	return 0;
}

/* basis points as the shortest percentage, as the module prints them */
static char *format_pct(uint64_t bp, char *buf, size_t len)
{
	uint64_t ip = bp / MEMCG_DIRTY_BP_PER_PCT, frac = bp % MEMCG_DIRTY_BP_PER_PCT;

	if (!frac)
		snprintf(buf, len, "%" PRIu64, ip);
	else if (!(frac % 10))
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64, ip, frac / 10);
	else
		snprintf(buf, len, "%" PRIu64 ".%02" PRIu64, ip, frac);
	return buf;
}

static int read_ratio(const char *dir, const char *name, uint64_t *bp)
{
	char buf[64];
	int ret = read_str(dir, name, buf, sizeof(buf));

	if (ret)
		return ret;
	return parse_pct(buf, false, bp);
}

static int write_ratio(const char *dir, const char *name, uint64_t bp)
{
	char buf[RATIO_BUF];

	format_pct(bp, buf, sizeof(buf));
	return write_knob(dir, name, buf);
}

/* key/value lines as in memory.stat and the module's stat file */
static int read_kv(const char *dir, const char *name, const char *key,
		   uint64_t *v)
{
	char p[PATH_MAX * 2], line[256];
	size_t klen = strlen(key);
	FILE *f;
	int ret = -ENOENT;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ' ') {
			line[strcspn(line, "\n")] = '\0';
			ret = kml_parse_u64(line + klen + 1, v);
			break;
		}
	}
	fclose(f);
	return ret;
}

/* ---- module and cgroup lookup ------------------------------------------ */

static void need_module(void)
{
	struct statfs sfs;

	if (!access(CFG_ROOT, F_OK))
		return;
	if (statfs("/sys/kernel/config", &sfs) || sfs.f_type != CONFIGFS_MAGIC)
		kml_die(1, "mount -t configfs none /sys/kernel/config",
			"configfs is not available at /sys/kernel/config");
	kml_die(1, "load it: modprobe memcg_dirty (dmesg tells why if that fails)",
		"the memcg_dirty module is not loaded (%s missing)", CFG_ROOT);
}

static int cgroup2_mount(char *mnt, size_t len)
{
	char dev[256], dir[PATH_MAX], type[64];
	FILE *f = fopen("/proc/self/mounts", "r");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (!strcmp(type, "cgroup2")) {
			snprintf(mnt, len, "%s", dir);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* resolve @arg to a cgroup with the memory controller, or die explaining */
static void resolve_cgroup(const char *arg, struct cg *cg)
{
	char mnt[PATH_MAX], tmp[PATH_MAX * 2], real[PATH_MAX];
	struct statfs sfs;
	struct stat st;
	size_t mlen;

	if (cgroup2_mount(mnt, sizeof(mnt)))
		kml_die(1, "mount -t cgroup2 none /sys/fs/cgroup (cgroup v1 hierarchies are not supported)",
			"no cgroup v2 hierarchy is mounted");
	if (arg[0] == '/' && !strncmp(arg, mnt, strlen(mnt)))
		snprintf(tmp, sizeof(tmp), "%s", arg);
	else
		snprintf(tmp, sizeof(tmp), "%s/%s", mnt,
			 arg + (arg[0] == '/'));
	if (!realpath(tmp, real) || stat(real, &st))
		kml_die(1, "check the name (paths are relative to the cgroup2 mount) or create it with mkdir",
			"cgroup '%s' does not exist (%s)", arg, tmp);
	if (statfs(real, &sfs) || sfs.f_type != CGROUP2_MAGIC || !S_ISDIR(st.st_mode))
		kml_die(1, "use a directory on the cgroup v2 hierarchy (cgroup v1 is not supported)",
			"'%s' is not a cgroup v2 cgroup", arg);
	mlen = strlen(mnt);
	if (!strcmp(real, mnt))
		kml_die(1, "set vm.dirty_bytes/vm.dirty_ratio for the root, or use a child cgroup",
			"the root cgroup has no per-cgroup writeback domain");
	snprintf(cg->path, sizeof(cg->path), "%s", real);
	snprintf(cg->rel, sizeof(cg->rel), "%s", real + mlen);
	snprintf(tmp, sizeof(tmp), "%s/memory.stat", real);
	if (access(tmp, F_OK)) {
		char parent[PATH_MAX];
		char *slash;

		snprintf(parent, sizeof(parent), "%s", real);
		slash = strrchr(parent, '/');
		if (slash)
			*slash = '\0';
		snprintf(tmp, sizeof(tmp),
			 "echo +memory > %s/cgroup.subtree_control (and +io for cgroup writeback)",
			 parent);
		kml_die(1, tmp, "the memory controller is not enabled for '%s'",
			cg->rel);
	}
	cg->id = st.st_ino;
}

static void knob_dir(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%" PRIu64, CFG_ROOT, id);
}

static int load_knob(uint64_t id, struct knob *k)
{
	char state[32], mnt[PATH_MAX], ms[PATH_MAX * 2];

	memset(k, 0, sizeof(*k));
	k->id = id;
	knob_dir(id, k->dir, sizeof(k->dir));
	if (access(k->dir, F_OK))
		return -ENOENT;
	if (read_str(k->dir, "path", k->path, sizeof(k->path)) ||
	    read_str(k->dir, "state", state, sizeof(state)) ||
	    read_u64(k->dir, "dirty_bytes", &k->dirty_bytes) ||
	    read_ratio(k->dir, "dirty_ratio", &k->dirty_ratio) ||
	    read_u64(k->dir, "background_bytes", &k->bg_bytes) ||
	    read_ratio(k->dir, "background_ratio", &k->bg_ratio) ||
	    read_kv(k->dir, "stat", "effective_dirty_bytes", &k->eff_dirty) ||
	    read_kv(k->dir, "stat", "effective_background_bytes", &k->eff_bg) ||
	    read_kv(k->dir, "stat", "dirty", &k->dirty) ||
	    read_kv(k->dir, "stat", "writeback", &k->writeback) ||
	    read_kv(k->dir, "stat", "evaluations", &k->evals) ||
	    read_kv(k->dir, "stat", "binding", &k->binding) ||
	    read_kv(k->dir, "stat", "throttle_events", &k->throttle_events) ||
	    read_kv(k->dir, "stat", "pause_ns", &k->pause_ns))
		return -EIO;
	/* older builds have no avail line */
	if (read_kv(k->dir, "stat", "avail", &k->avail))
		k->avail = 0;
	k->live = !strcmp(state, "live");
	k->configured = true;
	if (k->live && !cgroup2_mount(mnt, sizeof(mnt))) {
		snprintf(ms, sizeof(ms), "%s%s", mnt, k->path);
		k->have_memstat =
			!read_kv(ms, "memory.stat", "file_dirty", &k->file_dirty) &&
			!read_kv(ms, "memory.stat", "file_writeback", &k->file_writeback);
	}
	return 0;
}

/* ---- set ----------------------------------------------------------------- */

struct setreq {
	bool db, dr, bb, br;
	uint64_t dirty_bytes, dirty_ratio, bg_bytes, bg_ratio;
};

static void parse_ratio(const char *opt, const char *s, uint64_t *v)
{
	int ret = parse_pct(s, true, v);

	if (ret == -ERANGE)
		kml_die(2, "give a percentage from 0.01 to 100",
			"%s: '%s' is above 100%%", opt, s);
	if (ret)
		kml_die(2, "give a percentage with up to two decimals, e.g. 5 or 0.25",
			"%s: '%s' is not a percentage", opt, s);
	if (!*v)
		kml_die(2, "use 'clear' to remove a limit; the smallest ratio is 0.01",
			"%s: '%s' is zero", opt, s);
}

static void parse_bytes(const char *opt, const char *s, uint64_t *v)
{
	char b[KML_SIZE_BUF];
	int ret = kml_parse_size(s, v);

	if (ret == -ERANGE)
		kml_die(2, "use a size below 16T", "%s: '%s' overflows", opt, s);
	if (ret)
		kml_die(2, "sizes are numbers with an optional K/M/G/T suffix, e.g. 16M",
			"%s: '%s' is not a size", opt, s);
	if (*v < MIN_BYTES)
		kml_die(2, "use 'clear' to remove a limit; the minimum is two pages",
			"%s: %s is below the minimum of %s", opt, s,
			kml_format_size(MIN_BYTES, b, sizeof(b)));
	if (*v / 4096 > UINT32_MAX)
		kml_die(2, "use a size below 16T", "%s: %s is too large", opt, s);
}

static const char *errno_hint(int err)
{
	switch (err) {
	case -ENOENT:
		return "the cgroup was removed; 'memcg-dirtyctl clear --removed' drops it";
	case -EINVAL:
		return "a background limit needs a dirty limit and must be below it";
	case -ERANGE:
		return "ratios are 0..100 with up to two decimals, sizes below 16T";
	case -EACCES:
	case -EPERM:
		return "run as root";
	default:
		return NULL;
	}
}

static int cmd_set(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dirty-bytes", required_argument, NULL, 'd' },
		{ "dirty-ratio", required_argument, NULL, 'D' },
		{ "background-bytes", required_argument, NULL, 'b' },
		{ "background-ratio", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct setreq r = { };
	struct knob old;
	struct cg cg;
	uint64_t nd_bytes, nd_ratio, nb_bytes, nb_ratio;
	bool created = false;
	char b1[KML_SIZE_BUF], b2[KML_SIZE_BUF];
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			r.db = true;
			parse_bytes("--dirty-bytes", optarg, &r.dirty_bytes);
			break;
		case 'D':
			r.dr = true;
			parse_ratio("--dirty-ratio", optarg, &r.dirty_ratio);
			break;
		case 'b':
			r.bb = true;
			parse_bytes("--background-bytes", optarg, &r.bg_bytes);
			break;
		case 'B':
			r.br = true;
			parse_ratio("--background-ratio", optarg, &r.bg_ratio);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1)
		kml_die(2, "memcg-dirtyctl set CGROUP --dirty-bytes 16M [--background-bytes 8M]",
			"set needs exactly one CGROUP");
	if (!r.db && !r.dr && !r.bb && !r.br)
		kml_die(2, "give --dirty-bytes/--dirty-ratio and optionally --background-bytes/--background-ratio",
			"nothing to set");
	if (r.db && r.dr)
		kml_die(2, "give one of them", "--dirty-bytes and --dirty-ratio contradict each other");
	if (r.bb && r.br)
		kml_die(2, "give one of them",
			"--background-bytes and --background-ratio contradict each other");

	resolve_cgroup(argv[optind], &cg);
	need_module();

	if (load_knob(cg.id, &old) == -ENOENT) {
		char dir[PATH_MAX];

		knob_dir(cg.id, dir, sizeof(dir));
		if (mkdir(dir, 0755))
			kml_die(1, errno_hint(-errno), "cannot create %s: %s", dir,
				strerror(errno));
		created = true;
		if (load_knob(cg.id, &old))
			kml_die(1, NULL, "cannot read back %s", dir);
	}

	/* the resulting configuration, checked before anything is written */
	nd_bytes = r.db ? r.dirty_bytes : r.dr ? 0 : old.dirty_bytes;
	nd_ratio = r.dr ? r.dirty_ratio : r.db ? 0 : old.dirty_ratio;
	nb_bytes = r.bb ? r.bg_bytes : r.br ? 0 : old.bg_bytes;
	nb_ratio = r.br ? r.bg_ratio : r.bb ? 0 : old.bg_ratio;
	ret = 0;
	if (!nd_bytes && !nd_ratio) {
		kml_err("add --dirty-bytes or --dirty-ratio",
			"a background limit needs a dirty limit");
		ret = 2;
	} else if (nd_bytes && nb_bytes && nb_bytes >= nd_bytes) {
		kml_err("the background limit must be below the dirty limit",
			"background %s >= dirty %s",
			kml_format_size(nb_bytes, b1, sizeof(b1)),
			kml_format_size(nd_bytes, b2, sizeof(b2)));
		ret = 2;
	} else if (nd_ratio && nb_ratio && nb_ratio >= nd_ratio) {
		kml_err("the background ratio must be below the dirty ratio",
			"background ratio %s%% >= dirty ratio %s%%",
			format_pct(nb_ratio, b1, sizeof(b1)),
			format_pct(nd_ratio, b2, sizeof(b2)));
		ret = 2;
	}
	if (ret)
		goto undo;

	/*
	 * Order the writes so that every intermediate state is valid: drop
	 * the background limit, set the dirty limit, set the background one.
	 */
	if ((r.bb || r.br) || (nb_bytes && nd_bytes && nb_bytes >= old.dirty_bytes)) {
		ret = write_u64(old.dir, "background_bytes", 0);
		if (!ret)
			ret = write_u64(old.dir, "background_ratio", 0);
	}
	if (!ret && r.db)
		ret = write_u64(old.dir, "dirty_bytes", nd_bytes);
	else if (!ret && r.dr)
		ret = write_ratio(old.dir, "dirty_ratio", nd_ratio);
	if (!ret && nb_bytes)
		ret = write_u64(old.dir, "background_bytes", nb_bytes);
	if (!ret && nb_ratio)
		ret = write_ratio(old.dir, "background_ratio", nb_ratio);
	if (ret) {
		kml_err(errno_hint(ret), "the module rejected the new limits for '%s': %s",
			cg.rel, strerror(-ret));
		/* put the old values back (bg first cleared, so dirty first) */
		write_u64(old.dir, "background_bytes", 0);
		write_u64(old.dir, "background_ratio", 0);
		if (old.dirty_bytes)
			write_u64(old.dir, "dirty_bytes", old.dirty_bytes);
		if (old.dirty_ratio)
			write_ratio(old.dir, "dirty_ratio", old.dirty_ratio);
		if (old.bg_bytes)
			write_u64(old.dir, "background_bytes", old.bg_bytes);
		if (old.bg_ratio)
			write_ratio(old.dir, "background_ratio", old.bg_ratio);
		ret = 1;
		goto undo;
	}
	if (!opt_json)
		printf("%s: dirty %s, background %s\n", cg.rel,
		       nd_bytes ? kml_format_size(nd_bytes, b1, sizeof(b1)) :
				  (strcat(format_pct(nd_ratio, b1, sizeof(b1) - 1), "%")),
		       nb_bytes ? kml_format_size(nb_bytes, b2, sizeof(b2)) :
		       nb_ratio ? (strcat(format_pct(nb_ratio, b2, sizeof(b2) - 1), "%")) :
				  "half of dirty");
	return 0;
undo:
	if (created && rmdir(old.dir))
		kml_warn("could not remove %s: %s", old.dir, strerror(errno));
	return ret;
}

/* ---- show ---------------------------------------------------------------- */

static void fmt_limit(uint64_t bytes, uint64_t ratio, char *buf, size_t len)
{
	if (bytes)
		kml_format_size(bytes, buf, len);
	else if (ratio)
		strcat(format_pct(ratio, buf, len - 1), "%");
	else
		snprintf(buf, len, "-");
}

/*
 * A live cgroup without an entry: no limit of its own (an ancestor's may
 * apply), its memory.stat dirty and writeback
 */
static void unconfigured_knob(const struct cg *cg, struct knob *k)
{
	memset(k, 0, sizeof(*k));
	k->id = cg->id;
	snprintf(k->path, sizeof(k->path), "%s", cg->rel);
	k->live = true;
	k->have_memstat =
		!read_kv(cg->path, "memory.stat", "file_dirty", &k->file_dirty) &&
		!read_kv(cg->path, "memory.stat", "file_writeback", &k->file_writeback);
}

static void show_json(struct kml_json *j, const struct knob *k)
{
	kml_json_obj_begin(j, NULL);
	kml_json_u64(j, "cgroup_id", k->id);
	kml_json_str(j, "path", k->path);
	kml_json_str(j, "state", k->live ? "live" : "removed");
	if (!k->configured) {
		/* no entry: nothing configured, nothing evaluated */
		kml_json_null(j, "configured");
		kml_json_null(j, "effective");
		if (k->have_memstat) {
			kml_json_u64(j, "file_dirty", k->file_dirty);
			kml_json_u64(j, "file_writeback", k->file_writeback);
		}
		kml_json_obj_end(j);
		return;
	}
	kml_json_obj_begin(j, "configured");
	kml_json_u64(j, "dirty_bytes", k->dirty_bytes);
	/* percent (fractional since feature fractional_ratio), and exact */
	kml_json_double(j, "dirty_ratio", k->dirty_ratio / 100.0);
	kml_json_u64(j, "dirty_ratio_bp", k->dirty_ratio);
	kml_json_u64(j, "background_bytes", k->bg_bytes);
	kml_json_double(j, "background_ratio", k->bg_ratio / 100.0);
	kml_json_u64(j, "background_ratio_bp", k->bg_ratio);
	kml_json_obj_end(j);
	kml_json_obj_begin(j, "effective");
	kml_json_u64(j, "dirty_bytes", k->eff_dirty);
	kml_json_u64(j, "background_bytes", k->eff_bg);
	kml_json_u64(j, "avail_bytes", k->avail);
	kml_json_obj_end(j);
	kml_json_u64(j, "dirty", k->dirty);
	kml_json_u64(j, "writeback", k->writeback);
	if (k->have_memstat) {
		kml_json_u64(j, "file_dirty", k->file_dirty);
		kml_json_u64(j, "file_writeback", k->file_writeback);
	}
	kml_json_u64(j, "evaluations", k->evals);
	kml_json_u64(j, "binding", k->binding);
	kml_json_u64(j, "throttle_events", k->throttle_events);
	kml_json_u64(j, "pause_ns", k->pause_ns);
	kml_json_obj_end(j);
}

static void show_header(void)
{
	printf("%-8s %-24s %-7s %7s %7s %9s %9s %9s %9s %9s %9s\n",
	       "ID", "CGROUP", "STATE", "DIRTY", "BG", "EFF", "EFF_BG",
	       "FILE_DRT", "FILE_WB", "THROTTLE", "PAUSE_MS");
}

static void show_human(const struct knob *k)
{
	char d[KML_SIZE_BUF], bg[KML_SIZE_BUF], e[KML_SIZE_BUF],
	     eb[KML_SIZE_BUF], fd[KML_SIZE_BUF], fw[KML_SIZE_BUF];

	fmt_limit(k->dirty_bytes, k->dirty_ratio, d, sizeof(d));
	fmt_limit(k->bg_bytes, k->bg_ratio, bg, sizeof(bg));
	kml_format_size(k->eff_dirty, e, sizeof(e));
	kml_format_size(k->eff_bg, eb, sizeof(eb));
	if (k->have_memstat) {
		kml_format_size(k->file_dirty, fd, sizeof(fd));
		kml_format_size(k->file_writeback, fw, sizeof(fw));
	} else {
		snprintf(fd, sizeof(fd), "-");
		snprintf(fw, sizeof(fw), "-");
	}
	if (!k->configured) {
		printf("%-8" PRIu64 " %-24s %-7s %7s %7s %9s %9s %9s %9s %9s %9s\n",
		       k->id, k->path, "nolimit", "-", "-", "-", "-", fd, fw,
		       "-", "-");
		return;
	}
	printf("%-8" PRIu64 " %-24s %-7s %7s %7s %9s %9s %9s %9s %9" PRIu64 " %9" PRIu64 "\n",
	       k->id, k->path, k->live ? "live" : "removed", d, bg,
	       k->evals ? e : "-", k->evals ? eb : "-", fd, fw,
	       k->throttle_events, k->pause_ns / 1000000);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ids of all knob directories, sorted; returns the count */
static size_t list_ids(uint64_t **ids)
{
	size_t n = 0, cap = 16;
	struct dirent *de;
	DIR *d = opendir(CFG_ROOT);

	if (!d)
		kml_die(1, NULL, "cannot list %s: %s", CFG_ROOT, strerror(errno));
	*ids = malloc(cap * sizeof(**ids));
	if (!*ids)
		kml_die(1, NULL, "out of memory");
	while ((de = readdir(d))) {
		uint64_t id;

		if (de->d_type != DT_DIR || kml_parse_u64(de->d_name, &id))
			continue;
		if (n == cap) {
			cap *= 2;
			*ids = realloc(*ids, cap * sizeof(**ids));
			if (!*ids)
				kml_die(1, NULL, "out of memory");
		}
		(*ids)[n++] = id;
	}
	closedir(d);
	qsort(*ids, n, sizeof(**ids), cmp_u64);
	return n;
}

static int cmd_show(int argc, char **argv)
{
	struct kml_json j;
	struct knob k;
	uint64_t *ids = NULL;
	size_t i, n;
	int ret;

	if (argc > 2)
		kml_die(2, "memcg-dirtyctl show [CGROUP] [--json]", "too many arguments");
	if (argc == 2) {
		struct cg cg;

		resolve_cgroup(argv[1], &cg);
		need_module();
		ret = load_knob(cg.id, &k);
		if (ret == -ENOENT)
			unconfigured_knob(&cg, &k);
		else if (ret)
			kml_die(1, "is the module being unloaded? try again",
				"cannot read the limits of '%s' from %s", cg.rel,
				k.dir);
		if (opt_json) {
			kml_json_init(&j, stdout);
			show_json(&j, &k);
			kml_json_finish(&j);
		} else {
			show_header();
			show_human(&k);
		}
		return 0;
	}
	need_module();
	n = list_ids(&ids);
	if (opt_json) {
		kml_json_init(&j, stdout);
		kml_json_arr_begin(&j, NULL);
	} else {
		show_header();
	}
	for (i = 0; i < n; i++) {
		if (load_knob(ids[i], &k))
			continue;	/* removed meanwhile */
		if (opt_json)
			show_json(&j, &k);
		else
			show_human(&k);
	}
	if (opt_json) {
		kml_json_arr_end(&j);
		kml_json_finish(&j);
	}
	free(ids);
	return 0;
}

/* ---- clear ---------------------------------------------------------------- */

static int cmd_clear(int argc, char **argv)
{
	uint64_t *ids;
	struct knob k;
	size_t i, n;
	bool all = false, removed = false;
	int ret = 0;

	if (argc != 2)
		kml_die(2, "memcg-dirtyctl clear CGROUP | --all | --removed",
			"clear needs one CGROUP or --all or --removed");
	all = !strcmp(argv[1], "--all");
	removed = !strcmp(argv[1], "--removed");
	if (!all && !removed) {
		struct cg cg;
		char dir[PATH_MAX];

		resolve_cgroup(argv[1], &cg);
		need_module();
		knob_dir(cg.id, dir, sizeof(dir));
		if (rmdir(dir)) {
			if (errno == ENOENT)
				kml_die(1, "nothing to clear; 'memcg-dirtyctl show' lists the limits",
					"no limits are set for '%s'", cg.rel);
			kml_die(1, errno_hint(-errno), "cannot remove %s: %s", dir,
				strerror(errno));
		}
		return 0;
	}
	need_module();
	n = list_ids(&ids);
	for (i = 0; i < n; i++) {
		if (load_knob(ids[i], &k))
			continue;
		if (removed && k.live)
			continue;
		if (rmdir(k.dir) && errno != ENOENT) {
			kml_err(NULL, "cannot remove %s: %s", k.dir, strerror(errno));
			ret = 1;
		}
	}
	free(ids);
	return ret;
}

/* ---- watch ---------------------------------------------------------------- */

static int cmd_watch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ }
	};
	uint64_t count = 0, t0, seen = 0, last_thr = 0, last_pause = 0;
	double interval = 1.0;
	struct cg cg;
	struct knob k;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			interval = strtod(optarg, &end);
			if (*end || !(interval >= 0.1 && interval <= 3600))
				kml_die(2, "give seconds between 0.1 and 3600, e.g. 0.5",
					"--interval: '%s' is not a valid period", optarg);
			break;
		case 'c':
			if (kml_parse_u64(optarg, &count) || !count)
				kml_die(2, "give a positive number of samples",
					"--count: '%s' is not a positive number", optarg);
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1)
		kml_die(2, "memcg-dirtyctl watch CGROUP [--interval SEC] [--count N]",
			"watch needs exactly one CGROUP");
	resolve_cgroup(argv[optind], &cg);
	need_module();
	if (load_knob(cg.id, &k))
		kml_die(1, "set one first: memcg-dirtyctl set CGROUP --dirty-bytes SIZE",
			"no limits are set for '%s'", cg.rel);
	last_thr = k.throttle_events;
	last_pause = k.pause_ns;
	t0 = kml_now_ns();
	if (!opt_json)
		printf("%8s %9s %9s %9s %9s %9s %9s %9s\n", "TIME_S", "FILE_DRT",
		       "FILE_WB", "DIRTY", "WB", "EFF", "THROTTLE", "PAUSE_MS");
	while (!count || seen < count) {
		struct timespec ts = {
			.tv_sec = (time_t)interval,
			.tv_nsec = (long)((interval - (time_t)interval) * 1e9),
		};
		double t;

		if (seen)
			nanosleep(&ts, NULL);
		if (load_knob(cg.id, &k))
			kml_die(1, NULL, "the limits of '%s' were cleared", cg.rel);
		t = (kml_now_ns() - t0) / 1e9;
		if (opt_json) {
			struct kml_json j;

			kml_json_init(&j, stdout);
			kml_json_obj_begin(&j, NULL);
			kml_json_double(&j, "t", t);
			kml_json_u64(&j, "file_dirty", k.file_dirty);
			kml_json_u64(&j, "file_writeback", k.file_writeback);
			kml_json_u64(&j, "dirty", k.dirty);
			kml_json_u64(&j, "writeback", k.writeback);
			kml_json_u64(&j, "effective_dirty_bytes", k.eff_dirty);
			kml_json_u64(&j, "throttle_events", k.throttle_events - last_thr);
			kml_json_u64(&j, "pause_ns", k.pause_ns - last_pause);
			kml_json_obj_end(&j);
			kml_json_finish(&j);
		} else {
			char a[KML_SIZE_BUF], b[KML_SIZE_BUF], d[KML_SIZE_BUF],
			     w[KML_SIZE_BUF], e[KML_SIZE_BUF];

			printf("%8.1f %9s %9s %9s %9s %9s %9" PRIu64 " %9" PRIu64 "\n", t,
			       kml_format_size(k.file_dirty, a, sizeof(a)),
			       kml_format_size(k.file_writeback, b, sizeof(b)),
			       kml_format_size(k.dirty, d, sizeof(d)),
			       kml_format_size(k.writeback, w, sizeof(w)),
			       kml_format_size(k.eff_dirty, e, sizeof(e)),
			       k.throttle_events - last_thr,
			       (k.pause_ns - last_pause) / 1000000);
			fflush(stdout);
		}
		last_thr = k.throttle_events;
		last_pause = k.pause_ns;
		seen++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;
	int i, n = 0;

	kml_init(argv[0]);
	/* --json anywhere, removed before the subcommand parses */
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			opt_json = true;
		else
			argv[n++] = argv[i];
	}
	argc = n;
	argv[argc] = NULL;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "set"))
		return cmd_set(argc - 1, argv + 1);
	if (!strcmp(cmd, "show"))
		return cmd_show(argc - 1, argv + 1);
	if (!strcmp(cmd, "clear"))
		return cmd_clear(argc - 1, argv + 1);
	if (!strcmp(cmd, "watch"))
		return cmd_watch(argc - 1, argv + 1);
	kml_die(2, "commands: set, show, clear, watch (see --help)",
		"unknown command '%s'", cmd);
}
