/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The lease journal: round trips, the lock, crashes at every byte of the last
 * record, damage in the middle, hostile records, failing writes, compaction
 * and the lock-free reader.  Records are crafted here byte by byte (with a
 * correct CRC) so that the decoder itself meets every malformed field.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
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

#include "fs.h"
#include "store.h"

#define HEADER_V1 12		/* the crafted journals here are of version 1 */
#define HEADER_LEN 20		/* what the store writes (version 2) */

/* ---- a model of the leases the replay produced ---------------------------- */

#define MAX_LEASES 64

struct lease {
	char id[VP_IDENTITY_MAX + 1];
	struct vp_lease_rec rec;
};

struct model {
	struct lease leases[MAX_LEASES];
	size_t n;
	unsigned puts, dels;
	int fail_after;			/* put returns -EIO after this many (0: never) */
};

static struct lease *model_find(struct model *m, const uint8_t *id, size_t len, uint16_t slot)
{
	for (size_t i = 0; i < m->n; ++i)
		if (m->leases[i].rec.identity_len == len && m->leases[i].rec.slot == slot &&
		    !memcmp(m->leases[i].id, id, len))
			return &m->leases[i];
	return NULL;
}

static int model_put(void *ud, const struct vp_lease_rec *rec)
{
	struct model *m = ud;
	struct lease *l = model_find(m, rec->identity, rec->identity_len, rec->slot);

	if (m->fail_after && m->puts == (unsigned)m->fail_after)
		return -EIO;
	m->puts++;
	if (!l) {
		assert_true(m->n < MAX_LEASES);
		l = &m->leases[m->n++];
	}
	memcpy(l->id, rec->identity, rec->identity_len);
	l->id[rec->identity_len] = '\0';
	l->rec = *rec;
	l->rec.identity = (const uint8_t *)l->id;
	return 0;
}

static int model_del(void *ud, const uint8_t *id, size_t len, uint16_t slot)
{
	struct model *m = ud;
	struct lease *l = model_find(m, id, len, slot);

	m->dels++;
	if (l)
		*l = m->leases[--m->n];
	return 0;
}

static struct vp_store_replay model_replay(struct model *m)
{
	struct vp_store_replay r = { .put = model_put, .del = model_del, .ud = m };

	memset(m, 0, sizeof(*m));
	return r;
}

static const struct vp_lease_rec *model_get(struct model *m, const char *id, uint16_t slot)
{
	struct lease *l = model_find(m, (const uint8_t *)id, strlen(id), slot);

	return l ? &l->rec : NULL;
}

/* Emit every lease of the model (the compaction's each()). */
static int model_each(void *ud, vp_store_emit_fn emit, void *ctx)
{
	struct model *m = ud;

	for (size_t i = 0; i < m->n; ++i) {
		int ret = emit(ctx, &m->leases[i].rec);

		if (ret)
			return ret;
	}
	return 0;
}

/* ---- leases ------------------------------------------------------------------ */

static struct vp_lease_rec lease_v4(const char *id, uint16_t slot, uint32_t addr)
{
	struct vp_lease_rec r = {
		.identity = (const uint8_t *)id, .identity_len = strlen(id), .slot = slot,
		.state = VP_LEASE_ONLINE, .sessions = 1, .created = 1000, .since = 1000,
		.addr4 = vp_addr_v4(addr),
	};

	snprintf(r.real, sizeof(r.real), "203.0.113.7:1194");
	return r;
}

static struct vp_lease_rec lease_full(const char *id)
{
	static const uint8_t v6[16] = { 0xfd, 0, 0, 8, [14] = 0x12, [15] = 0x34 };
	static const uint8_t net6[16] = { 0xfd, 0, 0, 9, 0, 0, 0, 0x40 };
	struct vp_lease_rec r = lease_v4(id, 3, 0x0a080105);

	r.state = VP_LEASE_HELD;
	r.sessions = 0xfffffffeU;
	r.created = -5;
	r.since = INT64_MAX;
	r.addr6 = vp_addr_from_bytes(VP_INET6, v6);
	r.subnet4.addr = vp_addr_v4(0x0a090010);
	r.subnet4.len = 28;
	r.subnet6.addr = vp_addr_from_bytes(VP_INET6, net6);
	r.subnet6.len = 64;
	snprintf(r.real, sizeof(r.real), "[2001:db8::1]:51820");
	return r;
}

static void assert_lease_equal(const struct vp_lease_rec *a, const struct vp_lease_rec *b)
{
	assert_non_null(a);
	assert_int_equal(a->identity_len, b->identity_len);
	assert_memory_equal(a->identity, b->identity, a->identity_len);
	assert_int_equal(a->slot, b->slot);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->sessions, b->sessions);
	assert_true(a->created == b->created);
	assert_true(a->since == b->since);
	assert_string_equal(a->real, b->real);
	assert_true(vp_addr_eq(&a->addr4, &b->addr4) && a->addr4.family == b->addr4.family);
	assert_true(vp_addr_eq(&a->addr6, &b->addr6) && a->addr6.family == b->addr6.family);
	assert_true(vp_addr_eq(&a->subnet4.addr, &b->subnet4.addr));
	assert_int_equal(a->subnet4.len, b->subnet4.len);
	assert_true(vp_addr_eq(&a->subnet6.addr, &b->subnet6.addr));
	assert_int_equal(a->subnet6.len, b->subnet6.len);
}

/* ---- files ----------------------------------------------------------------- */

struct fx {
	char dir[64];
	char journal[128];
	struct vp_store *store;
	struct model m;
	struct vp_store_report report;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->journal, sizeof(f->journal), "%s/leases.journal", f->dir);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	vp_store_close(f->store);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int fx_open_io(struct fx *f, const struct vp_store_io *io)
{
	struct vp_store_replay r = model_replay(&f->m);
	pid_t holder;

	vp_store_close(f->store);
	f->store = NULL;
	return vp_store_open(&f->store, f->dir, false, io, &r, &f->report, &holder);
}

static void fx_open(struct fx *f)
{
	assert_int_equal(fx_open_io(f, NULL), 0);
}

static void fx_close(struct fx *f)
{
	vp_store_close(f->store);
	f->store = NULL;
}

static int fx_read(struct fx *f)
{
	struct vp_store_replay r = model_replay(&f->m);

	return vp_store_read(f->dir, &r, &f->report);
}

static void put_v4(struct fx *f, const char *id, uint16_t slot, uint32_t addr)
{
	struct vp_lease_rec r = lease_v4(id, slot, addr);

	assert_int_equal(vp_store_put(f->store, &r), 0);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static uint8_t *file_read(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *data;

	assert_non_null(fp);
	*len = (size_t)file_size(path);
	data = malloc(*len + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, *len, fp), *len);
	fclose(fp);
	return data;
}

static void file_write(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void file_truncate(const char *path, off_t len)
{
	assert_int_equal(truncate(path, len), 0);
}

static int count_set_aside(const char *dir)
{
	char cmd[256];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls %s | grep -c '^leases.journal.corrupt-'", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* ---- crafting records ------------------------------------------------------- */

static uint32_t crc32c(const uint8_t *p, size_t len)
{
	uint32_t c = ~0U;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; ++k)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
	}
	return ~c;
}

struct bytes {
	uint8_t b[8192];
	size_t n;
};

static void b_raw(struct bytes *b, const void *p, size_t len)
{
	assert_true(b->n + len <= sizeof(b->b));
	memcpy(b->b + b->n, p, len);
	b->n += len;
}

static void b_le(struct bytes *b, uint64_t v, unsigned width)
{
	for (unsigned i = 0; i < width; ++i) {
		uint8_t c = (uint8_t)(v >> (8 * i));

		b_raw(b, &c, 1);
	}
}

/* The journal's header. */
static void b_header(struct bytes *b)
{
	b_raw(b, "VPNPOOL1", 8);
	b_le(b, 1, 4);
}

/* Wrap payload p as a record with a correct checksum. */
static void b_record(struct bytes *b, const struct bytes *p)
{
	b_le(b, p->n, 4);
	b_le(b, crc32c(p->b, p->n), 4);
	b_raw(b, p->b, p->n);
}

/* The knobs of a crafted PUT payload; defaults make a valid one. */
struct craft {
	unsigned type;
	uint32_t identity_len;		/* as written */
	size_t identity_bytes;		/* bytes actually present */
	unsigned state;
	unsigned real_len;
	size_t real_bytes;
	unsigned fam4;			/* family byte of addr4 */
	unsigned sub4_fam, sub4_len;
	uint32_t sub4_addr;
	unsigned sub6_fam, sub6_len;
	uint8_t sub6_last;		/* last byte of subnet6 (fd00::/64) */
	size_t trailing;
	size_t cut;			/* drop this many bytes off the end */
};

static struct craft craft_ok(void)
{
	struct craft c = {
		.type = 1, .identity_len = 5, .identity_bytes = 5, .state = 1,
		.real_len = 3, .real_bytes = 3, .fam4 = 4,
		.sub4_fam = 4, .sub4_len = 24, .sub4_addr = 0x0a090100,
		.sub6_fam = 6, .sub6_len = 64,
	};

	return c;
}

static void craft_payload(struct bytes *p, const struct craft *c)
{
	static const uint8_t zero[VP_IDENTITY_MAX + 64];
	static const uint8_t a4[4] = { 10, 8, 0, 9 };
	uint8_t a6[16] = { 0xfd, [15] = c->sub6_last };

	memset(p, 0, sizeof(*p));
	b_le(p, c->type, 1);
	b_le(p, 0, 2);				/* slot */
	b_le(p, c->identity_len, 2);
	b_raw(p, "craft", c->identity_bytes < 5 ? c->identity_bytes : 5);
	if (c->identity_bytes > 5)
		b_raw(p, zero, c->identity_bytes - 5);
	if (c->type == 2)
		goto out;
	b_le(p, c->state, 1);
	b_le(p, 7, 4);				/* sessions */
	b_le(p, 100, 8);
	b_le(p, 200, 8);
	b_le(p, c->real_len, 1);
	b_raw(p, "1.2.3.4:5", c->real_bytes < 9 ? c->real_bytes : 9);
	if (c->real_bytes > 9)
		b_raw(p, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		      c->real_bytes - 9);
	b_le(p, c->fam4, 1);
	b_raw(p, a4, c->fam4 == 6 ? 0 : c->fam4 ? 4 : 0);
	if (c->fam4 == 6)
		b_raw(p, zero, 16);
	b_le(p, 0, 1);				/* no addr6 */
	b_le(p, c->sub4_fam, 1);
	if (c->sub4_fam == 6) {
		b_raw(p, zero, 16);
		b_le(p, c->sub4_len, 1);
	} else if (c->sub4_fam) {
		b_le(p, c->sub4_addr >> 24, 1);
		b_le(p, c->sub4_addr >> 16, 1);
		b_le(p, c->sub4_addr >> 8, 1);
		b_le(p, c->sub4_addr, 1);
		b_le(p, c->sub4_len, 1);
	}
	b_le(p, c->sub6_fam, 1);
	if (c->sub6_fam) {
		b_raw(p, a6, 16);
		b_le(p, c->sub6_len, 1);
	}
out:
	b_raw(p, zero, c->trailing);
	assert_true(p->n >= c->cut);
	p->n -= c->cut;
}

/* header, a valid record "craft", the crafted one, and if more, one more
 * valid record; then read it back through vp_store_read(). */
static int craft_journal(struct fx *f, const struct craft *bad, bool more)
{
	struct craft ok = craft_ok();
	struct bytes file = { .n = 0 }, p;

	b_header(&file);
	craft_payload(&p, &ok);
	b_record(&file, &p);
	craft_payload(&p, bad);
	b_record(&file, &p);
	if (more) {
		craft_payload(&p, &ok);
		b_record(&file, &p);
	}
	file_write(f->journal, file.b, file.n);
	return fx_read(f);
}

/* Where craft_journal() puts the crafted record. */
static uint64_t second_record_offset(void)
{
	struct craft ok = craft_ok();
	struct bytes p;

	craft_payload(&p, &ok);
	return HEADER_V1 + 8 + p.n;
}

/* ---- round trips ------------------------------------------------------------ */

static void put_del__replayed__last_put_wins_and_del_removes(void **state)
{
	struct fx *f = *state;

	fx_open(f);
	put_v4(f, "alice", 0, 0x0a080002);
	put_v4(f, "bob", 0, 0x0a080003);
	put_v4(f, "alice", 0, 0x0a080004);
	put_v4(f, "alice", 1, 0x0a080005);
	assert_int_equal(vp_store_del(f->store, (const uint8_t *)"bob", 3, 0), 0);
	assert_int_equal(vp_store_appended(f->store), 5);
	fx_open(f);
	assert_int_equal(f->report.records, 5);
	assert_false(f->report.torn || f->report.corrupt);
	assert_int_equal(f->m.n, 2);
	assert_int_equal(vp_addr_to_v4(&model_get(&f->m, "alice", 0)->addr4), 0x0a080004);
	assert_int_equal(vp_addr_to_v4(&model_get(&f->m, "alice", 1)->addr4), 0x0a080005);
	assert_null(model_get(&f->m, "bob", 0));
	assert_int_equal(vp_store_appended(f->store), 0);
}

static void put__every_field__survives_reopen(void **state)
{
	struct fx *f = *state;
	struct vp_lease_rec full = lease_full("carol");
	static uint8_t big[VP_IDENTITY_MAX];
	struct vp_lease_rec longest = lease_v4("", 65535, 1);

	memset(big, 0xff, sizeof(big));
	longest.identity = big;
	longest.identity_len = sizeof(big);
	memset(longest.real, 'r', sizeof(longest.real));	/* no NUL: truncated */
	fx_open(f);
	assert_int_equal(vp_store_put(f->store, &full), 0);
	assert_int_equal(vp_store_put(f->store, &longest), 0);
	fx_close(f);
	fx_open(f);
	assert_int_equal(f->m.n, 2);
	assert_lease_equal(model_get(&f->m, "carol", 3), &full);
	longest.real[VP_REAL_MAX - 1] = '\0';
	assert_lease_equal(&f->m.leases[1].rec, &longest);
}

static void open__new_dir__created_with_parents_and_empty_journal(void **state)
{
	struct fx *f = *state;
	struct vp_store_replay r = model_replay(&f->m);
	char dir[128];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/a/b/state", f->dir);
	assert_int_equal(vp_store_open(&f->store, dir, true, NULL, &r, NULL, NULL), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	strcat(dir, "/leases.journal");
	assert_int_equal(file_size(dir), HEADER_LEN);
	assert_int_equal(f->m.n, 0);
}

static void put__invalid_lease__einval_and_nothing_written(void **state)
{
	struct fx *f = *state;
	struct vp_lease_rec r = lease_v4("dave", 0, 1);

	fx_open(f);
	r.identity_len = 0;
	assert_int_equal(vp_store_put(f->store, &r), -EINVAL);
	r = lease_v4("dave", 0, 1);
	r.identity_len = VP_IDENTITY_MAX + 1;
	assert_int_equal(vp_store_put(f->store, &r), -EINVAL);
	r = lease_v4("dave", 0, 1);
	r.state = 2;
	assert_int_equal(vp_store_put(f->store, &r), -EINVAL);
	r = lease_v4("dave", 0, 1);
	r.addr6 = vp_addr_v4(1);
	assert_int_equal(vp_store_put(f->store, &r), -EINVAL);
	r = lease_v4("dave", 0, 1);
	r.subnet4.addr = vp_addr_v4(0x0a000001);
	r.subnet4.len = 24;
	assert_int_equal(vp_store_put(f->store, &r), -EINVAL);
	r.subnet4.addr = vp_addr_v4(0x0a000000);
	r.subnet4.len = 33;
	assert_int_equal(vp_store_put(f->store, &r), -EINVAL);
	assert_int_equal(vp_store_del(f->store, (const uint8_t *)"", 0, 0), -EINVAL);
	assert_int_equal(file_size(f->journal), HEADER_LEN);
	assert_int_equal(vp_store_appended(f->store), 0);
}

/* ---- the lock ----------------------------------------------------------------- */

static void open__dir_already_open__second_store_shares_it(void **state)
{
	struct fx *f = *state;
	struct vp_store *second = (struct vp_store *)1;
	static struct model m2;
	struct vp_store_replay r = model_replay(&m2);
	pid_t holder = 1;

	fx_open(f);
	put_v4(f, "alice", 0, 1);
	assert_int_equal(vp_store_open(&second, f->dir, false, NULL, &r, NULL, &holder), 0);
	assert_int_equal(holder, 0);
	assert_non_null(model_get(&m2, "alice", 0));
	/* each sees what the other appended at its next change */
	put_v4(f, "bob", 0, 2);
	assert_null(model_get(&m2, "bob", 0));
	assert_int_equal(vp_store_begin(second), 0);
	vp_store_end(second);
	assert_non_null(model_get(&m2, "bob", 0));
	vp_store_close(second);
}

/* A put the first store's model (what its compaction writes) knows too. */
static void put_both(struct fx *f, const char *id, uint16_t slot, uint32_t addr)
{
	struct vp_lease_rec r = lease_v4(id, slot, addr);

	assert_int_equal(vp_store_put(f->store, &r), 0);
	assert_int_equal(model_put(&f->m, &r), 0);
}

static void compaction__a_second_store_follows_moved_without_reading_again(void **state)
{
	struct fx *f = *state;
	struct vp_store *second = NULL;
	static struct model m2;
	struct vp_store_replay r = model_replay(&m2);

	fx_open(f);
	put_both(f, "alice", 0, 1);
	put_both(f, "bob", 0, 2);
	assert_int_equal(vp_store_open(&second, f->dir, false, NULL, &r, NULL, NULL), 0);
	assert_int_equal(m2.puts, 2);
	put_both(f, "carol", 0, 3);
	assert_int_equal(vp_store_compact(f->store, model_each, &f->m), 0);
	/* once compacted: the old journal's MOVED sends it to the new one's
	 * end; it reads only what came after */
	assert_int_equal(vp_store_begin(second), 0);
	vp_store_end(second);
	assert_int_equal(m2.puts, 3);
	put_both(f, "dave", 0, 4);
	assert_int_equal(vp_store_begin(second), 0);
	vp_store_end(second);
	assert_int_equal(m2.puts, 4);
	assert_non_null(model_get(&m2, "dave", 0));
	/* twice: the file it was sent to is gone too; it reads the journal
	 * again, whole */
	assert_int_equal(vp_store_compact(f->store, model_each, &f->m), 0);
	assert_int_equal(vp_store_del(f->store, (const uint8_t *)"alice", 5, 0), 0);
	model_del(&f->m, (const uint8_t *)"alice", 5, 0);
	assert_int_equal(vp_store_compact(f->store, model_each, &f->m), 0);
	assert_int_equal(vp_store_begin(second), 0);
	vp_store_end(second);
	assert_int_equal(m2.puts, 4 + 3);
	vp_store_close(second);
}

static void lock__stores_of_one_directory__exclude_each_other_per_change(void **state)
{
	struct fx *f = *state;
	struct vp_store *second = NULL;
	struct vp_instance_rec a = { .name = "udp" }, b = { .name = "udp" };
	pid_t live = 0;

	fx_open(f);
	assert_int_equal(vp_store_open(&second, f->dir, false, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(vp_store_register(f->store, &a, &live), 0);
	assert_int_equal(a.slot, 0);
	assert_true(vp_store_slot_alive(second, 0));
	assert_false(vp_store_slot_alive(second, 1));
	assert_int_equal(vp_store_register(second, &b, &live), -EADDRINUSE);
	assert_int_equal(live, getpid());
	strcpy(b.name, "tcp");
	assert_int_equal(vp_store_register(second, &b, &live), 0);
	assert_int_equal(b.slot, 1);
	assert_string_equal(vp_store_instance(f->store, 1) ? "" : "unknown until read", "unknown until read");
	assert_int_equal(vp_store_begin(f->store), 0);
	assert_string_equal(vp_store_instance(f->store, 1)->name, "tcp");
	assert_int_equal(vp_store_begin(f->store), -EDEADLK);
	vp_store_end(f->store);
	vp_store_abandon(second);	/* killed: its slot's lock is gone */
	assert_false(vp_store_slot_alive(f->store, 1));
}

/* ---- torn tails ------------------------------------------------------------------ */

static void open__last_record_cut_at_every_length__dropped_earlier_kept(void **state)
{
	struct fx *f = *state;
	struct vp_lease_rec full = lease_full("erin");
	off_t before, after;

	fx_open(f);
	put_v4(f, "alice", 0, 0x0a080002);
	put_v4(f, "bob", 0, 0x0a080003);
	before = file_size(f->journal);
	assert_int_equal(vp_store_put(f->store, &full), 0);
	after = file_size(f->journal);
	fx_close(f);
	for (off_t cut = before + 1; cut < after; ++cut) {
		file_truncate(f->journal, after);	/* bytes past the cut are zeros now */
		file_truncate(f->journal, cut);
		fx_open(f);
		assert_true(f->report.torn);
		assert_false(f->report.corrupt);
		assert_int_equal(f->report.torn_offset, before);
		assert_int_equal(f->report.records, 2);
		assert_int_equal(f->m.n, 2);
		assert_null(model_get(&f->m, "erin", 3));
		assert_int_equal(file_size(f->journal), before);
		assert_int_equal(count_set_aside(f->dir), 0);
		assert_int_equal(vp_store_put(f->store, &full), 0);
		fx_open(f);
		assert_false(f->report.torn || f->report.corrupt);
		assert_lease_equal(model_get(&f->m, "erin", 3), &full);
		fx_close(f);
		file_truncate(f->journal, before);
	}
}

static void open__zero_filled_tail__torn_not_corrupt(void **state)
{
	struct fx *f = *state;
	off_t end;

	fx_open(f);
	put_v4(f, "alice", 0, 0x0a080002);
	fx_close(f);
	end = file_size(f->journal);
	file_truncate(f->journal, end + 4096);
	fx_open(f);
	assert_true(f->report.torn);
	assert_false(f->report.corrupt);
	assert_int_equal(f->report.torn_offset, end);
	assert_int_equal(f->m.n, 1);
	assert_int_equal(file_size(f->journal), end);
}

static void open__header_cut_short__starts_afresh(void **state)
{
	struct fx *f = *state;

	for (size_t len = 1; len < HEADER_V1; ++len) {
		file_write(f->journal, "VPNPOOL1\1\0\0", len);
		fx_open(f);
		assert_true(f->report.torn);
		assert_false(f->report.corrupt);
		assert_int_equal(file_size(f->journal), HEADER_LEN);
		put_v4(f, "alice", 0, 1);
		fx_open(f);
		assert_int_equal(f->m.n, 1);
		fx_close(f);
	}
}

/* ---- damage -------------------------------------------------------------------- */

static void open__byte_flipped_mid_file__set_aside_earlier_records_kept(void **state)
{
	struct fx *f = *state;
	uint8_t *orig, *aside;
	size_t len, alen;
	off_t second;

	fx_open(f);
	put_v4(f, "alice", 0, 0x0a080002);
	second = file_size(f->journal);
	put_v4(f, "bob", 0, 0x0a080003);
	put_v4(f, "carol", 0, 0x0a080004);
	fx_close(f);
	orig = file_read(f->journal, &len);
	orig[second + 12] ^= 0x20;
	file_write(f->journal, orig, len);
	fx_open(f);
	assert_true(f->report.corrupt);
	assert_int_equal(f->report.corrupt_offset, second);
	assert_string_equal(f->report.detail, "checksum mismatch");
	assert_int_equal(f->report.records, 1);
	assert_int_equal(f->m.n, 1);
	assert_non_null(model_get(&f->m, "alice", 0));
	aside = file_read(f->report.set_aside, &alen);
	assert_int_equal(alen, len);
	assert_memory_equal(aside, orig, len);
	assert_true(vp_store_appended(f->store) >= UINT64_MAX / 2);
	assert_int_equal(vp_store_compact(f->store, model_each, &f->m), 0);
	assert_int_equal(vp_store_appended(f->store), 0);
	fx_open(f);
	assert_false(f->report.corrupt || f->report.torn);
	assert_int_equal(f->m.n, 1);
	free(orig);
	free(aside);
}

static void open__damaged_twice_in_one_second__both_files_kept(void **state)
{
	struct fx *f = *state;
	struct bytes file = { .n = 0 };

	b_raw(&file, "not a journal at all", 20);
	for (int i = 0; i < 3; ++i) {
		file_write(f->journal, file.b, file.n);
		fx_open(f);
		assert_true(f->report.corrupt);
		assert_int_equal(f->report.corrupt_offset, 0);
	}
	assert_int_equal(count_set_aside(f->dir), 3);
}

static void open__bad_magic__set_aside_and_fresh_journal(void **state)
{
	struct fx *f = *state;

	file_write(f->journal, "VPNPOOL2\1\0\0\0", HEADER_V1);
	fx_open(f);
	assert_true(f->report.corrupt);
	assert_int_equal(f->report.corrupt_offset, 0);
	assert_int_equal(file_size(f->report.set_aside), HEADER_V1);
	assert_int_equal(file_size(f->journal), HEADER_LEN);
	fx_open(f);
	assert_false(f->report.corrupt || f->report.torn);
}

static int64_t fixed_clock(void *ud)
{
	return *(const int64_t *)ud;
}

static void open__damaged_journal__set_aside_under_the_time_of_the_store_clock(void **state)
{
	struct fx *f = *state;
	int64_t t = 1234567;
	struct vp_store_io io = { .now = fixed_clock, .now_ud = &t };
	char want[256];

	file_write(f->journal, "VPNPOOL2\1\0\0\0", HEADER_V1);
	assert_int_equal(fx_open_io(f, &io), 0);
	snprintf(want, sizeof(want), "%s.corrupt-1234567", f->journal);
	assert_string_equal(f->report.set_aside, want);
	vp_store_close(f->store);
	f->store = NULL;
	file_write(f->journal, "VPNPOOL2\1\0\0\0", HEADER_V1);
	assert_int_equal(fx_open_io(f, &io), 0);
	snprintf(want, sizeof(want), "%s.corrupt-1234567-1", f->journal);
	assert_string_equal(f->report.set_aside, want);
}

static void journal_size__is_the_files_size_or_enoent_before_the_first_open(void **state)
{
	struct fx *f = *state;
	struct vp_lease_rec rec = { .identity = (const uint8_t *)"alice", .identity_len = 5 };
	uint64_t size = 1;

	assert_int_equal(vp_store_journal_size(f->dir, &size), -ENOENT);
	assert_int_equal(size, 0);
	fx_open(f);
	assert_int_equal(vp_store_journal_size(f->dir, &size), 0);
	assert_int_equal(size, HEADER_LEN);
	assert_int_equal(vp_store_put(f->store, &rec), 0);
	assert_int_equal(vp_store_journal_size(f->dir, &size), 0);
	assert_int_equal(size, file_size(f->journal));
	assert_true(size > HEADER_LEN);
}

static void open__newer_version__refused_and_left_alone(void **state)
{
	struct fx *f = *state;

	file_write(f->journal, "VPNPOOL1\3\0\0\0", HEADER_V1);
	assert_int_equal(fx_open_io(f, NULL), -EPROTONOSUPPORT);
	assert_null(f->store);
	assert_int_equal(count_set_aside(f->dir), 0);
	assert_int_equal(fx_read(f), -EPROTONOSUPPORT);
}

static void open__garbage__never_crashes(void **state)
{
	struct fx *f = *state;
	struct bytes file;

	srand(42);
	for (int round = 0; round < 300; ++round) {
		size_t len = (size_t)rand() % 600;

		file.n = 0;
		if (round % 2)
			b_header(&file);
		for (size_t i = 0; i < len; ++i) {
			uint8_t c = (uint8_t)rand();

			/* small lengths now and then, so that records get decoded */
			if (round % 3 == 0 && (file.n - HEADER_V1) % 64 < 4)
				c = (file.n - HEADER_V1) % 64 ? 0 : 40;
			b_raw(&file, &c, 1);
		}
		file_write(f->journal, file.b, file.n);
		assert_int_equal(fx_read(f), 0);
		fx_open(f);
		put_v4(f, "alice", 0, 1);
		fx_open(f);
		assert_false(f->report.corrupt || f->report.torn);
		assert_non_null(model_get(&f->m, "alice", 0));
		fx_close(f);
	}
}

/* ---- every malformed field reaches the decoder ------------------------------------ */

static void decoder__crafted_valid_record__accepted(void **state)
{
	struct fx *f = *state;
	struct craft ok = craft_ok();
	const struct vp_lease_rec *r;

	assert_int_equal(craft_journal(f, &ok, true), 0);
	assert_false(f->report.corrupt || f->report.torn);
	assert_int_equal(f->report.records, 3);
	r = model_get(&f->m, "craft", 0);
	assert_non_null(r);
	assert_string_equal(r->real, "1.2");
	r = NULL;
	ok = craft_ok();
	ok.real_len = ok.real_bytes = 9;
	assert_int_equal(craft_journal(f, &ok, false), 0);
	assert_string_equal(model_get(&f->m, "craft", 0)->real, "1.2.3.4:5");
	assert_int_equal(model_get(&f->m, "craft", 0)->subnet6.len, 64);
	assert_int_equal(model_get(&f->m, "craft", 0)->state, VP_LEASE_ONLINE);
}

static void decoder__malformed_fields__rejected_mid_file_and_at_end(void **state)
{
	struct fx *f = *state;
	struct craft c, cases[32];
	size_t n = 0;
	uint64_t second = second_record_offset();

#define CASE(...) do { c = craft_ok(); __VA_ARGS__; cases[n++] = c; } while (0)
	CASE(c.type = 3);
	CASE(c.type = 0);
	CASE(c.type = 2, c.trailing = 1);		/* a DEL with a byte over */
	CASE(c.fam4 = 5);
	CASE(c.fam4 = 6);				/* IPv6 where IPv4 belongs */
	CASE(c.sub4_fam = 6);
	CASE(c.sub4_len = 33);
	CASE(c.sub6_len = 129);
	CASE(c.sub4_addr = 0x0a090101);			/* host bits under /24 */
	CASE(c.sub6_last = 1);				/* host bits under /64 */
	CASE(c.sub6_len = 0);				/* fd00::/0 */
	CASE(c.identity_len = 0, c.identity_bytes = 0);
	CASE(c.identity_len = c.identity_bytes = VP_IDENTITY_MAX + 1);
	CASE(c.identity_len = 400);			/* runs past the record */
	CASE(c.identity_len = 4);			/* the rest misparses */
	CASE(c.real_len = c.real_bytes = VP_REAL_MAX);
	CASE(c.real_len = 200);
	CASE(c.state = 2);
	CASE(c.state = 255);
	CASE(c.trailing = 1);
	CASE(c.cut = 1);
	CASE(c.cut = 20);
#undef CASE
	for (size_t i = 0; i < n; ++i) {
		assert_int_equal(craft_journal(f, &cases[i], true), 0);
		print_message("case %zu: %s\n", i, f->report.detail);
		assert_true(f->report.corrupt);
		assert_false(f->report.torn);
		assert_int_equal(f->report.corrupt_offset, second);
		assert_int_equal(f->report.records, 1);
		assert_true(f->report.detail[0]);
		assert_string_not_equal(f->report.detail, "checksum mismatch");
		assert_int_equal(craft_journal(f, &cases[i], false), 0);
		assert_true(f->report.torn);
		assert_false(f->report.corrupt);
		assert_int_equal(f->report.records, 1);
		assert_int_equal(f->m.n, 1);
	}
}

static void decoder__impossible_lengths__damage(void **state)
{
	struct fx *f = *state;
	struct craft ok = craft_ok();
	struct bytes file = { .n = 0 }, p;
	const uint32_t lens[] = { 0, 70000, UINT32_MAX };

	for (size_t i = 0; i < sizeof(lens) / sizeof(*lens); ++i) {
		file.n = 0;
		b_header(&file);
		craft_payload(&p, &ok);
		b_record(&file, &p);
		b_le(&file, lens[i], 4);
		b_le(&file, 0, 4);
		b_raw(&file, "junk", 4);
		file_write(f->journal, file.b, file.n);
		assert_int_equal(fx_read(f), 0);
		assert_true(f->report.corrupt);
		assert_int_equal(f->report.corrupt_offset, second_record_offset());
		assert_int_equal(f->report.records, 1);
	}
}

/* ---- failing writes ------------------------------------------------------------ */

struct fault {
	int calls;			/* write calls so far */
	int fail_at;			/* fail this call (1-based; 0: never) */
	int fail_errno;
	int short_at;			/* this call writes only short_len bytes */
	size_t short_len;
	int eintr_at;
	int fsync_fail;
};

static struct fault fault;		/* the io hooks take no context */

static ssize_t fault_write(int fd, const void *buf, size_t len)
{
	int call = ++fault.calls;

	if (call == fault.eintr_at) {
		errno = EINTR;
		return -1;
	}
	if (call == fault.fail_at) {
		errno = fault.fail_errno;
		return -1;
	}
	if (call == fault.short_at && fault.short_len < len)
		len = fault.short_len;
	return write(fd, buf, len);
}

static int fault_fsync(int fd)
{
	if (fault.fsync_fail) {
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

static const struct vp_store_io fault_io = { .write = fault_write, .fsync = fault_fsync };

static void fault_open(struct fx *f)
{
	memset(&fault, 0, sizeof(fault));
	assert_int_equal(fx_open_io(f, &fault_io), 0);
	put_v4(f, "alice", 0, 0x0a080002);
	put_v4(f, "bob", 0, 0x0a080003);
	fault.calls = 0;
}

static void assert_alice_and_bob_only(struct fx *f)
{
	fx_open(f);
	assert_false(f->report.torn || f->report.corrupt);
	assert_int_equal(f->report.records, 2);
	assert_int_equal(f->m.n, 2);
	assert_int_equal(vp_addr_to_v4(&model_get(&f->m, "alice", 0)->addr4), 0x0a080002);
}

static void put__write_fails_enospc__journal_unchanged(void **state)
{
	struct fx *f = *state;
	struct vp_lease_rec r = lease_v4("alice", 0, 0x0a0800ff);
	off_t size;

	fault_open(f);
	size = file_size(f->journal);
	fault.fail_at = 1;
	fault.fail_errno = ENOSPC;
	assert_int_equal(vp_store_put(f->store, &r), -ENOSPC);
	assert_int_equal(file_size(f->journal), size);
	assert_int_equal(vp_store_appended(f->store), 2);
	assert_alice_and_bob_only(f);
}

static void put__short_write_then_enospc__journal_unchanged(void **state)
{
	struct fx *f = *state;
	struct vp_lease_rec r = lease_v4("alice", 0, 0x0a0800ff);
	off_t size;

	fault_open(f);
	size = file_size(f->journal);
	fault.short_at = 1;
	fault.short_len = 10;
	fault.fail_at = 2;
	fault.fail_errno = ENOSPC;
	assert_int_equal(vp_store_put(f->store, &r), -ENOSPC);
	assert_int_equal(fault.calls, 2);
	assert_int_equal(file_size(f->journal), size);
	/* the next put goes in whole, after the last good record */
	put_v4(f, "carol", 0, 0x0a080004);
	fx_open(f);
	assert_false(f->report.torn || f->report.corrupt);
	assert_int_equal(f->m.n, 3);
	assert_int_equal(vp_addr_to_v4(&model_get(&f->m, "alice", 0)->addr4), 0x0a080002);
}

static void put__interrupted_and_short_writes__retried_to_the_end(void **state)
{
	struct fx *f = *state;

	fault_open(f);
	fault.eintr_at = 1;
	fault.short_at = 2;
	fault.short_len = 7;
	put_v4(f, "carol", 0, 0x0a080004);
	assert_int_equal(fault.calls, 3);
	fx_open(f);
	assert_int_equal(f->m.n, 3);
}

static void put__fsync_fails__error_and_record_gone(void **state)
{
	struct fx *f = *state;
	struct vp_store_replay r = model_replay(&f->m);
	struct vp_lease_rec rec = lease_v4("carol", 0, 0x0a080004);

	memset(&fault, 0, sizeof(fault));
	assert_int_equal(vp_store_open(&f->store, f->dir, true, &fault_io, &r, NULL, NULL), 0);
	put_v4(f, "alice", 0, 0x0a080002);
	put_v4(f, "bob", 0, 0x0a080003);
	fault.fsync_fail = 1;
	assert_int_equal(vp_store_put(f->store, &rec), -EIO);
	assert_alice_and_bob_only(f);
}

/* ---- compaction ----------------------------------------------------------------- */

static void compact__live_set_only__survives_reopen(void **state)
{
	struct fx *f = *state;
	char id[16];
	off_t before;

	fx_open(f);
	for (int round = 0; round < 10; ++round)
		for (int i = 0; i < 20; ++i) {
			snprintf(id, sizeof(id), "client-%d", i);
			put_v4(f, id, 0, 0x0a080000U + (uint32_t)(round * 20 + i));
		}
	for (int i = 0; i < 20; i += 2) {
		snprintf(id, sizeof(id), "client-%d", i);
		assert_int_equal(vp_store_del(f->store, (const uint8_t *)id, strlen(id), 0), 0);
	}
	before = file_size(f->journal);
	fx_open(f);
	assert_int_equal(f->m.n, 10);
	assert_int_equal(vp_store_compact(f->store, model_each, &f->m), 0);
	assert_true(file_size(f->journal) < before / 10);
	assert_int_equal(vp_store_appended(f->store), 0);
	put_v4(f, "late", 0, 0x0a0900ff);
	assert_int_equal(vp_store_appended(f->store), 1);
	fx_open(f);
	assert_false(f->report.torn || f->report.corrupt);
	assert_int_equal(f->report.records, 11);
	assert_int_equal(f->m.n, 11);
	assert_null(model_get(&f->m, "client-0", 0));
	assert_int_equal(vp_addr_to_v4(&model_get(&f->m, "client-9", 0)->addr4),
			 0x0a080000U + 9 * 20 + 9);
	assert_non_null(model_get(&f->m, "late", 0));
}

static int each_fails(void *ud, vp_store_emit_fn emit, void *ctx)
{
	struct vp_lease_rec r = lease_v4("ghost", 0, 1);

	assert_int_equal(emit(ctx, &r), 0);
	return -ENOMEM;
}

static void compact__fails__old_journal_kept_and_tmp_removed(void **state)
{
	struct fx *f = *state;
	char tmp[160];
	uint8_t *before, *after;
	size_t len, alen;

	fault_open(f);
	before = file_read(f->journal, &len);
	assert_int_equal(vp_store_compact(f->store, each_fails, NULL), -ENOMEM);
	fault.fail_at = 1;
	fault.fail_errno = ENOSPC;
	assert_int_equal(vp_store_compact(f->store, model_each, &f->m), -ENOSPC);
	fault.fail_at = 0;
	fault.fsync_fail = 1;
	assert_int_equal(vp_store_compact(f->store, model_each, &f->m), -EIO);
	fault.fsync_fail = 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->journal);
	assert_int_equal(access(tmp, F_OK), -1);
	after = file_read(f->journal, &alen);
	assert_int_equal(alen, len);
	assert_memory_equal(after, before, len);
	assert_int_equal(vp_store_appended(f->store), 2);
	put_v4(f, "carol", 0, 0x0a080004);	/* still appending to the old file */
	fx_open(f);
	assert_int_equal(f->m.n, 3);
	free(before);
	free(after);
}

/* ---- compaction in the background ------------------------------------------------- */

static void fill_rounds(struct fx *f)
{
	char id[16];

	for (int round = 0; round < 5; ++round)
		for (int i = 0; i < 20; ++i) {
			snprintf(id, sizeof(id), "client-%d", i);
			put_v4(f, id, 0, 0x0a080000U + (uint32_t)(round * 20 + i));
		}
}

static void compact_start__records_appended_meanwhile__kept(void **state)
{
	struct fx *f = *state;
	char tmp[160];
	off_t before;

	fx_open(f);
	fill_rounds(f);
	before = file_size(f->journal);
	fx_open(f);				/* the model: the 20 live leases */
	assert_int_equal(vp_store_compact_start(f->store), 0);
	assert_true(vp_store_compacting(f->store));
	assert_int_equal(vp_store_compact_start(f->store), -EALREADY);
	/* After the snapshot: one more lease, one fewer. */
	put_v4(f, "late", 0, 0x0a0900ff);
	assert_int_equal(vp_store_del(f->store, (const uint8_t *)"client-3", 8, 0), 0);
	assert_int_equal(vp_store_compact_poll(f->store, true), 0);
	assert_false(vp_store_compacting(f->store));
	assert_int_equal(vp_store_compact_poll(f->store, false), 0);	/* nothing running */
	assert_int_equal(vp_store_appended(f->store), 2);
	assert_true(file_size(f->journal) < before / 3);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->journal);
	assert_int_equal(access(tmp, F_OK), -1);
	put_v4(f, "later", 0, 0x0a0900fe);	/* appends go to the new journal */
	/* Once more, from the journal the last one put in place (whose fd
	 * only appends); the model catches up with the live set first. */
	{
		struct vp_lease_rec late = lease_v4("late", 0, 0x0a0900ff);
		struct vp_lease_rec later = lease_v4("later", 0, 0x0a0900fe);

		assert_int_equal(model_put(&f->m, &late), 0);
		assert_int_equal(model_put(&f->m, &later), 0);
		assert_int_equal(model_del(&f->m, (const uint8_t *)"client-3", 8, 0), 0);
	}
	assert_int_equal(vp_store_compact_start(f->store), 0);
	put_v4(f, "latest", 0, 0x0a0900fd);
	assert_int_equal(vp_store_compact_poll(f->store, true), 0);
	assert_int_equal(vp_store_appended(f->store), 1);
	assert_int_equal(vp_store_del(f->store, (const uint8_t *)"latest", 6, 0), 0);
	fx_open(f);
	assert_false(f->report.torn || f->report.corrupt);
	assert_int_equal(f->report.records, 23);
	assert_int_equal(f->m.n, 21);
	assert_null(model_get(&f->m, "client-3", 0));
	assert_non_null(model_get(&f->m, "late", 0));
	assert_non_null(model_get(&f->m, "later", 0));
	assert_int_equal(vp_addr_to_v4(&model_get(&f->m, "client-19", 0)->addr4),
			 0x0a080000U + 4 * 20 + 19);
}

static void compact_start__closed_or_superseded__nothing_lost(void **state)
{
	struct fx *f = *state;
	char tmp[160];

	fx_open(f);
	fill_rounds(f);
	fx_open(f);
	assert_int_equal(vp_store_compact_start(f->store), 0);
	put_v4(f, "late", 0, 0x0a0900ff);
	fx_close(f);				/* the child is stopped, its file dropped */
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->journal);
	assert_int_equal(access(tmp, F_OK), -1);
	fx_open(f);
	assert_int_equal(f->m.n, 21);
	assert_int_equal(vp_store_compact_start(f->store), 0);
	assert_int_equal(vp_store_compact(f->store, model_each, &f->m), 0);	/* wins */
	assert_false(vp_store_compacting(f->store));
	assert_int_equal(vp_store_appended(f->store), 0);
	fx_open(f);
	assert_int_equal(f->report.records, 21);
	assert_int_equal(f->m.n, 21);
}

static void compact_start__journal_damaged__fails_and_journal_kept(void **state)
{
	struct fx *f = *state;
	char tmp[160];
	size_t len, alen;
	uint8_t *before, *after;
	int fd;

	fx_open(f);
	fill_rounds(f);
	/* A byte flipped on disk under the store, mid-file. */
	fd = open(f->journal, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff", 1, file_size(f->journal) / 2), 1);
	close(fd);
	before = file_read(f->journal, &len);
	assert_int_equal(vp_store_compact_start(f->store), 0);
	assert_int_equal(vp_store_compact_poll(f->store, true), -EIO);
	assert_false(vp_store_compacting(f->store));
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->journal);
	assert_int_equal(access(tmp, F_OK), -1);
	after = file_read(f->journal, &alen);
	assert_int_equal(alen, len);
	assert_memory_equal(after, before, len);
	/* Set aside at the next open: what came before the damage lives only
	 * in the caller, so only a compaction from memory may write it. */
	fx_open(f);
	assert_true(f->report.corrupt);
	assert_int_equal(vp_store_compact_start(f->store), -ESTALE);
	assert_false(vp_store_compacting(f->store));
	free(before);
	free(after);
}

/* ---- many keys, and a compaction held at its first write ------------------------ */

#define KEYS 3000

/* The last address put for "k<i>", 0 once deleted or never put. */
struct keyed {
	uint32_t addr[KEYS];
};

static int keyed_put(void *ud, const struct vp_lease_rec *rec)
{
	struct keyed *k = ud;
	char id[16];
	unsigned i;

	assert_true(rec->identity_len < sizeof(id));
	memcpy(id, rec->identity, rec->identity_len);
	id[rec->identity_len] = '\0';
	assert_int_equal(sscanf(id, "k%u", &i), 1);
	assert_true(i < KEYS);
	k->addr[i] = vp_addr_to_v4(&rec->addr4);
	return 0;
}

static int keyed_del(void *ud, const uint8_t *identity, size_t len, uint16_t slot)
{
	struct keyed *k = ud;
	char id[16];
	unsigned i;

	assert_true(len < sizeof(id) && slot == 0);
	memcpy(id, identity, len);
	id[len] = '\0';
	assert_int_equal(sscanf(id, "k%u", &i), 1);
	k->addr[i] = 0;
	return 0;
}

/* One random change to key i, made in the journal and in want. */
static void keyed_change(struct fx *f, struct keyed *want, unsigned *seed)
{
	unsigned i;
	char id[16];

	*seed = *seed * 1103515245u + 12345u;
	i = (*seed >> 8) % KEYS;
	snprintf(id, sizeof(id), "k%u", i);
	if ((*seed >> 4) % 5 == 0) {
		assert_int_equal(vp_store_del(f->store, (const uint8_t *)id, strlen(id), 0), 0);
		want->addr[i] = 0;
	} else {
		want->addr[i] = 0x0a000000U + (*seed >> 8);
		put_v4(f, id, 0, want->addr[i]);
	}
}

/* Reopen and compare every key with want; the load found no damage. */
static void keyed_check(struct fx *f, const struct keyed *want)
{
	static struct keyed got;
	struct vp_store_replay r = { .put = keyed_put, .del = keyed_del, .ud = &got };
	char tmp[160];

	memset(&got, 0, sizeof(got));
	fx_close(f);
	assert_int_equal(vp_store_open(&f->store, f->dir, false, NULL, &r, &f->report, NULL), 0);
	assert_false(f->report.torn || f->report.corrupt);
	assert_memory_equal(got.addr, want->addr, sizeof(want->addr));
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->journal);
	assert_int_equal(access(tmp, F_OK), -1);
}

/* The store's thread stops at its first write until the test opens the
 * gate; the test's own writes pass. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t test;
	bool entered, open;
} gate = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static ssize_t gate_write(int fd, const void *buf, size_t len)
{
	if (!pthread_equal(pthread_self(), gate.test)) {
		pthread_mutex_lock(&gate.lock);
		gate.entered = true;
		pthread_cond_broadcast(&gate.cond);
		while (!gate.open)
			pthread_cond_wait(&gate.cond, &gate.lock);
		pthread_mutex_unlock(&gate.lock);
	}
	return write(fd, buf, len);
}

static void gate_reset(void)
{
	gate.test = pthread_self();
	gate.entered = gate.open = false;
}

static void gate_wait_entered(void)
{
	pthread_mutex_lock(&gate.lock);
	while (!gate.entered)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

static void gate_open(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

static const struct vp_store_io gate_io = { .write = gate_write };

/* A journal of KEYS keys changed 4 times over, through the gate. */
static void keyed_fill(struct fx *f, struct keyed *want, unsigned *seed)
{
	char id[16];

	memset(want, 0, sizeof(*want));
	gate_reset();
	assert_int_equal(fx_open_io(f, &gate_io), 0);
	for (unsigned i = 0; i < KEYS; ++i) {
		snprintf(id, sizeof(id), "k%u", i);
		want->addr[i] = 0x0a080000U + i;
		put_v4(f, id, 0, want->addr[i]);
	}
	for (unsigned n = 0; n < 3 * KEYS; ++n)
		keyed_change(f, want, seed);
}

static void compact_start__records_appended_while_it_runs__all_survive(void **state)
{
	struct fx *f = *state;
	static struct keyed want;
	unsigned seed = 11, live = 0;
	off_t before;

	keyed_fill(f, &want, &seed);
	before = file_size(f->journal);
	for (unsigned i = 0; i < KEYS; ++i)
		live += want.addr[i] != 0;
	assert_int_equal(vp_store_compact_start(f->store), 0);
	gate_wait_entered();		/* the thread has read the journal */
	/* More than the thread leaves to the poll: it copies these itself. */
	for (unsigned n = 0; n < KEYS; ++n)
		keyed_change(f, &want, &seed);
	gate_open();
	for (unsigned n = 0; n < 50; ++n)	/* maybe copied by the poll */
		keyed_change(f, &want, &seed);
	assert_true(vp_store_compacting(f->store));
	assert_int_equal(vp_store_compact_poll(f->store, true), 0);
	assert_false(vp_store_compacting(f->store));
	assert_int_equal(vp_store_appended(f->store), KEYS + 50);
	for (unsigned n = 0; n < 50; ++n)	/* into the new journal */
		keyed_change(f, &want, &seed);
	keyed_check(f, &want);
	/* One record per key live when it started, then every later one. */
	assert_int_equal(f->report.records, live + KEYS + 50 + 50);
	assert_true(file_size(f->journal) < before);
}

static void compact_start__closed_while_it_runs__nothing_lost(void **state)
{
	struct fx *f = *state;
	static struct keyed want;
	unsigned seed = 12;

	keyed_fill(f, &want, &seed);
	assert_int_equal(vp_store_compact_start(f->store), 0);
	gate_wait_entered();
	for (unsigned n = 0; n < KEYS; ++n)
		keyed_change(f, &want, &seed);
	gate_open();
	fx_close(f);			/* stops the thread wherever it is */
	keyed_check(f, &want);
}

/* The filesystem of this process, but the temporary journal cannot be made. */
static int no_tmp_open(void *ud, const char *path, int flags, mode_t mode)
{
	const struct vp_fs *direct = vp_fs_direct();
	size_t len = strlen(path);

	(void)ud;
	if (len > 4 && !strcmp(path + len - 4, ".tmp"))
		return -EACCES;
	return direct->open(direct->ud, path, flags, mode);
}

static void compact_start__tmp_cannot_be_made__journal_intact(void **state)
{
	struct fx *f = *state;
	struct vp_fs fs = *vp_fs_direct();
	struct vp_store_io io = { .fs = &fs };
	uint8_t *before, *after;
	size_t len, alen;

	fs.open = no_tmp_open;
	fx_open(f);
	fill_rounds(f);
	assert_int_equal(fx_open_io(f, &io), 0);
	before = file_read(f->journal, &len);
	assert_int_equal(vp_store_compact_start(f->store), -EACCES);
	assert_false(vp_store_compacting(f->store));
	assert_int_equal(vp_store_compact_poll(f->store, true), 0);	/* none running */
	after = file_read(f->journal, &alen);
	assert_int_equal(alen, len);
	assert_memory_equal(after, before, len);
	put_v4(f, "late", 0, 0x0a0900ff);	/* the journal goes on */
	fx_open(f);
	assert_int_equal(f->m.n, 21);
	free(before);
	free(after);
}

/* ---- the lock-free reader -------------------------------------------------------- */

static void read__store_open__sees_every_put(void **state)
{
	struct fx *f = *state;
	struct vp_store_replay r = model_replay(&f->m);
	struct vp_store *store;
	struct model m2;
	struct vp_store_replay r2 = model_replay(&m2);
	struct vp_lease_rec full = lease_full("erin");

	assert_int_equal(vp_store_open(&store, f->dir, false, NULL, &r, NULL, NULL), 0);
	assert_int_equal(vp_store_put(store, &full), 0);
	assert_int_equal(vp_store_read(f->dir, &r2, &f->report), 0);
	assert_int_equal(m2.n, 1);
	assert_lease_equal(model_get(&m2, "erin", 3), &full);
	assert_int_equal(vp_store_del(store, full.identity, full.identity_len, 3), 0);
	assert_int_equal(vp_store_read(f->dir, &r2, NULL), 0);
	assert_int_equal(m2.n, 0);
	vp_store_close(store);
}

static void read__no_journal__enoent(void **state)
{
	struct fx *f = *state;

	assert_int_equal(fx_read(f), -ENOENT);
}

static void read__torn_tail_or_damage__reported_file_untouched(void **state)
{
	struct fx *f = *state;
	uint8_t *data;
	size_t len;
	off_t second;

	fx_open(f);
	put_v4(f, "alice", 0, 1);
	second = file_size(f->journal);
	put_v4(f, "bob", 0, 2);
	fx_close(f);
	data = file_read(f->journal, &len);
	file_truncate(f->journal, file_size(f->journal) - 1);
	assert_int_equal(fx_read(f), 0);
	assert_true(f->report.torn);
	assert_int_equal(f->report.torn_offset, second);
	assert_int_equal(f->m.n, 1);
	assert_int_equal(file_size(f->journal), f->report.bytes);

	data[second + 9] ^= 1;
	file_write(f->journal, data, len);
	file_truncate(f->journal, (off_t)len + 1);	/* damage followed by a byte */
	assert_int_equal(fx_read(f), 0);
	assert_true(f->report.corrupt);
	assert_int_equal(f->report.corrupt_offset, second);
	assert_string_equal(f->report.set_aside, "");
	assert_int_equal(file_size(f->journal), (off_t)len + 1);
	assert_int_equal(count_set_aside(f->dir), 0);
	free(data);
}

/* What the size hint saw: how often, the bytes, and the records before it. */
static struct {
	unsigned calls;
	uint64_t bytes, puts, puts_before;
} sized;

static void sized_size(void *ud, uint64_t bytes)
{
	(void)ud;
	sized.calls++;
	sized.bytes = bytes;
	sized.puts_before = sized.puts;
}

static int sized_put(void *ud, const struct vp_lease_rec *rec)
{
	(void)ud;
	(void)rec;
	sized.puts++;
	return 0;
}

static void open_and_read__size_hint__once_before_the_records_with_the_journal_size(void **state)
{
	struct fx *f = *state;
	struct vp_store_replay r = { .put = sized_put, .size = sized_size };

	fx_open(f);
	put_v4(f, "a", 0, 0x0a000001);
	put_v4(f, "b", 0, 0x0a000002);
	put_v4(f, "c", 0, 0x0a000003);
	fx_close(f);
	memset(&sized, 0, sizeof(sized));
	assert_int_equal(vp_store_open(&f->store, f->dir, false, NULL, &r, &f->report, NULL), 0);
	assert_int_equal(sized.calls, 1);
	assert_int_equal(sized.bytes, file_size(f->journal));
	assert_int_equal(sized.puts_before, 0);
	assert_int_equal(sized.puts, 3);
	fx_close(f);
	memset(&sized, 0, sizeof(sized));
	assert_int_equal(vp_store_read(f->dir, &r, &f->report), 0);
	assert_int_equal(sized.calls, 1);
	assert_int_equal(sized.bytes, file_size(f->journal));
	assert_int_equal(sized.puts_before, 0);
	assert_int_equal(sized.puts, 3);
}

static void open__callback_fails__error_returned_nothing_changed(void **state)
{
	struct fx *f = *state;
	struct vp_store_replay r;
	off_t size;

	fx_open(f);
	put_v4(f, "alice", 0, 1);
	put_v4(f, "bob", 0, 2);
	fx_close(f);
	size = file_size(f->journal);
	r = model_replay(&f->m);
	f->m.fail_after = 1;
	assert_int_equal(vp_store_open(&f->store, f->dir, false, NULL, &r, NULL, NULL), -EIO);
	assert_null(f->store);
	assert_int_equal(file_size(f->journal), size);
	fx_open(f);				/* and the lock was released */
	assert_int_equal(f->m.n, 2);
}

/* The checksum is the standard CRC-32C, whichever way this CPU computes it. */
static void crc32c__known_vectors_and_every_length__fast_equals_portable(void **state)
{
	uint8_t buf[300];

	(void)state;
	assert_int_equal(vp_store_crc32c("123456789", 9, true), 0xe3069283U);
	assert_int_equal(vp_store_crc32c("123456789", 9, false), 0xe3069283U);
	assert_int_equal(vp_store_crc32c("", 0, false), 0);
	for (size_t i = 0; i < sizeof(buf); ++i)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 8; ++off)
		for (size_t len = 0; len + off <= sizeof(buf); ++len)
			assert_int_equal(vp_store_crc32c(buf + off, len, false),
					 vp_store_crc32c(buf + off, len, true));
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(put_del__replayed__last_put_wins_and_del_removes),
		T(put__every_field__survives_reopen),
		T(open__new_dir__created_with_parents_and_empty_journal),
		T(put__invalid_lease__einval_and_nothing_written),
		T(open__dir_already_open__second_store_shares_it),
		T(compaction__a_second_store_follows_moved_without_reading_again),
		T(lock__stores_of_one_directory__exclude_each_other_per_change),
		T(open__last_record_cut_at_every_length__dropped_earlier_kept),
		T(open__zero_filled_tail__torn_not_corrupt),
		T(open__header_cut_short__starts_afresh),
		T(open__byte_flipped_mid_file__set_aside_earlier_records_kept),
		T(open__damaged_twice_in_one_second__both_files_kept),
		T(open__bad_magic__set_aside_and_fresh_journal),
		T(open__damaged_journal__set_aside_under_the_time_of_the_store_clock),
		T(journal_size__is_the_files_size_or_enoent_before_the_first_open),
		T(open__newer_version__refused_and_left_alone),
		T(open__garbage__never_crashes),
		T(decoder__crafted_valid_record__accepted),
		T(decoder__malformed_fields__rejected_mid_file_and_at_end),
		T(decoder__impossible_lengths__damage),
		T(put__write_fails_enospc__journal_unchanged),
		T(put__short_write_then_enospc__journal_unchanged),
		T(put__interrupted_and_short_writes__retried_to_the_end),
		T(put__fsync_fails__error_and_record_gone),
		T(compact__live_set_only__survives_reopen),
		T(compact__fails__old_journal_kept_and_tmp_removed),
		T(compact_start__records_appended_meanwhile__kept),
		T(compact_start__closed_or_superseded__nothing_lost),
		T(compact_start__journal_damaged__fails_and_journal_kept),
		T(compact_start__records_appended_while_it_runs__all_survive),
		T(compact_start__closed_while_it_runs__nothing_lost),
		T(compact_start__tmp_cannot_be_made__journal_intact),
		T(read__store_open__sees_every_put),
		T(read__no_journal__enoent),
		T(read__torn_tail_or_damage__reported_file_untouched),
		T(open__callback_fails__error_returned_nothing_changed),
		T(open_and_read__size_hint__once_before_the_records_with_the_journal_size),
		cmocka_unit_test(crc32c__known_vectors_and_every_length__fast_equals_portable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
