/* SPDX-License-Identifier: MIT */
/*
 * vmm/kvm_stats: KVM's own counters of the vCPU (KVM_GET_STATS_FD, Linux
 * 5.14+), for --stats: what KVM did in the kernel without an exit to the
 * VMM (its page faults, the instructions it emulated, its shadow-MMU
 * work). On PVM hosts that is where a guest's time can go unseen: Debian's
 * 686-pae kernel made 20M instructions emulated by KVM in 20 s and 407
 * traps to umbra (its compatibility-mode code, which PVM never runs
 * natively).
 */
#ifndef UMBRA_VMM_KVM_STATS_H
#define UMBRA_VMM_KVM_STATS_H

struct stats;

/*
 * Keep the nonzero single-valued cumulative counters of the vCPU `vcpu_fd`
 * in st->kvm[] (at most STATS_MAX_KVM, in KVM's order), or say in
 * st->kvm_note why there are none. Call before the vCPU is closed.
 */
void kvm_stats_read(int vcpu_fd, struct stats *st);

#endif
