/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A sparse hierarchical bitmap over [0, nbits), nbits up to 2^64 - 1.
 *
 * A 64-ary tree: every node holds, per child, a "full" bit and a child
 * pointer; a leaf level holds plain 64-bit words.  A missing child is all
 * clear, unless its "full" bit says it is all set, so both an empty /64 and
 * a wholly excluded /65 of it cost one node.  Finding the first clear bit,
 * setting and clearing one bit each touch one node per level (at most 11),
 * whatever the size or the fill: no scans.
 */
#ifndef VP_BITSET_H
#define VP_BITSET_H

#include <stddef.h>
#include <stdint.h>

#define VP_BITSET_NONE UINT64_MAX

struct vp_bitset;

/* A bitset of nbits clear bits (1 <= nbits <= UINT64_MAX); NULL on ENOMEM. */
struct vp_bitset *vp_bitset_new(uint64_t nbits);
void vp_bitset_free(struct vp_bitset *set);

uint64_t vp_bitset_size(const struct vp_bitset *set);
/* Number of set bits. */
uint64_t vp_bitset_count(const struct vp_bitset *set);
/* Bytes of memory held, the struct included. */
size_t vp_bitset_memory(const struct vp_bitset *set);

/* Whether bit i is set; false for i >= size. */
int vp_bitset_test(const struct vp_bitset *set, uint64_t i);
/* Set / clear bit i.  0, -ERANGE (i >= size), -ENOMEM (clearing inside a
 * full subtree materialises nodes).  Idempotent. */
int vp_bitset_set(struct vp_bitset *set, uint64_t i);
int vp_bitset_clear(struct vp_bitset *set, uint64_t i);
/* Set every bit of [first, last]; O(levels * 64) whatever the span.
 * 0, -ERANGE, -ENOMEM. */
int vp_bitset_set_range(struct vp_bitset *set, uint64_t first, uint64_t last);
/* Lowest clear bit >= from, or VP_BITSET_NONE. */
uint64_t vp_bitset_find_clear(const struct vp_bitset *set, uint64_t from);
/* Lowest set bit >= from, or VP_BITSET_NONE (walks used subtrees only). */
uint64_t vp_bitset_find_set(const struct vp_bitset *set, uint64_t from);

#endif
