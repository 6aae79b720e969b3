/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vpnpool.conf (libconfuse syntax) into a validated struct vp_config.
 *
 * libconfuse 3.3 has no per-option line numbers (cfg_opt_getline() came
 * later) and a section's cfg_t line is where it ends.  So every value is
 * parsed by a callback as it is read, keeping cfg->line with it, and a pass
 * over the raw text before libconfuse sees it notes where each section
 * starts.  That pass also blanks comments (keeping the newlines): 3.3 counts
 * two lines for every comment line, which would shift all later messages.
 * It follows libconfuse's lexer rules, so "/var//x" stays a word while
 * "// x" is a comment, and it reports strings and comments that never close
 * (libconfuse says "premature end of file", or silently drops the rest after
 * an open comment).
 *
 * Checks across options and sections run after the parse and quote the line
 * of the option at fault.  Match variables are not judged here: IV_* and UV_*
 * come from the client, and username too unless the server verifies it;
 * see load.h.
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
#include "core/fs.h"

#define MAX_CONF_BYTES (16 << 20)

enum kind { K_PREFIX4, K_PREFIX6, K_RANGE, K_ADDR4, K_ADDR6, K_MATCH, K_NAME, K_PREFIXLEN, K_TEXT,
	    K_INSTANCE, K_STORE };

/* A parsed value and the line it was on. */
struct value {
	int line;
	struct vp_prefix prefix;
	struct vp_range range;
	struct vp_addr addr;
	long number;			/* K_PREFIXLEN */
	char *var, *glob;		/* K_MATCH */
	char text[];
};

enum section { S_POOL, S_ROUTER, S_CLIENT, S_COUNT };
static const char *const section_names[S_COUNT] = { "pool", "router-pool", "client" };

/* A section as the pre-pass saw it. */
struct mark {
	enum section kind;
	int line;			/* of its keyword */
	const char *title;		/* into scan.text, not terminated */
	size_t title_len;
};

struct scan {
	char *text;			/* comments blanked, newlines kept */
	struct mark *marks;
	size_t n_marks;
	int last_line;
	int bad_line;			/* an unclosed string or comment starts here */
	const char *bad_what;
	int open_brace_line;		/* a '{' never closed (libconfuse accepts it) */
};

/* One load: the file name for messages and the first error. */
struct load {
	const char *file;
	struct scan scan;
	int err_line;
	char err[1024];
};

/* libconfuse 3.3 gives error functions no user pointer (and its lexer is
 * global anyway): the load in progress on this thread. */
static _Thread_local struct load *active;

/* Append in to out (of size bytes, NUL-terminated) with control bytes as
 * \xNN: values are quoted in messages, and a quoted string may hold a
 * newline, which would break the one-line "FILE:LINE: message". */
static void append_escaped(char *out, size_t size, const char *in)
{
	size_t n = strlen(out);

	for (; *in && n + 5 < size; ++in) {
		if ((unsigned char)*in < ' ' || *in == 0x7f)
			n += (size_t)snprintf(out + n, 5, "\\x%02x", (unsigned char)*in);
		else
			out[n++] = *in;
	}
	out[n] = '\0';
}

__attribute__((format(printf, 3, 0)))
static int vfail_at(struct load *ld, int line, const char *fmt, va_list ap)
{
	char msg[768];

	if (ld->err[0])
		return -1;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(ld->err, sizeof(ld->err), "%s:%d: ", ld->file, line);
	append_escaped(ld->err, sizeof(ld->err), msg);
	ld->err_line = line;
	return -1;
}

/* Record an error at a line (the first one wins); returns -1. */
__attribute__((format(printf, 3, 4)))
static int fail_at(struct load *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(ld, line, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- the pre-pass ---------------------------------------------------------------- */

/* A character of an unquoted word, as libconfuse's lexer has it. */
static bool is_word_char(char c)
{
	return c && !strchr(" #\"'\t\n\r={}()+,*", c);
}

/* "//" where a token starts is a comment, whatever follows ("//x" too:
 * libconfuse 3.3 reads it so); inside a word ("/var//x") it is not, and
 * the word loop never looks there. */
static bool is_slash_comment(const char *p)
{
	return p[0] == '/' && p[1] == '/';
}

/* A word or string.  At top level and not a value, it may be a section
 * keyword (remember where it is) or the title after one. */
static int scan_token(struct scan *sc, const char *tok, size_t len, int line, int depth,
		      char *prev)
{
	struct mark *m;

	if (depth || *prev == '=' || *prev == ',' || *prev == '(') {
		*prev = 'w';
		return 0;
	}
	if (*prev == 's') {		/* the title of the section just seen */
		m = &sc->marks[sc->n_marks - 1];
		m->title = tok;
		m->title_len = len;
		*prev = 'w';
		return 0;
	}
	for (int k = 0; k < S_COUNT; ++k) {
		if (strlen(section_names[k]) != len || memcmp(section_names[k], tok, len))
			continue;
		m = realloc(sc->marks, (sc->n_marks + 1) * sizeof(*m));
		if (!m)
			return -1;
		sc->marks = m;
		sc->marks[sc->n_marks++] = (struct mark){ .kind = k, .line = line };
		*prev = 's';
		return 0;
	}
	*prev = 'w';
	return 0;
}

/* Skip a quoted string at s[*i]; false if it never closes. */
static bool skip_string(const char *s, size_t *i, int *line)
{
	char quote = s[(*i)++];

	while (s[*i] && s[*i] != quote) {
		if (s[*i] == '\\' && s[*i + 1])
			++*i;
		if (s[*i] == '\n')
			++*line;
		++*i;
	}
	if (!s[*i])
		return false;
	++*i;
	return true;
}

/* Blank a C comment at s[*i]; false if it never closes. */
static bool blank_c_comment(char *s, size_t *i, int *line)
{
	for (s[(*i)++] = ' ', s[(*i)++] = ' '; s[*i]; ++*i) {
		if (s[*i] == '*' && s[*i + 1] == '/') {
			s[(*i)++] = ' ';
			s[(*i)++] = ' ';
			return true;
		}
		if (s[*i] == '\n')
			++*line;
		else
			s[*i] = ' ';
	}
	return false;
}

static int scan_text(struct scan *sc, const char *text)
{
	char *s = strdup(text), prev = 0;
	int line = 1, depth = 0, outer_brace = 0;
	size_t i = 0, start;

	if (!s)
		return -1;
	sc->text = s;
	while (s[i]) {
		int at = line;

		start = i;
		if (s[i] == '\n') {
			++line;
			++i;
		} else if (s[i] == '#' || is_slash_comment(s + i)) {
			while (s[i] && s[i] != '\n')
				s[i++] = ' ';
		} else if (s[i] == '/' && s[i + 1] == '*') {
			if (!blank_c_comment(s, &i, &line)) {
				sc->bad_line = at;
				sc->bad_what = "unterminated comment: this /* is never closed";
				break;
			}
		} else if (s[i] == '"' || s[i] == '\'') {
			if (!skip_string(s, &i, &line)) {
				sc->bad_line = at;
				sc->bad_what = s[start] == '"' ? "unterminated string: this \" is never closed"
							     : "unterminated string: this ' is never closed";
				break;
			}
			if (scan_token(sc, s + start + 1, i - start - 2, at, depth, &prev))
				return -1;
		} else if (is_word_char(s[i])) {
			while (is_word_char(s[i]))
				++i;
			if (scan_token(sc, s + start, i - start, at, depth, &prev))
				return -1;
		} else {
			if (s[i] == '{' && !depth++)
				outer_brace = line;
			else if (s[i] == '}' && depth > 0)
				--depth;
			if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
				prev = s[i];
			++i;
		}
	}
	sc->last_line = i && s[i - 1] == '\n' && line > 1 ? line - 1 : line;
	if (depth && !sc->bad_line)
		sc->open_brace_line = outer_brace;
	return 0;
}

/* The line of the index-th section of a kind; fallback: where it ended. */
static int section_line(const struct load *ld, enum section kind, size_t index, cfg_t *sec)
{
	for (size_t i = 0; i < ld->scan.n_marks; ++i)
		if (ld->scan.marks[i].kind == kind && !index--)
			return ld->scan.marks[i].line;
	return sec->line;
}

static bool mark_titled(const struct mark *m, const char *title)
{
	return m->title && strlen(title) == m->title_len && !memcmp(m->title, title, m->title_len);
}

/* libconfuse's "found duplicate title 'X'" comes at the section's '{':
 * say which section, where, and where the first one is. */
static bool explain_duplicate(struct load *ld, const char *msg, int line)
{
	static const char prefix[] = "found duplicate title '";
	const struct mark *dup = NULL;
	char title[256];
	size_t len;

	if (strncmp(msg, prefix, sizeof(prefix) - 1))
		return false;
	len = strlen(msg) - (sizeof(prefix) - 1);
	if (len < 1 || len > sizeof(title) || msg[strlen(msg) - 1] != '\'')
		return false;
	memcpy(title, msg + sizeof(prefix) - 1, len - 1);
	title[len - 1] = '\0';
	for (size_t i = 0; i < ld->scan.n_marks; ++i)
		if (ld->scan.marks[i].line <= line && mark_titled(&ld->scan.marks[i], title))
			dup = &ld->scan.marks[i];
	for (const struct mark *m = ld->scan.marks; dup && m < dup; ++m)
		if (m->kind == dup->kind && mark_titled(m, title)) {
			fail_at(ld, dup->line, "%s \"%s\" is defined twice (first on line %d)",
				section_names[dup->kind], title, m->line);
			return true;
		}
	return false;
}

__attribute__((format(printf, 2, 0)))
static void on_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[768];
	int line = cfg ? cfg->line : 0;

	if (!active || active->err[0])
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!explain_duplicate(active, msg, line))
		fail_at(active, line, "%s", msg);
}

/* ---- values, as libconfuse reads them -------------------------------------------- */

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
		{ "identity", K_NAME }, { "prefix", K_PREFIXLEN }, { "prefix6", K_PREFIXLEN },
		{ "instance", K_INSTANCE }, { "store", K_STORE }, { "node", K_INSTANCE },
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
		snprintf(err, VP_ERRLEN, "`%.100s' is not VARIABLE=GLOB", text);
		return false;
	}
	if (eq == text) {
		snprintf(err, VP_ERRLEN, "`%.100s' has no variable before '='", text);
		return false;
	}
	if (!is_var_name(text, (size_t)(eq - text))) {
		snprintf(err, VP_ERRLEN,
			 "`%.100s': the variable may only have letters, digits and '_'", text);
		return false;
	}
	if (!eq[1]) {
		snprintf(err, VP_ERRLEN, "`%.100s' has an empty glob (use * to match anything)",
			 text);
		return false;
	}
	v->var = strndup(text, (size_t)(eq - text));
	v->glob = strdup(eq + 1);
	if (!v->var || !v->glob) {
		snprintf(err, VP_ERRLEN, "out of memory");
		return false;
	}
	return true;
}

static bool parse_family(const struct vp_addr *a, enum vp_family want, const char *text,
			 char err[VP_ERRLEN])
{
	if (a->family == want)
		return true;
	snprintf(err, VP_ERRLEN, "`%.100s' is not an %s %s", text,
		 want == VP_INET ? "IPv4" : "IPv6", strchr(text, '/') ? "prefix" : "address");
	return false;
}

static bool parse_prefix_len(struct value *v, const char *text, char err[VP_ERRLEN])
{
	char *end;

	errno = 0;
	v->number = strtol(text, &end, 10);
	if (text[0] >= '0' && text[0] <= '9' && !*end && !errno && v->number <= 128)
		return true;
	snprintf(err, VP_ERRLEN, "`%.60s' is not a prefix length from 0 to 128", text);
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
	case K_PREFIXLEN:
		return parse_prefix_len(v, text, err);
	case K_INSTANCE:
		if (vp_config_instance_name_ok(text))
			return true;
		snprintf(err, VP_ERRLEN,
			 "`%.100s' is not a valid name (1 to 63 letters, digits, '.', '_', '-')",
			 text);
		return false;
	case K_STORE:
		if (!*text || !strncmp(text, "postgresql://", 13) || !strncmp(text, "postgres://", 11))
			return true;
		snprintf(err, VP_ERRLEN,
			 "`%.100s' is not a PostgreSQL URI (postgresql://...; \"\": the journal)",
			 text);
		return false;
	case K_TEXT:
		return true;
	}
	return false;
}

/* libconfuse value callback for every option but the numbers and booleans. */
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

static int cb_store_timeout(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result)
{
	return cb_int(cfg, opt, text, result, 1, 3600);
}

static int cb_node_timeout(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result)
{
	return cb_int(cfg, opt, text, result, 2, 86400);
}

static int cb_percent(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result)
{
	return cb_int(cfg, opt, text, result, 1, 100);
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

static int cb_host_routes(cfg_t *cfg, cfg_opt_t *opt, const char *text, void *result)
{
	static const char *const names[] = { "auto", "yes", "no" };

	for (long i = 0; i < 3; ++i)
		if (!strcmp(text, names[i])) {
			*(long *)result = i;
			return 0;
		}
	cfg_error(cfg, "%s: `%.60s' is none of auto, yes, no", opt->name, text);
	return -1;
}

/* ---- reading the parsed tree ----------------------------------------------------- */

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

static int read_excludes(struct load *ld, cfg_t *sec, struct vp_pool_config *p)
{
	const struct value *net = get(sec, "network"), *net6 = get(sec, "network6");
	size_t n = cfg_size(sec, "exclude");

	p->exclude = calloc(n + 1, sizeof(*p->exclude));
	if (!p->exclude)
		return -1;
	for (size_t i = 0; i < n; ++i) {
		const struct value *ex = cfg_getnptr(sec, "exclude", (unsigned)i);

		if (ex->range.first.family == VP_INET) {
			if (!within(&ex->range, &net->prefix))
				return fail_at(ld, ex->line, "exclude %s is not inside network %s",
					       ex->text, net->text);
		} else if (!net6) {
			return fail_at(ld, ex->line,
				       "exclude %s is IPv6 but pool \"%s\" has no network6", ex->text,
				       p->name);
		} else if (!within(&ex->range, &net6->prefix)) {
			return fail_at(ld, ex->line, "exclude %s is not inside network6 %s", ex->text,
				       net6->text);
		}
		p->exclude[p->n_exclude++] = ex->range;
	}
	return 0;
}

static int read_pool(struct load *ld, cfg_t *sec, int line, struct vp_pool_config *p)
{
	const struct value *net = get(sec, "network"), *range = get(sec, "range");
	const struct value *net6 = get(sec, "network6");

	p->name = strdup(cfg_title(sec));
	p->line = (unsigned)line;
	if (!p->name)
		return -1;
	if (!net)
		return fail_at(ld, line, "pool \"%s\" has no network", p->name);
	if (net->prefix.len < 8 || net->prefix.len > 30)
		return fail_at(ld, net->line, "pool \"%s\": network %s is not a /8 to a /30", p->name,
			       net->text);
	p->network = net->prefix;
	p->range = vp_prefix_range(&net->prefix);
	if (range) {
		if (range->range.first.family != VP_INET || !within(&range->range, &net->prefix))
			return fail_at(ld, range->line, "range %s is not inside network %s",
				       range->text, net->text);
		p->range = range->range;
		p->has_range = true;
	}
	if (net6) {
		if (net6->prefix.len < 64 || net6->prefix.len > 126)
			return fail_at(ld, net6->line,
				       "pool \"%s\": network6 %s is not a /64 to a /126", p->name,
				       net6->text);
		p->network6 = net6->prefix;
		p->has_network6 = true;
	}
	if (read_excludes(ld, sec, p))
		return -1;
	return read_matches(sec, &p->match, &p->n_match);
}

/* Network and prefix (or network6 and prefix6) come as a pair. */
static int check_subnets(struct load *ld, const char *name, const struct value *net,
			 const struct value *len, const char *six)
{
	unsigned width;

	if (!net)
		return len ? fail_at(ld, len->line, "router-pool \"%s\": prefix%s without network%s",
				     name, six, six) : 0;
	if (!len)
		return fail_at(ld, net->line,
			       "router-pool \"%s\": network%s %s has no prefix%s (the size of each router's subnet)",
			       name, six, net->text, six);
	width = vp_family_bits(net->prefix.addr.family);
	if (len->number <= net->prefix.len || len->number > (long)width)
		return fail_at(ld, len->line,
			       "router-pool \"%s\": prefix%s %ld does not fit in network%s %s (it must be longer than /%u and at most /%u)",
			       name, six, len->number, six, net->text, net->prefix.len, width);
	if (len->number - net->prefix.len > 63)
		return fail_at(ld, len->line,
			       "router-pool \"%s\": network%s %s holds more than 2^63 /%ld subnets",
			       name, six, net->text, len->number);
	return 0;
}

static int read_router(struct load *ld, cfg_t *sec, int line, struct vp_router_config *r)
{
	const struct value *net = get(sec, "network"), *net6 = get(sec, "network6");
	const struct value *len = get(sec, "prefix"), *len6 = get(sec, "prefix6");

	r->name = strdup(cfg_title(sec));
	r->line = (unsigned)line;
	r->push_route = cfg_getbool(sec, "push-route");
	if (!r->name)
		return -1;
	if (!net && !net6)
		return fail_at(ld, line, "router-pool \"%s\" has neither network nor network6",
			       r->name);
	if (check_subnets(ld, r->name, net, len, "") || check_subnets(ld, r->name, net6, len6, "6"))
		return -1;
	if (net) {
		r->network = net->prefix;
		r->prefix = (unsigned)len->number;
	}
	if (net6) {
		r->network6 = net6->prefix;
		r->prefix6 = (unsigned)len6->number;
		r->has_network6 = true;
	}
	return read_matches(sec, &r->match, &r->n_match);
}

/* The pool whose network (or network6) holds a; NULL if none. */
static const struct vp_pool_config *pool_of(const struct vp_config *c, const struct vp_addr *a)
{
	for (size_t i = 0; i < c->n_pools; ++i) {
		const struct vp_pool_config *p = &c->pools[i];

		if (a->family == VP_INET ? vp_prefix_contains(&p->network, a)
					 : p->has_network6 && vp_prefix_contains(&p->network6, a))
			return p;
	}
	return NULL;
}

static int check_static_address(struct load *ld, const struct vp_config *c, const char *who,
				const struct value *v)
{
	const struct vp_pool_config *p = pool_of(c, &v->addr);
	const char *six = v->addr.family == VP_INET6 ? "6" : "";
	struct vp_range net;

	if (!p)
		return fail_at(ld, v->line, "client \"%s\": address%s %s is not inside any pool network%s",
			       who, six, v->text, six);
	if (v->addr.family == VP_INET6)
		return 0;
	net = vp_prefix_range(&p->network);
	if (vp_addr_eq(&v->addr, &net.first) || vp_addr_eq(&v->addr, &net.last))
		return fail_at(ld, v->line, "client \"%s\": address %s is the %s address of pool \"%s\"",
			       who, v->text, vp_addr_eq(&v->addr, &net.first) ? "network" : "broadcast",
			       p->name);
	return 0;
}

static int check_static_subnet(struct load *ld, const struct vp_config *c, const char *who,
			       const struct value *v)
{
	bool six = v->prefix.addr.family == VP_INET6;

	for (size_t i = 0; i < c->n_routers; ++i) {
		const struct vp_router_config *r = &c->routers[i];
		const struct vp_prefix *rn = six ? &r->network6 : &r->network;

		if ((six ? r->has_network6 : r->network.addr.family != 0) &&
		    v->prefix.len >= rn->len && vp_prefix_contains(rn, &v->prefix.addr))
			return 0;
	}
	return fail_at(ld, v->line, "client \"%s\": subnet%s %s is not inside any router-pool network%s",
		       who, six ? "6" : "", v->text, six ? "6" : "");
}

static int read_static(struct load *ld, const struct vp_config *c, cfg_t *sec, int line,
		       struct vp_static_config *s)
{
	const struct value *a4 = get(sec, "address"), *a6 = get(sec, "address6");
	const struct value *s4 = get(sec, "subnet"), *s6 = get(sec, "subnet6");

	s->identity = strdup(cfg_title(sec));
	s->line = (unsigned)line;
	if (!s->identity)
		return -1;
	if (!a4 && !a6 && !s4 && !s6)
		return fail_at(ld, line,
			       "client \"%s\" reserves nothing (no address, address6, subnet or subnet6)",
			       s->identity);
	if ((a4 && check_static_address(ld, c, s->identity, a4)) ||
	    (a6 && check_static_address(ld, c, s->identity, a6)) ||
	    (s4 && check_static_subnet(ld, c, s->identity, s4)) ||
	    (s6 && check_static_subnet(ld, c, s->identity, s6)))
		return -1;
	s->has_address = a4 != NULL;
	s->has_address6 = a6 != NULL;
	s->has_subnet = s4 != NULL;
	s->has_subnet6 = s6 != NULL;
	if (a4)
		s->address = a4->addr;
	if (a6)
		s->address6 = a6->addr;
	if (s4)
		s->subnet = s4->prefix;
	if (s6)
		s->subnet6 = s6->prefix;
	return 0;
}

/* Pools and router pools, of either family, may not share an address. */
struct area {
	const char *kind, *name, *option;
	const struct value *net;
};

static int check_overlaps(struct load *ld, cfg_t *cfg, const struct vp_config *c)
{
	size_t n = c->n_pools + c->n_routers;
	struct area *areas = calloc(2 * n + 1, sizeof(*areas));
	size_t count = 0;
	int ret = 0;

	if (!areas)
		return -1;
	for (size_t i = 0; i < n; ++i) {
		bool pool = i < c->n_pools;
		cfg_t *sec = pool ? cfg_getnsec(cfg, "pool", (unsigned)i)
				  : cfg_getnsec(cfg, "router-pool", (unsigned)(i - c->n_pools));
		const char *name = pool ? c->pools[i].name : c->routers[i - c->n_pools].name;

		for (int six = 0; six < 2; ++six) {
			const struct value *net = get(sec, six ? "network6" : "network");

			if (net)
				areas[count++] = (struct area){ pool ? "pool" : "router-pool", name,
								six ? "network6" : "network", net };
		}
	}
	for (size_t i = 0; i < count && !ret; ++i)
		for (size_t j = i + 1; j < count && !ret; ++j) {
			const struct area *a = &areas[i], *b = &areas[j];

			if (a->net->prefix.addr.family != b->net->prefix.addr.family ||
			    !prefixes_overlap(&a->net->prefix, &b->net->prefix))
				continue;
			if (a->net->line > b->net->line) {
				a = &areas[j];
				b = &areas[i];
			}
			ret = fail_at(ld, b->net->line, "%s \"%s\": %s %s overlaps %s %s of %s \"%s\"",
				      b->kind, b->name, b->option, b->net->text, a->option, a->net->text,
				      a->kind, a->name);
		}
	free(areas);
	return ret;
}

/* One client's reservation of one kind, as a span of addresses. */
struct claim {
	struct vp_range span;
	const struct value *v;
	size_t client;
};

static int claim_cmp(const void *x, const void *y)
{
	const struct claim *a = x, *b = y;
	int c = vp_addr_cmp(&a->span.first, &b->span.first);

	return c ? c : (a->client > b->client) - (a->client < b->client);
}

/* Sorted by start, reservations that clash are neighbours (prefixes nest or
 * are apart); the clash reported is the one whose later line comes first. */
static int find_clash(cfg_t *cfg, size_t n_statics, const char *opt, bool subnet,
		      struct claim *claims, struct claim hit[2])
{
	size_t n = 0;
	int found = 0;

	for (size_t i = 0; i < n_statics; ++i) {
		const struct value *v = get(cfg_getnsec(cfg, "client", (unsigned)i), opt);

		if (v)
			claims[n++] = (struct claim){
				subnet ? vp_prefix_range(&v->prefix) : (struct vp_range){ v->addr, v->addr },
				v, i };
	}
	qsort(claims, n, sizeof(*claims), claim_cmp);
	for (size_t i = 1; i < n; ++i) {
		bool swap = claims[i - 1].client > claims[i].client;
		const struct claim *a = &claims[i - 1 + swap], *b = &claims[i - swap];

		if (!vp_range_overlaps(&a->span, &b->span) ||
		    (found && hit[1].v->line <= b->v->line))
			continue;
		hit[0] = *a;
		hit[1] = *b;
		found = 1;
	}
	return found;
}

/* Two reservations of one address, or of overlapping subnets. */
static int check_static_clash(struct load *ld, cfg_t *cfg, const struct vp_config *c)
{
	static const char *const opts[] = { "address", "address6", "subnet", "subnet6" };
	struct claim *claims = calloc(c->n_statics + 1, sizeof(*claims));
	struct claim hit[2] = { 0 }, best[2] = { 0 };
	int k, best_k = -1;

	if (!claims)
		return -1;
	for (k = 0; k < 4; ++k)
		if (find_clash(cfg, c->n_statics, opts[k], k >= 2, claims, hit) &&
		    (best_k < 0 || hit[1].v->line < best[1].v->line)) {
			best[0] = hit[0];
			best[1] = hit[1];
			best_k = k;
		}
	free(claims);
	if (best_k < 0)
		return 0;
	if (best_k < 2)
		return fail_at(ld, best[1].v->line,
			       "client \"%s\": %s %s is already reserved for client \"%s\"",
			       c->statics[best[1].client].identity, opts[best_k], best[1].v->text,
			       c->statics[best[0].client].identity);
	return fail_at(ld, best[1].v->line, "client \"%s\": %s %s overlaps %s %s of client \"%s\"",
		       c->statics[best[1].client].identity, opts[best_k], best[1].v->text,
		       opts[best_k], best[0].v->text, c->statics[best[0].client].identity);
}

static char *text_opt(cfg_t *cfg, const char *name)
{
	const struct value *v = get(cfg, name);

	return v ? strdup(v->text) : NULL;
}

static int read_warn_at(cfg_t *cfg, struct vp_config *c)
{
	size_t n = cfg_size(cfg, "warn-at");

	c->warn_at = calloc(n + 1, sizeof(*c->warn_at));
	if (!c->warn_at)
		return -1;
	/* Insertion sort, dropping duplicates: the list is short. */
	for (size_t i = 0; i < n; ++i) {
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

static int read_root(struct load *ld, cfg_t *cfg, struct vp_config *c)
{
	const struct value *usage = get(cfg, "usage-log");
	size_t len;

	c->path = strdup(ld->file);
	c->state_dir = text_opt(cfg, "state-dir");
	c->identity = text_opt(cfg, "identity");
	c->metrics_file = text_opt(cfg, "metrics-file");
	c->instance = text_opt(cfg, "instance");
	c->store = text_opt(cfg, "store");
	c->node = text_opt(cfg, "node");
	if (!c->state_dir || !c->identity || !c->path ||
	    (get(cfg, "metrics-file") && !c->metrics_file) || (get(cfg, "instance") && !c->instance) ||
	    (get(cfg, "store") && !c->store) || (get(cfg, "node") && !c->node))
		return -1;
	if (c->store && !c->store[0]) {
		free(c->store);
		c->store = NULL;
	}
	len = strlen(c->state_dir);
	if (!len)
		return fail_at(ld, ((const struct value *)cfg_getptr(cfg, "state-dir"))->line,
			       "state-dir is empty");
	if (c->metrics_file && !c->metrics_file[0]) {
		free(c->metrics_file);
		c->metrics_file = NULL;
	}
	if (!usage) {
		if (asprintf(&c->usage_log, "%s%susage.log", c->state_dir,
			     c->state_dir[len - 1] == '/' ? "" : "/") < 0) {
			c->usage_log = NULL;
			return -1;
		}
	} else if (usage->text[0] && !(c->usage_log = strdup(usage->text))) {
		return -1;
	}
	c->hold_time = cfg_getint(cfg, "hold-time");
	c->topology = (enum vp_topology)cfg_getint(cfg, "topology");
	c->host_routes = (enum vp_host_routes)cfg_getint(cfg, "host-routes");
	c->fsync = cfg_getbool(cfg, "fsync");
	c->store_timeout_ms = (unsigned)cfg_getint(cfg, "store-timeout") * 1000u;
	c->node_timeout = cfg_getint(cfg, "node-timeout");
	/* A heartbeat may wait for a call of store-timeout, then take as
	 * long itself: node-timeout leaves room for that and one more. */
	if (c->store && c->node_timeout * 1000 < 3 * (int64_t)c->store_timeout_ms)
		return fail_at(ld, ((const struct value *)cfg_getptr(cfg, "store"))->line,
			       "node-timeout (%lld s) must be at least 3 times store-timeout (%u s): a server busy with a slow database would be taken for dead",
			       (long long)c->node_timeout, c->store_timeout_ms / 1000);
	return read_warn_at(cfg, c);
}

/* Pool and router-pool names share one space: the engine and the logs
 * know an area by its name alone. */
static int check_names(struct load *ld, const struct vp_config *c)
{
	for (size_t i = 0; i < c->n_routers; ++i)
		for (size_t k = 0; k < c->n_pools; ++k) {
			const struct vp_router_config *r = &c->routers[i];
			const struct vp_pool_config *p = &c->pools[k];

			if (strcmp(r->name, p->name))
				continue;
			if (r->line > p->line)
				return fail_at(ld, (int)r->line,
					       "router-pool \"%s\" has the name of pool \"%s\" (line %u)",
					       r->name, p->name, p->line);
			return fail_at(ld, (int)p->line,
				       "pool \"%s\" has the name of router-pool \"%s\" (line %u)",
				       p->name, r->name, r->line);
		}
	return 0;
}

static int read_sections(struct load *ld, cfg_t *cfg, struct vp_config *c)
{
	size_t np = cfg_size(cfg, "pool"), nr = cfg_size(cfg, "router-pool");
	size_t ns = cfg_size(cfg, "client");

	if (!np)
		return fail_at(ld, ld->scan.last_line, "no pool defined");
	c->pools = calloc(np, sizeof(*c->pools));
	c->routers = calloc(nr + 1, sizeof(*c->routers));
	c->statics = calloc(ns + 1, sizeof(*c->statics));
	if (!c->pools || !c->routers || !c->statics)
		return -1;
	/* Count each section before reading it, so that a failure frees it too. */
	for (size_t i = 0; i < np; ++i) {
		cfg_t *sec = cfg_getnsec(cfg, "pool", (unsigned)i);

		c->n_pools++;
		if (read_pool(ld, sec, section_line(ld, S_POOL, i, sec), &c->pools[i]))
			return -1;
	}
	for (size_t i = 0; i < nr; ++i) {
		cfg_t *sec = cfg_getnsec(cfg, "router-pool", (unsigned)i);

		c->n_routers++;
		if (read_router(ld, sec, section_line(ld, S_ROUTER, i, sec), &c->routers[i]))
			return -1;
	}
	if (check_names(ld, c) || check_overlaps(ld, cfg, c))
		return -1;
	for (size_t i = 0; i < ns; ++i) {
		cfg_t *sec = cfg_getnsec(cfg, "client", (unsigned)i);

		c->n_statics++;
		if (read_static(ld, c, sec, section_line(ld, S_CLIENT, i, sec), &c->statics[i]))
			return -1;
	}
	return check_static_clash(ld, cfg, c);
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
		CFG_PTR_CB("prefix", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("network6", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("prefix6", NULL, CFGF_NODEFAULT, cb_value, value_free),
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
		CFG_PTR_CB("state-dir", (char *)"/var/lib/openvpn/vpnpool", CFGF_NONE, cb_value,
			   value_free),
		CFG_PTR_CB("usage-log", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("identity", (char *)"common_name", CFGF_NONE, cb_value, value_free),
		CFG_INT_CB("hold-time", 0, CFGF_NONE, cb_hold_time),
		CFG_INT_LIST_CB("warn-at", (char *)"{80, 95}", CFGF_NONE, cb_percent),
		CFG_INT_CB("topology", VP_TOPO_AUTO, CFGF_NONE, cb_topology),
		CFG_INT_CB("host-routes", VP_HOST_ROUTES_AUTO, CFGF_NONE, cb_host_routes),
		CFG_PTR_CB("metrics-file", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("instance", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_BOOL("fsync", cfg_false, CFGF_NONE),
		CFG_PTR_CB("store", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_PTR_CB("node", NULL, CFGF_NODEFAULT, cb_value, value_free),
		CFG_INT_CB("store-timeout", 5, CFGF_NONE, cb_store_timeout),
		CFG_INT_CB("node-timeout", 60, CFGF_NONE, cb_node_timeout),
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

static int parse(struct load *ld, const char *text, struct vp_config *out)
{
	cfg_t *cfg;
	int rc, ret = -1;

	if (scan_text(&ld->scan, text))
		return -1;
	active = ld;
	cfg = schema();
	if (!cfg)
		goto out_inactive;
	rc = cfg_parse_buf(cfg, ld->scan.text);
	/* An unclosed string or comment eats the rest of the file: any error
	 * libconfuse found before it comes first. */
	if (ld->scan.bad_line && (rc == CFG_SUCCESS || ld->err_line >= ld->scan.bad_line)) {
		ld->err[0] = '\0';
		fail_at(ld, ld->scan.bad_line, "%s", ld->scan.bad_what);
	} else if (rc == CFG_SUCCESS && ld->scan.open_brace_line) {
		fail_at(ld, ld->scan.open_brace_line, "this { is never closed");
	} else if (rc == CFG_SUCCESS && !read_root(ld, cfg, out) && !read_sections(ld, cfg, out)) {
		ret = 0;
	} else if (rc != CFG_SUCCESS) {
		fail_at(ld, ld->scan.last_line, "cannot parse");
	}
	cfg_free(cfg);
out_inactive:
	active = NULL;
	return ret;
}

int vp_conf_load_buf(struct vp_config *out, const char *text, const char *name, char *err,
		     size_t errlen)
{
	struct load ld = { .file = name ? name : "(config)" };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse(&ld, text, out);
	if (ret) {
		snprintf(err, errlen, "%s", ld.err[0] ? ld.err : "out of memory");
		vp_config_free(out);
	}
	free(ld.scan.text);
	free(ld.scan.marks);
	return ret;
}

/* The whole file, NUL-terminated, and its length; -1 with err set. */
static int read_file(const char *path, const struct vp_fs *fs, char **text, size_t *len,
		     char *err, size_t errlen)
{
	struct stat st;
	ssize_t n = -1;
	int fd;

	fs = vp_fs_or_direct(fs);
	fd = fs->open(fs->ud, path, O_RDONLY, 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-fd));
		goto out_close;
	}
	if (fstat(fd, &st)) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > MAX_CONF_BYTES) {
		snprintf(err, errlen, "%s: cannot open: not a regular file of at most %d MiB", path,
			 MAX_CONF_BYTES >> 20);
		goto out_close;
	}
	*text = malloc((size_t)st.st_size + 1);
	if (!*text) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(ENOMEM));
		goto out_close;
	}
	errno = EIO;
	n = read(fd, *text, (size_t)st.st_size);
	if (n != st.st_size) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		free(*text);
		*text = NULL;
		n = -1;
	} else {
		(*text)[n] = '\0';
		*len = (size_t)n;
	}
out_close:
	if (fd >= 0)
		close(fd);
	return n < 0 ? -1 : 0;
}

int vp_conf_load(struct vp_config *out, const char *path, char *err, size_t errlen)
{
	return vp_conf_load_fs(out, path, NULL, err, errlen);
}

int vp_conf_load_fs(struct vp_config *out, const char *path, const struct vp_fs *fs, char *err,
		    size_t errlen)
{
	char *text = NULL, *nul;
	size_t len = 0;
	int ret = -1, line = 1;

	memset(out, 0, sizeof(*out));
	if (read_file(path, fs, &text, &len, err, errlen))
		return -1;
	nul = memchr(text, '\0', len);
	if (nul) {
		for (const char *p = text; p < nul; ++p)
			line += *p == '\n';
		snprintf(err, errlen, "%s:%d: a NUL byte (this is not a text file)", path, line);
	} else {
		ret = vp_conf_load_buf(out, text, path, err, errlen);
	}
	free(text);
	return ret;
}
