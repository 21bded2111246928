// SPDX-License-Identifier: MIT
/*
 * Unit tests for the single-step trap of shadow mode's emulator
 * (decode/emulate.c, item 6; SDM Vol. 3A §17.3.1.4): an emulated
 * instruction that starts with RFLAGS.TF set is followed by a #DB at the
 * next instruction, with DR6.BS set; a rep string runs one iteration
 * first; popf that sets TF, mov to SS and a syscall whose SFMASK clears TF
 * take none; a fault replaces it. Also syscall from compatibility mode
 * (AMD's, through CSTAR) and as a trapped instruction. Fixture: emu_env.h
 * with to_shadow().
 */
#include "emu_env.h"

#define HANDLER_DB 0x401a00ull
#define DR6_BS_BIT (1ull << 14)
#define CSTAR_VA   0xffffffff81e00100ull
#define LSTAR_VA   0xffffffff81e00000ull

static int setup_step(void **state)
{
	int r = setup(state);
	struct env *env = *state;

	to_shadow(env);
	env->ops.pio = fake_pio_pattern;
	set_gate(env, X86_EXC_DB, HANDLER_DB, 0xe, 0, 0);
	return r;
}

/*
 * A #DB was delivered with the frame's RIP `rip` and the RFLAGS after the
 * instruction (TF as `frame_tf`); the handler runs without TF; DR6.BS is set.
 */
static void assert_step_trap_tf(struct env *env, const struct emu_report *rep, u64 rip,
				bool frame_tf)
{
	assert_false(rep->faulted);
	assert_true(
		rep->trapped); /* callers emulating a sequence stop: the guest is in its handler */
	assert_true(emu_in_handler(rep));
	assert_int_equal(env->last_event.vector, X86_EXC_DB);
	assert_int_equal(env->cpu.rip, HANDLER_DB);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]), rip); /* trap: no error code */
	assert_int_equal(!!(peek64(env, env->cpu.gpr[EMU_RSP] + 16) & RFLAGS_TF), frame_tf);
	assert_false(env->cpu.rflags & RFLAGS_TF);
	assert_true(env->cpu.virt.dr6 & DR6_BS_BIT);
}

static void assert_step_trap(struct env *env, const struct emu_report *rep, u64 rip)
{
	assert_step_trap_tf(env, rep, rip, true);
}

static void test_step_after_emulated(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags |= RFLAGS_TF;
	env->cpu.gpr[EMU_RAX] = 7;
	assert_int_equal(RUN(env, &rep, 0xe6, 0x80), EMU_DONE); /* out %al,$0x80 */
	assert_step_trap(env, &rep, CODE_VA + 2);
	assert_int_equal(env->delivered, 1);
}

/* Without TF nothing is delivered, and DR6 stays as it was. */
static void test_no_step_without_tf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_int_equal(RUN(env, &rep, 0xe6, 0x80), EMU_DONE);
	assert_int_equal(env->cpu.rip, CODE_VA + 2);
	assert_int_equal(env->delivered, 0);
	assert_false(emu_in_handler(&rep));
	assert_int_equal(env->cpu.virt.dr6, 0);
}

/* rep stosb: one iteration, then the trap with RIP still on the instruction. */
static void test_step_rep_one_iteration(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags |= RFLAGS_TF;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RCX] = 3;
	env->cpu.gpr[EMU_RAX] = 0x11;
	assert_int_equal(RUN(env, &rep, 0xf3, 0xaa), EMU_DONE);
	assert_step_trap(env, &rep, CODE_VA);
	/* A trap after an iteration but the last pushes RF set (SDM Vol. 3A §17.3.1.1). */
	assert_true(peek64(env, env->cpu.gpr[EMU_RSP] + 16) & RFLAGS_RF);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 2);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 1);
	assert_int_equal(env->nwrites, 2); /* the byte, then the #DB frame */
	/* The last iteration: the trap's RIP is past the instruction. */
	env->cpu.rip = CODE_VA;
	env->cpu.rflags |= RFLAGS_TF;
	env->cpu.gpr[EMU_RCX] = 1;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	assert_int_equal(RUN(env, &rep, 0xf3, 0xaa), EMU_DONE);
	assert_step_trap(env, &rep, CODE_VA + 2);
	assert_false(peek64(env, env->cpu.gpr[EMU_RSP] + 16) & RFLAGS_RF);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
}

/* popf that sets TF takes no trap; one that clears it (TF at its start) does. */
static void test_step_popf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	u64 rsp = STACK_VA + 0x800;

	env->cpu.gpr[EMU_RSP] = rsp;
	poke64(env, rsp, RFLAGS_FIXED | RFLAGS_TF);
	assert_int_equal(RUN(env, &rep, 0x9d), EMU_DONE);
	assert_int_equal(env->delivered, 0);
	assert_int_equal(env->cpu.rip, CODE_VA + 1);
	assert_true(env->cpu.rflags & RFLAGS_TF);
	poke64(env, env->cpu.gpr[EMU_RSP], RFLAGS_FIXED);
	assert_int_equal(RUN(env, &rep, 0x9d), EMU_DONE);
	assert_step_trap_tf(env, &rep, CODE_VA + 2, false);
}

/* mov to SS holds the trap back for one instruction (the guest runs that natively). */
static void test_no_step_after_mov_ss(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags |= RFLAGS_TF;
	env->cpu.gpr[EMU_RAX] = SEL_KDATA;
	assert_int_equal(RUN(env, &rep, 0x8e, 0xd0), EMU_DONE); /* mov %eax,%ss */
	assert_int_equal(env->delivered, 0);
	assert_int_equal(env->cpu.rip, CODE_VA + 2);
}

/* A faulting instruction delivers its fault, not the trap. */
static void test_fault_not_step(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.rflags |= RFLAGS_TF;
	env->cpu.gpr[EMU_RDI] = UNMAPPED_VA;
	assert_int_equal(RUN(env, &rep, 0xaa), EMU_DONE); /* stosb */
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_PF);
	assert_int_equal(env->delivered, 1);
	assert_false(env->cpu.virt.dr6 & DR6_BS_BIT);
}

/* A 32-bit user code segment (compatibility mode), at CODE_VA where RUN puts the code. */
static void to_compat_user(struct env *env)
{
	to_user(env);
	env->cpu.cs.sel = 0x23;
	env->cpu.cs.l = 0;
	env->cpu.cs.db = 1;
	env->cpu.rip = CODE_VA;
	env->cpu.virt.lstar = LSTAR_VA;
	env->cpu.virt.cstar = CSTAR_VA;
	env->cpu.virt.sfmask = RFLAGS_IF | RFLAGS_TF | RFLAGS_DF;
}

/* syscall from compatibility mode: CSTAR, RCX the 32-bit next EIP (AMD's CPUs). */
static void test_syscall_compat(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_compat_user(env);
	env->cpu.virt.syscall_compat = true;
	env->cpu.gpr[EMU_RCX] = 0xdead00000000ull;
	assert_int_equal(emu_syscall_entry(&env->cpu, &env->ops, 2, &rep), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, CSTAR_VA);
	assert_int_equal(env->cpu.gpr[EMU_RCX], CODE_VA + 2);
	assert_true(env->cpu.cs.l);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_int_equal(emu_cpl(&env->cpu), 0);
	assert_int_equal(rep.notes, EMU_NOTE_CPL);
}

/* Intel's CPUs: #UD there, by the entry page and as an instruction. */
static void test_syscall_compat_ud(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_compat_user(env);
	assert_int_equal(emu_syscall_entry(&env->cpu, &env->ops, 2, &rep), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	to_compat_user(env);
	assert_int_equal(RUN(env, &rep, 0x0f, 0x05), EMU_DONE);
	assert_true(rep.faulted);
	assert_int_equal(rep.fault_vector, X86_EXC_UD);
	assert_int_equal(env->cpu.rip, HANDLER_UD);
}

/* wrmsr of `v` to MSR `index` at the current RIP, which it must complete. */
static void emulated_wrmsr(struct env *env, u32 index, u64 v)
{
	struct emu_report rep;

	env->cpu.gpr[EMU_RCX] = index;
	env->cpu.gpr[EMU_RAX] = (u32)v;
	env->cpu.gpr[EMU_RDX] = v >> 32;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x30), EMU_DONE);
	assert_false(rep.faulted);
}

/* sysenter in 32-bit user code that must fault, on an AMD CPU or not: its vector. */
static unsigned sysenter_fault(struct env *env, bool amd)
{
	struct emu_report rep;

	to_compat_user(env);
	env->cpu.virt.syscall_compat = amd;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x34), EMU_DONE);
	assert_true(rep.faulted);
	return rep.fault_vector;
}

/*
 * sysenter from compatibility mode: #UD on AMD's CPUs; on Intel's #GP(0)
 * until SYSENTER_CS is set (wrmsr), then the kernel's entry at CPL0.
 */
static void test_sysenter(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	assert_int_equal(sysenter_fault(env, true), X86_EXC_UD);
	assert_int_equal(sysenter_fault(env, false), X86_EXC_GP);
	assert_int_equal(env->last_event.error_code, 0);

	/* The MSRs, as Linux's syscall_init writes them (at CPL0). */
	env->cpu.cs =
		(struct emu_seg){ .sel = SEL_KCODE, .type = 0xb, .s = 1, .present = 1, .l = 1 };
	env->cpu.rip = CODE_VA;
	emulated_wrmsr(env, 0x174, SEL_KCODE);
	emulated_wrmsr(env, 0x176, LSTAR_VA);
	emulated_wrmsr(env, 0x175, KSTACK_VA + PAGE_SIZE);
	assert_int_equal(env->cpu.virt.sysenter_cs, SEL_KCODE);
	assert_int_equal(env->cpu.virt.sysenter_eip, LSTAR_VA);

	to_compat_user(env);
	env->cpu.virt.syscall_compat = false;
	env->cpu.gpr[EMU_RCX] = 0x1234;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x34), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, LSTAR_VA);
	assert_int_equal(env->cpu.gpr[EMU_RSP], KSTACK_VA + PAGE_SIZE);
	assert_int_equal(env->cpu.cs.sel, SEL_KCODE);
	assert_true(env->cpu.cs.l);
	assert_int_equal(env->cpu.ss.sel, SEL_KCODE + 8);
	assert_int_equal(emu_cpl(&env->cpu), 0);
	assert_false(env->cpu.rflags & RFLAGS_IF);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0x1234);
	assert_int_equal(rep.notes & EMU_NOTE_CPL, EMU_NOTE_CPL);
}

/*
 * syscall as a trapped instruction (64-bit): LSTAR; SFMASK clears TF, so no
 * trap (the resulting TF decides, Xen's XSA-204); without TF in SFMASK the
 * trap comes at LSTAR.
 */
static void test_syscall_insn_step(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_user(env);
	env->cpu.rip = CODE_VA;
	env->cpu.virt.lstar = LSTAR_VA;
	env->cpu.virt.sfmask = RFLAGS_IF | RFLAGS_TF;
	env->cpu.rflags |= RFLAGS_TF;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x05), EMU_DONE);
	assert_int_equal(env->cpu.rip, LSTAR_VA);
	assert_int_equal(env->cpu.gpr[EMU_RCX], CODE_VA + 2);
	assert_int_equal(env->delivered, 0);
	assert_int_equal(rep.notes & EMU_NOTE_CPL, EMU_NOTE_CPL);

	to_user(env);
	env->cpu.rip = CODE_VA;
	env->cpu.virt.sfmask = RFLAGS_IF;
	env->cpu.rflags |= RFLAGS_TF;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x05), EMU_DONE);
	assert_step_trap(env, &rep, LSTAR_VA);
}

/*
 * into (32-bit code): with OF set a software interrupt, vector 4, through
 * the gate's DPL check (a DPL0 gate: #GP(4 * 8 + 2)); with OF clear, nothing.
 * Shadow mode traps it as #GP (the real IDT's gates are DPL0).
 */
static void test_into(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	to_compat_user(env);
	env->cpu.rflags &= ~RFLAGS_TF;
	env->cpu.rflags |= RFLAGS_OF;
	set_gate(env, X86_EXC_OF, HANDLER_81, 0xf, 3, 0);
	assert_int_equal(RUN(env, &rep, 0xce), EMU_DONE);
	assert_string_equal(rep.mnemonic, "into");
	assert_false(rep.faulted);
	assert_int_equal(env->last_event.kind, EMU_EV_SOFT_INT);
	assert_int_equal(env->last_event.vector, X86_EXC_OF);
	assert_int_equal(env->cpu.rip, HANDLER_81);
	assert_true(env->cpu.cs.l);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]), CODE_VA + 1); /* the next EIP */
	/* A DPL0 gate: #GP with the vector's IDT error code. */
	to_compat_user(env);
	env->cpu.rflags |= RFLAGS_OF;
	set_gate(env, X86_EXC_OF, HANDLER_81, 0xf, 0, 0);
	assert_int_equal(RUN(env, &rep, 0xce), EMU_DONE);
	assert_int_equal(env->cpu.rip, HANDLER_GP);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]), X86_EXC_OF * 8 + 2); /* error code */
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP] + 8), CODE_VA); /* the into's RIP */
	/* OF clear: on to the next instruction. */
	to_compat_user(env);
	env->cpu.rflags &= ~RFLAGS_OF;
	assert_int_equal(RUN(env, &rep, 0xce), EMU_DONE);
	assert_false(rep.faulted);
	assert_int_equal(env->cpu.rip, CODE_VA + 1);
}

/* ---- breakpoints (decode/emulate.c, items 7 and 8) ----------------------- */

#define DR7_L0	      (1ull << 0)
#define DR7_L1	      (1ull << 2)
#define DR7_RW0(rw)   ((u64)(rw) << 16)
#define DR7_LEN0(len) ((u64)(len) << 18) /* 0: 1 byte, 1: 2, 3: 4, 2: 8 */
#define DR6_B0	      (1ull << 0)
#define DR6_B1	      (1ull << 1)

/* A write that touches a write breakpoint's 4 aligned bytes: #DB after it, B0. */
static void test_data_breakpoint_write(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.virt.dr[0] = DATA_VA + 5; /* LEN 4 covers DATA_VA+4..+7 */
	env->cpu.virt.dr7 = DR7_L0 | DR7_RW0(1) | DR7_LEN0(3);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 7; /* bytes +7..+10: one of them is watched */
	env->cpu.gpr[EMU_RAX] = 0x11223344;
	assert_int_equal(RUN(env, &rep, 0x89, 0x07), EMU_DONE); /* mov %eax,(%rdi) */
	assert_int_equal(env->delivered, 1);
	assert_true(rep.trapped && !rep.faulted);
	assert_int_equal(rep.db_hits, DR6_B0); /* for --stats: dr_hits_emulated */
	assert_int_equal(env->last_event.vector, X86_EXC_DB);
	assert_int_equal(env->cpu.rip, HANDLER_DB);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]), CODE_VA + 2); /* a trap: after it */
	assert_int_equal(env->cpu.virt.dr6, DR6_B0);
	assert_int_equal((u32)peek64(env, DATA_VA + 7), 0x11223344); /* the store was made */
}

/* Not a byte of it, or a read of a write-only one: nothing. A read-or-write one: a read. */
static void test_data_breakpoint_misses(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.virt.dr[0] = DATA_VA + 4;
	env->cpu.virt.dr7 = DR7_L0 | DR7_RW0(1) | DR7_LEN0(3);
	env->cpu.gpr[EMU_RDI] = DATA_VA + 8;
	assert_int_equal(RUN(env, &rep, 0x89, 0x07), EMU_DONE);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RDI] = DATA_VA; /* +0..+3: just below */
	assert_int_equal(RUN(env, &rep, 0x89, 0x07), EMU_DONE);
	env->cpu.rip = CODE_VA;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 4;
	assert_int_equal(RUN(env, &rep, 0x8b, 0x07), EMU_DONE); /* mov (%rdi),%eax */
	assert_int_equal(env->delivered, 0);
	/* Disabled (no L0/G0): nothing either. */
	env->cpu.rip = CODE_VA;
	env->cpu.virt.dr7 = DR7_RW0(3) | DR7_LEN0(3);
	assert_int_equal(RUN(env, &rep, 0x8b, 0x07), EMU_DONE);
	assert_int_equal(env->delivered, 0);
	env->cpu.rip = CODE_VA;
	env->cpu.virt.dr7 = DR7_L0 | DR7_RW0(3) | DR7_LEN0(3);
	assert_int_equal(RUN(env, &rep, 0x8b, 0x07), EMU_DONE);
	assert_int_equal(env->delivered, 1);
	assert_int_equal(env->cpu.virt.dr6, DR6_B0);
}

/* A data breakpoint and TF on one instruction: one #DB reporting both. */
static void test_data_breakpoint_and_step(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.virt.dr[0] = DATA_VA;
	env->cpu.virt.dr7 = DR7_L0 | DR7_RW0(1);
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.rflags |= RFLAGS_TF;
	assert_int_equal(RUN(env, &rep, 0x89, 0x07), EMU_DONE);
	assert_int_equal(env->delivered, 1);
	assert_int_equal(env->cpu.virt.dr6, DR6_B0 | DR6_BS_BIT);
}

/*
 * An instruction breakpoint: a #DB before the instruction (the frame's RIP
 * is its own, RF clear in the frame), which does not run. With RF set it
 * runs, and RF is clear after it.
 */
static void test_exec_breakpoint(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu start = env->cpu;

	env->cpu.virt.dr[1] = CODE_VA;
	env->cpu.virt.dr7 = DR7_L1; /* R/W1 00, LEN1 00: instruction */
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RAX] = 0x55;
	assert_int_equal(RUN(env, &rep, 0x89, 0x07), EMU_DONE);
	assert_int_equal(env->delivered, 1);
	assert_int_equal(env->last_event.vector, X86_EXC_DB);
	assert_true(rep.faulted); /* callers stop there: the guest is in its handler */
	assert_int_equal(rep.fault_vector, X86_EXC_DB);
	assert_int_equal(rep.db_hits, DR6_B1);
	assert_int_equal(env->cpu.rip, HANDLER_DB);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]), CODE_VA); /* a fault: before it */
	assert_false(peek64(env, env->cpu.gpr[EMU_RSP] + 16) & RFLAGS_RF);
	assert_int_equal(env->cpu.virt.dr6, DR6_B1);
	assert_int_equal((u32)peek64(env, DATA_VA), 0); /* it did not run */
	/* The handler's iretq sets RF: now it runs. */
	env->cpu = start;
	env->cpu.virt.dr[1] = CODE_VA;
	env->cpu.virt.dr7 = DR7_L1;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RAX] = 0x55;
	env->cpu.rflags |= RFLAGS_RF;
	assert_int_equal(RUN(env, &rep, 0x89, 0x07), EMU_DONE);
	assert_int_equal(env->delivered, 1); /* none more */
	assert_int_equal(env->cpu.rip, CODE_VA + 2);
	assert_false(env->cpu.rflags & RFLAGS_RF);
	assert_int_equal((u32)peek64(env, DATA_VA), 0x55);
	/* A data breakpoint at the same address does not fire on the fetch. */
	env->cpu.rip = CODE_VA;
	env->cpu.virt.dr7 = DR7_L1 | (3ull << 20) | (3ull << 22); /* R/W1 11, LEN1 4 */
	assert_int_equal(RUN(env, &rep, 0x89, 0x07), EMU_DONE);
	assert_int_equal(env->delivered, 1);
}

/* The #DB after a data breakpoint's hit: DR6 `hits`, the frame's RIP and RF. */
static void assert_data_trap(struct env *env, u64 hits, u64 rip, bool frame_rf)
{
	assert_int_equal(env->delivered, 1);
	assert_int_equal(env->last_event.vector, X86_EXC_DB);
	assert_int_equal(env->cpu.rip, HANDLER_DB);
	assert_int_equal(env->cpu.virt.dr6, hits);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]), rip);
	assert_int_equal(!!(peek64(env, env->cpu.gpr[EMU_RSP] + 16) & RFLAGS_RF), frame_rf);
}

/*
 * Read-modify-write forms map and store by themselves (emulate_mem.c items
 * 3 and 4, cmpxchg16b): their accesses count too. Linux clears a PTE with
 * xchg and ages one with lock btr; both land on write-protected tables.
 */
static void test_data_breakpoint_rmw(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu start = env->cpu;
	static const struct {
		u8 code[6];
		unsigned len;
		u64 dr7;
		bool hit;
	} cases[] = {
		/* xchg %rax,(%rdi) */
		{ { 0x48, 0x87, 0x07 }, 3, DR7_L0 | DR7_RW0(1) | DR7_LEN0(2), true },
		/* lock btr $5,(%rdi) */
		{ { 0xf0, 0x48, 0x0f, 0xba, 0x37, 0x05 },
		  6,
		  DR7_L0 | DR7_RW0(1) | DR7_LEN0(2),
		  true },
		/* lock cmpxchg %rcx,(%rdi), failing: the CPU writes the old value back */
		{ { 0xf0, 0x48, 0x0f, 0xb1, 0x0f }, 5, DR7_L0 | DR7_RW0(1) | DR7_LEN0(2), true },
		/* lock cmpxchg16b (%rdi) */
		{ { 0xf0, 0x48, 0x0f, 0xc7, 0x0f }, 5, DR7_L0 | DR7_RW0(1) | DR7_LEN0(2), true },
		/* cmp %rax,(%rdi): a read, which a write breakpoint ignores ... */
		{ { 0x48, 0x39, 0x07 }, 3, DR7_L0 | DR7_RW0(1) | DR7_LEN0(2), false },
		/* ... and a read-or-write one takes */
		{ { 0x48, 0x39, 0x07 }, 3, DR7_L0 | DR7_RW0(3) | DR7_LEN0(2), true },
		/* add $1,(%rdi) 8 bytes below a 1-byte breakpoint: a miss */
		{ { 0x48, 0x83, 0x07, 0x01 }, 4, DR7_L0 | DR7_RW0(3) | DR7_LEN0(0), false },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		env->cpu = start;
		env->delivered = 0;
		env->cpu.virt.dr[0] = cases[i].dr7 & DR7_LEN0(3) ? DATA_VA : DATA_VA + 8;
		env->cpu.virt.dr7 = cases[i].dr7;
		env->cpu.gpr[EMU_RDI] = DATA_VA;
		env->cpu.gpr[EMU_RAX] = 0x1234;
		poke64(env, DATA_VA, 0x5678);
		assert_int_equal(run(env, cases[i].code, cases[i].len, &rep), EMU_DONE);
		if (!cases[i].hit) {
			assert_int_equal(env->delivered, 0);
			assert_int_equal(env->cpu.rip, CODE_VA + cases[i].len);
			continue;
		}
		assert_data_trap(env, DR6_B0, CODE_VA + cases[i].len, false);
	}
}

/*
 * A rep movsb whose destination holds a write breakpoint stops after the
 * iteration that writes it (SDM Vol. 3A §17.2.4): RCX, RSI and RDI count
 * that one, the frame's RIP is the instruction's, with RF set (it has not
 * completed, §17.3.1.1), and nothing after it is copied. The chunks before
 * it are still whole copies (a few stores, not one per byte).
 */
static void test_data_breakpoint_rep_movs(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	const u64 dst = DATA_VA + 0x100;

	for (unsigned i = 0; i < 64; i++)
		env->ram[DATA_GPA + i] = (u8)(i + 1);
	env->cpu.virt.rep_limit = 4096;
	env->cpu.virt.dr[0] = dst + 40;
	env->cpu.virt.dr7 = DR7_L0 | DR7_RW0(1);
	env->cpu.gpr[EMU_RSI] = DATA_VA;
	env->cpu.gpr[EMU_RDI] = dst;
	env->cpu.gpr[EMU_RCX] = 64;
	assert_int_equal(RUN(env, &rep, 0xf3, 0xa4), EMU_DONE);
	assert_data_trap(env, DR6_B0, CODE_VA, true);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 64 - 41);
	assert_int_equal(env->cpu.gpr[EMU_RSI], DATA_VA + 41);
	assert_int_equal(env->cpu.gpr[EMU_RDI], dst + 41);
	assert_int_equal(env->ram[DATA_GPA + 0x100 + 40], 41);
	assert_int_equal(env->ram[DATA_GPA + 0x100 + 41], 0);
	assert_in_range(env->nwrites, 3, 8); /* chunks, the byte at +40, the frame */
	/* The handler returns with RF (as the frame has it): the copy goes on to its end. */
	env->cpu.rip = CODE_VA;
	env->cpu.rflags |= RFLAGS_RF;
	env->cpu.virt.dr6 = 0;
	env->cpu.gpr[EMU_RSP] = STACK_VA + PAGE_SIZE - 8;
	assert_int_equal(RUN(env, &rep, 0xf3, 0xa4), EMU_DONE);
	assert_int_equal(env->delivered, 1);
	assert_int_equal(env->cpu.rip, CODE_VA + 2);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
	assert_false(env->cpu.rflags & RFLAGS_RF);
	assert_memory_equal(env->ram + DATA_GPA + 0x100, env->ram + DATA_GPA, 64);
}

/* A read-or-write breakpoint on the source of rep movsq, and on rep stosb's last byte. */
static void test_data_breakpoint_rep_source_last(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu start = env->cpu;

	env->cpu.virt.dr[0] = DATA_VA + 16; /* the third qword */
	env->cpu.virt.dr7 = DR7_L0 | DR7_RW0(3) | DR7_LEN0(2);
	env->cpu.gpr[EMU_RSI] = DATA_VA;
	env->cpu.gpr[EMU_RDI] = DATA_VA + 0x200;
	env->cpu.gpr[EMU_RCX] = 8;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x48, 0xa5), EMU_DONE);
	assert_data_trap(env, DR6_B0, CODE_VA, true);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 5);
	/* The last iteration hits: the string is done, RIP past it, RF as it was (clear). */
	env->cpu = start;
	env->delivered = 0;
	env->cpu.virt.dr[0] = DATA_VA + 2;
	env->cpu.virt.dr7 = DR7_L0 | DR7_RW0(1);
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RCX] = 3;
	assert_int_equal(RUN(env, &rep, 0xf3, 0xaa), EMU_DONE);
	assert_data_trap(env, DR6_B0, CODE_VA + 2, false);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 0);
}

/* rep insb into a watched byte: the same stop, after the iteration that stores it. */
static void test_data_breakpoint_rep_ins(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.virt.dr[0] = DATA_VA + 3;
	env->cpu.virt.dr7 = DR7_L0 | DR7_RW0(1);
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RCX] = 8;
	env->cpu.gpr[EMU_RDX] = 0x80;
	assert_int_equal(RUN(env, &rep, 0xf3, 0x6c), EMU_DONE);
	assert_data_trap(env, DR6_B0, CODE_VA, true);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 4);
	assert_int_equal(env->cpu.gpr[EMU_RDI], DATA_VA + 4);
}

/*
 * A rep string stopped at its limit, with nothing delivered, resumes with
 * RF set: an instruction breakpoint on it, which the CPU checked when it
 * began, does not fire again when it runs on natively.
 */
static void test_rep_partial_sets_rf(void **state)
{
	struct env *env = *state;
	struct emu_report rep;

	env->cpu.virt.rep_limit = 6;
	env->cpu.gpr[EMU_RDI] = DATA_VA;
	env->cpu.gpr[EMU_RCX] = 10;
	assert_int_equal(RUN(env, &rep, 0xf3, 0xaa), EMU_DONE);
	assert_int_equal(env->delivered, 0);
	assert_int_equal(env->cpu.rip, CODE_VA);
	assert_int_equal(env->cpu.gpr[EMU_RCX], 4);
	assert_true(env->cpu.rflags & RFLAGS_RF);
	assert_int_equal(RUN(env, &rep, 0xf3, 0xaa), EMU_DONE);
	assert_int_equal(env->cpu.rip, CODE_VA + 2);
	assert_false(env->cpu.rflags & RFLAGS_RF);
}

/*
 * General detect (SDM Vol. 3A §17.2.4): with DR7.GD set, a mov from or to
 * a debug register is a #DB fault before it (its own RIP, RF set in the
 * frame), DR6.BD set and B0-B3 cleared, GD cleared for the handler; the
 * next mov goes through. #GP at CPL 3 comes first.
 */
static void test_general_detect(void **state)
{
	struct env *env = *state;
	struct emu_report rep;
	struct emu_cpu start;

	env->cpu.virt.dr7 = DR7_GD | DR7_L0;
	env->cpu.virt.dr6 = DR6_B1;
	env->cpu.gpr[EMU_RAX] = 0x1234;
	start = env->cpu;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x21, 0xc0), EMU_DONE); /* mov %dr0,%rax */
	assert_true(rep.faulted);
	assert_int_equal(env->last_event.vector, X86_EXC_DB);
	assert_int_equal(env->cpu.rip, HANDLER_DB);
	assert_int_equal(peek64(env, env->cpu.gpr[EMU_RSP]), CODE_VA);
	assert_true(peek64(env, env->cpu.gpr[EMU_RSP] + 16) & RFLAGS_RF);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0x1234);
	assert_int_equal(env->cpu.virt.dr6, DR6_BD);
	assert_int_equal(env->cpu.virt.dr7, DR7_L0);
	/* The handler reads DR6: no #DB now. */
	env->cpu.rip = CODE_VA;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x21, 0xf0), EMU_DONE); /* mov %dr6,%rax */
	assert_int_equal(env->delivered, 1);
	assert_int_equal(env->cpu.gpr[EMU_RAX], 0xffff0ff0ull | DR6_BD);
	/* A write is detected as well; at CPL 3, #GP instead. */
	env->cpu = start;
	assert_int_equal(RUN(env, &rep, 0x0f, 0x23, 0xf8), EMU_DONE); /* mov %rax,%dr7 */
	assert_int_equal(env->delivered, 2);
	assert_int_equal(env->last_event.vector, X86_EXC_DB);
	assert_int_equal(env->cpu.virt.dr7, DR7_L0);
	env->cpu = start;
	to_user(env);
	assert_int_equal(RUN(env, &rep, 0x0f, 0x21, 0xc0), EMU_DONE);
	assert_int_equal(env->last_event.vector, X86_EXC_GP);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_step, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_step_after_emulated),
		T(test_no_step_without_tf),
		T(test_step_rep_one_iteration),
		T(test_step_popf),
		T(test_no_step_after_mov_ss),
		T(test_fault_not_step),
		T(test_syscall_compat),
		T(test_syscall_compat_ud),
		T(test_syscall_insn_step),
		T(test_sysenter),
		T(test_into),
		T(test_data_breakpoint_write),
		T(test_data_breakpoint_misses),
		T(test_data_breakpoint_and_step),
		T(test_exec_breakpoint),
		T(test_data_breakpoint_rmw),
		T(test_data_breakpoint_rep_movs),
		T(test_data_breakpoint_rep_source_last),
		T(test_data_breakpoint_rep_ins),
		T(test_rep_partial_sets_rf),
		T(test_general_detect),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
