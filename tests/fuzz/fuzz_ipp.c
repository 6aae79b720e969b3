/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * core/ipp.c: OpenVPN's ifconfig-pool-persist file (vpnpool import) on any
 * bytes.  Properties: lines come in order, each once, numbered within the
 * file; an entry's common name lies within its line, is 1..VP_IDENTITY_MAX
 * bytes without control characters, and it has an address of the right
 * family; a reason is one line of printable ASCII; and an entry written
 * back as OpenVPN 2.6 writes it ("CN,IPv4,IPv6") reads back the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ipp.h"
#include "store.h"

struct walk {
	const char *data;
	size_t size;
	unsigned last, lines;
};

static bool printable(const char *s)
{
	for (; *s; ++s)
		if (*s < ' ' || *s >= 0x7f)
			return false;
	return true;
}

static void round_trip(const struct vp_ipp_entry *e)
{
	char a4[VP_ADDR_STRLEN] = "", a6[VP_ADDR_STRLEN] = "", why[VP_ERRLEN];
	size_t cap = e->identity_len + 2 * VP_ADDR_STRLEN + 4, n;
	char *line = malloc(cap);
	struct vp_ipp_entry back;

	FUZZ_CHECK(line != NULL);
	if (e->addr4.family)
		vp_addr_format(&e->addr4, a4);
	if (e->addr6.family)
		vp_addr_format(&e->addr6, a6);
	memcpy(line, e->identity, e->identity_len);
	n = e->identity_len + (size_t)snprintf(line + e->identity_len, cap - e->identity_len,
					       ",%s,%s", a4, a6);
	FUZZ_CHECK(vp_ipp_parse_line(line, n, &back, why) == VP_IPP_ENTRY);
	FUZZ_CHECK(back.identity_len == e->identity_len &&
		   !memcmp(back.identity, e->identity, e->identity_len));
	FUZZ_CHECK(vp_addr_eq(&back.addr4, &e->addr4) && back.addr4.family == e->addr4.family);
	FUZZ_CHECK(vp_addr_eq(&back.addr6, &e->addr6) && back.addr6.family == e->addr6.family);
	free(line);
}

static int visit(void *ud, unsigned line, const struct vp_ipp_entry *e, const char *why)
{
	struct walk *w = ud;

	FUZZ_CHECK(line > w->last && line <= w->lines);
	w->last = line;
	FUZZ_CHECK((e == NULL) != (why == NULL));
	if (!e) {
		FUZZ_CHECK(*why && strlen(why) < VP_ERRLEN && printable(why));
		return 0;
	}
	FUZZ_CHECK(e->identity >= w->data && e->identity + e->identity_len <= w->data + w->size);
	FUZZ_CHECK(e->identity_len >= 1 && e->identity_len <= VP_IDENTITY_MAX);
	FUZZ_CHECK(!memchr(e->identity, '\n', e->identity_len));
	for (size_t i = 0; i < e->identity_len; ++i)
		FUZZ_CHECK((unsigned char)e->identity[i] >= 0x20 && e->identity[i] != 0x7f);
	FUZZ_CHECK(e->addr4.family || e->addr6.family);
	FUZZ_CHECK(!e->addr4.family || e->addr4.family == VP_INET);
	FUZZ_CHECK(!e->addr6.family || e->addr6.family == VP_INET6);
	round_trip(e);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct walk w = { (const char *)data, size, 0, 1 };

	for (size_t i = 0; i < size; ++i)
		w.lines += data[i] == '\n';
	FUZZ_CHECK(vp_ipp_each(w.data, size, visit, &w) == 0);
	return 0;
}
