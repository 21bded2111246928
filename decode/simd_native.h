/* SPDX-License-Identifier: MIT */
/*
 * hw mode's SIMD fallback, the part that runs on the host CPU
 * (decode/simd_native.c). Internal to decode/.
 */
#ifndef UMBRA_DECODE_SIMD_NATIVE_H
#define UMBRA_DECODE_SIMD_NATIVE_H

#include "umbra/types.h"

struct simd_native {
	u64 gpr[16]; /* in and out, in the encoding order (RAX, RCX, ... R15); RSP is ignored */
	u64 rflags;  /* in: the arithmetic flags are the guest's; out: RFLAGS after the instruction
		      */
	u64 code;    /* set by simd_native_step */
	/*
	 * Standard-format XSAVE areas, 64-byte aligned: the guest's state of the
	 * components in rfbm (in and out; XCOMP_BV = 0), and room to save the
	 * host's.
	 */
	void *guest_area, *host_area;
	u64 rfbm; /* the components loaded and saved: x87 and SSE, and AVX, opmask and ZMM if used
		   */
};

/*
 * Run the `len` bytes of one instruction (which must reference no memory
 * but through registers the caller set, and never RSP) with `sn`'s state.
 * Returns 0, the signal number the instruction raised (SIGSEGV: #GP or
 * #SS, SIGILL: #UD, SIGFPE: a SIMD exception; sn is then unchanged but for
 * the code address), or -1 on a host error (no executable page).
 */
int simd_native_step(struct simd_native *sn, const u8 *insn, unsigned len);

/*
 * Keep the fault handlers installed from now on (they pass on what is not
 * theirs) instead of installing them around every step. Calling it again
 * reinstalls them over whatever replaced them meanwhile.
 */
void simd_native_keep_handlers(void);

/* The host's XCR0 (the components its XSAVE area can hold). */
u64 simd_host_xcr0(void);

#endif /* UMBRA_DECODE_SIMD_NATIVE_H */
