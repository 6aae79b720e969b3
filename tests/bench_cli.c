/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A state for timing the command: DIR/vpnpool.conf with a /8 pool, a /16
 * router pool and an IPv6 part, and DIR/state/leases.journal with LEASES
 * leases written through the store (every fourth held, every tenth a router
 * with a /24 of its own... as many as fit, some with hostile identities).
 * Then:  time ./vpnpool -c DIR/vpnpool.conf leases --json > /dev/null
 * Usage: bench_cli DIR [LEASES]   (default 1,000,000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

static void write_config(const char *dir)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/vpnpool.conf", dir);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fprintf(f, "state-dir = \"%s/state\"\nusage-log = \"\"\n"
		   "pool \"big\" {\n  network = \"10.0.0.0/8\"\n  network6 = \"fd00:8::/64\"\n}\n"
		   "router-pool \"sites\" {\n  network = \"172.16.0.0/12\"\n  prefix = 28\n}\n",
		dir);
	fclose(f);
}

int main(int argc, char **argv)
{
	unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1000000;
	char dir[4096], id[64];
	struct vp_store *store;
	struct timespec t0, t1;
	int ret;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_cli DIR [LEASES]\n");
		return 2;
	}
	write_config(argv[1]);
	snprintf(dir, sizeof(dir), "%s/state", argv[1]);
	ret = vp_store_open(&store, dir, false, NULL, NULL, NULL, NULL);
	if (ret) {
		fprintf(stderr, "bench_cli: cannot open %s: %s\n", dir, strerror(-ret));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < n; ++i) {
		struct vp_lease_rec r = {
			.identity = (const uint8_t *)id, .state = i % 4 ? VP_LEASE_ONLINE : VP_LEASE_HELD,
			.sessions = 1 + i % 7, .created = 1764000000 + i, .since = 1764003600 + i,
			.addr4 = vp_addr_v4(0x0a000001U + i),
			.addr6 = { 0xfd00000800000000ULL, 1 + i, VP_INET6 },
		};

		if (i % 1000 == 7)
			r.identity_len = (size_t)snprintf(id, sizeof(id), "evil \"cn\" \n\xff %u", i);
		else
			r.identity_len = (size_t)snprintf(id, sizeof(id), "client-%07u.example.com", i);
		snprintf(r.real, sizeof(r.real), "203.0.%u.%u:%u", (i >> 8) & 255, i & 255,
			 1024 + i % 60000);
		if (i % 10 == 0 && i / 10 < 65536) {
			r.subnet4.addr = vp_addr_v4(0xac100000U + (i / 10) * 16);
			r.subnet4.len = 28;
		}
		ret = vp_store_put(store, &r);
		if (ret) {
			fprintf(stderr, "bench_cli: put: %s\n", strerror(-ret));
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	vp_store_close(store);
	printf("bench_cli: %u leases written to %s in %.2f s\n", n, dir,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf("now: time ./vpnpool -c %s/vpnpool.conf leases --json > /dev/null\n", argv[1]);
	return 0;
}
