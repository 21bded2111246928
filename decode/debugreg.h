/* SPDX-License-Identifier: MIT */
/*
 * decode/debugreg: which of the breakpoints in DR0-DR3 an instruction fetch
 * or a data access matches, as DR7 arms them (SDM Vol. 3A §17.2.4-§17.2.5).
 * Shadow mode's emulator uses it for the instructions it runs in place of
 * the CPU (an instruction breakpoint before one, a data breakpoint after
 * one), and the VMM to decide which breakpoints the real debug registers
 * can carry. Pure functions; no KVM.
 *
 * DR7: Ln/Gn (bits 2n, 2n+1) enable breakpoint n; R/Wn (bits 16+4n, 2 bits)
 * 00 instruction, 01 data write, 10 I/O (with CR4.DE), 11 data read or
 * write; LENn (bits 18+4n) 00 1 byte, 01 2, 11 4, 10 8. A data breakpoint
 * covers the LEN-aligned bytes around DRn (the CPU ignores DRn's low bits);
 * an instruction breakpoint matches the first byte of an instruction only.
 */
#ifndef UMBRA_DECODE_DEBUGREG_H
#define UMBRA_DECODE_DEBUGREG_H

#include <stdbool.h>

#include "umbra/types.h"

#define DR7_RW_EXEC  0u
#define DR7_RW_WRITE 1u
#define DR7_RW_IO    2u
#define DR7_RW_RDWR  3u

/* DR6.B0-B3: the breakpoints that matched (SDM Vol. 3A §17.2.3). */
#define DR6_HITS_MASK 0xfull

/* Bits 0-3: the breakpoints DR7 enables (Ln or Gn). */
unsigned dr7_enabled(u64 dr7);
/* Breakpoint n's R/W field and its length in bytes (1, 2, 4 or 8). */
unsigned dr7_rw(u64 dr7, unsigned n);
unsigned dr7_len(u64 dr7, unsigned n);

/* Whether DR7 enables an instruction breakpoint. */
bool dr_exec_armed(u64 dr7);
/* The enabled instruction breakpoints at linear address `la` (DR6 bits). */
unsigned dr_exec_hits(const u64 dr[4], u64 dr7, u64 la);
/*
 * The enabled data breakpoints an access of `len` bytes at `la` touches: a
 * write matches R/W 01 and 11, a read only 11 (SDM Table 17-2).
 */
unsigned dr_data_hits(const u64 dr[4], u64 dr7, u64 la, unsigned len, bool write);

#endif
