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

#endif /* UMBRA_VMM_EMULATE_GLUE_H */
