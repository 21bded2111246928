// SPDX-License-Identifier: MIT
/*
 * Unit tests for the shadow-mode descriptor-table, segment and privilege
 * transfer instructions (decode/emulate_sys.c): lgdt/lidt/sgdt/sidt,
 * lldt/ltr/sldt/str, mov/pop to segment registers, iretq, sysret and
 * emu_syscall_entry. Fixture: emu_env.h with to_shadow(). Expected values
 * follow the Intel SDM Vol. 2 entry of each instruction and Vol. 3A §3.4-3.5
 * for descriptors.
 */
#include "emu_env.h"

/* More GDT entries for these tests (the fixture's GDT page has room). */
#define SEL_TSS_DESC	  0x30 /* 16 bytes: index 6-7 */
#define SEL_LDT		  0x40 /* 16 bytes: index 8-9 */
#define SEL_NP_DATA	  0x50 /* a not-present DPL0 data segment */
#define SEL_FS_DATA	  0x58 /* a DPL0 data segment with base FS_DATA_BASE */
#define SEL_KCODE_NR	  0x60 /* DPL0 execute-only code: not loadable into DS */
#define SEL_KCODE32	  0x68 /* DPL0 32-bit code */
#define FS_DATA_BASE	  0x12345000ull
#define LDT_BASE	  0xffff888000100000ull
#define TSS_LIMIT	  0x67
#define GDT_TEST_LIMIT	  0xff
#define SEL_ERR_MASK_TEST 0xfffc /* the selector bits an error code carries */
/* Descriptor type fields (SDM Vol. 3A Tables 3-1, 3-2). */
#define TYPE_LDT       0x2
#define TYPE_TSS_AVAIL 0x9
#define TYPE_TSS_BUSY  0xb

#define HANDLER_NP 0x401500ull
#define HANDLER_SS 0x401600ull

static int setup_shadow(void **state)
{
	int r = setup(state);

	to_shadow(*state);
	set_gate(*state, X86_EXC_NP, HANDLER_NP, 0xe, 0, 0);
	set_gate(*state, X86_EXC_SS, HANDLER_SS, 0xe, 0, 0);
	return r;
}

static u64 *gdt(struct env *env)
{
	return (u64 *)(env->ram + GDT_GPA);
}

/* A 16-byte system descriptor (SDM Vol. 3A Figure 7-4). */
static void set_sys_desc(struct env *env, u16 sel, u64 base, u32 limit, unsigned type, bool p)
{
	u64 *d = gdt(env) + sel / 8;

	d[0] = (limit & 0xffff) | ((base & 0xffffff) << 16) | ((u64)type << 40) | ((u64)p << 47) |
	       ((u64)(limit >> 16 & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	d[1] = base >> 32;
}

/* A 32-bit data descriptor: writable, 4 GiB, base `base`. */
static u64 data_desc(u64 base, unsigned dpl, bool p)
{
	return 0x00cf02000000ffffull | ((base & 0xffffff) << 16) | (((base >> 24) & 0xff) << 56) |
	       ((u64)dpl << 45) | (1ull << 44) | ((u64)p << 47);
}

static void more_gdt(struct env *env)
{
	env->cpu.gdt_limit = GDT_TEST_LIMIT;
	set_sys_desc(env, SEL_TSS_DESC, TSS_VA, TSS_LIMIT, TYPE_TSS_AVAIL, true);
	set_sys_desc(env, SEL_LDT, LDT_BASE, 0xfff, TYPE_LDT, true);
	gdt(env)[SEL_NP_DATA / 8] = data_desc(0, 0, false);
	gdt(env)[SEL_FS_DATA / 8] = data_desc(FS_DATA_BASE, 0, true);
	gdt(env)[SEL_KCODE_NR / 8] = 0x00af98000000ffffull; /* execute-only */
	gdt(env)[SEL_KCODE32 / 8] = 0x00cf9a000000ffffull;
}

/* The instruction raised `vector` with `err`, and it reached its handler (no #DF). */
static void assert_fault(struct env *env, const struct emu_report *rep, u8 vector, u32 err)
{
	static const u64 handler[] = { [X86_EXC_UD] = HANDLER_UD,
				       [X86_EXC_NP] = HANDLER_NP,
				       [X86_EXC_SS] = HANDLER_SS,
				       [X86_EXC_GP] = HANDLER_GP,
				       [X86_EXC_PF] = HANDLER_PF };

	assert_true(rep->faulted);
	assert_int_equal(rep->fault_vector, vector);
	assert_int_equal(env->last_event.vector, vector);
	assert_int_equal(env->last_event.error_code, err);
	assert_int_equal(env->cpu.rip, handler[vector]);
}

static void assert_ok(struct env *env, enum emu_result r, const struct emu_report *rep, u64 rip)
{
	assert_int_equal(r, EMU_DONE);
	assert_false(rep->faulted);
	assert_int_equal(env->cpu.rip, rip);
}

/* Back to a clean CPL0 state between sub-cases of one test. */
static void reset_cpl0(struct env *env)
{
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_IF;
	env->cpu.cs = (struct emu_seg){ .sel = SEL_KCODE,
					.type = 0xb,
					.s = 1,
					.present = 1,
					.l = 1,
					.g = 1,
					.limit = 0xffffffff };
	env->cpu.ss = (struct emu_seg){ .sel = SEL_KDATA,
					.type = 0x3,
					.s = 1,
					.present = 1,
					.db = 1,
					.g = 1,
					.limit = 0xffffffff };
	env->nwrites = 0;
}

/* ---- lgdt, lidt, sgdt, sidt ------------------------------------------------- */

static void test_lgdt_lidt(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u8 *pd = at_va(env, DATA_VA);

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	memcpy(pd, &(u16){ 0x1ff }, 2);
	memcpy(pd + 2, &(u64){ 0xffff888000002000ull }, 8);
	assert_ok(env, RUN(env, &rep, 0x0f, 0x01, 0x17), &rep, CODE_VA + 3);
	assert_string_equal(rep.mnemonic, "lgdt");
	assert_int_equal(env->cpu.gdt_base, 0xffff888000002000ull);
	assert_int_equal(env->cpu.gdt_limit, 0x1ff);
	assert_int_equal(rep.notes, EMU_NOTE_TABLES);
	memcpy(pd, &(u16){ 0xfff }, 2);
	assert_ok(env, RUN(env, &rep, 0x0f, 0x01, 0x1f), &rep, CODE_VA + 6);
	assert_string_equal(rep.mnemonic, "lidt");
	assert_int_equal(env->cpu.idt_base, 0xffff888000002000ull);
	assert_int_equal(env->cpu.idt_limit, 0xfff);
}

static void test_lidt_noncanonical_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u8 *pd = at_va(env, DATA_VA);
	u64 idt = env->cpu.idt_base;

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	memcpy(pd + 2, &(u64){ 0x0000800000000000ull }, 8);
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0x1f), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0);
	assert_int_equal(env->cpu.rip, HANDLER_GP); /* delivered through the old IDT */
	assert_int_equal(env->cpu.idt_base, idt);
}

/* sgdt/sidt: one 10-byte store, reported once. */
static void test_sgdt_sidt(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u16 limit;
	u64 base;

	env->cpu.gpr[EMU_RDI] = DATA_VA + 6;
	assert_ok(env, RUN(env, &rep, 0x0f, 0x01, 0x07), &rep, CODE_VA + 3);
	assert_string_equal(rep.mnemonic, "sgdt");
	memcpy(&limit, (u8 *)at_va(env, DATA_VA) + 6, 2);
	memcpy(&base, (u8 *)at_va(env, DATA_VA) + 8, 8);
	assert_int_equal(limit, env->cpu.gdt_limit);
	assert_int_equal(base, GDT_VA);
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(env->writes[0].len, 10);
	assert_int_equal(env->writes[0].la, DATA_VA + 6);
	assert_int_equal(env->writes[0].piece[0].gpa.v, DATA_GPA + 6);
	assert_ok(env, RUN(env, &rep, 0x0f, 0x01, 0x0f), &rep, CODE_VA + 6);
	memcpy(&base, (u8 *)at_va(env, DATA_VA) + 8, 8);
	assert_int_equal(base, IDT_VA);
	/* CPL3 with UMIP: #GP(0). */
	to_user(env);
	env->cpu.cr4 |= CR4_UMIP;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0x0f), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0);
}

/* ---- lldt, ltr, sldt, str --------------------------------------------------- */

static void test_lldt_sldt(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	more_gdt(env);
	env->cpu.gpr[EMU_RAX] = SEL_LDT;
	assert_ok(env, RUN(env, &rep, 0x0f, 0x00, 0xd0), &rep, CODE_VA + 3);
	assert_string_equal(rep.mnemonic, "lldt");
	assert_int_equal(env->cpu.virt.ldtr_sel, SEL_LDT);
	assert_int_equal(env->cpu.virt.ldtr_base, LDT_BASE);
	assert_int_equal(env->cpu.virt.ldtr_limit, 0xfff);
	/* sldt eax: zero-extended. */
	env->cpu.gpr[EMU_RBX] = ~0ull;
	assert_ok(env, RUN(env, &rep, 0x0f, 0x00, 0xc3), &rep, CODE_VA + 6);
	assert_string_equal(rep.mnemonic, "sldt");
	assert_int_equal(env->cpu.gpr[EMU_RBX], SEL_LDT);
	/* A null selector makes LDTR unusable. */
	env->cpu.gpr[EMU_RAX] = 0;
	assert_ok(env, RUN(env, &rep, 0x0f, 0x00, 0xd0), &rep, CODE_VA + 9);
	assert_int_equal(env->cpu.virt.ldtr_sel, 0);
	assert_int_equal(env->cpu.virt.ldtr_base, 0);
}

static void test_lldt_faults(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	more_gdt(env);
	/* Not an LDT descriptor (a TSS): #GP(sel). */
	env->cpu.gpr[EMU_RAX] = SEL_TSS_DESC;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x00, 0xd0), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_TSS_DESC);
	/* Not present: #NP(sel). */
	reset_cpl0(env);
	set_sys_desc(env, SEL_LDT, LDT_BASE, 0xfff, TYPE_LDT, false);
	env->cpu.gpr[EMU_RAX] = SEL_LDT;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x00, 0xd0), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_NP, SEL_LDT);
	/* Beyond the GDT limit: #GP(sel). */
	reset_cpl0(env);
	env->cpu.gpr[EMU_RAX] = 0x1000;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x00, 0xd0), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0x1000);
	/* An LDT selector (TI = 1): #GP(sel). */
	reset_cpl0(env);
	env->cpu.gpr[EMU_RAX] = SEL_LDT | 4;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x00, 0xd0), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_LDT | 4);
	assert_int_equal(env->cpu.virt.ldtr_sel, 0);
}

/* ltr: loads TR and marks the descriptor busy in the GDT, through a reported store. */
static void test_ltr_str(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 desc_before;

	more_gdt(env);
	desc_before = gdt(env)[SEL_TSS_DESC / 8];
	env->cpu.tr_sel = 0;
	env->cpu.tr_base = 0;
	env->cpu.gpr[EMU_RCX] = SEL_TSS_DESC;
	assert_ok(env, RUN(env, &rep, 0x0f, 0x00, 0xd9), &rep, CODE_VA + 3); /* ltr cx */
	assert_string_equal(rep.mnemonic, "ltr");
	assert_int_equal(env->cpu.tr_sel, SEL_TSS_DESC);
	assert_int_equal(env->cpu.tr_base, TSS_VA);
	assert_int_equal(env->cpu.tr_limit, TSS_LIMIT);
	assert_int_equal(gdt(env)[SEL_TSS_DESC / 8], desc_before | (2ull << 40));
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(env->writes[0].piece[0].gpa.v, GDT_GPA + SEL_TSS_DESC);
	assert_int_equal(env->writes[0].len, 8);
	assert_memory_equal(env->writes[0].old_bytes, &desc_before, 8);
	/* str [rdi]: 16 bits. */
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	poke64(env, DATA_VA, ~0ull);
	assert_ok(env, RUN(env, &rep, 0x0f, 0x00, 0x0f), &rep, CODE_VA + 6);
	assert_string_equal(rep.mnemonic, "str");
	assert_int_equal(peek64(env, DATA_VA), 0xffffffffffff0000ull | SEL_TSS_DESC);
	/* Loading the now-busy TSS again: #GP(sel). */
	assert_int_equal(RUN(env, &rep, 0x0f, 0x00, 0xd9), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_TSS_DESC);
}

static void test_ltr_null_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RAX] = 0;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x00, 0xd8), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0);
	assert_int_equal(env->cpu.tr_sel, SEL_TSS);
}

/* ---- segment loads ---------------------------------------------------------- */

static void test_mov_data_segs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	more_gdt(env);
	env->cpu.gpr[EMU_RAX] = SEL_KDATA;
	assert_ok(env, RUN(env, &rep, 0x8e, 0xd8), &rep, CODE_VA + 2); /* mov ds, ax */
	assert_int_equal(env->cpu.virt.ds_sel, SEL_KDATA);
	assert_int_equal(rep.notes, EMU_NOTE_TABLES);
	assert_ok(env, RUN(env, &rep, 0x8e, 0xc0), &rep, CODE_VA + 4); /* mov es, ax */
	assert_int_equal(env->cpu.virt.es_sel, SEL_KDATA);
	/* fs: the descriptor's 32-bit base becomes FS.base. */
	env->cpu.gpr[EMU_RAX] = SEL_FS_DATA;
	assert_ok(env, RUN(env, &rep, 0x8e, 0xe0), &rep, CODE_VA + 6);
	assert_int_equal(env->cpu.virt.fs_sel, SEL_FS_DATA);
	assert_int_equal(env->cpu.fs_base, FS_DATA_BASE);
	/* gs from memory; a null selector: base 0. */
	env->cpu.gs_base = 0x5000;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	poke64(env, DATA_VA, 0);
	assert_ok(env, RUN(env, &rep, 0x8e, 0x2f), &rep, CODE_VA + 8); /* mov gs, [rdi] */
	assert_int_equal(env->cpu.virt.gs_sel, 0);
	assert_int_equal(env->cpu.gs_base, 0);
	/* A readable code segment is fine for DS. */
	env->cpu.gpr[EMU_RAX] = SEL_KCODE;
	assert_ok(env, RUN(env, &rep, 0x8e, 0xd8), &rep, CODE_VA + 10);
	assert_int_equal(env->cpu.virt.ds_sel, SEL_KCODE);
	/*
	 * An AMD CPU without NullSelectorClearsBase: a null selector (RPL 3
	 * too) leaves the FS and GS bases alone; a non-null one still loads.
	 */
	env->cpu.virt.null_sel_keeps_base = true;
	env->cpu.gs_base = 0x6000;
	env->cpu.fs_base = 0x7000;
	env->cpu.gpr[EMU_RDI] = 3;
	assert_ok(env, RUN(env, &rep, 0x8e, 0xef), &rep, CODE_VA + 12); /* mov gs, edi */
	assert_int_equal(env->cpu.virt.gs_sel, 3);
	assert_int_equal(env->cpu.gs_base, 0x6000);
	env->cpu.gpr[EMU_RDI] = 0;
	assert_ok(env, RUN(env, &rep, 0x8e, 0xe7), &rep, CODE_VA + 14); /* mov fs, edi */
	assert_int_equal(env->cpu.fs_base, 0x7000);
	env->cpu.gpr[EMU_RAX] = SEL_FS_DATA;
	assert_ok(env, RUN(env, &rep, 0x8e, 0xe8), &rep, CODE_VA + 16); /* mov gs, eax */
	assert_int_equal(env->cpu.gs_base, FS_DATA_BASE);
}

static void test_mov_data_seg_faults(void **state)
{
	static const struct {
		u16 sel;
		u8 vector;
		u32 err;
	} bad[] = {
		{ SEL_NP_DATA, X86_EXC_NP, SEL_NP_DATA },     /* not present */
		{ SEL_KCODE_NR, X86_EXC_GP, SEL_KCODE_NR },   /* execute-only code */
		{ SEL_TSS_DESC, X86_EXC_GP, SEL_TSS_DESC },   /* a system descriptor */
		{ 0x1008, X86_EXC_GP, 0x1008 },		      /* beyond the GDT limit */
		{ SEL_KDATA | 4, X86_EXC_GP, SEL_KDATA | 4 }, /* LDT selector, no LDT */
	};
	struct env *env = *state;

	more_gdt(env);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct emu_report rep;

		reset_cpl0(env);
		env->cpu.virt.ds_sel = SEL_KDATA;
		env->cpu.gpr[EMU_RAX] = bad[i].sel;
		assert_int_equal(RUN(env, &rep, 0x8e, 0xd8), EMU_DONE);
		assert_fault(env, &rep, bad[i].vector, bad[i].err);
		assert_int_equal(env->cpu.virt.ds_sel, SEL_KDATA);
	}
	/* At CPL3 a DPL0 data segment is out of reach: #GP(sel). */
	reset_cpl0(env);
	to_user(env);
	env->cpu.gpr[EMU_RAX] = SEL_KDATA;
	{
		struct emu_report rep;

		assert_int_equal(RUN(env, &rep, 0x8e, 0xd8), EMU_DONE);
		assert_fault(env, &rep, X86_EXC_GP, SEL_KDATA);
	}
}

static void test_mov_ss(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	more_gdt(env);
	env->cpu.ss.sel = 0;
	env->cpu.gpr[EMU_RAX] = SEL_KDATA;
	assert_ok(env, RUN(env, &rep, 0x8e, 0xd0), &rep, CODE_VA + 2);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA);
	assert_int_equal(env->cpu.ss.dpl, 0);
	assert_true(env->cpu.ss.present);
	assert_true(env->cpu.virt.int_shadow); /* MOV SS blocking */
	/* A null SS with RPL = CPL = 0 is fine in 64-bit mode. */
	env->cpu.gpr[EMU_RAX] = 0;
	assert_ok(env, RUN(env, &rep, 0x8e, 0xd0), &rep, CODE_VA + 4);
	assert_int_equal(env->cpu.ss.sel, 0);
	/* RPL != CPL: #GP(sel). */
	env->cpu.gpr[EMU_RAX] = SEL_KDATA | 3;
	assert_int_equal(RUN(env, &rep, 0x8e, 0xd0), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_KDATA);
	/* Not present: #SS(sel). */
	reset_cpl0(env);
	env->cpu.gpr[EMU_RAX] = SEL_NP_DATA;
	assert_int_equal(RUN(env, &rep, 0x8e, 0xd0), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_SS, SEL_NP_DATA);
}

/*
 * A load sets its descriptor's accessed bit where it is clear (SDM Vol. 3A
 * §3.4.5.1): one byte written, the type's; nothing where it is set, and
 * nothing for a load that faults.
 */
static void test_seg_load_sets_accessed(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	const u64 fs_desc = data_desc(FS_DATA_BASE, 0, true);

	more_gdt(env);
	env->nwrites = 0;
	env->cpu.gpr[EMU_RAX] = SEL_FS_DATA;			       /* type 2: not accessed */
	assert_ok(env, RUN(env, &rep, 0x8e, 0xe0), &rep, CODE_VA + 2); /* mov fs, eax */
	assert_int_equal(env->nwrites, 1);
	assert_int_equal(env->writes[0].la, GDT_VA + SEL_FS_DATA + 5);
	assert_int_equal(env->writes[0].len, 1);
	assert_int_equal(gdt(env)[SEL_FS_DATA / 8], fs_desc | (1ull << 40));
	assert_int_equal(env->cpu.fs_base, FS_DATA_BASE);
	assert_ok(env, RUN(env, &rep, 0x8e, 0xe0), &rep, CODE_VA + 4); /* again: accessed */
	assert_int_equal(env->nwrites, 1);
	/* mov ss: the same. */
	gdt(env)[SEL_FS_DATA / 8] = fs_desc;
	assert_ok(env, RUN(env, &rep, 0x8e, 0xd0), &rep, CODE_VA + 6); /* mov ss, eax */
	assert_int_equal(env->nwrites, 2);
	assert_int_equal(gdt(env)[SEL_FS_DATA / 8], fs_desc | (1ull << 40));
	assert_int_equal(env->cpu.ss.type, 3); /* the cache as the table holds it now */
	/* A load that faults writes nothing: not present (#NP), DPL 0 at RPL 3 (#GP). */
	reset_cpl0(env);
	env->cpu.gpr[EMU_RAX] = SEL_NP_DATA;
	assert_int_equal(RUN(env, &rep, 0x8e, 0xe0), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_NP, SEL_NP_DATA);
	reset_cpl0(env);
	gdt(env)[SEL_FS_DATA / 8] = fs_desc;
	env->cpu.gpr[EMU_RAX] = SEL_FS_DATA | 3;
	assert_int_equal(RUN(env, &rep, 0x8e, 0xe0), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_FS_DATA);
	assert_int_equal(gdt(env)[SEL_FS_DATA / 8], fs_desc);
	assert_int_equal(gdt(env)[SEL_NP_DATA / 8], data_desc(0, 0, false));
}

static void test_pop_fs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = env->cpu.gpr[EMU_RSP] - 8;

	more_gdt(env);
	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, SEL_FS_DATA);
	assert_ok(env, RUN(env, &rep, 0x0f, 0xa1), &rep, CODE_VA + 2);
	assert_string_equal(rep.mnemonic, "pop");
	assert_int_equal(env->cpu.virt.fs_sel, SEL_FS_DATA);
	assert_int_equal(env->cpu.fs_base, FS_DATA_BASE);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp + 8);
	/* A selector that faults leaves RSP alone. */
	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, SEL_NP_DATA);
	assert_int_equal(RUN(env, &rep, 0x0f, 0xa9), EMU_DONE); /* pop gs */
	assert_fault(env, &rep, X86_EXC_NP, SEL_NP_DATA);
	assert_frame(env, true, SEL_NP_DATA, CODE_VA + 2, SEL_KCODE,
		     RFLAGS_FIXED | RFLAGS_IF | RFLAGS_RF, rsp, SEL_KDATA);
}

/*
 * What 64-bit mode removed is #UD, not an unknown instruction: pop and push
 * of DS/ES/SS/CS, pusha/popa, the BCD instructions, far call/jmp with an
 * immediate pointer, and mov to CS (test_emulate_segs_native found these
 * stopping the VM).
 */
static void test_invalid_in_64bit_ud(void **state)
{
	static const u8 codes[][6] = { { 1, 0x1f },	  /* pop ds */
				       { 1, 0x07 },	  /* pop es */
				       { 2, 0x48, 0x17 }, /* pop ss, a REX before it */
				       { 1, 0x0e },	  /* push cs */
				       { 1, 0x60 },	  /* pusha */
				       { 1, 0x27 },	  /* daa */
				       { 2, 0xd4, 0x0a }, /* aam */
				       { 3, 0x82, 0xc0, 1 },
				       { 5, 0xea, 0, 0, 0, 0 }, /* jmp far: the pointer cut short */
				       { 2, 0x8e, 0xc8 } };	/* mov %ax, %cs */
	struct env *env = *state;
	struct emu_cpu before = env->cpu;

	for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct emu_report rep;

		env->cpu = before;
		assert_int_equal(run(env, codes[i] + 1, codes[i][0], &rep), EMU_DONE);
		assert_fault(env, &rep, X86_EXC_UD, 0);
	}
}

/* ---- iretq ------------------------------------------------------------------ */

/* Build an iretq frame at RSP: RIP, CS, RFLAGS, RSP, SS. */
static void push_iret_frame(struct env *env, u64 rip, u64 cs, u64 rflags, u64 rsp, u64 ss)
{
	u64 f = STACK_VA + 0x800;

	env->cpu.gpr[EMU_RSP] = f;
	poke64(env, f, rip);
	poke64(env, f + 8, cs);
	poke64(env, f + 16, rflags);
	poke64(env, f + 24, rsp);
	poke64(env, f + 32, ss);
}

/* Same privilege: the virtual IF comes from the popped RFLAGS. */
static void test_iretq_same_level(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags = RFLAGS_FIXED; /* IF = 0 */
	push_iret_frame(env, 0x401234, SEL_KCODE, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_CF,
			KSTACK_VA + 0x100, SEL_KDATA);
	assert_ok(env, RUN(env, &rep, 0x48, 0xcf), &rep, 0x401234);
	assert_string_equal(rep.mnemonic, "iretq");
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_CF);
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSTACK_VA + 0x100);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA);
	assert_int_equal(rep.notes, EMU_NOTE_IF_SET); /* no CPL change */
}

/*
 * RF from the frame stays set after the iretq (SDM Vol. 2A IRET): a #DB
 * handler sets it so that the instruction breakpoint it returns to does
 * not fire again. Every other instruction clears RF as it completes.
 */
static void test_iretq_keeps_rf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_RF;
	push_iret_frame(env, 0x401234, SEL_KCODE, RFLAGS_FIXED | RFLAGS_RF, KSTACK_VA + 0x100,
			SEL_KDATA);
	assert_ok(env, RUN(env, &rep, 0x48, 0xcf), &rep, 0x401234);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_RF);
	push_iret_frame(env, 0x401234, SEL_KCODE, RFLAGS_FIXED, KSTACK_VA + 0x100, SEL_KDATA);
	env->cpu.rip = CODE_VA;
	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_RF;
	assert_ok(env, RUN(env, &rep, 0x48, 0xcf), &rep, 0x401234);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED);
}

/*
 * A non-canonical RIP in the frame: #GP(0) at the iretq itself, nothing
 * loaded (SDM Vol. 2A IRET; what the VMM's iret stand-in defers to).
 */
static void test_iretq_noncanonical_rip(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags = RFLAGS_FIXED;
	push_iret_frame(env, 0x0000800000000000ull, SEL_KCODE, RFLAGS_FIXED | RFLAGS_IF,
			KSTACK_VA + 0x100, SEL_KDATA);
	RUN(env, &rep, 0x48, 0xcf);
	assert_fault(env, &rep, X86_EXC_GP, 0);
	/* The #GP's frame names the iretq: [error code, RIP, ...] at the new RSP. */
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP] + 8), CODE_VA);
	assert_int_equal(env->cpu.rflags & RFLAGS_IF, 0);
}

/* To CPL3: user CS/SS, the new virtual CPL reported; IOPL can be set from CPL0. */
static void test_iretq_to_user(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	push_iret_frame(env, 0x7000100, SEL_UCODE, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_IOPL_MASK,
			0x7ffff000, SEL_UDATA);
	assert_ok(env, RUN(env, &rep, 0x48, 0xcf), &rep, 0x7000100);
	assert_int_equal(env->cpu.cs.sel, SEL_UCODE);
	assert_int_equal(env->cpu.cs.dpl, 3);
	assert_true(env->cpu.cs.l);
	assert_int_equal(env->cpu.ss.sel, SEL_UDATA);
	assert_int_equal(env->cpu.ss.dpl, 3);
	assert_int_equal(env->cpu.gpr[EMU_RSP], 0x7ffff000);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_IOPL_MASK);
	assert_int_equal(emu_cpl(&env->cpu), 3);
	assert_int_equal(rep.notes, EMU_NOTE_CPL);
	assert_true(env->cpu.dirty & EMU_DIRTY_VIRT);
}

/* From CPL3 to CPL3 (IOPL 0): IF and IOPL in the frame are ignored. */
static void test_iretq_user_flags(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_IF;
	push_iret_frame(env, 0x401000, SEL_UCODE, RFLAGS_FIXED | RFLAGS_IOPL_MASK | RFLAGS_ZF,
			STACK_VA + 0x100, SEL_UDATA);
	assert_ok(env, RUN(env, &rep, 0x48, 0xcf), &rep, 0x401000);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_ZF);
	assert_int_equal(rep.notes, 0);
}

/*
 * emu_iret_keeps_segs (the premise of the VMM's sync_core stand-in,
 * vmm/call_sync.c) against do_iretq itself: with CS and SS loaded from the
 * GDT by an iretq, then the GDT's CS or SS descriptor changed one bit at a
 * time, whenever it says an iretq to the same selectors would keep both
 * segments, an emulated one completes and keeps them.
 */
static void test_iret_keeps_segs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	unsigned keeps_n = 0;

	for (unsigned k = 0; k <= 128; k++) {
		u64 cs = GDT_CODE64_DPL0, ss = GDT_DATA_DPL0;
		struct emu_seg cs_before, ss_before;
		enum emu_result r;
		bool keeps;

		reset_cpl0(env);
		poke64(env, GDT_VA + SEL_KCODE, cs);
		poke64(env, GDT_VA + SEL_KDATA, ss);
		push_iret_frame(env, CODE_VA, SEL_KCODE, RFLAGS_FIXED, KSTACK_VA + 0x100,
				SEL_KDATA);
		assert_ok(env, RUN(env, &rep, 0x48, 0xcf), &rep, CODE_VA);
		cs_before = env->cpu.cs;
		ss_before = env->cpu.ss;
		if (k < 64) /* k == 128: both unchanged */
			cs ^= 1ull << k;
		else if (k < 128)
			ss ^= 1ull << (k - 64);
		poke64(env, GDT_VA + SEL_KCODE, cs);
		poke64(env, GDT_VA + SEL_KDATA, ss);
		keeps = emu_iret_keeps_segs(&env->cpu, cs, ss);
		push_iret_frame(env, CODE_VA, SEL_KCODE, RFLAGS_FIXED, KSTACK_VA + 0x100,
				SEL_KDATA);
		r = RUN(env, &rep, 0x48, 0xcf);
		if (keeps) {
			keeps_n++;
			assert_int_equal(r, EMU_DONE);
			assert_false(rep.faulted);
			assert_true(emu_seg_equal(&env->cpu.cs, &cs_before));
			assert_true(emu_seg_equal(&env->cpu.ss, &ss_before));
		}
		if (k == 128)
			assert_true(keeps);
	}
	/* The base bits of 64-bit code are not cached: those flips keep CS. */
	assert_true(keeps_n > 1);
	poke64(env, GDT_VA + SEL_KCODE, GDT_CODE64_DPL0);
	poke64(env, GDT_VA + SEL_KDATA, GDT_DATA_DPL0);
	/* A null SS (as after an interrupt from CPL3) needs no descriptor; CPL3 never keeps. */
	reset_cpl0(env);
	push_iret_frame(env, CODE_VA, SEL_KCODE, RFLAGS_FIXED, KSTACK_VA + 0x100, 0);
	assert_ok(env, RUN(env, &rep, 0x48, 0xcf), &rep, CODE_VA);
	assert_int_equal(env->cpu.ss.sel, 0);
	assert_true(emu_iret_keeps_segs(&env->cpu, GDT_CODE64_DPL0, ~0ull));
	to_user(env);
	assert_false(emu_iret_keeps_segs(&env->cpu, GDT_CODE64_DPL0, GDT_DATA_DPL0));
}

static void test_iretq_faults(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* A non-canonical RIP: #GP(0). */
	push_iret_frame(env, 0x0000800000000000ull, SEL_UCODE, RFLAGS_FIXED, 0x1000, SEL_UDATA);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0);
	/* NT set: #GP(0). */
	reset_cpl0(env);
	env->cpu.rflags |= RFLAGS_NT;
	push_iret_frame(env, 0x401000, SEL_KCODE, RFLAGS_FIXED, 0x1000, SEL_KDATA);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0);
	/* SS RPL differs from CS RPL: #GP(SS). */
	reset_cpl0(env);
	push_iret_frame(env, 0x401000, SEL_UCODE, RFLAGS_FIXED, 0x1000, SEL_KDATA);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_KDATA);
	/* A null CS: #GP(0). */
	reset_cpl0(env);
	push_iret_frame(env, 0x401000, 0, RFLAGS_FIXED, 0x1000, SEL_KDATA);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0);
	/* CS is a data segment: #GP(CS). */
	reset_cpl0(env);
	push_iret_frame(env, 0x401000, SEL_KDATA, RFLAGS_FIXED, 0x1000, SEL_KDATA);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_KDATA);
	/* A null SS to CPL3: #GP(0). */
	reset_cpl0(env);
	push_iret_frame(env, 0x401000, SEL_UCODE, RFLAGS_FIXED, 0x1000, 3);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0);
	/*
	 * SS not present: #NP(SS), not mov's #SS (SDM Vol. 2A IRET; the rig's
	 * TCG CPU, in test_emulate_segs_native, and Bochs agree).
	 */
	reset_cpl0(env);
	more_gdt(env);
	push_iret_frame(env, 0x401000, SEL_KCODE, RFLAGS_FIXED, 0x1000, SEL_NP_DATA);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_NP, SEL_NP_DATA); /* ... and #SS(SS) with AMD's rule (an
							     EPYC of family 1Ah, natively). */
	reset_cpl0(env);
	more_gdt(env);
	env->cpu.virt.iret_ss_np_is_ss = true;
	push_iret_frame(env, 0x401000, SEL_KCODE, RFLAGS_FIXED, 0x1000, SEL_NP_DATA);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_SS, SEL_NP_DATA);
}

/* From virtual CPL3, iretq to CPL0 (RPL < CPL) is refused: #GP(CS). */
static void test_iretq_inner_level_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	push_iret_frame(env, 0x401000, SEL_KCODE, RFLAGS_FIXED, 0x1000, SEL_KDATA);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_KCODE);
	assert_true(rep.notes & EMU_NOTE_CPL); /* delivered to the CPL0 handler */
}

/* The frame is read through the guest's tables: an unmapped stack is #PF. */
static void test_iretq_stack_pf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* The 40-byte frame runs off the end of the stack page into an unmapped one. */
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 16;
	assert_int_equal(RUN(env, &rep, 0x48, 0xcf), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_PF, 0); /* not present, read, supervisor */
	assert_int_equal(env->cpu.cr2, STACK_VA + PAGE_SIZE);
	assert_int_equal(env->cpu.rip, HANDLER_PF);
}

/* ---- sysret, syscall ------------------------------------------------------- */

static void test_sysretq(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RCX] = 0x401abc;
	env->cpu.gpr[EMU_R11] = RFLAGS_IF | RFLAGS_CF | RFLAGS_RF | RFLAGS_VM | RFLAGS_IOPL_MASK;
	env->cpu.rflags = RFLAGS_FIXED;
	assert_ok(env, RUN(env, &rep, 0x48, 0x0f, 0x07), &rep, 0x401abc);
	assert_string_equal(rep.mnemonic, "sysret");
	assert_int_equal(env->cpu.cs.sel, SEL_UCODE);
	assert_int_equal(env->cpu.cs.dpl, 3);
	assert_true(env->cpu.cs.l);
	assert_int_equal(env->cpu.ss.sel, SEL_UDATA);
	assert_int_equal(env->cpu.ss.dpl, 3);
	/* RF and VM are cleared, bit 1 set (R11 & 3C7FD7H | 2). */
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_CF | RFLAGS_IOPL_MASK);
	assert_int_equal(rep.notes, EMU_NOTE_CPL | EMU_NOTE_IF_SET);
}

static void test_sysretl(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RCX] = 0xffffffff00001000ull;
	env->cpu.gpr[EMU_R11] = RFLAGS_IF;
	assert_ok(env, RUN(env, &rep, 0x0f, 0x07), &rep, 0x1000);
	assert_int_equal(env->cpu.cs.sel, (SEL_UDATA - 8) | 3); /* STAR[63:48] | 3 */
	assert_false(env->cpu.cs.l);
	assert_true(env->cpu.cs.db);
}

static void test_sysretq_faults(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	/* Non-canonical RCX: #GP(0) at CPL0 (Intel). */
	env->cpu.gpr[EMU_RCX] = 0x0000800000000000ull;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0x07), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	/* EFER.SCE = 0: #UD. */
	reset_cpl0(env);
	env->cpu.efer &= ~EFER_SCE;
	env->cpu.gpr[EMU_RCX] = 0x401000;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0x07), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
}

static void test_syscall_entry(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	env->cpu.rip = 0x401000;
	env->cpu.rflags = RFLAGS_FIXED | RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_CF | RFLAGS_RF;
	env->cpu.virt.lstar = 0xffffffff81e00000ull;
	env->cpu.virt.sfmask = RFLAGS_IF | RFLAGS_TF | RFLAGS_DF;
	assert_int_equal(emu_syscall_entry(&env->cpu, &env->ops, 2, &rep), EMU_DONE);
	assert_string_equal(rep.mnemonic, "syscall");
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0x401002);
	assert_int_equal(env->cpu.gpr[EMU_R11],
			 RFLAGS_FIXED | RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_CF);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_CF);
	assert_int_equal(env->cpu.rip, 0xffffffff81e00000ull);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_int_equal(env->cpu.cs.dpl, 0);
	assert_true(env->cpu.cs.l);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA);
	assert_int_equal(emu_cpl(&env->cpu), 0);
	assert_int_equal(rep.notes, EMU_NOTE_CPL);
	assert_int_equal(env->nwrites, 0);
}

/* EFER.SCE = 0: syscall is #UD, delivered from CPL3 to the kernel's handler. */
static void test_syscall_entry_ud(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	env->cpu.efer &= ~EFER_SCE;
	assert_int_equal(emu_syscall_entry(&env->cpu, &env->ops, 2, &rep), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	assert_int_equal(env->cpu.rip, HANDLER_UD);
	assert_int_equal(rep.notes, EMU_NOTE_CPL);
}

/* ---- far transfers ---------------------------------------------------------- */

/* lretq to the same level reloads CS: what a kernel does after lgdt (testos gdt.c). */
static void test_lretq_same_level(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = STACK_VA + 0x800;

	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, 0x401234);
	poke64(env, rsp + 8, SEL_KCODE);
	assert_ok(env, RUN(env, &rep, 0x48, 0xcb), &rep, 0x401234);
	assert_string_equal(rep.mnemonic, "retfq");
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_true(env->cpu.cs.l);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp + 16);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA);
	assert_int_equal(rep.notes, 0);
	/* lret $8 with 32-bit slots: releases 8 more bytes. */
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, ((u64)SEL_KCODE << 32) | 0x401000);
	assert_ok(env, RUN(env, &rep, 0xca, 0x08, 0x00), &rep, 0x401000);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp + 16);
}

/* lretq to CPL3: also pops RSP and SS; the CPL change is reported. */
static void test_lretq_outer_level(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = STACK_VA + 0x800;

	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, 0x7000000);
	poke64(env, rsp + 8, SEL_UCODE);
	poke64(env, rsp + 16, 0x7fff0000);
	poke64(env, rsp + 24, SEL_UDATA);
	assert_ok(env, RUN(env, &rep, 0x48, 0xcb), &rep, 0x7000000);
	assert_int_equal(env->cpu.cs.sel, SEL_UCODE);
	assert_int_equal(env->cpu.ss.sel, SEL_UDATA);
	assert_int_equal(env->cpu.gpr[EMU_RSP], 0x7fff0000);
	assert_int_equal(rep.notes, EMU_NOTE_CPL);
}

static void test_lretq_faults(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = STACK_VA + 0x800;

	/* From CPL3 to a CPL0 code segment: #GP(CS). */
	to_user(env);
	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, 0x401000);
	poke64(env, rsp + 8, SEL_KCODE);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcb), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_KCODE);
	/* A non-canonical RIP: #GP(0). */
	reset_cpl0(env);
	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, 0x0000800000000000ull);
	assert_int_equal(RUN(env, &rep, 0x48, 0xcb), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, 0);
}

/*
 * call far m16:32 from 64-bit code into 32-bit code at the same level, and
 * the 32-bit retf back, as memtest86+'s ia32 image's interrupt stubs run in
 * long mode: 4-byte slots, EIP below CS. Then m16:64 (REX.W, 8-byte
 * slots), and a call that fails pushes nothing.
 */
static void test_lcall_compat_and_back(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = STACK_VA + 0x800, target = CODE_VA + 0x800;

	more_gdt(env);
	env->cpu.gpr[EMU_RSP] = rsp;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	poke64(env, DATA_VA, target | (u64)SEL_KCODE32 << 32);
	assert_ok(env, RUN(env, &rep, 0xff, 0x1f), &rep, target); /* lcall *(%rdi) */
	assert_string_equal(rep.mnemonic, "lcall");
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE32);
	assert_false(env->cpu.cs.l);
	assert_true(env->cpu.cs.db);
	assert_int_equal(rep.notes, EMU_NOTE_CODE_MODE);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp - 8);
	assert_int_equal(peek64(env, rsp - 8), (CODE_VA + 2) | (u64)SEL_KCODE << 32);
	/* lret in 32-bit code: back to 64-bit code after the call. */
	assert_ok(env, RUN(env, &rep, 0xcb), &rep, CODE_VA + 2);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_true(env->cpu.cs.l);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp);
	assert_int_equal(rep.notes, EMU_NOTE_CODE_MODE);
	/* REX.W: m16:64 (Intel's reading), 8-byte slots. */
	env->cpu.rip = CODE_VA;
	poke64(env, DATA_VA, target);
	poke64(env, DATA_VA + 8, SEL_KCODE);
	assert_ok(env, RUN(env, &rep, 0x48, 0xff, 0x1f), &rep, target);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp - 16);
	assert_int_equal(peek64(env, rsp - 16), CODE_VA + 3);
	assert_int_equal(peek64(env, rsp - 8), SEL_KCODE);
	/* Into DPL3 code: #GP(sel), taken with the RSP and RIP of the call (nothing pushed). */
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, DATA_VA, target | (u64)SEL_UCODE << 32);
	assert_int_equal(RUN(env, &rep, 0xff, 0x1f), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_UCODE & SEL_ERR_MASK_TEST);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP] + 8), CODE_VA); /* frame RIP */
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP] + 32), rsp);	   /* frame RSP */
}

/* jmp far m16:64 in 64-bit mode: to CPL0 code; to DPL3 non-conforming code is #GP(sel). */
static void test_ljmp_mem64(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	poke64(env, DATA_VA, 0x401800);
	poke64(env, DATA_VA + 8, SEL_KCODE);
	assert_ok(env, RUN(env, &rep, 0x48, 0xff, 0x2f), &rep, 0x401800);
	assert_string_equal(rep.mnemonic, "ljmp");
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	env->cpu.rip = CODE_VA;
	poke64(env, DATA_VA + 8, SEL_UCODE);
	assert_int_equal(RUN(env, &rep, 0x48, 0xff, 0x2f), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_UCODE & SEL_ERR_MASK_TEST);
	/* An RPL above the CPL: #GP(sel) too (SDM Vol. 2A JMP). */
	reset_cpl0(env);
	poke64(env, DATA_VA + 8, SEL_KCODE | 3);
	assert_int_equal(RUN(env, &rep, 0x48, 0xff, 0x2f), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_KCODE);
	/* A TSS or an LDT descriptor: no task switch in IA-32e mode, #GP(sel). */
	reset_cpl0(env);
	more_gdt(env);
	poke64(env, DATA_VA + 8, SEL_TSS_DESC);
	assert_int_equal(RUN(env, &rep, 0x48, 0xff, 0x2f), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_TSS_DESC);
	reset_cpl0(env);
	poke64(env, DATA_VA + 8, SEL_LDT);
	assert_int_equal(RUN(env, &rep, 0x48, 0xff, 0x2f), EMU_DONE);
	assert_fault(env, &rep, X86_EXC_GP, SEL_LDT);
	/* An AMD CPU ignores REX.W there: m16:32, the selector at +4. */
	reset_cpl0(env);
	env->cpu.virt.far_ptr_m16_32 = true;
	poke64(env, DATA_VA, 0x401900 | ((u64)SEL_KCODE << 32));
	assert_ok(env, RUN(env, &rep, 0x48, 0xff, 0x2f), &rep, 0x401900);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
}

/* emu_data_seg_check, the rule mov to DS/ES/FS/GS uses, on its own (the load_gs stand-in's fill).
 */
static void test_data_seg_check(void **state)
{
	const u64 user_ds = 0x00cff3000000ffffull, kernel_ds = 0x00cf93000000ffffull;
	u64 base = 1;

	(void)state;
	assert_int_equal(emu_data_seg_check(0, 0x2b, user_ds, &base), 0);
	assert_int_equal(base, 0);
	assert_int_equal(emu_data_seg_check(0, 0x2b, user_ds | (0x12345ull << 16), &base), 0);
	assert_int_equal(base, 0x12345);
	assert_int_equal(emu_data_seg_check(0, 0x18, kernel_ds, &base), 0);
	assert_int_equal(emu_data_seg_check(3, 0x1b, kernel_ds, &base), X86_EXC_GP); /* DPL < CPL */
	assert_int_equal(emu_data_seg_check(0, 0x1b, kernel_ds, &base), X86_EXC_GP); /* DPL < RPL */
	assert_int_equal(emu_data_seg_check(0, 0x2b, user_ds & ~(1ull << 47), &base), X86_EXC_NP);
	assert_int_equal(emu_data_seg_check(0, 0x2b, user_ds & ~(1ull << 44), &base), X86_EXC_GP);
	/* Code: readable loads, execute-only does not; conforming ignores the DPL. */
	assert_int_equal(emu_data_seg_check(0, 0x33, 0x00affa000000ffffull, &base), 0);
	assert_int_equal(emu_data_seg_check(0, 0x33, 0x00aff8000000ffffull, &base), X86_EXC_GP);
	assert_int_equal(emu_data_seg_check(3, 0x13, 0x00af9e000000ffffull, &base), 0);
}

/* emu_ss_seg_check: RPL = DPL = CPL, a writable data segment, present (else #SS). */
static void test_ss_seg_check(void **state)
{
	const u64 user_ds = 0x00cff3000000ffffull, kernel_ds = 0x00cf93000000ffffull;

	(void)state;
	assert_int_equal(emu_ss_seg_check(0, 0x18, kernel_ds), 0);
	assert_int_equal(emu_ss_seg_check(3, 0x2b, user_ds), 0);
	assert_int_equal(emu_ss_seg_check(0, 0x1b, kernel_ds), X86_EXC_GP); /* RPL != CPL */
	assert_int_equal(emu_ss_seg_check(0, 0x28, user_ds), X86_EXC_GP);   /* DPL != CPL */
	assert_int_equal(emu_ss_seg_check(3, 0x1b, kernel_ds), X86_EXC_GP); /* DPL != CPL */
	assert_int_equal(emu_ss_seg_check(0, 0x18, kernel_ds & ~(2ull << 40)), X86_EXC_GP); /* RO */
	assert_int_equal(emu_ss_seg_check(0, 0x10, 0x00af9b000000ffffull), X86_EXC_GP); /* code */
	assert_int_equal(emu_ss_seg_check(0, 0x18, kernel_ds & ~(1ull << 44)), X86_EXC_GP);
	assert_int_equal(emu_ss_seg_check(0, 0x18, kernel_ds & ~(1ull << 47)), X86_EXC_SS);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_shadow, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_lgdt_lidt),
		T(test_lidt_noncanonical_gp),
		T(test_sgdt_sidt),
		T(test_lldt_sldt),
		T(test_lldt_faults),
		T(test_ltr_str),
		T(test_ltr_null_gp),
		T(test_mov_data_segs),
		T(test_mov_data_seg_faults),
		T(test_data_seg_check),
		T(test_ss_seg_check),
		T(test_mov_ss),
		T(test_seg_load_sets_accessed),
		T(test_pop_fs),
		T(test_invalid_in_64bit_ud),
		T(test_iretq_same_level),
		T(test_iretq_keeps_rf),
		T(test_iretq_noncanonical_rip),
		T(test_iretq_to_user),
		T(test_iretq_user_flags),
		T(test_iret_keeps_segs),
		T(test_iretq_faults),
		T(test_iretq_inner_level_gp),
		T(test_iretq_stack_pf),
		T(test_sysretq),
		T(test_sysretl),
		T(test_sysretq_faults),
		T(test_syscall_entry),
		T(test_syscall_entry_ud),
		T(test_lretq_same_level),
		T(test_lretq_outer_level),
		T(test_lretq_faults),
		T(test_ljmp_mem64),
		T(test_lcall_compat_and_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
