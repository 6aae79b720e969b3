/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the command prints: human units, times, table cells and columns, and
 * JSON strings.  Everything a client controls goes through vp_fmt_cell()
 * (tables) or vp_json_string() (JSON), so no identity can break a line, a
 * column or a document.
 */
#ifndef VP_CLI_FMT_H
#define VP_CLI_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/addr.h"
#include "core/logfmt.h"
#include "core/space.h"

#define VP_FMT_LEN 32
#define VP_CELL_MAX 48			/* characters of a client-given value in a table */

/* Append v in decimal (without printf: fast). */
void vp_strbuf_addu(struct vp_strbuf *b, uint64_t v);
/* "0 B", "999 B", "1.0 KiB", "1.2 GiB" (binary units, one decimal). */
char *vp_fmt_bytes(uint64_t bytes, char buf[VP_FMT_LEN]);
/* "0s", "59s", "3m12s", "3h12m", "2d4h" (two largest units). */
char *vp_fmt_duration(int64_t seconds, char buf[VP_FMT_LEN]);
/* "2026-11-25T04:01:29Z"; "-" for 0. */
char *vp_fmt_time(int64_t t, char buf[VP_FMT_LEN]);
/* "2026-11-25 04:01" for tables; "-" for 0. */
char *vp_fmt_time_short(int64_t t, char buf[VP_FMT_LEN]);
/* Parse a time for --since: "2026-11-25T04:01:29Z", "2026-11-25 04:01",
 * "2026-11-25", a Unix time "@1764043289", or an age back from now: "90s",
 * "30m", "12h", "7d".  false when it is none of these. */
bool vp_parse_time(const char *text, int64_t now, int64_t *out);

/* A value as a table cell: escaped like logfmt (quoted when it holds a
 * space, '"', '=', '\' or a byte outside printable ASCII; \xNN escapes), then
 * cut to VP_CELL_MAX characters ending in "...".  b is reset first. */
const char *vp_fmt_cell(struct vp_strbuf *b, const void *value, size_t len);

/* A JSON string of len bytes, with its quotes.  Control characters, '"' and
 * '\' are escaped; valid UTF-8 passes through; a byte that is not part of
 * valid UTF-8 becomes \u00XX (the byte read as Latin-1), so the output is
 * always valid JSON.  Lossy once parsed: a parser reads that \u00XX as the
 * character U+00XX (documented in vpnpool(8)). */
void vp_json_add(struct vp_strbuf *b, const void *value, size_t len);
void vp_json_adds(struct vp_strbuf *b, const char *s);	/* NULL: null */
void vp_json_string(FILE *out, const void *value, size_t len);
void vp_json_str(FILE *out, const char *s);	/* NULL: null */

/* A table of text cells, printed with aligned columns. */
/* A pool's use: online and held of its size, in percent (0 when empty). */
double vp_fmt_pool_percent(const struct vp_pool_usage *u);
/* A pool as a JSON object of `status --json` (net, net6 may be NULL;
 * prefix, prefix6 0: not a router pool's). */
void vp_fmt_pool_json(struct vp_strbuf *b, const char *name, const struct vp_prefix *net,
		      const struct vp_prefix *net6, unsigned prefix, unsigned prefix6,
		      const struct vp_pool_usage *u);

struct vp_table;
/* Columns named by headers; a header starting with '>' is right-aligned (the
 * '>' is not printed).  NULL on ENOMEM. */
struct vp_table *vp_table_new(size_t ncols, const char *const *headers);
/* Add a row of ncols cells (copied). */
void vp_table_row(struct vp_table *t, const char *const *cells);
/* Print header and rows, columns two spaces apart, no trailing blanks.  -1 if
 * memory ran out while rows were added (then nothing is printed). */
int vp_table_print(const struct vp_table *t, FILE *out);
void vp_table_free(struct vp_table *t);
/* A pool as a row of `status`: NAME KIND NETWORK SIZE ONLINE HELD FREE USED. */
void vp_fmt_pool_row(struct vp_table *t, const char *name, const char *kind, const char *net,
		     const struct vp_pool_usage *u);

#endif
