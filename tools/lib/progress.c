// SPDX-License-Identifier: GPL-2.0
/* Progress lines on stderr: rewritten in place on a tty, periodic otherwise. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kml.h"

#define TTY_INTERVAL_NS		(200ULL * 1000 * 1000)
#define LOG_INTERVAL_NS		(5ULL * 1000 * 1000 * 1000)

uint64_t kml_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void kml_progress_begin(struct kml_progress *p, const char *what,
			uint64_t total, bool quiet)
{
	p->what = what;
	p->total = total;
	p->start_ns = kml_now_ns();
	p->last_ns = 0;
	p->tty = isatty(STDERR_FILENO);
	p->active = false;
	p->quiet = quiet;
}

void kml_progress_update(struct kml_progress *p, uint64_t done,
			 const char *fmt, ...)
{
	uint64_t now = kml_now_ns();
	uint64_t interval = p->tty ? TTY_INTERVAL_NS : LOG_INTERVAL_NS;
	va_list ap;

	if (p->quiet || (p->last_ns && now - p->last_ns < interval))
		return;
	p->last_ns = now;
	fprintf(stderr, "%s%s: %" PRIu64, p->tty ? "\r\033[K" : "",
		p->what, done);
	if (p->total)
		fprintf(stderr, "/%" PRIu64 " (%.0f%%)", p->total,
			100.0 * (double)done / (double)p->total);
	fprintf(stderr, " %.1fs", (double)(now - p->start_ns) / 1e9);
	if (fmt) {
		fputc(' ', stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	if (!p->tty)
		fputc('\n', stderr);
	p->active = p->tty;
	fflush(stderr);
}

void kml_progress_end(struct kml_progress *p)
{
	if (p->active)
		fputs("\r\033[K", stderr);
	p->active = false;
	fflush(stderr);
}

static int kml_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t kml_percentile(uint64_t *v, size_t n, double pct)
{
	size_t rank;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), kml_cmp_u64);
	if (pct <= 0)
		return v[0];
	rank = (size_t)((pct / 100.0) * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}
