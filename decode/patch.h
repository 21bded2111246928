/* SPDX-License-Identifier: MIT */
/*
 * decode/patch: turn the sites decode/scan.h found into traps, and map a
 * trap back to the instruction it replaced (the PATM half of VirtualBox raw
 * mode's CSAM/PATM pair, reduced to a one-byte trap; shared/DESIGN.md).
 *
 * The patch is int3 (0xcc) over the first byte of the instruction:
 *  - it is one byte, like pushf/popf themselves (9c/9d), so it never
 *    overwrites the next instruction, which may be a branch target. ud2
 *    (0f 0b) would clobber the byte after a one-byte pushf;
 *  - a patched instruction of more bytes (66 9c, 48 9d, 0f 01 /0 sgdt)
 *    keeps its tail bytes, which are never run: the trap comes first and
 *    the emulator moves RIP past the whole original instruction;
 *  - it raises #BP, which the monitor's IDT routes to the VMM. Its gate must
 *    have DPL 3 (the guest kernel runs at real CPL3, and int3 through a DPL 0
 *    gate is #GP). #BP is a trap: the pushed RIP is the byte *after* the
 *    int3, so the VMM looks up RIP - 1.
 * The price: the guest may use int3 itself (kprobes, text_poke_bp, its own
 * debugger, int3 padding). patch_classify_int3() tells the two apart: only
 * an address in the table is ours; any other #BP is reflected to the guest.
 *
 * The table is keyed by gfn and page offset (a gpa), not by gva: the
 * patched bytes belong to the frame, which every gva that maps it in the
 * kernel view shares, and the scan depends only on the frame's bytes and
 * the code mode. The VMM translates the trapping RIP - 1 to a gpa first.
 *
 * Responsibilities:
 *  1. The table: pages by gfn in a chained hash, sites per page sorted by
 *     offset.
 *  2. Apply a scan result to the page copy the guest will run: int3 on each
 *     site not applied before and not in conflict; record it.
 *  3. Look up a trap address: ours (the original bytes and length) or the
 *     guest's own int3.
 *  4. Undo a page: the original bytes back in the copy, the record dropped
 *     (the guest wrote the page; it will be rescanned).
 *  5. Undo patches in a buffer read from a patched page, for the VMM's own
 *     reads of guest code (dumps, emulated reads).
 *
 * LIMITATION: the guest reads its own patched code as int3 (x86 without EPT
 * has no execute-only mapping), as it did under VirtualBox raw mode. Linux
 * reads its text in ftrace's and text_poke's sanity checks; those reads must
 * be made to trap and emulated with patch_read_fixup() if they matter.
 * LIMITATION: an indirect jump to an offset of an executable patched page
 * that no scan reached runs unscanned (decode/scan.h). A fix that keeps the
 * mechanism: fill every byte no scan reached with int3 as well, so the jump
 * traps here, is not ours by patch_lookup, and the VMM rescans from there;
 * the cost is that data inside code pages (rare in Linux .text) reads as
 * 0xcc. Not done yet.
 */
#ifndef UMBRA_DECODE_PATCH_H
#define UMBRA_DECODE_PATCH_H

#include "decode/scan.h"
#include "umbra/types.h"

#define PATCH_INT3	0xccu /* the patch byte (SDM Vol. 2A INT3) */
#define PATCH_HASH_BITS 10    /* 1024 chains: ~5 pages each for 20 MiB of kernel text */

/*
 * One applied patch: an int3 over the first byte of the instruction at
 * `off` (plen 1), or a rewrite of the `plen` bytes from `off` on (a
 * trap-free replacement, patch_page_rewrite; it never traps).
 */
struct patch_site {
	u16 off;
	u8 len;	 /* the original instruction's length (int3: what to emulate) */
	u8 plen; /* bytes changed from off on: orig[0..plen) is what they were */
	u8 kind; /* enum scan_kind (a rewrite: the kind it stands for) */
	bool rewrite;
	u8 orig[SCAN_INSN_MAX];
};

/*
 * Linux's paravirt save_fl site after its alternatives are applied:
 * `pushf; pop %rax` then the kernel's nop that pads it to the length of the
 * `call *pv_ops.irq.save_fl` it replaced (6 bytes with the RIP-relative
 * call, 7 with the absolute one): a 4-byte `0f 1f 40 00` or a 5-byte
 * `0f 1f 44 00 00`. Under shadow mode's iopl3 strategy the nop becomes an
 * `and` of the same length that clears IOPL in the saved flags (`and
 * $0xcfff, %ax`, or `and $0xffffcfff, %eax`, whose zero-extension is exact:
 * RFLAGS' upper half is 0), so every instruction boundary stays where it
 * was (patch_save_fl_site).
 */
#define PATCH_SAVE_FL_NOP 2u /* offset of the nop in the site */

struct patch_page {
	gfn_t gfn;
	enum decode_mode mode;
	struct patch_site *sites; /* sorted by off */
	unsigned nsites, cap;
	struct patch_page *next; /* hash chain */
};

struct patch_table {
	struct patch_page *chains[1u << PATCH_HASH_BITS];
	unsigned npages;
	u64 nsites; /* patches in place, for --stats */
};

/* What an int3 trap is. */
enum patch_trap {
	PATCH_TRAP_OURS = 0, /* a patch: emulate site->orig with emu_insn_bytes() */
	PATCH_TRAP_GUEST,    /* the guest's own int3: reflect #BP to the guest */
};

/* Item 1. An empty table; patch_table_destroy() frees every page record. */
void patch_table_init(struct patch_table *t);
void patch_table_destroy(struct patch_table *t);

/*
 * Item 2. Patch `copy`, the 4096 bytes of frame `gfn` as the guest will run
 * them, with every site of `res` not applied before and not in conflict.
 * Sites already applied are left alone (incremental scans re-apply only
 * what is new). A new site's byte in `copy` must still be its original
 * byte.
 *
 * Returns the number of patches newly applied (>= 0), -ENOMEM, -EINVAL when
 * the page was patched from a scan in another code mode, or -ESTALE when a
 * byte in `copy` is not what the scan saw (the page changed: undo and
 * rescan). On error nothing was changed.
 */
int patch_page_apply(struct patch_table *t, gfn_t gfn, const struct scan_result *res,
		     u8 *copy) __must_check;

/*
 * Item 2b. Record and apply a rewrite on frame `gfn`: the `len` (<= 8)
 * bytes of `copy` from `off` on, which must be `orig`, become `repl`.
 * Returns 1, -ESTALE (copy does not hold orig there), -EEXIST (another patch
 * overlaps), -EINVAL (mode differs or past the page) or -ENOMEM.
 */
int patch_page_rewrite(struct patch_table *t, gfn_t gfn, enum decode_mode mode, unsigned off,
		       const u8 *orig, const u8 *repl, unsigned len, u8 *copy) __must_check;

/*
 * Is there, at `off` of `page` (4096 bytes, original), a paravirt save_fl
 * site (see above)? Returns the length of its nop (4 or 5), with *repl the
 * bytes that replace it, or 0.
 */
unsigned patch_save_fl_site(const u8 *page, unsigned off, const u8 **repl);

/*
 * Linux's paravirt irq-flag sites as its alternatives leave them on bare
 * metal: the native instruction(s), then the nop that pads them to the 6
 * or 7 bytes of the indirect `call *pv_ops...` they replaced (Linux's
 * x86_nops: 4, 5 or 6 bytes here). Under shadow mode's patch strategy the
 * VMM rewrites such a site into a call to monitor code (vmm/monitor.h, the
 * call window).
 */
enum patch_pv_site {
	PATCH_PV_NONE = 0,
	PATCH_PV_IRQ_DISABLE, /* cli */
	PATCH_PV_IRQ_ENABLE,  /* sti */
	PATCH_PV_SAVE_FL,     /* pushf; pop %rax */
};

/*
 * Is there a paravirt irq-flag site at `off` of `page` (4096 bytes,
 * original)? Returns its kind, with *len the site's length (6 or 7) and
 * *nop the offset of its nop in it (1 or 2); PATCH_PV_NONE otherwise.
 */
enum patch_pv_site patch_pv_site(const u8 *page, unsigned off, unsigned *len, unsigned *nop);

/*
 * Is there, at `off` of `page`, the body of one of Linux's native functions
 * behind those paravirt ops (what a site calls before alternatives inline
 * it, e.g. during text_poke_early): the same instruction(s), then a return,
 * either `jmp __x86_return_thunk` (e9 rel32) or, once Linux's apply_returns
 * has inlined the thunk, `ret` and four int3s? Returns its kind, with *len
 * (the head and the 5 bytes of return), *head (1 or 2), and *jmp_rel the
 * rel32 of the jmp (the caller checks it reaches a `ret`) or 0 for `ret`.
 */
enum patch_pv_site patch_pv_body(const u8 *page, unsigned off, unsigned *len, unsigned *head,
				 s32 *jmp_rel);

/*
 * Item 2b. The frames holding at least one rewrite, into `out` (at most
 * `max` of them; `out` may be NULL when `max` is 0). Returns how many there
 * are.
 */
unsigned patch_rewrite_frames(const struct patch_table *t, gfn_t *out, unsigned max);

/* Item 3. The patch whose int3 is at `addr`, or NULL (rewrites are not traps). */
const struct patch_site *patch_lookup(const struct patch_table *t, gpa_t addr);
/* Item 3. The rewrite that starts at `addr`, or NULL. */
const struct patch_site *patch_lookup_rewrite(const struct patch_table *t, gpa_t addr);

/*
 * Item 3. Classify a #BP: `int3_gpa` is the gpa of the int3 byte, that is,
 * of the trapping RIP - 1 (translate RIP - 1, not RIP: they may be on
 * different pages). *site gets the patch when it is ours (may be NULL).
 */
enum patch_trap patch_classify_int3(const struct patch_table *t, gpa_t int3_gpa,
				    const struct patch_site **site);

/*
 * Item 4. Write the original bytes of every patch on frame `gfn` back into
 * `copy` (NULL: only forget them, for a copy the VMM discards), and forget
 * the page. Afterwards `copy` is byte for byte the page the guest wrote, so
 * the VMM applies the guest's store to it and scans it again. Returns the
 * number of patches undone (0 if the page had none).
 */
unsigned patch_page_undo(struct patch_table *t, gfn_t gfn, u8 *copy);

/* Is frame `gfn` patched (has a record)? */
bool patch_page_known(const struct patch_table *t, gfn_t gfn);

/*
 * Item 5. `buf` holds `len` bytes read from guest-physical `addr` on, some
 * of them possibly patched: put the original bytes back.
 */
void patch_read_fixup(const struct patch_table *t, gpa_t addr, u8 *buf, size_t len);

#endif /* UMBRA_DECODE_PATCH_H */
