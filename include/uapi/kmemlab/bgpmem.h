/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * bgpmem - pmem block + DAX driver with block-granular poison: ioctls on
 * /dev/bgpmemN. See Documentation/bgpmem.rst.
 */
#ifndef _UAPI_KMEMLAB_BGPMEM_H
#define _UAPI_KMEMLAB_BGPMEM_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * struct bgpmem_range - a byte range of the block device
 * @offset: first byte, from the start of the block device
 * @len: length in bytes, non-zero
 * @flags: must be 0
 * @reserved: must be 0
 */
struct bgpmem_range {
	__u64 offset;
	__u64 len;
	__u32 flags;
	__u32 reserved;
};

/* values of bgpmem_info.clear_support */
#define BGPMEM_CLEAR_UNKNOWN		0	/* not tried yet */
#define BGPMEM_CLEAR_SUPPORTED		1
#define BGPMEM_CLEAR_UNSUPPORTED	2	/* bus has no clear-error */

/* bgpmem_info.mode */
#define BGPMEM_MODE_RAW		0
#define BGPMEM_MODE_FSDAX	1

/**
 * struct bgpmem_info - device state
 * @size: block device size in bytes (of the partition, on a partition)
 * @poison_block_size: poison granularity in bytes
 * @records: number of poisoned ranges (on a partition: those inside it)
 * @poisoned_bytes: bytes covered by the ranges (on a partition: inside it)
 * @clear_support: BGPMEM_CLEAR_*
 * @mode: BGPMEM_MODE_*
 * @clear_failures: platform clears that failed
 * @clear_unsupported: clears refused because the platform cannot clear
 * @refused_io: I/O requests refused because of poison
 * @phys_start: physical address of the first data byte
 * @namespace: namespace device name, NUL terminated
 */
struct bgpmem_info {
	__u64 size;
	__u64 poison_block_size;
	__u64 records;
	__u64 poisoned_bytes;
	__u32 clear_support;
	__u32 mode;
	__u64 clear_failures;
	__u64 clear_unsupported;
	__u64 refused_io;
	__u64 phys_start;
	char namespace[32];
};

/**
 * struct bgpmem_list - read records
 * @start: return records that end after this byte offset
 * @count: in: capacity of @ranges (max 65536); out: records copied
 * @reserved: must be 0
 * @ranges: user pointer to an array of struct bgpmem_range
 */
struct bgpmem_list {
	__u64 start;
	__u32 count;
	__u32 reserved;
	__u64 ranges;
};

#define BGPMEM_LIST_MAX		65536

#define BGPMEM_IOC_MAGIC	0xbe
#define BGPMEM_IOC_INFO		_IOR(BGPMEM_IOC_MAGIC, 0, struct bgpmem_info)
#define BGPMEM_IOC_INJECT	_IOW(BGPMEM_IOC_MAGIC, 1, struct bgpmem_range)
#define BGPMEM_IOC_CLEAR	_IOW(BGPMEM_IOC_MAGIC, 2, struct bgpmem_range)
#define BGPMEM_IOC_SCRUB	_IO(BGPMEM_IOC_MAGIC, 3)
#define BGPMEM_IOC_LIST		_IOWR(BGPMEM_IOC_MAGIC, 4, struct bgpmem_list)

#endif /* _UAPI_KMEMLAB_BGPMEM_H */
