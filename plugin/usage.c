/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plugin/usage.h"

#define BATCH_NS (50 * 1000 * 1000)	/* a busy writer gathers lines this long */
#define HIGH_WATER (1 << 20)		/* past this many bytes pending: wake it now */
#define MAX_PENDING (64 << 20)		/* past this: the caller writes itself */

struct vp_usage {
	int fd;				/* owned by the writer thread once it runs */
	dev_t dev;
	ino_t ino;
	int64_t checked;
	char *path;
	struct vp_strbuf line;		/* the line being formatted (caller's) */
	int64_t when_t;			/* the second "when" shows */
	char when[32];

	/* Background writing (vp_usage_start_writer). */
	bool running;			/* the thread exists */
	pthread_t thread;
	pthread_mutex_t mu;		/* pending, idle, stopping, error */
	pthread_cond_t cv;
	pthread_mutex_t io;		/* fd and rotation, while the thread runs */
	struct vp_strbuf pending;	/* whole lines not yet written */
	bool idle;			/* the thread waits for a first line */
	bool stopping;
	int error;			/* of a background write, not yet returned */
};

static int usage_reopen(struct vp_usage *u)
{
	struct stat st;
	int fd = open(u->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (u->fd >= 0)
		close(u->fd);
	u->fd = fd;
	u->dev = st.st_dev;
	u->ino = st.st_ino;
	return 0;
}

static void mkdir_parent(const char *path)
{
	char *dir = strdup(path), *slash;

	if (!dir)
		return;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0750);
	}
	free(dir);
}

int vp_usage_open(struct vp_usage **out, const char *path)
{
	struct vp_usage *u = calloc(1, sizeof(*u));
	int ret;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->fd = -1;
	pthread_mutex_init(&u->mu, NULL);
	pthread_mutex_init(&u->io, NULL);
	pthread_cond_init(&u->cv, NULL);
	u->path = strdup(path);
	if (!u->path) {
		free(u);
		return -ENOMEM;
	}
	mkdir_parent(path);
	ret = usage_reopen(u);
	if (ret) {
		vp_usage_close(u);
		return ret;
	}
	*out = u;
	return 0;
}

static int write_lines(struct vp_usage *u, const char *s, size_t len);

void vp_usage_close(struct vp_usage *u)
{
	if (!u)
		return;
	if (u->running) {
		pthread_mutex_lock(&u->mu);
		u->stopping = true;
		pthread_cond_signal(&u->cv);
		pthread_mutex_unlock(&u->mu);
		pthread_join(u->thread, NULL);
		if (u->pending.len)
			(void)write_lines(u, u->pending.s, u->pending.len);
	}
	pthread_mutex_destroy(&u->mu);
	pthread_mutex_destroy(&u->io);
	pthread_cond_destroy(&u->cv);
	vp_strbuf_free(&u->pending);
	if (u->fd >= 0)
		close(u->fd);
	vp_strbuf_free(&u->line);
	free(u->path);
	free(u);
}

void vp_usage_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}

/* Reopen when logrotate moved the file away; checked once a second. */
static void usage_check_rotation(struct vp_usage *u, int64_t now)
{
	struct stat st;

	if (now == u->checked)
		return;
	u->checked = now;
	if (stat(u->path, &st) || st.st_dev != u->dev || st.st_ino != u->ino)
		usage_reopen(u);
}

/* Append whole lines with as few write(2)s as the kernel allows.  A full
 * disk takes the part of a line that fits the file's last page and fails the
 * rest: such a part is cut off again, or the next line would be glued to it
 * (the plugin is the log's only writer: the state lock).  Lines after the
 * failure are lost; the error is returned. */
static int write_lines(struct vp_usage *u, const char *s, size_t len)
{
	size_t done = 0, whole = 0;	/* bytes written; of them, whole lines */
	off_t start;

	usage_check_rotation(u, (int64_t)time(NULL));
	start = lseek(u->fd, 0, SEEK_END);
	while (done < len) {
		ssize_t n = write(u->fd, s + done, len - done);
		const char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;

			if (done > whole && start >= 0 && ftruncate(u->fd, start + (off_t)whole))
				err = -errno;
			return err;
		}
		done += (size_t)n;
		nl = memrchr(s + whole, '\n', done - whole);
		if (nl)
			whole = (size_t)(nl + 1 - s);
	}
	return 0;
}

static void add_ns(struct timespec *t, long ns)
{
	t->tv_nsec += ns;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/*
 * The writer: sleeps until a first line arrives (the caller wakes it: one
 * futex call on a quiet server), writes what is pending, then gathers lines
 * for BATCH_NS before the next write, so that a busy server's connects never
 * make a system call for the usage log.
 */
static void *writer_main(void *arg)
{
	struct vp_usage *u = arg;
	struct vp_strbuf batch = { 0 };

	pthread_mutex_lock(&u->mu);
	for (;;) {
		struct vp_strbuf swap;
		struct timespec until;
		int err;

		while (!u->pending.len && !u->stopping) {
			u->idle = true;
			pthread_cond_wait(&u->cv, &u->mu);
		}
		u->idle = false;
		if (u->stopping)
			break;
		swap = u->pending;
		u->pending = batch;
		batch = swap;
		pthread_mutex_unlock(&u->mu);

		pthread_mutex_lock(&u->io);
		err = write_lines(u, batch.s, batch.len);
		pthread_mutex_unlock(&u->io);
		vp_strbuf_reset(&batch);

		pthread_mutex_lock(&u->mu);
		if (err && !u->error)
			u->error = err;
		clock_gettime(CLOCK_REALTIME, &until);
		add_ns(&until, BATCH_NS);
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
	ret = pthread_create(&u->thread, NULL, writer_main, u);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return -ret;
	u->running = true;
	return 0;
}

int vp_usage_write(struct vp_usage *u, int64_t now, const char *event,
		   const struct vp_strbuf *fields)
{
	int ret;

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
	if (!u->running)
		return write_lines(u, u->line.s, u->line.len);

	pthread_mutex_lock(&u->mu);
	if (u->pending.len + u->line.len > MAX_PENDING) {
		/* The disk cannot keep up: write what is pending and this line
		 * ourselves, in order, after the batch being written. */
		struct vp_strbuf mine = u->pending;

		u->pending = (struct vp_strbuf){ 0 };
		pthread_mutex_unlock(&u->mu);
		vp_strbuf_add(&mine, u->line.s, u->line.len);
		pthread_mutex_lock(&u->io);
		ret = mine.oom ? -ENOMEM : write_lines(u, mine.s, mine.len);
		pthread_mutex_unlock(&u->io);
		vp_strbuf_free(&mine);
		return ret;
	}
	vp_strbuf_add(&u->pending, u->line.s, u->line.len);
	ret = u->pending.oom ? -ENOMEM : u->error;
	if (u->pending.oom)
		u->pending.oom = false;
	u->error = 0;
	if (u->idle || u->pending.len >= HIGH_WATER) {
		u->idle = false;
		pthread_cond_signal(&u->cv);
	}
	pthread_mutex_unlock(&u->mu);
	return ret;
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
