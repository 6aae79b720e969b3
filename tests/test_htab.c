/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The hash table of core/htab.h, against a plain array on random work. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "htab.h"

#define N 20000

/* Fixed seed: a failure replays the same way. */
static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct item {
	unsigned key;
	bool in;
};

static bool item_eq(const void *item, const void *key)
{
	return ((const struct item *)item)->key == *(const unsigned *)key;
}

/* Few distinct hashes: long probe runs that wrap and collide. */
static uint64_t hash_of(unsigned key, unsigned spread)
{
	return (uint64_t)(key % spread) * 0x9e3779b97f4a7c15ULL;
}

static void check_all(const struct vp_htab *t, struct item *items, unsigned spread)
{
	size_t n = 0, walked = 0;

	for (unsigned i = 0; i < N; ++i) {
		struct item *found = vp_htab_find(t, hash_of(i, spread), item_eq, &i);

		assert_ptr_equal(found, items[i].in ? &items[i] : NULL);
		n += items[i].in;
	}
	assert_int_equal(t->n, n);
	for (size_t i = 0; i < vp_htab_slots(t); ++i)
		walked += vp_htab_at(t, i) != NULL;
	assert_int_equal(walked, n);
}

static void run(unsigned spread)
{
	struct item *items = calloc(N, sizeof(*items));
	struct vp_htab t = { 0 };

	for (unsigned i = 0; i < N; ++i)
		items[i].key = i;
	for (unsigned round = 0; round < 6 * N; ++round) {
		unsigned i = (unsigned)(rnd() % N);
		/* Mostly inserts first, so that the table grows while
		 * removals happen; then as many removals as inserts. */
		bool add = round < 2 * N ? rnd() % 4 != 0 : rnd() % 2 == 0;

		if (add && !items[i].in) {
			assert_int_equal(vp_htab_insert(&t, hash_of(i, spread), &items[i]), 0);
			items[i].in = true;
		} else if (!add) {
			assert_int_equal(vp_htab_remove(&t, hash_of(i, spread), &items[i]),
					 items[i].in);
			items[i].in = false;
		}
		if (round % 997 == 0)
			check_all(&t, items, spread);
	}
	check_all(&t, items, spread);
	vp_htab_settle(&t);
	assert_null(t.old);
	check_all(&t, items, spread);
	vp_htab_free(&t);
	free(items);
}

static void htab__random_work_while_growing__finds_exactly_what_is_in(void **state)
{
	(void)state;
	run(UINT32_MAX);
}

static void htab__colliding_hashes__removals_keep_probe_runs_whole(void **state)
{
	(void)state;
	run(61);
}

static void htab__reserve__takes_n_items_without_growing(void **state)
{
	static struct item items[1000];
	struct vp_htab t;

	(void)state;
	assert_int_equal(vp_htab_init(&t, 0), 0);
	vp_htab_reserve(&t, 1000);
	for (unsigned i = 0; i < 1000; ++i) {
		items[i].key = i;
		assert_int_equal(vp_htab_insert(&t, hash_of(i, UINT32_MAX), &items[i]), 0);
		assert_null(t.old);
	}
	assert_true(vp_htab_slots(&t) * 3 >= 1000 * 4);
	vp_htab_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(htab__random_work_while_growing__finds_exactly_what_is_in),
		cmocka_unit_test(htab__colliding_hashes__removals_keep_probe_runs_whole),
		cmocka_unit_test(htab__reserve__takes_n_items_without_growing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
