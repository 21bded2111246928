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
 */
#ifndef UMBRA_VMM_PATCH_COPIES_H
#define UMBRA_VMM_PATCH_COPIES_H

#include "decode/scan.h"
#include "umbra/types.h"

#define PATCH_COPY_CONTEXT 12u

struct patch_copy;

struct patch_copies {
	struct patch_copy *slots; /* open addressing on the context hash */
	unsigned nslots, n;
	/*
	 * Bit (b << 8 | a): some patch remembered has byte b just before its
	 * int3 and a just after. Why: Linux pads its text with int3, a
	 * thousand 0xcc bytes in a typical page, and hashing the context of
	 * each took as long as a rescan through its memo (20 us per page);
	 * padding's neighbours are 0xcc, which no remembered patch has.
	 */
	u64 near[65536 / 64];
};

void patch_copies_init(struct patch_copies *pc);
void patch_copies_destroy(struct patch_copies *pc);

/*
 * Remember the patch at offset `off` of `page` (4096 bytes as the guest now
 * sees them, int3 in place) whose original instruction is `orig` (`len`
 * bytes). A site too near the page's edges for the context is skipped.
 * Returns 0 or -ENOMEM.
 */
int patch_copies_add(struct patch_copies *pc, const u8 *page, unsigned off, const u8 *orig,
		     unsigned len) __must_check;

/*
 * Put back the original first byte of every copied patch in `page`. The
 * 0xcc bytes are matched against the page as it was on entry, so adjacent
 * copied patches are all found. Returns how many bytes were restored.
 */
unsigned patch_copies_restore(const struct patch_copies *pc, u8 *page);

#endif /* UMBRA_VMM_PATCH_COPIES_H */
