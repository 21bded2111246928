// SPDX-License-Identifier: MIT
/*
 * Unit tests for the shadow-mode privileged instructions
 * (decode/emulate_priv.c): each against its effect on the virtual state and
 * its faults at virtual CPL3 and for bad operands. Fixture: emu_env.h,
 * with to_shadow(). Expected values follow the Intel SDM Vol. 2 entry of
 * each instruction and Vol. 3A §2.5 for the control registers.
 */
#include "emu_env.h"

static int setup_shadow(void **state)
{
	int r = setup(state);

	to_shadow(*state);
	return r;
}

/* The instruction raised #GP(err), delivered through the guest IDT. */
static void assert_gp(struct env *env, const struct emu_report *rep, u32 err)
{
	assert_true(rep->faulted);
	assert_int_equal(rep->fault_vector, X86_EXC_GP);
	assert_int_equal(env->last_event.error_code, err);
	assert_int_equal(env->cpu.rip, HANDLER_GP);
}

static void assert_ud(struct env *env, const struct emu_report *rep)
{
	assert_true(rep->faulted);
	assert_int_equal(rep->fault_vector, X86_EXC_UD);
	assert_int_equal(env->cpu.rip, HANDLER_UD);
}

/* Emulated without a fault; RIP moved by `len`. */
static void assert_done(struct env *env, enum emu_result r, const struct emu_report *rep,
			u64 rip_before, unsigned len)
{
	assert_int_equal(r, EMU_DONE);
	assert_false(rep->faulted);
	assert_int_equal(env->cpu.rip, rip_before + len);
}

/* ---- every privileged instruction at virtual CPL3 ------------------------- */

struct priv_case {
	const char *name;
	u8 code[8];
	unsigned len;
};

/*
 * #GP(0) at virtual CPL3 (IOPL 0) for each privileged instruction; the
 * fault is delivered to the CPL0 handler, so the virtual CPL changes too.
 */
static void test_gp_at_cpl3(void **state)
{
	static const struct priv_case cases[] = {
		{ "mov cr0, rax", { 0x0f, 0x22, 0xc0 }, 3 },
		{ "mov rax, cr0", { 0x0f, 0x20, 0xc0 }, 3 },
		{ "mov cr2, rax", { 0x0f, 0x22, 0xd0 }, 3 },
		{ "mov cr3, rax", { 0x0f, 0x22, 0xd8 }, 3 },
		{ "mov rax, cr3", { 0x0f, 0x20, 0xd8 }, 3 },
		{ "mov cr4, rax", { 0x0f, 0x22, 0xe0 }, 3 },
		{ "mov cr8, rax", { 0x44, 0x0f, 0x22, 0xc0 }, 4 },
		{ "mov dr7, rax", { 0x0f, 0x23, 0xf8 }, 3 },
		{ "clts", { 0x0f, 0x06 }, 2 },
		{ "lmsw ax", { 0x0f, 0x01, 0xf0 }, 3 },
		{ "invlpg [rdi]", { 0x0f, 0x01, 0x3f }, 3 },
		{ "wbinvd", { 0x0f, 0x09 }, 2 },
		{ "invd", { 0x0f, 0x08 }, 2 },
		{ "hlt", { 0xf4 }, 1 },
		{ "cli", { 0xfa }, 1 },
		{ "sti", { 0xfb }, 1 },
		{ "rdmsr", { 0x0f, 0x32 }, 2 },
		{ "wrmsr", { 0x0f, 0x30 }, 2 },
		{ "xsetbv", { 0x0f, 0x01, 0xd1 }, 3 },
		{ "swapgs", { 0x0f, 0x01, 0xf8 }, 3 },
		{ "lgdt [rdi]", { 0x0f, 0x01, 0x17 }, 3 },
		{ "lidt [rdi]", { 0x0f, 0x01, 0x1f }, 3 },
		{ "lldt ax", { 0x0f, 0x00, 0xd0 }, 3 },
		{ "ltr ax", { 0x0f, 0x00, 0xd8 }, 3 },
		{ "sysretq", { 0x48, 0x0f, 0x07 }, 3 },
		{ "invpcid rax, [rdi]", { 0x66, 0x0f, 0x38, 0x82, 0x07 }, 5 },
	};
	struct env *env = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct emu_report rep;
		struct emu_cpu before;

		env->cpu.rip = CODE_VA;
		to_user(env);
		env->cpu.rflags = RFLAGS_FIXED | RFLAGS_IF;
		env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
		env->cpu.gpr[EMU_RDI] = DATA_VA;
		env->cpu.gpr[EMU_RAX] = 0;
		env->cpu.gpr[EMU_RCX] = 0;
		env->nwrites = 0;
		before = env->cpu;
		print_message("%s\n", cases[i].name);
		assert_int_equal(run(env, cases[i].code, cases[i].len, &rep), EMU_DONE);
		assert_gp(env, &rep, 0);
		assert_true(rep.notes & EMU_NOTE_CPL);
		assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
		assert_frame(env, true, 0, CODE_VA, SEL_UCODE, before.rflags | RFLAGS_RF,
			     before.gpr[EMU_RSP], SEL_UDATA);
		assert_int_equal(env->cpu.cr3, before.cr3);
		assert_int_equal(env->cpu.cr0, before.cr0);
	}
}

/* In hw mode the shadow whitelist is off: KVM runs these itself. */
static void test_hw_mode_does_not_emulate_priv(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.mode = EMU_MODE_HW;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x22, 0xd8), EMU_UNKNOWN);
	assert_string_equal(rep.mnemonic, "mov");
	assert_int_equal(RUN(env, &rep, 0xfa), EMU_UNKNOWN);
	assert_memory_equal(&env->cpu, &before, sizeof(before));
}

/* ---- control registers ---------------------------------------------------- */

static void test_mov_cr0(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 cr0 = env->cpu.cr0;

	/* Read. */
	assert_done(env, RUN(env, &rep, 0x0f, 0x20, 0xc0), &rep, CODE_VA, 3);
	assert_int_equal(env->cpu.gpr[EMU_RAX], cr0);
	assert_int_equal(rep.notes, 0);
	/* Clearing WP changes paging: reported. Undefined low bits are ignored, ET stays 1. */
	env->cpu.gpr[EMU_RAX] = (cr0 & ~(CR0_WP | CR0_ET)) | (1ull << 6);
	assert_done(env, RUN(env, &rep, 0x0f, 0x22, 0xc0), &rep, CODE_VA + 3, 3);
	assert_int_equal(env->cpu.cr0, cr0 & ~CR0_WP);
	assert_int_equal(rep.notes, EMU_NOTE_PAGING_MODE);
	assert_true(env->cpu.dirty & EMU_DIRTY_VIRT);
	/* Setting TS does not touch paging. */
	env->cpu.gpr[EMU_RAX] = env->cpu.cr0 | CR0_TS;
	assert_done(env, RUN(env, &rep, 0x0f, 0x22, 0xc0), &rep, CODE_VA + 6, 3);
	assert_int_equal(rep.notes, 0);
	assert_true(env->cpu.cr0 & CR0_TS);
}

static void test_mov_cr0_gp(void **state)
{
	static const u64 bad[] = {
		1ull << 32,		  /* bits 63:32 reserved */
		CR0_PE | CR0_PG | CR0_NW, /* NW without CD */
		CR0_PE | CR0_ET,	  /* clearing PG in IA-32e mode */
		CR0_PG | CR0_ET,	  /* PG without PE */
	};
	struct env *env = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct emu_report rep;
		u64 cr0;

		env->cpu.rip = CODE_VA;
		env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
		env->cpu.cs.sel = SEL_KCODE;
		cr0 = env->cpu.cr0;
		env->cpu.gpr[EMU_RAX] = bad[i];
		assert_int_equal(RUN(env, &rep, 0x0f, 0x22, 0xc0), EMU_DONE);
		assert_gp(env, &rep, 0);
		assert_int_equal(env->cpu.cr0, cr0);
		assert_int_equal(rep.notes, 0);
	}
}

static void test_mov_cr3(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 root = env->cpu.cr3, other = 0x123000;

	env->cpu.gpr[EMU_RBX] = other | CR3_PWT;
	assert_done(env, RUN(env, &rep, 0x0f, 0x22, 0xdb), &rep, CODE_VA, 3); /* mov cr3, rbx */
	assert_string_equal(rep.mnemonic, "mov");
	assert_int_equal(env->cpu.cr3, other | CR3_PWT);
	assert_int_equal(rep.notes, EMU_NOTE_CR3);
	assert_false(rep.cr3_noflush);
	/* The tests' map callback walks the virtual CR3: put the real root back. */
	env->cpu.cr3 = root;
	assert_done(env, RUN(env, &rep, 0x0f, 0x20, 0xd9), &rep, CODE_VA + 3, 3); /* mov rcx, cr3 */
	assert_int_equal(env->cpu.gpr[EMU_RCX], root);
	/* With PCIDE, bit 63 asks to keep the PCID's translations; it is not stored. */
	env->cpu.cr4 |= CR4_PCIDE;
	env->cpu.gpr[EMU_RBX] = CR3_NOFLUSH | other | 5;
	assert_done(env, RUN(env, &rep, 0x0f, 0x22, 0xdb), &rep, CODE_VA + 6, 3);
	assert_int_equal(env->cpu.cr3, other | 5);
	assert_true(rep.cr3_noflush);
}

static void test_mov_cr3_reserved_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 root = env->cpu.cr3;

	/* An address bit at or above MAXPHYADDR (40 here). */
	env->cpu.gpr[EMU_RAX] = 1ull << TEST_MAXPHYADDR;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x22, 0xd8), EMU_DONE);
	assert_gp(env, &rep, 0);
	assert_int_equal(env->cpu.cr3, root);
	assert_int_equal(rep.notes & EMU_NOTE_CR3, 0);
	/* Bit 63 is reserved when CR4.PCIDE = 0. */
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = CR3_NOFLUSH | 0x5000;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x22, 0xd8), EMU_DONE);
	assert_gp(env, &rep, 0);
	assert_int_equal(env->cpu.cr3, root);
}

static void test_mov_cr4(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 cr4 = env->cpu.cr4;

	env->cpu.gpr[EMU_RAX] = cr4 | CR4_PGE;
	assert_done(env, RUN(env, &rep, 0x0f, 0x22, 0xe0), &rep, CODE_VA, 3);
	assert_int_equal(env->cpu.cr4, cr4 | CR4_PGE);
	assert_int_equal(rep.notes, EMU_NOTE_PAGING_MODE);
	/* OSFXSR is not a paging bit. */
	env->cpu.gpr[EMU_RAX] = env->cpu.cr4 | CR4_OSFXSR;
	assert_done(env, RUN(env, &rep, 0x0f, 0x22, 0xe0), &rep, CODE_VA + 3, 3);
	assert_int_equal(rep.notes, 0);
	assert_done(env, RUN(env, &rep, 0x0f, 0x20, 0xe2), &rep, CODE_VA + 6, 3); /* mov rdx, cr4 */
	assert_int_equal(env->cpu.gpr[EMU_RDX], cr4 | CR4_PGE | CR4_OSFXSR);
}

static void test_mov_cr4_gp(void **state)
{
	struct env *env = *state;
	const u64 cr4 = env->cpu.cr4;
	const u64 bad[] = {
		cr4 | CR4_VMXE,	    /* not offered by the virtual CPU */
		cr4 | CR4_VME,	    /* not emulated (virtual-8086 extensions) */
		cr4 | CR4_PVI,	    /* not emulated (VIF at CPL3) */
		cr4 | (1ull << 32), /* reserved */
		cr4 & ~CR4_PAE,	    /* IA-32e mode needs PAE */
		cr4 | CR4_LA57,	    /* not offered; and no paging-depth change in IA-32e */
		cr4 | CR4_PCIDE,    /* CR3[11:0] = 3 below */
	};

	env->cpu.cr3 |= 3;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct emu_report rep;

		env->cpu.rip = CODE_VA;
		env->cpu.cs.sel = SEL_KCODE;
		env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
		env->cpu.gpr[EMU_RAX] = bad[i];
		assert_int_equal(RUN(env, &rep, 0x0f, 0x22, 0xe0), EMU_DONE);
		assert_gp(env, &rep, 0);
		assert_int_equal(env->cpu.cr4, cr4);
	}
}

/* The VMM's CPUID decides the CR4 bits: virt.cr4_valid. */
static void test_mov_cr4_valid_mask(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.virt.cr4_valid = CR4_PAE | CR4_OSXSAVE; /* no SMEP */
	env->cpu.gpr[EMU_RAX] = env->cpu.cr4 | CR4_SMEP;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x22, 0xe0), EMU_DONE);
	assert_gp(env, &rep, 0);
}

static void test_mov_cr2_cr8(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RAX] = 0xdeadbeefcafeull;
	assert_done(env, RUN(env, &rep, 0x0f, 0x22, 0xd0), &rep, CODE_VA, 3);
	assert_int_equal(env->cpu.cr2, 0xdeadbeefcafeull);
	assert_int_equal(rep.notes, 0);
	env->cpu.gpr[EMU_RAX] = 0xf;
	assert_done(env, RUN(env, &rep, 0x44, 0x0f, 0x22, 0xc0), &rep, CODE_VA + 3, 4);
	assert_int_equal(env->cpu.virt.cr8, 0xf);
	assert_int_equal(rep.notes, EMU_NOTE_TPR);
	assert_done(env, RUN(env, &rep, 0x44, 0x0f, 0x20, 0xc3), &rep, CODE_VA + 7,
		    4); /* mov rbx, cr8 */
	assert_int_equal(env->cpu.gpr[EMU_RBX], 0xf);
	/* CR8 bits 63:4 are reserved. */
	env->cpu.gpr[EMU_RAX] = 0x10;
	assert_int_equal(RUN(env, &rep, 0x44, 0x0f, 0x22, 0xc0), EMU_DONE);
	assert_gp(env, &rep, 0);
	assert_int_equal(env->cpu.virt.cr8, 0xf);
}

/* CR1, CR5-CR7, CR9-CR15 do not exist: #UD (SDM Vol. 2B MOV CR). */
static void test_mov_cr_nonexistent_ud(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_int_equal(RUN(env, &rep, 0x0f, 0x22, 0xc8), EMU_DONE); /* mov cr1, rax */
	assert_ud(env, &rep);
}

/* ---- clts, lmsw, smsw, invlpg, wbinvd, invd, hlt --------------------------- */

static void test_clts_lmsw(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.cr0 |= CR0_TS;
	assert_done(env, RUN(env, &rep, 0x0f, 0x06), &rep, CODE_VA, 2);
	assert_string_equal(rep.mnemonic, "clts");
	assert_int_equal(env->cpu.cr0 & CR0_TS, 0);
	/* lmsw loads MP, EM, TS; PE can be set but not cleared. */
	env->cpu.gpr[EMU_RAX] = 0xfff0 | CR0_MP | CR0_TS; /* PE = 0 */
	assert_done(env, RUN(env, &rep, 0x0f, 0x01, 0xf0), &rep, CODE_VA + 2, 3);
	assert_string_equal(rep.mnemonic, "lmsw");
	assert_true(env->cpu.cr0 & CR0_PE);
	assert_true(env->cpu.cr0 & CR0_MP);
	assert_true(env->cpu.cr0 & CR0_TS);
	assert_true(env->cpu.cr0 & CR0_PG);
}

static void test_smsw(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	poke64(env, DATA_VA, ~0ull);
	assert_done(env, RUN(env, &rep, 0x48, 0x0f, 0x01, 0xe0), &rep, CODE_VA, 4); /* smsw rax */
	assert_int_equal(env->cpu.gpr[EMU_RAX], env->cpu.cr0);
	assert_done(env, RUN(env, &rep, 0x0f, 0x01, 0x27), &rep, CODE_VA + 4, 3); /* smsw [rdi] */
	assert_int_equal(peek64(env, DATA_VA), 0xffffffffffff0000ull | (u16)env->cpu.cr0);
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(env->writes[0].len, 2);
	/* CPL3 without UMIP: allowed. With UMIP: #GP(0). */
	to_user(env);
	assert_done(env, RUN(env, &rep, 0x48, 0x0f, 0x01, 0xe0), &rep, CODE_VA + 7, 4);
	env->cpu.cr4 |= CR4_UMIP;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0x01, 0xe0), EMU_DONE);
	assert_gp(env, &rep, 0);
}

static void test_invlpg(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA + 0x123; /* no translation needed */
	assert_done(env, RUN(env, &rep, 0x0f, 0x01, 0x3f), &rep, CODE_VA, 3);
	assert_string_equal(rep.mnemonic, "invlpg");
	assert_int_equal(env->flushes, 1);
	assert_int_equal(env->flush_type, EMU_FLUSH_INVLPG);
	assert_int_equal(env->flush_la, UNMAPPED_VA + 0x123);
	assert_int_equal(env->flush_pcid, 0);
	/* With PCIDE, the current PCID. */
	env->cpu.cr4 |= CR4_PCIDE;
	env->cpu.cr3 |= 7;
	assert_done(env, RUN(env, &rep, 0x0f, 0x01, 0x3f), &rep, CODE_VA + 3, 3);
	assert_int_equal(env->flush_pcid, 7);
	/* A non-canonical address: a no-op, no fault. */
	env->cpu.gpr[EMU_RDI] = 0x0000800000000000ull;
	assert_done(env, RUN(env, &rep, 0x0f, 0x01, 0x3f), &rep, CODE_VA + 6, 3);
	assert_int_equal(env->flushes, 2);
}

static void test_wbinvd_invd_hlt(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_done(env, RUN(env, &rep, 0x0f, 0x09), &rep, CODE_VA, 2);
	assert_string_equal(rep.mnemonic, "wbinvd");
	assert_int_equal(rep.notes, 0);
	assert_done(env, RUN(env, &rep, 0x0f, 0x08), &rep, CODE_VA + 2, 2);
	assert_string_equal(rep.mnemonic, "invd");
	assert_done(env, RUN(env, &rep, 0xf4), &rep, CODE_VA + 4, 1);
	assert_string_equal(rep.mnemonic, "hlt");
	assert_int_equal(rep.notes, EMU_NOTE_HALT);
}

/* ---- the virtual IF -------------------------------------------------------- */

static void test_cli_sti(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_done(env, RUN(env, &rep, 0xfa), &rep, CODE_VA, 1);
	assert_string_equal(rep.mnemonic, "cli");
	assert_int_equal(env->cpu.rflags & RFLAGS_IF, 0);
	assert_int_equal(rep.notes, 0);
	/* sti from IF = 0: IF set, STI blocking for one instruction, reported. */
	assert_done(env, RUN(env, &rep, 0xfb), &rep, CODE_VA + 1, 1);
	assert_true(env->cpu.rflags & RFLAGS_IF);
	assert_true(env->cpu.virt.int_shadow);
	assert_int_equal(rep.notes, EMU_NOTE_IF_SET);
	/* The next emulated instruction ends the shadow. */
	assert_done(env, RUN(env, &rep, 0x0f, 0x09), &rep, CODE_VA + 2, 2);
	assert_false(env->cpu.virt.int_shadow);
	/* sti with IF already 1: no shadow (SDM Vol. 2B STI). */
	assert_done(env, RUN(env, &rep, 0xfb), &rep, CODE_VA + 4, 1);
	assert_false(env->cpu.virt.int_shadow);
	assert_int_equal(rep.notes, 0);
}

/* At CPL3 with IOPL 3, cli/sti are allowed (CPL <= IOPL). */
static void test_cli_iopl3(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	env->cpu.rflags |= RFLAGS_IOPL_MASK;
	assert_done(env, RUN(env, &rep, 0xfa), &rep, CODE_VA, 1);
	assert_int_equal(env->cpu.rflags & RFLAGS_IF, 0);
}

/* pushf after cli shows IF = 0 (the virtual IF); VM and RF never appear. */
static void test_pushf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = env->cpu.gpr[EMU_RSP];

	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_CF | RFLAGS_RF | (1ull << RFLAGS_IOPL_SHIFT);
	assert_done(env, RUN(env, &rep, 0x9c), &rep, CODE_VA, 1);
	assert_string_equal(rep.mnemonic, "pushfq");
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp - 8);
	assert_int_equal(peek64(env, rsp - 8),
			 RFLAGS_FIXED | RFLAGS_CF | (1ull << RFLAGS_IOPL_SHIFT));
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(env->writes[0].len, 8);
	/* 66h: 16 bits. */
	assert_done(env, RUN(env, &rep, 0x66, 0x9c), &rep, CODE_VA + 1, 2);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp - 10);
	assert_int_equal(env->writes[1].len, 2);
	/* 66 REX.W: REX.W wins, 64 bits (test_emulate_native found 16); REX then 66: 16. */
	assert_done(env, RUN(env, &rep, 0x66, 0x48, 0x9c), &rep, CODE_VA + 3, 3);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp - 18);
	assert_int_equal(env->writes[2].len, 8);
	assert_done(env, RUN(env, &rep, 0x48, 0x66, 0x9c), &rep, CODE_VA + 6, 3);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp - 20);
	assert_int_equal(env->writes[3].len, 2);
}

/* popf at CPL0 restores IF and IOPL exactly; RF cleared, VM/VIF/VIP kept. */
static void test_popf_cpl0(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = env->cpu.gpr[EMU_RSP] - 8;

	env->cpu.gpr[EMU_RSP] = rsp;
	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_VIF;
	poke64(env, rsp,
	       RFLAGS_IF | RFLAGS_ZF | RFLAGS_IOPL_MASK | RFLAGS_RF | RFLAGS_VM | RFLAGS_AC |
		       (1ull << 3) | (1ull << 40));
	assert_done(env, RUN(env, &rep, 0x9d), &rep, CODE_VA, 1);
	assert_string_equal(rep.mnemonic, "popfq");
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_VIF | RFLAGS_IF | RFLAGS_ZF |
						  RFLAGS_IOPL_MASK | RFLAGS_AC);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp + 8);
	assert_int_equal(rep.notes, EMU_NOTE_IF_SET);
	/* popf of IF = 0. */
	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, RFLAGS_FIXED);
	assert_done(env, RUN(env, &rep, 0x9d), &rep, CODE_VA + 1, 1);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_VIF);
	assert_int_equal(rep.notes, 0);
}

/* popf at CPL3 with IOPL 0: IF and IOPL do not change, silently (SDM POPF). */
static void test_popf_cpl3(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = env->cpu.gpr[EMU_RSP] - 8;

	to_user(env);
	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, RFLAGS_FIXED | RFLAGS_IOPL_MASK | RFLAGS_CF);
	assert_done(env, RUN(env, &rep, 0x9d), &rep, CODE_VA, 1);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_CF);
}

/* 66h popf: bits 15:0 only; AC (bit 18) is kept. */
static void test_popf16(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = env->cpu.gpr[EMU_RSP] - 2;

	env->cpu.gpr[EMU_RSP] = rsp;
	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_AC | RFLAGS_IF;
	poke64(env, rsp, 0xffff0000ull | RFLAGS_CF);
	assert_done(env, RUN(env, &rep, 0x66, 0x9d), &rep, CODE_VA, 2);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_AC | RFLAGS_CF);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp + 2);
}

/* popf is reached through patching: emu_insn_bytes runs the original bytes. */
static void test_popf_patched_bytes(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = env->cpu.gpr[EMU_RSP] - 8;

	env->cpu.gpr[EMU_RSP] = rsp;
	env->cpu.rflags = RFLAGS_FIXED;
	poke64(env, rsp, RFLAGS_FIXED | RFLAGS_IF);
	memset(env->ram + CODE_GPA, 0xcc, 1); /* the patched int3 at RIP */
	assert_int_equal(emu_insn_bytes(&env->cpu, &env->ops, (const u8[]){ 0x9d }, 1, &rep),
			 EMU_DONE);
	assert_string_equal(rep.mnemonic, "popfq");
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF);
	assert_int_equal(env->cpu.rip, CODE_VA + 1);
}

/* ---- MSRs ------------------------------------------------------------------ */

static enum emu_result wrmsr(struct env *env, u32 index, u64 v, struct emu_report *rep)
{
	env->cpu.rip = CODE_VA;
	env->cpu.cs.sel = SEL_KCODE;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	env->cpu.gpr[EMU_RCX] = index;
	env->cpu.gpr[EMU_RAX] = (u32)v | 0xabcd00000000ull; /* high halves are ignored */
	env->cpu.gpr[EMU_RDX] = v >> 32;
	return RUN(env, rep, 0x0f, 0x30);
}

static u64 rdmsr(struct env *env, u32 index)
{
	struct emu_report rep;

	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RCX] = index;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x32), EMU_DONE);
	assert_false(rep.faulted);
	assert_string_equal(rep.mnemonic, "rdmsr");
	return (env->cpu.gpr[EMU_RDX] << 32) | env->cpu.gpr[EMU_RAX];
}

static void test_msr_held(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_int_equal(wrmsr(env, EMU_MSR_LSTAR, 0xffffffff81000000ull, &rep), EMU_DONE);
	assert_false(rep.faulted);
	assert_string_equal(rep.mnemonic, "wrmsr");
	assert_int_equal(env->cpu.virt.lstar, 0xffffffff81000000ull);
	assert_int_equal(rdmsr(env, EMU_MSR_LSTAR), 0xffffffff81000000ull);
	assert_int_equal(wrmsr(env, EMU_MSR_STAR, 0x0023001000000000ull, &rep), EMU_DONE);
	assert_int_equal(rdmsr(env, EMU_MSR_STAR), 0x0023001000000000ull);
	assert_int_equal(wrmsr(env, EMU_MSR_SFMASK, 0x47700, &rep), EMU_DONE);
	assert_int_equal(env->cpu.virt.sfmask, 0x47700);
	assert_int_equal(wrmsr(env, EMU_MSR_FS_BASE, 0x7fff12345000ull, &rep), EMU_DONE);
	assert_int_equal(env->cpu.fs_base, 0x7fff12345000ull);
	assert_int_equal(wrmsr(env, EMU_MSR_KERNEL_GS_BASE, 0xffff888000000000ull, &rep), EMU_DONE);
	assert_int_equal(rdmsr(env, EMU_MSR_KERNEL_GS_BASE), 0xffff888000000000ull);
	assert_int_equal(wrmsr(env, EMU_MSR_TSC_AUX, 3, &rep), EMU_DONE);
	assert_int_equal(rdmsr(env, EMU_MSR_TSC_AUX), 3);
	assert_int_equal(wrmsr(env, EMU_MSR_PAT, 0x0007040600070406ull, &rep), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.virt.pat, 0x0007040600070406ull);
	assert_int_equal(rep.notes, 0);
}

static void test_msr_efer(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 efer = env->cpu.efer;

	assert_int_equal(rdmsr(env, EMU_MSR_EFER), efer);
	/* NXE off: a paging change. LMA cannot be written (it follows CR0.PG). */
	assert_int_equal(wrmsr(env, EMU_MSR_EFER, (efer & ~(EFER_NXE | EFER_LMA)), &rep), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.efer, efer & ~EFER_NXE);
	assert_int_equal(rep.notes, EMU_NOTE_PAGING_MODE);
	/* SCE only: no paging change. */
	assert_int_equal(wrmsr(env, EMU_MSR_EFER, env->cpu.efer & ~EFER_SCE, &rep), EMU_DONE);
	assert_int_equal(rep.notes, 0);
	assert_int_equal(env->cpu.efer, efer & ~(EFER_NXE | EFER_SCE));
}

/*
 * The guest's CPUID narrows EFER (virt.efer_valid): SCE without SYSCALL is
 * #GP(0), and a value without it is taken. (The fixture's tables use NX, so
 * NXE stays.)
 */
static void test_msr_efer_cpuid(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 efer = env->cpu.efer & ~EFER_SCE;

	env->cpu.efer = efer;
	env->cpu.virt.efer_valid = EFER_NXE | EFER_LME | EFER_LMA;
	assert_int_equal(wrmsr(env, EMU_MSR_EFER, efer | EFER_SCE, &rep), EMU_DONE);
	assert_gp(env, &rep, 0);
	assert_int_equal(env->cpu.efer, efer);
	assert_int_equal(wrmsr(env, EMU_MSR_EFER, efer, &rep), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.efer, efer);
	/* Without efer_valid, the emulator's own set: SCE is taken. */
	env->cpu.virt.efer_valid = 0;
	assert_int_equal(wrmsr(env, EMU_MSR_EFER, efer | EFER_SCE, &rep), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.efer, efer | EFER_SCE);
}

static void test_msr_gp(void **state)
{
	static const struct {
		u32 index;
		u64 value;
	} bad[] = {
		{ EMU_MSR_EFER,
		  EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE | (1ull << 1) }, /* reserved */
		{ EMU_MSR_EFER, EFER_LMA | EFER_NXE | EFER_SCE }, /* LME off while paging */
		{ EMU_MSR_LSTAR, 0x0000800000000000ull },	  /* non-canonical */
		{ EMU_MSR_CSTAR, 0x8000000000000000ull },
		{ EMU_MSR_GS_BASE, 0x0001000000000000ull },
		{ EMU_MSR_SFMASK, 1ull << 32 }, /* bits 63:32 reserved */
		{ EMU_MSR_TSC_AUX, 1ull << 32 },
		{ EMU_MSR_PAT, 0x0007040600070402ull }, /* type 2 is reserved */
		{ EMU_MSR_PAT, 0x0007040600070408ull }, /* type 8 */
		{ 0x12345678, 0 },			/* unknown to ops->msr */
	};
	struct env *env = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct emu_report rep;
		struct emu_cpu before = env->cpu;

		print_message("msr %#x = %#llx\n", bad[i].index, (unsigned long long)bad[i].value);
		assert_int_equal(wrmsr(env, bad[i].index, bad[i].value, &rep), EMU_DONE);
		assert_gp(env, &rep, 0);
		assert_int_equal(env->cpu.efer, before.efer);
		assert_int_equal(env->cpu.virt.lstar, before.virt.lstar);
		assert_int_equal(env->cpu.virt.pat, before.virt.pat);
	}
	/* rdmsr of an unknown MSR. */
	env->cpu.rip = CODE_VA;
	env->cpu.cs.sel = SEL_KCODE;
	env->cpu.gpr[EMU_RCX] = 0x12345678;
	{
		struct emu_report rep;

		assert_int_equal(RUN(env, &rep, 0x0f, 0x32), EMU_DONE);
		assert_gp(env, &rep, 0);
	}
}

/* An MSR emu_cpu does not hold goes to ops->msr (here: a virtual APIC base). */
static void test_msr_callback(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_int_equal(rdmsr(env, MSR_APIC_BASE), APIC_BASE_VALUE);
	assert_int_equal(wrmsr(env, MSR_APIC_BASE, 0xfee00800ull, &rep), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->apic_base, 0xfee00800ull);
}

/*
 * rdtsc, rdtscp: the TSC through ops->msr, TSC_AUX in ECX; under CR4.TSD
 * (Linux's PR_SET_TSC) #GP(0) in user mode, the value in the kernel.
 */
static void test_rdtsc(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.cr4 |= CR4_TSD;
	env->cpu.virt.tsc_aux = 0x1003;
	env->cpu.gpr[EMU_RAX] = env->cpu.gpr[EMU_RDX] = env->cpu.gpr[EMU_RCX] = ~0ull;
	assert_done(env, RUN(env, &rep, 0x0f, 0x31), &rep, CODE_VA, 2);
	assert_string_equal(rep.mnemonic, "rdtsc");
	assert_int_equal(env->cpu.gpr[EMU_RAX], (u32)FAKE_TSC);
	assert_int_equal(env->cpu.gpr[EMU_RDX], FAKE_TSC >> 32);
	assert_int_equal(env->cpu.gpr[EMU_RCX], ~0ull);
	assert_done(env, RUN(env, &rep, 0x0f, 0x01, 0xf9), &rep, CODE_VA + 2, 3);
	assert_string_equal(rep.mnemonic, "rdtscp");
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0x1003);
	/* User mode without TSD: allowed. */
	env->cpu.cr4 &= ~CR4_TSD;
	env->cpu.rip = CODE_VA;
	to_user(env);
	env->cpu.gpr[EMU_RAX] = 0;
	assert_done(env, RUN(env, &rep, 0x0f, 0x31), &rep, CODE_VA, 2);
	assert_int_equal(env->cpu.gpr[EMU_RAX], (u32)FAKE_TSC);
	/* User mode with TSD: #GP(0), both. */
	env->cpu.cr4 |= CR4_TSD;
	env->cpu.gpr[EMU_RAX] = 0;
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x31), EMU_DONE);
	assert_gp(env, &rep, 0);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0);
	env->cpu.rip = CODE_VA;
	to_user(env);
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xf9), EMU_DONE);
	assert_gp(env, &rep, 0);
}

/* ---- cpuid ------------------------------------------------------------------ */

/* The VMM's table, faked: leaves 1 and 7 answer with every bit set, others with leaf + subleaf +
 * register. */
static bool fake_cpuid(void *opaque, u32 leaf, u32 subleaf, u32 out[4])
{
	(void)opaque;
	if (leaf == 0xbad)
		return false;
	for (unsigned i = 0; i < 4; i++)
		out[i] = leaf == 1 || leaf == 7 ? ~0u : leaf + subleaf + i;
	return true;
}

/*
 * cpuid: the VMM's answer, upper halves cleared, at any CPL; OSXSAVE and
 * OSPKE as CR4 has them; a host error stops; without the op, unknown.
 */
static void test_cpuid(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->ops.cpuid = fake_cpuid;
	env->cpu.gpr[EMU_RAX] = 0xffffffff00000002ull;
	env->cpu.gpr[EMU_RCX] = 0x10;
	env->cpu.gpr[EMU_RBX] = env->cpu.gpr[EMU_RDX] = ~0ull;
	assert_done(env, RUN(env, &rep, 0x0f, 0xa2), &rep, CODE_VA, 2);
	assert_string_equal(rep.mnemonic, "cpuid");
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x12);
	assert_int_equal(env->cpu.gpr[EMU_RBX], 0x13);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0x14);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0x15);
	env->cpu.cr4 &= ~(CR4_OSXSAVE | CR4_PKE);
	env->cpu.gpr[EMU_RAX] = 1;
	env->cpu.rip = CODE_VA;
	assert_done(env, RUN(env, &rep, 0x0f, 0xa2), &rep, CODE_VA, 2);
	assert_int_equal(env->cpu.gpr[EMU_RCX], ~(1u << 27));
	env->cpu.cr4 |= CR4_OSXSAVE;
	env->cpu.gpr[EMU_RAX] = 1;
	env->cpu.rip = CODE_VA;
	assert_done(env, RUN(env, &rep, 0x0f, 0xa2), &rep, CODE_VA, 2);
	assert_int_equal(env->cpu.gpr[EMU_RCX], ~0u);
	env->cpu.gpr[EMU_RAX] = 7;
	env->cpu.gpr[EMU_RCX] = 0;
	env->cpu.rip = CODE_VA;
	assert_done(env, RUN(env, &rep, 0x0f, 0xa2), &rep, CODE_VA, 2);
	assert_int_equal(env->cpu.gpr[EMU_RCX], ~(1u << 4));
	/* User mode: the same answer, no fault. */
	env->cpu.rip = CODE_VA;
	to_user(env);
	env->cpu.gpr[EMU_RAX] = 3;
	env->cpu.gpr[EMU_RCX] = 0;
	assert_done(env, RUN(env, &rep, 0x0f, 0xa2), &rep, CODE_VA, 2);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 3);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RAX] = 0xbad;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xa2), EMU_HOST_ERROR);
	env->ops.cpuid = NULL;
	assert_int_equal(RUN(env, &rep, 0x0f, 0xa2), EMU_UNKNOWN);
}

/* ---- xsetbv, swapgs, invpcid ------------------------------------------------ */

static void test_xsetbv(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RCX] = 0;
	env->cpu.gpr[EMU_RAX] = 7;
	env->cpu.gpr[EMU_RDX] = 0;
	assert_done(env, RUN(env, &rep, 0x0f, 0x01, 0xd1), &rep, CODE_VA, 3);
	assert_string_equal(rep.mnemonic, "xsetbv");
	assert_int_equal(env->xcr_value, 7);
	/* A value the callback refuses (x87 bit clear): #GP(0). */
	env->cpu.gpr[EMU_RAX] = 6;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xd1), EMU_DONE);
	assert_gp(env, &rep, 0);
	/* CR4.OSXSAVE = 0: #UD. */
	env->cpu.rip = CODE_VA;
	env->cpu.cs.sel = SEL_KCODE;
	env->cpu.cr4 &= ~CR4_OSXSAVE;
	env->cpu.gpr[EMU_RAX] = 7;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xd1), EMU_DONE);
	assert_ud(env, &rep);
}

static void test_swapgs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gs_base = 0x1000;
	env->cpu.virt.kernel_gs_base = 0xffff888000001000ull;
	assert_done(env, RUN(env, &rep, 0x0f, 0x01, 0xf8), &rep, CODE_VA, 3);
	assert_string_equal(rep.mnemonic, "swapgs");
	assert_int_equal(env->cpu.gs_base, 0xffff888000001000ull);
	assert_int_equal(env->cpu.virt.kernel_gs_base, 0x1000);
	assert_true(env->cpu.dirty & EMU_DIRTY_VIRT);
}

/* invpcid in shadow mode: the same callback, type 2 (all, globals too). */
static void test_invpcid_shadow(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RAX] = EMU_FLUSH_ALL_GLOBAL;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	memset(at_va(env, DATA_VA), 0, 16);
	assert_done(env, RUN(env, &rep, 0x66, 0x0f, 0x38, 0x82, 0x07), &rep, CODE_VA, 5);
	assert_int_equal(env->flushes, 1);
	assert_int_equal(env->flush_type, EMU_FLUSH_ALL_GLOBAL);
}

/* ---- debug registers, fs/gs base ---------------------------------------------- */

static void test_mov_dr(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RAX] = 0xffffffff81000000ull;
	assert_done(env, RUN(env, &rep, 0x0f, 0x23, 0xc8), &rep, CODE_VA, 3); /* mov dr1, rax */
	assert_int_equal(env->cpu.virt.dr[1], 0xffffffff81000000ull);
	assert_done(env, RUN(env, &rep, 0x0f, 0x21, 0xcb), &rep, CODE_VA + 3, 3); /* mov rbx, dr1 */
	assert_int_equal(env->cpu.gpr[EMU_RBX], 0xffffffff81000000ull);
	/* DR7 = 0 reads back with bit 10 set; DR6 with its fixed ones. */
	env->cpu.gpr[EMU_RAX] = 0;
	assert_done(env, RUN(env, &rep, 0x0f, 0x23, 0xf8), &rep, CODE_VA + 6, 3); /* mov dr7, rax */
	assert_done(env, RUN(env, &rep, 0x0f, 0x21, 0xfb), &rep, CODE_VA + 9, 3); /* mov rbx, dr7 */
	assert_int_equal(env->cpu.gpr[EMU_RBX], 0x400);
	/* DR5 is DR7 while CR4.DE = 0. */
	assert_done(env, RUN(env, &rep, 0x0f, 0x21, 0xeb), &rep, CODE_VA + 12,
		    3); /* mov rbx, dr5 */
	assert_int_equal(env->cpu.gpr[EMU_RBX], 0x400);
	assert_done(env, RUN(env, &rep, 0x0f, 0x21, 0xf3), &rep, CODE_VA + 15,
		    3); /* mov rbx, dr6 */
	assert_int_equal(env->cpu.gpr[EMU_RBX], 0xffff0ff0);
	/* Bit 16 (RTM, active low) stays 1 after a write of 0, as Linux's boot makes. */
	assert_done(env, RUN(env, &rep, 0x0f, 0x23, 0xf0), &rep, CODE_VA + 18,
		    3); /* mov dr6, rax */
	assert_done(env, RUN(env, &rep, 0x0f, 0x21, 0xf3), &rep, CODE_VA + 21,
		    3); /* mov rbx, dr6 */
	assert_int_equal(env->cpu.gpr[EMU_RBX], 0xffff0ff0);
}

static void test_mov_dr_faults(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* Bits 63:32 of DR7: #GP(0). */
	env->cpu.gpr[EMU_RAX] = 1ull << 32;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x23, 0xf8), EMU_DONE);
	assert_gp(env, &rep, 0);
	/* DR4 with CR4.DE = 1: #UD. */
	env->cpu.rip = CODE_VA;
	env->cpu.cs.sel = SEL_KCODE;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	env->cpu.cr4 |= CR4_DE;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x21, 0xe3), EMU_DONE); /* mov rbx, dr4 */
	assert_ud(env, &rep);
	/* CPL3: #GP(0). */
	env->cpu.cr4 &= ~CR4_DE;
	env->cpu.rip = CODE_VA;
	to_user(env);
	assert_int_equal(RUN(env, &rep, 0x0f, 0x21, 0xfb), EMU_DONE);
	assert_gp(env, &rep, 0);
}

static void test_fsgsbase(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* CR4.FSGSBASE = 0: #UD. */
	assert_int_equal(RUN(env, &rep, 0xf3, 0x48, 0x0f, 0xae, 0xd8), EMU_DONE); /* wrgsbase rax */
	assert_ud(env, &rep);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	env->cpu.cr4 |= CR4_FSGSBASE;
	env->cpu.gpr[EMU_RAX] = 0x7fff00001000ull;
	assert_done(env, RUN(env, &rep, 0xf3, 0x48, 0x0f, 0xae, 0xd8), &rep, CODE_VA, 5);
	assert_string_equal(rep.mnemonic, "wrgsbase");
	assert_int_equal(env->cpu.gs_base, 0x7fff00001000ull);
	assert_done(env, RUN(env, &rep, 0xf3, 0x48, 0x0f, 0xae, 0xc3), &rep, CODE_VA + 5,
		    5); /* rdfsbase rbx */
	assert_int_equal(env->cpu.gpr[EMU_RBX], env->cpu.fs_base);
	/* Any CPL; a non-canonical base is #GP(0). */
	to_user(env);
	env->cpu.gpr[EMU_RAX] = 0x0000800000000000ull;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x48, 0x0f, 0xae, 0xd0), EMU_DONE); /* wrfsbase rax */
	assert_gp(env, &rep, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_shadow, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_gp_at_cpl3),
		T(test_hw_mode_does_not_emulate_priv),
		T(test_mov_cr0),
		T(test_mov_cr0_gp),
		T(test_mov_cr3),
		T(test_mov_cr3_reserved_gp),
		T(test_mov_cr4),
		T(test_mov_cr4_gp),
		T(test_mov_cr4_valid_mask),
		T(test_mov_cr2_cr8),
		T(test_mov_cr_nonexistent_ud),
		T(test_clts_lmsw),
		T(test_smsw),
		T(test_invlpg),
		T(test_wbinvd_invd_hlt),
		T(test_cli_sti),
		T(test_cli_iopl3),
		T(test_pushf),
		T(test_popf_cpl0),
		T(test_popf_cpl3),
		T(test_popf16),
		T(test_popf_patched_bytes),
		T(test_msr_held),
		T(test_msr_efer),
		T(test_msr_efer_cpuid),
		T(test_msr_gp),
		T(test_msr_callback),
		T(test_rdtsc),
		T(test_cpuid),
		T(test_xsetbv),
		T(test_swapgs),
		T(test_invpcid_shadow),
		T(test_mov_dr),
		T(test_mov_dr_faults),
		T(test_fsgsbase),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
