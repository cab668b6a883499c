// SPDX-License-Identifier: GPL-2.0
/*
 * vub - a vhost-user-blk back-end serving a raw image file or block device
 * on a UNIX socket.
 *
 * Ring state follows the current vhost-user spec: every ring is
 * started/stopped (SET_VRING_KICK / GET_VRING_BASE) and, independently,
 * enabled/disabled (SET_VRING_ENABLE, or all rings enabled by a
 * SET_FEATURES without F_PROTOCOL_FEATURES). SET_FEATURES never disables a
 * ring. A ring is processed only while started and enabled, so nothing is
 * written to guest memory while rings are stopped.
 *
 * One protocol thread, poll(): several front-ends may be connected at once
 * (each has its own memory table and rings; they share the image), which is
 * what a migration between two QEMUs on one host needs. It serves a request
 * itself when the page cache can take it without blocking (RWF_NOWAIT) and
 * hands the rest to a worker pool. Every message is
 * validated; a malformed one gets a NACK (if REPLY_ACK was asked for) and
 * the connection is closed. Guest memory is only ever accessed through
 * vub_gpa()/vub_uva(), which check the whole range against the table.
 */

#include "vub.h"

static volatile sig_atomic_t vub_stop;

/* ---- setup and main loop ------------------------------------------------ */

static void vub_on_signal(int sig)
{
	vub_stop = 1;
}

static int vub_listen(struct vub *v)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(v->sock_path) >= sizeof(sa.sun_path))
		kml_die(2, "use a shorter path (at most 107 bytes)",
			"socket path too long: %s", v->sock_path);
	strcpy(sa.sun_path, v->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		kml_die(1, NULL, "socket: %s", strerror(errno));
	if (lstat(v->sock_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			kml_die(1, "pick another --socket path",
				"%s exists and is not a socket", v->sock_path);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			kml_die(1, "stop the other back-end or pick another --socket path",
				"%s is in use by a running server",
				v->sock_path);
		unlink(v->sock_path);
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			kml_die(1, NULL, "socket: %s", strerror(errno));
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		kml_die(1, "check that the directory exists and is writable",
			"bind %s: %s", v->sock_path, strerror(errno));
	if (listen(fd, VUB_MAX_CONNS) < 0)
		kml_die(1, NULL, "listen: %s", strerror(errno));
	return fd;
}

static void vub_open_image(struct vub *v)
{
	struct stat st;
	uint64_t size;

	v->img_fd = open(v->file, (v->read_only ? O_RDONLY : O_RDWR) |
			 O_CLOEXEC);
	if (v->img_fd < 0)
		kml_die(1, v->read_only ? "check the path" :
			"check the path and permissions, or use --read-only",
			"cannot open %s: %s", v->file, strerror(errno));
	if (fstat(v->img_fd, &st) < 0)
		kml_die(1, NULL, "fstat %s: %s", v->file, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(v->img_fd, BLKGETSIZE64, &size) < 0)
			kml_die(1, NULL, "BLKGETSIZE64 %s: %s", v->file,
				strerror(errno));
	} else if (S_ISREG(st.st_mode)) {
		size = st.st_size;
	} else {
		kml_die(2, "give a raw image file or a block device",
			"%s is neither a regular file nor a block device",
			v->file);
	}
	v->capacity = size / VUB_SECTOR * VUB_SECTOR;
	if (!v->capacity)
		kml_die(2, "grow it, e.g. truncate -s 64M IMAGE",
			"%s is smaller than one 512-byte sector", v->file);
	if (size % VUB_SECTOR)
		kml_warn("%s: the last %" PRIu64 " bytes (partial sector) are not served",
			 v->file, size % VUB_SECTOR);
}

static void vub_accept(struct vub *v)
{
	struct vub_conn *c;
	unsigned int i, slot = VUB_MAX_CONNS;
	int fd;

	/* never waited on: see vub_conn_read() and vub_reply() */
	fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (i = 0; i < VUB_MAX_CONNS; i++)
		if (!v->conns[i]) {
			slot = i;
			break;
		}
	c = slot < VUB_MAX_CONNS ? vub_conn_new(v, fd) : NULL;
	if (!c) {
		kml_err("disconnect other front-ends first",
			"too many connections (max %d): refusing one",
			VUB_MAX_CONNS);
		close(fd);
		return;
	}
	v->conns[slot] = c;
	v->total_conns++;
	vub_log(v, "conn %u: connected", c->id);
}

static void vub_drop(struct vub *v, unsigned int slot)
{
	struct vub_conn *c = v->conns[slot];

	if (c->why)
		v->total_errors++;
	vub_log(v, "conn %u: closed after %" PRIu64 " requests", c->id,
		c->requests);
	vub_conn_free(v, c);
	v->conns[slot] = NULL;
}

/*
 * Close the connections whose message or reply is overdue. Returns the
 * time in ns until the next such deadline (at most @wait, -1: none).
 */
static int64_t vub_deadlines(struct vub *v, int64_t wait)
{
	uint64_t now = kml_now_ns();
	unsigned int s;

	for (s = 0; s < VUB_MAX_CONNS; s++) {
		struct vub_conn *c = v->conns[s];
		uint64_t due;

		if (!c)
			continue;
		if (c->out_len && now >= c->out_deadline) {
			vub_fail(c, "the front-end did not read its reply within 2 s");
			kml_err("the front-end must read the replies to its requests",
				"conn %u: %s: closing the connection", c->id,
				c->why);
			vub_drop(v, s);
			continue;
		}
		if (c->rx.got && now >= c->rx_deadline) {
			vub_failf(c, "message incomplete 2 s after its first byte (%zu of %zu bytes)",
				  c->rx.got, c->rx.got < sizeof(c->rx.msg.hdr) ?
				  sizeof(c->rx.msg.hdr) :
				  sizeof(c->rx.msg.hdr) + c->rx.msg.hdr.size);
			kml_err("a front-end must send each message in full",
				"conn %u: %s: closing the connection", c->id,
				c->why);
			vub_drop(v, s);
			continue;
		}
		due = c->out_len ? c->out_deadline :
		      c->rx.got ? c->rx_deadline : 0;
		if (due && (wait < 0 || due - now < (uint64_t)wait))
			wait = due - now;
	}
	return wait;
}

/*
 * The main loop. Nothing in it waits for a front-end: sockets are read
 * and written without blocking (a partial message and an unsent reply stay
 * buffered in the connection, with a deadline), ring fds are non-blocking
 * eventfds. It waits only in ppoll(), the one place SIGINT/SIGTERM are
 * unblocked (@sigmask), and for the image I/O of vub_drain().
 */
static void vub_loop(struct vub *v, const sigset_t *sigmask)
{
	struct pollfd pfd[2 + VUB_MAX_CONNS * (1 + VUB_MAX_QUEUES)];
	struct {
		unsigned int slot;
		int q;		/* -1: the socket */
	} who[KML_ARRAY_SIZE(pfd)];

	while (!vub_stop) {
		unsigned int n = 0, i, s;
		struct timespec ts;
		int64_t wait;
		int q, ret;

		wait = vub_held_calls(v);
		wait = vub_deadlines(v, wait);
		/* rings that failed while being refilled after a completion */
		for (s = 0; s < VUB_MAX_CONNS; s++) {
			struct vub_conn *c = v->conns[s];

			if (c && c->dead) {
				kml_err(vub_hint(c, "fix the front-end's ring"),
					"conn %u: %s: closing the connection",
					c->id, c->why ? c->why : "ring error");
				vub_drop(v, s);
			}
		}
		pfd[n].fd = v->listen_fd;
		pfd[n++].events = POLLIN;
		pfd[n].fd = v->done_fd;
		pfd[n++].events = POLLIN;
		for (s = 0; s < VUB_MAX_CONNS; s++) {
			struct vub_conn *c = v->conns[s];

			if (!c)
				continue;
			pfd[n].fd = c->sock;
			/* the next message only once the last reply is out */
			pfd[n].events = c->out_len ? POLLOUT : POLLIN;
			who[n].slot = s;
			who[n++].q = -1;
			for (q = 0; q < (int)v->nqueues; q++) {
				if (!c->vqs[q].started || c->vqs[q].kick_fd < 0)
					continue;
				pfd[n].fd = c->vqs[q].kick_fd;
				pfd[n].events = POLLIN;
				who[n].slot = s;
				who[n++].q = q;
			}
		}
		ts.tv_sec = wait / VUB_NS_PER_SEC;
		ts.tv_nsec = wait % VUB_NS_PER_SEC;
		ret = ppoll(pfd, n, wait < 0 ? NULL : &ts, sigmask);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			kml_die(1, NULL, "poll: %s", strerror(errno));
		}
		if (pfd[0].revents & POLLIN)
			vub_accept(v);
		if (pfd[1].revents & POLLIN)
			vub_complete(v, NULL);
		for (i = 2; i < n; i++) {
			struct vub_conn *c = v->conns[who[i].slot];

			if (!pfd[i].revents || !c)
				continue;
			if (who[i].q < 0 && c->out_len)
				ret = vub_flush(c);
			else if (who[i].q < 0)
				ret = vub_conn_read(v, c);
			else if (c->vqs[who[i].q].kick_fd != pfd[i].fd ||
				 !c->vqs[who[i].q].started)
				continue;	/* changed by an earlier message */
			else if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
				ret = vub_fail(c, "kick fd reports an error or hang-up");
			else
				ret = vub_kick(v, c, &c->vqs[who[i].q]);
			if (ret) {
				if (c->why && who[i].q >= 0)
					kml_err(vub_hint(c, "fix the front-end's ring"),
						"conn %u: queue %d: %s: closing the connection",
						c->id, who[i].q, c->why);
				vub_drop(v, who[i].slot);
			}
		}
	}
}

static const char *const vub_bug_names[] = {
	"disable-on-set-features",
	"no-dirty-log",
	"reset-owner-discards",
	"reset-device-ignored",
	"coalesce-no-rearm",
	"inflight-no-repair",
};

static void vub_usage(FILE *f)
{
	fprintf(f,
		"usage: vub --socket PATH --file IMAGE [options]\n"
		"\n"
		"A vhost-user-blk back-end serving a raw image file or block device.\n"
		"\n"
		"  -s, --socket PATH   UNIX socket to listen on (created; stale one replaced)\n"
		"  -f, --file IMAGE    raw image file or block device to serve\n"
		"  -q, --queues N      number of virtqueues, 1..%d (default 1)\n"
		"  -r, --read-only     serve read-only (VIRTIO_BLK_F_RO, writes fail)\n"
		"  -b, --bug=NAME      recreate a known defect, for testing checkers:\n"
		"                        disable-on-set-features  SET_FEATURES disables all\n"
		"                          rings once PROTOCOL_FEATURES is negotiated\n"
		"                        no-dirty-log  never mark pages in the dirty log\n"
		"                        reset-owner-discards  RESET_OWNER resets the\n"
		"                          rings like RESET_DEVICE (spec: ignore it or\n"
		"                          only disable the rings)\n"
		"                        reset-device-ignored  RESET_DEVICE does nothing\n"
		"                        coalesce-no-rearm  (with --coalesce) a held call\n"
		"                          is sent without looking at the ring again: the\n"
		"                          kick stays unarmed (a lost wake-up)\n"
		"                        inflight-no-repair  a ring resumed from an\n"
		"                          inflight region resubmits its last batch even\n"
		"                          when it reached the used ring\n"
		"  -c, --coalesce USEC[,IOPS]\n"
		"                      interrupt coalescing (default off): a queue that\n"
		"                      completes over IOPS requests/s (default %d) calls\n"
		"                      the guest at most once per USEC (1..%d) and\n"
		"                      takes new requests without kicks meanwhile: fewer\n"
		"                      guest exits per request, up to USEC more latency\n"
		"  -v, --verbose       log every message on stderr\n"
		"  -j, --json          print the ready and exit records as JSON lines\n"
		"  -h, --help          this text\n"
		"\n"
		"Runs until SIGINT/SIGTERM; serves up to %d front-ends at once.\n",
		VUB_MAX_QUEUES, VUB_COALESCE_IOPS, VUB_COALESCE_MAX_US,
		VUB_MAX_CONNS);
}

/* --coalesce USEC[,IOPS] */
static void vub_parse_coalesce(struct vub *v, const char *arg)
{
	char buf[64], *comma;
	uint64_t us, iops = VUB_COALESCE_IOPS;

	if (strlen(arg) >= sizeof(buf))
		goto bad;
	strcpy(buf, arg);
	comma = strchr(buf, ',');
	if (comma) {
		*comma = '\0';
		if (kml_parse_u64(comma + 1, &iops) || !iops ||
		    iops > VUB_COALESCE_MAX_IOPS)
			goto bad;
	}
	if (kml_parse_u64(buf, &us) || !us || us > VUB_COALESCE_MAX_US)
		goto bad;
	v->hold_ns = us * 1000;
	v->hold_iops = iops;
	return;
bad:
	kml_die(2, "use USEC from 1 to 100000 and an optional IOPS from 1 to 100000000, e.g. --coalesce 200,1000",
		"bad --coalesce '%s'", arg);
}

static void vub_print_state(struct vub *v, const char *event)
{
	char sz[KML_SIZE_BUF];

	kml_format_size(v->capacity, sz, sizeof(sz));
	if (v->json) {
		struct kml_json j;

		kml_json_init(&j, stdout);
		kml_json_obj_begin(&j, NULL);
		kml_json_str(&j, "event", event);
		kml_json_str(&j, "socket", v->sock_path);
		kml_json_str(&j, "file", v->file);
		kml_json_u64(&j, "size", v->capacity);
		kml_json_u64(&j, "queues", v->nqueues);
		kml_json_bool(&j, "read_only", v->read_only);
		kml_json_u64(&j, "features", vub_features(v));
		kml_json_u64(&j, "protocol_features", vub_protocol_features());
		kml_json_arr_begin(&j, "bugs");
		for (unsigned int i = 0; i < KML_ARRAY_SIZE(vub_bug_names); i++)
			if (v->bugs & (1u << i))
				kml_json_str(&j, NULL, vub_bug_names[i]);
		kml_json_arr_end(&j);
		kml_json_u64(&j, "connections", v->total_conns);
		kml_json_u64(&j, "probes", v->total_probes);
		kml_json_u64(&j, "requests", v->total_requests);
		kml_json_u64(&j, "requests_inline", v->total_inline);
		kml_json_u64(&j, "kicks", vub_kicks);
		kml_json_u64(&j, "calls", vub_calls);
		kml_json_u64(&j, "coalesce_us", v->hold_ns / 1000);
		kml_json_u64(&j, "coalesce_iops", v->hold_iops);
		kml_json_u64(&j, "calls_held", v->total_held);
		kml_json_u64(&j, "protocol_errors", v->total_errors);
		kml_json_u64(&j, "bug_hits", v->bug_hits);
		kml_json_obj_end(&j);
		kml_json_finish(&j);
		return;
	}
	if (!strcmp(event, "ready")) {
		char co[64] = "";

		if (v->hold_ns)
			snprintf(co, sizeof(co),
				 ", calls coalesced: %" PRIu64 " us above %" PRIu64 " IOPS",
				 v->hold_ns / 1000, v->hold_iops);
		printf("vub: serving %s (%s, %u queue%s%s%s) on %s%s%s\n",
		       v->file, sz, v->nqueues, v->nqueues > 1 ? "s" : "",
		       v->read_only ? ", read-only" : "", co, v->sock_path,
		       v->bugs ? " with deliberate bug " : "",
		       v->bugs ? vub_bug_names[__builtin_ctz(v->bugs)] : "");
	} else {
		printf("vub: exiting: %" PRIu64 " connections (%" PRIu64
		       " probes), %" PRIu64 " requests (%" PRIu64 " without the worker pool), %"
		       PRIu64 " kicks, %" PRIu64 " calls (%" PRIu64
		       " held back), %" PRIu64 " protocol errors\n",
		       v->total_conns, v->total_probes, v->total_requests,
		       v->total_inline,
		       vub_kicks, vub_calls, v->total_held, v->total_errors);
		if (v->bugs)
			printf("vub: deliberate bug %s: its faulty path taken %" PRIu64 " times\n",
			       vub_bug_names[__builtin_ctz(v->bugs)], v->bug_hits);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "queues", required_argument, NULL, 'q' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "bug", required_argument, NULL, 'b' },
		{ "coalesce", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct vub v = { .nqueues = 1, .img_fd = -1,
			 .nowait = { true, true } };
	struct sigaction sa = { .sa_handler = vub_on_signal };
	sigset_t stop_sigs, run_mask;
	uint64_t val;
	int opt;

	kml_init(argv[0]);
	while ((opt = getopt_long(argc, argv, "s:f:q:rb:c:vjh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			v.sock_path = optarg;
			break;
		case 'f':
			v.file = optarg;
			break;
		case 'q':
			if (kml_parse_u64(optarg, &val) || !val ||
			    val > VUB_MAX_QUEUES)
				kml_die(2, "use a number from 1 to 16",
					"bad --queues '%s'", optarg);
			v.nqueues = val;
			break;
		case 'r':
			v.read_only = true;
			break;
		case 'b': {
			unsigned int i;

			for (i = 0; i < KML_ARRAY_SIZE(vub_bug_names); i++)
				if (!strcmp(optarg, vub_bug_names[i]))
					break;
			if (i == KML_ARRAY_SIZE(vub_bug_names))
				kml_die(2, "use one of: disable-on-set-features, no-dirty-log, reset-owner-discards, reset-device-ignored, coalesce-no-rearm, inflight-no-repair",
					"unknown --bug '%s'", optarg);
			v.bugs |= 1u << i;
			break;
		}
		case 'c':
			vub_parse_coalesce(&v, optarg);
			break;
		case 'v':
			v.verbose = true;
			break;
		case 'j':
			v.json = true;
			break;
		case 'h':
			vub_usage(stdout);
			return 0;
		default:
			vub_usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		kml_die(2, "see vub --help", "unexpected argument '%s'",
			argv[optind]);
	if (!v.sock_path || !v.file)
		kml_die(2, "e.g. vub --socket /tmp/vub.sock --file disk.img",
			"--socket and --file are required");
	if ((v.bugs & BUG_COALESCE_NO_REARM) && !v.hold_ns)
		kml_die(2, "add --coalesce USEC[,IOPS]",
			"--bug=coalesce-no-rearm needs --coalesce");
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/*
	 * SIGINT/SIGTERM stay blocked (in the workers for good) except in
	 * the main loop's ppoll(): a stop request is never taken by a worker
	 * or lost between the loop's check and its wait.
	 */
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGINT);
	sigaddset(&stop_sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_sigs, &run_mask);
	sigdelset(&run_mask, SIGINT);
	sigdelset(&run_mask, SIGTERM);
	vub_sigbus_init();
	vub_open_image(&v);
	v.listen_fd = vub_listen(&v);
	pthread_mutex_init(&v.lock, NULL);
	pthread_cond_init(&v.cond, NULL);
	v.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v.done_fd < 0)
		kml_die(1, NULL, "eventfd: %s", strerror(errno));
	for (unsigned int i = 0; i < VUB_WORKERS; i++)
		if (pthread_create(&v.workers[i], NULL, vub_worker, &v))
			kml_die(1, "check ulimit -u", "cannot start worker threads");
	vub_print_state(&v, "ready");
	vub_loop(&v, &run_mask);
	for (unsigned int i = 0; i < VUB_MAX_CONNS; i++)
		if (v.conns[i])
			vub_drop(&v, i);
	pthread_mutex_lock(&v.lock);
	v.pool_stop = true;
	pthread_cond_broadcast(&v.cond);
	pthread_mutex_unlock(&v.lock);
	for (unsigned int i = 0; i < VUB_WORKERS; i++)
		pthread_join(v.workers[i], NULL);
	close(v.done_fd);
	close(v.listen_fd);
	unlink(v.sock_path);
	close(v.img_fd);
	vub_print_state(&v, "exit");
	return 0;
}
