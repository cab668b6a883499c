// SPDX-License-Identifier: GPL-2.0
/*
 * vu-check - a vhost-user-blk front-end conformance checker that needs no
 * VM. It connects to a back-end socket, shares its own memfd "guest RAM"
 * (two regions, guest-physical addresses different from its own virtual
 * addresses), builds split virtqueues in it and drives the back-end the
 * way QEMU 7.2 does, checking every step:
 *
 *   negotiation, memory table, ring setup, I/O (plain, indirect, every
 *   queue), flush, the 2023 seed scenario (rings enabled, LOG_ALL toggled
 *   with SET_FEATURES on and off: I/O must still complete; a back-end that
 *   disabled its rings is re-enabled, as the seed patch did, and reported
 *   as deviating), dirty-log contents after device writes (buffers and the
 *   used ring), no guest-memory writes after GET_VRING_BASE, restart from
 *   the returned index, reconnect without PROTOCOL_FEATURES (rings enabled
 *   at once).
 *
 * With --malformed it instead sends broken messages and broken rings on
 * fresh connections and checks that each gets an error and a closed
 * connection while another connection keeps working.
 *
 * The checker writes to the device: sectors [--sector, +256) are saved
 * first and restored at the end.
 */
#include "vc.h"

/* ---- main ---------------------------------------------------------------- */

static void vc_usage(FILE *f)
{
	fprintf(f,
		"usage: vu-check --socket PATH [options]\n"
		"\n"
		"Front-end conformance checker for vhost-user-blk back-ends (no VM).\n"
		"Writes to the device: sectors [SECTOR, SECTOR+256) are saved and restored.\n"
		"\n"
		"  -s, --socket PATH     back-end socket (waits up to 5 s for it)\n"
		"  -S, --sector N        first sector of the 128K test area (default 0)\n"
		"  -t, --timeout TIME    per-I/O completion timeout in ms (default 2000)\n"
		"  -m, --malformed       run the malformed-message checks instead\n"
		"  -L, --short-log       also check a dirty log shorter than guest memory\n"
		"                        (pages beyond it unlogged, I/O goes on)\n"
		"  -j, --json            JSON instead of the table\n"
		"  -v, --verbose         log every message sent\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: 0 if every check passed (skips allowed), 1 if any failed,\n"
		"2 on usage errors.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "sector", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 't' },
		{ "malformed", no_argument, NULL, 'm' },
		{ "short-log", no_argument, NULL, 'L' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct vc c = { .timeout_ms = 2000, .sock = -1 };
	bool json = false, malformed = false;
	unsigned int i, failed = 0, passed = 0, skipped = 0;
	uint8_t *saved = NULL;
	uint64_t val;
	int opt;

	kml_init(argv[0]);
	while ((opt = getopt_long(argc, argv, "s:S:t:mLjvh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			c.sock_path = optarg;
			break;
		case 'S':
			if (kml_parse_u64(optarg, &c.sector))
				kml_die(2, "give a sector number", "bad --sector '%s'",
					optarg);
			break;
		case 't':
			if (kml_parse_u64(optarg, &val) || !val || val > 600000)
				kml_die(2, "give milliseconds, 1..600000",
					"bad --timeout '%s'", optarg);
			c.timeout_ms = val;
			break;
		case 'm':
			malformed = true;
			break;
		case 'L':
			c.short_log = true;
			break;
		case 'j':
			json = true;
			break;
		case 'v':
			c.verbose = true;
			break;
		case 'h':
			vc_usage(stdout);
			return 0;
		default:
			vc_usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		kml_die(2, "see vu-check --help", "unexpected argument '%s'",
			argv[optind]);
	if (!c.sock_path)
		kml_die(2, "e.g. vu-check --socket /tmp/vub.sock",
			"--socket is required");
	signal(SIGPIPE, SIG_IGN);
	vc_setup_mem(&c);
	for (i = 0; i < VC_MAX_Q; i++) {
		c.vq[i].kick = -1;
		c.vq[i].call = -1;
	}
	c.ifl_fd = -1;

	if (malformed) {
		vc_run_malformed(&c);
	} else if (!vc_session(&c, true, true)) {
		struct vc_io io = { .type = VIRTIO_BLK_T_IN, .sector = c.sector,
				    .len = VC_TEST_SECTORS * 512 };
		char why[160];

		if (!c.capacity)
			c.capacity = c.sector + VC_TEST_SECTORS;
		if (c.sector + VC_TEST_SECTORS > c.capacity)
			kml_die(2, "use a larger image or a smaller --sector",
				"test area [%" PRIu64 ", +256) is beyond the %" PRIu64 "-sector device",
				c.sector, c.capacity);
		/* save the test area; restored at the end */
		if (vc_io_ok(&c, 0, &io, why, sizeof(why))) {
			saved = malloc(io.len);
			memcpy(saved, vc_data(&c, 0), io.len);
		}
		vc_check_io(&c);
		vc_check_migration(&c);
		vc_check_disabled(&c);
		vc_check_stop_restart(&c);
		vc_check_reset_owner(&c);
		vc_check_reset_device(&c);
		vc_check_reconnect(&c);
		vc_check_inflight(&c);
		if (saved && !vc_ro(&c)) {
			memcpy(vc_data(&c, 0), saved, io.len);
			io = (struct vc_io){ .type = VIRTIO_BLK_T_OUT,
					     .sector = c.sector,
					     .len = VC_TEST_SECTORS * 512 };
			if (!vc_io_ok(&c, 0, &io, why, sizeof(why)))
				kml_warn("restoring the test area failed: %s", why);
		}
		free(saved);
		vc_close(&c);
	}

	for (i = 0; i < nchecks; i++) {
		failed += checks[i].res == VC_FAIL;
		passed += checks[i].res == VC_PASS;
		skipped += checks[i].res == VC_SKIP;
	}
	if (json) {
		struct kml_json j;

		kml_json_init(&j, stdout);
		kml_json_obj_begin(&j, NULL);
		kml_json_str(&j, "socket", c.sock_path);
		kml_json_str(&j, "mode", malformed ? "malformed" : "conformance");
		kml_json_arr_begin(&j, "checks");
		for (i = 0; i < nchecks; i++) {
			kml_json_obj_begin(&j, NULL);
			kml_json_str(&j, "name", checks[i].name);
			kml_json_str(&j, "result", checks[i].res == VC_PASS ? "pass" :
				     checks[i].res == VC_FAIL ? "fail" : "skip");
			kml_json_str(&j, "detail", checks[i].detail);
			kml_json_obj_end(&j);
		}
		kml_json_arr_end(&j);
		kml_json_u64(&j, "passed", passed);
		kml_json_u64(&j, "failed", failed);
		kml_json_u64(&j, "skipped", skipped);
		kml_json_bool(&j, "ok", !failed && nchecks);
		kml_json_obj_end(&j);
		kml_json_finish(&j);
	} else {
		printf("%-28s %-6s %s\n", "CHECK", "RESULT", "DETAIL");
		for (i = 0; i < nchecks; i++)
			printf("%-28s %-6s %s\n", checks[i].name,
			       vc_res_name[checks[i].res], checks[i].detail);
		printf("\n%u passed, %u failed, %u skipped: %s\n", passed,
		       failed, skipped, !failed && nchecks ?
		       "back-end conforms" : "back-end does NOT conform");
	}
	return !failed && nchecks ? 0 : 1;
}
