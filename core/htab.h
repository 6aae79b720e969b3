/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An open-addressing hash table of items keyed by a 64-bit hash the caller
 * computes, with the caller's equality: linear probing, backward-shift
 * deletion (no tombstones), kept at most 3/4 full.
 *
 * It grows a step at a time, so that no call pays for moving every item: a
 * table twice as big takes the new items, and each insert or removal moves
 * the items of a few slots of the old one.  A lookup looks in both.
 *
 * Items are the caller's (never freed here) and must not be NULL; an item
 * may also be a small number cast to a pointer.  A table is a plain struct:
 * zero it, or vp_htab_init() it with a first capacity.
 */
#ifndef VP_HTAB_H
#define VP_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vp_htab_entry {
	uint64_t hash;
	void *item;			/* NULL: empty */
};

struct vp_htab {
	struct vp_htab_entry *tab;
	size_t mask, n;			/* capacity - 1; items in both tables */
	struct vp_htab_entry *old;	/* while growing: items not moved yet */
	size_t old_mask, old_next;	/* its capacity - 1; next slot to empty */
};

/* A table for at least n items; 0 or -ENOMEM. */
int vp_htab_init(struct vp_htab *t, size_t n);
void vp_htab_free(struct vp_htab *t);

/* Add item under hash h (not looked up first: the caller knows it is not
 * there).  0 or -ENOMEM (then the table is as it was). */
int vp_htab_insert(struct vp_htab *t, uint64_t h, void *item);
/* Take item, added under h, out; false if it is not there. */
bool vp_htab_remove(struct vp_htab *t, uint64_t h, const void *item);
/* Before many inserts into an empty table: room for n items at once, so
 * that they neither grow it step by step nor look in two tables.  Does
 * nothing when the table is not empty or on ENOMEM (it grows as it fills). */
void vp_htab_reserve(struct vp_htab *t, size_t n);
/* Finish growing (before a walk that removes items as it goes). */
void vp_htab_settle(struct vp_htab *t);

/* Walks: slot i of both tables together, i below vp_htab_slots(); the item
 * there or NULL.  Removing the item at i may move a later one into i. */
static inline size_t vp_htab_slots(const struct vp_htab *t)
{
	return t->tab ? t->mask + 1 + (t->old ? t->old_mask + 1 : 0) : 0;
}

static inline void *vp_htab_at(const struct vp_htab *t, size_t i)
{
	return i <= t->mask ? t->tab[i].item : t->old[i - t->mask - 1].item;
}

/* Bytes of the slots. */
static inline size_t vp_htab_memory(const struct vp_htab *t)
{
	return vp_htab_slots(t) * sizeof(struct vp_htab_entry);
}

/* Ask for the home slot of h (before working on something else). */
static inline void vp_htab_prefetch(const struct vp_htab *t, uint64_t h)
{
	if (t->tab)
		__builtin_prefetch(&t->tab[h & t->mask]);
}

static inline void *vp_htab_find_in(const struct vp_htab_entry *tab, size_t mask, uint64_t h,
				    bool (*eq)(const void *item, const void *key), const void *key)
{
	for (size_t i = h & mask; tab[i].item; i = (i + 1) & mask)
		if (tab[i].hash == h && eq(tab[i].item, key))
			return tab[i].item;
	return NULL;
}

/* The item under h for which eq(item, key) holds, or NULL.  Inline, so
 * that a caller's static eq is inlined too. */
static inline void *vp_htab_find(const struct vp_htab *t, uint64_t h,
				 bool (*eq)(const void *item, const void *key), const void *key)
{
	void *item;

	if (!t->tab)
		return NULL;
	item = vp_htab_find_in(t->tab, t->mask, h, eq, key);
	if (!item && t->old)
		item = vp_htab_find_in(t->old, t->old_mask, h, eq, key);
	return item;
}

#endif
