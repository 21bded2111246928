/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the shadow-mode monitor's memory (vmm/monitor.c): where it
 * is placed, the descriptors, gates and stubs it writes, its page tables,
 * and the stack the tail consumes (stores, terminator, root, RBX, frame),
 * and the call window's functions, disassembled by capstone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <capstone/capstone.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/x86.h"
#include "vmm/monitor.h"

static u64 rd64(const struct monitor *m, u64 off)
{
	u64 v;

	memcpy(&v, m->region + off, 8);
	return v;
}

static void test_placement(void **state)
{
	struct monitor m;

	(void)state;
	assert_int_equal(monitor_create(&m, 512 * MiB, 16 * MiB), 0);
	assert_int_equal(m.region_mpa.v, 4 * GiB); /* never in or below the PCI hole */
	assert_int_equal(m.pool_mpa.v, 4 * GiB + MON_REGION_SIZE);
	monitor_destroy(&m);
	assert_int_equal(monitor_create(&m, 5 * GiB + 4096, 2 * MiB), 0);
	assert_int_equal(m.region_mpa.v, 6 * GiB); /* the next 1 GiB boundary above RAM */
	monitor_destroy(&m);
	assert_int_not_equal(monitor_create(&m, 512 * MiB, 3 * MiB), 0);
}

static void test_tables_and_stubs(void **state)
{
	struct monitor m;
	unsigned v;

	(void)state;
	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	/* GDT: DPL0 code, DPL3 data and code (DPL in bits 45-46), no user pair yet. */
	assert_int_equal((rd64(&m, MON_SEL_CODE) >> 45) & 3, 0);
	assert_int_equal((rd64(&m, MON_SEL_UCODE & ~3u) >> 45) & 3, 3);
	assert_int_equal((rd64(&m, MON_SEL_UDATA & ~3u) >> 45) & 3, 3);
	/* TSS.RSP0 is the top of the monitor stack. */
	assert_true(rd64(&m, MON_OFF_TSS + 4) == monitor_gva(MON_OFF_STACK_TOP));
	/* Gate 14 points at stub 14, DPL0 interrupt gate. */
	{
		const u8 *g = m.region + MON_OFF_IDT + 16 * 14;
		u64 off = (u64)g[0] | (u64)g[1] << 8 | (u64)g[6] << 16 | (u64)g[7] << 24 |
			  (u64)g[8] << 32 | (u64)g[9] << 40 | (u64)g[10] << 48 | (u64)g[11] << 56;

		assert_true(off == monitor_gva(MON_OFF_STUBS + 14 * MON_STUB_SIZE));
		assert_int_equal(g[5], 0x8e);
	}
	/* Stub: out %al, $port; jmp tail. */
	assert_int_equal(m.region[MON_OFF_STUBS + 3 * MON_STUB_SIZE], 0xe6);
	assert_int_equal(m.region[MON_OFF_STUBS + 3 * MON_STUB_SIZE + 1], MON_TRAP_PORT);
	/* The exit RIP at or just after the `out` names the stub. */
	assert_true(monitor_stub_vector(monitor_gva(MON_OFF_STUBS + 14 * MON_STUB_SIZE), &v));
	assert_int_equal(v, 14);
	assert_true(monitor_stub_vector(monitor_gva(MON_OFF_STUBS + 255 * MON_STUB_SIZE + 2), &v));
	assert_int_equal(v, 255);
	assert_false(monitor_stub_vector(monitor_gva(MON_OFF_TAIL), &v));
	/*
	 * Page tables: PD[0] -> PT maps the region in 4 KiB pages, supervisor-
	 * only but for the read-only syscall entry page; PD[1..] the pool.
	 */
	assert_true((monitor_pml4e(&m) & ~0xfffull) == m.region_mpa.v + MON_OFF_PDPT);
	assert_true(rd64(&m, MON_OFF_PD) ==
		    ((m.region_mpa.v + MON_OFF_PT) | PTE_P | PTE_RW | PTE_US));
	for (u64 off = 0; off < MON_REGION_SIZE; off += PAGE_SIZE) {
		u64 pte = rd64(&m, MON_OFF_PT + 8 * (off / PAGE_SIZE));

		assert_true((pte & ~0xfffull) == m.region_mpa.v + off);
		assert_int_equal(!!(pte & PTE_US), off == MON_OFF_SYSCALL);
		assert_int_equal(!!(pte & PTE_RW), off != MON_OFF_SYSCALL);
	}
	/* The syscall entry is `ud2`; every monitor selector lies above the guests'. */
	assert_int_equal(m.region[MON_OFF_SYSCALL], 0x0f);
	assert_int_equal(m.region[MON_OFF_SYSCALL + 1], 0x0b);
	assert_true(MON_SEL_UCODE >> 3 >= MON_GDT_FIRST && MON_SEL_TSS >> 3 >= MON_GDT_FIRST);
	assert_true((rd64(&m, MON_OFF_PD + 16) & ~(PTE_NX | 0xfffull)) == m.pool_mpa.v + 2 * MiB);
	assert_true(rd64(&m, MON_OFF_PD + 24) == 0);
	monitor_destroy(&m);
}

static void test_prepare_return(void **state)
{
	struct monitor m;
	u64 rsp, off;

	(void)state;
	assert_int_equal(monitor_create(&m, 512 * MiB, 2 * MiB), 0);
	monitor_frame(&m)->rip = 0x123456;
	monitor_queue_store(&m, mpa(m.pool_mpa.v + 0x1008), 0xabc007);
	monitor_queue_store(&m, mpa(m.pool_mpa.v + 0x2000), 0xdef003);
	rsp = monitor_prepare_return(&m, mpa(0x5000), 0x77);
	off = rsp - MON_GVA;
	/* Ascending from RSP: pair, pair, 0, root, rbx, frame. */
	assert_true(rd64(&m, off) == MON_POOL_GVA + 0x1008);
	assert_true(rd64(&m, off + 8) == 0xabc007);
	assert_true(rd64(&m, off + 16) == MON_POOL_GVA + 0x2000);
	assert_true(rd64(&m, off + 24) == 0xdef003);
	assert_true(rd64(&m, off + 32) == 0);
	assert_true(rd64(&m, off + 40) == 0x5000); /* a new root: loaded */
	assert_true(rd64(&m, off + 48) == 0x77);
	assert_true(rd64(&m, off + 56) == 0x123456); /* the frame's RIP */
	assert_int_equal(off + 56, MON_OFF_STACK_TOP - sizeof(struct mon_frame));
	/* Same root, nothing queued: CR3 kept. */
	rsp = monitor_prepare_return(&m, mpa(0x5000), 0x77);
	assert_true(rd64(&m, rsp - MON_GVA) == 0);
	assert_true(rd64(&m, rsp - MON_GVA + 8) == 0);
	/* A flush, of one gva or of all, reloads the same root; once. */
	monitor_flush(&m, SHADOW_FLUSH_GVA, gva(0x7000));
	rsp = monitor_prepare_return(&m, mpa(0x5000), 0x77);
	assert_true(rd64(&m, rsp - MON_GVA + 8) == 0x5000);
	assert_false(m.need_flush);
	rsp = monitor_prepare_return(&m, mpa(0x5000), 0x77);
	assert_true(rd64(&m, rsp - MON_GVA + 8) == 0);
	monitor_flush(&m, SHADOW_FLUSH_ALL, gva(0));
	rsp = monitor_prepare_return(&m, mpa(0x5000), 0x77);
	assert_true(rd64(&m, rsp - MON_GVA + 8) == 0x5000);
	/* A TPR change enters through the CR8 entry with the value lowest; once. */
	assert_true(m.tail_entry == monitor_gva(MON_OFF_TAIL));
	m.want_tpr = 15;
	rsp = monitor_prepare_return(&m, mpa(0x5000), 0x77);
	assert_true(m.tail_entry == monitor_gva(MON_OFF_TAIL_CR8));
	assert_true(rd64(&m, rsp - MON_GVA) == 15);
	assert_true(rd64(&m, rsp - MON_GVA + 8) == 0);		/* then the store terminator */
	assert_int_equal(m.region[MON_OFF_TAIL_CR8], 0x5b);	/* pop %rbx */
	assert_int_equal(m.region[MON_OFF_TAIL_CR8 + 4], 0xc3); /* mov %rbx,%cr8 */
	rsp = monitor_prepare_return(&m, mpa(0x5000), 0x77);
	assert_true(m.tail_entry == monitor_gva(MON_OFF_TAIL));
	/* The RSP the CPU leaves after a trap, with and without an error code. */
	assert_true(monitor_trap_rsp(14) == monitor_gva(MON_OFF_STACK_TOP) - 48);
	assert_true(monitor_trap_rsp(3) == monitor_gva(MON_OFF_STACK_TOP) - 40);
	monitor_destroy(&m);
}

/* Guest user selectors come and go in the real GDT with the I/O bitmap. */
static void test_user_segs(void **state)
{
	struct monitor m;
	u16 cs, ss, iomap;

	(void)state;
	assert_int_equal(monitor_create(&m, 512 * MiB, 2 * MiB), 0);
	/* User mode on Linux's selectors: installed DPL3, the bitmap switched off. */
	monitor_set_user_segs(&m, true, 0x33, true, 0x2b, &cs, &ss);
	assert_int_equal(cs, 0x33);
	assert_int_equal(ss, 0x2b);
	assert_int_equal((rd64(&m, 0x30) >> 45) & 3, 3);
	assert_true(rd64(&m, 0x30) & (1ull << 53)); /* L: 64-bit code */
	assert_int_equal((rd64(&m, 0x28) >> 45) & 3, 3);
	memcpy(&iomap, m.region + MON_OFF_TSS + 102, 2);
	assert_true(iomap > MON_TSS_LIMIT);
	/* Back in the kernel: gone again, the kernel pair, every port allowed. */
	monitor_set_user_segs(&m, false, 0x08, true, 0x10, &cs, &ss);
	assert_int_equal(cs, MON_SEL_UCODE);
	assert_int_equal(ss, MON_SEL_UDATA);
	assert_true(rd64(&m, 0x30) == 0 && rd64(&m, 0x28) == 0);
	memcpy(&iomap, m.region + MON_OFF_TSS + 102, 2);
	assert_int_equal(iomap, 104);
	/* A selector the real GDT cannot host (LDT, or the monitor's range): the pair. */
	monitor_set_user_segs(&m, true, 0x37, true, 0x2b, &cs, &ss);
	assert_int_equal(cs, MON_SEL_UCODE);
	monitor_set_user_segs(&m, true, MON_SEL_UCODE, true, 0x2b, &cs, &ss);
	assert_int_equal(cs, MON_SEL_UCODE);
	assert_true(rd64(&m, 0x28) == 0);
	monitor_destroy(&m);
}

/*
 * Linux's CPUNODE descriptor (setup_getcpu: CPU 3, node 1 in the limit,
 * read-only data, DPL3) is copied to the real GDT's index 15; anything
 * else there clears it.
 */
static void test_cpunode(void **state)
{
	const u64 linux_cpunode = 0x0040f10000001003ull; /* limit 0x1003, type 1, S, DPL3, P, D/B */
	struct monitor m;

	(void)state;
	assert_int_equal(monitor_create(&m, 512 * MiB, 2 * MiB), 0);
	assert_true(monitor_set_cpunode(&m, linux_cpunode));
	assert_int_equal(rd64(&m, MON_GDT_CPUNODE * 8), linux_cpunode);
	/* Not present; DPL0; a code segment; a system descriptor: none copied. */
	assert_false(monitor_set_cpunode(&m, linux_cpunode & ~(1ull << 47)));
	assert_int_equal(rd64(&m, MON_GDT_CPUNODE * 8), 0);
	assert_false(monitor_set_cpunode(&m, linux_cpunode & ~(3ull << 45)));
	assert_false(monitor_set_cpunode(&m, linux_cpunode | (1ull << 43)));
	assert_false(monitor_set_cpunode(&m, linux_cpunode & ~(1ull << 44)));
	assert_int_equal(rd64(&m, MON_GDT_CPUNODE * 8), 0);
	monitor_destroy(&m);
}

/*
 * The call window's function at code offset `off`, disassembled at its gva
 * up to its `ret`, as "mnemonic operands" lines; RIP-relative operands are
 * shown as the data-page field they reach.
 */
static void disasm_call(const struct monitor *m, unsigned off, char *out, size_t outlen)
{
	csh h;
	cs_insn *insn;
	size_t n, used = 0;
	const u8 *code = m->region + MON_OFF_CALL_CODE;

	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	n = cs_disasm(h, code + off, PAGE_SIZE - off, MON_CALL_GVA + off, 0, &insn);
	assert_true(n > 0);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		char ops[160];
		const char *rip = strstr(insn[i].op_str, "[rip + 0x");

		snprintf(ops, sizeof(ops), "%s", insn[i].op_str);
		if (rip) {
			u64 disp = strtoull(rip + 9, NULL, 16);
			u64 target = insn[i].address + insn[i].size + disp;
			const char *end = strchr(rip, ']');

			snprintf(ops, sizeof(ops), "%.*s[data+%llu]%s", (int)(rip - insn[i].op_str),
				 insn[i].op_str, (unsigned long long)(target - MON_CALL_DATA_GVA),
				 end + 1);
		}
		used += (size_t)snprintf(out + used, outlen - used, "%s %s;", insn[i].mnemonic,
					 ops);
		assert_true(used < outlen);
		if (!strcmp(insn[i].mnemonic, "ret"))
			break;
	}
	cs_free(insn, n);
	cs_close(&h);
}

/*
 * monitor_call_point at every instruction of the stand-in at `fn` for
 * `pad`: its stage follows the pushfq, the return address's addq and the
 * popfq as capstone reads them, and no byte inside an instruction counts.
 */
static void check_call_points(const struct monitor *m, unsigned fn, unsigned pad)
{
	u64 entry = monitor_call_entry(fn, pad);
	unsigned off = (unsigned)(entry - MON_CALL_GVA);
	enum mon_call_stage want = MON_CALL_AT_ENTRY;
	struct mon_call_point p;
	csh h;
	cs_insn *insn;
	size_t n;

	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	n = cs_disasm(h, m->region + MON_OFF_CALL_CODE + off, MON_CALL_SLOT, entry, 0, &insn);
	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(monitor_call_point(m, insn[i].address, &p));
		assert_int_equal(p.fn, fn);
		assert_int_equal(p.pad, pad);
		assert_int_equal(p.stage, want);
		for (unsigned b = 1; b < insn[i].size; b++)
			assert_false(monitor_call_point(m, insn[i].address + b, &p));
		if (!strcmp(insn[i].mnemonic, "pushfq"))
			want = MON_CALL_FLAGS_SAVED;
		else if (!strcmp(insn[i].mnemonic, "add") && strstr(insn[i].op_str, "[rsp + 8]"))
			want = MON_CALL_RETURN_SET;
		else if (!strcmp(insn[i].mnemonic, "popfq"))
			want = MON_CALL_AT_RET;
		if (!strcmp(insn[i].mnemonic, "ret")) {
			assert_false(monitor_call_point(m, insn[i].address + 1, &p));
			break;
		}
	}
	assert_int_equal(want, MON_CALL_AT_RET);
	cs_free(insn, n);
	cs_close(&h);
}

static void test_call_window(void **state)
{
	struct monitor m;
	char text[1024], want[1024];
	const unsigned vif = offsetof(struct mon_call_data, vif);
	const unsigned pending = offsetof(struct mon_call_data, pending);
	const unsigned flags = offsetof(struct mon_call_data, virt_flags);
	const u64 *pt;

	(void)state;
	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	for (unsigned pad = 0; pad <= MON_CALL_MAX_PAD; pad++) {
		u64 entry = monitor_call_entry(MON_CALL_IRQ_DISABLE, pad);
		char prologue[64];

		snprintf(prologue, sizeof(prologue), "pushfq ;add qword ptr [rsp + 8], %u;", pad);

		disasm_call(&m, (unsigned)(entry - MON_CALL_GVA), text, sizeof(text));
		snprintf(want, sizeof(want), "%smov byte ptr [data+%u], 0;popfq ;ret ;", prologue,
			 vif);
		assert_string_equal(text, want);

		entry = monitor_call_entry(MON_CALL_IRQ_ENABLE, pad);
		disasm_call(&m, (unsigned)(entry - MON_CALL_GVA), text, sizeof(text));
		snprintf(want, sizeof(want),
			 "%smov byte ptr [data+%u], 1;cmp byte ptr [data+%u], 0;je 0x%llx;ud2 ;"
			 "popfq ;ret ;",
			 prologue, vif, pending,
			 (unsigned long long)(entry + MON_CALL_ENABLE_UD2 + 2));
		assert_string_equal(text, want);
		assert_true(monitor_call_is_pending_trap(entry + MON_CALL_ENABLE_UD2));
		assert_false(monitor_call_is_pending_trap(entry + MON_CALL_ENABLE_UD2 + 2));

		entry = monitor_call_entry(MON_CALL_SAVE_FL, pad);
		disasm_call(&m, (unsigned)(entry - MON_CALL_GVA), text, sizeof(text));
		snprintf(want, sizeof(want),
			 "pushfq ;mov rax, qword ptr [rsp];add qword ptr [rsp + 8], %u;and rax, "
			 "0xfffffffffffbcdff;or rax, qword ptr [data+%u];cmp byte ptr [data+%u], "
			 "0;je 0x%llx;or rax, 0x200;popfq ;ret ;",
			 pad, flags, vif, (unsigned long long)(entry + 0x27));
		assert_string_equal(text, want);
	}
	for (unsigned pad = 0; pad <= MON_CALL_MAX_PAD; pad++) {
		check_call_points(&m, MON_CALL_IRQ_DISABLE, pad);
		check_call_points(&m, MON_CALL_IRQ_ENABLE, pad);
		check_call_points(&m, MON_CALL_SAVE_FL, pad);
	}
	check_call_points(&m, MON_CALL_SAVE_FL_IOPL3, 0);
	check_call_points(&m, MON_CALL_RD_KGS, MON_CALL_KGS_PAD);
	check_call_points(&m, MON_CALL_WR_KGS, MON_CALL_KGS_PAD);
	{
		static const struct {
			unsigned fn;
			const char *before, *after; /* the mov, around its data field */
		} kgs_calls[] = {
			{ MON_CALL_RD_KGS, "mov rax, qword ptr [data+", "]" },
			{ MON_CALL_WR_KGS, "mov qword ptr [data+", "], rdi" },
		};

		for (unsigned i = 0; i < ARRAY_SIZE(kgs_calls); i++) {
			disasm_call(&m, kgs_calls[i].fn, text, sizeof(text));
			snprintf(want, sizeof(want),
				 "pushfq ;add qword ptr [rsp + 8], 6;%s%u%s;popfq ;ret ;",
				 kgs_calls[i].before,
				 (unsigned)offsetof(struct mon_call_data, kernel_gs_base),
				 kgs_calls[i].after);
			assert_string_equal(text, want);
		}
		assert_int_equal(monitor_call_entry(MON_CALL_RD_KGS, MON_CALL_KGS_PAD),
				 MON_CALL_GVA + MON_CALL_RD_KGS);
	}
	{
		struct mon_call_point p;

		assert_false(monitor_call_point(&m, MON_CALL_GVA - 1, &p));
		assert_false(monitor_call_point(&m, MON_CALL_DATA_GVA, &p));
		assert_false(monitor_call_point(&m, MON_CALL_GVA + MON_CALL_CODE_END, &p));
	}
	disasm_call(&m, MON_CALL_SAVE_FL_IOPL3, text, sizeof(text));
	assert_string_equal(text, "pushfq ;mov rax, qword ptr [rsp];and rax, 0xffffffffffffcfff;"
				  "popfq ;ret ;");
	/* The mask is exactly the virtual flags of the guest kernel under patch. */
	assert_int_equal(~0xfffffffffffbcdffull, RFLAGS_IF | RFLAGS_IOPL_MASK | RFLAGS_AC);
	/* PT: code read-only and executable, data writable and NX, both user (real CPL3). */
	pt = (const u64 *)(m.region + MON_OFF_CALL_PT);
	assert_int_equal(pt[0], (m.region_mpa.v + MON_OFF_CALL_CODE) | PTE_P | PTE_US);
	assert_int_equal(pt[1],
			 (m.region_mpa.v + MON_OFF_CALL_DATA) | PTE_P | PTE_RW | PTE_US | PTE_NX);
	assert_int_equal(pt[2], 0);
	assert_int_equal(monitor_call_pde(&m) & ~0xfffull, m.region_mpa.v + MON_OFF_CALL_PT);
	/* The PD over it holds only the PT, at the window's index (511). */
	assert_int_equal(monitor_call_pdpte(&m) & ~0xfffull, m.region_mpa.v + MON_OFF_CALL_PD);
	assert_int_equal(rd64(&m, MON_OFF_CALL_PD + 8 * 511), monitor_call_pde(&m));
	assert_int_equal(rd64(&m, MON_OFF_CALL_PD + 8 * 510), 0);
	assert_true(monitor_call_data(&m) == (void *)(m.region + MON_OFF_CALL_DATA));
	monitor_destroy(&m);
}

/*
 * The sync stand-in (monitor.h, MON_CALL_SYNC): its code as capstone reads
 * it, the stage of each instruction, and the slow path's ud2 after its ret.
 */
static void test_call_sync(void **state)
{
	static const enum mon_call_stage stages[] = {
		MON_CALL_SYNC_AT_ENTRY,	  MON_CALL_SYNC_FLAGS_SAVED,	MON_CALL_SYNC_RAX_SAVED,
		MON_CALL_SYNC_RAX_SAVED,  MON_CALL_SYNC_RAX_SAVED,	MON_CALL_SYNC_RAX_SAVED,
		MON_CALL_SYNC_RAX_SAVED,  MON_CALL_SYNC_RAX_SAVED,	MON_CALL_SYNC_RAX_SAVED,
		MON_CALL_SYNC_RAX_SAVED,  MON_CALL_SYNC_RAX_SAVED,	MON_CALL_SYNC_RAX_SAVED,
		MON_CALL_SYNC_RAX_SAVED,  MON_CALL_SYNC_RAX_RETURN_SET, MON_CALL_SYNC_RETURN_SET,
		MON_CALL_SYNC_RETURN_SET, MON_CALL_SYNC_RETURN_SET,	MON_CALL_SYNC_AT_RET,
		MON_CALL_SYNC_RAX_SAVED, /* the ud2 */
	};
	const unsigned cs = offsetof(struct mon_call_data, cs_desc_gva),
		       ss = offsetof(struct mon_call_data, ss_desc_gva),
		       kcs = offsetof(struct mon_call_data, kernel_cs);
	const u64 entry = monitor_call_entry(MON_CALL_SYNC, MON_CALL_SYNC_PAD),
		  ud2 = MON_CALL_GVA + MON_CALL_SYNC + MON_CALL_SYNC_UD2;
	struct monitor m;
	char text[1024], want[1024];
	struct mon_call_point p;
	csh h;
	cs_insn *insn;
	size_t n;

	(void)state;
	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	assert_int_equal(entry, MON_CALL_GVA + MON_CALL_SYNC);
	disasm_call(&m, MON_CALL_SYNC, text, sizeof(text));
	snprintf(want, sizeof(want),
		 "pushfq ;push rax;"
		 "mov rax, qword ptr [data+%u];mov rax, qword ptr [rax];"
		 "cmp rax, qword ptr [data+%u];jne 0x%llx;"
		 "mov rax, qword ptr [data+%u];mov rax, qword ptr [rax];"
		 "cmp rax, qword ptr [data+%u];jne 0x%llx;"
		 "test byte ptr [rsp + 9], 0x40;jne 0x%llx;"
		 "add qword ptr [rsp + 0x10], 0xf;lea rsp, [rsp + 0x10];"
		 "mov rax, rsp;add rax, 8;mov eax, dword ptr [data+%u];ret ;",
		 cs, cs + 8, (unsigned long long)ud2, ss, ss + 8, (unsigned long long)ud2,
		 (unsigned long long)ud2, kcs);
	assert_string_equal(text, want);
	assert_true(monitor_call_is_sync_trap(ud2));
	assert_false(monitor_call_is_sync_trap(ud2 - 1));
	assert_false(monitor_call_is_pending_trap(ud2));
	assert_int_equal(cs + 8, offsetof(struct mon_call_data, cs_desc));
	assert_int_equal(ss + 8, offsetof(struct mon_call_data, ss_desc));

	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	n = cs_disasm(h, m.region + MON_OFF_CALL_CODE + MON_CALL_SYNC, 2 * MON_CALL_SLOT, entry,
		      ARRAY_SIZE(stages), &insn);
	assert_int_equal(n, ARRAY_SIZE(stages));
	for (size_t i = 0; i < n; i++) {
		assert_true(monitor_call_point(&m, insn[i].address, &p));
		assert_int_equal(p.fn, MON_CALL_SYNC);
		assert_int_equal(p.pad, MON_CALL_SYNC_PAD);
		assert_int_equal(p.stage, stages[i]);
		for (unsigned b = 1; b < insn[i].size; b++)
			assert_false(monitor_call_point(&m, insn[i].address + b, &p));
	}
	assert_string_equal(insn[n - 1].mnemonic, "ud2");
	assert_int_equal(insn[n - 1].address, ud2);
	assert_false(monitor_call_point(&m, ud2 + 2, &p));
	cs_free(insn, n);
	cs_close(&h);
	/* The thunks come after it. */
	assert_true(MON_CALL_THUNKS >= MON_CALL_SYNC + 2 * MON_CALL_SLOT);
	monitor_destroy(&m);
}

/*
 * The thunk at `entry`, disassembled up to its slow path's jmp, RIP-relative
 * operands as absolute gvas; the stage of each instruction into `stages`.
 */
static void disasm_thunk(const struct monitor *m, u64 entry, char *out, size_t outlen,
			 enum mon_call_stage *stages, unsigned *nstages)
{
	csh h;
	cs_insn *insn;
	size_t n, used = 0;
	unsigned off = (unsigned)(entry - MON_CALL_GVA), popfqs = 0;

	assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	n = cs_disasm(h, m->region + MON_OFF_CALL_CODE + off, MON_CALL_THUNK_SIZE, entry, 0, &insn);
	assert_true(n > 0);
	out[0] = 0;
	*nstages = 0;
	for (size_t i = 0; i < n; i++) {
		char ops[160];
		const char *rip = strstr(insn[i].op_str, "[rip + 0x");
		const char *neg = strstr(insn[i].op_str, "[rip - 0x");
		struct mon_call_point p;

		snprintf(ops, sizeof(ops), "%s", insn[i].op_str);
		if (rip || neg) {
			const char *at = rip ? rip : neg;
			u64 disp = strtoull(at + 9, NULL, 16);
			u64 next = insn[i].address + insn[i].size;
			u64 target = rip ? next + disp : next - disp;

			snprintf(ops, sizeof(ops), "%.*s[0x%llx]%s", (int)(at - insn[i].op_str),
				 insn[i].op_str, (unsigned long long)target, strchr(at, ']') + 1);
		}
		used += (size_t)snprintf(out + used, outlen - used, "%s %s;", insn[i].mnemonic,
					 ops);
		assert_true(used < outlen);
		assert_true(monitor_call_point(m, insn[i].address, &p));
		assert_int_equal(p.fn, off);
		stages[(*nstages)++] = p.stage;
		for (unsigned b = 1; b < insn[i].size; b++)
			assert_false(monitor_call_point(m, insn[i].address + b, &p));
		if (!strcmp(insn[i].mnemonic, "popfq"))
			popfqs++;
		else if (popfqs == 2) /* the slow path's jmp: the last instruction */
			break;
	}
	cs_free(insn, n);
	cs_close(&h);
}

static void test_call_thunks(void **state)
{
	struct monitor m;
	struct mon_call_thunk t = {
		.slot = 0xffffffff82a01230ull,
		.target = 0xffffffff81001000ull,
		.bytes = 0x000000001234e9faull, /* cli; jmp rel32 */
		.orig = 0x000000001234e9faull,
		.mask = 0x0000ffffffffffffull,
		.ret_byte = 0xffffffff81e00000ull,
		.fn = MON_CALL_IRQ_DISABLE,
	};
	const u64 first = MON_CALL_GVA + MON_CALL_THUNKS;
	const u64 lit = first + MON_CALL_THUNK_SIZE - 24;
	char text[2048], want[2048];
	enum mon_call_stage stages[32];
	static const enum mon_call_stage want_stages[] = {
		MON_CALL_THUNK_AT_ENTRY,   MON_CALL_THUNK_FLAGS_SAVED, MON_CALL_THUNK_RETURN_SET,
		MON_CALL_THUNK_RAX_SAVED,  MON_CALL_THUNK_RAX_SAVED,   MON_CALL_THUNK_RAX_SAVED,
		MON_CALL_THUNK_RAX_SAVED,  MON_CALL_THUNK_RAX_SAVED,   MON_CALL_THUNK_RAX_SAVED,
		MON_CALL_THUNK_RAX_SAVED,  MON_CALL_THUNK_RAX_SAVED,   MON_CALL_THUNK_RAX_SAVED,
		MON_CALL_THUNK_RETURN_SET, MON_CALL_THUNK_RETURN_SET,  MON_CALL_THUNK_AT_JMP,
		MON_CALL_THUNK_RETURN_SET, MON_CALL_THUNK_AT_JMP,
	};
	unsigned n;
	u64 entry, again, lit_at;

	(void)state;
	assert_int_equal(monitor_create(&m, 512 * MiB, 4 * MiB), 0);
	assert_int_equal(monitor_call_thunk(&m, &t, &entry), 0);
	assert_int_equal(entry, first);
	disasm_thunk(&m, entry, text, sizeof(text), stages, &n);
	{
		/* Where the jne's land: the pop, and the slow path's popfq (the second). */
		unsigned long long pop_at = 0, slow_at = 0;
		csh h;
		cs_insn *insn;
		size_t k;

		assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
		k = cs_disasm(h, m.region + MON_OFF_CALL_CODE + MON_CALL_THUNKS,
			      MON_CALL_THUNK_SIZE, first, 0, &insn);
		for (size_t i = 0, popfq = 0; i < k; i++) {
			if (!strcmp(insn[i].mnemonic, "pop"))
				pop_at = insn[i].address;
			if (!strcmp(insn[i].mnemonic, "popfq") && popfq++ == 1)
				slow_at = insn[i].address;
		}
		cs_free(insn, k);
		cs_close(&h);
		snprintf(want, sizeof(want),
			 "pushfq ;add qword ptr [rsp + 8], 1;push rax;mov rax, qword ptr [0x%llx];"
			 "cmp rax, qword ptr [0x%llx];jne 0x%llx;mov rax, qword ptr [rax];"
			 "and rax, qword ptr [0x%llx];cmp rax, qword ptr [0x%llx];jne 0x%llx;"
			 "cmp byte ptr [0x%llx], 0xc3;pop rax;jne 0x%llx;popfq ;jmp 0x%llx;popfq ;"
			 "jmp qword ptr [0x%llx];",
			 (unsigned long long)t.slot, (unsigned long long)lit, pop_at,
			 (unsigned long long)lit + 8, (unsigned long long)lit + 16, pop_at,
			 (unsigned long long)t.ret_byte, slow_at,
			 (unsigned long long)monitor_call_entry(MON_CALL_IRQ_DISABLE, 0),
			 (unsigned long long)t.slot);
		assert_string_equal(text, want);
	}
	assert_int_equal(n, sizeof(want_stages) / sizeof(want_stages[0]));
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(stages[i], want_stages[i]);
	/* The literals: the target, the mask, the bytes under it. */
	lit_at = lit - MON_CALL_GVA;
	assert_int_equal(rd64(&m, MON_OFF_CALL_CODE + lit_at), t.target);
	assert_int_equal(rd64(&m, MON_OFF_CALL_CODE + lit_at + 8), t.mask);
	assert_int_equal(rd64(&m, MON_OFF_CALL_CODE + lit_at + 16), t.bytes & t.mask);
	/* The same thunk again (bytes outside the mask do not count); a new one for another. */
	t.bytes |= 0xcc00000000000000ull;
	assert_int_equal(monitor_call_thunk(&m, &t, &again), 0);
	assert_int_equal(again, first);
	/* Memory now holds a VMM patch in the body (the same orig): the literal follows it. */
	t.bytes = 0x000000001234e9ccull;
	assert_int_equal(monitor_call_thunk(&m, &t, &again), 0);
	assert_int_equal(again, first);
	assert_int_equal(rd64(&m, MON_OFF_CALL_CODE + lit_at + 16), t.bytes & t.mask);
	monitor_call_thunk_rebytes(&m, 0, 0xff0000001234e9faull);
	assert_int_equal(rd64(&m, MON_OFF_CALL_CODE + lit_at + 16), 0x000000001234e9faull);
	assert_int_equal(m.thunks[0].bytes, 0x000000001234e9faull);
	t.bytes = 0x000000001234e9faull;
	t.ret_byte = 0; /* a body that ends in ret: no cmpb */
	t.fn = MON_CALL_SAVE_FL;
	assert_int_equal(monitor_call_thunk(&m, &t, &again), 0);
	assert_int_equal(again, first + MON_CALL_THUNK_SIZE);
	disasm_thunk(&m, again, text, sizeof(text), stages, &n);
	assert_null(strstr(text, "cmp byte ptr"));
	assert_non_null(strstr(text, "jmp 0x"));
	assert_int_equal(n, sizeof(want_stages) / sizeof(want_stages[0]) - 2);
	/* A direct site's thunk: the body's bytes read at the target, `jmp body` as slow path. */
	{
		struct mon_call_thunk d = t;

		d.slot = 0;
		d.ret_byte = 0xffffffff81e00000ull;
		d.fn = MON_CALL_IRQ_ENABLE;
		assert_int_equal(monitor_call_thunk(&m, &d, &again), 0);
		assert_int_equal(again, first + 2 * MON_CALL_THUNK_SIZE);
		disasm_thunk(&m, again, text, sizeof(text), stages, &n);
		assert_null(strstr(text, "add qword ptr [rsp + 8]"));
		snprintf(want, sizeof(want), "pushfq ;push rax;mov rax, qword ptr [0x%llx];",
			 (unsigned long long)d.target);
		assert_true(strncmp(text, want, strlen(want)) == 0);
		assert_non_null(strstr(text, "cmp byte ptr [0xffffffff81e00000], 0xc3;"));
		snprintf(want, sizeof(want), "popfq ;jmp 0x%llx;popfq ;",
			 (unsigned long long)monitor_call_entry(MON_CALL_IRQ_ENABLE, 0));
		assert_non_null(strstr(text, want));
		/* The slow path: to the body. */
		snprintf(want, sizeof(want), "jmp 0x%llx;", (unsigned long long)d.target);
		assert_non_null(strstr(text, want));
		assert_int_equal(stages[0], MON_CALL_THUNK_AT_ENTRY);
		assert_int_equal(stages[1], MON_CALL_THUNK_FLAGS_SAVED);
		assert_int_equal(stages[2], MON_CALL_THUNK_RAX_SAVED);
		{
			struct mon_call_point p;

			assert_true(monitor_call_point(&m, again, &p));
			assert_int_equal(p.pad, 0);
			assert_true(monitor_call_point(&m, first, &p));
			assert_int_equal(p.pad, 1);
		}
		d.target = 0x00007fff00001000ull; /* the body out of reach */
		assert_int_equal(monitor_call_thunk(&m, &d, &again), -ERANGE);
	}
	/* Out of a disp32's reach from the window; then the page full. */
	t.slot = 0x00007fff00000000ull;
	assert_int_equal(monitor_call_thunk(&m, &t, &again), -ERANGE);
	t.slot = 0xffffffff82a01230ull;
	t.ret_byte = 0xffff888000000000ull;
	assert_int_equal(monitor_call_thunk(&m, &t, &again), -ERANGE);
	t.ret_byte = 0;
	for (unsigned i = 3; i < MON_CALL_MAX_THUNKS; i++) {
		t.target += 0x40;
		assert_int_equal(monitor_call_thunk(&m, &t, &again), 0);
		assert_int_equal(again, first + i * MON_CALL_THUNK_SIZE);
		assert_true(again + MON_CALL_THUNK_SIZE <= MON_CALL_GVA + PAGE_SIZE);
	}
	t.target += 0x40;
	assert_int_equal(monitor_call_thunk(&m, &t, &again), -ENOSPC);
	monitor_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placement),      cmocka_unit_test(test_tables_and_stubs),
		cmocka_unit_test(test_prepare_return), cmocka_unit_test(test_user_segs),
		cmocka_unit_test(test_cpunode),	       cmocka_unit_test(test_call_window),
		cmocka_unit_test(test_call_thunks),    cmocka_unit_test(test_call_sync),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
