/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "plugin/usage.h"

#define NS 1000000000LL
#define BATCH_NS (50 * 1000 * 1000)	/* a busy writer gathers lines this long */
#define HIGH_WATER (1 << 20)		/* past this many bytes pending: wake it now */
#define MAX_PENDING (64 << 20)		/* past this: the caller writes itself */
#define MAX_HELD (64 << 20)		/* lines kept while the file cannot be written */
#define CHECK_NS NS			/* path checked and failures retried this often */
#define CREATE_GRACE_NS (100 * 1000 * 1000) /* a missing path is created after this */

/* What vp_usage_report() compares. */
struct health {
	int error, last_error;		/* now (0: fine); the last one ever */
	bool opening;
	uint64_t held;			/* lines held now */
	uint64_t late, dropped;		/* since start: held lines written; lines lost */
};

struct vp_usage {
	const struct vp_fs *fs;
	char *path;
	struct vp_strbuf line;		/* the line being formatted (caller's) */
	int64_t when_t;			/* the second "when" shows */
	char when[32];

	/* The file; under io once the writer runs. */
	int fd;				/* -1: moved away and not reopened yet */
	dev_t dev;
	ino_t ino;
	struct stat root;		/* this process's "/" at open */
	struct vp_strbuf held;		/* whole lines not written yet, oldest first */
	struct health h;
	int64_t missing_since;		/* monotonic ns; 0: the path was not missing */
	int64_t retry_at;		/* after a failure: no open or write before */
	int64_t next_check;		/* when the writer looks at the path again */

	/* Background writing (vp_usage_start_writer). */
	bool running;			/* the thread exists */
	pthread_t thread;
	pthread_mutex_t mu;		/* pending, idle, stopping, shown, reported */
	pthread_cond_t cv;
	pthread_mutex_t io;		/* the file, while the thread runs */
	struct vp_strbuf pending;	/* whole lines not yet handed to the file */
	bool idle;			/* the thread waits for a line */
	bool stopping;
	struct health shown;		/* h as of the last write (under mu) */
	int reported;			/* error last told by vp_usage_report */
	uint64_t late_told, dropped_told;
};

static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * NS + t.tv_nsec;
}

static struct timespec mono_ts(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / NS, .tv_nsec = ns % NS };
}

static uint64_t count_lines(const char *s, size_t len)
{
	uint64_t n = 0;

	for (const char *end = s + len; (s = memchr(s, '\n', (size_t)(end - s))); ++s)
		++n;
	return n;
}

/* ---- the file ------------------------------------------------------------ */

static void usage_failed(struct vp_usage *u, int err, bool opening, int64_t t)
{
	u->h.error = err;
	u->h.last_error = err;
	u->h.opening = opening;
	u->retry_at = t + CHECK_NS;
}

/* Open the path; create it (and its directory) only when create is set. */
static int usage_open_path(struct vp_usage *u, bool create)
{
	int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | (create ? O_CREAT : 0);
	struct stat st;
	int fd = u->fs->open(u->fs->ud, u->path, flags, 0640);

	if (fd == -ENOENT && create) {
		char dir[PATH_MAX];

		if (!vp_fs_dirname(u->path, dir, sizeof(dir)) && strcmp(dir, ".") &&
		    strcmp(dir, "/")) {
			u->fs->mkdirs(u->fs->ud, dir, 0750);
			fd = u->fs->open(u->fs->ud, u->path, flags, 0640);
		}
	}
	if (fd < 0)
		return fd;
	if (fstat(fd, &st)) {
		int err = -errno;

		close(fd);
		return err;
	}
	u->fd = fd;
	u->dev = st.st_dev;
	u->ino = st.st_ino;
	u->missing_since = 0;
	return 0;
}

/*
 * The path still names our file, or it is reopened.  A file moved, removed
 * or replaced is closed at once: a line written to it now could be lost
 * (logrotate compresses and removes it) or go where nobody looks.  A missing
 * path is created only after CREATE_GRACE_NS once the writer runs, so that
 * logrotate's `create`, a moment after its rename, finds no file in its way.
 */
static void usage_check_path(struct vp_usage *u, int64_t t)
{
	struct stat st;
	int ret;

	u->next_check = t + CHECK_NS;
	if (u->fd >= 0) {
		ret = u->fs->lstat(u->fs->ud, u->path, &st);
		if (!ret && st.st_dev == u->dev && st.st_ino == u->ino)
			return;
		close(u->fd);
		u->fd = -1;
	}
	if (t < u->retry_at) {
		u->next_check = u->retry_at;
		return;
	}
	/* With this process's own calls, a chroot since open (OpenVPN's) would
	 * have the path made inside it, where nobody looks.  (Another fs, the
	 * keeper's, resolves paths outside any chroot.) */
	if (u->fs == vp_fs_direct() && (stat("/", &st) || st.st_dev != u->root.st_dev ||
					 st.st_ino != u->root.st_ino)) {
		usage_failed(u, -EXDEV, true, t);
		u->next_check = u->retry_at;
		return;
	}
	ret = usage_open_path(u, false);
	if (ret == -ENOENT && u->running) {
		if (!u->missing_since)
			u->missing_since = t;
		if (t < u->missing_since + CREATE_GRACE_NS) {
			u->next_check = u->missing_since + CREATE_GRACE_NS;
			return;
		}
	}
	if (ret == -ENOENT)
		ret = usage_open_path(u, true);
	if (ret) {
		usage_failed(u, ret, true, t);
		u->next_check = u->retry_at;
	} else if (!u->held.len) {
		u->h.error = 0;
	}
}

/* Append whole lines with as few write(2)s as the kernel allows; the bytes
 * of whole lines written are returned, the error in *err.  A full disk
 * takes the part of a line that fits the file's last page and fails the
 * rest: such a part is cut off again, or the next line would be glued to it
 * (the plugin is the log's only writer: the state lock). */
static size_t write_lines(int fd, const char *s, size_t len, int *err)
{
	size_t done = 0, whole = 0;	/* bytes written; of them, whole lines */
	off_t start = lseek(fd, 0, SEEK_END);

	*err = 0;
	while (done < len) {
		ssize_t n = write(fd, s + done, len - done);
		const char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = n < 0 ? -errno : -EIO;
			if (done > whole && start >= 0 && ftruncate(fd, start + (off_t)whole))
				*err = -errno;
			return whole;
		}
		done += (size_t)n;
		nl = memrchr(s + whole, '\n', done - whole);
		if (nl)
			whole = (size_t)(nl + 1 - s);
	}
	return len;
}

/* Keep lines for later; past MAX_HELD (or memory) they are dropped. */
static void usage_hold(struct vp_usage *u, const char *s, size_t len)
{
	uint64_t lines = count_lines(s, len);

	if (u->held.len + len <= MAX_HELD)
		vp_strbuf_add(&u->held, s, len);
	else
		u->held.oom = true;
	if (u->held.oom) {
		u->held.oom = false;
		u->h.dropped += lines;
		return;
	}
	u->h.held += lines;
}

/* Write the held lines, oldest first; what fails stays held. */
static void usage_write_held(struct vp_usage *u, int64_t t)
{
	int err;
	size_t n = write_lines(u->fd, u->held.s, u->held.len, &err);
	uint64_t lines = count_lines(u->held.s, n);

	if (u->h.error)
		u->h.late += lines;
	u->h.held -= lines;
	memmove(u->held.s, u->held.s + n, u->held.len - n);
	u->held.len -= n;
	if (err)
		usage_failed(u, err, false, t);
	else
		u->h.error = 0;
}

/* Hand whole lines (len may be 0: only look at the path) to the file. */
static void usage_put(struct vp_usage *u, const char *s, size_t len)
{
	int64_t t = mono_ns();
	int err;
	size_t n;

	usage_check_path(u, t);
	if (u->held.len || u->fd < 0 || t < u->retry_at) {
		if (len)
			usage_hold(u, s, len);
		if (u->held.len && u->fd >= 0 && t >= u->retry_at)
			usage_write_held(u, t);
		return;
	}
	if (!len)
		return;
	n = write_lines(u->fd, s, len, &err);
	if (n < len) {
		usage_hold(u, s + n, len - n);
		usage_failed(u, err, false, t);
	} else {
		u->h.error = 0;
	}
}

/* Under io (or without the writer): what vp_usage_report() reads. */
static void usage_show(struct vp_usage *u)
{
	if (u->running)
		pthread_mutex_lock(&u->mu);
	u->shown = u->h;
	if (u->running)
		pthread_mutex_unlock(&u->mu);
}

/* ---- open and close ------------------------------------------------------ */

int vp_usage_open(struct vp_usage **out, const char *path, const struct vp_fs *fs)
{
	struct vp_usage *u = calloc(1, sizeof(*u));
	pthread_condattr_t attr;
	int ret;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->fd = -1;
	u->fs = vp_fs_or_direct(fs);
	pthread_mutex_init(&u->mu, NULL);
	pthread_mutex_init(&u->io, NULL);
	/* Timed waits on the monotonic clock: a clock set back must not stop
	 * the checks of the path for as long. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&u->cv, &attr);
	pthread_condattr_destroy(&attr);
	u->path = strdup(path);
	ret = !u->path ? -ENOMEM : stat("/", &u->root) ? -errno : usage_open_path(u, true);
	if (ret) {
		vp_usage_close(u);
		return ret;
	}
	*out = u;
	return 0;
}

uint64_t vp_usage_close(struct vp_usage *u)
{
	uint64_t lost;

	if (!u)
		return 0;
	if (u->running) {
		pthread_mutex_lock(&u->mu);
		u->stopping = true;
		pthread_cond_signal(&u->cv);
		pthread_mutex_unlock(&u->mu);
		pthread_join(u->thread, NULL);
		u->running = false;
	}
	/* One last try, without waiting for a retry or a grace. */
	u->retry_at = 0;
	usage_put(u, u->pending.s, u->pending.len);
	lost = u->h.held;
	pthread_mutex_destroy(&u->mu);
	pthread_mutex_destroy(&u->io);
	pthread_cond_destroy(&u->cv);
	vp_strbuf_free(&u->pending);
	vp_strbuf_free(&u->held);
	if (u->fd >= 0)
		close(u->fd);
	vp_strbuf_free(&u->line);
	free(u->path);
	free(u);
	return lost;
}

void vp_usage_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}

/* ---- the writer thread ----------------------------------------------------- */

/*
 * The writer: sleeps until a line arrives (the caller wakes it: one futex
 * call on a quiet server) or a second has passed (to look at the path, and
 * retry a failure), writes what is pending, then gathers lines for BATCH_NS
 * before the next write, so that a busy server's connects never make a
 * system call for the usage log.
 */
static void *writer_main(void *arg)
{
	struct vp_usage *u = arg;
	struct vp_strbuf batch = { 0 };
	struct timespec tick;

	pthread_mutex_lock(&u->io);
	tick = mono_ts(mono_ns() + CHECK_NS);
	pthread_mutex_unlock(&u->io);
	pthread_mutex_lock(&u->mu);
	for (;;) {
		struct vp_strbuf swap;
		struct timespec until;
		bool wrote;

		u->idle = true;
		while (!u->pending.len && !u->stopping &&
		       pthread_cond_timedwait(&u->cv, &u->mu, &tick) != ETIMEDOUT)
			;
		u->idle = false;
		if (u->stopping)
			break;
		swap = u->pending;
		u->pending = batch;
		batch = swap;
		pthread_mutex_unlock(&u->mu);

		pthread_mutex_lock(&u->io);
		usage_put(u, batch.s, batch.len);
		tick = mono_ts(u->next_check);
		usage_show(u);
		pthread_mutex_unlock(&u->io);
		wrote = batch.len > 0;
		vp_strbuf_reset(&batch);

		pthread_mutex_lock(&u->mu);
		if (!wrote)
			continue;
		until = mono_ts(mono_ns() + BATCH_NS);
		while (!u->stopping && u->pending.len < HIGH_WATER &&
		       pthread_cond_timedwait(&u->cv, &u->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&u->mu);
	vp_strbuf_free(&batch);
	return NULL;
}

int vp_usage_start_writer(struct vp_usage *u)
{
	sigset_t all, old;
	int ret;

	if (!u || u->running)
		return 0;
	/* OpenVPN's signals stay with OpenVPN's thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	u->running = true;
	ret = pthread_create(&u->thread, NULL, writer_main, u);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		u->running = false;
		return -ret;
	}
	return 0;
}

int vp_usage_write(struct vp_usage *u, int64_t now, const char *event,
		   const struct vp_strbuf *fields)
{
	int ret = 0;

	if (!u)
		return 0;
	if (now != u->when_t || !u->when[0]) {
		vp_usage_time(now, u->when, sizeof(u->when));
		u->when_t = now;
	}
	vp_strbuf_reset(&u->line);
	vp_logfmt_adds(&u->line, "time", u->when);
	vp_logfmt_adds(&u->line, "event", event);
	if (fields->len) {
		vp_strbuf_add(&u->line, " ", 1);
		vp_strbuf_add(&u->line, fields->s, fields->len);
	}
	vp_strbuf_add(&u->line, "\n", 1);
	if (u->line.oom)
		return -ENOMEM;
	if (!u->running) {
		usage_put(u, u->line.s, u->line.len);
		usage_show(u);
		return 0;
	}

	pthread_mutex_lock(&u->mu);
	if (u->pending.len + u->line.len > MAX_PENDING) {
		/* The disk cannot keep up: hand what is pending and this line to
		 * the file ourselves, in order, after the batch being written. */
		struct vp_strbuf mine = u->pending;

		u->pending = (struct vp_strbuf){ 0 };
		pthread_mutex_unlock(&u->mu);
		vp_strbuf_add(&mine, u->line.s, u->line.len);
		pthread_mutex_lock(&u->io);
		if (mine.oom)
			ret = -ENOMEM;
		else
			usage_put(u, mine.s, mine.len);
		usage_show(u);
		pthread_mutex_unlock(&u->io);
		vp_strbuf_free(&mine);
		return ret;
	}
	vp_strbuf_add(&u->pending, u->line.s, u->line.len);
	if (u->pending.oom) {
		u->pending.oom = false;
		ret = -ENOMEM;
	}
	if (u->idle || u->pending.len >= HIGH_WATER) {
		u->idle = false;
		pthread_cond_signal(&u->cv);
	}
	pthread_mutex_unlock(&u->mu);
	return ret;
}

bool vp_usage_report(struct vp_usage *u, struct vp_usage_report *r)
{
	struct health h;
	bool told = true;

	if (!u)
		return false;
	pthread_mutex_lock(&u->mu);
	h = u->shown;
	memset(r, 0, sizeof(*r));
	r->dropped = h.dropped - u->dropped_told;
	if (h.error && h.error != u->reported) {
		/* It fails (for another reason than told). */
		r->error = h.error;
		r->opening = h.opening;
		r->held = h.held;
	} else if (!h.error && !u->reported && (h.late > u->late_told || r->dropped)) {
		/* It failed and recovered since the last call: the failure first. */
		r->error = h.last_error ? h.last_error : -EIO;
	} else if (!h.error && u->reported) {
		r->held = h.late - u->late_told;
		u->late_told = h.late;
		u->dropped_told = h.dropped;
	} else {
		told = false;
	}
	if (told)
		u->reported = r->error;
	pthread_mutex_unlock(&u->mu);
	return told;
}

void vp_usage_reclaim_fields(struct vp_strbuf *b, const struct vp_event *ev)
{
	char a[VP_ADDR_STRLEN], p[VP_PREFIX_STRLEN];

	vp_logfmt_add(b, "identity", ev->identity, ev->identity_len);
	vp_logfmt_adds(b, "pool", ev->pool);
	if (ev->address.family)
		vp_logfmt_adds(b, "address", vp_addr_format(&ev->address, a));
	if (ev->subnet4.addr.family)
		vp_logfmt_adds(b, "subnet", vp_prefix_format(&ev->subnet4, p));
	if (ev->subnet6.addr.family)
		vp_logfmt_adds(b, "subnet6", vp_prefix_format(&ev->subnet6, p));
	vp_logfmt_add(b, "from", ev->from, ev->from_len);
}
