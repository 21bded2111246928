// SPDX-License-Identifier: MIT
/*
 * Building and tearing down a VM: an ordered table of steps, run upwards,
 * stopped at the first failure, and torn down in reverse (the failed step's
 * teardown included, so each step cleans up its own partial work).
 *
 * The image is read and loaded into guest RAM *before* /dev/kvm is opened:
 * loaders only need struct guest_mem, so a bad image is reported the same
 * way on a host without KVM (and the tests can check it there).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "umbra/log.h"
#include "vmm/exitcode.h"
#include "vmm/kvm_stats.h"
#include "vmm/shadow_mode.h"
#include "vmm/vm.h"

#define IMAGE_MAX_SIZE (1 * GiB)

struct init_step {
	const char *name;
	int (*setup)(struct vm *vm);
	void (*teardown)(struct vm *vm);
};

static const struct init_step init_steps[] = {
	{ "memory", memory_setup, memory_teardown },
	{ "image", image_setup, image_teardown },
	{ "kvm", kvm_setup, kvm_teardown },
	{ "host probe", host_probe_setup, NULL }, /* hw mode: syscall_cpl only */
	{ "devices", devices_setup, devices_teardown },
	{ "vcpu", vcpu_setup, vcpu_teardown },
	{ "hw syscall", hw_syscall_setup, hw_syscall_teardown }, /* hw mode on PVM hosts */
	{ "shadow", shadow_mode_setup, shadow_mode_teardown },
	{ "console", console_setup, console_teardown },
};

/* The VM signal handlers stop; there is only one VM per process. */
static struct vm *current_vm;

void vm_request_stop(struct vm *vm, int code)
{
	if (vm->stop)
		return; /* the first reason wins */
	vm->exit_code = code;
	vm->stop = 1;
	/* Make a KVM_RUN that is about to start return at once. */
	if (vm->run)
		vm->run->immediate_exit = 1;
}

/* SIGUSR1 only interrupts KVM_RUN (EINTR); the stop flag says why. */
#define KICK_SIGNAL SIGUSR1

void vm_kick(struct vm *vm)
{
	pthread_kill(vm->vcpu_thread, KICK_SIGNAL);
}

void vm_kill(struct vm *vm, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_err("%s: %s", vm->opts->image, msg);
	vm_request_stop(vm, code);
}

/* ---- memory and image steps --------------------------------------------- */

int memory_setup(struct vm *vm)
{
	int r = guest_mem_init(&vm->mem, vm->opts->mem_bytes);

	if (r) {
		pr_err("cannot allocate %llu MiB of guest memory: %s",
		       (unsigned long long)(vm->opts->mem_bytes >> 20), strerror(-r));
		return UMBRA_EXIT_INTERNAL;
	}
	return 0;
}

void memory_teardown(struct vm *vm)
{
	guest_mem_destroy(&vm->mem);
}

/* Read a whole file; the error names the file. Returns 0 or UMBRA_EXIT_BAD_IMAGE. */
static int read_file(const char *path, const char *what, u8 **out, size_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	u8 *buf = NULL;
	size_t done = 0;

	if (fd < 0) {
		pr_err("%s: cannot open %s: %s", path, what, strerror(errno));
		return UMBRA_EXIT_BAD_IMAGE;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		pr_err("%s: %s is not a regular file", path, what);
		goto fail;
	}
	if (st.st_size == 0 || (u64)st.st_size > IMAGE_MAX_SIZE) {
		pr_err("%s: %s is %s (%lld bytes)", path, what, st.st_size ? "too large" : "empty",
		       (long long)st.st_size);
		goto fail;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		pr_err("%s: out of memory reading the %s", path, what);
		close(fd);
		return UMBRA_EXIT_INTERNAL;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_err("%s: cannot read %s: %s", path, what,
			       n ? strerror(errno) : "short read");
			goto fail;
		}
		done += (size_t)n;
	}
	close(fd);
	*out = buf;
	*size = done;
	return 0;
fail:
	free(buf);
	close(fd);
	return UMBRA_EXIT_BAD_IMAGE;
}

/*
 * CPUID is not known before KVM is open; NX is on every x86-64 CPU KVM runs
 * on, so the boot contract assumes it and vcpu_setup checks (see vcpu.c).
 */
int image_setup(struct vm *vm)
{
	char err[256];
	int r;

	r = read_file(vm->opts->image, "image", &vm->image, &vm->image_size);
	if (r)
		return r;
	if (vm->opts->initrd) {
		r = read_file(vm->opts->initrd, "initrd", &vm->initrd, &vm->initrd_size);
		if (r)
			return r;
	}
	struct boot_input in = {
		.image_name = vm->opts->image,
		.image = vm->image,
		.image_size = vm->image_size,
		.cmdline = vm->opts->cmdline ? vm->opts->cmdline : "",
		.initrd_name = vm->opts->initrd,
		.initrd = vm->initrd,
		.initrd_size = vm->initrd_size,
		.cpu_has_nx = true,
	};
	if (boot_load(&vm->mem, &in, &vm->boot, err, sizeof(err))) {
		pr_err("%s: %s", vm->opts->image, err);
		return UMBRA_EXIT_BAD_IMAGE;
	}
	pr_info("%s: %s kernel, entry 0x%llx, loaded at [0x%llx, 0x%llx)", vm->opts->image,
		vm->boot.format, (unsigned long long)vm->boot.rip,
		(unsigned long long)vm->boot.load_start, (unsigned long long)vm->boot.load_end);
	return 0;
}

void image_teardown(struct vm *vm)
{
	free(vm->image);
	free(vm->initrd);
	vm->image = vm->initrd = NULL;
}

/* ---- signals ---------------------------------------------------------------- */

static void stop_signal(int sig)
{
	(void)sig;
	/* Only async-signal-safe work: set flags; KVM_RUN returns with EINTR. */
	if (current_vm)
		vm_request_stop(current_vm, UMBRA_EXIT_SIGNAL);
}

static void kick_signal(int sig)
{
	(void)sig;
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = stop_signal };
	struct sigaction kick = { .sa_handler = kick_signal };

	/* No SA_RESTART: a blocked KVM_RUN must return EINTR. */
	sigemptyset(&kick.sa_mask);
	sigaction(KICK_SIGNAL, &kick, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- the whole run ---------------------------------------------------------- */

static void print_stats(struct vm *vm, int status)
{
	const struct umbra_options *o = vm->opts;
	FILE *f = stderr;

	if (o->stats == STATS_NONE)
		return;
	if (o->stats_file && !(f = fopen(o->stats_file, "w"))) {
		pr_err("cannot write statistics to %s: %s", o->stats_file, strerror(errno));
		return;
	}
	if (o->stats == STATS_JSON)
		stats_print_json(&vm->stats, f, o->mmu == MMU_HW ? "hw" : "shadow", o->image,
				 status);
	else
		stats_print_text(&vm->stats, f, o->mmu == MMU_HW ? "hw" : "shadow", o->image,
				 status);
	if (f != stderr)
		fclose(f);
}

int vmm_run(const struct umbra_options *opts)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	size_t done = 0;
	int status = 0;

	if (!vm) {
		pr_err("out of memory");
		return UMBRA_EXIT_INTERNAL;
	}
	vm->opts = opts;
	vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
	if (opts->trace) {
		vm->trace = opts->trace_file ? fopen(opts->trace_file, "w") : stderr;
		if (!vm->trace) {
			pr_err("--trace: cannot open %s: %s", opts->trace_file, strerror(errno));
			free(vm);
			return UMBRA_EXIT_USAGE;
		}
	}
	current_vm = vm;
	vm->vcpu_thread = pthread_self();
	install_signals();
	vm->stats.t_start = stats_now();
	for (; done < ARRAY_SIZE(init_steps); done++) {
		pr_debug("init: %s", init_steps[done].name);
		status = init_steps[done].setup(vm);
		if (status) {
			done++; /* tear down the failed step too */
			break;
		}
	}
	if (!status && !vm->stop)
		status = vcpu_run_loop(vm);
	else if (!status)
		status = vm->exit_code; /* a signal arrived during setup */
	vm->stats.t_end = stats_now();
	/* What KVM did in the kernel, without an exit to us: read while the vCPU exists. */
	if (opts->stats != STATS_NONE && vm->vcpu_fd >= 0)
		kvm_stats_read(vm->vcpu_fd, &vm->stats);
	while (done--)
		if (init_steps[done].teardown)
			init_steps[done].teardown(vm);
	print_stats(vm, status);
	current_vm = NULL;
	if (vm->trace && vm->trace != stderr)
		fclose(vm->trace);
	free(vm);
	return status;
}
