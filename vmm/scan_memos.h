/* SPDX-License-Identifier: MIT */
/*
 * The scan memos of recently scanned kernel code frames (vmm/scan_memos.c;
 * decode/scan.h, item 7): what makes the rescan of a frame the guest
 * rewrote decode only the bytes that changed.
 *
 * Why a bounded table: a memo is about 37 KiB and a Linux boot scans some
 * 1400 frames. Most rescans come soon after the frame's previous scan: in
 * the traces of session 14's rig boots (3100-3300 scans, 1700-1900 of them
 * rescans), a table of 512 memos, least recently used out first, held the
 * frame's memo for 89% of the rescans (256: 73%, 1024: 98%). Another 128
 * are for scan-ahead (vmm/scan_ahead.h): 640 memos are 23 MiB at most,
 * allocated as frames are scanned.
 *
 * Invariant: none needed for exactness. A memo checks the bytes, address
 * and mode of each scan itself, so a frame handed another frame's memo (or
 * its own, stale) only decodes more.
 */
#ifndef UMBRA_VMM_SCAN_MEMOS_H
#define UMBRA_VMM_SCAN_MEMOS_H

#include "decode/scan.h"
#include "umbra/types.h"

#define SCAN_MEMOS_MAX 640
/*
 * Of them, at most this many hold scan-ahead's guesses not yet used: a
 * guess evicts another guess, not the memo a rescan would find (scan-ahead
 * decodes about twice as many frames as get scanned).
 */
#define SCAN_MEMOS_AHEAD_MAX 128

struct scan_memos {
	struct scan_memo_slot {
		gfn_t gfn;
		u64 used; /* `clock` at the slot's last use; 0: empty */
		struct scan_memo *memo;
		bool ahead; /* put by scan-ahead, no scan has used it yet */
	} slot[SCAN_MEMOS_MAX];
	u64 clock;
	unsigned nahead; /* slots with `ahead` set */
};

void scan_memos_init(struct scan_memos *t);
void scan_memos_destroy(struct scan_memos *t);

/*
 * The memo to scan frame `g` with: its own if the table still holds it
 * (*own = true; *ahead = whether scan-ahead made it and this is its first
 * use), else a new one or the least recently used one, now `g`'s. NULL
 * without memory (scan without one).
 */
struct scan_memo *scan_memos_get(struct scan_memos *t, gfn_t g, bool *own, bool *ahead);

/* Does the table hold a memo for `g`? (Its use does not count as one.) */
bool scan_memos_has(const struct scan_memos *t, gfn_t g);

/*
 * Scan-ahead (vmm/scan_ahead.h) decoded `g` into `memo`: the table takes
 * it, unless it holds one for `g` already (then `memo` is freed: the one
 * a real scan left is at least as good). `*ahead` in scan_memos_get
 * tells the first scan that uses it.
 */
void scan_memos_put(struct scan_memos *t, gfn_t g, struct scan_memo *memo);

#endif /* UMBRA_VMM_SCAN_MEMOS_H */
