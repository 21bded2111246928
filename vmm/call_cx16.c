// SPDX-License-Identifier: MIT
/*
 * The cmpxchg16b stand-in, VMM side (vmm/call_cx16.h; the stand-in itself:
 * vmm/monitor.h, MON_CALL_CX16). Until Linux's alternatives replace them,
 * its this_cpu_cmpxchg_double sites (SLUB's lockless fast paths) call
 * this_cpu_cmpxchg16b_emu, whose pushfq/cli and popfq trap under the patch
 * strategy: two traps per call, ~11.6k in a Debian boot. Rewritten, the
 * body jumps to the stand-in, which takes none.
 */
#include <cpuid.h>
#include <string.h>

#include "decode/patch.h"
#include "shadow/walk.h"
#include "umbra/log.h"
#include "vmm/call_cx16.h"
#include "vmm/exitcode.h"
#include "vmm/guest_access.h"
#include "vmm/monitor.h"
#include "vmm/shadow_cpu.h"
#include "vmm/shadow_emu.h"
#include "vmm/shadow_mode.h"
#include "vmm/vm.h"

/* Linux 6.1, arch/x86/lib/cmpxchg16b_emu.S; the two returns (at RET1, RET2) are checked apart. */
static const u8 cx16_body[CALL_CX16_BODY] = {
	0x9c,			      /* pushfq */
	0xfa,			      /* cli */
	0x65, 0x48, 0x3b, 0x06,	      /* cmp %gs:(%rsi),%rax */
	0x75, 0x18,		      /* jne not_same */
	0x65, 0x48, 0x3b, 0x56, 0x08, /* cmp %gs:8(%rsi),%rdx */
	0x75, 0x11,		      /* jne not_same */
	0x65, 0x48, 0x89, 0x1e,	      /* mov %rbx,%gs:(%rsi) */
	0x65, 0x48, 0x89, 0x4e, 0x08, /* mov %rcx,%gs:8(%rsi) */
	0x9d,			      /* popfq */
	0xb0, 0x01,		      /* mov $1,%al */
	0,    0,    0,	  0,	0,    /* RET1 */
	0x9d,			      /* not_same: popfq */
	0x30, 0xc0,		      /* xor %al,%al */
	0,    0,    0,	  0,	0,    /* RET2 */
};
#define RET1		 27u
#define RET2		 35u
#define CALL_CX16_NATIVE 6u /* the first jne: the rewrite leaves its bytes and all after */

bool call_cx16_host_ok(void)
{
	unsigned a, b, c, d;

	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_CMPXCHG16B);
}

/* A return: `jmp rel32` (to the return thunk), or `ret` and the four int3s apply_returns leaves. */
static bool is_return(const u8 *p)
{
	static const u8 ret[5] = { 0xc3, 0xcc, 0xcc, 0xcc, 0xcc };

	return p[0] == 0xe9 || !memcmp(p, ret, sizeof(ret));
}

static bool is_body(const u8 *p)
{
	return !memcmp(p, cx16_body, RET1) && is_return(p + RET1) &&
	       !memcmp(p + RET1 + 5, cx16_body + RET1 + 5, RET2 - RET1 - 5) && is_return(p + RET2);
}

bool call_cx16_plan(const struct scan_result *res, const u8 *page, u64 page_la, unsigned off,
		    u8 *repl, unsigned *len)
{
	if (off + CALL_CX16_BODY > PAGE_SIZE || !is_body(page + off) ||
	    !scan_is_insn_start(res, off))
		return false;
	/*
	 * Inside the cmp the jmp's last bytes cover: no start the scan knows;
	 * and nothing arrives at the cli or the cmp but by falling through.
	 */
	for (unsigned b = 1; b < CALL_CX16_PATCH; b++)
		if ((b >= 3 && scan_is_insn_start(res, off + b)) || scan_is_target(res, off + b))
			return false;
	if (!monitor_put_rel32(repl, 0xe9, page_la + off, MON_CALL_GVA + MON_CALL_CX16))
		return false;
	*len = CALL_CX16_PATCH;
	return true;
}

bool call_cx16_run_original(struct vm *vm, u64 body)
{
	struct shadow_mode *sm = vm->shadow;
	struct emu_cpu *c = &sm->cpu;
	struct walk_ctl ctl = shadow_cpu_walk_ctl(c);
	gpa_t body_gpa;
	u8 code[CALL_CX16_BODY];
	const u8 *hva;

	if (!guest_fetch_gpa(&vm->mem, &ctl, body, &body_gpa) ||
	    !(hva = gpa_to_hva(&vm->mem, body_gpa, CALL_CX16_BODY))) {
		vm_kill(vm, UMBRA_EXIT_INTERNAL,
			"shadow mode: this_cpu_cmpxchg16b_emu at 0x%llx is no longer mapped, at "
			"its stand-in's slow path",
			(unsigned long long)body);
		return false;
	}
	memcpy(code, hva, sizeof(code));
	patch_read_fixup(&sm->patches, body_gpa, code, sizeof(code)); /* the guest's bytes */
	/*
	 * pushfq, cli and the first cmp: the instructions the rewrite covers.
	 * From the jne on, the body's bytes are its own: it runs natively.
	 */
	while (c->rip - body < CALL_CX16_NATIVE) {
		unsigned at = (unsigned)(c->rip - body);
		struct emu_report rep;
		enum emu_result r = shadow_emu_insn_bytes(vm, code + at, CALL_CX16_BODY - at, &rep);

		if (r != EMU_DONE) {
			shadow_emu_stop(vm, r, &rep, body + at);
			return false;
		}
		if (emu_in_handler(&rep))
			return true; /* delivered: the guest is in its handler */
	}
	return true;
}
