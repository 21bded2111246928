/* SPDX-License-Identifier: MIT */
/* Start-up state: the kernel runs on its own tables, GDT and IDT. */
#include "../arch.h"
#include "../gdt.h"
#include "../paging.h"
#include "../test.h"

/* CR3 is the kernel's own PML4, not the boot contract's tables (in the boot area). */
TEST(boot_own_tables)
{
	CHECK_EQ("CR3", kernel_pml4, read_cr3() & PTE_ADDR);
	CHECK(kernel_pml4 != 0x10000, "CR3 still the boot tables");
}
