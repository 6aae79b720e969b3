/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Several instances on one state directory, as openvpn-plugin-vpnpool(8)
 * ("Several OpenVPN processes") states it.  Two spaces opened in one
 * process on one directory are two instances: the store's byte-range locks
 * belong to open file descriptions, not to processes.
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
#include <unistd.h>
#include <cmocka.h>

#include "testlib.h"

struct inst {
	struct vp_space *space;
	struct tl_world world;
};

struct fx {
	char *dir;
	struct vp_config *config;
	struct vp_server server;
	struct inst a, b;
	int64_t now;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *ex[] = { "10.8.0.10-10.8.0.11", NULL };

	f->dir = tl_tmpdir();
	f->config = tl_config_new(f->dir);
	f->config->hold_time = 100;
	tl_add_pool(f->config, "main", "10.8.0.0/24", "10.8.0.2-10.8.0.99", ex, NULL, NULL);
	tl_add_static(f->config, "vip", "10.8.0.50", NULL, NULL, NULL);
	f->server = tl_server(VP_TOPO_SUBNET, "10.8.0.1", 16, NULL);
	f->a.world.now = f->b.world.now = 1000000;
	*state = f;
	return 0;
}

static void inst_close(struct inst *i)
{
	vp_space_close(i->space);
	i->space = NULL;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	inst_close(&f->a);
	inst_close(&f->b);
	vp_config_free(f->config);
	free(f->config);
	tl_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Open (and register as name, unless NULL) an instance on the fixture's
 * directory, with config c (NULL: the fixture's). */
static uint64_t compact_min = 1u << 30;	/* tests compact on purpose only */

static void inst_open_with(struct fx *f, struct inst *i, const struct vp_config *c,
			   const char *name)
{
	struct vp_space_options o = tl_options(c ? c : f->config, &i->world);
	struct vp_store_report report;
	pid_t holder, live;

	o.compact_min = compact_min;
	o.compact_bg_min = UINT64_MAX;
	assert_int_equal(vp_space_open(&i->space, &o, &report, &holder), 0);
	if (name)
		assert_int_equal(vp_space_register(i->space, name, 0, "tun0", &live), 0);
	assert_int_equal(vp_space_set_server(i->space, &f->server), 0);
}

static void inst_open(struct fx *f, struct inst *i, const char *name)
{
	inst_open_with(f, i, NULL, name);
}

static int inst_connect(struct inst *i, const char *id, struct vp_grant *g)
{
	struct vp_request req = { .identity = (const uint8_t *)id, .identity_len = strlen(id) };
	bool failed;

	return vp_space_connect(i->space, &req, g, &failed);
}

static int inst_disconnect(struct inst *i, const char *id, uint16_t slot)
{
	return vp_space_disconnect(i->space, (const uint8_t *)id, strlen(id), slot, NULL);
}

static const char *fmt(const struct vp_addr *a)
{
	static char buf[4][VP_ADDR_STRLEN];
	static unsigned n;

	return vp_addr_format(a, buf[n++ % 4]);
}

struct find {
	const char *id;
	uint16_t slot;
	bool found;
	struct vp_lease_rec rec;
};

static int find_one(void *ud, const struct vp_lease_rec *r)
{
	struct find *fd = ud;

	if (r->identity_len == strlen(fd->id) && !memcmp(r->identity, fd->id, r->identity_len) &&
	    r->slot == fd->slot) {
		fd->found = true;
		fd->rec = *r;
		fd->rec.identity = NULL;
	}
	return 0;
}

/* The lease (id, slot) as the space has it; false if none. */
static bool lease_of(struct inst *i, const char *id, uint16_t slot, struct vp_lease_rec *out)
{
	struct find fd = { .id = id, .slot = slot };

	vp_space_each(i->space, find_one, &fd);
	if (out)
		*out = fd.rec;
	return fd.found;
}

/* ---- sharing ------------------------------------------------------------------ */

static void connect__on_two_instances__never_the_same_address(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	inst_open(f, &f->a, "udp");
	inst_open(f, &f->b, "tcp");
	assert_int_equal(inst_connect(&f->a, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_int_equal(inst_connect(&f->b, "bob", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.3");
	assert_int_equal(inst_connect(&f->a, "carol", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.4");
	assert_int_equal(vp_space_leases(f->a.space), 3);
	assert_int_equal(vp_space_leases(f->b.space), 2);	/* until its next change */
	assert_int_equal(vp_space_sync(f->b.space), 0);
	assert_int_equal(vp_space_leases(f->b.space), 3);
}

static void connect__sticky_address__kept_whichever_instance_it_reaches(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	inst_open(f, &f->a, "udp");
	inst_open(f, &f->b, "tcp");
	assert_int_equal(inst_connect(&f->a, "alice", &g), 0);
	assert_int_equal(inst_connect(&f->a, "bob", &g), 0);
	assert_int_equal(inst_disconnect(&f->a, "alice", 0), 0);
	assert_int_equal(inst_connect(&f->b, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_true(g.sticky);
}

static void release__by_the_command__the_instance_sees_the_address_free(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	struct vp_space *cmd = NULL;
	struct tl_world w = { .now = 1000000 };
	struct vp_space_options o = tl_options(f->config, &w);
	struct vp_store_report report;
	pid_t holder;

	inst_open(f, &f->a, "udp");
	assert_int_equal(inst_connect(&f->a, "alice", &g), 0);
	assert_int_equal(inst_connect(&f->a, "bob", &g), 0);
	assert_int_equal(inst_disconnect(&f->a, "alice", 0), 0);
	o.no_drops = true;
	assert_int_equal(vp_space_open(&cmd, &o, &report, &holder), 0);
	assert_int_equal(vp_space_set_server(cmd, &f->server), 0);
	assert_int_equal(vp_space_release(cmd, (const uint8_t *)"bob", 3), -EBUSY);
	assert_int_equal(vp_space_release(cmd, (const uint8_t *)"nobody", 6), -ENOENT);
	assert_int_equal(vp_space_release(cmd, (const uint8_t *)"alice", 5), 0);
	assert_int_equal(vp_space_release(cmd, (const uint8_t *)"alice", 5), -ENOENT);
	vp_space_close(cmd);
	/* .2 is free again: the next new client gets it */
	assert_int_equal(inst_connect(&f->a, "carol", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_false(lease_of(&f->a, "alice", 0, NULL));
}

static void import__each_rule__reported_and_nothing_else_changed(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	struct vp_addr a;
	struct vp_lease_rec r;
	const char *why;
	struct vp_space *s;

	inst_open(f, &f->a, "udp");
	s = f->a.space;
	assert_int_equal(inst_connect(&f->a, "bob", &g), 0);	/* 10.8.0.2 */
	a = tl_addr("10.8.0.7");
	assert_int_equal(vp_space_import(s, (const uint8_t *)"dave", 4, &a, NULL, &why), 0);
	assert_null(why);
	assert_true(lease_of(&f->a, "dave", 0, &r));
	assert_int_equal(r.state, VP_LEASE_HELD);
	assert_int_equal(r.since, 1000000);
	assert_int_equal(vp_space_import(s, (const uint8_t *)"dave", 4, &a, NULL, &why), -EEXIST);
	a = tl_addr("10.8.0.2");
	assert_int_equal(vp_space_import(s, (const uint8_t *)"erin", 4, &a, NULL, &why),
			 -EADDRINUSE);
	a = tl_addr("192.0.2.1");
	assert_int_equal(vp_space_import(s, (const uint8_t *)"erin", 4, &a, NULL, &why), -EDOM);
	assert_string_equal(why, "outside every pool");
	a = tl_addr("10.8.0.150");
	assert_int_equal(vp_space_import(s, (const uint8_t *)"erin", 4, &a, NULL, &why), -EDOM);
	assert_string_equal(why, "outside the pool's range");
	a = tl_addr("10.8.0.10");
	assert_int_equal(vp_space_import(s, (const uint8_t *)"erin", 4, &a, NULL, &why), -EDOM);
	assert_string_equal(why, "excluded");
	a = tl_addr("10.8.0.50");
	assert_int_equal(vp_space_import(s, (const uint8_t *)"erin", 4, &a, NULL, &why), -EDOM);
	assert_string_equal(why, "reserved for client vip");
	a = tl_addr("10.8.0.1");
	assert_int_equal(vp_space_import(s, (const uint8_t *)"erin", 4, &a, NULL, &why), -EDOM);
	assert_string_equal(why, "a server address");
	assert_false(lease_of(&f->a, "erin", 0, NULL));
	assert_int_equal(vp_space_leases(s), 2);
	/* the imported client gets its address; nobody else does */
	assert_int_equal(inst_connect(&f->a, "dave", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.7");
	assert_true(g.sticky);
}

/* ---- instances ------------------------------------------------------------------ */

static void register__name_live_elsewhere__eaddrinuse_with_its_pid(void **state)
{
	struct fx *f = *state;
	pid_t live = 0;

	inst_open(f, &f->a, "udp");
	inst_open(f, &f->b, NULL);
	assert_int_equal(vp_space_register(f->b.space, "udp", 0, "", &live), -EADDRINUSE);
	assert_int_equal(live, getpid());
	assert_int_equal(vp_space_register(f->b.space, "tcp", 0, "", &live), 0);
	assert_string_equal(vp_space_instance_name(f->b.space), "tcp");
	assert_true(vp_space_others_alive(f->b.space));
	assert_int_equal(vp_space_instances_seen(f->b.space), 2);
	inst_close(&f->a);
	assert_false(vp_space_others_alive(f->b.space));
	inst_open(f, &f->a, "udp");	/* a stopped name is free again */
}

static void close__clean_stop__sessions_held_and_no_crash_reported(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	struct vp_lease_rec r;

	inst_open(f, &f->a, "udp");
	inst_open(f, &f->b, "tcp");
	assert_int_equal(inst_connect(&f->a, "alice", &g), 0);
	f->a.world.now += 10;
	inst_close(&f->a);
	assert_int_equal(inst_connect(&f->b, "bob", &g), 0);
	assert_true(lease_of(&f->b, "alice", 0, &r));
	assert_int_equal(r.state, VP_LEASE_HELD);
	assert_int_equal(r.since, 1000010);
	assert_int_equal(f->b.world.events[VP_EV_CRASH_HELD], 0);
}

static void crash__noticed_at_the_next_change__sessions_held_and_announced(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	struct vp_lease_rec r;

	inst_open(f, &f->a, "udp");
	inst_open(f, &f->b, "tcp");
	assert_int_equal(inst_connect(&f->a, "alice", &g), 0);
	assert_int_equal(inst_connect(&f->a, "alice", &g), 0);	/* duplicate-cn: slot 1 */
	assert_int_equal(g.slot, 1);
	assert_int_equal(inst_connect(&f->b, "bob", &g), 0);
	vp_space_abandon(f->a.space);	/* SIGKILL */
	f->a.space = NULL;
	f->b.world.now += 30;
	assert_int_equal(f->b.world.events[VP_EV_CRASH_HELD], 0);
	assert_int_equal(inst_connect(&f->b, "carol", &g), 0);
	assert_int_equal(f->b.world.events[VP_EV_CRASH_HELD], 2);
	assert_string_equal(f->b.world.last[VP_EV_CRASH_HELD].instance, "udp");
	assert_int_equal(f->b.world.last[VP_EV_CRASH_HELD].duration, 30);
	assert_true(lease_of(&f->b, "alice", 0, &r));
	assert_int_equal(r.state, VP_LEASE_HELD);
	assert_int_equal(r.since, 1000030);
	assert_false(lease_of(&f->b, "alice", 1, NULL));	/* the extra session's is freed */
	assert_true(lease_of(&f->b, "bob", 0, &r));
	assert_int_equal(r.state, VP_LEASE_ONLINE);	/* the live one's stay */
	/* the restarted instance finds them held too */
	inst_open(f, &f->a, "udp");
	assert_true(lease_of(&f->a, "alice", 0, &r));
	assert_int_equal(r.state, VP_LEASE_HELD);
	assert_true(lease_of(&f->a, "bob", 0, &r));
	assert_int_equal(r.state, VP_LEASE_ONLINE);
}

static void crash__at_open__only_dead_instances_sessions_become_held(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	struct vp_lease_rec r;

	inst_open(f, &f->a, "udp");
	inst_open(f, &f->b, "tcp");
	assert_int_equal(inst_connect(&f->a, "alice", &g), 0);
	assert_int_equal(inst_connect(&f->b, "bob", &g), 0);
	vp_space_abandon(f->a.space);
	f->a.space = NULL;
	inst_open(f, &f->a, NULL);
	assert_true(lease_of(&f->a, "alice", 0, &r));
	assert_int_equal(r.state, VP_LEASE_HELD);
	assert_true(lease_of(&f->a, "bob", 0, &r));
	assert_int_equal(r.state, VP_LEASE_ONLINE);
}

static void moving_client__newest_session_owns_the_lease_older_end_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	struct vp_lease_rec r;

	inst_open(f, &f->a, "udp");
	inst_open(f, &f->b, "tcp");
	assert_int_equal(inst_connect(&f->a, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_int_equal(inst_connect(&f->b, "alice", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.2");
	assert_int_equal(g.slot, 0);
	assert_true(g.sticky);
	assert_int_equal(inst_disconnect(&f->a, "alice", 0), VP_DISCONNECT_MOVED);
	assert_true(lease_of(&f->a, "alice", 0, &r));
	assert_int_equal(r.state, VP_LEASE_ONLINE);
	assert_string_equal(vp_space_slot_name(f->a.space, r.instance), "tcp");
	/* a crash of the old instance now takes nothing from the new session */
	vp_space_abandon(f->a.space);
	f->a.space = NULL;
	assert_int_equal(inst_connect(&f->b, "bob", &g), 0);
	assert_int_equal(f->b.world.events[VP_EV_CRASH_HELD], 0);
	assert_int_equal(inst_disconnect(&f->b, "alice", 0), 0);
	assert_true(lease_of(&f->b, "alice", 0, &r));
	assert_int_equal(r.state, VP_LEASE_HELD);
}

static void duplicate_cn__extra_slots_on_two_instances__never_one_address_twice(void **state)
{
	struct fx *f = *state;
	struct vp_grant g1, g2, g3;

	inst_open(f, &f->a, "udp");
	inst_open(f, &f->b, "tcp");
	assert_int_equal(inst_connect(&f->a, "alice", &g1), 0);
	assert_int_equal(inst_connect(&f->a, "alice", &g2), 0);
	assert_int_equal(g2.slot, 1);
	assert_int_equal(inst_connect(&f->b, "alice", &g3), 0);	/* takes slot 0 over */
	assert_int_equal(g3.slot, 0);
	assert_int_equal(inst_connect(&f->b, "alice", &g3), 0);	/* slot 1 is a's */
	assert_int_equal(g3.slot, 2);
	assert_false(vp_addr_eq(&g3.addr4, &g2.addr4));
	assert_false(vp_addr_eq(&g3.addr4, &g1.addr4));
}

/* ---- the journal with several writers ------------------------------------------- */

static struct vp_config *config_copy_pool(const char *dir, const char *range)
{
	struct vp_config *c = tl_config_new(dir);

	c->hold_time = 100;
	tl_add_pool(c, "main", "10.8.0.0/24", range, NULL, NULL, NULL);
	return c;
}

static void config_differs__a_lease_that_fits_only_the_other_is_kept(void **state)
{
	struct fx *f = *state;
	struct vp_config *narrow = config_copy_pool(f->dir, "10.8.0.2-10.8.0.3");
	struct vp_grant g;

	inst_open(f, &f->a, "udp");
	for (int i = 0; i < 5; ++i) {
		char id[8];

		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(inst_connect(&f->a, id, &g), 0);
	}
	/* b reads a config whose range holds two of a's five leases */
	inst_open_with(f, &f->b, narrow, "tcp");
	assert_int_equal(f->b.world.events[VP_EV_LEASE_DROPPED], 0);
	assert_int_equal(vp_space_leases(f->b.space), 5);
	assert_int_equal(inst_connect(&f->a, "c5", &g), 0);	/* a foreign lease that misfits */
	assert_int_equal(inst_connect(&f->b, "x", &g), -ENOSPC);
	assert_int_equal(vp_space_leases(f->b.space), 6);
	inst_close(&f->b);
	inst_close(&f->a);
	/* alone, it drops what does not fit */
	inst_open_with(f, &f->b, narrow, "tcp");
	assert_int_equal(f->b.world.events[VP_EV_LEASE_DROPPED], 4);
	inst_close(&f->b);
	vp_config_free(narrow);
	free(narrow);
}

static void compaction__by_one__the_other_follows_the_new_journal(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;

	inst_open(f, &f->b, "tcp");
	compact_min = 8;	/* a compacts whenever its records pass its leases */
	inst_open(f, &f->a, "udp");
	compact_min = 1u << 30;
	for (int round = 0; round < 3; ++round) {
		for (int i = 0; i < 20; ++i) {
			char id[8];

			if (round && i == 7)
				continue;	/* released */
			snprintf(id, sizeof(id), "c%d", i);
			assert_int_equal(inst_connect(&f->a, id, &g), 0);
			assert_int_equal(inst_disconnect(&f->a, id, 0), 0);
		}
		if (round == 0) {
			struct vp_space *cmd = NULL;
			struct tl_world w = { .now = 1000000 };
			struct vp_space_options o = tl_options(f->config, &w);
			struct vp_store_report report;
			pid_t holder;

			/* the command releases one; then a compacts twice */
			assert_int_equal(vp_space_open(&cmd, &o, &report, &holder), 0);
			assert_int_equal(vp_space_set_server(cmd, &f->server), 0);
			assert_int_equal(vp_space_release(cmd, (const uint8_t *)"c7", 2), 0);
			vp_space_close(cmd);
			assert_int_equal(vp_space_sync(f->a.space), 0);
			assert_false(lease_of(&f->a, "c7", 0, NULL));
		}
	}
	/* b read nothing meanwhile: it follows MOVED, or reads the journal
	 * again when it was compacted twice */
	assert_false(lease_of(&f->a, "c7", 0, NULL));
	assert_int_equal(vp_space_sync(f->b.space), 0);
	assert_false(lease_of(&f->b, "c7", 0, NULL));
	assert_int_equal(vp_space_leases(f->b.space), 19);
	assert_int_equal(inst_connect(&f->b, "new", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.9");	/* c7's; the others are held */
	assert_int_equal(vp_space_leases(f->b.space), 20);
	assert_false(lease_of(&f->b, "c7", 0, NULL));
	assert_int_equal(inst_connect(&f->a, "newer", &g), 0);
	assert_int_equal(vp_space_leases(f->a.space), 21);
}

/* The change counter every writer bumps before it changes the journal
 * (the lock file's second 4 KiB). */
static void bump_change_counter(const char *dir)
{
	char path[4096];
	uint64_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &n, sizeof(n), 4096), sizeof(n));
	n++;
	assert_int_equal(pwrite(fd, &n, sizeof(n), 4096), sizeof(n));
	close(fd);
}

static void torn_tail__of_a_dead_writer__cut_before_the_next_append(void **state)
{
	struct fx *f = *state;
	struct vp_grant g;
	char path[4096];
	int fd;

	inst_open(f, &f->a, "udp");
	inst_open(f, &f->b, "tcp");
	assert_int_equal(inst_connect(&f->a, "alice", &g), 0);
	snprintf(path, sizeof(path), "%s/leases.journal", f->dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	bump_change_counter(f->dir);	/* as a writer does before it writes */
	assert_int_equal(write(fd, "\x30\0\0\0\1\2", 6), 6);	/* a record cut short */
	close(fd);
	assert_int_equal(inst_connect(&f->b, "bob", &g), 0);
	assert_int_equal(inst_connect(&f->a, "carol", &g), 0);
	assert_string_equal(fmt(&g.addr4), "10.8.0.4");
	inst_close(&f->a);
	inst_close(&f->b);
	inst_open(f, &f->a, NULL);
	assert_int_equal(vp_space_leases(f->a.space), 3);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(connect__on_two_instances__never_the_same_address),
		T(connect__sticky_address__kept_whichever_instance_it_reaches),
		T(release__by_the_command__the_instance_sees_the_address_free),
		T(import__each_rule__reported_and_nothing_else_changed),
		T(register__name_live_elsewhere__eaddrinuse_with_its_pid),
		T(close__clean_stop__sessions_held_and_no_crash_reported),
		T(crash__noticed_at_the_next_change__sessions_held_and_announced),
		T(crash__at_open__only_dead_instances_sessions_become_held),
		T(moving_client__newest_session_owns_the_lease_older_end_changes_nothing),
		T(duplicate_cn__extra_slots_on_two_instances__never_one_address_twice),
		T(config_differs__a_lease_that_fits_only_the_other_is_kept),
		T(compaction__by_one__the_other_follows_the_new_journal),
		T(torn_tail__of_a_dead_writer__cut_before_the_next_append),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
