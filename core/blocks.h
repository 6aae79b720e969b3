/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An allocator of equal, aligned blocks carved from one address range:
 * single addresses (block length 32 or 128), /30s for net30, or routed
 * subnets (a /24 out of a /16, a /64 out of a /48).
 *
 * The blocks are those of prefix length block_len lying wholly inside the
 * range.  Exclusions take away every block they touch, for good; they are
 * not counted in the size.  Allocation returns the lowest free block in a
 * time independent of the size and fill (see bitset.h).
 */
#ifndef VP_BLOCKS_H
#define VP_BLOCKS_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

struct vp_blocks;

/* Blocks of length block_len in range.  0, -EINVAL (block_len shorter than
 * the family allows, or longer than its width), -E2BIG (2^64 blocks or more), -ENOSPC (no whole block fits), -ENOMEM. */
int vp_blocks_new(struct vp_blocks **out, const struct vp_range *range, unsigned block_len);
void vp_blocks_free(struct vp_blocks *b);

/* Take away, for good, every block overlapping r (other families ignored).
 * Exclusions come before the first allocation (a block allocated already
 * stops counting as used).  0, -ENOMEM; after -ENOMEM, b is fit only for
 * vp_blocks_free(). */
int vp_blocks_exclude(struct vp_blocks *b, const struct vp_range *r);

/* Blocks that can be handed out: all blocks minus the excluded ones. */
uint64_t vp_blocks_size(const struct vp_blocks *b);
/* Blocks allocated now. */
uint64_t vp_blocks_used(const struct vp_blocks *b);
unsigned vp_blocks_block_len(const struct vp_blocks *b);
size_t vp_blocks_memory(const struct vp_blocks *b);

/* Lowest free block into *out.  0, -ENOSPC, -ENOMEM. */
int vp_blocks_alloc(struct vp_blocks *b, struct vp_prefix *out);
/* Allocate the block holding a.  0, -EEXIST (already allocated),
 * -EDOM (outside the range or excluded), -ENOMEM. */
int vp_blocks_take(struct vp_blocks *b, const struct vp_addr *a);
/* Free the block holding a.  0, -ENOENT (not allocated), -EDOM. */
int vp_blocks_release(struct vp_blocks *b, const struct vp_addr *a);
/* Free the block the last alloc or take returned, if it is still allocated
 * (undo of a step that failed later).  0, -ENOENT. */
int vp_blocks_release_last(struct vp_blocks *b);
/* Whether a lies in an allocatable (not excluded) block of b. */
bool vp_blocks_owns(const struct vp_blocks *b, const struct vp_addr *a);
/* Whether the block holding a is allocated now. */
bool vp_blocks_is_used(const struct vp_blocks *b, const struct vp_addr *a);

#endif
