/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The journal: "VPNPOOL\1", then records
 *   u32 payload length, u32 CRC-32C of the payload, payload
 * all little-endian.  Payload: u8 type, then
 *   PUT: u16 slot, u8 state, u32 sessions, i64 created, i64 since,
 *        u16 identity length, identity, u8 real length, real,
 *        addr4, addr6, subnet4, subnet6
 *   DEL: u16 slot, u16 identity length, identity
 * An address is u8 family (0, 4, 6) and 0, 4 or 16 bytes; a subnet is an
 * address plus a u8 prefix length when the family is not 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define MAGIC "VPNPOOL\1"
#define MAGIC_LEN 8
#define REC_HEADER 8
#define MAX_PAYLOAD (64 + VP_IDENTITY_MAX + VP_REAL_MAX + 4 * 18)
#define REC_PUT 1
#define REC_DEL 2
#define JOURNAL "leases.journal"

struct vp_store {
	char *dir;
	int lock_fd, fd;
	bool do_fsync;
	uint64_t offset;		/* end of the last whole record */
	uint64_t appended;
	struct vp_store_io io;
	uint32_t crc_table[256];
	uint8_t buf[REC_HEADER + MAX_PAYLOAD];
};

/* ---- CRC-32C (Castagnoli) --------------------------------------------------- */

static void crc_init(uint32_t table[256])
{
	for (uint32_t i = 0; i < 256; ++i) {
		uint32_t c = i;

		for (int k = 0; k < 8; ++k)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
		table[i] = c;
	}
}

static uint32_t crc32c(const uint32_t table[256], const uint8_t *p, size_t len)
{
	uint32_t c = ~0U;

	while (len--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

/* ---- encoding ----------------------------------------------------------------- */

struct writer {
	uint8_t *p, *end;
};

static void put_bytes(struct writer *w, const void *data, size_t len)
{
	if ((size_t)(w->end - w->p) < len) {
		w->p = w->end + 1;	/* overflow marker */
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

/* Encode a record (header and payload) into buf; returns its size or 0. */
static size_t encode(struct vp_store *s, const struct vp_lease_rec *r, const uint8_t *id,
		     size_t idlen, uint16_t slot)
{
	struct writer w = { s->buf + REC_HEADER, s->buf + sizeof(s->buf) };
	size_t len, rlen = 0;

	if (!idlen || idlen > VP_IDENTITY_MAX)
		return 0;
	put_uint(&w, r ? REC_PUT : REC_DEL, 1);
	put_uint(&w, slot, 2);
	if (r) {
		rlen = strnlen(r->real, VP_REAL_MAX - 1);
		put_uint(&w, r->state, 1);
		put_uint(&w, r->sessions, 4);
		put_uint(&w, (uint64_t)r->created, 8);
		put_uint(&w, (uint64_t)r->since, 8);
	}
	put_uint(&w, idlen, 2);
	put_bytes(&w, id, idlen);
	if (r) {
		put_uint(&w, rlen, 1);
		put_bytes(&w, r->real, rlen);
		put_addr(&w, &r->addr4);
		put_addr(&w, &r->addr6);
		put_prefix(&w, &r->subnet4);
		put_prefix(&w, &r->subnet6);
	}
	if (w.p > w.end)
		return 0;
	len = (size_t)(w.p - (s->buf + REC_HEADER));
	w.p = s->buf;
	put_uint(&w, len, 4);
	put_uint(&w, crc32c(s->crc_table, s->buf + REC_HEADER, len), 4);
	return REC_HEADER + len;
}

/* ---- decoding ----------------------------------------------------------------- */

struct reader {
	const uint8_t *p, *end;
	bool bad;
};

static const uint8_t *get_bytes(struct reader *r, size_t len)
{
	const uint8_t *p = r->p;

	if (r->bad || (size_t)(r->end - r->p) < len) {
		r->bad = true;
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
		r->bad = true;
		return;
	}
	p = get_bytes(r, family == VP_INET ? 4 : 16);
	if (p)
		*a = vp_addr_from_bytes((enum vp_family)family, p);
}

static void get_prefix(struct reader *r, struct vp_prefix *p)
{
	struct vp_prefix net;

	get_addr(r, &p->addr);
	p->len = 0;
	if (!p->addr.family)
		return;
	p->len = (uint8_t)get_uint(r, 1);
	if (p->len > vp_family_bits(p->addr.family)) {
		r->bad = true;
		return;
	}
	net = vp_prefix_of(&p->addr, p->len);
	if (!vp_addr_eq(&net.addr, &p->addr))
		r->bad = true;
}

/* Decode and apply one payload; 0, -EBADMSG (malformed), or the callback's
 * error. */
static int apply(const uint8_t *payload, size_t len, const struct vp_store_replay *replay,
		 const char **why)
{
	struct reader r = { payload, payload + len, false };
	struct vp_lease_rec rec;
	unsigned type = (unsigned)get_uint(&r, 1);
	size_t rlen;
	const uint8_t *real;

	memset(&rec, 0, sizeof(rec));
	if (type != REC_PUT && type != REC_DEL) {
		*why = "unknown record type";
		return -EBADMSG;
	}
	rec.slot = (uint16_t)get_uint(&r, 2);
	if (type == REC_PUT) {
		rec.state = (uint8_t)get_uint(&r, 1);
		rec.sessions = (uint32_t)get_uint(&r, 4);
		rec.created = (int64_t)get_uint(&r, 8);
		rec.since = (int64_t)get_uint(&r, 8);
	}
	rec.identity_len = (size_t)get_uint(&r, 2);
	rec.identity = get_bytes(&r, rec.identity_len);
	if (!r.bad && (rec.identity_len == 0 || rec.identity_len > VP_IDENTITY_MAX)) {
		*why = "identity length out of bounds";
		return -EBADMSG;
	}
	if (type == REC_PUT) {
		rlen = (size_t)get_uint(&r, 1);
		real = get_bytes(&r, rlen);
		if (!r.bad && rlen >= VP_REAL_MAX) {
			*why = "real address too long";
			return -EBADMSG;
		}
		if (real)
			memcpy(rec.real, real, rlen);
		get_addr(&r, &rec.addr4);
		get_addr(&r, &rec.addr6);
		get_prefix(&r, &rec.subnet4);
		get_prefix(&r, &rec.subnet6);
		if (!r.bad && (rec.state > VP_LEASE_ONLINE ||
			       (rec.addr4.family && rec.addr4.family != VP_INET) ||
			       (rec.addr6.family && rec.addr6.family != VP_INET6) ||
			       (rec.subnet4.addr.family && rec.subnet4.addr.family != VP_INET) ||
			       (rec.subnet6.addr.family && rec.subnet6.addr.family != VP_INET6))) {
			*why = "bad lease state or address family";
			return -EBADMSG;
		}
	}
	if (r.bad || r.p != r.end) {
		*why = r.bad ? "record fields run past its end" : "trailing bytes in record";
		return -EBADMSG;
	}
	if (type == REC_DEL)
		return replay->del ? replay->del(replay->ud, rec.identity, rec.identity_len,
						 rec.slot) : 0;
	return replay->put ? replay->put(replay->ud, &rec) : 0;
}

/* Replay a journal image; fills report and *good_end (end of the last good
 * record).  Returns 0 or a callback's error. */
static int replay_image(const uint8_t *data, uint64_t size, const struct vp_store_replay *replay,
			const uint32_t crc_table[256], struct vp_store_report *report,
			uint64_t *good_end)
{
	uint64_t off = MAGIC_LEN;
	const char *why = NULL;

	report->bytes = size;
	*good_end = 0;
	if (size < MAGIC_LEN || memcmp(data, MAGIC, MAGIC_LEN)) {
		report->corrupt = size != 0;
		report->corrupt_offset = 0;
		snprintf(report->detail, sizeof(report->detail), "%s",
			 size < MAGIC_LEN ? "file too short for its header" : "bad magic");
		return 0;
	}
	while (off < size) {
		uint64_t left = size - off;
		uint32_t len, crc;
		int ret;

		if (left < REC_HEADER) {
			why = "record header cut short";
			goto torn;
		}
		len = (uint32_t)data[off] | (uint32_t)data[off + 1] << 8 |
		      (uint32_t)data[off + 2] << 16 | (uint32_t)data[off + 3] << 24;
		crc = (uint32_t)data[off + 4] | (uint32_t)data[off + 5] << 8 |
		      (uint32_t)data[off + 6] << 16 | (uint32_t)data[off + 7] << 24;
		if (len == 0 || len > MAX_PAYLOAD) {
			why = "impossible record length";
			goto corrupt;
		}
		if (left - REC_HEADER < len) {
			why = "record cut short";
			goto torn;
		}
		if (crc32c(crc_table, data + off + REC_HEADER, len) != crc) {
			why = "checksum mismatch";
			if (left == REC_HEADER + len)
				goto torn;
			goto corrupt;
		}
		ret = apply(data + off + REC_HEADER, len, replay, &why);
		if (ret == -EBADMSG) {
			if (left == REC_HEADER + len)
				goto torn;
			goto corrupt;
		}
		if (ret)
			return ret;
		report->records++;
		off += REC_HEADER + len;
	}
	*good_end = off;
	return 0;
torn:
	report->torn = true;
	report->torn_offset = off;
	snprintf(report->detail, sizeof(report->detail), "%s", why);
	*good_end = off;
	return 0;
corrupt:
	report->corrupt = true;
	report->corrupt_offset = off;
	snprintf(report->detail, sizeof(report->detail), "%s", why);
	*good_end = off;
	return 0;
}

/* mmap a file read-only and replay it. */
static int replay_fd(int fd, const struct vp_store_replay *replay, const uint32_t crc_table[256],
		     struct vp_store_report *report, uint64_t *good_end)
{
	struct stat st;
	void *map;
	int ret;

	if (fstat(fd, &st))
		return -errno;
	if (st.st_size == 0) {
		*good_end = 0;
		report->bytes = 0;
		return 0;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	ret = replay_image(map, (uint64_t)st.st_size, replay, crc_table, report, good_end);
	munmap(map, (size_t)st.st_size);
	return ret;
}

/* ---- the open store ------------------------------------------------------------ */

static int path_in(const struct vp_store *s, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", s->dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_all(const struct vp_store *s, int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = s->io.write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int take_lock(struct vp_store *s, pid_t *holder_pid)
{
	char path[4096], pid[32];
	int n;

	if (path_in(s, "lock", path, sizeof(path)))
		return -ENAMETOOLONG;
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (s->lock_fd < 0)
		return -errno;
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB)) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;

		if (holder_pid) {
			n = (int)pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			*holder_pid = (pid_t)atol(pid);
		}
		return err;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(s->lock_fd, 0) || pwrite(s->lock_fd, pid, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

static int fsync_dir(const struct vp_store *s)
{
	int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

/* A new journal holding only the header, in place of the current one. */
static int start_fresh(struct vp_store *s)
{
	char path[4096];
	int fd, ret;

	if (path_in(s, JOURNAL, path, sizeof(path)))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	ret = write_all(s, fd, MAGIC, MAGIC_LEN);
	if (ret) {
		close(fd);
		return ret;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = fd;
	s->offset = MAGIC_LEN;
	return 0;
}

static int set_aside(struct vp_store *s, struct vp_store_report *report)
{
	char from[4096];

	if (path_in(s, JOURNAL, from, sizeof(from)))
		return -ENAMETOOLONG;
	snprintf(report->set_aside, sizeof(report->set_aside), "%s/%s.corrupt-%lld", s->dir,
		 JOURNAL, (long long)time(NULL));
	if (rename(from, report->set_aside))
		return -errno;
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

static int load(struct vp_store *s, const struct vp_store_replay *replay,
		struct vp_store_report *report)
{
	char path[4096];
	uint64_t good_end;
	int ret;

	if (path_in(s, JOURNAL, path, sizeof(path)))
		return -ENAMETOOLONG;
	s->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (s->fd < 0)
		return -errno;
	ret = replay_fd(s->fd, replay, s->crc_table, report, &good_end);
	if (ret)
		return ret;
	if (report->bytes == 0)
		return start_fresh(s);
	if (report->corrupt) {
		ret = set_aside(s, report);
		if (ret)
			return ret;
		/* The caller holds what came before the damage: compact at once. */
		s->appended = UINT64_MAX / 2;
		return start_fresh(s);
	}
	if (report->torn && ftruncate(s->fd, (off_t)good_end))
		return -errno;
	s->offset = good_end;
	return 0;
}

int vp_store_open(struct vp_store **out, const char *dir, bool do_fsync,
		  const struct vp_store_io *io, const struct vp_store_replay *replay,
		  struct vp_store_report *report, pid_t *holder_pid)
{
	struct vp_store *s;
	int ret;

	*out = NULL;
	memset(report, 0, sizeof(*report));
	if (holder_pid)
		*holder_pid = 0;
	if (mkdir(dir, 0750) && errno != EEXIST)
		return -errno;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->lock_fd = s->fd = -1;
	s->do_fsync = do_fsync;
	s->io.write = io && io->write ? io->write : default_write;
	s->io.fsync = io && io->fsync ? io->fsync : default_fsync;
	crc_init(s->crc_table);
	s->dir = strdup(dir);
	if (!s->dir) {
		ret = -ENOMEM;
		goto out_close;
	}
	ret = take_lock(s, holder_pid);
	if (ret)
		goto out_close;
	ret = load(s, replay, report);
	if (ret)
		goto out_close;
	*out = s;
	return 0;

out_close:
	vp_store_close(s);
	return ret;
}

void vp_store_close(struct vp_store *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);	/* releases the flock */
	free(s->dir);
	free(s);
}

/* Append one encoded record; on failure cut the journal back. */
static int append(struct vp_store *s, size_t len)
{
	int ret;

	if (!len)
		return -EINVAL;
	ret = write_all(s, s->fd, s->buf, len);
	if (ret) {
		if (ftruncate(s->fd, (off_t)s->offset)) {
			/* Cannot even cut back: the next load drops the torn tail. */
		}
		return ret;
	}
	if (s->do_fsync && s->io.fsync(s->fd))
		return -errno;
	s->offset += len;
	s->appended++;
	return 0;
}

int vp_store_put(struct vp_store *s, const struct vp_lease_rec *rec)
{
	return append(s, encode(s, rec, rec->identity, rec->identity_len, rec->slot));
}

int vp_store_del(struct vp_store *s, const uint8_t *identity, size_t identity_len, uint16_t slot)
{
	return append(s, encode(s, NULL, identity, identity_len, slot));
}

uint64_t vp_store_appended(const struct vp_store *s)
{
	return s->appended;
}

/* Compaction writes through a large buffer. */
struct compact_ctx {
	struct vp_store *s;
	int fd;
	uint8_t *buf;
	size_t len, cap;
	int err;
};

static int compact_flush(struct compact_ctx *c)
{
	int ret = write_all(c->s, c->fd, c->buf, c->len);

	c->len = 0;
	return ret;
}

static int compact_emit(void *ctx, const struct vp_lease_rec *rec)
{
	struct compact_ctx *c = ctx;
	size_t n = encode(c->s, rec, rec->identity, rec->identity_len, rec->slot);

	if (!n)
		return -EINVAL;
	if (c->len + n > c->cap) {
		int ret = compact_flush(c);

		if (ret)
			return ret;
	}
	memcpy(c->buf + c->len, c->s->buf, n);
	c->len += n;
	return 0;
}

int vp_store_compact(struct vp_store *s,
		     int (*each)(void *ud, vp_store_emit_fn emit, void *emit_ctx), void *ud)
{
	char tmp[4096], path[4096];
	struct compact_ctx c = { .s = s, .cap = 1 << 20 };
	struct stat st;
	int ret;

	if (path_in(s, JOURNAL ".tmp", tmp, sizeof(tmp)) || path_in(s, JOURNAL, path, sizeof(path)))
		return -ENAMETOOLONG;
	c.buf = malloc(c.cap);
	if (!c.buf)
		return -ENOMEM;
	c.fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (c.fd < 0) {
		ret = -errno;
		goto out_free;
	}
	memcpy(c.buf, MAGIC, MAGIC_LEN);
	c.len = MAGIC_LEN;
	ret = each(ud, compact_emit, &c);
	if (!ret)
		ret = compact_flush(&c);
	if (!ret && s->io.fsync(c.fd))
		ret = -errno;
	if (!ret && fstat(c.fd, &st))
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		goto out_unlink;
	fsync_dir(s);
	close(s->fd);
	s->fd = c.fd;
	s->offset = (uint64_t)st.st_size;
	s->appended = 0;
	free(c.buf);
	return 0;

out_unlink:
	close(c.fd);
	unlink(tmp);
out_free:
	free(c.buf);
	return ret;
}

int vp_store_read(const char *dir, const struct vp_store_replay *replay,
		  struct vp_store_report *report)
{
	char path[4096];
	uint32_t table[256];
	uint64_t good_end;
	int fd, ret, n;

	memset(report, 0, sizeof(*report));
	n = snprintf(path, sizeof(path), "%s/%s", dir, JOURNAL);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	crc_init(table);
	ret = replay_fd(fd, replay, table, report, &good_end);
	close(fd);
	return ret;
}
