// SPDX-License-Identifier: MIT
/*
 * Shadow mode's events and iret in legacy 32-bit protected mode (CR0.PE = 1,
 * EFER.LMA = 0; decode/emulate_event32.c and emulate_xfer.c's
 * do_iret_legacy), as a 32-bit kernel such as a Multiboot one uses them:
 * 8-byte IDT gates, the 32-bit TSS's SS0:ESP0 on a privilege change, the
 * 32-bit frame, and iret to the same or an outer level. Expected values
 * follow the SDM (Vol. 3A §6.12, Vol. 2A INT n and IRET). The fixture is
 * emu_env.h's with paging off (linear = physical), 32-bit flat descriptors
 * and a 32-bit TSS.
 */
#include "emu_env.h"

#define SEL_UCODE32	 0x2b
#define SEL_UDATA32	 0x23
#define SEL_BADSS	 0x38 /* a code segment: not a stack */
#define SEL_SMALL	 0x40 /* a code segment with a 4 KiB limit */
#define GDT_CODE32_DPL0	 0x00cf9a000000ffffull
#define GDT_CODE32_DPL3	 0x00cffa000000ffffull
#define GDT_CODE32_SMALL 0x00409a0000000fffull /* limit 0xfff, byte granular */

#define H_DE 0x1000u /* handlers: only their addresses matter */
#define H_TS 0x1100u
#define H_NP 0x1200u
#define H_GP 0x1300u
#define H_PF 0x1400u
#define H_DF 0x1500u
#define H_40 0x1600u
#define H_41 0x1700u
#define H_42 0x1800u

#define KSTACK_TOP (KSTACK_GPA + PAGE_SIZE)
#define USTACK_TOP (STACK_GPA + PAGE_SIZE - 16)

static void set_gate32_sel(struct env *env, unsigned vec, u32 handler, unsigned type, unsigned dpl,
			   u16 sel)
{
	u32 *g = (u32 *)(env->ram + IDT_GPA) + vec * 2;

	g[0] = (handler & 0xffff) | (u32)sel << 16;
	g[1] = (handler & 0xffff0000) | 0x8000 | dpl << 13 | type << 8;
}

static void set_gate32(struct env *env, unsigned vec, u32 handler, unsigned type, unsigned dpl)
{
	set_gate32_sel(env, vec, handler, type, dpl, SEL_KCODE);
}

static u32 peek32(struct env *env, u64 pa)
{
	u32 v;

	memcpy(&v, env->ram + pa, 4);
	return v;
}

static void poke32(struct env *env, u64 pa, u32 v)
{
	memcpy(env->ram + pa, &v, 4);
}

static int setup_legacy(void **state)
{
	struct env *env;
	u64 *gdt;
	u8 *tss;

	setup_shadow_env(state);
	env = *state;
	memset(env->ram + IDT_GPA, 0, PAGE_SIZE);
	gdt = (u64 *)(env->ram + GDT_GPA);
	gdt[SEL_KCODE / 8] = GDT_CODE32_DPL0;
	gdt[SEL_KDATA / 8] = GDT_DATA_DPL0;
	gdt[SEL_UDATA32 / 8] = GDT_DATA_DPL3;
	gdt[SEL_UCODE32 / 8] = GDT_CODE32_DPL3;
	gdt[SEL_BADSS / 8] = GDT_CODE32_DPL0;
	gdt[SEL_SMALL / 8] = GDT_CODE32_SMALL;
	tss = env->ram + TSS_GPA;
	memset(tss, 0, 104);
	memcpy(tss + 4, &(u32){ KSTACK_TOP }, 4); /* ESP0 */
	memcpy(tss + 8, &(u16){ SEL_KDATA }, 2);  /* SS0 */
	env->cpu.cr0 = CR0_PE | CR0_ET | CR0_NE;
	env->cpu.cr4 = 0;
	env->cpu.efer = 0;
	env->cpu.cs = flat32(SEL_KCODE, true);
	env->cpu.ss = flat32(SEL_KDATA, false);
	env->cpu.gdt_base = GDT_GPA;
	env->cpu.gdt_limit = 16 * 8 - 1;
	env->cpu.idt_base = IDT_GPA;
	env->cpu.idt_limit = 256 * 8 - 1;
	env->cpu.tr_base = TSS_GPA;
	env->cpu.rip = CODE_GPA;
	env->cpu.gpr[EMU_RSP] = USTACK_TOP;
	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_IF;
	set_gate32(env, X86_EXC_DE, H_DE, 0xe, 0);
	set_gate32(env, X86_EXC_TS, H_TS, 0xe, 0);
	set_gate32(env, X86_EXC_NP, H_NP, 0xe, 0);
	set_gate32(env, X86_EXC_GP, H_GP, 0xe, 0);
	set_gate32(env, X86_EXC_PF, H_PF, 0xe, 0);
	set_gate32(env, X86_EXC_DF, H_DF, 0xe, 0);
	set_gate32(env, 0x40, H_40, 0xf, 3); /* a system call: trap gate, DPL3 */
	set_gate32(env, 0x41, H_41, 0xe, 0); /* kernel only */
	set_gate32(env, 0x42, H_42, 0x5, 3); /* a task gate */
	return 0;
}

static void to_user32(struct env *env)
{
	env->cpu.cs = flat32(SEL_UCODE32, true);
	env->cpu.ss = flat32(SEL_UDATA32, false);
}

/* Put `code` at EIP (physical: paging is off) and emulate it. */
static enum emu_result run32(struct env *env, const u8 *code, size_t len, struct emu_report *rep)
{
	memcpy(env->ram + env->cpu.rip, code, len);
	return emu_insn(&env->cpu, &env->ops, rep);
}
#define RUN32(env, rep, ...) \
	run32((env), (const u8[]){ __VA_ARGS__ }, sizeof((const u8[]){ __VA_ARGS__ }), (rep))

static enum emu_result deliver(struct env *env, struct emu_event ev)
{
	return emu_deliver_event(&env->cpu, &env->ops, &ev);
}

/* An exception the CPU raised (EXT = 1 in error codes that name a selector). */
static struct emu_event exc(u8 vector, bool has_err, u32 err)
{
	return (struct emu_event){ .kind = EMU_EV_EXCEPTION,
				   .vector = vector,
				   .has_error_code = has_err,
				   .error_code = err };
}

/* ---- sysenter and sysexit --------------------------------------------------- */

/*
 * A 32-bit kernel's fast system call (Debian's 686-pae vDSO): sysenter from
 * CPL3 to SYSENTER_CS's flat 32-bit code at SYSENTER_EIP on SYSENTER_ESP,
 * IF cleared, on an AMD CPU too (its #UD is IA-32e mode's only); sysexit
 * back to (SYSENTER_CS + 16) | 3 at EDX on ECX. Without SYSENTER_CS both
 * are #GP(0), and sysexit is #GP(0) at CPL3.
 */
static void test_sysenter_sysexit(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.virt.syscall_compat = true; /* AMD */
	to_user32(env);
	env->cpu.rflags |= RFLAGS_IF;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x34), EMU_DONE); /* no SYSENTER_CS */
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_GP);
	to_user32(env);
	env->cpu.rip = CODE_GPA;
	env->cpu.gpr[EMU_RSP] = USTACK_TOP;
	env->cpu.virt.sysenter_cs = SEL_KCODE;
	env->cpu.virt.sysenter_esp = 0xffffffff00000000ull | KSTACK_TOP;
	env->cpu.virt.sysenter_eip = 0xffffffff00000000ull | H_41;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x34), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, H_41); /* the low halves, outside IA-32e mode */
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSTACK_TOP);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_false(env->cpu.cs.l);
	assert_true(env->cpu.cs.db);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA);
	assert_int_equal(env->cpu.rflags & RFLAGS_IF, 0);
	assert_true(rep.notes & EMU_NOTE_CPL);
	/* sysexit: to EDX on ECX at CPL3, CS 0x18 | 3 and SS 0x20 | 3 past SYSENTER_CS 0x08. */
	env->cpu.gpr[EMU_RCX] = USTACK_TOP - 64;
	env->cpu.gpr[EMU_RDX] = CODE_GPA + 0x100;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x35), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, CODE_GPA + 0x100);
	assert_int_equal(env->cpu.gpr[EMU_RSP], USTACK_TOP - 64);
	assert_int_equal(env->cpu.cs.sel, (SEL_KCODE + 16) | 3);
	assert_int_equal(env->cpu.ss.sel, (SEL_KCODE + 24) | 3);
	assert_int_equal(env->cpu.cs.dpl, 3);
	assert_true(rep.notes & EMU_NOTE_CPL);
	/* sysexit at CPL3: #GP(0). */
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x35), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_GP);
}

/* ---- delivery ------------------------------------------------------------- */

/* A #PF at CPL0: same stack, EFLAGS|RF, CS, EIP, error code; IF cleared; CR2 set. */
static void test_fault_same_level(void **state)
{
	struct env *env = *state;
	u32 esp = USTACK_TOP - 16;

	assert_int_equal(deliver(env, (struct emu_event){ .kind = EMU_EV_EXCEPTION,
							  .vector = X86_EXC_PF,
							  .has_error_code = true,
							  .error_code = 2,
							  .has_cr2 = true,
							  .cr2 = 0xc0001234 }),
			 EMU_DONE);
	assert_int_equal(env->cpu.rip, H_PF);
	assert_int_equal(env->cpu.gpr[EMU_RSP], esp);
	assert_int_equal(env->cpu.cr2, 0xc0001234);
	assert_int_equal(env->cpu.rflags & RFLAGS_IF, 0);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA);
	assert_int_equal(peek32(env, esp), 2);
	assert_int_equal(peek32(env, esp + 4), CODE_GPA);
	assert_int_equal(peek32(env, esp + 8), SEL_KCODE);
	assert_int_equal(peek32(env, esp + 12), RFLAGS_FIXED | RFLAGS_IF | RFLAGS_RF);
	assert_int_equal(peek32(env, esp + 16), 0); /* nothing more: no SS:ESP */
}

/* int $0x40 from CPL3: TSS SS0:ESP0, the 20-byte frame, a trap gate keeps IF. */
static void test_soft_int_from_user(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u32 esp = KSTACK_TOP - 20;

	to_user32(env);
	env->cpu.gpr[EMU_RSP] = USTACK_TOP;
	assert_int_equal(RUN32(env, &rep, 0xcd, 0x40), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_40);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA);
	assert_int_equal(env->cpu.ss.dpl, 0);
	assert_int_equal(env->cpu.gpr[EMU_RSP], esp);
	assert_true(env->cpu.rflags & RFLAGS_IF);
	assert_true(rep.notes & EMU_NOTE_CPL);
	assert_int_equal(peek32(env, esp), CODE_GPA + 2); /* after the int */
	assert_int_equal(peek32(env, esp + 4), SEL_UCODE32);
	assert_int_equal(peek32(env, esp + 8), RFLAGS_FIXED | RFLAGS_IF); /* no RF: a trap */
	assert_int_equal(peek32(env, esp + 12), USTACK_TOP);
	assert_int_equal(peek32(env, esp + 16), SEL_UDATA32);
}

/* int $0x41 from CPL3 through a DPL0 gate: #GP(0x41 * 8 + 2), on the kernel stack. */
static void test_soft_int_gate_dpl(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u32 esp = KSTACK_TOP - 24;

	to_user32(env);
	assert_int_equal(RUN32(env, &rep, 0xcd, 0x41), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_GP);
	assert_int_equal(peek32(env, esp), 0x41 * 8 + 2);
	assert_int_equal(peek32(env, esp + 4), CODE_GPA); /* the int itself */
	assert_int_equal(peek32(env, esp + 16), USTACK_TOP);
}

/*
 * A gate not present: #NP(vector * 8 + 2 + EXT). For a benign exception
 * (#UD) that #NP is delivered; for a contributory one (#DE) it makes a #DF.
 */
static void test_gate_not_present(void **state)
{
	struct env *env = *state;
	u32 *g = (u32 *)(env->ram + IDT_GPA);

	set_gate32(env, X86_EXC_UD, 0x1900, 0xe, 0);
	g[X86_EXC_UD * 2 + 1] &= ~0x8000u;
	g[X86_EXC_DE * 2 + 1] &= ~0x8000u;
	assert_int_equal(deliver(env, exc(X86_EXC_UD, false, 0)), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_NP);
	assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP]), X86_EXC_UD * 8 + 2 + 1);
	assert_int_equal(deliver(env, exc(X86_EXC_DE, false, 0)), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_DF);
	assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP]), 0);
}

/* A vector beyond the IDT's limit: #GP(vector * 8 + 2), EXT clear for int n. */
static void test_idt_limit(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.idt_limit = 0x40 * 8 - 1;
	assert_int_equal(RUN32(env, &rep, 0xcd, 0x40), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_GP);
	assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP]), 0x40 * 8 + 2);
}

/*
 * The code segment a gate names (emu_gate_target): not code, a DPL above
 * CPL: #GP(sel); not present: #NP(sel). L is ignored outside IA-32e mode, so
 * a 64-bit code descriptor is a valid target; a conforming one keeps CPL3
 * and the user's stack.
 */
static void test_gate_target_checks(void **state)
{
	static const struct {
		u64 desc;
		u32 handler;
	} cases[] = {
		{ GDT_DATA_DPL0, H_GP },
		{ GDT_CODE32_DPL3, H_GP },		   /* DPL 3 > CPL 0 */
		{ GDT_CODE32_DPL0 & ~(1ull << 47), H_NP }, /* not present */
		{ 0x00af9a000000ffffull, H_41 },	   /* L = 1: ignored here */
	};
	struct env *env = *state;
	u64 *gdt = (u64 *)(env->ram + GDT_GPA);
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	set_gate32_sel(env, 0x41, H_41, 0xe, 0, SEL_SMALL);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		env->cpu = before;
		gdt[SEL_SMALL / 8] = cases[i].desc;
		assert_int_equal(RUN32(env, &rep, 0xcd, 0x41), EMU_DONE);
		assert_int_equal(env->cpu.rip, cases[i].handler);
		if (cases[i].handler != H_41)
			assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP]), SEL_SMALL);
	}
	/* Conforming (type 0xe), DPL0, from CPL3 through a DPL3 gate: no stack switch. */
	env->cpu = before;
	gdt[SEL_SMALL / 8] = 0x00cf9e000000ffffull;
	set_gate32_sel(env, 0x41, H_41, 0xe, 3, SEL_SMALL);
	to_user32(env);
	env->cpu.gpr[EMU_RSP] = USTACK_TOP;
	assert_int_equal(RUN32(env, &rep, 0xcd, 0x41), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_41);
	assert_int_equal(env->cpu.cs.sel, SEL_SMALL | 3);
	assert_int_equal(env->cpu.ss.sel, SEL_UDATA32);
	assert_int_equal(env->cpu.gpr[EMU_RSP], USTACK_TOP - 12);
}

/* A task gate is not emulated: the VM stops (LIMITATION), nothing changed. */
static void test_task_gate_unknown(void **state)
{
	struct env *env = *state;
	struct emu_cpu before = env->cpu;

	assert_int_equal(deliver(env, (struct emu_event){ .kind = EMU_EV_SOFT_INT,
							  .vector = 0x42,
							  .insn_len = 2 }),
			 EMU_UNKNOWN);
	assert_memory_equal(&env->cpu, &before, sizeof(before));
	/* As the int instruction: the report says the delivery was refused (shadow_emu_stop). */
	{
		struct emu_report rep;

		assert_int_equal(RUN32(env, &rep, 0xcd, 0x42), EMU_UNKNOWN);
		assert_true(rep.delivery_refused);
		assert_memory_equal(&env->cpu, &before, sizeof(before));
	}
}

/*
 * The TSS's SS0 checked as the CPU checks it: not a writable data segment
 * #TS(SS0), null #TS(0), beyond the TSS's limit #TS(TR). The #TS handler
 * here runs at CPL3 (a DPL3 code segment) on the user's stack, so that its
 * own delivery needs no SS0.
 */
static void test_tss_stack_checks(void **state)
{
	static const struct {
		u16 ss0;
		u32 tr_limit, err;
	} cases[] = { { SEL_BADSS, 103, SEL_BADSS }, { 0, 103, 0 }, { SEL_KDATA, 8, SEL_TSS } };
	struct env *env = *state;
	struct emu_report rep;

	set_gate32_sel(env, X86_EXC_TS, H_TS, 0xe, 0, SEL_UCODE32);
	env->cpu.tr_sel = SEL_TSS;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(env->ram + TSS_GPA + 8, &cases[i].ss0, 2);
		env->cpu.tr_limit = cases[i].tr_limit;
		to_user32(env);
		env->cpu.rip = CODE_GPA;
		env->cpu.gpr[EMU_RSP] = USTACK_TOP;
		assert_int_equal(RUN32(env, &rep, 0xcd, 0x40), EMU_DONE);
		if (env->cpu.rip != H_TS)
			fail_msg("case %u: rip 0x%llx", i, (unsigned long long)env->cpu.rip);
		assert_int_equal(env->cpu.gpr[EMU_RSP], USTACK_TOP - 16);
		assert_int_equal(peek32(env, USTACK_TOP - 16), cases[i].err);
		assert_int_equal(peek32(env, USTACK_TOP - 12), CODE_GPA);
	}
	/* With the #TS handler at CPL0 too, every handler needs SS0: a triple fault. */
	set_gate32(env, X86_EXC_TS, H_TS, 0xe, 0);
	to_user32(env);
	env->cpu.rip = CODE_GPA;
	assert_int_equal(RUN32(env, &rep, 0xcd, 0x40), EMU_TRIPLE_FAULT);
}

/* The entry point beyond the target CS's limit: #GP(EXT), here 0 for int n. */
static void test_entry_beyond_limit(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	set_gate32_sel(env, 0x41, H_41, 0xe, 0, SEL_SMALL); /* 0x1700 > 0xfff */
	assert_int_equal(RUN32(env, &rep, 0xcd, 0x41), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_GP);
	assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP]), 0);
	assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP] + 4), CODE_GPA);
}

/* #PF whose gate is missing: #NP while delivering #PF is a double fault. */
static void test_double_fault(void **state)
{
	struct env *env = *state;
	u32 *g = (u32 *)(env->ram + IDT_GPA) + X86_EXC_PF * 2;

	g[1] &= ~0x8000u;
	assert_int_equal(deliver(env, exc(X86_EXC_PF, true, 0)), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_DF);
	assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP]), 0);
}

/* ltr in legacy mode reads an 8-byte TSS descriptor and marks it busy; the next entry stays. */
static void test_ltr_8_byte_descriptor(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 *gdt = (u64 *)(env->ram + GDT_GPA);

	/* A 32-bit available TSS (type 9) at TSS_GPA, limit 103. */
	gdt[SEL_TSS / 8] = 103 | ((u64)TSS_GPA << 16) | 0x89ull << 40;
	gdt[SEL_TSS / 8 + 1] = GDT_DATA_DPL0;
	env->cpu.tr_base = 0;
	env->cpu.tr_limit = 0;
	env->cpu.gpr[EMU_RAX] = SEL_TSS;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x00, 0xd8), EMU_DONE); /* ltr %ax */
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.tr_sel, SEL_TSS);
	assert_int_equal(env->cpu.tr_base, TSS_GPA);
	assert_int_equal(env->cpu.tr_limit, 103);
	assert_int_equal(gdt[SEL_TSS / 8] >> 40 & 0xff, 0x8b); /* busy */
	assert_int_equal(gdt[SEL_TSS / 8 + 1], GDT_DATA_DPL0);
	/* Loading a busy TSS: #GP(sel). */
	env->cpu.rip = CODE_GPA;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x00, 0xd8), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_GP);
	assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP]), SEL_TSS);
}

/* ---- iret ----------------------------------------------------------------- */

static void push_frame(struct env *env, const u32 *words, unsigned n)
{
	u32 esp = (u32)env->cpu.gpr[EMU_RSP] - 4 * n;

	for (unsigned i = 0; i < n; i++)
		poke32(env, esp + 4 * i, words[i]);
	env->cpu.gpr[EMU_RSP] = esp;
}

static void test_iret_same_level(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u32 esp0;

	env->cpu.rflags = RFLAGS_FIXED; /* IF = 0 in the handler */
	push_frame(env, (const u32[]){ 0x2000, SEL_KCODE, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_CF },
		   3);
	esp0 = (u32)env->cpu.gpr[EMU_RSP];
	assert_int_equal(RUN32(env, &rep, 0xcf), EMU_DONE);
	assert_int_equal(env->cpu.rip, 0x2000);
	assert_int_equal(env->cpu.gpr[EMU_RSP], esp0 + 12);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_CF);
	assert_true(rep.notes & EMU_NOTE_IF_SET);
	assert_false(rep.notes & EMU_NOTE_CPL);
}

static void test_iret_to_user(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u32 ksp;

	push_frame(env,
		   (const u32[]){ 0x3000, SEL_UCODE32, RFLAGS_FIXED | RFLAGS_IF | (3u << 12),
				  0x7ff0, SEL_UDATA32 },
		   5);
	ksp = (u32)env->cpu.gpr[EMU_RSP];
	assert_int_equal(RUN32(env, &rep, 0xcf), EMU_DONE);
	assert_int_equal(env->cpu.rip, 0x3000);
	assert_int_equal(env->cpu.cs.sel, SEL_UCODE32);
	assert_int_equal(env->cpu.cs.dpl, 3);
	assert_true(env->cpu.cs.db && !env->cpu.cs.l);
	assert_int_equal(env->cpu.ss.sel, SEL_UDATA32);
	assert_int_equal(env->cpu.gpr[EMU_RSP], 0x7ff0);
	assert_int_equal(env->cpu.rflags & RFLAGS_IOPL_MASK, 3u << 12); /* CPL0 may set IOPL */
	assert_true(rep.notes & EMU_NOTE_CPL);
	(void)ksp;
}

/* To CPL3 with an SS of the wrong RPL: #GP(SS selector). */
static void test_iret_bad_ss(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	push_frame(env, (const u32[]){ 0x3000, SEL_UCODE32, RFLAGS_FIXED, 0x7ff0, SEL_KDATA }, 5);
	assert_int_equal(RUN32(env, &rep, 0xcf), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_GP);
	assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP]), SEL_KDATA);
}

/* At CPL3 iret cannot change IOPL, nor IF while CPL > IOPL; nor return inward. */
static void test_iret_at_user(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user32(env);
	push_frame(env, (const u32[]){ 0x3000, SEL_UCODE32, RFLAGS_FIXED | (3u << 12) | RFLAGS_CF },
		   3);
	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_IF;
	assert_int_equal(RUN32(env, &rep, 0xcf), EMU_DONE);
	assert_int_equal(env->cpu.rip, 0x3000);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_CF);

	push_frame(env, (const u32[]){ 0x3000, SEL_KCODE, RFLAGS_FIXED }, 3);
	env->cpu.rip = CODE_GPA;
	assert_int_equal(RUN32(env, &rep, 0xcf), EMU_DONE);
	assert_int_equal(env->cpu.rip, H_GP); /* RPL 0 < CPL 3 */
	assert_int_equal(peek32(env, (u32)env->cpu.gpr[EMU_RSP]), SEL_KCODE);
}

/* NT = 1 (a task return) is not emulated: the VM stops, nothing changed. */
static void test_iret_nested_task_unknown(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags |= RFLAGS_NT;
	assert_int_equal(RUN32(env, &rep, 0xcf), EMU_UNKNOWN);
}

/* int $0x40 from user, then iret in the handler: back to exactly where it was. */
static void test_round_trip(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu user;

	to_user32(env);
	env->cpu.gpr[EMU_RSP] = USTACK_TOP;
	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_IF | RFLAGS_ZF;
	user = env->cpu;
	assert_int_equal(RUN32(env, &rep, 0xcd, 0x40), EMU_DONE);
	assert_int_equal(RUN32(env, &rep, 0xcf), EMU_DONE);
	assert_int_equal(env->cpu.rip, user.rip + 2);
	assert_int_equal(env->cpu.gpr[EMU_RSP], USTACK_TOP);
	assert_int_equal(env->cpu.rflags, user.rflags);
	assert_int_equal(env->cpu.cs.sel, SEL_UCODE32);
	assert_int_equal(env->cpu.ss.sel, SEL_UDATA32);
	assert_int_equal(env->cpu.ss.dpl, 3);
}

/* ---- PAE paging: the PDPTE loads (SDM Vol. 3A §4.4.1) ------------------------ */

#define PDPT_A	  0x70020u /* two PDPTs in one page, 32-byte aligned */
#define PDPT_B	  0x70040u
#define PAE_PD	  0x71000u /* PDE 0: the first 2 MiB, identity */
#define CR0_PG_ON (CR0_PE | CR0_ET | CR0_NE | CR0_PG)

/* A store at a physical address (emu_env.h's poke64 takes a 4-level va). */
static void poke_pa64(struct env *env, u64 pa, u64 v)
{
	memcpy(env->ram + pa, &v, 8);
}

/* Paging off, CR4.PAE = 1, CR3 = PDPT_A; PDPT_B names the PD in its entry 3 too. */
static void setup_pae(struct env *env)
{
	poke_pa64(env, PAE_PD, 0 | PTE_P | PTE_RW | PTE_PS);
	poke_pa64(env, PDPT_A, PAE_PD | PTE_P);
	poke_pa64(env, PDPT_B, PAE_PD | PTE_P);
	poke_pa64(env, PDPT_B + 24, PAE_PD | PTE_P | PTE_PWT);
	env->cpu.cr4 = CR4_PAE;
	env->cpu.cr3 = PDPT_A;
}

/* mov %eax,%cr0 setting PG loads the PDPTEs of CR3; mov %ebx,%cr3 those of the new CR3. */
static void test_pae_loads(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	setup_pae(env);
	env->cpu.gpr[EMU_RAX] = CR0_PG_ON;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xc0), EMU_DONE);
	assert_int_equal(env->pdpte_loads, 1);
	assert_true(rep.notes & EMU_NOTE_PDPTE);
	assert_true(rep.notes & EMU_NOTE_PAGING_MODE);
	assert_int_equal(env->cpu.pdpte[0], PAE_PD | PTE_P);
	assert_int_equal(env->cpu.pdpte[3], 0);
	assert_int_equal(env->cpu.efer & EFER_LMA, 0);
	/* Paging is on: the next instruction is fetched through the PDPTE registers. */
	env->cpu.gpr[EMU_RBX] = PDPT_B | 0x18; /* bits 4:0 are ignored */
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xdb), EMU_DONE);
	assert_int_equal(env->pdpte_loads, 2);
	assert_true(rep.notes & EMU_NOTE_PDPTE);
	assert_int_equal(env->cpu.cr3, PDPT_B | 0x18);
	assert_int_equal(env->cpu.pdpte[3], PAE_PD | PTE_P | PTE_PWT);
}

/* A PDPTE with a reserved bit: #GP(0) on the loading instruction, CR3 and the registers kept. */
static void test_pae_load_refused(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	setup_pae(env);
	env->cpu.cr0 = CR0_PG_ON;
	env->cpu.pdpte[0] = PAE_PD | PTE_P;
	poke_pa64(env, PDPT_B + 8, PAE_PD | PTE_P | PTE_RW); /* bit 1 is reserved in a PDPTE */
	env->cpu.gpr[EMU_RBX] = PDPT_B;
	before = env->cpu;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xdb), EMU_DONE);
	assert_int_equal(env->last_event.vector, X86_EXC_GP);
	assert_int_equal(env->last_event.error_code, 0);
	assert_int_equal(env->cpu.rip, H_GP);
	assert_int_equal(env->cpu.cr3, before.cr3);
	assert_memory_equal(env->cpu.pdpte, before.pdpte, sizeof(before.pdpte));
	assert_false(rep.notes & (EMU_NOTE_PDPTE | EMU_NOTE_CR3));
	/* Entering PAE paging through such a PDPT faults too, and paging stays off. */
	env->cpu = before;
	env->cpu.cr0 = CR0_PE | CR0_ET | CR0_NE;
	env->cpu.cr3 = PDPT_B;
	env->cpu.gpr[EMU_RAX] = CR0_PG_ON;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xc0), EMU_DONE);
	assert_int_equal(env->last_event.vector, X86_EXC_GP);
	assert_int_equal(env->cpu.cr0 & CR0_PG, 0);
}

/* Which CR0/CR4 writes load the PDPTEs: PG, CD, NW, PAE, PGE, PSE, SMEP; not WP or OSFXSR. */
static void test_pae_which_writes_load(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	setup_pae(env);
	env->cpu.cr0 = CR0_PG_ON;
	env->cpu.pdpte[0] = PAE_PD | PTE_P;
	env->cpu.gpr[EMU_RAX] = CR0_PG_ON | CR0_WP;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xc0), EMU_DONE);
	assert_int_equal(env->pdpte_loads, 0);
	assert_false(rep.notes & EMU_NOTE_PDPTE);
	env->cpu.gpr[EMU_RAX] = CR4_PAE | CR4_OSFXSR;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xe0), EMU_DONE);
	assert_int_equal(env->pdpte_loads, 0);
	env->cpu.gpr[EMU_RAX] = CR4_PAE | CR4_OSFXSR | CR4_PGE;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xe0), EMU_DONE);
	assert_int_equal(env->pdpte_loads, 1);
	assert_true(rep.notes & EMU_NOTE_PDPTE);
	env->cpu.gpr[EMU_RAX] = CR0_PG_ON | CR0_WP | CR0_CD;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xc0), EMU_DONE);
	assert_int_equal(env->pdpte_loads, 2);
	/* Leaving PAE for 32-bit paging loads nothing, nor does a CR3 write there. */
	env->cpu.gpr[EMU_RAX] = CR4_PSE;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xe0), EMU_DONE);
	assert_int_equal(env->pdpte_loads, 2);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_legacy, teardown)
	const struct CMUnitTest tests[] = {
		T(test_sysenter_sysexit),
		T(test_fault_same_level),
		T(test_soft_int_from_user),
		T(test_soft_int_gate_dpl),
		T(test_gate_not_present),
		T(test_idt_limit),
		T(test_gate_target_checks),
		T(test_task_gate_unknown),
		T(test_tss_stack_checks),
		T(test_entry_beyond_limit),
		T(test_double_fault),
		T(test_ltr_8_byte_descriptor),
		T(test_iret_same_level),
		T(test_iret_to_user),
		T(test_iret_bad_ss),
		T(test_iret_at_user),
		T(test_iret_nested_task_unknown),
		T(test_round_trip),
		T(test_pae_loads),
		T(test_pae_load_refused),
		T(test_pae_which_writes_load),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
