// SPDX-License-Identifier: GPL-2.0
/*
 * libpcmig: what the source (src.c) and the destination (dst.c) share
 * besides the link state (sess.c) and the wire format (proto.c): default
 * options, the names of phases, link states and policies, and the status
 * report.
 */
#include <stdio.h>
#include <string.h>

#include "kml.h"
#include "pcmig.h"

void pcm_opts_default(struct pcm_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->link_timeout_ms = 2000;
	o->retry_ms = 100;
	o->max_rounds = 4;
	o->switch_pages = 256;
	o->linger_ms = 10000;
	/* a flipped bit must not reach the workload, keyed or not */
	o->page_sums = true;
}

const char *pcm_phase_name(int phase)
{
	static const char *const n[] = { "new", "precopy", "postcopy-active",
					  "completed", "failed" };

	return phase >= 0 && phase < (int)KML_ARRAY_SIZE(n) ? n[phase] : "?";
}

const char *pcm_on_lost_name(int policy)
{
	static const char *const n[] = { "wait", "poison", "kill" };

	return policy >= 0 && policy < (int)KML_ARRAY_SIZE(n) ? n[policy] : "?";
}

const char *pcm_link_name(int link)
{
	static const char *const n[] = { "active", "paused", "recovering" };

	return link >= 0 && link < (int)KML_ARRAY_SIZE(n) ? n[link] : "?";
}

void pcm_stats_json(const struct pcm_stats *st, void *jp)
{
	struct kml_json *j = jp;
	char sid[24];

	snprintf(sid, sizeof(sid), "%016llx", (unsigned long long)st->session);
	kml_json_str(j, "state", st->link == PCM_LINK_ACTIVE ||
		     st->phase >= PCM_PH_COMPLETED ?
		     pcm_phase_name(st->phase) :
		     st->link == PCM_LINK_PAUSED ? "paused" : "recovering");
	kml_json_str(j, "phase", pcm_phase_name(st->phase));
	kml_json_str(j, "link", pcm_link_name(st->link));
	kml_json_str(j, "session", sid);
	kml_json_u64(j, "epoch", st->epoch);
	kml_json_u64(j, "npages", st->npages);
	kml_json_u64(j, "pages_done", st->received);
	kml_json_u64(j, "pages_sent", st->pages_sent);
	kml_json_u64(j, "pages_received", st->pages_recv);
	kml_json_u64(j, "pages_requested", st->pages_req);
	kml_json_u64(j, "pages_urgent", st->pages_urgent);
	kml_json_u64(j, "pages_duplicate", st->pages_dup);
	kml_json_u64(j, "pages_checksummed", st->pages_summed);
	kml_json_u64(j, "page_frames_read", st->page_frames);
	kml_json_u64(j, "precopy_rounds", st->rounds);
	kml_json_u64(j, "dirty_last_round", st->dirty_last);
	kml_json_str(j, "dirty_tracking", st->dirty_mode);
	kml_json_u64(j, "dirty_dropped", st->dirty_dropped);
	kml_json_u64(j, "pages_not_resent", st->pages_not_resent);
	kml_json_u64(j, "failures", st->failures);
	kml_json_u64(j, "recoveries", st->recoveries);
	kml_json_u64(j, "rejected_frames", st->rejected_frames);
	kml_json_bool(j, "gave_up", st->gave_up);
	kml_json_bool(j, "abandoned", st->abandoned);
	kml_json_u64(j, "pages_poisoned", st->pages_poisoned);
	kml_json_u64(j, "recover_ns_last", st->recover_ns_last);
	kml_json_u64(j, "recover_ns_max", st->recover_ns_max);
	kml_json_u64(j, "fault_samples", st->lat_n);
	kml_json_u64(j, "fault_p50_ns", st->lat_p50);
	kml_json_u64(j, "fault_p90_ns", st->lat_p90);
	kml_json_u64(j, "fault_p99_ns", st->lat_p99);
	kml_json_u64(j, "fault_max_ns", st->lat_max);
	snprintf(sid, sizeof(sid), "%016llx",
		 (unsigned long long)st->digest_src);
	kml_json_str(j, "digest_source", sid);
	snprintf(sid, sizeof(sid), "%016llx",
		 (unsigned long long)st->digest_dst);
	kml_json_str(j, "digest_destination", sid);
	kml_json_str(j, "last_error", st->last_error);
}
