/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Addresses, prefixes, ranges: strict parsing, formatting, arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"

static void addr_parse__malformed__fails_quoting_input(void **state)
{
	static const char *const bad[] = {
		"", " ", "10.8.0.256", "10.8.0", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.02.3.4",
		"1..3.4", ".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4x", "a.b.c.d",
		"1.2.3.-4", "+1.2.3.4", "1.2.3.4/24", "4294967295", "0x0a.0.0.1", "::g",
		"1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "fd00::1 ", "fd00::1%eth0", "[fd00::1]",
		"12345::", "fd00:8::/64", "1.2.3.4-1.2.3.5", "1.2.3.4\n", "1.2.3.4;", "::1::",
		"gggg::", "1:2:3:4:5:6:7", "fd00::1.2.3.256", "10.8.0.1000", "1.2.3.4.", "-",
		"10.8.0.0.", "١.2.3.4",
	};
	struct vp_addr a;
	char err[VP_ERRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); ++i) {
		err[0] = '\0';
		if (vp_addr_parse(&a, bad[i], err))
			fail_msg("`%s' was accepted", bad[i]);
		assert_true(err[0] == '`');
		assert_non_null(strstr(err, "': "));
	}
}

static void addr_parse__valid__round_trips_canonically(void **state)
{
	static const char *const good[][2] = {
		{ "10.8.0.1", "10.8.0.1" }, { "0.0.0.0", "0.0.0.0" },
		{ "255.255.255.255", "255.255.255.255" }, { "::", "::" }, { "::1", "::1" },
		{ "FD00:0008:0000:0000:0000:0000:0001:0005", "fd00:8::1:5" },
		{ "fd00:8::1:5", "fd00:8::1:5" }, { "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" },
	};
	struct vp_addr a;
	char err[VP_ERRLEN], buf[VP_ADDR_STRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); ++i) {
		if (!vp_addr_parse(&a, good[i][0], err))
			fail_msg("%s", err);
		assert_string_equal(vp_addr_format(&a, buf), good[i][1]);
	}
}

static void prefix_parse__malformed__fails(void **state)
{
	static const char *const bad[] = {
		"10.8.0.0", "10.8.0.0/33", "10.8.0.0/", "10.8.0.0/-1", "10.8.0.0/+8", "10.8.0.0/08",
		"10.8.0.0/8a", "10.8.0.0/ 8", "10.8.0.1/16", "fd00::/129", "fd00::1/64",
		"10.8.0.0//16", "/16", "10.8.0.0/1000", "fd00::/64/64", "10.8.0.256/24",
		"10.8.0.0/16 ", "::g/64",
	};
	struct vp_prefix p;
	char err[VP_ERRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); ++i)
		if (vp_prefix_parse(&p, bad[i], err))
			fail_msg("`%s' was accepted", bad[i]);
	vp_prefix_parse(&p, "10.8.0.1/16", err);
	assert_string_equal(err, "`10.8.0.1/16': host bits are set (did you mean 10.8.0.0/16?)");
	vp_prefix_parse(&p, "10.8.0.0/33", err);
	assert_string_equal(err, "`10.8.0.0/33': an IPv4 prefix length is at most 32");
}

static void range_parse__forms_and_errors(void **state)
{
	static const char *const bad[] = {
		"10.8.0.9-10.8.0.1", "10.8.0.1-fd00::1", "10.8.0.1-", "-10.8.0.1", "10.8.0.1--10.8.0.2",
		"10.8.0.1-10.8.0.2-10.8.0.3", "", "10.8.0.0/33",
	};
	struct vp_range r;
	char err[VP_ERRLEN], buf[VP_RANGE_STRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); ++i)
		if (vp_range_parse(&r, bad[i], err))
			fail_msg("`%s' was accepted", bad[i]);
	assert_true(vp_range_parse(&r, "10.8.100.0/24", err));
	assert_string_equal(vp_range_format(&r, buf), "10.8.100.0-10.8.100.255");
	assert_true(vp_range_parse(&r, "10.8.0.2-10.8.0.20", err));
	assert_string_equal(vp_range_format(&r, buf), "10.8.0.2-10.8.0.20");
	assert_true(vp_range_parse(&r, "fd00:8::1", err));
	assert_string_equal(vp_range_format(&r, buf), "fd00:8::1");
}

static void addr_add__carries_and_wraps(void **state)
{
	char err[VP_ERRLEN], buf[VP_ADDR_STRLEN];
	struct vp_addr a, b;

	(void)state;
	vp_addr_parse(&a, "255.255.255.255", err);
	b = vp_addr_add(&a, 1, 0);
	assert_string_equal(vp_addr_format(&b, buf), "0.0.0.0");
	vp_addr_parse(&a, "fd00::ffff:ffff:ffff:ffff", err);
	b = vp_addr_add(&a, 1, 0);
	assert_string_equal(vp_addr_format(&b, buf), "fd00:0:0:1::");
	vp_addr_parse(&a, "fd00:9::", err);
	b = vp_addr_add(&a, 0x77, 64);
	assert_string_equal(vp_addr_format(&b, buf), "fd00:9:0:77::");
	b = vp_addr_add(&a, 1, 127);
	assert_string_equal(vp_addr_format(&b, buf), "7d00:9::");
	vp_addr_parse(&a, "10.9.0.0", err);
	b = vp_addr_add(&a, 77, 8);
	assert_string_equal(vp_addr_format(&b, buf), "10.9.77.0");
}

static void addr_offset__shifts_and_saturates(void **state)
{
	char err[VP_ERRLEN];
	struct vp_addr base, a;

	(void)state;
	vp_addr_parse(&base, "fd00:9::", err);
	vp_addr_parse(&a, "fd00:9:0:77::5", err);
	assert_int_equal(vp_addr_offset(&a, &base, 64), 0x77);
	assert_int_equal(vp_addr_offset(&base, &a, 0), UINT64_MAX);
	vp_addr_parse(&a, "fd01::", err);
	assert_int_equal(vp_addr_offset(&a, &base, 0), UINT64_MAX);
	assert_int_equal(vp_addr_offset(&a, &base, 100), 0xfff);
	vp_addr_parse(&base, "10.9.0.0", err);
	vp_addr_parse(&a, "10.9.77.200", err);
	assert_int_equal(vp_addr_offset(&a, &base, 8), 77);
}

static void prefix__range_contains_overlaps_netmask(void **state)
{
	char err[VP_ERRLEN], buf[VP_RANGE_STRLEN];
	struct vp_prefix p, q;
	struct vp_range r, s;
	struct vp_addr a;

	(void)state;
	vp_prefix_parse(&p, "10.8.0.0/16", err);
	r = vp_prefix_range(&p);
	assert_string_equal(vp_range_format(&r, buf), "10.8.0.0-10.8.255.255");
	vp_addr_parse(&a, "10.8.200.1", err);
	assert_true(vp_prefix_contains(&p, &a));
	vp_addr_parse(&a, "10.9.0.0", err);
	assert_false(vp_prefix_contains(&p, &a));
	vp_prefix_parse(&q, "0.0.0.0/0", err);
	assert_true(vp_prefix_contains(&q, &a));
	vp_prefix_parse(&q, "fd00::/64", err);
	assert_false(vp_prefix_contains(&q, &a));
	s = vp_prefix_range(&q);
	assert_false(vp_range_overlaps(&r, &s));
	vp_range_parse(&s, "10.8.255.255-10.9.0.0", err);
	assert_true(vp_range_overlaps(&r, &s));
	assert_false(vp_range_within(&s, &r));
	assert_int_equal(vp_netmask4(24), 0xffffff00);
	assert_int_equal(vp_netmask4(0), 0);
	assert_int_equal(vp_netmask4(32), 0xffffffff);
	assert_int_equal(vp_netmask4_len(0xffff0000), 16);
	assert_int_equal(vp_netmask4_len(0xff00ff00), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(addr_parse__malformed__fails_quoting_input),
		cmocka_unit_test(addr_parse__valid__round_trips_canonically),
		cmocka_unit_test(prefix_parse__malformed__fails),
		cmocka_unit_test(range_parse__forms_and_errors),
		cmocka_unit_test(addr_add__carries_and_wraps),
		cmocka_unit_test(addr_offset__shifts_and_saturates),
		cmocka_unit_test(prefix__range_contains_overlaps_netmask),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
