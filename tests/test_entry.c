/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The plugin through OpenVPN's own entry points: open_v3, the client
 * constructor, func_v3 (UP, CLIENT_CONNECT_V2, CLIENT_DISCONNECT), the client
 * destructor and close_v1, called in the orders OpenVPN uses
 * (tests/e2e/NOTES.md).  Asserts on what a user sees: the config handed
 * back, the usage log in a scratch state directory, OpenVPN's log.
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

#include "testlib.h"

/* ---- OpenVPN's side ------------------------------------------------------ */

static char plugin_log_text[1 << 20];	/* every plugin_log line, '\n' after each */

__attribute__((format(printf, 3, 4)))
static void fake_plugin_log(openvpn_plugin_log_flags_t flags, const char *name, const char *fmt,
			    ...)
{
	size_t used = strlen(plugin_log_text);
	va_list ap;

	(void)flags;
	(void)name;
	if (used + 2 >= sizeof(plugin_log_text))
		return;		/* full: keep what is there */
	va_start(ap, fmt);
	vsnprintf(plugin_log_text + used, sizeof(plugin_log_text) - used - 1, fmt, ap);
	va_end(ap);
	strcat(plugin_log_text, "\n");
}

struct server {
	char *dir;
	char conf[4200];
	openvpn_plugin_handle_t handle;
};

/* path holds a, then b. */
static void write_file(const char *path, const char *a, const char *b)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(a, f);
	fputs(b, f);
	assert_int_equal(fclose(f), 0);
}

/* A plugin opened on "state-dir = DIR" + body, as OpenVPN opens it; with
 * server_conf, OpenVPN's config= names a server.conf of that text. */
static void server_open_with(struct server *s, const char *body, const char *server_conf)
{
	struct openvpn_plugin_callbacks cb = { .plugin_log = fake_plugin_log };
	const char *argv[] = { "openvpn-plugin-vpnpool.so", s->conf, NULL };
	char config_var[4300];
	const char *envp[] = { "verb=3", "daemon=0", server_conf ? config_var : NULL, NULL };
	struct openvpn_plugin_args_open_in in = { .argv = argv, .envp = envp, .callbacks = &cb };
	struct openvpn_plugin_args_open_return out = { 0 };

	plugin_log_text[0] = '\0';
	s->dir = tl_tmpdir();
	snprintf(s->conf, sizeof(s->conf), "%s/vpnpool.conf", s->dir);
	snprintf(config_var, sizeof(config_var), "state-dir = \"%s/state\"\n", s->dir);
	write_file(s->conf, config_var, body);
	if (server_conf) {
		snprintf(config_var, sizeof(config_var), "config=%s/server.conf", s->dir);
		write_file(config_var + strlen("config="), server_conf, "");
	}
	assert_int_equal(openvpn_plugin_open_v3(OPENVPN_PLUGINv3_STRUCTVER, &in, &out),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_true(out.type_mask & OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_CLIENT_CONNECT_V2));
	assert_true(out.type_mask & OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_CLIENT_DISCONNECT));
	assert_true(out.type_mask & OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_UP));
	s->handle = out.handle;
}

static void server_open(struct server *s, const char *body)
{
	server_open_with(s, body, NULL);
}

/* Close the plugin (which writes out the usage log); the log's text. */
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

/* A client environment: the server's subnet ifconfig_* and the client's. */
struct client_env {
	char id[80], port[32];
	const char *envp[8];
};

static const char *const *client_env(struct client_env *e, const char *identity_var,
				     const char *identity, unsigned port)
{
	snprintf(e->id, sizeof(e->id), "%s=%s", identity_var, identity);
	snprintf(e->port, sizeof(e->port), "trusted_port=%u", port);
	e->envp[0] = "ifconfig_local=10.8.0.1";
	e->envp[1] = "ifconfig_netmask=255.255.0.0";
	e->envp[2] = "trusted_ip=203.0.113.7";
	e->envp[3] = e->port;
	e->envp[4] = identity ? e->id : "untrusted_ip=203.0.113.7";
	e->envp[5] = NULL;
	return e->envp;
}

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

/* Connect: the plugin's return code; config gets the returned "config"
 * value ("" when none). */
static int connect_env(struct server *s, void *session, const char *const *envp,
		       char *config, size_t len)
{
	struct openvpn_plugin_string_list *list = NULL;
	int ret = call(s, session, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, envp, &list);

	config[0] = '\0';
	if (list) {
		assert_string_equal(list->name, "config");
		assert_null(list->next);
		snprintf(config, len, "%s", list->value);
	}
	free_list(list);
	return ret;
}

static int connect_cn(struct server *s, void *session, const char *cn, unsigned port,
		      char *config, size_t len)
{
	struct client_env e;

	return connect_env(s, session, client_env(&e, "common_name", cn, port), config, len);
}

static void disconnect_cn(struct server *s, void *session, const char *cn, unsigned port)
{
	struct client_env e;

	assert_int_equal(call(s, session, OPENVPN_PLUGIN_CLIENT_DISCONNECT,
			      client_env(&e, "common_name", cn, port), NULL),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
}

/* Lines of text holding every one of up to two needles (NULL: none). */
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

/* One address, kept for an hour after its client leaves. */
static const char one_address[] =
	"hold-time = 3600\n"
	"pool \"p\" { network = \"10.8.0.0/16\" range = \"10.8.1.1-10.8.1.1\" }\n";

/* ---- the tests ------------------------------------------------------------ */

static void connect_disconnect_destructor__one_disconnect_and_the_lease_held(void **state)
{
	struct server s;
	char config[256];
	void *alice, *bob, *again;
	char *log;

	(void)state;
	server_open(&s, one_address);
	alice = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, alice, "alice", 1000, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	disconnect_cn(&s, alice, "alice", 1000);
	openvpn_plugin_client_destructor_v1(s.handle, alice);

	bob = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, bob, "bob", 1001, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_ERROR);	/* alice's address is held for her */
	again = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, again, "alice", 1002, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_string_equal(config, "ifconfig-push 10.8.1.1 255.255.0.0\n");
	openvpn_plugin_client_destructor_v1(s.handle, bob);
	openvpn_plugin_client_destructor_v1(s.handle, again);
	assert_null(strstr(plugin_log_text, "was not online"));
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=disconnect", NULL), 2);	/* one per session */
	assert_int_equal(count_lines(log, "event=disconnect", "identity=alice"), 2);
	/* The engine hands the lease back at disconnect: the line names it. */
	assert_int_equal(count_lines(log, "event=disconnect", "address=10.8.1.1"), 2);
	assert_int_equal(count_lines(log, "event=reject", "identity=bob reason=exhausted"), 1);
	assert_int_equal(count_lines(log, "event=connect", "identity=alice"), 2);
	free(log);
}

static void connect_then_destructor_only__lease_ended_once(void **state)
{
	struct server s;
	char config[256];
	void *alice, *bob;
	char *log;

	(void)state;
	server_open(&s, one_address);
	alice = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, alice, "alice", 1000, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	/* OpenVPN's cipher setup failed: no CLIENT_DISCONNECT, only the destructor. */
	openvpn_plugin_client_destructor_v1(s.handle, alice);

	bob = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, bob, "bob", 1001, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_ERROR);	/* held for alice, not freed twice */
	openvpn_plugin_client_destructor_v1(s.handle, bob);
	assert_null(strstr(plugin_log_text, "was not online"));
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=disconnect", NULL), 1);
	assert_int_equal(count_lines(log, "event=disconnect", "identity=alice"), 1);
	free(log);
}

static void long_identity__disconnect_holds_its_lease_and_logs_it(void **state)
{
	const char *cn = "a-client-whose-common-name-is-longer-than-a-session-keeps-inline";
	struct server s;
	char config[256];
	void *a, *other;
	char *log;

	(void)state;
	server_open(&s, one_address);
	a = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, a, cn, 1000, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	disconnect_cn(&s, a, cn, 1000);
	openvpn_plugin_client_destructor_v1(s.handle, a);
	other = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, other, "bob", 1001, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_ERROR);	/* the one address is held */
	openvpn_plugin_client_destructor_v1(s.handle, other);
	assert_null(strstr(plugin_log_text, "was not online"));
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=disconnect", cn), 1);
	assert_int_equal(count_lines(log, "event=disconnect", "address=10.8.1.1"), 1);
	free(log);
}

static void failed_connect_then_disconnect_and_destructor__releases_nothing(void **state)
{
	struct server s;
	char config[256];
	void *alice, *bob, *carol;
	char *log;

	(void)state;
	server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" range = \"10.8.1.1-10.8.1.1\" }\n");
	alice = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, alice, "alice", 1000, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	bob = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, bob, "bob", 1001, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_ERROR);
	assert_string_equal(config, "");
	/* What OpenVPN does after a failed connect: DISCONNECT at once, later the destructor. */
	disconnect_cn(&s, bob, "bob", 1001);
	openvpn_plugin_client_destructor_v1(s.handle, bob);

	/* alice still holds the only address: a newcomer is refused. */
	carol = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, carol, "carol", 1002, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_ERROR);
	openvpn_plugin_client_destructor_v1(s.handle, carol);
	disconnect_cn(&s, alice, "alice", 1000);
	openvpn_plugin_client_destructor_v1(s.handle, alice);
	assert_null(strstr(plugin_log_text, "was not online"));
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=disconnect", NULL), 1);
	assert_int_equal(count_lines(log, "event=disconnect", "identity=alice"), 1);
	assert_int_equal(count_lines(log, "event=reject", "identity=bob reason=exhausted"), 1);
	assert_int_equal(count_lines(log, "event=reject", "identity=carol reason=exhausted"), 1);
	free(log);
}

static void duplicate_sessions_of_one_cn__get_distinct_addresses(void **state)
{
	struct server s;
	char first[256], second[256];
	void *a, *b;
	char *log;

	(void)state;
	server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" range = \"10.8.1.1-10.8.1.9\" }\n");
	a = openvpn_plugin_client_constructor_v1(s.handle);
	b = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, a, "alice", 1000, first, sizeof(first)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_int_equal(connect_cn(&s, b, "alice", 1001, second, sizeof(second)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_string_equal(first, "ifconfig-push 10.8.1.1 255.255.0.0\n");
	assert_string_equal(second, "ifconfig-push 10.8.1.2 255.255.0.0\n");
	disconnect_cn(&s, a, "alice", 1000);
	openvpn_plugin_client_destructor_v1(s.handle, a);
	disconnect_cn(&s, b, "alice", 1001);
	openvpn_plugin_client_destructor_v1(s.handle, b);
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=connect", "address=10.8.1.1 "), 1);
	assert_int_equal(count_lines(log, "event=connect", "address=10.8.1.2 "), 1);
	assert_int_equal(count_lines(log, "event=disconnect", NULL), 2);
	free(log);
}

/* A client with identity value id: the connect's return; config as handed back. */
static int connect_identity(struct server *s, const char *id, char *config, size_t len)
{
	size_t n = strlen("common_name=") + strlen(id) + 1;
	char *var = malloc(n);
	const char *envp[] = { "ifconfig_local=10.8.0.1", "ifconfig_netmask=255.255.0.0",
			       "trusted_ip=203.0.113.7", "trusted_port=1000", var, NULL };
	void *session = openvpn_plugin_client_constructor_v1(s->handle);
	int ret;

	assert_non_null(var);
	snprintf(var, n, "common_name=%s", id);
	ret = connect_env(s, session, envp, config, len);
	call(s, session, OPENVPN_PLUGIN_CLIENT_DISCONNECT, envp, NULL);
	openvpn_plugin_client_destructor_v1(s->handle, session);
	free(var);
	return ret;
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void identity_too_long__refused_with_bad_identity(void **state)
{
	static const size_t lengths[] = { 4097, 64 * 1024 };
	char config[256];

	(void)state;
	for (size_t i = 0; i < 2; ++i) {
		struct server s;
		char *id = repeat('x', lengths[i]), *log;

		server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" }\n");
		assert_int_equal(connect_identity(&s, id, config, sizeof(config)),
				 OPENVPN_PLUGIN_FUNC_ERROR);
		assert_string_equal(config, "");
		assert_int_equal(count_lines(plugin_log_text, "refusing client", "longer than 4096"),
				 1);
		log = server_close(&s);
		assert_int_equal(count_lines(log, "event=reject", NULL), 1);
		assert_int_equal(count_lines(log, "event=reject", "reason=bad-identity"), 1);
		/* Named by its first 256 bytes and its length, not in full. */
		{
			char want[512], *first = repeat('x', 256);

			snprintf(want, sizeof(want), "identity=%s identity_bytes=%zu reason=", first,
				 lengths[i]);
			assert_int_equal(count_lines(log, "event=reject", want), 1);
			assert_null(strstr(log, id));
			snprintf(want, sizeof(want), "%s... (%zu bytes): its common_name is longer",
				 first, lengths[i]);
			assert_int_equal(count_lines(plugin_log_text, "refusing client", want), 1);
			free(first);
		}
		assert_int_equal(count_lines(log, "event=connect", NULL), 0);
		assert_int_equal(count_lines(log, NULL, NULL), 3);	/* start, reject, stop */
		free(log);
		free(id);
	}
}

static void identity_at_the_limit__accepted(void **state)
{
	struct server s;
	char config[256], *id = repeat('x', 4096), *log;

	(void)state;
	server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" }\n");
	assert_int_equal(connect_identity(&s, id, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_string_equal(config, "ifconfig-push 10.8.0.2 255.255.0.0\n");
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=connect", id), 1);
	free(log);
	free(id);
}

/* A newline is a byte like any other in an identity (a certificate may hold
 * one): the client is served, its name escaped in the logs and absent from
 * the config. */
static void identity_with_newline__one_escaped_log_line_and_not_in_config(void **state)
{
	struct server s;
	char config[256], *log;

	(void)state;
	server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" }\n");
	assert_int_equal(connect_identity(&s, "eve\npush \"route 0.0.0.0 0.0.0.0\"", config,
					  sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_string_equal(config, "ifconfig-push 10.8.0.2 255.255.0.0\n");
	assert_null(strstr(plugin_log_text, "eve\npush"));
	log = server_close(&s);
	assert_null(strstr(log, "eve\npush"));
	assert_int_equal(count_lines(log, "route", NULL), 2);	/* connect, disconnect */
	assert_int_equal(count_lines(log, "event=connect",
				     "identity=\"eve\\x0apush \\\"route 0.0.0.0 0.0.0.0\\\"\""),
			 1);
	assert_int_equal(count_lines(log, NULL, NULL), 4);	/* start, connect, disconnect, stop */
	free(log);
}

static void subnet_topology__config_is_the_spec_line(void **state)
{
	struct server s;
	char config[256], *log;
	void *a;

	(void)state;
	server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" range = \"10.8.1.5-10.8.1.9\" }\n");
	a = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, a, "alice", 1000, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_string_equal(config, "ifconfig-push 10.8.1.5 255.255.0.0\n");
	openvpn_plugin_client_destructor_v1(s.handle, a);
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=connect",
				     "identity=alice pool=p address=10.8.1.5 real=203.0.113.7:1000"),
			 1);
	free(log);
}

/* net30 and p2p look alike in OpenVPN's env: auto reads server.conf. */
static void topology_auto__p2p_from_server_conf__remote_is_the_server(void **state)
{
	static const char *const confs[] = { "topology p2p\n", "topology net30\n", "dev tun\n",
					     NULL };
	static const char *const want[] = { "ifconfig-push 10.8.0.3 10.8.0.1\n",
					     "ifconfig-push 10.8.0.6 10.8.0.5\n",
					     "ifconfig-push 10.8.0.6 10.8.0.5\n",
					     "ifconfig-push 10.8.0.6 10.8.0.5\n" };
	const char *envp[] = { "ifconfig_local=10.8.0.1", "ifconfig_remote=10.8.0.2",
			       "trusted_ip=203.0.113.7", "trusted_port=1000", "common_name=alice",
			       NULL };

	(void)state;
	for (size_t i = 0; i < 4; ++i) {
		struct server s;
		char config[256];
		void *a;

		server_open_with(&s, "pool \"p\" { network = \"10.8.0.0/24\" }\n", confs[i]);
		a = openvpn_plugin_client_constructor_v1(s.handle);
		assert_int_equal(connect_env(&s, a, envp, config, sizeof(config)),
				 OPENVPN_PLUGIN_FUNC_SUCCESS);
		assert_string_equal(config, want[i]);
		openvpn_plugin_client_destructor_v1(s.handle, a);
		if (!confs[i])
			assert_non_null(strstr(plugin_log_text, "did not say its config file"));
		free(server_close(&s));
	}
}

/* At UP (NOTES.md 1) the env holds the server's ifconfig_*. */
static void up__logs_pool_sizes_and_unusable_pools_before_any_client(void **state)
{
	const char *up_env[] = { "script_context=init", "dev=tun0", "ifconfig_local=10.8.0.1",
				 "ifconfig_netmask=255.255.0.0", NULL };
	struct server s;
	char config[256];
	void *a;

	(void)state;
	server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" }\n"
			"pool \"far\" { network = \"10.20.0.0/24\" }\n");
	assert_int_equal(count_lines(plugin_log_text, "pool p: 10.8.0.0/16, size ", NULL), 0);
	assert_int_equal(call(&s, NULL, OPENVPN_PLUGIN_UP, up_env, NULL),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_int_equal(count_lines(plugin_log_text, "pool p: 10.8.0.0/16, size 65533, 0 held", NULL),
			 1);
	assert_int_equal(count_lines(plugin_log_text, "/vpnpool.conf:3: pool far is not used", NULL), 1);
	a = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, a, "alice", 1000, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	openvpn_plugin_client_destructor_v1(s.handle, a);
	assert_int_equal(count_lines(plugin_log_text, "pool p: 10.8.0.0/16, size ", NULL), 1);
	assert_int_equal(count_lines(plugin_log_text, "/vpnpool.conf:3: pool far is not used", NULL), 1);
	free(server_close(&s));
}

/* An UP without the tun's addresses (or none at all): the first connect learns them. */
static void up_without_addresses__first_connect_logs_the_sizes(void **state)
{
	const char *up_env[] = { "script_context=init", "dev=tun0", NULL };
	struct server s;
	char config[256];
	void *a;

	(void)state;
	server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" }\n");
	assert_int_equal(call(&s, NULL, OPENVPN_PLUGIN_UP, up_env, NULL),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_int_equal(count_lines(plugin_log_text, "cannot assign addresses", "ifconfig_local"),
			 1);
	a = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, a, "alice", 1000, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_string_equal(config, "ifconfig-push 10.8.0.2 255.255.0.0\n");
	openvpn_plugin_client_destructor_v1(s.handle, a);
	assert_int_equal(count_lines(plugin_log_text, "pool p: 10.8.0.0/16, size ", NULL), 1);
	free(server_close(&s));
}

/* Two OpenVPNs on one state directory: each an instance, named by its tun
 * (or the plugin line); a name already running fails UP naming its pid. */
static void up__instance_name_running__up_fails_naming_the_pid(void **state)
{
	const char *up_env[] = { "script_context=init", "dev=tun0", "ifconfig_local=10.8.0.1",
				 "ifconfig_netmask=255.255.0.0", NULL };
	const char *up_env2[] = { "script_context=init", "dev=tun1", "ifconfig_local=10.8.0.1",
				  "ifconfig_netmask=255.255.0.0", NULL };
	struct openvpn_plugin_callbacks cb = { .plugin_log = fake_plugin_log };
	const char *argv[] = { "openvpn-plugin-vpnpool.so", NULL, "instance=tun0", NULL };
	const char *envp[] = { "verb=3", "daemon=0", NULL };
	struct openvpn_plugin_args_open_in in = { .argv = argv, .envp = envp, .callbacks = &cb };
	struct openvpn_plugin_args_open_return out = { 0 };
	struct openvpn_plugin_args_func_in fin = { .type = OPENVPN_PLUGIN_UP, .envp = up_env2 };
	struct server s;
	char want[4400];

	(void)state;
	server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" }\n");
	assert_int_equal(call(&s, NULL, OPENVPN_PLUGIN_UP, up_env, NULL),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	argv[1] = s.conf;
	assert_int_equal(openvpn_plugin_open_v3(OPENVPN_PLUGINv3_STRUCTVER, &in, &out),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	fin.handle = out.handle;
	assert_int_equal(openvpn_plugin_func_v3(OPENVPN_PLUGINv3_STRUCTVER, &fin, NULL),
			 OPENVPN_PLUGIN_FUNC_ERROR);
	snprintf(want, sizeof(want),
		 "instance tun0 is already running on state directory %s/state (pid %ld)", s.dir,
		 (long)getpid());
	assert_int_equal(count_lines(plugin_log_text, want, NULL), 1);
	openvpn_plugin_close_v1(out.handle);
	/* a bad second argument stops the start */
	argv[2] = "instanc=x";
	assert_int_equal(openvpn_plugin_open_v3(OPENVPN_PLUGINv3_STRUCTVER, &in, &out),
			 OPENVPN_PLUGIN_FUNC_ERROR);
	assert_int_equal(count_lines(plugin_log_text, "expected instance=NAME", NULL), 1);
	free(server_close(&s));
}

/* ---- start-up: what the state directory holds ---------------------------- */

/* open_v3 on the config file at conf: its return code; *handle on success. */
static int open_conf(const char *conf, openvpn_plugin_handle_t *handle)
{
	struct openvpn_plugin_callbacks cb = { .plugin_log = fake_plugin_log };
	const char *argv[] = { "openvpn-plugin-vpnpool.so", conf, NULL };
	const char *envp[] = { "verb=3", "daemon=0", NULL };
	struct openvpn_plugin_args_open_in in = { .argv = argv, .envp = envp, .callbacks = &cb };
	struct openvpn_plugin_args_open_return out = { 0 };
	int ret;

	plugin_log_text[0] = '\0';
	ret = openvpn_plugin_open_v3(OPENVPN_PLUGINv3_STRUCTVER, &in, &out);
	*handle = out.handle;
	return ret;
}

/* A scratch directory holding vpnpool.conf (state-dir = DIR/state + body)
 * and an empty DIR/state; the paths into conf and state. */
static char *scratch(const char *body, char conf[4200], char state[4200])
{
	char *dir = tl_tmpdir();
	char line[4300];

	snprintf(conf, 4200, "%s/vpnpool.conf", dir);
	snprintf(state, 4200, "%s/state", dir);
	snprintf(line, sizeof(line), "state-dir = \"%s\"\n", state);
	write_file(conf, line, body);
	assert_int_equal(mkdir(state, 0750), 0);
	return dir;
}

static void journal_of_a_newer_version__start_refused_saying_versions_file_and_what_to_do(
	void **state)
{
	char conf[4200], dir_state[4200], path[4300], want[4800];
	openvpn_plugin_handle_t h;
	char *dir = scratch(one_address, conf, dir_state);
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/leases.journal", dir_state);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite("VPNPOOL1\x07\0\0\0", 1, 12, f);
	fclose(f);
	assert_int_equal(open_conf(conf, &h), OPENVPN_PLUGIN_FUNC_ERROR);
	snprintf(want, sizeof(want),
		 "%s is of format version 7; this plugin understands version 2: upgrade vpnpool, or move the file aside to start with no leases",
		 path);
	assert_int_equal(count_lines(plugin_log_text, want, NULL), 1);
	tl_rmtree(dir);
	free(dir);
}

static void empty_journal__started_with_a_warning_naming_it(void **state)
{
	char conf[4200], dir_state[4200], path[4300];
	openvpn_plugin_handle_t h;
	char *dir = scratch(one_address, conf, dir_state);
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/leases.journal", dir_state);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(open_conf(conf, &h), OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_int_equal(count_lines(plugin_log_text, path, "is empty (0 bytes"), 1);
	assert_int_equal(count_lines(plugin_log_text, "leases it held are lost; clients get new addresses",
				     NULL), 1);
	openvpn_plugin_close_v1(h);
	/* A journal the plugin wrote itself is no news. */
	assert_int_equal(open_conf(conf, &h), OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_int_equal(count_lines(plugin_log_text, "is empty", NULL), 0);
	openvpn_plugin_close_v1(h);
	tl_rmtree(dir);
	free(dir);
}

static void symlinked_journal_or_lock__refused_and_not_followed(void **state)
{
	static const char *const names[] = { "leases.journal", "lock" };
	char conf[4200], dir_state[4200], path[4300], target[4300], want[4400];
	openvpn_plugin_handle_t h;
	struct stat st;

	(void)state;
	for (size_t i = 0; i < 2; ++i) {
		char *dir = scratch(one_address, conf, dir_state);

		snprintf(path, sizeof(path), "%s/%s", dir_state, names[i]);
		snprintf(target, sizeof(target), "%s/elsewhere", dir);
		write_file(target, "precious\n", "");
		assert_int_equal(symlink(target, path), 0);
		assert_int_equal(open_conf(conf, &h), OPENVPN_PLUGIN_FUNC_ERROR);
		snprintf(want, sizeof(want),
			 "%s is a symbolic link: vpnpool never writes through one", path);
		assert_int_equal(count_lines(plugin_log_text, want, NULL), 1);
		assert_int_equal(stat(target, &st), 0);
		assert_int_equal(st.st_size, 9);
		tl_rmtree(dir);
		free(dir);
	}
}

static void state_dir_writable_by_others__warned_naming_it(void **state)
{
	char conf[4200], dir_state[4200];
	openvpn_plugin_handle_t h;
	char *dir = scratch(one_address, conf, dir_state);

	(void)state;
	assert_int_equal(open_conf(conf, &h), OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_int_equal(count_lines(plugin_log_text, "may be written by any user", NULL), 0);
	openvpn_plugin_close_v1(h);
	assert_int_equal(chmod(dir_state, 0777), 0);
	assert_int_equal(open_conf(conf, &h), OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_int_equal(count_lines(plugin_log_text, dir_state,
				     "may be written by any user (mode 0777)"), 1);
	openvpn_plugin_close_v1(h);
	tl_rmtree(dir);
	free(dir);
}

/* /var/lib/openvpn/vpnpool on a host without /var/lib/openvpn. */
static void state_dir_with_missing_parents__created_with_its_usage_log(void **state)
{
	char conf[4200], dir_state[4200], deep[4300], line[4400];
	openvpn_plugin_handle_t h;
	char *dir = scratch(one_address, conf, dir_state);
	struct stat st;

	(void)state;
	snprintf(deep, sizeof(deep), "%s/x/a/b/c", dir);
	snprintf(line, sizeof(line), "state-dir = \"%s\"\n", deep);
	write_file(conf, line, one_address);
	assert_int_equal(open_conf(conf, &h), OPENVPN_PLUGIN_FUNC_SUCCESS);
	openvpn_plugin_close_v1(h);
	snprintf(line, sizeof(line), "%s/usage.log", deep);
	assert_int_equal(stat(line, &st), 0);
	assert_true(st.st_size > 0);
	tl_rmtree(dir);
	free(dir);
}

/* A reload that reserves a stored lease's address for another client. */
static void reservation_moved_onto_a_stored_lease__drop_logged_with_address_and_reason(
	void **state)
{
	static const char pool[] =
		"pool \"p\" { network = \"10.8.0.0/16\" range = \"10.8.1.1-10.8.1.9\" }\n";
	const char *up_env[] = { "script_context=init", "dev=tun0", "ifconfig_local=10.8.0.1",
				 "ifconfig_netmask=255.255.0.0", NULL };
	char conf[4200], dir_state[4200], line[4400], config[256];
	openvpn_plugin_handle_t h;
	char *dir = scratch(pool, conf, dir_state), *log = NULL;
	struct server s = { .dir = dir };
	size_t cap = 0;
	void *a;
	FILE *f;

	(void)state;
	assert_int_equal(open_conf(conf, &h), OPENVPN_PLUGIN_FUNC_SUCCESS);
	s.handle = h;
	a = openvpn_plugin_client_constructor_v1(h);
	assert_int_equal(connect_cn(&s, a, "a-1", 1000, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_string_equal(config, "ifconfig-push 10.8.1.1 255.255.0.0\n");
	disconnect_cn(&s, a, "a-1", 1000);
	openvpn_plugin_client_destructor_v1(h, a);
	openvpn_plugin_close_v1(h);

	snprintf(line, sizeof(line), "state-dir = \"%s\"\nclient \"b\" { address = \"10.8.1.1\" }\n",
		 dir_state);
	write_file(conf, line, pool);
	assert_int_equal(open_conf(conf, &h), OPENVPN_PLUGIN_FUNC_SUCCESS);
	s.handle = h;
	assert_int_equal(call(&s, NULL, OPENVPN_PLUGIN_UP, up_env, NULL),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	assert_int_equal(count_lines(plugin_log_text,
				     "dropped the stored lease of a-1 (address=10.8.1.1): its address is reserved for another client now (reason=reserved)",
				     NULL), 1);
	openvpn_plugin_close_v1(h);
	snprintf(line, sizeof(line), "%s/usage.log", dir_state);
	f = fopen(line, "r");
	assert_non_null(f);
	assert_true(getdelim(&log, &cap, '\0', f) > 0);
	fclose(f);
	assert_int_equal(count_lines(log, "event=drop identity=a-1 address=10.8.1.1 reason=reserved",
				     NULL), 1);
	free(log);
	tl_rmtree(dir);
	free(dir);
}

/* A connect of a new session of cn: the writer thread then gets a line. */
static void connect_once(struct server *s, const char *cn, unsigned port)
{
	char config[256];
	void *a = openvpn_plugin_client_constructor_v1(s->handle);

	assert_int_equal(connect_cn(s, a, cn, port, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	openvpn_plugin_client_destructor_v1(s->handle, a);
}

/* Connects until OpenVPN's log has a line holding what (up to 10 s). */
static void connect_until_logged(struct server *s, const char *what)
{
	for (unsigned i = 0; !count_lines(plugin_log_text, what, NULL); ++i) {
		assert_true(i < 1000);
		usleep(10000);
		connect_once(s, "bob", 2000 + i);
	}
}

/* The usage log replaced by a symlink (a rotation gone wrong): OpenVPN's
 * log names the file and why, once however many clients come; the lines
 * are not written through the symlink; once it is gone, one line says how
 * many were held back, and they are in the log. */
static void usage_log_becomes_a_symlink__told_once_then_written_again(void **state)
{
	const char *up_env[] = { "script_context=init", "dev=tun0", "ifconfig_local=10.8.0.1",
				 "ifconfig_netmask=255.255.0.0", NULL };
	char path[4300], moved[4300], target[4300], *log;
	struct server s;
	struct stat st;

	(void)state;
	server_open(&s, "pool \"p\" { network = \"10.8.0.0/16\" }\n");
	assert_int_equal(call(&s, NULL, OPENVPN_PLUGIN_UP, up_env, NULL),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	connect_once(&s, "alice", 1000);	/* the writer thread runs from here */
	snprintf(path, sizeof(path), "%s/state/usage.log", s.dir);
	snprintf(moved, sizeof(moved), "%s/state/usage.log.1", s.dir);
	snprintf(target, sizeof(target), "%s/target", s.dir);
	write_file(target, "", "");
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(symlink(target, path), 0);
	connect_until_logged(&s, "cannot reopen the usage log");
	for (unsigned i = 0; i < 3; ++i)
		connect_once(&s, "carol", 3000 + i);
	assert_int_equal(count_lines(plugin_log_text, "cannot reopen the usage log", NULL), 1);
	assert_int_equal(count_lines(plugin_log_text, "cannot reopen the usage log", path), 1);
	assert_int_equal(count_lines(plugin_log_text, "cannot reopen the usage log",
				     "it is a symbolic link, which is never followed"), 1);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(unlink(path), 0);
	connect_until_logged(&s, "is written again");
	assert_int_equal(count_lines(plugin_log_text, "is written again", NULL), 1);
	assert_int_equal(count_lines(plugin_log_text, "is written again", ", 0 lost"), 1);
	log = server_close(&s);
	assert_int_equal(count_lines(log, "event=connect", "identity=carol"), 3);
	free(log);
}

/* The metrics count a reject by the reason the plugin gave it, whatever the
 * refused identity holds (a space, quotes, a "reason=" of its own). */
static void rejects_with_hostile_identities__metrics_count_by_the_real_reason(void **state)
{
	static const char *const ids[] = { "x reason=no-pool \"q", "\"reason=other\"", "a\\\" b" };
	struct server s;
	char config[256], body[1024], path[600], *mdir = tl_tmpdir(), *text = NULL;
	size_t cap = 0;
	void *alice, *other[3];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/vpnpool.prom", mdir);
	snprintf(body, sizeof(body), "metrics-file = \"%s\"\n%s", path, one_address);
	server_open(&s, body);
	alice = openvpn_plugin_client_constructor_v1(s.handle);
	assert_int_equal(connect_cn(&s, alice, "alice", 1000, config, sizeof(config)),
			 OPENVPN_PLUGIN_FUNC_SUCCESS);
	for (size_t i = 0; i < 3; ++i) {
		other[i] = openvpn_plugin_client_constructor_v1(s.handle);
		assert_int_equal(connect_cn(&s, other[i], ids[i], 1001 + (unsigned)i, config,
					    sizeof(config)),
				 OPENVPN_PLUGIN_FUNC_ERROR);
		openvpn_plugin_client_destructor_v1(s.handle, other[i]);
	}
	openvpn_plugin_client_destructor_v1(s.handle, alice);
	free(server_close(&s));
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(getdelim(&text, &cap, '\0', f) > 0);
	fclose(f);
	assert_non_null(strstr(text, "\nvpnpool_connects_total 1\n"));
	assert_non_null(strstr(text, "\nvpnpool_disconnects_total 1\n"));
	assert_non_null(strstr(text, "\nvpnpool_rejects_total{reason=\"exhausted\"} 3\n"));
	assert_non_null(strstr(text, "\nvpnpool_rejects_total{reason=\"no-pool\"} 0\n"));
	assert_non_null(strstr(text, "\nvpnpool_rejects_total{reason=\"other\"} 0\n"));
	free(text);
	tl_rmtree(mdir);
	free(mdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connect_disconnect_destructor__one_disconnect_and_the_lease_held),
		cmocka_unit_test(rejects_with_hostile_identities__metrics_count_by_the_real_reason),
		cmocka_unit_test(usage_log_becomes_a_symlink__told_once_then_written_again),
		cmocka_unit_test(connect_then_destructor_only__lease_ended_once),
		cmocka_unit_test(long_identity__disconnect_holds_its_lease_and_logs_it),
		cmocka_unit_test(failed_connect_then_disconnect_and_destructor__releases_nothing),
		cmocka_unit_test(duplicate_sessions_of_one_cn__get_distinct_addresses),
		cmocka_unit_test(identity_too_long__refused_with_bad_identity),
		cmocka_unit_test(identity_at_the_limit__accepted),
		cmocka_unit_test(identity_with_newline__one_escaped_log_line_and_not_in_config),
		cmocka_unit_test(subnet_topology__config_is_the_spec_line),
		cmocka_unit_test(topology_auto__p2p_from_server_conf__remote_is_the_server),
		cmocka_unit_test(up__logs_pool_sizes_and_unusable_pools_before_any_client),
		cmocka_unit_test(up_without_addresses__first_connect_logs_the_sizes),
		cmocka_unit_test(journal_of_a_newer_version__start_refused_saying_versions_file_and_what_to_do),
		cmocka_unit_test(up__instance_name_running__up_fails_naming_the_pid),
		cmocka_unit_test(empty_journal__started_with_a_warning_naming_it),
		cmocka_unit_test(symlinked_journal_or_lock__refused_and_not_followed),
		cmocka_unit_test(state_dir_writable_by_others__warned_naming_it),
		cmocka_unit_test(state_dir_with_missing_parents__created_with_its_usage_log),
		cmocka_unit_test(reservation_moved_onto_a_stored_lease__drop_logged_with_address_and_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
