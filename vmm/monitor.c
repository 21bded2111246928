// SPDX-License-Identifier: MIT
/*
 * The shadow-mode monitor's memory (vmm/monitor.h).
 *
 * 1. Place and map the region and the shadow pool above guest RAM.
 * 2. Build the real GDT and 64-bit TSS.
 * 3. Build the IDT and the 256 one-instruction stubs.
 * 4. Write the tail, the only monitor code that does real work at CPL0.
 * 5. Build the monitor's own page tables (PML4 slot MON_PML4_SLOT of every root).
 * 6. The command buffer: queue shadow-table stores, lay the stack out for
 *    the tail on the way back to the guest.
 * 7. The call window's code, data and PT (monitor.h).
 *
 * Invariants:
 *  - The region and the pool are never mapped by the guest's own tables:
 *    they lie above every gpa the guest has RAM at, and the shadow MMU
 *    refuses guest mappings in the reserved PML4 slot.
 *  - Every store into a pool page after the guest first ran is also queued
 *    and replayed by the vCPU (shared/HOST.md: KVM shadows the VM's tables
 *    and sees only the vCPU's writes); the hva store only keeps our copy
 *    in step for the shadow library.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shadow/x86.h"
#include "umbra/log.h"
#include "vmm/monitor.h"

/* Descriptor encodings: Intel SDM Vol. 3A §3.4.5, §7.2.3 (64-bit TSS). */
#define GDT_CODE64_DPL0 0x00af9a000000ffffull /* P, DPL0, code RX, L=1, G */
#define GDT_DATA_DPL0	0x00cf92000000ffffull /* P, DPL0, data RW, G */
#define GDT_DATA_DPL3	0x00cff2000000ffffull /* P, DPL3, data RW, G */
#define GDT_CODE64_DPL3 0x00affa000000ffffull /* P, DPL3, code RX, L=1, G */
#define GDT_CODE32_DPL3 0x00cffa000000ffffull /* P, DPL3, code RX, D=1, G */
#define TSS_TYPE_AVAIL	0x9ull		      /* 64-bit TSS, available */
#define DESC_P		(1ull << 47)
#define TSS_SIZE	104u
#define TSS_LIMIT	MON_TSS_LIMIT
#define TSS_OFF_RSP0	4u
#define TSS_OFF_IST1	36u
#define TSS_OFF_IOMAP	102u
/* IDT gate (SDM Vol. 3A §6.14.1): P, DPL0, 64-bit interrupt gate (clears IF). */
#define IDT_GATE_INTR_DPL0 0x8eu

_Static_assert(MON_OFF_TSS + TSS_LIMIT + 1 <= MON_OFF_PT, "TSS and I/O bitmap overlap");
_Static_assert(MON_OFF_SYSCALL + PAGE_SIZE <= MON_OFF_CALL_PT &&
		       MON_OFF_CALL_PD + PAGE_SIZE <= MON_OFF_STACK_BASE,
	       "syscall page, call window and stack overlap");
_Static_assert(MON_SEL_CODE >> 3 >= MON_GDT_FIRST && MON_SEL_DATA >> 3 >= MON_GDT_FIRST &&
		       MON_SEL_UCODE >> 3 >= MON_GDT_FIRST && MON_SEL_UDATA >> 3 >= MON_GDT_FIRST &&
		       MON_SEL_TSS >> 3 >= MON_GDT_FIRST &&
		       (MON_SEL_TSS >> 3) + 2 <= MON_GDT_ENTRIES &&
		       MON_SEL_UCODE32 >> 3 >= MON_GDT_FIRST &&
		       MON_SEL_UCODE32 >> 3 < MON_GDT_ENTRIES,
	       "monitor selectors below MON_GDT_FIRST");
_Static_assert(MON_OFF_IDLE >= MON_OFF_TAIL + 32, "tail and idle loop overlap");
_Static_assert(MON_OFF_TAIL >= MON_OFF_STUBS + MON_NR_VECTORS * MON_STUB_SIZE, "stubs overlap");

/* x86 encodings used by the stubs and the tail. */
#define OP_OUT_IMM8_AL 0xe6 /* out %al, $imm8 */
#define OP_JMP_REL32   0xe9
#define OP_NOP	       0x90

/* Item 1. */
static void *map_anon(u64 bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void put64(u8 *p, u64 v)
{
	memcpy(p, &v, sizeof(v));
}

static void put32(u8 *p, u32 v)
{
	memcpy(p, &v, sizeof(v));
}

static void put16(u8 *p, u16 v)
{
	memcpy(p, &v, sizeof(v));
}

/* Item 2. */
static void build_gdt_tss(struct monitor *mon)
{
	u8 *gdt = mon->region + MON_OFF_GDT;
	u8 *tss = mon->region + MON_OFF_TSS;
	u64 tss_base = monitor_gva(MON_OFF_TSS);

	put64(gdt + MON_SEL_CODE, GDT_CODE64_DPL0);
	put64(gdt + MON_SEL_DATA, GDT_DATA_DPL0);
	put64(gdt + (MON_SEL_UDATA & ~3u), GDT_DATA_DPL3);
	put64(gdt + (MON_SEL_UCODE & ~3u), GDT_CODE64_DPL3);
	put64(gdt + (MON_SEL_UCODE32 & ~3u), GDT_CODE32_DPL3);
	/* The 16-byte TSS descriptor: limit, base[23:0], type, P, base[31:24]; base[63:32]. */
	put64(gdt + MON_SEL_TSS, TSS_LIMIT | ((tss_base & 0xffffffull) << 16) |
					 (TSS_TYPE_AVAIL << 40) | DESC_P |
					 (((tss_base >> 24) & 0xffull) << 56));
	put64(gdt + MON_SEL_TSS + 8, tss_base >> 32);
	/* RSP0: where the CPU switches to on a trap from CPL3. IST1: the same
	 * stack, for #UD at CPL0 (a syscall arriving at CPL0 on VMX hosts). */
	put64(tss + TSS_OFF_RSP0, monitor_gva(MON_OFF_STACK_TOP));
	put64(tss + TSS_OFF_IST1, monitor_gva(MON_OFF_STACK_TOP));
	/*
	 * The I/O permission bitmap (SDM Vol. 1 §19.5.2): right after the TSS,
	 * all zero (every port allowed) and closed by an 0xff byte. At real CPL3
	 * with IOPL 0 the CPU consults it, so this makes every guest port access
	 * exit to the VMM as KVM_EXIT_IO instead of #GP; the VMM enforces the
	 * virtual CPL there (measured: with no bitmap, `out %dx` at CPL3 takes
	 * #GP on our PVM hosts, the CPU checking natively).
	 */
	put16(tss + TSS_OFF_IOMAP, TSS_SIZE);
	memset(tss + TSS_SIZE, 0, 8192);
	tss[TSS_SIZE + 8192] = 0xff;
}

/* Item 3. */
static void build_idt_stubs(struct monitor *mon)
{
	u64 tail = monitor_gva(MON_OFF_TAIL);

	for (unsigned v = 0; v < MON_NR_VECTORS; v++) {
		u8 *gate = mon->region + MON_OFF_IDT + 16 * v;
		u8 *stub = mon->region + MON_OFF_STUBS + MON_STUB_SIZE * v;
		u64 at = monitor_gva(MON_OFF_STUBS + MON_STUB_SIZE * v);

		put16(gate, (u16)at);
		put16(gate + 2, MON_SEL_CODE);
		gate[4] = v == X86_EXC_UD ? 1 : 0; /* IST1 for #UD: the syscall entry */
		gate[5] = IDT_GATE_INTR_DPL0;
		put16(gate + 6, (u16)(at >> 16));
		put32(gate + 8, (u32)(at >> 32));
		put32(gate + 12, 0);
		/*
		 * stub v: `out %al, $MON_TRAP_PORT` (2 bytes) exits to the VMM, which
		 * knows v from RIP; `jmp tail` (5 bytes) is where the vCPU goes if the
		 * host completes the `out` by advancing RIP past it instead of
		 * honouring the RIP the VMM set.
		 */
		stub[0] = OP_OUT_IMM8_AL;
		stub[1] = MON_TRAP_PORT;
		stub[2] = OP_JMP_REL32;
		put32(stub + 3, (u32)(tail - (at + 7)));
		stub[7] = OP_NOP;
	}
}

/*
 * Item 4: the tail. Entered at CPL0 with RSP at the stack prepared by
 * monitor_prepare_return (ascending): pairs [gva, value]..., 0, root, rbx,
 * iret frame. Clobbers only RBX, which it restores. Per store it runs four
 * instructions; with nothing queued, seven in all.
 *
 *   0:  5b          1: pop  %rbx             gva of the next store, 0 ends
 *   1:  48 85 db       test %rbx,%rbx
 *   4:  74 04          jz   2f
 *   6:  8f 03          pop  (%rbx)           the store itself, made by the vCPU
 *   8:  eb f6          jmp  1b
 *   10: 5b          2: pop  %rbx             the root to load, 0 keeps CR3
 *   11: 48 85 db       test %rbx,%rbx
 *   14: 74 03          jz   3f
 *   16: 0f 22 db       mov  %rbx,%cr3        also flushes the (non-global) TLB
 *   19: 5b          3: pop  %rbx             the guest's RBX
 *   20: 48 cf          iretq                 to the guest, real CPL3
 */
/*
 * The tail's other entry, MON_OFF_TAIL_CR8 (5 bytes before it): loads the
 * TPR first, for a return that changes it.
 *
 *   -5: 5b           pop  %rbx
 *   -4: 44 0f 22 c3  mov  %rbx,%cr8
 */
static const u8 tail_cr8_code[] = { 0x5b, 0x44, 0x0f, 0x22, 0xc3 };
_Static_assert(MON_OFF_TAIL_CR8 + sizeof(tail_cr8_code) == MON_OFF_TAIL, "tail entries");

static const u8 tail_code[] = {
	0x5b, 0x48, 0x85, 0xdb, 0x74, 0x04, 0x8f, 0x03, 0xeb, 0xf6, 0x5b,
	0x48, 0x85, 0xdb, 0x74, 0x03, 0x0f, 0x22, 0xdb, 0x5b, 0x48, 0xcf,
};

/*
 * The idle loop, entered by the tail's iretq (CPL0, IF=1, RSP = the top of
 * the monitor stack) while the guest waits in an emulated `hlt`. KVM halts
 * the vCPU in the kernel (in-kernel LAPIC/PIC): no exit and no ioctl per
 * wake-up. An interrupt pushes its frame at the top of the stack, where
 * monitor_frame() finds it, and its stub exits to the VMM.
 *
 *   0: f4       1: hlt
 *   1: eb fd       jmp 1b
 */
static const u8 idle_code[] = { 0xf4, 0xeb, 0xfd };
_Static_assert(sizeof(idle_code) == MON_IDLE_SIZE, "idle loop size");

bool monitor_is_idle_rip(u64 rip)
{
	return rip >= monitor_gva(MON_OFF_IDLE) && rip < monitor_gva(MON_OFF_IDLE + MON_IDLE_SIZE);
}

/*
 * Item 5: PML4 slot MON_PML4_SLOT -> PDPT -> PD; PD[0] -> PT maps the region in 4 KiB
 * pages, PD[1..] the pool in 2 MiB pages. The upper levels allow user
 * access so that the syscall entry page can; every other leaf is
 * supervisor-only, so guest code at real CPL3 reaches nothing else.
 */
static void build_tables(struct monitor *mon)
{
	u8 *pdpt = mon->region + MON_OFF_PDPT;
	u8 *pd = mon->region + MON_OFF_PD;
	u8 *pt = mon->region + MON_OFF_PT;
	u64 pd_mpa = mon->region_mpa.v + MON_OFF_PD;

	put64(pdpt, pd_mpa | PTE_P | PTE_RW | PTE_US);
	put64(pd, (mon->region_mpa.v + MON_OFF_PT) | PTE_P | PTE_RW | PTE_US);
	for (u64 i = 0; i < MON_REGION_SIZE / PAGE_SIZE; i++) {
		u64 off = i * PAGE_SIZE;

		put64(pt + 8 * i, (mon->region_mpa.v + off) | PTE_P |
					  (off == MON_OFF_SYSCALL ? PTE_US : PTE_RW));
	}
	for (u64 i = 0; i < mon->pool_bytes / (2 * MiB); i++)
		put64(pd + 8 * (1 + i),
		      (mon->pool_mpa.v + i * 2 * MiB) | PTE_P | PTE_RW | PTE_PS | PTE_NX);
}

/*
 * Item 7: a tiny emitter, so that no offset inside the code is counted by
 * hand. It also records the stage (monitor.h) at each instruction it starts.
 */
struct emit {
	u8 *code;  /* the code page */
	u8 *stage; /* struct monitor's call_stage */
	unsigned at;
	enum mon_call_stage cur;
};

static void emit_bytes(struct emit *e, const u8 *bytes, unsigned n)
{
	if (n)
		memcpy(e->code + e->at, bytes, n);
	e->at += n;
}

/* One instruction. */
static void emit(struct emit *e, const u8 *bytes, unsigned n)
{
	BUG_ON(e->at + n > PAGE_SIZE);
	e->stage[e->at] = (u8)e->cur;
	emit_bytes(e, bytes, n);
}

/* A stand-in starts at `fn` for `pad`. */
static void emit_start(struct emit *e, unsigned fn, unsigned pad)
{
	e->at = (unsigned)(monitor_call_entry(fn, pad) - MON_CALL_GVA);
	e->cur = MON_CALL_AT_ENTRY;
}

/* Can an instruction in the window's code page reach `gva` with a disp32 or rel32? */
static bool in_reach(u64 gva)
{
	s64 lo = (s64)(gva - (MON_CALL_GVA + PAGE_SIZE)), hi = (s64)(gva - MON_CALL_GVA);

	return lo == (s32)lo && hi == (s32)hi;
}

/*
 * `op` (its opcode and ModRM 05: [rip + disp32]), the disp32 reaching
 * `gva`, then `imm` bytes of immediate (the disp counts from the end of
 * the whole instruction).
 */
static void emit_rip_rel_to(struct emit *e, const u8 *op, unsigned n, u64 gva, const u8 *imm,
			    unsigned nimm)
{
	u64 next = MON_CALL_GVA + e->at + n + 4 + nimm;

	BUG_ON(!in_reach(gva));
	emit(e, op, n);
	put32(e->code + e->at, (u32)(gva - next));
	e->at += 4;
	emit_bytes(e, imm, nimm);
}

/* The same, reaching data field `field`. */
static void emit_rip_rel(struct emit *e, const u8 *op, unsigned n, unsigned field, const u8 *imm,
			 unsigned nimm)
{
	emit_rip_rel_to(e, op, n, MON_CALL_DATA_GVA + field, imm, nimm);
}

/* A jcc rel8 whose target comes later: its offset, for emit_fixup. */
static unsigned emit_jcc_fwd(struct emit *e, u8 opcode)
{
	unsigned at = e->at;

	emit(e, (const u8[]){ opcode, 0 }, 2);
	return at;
}

/* Point the jcc emitted at `at` here. */
static void emit_fixup(struct emit *e, unsigned at)
{
	BUG_ON(e->at - (at + 2) > 127);
	e->code[at + 1] = (u8)(e->at - (at + 2));
}

static void emit_pushfq(struct emit *e)
{
	emit(e, (const u8[]){ 0x9c }, 1); /* pushfq: the site's flags */
	e->cur = MON_CALL_FLAGS_SAVED;
}

/*
 * Move the return address past the `pad` bytes of nop after the site's
 * call, so that the stand-in returns to the end of the original site: an
 * instruction boundary whatever becomes of the patch meanwhile.
 */
static void emit_add_pad(struct emit *e, unsigned pad)
{
	emit(e, (const u8[]){ 0x48, 0x83, 0x44, 0x24, 0x08, (u8)pad }, 6); /* addq $pad,8(%rsp) */
	e->cur = MON_CALL_RETURN_SET;
}

/*
 * The start of a one-pad stand-in with stages of its own (swapgs, load_gs,
 * load_fs, wrmsr, SS load): `pushfq; addq $pad,8(%rsp)` at its stages
 * `at_entry` and the one after it; what follows is at the third, its
 * RETURN_SET (each enum keeps the three in that order).
 */
static void emit_own_start(struct emit *e, unsigned fn, unsigned pad, enum mon_call_stage at_entry)
{
	emit_start(e, fn, 0);
	e->cur = at_entry;
	emit(e, (const u8[]){ 0x9c }, 1); /* pushfq */
	e->cur = at_entry + 1;
	emit(e, (const u8[]){ 0x48, 0x83, 0x44, 0x24, 0x08, (u8)pad }, 6); /* addq $pad,8(%rsp) */
	e->cur = at_entry + 2;
}
_Static_assert(MON_CALL_SWAPGS_RETURN_SET == MON_CALL_SWAPGS_AT_ENTRY + 2 &&
		       MON_CALL_LOAD_GS_RETURN_SET == MON_CALL_LOAD_GS_AT_ENTRY + 2 &&
		       MON_CALL_LOAD_FS_RETURN_SET == MON_CALL_LOAD_FS_AT_ENTRY + 2 &&
		       MON_CALL_WRMSR_RETURN_SET == MON_CALL_WRMSR_AT_ENTRY + 2 &&
		       MON_CALL_SS_LOAD_RETURN_SET == MON_CALL_SS_LOAD_AT_ENTRY + 2,
	       "emit_own_start: AT_ENTRY, FLAGS_SAVED, RETURN_SET in a row");

static void emit_epilogue(struct emit *e)
{
	emit(e, (const u8[]){ 0x9d }, 1); /* popfq */
	e->cur = MON_CALL_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */
}

/* The sync stand-in (monitor.h, MON_CALL_SYNC). */
static void emit_sync(struct emit *e)
{
	static const u8 mov_rax[] = { 0x48, 0x8b, 0x05 }, cmp_rax[] = { 0x48, 0x3b, 0x05 };
	unsigned to_slow[3];

	emit_start(e, MON_CALL_SYNC, MON_CALL_SYNC_PAD);
	e->cur = MON_CALL_SYNC_AT_ENTRY;
	emit(e, (const u8[]){ 0x9c }, 1); /* pushfq */
	e->cur = MON_CALL_SYNC_FLAGS_SAVED;
	emit(e, (const u8[]){ 0x50 }, 1); /* push %rax */
	e->cur = MON_CALL_SYNC_RAX_SAVED;
	for (unsigned i = 0; i < 2; i++) { /* CS, then SS: the tables hold what was cached */
		unsigned gva = i ? offsetof(struct mon_call_data, ss_desc_gva)
				 : offsetof(struct mon_call_data, cs_desc_gva);

		emit_rip_rel(e, mov_rax, 3, gva, NULL, 0);
		emit(e, (const u8[]){ 0x48, 0x8b, 0x00 }, 3); /* mov (%rax),%rax */
		emit_rip_rel(e, cmp_rax, 3, gva + 8, NULL, 0);
		to_slow[i] = emit_jcc_fwd(e, 0x75); /* jne */
	}
	emit(e, (const u8[]){ 0xf6, 0x44, 0x24, 0x09, 0x40 }, 5); /* testb $NT>>8,9(%rsp) */
	to_slow[2] = emit_jcc_fwd(e, 0x75); /* jne: NT set, the iretq would #GP */
	/* addq $pad,16(%rsp): the return address past the whole site */
	emit(e, (const u8[]){ 0x48, 0x83, 0x44, 0x24, 0x10, MON_CALL_SYNC_PAD }, 6);
	e->cur = MON_CALL_SYNC_RAX_RETURN_SET;
	emit(e, (const u8[]){ 0x48, 0x8d, 0x64, 0x24, 0x10 }, 5); /* lea 16(%rsp),%rsp */
	e->cur = MON_CALL_SYNC_RETURN_SET;
	/* RSP is the site's less 8 again, as it was at the original's addq $8,(%rsp). */
	emit(e, (const u8[]){ 0x48, 0x89, 0xe0 }, 3);	    /* mov %rsp,%rax */
	emit(e, (const u8[]){ 0x48, 0x83, 0xc0, 0x08 }, 4); /* add $8,%rax: its flags */
	emit_rip_rel(e, (const u8[]){ 0x8b, 0x05 }, 2, offsetof(struct mon_call_data, kernel_cs),
		     NULL, 0); /* mov kernel_cs(%rip),%eax */
	e->cur = MON_CALL_SYNC_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */
	for (unsigned i = 0; i < 3; i++)
		emit_fixup(e, to_slow[i]);
	e->cur = MON_CALL_SYNC_RAX_SAVED;
	BUG_ON(e->at != MON_CALL_SYNC + MON_CALL_SYNC_UD2);
	emit(e, (const u8[]){ 0x0f, 0x0b }, 2); /* ud2: the VMM runs the original */
	BUG_ON(e->at > MON_CALL_CODE_END);
}

/* jne rel32 whose target comes later: its offset, for emit_fixup32. */
static unsigned emit_jcc32_fwd(struct emit *e, u8 cc)
{
	unsigned at = e->at;

	emit(e, (const u8[]){ 0x0f, cc, 0, 0, 0, 0 }, 6);
	return at;
}

static void emit_fixup32(struct emit *e, unsigned at)
{
	put32(e->code + at + 2, e->at - (at + 6));
}

/* The iret stand-in (monitor.h, MON_CALL_IRET). */
static void emit_iret(struct emit *e)
{
	static const u8 mov_rax[] = { 0x48, 0x8b, 0x05 }, cmp_rax[] = { 0x48, 0x3b, 0x05 },
			mov_to[] = { 0x48, 0x89, 0x05 };
	unsigned to_slow[9], n = 0, no_if;

	emit_start(e, MON_CALL_IRET, 0);
	e->cur = MON_CALL_IRET_AT_ENTRY;
	emit(e, (const u8[]){ 0x9c }, 1); /* pushfq */
	e->cur = MON_CALL_IRET_FLAGS_SAVED;
	emit(e, (const u8[]){ 0x50 }, 1); /* push %rax */
	e->cur = MON_CALL_IRET_RAX_SAVED;
	/* The frame from 0x18(%rsp): RIP, CS 0x20, RFLAGS 0x28, RSP 0x30, SS 0x38. */
	for (unsigned i = 0; i < 2; i++) { /* the selectors: the virtual CS and SS */
		emit_rip_rel(e, (const u8[]){ 0x8b, 0x05 }, 2,
			     i ? offsetof(struct mon_call_data, kernel_ss)
			       : offsetof(struct mon_call_data, kernel_cs),
			     NULL, 0);
		emit(e, (const u8[]){ 0x66, 0x39, 0x44, 0x24, i ? 0x38 : 0x20 }, 5); /* cmp %ax */
		to_slow[n++] = emit_jcc32_fwd(e, 0x85);
	}
	for (unsigned i = 0; i < 2; i++) { /* their descriptors, as the sync stand-in */
		unsigned gva = i ? offsetof(struct mon_call_data, ss_desc_gva)
				 : offsetof(struct mon_call_data, cs_desc_gva);

		emit_rip_rel(e, mov_rax, 3, gva, NULL, 0);
		emit(e, (const u8[]){ 0x48, 0x8b, 0x00 }, 3); /* mov (%rax),%rax */
		emit_rip_rel(e, cmp_rax, 3, gva + 8, NULL, 0);
		to_slow[n++] = emit_jcc32_fwd(e, 0x85);
	}
	emit(e, (const u8[]){ 0xf6, 0x44, 0x24, 0x09, 0x40 }, 5); /* testb $NT>>8,9(%rsp) */
	to_slow[n++] = emit_jcc32_fwd(e, 0x85);			  /* NT: the iretq would #GP */
	emit(e, (const u8[]){ 0x48, 0x8b, 0x44, 0x24, 0x28 }, 5); /* mov 0x28(%rsp),%rax */
	emit_rip_rel(e, (const u8[]){ 0x48, 0x23, 0x05 }, 3,
		     offsetof(struct mon_call_data, iret_flags_mask), NULL,
		     0); /* and iret_flags_mask(%rip),%rax */
	emit_rip_rel(e, cmp_rax, 3, offsetof(struct mon_call_data, virt_flags), NULL, 0);
	to_slow[n++] = emit_jcc32_fwd(e, 0x85);
	emit(e, (const u8[]){ 0xf6, 0x44, 0x24, 0x29, 0x02 }, 5); /* testb $IF>>8,0x29(%rsp) */
	no_if = emit_jcc_fwd(e, 0x74);				  /* je: the frame keeps IF 0 */
	emit_rip_rel(e, (const u8[]){ 0x80, 0x3d }, 2, offsetof(struct mon_call_data, pending),
		     (const u8[]){ 0 }, 1); /* cmpb $0,pending(%rip) */
	to_slow[n++] = emit_jcc32_fwd(e, 0x85);
	emit_fixup(e, no_if);
	/* RIP canonical: bits 63..47 all equal, so sar $47 leaves 0 or -1. */
	emit(e, (const u8[]){ 0x48, 0x8b, 0x44, 0x24, 0x18 }, 5); /* mov 0x18(%rsp),%rax */
	emit(e, (const u8[]){ 0x48, 0xc1, 0xf8, 0x2f }, 4);	  /* sar $47,%rax */
	emit(e, (const u8[]){ 0x48, 0x83, 0xc0, 0x01 }, 4);	  /* add $1,%rax */
	emit(e, (const u8[]){ 0x48, 0x83, 0xf8, 0x01 }, 4);	  /* cmp $1,%rax */
	to_slow[n++] = emit_jcc32_fwd(e, 0x87);			  /* ja */
	emit(e, (const u8[]){ 0x48, 0x8b, 0x44, 0x24, 0x18 }, 5); /* mov 0x18(%rsp),%rax */
	emit_rip_rel(e, mov_to, 3, offsetof(struct mon_call_data, iret_rip), NULL, 0);
	emit(e, (const u8[]){ 0x48, 0x8b, 0x44, 0x24, 0x30 }, 5); /* mov 0x30(%rsp),%rax */
	emit_rip_rel(e, mov_to, 3, offsetof(struct mon_call_data, iret_rsp), NULL, 0);
	emit(e, (const u8[]){ 0xff, 0x74, 0x24, 0x28 }, 4); /* pushq 0x28(%rsp) */
	e->cur = MON_CALL_IRET_NEW_FLAGS;
	emit(e, (const u8[]){ 0x81, 0x24, 0x24, 0xff, 0xff, 0xfb, 0xff }, 7); /* andl $~AC,(%rsp) */
	emit(e, (const u8[]){ 0xf6, 0x44, 0x24, 0x01, 0x02 }, 5); /* testb $IF>>8,1(%rsp) */
	emit_rip_rel(e, (const u8[]){ 0x0f, 0x95, 0x05 }, 3, offsetof(struct mon_call_data, vif),
		     NULL, 0); /* setne vif(%rip) */
	e->cur = MON_CALL_IRET_AT_POPFQ;
	emit(e, (const u8[]){ 0x9d }, 1); /* popfq */
	e->cur = MON_CALL_IRET_AT_POP_RAX;
	emit(e, (const u8[]){ 0x58 }, 1); /* pop %rax */
	e->cur = MON_CALL_IRET_AT_LOAD_RSP;
	emit_rip_rel(e, (const u8[]){ 0x48, 0x8b, 0x25 }, 3,
		     offsetof(struct mon_call_data, iret_rsp), NULL,
		     0); /* mov iret_rsp(%rip),%rsp */
	e->cur = MON_CALL_IRET_AT_JMP;
	emit_rip_rel(e, (const u8[]){ 0xff, 0x25 }, 2, offsetof(struct mon_call_data, iret_rip),
		     NULL, 0); /* jmp *iret_rip(%rip) */
	while (n)
		emit_fixup32(e, to_slow[--n]);
	e->cur = MON_CALL_IRET_RAX_SAVED;
	BUG_ON(e->at != MON_CALL_IRET + MON_CALL_IRET_UD2);
	emit(e, (const u8[]){ 0x0f, 0x0b }, 2); /* ud2: the VMM emulates the iretq */
	BUG_ON(e->at > MON_CALL_CODE_END);
}

/* The cmpxchg16b stand-in (monitor.h, MON_CALL_CX16), entered by the body's jmp. */
static void emit_cx16(struct emit *e)
{
	unsigned to_fail;

	emit_start(e, MON_CALL_CX16, 0);
	e->cur = MON_CALL_CX16_AT_ENTRY;
	emit(e, (const u8[]){ 0x9c }, 1); /* pushfq */
	e->cur = MON_CALL_CX16_FLAGS_SAVED;
	emit(e, (const u8[]){ 0x52 }, 1); /* push %rdx */
	e->cur = MON_CALL_CX16_RDX_SAVED;
	emit(e, (const u8[]){ 0x50 }, 1); /* push %rax */
	e->cur = MON_CALL_CX16_RAX_SAVED;
	/* lock cmpxchg16b %gs:(%rsi): REX.W 0f c7 /1, ModRM 0e */
	emit(e, (const u8[]){ 0xf0, 0x65, 0x48, 0x0f, 0xc7, 0x0e }, 6);
	e->cur = MON_CALL_CX16_DONE;
	emit(e, (const u8[]){ 0x58 }, 1); /* pop %rax */
	e->cur = MON_CALL_CX16_RAX_BACK;
	emit(e, (const u8[]){ 0x5a }, 1); /* pop %rdx */
	e->cur = MON_CALL_CX16_AT_JNE;
	to_fail = emit_jcc_fwd(e, 0x75); /* jne: not equal */
	e->cur = MON_CALL_CX16_OK_POPFQ;
	emit(e, (const u8[]){ 0x9d }, 1); /* popfq */
	e->cur = MON_CALL_CX16_OK_SET;
	emit(e, (const u8[]){ 0xb0, 0x01 }, 2); /* mov $1,%al */
	e->cur = MON_CALL_CX16_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */
	emit_fixup(e, to_fail);
	e->cur = MON_CALL_CX16_FAIL_POPFQ;
	emit(e, (const u8[]){ 0x9d }, 1); /* popfq */
	e->cur = MON_CALL_CX16_FAIL_SET;
	emit(e, (const u8[]){ 0x30, 0xc0 }, 2); /* xor %al,%al */
	e->cur = MON_CALL_CX16_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */
	BUG_ON(e->at > MON_CALL_CODE_END);
}

/* The SS stand-in (monitor.h, MON_CALL_SS_CMP). */
static void emit_ss_cmp(struct emit *e)
{
	emit_start(e, MON_CALL_SS_CMP, 0);
	e->cur = MON_CALL_SS_AT_ENTRY;
	emit(e, (const u8[]){ 0x48, 0x83, 0x04, 0x24, MON_CALL_SS_PAD }, 5); /* addq $2,(%rsp) */
	e->cur = MON_CALL_SS_RETURN_SET;
	emit_rip_rel(e, (const u8[]){ 0x66, 0x8b, 0x05 }, 3,
		     offsetof(struct mon_call_data, kernel_ss), NULL,
		     0); /* mov kernel_ss(%rip),%ax */
	e->cur = MON_CALL_SS_AX_SET;
	emit(e, (const u8[]){ 0x66, 0x83, 0xf8, 0x18 }, 4); /* cmp $0x18,%ax */
	e->cur = MON_CALL_SS_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */
	BUG_ON(e->at > MON_CALL_CODE_END);
}

/* The swapgs stand-in (monitor.h, MON_CALL_SWAPGS). */
static void emit_swapgs(struct emit *e)
{
	emit_own_start(e, MON_CALL_SWAPGS, MON_CALL_SWAPGS_PAD, MON_CALL_SWAPGS_AT_ENTRY);
	emit(e, (const u8[]){ 0x50 }, 1); /* push %rax */
	e->cur = MON_CALL_SWAPGS_RAX_SAVED;
	emit(e, (const u8[]){ 0xf3, 0x48, 0x0f, 0xae, 0xc8 }, 5); /* rdgsbase %rax */
	emit_rip_rel(e, (const u8[]){ 0x48, 0x87, 0x05 }, 3,
		     offsetof(struct mon_call_data, kernel_gs_base), NULL,
		     0); /* xchg %rax,kernel_gs_base(%rip) */
	e->cur = MON_CALL_SWAPGS_EXCHANGED;
	emit(e, (const u8[]){ 0xf3, 0x48, 0x0f, 0xae, 0xd8 }, 5); /* wrgsbase %rax */
	e->cur = MON_CALL_SWAPGS_GS_SET;
	emit(e, (const u8[]){ 0x58 }, 1); /* pop %rax */
	e->cur = MON_CALL_SWAPGS_RAX_BACK;
	emit(e, (const u8[]){ 0x0f, 0xae, 0xe8 }, 3); /* lfence */
	emit(e, (const u8[]){ 0x9d }, 1);	      /* popfq */
	e->cur = MON_CALL_SWAPGS_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */
	BUG_ON(e->at > MON_CALL_CODE_END);
}

/* The load_gs stand-in (monitor.h, MON_CALL_LOAD_GS). */
static void emit_load_gs(struct emit *e)
{
	unsigned to_other, keep, done, to_slow, to_slow2;

	emit_own_start(e, MON_CALL_LOAD_GS, MON_CALL_LOAD_GS_SITE - 5, MON_CALL_LOAD_GS_AT_ENTRY);
	emit(e, (const u8[]){ 0x66, 0xf7, 0xc7, 0xfc, 0xff }, 5); /* test $0xfffc,%di */
	to_other = emit_jcc_fwd(e, 0x75);			  /* jnz: not null */
	emit_rip_rel(e, (const u8[]){ 0x66, 0x89, 0x3d }, 3, offsetof(struct mon_call_data, gs_sel),
		     NULL, 0); /* mov %di,gs_sel(%rip) */
	e->cur = MON_CALL_LOAD_GS_SEL_SET;
	emit_rip_rel(e, (const u8[]){ 0x80, 0x3d }, 2, offsetof(struct mon_call_data, null_clears),
		     (const u8[]){ 0 }, 1); /* cmpb $0,null_clears(%rip) */
	keep = emit_jcc_fwd(e, 0x74);	    /* je: the base stays */
	emit_rip_rel(e, (const u8[]){ 0x48, 0xc7, 0x05 }, 3,
		     offsetof(struct mon_call_data, kernel_gs_base), (const u8[]){ 0, 0, 0, 0 },
		     4); /* movq $0,kernel_gs_base(%rip) */
	emit_fixup(e, keep);
	e->cur = MON_CALL_LOAD_GS_DONE;
	done = e->at;
	emit(e, (const u8[]){ 0x0f, 0xae, 0xf0 }, 3); /* mfence (the site's, if it had one) */
	emit(e, (const u8[]){ 0x9d }, 1);	      /* popfq */
	e->cur = MON_CALL_LOAD_GS_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */

	/* Not null: user_sel, if its descriptor still holds the value checked. */
	emit_fixup(e, to_other);
	e->cur = MON_CALL_LOAD_GS_RETURN_SET;
	emit_rip_rel(e, (const u8[]){ 0x66, 0x3b, 0x3d }, 3,
		     offsetof(struct mon_call_data, user_sel), NULL,
		     0);		 /* cmp user_sel(%rip),%di */
	to_slow = emit_jcc_fwd(e, 0x75); /* jne */
	emit_rip_rel(e, (const u8[]){ 0x48, 0x89, 0x3d }, 3,
		     offsetof(struct mon_call_data, load_gs_rdi), NULL,
		     0); /* mov %rdi,load_gs_rdi(%rip) */
	e->cur = MON_CALL_LOAD_GS_RDI_SAVED;
	emit_rip_rel(e, (const u8[]){ 0x48, 0x8b, 0x3d }, 3,
		     offsetof(struct mon_call_data, user_sel_desc_gva), NULL,
		     0);			      /* mov user_sel_desc_gva(%rip),%rdi */
	emit(e, (const u8[]){ 0x48, 0x8b, 0x3f }, 3); /* mov (%rdi),%rdi: the guest's table */
	emit_rip_rel(e, (const u8[]){ 0x48, 0x3b, 0x3d }, 3,
		     offsetof(struct mon_call_data, user_sel_desc), NULL,
		     0); /* cmp user_sel_desc(%rip),%rdi */
	emit_rip_rel(e, (const u8[]){ 0x48, 0x8b, 0x3d }, 3,
		     offsetof(struct mon_call_data, load_gs_rdi), NULL,
		     0); /* mov load_gs_rdi(%rip),%rdi */
	e->cur = MON_CALL_LOAD_GS_RETURN_SET;
	to_slow2 = emit_jcc_fwd(e, 0x75); /* jne: changed, or never checked */
	emit_rip_rel(e, (const u8[]){ 0x66, 0x89, 0x3d }, 3, offsetof(struct mon_call_data, gs_sel),
		     NULL, 0); /* mov %di,gs_sel(%rip) */
	e->cur = MON_CALL_LOAD_GS_SEL_SET;
	emit_rip_rel(e, (const u8[]){ 0x48, 0xc7, 0x05 }, 3,
		     offsetof(struct mon_call_data, kernel_gs_base), (const u8[]){ 0, 0, 0, 0 },
		     4); /* movq $0,kernel_gs_base(%rip): the descriptor's base */
	e->cur = MON_CALL_LOAD_GS_DONE;
	emit(e, (const u8[]){ 0xeb, (u8)(done - (e->at + 2)) }, 2); /* jmp to the mfence */
	emit_fixup(e, to_slow);
	emit_fixup(e, to_slow2);
	e->cur = MON_CALL_LOAD_GS_RETURN_SET;
	BUG_ON(e->at != MON_CALL_LOAD_GS + MON_CALL_LOAD_GS_UD2);
	emit(e, (const u8[]){ 0x0f, 0x0b }, 2); /* ud2: the VMM runs the original */
	BUG_ON(e->at > MON_CALL_CODE_END);
}

/* The load_fs stand-in (monitor.h, MON_CALL_LOAD_FS). */
static void emit_load_fs(struct emit *e)
{
	unsigned to_slow[3];

	emit_own_start(e, MON_CALL_LOAD_FS, MON_CALL_LOAD_FS_SITE - 5, MON_CALL_LOAD_FS_AT_ENTRY);
	emit_rip_rel(e, (const u8[]){ 0x66, 0x83, 0x3d }, 3,
		     offsetof(struct mon_call_data, user_sel), (const u8[]){ 0x2b },
		     1); /* cmpw $0x2b,user_sel(%rip) */
	to_slow[0] = emit_jcc_fwd(e, 0x75);
	emit(e, (const u8[]){ 0x66, 0xa9, 0xfc, 0xff }, 4); /* test $0xfffc,%ax */
	to_slow[1] = emit_jcc_fwd(e, 0x75);		    /* jnz: the second load not null */
	emit_rip_rel(e, (const u8[]){ 0x48, 0x8b, 0x15 }, 3,
		     offsetof(struct mon_call_data, user_sel_desc_gva), NULL,
		     0);			      /* mov user_sel_desc_gva(%rip),%rdx */
	emit(e, (const u8[]){ 0x48, 0x8b, 0x12 }, 3); /* mov (%rdx),%rdx: the guest's table */
	emit_rip_rel(e, (const u8[]){ 0x48, 0x3b, 0x15 }, 3,
		     offsetof(struct mon_call_data, user_sel_desc), NULL,
		     0);		    /* cmp user_sel_desc(%rip),%rdx */
	to_slow[2] = emit_jcc_fwd(e, 0x75); /* jne: changed, or never checked */
	e->cur = MON_CALL_LOAD_FS_CHECKED;
	emit(e, (const u8[]){ 0xba, MON_SEL_UDATA & 0xff, MON_SEL_UDATA >> 8, 0, 0 },
	     5);				/* mov $MON_SEL_UDATA,%edx */
	emit(e, (const u8[]){ 0x8e, 0xe2 }, 2); /* mov %edx,%fs: base 0 */
	e->cur = MON_CALL_LOAD_FS_BASE_ZERO;
	emit(e, (const u8[]){ 0x8e, 0xe0 }, 2); /* mov %eax,%fs: the guest's null selector */
	e->cur = MON_CALL_LOAD_FS_DONE;
	emit(e, (const u8[]){ 0xba, 0x2b, 0, 0, 0 }, 5); /* mov $0x2b,%edx, as the site */
	emit(e, (const u8[]){ 0x9d }, 1);		 /* popfq */
	e->cur = MON_CALL_LOAD_FS_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */
	for (unsigned i = 0; i < 3; i++)
		emit_fixup(e, to_slow[i]);
	e->cur = MON_CALL_LOAD_FS_RETURN_SET;
	BUG_ON(e->at != MON_CALL_LOAD_FS + MON_CALL_LOAD_FS_UD2);
	emit(e, (const u8[]){ 0x0f, 0x0b }, 2); /* ud2: the VMM runs the original */
	BUG_ON(e->at > MON_CALL_LOAD_FS + MON_CALL_SLOT);
}

/* The wrmsr stand-in (monitor.h, MON_CALL_WRMSR). */
static void emit_wrmsr(struct emit *e)
{
	const unsigned base_new = offsetof(struct mon_call_data, fs_base_new),
		       scratch = offsetof(struct mon_call_data, fs_scratch),
		       pending = offsetof(struct mon_call_data, fs_pending);
	unsigned to_slow[3], to_slot1, to_done;

	emit_own_start(e, MON_CALL_WRMSR, MON_CALL_WRMSR_SITE - 5, MON_CALL_WRMSR_AT_ENTRY);
	emit(e, (const u8[]){ 0x81, 0xff, 0x00, 0x01, 0x00, 0xc0 }, 6); /* cmp $MSR_FS_BASE,%edi */
	to_slow[0] = emit_jcc_fwd(e, 0x75);
	emit_rip_rel(e, (const u8[]){ 0x80, 0x3d }, 2, offsetof(struct mon_call_data, fs_defer),
		     (const u8[]){ 0 }, 1); /* cmpb $0,fs_defer(%rip) */
	to_slow[1] = emit_jcc_fwd(e, 0x74);
	/* Canonical (48 bits): bits 63:47 all equal, so %edx + 0x8000 < 0x10000. */
	emit_rip_rel(e, (const u8[]){ 0x89, 0x15 }, 2, scratch, NULL, 0); /* mov %edx,scratch */
	emit_rip_rel(e, (const u8[]){ 0x81, 0x05 }, 2, scratch, (const u8[]){ 0x00, 0x80, 0, 0 },
		     4); /* addl $0x8000,scratch */
	emit_rip_rel(e, (const u8[]){ 0xf7, 0x05 }, 2, scratch, (const u8[]){ 0, 0, 0xff, 0xff },
		     4); /* testl $0xffff0000,scratch */
	to_slow[2] = emit_jcc_fwd(e, 0x75);
	/* Fill the slot not published (fs_pending 1: slot 0 is), then publish it. */
	emit_rip_rel(e, (const u8[]){ 0x80, 0x3d }, 2, pending, (const u8[]){ 1 },
		     1); /* cmpb $1,fs_pending(%rip) */
	to_slot1 = emit_jcc_fwd(e, 0x74);
	emit_rip_rel(e, (const u8[]){ 0x89, 0x35 }, 2, base_new, NULL, 0);     /* mov %esi,[0].lo */
	emit_rip_rel(e, (const u8[]){ 0x89, 0x15 }, 2, base_new + 4, NULL, 0); /* mov %edx,[0].hi */
	emit_rip_rel(e, (const u8[]){ 0xc6, 0x05 }, 2, pending, (const u8[]){ 1 },
		     1); /* movb $1,fs_pending */
	e->cur = MON_CALL_WRMSR_PUBLISHED;
	to_done = emit_jcc_fwd(e, 0xeb); /* jmp */
	e->cur = MON_CALL_WRMSR_RETURN_SET;
	emit_fixup(e, to_slot1);
	emit_rip_rel(e, (const u8[]){ 0x89, 0x35 }, 2, base_new + 8, NULL, 0);	/* [1].lo */
	emit_rip_rel(e, (const u8[]){ 0x89, 0x15 }, 2, base_new + 12, NULL, 0); /* [1].hi */
	emit_rip_rel(e, (const u8[]){ 0xc6, 0x05 }, 2, pending, (const u8[]){ 2 },
		     1); /* movb $2,fs_pending */
	e->cur = MON_CALL_WRMSR_PUBLISHED;
	emit_fixup(e, to_done);
	emit(e, (const u8[]){ 0x89, 0xf0 }, 2); /* mov %esi,%eax, as the site */
	emit(e, (const u8[]){ 0x89, 0xf9 }, 2); /* mov %edi,%ecx */
	e->cur = MON_CALL_WRMSR_DONE;
	emit(e, (const u8[]){ 0x9d }, 1); /* popfq */
	e->cur = MON_CALL_WRMSR_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */
	e->cur = MON_CALL_WRMSR_RETURN_SET;
	for (unsigned i = 0; i < 3; i++)
		emit_fixup(e, to_slow[i]);
	BUG_ON(e->at != MON_CALL_WRMSR + MON_CALL_WRMSR_UD2);
	emit(e, (const u8[]){ 0x0f, 0x0b }, 2); /* ud2: the VMM runs the original */
	BUG_ON(e->at > MON_CALL_WRMSR + 2 * MON_CALL_SLOT);
}

/* The SS load stand-in (monitor.h, MON_CALL_SS_LOAD). */
static void emit_ss_load(struct emit *e)
{
	static const u8 mov_rax_from[] = { 0x48, 0x8b, 0x05 }, mov_rax_to[] = { 0x48, 0x89, 0x05 };
	const unsigned key_gva = offsetof(struct mon_call_data, ss_key_gva),
		       key_desc = offsetof(struct mon_call_data, ss_key_desc);
	unsigned to_slow[2];

	emit_own_start(e, MON_CALL_SS_LOAD, MON_CALL_SS_LOAD_SITE - 5, MON_CALL_SS_LOAD_AT_ENTRY);
	emit_rip_rel(e, (const u8[]){ 0x80, 0x3d }, 2, offsetof(struct mon_call_data, vif),
		     (const u8[]){ 0 }, 1); /* cmpb $0,vif(%rip) */
	to_slow[0] = emit_jcc_fwd(e, 0x75);
	/* %rax is the site's to set: scratch until then. */
	emit_rip_rel(e, mov_rax_from, 3, key_gva, NULL, 0); /* mov ss_key_gva(%rip),%rax */
	emit(e, (const u8[]){ 0x48, 0x8b, 0x00 }, 3);	    /* mov (%rax),%rax: the guest's table */
	emit_rip_rel(e, (const u8[]){ 0x48, 0x3b, 0x05 }, 3, key_desc, NULL,
		     0); /* cmp ss_key_desc(%rip),%rax */
	to_slow[1] = emit_jcc_fwd(e, 0x75);
	emit_rip_rel(e, (const u8[]){ 0xc6, 0x05 }, 2, offsetof(struct mon_call_data, ss_loaded),
		     (const u8[]){ 1 }, 1); /* movb $1,ss_loaded(%rip) */
	e->cur = MON_CALL_SS_LOAD_LOADED;
	emit_rip_rel(e, (const u8[]){ 0xc7, 0x05 }, 2, offsetof(struct mon_call_data, kernel_ss),
		     (const u8[]){ 0x18, 0, 0, 0 }, 4); /* movl $0x18,kernel_ss(%rip) */
	emit_rip_rel(e, mov_rax_from, 3, key_gva, NULL, 0);
	emit_rip_rel(e, mov_rax_to, 3, offsetof(struct mon_call_data, ss_desc_gva), NULL, 0);
	emit_rip_rel(e, mov_rax_from, 3, key_desc, NULL, 0);
	emit_rip_rel(e, mov_rax_to, 3, offsetof(struct mon_call_data, ss_desc), NULL, 0);
	e->cur = MON_CALL_SS_LOAD_DONE;
	emit(e, (const u8[]){ 0xb8, 0x18, 0, 0, 0 }, 5); /* mov $0x18,%eax, as the site */
	emit(e, (const u8[]){ 0x9d }, 1);		 /* popfq */
	e->cur = MON_CALL_SS_LOAD_AT_RET;
	emit(e, (const u8[]){ 0xc3 }, 1); /* ret */
	e->cur = MON_CALL_SS_LOAD_RETURN_SET;
	for (unsigned i = 0; i < 2; i++)
		emit_fixup(e, to_slow[i]);
	BUG_ON(e->at != MON_CALL_SS_LOAD + MON_CALL_SS_LOAD_UD2);
	emit(e, (const u8[]){ 0x0f, 0x0b }, 2); /* ud2: the VMM emulates the mov */
	BUG_ON(e->at > MON_CALL_SS_LOAD + 2 * MON_CALL_SLOT);
}

/*
 * A stand-in that moves one register to or from a data field (`op`: the
 * 3 bytes of a RIP-relative mov), with the site's flags kept and the
 * return past its `pad` (the gsbase and CR2 ones).
 */
static void emit_data_move(struct emit *e, unsigned fn, unsigned pad, const u8 *op, unsigned field)
{
	emit_start(e, fn, pad);
	emit_pushfq(e);
	emit_add_pad(e, pad);
	emit_rip_rel(e, op, 3, field, NULL, 0);
	emit_epilogue(e);
}

/* Item 7 (the encodings: SDM Vol. 2; monitor.h says what each stand-in does). */
static void build_call_window(struct monitor *mon)
{
	static const u8 movb[] = { 0xc6, 0x05 }, cmpb[] = { 0x80, 0x3d },
			or_rax[] = { 0x48, 0x0b, 0x05 };
	static const u8 mov_rax_from[] = { 0x48, 0x8b, 0x05 }; /* mov field(%rip),%rax */
	const unsigned vif = offsetof(struct mon_call_data, vif);
	u8 *pt = mon->region + MON_OFF_CALL_PT;
	struct emit e = { .code = mon->region + MON_OFF_CALL_CODE, .stage = mon->call_stage };

	memset(e.code, 0xcc, PAGE_SIZE);
	memset(mon->call_stage, 0, sizeof(mon->call_stage));
	mon->nr_thunks = 0;
	for (unsigned pad = 0; pad <= MON_CALL_MAX_PAD; pad++) {
		emit_start(&e, MON_CALL_IRQ_DISABLE, pad);
		emit_pushfq(&e);
		emit_add_pad(&e, pad);
		emit_rip_rel(&e, movb, 2, vif, (const u8[]){ 0 }, 1);
		emit_epilogue(&e);

		emit_start(&e, MON_CALL_IRQ_ENABLE, pad);
		emit_pushfq(&e);
		emit_add_pad(&e, pad);
		emit_rip_rel(&e, movb, 2, vif, (const u8[]){ 1 }, 1);
		emit_rip_rel(&e, cmpb, 2, offsetof(struct mon_call_data, pending),
			     (const u8[]){ 0 }, 1);
		emit(&e, (const u8[]){ 0x74, 0x02 }, 2); /* je: nothing held */
		BUG_ON(e.at != monitor_call_entry(MON_CALL_IRQ_ENABLE, pad) - MON_CALL_GVA +
				       MON_CALL_ENABLE_UD2);
		emit(&e, (const u8[]){ 0x0f, 0x0b }, 2); /* ud2: the VMM delivers what is held */
		emit_epilogue(&e);

		emit_start(&e, MON_CALL_SAVE_FL, pad);
		emit_pushfq(&e);
		emit(&e, (const u8[]){ 0x48, 0x8b, 0x04, 0x24 }, 4); /* mov (%rsp), %rax */
		emit_add_pad(&e, pad);
		/* and $~(IF|IOPL|AC), %rax (sign-extended imm32) */
		emit(&e, (const u8[]){ 0x48, 0x25, 0xff, 0xcd, 0xfb, 0xff }, 6);
		emit_rip_rel(&e, or_rax, 3, offsetof(struct mon_call_data, virt_flags), NULL, 0);
		emit_rip_rel(&e, cmpb, 2, vif, (const u8[]){ 0 }, 1);
		emit(&e, (const u8[]){ 0x74, 0x06 }, 2);			 /* je: IF is 0 */
		emit(&e, (const u8[]){ 0x48, 0x0d, 0x00, 0x02, 0x00, 0x00 }, 6); /* or $IF, %rax */
		emit_epilogue(&e);
		BUG_ON(e.at >
		       monitor_call_entry(MON_CALL_SAVE_FL, pad) - MON_CALL_GVA + MON_CALL_SLOT);
	}
	emit_start(&e, MON_CALL_SAVE_FL_IOPL3, 0);
	emit_pushfq(&e);
	emit(&e, (const u8[]){ 0x48, 0x8b, 0x04, 0x24 }, 4);		 /* mov (%rsp), %rax */
	emit(&e, (const u8[]){ 0x48, 0x25, 0xff, 0xcf, 0xff, 0xff }, 6); /* and $~IOPL, %rax */
	emit_epilogue(&e);
	emit_data_move(&e, MON_CALL_RD_KGS, MON_CALL_KGS_PAD, mov_rax_from,
		       offsetof(struct mon_call_data, kernel_gs_base));
	emit_data_move(&e, MON_CALL_WR_KGS, MON_CALL_KGS_PAD, (const u8[]){ 0x48, 0x89, 0x3d },
		       offsetof(struct mon_call_data, kernel_gs_base)); /* mov %rdi,field */
	emit_sync(&e);
	emit_iret(&e);
	emit_cx16(&e);
	emit_ss_cmp(&e);
	emit_data_move(&e, MON_CALL_RD_CR2, MON_CALL_CR2_PAD, mov_rax_from,
		       offsetof(struct mon_call_data, cr2));
	emit_swapgs(&e);
	emit_load_gs(&e);
	emit_load_fs(&e);
	emit_wrmsr(&e);
	emit_ss_load(&e);
	BUG_ON(e.at > MON_CALL_CODE_END);
	memset(mon->region + MON_OFF_CALL_DATA, 0, PAGE_SIZE);
	memset(pt, 0, PAGE_SIZE);
	put64(pt, (mon->region_mpa.v + MON_OFF_CALL_CODE) | PTE_P | PTE_US);
	put64(pt + 8, (mon->region_mpa.v + MON_OFF_CALL_DATA) | PTE_P | PTE_RW | PTE_US | PTE_NX);
	memset(mon->region + MON_OFF_CALL_PD, 0, PAGE_SIZE);
	put64(mon->region + MON_OFF_CALL_PD + 8 * ((MON_CALL_GVA >> 21) & 511),
	      monitor_call_pde(mon));
}

/* jmp rel32 to `gva`. */
static void emit_jmp(struct emit *e, u64 gva)
{
	u8 jmp[5] = { 0xe9 };

	BUG_ON(!in_reach(gva));
	put32(jmp + 1, (u32)(gva - (MON_CALL_GVA + e->at + 5)));
	emit(e, jmp, 5);
}

/* A thunk (monitor.h, "Indirect sites") at code offset `base`. */
static void emit_thunk(struct monitor *mon, const struct mon_call_thunk *t, unsigned base)
{
	static const u8 mov_rax[] = { 0x48, 0x8b, 0x05 }, cmp_rax[] = { 0x48, 0x3b, 0x05 },
			and_rax[] = { 0x48, 0x23, 0x05 }, cmpb[] = { 0x80, 0x3d };
	struct emit e = { .code = mon->region + MON_OFF_CALL_CODE, .stage = mon->call_stage };
	const unsigned lit = base + MON_CALL_THUNK_SIZE - 24; /* target, mask, bytes */
	const u64 lit_gva = MON_CALL_GVA + lit;
	unsigned to_pop[3], n = 0, to_slow;

	memset(e.code + base, 0xcc, MON_CALL_THUNK_SIZE);
	e.at = base;
	e.cur = MON_CALL_THUNK_AT_ENTRY;
	emit(&e, (const u8[]){ 0x9c }, 1); /* pushfq */
	e.cur = MON_CALL_THUNK_FLAGS_SAVED;
	if (t->slot) {
		emit(&e, (const u8[]){ 0x48, 0x83, 0x44, 0x24, 0x08, 0x01 },
		     6); /* addq $1,8(%rsp) */
		e.cur = MON_CALL_THUNK_RETURN_SET;
	}
	emit(&e, (const u8[]){ 0x50 }, 1); /* push %rax */
	e.cur = MON_CALL_THUNK_RAX_SAVED;
	if (t->slot) {
		emit_rip_rel_to(&e, mov_rax, 3, t->slot, NULL, 0);
		emit_rip_rel_to(&e, cmp_rax, 3, lit_gva, NULL, 0);
		to_pop[n++] = emit_jcc_fwd(&e, 0x75);	       /* jne: another pointer */
		emit(&e, (const u8[]){ 0x48, 0x8b, 0x00 }, 3); /* mov (%rax),%rax */
	} else {
		emit_rip_rel_to(&e, mov_rax, 3, t->target, NULL, 0); /* the body's bytes */
	}
	emit_rip_rel_to(&e, and_rax, 3, lit_gva + 8, NULL, 0);
	emit_rip_rel_to(&e, cmp_rax, 3, lit_gva + 16, NULL, 0);
	if (t->ret_byte) {
		to_pop[n++] = emit_jcc_fwd(&e, 0x75); /* jne: another body */
		emit_rip_rel_to(&e, cmpb, 2, t->ret_byte, (const u8[]){ 0xc3 }, 1);
	}
	while (n)
		emit_fixup(&e, to_pop[--n]);
	emit(&e, (const u8[]){ 0x58 }, 1); /* pop %rax (flags: the last cmp's) */
	e.cur = MON_CALL_THUNK_RETURN_SET;
	to_slow = emit_jcc_fwd(&e, 0x75);
	emit(&e, (const u8[]){ 0x9d }, 1); /* popfq */
	e.cur = MON_CALL_THUNK_AT_JMP;
	emit_jmp(&e, monitor_call_entry(t->fn, 0));
	emit_fixup(&e, to_slow);
	e.cur = MON_CALL_THUNK_RETURN_SET;
	emit(&e, (const u8[]){ 0x9d }, 1); /* popfq */
	e.cur = MON_CALL_THUNK_AT_JMP;
	if (t->slot)
		emit_rip_rel_to(&e, (const u8[]){ 0xff, 0x25 }, 2, t->slot, NULL,
				0); /* jmp *slot */
	else
		emit_jmp(&e, t->target);
	BUG_ON(e.at > lit);
	put64(e.code + lit, t->target);
	put64(e.code + lit + 8, t->mask);
	put64(e.code + lit + 16, t->bytes & t->mask);
}

void monitor_call_thunk_rebytes(struct monitor *mon, unsigned i, u64 bytes)
{
	struct mon_call_thunk *t = &mon->thunks[i];
	unsigned base = MON_CALL_THUNKS + i * MON_CALL_THUNK_SIZE;

	BUG_ON(i >= mon->nr_thunks);
	t->bytes = bytes & t->mask;
	put64(mon->region + MON_OFF_CALL_CODE + base + MON_CALL_THUNK_SIZE - 8, t->bytes);
}

int monitor_call_thunk(struct monitor *mon, const struct mon_call_thunk *t, u64 *entry)
{
	unsigned i;

	for (i = 0; i < mon->nr_thunks; i++) {
		const struct mon_call_thunk *o = &mon->thunks[i];

		if (o->slot == t->slot && o->target == t->target && o->mask == t->mask &&
		    ((o->orig ^ t->orig) & t->mask) == 0 && o->ret_byte == t->ret_byte &&
		    o->fn == t->fn)
			break;
	}
	if (i < mon->nr_thunks && ((mon->thunks[i].bytes ^ t->bytes) & t->mask))
		monitor_call_thunk_rebytes(mon, i, t->bytes); /* memory holds these now */
	if (i == mon->nr_thunks) {
		if ((t->slot && !in_reach(t->slot)) || !in_reach(t->target) ||
		    (t->ret_byte && !in_reach(t->ret_byte)))
			return -ERANGE;
		if (i == MON_CALL_MAX_THUNKS)
			return -ENOSPC;
		emit_thunk(mon, t, MON_CALL_THUNKS + i * MON_CALL_THUNK_SIZE);
		mon->thunks[mon->nr_thunks++] = *t;
	}
	*entry = MON_CALL_GVA + MON_CALL_THUNKS + i * MON_CALL_THUNK_SIZE;
	return 0;
}

bool monitor_call_point(const struct monitor *mon, u64 rip, struct mon_call_point *p)
{
	/* The stand-ins after the per-pad ones, last first: each has one pad. */
	static const struct {
		unsigned fn, pad;
	} one_pad[] = {
		{ MON_CALL_SS_LOAD, MON_CALL_SS_LOAD_SITE - 5 },
		{ MON_CALL_WRMSR, MON_CALL_WRMSR_SITE - 5 },
		{ MON_CALL_LOAD_FS, MON_CALL_LOAD_FS_SITE - 5 },
		{ MON_CALL_LOAD_GS, MON_CALL_LOAD_GS_SITE - 5 },
		{ MON_CALL_SWAPGS, MON_CALL_SWAPGS_PAD },
		{ MON_CALL_RD_CR2, MON_CALL_CR2_PAD },
		{ MON_CALL_SS_CMP, MON_CALL_SS_PAD },
		{ MON_CALL_CX16, 0 },
		{ MON_CALL_IRET, 0 },
		{ MON_CALL_SYNC, MON_CALL_SYNC_PAD },
	};
	u64 off = rip - MON_CALL_GVA, slot;

	if (rip < MON_CALL_GVA || off >= PAGE_SIZE || !mon->call_stage[off])
		return false;
	p->stage = (enum mon_call_stage)mon->call_stage[off];
	if (off >= MON_CALL_THUNKS) {
		p->fn = (unsigned)(off - (off - MON_CALL_THUNKS) % MON_CALL_THUNK_SIZE);
		p->pad = mon->thunks[(p->fn - MON_CALL_THUNKS) / MON_CALL_THUNK_SIZE].slot ? 1 : 0;
		return true;
	}
	for (unsigned i = 0; i < sizeof(one_pad) / sizeof(one_pad[0]); i++) {
		if (off >= one_pad[i].fn) {
			p->fn = one_pad[i].fn;
			p->pad = one_pad[i].pad;
			return true;
		}
	}
	/* Three slots per function, one per pad (monitor_call_entry), then one-slot ones. */
	slot = off / MON_CALL_SLOT;
	if (off < MON_CALL_SAVE_FL_IOPL3) {
		p->fn = (unsigned)(slot / 3 * 3 * MON_CALL_SLOT);
		p->pad = (unsigned)(slot % 3);
	} else {
		p->fn = (unsigned)(slot * MON_CALL_SLOT);
		p->pad = p->fn == MON_CALL_SAVE_FL_IOPL3 ? 0 : MON_CALL_KGS_PAD;
	}
	return true;
}

bool monitor_call_is_pending_trap(u64 rip)
{
	for (unsigned pad = 0; pad <= MON_CALL_MAX_PAD; pad++)
		if (rip == monitor_call_entry(MON_CALL_IRQ_ENABLE, pad) + MON_CALL_ENABLE_UD2)
			return true;
	return false;
}

u64 monitor_call_pde(const struct monitor *mon)
{
	return (mon->region_mpa.v + MON_OFF_CALL_PT) | PTE_P | PTE_RW | PTE_US;
}

u64 monitor_call_pdpte(const struct monitor *mon)
{
	return (mon->region_mpa.v + MON_OFF_CALL_PD) | PTE_P | PTE_RW | PTE_US;
}

struct mon_call_data *monitor_call_data(const struct monitor *mon)
{
	return (struct mon_call_data *)(mon->region + MON_OFF_CALL_DATA);
}

int monitor_create(struct monitor *mon, u64 ram_top, u64 pool_bytes)
{
	memset(mon, 0, sizeof(*mon));
	if (!pool_bytes || pool_bytes % (2 * MiB) || pool_bytes > 510 * 2 * MiB)
		return -EINVAL;
	mon->region = map_anon(MON_REGION_SIZE);
	mon->pool = map_anon(pool_bytes);
	mon->queue = calloc(MON_QUEUE_MAX, sizeof(*mon->queue));
	if (!mon->region || !mon->pool || !mon->queue) {
		monitor_destroy(mon);
		return -ENOMEM;
	}
	mon->region_mpa = mpa(ALIGN_UP(MAX(ram_top, 4 * GiB), MON_MPA_ALIGN));
	mon->pool_mpa = mpa(mon->region_mpa.v + MON_REGION_SIZE);
	mon->pool_bytes = pool_bytes;
	build_gdt_tss(mon);
	build_idt_stubs(mon);
	memcpy(mon->region + MON_OFF_TAIL_CR8, tail_cr8_code, sizeof(tail_cr8_code));
	memcpy(mon->region + MON_OFF_TAIL, tail_code, sizeof(tail_code));
	memcpy(mon->region + MON_OFF_IDLE, idle_code, sizeof(idle_code));
	/* The syscall entry page: `ud2` at the entry, int3 filling the rest. */
	memset(mon->region + MON_OFF_SYSCALL, 0xcc, PAGE_SIZE);
	memcpy(mon->region + MON_OFF_SYSCALL, (const u8[]){ 0x0f, 0x0b }, 2);
	build_tables(mon);
	build_call_window(mon);
	monitor_call_data(mon)->iret_flags_mask = MON_IRET_CHECKED_FLAGS;
	return 0;
}

void monitor_destroy(struct monitor *mon)
{
	if (mon->region)
		munmap(mon->region, MON_REGION_SIZE);
	if (mon->pool)
		munmap(mon->pool, mon->pool_bytes ? mon->pool_bytes : 0);
	free(mon->queue);
	memset(mon, 0, sizeof(*mon));
}

u64 monitor_pml4e(const struct monitor *mon)
{
	/* U/S = 1 here; the leaves decide (build_tables): only the syscall page is U. */
	return (mon->region_mpa.v + MON_OFF_PDPT) | PTE_P | PTE_RW | PTE_US;
}

/* A flat DPL3 descriptor: 64-bit or 32-bit code, or data (SDM Vol. 3A §3.4.5). */
static u64 user_desc(bool code, bool l)
{
	if (!code)
		return GDT_DATA_DPL3;
	return l ? GDT_CODE64_DPL3 : GDT_CODE32_DPL3;
}

static bool gdt_slot_ok(u16 sel)
{
	unsigned idx = sel >> 3;

	return idx != 0 && !(sel & 4) && idx < MON_GDT_FIRST;
}

void monitor_set_user_segs(struct monitor *mon, bool user, u16 cs, bool cs_l, u16 ss, u16 *real_cs,
			   u16 *real_ss)
{
	u8 *gdt = mon->region + MON_OFF_GDT;
	bool ok = user && gdt_slot_ok(cs) && gdt_slot_ok(ss) && (cs >> 3) != (ss >> 3);

	if (mon->user_cs && (!ok || mon->user_cs != cs))
		put64(gdt + (mon->user_cs & ~7u), 0);
	if (mon->user_ss && (!ok || mon->user_ss != ss))
		put64(gdt + (mon->user_ss & ~7u), 0);
	mon->user_cs = mon->user_ss = 0;
	*real_cs = cs_l ? MON_SEL_UCODE : MON_SEL_UCODE32;
	*real_ss = MON_SEL_UDATA;
	/* The I/O bitmap: all ports for the kernel, none (no bitmap) for user code. */
	put16(mon->region + MON_OFF_TSS + TSS_OFF_IOMAP, user ? 0xffff : TSS_SIZE);
	if (!ok)
		return;
	put64(gdt + (cs & ~7u), user_desc(true, cs_l));
	put64(gdt + (ss & ~7u), user_desc(false, false));
	mon->user_cs = *real_cs = (u16)(cs | 3);
	mon->user_ss = *real_ss = (u16)(ss | 3);
}

bool monitor_set_cpunode(struct monitor *mon, u64 desc)
{
	/* P = 1, DPL = 3, S = 1, a data type (bit 43 clear): SDM Vol. 3A §3.4.5. */
	const u64 mask = 1ull << 47 | 3ull << 45 | 1ull << 44 | 1ull << 43,
		  want = 1ull << 47 | 3ull << 45 | 1ull << 44;
	bool ok = (desc & mask) == want;

	put64(mon->region + MON_OFF_GDT + MON_GDT_CPUNODE * 8, ok ? desc : 0);
	return ok;
}

/* Item 6. */
void monitor_queue_store(struct monitor *mon, mpa_t spte_mpa, u64 val)
{
	if (mon->nr_queued == MON_QUEUE_MAX) {
		mon->overflow = true;
		return;
	}
	mon->queue[mon->nr_queued][0] = MON_POOL_GVA + (spte_mpa.v - mon->pool_mpa.v);
	mon->queue[mon->nr_queued][1] = val;
	mon->nr_queued++;
}

struct mon_frame *monitor_frame(const struct monitor *mon)
{
	return (struct mon_frame *)(void *)(mon->region + MON_OFF_STACK_TOP -
					    sizeof(struct mon_frame));
}

u64 monitor_error_code(const struct monitor *mon)
{
	u64 v;

	memcpy(&v, mon->region + MON_OFF_STACK_TOP - sizeof(struct mon_frame) - 8, 8);
	return v;
}

void monitor_flush(void *opaque, enum shadow_flush_kind kind, gva_t gva)
{
	struct monitor *mon = opaque;

	(void)kind;
	(void)gva;
	mon->need_flush = true;
}

bool monitor_vector_has_error_code(unsigned vector)
{
	switch (vector) {
	case X86_EXC_DF:
	case X86_EXC_TS:
	case X86_EXC_NP:
	case X86_EXC_SS:
	case X86_EXC_GP:
	case X86_EXC_PF:
	case X86_EXC_AC:
	case X86_EXC_CP:
	case 29: /* #VC */
	case 30: /* #SX */ return true;
	default: return false;
	}
}

bool monitor_stub_vector(u64 rip, unsigned *vector)
{
	u64 base = monitor_gva(MON_OFF_STUBS);

	if (rip < base || rip >= base + MON_NR_VECTORS * MON_STUB_SIZE)
		return false;
	*vector = (unsigned)((rip - base) / MON_STUB_SIZE);
	return true;
}

u64 monitor_trap_rsp(unsigned vector)
{
	return monitor_gva(MON_OFF_STACK_TOP) - sizeof(struct mon_frame) -
	       (monitor_vector_has_error_code(vector) ? 8 : 0);
}

u64 monitor_prepare_return(struct monitor *mon, mpa_t root, u64 guest_rbx)
{
	u64 off = MON_OFF_STACK_TOP - sizeof(struct mon_frame);
	bool load = root.v != mon->loaded_root.v || mon->need_flush;

	/* The frame stays where the CPU pushed it; below it, top down: */
	off -= 8;
	put64(mon->region + off, guest_rbx);
	off -= 8;
	put64(mon->region + off, load ? root.v : 0);
	off -= 8;
	put64(mon->region + off, 0); /* terminator: no spte lives at gva 0 */
	off -= 16 * (u64)mon->nr_queued;
	memcpy(mon->region + off, mon->queue, 16 * (size_t)mon->nr_queued);
	mon->nr_queued = 0;
	mon->need_flush = false;
	if (load)
		mon->loaded_root = root;
	mon->tail_entry = monitor_gva(MON_OFF_TAIL);
	if (mon->want_tpr != mon->tpr) {
		off -= 8;
		put64(mon->region + off, mon->want_tpr);
		mon->tpr = mon->want_tpr;
		mon->tail_entry = monitor_gva(MON_OFF_TAIL_CR8);
	}
	return monitor_gva(off);
}
