// SPDX-License-Identifier: GPL-2.0
/* A small streaming JSON writer: tracks nesting and commas, escapes strings. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "kml.h"

void kml_json_init(struct kml_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->first[0] = true;
}

static void kml_json_escape(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

/* Comma and key before a value at the current depth. */
static void kml_json_key(struct kml_json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	if (key) {
		kml_json_escape(j->f, key);
		fputc(':', j->f);
	}
}

static void kml_json_open(struct kml_json *j, const char *key, char c)
{
	kml_json_key(j, key);
	fputc(c, j->f);
	if (j->depth < KML_JSON_MAX_DEPTH - 1)
		j->depth++;
	j->first[j->depth] = true;
}

static void kml_json_close(struct kml_json *j, char c)
{
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
}

void kml_json_obj_begin(struct kml_json *j, const char *key)
{
	kml_json_open(j, key, '{');
}

void kml_json_obj_end(struct kml_json *j)
{
	kml_json_close(j, '}');
}

void kml_json_arr_begin(struct kml_json *j, const char *key)
{
	kml_json_open(j, key, '[');
}

void kml_json_arr_end(struct kml_json *j)
{
	kml_json_close(j, ']');
}

void kml_json_str(struct kml_json *j, const char *key, const char *val)
{
	kml_json_key(j, key);
	if (val)
		kml_json_escape(j->f, val);
	else
		fputs("null", j->f);
}

void kml_json_u64(struct kml_json *j, const char *key, uint64_t val)
{
	kml_json_key(j, key);
	fprintf(j->f, "%" PRIu64, val);
}

void kml_json_i64(struct kml_json *j, const char *key, int64_t val)
{
	kml_json_key(j, key);
	fprintf(j->f, "%" PRId64, val);
}

void kml_json_double(struct kml_json *j, const char *key, double val)
{
	kml_json_key(j, key);
	/* JSON has no NaN or infinity */
	if (isfinite(val))
		fprintf(j->f, "%.6g", val);
	else
		fputs("null", j->f);
}

void kml_json_bool(struct kml_json *j, const char *key, bool val)
{
	kml_json_key(j, key);
	fputs(val ? "true" : "false", j->f);
}

void kml_json_null(struct kml_json *j, const char *key)
{
	kml_json_key(j, key);
	fputs("null", j->f);
}

void kml_json_finish(struct kml_json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}
