// SPDX-License-Identifier: GPL-2.0
/*
 * memcg_dirty - verify the private struct layout the hook depends on.
 *
 * domain_dirty_limits() takes a struct dirty_throttle_control, which is
 * private to mm/page-writeback.c and changes between kernel versions. The
 * running kernel describes it in its BTF (/sys/kernel/btf/vmlinux); the
 * module reads that blob once at load time and refuses to install the hook
 * unless the function exists with the expected prototype and every member
 * of the struct has the name and offset of the copy in memcg_dirty.h.
 *
 * Only data is read here: no kernel function is looked up or called by
 * address.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/btf.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "memcg_dirty.h"

#define MDIRTY_BTF_PATH		"/sys/kernel/btf/vmlinux"
#define MDIRTY_BTF_MAX		(64 << 20)

struct mdirty_btf {
	const u8 *types;	/* start of the type section */
	u32 types_len;
	const char *strs;
	u32 strs_len;
	u32 *off;		/* off[id] = offset of type @id in @types */
	u32 nr;			/* number of types + 1 (id 0 is void) */
};

struct mdirty_member {
	const char *name;
	size_t offset;
};

#define MEMBER(m) { #m, offsetof(struct dirty_throttle_control, m) }
static const struct mdirty_member mdirty_members[] = {
	MEMBER(dom), MEMBER(gdtc), MEMBER(wb), MEMBER(wb_completions),
	MEMBER(avail), MEMBER(dirty), MEMBER(thresh), MEMBER(bg_thresh),
	MEMBER(wb_dirty), MEMBER(wb_thresh), MEMBER(wb_bg_thresh),
	MEMBER(pos_ratio), MEMBER(freerun), MEMBER(dirty_exceeded),
};

#undef MEMBER

static const char *mdirty_btf_str(const struct mdirty_btf *b, u32 off)
{
	if (off >= b->strs_len)
		return NULL;
	/* the string section is NUL terminated (checked at load) */
	return b->strs + off;
}

/* size of the kind-specific data following a struct btf_type */
static long mdirty_btf_extra(const struct btf_type *t)
{
	u32 vlen = BTF_INFO_VLEN(t->info);

	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_INT:
	case BTF_KIND_VAR:
	case BTF_KIND_DECL_TAG:
		return 4;
	case BTF_KIND_PTR:
	case BTF_KIND_FWD:
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_FUNC:
	case BTF_KIND_FLOAT:
	case BTF_KIND_TYPE_TAG:
		return 0;
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return (long)vlen * sizeof(struct btf_member);
	case BTF_KIND_ENUM:
		return (long)vlen * sizeof(struct btf_enum);
	case BTF_KIND_FUNC_PROTO:
		return (long)vlen * sizeof(struct btf_param);
	case BTF_KIND_DATASEC:
		return (long)vlen * sizeof(struct btf_var_secinfo);
	case BTF_KIND_ENUM64:
		return (long)vlen * sizeof(struct btf_enum64);
	default:
		return -1;
	}
}

static const struct btf_type *mdirty_btf_type(const struct mdirty_btf *b,
					      u32 id)
{
	if (!id || id >= b->nr)
		return NULL;
	return (const struct btf_type *)(b->types + b->off[id]);
}

static int mdirty_btf_index(struct mdirty_btf *b)
{
	u32 pos = 0, nr = 1, cap = 1024;
	u32 *off;

	off = kvmalloc_array(cap, sizeof(*off), GFP_KERNEL);
	if (!off)
		return -ENOMEM;
	off[0] = 0;
	while (pos < b->types_len) {
		const struct btf_type *t;
		long extra;

		if (b->types_len - pos < sizeof(*t))
			goto bad;
		t = (const struct btf_type *)(b->types + pos);
		extra = mdirty_btf_extra(t);
		if (extra < 0 || b->types_len - pos - sizeof(*t) < extra)
			goto bad;
		if (nr == cap) {
			u32 *n;

			cap *= 2;
			n = kvrealloc(off, cap * sizeof(*off), GFP_KERNEL);
			if (!n) {
				kvfree(off);
				return -ENOMEM;
			}
			off = n;
		}
		off[nr++] = pos;
		pos += sizeof(*t) + extra;
	}
	b->off = off;
	b->nr = nr;
	return 0;
bad:
	kvfree(off);
	pr_err("%s: malformed type section at offset %u\n", MDIRTY_BTF_PATH,
	       pos);
	return -EINVAL;
}

static bool mdirty_btf_named(const struct mdirty_btf *b,
			     const struct btf_type *t, u32 kind,
			     const char *name)
{
	const char *s;

	if (BTF_INFO_KIND(t->info) != kind)
		return false;
	s = mdirty_btf_str(b, t->name_off);
	return s && !strcmp(s, name);
}

/* the struct behind pointer type @id, skipping qualifiers and typedefs */
static u32 mdirty_btf_pointee(const struct mdirty_btf *b, u32 id)
{
	const struct btf_type *t = mdirty_btf_type(b, id);
	int depth;

	if (!t || BTF_INFO_KIND(t->info) != BTF_KIND_PTR)
		return 0;
	id = t->type;
	for (depth = 0; depth < 16; depth++) {
		t = mdirty_btf_type(b, id);
		if (!t)
			return 0;
		switch (BTF_INFO_KIND(t->info)) {
		case BTF_KIND_CONST:
		case BTF_KIND_VOLATILE:
		case BTF_KIND_RESTRICT:
		case BTF_KIND_TYPEDEF:
		case BTF_KIND_TYPE_TAG:
			id = t->type;
			continue;
		default:
			return id;
		}
	}
	return 0;
}

static int mdirty_check_struct(const struct mdirty_btf *b, u32 id,
			       size_t expect_size,
			       enum mdirty_layout_fault fault)
{
	const struct btf_type *t = mdirty_btf_type(b, id);
	const struct btf_member *m = (const struct btf_member *)(t + 1);
	u32 vlen = BTF_INFO_VLEN(t->info);
	bool kflag = BTF_INFO_KFLAG(t->info);
	u32 i;

	if (t->size != expect_size) {
		pr_err("struct %s is %u bytes in the running kernel, this module was built for %zu: private layout changed, refusing to load\n",
		       MDIRTY_DTC_STRUCT, t->size, expect_size);
		return -EINVAL;
	}
	if (vlen != ARRAY_SIZE(mdirty_members)) {
		pr_err("struct %s has %u members in the running kernel, expected %zu: private layout changed, refusing to load\n",
		       MDIRTY_DTC_STRUCT, vlen, ARRAY_SIZE(mdirty_members));
		return -EINVAL;
	}
	for (i = 0; i < vlen; i++) {
		const char *name = mdirty_btf_str(b, m[i].name_off);
		u32 bits = kflag ? BTF_MEMBER_BIT_OFFSET(m[i].offset) :
				   m[i].offset;
		const char *want = mdirty_members[i].name;
		size_t want_off = mdirty_members[i].offset;

		/* test-only: expect member 5 (dirty) renamed or moved */
		if (i == 5 && fault == MDIRTY_LF_MEMBER)
			want = "nr_dirty";
		if (i == 5 && fault == MDIRTY_LF_OFFSET)
			want_off += sizeof(long);
		if (!name || strcmp(name, want) ||
		    bits != want_off * BITS_PER_BYTE) {
			pr_err("struct %s member %u is '%s' at bit %u in the running kernel, expected '%s' at bit %zu: private layout changed, refusing to load\n",
			       MDIRTY_DTC_STRUCT, i, name ? name : "?", bits,
			       want, want_off * BITS_PER_BYTE);
			return -EINVAL;
		}
	}
	return 0;
}

/* the type behind @id, skipping qualifiers and typedefs */
static const struct btf_type *mdirty_btf_resolve(const struct mdirty_btf *b,
						 u32 id)
{
	const struct btf_type *t;
	int depth;

	for (depth = 0; depth < 16; depth++) {
		t = mdirty_btf_type(b, id);
		if (!t)
			return NULL;
		switch (BTF_INFO_KIND(t->info)) {
		case BTF_KIND_CONST:
		case BTF_KIND_VOLATILE:
		case BTF_KIND_RESTRICT:
		case BTF_KIND_TYPEDEF:
		case BTF_KIND_TYPE_TAG:
			id = t->type;
			continue;
		default:
			return t;
		}
	}
	return NULL;
}

/* one argument of mdirty_bdp_probe_t (memcg_dirty.h) */
enum mdirty_arg {
	MDIRTY_ARG_VOIDP,	/* void * */
	MDIRTY_ARG_WBP,		/* struct bdi_writeback * */
	MDIRTY_ARG_ULONG,	/* unsigned long */
	MDIRTY_ARG_LONG,	/* long */
};

static const u8 mdirty_probe_args[] = {
	MDIRTY_ARG_VOIDP, MDIRTY_ARG_WBP,
	MDIRTY_ARG_ULONG, MDIRTY_ARG_ULONG, MDIRTY_ARG_ULONG,	/* thresh.. */
	MDIRTY_ARG_ULONG, MDIRTY_ARG_ULONG,	/* bdi_thresh, bdi_dirty */
	MDIRTY_ARG_ULONG, MDIRTY_ARG_ULONG,	/* the two ratelimits */
	MDIRTY_ARG_ULONG, MDIRTY_ARG_ULONG,	/* dirtied, period */
	MDIRTY_ARG_LONG, MDIRTY_ARG_ULONG,	/* pause, start_time */
};

static const char * const mdirty_arg_names[] = {
	[MDIRTY_ARG_VOIDP] = "void *",
	[MDIRTY_ARG_WBP] = "struct bdi_writeback *",
	[MDIRTY_ARG_ULONG] = "unsigned long",
	[MDIRTY_ARG_LONG] = "long",
};

static bool mdirty_arg_is(const struct mdirty_btf *b, u32 id, u8 want)
{
	const struct btf_type *t = mdirty_btf_resolve(b, id);
	u32 enc;

	if (!t)
		return false;
	switch (want) {
	case MDIRTY_ARG_VOIDP:
		return BTF_INFO_KIND(t->info) == BTF_KIND_PTR &&
		       !mdirty_btf_resolve(b, t->type);
	case MDIRTY_ARG_WBP:
		if (BTF_INFO_KIND(t->info) != BTF_KIND_PTR)
			return false;
		t = mdirty_btf_resolve(b, t->type);
		return t && mdirty_btf_named(b, t, BTF_KIND_STRUCT,
					     "bdi_writeback");
	case MDIRTY_ARG_ULONG:
	case MDIRTY_ARG_LONG:
		if (BTF_INFO_KIND(t->info) != BTF_KIND_INT ||
		    t->size != sizeof(long))
			return false;
		enc = BTF_INT_ENCODING(*(const u32 *)(t + 1));
		return !!(enc & BTF_INT_SIGNED) == (want == MDIRTY_ARG_LONG);
	}
	return false;
}

/*
 * The balance_dirty_pages tracepoint's probe prototype, typed by hand in
 * main.c (mdirty_bdp_probe_t), against the typedef the kernel's BTF has for
 * it (include/trace/bpf_probe.h: btf_trace_<event>, a pointer to the
 * probe's function prototype).
 */
static int mdirty_check_probe(const struct mdirty_btf *b, u32 tid,
			      enum mdirty_layout_fault fault)
{
	const struct btf_type *t = mdirty_btf_type(b, tid), *p;
	const struct btf_param *param;
	u32 i, vlen;

	p = mdirty_btf_resolve(b, t->type);
	if (p && BTF_INFO_KIND(p->info) == BTF_KIND_PTR)
		p = mdirty_btf_resolve(b, p->type);
	if (!p || BTF_INFO_KIND(p->info) != BTF_KIND_FUNC_PROTO || p->type) {
		pr_err("%s is not a pointer to a void function in the running kernel: cannot check the tracepoint probe, refusing to load\n",
		       MDIRTY_BDP_TYPEDEF);
		return -EINVAL;
	}
	vlen = BTF_INFO_VLEN(p->info);
	if (vlen != ARRAY_SIZE(mdirty_probe_args)) {
		pr_err("tracepoint balance_dirty_pages probe prototype differs: %u arguments in the running kernel (%s), expected %zu; refusing to load\n",
		       vlen, MDIRTY_BDP_TYPEDEF, ARRAY_SIZE(mdirty_probe_args));
		return -EINVAL;
	}
	param = (const struct btf_param *)(p + 1);
	for (i = 0; i < vlen; i++) {
		u8 want = mdirty_probe_args[i];

		/* test-only: expect pause (argument 11) unsigned */
		if (i == 11 && fault == MDIRTY_LF_PROBE)
			want = MDIRTY_ARG_ULONG;
		if (!mdirty_arg_is(b, param[i].type, want)) {
			pr_err("tracepoint balance_dirty_pages probe prototype differs: argument %u is not %s in the running kernel (%s); refusing to load\n",
			       i, mdirty_arg_names[want], MDIRTY_BDP_TYPEDEF);
			return -EINVAL;
		}
	}
	return 0;
}

static int mdirty_check(const struct mdirty_btf *b, size_t expect_size,
			enum mdirty_layout_fault fault)
{
	u32 id, sid = 0, fid = 0, tid = 0, nr_struct = 0;
	const struct btf_type *f, *p;
	const struct btf_param *param;
	bool want_void = fault != MDIRTY_LF_PROTO;
	int ret;

	for (id = 1; id < b->nr; id++) {
		const struct btf_type *t = mdirty_btf_type(b, id);

		if (mdirty_btf_named(b, t, BTF_KIND_STRUCT, MDIRTY_DTC_STRUCT)) {
			sid = id;
			nr_struct++;
		} else if (mdirty_btf_named(b, t, BTF_KIND_FUNC,
					    MDIRTY_HOOK_FUNC)) {
			fid = id;
		} else if (mdirty_btf_named(b, t, BTF_KIND_TYPEDEF,
					    MDIRTY_BDP_TYPEDEF)) {
			tid = id;
		}
	}
	if (!nr_struct) {
		pr_err("struct %s not found in the kernel BTF: cannot verify the private layout, refusing to load\n",
		       MDIRTY_DTC_STRUCT);
		return -ENOENT;
	}
	if (nr_struct > 1) {
		pr_err("%u different struct %s in the kernel BTF: cannot verify the private layout, refusing to load\n",
		       nr_struct, MDIRTY_DTC_STRUCT);
		return -EINVAL;
	}
	if (!fid) {
		pr_err("function %s not found in the kernel BTF (renamed or inlined?): refusing to load\n",
		       MDIRTY_HOOK_FUNC);
		return -ENOENT;
	}
	if (!tid) {
		pr_err("%s not found in the kernel BTF: cannot check the tracepoint probe's prototype, refusing to load\n",
		       MDIRTY_BDP_TYPEDEF);
		return -ENOENT;
	}
	f = mdirty_btf_type(b, fid);
	p = mdirty_btf_type(b, f->type);
	if (!p || BTF_INFO_KIND(p->info) != BTF_KIND_FUNC_PROTO ||
	    BTF_INFO_VLEN(p->info) != 1 || !p->type != want_void) {
		pr_err("%s does not have the prototype %s (struct %s *) in the running kernel: refusing to load\n",
		       MDIRTY_HOOK_FUNC, want_void ? "void" : "int",
		       MDIRTY_DTC_STRUCT);
		return -EINVAL;
	}
	param = (const struct btf_param *)(p + 1);
	if (mdirty_btf_pointee(b, param[0].type) != sid) {
		pr_err("%s takes something else than struct %s * in the running kernel: refusing to load\n",
		       MDIRTY_HOOK_FUNC, MDIRTY_DTC_STRUCT);
		return -EINVAL;
	}
	ret = mdirty_check_probe(b, tid, fault);
	if (ret)
		return ret;
	return mdirty_check_struct(b, sid, expect_size, fault);
}

static int mdirty_read_btf(const char *path, void **bufp, size_t *lenp)
{
	struct file *file;
	loff_t size, pos = 0;
	void *buf;
	int ret;

	file = filp_open(path, O_RDONLY, 0);
	if (IS_ERR(file)) {
		pr_err("cannot open %s (%ld): kernel BTF is needed to verify the private layout (CONFIG_DEBUG_INFO_BTF, sysfs mounted), refusing to load\n",
		       path, PTR_ERR(file));
		return PTR_ERR(file);
	}
	size = i_size_read(file_inode(file));
	if (size <= (loff_t)sizeof(struct btf_header) || size > MDIRTY_BTF_MAX) {
		pr_err("%s has an unexpected size %lld, refusing to load\n",
		       path, size);
		ret = -EINVAL;
		goto out_close;
	}
	buf = vmalloc(size);
	if (!buf) {
		ret = -ENOMEM;
		goto out_close;
	}
	while (pos < size) {
		ssize_t n = kernel_read(file, buf + pos, size - pos, &pos);

		if (n <= 0) {
			pr_err("reading %s failed (%zd), refusing to load\n",
			       path, n);
			vfree(buf);
			ret = n < 0 ? n : -EIO;
			goto out_close;
		}
	}
	*bufp = buf;
	*lenp = size;
	ret = 0;
out_close:
	filp_close(file, NULL);
	return ret;
}

/**
 * mdirty_verify_layout() - check struct dirty_throttle_control, the
 * prototype of domain_dirty_limits() and that of the balance_dirty_pages
 * tracepoint's probe against the running kernel's BTF, in one pass.
 * @fault: test-only perturbation of what is expected (MDIRTY_LF_NONE in
 *	use), so that each refusal path can be exercised on a matching kernel
 *
 * Return: 0 if the layout matches, a negative errno (after a message naming
 * the cause) otherwise.
 */
int mdirty_verify_layout(enum mdirty_layout_fault fault)
{
	const struct btf_header *hdr;
	struct mdirty_btf b = { };
	void *buf;
	size_t len;
	int ret;

	ret = mdirty_read_btf(fault == MDIRTY_LF_NOBTF ? MDIRTY_BTF_PATH ".missing" :
			      MDIRTY_BTF_PATH, &buf, &len);
	if (ret)
		return ret;
	hdr = buf;
	if (hdr->magic != BTF_MAGIC || hdr->version != BTF_VERSION ||
	    hdr->hdr_len < sizeof(*hdr) || hdr->hdr_len > len ||
	    (u64)hdr->type_off + hdr->type_len > len - hdr->hdr_len ||
	    (u64)hdr->str_off + hdr->str_len > len - hdr->hdr_len ||
	    !hdr->str_len) {
		pr_err("%s is not a BTF blob this module understands, refusing to load\n",
		       MDIRTY_BTF_PATH);
		ret = -EINVAL;
		goto out;
	}
	b.types = (const u8 *)buf + hdr->hdr_len + hdr->type_off;
	b.types_len = hdr->type_len;
	b.strs = (const char *)buf + hdr->hdr_len + hdr->str_off;
	b.strs_len = hdr->str_len;
	if (b.strs[b.strs_len - 1] != '\0') {
		pr_err("%s: string section not terminated, refusing to load\n",
		       MDIRTY_BTF_PATH);
		ret = -EINVAL;
		goto out;
	}
	ret = mdirty_btf_index(&b);
	if (ret)
		goto out;
	ret = mdirty_check(&b, sizeof(struct dirty_throttle_control) +
			   (fault == MDIRTY_LF_SIZE ? 1 : 0), fault);
	kvfree(b.off);
out:
	vfree(buf);
	return ret;
}
