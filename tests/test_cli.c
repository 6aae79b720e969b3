/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the command prints: units, durations, times, table cells and columns,
 * JSON strings, Prometheus labels; the engine read only, as it reads the
 * state; and the commands run in-process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "cli/fmt.h"
#include "conf/load.h"
#include "core/ipp.h"
#include "core/space.h"
#include "core/store.h"
#include "plugin/metrics.h"
#include "tests/testlib.h"

static char *captured(void (*fn)(FILE *, const void *), const void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	fn(f, arg);
	fclose(f);
	return text;
}

static void bytes__binary_units_one_decimal(void **state)
{
	char b[VP_FMT_LEN];

	assert_string_equal(vp_fmt_bytes(0, b), "0 B");
	assert_string_equal(vp_fmt_bytes(1023, b), "1023 B");
	assert_string_equal(vp_fmt_bytes(1024, b), "1.0 KiB");
	assert_string_equal(vp_fmt_bytes(1536, b), "1.5 KiB");
	assert_string_equal(vp_fmt_bytes(1288490189, b), "1.2 GiB");
	assert_string_equal(vp_fmt_bytes(1048575, b), "1.0 MiB");	/* not "1024.0 KiB" */
	assert_string_equal(vp_fmt_bytes(UINT64_MAX, b), "16.0 EiB");
}

static void duration__two_largest_units(void **state)
{
	char b[VP_FMT_LEN];

	assert_string_equal(vp_fmt_duration(0, b), "0s");
	assert_string_equal(vp_fmt_duration(59, b), "59s");
	assert_string_equal(vp_fmt_duration(60, b), "1m00s");
	assert_string_equal(vp_fmt_duration(192, b), "3m12s");
	assert_string_equal(vp_fmt_duration(3 * 3600 + 12 * 60 + 5, b), "3h12m");
	assert_string_equal(vp_fmt_duration(2 * 86400 + 4 * 3600, b), "2d04h");
	assert_string_equal(vp_fmt_duration(-5, b), "0s");
}

static void time__iso_utc_and_short(void **state)
{
	char b[VP_FMT_LEN];

	assert_string_equal(vp_fmt_time(1795579289, b), "2026-11-25T04:01:29Z");
	assert_string_equal(vp_fmt_time_short(1795579289, b), "2026-11-25 04:01");
	assert_string_equal(vp_fmt_time(951782400, b), "2000-02-29T00:00:00Z");
	assert_string_equal(vp_fmt_time(-1, b), "1969-12-31T23:59:59Z");
	assert_string_equal(vp_fmt_time(0, b), "-");
}

static void parse_time__absolute_unix_and_ages(void **state)
{
	int64_t t;

	assert_true(vp_parse_time("2026-11-25T04:01:29Z", 0, &t));
	assert_int_equal(t, 1795579289);
	assert_true(vp_parse_time("2026-11-25 04:01", 0, &t));
	assert_int_equal(t, 1795579260);
	assert_true(vp_parse_time("2026-11-25", 0, &t));
	assert_int_equal(t, 1795564800);
	assert_true(vp_parse_time("@1795579289", 0, &t));
	assert_int_equal(t, 1795579289);
	assert_true(vp_parse_time("12h", 100000, &t));
	assert_int_equal(t, 100000 - 12 * 3600);
	assert_true(vp_parse_time("7d", 1000000, &t));
	assert_int_equal(t, 1000000 - 7 * 86400);
	assert_false(vp_parse_time("yesterday", 0, &t));
	assert_false(vp_parse_time("12x", 0, &t));
	assert_false(vp_parse_time("2026-11-25T04:01:29Zjunk", 0, &t));
	assert_false(vp_parse_time("", 0, &t));
}

static void cell__hostile_identity__quoted_escaped_and_cut(void **state)
{
	struct vp_strbuf b = { 0 };
	char longid[5000];

	assert_string_equal(vp_fmt_cell(&b, "alice", 5), "alice");
	assert_string_equal(vp_fmt_cell(&b, "evil \"cn\"\n\\", 11), "\"evil \\\"cn\\\"\\x0a\\\\\"");
	assert_string_equal(vp_fmt_cell(&b, "caf\xc3\xa9", 5), "\"caf\\xc3\\xa9\"");
	assert_string_equal(vp_fmt_cell(&b, "a\0b", 3), "\"a\\x00b\"");
	memset(longid, 'x', sizeof(longid));
	vp_fmt_cell(&b, longid, sizeof(longid));
	assert_int_equal(strlen(b.s), VP_CELL_MAX);
	assert_string_equal(b.s + VP_CELL_MAX - 3, "...");
	vp_strbuf_free(&b);
}

static void print_table(FILE *f, const void *arg)
{
	static const char *const head[] = { "NAME", ">SIZE", "NOTE" };
	static const char *const r1[] = { "staff", "65279", "x" };
	static const char *const r2[] = { "a", "4", "" };
	struct vp_table *t = vp_table_new(3, head);

	(void)arg;
	vp_table_row(t, r1);
	vp_table_row(t, r2);
	assert_int_equal(vp_table_print(t, f), 0);
	vp_table_free(t);
}

static void table__columns_aligned_numbers_right_no_trailing_blanks(void **state)
{
	char *text = captured(print_table, NULL);

	assert_string_equal(text, "NAME    SIZE  NOTE\n"
				  "staff  65279  x\n"
				  "a          4\n");
	free(text);
}

static char *json_of(const void *v, size_t len)
{
	struct vp_strbuf b = { 0 };
	char *s;

	vp_json_add(&b, v, len);
	s = strdup(b.s);
	vp_strbuf_free(&b);
	return s;
}

/* Valid UTF-8 with no raw control byte, as a JSON string must be. */
static void assert_json_clean(const char *s)
{
	for (const uint8_t *p = (const uint8_t *)s; *p; ++p) {
		assert_true(*p >= 0x20 && *p != 0x7f);
		if (*p >= 0x80) {
			size_t n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;

			for (size_t k = 1; k < n; ++k)
				assert_int_equal(p[k] & 0xc0, 0x80);
			p += n - 1;
		}
	}
}

static void json__escapes_controls_quotes_and_backslash(void **state)
{
	char *s = json_of("a\"b\\c\nd\te\x01\x7f", 11);

	assert_string_equal(s, "\"a\\\"b\\\\c\\nd\\te\\u0001\\u007f\"");
	free(s);
}

static void json__valid_utf8_passes_invalid_bytes_become_u00xx(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{ "caf\xc3\xa9", 5, "\"caf\xc3\xa9\"" },
		{ "\xe2\x82\xac", 3, "\"\xe2\x82\xac\"" },
		{ "\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"" },
		{ "\xff", 1, "\"\\u00ff\"" },
		{ "\xc3", 1, "\"\\u00c3\"" },			/* cut short */
		{ "\xc0\xaf", 2, "\"\\u00c0\\u00af\"" },	/* overlong */
		{ "\xed\xa0\x80", 3, "\"\\u00ed\\u00a0\\u0080\"" },	/* surrogate */
		{ "\xf4\x90\x80\x80", 4, "\"\\u00f4\\u0090\\u0080\\u0080\"" },	/* > U+10FFFF */
		{ "a\0b", 3, "\"a\\u0000b\"" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
		char *s = json_of(cases[i].in, cases[i].len);

		assert_string_equal(s, cases[i].out);
		assert_json_clean(s);
		free(s);
	}
}

static void json__every_byte__clean_output(void **state)
{
	uint8_t all[256];
	char *s;

	for (int i = 0; i < 256; ++i)
		all[i] = (uint8_t)i;
	s = json_of(all, sizeof(all));
	assert_json_clean(s);
	free(s);
}

static void metrics_label__escaped_per_prometheus(void **state)
{
	struct vp_strbuf b = { 0 };

	vp_metrics_label(&b, "st\"a\\ff\nx");
	assert_string_equal(b.s, "st\\\"a\\\\ff\\nx");
	vp_strbuf_reset(&b);
	vp_metrics_label(&b, "caf\xc3\xa9\xff");
	assert_string_equal(b.s, "caf\xc3\xa9\xef\xbf\xbd");
	vp_strbuf_free(&b);
}

/* ---- the engine read only --------------------------------------------------- */

static void put(struct vp_store *s, const char *id, uint16_t slot, uint8_t state, uint32_t a4)
{
	struct vp_lease_rec r = {
		.identity = (const uint8_t *)id, .identity_len = strlen(id), .slot = slot,
		.state = state, .sessions = 1, .created = 100, .since = 200,
		.addr4 = vp_addr_v4(a4), .instance = VP_INSTANCE_NONE,
	};

	assert_int_equal(vp_store_put(s, &r), 0);
}

struct seen {
	char ids[16][32];
	int pools[16];
	char instances[16][VP_INSTANCE_NAME_MAX];
	bool online[16];
	size_t n;
};

static struct vp_space *seen_space;	/* whose instance names collect() looks up */

static int collect(void *ud, const struct vp_space_lease *l)
{
	struct seen *s = ud;
	const char *inst = seen_space ? vp_space_slot_name(seen_space, l->rec.instance) : NULL;

	assert_true(s->n < 16);
	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%.*s#%u", (int)l->rec.identity_len,
		 (const char *)l->rec.identity, l->rec.slot);
	snprintf(s->instances[s->n], sizeof(s->instances[0]), "%s", inst ? inst : "-");
	s->online[s->n] = l->rec.state == VP_LEASE_ONLINE;
	s->pools[s->n++] = l->pool;
	return 0;
}

/* The engine opened read only on c's state, placed for server (NULL: the
 * config's topology and no address, as the command without a server file). */
static int ro_open(struct vp_space **out, const struct vp_config *c, const struct vp_server *server,
		   struct tl_world *w, struct vp_store_report *report)
{
	struct vp_space_options o = tl_options(c, w);
	struct vp_server none = { .topology = VP_TOPO_SUBNET };
	int ret;

	o.read_only = true;
	ret = vp_space_open(out, &o, report, NULL);
	if (!ret) {
		assert_int_equal(vp_space_set_server(*out, server ? server : &none), 0);
		seen_space = *out;
	}
	return ret;
}

static void ro_close(struct vp_space *space)
{
	vp_space_close(space);
	seen_space = NULL;
}

/* The bytes of a file (NUL-terminated; length in *len), or NULL. */
static char *file_bytes(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t n = 0;

	if (!f)
		return NULL;
	b = malloc(1 << 20);
	assert_non_null(b);
	n = fread(b, 1, (1 << 20) - 1, f);
	fclose(f);
	b[n] = '\0';
	*len = n;
	return b;
}

static bool exists(const char *dir, const char *name)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static void read_only__last_record_wins_counts_placed_leases_not_reservations(void **state)
{
	char dir[] = "/tmp/vpnpool-test-cli.XXXXXX", text[1024], err[512];
	struct vp_config c;
	struct vp_store *st;
	struct vp_space *v;
	struct vp_pool_usage u;
	struct tl_world w = { .now = 1000 };
	struct seen seen = { 0 };
	uint64_t online, held;

	assert_non_null(mkdtemp(dir));
	snprintf(text, sizeof(text),
		 "state-dir = \"%s\"\n"
		 "pool \"a\" { network = \"10.8.0.0/24\" }\n"
		 "pool \"b\" { network = \"10.8.1.0/24\"\n exclude = {\"10.8.1.100-10.8.1.199\"} }\n"
		 "client \"alice\" { address = \"10.8.0.50\" }\n", dir);
	assert_int_equal(vp_conf_load_buf(&c, text, "t.conf", err, sizeof(err)), 0);
	assert_int_equal(vp_store_open(&st, dir, false, NULL, NULL, NULL, NULL), 0);
	put(st, "bob", 0, VP_LEASE_ONLINE, 0x0a080105);
	put(st, "carol", 0, VP_LEASE_ONLINE, 0x0a080006);
	put(st, "carol", 0, VP_LEASE_HELD, 0x0a080006);		/* wins */
	put(st, "alice", 0, VP_LEASE_ONLINE, 0x0a080032);	/* reserved: not counted */
	put(st, "dave", 0, VP_LEASE_ONLINE, 0x0a080007);
	assert_int_equal(vp_store_del(st, (const uint8_t *)"dave", 4, 0), 0);
	put(st, "bob", 1, VP_LEASE_ONLINE, 0x0a080008);		/* a second session */
	vp_store_close(st);

	assert_int_equal(ro_open(&v, &c, NULL, &w, NULL), 0);
	assert_int_equal(vp_space_leases(v), 4);
	vp_space_count(v, &online, &held);
	assert_int_equal(online, 3);
	assert_int_equal(held, 1);
	vp_space_pool_usage(v, 0, &u);
	assert_int_equal(u.size, 253);		/* 254 hosts minus alice's reservation */
	assert_int_equal(u.online, 1);
	assert_int_equal(u.held, 1);
	assert_int_equal(u.free, 251);
	vp_space_pool_usage(v, 1, &u);
	assert_int_equal(u.size, 154);		/* 254 minus 100 excluded */
	assert_int_equal(u.online, 1);
	assert_int_equal(vp_space_each_placed(v, true, collect, &seen), 0);
	assert_int_equal(seen.n, 4);
	assert_string_equal(seen.ids[0], "carol#0");	/* pool a by address */
	assert_string_equal(seen.ids[1], "bob#1");
	assert_string_equal(seen.ids[2], "alice#0");
	assert_string_equal(seen.ids[3], "bob#0");
	assert_int_equal(seen.pools[3], 1);
	assert_string_equal(seen.instances[0], "-");	/* written by no instance */
	ro_close(v);
	vp_config_free(&c);
	snprintf(text, sizeof(text), "rm -rf '%s'", dir);
	assert_int_equal(system(text), 0);
}

static void read_only__no_journal_yet__empty_and_nothing_created(void **state)
{
	char text[256], err[512], dir[128];
	struct vp_config c;
	struct vp_space *v;
	struct tl_world w = { .now = 1000 };
	struct stat sb;

	snprintf(dir, sizeof(dir), "/tmp/vpnpool-test-cli-none-%d", (int)getpid());
	snprintf(text, sizeof(text), "state-dir = \"%s\"\n"
		 "pool \"a\" { network = \"10.8.0.0/24\" }\n", dir);
	assert_int_equal(vp_conf_load_buf(&c, text, "t.conf", err, sizeof(err)), 0);
	assert_int_equal(ro_open(&v, &c, NULL, &w, NULL), 0);
	assert_int_equal(vp_space_leases(v), 0);
	assert_false(vp_space_slot_alive(v, 0));
	ro_close(v);
	assert_int_equal(stat(dir, &sb), -1);		/* not created */
	vp_config_free(&c);
}

/* A journal by an instance that was not stopped: two leases, one online. */
static void write_two_leases(const char *dir)
{
	struct vp_store *st;

	assert_int_equal(vp_store_open(&st, dir, false, NULL, NULL, NULL, NULL), 0);
	put(st, "alice", 0, VP_LEASE_ONLINE, 0x0a08000a);
	put(st, "bob", 0, VP_LEASE_HELD, 0x0a08000b);
	vp_store_close(st);
}

static void read_only__every_write_refused_files_left_as_they_were(void **state)
{
	char *dir = tl_tmpdir(), path[1024], *before, *after;
	struct vp_config *c = tl_config_new(dir);
	struct vp_server server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 24, NULL);
	struct vp_request req = { .identity = (const uint8_t *)"carol", .identity_len = 5 };
	struct vp_store_report rep;
	struct tl_world w = { .now = 5000 };
	struct vp_addr a4 = vp_addr_v4(0x0a08000c);
	struct vp_space *v;
	struct vp_grant g;
	const char *why;
	size_t n_before, n_after;
	uint64_t online, held;
	bool failed;
	pid_t live;
	FILE *f;

	tl_add_pool(c, "a", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	write_two_leases(dir);
	/* a writer that died mid-record: a torn tail */
	snprintf(path, sizeof(path), "%s/leases.journal", dir);
	f = fopen(path, "ab");
	assert_non_null(f);
	fwrite("\x40\0\0\0\x01", 1, 5, f);
	fclose(f);
	before = file_bytes(path, &n_before);
	assert_non_null(before);

	assert_int_equal(ro_open(&v, c, &server, &w, &rep), 0);
	assert_true(rep.torn);
	assert_int_equal(vp_space_leases(v), 2);
	vp_space_count(v, &online, &held);
	assert_int_equal(online, 1);		/* as written: a snapshot, no instance ended */
	assert_int_equal(vp_space_connect(v, &req, &g, &failed), -EROFS);
	assert_int_equal(vp_space_disconnect(v, (const uint8_t *)"alice", 5, 0, NULL), -EROFS);
	assert_int_equal(vp_space_release(v, (const uint8_t *)"bob", 3), -EROFS);
	assert_int_equal(vp_space_import(v, (const uint8_t *)"carol", 5, &a4, NULL, &why), -EROFS);
	assert_int_equal(vp_space_register(v, "udp", 0, "", &live), -EROFS);
	assert_int_equal(vp_space_sync(v), -EROFS);
	vp_space_count(v, &online, &held);
	assert_int_equal(online, 1);
	assert_int_equal(held, 1);
	ro_close(v);

	after = file_bytes(path, &n_after);
	assert_int_equal(n_after, n_before);		/* the torn tail not cut off */
	assert_memory_equal(after, before, n_before);
	assert_false(exists(dir, "server"));		/* the plugin's file, not the reader's */
	free(before);
	free(after);
	vp_config_free(c);
	free(c);
	tl_rmtree(dir);
	free(dir);
}

static void read_only__newer_journal__refused(void **state)
{
	char *dir = tl_tmpdir(), path[1024];
	struct vp_config *c = tl_config_new(dir);
	struct vp_store_report rep;
	struct tl_world w = { .now = 1000 };
	struct vp_space *v = NULL;
	FILE *f;

	tl_add_pool(c, "a", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	snprintf(path, sizeof(path), "%s/leases.journal", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite("VPNPOOL1\x63\0\0\0", 1, 12, f);
	fclose(f);
	assert_int_equal(ro_open(&v, c, NULL, &w, &rep), -EPROTONOSUPPORT);
	assert_null(v);
	assert_int_equal(rep.version, 0x63);
	vp_config_free(c);
	free(c);
	tl_rmtree(dir);
	free(dir);
}

static void read_only__leases_that_do_not_fit__shown_unplaced_none_dropped(void **state)
{
	char *dir = tl_tmpdir();
	struct vp_config *c = tl_config_new(dir);
	struct vp_server server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 24, NULL);
	struct tl_world w = { .now = 1000 };
	struct seen seen = { 0 };
	struct vp_pool_usage u;
	struct vp_store *st;
	struct vp_space *v;

	tl_add_pool(c, "a", "10.8.0.0/24", NULL, NULL, NULL, NULL);
	assert_int_equal(vp_store_open(&st, dir, false, NULL, NULL, NULL, NULL), 0);
	put(st, "alice", 0, VP_LEASE_HELD, 0x0a08000a);
	put(st, "zed", 0, VP_LEASE_HELD, 0x0a09000a);	/* in no pool */
	put(st, "srv", 0, VP_LEASE_HELD, 0x0a080001);	/* the server's own address */
	vp_store_close(st);
	assert_int_equal(ro_open(&v, c, &server, &w, NULL), 0);
	assert_int_equal(vp_space_leases(v), 3);
	assert_int_equal(w.events[VP_EV_LEASE_DROPPED], 0);
	assert_int_equal(vp_space_each_placed(v, true, collect, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.ids[0], "alice#0");
	assert_int_equal(seen.pools[0], 0);
	assert_string_equal(seen.ids[1], "srv#0");	/* no pool: last, by address */
	assert_int_equal(seen.pools[1], -1);
	assert_string_equal(seen.ids[2], "zed#0");
	assert_int_equal(seen.pools[2], -1);
	vp_space_pool_usage(v, 0, &u);
	assert_int_equal(u.held, 1);
	ro_close(v);
	vp_config_free(c);
	free(c);
	tl_rmtree(dir);
	free(dir);
}

/* ---- OpenVPN's ifconfig-pool-persist file (vpnpool import) ------------------ */

static char *addr_text(const struct vp_addr *a, char buf[VP_ADDR_STRLEN])
{
	return a->family ? vp_addr_format(a, buf) : strcpy(buf, "-");
}

/* "identity|v4|v6" of a line read as an entry, or "BAD: why", or "SKIP". */
static char *ipp(const char *line)
{
	static char out[VP_IDENTITY_MAX + 2 * VP_ERRLEN];
	struct vp_ipp_entry e;
	char why[VP_ERRLEN], a4[VP_ADDR_STRLEN], a6[VP_ADDR_STRLEN];

	switch (vp_ipp_parse_line(line, strlen(line), &e, why)) {
	case VP_IPP_ENTRY:
		snprintf(out, sizeof(out), "%.*s|%s|%s", (int)e.identity_len, e.identity,
			 addr_text(&e.addr4, a4), addr_text(&e.addr6, a6));
		break;
	case VP_IPP_SKIP:
		snprintf(out, sizeof(out), "SKIP");
		break;
	case VP_IPP_BAD:
		snprintf(out, sizeof(out), "BAD: %s", why);
		break;
	}
	return out;
}

static void ipp_line__as_openvpn_writes_it__read(void **state)
{
	assert_string_equal(ipp("alice,10.8.0.5,"), "alice|10.8.0.5|-");		/* 2.6, no IPv6 pool */
	assert_string_equal(ipp("alice,10.8.0.5,fd00:8::5"), "alice|10.8.0.5|fd00:8::5");
	assert_string_equal(ipp("alice,,fd00:8::5"), "alice|-|fd00:8::5");	/* IPv6 only */
	assert_string_equal(ipp("alice,10.8.0.5"), "alice|10.8.0.5|-");		/* 2.4 and older */
	assert_string_equal(ipp("alice,10.8.0.5,\r"), "alice|10.8.0.5|-");		/* CRLF */
	assert_string_equal(ipp("alice, 10.8.0.5 ,\tfd00:8::5 "), "alice|10.8.0.5|fd00:8::5");
}

static void ipp_line__blank_or_comment__skipped(void **state)
{
	assert_string_equal(ipp(""), "SKIP");
	assert_string_equal(ipp("\r"), "SKIP");
	assert_string_equal(ipp(" \t "), "SKIP");
	assert_string_equal(ipp("# alice,10.8.0.5,"), "SKIP");
	assert_string_equal(ipp(";alice,10.8.0.5,"), "SKIP");
}

static void ipp_line__common_name_with_commas__addresses_taken_from_the_right(void **state)
{
	assert_string_equal(ipp("Smith, John,10.8.0.5,"), "Smith, John|10.8.0.5|-");
	assert_string_equal(ipp("a,b,c,10.8.0.5,fd00::5"), "a,b,c|10.8.0.5|fd00::5");
	assert_string_equal(ipp("Smith, John,10.8.0.5"), "Smith, John|10.8.0.5|-");
	assert_string_equal(ipp(" spaced name ,10.8.0.5,"), " spaced name |10.8.0.5|-");
	/* Read either as the name "a,10.8.0.2" or as an IPv4 address where the
	 * IPv6 one belongs: reported, not guessed. */
	assert_string_equal(ipp("a,10.8.0.2,10.8.0.3"), "BAD: `10.8.0.3' is not an IPv6 address");
	assert_string_equal(ipp("a,,10.8.0.3"), "BAD: `10.8.0.3' is not an IPv6 address");
}

static void ipp_line__malformed__why_quotes_the_input(void **state)
{
	char line[VP_IDENTITY_MAX + 32];

	assert_string_equal(ipp("alice"), "BAD: `alice' has no comma: expected CN,IPv4[,IPv6]");
	assert_string_equal(ipp("alice,10.8.0.256,"), "BAD: `10.8.0.256' is not an IPv4 address");
	assert_string_equal(ipp("alice,fd00::5"), "BAD: `fd00::5' is not an IPv4 address");
	assert_string_equal(ipp("alice,10.8.0.5,fd00::g"), "BAD: `fd00::g' is not an IPv6 address");
	assert_string_equal(ipp("alice,,"), "BAD: no address: expected CN,IPv4[,IPv6]");
	assert_string_equal(ipp("alice,"), "BAD: no address: expected CN,IPv4[,IPv6]");
	assert_string_equal(ipp(",10.8.0.5,"), "BAD: no common name before the addresses");
	assert_string_equal(ipp("al\x1b" "ice,10.8.0.5,"),
			    "BAD: the common name holds a control character (\\x1b at byte 3), which OpenVPN never writes");
	assert_string_equal(ipp("alice,10.8.0.5\x01,"), "BAD: `10.8.0.5\\x01' is not an IPv4 address");
	memset(line, 'a', VP_IDENTITY_MAX + 1);
	strcpy(line + VP_IDENTITY_MAX + 1, ",10.8.0.5,");
	assert_string_equal(ipp(line), "BAD: the common name is 4097 bytes long (at most 4096)");
	strcpy(line + VP_IDENTITY_MAX, ",10.8.0.5,");		/* the longest there may be */
	assert_int_equal(strlen(ipp(line)), VP_IDENTITY_MAX + strlen("|10.8.0.5|-"));
}

struct ipp_seen {
	char text[1024];
};

static int ipp_collect(void *ud, unsigned line, const struct vp_ipp_entry *e, const char *why)
{
	struct ipp_seen *s = ud;
	size_t n = strlen(s->text);

	if (e)
		snprintf(s->text + n, sizeof(s->text) - n, "%u:%.*s ", line, (int)e->identity_len,
			 e->identity);
	else
		snprintf(s->text + n, sizeof(s->text) - n, "%u:BAD(%s) ", line, why);
	return 0;
}

static int ipp_stop_at_second(void *ud, unsigned line, const struct vp_ipp_entry *e,
			      const char *why)
{
	(void)e;
	(void)why;
	*(unsigned *)ud = line;
	return line >= 2 ? -EIO : 0;
}

static void ipp_each__every_line_numbered_bad_ones_reported_last_without_newline(void **state)
{
	static const char text[] = "alice,10.8.0.5,\r\n\r\n# old\nbob\nNUL\0x,10.8.0.6,\ncarol,10.8.0.7";
	struct ipp_seen seen = { "" };
	unsigned at = 0;

	assert_int_equal(vp_ipp_each(text, sizeof(text) - 1, ipp_collect, &seen), 0);
	assert_string_equal(seen.text,
			    "1:alice 4:BAD(`bob' has no comma: expected CN,IPv4[,IPv6]) "
			    "5:BAD(the common name holds a control character (\\x00 at byte 4), which OpenVPN never writes) "
			    "6:carol ");
	assert_int_equal(vp_ipp_each(text, sizeof(text) - 1, ipp_stop_at_second, &at), -EIO);
	assert_int_equal(at, 4);
	assert_int_equal(vp_ipp_each("", 0, ipp_collect, &seen), 0);
}

/* ---- vpnpool release and import, as the command runs them ----------------- */

/* What cli/main.c gives the subcommands. */
void vp_cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vpnpool: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool vp_cli_wants_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return false;
}

struct cmd_fx {
	char *dir, conf[600], file[600];
	char out[8192], err[8192];		/* what the last command printed */
};

static void cmd_fx_open(struct cmd_fx *f)
{
	FILE *c;

	memset(f, 0, sizeof(*f));
	f->dir = tl_tmpdir();
	snprintf(f->conf, sizeof(f->conf), "%s/vpnpool.conf", f->dir);
	snprintf(f->file, sizeof(f->file), "%s/ipp.txt", f->dir);
	c = fopen(f->conf, "w");
	assert_non_null(c);
	fprintf(c, "state-dir = \"%s/state\"\n"
		"pool \"staff\" {\n network = \"10.8.0.0/24\"\n range = \"10.8.0.10-10.8.0.100\"\n"
		" exclude = {\"10.8.0.50\"}\n}\n"
		"client \"carol\" { address = \"10.8.0.60\" }\n", f->dir);
	assert_int_equal(fclose(c), 0);
}

static void cmd_fx_close(struct cmd_fx *f)
{
	tl_rmtree(f->dir);
	free(f->dir);
}

/* A lease written as an instance writes it. */
static void cmd_fx_lease(struct cmd_fx *f, const char *id, const char *addr, bool online)
{
	struct vp_lease_rec r = { .identity = (const uint8_t *)id, .identity_len = strlen(id),
				  .state = online ? VP_LEASE_ONLINE : VP_LEASE_HELD,
				  .created = 1000, .since = 1000, .sessions = 1 };
	char path[700], err[VP_ERRLEN];
	struct vp_store *st;

	snprintf(path, sizeof(path), "%s/state", f->dir);
	assert_true(vp_addr_parse(&r.addr4, addr, err));
	assert_int_equal(vp_store_open(&st, path, false, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(vp_store_put(st, &r), 0);
	vp_store_close(st);
}

static void slurp(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
}

/* Run "vpnpool -c CONF cmd arg"; its exit status, f->out and f->err. */
static int cmd_run(struct cmd_fx *f, int (*cmd)(const struct vp_cli *, int, char **),
		   const char *name, const char *arg)
{
	struct vp_cli cli = { .config_path = f->conf, .prog = "vpnpool" };
	char *argv[] = { strdup(name), arg ? strdup(arg) : NULL, NULL };
	char tmpl_o[] = "/tmp/vp-out-XXXXXX", tmpl_e[] = "/tmp/vp-err-XXXXXX";
	int o = mkstemp(tmpl_o), e = mkstemp(tmpl_e), so, se, ret;

	assert_true(o >= 0 && e >= 0);
	unlink(tmpl_o);
	unlink(tmpl_e);
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	dup2(o, 1);
	dup2(e, 2);
	ret = cmd(&cli, arg ? 2 : 1, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(o, f->out, sizeof(f->out));
	slurp(e, f->err, sizeof(f->err));
	close(o);
	close(e);
	free(argv[0]);
	free(argv[1]);
	return ret;
}

/* "identity#slot " of each lease, sorted by pool and address. */
static char *cmd_leases(struct cmd_fx *f)
{
	static char text[2048];
	struct vp_config c;
	struct vp_space *v;
	struct tl_world w = { .now = 1000 };
	char err[2048];
	struct seen seen = { 0 };

	assert_int_equal(vp_conf_load(&c, f->conf, err, sizeof(err)), 0);
	assert_int_equal(ro_open(&v, &c, NULL, &w, NULL), 0);
	assert_int_equal(vp_space_each_placed(v, true, collect, &seen), 0);
	text[0] = '\0';
	for (size_t i = 0; i < seen.n; ++i) {
		strcat(text, seen.ids[i]);
		strcat(text, " ");
	}
	ro_close(v);
	vp_config_free(&c);
	return text;
}

/* An OpenVPN instance running on the fixture's state: a registered engine
 * with id online (its sticky lease, if written before, comes back). */
struct live {
	struct vp_config config;
	struct tl_world world;
	struct vp_space *space;
};

static void live_open_as(struct cmd_fx *f, struct live *l, const char *name, const char *dev,
			 const char *id)
{
	struct vp_space_options o;
	struct vp_server server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 24, NULL);
	struct vp_request req = { .identity = (const uint8_t *)id, .identity_len = strlen(id) };
	struct vp_grant g;
	char err[2048];
	bool failed;
	pid_t pid;

	memset(l, 0, sizeof(*l));
	assert_int_equal(vp_conf_load(&l->config, f->conf, err, sizeof(err)), 0);
	o = tl_options(&l->config, &l->world);
	assert_int_equal(vp_space_open(&l->space, &o, NULL, &pid), 0);
	assert_int_equal(vp_space_register(l->space, name, 0, dev, &pid), 0);
	assert_int_equal(vp_space_set_server(l->space, &server), 0);
	assert_int_equal(vp_space_connect(l->space, &req, &g, &failed), 0);
}

static void live_open(struct cmd_fx *f, struct live *l, const char *id)
{
	live_open_as(f, l, "udp", "", id);
}

static void live_close(struct live *l)
{
	vp_space_close(l->space);
	vp_config_free(&l->config);
}

static void release__held_online_or_none__exit_message_and_what_changed(void **state)
{
	struct cmd_fx f;
	struct live udp;
	struct vp_grant g;
	bool failed;

	(void)state;
	cmd_fx_open(&f);
	cmd_fx_lease(&f, "alice", "10.8.0.10", false);
	cmd_fx_lease(&f, "bob", "10.8.0.11", true);
	/* bob's session is on a running instance: online (a lease written
	 * online by an instance that is gone is held) */
	live_open(&f, &udp, "bob");
	assert_int_equal(cmd_run(&f, vp_cmd_release, "release", "bob"), VP_EXIT_FAIL);
	assert_string_equal(f.err, "vpnpool: release: bob is online; nothing changed\n");
	assert_string_equal(f.out, "");
	assert_int_equal(cmd_run(&f, vp_cmd_release, "release", "carol"), VP_EXIT_FAIL);
	assert_string_equal(f.err, "vpnpool: release: carol has no lease; nothing changed\n");
	assert_string_equal(cmd_leases(&f), "alice#0 bob#0 ");
	assert_int_equal(cmd_run(&f, vp_cmd_release, "release", "alice"), VP_EXIT_OK);
	assert_string_equal(f.out, "released the held lease of alice\n");
	assert_string_equal(f.err, "");
	assert_string_equal(cmd_leases(&f), "bob#0 ");
	assert_int_equal(cmd_run(&f, vp_cmd_release, "release", NULL), VP_EXIT_USAGE);
	/* The instance sees the release at its next change: alice comes back
	 * as a new client, not to a sticky lease. */
	assert_int_equal(vp_space_connect(udp.space, &(struct vp_request){
		.identity = (const uint8_t *)"alice", .identity_len = 5 }, &g, &failed), 0);
	assert_false(g.sticky);
	live_close(&udp);
	cmd_fx_close(&f);
}

static void live_connect(struct live *l, const char *id)
{
	struct vp_request req = { .identity = (const uint8_t *)id, .identity_len = strlen(id) };
	struct vp_grant g;
	bool failed;

	assert_int_equal(vp_space_connect(l->space, &req, &g, &failed), 0);
}

/* "identity#slot:instance:state " of each lease, sorted. */
static char *cmd_lease_instances(struct cmd_fx *f, bool *alive, size_t n_alive)
{
	static char text[2048];
	struct vp_config c;
	struct vp_space *v;
	struct tl_world w = { .now = 1000 };
	char err[2048];
	struct seen seen = { 0 };

	assert_int_equal(vp_conf_load(&c, f->conf, err, sizeof(err)), 0);
	assert_int_equal(ro_open(&v, &c, NULL, &w, NULL), 0);
	assert_int_equal(vp_space_each_placed(v, true, collect, &seen), 0);
	text[0] = '\0';
	for (size_t i = 0; i < seen.n; ++i)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s:%s:%s ", seen.ids[i],
			 seen.instances[i], seen.online[i] ? "online" : "held");
	for (uint16_t i = 0; i < n_alive; ++i)
		alive[i] = vp_space_slot_alive(v, i);
	ro_close(v);
	vp_config_free(&c);
	return text;
}

static void read_only__two_instances__each_lease_names_its_and_both_alive(void **state)
{
	struct cmd_fx f;
	struct live udp, tcp;
	bool alive[3];

	(void)state;
	cmd_fx_open(&f);
	live_open_as(&f, &udp, "udp", "tun0", "alice");
	live_open_as(&f, &tcp, "tcp", "tun1", "bob");
	live_connect(&udp, "dan");
	assert_int_equal(vp_space_disconnect(udp.space, (const uint8_t *)"dan", 3, 0, NULL), 0);
	assert_string_equal(cmd_lease_instances(&f, alive, 3),
			    "alice#0:udp:online bob#0:tcp:online dan#0:udp:held ");
	assert_true(alive[0]);
	assert_true(alive[1]);
	assert_false(alive[2]);
	/* alice moves to tcp: her lease is tcp's now */
	live_connect(&tcp, "alice");
	assert_string_equal(cmd_lease_instances(&f, alive, 3),
			    "alice#0:tcp:online bob#0:tcp:online dan#0:udp:held ");
	/* tcp is killed: no longer alive; its sessions read as written (online)
	 * until an instance notices */
	vp_space_abandon(tcp.space);
	vp_config_free(&tcp.config);
	assert_string_equal(cmd_lease_instances(&f, alive, 3),
			    "alice#0:tcp:online bob#0:tcp:online dan#0:udp:held ");
	assert_true(alive[0]);
	assert_false(alive[1]);
	/* udp stops: its last sessions are held, the lease still names it */
	live_close(&udp);
	assert_string_equal(cmd_lease_instances(&f, alive, 3),
			    "alice#0:tcp:held bob#0:tcp:held dan#0:udp:held ");
	assert_false(alive[0]);
	cmd_fx_close(&f);
}

static void status_and_leases__live_instances_listed_each_lease_names_its(void **state)
{
	struct cmd_fx f;
	struct live udp, tcp;
	char want[512];
	const char *at;

	(void)state;
	cmd_fx_open(&f);
	live_open_as(&f, &udp, "udp", "tun0", "alice");
	live_open_as(&f, &tcp, "tcp", "", "bob");
	live_connect(&udp, "dan");
	assert_int_equal(vp_space_disconnect(udp.space, (const uint8_t *)"dan", 3, 0, NULL), 0);
	live_close(&tcp);	/* stopped: not listed, bob's lease names it */

	assert_int_equal(cmd_run(&f, vp_cmd_status, "status", "--json"), VP_EXIT_OK);
	snprintf(want, sizeof(want), "\"instances\":[{\"name\":\"udp\",\"pid\":%d,\"dev\":\"tun0\",\"since\":\"",
		 (int)getpid());
	at = strstr(f.out, want);
	assert_non_null(at);
	assert_non_null(strstr(at, "\"since_unix\":"));
	assert_null(strstr(f.out, "\"tcp\""));
	assert_int_equal(cmd_run(&f, vp_cmd_status, "status", NULL), VP_EXIT_OK);
	at = strstr(f.out, "\n\nINSTANCE  ");
	assert_non_null(at);
	assert_non_null(strstr(at, "  SINCE (UTC)\nudp "));
	snprintf(want, sizeof(want), " %d  tun0  ", (int)getpid());
	assert_non_null(strstr(at, want));

	assert_int_equal(cmd_run(&f, vp_cmd_leases, "leases", "--json"), VP_EXIT_OK);
	assert_non_null(strstr(f.out, "{\"identity\":\"alice\",\"slot\":0,\"state\":\"online\",\"instance\":\"udp\",\"pool\":\"staff\""));
	assert_non_null(strstr(f.out, "{\"identity\":\"bob\",\"slot\":0,\"state\":\"held\",\"instance\":\"tcp\",\"pool\":\"staff\""));
	assert_non_null(strstr(f.out, "{\"identity\":\"dan\",\"slot\":0,\"state\":\"held\",\"instance\":\"udp\",\"pool\":\"staff\""));
	assert_int_equal(cmd_run(&f, vp_cmd_leases, "leases", NULL), VP_EXIT_OK);
	assert_non_null(strstr(f.out, "IDENTITY  STATE   INSTANCE  POOL "));
	assert_non_null(strstr(f.out, "\nalice     online  udp       staff "));
	assert_non_null(strstr(f.out, "\nbob       held    tcp       staff "));
	live_close(&udp);
	cmd_fx_close(&f);
}

static void leases__no_instance_ever__no_instance_column_and_null(void **state)
{
	struct cmd_fx f;

	(void)state;
	cmd_fx_open(&f);
	cmd_fx_lease(&f, "alice", "10.8.0.10", false);
	assert_int_equal(cmd_run(&f, vp_cmd_leases, "leases", NULL), VP_EXIT_OK);
	assert_non_null(strstr(f.out, "IDENTITY  STATE  POOL "));
	assert_null(strstr(f.out, "INSTANCE"));
	assert_int_equal(cmd_run(&f, vp_cmd_leases, "leases", "--json"), VP_EXIT_OK);
	assert_non_null(strstr(f.out, "\"state\":\"held\",\"instance\":null,"));
	assert_int_equal(cmd_run(&f, vp_cmd_status, "status", "--json"), VP_EXIT_OK);
	assert_non_null(strstr(f.out, ",\"instances\":[]}\n"));
	assert_int_equal(cmd_run(&f, vp_cmd_status, "status", NULL), VP_EXIT_OK);
	assert_null(strstr(f.out, "INSTANCE"));
	cmd_fx_close(&f);
}

static void write_text(const char *path, const char *text)
{
	FILE *w = fopen(path, "w");

	assert_non_null(w);
	fputs(text, w);
	assert_int_equal(fclose(w), 0);
}

static void import__every_line_or_reported__exit_and_leases(void **state)
{
	struct cmd_fx f;
	char want[8192];

	(void)state;
	cmd_fx_open(&f);
	cmd_fx_lease(&f, "bob", "10.8.0.11", false);
	write_text(f.file, "alice,10.8.0.20,\r\n"		/* 1: imported */
			   "\n# a comment\n"
			   "Smith, John,10.8.0.21\n"		/* 4: imported */
			   "bob,10.8.0.22,\n"			/* 5: bob has a lease */
			   "dan,10.8.0.11,\n"			/* 6: bob's address */
			   "eve,10.8.0.5,\n"			/* 7: below the range */
			   "fay,10.8.0.50,\n"			/* 8: excluded */
			   "gus,10.8.0.60,\n"			/* 9: carol's */
			   "hal,10.9.0.1,\n"			/* 10: no pool */
			   "carol,10.8.0.60,\n"			/* 11: her own: imported */
			   "ivy\n"				/* 12: malformed */
			   "alice,10.8.0.30,");			/* 13: alice has one now */
	assert_int_equal(cmd_run(&f, vp_cmd_import, "import", f.file), VP_EXIT_FAIL);
	snprintf(want, sizeof(want),
		 "%1$s:5: bob: cannot import 10.8.0.22: it already has a lease\n"
		 "%1$s:6: dan: cannot import 10.8.0.11: leased to another identity\n"
		 "%1$s:7: eve: cannot import 10.8.0.5: outside the pool's range\n"
		 "%1$s:8: fay: cannot import 10.8.0.50: excluded\n"
		 "%1$s:9: gus: cannot import 10.8.0.60: reserved for client carol\n"
		 "%1$s:10: hal: cannot import 10.9.0.1: outside every pool\n"
		 "%1$s:12: `ivy' has no comma: expected CN,IPv4[,IPv6]\n"
		 "%1$s:13: alice: cannot import 10.8.0.30: it already has a lease\n", f.file);
	assert_string_equal(f.err, want);
	snprintf(want, sizeof(want), "imported 3 leases from %s, 8 lines skipped\n", f.file);
	assert_string_equal(f.out, want);
	assert_string_equal(cmd_leases(&f), "bob#0 alice#0 Smith, John#0 carol#0 ");

	write_text(f.file, "kim,10.8.0.40,\n");
	assert_int_equal(cmd_run(&f, vp_cmd_import, "import", f.file), VP_EXIT_OK);
	assert_string_equal(f.err, "");
	snprintf(want, sizeof(want), "imported 1 lease from %s, 0 lines skipped\n", f.file);
	assert_string_equal(f.out, want);
	assert_int_equal(cmd_run(&f, vp_cmd_import, "import", "/nonexistent/ipp.txt"), VP_EXIT_FAIL);
	assert_string_equal(f.err, "vpnpool: import: cannot read /nonexistent/ipp.txt: No such file or directory; nothing changed\n");
	/* The server's addresses are OpenVPN's to say: the command wrote no
	 * server file of its own guess. */
	snprintf(want, sizeof(want), "%s/state/server", f.dir);
	assert_int_equal(access(want, F_OK), -1);
	cmd_fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bytes__binary_units_one_decimal),
		cmocka_unit_test(duration__two_largest_units),
		cmocka_unit_test(time__iso_utc_and_short),
		cmocka_unit_test(parse_time__absolute_unix_and_ages),
		cmocka_unit_test(cell__hostile_identity__quoted_escaped_and_cut),
		cmocka_unit_test(table__columns_aligned_numbers_right_no_trailing_blanks),
		cmocka_unit_test(json__escapes_controls_quotes_and_backslash),
		cmocka_unit_test(json__valid_utf8_passes_invalid_bytes_become_u00xx),
		cmocka_unit_test(json__every_byte__clean_output),
		cmocka_unit_test(metrics_label__escaped_per_prometheus),
		cmocka_unit_test(read_only__last_record_wins_counts_placed_leases_not_reservations),
		cmocka_unit_test(read_only__no_journal_yet__empty_and_nothing_created),
		cmocka_unit_test(read_only__every_write_refused_files_left_as_they_were),
		cmocka_unit_test(read_only__newer_journal__refused),
		cmocka_unit_test(read_only__leases_that_do_not_fit__shown_unplaced_none_dropped),
		cmocka_unit_test(ipp_line__as_openvpn_writes_it__read),
		cmocka_unit_test(ipp_line__blank_or_comment__skipped),
		cmocka_unit_test(ipp_line__common_name_with_commas__addresses_taken_from_the_right),
		cmocka_unit_test(ipp_line__malformed__why_quotes_the_input),
		cmocka_unit_test(ipp_each__every_line_numbered_bad_ones_reported_last_without_newline),
		cmocka_unit_test(release__held_online_or_none__exit_message_and_what_changed),
		cmocka_unit_test(import__every_line_or_reported__exit_and_leases),
		cmocka_unit_test(read_only__two_instances__each_lease_names_its_and_both_alive),
		cmocka_unit_test(status_and_leases__live_instances_listed_each_lease_names_its),
		cmocka_unit_test(leases__no_instance_ever__no_instance_column_and_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
