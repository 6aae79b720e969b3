/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/load.h"
#include "core/config.h"
#include "plugin/keeper.h"

enum {
	OP_HELLO = 'H', OP_OPEN = 'o', OP_RENAME = 'r', OP_UNLINK = 'u', OP_MKDIRS = 'm',
	OP_LSTAT = 's',
};

struct request {
	uint32_t op;
	int32_t flags;
	uint32_t mode;
	uint32_t len1, len2;		/* of the two paths that follow, NULs included */
};

struct reply {
	int32_t ret;			/* 0, -errno; OP_OPEN: 0 and a descriptor */
	struct stat st;			/* OP_LSTAT */
};

#define MAX_REQUEST (sizeof(struct request) + 2 * PATH_MAX)

struct vp_keeper {
	int sock;
	pid_t pid;
	bool dead;			/* the keeper stopped answering */
	pthread_mutex_t mu;		/* one request at a time */
	struct vp_fs fs;
};

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
		if (reading(flags) && (same_path(path, conf_path) ||
				       (server_conf && *server_conf && same_path(path, server_conf))))
			return true;
		if (state && file_in(path, state))
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
		return (state && file_in(path, state)) || (metrics && is_tmp_of(path, metrics)) ||
		       (op == OP_RENAME && metrics && same_path(path, metrics));
	case OP_MKDIRS:
		return (state && same_path(path, state)) || dir_of(path, usage) ||
		       dir_of(path, metrics);
	case OP_LSTAT:
		return (state && (file_in(path, state) || same_path(path, state))) ||
		       (usage && same_path(path, usage)) ||
		       (metrics && (same_path(path, metrics) || is_tmp_of(path, metrics)));
	default:
		return false;
	}
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
	if (!vp_keeper_allows(c, ks->conf_path, ks->server_conf, (char)rq->op, p1, flags) ||
	    (rq->op == OP_RENAME &&
	     !vp_keeper_allows(c, ks->conf_path, ks->server_conf, OP_RENAME, p2, 0)))
		return -EPERM;
	switch (rq->op) {
	case OP_OPEN:
		/* Only the config files may be symlinks (operators link them);
		 * a link in a directory the plugin writes is never followed,
		 * not even to read. */
		if (!same_path(p1, ks->conf_path) && strcmp(p1, ks->server_conf))
			flags |= O_NOFOLLOW;
		fd = open(p1, flags | O_CLOEXEC | O_NOCTTY, (mode_t)rq->mode);
		return fd < 0 ? -errno : fd;
	case OP_RENAME:
		return rename(p1, p2) ? -errno : 0;
	case OP_UNLINK:
		return unlink(p1) ? -errno : 0;
	case OP_MKDIRS:
		return vp_fs_mkdirs_direct(p1, (mode_t)rq->mode);
	case OP_LSTAT:
		return lstat(p1, &r->st) ? -errno : 0;
	default:
		return -EINVAL;
	}
}

static void keeper_serve(struct keeper_state *ks)
{
	static char buf[MAX_REQUEST + 1];

	for (;;) {
		struct request rq;
		struct reply r;
		ssize_t n = recv(ks->sock, buf, MAX_REQUEST, 0);
		const char *p1, *p2;
		int ret;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;		/* OpenVPN is gone */
		memset(&r, 0, sizeof(r));
		memcpy(&rq, buf, (size_t)n < sizeof(rq) ? (size_t)n : sizeof(rq));
		p1 = buf + sizeof(rq);
		p2 = p1 + rq.len1;
		if ((size_t)n < sizeof(rq) || rq.len1 < 1 || rq.len2 < 1 ||
		    rq.len1 > PATH_MAX || rq.len2 > PATH_MAX ||
		    sizeof(rq) + rq.len1 + rq.len2 != (size_t)n || p1[rq.len1 - 1] ||
		    p2[rq.len2 - 1]) {
			r.ret = -EINVAL;
			keeper_reply(ks->sock, &r, -1);
			continue;
		}
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

/* In the child: nothing of OpenVPN's but the socket, then serve. */
static void keeper_main(int sock, const char *conf_path, const char *server_conf)
{
	struct keeper_state ks = { .sock = sock };
	sigset_t none;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	for (int fd = 3; fd < 65536; ++fd)
		if (fd != sock)
			close(fd);
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
	umask(027);
	ks.conf_path = strdup(conf_path);
	ks.server_conf = strdup(server_conf ? server_conf : "");
	if (!ks.conf_path || !ks.server_conf)
		_exit(1);
	keeper_serve(&ks);
	_exit(0);
}

/* ---- the plugin's side ---------------------------------------------------------- */

/* One request and its reply; *fd receives a passed descriptor (or -1). */
static int ask(struct vp_keeper *k, int op, int flags, mode_t mode, const char *p1,
	       const char *p2, struct stat *st, int *fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	static const char empty[] = "";
	struct request rq = { .op = (uint32_t)op, .flags = flags, .mode = mode };
	struct reply r;
	size_t l1 = strlen(p1) + 1, l2 = strlen(p2 ? p2 : empty) + 1;
	struct iovec out[3] = {
		{ .iov_base = &rq, .iov_len = sizeof(rq) },
		{ .iov_base = (void *)p1, .iov_len = l1 },
		{ .iov_base = (void *)(p2 ? p2 : empty), .iov_len = l2 },
	};
	struct iovec in = { .iov_base = &r, .iov_len = sizeof(r) };
	struct msghdr smsg = { .msg_iov = out, .msg_iovlen = 3 };
	struct msghdr rmsg = { .msg_iov = &in, .msg_iovlen = 1, .msg_control = ctl.buf,
			       .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;
	int ret;

	if (fd)
		*fd = -1;
	if (l1 > PATH_MAX || l2 > PATH_MAX)
		return -ENAMETOOLONG;
	rq.len1 = (uint32_t)l1;
	rq.len2 = (uint32_t)l2;
	pthread_mutex_lock(&k->mu);
	if (k->dead) {
		ret = -ENOTCONN;
		goto out_unlock;
	}
	do
		n = sendmsg(k->sock, &smsg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		ret = -errno;
		k->dead = true;
		goto out_unlock;
	}
	do
		n = recvmsg(k->sock, &rmsg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(r)) {
		ret = n < 0 ? -errno : -ECONNRESET;
		k->dead = true;
		goto out_unlock;
	}
	ret = r.ret;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&rmsg); cm; cm = CMSG_NXTHDR(&rmsg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int got;

			memcpy(&got, CMSG_DATA(cm), sizeof(int));
			if (fd && *fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	if (st && ret == 0)
		*st = r.st;
out_unlock:
	pthread_mutex_unlock(&k->mu);
	return ret;
}

static int k_open(void *ud, const char *path, int flags, mode_t mode)
{
	int fd, ret = ask(ud, OP_OPEN, flags, mode, path, NULL, NULL, &fd);

	if (ret == -ENOTCONN || ret == -ECONNRESET || ret == -EPIPE)
		return vp_fs_direct()->open(NULL, path, flags, mode);
	if (ret)
		return ret;
	return fd >= 0 ? fd : -EIO;
}

static int k_rename(void *ud, const char *from, const char *to)
{
	int ret = ask(ud, OP_RENAME, 0, 0, from, to, NULL, NULL);

	if (ret == -ENOTCONN || ret == -ECONNRESET || ret == -EPIPE)
		return vp_fs_direct()->rename(NULL, from, to);
	return ret;
}

static int k_unlink(void *ud, const char *path)
{
	int ret = ask(ud, OP_UNLINK, 0, 0, path, NULL, NULL, NULL);

	if (ret == -ENOTCONN || ret == -ECONNRESET || ret == -EPIPE)
		return vp_fs_direct()->unlink(NULL, path);
	return ret;
}

static int k_mkdirs(void *ud, const char *path, mode_t mode)
{
	int ret = ask(ud, OP_MKDIRS, 0, mode, path, NULL, NULL, NULL);

	if (ret == -ENOTCONN || ret == -ECONNRESET || ret == -EPIPE)
		return vp_fs_direct()->mkdirs(NULL, path, mode);
	return ret;
}

static int k_lstat(void *ud, const char *path, struct stat *st)
{
	int ret = ask(ud, OP_LSTAT, 0, 0, path, NULL, st, NULL);

	if (ret == -ENOTCONN || ret == -ECONNRESET || ret == -EPIPE)
		return vp_fs_direct()->lstat(NULL, path, st);
	return ret;
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
	return k;
}

static void keeper_free(struct vp_keeper *k)
{
	pthread_mutex_destroy(&k->mu);
	free(k);
}

/* The keeper named by the environment, if it serves conf_path. */
static struct vp_keeper *keeper_reuse(const char *conf_path, const char *server_conf)
{
	const char *env = getenv(VP_KEEPER_ENV);
	struct vp_keeper *k;
	struct stat st;
	long fd, pid;
	char *end;

	if (!env)
		return NULL;
	fd = strtol(env, &end, 10);
	if (*end != ':' || fd < 3 || fd > INT_MAX)
		return NULL;
	pid = strtol(end + 1, &end, 10);
	if (*end || pid <= 0 || fstat((int)fd, &st) || !S_ISSOCK(st.st_mode))
		return NULL;
	k = keeper_new((int)fd, (pid_t)pid);
	if (!k)
		return NULL;
	if (ask(k, OP_HELLO, 0, 0, conf_path, server_conf ? server_conf : "", NULL, NULL)) {
		keeper_free(k);
		return NULL;
	}
	return k;
}

/* Forget the keeper the environment names: its process ends once no
 * descriptor of its socket is left. */
static void keeper_forget(void)
{
	const char *env = getenv(VP_KEEPER_ENV);
	long fd;
	char *end;
	struct stat st;

	if (!env)
		return;
	fd = strtol(env, &end, 10);
	if (*end == ':' && fd >= 3 && fd <= INT_MAX && !fstat((int)fd, &st) && S_ISSOCK(st.st_mode))
		close((int)fd);
	unsetenv(VP_KEEPER_ENV);
}

static int keeper_spawn(struct vp_keeper **out, const char *conf_path, const char *server_conf)
{
	char env[48];
	int sv[2], ret;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	if (pid == 0)
		keeper_main(sv[1], conf_path, server_conf);
	close(sv[1]);
	*out = keeper_new(sv[0], pid);
	if (!*out) {
		close(sv[0]);
		return -ENOMEM;
	}
	ret = ask(*out, OP_HELLO, 0, 0, conf_path, server_conf ? server_conf : "", NULL, NULL);
	if (ret) {
		close(sv[0]);
		keeper_free(*out);
		*out = NULL;
		return ret;
	}
	snprintf(env, sizeof(env), "%d:%ld", sv[0], (long)pid);
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

pid_t vp_keeper_pid(const struct vp_keeper *k)
{
	return k->pid;
}

void vp_keeper_put(struct vp_keeper *k)
{
	if (k)
		keeper_free(k);
}
