/* SPDX-License-Identifier: MIT */
/*
 * The fixture of the emulator's unit tests (tests/unit/test_emulate*.c).
 *
 * A fake CPU (struct emu_cpu) runs on a malloc'd "guest RAM" (gpa 0 = byte 0
 * of the buffer) with hand-built 4-level page tables; the emulator's map
 * callbacks are the real guest walker (shadow/walk.c), so error codes and
 * CR2 come out exactly as the VMM produces them. Events are delivered
 * through the exact IDT path (emu_deliver_event), and the tests check the
 * frames it builds on the guest stack.
 *
 * The xsave family and wait see a fake vCPU XSAVE state (env->xstate_vcpu,
 * standard format, AVX at XSTATE_AVX_OFF): get_xstate hands out a copy and
 * put_xstate stores the copy back, so a failed instruction changes nothing.
 *
 * to_shadow() turns the fixture into a shadow-mode vCPU: EMU_MODE_SHADOW,
 * the map_phys/mmio_read/write/msr/write_xcr callbacks (recording every
 * store in env->writes), and an MMIO page at MMIO_VA.
 */
#ifndef UMBRA_TESTS_EMU_ENV_H
#define UMBRA_TESTS_EMU_ENV_H

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

#define MMIO_VA		0xc00000ull   /* shadow mode: maps MMIO_GPA, RW, supervisor */
#define MMIO_GPA	0xfee00000ull /* beyond RAM: reads return MMIO_VALUE */
#define MMIO_VALUE	0x1122334455667788ull
#define MSR_APIC_BASE	0x1bu		      /* the fake ops->msr keeps this one */
#define FAKE_TSC	0x0000123489abcdefull /* ... and reads this as IA32_TSC */
#define APIC_BASE_VALUE 0xfee00900ull
#define MAX_WRITES	16

/* The fake XSAVE state: legacy region, header, AVX (component 2) only (XCR0 = 7). */
#define XSTATE_AVX_OFF 576
#define XSTATE_AVX_LEN 256
#define XSTATE_SIZE    (XSTATE_AVX_OFF + XSTATE_AVX_LEN)

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
	/* shadow mode */
	struct emu_write writes[MAX_WRITES]; /* every ops->write, in order */
	unsigned nwrites;
	unsigned mmio_reads;
	gpa_t mmio_read_gpa;
	u64 apic_base;
	u32 xcr_index;
	u64 xcr_value;
	u64 root;	      /* the fixture's 4-level root, for tests that change CR3 */
	unsigned pdpte_loads; /* ops->load_pdptes calls */
	/* xsave family: the vCPU's state, the copy handed out, and the calls */
	u8 xstate_vcpu[XSTATE_SIZE];
	u8 xstate_copy[XSTATE_SIZE];
	struct emu_xstate xs;
	unsigned xstate_gets, xstate_puts;
};

/* ---- guest memory and page tables ------------------------------------------ */

static inline void *ram_gpa_to_hva(void *opaque, gpa_t a, size_t len)
{
	struct env *env = opaque;

	if (a.v >= RAM_SIZE || len > RAM_SIZE - a.v)
		return NULL;
	return env->ram + a.v;
}

static inline gpa_t alloc_table(struct env *env)
{
	gpa_t t = env->next_table;

	env->next_table = gpa(t.v + PAGE_SIZE);
	memset(env->ram + t.v, 0, PAGE_SIZE);
	return t;
}

static inline void map_4k(struct env *env, u64 va, u64 pa, u64 flags)
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

static inline void *at_va(struct env *env, u64 va)
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

static inline u64 peek64(struct env *env, u64 va)
{
	u64 v;

	memcpy(&v, at_va(env, va), sizeof(v));
	return v;
}

static inline void poke64(struct env *env, u64 va, u64 v)
{
	memcpy(at_va(env, va), &v, sizeof(v));
}

/* ---- the emulator's callbacks ---------------------------------------------- */

static inline enum emu_map_result fake_map(void *opaque, u64 la, unsigned len, u32 access,
					   void **hva, struct emu_event *fault)
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

static inline bool fake_read_xcr(void *opaque, u32 index, u64 *value)
{
	(void)opaque;
	if (index != 0)
		return false;
	*value = XCR0_VALUE;
	return true;
}

static inline bool fake_flush_tlb(void *opaque, unsigned type, u64 pcid, u64 la)
{
	struct env *env = opaque;

	env->flushes++;
	env->flush_type = type;
	env->flush_pcid = pcid;
	env->flush_la = la;
	return true;
}

static inline struct emu_xstate *fake_get_xstate(void *opaque)
{
	struct env *env = opaque;

	env->xstate_gets++;
	memcpy(env->xstate_copy, env->xstate_vcpu, XSTATE_SIZE);
	env->xs.area = env->xstate_copy;
	return &env->xs;
}

static inline bool fake_put_xstate(void *opaque, const struct emu_xstate *xs)
{
	struct env *env = opaque;

	assert_ptr_equal(xs, &env->xs);
	env->xstate_puts++;
	memcpy(env->xstate_vcpu, env->xstate_copy, XSTATE_SIZE);
	return true;
}

/*
 * The vCPU's initial XSAVE state: x87 and SSE in use (XSTATE_BV = 3) with
 * recognizable bytes, FCW 037FH, MXCSR 1F80H, MXCSR_MASK FFFFH, AVX in its
 * initial configuration (zeros, XINUSE[2] = 0).
 */
static inline void init_xstate(struct env *env)
{
	u8 *a = env->xstate_vcpu;

	memset(a, 0, XSTATE_SIZE);
	for (unsigned i = 32; i < 416; i++)
		a[i] = (u8)i; /* ST0-7, XMM0-15 */
	memcpy(a + 0, &(u16){ 0x037f }, 2);
	memcpy(a + 8, &(u64){ 0xffffffff81000000ull }, 8); /* FIP */
	memcpy(a + 24, &(u32){ 0x1f80 }, 4);
	memcpy(a + 28, &(u32){ 0xffff }, 4);
	memcpy(a + 512, &(u64){ 3 }, 8);
	env->xs = (struct emu_xstate){ .size = XSTATE_SIZE };
	env->xs.offset[2] = XSTATE_AVX_OFF;
	env->xs.len[2] = XSTATE_AVX_LEN;
}

static inline enum emu_result fake_deliver(void *opaque, struct emu_cpu *cpu,
					   const struct emu_event *ev)
{
	struct env *env = opaque;

	env->delivered++;
	env->last_event = *ev;
	return emu_deliver_event(cpu, &env->ops, ev);
}

static inline enum emu_map_result fake_map_phys(void *opaque, u64 la, unsigned len, u32 access,
						gpa_t *gpa_out, void **hva, struct emu_event *fault)
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

	/* Any paging mode the walker knows, paging off (identity) included. */
	memcpy(ctl.pdpte, env->cpu.pdpte, sizeof(ctl.pdpte));
	assert_true(((la + len - 1) ^ la) < PAGE_SIZE); /* never across a page */
	switch (walk_guest(paging_mode_select(&ctl), &env->mem, &ctl, gva(la), acc, WALK_SET_AD,
			   &w)) {
	case WALK_OK:
		*gpa_out = w.gpa;
		*hva = ram_gpa_to_hva(env, w.gpa, len);
		return EMU_MAP_OK;
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

/* PAE paging: the walker's PDPTE load, counted. */
static inline bool fake_load_pdptes(void *opaque, u64 cr3, u64 pdpte[4])
{
	struct env *env = opaque;

	env->pdpte_loads++;
	return walk_read_pdptes(&env->mem, cr3, TEST_MAXPHYADDR, pdpte);
}

static inline bool fake_mmio_read(void *opaque, gpa_t a, void *buf, unsigned len)
{
	struct env *env = opaque;
	u64 v = MMIO_VALUE;

	env->mmio_reads++;
	env->mmio_read_gpa = a;
	for (unsigned i = 0; i < len; i += sizeof(v))
		memcpy((u8 *)buf + i, &v, MIN(len - i, (unsigned)sizeof(v)));
	return true;
}

static inline bool fake_write(void *opaque, const struct emu_write *w)
{
	struct env *env = opaque;

	assert_true(env->nwrites < MAX_WRITES);
	env->writes[env->nwrites++] = *w;
	emu_write_apply(w); /* MMIO pieces are only recorded */
	return true;
}

static inline enum emu_msr_result fake_msr(void *opaque, u32 index, bool write, u64 *value)
{
	struct env *env = opaque;

	if (index == EMU_MSR_TSC && !write) {
		*value = FAKE_TSC;
		return EMU_MSR_OK;
	}
	if (index != MSR_APIC_BASE)
		return EMU_MSR_GP;
	if (write)
		env->apic_base = *value;
	else
		*value = env->apic_base;
	return EMU_MSR_OK;
}

/* XCR0 only, with x87 (bit 0) set (SDM Vol. 1 §13.3). */
static inline bool fake_write_xcr(void *opaque, u32 index, u64 value)
{
	struct env *env = opaque;

	if (index != 0 || !(value & 1))
		return false;
	env->xcr_index = index;
	env->xcr_value = value;
	return true;
}

/* A port bus for ops->pio: reads give 0x5a in every byte, writes go nowhere. */
static inline bool fake_pio_pattern(void *opaque, u16 port, void *data, unsigned size, bool is_out)
{
	(void)opaque;
	(void)port;
	if (!is_out)
		memset(data, 0x5a, size);
	return true;
}

/* ---- fixture --------------------------------------------------------------- */

static inline void set_gate(struct env *env, unsigned vec, u64 handler, unsigned type, unsigned dpl,
			    unsigned ist)
{
	u64 *g = (u64 *)(env->ram + IDT_GPA) + vec * 2;

	g[0] = (handler & 0xffff) | ((u64)SEL_KCODE << 16) | ((u64)ist << 32) |
	       ((u64)(0x80 | dpl << 5 | type) << 40) | (((handler >> 16) & 0xffff) << 48);
	g[1] = handler >> 32;
}

static inline int setup(void **state)
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
				     .deliver = fake_deliver,
				     .get_xstate = fake_get_xstate,
				     .put_xstate = fake_put_xstate };
	init_xstate(env);
	*state = env;
	return 0;
}

static inline int teardown(void **state)
{
	struct env *env = *state;

	free(env->ram);
	free(env);
	return 0;
}

/* Put `code` at the current RIP and emulate it. */
static inline enum emu_result run(struct env *env, const u8 *code, size_t len,
				  struct emu_report *rep)
{
	memcpy(env->ram + CODE_GPA + (env->cpu.rip - CODE_VA), code, len);
	return emu_insn(&env->cpu, &env->ops, rep);
}

#define RUN(env, rep, ...) \
	run((env), (const u8[]){ __VA_ARGS__ }, sizeof((const u8[]){ __VA_ARGS__ }), (rep))

/* CPL3: flat 64-bit user code `cs` and data `ss`, as the CPU caches them. */
static inline void to_user_sels(struct env *env, u16 cs, u16 ss)
{
	env->cpu.cs = (struct emu_seg){ .sel = cs,
					.type = 0xb,
					.s = 1,
					.dpl = 3,
					.present = 1,
					.l = 1,
					.g = 1,
					.limit = 0xffffffff };
	env->cpu.ss = (struct emu_seg){ .sel = ss,
					.type = 0x3,
					.s = 1,
					.dpl = 3,
					.present = 1,
					.db = 1,
					.g = 1,
					.limit = 0xffffffff };
}

/* A flat 32-bit code or data segment of DPL = `sel`'s RPL, as the CPU caches it. */
static inline struct emu_seg flat32(u16 sel, bool code)
{
	return (struct emu_seg){ .sel = sel,
				 .type = code ? 0xb : 0x3,
				 .s = 1,
				 .dpl = sel & 3,
				 .present = 1,
				 .db = 1,
				 .g = 1,
				 .limit = 0xffffffff };
}

static inline void to_user(struct env *env)
{
	to_user_sels(env, SEL_UCODE, SEL_UDATA);
}

/*
 * The 64-bit frame at the new RSP: [error code,] RIP, CS, RFLAGS, RSP, SS
 * (SDM Vol. 3A Figure 6-9).
 */
static inline void assert_frame(struct env *env, bool has_err, u64 err, u64 rip, u64 cs, u64 rflags,
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
static inline void assert_fault_at_cpl0(struct env *env, const struct emu_cpu *before, u8 vector,
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

/*
 * A shadow-mode vCPU at virtual CPL0: the same state, now virtual, with the
 * shadow callbacks, the syscall MSRs and an MMIO page at MMIO_VA.
 */
static inline void to_shadow(struct env *env)
{
	env->cpu.mode = EMU_MODE_SHADOW;
	env->ops.map_phys = fake_map_phys;
	env->ops.mmio_read = fake_mmio_read;
	env->ops.write = fake_write;
	env->ops.msr = fake_msr;
	env->ops.write_xcr = fake_write_xcr;
	env->ops.load_pdptes = fake_load_pdptes;
	env->cpu.virt.maxphyaddr = TEST_MAXPHYADDR;
	env->cpu.virt.star = ((u64)(SEL_UDATA - 8 - 3) << 48) | ((u64)SEL_KCODE << 32);
	env->apic_base = APIC_BASE_VALUE;
	map_4k(env, MMIO_VA, MMIO_GPA, PTE_P | PTE_RW | PTE_NX);
}

/* A cmocka setup: the fixture, as a shadow-mode vCPU (to_shadow). */
static inline int setup_shadow_env(void **state)
{
	int r = setup(state);

	to_shadow(*state);
	return r;
}

#endif /* UMBRA_TESTS_EMU_ENV_H */
