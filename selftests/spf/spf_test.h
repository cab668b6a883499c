/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the spf selftests: load/unload spf_harness, reads
 * that survive SIGSEGV/SIGBUS, the kernel taint (WARN) check.
 */
#ifndef SPF_TEST_H
#define SPF_TEST_H

#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kselftest.h"
#include "spfobs.h"

#define TAINT_WARN	(1UL << 9)

static bool spf_we_loaded;

/* Make /dev/spf_harness exist; skip the whole test if we cannot. */
static inline void spf_load_or_skip(void)
{
	const char *dir = getenv("KMEMLAB_DIR");
	char cmd[512];

	if (!access(SPF_DEV_PATH, F_OK))
		return;
	if (geteuid())
		ksft_exit_skip("needs root to load spf_harness\n");
	if (system("modprobe spf_harness 2>/dev/null")) {
		snprintf(cmd, sizeof(cmd), "insmod %s/mm/spf/spf_harness.ko",
			 dir ? dir : ".");
		if (system(cmd))
			ksft_exit_skip("spf_harness cannot be loaded (build it: make modules)\n");
	}
	spf_we_loaded = true;
}

/* Leave the system as found. */
static inline void spf_unload(void)
{
	if (spf_we_loaded && system("rmmod spf_harness"))
		ksft_print_msg("rmmod spf_harness failed\n");
}

static inline unsigned long spf_taint(void)
{
	unsigned long t = 0;
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");

	if (f) {
		if (fscanf(f, "%lu", &t) != 1)
			t = 0;
		fclose(f);
	}
	return t;
}

static __thread sigjmp_buf spf_jmp;
static __thread volatile int spf_jmp_armed;

static void spf_sig_handler(int sig)
{
	if (!spf_jmp_armed)
		abort();
	spf_jmp_armed = 0;
	siglongjmp(spf_jmp, sig);
}

static inline void spf_catch_signals(void)
{
	struct sigaction sa = { .sa_handler = spf_sig_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/*
 * Read the u64 at @p. Returns 0 and sets *@val, or the signal number
 * (SIGSEGV, SIGBUS) the read raised.
 */
static inline int spf_read_u64(const void *p, uint64_t *val)
{
	int sig = sigsetjmp(spf_jmp, 1);

	if (sig)
		return sig;
	spf_jmp_armed = 1;
	*val = *(const volatile uint64_t *)p;
	spf_jmp_armed = 0;
	return 0;
}

#endif /* SPF_TEST_H */
