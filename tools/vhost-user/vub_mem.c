// SPDX-License-Identifier: GPL-2.0
/*
 * vub_mem - vub's guest memory: the memory table (SET_MEM_TABLE, ADD/REM_MEM_REG regions and
 * their translation), the dirty log, and the SIGBUS recovery points that
 * contain a front-end shrinking its fds under vub.
 */
#include "vub.h"

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
_Thread_local void *vub_fault_jmp;
_Thread_local void *vub_fault_addr;
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

void vub_sigbus_init(void)
{
	struct sigaction sa = {
		.sa_sigaction = vub_on_sigbus,
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &vub_sigbus_old) < 0)
		kml_die(1, NULL, "sigaction SIGBUS: %s", strerror(errno));
}

/* the hint for @c's error: @hint, unless its guest memory faulted */
const char *vub_hint(const struct vub_conn *c, const char *hint)
{
	return c->faulted ? VUB_FAULT_HINT : hint;
}

/* after a SIGBUS at @addr in @c's memory: drop @c; always -EPROTO */
int vub_faulted(struct vub_conn *c, void *addr)
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

void *vub_gpa(struct vub_conn *c, uint64_t gpa, uint64_t len)
{
	return vub_translate(c, gpa, len, false);
}

void *vub_uva(struct vub_conn *c, uint64_t uva, uint64_t len)
{
	return vub_translate(c, uva, len, true);
}

void vub_region_unmap(struct vub_region *r)
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
const char *vub_region_map(struct vub_region *table,
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

void vub_unmap_all(struct vub_conn *c)
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

void vub_log_gpa(struct vub *v, struct vub_conn *c, uint64_t gpa,
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

void vub_log_used(struct vub *v, struct vub_conn *c, struct vub_vq *vq,
		  uint64_t off, uint64_t len)
{
	if (vq->addr.flags & (1u << VHOST_VRING_F_LOG))
		vub_log_gpa(v, c, vq->addr.log_guest_addr + off, len);
}

void vub_log_unmap(struct vub_conn *c)
{
	if (c->log_map)
		munmap(c->log_map, c->log_map_len);
	c->log_map = NULL;
	c->log = NULL;
	c->log_size = 0;
}
