/* SPDX-License-Identifier: MIT */
/*
 * Entry paths of the process model (proc.h):
 *   - proc_int80_stub: `int $0x80` from CPL3 (a DPL3 interrupt gate, IF
 *     cleared on entry): the same frame as every other vector (trap.h),
 *     then trap_dispatch(), which runs the system call (vector 0x80);
 *   - proc_enter_frame(frame): iretq through a saved trap frame, the first
 *     entry of the scheduler loop into a process.
 */
	.text
	.code64

#include "gprs.h"

	.globl proc_int80_stub, proc_enter_frame
proc_int80_stub:
	pushq	$0
	pushq	$0x80
	SAVE_GPRS
	mov	%rsp, %rdi
	cld
	call	trap_dispatch
	mov	%rsp, %rdi
	/* fall through: return through the (possibly switched) frame */

/* proc_enter_frame(struct trap_frame *f): load every register from @f and iretq. */
proc_enter_frame:
	mov	%rdi, %rsp
	RESTORE_GPRS
	add	$16, %rsp		/* vector, error code */
	iretq

	.section .note.GNU-stack, "", @progbits
