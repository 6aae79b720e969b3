/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
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

/*
 * Each parser reads text[0, len) and on failure writes why into a
 * VP_ERRLEN buffer; the public functions then quote the whole input.
 */
static bool fail(char err[VP_ERRLEN], const char *text, const char *why)
{
	char quoted[104];
	size_t n = 0;

	/* Quote at most 100 bytes of the input, unprintable ones as \xNN. */
	for (; *text && n + 4 < sizeof(quoted) - 3; ++text) {
		if (*text >= ' ' && *text < 0x7f)
			quoted[n++] = *text;
		else
			n += (size_t)snprintf(quoted + n, 5, "\\x%02x", (unsigned char)*text);
	}
	if (*text)
		n += (size_t)snprintf(quoted + n, 4, "...");
	quoted[n] = '\0';
	snprintf(err, VP_ERRLEN, "`%s': %.140s", quoted, why);
	return false;
}

static bool why(char out[VP_ERRLEN], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool why(char out[VP_ERRLEN], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, VP_ERRLEN, fmt, ap);
	va_end(ap);
	return false;
}

/* A character as text fit to quote: `x', or \xNN when not printable. */
static const char *show_char(char c, char buf[8])
{
	if (c > ' ' && c < 0x7f)
		snprintf(buf, 8, "`%c'", c);
	else
		snprintf(buf, 8, "\\x%02x", (unsigned char)c);
	return buf;
}

/* Up to 8 bytes of text fit to quote, unprintable ones as \xNN, "..." after. */
static const char *show_text(const char *p, char buf[40])
{
	size_t n = 0, k;

	for (k = 0; p[k] && k < 8; ++k)
		if (p[k] >= ' ' && p[k] < 0x7f)
			buf[n++] = p[k];
		else
			n += (size_t)snprintf(buf + n, 5, "\\x%02x", (unsigned char)p[k]);
	snprintf(buf + n, 4, "%s", p[k] ? "..." : "");
	return buf;
}

/* One decimal octet of a dotted quad at text[*i]; advances *i. */
static bool parse_octet(const char *text, size_t len, size_t *i, unsigned *out, char msg[VP_ERRLEN])
{
	size_t start = *i;
	unsigned n = 0;
	char cb[8];

	for (; *i < len && isdigit((unsigned char)text[*i]); ++*i)
		if (n < 1000)
			n = n * 10 + (unsigned)(text[*i] - '0');
	if (*i == start) {
		if (start >= len)
			return why(msg, "an IPv4 address has four octets");
		return why(msg, "%s where an IPv4 octet should start", show_char(text[start], cb));
	}
	if (*i - start > 1 && text[start] == '0')
		return why(msg, "octet `%.*s' has a leading zero", (int)(*i - start > 12 ? 12 : *i - start),
			   text + start);
	if (n > 255)
		return why(msg, "octet %.*s is above 255", (int)(*i - start > 12 ? 12 : *i - start),
			   text + start);
	*out = n;
	return true;
}

/* A dotted quad, strictly: four decimal octets 0-255, no leading zeros. */
static bool parse_v4(const char *text, size_t len, uint32_t *out, char msg[VP_ERRLEN])
{
	uint32_t v = 0;
	size_t i = 0;
	unsigned n = 0;
	char cb[8];

	for (int octet = 0; octet < 4; ++octet) {
		if (octet) {
			if (i >= len)
				return why(msg, "an IPv4 address has four octets, not %d", octet);
			if (text[i] != '.')
				return why(msg, "%s after an IPv4 octet", show_char(text[i], cb));
			++i;
		}
		if (!parse_octet(text, len, &i, &n, msg))
			return false;
		v = v << 8 | n;
	}
	if (i < len)
		return why(msg, text[i] == '.' ? "an IPv4 address has four octets, not more"
					       : "unexpected characters after the address");
	*out = v;
	return true;
}

/* The IPv4 tail of an IPv6 address ("::ffff:10.8.0.1") into two groups. */
static bool parse_v6_tail(const char *text, size_t len, uint16_t *groups, char msg[VP_ERRLEN])
{
	uint32_t v4;

	if (!parse_v4(text, len, &v4, msg))
		return false;
	groups[0] = (uint16_t)(v4 >> 16);
	groups[1] = (uint16_t)v4;
	return true;
}

/*
 * One IPv6 group at text[*i]: 1-4 hex digits, or a dotted quad at the end
 * (two groups); room (>= 1) groups are left.  Returns the number of groups
 * read (1 or 2), 0 on error.
 */
static int parse_v6_group(const char *text, size_t len, size_t *i, uint16_t *groups, int room,
			  char msg[VP_ERRLEN])
{
	size_t start = *i, end = start;
	unsigned v = 0;
	char cb[8];

	while (end < len && text[end] != ':')
		end++;
	if (end == start)
		return why(msg, "an IPv6 group is empty (a lone `:')");
	if (memchr(text + start, '.', end - start)) {
		if (end != len)
			return why(msg, "an embedded IPv4 address must come last");
		if (room < 2)
			return why(msg, "more than eight groups");
		*i = end;
		return parse_v6_tail(text + start, end - start, groups, msg) ? 2 : 0;
	}
	for (size_t k = start; k < end; ++k) {
		if (!isxdigit((unsigned char)text[k]))
			return why(msg, "%s is not a hex digit", show_char(text[k], cb));
		v = v << 4 | (unsigned)(isdigit((unsigned char)text[k]) ? text[k] - '0'
									: (text[k] | 0x20) - 'a' + 10);
	}
	if (end - start > 4)
		return why(msg, "group `%.*s' has more than four hex digits", (int)(end - start),
			   text + start);
	groups[0] = (uint16_t)v;
	*i = end;
	return 1;
}

/* Split an IPv6 text into groups before and after "::"; *gap = -1 if none. */
static bool parse_v6_groups(const char *text, size_t len, uint16_t groups[8], int *ngroups,
			    int *gap, char msg[VP_ERRLEN])
{
	size_t i = 0;
	int n = 0, got;

	*gap = -1;
	if (len >= 2 && text[0] == ':' && text[1] == ':') {
		*gap = 0;
		i = 2;
	} else if (len && text[0] == ':') {
		return why(msg, "an IPv6 address cannot start with a single `:'");
	}
	while (i < len) {
		if (n >= 8)
			return why(msg, "more than eight groups");
		got = parse_v6_group(text, len, &i, groups + n, 8 - n, msg);
		if (!got)
			return false;
		n += got;
		if (i == len)
			break;
		if (i + 1 < len && text[i + 1] == ':') {
			if (*gap >= 0)
				return why(msg, "`::' appears more than once");
			*gap = n;
			i += 2;
		} else if (++i == len) {
			return why(msg, "an IPv6 address cannot end with a single `:'");
		}
	}
	*ngroups = n;
	return true;
}

static bool parse_v6(const char *text, size_t len, struct vp_addr *out, char msg[VP_ERRLEN])
{
	uint16_t groups[8] = { 0 }, full[8] = { 0 };
	uint8_t bytes[16];
	int n = 0, gap = -1;

	if (!parse_v6_groups(text, len, groups, &n, &gap, msg))
		return false;
	if (n > 8 || (gap >= 0 && n == 8))
		return why(msg, "more than eight groups");
	if (gap < 0 && n < 8)
		return why(msg, "%d groups and no `::', an IPv6 address has eight", n);
	if (gap < 0)
		gap = n;
	memcpy(full, groups, (size_t)gap * sizeof(*groups));
	memcpy(full + 8 - (n - gap), groups + gap, (size_t)(n - gap) * sizeof(*groups));
	for (int k = 0; k < 8; ++k) {
		bytes[2 * k] = (uint8_t)(full[k] >> 8);
		bytes[2 * k + 1] = (uint8_t)full[k];
	}
	*out = vp_addr_from_bytes(VP_INET6, bytes);
	return true;
}

static bool parse_addr_n(const char *text, size_t len, struct vp_addr *out, char msg[VP_ERRLEN])
{
	uint32_t v4;

	if (!len)
		return why(msg, "an address is missing");
	if (len > VP_ADDR_STRLEN - 1)
		return why(msg, "too long for an address");
	if (memchr(text, ':', len))
		return parse_v6(text, len, out, msg);
	if (!parse_v4(text, len, &v4, msg))
		return false;
	*out = vp_addr_v4(v4);
	return true;
}

bool vp_addr_parse(struct vp_addr *out, const char *text, char err[VP_ERRLEN])
{
	char msg[VP_ERRLEN];

	if (!parse_addr_n(text, strlen(text), out, msg))
		return fail(err, text, msg);
	return true;
}

/* A prefix length: 1-3 decimal digits, no sign, no leading zero, <= bits. */
static bool parse_prefix_len(const char *p, unsigned bits, unsigned *out, char msg[VP_ERRLEN])
{
	unsigned len = 0;
	size_t n = strlen(p);
	char q[40];

	if (!n)
		return why(msg, "the prefix length is missing");
	for (size_t k = 0; k < n; ++k)
		if (!isdigit((unsigned char)p[k]))
			return why(msg, "prefix length `%s' is not a decimal number", show_text(p, q));
	if (n > 1 && p[0] == '0')
		return why(msg, "prefix length `%s' has a leading zero", show_text(p, q));
	if (n > 3)
		return why(msg, "prefix length `%s' is above %u", show_text(p, q), bits);
	for (size_t k = 0; k < n; ++k)
		len = len * 10 + (unsigned)(p[k] - '0');
	if (len > bits)
		return why(msg, "prefix length %u is above %u for %s", len, bits,
			   bits == 32 ? "IPv4" : "IPv6");
	*out = len;
	return true;
}

static bool parse_prefix_n(const char *text, struct vp_prefix *out, char msg[VP_ERRLEN])
{
	const char *slash = strchr(text, '/');
	char hint[VP_PREFIX_STRLEN];
	struct vp_prefix net;
	struct vp_addr a;
	unsigned len = 0;

	if (!slash)
		return why(msg, "a prefix is ADDRESS/LENGTH");
	if (!parse_addr_n(text, (size_t)(slash - text), &a, msg))
		return false;
	if (!parse_prefix_len(slash + 1, vp_family_bits(a.family), &len, msg))
		return false;
	net = vp_prefix_of(&a, len);
	if (!vp_addr_eq(&net.addr, &a))
		return why(msg, "host bits are set (did you mean %s?)", vp_prefix_format(&net, hint));
	*out = net;
	return true;
}

bool vp_prefix_parse(struct vp_prefix *out, const char *text, char err[VP_ERRLEN])
{
	char msg[VP_ERRLEN];

	if (!parse_prefix_n(text, out, msg))
		return fail(err, text, msg);
	return true;
}

static bool parse_range_n(const char *text, struct vp_range *out, char msg[VP_ERRLEN])
{
	const char *dash = strchr(text, '-');
	struct vp_prefix p;

	if (strchr(text, '/')) {
		if (dash)
			return why(msg, "a range is FIRST-LAST or ADDRESS/LENGTH, not both");
		if (!parse_prefix_n(text, &p, msg))
			return false;
		*out = vp_prefix_range(&p);
		return true;
	}
	if (!dash) {
		if (!parse_addr_n(text, strlen(text), &out->first, msg))
			return false;
		out->last = out->first;
		return true;
	}
	if (!parse_addr_n(text, (size_t)(dash - text), &out->first, msg) ||
	    !parse_addr_n(dash + 1, strlen(dash + 1), &out->last, msg))
		return false;
	if (out->first.family != out->last.family)
		return why(msg, "a range cannot mix IPv4 and IPv6");
	if (vp_addr_cmp(&out->first, &out->last) > 0)
		return why(msg, "the range ends before it starts");
	return true;
}

bool vp_range_parse(struct vp_range *out, const char *text, char err[VP_ERRLEN])
{
	char msg[VP_ERRLEN];

	if (!parse_range_n(text, out, msg))
		return fail(err, text, msg);
	return true;
}

/* ---- formatting -------------------------------------------------------- */

/* Dotted quad by hand: glibc's inet_ntop goes through sprintf, and this is
 * on every connect. */
static char *format_v4(uint32_t v, char *buf)
{
	char *p = buf;

	for (int shift = 24; shift >= 0; shift -= 8) {
		unsigned octet = (v >> shift) & 0xff;

		if (octet >= 100)
			*p++ = (char)('0' + octet / 100);
		if (octet >= 10)
			*p++ = (char)('0' + octet / 10 % 10);
		*p++ = (char)('0' + octet % 10);
		*p++ = shift ? '.' : '\0';
	}
	return buf;
}

/* IPv6 by hand, as glibc's inet_ntop writes it (which goes through sprintf
 * for every group): the longest run of two or more zero groups (the first of
 * equal ones) becomes "::", and ::a.b.c.d and ::ffff:a.b.c.d end in a dotted
 * quad. */
static char *format_v6(uint64_t hi, uint64_t lo, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	unsigned w[8];
	int best = -1, best_len = 0, cur = -1, cur_len = 0;
	char *p = buf;

	for (int i = 0; i < 4; ++i) {
		w[i] = (unsigned)(hi >> (48 - 16 * i)) & 0xffff;
		w[i + 4] = (unsigned)(lo >> (48 - 16 * i)) & 0xffff;
	}
	for (int i = 0; i < 8; ++i) {
		if (!w[i]) {
			if (cur < 0)
				cur = i, cur_len = 0;
			cur_len++;
		} else if (cur >= 0) {
			if (best < 0 || cur_len > best_len)
				best = cur, best_len = cur_len;
			cur = -1;
		}
	}
	if (cur >= 0 && (best < 0 || cur_len > best_len))
		best = cur, best_len = cur_len;
	if (best >= 0 && best_len < 2)
		best = -1;
	for (int i = 0; i < 8; ++i) {
		unsigned v = w[i];

		if (best >= 0 && i >= best && i < best + best_len) {
			if (i == best)
				*p++ = ':';
			continue;
		}
		if (i)
			*p++ = ':';
		if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff))) {
			format_v4((uint32_t)lo, p);
			return buf;
		}
		if (v >= 0x1000)
			*p++ = hex[v >> 12];
		if (v >= 0x100)
			*p++ = hex[(v >> 8) & 15];
		if (v >= 0x10)
			*p++ = hex[(v >> 4) & 15];
		*p++ = hex[v & 15];
	}
	if (best >= 0 && best + best_len == 8)
		*p++ = ':';
	*p = '\0';
	return buf;
}

char *vp_addr_format(const struct vp_addr *a, char buf[VP_ADDR_STRLEN])
{
	if (a->family == VP_INET)
		return format_v4((uint32_t)a->lo, buf);
	if (a->family == VP_INET6)
		return format_v6(a->hi, a->lo, buf);
	buf[0] = '-';
	buf[1] = '\0';
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
