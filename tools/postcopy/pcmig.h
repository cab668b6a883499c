/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libpcmig - postcopy migration of a process memory region with recovery
 * from transport failures.
 *
 * A source (struct pcm_src) streams a region to a destination
 * (struct pcm_dst) over two connections of one "link": the main channel
 * (handshake, page requests and the pages that answer them, heartbeats) and
 * the bulk channel (the ordered background stream: precopy pages, the
 * discard bitmap, RUN, postcopy pages, COMPLETE). See
 * Documentation/postcopy.rst for the state machine and the frame format.
 */
#ifndef PCMIG_H
#define PCMIG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcmig_proto.h"

/* Migration phase, the same names on both sides. */
enum pcm_phase {
	PCM_PH_NEW = 0,		/* dest: no source seen yet */
	PCM_PH_PRECOPY = 1,
	PCM_PH_POSTCOPY = 2,	/* source frozen, dest workload running */
	PCM_PH_COMPLETED = 3,
	PCM_PH_FAILED = 4,	/* fatal: digest mismatch or protocol misuse */
};

/* Link state. */
enum pcm_link {
	PCM_LINK_ACTIVE = 0,
	PCM_LINK_PAUSED = 1,	/* no connection; dest faults wait */
	PCM_LINK_RECOVERING = 2,/* handshake, bitmap exchange, resume */
};

/*
 * What the destination does with the pages still missing when the source
 * is lost for good (`pcmig ctl abandon`, or --give-up-after in postcopy):
 * WAIT leaves the faulting threads waiting; POISON makes every missing page
 * a memory error (UFFDIO_POISON: an access gets SIGBUS, BUS_MCEERR_AR on a
 * kernel with CONFIG_MEMORY_FAILURE), present pages stay; KILL calls
 * ops->source_lost (the CLI kills the workload).
 */
enum pcm_on_lost {
	PCM_LOST_WAIT = 0,
	PCM_LOST_POISON,
	PCM_LOST_KILL,
};

enum pcm_dirty_mode {
	PCM_DIRTY_AUTO = 0,
	PCM_DIRTY_WP_ASYNC,	/* uffd WP_ASYNC + PAGEMAP_SCAN */
	PCM_DIRTY_SOFT_DIRTY,	/* /proc/self/clear_refs + pagemap bit 55 */
};

struct pcm_opts {
	uint64_t session;	/* 0: random (source) / adopt first (dest) */
	const char *key;	/* shared secret, NULL: no authentication */
	int link_timeout_ms;	/* silence that declares the link lost */
	int retry_ms;		/* source: reconnect interval */
	uint64_t bw_limit;	/* source bulk bytes/s, 0: unlimited */
	int max_rounds;		/* source: precopy rounds before switchover */
	uint64_t switch_pages;	/* source: switch when dirty <= this */
	bool manual_switch;	/* source: only switch on request */
	int linger_ms;		/* dest: wait for a lost BYE this long */
	/*
	 * give up (phase failed, st.gave_up) when no link worked for this
	 * long, paused by the operator included; 0: never
	 */
	uint64_t give_up_ms;
	enum pcm_dirty_mode dirty;
	enum pcm_on_lost on_lost;	/* dest */
	bool quiet;
	/*
	 * per-page checksums: the source sends every page with its 64-bit
	 * hash (PAGE_SUM), the destination verifies it before placing the
	 * page and, with this set, refuses pages sent without one
	 */
	bool page_sums;
	/* test hooks (selftests only): misbehave to prove tests can fail */
	bool broken_no_bitmap;	/* source: ignore the received bitmap */
	bool broken_dirty;	/* source: drop what dirty tracking finds */
};

void pcm_opts_default(struct pcm_opts *o);

/* Counters shared by both sides; read with pcm_*_status(). */
#define PCM_LAT_MAX	(1u << 20)

struct pcm_stats {
	uint64_t pages_sent, pages_recv, pages_req, pages_urgent;
	uint64_t pages_dup, bytes_sent, bytes_recv;
	uint64_t pages_summed;	/* sent / verified with a page checksum */
	uint64_t page_frames;	/* dest: PAGE / PAGE_SUM frames read */
	uint64_t failures, recoveries, rejected_frames;
	uint32_t gave_up;	/* --give-up-after expired */
	uint32_t abandoned;	/* pcm_dst_abandon() */
	uint64_t pages_poisoned;	/* missing pages made memory errors */
	uint64_t rounds, dirty_last;
	uint64_t dirty_dropped;	/* --broken-dirty: dirty pages not re-sent */
	/*
	 * --broken-no-bitmap: pages the destination lacked at the last resume
	 * that the source did not queue again (lost in flight for good)
	 */
	uint64_t pages_not_resent;
	uint64_t recover_ns_last, recover_ns_max;	/* connect..active */
	uint64_t received, npages;
	uint64_t digest_src, digest_dst;
	uint64_t lat_p50, lat_p90, lat_p99, lat_max, lat_n;
	int phase, link;
	uint32_t epoch;
	uint64_t session;
	char dirty_mode[24];
	char last_error[160];
};

struct pcm_region_ops {
	/* source: stop the workload (all writers parked) and resume it */
	void (*freeze)(void *arg);
	void (*thaw)(void *arg);
	/* dest: the workload may start (postcopy entered) */
	void (*postcopy_start)(void *arg);
	/* dest, --on-source-lost kill: the workload must go */
	void (*source_lost)(void *arg);
	void *arg;
};

/* ---- source ---- */
struct pcm_src;

struct pcm_src *pcm_src_create(void *base, size_t len,
			       const struct pcm_opts *o,
			       const struct pcm_region_ops *ops, char *err,
			       size_t errlen);
/* Runs until completed (0) or a fatal error (-1). */
int pcm_src_run(struct pcm_src *s, const char *addr);
void pcm_src_status(struct pcm_src *s, struct pcm_stats *st);
void pcm_src_pause(struct pcm_src *s);
int pcm_src_recover(struct pcm_src *s, const char *addr);
void pcm_src_switchover(struct pcm_src *s);
void pcm_src_destroy(struct pcm_src *s);

/* ---- destination ---- */
struct pcm_dst;

/*
 * @memfd/@len: the region's backing memfd (the library maps it for
 * precopy writes and punches holes for discards); @uffd: a userfaultfd of
 * the workload's mm with the workload's mapping of @memfd registered for
 * MISSING faults at @uffd_base (the workload may be another process).
 */
struct pcm_dst *pcm_dst_create(int memfd, size_t len, int uffd,
			       uint64_t uffd_base, const struct pcm_opts *o,
			       const struct pcm_region_ops *ops, char *err,
			       size_t errlen);
/* Listens on @addr; runs until completed (0) or a fatal error (-1). */
int pcm_dst_run(struct pcm_dst *d, const char *addr);
void pcm_dst_status(struct pcm_dst *d, struct pcm_stats *st);
void pcm_dst_pause(struct pcm_dst *d);
int pcm_dst_recover(struct pcm_dst *d, const char *addr);
/*
 * The source is lost for good: stop the link, fail the migration and
 * apply the on_lost policy to the missing pages (in pcm_dst_run()'s
 * thread, once no page can be placed any more). -1 with @err when the
 * policy is WAIT or the migration has ended.
 */
int pcm_dst_abandon(struct pcm_dst *d, char *err, size_t errlen);
const char *pcm_on_lost_name(int policy);
/* digest of the region's live contents (valid when nothing writes it) */
uint64_t pcm_dst_memory_digest(struct pcm_dst *d);
void pcm_dst_destroy(struct pcm_dst *d);

/* ---- helpers ---- */
const char *pcm_phase_name(int phase);
const char *pcm_link_name(int link);
void pcm_stats_json(const struct pcm_stats *st, void *kml_json);

#endif /* PCMIG_H */
