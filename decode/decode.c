// SPDX-License-Identifier: MIT
/*
 * Instruction decoding with capstone (decode/decode.h).
 *
 * 1. Open a capstone handle for the CPU mode of the code segment.
 * 2. Decode exactly one instruction and report its length and text.
 * 3. Format "bytes  disassembly" for error messages.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "decode/decode.h"

#define X86_MAX_INSN_LEN 15

/* Items 1 and 2. */
int decode_one(const u8 *code, size_t len, u64 rip, enum decode_mode mode, struct decoded_insn *out)
{
	static const cs_mode modes[] = {
		[DECODE_16] = CS_MODE_16, [DECODE_32] = CS_MODE_32, [DECODE_64] = CS_MODE_64
	};
	csh handle;
	cs_insn *insn;
	size_t n;
	int r = 0;

	if (cs_open(CS_ARCH_X86, modes[mode], &handle) != CS_ERR_OK)
		return -EIO;
	n = cs_disasm(handle, code, MIN(len, (size_t)X86_MAX_INSN_LEN), rip, 1, &insn);
	if (n == 0) {
		r = -EINVAL;
	} else {
		out->len = insn[0].size;
		snprintf(out->mnemonic, sizeof(out->mnemonic), "%s", insn[0].mnemonic);
		snprintf(out->operands, sizeof(out->operands), "%s", insn[0].op_str);
		cs_free(insn, n);
	}
	cs_close(&handle);
	return r;
}

/* Item 3. */
void decode_describe(const u8 *code, size_t len, u64 rip, enum decode_mode mode, char *buf,
		     size_t buflen)
{
	struct decoded_insn d;
	size_t shown, pos = 0;
	int ok = decode_one(code, len, rip, mode, &d) == 0;

	shown = ok ? d.len : MIN(len, (size_t)X86_MAX_INSN_LEN);
	buf[0] = '\0';
	for (size_t i = 0; i < shown && pos + 4 < buflen; i++)
		pos += (size_t)snprintf(buf + pos, buflen - pos, "%s%02x", i ? " " : "", code[i]);
	if (pos < buflen) {
		if (ok)
			snprintf(buf + pos, buflen - pos, "  %s%s%s", d.mnemonic,
				 d.operands[0] ? " " : "", d.operands);
		else
			snprintf(buf + pos, buflen - pos, "  (invalid instruction)");
	}
}
