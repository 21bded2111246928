// SPDX-License-Identifier: MIT
/* Which Linux configurations a PVM host runs (benchlib.h, pvm.c). */
#include "bench/harness/benchlib.h"

const char *bench_cpl0_unrunnable(int is_umbra, int named, int syscall_reaches_cpl0)
{
	if (syscall_reaches_cpl0)
		return NULL;
	if (!is_umbra)
		return "not runnable here: KVM is PVM, where a guest's user-mode syscall "
		       "stays at CPL3, so Linux under it cannot run user programs "
		       "(shared/HOST.md)";
	if (!named)
		return "not run here unless --configs names it: KVM is PVM, which "
		       "emulates every guest CPL0 instruction, so a hw-mode Linux boot "
		       "takes over half an hour (README, \"Linux\"; give it --hw-timeout "
		       "7200)";
	return NULL;
}
