/* SPDX-License-Identifier: MIT */
/*
 * decode/scan: find the sensitive instructions x86 does not trap in one
 * page of guest kernel code, so that decode/patch.h can replace each by a
 * trapping int3 (shared/DESIGN.md, "The instructions x86 does not trap").
 *
 * The technique is VirtualBox raw mode's: its CSAM (code scanning and
 * analysis manager) disassembled guest ring-0 code pages before they ran,
 * following the control flow from the address that faulted, and its PATM
 * (patch manager) replaced the instructions that misbehave at a lower ring.
 * We keep the idea, not their code, and only the one-byte trap patch.
 *
 * Why only *reachable* code: a page of kernel text also holds jump tables,
 * strings, alignment padding, and immediates whose bytes look like opcodes
 * (`mov $0x9c,%eax` is b8 9c 00 00 00). A linear sweep of the whole page
 * would "find" a pushf in them and corrupt the code by patching it. So the
 * scan is recursive descent: starting at the known instruction starts (the
 * faulting RIP at least), it sweeps linearly until an unconditional
 * transfer, and queues the in-page targets of direct jumps, branches and
 * calls. Only bytes reached that way are ever called instructions.
 *
 * Which instructions are sensitive (enum scan_kind, chosen by a mask):
 *   PUSHF   pushf/pushfd/pushfq, every operand size (9c, 66 9c, REX 9c):
 *           at CPL3 with the host's IF=1, IOPL=0 it shows the wrong IF and
 *           IOPL. Always patched.
 *   POPF    popf/popfd/popfq (9d, 66 9d, 48 9d): at CPL3 it silently keeps
 *           IF and IOPL. Always patched.
 *   SYSDESC sgdt/sidt/sldt/str/smsw: they reveal the monitor's tables and
 *           CR0. UMIP makes them fault; patch only on a host without UMIP.
 *           decode/emulate already emulates all five.
 *   SREG_READ  mov %cs/%ss,r/m (8c /1, 8c /2) and push %cs/%ss (0e, 16,
 *           32-bit code only): they show the real selectors (RPL 3; on
 *           PVM hosts the host's own 0x33/0x2b). decode/emulate emulates
 *           the mov forms; shadow mode patches them.
 *   SEGCHECK   lar/lsl/verr/verw: their result depends on the CPL. Found,
 *           not patched by anyone yet (not emulated).
 *   IRET    iretq (48 cf), and iret/iretd (cf) in 16/32-bit code only:
 *           at CPL3 an iretq to a CPL3
 *           selector the host's GDT holds completes natively, so a guest
 *           kernel's return to user mode would never trap. On PVM hosts
 *           CPL3 runs on the host's GDT, where Linux's user selectors 0x33
 *           and 0x2b are valid: patched in shadow mode.
 *   CPUID   cpuid (0f a2): on PVM hosts a CPL3 cpuid never reaches KVM and
 *           answers with the host's own CPUID, not the guest's (which
 *           KVM offers without SMEP, SMAP, FSGSBASE...): the guest kernel
 *           would turn on CR4 bits it is not offered. Patched in shadow
 *           mode (on VMX/SVM hosts KVM would answer right, but a trap is
 *           cheap against how rarely a kernel runs cpuid).
 * cli/sti, in/out, hlt, sysret and the other privileged instructions
 * fault at CPL3 on their own and need no patch.
 *
 * Responsibilities:
 *  1. Keep a per-page result that grows with each new entry point
 *     (incremental: a later entry never changes what an earlier one found,
 *     it only adds instructions and sites).
 *  2. Recursive descent over the page: linear sweep from each start until
 *     an unconditional transfer, queueing direct in-page targets.
 *  3. Classify each reached instruction and record the sensitive ones as
 *     patch sites with their original bytes.
 *  4. Instructions that straddle into the next page: decode them with the
 *     caller's bytes of that page, or leave them pending when it is absent.
 *  5. Mark sites that cannot be patched because their first byte is also
 *     inside another reachable instruction (overlapping code).
 *  6. Find where a page's first instruction starts (scan_sync_offset).
 *  7. Keep a page's decodes between its scans (struct scan_memo), so that
 *     a rescan after the guest rewrote a few bytes decodes only those.
 *  8. Where one instruction hands control on (scan_flow_from), for a
 *     fetch that faulted inside an instruction straddling into the page.
 *  9. A guest int3 written over the first byte of an instruction stands for
 *     that whole instruction (scan_cover_int3s).
 *
 * LIMITATION: indirect jumps and calls (jump tables, function pointers,
 * returns) are not followed. Code reached only that way is scanned when it
 * first runs: while the page is still non-executable in the kernel view,
 * the fetch traps and the VMM calls scan_code_page_add_entry() with that
 * offset. But x86 has no per-byte execute permission: once the patched page
 * is executable, an indirect jump to an offset never reached before runs
 * its bytes unscanned. The VMM should therefore seed each scan with every
 * start it knows (the faulting RIP, IDT handlers, syscall entry, return
 * addresses on the stack) and see decode/patch.h for the options.
 * LIMITATION: a direct call is assumed to return (the sweep continues after
 * it); a call to a noreturn function followed by data would be swept. ud2
 * and ud1 are also swept past, because Linux resumes after them (WARN,
 * UBSAN), and so is an int3 (the padding between functions), one byte,
 * unless item 9 knows the instruction it was written over. A wrong guess
 * shows up as an overlap (item 5) at worst.
 * LIMITATION: the code mode (64/32/16-bit) is the one the page was scanned
 * in; a page run in two modes needs one result per mode.
 */
#ifndef UMBRA_DECODE_SCAN_H
#define UMBRA_DECODE_SCAN_H

#include "decode/decode.h"
#include "umbra/types.h"

#define SCAN_PAGE_SIZE	4096u
#define SCAN_INSN_MAX	15u		    /* SDM Vol. 2A §2.3.11 */
#define SCAN_NEXT_MAX	(SCAN_INSN_MAX - 1) /* bytes of the next page one instruction can use */
#define SCAN_ENTRY_NONE 0xffffu

enum scan_kind {
	SCAN_KIND_PUSHF = 0,
	SCAN_KIND_POPF,
	SCAN_KIND_SYSDESC,
	SCAN_KIND_SREG_READ,
	SCAN_KIND_SEGCHECK,
	SCAN_KIND_IRET,
	SCAN_KIND_CPUID,
	SCAN_NR_KINDS
};

#define SCAN_KIND_BIT(k) (1u << (k))
/* What a host with UMIP needs patched (and decode/emulate emulates). */
#define SCAN_KINDS_DEFAULT (SCAN_KIND_BIT(SCAN_KIND_PUSHF) | SCAN_KIND_BIT(SCAN_KIND_POPF))
/*
 * Not a kind: an option in the same mask. Linear sweep: a sweep does not
 * stop at an unconditional transfer but goes on (to the page end or the
 * first byte that does not decode), as a disassembler does, so the
 * functions that follow an
 * entry (reached later through function pointers, which no scan can see)
 * are scanned too. Compiled x86-64 code keeps no data in its text (jump
 * tables live in .rodata), so after ret/jmp the next byte starts padding or
 * code; a page that mixes code and data does not suit it.
 */
#define SCAN_OPT_LINEAR (1u << 31)

/* A host without UMIP: sgdt/sidt/sldt/str/smsw too. */
#define SCAN_KINDS_NO_UMIP (SCAN_KINDS_DEFAULT | SCAN_KIND_BIT(SCAN_KIND_SYSDESC))

/*
 * What shadow mode patches in guest kernel code (vmm/shadow_mode.c, and
 * what `make bench-scan` measures): pushf/popf; reads of CS/SS, which at
 * real CPL3 show the real selectors (on PVM hosts the host's own 0x33 and
 * 0x2b), not the guest's ring-0 ones; and iretq, which on PVM hosts
 * completes natively when it returns to selectors the host's GDT holds
 * (Linux's user CS/SS are the host's), so the virtual CPL and the view
 * would never change; and cpuid, which PVM hosts answer from the host's
 * CPUID. With the linear sweep.
 */
#define SCAN_KINDS_SHADOW                                                                          \
	(SCAN_KINDS_DEFAULT | SCAN_KIND_BIT(SCAN_KIND_SREG_READ) | SCAN_KIND_BIT(SCAN_KIND_IRET) | \
	 SCAN_KIND_BIT(SCAN_KIND_CPUID) | SCAN_OPT_LINEAR)

/*
 * What shadow mode scans code in `mode` with: SCAN_KINDS_SHADOW, but the
 * linear sweep only in 64-bit code. Its premise, no data in the text, was
 * checked on Debian's x86-64 kernel; 32-bit code breaks it where it
 * matters: Linux's 32-bit decompressor runs from the page that ends its
 * compressed payload, and a sweep there put int3s into the payload, which
 * then failed its CRC ("XZ-compressed data is corrupt", session 34). A
 * patch in data is seen by the guest's reads (decode/patch.h). Outside
 * 64-bit code only what control flow reaches from an entry is scanned, and
 * the VMM guesses no boundary from the page before (vmm/code_scan.c).
 */
static inline u32 scan_kinds_shadow(enum decode_mode mode)
{
	return mode == DECODE_64 ? SCAN_KINDS_SHADOW : SCAN_KINDS_SHADOW & ~SCAN_OPT_LINEAR;
}

/* One sensitive instruction: the patch goes on its first byte, off. */
struct scan_site {
	u16 off;		/* offset in the page of the instruction's first byte */
	u8 len;			/* 1..15; off + len may pass the page end (item 4) */
	u8 kind;		/* enum scan_kind */
	bool conflict;		/* item 5: byte off is inside another reachable, unpatched insn */
	u8 orig[SCAN_INSN_MAX]; /* the original instruction bytes, len of them */
};

/*
 * Everything known about one page. Build it with scan_result_init(), grow
 * it with scan_code_page_add_entry(), free it with scan_result_free().
 *
 * Invariants:
 *  - insn_len[o] != 0 iff an instruction starting at offset o was reached
 *    from an entry; it is that instruction's length.
 *  - For every recorded instruction, its fall-through successor (unless it
 *    is an unconditional transfer) and its direct in-page targets are
 *    recorded too, or lie past the page end, or did not decode.
 *  - sites[] is sorted by off, one per recorded sensitive instruction whose
 *    kind is in `kinds`.
 */
struct scan_result {
	gva_t gva; /* the page's first byte (page-aligned) */
	enum decode_mode mode;
	u32 kinds; /* SCAN_KIND_BIT mask of what is recorded as a site */
	u8 insn_len[SCAN_PAGE_SIZE];
	/*
	 * Bit o: a direct jump, branch or call in the page goes to offset o,
	 * so code arrives there other than by falling through (a rewrite must
	 * not cover it). Entries are not counted: the VMM makes one of every
	 * RIP it resumes at, the end of an emulated instruction included.
	 */
	u8 targets[SCAN_PAGE_SIZE / 8];
	/*
	 * Item 9, an input: int3_len[o] > 1 says that an int3 at o stands for
	 * an instruction of that many bytes (scan_result_cover_int3).
	 */
	u8 int3_len[SCAN_PAGE_SIZE];
	struct scan_site *sites;
	unsigned nsites, cap;
	unsigned ninsns;     /* recorded instructions */
	unsigned ndecodes;   /* instructions capstone decoded (not int3/nop, not from a memo) */
	unsigned nmemo;	     /* instructions taken from a scan memo instead (item 7) */
	unsigned nconflicts; /* sites with conflict set */
	unsigned next_used;  /* bytes of the next page read by recorded instructions */
	/*
	 * The first offset whose instruction ran past the page end when the
	 * next page's bytes were not given (SCAN_ENTRY_NONE if none). The VMM
	 * re-adds it as an entry once the next page is mapped.
	 */
	u16 pending_straddle;
	unsigned ninvalid; /* reached offsets whose bytes are not an instruction */
	/*
	 * Where recorded code leaves the page for another one: direct jump and
	 * call targets outside it, and the fall-through past its end (linear
	 * addresses, each once). The VMM makes them scan entries of their own
	 * pages, so code reached across pages is scanned before it runs.
	 */
	u64 *exits;
	unsigned nexits, exits_cap;
};

/*
 * What the instructions recorded in `res` (of `page`) do with FS's base:
 * SCAN_FS_PREFIX, one has an FS segment prefix (0x64) among its prefixes
 * and, as capstone decodes it, a memory operand FS addresses;
 * SCAN_FS_BASE_INSN, one is rdfsbase or wrfsbase. Bytes past the page's end
 * come from `next` (the next page's; with `next` NULL, an instruction whose
 * prefixes run into it counts as the first). Code that could
 * read or write FS's base without a trap, which the VMM may
 * keep from the real register until its next trap while no code it has
 * scanned could (vmm/monitor.h, MON_CALL_WRMSR).
 */
#define SCAN_FS_PREFIX	  1u
#define SCAN_FS_BASE_INSN 2u
unsigned scan_fs_uses(const struct scan_result *res, const u8 *page, const u8 *next);

/* Item 1. Start an empty result. `page_gva` must be page-aligned. */
void scan_result_init(struct scan_result *res, gva_t page_gva, enum decode_mode mode, u32 kinds);
void scan_result_free(struct scan_result *res);

/*
 * Item 9. Linux writes int3 over the first byte of an instruction in two
 * places, and both resume after the whole instruction, never one byte on:
 *  - text_poke_bp (ftrace, static calls, jump labels, optprobes) rewrites a
 *    live instruction in three steps: int3 on its first byte, then the new
 *    tail, then the new first byte. Its int3 handler meanwhile emulates
 *    the new instruction (a call, jmp or nop: on at its end or target).
 *  - kprobes leaves int3 on the probed instruction's first byte and runs a
 *    copy of the instruction elsewhere, then goes on after it.
 * The bytes behind such an int3 are the tail of the old instruction or,
 * during text_poke_bp, half of the new one: not code. A sweep that went on
 * one byte past the int3 would decode them, and might find a pushf in a
 * call's displacement and patch it: the guest then reads back 0xcc where it
 * wrote something else (text_poke's check: a BUG in the guest).
 *
 * So: declare, before the first scan_code_page_add_entry() on `res`, that
 * an int3 at `off` stands for an instruction of `len` bytes (2..15). A sweep
 * that meets byte 0xcc there records one instruction of `len` bytes, not a
 * site, and goes on after it; a byte other than 0xcc there is decoded as
 * usual. False if `off` or `len` is out of range.
 *
 * Which int3s: scan_cover_int3s() below. Elsewhere an int3 is one byte, as
 * padding is, and the bytes after it are swept.
 */
bool scan_result_cover_int3(struct scan_result *res, unsigned off, unsigned len);

/*
 * Item 9. Declare on `res` the int3s of `page` (its 4096 bytes now) that
 * cover an instruction, from the page's previous scan: its insn_len
 * (`old_len`) and the bytes it scanned (`old`), both kept by the caller
 * (vmm/insn_starts.h). An int3 at o covers the instruction of old_len[o]
 * >= 2 bytes that started there when the SCAN_COVER_CONTEXT bytes before
 * the int3 and after that instruction (those in the page) are as they were,
 * or are int3s where instructions started: Linux rewrote that one
 * instruction, in place, its first byte first. An int3 that was covering
 * one already stays covered (the previous scan swept it as that
 * instruction). Returns how many were declared.
 *
 * Why the bytes around: the int3 padding of a rewrite may fall where the
 * previous scan had an instruction start, and that start may itself have
 * been a decode out of step. Linux rewrites `jmp __x86_return_thunk` to
 * `ret; int3; int3; int3; int3` at boot (retpolines and static calls
 * likewise end in int3s); a scan that had met the jmp's displacement out of
 * step, with an "instruction" at its last byte, would have the new int3
 * there swept as that instruction, and the sweep go on out of step after
 * it. There the bytes before the int3 changed with it. A frame the guest
 * freed and filled with other code (init text, then a BPF program or a
 * module) keeps its history too; the bytes around its new int3 padding
 * differ from the old ones. The caller keeps no history from a scan that
 * may have seen a rewrite half done (vmm/shadow_emu.c, unpatch_frame:
 * memcpy rewriting its own page, seen on the rig).
 */
#define SCAN_COVER_CONTEXT 4u
unsigned scan_cover_int3s(struct scan_result *res, const u8 *page, const u8 *old_len,
			  const u8 *old);

/*
 * Items 1-5. Scan the page from `nentries` entry offsets (each < 4096) and
 * add what is found to `res`.
 *
 * `page` is the page's 4096 *original* bytes (never the patched copy);
 * `next`, `next_len` (0..15, `next` may be NULL when 0) the first bytes of
 * the following page if it is mapped. The bytes must be those of every
 * earlier call on `res`: a page the guest rewrote is scanned into a fresh
 * result.
 *
 * Returns the number of new sites (>= 0), or -ENOMEM / -EIO (capstone could
 * not be set up) / -EINVAL (an entry outside the page). On error `res` holds
 * what was found before the failure and stays usable.
 */
int scan_code_page_add_entry(struct scan_result *res, const u8 *page, const u8 *next,
			     unsigned next_len, const u16 *entries, unsigned nentries) __must_check;

/*
 * Item 7. A page's decodes, kept between its scans.
 *
 * Why: Linux rewrites its own text while it runs (alternatives, jump
 * labels, static calls, ftrace), and shadow mode scans a frame from
 * scratch again once the guest wrote it. About half of a Linux boot's
 * ~3000 scans follow such a write, most of a few bytes, and each full scan
 * is a capstone decode of every instruction in the page.
 *
 * What capstone says about offset o (length, kind, where control goes)
 * depends only on the bytes [o, o + SCAN_MEMO_WINDOW) that exist, the
 * page's address and the mode. A memo keeps each decode with the bytes it
 * came from; a scan given the memo compares the page with those bytes,
 * forgets the decodes whose window changed, and takes the others as they
 * are. Exact by construction: nothing is trusted from the caller about
 * what changed, and the result is the one a scan without the memo gives
 * (test_scan and `make bench-scan` check that), given the same int3 covers
 * (item 9: inputs, declared on the result).
 *
 * A memo is keyed by the page's address and mode: a scan with others
 * starts it afresh. One memo serves one page at a time.
 */
#define SCAN_MEMO_WINDOW (SCAN_INSN_MAX + 1) /* one byte of margin past the longest insn */

struct scan_memo;

/* A new empty memo (about 40 KiB), or NULL without memory. */
struct scan_memo *scan_memo_new(void);
void scan_memo_free(struct scan_memo *memo);

/*
 * scan_code_page_add_entry() with a memo (NULL: none). Same result; the
 * memo ends up holding every decode the call made or kept, and the bytes
 * they came from.
 */
int scan_code_page_add_entry_memo(struct scan_result *res, const u8 *page, const u8 *next,
				  unsigned next_len, const u16 *entries, unsigned nentries,
				  struct scan_memo *memo) __must_check;

/*
 * Convenience for the first scan of a page: init + add_entry with one entry.
 * On error `res` is freed (empty) again.
 */
int scan_code_page(struct scan_result *res, const u8 *page, const u8 *next, unsigned next_len,
		   gva_t page_gva, enum decode_mode mode, u32 kinds, u16 entry) __must_check;

/* Is offset `off` the start of an instruction reached so far? */
static inline bool scan_is_insn_start(const struct scan_result *res, unsigned off)
{
	return off < SCAN_PAGE_SIZE && res->insn_len[off] != 0;
}

/* Is `off` the target of a direct transfer in the page (struct scan_result's targets)? */
static inline bool scan_is_target(const struct scan_result *res, unsigned off)
{
	return off < SCAN_PAGE_SIZE && (res->targets[off / 8] & (1u << (off % 8)));
}

/* The site at offset `off`, or NULL. */
const struct scan_site *scan_find_site(const struct scan_result *res, unsigned off);

/*
 * Item 6. The offset (0..14) in a page where its first instruction starts,
 * judged from the `tail_len` (<= SCAN_SYNC_TAIL) bytes that precede the
 * page and the page's first `head_len` (<= SCAN_SYNC_HEAD) bytes: the
 * boundary most decodings started in the tail agree on, if at least 60% of
 * them do; else -1. The VMM uses it as a scan entry so a linear sweep
 * covers the page's start.
 *
 * The VMM asks with both at their largest (vmm/code_scan.c), and so do
 * scan-ahead, whose memo must see the same question to answer the real
 * scan (vmm/scan_ahead.c), and `make bench-scan`.
 */
#define SCAN_SYNC_TAIL 64u
#define SCAN_SYNC_HEAD (2 * SCAN_INSN_MAX)

int scan_sync_offset(const u8 *tail, unsigned tail_len, const u8 *head, unsigned head_len,
		     enum decode_mode mode);

/*
 * scan_sync_offset(), remembered in `memo` (item 7; NULL: none): the same
 * answer, computed again only when the bytes or the mode differ from the
 * memo's last call.
 */
int scan_sync_offset_memo(struct scan_memo *memo, const u8 *tail, unsigned tail_len, const u8 *head,
			  unsigned head_len, enum decode_mode mode);

/*
 * Item 8. Where the instruction at `ip` (bytes `code[0..len)`) hands
 * control on: its fall-through unless it is an unconditional transfer, then
 * its direct target. Fills `to` with up to two addresses and returns how
 * many (0 if the bytes do not decode).
 *
 * Why: a fetch fault from an instruction that begins on one page and
 * straddles into the next reports the next page's first byte as CR2, a
 * byte *inside* the instruction. A sweep from there decodes the
 * instruction's tail (immediates, displacements) as code, records
 * instructions that are not there, and may patch bytes of the real one.
 * The page's entries are where that instruction goes on.
 */
unsigned scan_flow_from(const u8 *code, unsigned len, u64 ip, enum decode_mode mode, u64 to[2]);

/* "pushf", "popf", ... for statistics and messages. */
const char *scan_kind_name(enum scan_kind kind);

#endif /* UMBRA_DECODE_SCAN_H */
