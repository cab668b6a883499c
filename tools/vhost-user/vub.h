/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vub.h - the parts of vub (the vhost-user-blk back-end) that its
 * compilation units share: vub.c (main loop), vub_msg.c (messages),
 * vub_mem.c (memory table, dirty log), vub_vq.c (virtqueues, inflight),
 * vub_blk.c (blk requests, worker pool); also linked by vu_fuzz.c.
 */
#ifndef VUB_H
#define VUB_H

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "kml.h"
#include "vu_proto.h"

#define VUB_MAX_QUEUES		16
#define VUB_MAX_SLOTS		32
#define VUB_MAX_CONNS		16
#define VUB_MAX_SEGS		1024
#define VUB_MAX_INDIRECT	1024
#define VUB_SEG_MAX		254
#define VUB_BATCH		256
#define VUB_MAX_JOBS		64	/* in-flight requests per connection */
#define VUB_WORKERS		4
#define VUB_SECTOR		((uint64_t)512)
/*
 * Largest read the main thread does itself: below this the hand-off to a
 * worker (wake-up, context switches) costs more than the copy; above it
 * the copies are better spread over the workers.
 */
#define VUB_INLINE_MAX		(32u << 10)
/* --coalesce: a ring's request rate is measured over windows this long */
#define VUB_RATE_WINDOW_NS	(10 * 1000 * 1000ull)
#define VUB_NS_PER_SEC		(1000 * 1000 * 1000ull)
#define VUB_COALESCE_IOPS	1000
#define VUB_COALESCE_MAX_IOPS	100000000
#define VUB_COALESCE_MAX_US	100000
/*
 * A front-end must not be able to stall the others: a message must arrive
 * in full, and a reply the socket could not take at once must be taken,
 * within this long, or the connection is closed.
 */
#define VUB_IO_TIMEOUT_NS	(2 * VUB_NS_PER_SEC)
/* replies waiting for the socket; one message has at most one reply */
#define VUB_OUT_MAX		1024
_Static_assert(sizeof(struct vu_hdr) + sizeof(union vu_payload) <= VUB_OUT_MAX,
	       "the reply queue holds the largest reply");
/* memory regions: userspace_addr and mmap_offset multiples of this */
#define VUB_REGION_ALIGN	4096u

enum vub_bug {
	BUG_DISABLE_ON_SET_FEATURES = 1 << 0,
	BUG_NO_DIRTY_LOG = 1 << 1,
	BUG_RESET_OWNER_DISCARDS = 1 << 2,
	BUG_RESET_DEVICE_IGNORED = 1 << 3,
	BUG_COALESCE_NO_REARM = 1 << 4,
	BUG_INFLIGHT_NO_REPAIR = 1 << 5,
};

struct vub_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint8_t *host;		/* first byte of the region */
	void *map;		/* mmap() base (file offset 0) */
	size_t map_len;
};

struct vub_vq {
	unsigned int num;
	uint16_t last_avail;
	uint16_t used_idx;
	bool started;
	bool enabled;
	bool have_addr;
	struct vhost_vring_addr addr;
	int kick_fd;
	int call_fd;
	int err_fd;
	uint16_t notify_old;		/* used_idx before this completion batch */
	bool completed;			/* completions since the last notify check */
	/* --coalesce */
	bool held;			/* a call waits for next_call; kick unarmed */
	bool resume;			/* call sent early; kick still unarmed */
	bool fast;			/* above the rate threshold, last window */
	uint64_t next_call;		/* ns: no call before this while fast */
	uint64_t win_start;		/* ns: start of the rate window */
	uint64_t win_reqs;		/* requests completed in the window */
	/* INFLIGHT_SHMFD: this ring's share of the region, or NULL */
	struct vu_inflight_split *ifl;
	uint64_t counter;		/* the next head's fetch order */
	/* heads in flight when the last back-end stopped, by counter */
	uint16_t *resubmit;
	unsigned int nresubmit, resubmit_pos;
	/* valid while the memory table is unchanged */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
};

struct vub_conn {
	int sock;
	unsigned int id;
	uint64_t features;		/* acked by SET_FEATURES */
	uint64_t pfeatures;		/* acked by SET_PROTOCOL_FEATURES */
	bool pfeatures_set;
	struct vub_region regions[VUB_MAX_SLOTS];
	unsigned int nregions;
	uint8_t *log;
	uint64_t log_size;
	void *log_map;
	size_t log_map_len;
	bool log_warned;
	/* INFLIGHT_SHMFD: the region of GET/SET_INFLIGHT_FD */
	void *ifl_map;
	size_t ifl_map_len;
	uint8_t *ifl_base;
	uint16_t ifl_nq, ifl_qsize;
	struct vub_vq vqs[VUB_MAX_QUEUES];
	const char *why;		/* first fatal error */
	char whybuf[192];		/* ... when it carries details */
	unsigned int inflight;		/* jobs submitted, not completed */
	unsigned int njobs;		/* jobs allocated */
	struct vub_job *free_jobs;
	bool dead;			/* drop at the next loop iteration */
	bool faulted;			/* its guest memory or log SIGBUSed */
	/* a job vub_vq_process() took, not yet queued or put back */
	struct vub_job *cur_job;
	uint64_t requests;
	uint64_t msgs;			/* messages received */
	/* the socket is never waited on: both directions are buffered here */
	struct vu_rx rx;		/* the message being received */
	uint64_t rx_deadline;		/* ns: its last byte is due */
	uint8_t out[VUB_OUT_MAX];	/* reply bytes the socket did not take */
	size_t out_len;
	uint64_t out_deadline;		/* ns: they must be taken by then */
};

struct vub {
	const char *sock_path;
	const char *file;
	int img_fd;
	uint64_t capacity;		/* bytes, multiple of 512 */
	unsigned int nqueues;
	bool read_only;
	bool verbose;
	bool json;
	unsigned int bugs;
	int listen_fd;
	struct vub_conn *conns[VUB_MAX_CONNS];
	unsigned int next_id;
	uint64_t total_requests;
	uint64_t total_inline;		/* of which done without the pool */
	uint64_t total_conns;
	uint64_t total_probes;		/* connections closed before a message */
	bool nowait[2];			/* RWF_NOWAIT reads, writes work */
	uint64_t hold_ns;		/* --coalesce delay, 0: off */
	uint64_t hold_iops;		/* --coalesce rate threshold */
	uint64_t total_held;		/* calls held back by --coalesce */
	uint64_t total_errors;
	uint64_t bug_hits;		/* times a --bug= path was taken */
	/* worker pool: jobs go todo -> (worker) -> done -> main thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vub_job *todo_head, *todo_tail, *done_head;
	unsigned int idle;		/* workers waiting for a job */
	int done_fd;
	bool pool_stop;
	/* no pool: vub_submit() does the job (the fuzz targets, vu_fuzz.c) */
	bool sync;
	pthread_t workers[VUB_WORKERS];
};

/* main thread only: kicks read (eventfd counts) and calls sent */
extern uint64_t vub_kicks, vub_calls;
/* the innermost recovery point of the thread (a sigjmp_buf *), its fault */
extern _Thread_local void *vub_fault_jmp;
extern _Thread_local void *vub_fault_addr;

struct vub_seg {
	uint8_t *host;
	uint64_t gpa;
	uint32_t len;
};

struct vub_req {
	struct vub_seg rd[VUB_MAX_SEGS];
	struct vub_seg wr[VUB_MAX_SEGS];
	unsigned int nrd, nwr;
	uint64_t rd_len, wr_len;
	struct iovec iov[VUB_MAX_SEGS];
};

/* one request on its way through the worker pool */
struct vub_job {
	struct vub_job *next;
	struct vub_conn *c;
	unsigned int q;
	uint16_t head;
	struct virtio_blk_outhdr hdr;	/* validated snapshot */
	int64_t written;
	void *fault;			/* worker: SIGBUS at this address */
	struct vub_req rq;
};

#define VUB_FAULT_HINT \
	"a front-end must keep its memory fds at least as long as the regions (QEMU seals its memfds with F_SEAL_SHRINK)"

/* vub_msg.c */
void vub_log(struct vub *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int vub_fail(struct vub_conn *c, const char *why);
int vub_failf(struct vub_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool vub_has(const struct vub_conn *c, unsigned int bit);
uint64_t vub_features(const struct vub *v);
uint64_t vub_protocol_features(void);
void vub_conn_free(struct vub *v, struct vub_conn *c);
int vub_flush(struct vub_conn *c);
int vub_reply(struct vub_conn *c, struct vu_msg *m, uint32_t size);
int vub_vring_fd(struct vub *v, struct vub_conn *c, struct vu_msg *m);
int vub_handle(struct vub *v, struct vub_conn *c, struct vu_msg *m);
int vub_conn_read(struct vub *v, struct vub_conn *c);
int vub_kick(struct vub *v, struct vub_conn *c, struct vub_vq *vq);
struct vub_conn *vub_conn_new(struct vub *v, int fd);

/* vub_mem.c */
void vub_sigbus_init(void);
const char *vub_hint(const struct vub_conn *c, const char *hint);
int vub_faulted(struct vub_conn *c, void *addr);
void *vub_gpa(struct vub_conn *c, uint64_t gpa, uint64_t len);
void *vub_uva(struct vub_conn *c, uint64_t uva, uint64_t len);
void vub_region_unmap(struct vub_region *r);
const char *vub_region_map(struct vub_region *table,
			   unsigned int nexisting,
			   const struct vu_region *in, int fd,
			   struct vub_region *out);
void vub_unmap_all(struct vub_conn *c);
void vub_log_gpa(struct vub *v, struct vub_conn *c, uint64_t gpa,
		 uint64_t len);
void vub_log_used(struct vub *v, struct vub_conn *c, struct vub_vq *vq,
		  uint64_t off, uint64_t len);
void vub_log_unmap(struct vub_conn *c);

/* vub_vq.c */
void vub_segs_read(const struct vub_seg *s, unsigned int n,
		   uint64_t off, void *dst, uint64_t len);
int vub_segs_iov(const struct vub_seg *s, unsigned int n, uint64_t off,
		 uint64_t len, struct iovec *iov);
void vub_segs_log(struct vub *v, struct vub_conn *c,
		  const struct vub_seg *s, unsigned int n, uint64_t off,
		  uint64_t len);
int vub_vq_map(struct vub_conn *c, struct vub_vq *vq);
void vub_notify(struct vub_vq *vq);
int vub_vq_process(struct vub *v, struct vub_conn *c, struct vub_vq *vq);
int64_t vub_held_calls(struct vub *v);
int vub_held_resume(struct vub *v, struct vub_conn *c);
void vub_complete(struct vub *v, struct vub_conn *busy);
void vub_drain(struct vub *v, struct vub_conn *c);
void vub_inflight_unmap(struct vub_conn *c);
int vub_inflight_start(struct vub *v, struct vub_conn *c,
		       struct vub_vq *vq);

/* vub_blk.c */
int vub_blk_check(struct vub_conn *c, struct vub_job *job);
int64_t vub_blk_request(struct vub *v, struct vub_conn *c,
			struct vub_job *job, bool nowait);
struct vub_job *vub_job_get(struct vub_conn *c);
void vub_job_put(struct vub_conn *c, struct vub_job *job);
void vub_submit(struct vub *v, struct vub_job *job);
void *vub_worker(void *arg);

/*
 * Recovery points: VUB_GUARDED(c, fault_expr, expr) evaluates @expr with a
 * recovery point set; on a SIGBUS inside it, @c is marked faulted and the
 * value is @fault_expr. Nests (the previous point is restored).
 */
#define VUB_GUARDED(c, fault_expr, expr) ({				\
	sigjmp_buf vub_jb_;						\
	sigjmp_buf *volatile vub_prev_ = vub_fault_jmp;			\
	volatile __typeof__(expr) vub_ret_;				\
									\
	if (sigsetjmp(vub_jb_, 0)) {					\
		vub_fault_jmp = vub_prev_;				\
		vub_faulted(c, vub_fault_addr);				\
		vub_ret_ = (fault_expr);				\
	} else {							\
		vub_fault_jmp = &vub_jb_;				\
		vub_ret_ = (expr);					\
		vub_fault_jmp = vub_prev_;				\
	}								\
	vub_ret_;							\
})

#endif /* VUB_H */
