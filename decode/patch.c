// SPDX-License-Identifier: MIT
/*
 * The patch table (decode/patch.h): int3 over each sensitive instruction
 * the scan found, and the way back from a trap to the original bytes.
 *
 * 1. Pages by gfn in a chained hash; sites sorted by offset in each page.
 * 2. Apply: check every new site's byte first, then write them all.
 * 3. Look up by gpa; an address that is no patch is the guest's int3.
 * 4. Undo: original first bytes back, page record freed.
 * 5. Fix up a buffer read from patched pages.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decode/patch.h"

/* Item 1. */
static unsigned hash_gfn(gfn_t f)
{
	return (unsigned)((f.v * 0x9e3779b97f4a7c15ull) >> (64 - PATCH_HASH_BITS));
}

void patch_table_init(struct patch_table *t)
{
	memset(t, 0, sizeof(*t));
}

void patch_table_destroy(struct patch_table *t)
{
	for (unsigned i = 0; i < ARRAY_SIZE(t->chains); i++) {
		struct patch_page *p = t->chains[i], *n;

		for (; p; p = n) {
			n = p->next;
			free(p->sites);
			free(p);
		}
	}
	patch_table_init(t);
}

/* Item 1. The record of frame `f`, or NULL. */
static struct patch_page *find_page(const struct patch_table *t, gfn_t f)
{
	struct patch_page *p = t->chains[hash_gfn(f)];

	while (p && p->gfn.v != f.v)
		p = p->next;
	return p;
}

bool patch_page_known(const struct patch_table *t, gfn_t f)
{
	return find_page(t, f) != NULL;
}

/* Item 1. Binary search for the patch at page offset `off`. */
static const struct patch_site *find_site(const struct patch_page *p, unsigned off)
{
	unsigned lo = 0, hi = p->nsites;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (p->sites[mid].off == off)
			return &p->sites[mid];
		if (p->sites[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Item 1. A new, empty record for frame `f`, linked into its chain; NULL on ENOMEM. */
static struct patch_page *add_page(struct patch_table *t, gfn_t f, enum decode_mode mode)
{
	struct patch_page *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->gfn = f;
	p->mode = mode;
	p->next = t->chains[hash_gfn(f)];
	t->chains[hash_gfn(f)] = p;
	t->npages++;
	return p;
}

/* Item 2. Is this site of the scan one to apply now? */
static bool is_new(const struct patch_page *p, const struct scan_site *s)
{
	return !s->conflict && !(p && find_site(p, s->off));
}

/* Item 2. */
int patch_page_apply(struct patch_table *t, gfn_t f, const struct scan_result *res, u8 *copy)
{
	struct patch_page *p = find_page(t, f);
	struct patch_site *merged;
	unsigned nnew = 0, i, j, k;

	if (p && p->mode != res->mode)
		return -EINVAL;
	for (i = 0; i < res->nsites; i++) {
		const struct scan_site *s = &res->sites[i];

		if (!is_new(p, s))
			continue;
		if (copy[s->off] != s->orig[0])
			return -ESTALE;
		nnew++;
	}
	if (!nnew)
		return 0;

	/* Merge the old sites and the new ones (both sorted) into a new array. */
	merged = malloc(((p ? p->nsites : 0) + nnew) * sizeof(*merged));
	if (!merged)
		return -ENOMEM;
	if (!p && !(p = add_page(t, f, res->mode))) {
		free(merged);
		return -ENOMEM;
	}
	for (i = j = k = 0; i < p->nsites || j < res->nsites;) {
		const struct scan_site *s = j < res->nsites ? &res->sites[j] : NULL;

		if (s && !is_new(p, s)) {
			j++;
			continue;
		}
		if (i < p->nsites && (!s || p->sites[i].off < s->off)) {
			merged[k++] = p->sites[i++];
			continue;
		}
		merged[k].off = s->off;
		merged[k].len = s->len;
		merged[k].plen = 1;
		merged[k].rewrite = false;
		merged[k].kind = s->kind;
		memcpy(merged[k].orig, s->orig, sizeof(s->orig));
		copy[s->off] = PATCH_INT3;
		k++;
		j++;
	}
	free(p->sites);
	p->sites = merged;
	p->nsites = p->cap = k;
	t->nsites += nnew;
	return (int)nnew;
}

/* Item 2b. */
int patch_page_rewrite(struct patch_table *t, gfn_t f, enum decode_mode mode, unsigned off,
		       const u8 *orig, const u8 *repl, unsigned len, u8 *copy)
{
	struct patch_page *p = find_page(t, f);
	struct patch_site *sites;
	unsigned i;

	if (!len || len > SCAN_INSN_MAX || off + len > PAGE_SIZE || (p && p->mode != mode))
		return -EINVAL;
	for (i = 0; p && i < p->nsites; i++)
		if (p->sites[i].off < off + len && off < p->sites[i].off + p->sites[i].plen)
			return -EEXIST;
	if (memcmp(copy + off, orig, len))
		return -ESTALE;
	if (!p && !(p = add_page(t, f, mode)))
		return -ENOMEM;
	sites = realloc(p->sites, (p->nsites + 1) * sizeof(*sites));
	if (!sites)
		return -ENOMEM; /* an empty new page record is harmless: undo drops it */
	p->sites = sites;
	for (i = p->nsites; i > 0 && sites[i - 1].off > off; i--)
		sites[i] = sites[i - 1];
	sites[i] = (struct patch_site){ .off = (u16)off,
					.len = (u8)len,
					.plen = (u8)len,
					.kind = SCAN_KIND_PUSHF,
					.rewrite = true };
	memcpy(sites[i].orig, orig, len);
	memcpy(copy + off, repl, len);
	p->nsites++;
	p->cap = p->nsites;
	t->nsites++;
	return 1;
}

unsigned patch_save_fl_site(const u8 *page, unsigned off, const u8 **repl)
{
	static const u8 head[] = { 0x9c, 0x58 }; /* pushf; pop %rax */
	static const struct {
		u8 len;
		u8 nop[5], and_iopl[5];
	} forms[] = {
		{ 4, { 0x0f, 0x1f, 0x40, 0x00 }, { 0x66, 0x25, 0xff, 0xcf } },
		{ 5, { 0x0f, 0x1f, 0x44, 0x00, 0x00 }, { 0x25, 0xff, 0xcf, 0xff, 0xff } },
	};

	if (off + sizeof(head) > PAGE_SIZE || memcmp(page + off, head, sizeof(head)))
		return 0;
	off += PATCH_SAVE_FL_NOP;
	for (unsigned i = 0; i < ARRAY_SIZE(forms); i++) {
		if (off + forms[i].len <= PAGE_SIZE &&
		    !memcmp(page + off, forms[i].nop, forms[i].len)) {
			*repl = forms[i].and_iopl;
			return forms[i].len;
		}
	}
	return 0;
}

enum patch_pv_site patch_pv_site(const u8 *page, unsigned off, unsigned *len, unsigned *nop)
{
	static const struct {
		u8 kind, head_len, nop_len;
		u8 bytes[7];
	} forms[] = {
		{ PATCH_PV_IRQ_DISABLE, 1, 5, { 0xfa, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
		{ PATCH_PV_IRQ_DISABLE, 1, 6, { 0xfa, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
		{ PATCH_PV_IRQ_ENABLE, 1, 5, { 0xfb, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
		{ PATCH_PV_IRQ_ENABLE, 1, 6, { 0xfb, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
		{ PATCH_PV_SAVE_FL, 2, 4, { 0x9c, 0x58, 0x0f, 0x1f, 0x40, 0x00 } },
		{ PATCH_PV_SAVE_FL, 2, 5, { 0x9c, 0x58, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(forms); i++) {
		unsigned n = forms[i].head_len + forms[i].nop_len;

		if (off + n <= PAGE_SIZE && !memcmp(page + off, forms[i].bytes, n)) {
			*len = n;
			*nop = forms[i].head_len;
			return (enum patch_pv_site)forms[i].kind;
		}
	}
	return PATCH_PV_NONE;
}

enum patch_pv_site patch_pv_body(const u8 *page, unsigned off, unsigned *len, unsigned *head,
				 s32 *jmp_rel)
{
	static const u8 ret_int3[] = { 0xc3, 0xcc, 0xcc, 0xcc, 0xcc };
	enum patch_pv_site kind;
	unsigned h;

	if (off + 2 > PAGE_SIZE)
		return PATCH_PV_NONE;
	if (page[off] == 0xfa || page[off] == 0xfb) {
		kind = page[off] == 0xfa ? PATCH_PV_IRQ_DISABLE : PATCH_PV_IRQ_ENABLE;
		h = 1;
	} else if (page[off] == 0x9c && page[off + 1] == 0x58) {
		kind = PATCH_PV_SAVE_FL;
		h = 2;
	} else {
		return PATCH_PV_NONE;
	}
	if (off + h + 5 > PAGE_SIZE)
		return PATCH_PV_NONE;
	if (page[off + h] == 0xe9) {
		u32 rel;

		memcpy(&rel, page + off + h + 1, 4);
		*jmp_rel = (s32)rel;
	} else if (!memcmp(page + off + h, ret_int3, sizeof(ret_int3))) {
		*jmp_rel = 0;
	} else {
		return PATCH_PV_NONE;
	}
	*len = h + 5;
	*head = h;
	return kind;
}

unsigned patch_rewrite_frames(const struct patch_table *t, gfn_t *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned b = 0; b < (1u << PATCH_HASH_BITS); b++)
		for (const struct patch_page *p = t->chains[b]; p; p = p->next)
			for (unsigned i = 0; i < p->nsites; i++) {
				if (!p->sites[i].rewrite)
					continue;
				if (n < max)
					out[n] = p->gfn;
				n++;
				break;
			}
	return n;
}

/* Item 3. */
const struct patch_site *patch_lookup(const struct patch_table *t, gpa_t addr)
{
	const struct patch_page *p = find_page(t, gpa_to_gfn(addr));
	const struct patch_site *s = p ? find_site(p, (unsigned)(addr.v & ~PAGE_MASK)) : NULL;

	return s && !s->rewrite ? s : NULL;
}

const struct patch_site *patch_lookup_rewrite(const struct patch_table *t, gpa_t addr)
{
	const struct patch_page *p = find_page(t, gpa_to_gfn(addr));
	const struct patch_site *s = p ? find_site(p, (unsigned)(addr.v & ~PAGE_MASK)) : NULL;

	return s && s->rewrite ? s : NULL;
}

/* Item 3. */
enum patch_trap patch_classify_int3(const struct patch_table *t, gpa_t int3_gpa,
				    const struct patch_site **site)
{
	const struct patch_site *s = patch_lookup(t, int3_gpa);

	if (site)
		*site = s;
	return s ? PATCH_TRAP_OURS : PATCH_TRAP_GUEST;
}

/* Item 4. */
unsigned patch_page_undo(struct patch_table *t, gfn_t f, u8 *copy)
{
	struct patch_page **link = &t->chains[hash_gfn(f)];
	struct patch_page *p;
	unsigned n;

	while (*link && (*link)->gfn.v != f.v)
		link = &(*link)->next;
	p = *link;
	if (!p)
		return 0;
	n = p->nsites;
	for (unsigned i = 0; copy && i < n; i++)
		memcpy(copy + p->sites[i].off, p->sites[i].orig, p->sites[i].plen);
	*link = p->next;
	t->npages--;
	t->nsites -= n;
	free(p->sites);
	free(p);
	return n;
}

/* Item 5. */
void patch_read_fixup(const struct patch_table *t, gpa_t addr, u8 *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		u64 a = addr.v + done;
		size_t off = a & ~PAGE_MASK;
		size_t chunk = MIN(len - done, PAGE_SIZE - off);
		const struct patch_page *p = find_page(t, gpa_to_gfn(gpa(a)));

		for (unsigned i = 0; p && i < p->nsites; i++)
			for (unsigned b = 0; b < p->sites[i].plen; b++)
				if (p->sites[i].off + b >= off && p->sites[i].off + b < off + chunk)
					buf[done + p->sites[i].off + b - off] = p->sites[i].orig[b];
		done += chunk;
	}
}
