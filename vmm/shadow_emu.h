/* SPDX-License-Identifier: MIT */
/*
 * decode/'s emulator on the shadow-mode virtual CPU (vmm/shadow_emu.c): the
 * emu_ops callbacks (guest memory through the guest's own tables, every
 * store told to the shadow MMU or sent to the MMIO bus, TLB flushes to the
 * shadow MMU, virtual XCR0) and what the VMM does after an instruction or
 * an event changed CR3, the paging mode or the virtual CPL.
 */
#ifndef UMBRA_VMM_SHADOW_EMU_H
#define UMBRA_VMM_SHADOW_EMU_H

#include "decode/chain.h"
#include "decode/emulate.h"

struct vm;

/*
 * Emulate the instruction at the guest's RIP (sm->cpu, loaded for this
 * trap). On EMU_DONE: counts it by mnemonic in vm->stats and applies the
 * CR3/PAGING_MODE/CPL notes to the shadow MMU (the caller handles HALT and
 * IF_SET, vmm/shadow_event.c; CODE_MODE needs nothing: the real CS follows).
 * Any other result leaves sm->cpu as it was.
 * When the byte at RIP is one of the VMM's int3 patches (decode/patch.h),
 * the original instruction is emulated instead (emu_insn_bytes).
 * `chained`: the instruction did not trap itself (a chain took it in,
 * shadow_emu_chain_next, or the VMM runs the one after an sti to end its
 * shadow); it is then not counted as a patch trap, and its instruction
 * breakpoints are checked (RF is not set for it).
 */
enum emu_result shadow_emu_insn(struct vm *vm, struct emu_report *rep, bool chained) __must_check;
/*
 * The same for the instruction `code` (len bytes) at the guest's RIP, not
 * fetched: one the VMM rewrote out of guest code and runs itself
 * (vmm/call_sync.c).
 */
enum emu_result shadow_emu_insn_bytes(struct vm *vm, const u8 *code, unsigned len,
				      struct emu_report *rep) __must_check;

/*
 * Trap chaining (decode/chain.h): what should a chain do with the
 * instruction at the guest's RIP (described in *first)? CHAIN_TRAP: it
 * would trap (one of decode/chain.h's, or an int3 patch): emulate it.
 * CHAIN_BRIDGE: emulate it; CHAIN_NOP: skip it; CHAIN_JUMP: jump;
 * CHAIN_BRANCH: go to chain_next_ip(*first), resolved here by the flags:
 * in these cases a trap follows within a few bridges, nops and jumps.
 * CHAIN_END: resume the guest. Only the bytes are judged here (with the
 * virtual AC, the strategy, the flags a branch reads, and RCX for a rep
 * movs, which ends the chain past CHAIN_COPY_MAX bytes); the caller
 * decides whether the state allows a chain at all.
 */
enum chain_class shadow_emu_chain_next(struct vm *vm, struct chain_insn *first);

/*
 * The instruction at the guest's RIP if decode's fast path takes it
 * (emu_fast_insn: push, call, mov to and from the stack, ...): true if it
 * ran; false, nothing changed, if it is not one of those or would fault.
 */
bool shadow_emu_fast(struct vm *vm);

/*
 * Kernel code at linear address `la` is an entry point (vmm/code_entries.h):
 * learn it, and make its frame rescan if it was approved without it.
 */
void shadow_learn_entry(struct vm *vm, u64 la);

/*
 * After a trap: undo every save_fl rewrite if the guest kernel's IOPL left 0.
 * False when the VM was stopped (no memory to do it).
 */
bool shadow_emu_check_rewrites(struct vm *vm);

/*
 * Undo every rewrite (save_fl's and the monitor calls'): each frame is
 * rescanned on its next fetch. False when the VM was stopped (no memory).
 */
bool shadow_emu_undo_rewrites(struct vm *vm);

/* Is the byte at linear address `la` (a guest fetch there) one of our int3 patches? */
bool shadow_emu_is_patch(struct vm *vm, u64 la);

/* Deliver `ev` through the guest IDT (emu_deliver_event), then follow a CPL change. */
/* May the guest, at its virtual CPL, access `size` ports from `port` (emu_io_permitted)? */
bool shadow_emu_io_permitted(struct vm *vm, u16 port, unsigned size);

enum emu_result shadow_emu_deliver(struct vm *vm, const struct emu_event *ev) __must_check;

/*
 * A trap at the monitor's syscall entry (vmm/monitor.h): the guest's
 * `syscall` as emu_syscall_entry defines it, from the RCX/R11 the CPU set;
 * then the view follows the new CPL.
 */
enum emu_result shadow_emu_syscall(struct vm *vm, struct emu_report *rep) __must_check;

/*
 * Stop the VM after a result other than EMU_DONE for the instruction at
 * `rip`: EMU_UNKNOWN and EMU_UNHANDLED_MEM with status 10 naming the
 * instruction (mnemonic, bytes, disassembly), EMU_TRIPLE_FAULT with 8,
 * anything else with 12.
 */
void shadow_emu_stop(struct vm *vm, enum emu_result r, const struct emu_report *rep, u64 rip);

/*
 * Stop the VM after delivering `vector` at `rip` gave `r` (not EMU_DONE):
 * EMU_UNKNOWN says which kinds of delivery shadow mode does not emulate
 * (status 10); the rest as shadow_emu_stop.
 */
void shadow_deliver_stop(struct vm *vm, enum emu_result r, u8 vector, u64 rip);

#endif /* UMBRA_VMM_SHADOW_EMU_H */
