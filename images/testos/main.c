/* SPDX-License-Identifier: MIT */
/*
 * testos: an MMU conformance guest for Umbra. kmain() brings the kernel up
 * in this order, then runs the test registry (test.c):
 *   1. check the boot contract (magic in RSI and in the boot info) and copy
 *      the boot info and command line out of the boot area;
 *   2. CPUID features, the physical page allocator over the memory map;
 *   3. own GDT + TSS, IDT;
 *   4. own page tables (direct map of RAM, kernel image, LAPIC), CR3 switched
 *      away from the boot and early tables;
 *   5. syscall MSRs, LAPIC timer (periodic, 100 Hz, PIT-calibrated).
 * Command line: test=, skip=, times (test.h); seed=, ops= (stress test);
 * bench=, iters= (bench.h: run workloads instead of the tests).
 */
#include <umbra/bootinfo.h>

#include "arch.h"
#include "bench.h"
#include "console.h"
#include "cpu.h"
#include "gdt.h"
#include "lapic.h"
#include "lib.h"
#include "paging.h"
#include "pmm.h"
#include "test.h"
#include "trap.h"
#include "user.h"

#define TIMER_HZ 100

extern char _kernel_end[];

static struct umbra_boot_info boot_info;
static char cmdline[UMBRA_BOOT_CMDLINE_MAX];

/* The boot info is read through the early identity map of the first GiB. */
static void copy_boot_info(uint64_t info_pa, uint64_t magic)
{
	const struct umbra_boot_info *bi = (const struct umbra_boot_info *)info_pa;

	if (magic != UMBRA_BOOT_MAGIC || bi->magic != UMBRA_BOOT_MAGIC ||
	    bi->version != UMBRA_BOOT_INFO_VERSION || bi->nr_mem > UMBRA_BOOT_MAX_MEM_ENTRIES) {
		kprintf("testos: bad boot magic 0x%lx or boot info\n", magic);
		debug_exit(EXIT_BAD_BOOT);
	}
	boot_info = *bi;
	if (bi->cmdline && bi->cmdline_len < sizeof(cmdline))
		memcpy(cmdline, (const char *)bi->cmdline, bi->cmdline_len);
}

void kmain(uint64_t info_pa, uint64_t magic);
void kmain(uint64_t info_pa, uint64_t magic)
{
	console_init();
	copy_boot_info(info_pa, magic);
	kprintf("testos: cmdline: %s\n", cmdline);
	for (uint32_t i = 0; i < boot_info.nr_mem; i++)
		kprintf("mem: [0x%lx-0x%lx] %s\n", boot_info.mem[i].addr,
			boot_info.mem[i].addr + boot_info.mem[i].len - 1,
			boot_info.mem[i].type == UMBRA_MEM_RAM ? "ram" : "reserved");
	cpu_detect();
	cpu_print();
	if (cpu.nx)
		wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	pmm_init(boot_info.mem, boot_info.nr_mem, kimg_to_phys(_kernel_end));
	gdt_init();
	idt_init();
	paging_init(boot_info.mem, boot_info.nr_mem, lapic_phys_base());
	kprintf("paging: kernel PML4 at 0x%lx, %lu free frames\n", kernel_pml4, pmm_free_frames());
	/*
	 * claim_slot509=1 tests the VMM, not the MMU: a mapping in PML4 slot 509
	 * (0xfffffe8000000000) before the LSTAR write. On PVM hosts umbra's hw
	 * mode reserves that slot for its syscall entry (vmm/hw_syscall.h) and
	 * stops the VM with status 14, saying so.
	 */
	if (cmdline_value(cmdline, "claim_slot509"))
		pt_map(kernel_pml4, 0xfffffe8000000000ull, pmm_alloc_zeroed(), PTE_P | PTE_RW, LVL_PT);
	syscall_init();
	lapic_init();
	lapic_timer_start(TIMER_HZ);
	if (cmdline_value(cmdline, "bench"))
		bench_run(cmdline); /* the workloads instead of the tests (bench.h) */
	tests_run(cmdline);
}
