/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A node covers 2^(12 + 6 * level) bits: a leaf (level 0) holds 64 words of
 * 64 bits; an interior node holds 64 children.  Per child (or word) two
 * masks: "full" (every bit set) and "any" (some bit set).  An interior node
 * keeps no child that is all clear or all set: the child pointer is NULL
 * and the full bit tells which.  A child is freed the moment it becomes
 * empty or full, and made again when a bit inside it changes; one freed
 * node per level and kind waits as a spare, ready for use, so that a client
 * coming and going at such an edge neither calls malloc nor fills memory.  Each node counts the bits set below it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bitset.h"

struct node {
	uint64_t full, any;
	uint64_t count;
	union {
		struct node *child[64];
		uint64_t word[64];
	};
};

/* Levels: a leaf covers 2^12 bits, each level above 64 times more; ten
 * levels (0-9) reach 2^66 > 2^64 - 1. */
#define MAX_LEVELS 10

struct vp_bitset {
	uint64_t nbits;
	unsigned levels;		/* of the root: 0 = the root is a leaf */
	size_t nodes;			/* allocated, spares included */
	struct node *root;
	/* At most one spare node per level, all clear ([0]) or all set ([1]),
	 * in the state node_new() would give it but for the link in child[0]. */
	struct node *spare[2][MAX_LEVELS];
};

#define BIT(i) ((uint64_t)1 << (i))

/* log2 of the bits a child (or, at level 0, a word) of a level-l node covers. */
static unsigned child_shift(unsigned level)
{
	return 6 + 6 * level;
}

static uint64_t child_index(uint64_t i, unsigned level)
{
	return (i >> child_shift(level)) & 63;
}

/* Bits covered by one child of a level-l node (2^60 at most). */
static uint64_t child_span(unsigned level)
{
	return BIT(child_shift(level));
}

/* Mask of positions >= k (k < 64). */
static uint64_t from_mask(unsigned k)
{
	return ~(uint64_t)0 << k;
}

/* Fill a fresh node: all clear, or all set. */
static void node_init(struct node *n, bool full, unsigned level)
{
	memset(n, 0, sizeof(*n));
	if (full) {
		n->full = n->any = ~(uint64_t)0;
		n->count = child_span(level) << 6;	/* materialised nodes are below the root */
		if (level == 0)
			memset(n->word, 0xff, sizeof(n->word));
	}
}

static struct node *node_new(struct vp_bitset *set, bool full, unsigned level)
{
	struct node *n = set->spare[full][level];

	if (n) {
		set->spare[full][level] = NULL;
		if (level)
			n->child[0] = NULL;
		else
			n->word[0] = full ? ~(uint64_t)0 : 0;
		return n;
	}
	n = malloc(sizeof(*n));
	if (!n)
		return NULL;
	set->nodes++;
	node_init(n, full, level);
	return n;
}

/* Free a subtree; a node all clear or all set may be kept as a spare. */
static void node_free(struct vp_bitset *set, struct node *n, unsigned level)
{
	int kind = -1;

	if (!n)
		return;
	/* Between calls a child is kept only if some but not all of its bits
	 * are set. */
	for (uint64_t m = level ? n->any & ~n->full : 0; m; m &= m - 1) {
		unsigned c = (unsigned)__builtin_ctzll(m);

		node_free(set, n->child[c], level - 1);
		n->child[c] = NULL;
	}
	if (!n->count)
		kind = 0;
	else if (n->count == child_span(level) << 6)
		kind = 1;
	if (kind >= 0 && !set->spare[kind][level]) {
		set->spare[kind][level] = n;
		return;
	}
	set->nodes--;
	free(n);
}

struct vp_bitset *vp_bitset_new(uint64_t nbits)
{
	struct vp_bitset *set;

	if (!nbits)
		return NULL;
	set = calloc(1, sizeof(*set));
	if (!set)
		return NULL;
	set->nbits = nbits;
	/* A level-l node covers 2^(12 + 6l) bits; level 9 reaches 2^66. */
	while (set->levels < MAX_LEVELS - 1 && (nbits - 1) >> (12 + 6 * set->levels))
		set->levels++;
	set->root = node_new(set, false, set->levels);
	if (!set->root) {
		free(set);
		return NULL;
	}
	return set;
}

void vp_bitset_free(struct vp_bitset *set)
{
	if (!set)
		return;
	node_free(set, set->root, set->levels);
	for (unsigned level = 0; level < MAX_LEVELS; ++level) {
		free(set->spare[0][level]);
		free(set->spare[1][level]);
	}
	free(set);
}

uint64_t vp_bitset_size(const struct vp_bitset *set)
{
	return set->nbits;
}

uint64_t vp_bitset_count(const struct vp_bitset *set)
{
	return set->root->count;
}

size_t vp_bitset_memory(const struct vp_bitset *set)
{
	return sizeof(*set) + set->nodes * sizeof(struct node);
}

int vp_bitset_test(const struct vp_bitset *set, uint64_t i)
{
	const struct node *n = set->root;

	if (i >= set->nbits)
		return 0;
	for (unsigned level = set->levels; level > 0; --level) {
		uint64_t c = child_index(i, level);

		if (n->full & BIT(c))
			return 1;
		if (!n->child[c])
			return 0;
		n = n->child[c];
	}
	return (n->word[child_index(i, 0)] >> (i & 63)) & 1;
}

/* Refresh a level-l node's masks for child c after the child changed, and
 * drop the child if it is now all clear or all set. */
static void update_child(struct vp_bitset *set, struct node *n, uint64_t c, unsigned level)
{
	uint64_t count = n->child[c]->count;

	if (count == child_span(level))
		n->full |= BIT(c);
	else
		n->full &= ~BIT(c);
	if (count)
		n->any |= BIT(c);
	else
		n->any &= ~BIT(c);
	if (!count || count == child_span(level)) {
		node_free(set, n->child[c], level - 1);
		n->child[c] = NULL;
	}
}

/* Set bit i below n; returns 1 if it was clear, 0 if set, -ENOMEM. */
static int node_set(struct vp_bitset *set, struct node *n, unsigned level, uint64_t i)
{
	uint64_t c = child_index(i, level);
	int ret;

	if (n->full & BIT(c))
		return 0;
	if (level == 0) {
		if (n->word[c] & BIT(i & 63))
			return 0;
		n->word[c] |= BIT(i & 63);
		n->any |= BIT(c);
		if (n->word[c] == ~(uint64_t)0)
			n->full |= BIT(c);
		n->count++;
		return 1;
	}
	if (!n->child[c]) {
		n->child[c] = node_new(set, false, level - 1);
		if (!n->child[c])
			return -ENOMEM;
	}
	ret = node_set(set, n->child[c], level - 1, i);
	if (ret > 0)
		n->count++;
	update_child(set, n, c, level);		/* also drops a child left empty by -ENOMEM */
	return ret;
}

/* Clear bit i below n; returns 1 if it was set, 0 if clear, -ENOMEM. */
static int node_clear(struct vp_bitset *set, struct node *n, unsigned level, uint64_t i)
{
	uint64_t c = child_index(i, level);
	int ret;

	if (level == 0) {
		if (!(n->word[c] & BIT(i & 63)))
			return 0;
		n->word[c] &= ~BIT(i & 63);
		n->full &= ~BIT(c);
		if (!n->word[c])
			n->any &= ~BIT(c);
		n->count--;
		return 1;
	}
	if (!n->child[c]) {
		if (!(n->full & BIT(c)))
			return 0;
		/* A full subtree without memory: materialise it, all set. */
		n->child[c] = node_new(set, true, level - 1);
		if (!n->child[c])
			return -ENOMEM;
	}
	ret = node_clear(set, n->child[c], level - 1, i);
	if (ret > 0)
		n->count--;
	update_child(set, n, c, level);		/* also drops a child left empty by -ENOMEM */
	return ret;
}

int vp_bitset_set(struct vp_bitset *set, uint64_t i)
{
	int ret;

	if (i >= set->nbits)
		return -ERANGE;
	ret = node_set(set, set->root, set->levels, i);
	return ret < 0 ? ret : 0;
}

int vp_bitset_clear(struct vp_bitset *set, uint64_t i)
{
	int ret;

	if (i >= set->nbits)
		return -ERANGE;
	ret = node_clear(set, set->root, set->levels, i);
	return ret < 0 ? ret : 0;
}

/* Set [first, last] (absolute) within node n whose first bit is base. */
static int node_set_range(struct vp_bitset *set, struct node *n, unsigned level, uint64_t base,
			  uint64_t first, uint64_t last)
{
	uint64_t span = child_span(level);
	uint64_t c0 = (first - base) >> child_shift(level);
	uint64_t c1 = (last - base) >> child_shift(level);

	for (uint64_t c = c0; c <= c1; ++c) {
		uint64_t cb = base + c * span, ce = cb + (span - 1);
		uint64_t lo = first > cb ? first : cb, hi = last < ce ? last : ce;
		uint64_t before;
		int ret;

		if (n->full & BIT(c))
			continue;
		if (level == 0) {
			uint64_t mask = ~(uint64_t)0;

			mask &= from_mask((unsigned)(lo & 63));
			if ((hi & 63) != 63)
				mask &= ~from_mask((unsigned)(hi & 63) + 1);
			n->count += (uint64_t)__builtin_popcountll(mask & ~n->word[c]);
			n->word[c] |= mask;
			n->any |= BIT(c);
			if (n->word[c] == ~(uint64_t)0)
				n->full |= BIT(c);
			continue;
		}
		before = n->child[c] ? n->child[c]->count : 0;
		if (lo == cb && hi == ce) {
			/* The whole child: no memory needed. */
			node_free(set, n->child[c], level - 1);
			n->child[c] = NULL;
			n->count += span - before;
			n->full |= BIT(c);
			n->any |= BIT(c);
			continue;
		}
		if (!n->child[c]) {
			n->child[c] = node_new(set, false, level - 1);
			if (!n->child[c])
				return -ENOMEM;
		}
		ret = node_set_range(set, n->child[c], level - 1, cb, lo, hi);
		n->count += n->child[c]->count - before;
		update_child(set, n, c, level);
		if (ret)
			return ret;
	}
	return 0;
}

int vp_bitset_set_range(struct vp_bitset *set, uint64_t first, uint64_t last)
{
	if (first > last || last >= set->nbits)
		return -ERANGE;
	return node_set_range(set, set->root, set->levels, 0, first, last);
}

/* The root's children that hold bits below nbits (the top level may need
 * fewer than 64, and their first bits must not wrap around 2^64). */
static uint64_t root_limit(const struct vp_bitset *set)
{
	uint64_t last = (set->nbits - 1) >> child_shift(set->levels);

	return last >= 63 ? ~(uint64_t)0 : ~from_mask((unsigned)last + 1);
}

/* Lowest clear bit >= from below n (base: its first bit), or NONE. */
static uint64_t node_find_clear(const struct node *n, unsigned level, uint64_t base,
				uint64_t from, uint64_t limit)
{
	uint64_t start = from > base ? child_index(from, level) : 0;
	uint64_t cand = ~n->full & from_mask((unsigned)start) & limit;

	while (cand) {
		unsigned c = (unsigned)__builtin_ctzll(cand);
		uint64_t cb = base + ((uint64_t)c << child_shift(level));
		uint64_t lo = from > cb ? from : cb;

		cand &= cand - 1;
		if (level == 0) {
			uint64_t free_bits = ~n->word[c] & from_mask((unsigned)(lo & 63));

			if (free_bits)
				return cb + (uint64_t)__builtin_ctzll(free_bits);
			continue;
		}
		if (!n->child[c])
			return lo;
		lo = node_find_clear(n->child[c], level - 1, cb, lo, ~(uint64_t)0);
		if (lo != VP_BITSET_NONE)
			return lo;
	}
	return VP_BITSET_NONE;
}

static uint64_t node_find_set(const struct node *n, unsigned level, uint64_t base, uint64_t from,
			      uint64_t limit)
{
	uint64_t start = from > base ? child_index(from, level) : 0;
	uint64_t cand = n->any & from_mask((unsigned)start) & limit;

	while (cand) {
		unsigned c = (unsigned)__builtin_ctzll(cand);
		uint64_t cb = base + ((uint64_t)c << child_shift(level));
		uint64_t lo = from > cb ? from : cb;

		cand &= cand - 1;
		if (level == 0) {
			uint64_t bits = n->word[c] & from_mask((unsigned)(lo & 63));

			if (bits)
				return cb + (uint64_t)__builtin_ctzll(bits);
			continue;
		}
		if (n->full & BIT(c) && !n->child[c])
			return lo;
		lo = node_find_set(n->child[c], level - 1, cb, lo, ~(uint64_t)0);
		if (lo != VP_BITSET_NONE)
			return lo;
	}
	return VP_BITSET_NONE;
}

uint64_t vp_bitset_find_clear(const struct vp_bitset *set, uint64_t from)
{
	uint64_t i;

	if (from >= set->nbits)
		return VP_BITSET_NONE;
	i = node_find_clear(set->root, set->levels, 0, from, root_limit(set));
	return i < set->nbits ? i : VP_BITSET_NONE;
}

uint64_t vp_bitset_find_set(const struct vp_bitset *set, uint64_t from)
{
	uint64_t i;

	if (from >= set->nbits)
		return VP_BITSET_NONE;
	i = node_find_set(set->root, set->levels, 0, from, root_limit(set));
	return i < set->nbits ? i : VP_BITSET_NONE;
}
