/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The pcmig demo workload: threads that keep reading, checking and
 * rewriting the pages of a region. Page p (p >= table pages) holds
 * { WL_MAGIC ^ p, gen, payload(p, gen) }, and a generation table in the
 * region's first pages holds the gen each page must have, so a stale,
 * torn, misplaced or zero page is caught on the next read.
 */
#ifndef PCMIG_WORKLOAD_H
#define PCMIG_WORKLOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define WL_MAX_THREADS 16

struct wl_stats {
	uint64_t checks, writes, errors, zero_pages;
	/*
	 * with wl_survive_poison(): reads that got SIGBUS, by si_code
	 * (BUS_MCEERR_AR, anything else), and those whose si_addr was not
	 * the page (or its generation table entry) being read
	 */
	uint64_t poison_mceerr, poison_other, poison_bad_addr;
	char first_error[128];
};

struct wl {
	unsigned char *base;
	uint64_t npages, tpages;
	unsigned int nthreads;
	bool rw;
	bool survive_poison;
	uint64_t *lost;		/* pages that raised SIGBUS: not read again */
	int stop, pause, parked, running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thr[WL_MAX_THREADS];
	struct wl_stats st;
};

int wl_init(struct wl *w, void *base, uint64_t npages, unsigned int nthreads,
	    bool rw);
/* write generation 1 everywhere (source side, before migration) */
void wl_fill(struct wl *w);
/*
 * A read of a poisoned page (the destination gave up on it) raises SIGBUS:
 * count it and go on with other pages (each lost page is read once: the
 * kernel logs every memory-error SIGBUS). Call before wl_start(); the
 * handler is process-wide.
 */
int wl_survive_poison(struct wl *w);
int wl_start(struct wl *w);
void wl_freeze(void *w);
void wl_thaw(void *w);
void wl_stop(struct wl *w);
/* check every page against the table; returns errors found */
uint64_t wl_verify_all(struct wl *w);

#endif /* PCMIG_WORKLOAD_H */
