/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The plugin after OpenVPN drops its privileges, without OpenVPN: the
 * built .so is dlopen()ed and called the way OpenVPN 2.6 calls it
 * (tests/e2e/NOTES.md 1, 4 and 9): open_v3 and UP as root, then chroot (if
 * asked), setgroups/setgid(nogroup), setuid(nobody), then many client
 * connects and disconnects, close_v1, dlclose, dlopen and a second open_v3 as
 * nobody (what a SIGHUP does), whose clients must get their addresses back.
 *
 *   drop_driver PLUGIN.so DIR [--chroot] [--no-drop] [--clients N] [--churn M]
 *               [--window W]
 *
 * --no-drop is the control: the same calls by a process that stays root
 * (and outside the jail), where every check must hold.
 *
 * DIR must not exist; it is made (root, 0755) with OpenVPN's and the
 * plugin's config files in DIR/etc, the state in DIR/var/lib/openvpn/vpnpool
 * (0755 root), the usage log in DIR/var/log/openvpn (0750 root), the metrics
 * file in DIR/run/vpnpool (0755 root), and with --chroot a jail DIR/jail
 * that holds none of them: only a copy of the plugin and its libraries, for
 * the dlopen() after the SIGHUP.
 *
 * The work runs in a child process (the "OpenVPN" that drops privileges);
 * the parent stays root, measures the journal at points the child names,
 * and reads the usage log and the metrics file once the child closed the
 * plugin.  Output: key=value lines, then "result=PASS" or "result=FAIL
 * failed=CHECK,...".  Exit status: 0 all checks held, 1 a check failed,
 * 2 usage or set-up error.
 *
 * Checks (names as printed):
 *   open       open_v3 as root succeeds
 *   connects   every connect is accepted (no refusal)
 *   sticky     a client that comes back gets the address it had
 *   journal    the journal shrank (was compacted) at least twice while the
 *              clients came and went, and never exceeded
 *              3 * rec * (leases + max(leases, 65536)) + 64 KiB, rec being
 *              the size one connect added: after a compaction the journal
 *              holds one record per lease, a compaction starts once more
 *              than max(leases, 65536) records were appended, and it runs
 *              beside the connects (a thread, starved on a busy machine),
 *              so the journal may grow by that much again, and half as
 *              much more, before it is put in place; one that does not
 *              compact never shrinks
 *   journal_stop  after close_v1 the journal holds at most a record per
 *              lease (+ 5% + 4 KiB): close compacts it
 *   logs       at most 3 warning/error lines from the plugin in all
 *   usage      the usage log has one event=connect line per connect
 *   metrics    after each close, vpnpool_connects_total is the number of
 *              connects of that plugin instance, and the pool size is > 0
 *   reopen     open_v3 as nobody (after close) succeeds
 *   reopen_sticky  clients connecting after the reopen get their addresses
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/plugin_api.h"

#define PATH_LEN 512
#define JOURNAL_SLACK (64 * 1024)
#define MAX_LOG_LINES 3
#define REOPEN_CLIENTS 200
#define SHOWN_LINES 6

struct setup {
	const char *plugin;
	char dir[PATH_LEN - 128];
	bool chroot, no_drop;
	unsigned clients, churn, window;
	char server_conf[PATH_LEN], vpnpool_conf[PATH_LEN], jail[PATH_LEN];
	char state_dir[PATH_LEN - 64], journal[PATH_LEN], usage_log[PATH_LEN], metrics[PATH_LEN];
	uid_t uid;
	gid_t gid;
};

/* ---- OpenVPN's log, kept in memory (the plugin's threads may log too) ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long log_bad, log_errors, log_notes;
static char log_shown[SHOWN_LINES][512];
static char log_last[512];

__attribute__((format(printf, 3, 4)))
static void capture_log(openvpn_plugin_log_flags_t flags, const char *name, const char *fmt, ...)
{
	char line[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (flags & (PLOG_ERR | PLOG_WARN)) {
		if (log_bad < SHOWN_LINES)
			snprintf(log_shown[log_bad], sizeof(log_shown[0]), "%s %s: %s",
				 flags & PLOG_ERR ? "ERROR" : "WARNING", name, line);
		snprintf(log_last, sizeof(log_last), "%s %s: %s",
			 flags & PLOG_ERR ? "ERROR" : "WARNING", name, line);
		log_bad++;
		log_errors += (flags & PLOG_ERR) != 0;
	} else {
		log_notes++;
	}
	pthread_mutex_unlock(&log_lock);
	if (getenv("VP_DRIVER_LOG"))
		fprintf(stderr, "%s: %s\n", name, line);
}

/* ---- the parent and the child: named sync points ------------------------ */

struct channel {
	int to_parent, to_child;
};

/* Child: tell the parent what happened ("point NAME" or "fig KEY=VALUE")
 * and wait until it has measured. */
__attribute__((format(printf, 2, 3)))
static void sync_point(const struct channel *ch, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	size_t len;
	char ack;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	len = strlen(msg);
	msg[len++] = '\n';
	if (write(ch->to_parent, msg, len) != (ssize_t)len || read(ch->to_child, &ack, 1) != 1)
		_exit(2);
}

/* ---- calling the plugin as OpenVPN does ------------------------------------ */

static openvpn_plugin_handle_t plugin_open(const struct api *a, const struct setup *s)
{
	struct openvpn_plugin_callbacks cb = { .plugin_log = capture_log };
	char config[PATH_LEN + 8], pid[32];
	const char *argv[] = { s->plugin, s->vpnpool_conf, NULL };
	const char *envp[] = { config, "verb=4", "daemon=0", "daemon_log_redirect=1",
			       "daemon_start_time=1796283407", pid, "proto_1=udp",
			       "local_1=127.0.0.1", "local_port_1=1194", "remote_port_1=1194", NULL };
	struct openvpn_plugin_args_open_in in = {
		.type_mask = 0, .argv = argv, .envp = envp, .callbacks = &cb,
	};
	struct openvpn_plugin_args_open_return out = { 0 };

	snprintf(config, sizeof(config), "config=%s", s->server_conf);
	snprintf(pid, sizeof(pid), "daemon_pid=%ld", (long)getpid());
	if (a->open(OPENVPN_PLUGINv3_STRUCTVER, &in, &out))
		return NULL;
	return out.handle;
}

/* UP and DOWN: the server's context, the tun's env (NOTES.md 1). */
static void plugin_updown(const struct api *a, openvpn_plugin_handle_t h, int type,
			  const struct setup *s)
{
	char config[PATH_LEN + 8];
	const char *argv[] = { s->plugin, "vp0", "1500", "0", "10.8.0.1", "255.255.0.0",
			       "init", NULL };
	const char *envp[] = { "dev=vp0", "dev_type=tun", "tun_mtu=1500", "link_mtu=1622",
			       "script_context=init", "ifconfig_local=10.8.0.1",
			       "ifconfig_netmask=255.255.0.0", "route_net_gateway=192.0.2.1",
			       config, "verb=4", "daemon=0", "proto_1=udp", "local_port_1=1194",
			       NULL };
	struct openvpn_plugin_args_func_in in = {
		.type = type, .argv = argv, .envp = envp, .handle = h,
	};
	struct openvpn_plugin_args_func_return out = { 0 };

	snprintf(config, sizeof(config), "config=%s", s->server_conf);
	a->func(OPENVPN_PLUGINv3_STRUCTVER, &in, &out);
}

/* A client's CLIENT_CONNECT_V2 or CLIENT_DISCONNECT.  For a connect,
 * addr gets the address of the returned ifconfig-push (or ""). */
static int client_call(const struct api *a, openvpn_plugin_handle_t h, int type, void *session,
		       unsigned client, char *addr, size_t addr_len)
{
	char cn[48], x509cn[48], tlsid[48], port[32], uport[40];
	const char *envp[] = {
		"time_unix=1796283500", "time_ascii=2026-12-03 07:38:20", "trusted_ip=203.0.113.7",
		port, "untrusted_ip=203.0.113.7", uport, "redirect_gateway=0",
		"IV_VER=2.6.14", "IV_PLAT=linux", "IV_PROTO=990", "tls_serial_0=2",
		"tls_id_1=CN=vpnpool CA", "X509_1_CN=vpnpool CA", tlsid, x509cn, cn,
		"ifconfig_netmask=255.255.0.0", "ifconfig_local=10.8.0.1",
		"script_context=init", "tun_mtu=1500", "dev_type=tun", "dev=vp0", "verb=4",
		"config=/etc/openvpn/server.conf", type == OPENVPN_PLUGIN_CLIENT_CONNECT_V2 ?
		"script_type=client-connect" : "script_type=client-disconnect",
		"bytes_received=12345", "bytes_sent=54321", "time_duration=60", NULL,
	};
	const char *argv[] = { "plugin", NULL };
	struct openvpn_plugin_string_list *list = NULL;
	struct openvpn_plugin_args_func_in in = {
		.type = type, .argv = argv, .envp = envp, .handle = h, .per_client_context = session,
	};
	struct openvpn_plugin_args_func_return out = { .return_list = &list };
	int ret;

	/* Fixed-width names and ports: every lease record has one size. */
	snprintf(cn, sizeof(cn), "common_name=client-%06u", client);
	snprintf(x509cn, sizeof(x509cn), "X509_0_CN=client-%06u", client);
	snprintf(tlsid, sizeof(tlsid), "tls_id_0=CN=client-%06u", client);
	snprintf(port, sizeof(port), "trusted_port=%u", 10000 + client % 50000);
	snprintf(uport, sizeof(uport), "un%s", port);
	ret = a->func(OPENVPN_PLUGINv3_STRUCTVER, &in, &out);
	if (addr) {
		*addr = '\0';
		if (list && list->value)
			sscanf(list->value, "ifconfig-push %63s", addr);
		(void)addr_len;
	}
	if (list) {	/* OpenVPN frees the returned list */
		free(list->name);
		free(list->value);
		free(list);
	}
	return ret;
}

/* ---- the child: what OpenVPN does ------------------------------------------ */

struct traffic {
	const struct api *a;
	openvpn_plugin_handle_t h;
	const struct channel *ch;
	void **sessions;
	char (*addr)[64];
	unsigned long connects, refused, not_sticky, changes;
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Every 10,000 lease changes the parent measures the journal. */
static void changed(struct traffic *t)
{
	if (++t->changes % 10000 == 0)
		sync_point(t->ch, "point tick");
}

static void connect_one(struct traffic *t, unsigned k, bool check_sticky)
{
	char got[64];

	t->sessions[k] = t->a->ctor(t->h);
	if (client_call(t->a, t->h, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, t->sessions[k], k, got,
			sizeof(got)) || !*got) {
		t->refused++;
		return;
	}
	t->connects++;
	if (check_sticky && strcmp(got, t->addr[k])) {
		if (t->not_sticky++ < 3)
			printf("not_sticky=client-%06u had=%s got=%s\n", k, t->addr[k], got);
	}
	snprintf(t->addr[k], sizeof(t->addr[k]), "%s", got);
	changed(t);
}

static void disconnect_one(struct traffic *t, unsigned k)
{
	if (!t->sessions[k])
		return;
	client_call(t->a, t->h, OPENVPN_PLUGIN_CLIENT_DISCONNECT, t->sessions[k], k, NULL, 0);
	t->a->dtor(t->h, t->sessions[k]);
	t->sessions[k] = NULL;
	changed(t);
}

static int drop_privileges(const struct setup *s)
{
	if (s->no_drop)
		return 0;
	if (s->chroot && (chroot(s->jail) || chdir("/"))) {
		printf("drop=failed chroot %s: %s\n", s->jail, strerror(errno));
		return -1;
	}
	/* OpenVPN 2.6: chroot, then the group (supplementary groups too),
	 * then the user. */
	if (setgroups(1, &s->gid) || setgid(s->gid) || setuid(s->uid)) {
		printf("drop=failed %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* dlopen() the plugin and find its entry points; NULL (said why) if not. */
static void *load(struct api *a, const char *path)
{
	void *so = dlopen(path, RTLD_NOW);

	if (!so) {
		printf("dlopen=failed %s\n", dlerror());
		return NULL;
	}
	if (!plugin_api_find(so, a)) {
		printf("dlopen=failed %s: an entry point is missing\n", path);
		dlclose(so);
		return NULL;
	}
	return so;
}

static int child(const struct setup *s, const struct channel *ch)
{
	struct api a;
	struct traffic t = { .a = &a, .ch = ch };
	void *so = load(&a, s->plugin), *server_ctx;
	openvpn_plugin_handle_t h;

	if (!so)
		return 2;
	t.sessions = calloc(s->clients, sizeof(void *));
	t.addr = calloc(s->clients, sizeof(*t.addr));
	if (!t.sessions || !t.addr)
		return 2;

	/* As root: open, the server's own context, UP. */
	t.h = h = plugin_open(&a, s);
	if (!h) {
		sync_point(ch, "fig open=failed");
		return 1;
	}
	sync_point(ch, "fig open=ok");
	server_ctx = a.ctor(h);
	plugin_updown(&a, h, OPENVPN_PLUGIN_UP, s);
	sync_point(ch, "point up");
	if (drop_privileges(s))
		return 2;
	sync_point(ch, "fig uid=%ld", (long)getuid());

	/* Clients arrive; each stays while the next window ones connect. */
	for (unsigned i = 0; i < s->clients; ++i) {
		connect_one(&t, i, false);
		if (i == 0)
			sync_point(ch, "point first");
		if (i >= s->window)
			disconnect_one(&t, i - s->window);
	}
	for (unsigned i = s->clients > s->window ? s->clients - s->window : 0; i < s->clients; ++i)
		disconnect_one(&t, i);
	/* Churn: old clients come back, and must get their addresses. */
	for (unsigned i = 0; i < s->churn; ++i) {
		unsigned k = next_random() % s->clients;

		connect_one(&t, k, true);
		disconnect_one(&t, k);
	}
	sync_point(ch, "fig connects=%lu", t.connects);
	sync_point(ch, "fig refused=%lu", t.refused);
	sync_point(ch, "fig not_sticky=%lu", t.not_sticky);
	sync_point(ch, "fig changes=%lu", t.changes);
	sync_point(ch, "point end");
	plugin_updown(&a, h, OPENVPN_PLUGIN_DOWN, s);
	a.dtor(h, server_ctx);
	a.close(h);
	sync_point(ch, "point closed");

	/* SIGHUP: OpenVPN dlclose()s the plugin and dlopen()s it again (under
	 * chroot from inside the jail: set_up put a copy there, as an operator
	 * must), then opens it, all as the unprivileged process. */
	dlclose(so);
	so = load(&a, s->plugin);
	t.h = h = so ? plugin_open(&a, s) : NULL;
	if (!h) {
		sync_point(ch, "fig reopen=failed");
	} else {
		unsigned long before = t.connects;

		sync_point(ch, "fig reopen=ok");
		server_ctx = a.ctor(h);
		plugin_updown(&a, h, OPENVPN_PLUGIN_UP, s);
		t.not_sticky = 0;
		t.refused = 0;
		for (unsigned i = 0; i < REOPEN_CLIENTS && i < s->clients; ++i) {
			unsigned k = next_random() % s->clients;

			if (t.sessions[k])
				continue;
			connect_one(&t, k, true);
		}
		for (unsigned k = 0; k < s->clients; ++k)
			disconnect_one(&t, k);
		sync_point(ch, "fig reopen_connects=%lu", t.connects - before);
		sync_point(ch, "fig reopen_refused=%lu", t.refused);
		sync_point(ch, "fig reopen_not_sticky=%lu", t.not_sticky);
		plugin_updown(&a, h, OPENVPN_PLUGIN_DOWN, s);
		a.dtor(h, server_ctx);
		a.close(h);
	}
	if (so)
		dlclose(so);
	pthread_mutex_lock(&log_lock);
	sync_point(ch, "fig log_warnings_errors=%lu", log_bad);
	sync_point(ch, "fig log_errors=%lu", log_errors);
	sync_point(ch, "fig log_notes=%lu", log_notes);
	for (unsigned long i = 0; i < log_bad && i < SHOWN_LINES; ++i)
		sync_point(ch, "log %s", log_shown[i]);
	if (log_bad > SHOWN_LINES)
		sync_point(ch, "log (... %lu more; the last:) %s", log_bad - SHOWN_LINES, log_last);
	pthread_mutex_unlock(&log_lock);
	sync_point(ch, "point done");
	return 0;
}

/* ---- the parent: root, outside any chroot --------------------------------- */

struct figures {
	bool open_ok, reopen_ok, done;
	long uid;
	unsigned long connects, refused, not_sticky, changes;
	unsigned long reopen_connects, reopen_refused, reopen_not_sticky;
	unsigned long log_bad;
	long long journal_up, journal_first, journal_peak, journal_end, journal_closed;
	long long journal_last;		/* the last size measured */
	unsigned journal_shrinks;	/* times it was smaller than the last */
	long long rec;
	long long usage_connects_closed, metrics_connects_closed, metrics_size_closed;
	long long usage_connects_final, metrics_connects_final;
};

static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long long)st.st_size;
}

static long long count_lines(const char *path, const char *needle)
{
	char line[8192];
	long long n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* The value of a metrics line that starts with prefix, or -1. */
static long long metric(const char *path, const char *prefix)
{
	char line[1024];
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, prefix, strlen(prefix)) && line[strlen(prefix)] == ' ')
			v = strtoll(line + strlen(prefix) + 1, NULL, 10);
	fclose(f);
	return v;
}

static void take(struct figures *f, const struct setup *s, const char *msg)
{
	long long j = file_size(s->journal);

	if (j > f->journal_peak)
		f->journal_peak = j;
	if (j >= 0 && j < f->journal_last && !f->done)
		f->journal_shrinks++;
	if (j >= 0)
		f->journal_last = j;
	if (!strncmp(msg, "log ", 4)) {
		printf("log: %s\n", msg + 4);
		return;
	}
	if (!strncmp(msg, "fig ", 4)) {
		const char *kv = msg + 4;

		printf("%s\n", kv);
		sscanf(kv, "uid=%ld", &f->uid);
		sscanf(kv, "connects=%lu", &f->connects);
		sscanf(kv, "refused=%lu", &f->refused);
		sscanf(kv, "not_sticky=%lu", &f->not_sticky);
		sscanf(kv, "changes=%lu", &f->changes);
		sscanf(kv, "reopen_connects=%lu", &f->reopen_connects);
		sscanf(kv, "reopen_refused=%lu", &f->reopen_refused);
		sscanf(kv, "reopen_not_sticky=%lu", &f->reopen_not_sticky);
		sscanf(kv, "log_warnings_errors=%lu", &f->log_bad);
		if (!strcmp(kv, "open=ok"))
			f->open_ok = true;
		if (!strcmp(kv, "reopen=ok"))
			f->reopen_ok = true;
		return;
	}
	if (!strcmp(msg, "point up"))
		f->journal_up = j;
	else if (!strcmp(msg, "point first"))
		f->journal_first = j;
	else if (!strcmp(msg, "point end"))
		f->journal_end = j;
	else if (!strcmp(msg, "point closed")) {
		f->journal_closed = j;
		f->usage_connects_closed = count_lines(s->usage_log, " event=connect ");
		f->metrics_connects_closed = metric(s->metrics, "vpnpool_connects_total");
		f->metrics_size_closed = metric(s->metrics, "vpnpool_pool_size{pool=\"p\"}");
	} else if (!strcmp(msg, "point done"))
		f->done = true;
}

static int report(const struct figures *f, const struct setup *s, int status);

static int parent(const struct setup *s, const struct channel *ch, pid_t pid)
{
	struct figures f = { .journal_peak = -1, .uid = -1 };
	char buf[1024];
	size_t have = 0;
	int status;
	FILE *in = fdopen(ch->to_parent, "r");

	while (in && fgets(buf, sizeof(buf), in)) {
		have = strlen(buf);
		if (have && buf[have - 1] == '\n')
			buf[--have] = '\0';
		take(&f, s, buf);
		if (write(ch->to_child, "k", 1) != 1)
			break;
	}
	waitpid(pid, &status, 0);
	f.usage_connects_final = count_lines(s->usage_log, " event=connect ");
	f.metrics_connects_final = metric(s->metrics, "vpnpool_connects_total");
	return report(&f, s, status);
}

static bool check(char *failed, size_t len, const char *name, bool ok)
{
	printf("check_%s=%s\n", name, ok ? "ok" : "FAIL");
	if (!ok)
		snprintf(failed + strlen(failed), len - strlen(failed), "%s%s", *failed ? "," : "",
			 name);
	return ok;
}

static int report(const struct figures *f, const struct setup *s, int status)
{
	unsigned long leases = s->clients;
	long long rec = f->journal_first - f->journal_up;
	/* The compaction thread runs at the lowest priority beside a driver
	 * that changes leases as fast as the CPU goes; on a machine busy with
	 * other tests it may finish later than one more threshold's worth of
	 * records: half as much again is allowed.  A plugin that never
	 * compacts fails on journal_shrinks (and grows past this too). */
	long long bound = 3 * rec * (long long)(leases + (leases > 65536 ? leases : 65536)) +
			  JOURNAL_SLACK;
	long long stop_bound = rec * (long long)leases * 105 / 100 + 4096;
	char failed[512] = "";

	printf("mode=%s%s clients=%u churn=%u window=%u\n", s->chroot ? "chroot" : "plain",
	       s->no_drop ? "+no-drop" : "", s->clients, s->churn, s->window);
	printf("journal_bytes_up=%lld record_bytes=%lld journal_bytes_peak=%lld journal_bound=%lld\n",
	       f->journal_up, rec, f->journal_peak, bound);
	printf("journal_bytes_end=%lld journal_bytes_closed=%lld journal_stop_bound=%lld\n",
	       f->journal_end, f->journal_closed, stop_bound);
	printf("journal_records_peak~%lld (leases %lu) journal_shrinks=%u\n",
	       rec > 0 ? f->journal_peak / rec : -1, leases, f->journal_shrinks);
	printf("usage_connects_at_close=%lld metrics_connects_total_at_close=%lld metrics_pool_size=%lld\n",
	       f->usage_connects_closed, f->metrics_connects_closed, f->metrics_size_closed);
	printf("usage_connects_final=%lld metrics_connects_total_final=%lld\n",
	       f->usage_connects_final, f->metrics_connects_final);
	check(failed, sizeof(failed), "open", f->open_ok);
	check(failed, sizeof(failed), "drop", f->uid == (long)(s->no_drop ? 0 : s->uid));
	check(failed, sizeof(failed), "connects",
	      f->refused == 0 && f->connects == (unsigned long)s->clients + s->churn);
	check(failed, sizeof(failed), "sticky", f->connects && f->not_sticky == 0);
	check(failed, sizeof(failed), "journal",
	      rec > 0 && f->journal_peak <= bound && f->journal_shrinks >= 2);
	check(failed, sizeof(failed), "journal_stop", rec > 0 && f->journal_closed <= stop_bound);
	check(failed, sizeof(failed), "logs", f->done && f->log_bad <= MAX_LOG_LINES);
	check(failed, sizeof(failed), "usage",
	      f->usage_connects_closed == (long long)f->connects &&
	      f->usage_connects_final == (long long)(f->connects + f->reopen_connects));
	check(failed, sizeof(failed), "metrics",
	      f->metrics_connects_closed == (long long)f->connects && f->metrics_size_closed > 0);
	check(failed, sizeof(failed), "reopen", f->reopen_ok);
	check(failed, sizeof(failed), "reopen_sticky",
	      f->reopen_ok && f->reopen_connects > 0 && f->reopen_refused == 0 &&
	      f->reopen_not_sticky == 0);
	check(failed, sizeof(failed), "metrics_reopen",
	      f->reopen_ok && f->metrics_connects_final == (long long)f->reopen_connects);
	check(failed, sizeof(failed), "child",
	      f->done && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (*failed) {
		printf("result=FAIL failed=%s\n", failed);
		return 1;
	}
	printf("result=PASS\n");
	return 0;
}

/* ---- set-up: the files an operator would have -------------------------------- */

static int make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) && errno != EEXIST) {
		fprintf(stderr, "drop_driver: mkdir %s: %s\n", path, strerror(errno));
		return -1;
	}
	return chmod(path, mode);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f)) {
		fprintf(stderr, "drop_driver: cannot write %s\n", path);
		return -1;
	}
	return chmod(path, 0644);
}

/* mkdir -p of path's directory, 0755. */
static int make_parents(char *path)
{
	for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(path, 0755) && errno != EEXIST) {
			fprintf(stderr, "drop_driver: mkdir %s: %s\n", path, strerror(errno));
			*slash = '/';
			return -1;
		}
		*slash = '/';
	}
	return 0;
}

/* path, copied to the same path under the jail (0755). */
static int copy_into_jail(const struct setup *s, const char *path)
{
	char to[2 * PATH_LEN], buf[65536];
	ssize_t n = 0;
	int in, out, ret = -1;

	snprintf(to, sizeof(to), "%s%s", s->jail, path);
	if (make_parents(to))
		return -1;
	in = open(path, O_RDONLY | O_CLOEXEC);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			break;
	if (in >= 0 && out >= 0 && n == 0)
		ret = 0;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out))
		ret = -1;
	if (ret)
		fprintf(stderr, "drop_driver: cannot copy %s into the jail\n", path);
	return ret;
}

/* What OpenVPN needs in the jail to dlopen() the plugin again after a
 * SIGHUP (tests/e2e/NOTES.md 9): the .so and the libraries it links. */
static int plugin_into_jail(const struct setup *s)
{
	char cmd[PATH_LEN + 32], line[PATH_LEN + 128], lib[PATH_LEN];
	FILE *ldd;
	int ret = copy_into_jail(s, s->plugin);

	if (ret || strchr(s->plugin, '\''))
		return -1;
	snprintf(cmd, sizeof(cmd), "ldd '%s'", s->plugin);
	ldd = popen(cmd, "r");
	if (!ldd)
		return -1;
	while (!ret && fgets(line, sizeof(line), ldd))
		if (sscanf(line, " %*s => %511s", lib) == 1 && lib[0] == '/')
			ret = copy_into_jail(s, lib);
	if (pclose(ldd))
		ret = -1;
	return ret;
}

static int set_up(struct setup *s)
{
	static const char *const dirs[] = { "", "/etc", "/var", "/var/lib", "/var/lib/openvpn",
					    "/var/lib/openvpn/vpnpool", "/var/log",
					    "/var/log/openvpn", "/run", "/run/vpnpool", "/jail" };
	char path[PATH_LEN + 64], text[4 * PATH_LEN];
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");

	if (!gr)
		gr = getgrnam("nobody");
	if (!pw || !gr || geteuid() != 0) {
		fprintf(stderr, "drop_driver: needs root, a user nobody and a group nogroup\n");
		return -1;
	}
	s->uid = pw->pw_uid;
	s->gid = gr->gr_gid;
	if (mkdir(s->dir, 0755)) {
		fprintf(stderr, "drop_driver: mkdir %s: %s (it must not exist)\n", s->dir,
			strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); ++i) {
		snprintf(path, sizeof(path), "%s%s", s->dir, dirs[i]);
		if (make_dir(path, strcmp(dirs[i], "/var/log/openvpn") ? 0755 : 0750))
			return -1;
	}
	snprintf(s->server_conf, sizeof(s->server_conf), "%s/etc/server.conf", s->dir);
	snprintf(s->vpnpool_conf, sizeof(s->vpnpool_conf), "%s/etc/vpnpool.conf", s->dir);
	snprintf(s->jail, sizeof(s->jail), "%s/jail", s->dir);
	snprintf(s->state_dir, sizeof(s->state_dir), "%s/var/lib/openvpn/vpnpool", s->dir);
	snprintf(s->journal, sizeof(s->journal), "%s/leases.journal", s->state_dir);
	snprintf(s->usage_log, sizeof(s->usage_log), "%s/var/log/openvpn/vpnpool-usage.log",
		 s->dir);
	snprintf(s->metrics, sizeof(s->metrics), "%s/run/vpnpool/metrics.prom", s->dir);
	snprintf(text, sizeof(text),
		 "mode server\ntls-server\ndev tun\ntopology subnet\n"
		 "server 10.8.0.0 255.255.0.0 nopool\nuser nobody\ngroup %s\n%s%s%s"
		 "persist-tun\npersist-key\nplugin %s %s\n",
		 gr->gr_name, s->chroot ? "chroot " : "", s->chroot ? s->jail : "",
		 s->chroot ? "\n" : "", s->plugin, s->vpnpool_conf);
	if (write_file(s->server_conf, text) || (s->chroot && plugin_into_jail(s)))
		return -1;
	snprintf(text, sizeof(text),
		 "state-dir = \"%s\"\nusage-log = \"%s\"\nmetrics-file = \"%s\"\n"
		 "pool \"p\" { network = \"10.8.0.0/16\" }\n",
		 s->state_dir, s->usage_log, s->metrics);
	return write_file(s->vpnpool_conf, text);
}

static unsigned number(const char *text)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);

	return *end || !v || v > 1000000 ? 0 : (unsigned)v;
}

int main(int argc, char **argv)
{
	struct setup s = { .clients = 40000, .churn = 120000, .window = 1000 };
	int up[2], down[2];
	pid_t pid;

	if (argc < 3)
		goto usage;
	s.plugin = argv[1];
	if (argv[1][0] != '/' || snprintf(s.dir, sizeof(s.dir), "%s", argv[2]) >= (int)sizeof(s.dir) ||
	    argv[2][0] != '/')
		goto usage;
	for (int i = 3; i < argc; ++i) {
		if (!strcmp(argv[i], "--chroot"))
			s.chroot = true;
		else if (!strcmp(argv[i], "--no-drop"))
			s.no_drop = true;
		else if (!strcmp(argv[i], "--clients") && i + 1 < argc)
			s.clients = number(argv[++i]);
		else if (!strcmp(argv[i], "--churn") && i + 1 < argc)
			s.churn = number(argv[++i]);
		else if (!strcmp(argv[i], "--window") && i + 1 < argc)
			s.window = number(argv[++i]);
		else
			goto usage;
	}
	if (!s.clients || !s.churn || !s.window || s.clients > 65000)
		goto usage;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (set_up(&s) || pipe(up) || pipe(down))
		return 2;
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		struct channel ch = { .to_parent = up[1], .to_child = down[0] };

		close(up[0]);
		close(down[1]);
		_exit(child(&s, &ch));
	}
	close(up[1]);
	close(down[0]);
	return parent(&s, &(struct channel){ .to_parent = up[0], .to_child = down[1] }, pid);

usage:
	fprintf(stderr,
		"usage: drop_driver /ABS/PLUGIN.so /ABS/NEW-DIR [--chroot] [--no-drop] [--clients N (<= 65000)] [--churn M] [--window W]\n");
	return 2;
}
