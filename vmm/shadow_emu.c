// SPDX-License-Identifier: MIT
/*
 * The emulator's callbacks in shadow mode and their follow-up
 * (vmm/shadow_emu.h).
 *
 * 1. map_phys: translate through the guest's tables as the virtual CPU
 *    sees them (virtual CR0/CR3/CR4/EFER), setting A/D as the CPU would;
 *    writes go to RAM only, reads and fetches may hit the ROM window, and
 *    anything else is MMIO.
 * 2. write: one call per store of the instruction (or of an exception
 *    frame). RAM pieces are written from here, which is safe because guest
 *    RAM is never one of the VM's real page tables in shadow mode (the
 *    shadow pool is), and then told to the shadow MMU with shadow_pt_write,
 *    as mmu.h requires for every VMM write into guest memory (a no-op for
 *    a gfn that is not a shadowed table). Pieces that are not RAM go to the
 *    MMIO bus.
 * 3. flush_tlb: invlpg/invpcid to the shadow MMU, whose flusher asks the
 *    tail to reload CR3.
 * 4. XCR0 is virtual (the real one stays the host's); the MSRs emu_cpu
 *    does not hold are vmm/shadow_msr.c's (a snapshot taken at set-up,
 *    never an ioctl on the trap path; its table gives the policy).
 * 5. After an instruction or an event: CR3 -> shadow_set_cr3, paging mode
 *    -> shadow_set_mode, CPL -> the other view.
 * 6. Patched code (decode/patch.h, vmm/code_scan.c scans it): an
 *    instruction whose first byte is one of our int3 patches is emulated
 *    from the original bytes the patch table keeps; a store into a scanned
 *    code frame (write-tracked by the shadow MMU) first puts the frame's
 *    original bytes back and revokes its execution approval, so the next
 *    kernel fetch there rescans it.
 * 7. pio: guest user code's in/out/ins/outs, which the emulator checked
 *    against the virtual CPL, IOPL and the guest TSS's I/O bitmap, go to
 *    the port bus (a port nobody decodes reads as all ones).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "decode/chain.h"
#include "decode/decode.h"
#include "shadow/x86.h"
#include "umbra/le.h"
#include "umbra/log.h"
#include "vmm/cpu_features.h"
#include "vmm/emulate_glue.h"
#include "vmm/exitcode.h"
#include "vmm/guest_access.h"
#include "vmm/monitor.h"
#include "vmm/shadow_cpu.h"
#include "vmm/shadow_emu.h"
#include "vmm/shadow_mode.h"
#include "vmm/shadow_msr.h"
#include "vmm/vm.h"

#define PT_WRITE_CHUNK 16 /* the most shadow_pt_write takes at once */

static const struct emu_ops *ops_for(struct vm *vm);

/* Item 1. */
static enum emu_map_result map_phys(void *opaque, u64 la, unsigned len, u32 access, gpa_t *gpa,
				    void **hva, struct emu_event *fault)
{
	struct vm *vm = opaque;
	struct walk_ctl ctl = shadow_cpu_walk_ctl(&vm->shadow->cpu);

	return guest_translate_emu(&vm->mem, &ctl, la, len, access, gpa, hva, fault);
}

static bool mmio_read(void *opaque, gpa_t a, void *buf, unsigned len)
{
	struct vm *vm = opaque;

	if (!bus_access(&vm->mmio, a.v, buf, len, false)) {
		memset(buf, 0xff, len); /* nothing there: the bus floats */
		vm->stats.mmio_unknown++;
	}
	return true;
}

/* PAE paging: a PDPTE load (decode/emulate.h); the walker's rule for the reserved bits. */
static bool load_pdptes(void *opaque, u64 cr3, u64 pdpte[4])
{
	struct vm *vm = opaque;
	struct walk_mem wm = guest_walk_mem(&vm->mem);

	return walk_read_pdptes(&wm, cr3, vm->shadow->cpu.virt.maxphyaddr, pdpte);
}

/* Item 7. */
static bool pio(void *opaque, u16 port, void *data, unsigned size, bool is_out)
{
	struct vm *vm = opaque;

	vm->stats.guest_io++;
	if (!bus_access(&vm->pio, port, data, size, is_out)) {
		vm->stats.pio_unknown++;
		if (!is_out)
			memset(data, 0xff, size);
	}
	return true;
}

/* Where the guest fetches linear `la` from, with its paging now; false if nowhere. */
static bool fetch_gpa(struct vm *vm, u64 la, gpa_t *at)
{
	struct walk_ctl ctl = shadow_cpu_walk_ctl(&vm->shadow->cpu);

	return guest_fetch_gpa(&vm->mem, &ctl, la, at);
}

/*
 * Item 6: the guest writes frame `a` lies in. If it was scanned and approved
 * for execution, restore its original bytes and forget its patches before
 * the store lands; the shadow MMU gates it again (NX in the kernel view).
 * Its scan's record is retired as history (vmm/insn_starts.h), telling
 * whether the store's instruction, at linear `writer_la` (0: no store), is
 * in the frame itself, as memcpy is when Linux patches memcpy's own page:
 * memcpy goes on from the frame after each store, so the rescan then may
 * see an instruction half rewritten.
 */
static void unpatch_frame(struct vm *vm, gpa_t a, bool guest_write, u64 writer_la)
{
	struct shadow_mode *sm = vm->shadow;
	gfn_t g = gpa_to_gfn(a);
	void *page;
	gpa_t code;

	if (!shadow_exec_revoke(sm->mmu, g))
		return;
	page = gpa_to_hva(&vm->mem, gfn_to_gpa(g), PAGE_SIZE);
	if (vm->trace)
		fprintf(vm->trace, "revoke gfn 0x%llx (%s)\n", (unsigned long long)g.v,
			guest_write ? "guest write" : "new entry");
	if (guest_write)
		vm->stats.code_page_writes++;
	else
		vm->stats.code_page_rescans++;
	if (page)
		(void)patch_page_undo(&sm->patches, g, page);
	/* Kept as history, with the bytes: which int3s the guest writes over its instructions. */
	insn_starts_retire(&sm->starts, g, page,
			   writer_la && fetch_gpa(vm, writer_la, &code) &&
				   gpa_to_gfn(code).v == g.v);
}

/* Item 6: undo every frame with a rewrite; each is rescanned on its next fetch. */
bool shadow_emu_undo_rewrites(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	unsigned n;
	gfn_t *frames;

	/* Listed first: each undo drops its frame's record from the table. */
	n = patch_rewrite_frames(&sm->patches, NULL, 0);
	frames = calloc(n ? n : 1, sizeof(*frames));
	if (!frames) {
		vm_kill(vm, UMBRA_EXIT_INTERNAL,
			"shadow mode: out of memory undoing %u frames of rewrites", n);
		return false;
	}
	n = patch_rewrite_frames(&sm->patches, frames, n);
	for (unsigned i = 0; i < n; i++)
		unpatch_frame(vm, gfn_to_gpa(frames[i]), false, 0);
	free(frames);
	return true;
}

/*
 * Item 6: the save_fl rewrites clear IOPL in what the guest kernel's pushf
 * saved, which is exact only while its IOPL is 0. The IOPL changes only by
 * emulated instructions (popf, iretq, sysret are all patched or trap), so
 * this check at the end of every trap sees each change before the guest
 * runs on: undo every rewritten frame (each is rescanned on its next fetch,
 * with int3 only) and rewrite no more.
 */
bool shadow_emu_check_rewrites(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;

	if (!sm->rewrite_save_fl || emu_cpl(&sm->cpu) != 0 || !(sm->cpu.rflags & RFLAGS_IOPL_MASK))
		return true;
	sm->rewrite_save_fl = false;
	pr_info("shadow mode: the guest kernel set IOPL %u: its pushf sites trap again",
		(unsigned)((sm->cpu.rflags & RFLAGS_IOPL_MASK) >> RFLAGS_IOPL_SHIFT));
	return shadow_emu_undo_rewrites(vm);
}

/*
 * Item 6: `la` is kernel code the guest enters or may reach (an event
 * handler, LSTAR, a branch out of a scanned page). The first time, if its
 * frame was approved without la as a scan entry, revoke it: the next fetch
 * rescans the frame from all its known entries (vmm/code_entries.h).
 */

void shadow_learn_entry(struct vm *vm, u64 la)
{
	struct shadow_mode *sm = vm->shadow;
	gpa_t at;

	if (code_entries_add(&sm->code_entries, la) != 1)
		return; /* known, or out of memory: scanning stays as complete as before */
	if (!fetch_gpa(vm, la, &at))
		return;
	/* Already an instruction of the frame's scan: a rescan would find nothing new. */
	if (insn_starts_has(&sm->starts, gpa_to_gfn(at), (unsigned)(at.v & (PAGE_SIZE - 1)))) {
		vm->stats.code_entries_known++;
		return;
	}
	unpatch_frame(vm, at, false, 0);
}

/* Item 2. */
static bool write_store(void *opaque, const struct emu_write *w)
{
	struct vm *vm = opaque;
	struct shadow_mode *sm = vm->shadow;
	u64 writer_la = sm->cpu.cs.base + sm->cpu.rip;

	for (unsigned i = 0; i < w->npieces; i++) {
		const struct emu_piece *p = &w->piece[i];
		const u8 *old = w->old_bytes + p->off, *new_bytes = w->new_bytes + p->off;

		if (!p->hva) {
			u8 data[8];

			if (p->len > sizeof(data))
				return false; /* no device register is wider */
			memcpy(data, new_bytes, p->len);
			if (!bus_access(&vm->mmio, p->gpa.v, data, p->len, true))
				vm->stats.mmio_unknown++;
			vm->stats.emulated_mmio++;
			continue;
		}
		unpatch_frame(vm, p->gpa, true, writer_la);
		if (((p->gpa.v + p->len - 1) >> PAGE_SHIFT) != (p->gpa.v >> PAGE_SHIFT))
			unpatch_frame(vm, gpa(p->gpa.v + p->len - 1), true, writer_la);
		memcpy(p->hva, new_bytes, p->len);
		for (unsigned off = 0; off < p->len; off += PT_WRITE_CHUNK)
			shadow_pt_write(sm->mmu, gpa(p->gpa.v + off),
					MIN(PT_WRITE_CHUNK, p->len - off), old + off,
					new_bytes + off);
	}
	return true;
}

/* Item 3. */
static bool flush_tlb(void *opaque, unsigned type, u64 pcid, u64 la)
{
	struct vm *vm = opaque;

	if (type == EMU_FLUSH_INVLPG)
		shadow_invlpg(vm->shadow->mmu, gva(la));
	else
		shadow_invpcid(vm->shadow->mmu, type, (u16)pcid, gva(la));
	return true;
}

/* Item 4. */
static bool read_xcr(void *opaque, u32 index, u64 *value)
{
	struct vm *vm = opaque;

	if (index != 0)
		return false;
	*value = vm->shadow->xcr0;
	return true;
}

/*
 * XCR0 as xsetbv checks it (SDM Vol. 2B XSETBV, Vol. 1 §13.3): only bits
 * CPUID.(0xd,0) reports, x87 set, AVX only with SSE, the three AVX-512
 * bits together and only with AVX. The real XCR0 stays the host's, a
 * superset: the guest's own xsave masks pick what it saves.
 */
#define XCR0_X87    (1ull << 0)
#define XCR0_SSE    (1ull << 1)
#define XCR0_AVX    (1ull << 2)
#define XCR0_AVX512 (7ull << 5)

static bool write_xcr(void *opaque, u32 index, u64 value)
{
	struct vm *vm = opaque;
	u64 avx512 = value & XCR0_AVX512;

	if (index != 0 || !(value & XCR0_X87) || (value & ~(vm->guest_xcr0_mask | XCR0_X87)) ||
	    ((value & XCR0_AVX) && !(value & XCR0_SSE)) ||
	    (avx512 && (avx512 != XCR0_AVX512 || !(value & XCR0_AVX))))
		return false;
	/*
	 * KVM's vCPU XCR0 is set too: CPUID.(0xd,0).EBX, the XSAVE area size
	 * the guest checks against its own sum, follows it. An ioctl on the
	 * trap path, but xsetbv runs once per CPU at boot.
	 */
	{
		struct kvm_xcrs x = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = value } } };

		if (ioctl(vm->vcpu_fd, KVM_SET_XCRS, &x) < 0)
			return false;
	}
	vm->shadow->xcr0 = value;
	return true;
}

/*
 * A cpuid that shadow mode trapped (SCAN_KIND_CPUID): answered from the
 * vCPU's own CPUID as KVM holds it now (KVM_GET_CPUID2), since KVM keeps
 * CPUID.(0xd,0).EBX, the XSAVE area size, in step with XCR0 (write_xcr).
 * An ioctl per cpuid, which Linux runs a few dozen times at boot.
 */
static bool cpuid(void *opaque, u32 leaf, u32 subleaf, u32 out[4])
{
	struct vm *vm = opaque;
	struct kvm_cpuid2 *c =
		calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
	bool ok = c != NULL;

	if (ok) {
		c->nent = CPUID_MAX_ENTRIES;
		ok = ioctl(vm->vcpu_fd, KVM_GET_CPUID2, c) == 0;
	}
	if (ok)
		cpu_features_lookup(c->entries, c->nent, vm->cpu_amd, leaf, subleaf, out);
	else
		pr_err("cpuid: KVM_GET_CPUID2: %s", c ? strerror(errno) : "out of memory");
	free(c);
	return ok;
}

static enum emu_msr_result msr(void *opaque, u32 index, bool is_write, u64 *value)
{
	return shadow_msr_access(opaque, index, is_write, value);
}

/* Item 5. */
/*
 * The CR4 the shadow MMU works with: the guest's, without SMAP while the
 * guest kernel runs with AC=1 (after stac), when SMAP does not apply to its
 * explicit accesses. So the kernel view maps user pages for the span of a
 * stac/clac section: copy_to_user and the like run natively (an xsave into
 * a signal frame cannot be emulated), and each stac/clac costs a root
 * switch from the cache instead of a trap per access.
 */
static u64 shadow_cr4(const struct emu_cpu *c)
{
	bool ac = emu_cpl(c) == 0 && (c->rflags & RFLAGS_AC);

	return ac ? c->cr4 & ~CR4_SMAP : c->cr4;
}

static void follow_cpu(struct vm *vm, u32 notes, bool cr3_noflush, unsigned old_cpl)
{
	struct shadow_mode *sm = vm->shadow;
	const struct emu_cpu *c = &sm->cpu;

	if (emu_cpl(c) != old_cpl)
		notes |= EMU_NOTE_CPL;
	if (notes & EMU_NOTE_CPL)
		sm->view = emu_cpl(c) == 0 ? SHADOW_VIEW_KERNEL : SHADOW_VIEW_USER;
	if (shadow_cr4(c) != sm->shadow_cr4)
		notes |= EMU_NOTE_PAGING_MODE;
	/* Before the mode and CR3: the roots they give follow the registers. */
	if (notes & EMU_NOTE_PDPTE)
		shadow_set_pdptes(sm->mmu, c->pdpte);
	if (notes & EMU_NOTE_PAGING_MODE) {
		sm->shadow_cr4 = shadow_cr4(c);
		shadow_set_mode(sm->mmu, c->cr0, sm->shadow_cr4, c->efer);
	}
	if (notes & EMU_NOTE_CR3) {
		sm->root = shadow_set_cr3(sm->mmu, c->cr3, sm->view);
		if (!cr3_noflush)
			sm->mon.need_flush = true;
	} else if (notes & (EMU_NOTE_PAGING_MODE | EMU_NOTE_CPL | EMU_NOTE_PDPTE)) {
		sm->root = shadow_switch_view(sm->mmu, sm->view);
	}
}

static enum emu_result deliver(void *opaque, struct emu_cpu *cpu, const struct emu_event *ev)
{
	struct vm *vm = opaque;

	vm->stats.reflected++;
	return emu_deliver_event(cpu, ops_for(vm), ev);
}

static const struct emu_ops *ops_for(struct vm *vm)
{
	static struct emu_ops ops = {
		.flush_tlb = flush_tlb,
		.deliver = deliver,
		.map_phys = map_phys,
		.mmio_read = mmio_read,
		.write = write_store,
		.msr = msr,
		.read_xcr = read_xcr,
		.write_xcr = write_xcr,
		.pio = pio,
		.load_pdptes = load_pdptes,
		.cpuid = cpuid,
		.get_xstate = vmm_xstate_get,
		.put_xstate = vmm_xstate_put,
	};

	ops.opaque = vm;
	return &ops;
}

bool shadow_emu_io_permitted(struct vm *vm, u16 port, unsigned size)
{
	return emu_io_permitted(&vm->shadow->cpu, ops_for(vm), port, size);
}

/*
 * Item 6: our patch at `la` (the guest fetching there), or NULL: an int3,
 * or with `iret` also the rewrite of an iretq into a call to its stand-in
 * (vmm/call_iret.h), which the VMM emulates as the iretq it stands for
 * when it is to run it in a trap (a chain, the stand-in's slow path).
 */
static const struct patch_site *patch_at(struct vm *vm, u64 la, bool iret)
{
	struct shadow_mode *sm = vm->shadow;
	struct walk_mem wm;
	struct walk_ctl ctl;
	struct guest_walk w;
	u32 acc = ACC_FETCH | (emu_cpl(&sm->cpu) == 3 ? ACC_USER : 0);
	const struct patch_site *site;

	if (!sm->patches.nsites)
		return NULL;
	wm = guest_walk_mem(&vm->mem);
	ctl = shadow_cpu_walk_ctl(&sm->cpu);
	if (walk_guest(paging_mode_select(&ctl), &wm, &ctl, gva(la), acc, WALK_PEEK, &w) != WALK_OK)
		return NULL;
	site = patch_lookup(&sm->patches, w.gpa);
	if (!site && iret && (site = patch_lookup_rewrite(&sm->patches, w.gpa)) &&
	    !(site->len >= 2 && site->orig[0] == 0x48 && site->orig[1] == 0xcf))
		site = NULL;
	return site;
}

bool shadow_emu_is_patch(struct vm *vm, u64 la)
{
	return patch_at(vm, la, false) != NULL;
}

/* After an instruction emulated with result `r`: the VMM's follow-up. */
static enum emu_result insn_done(struct vm *vm, enum emu_result r, const struct emu_report *rep,
				 unsigned old_cpl)
{
	struct shadow_mode *sm = vm->shadow;

	if (r != EMU_DONE)
		return r;
	stats_count_emulated(&vm->stats, rep->mnemonic);
	vm->stats.dr_hits_emulated += rep->db_hits != 0;
	follow_cpu(vm, rep->notes, rep->cr3_noflush, old_cpl);
	/* Into the kernel from user mode (int n, sysenter, a single-step #DB): an entry. */
	if (old_cpl == 3 && emu_cpl(&sm->cpu) == 0)
		shadow_learn_entry(vm, sm->cpu.cs.base + sm->cpu.rip);
	if (sm->cpu.virt.int_shadow)
		sm->int_shadow_rip = sm->cpu.rip; /* an sti: blocking ends past the next insn */
	return EMU_DONE;
}

/*
 * The most a chained rep movs may copy, in bytes: past that it runs
 * natively and only the clac after it traps. Emulated, it costs one store
 * per 64 bytes (decode/emulate_mem.c's chunks), so a copy this size costs
 * less than the trap it saves (tens of microseconds on our hosts,
 * shared/HOST.md). Linux's urandom reads copy 64 bytes per copy_to_user.
 */
#define CHAIN_COPY_MAX 1024u

enum emu_result shadow_emu_insn(struct vm *vm, struct emu_report *rep, bool chained)
{
	struct shadow_mode *sm = vm->shadow;
	unsigned old_cpl = emu_cpl(&sm->cpu);
	const struct patch_site *site = patch_at(vm, sm->cpu.cs.base + sm->cpu.rip, true);
	enum emu_result r;

	/* A chained rep movs copies at most CHAIN_COPY_MAX bytes: all in this call. */
	sm->cpu.virt.rep_limit = chained ? CHAIN_COPY_MAX : 0;
	/*
	 * An instruction that trapped passed its instruction breakpoints on
	 * the CPU already (they come before any fault): RF tells the emulator
	 * so (decode/emulate.c, item 8). One the chain runs ahead did not.
	 */
	if (!chained)
		sm->cpu.rflags |= RFLAGS_RF;
	if (site) {
		u8 code[SCAN_INSN_MAX];

		memcpy(code, site->orig, site->len); /* the emulated write may undo the site */
		if (!chained)
			vm->stats.patch_traps++;
		r = emu_insn_bytes(&sm->cpu, ops_for(vm), code, site->len, rep);
	} else {
		r = emu_insn(&sm->cpu, ops_for(vm), rep);
	}
	return insn_done(vm, r, rep, old_cpl);
}

enum emu_result shadow_emu_insn_bytes(struct vm *vm, const u8 *code, unsigned len,
				      struct emu_report *rep)
{
	struct shadow_mode *sm = vm->shadow;
	unsigned old_cpl = emu_cpl(&sm->cpu);

	sm->cpu.virt.rep_limit = 0;
	/* As shadow_emu_insn: the site's call passed the instruction breakpoints. */
	sm->cpu.rflags |= RFLAGS_RF;
	return insn_done(vm, emu_insn_bytes(&sm->cpu, ops_for(vm), code, len, rep), rep, old_cpl);
}

bool shadow_emu_fast(struct vm *vm)
{
	return emu_fast_insn(&vm->shadow->cpu, ops_for(vm)) == EMU_FAST_DONE;
}

/*
 * How far shadow_emu_chain_next looks for the trap a bridge, nop or jump
 * leads to: rseq's window is stac, nop, mov, mov, clac; the syscall exit
 * swapgs, jmp, sysretq; copy_user_enhanced_fast_string's stac, cmp, jb,
 * mov, rep movsb, xor, clac.
 */
#define CHAIN_LOOKAHEAD 6u

/*
 * Whether the `n` bytes fetched at `la` are a call to the iret stand-in
 * (vmm/call_iret.h): only then is the walk to the patch table worth it.
 */
static bool calls_iret_stand_in(const u8 *code, unsigned n, u64 la)
{
	return n >= 5 && code[0] == 0xe8 &&
	       la + 5 + (u64)(s64)(s32)le_get32(code, 1) == monitor_call_entry(MON_CALL_IRET, 0);
}

/* chain_lookahead's reader: the guest's code through its tables, and our patches that trap. */
struct chain_reader {
	struct vm *vm;
	struct walk_ctl ctl;
};

static unsigned chain_read(void *opaque, u64 la, u8 *buf, unsigned n, bool *patched)
{
	struct chain_reader *r = opaque;
	/* A fetch at CPL0: the guest's NX and SMEP apply, as to the CPU's own. */
	unsigned got = (unsigned)guest_read_virt(&r->vm->mem, &r->ctl, la, buf, n, ACC_FETCH);

	/* pushf/popf/iretq... behind our int3, or the iretq behind our call: a trap */
	*patched = got && (buf[0] == 0xcc || calls_iret_stand_in(buf, got, la)) &&
		   patch_at(r->vm, la, true);
	return got;
}

enum chain_class shadow_emu_chain_next(struct vm *vm, struct chain_insn *first)
{
	struct shadow_mode *sm = vm->shadow;
	const struct emu_cpu *c = &sm->cpu;
	struct chain_reader rd = { .vm = vm, .ctl = shadow_cpu_walk_ctl(c) };
	struct chain_code code = { .read = chain_read, .opaque = &rd };
	struct chain_start s = { .la = c->cs.base + c->rip,
				 .rflags = c->rflags,
				 .gpr = c->gpr,
				 .flags = sm->iopl3 ? CHAIN_NATIVE_IRQFLAGS : 0,
				 .steps = CHAIN_LOOKAHEAD,
				 .copy_max = CHAIN_COPY_MAX };

	if (emu_cpl(c) == 0 && (c->rflags & RFLAGS_AC))
		s.flags |= CHAIN_USER_ACCESS;
	return chain_lookahead(&code, &s, first);
}

/*
 * The guest ran `syscall` (2 bytes) and the CPU went to the monitor's entry
 * (vmm/monitor.h): RCX holds the next RIP and R11 the flags the CPU saw,
 * with the real IF/IOPL, which the virtual ones replace.
 */
enum emu_result shadow_emu_syscall(struct vm *vm, struct emu_report *rep)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	unsigned old_cpl = emu_cpl(c);
	enum emu_result r;

	c->rip = c->gpr[EMU_RCX] - EMU_SYSCALL_LEN;
	{
		u64 virt = shadow_virt_flags(sm->iopl3, emu_cpl(c));

		c->rflags = (c->gpr[EMU_R11] & ~virt) | (c->rflags & virt);
	}
	r = emu_syscall_entry(c, ops_for(vm), EMU_SYSCALL_LEN, rep);
	if (r != EMU_DONE)
		return r;
	stats_count_emulated(&vm->stats, rep->mnemonic);
	follow_cpu(vm, rep->notes, false, old_cpl);
	if (emu_cpl(c) == 0)
		shadow_learn_entry(vm, c->cs.base + c->rip);
	return EMU_DONE;
}

enum emu_result shadow_emu_deliver(struct vm *vm, const struct emu_event *ev)
{
	struct shadow_mode *sm = vm->shadow;
	unsigned old_cpl = emu_cpl(&sm->cpu);
	enum emu_result r = deliver(vm, &sm->cpu, ev);

	if (r == EMU_DONE) {
		follow_cpu(vm, 0, false, old_cpl);
		if (emu_cpl(&sm->cpu) == 0) {
			shadow_learn_entry(vm, sm->cpu.cs.base + sm->cpu.rip);
			sm->entered_kernel = old_cpl == 3;
		}
	}
	return r;
}

/* What decode/ refuses to deliver an event through (emu_deliver_event: EMU_UNKNOWN). */
#define UNEMULATED_DELIVERY                                                                        \
	"what shadow mode does not emulate (a task gate, a 16-bit gate or stack, virtual-8086 or " \
	"real mode)"

void shadow_emu_stop(struct vm *vm, enum emu_result r, const struct emu_report *rep, u64 rip)
{
	char text[160];
	const char *mnemonic = rep->mnemonic[0] ? rep->mnemonic : "?";

	if (vm->stop)
		return; /* a callback already stopped the VM and said why (shadow_msr.c) */
	if (rep->code_len)
		decode_describe(rep->code, rep->code_len, rip,
				decode_mode_of(vm->shadow->cpu.cs.l, vm->shadow->cpu.cs.db), text,
				sizeof(text));
	else
		snprintf(text, sizeof(text), "(code not readable through the guest's page tables)");
	switch (r) {
	case EMU_UNKNOWN:
		if (rep->delivery_refused) {
			vm_kill(vm, UMBRA_EXIT_EMULATION,
				"shadow mode: %s at rip 0x%llx: delivering its event "
				"needs " UNEMULATED_DELIVERY ": %s",
				mnemonic, (unsigned long long)rip, text);
			break;
		}
		vm_kill(vm, UMBRA_EXIT_EMULATION, "shadow mode: %s at rip 0x%llx not emulated: %s",
			mnemonic, (unsigned long long)rip, text);
		break;
	case EMU_UNHANDLED_MEM:
		vm_kill(vm, UMBRA_EXIT_EMULATION,
			"shadow mode: %s at rip 0x%llx accesses memory that is neither RAM nor a "
			"device it can reach: %s",
			mnemonic, (unsigned long long)rip, text);
		break;
	case EMU_TRIPLE_FAULT:
		vm_kill(vm, UMBRA_EXIT_TRIPLE_FAULT,
			"shadow mode: guest triple fault (a fault while delivering #DF) at rip "
			"0x%llx",
			(unsigned long long)rip);
		break;
	case EMU_HOST_ERROR:
	case EMU_DONE:
	default:
		vm_kill(vm, UMBRA_EXIT_INTERNAL, "shadow mode: emulating %s at rip 0x%llx failed",
			mnemonic, (unsigned long long)rip);
		break;
	}
}

void shadow_deliver_stop(struct vm *vm, enum emu_result r, u8 vector, u64 rip)
{
	if (r != EMU_UNKNOWN || vm->stop) {
		shadow_emu_stop(vm, r, &(struct emu_report){ 0 }, rip);
		return;
	}
	vm_kill(vm, UMBRA_EXIT_EMULATION,
		"shadow mode: delivering vector %u at rip 0x%llx needs " UNEMULATED_DELIVERY,
		vector, (unsigned long long)rip);
}
