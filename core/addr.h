/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * IPv4 and IPv6 addresses, prefixes and ranges.
 *
 * Every address is held as a 128-bit number (hi, lo) plus its family; an
 * IPv4 address lives in the low 32 bits of lo with hi == 0.  All values are
 * plain structs, copied freely.  Parsers are strict (no trailing junk, no
 * leading zeros that would read as octal, no host bits in a prefix) and say
 * what was wrong, quoting the input, in a caller-supplied buffer.
 */
#ifndef VP_ADDR_H
#define VP_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vp_family { VP_INET = 4, VP_INET6 = 6 };

struct vp_addr {
	uint64_t hi, lo;
	uint8_t family;			/* VP_INET or VP_INET6; 0 = none */
};

/* A network: addr has every host bit clear. */
struct vp_prefix {
	struct vp_addr addr;
	uint8_t len;
};

/* An inclusive range, first <= last, both of one family. */
struct vp_range {
	struct vp_addr first, last;
};

#define VP_ADDR_STRLEN 46		/* "ffff:...:255.255.255.255" + NUL */
#define VP_PREFIX_STRLEN 50
#define VP_RANGE_STRLEN 94
#define VP_ERRLEN 256

/* Width of a family in bits: 32 or 128. */
unsigned vp_family_bits(enum vp_family family);

/* Parse a dotted quad or an RFC 4291 IPv6 text address. */
bool vp_addr_parse(struct vp_addr *out, const char *text, char err[VP_ERRLEN]);
/* Parse "ADDR/LEN"; fails when a host bit is set. */
bool vp_prefix_parse(struct vp_prefix *out, const char *text, char err[VP_ERRLEN]);
/* Parse "A-B", "ADDR/LEN" or a single "ADDR". */
bool vp_range_parse(struct vp_range *out, const char *text, char err[VP_ERRLEN]);

/* Canonical text (RFC 5952 for IPv6); returns buf. */
char *vp_addr_format(const struct vp_addr *a, char buf[VP_ADDR_STRLEN]);
char *vp_prefix_format(const struct vp_prefix *p, char buf[VP_PREFIX_STRLEN]);
/* "A-B", or just "A" when first == last. */
char *vp_range_format(const struct vp_range *r, char buf[VP_RANGE_STRLEN]);

struct vp_addr vp_addr_v4(uint32_t host_order);
uint32_t vp_addr_to_v4(const struct vp_addr *a);	/* host order */
/* From/to 16 network-order bytes (IPv6) or 4 (IPv4). */
struct vp_addr vp_addr_from_bytes(enum vp_family family, const uint8_t *bytes);
void vp_addr_to_bytes(const struct vp_addr *a, uint8_t *bytes);

/* Orders by family, then numerically: <0, 0, >0. */
int vp_addr_cmp(const struct vp_addr *a, const struct vp_addr *b);
bool vp_addr_eq(const struct vp_addr *a, const struct vp_addr *b);

/* a + (n << shift), wrapping within the family's width. */
struct vp_addr vp_addr_add(const struct vp_addr *a, uint64_t n, unsigned shift);
/* (a - base) >> shift; UINT64_MAX if a < base or the result does not fit. */
uint64_t vp_addr_offset(const struct vp_addr *a, const struct vp_addr *base, unsigned shift);

/* First and last address of a prefix. */
struct vp_range vp_prefix_range(const struct vp_prefix *p);
/* The prefix of length len holding a (host bits cleared). */
struct vp_prefix vp_prefix_of(const struct vp_addr *a, unsigned len);
bool vp_prefix_contains(const struct vp_prefix *p, const struct vp_addr *a);
bool vp_range_contains(const struct vp_range *r, const struct vp_addr *a);
/* r lies wholly inside outer. */
bool vp_range_within(const struct vp_range *r, const struct vp_range *outer);
bool vp_range_overlaps(const struct vp_range *r, const struct vp_range *s);
/* The IPv4 netmask of a prefix length, host order (24 -> 0xffffff00). */
uint32_t vp_netmask4(unsigned len);
/* Prefix length of a contiguous IPv4 netmask, or -1 if it is not one. */
int vp_netmask4_len(uint32_t mask);

#endif
