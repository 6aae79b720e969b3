/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The sparse hierarchical bitset, against a plain array on random work. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bitset.h"

/* Fixed seed: a failure replays the same way. */
static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void bitset__tiny__set_clear_find(void **state)
{
	struct vp_bitset *s = vp_bitset_new(3);

	(void)state;
	assert_int_equal(vp_bitset_find_clear(s, 0), 0);
	assert_int_equal(vp_bitset_set(s, 0), 0);
	assert_int_equal(vp_bitset_set(s, 1), 0);
	assert_int_equal(vp_bitset_find_clear(s, 0), 2);
	assert_int_equal(vp_bitset_set(s, 2), 0);
	assert_int_equal(vp_bitset_find_clear(s, 0), VP_BITSET_NONE);
	assert_int_equal(vp_bitset_set(s, 3), -ERANGE);
	assert_int_equal(vp_bitset_count(s), 3);
	assert_int_equal(vp_bitset_clear(s, 1), 0);
	assert_int_equal(vp_bitset_find_clear(s, 0), 1);
	assert_int_equal(vp_bitset_find_set(s, 1), 2);
	vp_bitset_free(s);
}

static void bitset__full_range_of_2_64_minus_1__costs_nodes_not_bits(void **state)
{
	struct vp_bitset *s = vp_bitset_new(UINT64_MAX);

	(void)state;
	assert_int_equal(vp_bitset_set_range(s, 0, UINT64_MAX - 2), 0);
	assert_int_equal(vp_bitset_count(s), UINT64_MAX - 1);
	assert_int_equal(vp_bitset_find_clear(s, 0), UINT64_MAX - 1);
	assert_true(vp_bitset_memory(s) < 64 * 1024);
	/* Clearing inside a full subtree materialises only its path. */
	assert_int_equal(vp_bitset_clear(s, 1ULL << 40), 0);
	assert_int_equal(vp_bitset_find_clear(s, 0), 1ULL << 40);
	assert_int_equal(vp_bitset_count(s), UINT64_MAX - 2);
	assert_false(vp_bitset_test(s, 1ULL << 40));
	assert_true(vp_bitset_test(s, (1ULL << 40) + 1));
	assert_true(vp_bitset_memory(s) < 64 * 1024);
	vp_bitset_free(s);
}

static void bitset__size_not_multiple_of_64__ends_at_size(void **state)
{
	static const uint64_t sizes[] = { 1, 2, 63, 65, 100, 4095, 4097, 262145 };

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); ++k) {
		uint64_t n = sizes[k];
		struct vp_bitset *s = vp_bitset_new(n);

		assert_int_equal(vp_bitset_size(s), n);
		assert_int_equal(vp_bitset_set_range(s, 0, n - 1), 0);
		assert_int_equal(vp_bitset_count(s), n);
		assert_int_equal(vp_bitset_find_clear(s, 0), VP_BITSET_NONE);
		assert_int_equal(vp_bitset_find_set(s, n - 1), n - 1);
		assert_int_equal(vp_bitset_find_set(s, n), VP_BITSET_NONE);
		assert_int_equal(vp_bitset_set(s, n), -ERANGE);
		assert_int_equal(vp_bitset_clear(s, n), -ERANGE);
		assert_int_equal(vp_bitset_set_range(s, 0, n), -ERANGE);
		assert_false(vp_bitset_test(s, n));
		assert_int_equal(vp_bitset_clear(s, n - 1), 0);
		assert_int_equal(vp_bitset_find_clear(s, 0), n - 1);
		assert_int_equal(vp_bitset_count(s), n - 1);
		vp_bitset_free(s);
	}
}

static void bitset__set_and_clear__are_idempotent_and_count_exactly(void **state)
{
	struct vp_bitset *s = vp_bitset_new(1 << 20);

	(void)state;
	assert_int_equal(vp_bitset_set(s, 5), 0);
	assert_int_equal(vp_bitset_set(s, 5), 0);
	assert_int_equal(vp_bitset_count(s), 1);
	assert_int_equal(vp_bitset_clear(s, 5), 0);
	assert_int_equal(vp_bitset_clear(s, 5), 0);
	assert_int_equal(vp_bitset_count(s), 0);
	assert_int_equal(vp_bitset_set_range(s, 10, 5000), 0);
	assert_int_equal(vp_bitset_set_range(s, 4000, 9000), 0);	/* overlaps */
	assert_int_equal(vp_bitset_count(s), 8991);
	assert_int_equal(vp_bitset_set_range(s, 5, 4), -ERANGE);
	assert_int_equal(vp_bitset_find_set(s, 0), 10);
	assert_int_equal(vp_bitset_find_clear(s, 10), 9001);
	vp_bitset_free(s);
}

static void bitset__set_range_across_levels__whole_subtrees_cost_no_memory(void **state)
{
	struct vp_bitset *s = vp_bitset_new(UINT64_MAX);
	size_t empty = vp_bitset_memory(s);
	uint64_t half = 1ULL << 63;

	(void)state;
	/* A /65 of a /64: half the space, set without touching its bits. */
	assert_int_equal(vp_bitset_set_range(s, half, UINT64_MAX - 1), 0);
	assert_int_equal(vp_bitset_count(s), half - 1);
	assert_true(vp_bitset_memory(s) - empty < 16 * 1024);
	assert_int_equal(vp_bitset_find_clear(s, half - 1), half - 1);
	assert_int_equal(vp_bitset_find_clear(s, half), VP_BITSET_NONE);
	assert_int_equal(vp_bitset_find_set(s, 0), half);
	/* A range not aligned to anything, crossing every level. */
	assert_int_equal(vp_bitset_set_range(s, 12345, (1ULL << 50) + 77), 0);
	assert_int_equal(vp_bitset_count(s), half - 1 + (1ULL << 50) + 77 - 12345 + 1);
	assert_int_equal(vp_bitset_find_set(s, 0), 12345);
	assert_int_equal(vp_bitset_find_clear(s, 12345), (1ULL << 50) + 78);
	assert_true(vp_bitset_test(s, 1ULL << 40));
	assert_false(vp_bitset_test(s, 12344));
	assert_true(vp_bitset_memory(s) - empty < 64 * 1024);
	vp_bitset_free(s);
}

static void bitset__clear_inside_full_range__materialises_only_the_path(void **state)
{
	struct vp_bitset *s = vp_bitset_new(1ULL << 40);
	uint64_t i = (1ULL << 39) + 4097;

	(void)state;
	assert_int_equal(vp_bitset_set_range(s, 0, (1ULL << 40) - 1), 0);
	assert_int_equal(vp_bitset_clear(s, i), 0);
	assert_int_equal(vp_bitset_count(s), (1ULL << 40) - 1);
	assert_false(vp_bitset_test(s, i));
	assert_true(vp_bitset_test(s, i - 1));
	assert_true(vp_bitset_test(s, i + 1));
	assert_int_equal(vp_bitset_find_clear(s, 0), i);
	assert_int_equal(vp_bitset_find_set(s, i), i + 1);
	assert_true(vp_bitset_memory(s) < 16 * 1024);
	/* Setting it again collapses the path back. */
	assert_int_equal(vp_bitset_set(s, i), 0);
	assert_int_equal(vp_bitset_count(s), 1ULL << 40);
	assert_int_equal(vp_bitset_find_clear(s, 0), VP_BITSET_NONE);
	vp_bitset_free(s);
}

static void bitset__emptied__gives_memory_back(void **state)
{
	struct vp_bitset *s = vp_bitset_new(1 << 24);
	size_t empty = vp_bitset_memory(s);

	(void)state;
	for (uint64_t i = 0; i < (1 << 24); i += 4099)
		assert_int_equal(vp_bitset_set(s, i), 0);
	assert_true(vp_bitset_memory(s) > 1 << 20);
	for (uint64_t i = 0; i < (1 << 24); i += 4099)
		assert_int_equal(vp_bitset_clear(s, i), 0);
	assert_int_equal(vp_bitset_count(s), 0);
	assert_true(vp_bitset_memory(s) < empty + 8 * 1024);	/* spares only */
	vp_bitset_free(s);
}

static void bitset__random_work__matches_plain_array(void **state)
{
	static const uint64_t sizes[] = { 1, 63, 64, 65, 4095, 4096, 4097, 70000, 300000 };

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); ++k) {
		uint64_t n = sizes[k], count = 0;
		struct vp_bitset *s = vp_bitset_new(n);
		uint8_t *m = calloc(n, 1);

		for (int step = 0; step < 20000; ++step) {
			uint64_t i = rnd() % n, j, op = rnd() % 10, want;

			if (op < 4) {
				count += !m[i];
				m[i] = 1;
				assert_int_equal(vp_bitset_set(s, i), 0);
			} else if (op < 7) {
				count -= m[i];
				m[i] = 0;
				assert_int_equal(vp_bitset_clear(s, i), 0);
			} else if (op < 8) {
				j = i + rnd() % (n - i < 5000 ? n - i : 5000);
				for (uint64_t x = i; x <= j; ++x) {
					count += !m[x];
					m[x] = 1;
				}
				assert_int_equal(vp_bitset_set_range(s, i, j), 0);
			} else {
				for (want = i; want < n && m[want]; ++want)
					;
				assert_int_equal(vp_bitset_find_clear(s, i),
						 want < n ? want : VP_BITSET_NONE);
				for (want = i; want < n && !m[want]; ++want)
					;
				assert_int_equal(vp_bitset_find_set(s, i),
						 want < n ? want : VP_BITSET_NONE);
			}
			assert_int_equal(vp_bitset_test(s, i), m[i]);
			assert_int_equal(vp_bitset_count(s), count);
		}
		free(m);
		vp_bitset_free(s);
	}
}

static void bitset__full_slash8__fits_in_4_mib(void **state)
{
	struct vp_bitset *s = vp_bitset_new(1 << 24);

	(void)state;
	assert_true(vp_bitset_memory(s) < 4096);
	for (uint64_t i = 0; i < (1 << 24); ++i)
		assert_int_equal(vp_bitset_set(s, vp_bitset_find_clear(s, 0)), 0);
	assert_int_equal(vp_bitset_find_clear(s, 0), VP_BITSET_NONE);
	assert_int_equal(vp_bitset_count(s), 1 << 24);
	assert_true(vp_bitset_memory(s) <= 4u << 20);
	vp_bitset_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bitset__tiny__set_clear_find),
		cmocka_unit_test(bitset__full_range_of_2_64_minus_1__costs_nodes_not_bits),
		cmocka_unit_test(bitset__size_not_multiple_of_64__ends_at_size),
		cmocka_unit_test(bitset__set_and_clear__are_idempotent_and_count_exactly),
		cmocka_unit_test(bitset__set_range_across_levels__whole_subtrees_cost_no_memory),
		cmocka_unit_test(bitset__clear_inside_full_range__materialises_only_the_path),
		cmocka_unit_test(bitset__emptied__gives_memory_back),
		cmocka_unit_test(bitset__random_work__matches_plain_array),
		cmocka_unit_test(bitset__full_slash8__fits_in_4_mib),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
