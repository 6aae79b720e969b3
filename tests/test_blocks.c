/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The block allocator: addresses, /30s and routed subnets from a range. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "blocks.h"

static struct vp_range range(const char *text)
{
	struct vp_range r;
	char err[VP_ERRLEN];

	assert_true(vp_range_parse(&r, text, err));
	return r;
}

static struct vp_addr addr(const char *text)
{
	struct vp_addr a;
	char err[VP_ERRLEN];

	assert_true(vp_addr_parse(&a, text, err));
	return a;
}

static const char *next(struct vp_blocks *b)
{
	static char buf[VP_PREFIX_STRLEN];
	struct vp_prefix p;

	if (vp_blocks_alloc(b, &p))
		return "ENOSPC";
	return vp_prefix_format(&p, buf);
}

static void blocks__addresses__lowest_first_excludes_never_and_enospc(void **state)
{
	struct vp_blocks *b;
	struct vp_range ex = range("10.8.0.3-10.8.0.4");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &(struct vp_range){ addr("10.8.0.1"), addr("10.8.0.6") }, 32), 0);
	assert_int_equal(vp_blocks_exclude(b, &ex), 0);
	assert_int_equal(vp_blocks_size(b), 4);
	assert_string_equal(next(b), "10.8.0.1/32");
	assert_string_equal(next(b), "10.8.0.2/32");
	assert_string_equal(next(b), "10.8.0.5/32");
	assert_string_equal(next(b), "10.8.0.6/32");
	assert_string_equal(next(b), "ENOSPC");
	assert_int_equal(vp_blocks_used(b), 4);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0, 0x0a080002, VP_INET }), 0);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0, 0x0a080002, VP_INET }), -ENOENT);
	assert_int_equal(vp_blocks_release(b, &(struct vp_addr){ 0, 0x0a080003, VP_INET }), -EDOM);
	assert_int_equal(vp_blocks_take(b, &(struct vp_addr){ 0, 0x0a080004, VP_INET }), -EDOM);
	assert_int_equal(vp_blocks_take(b, &(struct vp_addr){ 0, 0x0a080009, VP_INET }), -EDOM);
	assert_int_equal(vp_blocks_take(b, &(struct vp_addr){ 0, 0x0a080005, VP_INET }), -EEXIST);
	assert_int_equal(vp_blocks_take(b, &(struct vp_addr){ 0, 0x0a080002, VP_INET }), 0);
	assert_int_equal(vp_blocks_release_last(b), 0);
	assert_int_equal(vp_blocks_release_last(b), -ENOENT);
	assert_string_equal(next(b), "10.8.0.2/32");
	vp_blocks_free(b);
}

static void blocks__net30__whole_aligned_slash30s_inside_range(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("10.8.0.1-10.8.0.254");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 30), 0);
	assert_int_equal(vp_blocks_size(b), 62);
	assert_string_equal(next(b), "10.8.0.4/30");
	assert_true(vp_blocks_owns(b, &(struct vp_addr){ 0, 0x0a0800fa, VP_INET }));
	assert_false(vp_blocks_owns(b, &(struct vp_addr){ 0, 0x0a0800fd, VP_INET }));
	vp_blocks_free(b);
}

static void blocks__subnets__slash24_of_slash16_and_slash64_of_slash48(void **state)
{
	struct vp_blocks *b4, *b6;
	struct vp_range r4 = range("10.9.0.0/16"), r6 = range("fd00:9::/48");
	struct vp_range ex = range("10.9.0.128-10.9.1.5");

	(void)state;
	assert_int_equal(vp_blocks_new(&b4, &r4, 24), 0);
	assert_int_equal(vp_blocks_exclude(b4, &ex), 0);
	assert_int_equal(vp_blocks_size(b4), 254);
	assert_string_equal(next(b4), "10.9.2.0/24");
	assert_int_equal(vp_blocks_new(&b6, &r6, 64), 0);
	assert_int_equal(vp_blocks_size(b6), 65536);
	assert_string_equal(next(b6), "fd00:9::/64");
	assert_string_equal(next(b6), "fd00:9:0:1::/64");
	assert_int_equal(vp_blocks_take(b6, &(struct vp_addr){ 0xfd00000900007700ULL, 0, VP_INET6 }), 0);
	assert_true(vp_blocks_is_used(b6, &(struct vp_addr){ 0xfd00000900007700ULL, 5, VP_INET6 }));
	vp_blocks_free(b4);
	vp_blocks_free(b6);
}

static void blocks__bad_geometry__errors(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("10.9.0.1-10.9.0.200"), v6 = range("::/0");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 24), -ENOSPC);
	assert_int_equal(vp_blocks_new(&b, &r, 33), -EINVAL);
	assert_int_equal(vp_blocks_new(&b, &v6, 128), -E2BIG);
	assert_null(b);
}

static void blocks__ipv6_slash64__huge_but_cheap(void **state)
{
	struct vp_blocks *b;
	struct vp_range r = range("fd00:8::1-fd00:8::ffff:ffff:ffff:ffff");

	(void)state;
	assert_int_equal(vp_blocks_new(&b, &r, 128), 0);
	assert_int_equal(vp_blocks_size(b), UINT64_MAX);
	for (int i = 0; i < 100000; ++i)
		assert_string_not_equal(next(b), "ENOSPC");
	assert_string_equal(next(b), "fd00:8::1:86a1/128");
	assert_true(vp_blocks_memory(b) < 1 << 20);
	vp_blocks_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(blocks__addresses__lowest_first_excludes_never_and_enospc),
		cmocka_unit_test(blocks__net30__whole_aligned_slash30s_inside_range),
		cmocka_unit_test(blocks__subnets__slash24_of_slash16_and_slash64_of_slash48),
		cmocka_unit_test(blocks__bad_geometry__errors),
		cmocka_unit_test(blocks__ipv6_slash64__huge_but_cheap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
