/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * logfmt lines (key=value key="quoted value"), as the usage log of
 * openvpn-plugin-vpnpool(8) uses them: a value with a space, '"', '=', '\' or a byte outside printable
 * ASCII is double-quoted, with \" \\ and \xNN escapes, so that no value a
 * client controls can end a line or forge a key.
 */
#ifndef VP_LOGFMT_H
#define VP_LOGFMT_H

#include <stdbool.h>
#include <stddef.h>

/* A growable string; a failed allocation sets oom and drops what follows. */
struct vp_strbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

void vp_strbuf_free(struct vp_strbuf *b);
void vp_strbuf_reset(struct vp_strbuf *b);
void vp_strbuf_add(struct vp_strbuf *b, const void *data, size_t len);
void vp_strbuf_addf(struct vp_strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append value alone, quoted and escaped if it needs to be. */
void vp_logfmt_value(struct vp_strbuf *b, const void *value, size_t len);
/* Append "key=value" (a space first unless b is empty), value of len bytes
 * escaped as needed. */
void vp_logfmt_add(struct vp_strbuf *b, const char *key, const void *value, size_t len);
void vp_logfmt_adds(struct vp_strbuf *b, const char *key, const char *value);
void vp_logfmt_addu(struct vp_strbuf *b, const char *key, unsigned long long value);

/* Read the next pair of a line at *cursor: key into key (NUL-terminated,
 * truncated to keycap), value decoded into val (reset first; may hold NUL
 * bytes: val->len counts).  Advances *cursor.  false at the end of the line
 * or on malformed input (unterminated quote, bad escape, missing '='). */
bool vp_logfmt_next(const char **cursor, char *key, size_t keycap, struct vp_strbuf *val);

#endif
