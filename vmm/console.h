/* SPDX-License-Identifier: MIT */
/*
 * The host side of the serial console: stdout for guest output, a reader
 * thread for stdin, raw terminal mode when stdin is a terminal (restored on
 * every exit path, including fatal signals), and the Ctrl-A x escape.
 */
#ifndef UMBRA_VMM_CONSOLE_H
#define UMBRA_VMM_CONSOLE_H

#include <pthread.h>
#include <termios.h>

#include "umbra/types.h"

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

struct console {
	bool raw; /* terminal settings changed; restore them */
	bool thread_started;
	pthread_t reader;
	int wake_pipe[2]; /* written to stop the reader thread */
	/* Deliver input to the guest; returns bytes accepted (0 when full). */
	size_t (*deliver)(void *opaque, const u8 *buf, size_t len);
	/* Called once when the user types the escape sequence. */
	void (*on_escape)(void *opaque);
	void *opaque;
};

/*
 * Scan `in[0..len)` for the escape sequence, given whether the previous byte
 * was the escape char (*pending). Bytes to forward go to `out`, which must
 * hold len + 1 bytes (a pending Ctrl-A followed by another char forwards
 * both); returns their count, and sets *quit when Ctrl-A x was seen.
 * Pure, for tests.
 */
size_t console_filter(const u8 *in, size_t len, u8 *out, bool *pending, bool *quit);

#endif /* UMBRA_VMM_CONSOLE_H */
