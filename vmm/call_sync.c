// SPDX-License-Identifier: MIT
/*
 * The sync_core stand-in, VMM side (vmm/call_sync.h; the stand-in itself:
 * vmm/monitor.h, MON_CALL_SYNC). Linux's sync_core, on a CPU without
 * SERIALIZE, is iret_to_self: it builds an iret frame of the current state
 * and returns to the next instruction through it, and text_poke_early does
 * that after every patch (~100k times in a boot). Under shadow mode its
 * `mov %ss` traps, the rest chains: one trap each. The stand-in takes none.
 *
 * 1. The site: the 20 bytes with %eax as the temporary (Debian's kernel
 *    has five, all so), each instruction a start the scan found, and the
 *    push's imm32 the address right after the iretq. The rewrite covers 15
 *    bytes (decode/patch.h's limit): `call` + nops. The last 5 (the end of
 *    the push and the iretq) keep their bytes and never run: the stand-in
 *    returns past them, and an undo puts the vCPU back at the site's start.
 * 2. The data page: before the guest kernel runs, the descriptors that an
 *    iretq to its current CS and SS would reload without change
 *    (emu_iret_keeps_segs), and where its tables hold them; recomputed only
 *    when the tables' registers or the cached segments change. The stand-in
 *    compares the tables' memory with them at each call.
 * 3. The slow path (the stand-in's ud2, or a guest fault inside it): the
 *    VMM puts the vCPU back at the site (vmm/shadow_mode.c) and emulates
 *    the original instructions one by one, so that whatever the real ones
 *    would raise (a #GP for a changed descriptor, a #PF on the stack) is
 *    raised at the same instruction, with the same frame.
 */
#include <string.h>

#include "umbra/le.h"
#include "vmm/call_sync.h"
#include "vmm/guest_access.h"
#include "vmm/monitor.h"
#include "vmm/shadow_cpu.h"
#include "vmm/shadow_emu.h"
#include "vmm/shadow_mode.h"
#include "vmm/vm.h"

/* Item 1: iret_to_self up to the push's imm32 (Linux, arch/x86/include/asm/sync_core.h). */
static const u8 sync_head[] = {
	0x8c, 0xd0,		      /* mov %ss,%eax */
	0x50,			      /* push %rax */
	0x54,			      /* push %rsp */
	0x48, 0x83, 0x04, 0x24, 0x08, /* addq $8,(%rsp) */
	0x9c,			      /* pushfq */
	0x8c, 0xc8,		      /* mov %cs,%eax */
	0x50,			      /* push %rax */
	0x68,			      /* push $imm32 (then 4 bytes: the label after iretq) */
};
static const u8 sync_starts[] = { 0, 2, 3, 4, 9, 10, 12, 13, 18 }; /* and the end, 20 */

bool call_sync_plan(const struct scan_result *res, const u8 *page, u64 page_la, unsigned off,
		    u8 *repl, unsigned *len)
{
	static const u8 nops[CALL_SYNC_PATCH - 5] = { 0x66, 0x0f, 0x1f, 0x84, 0x00,
						      0x00, 0x00, 0x00, 0x00, 0x90 };
	const u8 *p = page + off;
	u64 end = page_la + off + MON_CALL_SYNC_SITE;
	unsigned k = 0;

	if (off + MON_CALL_SYNC_SITE > PAGE_SIZE || memcmp(p, sync_head, sizeof(sync_head)) ||
	    p[18] != 0x48 || p[19] != 0xcf || (u64)(s64)(s32)le_get32(p, 14) != end)
		return false;
	for (unsigned b = 0; b < MON_CALL_SYNC_SITE; b++) {
		bool start = k < sizeof(sync_starts) && sync_starts[k] == b;

		if (scan_is_insn_start(res, off + b) != start)
			return false;
		k += start;
	}
	if (!monitor_put_rel32(repl, 0xe8, page_la + off,
			       monitor_call_entry(MON_CALL_SYNC, MON_CALL_SYNC_PAD)))
		return false;
	memcpy(repl + 5, nops, sizeof(nops));
	*len = CALL_SYNC_PATCH;
	return true;
}

/* Item 2. */
static bool read_desc(struct vm *vm, u16 sel, u64 *la, u64 *desc)
{
	const struct emu_cpu *c = &vm->shadow->cpu;
	struct walk_ctl ctl = shadow_cpu_walk_ctl(c);

	return emu_desc_la(c, sel, la) &&
	       guest_read_virt(&vm->mem, &ctl, *la, desc, sizeof(*desc), 0) == sizeof(*desc);
}

#define DATA_GVA(field) (MON_CALL_DATA_GVA + offsetof(struct mon_call_data, field))

void call_sync_fill(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	const struct emu_cpu *c = &sm->cpu;
	struct mon_call_data *d = monitor_call_data(&sm->mon);
	struct call_sync_key *k = &sm->sync_key;
	bool null_ss = !(c->ss.sel & ~3u);
	u64 cs_la, cs_desc, ss_la = DATA_GVA(ss_desc), ss_desc = 0;
	/*
	 * With the kernel's NT set an iretq must #GP, and the stand-ins test
	 * the real NT, which is 0 (virtual in the kernel, shadow_virt_flags):
	 * the slow path then, whose emulated iretq raises it.
	 */
	bool nt = c->rflags & RFLAGS_NT;

	if (!nt && k->valid && k->gdt_base == c->gdt_base && k->gdt_limit == c->gdt_limit &&
	    k->ldtr_sel == c->virt.ldtr_sel && k->ldtr_base == c->virt.ldtr_base &&
	    k->ldtr_limit == c->virt.ldtr_limit && emu_seg_equal(&k->cs, &c->cs) &&
	    emu_seg_equal(&k->ss, &c->ss))
		return;
	d->kernel_cs = c->cs.sel;
	d->kernel_ss = c->ss.sel;
	/* Until shown otherwise: the slow path (the `zero` field never holds 1). */
	d->cs_desc_gva = DATA_GVA(zero);
	d->cs_desc = 1;
	d->zero = 0;
	k->valid = false;
	if (nt || !read_desc(vm, c->cs.sel, &cs_la, &cs_desc) ||
	    (!null_ss && !read_desc(vm, c->ss.sel, &ss_la, &ss_desc)) ||
	    !emu_iret_keeps_segs(c, cs_desc, ss_desc))
		return; /* not cached: asked again at the next trap */
	d->cs_desc_gva = cs_la;
	d->cs_desc = cs_desc;
	d->ss_desc_gva = ss_la; /* a null SS: the field itself, which always matches */
	d->ss_desc = ss_desc;
	*k = (struct call_sync_key){ .valid = true,
				     .gdt_base = c->gdt_base,
				     .gdt_limit = c->gdt_limit,
				     .ldtr_sel = c->virt.ldtr_sel,
				     .ldtr_base = c->virt.ldtr_base,
				     .ldtr_limit = c->virt.ldtr_limit,
				     .cs = c->cs,
				     .ss = c->ss };
}

/*
 * Whether loading GS with `sel` at virtual CPL0 through descriptor `desc`
 * does nothing but set the selector and a base of 0: the load's checks
 * pass (emu_data_seg_check), and it is a data segment (type bit 3 clear)
 * accessed already (bit 0 set), so the CPU writes nothing to the table.
 */
static bool loads_base0(u16 sel, u64 desc)
{
	u64 base;

	return emu_data_seg_check(0, sel, desc, &base) == 0 && base == 0 && ((desc >> 40) & 9) == 1;
}

/*
 * Whether key `k` still holds for `sel` and the guest's GDT. If not, it is
 * made to, and the data page's *gva and *desc (where the descriptor is, and
 * the value the stand-in compares with the live one) are set to `zero`'s
 * place and 1, which never match: the slow path, until the caller shows the
 * descriptor will do. A caller that cannot read it drops the key again
 * (valid false: asked again at the next trap).
 */
static bool desc_key_holds(struct vm *vm, struct desc_key *k, u16 sel, u64 *gva, u64 *desc)
{
	const struct emu_cpu *c = &vm->shadow->cpu;

	if (k->valid && k->sel == sel && k->gdt_base == c->gdt_base && k->gdt_limit == c->gdt_limit)
		return true;
	*gva = DATA_GVA(zero);
	*desc = 1;
	monitor_call_data(&vm->shadow->mon)->zero = 0;
	*k = (struct desc_key){
		.valid = true, .sel = sel, .gdt_base = c->gdt_base, .gdt_limit = c->gdt_limit
	};
	return false;
}

void call_load_gs_fill(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	struct mon_call_data *d = monitor_call_data(&sm->mon);
	struct desc_key *k = &sm->load_gs_key;
	const u16 sel = sm->load_gs_user_sel;
	u64 la, desc;

	if (desc_key_holds(vm, k, sel, &d->user_sel_desc_gva, &d->user_sel_desc))
		return;
	d->user_sel = sel;
	/* Not the LDT's: its descriptor's place moves with LDTR, which this key does not hold. */
	if (!(sel & 0xfffc) || (sel & 4))
		return;
	if (!read_desc(vm, sel, &la, &desc)) {
		k->valid = false;
		return;
	}
	if (!loads_base0(sel, desc))
		return; /* the slow path for it, as long as the key holds */
	d->user_sel_desc_gva = la;
	d->user_sel_desc = desc;
}

void call_ss_load_fill(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	struct mon_call_data *d = monitor_call_data(&sm->mon);
	struct ss_load_key *k = &sm->ss_load_key;
	const u16 sel = 0x18; /* Linux's __KERNEL_DS: the literal's */
	u64 la, desc;

	if (desc_key_holds(vm, &k->key, sel, &d->ss_key_gva, &d->ss_key_desc))
		return;
	k->loadable = false;
	if (!read_desc(vm, sel, &la, &desc)) {
		k->key.valid = false;
		return;
	}
	if (emu_ss_seg_check(0, sel, desc) || !((desc >> 40) & 1))
		return; /* the slow path for it, as long as the key holds */
	d->ss_key_gva = la;
	d->ss_key_desc = desc;
	k->loadable = true;
	emu_seg_from_desc(&k->seg, sel, desc);
}

/* Item 3. */
bool call_sync_run_original(struct vm *vm)
{
	struct emu_cpu *c = &vm->shadow->cpu;
	u64 site = c->rip;
	u8 code[MON_CALL_SYNC_SITE];

	memcpy(code, sync_head, sizeof(sync_head));
	le_put32(code, 14, (u32)(site + MON_CALL_SYNC_SITE));
	code[18] = 0x48;
	code[19] = 0xcf;
	for (unsigned i = 0; i < sizeof(sync_starts); i++) {
		unsigned at = sync_starts[i],
			 n = (i + 1 < sizeof(sync_starts) ? sync_starts[i + 1]
							  : MON_CALL_SYNC_SITE) -
			     at;
		struct emu_report rep;
		enum emu_result r;

		r = shadow_emu_insn_bytes(vm, code + at, n, &rep);
		if (r != EMU_DONE) {
			shadow_emu_stop(vm, r, &rep, site + at);
			return false;
		}
		if (emu_in_handler(&rep))
			return true; /* delivered: the guest is in its handler */
	}
	return true;
}
