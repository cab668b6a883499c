// SPDX-License-Identifier: GPL-2.0
/* The pcmig self-checking demo workload (see workload.h). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pcmig_proto.h"
#include "workload.h"

#define WL_MAGIC 0x70636d6967574c31ULL
#define WL_WORDS (PCM_PAGE_SIZE / 8)

static inline uint32_t *table(struct wl *w)
{
	return (uint32_t *)w->base;
}

static void page_write(struct wl *w, uint64_t p, uint32_t gen)
{
	uint64_t *q = (uint64_t *)(w->base + p * PCM_PAGE_SIZE);
	uint64_t x = p * 0x9E3779B185EBCA87ULL + gen * 0xC2B2AE3D27D4EB4FULL;
	unsigned int i;

	q[1] = gen;
	for (i = 2; i < WL_WORDS; i++)
		q[i] = x + i * 0x165667B19E3779F9ULL;
	q[0] = WL_MAGIC ^ p;
}

static void wl_error(struct wl *w, bool zero, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void wl_error(struct wl *w, bool zero, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&w->lock);
	if (!w->st.errors) {
		va_start(ap, fmt);
		vsnprintf(w->st.first_error, sizeof(w->st.first_error), fmt,
			  ap);
		va_end(ap);
	}
	w->st.errors++;
	if (zero)
		w->st.zero_pages++;
	pthread_mutex_unlock(&w->lock);
}

/* 0 if page p is consistent with the table */
static int page_check(struct wl *w, uint64_t p)
{
	const uint64_t *q = (const uint64_t *)(w->base + p * PCM_PAGE_SIZE);
	uint32_t gen = __atomic_load_n(&table(w)[p], __ATOMIC_ACQUIRE);
	uint64_t x = p * 0x9E3779B185EBCA87ULL + gen * 0xC2B2AE3D27D4EB4FULL;
	unsigned int i;

	if (!q[0] && !q[1] && !q[2] && !q[WL_WORDS - 1]) {
		for (i = 0; i < WL_WORDS && !q[i]; i++)
			;
		if (i == WL_WORDS) {
			wl_error(w, true, "page %llu: all-zero page",
				 (unsigned long long)p);
			return -1;
		}
	}
	if (q[0] != (WL_MAGIC ^ p)) {
		wl_error(w, false, "page %llu: header %016llx, want %016llx",
			 (unsigned long long)p, (unsigned long long)q[0],
			 (unsigned long long)(WL_MAGIC ^ p));
		return -1;
	}
	if (q[1] != gen) {
		wl_error(w, false, "page %llu: generation %llu, table says %u",
			 (unsigned long long)p, (unsigned long long)q[1], gen);
		return -1;
	}
	for (i = 2; i < WL_WORDS; i++)
		if (q[i] != x + i * 0x165667B19E3779F9ULL) {
			wl_error(w, false, "page %llu: word %u corrupt (%016llx)",
				 (unsigned long long)p, i,
				 (unsigned long long)q[i]);
			return -1;
		}
	return 0;
}

int wl_init(struct wl *w, void *base, uint64_t npages, unsigned int nthreads,
	    bool rw)
{
	memset(w, 0, sizeof(*w));
	w->base = base;
	w->npages = npages;
	w->tpages = (npages * 4 + PCM_PAGE_SIZE - 1) / PCM_PAGE_SIZE;
	if (nthreads < 1 || nthreads > WL_MAX_THREADS ||
	    npages < w->tpages + nthreads)
		return -EINVAL;
	w->nthreads = nthreads;
	w->rw = rw;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	return 0;
}

void wl_fill(struct wl *w)
{
	uint64_t p;

	memset(w->base, 0, w->tpages * PCM_PAGE_SIZE);
	for (p = w->tpages; p < w->npages; p++) {
		table(w)[p] = 1;
		page_write(w, p, 1);
	}
}

/* the reading thread's way out of a SIGBUS, and what the signal said */
struct bus_escape {
	sigjmp_buf jb;
	volatile sig_atomic_t armed;
	int code;
	uintptr_t addr;
};

static __thread struct bus_escape bus;

static void bus_handler(int sig, siginfo_t *si, void *uc)
{
	if (!bus.armed) {
		/* not a page read of ours: die of it as we would have */
		signal(SIGBUS, SIG_DFL);
		return;
	}
	bus.armed = 0;
	bus.code = si->si_code;
	bus.addr = (uintptr_t)si->si_addr;
	siglongjmp(bus.jb, 1);
}

int wl_survive_poison(struct wl *w)
{
	/* SA_NODEFER: the jump out leaves SIGBUS unblocked for the next */
	struct sigaction sa = {
		.sa_sigaction = bus_handler,
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};

	w->lost = calloc((w->npages + 63) / 64, 8);
	if (!w->lost)
		return -ENOMEM;
	w->survive_poison = true;
	return sigaction(SIGBUS, &sa, NULL) ? -errno : 0;
}

/* a read of page @p raised SIGBUS: was it at page @p or its table entry? */
static void wl_poisoned(struct wl *w, uint64_t p)
{
	uintptr_t bus_addr = bus.addr;
	uintptr_t pg = (uintptr_t)w->base + p * PCM_PAGE_SIZE;
	uintptr_t te = (uintptr_t)&table(w)[p];
	bool here = (bus_addr >= pg && bus_addr < pg + PCM_PAGE_SIZE) ||
		    bus_addr / PCM_PAGE_SIZE == te / PCM_PAGE_SIZE;

	__atomic_fetch_or(&w->lost[p / 64], 1ULL << (p % 64), __ATOMIC_RELAXED);
	if (bus.code == BUS_MCEERR_AR)
		__atomic_fetch_add(&w->st.poison_mceerr, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&w->st.poison_other, 1, __ATOMIC_RELAXED);
	if (!here) {
		__atomic_fetch_add(&w->st.poison_bad_addr, 1, __ATOMIC_RELAXED);
		wl_error(w, false, "page %llu: SIGBUS at %#lx, not in the page or its table entry",
			 (unsigned long long)p, (unsigned long)bus_addr);
	}
}

/*
 * Check page @p and, in rw mode, write its next generation: 1 if written,
 * 0 if not (a bad page, or read-only), -1 if a read raised SIGBUS.
 */
static int visit(struct wl *w, uint64_t p)
{
	uint32_t gen;

	if (w->survive_poison) {
		if (sigsetjmp(bus.jb, 0)) {
			wl_poisoned(w, p);
			return -1;
		}
		bus.armed = 1;
	}
	if (page_check(w, p) || !w->rw) {
		bus.armed = 0;
		return 0;
	}
	gen = table(w)[p] + 1;
	page_write(w, p, gen);
	__atomic_store_n(&table(w)[p], gen, __ATOMIC_RELEASE);
	bus.armed = 0;
	return 1;
}

struct wl_arg {
	struct wl *w;
	unsigned int t;
};

static struct wl_arg wl_args[WL_MAX_THREADS];

static void *wl_thread(void *arg)
{
	struct wl_arg *a = arg;
	struct wl *w = a->w;
	uint64_t span = (w->npages - w->tpages - a->t + w->nthreads - 1) /
			w->nthreads;
	uint64_t rng = 0x2545F4914F6CDD1DULL ^ (a->t + 1) * 0x9E3779B97F4A7C15ULL;
	uint64_t checks = 0, writes = 0;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		uint64_t p;

		if (__atomic_load_n(&w->pause, __ATOMIC_ACQUIRE)) {
			pthread_mutex_lock(&w->lock);
			w->parked++;
			pthread_cond_broadcast(&w->cond);
			while (w->pause && !w->stop)
				pthread_cond_wait(&w->cond, &w->lock);
			w->parked--;
			pthread_mutex_unlock(&w->lock);
			continue;
		}
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		p = w->tpages + (rng % span) * w->nthreads + a->t;
		if (p >= w->npages)
			continue;
		if (w->lost && (__atomic_load_n(&w->lost[p / 64],
						__ATOMIC_RELAXED) &
				(1ULL << (p % 64))))
			continue;
		checks++;
		if (visit(w, p) <= 0)
			continue;
		writes++;
		if ((checks & 1023) == 0) {
			__atomic_fetch_add(&w->st.checks, checks,
					   __ATOMIC_RELAXED);
			__atomic_fetch_add(&w->st.writes, writes,
					   __ATOMIC_RELAXED);
			checks = 0;
			writes = 0;
		}
	}
	__atomic_fetch_add(&w->st.checks, checks, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->st.writes, writes, __ATOMIC_RELAXED);
	return NULL;
}

int wl_start(struct wl *w)
{
	unsigned int t;

	for (t = 0; t < w->nthreads; t++) {
		wl_args[t].w = w;
		wl_args[t].t = t;
		if (pthread_create(&w->thr[t], NULL, wl_thread, &wl_args[t]))
			return -errno;
		w->running++;
	}
	return 0;
}

void wl_freeze(void *arg)
{
	struct wl *w = arg;

	pthread_mutex_lock(&w->lock);
	w->pause = 1;
	while (w->parked < w->running && !w->stop)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

void wl_thaw(void *arg)
{
	struct wl *w = arg;

	pthread_mutex_lock(&w->lock);
	w->pause = 0;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void wl_stop(struct wl *w)
{
	int t;

	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (t = 0; t < w->running; t++)
		pthread_join(w->thr[t], NULL);
	w->running = 0;
	free(w->lost);
	w->lost = NULL;
}

uint64_t wl_verify_all(struct wl *w)
{
	uint64_t p, before = w->st.errors;

	for (p = w->tpages; p < w->npages; p++)
		page_check(w, p);
	return w->st.errors - before;
}
