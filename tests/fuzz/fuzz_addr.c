/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * core/addr.c: the address, prefix and range parsers on any text.
 * Properties: a parse that succeeds formats to a text that parses back to the
 * same value, and that text is its own canonical form; an address agrees
 * with inet_pton(3) (which is as strict: no leading zeros in IPv4 octets);
 * a prefix has no host bits set; a range is one family, first <= last.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "fuzz.h"

/* Parse errors quote the input escaped: one line of printable ASCII. */
static bool printable(const char *err)
{
	for (const char *p = err; *p; ++p)
		if (*p < ' ' || *p >= 0x7f)
			return false;
	return memchr(err, '\0', VP_ERRLEN) != NULL;
}

static void check_addr(const char *text)
{
	char err[VP_ERRLEN], buf[VP_ADDR_STRLEN], again[VP_ADDR_STRLEN];
	struct vp_addr a, b, sum;
	uint8_t bytes[16], pton[16];
	bool ok = vp_addr_parse(&a, text, err);
	bool six = strchr(text, ':') != NULL;
	int ref = inet_pton(six ? AF_INET6 : AF_INET, text, pton);

	FUZZ_CHECK(ok == (ref == 1));
	if (!ok) {
		FUZZ_CHECK(printable(err));
		return;
	}
	FUZZ_CHECK(a.family == (six ? VP_INET6 : VP_INET));
	FUZZ_CHECK(a.family == VP_INET6 || (a.hi == 0 && a.lo <= UINT32_MAX));
	vp_addr_to_bytes(&a, bytes);
	FUZZ_CHECK(!memcmp(bytes, pton, six ? 16 : 4));
	vp_addr_format(&a, buf);
	FUZZ_CHECK(vp_addr_parse(&b, buf, err) && vp_addr_eq(&a, &b));
	FUZZ_CHECK(!strcmp(vp_addr_format(&b, again), buf));
	FUZZ_CHECK(vp_addr_offset(&a, &a, 0) == 0);
	sum = vp_addr_add(&a, 1, 0);
	FUZZ_CHECK(vp_addr_cmp(&sum, &a) > 0 || vp_addr_offset(&sum, &a, 0) == UINT64_MAX);
}

static void check_prefix(const char *text)
{
	char err[VP_ERRLEN], buf[VP_PREFIX_STRLEN], again[VP_PREFIX_STRLEN];
	struct vp_prefix p, q;
	struct vp_range r;

	if (!vp_prefix_parse(&p, text, err)) {
		FUZZ_CHECK(printable(err));
		return;
	}
	FUZZ_CHECK(p.len <= vp_family_bits(p.addr.family));
	q = vp_prefix_of(&p.addr, p.len);
	FUZZ_CHECK(vp_addr_eq(&q.addr, &p.addr));
	r = vp_prefix_range(&p);
	FUZZ_CHECK(vp_addr_eq(&r.first, &p.addr) && vp_addr_cmp(&r.first, &r.last) <= 0);
	FUZZ_CHECK(vp_prefix_contains(&p, &r.first) && vp_prefix_contains(&p, &r.last));
	vp_prefix_format(&p, buf);
	FUZZ_CHECK(vp_prefix_parse(&q, buf, err));
	FUZZ_CHECK(vp_addr_eq(&q.addr, &p.addr) && q.len == p.len);
	FUZZ_CHECK(!strcmp(vp_prefix_format(&q, again), buf));
	if (p.addr.family == VP_INET)
		FUZZ_CHECK(vp_netmask4_len(vp_netmask4(p.len)) == p.len);
}

static void check_range(const char *text)
{
	char err[VP_ERRLEN], buf[VP_RANGE_STRLEN], again[VP_RANGE_STRLEN];
	struct vp_range r, s;

	if (!vp_range_parse(&r, text, err)) {
		FUZZ_CHECK(printable(err));
		return;
	}
	FUZZ_CHECK(r.first.family == r.last.family && vp_addr_cmp(&r.first, &r.last) <= 0);
	FUZZ_CHECK(vp_range_contains(&r, &r.first) && vp_range_contains(&r, &r.last));
	FUZZ_CHECK(vp_range_within(&r, &r) && vp_range_overlaps(&r, &r));
	vp_range_format(&r, buf);
	FUZZ_CHECK(vp_range_parse(&s, buf, err));
	FUZZ_CHECK(vp_addr_eq(&r.first, &s.first) && vp_addr_eq(&r.last, &s.last));
	FUZZ_CHECK(!strcmp(vp_range_format(&s, again), buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size > 256)		/* far past any address: only the length check */
		return 0;
	text = fuzz_strndup(data, size);
	check_addr(text);
	check_prefix(text);
	check_range(text);
	free(text);
	return 0;
}
