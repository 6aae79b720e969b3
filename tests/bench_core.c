/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Benchmarks of the engine (run on demand: make bench, or
 * ./tests/bench_core [clients]).  Prints figures; asserts nothing.
 *   1. free+allocate pair on IPv4 pools /24../8 at 50% and 99% fill, IPv6 /64:
 *      the fill is fragmented (every block taken, then a seeded random
 *      spread freed down to the fill; for the IPv6 counts, twice the count
 *      taken and half freed), and a pair frees a random in-use block and
 *      allocates the lowest free one
 *   2. memory of an empty and a full /8
 *   3. connect cost with N clients (default 1,000,000) online on a /8, with
 *      the journal on and fsync off, then churn (disconnect + connect)
 * Time is read per batch of 256 pairs (clock_gettime costs about as much as
 * a pair); p50 and p99 are over 4,000 batches, about 1e6 pairs.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "blocks.h"
#include "space.h"
#include "testlib.h"

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median and p99 of per-operation times measured in batches of 256. */
struct figures {
	double p50, p99;
};

static struct figures summarise(double *v, size_t n)
{
	struct figures f;

	qsort(v, n, sizeof(*v), cmp_double);
	f.p50 = v[n / 2];
	f.p99 = v[n * 99 / 100];
	return f;
}

/* splitmix64: a fixed seed gives every run the same holes. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n < 2^32 (Lemire's multiply-shift). */
static uint32_t random_below(uint64_t *state, uint32_t n)
{
	return (uint32_t)(((next_random(state) >> 32) * n) >> 32);
}

/* Allocate the lowest `taken` blocks, then free a random spread of them until
 * target are in use.  in_use gets the offsets (from first, in blocks) of
 * those still taken. */
static void fill_fragmented(struct vp_blocks *b, uint64_t taken, uint64_t target,
			    const struct vp_addr *first, unsigned shift, uint32_t *in_use,
			    uint64_t *rng)
{
	struct vp_prefix p;

	for (uint64_t i = 0; i < taken; ++i) {
		vp_blocks_alloc(b, &p);
		in_use[i] = (uint32_t)vp_addr_offset(&p.addr, first, shift);
	}
	/* A partial Fisher-Yates shuffle picks which go. */
	for (uint64_t i = 0; i < taken - target; ++i) {
		uint64_t j = i + random_below(rng, (uint32_t)(taken - i));
		uint32_t t = in_use[j];
		struct vp_addr a = vp_addr_add(first, t, shift);

		in_use[j] = in_use[i];
		in_use[i] = t;
		vp_blocks_release(b, &a);
	}
	memmove(in_use, in_use + (taken - target), target * sizeof(*in_use));
}

/* 256 distinct random indexes below n (n >= 512): no block is freed twice. */
static void pick_distinct(uint32_t pick[256], uint32_t n, uint64_t *rng)
{
	uint32_t seen[512];

	memset(seen, 0xff, sizeof(seen));
	for (int j = 0; j < 256;) {
		uint32_t v = random_below(rng, n), h = (v * 2654435761u) >> 23;

		while (seen[h] != UINT32_MAX && seen[h] != v)
			h = (h + 1) & 511;
		if (seen[h] == v)
			continue;
		seen[h] = v;
		pick[j++] = v;
	}
}

/* 256 pairs, timed: free a random in-use block, allocate the lowest free
 * one (with nothing in use: allocate one, free it).  Per pair, in ns.  In a
 * big pool the victims are read from in_use before the clock starts: a
 * random read of the benchmark's own 64 MiB list is no part of the
 * allocator's cost (the engine frees the address of the lease at hand). */
static double time_pairs(struct vp_blocks *b, uint64_t target, const struct vp_addr *first,
			 unsigned shift, uint32_t *in_use, uint64_t *rng)
{
	uint32_t pick[256];
	struct vp_addr victim[256];
	struct vp_prefix p, got[256];
	bool preload = target >= 512;
	double t0, t;

	if (preload) {
		pick_distinct(pick, (uint32_t)target, rng);
		for (int j = 0; j < 256; ++j)
			victim[j] = vp_addr_add(first, in_use[pick[j]], shift);
		t0 = now_ns();
		for (int j = 0; j < 256; ++j) {
			vp_blocks_release(b, &victim[j]);
			vp_blocks_alloc(b, &got[j]);
		}
		t = now_ns() - t0;
		for (int j = 0; j < 256; ++j)
			in_use[pick[j]] = (uint32_t)vp_addr_offset(&got[j].addr, first, shift);
		return t / 256;
	}
	for (int j = 0; j < 256 && target; ++j)
		pick[j] = random_below(rng, (uint32_t)target);
	t0 = now_ns();
	for (int j = 0; j < 256; ++j) {
		uint32_t *slot = target ? &in_use[pick[j]] : NULL;

		if (slot) {
			struct vp_addr a = vp_addr_add(first, *slot, shift);

			vp_blocks_release(b, &a);
		}
		vp_blocks_alloc(b, &p);
		if (slot)
			*slot = (uint32_t)vp_addr_offset(&p.addr, first, shift);
		else
			vp_blocks_release(b, &p.addr);
	}
	return (now_ns() - t0) / 256;
}

#define V6_64 "fd00::1-fd00::ffff:ffff:ffff:ffff"

/* taken blocks allocated (0: all of them), then a random spread freed until
 * fill of those taken are in use (a /64 cannot be taken whole). */
static void bench_pool(const char *label, const char *range_text, unsigned block_len,
		       uint64_t taken, double fill)
{
	struct vp_range r;
	struct vp_blocks *b;
	char err[VP_ERRLEN];
	uint64_t size, target, rng = 0x5eed;
	uint32_t *in_use;
	double batches[4000];
	struct vp_prefix p;
	struct vp_addr first;
	unsigned shift;

	if (!vp_range_parse(&r, range_text, err) || vp_blocks_new(&b, &r, block_len)) {
		printf("  %-24s cannot be made\n", label);
		return;
	}
	size = vp_blocks_size(b);
	if (!taken || taken > size)
		taken = size;
	target = (uint64_t)((double)taken * fill);
	shift = vp_family_bits(r.first.family) - block_len;
	vp_blocks_alloc(b, &p);			/* the lowest block: offsets count from it */
	first = p.addr;
	vp_blocks_release(b, &first);
	in_use = taken <= UINT32_MAX ? malloc((taken ? taken : 1) * sizeof(*in_use)) : NULL;
	if (!in_use) {
		printf("  %-24s too big for this benchmark\n", label);
		vp_blocks_free(b);
		return;
	}
	fill_fragmented(b, taken, target, &first, shift, in_use, &rng);
	for (size_t k = 0; k < 4000; ++k)
		batches[k] = time_pairs(b, target, &first, shift, in_use, &rng);
	{
		struct figures f = summarise(batches, 4000);

		printf("  %-24s %12" PRIu64 "  %8.1f  %8.1f  %10.3f\n", label, vp_blocks_used(b),
		       f.p50, f.p99, vp_blocks_memory(b) / 1048576.0);
	}
	free(in_use);
	vp_blocks_free(b);
}

static void bench_memory(void)
{
	struct vp_range r;
	struct vp_blocks *b;
	struct vp_prefix p;
	char err[VP_ERRLEN];

	vp_range_parse(&r, "10.0.0.1-10.255.255.254", err);
	vp_blocks_new(&b, &r, 32);
	printf("  empty /8 pool: %zu bytes\n", vp_blocks_memory(b));
	while (!vp_blocks_alloc(b, &p))
		;
	printf("  full /8 pool:  %zu bytes (%" PRIu64 " in use)\n", vp_blocks_memory(b), vp_blocks_used(b));
	vp_blocks_free(b);
}

static long peak_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void bench_space(uint64_t clients)
{
	char *dir = tl_tmpdir();
	struct vp_config *c = tl_config_new(dir);
	struct tl_world w = { .now = 1000 };
	struct vp_space_options o;
	struct vp_server server = tl_server(VP_TOPO_SUBNET, "10.0.0.1", 8, NULL);
	struct vp_store_report rep;
	struct vp_space *s;
	struct vp_grant g;
	bool failed;
	pid_t pid;
	char id[32];
	struct vp_request req = { .identity = (const uint8_t *)id };
	uint64_t rounds = clients, nb = 0;
	double t0, *batches = malloc((clients / 256 + 2) * sizeof(double));

	tl_add_pool(c, "big", "10.0.0.0/8", NULL, NULL, NULL, NULL);
	c->hold_time = 0;
	o = tl_options(c, &w);
	o.on_event = NULL;
	vp_space_open(&s, &o, &rep, &pid);
	vp_space_set_server(s, &server);
	t0 = now_ns();
	for (uint64_t i = 0; i < clients; ++i) {
		req.identity_len = (size_t)snprintf(id, sizeof(id), "client-%" PRIu64, i);
		if (vp_space_connect(s, &req, &g, &failed)) {
			printf("connect failed at %" PRIu64 "\n", i);
			break;
		}
	}
	printf("  %" PRIu64 " connects (journal on, fsync off): %.2f s, %.0f ns each\n", clients,
	       (now_ns() - t0) / 1e9, (now_ns() - t0) / clients);
	/* Churn: one client leaves, a new one arrives (reclaiming the oldest). */
	for (uint64_t i = 0; i < rounds; i += 256) {
		double b0 = now_ns();

		for (int j = 0; j < 256; ++j) {
			uint64_t k = i + (uint64_t)j;
			size_t len = (size_t)snprintf(id, sizeof(id), "client-%" PRIu64, k);

			vp_space_disconnect(s, (const uint8_t *)id, len, 0, NULL);
			req.identity_len = (size_t)snprintf(id, sizeof(id), "new-%" PRIu64, k);
			vp_space_connect(s, &req, &g, &failed);
		}
		batches[nb++] = (now_ns() - b0) / 256;
	}
	{
		struct figures f = summarise(batches, nb);

		printf("  churn with %" PRIu64 " leases, disconnect + connect: %.0f ns p50, %.0f ns p99\n",
		       clients, f.p50, f.p99);
	}
	printf("  engine memory: %.1f MiB; peak RSS so far %.1f MiB\n",
	       vp_space_memory(s) / 1048576.0, peak_rss_kib() / 1024.0);
	vp_space_close(s);
	/*
	 * JOURNAL LOAD FIGURE: not measured here.  The time to reopen a journal
	 * of N leases is tests/bench_store.c's to print (see there).
	 */
	vp_config_free(c);
	free(c);
	tl_rmtree(dir);
	free(dir);
	free(batches);
}

int main(int argc, char **argv)
{
	uint64_t clients = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;

	printf("free + allocate pair (a random in-use block freed, the lowest free one taken;\n"
	       "fill fragmented: random holes):\n");
	printf("  %-24s %12s  %8s  %8s  %10s\n", "pool", "in use", "p50 ns", "p99 ns", "MiB");
	bench_pool("IPv4 /24 at 50%", "10.0.0.1-10.0.0.254", 32, 0, 0.50);
	bench_pool("IPv4 /24 at 99%", "10.0.0.1-10.0.0.254", 32, 0, 0.99);
	bench_pool("IPv4 /16 at 50%", "10.0.0.1-10.0.255.254", 32, 0, 0.50);
	bench_pool("IPv4 /16 at 99%", "10.0.0.1-10.0.255.254", 32, 0, 0.99);
	bench_pool("IPv4 /12 at 50%", "10.0.0.1-10.15.255.254", 32, 0, 0.50);
	bench_pool("IPv4 /12 at 99%", "10.0.0.1-10.15.255.254", 32, 0, 0.99);
	bench_pool("IPv4 /8 at 50%", "10.0.0.1-10.255.255.254", 32, 0, 0.50);
	bench_pool("IPv4 /8 at 99%", "10.0.0.1-10.255.255.254", 32, 0, 0.99);
	bench_pool("IPv6 /64, none in use", V6_64, 128, 1, 0.0);
	bench_pool("IPv6 /64, 1M of 2M", V6_64, 128, 2000000, 0.50);
	bench_pool("IPv6 /64, 8M of 2^24", V6_64, 128, (1u << 24) - 2, 0.50);
	bench_pool("IPv6 /64, 16.6M of 2^24", V6_64, 128, (1u << 24) - 2, 0.99);
	bench_pool("IPv6 /64, 16.7M of 2^25", V6_64, 128, 1u << 25, 0.50);
	bench_pool("IPv6 /112 at 99%", "fd00::/112", 128, 0, 0.99);
	bench_pool("/30s of a /16 at 99%", "10.0.0.0/16", 30, 0, 0.99);
	bench_pool("/64s of a /48 at 99%", "fd00:9::/48", 64, 0, 0.99);
	printf("memory:\n");
	bench_memory();
	printf("engine with a /8 pool:\n");
	bench_space(clients);
	return 0;
}
