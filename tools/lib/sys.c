// SPDX-License-Identifier: GPL-2.0
/* The state of the running system, as tools and selftests need it. */
#include <stdio.h>

#include "kml.h"

bool kml_swap_active(void)
{
	char line[256];
	int n = 0;
	FILE *f = fopen("/proc/swaps", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n > 1;	/* a header line, then one per swap area */
}

bool kml_cpu_split(cpu_set_t *all, cpu_set_t *first, cpu_set_t *rest)
{
	int c;

	if (sched_getaffinity(0, sizeof(*all), all) || CPU_COUNT(all) < 2)
		return false;
	for (c = 0; !CPU_ISSET(c, all); c++)
		;
	CPU_ZERO(first);
	CPU_SET(c, first);
	*rest = *all;
	CPU_CLR(c, rest);
	return true;
}
