// SPDX-License-Identifier: MIT
/* umbra: command-line entry point. See `umbra --help` and README.md. */
#include <stdio.h>

#include "umbra/log.h"
#include "vmm/exitcode.h"
#include "vmm/options.h"
#include "vmm/vm.h"

int main(int argc, char **argv)
{
	struct umbra_options opts;
	char err[256];

	switch (options_parse(argc, argv, &opts, err, sizeof(err))) {
	case OPTIONS_HELP: fputs(options_usage(), stdout); return UMBRA_EXIT_OK;
	case OPTIONS_VERSION: printf("umbra %s\n", UMBRA_VERSION); return UMBRA_EXIT_OK;
	case OPTIONS_ERROR: pr_err("%s", err); return UMBRA_EXIT_USAGE;
	case OPTIONS_RUN: break;
	}
	if (opts.verbose)
		log_level = opts.verbose > 1 ? LOG_DEBUG : LOG_INFO;
	return vmm_run(&opts);
}
