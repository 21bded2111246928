/* SPDX-License-Identifier: MIT */
/*
 * The guest kernel's known code entry points, by page (vmm/code_entries.c):
 * the offsets where code scanning must start in each page. An entry is
 * learnt when the guest enters kernel code there (an event handler, LSTAR),
 * or when scanned code branches or falls into another page. Shadow mode
 * scans a page from all of its entries, so code reached across pages or
 * through the IDT is scanned before it runs (vmm/code_scan.c).
 *
 * Keyed by linear page address (entries are where the guest *fetches*).
 * Memory grows with the guest's code size, a few bytes per entry.
 */
#ifndef UMBRA_VMM_CODE_ENTRIES_H
#define UMBRA_VMM_CODE_ENTRIES_H

#include "umbra/types.h"

struct code_page_entries;

struct code_entries {
	struct code_page_entries *slots; /* open addressing on the page address */
	unsigned nslots, npages;
	u64 nentries;
};

void code_entries_init(struct code_entries *ce);
void code_entries_destroy(struct code_entries *ce);

/* Add linear address `la`. 1 if it was new, 0 if known, -ENOMEM. */
int code_entries_add(struct code_entries *ce, u64 la) __must_check;

/*
 * The offsets known in the page at `page_la` (page-aligned): up to `max`
 * of them into `out`; returns how many there are in all.
 */
unsigned code_entries_in_page(const struct code_entries *ce, u64 page_la, u16 *out, unsigned max);

/*
 * The handlers of the present gates of a 64-bit IDT image (`len` bytes,
 * 16 per gate) that lie in the page at `page_la`: up to `max` of them into
 * `out`, in vector order; returns how many were stored. Entries the CPU can
 * reach with no fault to tell us of them.
 */
unsigned code_entries_idt_in_page(const u8 *idt, size_t len, u64 page_la, u64 *out, unsigned max);

#endif /* UMBRA_VMM_CODE_ENTRIES_H */
