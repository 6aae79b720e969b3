/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/fmt.h"

char *vp_fmt_bytes(uint64_t bytes, char buf[VP_FMT_LEN])
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, VP_FMT_LEN, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1023.95 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, VP_FMT_LEN, "%.1f %s", v, unit[u]);
	return buf;
}

char *vp_fmt_duration(int64_t s, char buf[VP_FMT_LEN])
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, VP_FMT_LEN, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, VP_FMT_LEN, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, VP_FMT_LEN, "%lldh%02lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else
		snprintf(buf, VP_FMT_LEN, "%lldd%02lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
	return buf;
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static void civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

/* ISO 8601 UTC without printf (the leases listing prints millions), for
 * years 1-9999. */
static char *fmt_iso(int64_t t, char buf[VP_FMT_LEN], bool short_form)
{
	int64_t days = t / 86400, secs = t % 86400, y;
	unsigned m, d;
	char *p = buf;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	civil(days, &y, &m, &d);
	p = put2(p, (unsigned)(y / 100));
	p = put2(p, (unsigned)(y % 100));
	*p++ = '-';
	p = put2(p, m);
	*p++ = '-';
	p = put2(p, d);
	*p++ = short_form ? ' ' : 'T';
	p = put2(p, (unsigned)(secs / 3600));
	*p++ = ':';
	p = put2(p, (unsigned)(secs / 60 % 60));
	if (!short_form) {
		*p++ = ':';
		p = put2(p, (unsigned)(secs % 60));
		*p++ = 'Z';
	}
	*p = '\0';
	return buf;
}

void vp_strbuf_addu(struct vp_strbuf *b, uint64_t v)
{
	char digits[20], *p = digits + sizeof(digits);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	vp_strbuf_add(b, p, (size_t)(digits + sizeof(digits) - p));
}

static char *fmt_tm(int64_t t, bool short_form, char buf[VP_FMT_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t)
		snprintf(buf, VP_FMT_LEN, "-");
	else if (!gmtime_r(&tt, &tm) ||
		 !(short_form ? strftime(buf, VP_FMT_LEN, "%Y-%m-%d %H:%M", &tm)
			      : strftime(buf, VP_FMT_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm)))
		snprintf(buf, VP_FMT_LEN, "%lld", (long long)t);
	return buf;
}

char *vp_fmt_time(int64_t t, char buf[VP_FMT_LEN])
{
	if (!t || t < -62135596800LL || t > 253402300799LL)	/* years 1-9999 */
		return fmt_tm(t, false, buf);
	return fmt_iso(t, buf, false);
}

char *vp_fmt_time_short(int64_t t, char buf[VP_FMT_LEN])
{
	if (!t || t < -62135596800LL || t > 253402300799LL)
		return fmt_tm(t, true, buf);
	return fmt_iso(t, buf, true);
}

static bool parse_tm(const char *text, const char *fmt, int64_t *out)
{
	struct tm tm = { 0 };
	const char *end = strptime(text, fmt, &tm);

	if (!end || *end)
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

bool vp_parse_time(const char *text, int64_t now, int64_t *out)
{
	static const char *const fmts[] = {
		"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
		"%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d",
	};
	char *end;
	long long n;

	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); ++i)
		if (parse_tm(text, fmts[i], out))
			return true;
	if (text[0] == '@' && text[1] >= '0' && text[1] <= '9') {
		n = strtoll(text + 1, &end, 10);
		*out = n;
		return !*end;
	}
	if (text[0] < '0' || text[0] > '9')
		return false;
	n = strtoll(text, &end, 10);
	if (n < 0 || n > 100LL * 365 * 86400 || end[0] == '\0' || end[1] != '\0')
		return false;
	switch (*end) {
	case 's': *out = now - n; return true;
	case 'm': *out = now - n * 60; return true;
	case 'h': *out = now - n * 3600; return true;
	case 'd': *out = now - n * 86400; return true;
	case 'w': *out = now - n * 7 * 86400; return true;
	default: return false;
	}
}

const char *vp_fmt_cell(struct vp_strbuf *b, const void *value, size_t len)
{
	vp_strbuf_reset(b);
	vp_logfmt_value(b, value, len);
	if (b->oom)
		return "?";
	if (b->len > VP_CELL_MAX) {
		b->len = VP_CELL_MAX - 3;
		vp_strbuf_add(b, "...", 3);
	}
	return b->s;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not one. */
static size_t utf8_len(const uint8_t *p, size_t left)
{
	uint32_t cp;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; ++i) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void vp_json_add(struct vp_strbuf *b, const void *value, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *v = value;
	size_t i = 0, run = 0;

	vp_strbuf_add(b, "\"", 1);
	while (i < len) {
		size_t n = utf8_len(v + i, len - i);
		char esc[6] = { '\\', 'u', '0', '0', 0, 0 };

		if (n > 1 || (n == 1 && v[i] >= 0x20 && v[i] != '"' && v[i] != '\\' && v[i] != 0x7f)) {
			run += n;
			i += n;
			continue;
		}
		vp_strbuf_add(b, v + i - run, run);
		run = 0;
		if (v[i] == '"' || v[i] == '\\') {
			esc[1] = (char)v[i];
			vp_strbuf_add(b, esc, 2);
		} else if (v[i] == '\n') {
			vp_strbuf_add(b, "\\n", 2);
		} else if (v[i] == '\t') {
			vp_strbuf_add(b, "\\t", 2);
		} else {
			esc[4] = hex[v[i] >> 4];
			esc[5] = hex[v[i] & 15];
			vp_strbuf_add(b, esc, 6);
		}
		i++;
	}
	vp_strbuf_add(b, v + i - run, run);
	vp_strbuf_add(b, "\"", 1);
}

void vp_json_adds(struct vp_strbuf *b, const char *s)
{
	if (s)
		vp_json_add(b, s, strlen(s));
	else
		vp_strbuf_add(b, "null", 4);
}

void vp_json_string(FILE *out, const void *value, size_t len)
{
	struct vp_strbuf b = { 0 };

	vp_json_add(&b, value, len);
	fwrite(b.s, 1, b.len, out);
	vp_strbuf_free(&b);
}

void vp_json_str(FILE *out, const char *s)
{
	if (s)
		vp_json_string(out, s, strlen(s));
	else
		fputs("null", out);
}

struct vp_table {
	size_t ncols, n, cap;		/* n cells so far, row-major; row 0: headers */
	char **cells;
	bool *right;
	bool oom;
};

static void table_push(struct vp_table *t, const char *text)
{
	char *copy;

	if (t->oom)
		return;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **cells = realloc(t->cells, cap * sizeof(*cells));

		if (!cells) {
			t->oom = true;
			return;
		}
		t->cells = cells;
		t->cap = cap;
	}
	copy = strdup(text ? text : "");
	if (!copy) {
		t->oom = true;
		return;
	}
	t->cells[t->n++] = copy;
}

struct vp_table *vp_table_new(size_t ncols, const char *const *headers)
{
	struct vp_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->right = calloc(ncols + 1, sizeof(*t->right));
	if (!t->right) {
		free(t);
		return NULL;
	}
	for (size_t c = 0; c < ncols; ++c) {
		t->right[c] = headers[c][0] == '>';
		table_push(t, headers[c] + t->right[c]);
	}
	return t;
}

void vp_table_row(struct vp_table *t, const char *const *cells)
{
	for (size_t c = 0; c < t->ncols; ++c)
		table_push(t, cells[c]);
}

int vp_table_print(const struct vp_table *t, FILE *out)
{
	struct vp_strbuf line = { 0 };
	size_t *width;

	if (t->oom || t->n % t->ncols)
		return -1;
	width = calloc(t->ncols, sizeof(*width));
	if (!width)
		return -1;
	for (size_t i = 0; i < t->n; ++i) {
		size_t len = strlen(t->cells[i]);

		if (len > width[i % t->ncols])
			width[i % t->ncols] = len;
	}
	for (size_t i = 0; i < t->n; ++i) {
		size_t c = i % t->ncols, len = strlen(t->cells[i]);

		if (c)
			vp_strbuf_add(&line, "  ", 2);
		for (size_t k = len; t->right[c] && k < width[c]; ++k)
			vp_strbuf_add(&line, " ", 1);
		vp_strbuf_add(&line, t->cells[i], len);
		for (size_t k = len; !t->right[c] && k < width[c]; ++k)
			vp_strbuf_add(&line, " ", 1);
		if (c == t->ncols - 1) {
			while (line.len && line.s[line.len - 1] == ' ')
				line.len--;
			if (line.oom)
				break;
			fwrite(line.s, 1, line.len, out);
			putc('\n', out);
			vp_strbuf_reset(&line);
		}
	}
	free(width);
	vp_strbuf_free(&line);
	return 0;
}

void vp_table_free(struct vp_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; ++i)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
}

/* ---- pools --------------------------------------------------------------------- */

double vp_fmt_pool_percent(const struct vp_pool_usage *u)
{
	return u->size ? 100.0 * (double)(u->online + u->held) / (double)u->size : 0.0;
}

void vp_fmt_pool_json(struct vp_strbuf *b, const char *name, const struct vp_prefix *net,
		      const struct vp_prefix *net6, unsigned prefix, unsigned prefix6,
		      const struct vp_pool_usage *u)
{
	char n[VP_PREFIX_STRLEN];

	vp_strbuf_add(b, "{\"name\":", 8);
	vp_json_adds(b, name);
	vp_strbuf_addf(b, ",\"network\":");
	vp_json_adds(b, net && net->addr.family ? vp_prefix_format(net, n) : NULL);
	vp_strbuf_addf(b, ",\"network6\":");
	vp_json_adds(b, net6 ? vp_prefix_format(net6, n) : NULL);
	if (prefix)
		vp_strbuf_addf(b, ",\"prefix\":%u", prefix);
	if (prefix6)
		vp_strbuf_addf(b, ",\"prefix6\":%u", prefix6);
	vp_strbuf_addf(b, ",\"size\":%llu,\"online\":%llu,\"held\":%llu,\"free\":%llu,\"percent\":%.2f}",
		       (unsigned long long)u->size, (unsigned long long)u->online,
		       (unsigned long long)u->held, (unsigned long long)u->free, vp_fmt_pool_percent(u));
}

void vp_fmt_pool_row(struct vp_table *tab, const char *name, const char *kind, const char *net,
		     const struct vp_pool_usage *u)
{
	char size[24], on[24], held[24], fr[24], pc[24];
	const char *cells[] = { name, kind, net, size, on, held, fr, pc };

	snprintf(size, sizeof(size), "%llu", (unsigned long long)u->size);
	snprintf(on, sizeof(on), "%llu", (unsigned long long)u->online);
	snprintf(held, sizeof(held), "%llu", (unsigned long long)u->held);
	snprintf(fr, sizeof(fr), "%llu", (unsigned long long)u->free);
	snprintf(pc, sizeof(pc), "%.1f%%", vp_fmt_pool_percent(u));
	vp_table_row(tab, cells);
}
