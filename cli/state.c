/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vpnpool status and vpnpool leases: the state as the plugin wrote it. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/fmt.h"
#include "conf/load.h"
#include "core/space.h"
#include "core/store.h"

/* Append a string literal. */
#define ADD_LIT(b, lit) vp_strbuf_add(b, "" lit, sizeof(lit) - 1)

struct state {
	struct vp_config config;
	struct vp_space *space;		/* read only */
	struct vp_store_report report;
	struct vp_server server;
	bool has_server;
};

/*
 * The engine, read only: the journal replayed without the lock, every lease
 * placed as the plugin places it (none dropped: one that does not fit this
 * config shows with no pool).  The server's own addresses, as the plugin last
 * learnt them, are left out of the pools as the plugin's do; before any
 * plugin ran, the config's topology (subnet for auto) and no address.
 */
static int space_open(struct state *st)
{
	struct vp_space_options opts = { .config = &st->config, .read_only = true };
	char line[512];
	int ret;

	st->has_server = !vp_store_read_server(st->config.state_dir, line, sizeof(line)) &&
			 vp_server_parse(line, &st->server);
	if (!st->has_server) {
		memset(&st->server, 0, sizeof(st->server));
		st->server.topology = st->config.topology == VP_TOPO_AUTO ? VP_TOPO_SUBNET :
									     st->config.topology;
	}
	ret = vp_space_open(&st->space, &opts, &st->report, NULL);
	if (!ret) {
		ret = vp_space_set_server(st->space, &st->server);
		if (ret) {
			vp_space_close(st->space);
			st->space = NULL;
		}
	}
	return ret;
}

/* The config alone (a store in it: the database is read instead). */
static int state_config(struct state *st, const char *path)
{
	char err[2048];

	memset(st, 0, sizeof(*st));
	if (vp_conf_load(&st->config, path, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

/* After state_config(): the journal. */
static int state_open(struct state *st)
{
	int ret;

	ret = space_open(st);
	if (ret == -EPROTONOSUPPORT)
		vp_cli_error("%s/leases.journal is of format version %u; this vpnpool understands version %u: upgrade vpnpool, or move the file aside to start with no leases (every client then gets a new address)",
			     st->config.state_dir, st->report.version, st->report.version_known);
	else if (ret)
		vp_cli_error("cannot read the state in %s: %s", st->config.state_dir, strerror(-ret));
	if (ret) {
		vp_config_free(&st->config);
		return -1;
	}
	if (st->report.empty)
		vp_cli_error("warning: %s/leases.journal is empty (0 bytes, not even its header: something cut it): the leases it held are lost",
			     st->config.state_dir);
	if (st->report.corrupt)
		vp_cli_error("warning: %s/leases.journal is damaged at offset %llu (%s): showing the records before it",
			     st->config.state_dir, (unsigned long long)st->report.corrupt_offset,
			     st->report.detail);
	return 0;
}

/* A space left for the process's exit to free: a million leases take
 * longer to free(3) one by one (kept reachable, for leak checkers). */
static struct vp_space *left_to_exit;

static void state_close(struct state *st, bool exits)
{
	if (exits && !left_to_exit)
		left_to_exit = st->space;
	else
		vp_space_close(st->space);
	vp_config_free(&st->config);
}

static void out(const struct vp_strbuf *b)
{
	if (b->len)
		fwrite(b->s, 1, b->len, stdout);
}

/* ---- status --------------------------------------------------------------- */

struct totals {
	uint64_t online, held;
};

/* The live instances: a registration (not a stop) whose liveness lock is
 * held; in slot order.  n of them into out. */
static size_t live_instances(struct state *st, const struct vp_instance_rec **out)
{
	size_t n = 0;

	for (uint16_t slot = 0; slot < VP_INSTANCE_MAX; ++slot) {
		const struct vp_instance_rec *r = vp_space_instance(st->space, slot);

		/* A stop record with the lock held: it registered again after
		 * the journal was read; not known yet. */
		if (r && !r->stopped && vp_space_slot_alive(st->space, slot))
			out[n++] = r;
	}
	return n;
}

static void status_json(struct state *st, const struct totals *t,
			const struct vp_instance_rec *const *inst, size_t n_inst)
{
	const struct vp_config *c = &st->config;
	struct vp_strbuf b = { 0 };
	struct vp_pool_usage u;

	ADD_LIT(&b, "{\"config\":");
	vp_json_adds(&b, c->path);
	ADD_LIT(&b, ",\"state_dir\":");
	vp_json_adds(&b, c->state_dir);
	vp_strbuf_addf(&b, ",\"leases\":%zu,\"online\":%llu,\"held\":%llu", vp_space_leases(st->space),
		       (unsigned long long)t->online, (unsigned long long)t->held);
	vp_strbuf_addf(&b, ",\"journal\":{\"records\":%llu,\"bytes\":%llu,\"torn\":%s,\"corrupt\":%s}",
		       (unsigned long long)st->report.records, (unsigned long long)st->report.bytes,
		       st->report.torn ? "true" : "false", st->report.corrupt ? "true" : "false");
	ADD_LIT(&b, ",\"pools\":[");
	for (size_t i = 0; i < c->n_pools; ++i) {
		const struct vp_pool_config *pc = &c->pools[i];

		vp_space_pool_usage(st->space, i, &u);
		if (i)
			ADD_LIT(&b, ",");
		vp_fmt_pool_json(&b, pc->name, &pc->network, pc->has_network6 ? &pc->network6 : NULL, 0, 0, &u);
	}
	ADD_LIT(&b, "],\"router_pools\":[");
	for (size_t i = 0; i < c->n_routers; ++i) {
		const struct vp_router_config *rc = &c->routers[i];

		vp_space_router_usage(st->space, i, &u);
		if (i)
			ADD_LIT(&b, ",");
		vp_fmt_pool_json(&b, rc->name, &rc->network, rc->has_network6 ? &rc->network6 : NULL,
			   rc->prefix, rc->has_network6 ? rc->prefix6 : 0, &u);
	}
	ADD_LIT(&b, "],\"instances\":[");
	for (size_t i = 0; i < n_inst; ++i) {
		char when[VP_FMT_LEN];

		if (i)
			ADD_LIT(&b, ",");
		ADD_LIT(&b, "{\"name\":");
		vp_json_adds(&b, inst[i]->name);
		vp_strbuf_addf(&b, ",\"pid\":%d,\"dev\":", (int)inst[i]->pid);
		vp_json_adds(&b, inst[i]->dev[0] ? inst[i]->dev : NULL);
		vp_strbuf_addf(&b, ",\"since\":\"%s\",\"since_unix\":%lld}",
			       vp_fmt_time(inst[i]->time, when), (long long)inst[i]->time);
	}
	ADD_LIT(&b, "]}\n");
	out(&b);
	vp_strbuf_free(&b);
}

static int status_table(struct state *st, const struct totals *t)
{
	static const char *const head[] = { "POOL", "KIND", "NETWORK", ">SIZE", ">ONLINE",
					    ">HELD", ">FREE", ">USED" };
	const struct vp_config *c = &st->config;
	struct vp_table *tab = vp_table_new(8, head);
	struct vp_pool_usage u;
	char n[VP_PREFIX_STRLEN], net[VP_PREFIX_STRLEN + 8];
	int ret;

	if (!tab)
		return -1;
	printf("%s: %zu leases, %llu online, %llu held\n\n", c->state_dir, vp_space_leases(st->space),
	       (unsigned long long)t->online, (unsigned long long)t->held);
	for (size_t i = 0; i < c->n_pools; ++i) {
		vp_space_pool_usage(st->space, i, &u);
		vp_fmt_pool_row(tab, c->pools[i].name, "pool", vp_prefix_format(&c->pools[i].network, n), &u);
	}
	for (size_t i = 0; i < c->n_routers; ++i) {
		const struct vp_router_config *rc = &c->routers[i];
		bool v4 = rc->network.addr.family;

		vp_space_router_usage(st->space, i, &u);
		snprintf(net, sizeof(net), "%s /%u", vp_prefix_format(v4 ? &rc->network : &rc->network6, n),
			 v4 ? rc->prefix : rc->prefix6);
		vp_fmt_pool_row(tab, rc->name, "router-pool", net, &u);
	}
	ret = vp_table_print(tab, stdout);
	vp_table_free(tab);
	return ret;
}

/* The live instances, after the pools (nothing when none runs). */
static int instances_table(const struct vp_instance_rec *const *inst, size_t n)
{
	static const char *const head[] = { "INSTANCE", ">PID", "DEV", "SINCE (UTC)" };
	struct vp_strbuf name = { 0 }, dev = { 0 };
	struct vp_table *tab;
	int ret;

	if (!n)
		return 0;
	tab = vp_table_new(4, head);
	if (!tab)
		return -1;
	for (size_t i = 0; i < n; ++i) {
		char pid[16], since[VP_FMT_LEN];
		const char *cells[] = {
			vp_fmt_cell(&name, inst[i]->name, strlen(inst[i]->name)), pid,
			inst[i]->dev[0] ? vp_fmt_cell(&dev, inst[i]->dev, strlen(inst[i]->dev)) : "-",
			since,
		};

		snprintf(pid, sizeof(pid), "%d", (int)inst[i]->pid);
		vp_fmt_time_short(inst[i]->time, since);
		vp_table_row(tab, cells);
	}
	printf("\n");
	ret = vp_table_print(tab, stdout);
	vp_table_free(tab);
	vp_strbuf_free(&name);
	vp_strbuf_free(&dev);
	return ret;
}

int vp_cmd_status(const struct vp_cli *cli, int argc, char **argv)
{
	const struct vp_instance_rec *inst[VP_INSTANCE_MAX];
	struct state st;
	struct totals t = { 0 };
	bool json = false;
	size_t n_inst;
	int ret;

	for (int i = 1; i < argc; ++i) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else {
			vp_cli_error("status: unknown argument `%s' (try vpnpool status --help)", argv[i]);
			return VP_EXIT_USAGE;
		}
	}
	if (state_config(&st, cli->config_path))
		return VP_EXIT_FAIL;
	if (st.config.store) {
		ret = vp_cli_pg_status(&st.config, json);
		vp_config_free(&st.config);
		return ret;
	}
	if (state_open(&st))
		return VP_EXIT_FAIL;
	vp_space_count(st.space, &t.online, &t.held);
	n_inst = live_instances(&st, inst);
	if (json) {
		status_json(&st, &t, inst, n_inst);
		ret = 0;
	} else {
		ret = status_table(&st, &t);
		if (!ret)
			ret = instances_table(inst, n_inst);
	}
	if (fflush(stdout))
		ret = -1;
	state_close(&st, cli->exits);
	return ret ? VP_EXIT_FAIL : VP_EXIT_OK;
}

/* ---- leases --------------------------------------------------------------- */

struct filter {
	int state;			/* -1: any */
	const char *pool, *glob;
	char *id;			/* NUL-terminated copy of an identity */
};

struct listing {
	const struct vp_config *config;
	const char *instances[VP_INSTANCE_MAX];	/* name of each slot, or NULL */
	struct filter f;
	bool json, has6, hassub, hasinst;
	size_t count;
	struct vp_strbuf line, cell;
	struct vp_table *tab;
	struct jsonout *out;		/* --json */
};

static const char *pool_name(const struct vp_config *c, const struct vp_space_lease *l)
{
	return l->pool >= 0 ? c->pools[l->pool].name : NULL;
}

static const char *router_name(const struct vp_config *c, const struct vp_space_lease *l)
{
	return l->router >= 0 ? c->routers[l->router].name : NULL;
}

/* The name of a lease's instance (online: its current one; held: its last
 * one), or NULL. */
static const char *instance_of(const struct listing *ls, const struct vp_space_lease *l)
{
	return l->rec.instance < VP_INSTANCE_MAX ? ls->instances[l->rec.instance] : NULL;
}

static bool wanted(struct listing *ls, const struct vp_space_lease *l)
{
	const struct vp_config *c = ls->config;
	const char *p = pool_name(c, l), *r = router_name(c, l);

	if (ls->f.state >= 0 && l->rec.state != ls->f.state)
		return false;
	if (ls->f.pool && !(p && !strcmp(p, ls->f.pool)) && !(r && !strcmp(r, ls->f.pool)))
		return false;
	if (ls->f.glob) {
		if (memchr(l->rec.identity, 0, l->rec.identity_len))
			return false;
		memcpy(ls->f.id, l->rec.identity, l->rec.identity_len);
		ls->f.id[l->rec.identity_len] = '\0';
		if (fnmatch(ls->f.glob, ls->f.id, 0))
			return false;
	}
	return true;
}

/* ---- leases --json: straight into a large buffer, written with write(2) ---- */

#define JSON_BUF (1u << 20)		/* written out in chunks of about this */
#define JSON_ROOM (64u << 10)		/* room for a lease besides its identity and real address */

struct jsonout {
	char *buf, *p;			/* p: where the next byte goes */
	int fd;
	int err;			/* first write error, -errno */
	int64_t day;			/* the day whose date is in date[] */
	char date[16];			/* "YYYY-MM-DDT" */
	struct vp_strbuf tmp;		/* a string that needs escapes */
	char **pools, **routers;	/* names as JSON strings, "null" for none */
};

static void jo_flush(struct jsonout *o)
{
	const char *q = o->buf;

	while (q < o->p && !o->err) {
		ssize_t n = write(o->fd, q, (size_t)(o->p - q));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			o->err = -errno;
		else
			q += n;
	}
	o->p = o->buf;
}

/* Make room for need more bytes. */
static void jo_room(struct jsonout *o, size_t need)
{
	if ((size_t)(o->buf + JSON_BUF + JSON_ROOM - o->p) < need)
		jo_flush(o);
}

static char *put(char *p, const void *data, size_t len)
{
	memcpy(p, data, len);
	return p + len;
}

#define PUT_LIT(p, lit) put(p, "" lit, sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
	char digits[20], *d = digits + sizeof(digits);

	do {
		*--d = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return put(p, d, (size_t)(digits + sizeof(digits) - d));
}

/* A JSON string; the common case (printable ASCII, no '"' or '\') is copied
 * as it is, the rest goes through vp_json_add().  Room: 6 * len + 2. */
static char *put_str(struct jsonout *o, char *p, const void *value, size_t len)
{
	const uint8_t *v = value;

	for (size_t i = 0; i < len; ++i)
		if (v[i] < 0x20 || v[i] >= 0x7f || v[i] == '"' || v[i] == '\\') {
			vp_strbuf_reset(&o->tmp);
			vp_json_add(&o->tmp, value, len);
			if (o->tmp.oom)
				return PUT_LIT(p, "\"\"");
			return put(p, o->tmp.s, o->tmp.len);
		}
	*p++ = '"';
	p = put(p, value, len);
	*p++ = '"';
	return p;
}

static char *put_ipv4(char *p, uint32_t v)
{
	for (int shift = 24; shift >= 0; shift -= 8) {
		unsigned b = (v >> shift) & 255;

		if (b >= 100)
			*p++ = (char)('0' + b / 100);
		if (b >= 10)
			*p++ = (char)('0' + b / 10 % 10);
		*p++ = (char)('0' + b % 10);
		*p++ = '.';
	}
	return p - 1;
}

/* ,"key":"ADDR" or ,"key":null (key given with its punctuation); with the
 * prefix length for len >= 0. */
static char *put_addr(char *p, const char *key, size_t key_len, const struct vp_addr *a, int len)
{
	char t[VP_ADDR_STRLEN];

	p = put(p, key, key_len);
	if (!a->family)
		return PUT_LIT(p, "null");
	*p++ = '"';
	if (a->family == VP_INET)
		p = put_ipv4(p, vp_addr_to_v4(a));
	else
		p = put(p, t, strlen(vp_addr_format(a, t)));
	if (len >= 0) {
		*p++ = '/';
		p = put_u64(p, (unsigned)len);
	}
	*p++ = '"';
	return p;
}

static char *put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

/* "TIME","key_unix":T as vp_fmt_time() writes it; the date is kept from
 * the last time of the same day. */
static char *put_time(struct jsonout *o, char *p, const char *unix_key, size_t unix_len,
		      int64_t t)
{
	char text[VP_FMT_LEN];

	*p++ = '"';
	if (t <= 0 || t > 253402300799LL) {	/* 0, before 1970, after 9999: as ever */
		vp_fmt_time(t, text);
		p = put(p, text, strlen(text));
	} else {
		int64_t day = t / 86400;
		unsigned secs = (unsigned)(t % 86400);

		if (day != o->day) {
			vp_fmt_time(day * 86400 + 43200, text);	/* noon: never 0 ("-") */
			memcpy(o->date, text, 11);
			o->day = day;
		}
		p = put(p, o->date, 11);
		p = put2(p, secs / 3600);
		*p++ = ':';
		p = put2(p, secs / 60 % 60);
		*p++ = ':';
		p = put2(p, secs % 60);
		*p++ = 'Z';
	}
	*p++ = '"';
	p = put(p, unix_key, unix_len);
	if (t < 0)
		*p++ = '-';
	return put_u64(p, t < 0 ? (uint64_t)-t : (uint64_t)t);
}

#define PUT_KEY(p, k) put(p, "" k, sizeof(k) - 1)

static void lease_json(struct listing *ls, const struct vp_space_lease *l)
{
	const struct vp_lease_rec *r = &l->rec;
	struct jsonout *o = ls->out;
	size_t real_len = strlen(r->real);
	const char *name;
	char *p;

	jo_room(o, JSON_ROOM + 6 * (r->identity_len + real_len));
	p = o->p;
	if (ls->count)
		p = PUT_LIT(p, ",\n{\"identity\":");
	else
		p = PUT_LIT(p, "\n{\"identity\":");
	p = put_str(o, p, r->identity, r->identity_len);
	p = PUT_LIT(p, ",\"slot\":");
	p = put_u64(p, r->slot);
	if (r->state == VP_LEASE_ONLINE)
		p = PUT_LIT(p, ",\"state\":\"online\",\"instance\":");
	else
		p = PUT_LIT(p, ",\"state\":\"held\",\"instance\":");
	name = instance_of(ls, l);
	if (name)
		p = put_str(o, p, name, strlen(name));
	else
		p = PUT_LIT(p, "null");
	p = PUT_LIT(p, ",\"pool\":");
	name = l->pool >= 0 ? o->pools[l->pool] : "null";
	p = put(p, name, strlen(name));
	p = PUT_LIT(p, ",\"router_pool\":");
	name = l->router >= 0 ? o->routers[l->router] : "null";
	p = put(p, name, strlen(name));
	p = put_addr(p, ",\"address\":", 11, &r->addr4, -1);
	p = put_addr(p, ",\"address6\":", 12, &r->addr6, -1);
	p = put_addr(p, ",\"subnet\":", 10, &r->subnet4.addr, r->subnet4.len);
	p = put_addr(p, ",\"subnet6\":", 11, &r->subnet6.addr, r->subnet6.len);
	if (l->static4 || l->static_subnet)
		p = PUT_LIT(p, ",\"static\":true,\"since\":");
	else
		p = PUT_LIT(p, ",\"static\":false,\"since\":");
	p = put_time(o, p, ",\"since_unix\":", 14, r->since);
	p = PUT_LIT(p, ",\"created\":");
	p = put_time(o, p, ",\"created_unix\":", 16, r->created);
	p = PUT_LIT(p, ",\"real\":");
	if (real_len)
		p = put_str(o, p, r->real, real_len);
	else
		p = PUT_LIT(p, "null");
	p = PUT_LIT(p, ",\"sessions\":");
	p = put_u64(p, r->sessions);
	*p++ = '}';
	o->p = p;
}

/* Columns of the leases table: ADDRESS6, SUBNET and INSTANCE only where
 * the config or the journal has them. */
static bool column_shown(const struct listing *ls, size_t i)
{
	return !((i == 2 && !ls->hasinst) || (i == 5 && !ls->has6) || (i == 6 && !ls->hassub));
}

static void lease_row(struct listing *ls, const struct vp_space_lease *l)
{
	const struct vp_lease_rec *r = &l->rec;
	char a4[VP_ADDR_STRLEN + 4] = "-", a6[VP_ADDR_STRLEN] = "-", sn[2 * VP_PREFIX_STRLEN] = "-";
	char since[VP_FMT_LEN], sessions[16];
	const char *pool = pool_name(ls->config, l), *router = router_name(ls->config, l);
	char where[256];
	const char *inst = instance_of(ls, l);
	const char *cells[] = { NULL, r->state == VP_LEASE_ONLINE ? "online" : "held", NULL,
				where, a4, a6, sn, since, r->real[0] ? r->real : "-", sessions };
	size_t ncells = 0;
	const char *row[10];

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
	snprintf(where, sizeof(where), "%s%s%s", pool ? pool : "-", router ? "+" : "", router ? router : "");
	vp_fmt_time_short(r->since, since);
	snprintf(sessions, sizeof(sessions), "%u", r->sessions);
	if (r->slot) {
		vp_fmt_cell(&ls->line, r->identity, r->identity_len);
		vp_strbuf_addf(&ls->line, "#%u", r->slot);
		cells[0] = ls->line.oom ? "?" : ls->line.s;
	} else {
		cells[0] = vp_fmt_cell(&ls->line, r->identity, r->identity_len);
	}
	cells[2] = inst ? vp_fmt_cell(&ls->cell, inst, strlen(inst)) : "-";
	for (size_t i = 0; i < 10; ++i) {
		if (!column_shown(ls, i))
			continue;
		row[ncells++] = cells[i];
	}
	vp_table_row(ls->tab, row);
}

static int each_lease(void *ud, const struct vp_space_lease *l)
{
	struct listing *ls = ud;

	if (!wanted(ls, l))
		return 0;
	if (ls->json)
		lease_json(ls, l);
	else
		lease_row(ls, l);
	ls->count++;
	return 0;
}

static void columns_needed(struct listing *ls)
{
	const struct vp_config *c = ls->config;

	for (size_t i = 0; i < c->n_pools; ++i)
		ls->has6 |= c->pools[i].has_network6;
	ls->hassub = c->n_routers > 0;
	for (size_t i = 0; i < c->n_statics; ++i) {
		ls->has6 |= c->statics[i].has_address6;
		ls->hassub |= c->statics[i].has_subnet || c->statics[i].has_subnet6;
	}
}

static int leases_table(struct state *st, struct listing *ls)
{
	static const char *const all[] = { "IDENTITY", "STATE", "INSTANCE", "POOL", "ADDRESS",
					   "ADDRESS6", "SUBNET", "SINCE (UTC)", "REAL",
					   ">SESSIONS" };
	const char *head[10];
	size_t n = 0;
	int ret;

	columns_needed(ls);
	ls->hasinst = vp_space_instances_seen(st->space) > 0;
	for (size_t i = 0; i < 10; ++i)
		if (column_shown(ls, i))
			head[n++] = all[i];
	ls->tab = vp_table_new(n, head);
	if (!ls->tab)
		return -ENOMEM;
	ret = vp_space_each_placed(st->space, true, each_lease, ls);
	if (!ret && ls->count)
		ret = vp_table_print(ls->tab, stdout);
	if (!ret)
		printf("%s%zu of %zu leases\n", ls->count ? "\n" : "", ls->count,
		       vp_space_leases(st->space));
	vp_table_free(ls->tab);
	return ret;
}

/* Each name once as a JSON string (a pool's name is in every lease). */
static char **json_names(size_t n, const char *(*name)(const struct vp_config *, size_t),
			 const struct vp_config *c)
{
	char **out = calloc(n + 1, sizeof(*out));

	for (size_t i = 0; out && i < n; ++i) {
		struct vp_strbuf b = { 0 };

		vp_json_adds(&b, name(c, i));
		vp_strbuf_add(&b, "", 1);
		if (b.oom || b.len > JSON_ROOM / 4) {
			vp_strbuf_free(&b);
			while (i)
				free(out[--i]);
			free(out);
			return NULL;
		}
		out[i] = b.s;
	}
	return out;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; ++i)
		free(names[i]);
	free(names);
}

static const char *pool_at(const struct vp_config *c, size_t i)
{
	return c->pools[i].name;
}

static const char *router_at(const struct vp_config *c, size_t i)
{
	return c->routers[i].name;
}

static int leases_json(struct state *st, struct listing *ls)
{
	struct jsonout o = { .fd = STDOUT_FILENO, .day = -1 };
	const struct vp_config *c = ls->config;
	char *p;
	int ret = -ENOMEM;

	if (fflush(stdout))
		return -EIO;
	o.buf = malloc(JSON_BUF + JSON_ROOM);
	o.pools = json_names(c->n_pools, pool_at, c);
	o.routers = json_names(c->n_routers, router_at, c);
	if (o.buf && o.pools && o.routers) {
		o.p = o.buf;
		o.p = PUT_LIT(o.p, "{\"leases\":[");
		ls->out = &o;
		ret = vp_space_each_placed(st->space, true, each_lease, ls);
		jo_room(&o, 64);
		p = o.p;
		if (ls->count)
			*p++ = '\n';
		p = PUT_LIT(p, "],\"count\":");
		p = put_u64(p, ls->count);
		p = PUT_LIT(p, ",\"total\":");
		p = put_u64(p, vp_space_leases(st->space));
		p = PUT_LIT(p, "}\n");
		o.p = p;
		jo_flush(&o);
		if (!ret)
			ret = o.err;
	}
	free(o.buf);
	free_names(o.pools, c->n_pools);
	free_names(o.routers, c->n_routers);
	vp_strbuf_free(&o.tmp);
	return ret;
}

static int parse_filter(int argc, char **argv, struct listing *ls)
{
	for (int i = 1; i < argc; ++i) {
		const char *a = argv[i];

		if (!strcmp(a, "--json")) {
			ls->json = true;
		} else if (!strcmp(a, "--online")) {
			ls->f.state = VP_LEASE_ONLINE;
		} else if (!strcmp(a, "--held")) {
			ls->f.state = VP_LEASE_HELD;
		} else if (!strcmp(a, "--pool") && i + 1 < argc) {
			ls->f.pool = argv[++i];
		} else if (!strncmp(a, "--pool=", 7)) {
			ls->f.pool = a + 7;
		} else if (!strcmp(a, "--") && i + 2 == argc && !ls->f.glob) {
			ls->f.glob = argv[++i];
		} else if (a[0] != '-' && !ls->f.glob) {
			ls->f.glob = a;
		} else {
			vp_cli_error("leases: unexpected argument `%s' (try vpnpool leases --help)", a);
			return -1;
		}
	}
	return 0;
}

int vp_cmd_leases(const struct vp_cli *cli, int argc, char **argv)
{
	struct listing ls = { .f = { .state = -1 } };
	struct state st;
	int ret;

	if (parse_filter(argc, argv, &ls))
		return VP_EXIT_USAGE;
	if (state_config(&st, cli->config_path))
		return VP_EXIT_FAIL;
	if (st.config.store) {
		ret = vp_cli_pg_leases(&st.config, ls.json, ls.f.state, ls.f.pool, ls.f.glob);
		vp_config_free(&st.config);
		return ret;
	}
	ls.f.id = malloc(VP_IDENTITY_MAX + 1);
	if (!ls.f.id || state_open(&st)) {
		free(ls.f.id);
		if (!ls.f.id)
			vp_config_free(&st.config);
		return VP_EXIT_FAIL;
	}
	ls.config = &st.config;
	for (uint16_t slot = 0; slot < VP_INSTANCE_MAX; ++slot)
		ls.instances[slot] = vp_space_slot_name(st.space, slot);
	if (ls.f.pool && !ls.json) {
		bool known = false;

		for (size_t i = 0; i < st.config.n_pools; ++i)
			known |= !strcmp(st.config.pools[i].name, ls.f.pool);
		for (size_t i = 0; i < st.config.n_routers; ++i)
			known |= !strcmp(st.config.routers[i].name, ls.f.pool);
		if (!known)
			vp_cli_error("warning: %s has no pool named `%s'", st.config.path, ls.f.pool);
	}
	ret = ls.json ? leases_json(&st, &ls) : leases_table(&st, &ls);
	if (fflush(stdout))
		ret = -EIO;
	if (ret)
		vp_cli_error("leases: %s", strerror(ret < 0 ? -ret : ENOMEM));
	vp_strbuf_free(&ls.line);
	vp_strbuf_free(&ls.cell);
	free(ls.f.id);
	state_close(&st, cli->exits);
	return ret ? VP_EXIT_FAIL : VP_EXIT_OK;
}
