// SPDX-License-Identifier: GPL-2.0
/*
 * libpcmig: transport failure, PAUSED and heartbeat handling shared by the
 * source (src.c) and the destination (dst.c). See pcmig_sess.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "kml.h"
#include "pcmig_sess.h"

void pcm_sess_init(struct pcm_sess *ss, const struct pcm_opts *o)
{
	ss->main.fd = -1;
	ss->bulk.fd = -1;
	ss->link_timeout_ms = o->link_timeout_ms;
	ss->give_up_ns = (uint64_t)o->give_up_ms * 1000000;
	ss->down_since = kml_now_ns();
	pthread_mutex_init(&ss->lock, NULL);
	pthread_cond_init(&ss->cond, NULL);
	pthread_rwlock_init(&ss->conn_lock, NULL);
	ss->link = PCM_LINK_PAUSED;
}

void pcm_sess_destroy(struct pcm_sess *ss)
{
	pthread_rwlock_destroy(&ss->conn_lock);
	pthread_cond_destroy(&ss->cond);
	pthread_mutex_destroy(&ss->lock);
}

void pcm_sess_error(struct pcm_sess *ss, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&ss->lock);
	va_start(ap, fmt);
	vsnprintf(ss->st.last_error, sizeof(ss->st.last_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&ss->lock);
}

void pcm_sess_detail(struct pcm_sess *ss, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&ss->lock);
	va_start(ap, fmt);
	vsnprintf(ss->detail, sizeof(ss->detail), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&ss->lock);
}

void pcm_sess_fail(struct pcm_sess *ss, int err, const char *where)
{
	char detail[sizeof(ss->detail)];
	bool verdict;

	pthread_mutex_lock(&ss->lock);
	memcpy(detail, ss->detail, sizeof(detail));
	ss->detail[0] = 0;
	verdict = ss->verdict;
	pthread_mutex_unlock(&ss->lock);
	if (__atomic_exchange_n(&ss->failed, 1, __ATOMIC_ACQ_REL))
		return;
	/* the real cause first: a lost link after a verdict is its effect */
	if (err && !verdict)
		pcm_sess_error(ss, "%s: %s", where,
			       detail[0] ? detail : pcm_err_name(err));
	if (err && !pcm_err_is_link(err))
		PCM_ADD(ss, rejected_frames, 1);
	if (ss->main.fd >= 0)
		shutdown(ss->main.fd, SHUT_RDWR);
	if (ss->bulk.fd >= 0)
		shutdown(ss->bulk.fd, SHUT_RDWR);
	pthread_mutex_lock(&ss->lock);
	pthread_cond_broadcast(&ss->cond);
	pthread_mutex_unlock(&ss->lock);
}

void pcm_sess_handshake_failed(struct pcm_sess *ss, int err)
{
	char detail[sizeof(ss->detail)];

	pthread_mutex_lock(&ss->lock);
	memcpy(detail, ss->detail, sizeof(detail));
	ss->detail[0] = 0;
	pthread_mutex_unlock(&ss->lock);
	pcm_sess_error(ss, "recovery handshake: %s",
		       detail[0] ? detail : pcm_err_name(err));
	if (!pcm_err_is_link(err))
		PCM_ADD(ss, rejected_frames, 1);
}

void pcm_sess_pause(struct pcm_sess *ss)
{
	pthread_mutex_lock(&ss->lock);
	ss->pause_req = true;
	pthread_cond_broadcast(&ss->cond);
	pthread_mutex_unlock(&ss->lock);
	pcm_sess_fail(ss, 0, "pause");
}

int pcm_sess_recover(struct pcm_sess *ss, const char *addr)
{
	if (addr && strlen(addr) >= sizeof(ss->addr))
		return -ENAMETOOLONG;
	pthread_mutex_lock(&ss->lock);
	if (addr && strcmp(addr, ss->addr)) {
		strcpy(ss->addr, addr);
		ss->addr_changed = true;
	}
	ss->pause_req = false;
	pthread_cond_broadcast(&ss->cond);
	pthread_mutex_unlock(&ss->lock);
	return 0;
}

static void timed_wait(struct pcm_sess *ss, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000000L;
	while (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&ss->cond, &ss->lock, &ts);
}

bool pcm_sess_give_up(struct pcm_sess *ss)
{
	char before[sizeof(ss->st.last_error)];
	uint64_t down;

	if (ss->st.gave_up)
		return true;
	if (!ss->give_up_ns || ss->link == PCM_LINK_ACTIVE ||
	    ss->phase == PCM_PH_COMPLETED || ss->phase == PCM_PH_FAILED)
		return false;
	down = kml_now_ns() - ss->down_since;
	if (down <= ss->give_up_ns)
		return false;
	ss->st.gave_up = 1;
	ss->phase = PCM_PH_FAILED;
	memcpy(before, ss->st.last_error, sizeof(before));
	snprintf(ss->st.last_error, sizeof(ss->st.last_error),
		 "gave up: no working link for %.1f s (--give-up-after); before that: %.80s",
		 down / 1e9, before[0] ? before : "-");
	pthread_cond_broadcast(&ss->cond);
	return true;
}

void pcm_sess_wait_unpaused(struct pcm_sess *ss)
{
	while (ss->pause_req && !ss->stop_req && !pcm_sess_give_up(ss))
		timed_wait(ss, 100);
}

void pcm_sess_active(struct pcm_sess *ss, uint64_t t0)
{
	pthread_mutex_lock(&ss->lock);
	ss->link = PCM_LINK_ACTIVE;
	ss->active_since = kml_now_ns();
	if (ss->st.failures) {
		ss->st.recoveries++;
		ss->st.recover_ns_last = kml_now_ns() - t0;
		if (ss->st.recover_ns_last > ss->st.recover_ns_max)
			ss->st.recover_ns_max = ss->st.recover_ns_last;
	}
	pthread_mutex_unlock(&ss->lock);
}

static void ping(struct pcm_sess *ss, struct pcm_chan *c, bool nowait,
		 const char *what)
{
	uint64_t since = kml_now_ns() - __atomic_load_n(&c->last_tx_ns,
							__ATOMIC_RELAXED);

	if (since <= (uint64_t)ss->link_timeout_ms * 250000)
		return;
	/*
	 * The bulk channel's PING must not wait for a bulk stream stuck in
	 * a full socket buffer: main's PINGs would stop with it.
	 */
	if (nowait ? pcm_ping_nowait(c) :
	    pcm_send(c, PCM_T_PING, NULL, 0, NULL, 0, true))
		pcm_sess_fail(ss, -PCM_E_IO, what);
}

void pcm_sess_heartbeat(struct pcm_sess *ss, bool (*done)(void *arg),
			const char *(*expired)(void *arg), void *arg,
			bool bulk)
{
	pthread_mutex_lock(&ss->lock);
	while (!ss->failed && !done(arg)) {
		const char *why;

		timed_wait(ss, 100);
		if (ss->failed || done(arg))
			break;
		pthread_mutex_unlock(&ss->lock);
		ping(ss, &ss->main, false, "heartbeat (main channel)");
		if (bulk)
			ping(ss, &ss->bulk, true, "heartbeat (bulk channel)");
		why = expired ? expired(arg) : NULL;
		if (why)
			pcm_sess_fail(ss, -PCM_E_TIMEOUT, why);
		pthread_mutex_lock(&ss->lock);
	}
}

void pcm_sess_down(struct pcm_sess *ss, const pthread_t *thr, int n)
{
	int i;

	pcm_sess_fail(ss, 0, "stop");
	for (i = 0; i < n; i++)
		pthread_join(thr[i], NULL);
	pthread_rwlock_wrlock(&ss->conn_lock);
	ss->conn_up = false;
	PCM_ADD(ss, bytes_sent, ss->main.bytes_tx + ss->bulk.bytes_tx);
	PCM_ADD(ss, bytes_recv, ss->main.bytes_rx + ss->bulk.bytes_rx);
	pcm_chan_destroy(&ss->main);
	pcm_chan_destroy(&ss->bulk);
	pthread_rwlock_unlock(&ss->conn_lock);
}

void pcm_sess_paused(struct pcm_sess *ss, bool failure)
{
	uint64_t now = kml_now_ns();

	pthread_mutex_lock(&ss->lock);
	/*
	 * A link that failed within a link timeout of coming up (a peer that
	 * refuses every page, say) did not work: --give-up-after counts on.
	 */
	if (ss->link == PCM_LINK_ACTIVE &&
	    now - ss->active_since >= (uint64_t)ss->link_timeout_ms * 1000000)
		ss->down_since = now;
	ss->link = PCM_LINK_PAUSED;
	if (failure)
		ss->st.failures++;
	pthread_mutex_unlock(&ss->lock);
}

uint64_t pcm_sess_hs_deadline(const struct pcm_sess *ss)
{
	return kml_now_ns() + (uint64_t)ss->link_timeout_ms * 4000000;
}

int pcm_sess_hs_recv(struct pcm_sess *ss, struct pcm_frame *f,
		     unsigned char *buf, uint64_t dl)
{
	uint64_t now = kml_now_ns();
	uint64_t ms;

	if (now >= dl)
		return -PCM_E_TIMEOUT;
	ms = (dl - now) / 1000000 + 1;
	if (ms > (uint64_t)ss->link_timeout_ms)
		ms = ss->link_timeout_ms;
	return pcm_recv(&ss->main, f, buf, (int)ms);
}
