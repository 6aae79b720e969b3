/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Values are parsed by libconfuse callbacks as they are read, so that each
 * carries the line it came from; checks across options and sections run
 * after the parse and quote those lines.  libconfuse 3.3 miscounts lines
 * after comments, so comments are blanked out (newlines kept) before it
 * sees the text.
 */
#include <confuse.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/load.h"

#define MAX_CONF_BYTES (16 << 20)

enum kind { K_PREFIX4, K_PREFIX6, K_RANGE, K_ADDR4, K_ADDR6, K_MATCH, K_NAME, K_TEXT };

/* A parsed value and the line it was on. */
struct value {
	int line;
	struct vp_prefix prefix;
	struct vp_range range;
	struct vp_addr addr;
	char *var, *glob;		/* K_MATCH */
	char text[];
};

/* The first error of a parse, as FILE:LINE: message.  libconfuse gives
 * error functions no user pointer, hence per thread. */
static _Thread_local char first_error[1024];
static _Thread_local const char *current_file;

__attribute__((format(printf, 2, 0)))
static void on_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[768];

	if (first_error[0])
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* cfg_parse_buf() calls every buffer "[buf]": use the real name. */
	snprintf(first_error, sizeof(first_error), "%s:%d: %s",
		 current_file ? current_file : "(config)", cfg ? cfg->line : 0, msg);
}

/* Report an error at a given line after the parse. */
__attribute__((format(printf, 3, 4)))
static int fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (first_error[0])
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(first_error, sizeof(first_error), "%s:%d: %s", file, line, msg);
	return -1;
}

static void value_free(void *p)
{
	struct value *v = p;

	if (!v)
		return;
	free(v->var);
	free(v->glob);
	free(v);
}

static enum kind kind_of(const char *name)
{
	static const struct { const char *name; enum kind kind; } kinds[] = {
		{ "network", K_PREFIX4 }, { "network6", K_PREFIX6 }, { "subnet", K_PREFIX4 },
		{ "subnet6", K_PREFIX6 }, { "range", K_RANGE }, { "exclude", K_RANGE },
		{ "address", K_ADDR4 }, { "address6", K_ADDR6 }, { "match", K_MATCH },
		{ "identity", K_NAME },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); ++i)
		if (!strcmp(kinds[i].name, name))
			return kinds[i].kind;
	return K_TEXT;
}

static bool is_var_name(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; ++i)
		if (!(s[i] == '_' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

static bool parse_match(struct value *v, const char *text, char err[VP_ERRLEN])
{
	const char *eq = strchr(text, '=');

	if (!eq) {
		snprintf(err, VP_ERRLEN, "`%.100s': a match entry is VARIABLE=GLOB", text);
		return false;
	}
	if (!is_var_name(text, (size_t)(eq - text))) {
		snprintf(err, VP_ERRLEN,
			 "`%.100s': the variable must be a name of letters, digits and '_'", text);
		return false;
	}
	if (!eq[1]) {
		snprintf(err, VP_ERRLEN, "`%.100s': the glob is empty", text);
		return false;
	}
	v->var = strndup(text, (size_t)(eq - text));
	v->glob = strdup(eq + 1);
	return v->var && v->glob;
}

static bool parse_family(const struct vp_addr *a, enum vp_family want, const char *text,
			 char err[VP_ERRLEN])
{
	if (a->family == want)
		return true;
	snprintf(err, VP_ERRLEN, "`%.100s' is not an %s address", text,
		 want == VP_INET ? "IPv4" : "IPv6");
	return false;
}

static bool parse_value(struct value *v, enum kind kind, const char *text, char err[VP_ERRLEN])
{
	switch (kind) {
	case K_PREFIX4:
	case K_PREFIX6:
		return vp_prefix_parse(&v->prefix, text, err) &&
		       parse_family(&v->prefix.addr, kind == K_PREFIX4 ? VP_INET : VP_INET6, text, err);
	case K_RANGE:
		return vp_range_parse(&v->range, text, err);
	case K_ADDR4:
	case K_ADDR6:
		return vp_addr_parse(&v->addr, text, err) &&
		       parse_family(&v->addr, kind == K_ADDR4 ? VP_INET : VP_INET6, text, err);
	case K_MATCH:
		return parse_match(v, text, err);
	case K_NAME:
		if (is_var_name(text, strlen(text)))
			return true;
		snprintf(err, VP_ERRLEN,
			 "`%.100s' is not an environment variable name (letters, digits, '_')", text);
		return false;
	case K_TEXT:
		return true;
	}
	return false;
}

/* libconfuse value callback for every address-like and text option. */
static int cb_value(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result)
{
	size_t len = strlen(text);
	struct value *v = calloc(1, sizeof(*v) + len + 1);
	char err[VP_ERRLEN];

	if (!v) {
		cfg_error(cfg, "out of memory");
		return -1;
	}
	v->line = cfg ? cfg->line : 0;
	memcpy(v->text, text, len + 1);
	if (!parse_value(v, kind_of(opt->name), text, err)) {
		cfg_error(cfg, "%s: %s", opt->name, err);
		value_free(v);
		return -1;
	}
	*(void **)result = v;
	return 0;
}

static int cb_int(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result, long lo, long hi)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(text, &end, 10);
	if (!*text || *end || errno || n < lo || n > hi) {
		cfg_error(cfg, "%s: `%.60s' is not a whole number from %ld to %ld", opt->name, text,
			  lo, hi);
		return -1;
	}
	*(long *)result = n;
	return 0;
}

static int cb_hold_time(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result)
{
	return cb_int(cfg, opt, text, result, 0, 10L * 365 * 86400);
}

static int cb_percent(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result)
{
	return cb_int(cfg, opt, text, result, 1, 100);
}

static int cb_prefix_len(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result)
{
	return cb_int(cfg, opt, text, result, 1, 128);
}

static int cb_topology(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result)
{
	static const char *const names[] = { "auto", "subnet", "net30", "p2p" };

	for (long i = 0; i < 4; ++i)
		if (!strcmp(text, names[i])) {
			*(long *)result = i;
			return 0;
		}
	cfg_error(cfg, "%s: `%.60s' is none of auto, subnet, net30, p2p", opt->name, text);
	return -1;
}

/* ---- reading the parsed tree --------------------------------------------------- */

static const struct value *get(cfg_t *sec, const char *name)
{
	return cfg_size(sec, name) ? cfg_getptr(sec, name) : NULL;
}

static bool within(const struct vp_range *r, const struct vp_prefix *p)
{
	struct vp_range pr = vp_prefix_range(p);

	return vp_range_within(r, &pr);
}

static bool prefixes_overlap(const struct vp_prefix *a, const struct vp_prefix *b)
{
	struct vp_range ra = vp_prefix_range(a), rb = vp_prefix_range(b);

	return vp_range_overlaps(&ra, &rb);
}

static int read_matches(cfg_t *sec, struct vp_match **out, size_t *n)
{
	size_t count = cfg_size(sec, "match");

	*n = 0;
	*out = calloc(count + 1, sizeof(**out));
	if (!*out)
		return -1;
	for (size_t i = 0; i < count; ++i) {
		const struct value *v = cfg_getnptr(sec, "match", (unsigned)i);

		(*out)[i].var = strdup(v->var);
		(*out)[i].glob = strdup(v->glob);
		++*n;
		if (!(*out)[i].var || !(*out)[i].glob)
			return -1;
	}
	return 0;
}

static int read_pool(const char *file, cfg_t *sec, struct vp_pool_config *p)
{
	const struct value *net = get(sec, "network"), *range = get(sec, "range");
	const struct value *net6 = get(sec, "network6");
	char a[VP_PREFIX_STRLEN], b[VP_RANGE_STRLEN];
	size_t nex = cfg_size(sec, "exclude");

	p->name = strdup(cfg_title(sec));
	p->line = (unsigned)sec->line;
	if (!net)
		return fail_at(file, sec->line, "pool \"%s\" has no network", cfg_title(sec));
	if (net->prefix.len < 8 || net->prefix.len > 30)
		return fail_at(file, net->line,
			       "pool \"%s\": network %s must be a /8 to a /30", cfg_title(sec),
			       net->text);
	p->network = net->prefix;
	p->line = (unsigned)net->line;
	p->range = vp_prefix_range(&net->prefix);
	if (range) {
		if (range->range.first.family != VP_INET || !within(&range->range, &net->prefix))
			return fail_at(file, range->line, "range %s is not inside network %s",
				       vp_range_format(&range->range, b),
				       vp_prefix_format(&net->prefix, a));
		p->range = range->range;
		p->has_range = true;
	}
	if (net6) {
		if (net6->prefix.len < 64 || net6->prefix.len > 126)
			return fail_at(file, net6->line,
				       "pool \"%s\": network6 %s must be a /64 to a /126",
				       cfg_title(sec), net6->text);
		p->network6 = net6->prefix;
		p->has_network6 = true;
	}
	p->exclude = calloc(nex + 1, sizeof(*p->exclude));
	if (!p->exclude)
		return -1;
	for (size_t i = 0; i < nex; ++i) {
		const struct value *ex = cfg_getnptr(sec, "exclude", (unsigned)i);
		bool v4 = ex->range.first.family == VP_INET;

		if (v4 ? !within(&ex->range, &net->prefix)
		       : !net6 || !within(&ex->range, &net6->prefix))
			return fail_at(file, ex->line, "exclude %s is not inside network%s %s", ex->text,
				       v4 ? "" : "6", v4 ? net->text : net6 ? net6->text : "(none)");
		p->exclude[p->n_exclude++] = ex->range;
	}
	return read_matches(sec, &p->match, &p->n_match);
}

static int check_subnets(const char *file, cfg_t *sec, const struct value *net, long prefix,
			 const char *suffix)
{
	unsigned width = vp_family_bits(net->prefix.addr.family);

	if (prefix <= net->prefix.len || (unsigned long)prefix > width)
		return fail_at(file, net->line,
			       "router-pool \"%s\": prefix%s %ld does not fit in network%s %s (it must be longer than /%u and at most /%u)",
			       cfg_title(sec), suffix, prefix, suffix, net->text, net->prefix.len, width);
	if (prefix - net->prefix.len > 63)
		return fail_at(file, net->line,
			       "router-pool \"%s\": network%s %s holds more than 2^63 /%ld subnets",
			       cfg_title(sec), suffix, net->text, prefix);
	return 0;
}

static int read_router(const char *file, cfg_t *sec, struct vp_router_config *r)
{
	const struct value *net = get(sec, "network"), *net6 = get(sec, "network6");

	r->name = strdup(cfg_title(sec));
	r->line = (unsigned)sec->line;
	r->push_route = cfg_getbool(sec, "push-route");
	if (!net && !net6)
		return fail_at(file, sec->line, "router-pool \"%s\" has neither network nor network6",
			       cfg_title(sec));
	if (net) {
		if (!cfg_size(sec, "prefix"))
			return fail_at(file, net->line, "router-pool \"%s\" has a network but no prefix",
				       cfg_title(sec));
		if (check_subnets(file, sec, net, cfg_getint(sec, "prefix"), ""))
			return -1;
		r->network = net->prefix;
		r->prefix = (unsigned)cfg_getint(sec, "prefix");
		r->line = (unsigned)net->line;
	}
	if (net6) {
		if (!cfg_size(sec, "prefix6"))
			return fail_at(file, net6->line,
				       "router-pool \"%s\" has a network6 but no prefix6", cfg_title(sec));
		if (check_subnets(file, sec, net6, cfg_getint(sec, "prefix6"), "6"))
			return -1;
		r->network6 = net6->prefix;
		r->prefix6 = (unsigned)cfg_getint(sec, "prefix6");
		r->has_network6 = true;
	}
	return read_matches(sec, &r->match, &r->n_match);
}

static int read_static(const char *file, const struct vp_config *c, cfg_t *sec,
		       struct vp_static_config *s)
{
	const struct value *a4 = get(sec, "address"), *a6 = get(sec, "address6");
	const struct value *s4 = get(sec, "subnet"), *s6 = get(sec, "subnet6");
	bool found;

	s->identity = strdup(cfg_title(sec));
	s->line = (unsigned)sec->line;
	if (!a4 && !a6 && !s4 && !s6)
		return fail_at(file, sec->line, "client \"%s\" reserves nothing", cfg_title(sec));
	if (a4) {
		found = false;
		for (size_t i = 0; i < c->n_pools; ++i)
			found |= vp_prefix_contains(&c->pools[i].network, &a4->addr);
		if (!found)
			return fail_at(file, a4->line, "client \"%s\": address %s is not inside any pool network",
				       cfg_title(sec), a4->text);
		s->address = a4->addr;
		s->has_address = true;
	}
	if (a6) {
		found = false;
		for (size_t i = 0; i < c->n_pools; ++i)
			found |= c->pools[i].has_network6 &&
				 vp_prefix_contains(&c->pools[i].network6, &a6->addr);
		if (!found)
			return fail_at(file, a6->line,
				       "client \"%s\": address6 %s is not inside any pool network6",
				       cfg_title(sec), a6->text);
		s->address6 = a6->addr;
		s->has_address6 = true;
	}
	for (int fam = 0; fam < 2; ++fam) {
		const struct value *sn = fam ? s6 : s4;

		if (!sn)
			continue;
		found = false;
		for (size_t i = 0; i < c->n_routers; ++i) {
			const struct vp_router_config *r = &c->routers[i];
			const struct vp_prefix *rn = fam ? &r->network6 : &r->network;

			if ((fam ? r->has_network6 : r->network.addr.family != 0) &&
			    sn->prefix.len >= rn->len && vp_prefix_contains(rn, &sn->prefix.addr))
				found = true;
		}
		if (!found)
			return fail_at(file, sn->line,
				       "client \"%s\": subnet%s %s is not inside any router-pool network%s",
				       cfg_title(sec), fam ? "6" : "", sn->text, fam ? "6" : "");
		if (fam) {
			s->subnet6 = sn->prefix;
			s->has_subnet6 = true;
		} else {
			s->subnet = sn->prefix;
			s->has_subnet = true;
		}
	}
	return 0;
}

/* Two areas may not share an address: pools, router pools, either family. */
static int check_overlaps(const char *file, const struct vp_config *c)
{
	size_t n = c->n_pools + c->n_routers;

	for (size_t i = 0; i < n; ++i)
		for (size_t j = i + 1; j < n; ++j)
			for (int fam = 0; fam < 2; ++fam) {
				const struct vp_prefix *a, *b;
				const char *an, *bn;
				unsigned line;

#define AREA(k, P, NAME, LINE)                                                              \
	do {                                                                                \
		if ((k) < c->n_pools) {                                                     \
			const struct vp_pool_config *pp = &c->pools[k];                     \
			P = fam ? (pp->has_network6 ? &pp->network6 : NULL) : &pp->network; \
			NAME = pp->name;                                                    \
			LINE = pp->line;                                                    \
		} else {                                                                    \
			const struct vp_router_config *rr = &c->routers[(k) - c->n_pools];  \
			P = fam ? (rr->has_network6 ? &rr->network6 : NULL)                 \
				: (rr->network.addr.family ? &rr->network : NULL);          \
			NAME = rr->name;                                                    \
			LINE = rr->line;                                                    \
		}                                                                           \
	} while (0)
				AREA(i, a, an, line);
				AREA(j, b, bn, line);
#undef AREA
				if (a && b && prefixes_overlap(a, b)) {
					char x[VP_PREFIX_STRLEN], y[VP_PREFIX_STRLEN];

					return fail_at(file, (int)line, "\"%s\" (%s) overlaps \"%s\" (%s)",
						       bn, vp_prefix_format(b, y), an,
						       vp_prefix_format(a, x));
				}
			}
	return 0;
}

static int check_static_clash(const char *file, const struct vp_config *c)
{
	for (size_t i = 0; i < c->n_statics; ++i)
		for (size_t j = 0; j < i; ++j) {
			const struct vp_static_config *a = &c->statics[j], *b = &c->statics[i];

			if ((a->has_address && b->has_address && vp_addr_eq(&a->address, &b->address)) ||
			    (a->has_address6 && b->has_address6 &&
			     vp_addr_eq(&a->address6, &b->address6)) ||
			    (a->has_subnet && b->has_subnet && prefixes_overlap(&a->subnet, &b->subnet)) ||
			    (a->has_subnet6 && b->has_subnet6 &&
			     prefixes_overlap(&a->subnet6, &b->subnet6)))
				return fail_at(file, (int)b->line,
					       "client \"%s\" reserves an address or subnet of client \"%s\"",
					       b->identity, a->identity);
		}
	return 0;
}

static char *text_opt(cfg_t *cfg, const char *name)
{
	const struct value *v = get(cfg, name);

	return v ? strdup(v->text) : NULL;
}

static int read_root(const char *file, cfg_t *cfg, struct vp_config *c)
{
	const struct value *usage = get(cfg, "usage-log");
	size_t nwarn = cfg_size(cfg, "warn-at");

	c->path = strdup(file);
	c->state_dir = text_opt(cfg, "state-dir");
	c->identity = text_opt(cfg, "identity");
	c->metrics_file = text_opt(cfg, "metrics-file");
	if (!c->state_dir || !c->identity || !c->path)
		return -1;
	if (!c->state_dir[0])
		return fail_at(file, ((const struct value *)cfg_getptr(cfg, "state-dir"))->line,
			       "state-dir is empty");
	if (c->metrics_file && !c->metrics_file[0]) {
		free(c->metrics_file);
		c->metrics_file = NULL;
	}
	if (!usage) {
		if (asprintf(&c->usage_log, "%s/usage.log", c->state_dir) < 0)
			return -1;
	} else if (usage->text[0]) {
		c->usage_log = strdup(usage->text);
	}
	c->hold_time = cfg_getint(cfg, "hold-time");
	c->topology = (enum vp_topology)cfg_getint(cfg, "topology");
	c->fsync = cfg_getbool(cfg, "fsync");
	c->warn_at = calloc(nwarn + 1, sizeof(*c->warn_at));
	if (!c->warn_at)
		return -1;
	for (size_t i = 0; i < nwarn; ++i) {
		unsigned v = (unsigned)cfg_getnint(cfg, "warn-at", (unsigned)i);
		size_t k = c->n_warn_at;

		while (k > 0 && c->warn_at[k - 1] > v)
			k--;
		if (k > 0 && c->warn_at[k - 1] == v)
			continue;
		memmove(&c->warn_at[k + 1], &c->warn_at[k], (c->n_warn_at - k) * sizeof(*c->warn_at));
		c->warn_at[k] = v;
		c->n_warn_at++;
	}
	return 0;
}

static int read_sections(const char *file, cfg_t *cfg, struct vp_config *c)
{
	size_t np = cfg_size(cfg, "pool"), nr = cfg_size(cfg, "router-pool");
	size_t ns = cfg_size(cfg, "client");

	if (!np)
		return fail_at(file, cfg->line, "no pool defined");
	c->pools = calloc(np, sizeof(*c->pools));
	c->routers = calloc(nr + 1, sizeof(*c->routers));
	c->statics = calloc(ns + 1, sizeof(*c->statics));
	if (!c->pools || !c->routers || !c->statics)
		return -1;
	/* Count each section before reading it, so a failure frees it too. */
	for (size_t i = 0; i < np; ++i)
		if (c->n_pools++, read_pool(file, cfg_getnsec(cfg, "pool", (unsigned)i), &c->pools[i]))
			return -1;
	for (size_t i = 0; i < nr; ++i)
		if (c->n_routers++,
		    read_router(file, cfg_getnsec(cfg, "router-pool", (unsigned)i), &c->routers[i]))
			return -1;
	for (size_t i = 0; i < nr; ++i)
		for (size_t k = 0; k < np; ++k)
			if (!strcmp(c->routers[i].name, c->pools[k].name))
				return fail_at(file, (int)c->routers[i].line,
					       "router-pool \"%s\" has the name of a pool", c->routers[i].name);
	if (check_overlaps(file, c))
		return -1;
	for (size_t i = 0; i < ns; ++i)
		if (c->n_statics++,
		    read_static(file, c, cfg_getnsec(cfg, "client", (unsigned)i), &c->statics[i]))
			return -1;
	return check_static_clash(file, c);
}

/* Blank out # // and C comments (keeping newlines) outside quoted strings. */
static void blank_comments(char *s)
{
	char quote = 0;

	for (; *s; ++s) {
		if (quote) {
			if (*s == '\\' && s[1])
				++s;
			else if (*s == quote)
				quote = 0;
		} else if (*s == '"' || *s == '\'') {
			quote = *s;
		} else if (*s == '#' || (*s == '/' && s[1] == '/')) {
			while (*s && *s != '\n')
				*s++ = ' ';
			if (!*s)
				return;
		} else if (*s == '/' && s[1] == '*') {
			*s++ = ' ';
			*s = ' ';
			while (s[1] && !(s[1] == '*' && s[2] == '/')) {
				++s;
				if (*s != '\n')
					*s = ' ';
			}
			if (s[1]) {
				s[1] = s[2] = ' ';
				s += 2;
			}
		}
	}
}

static cfg_t *schema(void)
{
	static cfg_opt_t pool[] = {
		CFG_PTR_CB("network", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("range", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_LIST_CB("exclude", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("network6", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_LIST_CB("match", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_END()
	};
	static cfg_opt_t router[] = {
		CFG_PTR_CB("network", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_INT_CB("prefix", 0, CFGF_NODEFAULT, cb_prefix_len),
		CFG_PTR_CB("network6", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_INT_CB("prefix6", 0, CFGF_NODEFAULT, cb_prefix_len),
		CFG_PTR_LIST_CB("match", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_BOOL("push-route", cfg_true, CFGF_NONE),
		CFG_END()
	};
	static cfg_opt_t client[] = {
		CFG_PTR_CB("address", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("address6", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("subnet", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("subnet6", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_END()
	};
	static cfg_opt_t root[] = {
		CFG_PTR_CB("state-dir", (char *)"/var/lib/openvpn/vpnpool", CFGF_NONE, cb_value, value_free),
		CFG_PTR_CB("usage-log", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("identity", (char *)"common_name", CFGF_NONE, cb_value, value_free),
		CFG_INT_CB("hold-time", 0, CFGF_NONE, cb_hold_time),
		CFG_INT_LIST_CB("warn-at", (char *)"{80, 95}", CFGF_NONE, cb_percent),
		CFG_INT_CB("topology", VP_TOPO_AUTO, CFGF_NONE, cb_topology),
		CFG_PTR_CB("metrics-file", (char *)"", CFGF_NONE, cb_value, value_free),
		CFG_BOOL("fsync", cfg_false, CFGF_NONE),
		CFG_SEC("pool", pool, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_SEC("router-pool", router, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_SEC("client", client, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_END()
	};
	/* cfg_init copies the option tables, so sharing these is safe. */
	cfg_t *cfg = cfg_init(root, CFGF_NONE);

	if (cfg)
		cfg_set_error_function(cfg, on_error);
	return cfg;
}

int vp_conf_load_buf(struct vp_config *out, const char *text, const char *name, char *err,
		     size_t errlen)
{
	char *copy = strdup(text);
	cfg_t *cfg;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	first_error[0] = '\0';
	if (!copy)
		goto out_err;
	blank_comments(copy);
	cfg = schema();
	if (!cfg)
		goto out_free_copy;
	current_file = name;
	if (cfg_parse_buf(cfg, copy) == CFG_SUCCESS && !read_root(name, cfg, out) &&
	    !read_sections(name, cfg, out))
		ret = 0;
	cfg_free(cfg);
	current_file = NULL;
out_free_copy:
	free(copy);
out_err:
	if (ret) {
		snprintf(err, errlen, "%s", first_error[0] ? first_error : "out of memory");
		vp_config_free(out);
	}
	return ret;
}

int vp_conf_load(struct vp_config *out, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *text;
	ssize_t n;
	int fd, ret;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > MAX_CONF_BYTES) {
		snprintf(err, errlen, "%s: not a regular file of at most %d MiB", path,
			 MAX_CONF_BYTES >> 20);
		close(fd);
		return -1;
	}
	text = malloc((size_t)st.st_size + 1);
	n = text ? read(fd, text, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
		free(text);
		return -1;
	}
	text[n] = '\0';
	if (memchr(text, '\0', (size_t)n)) {
		snprintf(err, errlen, "%s:%d: NUL byte in the file", path, 1);
		free(text);
		return -1;
	}
	ret = vp_conf_load_buf(out, text, path, err, errlen);
	free(text);
	return ret;
}
