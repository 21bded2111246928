// SPDX-License-Identifier: MIT
/*
 * The I/O bus (devices/bus.h).
 *
 * 1. Keep ranges sorted and disjoint so a lookup is a binary search.
 * 2. Dispatch an access to the owning device with a base-relative offset.
 * 3. Report unclaimed accesses to the caller (which counts and traces them)
 *    and read them as all-ones, like an ISA bus with nothing driving it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"

/* Item 1. */
int bus_register(struct bus *bus, u64 base, u64 len, struct device *dev)
{
	size_t i;

	if (len == 0 || base + len < base)
		return -EINVAL;
	for (i = 0; i < bus->nr; i++) {
		const struct bus_range *r = &bus->ranges[i];

		if (base < r->base + r->len && r->base < base + len)
			return -EEXIST;
		if (r->base > base)
			break;
	}
	if (bus->nr == bus->cap) {
		size_t cap = bus->cap ? bus->cap * 2 : 8;
		struct bus_range *n = realloc(bus->ranges, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		bus->ranges = n;
		bus->cap = cap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nr - i) * sizeof(*bus->ranges));
	bus->ranges[i] = (struct bus_range){ .base = base, .len = len, .dev = dev };
	bus->nr++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *bus, u64 addr)
{
	size_t lo = 0, hi = bus->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* Items 2 and 3. */
bool bus_access(const struct bus *bus, u64 addr, void *data, unsigned len, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr);

	if (!r) {
		if (!is_write)
			memset(data, 0xff, len);
		return false;
	}
	if (is_write) {
		if (r->dev->ops->write)
			r->dev->ops->write(r->dev, addr - r->base, data, len);
	} else {
		if (r->dev->ops->read)
			r->dev->ops->read(r->dev, addr - r->base, data, len);
		else
			memset(data, 0xff, len);
	}
	return true;
}

void bus_reset(struct bus *bus)
{
	for (size_t i = 0; i < bus->nr; i++)
		if (bus->ranges[i].dev->ops->reset)
			bus->ranges[i].dev->ops->reset(bus->ranges[i].dev);
}

void bus_destroy(struct bus *bus)
{
	/* A device may be registered at several ranges: destroy it once. */
	for (size_t i = 0; i < bus->nr; i++) {
		struct device *dev = bus->ranges[i].dev;
		bool seen = false;

		for (size_t j = 0; j < i; j++)
			seen |= bus->ranges[j].dev == dev;
		if (!seen && dev->ops->destroy)
			dev->ops->destroy(dev);
	}
	free(bus->ranges);
	memset(bus, 0, sizeof(*bus));
}
