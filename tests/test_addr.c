/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Addresses, prefixes, ranges: strict parsing, formatting, arithmetic. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"

#define N(a) (sizeof(a) / sizeof(*(a)))

static bool has_unprintable(const char *s)
{
	for (; *s; ++s)
		if (*s < ' ' || *s >= 0x7f)
			return true;
	return false;
}

/* The message starts by quoting the input: "`INPUT': why", why not empty. */
static void assert_quotes(const char *input, const char *err)
{
	char head[VP_ERRLEN];

	snprintf(head, sizeof(head), "`%s': ", input);
	if (strncmp(err, head, strlen(head)) || strlen(err) <= strlen(head))
		fail_msg("`%s' gave the message \"%s\"", input, err);
}

static struct vp_addr A(const char *text)
{
	struct vp_addr a;
	char err[VP_ERRLEN];

	if (!vp_addr_parse(&a, text, err))
		fail_msg("%s", err);
	return a;
}

static struct vp_prefix P(const char *text)
{
	struct vp_prefix p;
	char err[VP_ERRLEN];

	if (!vp_prefix_parse(&p, text, err))
		fail_msg("%s", err);
	return p;
}

/* A pointer to a parsed address, for calls that take one. */
#define AP(text) ((const struct vp_addr[]){ A(text) })

static const char *fmt(struct vp_addr a)
{
	static char buf[VP_ADDR_STRLEN];

	return vp_addr_format(&a, buf);
}

static void addr_parse__malformed__fails_quoting_input(void **state)
{
	static const char *const bad[] = {
		"", " ", "10.8.0.256", "10.8.0", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.02.3.4",
		"1.2.3.00", "1..3.4", ".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4x",
		"a.b.c.d", "1.2.3.-4", "+1.2.3.4", "1.2.3.4/24", "4294967295", "0x0a.0.0.1",
		"10.8.0.99999999999999999999", "::g", "1:2:3:4:5:6:7:8:9", "1::2::3", ":::",
		"fd00::1 ", "fd00::1%eth0", "[fd00::1]", "12345::", "fd00:8::/64",
		"1.2.3.4-1.2.3.5", "1.2.3.4\n", "1.2.3.4;", "::1::", "gggg::", "1:2:3:4:5:6:7",
		"fd00::1.2.3.256", "10.8.0.1000", "1.2.3.4.", "-", "10.8.0.0.", "\xd9\xa1.2.3.4",
		":1::", "1::2:", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "fd00::1.2.3",
		"fd00::1.2.3.4:5", "::ffff:01.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1:", ":",
		"fd00: :1", "fd00::-1", "0x1::", "1.2.3.4\t",
	};
	struct vp_addr a;
	char err[VP_ERRLEN];

	(void)state;
	assert_true(N(bad) >= 40);
	for (size_t i = 0; i < N(bad); ++i) {
		err[0] = '\0';
		if (vp_addr_parse(&a, bad[i], err))
			fail_msg("`%s' was accepted", bad[i]);
		if (has_unprintable(bad[i]))
			assert_true(err[0] == '`' && strlen(err) > 4);	/* shown escaped */
		else
			assert_quotes(bad[i], err);
	}
}

static void addr_parse__octet_above_255__fails_quoting_input(void **state)
{
	struct vp_addr a;
	char err[VP_ERRLEN];

	(void)state;
	assert_false(vp_addr_parse(&a, "10.8.0.256", err));
	assert_string_equal(err, "`10.8.0.256': octet 256 is above 255");
}

static void addr_parse__leading_zero__fails_naming_octet(void **state)
{
	struct vp_addr a;
	char err[VP_ERRLEN];

	(void)state;
	assert_false(vp_addr_parse(&a, "10.08.0.1", err));
	assert_string_equal(err, "`10.08.0.1': octet `08' has a leading zero");
}

static void addr_parse__ipv6_errors__say_what_is_wrong(void **state)
{
	static const char *const cases[][2] = {
		{ "::g", "`::g': `g' is not a hex digit" },
		{ "1:2:3:4:5:6:7:8:9", "`1:2:3:4:5:6:7:8:9': more than eight groups" },
		{ "1::2::3", "`1::2::3': `::' appears more than once" },
		{ "12345::", "`12345::': group `12345' has more than four hex digits" },
		{ "1:2:3", "`1:2:3': 3 groups and no `::', an IPv6 address has eight" },
	};
	struct vp_addr a;
	char err[VP_ERRLEN];

	(void)state;
	for (size_t i = 0; i < N(cases); ++i) {
		assert_false(vp_addr_parse(&a, cases[i][0], err));
		assert_string_equal(err, cases[i][1]);
	}
}

static void addr_parse__control_bytes__are_escaped_in_message(void **state)
{
	struct vp_addr a;
	char err[VP_ERRLEN];

	(void)state;
	assert_false(vp_addr_parse(&a, "1.2.3.4\n", err));
	assert_null(strchr(err, '\n'));
	assert_non_null(strstr(err, "`1.2.3.4\\x0a'"));
}

static void addr_parse__valid__round_trips_canonically(void **state)
{
	static const char *const good[][2] = {
		{ "10.8.0.1", "10.8.0.1" }, { "0.0.0.0", "0.0.0.0" },
		{ "255.255.255.255", "255.255.255.255" }, { "::", "::" }, { "::1", "::1" },
		{ "FD00:0008:0000:0000:0000:0000:0001:0005", "fd00:8::1:5" },
		{ "fd00:8::1:5", "fd00:8::1:5" }, { "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" },
		{ "2001:db8::0:1", "2001:db8::1" }, { "2001:0:0:1:0:0:0:1", "2001:0:0:1::1" },
		{ "1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0" }, { "::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
		{ "::ffff:10.8.0.1", "::ffff:10.8.0.1" },
		{ "1:2:3:4:5:6:10.8.0.1", "1:2:3:4:5:6:a08:1" },
		{ "fd00:0:0:0:0:0:0:0", "fd00::" },
	};
	struct vp_addr a, b;
	char err[VP_ERRLEN], buf[VP_ADDR_STRLEN];
	uint8_t bytes[16];

	(void)state;
	for (size_t i = 0; i < N(good); ++i) {
		if (!vp_addr_parse(&a, good[i][0], err))
			fail_msg("%s", err);
		assert_string_equal(vp_addr_format(&a, buf), good[i][1]);
		assert_true(vp_addr_parse(&b, buf, err));
		assert_true(vp_addr_eq(&a, &b));
		vp_addr_to_bytes(&a, bytes);
		b = vp_addr_from_bytes(a.family, bytes);
		assert_true(vp_addr_eq(&a, &b));
	}
	a = A("10.8.0.1");
	assert_int_equal(a.family, VP_INET);
	assert_int_equal(vp_addr_to_v4(&a), 0x0a080001);
	assert_true(a.hi == 0 && a.lo == 0x0a080001);
	b = vp_addr_v4(0x0a080001);
	assert_true(vp_addr_eq(&a, &b));
	a = A("fd00::1:5");
	assert_true(a.family == VP_INET6 && a.hi == 0xfd00000000000000ULL && a.lo == 0x10005);
	assert_int_equal(vp_family_bits(VP_INET), 32);
	assert_int_equal(vp_family_bits(VP_INET6), 128);
}

static void prefix_parse__malformed__fails_quoting_input(void **state)
{
	static const char *const bad[] = {
		"10.8.0.0", "10.8.0.0/33", "10.8.0.0/", "10.8.0.0/-1", "10.8.0.0/+8", "10.8.0.0/08",
		"10.8.0.0/8a", "10.8.0.0/ 8", "10.8.0.1/16", "fd00::/129", "fd00::1/64",
		"10.8.0.0//16", "/16", "10.8.0.0/1000", "fd00::/64/64", "10.8.0.256/24",
		"10.8.0.0/16 ", "::g/64", "", "/", "10.8.0.0/0x10", "10.8.0.0/16.0", "10.8.0.0 /16",
		" 10.8.0.0/16", "10.8.0.0/000", "10.8.0.0/00000000000000000024", "10.8.0.0/4294967320",
		"10.8.1.0/23", "10.8.0.0/ ", "0.0.0.1/0", "fd00::/200", "fd00:8::/16",
		"fd00::/0128", "10.8.0/16", "1::2::3/64", "10.8.0.0/16/", "10.8.0.0/1e1",
		"10.8.0.0-10.8.0.255", "10.8.0.0/16,", "10.8.0.0\\16", "fd00::/+64",
		"10.8.0.0/99999999999999999999",
	};
	struct vp_prefix p;
	char err[VP_ERRLEN];

	(void)state;
	assert_true(N(bad) >= 40);
	for (size_t i = 0; i < N(bad); ++i) {
		err[0] = '\0';
		if (vp_prefix_parse(&p, bad[i], err))
			fail_msg("`%s' was accepted", bad[i]);
		assert_quotes(bad[i], err);
	}
}

static void prefix_parse__host_bits_set__suggests_the_network(void **state)
{
	struct vp_prefix p;
	char err[VP_ERRLEN];

	(void)state;
	assert_false(vp_prefix_parse(&p, "10.8.0.1/16", err));
	assert_string_equal(err, "`10.8.0.1/16': host bits are set (did you mean 10.8.0.0/16?)");
	assert_false(vp_prefix_parse(&p, "fd00:8::1/64", err));
	assert_string_equal(err, "`fd00:8::1/64': host bits are set (did you mean fd00:8::/64?)");
}

static void prefix_parse__bad_length__says_why(void **state)
{
	struct vp_prefix p;
	char err[VP_ERRLEN];

	(void)state;
	assert_false(vp_prefix_parse(&p, "10.8.0.0/33", err));
	assert_string_equal(err, "`10.8.0.0/33': prefix length 33 is above 32 for IPv4");
	assert_false(vp_prefix_parse(&p, "10.8.0.0/+8", err));
	assert_string_equal(err, "`10.8.0.0/+8': prefix length `+8' is not a decimal number");
	assert_false(vp_prefix_parse(&p, "10.8.0.0/08", err));
	assert_string_equal(err, "`10.8.0.0/08': prefix length `08' has a leading zero");
}

static void prefix_parse__valid__round_trips(void **state)
{
	static const char *const good[] = {
		"10.8.0.0/16", "0.0.0.0/0", "10.8.0.1/32", "10.8.0.4/30", "::/0", "fd00:8::/64",
		"fd00:9::/48", "fd00::1/128", "8000::/1", "128.0.0.0/1",
	};
	char buf[VP_PREFIX_STRLEN];
	struct vp_prefix p;

	(void)state;
	for (size_t i = 0; i < N(good); ++i) {
		p = P(good[i]);
		assert_string_equal(vp_prefix_format(&p, buf), good[i]);
	}
}

static void range_parse__malformed__fails_quoting_input(void **state)
{
	static const char *const bad[] = {
		"10.8.0.9-10.8.0.1", "10.8.0.1-fd00::1", "fd00::1-10.8.0.1", "10.8.0.1-", "-10.8.0.1",
		"10.8.0.1--10.8.0.2", "10.8.0.1-10.8.0.2-10.8.0.3", "", "10.8.0.0/33", "-",
		"10.8.0.1 -10.8.0.2", "10.8.0.1- 10.8.0.2", "10.8.0.1-10.8.0.2 ", "10.8.0.1/24",
		"10.8.0.0/24-10.8.1.0", "10.8.0.1-10.8.1.0/24", "fd00::2-fd00::1", "fd00::-",
		"10.8.0.256-10.8.1.0", "10.8.0.1-10.8.0.256", "01.8.0.1-10.8.0.2", "::g-::1",
		"1::2::3-1::4", "10.8.0.1..10.8.0.2", "10.8.0.1 10.8.0.2", "10.8.0.1,10.8.0.2",
		"10.8.0.1–10.8.0.2", "10.8.0.1_10.8.0.2", "10.8.0", "10.8.0.1-10.8",
		"fd00::1-fd00::g", "fd00::/129", "fd00::1/64", "10.8.0.0/+24", "10.8.0.0/",
		"255.255.255.255-0.0.0.0", "ffff::-::", "10.8.0.1-10.8.0.1-", "x", " ",
		"10.8.0.1-::ffff:10.8.0.2", "10.8.0.0/24 ",
	};
	struct vp_range r;
	char err[VP_ERRLEN];

	(void)state;
	assert_true(N(bad) >= 40);
	for (size_t i = 0; i < N(bad); ++i) {
		err[0] = '\0';
		if (vp_range_parse(&r, bad[i], err))
			fail_msg("`%s' was accepted", bad[i]);
		if (has_unprintable(bad[i]))
			assert_true(err[0] == '`' && strlen(err) > 4);
		else
			assert_quotes(bad[i], err);
	}
}

static void range_parse__reversed_or_mixed__says_why(void **state)
{
	struct vp_range r;
	char err[VP_ERRLEN];

	(void)state;
	assert_false(vp_range_parse(&r, "10.8.0.9-10.8.0.1", err));
	assert_string_equal(err, "`10.8.0.9-10.8.0.1': the range ends before it starts");
	assert_false(vp_range_parse(&r, "10.8.0.1-fd00::1", err));
	assert_string_equal(err, "`10.8.0.1-fd00::1': a range cannot mix IPv4 and IPv6");
}

static void range_parse__three_forms__format_back(void **state)
{
	static const char *const good[][2] = {
		{ "10.8.100.0/24", "10.8.100.0-10.8.100.255" },
		{ "10.8.0.2-10.8.0.20", "10.8.0.2-10.8.0.20" }, { "fd00:8::1", "fd00:8::1" },
		{ "10.8.0.5-10.8.0.5", "10.8.0.5" }, { "10.8.0.5/32", "10.8.0.5" },
		{ "fd00::/127", "fd00::-fd00::1" }, { "0.0.0.0/0", "0.0.0.0-255.255.255.255" },
		{ "::/0", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	};
	struct vp_range r;
	char err[VP_ERRLEN], buf[VP_RANGE_STRLEN];

	(void)state;
	for (size_t i = 0; i < N(good); ++i) {
		if (!vp_range_parse(&r, good[i][0], err))
			fail_msg("%s", err);
		assert_string_equal(vp_range_format(&r, buf), good[i][1]);
	}
}

static void addr_add__wraps_within_family_and_carries_into_hi(void **state)
{
	struct vp_addr a;

	(void)state;
	a = A("255.255.255.255");
	assert_string_equal(fmt(vp_addr_add(&a, 1, 0)), "0.0.0.0");
	assert_string_equal(fmt(vp_addr_add(&a, 1, 40)), "255.255.255.255");
	a = A("10.9.0.0");
	assert_string_equal(fmt(vp_addr_add(&a, 77, 8)), "10.9.77.0");
	assert_string_equal(fmt(vp_addr_add(&a, 3, 30)), "202.9.0.0");
	a = A("fd00::ffff:ffff:ffff:ffff");
	assert_string_equal(fmt(vp_addr_add(&a, 1, 0)), "fd00:0:0:1::");
	a = A("fd00::8000:0:0:0");
	assert_string_equal(fmt(vp_addr_add(&a, 1, 63)), "fd00:0:0:1::");
	assert_string_equal(fmt(vp_addr_add(&a, 3, 63)), "fd00:0:0:2::");
	a = A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_string_equal(fmt(vp_addr_add(&a, 1, 0)), "::");
	assert_string_equal(fmt(vp_addr_add(&a, 2, 64)), "::1:ffff:ffff:ffff:ffff");
}

static void addr_add__shift_64_to_127__moves_into_hi(void **state)
{
	struct vp_addr a = A("fd00:9::");

	(void)state;
	assert_string_equal(fmt(vp_addr_add(&a, 0x77, 64)), "fd00:9:0:77::");
	assert_string_equal(fmt(vp_addr_add(&a, 1, 80)), "fd00:9:1::");
	assert_string_equal(fmt(vp_addr_add(&a, 1, 127)), "7d00:9::");
	assert_string_equal(fmt(vp_addr_add(&a, 1, 128)), "fd00:9::");
	assert_string_equal(fmt(vp_addr_add(&a, UINT64_MAX, 64)), "fd00:8:ffff:ffff::");
	assert_string_equal(fmt(vp_addr_add(&a, UINT64_MAX, 32)), "fd00:9:ffff:ffff:ffff:ffff::");
}

static void addr_offset__shifts_and_saturates(void **state)
{
	struct vp_addr base = A("fd00:9::"), a;

	(void)state;
	a = A("fd00:9:0:77::5");
	assert_int_equal(vp_addr_offset(&a, &base, 64), 0x77);
	assert_int_equal(vp_addr_offset(&a, &base, 127), 0);
	assert_int_equal(vp_addr_offset(&base, &a, 0), UINT64_MAX);
	a = A("fd01::");
	assert_int_equal(vp_addr_offset(&a, &base, 0), UINT64_MAX);
	assert_int_equal(vp_addr_offset(&a, &base, 100), 0xfff);
	assert_int_equal(vp_addr_offset(&a, &base, 64), 0xfff700000000ULL);
	a = A("fd00:9::1:0:0:0");
	assert_int_equal(vp_addr_offset(&a, &base, 0), 0x1000000000000ULL);
	a = A("fd00:9:0:1::");	/* borrow from hi: (hi + 1, 0) - (hi, 0) */
	assert_int_equal(vp_addr_offset(&a, AP("fd00:9::ffff:ffff:ffff:ffff"), 0), 1);
	base = A("10.9.0.0");
	a = A("10.9.77.200");
	assert_int_equal(vp_addr_offset(&a, &base, 8), 77);
	assert_int_equal(vp_addr_offset(&a, &base, 0), 77 * 256 + 200);
	a = A("fd00::");
	assert_int_equal(vp_addr_offset(&a, &base, 0), UINT64_MAX);	/* other family */
}

static void addr_cmp__orders_family_then_number(void **state)
{
	struct vp_addr a = A("255.255.255.255"), b = A("::"), c = A("::1");

	(void)state;
	assert_true(vp_addr_cmp(&a, &b) < 0);
	assert_true(vp_addr_cmp(&b, &c) < 0);
	assert_true(vp_addr_cmp(&c, &b) > 0);
	assert_int_equal(vp_addr_cmp(&c, &c), 0);
	b = A("1::");
	assert_true(vp_addr_cmp(&c, &b) < 0);	/* hi decides before lo */
	assert_false(vp_addr_eq(&b, &c));
}

static void prefix__range_contains_overlaps_within(void **state)
{
	char buf[VP_RANGE_STRLEN], err[VP_ERRLEN];
	struct vp_prefix p = P("10.8.0.0/16"), q;
	struct vp_range r, s;

	(void)state;
	r = vp_prefix_range(&p);
	assert_string_equal(vp_range_format(&r, buf), "10.8.0.0-10.8.255.255");
	assert_true(vp_prefix_contains(&p, AP("10.8.200.1")));
	assert_false(vp_prefix_contains(&p, AP("10.9.0.0")));
	assert_false(vp_prefix_contains(&p, AP("::a08:1")));
	q = P("0.0.0.0/0");
	assert_true(vp_prefix_contains(&q, AP("10.9.0.0")));
	q = P("fd00::/64");
	assert_false(vp_prefix_contains(&q, AP("10.9.0.0")));
	assert_true(vp_prefix_contains(&q, AP("fd00::ffff:ffff:ffff:ffff")));
	assert_false(vp_prefix_contains(&q, AP("fd00:0:0:1::")));
	s = vp_prefix_range(&q);
	assert_string_equal(vp_range_format(&s, buf), "fd00::-fd00::ffff:ffff:ffff:ffff");
	assert_false(vp_range_overlaps(&r, &s));
	vp_range_parse(&s, "10.8.255.255-10.9.0.0", err);
	assert_true(vp_range_overlaps(&r, &s));
	assert_true(vp_range_overlaps(&s, &r));
	assert_false(vp_range_within(&s, &r));
	assert_true(vp_range_contains(&s, AP("10.9.0.0")));
	assert_false(vp_range_contains(&s, AP("10.9.0.1")));
	vp_range_parse(&s, "10.8.1.0-10.8.1.255", err);
	assert_true(vp_range_within(&s, &r));
	vp_range_parse(&s, "10.9.0.0-10.9.0.1", err);
	assert_false(vp_range_overlaps(&r, &s));
	q = vp_prefix_of(AP("fd00:9:77::5"), 32);
	assert_string_equal(vp_prefix_format(&q, buf), "fd00:9::/32");
	q = vp_prefix_of(AP("10.8.77.5"), 0);
	assert_string_equal(vp_prefix_format(&q, buf), "0.0.0.0/0");
	q = vp_prefix_of(AP("fd00:9:77::5"), 127);
	assert_string_equal(vp_prefix_format(&q, buf), "fd00:9:77::4/127");
}

static void netmask4__lengths_and_masks(void **state)
{
	(void)state;
	assert_int_equal(vp_netmask4(24), 0xffffff00);
	assert_int_equal(vp_netmask4(0), 0);
	assert_int_equal(vp_netmask4(1), 0x80000000);
	assert_int_equal(vp_netmask4(32), 0xffffffff);
	for (unsigned len = 0; len <= 32; ++len)
		assert_int_equal(vp_netmask4_len(vp_netmask4(len)), (int)len);
	assert_int_equal(vp_netmask4_len(0xff00ff00), -1);
	assert_int_equal(vp_netmask4_len(0x00ffffff), -1);
	assert_int_equal(vp_netmask4_len(0xfffffffe), 31);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(addr_parse__malformed__fails_quoting_input),
		cmocka_unit_test(addr_parse__octet_above_255__fails_quoting_input),
		cmocka_unit_test(addr_parse__leading_zero__fails_naming_octet),
		cmocka_unit_test(addr_parse__ipv6_errors__say_what_is_wrong),
		cmocka_unit_test(addr_parse__control_bytes__are_escaped_in_message),
		cmocka_unit_test(addr_parse__valid__round_trips_canonically),
		cmocka_unit_test(prefix_parse__malformed__fails_quoting_input),
		cmocka_unit_test(prefix_parse__host_bits_set__suggests_the_network),
		cmocka_unit_test(prefix_parse__bad_length__says_why),
		cmocka_unit_test(prefix_parse__valid__round_trips),
		cmocka_unit_test(range_parse__malformed__fails_quoting_input),
		cmocka_unit_test(range_parse__reversed_or_mixed__says_why),
		cmocka_unit_test(range_parse__three_forms__format_back),
		cmocka_unit_test(addr_add__wraps_within_family_and_carries_into_hi),
		cmocka_unit_test(addr_add__shift_64_to_127__moves_into_hi),
		cmocka_unit_test(addr_offset__shifts_and_saturates),
		cmocka_unit_test(addr_cmp__orders_family_then_number),
		cmocka_unit_test(prefix__range_contains_overlaps_within),
		cmocka_unit_test(netmask4__lengths_and_masks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
