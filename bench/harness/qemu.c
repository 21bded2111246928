/* SPDX-License-Identifier: MIT */
/*
 * QEMU for the qemu-tcg and qemu-kvm configurations (driver.h): Debian's
 * qemu-system-x86 package. The harness installs it when it is missing and
 * it runs as root (as ./configure --install-deps does for the build's
 * dependencies); otherwise those configurations say it is not installed.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/harness/driver.h"

#define PACKAGE "qemu-system-x86"

/* apt-get install -y PACKAGE, its output on our stderr (stdout is the table). */
static int apt_install(void)
{
	pid_t pid;
	int status;

	fprintf(stderr, "umbra-bench: %s is missing: apt-get install -y %s\n", "qemu", PACKAGE);
	pid = fork();
	if (!pid) {
		dup2(2, 1);
		execlp("apt-get", "apt-get", "install", "-y", "--no-install-recommends", PACKAGE,
		       (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

const char *qemu_available(const struct bench_opts *o)
{
	static int tried;

	if (have_program(o->qemu))
		return NULL;
	/* Only the default name is installable; a given path is the user's. */
	if (strcmp(o->qemu, "qemu-system-x86_64"))
		return "not runnable here: the --qemu program is missing";
	if (geteuid())
		return "not runnable here: qemu-system-x86_64 is not installed (apt-get "
		       "install " PACKAGE ")";
	if (!tried++ && !apt_install() && have_program(o->qemu))
		return NULL;
	return "not runnable here: qemu-system-x86_64 is not installed (apt-get install -y " PACKAGE
	       " failed)";
}
