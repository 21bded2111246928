/* SPDX-License-Identifier: MIT */
/*
 * The general registers between KVM's struct kvm_regs and decode/'s
 * emu_cpu.gpr[] (indexed by EMU_RAX..EMU_R15): one mapping for hw mode's
 * emulation fallback (vmm/emulate_glue.c) and shadow mode's virtual CPU
 * (vmm/shadow_cpu.c).
 */
#ifndef UMBRA_VMM_EMU_REGS_H
#define UMBRA_VMM_EMU_REGS_H

#include <linux/kvm.h>

#include "decode/emulate.h"

static inline void emu_gprs_from_kvm(u64 g[EMU_NR_GPRS], const struct kvm_regs *r)
{
	g[EMU_RAX] = r->rax;
	g[EMU_RCX] = r->rcx;
	g[EMU_RDX] = r->rdx;
	g[EMU_RBX] = r->rbx;
	g[EMU_RSP] = r->rsp;
	g[EMU_RBP] = r->rbp;
	g[EMU_RSI] = r->rsi;
	g[EMU_RDI] = r->rdi;
	g[EMU_R8] = r->r8;
	g[EMU_R9] = r->r9;
	g[EMU_R10] = r->r10;
	g[EMU_R11] = r->r11;
	g[EMU_R12] = r->r12;
	g[EMU_R13] = r->r13;
	g[EMU_R14] = r->r14;
	g[EMU_R15] = r->r15;
}

static inline void emu_gprs_to_kvm(struct kvm_regs *r, const u64 g[EMU_NR_GPRS])
{
	r->rax = g[EMU_RAX];
	r->rcx = g[EMU_RCX];
	r->rdx = g[EMU_RDX];
	r->rbx = g[EMU_RBX];
	r->rsp = g[EMU_RSP];
	r->rbp = g[EMU_RBP];
	r->rsi = g[EMU_RSI];
	r->rdi = g[EMU_RDI];
	r->r8 = g[EMU_R8];
	r->r9 = g[EMU_R9];
	r->r10 = g[EMU_R10];
	r->r11 = g[EMU_R11];
	r->r12 = g[EMU_R12];
	r->r13 = g[EMU_R13];
	r->r14 = g[EMU_R14];
	r->r15 = g[EMU_R15];
}

#endif /* UMBRA_VMM_EMU_REGS_H */
