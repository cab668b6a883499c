/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What vu-check's units share: vc_front.c (the front-end: memory,
 * messages, rings, session; the results table), vc_checks.c (the
 * checks), vc_bad.c (--malformed) and vu-check.c (options, main()).
 */
#ifndef VC_H
#define VC_H

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "kml.h"
#include "vu_proto.h"

#define VC_MEM_SIZE	(8ull << 20)		/* memfd: two 4 MiB regions */
#define VC_R0_GPA	0x0ull			/* rings */
#define VC_R1_GPA	0x10000000ull		/* buffers, at 256 MiB */
#define VC_REG_SIZE	(4ull << 20)
#define VC_QSIZE	128
#define VC_MAX_Q	4
#define VC_SLOTS	(VC_QSIZE / 4)
#define VC_IO_MAX	(128u << 10)
#define VC_TEST_SECTORS	256			/* 128 KiB test area */
/* short log: bits for GPA < 256 MiB only, at offset 4 KiB of the fd */
#define VC_SHORT_LOG	(VC_R1_GPA / 4096 / 8)
#define VC_SHORT_OFF	4096ull
#define VC_LOGFD_SIZE	(VC_SHORT_OFF + VC_SHORT_LOG + 8192)

struct vc_vq {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;	/* next index we publish */
	uint16_t used_seen;	/* used entries consumed */
	int kick, call;
};

struct vc {
	const char *sock_path;
	int sock;
	int memfd, logfd;
	uint8_t *mem;		/* VC_MEM_SIZE, our "guest RAM" */
	uint8_t *log;
	uint64_t log_size;
	uint64_t features, pfeatures;	/* offered */
	uint64_t acked, packed;		/* acked */
	unsigned int nq;		/* queues we use */
	uint64_t queue_num;
	uint64_t capacity;		/* sectors */
	struct vc_vq vq[VC_MAX_Q];
	int timeout_ms;
	uint64_t sector;
	bool verbose;
	bool short_log;			/* also check a log shorter than RAM */
	/* inflight check: negotiate INFLIGHT_SHMFD, GET (once) + SET */
	bool want_inflight;
	bool resume;			/* queue 0's rings kept, base used->idx */
	int ifl_fd;
	struct vu_inflight ifl_info;
	uint8_t *ifl;
	const char *fail_why;		/* last protocol failure */
};

enum vc_result { VC_PASS, VC_FAIL, VC_SKIP };

struct vc_check {
	char name[48];
	enum vc_result res;
	char detail[200];
};

extern struct vc_check checks[96];
extern unsigned int nchecks;
extern const char *const vc_res_name[];

#define VC_HDR_OFF	0x0
#define VC_STATUS_OFF	0x100
#define VC_INDIR_OFF	0x800
#define VC_DATA_OFF	0x1000

struct vc_io {
	uint32_t type;
	uint64_t sector;
	uint32_t len;		/* data bytes */
	bool indirect;
	/* results */
	int status;		/* -1: no completion */
	uint32_t used_len;
	bool bad_id;
};

/* vc_front.c */
void vc_result(const char *name, enum vc_result res, const char *fmt,
	       ...) __attribute__((format(printf, 3, 4)));
void *vc_gpa(struct vc *c, uint64_t gpa);
uint64_t vc_ring_gpa(unsigned int q);
uint64_t vc_buf_gpa(unsigned int q);
void vc_setup_mem(struct vc *c);
int vc_connect(const char *path, int wait_ms);
int vc_send(struct vc *c, uint32_t req, uint32_t flags,
	    const void *payload, uint32_t size, const int *fds, int nfds);
int vc_recv_reply(struct vc *c, uint32_t req, struct vu_msg *m);
int vc_req(struct vc *c, uint32_t req, const void *payload,
	   uint32_t size, const int *fds, int nfds);
int vc_get_u64(struct vc *c, uint32_t req, uint64_t *val);
int vc_u64(struct vc *c, uint32_t req, uint64_t val);
int vc_state(struct vc *c, uint32_t req, unsigned int idx,
	     unsigned int num);
int vc_vring_addr(struct vc *c, unsigned int q, bool log);
int vc_vq_start(struct vc *c, unsigned int q, uint16_t base,
		bool enable);
void vc_vq_init_mem(struct vc *c, unsigned int q);
void vc_kick(struct vc_vq *vq);
uint16_t vc_publish_at(struct vc *c, unsigned int q, uint16_t head,
		       const struct vring_desc *d, unsigned int n);
uint16_t vc_publish(struct vc *c, unsigned int q,
		    const struct vring_desc *d, unsigned int n);
int vc_wait_used(struct vc *c, unsigned int q, int timeout_ms,
		 uint32_t *len, uint16_t *id);
unsigned int vc_io_descs(struct vc *c, unsigned int q,
			 struct vc_io *io, struct vring_desc *d);
uint16_t vc_submit(struct vc *c, unsigned int q, struct vc_io *io);
void vc_do_io(struct vc *c, unsigned int q, struct vc_io *io,
	      int timeout_ms);
uint8_t *vc_data(struct vc *c, unsigned int q);
void vc_pattern(uint8_t *p, uint32_t len, uint64_t sector,
		uint32_t seed);
bool vc_io_ok(struct vc *c, unsigned int q, struct vc_io *io,
	      char *why, size_t whylen);
int vc_session(struct vc *c, bool protocol, bool report);
void vc_close(struct vc *c);

/* vc_checks.c */
bool vc_ro(struct vc *c);
bool vc_rw_check(struct vc *c, unsigned int q, uint64_t sector,
		 uint32_t len, uint32_t seed, bool indirect,
		 bool write, char *why, size_t wl);
void vc_check_io(struct vc *c);
void vc_check_migration(struct vc *c);
void vc_check_disabled(struct vc *c);
void vc_check_stop_restart(struct vc *c);
void vc_check_reset_owner(struct vc *c);
void vc_check_reset_device(struct vc *c);
void vc_check_reconnect(struct vc *c);
void vc_check_inflight(struct vc *c);

/* vc_bad.c */
void vc_run_malformed(struct vc *c);

#endif /* VC_H */
