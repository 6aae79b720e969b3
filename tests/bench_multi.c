/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Several OpenVPN processes on one state-dir (openvpn-plugin-vpnpool(8)),
 * through the plugin's exported entry points as OpenVPN calls them: PROCS
 * processes (fork) each dlopen the plugin and open it with the same
 * vpnpool.conf (a /8 pool) and "instance=pN"; all start together; each
 * connects LEASES / PROCS new clients (they stay online), then churns: a
 * random client of its own disconnects, its session ends, and it connects
 * again (the sticky path).  Printed: per connect p50, p99, p99.9 and the
 * longest single call, over all processes and per process; wall time and
 * connects per second; and two checks of what the plugin handed out (no
 * address given twice over the whole run, every churn reconnect given its
 * address back).  Exit 1 when a connect was refused or a check failed.
 *   ./tests/bench_multi PLUGIN.so [leases [procs [churn-rounds-per-process]]]
 *   (default 1,000,000 leases, 4 processes, leases / procs / 4 churn rounds)
 * VP_BENCH_NO_INSTANCE=1 leaves the instance argument out (a plugin without
 * instances; one process only).
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/plugin_api.h"

__attribute__((format(printf, 3, 4)))
static void quiet_log(openvpn_plugin_log_flags_t flags, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (!(flags & (PLOG_ERR | PLOG_WARN)) && !getenv("VP_BENCH_LOG"))
		return;
	va_start(ap, fmt);
	fprintf(stderr, "[%d] %s: ", (int)getpid(), name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
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

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

struct proc {
	int index;
	char dev[16];
	char pid_var[32];
};

static openvpn_plugin_handle_t plugin_open(struct api *a, const struct proc *pr, const char *conf,
					   const char *config_var)
{
	struct openvpn_plugin_callbacks cb = { .plugin_log = quiet_log };
	char instance[32];
	const char *argv[] = { "openvpn-plugin-vpnpool.so", conf, instance, NULL };
	const char *envp[] = { config_var, "verb=3", "daemon=0", "daemon_log_redirect=0",
			       "daemon_start_time=1795570000", pr->pid_var, "proto_1=udp",
			       "local_port_1=1194", "remote_port_1=1194", NULL };
	struct openvpn_plugin_args_open_in in = {
		.type_mask = 0, .argv = argv, .envp = envp, .callbacks = &cb,
	};
	struct openvpn_plugin_args_open_return out = { 0 };

	snprintf(instance, sizeof(instance), "instance=p%d", pr->index);
	if (getenv("VP_BENCH_NO_INSTANCE"))
		argv[2] = NULL;
	if (a->open(OPENVPN_PLUGINv3_STRUCTVER, &in, &out))
		return NULL;
	return out.handle;
}

/* One call with a client's environment as OpenVPN 2.6 hands it over
 * (tests/e2e/NOTES.md); *addr gets the IPv4 of "ifconfig-push" (0: none). */
static int call(struct api *a, openvpn_plugin_handle_t h, const struct proc *pr, int type,
		void *session, const char *id, uint32_t *addr)
{
	char cn[64], x509cn[64], tlsid[64], port[24], uport[32], dev[24];
	const char *envp[] = {
		"time_unix=1795579289", "time_ascii=2026-11-25 04:01:29", "trusted_ip=203.0.113.7",
		port, "untrusted_ip=203.0.113.7", uport, "redirect_gateway=0",
		"IV_VER=2.6.14", "IV_PLAT=linux", "IV_TCPNL=1", "IV_MTU=1600", "IV_NCP=2",
		"IV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305", "IV_PROTO=990",
		"IV_SSL=OpenSSL_3.0.17", "tls_serial_hex_1=4d:2a:11", "tls_serial_1=5057041",
		"tls_id_1=CN=vpnpool CA", "X509_1_CN=vpnpool CA", "tls_serial_0=2",
		tlsid, x509cn, cn,
		"ifconfig_netmask=255.0.0.0", "ifconfig_local=10.0.0.1", "script_context=init",
		"tun_mtu=1500", "dev_type=tun", dev, "proto_1=udp", pr->pid_var,
		"config=/etc/openvpn/server/server.conf", "script_type=client-connect",
		"bytes_received=12345", "bytes_sent=54321", "time_duration=60", NULL,
	};
	const char *argv[] = { "plugin", NULL };
	struct openvpn_plugin_string_list *list = NULL;
	struct openvpn_plugin_args_func_in in = {
		.type = type, .argv = argv, .envp = envp, .handle = h, .per_client_context = session,
	};
	struct openvpn_plugin_args_func_return out = { .return_list = &list };
	int ret;

	snprintf(cn, sizeof(cn), "common_name=%s", id);
	snprintf(x509cn, sizeof(x509cn), "X509_0_CN=%s", id);
	snprintf(tlsid, sizeof(tlsid), "tls_id_0=CN=%s", id);
	snprintf(port, sizeof(port), "trusted_port=%d", 1024 + (int)(strlen(id) * 7 % 60000));
	snprintf(uport, sizeof(uport), "un%s", port);
	snprintf(dev, sizeof(dev), "dev=%s", pr->dev);
	ret = a->func(OPENVPN_PLUGINv3_STRUCTVER, &in, &out);
	if (addr)
		*addr = 0;
	while (list) {	/* OpenVPN frees the returned list */
		struct openvpn_plugin_string_list *next = list->next;
		const char *p = list->value ? strstr(list->value, "ifconfig-push ") : NULL;
		char text[16];
		struct in_addr in4;

		if (p && addr && sscanf(p + strlen("ifconfig-push "), "%15s", text) == 1 &&
		    inet_pton(AF_INET, text, &in4) == 1)
			*addr = ntohl(in4.s_addr);
		free(list->name);
		free(list->value);
		free(list);
		list = next;
	}
	return ret;
}

/* A child's results, written to DIR/pN: the header, then the connect times
 * (phase 1, churn), then the addresses of phase 1. */
struct result {
	uint64_t n1, n2, refused, not_sticky, no_address;
	double longest1, longest2, wall;
	int open_failed;
};

static int child(const char *so_path, const struct proc *pr, const char *dir, const char *conf,
		 const char *config_var, uint64_t per, uint64_t rounds, int go_fd)
{
	struct result r = { .n1 = per, .n2 = rounds };
	double *t1 = malloc(per * sizeof(double)), *t2 = malloc((rounds + 1) * sizeof(double));
	uint32_t *addr = malloc(per * sizeof(uint32_t));
	void **sessions = calloc(per, sizeof(void *));
	uint64_t rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)pr->index << 32);
	char id[48], path[512], go;
	struct api a;
	openvpn_plugin_handle_t h;
	void *so;
	double t0, w0;
	FILE *f;

	if (!t1 || !t2 || !addr || !sessions || !(so = dlopen(so_path, RTLD_NOW)))
		return 2;
	if (!plugin_api_find(so, &a))
		return 2;
	h = plugin_open(&a, pr, conf, config_var);
	if (read(go_fd, &go, 1) != 1)	/* everyone opened: go */
		return 2;
	w0 = now_ns();
	if (!h) {
		r.open_failed = 1;
		per = rounds = r.n1 = r.n2 = 0;
	}
	for (uint64_t i = 0; i < per; ++i) {
		snprintf(id, sizeof(id), "p%d-client-%" PRIu64, pr->index, i);
		sessions[i] = a.ctor(h);
		t0 = now_ns();
		r.refused += !!call(&a, h, pr, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, sessions[i], id, &addr[i]);
		t1[i] = now_ns() - t0;
		if (t1[i] > r.longest1)
			r.longest1 = t1[i];
		r.no_address += !addr[i];
	}
	for (uint64_t i = 0; i < rounds; ++i) {
		uint64_t k;
		uint32_t got;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		k = rng % per;
		snprintf(id, sizeof(id), "p%d-client-%" PRIu64, pr->index, k);
		call(&a, h, pr, OPENVPN_PLUGIN_CLIENT_DISCONNECT, sessions[k], id, NULL);
		a.dtor(h, sessions[k]);
		sessions[k] = a.ctor(h);
		t0 = now_ns();
		r.refused += !!call(&a, h, pr, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, sessions[k], id, &got);
		t2[i] = now_ns() - t0;
		if (t2[i] > r.longest2)
			r.longest2 = t2[i];
		r.not_sticky += got != addr[k];
	}
	r.wall = now_ns() - w0;
	for (uint64_t i = 0; i < per; ++i) {
		snprintf(id, sizeof(id), "p%d-client-%" PRIu64, pr->index, i);
		call(&a, h, pr, OPENVPN_PLUGIN_CLIENT_DISCONNECT, sessions[i], id, NULL);
		a.dtor(h, sessions[i]);
	}
	if (h)
		a.close(h);
	snprintf(path, sizeof(path), "%s/p%d", dir, pr->index);
	f = fopen(path, "w");
	if (!f || fwrite(&r, sizeof(r), 1, f) != 1 || fwrite(t1, sizeof(double), per, f) != per ||
	    fwrite(t2, sizeof(double), rounds, f) != rounds ||
	    fwrite(addr, sizeof(uint32_t), per, f) != per || fclose(f))
		return 2;
	return 0;
}

static void report(const char *what, double *t, uint64_t n, double longest)
{
	uint64_t over1 = 0;

	if (!n) {
		printf("%-40s no calls\n", what);
		return;
	}
	for (uint64_t i = 0; i < n; ++i)
		over1 += t[i] > 1e6;
	qsort(t, n, sizeof(*t), cmp_double);
	printf("%-40s p50 %7.1f us  p99 %7.1f us  p99.9 %8.1f us  longest %8.2f ms  over 1 ms: %" PRIu64
	       "\n", what, t[n / 2] / 1e3, t[n * 99 / 100] / 1e3, t[n * 999 / 1000] / 1e3, longest / 1e6,
	       over1);
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 0) : 1000000;
	int procs = argc > 3 ? atoi(argv[3]) : 4, go[2], failed = 0;
	uint64_t per, rounds, total1 = 0, total2 = 0, refused = 0, not_sticky = 0, no_addr = 0, dups = 0;
	char dir[] = "/tmp/vpnpool-bench-multi-XXXXXX", conf[256], config_var[300], path[512], cmd[600];
	double *all1, *all2, longest1 = 0, longest2 = 0, wall = 0;
	uint32_t *addrs;
	pid_t *pids;
	FILE *f;

	if (argc < 2 || procs < 1 || procs > 64 || !mkdtemp(dir)) {
		fprintf(stderr, "usage: bench_multi PLUGIN.so [leases [procs [churn-rounds]]]\n");
		return 2;
	}
	per = n / (uint64_t)procs;
	rounds = argc > 4 ? strtoull(argv[4], NULL, 0) : per / 4;
	snprintf(conf, sizeof(conf), "%s/vpnpool.conf", dir);
	f = fopen(conf, "w");
	/* host-routes off: the tun names are made up (and a real tun0 of the
	 * machine must not get a million routes). */
	fprintf(f, "state-dir = \"%s/state\"\nhost-routes = \"no\"\n%spool \"big\" { network = \"10.0.0.0/8\" }\n", dir,
		getenv("VP_BENCH_NO_USAGE") ? "usage-log = \"\"\n" : "");
	fclose(f);
	snprintf(config_var, sizeof(config_var), "config=%s/server.conf", dir);
	f = fopen(config_var + strlen("config="), "w");
	fprintf(f, "topology subnet\nserver 10.0.0.0 255.0.0.0 nopool\n");
	fclose(f);
	printf("vpnpool, %d processes on one state-dir, %" PRIu64 " leases in all (%" PRIu64
	       " each), /8 pool, then %" PRIu64 " churn rounds each; %ld CPUs online\n", procs,
	       per * procs, per, rounds, sysconf(_SC_NPROCESSORS_ONLN));
	fflush(stdout);
	if (pipe(go))
		return 2;
	pids = calloc((size_t)procs, sizeof(pid_t));
	for (int p = 0; p < procs; ++p) {
		struct proc pr = { .index = p };

		snprintf(pr.dev, sizeof(pr.dev), "tun%d", p);
		pids[p] = fork();
		if (pids[p] < 0)
			return 2;
		if (!pids[p]) {
			snprintf(pr.pid_var, sizeof(pr.pid_var), "daemon_pid=%d", (int)getpid());
			close(go[1]);
			_exit(child(argv[1], &pr, dir, conf, config_var, per, rounds, go[0]));
		}
	}
	close(go[0]);
	sleep(1);	/* every child has opened the plugin (or is about to) */
	for (int p = 0; p < procs; ++p)
		if (write(go[1], "g", 1) != 1)
			return 2;
	close(go[1]);
	for (int p = 0; p < procs; ++p) {
		int st;

		if (waitpid(pids[p], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "process %d failed (status %d)\n", p, st);
			failed = 1;
		}
	}
	all1 = malloc(per * procs * sizeof(double));
	all2 = malloc((rounds * procs + 1) * sizeof(double));
	addrs = malloc(per * procs * sizeof(uint32_t));
	for (int p = 0; p < procs && !failed; ++p) {
		struct result r;
		char what[64];

		snprintf(path, sizeof(path), "%s/p%d", dir, p);
		f = fopen(path, "r");
		if (!f || fread(&r, sizeof(r), 1, f) != 1) {
			failed = 1;
			break;
		}
		if (r.open_failed) {
			fprintf(stderr, "process %d: the plugin's open failed (see its log above)\n", p);
			failed = 1;
		}
		if (fread(all1 + total1, sizeof(double), r.n1, f) != r.n1 ||
		    fread(all2 + total2, sizeof(double), r.n2, f) != r.n2 ||
		    fread(addrs + total1, sizeof(uint32_t), r.n1, f) != r.n1) {
			failed = 1;
			fclose(f);
			break;
		}
		fclose(f);
		snprintf(what, sizeof(what), "  process %d, new clients:", p);
		{
			double *copy = malloc((r.n1 + 1) * sizeof(double));

			memcpy(copy, all1 + total1, r.n1 * sizeof(double));
			report(what, copy, r.n1, r.longest1);
			memcpy(copy, all2 + total2, r.n2 * sizeof(double));
			snprintf(what, sizeof(what), "  process %d, churn reconnects:", p);
			report(what, copy, r.n2, r.longest2);
			free(copy);
		}
		total1 += r.n1;
		total2 += r.n2;
		refused += r.refused;
		not_sticky += r.not_sticky;
		no_addr += r.no_address;
		longest1 = r.longest1 > longest1 ? r.longest1 : longest1;
		longest2 = r.longest2 > longest2 ? r.longest2 : longest2;
		wall = r.wall > wall ? r.wall : wall;
	}
	if (!failed) {
		report("all processes, new clients:", all1, total1, longest1);
		report("all processes, churn reconnects:", all2, total2, longest2);
		qsort(addrs, total1, sizeof(*addrs), cmp_u32);
		for (uint64_t i = 1; i < total1; ++i)
			dups += addrs[i] && addrs[i] == addrs[i - 1];
		printf("wall time of the slowest process %.2f s: %.0f connects/s in all\n", wall / 1e9,
		       (total1 + total2) / (wall / 1e9));
		printf("checks: refused %" PRIu64 ", without an address %" PRIu64
		       ", addresses given twice %" PRIu64 ", churn reconnects given another address %" PRIu64
		       "\n", refused, no_addr, dups, not_sticky);
		failed = refused || no_addr || dups || not_sticky;
	}
	if (getenv("VP_BENCH_KEEP"))
		printf("state kept in %s\n", dir);
	else {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			failed = 1;
	}
	return failed;
}
