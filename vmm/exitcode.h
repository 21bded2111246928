/* SPDX-License-Identifier: MIT */
/*
 * umbra's process exit status. The guest's own statuses from the debug-exit
 * device are always odd ((v << 1) | 1, truncated to 8 bits), so every status
 * the VMM itself chooses is even and never collides with one. README.md
 * documents this table; keep the two in step.
 */
#ifndef UMBRA_VMM_EXITCODE_H
#define UMBRA_VMM_EXITCODE_H

enum umbra_exit {
	UMBRA_EXIT_OK = 0,	     /* guest powered off or reset; --help, --version */
	UMBRA_EXIT_USAGE = 2,	     /* bad command line: unknown option, bad value */
	UMBRA_EXIT_BAD_IMAGE = 4,    /* image missing, unreadable, malformed, does not fit */
	UMBRA_EXIT_NO_KVM = 6,	     /* /dev/kvm missing, not accessible, or lacks a feature */
	UMBRA_EXIT_TRIPLE_FAULT = 8, /* the guest triple-faulted (KVM_EXIT_SHUTDOWN) */
	UMBRA_EXIT_EMULATION = 10,   /* the guest ran an instruction nobody could emulate */
	UMBRA_EXIT_INTERNAL = 12,    /* VMM bug or host failure (out of memory, ioctl error) */
	UMBRA_EXIT_UNSUPPORTED = 14, /* a requested feature is not implemented yet */
	UMBRA_EXIT_SIGNAL = 16,	     /* stopped by SIGINT/SIGTERM/SIGHUP or the console escape */
};

#endif /* UMBRA_VMM_EXITCODE_H */
