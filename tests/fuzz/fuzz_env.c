/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * plugin/: OpenVPN's environment, as a client can shape it, into a request
 * and back out as config lines and log lines.  Drives the plugin's own entry
 * points (open_v3, client constructor, func_v3 CLIENT_CONNECT_V2 and
 * CLIENT_DISCONNECT, destructor, close_v1) with a fixed config and a scratch
 * state directory, and vp_env_server() on its own.
 *
 * Input: byte 0 picks the config (bits 0-1), whether the harness adds the
 * server's ifconfig_* variables after the fuzzed ones (bit 2 clear: yes;
 * the first NAME= in envp wins, so fuzzed ones override), whether clients
 * disconnect (bit 3) and whether the plugin restarts before the last client
 * (bit 4, a reload that replays the journal).  The rest is envp entries
 * separated by NUL bytes; an empty entry starts the next client (at most 8).
 *
 * Properties: nothing a client sends adds a line to the config handed to
 * OpenVPN or anything but the known directives with well-formed addresses;
 * every usage-log line is one line of key=value pairs that decode; every
 * line to OpenVPN's log is one line (unless the fuzzed envp set the server's
 * own ifconfig_* variables, which a client cannot); two live sessions never
 * hold one address.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vp_autoconf.h"
#ifdef HAVE_OPENVPN_SUBDIR_HEADER
#include <openvpn/openvpn-plugin.h>
#else
#include <openvpn-plugin.h>
#endif

#include "fuzz.h"
#include "logfmt.h"
#include "plugin/env.h"

#define MAX_CLIENTS 8
#define MAX_ENV 64

/* Four configs: topologies, identities, a pool small enough to run out. */
static const char *const configs[4] = {
	"pool \"staff\" { network = \"10.8.0.0/17\" range = \"10.8.1.1-10.8.1.20\"\n"
	"  exclude = {\"10.8.1.5\", \"fd00:8::1:0/112\"} network6 = \"fd00:8::/64\"\n"
	"  match = {\"X509_0_OU=Staff\"} }\n"
	"pool \"everyone\" { network = \"10.8.128.0/29\" }\n"
	"router-pool \"sites\" { network = \"10.9.0.0/16\" prefix = 24\n"
	"  network6 = \"fd00:9::/48\" prefix6 = 64 match = {\"common_name=site-*\"} }\n"
	"client \"alice\" { address = \"10.8.0.50\" address6 = \"fd00:8::50\" }\n"
	"client \"site-paris\" { subnet = \"10.9.77.0/24\" subnet6 = \"fd00:9:0:77::/64\" }\n",

	"topology = \"net30\"\nidentity = \"username\"\n"
	"pool \"tiny\" { network = \"10.8.0.0/28\" }\n"
	"router-pool \"r\" { network = \"10.9.0.0/16\" prefix = 30 match = {\"IV_PLAT=rt*\"} }\n",

	"topology = \"p2p\"\nidentity = \"X509_0_emailAddress\"\n"
	"pool \"p\" { network = \"10.8.0.0/29\" match = {\"UV_GROUP=[a-c]*\"} }\n"
	"pool \"q\" { network = \"10.8.1.0/30\" }\n",

	"usage-log = \"\"\nhold-time = 3600\nwarn-at = {1, 50}\n"
	"pool \"all\" { network = \"10.8.0.0/16\" network6 = \"fd00:8::/120\" }\n"
	"router-pool \"six\" { network6 = \"fd00:9::/56\" prefix6 = 64 }\n",
};

/* What OpenVPN would have set for each config's server. */
static const char *const server_env[4][5] = {
	{ "ifconfig_local=10.8.0.1", "ifconfig_netmask=255.255.0.0",
	  "ifconfig_ipv6_local=fd00:8::1", "ifconfig_ipv6_netbits=64", NULL },
	{ "ifconfig_local=10.8.0.1", "ifconfig_remote=10.8.0.2", NULL },
	{ "ifconfig_local=10.8.0.1", "ifconfig_remote=10.8.0.2", NULL },
	{ "ifconfig_local=10.8.0.1", "ifconfig_netmask=255.255.0.0",
	  "ifconfig_ipv6_local=fd00:8::1", "ifconfig_ipv6_netbits=120", NULL },
};

static char conf_path[4][4200];
static char state_dir[4200];
static bool log_may_break;		/* the fuzzed envp set ifconfig_* */

static void init(void)
{
	const char *dir = fuzz_dir();

	if (state_dir[0])
		return;
	for (int i = 0; i < 4; ++i) {
		char name[16], text[2048];
		int n;

		snprintf(name, sizeof(name), "c%d.conf", i);
		n = snprintf(text, sizeof(text), "state-dir = \"%s/state\"\n%s", dir, configs[i]);
		FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
		fuzz_write_file(dir, name, text, (size_t)n);
		snprintf(conf_path[i], sizeof(conf_path[i]), "%s/%s", dir, name);
	}
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
}

__attribute__((format(printf, 3, 4)))
static void check_log(openvpn_plugin_log_flags_t flags, const char *name, const char *fmt, ...)
{
	char line[8192];
	va_list ap;

	(void)flags;
	FUZZ_CHECK(!strcmp(name, "vpnpool"));
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (getenv("VP_FUZZ_VERBOSE"))
		fprintf(stderr, "log: %s\n", line);
	FUZZ_CHECK(log_may_break || (!strchr(line, '\n') && !strchr(line, '\r')));
}

/* ---- the config lines ------------------------------------------------------------- */

/* One word of a line: kind 4 an IPv4 address, 6 an IPv6 address, P an IPv6
 * prefix, a an IPv6 address with "/LEN" (host bits allowed). */
static bool word_is(const char *w, size_t len, char kind)
{
	char text[64], err[VP_ERRLEN], *slash;
	struct vp_prefix p;
	struct vp_addr a;
	unsigned bits = 0;

	if (len == 0 || len >= sizeof(text))
		return false;
	memcpy(text, w, len);
	text[len] = '\0';
	if (kind == 'P')
		return vp_prefix_parse(&p, text, err) && p.addr.family == VP_INET6;
	if (kind == 'a') {
		slash = strchr(text, '/');
		if (!slash || !slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
		    strlen(slash + 1) > 3 || (bits = (unsigned)atoi(slash + 1)) > 128)
			return false;
		*slash = '\0';
	}
	return vp_addr_parse(&a, text, err) && a.family == (kind == '4' ? VP_INET : VP_INET6);
}

/* line (without its '\n') is DIRECTIVE, then words of kinds (after a '?' the
 * rest may be missing), then suffix. */
static bool line_is(const char *line, size_t len, const char *directive, const char *kinds,
		    const char *suffix)
{
	size_t dlen = strlen(directive), slen = strlen(suffix);
	const char *p = line + dlen, *end = line + len - slen;

	if (len < dlen + slen || memcmp(line, directive, dlen) || memcmp(end, suffix, slen))
		return false;
	for (const char *k = kinds; *k; ++k) {
		const char *w;

		if (*k == '?') {
			if (p == end)
				return true;
			continue;
		}
		if (p == end || *p++ != ' ')
			return false;
		w = p;
		while (p < end && *p != ' ')
			++p;
		if (!word_is(w, (size_t)(p - w), *k))
			return false;
	}
	return p == end;
}

static bool line_known(const char *l, size_t len)
{
	return line_is(l, len, "ifconfig-push", "44", "") ||
	       line_is(l, len, "ifconfig-ipv6-push", "a?6", "") ||
	       line_is(l, len, "iroute", "44", "") || line_is(l, len, "iroute-ipv6", "P", "") ||
	       line_is(l, len, "push \"route", "44", "\"") ||
	       line_is(l, len, "push \"route-ipv6", "P", "\"");
}

/* Check the config handed back; addr gets the client's IPv4 address. */
static void check_config_lines(const struct openvpn_plugin_string_list *list, char addr[32])
{
	const char *s, *nl;

	FUZZ_CHECK(list && !list->next && !strcmp(list->name, "config"));
	s = list->value;
	FUZZ_CHECK(!strncmp(s, "ifconfig-push ", 14));
	FUZZ_CHECK(sscanf(s + 14, "%31[0-9.]", addr) == 1);
	for (; *s; s = nl + 1) {
		nl = strchr(s, '\n');
		FUZZ_CHECK(nl != NULL);
		FUZZ_CHECK(line_known(s, (size_t)(nl - s)));
	}
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

/* ---- the usage log ----------------------------------------------------------------- */

static void check_usage_log(void)
{
	static const char *const keys[] = {
		"time", "event", "identity", "pool", "address", "address6", "subnet", "subnet6",
		"real", "in_use", "size", "duration", "bytes_received", "bytes_sent", "reason",
		"from", "percent", "config", "leases", "identity_bytes",
	};
	struct vp_strbuf val = { 0 };
	char path[4300], key[32];
	size_t len;
	char *text;

	snprintf(path, sizeof(path), "%s/usage.log", state_dir);
	text = fuzz_read_file(path, &len);
	if (!text)
		return;
	FUZZ_CHECK(strlen(text) == len && (!len || text[len - 1] == '\n'));
	for (const char *line = text; *line; ++line) {
		const char *cur = line;
		int pairs = 0;

		FUZZ_CHECK(!strncmp(line, "time=", 5));
		while (vp_logfmt_next(&cur, key, sizeof(key), &val)) {
			bool known = false;

			for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); ++k)
				known |= !strcmp(key, keys[k]);
			FUZZ_CHECK(known);
			FUZZ_CHECK(pairs != 1 || !strcmp(key, "event"));
			++pairs;
		}
		FUZZ_CHECK(*cur == '\n' && pairs >= 2);
		line = cur;
	}
	vp_strbuf_free(&val);
	free(text);
}

/* ---- the plugin, driven ------------------------------------------------------------- */

struct run {
	unsigned config;
	openvpn_plugin_handle_t handle;
	void *session[MAX_CLIENTS];
	char addr[MAX_CLIENTS][32];	/* live sessions' IPv4 addresses */
};

static void plugin_open(struct run *r, const char **envp)
{
	struct openvpn_plugin_callbacks cb = { .plugin_log = check_log };
	const char *argv[] = { "openvpn-plugin-vpnpool.so", conf_path[r->config], NULL };
	struct openvpn_plugin_args_open_in in = { .argv = argv, .envp = envp, .callbacks = &cb };
	struct openvpn_plugin_args_open_return out = { 0 };

	FUZZ_CHECK(openvpn_plugin_open_v3(OPENVPN_PLUGINv3_STRUCTVER, &in, &out) ==
		   OPENVPN_PLUGIN_FUNC_SUCCESS);
	r->handle = out.handle;
}

static int plugin_call(struct run *r, int type, int client, const char **envp,
		       struct openvpn_plugin_string_list **list)
{
	struct openvpn_plugin_args_func_in in = {
		.type = type, .envp = envp, .handle = r->handle,
		.per_client_context = r->session[client],
	};
	struct openvpn_plugin_args_func_return out = { .return_list = list };

	return openvpn_plugin_func_v3(OPENVPN_PLUGINv3_STRUCTVER, &in, &out);
}

static void connect_client(struct run *r, int client, const char **envp)
{
	struct openvpn_plugin_string_list *list = NULL;
	char addr[32] = "";
	int ret;

	if (!r->session[client])
		r->session[client] = openvpn_plugin_client_constructor_v1(r->handle);
	FUZZ_CHECK(r->session[client]);
	r->addr[client][0] = '\0';	/* a second connect ends the first session */
	ret = plugin_call(r, OPENVPN_PLUGIN_CLIENT_CONNECT_V2, client, envp, &list);
	if (ret != OPENVPN_PLUGIN_FUNC_SUCCESS) {
		FUZZ_CHECK(ret == OPENVPN_PLUGIN_FUNC_ERROR && !list);
		return;
	}
	check_config_lines(list, addr);
	free_list(list);
	for (int k = 0; k < MAX_CLIENTS; ++k)
		FUZZ_CHECK(k == client || strcmp(r->addr[k], addr));
	snprintf(r->addr[client], sizeof(r->addr[client]), "%s", addr);
}

static void end_client(struct run *r, int client, const char **envp, bool disconnect)
{
	if (!r->session[client])
		return;
	if (disconnect)
		FUZZ_CHECK(plugin_call(r, OPENVPN_PLUGIN_CLIENT_DISCONNECT, client, envp, NULL) ==
			   OPENVPN_PLUGIN_FUNC_SUCCESS);
	else
		openvpn_plugin_client_destructor_v1(r->handle, r->session[client]);
	if (!disconnect)
		r->session[client] = NULL;
	r->addr[client][0] = '\0';
}

static void plugin_close(struct run *r)
{
	for (int k = 0; k < MAX_CLIENTS; ++k)
		end_client(r, k, NULL, false);
	openvpn_plugin_close_v1(r->handle);
	r->handle = NULL;
}

/* ---- vp_env_server on its own --------------------------------------------------------- */

static void check_env_server(const char **envp)
{
	static const enum vp_topology topos[] = { VP_TOPO_AUTO, VP_TOPO_SUBNET, VP_TOPO_NET30,
						   VP_TOPO_P2P };
	struct vp_server s;
	char err[256], real[VP_REAL_MAX];

	for (size_t i = 0; i < 4; ++i) {
		if (!vp_env_server(envp, topos[i], topos[3 - i], &s, err, sizeof(err))) {
			FUZZ_CHECK(memchr(err, '\0', sizeof(err)));
			continue;
		}
		FUZZ_CHECK(s.topology != VP_TOPO_AUTO && s.local4.family == VP_INET);
		FUZZ_CHECK(s.topology != VP_TOPO_SUBNET || s.netbits4 <= 32);
		FUZZ_CHECK(!s.local6.family || (s.local6.family == VP_INET6 && s.netbits6 <= 128));
		FUZZ_CHECK(topos[i] == VP_TOPO_AUTO || s.topology == topos[i]);
	}
	vp_env_real(envp, real, sizeof(real));
	FUZZ_CHECK(strlen(real) < sizeof(real));
}

/* ---- one input ----------------------------------------------------------------------- */

/* Split data into up to MAX_CLIENTS environments; returns how many. */
static int split_clients(char *text, size_t size, const char *env[MAX_CLIENTS][MAX_ENV + 8],
			 const char *const *server)
{
	int clients = 0, n = 0;
	size_t at = 0;

	while (at <= size && clients < MAX_CLIENTS) {
		char *entry = text + at;
		size_t len = strlen(entry);

		at += len + 1;
		if (len && n < MAX_ENV) {
			env[clients][n++] = entry;
			if (!strncmp(entry, "ifconfig_", 9))
				log_may_break = true;
		}
		if (!len || at > size) {
			for (int k = 0; server && server[k]; ++k)
				env[clients][n++] = server[k];
			env[clients][n] = NULL;
			++clients;
			n = 0;
		}
	}
	return clients;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *env[MAX_CLIENTS][MAX_ENV + 8];
	struct run r = { 0 };
	unsigned flags;
	int clients;
	char *text;

	if (size < 1 || size > 16 * 1024)
		return 0;
	init();
	flags = data[0];
	r.config = flags & 3;
	log_may_break = false;
	text = fuzz_strndup(data + 1, size - 1);
	clients = split_clients(text, size - 1, env, flags & 4 ? NULL : server_env[r.config]);
	fuzz_dir_clear(state_dir);

	for (int i = 0; i < clients; ++i)
		check_env_server(env[i]);
	plugin_open(&r, env[0]);
	for (int i = 0; i < clients; ++i) {
		if (flags & 16 && i == clients - 1 && i > 0) {
			plugin_close(&r);
			plugin_open(&r, env[i]);
		}
		connect_client(&r, i, env[i]);
		if (flags & 8 && i % 2)
			end_client(&r, i, env[i], true);
	}
	plugin_close(&r);
	check_usage_log();
	free(text);
	return 0;
}
