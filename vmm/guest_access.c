// SPDX-License-Identifier: MIT
/* Guest-virtual reads through the guest's page tables (vmm/guest_access.h). */
#include <string.h>

#include "vmm/guest_access.h"

static void *ram_or_rom(void *opaque, gpa_t a, size_t len)
{
	return gpa_to_hva_kind(opaque, a, len, true);
}

struct walk_mem guest_walk_mem(struct guest_mem *mem)
{
	return (struct walk_mem){ .opaque = mem, .gpa_to_hva = ram_or_rom };
}

struct walk_ctl guest_hw_walk_ctl(struct guest_mem *mem, u64 cr0, u64 cr3, u64 cr4, u64 efer,
				  unsigned maxphyaddr)
{
	struct walk_ctl ctl = {
		.cr0 = cr0, .cr3 = cr3, .cr4 = cr4, .efer = efer, .maxphyaddr = maxphyaddr
	};
	struct walk_mem wm = guest_walk_mem(mem);

	/* A PDPT the CPU refused to load is never walked: leave the registers 0. */
	if (paging_mode_select(&ctl) == &paging_mode_pae &&
	    !walk_read_pdptes(&wm, cr3, maxphyaddr, ctl.pdpte))
		memset(ctl.pdpte, 0, sizeof(ctl.pdpte));
	return ctl;
}

bool guest_fetch_gpa(struct guest_mem *mem, const struct walk_ctl *ctl, u64 la, gpa_t *gpa)
{
	struct walk_mem wm = guest_walk_mem(mem);
	struct guest_walk w;

	if (walk_guest(paging_mode_select(ctl), &wm, ctl, gva(la), ACC_FETCH, WALK_PEEK, &w) !=
	    WALK_OK)
		return false;
	*gpa = w.gpa;
	return true;
}

size_t guest_read_virt(struct guest_mem *mem, const struct walk_ctl *ctl, u64 gva, void *buf,
		       size_t len, u32 access)
{
	struct walk_mem wm = guest_walk_mem(mem);
	const struct paging_mode *mode = paging_mode_select(ctl);
	size_t done = 0;

	while (done < len) {
		struct guest_walk w;
		u64 chunk = MIN(len - done, PAGE_SIZE - ((gva + done) & ~PAGE_MASK));
		const u8 *src;

		if (walk_guest(mode, &wm, ctl, (gva_t){ gva + done }, access, WALK_PEEK, &w) !=
		    WALK_OK)
			break;
		src = gpa_to_hva_kind(mem, w.gpa, chunk, true);
		if (!src)
			break;
		memcpy((u8 *)buf + done, src, chunk);
		done += chunk;
	}
	return done;
}

enum emu_map_result guest_translate_emu(struct guest_mem *mem, const struct walk_ctl *ctl, u64 la,
					unsigned len, u32 emu_access, gpa_t *gpa, void **hva,
					struct emu_event *fault)
{
	struct walk_mem wm = guest_walk_mem(mem);
	u32 acc = ((emu_access & EMU_ACC_WRITE) ? ACC_WRITE : 0) |
		  ((emu_access & EMU_ACC_FETCH) ? ACC_FETCH : 0) |
		  ((emu_access & EMU_ACC_USER) ? ACC_USER : 0) |
		  ((emu_access & EMU_ACC_AC) ? ACC_AC_SET : 0);
	struct guest_walk w;

	switch (walk_guest(paging_mode_select(ctl), &wm, ctl, (gva_t){ la }, acc, WALK_SET_AD,
			   &w)) {
	case WALK_OK: break;
	case WALK_FAULT:
		*fault = (struct emu_event){ .kind = EMU_EV_EXCEPTION,
					     .vector = w.fault.vector,
					     .has_error_code = true,
					     .error_code = w.fault.error_code,
					     .has_cr2 = true,
					     .cr2 = w.fault.cr2.v };
		return EMU_MAP_FAULT;
	default: return EMU_MAP_NOT_RAM; /* a guest table outside RAM */
	}
	*gpa = w.gpa;
	/* Writes go to RAM only; reads and fetches may hit the ROM window. */
	*hva = gpa_to_hva_kind(mem, w.gpa, len, !(emu_access & EMU_ACC_WRITE));
	return EMU_MAP_OK;
}
