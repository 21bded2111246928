/* SPDX-License-Identifier: MIT */
/*
 * vmm/kvm_stats: KVM's own counters of the vCPU (KVM_GET_STATS_FD, Linux
 * 5.14+), for --stats: what KVM did in the kernel without an exit to the
 * VMM (its page faults, the instructions it emulated, its shadow-MMU
 * work). On PVM hosts that is where a guest's time can go unseen: memtest86+
 * in shadow mode spent minutes there with a few thousand exits.
 */
#ifndef UMBRA_VMM_KVM_STATS_H
#define UMBRA_VMM_KVM_STATS_H

#include <stdio.h>

/*
 * Print "  kvm <name> <value>" for each nonzero cumulative counter of the
 * vCPU `vcpu_fd` into `f`, in KVM's order; a line saying so where KVM has
 * no stats fd. Returns the number of counters printed.
 */
unsigned kvm_stats_print(int vcpu_fd, FILE *f);

#endif
