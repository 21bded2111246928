/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for umbra's command line (vmm/options.c, and --cpu's
 * list in vmm/cpu_features.c): any argv parses into a run, --help,
 * --version or an error with a one-line reason (options.h); never a crash,
 * a read past an argument's end (ASan: each is a buffer of exactly its
 * length) or a hang.
 *
 * Input: the arguments after "umbra", separated by NUL bytes (at most 32).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 2], err[256];
	struct umbra_options o;
	enum options_result r;
	int argc = 0;
	size_t at = 0;

	argv[argc++] = strdup("umbra");
	while (at < size && argc <= MAX_ARGS) {
		const uint8_t *end = memchr(data + at, 0, size - at);
		size_t len = end ? (size_t)(end - (data + at)) : size - at;

		argv[argc] = malloc(len + 1);
		if (!argv[argc])
			abort();
		memcpy(argv[argc], data + at, len);
		argv[argc++][len] = 0;
		at += len + 1;
	}
	argv[argc] = NULL;
	memset(err, 0, sizeof(err));
	r = options_parse(argc, argv, &o, err, sizeof(err));
	if (r != OPTIONS_RUN && r != OPTIONS_HELP && r != OPTIONS_VERSION && r != OPTIONS_ERROR)
		abort();
	if (r == OPTIONS_ERROR && (!err[0] || memchr(err, '\n', sizeof(err))))
		abort(); /* the reason umbra prints: one line, never empty */
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return 0;
}
