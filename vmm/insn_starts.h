/* SPDX-License-Identifier: MIT */
/*
 * Where instructions start in each approved kernel code frame, as its last
 * scan found them (vmm/insn_starts.c; decode/scan.h, scan_is_insn_start).
 *
 * Why: a new entry point into an approved frame (an event handler, a
 * branch target, an iretq's return address: shadow_learn_entry) used to
 * revoke the frame, so that its next fetch rescanned it from every entry.
 * When the new entry is the start of an instruction the scan already
 * recorded, that rescan finds nothing new: the scan records every
 * successor of every instruction it records (decode/scan.h, the result's
 * invariants), so all code reachable from the entry was scanned and
 * patched. Such an entry keeps the frame approved. A Linux boot learns a
 * few thousand entries, and each rescan is a whole page through capstone.
 *
 * Invariant: a frame has a record iff it is approved (shadow_exec_approve
 * after its scan, until shadow_exec_revoke), and the record is that scan's.
 */
#ifndef UMBRA_VMM_INSN_STARTS_H
#define UMBRA_VMM_INSN_STARTS_H

#include "umbra/types.h"

#define INSN_STARTS_HASH_BITS 12

struct insn_starts_page;

struct insn_starts {
	struct insn_starts_page *chains[1u << INSN_STARTS_HASH_BITS];
	unsigned npages;
};

void insn_starts_init(struct insn_starts *s);
void insn_starts_destroy(struct insn_starts *s);

/*
 * Record frame `g`'s instruction starts: offset o starts one iff
 * insn_len[o] != 0 (the 4096 entries of a scan result's insn_len). Replaces
 * an older record. Returns 0 or -ENOMEM (then `g` has no record).
 */
int insn_starts_set(struct insn_starts *s, gfn_t g, const u8 *insn_len) __must_check;

/* Does frame `g` have a record in which offset `off` starts an instruction? */
bool insn_starts_has(const struct insn_starts *s, gfn_t g, unsigned off);

/* Forget frame `g` (no-op without a record). */
void insn_starts_drop(struct insn_starts *s, gfn_t g);

#endif /* UMBRA_VMM_INSN_STARTS_H */
