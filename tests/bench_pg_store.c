/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Connects per second and connect latency of the PostgreSQL store: T
 * threads (default 4), each its own struct vp_pg (its own node), against
 * VP_PG_URI (run it through tests/pg_unit.sh: make bench-pg-store).
 * Phases: new clients (never-used addresses), their disconnects, the same
 * clients again (sticky), and pairs of connect and disconnect of new ones.
 * Prints figures; asserts nothing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "pgstore.h"
#include "testlib.h"

#define MAX_T 32

static int nthreads = 4, per_thread = 5000;
static struct vp_config *config;
static struct vp_pg *pgs[MAX_T];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *getvar(void *ud, const char *name)
{
	return NULL;
}

struct job {
	int t, phase;
	double *lat;
	int errors;
};

static int64_t *sessions;	/* [t * per_thread + i] */

static void *run(void *arg)
{
	struct job *j = arg;

	for (int i = 0; i < per_thread; ++i) {
		char id[32];
		struct vp_request req = { (const uint8_t *)id, 0, getvar, NULL, "192.0.2.1:1" };
		struct vp_pg_result r;
		int64_t *s = &sessions[j->t * per_thread + i];
		double t0 = now_s();
		int ret;

		snprintf(id, sizeof(id), "%s-%d-%d", j->phase == 3 ? "churn" : "client", j->t, i);
		req.identity_len = strlen(id);
		if (j->phase == 1) {
			ret = vp_pg_disconnect(pgs[j->t], (const uint8_t *)id, strlen(id), 0, *s, NULL);
		} else {
			*s = ((int64_t)j->phase << 48) | ((int64_t)j->t << 32) | i;
			ret = vp_pg_connect(pgs[j->t], &req, *s, &r);
			if (!ret && j->phase == 3)
				vp_pg_disconnect(pgs[j->t], (const uint8_t *)id, strlen(id), 0, *s,
						 NULL);
		}
		j->lat[i] = now_s() - t0;
		if (ret)
			j->errors++;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void phase(int p, const char *what)
{
	pthread_t th[MAX_T];
	struct job jobs[MAX_T];
	double *all = calloc((size_t)nthreads * per_thread, sizeof(double)), t0, secs;
	int errors = 0;
	size_t n = (size_t)nthreads * per_thread;

	t0 = now_s();
	for (int t = 0; t < nthreads; ++t) {
		jobs[t] = (struct job){ .t = t, .phase = p, .lat = all + (size_t)t * per_thread };
		pthread_create(&th[t], NULL, run, &jobs[t]);
	}
	for (int t = 0; t < nthreads; ++t) {
		pthread_join(th[t], NULL);
		errors += jobs[t].errors;
	}
	secs = now_s() - t0;
	qsort(all, n, sizeof(*all), cmp);
	printf("%-34s %6zu calls in %5.2f s: %6.0f/s  p50 %.2f ms  p99 %.2f ms  max %.1f ms"
	       "  errors %d\n", what, n, secs, (double)n / secs, all[n / 2] * 1e3,
	       all[n * 99 / 100] * 1e3, all[n - 1] * 1e3, errors);
	free(all);
}

int main(int argc, char **argv)
{
	const char *uri = getenv("VP_PG_URI");
	struct vp_server server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, NULL);
	PGconn *admin;

	if (!uri) {
		fprintf(stderr, "bench_pg_store: run it through tests/pg_unit.sh\n");
		return 77;
	}
	if (getenv("THREADS"))
		nthreads = atoi(getenv("THREADS"));
	if (getenv("PER_THREAD"))
		per_thread = atoi(getenv("PER_THREAD"));
	if (nthreads < 1 || nthreads > MAX_T)
		nthreads = 4;
	admin = PQconnectdb(uri);
	PQclear(PQexec(admin, "SET client_min_messages = warning"));
	PQclear(PQexec(admin, "DROP SCHEMA IF EXISTS vpnpool CASCADE"));
	config = tl_config_new("/nonexistent");
	config->store = strdup(uri);
	config->store_timeout_ms = 5000;
	config->hold_time = 0;
	tl_add_pool(config, "big", "10.8.0.0/16", NULL, NULL, NULL, NULL);
	sessions = calloc((size_t)nthreads * per_thread, sizeof(*sessions));
	for (int t = 0; t < nthreads; ++t) {
		char node[16];

		snprintf(node, sizeof(node), "bench%d", t);
		if (vp_pg_open(&pgs[t], &(struct vp_pg_options){ .config = config, .node = node,
				   .instance = "i", .create_schema = true }) ||
		    vp_pg_start(pgs[t], &server, NULL, NULL)) {
			fprintf(stderr, "bench_pg_store: %s\n", vp_pg_error(pgs[t]));
			return 1;
		}
	}
	printf("bench_pg_store: %d threads, %d clients each, pool /16\n", nthreads, per_thread);
	phase(0, "connect (new clients)");
	phase(1, "disconnect");
	phase(2, "connect (returning, sticky)");
	phase(1, "disconnect");
	phase(3, "connect+disconnect pairs (new ids)");
	for (int t = 0; t < nthreads; ++t)
		vp_pg_close(pgs[t]);
	PQfinish(admin);
	(void)argc;
	(void)argv;
	return 0;
}
