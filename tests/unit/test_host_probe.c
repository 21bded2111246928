/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the start-up host probe (vmm/host_probe.c) without KVM:
 * host_probe_strategy for every combination of answers; the decisions
 * from what the guest reports; and the scratch guest host_probe_build lays
 * out (descriptors, gates, stubs, page tables, the userspace PTE store, and
 * the hand-assembled code, disassembled with capstone against the HP_OFF_*
 * entry points and ports in vmm/host_probe.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <capstone/capstone.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/host_probe.h"

static const enum host_answer answers[] = { HOST_UNKNOWN, HOST_NO, HOST_YES };
static const int cpls[] = { -1, 0, 3 };

/* ---- strategy ------------------------------------------------------------- */

static void test_strategy_all_combinations(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(answers); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(answers); j++) {
			for (size_t k = 0; k < ARRAY_SIZE(cpls); k++) {
				struct host_probe p = { .iopl3 = answers[i],
							.pt_stores_seen = answers[j],
							.syscall_cpl = cpls[k] };
				struct shadow_strategy s;

				memset(&s, 0x5a, sizeof(s)); /* every field must be set */
				assert_int_equal(host_probe_strategy(&p, SENSITIVE_AUTO, &s), 0);

				/*
				 * IOPL 3 exactly where the host said yes (unknown is
				 * not yes); CR8 masking wherever the IF is virtual.
				 */
				if (p.iopl3 == HOST_YES) {
					assert_int_equal(s.sensitive, SHADOW_SENSITIVE_IOPL3);
					assert_false(s.tpr_masking);
					assert_non_null(s.tpr_note);
				} else {
					assert_int_equal(s.sensitive, SHADOW_SENSITIVE_PATCH);
					assert_true(s.tpr_masking);
					assert_null(s.tpr_note);
				}
				assert_null(s.sensitive_note);

				/* Replay always (unknown included); the note only if seen. */
				assert_int_equal(s.stores, SHADOW_STORES_REPLAY);
				if (p.pt_stores_seen == HOST_YES)
					assert_string_equal(s.stores_note, "direct stores would do "
									   "here: not implemented");
				else
					assert_null(s.stores_note);

				switch (p.syscall_cpl) {
				case 3:
					assert_int_equal(s.syscall_entry, SHADOW_SYSCALL_CPL3);
					assert_null(s.syscall_note);
					break;
				case 0:
					assert_int_equal(s.syscall_entry, SHADOW_SYSCALL_CPL0);
					assert_string_equal(s.syscall_note,
							    "through the #UD gate's IST; run on "
							    "nested SVM only");
					break;
				default:
					assert_int_equal(s.syscall_entry, SHADOW_SYSCALL_UNKNOWN);
					assert_non_null(s.syscall_note);
					break;
				}
			}
		}
	}
}

/* This host (shared/HOST.md): nothing better than what shadow mode does. */
static void test_strategy_pvm_host(void **state)
{
	struct host_probe p = { .iopl3 = HOST_NO, .pt_stores_seen = HOST_NO, .syscall_cpl = 3 };
	struct shadow_strategy s;

	(void)state;
	assert_int_equal(host_probe_strategy(&p, SENSITIVE_AUTO, &s), 0);
	assert_string_equal(shadow_sensitive_name(s.sensitive), "patch pushf/popf");
	assert_string_equal(shadow_stores_name(s.stores), "vcpu replays shadow stores");
	assert_string_equal(shadow_syscall_entry_name(s.syscall_entry), "cpl3 arrival");
	assert_null(s.sensitive_note);
	assert_null(s.stores_note);
	assert_null(s.syscall_note);
	assert_true(s.tpr_masking);
	assert_null(s.tpr_note);
}

/* A nested KVM under QEMU's TCG (tools/nested-kvm.sh): the TPR set through KVM. */
static void test_strategy_tcg_host(void **state)
{
	struct host_probe p = {
		.iopl3 = HOST_YES, .pt_stores_seen = HOST_YES, .syscall_cpl = 0, .qemu_tcg = true
	};
	struct shadow_strategy s;

	(void)state;
	assert_int_equal(host_probe_strategy(&p, SENSITIVE_PATCH, &s), 0);
	assert_true(s.tpr_masking);
	assert_true(s.tpr_by_ioctl);
	assert_string_equal(s.tpr_note, "set through KVM, not CR8: the host is QEMU TCG, whose "
					"nested SVM aborts on guest CR8 writes");
	assert_int_equal(s.syscall_entry, SHADOW_SYSCALL_CPL0);
	p.qemu_tcg = false;
	assert_int_equal(host_probe_strategy(&p, SENSITIVE_PATCH, &s), 0);
	assert_true(s.tpr_masking);
	assert_false(s.tpr_by_ioctl);
	assert_null(s.tpr_note);
}

/* --sensitive: patch is always possible; iopl3 only where the probe said yes. */
static void test_strategy_sensitive_choice(void **state)
{
	struct host_probe p = { .iopl3 = HOST_YES, .syscall_cpl = 0 };
	struct shadow_strategy s;

	(void)state;
	assert_int_equal(host_probe_strategy(&p, SENSITIVE_IOPL3, &s), 0);
	assert_int_equal(s.sensitive, SHADOW_SENSITIVE_IOPL3);
	assert_string_equal(shadow_sensitive_name(s.sensitive),
			    "iopl3: cli/sti native, pushf/popf patched");
	assert_int_equal(host_probe_strategy(&p, SENSITIVE_PATCH, &s), 0);
	assert_int_equal(s.sensitive, SHADOW_SENSITIVE_PATCH);
	assert_string_equal(s.sensitive_note, "--sensitive=patch: iopl3 would do here");
	assert_true(s.tpr_masking);
	for (int i = 0; i < 2; i++) {
		p.iopl3 = i ? HOST_UNKNOWN : HOST_NO;
		assert_int_equal(host_probe_strategy(&p, SENSITIVE_IOPL3, &s), -1);
		assert_int_equal(s.sensitive, SHADOW_SENSITIVE_PATCH); /* what auto picks */
		assert_int_equal(host_probe_strategy(&p, SENSITIVE_PATCH, &s), 0);
		assert_null(s.sensitive_note);
	}
}

/* CPUID 0x40000000's EBX, ECX, EDX spell the vendor in little-endian order. */
static void test_signature_tcg(void **state)
{
	(void)state;
	assert_true(host_signature_is_tcg(0x54474354, 0x43544743, 0x47435447)); /* TCGTCGTCGTCG */
	assert_false(host_signature_is_tcg(0x4b4d564b, 0x564b4d56, 0x4d));	/* KVMKVMKVM */
	assert_false(host_signature_is_tcg(0, 0, 0));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(host_answer_name(HOST_YES), "yes");
	assert_string_equal(host_answer_name(HOST_NO), "no");
	assert_string_equal(host_answer_name(HOST_UNKNOWN), "unknown");
	assert_string_equal(shadow_syscall_entry_name(SHADOW_SYSCALL_CPL0), "cpl0 arrival");
	assert_string_equal(shadow_syscall_entry_name(SHADOW_SYSCALL_UNKNOWN), "unknown");
}

/* ---- decisions ------------------------------------------------------------ */

static void test_decide_iopl3(void **state)
{
	(void)state;
	assert_int_equal(host_probe_decide_iopl3(HP_IRET_RFLAGS), HOST_YES); /* as set */
	assert_int_equal(host_probe_decide_iopl3(0x3046), HOST_YES); /* other flags: no matter */
	assert_int_equal(host_probe_decide_iopl3(0x202), HOST_NO);   /* PVM: IF=1, IOPL=0 */
	assert_int_equal(host_probe_decide_iopl3(0x3202), HOST_NO);  /* IF forced on */
	assert_int_equal(host_probe_decide_iopl3(0x0002), HOST_NO);  /* IOPL dropped */
	assert_int_equal(host_probe_decide_iopl3(0x1002), HOST_NO);  /* IOPL 1 */
}

static void test_decide_pt(void **state)
{
	(void)state;
	assert_int_equal(host_probe_decide_pt(HP_BYTE_A, HP_BYTE_B), HOST_YES);
	assert_int_equal(host_probe_decide_pt(HP_BYTE_A, HP_BYTE_A), HOST_NO);
	assert_int_equal(host_probe_decide_pt(HP_BYTE_A, 0), HOST_UNKNOWN);
	assert_int_equal(host_probe_decide_pt(0, HP_BYTE_B), HOST_UNKNOWN);
	assert_int_equal(host_probe_decide_pt(HP_BYTE_B, HP_BYTE_B), HOST_UNKNOWN);
}

static void test_decide_cpl(void **state)
{
	(void)state;
	assert_int_equal(host_probe_decide_cpl(HP_SEL_KCODE), 0); /* VMX: STAR's CS */
	assert_int_equal(host_probe_decide_cpl(0x2b), 3);	  /* still the user CS */
	assert_int_equal(host_probe_decide_cpl(0x33), 3);	  /* PVM: the host's user CS */
}

/* ---- the scratch guest ---------------------------------------------------- */

static u8 *built(void)
{
	u8 *mem = calloc(1, HP_MEM_SIZE);

	assert_non_null(mem);
	host_probe_build(mem);
	return mem;
}

static u64 rd64(const u8 *mem, u64 gpa)
{
	u64 v;

	assert_true(gpa + 8 <= HP_MEM_SIZE);
	memcpy(&v, mem + gpa, 8);
	return v;
}

/* A 4-level walk of the scratch tables; asserts P and U at every level. */
static u64 walk(const u8 *mem, u64 gva)
{
	u64 table = HP_PML4;

	for (int level = 3; level >= 0; level--) {
		u64 e = rd64(mem, table + ((gva >> (12 + 9 * level)) & 511) * 8);

		assert_int_equal(e & HP_PTE_FLAGS, HP_PTE_FLAGS);
		table = e & 0x000ffffffffff000ull;
	}
	return table | (gva & 0xfff);
}

static void test_build_tables(void **state)
{
	u8 *mem = built();

	(void)state;
	for (u64 a = 0; a < HP_MEM_SIZE; a += 0x1000)
		assert_int_equal(walk(mem, a + 0x123), a + 0x123);
	assert_int_equal(walk(mem, HP_PROBE_VA), HP_PAGE_A);
	assert_int_equal(mem[HP_PAGE_A], HP_BYTE_A);
	assert_int_equal(mem[HP_PAGE_B + 0xfff], HP_BYTE_B);
	host_probe_store_pte(mem);
	assert_int_equal(walk(mem, HP_PROBE_VA), HP_PAGE_B);
	assert_int_equal(walk(mem, HP_CODE), HP_CODE); /* nothing else moved */
	/* Everything the guest uses lies in the slot, below the probe VA. */
	assert_true(HP_USTACK_TOP <= HP_MEM_SIZE && HP_KSTACK_TOP <= HP_USTACK_TOP);
	assert_true(HP_PROBE_PTE == HP_PT + (HP_PROBE_VA >> 12) * 8);
	free(mem);
}

static void test_build_descriptors(void **state)
{
	u8 *mem = built();
	u64 tss_lo = rd64(mem, HP_GDT + HP_SEL_TSS);

	(void)state;
	/* Kernel code: 64-bit, DPL0; user code (CS of the iret): 64-bit, DPL3. */
	assert_int_equal(rd64(mem, HP_GDT + HP_SEL_KCODE), 0x00af9a000000ffffull);
	assert_int_equal(rd64(mem, HP_GDT + (HP_SEL_UCODE & ~7u)), 0x00affa000000ffffull);
	assert_int_equal(rd64(mem, HP_GDT + (HP_SEL_UDATA & ~7u)), 0x00cff2000000ffffull);
	/* STAR's sysret base + 16 is the user code, + 8 the user data (SDM SYSRET). */
	assert_int_equal(((HP_STAR >> 48) + 16) | 3, HP_SEL_UCODE);
	assert_int_equal(((HP_STAR >> 48) + 8) | 3, HP_SEL_UDATA);
	assert_int_equal(HP_SEL_TSS + 16, HP_GDT_LIMIT + 1);
	/* The TSS descriptor: base, limit, available 64-bit TSS, present. */
	assert_int_equal(tss_lo & 0xffff, HP_TSS_LIMIT);
	assert_int_equal((tss_lo >> 16) & 0xffffff, HP_TSS);
	assert_int_equal((tss_lo >> 40) & 0xff, 0x89);
	assert_int_equal(rd64(mem, HP_TSS + 4), HP_KSTACK_TOP); /* RSP0 */
	/* I/O bitmap: base 104, ports 0-127 allowed, then the 0xff terminator. */
	assert_int_equal(mem[HP_TSS + 102] | mem[HP_TSS + 103] << 8, 104);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(mem[HP_TSS + 104 + i], 0);
	assert_int_equal(mem[HP_TSS + HP_TSS_LIMIT], 0xff);
	assert_true(HP_PORT_EXC < 128 && HP_PORT_SYSCALL < 128);
	free(mem);
}

static void test_build_idt_and_stubs(void **state)
{
	u8 *mem = built();

	(void)state;
	for (unsigned v = 0; v < HP_NR_EXC; v++) {
		u64 lo = rd64(mem, HP_IDT + v * 16), hi = rd64(mem, HP_IDT + v * 16 + 8);
		u64 target = (lo & 0xffff) | ((lo >> 48) << 16) | (hi << 32);
		u64 stub = HP_CODE + HP_OFF_STUBS + v * HP_STUB_SIZE;

		assert_int_equal((lo >> 16) & 0xffff, HP_SEL_KCODE);
		assert_int_equal((lo >> 40) & 0xff, 0x8e); /* present, DPL0, interrupt gate */
		assert_int_equal(target, v == HP_PT_VECTOR ? HP_CODE + HP_OFF_PT_TRAP : stub);
		/* mov $v, %al; out %al, $HP_PORT_EXC; hlt; jmp back to the hlt */
		assert_int_equal(mem[stub], 0xb0);
		assert_int_equal(mem[stub + 1], v);
		assert_int_equal(mem[stub + 2], 0xe6);
		assert_int_equal(mem[stub + 3], HP_PORT_EXC);
		assert_int_equal(mem[stub + 4], 0xf4);
		assert_int_equal(mem[stub + 5], 0xeb);
		assert_int_equal((s8)mem[stub + 6], -3);
	}
	assert_int_equal(HP_IDT_LIMIT, HP_NR_EXC * 16 - 1);
	free(mem);
}

/* What the code at each entry point must be (capstone, Intel syntax). */
static const struct {
	unsigned off;
	const char *mnemonic, *op_str;
} expected_code[] = {
	{ HP_OFF_TO_USER, "push", "0x23" },
	{ HP_OFF_TO_USER + 2, "push", "0xe000" },
	{ HP_OFF_TO_USER + 7, "push", "0x3002" },
	{ HP_OFF_TO_USER + 12, "push", "0x2b" },
	{ HP_OFF_TO_USER + 14, "push", "rbx" },
	{ HP_OFF_TO_USER + 15, "iretq", "" },
	{ HP_OFF_IOPL3, "pushfq", "" },
	{ HP_OFF_IOPL3 + 1, "pop", "rax" },
	{ HP_OFF_IOPL3 + 2, "out", "0x10, eax" },
	{ HP_OFF_PT, "movzx", "eax, byte ptr [0x10000]" },
	{ HP_OFF_PT_UD2, "ud2", "" },
	{ HP_OFF_PT_UD2 + 2, "movzx", "eax, byte ptr [0x10000]" },
	{ HP_OFF_PT_UD2 + 10, "out", "0x12, al" },
	{ HP_OFF_FSGSBASE, "rdgsbase", "rax" },
	{ HP_OFF_FSGSBASE + 5, "out", "0x14, eax" },
	{ HP_OFF_SYSCALL, "syscall", "" },
	{ HP_OFF_LSTAR, "mov", "eax, cs" },
	{ HP_OFF_LSTAR + 2, "out", "0x13, eax" },
	{ HP_OFF_PT_TRAP, "out", "0x11, al" },
	{ HP_OFF_PT_TRAP + 2, "mov", "rax, cr3" },
	{ HP_OFF_PT_TRAP + 5, "mov", "cr3, rax" },
	{ HP_OFF_PT_TRAP + 8, "add", "qword ptr [rsp], 2" },
	{ HP_OFF_PT_TRAP + 13, "iretq", "" },
};

static void test_build_code(void **state)
{
	u8 *mem = built();
	csh cs;
	cs_insn *insn;
	size_t n, want = 0;

	(void)state;
	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &cs), CS_ERR_OK);
	n = cs_disasm(cs, mem + HP_CODE, HP_OFF_STUBS, HP_CODE, 0, &insn);
	/* Every expected instruction, in order, at its offset; nothing undecodable between. */
	for (size_t i = 0; i < n && want < ARRAY_SIZE(expected_code); i++) {
		if (insn[i].address != HP_CODE + expected_code[want].off)
			continue;
		assert_string_equal(insn[i].mnemonic, expected_code[want].mnemonic);
		assert_string_equal(insn[i].op_str, expected_code[want].op_str);
		want++;
	}
	assert_int_equal(want, ARRAY_SIZE(expected_code));
	/* The constants the code hard-codes are those of the header. */
	assert_int_equal(HP_SEL_UDATA, 0x23);
	assert_int_equal(HP_SEL_UCODE, 0x2b);
	assert_int_equal(HP_USTACK_TOP, 0xe000);
	assert_int_equal(HP_IRET_RFLAGS, 0x3002);
	assert_int_equal(HP_PROBE_VA, 0x10000);
	assert_int_equal(HP_PORT_RFLAGS, 0x10);
	assert_int_equal(HP_PORT_PT_BEFORE, 0x11);
	assert_int_equal(HP_PORT_PT_AFTER, 0x12);
	assert_int_equal(HP_PORT_SYSCALL, 0x13);
	assert_int_equal(HP_PORT_FSGSBASE, 0x14);
	assert_int_equal(HP_LSTAR, HP_CODE + HP_OFF_LSTAR);
	/* The code falls through from one step into the next. */
	assert_int_equal(HP_OFF_IOPL3, HP_OFF_TO_USER + 17);
	assert_int_equal(HP_OFF_PT, HP_OFF_IOPL3 + 4);
	assert_int_equal(HP_OFF_FSGSBASE, HP_OFF_PT_UD2 + 12);
	assert_int_equal(HP_OFF_SYSCALL, HP_OFF_FSGSBASE + 7);
	cs_free(insn, n);
	cs_close(&cs);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strategy_all_combinations),
		cmocka_unit_test(test_strategy_pvm_host),
		cmocka_unit_test(test_strategy_tcg_host),
		cmocka_unit_test(test_strategy_sensitive_choice),
		cmocka_unit_test(test_signature_tcg),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_decide_iopl3),
		cmocka_unit_test(test_decide_pt),
		cmocka_unit_test(test_decide_cpl),
		cmocka_unit_test(test_build_tables),
		cmocka_unit_test(test_build_descriptors),
		cmocka_unit_test(test_build_idt_and_stubs),
		cmocka_unit_test(test_build_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
