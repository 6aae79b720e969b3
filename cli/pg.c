/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The command against a PostgreSQL store (store = "postgresql://..."):
 * vpnpool schema, and status, leases, release and import read from or
 * written to the database instead of the state directory's journal.  The
 * command registers nothing there (no node) and never creates the schema.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/fmt.h"
#include "core/pgstore.h"

#define ADD_LIT(b, lit) vp_strbuf_add(b, "" lit, sizeof(lit) - 1)

/* ---- the connection --------------------------------------------------------------- */

struct pgcli {
	const struct vp_config *config;
	struct vp_pg *pg;
	char name[512];			/* the store's URI without password */
	const char *cmd;
};

static int pg_open(struct pgcli *p, const struct vp_config *config, const char *cmd)
{
	struct vp_pg_options opts = { .config = config, .node = NULL, .instance = "",
				      .timeout_ms = 0, .create_schema = false };
	int ret;

	p->config = config;
	p->cmd = cmd;
	vp_pg_uri_shown(config->store, p->name, sizeof(p->name));
	ret = vp_pg_open(&p->pg, &opts);
	if (ret) {
		vp_cli_error("%s: cannot use the store %s: %s", cmd, p->name, strerror(-ret));
		p->pg = NULL;
	}
	return ret;
}

/* A failed call: why, naming the store. */
static void pg_failed(const struct pgcli *p, int ret, const char *what)
{
	const char *detail = p->pg ? vp_pg_error(p->pg) : "";

	if (!*detail)
		detail = strerror(-ret);
	if (ret == -ECONNREFUSED || ret == -ETIMEDOUT || (p->pg && !vp_pg_connected(p->pg)))
		vp_cli_error("%s: cannot reach the store %s (store-timeout %us): %s%s", p->cmd,
			     p->name, p->config->store_timeout_ms / 1000, detail, what);
	else
		vp_cli_error("%s: the store %s: %s%s", p->cmd, p->name, detail, what);
}

static void pg_close(struct pgcli *p)
{
	if (p->pg)
		vp_pg_close(p->pg);
	p->pg = NULL;
}

static void flush_buf(struct vp_strbuf *b)
{
	if (b->len)
		fwrite(b->s, 1, b->len, stdout);
	vp_strbuf_reset(b);
}

/* ---- schema ------------------------------------------------------------------ */

int vp_cmd_schema(const struct vp_cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argv;
	if (argc > 1) {
		vp_cli_error("schema takes no arguments (try vpnpool schema --help)");
		return VP_EXIT_USAGE;
	}
	fputs(vp_pg_schema_sql(), stdout);
	return fflush(stdout) ? VP_EXIT_FAIL : VP_EXIT_OK;
}

/* ---- status ------------------------------------------------------------------- */

struct pool_row {
	char *name;
	bool router;
	struct vp_pool_usage u;
};

struct node_row {
	char *node, *instance;
	int64_t heartbeat, started;
	int32_t pid;
	bool live;
	uint64_t online;
};

struct status {
	struct pool_row *pools;
	size_t n_pools, cap_pools;
	struct node_row *nodes;
	size_t n_nodes, cap_nodes;
	uint64_t leases, online, held;
	bool oom;
};

static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
	void *more;

	if (n < *cap)
		return arr;
	more = realloc(arr, (*cap ? 2 * *cap : 16) * size);
	if (more)
		*cap = *cap ? 2 * *cap : 16;
	return more;
}

static int each_pool(void *ud, const struct vp_pg_pool *p)
{
	struct status *s = ud;
	struct pool_row *arr = grow(s->pools, &s->cap_pools, s->n_pools, sizeof(*arr));

	if (!arr)
		return -ENOMEM;
	s->pools = arr;
	arr[s->n_pools] = (struct pool_row){ .name = strdup(p->name), .router = p->router,
					     .u = { .size = p->size, .online = p->online,
						    .held = p->held, .free = p->free,
						    .usable = true } };
	if (!arr[s->n_pools].name)
		return -ENOMEM;
	s->n_pools++;
	return 0;
}

static int each_node(void *ud, const struct vp_pg_node *n)
{
	struct status *s = ud;
	struct node_row *arr = grow(s->nodes, &s->cap_nodes, s->n_nodes, sizeof(*arr));
	struct node_row *r;

	if (!arr)
		return -ENOMEM;
	s->nodes = arr;
	r = &arr[s->n_nodes];
	*r = (struct node_row){ .node = strdup(n->node ? n->node : ""),
				.instance = strdup(n->instance ? n->instance : ""),
				.heartbeat = n->heartbeat, .started = n->started, .pid = n->pid,
				.live = n->live, .online = n->online };
	s->n_nodes++;
	return r->node && r->instance ? 0 : -ENOMEM;
}

static int count_lease(void *ud, const struct vp_pg_lease *l)
{
	struct status *s = ud;

	s->leases++;
	if (l->rec.state == VP_LEASE_ONLINE)
		s->online++;
	else
		s->held++;
	return 0;
}

static void status_free(struct status *s)
{
	for (size_t i = 0; i < s->n_pools; ++i)
		free(s->pools[i].name);
	for (size_t i = 0; i < s->n_nodes; ++i) {
		free(s->nodes[i].node);
		free(s->nodes[i].instance);
	}
	free(s->pools);
	free(s->nodes);
}

static const struct vp_pool_config *config_pool(const struct vp_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_pools; ++i)
		if (!strcmp(c->pools[i].name, name))
			return &c->pools[i];
	return NULL;
}

static const struct vp_router_config *config_router(const struct vp_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_routers; ++i)
		if (!strcmp(c->routers[i].name, name))
			return &c->routers[i];
	return NULL;
}

/* Whether some node runs several instances (the INSTANCE columns then). */
static bool several_instances(const struct status *s)
{
	for (size_t i = 0; i < s->n_nodes; ++i)
		for (size_t k = i + 1; k < s->n_nodes; ++k)
			if (!strcmp(s->nodes[i].node, s->nodes[k].node))
				return true;
	return false;
}

static void json_pool(struct vp_strbuf *b, const struct vp_config *c, const struct pool_row *p)
{
	const struct vp_router_config *rc = p->router ? config_router(c, p->name) : NULL;
	const struct vp_pool_config *pc = p->router ? NULL : config_pool(c, p->name);

	if (rc)
		vp_fmt_pool_json(b, p->name, &rc->network, rc->has_network6 ? &rc->network6 : NULL,
				 rc->prefix, rc->has_network6 ? rc->prefix6 : 0, &p->u);
	else if (pc)
		vp_fmt_pool_json(b, p->name, &pc->network, pc->has_network6 ? &pc->network6 : NULL,
				 0, 0, &p->u);
	else
		vp_fmt_pool_json(b, p->name, NULL, NULL, 0, 0, &p->u);
}

static void status_json(const struct pgcli *p, const struct status *s, int64_t now)
{
	const struct vp_config *c = p->config;
	struct vp_strbuf b = { 0 };
	bool first;

	ADD_LIT(&b, "{\"config\":");
	vp_json_adds(&b, c->path);
	ADD_LIT(&b, ",\"state_dir\":");
	vp_json_adds(&b, c->state_dir);
	ADD_LIT(&b, ",\"store\":");
	vp_json_adds(&b, p->name);
	vp_strbuf_addf(&b, ",\"leases\":%llu,\"online\":%llu,\"held\":%llu",
		       (unsigned long long)s->leases, (unsigned long long)s->online,
		       (unsigned long long)s->held);
	for (int router = 0; router < 2; ++router) {
		if (router)
			ADD_LIT(&b, "],\"router_pools\":[");
		else
			ADD_LIT(&b, ",\"pools\":[");
		first = true;
		for (size_t i = 0; i < s->n_pools; ++i) {
			if (s->pools[i].router != router)
				continue;
			if (!first)
				ADD_LIT(&b, ",");
			first = false;
			json_pool(&b, c, &s->pools[i]);
		}
	}
	ADD_LIT(&b, "],\"nodes\":[");
	for (size_t i = 0; i < s->n_nodes; ++i) {
		const struct node_row *n = &s->nodes[i];
		char hb[VP_FMT_LEN], st[VP_FMT_LEN];

		if (i)
			ADD_LIT(&b, ",");
		ADD_LIT(&b, "{\"node\":");
		vp_json_adds(&b, n->node);
		ADD_LIT(&b, ",\"instance\":");
		vp_json_adds(&b, n->instance[0] ? n->instance : NULL);
		vp_strbuf_addf(&b, ",\"live\":%s,\"pid\":%d,\"online\":%llu", n->live ? "true" : "false",
			       (int)n->pid, (unsigned long long)n->online);
		vp_strbuf_addf(&b, ",\"heartbeat\":\"%s\",\"heartbeat_unix\":%lld,\"heartbeat_age\":%lld",
			       vp_fmt_time(n->heartbeat, hb), (long long)n->heartbeat,
			       (long long)(now > n->heartbeat ? now - n->heartbeat : 0));
		vp_strbuf_addf(&b, ",\"since\":\"%s\",\"since_unix\":%lld}", vp_fmt_time(n->started, st),
			       (long long)n->started);
	}
	ADD_LIT(&b, "]}\n");
	flush_buf(&b);
	vp_strbuf_free(&b);
}

static int pools_table(const struct pgcli *p, const struct status *s)
{
	static const char *const head[] = { "POOL", "KIND", "NETWORK", ">SIZE", ">ONLINE",
					    ">HELD", ">FREE", ">USED" };
	struct vp_table *tab = vp_table_new(8, head);
	char n[VP_PREFIX_STRLEN], net[VP_PREFIX_STRLEN + 8];
	int ret;

	if (!tab)
		return -1;
	printf("%s: %llu leases, %llu online, %llu held\n\n", p->name,
	       (unsigned long long)s->leases, (unsigned long long)s->online,
	       (unsigned long long)s->held);
	for (int router = 0; router < 2; ++router) {
		for (size_t i = 0; i < s->n_pools; ++i) {
			const struct pool_row *r = &s->pools[i];

			if (r->router != router)
				continue;
			strcpy(net, "-");
			if (router) {
				const struct vp_router_config *rc = config_router(p->config, r->name);

				if (rc) {
					bool v4 = rc->network.addr.family;

					snprintf(net, sizeof(net), "%s /%u",
						 vp_prefix_format(v4 ? &rc->network : &rc->network6, n),
						 v4 ? rc->prefix : rc->prefix6);
				}
			} else {
				const struct vp_pool_config *pc = config_pool(p->config, r->name);

				if (pc)
					vp_prefix_format(&pc->network, net);
			}
			vp_fmt_pool_row(tab, r->name, router ? "router-pool" : "pool", net, &r->u);
		}
	}
	ret = vp_table_print(tab, stdout);
	vp_table_free(tab);
	return ret;
}

static int nodes_table(const struct status *s, int64_t now)
{
	static const char *const all[] = { "NODE", "INSTANCE", ">PID", "LIVE", ">HEARTBEAT",
					   "SINCE (UTC)", ">ONLINE" };
	bool inst = several_instances(s);
	struct vp_strbuf name = { 0 }, iname = { 0 };
	const char *head[7];
	struct vp_table *tab;
	size_t nh = 0;
	int ret;

	if (!s->n_nodes) {
		printf("\nno server has registered in the store\n");
		return 0;
	}
	for (size_t i = 0; i < 7; ++i)
		if (i != 1 || inst)
			head[nh++] = all[i];
	tab = vp_table_new(nh, head);
	if (!tab)
		return -1;
	for (size_t i = 0; i < s->n_nodes; ++i) {
		const struct node_row *n = &s->nodes[i];
		char pid[16], age[VP_FMT_LEN + 4], since[VP_FMT_LEN], online[24];
		const char *cells[7], *row[7];
		size_t nc = 0;

		snprintf(pid, sizeof(pid), "%d", (int)n->pid);
		vp_fmt_duration(now > n->heartbeat ? now - n->heartbeat : 0, age);
		strcat(age, " ago");
		vp_fmt_time_short(n->started, since);
		snprintf(online, sizeof(online), "%llu", (unsigned long long)n->online);
		cells[0] = vp_fmt_cell(&name, n->node, strlen(n->node));
		cells[1] = n->instance[0] ? vp_fmt_cell(&iname, n->instance, strlen(n->instance)) : "-";
		cells[2] = pid;
		cells[3] = n->live ? "yes" : "no";
		cells[4] = age;
		cells[5] = since;
		cells[6] = online;
		for (size_t k = 0; k < 7; ++k)
			if (k != 1 || inst)
				row[nc++] = cells[k];
		vp_table_row(tab, row);
	}
	printf("\n");
	ret = vp_table_print(tab, stdout);
	vp_table_free(tab);
	vp_strbuf_free(&name);
	vp_strbuf_free(&iname);
	return ret;
}

int vp_cli_pg_status(const struct vp_config *config, bool json)
{
	struct pgcli p = { 0 };
	struct status s = { 0 };
	int64_t now = (int64_t)time(NULL);
	int ret;

	if (pg_open(&p, config, "status"))
		return VP_EXIT_FAIL;
	ret = vp_pg_each_pool(p.pg, each_pool, &s);
	if (!ret)
		ret = vp_pg_each_node(p.pg, each_node, &s);
	if (!ret)
		ret = vp_pg_each_lease(p.pg, count_lease, &s);
	if (ret == -ENOMEM) {
		vp_cli_error("status: %s", strerror(ENOMEM));
	} else if (ret) {
		pg_failed(&p, ret, "");
	} else if (json) {
		status_json(&p, &s, now);
	} else {
		ret = pools_table(&p, &s);
		if (!ret)
			ret = nodes_table(&s, now);
	}
	if (fflush(stdout))
		ret = -EIO;
	status_free(&s);
	pg_close(&p);
	return ret ? VP_EXIT_FAIL : VP_EXIT_OK;
}

/* ---- leases ------------------------------------------------------------------- */

struct listing {
	const struct vp_config *config;
	int state;			/* -1: any */
	const char *pool, *glob;
	char *id;			/* NUL-terminated copy of an identity */
	bool json, has6, hassub, hasinst;
	size_t count, total;
	struct vp_strbuf buf, line, cell, cell2;
	struct vp_table *tab;
	int err;
};

static bool wanted(struct listing *ls, const struct vp_pg_lease *l)
{
	if (ls->state >= 0 && l->rec.state != ls->state)
		return false;
	if (ls->pool && strcmp(l->pool ? l->pool : "", ls->pool) &&
	    strcmp(l->router ? l->router : "", ls->pool))
		return false;
	if (ls->glob) {
		if (memchr(l->rec.identity, 0, l->rec.identity_len))
			return false;
		memcpy(ls->id, l->rec.identity, l->rec.identity_len);
		ls->id[l->rec.identity_len] = '\0';
		if (fnmatch(ls->glob, ls->id, 0))
			return false;
	}
	return true;
}

static void json_addr(struct vp_strbuf *b, const char *key, const struct vp_addr *a, int len)
{
	char t[VP_ADDR_STRLEN];

	vp_strbuf_add(b, key, strlen(key));
	if (!a->family) {
		ADD_LIT(b, "null");
		return;
	}
	if (len >= 0)
		vp_strbuf_addf(b, "\"%s/%d\"", vp_addr_format(a, t), len);
	else
		vp_strbuf_addf(b, "\"%s\"", vp_addr_format(a, t));
}

static void json_name(struct vp_strbuf *b, const char *s)
{
	vp_json_adds(b, s && *s ? s : NULL);
}

static void lease_json(struct listing *ls, const struct vp_pg_lease *l)
{
	const struct vp_lease_rec *r = &l->rec;
	struct vp_strbuf *b = &ls->buf;
	char t1[VP_FMT_LEN], t2[VP_FMT_LEN];

	if (ls->count)
		ADD_LIT(b, ",\n{\"identity\":");
	else
		ADD_LIT(b, "\n{\"identity\":");
	vp_json_add(b, r->identity, r->identity_len);
	vp_strbuf_addf(b, ",\"slot\":%u,\"state\":\"%s\",\"node\":", r->slot,
		       r->state == VP_LEASE_ONLINE ? "online" : "held");
	json_name(b, l->node);
	ADD_LIT(b, ",\"instance\":");
	json_name(b, l->instance);
	ADD_LIT(b, ",\"pool\":");
	json_name(b, l->pool);
	ADD_LIT(b, ",\"router_pool\":");
	json_name(b, l->router);
	json_addr(b, ",\"address\":", &r->addr4, -1);
	json_addr(b, ",\"address6\":", &r->addr6, -1);
	json_addr(b, ",\"subnet\":", &r->subnet4.addr, r->subnet4.len);
	json_addr(b, ",\"subnet6\":", &r->subnet6.addr, r->subnet6.len);
	vp_strbuf_addf(b, ",\"static\":%s,\"since\":\"%s\",\"since_unix\":%lld",
		       l->static4 ? "true" : "false", vp_fmt_time(r->since, t1), (long long)r->since);
	vp_strbuf_addf(b, ",\"created\":\"%s\",\"created_unix\":%lld,\"real\":",
		       vp_fmt_time(r->created, t2), (long long)r->created);
	if (r->real[0])
		vp_json_adds(b, r->real);
	else
		ADD_LIT(b, "null");
	vp_strbuf_addf(b, ",\"sessions\":%u}", r->sessions);
	if (b->len >= (1u << 20))
		flush_buf(b);
}

/* Columns: IDENTITY STATE NODE INSTANCE POOL ADDRESS ADDRESS6 SUBNET SINCE REAL SESSIONS */
#define N_COLS 11

static bool column_shown(const struct listing *ls, size_t i)
{
	return !((i == 3 && !ls->hasinst) || (i == 6 && !ls->has6) || (i == 7 && !ls->hassub));
}

static void lease_row(struct listing *ls, const struct vp_pg_lease *l)
{
	const struct vp_lease_rec *r = &l->rec;
	char a4[VP_ADDR_STRLEN + 4] = "-", a6[VP_ADDR_STRLEN] = "-", sn[2 * VP_PREFIX_STRLEN] = "-";
	char since[VP_FMT_LEN], sessions[16], where[256];
	const char *cells[N_COLS], *row[N_COLS];
	size_t n = 0;

	if (r->addr4.family) {
		vp_addr_format(&r->addr4, a4);
		if (l->static4)
			strcat(a4, " (s)");
	}
	if (r->addr6.family)
		vp_addr_format(&r->addr6, a6);
	if (r->subnet4.addr.family || r->subnet6.addr.family) {
		char p4[VP_PREFIX_STRLEN] = "", p6[VP_PREFIX_STRLEN] = "";

		if (r->subnet4.addr.family)
			vp_prefix_format(&r->subnet4, p4);
		if (r->subnet6.addr.family)
			vp_prefix_format(&r->subnet6, p6);
		snprintf(sn, sizeof(sn), "%s%s%s", p4, *p4 && *p6 ? " " : "", p6);
	}
	snprintf(where, sizeof(where), "%s%s%s", l->pool && *l->pool ? l->pool : "-",
		 l->router && *l->router ? "+" : "", l->router ? l->router : "");
	vp_fmt_time_short(r->since, since);
	snprintf(sessions, sizeof(sessions), "%u", r->sessions);
	vp_fmt_cell(&ls->line, r->identity, r->identity_len);
	if (r->slot)
		vp_strbuf_addf(&ls->line, "#%u", r->slot);
	cells[0] = ls->line.oom ? "?" : ls->line.s;
	cells[1] = r->state == VP_LEASE_ONLINE ? "online" : "held";
	cells[2] = l->node && *l->node ? vp_fmt_cell(&ls->cell, l->node, strlen(l->node)) : "-";
	cells[3] = l->instance && *l->instance ?
			   vp_fmt_cell(&ls->cell2, l->instance, strlen(l->instance)) : "-";
	cells[4] = where;
	cells[5] = a4;
	cells[6] = a6;
	cells[7] = sn;
	cells[8] = since;
	cells[9] = r->real[0] ? r->real : "-";
	cells[10] = sessions;
	for (size_t i = 0; i < N_COLS; ++i)
		if (column_shown(ls, i))
			row[n++] = cells[i];
	vp_table_row(ls->tab, row);
}

static int each_lease(void *ud, const struct vp_pg_lease *l)
{
	struct listing *ls = ud;

	ls->total++;
	if (!wanted(ls, l))
		return 0;
	if (ls->json)
		lease_json(ls, l);
	else
		lease_row(ls, l);
	ls->count++;
	return 0;
}

static int nodes_seen(void *ud, const struct vp_pg_node *n)
{
	return each_node(ud, n);
}

int vp_cli_pg_leases(const struct vp_config *config, bool json, int state, const char *pool,
		     const char *glob)
{
	static const char *const all[] = { "IDENTITY", "STATE", "NODE", "INSTANCE", "POOL",
					   "ADDRESS", "ADDRESS6", "SUBNET", "SINCE (UTC)",
					   "REAL", ">SESSIONS" };
	struct listing ls = { .config = config, .state = state, .pool = pool, .glob = glob,
			      .json = json };
	struct status s = { 0 };
	struct pgcli p = { 0 };
	const char *head[N_COLS];
	size_t nh = 0;
	int ret;

	ls.id = malloc(VP_IDENTITY_MAX + 1);
	if (!ls.id || pg_open(&p, config, "leases")) {
		free(ls.id);
		return VP_EXIT_FAIL;
	}
	if (pool && !json && !config_pool(config, pool) && !config_router(config, pool))
		vp_cli_error("warning: %s has no pool named `%s'", config->path, pool);
	ret = vp_pg_each_node(p.pg, nodes_seen, &s);
	ls.hasinst = several_instances(&s);
	for (size_t i = 0; i < config->n_pools; ++i)
		ls.has6 |= config->pools[i].has_network6;
	ls.hassub = config->n_routers > 0;
	for (size_t i = 0; i < config->n_statics; ++i) {
		ls.has6 |= config->statics[i].has_address6;
		ls.hassub |= config->statics[i].has_subnet || config->statics[i].has_subnet6;
	}
	if (!ret && !json) {
		for (size_t i = 0; i < N_COLS; ++i)
			if (column_shown(&ls, i))
				head[nh++] = all[i];
		ls.tab = vp_table_new(nh, head);
		if (!ls.tab)
			ret = -ENOMEM;
	}
	if (!ret) {
		if (json)
			ADD_LIT(&ls.buf, "{\"leases\":[");
		ret = vp_pg_each_lease(p.pg, each_lease, &ls);
	}
	if (ret == -ENOMEM || ls.buf.oom) {
		ret = -ENOMEM;
		vp_cli_error("leases: %s", strerror(ENOMEM));
	} else if (ret) {
		pg_failed(&p, ret, "");
	} else if (json) {
		vp_strbuf_addf(&ls.buf, "%s],\"count\":%zu,\"total\":%zu}\n", ls.count ? "\n" : "",
			       ls.count, ls.total);
		flush_buf(&ls.buf);
	} else {
		if (ls.count)
			ret = vp_table_print(ls.tab, stdout);
		if (!ret)
			printf("%s%zu of %zu leases\n", ls.count ? "\n" : "", ls.count, ls.total);
	}
	if (fflush(stdout))
		ret = -EIO;
	vp_table_free(ls.tab);
	vp_strbuf_free(&ls.buf);
	vp_strbuf_free(&ls.line);
	vp_strbuf_free(&ls.cell);
	vp_strbuf_free(&ls.cell2);
	status_free(&s);
	free(ls.id);
	pg_close(&p);
	return ret ? VP_EXIT_FAIL : VP_EXIT_OK;
}

/* ---- release and import ---------------------------------------------------------- */

int vp_cli_pg_release(const struct vp_config *config, const char *id)
{
	struct pgcli p = { 0 };
	int ret;

	if (pg_open(&p, config, "release"))
		return VP_EXIT_FAIL;
	ret = vp_pg_release(p.pg, (const uint8_t *)id, strlen(id));
	if (!vp_cli_release_said(id, ret))
		pg_failed(&p, ret, "; nothing changed");
	pg_close(&p);
	if (fflush(stdout))
		ret = -EIO;
	return ret ? VP_EXIT_FAIL : VP_EXIT_OK;
}

int vp_cli_pg_import_open(struct vp_pg **out, const struct vp_config *config)
{
	struct pgcli p = { 0 };

	if (pg_open(&p, config, "import"))
		return -1;
	*out = p.pg;
	return 0;
}

void vp_cli_pg_import_failed(struct vp_pg *pg, const struct vp_config *config, int ret,
			     unsigned imported)
{
	struct pgcli p = { .config = config, .pg = pg, .cmd = "import" };
	char what[96];

	vp_pg_uri_shown(config->store, p.name, sizeof(p.name));
	snprintf(what, sizeof(what), "; stopped after %u leases imported", imported);
	pg_failed(&p, ret, what);
}
