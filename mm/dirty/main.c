// SPDX-License-Identifier: GPL-2.0
/*
 * memcg_dirty - per-cgroup dirty limits for cgroup v2 writeback.
 *
 * cgroup writeback gives every memcg its own writeback domain, but its
 * thresholds are derived from the global vm.dirty_* settings and the memcg's
 * memory headroom; there is no per-cgroup knob. This module adds the knobs
 * of the unmerged 2010 "memcg dirty limits" series (dirty_bytes, dirty_ratio,
 * background_bytes, background_ratio) and enforces them through the
 * kernel's own throttle:
 *
 *  - knobs live in configfs, one directory per cgroup named by its cgroup id
 *    (/sys/kernel/config/memcg_dirty/<id>/);
 *  - domain_dirty_limits() is redirected livepatch-style (ftrace IPMODIFY):
 *    for a memcg domain whose cgroup or an ancestor has a dirty limit, the
 *    handler computes thresh and bg_thresh from the knobs (the most
 *    constraining of the cgroup and its ancestors) and counts dirty pages
 *    from fresh per-wb counters instead of the up to ~2 s stale memcg
 *    statistics, then diverts the call to an empty function; every other
 *    call runs the original unchanged;
 *  - the balance_dirty_pages tracepoint feeds per-cgroup throttle accounting.
 *
 * The hooked function takes a struct private to mm/page-writeback.c, so its
 * layout is verified against the running kernel's BTF before anything is
 * installed (layout.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/backing-dev.h>
#include <linux/cgroup.h>
#include <linux/configfs.h>
#include <linux/fs.h>
#include <linux/ftrace.h>
#include <linux/jiffies.h>
#include <linux/jump_label.h>
#include <linux/kernel.h>
#include <linux/math64.h>
#include <linux/memcontrol.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/radix-tree.h>
#include <linux/rcupdate.h>
#include <linux/sched/clock.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/writeback.h>
#include <linux/xarray.h>

#include <kmemlab/memcg_dirty.h>

#include "memcg_dirty.h"

#define CREATE_TRACE_POINTS
#include "memcg_dirty_trace.h"

#ifndef CONFIG_CGROUP_WRITEBACK
#error "memcg_dirty needs CONFIG_CGROUP_WRITEBACK"
#endif

#define MDIRTY_VERSION	"1"
#define MDIRTY_FEATURES	"dirty_bytes dirty_ratio background_bytes background_ratio hierarchy fresh_counts stat fractional_ratio"

/* test-only fault injection, see Documentation/memcg_dirty.rst */
enum mdirty_fault {
	MDIRTY_FAULT_NONE,
	MDIRTY_FAULT_STALE,		/* use the stale memcg dirty count */
	MDIRTY_FAULT_NODOMRESET,	/* no wb_domain_size_changed() */
	MDIRTY_FAULT_LAYOUT,		/* pretend the layout differs */
	MDIRTY_FAULT_PASSTHROUGH,	/* never redirect */
	MDIRTY_FAULT_EVERYONE,		/* apply a limit to every memcg */
	MDIRTY_FAULT_LAYOUT_MEMBER,	/* expect another member name */
	MDIRTY_FAULT_LAYOUT_OFFSET,	/* expect a member elsewhere */
	MDIRTY_FAULT_LAYOUT_PROTO,	/* expect another hook prototype */
	MDIRTY_FAULT_LAYOUT_PROBE,	/* expect another tracepoint prototype */
	MDIRTY_FAULT_LAYOUT_NOBTF,	/* read the BTF from a missing file */
	MDIRTY_FAULT_NOFTRACE,		/* hook a function ftrace cannot trace */
	MDIRTY_FAULT_HARSH,		/* enforce a quarter of every limit */
	MDIRTY_FAULT_CHILDAVAIL,	/* ancestor ratios of the writer's avail */
};

static const char * const mdirty_fault_names[] = {
	[MDIRTY_FAULT_NONE] = "none",
	[MDIRTY_FAULT_STALE] = "stale",
	[MDIRTY_FAULT_NODOMRESET] = "nodomreset",
	[MDIRTY_FAULT_LAYOUT] = "layout",
	[MDIRTY_FAULT_PASSTHROUGH] = "passthrough",
	[MDIRTY_FAULT_EVERYONE] = "everyone",
	[MDIRTY_FAULT_LAYOUT_MEMBER] = "layout_member",
	[MDIRTY_FAULT_LAYOUT_OFFSET] = "layout_offset",
	[MDIRTY_FAULT_LAYOUT_PROTO] = "layout_proto",
	[MDIRTY_FAULT_LAYOUT_PROBE] = "layout_probe",
	[MDIRTY_FAULT_LAYOUT_NOBTF] = "layout_nobtf",
	[MDIRTY_FAULT_NOFTRACE] = "noftrace",
	[MDIRTY_FAULT_HARSH] = "harsh",
	[MDIRTY_FAULT_CHILDAVAIL] = "childavail",
};

static char *fault = "none";
module_param(fault, charp, 0444);
MODULE_PARM_DESC(fault, "test-only fault: none, stale, nodomreset, layout, passthrough, everyone, layout_member, layout_offset, layout_proto, layout_probe, layout_nobtf, noftrace, harsh, childavail");

static enum mdirty_fault mdirty_fault;

/* benchmark-only: time every call of the ftrace handler */
static bool timing;
module_param(timing, bool, 0444);
MODULE_PARM_DESC(timing, "benchmark: count hooked calls and the handler's time (configfs timing)");

static DEFINE_STATIC_KEY_FALSE(mdirty_timing);
static atomic64_t mdirty_hook_calls;
static atomic64_t mdirty_hook_redirected;
static atomic64_t mdirty_hook_ns;

/**
 * struct mdirty_knob - the settings and accounting of one cgroup
 * @item: configfs directory /sys/kernel/config/memcg_dirty/<cgid>
 * @cgid: cgroup id (kernfs node id; never reused while the system runs)
 * @path: cgroup path when the directory was created
 * @dirty_bytes: dirty limit in bytes (0: unset); wins over @dirty_ratio
 * @bg_bytes: background limit in bytes (0: unset); wins over @bg_ratio
 * @dirty_ratio: dirty limit in basis points (1/100 %) of the cgroup's
 *	available memory (see mdirty_memcg_avail())
 * @bg_ratio: background limit in basis points of the same
 * @evals: limit computations that involved this knob
 * @binding: of those, the ones where this knob was the most constraining
 * @throttle_events: balance_dirty_pages() pauses of dirtiers at or below
 *	this cgroup
 * @pause_ns: their total pause time
 * @last_dirty: dirty pages (subtree, device of the last evaluation)
 * @last_writeback: pages under writeback (same)
 * @last_thresh: dirty threshold in pages at the last evaluation
 * @last_bg_thresh: background threshold in pages at the last evaluation
 * @last_avail: available memory in pages the ratios were taken of at the
 *	last evaluation (this cgroup's own, see mdirty_memcg_avail())
 * @rcu: the hook reads knobs under RCU
 */
struct mdirty_knob {
	struct config_item item;
	u64 cgid;
	char *path;
	u64 dirty_bytes;
	u64 bg_bytes;
	u32 dirty_ratio;
	u32 bg_ratio;
	atomic64_t evals;
	atomic64_t binding;
	atomic64_t throttle_events;
	atomic64_t pause_ns;
	unsigned long last_dirty;
	unsigned long last_writeback;
	unsigned long last_thresh;
	unsigned long last_bg_thresh;
	unsigned long last_avail;
	struct rcu_head rcu;
};

/* cgid -> knob; read locklessly by the hook */
static DEFINE_XARRAY(mdirty_knobs);
/* serialises knob changes, the limited count and the static key */
static DEFINE_MUTEX(mdirty_lock);
static unsigned int mdirty_nr_limited;
static DEFINE_STATIC_KEY_FALSE(mdirty_active);

static struct tracepoint *mdirty_tp_bdp;

static inline struct mdirty_knob *to_knob(struct config_item *item)
{
	return container_of(item, struct mdirty_knob, item);
}

static bool mdirty_has_limit(const struct mdirty_knob *k)
{
	return READ_ONCE(k->dirty_bytes) || READ_ONCE(k->dirty_ratio);
}

/* ---- the hook ----------------------------------------------------------- */

/*
 * thresh and bg_thresh in pages for @k in a domain with @avail dirtyable
 * pages; false if @k sets no dirty limit. Same clamping as upstream.
 */
static bool notrace mdirty_knob_limits(const struct mdirty_knob *k,
				       unsigned long avail,
				       unsigned long *thresh,
				       unsigned long *bg_thresh)
{
	u64 db = READ_ONCE(k->dirty_bytes), bb = READ_ONCE(k->bg_bytes);
	u32 dr = READ_ONCE(k->dirty_ratio), br = READ_ONCE(k->bg_ratio);
	u64 t, bg;

	if (db)
		t = DIV_ROUND_UP_ULL(db, PAGE_SIZE);
	else if (dr)
		t = div_u64((u64)dr * avail, MEMCG_DIRTY_RATIO_BP_MAX);
	else
		return false;

	if (bb)
		bg = DIV_ROUND_UP_ULL(bb, PAGE_SIZE);
	else if (br)
		bg = div_u64((u64)br * avail, MEMCG_DIRTY_RATIO_BP_MAX);
	else
		bg = t / 2;

	t = clamp_t(u64, t, 1, UINT_MAX);
	if (bg >= t)
		bg = t / 2;
	*thresh = t;
	*bg_thresh = bg;
	return true;
}

/* file LRU pages of @memcg itself (not its descendants): exact counts */
static unsigned long notrace mdirty_memcg_file(struct mem_cgroup *memcg)
{
	unsigned long file = 0;
	int nid, zid;

	for_each_node(nid) {
		struct mem_cgroup_per_node *mz = memcg->nodeinfo[nid];

		if (!mz)
			continue;
		for (zid = 0; zid < MAX_NR_ZONES; zid++)
			file += READ_ONCE(mz->lru_zone_size[zid][LRU_INACTIVE_FILE]) +
				READ_ONCE(mz->lru_zone_size[zid][LRU_ACTIVE_FILE]);
	}
	return file;
}

/*
 * Fresh dirty and writeback pages of the memcg subtree rooted at @root on
 * the device of @self, and with @file its file pages (all devices). The
 * central percpu_counter value is read (exact for @self when @exact, like
 * upstream's wb_dirty_limits() for a small threshold); bdi_writeback structs
 * and memcgs are RCU freed, so the lookups are safe under rcu_read_lock().
 */
static void notrace mdirty_subtree_counts(struct bdi_writeback *self,
					  struct cgroup_subsys_state *root,
					  bool exact,
					  unsigned long *dirty,
					  unsigned long *writeback,
					  unsigned long *file)
{
	struct backing_dev_info *bdi = self->bdi;
	struct cgroup_subsys_state *pos;
	s64 d = 0, w = 0;
	unsigned long f = 0;

	css_for_each_descendant_pre(pos, root) {
		struct bdi_writeback *wb;

		if (file)
			f += mdirty_memcg_file(mem_cgroup_from_css(pos));
		if (pos == self->memcg_css) {
			if (exact) {
				d += wb_stat_sum(self, WB_RECLAIMABLE);
				w += wb_stat_sum(self, WB_WRITEBACK);
			} else {
				d += wb_stat(self, WB_RECLAIMABLE);
				w += wb_stat(self, WB_WRITEBACK);
			}
			continue;
		}
		wb = radix_tree_lookup(&bdi->cgwb_tree, pos->id);
		if (!wb)
			continue;
		d += wb_stat(wb, WB_RECLAIMABLE);
		w += wb_stat(wb, WB_WRITEBACK);
	}
	*dirty = max_t(s64, d, 0);
	*writeback = max_t(s64, w, 0);
	if (file)
		*file = f;
}

/*
 * The available (dirtyable) memory of the memcg of @css, computed as
 * upstream's mdtc_calc_avail() does for the domain of that memcg: its file
 * pages plus the smaller of its headroom (min(memory.max, memory.high) -
 * usage, over it and its ancestors) and the clean file pages elsewhere in
 * the global domain (@gdtc). @file and @dirty are the subtree's file pages
 * and dirty + writeback pages (fresh, on the device being written, where
 * upstream uses the memcg statistics of all devices). Used for an ancestor's
 * ratio, so that its limit is a property of the ancestor, the same
 * whichever descendant writes.
 */
static unsigned long notrace
mdirty_memcg_avail(struct dirty_throttle_control *gdtc,
		   struct cgroup_subsys_state *css,
		   unsigned long file, unsigned long dirty)
{
	struct mem_cgroup *memcg = mem_cgroup_from_css(css), *parent;
	unsigned long clean = file - min(file, dirty);
	unsigned long global_clean = gdtc->avail - min(gdtc->avail, gdtc->dirty);
	unsigned long other_clean = global_clean - min(global_clean, clean);
	unsigned long headroom = PAGE_COUNTER_MAX;

	while ((parent = parent_mem_cgroup(memcg))) {
		unsigned long ceiling = min(READ_ONCE(memcg->memory.max),
					    READ_ONCE(memcg->memory.high));
		unsigned long used = page_counter_read(&memcg->memory);

		headroom = min(headroom, ceiling - min(ceiling, used));
		memcg = parent;
	}
	return file + min(headroom, other_clean);
}

/* whether @k's limits depend on the domain's available memory */
static bool mdirty_knob_uses_ratio(const struct mdirty_knob *k)
{
	return (!READ_ONCE(k->dirty_bytes) && READ_ONCE(k->dirty_ratio)) ||
	       (!READ_ONCE(k->bg_bytes) && READ_ONCE(k->bg_ratio));
}

/*
 * Test-only fault "everyone": a memcg domain without a limit on its path
 * gets the first configured limit anyway (the bug the isolation test must
 * catch: one cgroup's limit throttling every other cgroup).
 */
static struct mdirty_knob * notrace
mdirty_fault_everyone(struct dirty_throttle_control *dtc,
		      unsigned long *thresh, unsigned long *bg,
		      unsigned long *dirty)
{
	unsigned long idx, d, w;
	struct mdirty_knob *k;

	xa_for_each(&mdirty_knobs, idx, k) {
		if (!mdirty_knob_limits(k, dtc->avail, thresh, bg))
			continue;
		mdirty_subtree_counts(dtc->wb, dtc->wb->memcg_css,
				      *thresh < 2 * wb_stat_error(), &d, &w,
				      NULL);
		*dirty = d + w;
		return k;
	}
	return NULL;
}

/*
 * Apply the knobs of @dtc's cgroup and its ancestors. Of all cgroups on the
 * path with a dirty limit, the one whose subtree is closest to (or furthest
 * over) its threshold is used, so every limit on the path holds. Returns
 * false, leaving @dtc untouched, if none of them has a limit.
 */
static bool notrace mdirty_apply(struct dirty_throttle_control *dtc)
{
	struct bdi_writeback *wb = dtc->wb;
	struct cgroup_subsys_state *css, *pos;
	unsigned long b_thresh = 0, b_bg = 0, b_dirty = 0, b_avail = 0;
	struct mdirty_knob *b_knob = NULL;
	u64 b_full = 0;

	rcu_read_lock();
	css = wb->memcg_css;
	for (pos = css; pos; pos = pos->parent) {
		unsigned long thresh, bg, dirty, writeback, file, avail;
		struct mdirty_knob *k;
		u64 full;

		k = xa_load(&mdirty_knobs, cgroup_id(pos->cgroup));
		if (!k || !mdirty_has_limit(k))
			continue;
		if (pos != css && mdirty_knob_uses_ratio(k) &&
		    likely(mdirty_fault != MDIRTY_FAULT_CHILDAVAIL)) {
			/*
			 * An ancestor's ratio is of the ancestor's own
			 * available memory, not of the writing descendant's.
			 */
			mdirty_subtree_counts(wb, pos, true, &dirty,
					      &writeback, &file);
			avail = mdirty_memcg_avail(dtc->gdtc, pos, file,
						   dirty + writeback);
			if (!mdirty_knob_limits(k, avail, &thresh, &bg))
				continue;
		} else {
			/*
			 * The writer's own domain: upstream's avail. An
			 * ancestor's byte limits need none (0 in stat).
			 */
			avail = (pos == css ||
				 mdirty_fault == MDIRTY_FAULT_CHILDAVAIL) ?
				dtc->avail : 0;
			if (!mdirty_knob_limits(k, avail, &thresh, &bg))
				continue;
			mdirty_subtree_counts(wb, pos,
					      thresh < 2 * wb_stat_error(),
					      &dirty, &writeback, NULL);
		}
		if (unlikely(mdirty_fault == MDIRTY_FAULT_STALE) && pos == css) {
			/* the memcg statistics upstream uses (may be stale) */
			dirty = dtc->dirty;
			writeback = 0;
		}
		atomic64_inc(&k->evals);
		WRITE_ONCE(k->last_dirty, dirty);
		WRITE_ONCE(k->last_writeback, writeback);
		WRITE_ONCE(k->last_thresh, thresh);
		WRITE_ONCE(k->last_bg_thresh, bg);
		WRITE_ONCE(k->last_avail, avail);

		full = div64_u64((u64)(dirty + writeback) << 16, thresh);
		if (!b_knob || full > b_full) {
			b_knob = k;
			b_full = full;
			b_thresh = thresh;
			b_bg = bg;
			b_dirty = dirty + writeback;
			b_avail = avail;
		}
	}
	if (unlikely(mdirty_fault == MDIRTY_FAULT_EVERYONE) && !b_knob)
		b_knob = mdirty_fault_everyone(dtc, &b_thresh, &b_bg, &b_dirty);
	if (unlikely(mdirty_fault == MDIRTY_FAULT_EVERYONE) && b_knob &&
	    !b_avail)
		b_avail = dtc->avail;
	if (b_knob) {
		/* test-only: throttle far too hard (the lower bounds' check) */
		if (unlikely(mdirty_fault == MDIRTY_FAULT_HARSH)) {
			b_thresh = max(b_thresh / 4, 1UL);
			b_bg /= 4;
		}
		atomic64_inc(&b_knob->binding);
		/*
		 * The domain is compared with dirty + writeback here even
		 * on the background path (upstream compares dirty only
		 * there): background writeback keeps going while the
		 * cgroup is above its background threshold in total.
		 */
		dtc->dirty = b_dirty;
		dtc->thresh = b_thresh;
		dtc->bg_thresh = b_bg;
		trace_memcg_dirty_limits(cgroup_id(css->cgroup), b_knob->cgid,
					 b_dirty, b_thresh, b_bg, b_avail);
	}
	rcu_read_unlock();
	return b_knob;
}

/*
 * The redirect target: replaces domain_dirty_limits() for calls whose
 * limits mdirty_ftrace_handler() already computed.
 */
static noinline void notrace
mdirty_limits_done(struct dirty_throttle_control *dtc)
{
	barrier();
}

static void notrace mdirty_ftrace_handler(unsigned long ip,
					  unsigned long parent_ip,
					  struct ftrace_ops *ops,
					  struct ftrace_regs *fregs)
{
	const unsigned long mdirty_done_ip = (unsigned long)mdirty_limits_done;
	struct dirty_throttle_control *dtc;
	bool redirected = false;
	u64 t0 = 0;
	int bit;

	if (static_branch_unlikely(&mdirty_timing))
		t0 = local_clock();

	/* cheap exit for every call while no cgroup has a limit */
	if (!static_branch_unlikely(&mdirty_active))
		goto out;

	bit = ftrace_test_recursion_trylock(ip, parent_ip);
	if (bit < 0)
		goto out;

	dtc = (struct dirty_throttle_control *)
		ftrace_regs_get_argument(fregs, 0);
	/* gdtc is set only for memcg domains; the global one stays upstream */
	if (dtc && dtc->gdtc && dtc->wb &&
	    likely(mdirty_fault != MDIRTY_FAULT_PASSTHROUGH) &&
	    mdirty_apply(dtc)) {
		ftrace_regs_set_instruction_pointer(fregs, mdirty_done_ip);
		redirected = true;
	}

	ftrace_test_recursion_unlock(bit);
out:
	if (static_branch_unlikely(&mdirty_timing)) {
		atomic64_add(local_clock() - t0, &mdirty_hook_ns);
		atomic64_inc(&mdirty_hook_calls);
		if (redirected)
			atomic64_inc(&mdirty_hook_redirected);
	}
}

static struct ftrace_ops mdirty_ftrace_ops = {
	.func = mdirty_ftrace_handler,
	.flags = FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_PERMANENT
#ifndef CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS
		 | FTRACE_OPS_FL_SAVE_REGS
#endif
	,
};

/* ---- throttle accounting (balance_dirty_pages tracepoint) ------------- */

static void notrace mdirty_probe_bdp(void *data, struct bdi_writeback *wb,
				     unsigned long thresh,
				     unsigned long bg_thresh,
				     unsigned long dirty,
				     unsigned long bdi_thresh,
				     unsigned long bdi_dirty,
				     unsigned long dirty_ratelimit,
				     unsigned long task_ratelimit,
				     unsigned long dirtied,
				     unsigned long period,
				     long pause, unsigned long start_time)
{
	struct cgroup_subsys_state *pos;
	bool any = false;
	u64 ns;

	/* the tracepoint also fires with pause <= 0 when nobody sleeps */
	if (pause <= 0 || !static_branch_unlikely(&mdirty_active))
		return;

	ns = (u64)jiffies_to_usecs(pause) * NSEC_PER_USEC;
	rcu_read_lock();
	for (pos = wb->memcg_css; pos; pos = pos->parent) {
		struct mdirty_knob *k;

		k = xa_load(&mdirty_knobs, cgroup_id(pos->cgroup));
		if (!k)
			continue;
		atomic64_inc(&k->throttle_events);
		atomic64_add(ns, &k->pause_ns);
		any = true;
	}
	if (any)
		trace_memcg_dirty_throttle(cgroup_id(wb->memcg_css->cgroup),
					   pause, period, dirty, thresh);
	rcu_read_unlock();
}

/* the prototype layout.c checks against btf_trace_balance_dirty_pages */
static_assert(__same_type(&mdirty_probe_bdp, mdirty_bdp_probe_t));

static void mdirty_find_tp(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "balance_dirty_pages"))
		*(struct tracepoint **)priv = tp;
}

/* ---- knob changes ------------------------------------------------------- */

/*
 * Reset the dirty limit history of the memcg domains of @k's cgroup and its
 * descendants, so that a lowered limit is followed at once instead of by
 * 1/32 per 200 ms (what upstream does on memory.max/high writes).
 */
static void mdirty_domains_changed(struct mdirty_knob *k)
{
	struct cgroup_subsys_state *css, *pos;
	struct cgroup *cgrp;

	if (mdirty_fault == MDIRTY_FAULT_NODOMRESET)
		return;
	cgrp = cgroup_get_from_id(k->cgid);
	if (IS_ERR(cgrp))
		return;
	rcu_read_lock();
	css = rcu_dereference(cgrp->subsys[memory_cgrp_id]);
	if (css) {
		css_for_each_descendant_pre(pos, css)
			wb_domain_size_changed(&mem_cgroup_from_css(pos)->cgwb_domain);
	}
	rcu_read_unlock();
	cgroup_put(cgrp);
}

/* called with mdirty_lock held whenever a knob gains or loses a limit */
static void mdirty_limited_update(bool was, bool now)
{
	lockdep_assert_held(&mdirty_lock);
	if (was == now)
		return;
	if (now) {
		if (!mdirty_nr_limited++)
			static_branch_enable(&mdirty_active);
	} else {
		if (!--mdirty_nr_limited)
			static_branch_disable(&mdirty_active);
	}
}

static bool mdirty_cgroup_alive(u64 cgid)
{
	struct cgroup *cgrp = cgroup_get_from_id(cgid);

	if (IS_ERR(cgrp))
		return false;
	cgroup_put(cgrp);
	return true;
}

enum mdirty_field {
	MDIRTY_DIRTY_BYTES,
	MDIRTY_DIRTY_RATIO,
	MDIRTY_BG_BYTES,
	MDIRTY_BG_RATIO,
};

struct mdirty_limits {
	u64 db, bb;
	u32 dr, br;
};

/**
 * mdirty_parse_ratio() - parse a percentage with up to two decimals
 * @buf: "5", "0.25", "12.5", with an optional trailing newline
 * @bp: the value in basis points (1/100 of a percent)
 *
 * Return: 0, -EINVAL for anything else (a sign, a '%', no digit before or
 * after the point, a third decimal), -ERANGE above 100%.
 */
static int mdirty_parse_ratio(const char *buf, u32 *bp)
{
	const char *p = buf;
	u32 ip = 0, frac = 0;
	int ndig = 0, ndec = 0;
	bool big = false;

	for (; *p >= '0' && *p <= '9'; p++, ndig++) {
		if (ip > 100)
			big = true;	/* keep checking the syntax */
		else
			ip = ip * 10 + (*p - '0');
	}
	if (!ndig)
		return -EINVAL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, ndec++) {
			if (ndec == MEMCG_DIRTY_RATIO_DECIMALS)
				return -EINVAL;
			frac = frac * 10 + (*p - '0');
		}
		if (!ndec)
			return -EINVAL;
		if (ndec == 1)
			frac *= 10;
	}
	if (*p == '\n')
		p++;
	if (*p)
		return -EINVAL;
	if (big || ip * MEMCG_DIRTY_BP_PER_PCT + frac > MEMCG_DIRTY_RATIO_BP_MAX)
		return -ERANGE;
	*bp = ip * MEMCG_DIRTY_BP_PER_PCT + frac;
	return 0;
}

/*
 * Validate and apply one knob write. Bytes win over ratio: setting one
 * clears the other, as with vm.dirty_bytes/vm.dirty_ratio. Nothing changes
 * on error.
 */
static ssize_t mdirty_store(struct mdirty_knob *k, enum mdirty_field f,
			    const char *page, size_t count)
{
	struct mdirty_limits l;
	bool was;
	u32 bp;
	u64 v;
	int ret;

	switch (f) {
	case MDIRTY_DIRTY_BYTES:
	case MDIRTY_BG_BYTES:
		ret = kstrtou64(page, 10, &v);
		if (ret)
			return ret;
		/* vm.dirty_bytes has the same minimum of two pages */
		if (v && v < MEMCG_DIRTY_MIN_PAGES * PAGE_SIZE)
			return -EINVAL;
		/* the throttle works with 32-bit page counts */
		if (v > (u64)UINT_MAX * PAGE_SIZE)
			return -ERANGE;
		break;
	case MDIRTY_DIRTY_RATIO:
	case MDIRTY_BG_RATIO:
		ret = mdirty_parse_ratio(page, &bp);
		if (ret)
			return ret;
		v = bp;
		break;
	}

	mutex_lock(&mdirty_lock);
	if (!mdirty_cgroup_alive(k->cgid)) {
		ret = -ENOENT;
		goto out;
	}
	l.db = k->dirty_bytes;
	l.dr = k->dirty_ratio;
	l.bb = k->bg_bytes;
	l.br = k->bg_ratio;
	switch (f) {
	case MDIRTY_DIRTY_BYTES:
		l.db = v;
		if (v)
			l.dr = 0;
		break;
	case MDIRTY_DIRTY_RATIO:
		l.dr = v;
		if (v)
			l.db = 0;
		break;
	case MDIRTY_BG_BYTES:
		l.bb = v;
		if (v)
			l.br = 0;
		break;
	case MDIRTY_BG_RATIO:
		l.br = v;
		if (v)
			l.bb = 0;
		break;
	}
	/* contradictions: a background limit needs a dirty limit under it */
	if ((l.bb || l.br) && !l.db && !l.dr) {
		ret = -EINVAL;
		goto out;
	}
	if ((l.db && l.bb && l.bb >= l.db) || (l.dr && l.br && l.br >= l.dr)) {
		ret = -EINVAL;
		goto out;
	}

	was = mdirty_has_limit(k);
	/* bytes first: they win over ratios if the hook sees a mix */
	WRITE_ONCE(k->dirty_bytes, l.db);
	WRITE_ONCE(k->bg_bytes, l.bb);
	WRITE_ONCE(k->dirty_ratio, l.dr);
	WRITE_ONCE(k->bg_ratio, l.br);
	mdirty_limited_update(was, mdirty_has_limit(k));
	mdirty_domains_changed(k);
	ret = count;
out:
	mutex_unlock(&mdirty_lock);
	return ret;
}

/* ---- configfs ------------------------------------------------------------ */

static ssize_t mdirty_emit_u64(char *page, u64 v)
{
	return sysfs_emit(page, "%llu\n", v);
}

/* a ratio in basis points as the shortest percentage: 5, 0.25, 12.5 */
static ssize_t mdirty_emit_ratio(char *page, u32 bp)
{
	u32 ip = bp / MEMCG_DIRTY_BP_PER_PCT, frac = bp % MEMCG_DIRTY_BP_PER_PCT;

	if (!frac)
		return sysfs_emit(page, "%u\n", ip);
	if (!(frac % 10))
		return sysfs_emit(page, "%u.%u\n", ip, frac / 10);
	return sysfs_emit(page, "%u.%02u\n", ip, frac);
}

#define MDIRTY_ATTR(_name, _field, _get, _emit)				\
static ssize_t mdirty_knob_##_name##_show(struct config_item *item,	\
					  char *page)			\
{									\
	return _emit(page, _get(to_knob(item)));			\
}									\
static ssize_t mdirty_knob_##_name##_store(struct config_item *item,	\
					   const char *page,		\
					   size_t count)		\
{									\
	return mdirty_store(to_knob(item), _field, page, count);	\
}									\
CONFIGFS_ATTR(mdirty_knob_, _name)
#define MDIRTY_KNOB_ATTR(_name, _field, _get)				\
	MDIRTY_ATTR(_name, _field, _get, mdirty_emit_u64)
#define MDIRTY_RATIO_ATTR(_name, _field, _get)				\
	MDIRTY_ATTR(_name, _field, _get, mdirty_emit_ratio)

static u64 mdirty_get_db(struct mdirty_knob *k) { return READ_ONCE(k->dirty_bytes); }
static u64 mdirty_get_bb(struct mdirty_knob *k) { return READ_ONCE(k->bg_bytes); }
static u32 mdirty_get_dr(struct mdirty_knob *k) { return READ_ONCE(k->dirty_ratio); }
static u32 mdirty_get_br(struct mdirty_knob *k) { return READ_ONCE(k->bg_ratio); }

MDIRTY_KNOB_ATTR(dirty_bytes, MDIRTY_DIRTY_BYTES, mdirty_get_db);
MDIRTY_RATIO_ATTR(dirty_ratio, MDIRTY_DIRTY_RATIO, mdirty_get_dr);
MDIRTY_KNOB_ATTR(background_bytes, MDIRTY_BG_BYTES, mdirty_get_bb);
MDIRTY_RATIO_ATTR(background_ratio, MDIRTY_BG_RATIO, mdirty_get_br);

static ssize_t mdirty_knob_path_show(struct config_item *item, char *page)
{
	struct mdirty_knob *k = to_knob(item);
	struct cgroup *cgrp = cgroup_get_from_id(k->cgid);
	int ret;

	if (IS_ERR(cgrp))
		return sysfs_emit(page, "%s\n", k->path);
	/* the current path: the cgroup may have been renamed */
	ret = cgroup_path(cgrp, page, PAGE_SIZE - 1);
	cgroup_put(cgrp);
	if (ret < 0 || ret >= PAGE_SIZE - 1)
		return sysfs_emit(page, "%s\n", k->path);
	return strlen(strcat(page, "\n"));
}
CONFIGFS_ATTR_RO(mdirty_knob_, path);

static ssize_t mdirty_knob_state_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%s\n", mdirty_cgroup_alive(to_knob(item)->cgid) ?
			  "live" : "removed");
}
CONFIGFS_ATTR_RO(mdirty_knob_, state);

static ssize_t mdirty_knob_stat_show(struct config_item *item, char *page)
{
	struct mdirty_knob *k = to_knob(item);

	return sysfs_emit(page,
			  "cgroup_id %llu\n"
			  "live %d\n"
			  "effective_dirty_bytes %llu\n"
			  "effective_background_bytes %llu\n"
			  "dirty %llu\n"
			  "writeback %llu\n"
			  "avail %llu\n"
			  "evaluations %lld\n"
			  "binding %lld\n"
			  "throttle_events %lld\n"
			  "pause_ns %lld\n",
			  k->cgid, mdirty_cgroup_alive(k->cgid),
			  (u64)READ_ONCE(k->last_thresh) << PAGE_SHIFT,
			  (u64)READ_ONCE(k->last_bg_thresh) << PAGE_SHIFT,
			  (u64)READ_ONCE(k->last_dirty) << PAGE_SHIFT,
			  (u64)READ_ONCE(k->last_writeback) << PAGE_SHIFT,
			  (u64)READ_ONCE(k->last_avail) << PAGE_SHIFT,
			  atomic64_read(&k->evals),
			  atomic64_read(&k->binding),
			  atomic64_read(&k->throttle_events),
			  atomic64_read(&k->pause_ns));
}
CONFIGFS_ATTR_RO(mdirty_knob_, stat);

static struct configfs_attribute *mdirty_knob_attrs[] = {
	&mdirty_knob_attr_dirty_bytes,
	&mdirty_knob_attr_dirty_ratio,
	&mdirty_knob_attr_background_bytes,
	&mdirty_knob_attr_background_ratio,
	&mdirty_knob_attr_path,
	&mdirty_knob_attr_state,
	&mdirty_knob_attr_stat,
	NULL,
};

static void mdirty_knob_free(struct rcu_head *rcu)
{
	struct mdirty_knob *k = container_of(rcu, struct mdirty_knob, rcu);

	kfree(k->path);
	kfree(k);
}

static void mdirty_knob_release(struct config_item *item)
{
	/* already out of the xarray (drop_item); readers may still hold it */
	call_rcu(&to_knob(item)->rcu, mdirty_knob_free);
}

static struct configfs_item_operations mdirty_knob_item_ops = {
	.release = mdirty_knob_release,
};

static const struct config_item_type mdirty_knob_type = {
	.ct_item_ops = &mdirty_knob_item_ops,
	.ct_attrs = mdirty_knob_attrs,
	.ct_owner = THIS_MODULE,
};

/*
 * mkdir /sys/kernel/config/memcg_dirty/<cgroup id>: the id is the inode
 * number of the cgroup v2 directory (stat -c %i, name_to_handle_at). A
 * cgroup that is removed and recreated gets a new id, so its old directory
 * keeps reporting state "removed" and has no effect until it is removed.
 */
static struct config_item *mdirty_make_item(struct config_group *group,
					    const char *name)
{
	struct cgroup_subsys_state *css;
	struct mdirty_knob *k;
	struct cgroup *cgrp;
	char canon[24];
	u64 cgid;
	int ret;

	/* decimal, canonical: "0123" and "123" must not be two knobs */
	if (kstrtou64(name, 10, &cgid) || !cgid)
		return ERR_PTR(-EINVAL);
	snprintf(canon, sizeof(canon), "%llu", cgid);
	if (strcmp(canon, name))
		return ERR_PTR(-EINVAL);

	cgrp = cgroup_get_from_id(cgid);
	if (IS_ERR(cgrp))
		return ERR_CAST(cgrp);	/* -ENOENT: no such cgroup */

	/* the root cgroup has no memcg writeback domain: use vm.dirty_* */
	if (!cgroup_parent(cgrp)) {
		ret = -EPERM;
		goto err_put;
	}
	/* the memory controller must be enabled in the parent */
	rcu_read_lock();
	css = rcu_dereference(cgrp->subsys[memory_cgrp_id]);
	rcu_read_unlock();
	if (!css) {
		ret = -ENODEV;
		goto err_put;
	}

	k = kzalloc(sizeof(*k), GFP_KERNEL);
	if (!k) {
		ret = -ENOMEM;
		goto err_put;
	}
	k->cgid = cgid;
	k->path = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!k->path) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = cgroup_path(cgrp, k->path, PATH_MAX);
	if (ret < 0)
		goto err_free_path;
	config_item_init_type_name(&k->item, name, &mdirty_knob_type);

	mutex_lock(&mdirty_lock);
	ret = xa_insert(&mdirty_knobs, cgid, k, GFP_KERNEL);
	mutex_unlock(&mdirty_lock);
	if (ret)
		goto err_free_path;
	cgroup_put(cgrp);
	return &k->item;

err_free_path:
	kfree(k->path);
err_free:
	kfree(k);
err_put:
	cgroup_put(cgrp);
	return ERR_PTR(ret);
}

static void mdirty_drop_item(struct config_group *group,
			     struct config_item *item)
{
	struct mdirty_knob *k = to_knob(item);

	mutex_lock(&mdirty_lock);
	xa_erase(&mdirty_knobs, k->cgid);
	mdirty_limited_update(mdirty_has_limit(k), false);
	/* the domain goes back to upstream limits: restart its history */
	mdirty_domains_changed(k);
	mutex_unlock(&mdirty_lock);
	config_item_put(item);
}

static ssize_t mdirty_root_features_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%s\n", MDIRTY_FEATURES);
}
CONFIGFS_ATTR_RO(mdirty_root_, features);

static ssize_t mdirty_root_version_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%s\n", MDIRTY_VERSION);
}
CONFIGFS_ATTR_RO(mdirty_root_, version);

static ssize_t mdirty_root_fault_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%s\n", mdirty_fault_names[mdirty_fault]);
}
CONFIGFS_ATTR_RO(mdirty_root_, fault);

/* with timing=1: calls of the handler, of those redirected, total time */
static ssize_t mdirty_root_timing_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "enabled %d\ncalls %lld\nredirected %lld\nns %lld\n",
			  static_key_enabled(&mdirty_timing),
			  atomic64_read(&mdirty_hook_calls),
			  atomic64_read(&mdirty_hook_redirected),
			  atomic64_read(&mdirty_hook_ns));
}

/* any write resets the counters */
static ssize_t mdirty_root_timing_store(struct config_item *item,
					const char *page, size_t count)
{
	atomic64_set(&mdirty_hook_calls, 0);
	atomic64_set(&mdirty_hook_redirected, 0);
	atomic64_set(&mdirty_hook_ns, 0);
	return count;
}
CONFIGFS_ATTR(mdirty_root_, timing);

static struct configfs_attribute *mdirty_root_attrs[] = {
	&mdirty_root_attr_features,
	&mdirty_root_attr_version,
	&mdirty_root_attr_fault,
	&mdirty_root_attr_timing,
	NULL,
};

static struct configfs_group_operations mdirty_root_group_ops = {
	.make_item = mdirty_make_item,
	.drop_item = mdirty_drop_item,
};

static const struct config_item_type mdirty_root_type = {
	.ct_group_ops = &mdirty_root_group_ops,
	.ct_attrs = mdirty_root_attrs,
	.ct_owner = THIS_MODULE,
};

static struct configfs_subsystem mdirty_subsys = {
	.su_group = {
		.cg_item = {
			.ci_namebuf = "memcg_dirty",
			.ci_type = &mdirty_root_type,
		},
	},
};

/* ---- load and unload ---------------------------------------------------- */

static int __init mdirty_parse_fault(void)
{
	int i = sysfs_match_string(mdirty_fault_names, fault);

	if (i < 0) {
		pr_err("unknown fault '%s' (none, stale, nodomreset, layout, passthrough, everyone, layout_member, layout_offset, layout_proto, layout_probe, layout_nobtf, noftrace, harsh, childavail)\n",
		       fault);
		return -EINVAL;
	}
	mdirty_fault = i;
	if (mdirty_fault != MDIRTY_FAULT_NONE)
		pr_warn("test-only fault '%s' active\n", fault);
	return 0;
}

/* ftrace_set_filter() takes a writable buffer: the names are copied */
#define MDIRTY_NOFTRACE_FUNC	"mdirty_limits_done"

static enum mdirty_layout_fault __init mdirty_layout_fault(void)
{
	switch (mdirty_fault) {
	case MDIRTY_FAULT_LAYOUT:
		return MDIRTY_LF_SIZE;
	case MDIRTY_FAULT_LAYOUT_MEMBER:
		return MDIRTY_LF_MEMBER;
	case MDIRTY_FAULT_LAYOUT_OFFSET:
		return MDIRTY_LF_OFFSET;
	case MDIRTY_FAULT_LAYOUT_PROTO:
		return MDIRTY_LF_PROTO;
	case MDIRTY_FAULT_LAYOUT_PROBE:
		return MDIRTY_LF_PROBE;
	case MDIRTY_FAULT_LAYOUT_NOBTF:
		return MDIRTY_LF_NOBTF;
	default:
		return MDIRTY_LF_NONE;
	}
}

/*
 * register_ftrace_function() refuses a FTRACE_OPS_FL_PERMANENT ops with
 * -EBUSY while sysctl kernel.ftrace_enabled is 0, the same error as for an
 * IPMODIFY conflict. ftrace_enabled is not exported: read the sysctl.
 */
static bool __init mdirty_ftrace_disabled(void)
{
	struct file *file;
	char buf[4] = "";
	loff_t pos = 0;
	ssize_t n;

	file = filp_open("/proc/sys/kernel/ftrace_enabled", O_RDONLY, 0);
	if (IS_ERR(file))
		return false;
	n = kernel_read(file, buf, sizeof(buf) - 1, &pos);
	filp_close(file, NULL);
	return n > 0 && buf[0] == '0';
}

static int __init mdirty_init(void)
{
	static char hook_func[] = MDIRTY_HOOK_FUNC;
	/* test-only fault noftrace: a real function without an ftrace site */
	static char mdirty_noftrace_func[] = MDIRTY_NOFTRACE_FUNC;
	char *func = hook_func;
	int ret;

	ret = mdirty_parse_fault();
	if (ret)
		return ret;
	if (timing)
		static_branch_enable(&mdirty_timing);

	/* cgroup writeback needs memory and io on the v2 hierarchy */
	if (mem_cgroup_disabled() || !cgroup_subsys_on_dfl(memory_cgrp_subsys) ||
	    !cgroup_subsys_on_dfl(io_cgrp_subsys)) {
		pr_err("no cgroup writeback: the memory and io controllers must be on cgroup v2 (not cgroup_disable=memory, not bound to a v1 hierarchy); refusing to load\n");
		return -EOPNOTSUPP;
	}

	ret = mdirty_verify_layout(mdirty_layout_fault());
	if (ret)
		return ret;

	for_each_kernel_tracepoint(mdirty_find_tp, &mdirty_tp_bdp);
	if (!mdirty_tp_bdp) {
		pr_err("tracepoint writeback:balance_dirty_pages not found; refusing to load\n");
		return -ENOENT;
	}

	ret = tracepoint_probe_register(mdirty_tp_bdp, mdirty_probe_bdp, NULL);
	if (ret) {
		pr_err("cannot attach to tracepoint balance_dirty_pages (%d)\n",
		       ret);
		return ret;
	}

	if (mdirty_fault == MDIRTY_FAULT_NOFTRACE)
		func = mdirty_noftrace_func;
	ret = ftrace_set_filter(&mdirty_ftrace_ops, func, strlen(func), 1);
	if (ret) {
		pr_err("cannot trace %s (%d): not an ftrace location in this kernel; refusing to load\n",
		       func, ret);
		goto err_free_filter;
	}
	ret = register_ftrace_function(&mdirty_ftrace_ops);
	if (ret == -EBUSY && mdirty_ftrace_disabled()) {
		pr_err("cannot register the ftrace redirect of %s (%d): function tracing is disabled (sysctl kernel.ftrace_enabled = 0), and the redirect must stay in force (FTRACE_OPS_FL_PERMANENT): set kernel.ftrace_enabled=1 first; refusing to load\n",
		       func, ret);
		goto err_free_filter;
	} else if (ret == -EBUSY) {
		pr_err("%s is already redirected by another IPMODIFY ftrace user (a livepatch of it, or a kprobe with a post_handler): remove that first; refusing to load\n",
		       func);
		goto err_free_filter;
	} else if (ret) {
		pr_err("cannot register the ftrace redirect of %s (%d); refusing to load\n",
		       func, ret);
		goto err_free_filter;
	}

	/*
	 * configfs last: once it is registered, knob directories can be
	 * made, and they hold item types in this module's memory, so no step
	 * after it may fail. The hook and the probe are inert until a knob
	 * sets a limit (mdirty_active).
	 */
	config_group_init(&mdirty_subsys.su_group);
	mutex_init(&mdirty_subsys.su_mutex);
	ret = configfs_register_subsystem(&mdirty_subsys);
	if (ret) {
		pr_err("cannot register configfs subsystem (%d): is configfs available?\n",
		       ret);
		goto err_ftrace;
	}

	pr_info("loaded: per-cgroup dirty limits in /sys/kernel/config/memcg_dirty\n");
	return 0;

err_ftrace:
	unregister_ftrace_function(&mdirty_ftrace_ops);
	synchronize_rcu_tasks();
err_free_filter:
	ftrace_free_filter(&mdirty_ftrace_ops);
	tracepoint_probe_unregister(mdirty_tp_bdp, mdirty_probe_bdp, NULL);
	tracepoint_synchronize_unregister();
	return ret;
}

static void __exit mdirty_exit(void)
{
	/*
	 * Every knob directory holds a module reference, so no knob is left
	 * and the static key is off: the handler returns at once. After
	 * unregistering, ftrace waits until no task runs the handler or the
	 * redirect target (RCU tasks).
	 */
	unregister_ftrace_function(&mdirty_ftrace_ops);
	ftrace_free_filter(&mdirty_ftrace_ops);
	synchronize_rcu_tasks();
	tracepoint_probe_unregister(mdirty_tp_bdp, mdirty_probe_bdp, NULL);
	tracepoint_synchronize_unregister();
	configfs_unregister_subsystem(&mdirty_subsys);
	/* knobs are freed by call_rcu */
	rcu_barrier();
	if (!xa_empty(&mdirty_knobs))
		pr_err("knobs left at unload\n");
	xa_destroy(&mdirty_knobs);
	pr_info("unloaded\n");
}

module_init(mdirty_init);
module_exit(mdirty_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kmemlab");
MODULE_DESCRIPTION("per-cgroup dirty limits for cgroup v2 writeback");
MODULE_VERSION(MDIRTY_VERSION);
