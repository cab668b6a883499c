/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kml - userspace helpers shared by every kmemlab tool and selftest:
 * size parsing and formatting (K/M/G/T suffixes), a streaming JSON writer,
 * error reporting that names the cause and the fix, and progress lines.
 *
 * Written once here; tools link build/tools/lib/libkml.a.
 */
#ifndef KML_H
#define KML_H

#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KML_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- sizes ------------------------------------------------------------ */

/**
 * kml_parse_size() - parse "4096", "4K", "16M", "1G", "2T" (binary units).
 * @s: the string; an optional "B"/"iB" after the suffix is accepted
 * @out: the value in bytes
 *
 * Rejects empty strings, garbage, negative numbers and overflow.
 * Return: 0 on success, -EINVAL for a malformed string, -ERANGE on overflow.
 */
int kml_parse_size(const char *s, uint64_t *out);

/**
 * kml_parse_u64() - parse a plain unsigned decimal (or 0x hex) number.
 * Return: 0, -EINVAL or -ERANGE.
 */
int kml_parse_u64(const char *s, uint64_t *out);

/**
 * kml_format_size() - format bytes as the shortest exact "512", "4K", "1.5M".
 * @bytes: the value
 * @buf: output buffer
 * @len: its size (KML_SIZE_BUF is enough)
 * Return: @buf.
 */
#define KML_SIZE_BUF 32
char *kml_format_size(uint64_t bytes, char *buf, size_t len);

/* ---- errors ----------------------------------------------------------- */

/* Program name used as the prefix of every message; set by kml_init(). */
extern const char *kml_prog;

void kml_init(const char *argv0);

/**
 * kml_err() - print "prog: error: <msg>" and, if @fix is not NULL,
 * "prog: hint: <fix>" on stderr. Does not exit.
 */
void kml_err(const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/** kml_die() - kml_err() then exit(code). */
void kml_die(int code, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

/** kml_warn() - "prog: warning: <msg>" on stderr. */
void kml_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- JSON ------------------------------------------------------------- */

/*
 * A streaming writer: nesting and commas are tracked, strings escaped.
 *
 *	struct kml_json j;
 *	kml_json_init(&j, stdout);
 *	kml_json_obj_begin(&j, NULL);
 *	kml_json_str(&j, "device", "bgpmem0");
 *	kml_json_u64(&j, "size", 1 << 30);
 *	kml_json_arr_begin(&j, "ranges");
 *	...
 *	kml_json_arr_end(&j);
 *	kml_json_obj_end(&j);
 *	kml_json_finish(&j);	(newline, flush)
 *
 * @key is used inside objects and must be NULL inside arrays.
 */
#define KML_JSON_MAX_DEPTH 32

struct kml_json {
	FILE *f;
	int depth;
	bool first[KML_JSON_MAX_DEPTH];
};

void kml_json_init(struct kml_json *j, FILE *f);
void kml_json_obj_begin(struct kml_json *j, const char *key);
void kml_json_obj_end(struct kml_json *j);
void kml_json_arr_begin(struct kml_json *j, const char *key);
void kml_json_arr_end(struct kml_json *j);
void kml_json_str(struct kml_json *j, const char *key, const char *val);
void kml_json_u64(struct kml_json *j, const char *key, uint64_t val);
void kml_json_i64(struct kml_json *j, const char *key, int64_t val);
void kml_json_double(struct kml_json *j, const char *key, double val);
void kml_json_bool(struct kml_json *j, const char *key, bool val);
void kml_json_null(struct kml_json *j, const char *key);
void kml_json_finish(struct kml_json *j);

/* ---- progress --------------------------------------------------------- */

/*
 * Progress on long work: on a terminal a single line rewritten in place at
 * most every 200 ms; otherwise (logs, CI) one line every 5 s. Always stderr,
 * so stdout stays clean for tables and --json.
 */
struct kml_progress {
	const char *what;
	uint64_t total;		/* 0: unknown */
	uint64_t last_ns;
	uint64_t start_ns;
	bool tty;
	bool active;
	bool quiet;
};

void kml_progress_begin(struct kml_progress *p, const char *what,
			uint64_t total, bool quiet);
/* @fmt adds free text after "what: done/total (pct%)". May be NULL. */
void kml_progress_update(struct kml_progress *p, uint64_t done,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kml_progress_end(struct kml_progress *p);

/* ---- time and tables -------------------------------------------------- */

uint64_t kml_now_ns(void);	/* CLOCK_MONOTONIC */

/**
 * kml_percentile() - the @pct (0..100) percentile of @n samples.
 * Sorts @v in place; nearest-rank method. Returns 0 for n == 0.
 */
uint64_t kml_percentile(uint64_t *v, size_t n, double pct);

/* ---- system state ----------------------------------------------------- */

/**
 * kml_swap_active() - is a swap area active (a line in /proc/swaps)?
 * Return: true if at least one is; false if none or /proc/swaps is unreadable.
 */
bool kml_swap_active(void);

/**
 * kml_cpu_split() - set one CPU of this thread's affinity apart
 * @all:   this thread's affinity, to restore it with later
 * @first: the lowest CPU of @all alone
 * @rest:  every other CPU of @all
 *
 * For races that need a thread on a CPU of its own (or a work item queued
 * on one CPU and a reader on another).
 * Return: true if @all has two CPUs or more; false otherwise (the sets are
 * then not filled in).
 */
bool kml_cpu_split(cpu_set_t *all, cpu_set_t *first, cpu_set_t *rest);

#endif /* KML_H */
