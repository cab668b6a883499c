// SPDX-License-Identifier: GPL-2.0
/* Error messages that name the cause and, where known, the fix. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kml.h"

const char *kml_prog = "kmemlab";

void kml_init(const char *argv0)
{
	const char *slash = argv0 ? strrchr(argv0, '/') : NULL;

	if (argv0)
		kml_prog = slash ? slash + 1 : argv0;
}

static void kml_verr(const char *fix, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: error: ", kml_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (fix)
		fprintf(stderr, "%s: hint: %s\n", kml_prog, fix);
}

void kml_err(const char *fix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kml_verr(fix, fmt, ap);
	va_end(ap);
}

void kml_die(int code, const char *fix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kml_verr(fix, fmt, ap);
	va_end(ap);
	exit(code);
}

void kml_warn(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: warning: ", kml_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
