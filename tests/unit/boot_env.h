/* SPDX-License-Identifier: MIT */
/*
 * The fixture shared by the boot loader unit tests, test_elf_loader.c,
 * test_multiboot_loader.c and test_load_bzimage.c (and included by those only).
 *
 * A struct env is one guest and one kernel image to boot into it:
 *   - mem:  a real struct guest_mem of RAM_SIZE (64 MiB) whose first
 *           PREFILL_SIZE (8 MiB) are pre-filled with FILL, so that "zeroed"
 *           and "left alone" can be told apart;
 *   - img:  the image under test (size bytes), owned by the fixture;
 *   - in:   the boot_load() input, normally pointing at img;
 *   - bs, err: what the last load() left.
 *
 * A test file's setup() calls env_new() and installs its default image with
 * env_set_image(); its teardown is env_teardown(). Everything is static
 * inline, so a file need not use every helper.
 */
#ifndef UMBRA_TESTS_UNIT_BOOT_ENV_H
#define UMBRA_TESTS_UNIT_BOOT_ENV_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot.h"
#include "vmm/memory.h"

#define RAM_SIZE     (64 * MiB)
#define PREFILL_SIZE (8 * MiB)
#define FILL	     0xaa

struct env {
	struct guest_mem mem;
	u8 *img;
	size_t size;
	struct boot_input in;
	struct boot_state bs;
	char err[256];
};

/* A fresh guest with no image yet and an empty command line; NULL on failure. */
static inline struct env *env_new(const char *image_name)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	if (guest_mem_init(&e->mem, RAM_SIZE)) {
		free(e);
		return NULL;
	}
	memset(e->mem.ram, FILL, PREFILL_SIZE);
	e->in.image_name = image_name;
	e->in.cmdline = "";
	return e;
}

static inline int env_teardown(void **state)
{
	struct env *e = *state;

	guest_mem_destroy(&e->mem);
	free(e->img);
	free(e);
	return 0;
}

/* Replace the image with `img` (malloc'ed; the fixture frees it). */
static inline void env_set_image(struct env *e, u8 *img, size_t size)
{
	free(e->img);
	e->img = img;
	e->size = size;
	e->in.image = img;
	e->in.image_size = size;
}

/* Boot from a buffer the test owns until env_restore_image(). */
static inline void env_use_image(struct env *e, const u8 *img, size_t size)
{
	e->in.image = img;
	e->in.image_size = size;
}

static inline void env_restore_image(struct env *e)
{
	env_use_image(e, e->img, e->size);
}

static inline void env_set_initrd(struct env *e, const u8 *rd, size_t size, const char *name)
{
	e->in.initrd = rd;
	e->in.initrd_size = size;
	e->in.initrd_name = name;
}

static inline void env_clear_initrd(struct env *e)
{
	e->in.initrd = NULL;
	e->in.initrd_size = 0;
}

static inline int load(struct env *e)
{
	e->err[0] = '\0';
	return boot_load(&e->mem, &e->in, &e->bs, e->err, sizeof(e->err));
}

/* Host pointer to guest bytes [a, a + len) of `mem`; they must be RAM. */
static inline void *guest_ptr(struct guest_mem *mem, u64 a, u64 len)
{
	void *p = gpa_to_hva(mem, gpa(a), len);

	assert_non_null(p);
	return p;
}

static inline u64 guest_u64(struct guest_mem *mem, u64 a)
{
	u64 v;

	memcpy(&v, guest_ptr(mem, a, 8), 8);
	return v;
}

static inline void *ram(struct env *e, u64 a, u64 len)
{
	return guest_ptr(&e->mem, a, len);
}

static inline u64 ram64(struct env *e, u64 a)
{
	return guest_u64(&e->mem, a);
}

/* load() must fail with -EINVAL and an error containing `msg`. */
static inline void expect_einval(struct env *e, const char *msg)
{
	int r = load(e);

	if (r != -EINVAL)
		fail_msg("expected -EINVAL ('%s'), got %d (err '%s')", msg, r, e->err);
	if (!strstr(e->err, msg))
		fail_msg("error '%s' does not contain '%s'", e->err, msg);
}

/* Every byte of guest [a, a + len) is `v`. */
static inline void assert_filled(struct env *e, u64 a, u64 len, u8 v)
{
	const u8 *p = ram(e, a, len);

	for (u64 i = 0; i < len; i++)
		if (p[i] != v)
			fail_msg("gpa 0x%llx: 0x%02x, expected 0x%02x", (unsigned long long)(a + i),
				 p[i], v);
}

/*
 * A second guest of 5 GiB, for what happens with RAM above 4 GiB; the test
 * calls guest_mem_destroy(&b->mem) when done.
 */
struct big_guest {
	struct guest_mem mem;
	struct boot_state bs;
	char err[256];
};

/* Load e's image (and command line, initrd) into a new 5 GiB guest `b`. */
static inline int load_big(struct env *e, struct big_guest *b)
{
	assert_int_equal(guest_mem_init(&b->mem, 5 * GiB), 0);
	return boot_load(&b->mem, &e->in, &b->bs, b->err, sizeof(b->err));
}

/* The start of an ELF file's e_ident: magic, `elf_class`, little-endian, current version. */
static inline void put_elf_ident(u8 *img, u8 elf_class)
{
	memcpy(img, ELFMAG, SELFMAG);
	img[EI_CLASS] = elf_class;
	img[EI_DATA] = ELFDATA2LSB;
	img[EI_VERSION] = EV_CURRENT;
}

#endif
