/* SPDX-License-Identifier: MIT */
/*
 * The Linux guest's side of a boot (benchlib.h): the shell script the
 * initramfs's /init runs (images/linux/fetch.sh), given on the kernel command
 * line as umbra.run=<base64>, and the console line that marks userspace.
 */
#include <stdio.h>
#include <string.h>

#include "bench/harness/benchlib.h"

const char bench_userspace_marker[] = "UMBRA-USERSPACE-UP";

size_t bench_base64(const void *data, size_t len, char *out, size_t cap)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = data;
	size_t need = (len + 2) / 3 * 4, o = 0;

	if (need >= cap)
		return 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

int bench_linux_script(char *buf, size_t cap, const char *const *names, const uint64_t *iters,
		       unsigned n, int marks)
{
	size_t len;
	int k = snprintf(buf, cap, "echo %s\n", bench_userspace_marker);

	if (k < 0 || (size_t)k >= cap)
		return -1;
	len = (size_t)k;
	/*
	 * One process per workload: a crash in one still lets the others report.
	 * -k numbers their stats marks as if one ubench ran them all.
	 */
	for (unsigned i = 0; i < n; i++) {
		char opt_m[32] = "", opt_n[32] = "";

		if (strspn(names[i], "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(names[i]) ||
		    !names[i][0])
			return -1; /* nothing the shell would interpret */
		if (marks)
			snprintf(opt_m, sizeof(opt_m), "-m -k %u ", i);
		if (iters[i])
			snprintf(opt_n, sizeof(opt_n), "-n %llu ", (unsigned long long)iters[i]);
		k = snprintf(buf + len, cap - len, "/ubench %s%s%s\n", opt_m, opt_n, names[i]);
		if (k < 0 || (size_t)k >= cap - len)
			return -1;
		len += (size_t)k;
	}
	return (int)len;
}
