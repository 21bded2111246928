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
 * frame's memo for 89% of the rescans (256: 73%, 1024: 98%). 512 memos
 * are 19 MiB at most, allocated as frames are scanned.
 *
 * Invariant: none needed for exactness. A memo checks the bytes, address
 * and mode of each scan itself, so a frame handed another frame's memo (or
 * its own, stale) only decodes more.
 */
#ifndef UMBRA_VMM_SCAN_MEMOS_H
#define UMBRA_VMM_SCAN_MEMOS_H

#include "decode/scan.h"
#include "umbra/types.h"

#define SCAN_MEMOS_MAX 512

struct scan_memos {
	struct scan_memo_slot {
		gfn_t gfn;
		u64 used; /* `clock` at the slot's last use; 0: empty */
		struct scan_memo *memo;
	} slot[SCAN_MEMOS_MAX];
	u64 clock;
};

void scan_memos_init(struct scan_memos *t);
void scan_memos_destroy(struct scan_memos *t);

/*
 * The memo to scan frame `g` with: its own if the table still holds it
 * (*own = true), else a new one or the least recently used one, now `g`'s.
 * NULL without memory (scan without one).
 */
struct scan_memo *scan_memos_get(struct scan_memos *t, gfn_t g, bool *own);

#endif /* UMBRA_VMM_SCAN_MEMOS_H */
