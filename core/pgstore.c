/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The PostgreSQL store on libpq: every call is one statement sent with the
 * asynchronous API and waited for with poll(2) up to a deadline.  What is
 * chosen, and why it cannot be chosen twice, is in the schema
 * (core/pgschema.sql, vp_pg_schema_sql()).
 *
 * Past the deadline the connection is closed (PQcancel would block on a
 * stopped server); the server ends the statement itself by its
 * statement_timeout, and notices the closed socket by
 * client_connection_check_interval, both set at connect.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "layout.h"
#include "logfmt.h"
#include "pgstore.h"

#define RECONNECT_MS 1000
#define SEG_COUNT_MAX (UINT64_C(1) << 62)

struct vp_pg {
	const struct vp_config *config;
	char *node, *instance;
	bool command;
	bool create_schema;
	unsigned timeout_ms;
	PGconn *conn;
	int64_t last_try;		/* monotonic ms of the last connect */
	bool tried;
	int conn_err;			/* what the last failed connect returned */
	char conn_msg[1024];
	char err[1024];
	bool reaped_self;		/* vp_pg_start ended the leftovers */
	bool started;
	struct vp_server server;
	int *pool_id, *router_id;	/* per config entry; 0: not published */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seterr(struct vp_pg *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct vp_pg *pg, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(pg->err, sizeof(pg->err), fmt, ap);
	va_end(ap);
	/* libpq's messages end with a newline */
	n = strlen(pg->err);
	while (n && (pg->err[n - 1] == '\n' || pg->err[n - 1] == ' '))
		pg->err[--n] = 0;
	for (char *p = pg->err; *p; ++p)
		if (*p == '\n')
			*p = ' ';
}

static void drop_conn(struct vp_pg *pg)
{
	if (pg->conn)
		PQfinish(pg->conn);
	pg->conn = NULL;
}

/* Wait until the socket is ready (for writing too when wr).  0, -ETIMEDOUT. */
static int wait_sock(PGconn *conn, bool rd, bool wr, int64_t deadline)
{
	struct pollfd p = { .fd = PQsocket(conn) };
	int64_t left;
	int r;

	if (p.fd < 0)
		return -ECONNRESET;
	p.events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int64_t deadline_of(const struct vp_pg *pg)
{
	return now_ms() + pg->timeout_ms;
}

/* ---- running statements ------------------------------------------------- */

static int code_of(struct vp_pg *pg, PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (!state)
		state = "";
	if (!strcmp(state, "VPE28") || !strcmp(state, "VPE02")) {
		seterr(pg, "%s", msg ? msg : "");
		return state[4] == '8' ? -ENOSPC : -ENOENT;
	}
	seterr(pg, "database: %s", PQresultErrorMessage(res));
	if (PQstatus(pg->conn) == CONNECTION_BAD || !strncmp(state, "08", 2) ||
	    !strncmp(state, "57P", 3)) {
		drop_conn(pg);
		return -ECONNREFUSED;
	}
	if (!strcmp(state, "57014"))
		return -ETIMEDOUT;
	if (!strcmp(state, "VPE57"))	/* a connect run after its abort */
		return -ECANCELED;
	if (!strcmp(state, "VPE23")) {	/* its reservation is online elsewhere */
		seterr(pg, "%s", msg ? msg : "");
		return -EBUSY;
	}
	if (!strcmp(state, "23505") || !strcmp(state, "23P01"))
		return -EADDRINUSE;
	if (!strcmp(state, "3F000") || !strcmp(state, "42P01") || !strcmp(state, "42883"))
		return -EPROTONOSUPPORT;
	return -EIO;
}

/* Send the statement (params: NULL for a simple, possibly multi-statement
 * query) and wait for its results: *out gets the last one (or the first
 * error).  0 or -errno. */
static int exec_on(struct vp_pg *pg, int64_t deadline, const char *sql, int n,
		   const char *const *vals, const int *lens, const int *fmts, PGresult **out)
{
	PGresult *res, *keep = NULL;
	int ret, r;

	*out = NULL;
	if (n < 0)
		r = PQsendQuery(pg->conn, sql);
	else
		r = PQsendQueryParams(pg->conn, sql, n, NULL, vals, lens, fmts, 0);
	if (!r) {
		seterr(pg, "database: %s", PQerrorMessage(pg->conn));
		drop_conn(pg);
		return -ECONNREFUSED;
	}
	while ((r = PQflush(pg->conn)) == 1) {
		ret = wait_sock(pg->conn, true, true, deadline);
		if (ret)
			goto timeout;
		if (!PQconsumeInput(pg->conn))
			goto broken;
	}
	if (r < 0)
		goto broken;
	for (;;) {
		while (PQisBusy(pg->conn)) {
			ret = wait_sock(pg->conn, true, false, deadline);
			if (ret)
				goto timeout;
			if (!PQconsumeInput(pg->conn))
				goto broken;
		}
		res = PQgetResult(pg->conn);
		if (!res)
			break;
		if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(res);
			continue;
		}
		PQclear(keep);
		keep = res;
	}
	if (!keep) {
		seterr(pg, "database: no result");
		return -EIO;
	}
	r = PQresultStatus(keep);
	if (r != PGRES_COMMAND_OK && r != PGRES_TUPLES_OK) {
		ret = code_of(pg, keep);
		PQclear(keep);
		return ret;
	}
	*out = keep;
	return 0;
timeout:
	PQclear(keep);
	seterr(pg, "the database did not answer within %u ms (connection closed)", pg->timeout_ms);
	drop_conn(pg);
	return -ETIMEDOUT;
broken:
	PQclear(keep);
	seterr(pg, "database: %s", PQerrorMessage(pg->conn));
	drop_conn(pg);
	return -ECONNREFUSED;
}

static const char *const setup_sql =
	"SET client_min_messages = warning; "
	"SET client_connection_check_interval = 1000; ";

/* Check (or create) the schema on a new connection.  0 or -errno. */
static int check_schema(struct vp_pg *pg, int64_t deadline)
{
	char sql[256];
	PGresult *res;
	int ret, version;

	snprintf(sql, sizeof(sql), "%s SET statement_timeout = %u",
		 setup_sql, pg->timeout_ms);
	ret = exec_on(pg, deadline, sql, -1, NULL, NULL, NULL, &res);
	if (ret)
		return ret;
	PQclear(res);
	for (int attempt = 0;; ++attempt) {
		ret = exec_on(pg, deadline, "SELECT max(version) FROM vpnpool.meta", 0, NULL, NULL,
			      NULL, &res);
		if (ret != -EPROTONOSUPPORT || !pg->conn)
			break;
		if (!pg->create_schema || attempt) {
			seterr(pg, "the database has no vpnpool schema: apply the output of "
				   "`vpnpool schema` as the database's owner");
			return -EPROTONOSUPPORT;
		}
		/* Several servers at once: one creates, the others wait for it
		 * and then find every object there (IF NOT EXISTS). */
		ret = exec_on(pg, deadline, "BEGIN; SELECT pg_advisory_xact_lock(1987006, 0)", -1,
			      NULL, NULL, NULL, &res);
		if (!ret) {
			PQclear(res);
			ret = exec_on(pg, deadline, vp_pg_schema_sql(), -1, NULL, NULL, NULL, &res);
		}
		if (!ret) {
			PQclear(res);
			ret = exec_on(pg, deadline, "COMMIT", -1, NULL, NULL, NULL, &res);
		}
		if (ret) {
			char why[sizeof(pg->err)];

			memcpy(why, pg->err, sizeof(why));
			if (pg->conn) {
				if (!exec_on(pg, deadline, "ROLLBACK", -1, NULL, NULL, NULL, &res))
					PQclear(res);
			}
			seterr(pg, "creating the schema failed (%s); apply the output of "
				   "`vpnpool schema` as the database's owner", why);
			return ret == -ETIMEDOUT ? ret : -EPROTONOSUPPORT;
		}
		PQclear(res);
	}
	if (ret)
		return ret;
	version = PQgetisnull(res, 0, 0) ? 0 : atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (version != VP_PG_SCHEMA_VERSION) {
		seterr(pg, "the database's vpnpool schema is version %d, this vpnpool needs %d: "
			   "upgrade the schema (`vpnpool schema`) or vpnpool", version,
		       VP_PG_SCHEMA_VERSION);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

static int connect_db(struct vp_pg *pg, int64_t deadline)
{
	const char *kw[5], *val[5];
	char app[128], ct[16];
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	int64_t now = now_ms();
	int ret;

	if (pg->conn)
		return 0;
	if (pg->tried && now - pg->last_try < RECONNECT_MS) {
		seterr(pg, "%.900s (next attempt within 1 s)", pg->conn_msg);
		return pg->conn_err;
	}
	pg->tried = true;
	pg->last_try = now;
	if (pg->command)
		snprintf(app, sizeof(app), "vpnpool command");
	else
		snprintf(app, sizeof(app), "vpnpool %s/%s", pg->node, pg->instance);
	snprintf(ct, sizeof(ct), "%u", (pg->timeout_ms + 999) / 1000 < 2 ? 2 :
		 (pg->timeout_ms + 999) / 1000);
	kw[0] = "dbname";
	val[0] = pg->config->store;
	kw[1] = "application_name";
	val[1] = app;
	kw[2] = "connect_timeout";
	val[2] = ct;
	kw[3] = NULL;
	val[3] = NULL;
	pg->conn = PQconnectStartParams(kw, val, 1);
	if (!pg->conn)
		return -ENOMEM;
	if (PQstatus(pg->conn) == CONNECTION_BAD) {
		ret = -ECONNREFUSED;
		seterr(pg, "connecting to the database: %s", PQerrorMessage(pg->conn));
		goto fail;
	}
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED) {
			ret = -ECONNREFUSED;
			seterr(pg, "connecting to the database: %s", PQerrorMessage(pg->conn));
			goto fail;
		}
		ret = wait_sock(pg->conn, st == PGRES_POLLING_READING,
				st == PGRES_POLLING_WRITING, deadline);
		if (ret) {
			seterr(pg, "connecting to the database: no answer within %u ms",
			       pg->timeout_ms);
			goto fail;
		}
		st = PQconnectPoll(pg->conn);
	}
	if (PQsetnonblocking(pg->conn, 1)) {
		ret = -EIO;
		seterr(pg, "database: %s", PQerrorMessage(pg->conn));
		goto fail;
	}
	ret = check_schema(pg, deadline);
	if (ret)
		goto fail;
	return 0;
fail:
	drop_conn(pg);
	pg->conn_err = ret;
	memcpy(pg->conn_msg, pg->err, sizeof(pg->conn_msg));
	return ret;
}

/* Whether an idle connection is still good: nothing may have come on it
 * but the server's goodbye (a restart or shutdown: a FATAL error, then
 * the end).  Checked before each statement, so that the first call after a
 * database restart reconnects instead of failing on the old connection. */
static bool idle_conn_ok(struct vp_pg *pg)
{
	struct pollfd p = { .fd = PQsocket(pg->conn), .events = POLLIN };

	/* libpq takes an error that comes while idle for a notice and reads
	 * on: the end of the stream shows at a second read. */
	for (int i = 0; i < 4; ++i) {
		if (PQstatus(pg->conn) != CONNECTION_OK)
			return false;
		if (poll(&p, 1, 0) <= 0)
			return true;
		if (!PQconsumeInput(pg->conn))
			return false;
	}
	return PQstatus(pg->conn) == CONNECTION_OK;
}

/* One statement with its parameters, connecting first when needed. */
static int exec(struct vp_pg *pg, int64_t deadline, const char *sql, int n,
		const char *const *vals, const int *lens, const int *fmts, PGresult **out)
{
	int ret;

	if (pg->conn && !idle_conn_ok(pg))
		drop_conn(pg);
	ret = connect_db(pg, deadline);

	*out = NULL;
	if (ret)
		return ret;
	ret = exec_on(pg, deadline, sql, n, vals, lens, fmts, out);
	if (!ret)
		pg->err[0] = 0;
	return ret;
}

/* ---- handle ------------------------------------------------------------------ */

int vp_pg_open(struct vp_pg **out, const struct vp_pg_options *opts)
{
	const struct vp_config *c = opts->config;
	struct vp_pg *pg;

	*out = NULL;
	if (!c || !c->store || !*c->store)
		return -EINVAL;
	if (opts->node && (!*opts->node || strlen(opts->node) > 255))
		return -EINVAL;
	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pg->config = c;
	pg->command = !opts->node;
	pg->create_schema = opts->create_schema;
	pg->timeout_ms = opts->timeout_ms ? opts->timeout_ms :
		c->store_timeout_ms ? c->store_timeout_ms : 5000;
	pg->node = strdup(opts->node ? opts->node : "");
	pg->instance = strdup(opts->instance ? opts->instance : "");
	pg->pool_id = calloc(c->n_pools + 1, sizeof(int));
	pg->router_id = calloc(c->n_routers + 1, sizeof(int));
	if (!pg->node || !pg->instance || !pg->pool_id || !pg->router_id) {
		vp_pg_close(pg);
		return -ENOMEM;
	}
	connect_db(pg, deadline_of(pg));	/* failing is no error: calls retry */
	*out = pg;
	return 0;
}

void vp_pg_close(struct vp_pg *pg)
{
	if (!pg)
		return;
	drop_conn(pg);
	free(pg->node);
	free(pg->instance);
	free(pg->pool_id);
	free(pg->router_id);
	free(pg);
}

const char *vp_pg_error(const struct vp_pg *pg)
{
	return pg->err;
}

bool vp_pg_connected(const struct vp_pg *pg)
{
	return pg->conn && PQstatus(pg->conn) == CONNECTION_OK;
}

/* ---- text of values ------------------------------------------------------------- */

static void fmt_i64(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%" PRId64, v);
}

static const char *prefix_text(const struct vp_prefix *p, char buf[VP_PREFIX_STRLEN])
{
	return p->addr.family ? vp_prefix_format(p, buf) : NULL;
}

static void get_addr(const PGresult *res, int row, int col, struct vp_addr *a)
{
	char err[VP_ERRLEN];

	memset(a, 0, sizeof(*a));
	if (col >= 0 && !PQgetisnull(res, row, col) &&
	    !vp_addr_parse(a, PQgetvalue(res, row, col), err))
		memset(a, 0, sizeof(*a));
}

static void get_prefix(const PGresult *res, int row, int col, struct vp_prefix *p)
{
	char err[VP_ERRLEN];

	memset(p, 0, sizeof(*p));
	if (!PQgetisnull(res, row, col) && !vp_prefix_parse(p, PQgetvalue(res, row, col), err))
		memset(p, 0, sizeof(*p));
}

static int64_t get_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static bool get_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

static int pool_index(const struct vp_pg *pg, int64_t id)
{
	for (size_t i = 0; id > 0 && i < pg->config->n_pools; ++i)
		if (pg->pool_id[i] == id)
			return (int)i;
	return -1;
}

static int router_index(const struct vp_pg *pg, int64_t id)
{
	for (size_t i = 0; id > 0 && i < pg->config->n_routers; ++i)
		if (pg->router_id[i] == id)
			return (int)i;
	return -1;
}

/* Columns pool, router, addr4, addr6, subnet4, subnet6, static from col. */
static void get_grant(const struct vp_pg *pg, const PGresult *res, int row, int col,
		      struct vp_grant *g)
{
	int p = pool_index(pg, get_i64(res, row, col));
	int r = router_index(pg, get_i64(res, row, col + 1));

	g->pool = p >= 0 ? &pg->config->pools[p] : NULL;
	g->router = r >= 0 ? &pg->config->routers[r] : NULL;
	get_addr(res, row, col + 2, &g->addr4);
	get_addr(res, row, col + 3, &g->addr6);
	get_prefix(res, row, col + 4, &g->subnet4);
	get_prefix(res, row, col + 5, &g->subnet6);
	g->is_static = get_bool(res, row, col + 6);
	if (g->addr4.family && pg->started && pg->server.topology == VP_TOPO_P2P)
		g->peer4 = pg->server.local4;
}

/* ---- publishing the pools ------------------------------------------------------- */

struct ranges {
	struct vp_range *r;
	size_t n, cap;
};

static int ranges_add(struct ranges *rs, const struct vp_addr *a, const struct vp_addr *b)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 8;
		struct vp_range *r = realloc(rs->r, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		rs->r = r;
		rs->cap = cap;
	}
	rs->r[rs->n].first = *a;
	rs->r[rs->n].last = *b;
	rs->n++;
	return 0;
}

/* Take x out of every range. */
static int ranges_cut(struct ranges *rs, const struct vp_range *x)
{
	size_t n = rs->n;

	if (!x->first.family)
		return 0;
	for (size_t i = 0; i < n; ++i) {
		struct vp_range r = rs->r[i];
		struct vp_addr before, after;
		int ret;

		if (r.first.family != x->first.family || !vp_range_overlaps(&r, x))
			continue;
		rs->r[i].first.family = 0;	/* gone; the pieces are added */
		if (vp_addr_cmp(&x->first, &r.first) > 0) {
			before = vp_addr_add(&x->first, UINT64_MAX, 0);
			ret = ranges_add(rs, &r.first, &before);
			if (ret)
				return ret;
		}
		if (vp_addr_cmp(&x->last, &r.last) < 0) {
			after = vp_addr_add(&x->last, 1, 0);
			ret = ranges_add(rs, &after, &r.last);
			if (ret)
				return ret;
		}
	}
	/* compact */
	size_t k = 0;

	for (size_t i = 0; i < rs->n; ++i)
		if (rs->r[i].first.family)
			rs->r[k++] = rs->r[i];
	rs->n = k;
	return 0;
}

static int cut_addr(struct ranges *rs, const struct vp_addr *a)
{
	struct vp_range r = { *a, *a };

	return a->family ? ranges_cut(rs, &r) : 0;
}

static int cut_prefix(struct ranges *rs, const struct vp_prefix *p)
{
	struct vp_range r = vp_prefix_range(p);

	return p->addr.family ? ranges_cut(rs, &r) : 0;
}

/* The server's addresses and every reservation. */
static int cut_common(const struct vp_config *c, const struct vp_server *s, struct ranges *rs)
{
	int ret = 0;

	if (s) {
		ret |= cut_addr(rs, &s->local4);
		ret |= cut_addr(rs, &s->remote4);
		ret |= cut_addr(rs, &s->local6);
	}
	for (size_t i = 0; i < c->n_statics; ++i) {
		const struct vp_static_config *st = &c->statics[i];

		if (st->has_address)
			ret |= cut_addr(rs, &st->address);
		if (st->has_address6)
			ret |= cut_addr(rs, &st->address6);
		if (st->has_subnet)
			ret |= cut_prefix(rs, &st->subnet);
		if (st->has_subnet6)
			ret |= cut_prefix(rs, &st->subnet6);
	}
	return ret ? -ENOMEM : 0;
}

static int range_cmp(const void *a, const void *b)
{
	return vp_addr_cmp(&((const struct vp_range *)a)->first,
			   &((const struct vp_range *)b)->first);
}

/* Parameters of vpnpool.publish, growing as segments are added. */
struct pub {
	char *fam, *first, *len, *count;	/* array literals */
	size_t nfam, nfirst, nlen, ncount;
	uint64_t size[7];			/* by family */
	bool has[7];
	int err;
};

static void pub_append(struct pub *p, char **s, size_t *n, const char *item)
{
	size_t k = strlen(item);
	char *t = realloc(*s, *n + k + 3);

	if (!t) {
		p->err = -ENOMEM;
		return;
	}
	if (!*n) {
		t[0] = '{';
		*n = 1;
	} else {
		t[*n - 1] = ',';	/* over the closing brace */
	}
	memcpy(t + *n, item, k);
	*n += k;
	t[(*n)++] = '}';
	t[*n] = 0;
	*s = t;
}

/* Whole blocks of length len in the ranges, as segments. */
static void pub_blocks(struct pub *p, struct ranges *rs, unsigned len)
{
	if (!rs->n)
		return;
	qsort(rs->r, rs->n, sizeof(*rs->r), range_cmp);
	for (size_t i = 0; i < rs->n; ++i) {
		const struct vp_range *r = &rs->r[i];
		unsigned bits = vp_family_bits((enum vp_family)r->first.family);
		unsigned shift = bits - len;
		struct vp_addr f = vp_prefix_of(&r->first, len).addr;
		struct vp_addr l = vp_prefix_of(&r->last, len).addr;
		struct vp_addr lend;
		char buf[VP_ADDR_STRLEN], num[24];
		uint64_t count;

		if (vp_addr_cmp(&f, &r->first) < 0) {
			struct vp_addr next = vp_addr_add(&f, 1, shift);

			if (vp_addr_cmp(&next, &f) <= 0)
				continue;
			f = next;
		}
		/* l is the last block's start; it must end inside the range */
		lend = vp_prefix_range(&(struct vp_prefix){ l, (uint8_t)len }).last;
		if (vp_addr_cmp(&lend, &r->last) > 0) {
			if (vp_addr_cmp(&l, &f) <= 0)
				continue;
			l = vp_addr_add(&l, UINT64_MAX, shift);
		}
		if (vp_addr_cmp(&l, &f) < 0)
			continue;
		count = vp_addr_offset(&l, &f, shift);
		count = count >= SEG_COUNT_MAX ? SEG_COUNT_MAX : count + 1;
		snprintf(num, sizeof(num), "%u", r->first.family);
		pub_append(p, &p->fam, &p->nfam, num);
		pub_append(p, &p->first, &p->nfirst, vp_addr_format(&f, buf));
		snprintf(num, sizeof(num), "%u", len);
		pub_append(p, &p->len, &p->nlen, num);
		snprintf(num, sizeof(num), "%" PRIu64, count);
		pub_append(p, &p->count, &p->ncount, num);
		p->size[r->first.family] += count;
		if (p->size[r->first.family] > SEG_COUNT_MAX)
			p->size[r->first.family] = SEG_COUNT_MAX;
		p->has[r->first.family] = true;
	}
}

static int publish(struct vp_pg *pg, int64_t deadline, bool router, const char *name,
		   struct pub *p, int *id)
{
	char size[24], main_s[4];
	int main_f = router && !p->has[4] ? 6 : 4;
	const char *v[10];
	PGresult *res;
	int ret;

	if (p->err)
		return p->err;
	snprintf(size, sizeof(size), "%" PRIu64, p->size[main_f]);
	snprintf(main_s, sizeof(main_s), "%d", main_f);
	v[0] = router ? "t" : "f";
	v[1] = name;
	v[2] = main_s;
	v[3] = p->has[4] ? "t" : "f";
	v[4] = p->has[6] ? "t" : "f";
	v[5] = size;
	v[6] = p->fam ? p->fam : "{}";
	v[7] = p->first ? p->first : "{}";
	v[8] = p->len ? p->len : "{}";
	v[9] = p->count ? p->count : "{}";
	ret = exec(pg, deadline,
		   "SELECT vpnpool.publish($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
		   10, v, NULL, NULL, &res);
	if (ret)
		return ret;
	*id = (int)get_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

static void pub_free(struct pub *p)
{
	free(p->fam);
	free(p->first);
	free(p->len);
	free(p->count);
}

static bool pool_usable(const struct vp_server *s, const struct vp_pool_config *pc)
{
	struct vp_prefix net;

	if (s->topology != VP_TOPO_SUBNET || s->local4.family != VP_INET || !s->netbits4)
		return true;
	net = vp_prefix_of(&s->local4, s->netbits4);
	return pc->network.len >= net.len && vp_prefix_contains(&net, &pc->network.addr);
}

static int publish_pool(struct vp_pg *pg, int64_t deadline, size_t i)
{
	const struct vp_config *c = pg->config;
	const struct vp_pool_config *pc = &c->pools[i];
	struct ranges r4 = { 0 }, r6 = { 0 };
	struct pub p = { 0 };
	struct vp_range net = vp_prefix_range(&pc->network);
	int ret = 0;

	if (pc->has_range) {
		ret |= ranges_add(&r4, &pc->range.first, &pc->range.last);
	} else {
		struct vp_range h = net;

		if (pc->network.len <= 30) {
			h.first = vp_addr_add(&h.first, 1, 0);
			h.last = vp_addr_add(&h.last, UINT64_MAX, 0);
		}
		ret |= ranges_add(&r4, &h.first, &h.last);
	}
	if (pc->network.len <= 30) {
		ret |= cut_addr(&r4, &net.first);
		ret |= cut_addr(&r4, &net.last);
	}
	if (pc->has_network6) {
		struct vp_range n6 = vp_prefix_range(&pc->network6);

		n6.first = vp_addr_add(&n6.first, 1, 0);	/* not the anycast */
		ret |= ranges_add(&r6, &n6.first, &n6.last);
	}
	for (size_t k = 0; k < pc->n_exclude; ++k) {
		ret |= ranges_cut(&r4, &pc->exclude[k]);
		ret |= ranges_cut(&r6, &pc->exclude[k]);
	}
	ret |= cut_common(c, &pg->server, &r4);
	ret |= cut_common(c, &pg->server, &r6);
	if (!ret) {
		pub_blocks(&p, &r4, 32);
		pub_blocks(&p, &r6, 128);
		ret = publish(pg, deadline, false, pc->name, &p, &pg->pool_id[i]);
	} else {
		ret = -ENOMEM;
	}
	free(r4.r);
	free(r6.r);
	pub_free(&p);
	return ret;
}

static int publish_router(struct vp_pg *pg, int64_t deadline, size_t i)
{
	const struct vp_config *c = pg->config;
	const struct vp_router_config *rc = &c->routers[i];
	struct ranges r4 = { 0 }, r6 = { 0 };
	struct pub p = { 0 };
	int ret = 0;

	if (rc->network.addr.family) {
		struct vp_range r = vp_prefix_range(&rc->network);

		ret |= ranges_add(&r4, &r.first, &r.last);
	}
	if (rc->has_network6) {
		struct vp_range r = vp_prefix_range(&rc->network6);

		ret |= ranges_add(&r6, &r.first, &r.last);
	}
	ret |= cut_common(c, &pg->server, &r4);
	ret |= cut_common(c, &pg->server, &r6);
	if (!ret) {
		pub_blocks(&p, &r4, rc->prefix);
		pub_blocks(&p, &r6, rc->prefix6);
		ret = publish(pg, deadline, true, rc->name, &p, &pg->router_id[i]);
	} else {
		ret = -ENOMEM;
	}
	free(r4.r);
	free(r6.r);
	pub_free(&p);
	return ret;
}

/* ---- sessions ended by the database (restart, dead nodes) --------------------- */

static int reap(struct vp_pg *pg, bool self,
		void (*on_ended)(void *ud, const struct vp_pg_ended *e), void *ud)
{
	char timeout[24], pid[16];
	const char *v[5];
	PGresult *res;
	int ret;

	fmt_i64(timeout, sizeof(timeout), pg->config->node_timeout > 0 ?
		pg->config->node_timeout : 60);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	v[0] = pg->node;
	v[1] = pg->instance;
	v[2] = timeout;
	v[3] = self ? "t" : "f";
	v[4] = pid;
	ret = exec(pg, deadline_of(pg), "SELECT * FROM vpnpool.reap($1, $2, $3, $4, $5)", 5, v,
		   NULL, NULL, &res);
	if (ret)
		return ret;
	for (int row = 0; row < PQntuples(res); ++row) {
		struct vp_pg_ended e = { 0 };
		size_t len = 0;
		unsigned char *id = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 0),
						    &len);

		if (!id)
			continue;
		e.grant.slot = (uint16_t)get_i64(res, row, 1);
		e.node = PQgetvalue(res, row, 2);
		e.instance = PQgetvalue(res, row, 3);
		get_grant(pg, res, row, 4, &e.grant);
		e.duration = get_i64(res, row, 11);
		e.freed = get_bool(res, row, 12);
		e.identity = id;
		e.identity_len = len;
		if (on_ended)
			on_ended(ud, &e);
		PQfreemem(id);
	}
	PQclear(res);
	return 0;
}

int vp_pg_start(struct vp_pg *pg, const struct vp_server *server,
		void (*on_ended)(void *ud, const struct vp_pg_ended *e), void *ud)
{
	int64_t deadline;
	int ret;

	if (pg->command)
		return -EINVAL;
	if (server->topology == VP_TOPO_NET30) {
		seterr(pg, "topology net30 is not supported with a PostgreSQL store "
			   "(use topology subnet)");
		return -EOPNOTSUPP;
	}
	pg->server = *server;
	deadline = deadline_of(pg);
	for (size_t i = 0; i < pg->config->n_pools; ++i) {
		if (!pool_usable(server, &pg->config->pools[i])) {
			pg->pool_id[i] = 0;
			continue;
		}
		ret = publish_pool(pg, deadline, i);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < pg->config->n_routers; ++i) {
		ret = publish_router(pg, deadline, i);
		if (ret)
			return ret;
	}
	/* This (node, instance)'s leftovers of an earlier process: once per
	 * handle, and connects wait for it (-EAGAIN), so that a start tried
	 * again never ends the sessions served since. */
	ret = pg->reaped_self ? 0 : reap(pg, true, on_ended, ud);
	if (ret)
		return ret;
	pg->reaped_self = true;
	pg->started = true;
	return 0;
}

int vp_pg_join(struct vp_pg *pg, const struct vp_pg *from)
{
	if (pg->command || from->command || pg->config != from->config ||
	    strcmp(pg->node, from->node) || strcmp(pg->instance, from->instance))
		return -EINVAL;
	if (!from->started)
		return -EAGAIN;
	memcpy(pg->pool_id, from->pool_id, (pg->config->n_pools + 1) * sizeof(int));
	memcpy(pg->router_id, from->router_id, (pg->config->n_routers + 1) * sizeof(int));
	pg->server = from->server;
	pg->started = true;
	return 0;
}

int vp_pg_heartbeat(struct vp_pg *pg, void (*on_ended)(void *ud, const struct vp_pg_ended *e),
		    void *ud)
{
	if (pg->command)
		return -EINVAL;
	return reap(pg, false, on_ended, ud);
}

/* ---- connect, disconnect, abort ------------------------------------------------- */

static const struct vp_static_config *static_of(const struct vp_config *c, const uint8_t *id,
					       size_t len)
{
	for (size_t i = 0; i < c->n_statics; ++i)
		if (strlen(c->statics[i].identity) == len &&
		    !memcmp(c->statics[i].identity, id, len))
			return &c->statics[i];
	return NULL;
}

/* "{1,2}" of the published areas whose match lists hold (malloc()ed; NULL:
 * out of memory).  Each id is at most 11 characters and a comma. */
static char *match_list(const struct vp_pg *pg, bool routers, const struct vp_request *req)
{
	const struct vp_config *c = pg->config;
	size_t n = routers ? c->n_routers : c->n_pools, k = 1, len = n * 12 + 3;
	char *buf = malloc(len);

	if (!buf)
		return NULL;
	buf[0] = '{';
	for (size_t i = 0; i < n; ++i) {
		int id = routers ? pg->router_id[i] : pg->pool_id[i];
		const struct vp_match *m = routers ? c->routers[i].match : c->pools[i].match;
		size_t nm = routers ? c->routers[i].n_match : c->pools[i].n_match;

		if (id <= 0 || !vp_match_all(m, nm, req->getvar, req->getvar_ud))
			continue;
		k += (size_t)snprintf(buf + k, len - k, "%s%d", k > 1 ? "," : "", id);
	}
	snprintf(buf + k, len - k, "}");
	return buf;
}

static void fill_failure(const struct vp_pg *pg, struct vp_grant *g)
{
	/* the message of vpnpool.refuse: "area in_use size" */
	long long area = 0, in_use = 0, size = 0;
	int p, r;

	sscanf(pg->err, "%lld %lld %lld", &area, &in_use, &size);
	p = pool_index(pg, area);
	r = router_index(pg, area);
	if (p >= 0)
		g->pool = &pg->config->pools[p];
	else if (r >= 0)
		g->router = &pg->config->routers[r];
	g->in_use = (uint64_t)in_use;
	g->size = (uint64_t)size;
}

int vp_pg_connect(struct vp_pg *pg, const struct vp_request *req, int64_t session,
		  struct vp_pg_result *result)
{
	const struct vp_static_config *st;
	char *pools, *routers, sess[24], hold[24], spool[16], srouter[16];
	char a4[VP_ADDR_STRLEN], a6[VP_ADDR_STRLEN], p4[VP_PREFIX_STRLEN], p6[VP_PREFIX_STRLEN];
	char real[VP_REAL_MAX];
	const char *v[14];
	int lens[14] = { 0 }, fmts[14] = { 0 };
	int64_t deadline = deadline_of(pg);
	struct vp_grant *g = &result->grant;
	PGresult *res;
	int ret;

	memset(result, 0, sizeof(*result));
	if (!req->identity_len || req->identity_len > VP_IDENTITY_MAX)
		return -EINVAL;
	if (!pg->started) {
		seterr(pg, "the store is not started");
		return -EAGAIN;
	}
	st = static_of(pg->config, req->identity, req->identity_len);
	pools = match_list(pg, false, req);
	routers = match_list(pg, true, req);
	if (!pools || !routers) {
		free(pools);
		free(routers);
		seterr(pg, "out of memory");
		return -ENOMEM;
	}
	fmt_i64(sess, sizeof(sess), session);
	fmt_i64(hold, sizeof(hold), pg->config->hold_time);
	snprintf(real, sizeof(real), "%s", req->real ? req->real : "");
	v[0] = (const char *)req->identity;
	lens[0] = (int)req->identity_len;
	fmts[0] = 1;
	v[1] = pg->node;
	v[2] = pg->instance;
	v[3] = sess;
	v[4] = real;
	v[5] = pools;
	v[6] = routers;
	v[7] = hold;
	for (int k = 8; k < 14; ++k)
		v[k] = NULL;
	if (st && st->has_address) {
		int p = vp_layout_pool_of(pg->config, &st->address);

		v[8] = vp_addr_format(&st->address, a4);
		if (p >= 0 && pg->pool_id[p] > 0) {
			snprintf(spool, sizeof(spool), "%d", pg->pool_id[p]);
			v[12] = spool;
		}
		if (st->has_address6)
			v[9] = vp_addr_format(&st->address6, a6);
	} else if (st && st->has_address6) {
		v[9] = vp_addr_format(&st->address6, a6);
	}
	if (st && (st->has_subnet || st->has_subnet6)) {
		int r = vp_layout_router_of(pg->config, st->has_subnet ? &st->subnet : &st->subnet6);

		if (st->has_subnet)
			v[10] = prefix_text(&st->subnet, p4);
		if (st->has_subnet6)
			v[11] = prefix_text(&st->subnet6, p6);
		if (r >= 0 && pg->router_id[r] > 0) {
			snprintf(srouter, sizeof(srouter), "%d", pg->router_id[r]);
			v[13] = srouter;
		}
	}
	for (int attempt = 0;; ++attempt) {
		ret = exec(pg, deadline,
			   "SELECT * FROM vpnpool.connect($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
			   " $11, $12, $13, $14)", 14, v, lens, fmts, &res);
		/* a block taken by a concurrent import or gap scan: again */
		if (ret != -EADDRINUSE || attempt == 2 || now_ms() >= deadline)
			break;
	}
	free(pools);
	free(routers);
	if (ret == -EADDRINUSE)
		ret = -EIO;
	if (ret == -ENOSPC || ret == -ENOENT) {
		fill_failure(pg, g);
		seterr(pg, ret == -ENOSPC ? "no address left" : "no pool matches the client");
		return ret;
	}
	if (ret)
		return ret;
	g->slot = (uint16_t)get_i64(res, 0, 0);
	get_grant(pg, res, 0, 1, g);
	g->sticky = get_bool(res, 0, 8);
	result->reclaimed = get_bool(res, 0, 9);
	if (result->reclaimed && !PQgetisnull(res, 0, 10)) {
		size_t len = 0;
		unsigned char *from = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 10),
						      &len);

		if (from && len <= sizeof(result->from)) {
			memcpy(result->from, from, len);
			result->from_len = len;
		}
		PQfreemem(from);
	}
	result->moved = get_bool(res, 0, 11);
	g->in_use = (uint64_t)get_i64(res, 0, 12);
	g->size = (uint64_t)get_i64(res, 0, 13);
	result->session = session;
	PQclear(res);
	return 0;
}

int vp_pg_disconnect(struct vp_pg *pg, const uint8_t *identity, size_t len, uint16_t slot,
		     int64_t session, struct vp_grant *ended)
{
	char sl[8], sess[24];
	const char *v[5] = { (const char *)identity, sl, sess, pg->node, pg->instance };
	int lens[5] = { (int)len }, fmts[5] = { 1 };
	PGresult *res;
	int ret;

	if (!len || len > VP_IDENTITY_MAX)
		return -EINVAL;
	snprintf(sl, sizeof(sl), "%u", slot);
	fmt_i64(sess, sizeof(sess), session);
	ret = exec(pg, deadline_of(pg), "SELECT * FROM vpnpool.disconnect($1, $2, $3, $4, $5)",
		   5, v, lens, fmts, &res);
	if (ret)
		return ret;
	ret = (int)get_i64(res, 0, 0);
	if (ret >= 0 && ended) {
		memset(ended, 0, sizeof(*ended));
		ended->slot = slot;
		get_grant(pg, res, 0, 1, ended);
		ended->since = get_i64(res, 0, 8);
	}
	PQclear(res);
	if (ret < 0)
		seterr(pg, "no such online session");
	return ret;
}

int vp_pg_abort(struct vp_pg *pg, const uint8_t *identity, size_t len, int64_t session)
{
	char sess[24];
	const char *v[4] = { (const char *)identity, sess, pg->node, pg->instance };
	int lens[4] = { (int)len }, fmts[4] = { 1 };
	PGresult *res;
	int ret;

	if (!len || len > VP_IDENTITY_MAX)
		return -EINVAL;
	fmt_i64(sess, sizeof(sess), session);
	ret = exec(pg, deadline_of(pg), "SELECT vpnpool.abort($1, $2, $3, $4)", 4, v, lens, fmts,
		   &res);
	if (ret)
		return ret;
	PQclear(res);
	return 0;
}

/* ---- the command -------------------------------------------------------------------- */

int vp_pg_each_lease(struct vp_pg *pg, int (*fn)(void *ud, const struct vp_pg_lease *l),
		     void *ud)
{
	PGresult *res;
	int ret;

	ret = exec(pg, deadline_of(pg),
		   "SELECT l.identity, l.slot, l.online, l.sessions,"
		   " extract(epoch FROM l.created)::bigint, extract(epoch FROM l.since)::bigint,"
		   " l.real, l.addr4, l.addr6, l.subnet4, l.subnet6, coalesce(p.name, ''),"
		   " coalesce(r.name, ''), l.node, l.instance, l.static4"
		   " FROM vpnpool.lease l LEFT JOIN vpnpool.area p ON p.id = l.pool"
		   " LEFT JOIN vpnpool.area r ON r.id = l.router"
		   " ORDER BY l.pool NULLS LAST, l.addr4 NULLS LAST, l.identity, l.slot",
		   0, NULL, NULL, NULL, &res);
	if (ret)
		return ret;
	for (int row = 0; row < PQntuples(res) && !ret; ++row) {
		struct vp_pg_lease l;
		size_t len = 0;
		unsigned char *id = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 0),
						    &len);

		if (!id) {
			ret = -ENOMEM;
			break;
		}
		memset(&l, 0, sizeof(l));
		l.rec.identity = id;
		l.rec.identity_len = len;
		l.rec.slot = (uint16_t)get_i64(res, row, 1);
		l.rec.state = get_bool(res, row, 2) ? VP_LEASE_ONLINE : VP_LEASE_HELD;
		l.rec.sessions = (uint32_t)get_i64(res, row, 3);
		l.rec.created = get_i64(res, row, 4);
		l.rec.since = get_i64(res, row, 5);
		snprintf(l.rec.real, sizeof(l.rec.real), "%s", PQgetvalue(res, row, 6));
		get_addr(res, row, 7, &l.rec.addr4);
		get_addr(res, row, 8, &l.rec.addr6);
		get_prefix(res, row, 9, &l.rec.subnet4);
		get_prefix(res, row, 10, &l.rec.subnet6);
		l.rec.instance = VP_INSTANCE_NONE;
		l.pool = PQgetvalue(res, row, 11);
		l.router = PQgetvalue(res, row, 12);
		l.node = PQgetvalue(res, row, 13);
		l.instance = PQgetvalue(res, row, 14);
		l.static4 = get_bool(res, row, 15);
		ret = fn(ud, &l);
		PQfreemem(id);
	}
	PQclear(res);
	return ret;
}

int vp_pg_each_pool(struct vp_pg *pg, int (*fn)(void *ud, const struct vp_pg_pool *p), void *ud)
{
	PGresult *res;
	int ret;

	ret = exec(pg, deadline_of(pg),
		   "SELECT a.name, a.router, a.size,"
		   " (SELECT count(*) FROM vpnpool.lease l WHERE l.online AND CASE WHEN a.router"
		   "   THEN l.router = a.id AND NOT l.static_subnet ELSE l.pool = a.id AND NOT l.static4 END),"
		   " (SELECT count(*) FROM vpnpool.lease l WHERE NOT l.online AND CASE WHEN a.router"
		   "   THEN l.router = a.id AND NOT l.static_subnet ELSE l.pool = a.id AND NOT l.static4 END)"
		   " FROM vpnpool.area a ORDER BY a.router, a.id", 0, NULL, NULL, NULL, &res);
	if (ret)
		return ret;
	for (int row = 0; row < PQntuples(res) && !ret; ++row) {
		struct vp_pg_pool p = {
			.name = PQgetvalue(res, row, 0),
			.router = get_bool(res, row, 1),
			.size = (uint64_t)get_i64(res, row, 2),
			.online = (uint64_t)get_i64(res, row, 3),
			.held = (uint64_t)get_i64(res, row, 4),
		};

		p.free = p.size > p.online + p.held ? p.size - p.online - p.held : 0;
		ret = fn(ud, &p);
	}
	PQclear(res);
	return ret;
}

int vp_pg_each_node(struct vp_pg *pg, int (*fn)(void *ud, const struct vp_pg_node *n), void *ud)
{
	char timeout[24];
	const char *v[1] = { timeout };
	PGresult *res;
	int ret;

	fmt_i64(timeout, sizeof(timeout), pg->config->node_timeout > 0 ?
		pg->config->node_timeout : 60);
	ret = exec(pg, deadline_of(pg),
		   "SELECT n.node, n.instance, extract(epoch FROM n.heartbeat)::bigint,"
		   " extract(epoch FROM n.started)::bigint, n.pid,"
		   " n.heartbeat >= now() - make_interval(secs => $1::bigint),"
		   " (SELECT count(*) FROM vpnpool.lease l WHERE l.online AND l.node = n.node"
		   "   AND l.instance = n.instance)"
		   " FROM vpnpool.node n ORDER BY n.node, n.instance", 1, v, NULL, NULL, &res);
	if (ret)
		return ret;
	for (int row = 0; row < PQntuples(res) && !ret; ++row) {
		struct vp_pg_node n = {
			.node = PQgetvalue(res, row, 0),
			.instance = PQgetvalue(res, row, 1),
			.heartbeat = get_i64(res, row, 2),
			.started = get_i64(res, row, 3),
			.pid = (int32_t)get_i64(res, row, 4),
			.live = get_bool(res, row, 5),
			.online = (uint64_t)get_i64(res, row, 6),
		};

		ret = fn(ud, &n);
	}
	PQclear(res);
	return ret;
}

int vp_pg_release(struct vp_pg *pg, const uint8_t *id, size_t len)
{
	const char *v[1] = { (const char *)id };
	int lens[1] = { (int)len }, fmts[1] = { 1 };
	PGresult *res;
	int ret;

	if (!len || len > VP_IDENTITY_MAX)
		return -EINVAL;
	ret = exec(pg, deadline_of(pg), "SELECT vpnpool.release($1)", 1, v, lens, fmts, &res);
	if (ret)
		return ret;
	ret = (int)get_i64(res, 0, 0);
	PQclear(res);
	if (ret == -EBUSY)
		seterr(pg, "the lease is online");
	else if (ret == -ENOENT)
		seterr(pg, "no lease");
	return ret;
}

int vp_pg_import(struct vp_pg *pg, const uint8_t *id, size_t len, const struct vp_addr *a4,
		 const struct vp_addr *a6, const char **why)
{
	static char why_buf[128];
	const struct vp_config *c = pg->config;
	char b4[VP_ADDR_STRLEN], b6[VP_ADDR_STRLEN];
	const char *v[4];
	int lens[4] = { (int)len }, fmts[4] = { 1 };
	const struct vp_pool_config *pc;
	PGresult *res;
	int p, ret;

	*why = NULL;
	if (!len || len > VP_IDENTITY_MAX || !a4 || a4->family != VP_INET)
		return -EINVAL;
	p = vp_layout_pool_of(c, a4);
	if (p < 0) {
		*why = "outside every pool";
		return -EDOM;
	}
	pc = &c->pools[p];
	if (pc->has_range && !vp_range_contains(&pc->range, a4)) {
		*why = "outside the pool's range";
		return -EDOM;
	}
	for (size_t k = 0; k < pc->n_exclude; ++k)
		if (vp_range_contains(&pc->exclude[k], a4)) {
			*why = "excluded";
			return -EDOM;
		}
	for (size_t k = 0; k < c->n_statics; ++k)
		if (c->statics[k].has_address && vp_addr_eq(&c->statics[k].address, a4) &&
		    (strlen(c->statics[k].identity) != len ||
		     memcmp(c->statics[k].identity, id, len))) {
			snprintf(why_buf, sizeof(why_buf), "reserved for client %.80s",
				 c->statics[k].identity);
			*why = why_buf;
			return -EDOM;
		}
	v[0] = (const char *)id;
	v[1] = pc->name;
	v[2] = vp_addr_format(a4, b4);
	v[3] = a6 && a6->family ? vp_addr_format(a6, b6) : NULL;
	ret = exec(pg, deadline_of(pg), "SELECT * FROM vpnpool.import($1, $2, $3, $4)", 4, v, lens,
		   fmts, &res);
	if (ret)
		return ret == -EADDRINUSE ? -EADDRINUSE : ret;
	ret = (int)get_i64(res, 0, 0);
	if (ret == -EDOM) {
		snprintf(why_buf, sizeof(why_buf), "%s (a server address, or not published)",
			 PQgetvalue(res, 0, 1));
		*why = why_buf;
	} else if (ret == -ENOENT) {
		seterr(pg, "%s", PQgetvalue(res, 0, 1));
		ret = -EAGAIN;
	}
	PQclear(res);
	return ret;
}

#define ADD_LIT(b, lit) vp_strbuf_add(b, "" lit, sizeof(lit) - 1)

/* ---- the store's name, without its password ---------------------------- */

/* Whether [s, s + len) starts with the key "password=" (any case). */
static bool is_password(const char *s, size_t len)
{
	return len >= 9 && !strncasecmp(s, "password=", 9);
}

const char *vp_pg_uri_shown(const char *uri, char *buf, size_t len)
{
	struct vp_strbuf b = { 0 };
	const char *p = uri, *scheme = strstr(uri, "://");

	if (scheme) {
		const char *host = scheme + 3;
		const char *end = host + strcspn(host, "/?");
		const char *at = NULL, *colon;

		for (const char *q = host; q < end; ++q)
			if (*q == '@')
				at = q;
		vp_strbuf_add(&b, uri, (size_t)(host - uri));
		if (at) {
			colon = memchr(host, ':', (size_t)(at - host));
			vp_strbuf_add(&b, host, (size_t)((colon ? colon : at) - host));
			host = at;
		}
		p = host;
		/* The rest, without a password=... parameter. */
		while (*p) {
			size_t n = strcspn(p, "?&");

			if (is_password(p, n)) {
				p += n;
				if (*p == '&' && b.len && (b.s[b.len - 1] == '?' || b.s[b.len - 1] == '&'))
					p++;
				continue;
			}
			vp_strbuf_add(&b, p, n + (p[n] ? 1 : 0));
			p += n + (p[n] ? 1 : 0);
		}
		while (b.len && (b.s[b.len - 1] == '?' || b.s[b.len - 1] == '&'))
			b.len--;
	} else {
		/* key=value words: every one but password. */
		while (*p) {
			size_t sp = strspn(p, " \t"), n;

			p += sp;
			n = strcspn(p, " \t");
			if (n && !is_password(p, n)) {
				if (b.len)
					ADD_LIT(&b, " ");
				vp_strbuf_add(&b, p, n);
			}
			p += n;
		}
	}
	snprintf(buf, len, "%.*s", b.oom ? 1 : (int)b.len, b.oom ? "?" : b.s ? b.s : "");
	vp_strbuf_free(&b);
	return buf;
}
