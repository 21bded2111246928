// SPDX-License-Identifier: MIT
/* decode/debugreg: breakpoint matching (debugreg.h). */
#include "decode/debugreg.h"

unsigned dr7_enabled(u64 dr7)
{
	unsigned m = 0;

	for (unsigned n = 0; n < 4; n++)
		if (dr7 & (3ull << (2 * n)))
			m |= 1u << n;
	return m;
}

unsigned dr7_rw(u64 dr7, unsigned n)
{
	return (unsigned)(dr7 >> (16 + 4 * n)) & 3;
}

unsigned dr7_len(u64 dr7, unsigned n)
{
	static const unsigned len[4] = { 1, 2, 8, 4 }; /* 10b is 8 bytes in 64-bit mode */

	return len[(dr7 >> (18 + 4 * n)) & 3];
}

bool dr_exec_armed(u64 dr7)
{
	unsigned on = dr7_enabled(dr7);

	for (unsigned n = 0; n < 4; n++)
		if ((on & (1u << n)) && dr7_rw(dr7, n) == DR7_RW_EXEC)
			return true;
	return false;
}

unsigned dr_exec_hits(const u64 dr[4], u64 dr7, u64 la)
{
	unsigned m = 0, on = dr7_enabled(dr7);

	for (unsigned n = 0; n < 4; n++)
		if ((on & (1u << n)) && dr7_rw(dr7, n) == DR7_RW_EXEC && dr[n] == la)
			m |= 1u << n;
	return m;
}

unsigned dr_data_hits(const u64 dr[4], u64 dr7, u64 la, unsigned len, bool write)
{
	unsigned m = 0, on = dr7_enabled(dr7);

	if (!len)
		return 0;
	for (unsigned n = 0; n < 4; n++) {
		unsigned rw = dr7_rw(dr7, n);
		u64 size = dr7_len(dr7, n), start = dr[n] & ~(size - 1);

		if (!(on & (1u << n)) || !(rw == DR7_RW_RDWR || (rw == DR7_RW_WRITE && write)))
			continue;
		/* Overlap of [la, la+len) and [start, start+size), without wrapping. */
		if (la - start < size || start - la < len)
			m |= 1u << n;
	}
	return m;
}
