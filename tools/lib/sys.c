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
