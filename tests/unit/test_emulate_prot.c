// SPDX-License-Identifier: MIT
/*
 * Unit tests for shadow mode in 32-bit protected mode: the way a Multiboot
 * kernel starts (paging off, flat 32-bit segments, virtual CPL0) and moves
 * itself to long mode (SDM Vol. 3A §9.8.5): CR4.PAE, EFER.LME through
 * wrmsr, CR3, CR0.PG (IA-32e mode activates: EFER.LMA), then a far jump to
 * a 64-bit code segment. Also pushfd/popfd/cli/hlt as images/mboot runs
 * them, segment bases and string stores in 32-bit mode, and faults
 * delivered through a 32-bit IDT (test_emulate_legacy.c has the delivery
 * rules). Fixture: emu_env.h, with paging off (the walker maps gva = gpa).
 */
#include "emu_env.h"

#define SEL_KCODE32	0x38 /* index 7 */
#define SEL_DATA_BASED	0x48 /* index 9: a data segment with base DATA_GPA */
#define GDT_CODE32_DPL0 0x00cf9a000000ffffull
#define ENTRY32		CODE_GPA /* identity: gva = gpa while paging is off */
#define TARGET64	(CODE_GPA + 0x800)
#define IDT32_GPA	RO_GPA /* 8-byte gates: the fixture's IDT_GPA holds 16-byte ones */
#define HANDLER32_UD	(CODE_GPA + 0xa00)
#define HANDLER32_GP	(CODE_GPA + 0xb00)

/* A 32-bit interrupt gate to SEL_KCODE32 (SDM Vol. 3A Figure 6-2). */
static void set_gate32(struct env *env, unsigned vec, u32 handler)
{
	u32 *g = (u32 *)(env->ram + IDT32_GPA) + vec * 2;

	g[0] = (handler & 0xffff) | (u32)SEL_KCODE32 << 16;
	g[1] = (handler & 0xffff0000) | 0x8e00;
}

/*
 * The state at a Multiboot entry, as virtual state: protected mode, paging
 * off, flat CS/SS, GDT at its gpa. The 4-level tables the fixture built stay
 * at cpu.cr3's old value (root) and identity-map the pages used here, for
 * the switch to long mode.
 */
static int setup_prot(void **state)
{
	struct env *env;
	u64 *gdt;
	int r = setup(state);

	env = *state;
	to_shadow(env);
	env->root = env->cpu.cr3;
	map_4k(env, CODE_GPA, CODE_GPA, PTE_P | PTE_RW);
	map_4k(env, STACK_GPA, STACK_GPA, PTE_P | PTE_RW);
	map_4k(env, GDT_GPA, GDT_GPA, PTE_P | PTE_RW);
	map_4k(env, IDT_GPA, IDT_GPA, PTE_P | PTE_RW);
	map_4k(env, DATA_GPA, DATA_GPA, PTE_P | PTE_RW);
	gdt = (u64 *)(env->ram + GDT_GPA);
	gdt[SEL_KCODE32 / 8] = GDT_CODE32_DPL0;
	gdt[SEL_DATA_BASED / 8] = 0x00cf92000000ffffull | ((DATA_GPA & 0xffffff) << 16);
	env->cpu.cr0 = CR0_PE | CR0_ET | CR0_NE;
	env->cpu.cr3 = 0;
	env->cpu.cr4 = 0;
	env->cpu.efer = 0;
	env->cpu.cs = flat32(SEL_KCODE32, true);
	env->cpu.ss = flat32(SEL_KDATA, false);
	env->cpu.gdt_base = GDT_GPA;
	env->cpu.gdt_limit = 0xff;
	env->cpu.idt_base = IDT32_GPA;
	env->cpu.idt_limit = 256 * 8 - 1;
	set_gate32(env, X86_EXC_UD, HANDLER32_UD);
	set_gate32(env, X86_EXC_GP, HANDLER32_GP);
	env->cpu.rip = ENTRY32;
	env->cpu.rflags = RFLAGS_FIXED;
	env->cpu.gpr[EMU_RSP] = STACK_GPA + 0x800;
	return r;
}

/* Put `code` at RIP (gva = gpa here) and emulate it. */
static enum emu_result run32(struct env *env, const u8 *code, size_t len, struct emu_report *rep)
{
	memcpy(env->ram + env->cpu.rip, code, len);
	return emu_insn(&env->cpu, &env->ops, rep);
}

#define RUN32(env, rep, ...) \
	run32((env), (const u8[]){ __VA_ARGS__ }, sizeof((const u8[]){ __VA_ARGS__ }), (rep))

static void assert_ok(struct env *env, enum emu_result r, const struct emu_report *rep, u64 rip)
{
	assert_int_equal(r, EMU_DONE);
	assert_false(rep->faulted);
	assert_int_equal(env->cpu.rip, rip);
}

/* images/mboot's start: pushl $0; popfl ... cli; hlt (popfd and cli/hlt trap). */
static void test_prot_popfd_pushfd_cli_hlt(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 esp = env->cpu.gpr[EMU_RSP];

	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_IF | RFLAGS_DF;
	memset(env->ram + esp, 0, 4);
	assert_ok(env, RUN32(env, &rep, 0x9d), &rep, ENTRY32 + 1);
	assert_string_equal(rep.mnemonic, "popfd");
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED);
	assert_int_equal(env->cpu.gpr[EMU_RSP], esp + 4);
	assert_ok(env, RUN32(env, &rep, 0x9c), &rep, ENTRY32 + 2);
	assert_string_equal(rep.mnemonic, "pushfd");
	assert_int_equal(env->cpu.gpr[EMU_RSP], esp);
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(env->writes[0].len, 4);
	assert_int_equal(env->writes[0].piece[0].gpa.v, esp);
	assert_ok(env, RUN32(env, &rep, 0xfb), &rep, ENTRY32 + 3);
	assert_true(env->cpu.rflags & RFLAGS_IF);
	assert_ok(env, RUN32(env, &rep, 0xfa), &rep, ENTRY32 + 4);
	assert_false(env->cpu.rflags & RFLAGS_IF);
	assert_ok(env, RUN32(env, &rep, 0xf4), &rep, ENTRY32 + 5);
	assert_int_equal(rep.notes, EMU_NOTE_HALT);
}

/*
 * 32-bit Linux's sync_core: pushfl; pushl %cs; pushl $1f; iret. push %cs
 * pushes the virtual CS (the real one is the monitor's): zero-extended
 * into a 4-byte slot, or a 16-bit store into it (Intel's), and 2 bytes with
 * 66; push %ds likewise.
 */
static void test_prot_push_sreg(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 esp = env->cpu.gpr[EMU_RSP];

	memset(env->ram + esp - 8, 0xa5, 8);
	assert_ok(env, RUN32(env, &rep, 0x0e), &rep, ENTRY32 + 1);
	assert_string_equal(rep.mnemonic, "push");
	assert_int_equal(env->cpu.gpr[EMU_RSP], esp - 4);
	assert_int_equal(*(u32 *)(env->ram + esp - 4), SEL_KCODE32);
	env->cpu.virt.push_sreg_move16 = true;
	env->cpu.virt.ds_sel = SEL_KDATA;
	assert_ok(env, RUN32(env, &rep, 0x1e), &rep, ENTRY32 + 2); /* push %ds */
	assert_int_equal(env->cpu.gpr[EMU_RSP], esp - 8);
	assert_int_equal(*(u32 *)(env->ram + esp - 8), 0xa5a50000u | SEL_KDATA);
	assert_ok(env, RUN32(env, &rep, 0x66, 0x0e), &rep, ENTRY32 + 4); /* pushw %cs */
	assert_int_equal(env->cpu.gpr[EMU_RSP], esp - 10);
	assert_int_equal(*(u16 *)(env->ram + esp - 10), SEL_KCODE32);
}

/* The whole switch to long mode, one trapping instruction at a time. */
static void test_prot_multiboot_to_long_mode(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rip = ENTRY32;
	u8 *pd = env->ram + DATA_GPA;

	/* lgdt [ebx]: 6 bytes, 32-bit base. */
	memcpy(pd, &(u16){ 0xff }, 2);
	memcpy(pd + 2, &(u32){ GDT_GPA }, 4);
	env->cpu.gdt_base = 0;
	env->cpu.gpr[EMU_RBX] = DATA_GPA;
	assert_ok(env, RUN32(env, &rep, 0x0f, 0x01, 0x13), &rep, rip += 3);
	assert_int_equal(env->cpu.gdt_base, GDT_GPA);
	assert_int_equal(env->cpu.gdt_limit, 0xff);
	/* mov cr4, eax: PAE. */
	env->cpu.gpr[EMU_RAX] = CR4_PAE;
	assert_ok(env, RUN32(env, &rep, 0x0f, 0x22, 0xe0), &rep, rip += 3);
	assert_int_equal(env->cpu.cr4, CR4_PAE);
	assert_int_equal(rep.notes, EMU_NOTE_PAGING_MODE);
	/* mov cr3, eax. */
	env->cpu.gpr[EMU_RAX] = env->root;
	assert_ok(env, RUN32(env, &rep, 0x0f, 0x22, 0xd8), &rep, rip += 3);
	assert_int_equal(env->cpu.cr3, env->root);
	assert_int_equal(rep.notes, EMU_NOTE_CR3);
	/* wrmsr EFER.LME. */
	env->cpu.gpr[EMU_RCX] = EMU_MSR_EFER;
	env->cpu.gpr[EMU_RAX] = EFER_LME | EFER_NXE;
	env->cpu.gpr[EMU_RDX] = 0;
	assert_ok(env, RUN32(env, &rep, 0x0f, 0x30), &rep, rip += 2);
	assert_int_equal(env->cpu.efer, EFER_LME | EFER_NXE);
	assert_int_equal(rep.notes, EMU_NOTE_PAGING_MODE);
	/* mov cr0, eax: PG on with LME activates IA-32e mode (compatibility mode for now). */
	env->cpu.gpr[EMU_RAX] = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	assert_ok(env, RUN32(env, &rep, 0x0f, 0x22, 0xc0), &rep, rip += 3);
	assert_int_equal(env->cpu.efer, EFER_LME | EFER_NXE | EFER_LMA);
	assert_int_equal(rep.notes, EMU_NOTE_PAGING_MODE);
	assert_false(env->cpu.cs.l);
	/* mov eax, cr0 in compatibility mode: 32-bit decode, through the new tables. */
	assert_ok(env, RUN32(env, &rep, 0x0f, 0x20, 0xc0), &rep, rip += 3);
	assert_int_equal(env->cpu.gpr[EMU_RAX], CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG);
	/* ljmp $0x08, $TARGET64: into 64-bit code. */
	assert_ok(env,
		  RUN32(env, &rep, 0xea, TARGET64 & 0xff, (TARGET64 >> 8) & 0xff,
			(TARGET64 >> 16) & 0xff, TARGET64 >> 24, SEL_KCODE, 0x00),
		  &rep, TARGET64);
	assert_string_equal(rep.mnemonic, "ljmp");
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_true(env->cpu.cs.l);
	assert_int_equal(rep.notes, EMU_NOTE_CODE_MODE);
	/* Now 64-bit decode: mov rax, cr3 (a 64-bit register). */
	env->cpu.gpr[EMU_RAX] = ~0ull;
	assert_ok(env, RUN32(env, &rep, 0x0f, 0x20, 0xd8), &rep, TARGET64 + 3);
	assert_int_equal(env->cpu.gpr[EMU_RAX], env->root);
}

/* Segment bases count in protected mode: mov ds/es, then a store and rep stosd. */
static void test_prot_segment_bases(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RAX] = SEL_DATA_BASED;
	assert_ok(env, RUN32(env, &rep, 0x8e, 0xd8), &rep, ENTRY32 + 2); /* mov ds, eax */
	assert_int_equal(env->cpu.virt.ds_base, DATA_GPA);
	/* The descriptor was not accessed: the load set its A bit (type 2 -> 3), one byte. */
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(env->writes[0].la, GDT_GPA + SEL_DATA_BASED + 5);
	assert_int_equal(env->writes[0].len, 1);
	assert_int_equal(env->writes[0].new_bytes[0], 0x93);
	assert_int_equal(env->ram[GDT_GPA + SEL_DATA_BASED + 5], 0x93);
	env->nwrites = 0;
	assert_ok(env, RUN32(env, &rep, 0x8e, 0xc0), &rep, ENTRY32 + 4); /* mov es, eax */
	assert_int_equal(env->nwrites, 0); /* accessed now: nothing written */
	/* mov [ebx], eax: DS.base + EBX. */
	env->cpu.gpr[EMU_RBX] = 0x10;
	env->cpu.gpr[EMU_RAX] = 0xcafe;
	assert_ok(env, RUN32(env, &rep, 0x89, 0x03), &rep, ENTRY32 + 6);
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(env->writes[0].la, DATA_GPA + 0x10);
	assert_int_equal(env->writes[0].len, 4);
	/* rep stosd: ES.base + EDI, 4 bytes a time. */
	env->cpu.gpr[EMU_RDI] = 0x100;
	env->cpu.gpr[EMU_RCX] = 2;
	assert_ok(env, RUN32(env, &rep, 0xf3, 0xab), &rep, ENTRY32 + 8);
	assert_int_equal(env->writes[1].la, DATA_GPA + 0x100);
	assert_int_equal(env->writes[2].la, DATA_GPA + 0x104);
	assert_int_equal(env->cpu.gpr[EMU_RDI], 0x108);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	/* A null SS is refused outside 64-bit mode: #GP(0), through the 32-bit IDT. */
	env->cpu.gpr[EMU_RAX] = 0;
	assert_int_equal(RUN32(env, &rep, 0x8e, 0xd0), EMU_DONE);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA);
	assert_int_equal(env->cpu.rip, HANDLER32_GP);
	assert_int_equal(*(u32 *)(env->ram + env->cpu.gpr[EMU_RSP]), 0);
	assert_int_equal(*(u32 *)(env->ram + env->cpu.gpr[EMU_RSP] + 4), ENTRY32 + 8);
}

/* CR0.PG with EFER.LME but no PAE is #GP(0), delivered in legacy protected mode. */
static void test_prot_pg_without_pae(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.efer = EFER_LME;
	env->cpu.cr3 = env->root;
	env->cpu.gpr[EMU_RAX] = CR0_PE | CR0_ET | CR0_PG;
	before = env->cpu;
	assert_int_equal(RUN32(env, &rep, 0x0f, 0x22, 0xc0), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_GP);
	assert_int_equal(env->cpu.rip, HANDLER32_GP);
	assert_int_equal(env->cpu.cr0, before.cr0);
	assert_int_equal(env->cpu.efer, EFER_LME);
	assert_int_equal(env->cpu.gpr[EMU_RSP], before.gpr[EMU_RSP] - 16);
}

/* Leaving IA-32e mode from compatibility mode: CR0.PG = 0 clears EFER.LMA. */
static void test_prot_leave_long_mode(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.cr4 = CR4_PAE;
	env->cpu.cr3 = env->root;
	env->cpu.efer = EFER_LME | EFER_LMA;
	env->cpu.cr0 |= CR0_PG;
	env->cpu.gpr[EMU_RAX] = CR0_PE | CR0_ET | CR0_NE;
	assert_ok(env, RUN32(env, &rep, 0x0f, 0x22, 0xc0), &rep, ENTRY32 + 3);
	assert_int_equal(env->cpu.efer, EFER_LME);
	assert_int_equal(env->cpu.cr0 & CR0_PG, 0);
	assert_int_equal(rep.notes, EMU_NOTE_PAGING_MODE);
}

/* swapgs and sysret exist only in 64-bit mode: #UD. */
static void test_prot_64bit_only(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_int_equal(RUN32(env, &rep, 0x0f, 0x07), EMU_DONE); /* sysret */
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	assert_int_equal(env->cpu.rip, HANDLER32_UD);
	assert_int_equal(*(u32 *)(env->ram + env->cpu.gpr[EMU_RSP]), ENTRY32);
}

/*
 * hw mode in 32-bit code: decoded, but only what hw mode emulates (cli is
 * KVM's business there); without CR0.PE nothing at all.
 */
static void test_prot_hw_mode_unknown(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.mode = EMU_MODE_HW;
	assert_int_equal(RUN32(env, &rep, 0xfa), EMU_UNKNOWN);
	assert_string_equal(rep.mnemonic, "cli");
	env->cpu.cr0 &= ~CR0_PE;
	assert_int_equal(RUN32(env, &rep, 0xfa), EMU_UNKNOWN);
	assert_string_equal(rep.mnemonic, "");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_prot, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_prot_push_sreg),
		T(test_prot_popfd_pushfd_cli_hlt),
		T(test_prot_multiboot_to_long_mode),
		T(test_prot_segment_bases),
		T(test_prot_pg_without_pae),
		T(test_prot_leave_long_mode),
		T(test_prot_64bit_only),
		T(test_prot_hw_mode_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
