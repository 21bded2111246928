/* SPDX-License-Identifier: MIT */
/*
 * Run one program (driver.h): a VM (umbra, QEMU) or ubench natively. Its
 * stdout (a VM's console) is read through a pipe for the BENCH lines and the
 * userspace marker, its stderr goes to a file, stdin is /dev/null, and a
 * stuck one is stopped, with its process group, after the time limit. umbra's
 * statistics come from its --stats=json file.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/harness/driver.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int have_program(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (strchr(prog, '/'))
		return !access(prog, X_OK);
	while (path && *path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, n ? path : ".", prog);
		if (!access(buf, X_OK))
			return 1;
		path += n;
		if (*path == ':')
			path++;
	}
	return 0;
}

/* The whole of file @path, NUL-terminated (free it), or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4097) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* One console line (NUL-terminated, without its "\n"). */
static void scan_line(char *line, const struct run_spec *spec, struct run_result *out, double t0)
{
	struct bench_line b;
	size_t n = strlen(line);

	if (n && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n)
		snprintf(out->last, sizeof(out->last), "%s", line);
	if (isnan(out->marker_s) && !strcmp(line, bench_userspace_marker))
		out->marker_s = now_s() - t0;
	if (bench_parse_line(line, &b))
		return;
	if (spec->on_line)
		spec->on_line(&b, spec->ctx);
	if (out->nlines < RUN_MAX_LINES)
		out->lines[out->nlines++] = b;
}

/* Feed the complete lines in @buf[0..*len) to scan_line(); keep the rest. */
static void scan_lines(char *buf, size_t *len, const struct run_spec *spec, struct run_result *out,
		       double t0)
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', (size_t)(buf + *len - start)))) {
		*nl = '\0';
		scan_line(start, spec, out, t0);
		start = nl + 1;
	}
	*len = (size_t)(buf + *len - start);
	memmove(buf, start, *len);
	if (*len == 4095) /* a line longer than the buffer: not a BENCH line */
		*len = 0;
}

/* The running child's process group, for on_signal(); 0: none. */
static volatile sig_atomic_t child_pgid;

/* Ctrl-C or a kill of the driver stops the VM it is running too. */
static void on_signal(int sig)
{
	if (child_pgid > 0)
		kill(-(pid_t)child_pgid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static pid_t spawn(const struct run_spec *spec, int out_fd)
{
	pid_t pid;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	pid = fork();
	if (pid > 0) {
		setpgid(pid, pid); /* as the child does: whichever runs first */
		child_pgid = pid;
	}
	if (pid)
		return pid;
	int in = open("/dev/null", O_RDONLY);
	int err = open(spec->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	/* Its own process group, so that a time-out stops its children too. */
	setpgid(0, 0);
	if (in < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	execvp(spec->argv[0], spec->argv);
	dprintf(2, "umbra-bench: cannot run %s: %s\n", spec->argv[0], strerror(errno));
	_exit(127);
}

/* The first line of file @path into @buf (empty if none). */
static void first_line(const char *path, char *buf, size_t len)
{
	char *s = slurp(path);

	buf[0] = '\0';
	if (s) {
		snprintf(buf, len, "%.*s", (int)strcspn(s, "\n"), s);
		free(s);
	}
}

const struct bench_line *run_line(const struct run_result *res, const char *name)
{
	for (unsigned i = 0; i < res->nlines; i++)
		if (!strcmp(res->lines[i].name, name))
			return &res->lines[i];
	return NULL;
}

int run_program(const struct run_spec *spec, struct run_result *out)
{
	char buf[4096], msg[200];
	size_t len = 0;
	int fds[2], status, timed_out = 0;
	double t0 = now_s(), deadline = t0 + spec->timeout_s;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->marker_s = NAN;
	for (unsigned m = 0; m < BM_COUNT; m++)
		out->metric[m] = NAN;
	if (spec->stats_path)
		unlink(spec->stats_path);
	if (pipe(fds)) {
		snprintf(out->why, sizeof(out->why), "pipe: %s", strerror(errno));
		return -1;
	}
	pid = spawn(spec, fds[1]);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		snprintf(out->why, sizeof(out->why), "fork: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		double left = deadline - now_s();
		ssize_t n;

		if (left <= 0 && !timed_out) {
			timed_out = 1;
			kill(-pid, SIGTERM);
			deadline = now_s() + 5;
			continue;
		}
		if (left <= 0) {
			kill(-pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		scan_lines(buf, &len, spec, out, t0);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	child_pgid = 0;
	out->wall_s = now_s() - t0;
	if (spec->stats_path) {
		char *json = slurp(spec->stats_path);

		if (json) {
			bench_metrics_from_json(json, out->metric);
			out->have_stats = 1;
			out->nmarks = bench_json_marks(json, out->marks, RUN_MAX_MARKS);
			if (out->nmarks < 0)
				out->nmarks = 0;
			free(json);
		}
	}
	if (timed_out) {
		/* A VM that stopped on an error may sit there: its stderr says why. */
		first_line(spec->err_path, msg, sizeof(msg));
		snprintf(out->why, sizeof(out->why), "timed out after %u s%s%s%s", spec->timeout_s,
			 *msg ? " (stderr: " : "", msg, *msg ? ")" : "");
		out->timed_out = 1;
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		first_line(spec->err_path, msg, sizeof(msg));
		if (WIFEXITED(status))
			snprintf(out->why, sizeof(out->why), "%s exited with status %d%s%s",
				 strrchr(spec->argv[0], '/') ? strrchr(spec->argv[0], '/') + 1
							     : spec->argv[0],
				 WEXITSTATUS(status), *msg ? ": " : "", msg);
		else
			snprintf(out->why, sizeof(out->why), "killed by signal %d",
				 WTERMSIG(status));
		return -1;
	}
	return 0;
}
