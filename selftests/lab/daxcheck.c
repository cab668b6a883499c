// SPDX-License-Identifier: GPL-2.0
/*
 * daxcheck FILE - exit 0 if FILE is really accessed through DAX: statx
 * reports STATX_ATTR_DAX and a MAP_SYNC shared mapping (which only DAX
 * supports) can be created, written and read back. FILE is created.
 *
 * Exit status: 0 DAX active, 1 not DAX, 2 error (so a negative control
 * cannot pass by accident).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

int main(int argc, char **argv)
{
	struct statx stx;
	char *p;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: daxcheck FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		fprintf(stderr, "daxcheck: open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (ftruncate(fd, 4096)) {
		fprintf(stderr, "daxcheck: ftruncate: %s\n", strerror(errno));
		return 2;
	}
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx)) {
		fprintf(stderr, "daxcheck: statx: %s\n", strerror(errno));
		return 2;
	}
	if (!(stx.stx_attributes_mask & STATX_ATTR_DAX) ||
	    !(stx.stx_attributes & STATX_ATTR_DAX)) {
		fprintf(stderr, "daxcheck: %s: STATX_ATTR_DAX not set\n", argv[1]);
		return 1;
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "daxcheck: mmap MAP_SYNC: %s\n", strerror(errno));
		return 1;
	}
	memcpy(p, "kmemlab", sizeof("kmemlab"));
	if (strcmp(p, "kmemlab")) {
		fprintf(stderr, "daxcheck: read back mismatch\n");
		return 1;
	}
	munmap(p, 4096);
	close(fd);
	printf("%s: DAX active (STATX_ATTR_DAX, MAP_SYNC ok)\n", argv[1]);
	return 0;
}
