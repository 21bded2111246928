// SPDX-License-Identifier: MIT
/*
 * vmm/kvm_stats: the vCPU's binary statistics (Documentation/virt/kvm/api.rst,
 * KVM_GET_STATS_FD): a header, then num_desc descriptors of
 * sizeof(desc) + name_size bytes each, then the u64 data at data_offset +
 * desc->offset. Only single-valued cumulative counters are printed (no
 * histograms, no peaks).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "umbra/types.h"
#include "vmm/kvm_stats.h"

unsigned kvm_stats_print(int vcpu_fd, FILE *f)
{
	struct kvm_stats_header h;
	unsigned printed = 0;
	size_t dsize;
	char *descs = NULL;
	int fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);

	if (fd < 0) {
		fprintf(f, "  kvm stats          none (KVM_GET_STATS_FD: %s)\n", strerror(errno));
		return 0;
	}
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.num_desc > 4096 ||
	    h.name_size > 4096)
		goto out;
	dsize = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = calloc(h.num_desc, dsize);
	if (!descs ||
	    pread(fd, descs, h.num_desc * dsize, h.desc_offset) != (ssize_t)(h.num_desc * dsize))
		goto out;
	for (u32 i = 0; i < h.num_desc; i++) {
		const struct kvm_stats_desc *d = (const void *)(descs + i * dsize);
		u64 v;

		if ((d->flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE || d->size != 1 ||
		    pread(fd, &v, sizeof(v), h.data_offset + d->offset) != (ssize_t)sizeof(v) || !v)
			continue;
		fprintf(f, "  kvm %-18.*s %llu\n", (int)h.name_size, d->name,
			(unsigned long long)v);
		printed++;
	}
out:
	free(descs);
	close(fd);
	return printed;
}
