/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plugin/usage.h"

struct vp_usage {
	int fd;
	dev_t dev;
	ino_t ino;
	int64_t checked;
	char *path;
	struct vp_strbuf line;
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

void vp_usage_close(struct vp_usage *u)
{
	if (!u)
		return;
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

int vp_usage_write(struct vp_usage *u, int64_t now, const char *event,
		   const struct vp_strbuf *fields)
{
	char when[32];
	size_t done = 0;
	off_t start;
	int ret = 0;

	if (!u)
		return 0;
	usage_check_rotation(u, now);
	vp_usage_time(now, when, sizeof(when));
	vp_strbuf_reset(&u->line);
	vp_logfmt_adds(&u->line, "time", when);
	vp_logfmt_adds(&u->line, "event", event);
	if (fields->len) {
		vp_strbuf_add(&u->line, " ", 1);
		vp_strbuf_add(&u->line, fields->s, fields->len);
	}
	vp_strbuf_add(&u->line, "\n", 1);
	if (u->line.oom)
		return -ENOMEM;
	/* A full disk takes part of a line (the file's last page has room for
	 * it) and fails the rest: cut such a part off again, or the next line
	 * would be glued to it.  We are the only writer (the state lock). */
	start = lseek(u->fd, 0, SEEK_END);
	while (done < u->line.len) {
		ssize_t n = write(u->fd, u->line.s + done, u->line.len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	if (ret && done && start >= 0 && ftruncate(u->fd, start))
		ret = -errno;
	return ret;
}
