/* SPDX-License-Identifier: MIT */
/*
 * decode/: instruction decoding with capstone. No KVM dependency: callers
 * hand in the bytes they fetched through the guest's page tables.
 *
 * This file describes an instruction the guest could not run (RIP, bytes,
 * disassembly). The emulator is decode/emulate.h: the hw-mode fallback and
 * the shadow-mode whitelist of shared/DESIGN.md ("decode/").
 * decode/scan.h and decode/patch.h find and int3-patch the sensitive
 * instructions x86 does not trap (pushf/popf) in guest kernel code pages.
 */
#ifndef UMBRA_DECODE_DECODE_H
#define UMBRA_DECODE_DECODE_H

#include "umbra/types.h"

enum decode_mode { DECODE_16, DECODE_32, DECODE_64 };

/* The decode mode of a code segment from its L and D/B bits. */
static inline enum decode_mode decode_mode_of(int cs_l, int cs_db)
{
	return cs_l ? DECODE_64 : cs_db ? DECODE_32 : DECODE_16;
}

struct decoded_insn {
	unsigned len; /* bytes, 1..15 */
	char mnemonic[32];
	char operands[160]; /* capstone's op_str size */
};

/*
 * Decode the first instruction in `code[0..len)` located at `rip`.
 * Returns 0, or -EINVAL when the bytes are not a valid instruction or
 * -ENOMEM/-EIO when capstone cannot be set up.
 */
int decode_one(const u8 *code, size_t len, u64 rip, enum decode_mode mode,
	       struct decoded_insn *out) __must_check;

/*
 * Describe the instruction at `rip` for an error message:
 * "0f 01 ca  clac" or "ff ff  (invalid instruction)". Always NUL-terminates.
 */
void decode_describe(const u8 *code, size_t len, u64 rip, enum decode_mode mode, char *buf,
		     size_t buflen);

#endif /* UMBRA_DECODE_DECODE_H */
