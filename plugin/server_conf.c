/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/server_conf.h"

struct word {
	const char *s;
	size_t len;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool word_is(const struct word *w, const char *text)
{
	return w->len == strlen(text) && !memcmp(w->s, text, w->len);
}

/* The next word of [*at, end), bare or in quotes; false at the end of the
 * line or a comment. */
static bool next_word(const char **at, const char *end, struct word *w)
{
	const char *p = *at, *q;

	while (p < end && is_blank(*p))
		++p;
	*at = p;
	if (p == end || *p == '#' || *p == ';')
		return false;
	if (*p == '"' || *p == '\'') {
		q = memchr(p + 1, *p, (size_t)(end - p - 1));
		if (!q)
			return false;
		*w = (struct word){ p + 1, (size_t)(q - p - 1) };
		*at = q + 1;
		return true;
	}
	for (q = p; q < end && !is_blank(*q); ++q)
		;
	*w = (struct word){ p, (size_t)(q - p) };
	*at = q;
	return true;
}

static void word_copy(char *dst, size_t size, const struct word *w)
{
	size_t n = w->len < size - 1 ? w->len : size - 1;

	memcpy(dst, w->s, n);
	dst[n] = '\0';
}

/* One line [p, end): what it sets of out. */
static void line_parse(const char *p, const char *end, bool *in_block, struct vp_server_conf *out)
{
	struct word w, value, extra;

	if (!next_word(&p, end, &w))
		return;
	if (*in_block) {
		*in_block = !(w.len >= 2 && !memcmp(w.s, "</", 2));
		return;
	}
	if (w.len >= 1 && w.s[0] == '<') {
		*in_block = true;
		return;
	}
	if (w.len >= 2 && !memcmp(w.s, "--", 2)) {
		w.s += 2;
		w.len -= 2;
	}
	if (!next_word(&p, end, &value) || next_word(&p, end, &extra))
		return;
	if (word_is(&w, "topology")) {
		if (word_is(&value, "subnet"))
			out->topology = VP_TOPO_SUBNET;
		else if (word_is(&value, "net30"))
			out->topology = VP_TOPO_NET30;
		else if (word_is(&value, "p2p"))
			out->topology = VP_TOPO_P2P;
	} else if (word_is(&w, "user")) {
		word_copy(out->user, sizeof(out->user), &value);
	} else if (word_is(&w, "group")) {
		word_copy(out->group, sizeof(out->group), &value);
	} else if (word_is(&w, "chroot")) {
		word_copy(out->chroot, sizeof(out->chroot), &value);
	}
}

void vp_server_conf_parse(const char *text, size_t len, struct vp_server_conf *out)
{
	const char *end;
	bool in_block = false;

	memset(out, 0, sizeof(*out));
	out->topology = VP_TOPO_NET30;
	if (!text)
		return;
	end = text + len;
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))	/* a UTF-8 byte-order mark */
		text += 3;

	while (text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		const char *eol = nl ? nl : end;

		line_parse(text, eol, &in_block, out);
		text = nl ? nl + 1 : end;
	}
}

enum vp_topology vp_server_conf_topology(const char *text, size_t len)
{
	struct vp_server_conf sc;

	vp_server_conf_parse(text, len, &sc);
	return sc.topology;
}

/* Up to max bytes of fd into a new buffer (*out, *len).  0, -EFBIG (the
 * file is longer: its first max bytes), or -errno and nothing allocated. */
static int read_bounded(int fd, size_t max, char **out, size_t *len)
{
	size_t cap = 0, used = 0;
	char *buf = NULL;

	for (;;) {
		ssize_t n;

		if (used == cap) {
			size_t want = cap ? cap * 2 : 64 * 1024;
			char *grown;

			if (want > max + 1)
				want = max + 1;
			if (want == cap)
				break;	/* max + 1 bytes read: too long */
			grown = realloc(buf, want);
			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
			cap = want;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int ret = -errno;

			free(buf);
			return ret;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	*out = buf;
	*len = used > max ? max : used;
	return used > max ? -EFBIG : 0;
}

int vp_server_conf_read(const char *path, const struct vp_fs *fs, struct vp_server_conf *out)
{
	/* O_NONBLOCK: a FIFO must not hang OpenVPN's start. */
	int fd;
	struct stat st;
	size_t len = 0;
	char *text = NULL;
	int ret;

	fs = vp_fs_or_direct(fs);
	fd = fs->open(fs->ud, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out_close;
	}
	ret = read_bounded(fd, VP_SERVER_CONF_MAX, &text, &len);
	if (ret == 0 || ret == -EFBIG) {
		vp_server_conf_parse(text, len, out);
		free(text);
	}
out_close:
	close(fd);
	return ret;
}

int vp_server_conf_read_topology(const char *path, enum vp_topology *out)
{
	struct vp_server_conf sc;
	int ret = vp_server_conf_read(path, NULL, &sc);

	if (ret == 0 || ret == -EFBIG)
		*out = sc.topology;
	return ret;
}
