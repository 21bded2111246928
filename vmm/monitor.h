/* SPDX-License-Identifier: MIT */
/*
 * The shadow-mode monitor: the machine memory above guest RAM that holds the
 * real descriptor tables, trap stubs, monitor stack and the shadow pool
 * (shared/DESIGN.md, "Shadow mode, end to end"). This file only lays the
 * memory out and builds its contents; it knows nothing of KVM (the memslots
 * are added by vmm/shadow_mode.c), so it can be unit-tested.
 *
 * Machine memory (mpa) and where the monitor maps it (gva, PML4 slot MON_PML4_SLOT of
 * every shadow root, supervisor-only):
 *
 *   mpa MON_MPA = first 1 GiB boundary at or above max(top of RAM, 4 GiB)
 *   [MON_MPA, +2 MiB)        monitor region   gva MON_GVA, 4 KiB pages, RWX
 *   [MON_MPA + 2 MiB, +pool) shadow pool      gva MON_POOL_GVA, 2 MiB pages, RW, NX
 *
 * Monitor region layout (offsets):
 *   0x0000  GDT (MON_GDT_ENTRIES entries)
 *   0x1000  IDT: 256 interrupt gates, DPL 0, to the stubs
 *   0x2000  stubs: 256 x 8 bytes, stub v = `out %al, $MON_TRAP_PORT; jmp tail`
 *   0x2800  the tail (see monitor.c)
 *   0x2880  the idle loop `hlt; jmp .-1` (CPL0, IF=1): where the vCPU waits
 *           while the guest is in an emulated `hlt` (vmm/shadow_event.c)
 *   0x3000  PDPT, 0x4000 PD and 0x8000 PT of the monitor's own mapping
 *   0x5000  the 64-bit TSS, followed by an I/O permission bitmap that allows
 *           every port (see build_gdt_tss in monitor.c)
 *   0x9000  the syscall entry page, the only monitor page user-accessible
 *           (U=1, read-only, executable): the real LSTAR and CSTAR point
 *           at its `ud2` (see "The syscall entry" below)
 *   0x10000-0x50000 the monitor stack (TSS.RSP0 = top), which also carries
 *           the command buffer of queued shadow-table stores
 *
 * The trap round trip:
 *  1. The guest (real CPL3) takes exception or interrupt v; the CPU switches
 *     to TSS.RSP0 and pushes SS, RSP, RFLAGS, CS, RIP (+ error code) there,
 *     then runs stub v at CPL0: `out` exits to the VMM (KVM_EXIT_IO).
 *  2. The VMM finds v from the exit RIP (it is inside stub v), reads the
 *     frame through the region's hva and the registers from the sync regs.
 *  3. Before resuming, monitor_prepare_return() rewrites the stack: the iret
 *     frame at the top, below it the guest's RBX, the root to load (0: keep),
 *     a 0 terminator, and below that the queued (gva, value) store pairs;
 *     the VMM sets RSP to the lowest pair and RIP to the tail.
 *  4. The tail (CPL0, emulated by KVM on PVM hosts: keep it short) pops and
 *     applies each store, loads CR3 when asked, restores RBX and iretqs.
 *
 * The syscall entry (shared/HOST.md): a guest `syscall` runs with the real
 * LSTAR = MON_SYSCALL_GVA. On PVM hosts it arrives there still at CPL3, so
 * the page is user-executable; it holds `ud2`, whose #UD brings the vCPU
 * into the ordinary trap path above (vector 6, frame RIP = MON_SYSCALL_GVA,
 * RCX/R11 as the CPU set them). Where it arrives at CPL0 (VMX hosts) the
 * #UD gate's IST puts the frame at the same place. A guest that jumps to
 * the page instead gets exactly a syscall's entry, nothing more.
 *
 * Port I/O: while the guest kernel runs, the TSS's I/O bitmap allows every
 * port, so its accesses exit to the VMM as KVM_EXIT_IO; while guest user
 * code runs, the bitmap is switched off (its base past the TSS limit), so
 * every user access is a #GP the VMM checks against the guest's own IOPL
 * and TSS bitmap (monitor_set_user_segs does both switches).
 *
 * Selectors: every monitor descriptor sits at GDT index 40 or above, where
 * guests keep none (Linux's GDT has 32 entries), so a guest's own `iretq`,
 * `lret` or segment load at real CPL3 finds nothing there and faults into
 * the emulator instead of completing natively with the wrong privilege.
 * The guest kernel runs on MON_SEL_UCODE/UDATA; guest user code runs on its
 * own user selectors, installed at their indexes only while it runs
 * (monitor_set_user_segs), so `mov %cs` in user mode reads what it should.
 */
#ifndef UMBRA_VMM_MONITOR_H
#define UMBRA_VMM_MONITOR_H

#include "shadow/mmu.h"
#include "umbra/le.h"
#include "umbra/types.h"

/*
 * Slot 257, inside the hole Linux leaves for hypervisors (slots 256-271):
 * slot 256 itself faults not-present at real CPL3 on our PVM hosts
 * (measured: the host keeps it), which the syscall entry page must not.
 */
#define MON_PML4_SLOT	257u
#define MON_GVA		0xffff808000000000ull /* PML4 slot 257, in the hypervisor hole */
#define MON_REGION_SIZE (2 * MiB)
#define MON_POOL_GVA	(MON_GVA + MON_REGION_SIZE)
#define MON_MPA_ALIGN	(1 * GiB)

#define MON_OFF_GDT	   0x0000u
#define MON_OFF_TSS	   0x5000u
#define MON_OFF_IDT	   0x1000u
#define MON_OFF_STUBS	   0x2000u
#define MON_STUB_SIZE	   8u
#define MON_OFF_TAIL_CR8   0x2800u /* `pop %rbx; mov %rbx,%cr8`, then the tail */
#define MON_OFF_TAIL	   0x2805u
#define MON_OFF_IDLE	   0x2880u /* `hlt; jmp .-1`: a halted guest waits here */
#define MON_IDLE_SIZE	   3u
#define MON_OFF_PDPT	   0x3000u
#define MON_OFF_PD	   0x4000u
#define MON_OFF_PT	   0x8000u
#define MON_OFF_SYSCALL	   0x9000u /* the syscall entry page (U=1) */
#define MON_OFF_CALL_PT	   0xa000u /* the call window's PT (see below) */
#define MON_OFF_CALL_CODE  0xb000u
#define MON_OFF_CALL_DATA  0xc000u
#define MON_OFF_CALL_PD	   0xd000u /* a PD whose last entry is the window's PT */
#define MON_SYSCALL_GVA	   (MON_GVA + MON_OFF_SYSCALL) /* `ud2`: LSTAR */
#define MON_TSS_LIMIT	   (104u + 8192u)	       /* TSS + bitmap of 65536 ports + 0xff byte */
#define MON_OFF_STACK_BASE 0x10000u
#define MON_OFF_STACK_TOP  0x50000u
#define MON_NR_VECTORS	   256u

/* The real GDT. The guest runs on the DPL3 pair; the monitor on the DPL0 pair. */
#define MON_SEL_CODE	0x140u /* 64-bit code, DPL0 (index 40) */
#define MON_SEL_DATA	0x148u /* data, DPL0 (index 41) */
#define MON_SEL_UDATA	0x153u /* data, DPL3 (index 42, RPL 3): the guest's real SS */
#define MON_SEL_UCODE	0x15bu /* 64-bit code, DPL3 (index 43, RPL 3): the guest's real CS */
#define MON_SEL_TSS	0x160u /* 64-bit TSS (16-byte descriptor, indexes 44-45) */
#define MON_SEL_UCODE32 0x173u /* 32-bit code, DPL3 (index 46): a guest kernel in 32-bit code */
#define MON_GDT_ENTRIES 47u
#define MON_GDT_FIRST	40u /* guests' own selectors must stay below this index */

/* The real syscall MSRs (KVM_SET_MSRS at set-up): entry at MON_SYSCALL_GVA. */
#define MON_STAR   ((u64)MON_SEL_CODE << 32)
#define MON_SFMASK 0x47700ull /* TF, DF, IF, IOPL, AC, NT, as Linux sets it */

/* The port every stub's `out` uses; the exit's CPL tells it from guest I/O. */
#define MON_TRAP_PORT 0xef

/* Stores the tail can apply in one pass (the stack minus the fixed part). */
#define MON_QUEUE_MAX ((MON_OFF_STACK_TOP - MON_OFF_STACK_BASE - 64) / 16)

/*
 * The call window (shared/DESIGN.md: "patch well-known sensitive sequences
 * into calls to monitor code that run without trapping"). Linux's paravirt
 * irq-flag sites, after its alternatives, are `cli`, `sti` or `pushf; pop
 * %rax`, padded with a nop to the 6 or 7 bytes of the indirect call they
 * replaced. Under the patch strategy each would trap (cli/sti) or need an
 * int3 (pushf); the VMM rewrites a site into `call rel32` to a function
 * here, which keeps the virtual IF in the data page instead. A rel32 call
 * reaches +-2 GiB, so the window sits in the top 2 MiB of the address
 * space, a hole Linux leaves unused (Documentation/arch/x86/x86_64/mm.rst),
 * within reach of kernel text and modules. The shadow MMU links its PT (or a
 * PD over it) into the kernel view only (shadow/mmu.h, shadow_set_window);
 * at real U=1, since the guest kernel runs at real CPL3:
 *   MON_CALL_GVA           code (read-only, executable): the functions below
 *   MON_CALL_GVA + 0x1000  data (read-write, NX): struct mon_call_data
 *
 * The contract with the VMM (vmm/shadow_cpu.c): while the guest kernel runs,
 * the data page holds its virtual IF; at every trap the VMM loads IF from
 * it, and stores IF, the other virtual flags and `pending` back before
 * resuming. The guest kernel may write the page itself: all it
 * can change that way is its own IF, which `sti` changes too. The window is
 * lent, not reserved: claimed by the first site rewritten where the guest's
 * tables leave it empty, and given back (every rewrite undone) when the
 * guest maps it (vmm/code_scan.c: claim_window; vmm/shadow_mode.c:
 * withdraw_calls).
 *
 * The stand-ins keep every register and flag the replaced instructions
 * keep (they save the flags with pushfq and restore them with popfq, which
 * at real CPL3 changes neither IF nor IOPL). Each comes three times
 * (monitor_call_entry), by the bytes a site leaves after its rel32:
 *  - 1 or 2 (a nop): reached by `call`, it returns past them, to the end of
 *    the original site, so that the guest is only ever at the original
 *    code's instruction boundaries (or in the window), whatever becomes of
 *    the patch meanwhile;
 *  - 0: reached by `jmp` from the body of Linux's native function (its
 *    `cli; jmp __x86_return_thunk`, whose thunk is a plain `ret`), it
 *    returns to that function's caller.
 *   MON_CALL_IRQ_DISABLE  `cli`: vif = 0
 *   MON_CALL_IRQ_ENABLE   `sti`: vif = 1; with an interrupt held, the `ud2`
 *                         at MON_CALL_ENABLE_UD2 traps: the VMM finishes the
 *                         stand-in (its popfq; ret) and delivers it at the
 *                         end of the site (the sti's shadow has ended: the
 *                         site's nop came after it, and the call replaced both)
 *   MON_CALL_SAVE_FL      `pushf; pop %rax`: %rax = the flags at the site
 *                         with IF, IOPL and AC replaced by the virtual ones
 *   MON_CALL_SAVE_FL_IOPL3  the same under the iopl3 strategy, where the
 *                         guest kernel's IF and AC are the real ones and only
 *                         IOPL (real 3, virtual 0 while any rewrite stands:
 *                         shadow_emu_check_rewrites) is cleared; pad 0 only,
 *                         for the body of Linux's native_save_fl
 *   MON_CALL_RD_KGS       `swapgs; rdgsbase %rax; swapgs` (Linux's
 *                         __rdgsbase_inactive, at every context switch):
 *                         %rax = the virtual KERNEL_GS_BASE, which the data
 *                         page holds while the guest kernel runs; pad 6 only
 *   MON_CALL_WR_KGS       `swapgs; wrgsbase %rdi; swapgs` (__wrgsbase_inactive):
 *                         the virtual KERNEL_GS_BASE = %rdi; pad 6 only
 *   MON_CALL_SYNC         Linux's sync_core without SERIALIZE, its iret_to_self:
 *                         `mov %ss,%eax; push %rax; push %rsp; addq $8,(%rsp);
 *                         pushfq; mov %cs,%eax; push %rax; push $1f; iretq; 1:`
 *                         (20 bytes; the rewrite covers the first 15, pad 15:
 *                         it returns to the end of all 20). An iretq to the
 *                         same CS and SS changes nothing but RSP, RIP and the
 *                         flags, *if* the descriptors it reloads are the ones
 *                         cached: so the stand-in reads both from the guest's
 *                         GDT, compares them with what the VMM put in the data
 *                         page (vmm/call_sync.c: only descriptors an iretq
 *                         would load unchanged, emu_iret_keeps_segs), and
 *                         takes the ud2 at MON_CALL_SYNC_UD2 when either
 *                         differs or RFLAGS.NT is set (the iretq would #GP).
 *                         Then the VMM runs the original instructions. Else:
 *                         %rax = the virtual CS, and the flags are those its
 *                         `addq` leaves (the iretq reloads what pushfq saved
 *                         right after it), from an `add` on the same value.
 *                         The frame the original leaves below RSP is not
 *                         written: the kernel runs without a red zone, so
 *                         that memory is anybody's (an interrupt's) already.
 *   MON_CALL_IRET         an `iretq` that returns to the guest kernel (Linux's
 *                         native_irq_return_iret: every interrupt and
 *                         exception taken in the kernel leaves through it):
 *                         the 2-byte iretq and the 5-byte nopl that pads it to
 *                         the next 16-byte boundary, which never runs, become
 *                         `call rel32` and 2 bytes left as they were (pad 0:
 *                         the stand-in never returns to the site). An iretq
 *                         to the same CS and SS at virtual CPL0 changes RIP,
 *                         RSP, RFLAGS and nothing else, if the descriptors it
 *                         reloads are the cached ones (MON_CALL_SYNC's
 *                         check, the same data). So the stand-in checks that
 *                         the frame's CS and SS selectors are the virtual
 *                         ones and the GDT still holds their descriptors;
 *                         that NT is clear; that the frame's flags have the
 *                         guest kernel's virtual IOPL and AC (a change of
 *                         either is a change of view or of I/O rights) and
 *                         no TF, NT, VM, VIF or VIP (RF, which every fault's
 *                         frame has, is dropped unless an instruction
 *                         breakpoint is armed: iret_flags_mask);
 *                         that no interrupt
 *                         is held (`pending`) if the frame sets IF; and that
 *                         the frame's RIP is canonical. If any check fails,
 *                         its ud2 at MON_CALL_IRET_UD2 sends the VMM to
 *                         emulate the iretq at the site. Else it copies the
 *                         frame's RIP and RSP into the data page (iret_rip,
 *                         iret_rsp), sets vif to the frame's IF, `popfq`s
 *                         the frame's flags with AC cleared (the real AC of
 *                         the guest kernel is 0; popfq at CPL3 keeps the
 *                         real IF and IOPL), restores RAX, loads RSP and
 *                         jumps to RIP through the data page. Nothing is
 *                         written to guest memory but below the stack
 *                         pointer it was called with (the site's call
 *                         itself pushes there: LIMITATION, a frame at the
 *                         very bottom of the mapped stack would fault on
 *                         that push where the iretq does not; no Linux
 *                         stack is so). The iretq's NMI
 *                         unblocking is nothing to miss: shadow mode has no
 *                         NMI source (vmm/shadow_event.c). One vCPU: the
 *                         data page's iret_rip/iret_rsp are nobody else's.
 *   MON_CALL_CX16         the body of Linux's this_cpu_cmpxchg16b_emu, which
 *                         SLUB's cmpxchg_double sites call until Linux's
 *                         alternatives make them `cmpxchg16b` (thousands of
 *                         calls in a boot, two traps each: the pushfq+cli
 *                         chain and the popfq). The body's first 5 bytes
 *                         become `jmp` here (vmm/call_cx16.c); the rest
 *                         keeps its bytes and runs only on the slow path.
 *                         The stand-in saves the flags, RDX and RAX, runs
 *                         `lock cmpxchg16b %gs:(%rsi)`, which does at once
 *                         what the body does with the interrupts off
 *                         (compare RDX:RAX with the 16 bytes, store RCX:RBX
 *                         if equal), restores RAX and RDX (cmpxchg16b loads
 *                         them on failure; the body does not), then ends as
 *                         the body does: `popfq; mov $1,%al` or `popfq; xor
 *                         %al,%al`, and `ret` for the body's `jmp
 *                         __x86_return_thunk` (whose thunk returns; its
 *                         mitigations, if any, are skipped). The virtual
 *                         IF is never touched: the body's cli and popfq
 *                         leave it as it was. Where the two differ, a fault
 *                         at the cmpxchg16b sends the VMM to run the body
 *                         itself (its slow path, vmm/shadow_mode.c):
 *                         cmpxchg16b needs a 16-byte-aligned operand (#GP),
 *                         and it writes even when the compare fails, so a
 *                         guest fault or a write-tracked page is also taken
 *                         there. LIMITATION: on a failed compare the page
 *                         is written (with what it held): its guest PTE's
 *                         dirty bit gets set, as the body's would not.
 *   MON_CALL_SS_CMP       `mov %ss,%ax; cmp $0x18,%ax` (7 bytes: Linux's
 *                         __switch_to on AMD CPUs, X86_BUG_SYSRET_SS_ATTRS,
 *                         at every context switch; 0x18 is __KERNEL_DS): the
 *                         return address past the cmp's last 2 bytes (pad
 *                         2, never run), %ax := the virtual SS selector
 *                         (kernel_ss, which the VMM keeps current whenever
 *                         the guest kernel runs: only a trap changes SS),
 *                         then the same cmp, whose flags are the site's.
 *   MON_CALL_RD_CR2       `mov %cr2,%rax` and the 3-byte nop that pads it to
 *                         the 6 of the `call *pv_ops.mmu.read_cr2` Linux's
 *                         alternatives replaced (exc_page_fault's first
 *                         act, at every page fault the guest takes): %rax
 *                         = the virtual CR2, which the data page holds
 *                         while the guest kernel runs (only a trap changes
 *                         it: a #PF delivered, a mov to CR2); pad 1 only
 *   MON_CALL_SWAPGS       `swapgs` and the 3 bytes after it, a nop or
 *                         `lfence` (Linux's error_entry from user mode, at
 *                         every interrupt and exception the guest takes
 *                         there: SWAPGS then FENCE_SWAPGS_USER_ENTRY): the
 *                         real GS base and the data page's kernel_gs_base
 *                         exchanged, through %rax (saved on the stack):
 *                         `rdgsbase %rax; xchg %rax,kernel_gs_base(%rip);
 *                         wrgsbase %rax`, then `lfence` (the site's, if it
 *                         had one; harmless if not); pad 1 only. The real
 *                         GS base is the guest's while its kernel runs
 *                         (vmm/shadow_cpu.c), so this is swapgs exactly.
 *                         Rewritten only while the guest's CR4.FSGSBASE is
 *                         set, when its own rdgsbase runs natively too
 *                         (vmm/code_scan.c); should the host still refuse
 *                         the stand-in's (#UD), the VMM finishes it.
 *   MON_CALL_LOAD_GS      `swapgs; mov %edi,%gs; <3-byte nop or mfence>;
 *                         swapgs` (Linux's asm_load_gs_index, which
 *                         switches the user's GS at every context switch
 *                         on CPUs without FSGSBASE): with a null selector
 *                         (%di & ~3 = 0) all it does is set the virtual GS
 *                         selector and, where the CPU clears the base of a
 *                         null load (Intel), the user's base, KERNEL_GS_BASE
 *                         while the swaps last; the kernel's GS base comes
 *                         back as it was. So the stand-in stores %di in the
 *                         data page's gs_sel, zeroes kernel_gs_base if
 *                         null_clears, and returns past the 11 bytes (pad
 *                         6). Another selector is loaded there too if it
 *                         is the data page's user_sel (the one the guest
 *                         loaded last through the slow path: Linux's
 *                         __USER_DS, which AMD CPUs load before the null
 *                         one) and its descriptor in the guest's table,
 *                         read there and then (through %rdi, kept in
 *                         load_gs_rdi meanwhile), still holds the value
 *                         the VMM found loadable with base 0
 *                         (user_sel_desc at user_sel_desc_gva: present
 *                         data, accessed, DPL >= RPL): then gs_sel := %di
 *                         and kernel_gs_base := 0, exactly what the load
 *                         does. Any other selector takes the ud2 at
 *                         MON_CALL_LOAD_GS_UD2: the VMM puts the vCPU back
 *                         at the site, whose original instructions it
 *                         emulates (a descriptor to read, checks, faults).
 *                         Needs no FSGSBASE: it never touches a real base.
 *   MON_CALL_LOAD_FS      `mov $0x2b,%edx; mov %edx,%fs; mov %eax,%fs`
 *                         (Linux's load_seg_legacy on AMD CPUs, at a
 *                         context switch to a task whose FS base is 0,
 *                         typically a kernel thread: __USER_DS, then the
 *                         task's null selector), 9 bytes, pad 4, the tail
 *                         kept (Linux's fixup for a bad selector retries
 *                         the mov). With %ax null and 0x2b the data page's
 *                         user_sel whose descriptor, read from the guest's
 *                         table there and then (through %rdx, which the
 *                         site sets anyway), still holds user_sel_desc (as
 *                         for load_gs: loadable, accessed, base 0), the
 *                         pair does nothing but leave FS null with base 0
 *                         (AMD keeps the base a null load finds, Intel
 *                         clears it: 0 either way). The stand-in does just
 *                         that with real loads, MON_SEL_UDATA (base 0),
 *                         then the guest's null selector, and sets %edx to
 *                         0x2b. Otherwise its ud2 at MON_CALL_LOAD_FS_UD2:
 *                         the VMM puts the vCPU after the site's first
 *                         instruction, whose `mov %edx,%fs` it emulates.
 *                         Needs no FSGSBASE; where the host refuses the
 *                         real load of MON_SEL_UDATA (#GP), the VMM
 *                         completes the stand-in instead.
 *   MON_CALL_WRMSR        `mov %esi,%eax; mov %edi,%ecx; wrmsr; <2-byte
 *                         nop>` (the body of Linux's native_write_msr, its
 *                         tracepoint off), 8 bytes, pad 3, the tail kept:
 *                         for MSR_FS_BASE (%edi) and a value (%edx:%esi)
 *                         canonical with 48 bits, while the data page's
 *                         fs_defer is 1, the new base goes to the data
 *                         page (fs_base_new, fs_pending) instead of the
 *                         real FS, and the VMM loads it at the next trap.
 *                         Linux writes the FS base of the next task there
 *                         at a context switch on CPUs without FSGSBASE,
 *                         and its kernel never reads that base: nothing
 *                         at real CPL3 reads FS's base but an instruction
 *                         with an FS prefix, or rdfsbase. So the VMM sets
 *                         fs_defer only while the guest's CR4.FSGSBASE is
 *                         clear and no guest kernel code it has scanned
 *                         (vmm/code_scan.c) has an FS prefix, or rdfsbase/
 *                         wrfsbase where the host runs them at CPL3 (else
 *                         they trap first); any return to user mode is a
 *                         trap. Then %eax := %esi and
 *                         %ecx := %edi, as the site. Any other MSR, or
 *                         value, takes the ud2 at MON_CALL_WRMSR_UD2: the
 *                         VMM emulates the three instructions from the
 *                         site's start.
 *   MON_CALL_SS_LOAD      `mov $0x18,%eax; mov %eax,%ss` (Linux's reload of
 *                         __KERNEL_DS in __switch_to on AMD CPUs, where SS
 *                         is null after an interrupt or exception from user
 *                         mode; after the SS stand-in's compare), 7 bytes,
 *                         pad 2, the tail kept. The virtual SS lives in the
 *                         VMM (the real one is MON_SEL_UDATA), so the load
 *                         is bookkeeping: with the virtual IF 0 (no event
 *                         can need the mov-SS shadow) and the descriptor
 *                         in the guest's table still ss_key_desc, the
 *                         stand-in sets ss_loaded, which the VMM turns into
 *                         the virtual SS at the next trap, and in the
 *                         meantime gives the SS, sync and iret stand-ins
 *                         the new selector and descriptor (kernel_ss,
 *                         ss_desc_gva, ss_desc); %eax := 0x18. Otherwise
 *                         its ud2 at MON_CALL_SS_LOAD_UD2: the VMM emulates
 *                         the kept `mov %eax,%ss`. Patch strategy only
 *                         (under iopl3 the data page holds no virtual IF).
 * A trap taken inside a stand-in (an interrupt with vIF 1, a fault on its
 * stack) is never delivered there: the VMM finishes the stand-in first
 * (vmm/shadow_mode.c, finish_stand_in), as if the instruction it stands in
 * for had completed, so the guest never sees a RIP in the window.
 */
#define MON_CALL_GVA	       0xffffffffffe00000ull
#define MON_CALL_DATA_GVA      (MON_CALL_GVA + 0x1000)
#define MON_CALL_SLOT	       0x40u /* bytes per stand-in and pad */
#define MON_CALL_IRQ_DISABLE   0x000u
#define MON_CALL_IRQ_ENABLE    0x0c0u
#define MON_CALL_SAVE_FL       0x180u
#define MON_CALL_SAVE_FL_IOPL3 0x240u
#define MON_CALL_RD_KGS	       0x280u
#define MON_CALL_WR_KGS	       0x2c0u
#define MON_CALL_MAX_PAD       2u
#define MON_CALL_KGS_PAD       6u     /* the 11 bytes of a gsbase site, less the call */
#define MON_CALL_ENABLE_UD2    0x17u  /* the ud2's offset in the sti stand-in */
#define MON_CALL_SYNC	       0x300u /* two slots */
#define MON_CALL_SYNC_PAD      15u    /* to the end of the 20-byte site */
#define MON_CALL_SYNC_SITE     20u
#define MON_CALL_SYNC_UD2      0x48u  /* the slow path's ud2, in the sync stand-in */
#define MON_CALL_IRET	       0x380u /* four slots */
#define MON_CALL_IRET_SITE     7u     /* iretq + the 5-byte nopl after it */
#define MON_CALL_IRET_UD2      0xdfu  /* the slow path's ud2, in the iret stand-in */
#define MON_CALL_CX16	       0x480u /* one slot */
#define MON_CALL_SS_CMP	       0x4c0u /* one slot */
#define MON_CALL_SS_PAD	       2u     /* the cmp's last 2 bytes */
#define MON_CALL_RD_CR2	       0x500u /* one slot */
#define MON_CALL_CR2_PAD       1u     /* the site's 6 bytes, less the call */
#define MON_CALL_SWAPGS	       0x540u /* one slot */
#define MON_CALL_SWAPGS_PAD    1u     /* the site's 6 bytes, less the call */
#define MON_CALL_LOAD_GS       0x580u /* two slots */
#define MON_CALL_LOAD_GS_SITE  11u    /* the site's bytes; the pad is 6 */
#define MON_CALL_LOAD_GS_UD2   0x6cu  /* the slow path's ud2, in the load_gs stand-in */
#define MON_CALL_LOAD_FS       0x600u /* one slot */
#define MON_CALL_LOAD_FS_SITE  9u     /* the site's bytes; the pad is 4 */
#define MON_CALL_LOAD_FS_UD2   0x3au  /* the slow path's ud2, in the load_fs stand-in */
#define MON_CALL_WRMSR	       0x640u /* two slots */
#define MON_CALL_WRMSR_SITE    8u     /* the site's bytes; the pad is 3 */
#define MON_CALL_WRMSR_UD2     0x6bu  /* the slow path's ud2, in the wrmsr stand-in */
#define MON_CALL_SS_LOAD       0x6c0u /* two slots */
#define MON_CALL_SS_LOAD_SITE  7u     /* the site's bytes; the pad is 2 */
#define MON_CALL_SS_LOAD_UD2   0x57u  /* the slow path's ud2, in the SS stand-in */
#define MON_CALL_CODE_END      (MON_CALL_SS_LOAD + 2 * MON_CALL_SLOT) /* of the stand-ins */

/*
 * Indirect sites. Before Linux's alternatives run (the first part of its
 * boot) and in modules not yet patched, a paravirt irq-flag site is still
 * `call *pv_ops+N(%rip)` (ff 15 disp32), and the op it calls is the native
 * body (decode/patch.h, patch_pv_body), whose cli or sti traps. The VMM
 * rewrites such a site into `call rel32` to a thunk, then one nop (never
 * run). The thunk, in the code page after the stand-ins, re-checks at every
 * call what made the rewrite right: that the pointer still holds the body's
 * address, that the body still holds the same bytes, and (a body that ends
 * in `jmp`) that the jmp still reaches a `ret`. Then it moves the return
 * address past the nop and jumps to the stand-in (pad 0) for the body's
 * kind; if anything changed, it jumps where the pointer says, returning to
 * the end of the site: the original call, exactly.
 *
 *   pushfq; addq $1,8(%rsp); push %rax
 *   mov slot(%rip),%rax; cmp target(%rip),%rax; jne 1f
 *   mov (%rax),%rax; and mask(%rip),%rax; cmp bytes(%rip),%rax; jne 1f
 *   [cmpb $0xc3,ret_byte(%rip)]                 a body that ends in jmp
 *   1: pop %rax; jne 2f; popfq; jmp stand-in
 *   2: popfq; jmp *slot(%rip)
 *   target, mask, bytes: 8-byte literals at the end of the thunk
 *
 * Direct sites. Once Linux's apply_paravirt has run, and until its
 * alternatives inline them, the same sites are `call body` (e8 rel32, then
 * a nop): text_poke_early's own irq save/restore among them, for every one
 * of the ~100k patches of a boot. Such a call becomes a call to a thunk
 * without a pointer (`slot` 0): `mov body(%rip),%rax` reads the body's
 * bytes, checked as above with its return; the slow path is `jmp body`.
 * No pad to add: the call's return address is already the site's end.
 */
#define MON_CALL_THUNKS	    MON_CALL_CODE_END /* the first thunk's offset */
#define MON_CALL_THUNK_SIZE 0x80u
#define MON_CALL_MAX_THUNKS ((PAGE_SIZE - MON_CALL_THUNKS) / MON_CALL_THUNK_SIZE)
#define MON_CALL_THUNK_SITE 6u /* ff 15 disp32; rewritten: e8 rel32, nop */

/*
 * Where a vCPU stands inside a stand-in, so that the VMM can finish one
 * without running it. Every stand-in passes through these stages in this
 * order (AT_ENTRY's pad already added for none of them), and touches the
 * stack in no other way.
 */
enum mon_call_stage {
	MON_CALL_AT_ENTRY = 1, /* [rsp]: the return address (its pad not yet added) */
	MON_CALL_FLAGS_SAVED,  /* [rsp]: the site's flags, [rsp+8]: the return address */
	MON_CALL_RETURN_SET,   /* the same, with the pad added to the return address */
	MON_CALL_AT_RET,       /* popfq done, at the ret: [rsp] the final return address */
	/*
	 * In a thunk, where nothing is done yet that counts: the VMM undoes
	 * what is, and puts the vCPU back at the site's call.
	 */
	MON_CALL_THUNK_AT_ENTRY,    /* [rsp]: the return address (the site's call + 5) */
	MON_CALL_THUNK_FLAGS_SAVED, /* [rsp]: the site's flags, [rsp+8]: the return address */
	MON_CALL_THUNK_RETURN_SET,  /* the same, the return address at the site's end */
	MON_CALL_THUNK_RAX_SAVED,   /* [rsp]: the site's RAX, then as THUNK_RETURN_SET */
	MON_CALL_THUNK_AT_JMP,	    /* [rsp]: the return address, at the site's end */
	/*
	 * In the sync stand-in: until its checks passed it has done nothing
	 * that counts, and the VMM undoes it (the site's RAX and flags are on
	 * its stack); once they passed, the VMM completes it.
	 */
	MON_CALL_SYNC_AT_ENTRY,	      /* [rsp]: the site's call + 5 */
	MON_CALL_SYNC_FLAGS_SAVED,    /* [rsp]: the site's flags, then as AT_ENTRY */
	MON_CALL_SYNC_RAX_SAVED,      /* [rsp]: the site's RAX, then as FLAGS_SAVED */
	MON_CALL_SYNC_RAX_RETURN_SET, /* the same, the return address at the site's end */
	MON_CALL_SYNC_RETURN_SET,     /* checked: [rsp] the site's end, RAX and flags not yet set */
	MON_CALL_SYNC_AT_RET,	      /* [rsp]: the site's end; RAX and the flags final */
	/*
	 * In the iret stand-in: until it sets vif it has done nothing that
	 * counts (its stores to iret_rip/iret_rsp are scratch), and the VMM
	 * undoes it; from then on the VMM completes it. The iret frame sits
	 * above the return address throughout.
	 */
	MON_CALL_IRET_AT_ENTRY,	   /* [rsp]: the site's call + 5 */
	MON_CALL_IRET_FLAGS_SAVED, /* [rsp]: the site's flags, then as AT_ENTRY */
	MON_CALL_IRET_RAX_SAVED,   /* [rsp]: the site's RAX, then as FLAGS_SAVED */
	MON_CALL_IRET_NEW_FLAGS,   /* [rsp]: the frame's flags, then as RAX_SAVED */
	MON_CALL_IRET_AT_POPFQ,	   /* checked, vif set: [rsp] the flags to load (AC clear) */
	MON_CALL_IRET_AT_POP_RAX,  /* [rsp]: the site's RAX; the flags final */
	MON_CALL_IRET_AT_LOAD_RSP, /* RAX final: RSP := iret_rsp next */
	MON_CALL_IRET_AT_JMP,	   /* RSP final: RIP := iret_rip next */
	/*
	 * In the cmpxchg16b stand-in: until its cmpxchg16b has run it has done
	 * nothing that counts, and the VMM undoes it (back to the body's
	 * start); from then on the VMM completes it. The return address into
	 * the body's caller sits above what it pushed throughout.
	 */
	MON_CALL_CX16_AT_ENTRY,	   /* [rsp]: the return address */
	MON_CALL_CX16_FLAGS_SAVED, /* [rsp]: the body's flags, then the return address */
	MON_CALL_CX16_RDX_SAVED,   /* [rsp]: the body's RDX, then as FLAGS_SAVED */
	MON_CALL_CX16_RAX_SAVED,   /* [rsp]: the body's RAX, then as RDX_SAVED: at the cmpxchg16b */
	MON_CALL_CX16_DONE,	   /* compared (ZF: equal, stored): the stack as RAX_SAVED */
	MON_CALL_CX16_RAX_BACK,	   /* RAX restored; [rsp]: RDX, then as FLAGS_SAVED */
	MON_CALL_CX16_AT_JNE,	   /* RDX restored; [rsp]: the flags, the return address */
	MON_CALL_CX16_OK_POPFQ,	   /* equal: the same stack, ZF's job done */
	MON_CALL_CX16_OK_SET,	   /* equal, flags back: %al := 1 next */
	MON_CALL_CX16_FAIL_POPFQ,  /* not equal: as OK_POPFQ */
	MON_CALL_CX16_FAIL_SET,	   /* not equal, flags back: `xor %al,%al` next */
	MON_CALL_CX16_AT_RET,	   /* all final: [rsp] the return address */
	/* In the SS stand-in: the VMM completes it (it writes nothing but its return address). */
	MON_CALL_SS_AT_ENTRY,	/* [rsp]: the site's call + 5 */
	MON_CALL_SS_RETURN_SET, /* [rsp]: the site's end */
	MON_CALL_SS_AX_SET,	/* %ax is the virtual SS: the cmp next */
	MON_CALL_SS_AT_RET,	/* all final */
	/*
	 * In the swapgs stand-in: the VMM completes it. Until its xchg the
	 * exchange has not begun; after it, the data page holds the new
	 * kernel_gs_base and %rax the new GS base, not yet loaded.
	 */
	MON_CALL_SWAPGS_AT_ENTRY,    /* [rsp]: the site's call + 5 */
	MON_CALL_SWAPGS_FLAGS_SAVED, /* [rsp]: the site's flags, then as AT_ENTRY */
	MON_CALL_SWAPGS_RETURN_SET,  /* the same, the return address at the site's end */
	MON_CALL_SWAPGS_RAX_SAVED,   /* [rsp]: the site's RAX, then as RETURN_SET */
	MON_CALL_SWAPGS_EXCHANGED,   /* the data page swapped: GS base := %rax next */
	MON_CALL_SWAPGS_GS_SET,	     /* the exchange done: the stack as RAX_SAVED */
	MON_CALL_SWAPGS_RAX_BACK,    /* RAX final: [rsp] the flags, the site's end */
	MON_CALL_SWAPGS_AT_RET,	     /* all final: [rsp] the site's end */
	/*
	 * In the load_gs stand-in: the VMM completes it for a null selector,
	 * and for user_sel from SEL_SET on (its check passed); before that,
	 * and for any other selector, it undoes it (back to the site).
	 */
	MON_CALL_LOAD_GS_AT_ENTRY,    /* [rsp]: the site's call + 5 */
	MON_CALL_LOAD_GS_FLAGS_SAVED, /* [rsp]: the site's flags, then as AT_ENTRY */
	MON_CALL_LOAD_GS_RETURN_SET,  /* the same, the return address at the site's end */
	MON_CALL_LOAD_GS_RDI_SAVED,   /* as RETURN_SET, the site's RDI in load_gs_rdi */
	MON_CALL_LOAD_GS_SEL_SET,     /* gs_sel stored, kernel_gs_base next (null: if it clears) */
	MON_CALL_LOAD_GS_DONE,	      /* the data page final: popfq next */
	MON_CALL_LOAD_GS_AT_RET,      /* all final: [rsp] the site's end */
	/*
	 * In the load_fs stand-in: before its checks passed the VMM puts the
	 * vCPU after the site's first instruction (%edx 0x2b, the site's
	 * flags); from CHECKED on it completes it (FS null, base 0).
	 */
	MON_CALL_LOAD_FS_AT_ENTRY,    /* [rsp]: the site's call + 5 */
	MON_CALL_LOAD_FS_FLAGS_SAVED, /* [rsp]: the site's flags, then as AT_ENTRY */
	MON_CALL_LOAD_FS_RETURN_SET,  /* the same, the return address at the site's end */
	MON_CALL_LOAD_FS_CHECKED,     /* checked: the real FS := MON_SEL_UDATA next */
	MON_CALL_LOAD_FS_BASE_ZERO,   /* the real FS base 0: its null selector next */
	MON_CALL_LOAD_FS_DONE,	      /* FS final: %edx := 0x2b, popfq next */
	MON_CALL_LOAD_FS_AT_RET,      /* all final: [rsp] the site's end */
	/*
	 * In the wrmsr stand-in: until it publishes the new FS base it has
	 * changed nothing that counts (no register), and the VMM undoes it
	 * (back to the site's start); from PUBLISHED on it completes it.
	 */
	MON_CALL_WRMSR_AT_ENTRY,    /* [rsp]: the site's call + 5 */
	MON_CALL_WRMSR_FLAGS_SAVED, /* [rsp]: the site's flags, then as AT_ENTRY */
	MON_CALL_WRMSR_RETURN_SET,  /* the same, the return address at the site's end */
	MON_CALL_WRMSR_PUBLISHED,   /* fs_pending names the new base: the site's movs next */
	MON_CALL_WRMSR_DONE,	    /* EAX, ECX final: popfq next */
	MON_CALL_WRMSR_AT_RET,	    /* all final: [rsp] the site's end */
	/*
	 * In the SS load stand-in: until it sets ss_loaded the VMM puts the
	 * vCPU after the site's first instruction (%eax 0x18); from LOADED on
	 * it completes it (the virtual SS is __KERNEL_DS's, from the key).
	 */
	MON_CALL_SS_LOAD_AT_ENTRY,    /* [rsp]: the site's call + 5 */
	MON_CALL_SS_LOAD_FLAGS_SAVED, /* [rsp]: the site's flags, then as AT_ENTRY */
	MON_CALL_SS_LOAD_RETURN_SET,  /* the same, the return address at the site's end */
	MON_CALL_SS_LOAD_LOADED,      /* ss_loaded set: the other stand-ins' fields next */
	MON_CALL_SS_LOAD_DONE,	      /* %eax 0x18 next, then popfq */
	MON_CALL_SS_LOAD_AT_RET,      /* all final: [rsp] the site's end */
};

struct mon_call_point {
	unsigned fn;  /* MON_CALL_*; a thunk's offset in the window for its stages */
	unsigned pad; /* 0-2; a thunk: 1 for an indirect site, 0 for a direct one */
	enum mon_call_stage stage;
};

/* What a thunk checks and where it goes (see above). */
struct mon_call_thunk {
	u64 slot;   /* gva of the pointer the site calls through; 0: a direct call */
	u64 target; /* what it held: the body's gva */
	u64 bytes;  /* the body's first 8 bytes under `mask` as memory holds them */
	u64 orig;   /* ... as the guest wrote them (our own pushf patches undone) */
	u64 mask;
	u64 ret_byte; /* gva of the `ret` the body's jmp reaches, 0 for a body that ends in ret */
	unsigned fn;  /* the stand-in: MON_CALL_* */
};

/*
 * Where the stand-in at `fn` (MON_CALL_*) for `pad` bytes after the site's
 * rel32 (0-2; the iopl3, gsbase and sync ones have one pad) starts.
 */
static inline u64 monitor_call_entry(unsigned fn, unsigned pad)
{
	return MON_CALL_GVA + fn + (fn < MON_CALL_SAVE_FL_IOPL3 ? pad * MON_CALL_SLOT : 0);
}

struct mon_call_data {
	u64 virt_flags; /* IOPL and AC of the guest kernel's virtual RFLAGS */
	u8 vif;		/* its virtual IF: 0 or 1 */
	u8 pending;	/* 1: the sti stand-in must trap (an interrupt held, or the TPR masks) */
	u8 pad_[6];
	u64 kernel_gs_base; /* the guest's virtual KERNEL_GS_BASE (both strategies) */
	/*
	 * For the sync stand-in (vmm/call_sync.c fills them): where the guest's
	 * descriptor table holds the descriptor of its CS, and the value an
	 * iretq would reload unchanged; the same for SS. A null SS needs no
	 * descriptor: its gva is that of ss_desc itself. When no value would
	 * do, cs_desc_gva is that of `zero` and cs_desc 1: the stand-in always
	 * takes its slow path.
	 */
	u64 cs_desc_gva, cs_desc, ss_desc_gva, ss_desc;
	u64 zero;
	u32 kernel_cs;		/* the virtual CS selector: what `mov %cs` reads */
	u32 kernel_ss;		/* the virtual SS selector (the iret stand-in's check) */
	u64 iret_rip, iret_rsp; /* the iret stand-in's scratch: where it goes */
	u64 cr2;		/* the guest's virtual CR2 (MON_CALL_RD_CR2) */
	u16 gs_sel;		/* the virtual GS selector (MON_CALL_LOAD_GS writes it) */
	u8 null_clears;		/* 1: a null GS load clears the base (Intel) */
	u8 pad2_;
	/*
	 * The load_gs stand-in's non-null selector, and the load_fs one's
	 * (vmm/call_sync.c fills them, call_load_gs_fill): user_sel, and the value of its
	 * descriptor, at user_sel_desc_gva, that the VMM found loadable with base 0. While none is,
	 * user_sel_desc_gva is that of `zero` and user_sel_desc 1.
	 */
	u16 user_sel;
	u16 pad3_;
	u64 user_sel_desc_gva, user_sel_desc;
	u64 load_gs_rdi; /* the stand-in's scratch: the site's RDI while it reads the table */
	/*
	 * The wrmsr stand-in's FS base (MON_CALL_WRMSR): fs_pending 1 or 2
	 * says fs_base_new[0] or [1] holds a value written since the last
	 * trap, which the VMM loads then (vmm/shadow_cpu.c); the stand-in
	 * fills the other slot and publishes it with one byte store, so a
	 * trap in between finds a whole value. fs_defer: 1 while the VMM lets
	 * it (no guest kernel code seen that could read FS's base).
	 */
	u64 fs_base_new[2];
	u32 fs_scratch; /* the stand-in's: the value's high half, biased, for its check */
	u8 fs_pending, fs_defer;
	/*
	 * The SS stand-in's (MON_CALL_SS_LOAD): where the guest's table holds
	 * __KERNEL_DS's descriptor and the value the VMM found loadable as SS
	 * at CPL0 and accessed (vmm/call_sync.c, call_ss_load_fill; else that
	 * of `zero` and 1); ss_loaded: 1 once the stand-in loaded it, until
	 * the VMM takes it into the virtual SS at the next trap.
	 */
	u8 ss_loaded;
	u8 pad4_;
	u64 ss_key_gva, ss_key_desc;
	/*
	 * The flags of a frame the iret stand-in compares with virt_flags:
	 * MON_IRET_CHECKED_FLAGS, and RF while the guest arms an instruction
	 * breakpoint (vmm/shadow_cpu.c), so that a frame with RF takes the
	 * slow path, whose real iretq keeps RF (the stand-in's popfq cannot
	 * set it, and the breakpoint would fire again).
	 */
	u64 iret_flags_mask;
};

/*
 * The flags of an iret frame the iret stand-in checks: IOPL, AC, TF, NT,
 * VM, VIF, VIP. Not RF (set in the frame of every fault) unless an
 * instruction breakpoint is armed (iret_flags_mask): RF only suppresses
 * those, and the CPU clears it after the first instruction at the target.
 */
#define MON_IRET_CHECKED_FLAGS 0x1e7100ull

/* The 64-bit iret frame as the CPU pushes it (SDM Vol. 3A §6.14.2). */
struct mon_frame {
	u64 rip, cs, rflags, rsp, ss;
};

struct monitor {
	u8 *region; /* hva of the region (owned) */
	mpa_t region_mpa;
	u8 *pool; /* hva of the shadow pool (owned) */
	mpa_t pool_mpa;
	u64 pool_bytes;
	/* Stores queued since the last return, applied by the tail in order. */
	u64 (*queue)[2]; /* [gva of the spte, value], MON_QUEUE_MAX entries */
	unsigned nr_queued;
	bool overflow;	   /* more than MON_QUEUE_MAX stores in one batch */
	bool need_flush;   /* reload CR3 on return: a TLB flush was asked for */
	mpa_t loaded_root; /* what the real CR3 holds */
	/*
	 * The real TPR (CR8): what the LAPIC holds and what the next return
	 * must load (the VMM masks fixed interrupts with it while the guest's
	 * virtual IF is 0, vmm/shadow_event.c). tail_entry: where
	 * monitor_prepare_return said the vCPU must start.
	 */
	u8 tpr, want_tpr;
	u64 tail_entry;
	/* Guest user selectors installed in the real GDT (0: none), see above. */
	u16 user_cs, user_ss;
	/* Per byte of the call window's code: the stage of an instruction starting there, or 0. */
	u8 call_stage[PAGE_SIZE];
	struct mon_call_thunk thunks[MON_CALL_MAX_THUNKS];
	unsigned nr_thunks;
};

/*
 * Map the region and the pool (anonymous, owned by *mon) above `ram_top`
 * (the end of guest RAM), and build the GDT, TSS, IDT, stubs, tail and the
 * monitor's page tables. Returns 0 or -errno; on error nothing is left mapped.
 */
int monitor_create(struct monitor *mon, u64 ram_top, u64 pool_bytes) __must_check;
void monitor_destroy(struct monitor *mon);

/* The PML4 entry that maps the monitor (supervisor-only), for shadow_reserve_pml4. */
u64 monitor_pml4e(const struct monitor *mon);

/* Queue one store into the pool at `spte_mpa` for the tail. */
void monitor_queue_store(struct monitor *mon, mpa_t spte_mpa, u64 val);

/* The frame the CPU pushed at the top of the monitor stack (hva). */
struct mon_frame *monitor_frame(const struct monitor *mon);
/* The error code below it (valid only for vectors that push one). */
u64 monitor_error_code(const struct monitor *mon);
/* Whether the CPU pushes an error code for exception `vector` (SDM Vol. 3A §6.13). */
bool monitor_vector_has_error_code(unsigned vector);

/*
 * If `rip` (the exit's RIP) lies in a stub, set *vector and return true.
 * Both the `out` itself and the instruction after it count: hosts differ
 * in whether the exit reports RIP before or after the `out`.
 */
bool monitor_stub_vector(u64 rip, unsigned *vector);

/* The RSP the CPU leaves after pushing a frame for `vector` (error code included). */
u64 monitor_trap_rsp(unsigned vector);

/*
 * Lay out the stack for the tail (step 3 above): the frame *monitor_frame()
 * as it is now, `guest_rbx`, CR3 := `root` if it differs from what the real
 * CR3 holds or a flush was asked for, the queued stores, and CR8 := want_tpr
 * below them when it differs from tpr; empties the queue. Returns the RSP
 * (a gva) to start the tail with, and sets tail_entry to the RIP.
 */
u64 monitor_prepare_return(struct monitor *mon, mpa_t root, u64 guest_rbx);

/*
 * The shadow MMU's flusher (shadow/mmu.h; `opaque` is the monitor): any
 * flush is a reload of CR3 in the next tail, which drops every non-global
 * translation (no spte is global: the monitor's entries do not use G, nor
 * do the library's). LIMITATION: SHADOW_FLUSH_GVA is widened to a full flush.
 */
void monitor_flush(void *opaque, enum shadow_flush_kind kind, gva_t gva);

/*
 * The real CS and SS to run guest code on: the monitor's DPL3 pair for the
 * guest kernel (`user` false; its 32-bit code segment when `cs_l` is false:
 * a Multiboot kernel before long mode runs in compatibility mode), else the
 * guest's own user selectors `cs`/`ss`
 * (descriptors: `cs_l` 64-bit code, else 32-bit), which this installs as
 * flat DPL3 descriptors at their GDT indexes and removes again when the
 * guest kernel runs. A selector the real GDT cannot host (index 0, an LDT
 * selector, or an index of the monitor's own) falls back to the monitor's
 * pair: `mov %cs` then reads 0x15b (LIMITATION, rare: no known guest).
 * It also turns the real I/O bitmap off for user code and on for the kernel.
 * (On PVM hosts CPL3 runs on the host's GDT and `mov %cs` shows the host's
 * selector whatever this installs; the descriptors matter where the host
 * honours the VM's GDT.)
 */
void monitor_set_user_segs(struct monitor *mon, bool user, u16 cs, bool cs_l, u16 ss, u16 *real_cs,
			   u16 *real_ss);

/*
 * Linux's per-CPU segment, GDT index 15 (selector 0x7b): its limit holds the
 * CPU and node numbers, which the vDSO's getcpu reads with `lsl` at CPL3 on
 * CPUs without RDPID, natively, so from the real GDT. This copies the
 * guest's descriptor `desc` there if it is a present DPL3 data descriptor,
 * else clears the slot; true if copied. (A guest whose user CS or SS sits
 * at index 15 loses it while its user code runs: none known. On PVM hosts
 * CPL3 runs on the host's GDT and `lsl` reads the host's own entry.)
 */
#define MON_GDT_CPUNODE 15u
bool monitor_set_cpunode(struct monitor *mon, u64 desc);

/*
 * For shadow_set_window: the PDE that maps the call window's PT, and the
 * PDPTE of a PD that holds only that PDE (for a guest whose PDPT has no
 * entry over the window: testos).
 */
u64 monitor_call_pde(const struct monitor *mon);
u64 monitor_call_pdpte(const struct monitor *mon);

/*
 * Write `opcode` (e8 call, e9 jmp) with the rel32 from a site at gva `at`
 * to `target` into insn[0..5); false if `target` is out of a rel32's reach.
 */
static inline bool monitor_put_rel32(u8 *insn, u8 opcode, u64 at, u64 target)
{
	s64 rel = (s64)(target - (at + 5));

	if (rel != (s32)rel)
		return false;
	insn[0] = opcode;
	le_put32(insn, 1, (u32)rel);
	return true;
}

/* The call window's data page (hva). */
struct mon_call_data *monitor_call_data(const struct monitor *mon);

/* Is `rip` (a trap's) the sti stand-in's ud2 (an interrupt held)? */
bool monitor_call_is_pending_trap(u64 rip);
/* Is `rip` (a trap's) the iret stand-in's ud2 (its slow path)? */
static inline bool monitor_call_is_iret_trap(u64 rip)
{
	return rip == MON_CALL_GVA + MON_CALL_IRET + MON_CALL_IRET_UD2;
}
/* Is `rip` (a trap's) the load_gs stand-in's ud2 (a selector not null)? */
static inline bool monitor_call_is_load_gs_trap(u64 rip)
{
	return rip == MON_CALL_GVA + MON_CALL_LOAD_GS + MON_CALL_LOAD_GS_UD2;
}
/* Is `rip` (a trap's) the load_fs stand-in's ud2 (its slow path)? */
static inline bool monitor_call_is_load_fs_trap(u64 rip)
{
	return rip == MON_CALL_GVA + MON_CALL_LOAD_FS + MON_CALL_LOAD_FS_UD2;
}
/* Is `rip` (a trap's) the wrmsr stand-in's ud2 (its slow path)? */
static inline bool monitor_call_is_wrmsr_trap(u64 rip)
{
	return rip == MON_CALL_GVA + MON_CALL_WRMSR + MON_CALL_WRMSR_UD2;
}
/* Is `rip` (a trap's) the SS load stand-in's ud2 (its slow path)? */
static inline bool monitor_call_is_ss_load_trap(u64 rip)
{
	return rip == MON_CALL_GVA + MON_CALL_SS_LOAD + MON_CALL_SS_LOAD_UD2;
}
/* Is `rip` (a trap's) the sync stand-in's ud2 (its slow path)? */
static inline bool monitor_call_is_sync_trap(u64 rip)
{
	return rip == MON_CALL_GVA + MON_CALL_SYNC + MON_CALL_SYNC_UD2;
}

/*
 * Thunk `i`'s body now holds `bytes` in memory (under its mask): the VMM
 * patched or unpatched the body's pushf, which the guest does not see.
 */
void monitor_call_thunk_rebytes(struct monitor *mon, unsigned i, u64 bytes);

/* If `rip` is an instruction boundary of a stand-in or thunk, say which, and where in it. */
bool monitor_call_point(const struct monitor *mon, u64 rip, struct mon_call_point *p);

/*
 * The thunk for `t` (an equal one if made before), its gva in *entry.
 * Returns 0, -ERANGE if `slot` or `ret_byte` is out of a rel32's reach
 * from the window, or -ENOSPC when MON_CALL_MAX_THUNKS are made.
 */
int monitor_call_thunk(struct monitor *mon, const struct mon_call_thunk *t, u64 *entry);

/* Whether `rip` lies in the idle loop (a wake-up frame's RIP). */
bool monitor_is_idle_rip(u64 rip);

static inline u64 monitor_gva(u64 off)
{
	return MON_GVA + off;
}

#endif /* UMBRA_VMM_MONITOR_H */
