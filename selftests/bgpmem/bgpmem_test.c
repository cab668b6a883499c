// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the bgpmem selftests (bgpmem_test.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bgpmem_test.h"

const char *bt_name = "bgpmem";
int tap_n, tap_fail;

/* A line in the kernel log, so that a kernel report can be placed. */
void kmsg(const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	int fd, n;

	n = snprintf(line, sizeof(line), "%s: ", bt_name);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	fd = open("/dev/kmsg", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, line, strlen(line)) < 0)
			n = 0;
		close(fd);
	}
}

void tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d ", ok ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	kmsg("TAP %d %s", tap_n, ok ? "ok" : "not ok");
	if (!ok)
		tap_fail++;
}

void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	exit(4);
}

int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	kmsg("$ %s", cmd);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

bool module_loaded(const char *m)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s", m);
	return access(path, F_OK) == 0;
}

const char *driver_of(const char *dev)
{
	static char buf[256];
	char path[128];
	ssize_t n;
	char *p;

	snprintf(path, sizeof(path), ND "/devices/%s/driver", dev);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return "";
	buf[n] = 0;
	p = strrchr(buf, '/');
	return p ? p + 1 : buf;
}

const char *err_name(int err)
{
	static __thread char buf[32];

	switch (err) {
	case 0: return "OK";
	case EIO: return "EIO";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case ERANGE: return "ERANGE";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOTTY: return "ENOTTY";
	case EHWPOISON: return "EHWPOISON";
	case EBUSY: return "EBUSY";
	case ENXIO: return "ENXIO";
	case ENODEV: return "ENODEV";
	case EBADF: return "EBADF";
	case EPERM: return "EPERM";
	case ENOSPC: return "ENOSPC";
	case ENOMEM: return "ENOMEM";
	default:
		snprintf(buf, sizeof(buf), "errno%d", err);
		return buf;
	}
}

/*
 * The --wrap build of bgpmem for the nfit_test backend (make nfit_test:
 * build/nfit_test/<release>/flavors/pmem/), or NULL when there is none for
 * the running kernel.
 */
const char *nfit_test_ko(const char *kdir)
{
	static char ko[512];
	struct utsname u;

	if (uname(&u))
		return NULL;
	snprintf(ko, sizeof(ko), "%s/build/nfit_test/%s/flavors/pmem/bgpmem.ko",
		 kdir, u.release);
	return access(ko, R_OK) ? NULL : ko;
}

/*
 * Root and an NVDIMM backend (KMEMLAB_BACKEND e820, nfit or nfit_test, the
 * last with its --wrap build of bgpmem), or skip the whole test. Returns the
 * backend's name; *@nfit_test_flavor says whether it is nfit_test.
 */
const char *bt_require_backend(const char *kdir, bool *nfit_test_flavor)
{
	const char *backend = getenv("KMEMLAB_BACKEND");

	if (geteuid())
		skip_all("needs root");
	if (!backend)
		backend = "";
	*nfit_test_flavor = !strcmp(backend, "nfit_test");
	if (*nfit_test_flavor) {
		if (!nfit_test_ko(kdir))
			skip_all("nfit_test needs the --wrap build of bgpmem: drivers/pmem/nfit_test_flavor.sh");
	} else if (strcmp(backend, "e820") && strcmp(backend, "nfit") &&
		   strcmp(backend, "cxl")) {
		skip_all("no NVDIMM backend (KMEMLAB_BACKEND is not e820, nfit, nfit_test or cxl)");
	}
	return backend;
}

/*
 * QEMU NFIT and QEMU's CXL memory device have no clear-error command
 * (cxl_pmem's bus only passes label commands); nd_e820 reports every
 * clear as done, nfit_test clears.
 */
bool bt_backend_clears(const char *backend)
{
	return strcmp(backend, "nfit") && strcmp(backend, "cxl");
}

/* the skip reason of a case that needs a platform clear, on @backend */
const char *bt_noclear_why(const char *backend)
{
	return strcmp(backend, "cxl") ?
	       "needs a platform that clears poison (QEMU NFIT cannot)" :
	       "needs a platform that clears poison (QEMU's CXL memory device cannot)";
}
