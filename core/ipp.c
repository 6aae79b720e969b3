/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "ipp.h"
#include "store.h"

#define QUOTED_MAX 64			/* input bytes a message quotes */
#define ADDR_TEXT_MAX 63		/* longer than any address text */

/* s as text for a message: printable ASCII as it is, other bytes \xNN, cut
 * to QUOTED_MAX input bytes ("..."). */
static const char *quote(char *out, size_t cap, const char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && i < QUOTED_MAX && o + 5 < cap; ++i) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
	}
	if (len > QUOTED_MAX && o + 4 < cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* [*s, *s + *len) without the blanks around it. */
static void trim(const char **s, size_t *len)
{
	while (*len && is_blank(**s)) {
		++*s;
		--*len;
	}
	while (*len && is_blank((*s)[*len - 1]))
		--*len;
}

static const char *last_comma(const char *s, size_t len)
{
	while (len--)
		if (s[len] == ',')
			return s + len;
	return NULL;
}

/* Parse the address field [s, s + len) of family into *out (family 0 for an
 * empty field).  false with why set when it is not one. */
static bool field_addr(const char *s, size_t len, enum vp_family family, struct vp_addr *out,
		       char why[VP_ERRLEN])
{
	char text[ADDR_TEXT_MAX + 1], err[VP_ERRLEN], q[QUOTED_MAX * 4 + 8];

	memset(out, 0, sizeof(*out));
	trim(&s, &len);
	if (!len)
		return true;
	if (len <= ADDR_TEXT_MAX && !memchr(s, '\0', len)) {
		memcpy(text, s, len);
		text[len] = '\0';
		if (vp_addr_parse(out, text, err) && out->family == family)
			return true;
	}
	memset(out, 0, sizeof(*out));
	snprintf(why, VP_ERRLEN, "`%s' is not an %s address", quote(q, sizeof(q), s, len),
		 family == VP_INET ? "IPv4" : "IPv6");
	return false;
}

static bool parses_as_v4(const char *s, size_t len)
{
	struct vp_addr a;
	char why[VP_ERRLEN];

	trim(&s, &len);
	return !len || field_addr(s, len, VP_INET, &a, why);
}

/* Split line into the identity and the address fields, from the right. */
static bool split(const char *line, size_t len, struct vp_ipp_entry *e, const char **f4,
		  size_t *n4, const char **f6, size_t *n6, char why[VP_ERRLEN])
{
	const char *c2 = last_comma(line, len), *c1, *last;
	size_t last_len;
	char q[QUOTED_MAX * 4 + 8];

	if (!c2) {
		snprintf(why, VP_ERRLEN, "`%s' has no comma: expected CN,IPv4[,IPv6]",
			 quote(q, sizeof(q), line, len));
		return false;
	}
	last = c2 + 1;
	last_len = (size_t)(line + len - last);
	trim(&last, &last_len);
	c1 = last_comma(line, (size_t)(c2 - line));
	if (c1 && (!last_len || memchr(last, ':', last_len))) {
		/* CN,IPv4,IPv6 (either may be empty) */
		*f4 = c1 + 1;
		*n4 = (size_t)(c2 - *f4);
		*f6 = last;
		*n6 = last_len;
		e->identity_len = (size_t)(c1 - line);
	} else {
		/* CN,IPv4: unless CN's own last part reads as an IPv4 field,
		 * which makes it CN,IPv4,IPv6 with an IPv4 address where the
		 * IPv6 one belongs */
		if (c1 && parses_as_v4(c1 + 1, (size_t)(c2 - c1 - 1))) {
			snprintf(why, VP_ERRLEN, "`%s' is not an IPv6 address",
				 quote(q, sizeof(q), last, last_len));
			return false;
		}
		*f4 = last;
		*n4 = last_len;
		*f6 = NULL;
		*n6 = 0;
		e->identity_len = (size_t)(c2 - line);
	}
	e->identity = line;
	return true;
}

static bool check_identity(const struct vp_ipp_entry *e, char why[VP_ERRLEN])
{
	if (!e->identity_len) {
		snprintf(why, VP_ERRLEN, "no common name before the addresses");
		return false;
	}
	if (e->identity_len > VP_IDENTITY_MAX) {
		snprintf(why, VP_ERRLEN, "the common name is %zu bytes long (at most %d)",
			 e->identity_len, VP_IDENTITY_MAX);
		return false;
	}
	for (size_t i = 0; i < e->identity_len; ++i) {
		unsigned char c = (unsigned char)e->identity[i];

		if (c < 0x20 || c == 0x7f) {
			snprintf(why, VP_ERRLEN,
				 "the common name holds a control character (\\x%02x at byte %zu), which OpenVPN never writes",
				 c, i + 1);
			return false;
		}
	}
	return true;
}

enum vp_ipp_kind vp_ipp_parse_line(const char *line, size_t len, struct vp_ipp_entry *e,
				   char why[VP_ERRLEN])
{
	const char *f4, *f6, *t = line;
	size_t n4, n6, tl;

	memset(e, 0, sizeof(*e));
	why[0] = '\0';
	while (len && line[len - 1] == '\r')
		--len;
	tl = len;
	trim(&t, &tl);
	if (!tl || line[0] == '#' || line[0] == ';')
		return VP_IPP_SKIP;
	if (!split(line, len, e, &f4, &n4, &f6, &n6, why) || !check_identity(e, why) ||
	    !field_addr(f4, n4, VP_INET, &e->addr4, why) ||
	    (f6 && !field_addr(f6, n6, VP_INET6, &e->addr6, why)))
		goto bad;
	if (!e->addr4.family && !e->addr6.family) {
		snprintf(why, VP_ERRLEN, "no address: expected CN,IPv4[,IPv6]");
		goto bad;
	}
	return VP_IPP_ENTRY;

bad:
	memset(e, 0, sizeof(*e));
	return VP_IPP_BAD;
}

int vp_ipp_each(const char *text, size_t len,
		int (*fn)(void *ud, unsigned line, const struct vp_ipp_entry *entry,
			  const char *why),
		void *ud)
{
	const char *p = text, *end = text + len;
	unsigned n = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl ? nl : end) - p);
		struct vp_ipp_entry e;
		char why[VP_ERRLEN];
		int ret = 0;

		++n;
		switch (vp_ipp_parse_line(p, l, &e, why)) {
		case VP_IPP_ENTRY:
			ret = fn(ud, n, &e, NULL);
			break;
		case VP_IPP_BAD:
			ret = fn(ud, n, NULL, why);
			break;
		case VP_IPP_SKIP:
			break;
		}
		if (ret)
			return ret;
		p += l + 1;
	}
	return 0;
}
