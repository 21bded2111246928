/* SPDX-License-Identifier: MIT */
/*
 * Debian's Linux guests for the integration tests (included after
 * run_umbra.h): images/linux/fetch.sh fetches or rebuilds them into
 * $UMBRA_CACHE or ~/.cache/umbra/linux (amd64), and ~/.cache/umbra/linux-i386
 * (i386, the 686-pae kernel); and the base64 that umbra.run= takes.
 */
#ifndef UMBRA_TESTS_LINUX_IMAGES_H
#define UMBRA_TESTS_LINUX_IMAGES_H

/*
 * Added to the kernel command line where KVM emulates the guest kernel's
 * every instruction (hw mode on a PVM host; the 32-bit kernel's
 * compatibility-mode code there): an initcall or the initramfs unpack
 * holds the CPU for tens of seconds and the soft-lockup watchdog reports
 * "BUG: soft lockup", which the scripts' dmesg checks would count; and the
 * crypto API's boot self-tests take 27 of a hw-mode boot's 41 minutes
 * (measured, session 36). That is the host's speed, not a fault.
 */
#define LINUX_EMULATED_CMDLINE " nowatchdog cryptomgr.notests"

/*
 * The cached images of `arch` (amd64 or i386), fetching them first if
 * needed; false (with why) if unavailable.
 */
static __attribute__((unused)) bool linux_images_for(const char *arch, char *bz, char *initrd,
						     size_t len, char *why, size_t wlen)
{
	const char *cache = getenv("UMBRA_CACHE"), *home = getenv("HOME");
	bool amd64 = !strcmp(arch, "amd64");
	char dir[512], cmd[1200], img[512];
	int st;

	if (cache && amd64)
		snprintf(dir, sizeof(dir), "%s", cache);
	else
		snprintf(dir, sizeof(dir), "%s/.cache/umbra/%s", home ? home : "/root",
			 amd64 ? "linux" : "linux-i386");
	snprintf(bz, len, "%s/bzImage", dir);
	snprintf(initrd, len, "%s/initramfs.cpio.gz", dir);
	/* fetch.sh is quick when everything is cached, and rebuilds what is stale. */
	image_path(img, sizeof(img), "linux/fetch.sh");
	snprintf(cmd, sizeof(cmd), "UMBRA_CACHE='%s' sh '%s' %s > /tmp/umbra-linux-fetch.log 2>&1",
		 dir, img, arch);
	st = system(cmd);
	if (st != 0 || access(bz, R_OK) || access(initrd, R_OK)) {
		char log[4096] = "";

		slurp("/tmp/umbra-linux-fetch.log", log, sizeof(log));
		snprintf(why, wlen, "images/linux/fetch.sh failed (status %d): %.300s", st, log);
		return false;
	}
	return true;
}

/* Debian's x86-64 cloud kernel and its initramfs. */
static __attribute__((unused)) bool linux_images(char *bz, char *initrd, size_t len, char *why,
						 size_t wlen)
{
	return linux_images_for("amd64", bz, initrd, len, why, wlen);
}

/* `in` in base64 (RFC 4648, padded), as the initramfs's umbra.run= takes a script. */
static __attribute__((unused)) void b64(const char *in, char *out, size_t outlen)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16 |
			     (i + 1 < n ? (unsigned char)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? (unsigned char)in[i + 2] : 0);

		assert_true(o + 5 < outlen);
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

#endif /* UMBRA_TESTS_LINUX_IMAGES_H */
