/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logfmt.h"

void vp_strbuf_free(struct vp_strbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

void vp_strbuf_reset(struct vp_strbuf *b)
{
	b->len = 0;
	b->oom = false;
	if (b->s)
		b->s[0] = '\0';
}

static bool strbuf_reserve(struct vp_strbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 256;
	char *s;

	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	while (cap < b->len + more + 1)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void vp_strbuf_add(struct vp_strbuf *b, const void *data, size_t len)
{
	if (!strbuf_reserve(b, len))
		return;
	memcpy(b->s + b->len, data, len);
	b->len += len;
	b->s[b->len] = '\0';
}

void vp_strbuf_addf(struct vp_strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* Most lines fit what is left: format once. */
	if (!b->oom && b->cap > b->len + 1) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->s[b->len] = '\0';
	}
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !strbuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static bool needs_quotes(const uint8_t *v, size_t len)
{
	if (!len)
		return true;
	for (size_t i = 0; i < len; ++i)
		if (v[i] <= ' ' || v[i] >= 0x7f || v[i] == '"' || v[i] == '=' || v[i] == '\\')
			return true;
	return false;
}

void vp_logfmt_value(struct vp_strbuf *b, const void *value, size_t len)
{
	const uint8_t *v = value;

	if (!needs_quotes(v, len)) {
		vp_strbuf_add(b, v, len);
		return;
	}
	vp_strbuf_add(b, "\"", 1);
	for (size_t i = 0; i < len; ++i) {
		if (v[i] == '"' || v[i] == '\\') {
			char esc[2] = { '\\', (char)v[i] };

			vp_strbuf_add(b, esc, 2);
		} else if (v[i] < ' ' || v[i] >= 0x7f) {
			vp_strbuf_addf(b, "\\x%02x", v[i]);
		} else {
			vp_strbuf_add(b, &v[i], 1);
		}
	}
	vp_strbuf_add(b, "\"", 1);
}

void vp_logfmt_add(struct vp_strbuf *b, const char *key, const void *value, size_t len)
{
	if (b->len)
		vp_strbuf_add(b, " ", 1);
	vp_strbuf_add(b, key, strlen(key));
	vp_strbuf_add(b, "=", 1);
	vp_logfmt_value(b, value, len);
}

void vp_logfmt_adds(struct vp_strbuf *b, const char *key, const char *value)
{
	vp_logfmt_add(b, key, value, strlen(value));
}

void vp_logfmt_addu(struct vp_strbuf *b, const char *key, unsigned long long value)
{
	char num[24], *p = num + sizeof(num);

	do {
		*--p = (char)('0' + value % 10);
		value /= 10;
	} while (value);
	vp_logfmt_add(b, key, p, (size_t)(num + sizeof(num) - p));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode a quoted value starting after its opening quote. */
static bool read_quoted(const char **cursor, struct vp_strbuf *val)
{
	const char *p = *cursor;

	for (;; ++p) {
		if (*p == '\0' || *p == '\n')
			return false;
		if (*p == '"')
			break;
		if (*p != '\\') {
			vp_strbuf_add(val, p, 1);
			continue;
		}
		++p;
		if (*p == '"' || *p == '\\') {
			vp_strbuf_add(val, p, 1);
		} else if (*p == 'x' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
			char c = (char)(hexval(p[1]) << 4 | hexval(p[2]));

			vp_strbuf_add(val, &c, 1);
			p += 2;
		} else {
			return false;
		}
	}
	*cursor = p + 1;
	return true;
}

bool vp_logfmt_next(const char **cursor, char *key, size_t keycap, struct vp_strbuf *val)
{
	const char *p = *cursor, *k;
	size_t klen;

	vp_strbuf_reset(val);
	vp_strbuf_add(val, "", 0);
	while (*p == ' ')
		++p;
	if (*p == '\0' || *p == '\n' || *p == '\r')
		return false;
	for (k = p; *p && *p != '=' && *p != ' ' && *p != '\n'; ++p)
		;
	if (*p != '=' || p == k || !keycap)
		return false;
	klen = (size_t)(p - k) < keycap - 1 ? (size_t)(p - k) : keycap - 1;
	memcpy(key, k, klen);
	key[klen] = '\0';
	++p;
	if (*p == '"') {
		++p;
		if (!read_quoted(&p, val))
			return false;
		if (*p && *p != ' ' && *p != '\n' && *p != '\r')
			return false;
	} else {
		const char *v = p;

		while (*p && *p != ' ' && *p != '\n' && *p != '\r')
			++p;
		vp_strbuf_add(val, v, (size_t)(p - v));
	}
	*cursor = p;
	return !val->oom;
}
