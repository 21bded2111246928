// SPDX-License-Identifier: MIT
/*
 * Known code entry points by page (vmm/code_entries.h): a hash table of
 * pages with open addressing (linear probing, at most half full), each
 * with a small growing array of in-page offsets.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/x86.h"
#include "umbra/le.h"
#include "vmm/code_entries.h"

#define PAGE_MASK_4K 0xfffull

struct code_page_entries {
	u64 page; /* page-aligned linear address; 1 marks an empty slot (never aligned) */
	u16 *off;
	unsigned n, cap;
};

#define EMPTY 1ull

void code_entries_init(struct code_entries *ce)
{
	memset(ce, 0, sizeof(*ce));
}

void code_entries_destroy(struct code_entries *ce)
{
	for (unsigned i = 0; i < ce->nslots; i++)
		free(ce->slots[i].off);
	free(ce->slots);
	memset(ce, 0, sizeof(*ce));
}

static unsigned hash(u64 page, unsigned nslots)
{
	return (unsigned)(((page >> 12) * 0x9e3779b97f4a7c15ull) >> 32) & (nslots - 1);
}

static struct code_page_entries *find(const struct code_entries *ce, u64 page)
{
	if (!ce->nslots)
		return NULL;
	for (unsigned i = hash(page, ce->nslots);; i = (i + 1) & (ce->nslots - 1)) {
		if (ce->slots[i].page == page)
			return &ce->slots[i];
		if (ce->slots[i].page == EMPTY)
			return NULL;
	}
}

/* Rehash into twice the slots (64 at first); -ENOMEM leaves `ce` as it was. */
static int grow(struct code_entries *ce)
{
	unsigned n = ce->nslots ? 2 * ce->nslots : 64;
	struct code_page_entries *s = malloc(n * sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		s[i] = (struct code_page_entries){ .page = EMPTY };
	for (unsigned i = 0; i < ce->nslots; i++) {
		unsigned j;

		if (ce->slots[i].page == EMPTY)
			continue;
		for (j = hash(ce->slots[i].page, n); s[j].page != EMPTY; j = (j + 1) & (n - 1))
			;
		s[j] = ce->slots[i];
	}
	free(ce->slots);
	ce->slots = s;
	ce->nslots = n;
	return 0;
}

int code_entries_add(struct code_entries *ce, u64 la)
{
	u64 page = la & ~PAGE_MASK_4K;
	u16 off = (u16)(la & PAGE_MASK_4K);
	struct code_page_entries *p = find(ce, page);

	if (!p) {
		unsigned i;

		if (2 * (ce->npages + 1) > ce->nslots && grow(ce))
			return -ENOMEM;
		for (i = hash(page, ce->nslots); ce->slots[i].page != EMPTY;
		     i = (i + 1) & (ce->nslots - 1))
			;
		p = &ce->slots[i];
		*p = (struct code_page_entries){ .page = page };
		ce->npages++;
	}
	for (unsigned i = 0; i < p->n; i++)
		if (p->off[i] == off)
			return 0;
	if (p->n == p->cap) {
		unsigned cap = p->cap ? 2 * p->cap : 4;
		u16 *o = realloc(p->off, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		p->off = o;
		p->cap = cap;
	}
	p->off[p->n++] = off;
	ce->nentries++;
	return 1;
}

unsigned code_entries_in_page(const struct code_entries *ce, u64 page_la, u16 *out, unsigned max)
{
	const struct code_page_entries *p = find(ce, page_la & ~PAGE_MASK_4K);

	if (!p)
		return 0;
	memcpy(out, p->off, MIN(p->n, max) * sizeof(*out));
	return p->n;
}

unsigned code_entries_idt_in_page(const u8 *idt, size_t len, u64 page_la, u64 *out, unsigned max)
{
	unsigned n = 0;

	for (size_t o = 0; o + 16 <= len && n < max; o += 16) {
		u64 lo = le_get64(idt, o), h = x86_gate64_offset(lo, le_get64(idt, o + 8));

		if ((lo & X86_GATE_P) && (h >> PAGE_SHIFT) == (page_la >> PAGE_SHIFT))
			out[n++] = h;
	}
	return n;
}
