/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the bgpmem selftests: TAP output, kernel-log marks,
 * shell commands, sysfs files, and the nd bus's drivers.
 */
#ifndef BGPMEM_TEST_H
#define BGPMEM_TEST_H

#include <stdbool.h>
#include <stddef.h>

#define ND		"/sys/bus/nd"

/* the test's name in its kernel-log marks ("<name>: ..."); set first */
extern const char *bt_name;
extern int tap_n, tap_fail;

void kmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tap(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void skip_all(const char *why) __attribute__((noreturn));
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int read_file(const char *path, char *buf, size_t len);
int write_file(const char *path, const char *val);
bool module_loaded(const char *m);
const char *driver_of(const char *dev);
const char *err_name(int err);
const char *nfit_test_ko(const char *kdir);
const char *bt_require_backend(const char *kdir, bool *nfit_test_flavor);
bool bt_backend_clears(const char *backend);
const char *bt_noclear_why(const char *backend);

#endif /* BGPMEM_TEST_H */
