/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The plugin with a PostgreSQL store, through OpenVPN's entry points:
 * CLIENT_CONNECT_V2 defers, CLIENT_CONNECT_DEFER_V2 is polled until the
 * answer (as OpenVPN polls), disconnects and destructors.  Run by
 * tests/pgplugin.sh, which starts a throwaway cluster (tests/pg_unit.sh)
 * and sets VP_PG_URI.  Each test has pools and nodes of its own in the
 * shared database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vp_autoconf.h"
#ifdef HAVE_OPENVPN_SUBDIR_HEADER
#include <openvpn/openvpn-plugin.h>
#else
#include <openvpn-plugin.h>
#endif

#include "core/pgstore.h"
#include "testlib.h"

static const char *uri;
static char plugin_log_text[1 << 20];

__attribute__((format(printf, 3, 4)))
static void fake_plugin_log(openvpn_plugin_log_flags_t flags, const char *name, const char *fmt,
			    ...)
{
	size_t used = strlen(plugin_log_text);
	va_list ap;

	(void)flags;
	(void)name;
	if (used + 2 >= sizeof(plugin_log_text))
		return;
	va_start(ap, fmt);
	vsnprintf(plugin_log_text + used, sizeof(plugin_log_text) - used - 1, fmt, ap);
	va_end(ap);
	strcat(plugin_log_text, "\n");
}

struct server {
	char *dir;
	char conf[4200];
	openvpn_plugin_handle_t handle;
	unsigned mask;
};

static const char *const up_env[] = { "dev=tun9", "ifconfig_local=10.20.0.1",
				      "ifconfig_netmask=255.255.0.0", NULL };

static int call(struct server *s, void *session, int type, const char *const *envp,
		struct openvpn_plugin_string_list **list)
{
	struct openvpn_plugin_args_func_in in = {
		.type = type, .envp = (const char **)envp, .handle = s->handle,
		.per_client_context = session,
	};
	struct openvpn_plugin_args_func_return out = { .return_list = list };

	return openvpn_plugin_func_v3(OPENVPN_PLUGINv3_STRUCTVER, &in, &out);
}

/* A server of node on the test's database with body's pools, after UP. */
static void server_open(struct server *s, const char *node, const char *body)
{
	struct openvpn_plugin_callbacks cb = { .plugin_log = fake_plugin_log };
	const char *argv[] = { "openvpn-plugin-vpnpool.so", s->conf, "instance=a", NULL };
	const char *envp[] = { "verb=3", NULL };
	struct openvpn_plugin_args_open_in in = { .argv = argv, .envp = envp, .callbacks = &cb };
	struct openvpn_plugin_args_open_return out = { 0 };
	char head[4096];
	FILE *f;

	plugin_log_text[0] = '\0';
	s->dir = tl_tmpdir();
	snprintf(s->conf, sizeof(s->conf), "%s/vpnpool.conf", s->dir);
	snprintf(head, sizeof(head),
		 "state-dir = \"%s/state\"\nstore = \"%s\"\nnode = \"%s\"\nhost-routes = no\n",
		 s->dir, uri, node);
	f = fopen(s->conf, "w");
	assert_non_null(f);
	fputs(head, f);
	fputs(body, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(openvpn_plugin_open_v3(OPENVPN_PLUGINv3_STRUCTVER, &in, &out),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	s->handle = out.handle;
	s->mask = out.type_mask;
	assert_int_equal(call(s, NULL, OPENVPN_PLUGIN_UP, up_env, NULL),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
}

static char *server_close(struct server *s)
{
	char path[4300];
	char *text = NULL;
	size_t cap = 0;
	FILE *f;

	openvpn_plugin_close_v1(s->handle);
	snprintf(path, sizeof(path), "%s/state/usage.log", s->dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(getdelim(&text, &cap, '\0', f) > 0);
	fclose(f);
	tl_rmtree(s->dir);
	free(s->dir);
	return text;
}

struct client_env {
	char id[80];
	const char *envp[8];
};

static const char *const *client_env(struct client_env *e, const char *cn)
{
	snprintf(e->id, sizeof(e->id), "common_name=%s", cn);
	e->envp[0] = "ifconfig_local=10.20.0.1";
	e->envp[1] = "ifconfig_netmask=255.255.0.0";
	e->envp[2] = "trusted_ip=203.0.113.7";
	e->envp[3] = "trusted_port=1194";
	e->envp[4] = e->id;
	e->envp[5] = "bytes_received=10";
	e->envp[6] = "bytes_sent=20";
	e->envp[7] = NULL;
	return e->envp;
}

static void free_list(struct openvpn_plugin_string_list *list)
{
	while (list) {
		struct openvpn_plugin_string_list *next = list->next;

		free(list->name);
		free(list->value);
		free(list);
		list = next;
	}
}

/* A connect as OpenVPN makes it: CONNECT_V2, then DEFER_V2 until it is
 * not DEFERRED.  The final code; config the lines handed back. */
static int connect_cn(struct server *s, void *session, const char *cn, char *config, size_t len)
{
	struct openvpn_plugin_string_list *list = NULL;
	struct client_env e;
	int ret;

	config[0] = '\0';
	ret = call(s, session, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, client_env(&e, cn), &list);
	assert_null(list);
	if (ret != OPENVPN_PLUGIN_FUNC_DEFERRED)
		return ret;
	do {
		usleep(200);
		free_list(list);
		list = NULL;
		ret = call(s, session, OPENVPN_PLUGIN_CLIENT_CONNECT_DEFER_V2, client_env(&e, cn),
			   &list);
	} while (ret == OPENVPN_PLUGIN_FUNC_DEFERRED);
	if (list) {
		assert_string_equal(list->name, "config");
		snprintf(config, len, "%s", list->value);
	}
	free_list(list);
	return ret;
}

static void disconnect_cn(struct server *s, void *session, const char *cn)
{
	struct client_env e;

	assert_int_equal(call(s, session, OPENVPN_PLUGIN_CLIENT_DISCONNECT, client_env(&e, cn),
			      NULL), OPENVPN_PLUGIN_FUNC_SUCCESS);
}

static unsigned count_lines(const char *text, const char *a, const char *b)
{
	unsigned n = 0;

	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);
		char *line = strndup(text, len);

		assert_non_null(line);
		n += (!a || strstr(line, a)) && (!b || strstr(line, b));
		free(line);
		text += len + (nl != NULL);
	}
	return n;
}

/* Whether the identity's lease is online in the database (the command's
 * view). */
struct find {
	const char *id;
	bool online, found;
};

static int find_lease(void *ud, const struct vp_pg_lease *l)
{
	struct find *f = ud;

	if (l->rec.identity_len == strlen(f->id) && !memcmp(l->rec.identity, f->id, strlen(f->id))) {
		f->found = true;
		f->online |= l->rec.state == VP_LEASE_ONLINE;
	}
	return 0;
}

static bool lease_online(const char *id, bool *found)
{
	struct vp_config *c = tl_config_new("/nonexistent");
	struct vp_pg_options o = { .config = c };
	struct find f = { .id = id };
	struct vp_pg *pg;

	c->store = strdup(uri);
	c->store_timeout_ms = 5000;
	c->node_timeout = 60;
	assert_int_equal(vp_pg_open(&pg, &o), 0);
	assert_int_equal(vp_pg_each_lease(pg, find_lease, &f), 0);
	vp_pg_close(pg);
	vp_config_free(c);
	free(c);
	if (found)
		*found = f.found;
	return f.online;
}

/* ---- the tests ------------------------------------------------------------ */

static void pg_plugin__connect__deferred_then_answered_and_sticky(void **state)
{
	struct server s;
	char config[512];
	void *alice, *again;
	struct client_env e;
	struct openvpn_plugin_string_list *list = NULL;
	char *log;

	(void)state;
	server_open(&s, "n1", "pool \"pa\" { network = \"10.20.0.0/16\" range = \"10.20.1.1-10.20.1.9\" }\n");
	assert_true(s.mask & OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_CLIENT_CONNECT_DEFER_V2));
	alice = openvpn_plugin_client_constructor_v1(s.handle);
	/* The first call answers at once: deferred. */
	assert_int_equal(call(&s, alice, OPENVPN_PLUGIN_CLIENT_CONNECT_V2,
			      client_env(&e, "alice"), &list), OPENVPN_PLUGIN_FUNC_DEFERRED);
	assert_null(list);
	openvpn_plugin_client_destructor_v1(s.handle, alice);	/* gone while pending */

	alice = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, alice, "alice", config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_non_null(strstr(config, "ifconfig-push 10.20.1."));
	assert_true(lease_online("alice", NULL));
	disconnect_cn(&s, alice, "alice");
	openvpn_plugin_client_destructor_v1(s.handle, alice);
	again = openvpn_plugin_client_constructor_v1(s.handle);
	{
		char config2[512];

		assert_int_equal(connect_cn(&s, again, "alice", config2, sizeof(config2)),
				 OPENVPN_PLUGIN_FUNC_SUCCESS);
		assert_string_equal(config2, config);	/* sticky */
	}
	openvpn_plugin_client_destructor_v1(s.handle, again);	/* ends it: queued */
	log = server_close(&s);
	assert_false(lease_online("alice", NULL));	/* the close sent it */
	assert_int_equal(count_lines(log, "event=connect", "identity=alice"), 2);
	assert_int_equal(count_lines(log, "event=connect", "node=n1"), 2);
	assert_int_equal(count_lines(log, "event=disconnect", "identity=alice"), 2);
	assert_int_equal(count_lines(log, "event=disconnect", "bytes_sent=20"), 1);
	free(log);
}

static void pg_plugin__client_gone_while_pending__no_online_lease_left(void **state)
{
	struct server s;
	struct client_env e;
	struct openvpn_plugin_string_list *list = NULL;
	bool found = false;
	void *c;
	char *log;

	(void)state;
	server_open(&s, "n2", "pool \"pb\" { network = \"10.20.0.0/16\" range = \"10.20.2.1-10.20.2.9\" }\n");
	c = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(call(&s, c, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, client_env(&e, "pending-bob"),
			      &list), OPENVPN_PLUGIN_FUNC_DEFERRED);
	openvpn_plugin_client_destructor_v1(s.handle, c);
	log = server_close(&s);		/* the worker's queue run before it stops */
	assert_false(lease_online("pending-bob", &found));
	assert_int_equal(count_lines(log, "event=connect", NULL), 0);
	free(log);
}

static void pg_plugin__pool_full__refused_exhausted(void **state)
{
	struct server s;
	char config[512];
	void *a, *b;
	char *log;

	(void)state;
	server_open(&s, "n3", "pool \"pc\" { network = \"10.20.0.0/16\" range = \"10.20.3.1-10.20.3.1\" }\n");
	a = openvpn_plugin_client_constructor_v1(s.handle);
	b = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, a, "carol", config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_string_equal(config, "ifconfig-push 10.20.3.1 255.255.0.0\n");
	assert_int_equal(connect_cn(&s, b, "dave", config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_ERROR);
	openvpn_plugin_client_destructor_v1(s.handle, b);
	openvpn_plugin_client_destructor_v1(s.handle, a);
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=reject", "identity=dave reason=exhausted"), 1);
	free(log);
}

/* warn-at with a store: each threshold crossed upward is logged once,
 * after the connect that crossed it. */
static void pg_plugin__pool_filling__warns_at_each_threshold_once(void **state)
{
	struct server s;
	char config[512], cn[16];
	void *c[5];
	char *log, *w80, *c4;

	(void)state;
	server_open(&s, "n6", "pool \"pw\" { network = \"10.20.0.0/16\" range = \"10.20.6.1-10.20.6.5\" }\n");
	for (int i = 0; i < 5; ++i) {
		snprintf(cn, sizeof(cn), "w%d", i);
		c[i] = openvpn_plugin_client_constructor_v1(s.handle);
		assert_int_equal(connect_cn(&s, c[i], cn, config, sizeof(config)),
				 OPENVPN_PLUGIN_FUNC_SUCCESS);
	}
	for (int i = 0; i < 5; ++i)
		openvpn_plugin_client_destructor_v1(s.handle, c[i]);
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=warn", "pool=pw in_use=4 size=5 percent=80"), 1);
	assert_int_equal(count_lines(log, "event=warn", "pool=pw in_use=5 size=5 percent=95"), 1);
	assert_int_equal(count_lines(log, "event=warn", NULL), 2);
	/* after the connect that crossed it */
	c4 = strstr(log, "identity=w3 ");
	w80 = strstr(log, "percent=80");
	assert_non_null(c4);
	assert_true(w80 > c4);
	free(log);
}

/* SIGHUP: OpenVPN ends every client (destructors), closes the plugin and
 * opens it again; the disconnects queued are sent before the close
 * returns, and the client gets its address back from the new plugin. */
static void pg_plugin__reopened__disconnects_sent_and_sticky(void **state)
{
	static const char body[] =
		"pool \"pd\" { network = \"10.20.0.0/16\" range = \"10.20.4.1-10.20.4.9\" }\n";
	struct server s;
	char config[512], config2[512];
	void *c;
	char *log;

	(void)state;
	server_open(&s, "n4", body);
	c = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, c, "erin", config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	openvpn_plugin_client_destructor_v1(s.handle, c);
	free(server_close(&s));
	assert_false(lease_online("erin", NULL));
	server_open(&s, "n4", body);
	c = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, c, "erin", config2, sizeof(config2)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_string_equal(config2, config);
	assert_true(lease_online("erin", NULL));
	openvpn_plugin_client_destructor_v1(s.handle, c);
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=connect", "identity=erin"), 1);
	free(log);
}

static void pg_ctl(const char *what)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s %s", getenv("VP_PG_CTL"), what);
	assert_int_equal(system(cmd), 0);
}

/* The database frozen (SIGSTOP): the connect is refused with store-error
 * once store-timeout has passed, every call answering at once meanwhile;
 * thawed, the connect left nothing online and service resumes. */
static void pg_plugin__database_frozen__refused_store_error_then_resumes(void **state)
{
	static const char body[] = "store-timeout = 1\n"
		"pool \"pe\" { network = \"10.20.0.0/16\" range = \"10.20.5.1-10.20.5.9\" }\n";
	struct server s;
	char config[512];
	void *c, *d;
	char *log;

	(void)state;
	if (!getenv("VP_PG_CTL"))
		skip();
	server_open(&s, "n5", body);
	c = openvpn_plugin_client_constructor_v1(s.handle);
	d = openvpn_plugin_client_constructor_v1(s.handle);
	pg_ctl("freeze");
	assert_int_equal(connect_cn(&s, c, "frank", config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_ERROR);
	pg_ctl("thaw");
	openvpn_plugin_client_destructor_v1(s.handle, c);
	/* The store reconnects by itself (at most once a second). */
	while (connect_cn(&s, d, "frank", config, sizeof(config)) != OPENVPN_PLUGIN_FUNC_SUCCESS)
		usleep(100000);
	/* The frozen connect left nothing online: frank's new session is its
	 * sticky slot 0 (the first address), not an extra duplicate-cn one. */
	assert_string_equal(config, "ifconfig-push 10.20.5.1 255.255.0.0\n");
	openvpn_plugin_client_destructor_v1(s.handle, d);
	log = server_close(&s);
	{
		bool found = false;

		assert_false(lease_online("frank", &found));
		assert_true(found);
	}
	assert_true(count_lines(log, "event=reject", "reason=store-error") >= 1);
	assert_int_equal(count_lines(log, "event=connect", "identity=frank"), 1);
	assert_non_null(strstr(plugin_log_text, "did not answer within 1000 ms"));
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pg_plugin__connect__deferred_then_answered_and_sticky),
		cmocka_unit_test(pg_plugin__client_gone_while_pending__no_online_lease_left),
		cmocka_unit_test(pg_plugin__pool_full__refused_exhausted),
		cmocka_unit_test(pg_plugin__pool_filling__warns_at_each_threshold_once),
		cmocka_unit_test(pg_plugin__reopened__disconnects_sent_and_sticky),
		cmocka_unit_test(pg_plugin__database_frozen__refused_store_error_then_resumes),
	};

	uri = getenv("VP_PG_URI");
	if (!uri) {
		fprintf(stderr, "test_pgplugin: VP_PG_URI not set: run it through tests/pgplugin.sh\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
