/* SPDX-License-Identifier: MIT */
/* syscall/sysret set-up and dispatch (SDM 3A 5.8.8), running user blobs. */
#include "arch.h"
#include "cpu.h"
#include "gdt.h"
#include "lib.h"
#include "paging.h"
#include "pmm.h"
#include "user.h"

struct syscall_probe last_probe;
int (*syscall_hook)(struct trap_frame *f);
extern char syscall_entry[];

void syscall_init(void)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	wrmsr(MSR_STAR, STAR_VALUE);
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	wrmsr(MSR_SFMASK, SFMASK_VALUE);
	/*
	 * The guest's own values read back: in hw mode on PVM hosts the real
	 * LSTAR is umbra's entry page (vmm/hw_syscall.h), which a read must not
	 * show; in shadow mode all three are the monitor's copies.
	 */
	if (rdmsr(MSR_LSTAR) != (uint64_t)syscall_entry || rdmsr(MSR_STAR) != STAR_VALUE ||
	    rdmsr(MSR_SFMASK) != SFMASK_VALUE)
		panic("syscall MSRs read back LSTAR 0x%lx STAR 0x%lx SFMASK 0x%lx", rdmsr(MSR_LSTAR),
		      rdmsr(MSR_STAR), rdmsr(MSR_SFMASK));
}

/* Returns 0 to go back with sysretq, 1 to iretq through the (edited) frame. */
int syscall_dispatch(struct trap_frame *f)
{
	if (syscall_hook && syscall_hook(f))
		return 1; /* a process's call (proc.c), returns by iretq */
	switch (f->rax) {
	case SYS_EXIT:
		if (catch_event(f))
			return 1;
		panic("user exit(0x%lx) with nobody waiting", f->rdi);
	case SYS_PROBE:
		last_probe.hit = 1;
		last_probe.frame = *f;
		last_probe.kernel_rflags = read_rflags();
		f->rax = SYS_PROBE_RET;
		return 0;
	default:
		f->rax = (uint64_t)-1;
		return 0;
	}
}

void user_map(uint64_t root, const char *start, const char *end)
{
	uint64_t code = pmm_alloc_zeroed(), stack = pmm_alloc_zeroed();

	memcpy(phys_to_virt(code), start, end - start);
	pt_map(root, USER_CODE_VA, code, PTE_US, LVL_PT);
	pt_map(root, USER_STACK_TOP - PAGE_SIZE, stack, PTE_US | PTE_RW | (cpu.nx ? PTE_NX : 0),
	       LVL_PT);
}

void user_run(struct catch *c, uint64_t a0, uint64_t a1)
{
	user_run_irq(c, 0, a0, a1);
}

void user_run_irq(struct catch *c, uint64_t irq_vector, uint64_t a0, uint64_t a1)
{
	if (CATCH_IRQ(c, irq_vector))
		enter_user(USER_CODE_VA, USER_STACK_TOP, a0, a1);
	catch_disarm();
}
