// SPDX-License-Identifier: MIT
/*
 * Host console (vmm/console.h).
 *
 * 1. When stdin is a terminal, switch it to raw input (no line editing, no
 *    echo, no signals from Ctrl-C: those keys belong to the guest) and make
 *    sure the original settings come back on every exit path: normal
 *    teardown, exit(), and fatal signals (the handler restores, then lets
 *    the signal kill us as it would have).
 * 2. A reader thread feeds stdin to the UART, retrying while its FIFO is
 *    full or the guest holds RTS low, and watches for Ctrl-A x (Ctrl-A
 *    Ctrl-A sends one Ctrl-A).
 * 3. EOF on stdin only ends the reader: a guest may run on with no input.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/serial.h"
#include "umbra/log.h"
#include "vmm/exitcode.h"
#include "vmm/vm.h"

/* Saved settings, global so that signal handlers and atexit can reach them. */
static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;

static void restore_terminal(void)
{
	if (termios_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
}

static void fatal_signal(int sig)
{
	restore_terminal();
	/* SA_RESETHAND made the default action current again. */
	raise(sig);
}

/* Item 1. */
static int make_raw(struct console *c)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGQUIT };
	struct sigaction sa = { .sa_handler = fatal_signal, .sa_flags = SA_RESETHAND };
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios))
		return 0;
	termios_saved = 1;
	atexit(restore_terminal);
	for (size_t i = 0; i < ARRAY_SIZE(fatal); i++)
		sigaction(fatal[i], &sa, NULL);
	t = saved_termios;
	t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t))
		return -errno;
	c->raw = true;
	return 0;
}

/* Item 2: the escape-sequence filter. */
size_t console_filter(const u8 *in, size_t len, u8 *out, bool *pending, bool *quit)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		u8 ch = in[i];

		if (*pending) {
			*pending = false;
			if (ch == 'x' || ch == 'X') {
				*quit = true;
				return n;
			}
			if (ch != CONSOLE_ESCAPE)
				out[n++] = CONSOLE_ESCAPE;
			out[n++] = ch;
		} else if (ch == CONSOLE_ESCAPE) {
			*pending = true;
		} else {
			out[n++] = ch;
		}
	}
	return n;
}

/* Wait up to `ms` for stdin or the wake pipe; returns false when woken to stop. */
static bool wait_input(struct console *c, int ms, bool want_stdin)
{
	struct pollfd fds[2] = {
		{ .fd = c->wake_pipe[0], .events = POLLIN },
		{ .fd = STDIN_FILENO, .events = POLLIN },
	};

	while (poll(fds, want_stdin ? 2 : 1, ms) < 0)
		if (errno != EINTR)
			return false;
	return !(fds[0].revents & (POLLIN | POLLHUP));
}

/* Items 2 and 3. */
static void *reader_main(void *arg)
{
	struct console *c = arg;
	bool pending = false, quit = false;
	u8 buf[256], out[sizeof(buf) + 1];

	for (;;) {
		ssize_t n;
		size_t len, done = 0;

		if (!wait_input(c, -1, true))
			return NULL;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return NULL;
		if (c->raw) {
			len = console_filter(buf, (size_t)n, out, &pending, &quit);
		} else {
			memcpy(out, buf, (size_t)n);
			len = (size_t)n;
		}
		while (done < len) {
			size_t k = c->deliver(c->opaque, out + done, len - done);

			done += k;
			/* FIFO full: give the guest time to drain it. */
			if (!k && !wait_input(c, 2, false))
				return NULL;
		}
		if (quit) {
			c->on_escape(c->opaque);
			return NULL;
		}
	}
}

static size_t deliver_to_serial(void *opaque, const u8 *buf, size_t len)
{
	struct vm *vm = opaque;

	/*
	 * Hardware flow control: send only while the guest asserts RTS. The
	 * UART leaves reset with RTS low and drivers raise it once the port is
	 * set up; a byte sent before that (stdin from a file or a pipe is read
	 * at once) would land in the power-on holding register and be wiped
	 * when the driver enables or clears the FIFOs.
	 */
	if (!serial_rts(vm->serial))
		return 0;
	return serial_receive(vm->serial, buf, len);
}

static void escape_pressed(void *opaque)
{
	struct vm *vm = opaque;

	pr_info("stopped by Ctrl-A x");
	vm_request_stop(vm, UMBRA_EXIT_SIGNAL);
	vm_kick(vm);
}

int console_setup(struct vm *vm)
{
	struct console *c = &vm->console;
	sigset_t all, old;
	int r;

	c->deliver = deliver_to_serial;
	c->on_escape = escape_pressed;
	c->opaque = vm;
	if (pipe(c->wake_pipe)) {
		pr_err("console: pipe: %s", strerror(errno));
		return UMBRA_EXIT_INTERNAL;
	}
	if (make_raw(c))
		pr_warn("console: cannot put the terminal in raw mode: %s", strerror(errno));
	/* The reader must never take a signal meant for the vCPU thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&c->reader, NULL, reader_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		pr_err("console: cannot start the input thread: %s", strerror(r));
		return UMBRA_EXIT_INTERNAL;
	}
	c->thread_started = true;
	return 0;
}

void console_teardown(struct vm *vm)
{
	struct console *c = &vm->console;

	if (c->thread_started) {
		if (write(c->wake_pipe[1], "", 1) < 0)
			pr_warn("console: cannot wake the input thread");
		pthread_join(c->reader, NULL);
		c->thread_started = false;
	}
	if (c->wake_pipe[0] > 0) {
		close(c->wake_pipe[0]);
		close(c->wake_pipe[1]);
	}
	if (c->raw) {
		restore_terminal();
		c->raw = false;
	}
}
