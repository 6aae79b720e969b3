/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The plugin's cost per connect, calling its exported entry points the way
 * OpenVPN does: dlopen, open_v3, then per client constructor and
 * CLIENT_CONNECT_V2 with a realistic environment; then churn rounds of
 * CLIENT_DISCONNECT + destructor + a new client; then close and re-open.
 *   ./tests/bench_plugin PLUGIN.so [clients [fsync]]   (default 1,000,000, false)
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tests/plugin_api.h"

/* OpenVPN's log: errors and warnings only (VP_BENCH_LOG=1: everything). */
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

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Open as OpenVPN 2.6 does (tests/e2e/NOTES.md 1): its own config file's
 * path and a few daemon variables, no ifconfig_* yet. */
static openvpn_plugin_handle_t plugin_open(struct api *a, const char *conf, const char *config_var)
{
	struct openvpn_plugin_callbacks cb = { .plugin_log = quiet_log };
	const char *argv[] = { "openvpn-plugin-vpnpool.so", conf, NULL };
	const char *envp[] = { config_var, "verb=3", "daemon=0", "daemon_log_redirect=0",
			       "daemon_start_time=1795570000", "daemon_pid=4242", "proto_1=udp",
			       "local_port_1=1194", "remote_port_1=1194", NULL };
	struct openvpn_plugin_args_open_in in = {
		.type_mask = 0, .argv = argv, .envp = envp, .callbacks = &cb,
	};
	struct openvpn_plugin_args_open_return out = { 0 };

	if (a->open(OPENVPN_PLUGINv3_STRUCTVER, &in, &out))
		return NULL;
	return out.handle;
}

/*
 * The environment of a client connect as OpenVPN 2.6 hands it to a plugin
 * (tests/e2e/NOTES.md): the server's own variables, the client's certificate
 * and TLS variables, its peer info; common_name in the middle, as there.
 */
static int call(struct api *a, openvpn_plugin_handle_t h, int type, void *session, const char *id)
{
	char cn[64], x509cn[64], tlsid[64], port[24], uport[32];
	const char *envp[] = {
		"time_unix=1795579289", "time_ascii=2026-11-25 04:01:29", "trusted_ip=203.0.113.7",
		port, "untrusted_ip=203.0.113.7", uport, "redirect_gateway=0",
		"IV_VER=2.6.14", "IV_PLAT=linux", "IV_TCPNL=1", "IV_MTU=1600", "IV_NCP=2",
		"IV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305", "IV_PROTO=990",
		"IV_LZO_STUB=1", "IV_COMP_STUB=1", "IV_COMP_STUBv2=1", "IV_SSL=OpenSSL_3.0.17",
		"IV_HWADDR=52:54:00:12:34:56", "tls_serial_hex_1=4d:2a:11", "tls_serial_1=5057041",
		"tls_digest_sha256_1=aa:bb:cc:dd", "tls_digest_1=aa:bb:cc", "tls_id_1=CN=vpnpool CA",
		"X509_1_CN=vpnpool CA", "tls_serial_hex_0=02", "tls_serial_0=2",
		"tls_digest_sha256_0=11:22:33:44", "tls_digest_0=11:22:33", tlsid, x509cn, cn,
		"ifconfig_netmask=255.0.0.0", "ifconfig_local=10.0.0.1", "route_net_gateway=192.0.2.1",
		"script_context=init", "tun_mtu=1500", "dev_type=tun", "dev=tun0", "link_mtu=1622",
		"remote_port_1=1194", "local_port_1=1194", "proto_1=udp", "daemon_pid=4242",
		"daemon_start_time=1795570000", "daemon_log_redirect=0", "daemon=0", "verb=3",
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
	ret = a->func(OPENVPN_PLUGINv3_STRUCTVER, &in, &out);
	if (list) {	/* OpenVPN frees the returned list */
		free(list->name);
		free(list->value);
		free(list);
	}
	return ret;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}


/* Resident memory now, in bytes (what a phase left behind, not its peak). */
static double rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static long peak_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* The longest single call of a phase: which call and when. */
struct longest {
	double ns;
	const char *call;
	uint64_t round;		/* index of the call in its phase */
};

static void note(struct longest *l, double ns, const char *call, uint64_t round)
{
	if (ns > l->ns)
		*l = (struct longest){ ns, call, round };
}

/* Percentiles, the longest call, and how many took over 1 and 5 ms (on a
 * shared or virtual machine some of those are the machine's: a loop that
 * only reads the clock sees gaps too). */
static void report(const char *what, double *t, uint64_t n, const struct longest *l)
{
	uint64_t over1 = 0, over5 = 0;

	for (uint64_t i = 0; i < n; ++i) {
		over1 += t[i] > 1e6;
		over5 += t[i] > 5e6;
	}
	qsort(t, n, sizeof(*t), cmp);
	printf("%-58s p50 %6.1f us  p99 %6.1f us  p99.9 %7.1f us\n", what, t[n / 2] / 1e3,
	       t[n * 99 / 100] / 1e3, t[n * 999 / 1000] / 1e3);
	printf("%-58s longest %.2f ms (%s, call %" PRIu64 " of the phase); over 1 ms: %" PRIu64
	       ", over 5 ms: %" PRIu64 "; peak RSS so far %.0f MiB\n", "", l->ns / 1e6, l->call,
	       l->round, over1, over5, peak_rss_kib() / 1024.0);
}

/*
 * Phases, as issue 5 asks: n clients connect (new identities) and stay online;
 * n churn rounds (a random online client disconnects, its session ends, and it
 * connects again: the sticky path); everyone leaves; close; re-open with n
 * held leases and the first connect that places them.
 */
int main(int argc, char **argv)
{
	uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 0) : 1000000;
	const char *fsync_opt = argc > 3 ? argv[3] : "false";
	char dir[] = "/tmp/vpnpool-bench-XXXXXX", conf[256], config_var[300], id[32], cmd[300];
	void *so, **sessions = calloc(n, sizeof(void *));
	double *t = malloc(n * sizeof(double)), *td = malloc(n * sizeof(double)), t0, t_open;
	double rss0, rss_online, rss_closed;
	struct longest l = { 0 }, ld = { 0 };
	struct api a;
	openvpn_plugin_handle_t h;
	FILE *f;

	if (argc < 2 || !mkdtemp(dir) || !(so = dlopen(argv[1], RTLD_NOW))) {
		fprintf(stderr, "usage: bench_plugin PLUGIN.so [clients [fsync]] (%s)\n", dlerror());
		return 2;
	}
	if (!plugin_api_find(so, &a)) {
		fprintf(stderr, "bench_plugin: %s: an entry point is missing\n", argv[1]);
		return 2;
	}
	snprintf(conf, sizeof(conf), "%s/vpnpool.conf", dir);
	f = fopen(conf, "w");
	fprintf(f, "state-dir = \"%s/state\"\nfsync = %s\n%spool \"big\" { network = \"10.0.0.0/8\" }\n",
		dir, fsync_opt, getenv("VP_BENCH_NO_USAGE") ? "usage-log = \"\"\n" : "");
	fclose(f);
	snprintf(config_var, sizeof(config_var), "config=%s/server.conf", dir);
	f = fopen(config_var + strlen("config="), "w");
	fprintf(f, "topology subnet\nserver 10.0.0.0 255.0.0.0 nopool\n");
	fclose(f);
	printf("vpnpool plugin entry points, %" PRIu64 " clients, /8 pool, journal on, fsync %s\n", n,
	       fsync_opt);
	/* The bench's own arrays are touched first, so that the resident
	 * memory it gains from here on is the plugin's. */
	memset(t, 0, n * sizeof(double));
	memset(td, 0, n * sizeof(double));
	memset(sessions, 0, n * sizeof(void *));
	h = plugin_open(&a, conf, config_var);
	if (!h)
		return 1;
	rss0 = rss_bytes();
	for (uint64_t i = 0; i < n; ++i) {
		snprintf(id, sizeof(id), "client-%" PRIu64, i);
		sessions[i] = a.ctor(h);
		t0 = now_ns();
		if (call(&a, h, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, sessions[i], id))
			return fprintf(stderr, "connect %" PRIu64 " refused\n", i), 1;
		t[i] = now_ns() - t0;
		note(&l, t[i], "connect, leases before it = call index", i);
	}
	rss_online = rss_bytes();
	report("CLIENT_CONNECT_V2, new clients, 0..n online:", t, n, &l);
	printf("resident memory: %.0f MiB after open, %.0f MiB with n online: %.0f bytes per online client\n",
	       rss0 / 1048576, rss_online / 1048576, (rss_online - rss0) / (double)n);
	l = (struct longest){ 0 };
	for (uint64_t i = 0; i < n; ++i) {
		uint64_t k = next_random() % n;

		snprintf(id, sizeof(id), "client-%" PRIu64, k);
		t0 = now_ns();
		call(&a, h, OPENVPN_PLUGIN_CLIENT_DISCONNECT, sessions[k], id);
		a.dtor(h, sessions[k]);
		td[i] = now_ns() - t0;
		note(&ld, td[i], "disconnect + destructor, n leases", i);
		sessions[k] = a.ctor(h);
		t0 = now_ns();
		if (call(&a, h, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, sessions[k], id))
			return fprintf(stderr, "churn connect %" PRIu64 " refused\n", k), 1;
		t[i] = now_ns() - t0;
		note(&l, t[i], "connect, n leases", i);
	}
	report("CLIENT_CONNECT_V2, churn rounds, n online:", t, n, &l);
	report("CLIENT_DISCONNECT + destructor, churn rounds:", td, n, &ld);
	l = (struct longest){ 0 };
	for (uint64_t i = 0; i < n; ++i) {
		snprintf(id, sizeof(id), "client-%" PRIu64, i);
		t0 = now_ns();
		call(&a, h, OPENVPN_PLUGIN_CLIENT_DISCONNECT, sessions[i], id);
		a.dtor(h, sessions[i]);
		t[i] = now_ns() - t0;
		note(&l, t[i], "disconnect + destructor, n leases, n - call index online", i);
	}
	report("CLIENT_DISCONNECT + destructor, everyone leaves:", t, n, &l);
	t0 = now_ns();
	a.close(h);
	printf("close with %" PRIu64 " held leases: %.3f s\n", n, (now_ns() - t0) / 1e9);
	/* What the first instance freed goes back to the system, so that what
	 * the re-open adds is its own (glibc keeps freed blocks otherwise). */
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	rss_closed = rss_bytes();
	t0 = now_ns();
	h = plugin_open(&a, conf, config_var);
	t_open = (now_ns() - t0) / 1e9;
	sessions[0] = a.ctor(h);
	t0 = now_ns();
	call(&a, h, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, sessions[0], "client-0");
	printf("re-open with %" PRIu64 " held leases: open %.2f s + first connect (places them) %.2f s = %.2f s\n",
	       n, t_open, (now_ns() - t0) / 1e9, t_open + (now_ns() - t0) / 1e9);
	printf("resident memory: %.0f MiB after close, %.0f MiB with n held leases: %.0f bytes per held lease\n",
	       rss_closed / 1048576, rss_bytes() / 1048576, (rss_bytes() - rss_closed) / (double)n);
	a.dtor(h, sessions[0]);
	a.close(h);
	printf("peak resident memory of the process: %.0f MiB\n", peak_rss_kib() / 1024.0);
	if (getenv("VP_BENCH_KEEP")) {	/* for profiling the re-open alone */
		printf("state kept in %s\n", dir);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) ? 1 : 0;
}
