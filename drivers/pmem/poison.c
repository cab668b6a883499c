// SPDX-License-Identifier: GPL-2.0
/*
 * bgpmem poison records: an rb-tree of disjoint byte ranges with O(log n)
 * lookup and no fixed cap, and the per-namespace store of injected poison
 * that survives unbind/bind.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/list.h>
#include <linux/minmax.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "bgpmem.h"

/**
 * bgp_set_prealloc() - allocate a spare node for bgp_set_add/remove
 * @gfp: allocation flags
 *
 * Return: the node or NULL.
 */
struct bgp_range *bgp_set_prealloc(gfp_t gfp)
{
	if (gfp == GFP_NOIO && bgp_fault(BGP_FAULT_NOMEM_IO))
		return NULL;
	return kmalloc(sizeof(struct bgp_range), gfp);
}

/**
 * bgp_set_first() - first range intersecting [@start, @end)
 * @set: the set
 * @start: first byte
 * @end: one past the last byte
 *
 * Ranges are disjoint and sorted, so their ends are sorted too: descend to
 * the leftmost range ending after @start. O(log n).
 *
 * Return: the range or NULL.
 */
struct bgp_range *bgp_set_first(const struct bgp_set *set, u64 start, u64 end)
{
	struct rb_node *n = set->root.rb_node;
	struct bgp_range *best = NULL;

	/* test-only bug: an O(n) walk, which lookup_scaling must catch */
	if (bgp_fault(BGP_FAULT_LINEAR_LOOKUP)) {
		for (n = rb_first(&set->root); n; n = rb_next(n)) {
			best = rb_entry(n, struct bgp_range, node);
			if (best->end > start)
				return best->start < end ? best : NULL;
		}
		return NULL;
	}
	while (n) {
		struct bgp_range *r = rb_entry(n, struct bgp_range, node);

		if (r->end > start) {
			best = r;
			n = n->rb_left;
		} else {
			n = n->rb_right;
		}
	}
	if (best && best->start < end)
		return best;
	return NULL;
}

/**
 * bgp_set_next() - the range after @r if it starts before @end
 * @r: a range
 * @end: one past the last byte of interest
 *
 * Return: the range or NULL.
 */
struct bgp_range *bgp_set_next(const struct bgp_range *r, u64 end)
{
	struct rb_node *n = rb_next(&r->node);
	struct bgp_range *next;

	if (!n)
		return NULL;
	next = rb_entry(n, struct bgp_range, node);
	return next->start < end ? next : NULL;
}

static void bgp_set_insert(struct bgp_set *set, struct bgp_range *new)
{
	struct rb_node **p = &set->root.rb_node, *parent = NULL;

	while (*p) {
		struct bgp_range *r = rb_entry(*p, struct bgp_range, node);

		parent = *p;
		if (new->start < r->start)
			p = &(*p)->rb_left;
		else
			p = &(*p)->rb_right;
	}
	rb_link_node(&new->node, parent, p);
	rb_insert_color(&new->node, &set->root);
	set->nr++;
	set->bytes += new->end - new->start;
}

static void bgp_set_erase(struct bgp_set *set, struct bgp_range *r)
{
	rb_erase(&r->node, &set->root);
	set->nr--;
	set->bytes -= r->end - r->start;
	kfree(r);
}

/**
 * bgp_set_add() - add [@start, @end), merging with touching ranges
 * @set: the set
 * @start: first byte
 * @end: one past the last byte, > @start
 * @spare: a preallocated node; consumed (set to NULL) if used
 *
 * If *@spare is NULL and a node is needed, the add is dropped with an
 * error message; callers always preallocate.
 */
void bgp_set_add(struct bgp_set *set, u64 start, u64 end,
		 struct bgp_range **spare)
{
	struct bgp_range *r, *next;

	/* the first range that ends at or after start touches or follows */
	r = bgp_set_first(set, start ? start - 1 : 0, end + 1);
	if (r && r->start <= end && r->end >= start) {
		/* grow r to cover, then swallow the ranges it now touches */
		set->bytes -= r->end - r->start;
		r->start = min(r->start, start);
		r->end = max(r->end, end);
		while ((next = bgp_set_next(r, r->end + 1))) {
			r->end = max(r->end, next->end);
			set->bytes -= next->end - next->start;
			rb_erase(&next->node, &set->root);
			set->nr--;
			kfree(next);
		}
		set->bytes += r->end - r->start;
		return;
	}
	if (!*spare) {
		pr_err("poison record dropped: no memory\n");
		return;
	}
	(*spare)->start = start;
	(*spare)->end = end;
	bgp_set_insert(set, *spare);
	*spare = NULL;
}

/**
 * bgp_set_remove() - remove [@start, @end), splitting a range if needed
 * @set: the set
 * @start: first byte
 * @end: one past the last byte
 * @spare: a preallocated node for a split; consumed if used
 */
void bgp_set_remove(struct bgp_set *set, u64 start, u64 end,
		    struct bgp_range **spare)
{
	struct bgp_range *r = bgp_set_first(set, start, end), *next;

	while (r) {
		next = bgp_set_next(r, end);
		if (r->start >= start && r->end <= end) {
			bgp_set_erase(set, r);
		} else if (r->start < start && r->end > end) {
			/* split: keep [r->start, start), add [end, r->end) */
			u64 tail = r->end;

			set->bytes -= r->end - start;
			r->end = start;
			if (*spare) {
				(*spare)->start = end;
				(*spare)->end = tail;
				bgp_set_insert(set, *spare);
				*spare = NULL;
			} else {
				pr_err("poison record split lost: no memory\n");
			}
		} else if (r->start < start) {
			set->bytes -= r->end - start;
			r->end = start;
		} else {
			set->bytes -= end - r->start;
			r->start = end;
		}
		r = next;
	}
}

/**
 * bgp_set_destroy() - free every range
 * @set: the set
 */
void bgp_set_destroy(struct bgp_set *set)
{
	struct bgp_range *r, *tmp;

	rbtree_postorder_for_each_entry_safe(r, tmp, &set->root, node)
		kfree(r);
	set->root = RB_ROOT;
	set->nr = 0;
	set->bytes = 0;
}

/* ---- per-namespace store of injected poison ------------------------- */

struct bgp_store {
	struct list_head list;
	char name[32];
	struct bgp_set set;	/* physical addresses */
};

/*
 * bgp_store_lock is taken under a device's mutex, which the bio path
 * takes: nothing allocates under it, and what allocates for it with the
 * device's mutex held does so with GFP_NOIO.
 */
static LIST_HEAD(bgp_stores);
static DEFINE_MUTEX(bgp_store_lock);

/**
 * bgp_store_get() - find or create the store of a namespace
 * @ns_name: namespace device name
 *
 * Return: the store (valid until bgp_store_exit()) or NULL on -ENOMEM.
 */
struct bgp_store *bgp_store_get(const char *ns_name)
{
	struct bgp_store *st, *new = kzalloc(sizeof(*new), GFP_KERNEL);

	mutex_lock(&bgp_store_lock);
	list_for_each_entry(st, &bgp_stores, list) {
		if (!strcmp(st->name, ns_name))
			goto out;
	}
	st = new;
	new = NULL;
	if (st) {
		strscpy(st->name, ns_name, sizeof(st->name));
		st->set.root = RB_ROOT;
		list_add(&st->list, &bgp_stores);
	}
out:
	mutex_unlock(&bgp_store_lock);
	kfree(new);
	return st;
}

/**
 * bgp_store_add() - remember injected poison
 * @st: the store
 * @phys: physical address
 * @len: bytes
 *
 * Context: may be called with a device's mutex held (GFP_NOIO).
 * Return: 0 or -ENOMEM.
 */
int bgp_store_add(struct bgp_store *st, u64 phys, u64 len)
{
	struct bgp_range *spare = bgp_set_prealloc(GFP_NOIO);

	if (!spare)
		return -ENOMEM;
	mutex_lock(&bgp_store_lock);
	bgp_set_add(&st->set, phys, phys + len, &spare);
	mutex_unlock(&bgp_store_lock);
	kfree(spare);
	return 0;
}

/**
 * bgp_store_remove() - forget cleared poison
 * @st: the store
 * @phys: physical address
 * @len: bytes
 */
void bgp_store_remove(struct bgp_store *st, u64 phys, u64 len)
{
	struct bgp_range *spare = bgp_set_prealloc(GFP_NOIO);

	mutex_lock(&bgp_store_lock);
	bgp_set_remove(&st->set, phys, phys + len, &spare);
	mutex_unlock(&bgp_store_lock);
	kfree(spare);
}

/**
 * bgp_store_for_each() - visit stored ranges intersecting a window
 * @st: the store
 * @phys: window start
 * @len: window length
 * @fn: called with each intersecting range clamped to the window; may
 *	sleep; a non-zero return stops the walk
 * @arg: passed to @fn
 *
 * Return: the first non-zero return of @fn, else 0.
 */
int bgp_store_for_each(struct bgp_store *st, u64 phys, u64 len,
		       int (*fn)(void *arg, u64 phys, u64 len), void *arg)
{
	u64 end = phys + len;
	struct bgp_range *r;
	int rc = 0;

	mutex_lock(&bgp_store_lock);
	for (r = bgp_set_first(&st->set, phys, end); r && !rc;
	     r = bgp_set_next(r, end)) {
		u64 s = max(r->start, phys), e = min(r->end, end);

		rc = fn(arg, s, e - s);
	}
	mutex_unlock(&bgp_store_lock);
	return rc;
}

/**
 * bgp_store_exit() - free every store (module unload)
 */
void bgp_store_exit(void)
{
	struct bgp_store *st, *tmp;

	mutex_lock(&bgp_store_lock);
	list_for_each_entry_safe(st, tmp, &bgp_stores, list) {
		list_del(&st->list);
		bgp_set_destroy(&st->set);
		kfree(st);
	}
	mutex_unlock(&bgp_store_lock);
}
