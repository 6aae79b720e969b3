/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Persistence of the lease table: the only code that touches the state
 * directory.  The engine (space.c) reaches it through struct vp_store_ops,
 * an interface about leases: open and load, begin a change (take the lock
 * and catch up with what other processes wrote), put, delete, end the
 * change, register an instance, maintenance (compaction), close.  The
 * journal below is its implementation (vp_journal_ops); a shared database
 * can be another.
 *
 * Several processes may open one state directory at once, each an
 * *instance* once it registers (or a plain writer: the command).  They
 * share one journal:
 *  - the lock file is opened once, at open (it keeps working after a
 *    privilege drop), and used with open-file-description byte-range locks
 *    (fcntl F_OFD_SETLK*): byte 0 is the journal mutex, held during one
 *    lease change only (catch up, decide, append, release); byte 1 is held
 *    while a compaction runs (one at a time; a busy one is skipped); byte
 *    16 + slot is held by the instance in that slot for its life: a process
 *    that dies loses it, which is how the others notice a crash.  Being
 *    per open file description, two stores opened in one process exclude
 *    each other as two processes do.
 *  - each store keeps the offset up to which it read the journal; at every
 *    change, under the mutex, it reads what the others appended since (a
 *    pread to the end), hands it to its replay callbacks, then appends.  A
 *    record cut short at the end seen under the mutex is a writer that died
 *    mid-write: it is cut off before appending.
 *  - a compaction writes the new journal, appends MOVED(file id, offset)
 *    to the old one and renames the new one into place, all under the
 *    mutex; a store that reads MOVED opens the journal again and goes on
 *    at that offset (or, if the file there is not that one any more, reads
 *    it whole again: replay->resync).
 *
 * Layout of the state directory:
 *   lock             the byte-range locks above (and the pid of the last
 *                    process that opened it, for messages); its second 4 KiB
 *                    (mapped shared) hold a counter every writer bumps under
 *                    the mutex before it changes the journal: a store whose
 *                    last count is the counter's catches up without a look
 *                    at the journal
 *   leases.journal   a header, then records; each record is appended with
 *                    one write(2) before vp_store_put() returns
 *   leases.journal.corrupt-<time>   a damaged journal set aside at load
 *   server           one line: the addresses the server itself uses, for
 *                    readers that cannot ask OpenVPN (the command)
 *
 * Replay is "last record of a key wins"; a DEL record removes the key.  A
 * record cut short at the end of the file (a crash mid-write) is dropped and
 * reported; damage followed by more data is corruption: the file is renamed
 * aside, reported with its offset, and the records before it are kept.
 */
#ifndef VP_STORE_H
#define VP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"

#define VP_IDENTITY_MAX 4096		/* bytes; longer identities are refused */
#define VP_REAL_MAX 64			/* "ip:port" of the client, truncated */

enum vp_lease_state { VP_LEASE_HELD = 0, VP_LEASE_ONLINE = 1 };

#define VP_INSTANCE_MAX 256		/* instance slots per state directory */
#define VP_INSTANCE_NONE 0xffff		/* a lease written by no instance */
#define VP_INSTANCE_NAME_MAX 64		/* bytes with the NUL */
#define VP_DEV_MAX 32

/* An instance as registered (or stopped), as persisted. */
struct vp_instance_rec {
	uint16_t slot;			/* 0..VP_INSTANCE_MAX-1 */
	bool stopped;			/* a clean stop */
	int32_t pid;
	int32_t ifindex;		/* of its tun device, 0: unknown */
	int64_t time;			/* registration or stop */
	char name[VP_INSTANCE_NAME_MAX];	/* NUL-terminated, not empty */
	char dev[VP_DEV_MAX];		/* NUL-terminated, may be empty */
};

/* One lease as persisted.  Pointers are borrowed for the call only.
 * An absent address or subnet has family 0. */
struct vp_lease_rec {
	const uint8_t *identity;
	size_t identity_len;		/* 1..VP_IDENTITY_MAX */
	uint16_t slot;			/* 0: the identity's sticky lease; >0: extra
					 * duplicate-cn sessions */
	uint8_t state;			/* enum vp_lease_state */
	uint32_t sessions;		/* connects so far */
	int64_t created, since;		/* first connect; last state change */
	char real[VP_REAL_MAX];		/* NUL-terminated, may be empty */
	struct vp_addr addr4, addr6;
	struct vp_prefix subnet4, subnet6;
	uint16_t instance;		/* slot of the instance of its last session
					 * (VP_INSTANCE_NONE: none) */
};

/* Called for every record in journal order while replaying; rec and identity
 * are borrowed for the call.  A callback returns 0 or -errno; an error stops the
 * replay and is returned by vp_store_open() / vp_store_read().  replay, put and
 * del may each be NULL. */
struct vp_store_replay {
	int (*put)(void *ud, const struct vp_lease_rec *rec);
	int (*del)(void *ud, const uint8_t *identity, size_t identity_len, uint16_t slot);
	void *ud;
	/* Called once before the records with the journal's size in bytes, so
	 * that the caller can size its tables for them: a hint (a record is
	 * tens of bytes; a lease may have many).  May be NULL. */
	void (*size)(void *ud, uint64_t bytes);
	/* An INSTANCE record (may be NULL). */
	int (*instance)(void *ud, const struct vp_instance_rec *rec);
	/* Catching up found the journal replaced by a file it cannot follow
	 * (compacted twice meanwhile): begin true, then every record of the
	 * new file, then begin false.  A key not put in between is gone.  May
	 * be NULL (then the records are put over what is there). */
	void (*resync)(void *ud, bool begin);
};

/* What the load found; filled by vp_store_open() and vp_store_read(). */
struct vp_store_report {
	uint64_t records;		/* records replayed */
	uint64_t bytes;			/* journal size read */
	bool torn;			/* a cut-short or unreadable last record
					 * (or a cut-short header) was dropped */
	uint64_t torn_offset;
	bool corrupt;			/* damage before the end: file set aside */
	uint64_t corrupt_offset;
	char set_aside[4096];		/* path it was renamed to ("" if none;
					 * vp_store_read() never sets one aside) */
	char detail[256];		/* what was wrong, for the log */
	bool empty;			/* the journal was there but held 0 bytes (not
					 * even its header: something cut it) */
	uint32_t version;		/* -EPROTONOSUPPORT: the version found ... */
	uint32_t version_known;		/* ... and the one this code reads */
	char refused[64];		/* -ELOOP: the file that is a symbolic link */
};

/* System calls the store makes that tests may want to fail, and its clock
 * (seconds since the epoch; it names a damaged journal set aside).  write and
 * fsync are also called from the thread of vp_store_compact_start(). */
struct vp_fs;
struct vp_store_io {
	const struct vp_fs *fs;		/* opening, renaming, removing by path
					 * (NULL: this process's own calls) */
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*fsync)(int fd);
	int64_t (*now)(void *now_ud);
	void *now_ud;
};

struct vp_store;

/* Create dir (with its parents, mode 0750) if missing, open its lock file
 * and journal, replay the journal through replay under the mutex, and keep
 * both open for appending; replay is kept for catching up later (and must
 * stay valid).  Other processes may have it open too.  0 on success;
 * -EPROTONOSUPPORT for a journal of a newer format (left as it is;
 * report->version and version_known say which); -ELOOP when the lock or
 * the journal is a symbolic link (never followed; report->refused names
 * it); a callback's error; other -errno for I/O errors; -EBADMSG never
 * (corruption is reported, not fatal).  A torn tail is cut off the file.
 * After corruption the journal starts afresh and vp_store_appended()
 * returns a huge value so that the caller compacts, writing back the
 * records it was given before the damage.  io and its members may be NULL
 * for the real system calls (write(2), fdatasync(2), time(2)); report may
 * be NULL.  holder_pid is set to 0 (kept for callers of old: a second
 * process is no longer refused); it may be NULL. */
int vp_store_open(struct vp_store **out, const char *dir, bool do_fsync,
		  const struct vp_store_io *io, const struct vp_store_replay *replay,
		  struct vp_store_report *report, pid_t *holder_pid);
/* Release the lock and close.  NULL is fine. */
void vp_store_close(struct vp_store *store);

/* Begin a lease change: take the journal mutex (waiting for it) and catch
 * up: the records other processes appended since this store last read are
 * handed to the replay callbacks of vp_store_open().  0, or -errno (the
 * mutex is not held then); -EDEADLK inside a change already. */
int vp_store_begin(struct vp_store *store);
/* End the change: release the mutex. */
void vp_store_end(struct vp_store *store);

/* Append a record with one write; on disk (and fsynced if asked) when it
 * returns 0.  Outside a begin/end pair it is one by itself.  A failed append leaves the journal as it was: -ENOSPC, -EIO, ...;
 * -EINVAL for a lease the journal could not read back (identity length, state,
 * address family, prefix length or host bits out of bounds). */
int vp_store_put(struct vp_store *store, const struct vp_lease_rec *rec);
int vp_store_del(struct vp_store *store, const uint8_t *identity, size_t identity_len,
		 uint16_t slot);

/* Register this store as an instance: its slot is the first one whose
 * liveness lock it can take (the dead slot of the same name first), and
 * an INSTANCE record (rec->slot, rec->time set by the store) is appended.
 * 0; -EADDRINUSE when an instance of that name is live (*live_pid: its
 * pid); -EUSERS when every slot is taken; -EALREADY when registered;
 * -EINVAL for an empty or too long name; -errno. */
int vp_store_register(struct vp_store *store, struct vp_instance_rec *rec, pid_t *live_pid);
/* Record the registered instance's clean stop (INSTANCE, stopped) and give
 * up its slot.  0 (also when not registered), -errno. */
int vp_store_unregister(struct vp_store *store);
/* The registered slot, or -1. */
int vp_store_slot(const struct vp_store *store);
/* Whether the instance in slot is alive (its liveness lock is held; one
 * system call).  This store's own slot is alive. */
bool vp_store_slot_alive(struct vp_store *store, uint16_t slot);
/* The last INSTANCE record of slot, or NULL. */
const struct vp_instance_rec *vp_store_instance(const struct vp_store *store, uint16_t slot);

/* For tests: let go of the files as a process killed now would (no stop
 * record, no compaction; locks released by closing), then free. */
void vp_store_abandon(struct vp_store *store);

/* Records appended since the last compaction or open; UINT64_MAX / 2 and up
 * after a load that set a damaged journal aside (compact now). */
uint64_t vp_store_appended(const struct vp_store *store);

/* Rewrite the journal as one record per live lease, produced by each() calling
 * emit() for every lease (after the last INSTANCE record of each slot);
 * atomic (temporary file, fsync, MOVED appended to the old one, rename).
 * Inside a change (else one of its own: each() sees the caller caught up).
 * On failure the old journal stays in use.  0, -EALREADY (another store of
 * the directory compacts: skipped), or -errno. */
typedef int (*vp_store_emit_fn)(void *emit_ctx, const struct vp_lease_rec *rec);
int vp_store_compact(struct vp_store *store,
		     int (*each)(void *ud, vp_store_emit_fn emit, void *emit_ctx), void *ud);

/* The same rewrite without stopping the caller, from the journal file rather
 * than from the caller's memory: a thread of the store reads the journal as
 * it is now, keeps the last record of each key, and writes them to a new
 * journal while the caller goes on appending to the old one (its signals
 * blocked, at the lowest priority); vp_store_compact_poll() then adds the
 * little appended since and renames the new journal into place.  Until then
 * the old journal is complete, so a crash or vp_store_close() at any moment
 * loses nothing (close stops the thread and drops its file).  Records other
 * stores append meanwhile are copied too: the poll that installs the new
 * journal runs inside a change, when this store has read them.  A synchronous
 * vp_store_compact() also drops a running one.  The thread's memory is 11-22
 * bytes per key in the journal, a bit per 8 bytes of journal and 1 MiB.  0, -EALREADY (one is
 * running, or the last one is still closing the old journal: try later),
 * -ESTALE (after a load that set damage aside the journal lacks records only
 * the caller holds: compact with vp_store_compact), -errno (nothing started). */
int vp_store_compact_start(struct vp_store *store);
/* Whether the thread is done, and if so finish: 0 (done, or none running),
 * -EINPROGRESS (not yet; only without wait), -EIO (the journal could not be
 * read back whole: the old journal stays), -errno (the thread or finishing
 * failed: the old journal stays).  Without wait it never blocks: what it
 * copies is at most 64 KiB (plus what was appended since the thread last
 * looked), synced only with do_fsync (the thread synced the rest). */
int vp_store_compact_poll(struct vp_store *store, bool wait);
bool vp_store_compacting(const struct vp_store *store);

/* Replace the server file with text (one line), atomically.  0 or -errno. */
int vp_store_put_server(struct vp_store *store, const char *text);
/* The server file's line (NUL-terminated, newline dropped).  0, -ENOENT,
 * -EFBIG (longer than len - 1), -errno. */
int vp_store_read_server(const char *dir, char *buf, size_t len);

/* Read-only replay of dir's journal without the lock, for the command: a
 * consistent view even while a plugin appends (a record still being written
 * reads as a torn tail and is skipped).  Mid-file damage ends the replay and is
 * reported (corrupt, corrupt_offset) but nothing is set aside or changed.  0,
 * -ENOENT (no journal yet), -EPROTONOSUPPORT (report->version says which), a
 * callback's error, -errno.  report->empty: a journal of 0 bytes.
 * report may be NULL. */
int vp_store_read(const char *dir, const struct vp_store_replay *replay,
		  struct vp_store_report *report);

/* The size in bytes of dir's journal as it is now, for a reader that sizes
 * its tables before vp_store_read() (it may have grown by the time that
 * reads it).  Takes no lock, changes nothing.  0, -ENOENT (no journal yet),
 * -errno. */
int vp_store_journal_size(const char *dir, uint64_t *size);

/* The journal as a store implementation (vp_store_* above). */
struct vp_store_ops {
	const char *name;
	int (*open)(struct vp_store **out, const char *dir, bool do_fsync,
		    const struct vp_store_io *io, const struct vp_store_replay *replay,
		    struct vp_store_report *report, pid_t *holder_pid);
	void (*close)(struct vp_store *store);
	void (*abandon)(struct vp_store *store);
	int (*begin)(struct vp_store *store);
	void (*end)(struct vp_store *store);
	int (*put)(struct vp_store *store, const struct vp_lease_rec *rec);
	int (*del)(struct vp_store *store, const uint8_t *identity, size_t identity_len,
		   uint16_t slot);
	int (*register_instance)(struct vp_store *store, struct vp_instance_rec *rec,
				 pid_t *live_pid);
	int (*unregister)(struct vp_store *store);
	int (*slot)(const struct vp_store *store);
	bool (*slot_alive)(struct vp_store *store, uint16_t slot);
	const struct vp_instance_rec *(*instance)(const struct vp_store *store, uint16_t slot);
	/* maintenance */
	uint64_t (*appended)(const struct vp_store *store);
	int (*compact)(struct vp_store *store,
		       int (*each)(void *ud, vp_store_emit_fn emit, void *emit_ctx), void *ud);
	int (*compact_start)(struct vp_store *store);
	int (*compact_poll)(struct vp_store *store, bool wait);
	bool (*compacting)(const struct vp_store *store);
	int (*put_server)(struct vp_store *store, const char *text);
};
extern const struct vp_store_ops vp_journal_ops;
/* The journal read only (the command): open replays it with vp_store_read()
 * (no lock taken, nothing created; a missing journal is no leases), begin
 * catches up with nothing, every write fails with -EROFS, and slot_alive
 * asks the lock file opened read-only (none: no instance alive). */
extern const struct vp_store_ops vp_journal_read_ops;

/* The records' checksum, CRC-32C: the fastest way this CPU has, or (portable)
 * the table-driven one every machine computes alike.  For tests. */
uint32_t vp_store_crc32c(const void *data, size_t len, bool portable);

#endif
