/* SPDX-License-Identifier: MIT */
/*
 * The hw-mode fallback for instructions KVM's emulator rejects: connects the
 * KVM-free emulator in decode/emulate.h to the vCPU (vmm/emulate_glue.c).
 */
#ifndef UMBRA_VMM_EMULATE_GLUE_H
#define UMBRA_VMM_EMULATE_GLUE_H

#include "decode/emulate.h"

struct vm;

/*
 * Emulate the instruction at the vCPU's RIP after an emulation-failure exit.
 * Reads the state from kvm_run's sync regs and, on EMU_DONE, writes the new
 * state back there (kvm_dirty_regs) and counts the instruction in
 * vm->stats by mnemonic. Any other result leaves the vCPU untouched; the
 * caller stops the VM. *rep says what was decoded.
 */
enum emu_result vmm_emulate_insn(struct vm *vm, struct emu_report *rep) __must_check;

/*
 * hw mode's syscall entry (vmm/hw_syscall.h): the vCPU is at the entry page
 * at CPL3 with RCX and R11 as a `syscall` set them; make the syscall there
 * (at RCX - 2, RFLAGS from R11) with emu_syscall_entry, into the sync regs.
 * A process that jumped to the page gets exactly that. Not counted as an
 * emulated instruction: stats.syscalls counts it.
 */
enum emu_result vmm_emulate_syscall_entry(struct vm *vm, struct emu_report *rep) __must_check;

/*
 * The vCPU's xsave state for emu_ops.get_xstate/put_xstate (`opaque` is the
 * struct vm), in both modes: hw mode's SIMD fallback, and shadow mode's for
 * a process's SSE/AVX instruction that trapped (shadow_handle_insn_trap).
 */
struct emu_xstate *vmm_xstate_get(void *opaque);
bool vmm_xstate_put(void *opaque, const struct emu_xstate *xs);

#endif /* UMBRA_VMM_EMULATE_GLUE_H */
