// SPDX-License-Identifier: MIT
/*
 * The shadow-mode emulator against the host CPU.
 *
 * Shadow mode emulates every guest store that lands on a write-protected
 * page table, and every instruction a trap chain bridges
 * (decode/emulate_mem.c). A wrong flag, width, address or byte there does
 * not stop the guest: it corrupts it quietly. So this test runs seeded
 * random instructions of that set twice, from the same registers, flags
 * and memory:
 *
 *   - natively, at CPL3 in this process (tests/unit/native_run.h), on a
 *     two-page buffer with a guard page on either side;
 *   - in the emulator, on the fixture of emu_env.h, whose page tables map
 *     the buffer's two pages and the code page at the same linear
 *     addresses (their bytes copied into guest RAM), at virtual CPL0 or CPL3.
 *
 * The instructions come from the templates below: mov in its memory forms
 * and movabs, movs and stos (with rep, either direction, overlapping
 * buffers), xchg, cmpxchg, cmpxchg8b/16b, the arithmetic and logic group
 * on memory with register and immediate sources, inc, dec, neg, not, xadd,
 * bt/bts/btr/btc with register and immediate offsets, push, pop, pushf and
 * popf (at CPL3), nop, and the register forms a chain bridges. Prefixes
 * (lock, 66, 67, REX, rep, segment), ModRM/SIB forms (RIP-relative and
 * no-base ones too), displacements and every register are random; address
 * registers are solved so that the operand lands in the buffer.
 *
 * What must agree:
 *   - when the CPU runs it, the emulator completes it (EMU_DONE, no event)
 *     with the same 16 registers, RIP after the instruction, the flags the
 *     SDM and the APM both define for it, and the same buffer;
 *   - when the CPU refuses it (SIGILL, SIGSEGV, SIGBUS: a lock prefix where
 *     none is allowed, a misaligned cmpxchg16b, a rep string run into the
 *     guard page on either side of the buffer), the emulator delivers the
 *     matching exception (#UD; #GP, #SS or #PF at the same CR2) with the
 *     registers the signal's context shows (a rep string's part done), but
 *     RSP (the frame) and RIP (the handler); at CPL3, where the frame is not
 *     in the buffer, the buffer must be the CPU's too (strings aside).
 * The emulator may refuse (EMU_UNKNOWN, the VM stops) only pop %rsp, which
 * it leaves to the CPU; every template must be compared often enough.
 * The instructions of the common set (movbe, cmpxchg8b/16b, popcnt,
 * clflush, prefetch), which hw mode emulates too where KVM's emulator gives
 * up, run a third time in a hw-mode fixture, under the same rules.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <asm/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "emu_env.h"
#include "native_run.h"
#include "xorshift.h"

/* EMU_NATIVE_SEED and EMU_NATIVE_ITERATIONS change them, for a longer soak. */
#define ITERATIONS 60000
#define SEED	   0xd1ff0001u
#define BUF_SIZE   (2 * PAGE_SIZE)
/* RSP sits here in both runs (give or take up to 512 bytes): pushes land in the buffer. */
#define STACK_OFF (PAGE_SIZE + 2048)

/* ---- the instructions ---------------------------------------------------------- */

enum kind {
	K_MEM,	   /* ModRM with a memory operand; ModRM.reg a register or a /digit */
	K_BT,	   /* bt family, register bit offset: the register is kept small */
	K_CX,	   /* cmpxchg8b/16b: EDX:EAX often equal to memory, 16b often aligned */
	K_MOFFS,   /* movabs with a 64-bit address */
	K_STR,	   /* movs, stos */
	K_PUSH_R,  /* push r (opcode + register) */
	K_POP_R,   /* pop r */
	K_PUSH_I,  /* push imm */
	K_REG,	   /* ModRM mod = 3: registers only */
	K_REG_IMM, /* mov r, imm (opcode + register) */
	K_ACC_IMM, /* cmp/test al/eAX, imm */
	K_NOP,	   /* 90 */
	K_FLAGS,   /* pushf, popf: at CPL3 only (at CPL0 popf may change IF and IOPL) */
};

#define ARITH_FLAGS \
	(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF | RFLAGS_DF)
#define U_LOGIC RFLAGS_AF
/* bt*: the SDM leaves OF SF AF PF undefined, and the APM ZF too. */
#define U_BT (RFLAGS_OF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF)

/* Immediates: Iz is 4 bytes, or 2 with a 66 prefix; Iv is 8 with REX.W (b8+r). */
enum imm { I_NONE, I_B, I_Z, I_V };

struct tmpl {
	const char *name;
	u8 op[3], oplen;
	s8 digit;   /* ModRM.reg: -1 a register, -2 a random /digit 0-7, -3 /4-7 */
	u8 imm;	    /* enum imm */
	u8 kind;    /* enum kind */
	bool byte;  /* 8-bit operand */
	u64 undef;  /* flags left undefined */
	bool same;  /* K_REG: the same register twice (the zeroing idiom) */
	bool group; /* the arithmetic group: logic digits (1, 4, 6) leave AF undefined */
	u8 mprefix; /* a mandatory prefix (popcnt's f3), emitted before any REX */
};

#define ALU(nm, o, u)                                                                 \
	{ nm " m8,r8", { o }, 1, -1, I_NONE, K_MEM, true, u, false, false, 0 },       \
	{                                                                             \
		nm " m,r", { o + 1 }, 1, -1, I_NONE, K_MEM, false, u, false, false, 0 \
	}

static const struct tmpl tmpls[] = {
	ALU("add", 0x00, 0),
	ALU("or", 0x08, U_LOGIC),
	ALU("adc", 0x10, 0),
	ALU("sbb", 0x18, 0),
	ALU("and", 0x20, U_LOGIC),
	ALU("sub", 0x28, 0),
	ALU("xor", 0x30, U_LOGIC),
	ALU("cmp", 0x38, 0),
	ALU("test", 0x84, U_LOGIC),
	ALU("xchg", 0x86, 0),
	ALU("mov", 0x88, 0),
	{ "mov r8,m8", { 0x8a }, 1, -1, I_NONE, K_MEM, true, 0, false, false, 0 },
	{ "mov r,m", { 0x8b }, 1, -1, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "cmp r8,m8", { 0x3a }, 1, -1, I_NONE, K_MEM, true, 0, false, false, 0 },
	{ "cmp r,m", { 0x3b }, 1, -1, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "grp1 m8,ib", { 0x80 }, 1, -2, I_B, K_MEM, true, 0, false, true, 0 },
	{ "grp1 m,iz", { 0x81 }, 1, -2, I_Z, K_MEM, false, 0, false, true, 0 },
	{ "grp1 m,ib", { 0x83 }, 1, -2, I_B, K_MEM, false, 0, false, true, 0 },
	{ "mov m8,ib", { 0xc6 }, 1, 0, I_B, K_MEM, true, 0, false, false, 0 },
	{ "mov m,iz", { 0xc7 }, 1, 0, I_Z, K_MEM, false, 0, false, false, 0 },
	{ "test m8,ib", { 0xf6 }, 1, 0, I_B, K_MEM, true, U_LOGIC, false, false, 0 },
	{ "test m,iz", { 0xf7 }, 1, 0, I_Z, K_MEM, false, U_LOGIC, false, false, 0 },
	{ "not m8", { 0xf6 }, 1, 2, I_NONE, K_MEM, true, 0, false, false, 0 },
	{ "not m", { 0xf7 }, 1, 2, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "neg m8", { 0xf6 }, 1, 3, I_NONE, K_MEM, true, 0, false, false, 0 },
	{ "neg m", { 0xf7 }, 1, 3, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "inc m8", { 0xfe }, 1, 0, I_NONE, K_MEM, true, 0, false, false, 0 },
	{ "dec m8", { 0xfe }, 1, 1, I_NONE, K_MEM, true, 0, false, false, 0 },
	{ "inc m", { 0xff }, 1, 0, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "dec m", { 0xff }, 1, 1, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "cmpxchg m8,r8", { 0x0f, 0xb0 }, 2, -1, I_NONE, K_MEM, true, 0, false, false, 0 },
	{ "cmpxchg m,r", { 0x0f, 0xb1 }, 2, -1, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "xadd m8,r8", { 0x0f, 0xc0 }, 2, -1, I_NONE, K_MEM, true, 0, false, false, 0 },
	{ "xadd m,r", { 0x0f, 0xc1 }, 2, -1, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "bt m,r", { 0x0f, 0xa3 }, 2, -1, I_NONE, K_BT, false, U_BT, false, false, 0 },
	{ "bts m,r", { 0x0f, 0xab }, 2, -1, I_NONE, K_BT, false, U_BT, false, false, 0 },
	{ "btr m,r", { 0x0f, 0xb3 }, 2, -1, I_NONE, K_BT, false, U_BT, false, false, 0 },
	{ "btc m,r", { 0x0f, 0xbb }, 2, -1, I_NONE, K_BT, false, U_BT, false, false, 0 },
	{ "bt* m,ib", { 0x0f, 0xba }, 2, -3, I_B, K_MEM, false, U_BT, false, false, 0 },
	{ "cmpxchg8b/16b", { 0x0f, 0xc7 }, 2, 1, I_NONE, K_CX, false, 0, false, false, 0 },
	{ "nopl m", { 0x0f, 0x1f }, 2, 0, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "movbe r,m", { 0x0f, 0x38, 0xf0 }, 3, -1, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "movbe m,r", { 0x0f, 0x38, 0xf1 }, 3, -1, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "mov al,moffs", { 0xa0 }, 1, 0, I_NONE, K_MOFFS, true, 0, false, false, 0 },
	{ "mov eax,moffs", { 0xa1 }, 1, 0, I_NONE, K_MOFFS, false, 0, false, false, 0 },
	{ "mov moffs,al", { 0xa2 }, 1, 0, I_NONE, K_MOFFS, true, 0, false, false, 0 },
	{ "mov moffs,eax", { 0xa3 }, 1, 0, I_NONE, K_MOFFS, false, 0, false, false, 0 },
	{ "movsb", { 0xa4 }, 1, 0, I_NONE, K_STR, true, 0, false, false, 0 },
	{ "movs", { 0xa5 }, 1, 0, I_NONE, K_STR, false, 0, false, false, 0 },
	{ "stosb", { 0xaa }, 1, 0, I_NONE, K_STR, true, 0, false, false, 0 },
	{ "stos", { 0xab }, 1, 0, I_NONE, K_STR, false, 0, false, false, 0 },
	{ "push r", { 0x50 }, 1, 0, I_NONE, K_PUSH_R, false, 0, false, false, 0 },
	{ "pop r", { 0x58 }, 1, 0, I_NONE, K_POP_R, false, 0, false, false, 0 },
	{ "push ib", { 0x6a }, 1, 0, I_B, K_PUSH_I, false, 0, false, false, 0 },
	{ "push iz", { 0x68 }, 1, 0, I_Z, K_PUSH_I, false, 0, false, false, 0 },
	{ "nop", { 0x90 }, 1, 0, I_NONE, K_NOP, false, 0, false, false, 0 },
	{ "pushf", { 0x9c }, 1, 0, I_NONE, K_FLAGS, false, 0, false, false, 0 },
	{ "popf", { 0x9d }, 1, 0, I_NONE, K_FLAGS, false, 0, false, false, 0 },
	{ "xor r,r", { 0x31 }, 1, -1, I_NONE, K_REG, false, U_LOGIC, true, false, 0 },
	{ "sub r,r", { 0x29 }, 1, -1, I_NONE, K_REG, false, 0, true, false, 0 },
	{ "mov r,r", { 0x89 }, 1, -1, I_NONE, K_REG, false, 0, false, false, 0 },
	{ "mov r,r'", { 0x8b }, 1, -1, I_NONE, K_REG, false, 0, false, false, 0 },
	{ "cmp r,r", { 0x39 }, 1, -1, I_NONE, K_REG, false, 0, false, false, 0 },
	{ "cmp r8,r8", { 0x38 }, 1, -1, I_NONE, K_REG, true, 0, false, false, 0 },
	{ "test r,r", { 0x85 }, 1, -1, I_NONE, K_REG, false, U_LOGIC, false, false, 0 },
	{ "cmp r,ib", { 0x83 }, 1, 7, I_B, K_REG, false, 0, false, false, 0 },
	{ "cmp r,iz", { 0x81 }, 1, 7, I_Z, K_REG, false, 0, false, false, 0 },
	{ "test r,iz", { 0xf7 }, 1, 0, I_Z, K_REG, false, U_LOGIC, false, false, 0 },
	{ "mov r,iz", { 0xc7 }, 1, 0, I_Z, K_REG, false, 0, false, false, 0 },
	{ "mov r,iv", { 0xb8 }, 1, 0, I_V, K_REG_IMM, false, 0, false, false, 0 },
	{ "popcnt r,m", { 0x0f, 0xb8 }, 2, -1, I_NONE, K_MEM, false, 0, false, false, 0xf3 },
	{ "popcnt r,r", { 0x0f, 0xb8 }, 2, -1, I_NONE, K_REG, false, 0, false, false, 0xf3 },
	{ "clflush m", { 0x0f, 0xae }, 2, 7, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "prefetcht0 m", { 0x0f, 0x18 }, 2, 1, I_NONE, K_MEM, false, 0, false, false, 0 },
	{ "cmp eax,iz", { 0x3d }, 1, 0, I_Z, K_ACC_IMM, false, 0, false, false, 0 },
	{ "test al,ib", { 0xa8 }, 1, 0, I_B, K_ACC_IMM, true, U_LOGIC, false, false, 0 },
};
#define NR_TMPLS (sizeof(tmpls) / sizeof(tmpls[0]))

/* What became of each template's cases. */
static struct outcome {
	unsigned compared, faulted, refused;
	unsigned hw_compared; /* compared in hw mode too (the emulator's common set) */
} outcomes[NR_TMPLS];

/* One generated test case. */
struct gen {
	const struct tmpl *t;
	u8 code[EMU_MAX_INSN_LEN];
	unsigned n;
	u64 gpr[EMU_NR_GPRS];
	u64 rflags;
	u8 mem[BUF_SIZE];
	u64 undef;
	bool may_refuse;    /* a form the emulator leaves to the VMM (pop %rsp) */
	unsigned rep_limit; /* the emulator's iterations per call (0: its default) */
	bool runoff;	    /* a rep string that runs off the buffer into a guard page */
	bool cpl3;	    /* run at virtual CPL3 only */
	u64 more_flags;	    /* flags compared beyond the arithmetic ones */
	/* addressing */
	bool a32;	 /* a 67 prefix */
	u64 seg_base;	 /* FS's or GS's base, with such a prefix */
	unsigned seg_at; /* where that prefix is */
	bool rip_rel;
	unsigned disp_at;
	u64 rip_want;
};

static u64 host_fs_base, host_gs_base;
/* Compared cases per addressing form, which the test requires too. */
static unsigned n_rip_rel, n_a32, n_fs, n_runoff_faults;

static u8 *buf; /* the native buffer; the fixture maps the same addresses */

static u64 rnd64(void)
{
	return ((u64)rnd() << 32) | rnd();
}

static void put(struct gen *g, const void *p, unsigned len)
{
	memcpy(g->code + g->n, p, len);
	g->n += len;
}

static void put_imm(struct gen *g, unsigned imm, unsigned osz, bool rex_w)
{
	u64 v = rnd64();

	switch (imm) {
	case I_B: put(g, &v, 1); break;
	case I_Z: put(g, &v, osz == 2 ? 2 : 4); break;
	case I_V: put(g, &v, rex_w ? 8 : osz == 2 ? 2 : 4); break;
	default: break;
	}
}

/* A byte offset in the buffer for an operand of `size` bytes, sometimes across the page line. */
static u64 rnd_target(unsigned size)
{
	if (rnd() % 8 == 0)
		return PAGE_SIZE - 1 - rnd() % 16;
	return 640 + rnd() % (BUF_SIZE - 1280 - size);
}

/*
 * The ModRM (and SIB, displacement) of a memory operand at buffer offset
 * `target`, with `reg` in ModRM.reg, in every form: base, base + index *
 * scale, index * scale with no base, RIP-relative, disp8/disp32, 32-bit
 * addresses (a 67 prefix: the registers' upper halves are noise), with
 * a segment base. The base and index registers get the values that put it
 * there, and are marked in *pinned. A RIP-relative displacement is written
 * by finish() once the instruction's length is known.
 */
static void put_modrm_mem(struct gen *g, unsigned reg, unsigned rex, u64 target, u16 *pinned)
{
	u64 want = (u64)(uintptr_t)buf + target - g->seg_base;
	u64 amask = g->a32 ? 0xffffffffull : ~0ull;
	unsigned mod = rnd() % 3, rm = rnd() % 8, scale = 0, base = 16, index = 16;
	u64 idx_val = 0;
	u8 sib = 0;
	s64 disp;

	if (rm == 4) {
		unsigned idx3 = rnd() % 8, base3 = rnd() % 8;

		scale = rnd() % 4;
		sib = (u8)(scale << 6 | idx3 << 3 | base3);
		if (mod != 0 || base3 != 5)
			base = base3 | ((rex & 1) << 3);
		else
			mod = 2; /* no base: disp32 (only the encoding's mod is 0) */
		if (idx3 != 4 || (rex & 2))
			index = idx3 | ((rex & 2) << 2);
	} else if (mod == 0 && rm == 5) {
		g->rip_rel = true; /* disp32 from the next instruction */
	} else {
		base = rm | ((rex & 1) << 3);
	}
	if (g->seg_base && (g->rip_rel || base == 16 || base == EMU_RSP)) {
		/* A displacement alone cannot reach back from FS's base: make it DS. */
		want = (u64)(uintptr_t)buf + target;
		g->seg_base = 0;
		g->code[g->seg_at] = 0x3e;
	}
	/*
	 * RSP is fixed, and base + base << scale cannot reach every address:
	 * a disp32 takes up the difference, so the operand lands on `target`
	 * exactly, wherever the buffer is (its alignment must not depend on
	 * ASLR: cmpxchg16b).
	 */
	if (base == EMU_RSP || (index != 16 && index == base))
		mod = 2;
	disp = mod == 1 ? (s8)rnd() : mod == 2 ? (s32)rnd() : 0;
	if (index != 16 && index != base) {
		/* Small, perhaps negative; in 32-bit addressing the upper half is noise. */
		idx_val = (u64)(s64)(s8)rnd() >> (rnd() % 2 ? 0 : 60);
		g->gpr[index] = (idx_val & amask) | (g->gpr[index] & ~amask);
		*pinned |= (u16)(1u << index);
	}
	if (g->rip_rel) {
		disp = 0; /* finish() */
		g->rip_want = want;
	} else if (base == 16 || base == EMU_RSP) {
		disp = (s64)(want - (base == 16 ? 0 : g->gpr[EMU_RSP]) - (idx_val << scale));
		if (g->a32)
			disp = (s32)disp; /* the sum wraps at 4 GiB anyway */
		/* Else it must reach: a stray address would be this process's memory. */
		assert_true(disp == (s32)disp);
	} else if (index == base) {
		/* base + base << scale, and the remainder in the displacement. */
		u64 k = 1 + (1ull << scale), v = ((want - (u64)disp) & amask) / k;

		disp = (s64)((want - v * k) & amask);
		if (g->a32) {
			disp = (s32)disp; /* the sum wraps at 4 GiB */
		} else if (disp != (s32)disp) {
			v++; /* the remainder took disp32 over its top */
			disp -= (s64)k;
		}
		g->gpr[base] = v | (g->gpr[base] & ~amask);
	} else {
		g->gpr[base] =
			((want - (u64)disp - (idx_val << scale)) & amask) | (g->gpr[base] & ~amask);
	}
	if (base != 16)
		*pinned |= (u16)(1u << base);
	g->code[g->n++] =
		(u8)((g->rip_rel || (rm == 4 && base == 16) ? 0 : mod) << 6 | (reg & 7) << 3 | rm);
	if (rm == 4)
		g->code[g->n++] = sib;
	if (g->rip_rel)
		g->disp_at = g->n;
	put(g, &disp, mod == 1 ? 1 : mod == 2 || g->rip_rel ? 4 : 0);
}

/* The RIP-relative displacement, from the end of the instruction at nat_page. */
static void finish(struct gen *g)
{
	s64 disp;

	if (!g->rip_rel)
		return;
	disp = (s64)(g->rip_want - ((u64)(uintptr_t)nat_page + g->n));
	assert_true(disp == (s32)disp);
	memcpy(g->code + g->disp_at, &(s32){ (s32)disp }, 4);
}

/* A register that no address depends on. */
static unsigned free_reg(u16 pinned)
{
	unsigned r;

	do
		r = rnd() % 16;
	while (pinned & (1u << r));
	return r;
}

static void generate(struct gen *g)
{
	const struct tmpl *t = &tmpls[rnd() % NR_TMPLS];
	bool lock = rnd() % 12 == 0, o16 = rnd() % 4 == 0, rep = false;
	/* 16: none. (With REX.B, 90 is xchg r8, rax: not a nop.) */
	unsigned rex = rnd() % 2 ? rnd() % 16 & (t->kind == K_NOP ? ~1u : ~0u) : 16;
	bool rex_w = rex != 16 && (rex & 8);
	unsigned rexb = rex == 16 ? 0 : rex; /* REX.X and REX.B, for the SIB and ModRM.rm */
	unsigned osz = t->byte ? 1 : rex_w ? 8 : o16 ? 2 : 4, digit, reg, rm;
	int rex_at = -1; /* where the REX prefix is in code[], if any */
	unsigned modrm_at = 0;
	u16 pinned = 1u << EMU_RSP;

	memset(g, 0, sizeof(*g));
	g->t = t;
	for (unsigned i = 0; i < EMU_NR_GPRS; i++)
		g->gpr[i] = rnd64();
	g->gpr[EMU_RSP] = (u64)(uintptr_t)buf + STACK_OFF - 512 + 8 * (rnd() % 128) +
			  (rnd() % 8 == 0 ? rnd() % 8 : 0);
	g->rflags = RFLAGS_FIXED | RFLAGS_IF | (rnd64() & ARITH_FLAGS);
	for (unsigned i = 0; i < BUF_SIZE; i += 8) {
		u64 v = rnd() % 4 ? rnd64() : rnd() % 2 ? 0 : ~0ull;

		memcpy(g->mem + i, &v, 8);
	}
	g->undef = t->undef;

	if (lock)
		g->code[g->n++] = 0xf0;
	if (o16)
		g->code[g->n++] = 0x66;
	if (t->kind == K_STR && rnd() % 2) {
		rep = true;
		g->code[g->n++] = 0xf3;
	}
	if (t->kind <= K_STR && rnd() % 6 == 0) {
		g->a32 = true;
		g->code[g->n++] = 0x67;
	}
	if (t->kind <= K_STR && rnd() % 6 == 0) {
		static const u8 segs[] = { 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65 };
		u8 seg = segs[rnd() % sizeof(segs)];

		g->seg_base = seg == 0x64 ? host_fs_base : seg == 0x65 ? host_gs_base : 0;
		if (g->a32 && g->seg_base) {
			seg = 0x3e; /* a 32-bit offset cannot reach back from FS's base */
			g->seg_base = 0;
		}
		g->seg_at = g->n;
		g->code[g->n++] = seg;
	}
	if (t->mprefix)
		g->code[g->n++] = t->mprefix;
	if (rex != 16) {
		rex_at = (int)g->n;
		g->code[g->n++] = (u8)(0x40 | rex);
	}

	digit = t->digit == -2 ? rnd() % 8 : t->digit == -3 ? 4 + rnd() % 4 : (unsigned)t->digit;
	if (t->group && (digit == 1 || digit == 4 || digit == 6))
		g->undef |= U_LOGIC;

	switch (t->kind) {
	case K_MEM:
	case K_BT:
	case K_CX: {
		unsigned size = t->kind == K_CX ? (rex_w ? 16 : 8) : osz;
		u64 target = rnd_target(size);

		if (t->kind == K_CX && rex_w && rnd() % 8)
			target &= ~15ull;
		put(g, t->op, t->oplen);
		reg = t->digit == -1 ? rnd() % 8 : digit;
		modrm_at = g->n;
		put_modrm_mem(g, reg, rexb, target, &pinned);
		if (t->kind == K_BT) {
			/*
			 * The bit offset: a register no address uses, small in its low
			 * `osz` bytes (the rest is ignored), so the operand stays in the
			 * buffer. Without a REX prefix only the low eight are reachable.
			 */
			unsigned r = free_reg(pinned | (rex_at >= 0 ? 0 : 0xff00));
			s64 bits = (s64)(rnd() % 4096) - 2048;
			u64 mask = osz == 8 ? ~0ull : (1ull << (8 * osz)) - 1;

			g->code[modrm_at] = (u8)((g->code[modrm_at] & ~0x38) | (r & 7) << 3);
			if (rex_at >= 0)
				g->code[rex_at] = (u8)((g->code[rex_at] & ~4) | (r >> 3) << 2);
			g->gpr[r] = (g->gpr[r] & ~mask) | ((u64)bits & mask);
		}
		if (t->kind == K_CX && rnd() % 2) {
			/* EDX:EAX (RDX:RAX) equal to memory: the exchange happens. */
			u64 lo, hi;

			memcpy(&lo, g->mem + target, 8);
			memcpy(&hi, g->mem + target + 8, 8);
			if (!(pinned & (1u << EMU_RAX)) && !(pinned & (1u << EMU_RDX))) {
				g->gpr[EMU_RAX] = rex_w ? lo
							: (g->gpr[EMU_RAX] & ~0xffffffffull) |
								  (lo & 0xffffffff);
				g->gpr[EMU_RDX] =
					rex_w ? hi
					      : (g->gpr[EMU_RDX] & ~0xffffffffull) | (lo >> 32);
			}
		}
		if (t->op[0] == 0x0f && (t->op[1] == 0xb0 || t->op[1] == 0xb1) && rnd() % 2 &&
		    !(pinned & 1u)) {
			/* cmpxchg: the accumulator equal to memory. */
			u64 m;

			memcpy(&m, g->mem + target, 8);
			g->gpr[EMU_RAX] = m;
		}
		put_imm(g, t->imm, osz, rex_w);
		break;
	}
	case K_MOFFS: {
		u64 a = (u64)(uintptr_t)buf + rnd_target(osz) - g->seg_base;

		put(g, t->op, 1);
		put(g, &a, g->a32 ? 4 : 8); /* 67: a 32-bit moffs */
		break;
	}
	case K_STR: {
		/*
		 * A count of up to 150 elements at times: the emulator stops
		 * every rep_limit (8 then) iterations and is called again, as
		 * the VMM would; the strings cross the page line.
		 */
		u64 amask = g->a32 ? 0xffffffffull : ~0ull;
		unsigned count = !rep ? 1 : rnd() % 3 ? rnd() % 7 : rnd() % 151;
		unsigned span = count * (t->byte ? 1 : osz) + 64, src, dst;
		bool down = g->rflags & RFLAGS_DF;

		src = (down ? span : 64) + rnd() % (BUF_SIZE - span - 128);
		dst = rnd() % 2 ? src + (rnd() % 33) - 16
				: (down ? span : 64) + rnd() % (BUF_SIZE - span - 128);
		if (rep && count > 8 && rnd() % 3 == 0) {
			/*
			 * Half way through, one side runs off the buffer into a
			 * guard page: the fault must come at that element, with
			 * RCX, RSI and RDI where the CPU leaves them.
			 */
			unsigned half = count / 2 * (t->byte ? 1 : osz);
			unsigned edge = down ? half : BUF_SIZE - half;

			if (t->op[0] == 0xa4 || t->op[0] == 0xa5 ? rnd() % 2 : 0)
				src = edge;
			else
				dst = edge;
			g->runoff = true;
		}
		/* The segment prefix is the source's; 67 makes ESI, EDI and ECX count. */
		g->gpr[EMU_RSI] = (((u64)(uintptr_t)buf + src - g->seg_base) & amask) |
				  (g->gpr[EMU_RSI] & ~amask);
		g->gpr[EMU_RDI] =
			(((u64)(uintptr_t)buf + dst) & amask) | (g->gpr[EMU_RDI] & ~amask);
		if (rep) {
			g->gpr[EMU_RCX] = count | (g->gpr[EMU_RCX] & ~amask);
			g->rep_limit = count > 6 ? 8 : 0;
		}
		put(g, t->op, 1);
		break;
	}
	case K_PUSH_R:
	case K_POP_R:
		reg = rnd() % 8;
		g->code[g->n++] = (u8)(t->op[0] + reg);
		if (t->kind == K_POP_R && (reg | ((rexb & 1) << 3)) == EMU_RSP)
			g->may_refuse = true;
		break;
	case K_PUSH_I:
		put(g, t->op, 1);
		put_imm(g, t->imm, o16 && !rex_w ? 2 : 4, false);
		break;
	case K_REG:
		reg = t->digit >= 0 ? digit : rnd() % 8;
		rm = t->same ? reg : rnd() % 8;
		if (t->same && rex_at >= 0) /* REX.R as REX.B: the same register */
			g->code[rex_at] = (u8)((g->code[rex_at] & ~4) | (g->code[rex_at] & 1) << 2);
		put(g, t->op, t->oplen);
		g->code[g->n++] = (u8)(0xc0 | reg << 3 | rm);
		put_imm(g, t->imm, osz, rex_w);
		break;
	case K_REG_IMM:
		g->code[g->n++] = (u8)(t->op[0] + rnd() % 8);
		put_imm(g, t->imm, osz, rex_w);
		break;
	case K_ACC_IMM:
		put(g, t->op, 1);
		put_imm(g, t->imm, osz, rex_w);
		break;
	case K_FLAGS:
		g->code[g->n++] = t->op[0];
		g->cpl3 = true;
		g->more_flags = RFLAGS_IF | RFLAGS_IOPL_MASK | RFLAGS_NT | RFLAGS_AC | RFLAGS_ID;
		if (t->op[0] == 0x9d) {
			/*
			 * What popf pops, but TF (natively a single-step trap would
			 * follow) and NT (this workplace's hosts sometimes clear it
			 * across an interrupt that lands before it is read).
			 */
			u64 v = rnd64() & ~(RFLAGS_TF | RFLAGS_NT);

			memcpy(g->mem + (g->gpr[EMU_RSP] - (u64)(uintptr_t)buf), &v, 8);
		}
		break;
	default: g->code[g->n++] = t->op[0]; break;
	}
	assert_true(g->n <= EMU_MAX_INSN_LEN);
	finish(g);
}

/* ---- the comparison ------------------------------------------------------------ */

static const char *const gpr_names[EMU_NR_GPRS] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp",
						    "rsi", "rdi", "r8",	 "r9",	"r10", "r11",
						    "r12", "r13", "r14", "r15" };

/* "it 123 add m,r (f0 48 01 07)": enough to replay the case from the seed. */
static const char *describe(const struct gen *g, unsigned it, int cpl)
{
	static char text[128];
	int used = snprintf(text, sizeof(text), "it %u cpl %d %s (", it, cpl, g->t->name);

	used += nat_bytes(text + used, sizeof(text) - (size_t)used, g->code, g->n);
	snprintf(text + used, sizeof(text) - (size_t)used, ")");
	return text;
}

/* The first byte where the fixture's copy of the buffer differs from the CPU's, or -1. */
static int buf_diff(const struct env *env)
{
	if (!memcmp(env->ram + DATA_GPA, buf, BUF_SIZE))
		return -1;
	for (int i = 0;; i++)
		if (env->ram[DATA_GPA + i] != buf[i])
			return i;
}

/* Whether the emulator's outcome for `g` matches the CPU's; true if compared in full. */
static bool check(struct env *env, const struct gen *g, int sig, int cpl, enum emu_result r,
		  const char *what, struct outcome *o)
{
	u64 mask = (ARITH_FLAGS & ~g->undef) | g->more_flags;
	int diff;

	if (r == EMU_UNKNOWN && g->may_refuse) {
		o->refused++;
		return false;
	}
	if (r != EMU_DONE)
		fail_msg("%s: emulator result %d, native signal %d", what, r, sig);
	if (sig) {
		if (env->delivered != 1 || !nat_signal_matches(sig, env->last_event.vector))
			fail_msg("%s: native signal %d (address %#llx), emulator delivered %u "
				 "events (vector %u)",
				 what, sig, (unsigned long long)nat_fault_addr, env->delivered,
				 env->last_event.vector);
		/*
		 * The registers as the CPU left them at the fault: unchanged, or
		 * for a rep string, at the element that faulted. RSP holds the
		 * emulator's frame at CPL0.
		 */
		for (unsigned i = 0; i < EMU_NR_GPRS; i++)
			if (i != EMU_RSP && env->cpu.gpr[i] != nat_fault_gpr[i])
				fail_msg("%s: faulted with %s %#llx, the CPU %#llx (was %#llx)",
					 what, gpr_names[i], (unsigned long long)env->cpu.gpr[i],
					 (unsigned long long)nat_fault_gpr[i],
					 (unsigned long long)g->gpr[i]);
		if (env->last_event.vector == X86_EXC_PF && sig == SIGSEGV &&
		    env->last_event.cr2 != nat_fault_addr)
			fail_msg("%s: #PF at %#llx, the CPU's at %#llx", what,
				 (unsigned long long)env->last_event.cr2,
				 (unsigned long long)nat_fault_addr);
		/*
		 * Memory, where no frame went into the buffer (CPL3: the frame is
		 * on the kernel stack) and no rep string is involved (a fast
		 * string may have stored past the element it reports).
		 */
		if (cpl == 3 && g->t->kind != K_STR && (diff = buf_diff(env)) >= 0)
			fail_msg("%s: faulted, but byte %#x of the buffer is %#x, the CPU's %#x",
				 what, diff, env->ram[DATA_GPA + diff], buf[diff]);
		o->faulted++;
		if (g->runoff)
			n_runoff_faults++;
		return false;
	}
	if (env->delivered)
		fail_msg("%s: the CPU ran it, the emulator delivered vector %u (error code %#x)",
			 what, env->last_event.vector, env->last_event.error_code);
	if (env->cpu.rip != (u64)(uintptr_t)nat_page + g->n)
		fail_msg("%s: RIP %+lld from the instruction, want %u", what,
			 (long long)(env->cpu.rip - (u64)(uintptr_t)nat_page), g->n);
	for (unsigned i = 0; i < EMU_NR_GPRS; i++)
		if (env->cpu.gpr[i] != nat_state.out[i])
			fail_msg("%s: %s %#llx, the CPU %#llx (was %#llx)", what, gpr_names[i],
				 (unsigned long long)env->cpu.gpr[i],
				 (unsigned long long)nat_state.out[i],
				 (unsigned long long)g->gpr[i]);
	if ((env->cpu.rflags & mask) != (nat_state.out_flags & mask))
		fail_msg("%s: RFLAGS %#llx, the CPU %#llx (was %#llx, compared %#llx)", what,
			 (unsigned long long)(env->cpu.rflags & mask),
			 (unsigned long long)(nat_state.out_flags & mask),
			 (unsigned long long)(g->rflags & mask), (unsigned long long)mask);
	if ((diff = buf_diff(env)) >= 0)
		fail_msg("%s: byte %#x of the buffer %#x, the CPU %#x (was %#x)", what, diff,
			 env->ram[DATA_GPA + diff], buf[diff], g->mem[diff]);
	return true;
}

/*
 * The emulator's common set (decode/emulate_common.c), which hw mode runs
 * too, where KVM's own emulator gives up: movbe, cmpxchg8b/16b, popcnt,
 * clflush, prefetch.
 */
static bool in_common_set(const struct tmpl *t)
{
	return (t->oplen == 3 && t->op[1] == 0x38) ||
	       (t->op[0] == 0x0f &&
		(t->op[1] == 0xc7 || t->op[1] == 0xb8 || t->op[1] == 0xae || t->op[1] == 0x18));
}

/* Map the buffer and the code page where they are here. */
static void map_host_pages(struct env *env)
{
	map_4k(env, (u64)(uintptr_t)buf, DATA_GPA, PTE_P | PTE_RW | PTE_US | PTE_NX);
	map_4k(env, (u64)(uintptr_t)buf + PAGE_SIZE, DATA_GPA + PAGE_SIZE,
	       PTE_P | PTE_RW | PTE_US | PTE_NX);
	map_4k(env, (u64)(uintptr_t)nat_page, CODE_GPA, PTE_P | PTE_US);
}

/* Emulate `g` from the fixture's state `base`, at `cpl`. */
static enum emu_result emulate(struct env *env, const struct emu_cpu *base, const struct gen *g,
			       int cpl)
{
	u64 base_rip = (u64)(uintptr_t)nat_page;
	struct emu_report rep;
	enum emu_result r;

	env->cpu = *base;
	if (cpl == 3)
		to_user(env);
	memcpy(env->cpu.gpr, g->gpr, sizeof(g->gpr));
	env->cpu.rflags = g->rflags;
	env->cpu.rip = (u64)(uintptr_t)nat_page;
	env->cpu.fs_base = host_fs_base;
	env->cpu.gs_base = host_gs_base;
	env->nwrites = 0;
	env->delivered = 0;
	memcpy(env->ram + DATA_GPA, g->mem, BUF_SIZE);
	memcpy(env->ram + CODE_GPA, g->code, g->n);
	env->cpu.virt.rep_limit = g->rep_limit;
	r = emu_insn(&env->cpu, &env->ops, &rep);
	/* A rep string stopped between iterations (RIP on it): the VMM calls again. */
	for (unsigned calls = 1; r == EMU_DONE && !env->delivered && env->cpu.rip == base_rip;
	     calls++) {
		assert_true(calls < 200 && (env->cpu.rflags & RFLAGS_RF));
		env->nwrites = 0;
		r = emu_insn(&env->cpu, &env->ops, &rep);
	}
	return r;
}

static void test_vs_host(void **state)
{
	struct env *env = *state, *hw;
	struct nat_catch catch;
	struct emu_cpu base, hw_base;
	struct gen *g = malloc(sizeof(*g));
	unsigned total = 0, faulted = 0, refused = 0, hw_total = 0;
	void *hw_state;
	u8 *guarded;
	unsigned iterations;

	if (nat_cpu_is_tcg()) {
		print_message("SKIP: the host CPU is QEMU's TCG, no oracle for every encoding this "
			      "test makes\n");
		free(g);
		skip();
	}
	assert_non_null(g);
	/*
	 * Both below 2 GiB: 32-bit addresses, a disp32 with no base and
	 * RIP-relative operands all reach the buffer.
	 */
	guarded = mmap(NULL, BUF_SIZE + 2 * PAGE_SIZE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	assert_true(guarded != MAP_FAILED);
	/* A guard page on each side, mapped in neither run: strings run into them. */
	buf = guarded + PAGE_SIZE;
	assert_int_equal(mprotect(buf, BUF_SIZE, PROT_READ | PROT_WRITE), 0);
	nat_page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	assert_true(buf != MAP_FAILED && nat_page != MAP_FAILED);
	/* A shadow-mode fixture (the state) and a hw-mode one. */
	assert_int_equal(setup(&hw_state), 0);
	hw = hw_state;
	map_host_pages(env);
	map_host_pages(hw);
	assert_int_equal(syscall(SYS_arch_prctl, ARCH_GET_FS, &host_fs_base), 0);
	assert_int_equal(syscall(SYS_arch_prctl, ARCH_GET_GS, &host_gs_base), 0);
	nat_catch(&catch);
	base = env->cpu;
	hw_base = hw->cpu;

	iterations = getenv("EMU_NATIVE_ITERATIONS")
			     ? (unsigned)atoi(getenv("EMU_NATIVE_ITERATIONS"))
			     : ITERATIONS;
	rng_state =
		getenv("EMU_NATIVE_SEED") ? (u32)strtoul(getenv("EMU_NATIVE_SEED"), NULL, 0) : SEED;
	if (!rng_state || iterations < ITERATIONS / 10)
		fail_msg("EMU_NATIVE_SEED must not be 0, EMU_NATIVE_ITERATIONS at least %u",
			 ITERATIONS / 10);
	for (unsigned it = 0; it < iterations; it++) {
		struct outcome *o;
		int sig, cpl = rnd() % 2 ? 3 : 0;
		const char *what;

		generate(g);
		if (g->cpl3)
			cpl = 3;
		memcpy(buf, g->mem, BUF_SIZE);
		memcpy(nat_state.in, g->gpr, sizeof(g->gpr));
		nat_state.in_flags = g->rflags;
		sig = nat_exec(g->code, g->n);

		o = &outcomes[g->t - tmpls];
		what = describe(g, it, cpl);
		if (check(env, g, sig, cpl, emulate(env, &base, g, cpl), what, o)) {
			o->compared++;
			n_rip_rel += g->rip_rel;
			n_a32 += g->a32;
			n_fs += g->seg_base && g->seg_base == host_fs_base;
		}
		if (in_common_set(g->t)) {
			struct outcome hw_o = { 0 };

			if (check(hw, g, sig, cpl, emulate(hw, &hw_base, g, cpl), what, &hw_o))
				o->hw_compared++;
		}
	}

	nat_release(&catch);
	for (unsigned i = 0; i < NR_TMPLS; i++) {
		const struct outcome *o = &outcomes[i];

		total += o->compared;
		faulted += o->faulted;
		refused += o->refused;
		hw_total += o->hw_compared;
		if (getenv("EMU_NATIVE_VERBOSE"))
			print_message("%-16s compared %5u (hw mode %5u) faulted %4u refused %3u\n",
				      tmpls[i].name, o->compared, o->hw_compared, o->faulted,
				      o->refused);
		/* Every template is compared; a generator that only faults proves nothing. */
		if (o->compared < iterations / NR_TMPLS / 3 ||
		    (in_common_set(&tmpls[i]) && o->hw_compared < o->compared))
			fail_msg("%s: compared only %u times, %u in hw mode (%u faulted, %u "
				 "refused)",
				 tmpls[i].name, o->compared, o->hw_compared, o->faulted,
				 o->refused);
	}
	print_message("%u instructions agree with the host CPU (%u RIP-relative, %u with 32-bit "
		      "addresses, %u FS-relative; %u in hw mode too), %u faulted in both (%u rep "
		      "strings part done), %u refused (pop %%rsp)\n",
		      total, n_rip_rel, n_a32, n_fs, hw_total, faulted, n_runoff_faults, refused);
	assert_true(n_rip_rel > iterations / 100 && n_a32 > iterations / 100 &&
		    n_fs > iterations / 100 && n_runoff_faults > iterations / 1000);
	free(g);
	teardown(&hw_state);
	munmap(guarded, BUF_SIZE + 2 * PAGE_SIZE);
	munmap(nat_page, PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vs_host, setup_shadow_env, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
