/* SPDX-License-Identifier: MIT */
/*
 * Debian's Linux guest for the integration tests (included after
 * run_umbra.h): images/linux/fetch.sh fetches or rebuilds it into
 * $UMBRA_CACHE or ~/.cache/umbra/linux.
 */
#ifndef UMBRA_TESTS_LINUX_IMAGES_H
#define UMBRA_TESTS_LINUX_IMAGES_H

/* The cached images, fetching them first if needed; false (with why) if unavailable. */
static __attribute__((unused)) bool linux_images(char *bz, char *initrd, size_t len, char *why,
						 size_t wlen)
{
	const char *cache = getenv("UMBRA_CACHE"), *home = getenv("HOME");
	char dir[512], cmd[1200], img[512];
	int st;

	if (cache)
		snprintf(dir, sizeof(dir), "%s", cache);
	else
		snprintf(dir, sizeof(dir), "%s/.cache/umbra/linux", home ? home : "/root");
	snprintf(bz, len, "%s/bzImage", dir);
	snprintf(initrd, len, "%s/initramfs.cpio.gz", dir);
	/* fetch.sh is quick when everything is cached, and rebuilds what is stale. */
	image_path(img, sizeof(img), "linux/fetch.sh");
	snprintf(cmd, sizeof(cmd), "UMBRA_CACHE='%s' sh '%s' > /tmp/umbra-linux-fetch.log 2>&1",
		 dir, img);
	st = system(cmd);
	if (st != 0 || access(bz, R_OK) || access(initrd, R_OK)) {
		char log[4096] = "";

		slurp("/tmp/umbra-linux-fetch.log", log, sizeof(log));
		snprintf(why, wlen, "images/linux/fetch.sh failed (status %d): %.300s", st, log);
		return false;
	}
	return true;
}

#endif /* UMBRA_TESTS_LINUX_IMAGES_H */
