/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libpcmig internal: the link state both sides share (sess.c).
 *
 * The source and the destination handle a lost transport the same way:
 * the first thread that sees an I/O error, a heartbeat timeout or a
 * rejected frame marks the link failed and shuts both channels down, the
 * other threads notice and exit, the run loop tears the link down and
 * goes PAUSED, and a pause request holds it there until a recover request
 * (optionally with a new address) releases it. This is that logic, once.
 */
#ifndef PCMIG_SESS_H
#define PCMIG_SESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pcmig.h"

struct pcm_sess {
	pthread_mutex_t lock;		/* phase, link, st, addr, pause_req */
	pthread_cond_t cond;
	int phase, link;
	int failed;			/* the current link is going down */
	bool pause_req;			/* held PAUSED by pcm_sess_pause() */
	bool stop_req;			/* ended for good (dest: abandon) */
	/* st.last_error is the migration's verdict: link errors keep off */
	bool verdict;
	char addr[256];
	bool addr_changed;		/* set by pcm_sess_recover() */
	pthread_rwlock_t conn_lock;	/* writers: channels set up / freed */
	bool conn_up;
	struct pcm_chan main, bulk;
	int link_timeout_ms;
	uint64_t give_up_ns;		/* 0: retry / wait for ever */
	uint64_t down_since;		/* when the link last stopped working */
	uint64_t active_since;		/* when the link last came up */
	char detail[120];		/* why the next pcm_sess_fail() rejects */
	struct pcm_stats st;
};

/* counters in st, updated without the lock */
#define PCM_ADD(ss, f, v) __atomic_fetch_add(&(ss)->st.f, (v), __ATOMIC_RELAXED)

void pcm_sess_init(struct pcm_sess *ss, const struct pcm_opts *o);
void pcm_sess_destroy(struct pcm_sess *ss);

void pcm_sess_error(struct pcm_sess *ss, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Say why a frame is about to be refused: the next pcm_sess_fail() reports
 * "where: <this>" instead of the bare error name (the real cause first).
 */
void pcm_sess_detail(struct pcm_sess *ss, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The transport failed (@err = -PCM_E_*, 0 for a local stop): record the
 * cause as "@where: ..." (a non-I/O error is a rejected frame), shut both
 * channels down so every thread blocked on them returns, wake the run
 * loop. Only the first call per link acts.
 */
void pcm_sess_fail(struct pcm_sess *ss, int err, const char *where);
/* the link handshake failed with @err: record it ("recovery handshake") */
void pcm_sess_handshake_failed(struct pcm_sess *ss, int err);

/* control: hold PAUSED (dropping the link) / release, maybe to @addr */
void pcm_sess_pause(struct pcm_sess *ss);
int pcm_sess_recover(struct pcm_sess *ss, const char *addr);
/*
 * With ss->lock held: wait while a pause request holds the link (or until
 * the --give-up-after deadline passes).
 */
void pcm_sess_wait_unpaused(struct pcm_sess *ss);
/*
 * With ss->lock held: true when the link has not worked for the
 * give-up duration; then the phase is FAILED, st.gave_up set and the cause
 * recorded.
 */
bool pcm_sess_give_up(struct pcm_sess *ss);

/*
 * A link handshake (bitmap exchange included) has one deadline,
 * pcm_sess_hs_deadline() (4 link timeouts from now); pcm_sess_hs_recv()
 * reads its next frame on the main channel, waiting at most until that
 * deadline and at most a link timeout. 0 or -PCM_E_*.
 */
uint64_t pcm_sess_hs_deadline(const struct pcm_sess *ss);
int pcm_sess_hs_recv(struct pcm_sess *ss, struct pcm_frame *f,
		     unsigned char *buf, uint64_t dl);

/* the handshake succeeded (@t0: when the connection began): ACTIVE */
void pcm_sess_active(struct pcm_sess *ss, uint64_t t0);
/*
 * While the link is up and @done(@arg) is false (called with ss->lock
 * held): send a PING on the main channel (and with @bulk on the bulk
 * channel) whenever it was silent for a quarter of the link timeout, and
 * fail the link when @expired(@arg) (called without the lock; may be
 * NULL) names a protocol wait whose deadline passed. Returns with
 * ss->lock held.
 */
void pcm_sess_heartbeat(struct pcm_sess *ss, bool (*done)(void *arg),
			const char *(*expired)(void *arg), void *arg,
			bool bulk);
/*
 * Tear the link down: stop it, join the @n threads that served it, count
 * its bytes and free both channels (then pcm_sess_paused()).
 */
void pcm_sess_down(struct pcm_sess *ss, const pthread_t *thr, int n);
/* go PAUSED (the channels are already gone); @failure counts one */
void pcm_sess_paused(struct pcm_sess *ss, bool failure);

#endif /* PCMIG_SESS_H */
