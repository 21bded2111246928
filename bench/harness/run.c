/* SPDX-License-Identifier: MIT */
/*
 * Run one workload in one umbra process (driver.h): umbra's stdout (the guest
 * console) is read through a pipe for the BENCH line, its stderr goes to a
 * file next to the stats, stdin is /dev/null, and a stuck VM is stopped after
 * the time limit. The statistics come from umbra's --stats=json file.
 */
#include <errno.h>
#include <fcntl.h>
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

/* Feed the complete lines in @buf[0..*len) to the BENCH parser; keep the rest. */
static void scan_lines(char *buf, size_t *len, const struct run_spec *spec, struct run_result *out,
		       int *found)
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', (size_t)(buf + *len - start)))) {
		struct bench_line b;

		*nl = '\0';
		if (!bench_parse_line(start, &b) && !strcmp(b.name, spec->workload)) {
			out->line = b;
			*found = 1;
		}
		start = nl + 1;
	}
	*len = (size_t)(buf + *len - start);
	memmove(buf, start, *len);
	if (*len == 4095) /* a line longer than the buffer: not a BENCH line */
		*len = 0;
}

static pid_t spawn(const struct run_spec *spec, int out_fd, const char *err_path)
{
	char cmdline[128];
	char *argv[13];
	int i = 0;
	pid_t pid;

	if (spec->iters)
		snprintf(cmdline, sizeof(cmdline), "bench=%s iters=%llu", spec->workload,
			 (unsigned long long)spec->iters);
	else
		snprintf(cmdline, sizeof(cmdline), "bench=%s", spec->workload);
	argv[i++] = (char *)spec->umbra;
	argv[i++] = (char *)"run";
	argv[i++] = (char *)(strcmp(spec->mmu, "shadow") ? "--mmu=hw" : "--mmu=shadow");
	argv[i++] = (char *)"--mem";
	argv[i++] = (char *)spec->mem;
	argv[i++] = (char *)"--stats=json";
	argv[i++] = (char *)"--stats-file";
	argv[i++] = (char *)spec->stats_path;
	argv[i++] = (char *)"--cmdline";
	argv[i++] = cmdline;
	argv[i++] = (char *)spec->image;
	argv[i] = NULL;
	pid = fork();
	if (pid)
		return pid;
	int in = open("/dev/null", O_RDONLY);
	int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (in < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	execv(spec->umbra, argv);
	dprintf(2, "umbra-bench: cannot run %s: %s\n", spec->umbra, strerror(errno));
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

int run_umbra(const struct run_spec *spec, struct run_result *out)
{
	char err_path[4200], buf[4096], msg[160];
	size_t len = 0;
	int fds[2], found = 0, status, timed_out = 0;
	double t0 = now_s(), deadline = t0 + spec->timeout_s;
	pid_t pid;
	char *json;

	memset(out, 0, sizeof(*out));
	snprintf(err_path, sizeof(err_path), "%s.stderr", spec->stats_path);
	unlink(spec->stats_path);
	if (pipe(fds)) {
		snprintf(out->why, sizeof(out->why), "pipe: %s", strerror(errno));
		return -1;
	}
	pid = spawn(spec, fds[1], err_path);
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
			kill(pid, SIGTERM);
			deadline = now_s() + 5;
			continue;
		}
		if (left <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		scan_lines(buf, &len, spec, out, &found);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	out->wall_s = now_s() - t0;
	if (timed_out) {
		snprintf(out->why, sizeof(out->why), "stopped after the %u s time limit",
			 spec->timeout_s);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		first_line(err_path, msg, sizeof(msg));
		if (WIFEXITED(status))
			snprintf(out->why, sizeof(out->why), "umbra exited with status %d%s%s",
				 WEXITSTATUS(status), *msg ? ": " : "", msg);
		else
			snprintf(out->why, sizeof(out->why), "umbra killed by signal %d",
				 WTERMSIG(status));
		return -1;
	}
	if (!found) {
		snprintf(out->why, sizeof(out->why), "the guest printed no 'BENCH %s' line",
			 spec->workload);
		return -1;
	}
	json = slurp(spec->stats_path);
	if (!json) {
		snprintf(out->why, sizeof(out->why), "no statistics in %s", spec->stats_path);
		return -1;
	}
	bench_metrics_from_json(json, out->metric);
	free(json);
	return 0;
}
