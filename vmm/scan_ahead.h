/* SPDX-License-Identifier: MIT */
/*
 * Scan-ahead (vmm/scan_ahead.c): a helper thread that decodes guest kernel
 * code frames into scan memos (decode/scan.h, item 7) before the guest
 * first runs them, so that their real scan, on the vCPU thread, takes its
 * decodes from the memo.
 *
 * Why: after the scan memos, a Linux boot's scan time is mostly first
 * scans (about 1400 frames, every instruction through capstone), paid on
 * the vCPU thread while the guest waits. Code runs near code that ran: in
 * session 14's boot traces 58% of the first scans were of the page just
 * before or after one scanned earlier (38% after, 20% before; two pages
 * away added only 15% more, and asking for them too took no fewer decodes
 * off the vCPU thread in rig boots), most within 200 scans of it, a fifth
 * right at the next scan. A second host CPU can decode those pages
 * meanwhile. vmm/code_scan.c asks for both neighbours of every frame it
 * scans; a scan of a frame the helper is decoding at that moment waits for
 * it (less than decoding it again).
 *
 * Exactness: nothing the helper does can change a scan's result. It
 * decodes its own copy of the page into a fresh memo, and a memo checks
 * its bytes, address and mode against each scan's (decode/scan.h): a page
 * the guest wrote since, a guessed address or a mode that turns out wrong
 * only costs decodes. The copy may be torn by a guest store racing with it
 * (the vCPU runs meanwhile); that too is only bytes that do not match.
 *
 * Threads: the vCPU thread calls everything here; the helper only takes
 * requests and returns memos through the two queues, under one mutex. It
 * owns a memo from the request's start until it is collected.
 */
#ifndef UMBRA_VMM_SCAN_AHEAD_H
#define UMBRA_VMM_SCAN_AHEAD_H

#include "decode/scan.h"
#include "umbra/types.h"

struct scan_ahead;

/* What to decode: a frame the guest maps at `page` in `mode`. */
struct scan_ahead_req {
	gfn_t gfn;
	gva_t page;
	enum decode_mode mode;
	const u8 *hva;	    /* the frame's 4096 bytes in guest RAM */
	const u8 *prev_hva; /* the page before it (for scan_sync_offset), or NULL */
};

/* A decoded frame: its memo, now the caller's. */
struct scan_ahead_done {
	gfn_t gfn;
	struct scan_memo *memo;
};

/* Start the helper thread; NULL (with errno set) if it cannot start. */
struct scan_ahead *scan_ahead_start(void);

/* Stop and join it; free every memo not collected. NULL: no-op. */
void scan_ahead_stop(struct scan_ahead *sa);

/*
 * Queue a frame to decode; never blocks. When SCAN_AHEAD_QUEUE requests
 * wait already, the oldest is dropped (the newest guesses are the best).
 * False (nothing queued) if the frame is waiting or being decoded already.
 */
#define SCAN_AHEAD_QUEUE 32
bool scan_ahead_request(struct scan_ahead *sa, const struct scan_ahead_req *req);

/* Take up to `max` decoded frames; never blocks. Returns how many. */
unsigned scan_ahead_collect(struct scan_ahead *sa, struct scan_ahead_done *out, unsigned max);

/*
 * The vCPU thread is about to scan `g`. If the helper is decoding it right
 * now, wait until it is done: that takes less than decoding it again (the
 * memo is then collected as usual). If `g` only waits in the queue, drop
 * it: the scan will decode it anyway. True if it waited.
 */
bool scan_ahead_wait(struct scan_ahead *sa, gfn_t g);

/* Wait until no request is waiting or being decoded (tests, teardown). */
void scan_ahead_drain(struct scan_ahead *sa);

#endif /* UMBRA_VMM_SCAN_AHEAD_H */
