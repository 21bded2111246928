/* SPDX-License-Identifier: MIT */
/* The user programs of proc_user.c (section utext), started with proc_spawn(). */
#ifndef TESTOS_PROC_USER_H
#define TESTOS_PROC_USER_H

#include <stdint.h>

void u_fork_exit_wait(uint64_t a0, uint64_t a1);
void u_cow(uint64_t a0, uint64_t a1);
void u_tree(uint64_t maxdepth, uint64_t fan);
void u_checksum(uint64_t deadline, uint64_t a1);
void u_mmap_demand(uint64_t len, uint64_t a1);
void u_ad_touch(uint64_t pages, uint64_t a1);
void u_write(uint64_t a0, uint64_t a1);
void u_forkloop(uint64_t iters, uint64_t a1);
void u_pingpong(uint64_t iters, uint64_t a1);
void u_int80(uint64_t a0, uint64_t a1);

#define COW_PAGES  4
#define COW_PARENT 0x9a9a9a9a00000001ULL
#define COW_CHILD  0xc4c4c4c400000002ULL

#endif /* TESTOS_PROC_USER_H */
