// SPDX-License-Identifier: MIT
/*
 * vmm/kvm_stats: the vCPU's binary statistics (Documentation/virt/kvm/api.rst,
 * KVM_GET_STATS_FD): a header, then num_desc descriptors of
 * sizeof(desc) + name_size bytes each, then the u64 data at data_offset +
 * desc->offset. Only single-valued cumulative counters are kept (no
 * histograms, no peaks).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "umbra/types.h"
#include "vmm/kvm_stats.h"
#include "vmm/stats.h"

void kvm_stats_read(int vcpu_fd, struct stats *st)
{
	struct kvm_stats_header h;
	size_t dsize;
	char *descs = NULL;
	int fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);

	st->nr_kvm = 0;
	if (fd < 0) {
		snprintf(st->kvm_note, sizeof(st->kvm_note), "KVM_GET_STATS_FD: %s",
			 strerror(errno));
		return;
	}
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.num_desc > 4096 ||
	    h.name_size > 4096)
		goto bad;
	dsize = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = calloc(h.num_desc, dsize);
	if (!descs ||
	    pread(fd, descs, h.num_desc * dsize, h.desc_offset) != (ssize_t)(h.num_desc * dsize))
		goto bad;
	for (u32 i = 0; i < h.num_desc && st->nr_kvm < STATS_MAX_KVM; i++) {
		const struct kvm_stats_desc *d = (const void *)(descs + i * dsize);
		struct stats_kvm *k = &st->kvm[st->nr_kvm];
		u64 v;

		if ((d->flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE || d->size != 1 ||
		    pread(fd, &v, sizeof(v), h.data_offset + d->offset) != (ssize_t)sizeof(v) || !v)
			continue;
		snprintf(k->name, sizeof(k->name), "%.*s", (int)h.name_size, d->name);
		k->value = v;
		st->nr_kvm++;
	}
	goto out;
bad:
	snprintf(st->kvm_note, sizeof(st->kvm_note), "the stats fd did not read as documented");
out:
	free(descs);
	close(fd);
}
