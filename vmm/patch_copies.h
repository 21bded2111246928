/* SPDX-License-Identifier: MIT */
/*
 * Copies of patched code (vmm/patch_copies.c). The guest reads our int3
 * patches as 0xcc (decode/patch.h, LIMITATION: no execute-only mappings),
 * so code it copies after running it carries them: Linux's decompressor
 * moves itself before it jumps to the copy. Every patch applied is
 * remembered with the bytes around it as the page then held them; when a
 * frame is scanned, each 0xcc in it with exactly those surroundings is a
 * copy of that patch, and gets the original byte back before the scan, so
 * the copy is scanned and patched as the code it is.
 *
 * Surroundings: PATCH_COPY_CONTEXT bytes on each side, within the page.
 * A guest's own int3 with the same 2 x 12 bytes around it as one of our
 * patches would be taken for a copy (not seen; negligible).
 *
 * A copy of a piece of code, not of a whole page, keeps only one side: the
 * bytes before its first instruction, or after its last, are the
 * destination's. Linux's ftrace trampolines are such copies (of
 * ftrace_regs_caller, which begins with pushfq and ends with popfq: a
 * kprobe's trampoline ran our int3 as the guest's own and died). So a
 * 0xcc whose two sides match no patch is matched on either side alone,
 * a longer one: the PATCH_COPY_SIDE bytes after it, then those before it,
 * as some patch had them. One side is also all a patch near the page's
 * edge has. One side is weaker evidence, so:
 *  - a side with a 0xcc in it is never used: function ends and padding
 *    (`ret; int3`, int3 fill) are alike all over Linux's text, and the
 *    0xcc Linux writes at a function's start (ftrace) has them before it;
 *  - a side two patches with different original bytes share names neither;
 *  - the caller names the offsets where the guest's own int3 stands for an
 *    instruction its frame's last scan found (decode/scan.h item 9), which
 *    are never taken for copies on one side.
 * In Debian's 6.1 text, three instruction starts besides the sites share a
 * site's side without 0xcc in it, with 12 bytes or 24: copies of the same
 * register-restoring macro in the entry and ftrace assembly, which Linux
 * never patches. The longer side is for the code at large.
 */
#ifndef UMBRA_VMM_PATCH_COPIES_H
#define UMBRA_VMM_PATCH_COPIES_H

#include "decode/scan.h"
#include "umbra/types.h"

#define PATCH_COPY_CONTEXT 12u
#define PATCH_COPY_SIDE	   24u

struct patch_copy;

struct patch_copies {
	struct patch_copy *slots; /* open addressing on the context hash */
	unsigned nslots, n; /* n: entries (each patch has up to three: both sides, each side) */
	unsigned npatches;  /* patches remembered */
	/*
	 * Bit (b << 8 | a): some patch remembered has byte b just before its
	 * int3 and a just after. Why: Linux pads its text with int3, a
	 * thousand 0xcc bytes in a typical page, and hashing the context of
	 * each took as long as a rescan through its memo (20 us per page);
	 * padding's neighbours are 0xcc, which no remembered patch has.
	 */
	u64 near[65536 / 64];
	/* Bit b: some patch has byte b just before (after) its int3: the one-sided keys. */
	u64 near_before[256 / 64], near_after[256 / 64];
};

void patch_copies_init(struct patch_copies *pc);
void patch_copies_destroy(struct patch_copies *pc);

/*
 * Remember the patch at offset `off` of `page` (4096 bytes as the guest now
 * sees them, int3 in place) whose original instruction is `orig` (`len`
 * bytes): with both sides of context, and with each side alone, as far as
 * the page holds them. Returns 0 or -ENOMEM.
 */
int patch_copies_add(struct patch_copies *pc, const u8 *page, unsigned off, const u8 *orig,
		     unsigned len) __must_check;

/*
 * Put back the original first byte of every copied patch in `page`: a 0xcc
 * with both sides of a patch's, else one (the after side first), but not
 * on one side at an offset o with own[o] >= 2 (NULL: none), where the
 * guest's int3 covers an instruction (decode/scan.h, a result's int3_len
 * after scan_cover_int3s). The 0xcc bytes are matched against the page as it was on
 * entry, so adjacent copied patches are all found. Returns how many bytes
 * were restored.
 */
unsigned patch_copies_restore(const struct patch_copies *pc, u8 *page, const u8 *own);

#endif /* UMBRA_VMM_PATCH_COPIES_H */
