// SPDX-License-Identifier: MIT
/*
 * The emulator's segment instructions against the host CPU, at CPL3.
 *
 * A guest process that loads a selector the real GDT cannot host (its own
 * LDT's: Wine, dosemu, 16-bit code) traps in shadow mode, and the emulator
 * loads it on the virtual CPU (decode/emulate_sys.c, emulate_common.c):
 * descriptor type, DPL against CPL and RPL, present bit, table limits, and
 * the exception and error code when a check fails. Linux lets a process
 * have an LDT (modify_ldt), so the CPU can be asked the same questions:
 *
 *   - sixteen random LDT descriptors (data and code, read-only, expand-down,
 *     conforming, not present, any limit) go into this process's LDT with
 *     modify_ldt, and the kernel's copy of them, read back, into the
 *     fixture's (emu_env.h) LDT; the fixture's GDT holds Linux's user
 *     segments at Linux's selectors (0x23, 0x2b, 0x33), which `lar` checks
 *     natively first;
 *   - seeded random instructions: mov to DS/ES/GS/SS from a register or
 *     memory, pop %gs (8 and 2 bytes), verr and verw, mov from a segment
 *     register to a register or memory (with 66 and REX.W), iretq at the
 *     same level (random frames: CS, SS, RFLAGS, RSP), far jmp, call and
 *     return, push %gs (the slot zero-extended or not), and pop ds/es/ss and
 *     mov to CS (#UD in 64-bit mode), on selectors of both
 *     tables with every RPL, null ones, and indexes past both limits;
 *   - each runs natively (tests/unit/native_run.h) and in the emulator at
 *     virtual CPL3: the selectors, registers, flags and memory must agree,
 *     or both must fault with the same vector and error code.
 *
 * FS is left out: loading it natively would replace this process's TLS base.
 * Skipped when the kernel has no modify_ldt.
 */
#include <asm/ldt.h>
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "emu_env.h"
#include "native_run.h"
#include "xorshift.h"

/* EMU_SEGS_SEED and EMU_SEGS_ITERATIONS change them, for a longer soak. */
#define ITERATIONS 20000
#define SEED	   0x5e65eed1u
#define NR_LDT	   16
#define RESEED	   500 /* iterations per random LDT */
#define LDT_VA	   0xd00000ull
#define LDT_GPA	   0x70000ull

/* Linux's GDT (arch/x86/include/asm/segment.h), as far as a process can tell. */
#define LINUX_USER32_CS 0x23
#define LINUX_USER_DS	0x2b
#define LINUX_USER_CS	0x33
#define GDT_ENTRIES	16

static u8 *buf;			  /* the memory operands and the stack (one page) */
static const struct env *env_now; /* the fixture, for the generator's look at its tables */
/*
 * Whether the CPU uses what modify_ldt writes: not on every host (this
 * workplace's VMs accept the call, but their LDT stays empty: `lar` of a
 * written entry fails and every load of one is #GP). Without it both runs
 * have no LDT, and its selectors are checked as such.
 */
static bool ldt_works;
static bool tcg; /* the host CPU is QEMU's TCG (native_run.h) */
static bool amd; /* the host CPU is AMD's */
static u16 host_seg[NAT_NR_SEGS];
static bool gdt_index_ok[GDT_ENTRIES + 8]; /* indexes whose native lar matches the fixture */

static u64 rnd64(void)
{
	return ((u64)rnd() << 32) | rnd();
}

static long modify_ldt(int func, void *ptr, unsigned long count)
{
	return syscall(SYS_modify_ldt, func, ptr, count);
}

/* ---- the tables ---------------------------------------------------------------- */

/*
 * Sixteen random descriptors into this process's LDT and, as the kernel
 * keeps them, into the fixture's. One the kernel refuses (a conforming
 * code segment marked present, say) is left empty in both.
 */
static void random_ldt(struct env *env)
{
	u64 table[NR_LDT];

	for (unsigned i = 0; i < NR_LDT; i++) {
		struct user_desc d = { .entry_number = i,
				       .base_addr = 0, /* GS's base stays 0 */
				       .limit = rnd() % 2 ? 0xfffff : rnd() & 0xfffff,
				       .seg_32bit = rnd() % 2,
				       .contents = rnd() % 4,
				       .read_exec_only = rnd() % 3 == 0,
				       .limit_in_pages = rnd() % 2,
				       .seg_not_present = rnd() % 5 == 0,
				       .useable = rnd() % 2,
				       .lm = 0 };

		if (modify_ldt(0x11, &d, sizeof(d)) != 0) {
			struct user_desc empty = { .entry_number = i,
						   .read_exec_only = 1,
						   .seg_not_present = 1 };

			assert_int_equal(modify_ldt(0x11, &empty, sizeof(empty)), 0);
		}
	}
	memset(table, 0, sizeof(table));
	assert_int_equal(modify_ldt(0, table, sizeof(table)), sizeof(table));
	memcpy(env->ram + LDT_GPA, table, sizeof(table));
}

/* The fixture's LDTR: the table random_ldt filled, or none (ldt_works). */
static void set_ldtr(struct env *env)
{
	env->cpu.virt.ldtr_base = ldt_works ? LDT_VA : 0;
	env->cpu.virt.ldtr_limit = ldt_works ? NR_LDT * 8 - 1 : 0;
	env->cpu.virt.ldtr_sel = ldt_works ? 0x50 : 0;
}

/*
 * The fixture's GDT: the gates' kernel code at 0x08 (emu_env.h), then
 * Linux's layout: kernel CS and DS, user32 CS, user DS, user CS, the TSS
 * at 0x40 and the LDT's descriptor at 0x50; 16 entries.
 */
static void linux_gdt(struct env *env)
{
	u64 *gdt = (u64 *)(env->ram + GDT_GPA);

	memset(gdt, 0, PAGE_SIZE);
	gdt[1] = GDT_CODE64_DPL0;
	gdt[2] = 0x00af9b000000ffffull;
	gdt[3] = 0x00cf93000000ffffull;
	gdt[4] = 0x00cffb000000ffffull;
	gdt[5] = 0x00cff3000000ffffull;
	gdt[6] = 0x00affb000000ffffull;
	gdt[8] = 0x0000890000000067ull | ((TSS_VA & 0xffffff) << 16) |
		 ((TSS_VA >> 24 & 0xff) << 56); /* an available 64-bit TSS */
	gdt[10] = 0x0000820000000000ull | ((LDT_VA & 0xffffff) << 16) | (NR_LDT * 8 - 1);
	env->cpu.gdt_limit = GDT_ENTRIES * 8 - 1;
	env->cpu.tr_sel = 0x40;
}

/* `lar` of `sel` natively: the access rights, or -1 where ZF says no. */
static long native_lar(u16 sel)
{
	u32 rights = 0;
	u8 ok;

	__asm__ volatile("lar %w2, %0\n\tsetz %1" : "+r"(rights), "=q"(ok) : "r"(sel) : "cc");
	return ok ? (long)(rights & 0x00f0ff00u) : -1;
}

/* What `lar` gives for the fixture's descriptor `d` at CPL3 with RPL3. */
static long fixture_lar(u64 d)
{
	unsigned type = (unsigned)(d >> 40) & 0xf, dpl = (unsigned)(d >> 45) & 3;
	bool s = d & (1ull << 44);

	if (!s && type != 2 && type != 9 && type != 0xb && type != 0xc)
		return -1;
	if (dpl < 3 && !(s && (type & 0xc) == 0xc))
		return -1; /* below CPL and RPL, and not conforming code */
	return (long)((d >> 32) & 0x00f0ff00u);
}

/*
 * Only the GDT indexes whose native lar agrees with the fixture's are
 * used: a host with another GDT (a TLS entry set, another layout) loses
 * those, not the test. Everything DPL0 agrees (lar refuses it at CPL3, and
 * a load of it is #GP either way), as does every index past the limits.
 */
static void check_gdt(struct env *env)
{
	const u64 *gdt = (const u64 *)(env->ram + GDT_GPA);
	unsigned usable = 0;

	for (unsigned i = 0; i < GDT_ENTRIES + 8; i++) {
		long want = i < GDT_ENTRIES ? fixture_lar(gdt[i]) : -1;

		gdt_index_ok[i] = i != 15 && native_lar((u16)(i << 3 | 3)) == want;
		usable += gdt_index_ok[i];
	}
	/*
	 * Linux's 64-bit user segments must be there, or this is no Linux host
	 * (its 32-bit code segment is not where the kernel has no IA-32
	 * emulation: that index is then left out).
	 */
	assert_true(gdt_index_ok[LINUX_USER_DS >> 3] && gdt_index_ok[LINUX_USER_CS >> 3]);
	print_message("GDT indexes usable: %u of %u\n", usable, GDT_ENTRIES + 8);
}

/* ---- the instructions ---------------------------------------------------------- */

/* A selector: the LDT's, the GDT's (checked indexes), null, or past either limit. */
static u16 rnd_selector(void)
{
	unsigned rpl = rnd() % 4 == 0 ? rnd() % 4 : 3;
	unsigned i;

	/* Mostly the LDT's where there is one; else mostly the GDT's. */
	switch (rnd() % 8) {
	case 0: return (u16)(rnd() % 4); /* null */
	case 1: return (u16)((NR_LDT + rnd() % 8) << 3 | 4 | rpl);
	case 2:
	case 3:
	case 4:
		if (ldt_works)
			return (u16)((rnd() % NR_LDT) << 3 | 4 | rpl);
		/* fall through */
	default:
		do
			i = rnd() % (GDT_ENTRIES + 8);
		while (!gdt_index_ok[i]);
		return (u16)(i << 3 | rpl);
	}
}

enum seg_kind { SK_LOAD, SK_VERRW, SK_STORE, SK_UD, SK_IRET, SK_FAR };

struct seg_case {
	enum seg_kind kind;
	u16 sel;      /* the selector it loads or checks */
	u16 frame_cs; /* SK_IRET: the CS it returns to */
	u8 code[EMU_MAX_INSN_LEN];
	unsigned n;
	u64 gpr[EMU_NR_GPRS];
	u64 rflags;
	const char *what;
};

/* ModRM for a 16-bit operand: a register holding `sel`, or (%rdi) in buf. */
static void put_rm(struct seg_case *k, unsigned reg_field, u16 sel)
{
	if (rnd() % 2) {
		unsigned r;

		do
			r = rnd() % 8;
		while (r == EMU_RSP || r == EMU_RDI);
		k->gpr[r] = (k->gpr[r] & ~0xffffull) | sel;
		k->code[k->n++] = (u8)(0xc0 | reg_field << 3 | r);
	} else {
		memcpy(buf + 0x100, &sel, 2);
		k->code[k->n++] = (u8)(reg_field << 3 | EMU_RDI);
	}
}

/* The fixture's descriptor for `sel` (0 past the table's limit) */
static u64 descriptor(const struct env *env, u16 sel)
{
	u64 base = sel & 4 ? LDT_GPA : GDT_GPA;
	unsigned limit = sel & 4 ? NR_LDT * 8 : GDT_ENTRIES * 8;
	u64 d = 0;

	if ((sel & ~7u) < limit)
		memcpy(&d, env->ram + base + (sel & ~7u), 8);
	return d;
}

/*
 * Whether a return to `sel` would run its code in another mode: a usable
 * code segment without L (32- or 16-bit), where the stub after the iretq
 * cannot run. Those are left out (a fault on them is fine).
 */
static bool leaves_64bit(const struct env *env, u16 sel)
{
	u64 d = descriptor(env, sel);

	/* Any RPL: a far jmp lands with RPL = CPL whatever the selector's. */
	return (sel & ~3u) && (d & (1ull << 44)) && (d & (1ull << 43)) && (d & (1ull << 47)) &&
	       !(d & (1ull << 53)) && ((d >> 45) & 3) == 3;
}

/* A CS to return or jump to: Linux's 64-bit user code, or any selector that stays in 64-bit mode.
 */
static u16 far_cs(void)
{
	u16 cs = rnd() % 2 ? LINUX_USER_CS : rnd_selector();

	while (leaves_64bit(env_now, cs))
		cs = rnd_selector();
	return cs;
}

/*
 * iretq at CPL3 (same level: SDM Vol. 2A IRET, 64-bit mode pops SS:RSP too)
 * through a frame at RSP: RIP the stub right after it, CS Linux's 64-bit
 * user code or any selector, RFLAGS random (not TF: a single step would
 * follow; not NT, which this workplace's hosts sometimes clear on the way
 * back from an interrupt that lands before it is read), RSP anywhere in the
 * buffer, SS Linux's user data or any selector.
 */
static void iretq_case(struct seg_case *k)
{
	u16 cs = far_cs();
	u16 ss = rnd() % 2 ? LINUX_USER_DS : rnd_selector();
	u64 frame[5];

	k->what = "iretq";
	k->kind = SK_IRET;
	k->sel = cs;
	k->n = 0;
	k->code[k->n++] = 0x48;
	k->code[k->n++] = 0xcf;
	frame[0] = (u64)(uintptr_t)nat_page + k->n;
	frame[1] = cs | (rnd64() & ~0xffffull);
	frame[2] =
		RFLAGS_FIXED | (rnd64() & (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF |
					   RFLAGS_SF | RFLAGS_DF | RFLAGS_OF | RFLAGS_AC |
					   RFLAGS_ID | RFLAGS_IF | RFLAGS_IOPL_MASK | RFLAGS_RF));
	frame[3] = (u64)(uintptr_t)buf + 0x400 + (rnd() % 0x300) * (rnd() % 4 ? 8 : 1);
	frame[4] = ss | (rnd64() & ~0xffffull);
	memcpy(buf + 0x800, frame, sizeof(frame));
	k->frame_cs = cs;
}

/*
 * A far return (lret, lretq, with or without imm16), or a far jmp or call
 * through m16:32 or m16:64 at (%rdi), at CPL3, into the stub right after
 * it. The CS it lands with: the frame's for a return, RPL forced to the CPL
 * for a jmp or call (SDM Vol. 2A JMP, CALL, RET); a call leaves its return
 * address and CS on the stack, which the memory comparison checks.
 */
static void far_case(struct seg_case *k)
{
	unsigned kind = rnd() % 3; /* 0 ret, 1 jmp, 2 call */
	bool w = rnd() % 2, jmp = kind != 0, imm = !jmp && rnd() % 2;
	/*
	 * AMD's CPUs take REX.W ff /3 and ff /5 as m16:32
	 * (emu_virt.far_ptr_m16_32); TCG reads m16:64 whatever its vendor, so
	 * it is no oracle for that form.
	 */
	unsigned size;

	if (jmp && tcg)
		w = false;
	size = w && !(jmp && amd) ? 8 : 4;
	u16 cs = far_cs();
	u64 ip;

	k->kind = SK_FAR;
	k->sel = cs;
	k->n = 0;
	if (w)
		k->code[k->n++] = 0x48;
	if (jmp) {
		k->what = kind == 1 ? "ljmp *(%rdi)" : "lcall *(%rdi)";
		k->code[k->n++] = 0xff;
		k->code[k->n++] = kind == 1 ? 0x2f : 0x1f;
	} else {
		k->what = imm ? "lret $imm16" : "lret";
		k->code[k->n++] = imm ? 0xca : 0xcb;
		if (imm) {
			k->code[k->n++] = (u8)(rnd() % 64);
			k->code[k->n++] = 0;
		}
	}
	ip = (u64)(uintptr_t)nat_page + k->n;
	/* The pointer: at (%rdi) for the jmp, at the top of the stack for a return. */
	memcpy(buf + (jmp ? 0x100 : 0x800), &ip, size);
	memcpy(buf + (jmp ? 0x100 : 0x800) + size, &(u64){ cs | (rnd64() & ~0xffffull) },
	       jmp ? 2 : size);
	k->frame_cs = jmp ? (u16)((cs & ~3u) | 3) : cs;
}

static void generate(struct seg_case *k)
{
	/* mov to these: ES, SS, DS, GS (not CS: #UD, below; not FS: this process's TLS) */
	static const unsigned sregs[] = { 0, 2, 3, 5 };
	u16 sel = rnd_selector();

	memset(k, 0, sizeof(*k));
	k->sel = sel;
	for (unsigned i = 0; i < EMU_NR_GPRS; i++)
		k->gpr[i] = rnd64();
	k->gpr[EMU_RSP] = (u64)(uintptr_t)buf + 0x800;
	k->gpr[EMU_RDI] = (u64)(uintptr_t)buf + 0x100;
	k->rflags = RFLAGS_FIXED | RFLAGS_IF | (rnd64() & (RFLAGS_CF | RFLAGS_ZF | RFLAGS_SF));
	memset(buf, 0x5a, PAGE_SIZE);
	memcpy(buf + 0x800, &(u64){ rnd64() & ~0xffffull }, 8);
	memcpy(buf + 0x800, &sel, 2); /* what a pop reads */
	if (rnd() % 6 == 0)
		k->code[k->n++] = 0x66;
	else if (rnd() % 6 == 0)
		k->code[k->n++] = 0x48;

	switch (rnd() % 15) {
	case 0:
	case 1:
	case 2:
		k->what = "mov sreg, r/m16";
		k->kind = SK_LOAD;
		k->code[k->n++] = 0x8e;
		put_rm(k, sregs[rnd() % 4], sel);
		break;
	case 3:
		k->what = "pop %gs";
		k->kind = SK_LOAD;
		k->code[k->n++] = 0x0f;
		k->code[k->n++] = 0xa9;
		break;
	case 4:
	case 5:
		k->what = "verr/verw";
		k->kind = SK_VERRW;
		k->code[k->n++] = 0x0f;
		k->code[k->n++] = 0x00;
		put_rm(k, 4 + rnd() % 2, sel);
		break;
	case 6:
	case 7: {
		/* mov r/m, sreg: ES, CS, SS, DS, GS (not FS: its selector is the host's own) */
		static const unsigned from[] = { 0, 1, 2, 3, 5 };
		unsigned s = from[rnd() % 5];

		k->what = "mov r/m, sreg";
		k->kind = SK_STORE;
		k->code[k->n++] = 0x8c;
		if (rnd() % 2)
			k->code[k->n++] = (u8)(0xc0 | s << 3 | rnd() % 4);
		else
			k->code[k->n++] = (u8)(s << 3 | EMU_RDI);
		break;
	}
	case 10:
	case 11: iretq_case(k); break;
	case 12:
	case 13: far_case(k); break;
	case 14:
		/* push %gs: 8 bytes, 2 with 66; the slot's upper bytes zeroed or kept */
		k->what = "push %gs";
		k->kind = SK_STORE;
		k->code[k->n++] = 0x0f;
		k->code[k->n++] = 0xa8;
		break;
	case 8: {
		static const u8 pops[] = { 0x07, 0x17, 0x1f }; /* pop es, ss, ds */

		k->what = "pop es/ss/ds (#UD)";
		k->kind = SK_UD;
		k->code[k->n++] = pops[rnd() % 3];
		break;
	}
	default:
		if (tcg) /* TCG checks it as a load of CS: no oracle */
			return generate(k);
		k->what = "mov cs, r/m16 (#UD)";
		k->kind = SK_UD;
		k->code[k->n++] = 0x8e;
		put_rm(k, 1, sel);
		break;
	}
}

/* ---- the comparison ------------------------------------------------------------ */

struct counts {
	unsigned loaded, refused_both, ud, verr_set, verr_clear, stored, irets, far;
};

static u16 emu_sel(const struct env *env, enum nat_seg s)
{
	switch (s) {
	case NAT_DS: return env->cpu.virt.ds_sel;
	case NAT_ES: return env->cpu.virt.es_sel;
	case NAT_GS: return env->cpu.virt.gs_sel;
	default: return env->cpu.ss.sel;
	}
}

static void check(struct env *env, const struct seg_case *k, int sig, enum emu_result r,
		  unsigned it, struct counts *n)
{
	static const char *const names[] = { "ds", "es", "gs", "ss" };
	/* What an iretq loads at CPL3 (IF and IOPL: kept), else what verr/verw set. */
	const u64 cmp_flags = k->kind == SK_IRET
				      ? RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF |
						RFLAGS_DF | RFLAGS_OF | RFLAGS_NT | RFLAGS_AC |
						RFLAGS_ID | RFLAGS_IF | RFLAGS_IOPL_MASK
				      : RFLAGS_CF | RFLAGS_ZF | RFLAGS_SF;
	char what[200];
	int used = snprintf(what, sizeof(what), "it %u %s (", it, k->what);

	used += nat_bytes(what + used, sizeof(what) - (size_t)used, k->code, k->n);
	snprintf(what + used, sizeof(what) - (size_t)used, ") selector %#x descriptor %#llx",
		 k->sel, (unsigned long long)descriptor(env, k->sel));

	if (r != EMU_DONE)
		fail_msg("%s: emulator result %d, native signal %d", what, r, sig);
	if (sig) {
		if (env->delivered != 1 || env->last_event.vector != nat_trapno ||
		    !nat_signal_matches(sig, env->last_event.vector))
			fail_msg("%s: the CPU raised vector %llu (error code %#llx), the emulator "
				 "delivered %u events, vector %u",
				 what, (unsigned long long)nat_trapno, (unsigned long long)nat_err,
				 env->delivered, env->last_event.vector);
		if (env->last_event.has_error_code && env->last_event.error_code != nat_err)
			fail_msg("%s: vector %u with error code %#x, the CPU's %#llx", what,
				 env->last_event.vector, env->last_event.error_code,
				 (unsigned long long)nat_err);
		/* The delivery to CPL0 loads SS (null); the others stay. */
		for (unsigned s = 0; s < NAT_SS; s++)
			if (emu_sel(env, s) != host_seg[s])
				fail_msg("%s: faulted, but %s is %#x", what, names[s],
					 emu_sel(env, s));
		if (nat_trapno == X86_EXC_UD)
			n->ud++;
		else
			n->refused_both++;
		return;
	}
	if (env->delivered)
		fail_msg("%s: the CPU ran it, the emulator delivered vector %u (error code %#x)",
			 what, env->last_event.vector, env->last_event.error_code);
	if (env->cpu.rip != (u64)(uintptr_t)nat_page + k->n)
		fail_msg("%s: RIP %+lld", what,
			 (long long)(env->cpu.rip - (u64)(uintptr_t)nat_page));
	for (unsigned i = 0; i < EMU_NR_GPRS; i++)
		if (env->cpu.gpr[i] != nat_state.out[i])
			fail_msg("%s: register %u %#llx, the CPU's %#llx (was %#llx)", what, i,
				 (unsigned long long)env->cpu.gpr[i],
				 (unsigned long long)nat_state.out[i],
				 (unsigned long long)k->gpr[i]);
	if ((env->cpu.rflags ^ nat_state.out_flags) & cmp_flags)
		fail_msg("%s: RFLAGS %#llx, the CPU's %#llx", what,
			 (unsigned long long)env->cpu.rflags,
			 (unsigned long long)nat_state.out_flags);
	/*
	 * A null selector with RPL 1-3 may read back as 0 natively: an
	 * interrupt that lands between the load and nat_back returns to CPL3
	 * with iretq, which nulls a data segment register whose descriptor
	 * (none here) is not usable at CPL3 (SDM Vol. 2A IRET). Rare, and not
	 * the emulator's.
	 */
	for (unsigned s = 0; s < NAT_NR_SEGS; s++)
		if (emu_sel(env, s) != nat_state.seg_out[s] &&
		    !(nat_state.seg_out[s] == 0 && emu_sel(env, s) == k->sel && k->sel < 4))
			fail_msg("%s: %s %#x, the CPU's %#x", what, names[s], emu_sel(env, s),
				 nat_state.seg_out[s]);
	if (memcmp(env->ram + DATA_GPA, buf, PAGE_SIZE))
		fail_msg("%s: memory differs", what);
	if (k->kind == SK_UD)
		fail_msg("%s: ran, where it is #UD in 64-bit mode", what);
	if ((k->kind == SK_IRET || k->kind == SK_FAR) && env->cpu.cs.sel != k->frame_cs)
		fail_msg("%s: CS %#x after it, the frame's %#x", what, env->cpu.cs.sel,
			 k->frame_cs);
	if (k->kind == SK_VERRW && (nat_state.out_flags & RFLAGS_ZF))
		n->verr_set++;
	else if (k->kind == SK_VERRW)
		n->verr_clear++;
	else if (k->kind == SK_STORE)
		n->stored++;
	else if (k->kind == SK_IRET)
		n->irets++;
	else if (k->kind == SK_FAR)
		n->far++;
	else
		n->loaded++;
}

static void test_segments_vs_host(void **state)
{
	struct env *env = *state;
	struct user_desc probe = { .entry_number = 0, .limit = 0xfffff, .seg_32bit = 1 };
	struct nat_catch catch;
	struct counts n = { 0 };
	struct emu_cpu base;
	struct seg_case k;
	unsigned iterations;

	if (modify_ldt(0x11, &probe, sizeof(probe)) != 0) {
		print_message("SKIP: modify_ldt is not available here (%s)\n", strerror(errno));
		skip();
	}
	ldt_works = native_lar(4 | 3) >= 0; /* LDT index 0, RPL 3: the probe's data segment */
	tcg = nat_cpu_is_tcg();
	amd = nat_cpu_is_amd();
	if (!ldt_works)
		print_message(
			"this host's CPU does not use the LDT modify_ldt writes: LDT selectors "
			"are checked against no LDT in both runs\n");
	buf = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
		   -1, 0);
	nat_page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	assert_true(buf != MAP_FAILED && nat_page != MAP_FAILED);
	map_4k(env, (u64)(uintptr_t)buf, DATA_GPA, PTE_P | PTE_RW | PTE_US | PTE_NX);
	map_4k(env, (u64)(uintptr_t)nat_page, CODE_GPA, PTE_P | PTE_US);
	map_4k(env, LDT_VA, LDT_GPA, PTE_P | PTE_RW | PTE_NX);
	linux_gdt(env);
	check_gdt(env);
	__asm__ volatile("mov %%ds, %0" : "=m"(host_seg[NAT_DS]));
	__asm__ volatile("mov %%es, %0" : "=m"(host_seg[NAT_ES]));
	__asm__ volatile("mov %%gs, %0" : "=m"(host_seg[NAT_GS]));
	__asm__ volatile("mov %%ss, %0" : "=m"(host_seg[NAT_SS]));
	assert_int_equal(host_seg[NAT_SS], LINUX_USER_DS);

	/* The virtual CPU: a Linux process at CPL3, its selectors the host's. */
	to_user_sels(env, LINUX_USER_CS, LINUX_USER_DS);
	env->cpu.virt.far_ptr_m16_32 = amd;
	env->cpu.virt.push_sreg_move16 = !amd;
	env->cpu.virt.iret_ss_np_is_ss = amd;
	env->cpu.virt.ds_sel = host_seg[NAT_DS];
	env->cpu.virt.es_sel = host_seg[NAT_ES];
	env->cpu.virt.gs_sel = host_seg[NAT_GS];
	base = env->cpu;
	env_now = env;
	nat_catch(&catch);

	iterations = getenv("EMU_SEGS_ITERATIONS") ? (unsigned)atoi(getenv("EMU_SEGS_ITERATIONS"))
						   : ITERATIONS;
	rng_state = getenv("EMU_SEGS_SEED") ? (u32)strtoul(getenv("EMU_SEGS_SEED"), NULL, 0) : SEED;
	if (!rng_state || iterations < ITERATIONS / 10)
		fail_msg("EMU_SEGS_SEED must not be 0, EMU_SEGS_ITERATIONS at least %u",
			 ITERATIONS / 10);
	for (unsigned it = 0; it < iterations; it++) {
		struct emu_report rep;
		enum emu_result r;
		int sig;

		if (it % RESEED == 0)
			random_ldt(env);
		generate(&k);
		memcpy(nat_state.in, k.gpr, sizeof(k.gpr));
		nat_state.in_flags = k.rflags;
		memcpy(env->ram + DATA_GPA, buf, PAGE_SIZE);
		sig = nat_exec(k.code, k.n);

		env->cpu = base;
		memcpy(env->cpu.gpr, k.gpr, sizeof(k.gpr));
		env->cpu.rflags = k.rflags;
		env->cpu.rip = (u64)(uintptr_t)nat_page;
		set_ldtr(env);
		env->delivered = 0;
		env->nwrites = 0;
		memcpy(env->ram + CODE_GPA, k.code, k.n);
		r = emu_insn(&env->cpu, &env->ops, &rep);
		check(env, &k, sig, r, it, &n);
	}
	nat_release(&catch);
	print_message(
		"segment instructions agree with the host CPU: %u loads, %u refused by "
		"both, %u #UD, verr/verw %u set ZF and %u cleared it, %u selectors stored, %u "
		"iretq, %u far ret/jmp/call\n",
		n.loaded, n.refused_both, n.ud, n.verr_set, n.verr_clear, n.stored, n.irets, n.far);
	assert_true(n.loaded > iterations / 20 && n.refused_both > iterations / 20 &&
		    n.verr_set > iterations / 200 && n.verr_clear > iterations / 100 &&
		    n.stored > iterations / 20 && n.ud > iterations / 50 &&
		    n.irets > iterations / 40 && n.far > iterations / 40);
	munmap(buf, PAGE_SIZE);
	munmap(nat_page, PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_segments_vs_host, setup_shadow_env, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
