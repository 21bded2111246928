// SPDX-License-Identifier: MIT
/*
 * Integration test: every SSE/AVX/AVX-512 instruction in the text of
 * Debian's cloud kernel (the guest of test_linux.c) gets through hw mode's
 * SIMD fallback (decode/emulate_simd.c) rather than stopping the VM as an
 * unknown instruction. On PVM hosts KVM's emulator runs all guest CPL0 code
 * and rejects these; a kernel update that brings one capstone 4.0.2 cannot
 * decode with a memory operand would otherwise be found only at the end of
 * a hw-mode boot of many minutes.
 *
 * The bzImage's payload (boot protocol 2.08+: payload_offset, payload_length)
 * is decompressed with the matching tool, disassembled with binutils'
 * objdump, and each instruction that names an XMM/YMM/ZMM register runs
 * through emu_insn() on tests/unit/emu_env.h's fake vCPU, at CPL0 in hw mode
 * with the host's XSAVE layout and every vector state enabled that the host
 * has. Its operands point at the fixture's memory or nowhere, so a #PF is a
 * fine outcome; only EMU_UNKNOWN fails. Modules are not looked at (the
 * initramfs loads none). Skipped, saying why, when the kernel cannot be
 * fetched or a tool is missing.
 */
#define RUN_TIMEOUT_S 60
#define OUT_MAX	      4096
#include "run_umbra.h"
#include "linux_images.h"
#include "../unit/emu_env.h"
#include "../unit/emu_host_xstate.h"

#include "umbra/le.h"

#define HDR_MAGIC	   0x202 /* "HdrS" */
#define HDR_SETUP_SECTS	   0x1f1
#define HDR_VERSION	   0x206
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c

static u8 *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	u8 *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

static bool have_tool(const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s > /dev/null 2>&1", name);
	return system(cmd) == 0;
}

/* The decompressor for the payload's magic (Linux's arch/x86/boot/compressed formats). */
static const char *decompressor(const u8 *p, size_t n)
{
	if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return "gzip";
	if (n >= 6 && !memcmp(p,
			      "\xfd"
			      "7zXZ",
			      6))
		return "xz";
	if (n >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4))
		return "zstd";
	if (n >= 4 && !memcmp(p, "\x02\x21\x4c\x18", 4))
		return "lz4";
	if (n >= 3 && !memcmp(p, "BZh", 3))
		return "bzip2";
	return NULL;
}

/*
 * Write the kernel's vmlinux (ELF) to `out`. Returns NULL, or why not (a
 * missing tool: the caller skips; anything else fails).
 */
static const char *extract_vmlinux(const char *bz, const char *out, bool *skip_it)
{
	static char why[256];
	char tmp[] = "/tmp/umbra-payload-XXXXXX", cmd[512];
	size_t n = 0, pm, off, len;
	const char *tool;
	u8 *img = read_file(bz, &n), elf[4] = { 0 };
	FILE *f;
	int fd;

	*skip_it = false;
	if (!img || n < 0x250 || memcmp(img + HDR_MAGIC, "HdrS", 4) ||
	    le_get16(img, HDR_VERSION) < 0x208) {
		free(img);
		return "not a bzImage of boot protocol 2.08 or later";
	}
	pm = ((size_t)(img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4) + 1) * 512;
	off = pm + le_get32(img, HDR_PAYLOAD_OFFSET);
	len = le_get32(img, HDR_PAYLOAD_LENGTH);
	/* The build appends the uncompressed size (4 bytes) to every format: not part of it. */
	if (len < 8 || off + len > n || !(tool = decompressor(img + off, len))) {
		free(img);
		return "no payload of a known compression format";
	}
	if (!have_tool(tool) || !have_tool("objdump")) {
		free(img);
		*skip_it = true;
		snprintf(why, sizeof(why), "%s or objdump is not installed", tool);
		return why;
	}
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img + off, len - 4), (ssize_t)(len - 4));
	close(fd);
	free(img);
	snprintf(cmd, sizeof(cmd), "%s -dc < %s > %s 2>/dev/null", tool, tmp, out);
	(void)!system(cmd); /* gzip and lz4 may complain about the end; the ELF check decides */
	unlink(tmp);
	f = fopen(out, "rb");
	if (!f || fread(elf, 1, 4, f) != 4 ||
	    memcmp(elf,
		   "\x7f"
		   "ELF",
		   4)) {
		if (f)
			fclose(f);
		snprintf(why, sizeof(why), "%s -dc did not give an ELF vmlinux", tool);
		return why;
	}
	fclose(f);
	return NULL;
}

/* Parse objdump's "addr:\tBYTES\tmnemonic operands"; false for other lines. */
static bool parse_line(const char *line, u8 *code, unsigned *len, const char **text)
{
	const char *p = strchr(line, '\t'), *end;

	if (!p || !(end = strchr(p + 1, '\t')))
		return false;
	*len = 0;
	for (p++; p < end && *len < EMU_MAX_INSN_LEN;) {
		unsigned v;
		int k;

		if (sscanf(p, "%2x%n", &v, &k) != 1)
			break;
		code[(*len)++] = (u8)v;
		p += k;
		while (*p == ' ')
			p++;
	}
	*text = end + 1;
	return *len > 0;
}

static bool names_vector_reg(const char *text)
{
	return strstr(text, "xmm") || strstr(text, "ymm") || strstr(text, "zmm");
}

static void test_kernel_simd_all_emulated(void **state)
{
	struct env *env = *state;
	char bz[600], initrd[600], why[512], line[512], vmlinux[] = "/tmp/umbra-vmlinux-XXXXXX";
	unsigned total = 0, unknown = 0, faulted = 0;
	const char *err;
	bool skip_it;
	FILE *dis;
	int fd;

	if (!linux_images(bz, initrd, sizeof(bz), why, sizeof(why))) {
		print_message("SKIP: the Linux images are not available: %s\n", why);
		skip();
	}
	fd = mkstemp(vmlinux);
	assert_true(fd >= 0);
	close(fd);
	err = extract_vmlinux(bz, vmlinux, &skip_it);
	if (err) {
		unlink(vmlinux);
		if (skip_it) {
			print_message("SKIP: %s\n", err);
			skip();
		}
		fail_msg("%s: %s", bz, err);
	}
	snprintf(line, sizeof(line), "objdump -d -M intel --insn-width=15 %s", vmlinux);
	dis = popen(line, "r");
	assert_non_null(dis);

	/* CPL0, hw mode, SSE enabled, every vector component the host has. */
	env->cpu.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
	use_host_xstate(env, (host_has_avx512f() ? 0xe7 : 0x7) & 0xffffffffull);
	while (fgets(line, sizeof(line), dis)) {
		struct emu_cpu saved = env->cpu;
		struct emu_report rep;
		const char *text;
		u8 code[EMU_MAX_INSN_LEN];
		unsigned len;

		if (!parse_line(line, code, &len, &text) || !names_vector_reg(text))
			continue;
		total++;
		/* Addresses in the fixture's data page, or (RIP-relative) nowhere: #PF. */
		for (unsigned g = 0; g < 16; g++)
			if (g != EMU_RSP)
				env->cpu.gpr[g] = DATA_VA + 0x100;
		if (run(env, code, len, &rep) != EMU_DONE) {
			unknown++;
			print_message("not emulated: %s", line);
		} else if (rep.faulted) {
			faulted++;
		}
		env->cpu = saved;
	}
	pclose(dis);
	unlink(vmlinux);
	print_message("%u SIMD instructions in the kernel's text, %u of them faulting on the "
		      "fixture's memory, %u not emulated\n",
		      total, faulted, unknown);
	assert_true(total > 0); /* a kernel without any would mean the parsing broke */
	assert_int_equal(unknown, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kernel_simd_all_emulated, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
