/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The plugin with a PostgreSQL store, through its exported entry points as
 * OpenVPN calls them: INSTANCES plugin handles (openvpn_plugin_open_v3,
 * "instance=iN", one vpnpool.conf naming the store of VP_PG_URI), each
 * driven by a process of its own as an OpenVPN event loop would: up to
 * INFLIGHT clients connecting at once, each CLIENT_CONNECT_V2 (deferred)
 * then CLIENT_CONNECT_DEFER_V2 until the answer; between rounds of polls
 * the driver sleeps 0.2 ms (nanosleep), as OpenVPN sleeps in epoll, so
 * that it does not take the CPUs the database needs.  Phase 1:
 * CLIENTS new clients in all; phase 2: each disconnects (and its session
 * ends); phase 3: each connects again (sticky).  Printed per connect phase:
 * connects per second over all handles, connect-to-answer p50 / p99 /
 * max (from CLIENT_CONNECT_V2 to the DEFER_V2 call that returns SUCCESS),
 * and the longest single plugin call of the run, in wall time (which
 * includes the time the VM or the kernel kept the thread off a CPU) and in
 * the thread's CPU time (CLOCK_THREAD_CPUTIME_ID: the work the call did).  Exit 1 when a connect was
 * refused or an address was handed out twice.
 *   VP_PG_URI=postgresql://... ./tests/bench_pg PLUGIN.so [clients [instances [inflight]]]
 *   (default 20,000 clients, 4 instances, 8 in flight per instance)
 * make bench-pg runs it on a throwaway cluster (tests/pg_unit.sh).
 */
#include <dlfcn.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/plugin_api.h"

static struct api api;
static char conf_path[256];
static unsigned n_clients = 20000, n_inst = 4, inflight = 8;

__attribute__((format(printf, 3, 4)))
static void quiet_log(openvpn_plugin_log_flags_t flags, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (!(flags & (PLOG_ERR | PLOG_WARN)) && !getenv("VP_BENCH_LOG"))
		return;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

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

struct client {
	void *ctx;
	char id[48];
	char env_id[64];
	const char *envp[8];
	double t0;
	bool pending;
	char addr[32];
};

struct inst {
	unsigned index;
	openvpn_plugin_handle_t h;
	struct client *clients;
	unsigned n;
	double *lat;		/* connect-to-answer, ns */
	unsigned n_lat;
	double max_call, max_by[4];	/* connect, defer poll, disconnect, destructor */
	double max_cpu;			/* the CPU time of the longest-running call */
	unsigned refused;
	int phase;
};

static void client_env(struct client *c)
{
	snprintf(c->env_id, sizeof(c->env_id), "common_name=%s", c->id);
	c->envp[0] = "ifconfig_local=10.64.0.1";
	c->envp[1] = "ifconfig_netmask=255.192.0.0";
	c->envp[2] = "trusted_ip=203.0.113.7";
	c->envp[3] = "trusted_port=1194";
	c->envp[4] = c->env_id;
	c->envp[5] = "bytes_received=1";
	c->envp[6] = "bytes_sent=2";
	c->envp[7] = NULL;
}

static int call(struct inst *in, void *ctx, int type, const char *const *envp,
		struct openvpn_plugin_string_list **list)
{
	struct openvpn_plugin_args_func_in a = {
		.type = type, .envp = (const char **)envp, .handle = in->h, .per_client_context = ctx,
	};
	struct openvpn_plugin_args_func_return r = { .return_list = list };
	double t = now_ns(), cpu = cpu_ns();
	int ret = api.func(OPENVPN_PLUGINv3_STRUCTVER, &a, &r);

	t = now_ns() - t;
	cpu = cpu_ns() - cpu;
	if (cpu > in->max_cpu)
		in->max_cpu = cpu;
	if (t > in->max_call)
		in->max_call = t;
	{
		int k = type == OPENVPN_PLUGIN_CLIENT_CONNECT_V2 ? 0 :
			type == OPENVPN_PLUGIN_CLIENT_CONNECT_DEFER_V2 ? 1 : 2;

		if (t > in->max_by[k])
			in->max_by[k] = t;
	}
	return ret;
}

static void free_list(struct openvpn_plugin_string_list *l)
{
	while (l) {
		struct openvpn_plugin_string_list *n = l->next;

		free(l->name);
		free(l->value);
		free(l);
		l = n;
	}
}

/* The answer of c's connect: its address kept. */
static void answered(struct inst *in, struct client *c, int ret,
		     struct openvpn_plugin_string_list *list)
{
	char addr[32] = "";

	c->pending = false;
	if (ret != OPENVPN_PLUGIN_FUNC_SUCCESS || !list) {
		in->refused++;
		return;
	}
	sscanf(list->value, "ifconfig-push %31s", addr);
	if (in->phase == 3 && strcmp(addr, c->addr))
		in->refused++;	/* not sticky: counted as a failure */
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	in->lat[in->n_lat++] = now_ns() - c->t0;
}

/* One connect phase: every client of the instance, INFLIGHT at a time. */
static void connect_all(struct inst *in)
{
	unsigned next = 0, busy = 0, *pend = calloc(inflight, sizeof(*pend));

	in->n_lat = 0;
	while (next < in->n || busy) {
		bool progress = false;

		while (busy < inflight && next < in->n) {
			struct client *c = &in->clients[next];
			struct openvpn_plugin_string_list *list = NULL;
			int ret;

			c->ctx = api.ctor(in->h);
			c->t0 = now_ns();
			ret = call(in, c->ctx, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, c->envp, &list);
			if (ret == OPENVPN_PLUGIN_FUNC_DEFERRED)
				pend[busy++] = next;
			else
				answered(in, c, ret, list);
			free_list(list);
			next++;
			progress = true;
		}
		for (unsigned k = 0; k < busy;) {
			struct client *c = &in->clients[pend[k]];
			struct openvpn_plugin_string_list *list = NULL;
			int ret = call(in, c->ctx, OPENVPN_PLUGIN_CLIENT_CONNECT_DEFER_V2, c->envp,
				       &list);

			if (ret != OPENVPN_PLUGIN_FUNC_DEFERRED) {
				answered(in, c, ret, list);
				pend[k] = pend[--busy];
				progress = true;
			} else {
				k++;
			}
			free_list(list);
		}
		if (!progress)
			nanosleep(&(struct timespec){ .tv_nsec = 200000 }, NULL);
	}
	free(pend);
}

static void disconnect_all(struct inst *in)
{
	for (unsigned i = 0; i < in->n; ++i) {
		struct client *c = &in->clients[i];

		double t;

		call(in, c->ctx, OPENVPN_PLUGIN_CLIENT_DISCONNECT, c->envp, NULL);
		t = now_ns();
		api.dtor(in->h, c->ctx);
		t = now_ns() - t;
		if (t > in->max_by[3])
			in->max_by[3] = t;
		c->ctx = NULL;
	}
}

/* What a child (one instance, one OpenVPN process) reports. */
struct result {
	double t[4][2];		/* phases 1..3: start, end (CLOCK_MONOTONIC: one clock for all) */
	double max_call, max_by[4], max_cpu;
	unsigned refused, n1, n3;
};

/* The child's run: the three phases once the parent says go; its figures
 * and latencies written to fd. */
static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			_exit(1);
		p += n;
		len -= (size_t)n;
	}
}

static void child(struct inst *in, int go, int fd)
{
	struct result r = { 0 };
	double *lat1 = calloc(in->n + 1, sizeof(*lat1));
	char c, (*addrs)[32] = calloc(in->n + 1, 32);

	if (read(go, &c, 1) != 1)
		_exit(1);
	for (int phase = 1; phase <= 3; ++phase) {
		in->phase = phase;
		r.t[phase][0] = now_ns();
		if (phase == 2)
			disconnect_all(in);
		else
			connect_all(in);
		r.t[phase][1] = now_ns();
		if (phase == 1) {
			r.n1 = in->n_lat;
			memcpy(lat1, in->lat, in->n_lat * sizeof(double));
			for (unsigned j = 0; j < in->n; ++j)
				memcpy(addrs[j], in->clients[j].addr, 32);
		}
	}
	r.n3 = in->n_lat;
	disconnect_all(in);
	r.max_call = in->max_call;
	r.max_cpu = in->max_cpu;
	memcpy(r.max_by, in->max_by, sizeof(r.max_by));
	r.refused = in->refused;
	write_all(fd, &r, sizeof(r));
	write_all(fd, lat1, r.n1 * sizeof(double));
	write_all(fd, addrs, (size_t)in->n * 32);
	write_all(fd, in->lat, r.n3 * sizeof(double));
	api.close(in->h);
	_exit(0);
}

static void report(const char *what, double *all, size_t n, double t0, double t1, unsigned refused)
{
	double secs = (t1 - t0) / 1e9;

	qsort(all, n, sizeof(*all), cmp_double);
	printf("%-20s %7zu connects in %6.2f s: %7.0f connects/s; answer p50 %6.2f ms, p99 %6.2f ms, max %7.2f ms; refused %u\n",
	       what, n, secs, n / secs, n ? all[n / 2] / 1e6 : 0, n ? all[n * 99 / 100] / 1e6 : 0,
	       n ? all[n - 1] / 1e6 : 0, refused);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Addresses handed out twice (printed); addrs: n of 32 bytes each. */
static unsigned duplicates(char (*addrs)[32], size_t n)
{
	size_t k = 0;
	unsigned dup = 0;
	char **all = calloc(n ? n : 1, sizeof(*all));

	for (size_t i = 0; i < n; ++i)
		if (addrs[i][0])
			all[k++] = addrs[i];
	qsort(all, k, sizeof(*all), cmp_str);
	for (size_t i = 1; i < k; ++i)
		dup += !strcmp(all[i], all[i - 1]);
	printf("addresses handed out twice: %u\n", dup);
	free(all);
	return dup;
}

int main(int argc, char **argv)
{
	const char *uri = getenv("VP_PG_URI");
	struct openvpn_plugin_callbacks cb = { .plugin_log = quiet_log };
	static const char *const up_env[] = { "dev=tun0", "ifconfig_local=10.64.0.1",
					      "ifconfig_netmask=255.192.0.0", NULL };
	char dir[] = "/tmp/vpnpool-bench-pg.XXXXXX";
	unsigned per, refused = 0;
	double t[4][2] = { { 0 } }, max_call = 0, max_cpu = 0, max_by[4] = { 0 }, *lat1, *lat3;
	size_t n1 = 0, n3 = 0;
	char (*addrs)[32];
	int go[2], fds[64];
	void *so;
	FILE *f;

	if (argc < 2 || !uri) {
		fprintf(stderr, "usage: VP_PG_URI=postgresql://... %s PLUGIN.so [clients [instances [inflight]]]\n",
			argv[0]);
		return 2;
	}
	if (argc > 2)
		n_clients = (unsigned)strtoul(argv[2], NULL, 10);
	if (argc > 3)
		n_inst = (unsigned)strtoul(argv[3], NULL, 10);
	if (argc > 4)
		inflight = (unsigned)strtoul(argv[4], NULL, 10);
	if (!n_inst || n_inst > 64 || !inflight) {
		fprintf(stderr, "bench_pg: 1 to 64 instances, inflight > 0\n");
		return 2;
	}
	per = n_clients / n_inst;
	if (!mkdtemp(dir))
		return 1;
	snprintf(conf_path, sizeof(conf_path), "%s/vpnpool.conf", dir);
	f = fopen(conf_path, "w");
	if (!f)
		return 1;
	/* A /10: room for every client of a run, and for several runs. */
	fprintf(f, "state-dir = \"%s\"\nstore = \"%s\"\nnode = \"bench\"\nhost-routes = no\n"
		   "topology = subnet\nhold-time = 3600\npool \"bench\" { network = \"10.64.0.0/10\" }\n",
		dir, uri);
	fclose(f);
	if (pipe(go))
		return 1;
	/* Each instance a process of its own, as OpenVPN runs them. */
	for (unsigned i = 0; i < n_inst; ++i) {
		int out[2];

		if (pipe(out))
			return 1;
		if (!fork()) {
			char inst_arg[32];
			const char *args[] = { "openvpn-plugin-vpnpool.so", conf_path, inst_arg, NULL };
			const char *envp[] = { "verb=3", NULL };
			struct openvpn_plugin_args_open_in oin = { .argv = args, .envp = envp,
								   .callbacks = &cb };
			struct openvpn_plugin_args_open_return o = { 0 };
			struct openvpn_plugin_args_func_in up = { .type = OPENVPN_PLUGIN_UP,
								  .envp = (const char **)up_env };
			struct openvpn_plugin_args_func_return upr = { 0 };
			struct inst in = { .index = i, .n = per };

			close(out[0]);
			close(go[1]);
			so = dlopen(argv[1], RTLD_NOW);
			if (!so || !plugin_api_find(so, &api)) {
				fprintf(stderr, "bench_pg: %s: %s\n", argv[1], dlerror());
				_exit(1);
			}
			snprintf(inst_arg, sizeof(inst_arg), "instance=i%u", i);
			if (api.open(OPENVPN_PLUGINv3_STRUCTVER, &oin, &o) != OPENVPN_PLUGIN_FUNC_SUCCESS)
				_exit(1);
			in.h = o.handle;
			up.handle = in.h;
			if (api.func(OPENVPN_PLUGINv3_STRUCTVER, &up, &upr) != OPENVPN_PLUGIN_FUNC_SUCCESS)
				_exit(1);
			in.clients = calloc(per, sizeof(*in.clients));
			in.lat = calloc(per ? per : 1, sizeof(*in.lat));
			for (unsigned j = 0; j < per; ++j) {
				snprintf(in.clients[j].id, sizeof(in.clients[j].id), "bench-%d-%u-%u",
					 (int)getppid(), i, j);
				client_env(&in.clients[j]);
			}
			child(&in, go[0], out[1]);
		}
		close(out[1]);
		fds[i] = out[0];
	}
	close(go[0]);
	/* Let the workers start their store (vp_pg_start) before the clock. */
	sleep(1);
	printf("bench_pg: %u instances (processes), %u clients, %u in flight per instance\n",
	       n_inst, n_inst * per, inflight);
	fflush(stdout);
	for (unsigned i = 0; i < n_inst; ++i)
		if (write(go[1], "g", 1) != 1)
			return 1;
	lat1 = calloc(n_inst * per + 1, sizeof(double));
	lat3 = calloc(n_inst * per + 1, sizeof(double));
	addrs = calloc(n_inst * per + 1, 32);
	for (unsigned i = 0; i < n_inst; ++i) {
		FILE *in = fdopen(fds[i], "r");
		struct result r;

		if (fread(&r, sizeof(r), 1, in) != 1 || fread(lat1 + n1, sizeof(double), r.n1, in) != r.n1 ||
		    fread(addrs + (size_t)i * per, 32, per, in) != per ||
		    fread(lat3 + n3, sizeof(double), r.n3, in) != r.n3) {
			fprintf(stderr, "bench_pg: instance %u failed\n", i);
			return 1;
		}
		fclose(in);
		n1 += r.n1;
		n3 += r.n3;
		refused += r.refused;
		if (r.max_call > max_call)
			max_call = r.max_call;
		if (r.max_cpu > max_cpu)
			max_cpu = r.max_cpu;
		for (int k = 0; k < 4; ++k)
			if (r.max_by[k] > max_by[k])
				max_by[k] = r.max_by[k];
		for (int ph = 1; ph <= 3; ++ph) {
			if (!t[ph][0] || r.t[ph][0] < t[ph][0])
				t[ph][0] = r.t[ph][0];
			if (r.t[ph][1] > t[ph][1])
				t[ph][1] = r.t[ph][1];
		}
	}
	while (wait(NULL) > 0)
		;
	report("new clients", lat1, n1, t[1][0], t[1][1], (unsigned)(n_inst * per - n1));
	refused += duplicates(addrs, (size_t)n_inst * per);
	printf("disconnects: %u in %.3f s (queued: never waited on)\n", n_inst * per,
	       (t[2][1] - t[2][0]) / 1e9);
	report("reconnect (sticky)", lat3, n3, t[3][0], t[3][1], (unsigned)(n_inst * per - n3));
	printf("longest plugin call, wall time: %.3f ms (connect %.3f, defer poll %.3f, disconnect %.3f, destructor %.3f)\n",
	       max_call / 1e6, max_by[0] / 1e6, max_by[1] / 1e6, max_by[2] / 1e6, max_by[3] / 1e6);
	printf("longest plugin call, thread CPU time: %.3f ms (wall time beyond it: the thread waiting for a CPU, not for the plugin; %ld CPUs)\n",
	       max_cpu / 1e6, sysconf(_SC_NPROCESSORS_ONLN));
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			return 1;
	}
	return refused ? 1 : 0;
}
