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
 * Invariant: a frame has a live record iff it is approved (shadow_exec_approve
 * after its scan, until shadow_exec_revoke), and the record is that scan's.
 *
 * A revoked frame's record is retired, not dropped: it keeps the lengths
 * of the instructions its last scan found and the frame's bytes before the
 * guest's write, for the next scan of the frame to tell
 * which int3s the guest wrote over those instructions since (decode/scan.h
 * item 9, scan_cover_int3s: text_poke_bp and kprobes). A retired record
 * answers insn_starts_history() only. At most INSN_STARTS_RETIRED_MAX are
 * kept, the oldest retired freed first: history for the frames rewritten
 * lately, which are the ones rescanned soon.
 */
#ifndef UMBRA_VMM_INSN_STARTS_H
#define UMBRA_VMM_INSN_STARTS_H

#include "umbra/types.h"

#define INSN_STARTS_HASH_BITS	12
#define INSN_STARTS_RETIRED_MAX 1024u

struct insn_starts_page;

struct insn_starts {
	struct insn_starts_page *chains[1u << INSN_STARTS_HASH_BITS];
	unsigned npages;   /* records, live and retired */
	unsigned nretired; /* retired records */
	/* Retirements, oldest first (a ring): a record is freed at its own. */
	struct {
		gfn_t gfn;
		u32 seq;
	} ring[INSN_STARTS_RETIRED_MAX];
	unsigned ring_head, ring_len;
	u32 seq;
};

void insn_starts_init(struct insn_starts *s);
void insn_starts_destroy(struct insn_starts *s);

/*
 * Record frame `g`'s instructions, live: offset o starts one of insn_len[o]
 * bytes iff insn_len[o] != 0 (the 4096 entries of a scan result's
 * insn_len, each at most 15). Replaces an older record, live or retired.
 * Returns 0 or -ENOMEM (then `g` has no record).
 */
int insn_starts_set(struct insn_starts *s, gfn_t g, const u8 *insn_len) __must_check;

/* Does frame `g` have a live record in which offset `off` starts an instruction? */
bool insn_starts_has(const struct insn_starts *s, gfn_t g, unsigned off);

/*
 * Frame `g` is no longer approved: its live record, if any, is retired.
 * Its lengths become the frame's history, with a copy of `page` (the
 * frame's 4096 bytes, our patches undone), unless the scan that found them
 * came right after a `self_write` retirement: a store by an instruction in
 * the frame itself, as memcpy's when Linux patches memcpy's own page. That
 * scan may have seen an instruction half rewritten (memcpy stores a 5-byte
 * rewrite in two), and the history from before it stays. Without memory
 * (or `page`) the record is dropped.
 */
void insn_starts_retire(struct insn_starts *s, gfn_t g, const u8 *page, bool self_write);

/*
 * Frame `g`'s history, while it is retired: the instruction lengths into
 * len[0..4096) (0: no instruction starts there) and the bytes into
 * bytes[0..4096); false if it has none (never scanned, approved, forgotten,
 * or only ever scanned right after its own code wrote it).
 */
bool insn_starts_history(const struct insn_starts *s, gfn_t g, u8 *len, u8 *bytes);

/* Forget frame `g` (no-op without a record). */
void insn_starts_drop(struct insn_starts *s, gfn_t g);

#endif /* UMBRA_VMM_INSN_STARTS_H */
