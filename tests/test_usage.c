/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The usage log across log rotation: moved away (logrotate `create`),
 * removed, truncated in place (`copytruncate`), replaced by a symlink, and a
 * path that cannot be opened for a while.  The writer thread runs as in the
 * plugin; checks poll the files with a generous deadline and never assert on
 * how fast something happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/fs.h"
#include "plugin/usage.h"
#include "testlib.h"

#define DEADLINE_TRIES 1000	/* of 10 ms: 10 s */

/* The file's text ("" when missing). */
static char *slurp(const char *path)
{
	char *text = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (!f || getdelim(&text, &cap, '\0', f) < 0) {
		free(text);
		text = strdup("");
	}
	if (f)
		fclose(f);
	assert_non_null(text);
	return text;
}

static size_t count_of(const char *text, const char *what)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		++n;
	return n;
}

/* Wait until path holds what (true), or give up after the deadline. */
static bool wait_for(const char *path, const char *what)
{
	for (int i = 0; i < DEADLINE_TRIES; ++i) {
		char *text = slurp(path);
		bool found = strstr(text, what) != NULL;

		free(text);
		if (found)
			return true;
		usleep(10000);
	}
	return false;
}

static bool wait_exists(const char *path)
{
	for (int i = 0; i < DEADLINE_TRIES; ++i) {
		if (!access(path, F_OK))
			return true;
		usleep(10000);
	}
	return false;
}

static bool wait_report(struct vp_usage *u, struct vp_usage_report *r)
{
	for (int i = 0; i < DEADLINE_TRIES; ++i) {
		if (vp_usage_report(u, r))
			return true;
		usleep(10000);
	}
	return false;
}

static void put(struct vp_usage *u, const char *identity)
{
	struct vp_strbuf f = { 0 };

	vp_logfmt_adds(&f, "identity", identity);
	assert_int_equal(vp_usage_write(u, 1795579289, "connect", &f), 0);
	vp_strbuf_free(&f);
}

struct scratch {
	char *dir;
	char path[512], moved[512], target[512];
};

static void scratch_open(struct scratch *s, struct vp_usage **u, const struct vp_fs *fs)
{
	s->dir = tl_tmpdir();
	snprintf(s->path, sizeof(s->path), "%s/log/usage.log", s->dir);
	snprintf(s->moved, sizeof(s->moved), "%s/log/usage.log.1", s->dir);
	snprintf(s->target, sizeof(s->target), "%s/elsewhere", s->dir);
	assert_int_equal(vp_usage_open(u, s->path, fs), 0);
	assert_int_equal(vp_usage_start_writer(*u), 0);
}

static void scratch_free(struct scratch *s)
{
	tl_rmtree(s->dir);
	free(s->dir);
}

/* logrotate without `create`: the path is made again, on a quiet server
 * too, and the next lines go there; the moved file gets none of them. */
static void usage__moved_away__path_created_again_and_next_lines_go_there(void **state)
{
	struct scratch s;
	struct vp_usage *u;
	char *text;
	struct stat st;

	(void)state;
	scratch_open(&s, &u, NULL);
	put(u, "before");
	assert_true(wait_for(s.path, "identity=before\n"));
	assert_int_equal(rename(s.path, s.moved), 0);
	assert_true(wait_exists(s.path));	/* no line written: the timer */
	assert_int_equal(stat(s.path, &st), 0);
	assert_int_equal(st.st_mode & 0777 & ~0640, 0);
	put(u, "after");
	assert_true(wait_for(s.path, "identity=after\n"));
	vp_usage_close(u);
	text = slurp(s.moved);
	assert_int_equal(count_of(text, "\n"), 1);
	free(text);
	text = slurp(s.path);
	assert_int_equal(count_of(text, "\n"), 1);
	free(text);
	scratch_free(&s);
}

/* logrotate `create`: the file it made is the one written, not replaced. */
static void usage__moved_and_created_by_logrotate__its_file_is_written(void **state)
{
	struct scratch s;
	struct vp_usage *u;
	struct stat made, now;
	int fd;

	(void)state;
	scratch_open(&s, &u, NULL);
	put(u, "before");
	assert_true(wait_for(s.path, "identity=before\n"));
	assert_int_equal(rename(s.path, s.moved), 0);
	fd = open(s.path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(s.path, &made), 0);
	put(u, "after");
	assert_true(wait_for(s.path, "identity=after\n"));
	assert_int_equal(stat(s.path, &now), 0);
	assert_int_equal(now.st_ino, made.st_ino);
	assert_int_equal(now.st_mode & 0777, 0600);
	vp_usage_close(u);
	scratch_free(&s);
}

static void usage__removed__path_created_again(void **state)
{
	struct scratch s;
	struct vp_usage *u;
	char *text;

	(void)state;
	scratch_open(&s, &u, NULL);
	put(u, "before");
	assert_true(wait_for(s.path, "identity=before\n"));
	assert_int_equal(unlink(s.path), 0);
	assert_true(wait_exists(s.path));
	put(u, "after");
	assert_true(wait_for(s.path, "identity=after\n"));
	vp_usage_close(u);
	text = slurp(s.path);
	assert_int_equal(count_of(text, "identity=before"), 0);
	free(text);
	scratch_free(&s);
}

/* copytruncate: the file shrank under our O_APPEND descriptor; lines go on
 * from its new end, with no hole before them. */
static void usage__truncated_in_place__appended_from_the_start(void **state)
{
	struct scratch s;
	struct vp_usage *u;
	struct stat st;
	char *text;

	(void)state;
	scratch_open(&s, &u, NULL);
	put(u, "before");
	assert_true(wait_for(s.path, "identity=before\n"));
	assert_int_equal(truncate(s.path, 0), 0);
	put(u, "after");
	assert_true(wait_for(s.path, "identity=after\n"));
	vp_usage_close(u);
	text = slurp(s.path);
	assert_int_equal(stat(s.path, &st), 0);
	assert_int_equal((size_t)st.st_size, strlen(text));	/* no NUL bytes */
	assert_int_equal(strncmp(text, "time=", 5), 0);
	assert_int_equal(count_of(text, "\n"), 1);
	free(text);
	scratch_free(&s);
}

static void usage__symlink_at_open__refused_and_target_untouched(void **state)
{
	char *dir = tl_tmpdir(), path[512], target[512], *text;
	struct vp_usage *u = NULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/usage.log", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	close(open(target, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(vp_usage_open(&u, path, NULL), -ELOOP);
	assert_null(u);
	text = slurp(target);
	assert_string_equal(text, "");
	free(text);
	tl_rmtree(dir);
	free(dir);
}

/* A symlink put where the log was: told once, lines held, not written
 * through it; written to the path once the symlink is gone. */
static void usage__symlink_after_rotation__lines_held_not_written_through(void **state)
{
	struct scratch s;
	struct vp_usage *u;
	struct vp_usage_report r;
	char *text;

	(void)state;
	scratch_open(&s, &u, NULL);
	put(u, "before");
	assert_true(wait_for(s.path, "identity=before\n"));
	close(open(s.target, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(rename(s.path, s.moved), 0);
	assert_int_equal(symlink(s.target, s.path), 0);
	put(u, "held");
	assert_true(wait_report(u, &r));
	assert_int_equal(r.error, -ELOOP);
	assert_true(r.opening);
	put(u, "held-too");
	assert_false(vp_usage_report(u, &r));
	assert_int_equal(unlink(s.path), 0);
	assert_true(wait_for(s.path, "identity=held-too\n"));
	assert_true(wait_report(u, &r));
	assert_int_equal(r.error, 0);
	assert_int_equal(r.held, 2);
	assert_int_equal(r.dropped, 0);
	vp_usage_close(u);
	text = slurp(s.target);
	assert_string_equal(text, "");
	free(text);
	text = slurp(s.moved);
	assert_int_equal(count_of(text, "\n"), 1);
	free(text);
	text = slurp(s.path);
	assert_non_null(strstr(text, "identity=held\n"));
	assert_true(strstr(text, "identity=held\n") < strstr(text, "identity=held-too\n"));
	free(text);
	scratch_free(&s);
}

/* ---- a filesystem whose open fails on demand ------------------------------- */

struct faulty {
	int fail;			/* -errno for open; 0: works */
	unsigned opens_failed;
};

static int faulty_open(void *ud, const char *path, int flags, mode_t mode)
{
	struct faulty *f = ud;
	int err = __atomic_load_n(&f->fail, __ATOMIC_SEQ_CST);

	if (err) {
		__atomic_add_fetch(&f->opens_failed, 1, __ATOMIC_SEQ_CST);
		return err;
	}
	return vp_fs_direct()->open(NULL, path, flags, mode);
}

/* Only open fails; everything else is the direct calls (which ignore ud). */
static struct vp_fs faulty_fs(struct faulty *f)
{
	struct vp_fs fs = *vp_fs_direct();

	fs.open = faulty_open;
	fs.ud = f;
	return fs;
}

/* logrotate `create` with an owner the plugin may not open (no keeper):
 * one report, the lines held (not written to the moved file), written in
 * order once the path opens, and one report of that with their count. */
static void usage__reopen_fails__lines_held_told_once_and_written_after(void **state)
{
	struct faulty f = { 0 };
	const struct vp_fs fs = faulty_fs(&f);
	struct scratch s;
	struct vp_usage *u;
	struct vp_usage_report r;
	char *text, id[32];
	const char *at;

	(void)state;
	scratch_open(&s, &u, &fs);
	put(u, "before");
	assert_true(wait_for(s.path, "identity=before\n"));
	__atomic_store_n(&f.fail, -EACCES, __ATOMIC_SEQ_CST);
	assert_int_equal(rename(s.path, s.moved), 0);
	close(open(s.path, O_WRONLY | O_CREAT | O_EXCL, 0640));
	put(u, "held-0");
	assert_true(wait_report(u, &r));
	assert_int_equal(r.error, -EACCES);
	assert_true(r.opening);
	for (int i = 1; i < 100; ++i) {
		snprintf(id, sizeof(id), "held-%d", i);
		put(u, id);
	}
	/* Tried again (each second), still failing: nothing more to tell. */
	for (unsigned i = 0, seen = __atomic_load_n(&f.opens_failed, __ATOMIC_SEQ_CST);
	     __atomic_load_n(&f.opens_failed, __ATOMIC_SEQ_CST) < seen + 2; ++i) {
		assert_true(i < DEADLINE_TRIES);
		usleep(10000);
	}
	assert_false(vp_usage_report(u, &r));
	__atomic_store_n(&f.fail, 0, __ATOMIC_SEQ_CST);
	assert_true(wait_for(s.path, "identity=held-99\n"));
	assert_true(wait_report(u, &r));
	assert_int_equal(r.error, 0);
	assert_int_equal(r.held, 100);
	assert_int_equal(r.dropped, 0);
	put(u, "after");
	vp_usage_close(u);
	assert_false(vp_usage_report(NULL, &r));
	text = slurp(s.moved);
	assert_int_equal(count_of(text, "\n"), 1);
	free(text);
	text = slurp(s.path);
	assert_int_equal(count_of(text, "\n"), 101);
	at = text;
	for (int i = 0; i < 100; ++i) {
		snprintf(id, sizeof(id), "identity=held-%d\n", i);
		at = strstr(at, id);
		assert_non_null(at);
	}
	assert_non_null(strstr(at, "identity=after\n"));
	free(text);
	scratch_free(&s);
}

/* Held lines are bounded (64 MiB): past that the newest are dropped and
 * counted; the oldest are written once the path opens. */
static void usage__more_held_than_the_bound__newest_dropped_and_counted(void **state)
{
	struct faulty f = { 0 };
	const struct vp_fs fs = faulty_fs(&f);
	char *dir = tl_tmpdir(), path[512], moved[512], id[4200], *text, *at;
	const unsigned total = 20000;	/* of about 4 KiB: 80 MiB */
	struct vp_usage *u;
	struct vp_usage_report r;
	unsigned after = 0, in_file;

	(void)state;
	snprintf(path, sizeof(path), "%s/usage.log", dir);
	snprintf(moved, sizeof(moved), "%s/usage.log.1", dir);
	assert_int_equal(vp_usage_open(&u, path, &fs), 0);	/* no writer: each line checks */
	f.fail = -EACCES;
	assert_int_equal(rename(path, moved), 0);
	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	for (unsigned i = 0; i < total; ++i) {
		snprintf(id, sizeof(id), "big-%05u-", i);
		id[10] = 'x';
		put(u, id);
	}
	assert_true(vp_usage_report(u, &r));
	assert_int_equal(r.error, -EACCES);
	f.fail = 0;
	for (bool told = false; !told; ++after) {	/* a retry comes within a second */
		assert_true(after < DEADLINE_TRIES);
		usleep(10000);
		snprintf(id, sizeof(id), "aft-%05u-", after);
		id[10] = 'x';
		put(u, id);
		told = vp_usage_report(u, &r);
	}
	vp_usage_close(u);
	assert_int_equal(r.error, 0);
	assert_true(r.dropped > 0);
	assert_int_equal(r.held + r.dropped, total + after);
	text = slurp(path);
	in_file = (unsigned)count_of(text, "\n");
	assert_int_equal(in_file, r.held);
	assert_true(in_file * sizeof(id) <= (64u << 20) && in_file > (60u << 20) / sizeof(id));
	at = text;
	for (unsigned i = 0; i < in_file; ++i) {	/* the oldest, in order */
		snprintf(id, sizeof(id), "identity=big-%05u-x", i);
		at = strstr(at, id);
		assert_non_null(at);
	}
	free(text);
	tl_rmtree(dir);
	free(dir);
}

/* OpenVPN's chroot, with the direct fs (no keeper): the path, outside it,
 * is not made inside it; the lines are held, told as -EXDEV, and counted as
 * lost at close.  In a child process (chroot is for good). */
static void usage__chroot_since_open__path_not_made_inside_it(void **state)
{
	char *dir = tl_tmpdir(), path[512], inside[1100], *text;
	struct vp_strbuf f = { 0 };
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();		/* chroot(2) needs root */
	snprintf(path, sizeof(path), "%s/log/usage.log", dir);
	vp_logfmt_adds(&f, "identity", "x");
	pid = fork();
	if (pid == 0) {
		struct vp_usage *u;
		struct vp_usage_report r;

		if (vp_usage_open(&u, path, NULL) ||
		    vp_usage_write(u, 1795579289, "before", &f))
			_exit(10);
		if (chroot(dir) || chdir("/"))
			_exit(11);
		if (vp_usage_write(u, 1795579289, "held", &f))
			_exit(12);
		if (!vp_usage_report(u, &r) || r.error != -EXDEV || !r.opening || r.held != 1)
			_exit(13);
		_exit(vp_usage_close(u) == 1 ? 0 : 14);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(inside, sizeof(inside), "%s%s", dir, dir);
	assert_int_equal(access(inside, F_OK), -1);
	text = slurp(path);
	assert_non_null(strstr(text, "event=before "));
	assert_null(strstr(text, "event=held "));
	free(text);
	vp_strbuf_free(&f);
	tl_rmtree(dir);
	free(dir);
}

/* Without the writer thread (before the first client): the same, checked
 * at each line. */
static void usage__no_writer__moved_away__next_line_at_the_path(void **state)
{
	char *dir = tl_tmpdir(), path[512], moved[512], *text;
	struct vp_usage *u;

	(void)state;
	snprintf(path, sizeof(path), "%s/usage.log", dir);
	snprintf(moved, sizeof(moved), "%s/usage.log.1", dir);
	assert_int_equal(vp_usage_open(&u, path, NULL), 0);
	put(u, "before");
	assert_int_equal(rename(path, moved), 0);
	put(u, "after");
	text = slurp(path);
	assert_non_null(strstr(text, "identity=after\n"));
	assert_null(strstr(text, "identity=before\n"));
	free(text);
	vp_usage_close(u);
	tl_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(usage__moved_away__path_created_again_and_next_lines_go_there),
		cmocka_unit_test(usage__moved_and_created_by_logrotate__its_file_is_written),
		cmocka_unit_test(usage__removed__path_created_again),
		cmocka_unit_test(usage__truncated_in_place__appended_from_the_start),
		cmocka_unit_test(usage__symlink_at_open__refused_and_target_untouched),
		cmocka_unit_test(usage__symlink_after_rotation__lines_held_not_written_through),
		cmocka_unit_test(usage__reopen_fails__lines_held_told_once_and_written_after),
		cmocka_unit_test(usage__more_held_than_the_bound__newest_dropped_and_counted),
		cmocka_unit_test(usage__chroot_since_open__path_not_made_inside_it),
		cmocka_unit_test(usage__no_writer__moved_away__next_line_at_the_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
