// SPDX-License-Identifier: MIT
/*
 * Scanning one page of guest kernel code for the sensitive instructions x86
 * does not trap (decode/scan.h; the idea is VirtualBox raw mode's CSAM).
 *
 * 1. Start, free and query a per-page result.
 * 2. Recursive descent: a work list of entry offsets; from each, a linear
 *    sweep that stops at an unconditional transfer, at the page end, at an
 *    offset already swept, or at bytes that do not decode. Direct in-page
 *    targets of jumps, branches and calls join the work list.
 * 3. Classify each instruction (capstone's id and operands) and record the
 *    sensitive ones as sites, sorted by offset, with their original bytes.
 * 4. The page end: the decoder sees the page followed by the caller's bytes
 *    of the next page, so an instruction that straddles decodes whole; if
 *    those bytes are missing its offset is remembered as pending_straddle.
 * 5. After each scan, mark the sites whose patch byte would land inside
 *    another reachable instruction that is not patched itself.
 * 6. scan_sync_offset: where a page's first instruction starts.
 * 7. The scan memo: each offset's decode kept with the bytes it came from,
 *    so that a rescan decodes only where those bytes changed.
 * 8. scan_flow_from: where one instruction hands control on.
 * 9. int3 covers: an int3 the guest wrote over an instruction's first byte
 *    is swept as that instruction.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decode/scan.h"

/* Item 7. What one offset decoded to, when a memo holds it. */
struct memo_entry {
	s32 delta; /* MEMO_TARGET: the direct target minus the instruction's address */
	u8 len;	   /* 0 with MEMO_INVALID */
	s8 kind;   /* classify()'s answer, before the kinds mask */
	u8 flags;
	u8 pad;
};

#define MEMO_DECODED (1u << 0) /* the entry holds this offset's decode */
#define MEMO_INVALID (1u << 1) /* ... and capstone refused the bytes */
#define MEMO_STOP    (1u << 2) /* control_flow() said FLOW_STOP */
#define MEMO_TARGET  (1u << 3) /* ... and gave a direct target */

struct scan_memo {
	/* Key: decodes depend on the address (targets) and the mode. */
	bool keyed;
	gva_t gva;
	enum decode_mode mode;
	/* The bytes the entries were decoded from: the page, then the next page's. */
	u8 buf[SCAN_PAGE_SIZE + SCAN_INSN_MAX];
	unsigned buf_len;
	struct memo_entry e[SCAN_PAGE_SIZE];
	/* The last scan_sync_offset_memo() call and its answer. */
	bool sync_valid;
	enum decode_mode sync_mode;
	unsigned sync_tail_len, sync_head_len;
	u8 sync_in[SCAN_SYNC_TAIL + SCAN_SYNC_HEAD];
	int sync_out;
};

/* The scratch state of one scan_code_page_add_entry() call. */
struct sweep {
	csh cs;
	cs_insn *insn;
	struct scan_memo *memo;			/* NULL: decode everything */
	u8 buf[SCAN_PAGE_SIZE + SCAN_INSN_MAX]; /* the page, then the next page's bytes */
	unsigned buf_len;
	u16 work[SCAN_PAGE_SIZE]; /* each offset is queued at most once per call */
	unsigned nwork;
	u8 queued[SCAN_PAGE_SIZE / 8];
	unsigned new_sites;
};

enum flow { FLOW_NEXT, FLOW_STOP };

/* Item 1. */
void scan_result_init(struct scan_result *res, gva_t page_gva, enum decode_mode mode, u32 kinds)
{
	memset(res, 0, sizeof(*res));
	res->gva = page_gva;
	res->mode = mode;
	res->kinds = kinds;
	res->pending_straddle = SCAN_ENTRY_NONE;
}

/* Item 1. */
void scan_result_free(struct scan_result *res)
{
	free(res->sites);
	free(res->exits);
	scan_result_init(res, res->gva, res->mode, res->kinds);
}

/* Item 9. */
bool scan_result_cover_int3(struct scan_result *res, unsigned off, unsigned len)
{
	if (off >= SCAN_PAGE_SIZE || len < 2 || len > SCAN_INSN_MAX)
		return false;
	res->int3_len[off] = (u8)len;
	return true;
}

/*
 * Item 9. Are bytes [from, to) of the page as they were, or int3s where
 * instructions started (another probe, another text_poke_bp site)?
 */
static bool unchanged(const u8 *page, const u8 *old_len, const u8 *old, unsigned from, unsigned to)
{
	for (unsigned p = from; p < MIN(to, SCAN_PAGE_SIZE); p++)
		if (page[p] != old[p] && !(page[p] == 0xcc && old_len[p]))
			return false;
	return true;
}

/* Item 9. */
unsigned scan_cover_int3s(struct scan_result *res, const u8 *page, const u8 *old_len, const u8 *old)
{
	unsigned n = 0;

	for (unsigned o = 0; o < SCAN_PAGE_SIZE; o++)
		n += page[o] == 0xcc && old_len[o] >= 2 &&
		     unchanged(page, old_len, old,
			       o > SCAN_COVER_CONTEXT ? o - SCAN_COVER_CONTEXT : 0, o) &&
		     unchanged(page, old_len, old, o + old_len[o],
			       o + old_len[o] + SCAN_COVER_CONTEXT) &&
		     scan_result_cover_int3(res, o, old_len[o]);
	return n;
}

/* Item 1. Sites are sorted by offset: binary search. */
const struct scan_site *scan_find_site(const struct scan_result *res, unsigned off)
{
	unsigned lo = 0, hi = res->nsites;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (res->sites[mid].off == off)
			return &res->sites[mid];
		if (res->sites[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *scan_kind_name(enum scan_kind kind)
{
	static const char *const names[SCAN_NR_KINDS] = {
		[SCAN_KIND_PUSHF] = "pushf",	   [SCAN_KIND_POPF] = "popf",
		[SCAN_KIND_SYSDESC] = "sysdesc",   [SCAN_KIND_SREG_READ] = "sreg-read",
		[SCAN_KIND_SEGCHECK] = "segcheck", [SCAN_KIND_IRET] = "iret",
		[SCAN_KIND_CPUID] = "cpuid",
	};

	return (unsigned)kind < SCAN_NR_KINDS ? names[kind] : "?";
}

/* Item 2. Queue an in-page offset not yet swept nor queued. */
static void queue(struct sweep *s, const struct scan_result *res, u64 off)
{
	if (off >= SCAN_PAGE_SIZE || res->insn_len[off] || (s->queued[off / 8] & (1u << (off % 8))))
		return;
	s->queued[off / 8] |= (u8)(1u << (off % 8));
	s->work[s->nwork++] = (u16)off;
}

static bool in_group(const cs_insn *insn, u8 group)
{
	for (unsigned i = 0; i < insn->detail->groups_count; i++)
		if (insn->detail->groups[i] == group)
			return true;
	return false;
}

/* Item 2. Where control goes after `insn`; *target gets a direct target. */
static enum flow control_flow(const cs_insn *insn, bool *has_target, u64 *target)
{
	const cs_x86 *x = &insn->detail->x86;

	*has_target = false;
	switch (insn->id) {
	case X86_INS_RET:
	case X86_INS_RETF:
	case X86_INS_RETFQ:
	case X86_INS_IRET:
	case X86_INS_IRETD:
	case X86_INS_IRETQ:
	case X86_INS_SYSRET:
	case X86_INS_SYSEXIT:
	case X86_INS_LJMP: /* a new CS: not this page's code in the same mode */ return FLOW_STOP;
	case X86_INS_LCALL: return FLOW_NEXT;
	default: break;
	}
	if (in_group(insn, CS_GRP_JUMP) || in_group(insn, CS_GRP_CALL) ||
	    in_group(insn, CS_GRP_BRANCH_RELATIVE)) {
		if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM) {
			*has_target = true;
			*target = (u64)x->operands[0].imm;
		}
		if (insn->id == X86_INS_JMP)
			return FLOW_STOP;
	}
	return FLOW_NEXT;
}

/* Item 3. The kind of a sensitive instruction, or -1. */
static int classify(const cs_insn *insn, enum decode_mode mode)
{
	const cs_x86 *x = &insn->detail->x86;

	switch (insn->id) {
	case X86_INS_PUSHF:
	case X86_INS_PUSHFD:
	case X86_INS_PUSHFQ: return SCAN_KIND_PUSHF;
	case X86_INS_POPF:
	case X86_INS_POPFD:
	case X86_INS_POPFQ: return SCAN_KIND_POPF;
	case X86_INS_SGDT:
	case X86_INS_SIDT:
	case X86_INS_SLDT:
	case X86_INS_STR:
	case X86_INS_SMSW: return SCAN_KIND_SYSDESC;
	case X86_INS_LAR:
	case X86_INS_LSL:
	case X86_INS_VERR:
	case X86_INS_VERW: return SCAN_KIND_SEGCHECK;
	case X86_INS_IRETQ: return SCAN_KIND_IRET;
	case X86_INS_CPUID: return SCAN_KIND_CPUID;
	case X86_INS_IRET:
	case X86_INS_IRETD:
		/*
		 * 64-bit kernels return with iretq (48 cf); a lone cf there is
		 * far more often a byte of a displacement decoded out of step.
		 */
		return mode == DECODE_64 ? -1 : SCAN_KIND_IRET;
	case X86_INS_PUSH: /* push %cs / push %ss (0e, 16) */
		if (x->op_count == 1 && x->operands[0].type == X86_OP_REG &&
		    (x->operands[0].reg == X86_REG_CS || x->operands[0].reg == X86_REG_SS))
			return SCAN_KIND_SREG_READ;
		return -1;
	case X86_INS_MOV: /* mov %cs/%ss, r/m (8c /1, 8c /2) */
		if (x->op_count == 2 && x->operands[1].type == X86_OP_REG &&
		    (x->operands[1].reg == X86_REG_CS || x->operands[1].reg == X86_REG_SS))
			return SCAN_KIND_SREG_READ;
		return -1;
	default: return -1;
	}
}

/* Item 3. Insert a site, keeping sites[] sorted by offset. */
static int add_site(struct scan_result *res, struct sweep *s, unsigned off, unsigned len, int kind)
{
	unsigned i;

	if (res->nsites == res->cap) {
		unsigned cap = res->cap ? res->cap * 2 : 16;
		struct scan_site *n = realloc(res->sites, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		res->sites = n;
		res->cap = cap;
	}
	for (i = res->nsites; i > 0 && res->sites[i - 1].off > off; i--)
		res->sites[i] = res->sites[i - 1];
	memset(&res->sites[i], 0, sizeof(res->sites[i]));
	res->sites[i].off = (u16)off;
	res->sites[i].len = (u8)len;
	res->sites[i].kind = (u8)kind;
	memcpy(res->sites[i].orig, s->buf + off, len);
	res->nsites++;
	s->new_sites++;
	return 0;
}

/* Record `la`, outside the page, as an exit (scan_result.exits); -ENOMEM. */
static int add_exit(struct scan_result *res, u64 la)
{
	for (unsigned i = 0; i < res->nexits; i++)
		if (res->exits[i] == la)
			return 0;
	if (res->nexits == res->exits_cap) {
		unsigned cap = res->exits_cap ? 2 * res->exits_cap : 16;
		u64 *p = realloc(res->exits, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		res->exits = p;
		res->exits_cap = cap;
	}
	res->exits[res->nexits++] = la;
	return 0;
}

/*
 * Where the ModRM at code[at] ends, with its SIB and displacement (16-bit
 * addressing if `addr16`); 0 if that runs past `avail` or SCAN_INSN_MAX.
 */
static unsigned modrm_end(const u8 *code, unsigned at, size_t avail, bool addr16)
{
	unsigned mod, rm;

	if (at >= avail)
		return 0;
	mod = code[at] >> 6;
	rm = code[at] & 7;
	at++;
	if (mod == 3)
		;
	else if (addr16)
		at += mod == 1 ? 1 : mod == 2 || rm == 6 ? 2 : 0;
	else {
		if (rm == 4 && at < avail && mod == 0 && (code[at] & 7) == 5)
			at += 4; /* SIB with no base: disp32 */
		at += rm == 4;
		at += mod == 1 ? 1 : mod == 2 || (mod == 0 && rm == 5) ? 4 : 0;
	}
	return at <= avail && at <= SCAN_INSN_MAX ? at : 0;
}

/*
 * Item 2. The length the CPU gives the instruction capstone decoded at
 * `code` (`avail` bytes there), or 0 if that runs past them. Capstone
 * 4.0.2 makes ud1 (0f b9) and ud0 (0f ff) two bytes, but both take a ModRM
 * (Intel SDM Vol. 2B, UD): Linux resumes after a ud1 (UBSAN traps), and a
 * sweep that went on two bytes in would decode the ModRM, SIB and
 * displacement as code.
 */
static unsigned insn_size(const cs_insn *insn, const u8 *code, size_t avail, enum decode_mode mode)
{
	unsigned at = insn->size;
	bool a67;

	if ((insn->id != X86_INS_UD2B && insn->id != X86_INS_UD0) || at < 2)
		return insn->size;
	a67 = memchr(code, 0x67, at - 2) != NULL; /* among its prefixes */
	return modrm_end(code, at, avail, mode == DECODE_16 ? !a67 : mode == DECODE_32 && a67);
}

/*
 * An EVEX (AVX-512) instruction in 64-bit code: 62, three payload bytes,
 * the opcode, a ModRM with its SIB and displacement, and an imm8 for map 3
 * and map 1's 70-73, c2, c4-c6 (Intel SDM Vol. 2A, 2.7). Its length, or 0.
 * The compressed disp8 is still one byte.
 */
static unsigned evex_len(const u8 *code, size_t avail)
{
	unsigned map, end;
	u8 op;

	if (avail < 6 || code[0] != 0x62 || !(code[2] & 0x04))
		return 0;
	map = code[1] & 0x07;
	if (map < 1 || map > 3)
		return 0;
	op = code[4];
	end = modrm_end(code, 5, avail, false);
	if (end && (map == 3 || (map == 1 && ((op >= 0x70 && op <= 0x73) || op == 0xc2 ||
					      (op >= 0xc4 && op <= 0xc6)))))
		end++;
	return end <= avail && end <= SCAN_INSN_MAX ? end : 0;
}

/*
 * Item 2. Instructions capstone 4.0.2 does not decode that Linux has in its
 * text (Debian's 6.1 kernel: serialize in sync_core, rdpkru/wrpkru in
 * __switch_to and handle_mm_fault, SEV-SNP's rmpadjust/pvalidate, the
 * delay loops' monitorx/mwaitx/tpause, AMX's tilerelease): their length,
 * or 0. None is sensitive, and control goes on after each; without this a
 * sweep stopped there and left the rest of its page to other entries.
 * Linux's blake2s_compress_avx512 has ten EVEX (AVX-512) instructions
 * capstone lacks, too (evex_len).
 */
static unsigned unknown_len(const u8 *code, size_t avail, enum decode_mode mode)
{
	static const struct {
		u8 len;
		u8 bytes[5];
	} known[] = {
		{ 3, { 0x0f, 0x01, 0xe8 } },		 /* serialize */
		{ 3, { 0x0f, 0x01, 0xee } },		 /* rdpkru */
		{ 3, { 0x0f, 0x01, 0xef } },		 /* wrpkru */
		{ 3, { 0x0f, 0x01, 0xfa } },		 /* monitorx */
		{ 3, { 0x0f, 0x01, 0xfb } },		 /* mwaitx */
		{ 4, { 0xf3, 0x0f, 0x01, 0xfe } },	 /* rmpadjust */
		{ 4, { 0xf2, 0x0f, 0x01, 0xff } },	 /* pvalidate */
		{ 5, { 0xc4, 0xe2, 0x78, 0x49, 0xc0 } }, /* tilerelease */
	};

	for (unsigned i = 0; i < ARRAY_SIZE(known); i++)
		if (avail >= known[i].len && !memcmp(code, known[i].bytes, known[i].len))
			return known[i].len;
	/* tpause, umonitor, umwait: 66/f3/f2 0f ae /6 with a register operand. */
	if (avail >= 4 && (code[0] == 0x66 || code[0] == 0xf3 || code[0] == 0xf2) &&
	    code[1] == 0x0f && code[2] == 0xae && (code[3] & 0xf8) == 0xf0)
		return 4;
	return mode == DECODE_64 ? evex_len(code, avail) : 0;
}

/*
 * Item 2. The instruction at `code` (`avail` bytes, at address `addr`) as
 * the CPU reads it: capstone's decode into `insn`, its length corrected by
 * insn_size, or where capstone refuses the bytes, unknown_len's length
 * (*by_capstone false: `insn` holds nothing then). 0: not an instruction.
 * The sweep, the sync step and scan_flow_from all take lengths from here.
 */
static unsigned decode_len(csh cs, cs_insn *insn, const u8 *code, size_t avail, u64 addr,
			   enum decode_mode mode, bool *by_capstone)
{
	const u8 *p = code;
	size_t size = avail;

	*by_capstone = cs_disasm_iter(cs, &p, &size, &addr, insn);
	return *by_capstone ? insn_size(insn, code, avail, mode) : unknown_len(code, avail, mode);
}

/* One instruction as the sweep uses it (items 2 and 3). */
struct decoded {
	unsigned len;
	int kind; /* classify() */
	enum flow flow;
	bool has_target;
	u64 target;
};

/*
 * Items 2, 3 and 7. Decode the instruction at `off`: from the memo when it
 * holds this offset, else with capstone (and into the memo). False when the
 * bytes there are not an instruction.
 */
static bool decode_at(struct scan_result *res, struct sweep *s, unsigned off, struct decoded *d)
{
	struct memo_entry *m = s->memo ? &s->memo->e[off] : NULL;
	u64 addr = res->gva.v + off;
	bool by_capstone;

	if (m && (m->flags & MEMO_DECODED)) {
		res->nmemo++;
		if (m->flags & MEMO_INVALID)
			return false;
		d->len = m->len;
		d->kind = m->kind;
		d->flow = m->flags & MEMO_STOP ? FLOW_STOP : FLOW_NEXT;
		d->has_target = m->flags & MEMO_TARGET;
		d->target = d->has_target ? addr + (u64)(s64)m->delta : 0;
		return true;
	}
	res->ndecodes++;
	d->target = 0;
	d->len = decode_len(s->cs, s->insn, s->buf + off, s->buf_len - off, addr, res->mode,
			    &by_capstone);
	if (by_capstone) {
		d->kind = classify(s->insn, res->mode);
		d->flow = control_flow(s->insn, &d->has_target, &d->target);
	} else {
		d->kind = -1;
		d->flow = FLOW_NEXT;
		d->has_target = false;
	}
	if (!d->len) {
		if (m)
			*m = (struct memo_entry){ .flags = MEMO_DECODED | MEMO_INVALID };
		return false;
	}
	if (m) {
		s64 delta = (s64)(d->target - (res->gva.v + off));

		/* A target too far to keep in 32 bits (not seen in practice) is not memoised. */
		if (!d->has_target || (delta >= INT32_MIN && delta <= INT32_MAX))
			*m = (struct memo_entry){
				.delta = d->has_target ? (s32)delta : 0,
				.len = (u8)d->len,
				.kind = (s8)d->kind,
				.flags =
					(u8)(MEMO_DECODED | (d->flow == FLOW_STOP ? MEMO_STOP : 0) |
					     (d->has_target ? MEMO_TARGET : 0)),
			};
	}
	return true;
}

/* Items 2-4. Linear sweep from `off` until the flow stops. */
static int sweep_from(struct scan_result *res, struct sweep *s, unsigned off)
{
	u64 wrap = res->mode == DECODE_64   ? ~0ull
		   : res->mode == DECODE_32 ? 0xffffffffull
					    : 0xffffull;

	while (off < SCAN_PAGE_SIZE && !res->insn_len[off]) {
		const u8 *code = s->buf + off;
		struct decoded d;
		unsigned len;
		int r;

		/*
		 * Fast path, exact: at an instruction start a cc byte is int3 and a
		 * 90 byte is nop, one byte each, in every mode; neither is sensitive
		 * and both fall through (int3 too, see LIMITATION in scan.h). Linux
		 * pads between functions and after every ret/jmp with int3: in
		 * Debian's kernel text they are 61% of the instructions the sweep
		 * meets, each a capstone decode otherwise (`make bench-scan`).
		 * An int3 covering an instruction (item 9) is swept as it: the bytes
		 * behind it are not decoded, and the sweep goes on after it.
		 */
		if (code[0] == 0xcc || code[0] == 0x90) {
			len = code[0] == 0xcc && res->int3_len[off] > 1 ? res->int3_len[off] : 1;
			res->insn_len[off] = (u8)len;
			res->ninsns++;
			if (res->pending_straddle == off)
				res->pending_straddle = SCAN_ENTRY_NONE;
			off += len;
			continue;
		}
		if (!decode_at(res, s, off, &d)) {
			/* Item 4: too few bytes left may be a straddle, not garbage. */
			if (off + SCAN_INSN_MAX > s->buf_len) {
				if (res->pending_straddle == SCAN_ENTRY_NONE ||
				    off < res->pending_straddle)
					res->pending_straddle = (u16)off;
			} else {
				res->ninvalid++;
			}
			/*
			 * Even a linear sweep stops here: past bytes that are not
			 * code, the decode may be out of step with the real
			 * instructions, and a "site" found there could be a byte in
			 * the middle of one (seen: an iret inside a displacement).
			 */
			return 0;
		}
		len = d.len;
		res->insn_len[off] = (u8)len;
		res->ninsns++;
		if (off + len > SCAN_PAGE_SIZE && off + len - SCAN_PAGE_SIZE > res->next_used)
			res->next_used = off + len - SCAN_PAGE_SIZE;
		if (res->pending_straddle == off)
			res->pending_straddle = SCAN_ENTRY_NONE;

		if (d.kind >= 0 && (res->kinds & SCAN_KIND_BIT(d.kind))) {
			r = add_site(res, s, off, len, d.kind);
			if (r)
				return r;
		}
		if (d.has_target) {
			u64 t = (d.target - res->gva.v) & wrap;

			if (t >= SCAN_PAGE_SIZE && (r = add_exit(res, d.target & wrap)))
				return r;
			if (t < SCAN_PAGE_SIZE)
				res->targets[t / 8] |= (u8)(1u << (t % 8));
			queue(s, res, t);
		}
		if (d.flow == FLOW_STOP && !(res->kinds & SCAN_OPT_LINEAR))
			return 0;
		off += len;
	}
	if (off >= SCAN_PAGE_SIZE)
		return add_exit(res, (res->gva.v + off) & wrap); /* falls into the next page */
	return 0;
}

/*
 * Item 5. A site conflicts when its first byte lies strictly inside another
 * recorded instruction that is not a site: writing int3 there would change
 * that instruction when it runs from its own start. Inside another *site*
 * it is harmless, since that one never runs from the page (it traps first).
 */
static void mark_conflicts(struct scan_result *res)
{
	res->nconflicts = 0;
	for (unsigned i = 0; i < res->nsites; i++)
		res->sites[i].conflict = false;
	for (unsigned o = 0; o < SCAN_PAGE_SIZE; o++) {
		unsigned end;

		if (!res->insn_len[o] || scan_find_site(res, o))
			continue;
		end = MIN(o + res->insn_len[o], SCAN_PAGE_SIZE);
		for (unsigned b = o + 1; b < end; b++) {
			struct scan_site *site = (struct scan_site *)scan_find_site(res, b);

			if (site && !site->conflict) {
				site->conflict = true;
				res->nconflicts++;
			}
		}
	}
}

/* Item 7. Forget the decodes at offsets [from, to) of the page. */
static void memo_forget(struct scan_memo *m, long from, long to)
{
	from = MAX(from, 0L);
	to = MIN(to, (long)SCAN_PAGE_SIZE);
	for (long o = from; o < to; o++)
		m->e[o].flags = 0;
}

/*
 * Item 7. Make the memo hold only decodes still valid for the bytes in
 * `s->buf` at `res`'s address and mode, then keep those bytes. The decode
 * at o read at most bytes [o, o + SCAN_MEMO_WINDOW) of what existed, so it
 * stands if those bytes, and where the buffer ended inside them, are the
 * same.
 */
static void memo_sync(struct scan_memo *m, const struct scan_result *res, const struct sweep *s)
{
	unsigned common = MIN(m->buf_len, s->buf_len);

	if (!m->keyed || m->gva.v != res->gva.v || m->mode != res->mode) {
		memo_forget(m, 0, SCAN_PAGE_SIZE);
		m->keyed = true;
		m->gva = res->gva;
		m->mode = res->mode;
	} else {
		for (unsigned c = 0; c < common; c += 64) {
			unsigned n = MIN(64u, common - c);

			if (!memcmp(m->buf + c, s->buf + c, n))
				continue;
			for (unsigned b = c; b < c + n; b++)
				if (m->buf[b] != s->buf[b])
					memo_forget(m, (long)b - SCAN_MEMO_WINDOW + 1, (long)b + 1);
		}
		/* The buffer ends elsewhere: windows that reach the shorter end. */
		if (m->buf_len != s->buf_len)
			memo_forget(m, (long)common - SCAN_MEMO_WINDOW + 1, SCAN_PAGE_SIZE);
	}
	memcpy(m->buf, s->buf, s->buf_len);
	m->buf_len = s->buf_len;
}

struct scan_memo *scan_memo_new(void)
{
	return calloc(1, sizeof(struct scan_memo));
}

void scan_memo_free(struct scan_memo *memo)
{
	free(memo);
}

/* Items 2-5. */
int scan_code_page_add_entry(struct scan_result *res, const u8 *page, const u8 *next,
			     unsigned next_len, const u16 *entries, unsigned nentries)
{
	return scan_code_page_add_entry_memo(res, page, next, next_len, entries, nentries, NULL);
}

static const cs_mode cs_modes[] = {
	[DECODE_16] = CS_MODE_16, [DECODE_32] = CS_MODE_32, [DECODE_64] = CS_MODE_64
};

/* A capstone handle for `mode`, with operand details (which classify() reads). */
static bool open_detail(enum decode_mode mode, csh *cs)
{
	if (cs_open(CS_ARCH_X86, cs_modes[mode], cs) != CS_ERR_OK)
		return false;
	cs_option(*cs, CS_OPT_DETAIL, CS_OPT_ON);
	return true;
}

/* Items 2-5 and 7. */
int scan_code_page_add_entry_memo(struct scan_result *res, const u8 *page, const u8 *next,
				  unsigned next_len, const u16 *entries, unsigned nentries,
				  struct scan_memo *memo)
{
	struct sweep *s;
	int r = 0;

	for (unsigned i = 0; i < nentries; i++)
		if (entries[i] >= SCAN_PAGE_SIZE)
			return -EINVAL;
	if (next_len > SCAN_INSN_MAX || (next_len && !next))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (!open_detail(res->mode, &s->cs)) {
		free(s);
		return -EIO;
	}
	s->insn = cs_malloc(s->cs);
	if (!s->insn) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(s->buf, page, SCAN_PAGE_SIZE);
	if (next_len)
		memcpy(s->buf + SCAN_PAGE_SIZE, next, next_len);
	s->buf_len = SCAN_PAGE_SIZE + next_len;
	if (memo) {
		memo_sync(memo, res, s);
		s->memo = memo;
	}

	for (unsigned i = 0; i < nentries; i++)
		queue(s, res, entries[i]);
	while (s->nwork && r == 0)
		r = sweep_from(res, s, s->work[--s->nwork]);
	mark_conflicts(res);
	cs_free(s->insn, 1);
out:
	cs_close(&s->cs);
	if (r == 0)
		r = (int)s->new_sites;
	free(s);
	return r;
}

int scan_code_page(struct scan_result *res, const u8 *page, const u8 *next, unsigned next_len,
		   gva_t page_gva, enum decode_mode mode, u32 kinds, u16 entry)
{
	int r;

	scan_result_init(res, page_gva, mode, kinds);
	r = scan_code_page_add_entry(res, page, next, next_len, &entry, 1);
	if (r < 0)
		scan_result_free(res);
	return r;
}

/*
 * Item 6: where the first instruction of a page starts, from the bytes
 * before it. x86 decoding resynchronises: decoded from each of the last
 * `tail_len` bytes of the previous page on, most streams cross into the
 * page at the same boundary. The winner must carry a clear majority, so a
 * page whose predecessor holds data or a different alignment gives none.
 *
 * Each stream is followed through a table instead of being decoded from
 * its start: an instruction at offset p decodes the same whichever stream
 * reaches it (the bytes from p on are all the decoder sees), so every
 * offset is decoded once, from the end backwards, and land[p] is where the
 * stream through p first reaches the page (SYNC_NONE if it stops at bytes
 * that do not decode). That is tail_len decodes where following each
 * stream from its start took about tail_len * tail_len / 8.
 */
#define SYNC_MIN_VOTES_PCT 60
#define SYNC_NONE	   0xffffu

int scan_sync_offset(const u8 *tail, unsigned tail_len, const u8 *head, unsigned head_len,
		     enum decode_mode mode)
{
	u8 buf[SCAN_SYNC_TAIL + SCAN_SYNC_HEAD];
	u16 land[SCAN_SYNC_TAIL];
	unsigned votes[SCAN_INSN_MAX] = { 0 }, total = 0, best = 0;
	csh cs;
	cs_insn *insn;

	if (!tail_len || tail_len > SCAN_SYNC_TAIL || head_len > SCAN_SYNC_HEAD)
		return -1;
	memcpy(buf, tail, tail_len);
	memcpy(buf + tail_len, head, head_len);
	if (cs_open(CS_ARCH_X86, cs_modes[mode], &cs) != CS_ERR_OK)
		return -1;
	insn = cs_malloc(cs);
	for (unsigned p = tail_len; insn && p-- > 0;) {
		bool by_capstone;
		unsigned len = decode_len(cs, insn, buf + p, tail_len + head_len - p, p, mode,
					  &by_capstone);

		if (!len)
			land[p] = SYNC_NONE;
		else
			land[p] = p + len >= tail_len ? (u16)(p + len) : land[p + len];
	}
	for (unsigned start = 0; insn && start < tail_len; start++) {
		unsigned at = land[start];

		if (at != SYNC_NONE && at - tail_len < SCAN_INSN_MAX) {
			votes[at - tail_len]++;
			total++;
		}
	}
	if (insn)
		cs_free(insn, 1);
	cs_close(&cs);
	for (unsigned i = 1; i < SCAN_INSN_MAX; i++)
		if (votes[i] > votes[best])
			best = i;
	if (!total || votes[best] * 100 < (unsigned)SYNC_MIN_VOTES_PCT * tail_len)
		return -1;
	return (int)best;
}

/* Items 6 and 7. */
int scan_sync_offset_memo(struct scan_memo *memo, const u8 *tail, unsigned tail_len, const u8 *head,
			  unsigned head_len, enum decode_mode mode)
{
	if (!memo || !tail_len || tail_len > SCAN_SYNC_TAIL || head_len > SCAN_SYNC_HEAD)
		return scan_sync_offset(tail, tail_len, head, head_len, mode);
	if (!memo->sync_valid || memo->sync_mode != mode || memo->sync_tail_len != tail_len ||
	    memo->sync_head_len != head_len || memcmp(memo->sync_in, tail, tail_len) ||
	    memcmp(memo->sync_in + tail_len, head, head_len)) {
		memo->sync_out = scan_sync_offset(tail, tail_len, head, head_len, mode);
		memo->sync_mode = mode;
		memo->sync_tail_len = tail_len;
		memo->sync_head_len = head_len;
		memcpy(memo->sync_in, tail, tail_len);
		memcpy(memo->sync_in + tail_len, head, head_len);
		memo->sync_valid = true;
	}
	return memo->sync_out;
}

/* After the sweep: what it recorded that uses FS's base (decode/scan.h). */
/*
 * Byte `b` of `page` and, past its end, of `next` (NULL: not known); -1 if
 * not known.
 */
static int code_byte(const u8 *page, const u8 *next, unsigned b)
{
	if (b < SCAN_PAGE_SIZE)
		return page[b];
	return next && b < 2 * SCAN_PAGE_SIZE ? next[b - SCAN_PAGE_SIZE] : -1;
}

/*
 * Is the instruction whose opcode is at `at` (with an f3 prefix if `f3`)
 * rdfsbase or wrfsbase: f3 [REX.W] 0f ae /0 or /2, ModRM mod 3 (SDM Vol. 2B
 * RDFSBASE/WRFSBASE)? A byte not known counts as one that makes it so.
 */
static bool is_fsbase_insn(const u8 *page, const u8 *next, unsigned at, bool f3)
{
	int op = code_byte(page, next, at), op2 = code_byte(page, next, at + 1),
	    modrm = code_byte(page, next, at + 2);

	if (!f3 || (op >= 0 && op != 0x0f) || (op2 >= 0 && op2 != 0xae))
		return false;
	return modrm < 0 ||
	       ((modrm >> 6) == 3 && (((modrm >> 3) & 7) == 0 || ((modrm >> 3) & 7) == 2));
}

/*
 * Does the instruction at `off`, which has an FS prefix, address memory
 * through FS? Its operands as capstone gives them: a memory operand with
 * FS as its segment (a string instruction's source, too). One that is not
 * an instruction raises #UD before any access; one whose bytes run into
 * what is not known counts as one that does.
 */
static bool fs_operand(csh cs, cs_insn *insn, const u8 *page, const u8 *next, unsigned off)
{
	u8 buf[SCAN_INSN_MAX];
	unsigned n = 0;
	const u8 *code = buf;
	size_t size;
	u64 addr = off;
	int b;

	while (n < SCAN_INSN_MAX && (b = code_byte(page, next, off + n)) >= 0)
		buf[n++] = (u8)b;
	size = n;
	if (!cs_disasm_iter(cs, &code, &size, &addr, insn))
		return n < SCAN_INSN_MAX;
	for (unsigned i = 0; i < insn->detail->x86.op_count; i++) {
		const cs_x86_op *op = &insn->detail->x86.operands[i];

		if (op->type == X86_OP_MEM && op->mem.segment == X86_REG_FS)
			return true;
	}
	return false;
}

unsigned scan_fs_uses(const struct scan_result *res, const u8 *page, const u8 *next)
{
	unsigned uses = 0;
	csh cs = 0;
	cs_insn *insn = NULL;

	for (unsigned off = 0; off < SCAN_PAGE_SIZE; off++) {
		bool f3 = false;

		if (!scan_is_insn_start(res, off))
			continue;
		for (unsigned b = off; b < off + 15; b++) {
			int p = code_byte(page, next, b);

			if (p < 0) {
				uses |= SCAN_FS_PREFIX;
				break;
			}
			if (p == 0x64) {
				/* Without a decoder to ask, the prefix counts. */
				if (!insn && open_detail(res->mode, &cs))
					insn = cs_malloc(cs);
				if (!insn || fs_operand(cs, insn, page, next, off))
					uses |= SCAN_FS_PREFIX;
				break;
			}
			f3 |= p == 0xf3;
			if (p != 0x26 && p != 0x2e && p != 0x36 && p != 0x3e && p != 0x65 &&
			    p != 0x66 && p != 0x67 && p != 0xf0 && p != 0xf2 && p != 0xf3 &&
			    !(res->mode == DECODE_64 && (p & 0xf0) == 0x40)) {
				if (is_fsbase_insn(page, next, b, f3))
					uses |= SCAN_FS_BASE_INSN;
				break; /* the opcode */
			}
		}
	}
	if (insn)
		cs_free(insn, 1);
	if (cs)
		cs_close(&cs);
	return uses;
}

/* Item 8. */
unsigned scan_flow_from(const u8 *code, unsigned len, u64 ip, enum decode_mode mode, u64 to[2])
{
	csh cs;
	cs_insn *insn;
	u64 target;
	bool by_capstone, has_target = false;
	unsigned n = 0, ilen;

	if (!open_detail(mode, &cs))
		return 0;
	insn = cs_malloc(cs);
	if (insn &&
	    (ilen = decode_len(cs, insn, code, MIN(len, SCAN_INSN_MAX), ip, mode, &by_capstone))) {
		/* What capstone does not know is never a transfer (unknown_len). */
		if (!by_capstone || control_flow(insn, &has_target, &target) == FLOW_NEXT)
			to[n++] = ip + ilen;
		if (has_target)
			to[n++] = target;
	}
	if (insn)
		cs_free(insn, 1);
	cs_close(&cs);
	return n;
}
