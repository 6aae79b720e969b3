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
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	assert_false(ALLOWS('o', "/var/lib/vpnpoolx/file", O_WRONLY | O_CREAT));
	assert_false(ALLOWS('o', "/var/lib", O_RDONLY | O_DIRECTORY));
	assert_false(ALLOWS('o', "/var/lib/vpnpool", O_WRONLY));
	assert_false(ALLOWS('r', "/etc/passwd", 0));
	assert_false(ALLOWS('u', "/var/log/openvpn/usage.log", 0));
	assert_false(ALLOWS('m', "/etc/cron.d", 0));
	assert_false(ALLOWS('s', "/root", 0));
	assert_false(ALLOWS('x', "/var/lib/vpnpool/lock", 0));
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
	assert_false(vp_keeper_allows(NULL, "/etc/v.conf", "", 'o', "/var/lib/vpnpool/lock",
				      O_RDWR));
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
	snprintf(tmp, sizeof(tmp), "%s/peek", state_dir);
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
	snprintf(lock, sizeof(lock), "%s/peek", state_dir);
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
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(allows__the_state_dir_files__any_open_rename_unlink),
		cmocka_unit_test(allows__paths_outside__never),
		cmocka_unit_test(allows__usage_log__append_only),
		cmocka_unit_test(allows__metrics__its_tmp_written_and_renamed_over_it),
		cmocka_unit_test(allows__the_config_files__read_only),
		cmocka_unit_test(keeper__after_the_drop__serves_the_state_dir_and_nothing_else),
		cmocka_unit_test(keeper__when_openvpn_exits__ends),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
