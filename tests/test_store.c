/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The journal: replay, lock, torn tails, corruption, failed writes, compaction. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"
#include "testlib.h"

/* What a replay saw: identity -> last address (a tiny map). */
struct seen {
	char id[16][32];
	uint32_t a4[16];
	unsigned n, puts, dels;
};

static int on_put(void *ud, const struct vp_lease_rec *r)
{
	struct seen *s = ud;
	unsigned i;

	for (i = 0; i < s->n && strncmp(s->id[i], (const char *)r->identity, r->identity_len); ++i)
		;
	if (i == s->n)
		snprintf(s->id[s->n++], 32, "%.*s", (int)r->identity_len, r->identity);
	s->a4[i] = (uint32_t)r->addr4.lo;
	s->puts++;
	return 0;
}

static int on_del(void *ud, const uint8_t *id, size_t len, uint16_t slot)
{
	struct seen *s = ud;

	(void)slot;
	for (unsigned i = 0; i < s->n; ++i)
		if (strlen(s->id[i]) == len && !memcmp(s->id[i], id, len)) {
			s->id[i][0] = '\0';
			s->a4[i] = 0;
		}
	s->dels++;
	return 0;
}

static struct vp_lease_rec rec(const char *id, uint32_t a4)
{
	struct vp_lease_rec r = {
		.identity = (const uint8_t *)id, .identity_len = strlen(id), .state = VP_LEASE_ONLINE,
		.sessions = 1, .created = 100, .since = 200, .addr4 = vp_addr_v4(a4),
	};

	snprintf(r.real, sizeof(r.real), "203.0.113.7:1194");
	return r;
}

static struct vp_store *open_store(const char *dir, struct seen *s, struct vp_store_report *rep,
				   const struct vp_store_io *io)
{
	struct vp_store_replay replay = { on_put, on_del, s };
	struct vp_store *st = NULL;
	pid_t pid;

	memset(s, 0, sizeof(*s));
	assert_int_equal(vp_store_open(&st, dir, false, io, &replay, rep, &pid), 0);
	return st;
}

static off_t journal_size(const char *dir)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/leases.journal", dir);
	return stat(path, &st) ? -1 : st.st_size;
}

static void store__put_del_reopen__last_record_wins(void **state)
{
	char *dir = tl_tmpdir();
	struct vp_store_report rep;
	struct seen s;
	struct vp_store *st = open_store(dir, &s, &rep, NULL);
	struct vp_lease_rec a = rec("alice", 0x0a080005), b = rec("bob", 0x0a080006);

	(void)state;
	assert_int_equal(vp_store_put(st, &a), 0);
	assert_int_equal(vp_store_put(st, &b), 0);
	a.addr4 = vp_addr_v4(0x0a080009);
	assert_int_equal(vp_store_put(st, &a), 0);
	assert_int_equal(vp_store_del(st, b.identity, b.identity_len, 0), 0);
	vp_store_close(st);
	st = open_store(dir, &s, &rep, NULL);
	assert_int_equal(s.puts, 3);
	assert_int_equal(s.dels, 1);
	assert_string_equal(s.id[0], "alice");
	assert_int_equal(s.a4[0], 0x0a080009);
	assert_string_equal(s.id[1], "");
	assert_false(rep.torn || rep.corrupt);
	vp_store_close(st);
	tl_rmtree(dir);
	free(dir);
}

static void store__second_open__ebusy_with_holder_pid(void **state)
{
	char *dir = tl_tmpdir();
	struct vp_store_report rep;
	struct seen s;
	struct vp_store *st = open_store(dir, &s, &rep, NULL), *other = NULL;
	struct vp_store_replay replay = { on_put, on_del, &s };
	pid_t pid = 0;

	(void)state;
	assert_int_equal(vp_store_open(&other, dir, false, NULL, &replay, &rep, &pid), -EBUSY);
	assert_int_equal(pid, getpid());
	vp_store_close(st);
	assert_int_equal(vp_store_open(&other, dir, false, NULL, &replay, &rep, &pid), 0);
	vp_store_close(other);
	tl_rmtree(dir);
	free(dir);
}

static void store__torn_last_record__every_cut_dropped_earlier_kept(void **state)
{
	char *dir = tl_tmpdir(), path[512];
	struct vp_store_report rep;
	struct seen s;
	struct vp_store *st = open_store(dir, &s, &rep, NULL);
	struct vp_lease_rec a = rec("alice", 1), b = rec("bob", 2);
	off_t good, full;

	(void)state;
	vp_store_put(st, &a);
	good = journal_size(dir);
	vp_store_put(st, &b);
	full = journal_size(dir);
	vp_store_close(st);
	snprintf(path, sizeof(path), "%s/leases.journal", dir);
	for (off_t cut = full - 1; cut > good; --cut) {
		assert_int_equal(truncate(path, cut), 0);
		st = open_store(dir, &s, &rep, NULL);
		assert_true(rep.torn);
		assert_false(rep.corrupt);
		assert_int_equal(rep.torn_offset, good);
		assert_int_equal(s.puts, 1);
		assert_string_equal(s.id[0], "alice");
		/* The torn tail is cut away and appending goes on. */
		assert_int_equal(journal_size(dir), good);
		assert_int_equal(vp_store_put(st, &b), 0);
		vp_store_close(st);
		st = open_store(dir, &s, &rep, NULL);
		assert_false(rep.torn);
		assert_int_equal(s.puts, 2);
		vp_store_close(st);
	}
	tl_rmtree(dir);
	free(dir);
}

static void store__damage_in_the_middle__set_aside_with_offset(void **state)
{
	char *dir = tl_tmpdir(), path[512];
	struct vp_store_report rep;
	struct seen s;
	struct vp_store *st = open_store(dir, &s, &rep, NULL);
	struct vp_lease_rec a = rec("alice", 1), b = rec("bob", 2), c = rec("carol", 3);
	off_t after_a;
	int fd;

	(void)state;
	vp_store_put(st, &a);
	after_a = journal_size(dir);
	vp_store_put(st, &b);
	vp_store_put(st, &c);
	vp_store_close(st);
	snprintf(path, sizeof(path), "%s/leases.journal", dir);
	fd = open(path, O_WRONLY);
	assert_int_equal(pwrite(fd, "X", 1, after_a + 12), 1);
	close(fd);
	st = open_store(dir, &s, &rep, NULL);
	assert_true(rep.corrupt);
	assert_int_equal(rep.corrupt_offset, after_a);
	assert_string_equal(rep.detail, "checksum mismatch");
	assert_int_equal(s.puts, 1);
	assert_int_equal(access(rep.set_aside, F_OK), 0);
	assert_true(vp_store_appended(st) > 1000000);	/* asks the caller to compact */
	vp_store_close(st);
	tl_rmtree(dir);
	free(dir);
}

static void store__garbage_file__set_aside_not_overwritten(void **state)
{
	char *dir = tl_tmpdir(), path[512];
	struct vp_store_report rep;
	struct seen s;
	struct vp_store *st;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/leases.journal", dir);
	f = fopen(path, "w");
	fputs("this is not a journal\n", f);
	fclose(f);
	st = open_store(dir, &s, &rep, NULL);
	assert_true(rep.corrupt);
	assert_int_equal(rep.corrupt_offset, 0);
	f = fopen(rep.set_aside, "r");
	assert_non_null(f);
	fclose(f);
	vp_store_close(st);
	tl_rmtree(dir);
	free(dir);
}

/* Records with a correct checksum but malformed fields are refused too. */
static void store__malformed_fields__refused_by_decoder(void **state)
{
	static const struct { uint8_t bytes[64]; size_t len; } bad[] = {
		{ { 9 }, 1 },					/* unknown type */
		{ { 2, 0, 0, 0, 0 }, 5 },			/* DEL, identity length 0 */
		{ { 2, 0, 0, 5, 0, 'a' }, 6 },			/* identity runs past the end */
		{ { 2, 0, 0, 1, 0, 'a', 'x' }, 7 },		/* trailing byte */
		{ { 1, 0, 0, 7 }, 4 },				/* PUT cut short */
		{ { 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		    1, 0, 'a', 0, 0, 0, 0, 0 }, 33 },		/* bad state 2 */
		{ { 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		    1, 0, 'a', 0, 5, 1, 2, 3, 4, 0, 0, 0 }, 37 },	/* family 5 */
		{ { 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		    1, 0, 'a', 0, 0, 0, 4, 10, 9, 0, 1, 24, 0 }, 38 },	/* host bits in subnet */
		{ { 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		    1, 0, 'a', 0, 0, 0, 4, 10, 9, 0, 0, 33, 0 }, 38 },	/* prefix 33 */
		{ { 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		    1, 0, 'a', 0, 6, 1, 2, 3, 4, 0, 0, 0 }, 37 },	/* addr4 as IPv6, cut */
	};
	char *dir = tl_tmpdir(), path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/leases.journal", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); ++i) {
		struct vp_store_report rep;
		struct vp_lease_rec ok = rec("ok", 1);
		struct vp_store *st;
		struct seen s;
		uint8_t hdr[8];
		uint32_t table[256], crc = ~0U;
		FILE *f;

		unlink(path);
		st = open_store(dir, &s, &rep, NULL);
		vp_store_put(st, &ok);
		vp_store_close(st);
		for (uint32_t k = 0; k < 256; ++k) {
			uint32_t c = k;

			for (int j = 0; j < 8; ++j)
				c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
			table[k] = c;
		}
		for (size_t k = 0; k < bad[i].len; ++k)
			crc = table[(crc ^ bad[i].bytes[k]) & 0xff] ^ (crc >> 8);
		crc = ~crc;
		for (int k = 0; k < 4; ++k) {
			hdr[k] = (uint8_t)(bad[i].len >> (8 * k));
			hdr[4 + k] = (uint8_t)(crc >> (8 * k));
		}
		f = fopen(path, "a");
		fwrite(hdr, 1, 8, f);
		fwrite(bad[i].bytes, 1, bad[i].len, f);
		fwrite(hdr, 1, 8, f);			/* more data after it: corruption */
		fwrite(bad[i].bytes, 1, bad[i].len, f);
		fclose(f);
		st = open_store(dir, &s, &rep, NULL);
		if (!rep.corrupt)
			fail_msg("malformed record %zu was accepted", i);
		assert_int_equal(s.puts, 1);
		vp_store_close(st);
	}
	tl_rmtree(dir);
	free(dir);
}

static int fail_mode;	/* 1: fail at once; 2: write part, then fail */

static ssize_t flaky_write(int fd, const void *buf, size_t len)
{
	if (fail_mode == 1) {
		errno = ENOSPC;
		return -1;
	}
	if (fail_mode == 2) {
		fail_mode = 1;
		return write(fd, buf, len / 2);
	}
	return write(fd, buf, len);
}

static void store__failed_write__returns_error_and_journal_unchanged(void **state)
{
	char *dir = tl_tmpdir();
	struct vp_store_io io = { .write = flaky_write };
	struct vp_store_report rep;
	struct seen s;
	struct vp_store *st = open_store(dir, &s, &rep, &io);
	struct vp_lease_rec a = rec("alice", 1), b = rec("bob", 2);
	off_t before;

	(void)state;
	assert_int_equal(vp_store_put(st, &a), 0);
	before = journal_size(dir);
	fail_mode = 1;
	assert_int_equal(vp_store_put(st, &b), -ENOSPC);
	fail_mode = 2;
	assert_int_equal(vp_store_put(st, &b), -ENOSPC);
	assert_int_equal(journal_size(dir), before);
	fail_mode = 0;
	assert_int_equal(vp_store_put(st, &b), 0);
	vp_store_close(st);
	st = open_store(dir, &s, &rep, NULL);
	assert_false(rep.torn || rep.corrupt);
	assert_int_equal(s.puts, 2);
	vp_store_close(st);
	tl_rmtree(dir);
	free(dir);
}

static struct vp_lease_rec live[3];

static int each_live(void *ud, vp_store_emit_fn emit, void *ctx)
{
	(void)ud;
	for (int i = 0; i < 3; ++i) {
		int ret = emit(ctx, &live[i]);

		if (ret)
			return ret;
	}
	return 0;
}

static void store__compaction__keeps_live_set_and_read_sees_it(void **state)
{
	char *dir = tl_tmpdir();
	struct vp_store_report rep;
	struct vp_store_replay replay;
	struct seen s, r;
	struct vp_store *st = open_store(dir, &s, &rep, NULL);

	(void)state;
	live[0] = rec("a", 1);
	live[1] = rec("b", 2);
	live[2] = rec("c", 3);
	for (int i = 0; i < 100; ++i)
		vp_store_put(st, &live[i % 3]);
	assert_int_equal(vp_store_appended(st), 100);
	assert_int_equal(vp_store_compact(st, each_live, NULL), 0);
	assert_int_equal(vp_store_appended(st), 0);
	vp_store_put(st, &live[0]);
	memset(&r, 0, sizeof(r));
	replay = (struct vp_store_replay){ on_put, on_del, &r };
	assert_int_equal(vp_store_read(dir, &replay, &rep), 0);	/* while open */
	assert_int_equal(r.puts, 4);
	vp_store_close(st);
	st = open_store(dir, &s, &rep, NULL);
	assert_int_equal(s.puts, 4);
	assert_int_equal(s.n, 3);
	vp_store_close(st);
	assert_int_equal(vp_store_read("/nonexistent", &replay, &rep), -ENOENT);
	tl_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(store__put_del_reopen__last_record_wins),
		cmocka_unit_test(store__second_open__ebusy_with_holder_pid),
		cmocka_unit_test(store__torn_last_record__every_cut_dropped_earlier_kept),
		cmocka_unit_test(store__damage_in_the_middle__set_aside_with_offset),
		cmocka_unit_test(store__garbage_file__set_aside_not_overwritten),
		cmocka_unit_test(store__malformed_fields__refused_by_decoder),
		cmocka_unit_test(store__failed_write__returns_error_and_journal_unchanged),
		cmocka_unit_test(store__compaction__keeps_live_set_and_read_sees_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
