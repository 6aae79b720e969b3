/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hash table of htab.h.
 *
 * Growing: every slot of the old table before old_next is empty, so taking
 * an item out of old_next (which moves later ones back) keeps the old
 * table's probe runs whole and never fills a slot before it.  The old table
 * is empty long before the new one fills: it has half as many slots, and
 * was at most 3/4 full.
 */
#include <errno.h>
#include <stdlib.h>

#include "htab.h"

#define HTAB_FIRST 16			/* slots of a zeroed table's first */
#define HTAB_MOVE_STEP 32		/* old slots emptied per change */

int vp_htab_init(struct vp_htab *t, size_t n)
{
	size_t cap = HTAB_FIRST;

	*t = (struct vp_htab){ 0 };
	if (n > SIZE_MAX / 8 / sizeof(*t->tab))
		return -ENOMEM;
	while (cap / 4 * 3 < n)
		cap *= 2;
	t->tab = calloc(cap, sizeof(*t->tab));
	if (!t->tab)
		return -ENOMEM;
	t->mask = cap - 1;
	return 0;
}

void vp_htab_free(struct vp_htab *t)
{
	free(t->tab);
	free(t->old);
	*t = (struct vp_htab){ 0 };
}

static void put(struct vp_htab_entry *tab, size_t mask, uint64_t h, void *item)
{
	size_t i = h & mask;

	while (tab[i].item)
		i = (i + 1) & mask;
	tab[i].hash = h;
	tab[i].item = item;
}

/* Empty slot i.  Later entries of its probe run move back. */
static void remove_at(struct vp_htab_entry *tab, size_t mask, size_t i)
{
	for (size_t j = i;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!tab[j].item)
			break;
		home = tab[j].hash & mask;
		/* Entry j may fill the hole at i unless its home lies
		 * cyclically in (i, j]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			tab[i] = tab[j];
			i = j;
		}
	}
	tab[i].item = NULL;
}

static bool remove_from(struct vp_htab_entry *tab, size_t mask, uint64_t h, const void *item)
{
	size_t i = h & mask;

	for (; tab[i].item != item; i = (i + 1) & mask)
		if (!tab[i].item)
			return false;
	remove_at(tab, mask, i);
	return true;
}

static void move_some(struct vp_htab *t, size_t steps)
{
	while (t->old && steps--) {
		struct vp_htab_entry *e = &t->old[t->old_next];

		if (e->item) {
			put(t->tab, t->mask, e->hash, e->item);
			remove_at(t->old, t->old_mask, t->old_next);
			continue;	/* a later item may have moved here */
		}
		if (t->old_next++ == t->old_mask) {
			free(t->old);
			t->old = NULL;
		}
	}
}

void vp_htab_settle(struct vp_htab *t)
{
	move_some(t, SIZE_MAX);
}

/* Double the table; the items move later. */
static int grow(struct vp_htab *t)
{
	size_t cap = t->tab ? (t->mask + 1) * 2 : HTAB_FIRST;
	struct vp_htab_entry *bigger;

	vp_htab_settle(t);	/* not reached while growing: see above */
	bigger = calloc(cap, sizeof(*bigger));
	if (!bigger)
		return -ENOMEM;
	t->old = t->tab;
	t->old_mask = t->mask;
	t->old_next = 0;
	t->tab = bigger;
	t->mask = cap - 1;
	return 0;
}

int vp_htab_insert(struct vp_htab *t, uint64_t h, void *item)
{
	if ((!t->tab || (t->n + 1) * 4 > (t->mask + 1) * 3) && grow(t))
		return -ENOMEM;
	put(t->tab, t->mask, h, item);
	t->n++;
	move_some(t, HTAB_MOVE_STEP);
	return 0;
}

bool vp_htab_remove(struct vp_htab *t, uint64_t h, const void *item)
{
	if (!t->tab)
		return false;
	if (!remove_from(t->tab, t->mask, h, item) &&
	    !(t->old && remove_from(t->old, t->old_mask, h, item)))
		return false;
	t->n--;
	move_some(t, HTAB_MOVE_STEP);
	return true;
}

void vp_htab_reserve(struct vp_htab *t, size_t n)
{
	size_t cap = t->tab ? t->mask + 1 : HTAB_FIRST;
	struct vp_htab_entry *bigger;

	if (t->n || t->old || n > SIZE_MAX / 8 / sizeof(*bigger))
		return;
	while (cap / 4 * 3 < n)
		cap *= 2;
	if (t->tab && cap == t->mask + 1)
		return;
	bigger = calloc(cap, sizeof(*bigger));
	if (!bigger)
		return;
	free(t->tab);
	t->tab = bigger;
	t->mask = cap - 1;
}
