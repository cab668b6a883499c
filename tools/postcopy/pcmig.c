// SPDX-License-Identifier: GPL-2.0
/*
 * pcmig - postcopy process-memory migration that survives broken links.
 *
 *   pcmig source --size 1G --connect ADDR [options]
 *   pcmig dest   --size 1G --listen ADDR [options]
 *   pcmig ctl    SOCKET status|pause|recover [ADDR]|switchover [--json]
 *   pcmig relay  --listen ADDR --connect ADDR
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kml.h"
#include "pcmig.h"
#include "workload.h"

/*
 * relay --die-after BYTES: SIGKILL ourselves after relaying that many bytes
 * from the destination back to the source (lands mid-handshake/bitmap)
 */
static uint64_t relay_die_after, relay_back_bytes;
/*
 * relay --blackhole-from TYPE: in each connection's source-to-destination
 * direction, from the first frame of TYPE on, swallow every byte (the
 * connection stays open: a per-flow black hole). --record DIR: write each
 * connection's source-to-destination bytes to DIR/conn-N. relay --replay
 * DIR --connect ADDR: send those files again, one connection each.
 */
static int relay_blackhole_type;
/* --flip-bit-after: flip one payload bit of the first page frame after */
static uint64_t relay_flip_after, relay_fwd_bytes;
static int relay_flipped;
static const char *relay_record_dir, *relay_replay_dir;

static void usage(FILE *f)
{
	fprintf(f, "usage: pcmig source --size SIZE --connect ADDR [options]\n"
		"       pcmig dest   --size SIZE --listen ADDR [options]\n"
		"       pcmig ctl    SOCKET status|pause|recover [ADDR]|switchover|abandon [--json]\n"
		"       pcmig relay  --listen ADDR --connect ADDR [--die-after BYTES]\n"
		"                    [--blackhole-from TYPE] [--flip-bit-after BYTES]\n"
		"                    [--record DIR]\n"
		"       pcmig relay  --replay DIR --connect ADDR\n"
		"\n"
		"Migrates a running demo workload's memory from a source process to a\n"
		"destination process: precopy rounds with dirty tracking, then postcopy\n"
		"(userfaultfd MISSING faults served on demand while the rest streams).\n"
		"A broken link pauses both sides; the destination's faulting threads wait;\n"
		"a new connection resumes with a received-bitmap exchange.\n"
		"\n"
		"ADDR: tcp:HOST:PORT, HOST:PORT, unix:PATH or an absolute path.\n"
		"\n"
		"common options:\n"
		"  --size SIZE          region size (K/M/G suffixes), both sides equal\n"
		"  --threads N          workload threads (default 2)\n"
		"  --key-file FILE      shared secret (>= 128 bits of entropy, e.g.\n"
		"                       `head -c 32 /dev/urandom > FILE; chmod 600 FILE`):\n"
		"                       every frame carries a SipHash tag under a per-link,\n"
		"                       per-channel, per-direction HKDF-SHA256 key\n"
		"  --timeout MS         link silence before pausing (default 2000)\n"
		"  --give-up-after DUR  stop when no link worked for DUR (e.g. 30s, 5m,\n"
		"                       1500ms; default never): state failed, exit 3\n"
		"  --page-checksums     (the default) source: send every page with its\n"
		"                       64-bit hash; dest: verify it, refuse pages\n"
		"                       without one\n"
		"  --no-page-checksums  plain pages (with --key-file the tag still\n"
		"                       covers them; without, only TCP's checksum)\n"
		"  --ctl PATH           control socket for `pcmig ctl`\n"
		"  --json               final report as JSON on stdout\n"
		"  --quiet              no progress lines\n"
		"source options:\n"
		"  --bandwidth RATE     limit the background stream (bytes/s, K/M/G)\n"
		"  --rounds N           precopy rounds before switchover (default 4)\n"
		"  --switch-pages N     switch over early when a round dirties <= N\n"
		"  --manual-switch      switch only on `pcmig ctl SOCK switchover`\n"
		"  --dirty MODE         auto (default), wp-async or soft-dirty\n"
		"dest options:\n"
		"  --workload MODE      rw (default), ro or none after postcopy starts\n"
		"  --run-after SEC      keep the workload running after completion (1)\n"
		"  --linger MS          after completion, wait this long for a source that\n"
		"                       lost the final acknowledgment (default 10000)\n"
		"  --on-source-lost P   when the source is lost for good (`pcmig ctl SOCK\n"
		"                       abandon`, or --give-up-after in postcopy): wait\n"
		"                       (default: faulting threads wait), poison (every\n"
		"                       missing page becomes a memory error: SIGBUS\n"
		"                       BUS_MCEERR_AR on access; the demo workload counts\n"
		"                       it and goes on) or kill (the workload)\n"
		"  --pidfile FILE       write the workload process id here\n"
		"  --unsafe-drop-uffd   (tests) behave like CRIU: the workload drops its\n"
		"                       userfaultfd and survives its handler\n"
		"\n"
		"exit status: 0 migrated and verified, 1 failure, 2 usage,\n"
		"             3 gave up (--give-up-after), 4 abandoned (pcmig ctl abandon)\n");
}

struct cli {
	const char *mode, *connect, *listen, *ctl, *pidfile;
	uint64_t size;
	unsigned int threads;
	bool json, quiet, unsafe_drop, manual;
	int dest_wl;		/* 0 rw, 1 ro, 2 none */
	double run_after;
	struct pcm_opts o;
	char *key;
};

/*
 * The key file holds the shared secret: at least 16 bytes with >= 128
 * bits by a per-byte entropy estimate (32 random bytes, or their hex or
 * base64), readable by its owner only. It is used as HKDF input keying
 * material, hex-encoded so that binary files work (a NUL byte is fine).
 */
static char *read_key(const char *path)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char buf[4097];
	const char *weak;
	struct stat stt;
	char *hex;
	size_t n, i;
	FILE *f = fopen(path, "r");

	if (!f)
		kml_die(2, "create it, e.g. `head -c 32 /dev/urandom > FILE; chmod 600 FILE`",
			"cannot read key file %s: %s", path, strerror(errno));
	if (fstat(fileno(f), &stt) == 0 && (stt.st_mode & 077))
		kml_die(2, "chmod 600 the key file",
			"key file %s is readable by group or others (mode %03o)",
			path, stt.st_mode & 0777);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > 4096)
		kml_die(2, "use a file of 32 random bytes",
			"key file %s is longer than 4096 bytes", path);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	weak = pcm_secret_weak(buf, n);
	if (weak)
		kml_die(2, "use 32 random bytes: `head -c 32 /dev/urandom > FILE` (or `openssl rand -hex 32`); passphrases are refused",
			"key file %s is too weak: %s", path, weak);
	hex = malloc(2 * n + 1);
	if (!hex)
		kml_die(1, "free memory", "out of memory");
	for (i = 0; i < n; i++) {
		hex[2 * i] = hx[buf[i] >> 4];
		hex[2 * i + 1] = hx[buf[i] & 15];
	}
	hex[2 * n] = 0;
	memset(buf, 0, sizeof(buf));
	return hex;
}

/* "1500ms", "30s", "5m", "2h", plain seconds */
static int parse_duration_ms(const char *s, uint64_t *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return -1;
	if (!strcmp(end, "ms"))
		*ms = v;
	else if (!*end || !strcmp(end, "s"))
		*ms = v * 1000;
	else if (!strcmp(end, "m"))
		*ms = v * 60000;
	else if (!strcmp(end, "h"))
		*ms = v * 3600000;
	else
		return -1;
	return *ms ? 0 : -1;
}

static const char *const type_names[PCM_T_MAX] = {
	[PCM_T_HELLO] = "HELLO", [PCM_T_HELLO_ACK] = "HELLO_ACK",
	[PCM_T_RBITMAP] = "RBITMAP", [PCM_T_RBITMAP_END] = "RBITMAP_END",
	[PCM_T_RESUME] = "RESUME", [PCM_T_RESUME_ACK] = "RESUME_ACK",
	[PCM_T_PAGE] = "PAGE", [PCM_T_ZERO] = "ZERO", [PCM_T_REQ] = "REQ",
	[PCM_T_DISCARD] = "DISCARD", [PCM_T_RUN] = "RUN",
	[PCM_T_COMPLETE] = "COMPLETE", [PCM_T_COMPLETE_ACK] = "COMPLETE_ACK",
	[PCM_T_PING] = "PING", [PCM_T_BYE] = "BYE", [PCM_T_PAGE_SUM] = "PAGE_SUM",
};

static void parse(struct cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "size", 1, 0, 's' }, { "connect", 1, 0, 'c' },
		{ "listen", 1, 0, 'l' }, { "threads", 1, 0, 't' },
		{ "key-file", 1, 0, 'k' }, { "timeout", 1, 0, 'T' },
		{ "ctl", 1, 0, 'C' }, { "json", 0, 0, 'j' },
		{ "quiet", 0, 0, 'q' }, { "bandwidth", 1, 0, 'b' },
		{ "rounds", 1, 0, 'r' }, { "switch-pages", 1, 0, 'S' },
		{ "manual-switch", 0, 0, 'M' }, { "dirty", 1, 0, 'd' },
		{ "workload", 1, 0, 'w' }, { "run-after", 1, 0, 'R' },
		{ "pidfile", 1, 0, 'P' }, { "unsafe-drop-uffd", 0, 0, 'U' },
		{ "session", 1, 0, 'I' }, { "help", 0, 0, 'h' },
		{ "broken-no-bitmap", 0, 0, 'B' }, { "linger", 1, 0, 'L' },
		{ "die-after", 1, 0, 'D' }, { "page-checksums", 0, 0, 'p' },
		{ "give-up-after", 1, 0, 'G' }, { "blackhole-from", 1, 0, 'H' },
		{ "record", 1, 0, 'A' }, { "replay", 1, 0, 'Y' },
		{ "broken-dirty", 0, 0, 'Z' }, { "on-source-lost", 1, 0, 'O' },
		{ "flip-bit-after", 1, 0, 'F' },
		{ "no-page-checksums", 0, 0, 'N' },
		{ 0 }
	};
	uint64_t v;
	int ch;

	pcm_opts_default(&c->o);
	c->threads = 2;
	c->run_after = 1;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (kml_parse_size(optarg, &c->size) || !c->size ||
			    c->size % PCM_PAGE_SIZE ||
			    c->size / PCM_PAGE_SIZE > PCM_MAX_PAGES)
				kml_die(2, "use a multiple of 4K up to 64G, e.g. --size 1G",
					"bad --size '%s'", optarg);
			break;
		case 'c':
			c->connect = optarg;
			break;
		case 'l':
			c->listen = optarg;
			break;
		case 't':
			if (kml_parse_u64(optarg, &v) || !v ||
			    v > WL_MAX_THREADS)
				kml_die(2, "use 1..16", "bad --threads '%s'",
					optarg);
			c->threads = v;
			break;
		case 'k':
			c->key = read_key(optarg);
			c->o.key = c->key;
			break;
		case 'T':
			if (kml_parse_u64(optarg, &v) || v < 100 ||
			    v > 600000)
				kml_die(2, "use 100..600000 ms",
					"bad --timeout '%s'", optarg);
			c->o.link_timeout_ms = v;
			break;
		case 'C':
			c->ctl = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		case 'q':
			c->quiet = true;
			c->o.quiet = true;
			break;
		case 'b':
			if (kml_parse_size(optarg, &c->o.bw_limit) ||
			    c->o.bw_limit < 65536)
				kml_die(2, "use at least 64K, e.g. --bandwidth 200M",
					"bad --bandwidth '%s'", optarg);
			break;
		case 'r':
			if (kml_parse_u64(optarg, &v) || !v || v > 1000)
				kml_die(2, "use 1..1000", "bad --rounds '%s'",
					optarg);
			c->o.max_rounds = v;
			break;
		case 'S':
			if (kml_parse_u64(optarg, &c->o.switch_pages))
				kml_die(2, "use a page count, e.g. --switch-pages 256",
					"bad --switch-pages '%s'", optarg);
			break;
		case 'M':
			c->o.manual_switch = true;
			break;
		case 'p':
			c->o.page_sums = true;
			break;
		case 'd':
			if (!strcmp(optarg, "auto"))
				c->o.dirty = PCM_DIRTY_AUTO;
			else if (!strcmp(optarg, "wp-async"))
				c->o.dirty = PCM_DIRTY_WP_ASYNC;
			else if (!strcmp(optarg, "soft-dirty"))
				c->o.dirty = PCM_DIRTY_SOFT_DIRTY;
			else
				kml_die(2, "use auto, wp-async or soft-dirty",
					"bad --dirty '%s'", optarg);
			break;
		case 'w':
			if (!strcmp(optarg, "rw"))
				c->dest_wl = 0;
			else if (!strcmp(optarg, "ro"))
				c->dest_wl = 1;
			else if (!strcmp(optarg, "none"))
				c->dest_wl = 2;
			else
				kml_die(2, "use rw, ro or none",
					"bad --workload '%s'", optarg);
			break;
		case 'R':
			c->run_after = atof(optarg);
			if (c->run_after < 0 || c->run_after > 3600)
				kml_die(2, "use 0..3600", "bad --run-after");
			break;
		case 'P':
			c->pidfile = optarg;
			break;
		case 'U':
			c->unsafe_drop = true;
			break;
		case 'B':
			c->o.broken_no_bitmap = true;
			break;
		case 'Z':
			c->o.broken_dirty = true;
			break;
		case 'D':
			if (kml_parse_size(optarg, &relay_die_after))
				kml_die(2, "use a byte count (K/M/G), e.g. --die-after 1M",
					"bad --die-after '%s'", optarg);
			break;
		case 'G':
			if (parse_duration_ms(optarg, &c->o.give_up_ms))
				kml_die(2, "use a duration such as 30s, 5m or 1500ms",
					"bad --give-up-after '%s'", optarg);
			break;
		case 'O':
			if (!strcmp(optarg, "wait"))
				c->o.on_lost = PCM_LOST_WAIT;
			else if (!strcmp(optarg, "poison"))
				c->o.on_lost = PCM_LOST_POISON;
			else if (!strcmp(optarg, "kill"))
				c->o.on_lost = PCM_LOST_KILL;
			else
				kml_die(2, "use wait, poison or kill",
					"bad --on-source-lost '%s'", optarg);
			break;
		case 'H':
			for (v = 1; v < PCM_T_MAX; v++)
				if (!strcmp(optarg, type_names[v]))
					break;
			if (v == PCM_T_MAX)
				kml_die(2, "use a frame type name such as COMPLETE or RUN",
					"bad --blackhole-from '%s'", optarg);
			relay_blackhole_type = v;
			break;
		case 'F':
			if (kml_parse_size(optarg, &relay_flip_after) ||
			    !relay_flip_after)
				kml_die(2, "use a byte count (K/M/G), e.g. --flip-bit-after 1M",
					"bad --flip-bit-after '%s'", optarg);
			break;
		case 'N':
			c->o.page_sums = false;
			break;
		case 'A':
			relay_record_dir = optarg;
			break;
		case 'Y':
			relay_replay_dir = optarg;
			break;
		case 'L':
			if (kml_parse_u64(optarg, &v) || v > 600000)
				kml_die(2, "use 0..600000 ms", "bad --linger");
			c->o.linger_ms = v;
			break;
		case 'I':
			if (kml_parse_u64(optarg, &c->o.session) ||
			    !c->o.session)
				kml_die(2, "use a non-zero number, or leave it out for a random one",
					"bad --session '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (!c->size)
		kml_die(2, "add --size, e.g. --size 1G", "no region size");
}

/* ---- control socket ---- */

struct ctl_target {
	struct pcm_src *s;
	struct pcm_dst *d;
	struct wl *w;
	struct wl_stats *wst;
	int lfd;
	pthread_t thr;
};

static void status_of(struct ctl_target *t, struct pcm_stats *st)
{
	if (t->s)
		pcm_src_status(t->s, st);
	else
		pcm_dst_status(t->d, st);
}

static void *ctl_thread(void *arg)
{
	struct ctl_target *t = arg;

	for (;;) {
		char cmd[512] = "";
		struct pcm_stats st;
		struct kml_json j;
		ssize_t n;
		FILE *f;
		int fd = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;	/* ctl_stop() shut the socket down */
		}
		n = read(fd, cmd, sizeof(cmd) - 1);
		if (n <= 0) {
			close(fd);
			continue;
		}
		cmd[n] = 0;
		cmd[strcspn(cmd, "\r\n")] = 0;
		f = fdopen(fd, "w");
		if (!f) {
			close(fd);
			continue;
		}
		if (!strcmp(cmd, "status")) {
			status_of(t, &st);
			kml_json_init(&j, f);
			kml_json_obj_begin(&j, NULL);
			kml_json_str(&j, "role", t->s ? "source" : "dest");
			pcm_stats_json(&st, &j);
			kml_json_obj_end(&j);
			kml_json_finish(&j);
		} else if (!strcmp(cmd, "pause")) {
			if (t->s)
				pcm_src_pause(t->s);
			else
				pcm_dst_pause(t->d);
			fprintf(f, "{\"ok\": true}\n");
		} else if (!strncmp(cmd, "recover", 7) &&
			   (!cmd[7] || cmd[7] == ' ')) {
			const char *a = cmd[7] ? cmd + 8 : NULL;
			int r = t->s ? pcm_src_recover(t->s, a) :
				       pcm_dst_recover(t->d, a);

			fprintf(f, "{\"ok\": %s}\n", r ? "false" : "true");
		} else if (!strcmp(cmd, "switchover") && t->s) {
			pcm_src_switchover(t->s);
			fprintf(f, "{\"ok\": true}\n");
		} else if (!strcmp(cmd, "abandon") && t->d) {
			char why[200];

			if (pcm_dst_abandon(t->d, why, sizeof(why)))
				fprintf(f, "{\"ok\": false, \"error\": \"%s\"}\n",
					why);
			else
				fprintf(f, "{\"ok\": true}\n");
		} else if (!strcmp(cmd, "abandon")) {
			fprintf(f, "{\"ok\": false, \"error\": \"abandon is for the destination's control socket\"}\n");
		} else {
			fprintf(f, "{\"ok\": false, \"error\": \"unknown command\"}\n");
		}
		fclose(f);
	}
	return NULL;
}

static void ctl_start(struct ctl_target *t, const char *path)
{
	char err[200];
	char addr[300];

	snprintf(addr, sizeof(addr), "unix:%s", path);
	t->lfd = pcm_listen(addr, err, sizeof(err));
	if (t->lfd < 0)
		kml_die(1, "choose a writable path for --ctl", "%s", err);
	pthread_create(&t->thr, NULL, ctl_thread, t);
}

/* stop serving the control socket before the state it reports goes */
static void ctl_stop(struct ctl_target *t, const char *path)
{
	if (!path)
		return;
	shutdown(t->lfd, SHUT_RDWR);
	pthread_join(t->thr, NULL);
	close(t->lfd);
	unlink(path);
}

static int cmd_ctl(int argc, char **argv)
{
	char addr[300], err[200], buf[8192], cmd[512];
	bool json = false;
	const char *verb = NULL, *arg = NULL;
	ssize_t n;
	size_t len = 0;
	int fd, i;

	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!verb && i > 2)
			verb = argv[i];
		else if (verb && !arg)
			arg = argv[i];
	}
	if (argc < 4 || !verb)
		kml_die(2, "e.g. pcmig ctl /run/pcmig.sock status",
			"ctl needs a socket and a command");
	snprintf(addr, sizeof(addr), "unix:%s", argv[2]);
	snprintf(cmd, sizeof(cmd), "%s%s%s\n", verb, arg ? " " : "",
		 arg ? arg : "");
	fd = pcm_connect(addr, 2000, err, sizeof(err));
	if (fd < 0)
		kml_die(1, "is pcmig running with --ctl on that path?", "%s",
			err);
	if (write(fd, cmd, strlen(cmd)) < 0)
		kml_die(1, "is pcmig still running with --ctl on that path?",
			"write to the control socket: %s", strerror(errno));
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	buf[len] = 0;
	close(fd);
	if (json || strcmp(verb, "status")) {
		fputs(buf, stdout);
	} else {
		/* one "key: value" per line from the flat JSON object */
		char *p = buf, *q;

		while ((p = strchr(p, '"'))) {
			q = strchr(p + 1, '"');
			if (!q || q[1] != ':')
				break;
			printf("%-20.*s ", (int)(q - p - 1), p + 1);
			p = q + 2;
			while (*p == ' ')
				p++;
			q = p;
			if (*q == '"') {
				q = strchr(p + 1, '"');
				if (!q)
					break;
				printf("%.*s\n", (int)(q - p - 1), p + 1);
				p = q + 1;
			} else {
				q += strcspn(q, ",}");
				printf("%.*s\n", (int)(q - p), p);
				p = q;
			}
		}
	}
	return strstr(buf, "\"ok\": false") ? 1 : 0;
}

/* ---- progress ---- */

struct prog {
	struct ctl_target *t;
	bool quiet;
	int stop;
};

static void *prog_thread(void *arg)
{
	struct prog *p = arg;
	struct kml_progress kp;
	struct pcm_stats st;

	status_of(p->t, &st);
	kml_progress_begin(&kp, p->t->s ? "pcmig source" : "pcmig dest",
			   st.npages, p->quiet);
	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		status_of(p->t, &st);
		kml_progress_update(&kp, st.received,
				    "pages %s/%s sent %" PRIu64 " recv %" PRIu64
				    " req %" PRIu64 " failures %" PRIu64,
				    pcm_phase_name(st.phase),
				    pcm_link_name(st.link), st.pages_sent,
				    st.pages_recv, st.pages_req, st.failures);
		usleep(200000);
	}
	kml_progress_end(&kp);
	return NULL;
}

static void report(struct cli *c, struct ctl_target *t, struct wl_stats *ws,
		   int mem_check, int ok)
{
	struct pcm_stats st;
	struct kml_json j;
	char a[KML_SIZE_BUF];

	status_of(t, &st);
	if (c->json) {
		kml_json_init(&j, stdout);
		kml_json_obj_begin(&j, NULL);
		kml_json_str(&j, "role", t->s ? "source" : "dest");
		kml_json_bool(&j, "ok", ok);
		kml_json_u64(&j, "size", c->size);
		if (t->d)
			kml_json_str(&j, "on_source_lost",
				     pcm_on_lost_name(c->o.on_lost));
		pcm_stats_json(&st, &j);
		kml_json_obj_begin(&j, "workload");
		kml_json_u64(&j, "checks", ws->checks);
		kml_json_u64(&j, "writes", ws->writes);
		kml_json_u64(&j, "errors", ws->errors);
		kml_json_u64(&j, "zero_pages", ws->zero_pages);
		kml_json_u64(&j, "sigbus_mceerr", ws->poison_mceerr);
		kml_json_u64(&j, "sigbus_other", ws->poison_other);
		kml_json_u64(&j, "sigbus_bad_addr", ws->poison_bad_addr);
		kml_json_str(&j, "first_error", ws->first_error);
		kml_json_obj_end(&j);
		if (mem_check >= 0)
			kml_json_bool(&j, "memory_identical", mem_check);
		kml_json_obj_end(&j);
		kml_json_finish(&j);
		return;
	}
	printf("%s: %s, %s migrated in %" PRIu64 " epochs, %" PRIu64
	       " link failures, %" PRIu64 " recoveries\n",
	       t->s ? "source" : "dest", ok ? "OK" : "FAILED",
	       kml_format_size(c->size, a, sizeof(a)), (uint64_t)st.epoch,
	       st.failures, st.recoveries);
	printf("  pages sent %" PRIu64 " received %" PRIu64 " requested %"
	       PRIu64 " urgent %" PRIu64 " rejected frames %" PRIu64 "\n",
	       st.pages_sent, st.pages_recv, st.pages_req, st.pages_urgent,
	       st.rejected_frames);
	if (st.lat_n)
		printf("  fault latency p50 %.1f us p90 %.1f us p99 %.1f us max %.1f us (%" PRIu64 " faults)\n",
		       st.lat_p50 / 1e3, st.lat_p90 / 1e3, st.lat_p99 / 1e3,
		       st.lat_max / 1e3, st.lat_n);
	printf("  digest source %016" PRIx64 " destination %016" PRIx64 "\n",
	       st.digest_src, st.digest_dst);
	printf("  workload: %" PRIu64 " checks, %" PRIu64 " writes, %" PRIu64
	       " errors%s%s\n", ws->checks, ws->writes, ws->errors,
	       ws->errors ? ": " : "", ws->first_error);
	if (ws->poison_mceerr || ws->poison_other || st.pages_poisoned)
		printf("  %" PRIu64 " missing pages poisoned; workload reads that got SIGBUS: %"
		       PRIu64 " BUS_MCEERR_AR, %" PRIu64 " other, %" PRIu64
		       " at a wrong address\n", st.pages_poisoned,
		       ws->poison_mceerr, ws->poison_other, ws->poison_bad_addr);
	if (mem_check >= 0)
		printf("  live memory %s the source\n",
		       mem_check ? "identical to" : "DIFFERS from");
	if (*st.last_error && !ok)
		printf("  last error: %s\n", st.last_error);
}

/* ---- source ---- */

static int cmd_source(struct cli *c)
{
	struct ctl_target t = { 0 };
	struct pcm_region_ops ops;
	struct prog p = { 0 };
	struct pcm_stats st;
	struct wl w;
	pthread_t pt;
	char err[256];
	void *base;
	int ret;

	if (!c->connect)
		kml_die(2, "add --connect ADDR (where `pcmig dest` listens)",
			"no --connect address");
	if (c->o.on_lost != PCM_LOST_WAIT)
		kml_die(2, "give --on-source-lost to `pcmig dest`",
			"--on-source-lost is a destination option");
	base = mmap(NULL, c->size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		kml_die(1, "use a smaller --size", "mmap %" PRIu64 " bytes: %s",
			c->size, strerror(errno));
	madvise(base, c->size, MADV_NOHUGEPAGE);
	if (wl_init(&w, base, c->size / PCM_PAGE_SIZE, c->threads, true))
		kml_die(2, "use a bigger --size or fewer --threads",
			"region too small for the workload");
	wl_fill(&w);
	ops = (struct pcm_region_ops){ .freeze = wl_freeze, .thaw = wl_thaw,
				       .arg = &w };
	t.s = pcm_src_create(base, c->size, &c->o, &ops, err, sizeof(err));
	if (!t.s)
		kml_die(1, "needs userfaultfd WP_ASYNC (6.7+) or CONFIG_MEM_SOFT_DIRTY; run as root or set vm.unprivileged_userfaultfd=1",
			"%s", err);
	if (wl_start(&w))
		kml_die(1, "use fewer --threads or raise the process limit (ulimit -u)",
			"cannot start workload threads");
	if (c->ctl)
		ctl_start(&t, c->ctl);
	p.t = &t;
	p.quiet = c->quiet;
	pthread_create(&pt, NULL, prog_thread, &p);
	ret = pcm_src_run(t.s, c->connect);
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	pthread_join(pt, NULL);
	wl_thaw(&w);
	wl_stop(&w);
	report(c, &t, &w.st, -1, !ret && !w.st.errors);
	ctl_stop(&t, c->ctl);
	pcm_src_status(t.s, &st);
	pcm_src_destroy(t.s);
	munmap(base, c->size);
	free(c->key);
	if (st.gave_up)
		return 3;
	return ret || w.st.errors ? 1 : 0;
}

/* ---- destination: the workload runs in a child process ---- */

struct child_msg {
	uint64_t base;
	struct wl_stats st;
};

static int send_fd(int sock, int fd, const void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { (void *)data, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == (ssize_t)len ? 0 : -1;
}

static int recv_fd(int sock, void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { data, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &m, 0) != (ssize_t)len)
		return -1;
	cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static void child_main(struct cli *c, int memfd, int sock, pid_t parent)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct child_msg m = { 0 };
	struct wl w;
	char cmd;
	void *base;
	int uffd;

	/*
	 * The workload must not outlive its fault handler: with the handler
	 * gone nobody resolves faults. We keep our own reference to the
	 * userfaultfd, so the registration (and waiting) survives the
	 * handler's death until this SIGKILL arrives; without it the kernel
	 * would unregister the range and hand out zero pages.
	 */
	if (!c->unsafe_drop) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	}
	base = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (base == MAP_FAILED)
		_exit(1);
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	reg.range.start = (uintptr_t)base;
	reg.range.len = c->size;
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		fprintf(stderr, "pcmig: error: workload userfaultfd: %s\n",
			strerror(errno));
		_exit(1);
	}
	m.base = (uintptr_t)base;
	if (send_fd(sock, uffd, &m, sizeof(m)))
		_exit(1);
	if (c->unsafe_drop)
		close(uffd);
	if (wl_init(&w, base, c->size / PCM_PAGE_SIZE, c->threads,
		    c->dest_wl == 0))
		_exit(1);
	if (read(sock, &cmd, 1) != 1 || cmd != 's')
		_exit(0);
	if (c->o.on_lost == PCM_LOST_POISON && wl_survive_poison(&w))
		_exit(1);
	if (c->dest_wl != 2)
		wl_start(&w);
	if (c->unsafe_drop) {
		/* CRIU-like: outlive the handler, then report what we saw */
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		char c2;

		while (getppid() == parent) {
			if (poll(&pfd, 1, 100) == 1 &&
			    recv(sock, &c2, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
				break;
		}
		if (getppid() != parent) {
			sleep(1);
			wl_stop(&w);
			fprintf(stderr, "pcmig-workload: handler gone; %" PRIu64
				" checks, %" PRIu64 " errors, %" PRIu64
				" zero pages%s%s\n", w.st.checks, w.st.errors,
				w.st.zero_pages, w.st.errors ? ": " : "",
				w.st.first_error);
			_exit(w.st.errors ? 3 : 0);
		}
	}
	if (read(sock, &cmd, 1) != 1)
		_exit(1);
	wl_stop(&w);
	m.st = w.st;
	if (write(sock, &m, sizeof(m)) != sizeof(m))
		_exit(1);
	_exit(0);
}

/* how long the workload may take to stop and report */
#define WL_STOP_MS 10000

static int child_sock = -1;
static pid_t child_pid;

/* --on-source-lost kill */
static void dest_source_lost(void *arg)
{
	kill(child_pid, SIGKILL);
}

static void dest_postcopy_start(void *arg)
{
	if (write(child_sock, "s", 1) != 1)
		kml_warn("cannot start the workload process");
}

static int cmd_dest(struct cli *c)
{
	struct ctl_target t = { 0 };
	struct pcm_region_ops ops = {
		.postcopy_start = dest_postcopy_start,
		.source_lost = dest_source_lost,
	};
	struct child_msg m = { 0 };
	struct prog p = { 0 };
	int memfd, sv[2], uffd, ret, mem_check = -1, status = 0;
	bool stuck = false;
	struct pollfd pfd;
	ssize_t n;
	pthread_t pt;
	char err[256];
	pid_t pid, me = getpid();
	int lfd;

	if (!c->listen)
		kml_die(2, "add --listen ADDR", "no --listen address");
	/* a bad or busy address fails now, before the workload starts */
	lfd = pcm_listen(c->listen, err, sizeof(err));
	if (lfd < 0)
		kml_die(2, "use tcp:HOST:PORT with a free port, or unix:PATH in a writable directory",
			"%s", err);
	close(lfd);
	memfd = memfd_create("pcmig-region", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, c->size))
		kml_die(1, "use a smaller --size or free memory (shmem limit)",
			"memfd of %" PRIu64 " bytes: %s", c->size,
			strerror(errno));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		kml_die(1, "raise the open-file limit (ulimit -n)",
			"socketpair: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		kml_die(1, "raise the process limit (ulimit -u) or free memory",
			"fork: %s", strerror(errno));
	if (!pid) {
		close(sv[0]);
		child_main(c, memfd, sv[1], me);
	}
	close(sv[1]);
	child_sock = sv[0];
	child_pid = pid;
	uffd = recv_fd(sv[0], &m, sizeof(m));
	if (uffd < 0)
		kml_die(1, "run as root, or set vm.unprivileged_userfaultfd=1",
			"the workload process could not set up userfaultfd");
	if (c->pidfile) {
		FILE *f = fopen(c->pidfile, "w");

		if (f) {
			fprintf(f, "%d\n", pid);
			fclose(f);
		}
	}
	t.d = pcm_dst_create(memfd, c->size, uffd, m.base, &c->o, &ops, err,
			     sizeof(err));
	if (!t.d)
		kml_die(1, "use a smaller --size (at most 64G, 4K aligned)",
			"%s", err);
	if (c->ctl)
		ctl_start(&t, c->ctl);
	p.t = &t;
	p.quiet = c->quiet;
	pthread_create(&pt, NULL, prog_thread, &p);
	ret = pcm_dst_run(t.d, c->listen);
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	pthread_join(pt, NULL);
	if (!ret) {
		struct pcm_stats st;

		usleep(c->run_after * 1e6);
		if (c->dest_wl != 0) {
			pcm_dst_status(t.d, &st);
			mem_check = pcm_dst_memory_digest(t.d) == st.digest_src;
		}
	} else {
		struct pcm_stats st;

		pcm_dst_status(t.d, &st);
		kml_err(st.abandoned ? "the destination gave the source up: pcmig ctl abandon" :
			"check the source's report", "migration failed: %s",
			st.last_error);
		/* poisoned: the workload goes on with what arrived */
		if (st.pages_poisoned)
			usleep(c->run_after * 1e6);
	}
	/*
	 * Stop the workload and take its counts, with a deadline: after a
	 * failure in postcopy under --on-source-lost wait its threads wait for
	 * pages that will never come, and only SIGKILL ends them.
	 */
	n = -1;
	pfd.fd = sv[0];
	pfd.events = POLLIN;
	if (write(sv[0], "x", 1) == 1) {
		if (poll(&pfd, 1, WL_STOP_MS) == 1)
			n = read(sv[0], &m, sizeof(m));
		else
			stuck = !kill(pid, SIGKILL);
	}
	if (n != sizeof(m))
		memset(&m.st, 0, sizeof(m.st));
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (stuck)
			snprintf(m.st.first_error, sizeof(m.st.first_error),
				 "the workload did not stop within %d s (threads waiting for pages that will not come); killed",
				 WL_STOP_MS / 1000);
		else if (WIFSIGNALED(status))
			snprintf(m.st.first_error, sizeof(m.st.first_error),
				 "workload process killed by signal %d%s",
				 WTERMSIG(status),
				 c->o.on_lost == PCM_LOST_KILL ?
				 " (--on-source-lost kill)" : "");
		else
			snprintf(m.st.first_error, sizeof(m.st.first_error),
				 "workload process exit status %d",
				 WEXITSTATUS(status));
		m.st.errors++;
	}
	report(c, &t, &m.st, mem_check, !ret && !m.st.errors &&
	       mem_check != 0);
	ctl_stop(&t, c->ctl);
	{
		struct pcm_stats st;

		pcm_dst_status(t.d, &st);
		pcm_dst_destroy(t.d);
		close(uffd);
		close(memfd);
		close(sv[0]);
		free(c->key);
		if (st.gave_up)
			return 3;
		if (st.abandoned)
			return 4;
	}
	return ret || m.st.errors || mem_check == 0 ? 1 : 0;
}

/* ---- relay: forwards connections; tests SIGKILL it to break links ---- */

/* one relayed connection; the last of its two pumps frees it */
struct relay_conn {
	int fd, up, refs, rec;
};

struct pump {
	struct relay_conn *rc;
	int from, to;
	bool count;		/* destination to source */
	/* frame parser of the source-to-dest stream (black hole, flip) */
	unsigned char hb[PCM_HDR_SIZE];
	size_t hg;		/* header bytes seen */
	uint64_t skip;		/* payload bytes left in the current frame */
	int64_t flip;		/* payload offset to flip a bit at, -1: none */
	bool black;
};

/*
 * Parse the frames in the @n bytes at @b: flip a bit (--flip-bit-after)
 * and return how many bytes may pass before the black hole opens.
 */
static size_t frame_scan(struct pump *p, unsigned char *b, size_t n)
{
	size_t i = 0, pass = n;
	uint32_t len;
	uint16_t type;

	while (i < n && !p->black) {
		size_t k;

		if (p->skip) {
			k = p->skip < n - i ? p->skip : n - i;
			if (p->flip >= 0 && (uint64_t)p->flip < k) {
				b[i + p->flip] ^= 0x10;
				p->flip = -1;
				fprintf(stderr, "pcmig relay: flipped a bit\n");
			} else if (p->flip >= 0) {
				p->flip -= k;
			}
			p->skip -= k;
			i += k;
			continue;
		}
		if (!p->hg)
			pass = i;	/* a frame starts here */
		k = PCM_HDR_SIZE - p->hg < n - i ? PCM_HDR_SIZE - p->hg : n - i;
		memcpy(p->hb + p->hg, b + i, k);
		p->hg += k;
		i += k;
		if (p->hg < PCM_HDR_SIZE)
			continue;
		p->hg = 0;
		memcpy(&len, p->hb + offsetof(struct pcm_hdr, len), 4);
		memcpy(&type, p->hb + offsetof(struct pcm_hdr, type), 2);
		p->skip = le32toh(len);
		/* in the page's content, past its index (and checksum) */
		if (relay_flip_after && p->skip >= PCM_PAGE_SIZE &&
		    (le16toh(type) == PCM_T_PAGE ||
		     le16toh(type) == PCM_T_PAGE_SUM) &&
		    __atomic_load_n(&relay_fwd_bytes, __ATOMIC_RELAXED) >=
		    relay_flip_after &&
		    !__atomic_exchange_n(&relay_flipped, 1, __ATOMIC_ACQ_REL))
			p->flip = p->skip - PCM_PAGE_SIZE / 2;
		if (le16toh(type) == relay_blackhole_type) {
			struct timespec ts;

			p->black = true;
			clock_gettime(CLOCK_REALTIME, &ts);
			fprintf(stderr, "pcmig relay: black hole from %s at %lld.%03ld\n",
				type_names[relay_blackhole_type],
				(long long)ts.tv_sec, ts.tv_nsec / 1000000);
			return pass;
		}
	}
	return p->black ? 0 : n;
}

/*
 * --record: each chunk read from the source as { u64 microseconds since
 * the relay's first connection, u32 length, bytes } (little endian), so
 * that --replay keeps the original timing across both connections.
 */
static uint64_t relay_t0;

static void record_chunk(int fd, const unsigned char *b, size_t n)
{
	unsigned char h[12];
	uint64_t us = htole64((kml_now_ns() - relay_t0) / 1000);
	uint32_t len = htole32(n);

	memcpy(h, &us, 8);
	memcpy(h + 8, &len, 4);
	if (write(fd, h, 12) != 12 || write(fd, b, n) != (ssize_t)n)
		kml_warn("relay --record: %s", strerror(errno));
}

static void *pump_thread(void *arg)
{
	struct pump *p = arg;
	struct relay_conn *rc = p->rc;
	unsigned char buf[65536];
	ssize_t n;

	while ((n = read(p->from, buf, p->count && relay_die_after ?
				 16 : sizeof(buf))) > 0) {
		size_t pass = n;

		if (p->count && relay_die_after &&
		    __atomic_add_fetch(&relay_back_bytes, n,
				       __ATOMIC_RELAXED) >= relay_die_after)
			kill(getpid(), SIGKILL);
		if (!p->count && rc->rec >= 0)
			record_chunk(rc->rec, buf, n);
		if (!p->count)
			__atomic_fetch_add(&relay_fwd_bytes, n,
					   __ATOMIC_RELAXED);
		if (!p->count && (relay_blackhole_type || relay_flip_after))
			pass = p->black ? 0 : frame_scan(p, buf, n);
		if (pass && write(p->to, buf, pass) != (ssize_t)pass)
			break;
	}
	shutdown(p->to, SHUT_WR);
	shutdown(p->from, SHUT_RD);
	if (__atomic_sub_fetch(&rc->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		close(rc->fd);
		close(rc->up);
		if (rc->rec >= 0)
			close(rc->rec);
		free(rc);
	}
	free(p);
	return NULL;
}

static void relay_start(int fd, int up, int rec)
{
	struct relay_conn *rc = calloc(1, sizeof(*rc));
	struct pump *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	pthread_t t;

	if (!rc || !a || !b)
		kml_die(1, "free memory", "relay: out of memory");
	*rc = (struct relay_conn){ .fd = fd, .up = up, .refs = 2, .rec = rec };
	a->rc = rc;
	a->from = fd;
	a->to = up;
	b->rc = rc;
	b->from = up;
	b->to = fd;
	b->count = true;
	a->flip = -1;
	b->flip = -1;
	pthread_create(&t, NULL, pump_thread, a);
	pthread_detach(t);
	pthread_create(&t, NULL, pump_thread, b);
	pthread_detach(t);
}

/* relay --replay DIR: each DIR/conn-N becomes one connection again */
static int cmd_replay(struct cli *c)
{
	char err[200], path[4096];
	int n;

	relay_t0 = kml_now_ns();
	for (n = 0; ; n++) {
		int fd, up, sv[2];

		snprintf(path, sizeof(path), "%s/conn-%d", relay_replay_dir, n);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		up = pcm_connect(c->connect, 2000, err, sizeof(err));
		if (up < 0)
			kml_die(1, "is the destination listening?", "%s", err);
		/* the file is the source side: feed it through a socketpair */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			kml_die(1, "raise the open-file limit", "socketpair: %s",
				strerror(errno));
		relay_start(sv[0], up, -1);
		if (!fork()) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			char b[65536];

			/*
			 * The recorded timing, except that everything after
			 * the first chunk (the HELLO) is 0.3 s later: the
			 * destination has answered by then, so the frames
			 * meet the link keys, not an early-bytes check.
			 */
			unsigned char h[12];
			uint64_t us, start = relay_t0;
			uint32_t len;
			bool first = true;

			while (read(fd, h, 12) == 12) {
				memcpy(&us, h, 8);
				memcpy(&len, h + 8, 4);
				us = le64toh(us) + (first ? 0 : 300000);
				len = le32toh(len);
				first = false;
				if (len > sizeof(b) ||
				    read(fd, b, len) != (ssize_t)len)
					break;
				while (kml_now_ns() < start + us * 1000)
					usleep(100);
				if (write(sv[1], b, len) != (ssize_t)len)
					break;
			}
			/* keep the connection open, drain the answers */
			while (read(sv[1], b, sizeof(b)) > 0)
				;
			_exit(0);
		}
		close(fd);
		/* the source connects main, then bulk: keep that order */
		usleep(2000);
	}
	if (!n)
		kml_die(2, "record with pcmig relay --record DIR first",
			"no %s/conn-0", relay_replay_dir);
	pause();
	return 0;
}

static int cmd_relay(struct cli *c)
{
	char err[200];
	int lfd, nconn = 0;

	if (relay_replay_dir && c->connect)
		return cmd_replay(c);
	if (!c->listen || !c->connect)
		kml_die(2, "e.g. pcmig relay --listen 127.0.0.1:7001 --connect 127.0.0.1:7000",
			"relay needs --listen and --connect");
	lfd = pcm_listen(c->listen, err, sizeof(err));
	if (lfd < 0)
		kml_die(1, "is another relay still running?", "%s", err);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), up, rec = -1;

		if (fd < 0)
			continue;
		up = pcm_connect(c->connect, 2000, err, sizeof(err));
		if (up < 0) {
			close(fd);
			continue;
		}
		if (relay_record_dir) {
			char path[4096];

			if (!nconn)
				relay_t0 = kml_now_ns();
			snprintf(path, sizeof(path), "%s/conn-%d",
				 relay_record_dir, nconn++);
			rec = open(path, O_WRONLY | O_CREAT | O_TRUNC |
				   O_CLOEXEC, 0600);
			if (rec < 0)
				kml_warn("relay --record %s: %s", path,
					 strerror(errno));
		}
		relay_start(fd, up, rec);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };

	kml_init(argv[0]);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	signal(SIGPIPE, SIG_IGN);
	c.mode = argv[1];
	if (!strcmp(c.mode, "ctl"))
		return cmd_ctl(argc, argv);
	if (!strcmp(c.mode, "relay")) {
		c.size = PCM_PAGE_SIZE;
		parse(&c, argc - 1, argv + 1);
		return cmd_relay(&c);
	}
	if (strcmp(c.mode, "source") && strcmp(c.mode, "dest"))
		kml_die(2, "use source, dest, ctl or relay (see --help)",
			"unknown command '%s'", c.mode);
	parse(&c, argc - 1, argv + 1);
	if (!strcmp(c.mode, "source"))
		return cmd_source(&c);
	if (!strcmp(c.mode, "dest"))
		return cmd_dest(&c);
	kml_die(2, "use source, dest, ctl or relay", "unknown command '%s'",
		c.mode);
}
