// SPDX-License-Identifier: MIT
/*
 * Unit tests for the VMM's instruction emulator (decode/emulate.c).
 *
 * A fake CPU (struct emu_cpu) runs on a malloc'd "guest RAM" (gpa 0 = byte 0
 * of the buffer) with hand-built 4-level page tables; the emulator's map
 * callback is the real guest walker (shadow/walk.c), so error codes and CR2
 * come out exactly as the VMM produces them. Events are delivered through
 * the exact IDT path (emu_deliver_event), as vmm/emulate_glue.c does, and the
 * tests check the frames it builds on the guest stack.
 *
 * Expected values follow the Intel SDM: Vol. 2 for each instruction, Vol. 3A
 * §6.12-§6.15 for delivery and §4.7 for page-fault error codes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "decode/emulate.h"
#include "shadow/walk.h"
#include "shadow/x86.h"

#define RAM_SIZE	(4 * MiB)
#define TABLE_POOL_GPA	(1 * MiB)
#define TEST_MAXPHYADDR 40

/* Guest-virtual layout: each page below maps to its own gpa. */
#define CODE_VA	    0x400000ull /* user+supervisor, RX */
#define DATA_VA	    0x600000ull /* two pages, RW, user */
#define STACK_VA    0x700000ull /* RW, user: the interrupted code's stack */
#define IDT_VA	    0x800000ull /* supervisor-only system tables */
#define GDT_VA	    0x801000ull
#define TSS_VA	    0x802000ull
#define KSTACK_VA   0x900000ull /* TSS.RSP0 stack */
#define IST_VA	    0x910000ull /* TSS.IST1 stack */
#define RO_VA	    0xa00000ull /* present, read-only */
#define UNMAPPED_VA 0xb00000ull

#define CODE_GPA   0x10000ull
#define DATA_GPA   0x20000ull
#define STACK_GPA  0x30000ull
#define IDT_GPA	   0x40000ull
#define GDT_GPA	   0x41000ull
#define TSS_GPA	   0x42000ull
#define KSTACK_GPA 0x50000ull
#define IST_GPA	   0x51000ull
#define RO_GPA	   0x60000ull

#define SEL_KCODE	0x08
#define SEL_KDATA	0x10
#define SEL_UCODE	0x2b /* index 5, RPL 3 */
#define SEL_UDATA	0x23 /* index 4, RPL 3 */
#define SEL_TSS		0x30
#define GDT_CODE64_DPL0 0x00af9a000000ffffull
#define GDT_DATA_DPL0	0x00cf92000000ffffull
#define GDT_DATA_DPL3	0x00cff2000000ffffull
#define GDT_CODE64_DPL3 0x00affa000000ffffull

#define HANDLER_BP 0x401000ull /* handler addresses only end up in RIP */
#define HANDLER_UD 0x401100ull
#define HANDLER_GP 0x401200ull
#define HANDLER_PF 0x401300ull
#define HANDLER_DF 0x401400ull
#define HANDLER_80 0x401800ull
#define HANDLER_81 0x401900ull

#define XCR0_VALUE 0x7ull

struct env {
	u8 *ram;
	gpa_t next_table;
	struct walk_mem mem;
	struct emu_cpu cpu;
	struct emu_ops ops;
	unsigned delivered; /* ops->deliver calls */
	struct emu_event last_event;
	unsigned flushes;
	unsigned flush_type;
	u64 flush_pcid, flush_la;
};

/* ---- guest memory and page tables ------------------------------------------ */

static void *ram_gpa_to_hva(void *opaque, gpa_t a, size_t len)
{
	struct env *env = opaque;

	if (a.v >= RAM_SIZE || len > RAM_SIZE - a.v)
		return NULL;
	return env->ram + a.v;
}

static gpa_t alloc_table(struct env *env)
{
	gpa_t t = env->next_table;

	env->next_table = gpa(t.v + PAGE_SIZE);
	memset(env->ram + t.v, 0, PAGE_SIZE);
	return t;
}

static void map_4k(struct env *env, u64 va, u64 pa, u64 flags)
{
	gpa_t table = gpa(env->cpu.cr3);

	for (unsigned level = 4; level > 1; level--) {
		u64 *e = (u64 *)(env->ram + table.v) + ((va >> (12 + 9 * (level - 1))) & 511);

		if (!(*e & PTE_P))
			*e = alloc_table(env).v | PTE_P | PTE_RW | PTE_US;
		table = gpa(*e & PTE_ADDR_MASK(TEST_MAXPHYADDR));
	}
	((u64 *)(env->ram + table.v))[(va >> 12) & 511] = pa | flags;
}

static void *at_va(struct env *env, u64 va)
{
	struct walk_ctl ctl = { .cr0 = env->cpu.cr0,
				.cr3 = env->cpu.cr3,
				.cr4 = env->cpu.cr4,
				.efer = env->cpu.efer,
				.maxphyaddr = TEST_MAXPHYADDR };
	struct guest_walk w;

	assert_int_equal(
		walk_guest(&paging_mode_4level, &env->mem, &ctl, gva(va), 0, WALK_PEEK, &w),
		WALK_OK);
	return env->ram + w.gpa.v;
}

static u64 peek64(struct env *env, u64 va)
{
	u64 v;

	memcpy(&v, at_va(env, va), sizeof(v));
	return v;
}

static void poke64(struct env *env, u64 va, u64 v)
{
	memcpy(at_va(env, va), &v, sizeof(v));
}

/* ---- the emulator's callbacks ---------------------------------------------- */

static enum emu_map_result fake_map(void *opaque, u64 la, unsigned len, u32 access, void **hva,
				    struct emu_event *fault)
{
	struct env *env = opaque;
	struct walk_ctl ctl = { .cr0 = env->cpu.cr0,
				.cr3 = env->cpu.cr3,
				.cr4 = env->cpu.cr4,
				.efer = env->cpu.efer,
				.maxphyaddr = TEST_MAXPHYADDR };
	u32 acc = ((access & EMU_ACC_WRITE) ? ACC_WRITE : 0) |
		  ((access & EMU_ACC_FETCH) ? ACC_FETCH : 0) |
		  ((access & EMU_ACC_USER) ? ACC_USER : 0) |
		  ((access & EMU_ACC_AC) ? ACC_AC_SET : 0);
	struct guest_walk w;

	assert_true(((la + len - 1) ^ la) < PAGE_SIZE); /* never across a page */
	switch (walk_guest(&paging_mode_4level, &env->mem, &ctl, gva(la), acc, WALK_SET_AD, &w)) {
	case WALK_OK:
		*hva = ram_gpa_to_hva(env, w.gpa, len);
		return *hva ? EMU_MAP_OK : EMU_MAP_NOT_RAM;
	case WALK_FAULT:
		*fault = (struct emu_event){ .kind = EMU_EV_EXCEPTION,
					     .vector = w.fault.vector,
					     .has_error_code = true,
					     .error_code = w.fault.error_code,
					     .has_cr2 = true,
					     .cr2 = w.fault.cr2.v };
		return EMU_MAP_FAULT;
	default: return EMU_MAP_NOT_RAM;
	}
}

static bool fake_read_xcr(void *opaque, u32 index, u64 *value)
{
	(void)opaque;
	if (index != 0)
		return false;
	*value = XCR0_VALUE;
	return true;
}

static bool fake_flush_tlb(void *opaque, unsigned type, u64 pcid, u64 la)
{
	struct env *env = opaque;

	env->flushes++;
	env->flush_type = type;
	env->flush_pcid = pcid;
	env->flush_la = la;
	return true;
}

static enum emu_result fake_deliver(void *opaque, struct emu_cpu *cpu, const struct emu_event *ev)
{
	struct env *env = opaque;

	env->delivered++;
	env->last_event = *ev;
	return emu_deliver_event(cpu, &env->ops, ev);
}

/* ---- fixture --------------------------------------------------------------- */

static void set_gate(struct env *env, unsigned vec, u64 handler, unsigned type, unsigned dpl,
		     unsigned ist)
{
	u64 *g = (u64 *)(env->ram + IDT_GPA) + vec * 2;

	g[0] = (handler & 0xffff) | ((u64)SEL_KCODE << 16) | ((u64)ist << 32) |
	       ((u64)(0x80 | dpl << 5 | type) << 40) | (((handler >> 16) & 0xffff) << 48);
	g[1] = handler >> 32;
}

static int setup(void **state)
{
	struct env *env = calloc(1, sizeof(*env));
	u64 *gdt, *tss;

	assert_non_null(env);
	env->ram = calloc(1, RAM_SIZE);
	assert_non_null(env->ram);
	env->next_table = gpa(TABLE_POOL_GPA);
	env->mem = (struct walk_mem){ .opaque = env, .gpa_to_hva = ram_gpa_to_hva };
	env->cpu = (struct emu_cpu){
		.rip = CODE_VA,
		.rflags = RFLAGS_FIXED | RFLAGS_IF,
		.cr0 = CR0_PE | CR0_PG | CR0_WP | CR0_ET | CR0_NE,
		.cr4 = CR4_PAE | CR4_OSXSAVE,
		.efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE,
		.cs = { .sel = SEL_KCODE,
			.type = 0xb,
			.s = 1,
			.present = 1,
			.l = 1,
			.g = 1,
			.limit = 0xffffffff },
		.ss = { .sel = SEL_KDATA,
			.type = 0x3,
			.s = 1,
			.present = 1,
			.db = 1,
			.g = 1,
			.limit = 0xffffffff },
		.gdt_base = GDT_VA,
		.gdt_limit = 8 * 8 - 1,
		.idt_base = IDT_VA,
		.idt_limit = 256 * 16 - 1,
		.tr_base = TSS_VA,
		.tr_limit = 103,
		.tr_sel = SEL_TSS,
	};
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8; /* not 16-aligned on purpose */
	env->cpu.cr3 = alloc_table(env).v;
	map_4k(env, CODE_VA, CODE_GPA, PTE_P | PTE_US);
	map_4k(env, DATA_VA, DATA_GPA, PTE_P | PTE_RW | PTE_US | PTE_NX);
	map_4k(env, DATA_VA + PAGE_SIZE, DATA_GPA + PAGE_SIZE, PTE_P | PTE_RW | PTE_US | PTE_NX);
	map_4k(env, STACK_VA, STACK_GPA, PTE_P | PTE_RW | PTE_US | PTE_NX);
	map_4k(env, IDT_VA, IDT_GPA, PTE_P | PTE_NX);
	map_4k(env, GDT_VA, GDT_GPA, PTE_P | PTE_RW | PTE_NX);
	map_4k(env, TSS_VA, TSS_GPA, PTE_P | PTE_RW | PTE_NX);
	map_4k(env, KSTACK_VA, KSTACK_GPA, PTE_P | PTE_RW | PTE_NX);
	map_4k(env, IST_VA, IST_GPA, PTE_P | PTE_RW | PTE_NX);
	map_4k(env, RO_VA, RO_GPA, PTE_P | PTE_US | PTE_NX);

	gdt = (u64 *)(env->ram + GDT_GPA);
	gdt[SEL_KCODE / 8] = GDT_CODE64_DPL0;
	gdt[SEL_KDATA / 8] = GDT_DATA_DPL0;
	gdt[SEL_UDATA / 8] = GDT_DATA_DPL3;
	gdt[SEL_UCODE / 8] = GDT_CODE64_DPL3;
	tss = (u64 *)(env->ram + TSS_GPA);
	memcpy((u8 *)tss + 0x04, &(u64){ KSTACK_VA + PAGE_SIZE }, 8); /* RSP0 */
	memcpy((u8 *)tss + 0x24, &(u64){ IST_VA + PAGE_SIZE }, 8);    /* IST1 */

	set_gate(env, X86_EXC_BP, HANDLER_BP, 0xf, 3, 0);
	set_gate(env, X86_EXC_UD, HANDLER_UD, 0xe, 0, 0);
	set_gate(env, X86_EXC_GP, HANDLER_GP, 0xe, 0, 0);
	set_gate(env, X86_EXC_PF, HANDLER_PF, 0xe, 0, 0);
	set_gate(env, X86_EXC_DF, HANDLER_DF, 0xe, 0, 0);
	set_gate(env, 0x80, HANDLER_80, 0xe, 3, 1);
	set_gate(env, 0x81, HANDLER_81, 0xe, 0, 0);

	env->ops = (struct emu_ops){ .opaque = env,
				     .map = fake_map,
				     .read_xcr = fake_read_xcr,
				     .flush_tlb = fake_flush_tlb,
				     .deliver = fake_deliver };
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	free(env->ram);
	free(env);
	return 0;
}

/* Put `code` at the current RIP and emulate it. */
static enum emu_result run(struct env *env, const u8 *code, size_t len, struct emu_report *rep)
{
	memcpy(env->ram + CODE_GPA + (env->cpu.rip - CODE_VA), code, len);
	return emu_insn(&env->cpu, &env->ops, rep);
}

#define RUN(env, rep, ...) \
	run((env), (const u8[]){ __VA_ARGS__ }, sizeof((const u8[]){ __VA_ARGS__ }), (rep))

static void to_user(struct env *env)
{
	env->cpu.cs = (struct emu_seg){ .sel = SEL_UCODE,
					.type = 0xb,
					.s = 1,
					.dpl = 3,
					.present = 1,
					.l = 1,
					.g = 1,
					.limit = 0xffffffff };
	env->cpu.ss = (struct emu_seg){ .sel = SEL_UDATA,
					.type = 0x3,
					.s = 1,
					.dpl = 3,
					.present = 1,
					.db = 1,
					.g = 1,
					.limit = 0xffffffff };
}

/*
 * The 64-bit frame at the new RSP: [error code,] RIP, CS, RFLAGS, RSP, SS
 * (SDM Vol. 3A Figure 6-9).
 */
static void assert_frame(struct env *env, bool has_err, u64 err, u64 rip, u64 cs, u64 rflags,
			 u64 rsp, u64 ss)
{
	u64 f = env->cpu.gpr[EMU_RSP];

	if (has_err) {
		assert_int_equal(peek64(env, f), err);
		f += 8;
	}
	assert_int_equal(peek64(env, f), rip);
	assert_int_equal(peek64(env, f + 8), cs);
	assert_int_equal(peek64(env, f + 16), rflags);
	assert_int_equal(peek64(env, f + 24), rsp);
	assert_int_equal(peek64(env, f + 32), ss);
}

/* The state after a fault delivered at CPL0 through an interrupt gate, no IST. */
static void assert_fault_at_cpl0(struct env *env, const struct emu_cpu *before, u8 vector,
				 u64 handler, bool has_err, u32 err)
{
	u64 rsp = (before->gpr[EMU_RSP] & ~15ull) - (has_err ? 48 : 40);

	assert_int_equal(env->cpu.rip, handler);
	assert_int_equal(env->cpu.gpr[EMU_RSP], rsp);
	assert_int_equal(env->cpu.rflags & RFLAGS_IF, 0);
	(void)vector; /* the handler address says which gate was used */
	/* Faults push the instruction's own RIP, with RF set in the RFLAGS image. */
	assert_frame(env, has_err, err, before->rip, before->cs.sel, before->rflags | RFLAGS_RF,
		     before->gpr[EMU_RSP], before->ss.sel);
}

/* ---- clac / stac ----------------------------------------------------------- */

static void test_clac_stac(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags |= RFLAGS_AC | RFLAGS_RF;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xca), EMU_DONE);
	assert_string_equal(rep.mnemonic, "clac");
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF); /* AC and RF cleared */
	assert_int_equal(env->cpu.rip, CODE_VA + 3);
	assert_true(env->cpu.dirty & EMU_DIRTY_REGS);
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xcb), EMU_DONE);
	assert_string_equal(rep.mnemonic, "stac");
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_AC);
	assert_int_equal(env->cpu.rip, CODE_VA + 6);
	assert_int_equal(env->delivered, 0);
}

/* clac at CPL3: #UD, delivered with a stack switch to TSS.RSP0. */
static void test_clac_user_ud(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	to_user(env);
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xca), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	assert_int_equal(env->cpu.rip, HANDLER_UD);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_int_equal(env->cpu.cs.dpl, 0);
	assert_int_equal(env->cpu.ss.sel, 0); /* null SS with RPL = new CPL */
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSTACK_VA + PAGE_SIZE - 40);
	assert_frame(env, false, 0, CODE_VA, SEL_UCODE, before.rflags | RFLAGS_RF,
		     before.gpr[EMU_RSP], SEL_UDATA);
	assert_true(env->cpu.dirty & EMU_DIRTY_SREGS);
}

/*
 * LOCK on an instruction that does not take it is #UD. Capstone already
 * refuses those byte strings (lock clac, lock movbe), so they stop the VM as
 * unknown: safe, and KVM's own decoder raises that #UD before it exits to us.
 */
static void test_lock_prefix_refused(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0x38, 0xf0, 0x07), EMU_UNKNOWN);
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0x01, 0xca), EMU_UNKNOWN);
	assert_memory_equal(&env->cpu, &before, sizeof(before));
}

/* ---- int3 / int n ---------------------------------------------------------- */

static void test_int3(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.rflags |= RFLAGS_TF;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcc), EMU_DONE);
	assert_string_equal(rep.mnemonic, "int3");
	assert_false(rep.faulted);
	assert_int_equal(env->last_event.kind, EMU_EV_SOFT_INT);
	assert_int_equal(env->cpu.rip, HANDLER_BP);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_int_equal(env->cpu.gpr[EMU_RSP], (before.gpr[EMU_RSP] & ~15ull) - 40);
	/* Trap gate: IF kept; TF cleared. The frame holds the next RIP. */
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED | RFLAGS_IF);
	assert_frame(env, false, 0, CODE_VA + 1, SEL_KCODE, before.rflags, before.gpr[EMU_RSP],
		     SEL_KDATA);
}

/* int $0x80 through an interrupt gate with IST1: the IST stack, IF cleared. */
static void test_int_n_ist(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	assert_int_equal(RUN(env, &rep, 0xcd, 0x80), EMU_DONE);
	assert_string_equal(rep.mnemonic, "int");
	assert_int_equal(env->last_event.vector, 0x80);
	assert_int_equal(env->cpu.rip, HANDLER_80);
	assert_int_equal(env->cpu.gpr[EMU_RSP], IST_VA + PAGE_SIZE - 40);
	assert_int_equal(env->cpu.rflags, RFLAGS_FIXED);
	assert_int_equal(env->cpu.ss.sel, SEL_KDATA); /* no privilege change: SS kept */
	assert_frame(env, false, 0, CODE_VA + 2, SEL_KCODE, before.rflags, before.gpr[EMU_RSP],
		     SEL_KDATA);
}

/* int $0x80 from CPL3 (DPL3 gate): allowed, CPL0 handler, user SS:RSP saved. */
static void test_int_n_from_user(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	to_user(env);
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcd, 0x80), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, HANDLER_80);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_frame(env, false, 0, CODE_VA + 2, SEL_UCODE, before.rflags, before.gpr[EMU_RSP],
		     SEL_UDATA);
}

/* int $0x81 from CPL3 through a DPL0 gate: #GP(0x81 * 8 + 2), RIP of the int. */
static void test_int_n_dpl_violation(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	to_user(env);
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcd, 0x81), EMU_DONE);
	assert_int_equal(env->cpu.rip, HANDLER_GP);
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSTACK_VA + PAGE_SIZE - 48);
	assert_frame(env, true, 0x81 * 8 + 2, CODE_VA, SEL_UCODE, before.rflags | RFLAGS_RF,
		     before.gpr[EMU_RSP], SEL_UDATA);
}

/* A vector beyond the IDT limit: #GP(vector * 8 + 2). */
static void test_int_n_beyond_idt_limit(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.idt_limit = 0x80 * 16 - 1;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcd, 0x80), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0x80 * 8 + 2);
}

/* int3 on an unmapped stack: #PF, then #PF delivering it (#DF), then a triple fault. */
static void test_int3_triple_fault(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RSP] = UNMAPPED_VA + 0x100;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xcc), EMU_TRIPLE_FAULT);
	assert_memory_equal(&env->cpu, &before, sizeof(before));
}

/* ---- xgetbv ---------------------------------------------------------------- */

static void test_xgetbv(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RAX] = env->cpu.gpr[EMU_RDX] = ~0ull;
	env->cpu.gpr[EMU_RCX] = 0xffffffff00000000ull; /* ECX = 0 */
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xd0), EMU_DONE);
	assert_string_equal(rep.mnemonic, "xgetbv");
	assert_int_equal(env->cpu.gpr[EMU_RAX], XCR0_VALUE);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0);
	assert_int_equal(env->cpu.rip, CODE_VA + 3);

	/* XCR1 does not exist here: #GP(0). */
	env->cpu.gpr[EMU_RCX] = 1;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xd0), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
}

static void test_xgetbv_no_osxsave(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.cr4 &= ~CR4_OSXSAVE;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xd0), EMU_DONE);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	assert_int_equal(env->cpu.rip, HANDLER_UD);
	assert_int_equal(env->cpu.gpr[EMU_RAX], before.gpr[EMU_RAX]);
}

/* ---- movbe ----------------------------------------------------------------- */

static void test_movbe_loads(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x10, 0x0102030405060708ull);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x10;
	/* movbe rax, [rdi] */
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0x38, 0xf0, 0x07), EMU_DONE);
	assert_string_equal(rep.mnemonic, "movbe");
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x0807060504030201ull);
	assert_int_equal(env->cpu.rip, CODE_VA + 5);
	/* movbe ecx, [rdi]: a 32-bit write zero-extends */
	env->cpu.gpr[EMU_RCX] = ~0ull;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf0, 0x0f), EMU_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0x08070605ull);
	/* movbe dx, [rdi]: a 16-bit write merges */
	env->cpu.gpr[EMU_RDX] = 0xaaaaaaaaaaaaaaaaull;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x38, 0xf0, 0x17), EMU_DONE);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0xaaaaaaaaaaaa0807ull);
	/* movbe r9, [rip + 0x20]: RIP-relative from the next instruction */
	poke64(env, DATA_VA, 0x1122334455667788ull);
	env->cpu.rip = CODE_VA + 0x100;
	{
		u64 disp = DATA_VA - (CODE_VA + 0x100 + 9);

		assert_int_equal(RUN(env, &rep, 0x4c, 0x0f, 0x38, 0xf0, 0x0d, (u8)disp,
				     (u8)(disp >> 8), (u8)(disp >> 16), (u8)(disp >> 24)),
				 EMU_DONE);
	}
	assert_int_equal(env->cpu.gpr[EMU_R9], 0x8877665544332211ull);
}

static void test_movbe_stores(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x20, 0);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x20;
	env->cpu.gpr[EMU_RAX] = 0xffffffff11223344ull;
	/* movbe [rdi], eax */
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf1, 0x07), EMU_DONE);
	assert_int_equal(peek64(env, DATA_VA + 0x20), 0x44332211ull);
	/* movbe [rdi + 0xffc], rax: straddles the two data pages */
	env->cpu.gpr[EMU_RAX] = 0x0102030405060708ull;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0x38, 0xf1, 0x87, 0xdc, 0x0f, 0x00, 0x00),
			 EMU_DONE);
	assert_int_equal(peek64(env, DATA_VA + 0xffc), 0x0807060504030201ull);
	/* The store set D in the data PTE, as the CPU would. */
	assert_int_equal(env->delivered, 0);
}

/* movbe store to an unmapped page: #PF, W=1 P=0 U=0, CR2 = the address. */
static void test_movbe_pf_unmapped(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA + 0x18;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf1, 0x07), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(env->cpu.cr2, UNMAPPED_VA + 0x18);
	assert_true(env->cpu.dirty & EMU_DIRTY_SREGS);
	assert_fault_at_cpl0(env, &before, X86_EXC_PF, HANDLER_PF, true, PFERR_WRITE);
}

/* movbe store from CPL3 to a read-only user page: #PF, P=1 W=1 U=1. */
static void test_movbe_pf_user_readonly(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	env->cpu.gpr[EMU_RDI] = RO_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf1, 0x07), EMU_DONE);
	assert_int_equal(env->cpu.rip, HANDLER_PF);
	assert_int_equal(env->cpu.cr2, RO_VA);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]),
			 PFERR_PRESENT | PFERR_WRITE | PFERR_USER);
}

/* A split store whose second page faults writes nothing. */
static void test_movbe_split_fault_writes_nothing(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	map_4k(env, UNMAPPED_VA - PAGE_SIZE, DATA_GPA + 2 * PAGE_SIZE, PTE_P | PTE_RW | PTE_NX);
	poke64(env, UNMAPPED_VA - 8, 0x5555555555555555ull);
	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA - 4;
	env->cpu.gpr[EMU_RAX] = 0;
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0x38, 0xf1, 0x07), EMU_DONE);
	assert_int_equal(env->cpu.rip, HANDLER_PF);
	assert_int_equal(env->cpu.cr2, UNMAPPED_VA);
	assert_int_equal(peek64(env, UNMAPPED_VA - 8), 0x5555555555555555ull);
}

static void test_movbe_noncanonical_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = 0x0000800000000000ull;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf0, 0x07), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
}

/* ---- cmpxchg16b / cmpxchg8b ------------------------------------------------ */

static void test_cmpxchg16b_match(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x40, 0x1111);
	poke64(env, DATA_VA + 0x48, 0x2222);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x40;
	env->cpu.gpr[EMU_RAX] = 0x1111;
	env->cpu.gpr[EMU_RDX] = 0x2222;
	env->cpu.gpr[EMU_RBX] = 0x3333;
	env->cpu.gpr[EMU_RCX] = 0x4444;
	/* lock cmpxchg16b [rdi] */
	assert_int_equal(RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_string_equal(rep.mnemonic, "cmpxchg16b");
	assert_true(env->cpu.rflags & RFLAGS_ZF);
	assert_int_equal(peek64(env, DATA_VA + 0x40), 0x3333);
	assert_int_equal(peek64(env, DATA_VA + 0x48), 0x4444);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1111);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0x2222);
	assert_int_equal(env->cpu.rip, CODE_VA + 5);
}

static void test_cmpxchg16b_mismatch(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x40, 0x1111);
	poke64(env, DATA_VA + 0x48, 0x2222);
	env->cpu.rflags |= RFLAGS_ZF | RFLAGS_CF;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x40;
	env->cpu.gpr[EMU_RAX] = 0x1111;
	env->cpu.gpr[EMU_RDX] = 0x9999; /* high half differs */
	env->cpu.gpr[EMU_RBX] = 0x3333;
	env->cpu.gpr[EMU_RCX] = 0x4444;
	/* cmpxchg16b [rdi], no lock */
	assert_int_equal(RUN(env, &rep, 0x48, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_false(env->cpu.rflags & RFLAGS_ZF);
	assert_true(env->cpu.rflags & RFLAGS_CF); /* only ZF changes */
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1111);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 0x2222);
	assert_int_equal(peek64(env, DATA_VA + 0x40), 0x1111);
	assert_int_equal(peek64(env, DATA_VA + 0x48), 0x2222);
}

static void test_cmpxchg16b_misaligned_gp(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x48;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
}

/* The operand always gets a write cycle: a read-only page faults even on mismatch. */
static void test_cmpxchg16b_readonly_pf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = RO_VA;
	env->cpu.gpr[EMU_RAX] = 1; /* memory holds 0: a mismatch */
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x48, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_int_equal(env->cpu.cr2, RO_VA);
	assert_fault_at_cpl0(env, &before, X86_EXC_PF, HANDLER_PF, true,
			     PFERR_PRESENT | PFERR_WRITE);
}

static void test_cmpxchg8b(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	poke64(env, DATA_VA + 0x60, 0x0000000200000001ull);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x60;
	env->cpu.gpr[EMU_RAX] = 0xffffffff00000001ull;
	env->cpu.gpr[EMU_RDX] = 0xffffffff00000002ull;
	env->cpu.gpr[EMU_RBX] = 3;
	env->cpu.gpr[EMU_RCX] = 4;
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_true(env->cpu.rflags & RFLAGS_ZF);
	assert_int_equal(peek64(env, DATA_VA + 0x60), 0x0000000400000003ull);
	/* Mismatch: EDX:EAX loaded, upper halves zeroed (32-bit register writes). */
	assert_int_equal(RUN(env, &rep, 0xf0, 0x0f, 0xc7, 0x0f), EMU_DONE);
	assert_false(env->cpu.rflags & RFLAGS_ZF);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 3);
	assert_int_equal(env->cpu.gpr[EMU_RDX], 4);
}

/* ---- cache-line flushes ---------------------------------------------------- */

static void test_cache_line_flushes(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before;

	env->cpu.gpr[EMU_RDI] = DATA_VA;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xae, 0x37), EMU_DONE);
	assert_string_equal(rep.mnemonic, "clwb");
	assert_int_equal(env->cpu.rip, CODE_VA + 4);
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xae, 0x3f), EMU_DONE);
	assert_string_equal(rep.mnemonic, "clflushopt");
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x3f), EMU_DONE);
	assert_string_equal(rep.mnemonic, "clflush");
	assert_int_equal(env->cpu.rip, CODE_VA + 11);
	assert_int_equal(env->delivered, 0);

	/* An unmapped line faults like a read: P=0, W=0. */
	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA;
	before = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0xae, 0x37), EMU_DONE);
	assert_fault_at_cpl0(env, &before, X86_EXC_PF, HANDLER_PF, true, 0);
}

/* ---- invpcid --------------------------------------------------------------- */

static void put_desc(struct env *env, u64 pcid, u64 la)
{
	poke64(env, DATA_VA + 0x80, pcid);
	poke64(env, DATA_VA + 0x88, la);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x80;
}

static void test_invpcid(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	for (u64 type = 0; type <= 3; type++) {
		put_desc(env, 0, DATA_VA);
		env->cpu.gpr[EMU_RAX] = type;
		/* invpcid rax, [rdi] */
		assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x38, 0x82, 0x07), EMU_DONE);
		assert_string_equal(rep.mnemonic, "invpcid");
		assert_false(rep.faulted);
		assert_int_equal(env->flushes, type + 1);
		assert_int_equal(env->flush_type, type);
		assert_int_equal(env->flush_la, DATA_VA);
	}
	assert_int_equal(env->cpu.rip, CODE_VA + 4 * 5);
	/* With CR4.PCIDE a nonzero PCID is fine for type 1. */
	env->cpu.cr4 |= CR4_PCIDE;
	put_desc(env, 5, 0);
	env->cpu.gpr[EMU_RAX] = 1;
	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x38, 0x82, 0x07), EMU_DONE);
	assert_int_equal(env->flush_pcid, 5);
}

static void expect_invpcid_gp(struct env *env)
{
	struct emu_report rep;
	struct emu_cpu before = env->cpu;
	unsigned flushes = env->flushes;

	assert_int_equal(RUN(env, &rep, 0x66, 0x0f, 0x38, 0x82, 0x07), EMU_DONE);
	assert_int_equal(env->flushes, flushes);
	assert_int_equal(env->cpu.rip, HANDLER_GP);
	if (before.cs.dpl == 0)
		assert_fault_at_cpl0(env, &before, X86_EXC_GP, HANDLER_GP, true, 0);
}

static void test_invpcid_gp_cases(void **state)
{
	struct env *env = *state;

	put_desc(env, 0, 0);
	env->cpu.gpr[EMU_RAX] = 4; /* no such type */
	expect_invpcid_gp(env);
	teardown(state);
	setup(state);
	env = *state;
	put_desc(env, 1, 0); /* nonzero PCID with CR4.PCIDE = 0, type 0 */
	env->cpu.gpr[EMU_RAX] = 0;
	expect_invpcid_gp(env);
	teardown(state);
	setup(state);
	env = *state;
	put_desc(env, 0x1000, 0); /* descriptor bits 63:12 reserved */
	env->cpu.gpr[EMU_RAX] = 2;
	expect_invpcid_gp(env);
	teardown(state);
	setup(state);
	env = *state;
	put_desc(env, 0, 0x0000800000000000ull); /* type 0, non-canonical address */
	env->cpu.gpr[EMU_RAX] = 0;
	expect_invpcid_gp(env);
	teardown(state);
	setup(state);
	env = *state;
	to_user(env); /* CPL3 */
	put_desc(env, 0, 0);
	env->cpu.gpr[EMU_RAX] = 2;
	expect_invpcid_gp(env);
}

/* ---- what is not emulated -------------------------------------------------- */

static void test_unknown_instruction(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu before = env->cpu;

	/* hlt: KVM's business, not ours */
	assert_int_equal(RUN(env, &rep, 0xf4), EMU_UNKNOWN);
	assert_string_equal(rep.mnemonic, "hlt");
	assert_memory_equal(&env->cpu, &before, sizeof(before));
	/* xrstor [rdi]: deliberately not emulated */
	assert_int_equal(RUN(env, &rep, 0x0f, 0xae, 0x2f), EMU_UNKNOWN);
	/* bytes that are no instruction */
	assert_int_equal(RUN(env, &rep, 0xff, 0xff), EMU_UNKNOWN);
	assert_memory_equal(&env->cpu, &before, sizeof(before));
	assert_int_equal(env->delivered, 0);
}

/* Compatibility mode is not emulated. */
static void test_compat_mode_unknown(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.cs.l = 0;
	env->cpu.cs.db = 1;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x01, 0xca), EMU_UNKNOWN);
}

/* MMIO operands stop the VM rather than being guessed at. */
static void test_operand_not_ram(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	map_4k(env, UNMAPPED_VA, 2 * GiB, PTE_P | PTE_RW);
	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x38, 0xf1, 0x07), EMU_UNHANDLED_MEM);
	assert_int_equal(env->cpu.rip, CODE_VA);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_clac_stac),
		T(test_clac_user_ud),
		T(test_lock_prefix_refused),
		T(test_int3),
		T(test_int_n_ist),
		T(test_int_n_from_user),
		T(test_int_n_dpl_violation),
		T(test_int_n_beyond_idt_limit),
		T(test_int3_triple_fault),
		T(test_xgetbv),
		T(test_xgetbv_no_osxsave),
		T(test_movbe_loads),
		T(test_movbe_stores),
		T(test_movbe_pf_unmapped),
		T(test_movbe_pf_user_readonly),
		T(test_movbe_split_fault_writes_nothing),
		T(test_movbe_noncanonical_gp),
		T(test_cmpxchg16b_match),
		T(test_cmpxchg16b_mismatch),
		T(test_cmpxchg16b_misaligned_gp),
		T(test_cmpxchg16b_readonly_pf),
		T(test_cmpxchg8b),
		T(test_cache_line_flushes),
		T(test_invpcid),
		T(test_invpcid_gp_cases),
		T(test_unknown_instruction),
		T(test_compat_mode_unknown),
		T(test_operand_not_ram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
