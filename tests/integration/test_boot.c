// SPDX-License-Identifier: MIT
/*
 * Integration tests: run the umbra binary ($UMBRA, default build/san/umbra)
 * on the images under $IMAGES (default images/) and check what the guest
 * printed and the exit status. Tests that need /dev/kvm skip with a message
 * when it is missing or not accessible; the bad-input tests always run
 * (umbra checks options and images before it opens /dev/kvm).
 */
#include "run_umbra.h"

/* ---- guest runs (need KVM) ------------------------------------------------- */

static void test_hello_hw(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--mmu=hw", "--cmdline", "console=ttyS0 exit=5",
				 img, NULL });
	assert_contains(r->out, "hello from umbra guest\n");
	assert_contains(r->out, "cmdline: console=ttyS0 exit=5\n");
	assert_contains(r->out, "  [0x0-0x9fbff] ram\n");
	assert_contains(r->out, "  [0x100000-0x1fffffff] ram\n");
	assert_contains(r->out, "fw_cfg: QEMU\nfw_cfg: cpus 1 ram 512 MiB\n");
	assert_contains(r->out, "timer: 3 ticks\n");
	assert_contains(r->out, "bye\n");
	assert_int_equal(r->status, (5 << 1) | 1);
	free(r);
}

static void test_hello_default_status(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra(r, (char *[]){ "umbra", "run", img, NULL });
	assert_contains(r->out, "cmdline: \n");
	assert_int_equal(r->status, 1);
	free(r);
}

/* More than 3 GiB of RAM: the PCI hole splits it and the rest sits above 4 GiB. */
static void test_hello_pci_hole(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--mem", "5G", img, NULL });
	assert_contains(r->out, "  [0x100000-0xbfffffff] ram\n");
	assert_contains(r->out, "  [0x100000000-0x17fffffff] ram\n");
	assert_contains(r->out, "fw_cfg: cpus 1 ram 5120 MiB\n");
	assert_int_equal(r->status, 1);
	free(r);
}

static void test_guest_exception(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--cmdline", "fault=ud", img, NULL });
	assert_contains(r->out, "exception 6 at rip 0x");
	assert_int_equal(r->status, (0x7e << 1 | 1) & 0xff);
	free(r);
}

static void test_triple_fault(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--cmdline", "fault=triple", img, NULL });
	assert_contains(r->out, "hello from umbra guest\n");
	assert_contains(r->err, "triple fault");
	assert_contains(r->err, "ud2");
	assert_int_equal(r->status, 8);
	free(r);
}

static void check_multiboot(const char *name)
{
	struct result *r = new_result();
	char img[512], initrd[] = "/tmp/umbra-test-initrd-XXXXXX";
	int fd = mkstemp(initrd);
	static const char content[] = "first line of the module\nsecond line\n";

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, sizeof(content) - 1), (ssize_t)sizeof(content) - 1);
	close(fd);
	image_path(img, sizeof(img), name);
	run_umbra(r, (char *[]){ "umbra", "run", "--mem=256M", "--cmdline", "exit=3 hello=world",
				 "--initrd", initrd, img, NULL });
	unlink(initrd);
	assert_contains(r->out, "hello from multiboot guest\nmagic ok\n");
	assert_contains(r->out, "mem_lower 639 KiB mem_upper 261120 KiB\n");
	assert_contains(r->out, "cmdline: exit=3 hello=world\n");
	assert_contains(r->out, "mods: 1\n");
	assert_contains(r->out, "mod 0: 37 bytes: first line of the module\n");
	assert_contains(r->out, "mod 0 string: /tmp/umbra-test-initrd-");
	assert_contains(r->out, "mmap: 4 entries\n  0x0 0x9fc00 type 1\n  0x9fc00 0x400 type 2\n");
	assert_contains(r->out, "  0x100000 0xff00000 type 1\n");
	assert_contains(r->out, "fw_cfg: QEMU\nfw_cfg: cpus 1 ram 256 MiB\n");
	assert_contains(r->out, "bye\n");
	assert_int_equal(r->status, 7);
	free(r);
}

static void test_multiboot_elf(void **state)
{
	(void)state;
	NEED_KVM();
	check_multiboot("mboot/mboot.elf");
}

static void test_multiboot_aout(void **state)
{
	(void)state;
	NEED_KVM();
	check_multiboot("mboot/mboot-aout.elf");
}

static void test_stats_json(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--mmu=hw", "--stats=json", img, NULL });
	assert_int_equal(r->status, 1);
	assert_contains(r->err, "{\"mode\": \"hw\"");
	assert_contains(r->err, "\"exits\": {");
	assert_contains(r->err, "\"io\": ");
	assert_contains(r->err, "\"exit_status\": 1");
	free(r);
}

/* Unknown ports read as all-ones and are counted; --trace logs them. */
static void test_trace_unknown_port(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--debug-exit-port=none", "--trace", "--stats",
				 img, NULL });
	/* Without debug-exit the image falls back to the i8042 reset: status 0. */
	assert_int_equal(r->status, 0);
	assert_contains(r->err, "pio out port 0x00f4 size 1 value 0x0");
	assert_contains(r->err, "unknown pio          1\n");
	free(r);
}

/*
 * Serial input end to end: host stdin -> console reader -> 16550 RX FIFO ->
 * IRQ 4 through KVM's PIC -> the guest's handler (hello.elf "echo" mode).
 */
static void test_serial_echo(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra_input(r, (char *[]){ "umbra", "run", "--cmdline", "echo exit=2", img, NULL },
			"hello world\nsecond line\nq\n");
	assert_contains(r->out, "timer: 3 ticks\necho: ready\n");
	assert_contains(r->out, "echo: ready\necho: hello world\necho: second line\n"
				"echo: bye\necho: irqs ok\nbye\n");
	assert_int_equal(r->status, (2 << 1) | 1);
	free(r);
}

#define ECHO_LINES    200
#define ECHO_LINE_LEN 70 /* without the '\n' */

/*
 * Far more input than the 16-byte FIFO holds: the reader must wait while it
 * is full (and until the guest has set the UART up), and lose nothing.
 */
static void test_serial_echo_flow_control(void **state)
{
	struct result *r = new_result();
	static const char fill[] = "abcdefghijklmnopqrstuvwxyz0123456789"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	static const char tail[] = "echo: bye\necho: irqs ok\nbye\n";
	/* Static: a failed assertion longjmps past any free(). */
	static char input[ECHO_LINES * (ECHO_LINE_LEN + 1) + sizeof("q\n")];
	char img[512], want[ECHO_LINE_LEN + 16];
	const char *at;

	(void)state;
	NEED_KVM();
	for (unsigned i = 0; i < ECHO_LINES; i++) {
		char *p = input + i * (ECHO_LINE_LEN + 1);

		/* "line NNN " and 61 filler characters, shifted from line to line. */
		snprintf(p, ECHO_LINE_LEN + 1, "line %03u %s", i, fill + i % 10);
		p[ECHO_LINE_LEN] = '\n';
	}
	strcpy(input + ECHO_LINES * (ECHO_LINE_LEN + 1), "q\n");
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra_input(r, (char *[]){ "umbra", "run", "--cmdline", "echo exit=2", img, NULL },
			input);

	/* Right after "echo: ready": every line, whole and in order, then the end. */
	at = strstr(r->out, "echo: ready\n");
	if (!at)
		fail_msg("no \"echo: ready\" in output:\n%s", r->out);
	at += strlen("echo: ready\n");
	for (unsigned i = 0; i < ECHO_LINES; i++) {
		snprintf(want, sizeof(want), "echo: %.*s\n", ECHO_LINE_LEN,
			 input + i * (ECHO_LINE_LEN + 1));
		if (strncmp(at, want, strlen(want)))
			fail_msg("line %u: expected %s at:\n%.300s", i, want, at);
		at += strlen(want);
	}
	if (strncmp(at, tail, strlen(tail)))
		fail_msg("expected\n%sat:\n%.300s", tail, at);
	assert_int_equal(r->status, (2 << 1) | 1);
	free(r);
}

/* ---- bad input (no KVM needed) ----------------------------------------------- */

static void expect_error(char *const argv[], int status, const char *msg)
{
	struct result *r = new_result();

	run_umbra(r, argv);
	assert_int_equal(r->status, status);
	assert_contains(r->err, msg);
	/* One clear line, no sanitizer report or stack dump. */
	assert_null(strchr(strchr(r->err, '\n') + 1, '\n'));
	free(r);
}

static void test_missing_file(void **state)
{
	(void)state;
	expect_error((char *[]){ "umbra", "run", "/nonexistent/kernel.elf", NULL }, 4,
		     "/nonexistent/kernel.elf: cannot open image: No such file or directory");
}

/* A path is quoted in the message: its control characters become '?' (one line). */
static void test_missing_file_control_chars(void **state)
{
	(void)state;
	expect_error((char *[]){ "umbra", "run", "/nonexistent/ker\nnel\x1b[2J.elf", NULL }, 4,
		     "/nonexistent/ker?nel?[2J.elf: cannot open image: No such file or directory");
}

static void test_missing_initrd_control_chars(void **state)
{
	char img[512];

	(void)state;
	image_path(img, sizeof(img), "hello/hello.elf");
	expect_error((char *[]){ "umbra", "run", "--initrd", "/nonexistent/in\titrd\r", img, NULL },
		     4, "/nonexistent/in?itrd?: cannot open initrd: No such file or directory");
}

static char *write_temp(const void *data, size_t len)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/umbra-test-img-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static void *read_image(const char *name, size_t *len)
{
	char img[512];
	FILE *f;
	void *buf = malloc(1 << 20);

	image_path(img, sizeof(img), name);
	f = fopen(img, "rb");
	assert_non_null(f);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static void test_not_elf(void **state)
{
	static const char text[] = "#!/bin/sh\necho this is not a kernel\n";
	char *p = write_temp(text, sizeof(text));

	(void)state;
	expect_error((char *[]){ "umbra", "run", p, NULL }, 4, "not a kernel image");
	unlink(p);
}

static void test_truncated_elf(void **state)
{
	size_t len;
	void *buf = read_image("hello/hello.elf", &len);
	char *p;

	(void)state;
	p = write_temp(buf, 100); /* inside the program header table */
	expect_error((char *[]){ "umbra", "run", p, NULL }, 4, "truncated");
	unlink(p);
	p = write_temp(buf, 40); /* inside the ELF header */
	expect_error((char *[]){ "umbra", "run", p, NULL }, 4, "truncated ELF header (40 bytes)");
	unlink(p);
	free(buf);
}

/* Move hello.elf's first segment to 1 GiB: outside a 64 MiB guest. */
static void test_segment_outside_ram(void **state)
{
	size_t len;
	unsigned char *buf = read_image("hello/hello.elf", &len);
	uint64_t phoff, paddr = 0x40000000;
	char *p;

	(void)state;
	memcpy(&phoff, buf + 32, 8);	     /* e_phoff */
	memcpy(buf + phoff + 24, &paddr, 8); /* phdr[0].p_paddr */
	p = write_temp(buf, len);
	expect_error((char *[]){ "umbra", "run", "--mem", "64M", p, NULL }, 4, "outside guest RAM");
	unlink(p);
	free(buf);
}

static void test_bad_options(void **state)
{
	char img[512];

	(void)state;
	image_path(img, sizeof(img), "hello/hello.elf");
	expect_error((char *[]){ "umbra", "run", "--mem", "0", img, NULL }, 2,
		     "--mem: '0' is out of range");
	expect_error((char *[]){ "umbra", "run", "--mem", "999T", img, NULL }, 2,
		     "--mem: '999T' is out of range");
	expect_error((char *[]){ "umbra", "run", "--mem", "lots", img, NULL }, 2, "is not a size");
	expect_error((char *[]){ "umbra", "run", "--frobnicate", img, NULL }, 2,
		     "unknown option '--frobnicate'");
	expect_error((char *[]){ "umbra", "run", NULL }, 2, "no IMAGE given");
	expect_error((char *[]){ "umbra", "run", "--mmu=shadow", "--shadow-pool", "3M", img, NULL },
		     2, "--shadow-pool: '3M' is not a multiple of 2M");
}

/* A port clash is found when the machine is assembled, after /dev/kvm is open. */
static void test_debug_exit_port_taken(void **state)
{
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	expect_error((char *[]){ "umbra", "run", "--debug-exit-port=0x3f8", img, NULL }, 2,
		     "another device is there");
}

/*
 * Shadow mode runs hello to the end (its privileged instructions emulated,
 * the PIT's interrupts reflected into its IDT); tests/integration/
 * test_shadow_hello.c compares it with hw mode line for line.
 */
static void test_shadow_runs_hello(void **state)
{
	struct result *r = new_result();
	char img[512];

	(void)state;
	NEED_KVM();
	image_path(img, sizeof(img), "hello/hello.elf");
	run_umbra(r, (char *[]){ "umbra", "run", "--mmu=shadow", img, NULL });
	assert_int_equal(r->status, 1);
	assert_contains(r->out, "hello from umbra guest\n");
	assert_contains(r->out, "timer: 3 ticks\nbye\n");
	free(r);
}

static void test_help_version(void **state)
{
	struct result *r = new_result();

	(void)state;
	run_umbra(r, (char *[]){ "umbra", "--help", NULL });
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "Usage: umbra run [OPTIONS] IMAGE");
	assert_contains(r->out, "Exit status:");
	run_umbra(r, (char *[]){ "umbra", "--version", NULL });
	assert_int_equal(r->status, 0);
	assert_contains(r->out, "umbra ");
	free(r);
}

/* No /dev/kvm at all (a host without a KVM module): status 6 and what it means. */
static void test_kvm_missing(void **state)
{
	char img[512];

	(void)state;
	if (!access("/dev/kvm", F_OK)) {
		print_message("SKIP: this host has /dev/kvm\n");
		skip();
	}
	image_path(img, sizeof(img), "hello/hello.elf");
	expect_error((char *[]){ "umbra", "run", img, NULL }, 6,
		     "cannot open /dev/kvm: No such file or directory (this host offers no KVM");
}

/* /dev/kvm not accessible: run umbra as an unprivileged user (needs root). */
static void test_kvm_not_accessible(void **state)
{
	struct result *r = new_result();
	char img[512], cmd[2048];
	FILE *f;

	(void)state;
	if (access("/dev/kvm", F_OK)) {
		print_message("SKIP: /dev/kvm does not exist (%s)\n", strerror(errno));
		free(r);
		skip();
	}
	if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK)) {
		print_message("SKIP: needs root and setpriv to drop privileges\n");
		free(r);
		skip();
	}
	image_path(img, sizeof(img), "hello/hello.elf");
	/* Copies in /tmp so that the unprivileged user can reach them. */
	snprintf(cmd, sizeof(cmd),
		 "d=$(mktemp -d) && cp '%s' \"$d/umbra\" && cp '%s' \"$d/k.elf\" && chmod -R a+rX "
		 "\"$d\" && "
		 "setpriv --reuid=65534 --regid=65534 --clear-groups \"$d/umbra\" run \"$d/k.elf\" "
		 "2>&1; "
		 "echo \"status=$?\"; rm -rf \"$d\"",
		 umbra_bin(), img);
	f = popen(cmd, "r");
	assert_non_null(f);
	r->out[fread(r->out, 1, sizeof(r->out) - 1, f)] = '\0';
	pclose(f);
	assert_contains(r->out, "cannot open /dev/kvm: Permission denied");
	assert_contains(r->out, "status=6\n");
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help_version),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_missing_file_control_chars),
		cmocka_unit_test(test_missing_initrd_control_chars),
		cmocka_unit_test(test_not_elf),
		cmocka_unit_test(test_truncated_elf),
		cmocka_unit_test(test_segment_outside_ram),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_debug_exit_port_taken),
		cmocka_unit_test(test_kvm_missing),
		cmocka_unit_test(test_kvm_not_accessible),
		cmocka_unit_test(test_hello_hw),
		cmocka_unit_test(test_hello_default_status),
		cmocka_unit_test(test_hello_pci_hole),
		cmocka_unit_test(test_guest_exception),
		cmocka_unit_test(test_triple_fault),
		cmocka_unit_test(test_multiboot_elf),
		cmocka_unit_test(test_multiboot_aout),
		cmocka_unit_test(test_stats_json),
		cmocka_unit_test(test_trace_unknown_port),
		cmocka_unit_test(test_serial_echo),
		cmocka_unit_test(test_serial_echo_flow_control),
		cmocka_unit_test(test_shadow_runs_hello),
	};

	return cmocka_run_group_tests_name("integration: umbra runs images", tests, NULL, NULL);
}
