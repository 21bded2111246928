// SPDX-License-Identifier: MIT
/*
 * The start-up host probe and the strategy it picks (vmm/host_probe.h).
 *
 * 1. host_probe_build lays out the scratch guest: GDT, IDT, TSS, 4-level
 *    tables and the code below, all in one 64 KiB memslot at gpa 0.
 * 2. host_probe_run makes the scratch VM (no irqchip: no interrupt can
 *    arrive, so nothing but our own code runs), enters the CPL0 code at
 *    HP_OFF_TO_USER, and answers each `out` as it comes; an exception stub's
 *    report makes the current step unknown and restarts at the next one.
 *    At most HP_MAX_RUNS KVM_RUNs: the guest never loops.
 * 3. host_probe_strategy: pure, from the answers to struct shadow_strategy.
 *
 * Cost on our PVM hosts (shared/HOST.md): four `out` exits, one #UD round
 * trip, a dozen emulated CPL0 instructions and ~10 ioctls; measured 2-12 ms
 * for the whole probe, creation and destruction included (2026-11-22).
 */
#include <cpuid.h>
#include <errno.h>
#include <stdarg.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shadow/x86.h"
#include "umbra/log.h"
#include "vmm/exitcode.h"
#include "vmm/host_probe.h"
#include "vmm/monitor.h"
#include "vmm/vm.h"

#define HP_MAX_RUNS 16
#define HP_TSS_GPA  0xfffbd000ull /* KVM_SET_TSS_ADDR: VMX wants it; outside our slot */

/* ---- item 1: the guest ------------------------------------------------------ */

/*
 * The guest code at HP_CODE, assembled by hand (GNU as syntax in the
 * comments); the HP_OFF_* offsets in host_probe.h index into it, and
 * tests/unit/test_host_probe.c checks them against these bytes.
 */
static const u8 probe_code[] = {
	/* 0x00 to_user (CPL0, RSP = HP_KSTACK_TOP, RBX = the CPL3 target) */
	0x6a, 0x23,		      /* push $HP_SEL_UDATA (SS) */
	0x68, 0x00, 0xe0, 0x00, 0x00, /* push $HP_USTACK_TOP (RSP) */
	0x68, 0x02, 0x30, 0x00, 0x00, /* push $HP_IRET_RFLAGS: IOPL=3, IF=0 */
	0x6a, 0x2b,		      /* push $HP_SEL_UCODE (CS) */
	0x53,			      /* push %rbx (RIP) */
	0x48, 0xcf,		      /* iretq */
	/* 0x11 step iopl3 (CPL3) */
	0x9c,	    /* pushfq */
	0x58,	    /* pop %rax */
	0xe7, 0x10, /* out %eax, $HP_PORT_RFLAGS */
	/* 0x15 step pt (CPL3) */
	0x0f, 0xb6, 0x04, 0x25, 0x00, 0x00, 0x01, 0x00, /* movzbl HP_PROBE_VA, %eax */
	0x0f, 0x0b,					/* 0x1d ud2: to pt_trap */
	0x0f, 0xb6, 0x04, 0x25, 0x00, 0x00, 0x01, 0x00, /* movzbl HP_PROBE_VA, %eax */
	0xe6, 0x12,					/* out %al, $HP_PORT_PT_AFTER */
	/*
	 * 0x29 step fsgsbase (CPL3; CR4.FSGSBASE is 0): a #UD goes to
	 * pt_trap, whose frame RIP tells it apart from step pt's
	 */
	0xf3, 0x48, 0x0f, 0xae, 0xc8, /* rdgsbase %rax */
	0xe7, 0x14,		      /* out %eax, $HP_PORT_FSGSBASE */
	/* 0x30 step syscall (CPL3) */
	0x0f, 0x05, /* syscall */
	0x0f, 0x0b, /* ud2 (never reached: LSTAR does not return) */
	/* 0x34 LSTAR (CPL0 on VMX/SVM hosts, CPL3 on PVM) */
	0x8c, 0xc8, /* mov %cs, %eax: RPL == CPL */
	0xe7, 0x13, /* out %eax, $HP_PORT_SYSCALL */
	0x0f, 0x0b, /* ud2 (the VMM does not run the vCPU again) */
	/*
	 * 0x3a pt_trap: the #UD handler (CPL0), the monitor's round trip in
	 * small: exit to the VMM (which stores the PTE), reload CR3, iretq
	 * past the ud2. The VMM checks the frame's RIP: a #UD anywhere else
	 * is an unexpected exception.
	 */
	0xe6, 0x11,		      /* out %al, $HP_PORT_PT_BEFORE */
	0x0f, 0x20, 0xd8,	      /* mov %cr3, %rax */
	0x0f, 0x22, 0xd8,	      /* mov %rax, %cr3 */
	0x48, 0x83, 0x04, 0x24, 0x02, /* addq $2, (%rsp) */
	0x48, 0xcf,		      /* iretq */
};

_Static_assert(sizeof(probe_code) <= HP_OFF_STUBS, "probe code overlaps the stubs");

static void wr64(u8 *mem, u64 gpa, u64 v)
{
	memcpy(mem + gpa, &v, sizeof(v));
}

/* A 64-bit interrupt gate (type 0xe, DPL0) to `handler` on HP_SEL_KCODE. */
static void set_gate(u8 *mem, unsigned vector, u64 handler)
{
	u64 lo = (handler & 0xffff) | ((u64)HP_SEL_KCODE << 16) | (0x8eull << 40) |
		 ((handler >> 16 & 0xffff) << 48);

	wr64(mem, HP_IDT + vector * 16u, lo);
	wr64(mem, HP_IDT + vector * 16u + 8, handler >> 32);
}

void host_probe_build(u8 *mem)
{
	/* GDT: null, kcode64, kdata, ucode32 (STAR's sysret base), udata, ucode64, TSS. */
	wr64(mem, HP_GDT + 0x08, 0x00af9a000000ffffull);
	wr64(mem, HP_GDT + 0x10, 0x00cf92000000ffffull);
	wr64(mem, HP_GDT + 0x18, 0x00cffa000000ffffull);
	wr64(mem, HP_GDT + 0x20, 0x00cff2000000ffffull);
	wr64(mem, HP_GDT + 0x28, 0x00affa000000ffffull);
	wr64(mem, HP_GDT + HP_SEL_TSS,
	     HP_TSS_LIMIT | ((u64)HP_TSS << 16) | (0x89ull << 40)); /* base < 16 MiB */
	wr64(mem, HP_GDT + HP_SEL_TSS + 8, 0);

	/*
	 * TSS: RSP0 for traps from CPL3; the I/O bitmap right after the 104
	 * bytes allows ports 0-127 (a host that honours IOPL=3 does not need
	 * it, a host that forces IOPL=0 at CPL3 without PVM's exits would).
	 */
	wr64(mem, HP_TSS + 4, HP_KSTACK_TOP);
	mem[HP_TSS + 102] = 104;
	mem[HP_TSS + HP_TSS_LIMIT] = 0xff;

	/* IDT: vectors 0-31 to the reporting stubs, but #UD to pt_trap. */
	for (unsigned v = 0; v < HP_NR_EXC; v++) {
		u8 *stub = mem + HP_CODE + HP_OFF_STUBS + v * HP_STUB_SIZE;

		stub[0] = 0xb0; /* mov $v, %al */
		stub[1] = (u8)v;
		stub[2] = 0xe6; /* out %al, $HP_PORT_EXC */
		stub[3] = HP_PORT_EXC;
		stub[4] = 0xf4; /* hlt */
		stub[5] = 0xeb; /* jmp .-3 (the hlt) */
		stub[6] = 0xfd;
		stub[7] = 0x90;
		set_gate(mem, v, HP_CODE + HP_OFF_STUBS + v * HP_STUB_SIZE);
	}
	set_gate(mem, HP_PT_VECTOR, HP_CODE + HP_OFF_PT_TRAP);

	/* Tables: identity map of the slot's first 16 pages, U=1; HP_PROBE_VA -> page A. */
	wr64(mem, HP_PML4, HP_PDPT | HP_PTE_FLAGS);
	wr64(mem, HP_PDPT, HP_PD | HP_PTE_FLAGS);
	wr64(mem, HP_PD, HP_PT | HP_PTE_FLAGS);
	for (u64 i = 0; i < HP_MEM_SIZE / PAGE_SIZE; i++)
		wr64(mem, HP_PT + i * 8, (i * PAGE_SIZE) | HP_PTE_FLAGS);
	wr64(mem, HP_PROBE_PTE, HP_PAGE_A | HP_PTE_FLAGS);
	memset(mem + HP_PAGE_A, HP_BYTE_A, PAGE_SIZE);
	memset(mem + HP_PAGE_B, HP_BYTE_B, PAGE_SIZE);

	memcpy(mem + HP_CODE, probe_code, sizeof(probe_code));
}

void host_probe_store_pte(u8 *mem)
{
	/* A plain store through the VMM's mapping: exactly what shadow mode would do. */
	wr64(mem, HP_PROBE_PTE, HP_PAGE_B | HP_PTE_FLAGS);
}

enum host_answer host_probe_decide_iopl3(u64 rflags)
{
	bool if_kept = !(rflags & RFLAGS_IF);
	bool iopl_kept = ((rflags & RFLAGS_IOPL_MASK) >> RFLAGS_IOPL_SHIFT) == 3;

	return if_kept && iopl_kept ? HOST_YES : HOST_NO;
}

enum host_answer host_probe_decide_pt(u8 before, u8 after)
{
	/* Anything but page A's byte first, or neither page's after, is not an answer. */
	if (before != HP_BYTE_A)
		return HOST_UNKNOWN;
	if (after == HP_BYTE_B)
		return HOST_YES;
	if (after == HP_BYTE_A)
		return HOST_NO;
	return HOST_UNKNOWN;
}

int host_probe_decide_cpl(u16 cs)
{
	return cs & 3;
}

/* ---- item 2: the scratch VM ------------------------------------------------ */

struct scratch {
	int vm_fd, vcpu_fd;
	u8 *mem;
	struct kvm_run *run;
	size_t run_size;
};

enum probe_step { STEP_IOPL3, STEP_PT, STEP_FSGSBASE, STEP_SYSCALL, STEP_DONE };

static const char *const step_names[] = { "iopl3", "pt", "fsgsbase", "syscall" };
static const unsigned step_entry[] = { HP_OFF_IOPL3, HP_OFF_PT, HP_OFF_FSGSBASE, HP_OFF_SYSCALL };

static void note(struct host_probe *p, const char *fmt, ...) __printf(2, 3);
static void note(struct host_probe *p, const char *fmt, ...)
{
	size_t len = strlen(p->note);
	va_list ap;

	if (len + 3 >= sizeof(p->note))
		return;
	if (len)
		len += (size_t)snprintf(p->note + len, sizeof(p->note) - len, "; ");
	va_start(ap, fmt);
	vsnprintf(p->note + len, sizeof(p->note) - len, fmt, ap);
	va_end(ap);
}

static int scratch_create(int kvm_fd, struct scratch *s)
{
	int size;

	s->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (s->vm_fd < 0) {
		pr_err("host probe: KVM_CREATE_VM: %s", strerror(errno));
		return errno == ENOMEM ? UMBRA_EXIT_INTERNAL : UMBRA_EXIT_NO_KVM;
	}
	s->mem = mmap(NULL, HP_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->mem == MAP_FAILED) {
		s->mem = NULL;
		pr_err("host probe: cannot map %u KiB: %s", HP_MEM_SIZE >> 10, strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	host_probe_build(s->mem);
	struct kvm_userspace_memory_region slot = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = HP_MEM_SIZE,
		.userspace_addr = (u64)(uintptr_t)s->mem,
	};
	if (ioctl(s->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0 ||
	    ioctl(s->vm_fd, KVM_SET_TSS_ADDR, HP_TSS_GPA) < 0) {
		pr_err("host probe: scratch VM memory: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	s->vcpu_fd = ioctl(s->vm_fd, KVM_CREATE_VCPU, 0);
	if (s->vcpu_fd < 0) {
		pr_err("host probe: KVM_CREATE_VCPU: %s", strerror(errno));
		return errno == ENOMEM ? UMBRA_EXIT_INTERNAL : UMBRA_EXIT_NO_KVM;
	}
	size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0) {
		pr_err("host probe: KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	s->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, s->vcpu_fd, 0);
	if (s->run == MAP_FAILED) {
		s->run = NULL;
		pr_err("host probe: cannot map the vCPU's kvm_run: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	s->run_size = (size_t)size;
	return 0;
}

static void scratch_destroy(struct scratch *s)
{
	if (s->run)
		munmap(s->run, s->run_size);
	if (s->vcpu_fd >= 0)
		close(s->vcpu_fd);
	if (s->mem)
		munmap(s->mem, HP_MEM_SIZE);
	if (s->vm_fd >= 0)
		close(s->vm_fd);
}

/* The CPUID KVM supports (without it some hosts refuse EFER.LME or SCE); best effort. */
static void scratch_cpuid(int kvm_fd, struct scratch *s)
{
	struct {
		struct kvm_cpuid2 c;
		struct kvm_cpuid_entry2 e[128];
	} cpuid = { .c.nent = 128 };

	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &cpuid) == 0)
		(void)ioctl(s->vcpu_fd, KVM_SET_CPUID2, &cpuid);
}

/* Long mode at CPL0 on the scratch tables, the syscall MSRs, RIP at to_user. */
static int scratch_enter(struct scratch *s, struct host_probe *p, bool *msrs_ok)
{
	struct kvm_sregs sr;
	struct kvm_regs r = { .rip = HP_CODE + HP_OFF_TO_USER,
			      .rbx = HP_CODE + HP_OFF_IOPL3,
			      .rsp = HP_KSTACK_TOP,
			      .rflags = 2 };
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry e[3];
	} msrs = { .m.nmsrs = 3,
		   .e = { { .index = 0xc0000081, .data = HP_STAR },
			  { .index = 0xc0000082, .data = HP_LSTAR },
			  { .index = 0xc0000084, .data = HP_SFMASK } } };
	struct kvm_segment cs = { .limit = 0xffffffff,
				  .selector = HP_SEL_KCODE,
				  .type = 11,
				  .present = 1,
				  .s = 1,
				  .l = 1,
				  .g = 1 };
	struct kvm_segment ds = { .limit = 0xffffffff,
				  .selector = HP_SEL_KDATA,
				  .type = 3,
				  .present = 1,
				  .s = 1,
				  .db = 1,
				  .g = 1 };

	if (ioctl(s->vcpu_fd, KVM_GET_SREGS, &sr) < 0)
		goto fail;
	sr.cs = cs;
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = ds;
	sr.tr = (struct kvm_segment){ .base = HP_TSS,
				      .limit = HP_TSS_LIMIT,
				      .selector = HP_SEL_TSS,
				      .type = 11,
				      .present = 1 };
	sr.gdt.base = HP_GDT;
	sr.gdt.limit = HP_GDT_LIMIT;
	sr.idt.base = HP_IDT;
	sr.idt.limit = HP_IDT_LIMIT;
	sr.cr0 = 0x80050033; /* PG, AM, WP, NE, ET, MP, PE */
	sr.cr3 = HP_PML4;
	sr.cr4 = 0x20;	 /* PAE */
	sr.efer = 0x501; /* LMA, LME, SCE */
	if (ioctl(s->vcpu_fd, KVM_SET_SREGS, &sr) < 0 || ioctl(s->vcpu_fd, KVM_SET_REGS, &r) < 0)
		goto fail;
	*msrs_ok = ioctl(s->vcpu_fd, KVM_SET_MSRS, &msrs) == 3;
	if (!*msrs_ok)
		note(p, "syscall: KVM_SET_MSRS of STAR/LSTAR/SFMASK failed");
	return 0;
fail:
	pr_err("host probe: setting the scratch vCPU's registers: %s", strerror(errno));
	return UMBRA_EXIT_INTERNAL;
}

/*
 * Start `step` afresh from CPL0, a trap having ended the one before (the
 * vCPU sits in a trap handler); nothing to do once `last` is reached.
 * False, with a note, if the vCPU's registers cannot be set.
 */
static bool restart_at(struct scratch *s, struct host_probe *p, enum probe_step step,
		       enum probe_step last)
{
	struct kvm_regs r = { .rip = HP_CODE + HP_OFF_TO_USER, .rsp = HP_KSTACK_TOP, .rflags = 2 };

	if (step >= last)
		return true;
	r.rbx = HP_CODE + step_entry[step];
	if (ioctl(s->vcpu_fd, KVM_SET_REGS, &r) == 0)
		return true;
	note(p, "%s: KVM_SET_REGS: %s", step_names[step], strerror(errno));
	return false;
}

/*
 * The RIP of the frame an exception stub's trap pushed on HP_KSTACK_TOP
 * (always a CPL3 -> CPL0 switch or the CPL0 stack itself: TSS.RSP0 is the
 * top, and the stubs never return, so each trap starts from the top).
 */
static u64 frame_rip(const u8 *mem, unsigned vector)
{
	u64 rip;

	memcpy(&rip, mem + HP_KSTACK_TOP - 40 - (monitor_vector_has_error_code(vector) ? 8 : 0),
	       sizeof(rip));
	return rip;
}

static u32 io_value(const struct kvm_run *run)
{
	u32 v = 0;

	memcpy(&v, (const u8 *)run + run->io.data_offset, MIN(run->io.size, (u8)sizeof(v)));
	return v;
}

/* Item 2's loop: run until every step is answered or cannot be. */
static void scratch_run(struct scratch *s, struct host_probe *p, bool msrs_ok)
{
	enum probe_step step = STEP_IOPL3;
	enum probe_step last = msrs_ok ? STEP_DONE : STEP_SYSCALL;
	bool have_before = false;
	u64 ud_rip;

	for (int runs = 0; step < last; runs++) {
		struct kvm_run *run = s->run;
		u32 v;

		if (runs == HP_MAX_RUNS) {
			note(p, "%s: no answer after %d runs", step_names[step], runs);
			return;
		}
		if (ioctl(s->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				runs--; /* a signal (handled by init.c's handlers): retry */
				continue;
			}
			note(p, "%s: KVM_RUN: %s", step_names[step], strerror(errno));
			return;
		}
		if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT) {
			note(p, "%s: unexpected exit reason %u", step_names[step],
			     run->exit_reason);
			return;
		}
		v = io_value(run);
		switch (run->io.port) {
		case HP_PORT_RFLAGS:
			p->rflags = v;
			p->iopl3 = host_probe_decide_iopl3(v);
			step = STEP_PT;
			break;
		case HP_PORT_PT_BEFORE: /* pt_trap: a #UD, step pt's ud2 or another */
			ud_rip = frame_rip(s->mem, HP_PT_VECTOR);
			if (step == STEP_FSGSBASE && ud_rip == HP_CODE + HP_OFF_FSGSBASE) {
				p->cpl3_fsgsbase = HOST_NO; /* #UD: the guest's CR4 applies */
				step = STEP_SYSCALL;
				if (!restart_at(s, p, step, last))
					return;
				break;
			}
			if (ud_rip != HP_CODE + HP_OFF_PT_UD2) {
				v = HP_PT_VECTOR; /* a #UD elsewhere: see HP_PORT_EXC */
				goto exception;
			}
			p->pt_before = (u8)v;
			have_before = true;
			host_probe_store_pte(s->mem);
			break;
		case HP_PORT_PT_AFTER:
			p->pt_after = (u8)v;
			if (have_before)
				p->pt_stores_seen = host_probe_decide_pt(p->pt_before, p->pt_after);
			if (p->pt_stores_seen == HOST_UNKNOWN)
				note(p, "pt: read 0x%02x then 0x%02x", p->pt_before, p->pt_after);
			step = STEP_FSGSBASE;
			break;
		case HP_PORT_FSGSBASE:
			p->cpl3_fsgsbase = HOST_YES;
			step = STEP_SYSCALL;
			break;
		case HP_PORT_SYSCALL:
			p->syscall_cs = (u16)v;
			p->syscall_cpl = host_probe_decide_cpl(p->syscall_cs);
			step = STEP_DONE;
			break;
		case HP_PORT_EXC:
		exception:
			note(p, "%s: exception %u at rip 0x%llx", step_names[step], v & 0xff,
			     (unsigned long long)frame_rip(s->mem, v & 0xff));
			step++;
			if (!restart_at(s, p, step, last))
				return;
			break;
		default:
			note(p, "%s: unexpected out to port 0x%x", step_names[step], run->io.port);
			return;
		}
	}
}

bool host_signature_is_tcg(u32 ebx, u32 ecx, u32 edx)
{
	char sig[13];

	memcpy(sig, &ebx, 4);
	memcpy(sig + 4, &ecx, 4);
	memcpy(sig + 8, &edx, 4);
	sig[12] = 0;
	return !strcmp(sig, "TCGTCGTCGTCG");
}

/* The hypervisor this VMM itself runs under, if any (CPUID.1:ECX[31]). */
static bool host_is_tcg(void)
{
	u32 a, b, c, d;

	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 31)))
		return false;
	__cpuid(0x40000000, a, b, c, d);
	return host_signature_is_tcg(b, c, d);
}

int host_probe_run(int kvm_fd, struct host_probe *out)
{
	struct scratch s = { .vm_fd = -1, .vcpu_fd = -1 };
	double t0 = stats_now();
	bool msrs_ok = false;
	int r;

	memset(out, 0, sizeof(*out));
	out->iopl3 = out->pt_stores_seen = out->cpl3_fsgsbase = HOST_UNKNOWN;
	out->syscall_cpl = -1;
	r = scratch_create(kvm_fd, &s);
	if (!r) {
		scratch_cpuid(kvm_fd, &s);
		r = scratch_enter(&s, out, &msrs_ok);
	}
	if (!r)
		scratch_run(&s, out, msrs_ok);
	scratch_destroy(&s);
	out->qemu_tcg = host_is_tcg();
	out->probe_ms = (stats_now() - t0) * 1e3;
	return r;
}

/* ---- item 3: the strategy ------------------------------------------------- */

int host_probe_strategy(const struct host_probe *p, enum sensitive_choice want,
			struct shadow_strategy *s)
{
	int r = 0;

	memset(s, 0, sizeof(*s));
	/*
	 * IOPL 3 wherever the host honours it, unless the user asks for
	 * patching (to compare the two on one host). Patching is exact on
	 * every host; an unknown answer is not taken for a yes.
	 */
	if (want == SENSITIVE_IOPL3 && p->iopl3 != HOST_YES)
		r = -1;
	if (p->iopl3 == HOST_YES && want != SENSITIVE_PATCH) {
		s->sensitive = SHADOW_SENSITIVE_IOPL3;
	} else {
		s->sensitive = SHADOW_SENSITIVE_PATCH;
		if (p->iopl3 == HOST_YES)
			s->sensitive_note = "--sensitive=patch: iopl3 would do here";
	}
	if (s->sensitive == SHADOW_SENSITIVE_IOPL3) {
		/* The real IF masks interrupts: the TPR has nothing to add. */
		s->tpr_masking = false;
		s->tpr_note = "not needed: the guest kernel's own IF is the real one (iopl3)";
	} else {
		s->tpr_masking = true;
		s->tpr_by_ioctl = p->qemu_tcg;
		if (p->qemu_tcg)
			s->tpr_note =
				"set through KVM, not CR8: the host is QEMU TCG, whose nested "
				"SVM aborts on guest CR8 writes";
	}
	/* Replaying through the vCPU is right on every host; direct stores only where seen. */
	s->stores = SHADOW_STORES_REPLAY;
	if (p->pt_stores_seen == HOST_YES)
		s->stores_note = "direct stores would do here: not implemented";
	switch (p->syscall_cpl) {
	case 3: s->syscall_entry = SHADOW_SYSCALL_CPL3; break;
	case 0:
		s->syscall_entry = SHADOW_SYSCALL_CPL0;
		s->syscall_note = "through the #UD gate's IST; run on nested SVM only";
		break;
	default:
		s->syscall_entry = SHADOW_SYSCALL_UNKNOWN;
		s->syscall_note = "arrival CPL not measured: CPL3 arrival is tested, CPL0 arrival "
				  "(the #UD gate's IST) is not";
		break;
	}
	return r;
}

const char *host_answer_name(enum host_answer a)
{
	return a == HOST_YES ? "yes" : a == HOST_NO ? "no" : "unknown";
}

const char *shadow_sensitive_name(enum shadow_sensitive_strategy s)
{
	return s == SHADOW_SENSITIVE_IOPL3 ? "iopl3: cli/sti native, pushf/popf patched"
					   : "patch pushf/popf";
}

const char *shadow_stores_name(enum shadow_store_strategy s)
{
	(void)s;
	return "vcpu replays shadow stores";
}

const char *shadow_syscall_entry_name(enum shadow_syscall_entry e)
{
	switch (e) {
	case SHADOW_SYSCALL_CPL3: return "cpl3 arrival";
	case SHADOW_SYSCALL_CPL0: return "cpl0 arrival";
	default: return "unknown";
	}
}

/* ---- the init step ------------------------------------------------------------ */

static void with_note(char *buf, size_t len, const char *name, const char *note_text)
{
	if (note_text)
		snprintf(buf, len, "%s (%s)", name, note_text);
	else
		snprintf(buf, len, "%s", name);
}

/*
 * hw mode: where a guest's syscall from user mode arrives still at CPL3
 * (PVM, shared/HOST.md), the guest kernel's syscall entry would run at CPL3
 * and fault; vmm/hw_syscall.c works around it. The probe (a few ms) says
 * whether it must; hw mode uses only that answer, so none is reported.
 */
static int hw_user_mode_check(struct vm *vm)
{
	if (host_probe_run(vm->kvm_fd, &vm->host))
		vm->host.syscall_cpl = -1; /* a probe that fails: assume a host like VMX's */
	return 0;
}

int host_probe_setup(struct vm *vm)
{
	struct host_probe *p = &vm->host;
	struct shadow_strategy *s = &vm->strategy;
	char sens[128], stores[128], sys[160];
	int r;

	if (vm->opts->mmu != MMU_SHADOW)
		return hw_user_mode_check(vm);
	r = host_probe_run(vm->kvm_fd, p);
	if (r)
		return r;
	if (host_probe_strategy(p, vm->opts->sensitive, s)) {
		pr_err("--sensitive=iopl3: this host does not keep IOPL 3 at CPL3 (probe: iopl3 "
		       "%s; KVM on PVM never does): use --sensitive=patch or auto",
		       host_answer_name(p->iopl3));
		return UMBRA_EXIT_UNSUPPORTED;
	}
	vm->stats.host = p;
	vm->stats.strategy = s;
	with_note(sens, sizeof(sens), shadow_sensitive_name(s->sensitive), s->sensitive_note);
	with_note(stores, sizeof(stores), shadow_stores_name(s->stores), s->stores_note);
	with_note(sys, sizeof(sys), shadow_syscall_entry_name(s->syscall_entry), s->syscall_note);
	pr_info("host probe (%.1f ms): iopl3 %s, pt_stores_seen %s, syscall_cpl %d, "
		"cpl3_fsgsbase %s: %s; %s; syscall %s",
		p->probe_ms, host_answer_name(p->iopl3), host_answer_name(p->pt_stores_seen),
		p->syscall_cpl, host_answer_name(p->cpl3_fsgsbase), sens, stores, sys);
	pr_debug("host probe: RFLAGS 0x%llx at CPL3, read 0x%02x then 0x%02x, CS 0x%x at LSTAR",
		 (unsigned long long)p->rflags, p->pt_before, p->pt_after, p->syscall_cs);
	if (p->note[0])
		pr_info("host probe: undecided: %s", p->note);
	if (p->qemu_tcg)
		pr_info("host probe: the host is QEMU TCG (tools/nested-kvm.sh): the TPR set "
			"through KVM (CR8 writes abort it), TR loaded as an available TSS (it "
			"reads "
			"the I/O bitmap of no other)");
	return 0;
}
