// SPDX-License-Identifier: GPL-2.0
/*
 * vub - a vhost-user-blk back-end serving a raw image file or block device
 * on a UNIX socket.
 *
 * Ring state follows the current vhost-user spec: every ring is
 * started/stopped (SET_VRING_KICK / GET_VRING_BASE) and, independently,
 * enabled/disabled (SET_VRING_ENABLE, or all rings enabled by a
 * SET_FEATURES without F_PROTOCOL_FEATURES). SET_FEATURES never disables a
 * ring. A ring is processed only while started and enabled, so nothing is
 * written to guest memory while rings are stopped.
 *
 * One protocol thread, poll(): several front-ends may be connected at once
 * (each has its own memory table and rings; they share the image), which is
 * what a migration between two QEMUs on one host needs. It serves a request
 * itself when the page cache can take it without blocking (RWF_NOWAIT) and
 * hands the rest to a worker pool. Every message is
 * validated; a malformed one gets a NACK (if REPLY_ACK was asked for) and
 * the connection is closed. Guest memory is only ever accessed through
 * vub_gpa()/vub_uva(), which check the whole range against the table.
 */
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

static volatile sig_atomic_t vub_stop;
/* main thread only: kicks read (eventfd counts) and calls sent */
static uint64_t vub_kicks, vub_calls;

static void vub_log(struct vub *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vub_log(struct vub *v, const char *fmt, ...)
{
	va_list ap;

	if (!v->verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "vub: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Record the first fatal error of a connection; always returns -EPROTO. */
static int vub_fail(struct vub_conn *c, const char *why)
{
	if (!c->why)
		c->why = why;
	return -EPROTO;
}

static int vub_failf(struct vub_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* vub_fail() with details (addresses, sizes) in the message */
static int vub_failf(struct vub_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->why)
		return -EPROTO;
	va_start(ap, fmt);
	vsnprintf(c->whybuf, sizeof(c->whybuf), fmt, ap);
	va_end(ap);
	c->why = c->whybuf;
	return -EPROTO;
}

static bool vub_protocol_negotiated(const struct vub_conn *c)
{
	return c->pfeatures_set ||
	       (c->features & VU_BIT(VU_F_PROTOCOL_FEATURES));
}

static bool vub_has(const struct vub_conn *c, unsigned int bit)
{
	return c->features & VU_BIT(bit);
}

static uint64_t vub_features(const struct vub *v)
{
	uint64_t f = VU_BIT(VIRTIO_F_VERSION_1) |
		     VU_BIT(VU_F_PROTOCOL_FEATURES) |
		     VU_BIT(VHOST_F_LOG_ALL) |
		     VU_BIT(VIRTIO_RING_F_EVENT_IDX) |
		     VU_BIT(VIRTIO_RING_F_INDIRECT_DESC) |
		     VU_BIT(VIRTIO_BLK_F_SEG_MAX) |
		     VU_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		     VU_BIT(VIRTIO_BLK_F_FLUSH) |
		     VU_BIT(VIRTIO_BLK_F_MQ);

	if (v->read_only)
		f |= VU_BIT(VIRTIO_BLK_F_RO);
	return f;
}

static uint64_t vub_protocol_features(void)
{
	return VU_BIT(VU_PF_MQ) | VU_BIT(VU_PF_LOG_SHMFD) |
	       VU_BIT(VU_PF_REPLY_ACK) | VU_BIT(VU_PF_CONFIG) |
	       VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS) |
	       VU_BIT(VU_PF_RESET_DEVICE) | VU_BIT(VU_PF_INFLIGHT_SHMFD);
}

/* ---- guest memory faults ----------------------------------------------- */

/*
 * A front-end can shrink a memory (or log) fd after vub mapped it; the next
 * access to a page past the new end is a SIGBUS, which would kill vub and
 * every other front-end with it. Every access to a connection's guest
 * memory or log runs under a recovery point (vub_guard_*()): the SIGBUS
 * handler jumps back to the innermost one of its thread, which marks that
 * connection faulted and dead (it is dropped, the others go on). A SIGBUS
 * outside any recovery point is a vub bug: it kills the process as usual.
 * Seals cannot stand in for this: a front-end's memfd without
 * MFD_ALLOW_SEALING (or a plain file, or hugetlbfs) takes no F_SEAL_SHRINK.
 */
/* the innermost recovery point of the thread: a sigjmp_buf * */
static _Thread_local void *vub_fault_jmp;
static _Thread_local void *vub_fault_addr;
static struct sigaction vub_sigbus_old;

static void vub_on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	sigjmp_buf *jb = vub_fault_jmp;

	if (!jb) {
		/*
		 * Not a guest access: the handler before ours (the default
		 * one: death; a fuzzer's: its crash report) takes the
		 * fault when the access is retried.
		 */
		sigaction(SIGBUS, &vub_sigbus_old, NULL);
		return;
	}
	vub_fault_jmp = NULL;
	vub_fault_addr = si->si_addr;
	/* SA_NODEFER: SIGBUS is not blocked here, no mask to restore */
	siglongjmp(*jb, 1);
}

static void vub_sigbus_init(void)
{
	struct sigaction sa = {
		.sa_sigaction = vub_on_sigbus,
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &vub_sigbus_old) < 0)
		kml_die(1, NULL, "sigaction SIGBUS: %s", strerror(errno));
}

static int vub_failf(struct vub_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void vub_job_put(struct vub_conn *c, struct vub_job *job);

#define VUB_FAULT_HINT \
	"a front-end must keep its memory fds at least as long as the regions (QEMU seals its memfds with F_SEAL_SHRINK)"

/* the hint for @c's error: @hint, unless its guest memory faulted */
static const char *vub_hint(const struct vub_conn *c, const char *hint)
{
	return c->faulted ? VUB_FAULT_HINT : hint;
}

/* after a SIGBUS at @addr in @c's memory: drop @c; always -EPROTO */
static int vub_faulted(struct vub_conn *c, void *addr)
{
	c->faulted = true;
	c->dead = true;
	if (c->cur_job) {
		vub_job_put(c, c->cur_job);
		c->cur_job = NULL;
	}
	return vub_failf(c, "guest memory access at %p faulted (SIGBUS): a memory or log fd was shrunk after it was mapped",
			 addr);
}

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

/* ---- guest memory ------------------------------------------------------- */

/*
 * Host pointer for [addr, addr+len) if it lies inside one region; @addr is
 * a guest physical address, or a front-end virtual address when @uva.
 */
static void *vub_translate(struct vub_conn *c, uint64_t addr, uint64_t len,
			   bool uva)
{
	unsigned int i;
	uint64_t end;

	if (!vu_add_ok(addr, len, &end))
		return NULL;
	for (i = 0; i < c->nregions; i++) {
		struct vub_region *r = &c->regions[i];
		uint64_t base = uva ? r->uva : r->gpa;

		if (addr >= base && end <= base + r->size)
			return r->host + (addr - base);
	}
	return NULL;
}

static void *vub_gpa(struct vub_conn *c, uint64_t gpa, uint64_t len)
{
	return vub_translate(c, gpa, len, false);
}

static void *vub_uva(struct vub_conn *c, uint64_t uva, uint64_t len)
{
	return vub_translate(c, uva, len, true);
}

static void vub_region_unmap(struct vub_region *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	memset(r, 0, sizeof(*r));
}

static bool vub_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b,
			       uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/*
 * Validate @in against the existing table (first @nexisting entries of
 * @table) and map it. Takes ownership of @fd (closed in every case).
 */
static const char *vub_region_map(struct vub_region *table,
				  unsigned int nexisting,
				  const struct vu_region *in, int fd,
				  struct vub_region *out)
{
	uint64_t end, map_len;
	struct stat st;
	unsigned int i;
	void *p;

	memset(out, 0, sizeof(*out));
	if (fd < 0)
		return "memory region without a file descriptor";
	if (!in->memory_size) {
		close(fd);
		return "memory region of size 0";
	}
	if (!vu_add_ok(in->guest_phys_addr, in->memory_size, &end) ||
	    !vu_add_ok(in->userspace_addr, in->memory_size, &end) ||
	    !vu_add_ok(in->mmap_offset, in->memory_size, &map_len) ||
	    map_len > SIZE_MAX) {
		close(fd);
		return "memory region address + size overflows";
	}
	/*
	 * The ring addresses are checked for alignment in the front-end's
	 * address space: its offset in the mapping must keep them aligned
	 * (QEMU sends page-aligned vhost-user regions).
	 */
	if (in->userspace_addr % VUB_REGION_ALIGN) {
		close(fd);
		return "memory region userspace_addr not a multiple of 4096";
	}
	if (in->mmap_offset % VUB_REGION_ALIGN) {
		close(fd);
		return "memory region mmap_offset not a multiple of 4096";
	}
	for (i = 0; i < nexisting; i++) {
		if (vub_ranges_overlap(in->guest_phys_addr, in->memory_size,
				       table[i].gpa, table[i].size) ||
		    vub_ranges_overlap(in->userspace_addr, in->memory_size,
				       table[i].uva, table[i].size)) {
			close(fd);
			return "memory region overlaps an existing region";
		}
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return "fstat on the region fd failed";
	}
	/* a mapping past EOF would SIGBUS on first access: refuse it */
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < map_len) {
		close(fd);
		return "memory region extends past the end of its fd";
	}
	p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return "mmap of the memory region fd failed";
	out->gpa = in->guest_phys_addr;
	out->size = in->memory_size;
	out->uva = in->userspace_addr;
	out->map = p;
	out->map_len = map_len;
	out->host = (uint8_t *)p + in->mmap_offset;
	return NULL;
}

static void vub_unmap_all(struct vub_conn *c)
{
	unsigned int i;

	for (i = 0; i < c->nregions; i++)
		vub_region_unmap(&c->regions[i]);
	c->nregions = 0;
}

/* ---- dirty log ---------------------------------------------------------- */

static bool vub_logging(struct vub *v, struct vub_conn *c)
{
	if ((v->bugs & BUG_NO_DIRTY_LOG) && vub_has(c, VHOST_F_LOG_ALL)) {
		/* workers too: the count is atomic */
		__atomic_fetch_add(&v->bug_hits, 1, __ATOMIC_RELAXED);
		return false;
	}
	return vub_has(c, VHOST_F_LOG_ALL);
}

static void vub_log_gpa(struct vub *v, struct vub_conn *c, uint64_t gpa,
			uint64_t len)
{
	uint64_t page, last;

	if (!len || !vub_logging(v, c))
		return;
	if (!c->log) {
		if (!c->log_warned)
			kml_warn("conn %u: LOG_ALL without SET_LOG_BASE: dirty pages not logged",
				 c->id);
		c->log_warned = true;
		return;
	}
	page = gpa / VU_LOG_PAGE;
	last = (gpa + len - 1) / VU_LOG_PAGE;
	for (; page <= last; page++) {
		if (page / 8 >= c->log_size) {
			if (!c->log_warned)
				kml_warn("conn %u: dirty page 0x%" PRIx64 " beyond the %" PRIu64 "-byte log",
					 c->id, page * VU_LOG_PAGE,
					 c->log_size);
			c->log_warned = true;
			return;
		}
		__atomic_fetch_or(&c->log[page / 8], (uint8_t)(1u << (page % 8)),
				  __ATOMIC_SEQ_CST);
	}
}

static void vub_log_used(struct vub *v, struct vub_conn *c, struct vub_vq *vq,
			 uint64_t off, uint64_t len)
{
	if (vq->addr.flags & (1u << VHOST_VRING_F_LOG))
		vub_log_gpa(v, c, vq->addr.log_guest_addr + off, len);
}

static void vub_log_unmap(struct vub_conn *c)
{
	if (c->log_map)
		munmap(c->log_map, c->log_map_len);
	c->log_map = NULL;
	c->log = NULL;
	c->log_size = 0;
}

/* ---- virtqueue processing ------------------------------------------------ */

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

/* split [gpa, gpa+len) at region boundaries and append it */
static int vub_add_buf(struct vub_conn *c, struct vub_seg *segs,
		       unsigned int *n, uint64_t gpa, uint32_t len)
{
	while (len) {
		unsigned int i;
		uint64_t chunk = 0;
		uint8_t *host = NULL;

		for (i = 0; i < c->nregions; i++) {
			struct vub_region *r = &c->regions[i];

			if (gpa >= r->gpa && gpa - r->gpa < r->size) {
				chunk = r->size - (gpa - r->gpa);
				host = r->host + (gpa - r->gpa);
				break;
			}
		}
		if (!host)
			return vub_failf(c, "descriptor buffer 0x%" PRIx64 "+%u outside the memory table (%u regions)",
					 gpa, len, c->nregions);
		if (*n >= VUB_MAX_SEGS)
			return vub_fail(c, "request has too many segments");
		if (chunk > len)
			chunk = len;
		segs[*n].host = host;
		segs[*n].gpa = gpa;
		segs[*n].len = chunk;
		(*n)++;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

/* walk a descriptor chain into rd/wr segment lists */
static int vub_walk_chain(struct vub_conn *c, struct vub_vq *vq,
			  uint16_t head, struct vub_req *rq)
{
	struct vring_desc *table = vq->desc;
	unsigned int tsize = vq->num, count = 0;
	bool indirect = false;
	uint16_t idx = head;
	struct vring_desc d;
	int ret;

	rq->nrd = 0;
	rq->nwr = 0;
	rq->rd_len = 0;
	rq->wr_len = 0;
	for (;;) {
		if (idx >= tsize)
			return vub_fail(c, "descriptor index outside the descriptor table");
		if (++count > tsize)
			return vub_fail(c, "descriptor chain loops");
		/* one snapshot per descriptor: the guest may change it */
		memcpy(&d, (void *)&table[idx], sizeof(d));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vub_has(c, VIRTIO_RING_F_INDIRECT_DESC))
				return vub_fail(c, "indirect descriptor without INDIRECT_DESC");
			if (indirect)
				return vub_fail(c, "nested indirect descriptor");
			if (d.flags & VRING_DESC_F_NEXT)
				return vub_fail(c, "indirect descriptor with NEXT set");
			if (!d.len || d.len % sizeof(d) ||
			    d.len / sizeof(d) > VUB_MAX_INDIRECT)
				return vub_fail(c, "indirect table length invalid");
			table = vub_gpa(c, d.addr, d.len);
			if (!table || (uintptr_t)table % 2)
				return vub_fail(c, "indirect table outside the memory table");
			tsize = d.len / sizeof(d);
			indirect = true;
			count = 0;
			idx = 0;
			continue;
		}
		if (d.flags & VRING_DESC_F_WRITE) {
			ret = vub_add_buf(c, rq->wr, &rq->nwr, d.addr, d.len);
			rq->wr_len += d.len;
		} else {
			if (rq->nwr)
				return vub_fail(c, "device-readable descriptor after a writable one");
			ret = vub_add_buf(c, rq->rd, &rq->nrd, d.addr, d.len);
			rq->rd_len += d.len;
		}
		if (ret)
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

/* copy @len bytes at byte offset @off of a segment list out to @dst */
static void vub_segs_read(const struct vub_seg *s, unsigned int n,
			  uint64_t off, void *dst, uint64_t len)
{
	uint8_t *out = dst;
	unsigned int i;

	for (i = 0; i < n && len; i++) {
		uint64_t take;

		if (off >= s[i].len) {
			off -= s[i].len;
			continue;
		}
		take = s[i].len - off;
		if (take > len)
			take = len;
		memcpy(out, s[i].host + off, take);
		out += take;
		len -= take;
		off = 0;
	}
}

/* build an iovec for bytes [off, off+len) of a segment list */
static int vub_segs_iov(const struct vub_seg *s, unsigned int n, uint64_t off,
			uint64_t len, struct iovec *iov)
{
	unsigned int i, k = 0;

	for (i = 0; i < n && len; i++) {
		uint64_t take;

		if (off >= s[i].len) {
			off -= s[i].len;
			continue;
		}
		take = s[i].len - off;
		if (take > len)
			take = len;
		iov[k].iov_base = s[i].host + off;
		iov[k].iov_len = take;
		k++;
		len -= take;
		off = 0;
	}
	return k;
}

/* log every guest page in bytes [off, off+len) of a writable list */
static void vub_segs_log(struct vub *v, struct vub_conn *c,
			 const struct vub_seg *s, unsigned int n, uint64_t off,
			 uint64_t len)
{
	unsigned int i;

	for (i = 0; i < n && len; i++) {
		uint64_t take;

		if (off >= s[i].len) {
			off -= s[i].len;
			continue;
		}
		take = s[i].len - off;
		if (take > len)
			take = len;
		vub_log_gpa(v, c, s[i].gpa + off, take);
		len -= take;
		off = 0;
	}
}

static ssize_t vub_rw_full(int fd, struct iovec *iov, int cnt, uint64_t pos,
			   bool write)
{
	ssize_t done = 0;

	while (cnt > 0) {
		ssize_t n = write ? pwritev(fd, iov, cnt, pos) :
				    preadv(fd, iov, cnt, pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : done;
		done += n;
		pos += n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	return done;
}

/*
 * The main thread's attempt at a read or write: one preadv2/pwritev2 with
 * RWF_NOWAIT, which succeeds only when the page cache can take it without
 * blocking. 1: done; 0: would block (or short), leave it to a worker.
 */
static int vub_rw_nowait(struct vub *v, struct iovec *iov, int cnt,
			 uint64_t pos, uint64_t len, bool write)
{
	ssize_t n;

	n = write ? pwritev2(v->img_fd, iov, cnt, pos, RWF_NOWAIT) :
		    preadv2(v->img_fd, iov, cnt, pos, RWF_NOWAIT);
	if (n == (ssize_t)len)
		return 1;
	if (n < 0 && errno == EOPNOTSUPP)
		v->nowait[write] = false;	/* not on this file: stop trying */
	return 0;
}

/*
 * A request's data transfer: in the main thread (@nowait) only small
 * requests the page cache takes at once (-EAGAIN: leave it to a worker),
 * in a worker the whole of it. 0: done; -EIO: failed or short.
 */
static int vub_data_rw(struct vub *v, struct iovec *iov, int cnt,
		       uint64_t pos, uint64_t len, bool write, bool nowait)
{
	if (nowait)
		return v->nowait[write] && len <= VUB_INLINE_MAX &&
		       vub_rw_nowait(v, iov, cnt, pos, len, write) ? 0 : -EAGAIN;
	return vub_rw_full(v->img_fd, iov, cnt, pos, write) == (ssize_t)len ?
	       0 : -EIO;
}

static int vub_blk_check(struct vub_conn *c, struct vub_job *job)
{
	struct vub_req *rq = &job->rq;

	if (rq->rd_len < sizeof(job->hdr))
		return vub_fail(c, "virtio-blk request shorter than its header");
	if (rq->wr_len < 1)
		return vub_fail(c, "virtio-blk request without a status byte");
	vub_segs_read(rq->rd, rq->nrd, 0, &job->hdr, sizeof(job->hdr));
	return 0;
}

/*
 * Execute one checked virtio-blk request. Returns the number of bytes
 * written into device-writable buffers, for the used ring. A worker calls
 * it with @nowait false. The main thread calls it with @nowait true: then
 * a read or write that would block, and a flush, return -EAGAIN before
 * the status byte, the dirty log or the used ring was written (a short
 * read may have filled part of the data buffers: the worker redoes it).
 */
static int64_t vub_blk_request(struct vub *v, struct vub_conn *c,
			       struct vub_job *job, bool nowait)
{
	struct virtio_blk_outhdr hdr = job->hdr;
	struct vub_req *rq = &job->rq;
	uint64_t data_len, pos, end;
	uint64_t written = 1;
	uint8_t status = VIRTIO_BLK_S_OK;
	int cnt, ret;

	switch (hdr.type & ~VIRTIO_BLK_T_BARRIER) {
	case VIRTIO_BLK_T_IN:
		data_len = rq->wr_len - 1;
		pos = hdr.sector * VUB_SECTOR;
		if (hdr.sector > v->capacity / VUB_SECTOR ||
		    data_len % VUB_SECTOR ||
		    !vu_add_ok(pos, data_len, &end) || end > v->capacity) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		cnt = vub_segs_iov(rq->wr, rq->nwr, 0, data_len, rq->iov);
		ret = vub_data_rw(v, rq->iov, cnt, pos, data_len, false, nowait);
		if (ret == -EAGAIN)
			return ret;
		if (ret) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		written += data_len;
		vub_segs_log(v, c, rq->wr, rq->nwr, 0, data_len);
		break;
	case VIRTIO_BLK_T_OUT:
		data_len = rq->rd_len - sizeof(hdr);
		pos = hdr.sector * VUB_SECTOR;
		if (v->read_only || hdr.sector > v->capacity / VUB_SECTOR ||
		    data_len % VUB_SECTOR ||
		    !vu_add_ok(pos, data_len, &end) || end > v->capacity) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		cnt = vub_segs_iov(rq->rd, rq->nrd, sizeof(hdr), data_len,
				   rq->iov);
		ret = vub_data_rw(v, rq->iov, cnt, pos, data_len, true, nowait);
		if (ret == -EAGAIN)
			return ret;
		if (ret)
			status = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (nowait && !v->read_only)
			return -EAGAIN;
		if (!v->read_only && fdatasync(v->img_fd) < 0)
			status = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		char id[VIRTIO_BLK_ID_BYTES] = "vub";
		uint64_t n = rq->wr_len - 1;

		if (n > sizeof(id))
			n = sizeof(id);
		cnt = vub_segs_iov(rq->wr, rq->nwr, 0, n, rq->iov);
		for (int i = 0, o = 0; i < cnt; o += rq->iov[i].iov_len, i++)
			memcpy(rq->iov[i].iov_base, id + o, rq->iov[i].iov_len);
		vub_segs_log(v, c, rq->wr, rq->nwr, 0, n);
		written += n;
		break;
	}
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	/* the status byte is the last writable byte */
	cnt = vub_segs_iov(rq->wr, rq->nwr, rq->wr_len - 1, 1, rq->iov);
	*(uint8_t *)rq->iov[0].iov_base = status;
	vub_segs_log(v, c, rq->wr, rq->nwr, rq->wr_len - 1, 1);
	return written;
}

static int vub_vq_map(struct vub_conn *c, struct vub_vq *vq)
{
	bool ev = vub_has(c, VIRTIO_RING_F_EVENT_IDX);

	vq->desc = vub_uva(c, vq->addr.desc_user_addr, vu_desc_size(vq->num));
	vq->avail = vub_uva(c, vq->addr.avail_user_addr,
			    vu_avail_size(vq->num, ev));
	vq->used = vub_uva(c, vq->addr.used_user_addr,
			   vu_used_size(vq->num, ev));
	if (!vq->desc || !vq->avail || !vq->used)
		return vub_failf(c, "vring address outside the memory table (desc 0x%llx avail 0x%llx used 0x%llx, %u regions)",
				 (unsigned long long)vq->addr.desc_user_addr,
				 (unsigned long long)vq->addr.avail_user_addr,
				 (unsigned long long)vq->addr.used_user_addr,
				 c->nregions);
	return 0;
}

static void vub_notify(struct vub_vq *vq)
{
	uint64_t one = 1;

	if (vq->call_fd < 0)
		return;
	vub_calls++;
	/*
	 * The call fd is a non-blocking eventfd (vub_vring_fd()): EAGAIN
	 * means its counter is at its maximum, so the front-end will see it
	 * non-zero and be woken anyway. Never wait for it.
	 */
	if (write(vq->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		kml_warn("call eventfd write failed: %s", strerror(errno));
}

static struct vub_job *vub_job_get(struct vub_conn *c)
{
	struct vub_job *job = c->free_jobs;

	if (job) {
		c->free_jobs = job->next;
		return job;
	}
	if (c->njobs >= VUB_MAX_JOBS)
		return NULL;
	job = malloc(sizeof(*job));
	if (job)
		c->njobs++;
	return job;
}

static void vub_job_put(struct vub_conn *c, struct vub_job *job)
{
	job->next = c->free_jobs;
	c->free_jobs = job;
}

static int64_t vub_worker_request(struct vub *v, struct vub_job *job);
static void vub_job_done(struct vub *v, struct vub_job *job);

static void vub_submit(struct vub *v, struct vub_job *job)
{
	job->next = NULL;
	if (v->sync) {
		job->written = vub_worker_request(v, job);
		pthread_mutex_lock(&v->lock);
		vub_job_done(v, job);
		pthread_mutex_unlock(&v->lock);
		return;
	}
	pthread_mutex_lock(&v->lock);
	if (v->todo_tail)
		v->todo_tail->next = job;
	else
		v->todo_head = job;
	v->todo_tail = job;
	if (v->idle)
		pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

/*
 * A worker's request under its own recovery point: on a SIGBUS the job
 * carries the address back, and the main thread drops the connection.
 */
static int64_t vub_worker_request(struct vub *v, struct vub_job *job)
{
	sigjmp_buf jb;
	/* a recovery point of the caller (v->sync: the main thread's) */
	sigjmp_buf *volatile prev = vub_fault_jmp;
	int64_t ret;

	job->fault = NULL;
	if (sigsetjmp(jb, 0)) {
		vub_fault_jmp = prev;
		job->fault = vub_fault_addr ? vub_fault_addr : (void *)job;
		return 0;
	}
	vub_fault_jmp = &jb;
	ret = vub_blk_request(v, job->c, job, false);
	vub_fault_jmp = prev;
	return ret;
}

/* a finished job to the main thread; v->lock held */
static void vub_job_done(struct vub *v, struct vub_job *job)
{
	uint64_t one = 1;

	job->next = v->done_head;
	v->done_head = job;
	/*
	 * The main thread reads done_fd before it takes the whole list, so
	 * only the first job on an empty list has to wake it.
	 */
	if (!job->next && write(v->done_fd, &one, sizeof(one)) < 0)
		kml_warn("done eventfd: %s", strerror(errno));
}

static void *vub_worker(void *arg)
{
	struct vub *v = arg;

	pthread_mutex_lock(&v->lock);
	for (;;) {
		struct vub_job *job;

		while (!v->todo_head && !v->pool_stop) {
			v->idle++;
			pthread_cond_wait(&v->cond, &v->lock);
			v->idle--;
		}
		if (v->pool_stop)
			break;
		job = v->todo_head;
		v->todo_head = job->next;
		if (!v->todo_head)
			v->todo_tail = NULL;
		pthread_mutex_unlock(&v->lock);

		job->written = vub_worker_request(v, job);

		pthread_mutex_lock(&v->lock);
		vub_job_done(v, job);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

/* put one completed chain into the used ring (main thread only) */
static void vub_used_push(struct vub *v, struct vub_conn *c, struct vub_vq *vq,
			  uint16_t head, uint32_t written)
{
	struct vring_used_elem *ue;

	if (!vq->completed) {
		vq->completed = true;
		vq->notify_old = vq->used_idx;
	}
	/*
	 * Inflight tracking, as the spec's split-ring procedure (a batch of
	 * one): the head is the last batch before used->idx moves, and is
	 * no longer in flight after. A crash between the two leaves
	 * used_idx behind used->idx: vub_inflight_start() then clears it.
	 */
	if (vq->ifl)
		vq->ifl->last_batch_head = head;
	ue = &vq->used->ring[vq->used_idx % vq->num];
	ue->id = head;
	ue->len = written;
	vub_log_used(v, c, vq, 4 + 8ull * (vq->used_idx % vq->num), 8);
	vq->used_idx++;
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	vub_log_used(v, c, vq, 2, 2);
	if (vq->ifl) {
		vq->ifl->desc[head].inflight = 0;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		vq->ifl->used_idx = vq->used_idx;
	}
	c->requests++;
	v->total_requests++;
	vq->win_reqs++;
}

static void vub_vq_signal(struct vub *v, struct vub_conn *c,
			  struct vub_vq *vq);

/*
 * Take everything available on a started and enabled ring and check each
 * chain. A request the page cache can serve without blocking is done here
 * (preadv2/pwritev2 RWF_NOWAIT: no thread hand-off, no wake-ups) and goes
 * straight to the used ring, with its own notification check (EVENT_IDX
 * suppresses all but the one the guest waits for); the rest go to the
 * workers, whose completions vub_complete() writes to the used ring, also
 * in the main thread, with one notification check per batch.
 */
static int vub_vq_process_ring(struct vub *v, struct vub_conn *c,
			       struct vub_vq *vq)
{
	bool ev = vub_has(c, VIRTIO_RING_F_EVENT_IDX);
	int ret;

	if (!vq->started || !vq->enabled || c->dead)
		return 0;
	ret = vub_vq_map(c, vq);
	if (ret)
		return ret;
	for (;;) {
		bool redo = vq->resubmit_pos < vq->nresubmit;
		uint16_t avail_idx, head;
		struct vub_job *job;
		int64_t written;

		/* requests in flight when the last back-end stopped, first */
		if (redo)
			goto fetch;
		avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
		if ((uint16_t)(avail_idx - vq->last_avail) > vq->num)
			return vub_fail(c, "avail index moved by more than the queue size");
		if (avail_idx == vq->last_avail) {
			/*
			 * While a call is held (--coalesce) the guest need not
			 * kick: vub_held_calls() looks at the ring again.
			 */
			if (!ev || vq->held)
				break;
			/* ask for a kick at the next buffer, then re-check */
			((uint16_t *)vq->used->ring)[vq->num * 4] = vq->last_avail;
			vub_log_used(v, c, vq, 4 + 8ull * vq->num, 2);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) ==
			    vq->last_avail)
				break;
			continue;
		}
fetch:
		job = vub_job_get(c);
		if (!job)
			break;	/* resumed by vub_complete() */
		c->cur_job = job;	/* put back if a SIGBUS ends this */
		head = redo ? vq->resubmit[vq->resubmit_pos] :
		       vq->avail->ring[vq->last_avail % vq->num];
		ret = vub_walk_chain(c, vq, head, &job->rq);
		if (!ret)
			ret = vub_blk_check(c, job);
		if (ret) {
			c->cur_job = NULL;
			vub_job_put(c, job);
			return ret;
		}
		job->c = c;
		job->q = vq - c->vqs;
		job->head = head;
		if (redo) {
			vq->resubmit_pos++;
		} else {
			vq->last_avail++;
			if (vq->ifl) {
				vq->ifl->desc[head].counter = vq->counter++;
				__atomic_thread_fence(__ATOMIC_RELEASE);
				vq->ifl->desc[head].inflight = 1;
			}
		}
		written = vub_blk_request(v, c, job, true);
		if (written >= 0) {
			/*
			 * Signal it now if the guest waits for it
			 * (used_event), not at the end of the batch: the
			 * guest refills its queue while we go on.
			 */
			c->cur_job = NULL;
			vub_job_put(c, job);
			vub_used_push(v, c, vq, head, written);
			vub_vq_signal(v, c, vq);
			v->total_inline++;
			continue;
		}
		c->cur_job = NULL;
		c->inflight++;
		vub_submit(v, job);
	}
	vub_vq_signal(v, c, vq);
	return 0;
}

/* vub_vq_process_ring() under a recovery point (a SIGBUS drops @c) */
static int vub_vq_process(struct vub *v, struct vub_conn *c, struct vub_vq *vq)
{
	if (c->faulted)
		return -EPROTO;
	return VUB_GUARDED(c, -EPROTO, vub_vq_process_ring(v, c, vq));
}

/* call the guest for the completions since the last check if it asked to */
static bool vub_notify_check_ring(struct vub_conn *c, struct vub_vq *vq)
{
	uint16_t old = vq->notify_old;

	vq->completed = false;
	if (vq->used_idx == old)
		return false;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vub_has(c, VIRTIO_RING_F_EVENT_IDX)) {
		uint16_t event = vq->avail->ring[vq->num];

		if (!vring_need_event(event, vq->used_idx, old))
			return false;
	} else if (__atomic_load_n(&vq->avail->flags, __ATOMIC_ACQUIRE) &
		   VRING_AVAIL_F_NO_INTERRUPT) {
		return false;
	}
	vub_notify(vq);
	return true;
}

static bool vub_notify_check(struct vub_conn *c, struct vub_vq *vq)
{
	if (c->faulted) {
		vq->completed = false;
		return false;
	}
	return VUB_GUARDED(c, false, vub_notify_check_ring(c, vq));
}

/*
 * Interrupt coalescing (--coalesce, off by default), as SPDK's vhost
 * target does it: a ring that completed more than hold_iops requests per
 * second in the last window calls the guest at most once per hold_ns. A
 * held call stays pending (vq->completed) and its ring unarmed for kicks:
 * the guest queues more requests without a kick or an interrupt each, and
 * vub_held_calls() serves them and sends the call when the time is up.
 * That trades up to hold_ns of latency for fewer guest exits per request.
 */
static void vub_vq_signal(struct vub *v, struct vub_conn *c,
			  struct vub_vq *vq)
{
	uint64_t now;

	if (!vq->completed || vq->held)
		return;		/* held: vub_held_calls() sends it */
	if (!v->hold_ns) {
		vub_notify_check(c, vq);
		return;
	}
	now = kml_now_ns();
	if (now - vq->win_start >= VUB_RATE_WINDOW_NS) {
		vq->fast = vq->win_reqs * VUB_NS_PER_SEC >
			   v->hold_iops * (now - vq->win_start);
		vq->win_start = now;
		vq->win_reqs = 0;
	}
	if (vq->fast && now < vq->next_call) {
		v->total_held++;
		vq->held = true;
		return;
	}
	if (vub_notify_check(c, vq))
		vq->next_call = now + v->hold_ns;
}

/*
 * Send the held calls whose time is up, after serving what the guest
 * queued meanwhile (it did not kick). Returns the time in ns until the
 * next one is due, -1 if none is held.
 */
static int64_t vub_held_calls(struct vub *v)
{
	int64_t next = -1;
	unsigned int s, q;
	uint64_t now;

	if (!v->hold_ns)
		return -1;
	now = kml_now_ns();
	for (s = 0; s < VUB_MAX_CONNS; s++) {
		struct vub_conn *c = v->conns[s];

		for (q = 0; c && !c->dead && q < v->nqueues; q++) {
			struct vub_vq *vq = &c->vqs[q];

			if (!vq->held)
				continue;
			if (now >= vq->next_call &&
			    (v->bugs & BUG_COALESCE_NO_REARM)) {
				/*
				 * The lost wake-up vu_coalesce.sh must catch:
				 * the call goes out, but the ring is not looked
				 * at again, so avail_event is not re-armed and
				 * what the guest queued without a kick waits.
				 */
				vq->held = false;
				__atomic_fetch_add(&v->bug_hits, 1,
						   __ATOMIC_RELAXED);
				if (vub_notify_check(c, vq))
					vq->next_call = now + v->hold_ns;
				continue;
			}
			if (now >= vq->next_call) {
				vq->held = false;
				vq->next_call = now;
				if (vub_vq_process(v, c, vq)) {
					c->dead = true;
					break;
				}
				if (!vq->held)
					continue;
			}
			if (next < 0 || vq->next_call - now < (uint64_t)next)
				next = vq->next_call - now;
		}
	}
	return next;
}

/*
 * Send @c's held calls now, before a message changes its rings or memory;
 * vub_held_resume() looks at those rings again once it is handled (the
 * guest may have queued requests without a kick).
 */
static void vub_held_flush(struct vub_conn *c)
{
	unsigned int q;

	for (q = 0; q < VUB_MAX_QUEUES; q++) {
		struct vub_vq *vq = &c->vqs[q];

		if (vq->held) {
			vq->held = false;
			vq->resume = true;
			vub_notify_check(c, vq);
		}
	}
}

static int vub_held_resume(struct vub *v, struct vub_conn *c)
{
	unsigned int q;
	int ret = 0;

	for (q = 0; q < VUB_MAX_QUEUES && !ret; q++) {
		if (c->vqs[q].resume) {
			c->vqs[q].resume = false;
			ret = vub_vq_process(v, c, &c->vqs[q]);
		}
	}
	return ret;
}

/*
 * Put finished jobs into their used rings (main thread only), notify, and
 * take more from rings that were waiting for a free job. @busy: a
 * connection being drained, which gets no new submissions.
 */
static void vub_complete(struct vub *v, struct vub_conn *busy)
{
	struct vub_job *job, *list;
	uint64_t cnt;
	unsigned int s, q;

	if (read(v->done_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		kml_warn("done eventfd: %s", strerror(errno));
	pthread_mutex_lock(&v->lock);
	list = v->done_head;
	v->done_head = NULL;
	pthread_mutex_unlock(&v->lock);

	while ((job = list)) {
		struct vub_conn *c = job->c;

		list = job->next;
		if (job->fault)
			vub_faulted(c, job->fault);
		else if (!c->faulted)
			VUB_GUARDED(c, 0, (vub_used_push(v, c, &c->vqs[job->q],
							 job->head, job->written), 0));
		c->inflight--;
		vub_job_put(c, job);
	}
	for (s = 0; s < VUB_MAX_CONNS; s++) {
		struct vub_conn *c = v->conns[s];

		if (!c)
			continue;
		for (q = 0; q < v->nqueues; q++) {
			struct vub_vq *vq = &c->vqs[q];

			if (!vq->completed)
				continue;
			vub_vq_signal(v, c, vq);
			if (c != busy && !c->dead && vub_vq_process(v, c, vq))
				c->dead = true;
		}
	}
}

/* wait until nothing of @c is in flight: before messages and teardown */
static void vub_drain(struct vub *v, struct vub_conn *c)
{
	while (c->inflight) {
		struct pollfd p = { v->done_fd, POLLIN, 0 };

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			kml_die(1, NULL, "poll: %s", strerror(errno));
		vub_complete(v, c);
	}
	vub_held_flush(c);
}

/* ---- inflight tracking (INFLIGHT_SHMFD) --------------------------------- */

/*
 * With VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD the front-end keeps a region
 * for the back-end (GET_INFLIGHT_FD makes it, SET_INFLIGHT_FD hands it
 * back, also to the next back-end after a crash) in which every split ring
 * records, in the spec's layout, which heads it fetched and not yet
 * completed (vub_vq_process_ring(), vub_used_push()). A ring started with
 * such a region resubmits those first, in the order they were fetched.
 */
static void vub_inflight_unmap(struct vub_conn *c)
{
	if (c->ifl_map)
		munmap(c->ifl_map, c->ifl_map_len);
	c->ifl_map = NULL;
	c->ifl_map_len = 0;
	c->ifl_base = NULL;
	c->ifl_nq = 0;
	c->ifl_qsize = 0;
}

static int vub_inflight_order(const void *a, const void *b, void *arg)
{
	const struct vu_inflight_split *r = arg;
	uint64_t x = r->desc[*(const uint16_t *)a].counter;
	uint64_t y = r->desc[*(const uint16_t *)b].counter;

	return x < y ? -1 : x > y;
}

/*
 * SET_VRING_KICK on a connection with an inflight region: a fresh region
 * is initialised; one a previous back-end used is repaired (a batch whose
 * used->idx update landed but whose inflight flags were not cleared) and
 * its in-flight heads become the resubmit list, the ring going on at
 * used->idx + their number (as libvhost-user: SET_VRING_BASE is the used
 * index QEMU restored after the crash, not where fetching stopped).
 */
static int vub_inflight_start(struct vub *v, struct vub_conn *c,
			      struct vub_vq *vq)
{
	unsigned int q = vq - c->vqs, i, n = 0;
	struct vu_inflight_split *r;
	uint64_t max = 0;
	uint16_t used;

	free(vq->resubmit);
	vq->resubmit = NULL;
	vq->nresubmit = 0;
	vq->resubmit_pos = 0;
	vq->ifl = NULL;
	if (!c->ifl_map)
		return 0;
	if (q >= c->ifl_nq)
		return vub_fail(c, "ring index beyond the inflight region's num_queues");
	if (vq->num != c->ifl_qsize)
		return vub_fail(c, "ring size differs from the inflight region's queue_size");
	r = (void *)(c->ifl_base + q * vu_inflight_queue_size(c->ifl_qsize));
	used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	if (!r->version) {
		r->features = 0;
		r->desc_num = vq->num;
		r->last_batch_head = 0;
		r->used_idx = vq->used_idx;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		r->version = VU_INFLIGHT_VERSION;
		vq->counter = 1;
		vq->ifl = r;
		return 0;
	}
	if (r->version != VU_INFLIGHT_VERSION || r->desc_num != vq->num ||
	    r->features)
		return vub_failf(c, "inflight region of queue %u: version %u, %u descriptors, features 0x%llx (want 1, %u, 0)",
				 q, r->version, r->desc_num,
				 (unsigned long long)r->features, vq->num);
	/* the last batch reached the used ring: it is not in flight */
	if (r->used_idx != used && (v->bugs & BUG_INFLIGHT_NO_REPAIR)) {
		/* the defect: that batch is resubmitted, done twice */
		__atomic_fetch_add(&v->bug_hits, 1, __ATOMIC_RELAXED);
	} else if (r->used_idx != used) {
		if (r->last_batch_head >= vq->num)
			return vub_fail(c, "inflight region: last_batch_head outside the ring");
		r->desc[r->last_batch_head].inflight = 0;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		r->used_idx = used;
	}
	vq->resubmit = malloc(vq->num * sizeof(*vq->resubmit));
	if (!vq->resubmit)
		return vub_fail(c, "out of memory for the resubmit list");
	for (i = 0; i < vq->num; i++) {
		if (r->desc[i].inflight > 1)
			return vub_fail(c, "inflight region: an inflight flag is neither 0 nor 1");
		if (!r->desc[i].inflight)
			continue;
		vq->resubmit[n++] = i;
		if (r->desc[i].counter > max)
			max = r->desc[i].counter;
	}
	qsort_r(vq->resubmit, n, sizeof(*vq->resubmit), vub_inflight_order, r);
	vq->nresubmit = n;
	vq->counter = max + 1;
	vq->used_idx = used;
	vq->last_avail = used + n;
	vq->ifl = r;
	if (n)
		kml_warn("conn %u: queue %u: resubmitting %u request%s in flight when the last back-end stopped",
			 c->id, q, n, n == 1 ? "" : "s");
	return 0;
}

/* ---- connection state --------------------------------------------------- */

static void vub_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void vub_vq_reset(struct vub_vq *vq)
{
	free(vq->resubmit);
	vub_close_fd(&vq->kick_fd);
	vub_close_fd(&vq->call_fd);
	vub_close_fd(&vq->err_fd);
	memset(vq, 0, sizeof(*vq));
	vq->kick_fd = -1;
	vq->call_fd = -1;
	vq->err_fd = -1;
}

static void vub_conn_free(struct vub *v, struct vub_conn *c)
{
	struct vub_job *job;
	unsigned int i;

	vub_drain(v, c);
	while ((job = c->free_jobs)) {
		c->free_jobs = job->next;
		free(job);
	}
	for (i = 0; i < VUB_MAX_QUEUES; i++)
		vub_vq_reset(&c->vqs[i]);
	vub_unmap_all(c);
	vub_log_unmap(c);
	vub_inflight_unmap(c);
	vu_rx_reset(&c->rx);	/* fds of a message that never completed */
	close(c->sock);
	free(c);
}

/* RESET_DEVICE: every ring stopped, disabled, fds closed; features, log */
static void vub_reset_device(struct vub_conn *c)
{
	for (unsigned int i = 0; i < VUB_MAX_QUEUES; i++)
		vub_vq_reset(&c->vqs[i]);
	c->features = 0;
	vub_log_unmap(c);
}

static struct vub_vq *vub_vq_get(struct vub *v, struct vub_conn *c,
				 uint32_t index)
{
	if (index >= v->nqueues) {
		vub_fail(c, "vring index out of range");
		return NULL;
	}
	return &c->vqs[index];
}

/*
 * Send queued reply bytes as far as the socket takes them now; the rest
 * waits for POLLOUT (vub_loop()). 0, or -EPROTO if the socket failed.
 */
static int vub_flush(struct vub_conn *c)
{
	while (c->out_len) {
		ssize_t n = send(c->sock, c->out, c->out_len,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return vub_fail(c, "sending the reply failed");
		memmove(c->out, c->out + n, c->out_len - n);
		c->out_len -= n;
	}
	return 0;
}

/*
 * Queue a reply (header + @size payload bytes; vub never sends fds) and
 * send what the socket takes. While any of it is queued the connection's
 * next message is not read, so the queue holds at most one reply, and it
 * must be gone within VUB_IO_TIMEOUT_NS (vub_loop()).
 */
static int vub_reply(struct vub_conn *c, struct vu_msg *m, uint32_t size)
{
	size_t len = sizeof(m->hdr) + size;

	m->hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	m->hdr.size = size;
	if (size > sizeof(m->p) || len > sizeof(c->out) - c->out_len)
		return vub_fail(c, "reply queue full: the front-end does not read its replies");
	if (!c->out_len)
		c->out_deadline = kml_now_ns() + VUB_IO_TIMEOUT_NS;
	memcpy(c->out + c->out_len, &m->hdr, sizeof(m->hdr));
	memcpy(c->out + c->out_len + sizeof(m->hdr), &m->p, size);
	c->out_len += len;
	return vub_flush(c);
}

static int vub_set_mem_table(struct vub *v, struct vub_conn *c,
			     struct vu_msg *m)
{
	struct vub_region tmp[VU_MAX_TABLE_REGIONS];
	unsigned int i, n = m->p.mem.nregions;
	const char *err;

	for (i = 0; i < n; i++) {
		err = vub_region_map(tmp, i, &m->p.mem.regions[i], m->fds[i],
				     &tmp[i]);
		m->fds[i] = -1;
		if (err) {
			while (i--)
				vub_region_unmap(&tmp[i]);
			for (i = 0; i < n; i++)
				if (m->fds[i] >= 0)
					close(m->fds[i]);
			m->nfds = 0;
			return vub_fail(c, err);
		}
	}
	m->nfds = 0;
	vub_unmap_all(c);
	memcpy(c->regions, tmp, n * sizeof(tmp[0]));
	c->nregions = n;
	return 0;
}

static int vub_add_mem_reg(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	const char *err;

	if (!(c->pfeatures & VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS)))
		return vub_fail(c, "ADD_MEM_REG without CONFIGURE_MEM_SLOTS");
	if (c->nregions >= VUB_MAX_SLOTS)
		return vub_fail(c, "ADD_MEM_REG beyond GET_MAX_MEM_SLOTS");
	err = vub_region_map(c->regions, c->nregions, &m->p.memreg.region,
			     m->fds[0], &c->regions[c->nregions]);
	m->fds[0] = -1;
	m->nfds = 0;
	if (err)
		return vub_fail(c, err);
	vub_log(v, "conn %u: region %u: guest 0x%" PRIx64 "+0x%" PRIx64 " at front-end 0x%" PRIx64,
		c->id, c->nregions, c->regions[c->nregions].gpa,
		c->regions[c->nregions].size, c->regions[c->nregions].uva);
	c->nregions++;
	return 0;
}

static int vub_rem_mem_reg(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	const struct vu_region *r = &m->p.memreg.region;
	unsigned int i;

	vu_msg_close_fds(m);
	if (!(c->pfeatures & VU_BIT(VU_PF_CONFIGURE_MEM_SLOTS)))
		return vub_fail(c, "REM_MEM_REG without CONFIGURE_MEM_SLOTS");
	for (i = 0; i < c->nregions; i++) {
		if (c->regions[i].gpa == r->guest_phys_addr &&
		    c->regions[i].size == r->memory_size &&
		    c->regions[i].uva == r->userspace_addr) {
			vub_region_unmap(&c->regions[i]);
			c->regions[i] = c->regions[--c->nregions];
			memset(&c->regions[c->nregions], 0,
			       sizeof(c->regions[0]));
			return 0;
		}
	}
	return vub_fail(c, "REM_MEM_REG for a region that is not in the table");
}

static int vub_set_log_base(struct vub *v, struct vub_conn *c,
			    struct vu_msg *m)
{
	uint64_t size = m->p.log.mmap_size, off = m->p.log.mmap_offset, len;
	struct stat st;
	int fd;
	void *p;

	if (!(c->pfeatures & VU_BIT(VU_PF_LOG_SHMFD)))
		return vub_fail(c, "SET_LOG_BASE without LOG_SHMFD");
	if (m->nfds != 1)
		return vub_fail(c, "SET_LOG_BASE needs the log fd");
	fd = m->fds[0];
	m->fds[0] = -1;
	m->nfds = 0;
	if (!size || !vu_add_ok(size, off, &len) || len > SIZE_MAX) {
		close(fd);
		return vub_fail(c, "SET_LOG_BASE size/offset invalid");
	}
	if (fstat(fd, &st) < 0 ||
	    (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len)) {
		close(fd);
		return vub_fail(c, "SET_LOG_BASE log larger than its fd");
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return vub_fail(c, "mmap of the log fd failed");
	vub_log_unmap(c);
	c->log_map = p;
	c->log_map_len = len;
	c->log = (uint8_t *)p + off;
	c->log_size = size;
	c->log_warned = false;
	/* QEMU 7.2 waits for a reply; header only, as DPDK and QEMU's tests */
	return vub_reply(c, m, 0);
}

/*
 * A reply with one fd (GET_INFLIGHT_FD): the fd goes with its first byte,
 * so it is sent at once; whatever the socket does not take is queued as
 * in vub_reply(). The queue is empty here: no message is read while it
 * is not.
 */
static int vub_reply_fd(struct vub_conn *c, struct vu_msg *m, uint32_t size,
			int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov[2] = {
		{ &m->hdr, sizeof(m->hdr) },
		{ &m->p, size },
	};
	struct msghdr mh = {
		.msg_iov = iov,
		.msg_iovlen = 2,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	size_t len = sizeof(m->hdr) + size;
	ssize_t n;

	m->hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	m->hdr.size = size;
	if (c->out_len || size > sizeof(m->p))
		return vub_fail(c, "reply queue full: the front-end does not read its replies");
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	do {
		n = sendmsg(c->sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return vub_fail(c, "sending the reply with its fd failed (the front-end's socket is full?)");
	if ((size_t)n < len) {
		uint8_t all[sizeof(struct vu_hdr) + sizeof(union vu_payload)];

		memcpy(all, &m->hdr, sizeof(m->hdr));
		memcpy(all + sizeof(m->hdr), &m->p, size);
		c->out_len = len - n;
		memcpy(c->out, all + n, c->out_len);
		c->out_deadline = kml_now_ns() + VUB_IO_TIMEOUT_NS;
	}
	return 0;
}

/* the sizes of a GET/SET_INFLIGHT_FD request; NULL if acceptable */
static const char *vub_inflight_sizes(struct vub *v, const struct vu_inflight *in)
{
	if (!in->num_queues || in->num_queues > v->nqueues)
		return "inflight num_queues is 0 or more than the back-end's queues";
	if (!in->queue_size || in->queue_size & (in->queue_size - 1))
		return "inflight queue_size is not a power of 2";
	return NULL;
}

static int vub_get_inflight_fd(struct vub *v, struct vub_conn *c,
			       struct vu_msg *m)
{
	struct vu_inflight *in = &m->p.inflight;
	const char *err = vub_inflight_sizes(v, in);
	uint64_t size;
	int fd, ret;
	void *p;

	if (!(c->pfeatures & VU_BIT(VU_PF_INFLIGHT_SHMFD)))
		return vub_fail(c, "GET_INFLIGHT_FD without INFLIGHT_SHMFD");
	if (err)
		return vub_fail(c, err);
	size = in->num_queues * vu_inflight_queue_size(in->queue_size);
	/* vub's own memory: sealed, so the front-end cannot shrink it */
	fd = memfd_create("vub-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return vub_fail(c, "memfd_create for the inflight region failed");
	if (ftruncate(fd, size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		close(fd);
		return vub_fail(c, "sizing the inflight region failed");
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return vub_fail(c, "mmap of the inflight region failed");
	}
	vub_inflight_unmap(c);
	c->ifl_map = p;
	c->ifl_map_len = size;
	c->ifl_base = p;
	c->ifl_nq = in->num_queues;
	c->ifl_qsize = in->queue_size;
	in->mmap_size = size;
	in->mmap_offset = 0;
	ret = vub_reply_fd(c, m, sizeof(*in), fd);
	close(fd);
	return ret;
}

static int vub_set_inflight_fd(struct vub *v, struct vub_conn *c,
			       struct vu_msg *m)
{
	struct vu_inflight *in = &m->p.inflight;
	const char *err = vub_inflight_sizes(v, in);
	uint64_t len;
	struct stat st;
	unsigned int i;
	int fd;
	void *p;

	if (!(c->pfeatures & VU_BIT(VU_PF_INFLIGHT_SHMFD)))
		return vub_fail(c, "SET_INFLIGHT_FD without INFLIGHT_SHMFD");
	if (err)
		return vub_fail(c, err);
	for (i = 0; i < v->nqueues; i++)
		if (c->vqs[i].started)
			return vub_fail(c, "SET_INFLIGHT_FD while a ring runs");
	if (in->mmap_size < in->num_queues * vu_inflight_queue_size(in->queue_size) ||
	    in->mmap_offset % VUB_REGION_ALIGN ||
	    !vu_add_ok(in->mmap_size, in->mmap_offset, &len) || len > SIZE_MAX)
		return vub_fail(c, "SET_INFLIGHT_FD mmap_size/mmap_offset invalid for num_queues and queue_size");
	fd = m->fds[0];
	m->fds[0] = -1;
	m->nfds = 0;
	if (fstat(fd, &st) < 0 || (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len)) {
		close(fd);
		return vub_fail(c, "SET_INFLIGHT_FD region larger than its fd");
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return vub_fail(c, "mmap of the inflight fd failed");
	vub_inflight_unmap(c);
	c->ifl_map = p;
	c->ifl_map_len = len;
	c->ifl_base = (uint8_t *)p + in->mmap_offset;
	c->ifl_nq = in->num_queues;
	c->ifl_qsize = in->queue_size;
	return 0;
}

static int vub_set_features(struct vub *v, struct vub_conn *c,
			    struct vu_msg *m)
{
	uint64_t f = m->p.u64, changed = f ^ c->features;
	unsigned int i;

	if (f & ~vub_features(v))
		return vub_fail(c, "SET_FEATURES acks features that were not offered");
	for (i = 0; i < v->nqueues; i++) {
		if (c->vqs[i].started && (changed & ~VU_BIT(VHOST_F_LOG_ALL)))
			return vub_fail(c, "SET_FEATURES changes more than LOG_ALL while a ring runs");
	}
	c->features = f;
	if (!(f & VU_BIT(VU_F_PROTOCOL_FEATURES))) {
		/* spec: without PROTOCOL_FEATURES all rings are enabled */
		for (i = 0; i < v->nqueues; i++)
			c->vqs[i].enabled = true;
	} else if (v->bugs & BUG_DISABLE_ON_SET_FEATURES) {
		/* the rust-vmm vhost-user-backend < 0.12 defect */
		for (i = 0; i < v->nqueues; i++)
			c->vqs[i].enabled = false;
		__atomic_fetch_add(&v->bug_hits, 1, __ATOMIC_RELAXED);
	}
	/* SET_FEATURES never disables a ring: nothing else to do */
	return 0;
}

static int vub_get_config(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	struct virtio_blk_config cfg;
	uint8_t buf[VU_CONFIG_MAX];
	uint32_t off = m->p.config.offset, size = m->p.config.size;

	if (!(c->pfeatures & VU_BIT(VU_PF_CONFIG)))
		return vub_fail(c, "GET_CONFIG without the CONFIG protocol feature");
	if (off > VU_CONFIG_MAX || size > VU_CONFIG_MAX - off)
		return vub_fail(c, "GET_CONFIG offset/size out of range");
	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = v->capacity / VUB_SECTOR;
	cfg.seg_max = VUB_SEG_MAX;
	cfg.blk_size = VUB_SECTOR;
	cfg.num_queues = v->nqueues;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &cfg, sizeof(cfg) < sizeof(buf) ? sizeof(cfg) : sizeof(buf));
	memcpy(m->p.config.region, buf + off, size);
	return vub_reply(c, m, 12 + size);
}

/*
 * NULL if @fd is an eventfd (for a kick fd: not in semaphore mode, whose
 * reads take 1 at a time and would keep it readable), else why not. The
 * checks of vub_kick()/vub_notify() rely on it: an eventfd read returns 8
 * bytes, and a write fails with EAGAIN only when the counter is full.
 */
static const char *vub_check_eventfd(int fd, bool kick)
{
	char path[64], buf[512];
	ssize_t n;
	int pfd;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	pfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pfd < 0)
		return "cannot read the vring fd's /proc/self/fdinfo (is /proc mounted?)";
	n = read(pfd, buf, sizeof(buf) - 1);
	close(pfd);
	if (n < 0)
		return "cannot read the vring fd's /proc/self/fdinfo";
	buf[n] = '\0';
	if (!strstr(buf, "\neventfd-count:"))
		return "vring fd is not an eventfd";
	if (kick && strstr(buf, "\neventfd-semaphore: 1"))
		return "kick fd is a semaphore-mode eventfd (it would stay readable)";
	return NULL;
}

static int vub_vring_fd(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	struct vub_vq *vq = vub_vq_get(v, c, m->p.u64 & VU_VRING_IDX_MASK);
	int fd = m->nfds ? m->fds[0] : -1;
	const char *err;

	if (!vq)
		return -EPROTO;
	if (m->hdr.request == VU_SET_VRING_KICK && fd < 0)
		return vub_fail(c, "SET_VRING_KICK without an fd (polling mode) is not supported");
	if (fd >= 0) {
		/* the main thread never waits on a ring fd: all three */
		err = vub_check_eventfd(fd, m->hdr.request == VU_SET_VRING_KICK);
		if (err)
			return vub_fail(c, err);
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
			return vub_fail(c, "cannot make the vring fd non-blocking");
	}
	m->nfds = 0;
	switch (m->hdr.request) {
	case VU_SET_VRING_CALL:
		vub_close_fd(&vq->call_fd);
		vq->call_fd = fd;
		return 0;
	case VU_SET_VRING_ERR:
		vub_close_fd(&vq->err_fd);
		vq->err_fd = fd;
		return 0;
	}
	/* SET_VRING_KICK starts the ring */
	vub_close_fd(&vq->kick_fd);
	vq->kick_fd = fd;
	if (!vq->num || !vq->have_addr)
		return vub_fail(c, "SET_VRING_KICK before SET_VRING_NUM/SET_VRING_ADDR");
	if (vub_vq_map(c, vq) ||
	    VUB_GUARDED(c, -EPROTO, vub_inflight_start(v, c, vq)))
		return -EPROTO;
	vq->started = true;
	if (!vub_protocol_negotiated(c))
		vq->enabled = true;
	return vub_vq_process(v, c, vq);
}

/* returns 0 if handled (reply sent if needed), -EPROTO to drop the client */
static int vub_handle(struct vub *v, struct vub_conn *c, struct vu_msg *m)
{
	const struct vu_req_info *ri = vu_req_info(m->hdr.request);
	bool ack = (m->hdr.flags & VU_FLAG_NEED_REPLY) &&
		   (c->pfeatures & VU_BIT(VU_PF_REPLY_ACK)) && !ri->reply;
	struct vub_vq *vq;
	const char *err;
	int ret = 0;

	err = vu_msg_validate(m);
	if (err) {
		ret = vub_fail(c, err);
		goto out;
	}
	switch (m->hdr.request) {
	case VU_GET_FEATURES:
		m->p.u64 = vub_features(v);
		ret = vub_reply(c, m, 8);
		break;
	case VU_SET_FEATURES:
		ret = vub_set_features(v, c, m);
		break;
	case VU_GET_PROTOCOL_FEATURES:
		m->p.u64 = vub_protocol_features();
		ret = vub_reply(c, m, 8);
		break;
	case VU_SET_PROTOCOL_FEATURES:
		if (m->p.u64 & ~vub_protocol_features()) {
			ret = vub_fail(c, "SET_PROTOCOL_FEATURES acks features that were not offered");
			break;
		}
		c->pfeatures = m->p.u64;
		c->pfeatures_set = true;
		break;
	case VU_SET_OWNER:
		break;
	case VU_RESET_OWNER:
		/*
		 * Deprecated; the spec recommends ignoring it or disabling
		 * all rings, and warns that discarding connection state leads
		 * to bugs. Like libvhost-user: disable the rings, keep the
		 * rest (SET_VRING_ENABLE 1 resumes them).
		 */
		if (v->bugs & BUG_RESET_OWNER_DISCARDS) {
			vub_reset_device(c);
			__atomic_fetch_add(&v->bug_hits, 1, __ATOMIC_RELAXED);
			break;
		}
		for (unsigned int i = 0; i < VUB_MAX_QUEUES; i++)
			c->vqs[i].enabled = false;
		break;
	case VU_RESET_DEVICE:
		if (!(v->bugs & BUG_RESET_DEVICE_IGNORED))
			vub_reset_device(c);
		else
			__atomic_fetch_add(&v->bug_hits, 1, __ATOMIC_RELAXED);
		break;
	case VU_GET_QUEUE_NUM:
		m->p.u64 = v->nqueues;
		ret = vub_reply(c, m, 8);
		break;
	case VU_GET_MAX_MEM_SLOTS:
		m->p.u64 = VUB_MAX_SLOTS;
		ret = vub_reply(c, m, 8);
		break;
	case VU_SET_MEM_TABLE:
		ret = vub_set_mem_table(v, c, m);
		break;
	case VU_ADD_MEM_REG:
		ret = vub_add_mem_reg(v, c, m);
		break;
	case VU_REM_MEM_REG:
		ret = vub_rem_mem_reg(v, c, m);
		break;
	case VU_SET_LOG_BASE:
		ret = vub_set_log_base(v, c, m);
		break;
	case VU_SET_LOG_FD:
		/* only used with the old shared-memory logging we don't offer */
		ret = vub_fail(c, "SET_LOG_FD is not supported");
		break;
	case VU_SET_VRING_NUM:
		vq = vub_vq_get(v, c, m->p.state.index);
		if (!vq) {
			ret = -EPROTO;
		} else if (vq->started) {
			ret = vub_fail(c, "SET_VRING_NUM on a started ring");
		} else if (!m->p.state.num || m->p.state.num > VU_MAX_QUEUE_SIZE ||
			   (m->p.state.num & (m->p.state.num - 1))) {
			ret = vub_fail(c, "SET_VRING_NUM size not a power of 2 in 1..32768");
		} else {
			vq->num = m->p.state.num;
		}
		break;
	case VU_SET_VRING_BASE:
		vq = vub_vq_get(v, c, m->p.state.index);
		if (!vq) {
			ret = -EPROTO;
		} else if (vq->started) {
			ret = vub_fail(c, "SET_VRING_BASE on a started ring");
		} else if (m->p.state.num > 0xffff) {
			ret = vub_fail(c, "SET_VRING_BASE index above 65535");
		} else {
			vq->last_avail = m->p.state.num;
			vq->used_idx = m->p.state.num;
		}
		break;
	case VU_SET_VRING_ADDR: {
		struct vhost_vring_addr *a = &m->p.addr;
		uint64_t end;

		vq = vub_vq_get(v, c, a->index);
		if (!vq) {
			ret = -EPROTO;
		} else if (a->flags & ~(1u << VHOST_VRING_F_LOG)) {
			ret = vub_fail(c, "SET_VRING_ADDR unknown flags");
		} else if (a->desc_user_addr % 16 || a->avail_user_addr % 2 ||
			   a->used_user_addr % 4 ||
			   ((a->flags & (1u << VHOST_VRING_F_LOG)) &&
			    (a->log_guest_addr % 4 ||
			     !vu_add_ok(a->log_guest_addr,
					vu_used_size(VU_MAX_QUEUE_SIZE, true),
					&end)))) {
			ret = vub_fail(c, "SET_VRING_ADDR addresses misaligned or overflowing");
		} else {
			struct vhost_vring_addr old = vq->addr;

			vq->addr = *a;
			vq->have_addr = true;
			/* a running ring must stay inside the table */
			if (vq->started && vub_vq_map(c, vq)) {
				vq->addr = old;
				ret = -EPROTO;
			}
		}
		break;
	}
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		ret = vub_vring_fd(v, c, m);
		break;
	case VU_GET_VRING_BASE:
		vq = vub_vq_get(v, c, m->p.state.index);
		if (!vq) {
			ret = -EPROTO;
			break;
		}
		/* stop: no more guest-memory writes or calls on this ring */
		vq->started = false;
		vub_close_fd(&vq->kick_fd);
		m->p.state.num = vq->last_avail;
		ret = vub_reply(c, m, 8);
		break;
	case VU_SET_VRING_ENABLE:
		vq = vub_vq_get(v, c, m->p.state.index);
		if (!vq) {
			ret = -EPROTO;
		} else if (!vub_protocol_negotiated(c)) {
			ret = vub_fail(c, "SET_VRING_ENABLE without PROTOCOL_FEATURES");
		} else if (m->p.state.num > 1) {
			ret = vub_fail(c, "SET_VRING_ENABLE value not 0 or 1");
		} else {
			vq->enabled = m->p.state.num;
			ret = vub_vq_process(v, c, vq);
		}
		break;
	case VU_GET_CONFIG:
		ret = vub_get_config(v, c, m);
		break;
	case VU_SET_CONFIG:
		/* the only writable field (wce) needs CONFIG_WCE: not offered */
		if (!ack)
			kml_warn("conn %u: SET_CONFIG ignored (no writable fields)",
				 c->id);
		if (ack) {
			m->p.u64 = 1;
			ret = vub_reply(c, m, 8);
			return ret;
		}
		break;
	case VU_GET_INFLIGHT_FD:
		ret = vub_get_inflight_fd(v, c, m);
		break;
	case VU_SET_INFLIGHT_FD:
		ret = vub_set_inflight_fd(v, c, m);
		break;
	case VU_SET_BACKEND_REQ_FD:
		ret = vub_fail(c, "SET_BACKEND_REQ_FD without BACKEND_REQ");
		break;
	default:
		ret = vub_fail(c, "unsupported request");
		break;
	}
out:
	vu_msg_close_fds(m);
	if (ack) {
		struct vu_msg r = { .hdr = { m->hdr.request } };

		r.p.u64 = ret ? 1 : 0;
		vub_reply(c, &r, 8);
	}
	return ret;
}

/*
 * The connection's socket is readable: take what has arrived of its next
 * message without waiting for the rest (a front-end that sends it a byte
 * at a time must not hold up the others; vub_loop() closes the connection
 * if it is not complete VUB_IO_TIMEOUT_NS after its first byte), and
 * handle it once it is complete.
 */
static int vub_conn_read(struct vub *v, struct vub_conn *c)
{
	struct vu_msg *mp = &c->rx.msg;
	bool started = c->rx.got;
	const char *err;
	int ret;

	ret = vu_msg_recv_nb(c->sock, &c->rx, &err);
	if (ret == -EAGAIN) {
		if (!started && c->rx.got)
			c->rx_deadline = kml_now_ns() + VUB_IO_TIMEOUT_NS;
		return 0;
	}
	if (ret == 0 && !c->msgs) {
		/* e.g. a second vub checking whether the socket is in use */
		v->total_probes++;
		kml_warn("conn %u: closed before its first message: a probe (another vub checking this socket?), not a front-end",
			 c->id);
		return -ECONNRESET;
	}
	if (ret == 0) {
		vub_log(v, "conn %u: front-end closed the connection", c->id);
		return -ECONNRESET;
	}
	if (ret < 0) {
		kml_err("close the front-end or fix the message it sends",
			"conn %u: %s: closing the connection", c->id,
			err ? err : strerror(-ret));
		return vub_fail(c, err ? err : "receive failed");
	}
	c->msgs++;
	vub_log(v, "conn %u: %s flags 0x%x size %u fds %d", c->id,
		vu_req_name(mp->hdr.request), mp->hdr.flags, mp->hdr.size,
		mp->nfds);
	/* every message sees a quiescent device: nothing in flight */
	vub_drain(v, c);
	ret = vub_handle(v, c, mp);
	if (!ret)
		ret = vub_held_resume(v, c);
	if (ret && c->why)
		kml_err(vub_hint(c, "close the front-end or fix the message it sends"),
			"conn %u: %s (%s): closing the connection", c->id,
			c->why, vu_req_name(mp->hdr.request));
	vu_rx_reset(&c->rx);
	return ret;
}

static int vub_kick(struct vub *v, struct vub_conn *c, struct vub_vq *vq)
{
	uint64_t cnt = 0;
	ssize_t n;

	n = read(vq->kick_fd, &cnt, sizeof(cnt));
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return vub_fail(c, "reading the kick eventfd failed");
	/* an eventfd (vub_check_eventfd()) reads 8 bytes or fails */
	if (n >= 0 && n != sizeof(cnt))
		return vub_failf(c, "kick fd read returned %zd bytes, not an eventfd count",
				 n);
	vub_kicks += cnt;
	return vub_vq_process(v, c, vq);
}

/* ---- setup and main loop ------------------------------------------------ */

static void vub_on_signal(int sig)
{
	vub_stop = 1;
}

static int vub_listen(struct vub *v)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(v->sock_path) >= sizeof(sa.sun_path))
		kml_die(2, "use a shorter path (at most 107 bytes)",
			"socket path too long: %s", v->sock_path);
	strcpy(sa.sun_path, v->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		kml_die(1, NULL, "socket: %s", strerror(errno));
	if (lstat(v->sock_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			kml_die(1, "pick another --socket path",
				"%s exists and is not a socket", v->sock_path);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			kml_die(1, "stop the other back-end or pick another --socket path",
				"%s is in use by a running server",
				v->sock_path);
		unlink(v->sock_path);
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			kml_die(1, NULL, "socket: %s", strerror(errno));
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		kml_die(1, "check that the directory exists and is writable",
			"bind %s: %s", v->sock_path, strerror(errno));
	if (listen(fd, VUB_MAX_CONNS) < 0)
		kml_die(1, NULL, "listen: %s", strerror(errno));
	return fd;
}

static void vub_open_image(struct vub *v)
{
	struct stat st;
	uint64_t size;

	v->img_fd = open(v->file, (v->read_only ? O_RDONLY : O_RDWR) |
			 O_CLOEXEC);
	if (v->img_fd < 0)
		kml_die(1, v->read_only ? "check the path" :
			"check the path and permissions, or use --read-only",
			"cannot open %s: %s", v->file, strerror(errno));
	if (fstat(v->img_fd, &st) < 0)
		kml_die(1, NULL, "fstat %s: %s", v->file, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(v->img_fd, BLKGETSIZE64, &size) < 0)
			kml_die(1, NULL, "BLKGETSIZE64 %s: %s", v->file,
				strerror(errno));
	} else if (S_ISREG(st.st_mode)) {
		size = st.st_size;
	} else {
		kml_die(2, "give a raw image file or a block device",
			"%s is neither a regular file nor a block device",
			v->file);
	}
	v->capacity = size / VUB_SECTOR * VUB_SECTOR;
	if (!v->capacity)
		kml_die(2, "grow it, e.g. truncate -s 64M IMAGE",
			"%s is smaller than one 512-byte sector", v->file);
	if (size % VUB_SECTOR)
		kml_warn("%s: the last %" PRIu64 " bytes (partial sector) are not served",
			 v->file, size % VUB_SECTOR);
}

/* a connection on socket @fd (non-blocking), no state yet */
static struct vub_conn *vub_conn_new(struct vub *v, int fd)
{
	struct vub_conn *c = calloc(1, sizeof(*c));
	unsigned int i;

	if (!c)
		return NULL;
	c->sock = fd;
	c->id = ++v->next_id;
	for (i = 0; i < VUB_MAX_QUEUES; i++) {
		c->vqs[i].kick_fd = -1;
		c->vqs[i].call_fd = -1;
		c->vqs[i].err_fd = -1;
	}
	return c;
}

static void vub_accept(struct vub *v)
{
	struct vub_conn *c;
	unsigned int i, slot = VUB_MAX_CONNS;
	int fd;

	/* never waited on: see vub_conn_read() and vub_reply() */
	fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (i = 0; i < VUB_MAX_CONNS; i++)
		if (!v->conns[i]) {
			slot = i;
			break;
		}
	c = slot < VUB_MAX_CONNS ? vub_conn_new(v, fd) : NULL;
	if (!c) {
		kml_err("disconnect other front-ends first",
			"too many connections (max %d): refusing one",
			VUB_MAX_CONNS);
		close(fd);
		return;
	}
	v->conns[slot] = c;
	v->total_conns++;
	vub_log(v, "conn %u: connected", c->id);
}

static void vub_drop(struct vub *v, unsigned int slot)
{
	struct vub_conn *c = v->conns[slot];

	if (c->why)
		v->total_errors++;
	vub_log(v, "conn %u: closed after %" PRIu64 " requests", c->id,
		c->requests);
	vub_conn_free(v, c);
	v->conns[slot] = NULL;
}

/*
 * Close the connections whose message or reply is overdue. Returns the
 * time in ns until the next such deadline (at most @wait, -1: none).
 */
static int64_t vub_deadlines(struct vub *v, int64_t wait)
{
	uint64_t now = kml_now_ns();
	unsigned int s;

	for (s = 0; s < VUB_MAX_CONNS; s++) {
		struct vub_conn *c = v->conns[s];
		uint64_t due;

		if (!c)
			continue;
		if (c->out_len && now >= c->out_deadline) {
			vub_fail(c, "the front-end did not read its reply within 2 s");
			kml_err("the front-end must read the replies to its requests",
				"conn %u: %s: closing the connection", c->id,
				c->why);
			vub_drop(v, s);
			continue;
		}
		if (c->rx.got && now >= c->rx_deadline) {
			vub_failf(c, "message incomplete 2 s after its first byte (%zu of %zu bytes)",
				  c->rx.got, c->rx.got < sizeof(c->rx.msg.hdr) ?
				  sizeof(c->rx.msg.hdr) :
				  sizeof(c->rx.msg.hdr) + c->rx.msg.hdr.size);
			kml_err("a front-end must send each message in full",
				"conn %u: %s: closing the connection", c->id,
				c->why);
			vub_drop(v, s);
			continue;
		}
		due = c->out_len ? c->out_deadline :
		      c->rx.got ? c->rx_deadline : 0;
		if (due && (wait < 0 || due - now < (uint64_t)wait))
			wait = due - now;
	}
	return wait;
}

/*
 * The main loop. Nothing in it waits for a front-end: sockets are read
 * and written without blocking (a partial message and an unsent reply stay
 * buffered in the connection, with a deadline), ring fds are non-blocking
 * eventfds. It waits only in ppoll(), the one place SIGINT/SIGTERM are
 * unblocked (@sigmask), and for the image I/O of vub_drain().
 */
static void vub_loop(struct vub *v, const sigset_t *sigmask)
{
	struct pollfd pfd[2 + VUB_MAX_CONNS * (1 + VUB_MAX_QUEUES)];
	struct {
		unsigned int slot;
		int q;		/* -1: the socket */
	} who[KML_ARRAY_SIZE(pfd)];

	while (!vub_stop) {
		unsigned int n = 0, i, s;
		struct timespec ts;
		int64_t wait;
		int q, ret;

		wait = vub_held_calls(v);
		wait = vub_deadlines(v, wait);
		/* rings that failed while being refilled after a completion */
		for (s = 0; s < VUB_MAX_CONNS; s++) {
			struct vub_conn *c = v->conns[s];

			if (c && c->dead) {
				kml_err(vub_hint(c, "fix the front-end's ring"),
					"conn %u: %s: closing the connection",
					c->id, c->why ? c->why : "ring error");
				vub_drop(v, s);
			}
		}
		pfd[n].fd = v->listen_fd;
		pfd[n++].events = POLLIN;
		pfd[n].fd = v->done_fd;
		pfd[n++].events = POLLIN;
		for (s = 0; s < VUB_MAX_CONNS; s++) {
			struct vub_conn *c = v->conns[s];

			if (!c)
				continue;
			pfd[n].fd = c->sock;
			/* the next message only once the last reply is out */
			pfd[n].events = c->out_len ? POLLOUT : POLLIN;
			who[n].slot = s;
			who[n++].q = -1;
			for (q = 0; q < (int)v->nqueues; q++) {
				if (!c->vqs[q].started || c->vqs[q].kick_fd < 0)
					continue;
				pfd[n].fd = c->vqs[q].kick_fd;
				pfd[n].events = POLLIN;
				who[n].slot = s;
				who[n++].q = q;
			}
		}
		ts.tv_sec = wait / VUB_NS_PER_SEC;
		ts.tv_nsec = wait % VUB_NS_PER_SEC;
		ret = ppoll(pfd, n, wait < 0 ? NULL : &ts, sigmask);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			kml_die(1, NULL, "poll: %s", strerror(errno));
		}
		if (pfd[0].revents & POLLIN)
			vub_accept(v);
		if (pfd[1].revents & POLLIN)
			vub_complete(v, NULL);
		for (i = 2; i < n; i++) {
			struct vub_conn *c = v->conns[who[i].slot];

			if (!pfd[i].revents || !c)
				continue;
			if (who[i].q < 0 && c->out_len)
				ret = vub_flush(c);
			else if (who[i].q < 0)
				ret = vub_conn_read(v, c);
			else if (c->vqs[who[i].q].kick_fd != pfd[i].fd ||
				 !c->vqs[who[i].q].started)
				continue;	/* changed by an earlier message */
			else if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
				ret = vub_fail(c, "kick fd reports an error or hang-up");
			else
				ret = vub_kick(v, c, &c->vqs[who[i].q]);
			if (ret) {
				if (c->why && who[i].q >= 0)
					kml_err(vub_hint(c, "fix the front-end's ring"),
						"conn %u: queue %d: %s: closing the connection",
						c->id, who[i].q, c->why);
				vub_drop(v, who[i].slot);
			}
		}
	}
}

static const char *const vub_bug_names[] = {
	"disable-on-set-features",
	"no-dirty-log",
	"reset-owner-discards",
	"reset-device-ignored",
	"coalesce-no-rearm",
	"inflight-no-repair",
};

static void vub_usage(FILE *f)
{
	fprintf(f,
		"usage: vub --socket PATH --file IMAGE [options]\n"
		"\n"
		"A vhost-user-blk back-end serving a raw image file or block device.\n"
		"\n"
		"  -s, --socket PATH   UNIX socket to listen on (created; stale one replaced)\n"
		"  -f, --file IMAGE    raw image file or block device to serve\n"
		"  -q, --queues N      number of virtqueues, 1..%d (default 1)\n"
		"  -r, --read-only     serve read-only (VIRTIO_BLK_F_RO, writes fail)\n"
		"  -b, --bug=NAME      recreate a known defect, for testing checkers:\n"
		"                        disable-on-set-features  SET_FEATURES disables all\n"
		"                          rings once PROTOCOL_FEATURES is negotiated\n"
		"                        no-dirty-log  never mark pages in the dirty log\n"
		"                        reset-owner-discards  RESET_OWNER resets the\n"
		"                          rings like RESET_DEVICE (spec: ignore it or\n"
		"                          only disable the rings)\n"
		"                        reset-device-ignored  RESET_DEVICE does nothing\n"
		"                        coalesce-no-rearm  (with --coalesce) a held call\n"
		"                          is sent without looking at the ring again: the\n"
		"                          kick stays unarmed (a lost wake-up)\n"
		"                        inflight-no-repair  a ring resumed from an\n"
		"                          inflight region resubmits its last batch even\n"
		"                          when it reached the used ring\n"
		"  -c, --coalesce USEC[,IOPS]\n"
		"                      interrupt coalescing (default off): a queue that\n"
		"                      completes over IOPS requests/s (default %d) calls\n"
		"                      the guest at most once per USEC (1..%d) and\n"
		"                      takes new requests without kicks meanwhile: fewer\n"
		"                      guest exits per request, up to USEC more latency\n"
		"  -v, --verbose       log every message on stderr\n"
		"  -j, --json          print the ready and exit records as JSON lines\n"
		"  -h, --help          this text\n"
		"\n"
		"Runs until SIGINT/SIGTERM; serves up to %d front-ends at once.\n",
		VUB_MAX_QUEUES, VUB_COALESCE_IOPS, VUB_COALESCE_MAX_US,
		VUB_MAX_CONNS);
}

/* --coalesce USEC[,IOPS] */
static void vub_parse_coalesce(struct vub *v, const char *arg)
{
	char buf[64], *comma;
	uint64_t us, iops = VUB_COALESCE_IOPS;

	if (strlen(arg) >= sizeof(buf))
		goto bad;
	strcpy(buf, arg);
	comma = strchr(buf, ',');
	if (comma) {
		*comma = '\0';
		if (kml_parse_u64(comma + 1, &iops) || !iops ||
		    iops > VUB_COALESCE_MAX_IOPS)
			goto bad;
	}
	if (kml_parse_u64(buf, &us) || !us || us > VUB_COALESCE_MAX_US)
		goto bad;
	v->hold_ns = us * 1000;
	v->hold_iops = iops;
	return;
bad:
	kml_die(2, "use USEC from 1 to 100000 and an optional IOPS from 1 to 100000000, e.g. --coalesce 200,1000",
		"bad --coalesce '%s'", arg);
}

static void vub_print_state(struct vub *v, const char *event)
{
	char sz[KML_SIZE_BUF];

	kml_format_size(v->capacity, sz, sizeof(sz));
	if (v->json) {
		struct kml_json j;

		kml_json_init(&j, stdout);
		kml_json_obj_begin(&j, NULL);
		kml_json_str(&j, "event", event);
		kml_json_str(&j, "socket", v->sock_path);
		kml_json_str(&j, "file", v->file);
		kml_json_u64(&j, "size", v->capacity);
		kml_json_u64(&j, "queues", v->nqueues);
		kml_json_bool(&j, "read_only", v->read_only);
		kml_json_u64(&j, "features", vub_features(v));
		kml_json_u64(&j, "protocol_features", vub_protocol_features());
		kml_json_arr_begin(&j, "bugs");
		for (unsigned int i = 0; i < KML_ARRAY_SIZE(vub_bug_names); i++)
			if (v->bugs & (1u << i))
				kml_json_str(&j, NULL, vub_bug_names[i]);
		kml_json_arr_end(&j);
		kml_json_u64(&j, "connections", v->total_conns);
		kml_json_u64(&j, "probes", v->total_probes);
		kml_json_u64(&j, "requests", v->total_requests);
		kml_json_u64(&j, "requests_inline", v->total_inline);
		kml_json_u64(&j, "kicks", vub_kicks);
		kml_json_u64(&j, "calls", vub_calls);
		kml_json_u64(&j, "coalesce_us", v->hold_ns / 1000);
		kml_json_u64(&j, "coalesce_iops", v->hold_iops);
		kml_json_u64(&j, "calls_held", v->total_held);
		kml_json_u64(&j, "protocol_errors", v->total_errors);
		kml_json_u64(&j, "bug_hits", v->bug_hits);
		kml_json_obj_end(&j);
		kml_json_finish(&j);
		return;
	}
	if (!strcmp(event, "ready")) {
		char co[64] = "";

		if (v->hold_ns)
			snprintf(co, sizeof(co),
				 ", calls coalesced: %" PRIu64 " us above %" PRIu64 " IOPS",
				 v->hold_ns / 1000, v->hold_iops);
		printf("vub: serving %s (%s, %u queue%s%s%s) on %s%s%s\n",
		       v->file, sz, v->nqueues, v->nqueues > 1 ? "s" : "",
		       v->read_only ? ", read-only" : "", co, v->sock_path,
		       v->bugs ? " with deliberate bug " : "",
		       v->bugs ? vub_bug_names[__builtin_ctz(v->bugs)] : "");
	} else {
		printf("vub: exiting: %" PRIu64 " connections (%" PRIu64
		       " probes), %" PRIu64 " requests (%" PRIu64 " without the worker pool), %"
		       PRIu64 " kicks, %" PRIu64 " calls (%" PRIu64
		       " held back), %" PRIu64 " protocol errors\n",
		       v->total_conns, v->total_probes, v->total_requests,
		       v->total_inline,
		       vub_kicks, vub_calls, v->total_held, v->total_errors);
		if (v->bugs)
			printf("vub: deliberate bug %s: its faulty path taken %" PRIu64 " times\n",
			       vub_bug_names[__builtin_ctz(v->bugs)], v->bug_hits);
	}
	fflush(stdout);
}

#ifndef VUB_NO_MAIN	/* vu_fuzz.c includes this file */
int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "queues", required_argument, NULL, 'q' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "bug", required_argument, NULL, 'b' },
		{ "coalesce", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct vub v = { .nqueues = 1, .img_fd = -1,
			 .nowait = { true, true } };
	struct sigaction sa = { .sa_handler = vub_on_signal };
	sigset_t stop_sigs, run_mask;
	uint64_t val;
	int opt;

	kml_init(argv[0]);
	while ((opt = getopt_long(argc, argv, "s:f:q:rb:c:vjh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			v.sock_path = optarg;
			break;
		case 'f':
			v.file = optarg;
			break;
		case 'q':
			if (kml_parse_u64(optarg, &val) || !val ||
			    val > VUB_MAX_QUEUES)
				kml_die(2, "use a number from 1 to 16",
					"bad --queues '%s'", optarg);
			v.nqueues = val;
			break;
		case 'r':
			v.read_only = true;
			break;
		case 'b': {
			unsigned int i;

			for (i = 0; i < KML_ARRAY_SIZE(vub_bug_names); i++)
				if (!strcmp(optarg, vub_bug_names[i]))
					break;
			if (i == KML_ARRAY_SIZE(vub_bug_names))
				kml_die(2, "use one of: disable-on-set-features, no-dirty-log, reset-owner-discards, reset-device-ignored, coalesce-no-rearm, inflight-no-repair",
					"unknown --bug '%s'", optarg);
			v.bugs |= 1u << i;
			break;
		}
		case 'c':
			vub_parse_coalesce(&v, optarg);
			break;
		case 'v':
			v.verbose = true;
			break;
		case 'j':
			v.json = true;
			break;
		case 'h':
			vub_usage(stdout);
			return 0;
		default:
			vub_usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		kml_die(2, "see vub --help", "unexpected argument '%s'",
			argv[optind]);
	if (!v.sock_path || !v.file)
		kml_die(2, "e.g. vub --socket /tmp/vub.sock --file disk.img",
			"--socket and --file are required");
	if ((v.bugs & BUG_COALESCE_NO_REARM) && !v.hold_ns)
		kml_die(2, "add --coalesce USEC[,IOPS]",
			"--bug=coalesce-no-rearm needs --coalesce");
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/*
	 * SIGINT/SIGTERM stay blocked (in the workers for good) except in
	 * the main loop's ppoll(): a stop request is never taken by a worker
	 * or lost between the loop's check and its wait.
	 */
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGINT);
	sigaddset(&stop_sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_sigs, &run_mask);
	sigdelset(&run_mask, SIGINT);
	sigdelset(&run_mask, SIGTERM);
	vub_sigbus_init();
	vub_open_image(&v);
	v.listen_fd = vub_listen(&v);
	pthread_mutex_init(&v.lock, NULL);
	pthread_cond_init(&v.cond, NULL);
	v.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v.done_fd < 0)
		kml_die(1, NULL, "eventfd: %s", strerror(errno));
	for (unsigned int i = 0; i < VUB_WORKERS; i++)
		if (pthread_create(&v.workers[i], NULL, vub_worker, &v))
			kml_die(1, "check ulimit -u", "cannot start worker threads");
	vub_print_state(&v, "ready");
	vub_loop(&v, &run_mask);
	for (unsigned int i = 0; i < VUB_MAX_CONNS; i++)
		if (v.conns[i])
			vub_drop(&v, i);
	pthread_mutex_lock(&v.lock);
	v.pool_stop = true;
	pthread_cond_broadcast(&v.cond);
	pthread_mutex_unlock(&v.lock);
	for (unsigned int i = 0; i < VUB_WORKERS; i++)
		pthread_join(v.workers[i], NULL);
	close(v.done_fd);
	close(v.listen_fd);
	unlink(v.sock_path);
	close(v.img_fd);
	vub_print_state(&v, "exit");
	return 0;
}
#endif /* VUB_NO_MAIN */
