/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf/load.h"
#include "core/config.h"
#include "plugin/keeper.h"
#include "plugin/routes.h"

enum {
	OP_HELLO = 'H', OP_OPEN = 'o', OP_RENAME = 'r', OP_UNLINK = 'u', OP_MKDIRS = 'm',
	OP_LSTAT = 's',
	/* Routes: flags is the interface's index, the first path the prefix
	 * ("10.8.1.5/32"; "" for a flush). */
	OP_ROUTE_ADD = 'A', OP_ROUTE_DEL = 'D', OP_ROUTE_FLUSH = 'F',
};

struct request {
	uint32_t op;
	int32_t flags;
	uint32_t mode;
	uint32_t len1, len2;		/* of the two paths that follow, NULs included */
	uint32_t seq;			/* echoed in the reply */
};

struct reply {
	int32_t ret;			/* 0, -errno; OP_OPEN: 0 and a descriptor */
	int32_t pid;			/* the keeper's */
	uint32_t seq;			/* the request's */
	struct stat st;			/* OP_LSTAT */
};

#define MAX_REQUEST (sizeof(struct request) + 2 * PATH_MAX)

/* How long the plugin waits for an answer (the keeper stopped, or stuck on
 * a filesystem): the request fails with ETIMEDOUT, and the next ones fail
 * at once, without waiting, until the late reply comes (then the keeper
 * serves again).  OpenVPN's one thread waits that long once a stall. */
#define KEEPER_TIMEOUT_MS 5000

/* The open(2) flags a request may carry; any other (O_PATH, O_TMPFILE,
 * O_NOATIME, O_DIRECT...) is refused. */
#define OPEN_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_NONBLOCK | \
		    O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_DIRECTORY | O_SYNC | O_DSYNC)

struct vp_keeper {
	int sock;
	pid_t pid;
	bool dead;			/* the keeper is gone (its end closed) */
	bool late;			/* a reply is owed to a request given up on */
	bool routes_refused;		/* the kernel refused this process a route change */
	pthread_mutex_t mu;		/* one request at a time */
	struct vp_fs fs;
	struct vp_route_ops routes;
	struct vp_keeper *next;		/* in handles */
};

/* The live handles: a keeper's socket is not closed under one (a second
 * plugin instance, for another vpnpool.conf, starts a keeper of its own). */
static pthread_mutex_t handles_mu = PTHREAD_MUTEX_INITIALIZER;
static struct vp_keeper *handles;

/* ---- the policy ----------------------------------------------------------- */

/* Whether a and b name the same path, trailing slashes aside. */
static bool same_path(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && !memcmp(a, b, la);
}

/* Whether path is a file directly in dir: "dir/name", name neither empty,
 * "." nor "..". */
static bool file_in(const char *path, const char *dir)
{
	const char *slash = strrchr(path, '/'), *name;
	char parent[PATH_MAX];
	size_t len;

	if (!dir || !slash)
		return false;
	name = slash + 1;
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	len = (size_t)(slash - path);
	if (len >= sizeof(parent))
		return false;
	memcpy(parent, path, len);
	parent[len] = '\0';
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	return same_path(len ? parent : "/", dir);
}

/* Whether dir is the directory the file at path lies in. */
static bool dir_of(const char *dir, const char *path)
{
	return path && file_in(path, dir);
}

/* Whether name is one of the store's files (core/store.c): the state
 * directory may be shared (/etc/openvpn), and OpenVPN's own files in it
 * (its config, scripts, ccd) must stay out of the plugin's reach. */
static bool store_name(const char *name)
{
	return !strcmp(name, "lock") || !strcmp(name, "server") || !strcmp(name, "server.tmp") ||
	       !strcmp(name, "leases.journal") || !strcmp(name, "leases.journal.tmp") ||
	       !strncmp(name, "leases.journal.corrupt-", 23);
}

/* Whether path is one of the store's files in the state directory. */
static bool state_file(const char *path, const char *state)
{
	return state && file_in(path, state) && store_name(strrchr(path, '/') + 1);
}

static bool is_tmp_of(const char *path, const char *file)
{
	size_t n;

	if (!file)
		return false;
	n = strlen(file);
	return !strncmp(path, file, n) && !strcmp(path + n, ".tmp");
}

static bool reading(int flags)
{
	return (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_CREAT | O_TRUNC));
}

bool vp_keeper_allows(const struct vp_config *c, const char *conf_path, const char *server_conf,
		      char op, const char *path, int flags)
{
	const char *state = c ? c->state_dir : NULL;
	const char *usage = c ? c->usage_log : NULL;
	const char *metrics = c ? c->metrics_file : NULL;

	switch (op) {
	case OP_OPEN:
		if (flags & ~OPEN_FLAGS)
			return false;
		if (reading(flags) && (same_path(path, conf_path) ||
				       (server_conf && *server_conf && same_path(path, server_conf))))
			return true;
		if (state_file(path, state))
			return true;
		if (state && same_path(path, state))
			return reading(flags) && (flags & O_DIRECTORY);
		if (usage && same_path(path, usage))
			return (flags & O_ACCMODE) == O_WRONLY && (flags & O_APPEND) &&
			       !(flags & O_TRUNC);
		if (metrics && is_tmp_of(path, metrics))
			return (flags & O_ACCMODE) == O_WRONLY;
		return false;
	case OP_RENAME:
	case OP_UNLINK:
		/* Both ends of a rename are checked, each on its own. */
		return state_file(path, state) || (metrics && is_tmp_of(path, metrics)) ||
		       (op == OP_RENAME && metrics && same_path(path, metrics));
	case OP_MKDIRS:
		return (state && same_path(path, state)) || dir_of(path, usage) ||
		       dir_of(path, metrics);
	case OP_LSTAT:
		return (state && (state_file(path, state) || same_path(path, state))) ||
		       (usage && same_path(path, usage)) ||
		       (metrics && (same_path(path, metrics) || is_tmp_of(path, metrics)));
	default:
		return false;
	}
}

/* Whether dst lies wholly inside the network net (net set). */
static bool inside(const struct vp_prefix *dst, const struct vp_prefix *net)
{
	struct vp_range r = vp_prefix_range(dst), n = vp_prefix_range(net);

	return net->addr.family && dst->addr.family == net->addr.family && vp_range_within(&r, &n);
}

/* A host address (/32, /128) of a reservation. */
static bool is_host(const struct vp_prefix *dst, const struct vp_addr *a)
{
	return dst->len == vp_family_bits(dst->addr.family) && vp_addr_eq(&dst->addr, a);
}

bool vp_keeper_allows_route(const struct vp_config *c, const struct vp_prefix *dst)
{
	if (!c || !dst->addr.family || dst->len > vp_family_bits(dst->addr.family))
		return false;
	for (size_t i = 0; i < c->n_pools; ++i)
		if (inside(dst, &c->pools[i].network) ||
		    (c->pools[i].has_network6 && inside(dst, &c->pools[i].network6)))
			return true;
	for (size_t i = 0; i < c->n_routers; ++i)
		if (inside(dst, &c->routers[i].network) ||
		    (c->routers[i].has_network6 && inside(dst, &c->routers[i].network6)))
			return true;
	for (size_t i = 0; i < c->n_statics; ++i) {
		const struct vp_static_config *sc = &c->statics[i];

		if ((sc->has_address && is_host(dst, &sc->address)) ||
		    (sc->has_address6 && is_host(dst, &sc->address6)) ||
		    (sc->has_subnet && inside(dst, &sc->subnet)) ||
		    (sc->has_subnet6 && inside(dst, &sc->subnet6)))
			return true;
	}
	return false;
}

/* ---- the keeper process ----------------------------------------------------- */

struct keeper_state {
	int sock;
	char *conf_path, *server_conf;
	struct vp_config config;
	bool loaded;
};

static void keeper_reply(int sock, const struct reply *r, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)r, .iov_len = sizeof(*r) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void keeper_reload(struct keeper_state *ks)
{
	char err[256];

	if (ks->loaded)
		vp_config_free(&ks->config);
	/* A file that does not load leaves only the two config files
	 * readable: the plugin loads it itself and says what is wrong. */
	ks->loaded = vp_conf_load(&ks->config, ks->conf_path, err, sizeof(err)) == 0;
}

/* A rename moves a file within the state directory, or the metrics file's
 * ".tmp" over it; never from one of the plugin's directories to another. */
static bool rename_allowed(const struct vp_config *c, const char *from, const char *to)
{
	if (!c)
		return false;
	if (state_file(from, c->state_dir) && state_file(to, c->state_dir))
		return true;
	return c->metrics_file && is_tmp_of(from, c->metrics_file) &&
	       same_path(to, c->metrics_file);
}

/* ---- paths, resolved one component at a time ---------------------------------- */

/* Whether only root can have made the entries of the directory at fd. */
static bool root_only(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/* One step from the directory at fd down into name (created when create):
 * an O_PATH descriptor.  A symlink is followed only when it lies in a
 * directory only root writes (an operator's /var/lib -> /srv/lib), never in
 * one the unprivileged user could have planted it in. */
static int step(int fd, const char *name, bool create, mode_t mode)
{
	struct stat st;
	int next = openat(fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (next < 0 && errno == ENOENT && create) {
		if (mkdirat(fd, name, mode) && errno != EEXIST)
			return -errno;
		next = openat(fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if (next < 0)
		return -errno;
	if (fstat(next, &st)) {
		int ret = -errno;

		close(next);
		return ret;
	}
	if (S_ISDIR(st.st_mode))
		return next;
	close(next);
	if (!S_ISLNK(st.st_mode))
		return -ENOTDIR;
	if (!root_only(fd))
		return -ELOOP;
	next = openat(fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return next < 0 ? -errno : next;
}

/* The directory at path, walked from "/" (or the keeper's working
 * directory, OpenVPN's at start, for a relative path) with step(). */
static int walk(const char *path, bool create, mode_t mode)
{
	char buf[PATH_MAX], *save = NULL;
	int fd;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	fd = open(*path == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (char *name = strtok_r(buf, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		int next;

		if (!strcmp(name, "."))
			continue;
		next = step(fd, name, create, mode);
		close(fd);
		if (next < 0)
			return next;
		fd = next;
	}
	return fd;
}

/* The directory path lies in (walked), and its last component in name. */
static int parent(const char *path, char name[NAME_MAX + 1])
{
	char dir[PATH_MAX];
	size_t len = strlen(path);
	const char *slash;
	int fd;

	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, len + 1);
	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = '\0';
	slash = strrchr(dir, '/');
	if (!slash || !slash[1]) {
		if (!slash && len <= NAME_MAX) {
			strcpy(name, dir);
			return walk(".", false, 0);
		}
		return -EINVAL;
	}
	if (strlen(slash + 1) > NAME_MAX)
		return -ENAMETOOLONG;
	strcpy(name, slash + 1);
	dir[slash == dir ? 1 : (size_t)(slash - dir)] = '\0';
	fd = walk(dir, false, 0);
	return fd;
}

/* A file the plugin reads or writes, never through a link in its last
 * component; a regular file with no other name (a hard link to a file of
 * root's), opened without blocking (a FIFO), truncated only once checked. */
static int open_file(const char *path, int flags, mode_t mode)
{
	char name[NAME_MAX + 1];
	struct stat st;
	int dir = parent(path, name), fd, ret;

	if (dir < 0)
		return dir;
	fd = openat(dir, name, (flags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
		    mode & 0666);
	ret = fd < 0 ? -errno : 0;
	close(dir);
	if (ret)
		return ret;
	if (fstat(fd, &st))
		ret = -errno;
	else if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		ret = -EPERM;
	else if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY && ftruncate(fd, 0))
		ret = -errno;
	else if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static int open_dir(const char *path)
{
	int dir = walk(path, false, 0), fd;

	if (dir < 0)
		return dir;
	fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(dir);
	return fd < 0 ? -errno : fd;
}

static int do_rename(const char *from, const char *to)
{
	char n1[NAME_MAX + 1], n2[NAME_MAX + 1];
	int d1 = parent(from, n1), d2, ret;

	if (d1 < 0)
		return d1;
	d2 = parent(to, n2);
	if (d2 < 0) {
		close(d1);
		return d2;
	}
	ret = renameat(d1, n1, d2, n2) ? -errno : 0;
	close(d1);
	close(d2);
	return ret;
}

static int do_unlink(const char *path)
{
	char name[NAME_MAX + 1];
	int dir = parent(path, name), ret;

	if (dir < 0)
		return dir;
	ret = unlinkat(dir, name, 0) ? -errno : 0;
	close(dir);
	return ret;
}

static int do_lstat(const char *path, struct stat *st)
{
	char name[NAME_MAX + 1];
	int dir = parent(path, name), ret;

	if (dir < 0)
		return dir;
	ret = fstatat(dir, name, st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	close(dir);
	return ret;
}

static int do_mkdirs(const char *path, mode_t mode)
{
	int fd = walk(path, true, mode & 0777);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static bool keep_foreign(void *ud, const struct vp_prefix *dst)
{
	return !vp_keeper_allows_route(ud, dst);
}

/* A route change: only through a tun device, only to a prefix inside the
 * config's networks; a flush removes only such routes of ours. */
static int keeper_route(const struct vp_config *c, uint32_t op, int ifindex, const char *text)
{
	char err[VP_ERRLEN];
	struct vp_prefix dst;
	int tun;

	if (!c)
		return -EPERM;
	if (op != OP_ROUTE_FLUSH &&
	    (!vp_prefix_parse(&dst, text, err) || !vp_keeper_allows_route(c, &dst)))
		return -EPERM;
	tun = vp_route_link_is_tun(ifindex);
	if (tun < 0)
		return tun;
	if (!tun)
		return -EPERM;
	if (op == OP_ROUTE_ADD)
		return vp_route_add(ifindex, &dst);
	if (op == OP_ROUTE_DEL)
		return vp_route_del(ifindex, &dst);
	return vp_route_flush(ifindex, keep_foreign, (void *)c);
}

static int keeper_do(struct keeper_state *ks, const struct request *rq, const char *p1,
		     const char *p2, struct reply *r)
{
	const struct vp_config *c = ks->loaded ? &ks->config : NULL;
	int flags = rq->flags, fd;

	if (rq->op == OP_HELLO) {
		if (!same_path(p1, ks->conf_path) || strcmp(p2, ks->server_conf))
			return -EPERM;
		keeper_reload(ks);
		return 0;
	}
	if (rq->op == OP_ROUTE_ADD || rq->op == OP_ROUTE_DEL || rq->op == OP_ROUTE_FLUSH)
		return keeper_route(c, rq->op, flags, p1);
	if (!vp_keeper_allows(c, ks->conf_path, ks->server_conf, (char)rq->op, p1, flags) ||
	    (rq->op == OP_RENAME && !rename_allowed(c, p1, p2)))
		return -EPERM;
	switch (rq->op) {
	case OP_OPEN:
		/* Only the config files may be symlinks (operators link them);
		 * a link in a directory the plugin writes is never followed,
		 * not even to read. */
		if (reading(flags) && (same_path(p1, ks->conf_path) ||
				       (*ks->server_conf && same_path(p1, ks->server_conf)))) {
			fd = open(p1, flags | O_CLOEXEC | O_NOCTTY);
			return fd < 0 ? -errno : fd;
		}
		if (c && same_path(p1, c->state_dir))
			return open_dir(p1);
		return open_file(p1, flags, (mode_t)rq->mode);
	case OP_RENAME:
		return do_rename(p1, p2);
	case OP_UNLINK:
		return do_unlink(p1);
	case OP_MKDIRS:
		return do_mkdirs(p1, (mode_t)rq->mode);
	case OP_LSTAT:
		return do_lstat(p1, &r->st);
	default:
		return -EINVAL;
	}
}

static void keeper_serve(struct keeper_state *ks)
{
	static char buf[MAX_REQUEST + 1];

	for (;;) {
		struct request rq = { 0 };
		struct reply r;
		ssize_t n = recv(ks->sock, buf, sizeof(buf), 0);
		const char *p1, *p2;
		int ret;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;		/* OpenVPN is gone */
		memset(&r, 0, sizeof(r));
		r.pid = (int32_t)getpid();
		memcpy(&rq, buf, (size_t)n < sizeof(rq) ? (size_t)n : sizeof(rq));
		r.seq = rq.seq;
		if ((size_t)n < sizeof(rq) || rq.len1 < 1 || rq.len2 < 1 ||
		    rq.len1 > PATH_MAX || rq.len2 > PATH_MAX ||
		    sizeof(rq) + rq.len1 + rq.len2 != (size_t)n ||
		    buf[sizeof(rq) + rq.len1 - 1] || buf[sizeof(rq) + rq.len1 + rq.len2 - 1]) {
			r.ret = -EINVAL;
			keeper_reply(ks->sock, &r, -1);
			continue;
		}
		p1 = buf + sizeof(rq);
		p2 = p1 + rq.len1;
		ret = keeper_do(ks, &rq, p1, p2, &r);
		if (rq.op == OP_OPEN && ret >= 0) {
			r.ret = 0;
			keeper_reply(ks->sock, &r, ret);
			close(ret);
		} else {
			r.ret = ret;
			keeper_reply(ks->sock, &r, -1);
		}
	}
}

/* Every descriptor from fd up closed. */
static void close_from(int fd)
{
#ifdef SYS_close_range
	if (!syscall(SYS_close_range, (unsigned)fd, ~0U, 0))
		return;
#endif
	for (long max = sysconf(_SC_OPEN_MAX); fd < (max > 0 ? max : 65536); ++fd)
		close(fd);
}

/* In the child: nothing of OpenVPN's but the socket, then serve. */
static void keeper_main(int sock, const char *conf_path, const char *server_conf)
{
	struct keeper_state ks = { .sock = 3 };
	sigset_t none;
	int null;

	/* The socket on 3 (it may be 0 to 2 if OpenVPN started without
	 * them), then nothing else: not the state directory's lock, not
	 * OpenVPN's sockets. */
	if (sock != 3) {
		if (dup2(sock, 3) < 0)
			_exit(1);
	}
	close_from(4);
	for (int fd = 0; fd < 3; ++fd)
		close(fd);
	null = open("/dev/null", O_RDWR);
	if (null == 0) {
		dup2(0, 1);
		dup2(0, 2);
	}
	setsid();		/* a terminal's ^C is for OpenVPN, which ends us */
	for (int sig = 1; sig < NSIG; ++sig)
		signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_NAME, "vpnpool-keeper", 0, 0, 0);
	/* The modes asked for, as OpenVPN's usual umask leaves them: the
	 * metrics file is read by another user (a node exporter). */
	umask(022);
	ks.conf_path = strdup(conf_path);
	ks.server_conf = strdup(server_conf ? server_conf : "");
	if (!ks.conf_path || !ks.server_conf)
		_exit(1);
	keeper_serve(&ks);
	_exit(0);
}

/* ---- the plugin's side ---------------------------------------------------------- */

/* Wait until the socket has a reply, up to deadline; -ETIMEDOUT. */
static int wait_reply(int sock, const struct timespec *deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		struct timespec now;
		long ms;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (deadline->tv_sec - now.tv_sec) * 1000 +
		     (deadline->tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* Its end closed: never ask it again. */
static void keeper_lost(struct vp_keeper *k)
{
	k->dead = true;
	shutdown(k->sock, SHUT_RDWR);
}

/* Receive one reply: 1 when it answers seq (*r, *fd filled), 0 when it is
 * a late one (dropped, its descriptor closed), -errno. */
static int take_reply(struct vp_keeper *k, uint32_t seq, struct reply *r, int *fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec in = { .iov_base = r, .iov_len = sizeof(*r) };
	struct msghdr msg = { .msg_iov = &in, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	int got = -1, ret;
	ssize_t n;

	do
		n = recvmsg(k->sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)) && got < 0)
			memcpy(&got, CMSG_DATA(cm), sizeof(int));
	if (n == 0 || n != (ssize_t)sizeof(*r) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		ret = -ECONNRESET;
	else
		ret = r->seq == seq;
	if (ret == 1 && fd)
		*fd = got;
	else if (got >= 0)
		close(got);
	if (ret < 0)
		keeper_lost(k);
	return ret;
}

/* One request and its reply; *fd receives a passed descriptor (or -1),
 * *pid the keeper's pid. */
static int ask(struct vp_keeper *k, int op, int flags, mode_t mode, const char *p1,
	       const char *p2, struct stat *st, int *fd, pid_t *pid)
{
	static uint32_t next_seq;
	static const char empty[] = "";
	struct request rq = { .op = (uint32_t)op, .flags = flags, .mode = mode };
	struct reply r;
	size_t l1 = strlen(p1) + 1, l2 = strlen(p2 ? p2 : empty) + 1;
	struct iovec out[3] = {
		{ .iov_base = &rq, .iov_len = sizeof(rq) },
		{ .iov_base = (void *)p1, .iov_len = l1 },
		{ .iov_base = (void *)(p2 ? p2 : empty), .iov_len = l2 },
	};
	struct msghdr smsg = { .msg_iov = out, .msg_iovlen = 3 };
	struct timespec deadline;
	ssize_t n;
	int ret;

	if (fd)
		*fd = -1;
	if (l1 > PATH_MAX || l2 > PATH_MAX)
		return -ENAMETOOLONG;
	rq.len1 = (uint32_t)l1;
	rq.len2 = (uint32_t)l2;
	/* Process-wide: a reply left from a handle of before a reload is
	 * never taken for one of this handle's. */
	rq.seq = __atomic_add_fetch(&next_seq, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&k->mu);
	if (k->dead) {
		ret = -ENOTCONN;
		goto out_unlock;
	}
	if (k->late) {
		/* Still busy with the request given up on: fail at once. */
		struct pollfd pfd = { .fd = k->sock, .events = POLLIN };

		if (poll(&pfd, 1, 0) <= 0) {
			ret = -ETIMEDOUT;
			goto out_unlock;
		}
		ret = take_reply(k, 0, &r, NULL);
		if (ret < 0)
			goto out_unlock;
		k->late = false;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += KEEPER_TIMEOUT_MS / 1000;
	/* One request at a time: its queue always has room; never block. */
	do
		n = sendmsg(k->sock, &smsg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (ret != -ETIMEDOUT)
			keeper_lost(k);
		goto out_unlock;
	}
	do {
		ret = wait_reply(k->sock, &deadline);
		if (ret == -ETIMEDOUT)
			k->late = true;
		if (ret)
			goto out_unlock;
		ret = take_reply(k, rq.seq, &r, fd);
	} while (ret == 0);
	if (ret < 0)
		goto out_unlock;
	ret = r.ret;
	if (ret && fd && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	if (st && ret == 0)
		*st = r.st;
	if (pid && ret == 0)
		*pid = (pid_t)r.pid;
out_unlock:
	pthread_mutex_unlock(&k->mu);
	return ret;
}

/* Whether ret says the keeper is gone: the direct calls, then (OpenVPN's
 * own privileges: right when it runs as root, refused when not).  Not when
 * it is late (ETIMEDOUT): it may still do what it was asked, and the two
 * would race (a ".tmp" truncated by the keeper after the plugin wrote it). */
static bool lost(int ret)
{
	return ret == -ENOTCONN || ret == -ECONNRESET || ret == -EPIPE;
}

static int k_open(void *ud, const char *path, int flags, mode_t mode)
{
	int fd, ret = ask(ud, OP_OPEN, flags, mode, path, NULL, NULL, &fd, NULL);

	if (lost(ret))
		return vp_fs_direct()->open(NULL, path, flags, mode);
	if (ret)
		return ret;
	return fd >= 0 ? fd : -EIO;
}

static int k_rename(void *ud, const char *from, const char *to)
{
	int ret = ask(ud, OP_RENAME, 0, 0, from, to, NULL, NULL, NULL);

	if (lost(ret))
		return vp_fs_direct()->rename(NULL, from, to);
	return ret;
}

static int k_unlink(void *ud, const char *path)
{
	int ret = ask(ud, OP_UNLINK, 0, 0, path, NULL, NULL, NULL, NULL);

	if (lost(ret))
		return vp_fs_direct()->unlink(NULL, path);
	return ret;
}

static int k_mkdirs(void *ud, const char *path, mode_t mode)
{
	int ret = ask(ud, OP_MKDIRS, 0, mode, path, NULL, NULL, NULL, NULL);

	if (lost(ret))
		return vp_fs_direct()->mkdirs(NULL, path, mode);
	return ret;
}

static int k_lstat(void *ud, const char *path, struct stat *st)
{
	int ret = ask(ud, OP_LSTAT, 0, 0, path, NULL, st, NULL, NULL);

	if (lost(ret))
		return vp_fs_direct()->lstat(NULL, path, st);
	return ret;
}

/* Routes: with the process's own rights while it has them (OpenVPN still
 * root), through the keeper once the kernel refuses them. */
static int k_route(struct vp_keeper *k, int op, int ifindex, const struct vp_prefix *dst)
{
	char text[VP_PREFIX_STRLEN] = "";
	int ret = -EPERM;

	/* Once refused (OpenVPN dropped its privileges), straight to the
	 * keeper: privileges dropped do not come back. */
	if (!k->routes_refused) {
		if (op == OP_ROUTE_ADD)
			ret = vp_route_add(ifindex, dst);
		else if (op == OP_ROUTE_DEL)
			ret = vp_route_del(ifindex, dst);
		else
			ret = vp_route_flush(ifindex, NULL, NULL);
		if (ret != -EPERM)
			return ret;
		k->routes_refused = true;
	}
	if (dst)
		vp_prefix_format(dst, text);
	ret = ask(k, op, ifindex, 0, text, NULL, NULL, NULL, NULL);
	return lost(ret) ? -EPERM : ret;
}

static int k_route_add(void *ud, int ifindex, const struct vp_prefix *dst)
{
	return k_route(ud, OP_ROUTE_ADD, ifindex, dst);
}

static int k_route_del(void *ud, int ifindex, const struct vp_prefix *dst)
{
	return k_route(ud, OP_ROUTE_DEL, ifindex, dst);
}

static int k_route_flush(void *ud, int ifindex)
{
	return k_route(ud, OP_ROUTE_FLUSH, ifindex, NULL);
}

static struct vp_keeper *keeper_new(int sock, pid_t pid)
{
	struct vp_keeper *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->sock = sock;
	k->pid = pid;
	pthread_mutex_init(&k->mu, NULL);
	k->fs = (struct vp_fs){ .open = k_open, .rename = k_rename, .unlink = k_unlink,
				.mkdirs = k_mkdirs, .lstat = k_lstat, .ud = k };
	k->routes = (struct vp_route_ops){ .add = k_route_add, .del = k_route_del,
					   .flush = k_route_flush, .ud = k };
	pthread_mutex_lock(&handles_mu);
	k->next = handles;
	handles = k;
	pthread_mutex_unlock(&handles_mu);
	return k;
}

static void keeper_free(struct vp_keeper *k)
{
	pthread_mutex_lock(&handles_mu);
	for (struct vp_keeper **p = &handles; *p; p = &(*p)->next)
		if (*p == k) {
			*p = k->next;
			break;
		}
	pthread_mutex_unlock(&handles_mu);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static bool in_use(int fd)
{
	bool used = false;

	pthread_mutex_lock(&handles_mu);
	for (struct vp_keeper *k = handles; k && !used; k = k->next)
		used = k->sock == fd;
	pthread_mutex_unlock(&handles_mu);
	return used;
}

/* The descriptor and pid the environment names, if the descriptor is a
 * socket pair's end made by root; -1. */
static int env_keeper(pid_t *pid)
{
	const char *env = getenv(VP_KEEPER_ENV);
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int type;
	socklen_t tlen = sizeof(type);
	long fd, p;
	char *end;

	if (!env)
		return -1;
	fd = strtol(env, &end, 10);
	if (*end != ':' || fd < 3 || fd > INT_MAX)
		return -1;
	p = strtol(end + 1, &end, 10);
	if (*end || p <= 0 || p > INT_MAX)
		return -1;
	if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &tlen) || type != SOCK_SEQPACKET ||
	    getsockopt((int)fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid != 0)
		return -1;
	*pid = (pid_t)p;
	return (int)fd;
}

/* The keeper named by the environment, if it serves conf_path. */
static struct vp_keeper *keeper_reuse(const char *conf_path, const char *server_conf)
{
	struct vp_keeper *k;
	pid_t pid = 0, said = 0;
	int fd = env_keeper(&pid);

	if (fd < 0)
		return NULL;
	k = keeper_new(fd, pid);
	if (!k)
		return NULL;
	if (ask(k, OP_HELLO, 0, 0, conf_path, server_conf ? server_conf : "", NULL, NULL, &said) ||
	    said != pid) {
		keeper_free(k);
		return NULL;
	}
	return k;
}

/* Forget the keeper the environment names: its process ends once no
 * descriptor of its socket is left. */
static void keeper_forget(void)
{
	pid_t pid;
	int fd = env_keeper(&pid);

	if (fd >= 0 && !in_use(fd))
		close(fd);
	unsetenv(VP_KEEPER_ENV);
}

/* The keeper is forked twice: its parent is init (or the service
 * manager's reaper), never OpenVPN, which neither waits for it nor is
 * left a zombie when it ends; OpenVPN waits only for the first child,
 * which ends at once. */
static int keeper_spawn(struct vp_keeper **out, const char *conf_path, const char *server_conf)
{
	char env[48];
	int sv[2], ret, status;
	pid_t pid, keeper = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	if (pid == 0) {
		pid_t grandchild;

		close(sv[0]);
		grandchild = fork();
		if (grandchild == 0)
			keeper_main(sv[1], conf_path, server_conf);
		_exit(grandchild < 0 ? 1 : 0);
	}
	close(sv[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*out = keeper_new(sv[0], 0);
	if (!*out) {
		close(sv[0]);
		return -ENOMEM;
	}
	ret = ask(*out, OP_HELLO, 0, 0, conf_path, server_conf ? server_conf : "", NULL, NULL,
		  &keeper);
	if (!ret && keeper <= 0)
		ret = -EPROTO;
	if (ret) {
		if (ret == -ECONNRESET)
			ret = -EAGAIN;	/* the second fork failed */
		close(sv[0]);
		keeper_free(*out);
		*out = NULL;
		return ret;
	}
	(*out)->pid = keeper;
	snprintf(env, sizeof(env), "%d:%ld", sv[0], (long)keeper);
	setenv(VP_KEEPER_ENV, env, 1);
	return 0;
}

int vp_keeper_get(struct vp_keeper **out, const char *conf_path, const char *server_conf,
		  bool *reused)
{
	*out = keeper_reuse(conf_path, server_conf);
	*reused = *out != NULL;
	if (*out)
		return 0;
	if (geteuid() != 0)
		return -EPERM;
	keeper_forget();
	return keeper_spawn(out, conf_path, server_conf);
}

const struct vp_fs *vp_keeper_fs(struct vp_keeper *k)
{
	return &k->fs;
}

const struct vp_route_ops *vp_keeper_routes(struct vp_keeper *k)
{
	return &k->routes;
}

pid_t vp_keeper_pid(const struct vp_keeper *k)
{
	return k->pid;
}

void vp_keeper_put(struct vp_keeper *k)
{
	pid_t pid;

	if (!k)
		return;
	/* A keeper the environment no longer names (superseded by another
	 * vpnpool.conf's) is never found again: let it end. */
	if (env_keeper(&pid) != k->sock)
		close(k->sock);
	keeper_free(k);
}
