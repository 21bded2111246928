/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmark of the emulator's two paths (decode/, no KVM): what the
 * VMM pays per instruction it runs for the guest, against what a trap costs
 * on the host (shared/HOST.md: ~45 us on our PVM machines). Built -O2
 * without sanitizers against build/rel/libdecode.a: `make bench-emu`.
 *
 * The code: Linux 6.1's entry from user mode up to its swapgs, as the
 * Debian kernel has it (asm_exc_page_fault's three nops, `cld; call
 * error_entry`, then error_entry's fifteen pushes, two movs, thirteen xors
 * and `testb $3, CS(%rsp); je`: 37 instructions), in a guest page with the stack on another, both
 * mapped through 4-level tables in a private "guest RAM" (the walker is shadow/walk.c's, A/D bits
 * and all, as in the VMM). Each pass starts from an exception frame for user mode and runs to the
 * swapgs:
 *
 *  emu_insn      capstone's decode and the generic operand path: what the
 *                chain pays for an instruction it emulates (it knows no
 *                cld, call or jcc: those few take the fast path here)
 *  emu_fast_insn decode/emulate_fast.c: what the entry run-ahead pays
 *                (vmm/shadow_mode.c, item 7)
 *
 * Printed: nanoseconds per instruction and per run to the swapgs, medians
 * of RUNS passes of ITERS runs each, and the check that both paths left
 * the same registers and stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode/emulate.h"
#include "shadow/walk.h"
#include "shadow/x86.h"

#define RUNS  7
#define ITERS 2000

#define RAM_BYTES (64 * KiB)
#define ROOT_GPA  0x1000ull /* PML4, PDPT, PD, PT at 0x1000-0x4000 */
#define CODE_GPA  0x8000ull
#define STACK_GPA 0x9000ull
#define CODE_VA	  0xffffffff81c00000ull
#define STACK_VA  0xffffc90000010000ull
#define FRAME_AT  (STACK_VA + 0xf00) /* the exception frame: error code, RIP, CS, ... */

static u8 ram[RAM_BYTES];
static struct emu_cpu cpu0;

/* asm_exc_page_fault + error_entry (Debian's 6.1.0-57-cloud-amd64, no SMAP), to the swapgs. */
static const u8 entry_code[] = {
	0x90, 0x90, 0x90,	      /* ASM_CLAC's place, nops without SMAP */
	0xfc,			      /* cld */
	0xe8, 0x00, 0x00, 0x00, 0x00, /* call error_entry (the next byte) */
	0x56,			      /* push %rsi */
	0x48, 0x8b, 0x74, 0x24, 0x08, /* mov 0x8(%rsp),%rsi */
	0x48, 0x89, 0x7c, 0x24, 0x08, /* mov %rdi,0x8(%rsp) */
	0x52, 0x51, 0x50, 0x41, 0x50, 0x41, 0x51, 0x41, 0x52, 0x41, 0x53, 0x53,
	0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x56, /* the other 14 pushes */
	0x31, 0xf6, 0x31, 0xd2, 0x31, 0xc9, 0x45, 0x31, 0xc0, 0x45, 0x31, 0xc9,
	0x45, 0x31, 0xd2, 0x45, 0x31, 0xdb, 0x31, 0xdb, 0x31, 0xed, 0x45, 0x31,
	0xe4, 0x45, 0x31, 0xed, 0x45, 0x31, 0xf6, 0x45, 0x31, 0xff, /* the 12 xors */
	0xf6, 0x84, 0x24, 0x90, 0x00, 0x00, 0x00, 0x03,		    /* testb $0x3,0x90(%rsp) */
	0x74, 0x4b,	  /* je (not taken from user mode) */
	0x0f, 0x01, 0xf8, /* swapgs: where both stop */
};
#define ENTRY_INSNS 37u
#define SWAPGS_AT   (CODE_VA + sizeof(entry_code) - 3)

static void *gpa_to_hva(void *opaque, gpa_t a, size_t len)
{
	(void)opaque;
	return a.v + len <= RAM_BYTES ? ram + a.v : NULL;
}

static const struct walk_mem mem = { .gpa_to_hva = gpa_to_hva };

static enum emu_map_result map_phys(void *opaque, u64 la, unsigned len, u32 access, gpa_t *g,
				    void **hva, struct emu_event *fault)
{
	struct emu_cpu *c = opaque;
	struct walk_ctl ctl = {
		.cr0 = c->cr0, .cr3 = c->cr3, .cr4 = c->cr4, .efer = c->efer, .maxphyaddr = 46
	};
	u32 acc = ((access & EMU_ACC_WRITE) ? ACC_WRITE : 0) |
		  ((access & EMU_ACC_FETCH) ? ACC_FETCH : 0);
	struct guest_walk w;

	if (walk_guest(paging_mode_select(&ctl), &mem, &ctl, gva(la), acc, WALK_SET_AD, &w) !=
	    WALK_OK) {
		*fault = (struct emu_event){ .kind = EMU_EV_EXCEPTION, .vector = X86_EXC_PF };
		return EMU_MAP_FAULT;
	}
	*g = w.gpa;
	*hva = gpa_to_hva(NULL, w.gpa, len);
	return EMU_MAP_OK;
}

static bool mmio_read(void *opaque, gpa_t a, void *buf, unsigned len)
{
	(void)opaque, (void)a, (void)buf, (void)len;
	return false;
}

static bool write_ram(void *opaque, const struct emu_write *w)
{
	(void)opaque;
	return emu_write_apply(w);
}

/* One 4-level path from va to gpa (one table per level: the two share the top ones). */
static void map_page(u64 va, u64 gpa)
{
	u64 *t = (u64 *)(ram + ROOT_GPA);

	for (unsigned level = 4, next = 2; level > 1; level--, next++) {
		unsigned i = (unsigned)(va >> (12 + 9 * (level - 1))) & 511;

		if (!(t[i] & PTE_P))
			t[i] = (ROOT_GPA * next) | PTE_P | PTE_RW;
		t = (u64 *)(ram + (t[i] & ~0xfffull));
	}
	t[(va >> 12) & 511] = gpa | PTE_P | PTE_RW;
}

static void setup(void)
{
	memset(ram, 0, sizeof(ram));
	map_page(CODE_VA, CODE_GPA);
	map_page(STACK_VA, STACK_GPA);
	memcpy(ram + CODE_GPA, entry_code, sizeof(entry_code));
	cpu0 = (struct emu_cpu){
		.rip = CODE_VA,
		.rflags = RFLAGS_FIXED,
		.mode = EMU_MODE_SHADOW,
		.cr0 = CR0_PE | CR0_PG | CR0_WP | CR0_ET | CR0_NE,
		.cr3 = ROOT_GPA,
		.cr4 = CR4_PAE,
		.efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE,
		.cs = { .sel = 0x10, .type = 0xb, .s = 1, .present = 1, .l = 1, .g = 1 },
		.ss = { .type = 0x3, .s = 1, .present = 1, .db = 1, .g = 1 },
	};
	cpu0.virt.maxphyaddr = 46;
	for (unsigned i = 0; i < 16; i++)
		cpu0.gpr[i] = 0x1111111111111111ull * (i + 1);
	cpu0.gpr[EMU_RSP] = FRAME_AT;
}

/* A fresh frame for an exception taken in user mode (CS 0x33 at FRAME_AT + 16). */
static void reset(struct emu_cpu *c)
{
	u64 frame[6] = { 4, 0x401000, 0x33, 0x246, 0x7ffe0000, 0x2b };

	memcpy(ram + STACK_GPA + (FRAME_AT - STACK_VA), frame, sizeof(frame));
	*c = cpu0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static unsigned slow_fallbacks; /* per run: instructions emu_insn does not know */

/*
 * One run to the swapgs, by either path; the instructions it ran, 0 if it
 * did not get there. The shadow emulator knows no cld, call or jcc (they
 * never trap): the emu_insn path runs those few on the fast path.
 */
static unsigned run(struct emu_cpu *c, const struct emu_ops *ops, bool fast)
{
	unsigned n = 0;

	slow_fallbacks = 0;
	while (c->rip != SWAPGS_AT && n < 2 * ENTRY_INSNS) {
		struct emu_report rep;
		enum emu_result r = fast ? EMU_UNKNOWN : emu_insn(c, ops, &rep);

		if (r == EMU_UNKNOWN) {
			if (emu_fast_insn(c, ops) != EMU_FAST_DONE) {
				fprintf(stderr, "emu_bench: the fast path refused 0x%llx\n",
					(unsigned long long)c->rip);
				return 0;
			}
			slow_fallbacks += !fast;
		} else if (r != EMU_DONE || rep.faulted) {
			fprintf(stderr, "emu_bench: %s at 0x%llx: result %d, fault %u\n",
				rep.mnemonic, (unsigned long long)c->rip, r,
				rep.faulted ? rep.fault_vector : 0);
			return 0;
		}
		n++;
	}
	return c->rip == SWAPGS_AT ? n : 0;
}

/* The median ns per run to the swapgs. */
static double measure(const struct emu_ops *ops, struct emu_cpu *c, bool fast)
{
	double t[RUNS];

	for (unsigned r = 0; r < RUNS; r++) {
		double t0 = now();

		for (unsigned i = 0; i < ITERS; i++) {
			reset(c);
			if (run(c, ops, fast) != ENTRY_INSNS) {
				fprintf(stderr, "emu_bench: the %s path did not reach the swapgs\n",
					fast ? "fast" : "emu_insn");
				exit(1);
			}
		}
		t[r] = (now() - t0) / ITERS * 1e9;
	}
	qsort(t, RUNS, sizeof(t[0]), cmp_double);
	return t[RUNS / 2];
}

int main(void)
{
	struct emu_cpu slow, fast;
	struct emu_ops ops = { .map_phys = map_phys, .mmio_read = mmio_read, .write = write_ram };
	u8 stack_slow[PAGE_SIZE];
	double t_slow, t_fast;
	unsigned fallbacks;

	setup();
	ops.opaque = &slow;
	t_slow = measure(&ops, &slow, false);
	fallbacks = slow_fallbacks;
	memcpy(stack_slow, ram + STACK_GPA, PAGE_SIZE);
	ops.opaque = &fast;
	t_fast = measure(&ops, &fast, true);
	if (memcmp(slow.gpr, fast.gpr, sizeof(slow.gpr)) || slow.rflags != fast.rflags ||
	    memcmp(stack_slow, ram + STACK_GPA, PAGE_SIZE)) {
		fprintf(stderr, "emu_bench: the two paths disagree on the state at the swapgs\n");
		return 1;
	}
	printf("Linux's entry from user mode to error_entry's swapgs: %u instructions "
	       "(medians of %u passes of %u runs)\n",
	       ENTRY_INSNS, RUNS, ITERS);
	printf("  emu_insn       %8.0f ns per run  %6.0f ns per instruction  (%u of them, nop, "
	       "cld, call and je, on the fast path)\n",
	       t_slow, t_slow / ENTRY_INSNS, fallbacks);
	printf("  emu_fast_insn  %8.0f ns per run  %6.0f ns per instruction  (%.1fx faster)\n",
	       t_fast, t_fast / ENTRY_INSNS, t_slow / t_fast);
	printf("  both paths left the same registers, flags and stack\n");
	return 0;
}
