/* SPDX-License-Identifier: MIT */
/*
 * Decoding the one instruction shadow mode emulates so far: a plain `mov`
 * store of 1, 2, 4 or 8 bytes from a register or an immediate to memory
 * (vmm/shadow_store.c). Pure: no KVM, no guest memory; the caller fetched
 * the bytes and does the write (shadow_mode.c), so cmocka can test it.
 *
 * LIMITATION: this is a stop-gap until decode/emulate.c grows the shadow-mode
 * whitelist of shared/DESIGN.md (xchg, cmpxchg, locked read-modify-writes,
 * rep movs/stos, ...); then shadow_mode.c should call that instead.
 */
#ifndef UMBRA_VMM_SHADOW_STORE_H
#define UMBRA_VMM_SHADOW_STORE_H

#include "decode/emulate.h"
#include "umbra/types.h"

struct store_insn {
	char mnemonic[32]; /* capstone's, "" if the bytes did not decode */
	unsigned insn_len;
	u64 gva;      /* linear address written (segment base applied) */
	unsigned len; /* 1, 2, 4 or 8 */
	u8 value[8];  /* the bytes stored, little-endian */
};

enum store_decode_result {
	STORE_OK = 0,	   /* *out describes the store */
	STORE_NOT_A_STORE, /* decoded, but not a plain mov to memory (out->mnemonic says what) */
	STORE_BAD_BYTES,   /* the bytes are not an instruction, or capstone failed */
};

/*
 * Decode the 64-bit-mode instruction in code[0..n) at `rip`. `gpr` holds
 * the guest's general registers in x86 order (enum emu_gpr), RSP included;
 * fs_base/gs_base are applied for FS:/GS: overrides.
 */
enum store_decode_result store_decode(const u8 *code, size_t n, u64 rip, const u64 gpr[EMU_NR_GPRS],
				      u64 fs_base, u64 gs_base,
				      struct store_insn *out) __must_check;

#endif /* UMBRA_VMM_SHADOW_STORE_H */
