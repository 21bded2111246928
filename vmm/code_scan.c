// SPDX-License-Identifier: MIT
/*
 * Shadow mode, item 6 (vmm/shadow_mode.c lists the others).
 *
 * Code scanning and patching (shared/DESIGN.md, "The instructions x86 does
 * not trap"): the guest kernel runs at real CPL3, where this host's
 * pushf shows IF=1 and popf keeps IF. The shadow MMU gates execution
 * (shadow_config.exec_gate): a guest RAM frame is NX in the kernel view
 * until scanned. The first kernel fetch from it is SHADOW_EXEC_UNSCANNED:
 * the frame is scanned by recursive descent (decode/scan.h) from the
 * faulting offset and every guest IDT handler and LSTAR inside it, each
 * pushf/popf reached is replaced by int3 *in guest RAM* (mpa == gpa:
 * the guest runs its own frame; the table keeps the originals), and the
 * frame is approved: executable and write-tracked. Our int3 traps as
 * #GP(vector 3, IDT) through the monitor's DPL0 #BP gate, with RIP on
 * the int3, and shadow_emu_insn emulates the original instruction
 * exactly on the virtual CPU (vmm/shadow_emu.c item 6); a #BP (should a
 * host deliver one through the DPL0 gate anyway) is looked up at RIP - 1.
 * The guest's own int3 keeps going to the emulator (a software
 * interrupt through the guest IDT, with its gate DPL check), as before.
 * A guest store into an approved frame is emulated; it puts the
 * original bytes back and revokes the approval first (rescan on next
 * fetch).
 *
 * A scan (shadow_scan_code_frame, at the end): its entries (the fetch, the
 * guest's IDT handlers and LSTAR in the page, where the page's first
 * instruction starts judging from the page before, every entry learnt in
 * the page: vmm/code_entries.h); the frame's last scan, if it was revoked
 * since (vmm/insn_starts.h), for the int3s the guest wrote over its
 * instructions (decode/scan.h item 9); guest copies of our patches put back
 * (vmm/patch_copies.h); the scan itself through the frame's scan memo
 * (vmm/scan_memos.h), so that a rescan decodes only what the guest
 * rewrote; then the save_fl and monitor-call rewrites (the helpers above
 * it), the int3 patches (decode/patch.h), and the approval.
 *
 * LIMITATION: the guest reads its patched code as 0xcc (decode/patch.h).
 * LIMITATION: code reached only through indirect jumps/calls on an
 * already approved frame runs unscanned (decode/scan.h). An instruction
 * straddling into a next page not mapped when its page was scanned is not
 * followed (its fall-through is learnt only if the fetch faults there).
 * LIMITATION: VMM writes into guest RAM other than emulated guest
 * stores (device DMA) do not revoke an approved frame.
 * LIMITATION: a frame that mixes code and frequently written data
 * ping-pongs between scan and revoke (correct, slow).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shadow/walk.h"
#include "shadow/x86.h"
#include "umbra/log.h"
#include "vmm/code_scan.h"
#include "vmm/exitcode.h"
#include "vmm/guest_access.h"
#include "vmm/call_cx16.h"
#include "vmm/call_iret.h"
#include "vmm/call_literal.h"
#include "umbra/le.h"
#include "vmm/shadow_mode.h"
#include "vmm/shadow_cpu.h"
#include "vmm/shadow_emu.h"
#include "vmm/vm.h"

#define SCAN_MAX_ENTRIES 1024
/* The RAM frame the guest maps `la` to for a fetch, and its bytes; false if none. */
static bool code_frame_at(struct vm *vm, const struct walk_ctl *ctl, u64 la, gfn_t *g,
			  const u8 **hva)
{
	gpa_t at;

	if (!guest_fetch_gpa(&vm->mem, ctl, la, &at))
		return false;
	*g = gpa_to_gfn(at);
	*hva = gpa_to_hva(&vm->mem, gfn_to_gpa(*g), PAGE_SIZE);
	return *hva != NULL;
}

/* Add the offset of `la` to `entries` if the guest maps it to frame `g`. */
static void add_entry(struct vm *vm, const struct walk_ctl *ctl, gfn_t g, u64 la, u16 *entries,
		      unsigned *n)
{
	gfn_t at;
	const u8 *hva;

	if (*n >= SCAN_MAX_ENTRIES || !code_frame_at(vm, ctl, la, &at, &hva) || at.v != g.v)
		return;
	for (unsigned i = 0; i < *n; i++)
		if (entries[i] == (u16)(la & (PAGE_SIZE - 1)))
			return;
	entries[(*n)++] = (u16)(la & (PAGE_SIZE - 1));
}

/* Does the scan see one instruction at [off, off + len), and no other start inside it? */
static bool only_starts_at(const struct scan_result *res, unsigned off, unsigned len)
{
	if (!scan_is_insn_start(res, off))
		return false;
	for (unsigned b = 1; b < len; b++)
		if (scan_is_insn_start(res, off + b))
			return false;
	return true;
}

/*
 * Under iopl3, a pushf at one of Linux's paravirt save_fl sites need not
 * trap: `pushf; pop %rax` runs natively and shows the guest's own IF and AC
 * (both real under iopl3), and only IOPL reads 3 instead of the virtual 0,
 * which the rewritten nop after it clears (decode/patch.h,
 * patch_save_fl_site). Exact while the guest kernel's IOPL is 0 (checked
 * at every trap: shadow_emu_check_rewrites) and because the site's flags are
 * dead: x86 compilers treat every inline asm as clobbering them. The sites
 * are taken out of `res`, so that patch_page_apply leaves their pushf
 * alone. Returns 0 or a negative errno.
 */
static int rewrite_save_fl_sites(struct vm *vm, gfn_t g, struct scan_result *res, u8 *page)
{
	struct shadow_mode *sm = vm->shadow;
	unsigned keep = 0;

	for (unsigned i = 0; i < res->nsites; i++) {
		const struct scan_site *site = &res->sites[i];
		unsigned nop = site->off + PATCH_SAVE_FL_NOP, len;
		const u8 *repl;

		if (site->kind == SCAN_KIND_PUSHF && !site->conflict &&
		    (len = patch_save_fl_site(page, site->off, &repl)) &&
		    only_starts_at(res, nop, len)) {
			u8 orig[SCAN_INSN_MAX];
			int r;

			memcpy(orig, page + nop, len);
			r = patch_page_rewrite(&sm->patches, g, res->mode, nop, orig, repl, len,
					       page);
			if (r == 1) {
				vm->stats.save_fl_rewrites++;
				continue;
			}
			if (r != -EEXIST)
				return r;
			/* Already rewritten (or another patch there): keep the int3. */
		}
		res->sites[keep++] = res->sites[i];
	}
	res->nsites = keep;
	return 0;
}

/* The call window's stand-in for paravirt site `kind` (vmm/monitor.h). */
static unsigned call_stand_in(enum patch_pv_site kind)
{
	switch (kind) {
	case PATCH_PV_IRQ_DISABLE: return MON_CALL_IRQ_DISABLE;
	case PATCH_PV_IRQ_ENABLE: return MON_CALL_IRQ_ENABLE;
	default: return MON_CALL_SAVE_FL;
	}
}

/*
 * Are the instruction starts the scan found in [off, off + len) exactly
 * those of the site: its instruction(s), then its nop (or return) at `nop`?
 * Another start inside means some path decodes these bytes differently.
 */
static bool site_starts_ok(const struct scan_result *res, enum patch_pv_site kind, unsigned off,
			   unsigned len, unsigned nop)
{
	for (unsigned b = off; b < off + len; b++) {
		bool want =
			b == off || b == off + nop || (kind == PATCH_PV_SAVE_FL && b == off + 1);

		if (scan_is_insn_start(res, b) != want)
			return false;
	}
	return true;
}

/*
 * What the site at `off` of `page` (fetched at `page_la`) becomes, if it
 * is one: *len bytes into `repl`. A paravirt site: `call` its stand-in,
 * then its nop's length in nop (never run: the stand-in returns past it).
 * A native function's body: `jmp` to the tail stand-in (pad 0), then int3s
 * (never run), once its return is `ret` and int3s (a body that still ends
 * in `jmp __x86_return_thunk` keeps trapping: see below).
 */
static enum patch_pv_site plan_call_site(struct vm *vm, const struct scan_result *res,
					 const u8 *page, u64 page_la, unsigned off, u8 *repl,
					 unsigned *len)
{
	unsigned nop, head, pad;
	enum patch_pv_site kind = patch_pv_site(page, off, len, &nop);
	bool body = false;
	s32 jmp_rel = 0;

	if (kind != PATCH_PV_NONE) {
		/* Under iopl3 cli/sti run natively and save_fl sites have their `and`. */
		if (vm->shadow->iopl3 || !site_starts_ok(res, kind, off, *len, nop))
			return PATCH_PV_NONE;
		pad = *len - 5;
	} else {
		kind = patch_pv_body(page, off, len, &head, &jmp_rel);
		/*
		 * Only the form whose return Linux's apply_returns has already
		 * inlined (`ret`, int3s): while the body still ends in `jmp
		 * __x86_return_thunk`, apply_returns reads that jmp back to check
		 * it, and our bytes there made it WARN (seen on the rig).
		 */
		if (kind == PATCH_PV_NONE || page[off + head] != 0xc3 ||
		    (vm->shadow->iopl3 && kind != PATCH_PV_SAVE_FL) ||
		    !site_starts_ok(res, kind, off, head + 1, head))
			return PATCH_PV_NONE;
		body = true;
		pad = 0;
	}
	if (!monitor_put_rel32(repl, body ? 0xe9 : 0xe8, page_la + off,
			       monitor_call_entry(vm->shadow->iopl3 ? MON_CALL_SAVE_FL_IOPL3
								    : call_stand_in(kind),
						  pad)))
		return PATCH_PV_NONE; /* out of a rel32's reach: the site keeps trapping */
	if (body)
		memset(repl + 5, 0xcc, *len - 5);
	else if (pad == 1)
		repl[5] = 0x90;
	else
		memcpy(repl + 5, (const u8[]){ 0x66, 0x90 }, 2);
	return kind;
}

/* The 8 bytes at `at` (`hva`): `raw` as memory holds them, `orig` as the guest wrote them. */
static void code8(struct vm *vm, gpa_t at, const u8 *hva, void *raw, void *orig)
{
	memcpy(raw, hva, 8);
	memcpy(orig, hva, 8);
	patch_read_fixup(&vm->shadow->patches, at, orig, 8);
}

/*
 * The 8 bytes of guest code at `la` (within one page): `raw` as memory
 * holds them, `orig` as the guest wrote them (the VMM's int3 patches over
 * pushf undone, decode/patch.h). False if unmapped or not RAM.
 */
static bool read_code8(struct vm *vm, u64 la, u8 *raw, u8 *orig)
{
	struct shadow_mode *sm = vm->shadow;
	struct walk_ctl ctl = shadow_cpu_walk_ctl(&sm->cpu);
	gpa_t at;
	const u8 *hva;

	if ((la & (PAGE_SIZE - 1)) > PAGE_SIZE - 8 || !guest_fetch_gpa(&vm->mem, &ctl, la, &at) ||
	    !(hva = gpa_to_hva(&vm->mem, at, 8)))
		return false;
	code8(vm, at, hva, raw, orig);
	return true;
}

/*
 * The VMM just patched (or scanned) the code page fetched at `page_la`,
 * `page` its bytes in memory: a thunk whose body lies there compares
 * memory, which now holds our pushf patch (or no longer does). Where the
 * body is still what the guest wrote when the thunk was made, the thunk
 * takes the new bytes; else it keeps the old ones and takes its slow path.
 */
static void refresh_thunks(struct vm *vm, gfn_t g, const u8 *page, u64 page_la)
{
	struct monitor *mon = &vm->shadow->mon;

	for (unsigned i = 0; i < mon->nr_thunks; i++) {
		const struct mon_call_thunk *t = &mon->thunks[i];
		u64 off = t->target - page_la, raw, orig;

		if (off > PAGE_SIZE - 8)
			continue;
		code8(vm, gpa(gfn_to_gpa(g).v + off), page + off, &raw, &orig);
		if (((orig ^ t->orig) & t->mask) == 0 && ((raw ^ t->bytes) & t->mask))
			monitor_call_thunk_rebytes(mon, i, raw);
	}
}

/*
 * A site at `off` that calls a native body (vmm/monitor.h, "Indirect
 * sites", "Direct sites"): `call *slot(%rip)` or `call rel32`, alone at its
 * instruction starts, in a page fetched at `page_la`, whose target is now a
 * native body (decode/patch.h, patch_pv_body). Fills *t for its thunk
 * (under iopl3 only save_fl bodies, as for the other rewrites) and *len.
 */
static enum patch_pv_site plan_thunk_site(struct vm *vm, const struct scan_result *res,
					  const u8 *page, u64 page_la, unsigned off,
					  struct mon_call_thunk *t, unsigned *len)
{
	struct shadow_mode *sm = vm->shadow;
	struct walk_ctl ctl = shadow_cpu_walk_ctl(&sm->cpu);
	u8 body[PAGE_SIZE]; /* patch_pv_body's page: only the 8 bytes read below are looked at */
	u8 raw[8];
	unsigned body_len, head;
	s32 jmp_rel;
	u8 ret;
	enum patch_pv_site kind;

	if (page[off] == 0xff && off + 1 < PAGE_SIZE && page[off + 1] == 0x15)
		*len = MON_CALL_THUNK_SITE;
	else if (page[off] == 0xe8)
		*len = 5;
	else
		return PATCH_PV_NONE;
	if (off + *len > PAGE_SIZE)
		return PATCH_PV_NONE;
	for (unsigned b = off + 1; b < off + *len; b++)
		if (scan_is_insn_start(res, b))
			return PATCH_PV_NONE;
	if (page[off] == 0xe8) {
		t->slot = 0;
		t->target = page_la + off + 5 + (u64)(s64)(s32)le_get32(page, off + 1);
	} else {
		t->slot = page_la + off + MON_CALL_THUNK_SITE +
			  (u64)(s64)(s32)le_get32(page, off + 2);
		if (guest_read_virt(&vm->mem, &ctl, t->slot, &t->target, 8, 0) != 8)
			return PATCH_PV_NONE;
	}
	/* Decoded as the guest wrote it; compared by the thunk as memory holds it. */
	if (!read_code8(vm, t->target, raw, body))
		return PATCH_PV_NONE;
	kind = patch_pv_body(body, 0, &body_len, &head, &jmp_rel);
	if (kind == PATCH_PV_NONE || (sm->iopl3 && kind != PATCH_PV_SAVE_FL))
		return PATCH_PV_NONE;
	t->ret_byte = 0;
	if (body[head] == 0xe9) {
		/* Its return: a jmp that must reach a `ret` (Linux's return thunk). */
		t->ret_byte = t->target + body_len + (u64)(s64)jmp_rel;
		if (guest_read_virt(&vm->mem, &ctl, t->ret_byte, &ret, 1, ACC_FETCH) != 1 ||
		    ret != 0xc3)
			return PATCH_PV_NONE;
	}
	t->mask = body_len >= 8 ? ~0ull : (1ull << (8 * body_len)) - 1;
	memcpy(&t->orig, body, 8);
	memcpy(&t->bytes, raw, 8);
	t->orig &= t->mask;
	t->bytes &= t->mask;
	t->fn = sm->iopl3 ? MON_CALL_SAVE_FL_IOPL3 : call_stand_in(kind);
	return kind;
}

/*
 * The call window is claimed when the first site is about to be rewritten,
 * not before: until then the guest may have the address space for itself
 * (a guest with a recursive entry in PML4 slot 511 maps it). Claimed if the
 * guest's current tables leave it empty (shadow/mmu.h, shadow_set_window);
 * otherwise the sites keep trapping, and the next scan asks again.
 */
static bool claim_window(struct vm *vm)
{
	struct shadow_mode *sm = vm->shadow;
	struct walk_ctl ctl = shadow_cpu_walk_ctl(&sm->cpu);
	struct walk_mem wm = guest_walk_mem(&vm->mem);
	struct guest_walk w;

	if (sm->window_on)
		return true;
	/* The window is a 64-bit address: a 32-bit guest's linear addresses never reach it. */
	if (paging_mode_select(&ctl) != &paging_mode_4level)
		return false;
	if (walk_guest(paging_mode_select(&ctl), &wm, &ctl, gva(MON_CALL_GVA), ACC_FETCH, WALK_PEEK,
		       &w) != WALK_FAULT ||
	    (w.level != PG_LEVEL_1G && w.level != PG_LEVEL_2M) || (w.gpte[w.level] & PTE_P))
		return false;
	if (shadow_set_window(sm->mmu, gva(MON_CALL_GVA), monitor_call_pde(&sm->mon),
			      monitor_call_pdpte(&sm->mon)))
		return false;
	sm->window_on = true;
	vm->stats.calls_window = true;
	if (vm->trace)
		fprintf(vm->trace, "call window claimed at 0x%llx\n",
			(unsigned long long)MON_CALL_GVA);
	return true;
}

/*
 * Monitor calls (sm->calls; the window is claimed by the first site:
 * sm->window_on): every paravirt irq-flag site the scan decoded
 * (decode/patch.h, patch_pv_site) becomes `call rel32` to its stand-in in
 * the window, then a 1- or 2-byte nop that never runs: the stand-in returns
 * past it, to the end of the original site (vmm/monitor.h), where the
 * original had finished too (for sti: with its shadow over, the original nop
 * having run). So the guest is never at an offset inside a site, even once
 * the patch is undone. The native functions the sites call before
 * alternatives inline them (patch_pv_body) become a `jmp` to the stand-in,
 * which returns to their caller; an interrupt held at their sti is then
 * taken after that return instead of before it, one instruction later. The
 * rel32 is for the gva the page is fetched at (`page_la`).
 * LIMITATION: a frame run at two gvas runs the calls of the first; Linux
 * runs its text only at the kernel mapping once alternatives have written
 * these sites (the direct map is NX). Sites' pushfs are taken out of `res`
 * so that patch_page_apply leaves them alone. Returns 0 or a negative errno.
 */
static int rewrite_call_sites(struct vm *vm, gfn_t g, struct scan_result *res, u8 *page,
			      u64 page_la)
{
	struct shadow_mode *sm = vm->shadow;
	u64 covered[PAGE_SIZE / 64] = { 0 };
	unsigned keep = 0;

	if (res->mode != DECODE_64)
		return 0;
	for (unsigned off = 0; off < PAGE_SIZE; off++) {
		u8 orig[SCAN_INSN_MAX], repl[SCAN_INSN_MAX];
		enum patch_pv_site kind = PATCH_PV_NONE;
		enum call_literal_kind lit = CALL_LIT_NONE;
		bool thunked = page[off] == 0xff || page[off] == 0xe8, sync = false, iret = false,
		     cx16 = false;
		struct mon_call_thunk t;
		unsigned len;
		int r;

		if ((page[off] != 0xfa && page[off] != 0xfb && page[off] != 0x9c &&
		     page[off] != 0x0f && page[off] != 0x8c && page[off] != 0x48 &&
		     page[off] != 0x66 && page[off] != 0xba && page[off] != 0x89 &&
		     page[off] != 0xb8 && !thunked) ||
		    !scan_is_insn_start(res, off))
			continue;
		if (page[off] == 0x0f || page[off] == 0x66 || page[off] == 0xba ||
		    page[off] == 0x89 || page[off] == 0xb8) {
			lit = call_literal_plan(res, page, page_la, off, repl, &len);
			/* The swapgs stand-in's rdgsbase runs where the guest's does. */
			if (lit == CALL_LIT_SWAPGS && !(sm->cpu.cr4 & CR4_FSGSBASE))
				lit = CALL_LIT_NONE;
			/* The SS load stand-in reads the virtual IF, which iopl3 keeps real. */
			if (lit == CALL_LIT_SS_LOAD && sm->iopl3)
				lit = CALL_LIT_NONE;
		} else if (page[off] == 0x8c)
			sync = call_sync_plan(res, page, page_la, off, repl, &len);
		else if (page[off] == 0x48) /* under iopl3 the frame's IF would be real: not yet */
			iret = !sm->iopl3 && call_iret_plan(res, page, page_la, off, repl, &len);
		else if (thunked)
			kind = plan_thunk_site(vm, res, page, page_la, off, &t, &len);
		else if (page[off] == 0x9c && !sm->iopl3 && sm->cx16_ok &&
			 (!sm->cx16_body || sm->cx16_body == page_la + off) &&
			 call_cx16_plan(res, page, page_la, off, repl, &len))
			cx16 = true; /* one body: an undo must know where it is */
		else
			kind = plan_call_site(vm, res, page, page_la, off, repl, &len);
		if (kind == PATCH_PV_NONE && lit == CALL_LIT_NONE && !sync && !iret && !cx16)
			continue;
		if (!claim_window(vm))
			break; /* the guest maps the window: every site keeps trapping */
		if (thunked) {
			u64 thunk;

			if (monitor_call_thunk(&sm->mon, &t, &thunk) ||
			    !monitor_put_rel32(repl, 0xe8, page_la + off, thunk))
				continue; /* out of reach, or no room: the site keeps its call */
			if (len > 5)
				repl[5] = 0x90; /* never run: the thunk returns past it */
		}
		memcpy(orig, page + off, len);
		r = patch_page_rewrite(&sm->patches, g, res->mode, off, orig, repl, len, page);
		if (r == -EEXIST)
			continue; /* already rewritten, or another patch there */
		if (r < 0)
			return r;
		if (lit == CALL_LIT_RD_KGS || lit == CALL_LIT_WR_KGS)
			vm->stats.call_gsbase++;
		else if (lit == CALL_LIT_CR2)
			vm->stats.call_cr2++;
		else if (lit == CALL_LIT_SS)
			vm->stats.call_ss++;
		else if (lit == CALL_LIT_SWAPGS)
			vm->stats.call_swapgs++;
		else if (lit == CALL_LIT_LOAD_GS)
			vm->stats.call_load_gs++;
		else if (lit == CALL_LIT_LOAD_FS)
			vm->stats.call_load_fs++;
		else if (lit == CALL_LIT_WRMSR)
			vm->stats.call_wrmsr++;
		else if (lit == CALL_LIT_SS_LOAD)
			vm->stats.call_ss_load++;
		else if (sync)
			vm->stats.call_sync++;
		else if (iret)
			vm->stats.call_iret++;
		else if (cx16) {
			vm->stats.call_cx16++;
			sm->cx16_body = page_la + off;
		} else
			vm->stats.call_sites[kind]++;
		if (thunked) {
			if (t.slot)
				vm->stats.call_indirect++;
			else
				vm->stats.call_direct++;
			vm->stats.call_thunks = sm->mon.nr_thunks;
		}
		for (unsigned b = off; b < off + len; b++)
			covered[b / 64] |= 1ull << (b % 64);
		off += len - 1;
	}
	for (unsigned i = 0; i < res->nsites; i++)
		if (!(covered[res->sites[i].off / 64] & (1ull << (res->sites[i].off % 64))))
			res->sites[keep++] = res->sites[i];
	res->nsites = keep;
	return 0;
}

/*
 * Scan-ahead's finished memos into the table (vmm/scan_ahead.h), `g`'s
 * included if the helper is on it now.
 */
static void collect_ahead(struct vm *vm, gfn_t g)
{
	struct shadow_mode *sm = vm->shadow;
	struct scan_ahead_done done[SCAN_AHEAD_QUEUE];
	unsigned n;

	if (!sm->ahead)
		return;
	vm->stats.scan_ahead_waits += scan_ahead_wait(sm->ahead, g);
	n = scan_ahead_collect(sm->ahead, done, SCAN_AHEAD_QUEUE);
	for (unsigned i = 0; i < n; i++)
		scan_memos_put(&sm->memos, done[i].gfn, done[i].memo);
	vm->stats.scan_ahead_done += n;
}

/*
 * Hand scan-ahead the pages before and after `page_la`, just scanned, that
 * are neither approved nor in the memo table: where the next first fetches
 * most likely are (vmm/scan_ahead.h). The page after it last, so that it
 * is decoded first (the helper takes the newest request first).
 */
static void request_ahead(struct vm *vm, const struct walk_ctl *ctl, u64 page_la,
			  enum decode_mode mode)
{
	static const int around[] = { -1, 1 };
	struct shadow_mode *sm = vm->shadow;

	if (!sm->ahead)
		return;
	for (unsigned i = 0; i < ARRAY_SIZE(around); i++) {
		u64 la = page_la + (u64)(s64)around[i] * PAGE_SIZE;
		struct scan_ahead_req req = { .page = gva(la), .mode = mode };
		gfn_t prev;

		if (!code_frame_at(vm, ctl, la, &req.gfn, &req.hva) ||
		    shadow_exec_approved(sm->mmu, req.gfn) || scan_memos_has(&sm->memos, req.gfn))
			continue;
		if (!code_frame_at(vm, ctl, la - PAGE_SIZE, &prev, &req.prev_hva))
			req.prev_hva = NULL;
		vm->stats.scan_ahead_requests += scan_ahead_request(sm->ahead, &req);
	}
}

/* The bytes of the code page after the one at `la`, or NULL where it is not mapped. */
static const u8 *next_code_page(struct vm *vm, const struct walk_ctl *ctl, u64 la)
{
	gfn_t g;
	const u8 *next;

	return code_frame_at(vm, ctl, (la & ~(u64)(PAGE_SIZE - 1)) + PAGE_SIZE, &g, &next) ? next
											   : NULL;
}

/*
 * The scan's entries from the fetch that faulted at `la` with the guest at
 * `rip`: `la` itself, unless the instruction at `rip` began on an earlier
 * page and straddles into this one. CR2 is then this page's first byte,
 * inside that instruction, and a sweep from it would take the
 * instruction's immediates for code (and might patch them); the entries
 * are where the instruction goes on instead (decode/scan.h,
 * scan_flow_from). Bytes that do not decode give none: the guest's #UD
 * comes before anything in this page runs. True if one of them is in the
 * page's first SCAN_INSN_MAX bytes: then where the page's code starts is
 * known, and the sync step's guess is not needed.
 */
static bool fetch_entries(struct vm *vm, const struct walk_ctl *ctl, gfn_t g, u64 la, u64 rip,
			  u16 *entries, unsigned *n)
{
	const struct emu_cpu *c = &vm->shadow->cpu;
	u64 ip = rip + (c->cs.l ? 0 : c->cs.base); /* linear, as `la` */
	u8 code[SCAN_INSN_MAX];
	u64 to[2];
	size_t len;
	unsigned k;
	bool first_known = false;

	if ((la >> PAGE_SHIFT) == (ip >> PAGE_SHIFT)) {
		entries[(*n)++] = (u16)(la & (PAGE_SIZE - 1));
		return false;
	}
	len = guest_read_virt(&vm->mem, ctl, ip, code, sizeof(code), 0);
	k = scan_flow_from(code, (unsigned)len, ip, decode_mode_of(c->cs.l, c->cs.db), to);
	vm->stats.code_scan_straddles++;
	for (unsigned i = 0; i < k; i++) {
		add_entry(vm, ctl, g, to[i], entries, n);
		first_known |= to[i] >> PAGE_SHIFT == la >> PAGE_SHIFT &&
			       (to[i] & (PAGE_SIZE - 1)) < SCAN_INSN_MAX;
	}
	return first_known;
}

/*
 * --trace: each site the scan leaves unpatched because its first byte lies
 * inside another instruction it found (decode/scan.h item 5), with that
 * instruction, so that a wrong decode can be told from overlapping code.
 */
static void trace_conflicts(struct vm *vm, const struct scan_result *res, const u8 *page)
{
	for (unsigned i = 0; i < res->nsites; i++) {
		const struct scan_site *site = &res->sites[i];
		unsigned p = site->off;

		if (!site->conflict)
			continue;
		/* The instruction it lies in starts at most 14 bytes before it. */
		while (p > 0 && site->off - p < SCAN_INSN_MAX - 1 &&
		       !(scan_is_insn_start(res, p - 1) &&
			 p - 1 + res->insn_len[p - 1] > site->off && !scan_find_site(res, p - 1)))
			p--;
		p = p ? p - 1 : 0;
		fprintf(vm->trace, "conflict la 0x%llx %s, inside the %u-byte insn at -%u:",
			(unsigned long long)(res->gva.v + site->off), scan_kind_name(site->kind),
			res->insn_len[p], site->off - p);
		for (unsigned b = p; b < MIN(site->off + 4u, SCAN_PAGE_SIZE); b++)
			fprintf(vm->trace, " %02x", page[b]);
		fprintf(vm->trace, "\n");
	}
}

/*
 * SHADOW_EXEC_UNSCANNED: the guest kernel fetches at `la` from frame `at`,
 * not yet scanned, with its RIP at `rip` (on the page before when the
 * instruction there straddles into this one). The frame holds its original
 * bytes (an unapproved frame has no patches: revocation undoes them).
 * Scan, patch, approve. `t0`: when the scan began (for --stats).
 */
static enum shadow_exit scan_code_frame_timed(struct vm *vm, gpa_t at, u64 la, u64 rip, double t0)
{
	struct shadow_mode *sm = vm->shadow;
	struct walk_ctl ctl = shadow_cpu_walk_ctl(&sm->cpu);
	gfn_t g = gpa_to_gfn(at);
	u8 *page = gpa_to_hva(&vm->mem, gfn_to_gpa(g), PAGE_SIZE);
	enum decode_mode mode = decode_mode_of(sm->cpu.cs.l, sm->cpu.cs.db);
	u32 kinds = scan_kinds_shadow(mode);
	u16 entries[SCAN_MAX_ENTRIES];
	unsigned n = 0;
	struct scan_result res;
	struct scan_memo *memo;
	bool own_memo, ahead_memo, first_known, have_old;
	u8 old_len[PAGE_SIZE], old_bytes[PAGE_SIZE];
	const u8 *next;
	int r;

	if (!page) {
		vm_kill(vm, UMBRA_EXIT_INTERNAL, "shadow mode: code frame 0x%llx is not RAM",
			(unsigned long long)at.v);
		return SHADOW_EXIT_STOP;
	}
	first_known = fetch_entries(vm, &ctl, g, la, rip, entries, &n);
	/* The frame's decodes from its last scan, if kept (a rescan decodes only what changed). */
	collect_ahead(vm, g);
	memo = scan_memos_get(&sm->memos, g, &own_memo, &ahead_memo);
	vm->stats.code_scan_memo_own += own_memo;
	vm->stats.scan_ahead_used += ahead_memo;
	/*
	 * Known starts the fault cannot tell us about: the guest's IDT handlers,
	 * LSTAR, and a 32-bit process's ways in, CSTAR and SYSENTER_EIP.
	 */
	if (sm->cpu.idt_limit >= 15) {
		u8 idt[256 * 16];
		u64 handlers[256];
		size_t len = guest_read_virt(&vm->mem, &ctl, sm->cpu.idt_base, idt,
					     MIN((size_t)sm->cpu.idt_limit + 1, sizeof(idt)), 0);
		/*
		 * Only handlers in the faulting page: one elsewhere that maps
		 * this frame too (an alias) is learnt when it is delivered to
		 * (shadow_learn_entry), which rescans then.
		 */
		unsigned k = code_entries_idt_in_page(idt, len, la & ~(u64)(PAGE_SIZE - 1),
						      handlers, 256);

		for (unsigned i = 0; i < k; i++)
			add_entry(vm, &ctl, g, handlers[i], entries, &n);
	}
	if (sm->cpu.virt.lstar)
		add_entry(vm, &ctl, g, sm->cpu.virt.lstar, entries, &n);
	if (sm->cpu.virt.cstar)
		add_entry(vm, &ctl, g, sm->cpu.virt.cstar, entries, &n);
	if (sm->cpu.virt.sysenter_eip)
		add_entry(vm, &ctl, g, sm->cpu.virt.sysenter_eip, entries, &n);
	/*
	 * Where the page's first instruction starts, from the end of the page
	 * before it (decode/scan.h, scan_sync_offset): with the linear sweep,
	 * that covers the functions before any other entry, which only
	 * indirect calls reach (Linux's native_save_fl, a pushf). A guess:
	 * right or none on every page of Debian's 6.1 kernel, but on one a
	 * wrong boundary came within 2 votes of the 39 of 64 it takes. So not
	 * when the fetch told us, and only with the linear sweep, which
	 * 32-bit code goes without (decode/scan.h, scan_kinds_shadow): the
	 * guess reads data as code as readily.
	 */
	if (!first_known && (kinds & SCAN_OPT_LINEAR)) {
		u64 page_la = la & ~(u64)(PAGE_SIZE - 1);
		gfn_t prev_g;
		const u8 *prev;
		int sync;

		if (code_frame_at(vm, &ctl, page_la - PAGE_SIZE, &prev_g, &prev) &&
		    (sync = scan_sync_offset_memo(memo, prev + PAGE_SIZE - SCAN_SYNC_TAIL,
						  SCAN_SYNC_TAIL, page, SCAN_SYNC_HEAD, mode)) >= 0)
			add_entry(vm, &ctl, g, page_la + (u64)sync, entries, &n);
	}
	/* Every entry learnt in this page (LIMITATION: past SCAN_MAX_ENTRIES, dropped). */
	{
		u16 known[SCAN_MAX_ENTRIES];
		u64 page_la = la & ~(u64)(PAGE_SIZE - 1);
		unsigned k = MIN(
			code_entries_in_page(&sm->code_entries, page_la, known, SCAN_MAX_ENTRIES),
			SCAN_MAX_ENTRIES);

		for (unsigned i = 0; i < k; i++)
			add_entry(vm, &ctl, g, page_la + known[i], entries, &n);
	}
	scan_result_init(&res, gva(la & ~(u64)(PAGE_SIZE - 1)), mode, kinds);
	/*
	 * The frame's last scan, if it was revoked since: the int3s the guest
	 * wrote over its instructions (text_poke_bp, kprobes: decode/scan.h
	 * item 9) are swept as those instructions, and never taken for copies
	 * of our patches.
	 */
	have_old = insn_starts_history(&sm->starts, g, old_len, old_bytes);
	if (have_old) {
		unsigned covers = scan_cover_int3s(&res, page, old_len, old_bytes);

		vm->stats.code_scan_int3_covers += covers;
		for (unsigned o = 0; vm->trace && covers && o < PAGE_SIZE; o++)
			if (res.int3_len[o])
				fprintf(vm->trace, "cover la 0x%llx: int3 for %u bytes, was %02x\n",
					(unsigned long long)((la & ~(u64)(PAGE_SIZE - 1)) + o),
					res.int3_len[o], old_bytes[o]);
	}
	/* Copies of our patches the guest made (vmm/patch_copies.h): original bytes back. */
	{
		u8 copy[PAGE_SIZE];
		unsigned fixed;

		memcpy(copy, page, PAGE_SIZE);
		fixed = patch_copies_restore(&sm->copies, copy, res.int3_len);
		for (unsigned o = 0; fixed && o < PAGE_SIZE; o++) {
			if (copy[o] == page[o])
				continue;
			page[o] = copy[o];
			shadow_pt_write(sm->mmu, gpa(gfn_to_gpa(g).v + o), 1, (const u8[]){ 0xcc },
					&copy[o]);
		}
		vm->stats.patch_copies_restored += fixed;
	}
	vm->stats.code_entry_time += stats_now() - t0;
	/*
	 * With the next page's first bytes, so that an instruction straddling
	 * into it decodes whole and its fall-through becomes an entry there
	 * (the exits below): code at that page's start that the sync guess
	 * missed, once approved, would otherwise run unscanned when reached
	 * this way.
	 */
	next = next_code_page(vm, &ctl, la);
	r = scan_code_page_add_entry_memo(&res, page, next, next ? SCAN_INSN_MAX - 1 : 0, entries,
					  n, memo);
	/*
	 * Code that could see an FS base the wrmsr stand-in deferred: the
	 * stand-in defers none from now on. rdfsbase and wrfsbase count only
	 * where the host runs them at CPL3 (vmm/host_probe.h); elsewhere they
	 * trap, and the VMM loads the base first.
	 */
	if (r >= 0 && !sm->fs_base_seen) {
		unsigned uses = scan_fs_uses(&res, page, next);

		if ((uses & SCAN_FS_PREFIX) ||
		    ((uses & SCAN_FS_BASE_INSN) && vm->host.cpl3_fsgsbase != HOST_NO)) {
			sm->fs_base_seen = true;
			vm->stats.fs_defer_stop_la = la;
			vm->stats.fs_defer_stop_uses = uses;
			if (vm->trace)
				fprintf(vm->trace, "scan la 0x%llx: FS's base used (%u)\n",
					(unsigned long long)la, uses);
		}
	}
	vm->stats.code_scan_decodes += res.ndecodes;
	vm->stats.code_scan_conflicts += res.nconflicts;
	if (vm->trace && res.nconflicts)
		trace_conflicts(vm, &res, page);
	vm->stats.code_scan_memo_decodes += res.nmemo;
	if (r >= 0 && sm->rewrite_save_fl)
		r = rewrite_save_fl_sites(vm, g, &res, page);
	/* Under iopl3 only native_save_fl's body, as exact as the save_fl rewrites. */
	if (r >= 0 && sm->calls && (!sm->iopl3 || sm->rewrite_save_fl))
		r = rewrite_call_sites(vm, g, &res, page, la & ~(u64)(PAGE_SIZE - 1));
	if (r >= 0)
		r = patch_page_apply(&sm->patches, g, &res, page);
	if (r >= 0)
		refresh_thunks(vm, g, page, la & ~(u64)(PAGE_SIZE - 1));
	/* Remember every patch in place with its surroundings, for copies of it. */
	for (unsigned i = 0; r >= 0 && i < res.nsites; i++) {
		const struct patch_site *site =
			patch_lookup(&sm->patches, gpa(gfn_to_gpa(g).v + res.sites[i].off));

		if (site && patch_copies_add(&sm->copies, page, site->off, site->orig, site->len))
			r = -ENOMEM;
		if (site && vm->trace)
			fprintf(vm->trace, "patch gpa 0x%llx: %s, %u bytes from %02x%s\n",
				(unsigned long long)(gfn_to_gpa(g).v + site->off),
				scan_kind_name(site->kind), site->len, site->orig[0],
				site->rewrite ? " (rewritten)" : "");
	}
	/* Code this page branches or falls into: entries of their own pages. */
	for (unsigned i = 0; r >= 0 && i < res.nexits; i++)
		shadow_learn_entry(vm, res.exits[i]);
	/* Without the record (no memory), a new entry rescans the frame as before. */
	if (r >= 0 && insn_starts_set(&sm->starts, g, res.insn_len))
		insn_starts_drop(&sm->starts, g);
	scan_result_free(&res);
	if (r < 0) {
		vm_kill(vm, UMBRA_EXIT_INTERNAL,
			"shadow mode: scanning/patching code frame 0x%llx (rip 0x%llx) failed: %s",
			(unsigned long long)gfn_to_gpa(g).v, (unsigned long long)la, strerror(-r));
		return SHADOW_EXIT_STOP;
	}
	vm->stats.code_pages_scanned++;
	vm->stats.patches_applied += (u64)r;
	if (vm->trace)
		fprintf(vm->trace, "scan gfn 0x%llx la 0x%llx entries %u patches %d\n",
			(unsigned long long)g.v, (unsigned long long)la, n, r);
	shadow_exec_approve(sm->mmu, g);
	request_ahead(vm, &ctl, la & ~(u64)(PAGE_SIZE - 1), res.mode);
	return SHADOW_EXIT_RESUME;
}

/* scan_code_frame_timed, with its time counted for --stats. */
enum shadow_exit shadow_scan_code_frame(struct vm *vm, gpa_t at, u64 la, u64 rip)
{
	double t0 = stats_now();
	enum shadow_exit r = scan_code_frame_timed(vm, at, la, rip, t0);

	vm->stats.code_scan_time += stats_now() - t0;
	return r;
}
