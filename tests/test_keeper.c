/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The keeper (plugin/keeper.h): which paths it serves, and that a process
 * that dropped its privileges still opens, renames and creates the plugin's
 * files in a root-only directory through it, and nothing else.  The
 * round-trip cases need root (they are skipped otherwise, with the reason).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf/load.h"
#include "plugin/keeper.h"
#include "testlib.h"

static struct vp_config *load_text(const char *text)
{
	static struct vp_config c;
	char err[512];

	vp_config_free(&c);
	if (vp_conf_load_buf(&c, text, "test.conf", err, sizeof(err)))
		fail_msg("config: %s", err);
	return &c;
}

static const char conf_text[] =
	"state-dir = \"/var/lib/vpnpool\"\n"
	"usage-log = \"/var/log/openvpn/usage.log\"\n"
	"metrics-file = \"/var/lib/node/vpnpool.prom\"\n"
	"pool \"p\" {\n network = \"10.8.0.0/24\"\n}\n";

#define ALLOWS(op, path, flags) \
	vp_keeper_allows(c, "/etc/openvpn/vpnpool.conf", "/etc/openvpn/server.conf", op, path, flags)

static void allows__the_state_dir_files__any_open_rename_unlink(void **state)
{
	const struct vp_config *c = load_text(conf_text);

	(void)state;
	assert_true(ALLOWS('o', "/var/lib/vpnpool/leases.journal", O_RDWR | O_CREAT | O_APPEND));
	assert_true(ALLOWS('o', "/var/lib/vpnpool/leases.journal.tmp", O_WRONLY | O_CREAT | O_TRUNC));
	assert_true(ALLOWS('r', "/var/lib/vpnpool/leases.journal.tmp", 0));
	assert_true(ALLOWS('u', "/var/lib/vpnpool/server.tmp", 0));
	assert_true(ALLOWS('m', "/var/lib/vpnpool", 0));
	assert_true(ALLOWS('m', "/var/lib/vpnpool/", 0));
	assert_true(ALLOWS('o', "/var/lib/vpnpool", O_RDONLY | O_DIRECTORY));
	assert_true(ALLOWS('s', "/var/lib/vpnpool/lock", 0));
}

static void allows__paths_outside__never(void **state)
{
	const struct vp_config *c = load_text(conf_text);

	(void)state;
	assert_false(ALLOWS('o', "/etc/shadow", O_RDONLY));
	assert_false(ALLOWS('o', "/var/lib/vpnpool/../../../etc/passwd", O_WRONLY));
	assert_false(ALLOWS('o', "/var/lib/vpnpool/..", O_RDONLY | O_DIRECTORY));
	assert_false(ALLOWS('o', "/var/lib/vpnpool/sub/file", O_WRONLY | O_CREAT));
	/* Only the store's own files in the state dir: it may be shared. */
	assert_false(ALLOWS('o', "/var/lib/vpnpool/server.conf", O_WRONLY | O_CREAT));
	assert_false(ALLOWS('o', "/var/lib/vpnpool/vpnpool.conf", O_RDONLY));
	assert_false(ALLOWS('r', "/var/lib/vpnpool/up.sh", 0));
	assert_false(ALLOWS('u', "/var/lib/vpnpool/ccd", 0));
	assert_false(ALLOWS('s', "/var/lib/vpnpool/leases", 0));
	assert_true(ALLOWS('o', "/var/lib/vpnpool/server", O_RDONLY));
	assert_true(ALLOWS('r', "/var/lib/vpnpool/leases.journal.corrupt-1700000000-2", 0));
	assert_false(ALLOWS('o', "/var/lib/vpnpoolx/file", O_WRONLY | O_CREAT));
	assert_false(ALLOWS('o', "/var/lib", O_RDONLY | O_DIRECTORY));
	assert_false(ALLOWS('o', "/var/lib/vpnpool", O_WRONLY));
	assert_false(ALLOWS('r', "/etc/passwd", 0));
	assert_false(ALLOWS('u', "/var/log/openvpn/usage.log", 0));
	assert_false(ALLOWS('m', "/etc/cron.d", 0));
	assert_false(ALLOWS('s', "/root", 0));
	assert_false(ALLOWS('x', "/var/lib/vpnpool/lock", 0));
}

static void allows__open_flags_beyond_reading_and_writing__never(void **state)
{
	const struct vp_config *c = load_text(conf_text);

	(void)state;
	assert_true(ALLOWS('o', "/var/lib/vpnpool/server", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW));
	assert_false(ALLOWS('o', "/var/lib/vpnpool/server", O_RDONLY | O_PATH));
	assert_false(ALLOWS('o', "/var/lib/vpnpool", O_RDWR | O_TMPFILE));
	assert_false(ALLOWS('o', "/var/lib/vpnpool/server", O_RDONLY | O_NOATIME));
	assert_false(ALLOWS('o', "/var/lib/vpnpool/server", O_WRONLY | O_DIRECT));
	assert_false(ALLOWS('o', "/var/lib/vpnpool/server", O_WRONLY | O_ASYNC));
}

static void allows__usage_log__append_only(void **state)
{
	const struct vp_config *c = load_text(conf_text);

	(void)state;
	assert_true(ALLOWS('o', "/var/log/openvpn/usage.log", O_WRONLY | O_APPEND | O_CREAT));
	assert_false(ALLOWS('o', "/var/log/openvpn/usage.log", O_WRONLY | O_TRUNC | O_APPEND));
	assert_false(ALLOWS('o', "/var/log/openvpn/usage.log", O_WRONLY));
	assert_false(ALLOWS('o', "/var/log/openvpn/usage.log", O_RDWR | O_APPEND));
	assert_false(ALLOWS('o', "/var/log/openvpn/usage.log.1", O_WRONLY | O_APPEND));
	assert_true(ALLOWS('m', "/var/log/openvpn", 0));
	assert_true(ALLOWS('s', "/var/log/openvpn/usage.log", 0));
}

static void allows__metrics__its_tmp_written_and_renamed_over_it(void **state)
{
	const struct vp_config *c = load_text(conf_text);

	(void)state;
	assert_true(ALLOWS('o', "/var/lib/node/vpnpool.prom.tmp", O_WRONLY | O_CREAT | O_TRUNC));
	assert_true(ALLOWS('r', "/var/lib/node/vpnpool.prom.tmp", 0));
	assert_true(ALLOWS('r', "/var/lib/node/vpnpool.prom", 0));
	assert_true(ALLOWS('u', "/var/lib/node/vpnpool.prom.tmp", 0));
	assert_false(ALLOWS('o', "/var/lib/node/vpnpool.prom", O_WRONLY | O_TRUNC));
	assert_false(ALLOWS('o', "/var/lib/node/other.prom", O_WRONLY | O_CREAT));
	assert_false(ALLOWS('u', "/var/lib/node/vpnpool.prom", 0));
}

static void allows__the_config_files__read_only(void **state)
{
	const struct vp_config *c = load_text(conf_text);

	(void)state;
	assert_true(ALLOWS('o', "/etc/openvpn/vpnpool.conf", O_RDONLY));
	assert_true(ALLOWS('o', "/etc/openvpn/server.conf", O_RDONLY | O_NONBLOCK));
	assert_false(ALLOWS('o', "/etc/openvpn/vpnpool.conf", O_WRONLY));
	assert_false(ALLOWS('o', "/etc/openvpn/server.conf", O_RDWR));
	/* A config that did not load: the two config files, nothing else. */
	assert_true(vp_keeper_allows(NULL, "/etc/v.conf", "", 'o', "/etc/v.conf", O_RDONLY));
	assert_false(ALLOWS('o', "/etc/openvpn/vpnpool.conf", O_PATH));
	assert_false(vp_keeper_allows(NULL, "/etc/v.conf", "", 'o', "/var/lib/vpnpool/lock",
				      O_RDWR));
}

static const char route_conf[] =
	"state-dir = \"/var/lib/vpnpool\"\n"
	"pool \"p\" {\n network = \"10.8.0.0/16\"\n network6 = \"fd00:8::/64\"\n}\n"
	"router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n"
	" network6 = \"fd00:9::/48\"\n prefix6 = 64\n}\n"
	"client \"alice\" {\n address = \"10.8.0.50\"\n subnet = \"10.9.77.0/24\"\n}\n";

static bool allows_route(const struct vp_config *c, const char *prefix)
{
	struct vp_prefix p = tl_prefix(prefix);

	return vp_keeper_allows_route(c, &p);
}

static void allows_route__inside_the_configured_networks_only(void **state)
{
	const struct vp_config *c = load_text(route_conf);

	(void)state;
	assert_true(allows_route(c, "10.8.1.5/32"));
	assert_true(allows_route(c, "10.8.0.50/32"));
	assert_true(allows_route(c, "fd00:8::1:5/128"));
	assert_true(allows_route(c, "10.9.77.0/24"));
	assert_true(allows_route(c, "fd00:9:0:77::/64"));
	assert_true(allows_route(c, "10.9.0.0/16"));
	/* Wider than a network, beside one, or elsewhere: never. */
	assert_false(allows_route(c, "10.8.0.0/15"));
	assert_false(allows_route(c, "10.0.0.0/8"));
	assert_false(allows_route(c, "0.0.0.0/0"));
	assert_false(allows_route(c, "::/0"));
	assert_false(allows_route(c, "fd00:8::/63"));
	assert_false(allows_route(c, "10.10.0.1/32"));
	assert_false(allows_route(c, "192.0.2.1/32"));
	assert_false(allows_route(c, "fd00:a::1/128"));
	assert_false(vp_keeper_allows_route(NULL, &(struct vp_prefix){ .len = 32 }));
}

static void allows_route__a_small_pool__not_the_addresses_beside_it(void **state)
{
	const struct vp_config *c = load_text(
		"state-dir = \"/var/lib/vpnpool\"\n"
		"pool \"p\" {\n network = \"10.8.0.0/24\"\n}\n"
		"router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n}\n");

	(void)state;
	assert_true(allows_route(c, "10.9.200.0/25"));
	assert_false(allows_route(c, "10.10.0.0/24"));
	assert_true(allows_route(c, "10.8.0.9/32"));
	assert_false(allows_route(c, "10.8.1.9/32"));
	assert_false(allows_route(c, "10.8.0.0/23"));
}

/* ---- a real keeper across a privilege drop ----------------------------------- */

static bool can_drop(void)
{
	return geteuid() == 0 && getpwnam("nobody");
}

static char *dir;
static char conf_path[512], state_dir[512], journal[600], target[600];

static void setup_dirs(void)
{
	FILE *f;

	dir = tl_tmpdir();
	chmod(dir, 0755);	/* nobody may pass, not write */
	snprintf(conf_path, sizeof(conf_path), "%s/vpnpool.conf", dir);
	snprintf(state_dir, sizeof(state_dir), "%s/var/lib/vpnpool", dir);
	snprintf(journal, sizeof(journal), "%s/leases.journal", state_dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	f = fopen(conf_path, "w");
	assert_non_null(f);
	fprintf(f, "state-dir = \"%s\"\nusage-log = \"\"\npool \"p\" {\n network = \"10.8.0.0/24\"\n}\n",
		state_dir);
	fclose(f);
}

/* What the child found, one bit a check. */
enum {
	R_OPEN_AS_NOBODY = 1, R_DIRECT_REFUSED = 2, R_OUTSIDE_REFUSED = 4, R_RENAME = 8,
	R_SYMLINK_REFUSED = 16, R_REUSED = 32, R_CONFIG_READ = 64, R_READ_LINK_REFUSED = 128,
};

static int child_after_drop(void)
{
	struct vp_keeper *k, *again;
	const struct vp_fs *fs;
	struct passwd *pw = getpwnam("nobody");
	char tmp[700], buf[64];
	bool reused;
	int fd, result = 0;

	if (vp_keeper_get(&k, conf_path, NULL, &reused) || reused)
		return 0;
	fs = vp_keeper_fs(k);
	/* As OpenVPN does after start. */
	if (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid))
		return 0;
	if (fs->mkdirs(fs->ud, state_dir, 0750) == 0) {
		fd = fs->open(fs->ud, journal, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW, 0640);
		if (fd >= 0 && write(fd, "hello\n", 6) == 6)
			result |= R_OPEN_AS_NOBODY;
		if (fd >= 0)
			close(fd);
	}
	fd = open(journal, O_RDWR | O_APPEND);
	if (fd < 0 && errno == EACCES)
		result |= R_DIRECT_REFUSED;
	else if (fd >= 0)
		close(fd);
	if (fs->open(fs->ud, "/etc/shadow", O_RDONLY, 0) == -EPERM &&
	    fs->open(fs->ud, target, O_WRONLY | O_CREAT, 0600) == -EPERM)
		result |= R_OUTSIDE_REFUSED;
	snprintf(tmp, sizeof(tmp), "%s/leases.journal.tmp", state_dir);
	fd = fs->open(fs->ud, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd >= 0 && write(fd, "new\n", 4) == 4 && fs->rename(fs->ud, tmp, journal) == 0) {
		int in = fs->open(fs->ud, journal, O_RDONLY, 0);

		if (in >= 0 && read(in, buf, sizeof(buf)) == 4 && !memcmp(buf, "new\n", 4))
			result |= R_RENAME;
		if (in >= 0)
			close(in);
	}
	if (fd >= 0)
		close(fd);
	/* The state file replaced by a symlink (made by root, below, before
	 * the child started: see the test). */
	snprintf(tmp, sizeof(tmp), "%s/lock", state_dir);
	if (fs->open(fs->ud, tmp, O_RDWR | O_CREAT, 0640) == -ELOOP)
		result |= R_SYMLINK_REFUSED;
	/* Nor read through one. */
	snprintf(tmp, sizeof(tmp), "%s/server", state_dir);
	if (fs->open(fs->ud, tmp, O_RDONLY, 0) == -ELOOP)
		result |= R_READ_LINK_REFUSED;
	fd = fs->open(fs->ud, conf_path, O_RDONLY, 0);
	if (fd >= 0) {
		result |= R_CONFIG_READ;
		close(fd);
	}
	/* A SIGHUP: the plugin is closed and opened again, unprivileged. */
	vp_keeper_put(k);
	if (vp_keeper_get(&again, conf_path, NULL, &reused) == 0 && reused) {
		result |= R_REUSED;
		vp_keeper_put(again);
	}
	return result;
}

static void keeper__after_the_drop__serves_the_state_dir_and_nothing_else(void **state)
{
	char lock[600];
	int status;
	pid_t pid;

	(void)state;
	if (!can_drop())
		skip();
	setup_dirs();
	/* The lock is a symlink to a file of root's: never written through. */
	assert_int_equal(vp_fs_mkdirs_direct(state_dir, 0750), 0);
	snprintf(lock, sizeof(lock), "%s/lock", state_dir);
	assert_int_equal(symlink(target, lock), 0);
	snprintf(lock, sizeof(lock), "%s/server", state_dir);
	assert_int_equal(symlink("/etc/shadow", lock), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_after_drop());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), R_OPEN_AS_NOBODY | R_DIRECT_REFUSED |
			 R_OUTSIDE_REFUSED | R_RENAME | R_SYMLINK_REFUSED | R_REUSED |
			 R_CONFIG_READ | R_READ_LINK_REFUSED);
	assert_int_equal(access(target, F_OK), -1);	/* not created through the link */
	tl_rmtree(dir);
	free(dir);
	dir = NULL;
}

static void keeper__when_openvpn_exits__ends(void **state)
{
	int fds[2], status;
	pid_t pid, keeper = 0;
	bool gone = false;

	(void)state;
	if (geteuid() != 0)
		skip();
	setup_dirs();
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vp_keeper *k;
		bool reused;

		unsetenv(VP_KEEPER_ENV);
		if (vp_keeper_get(&k, conf_path, NULL, &reused))
			_exit(1);
		keeper = vp_keeper_pid(k);
		_exit(write(fds[1], &keeper, sizeof(keeper)) == sizeof(keeper) ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &keeper, sizeof(keeper)), sizeof(keeper));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(keeper > 0);
	/* Its socket's other end closed with the process: it leaves within a
	 * few seconds (generous: a loaded machine). */
	for (int i = 0; i < 200 && !gone; ++i) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		gone = kill(keeper, 0) && errno == ESRCH;
		if (!gone) {
			char path[64], st = 0;
			FILE *f;

			/* A zombie of init's counts as gone. */
			snprintf(path, sizeof(path), "/proc/%ld/stat", (long)keeper);
			f = fopen(path, "r");
			if (f && fscanf(f, "%*d %*s %c", &st) == 1 && st == 'Z')
				gone = true;
			if (f)
				fclose(f);
			nanosleep(&ts, NULL);
		}
	}
	assert_true(gone);
	tl_rmtree(dir);
	free(dir);
	dir = NULL;
}

/* ---- a keeper of root's, asked as root (what the keeper itself checks) --------- */

static char mdir[600], metrics[700];

/* A fresh directory with a vpnpool.conf naming state (a path), and a
 * metrics file in dir/m. */
static void write_conf(const char *state)
{
	FILE *f;

	snprintf(conf_path, sizeof(conf_path), "%s/vpnpool.conf", dir);
	snprintf(mdir, sizeof(mdir), "%s/m", dir);
	snprintf(metrics, sizeof(metrics), "%s/vpnpool.prom", mdir);
	f = fopen(conf_path, "w");
	assert_non_null(f);
	fprintf(f, "state-dir = \"%s\"\nusage-log = \"\"\nmetrics-file = \"%s\"\n"
		"pool \"p\" {\n network = \"10.8.0.0/24\"\n}\n", state, metrics);
	fclose(f);
}

/* The keeper's socket, from the environment. */
static int env_fd(void)
{
	const char *env = getenv(VP_KEEPER_ENV);

	return env ? atoi(env) : -1;
}

/* Forget any keeper this process has (its socket closed, it ends). */
static void forget(void)
{
	if (env_fd() >= 3)
		close(env_fd());
	unsetenv(VP_KEEPER_ENV);
}

static struct vp_keeper *root_keeper(void)
{
	struct vp_keeper *k;
	bool reused;

	forget();
	assert_int_equal(vp_keeper_get(&k, conf_path, NULL, &reused), 0);
	assert_false(reused);
	return k;
}

static void done(struct vp_keeper *k)
{
	vp_keeper_put(k);
	forget();
	tl_rmtree(dir);
	free(dir);
	dir = NULL;
}

static struct vp_keeper *keeper_with_state_dir(void)
{
	struct vp_keeper *k;

	if (geteuid() != 0)
		skip();
	dir = tl_tmpdir();
	chmod(dir, 0755);
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
	write_conf(state_dir);
	k = root_keeper();
	assert_int_equal(vp_keeper_fs(k)->mkdirs(vp_keeper_fs(k)->ud, state_dir, 0750), 0);
	return k;
}

/* The pid of pid's parent, from /proc. */
static long parent_of(pid_t pid)
{
	char path[64];
	long ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%*d %*s %*c %ld", &ppid), 1);
	fclose(f);
	return ppid;
}

static void keeper__when_started__is_no_child_of_openvpn(void **state)
{
	struct vp_keeper *k;
	pid_t pid;

	(void)state;
	k = keeper_with_state_dir();
	pid = vp_keeper_pid(k);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, 0), 0);
	/* Never this process's to reap: not a zombie of OpenVPN's when it
	 * ends (a reload as root that starts another). */
	assert_true(parent_of(pid) != (long)getpid());
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	done(k);
}

/* A keeper a test stops (or may leave stuck): killed when the test ends,
 * even when it fails or its alarm goes off, never left behind. */
static pid_t stuck;

static void on_alarm(int sig)
{
	(void)sig;
	if (stuck > 0)
		kill(stuck, SIGKILL);
	_exit(1);
}

static int kill_stuck(void **state)
{
	(void)state;
	if (stuck > 0) {
		kill(stuck, SIGKILL);
		kill(stuck, SIGCONT);
	}
	stuck = 0;
	return 0;
}

/* Until the keeper's reply is there (no time limit: the event itself). */
static void wait_for_reply(void)
{
	struct pollfd pfd = { .fd = env_fd(), .events = POLLIN };

	assert_int_equal(poll(&pfd, 1, -1), 1);
}

static void keeper__when_stopped__fails_fast_then_serves_again(void **state)
{
	struct vp_keeper *k, *again;
	const struct vp_fs *fs;
	struct stat st;
	bool reused;
	pid_t pid;

	(void)state;
	k = keeper_with_state_dir();
	fs = vp_keeper_fs(k);
	pid = stuck = vp_keeper_pid(k);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	/* Without a limit the call below never returns: the alarm ends the
	 * test (it fails), whatever the machine's speed. */
	alarm(120);
	assert_int_equal(fs->lstat(fs->ud, state_dir, &st), -ETIMEDOUT);
	/* Not done by this process instead: the keeper may still do it. */
	assert_int_equal(fs->mkdirs(fs->ud, state_dir, 0750), -ETIMEDOUT);
	alarm(0);
	/* It runs again: once its late reply is in, it serves. */
	assert_int_equal(kill(pid, SIGCONT), 0);
	wait_for_reply();
	assert_int_equal(fs->lstat(fs->ud, state_dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Stopped at a reload: not reused, a new one. */
	assert_int_equal(kill(pid, SIGSTOP), 0);
	vp_keeper_put(k);
	alarm(120);
	assert_int_equal(vp_keeper_get(&again, conf_path, NULL, &reused), 0);
	alarm(0);
	assert_false(reused);
	assert_true(vp_keeper_pid(again) != pid);
	kill(pid, SIGCONT);
	done(again);
}

static void keeper__a_late_reply__is_never_taken_for_another(void **state)
{
	struct vp_keeper *k, *again;
	const struct vp_fs *fs;
	char x[700], y[700];
	struct stat st, fst;
	bool reused;
	pid_t pid;
	int fd;

	(void)state;
	k = keeper_with_state_dir();
	fs = vp_keeper_fs(k);
	pid = stuck = vp_keeper_pid(k);
	snprintf(x, sizeof(x), "%s/server", state_dir);
	snprintf(y, sizeof(y), "%s/lock", state_dir);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	alarm(120);
	assert_int_equal(fs->open(fs->ud, x, O_WRONLY | O_CREAT, 0640), -ETIMEDOUT);
	alarm(0);
	/* A reload while its reply (and x's descriptor) is on the way. */
	vp_keeper_put(k);
	assert_int_equal(kill(pid, SIGCONT), 0);
	wait_for_reply();
	assert_int_equal(vp_keeper_get(&again, conf_path, NULL, &reused), 0);
	assert_true(reused);
	fs = vp_keeper_fs(again);
	fd = fs->open(fs->ud, y, O_WRONLY | O_CREAT, 0640);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &fst), 0);
	close(fd);
	assert_int_equal(stat(y, &st), 0);
	assert_int_equal(st.st_ino, fst.st_ino);
	assert_int_equal(fs->lstat(fs->ud, x, &st), 0);
	assert_int_equal(st.st_ino, stat(x, &fst) ? 0 : fst.st_ino);
	done(again);
}

static void keeper__never_holds_the_state_dir_lock(void **state)
{
	struct vp_keeper *k;
	char lock[700];
	struct stat st;
	int fd, again;

	(void)state;
	if (geteuid() != 0)
		skip();
	dir = tl_tmpdir();
	chmod(dir, 0755);
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
	write_conf(state_dir);
	snprintf(lock, sizeof(lock), "%s/lock", dir);
	/* A plugin that holds the lock when the keeper is forked. */
	fd = open(lock, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	/* On a descriptor of its own, not one of the first few. */
	again = fcntl(fd, F_DUPFD, 200);
	assert_true(again >= 200);
	close(fd);
	fd = again;
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	k = root_keeper();
	close(fd);
	again = open(lock, O_RDWR);
	assert_true(again >= 0);
	assert_int_equal(flock(again, LOCK_EX | LOCK_NB), 0);
	close(again);
	/* Nor one it opened for the plugin. */
	snprintf(journal, sizeof(journal), "%s/lock", state_dir);
	assert_int_equal(vp_keeper_fs(k)->mkdirs(vp_keeper_fs(k)->ud, state_dir, 0750), 0);
	fd = vp_keeper_fs(k)->open(vp_keeper_fs(k)->ud, journal, O_RDWR | O_CREAT, 0640);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	/* Its copy is closed once it answers the next request. */
	assert_int_equal(vp_keeper_fs(k)->lstat(vp_keeper_fs(k)->ud, journal, &st), 0);
	close(fd);
	again = open(journal, O_RDWR);
	assert_true(again >= 0);
	assert_int_equal(flock(again, LOCK_EX | LOCK_NB), 0);
	close(again);
	done(k);
}

static void keeper__creates_files__never_setuid_nor_executable(void **state)
{
	struct vp_keeper *k = keeper_with_state_dir();
	const struct vp_fs *fs = vp_keeper_fs(k);
	char path[800];
	struct stat st;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/server.tmp", state_dir);
	fd = fs->open(fs->ud, path, O_WRONLY | O_CREAT | O_EXCL, 06777);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07111, 0);
	/* The mode asked for: the metrics file is for another user to read. */
	snprintf(path, sizeof(path), "%s.tmp", metrics);
	assert_int_equal(fs->mkdirs(fs->ud, mdir, 0755), 0);
	fd = fs->open(fs->ud, path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_int_equal(st.st_mode & 07777, 0644);
	done(k);
}

static void keeper__a_hard_link_or_fifo__refused_untouched(void **state)
{
	struct vp_keeper *k = keeper_with_state_dir();
	const struct vp_fs *fs = vp_keeper_fs(k);
	char secret[700], link_path[700], fifo[700];
	struct stat st;
	int fd;

	(void)state;
	stuck = vp_keeper_pid(k);
	/* As if the state dir were nobody's (set up so before the keeper):
	 * a hard link to a file of root's, a FIFO. */
	snprintf(secret, sizeof(secret), "%s/secret", dir);
	fd = open(secret, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "root:x:0\n", 9), 9);
	close(fd);
	snprintf(link_path, sizeof(link_path), "%s/leases.journal", state_dir);
	assert_int_equal(link(secret, link_path), 0);
	assert_int_equal(fs->open(fs->ud, link_path, O_RDWR | O_TRUNC, 0), -EPERM);
	assert_int_equal(fs->open(fs->ud, link_path, O_RDONLY, 0), -EPERM);
	assert_int_equal(stat(secret, &st), 0);
	assert_int_equal(st.st_size, 9);
	snprintf(fifo, sizeof(fifo), "%s/lock", state_dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(120);	/* a keeper blocked on the FIFO: the test fails */
	assert_true(fs->open(fs->ud, fifo, O_WRONLY, 0) < 0);
	assert_int_equal(fs->open(fs->ud, fifo, O_RDONLY, 0), -EPERM);
	alarm(0);
	/* The keeper still answers: it was not stuck. */
	assert_int_equal(fs->lstat(fs->ud, fifo, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	done(k);
}

static void keeper__a_symlink_on_the_way__followed_only_where_only_root_writes(void **state)
{
	struct vp_keeper *k;
	const struct vp_fs *fs;
	char pub[400], secret[400], path[700], real[400], trusted[400];
	struct stat st;
	int fd;

	(void)state;
	if (geteuid() != 0)
		skip();
	dir = tl_tmpdir();
	chmod(dir, 0755);
	/* The state dir in a directory everyone writes, swapped for a link
	 * to a directory of root's. */
	snprintf(pub, sizeof(pub), "%s/pub", dir);
	snprintf(secret, sizeof(secret), "%s/secret", dir);
	assert_int_equal(mkdir(pub, 0777), 0);
	assert_int_equal(chmod(pub, 0777), 0);
	assert_int_equal(mkdir(secret, 0700), 0);
	snprintf(state_dir, sizeof(state_dir), "%s/state", pub);
	assert_int_equal(symlink(secret, state_dir), 0);
	write_conf(state_dir);
	k = root_keeper();
	fs = vp_keeper_fs(k);
	snprintf(path, sizeof(path), "%s/lock", state_dir);
	assert_int_equal(fs->open(fs->ud, path, O_WRONLY | O_CREAT, 0640), -ELOOP);
	assert_int_equal(fs->mkdirs(fs->ud, state_dir, 0750), -ELOOP);
	assert_int_equal(fs->open(fs->ud, state_dir, O_RDONLY | O_DIRECTORY, 0), -ELOOP);
	assert_int_equal(fs->unlink(fs->ud, path), -ELOOP);
	snprintf(path, sizeof(path), "%s/lock", secret);
	assert_int_equal(access(path, F_OK), -1);
	vp_keeper_put(k);
	forget();
	/* An operator's link, in a directory only root writes: followed. */
	snprintf(real, sizeof(real), "%s/real", dir);
	snprintf(trusted, sizeof(trusted), "%s/lib", dir);
	assert_int_equal(mkdir(real, 0755), 0);
	assert_int_equal(symlink(real, trusted), 0);
	snprintf(state_dir, sizeof(state_dir), "%s/vpnpool", trusted);
	write_conf(state_dir);
	k = root_keeper();
	fs = vp_keeper_fs(k);
	assert_int_equal(fs->mkdirs(fs->ud, state_dir, 0750), 0);
	snprintf(path, sizeof(path), "%s/leases.journal", state_dir);
	fd = fs->open(fs->ud, path, O_WRONLY | O_CREAT, 0640);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/vpnpool/leases.journal", real);
	assert_int_equal(stat(path, &st), 0);
	done(k);
}

static void keeper__renames__never_from_one_directory_to_another(void **state)
{
	struct vp_keeper *k = keeper_with_state_dir();
	const struct vp_fs *fs = vp_keeper_fs(k);
	char a[700], b[700], tmp[800];
	int fd;

	(void)state;
	snprintf(a, sizeof(a), "%s/server.tmp", state_dir);
	snprintf(b, sizeof(b), "%s/server", state_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", metrics);
	assert_int_equal(fs->mkdirs(fs->ud, mdir, 0755), 0);
	fd = fs->open(fs->ud, a, O_WRONLY | O_CREAT, 0640);
	assert_true(fd >= 0);
	close(fd);
	fd = fs->open(fs->ud, tmp, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fs->rename(fs->ud, a, metrics), -EPERM);
	assert_int_equal(fs->rename(fs->ud, tmp, a), -EPERM);
	assert_int_equal(fs->rename(fs->ud, a, tmp), -EPERM);
	assert_int_equal(fs->rename(fs->ud, a, b), 0);
	assert_int_equal(fs->rename(fs->ud, tmp, metrics), 0);
	assert_int_equal(fs->rename(fs->ud, metrics, b), -EPERM);
	assert_int_equal(access(metrics, F_OK), 0);
	done(k);
}

/* Send len bytes of msg on the keeper's socket; the reply's ret. */
static int raw_ask(int sock, const void *msg, size_t len)
{
	int32_t reply[64];

	if (send(sock, msg, len, MSG_NOSIGNAL) != (ssize_t)len)
		return 1;
	if (recv(sock, reply, sizeof(reply), 0) <= 0)
		return 2;		/* the keeper is gone */
	return reply[0];
}

static void keeper__malformed_requests__refused_and_it_serves_on(void **state)
{
	struct vp_keeper *k = keeper_with_state_dir();
	const struct vp_fs *fs = vp_keeper_fs(k);
	uint32_t hdr[6] = { 's', 0, 0, 0, 0, 0 };
	static char big[3 * 4096 + 64];
	char msg[sizeof(hdr) + 16];
	int sock = env_fd();
	struct stat st;

	(void)state;
	assert_true(sock >= 3);
	assert_int_equal(raw_ask(sock, "x", 1), -EINVAL);
	/* Lengths that overflow, or point past the message. */
	hdr[3] = 0xffffffffu;
	hdr[4] = 2;
	memcpy(msg, hdr, sizeof(hdr));
	memset(msg + sizeof(hdr), 'a', 16);
	assert_int_equal(raw_ask(sock, msg, sizeof(msg)), -EINVAL);
	hdr[3] = 8;
	hdr[4] = 8;
	memcpy(msg, hdr, sizeof(hdr));	/* no NUL ends the paths */
	assert_int_equal(raw_ask(sock, msg, sizeof(msg)), -EINVAL);
	hdr[3] = 4096;
	hdr[4] = sizeof(big) - sizeof(hdr) - 4096;
	memcpy(big, hdr, sizeof(hdr));
	assert_int_equal(raw_ask(sock, big, sizeof(big)), -EINVAL);
	hdr[0] = 'z';
	hdr[3] = 8;
	hdr[4] = 8;
	memcpy(msg, hdr, sizeof(hdr));
	memset(msg + sizeof(hdr), 0, 16);
	assert_int_equal(raw_ask(sock, msg, sizeof(msg)), -EPERM);
	assert_int_equal(fs->lstat(fs->ud, state_dir, &st), 0);
	done(k);
}

static void keeper__a_stale_environment__is_not_reused(void **state)
{
	struct vp_keeper *k = keeper_with_state_dir(), *again;
	char env[64];
	bool reused;
	pid_t pid = vp_keeper_pid(k);

	(void)state;
	vp_keeper_put(k);
	/* The socket, but another pid: not the keeper it names. */
	snprintf(env, sizeof(env), "%d:%ld", env_fd(), (long)pid + 1);
	setenv(VP_KEEPER_ENV, env, 1);
	assert_int_equal(vp_keeper_get(&again, conf_path, NULL, &reused), 0);
	assert_false(reused);
	/* The one just started: reused. */
	vp_keeper_put(again);
	assert_int_equal(vp_keeper_get(&again, conf_path, NULL, &reused), 0);
	assert_true(reused);
	done(again);
}

static void keeper__for_a_second_config__leaves_the_first_one_serving(void **state)
{
	struct vp_keeper *k1 = keeper_with_state_dir(), *k2;
	const struct vp_fs *fs1 = vp_keeper_fs(k1);
	char *dir1 = dir, state1[512];
	struct stat st;
	bool reused;

	(void)state;
	snprintf(state1, sizeof(state1), "%s", state_dir);
	/* A second plugin instance, for another vpnpool.conf. */
	dir = tl_tmpdir();
	chmod(dir, 0755);
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
	write_conf(state_dir);
	assert_int_equal(vp_keeper_get(&k2, conf_path, NULL, &reused), 0);
	assert_false(reused);
	assert_true(vp_keeper_pid(k2) != vp_keeper_pid(k1));
	assert_int_equal(fs1->lstat(fs1->ud, state1, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	vp_keeper_put(k1);
	tl_rmtree(dir1);
	free(dir1);
	done(k2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(allows__the_state_dir_files__any_open_rename_unlink),
		cmocka_unit_test(allows__paths_outside__never),
		cmocka_unit_test(allows__usage_log__append_only),
		cmocka_unit_test(allows__metrics__its_tmp_written_and_renamed_over_it),
		cmocka_unit_test(allows__the_config_files__read_only),
		cmocka_unit_test(allows_route__inside_the_configured_networks_only),
		cmocka_unit_test(allows_route__a_small_pool__not_the_addresses_beside_it),
		cmocka_unit_test(keeper__after_the_drop__serves_the_state_dir_and_nothing_else),
		cmocka_unit_test(keeper__when_openvpn_exits__ends),
		cmocka_unit_test(allows__open_flags_beyond_reading_and_writing__never),
		cmocka_unit_test(keeper__when_started__is_no_child_of_openvpn),
		cmocka_unit_test_teardown(keeper__when_stopped__fails_fast_then_serves_again, kill_stuck),
		cmocka_unit_test_teardown(keeper__a_late_reply__is_never_taken_for_another, kill_stuck),
		cmocka_unit_test(keeper__never_holds_the_state_dir_lock),
		cmocka_unit_test(keeper__creates_files__never_setuid_nor_executable),
		cmocka_unit_test_teardown(keeper__a_hard_link_or_fifo__refused_untouched, kill_stuck),
		cmocka_unit_test(keeper__a_symlink_on_the_way__followed_only_where_only_root_writes),
		cmocka_unit_test(keeper__renames__never_from_one_directory_to_another),
		cmocka_unit_test(keeper__malformed_requests__refused_and_it_serves_on),
		cmocka_unit_test(keeper__a_stale_environment__is_not_reused),
		cmocka_unit_test(keeper__for_a_second_config__leaves_the_first_one_serving),
	};

	signal(SIGALRM, on_alarm);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
