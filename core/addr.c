/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

unsigned vp_family_bits(enum vp_family family)
{
	return family == VP_INET ? 32 : 128;
}

struct vp_addr vp_addr_v4(uint32_t host_order)
{
	struct vp_addr a = { .hi = 0, .lo = host_order, .family = VP_INET };

	return a;
}

uint32_t vp_addr_to_v4(const struct vp_addr *a)
{
	return (uint32_t)a->lo;
}

struct vp_addr vp_addr_from_bytes(enum vp_family family, const uint8_t *b)
{
	struct vp_addr a = { .family = (uint8_t)family };

	if (family == VP_INET) {
		a.lo = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
		return a;
	}
	for (int i = 0; i < 8; ++i) {
		a.hi = a.hi << 8 | b[i];
		a.lo = a.lo << 8 | b[i + 8];
	}
	return a;
}

void vp_addr_to_bytes(const struct vp_addr *a, uint8_t *b)
{
	if (a->family == VP_INET) {
		for (int i = 0; i < 4; ++i)
			b[i] = (uint8_t)(a->lo >> (24 - 8 * i));
		return;
	}
	for (int i = 0; i < 8; ++i) {
		b[i] = (uint8_t)(a->hi >> (56 - 8 * i));
		b[i + 8] = (uint8_t)(a->lo >> (56 - 8 * i));
	}
}

/* ---- parsing ------------------------------------------------------------ */

static bool fail(char err[VP_ERRLEN], const char *text, const char *why)
{
	snprintf(err, VP_ERRLEN, "`%.100s': %.140s", text, why);
	return false;
}

/* A dotted quad, strictly: four decimal octets 0-255, no leading zeros. */
static bool parse_v4(const char *text, size_t len, struct vp_addr *out, const char **why)
{
	uint32_t v = 0;
	size_t i = 0;

	for (int octet = 0; octet < 4; ++octet) {
		unsigned n = 0, digits = 0;

		if (octet) {
			if (i >= len || text[i] != '.') {
				*why = "an IPv4 address has four dot-separated octets";
				return false;
			}
			++i;
		}
		while (i < len && isdigit((unsigned char)text[i]) && digits < 4) {
			n = n * 10 + (unsigned)(text[i++] - '0');
			digits++;
		}
		if (!digits) {
			*why = "an IPv4 octet is missing or not a decimal number";
			return false;
		}
		if (digits > 1 && text[i - digits] == '0') {
			*why = "an IPv4 octet has a leading zero";
			return false;
		}
		if (n > 255) {
			*why = "an IPv4 octet is above 255";
			return false;
		}
		v = v << 8 | n;
	}
	if (i != len) {
		*why = "unexpected characters after the address";
		return false;
	}
	*out = vp_addr_v4(v);
	return true;
}

static bool parse_v6(const char *text, size_t len, struct vp_addr *out, const char **why)
{
	char buf[64];
	uint8_t bytes[16];

	if (len >= sizeof(buf)) {
		*why = "too long for an IPv6 address";
		return false;
	}
	for (size_t i = 0; i < len; ++i)
		if (!isxdigit((unsigned char)text[i]) && text[i] != ':' && text[i] != '.') {
			*why = "an IPv6 address has only hex digits, ':' and '.'";
			return false;
		}
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, bytes) != 1) {
		*why = "not a valid IPv6 address";
		return false;
	}
	*out = vp_addr_from_bytes(VP_INET6, bytes);
	return true;
}

static bool parse_addr_n(const char *text, size_t len, struct vp_addr *out, const char **why)
{
	if (!len) {
		*why = "empty address";
		return false;
	}
	if (memchr(text, ':', len))
		return parse_v6(text, len, out, why);
	return parse_v4(text, len, out, why);
}

bool vp_addr_parse(struct vp_addr *out, const char *text, char err[VP_ERRLEN])
{
	const char *why;

	if (!parse_addr_n(text, strlen(text), out, &why))
		return fail(err, text, why);
	return true;
}

bool vp_prefix_parse(struct vp_prefix *out, const char *text, char err[VP_ERRLEN])
{
	const char *slash = strchr(text, '/'), *why, *p;
	struct vp_prefix net;
	struct vp_addr a;
	unsigned len = 0, bits;

	if (!slash)
		return fail(err, text, "a prefix is ADDRESS/LENGTH");
	if (!parse_addr_n(text, (size_t)(slash - text), &a, &why))
		return fail(err, text, why);
	bits = vp_family_bits(a.family);
	p = slash + 1;
	if (!*p || strlen(p) > 3)
		return fail(err, text, "the prefix length is missing or too long");
	if (p[0] == '0' && p[1])
		return fail(err, text, "the prefix length has a leading zero");
	for (; *p; ++p) {
		if (!isdigit((unsigned char)*p))
			return fail(err, text, "the prefix length is not a decimal number");
		len = len * 10 + (unsigned)(*p - '0');
	}
	if (len > bits)
		return fail(err, text, a.family == VP_INET ? "an IPv4 prefix length is at most 32"
							   : "an IPv6 prefix length is at most 128");
	out->addr = a;
	out->len = (uint8_t)len;
	net = vp_prefix_of(&a, len);
	if (!vp_addr_eq(&net.addr, &a)) {
		char hint[VP_PREFIX_STRLEN], msg[160];

		snprintf(msg, sizeof(msg), "host bits are set (did you mean %s?)",
			 vp_prefix_format(&net, hint));
		return fail(err, text, msg);
	}
	return true;
}

bool vp_range_parse(struct vp_range *out, const char *text, char err[VP_ERRLEN])
{
	const char *dash = strchr(text, '-'), *why;
	struct vp_prefix p;

	if (strchr(text, '/')) {
		if (!vp_prefix_parse(&p, text, err))
			return false;
		*out = vp_prefix_range(&p);
		return true;
	}
	if (!dash) {
		if (!vp_addr_parse(&out->first, text, err))
			return false;
		out->last = out->first;
		return true;
	}
	if (!parse_addr_n(text, (size_t)(dash - text), &out->first, &why) ||
	    !parse_addr_n(dash + 1, strlen(dash + 1), &out->last, &why))
		return fail(err, text, why);
	if (out->first.family != out->last.family)
		return fail(err, text, "a range cannot mix IPv4 and IPv6");
	if (vp_addr_cmp(&out->first, &out->last) > 0)
		return fail(err, text, "the range ends before it starts");
	return true;
}

/* ---- formatting -------------------------------------------------------- */

char *vp_addr_format(const struct vp_addr *a, char buf[VP_ADDR_STRLEN])
{
	uint8_t bytes[16];

	vp_addr_to_bytes(a, bytes);
	if (!a->family || !inet_ntop(a->family == VP_INET ? AF_INET : AF_INET6, bytes, buf,
				     VP_ADDR_STRLEN))
		snprintf(buf, VP_ADDR_STRLEN, "-");
	return buf;
}

char *vp_prefix_format(const struct vp_prefix *p, char buf[VP_PREFIX_STRLEN])
{
	char a[VP_ADDR_STRLEN];

	snprintf(buf, VP_PREFIX_STRLEN, "%s/%u", vp_addr_format(&p->addr, a), p->len);
	return buf;
}

char *vp_range_format(const struct vp_range *r, char buf[VP_RANGE_STRLEN])
{
	char a[VP_ADDR_STRLEN], b[VP_ADDR_STRLEN];

	if (vp_addr_eq(&r->first, &r->last))
		snprintf(buf, VP_RANGE_STRLEN, "%s", vp_addr_format(&r->first, a));
	else
		snprintf(buf, VP_RANGE_STRLEN, "%s-%s", vp_addr_format(&r->first, a),
			 vp_addr_format(&r->last, b));
	return buf;
}

/* ---- arithmetic ---------------------------------------------------------- */

int vp_addr_cmp(const struct vp_addr *a, const struct vp_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return 0;
}

bool vp_addr_eq(const struct vp_addr *a, const struct vp_addr *b)
{
	return a->family == b->family && a->hi == b->hi && a->lo == b->lo;
}

/* Keep an IPv4 value within 32 bits. */
static struct vp_addr wrap(struct vp_addr a)
{
	if (a.family == VP_INET) {
		a.hi = 0;
		a.lo &= 0xffffffffULL;
	}
	return a;
}

struct vp_addr vp_addr_add(const struct vp_addr *a, uint64_t n, unsigned shift)
{
	struct vp_addr r = *a;
	uint64_t add_hi, add_lo;

	if (shift >= 128)
		return r;
	if (shift >= 64) {
		add_hi = n << (shift - 64);
		add_lo = 0;
	} else {
		add_lo = n << shift;
		add_hi = shift ? n >> (64 - shift) : 0;
	}
	r.lo = a->lo + add_lo;
	r.hi = a->hi + add_hi + (r.lo < a->lo);
	return wrap(r);
}

uint64_t vp_addr_offset(const struct vp_addr *a, const struct vp_addr *base, unsigned shift)
{
	uint64_t lo, hi;

	if (a->family != base->family || vp_addr_cmp(a, base) < 0)
		return UINT64_MAX;
	lo = a->lo - base->lo;
	hi = a->hi - base->hi - (a->lo < base->lo);
	if (shift >= 64) {
		lo = shift >= 128 ? 0 : hi >> (shift - 64);
		hi = 0;
	} else if (shift) {
		lo = lo >> shift | hi << (64 - shift);
		hi >>= shift;
	}
	return hi ? UINT64_MAX : lo;
}

/* The host mask of a prefix length within a family, as (hi, lo). */
static void host_mask(unsigned family_bits, unsigned len, uint64_t *hi, uint64_t *lo)
{
	unsigned host = family_bits - len;

	if (host >= 128) {
		*hi = *lo = UINT64_MAX;
	} else if (host >= 64) {
		*lo = UINT64_MAX;
		*hi = host == 64 ? 0 : UINT64_MAX >> (128 - host);
	} else {
		*hi = 0;
		*lo = host ? UINT64_MAX >> (64 - host) : 0;
	}
}

struct vp_prefix vp_prefix_of(const struct vp_addr *a, unsigned len)
{
	struct vp_prefix p = { .addr = *a, .len = (uint8_t)len };
	unsigned bits = vp_family_bits(a->family);
	uint64_t hi, lo;

	if (len > bits)
		p.len = (uint8_t)(len = bits);
	host_mask(bits, len, &hi, &lo);
	if (a->family == VP_INET)
		lo &= 0xffffffffULL;
	p.addr.hi &= ~hi;
	p.addr.lo &= ~lo;
	return p;
}

struct vp_range vp_prefix_range(const struct vp_prefix *p)
{
	struct vp_range r = { p->addr, p->addr };
	unsigned bits = vp_family_bits(p->addr.family);
	uint64_t hi, lo;

	host_mask(bits, p->len, &hi, &lo);
	r.last.hi |= hi;
	r.last.lo |= lo;
	r.last = wrap(r.last);
	return r;
}

bool vp_prefix_contains(const struct vp_prefix *p, const struct vp_addr *a)
{
	struct vp_prefix q;

	if (a->family != p->addr.family)
		return false;
	q = vp_prefix_of(a, p->len);
	return vp_addr_eq(&q.addr, &p->addr);
}

bool vp_range_contains(const struct vp_range *r, const struct vp_addr *a)
{
	return a->family == r->first.family && vp_addr_cmp(a, &r->first) >= 0 &&
	       vp_addr_cmp(a, &r->last) <= 0;
}

bool vp_range_within(const struct vp_range *r, const struct vp_range *outer)
{
	return vp_range_contains(outer, &r->first) && vp_range_contains(outer, &r->last);
}

bool vp_range_overlaps(const struct vp_range *r, const struct vp_range *s)
{
	return r->first.family == s->first.family && vp_addr_cmp(&r->first, &s->last) <= 0 &&
	       vp_addr_cmp(&s->first, &r->last) <= 0;
}

uint32_t vp_netmask4(unsigned len)
{
	return len == 0 ? 0 : len >= 32 ? UINT32_MAX : ~(UINT32_MAX >> len);
}

int vp_netmask4_len(uint32_t mask)
{
	int len = 0;

	while (len < 32 && (mask & (1U << (31 - len))))
		len++;
	return vp_netmask4((unsigned)len) == mask ? len : -1;
}
