/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The lock-free reader against a live writer: a child process holds the
 * store and keeps writing (appends, synchronous compactions, compactions in
 * the store's thread) while this process replays the journal with
 * vp_store_read() again and again, as `vpnpool leases` does while OpenVPN
 * runs.  Every read must be a state the writer really had: all identities,
 * each with its own address, no damage reported, and never older than the
 * read before it.
 */
#include <errno.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "testlib.h"

#define IDENTITIES 500
#define WRITER_PUTS 200000

struct writer {
	uint32_t sessions[IDENTITIES];
};

static void lease_of(struct vp_lease_rec *rec, char id[16], unsigned i, uint32_t sessions)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(id, 16, "client-%u", i);
	rec->identity = (const uint8_t *)id;
	rec->identity_len = strlen(id);
	rec->state = sessions % 2 ? VP_LEASE_ONLINE : VP_LEASE_HELD;
	rec->sessions = sessions;
	rec->created = 1;
	rec->since = sessions;
	rec->addr4 = vp_addr_v4(0x0a000000u + 10 + i);
}

static int emit_all(void *ud, vp_store_emit_fn emit, void *emit_ctx)
{
	struct writer *w = ud;

	for (unsigned i = 0; i < IDENTITIES; ++i) {
		struct vp_lease_rec rec;
		char id[16];
		int ret;

		lease_of(&rec, id, i, w->sessions[i]);
		ret = emit(emit_ctx, &rec);
		if (ret)
			return ret;
	}
	return 0;
}

/* The child: every identity once, then tell the parent (ready), then keep
 * bumping random identities, compacting now and then both ways. */
static void run_writer(const char *dir, int ready)
{
	static struct writer w;
	struct vp_store *st;
	unsigned seed = 7, started = 0, finished = 0;

	if (vp_store_open(&st, dir, false, NULL, NULL, NULL, NULL))
		_exit(2);
	for (unsigned i = 0; i < IDENTITIES; ++i) {
		struct vp_lease_rec rec;
		char id[16];

		w.sessions[i] = 1;
		lease_of(&rec, id, i, 1);
		if (vp_store_put(st, &rec))
			_exit(3);
	}
	if (write(ready, "r", 1) != 1)
		_exit(4);
	for (unsigned n = 1; n <= WRITER_PUTS; ++n) {
		struct vp_lease_rec rec;
		char id[16];
		unsigned i;

		seed = seed * 1103515245u + 12345u;
		i = (seed >> 8) % IDENTITIES;
		lease_of(&rec, id, i, ++w.sessions[i]);
		if (vp_store_put(st, &rec))
			_exit(5);
		/* (Not over a background one: its thread runs at the lowest
		 * priority and may take longer than 2500 puts.) */
		if (n % 5000 == 0 && !vp_store_compacting(st) && vp_store_compact(st, emit_all, &w))
			_exit(6);
		if (n % 5000 == 2500 && !vp_store_compact_start(st))
			started++;
		if (vp_store_compacting(st)) {
			int ret = vp_store_compact_poll(st, false);

			if (ret == 0)
				finished++;
			else if (ret != -EINPROGRESS)
				_exit(8);
		}
	}
	if (vp_store_compacting(st)) {
		if (vp_store_compact_poll(st, true))
			_exit(9);
		finished++;
	}
	/* Both kinds of compaction really ran (and renamed under the reader). */
	if (!started || !finished)
		_exit(10);
	vp_store_close(st);
	_exit(0);
}

struct view {
	uint32_t sessions[IDENTITIES];
	unsigned seen, bad_address, bad_identity;
};

static int view_put(void *ud, const struct vp_lease_rec *rec)
{
	struct view *v = ud;
	struct vp_addr want;
	unsigned i;
	char id[16];

	if (rec->identity_len < 8 || rec->identity_len > 14 ||
	    sscanf((const char *)rec->identity, "client-%u", &i) != 1 || i >= IDENTITIES) {
		v->bad_identity++;
		return 0;
	}
	snprintf(id, sizeof(id), "client-%u", i);
	if (rec->identity_len != strlen(id) || memcmp(rec->identity, id, rec->identity_len)) {
		v->bad_identity++;
		return 0;
	}
	want = vp_addr_v4(0x0a000000u + 10 + i);
	if (!vp_addr_eq(&rec->addr4, &want))
		v->bad_address++;
	if (!v->sessions[i])
		v->seen++;
	v->sessions[i] = rec->sessions;	/* last record wins */
	return 0;
}

static void store_read__while_a_writer_appends_and_compacts__sees_whole_newer_states(void **state)
{
	char *dir = tl_tmpdir();
	int pipefd[2];
	pid_t child;
	char c;
	static uint32_t last[IDENTITIES];
	unsigned reads = 0, torn = 0, regressions = 0, renames = 0;
	char journal[4200];
	ino_t inode = 0;
	int status;

	(void)state;
	assert_int_equal(pipe(pipefd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(pipefd[0]);
		run_writer(dir, pipefd[1]);
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	snprintf(journal, sizeof(journal), "%s/leases.journal", dir);

	for (;;) {
		static struct view v;
		struct vp_store_replay r = { .put = view_put, .ud = &v };
		struct vp_store_report rep;
		pid_t done = waitpid(child, &status, WNOHANG);
		struct stat st;

		/* A new inode: a compaction renamed a new journal into place. */
		if (!stat(journal, &st)) {
			renames += inode && st.st_ino != inode;
			inode = st.st_ino;
		}

		memset(&v, 0, sizeof(v));
		assert_int_equal(vp_store_read(dir, &r, &rep), 0);
		assert_false(rep.corrupt);
		assert_int_equal(v.bad_identity, 0);
		assert_int_equal(v.bad_address, 0);
		assert_int_equal(v.seen, IDENTITIES);
		for (unsigned i = 0; i < IDENTITIES; ++i) {
			if (v.sessions[i] < last[i])
				regressions++;
			last[i] = v.sessions[i];
		}
		torn += rep.torn;
		reads++;
		if (done == child)
			break;
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(regressions, 0);
	/* The last read came after the writer's end: it holds every put. */
	{
		uint64_t total = 0;

		for (unsigned i = 0; i < IDENTITIES; ++i)
			total += last[i];
		assert_int_equal(total, IDENTITIES + WRITER_PUTS);
	}
	print_message("%u reads during %u puts (%u saw a record being written, %u journals "
		      "renamed into place between reads)\n", reads, WRITER_PUTS, torn, renames);
	assert_true(reads > 1);
	assert_true(renames > 0);
	close(pipefd[0]);
	tl_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(store_read__while_a_writer_appends_and_compacts__sees_whole_newer_states),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
