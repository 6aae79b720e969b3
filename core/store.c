/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The lease journal.  All integers are little-endian.
 *
 *   header   "VPNPOOL1", u32 version (2; 1 is still read), and from version 2
 *            on a u64 file id (random: names this file in MOVED records)
 *   record   u32 payload length, u32 CRC-32C of the payload, payload
 *   payload  u8 type, u16 slot, u16 key length, key, body:
 *     PUT (1)      key = identity; u8 state, u32 sessions, i64 created,
 *                  i64 since, u8 real length, real, addr4, addr6, subnet4,
 *                  subnet6, and (version 2) u16 instance slot (0xffff: none)
 *     DEL (2)      key = identity; no body
 *     INSTANCE (3) slot = instance slot, no key; u8 flags (1: stopped),
 *                  u32 pid, u32 ifindex, i64 time, u8 name length, name,
 *                  u8 device length, device
 *     MOVED (4)    no key; u64 file id, u64 offset: the journal was
 *                  replaced by the file of that id; its records from that
 *                  offset on follow this one.  Always a file's last record.
 *   address  u8 family (0, 4 or 6), then 0, 4 or 16 bytes in network order
 *   subnet   an address, then a u8 prefix length unless the family is 0
 *
 * A PUT without the instance field (version 1) has no instance.  The last
 * record of a key wins: PUT and DEL share keys (slot, identity); INSTANCE
 * records are keyed by their slot alone.
 *
 * The decoder trusts nothing: every length is checked against the payload,
 * every value against the rules the encoder follows, and a payload must be
 * used up exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "siphash.h"
#include "store.h"

#define JOURNAL "leases.journal"
#define JOURNAL_TMP JOURNAL ".tmp"
#define MAGIC "VPNPOOL1"
#define MAGIC_LEN 8
#define VERSION 2
#define HEADER_V1 (MAGIC_LEN + 4)
#define HEADER_LEN (MAGIC_LEN + 4 + 8)	/* what this code writes */
#define REC_HEADER 8
#define REC_PUT 1
#define REC_DEL 2
#define REC_INSTANCE 3
#define REC_MOVED 4
#define INST_STOPPED 1
/* The largest payload the encoder can produce, rounded up. */
#define MAX_PAYLOAD (64 + VP_IDENTITY_MAX + VP_REAL_MAX + 2 * 18 + 2 * 19)
/* Lock file bytes (OFD locks, see store.h). */
#define LOCK_MUTEX 0
#define LOCK_COMPACT 1
#define LOCK_SLOT0 16
#define MAX_RECORD (REC_HEADER + MAX_PAYLOAD)
#define CHUNK (1 << 20)			/* read and compaction buffer */

struct vp_store {
	char *dir;
	int lock_fd, fd;
	bool do_fsync;
	bool tail_dirty;		/* a failed append could not be cut back */
	bool in_change;			/* the mutex (lock byte 0) is held */
	bool compact_lock;		/* lock byte 1 is held */
	uint64_t end;			/* end of the last whole record, read or written */
	uint64_t appended;
	uint64_t file_id;		/* of the journal open on fd (0: version 1) */
	uint32_t hdr_len;		/* its header's length */
	struct vp_store_replay replay;	/* what catching up applies records to */
	int my_slot;			/* the registered instance's slot, or -1 */
	uint64_t caught_up;		/* catch-ups that read records (for tests) */
	struct vp_instance_rec *inst;	/* VP_INSTANCE_MAX: last INSTANCE record */
	_Atomic uint64_t *gen;		/* the lock file's change counter (mapped),
					 * or NULL: look at the journal's size */
	uint64_t seen_gen;		/* its value when this store last caught up */
	uint8_t *scan_buf;		/* SCAN_BUF bytes, for catching up */
	struct vp_store_io io;
	const struct vp_fs *fs;
	struct bg *bg;			/* a compaction in the background, or NULL */
	uint32_t crc_table[256];
	uint8_t buf[MAX_RECORD];
};

/* ---- CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) ------------------ */

static void crc32c_init(uint32_t table[256])
{
	for (uint32_t i = 0; i < 256; ++i) {
		uint32_t c = i;

		for (int k = 0; k < 8; ++k)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
		table[i] = c;
	}
}

static uint32_t crc32c_table(const uint32_t table[256], const uint8_t *p, size_t len)
{
	uint32_t c = ~0U;

	while (len--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The SSE4.2 instruction computes the same CRC-32C eight bytes at a time:
 * replaying a million records is dominated by it otherwise. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(const uint8_t *p, size_t len)
{
	uint64_t c = ~0U;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	for (; len; --len)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static uint32_t crc32c(const uint32_t table[256], const uint8_t *p, size_t len)
{
	static int have_sse42 = -1;

	if (have_sse42 < 0)
		have_sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	return have_sse42 ? crc32c_sse42(p, len) : crc32c_table(table, p, len);
}
#else
static uint32_t crc32c(const uint32_t table[256], const uint8_t *p, size_t len)
{
	return crc32c_table(table, p, len);
}
#endif

uint32_t vp_store_crc32c(const void *data, size_t len, bool portable)
{
	uint32_t table[256];

	crc32c_init(table);
	return portable ? crc32c_table(table, data, len) : crc32c(table, data, len);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* ---- what a valid lease looks like (shared by encoder and decoder) --------- */

static bool addr_fits(const struct vp_addr *a, enum vp_family family)
{
	if (a->family == 0)
		return true;
	if (a->family != family)
		return false;
	return family == VP_INET6 || (a->hi == 0 && a->lo <= UINT32_MAX);
}

static bool prefix_fits(const struct vp_prefix *p, enum vp_family family)
{
	struct vp_prefix net;

	if (!addr_fits(&p->addr, family))
		return false;
	if (p->addr.family == 0)
		return true;
	if (p->len > vp_family_bits(family))
		return false;
	net = vp_prefix_of(&p->addr, p->len);
	return vp_addr_eq(&net.addr, &p->addr);
}

static const char *identity_invalid(size_t identity_len)
{
	if (identity_len == 0 || identity_len > VP_IDENTITY_MAX)
		return "identity length out of range";
	return NULL;
}

/* NULL if rec can be stored and read back unchanged, else what is wrong. */
static const char *lease_invalid(const struct vp_lease_rec *rec)
{
	const char *why = identity_invalid(rec->identity_len);

	if (why)
		return why;
	if (rec->state > VP_LEASE_ONLINE)
		return "unknown lease state";
	if (!addr_fits(&rec->addr4, VP_INET) || !addr_fits(&rec->addr6, VP_INET6))
		return "address of the wrong family";
	if (!prefix_fits(&rec->subnet4, VP_INET) || !prefix_fits(&rec->subnet6, VP_INET6))
		return "subnet of the wrong family, too long a prefix, or host bits set";
	return NULL;
}

/* ---- encoding ---------------------------------------------------------------- */

struct writer {
	uint8_t *p, *end;
};

static void put_bytes(struct writer *w, const void *data, size_t len)
{
	if (!w->p || (size_t)(w->end - w->p) < len) {
		w->p = NULL;
		return;
	}
	memcpy(w->p, data, len);
	w->p += len;
}

static void put_uint(struct writer *w, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < bytes; ++i)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, bytes);
}

static void put_addr(struct writer *w, const struct vp_addr *a)
{
	uint8_t bytes[16];

	put_uint(w, a->family, 1);
	if (!a->family)
		return;
	vp_addr_to_bytes(a, bytes);
	put_bytes(w, bytes, a->family == VP_INET ? 4 : 16);
}

static void put_prefix(struct writer *w, const struct vp_prefix *p)
{
	put_addr(w, &p->addr);
	if (p->addr.family)
		put_uint(w, p->len, 1);
}

static void put_lease(struct writer *w, const struct vp_lease_rec *rec)
{
	size_t real_len = strnlen(rec->real, VP_REAL_MAX - 1);

	put_uint(w, rec->state, 1);
	put_uint(w, rec->sessions, 4);
	put_uint(w, (uint64_t)rec->created, 8);
	put_uint(w, (uint64_t)rec->since, 8);
	put_uint(w, real_len, 1);
	put_bytes(w, rec->real, real_len);
	put_addr(w, &rec->addr4);
	put_addr(w, &rec->addr6);
	put_prefix(w, &rec->subnet4);
	put_prefix(w, &rec->subnet6);
	put_uint(w, rec->instance, 2);
}

/*
 * Encode a whole record (header and payload) into out, which has room for
 * MAX_RECORD bytes.  rec is NULL for a DEL.  Returns the record's size, or 0
 * when the lease is not one the decoder would accept.
 */
static size_t encode(const uint32_t crc_table[256], uint8_t *out, const struct vp_lease_rec *rec,
		     const uint8_t *identity, size_t identity_len, uint16_t slot)
{
	struct writer w = { out + REC_HEADER, out + MAX_RECORD };
	size_t len;

	if (rec ? lease_invalid(rec) != NULL : identity_invalid(identity_len) != NULL)
		return 0;
	put_uint(&w, rec ? REC_PUT : REC_DEL, 1);
	put_uint(&w, slot, 2);
	put_uint(&w, identity_len, 2);
	put_bytes(&w, identity, identity_len);
	if (rec)
		put_lease(&w, rec);
	if (!w.p)
		return 0;
	len = (size_t)(w.p - (out + REC_HEADER));
	w.p = out;
	put_uint(&w, len, 4);
	put_uint(&w, crc32c(crc_table, out + REC_HEADER, len), 4);
	return REC_HEADER + len;
}

static size_t finish_record(const uint32_t crc_table[256], uint8_t *out, struct writer *w)
{
	size_t len;

	if (!w->p)
		return 0;
	len = (size_t)(w->p - (out + REC_HEADER));
	w->p = out;
	put_uint(w, len, 4);
	put_uint(w, crc32c(crc_table, out + REC_HEADER, len), 4);
	return REC_HEADER + len;
}

static bool instance_invalid(const struct vp_instance_rec *rec)
{
	size_t n = strnlen(rec->name, VP_INSTANCE_NAME_MAX);

	return rec->slot >= VP_INSTANCE_MAX || n == 0 || n == VP_INSTANCE_NAME_MAX ||
	       strnlen(rec->dev, VP_DEV_MAX) == VP_DEV_MAX;
}

static size_t encode_instance(const uint32_t crc_table[256], uint8_t *out,
			      const struct vp_instance_rec *rec)
{
	struct writer w = { out + REC_HEADER, out + MAX_RECORD };
	size_t name = strlen(rec->name), dev = strlen(rec->dev);

	if (instance_invalid(rec))
		return 0;
	put_uint(&w, REC_INSTANCE, 1);
	put_uint(&w, rec->slot, 2);
	put_uint(&w, 0, 2);
	put_uint(&w, rec->stopped ? INST_STOPPED : 0, 1);
	put_uint(&w, (uint32_t)rec->pid, 4);
	put_uint(&w, (uint32_t)rec->ifindex, 4);
	put_uint(&w, (uint64_t)rec->time, 8);
	put_uint(&w, name, 1);
	put_bytes(&w, rec->name, name);
	put_uint(&w, dev, 1);
	put_bytes(&w, rec->dev, dev);
	return finish_record(crc_table, out, &w);
}

static size_t encode_moved(const uint32_t crc_table[256], uint8_t *out, uint64_t id,
			   uint64_t offset)
{
	struct writer w = { out + REC_HEADER, out + MAX_RECORD };

	put_uint(&w, REC_MOVED, 1);
	put_uint(&w, 0, 2);
	put_uint(&w, 0, 2);
	put_uint(&w, id, 8);
	put_uint(&w, offset, 8);
	return finish_record(crc_table, out, &w);
}

/* ---- decoding ---------------------------------------------------------------- */

struct reader {
	const uint8_t *p, *end;
	const char *why;		/* first thing found wrong */
};

static void bad(struct reader *r, const char *why)
{
	if (!r->why)
		r->why = why;
}

static const uint8_t *get_bytes(struct reader *r, size_t len)
{
	const uint8_t *p = r->p;

	if (r->why || (size_t)(r->end - r->p) < len) {
		bad(r, "a field runs past the end of the record");
		return NULL;
	}
	r->p += len;
	return p;
}

static uint64_t get_uint(struct reader *r, unsigned bytes)
{
	const uint8_t *p = get_bytes(r, bytes);
	uint64_t v = 0;

	for (unsigned i = 0; p && i < bytes; ++i)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void get_addr(struct reader *r, struct vp_addr *a)
{
	unsigned family = (unsigned)get_uint(r, 1);
	const uint8_t *p;

	memset(a, 0, sizeof(*a));
	if (family == 0)
		return;
	if (family != VP_INET && family != VP_INET6) {
		bad(r, "unknown address family");
		return;
	}
	p = get_bytes(r, family == VP_INET ? 4 : 16);
	if (p)
		*a = vp_addr_from_bytes((enum vp_family)family, p);
}

static void get_prefix(struct reader *r, struct vp_prefix *p)
{
	get_addr(r, &p->addr);
	p->len = p->addr.family ? (uint8_t)get_uint(r, 1) : 0;
}

static void get_lease(struct reader *r, struct vp_lease_rec *rec)
{
	size_t real_len;
	const uint8_t *real;

	rec->state = (uint8_t)get_uint(r, 1);
	rec->sessions = (uint32_t)get_uint(r, 4);
	rec->created = (int64_t)get_uint(r, 8);
	rec->since = (int64_t)get_uint(r, 8);
	real_len = (size_t)get_uint(r, 1);
	if (real_len >= VP_REAL_MAX)
		bad(r, "real address too long");
	real = get_bytes(r, real_len);
	if (real && memchr(real, '\0', real_len))
		bad(r, "NUL byte in the real address");
	if (real)
		memcpy(rec->real, real, real_len);
	get_addr(r, &rec->addr4);
	get_addr(r, &rec->addr6);
	get_prefix(r, &rec->subnet4);
	get_prefix(r, &rec->subnet6);
}

/* A decoded record of any type. */
struct any_rec {
	unsigned type;
	struct vp_lease_rec lease;	/* PUT, DEL (identity and slot) */
	struct vp_instance_rec inst;	/* INSTANCE */
	uint64_t moved_id, moved_off;	/* MOVED */
};

static void get_text(struct reader *r, char *out, size_t size)
{
	size_t n = (size_t)get_uint(r, 1);
	const uint8_t *p;

	if (n >= size)
		bad(r, "text field too long");
	p = get_bytes(r, n);
	if (!p)
		return;
	if (memchr(p, '\0', n))
		bad(r, "NUL byte in a text field");
	memcpy(out, p, n);
	out[n] = '\0';
}

/* Decode a payload into *a (whose lease borrows from payload).  NULL on
 * success, else what is wrong with it. */
static const char *decode_any(const uint8_t *payload, size_t len, struct any_rec *a)
{
	struct reader r = { payload, payload + len, NULL };
	struct vp_lease_rec *rec = &a->lease;
	size_t key_len;

	memset(rec, 0, sizeof(*rec));
	rec->instance = VP_INSTANCE_NONE;
	a->type = (unsigned)get_uint(&r, 1);
	if (a->type < REC_PUT || a->type > REC_MOVED)
		bad(&r, "unknown record type");
	rec->slot = (uint16_t)get_uint(&r, 2);
	key_len = (size_t)get_uint(&r, 2);
	if (a->type == REC_PUT || a->type == REC_DEL) {
		rec->identity_len = key_len;
		if (!r.why && identity_invalid(rec->identity_len))
			bad(&r, identity_invalid(rec->identity_len));
		rec->identity = get_bytes(&r, rec->identity_len);
	} else if (key_len) {
		bad(&r, "a key where none belongs");
	}
	if (a->type == REC_PUT) {
		get_lease(&r, rec);
		if (!r.why && r.p != r.end)
			rec->instance = (uint16_t)get_uint(&r, 2);
		if (rec->instance >= VP_INSTANCE_MAX && rec->instance != VP_INSTANCE_NONE)
			bad(&r, "instance slot out of range");
	} else if (a->type == REC_INSTANCE) {
		memset(&a->inst, 0, sizeof(a->inst));
		a->inst.slot = rec->slot;
		a->inst.stopped = get_uint(&r, 1) & INST_STOPPED;
		a->inst.pid = (int32_t)get_uint(&r, 4);
		a->inst.ifindex = (int32_t)get_uint(&r, 4);
		a->inst.time = (int64_t)get_uint(&r, 8);
		get_text(&r, a->inst.name, sizeof(a->inst.name));
		get_text(&r, a->inst.dev, sizeof(a->inst.dev));
		if (!r.why && instance_invalid(&a->inst))
			bad(&r, "instance slot or name out of range");
	} else if (a->type == REC_MOVED) {
		a->moved_id = get_uint(&r, 8);
		a->moved_off = get_uint(&r, 8);
		if (!r.why && a->moved_off < HEADER_LEN)
			bad(&r, "MOVED to an offset inside the header");
	}
	if (!r.why && r.p != r.end)
		bad(&r, "trailing bytes in the record");
	if (!r.why && a->type == REC_PUT)
		r.why = lease_invalid(rec);
	return r.why;
}

/* ---- replay -------------------------------------------------------------------- */

/* The journal read in large chunks: no per-record system calls, and no mmap
 * (a concurrent truncation would turn into SIGBUS for vp_store_read). */
struct scan {
	int fd;
	uint64_t size;			/* bytes to read: the size when the scan began */
	uint64_t base;			/* file offset of buf[0] */
	size_t have;			/* bytes in buf */
	uint8_t *buf;
	size_t cap;			/* bytes buf holds (at least 2 * MAX_RECORD) */
	const uint32_t *crc_table;
	const struct vp_store_replay *replay;
	struct vp_store_report *report;
	struct vp_instance_rec *inst;	/* the store's table of instances, or NULL */
	bool moved;			/* a MOVED record ended the scan */
	uint64_t moved_id, moved_off;
};

/* Point *p at the data from file offset at (>= base), with at least want
 * bytes in *avail unless the file ends first.  0 or -errno. */
static int scan_window(struct scan *sc, uint64_t at, size_t want, const uint8_t **p,
		       size_t *avail)
{
	size_t skip = (size_t)(at - sc->base);

	if (sc->have - skip < want && sc->base + sc->have < sc->size) {
		memmove(sc->buf, sc->buf + skip, sc->have - skip);
		sc->have -= skip;
		sc->base = at;
		skip = 0;
		while (sc->have < sc->cap && sc->base + sc->have < sc->size) {
			uint64_t left = sc->size - sc->base - sc->have;
			size_t room = sc->cap - sc->have;
			ssize_t n = pread(sc->fd, sc->buf + sc->have, left < room ? (size_t)left : room,
					  (off_t)(sc->base + sc->have));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)	/* shrank under us: what we have is the end */
				sc->size = sc->base + sc->have;
			sc->have += (size_t)n;
		}
	}
	*p = sc->buf + skip;
	*avail = sc->have - skip;
	return 0;
}

/* Whether everything from at to the end of the file is zero bytes (what a
 * crash can leave where the file grew but the data never landed). */
static int scan_rest_is_zero(struct scan *sc, uint64_t at, bool *zero)
{
	const uint8_t *p;
	size_t avail;
	int ret;

	*zero = true;
	while (at < sc->size) {
		ret = scan_window(sc, at, sc->cap, &p, &avail);
		if (ret)
			return ret;
		for (size_t i = 0; i < avail; ++i)
			if (p[i]) {
				*zero = false;
				return 0;
			}
		at += avail;
	}
	return 0;
}

static void report_end(struct vp_store_report *rep, bool torn, uint64_t at, const char *why)
{
	if (torn) {
		rep->torn = true;
		rep->torn_offset = at;
	} else {
		rep->corrupt = true;
		rep->corrupt_offset = at;
	}
	snprintf(rep->detail, sizeof(rep->detail), "%s", why);
}

static int apply(struct scan *sc, const struct any_rec *a)
{
	const struct vp_store_replay *replay = sc->replay;
	const struct vp_lease_rec *rec = &a->lease;

	if (a->type == REC_INSTANCE) {
		if (sc->inst)
			sc->inst[a->inst.slot] = a->inst;
		return replay && replay->instance ? replay->instance(replay->ud, &a->inst) : 0;
	}
	if (!replay)
		return 0;
	if (a->type == REC_DEL)
		return replay->del ? replay->del(replay->ud, rec->identity, rec->identity_len,
						 rec->slot) : 0;
	return replay->put ? replay->put(replay->ud, rec) : 0;
}

/* A record header whose length no encoder writes: a crash leaves zeros, so a
 * zero-filled rest is a torn tail; anything else is damage. */
static int scan_bad_length(struct scan *sc, uint64_t at)
{
	bool zero;
	int ret = scan_rest_is_zero(sc, at, &zero);

	if (ret)
		return ret;
	report_end(sc->report, zero, at, zero ? "zero-filled tail" : "impossible record length");
	return 1;
}

/* Replay the record at *at and advance past it.  0: next, 1: the replay
 * ended (torn tail or damage reported), -errno or a callback's error. */
static int scan_record(struct scan *sc, uint64_t *at)
{
	struct any_rec rec;
	const uint8_t *p;
	const char *why;
	size_t avail, len;
	bool last;
	int ret;

	ret = scan_window(sc, *at, MAX_RECORD, &p, &avail);
	if (ret)
		return ret;
	if (avail < REC_HEADER) {
		report_end(sc->report, true, *at, "record header cut short");
		return 1;
	}
	len = le32(p);
	if (len == 0 || len > MAX_PAYLOAD)
		return scan_bad_length(sc, *at);
	if (avail - REC_HEADER < len) {
		report_end(sc->report, true, *at, "record cut short");
		return 1;
	}
	last = *at + REC_HEADER + len == sc->size;
	if (crc32c(sc->crc_table, p + REC_HEADER, len) != le32(p + 4))
		why = "checksum mismatch";
	else
		why = decode_any(p + REC_HEADER, len, &rec);
	if (!why && rec.type == REC_MOVED && !last)
		why = "records after a MOVED record";
	if (why) {
		report_end(sc->report, last, *at, why);
		return 1;
	}
	if (rec.type == REC_MOVED) {
		sc->moved = true;
		sc->moved_id = rec.moved_id;
		sc->moved_off = rec.moved_off;
		return 1;
	}
	ret = apply(sc, &rec);
	if (ret)
		return ret < 0 ? ret : -ECANCELED;
	sc->report->records++;
	*at += REC_HEADER + len;
	return 0;
}

/* Check the file header.  0: records follow at *hdr_len; 1: the replay
 * ended (empty, torn or bad header reported); -errno. */
static int scan_header(struct scan *sc, uint32_t *hdr_len, uint64_t *file_id)
{
	const uint8_t *p;
	size_t avail;
	uint32_t version;
	int ret;

	*hdr_len = 0;
	*file_id = 0;
	ret = scan_window(sc, 0, HEADER_LEN, &p, &avail);
	if (ret)
		return ret;
	if (avail < HEADER_V1) {
		if (avail && !memcmp(p, MAGIC, avail < MAGIC_LEN ? avail : MAGIC_LEN))
			report_end(sc->report, true, 0, "journal header cut short");
		else if (avail)
			report_end(sc->report, false, 0, "bad magic: not a vpnpool journal");
		return 1;
	}
	if (memcmp(p, MAGIC, MAGIC_LEN)) {
		report_end(sc->report, false, 0, "bad magic: not a vpnpool journal");
		return 1;
	}
	version = le32(p + MAGIC_LEN);
	if (version != 1 && version != VERSION) {
		sc->report->version = version;
		sc->report->version_known = VERSION;
		return -EPROTONOSUPPORT;
	}
	if (version == 1) {
		*hdr_len = HEADER_V1;
		return 0;
	}
	if (avail < HEADER_LEN) {
		report_end(sc->report, true, 0, "journal header cut short");
		return 1;
	}
	*hdr_len = HEADER_LEN;
	*file_id = (uint64_t)le32(p + MAGIC_LEN + 4) | (uint64_t)le32(p + MAGIC_LEN + 8) << 32;
	return 0;
}

/*
 * Replay the records of the journal open on fd from offset at (0: from the
 * header on) to its end.  Fills report; *good_end is the end of the last
 * record replayed (0 when even the header is missing or bad).  With moved,
 * a MOVED record that ended it is there.  0, -EPROTONOSUPPORT (a newer
 * format), -errno, or a callback's error.
 */
static int replay_range(int fd, uint64_t at, const uint32_t crc_table[256],
			const struct vp_store_replay *replay, struct vp_store_report *report,
			struct vp_instance_rec *inst, uint8_t *buf, size_t cap, uint64_t *good_end,
			uint32_t *hdr_len, uint64_t *file_id, struct scan *moved)
{
	struct scan sc = { .fd = fd, .crc_table = crc_table, .replay = replay, .report = report,
			   .inst = inst, .cap = cap };
	struct stat st;
	int ret = 0;

	*good_end = 0;
	if (fstat(fd, &st))
		return -errno;
	sc.size = (uint64_t)st.st_size;
	if (at == 0 && replay && replay->size)
		replay->size(replay->ud, sc.size);
	sc.buf = buf ? buf : malloc(cap);
	if (!sc.buf)
		return -ENOMEM;
	if (at == 0) {
		ret = scan_header(&sc, hdr_len, file_id);
		at = *hdr_len;
		if (ret)
			goto out_free;
	} else {
		sc.base = at;
	}
	while (at < sc.size) {
		ret = scan_record(&sc, &at);
		if (ret)
			break;
	}
	*good_end = at;
out_free:
	report->bytes = sc.size;
	if (!buf)
		free(sc.buf);
	if (moved)
		*moved = sc;
	return ret < 0 ? ret : 0;
}

static int replay_fd(int fd, const uint32_t crc_table[256], const struct vp_store_replay *replay,
		     struct vp_store_report *report, uint64_t *good_end)
{
	uint32_t hdr_len;
	uint64_t id;

	return replay_range(fd, 0, crc_table, replay, report, NULL, NULL, CHUNK, good_end,
			    &hdr_len, &id, NULL);
}

/* ---- files in the state directory ----------------------------------------------- */

static int path_in(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int fsync_dir(const struct vp_store *s)
{
	int fd = s->fs->open(s->fs->ud, s->dir, O_RDONLY | O_DIRECTORY, 0);
	int ret = 0;

	if (fd < 0)
		return fd;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

static int write_all(const struct vp_store_io *io, int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = io->write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno ? -errno : -EIO;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sync_fd(const struct vp_store_io *io, int fd)
{
	if (io->fsync(fd) == 0)
		return 0;
	return errno ? -errno : -EIO;
}

static void put_header(uint8_t out[HEADER_LEN], uint64_t id)
{
	memcpy(out, MAGIC, MAGIC_LEN);
	for (int i = 0; i < 4; ++i)
		out[MAGIC_LEN + i] = (uint8_t)(VERSION >> (8 * i));
	for (int i = 0; i < 8; ++i)
		out[MAGIC_LEN + 4 + i] = (uint8_t)(id >> (8 * i));
}

/* A file id for a new journal: random, never 0 (a version-1 file's). */
static uint64_t new_file_id(void)
{
	static _Atomic uint64_t counter;
	uint64_t id = 0;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
		id = ((uint64_t)time(NULL) << 32) ^ ((uint64_t)getpid() << 16) ^
		     atomic_fetch_add(&counter, 1);
	return id ? id : 1;
}

/* ---- the locks -------------------------------------------------------------------- */

/* An OFD lock of byte at of the lock file: take (F_WRLCK) or release
 * (F_UNLCK), waiting or not.  0, -EAGAIN (held elsewhere), -errno. */
static int ofd_lock(const struct vp_store *s, short type, off_t at, bool wait)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };

	for (;;) {
		if (fcntl(s->lock_fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EACCES ? -EAGAIN : -errno;
	}
}

/* Whether another open file description holds byte at (one system call;
 * an error counts as held: nothing is taken from a live instance). */
static bool ofd_held(const struct vp_store *s, off_t at)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };

	if (fcntl(s->lock_fd, F_OFD_GETLK, &fl))
		return true;
	return fl.l_type != F_UNLCK;
}

/* The lock file's second 4 KiB hold a counter every change of the journal
 * bumps (under the mutex, before it changes the file): a store whose count
 * is the counter's has read everything, without a look at the journal.
 * Without the mapping (a full disk cannot grow the file) it looks. */
#define GEN_OFFSET 4096

static void map_gen(struct vp_store *s)
{
	struct stat st;
	void *p;

	if (fstat(s->lock_fd, &st) ||
	    (st.st_size < 2 * GEN_OFFSET && ftruncate(s->lock_fd, 2 * GEN_OFFSET)))
		return;
	p = mmap(NULL, GEN_OFFSET, PROT_READ | PROT_WRITE, MAP_SHARED, s->lock_fd, GEN_OFFSET);
	if (p != MAP_FAILED)
		s->gen = p;
}

/* The journal is about to change (under the mutex, caught up). */
static void gen_bump(struct vp_store *s)
{
	if (s->gen)
		s->seen_gen = atomic_fetch_add(s->gen, 1) + 1;
}

/* Open dir/lock (once: it serves after a privilege drop) and write our pid
 * into it, for messages only (a full disk is no error). */
static int open_lock(struct vp_store *s, struct vp_store_report *report)
{
	char path[PATH_MAX], text[24];
	int n;

	if (path_in(path, sizeof(path), s->dir, "lock"))
		return -ENAMETOOLONG;
	s->lock_fd = s->fs->open(s->fs->ud, path, O_RDWR | O_CREAT | O_NOFOLLOW, 0640);
	if (s->lock_fd < 0) {
		int err = s->lock_fd;

		s->lock_fd = -1;
		if (err == -ELOOP)
			snprintf(report->refused, sizeof(report->refused), "lock");
		return err;
	}
	n = snprintf(text, sizeof(text), "%-23ld", (long)getpid());
	if (pwrite(s->lock_fd, text, (size_t)n, 0) != n)
		n = 0;			/* messages only: nothing else to do */
	map_gen(s);
	return 0;
}

/* Cut the journal to a new header of file id id (a new, empty or
 * header-torn file). */
static int write_header(struct vp_store *s, uint64_t id)
{
	uint8_t header[HEADER_LEN];
	int ret;

	gen_bump(s);
	if (ftruncate(s->fd, 0))
		return -errno;
	s->file_id = id;
	put_header(header, s->file_id);
	ret = write_all(&s->io, s->fd, header, sizeof(header));
	if (!ret && s->do_fsync)
		ret = sync_fd(&s->io, s->fd);
	if (!ret && s->do_fsync)
		ret = fsync_dir(s);
	if (!ret) {
		s->end = HEADER_LEN;
		s->hdr_len = HEADER_LEN;
	}
	return ret;
}

static int open_journal(struct vp_store *s, const char *path, int flags)
{
	s->fd = s->fs->open(s->fs->ud, path, flags | O_RDWR | O_APPEND | O_NOFOLLOW, 0640);
	if (s->fd >= 0)
		return 0;
	flags = s->fd;
	s->fd = -1;
	return flags;
}

/* rename() that fails with EEXIST rather than replace to.  Under the mutex
 * no other store renames, so a look first is enough. */
static int rename_noreplace(const struct vp_store *s, const char *from, const char *to)
{
	struct stat st;
	int ret = s->fs->lstat(s->fs->ud, to, &st);

	if (ret == 0)
		return -EEXIST;
	if (ret != -ENOENT)
		return ret;
	return s->fs->rename(s->fs->ud, from, to);
}

/* Rename the damaged journal to leases.journal.corrupt-<time>[-N], never over
 * an older one. */
static int set_aside(struct vp_store *s, struct vp_store_report *report)
{
	char from[PATH_MAX], name[64];
	long long now = (long long)s->io.now(s->io.now_ud);
	int ret = -EEXIST;

	if (path_in(from, sizeof(from), s->dir, JOURNAL))
		return -ENAMETOOLONG;
	for (int i = 0; i < 1000; ++i) {
		if (i)
			snprintf(name, sizeof(name), "%s.corrupt-%lld-%d", JOURNAL, now, i);
		else
			snprintf(name, sizeof(name), "%s.corrupt-%lld", JOURNAL, now);
		ret = path_in(report->set_aside, sizeof(report->set_aside), s->dir, name);
		if (ret)
			break;
		ret = rename_noreplace(s, from, report->set_aside);
		if (ret != -EEXIST)
			break;
	}
	if (ret)
		report->set_aside[0] = '\0';
	return ret;
}

/* Append the MOVED record that sends the readers of the journal open on fd
 * to the file of id, at offset; on failure the journal is as it was. */
static int append_moved(struct vp_store *s, uint64_t id, uint64_t offset)
{
	size_t len = encode_moved(s->crc_table, s->buf, id, offset);
	int ret;

	gen_bump(s);
	ret = write_all(&s->io, s->fd, s->buf, len);

	if (!ret && s->do_fsync)
		ret = sync_fd(&s->io, s->fd);
	if (ret && ftruncate(s->fd, (off_t)s->end))
		s->tail_dirty = true;
	return ret;
}

struct bg;
static void bg_note_end(struct bg *b, uint64_t end);

#define SCAN_BUF (64 << 10)		/* catching up reads this much at a time */

static void *closer(void *arg)
{
	close((int)(intptr_t)arg);
	return NULL;
}

/* Close the last descriptor of a replaced journal without waiting: that
 * frees the file's blocks, tens of milliseconds for a big one, which would
 * stall a lease change (this runs under the mutex).  A thread of its own,
 * its signals blocked; inline if none can be made. */
static void close_replaced(int fd)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int ret = -1;

	sigfillset(&all);
	if (!pthread_attr_init(&attr)) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = pthread_create(&t, &attr, closer, (void *)(intptr_t)fd);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (ret)
		close(fd);
}

/* A MOVED record ended the journal open on fd at s->end: open the journal
 * by its name again.  The same file: its compaction died before the rename,
 * the record is cut off.  The file the record names: go on at its offset.
 * Another (compacted again since): read it whole, *resync.  Under the
 * mutex.  0 or -errno. */
static int follow_moved(struct vp_store *s, const struct scan *sc, bool *resync)
{
	char path[PATH_MAX];
	uint8_t header[HEADER_LEN];
	struct stat a, b;
	int fd, old = s->fd, ret;

	if (path_in(path, sizeof(path), s->dir, JOURNAL))
		return -ENAMETOOLONG;
	ret = open_journal(s, path, 0);
	fd = s->fd;
	s->fd = old;
	if (ret)
		return ret;
	if (fstat(fd, &a) || fstat(old, &b)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		close(fd);
		gen_bump(s);
		return ftruncate(old, (off_t)s->end) ? -errno : 0;
	}
	if (pread(fd, header, HEADER_LEN, 0) == HEADER_LEN && !memcmp(header, MAGIC, MAGIC_LEN) &&
	    le32(header + MAGIC_LEN) == VERSION &&
	    ((uint64_t)le32(header + MAGIC_LEN + 4) | (uint64_t)le32(header + MAGIC_LEN + 8) << 32) ==
		    sc->moved_id) {
		s->end = sc->moved_off;
		s->file_id = sc->moved_id;
	} else {
		s->end = 0;		/* from the header on */
		s->file_id = 0;
		*resync = true;
	}
	close_replaced(old);
	s->fd = fd;
	s->hdr_len = HEADER_LEN;
	s->appended = 0;
	if (s->bg)
		bg_note_end(s->bg, s->end);
	return 0;
}

/* Read what was appended since s->end and replay it; under the mutex.  A
 * record cut short (or damaged) at the end is a writer that died: cut off. */
static int catch_up(struct vp_store *s)
{
	bool resync = false;
	uint64_t gen = s->gen ? atomic_load(s->gen) : 0;
	int ret = 0;

	if (s->gen && gen == s->seen_gen && s->end)
		return 0;		/* nobody changed the journal since */
	for (int hops = 0; hops < 64; ++hops) {
		struct vp_store_report report;
		struct stat st;
		struct scan sc;
		uint64_t good, id;
		uint32_t hdr_len;

		if (s->end && !resync) {
			if (fstat(s->fd, &st))
				return -errno;
			if ((uint64_t)st.st_size == s->end)
				break;
		}
		if (!s->scan_buf) {
			s->scan_buf = malloc(SCAN_BUF);
			if (!s->scan_buf)
				return -ENOMEM;
		}
		memset(&report, 0, sizeof(report));
		if (resync && s->end == 0 && s->replay.resync)
			s->replay.resync(s->replay.ud, true);
		ret = replay_range(s->fd, s->end, s->crc_table, &s->replay, &report, s->inst,
				   s->scan_buf, SCAN_BUF, &good, &hdr_len, &id, &sc);
		if (ret)
			break;
		if (s->end == 0) {
			s->hdr_len = hdr_len;
			s->file_id = id;
		}
		s->caught_up++;
		s->appended += report.records;
		if (good < s->end)
			good = s->end;
		s->end = good;
		if (s->bg)
			bg_note_end(s->bg, s->end);
		if (sc.moved) {
			ret = follow_moved(s, &sc, &resync);
			if (ret)
				break;
			continue;
		}
		if (report.torn || report.corrupt) {
			gen_bump(s);
			if (ftruncate(s->fd, (off_t)good))
				ret = -errno;
		}
		break;
	}
	if (resync && s->replay.resync)
		s->replay.resync(s->replay.ud, false);
	/* Under the mutex nobody else counts: this is every change read. */
	if (!ret && s->gen)
		s->seen_gen = atomic_load(s->gen);
	return ret;
}

/* Open dir's journal (creating it) and replay it; deal with a torn tail or
 * damage as the header of this file describes.  Under the mutex. */
static int load(struct vp_store *s, struct vp_store_report *report)
{
	char path[PATH_MAX];
	struct scan sc;
	uint64_t good_end;
	bool resync = false;
	int ret;

	if (path_in(path, sizeof(path), s->dir, JOURNAL))
		return -ENAMETOOLONG;
	ret = open_journal(s, path, 0);
	if (ret == -ENOENT)
		ret = open_journal(s, path, O_CREAT | O_EXCL);
	else if (!ret)
		report->empty = lseek(s->fd, 0, SEEK_END) == 0;
	if (ret == -ELOOP)
		snprintf(report->refused, sizeof(report->refused), "%s", JOURNAL);
	if (ret)
		return ret;
	ret = replay_range(s->fd, 0, s->crc_table, &s->replay, report, s->inst, NULL, CHUNK,
			   &good_end, &s->hdr_len, &s->file_id, &sc);
	if (ret)
		return ret;
	if (sc.moved) {
		/* Opened just before a compaction renamed its file in, or a
		 * compaction died before its rename: the catch-up sorts it. */
		s->end = good_end;
		ret = follow_moved(s, &sc, &resync);
		if (!ret && resync && s->replay.resync) {
			s->replay.resync(s->replay.ud, true);
			s->replay.resync(s->replay.ud, false);
		}
		if (!ret)
			ret = catch_up(s);
		s->appended = 0;
		return ret;
	}
	if (report->corrupt) {
		uint64_t id = new_file_id();

		/* The damaged file is kept as it was, for a look. */
		gen_bump(s);
		ret = set_aside(s, report);
		if (ret)
			return ret;
		close(s->fd);
		ret = open_journal(s, path, O_CREAT | O_EXCL);
		if (ret)
			return ret;
		/* What came before the damage lives only in the caller now. */
		s->appended = UINT64_MAX / 2;
		return write_header(s, id);
	}
	if (good_end < HEADER_V1 || (s->hdr_len && good_end < s->hdr_len) || !s->hdr_len)
		return write_header(s, new_file_id());
	if (report->torn) {
		gen_bump(s);
		if (ftruncate(s->fd, (off_t)good_end))
			return -errno;
	}
	s->end = good_end;
	return 0;
}

static ssize_t default_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

static int default_fsync(int fd)
{
	return fdatasync(fd);
}

static int64_t default_now(void *ud)
{
	(void)ud;
	return (int64_t)time(NULL);
}

int vp_store_open(struct vp_store **out, const char *dir, bool do_fsync,
		  const struct vp_store_io *io, const struct vp_store_replay *replay,
		  struct vp_store_report *report, pid_t *holder_pid)
{
	struct vp_store_report scratch;
	struct vp_store *s;
	int ret;

	*out = NULL;
	if (!report)
		report = &scratch;
	memset(report, 0, sizeof(*report));
	if (holder_pid)
		*holder_pid = 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fs = vp_fs_or_direct(io ? io->fs : NULL);
	ret = s->fs->mkdirs(s->fs->ud, dir, 0750);
	if (ret) {
		free(s);
		return ret;
	}
	s->lock_fd = s->fd = -1;
	s->my_slot = -1;
	s->do_fsync = do_fsync;
	if (replay)
		s->replay = *replay;
	s->io.write = io && io->write ? io->write : default_write;
	s->io.fsync = io && io->fsync ? io->fsync : default_fsync;
	s->io.now = io && io->now ? io->now : default_now;
	s->io.now_ud = io && io->now ? io->now_ud : NULL;
	crc32c_init(s->crc_table);
	s->dir = strdup(dir);
	s->inst = calloc(VP_INSTANCE_MAX, sizeof(*s->inst));
	if (!s->dir || !s->inst) {
		ret = -ENOMEM;
		goto out_close_store;
	}
	ret = open_lock(s, report);
	if (ret)
		goto out_close_store;
	ret = ofd_lock(s, F_WRLCK, LOCK_MUTEX, true);
	if (ret)
		goto out_close_store;
	s->in_change = true;
	ret = load(s, report);
	if (!ret && s->gen)
		s->seen_gen = atomic_load(s->gen);
	vp_store_end(s);
	if (ret)
		goto out_close_store;
	*out = s;
	return 0;

out_close_store:
	vp_store_abandon(s);
	return ret;
}

static void bg_abandon(struct vp_store *s);

static void store_free(struct vp_store *s)
{
	if (s->gen)
		munmap((void *)s->gen, GEN_OFFSET);
	if (s->fd >= 0)
		close(s->fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);	/* releases every lock of this store */
	free(s->scan_buf);
	free(s->inst);
	free(s->dir);
	free(s);
}

void vp_store_close(struct vp_store *s)
{
	if (!s)
		return;
	bg_abandon(s);
	(void)vp_store_unregister(s);
	store_free(s);
}

void vp_store_abandon(struct vp_store *s)
{
	if (!s)
		return;
	bg_abandon(s);
	store_free(s);
}

/* ---- changes ----------------------------------------------------------------------- */

int vp_store_begin(struct vp_store *s)
{
	int ret;

	if (s->in_change)
		return -EDEADLK;
	ret = ofd_lock(s, F_WRLCK, LOCK_MUTEX, true);
	if (ret)
		return ret;
	s->in_change = true;
	ret = catch_up(s);
	if (ret)
		vp_store_end(s);
	return ret;
}

void vp_store_end(struct vp_store *s)
{
	if (!s->in_change)
		return;
	s->in_change = false;
	(void)ofd_lock(s, F_UNLCK, LOCK_MUTEX, false);
}

/* ---- appending ------------------------------------------------------------------ */

/* Append the len bytes encoded in s->buf: one write, fsync if asked.  On any
 * failure the journal is cut back to its last whole record.  Outside a
 * change, a change of its own. */
static int append(struct vp_store *s, size_t len)
{
	bool own = !s->in_change;
	int ret;

	if (!len)
		return -EINVAL;
	if (own) {
		ret = vp_store_begin(s);
		if (ret)
			return ret;
	}
	gen_bump(s);
	if (s->tail_dirty) {
		if (ftruncate(s->fd, (off_t)s->end)) {
			ret = -EIO;
			goto out;
		}
		s->tail_dirty = false;
	}
	ret = write_all(&s->io, s->fd, s->buf, len);
	if (!ret && s->do_fsync)
		ret = sync_fd(&s->io, s->fd);
	if (ret) {
		/* If even this fails, retry before the next append: nothing may
		 * follow a partial record. */
		if (ftruncate(s->fd, (off_t)s->end))
			s->tail_dirty = true;
		goto out;
	}
	s->end += len;
	s->appended++;
	if (s->bg)
		bg_note_end(s->bg, s->end);
out:
	if (own)
		vp_store_end(s);
	return ret;
}

int vp_store_put(struct vp_store *s, const struct vp_lease_rec *rec)
{
	return append(s, encode(s->crc_table, s->buf, rec, rec->identity, rec->identity_len,
				rec->slot));
}

int vp_store_del(struct vp_store *s, const uint8_t *identity, size_t identity_len, uint16_t slot)
{
	return append(s, encode(s->crc_table, s->buf, NULL, identity, identity_len, slot));
}

uint64_t vp_store_appended(const struct vp_store *s)
{
	return s->appended;
}

/* ---- instances --------------------------------------------------------------------- */

int vp_store_slot(const struct vp_store *s)
{
	return s->my_slot;
}

bool vp_store_slot_alive(struct vp_store *s, uint16_t slot)
{
	if (slot >= VP_INSTANCE_MAX)
		return false;
	if ((int)slot == s->my_slot)
		return true;
	return ofd_held(s, LOCK_SLOT0 + slot);
}

const struct vp_instance_rec *vp_store_instance(const struct vp_store *s, uint16_t slot)
{
	if (slot >= VP_INSTANCE_MAX || !s->inst[slot].name[0])
		return NULL;
	return &s->inst[slot];
}

/* Take slot's liveness lock: 0 or -EAGAIN. */
static int take_slot(struct vp_store *s, uint16_t slot)
{
	return ofd_lock(s, F_WRLCK, LOCK_SLOT0 + slot, false);
}

int vp_store_register(struct vp_store *s, struct vp_instance_rec *rec, pid_t *live_pid)
{
	bool own = !s->in_change;
	int slot = -1, ret;

	if (live_pid)
		*live_pid = 0;
	if (s->my_slot >= 0)
		return -EALREADY;
	rec->slot = 0;
	if (instance_invalid(rec))
		return -EINVAL;
	if (own) {
		ret = vp_store_begin(s);
		if (ret)
			return ret;
	}
	ret = 0;
	for (uint16_t i = 0; i < VP_INSTANCE_MAX; ++i) {
		if (!s->inst[i].name[0] || strcmp(s->inst[i].name, rec->name))
			continue;
		if (ofd_held(s, LOCK_SLOT0 + i)) {
			if (live_pid)
				*live_pid = s->inst[i].pid;
			ret = -EADDRINUSE;
			goto out;
		}
		if (slot < 0 && take_slot(s, i) == 0)
			slot = i;
	}
	for (uint16_t i = 0; slot < 0 && i < VP_INSTANCE_MAX; ++i)
		if (take_slot(s, i) == 0)
			slot = i;
	if (slot < 0) {
		ret = -EUSERS;
		goto out;
	}
	rec->slot = (uint16_t)slot;
	rec->pid = (int32_t)getpid();
	rec->stopped = false;
	rec->time = s->io.now(s->io.now_ud);
	ret = append(s, encode_instance(s->crc_table, s->buf, rec));
	if (ret) {
		(void)ofd_lock(s, F_UNLCK, LOCK_SLOT0 + slot, false);
		goto out;
	}
	s->inst[slot] = *rec;
	s->my_slot = slot;
out:
	if (own)
		vp_store_end(s);
	return ret;
}

int vp_store_unregister(struct vp_store *s)
{
	struct vp_instance_rec rec;
	int ret;

	if (s->my_slot < 0)
		return 0;
	rec = s->inst[s->my_slot];
	rec.stopped = true;
	rec.time = s->io.now(s->io.now_ud);
	ret = append(s, encode_instance(s->crc_table, s->buf, &rec));
	if (!ret)
		s->inst[s->my_slot] = rec;
	(void)ofd_lock(s, F_UNLCK, LOCK_SLOT0 + s->my_slot, false);
	s->my_slot = -1;
	return ret;
}

/* ---- compaction ------------------------------------------------------------------ */

struct compact {
	struct vp_store *s;
	uint64_t id;			/* of the new journal */
	int fd;
	uint8_t *buf;
	size_t len;
	uint64_t size;			/* bytes written so far */
};

static int compact_flush(struct compact *c)
{
	int ret = write_all(&c->s->io, c->fd, c->buf, c->len);

	c->size += c->len;
	c->len = 0;
	return ret;
}

static int compact_emit(void *ctx, const struct vp_lease_rec *rec)
{
	struct compact *c = ctx;
	size_t n;
	int ret;

	if (CHUNK - c->len < MAX_RECORD) {
		ret = compact_flush(c);
		if (ret)
			return ret;
	}
	n = encode(c->s->crc_table, c->buf + c->len, rec, rec->identity, rec->identity_len,
		   rec->slot);
	if (!n)
		return -EINVAL;
	c->len += n;
	return 0;
}

/* The last INSTANCE record of each slot, first in a rewritten journal. */
static int compact_instances(struct compact *c)
{
	for (uint16_t i = 0; i < VP_INSTANCE_MAX; ++i) {
		int ret;

		if (!c->s->inst[i].name[0])
			continue;
		if (CHUNK - c->len < MAX_RECORD) {
			ret = compact_flush(c);
			if (ret)
				return ret;
		}
		c->len += encode_instance(c->s->crc_table, c->buf + c->len, &c->s->inst[i]);
	}
	return 0;
}

/* Write and fsync the whole new journal into c->fd. */
static int compact_write(struct compact *c, int (*each)(void *, vp_store_emit_fn, void *),
			 void *ud)
{
	int ret;

	put_header(c->buf, c->id);
	c->len = HEADER_LEN;
	ret = compact_instances(c);
	if (!ret)
		ret = each(ud, compact_emit, c);
	if (!ret)
		ret = compact_flush(c);
	if (!ret)
		ret = sync_fd(&c->s->io, c->fd);
	return ret;
}

/* The temporary journal a compaction writes, and its buffer.  0 or -errno. */
static int compact_open(struct vp_store *s, struct compact *c)
{
	char tmp[PATH_MAX];
	int ret;

	*c = (struct compact){ .s = s, .fd = -1, .id = new_file_id() };
	if (path_in(tmp, sizeof(tmp), s->dir, JOURNAL_TMP))
		return -ENAMETOOLONG;
	c->buf = malloc(CHUNK);
	if (!c->buf)
		return -ENOMEM;
	/* Read and written: it becomes the journal, which catching up reads. */
	c->fd = s->fs->open(s->fs->ud, tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW,
			    0640);
	if (c->fd >= 0)
		return 0;
	ret = c->fd;
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	return ret;
}

/* Give up a temporary journal: close fd (if open) and remove the file. */
static void tmp_drop(struct vp_store *s, int fd)
{
	char tmp[PATH_MAX];

	if (fd >= 0)
		close(fd);
	if (!path_in(tmp, sizeof(tmp), s->dir, JOURNAL_TMP))
		s->fs->unlink(s->fs->ud, tmp);
}

/* Rename the temporary journal (file id, open on fd, size bytes, synced)
 * over the journal and append to it from now on; the old one ends with a
 * MOVED record for the stores still reading it.  Under the mutex.  On
 * failure nothing changed.  With old_fd, the old journal's fd is handed
 * back there for the caller to close (and the directory to sync) rather
 * than closed here. */
static int tmp_install(struct vp_store *s, uint64_t id, int fd, uint64_t size, int *old_fd)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int ret;

	if (path_in(tmp, sizeof(tmp), s->dir, JOURNAL_TMP) ||
	    path_in(path, sizeof(path), s->dir, JOURNAL))
		return -ENAMETOOLONG;
	ret = append_moved(s, id, size);
	if (ret)
		return ret;
	ret = s->fs->rename(s->fs->ud, tmp, path);
	if (ret) {
		if (ftruncate(s->fd, (off_t)s->end))
			s->tail_dirty = true;
		return ret;
	}
	/* The new journal is the journal from here on, whatever the directory
	 * fsync says: the old file is gone from the directory. */
	if (old_fd) {
		*old_fd = s->fd;
	} else {
		fsync_dir(s);
		close(s->fd);
	}
	s->fd = fd;
	s->end = size;
	s->file_id = id;
	s->hdr_len = HEADER_LEN;
	s->tail_dirty = false;
	return 0;
}

/* Lock byte 1: one compaction at a time over all the stores of the
 * directory.  0, -EALREADY (another one compacts), -errno. */
static int compact_lock(struct vp_store *s)
{
	int ret;

	if (s->compact_lock)
		return 0;
	ret = ofd_lock(s, F_WRLCK, LOCK_COMPACT, false);
	if (ret)
		return ret == -EAGAIN ? -EALREADY : ret;
	s->compact_lock = true;
	return 0;
}

static void compact_unlock(struct vp_store *s)
{
	if (s->compact_lock)
		(void)ofd_lock(s, F_UNLCK, LOCK_COMPACT, false);
	s->compact_lock = false;
}

int vp_store_compact(struct vp_store *s,
		     int (*each)(void *ud, vp_store_emit_fn emit, void *emit_ctx), void *ud)
{
	struct compact c;
	int ret;

	bool own = !s->in_change;

	bg_abandon(s);		/* the snapshot written here supersedes it */
	if (own) {
		ret = vp_store_begin(s);
		if (ret)
			return ret;
	}
	ret = compact_lock(s);
	if (ret)
		goto out_end;
	ret = compact_open(s, &c);
	if (ret)
		goto out_unlock;
	ret = compact_write(&c, each, ud);
	if (!ret)
		ret = tmp_install(s, c.id, c.fd, c.size, NULL);
	if (ret)
		tmp_drop(s, c.fd);
	else
		s->appended = 0;
	free(c.buf);
out_unlock:
	compact_unlock(s);
out_end:
	if (own)
		vp_store_end(s);
	return ret;
}

/* ---- compaction in the background ---------------------------------------------- */

/*
 * A thread rewrites the journal from the journal file itself, never from the
 * caller's memory: it reads the records up to the end the journal had when it
 * started, keeps the last record of each key (a DEL keeps none), writes them
 * to the temporary journal, then copies what the caller appended meanwhile,
 * chasing the end until little is left, and syncs.  The caller's poll copies
 * that little, renames the new journal into place and hands the old one to
 * the thread, which closes it (freeing a big unlinked file takes a while) and
 * ends.  The caller never waits for the thread but to stop it.
 *
 * The thread maps the journal read-only (only this process truncates it, and
 * never below its end of the moment) and reads it front to back twice,
 * giving back the pages behind it.  Its memory: 8 bytes (offset, part of
 * the hash) per slot of a table of the keys, at most 3/4 full; a bit per 8
 * bytes of journal; one buffer.
 */
enum bg_state { BG_RUNNING, BG_READY, BG_FAILED, BG_DONE };

struct bg {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	_Atomic int state;		/* enum bg_state; changed under lock */
	int old_fd;			/* under lock: the replaced journal, for the
					 * thread to close (-1: none yet) */
	bool release;			/* under lock: end without one */
	atomic_bool stop;		/* give up at the next chunk */
	_Atomic uint64_t end;		/* the journal's end as the caller appends */
	bool installed;			/* the caller's: the new journal is in place */
	/* The thread's until it is READY or FAILED, then the caller's. */
	const uint32_t *crc_table;
	const struct vp_store_io *io;
	int in, out, dir;		/* journal (read only), new journal, directory */
	uint64_t from;			/* the rewrite reads the journal up to here */
	uint32_t hdr_in;		/* the journal's header length */
	uint64_t id;			/* the new journal's file id */
	uint64_t covered;		/* journal offset copied to the new one */
	uint64_t size;			/* bytes in the new journal */
	uint64_t appended;		/* vp_store_appended() when it started */
	int err;
	uint8_t *buf;			/* CHUNK bytes */
};

/* Keys seen by the rewrite: for each key, the offset of its last record so
 * far (40 bits; 0: an empty slot, no record starts there) and the top 24
 * bits of its hash, which are also where its slot is while the table has
 * 2^24 slots or fewer; and one bit per 8 bytes of journal (a record is
 * longer) for the records a later one of their key supersedes, and DELs.
 *
 * Not core/htab.h: a slot here is 8 bytes, not 16 (offset and tag in one
 * word, no pointer), for a table of millions of keys that the compaction
 * thread builds while the server runs; a key lives in the journal, so
 * telling two keys apart reads it back (and may fail with an I/O error, which
 * an equality callback cannot return); and growing past the tag re-reads
 * every key.  None of that fits a table of items in memory. */
#ifndef VP_STORE_KEY_TAG_BITS		/* tests make the table small and the tag */
#define VP_STORE_KEY_TAG_BITS 24	/* short, so that both ways of growing run */
#define VP_STORE_KEY_FIRST_BITS 16
#endif
#define KEY_TAG_BITS VP_STORE_KEY_TAG_BITS
#define KEY_OFF_LIMIT ((uint64_t)1 << (64 - KEY_TAG_BITS))

struct keys {
	uint64_t *slot;
	unsigned bits;			/* the table has 2^bits slots */
	size_t n;
	uint64_t sip[2];
	uint64_t *dead;
	int fd;				/* the journal, to read back older keys */
};

/* Records of one key class supersede each other: PUT and DEL of a lease;
 * INSTANCE records of a slot. */
static unsigned key_class(unsigned type)
{
	return type == REC_DEL ? REC_PUT : type;
}

static uint64_t key_hash(const struct keys *k, unsigned cls, const uint8_t *key, size_t len)
{
	return vp_siphash13(k->sip, key, len) ^ ((uint64_t)cls * 0x9e3779b97f4a7c15ULL);
}

/* The key of the record at p: slot and identity, as decode() checked. */
static size_t key_len(const uint8_t *p)
{
	return 4 + ((size_t)p[REC_HEADER + 3] | (size_t)p[REC_HEADER + 4] << 8);
}

static const uint8_t *key_of(const uint8_t *p)
{
	return p + REC_HEADER + 1;
}

/* The key of the record at off, read back (not mapped, so that the mapping
 * stays small) into buf.  Its length, or -errno. */
static ssize_t key_read(const struct keys *k, uint64_t off, uint8_t buf[4 + VP_IDENTITY_MAX],
			unsigned *cls)
{
	uint8_t head[5];
	ssize_t n = pread(k->fd, head, 5, (off_t)(off + REC_HEADER));
	size_t len;

	if (n != 5)
		return n < 0 ? -errno : -EIO;
	*cls = key_class(head[0]);
	memcpy(buf, head + 1, 4);
	len = (size_t)buf[2] | (size_t)buf[3] << 8;
	n = len ? pread(k->fd, buf + 4, len, (off_t)(off + REC_HEADER + 5)) : 0;
	if (n < 0 || (size_t)n != len)
		return n < 0 ? -errno : -EIO;
	return (ssize_t)(4 + len);
}

/* The thread's big tables come straight from the kernel and go back to it
 * when freed (a freed heap block would stay with the thread's arena). */
static void *bg_calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = mmap(NULL, n * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void bg_free(void *p, size_t n, size_t size)
{
	if (p)
		munmap(p, n * size);
}

static size_t key_home(const struct keys *k, uint64_t h)
{
	return (size_t)(h >> (64 - k->bits));
}

static int keys_grow(struct keys *k)
{
	unsigned bits = k->bits ? k->bits + 1 : VP_STORE_KEY_FIRST_BITS;
	uint64_t *slot = bg_calloc((size_t)1 << bits, sizeof(*slot));
	struct keys bigger = *k;
	uint8_t key[4 + VP_IDENTITY_MAX];

	if (!slot)
		return -ENOMEM;
	bigger.slot = slot;
	bigger.bits = bits;
	for (size_t i = 0; k->slot && i < (size_t)1 << k->bits; ++i) {
		uint64_t v = k->slot[i], h = v << (64 - KEY_TAG_BITS);
		size_t j;

		if (!v)
			continue;
		if (bits > KEY_TAG_BITS) {	/* the tag is not enough: hash again */
			unsigned cls;
			ssize_t len = key_read(k, v >> KEY_TAG_BITS, key, &cls);

			if (len < 0) {
				bg_free(slot, (size_t)1 << bits, sizeof(*slot));
				return (int)len;
			}
			h = key_hash(k, cls, key, (size_t)len);
		}
		for (j = key_home(&bigger, h); slot[j]; j = (j + 1) & (((size_t)1 << bits) - 1))
			;
		slot[j] = v;
	}
	bg_free(k->slot, k->slot ? (size_t)1 << k->bits : 0, sizeof(*slot));
	*k = bigger;
	return 0;
}

static void dead_set(struct keys *k, uint64_t off)
{
	k->dead[off / 8 / 64] |= (uint64_t)1 << (off / 8 % 64);
}

static bool dead(const struct keys *k, uint64_t off)
{
	return k->dead[off / 8 / 64] >> (off / 8 % 64) & 1;
}

/* Note the record at off (mapped at p) as the last of its key so far. */
static int keys_put(struct keys *k, uint64_t off, const uint8_t *p)
{
	unsigned cls = key_class(p[REC_HEADER]), old_cls;
	uint64_t h = key_hash(k, cls, key_of(p), key_len(p)), tag = h >> (64 - KEY_TAG_BITS);
	size_t mask = ((size_t)1 << k->bits) - 1, i;
	uint8_t key[4 + VP_IDENTITY_MAX];
	int ret;

	if ((k->n + 1) * 4 > (mask + 1) * 3) {
		ret = keys_grow(k);
		if (ret)
			return ret;
		mask = ((size_t)1 << k->bits) - 1;
	}
	for (i = key_home(k, h); k->slot[i]; i = (i + 1) & mask) {
		uint64_t old = k->slot[i] >> KEY_TAG_BITS;
		ssize_t len;

		if ((k->slot[i] & (((uint64_t)1 << KEY_TAG_BITS) - 1)) != tag)
			continue;
		len = key_read(k, old, key, &old_cls);
		if (len < 0)
			return (int)len;
		if (old_cls == cls && (size_t)len == key_len(p) &&
		    !memcmp(key, key_of(p), (size_t)len)) {
			dead_set(k, old);
			break;
		}
	}
	if (!k->slot[i])
		k->n++;
	k->slot[i] = off << KEY_TAG_BITS | tag;
	if (p[REC_HEADER] == REC_DEL || p[REC_HEADER] == REC_MOVED)
		dead_set(k, off);
	return 0;
}

/* The length of the whole, valid record at at (below end), or 0. */
static size_t bg_check(const struct bg *b, const uint8_t *map, uint64_t at, uint64_t end)
{
	const uint8_t *p = map + at;
	struct any_rec rec;
	size_t len;

	if (end - at < REC_HEADER)
		return 0;
	len = le32(p);
	if (len == 0 || len > MAX_PAYLOAD || end - at - REC_HEADER < len ||
	    crc32c(b->crc_table, p + REC_HEADER, len) != le32(p + 4) ||
	    decode_any(p + REC_HEADER, len, &rec))
		return 0;
	return REC_HEADER + len;
}

/* Pages behind the reader go back, from the last drop to at: the mapping
 * does not grow the process (older keys are read back with pread). */
static void bg_drop_behind(const uint8_t *map, uint64_t *dropped, uint64_t at)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t end = page > 0 ? at - at % (uint64_t)page : 0;

	if (end > *dropped) {
		madvise((void *)(map + *dropped), (size_t)(end - *dropped), MADV_DONTNEED);
		*dropped = end;
	}
}

#define BG_CHECK_EVERY 4096		/* records between looks at the stop flag */
#define BG_DROP_EVERY (1 << 20)		/* bytes read between drops */

/* Pass 1: which records a later one supersedes, up to b->from. */
static int bg_scan(struct bg *b, struct keys *k, const uint8_t *map)
{
	uint64_t at = b->hdr_in, dropped = 0;
	int ret;

	for (unsigned n = 0; at < b->from; ++n) {
		size_t len = bg_check(b, map, at, b->from);

		if (!len)
			return -EIO;	/* damage: the load will say where */
		ret = keys_put(k, at, map + at);
		if (ret)
			return ret;
		at += len;
		if (n % BG_CHECK_EVERY == 0 && atomic_load(&b->stop))
			return -ECANCELED;
		if (at - dropped > BG_DROP_EVERY)
			bg_drop_behind(map, &dropped, at);
	}
	return 0;
}

static int bg_flush(struct bg *b, size_t *len)
{
	int ret = write_all(b->io, b->out, b->buf, *len);

	b->size += *len;
	*len = 0;
	return ret;
}

/* Pass 2: the header and the surviving records, in journal order. */
static int bg_write(struct bg *b, const struct keys *k, const uint8_t *map)
{
	uint64_t at = b->hdr_in, dropped = 0;
	size_t len = HEADER_LEN;
	int ret;

	put_header(b->buf, b->id);
	for (unsigned n = 0; at < b->from; ++n) {
		const uint8_t *p = map + at;
		size_t rec = REC_HEADER + le32(p);

		if (!dead(k, at)) {
			if (CHUNK - len < rec) {
				ret = bg_flush(b, &len);
				if (ret)
					return ret;
			}
			memcpy(b->buf + len, p, rec);
			len += rec;
		}
		at += rec;
		if (n % BG_CHECK_EVERY == 0 && atomic_load(&b->stop))
			return -ECANCELED;
		if (at - dropped > BG_DROP_EVERY)
			bg_drop_behind(map, &dropped, at);
	}
	b->covered = b->from;
	return bg_flush(b, &len);
}

static int bg_rewrite(struct bg *b)
{
	struct keys k = { .fd = b->in };
	uint8_t *map;
	int ret;

	if (b->from > SIZE_MAX / 2 || b->from >= KEY_OFF_LIMIT)
		return -EFBIG;
	if (getrandom(k.sip, sizeof(k.sip), GRND_NONBLOCK) != sizeof(k.sip)) {
		k.sip[0] = (uint64_t)time(NULL);	/* keys come from the journal */
		k.sip[1] = (uint64_t)(uintptr_t)b;
	}
	k.dead = bg_calloc((size_t)(b->from / 8 / 64 + 1), sizeof(*k.dead));
	if (!k.dead)
		return -ENOMEM;
	map = mmap(NULL, (size_t)b->from, PROT_READ, MAP_PRIVATE, b->in, 0);
	if (map == MAP_FAILED) {
		bg_free(k.dead, (size_t)(b->from / 8 / 64 + 1), sizeof(*k.dead));
		return -errno;
	}
	madvise(map, (size_t)b->from, MADV_SEQUENTIAL);
	ret = b->from < b->hdr_in || memcmp(map, MAGIC, MAGIC_LEN) ||
	      le32(map + MAGIC_LEN) != (b->hdr_in == HEADER_V1 ? 1 : VERSION) ? -EIO : 0;
	if (!ret)
		ret = bg_scan(b, &k, map);
	bg_free(k.slot, k.slot ? (size_t)1 << k.bits : 0, sizeof(*k.slot));
	if (!ret)
		ret = bg_write(b, &k, map);
	munmap(map, (size_t)b->from);
	bg_free(k.dead, (size_t)(b->from / 8 / 64 + 1), sizeof(*k.dead));
	return ret;
}

/* Copy the journal's bytes [from, to) to the end of out.  0 or -errno. */
static int copy_range(const struct vp_store_io *io, int in, int out, uint8_t *buf,
		      uint64_t from, uint64_t to)
{
	int ret = 0;

	while (!ret && from < to) {
		size_t want = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
		ssize_t n = pread(in, buf, want, (off_t)from);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		ret = write_all(io, out, buf, (size_t)n);
		from += (uint64_t)n;
	}
	return ret;
}

#define BG_LEFT_TO_CALLER (64 << 10)	/* bytes the caller's poll copies at most */
#define BG_ROUNDS 16			/* catching up with a fast writer */

/* Copy what the caller appended since b->from, then sync the new journal. */
static int bg_catch_up(struct bg *b)
{
	for (int round = 0; round < BG_ROUNDS; ++round) {
		uint64_t end = atomic_load(&b->end);
		int ret;

		if (end - b->covered <= BG_LEFT_TO_CALLER)
			break;
		if (atomic_load(&b->stop))
			return -ECANCELED;
		ret = copy_range(b->io, b->in, b->out, b->buf, b->covered, end);
		if (ret)
			return ret;
		b->size += end - b->covered;
		b->covered = end;
	}
	return sync_fd(b->io, b->out);
}

static void *bg_main(void *arg)
{
	struct bg *b = arg;
	int err, old;

	struct sched_param normal = { 0 };

	/* OpenVPN's own thread comes first, whatever its policy: this one
	 * runs at the lowest priority (per thread on Linux). */
	pthread_setschedparam(pthread_self(), SCHED_OTHER, &normal);
#ifdef __linux__
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
#endif
	err = bg_rewrite(b);
	if (!err)
		err = bg_catch_up(b);
	pthread_mutex_lock(&b->lock);
	b->err = err;
	b->state = err ? BG_FAILED : BG_READY;
	pthread_cond_broadcast(&b->cond);
	while (!err && b->old_fd < 0 && !b->release)
		pthread_cond_wait(&b->cond, &b->lock);
	old = b->old_fd;
	pthread_mutex_unlock(&b->lock);
	if (old >= 0) {
		/* The last descriptors of the replaced journal: closing them
		 * frees its blocks, which takes a while for a big file. */
		fsync(b->dir);	/* the rename, for good measure: either name is whole */
		close(old);
		close(b->in);
		b->in = -1;
	}
	pthread_mutex_lock(&b->lock);
	b->state = BG_DONE;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* The caller appended: the thread copies up to end. */
static void bg_note_end(struct bg *b, uint64_t end)
{
	atomic_store(&b->end, end);
}

/* Without the lock: the caller never waits for a thread that runs at the
 * lowest priority. */
static enum bg_state bg_state(struct bg *b)
{
	return (enum bg_state)atomic_load(&b->state);
}

/* Let the thread end: with the old journal to close (old_fd >= 0) or
 * without. */
static void bg_release(struct bg *b, int old_fd)
{
	pthread_mutex_lock(&b->lock);
	b->old_fd = old_fd;
	b->release = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* Wait for the thread to end and free it; its new journal is dropped unless
 * it was installed. */
static void bg_join(struct vp_store *s)
{
	struct bg *b = s->bg;

	pthread_join(b->thread, NULL);
	if (!b->installed)
		tmp_drop(s, b->out);
	if (b->in >= 0)
		close(b->in);
	close(b->dir);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b->buf);
	free(b);
	s->bg = NULL;
	compact_unlock(s);
}

/* Forget a running compaction: stop the thread, drop its file.  The journal
 * as it is holds every record.  One already installed is waited for. */
static void bg_abandon(struct vp_store *s)
{
	if (!s->bg)
		return;
	atomic_store(&s->bg->stop, true);
	bg_release(s->bg, -1);
	bg_join(s);
}

/* An installed compaction whose thread has ended is joined (at once). */
static void bg_reap(struct vp_store *s)
{
	if (s->bg && s->bg->installed && bg_state(s->bg) == BG_DONE)
		bg_join(s);
}

static int bg_spawn(struct bg *b)
{
	sigset_t all, old;
	int ret;

	/* OpenVPN's signals stay with OpenVPN's thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&b->thread, NULL, bg_main, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -ret;
}

static int compact_start(struct vp_store *s)
{
	struct compact c;
	struct bg *b;
	char path[PATH_MAX];
	int ret;

	bg_reap(s);
	if (s->bg)
		return -EALREADY;
	if (s->appended >= UINT64_MAX / 2)
		return -ESTALE;		/* records live only in the caller */
	if (path_in(path, sizeof(path), s->dir, JOURNAL))
		return -ENAMETOOLONG;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->old_fd = b->in = b->dir = -1;
	b->crc_table = s->crc_table;
	b->io = &s->io;
	b->hdr_in = s->hdr_len;
	b->from = b->covered = s->end;
	b->appended = s->appended;
	atomic_init(&b->state, BG_RUNNING);
	atomic_init(&b->stop, false);
	atomic_init(&b->end, s->end);
	ret = compact_open(s, &c);
	if (ret)
		goto out_free;
	b->out = c.fd;
	b->buf = c.buf;
	b->id = c.id;
	b->in = s->fs->open(s->fs->ud, path, O_RDONLY, 0);	/* the journal's fd appends */
	if (b->in < 0) {
		ret = b->in;
		goto out_drop;
	}
	b->dir = s->fs->open(s->fs->ud, s->dir, O_RDONLY | O_DIRECTORY, 0);
	if (b->dir < 0) {
		ret = b->dir;
		goto out_close_in;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	ret = bg_spawn(b);
	if (ret)
		goto out_destroy;
	s->bg = b;
	return 0;

out_destroy:
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	close(b->dir);
out_close_in:
	close(b->in);
out_drop:
	tmp_drop(s, b->out);
	free(b->buf);
out_free:
	free(b);
	return ret;
}

int vp_store_compact_start(struct vp_store *s)
{
	bool own = !s->in_change;
	int ret;

	bg_reap(s);
	if (s->bg)
		return -EALREADY;
	if (own) {
		ret = vp_store_begin(s);
		if (ret)
			return ret;
	}
	ret = compact_lock(s);
	if (!ret) {
		ret = compact_start(s);
		if (ret)
			compact_unlock(s);
	}
	if (own)
		vp_store_end(s);
	return ret;
}

/* The thread is ready: copy the little appended since it caught up, put the
 * new journal in place, and give the old one to the thread to close. */
static int bg_finish(struct vp_store *s)
{
	struct bg *b = s->bg;
	uint64_t size = b->size + (s->end - b->covered);
	int ret, old_fd;

	ret = copy_range(&s->io, b->in, b->out, b->buf, b->covered, s->end);
	/* The thread synced the bulk; the tail is as durable as any append. */
	if (!ret && s->do_fsync)
		ret = sync_fd(&s->io, b->out);
	if (!ret)
		ret = tmp_install(s, b->id, b->out, size, &old_fd);
	if (ret)
		return ret;
	b->installed = true;
	compact_unlock(s);		/* the next one may start (its thread ends) */
	s->appended = s->appended > b->appended ? s->appended - b->appended : 0;
	bg_release(b, old_fd);
	return 0;
}

int vp_store_compact_poll(struct vp_store *s, bool wait)
{
	struct bg *b = s->bg;
	enum bg_state st;
	int ret;

	if (b && !b->installed) {
		if (wait) {
			pthread_mutex_lock(&b->lock);
			while (bg_state(b) == BG_RUNNING)
				pthread_cond_wait(&b->cond, &b->lock);
			pthread_mutex_unlock(&b->lock);
		}
		st = bg_state(b);
		if (st == BG_RUNNING)
			return -EINPROGRESS;
		if (st == BG_READY) {
			bool own = !s->in_change;

			ret = own ? vp_store_begin(s) : 0;
			if (!ret)
				ret = bg_finish(s);
			if (own)
				vp_store_end(s);
		} else {
			ret = -EIO;
		}
		if (ret) {
			bg_abandon(s);	/* the old journal stays */
			return ret;
		}
	}
	if (s->bg && wait)
		bg_join(s);
	bg_reap(s);
	return 0;
}

bool vp_store_compacting(const struct vp_store *s)
{
	return s->bg && !s->bg->installed;
}

/* ---- the server file -------------------------------------------------------------- */

#define SERVER_FILE "server"
#define SERVER_TMP SERVER_FILE ".tmp"

int vp_store_put_server(struct vp_store *s, const char *text)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	size_t len = strlen(text);
	bool locked = s->in_change;
	int fd, ret;

	if (memchr(text, '\n', len))
		return -EINVAL;
	if (path_in(tmp, sizeof(tmp), s->dir, SERVER_TMP) ||
	    path_in(path, sizeof(path), s->dir, SERVER_FILE))
		return -ENAMETOOLONG;
	/* Instances starting together would share the temporary file: one
	 * at a time, under the journal's mutex. */
	if (!locked && (ret = ofd_lock(s, F_WRLCK, LOCK_MUTEX, true)))
		return ret;
	fd = s->fs->open(s->fs->ud, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		ret = fd;
		goto out_unlock;
	}
	ret = write_all(&s->io, fd, text, len);
	if (!ret)
		ret = write_all(&s->io, fd, "\n", 1);
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret)
		ret = s->fs->rename(s->fs->ud, tmp, path);
	if (ret)
		s->fs->unlink(s->fs->ud, tmp);
out_unlock:
	if (!locked)
		(void)ofd_lock(s, F_UNLCK, LOCK_MUTEX, false);
	return ret;
}

int vp_store_read_server(const char *dir, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, ret = 0;

	if (!len)
		return -EINVAL;
	if (path_in(path, sizeof(path), dir, SERVER_FILE))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n == len)
		ret = -EFBIG;
	close(fd);
	if (ret)
		return ret;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* ---- reading without the lock ------------------------------------------------- */

int vp_store_journal_size(const char *dir, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat st;

	*size = 0;
	if (path_in(path, sizeof(path), dir, JOURNAL))
		return -ENAMETOOLONG;
	if (stat(path, &st))
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

int vp_store_read(const char *dir, const struct vp_store_replay *replay,
		  struct vp_store_report *report)
{
	struct vp_store_report scratch;
	char path[PATH_MAX];
	uint32_t crc_table[256];
	uint64_t good_end;
	int fd, ret;

	if (!report)
		report = &scratch;
	memset(report, 0, sizeof(*report));
	if (path_in(path, sizeof(path), dir, JOURNAL))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	crc32c_init(crc_table);
	ret = replay_fd(fd, crc_table, replay, report, &good_end);
	close(fd);
	report->empty = !ret && report->bytes == 0;
	return ret;
}

/* ---- the journal read only, as a store ----------------------------------------------- */

/*
 * vp_journal_read_ops: the journal as vp_store_read() sees it, behind the
 * store interface, for an engine that only reads (the command).  Nothing is
 * created, locked or written: open replays the journal once (a snapshot:
 * begin catches up with nothing), every write is -EROFS, and liveness is
 * asked of the lock file opened read-only (F_OFD_GETLK needs no write
 * access and takes nothing).
 */
static int reader_put(void *ud, const struct vp_lease_rec *rec)
{
	const struct vp_store *s = ud;

	return s->replay.put ? s->replay.put(s->replay.ud, rec) : 0;
}

static int reader_del(void *ud, const uint8_t *id, size_t len, uint16_t slot)
{
	const struct vp_store *s = ud;

	return s->replay.del ? s->replay.del(s->replay.ud, id, len, slot) : 0;
}

static void reader_size(void *ud, uint64_t bytes)
{
	const struct vp_store *s = ud;

	if (s->replay.size)
		s->replay.size(s->replay.ud, bytes);
}

static int reader_instance(void *ud, const struct vp_instance_rec *rec)
{
	struct vp_store *s = ud;

	if (rec->slot < VP_INSTANCE_MAX)
		s->inst[rec->slot] = *rec;
	return s->replay.instance ? s->replay.instance(s->replay.ud, rec) : 0;
}

static void reader_close(struct vp_store *s)
{
	if (!s)
		return;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->inst);
	free(s->dir);
	free(s);
}

static int reader_open(struct vp_store **out, const char *dir, bool do_fsync,
		       const struct vp_store_io *io, const struct vp_store_replay *replay,
		       struct vp_store_report *report, pid_t *holder_pid)
{
	struct vp_store_replay mine = {
		.put = reader_put, .del = reader_del, .size = reader_size,
		.instance = reader_instance,
	};
	struct vp_store *s = calloc(1, sizeof(*s));
	char path[PATH_MAX];
	int ret;

	(void)do_fsync;
	(void)io;
	*out = NULL;
	if (holder_pid)
		*holder_pid = 0;
	if (!s)
		return -ENOMEM;
	s->lock_fd = s->fd = -1;
	s->my_slot = -1;
	s->dir = strdup(dir);
	s->inst = calloc(VP_INSTANCE_MAX, sizeof(*s->inst));
	if (!s->dir || !s->inst) {
		reader_close(s);
		return -ENOMEM;
	}
	if (replay)
		s->replay = *replay;
	mine.ud = s;
	/* No lock file (no instance ever ran), or one that cannot be opened:
	 * no instance is seen alive. */
	if (!path_in(path, sizeof(path), dir, "lock"))
		s->lock_fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ret = vp_store_read(dir, &mine, report);
	if (ret == -ENOENT)
		ret = 0;	/* no journal yet: no leases */
	if (ret) {
		reader_close(s);
		return ret;
	}
	*out = s;
	return 0;
}

static int reader_begin(struct vp_store *s)
{
	(void)s;
	return 0;	/* a snapshot: nothing to catch up with */
}

static void reader_end(struct vp_store *s)
{
	(void)s;
}

static int reader_put_rec(struct vp_store *s, const struct vp_lease_rec *rec)
{
	(void)s;
	(void)rec;
	return -EROFS;
}

static int reader_del_rec(struct vp_store *s, const uint8_t *id, size_t len, uint16_t slot)
{
	(void)s;
	(void)id;
	(void)len;
	(void)slot;
	return -EROFS;
}

static int reader_register(struct vp_store *s, struct vp_instance_rec *rec, pid_t *live_pid)
{
	(void)s;
	(void)rec;
	if (live_pid)
		*live_pid = 0;
	return -EROFS;
}

static int reader_unregister(struct vp_store *s)
{
	(void)s;
	return 0;	/* never registered */
}

static bool reader_slot_alive(struct vp_store *s, uint16_t slot)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = LOCK_SLOT0 + slot, .l_len = 1 };

	if (slot >= VP_INSTANCE_MAX || s->lock_fd < 0)
		return false;
	if (fcntl(s->lock_fd, F_OFD_GETLK, &fl))
		return false;
	return fl.l_type != F_UNLCK;
}

static uint64_t reader_appended(const struct vp_store *s)
{
	(void)s;
	return 0;
}

static int reader_compact(struct vp_store *s,
			  int (*each)(void *ud, vp_store_emit_fn emit, void *emit_ctx), void *ud)
{
	(void)s;
	(void)each;
	(void)ud;
	return -EROFS;
}

static int reader_compact_start(struct vp_store *s)
{
	(void)s;
	return -EROFS;
}

static int reader_compact_poll(struct vp_store *s, bool wait)
{
	(void)s;
	(void)wait;
	return 0;
}

static bool reader_compacting(const struct vp_store *s)
{
	(void)s;
	return false;
}

static int reader_put_server(struct vp_store *s, const char *text)
{
	(void)s;
	(void)text;
	return -EROFS;
}

const struct vp_store_ops vp_journal_read_ops = {
	.name = "journal (read only)",
	.open = reader_open,
	.close = reader_close,
	.abandon = reader_close,
	.begin = reader_begin,
	.end = reader_end,
	.put = reader_put_rec,
	.del = reader_del_rec,
	.register_instance = reader_register,
	.unregister = reader_unregister,
	.slot = vp_store_slot,
	.slot_alive = reader_slot_alive,
	.instance = vp_store_instance,
	.appended = reader_appended,
	.compact = reader_compact,
	.compact_start = reader_compact_start,
	.compact_poll = reader_compact_poll,
	.compacting = reader_compacting,
	.put_server = reader_put_server,
};

/* ---- the journal as a store ------------------------------------------------------ */

const struct vp_store_ops vp_journal_ops = {
	.name = "journal",
	.open = vp_store_open,
	.close = vp_store_close,
	.abandon = vp_store_abandon,
	.begin = vp_store_begin,
	.end = vp_store_end,
	.put = vp_store_put,
	.del = vp_store_del,
	.register_instance = vp_store_register,
	.unregister = vp_store_unregister,
	.slot = vp_store_slot,
	.slot_alive = vp_store_slot_alive,
	.instance = vp_store_instance,
	.appended = vp_store_appended,
	.compact = vp_store_compact,
	.compact_start = vp_store_compact_start,
	.compact_poll = vp_store_compact_poll,
	.compacting = vp_store_compacting,
	.put_server = vp_store_put_server,
};
