/* SPDX-License-Identifier: MIT */
/*
 * struct vm: everything one run of umbra owns, built by the ordered init
 * table in vmm/init.c and torn down in reverse.
 */
#ifndef UMBRA_VMM_VM_H
#define UMBRA_VMM_VM_H

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "devices/bus.h"
#include "vmm/boot.h"
#include "vmm/console.h"
#include "vmm/host_probe.h"
#include "vmm/hw_syscall.h"
#include "vmm/memory.h"
#include "vmm/options.h"
#include "vmm/stats.h"

struct kvm_run;
struct shadow_mode;

struct vm {
	const struct umbra_options *opts;
	struct guest_mem mem;

	/* Image files as read from disk (owned). */
	u8 *image;
	size_t image_size;
	u8 *initrd;
	size_t initrd_size;
	struct boot_state boot;

	/* KVM (vmm/kvm.c). */
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	u64 cpu_cr4_valid;  /* the CR4 bits its CPUID offers (cpu_features_cr4_valid) */
	u64 cpu_efer_valid; /* the EFER bits (cpu_features_efer_valid) */
	/* An AMD CPU without NullSelectorClearsBase (decode/emulate.h, null_sel_keeps_base) */
	bool cpu_null_sel_keeps_base;
	/* The guest's CPUID vendor is AMD or Hygon: its emu_virt ways (shadow_mode.c) */
	bool cpu_amd;
	bool kvm_clock; /* ... and kvmclock (vmm/cpu_features.h, cpu_features_kvm_clock) */
	/* MAXPHYADDR in the CPUID the guest sees (0x80000008 EAX[7:0]; 36 without the leaf) */
	unsigned guest_maxphyaddr;
	u64 guest_xcr0_mask; /* CPUID.(0xd,0).EDX:EAX: the XCR0 bits the guest may set */

	/* Devices (vmm/devices.c). */
	struct bus pio, mmio;
	struct device *serial;
	struct device *cmos;
	struct device *fw_cfg;
	struct dev_host dev_host;

	/*
	 * The start-up host probe and the strategy it chose (vmm/host_probe.c).
	 * hw mode uses only host.syscall_cpl (vmm/hw_syscall.h); the strategy
	 * is zero there and stats.host stays NULL.
	 */
	struct host_probe host;
	struct shadow_strategy strategy;

	/* Shadow mode (vmm/shadow_mode.c); NULL in hw mode. */
	struct shadow_mode *shadow;
	/* hw mode's syscall entry on PVM hosts (vmm/hw_syscall.h); .on false elsewhere. */
	struct hw_syscall hw_sys;

	struct console console;
	struct stats stats;
	FILE *trace;

	/*
	 * Stop request: set by devices (vCPU thread), the console escape (stdin
	 * thread) or a signal handler, read by the run loop after every exit.
	 * `exit_code` is umbra's status once stopped.
	 */
	volatile sig_atomic_t stop;
	int exit_code;
	pthread_t vcpu_thread; /* runs KVM_RUN; vm_kick() interrupts it */
};

/* Ask the run loop to stop with `code`; safe from any thread or a signal handler. */
void vm_request_stop(struct vm *vm, int code);

/*
 * Make the vCPU thread leave KVM_RUN (a halted guest would otherwise keep it
 * there): call after vm_request_stop from any other thread.
 */
void vm_kick(struct vm *vm);

/* Report guest misbehaviour or a fatal condition: one line, then stop with `code`. */
void vm_kill(struct vm *vm, int code, const char *fmt, ...) __printf(3, 4);

/* Init steps (vmm/init.c runs them in order). Each returns 0 or an UMBRA_EXIT_* code. */
int memory_setup(struct vm *vm);
void memory_teardown(struct vm *vm);
int image_setup(struct vm *vm);
void image_teardown(struct vm *vm);
int kvm_setup(struct vm *vm);
void kvm_teardown(struct vm *vm);
int devices_setup(struct vm *vm);
void devices_teardown(struct vm *vm);
int vcpu_setup(struct vm *vm);
void vcpu_teardown(struct vm *vm);
int console_setup(struct vm *vm);
void console_teardown(struct vm *vm);

/* Run the vCPU until the VM stops; returns umbra's exit status. */
int vcpu_run_loop(struct vm *vm);

/*
 * For shadow mode's TPR masking (vmm/shadow_mode.c, resume_guest), through
 * KVM_GET/SET_LAPIC: the LAPIC timer's interrupt `vector` that the vCPU has
 * just taken, which the LAPIC holds in service (or, on PVM hosts, in
 * neither register), back in its IRR as if never accepted, and the TPR :=
 * `tpr` so that it waits there. False if `vector` is not the timer's or an
 * ioctl failed; then nothing changed.
 */
bool vcpu_lapic_requeue(struct vm *vm, unsigned vector, u8 tpr);

/*
 * One MSR of the vCPU through KVM_GET_MSRS or KVM_SET_MSRS (`req`), which
 * return the number of MSRs done: false for one KVM does not know or
 * refuses. *value is written for a set and read back.
 */
bool vcpu_msr(struct vm *vm, unsigned long req, u32 index, u64 *value);

/* Run a whole VM for `opts`; returns umbra's exit status (vmm/init.c). */
int vmm_run(const struct umbra_options *opts);

#endif /* UMBRA_VMM_VM_H */
