/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * OpenVPN's ifconfig-pool-persist file, read for `vpnpool import'
 * (vpnpool(8)): one client a line, "CN,IPv4,IPv6" as OpenVPN 2.6 writes it
 * (either address may be empty: "CN,IPv4," or "CN,,IPv6") or "CN,IPv4" as
 * older versions wrote it.  Blank lines and lines starting with '#' or ';'
 * are skipped; carriage returns at the end of a line are dropped.
 *
 * A common name may itself hold commas: the addresses are taken from the
 * right.  A line that could be read two ways ("a,10.8.0.2,10.8.0.3": a
 * two-field line of the name "a,10.8.0.2", or a three-field line with an
 * IPv4 address where the IPv6 one belongs) is malformed.
 *
 * Pure: no I/O, no allocation; the messages quote the input.
 */
#ifndef VP_IPP_H
#define VP_IPP_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

struct vp_ipp_entry {
	const char *identity;		/* into the line; not NUL-terminated */
	size_t identity_len;
	struct vp_addr addr4, addr6;	/* family 0: none (never both) */
};

enum vp_ipp_kind {
	VP_IPP_ENTRY,			/* *entry filled */
	VP_IPP_SKIP,			/* blank line or comment */
	VP_IPP_BAD,			/* why says what is wrong */
};

/* Read one line of len bytes (without its '\n'; may hold any byte). */
enum vp_ipp_kind vp_ipp_parse_line(const char *line, size_t len, struct vp_ipp_entry *entry,
				   char why[VP_ERRLEN]);

/* Call fn for every line of text that is not blank or a comment, in order,
 * with its number (from 1) and either its entry or (entry NULL) why it is
 * malformed.  Stops when fn returns non-zero, and returns that; else 0. */
int vp_ipp_each(const char *text, size_t len,
		int (*fn)(void *ud, unsigned line, const struct vp_ipp_entry *entry,
			  const char *why),
		void *ud);

#endif
