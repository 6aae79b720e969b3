/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Routes (plugin/routes.h) in a real kernel: the test runs in a network
 * namespace of its own with tun devices it makes, changes routes and reads
 * the main table back through a netlink dump.  Then through the keeper,
 * from a process that dropped to nobody.  Needs root and a tun device
 * (/dev/net/tun, or a node of its own); skipped with the reason otherwise,
 * but under CI=true it must run.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <pwd.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <cmocka.h>

#include "conf/load.h"
#include "plugin/keeper.h"
#include "plugin/routes.h"
#include "testlib.h"

static const char *why_not;	/* the reason the kernel cases are skipped */
static char tun_node[600];	/* /dev/net/tun, or our own node */
static char *scratch;

/* ---- set-up: a namespace, tun devices ---------------------------------------- */

static int open_tun_node(void)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	snprintf(tun_node, sizeof(tun_node), "/dev/net/tun");
	if (fd >= 0 || errno == EBUSY)
		return fd;
	/* No node, or one we may not open: a node of our own. */
	snprintf(tun_node, sizeof(tun_node), "%s/tun", scratch);
	if (mknod(tun_node, S_IFCHR | 0600, makedev(10, 200)))
		return -1;
	return open(tun_node, O_RDWR | O_CLOEXEC);
}

/* A tun device named name, up; its descriptor (the device lives while it
 * is open).  With addr ("10.99.0.1/24") the kernel adds a route of its own
 * for that network. */
static int make_tun(const char *name, const char *addr, unsigned bits)
{
	struct ifreq ifr = { 0 };
	int fd = open(tun_node, O_RDWR | O_CLOEXEC), s;

	assert_true(fd >= 0);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	if (addr) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

		sin->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
		assert_int_equal(ioctl(s, SIOCSIFADDR, &ifr), 0);
		sin->sin_addr.s_addr = htonl(vp_netmask4(bits));
		assert_int_equal(ioctl(s, SIOCSIFNETMASK, &ifr), 0);
	}
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
	return fd;
}

static void link_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

/* Root, a namespace of our own, and a tun device: else why_not says which
 * is missing. */
static void enter_namespace(void)
{
	int fd;

	if (geteuid() != 0) {
		why_not = "not root";
		return;
	}
	if (unshare(CLONE_NEWNET)) {
		why_not = "cannot make a network namespace (unshare CLONE_NEWNET)";
		return;
	}
	scratch = tl_tmpdir();
	chmod(scratch, 0755);
	fd = open_tun_node();
	if (fd < 0) {
		why_not = "no tun device (/dev/net/tun, nor a node of our own)";
		return;
	}
	close(fd);
}

static void need_kernel(void)
{
	if (!why_not)
		return;
	if (getenv("CI") && !strcmp(getenv("CI"), "true"))
		fail_msg("%s (CI=true: these tests must run)", why_not);
	print_message("skipped: %s\n", why_not);
	skip();
}

/* ---- reading the table back ---------------------------------------------------- */

struct seen {
	struct vp_prefix dst;
	int ifindex;			/* where it goes, 0: not found */
	unsigned protocol;
};

static void find(void *ud, const struct vp_route *r)
{
	struct seen *s = ud;

	if (r->dst.len == s->dst.len && vp_addr_eq(&r->dst.addr, &s->dst.addr)) {
		s->ifindex = r->ifindex;
		s->protocol = r->protocol;
	}
}

/* Where the main table routes text to (its interface; 0: no route). */
static struct seen route_of(const char *text)
{
	struct seen s = { .dst = tl_prefix(text) };

	assert_int_equal(vp_route_walk(0, find, &s), 0);
	return s;
}

static int ifindex(const char *name)
{
	int i = (int)if_nametoindex(name);

	assert_true(i > 0);
	return i;
}

/* ---- the direct calls ---------------------------------------------------------- */

static void route_add__host_routes_and_subnets__in_the_main_table_as_ours(void **state)
{
	static const char *const dsts[] = { "10.8.1.5/32", "fd00:8::1:5/128", "10.9.77.0/24",
					    "fd00:9:0:77::/64" };
	int fd, tun;

	(void)state;
	need_kernel();
	fd = make_tun("vpt0", NULL, 0);
	tun = ifindex("vpt0");
	for (size_t i = 0; i < 4; ++i) {
		struct vp_prefix p = tl_prefix(dsts[i]);
		struct seen s;

		assert_int_equal(vp_route_add(tun, &p), 0);
		s = route_of(dsts[i]);
		assert_int_equal(s.ifindex, tun);
		assert_int_equal(s.protocol, VP_ROUTE_PROTOCOL);
	}
	for (size_t i = 0; i < 4; ++i) {
		struct vp_prefix p = tl_prefix(dsts[i]);

		assert_int_equal(vp_route_del(tun, &p), 0);
		assert_int_equal(route_of(dsts[i]).ifindex, 0);
		assert_int_equal(vp_route_del(tun, &p), -ESRCH);
	}
	close(fd);
}

static void route_add__to_an_address_routed_elsewhere__moves_it_and_the_old_del_leaves_it(void **state)
{
	static const char *const dsts[] = { "10.8.1.6/32", "fd00:8::1:6/128" };
	int fd0, fd1, tun0, tun1;

	(void)state;
	need_kernel();
	fd0 = make_tun("vpt0", NULL, 0);
	fd1 = make_tun("vpt1", NULL, 0);
	tun0 = ifindex("vpt0");
	tun1 = ifindex("vpt1");
	for (size_t i = 0; i < 2; ++i) {
		struct vp_prefix p = tl_prefix(dsts[i]);

		assert_int_equal(vp_route_add(tun0, &p), 0);
		assert_int_equal(route_of(dsts[i]).ifindex, tun0);
		/* The client moved to the instance on vpt1. */
		assert_int_equal(vp_route_add(tun1, &p), 0);
		assert_int_equal(route_of(dsts[i]).ifindex, tun1);
		/* Its old session ends on vpt0: the new route stays. */
		assert_int_equal(vp_route_del(tun0, &p), -ESRCH);
		assert_int_equal(route_of(dsts[i]).ifindex, tun1);
		/* Again to the same: replaced, not an error. */
		assert_int_equal(vp_route_add(tun1, &p), 0);
		assert_int_equal(vp_route_del(tun1, &p), 0);
	}
	close(fd0);
	close(fd1);
}

static void route_flush__removes_ours_of_that_tun_only(void **state)
{
	struct vp_prefix a = tl_prefix("10.8.1.7/32"), b = tl_prefix("fd00:8::1:7/128"),
			 c = tl_prefix("10.9.1.0/24"), other = tl_prefix("10.8.1.8/32");
	int fd0, fd1, tun0, tun1;

	(void)state;
	need_kernel();
	/* The kernel's own route to 10.99.0.0/24 on vpt0 is not ours. */
	fd0 = make_tun("vpt0", "10.99.0.1", 24);
	fd1 = make_tun("vpt1", NULL, 0);
	tun0 = ifindex("vpt0");
	tun1 = ifindex("vpt1");
	assert_int_equal(route_of("10.99.0.0/24").ifindex, tun0);
	assert_int_equal(vp_route_add(tun0, &a), 0);
	assert_int_equal(vp_route_add(tun0, &b), 0);
	assert_int_equal(vp_route_add(tun0, &c), 0);
	assert_int_equal(vp_route_add(tun1, &other), 0);
	assert_int_equal(vp_route_flush(tun0, NULL, NULL), 3);
	assert_int_equal(route_of("10.8.1.7/32").ifindex, 0);
	assert_int_equal(route_of("fd00:8::1:7/128").ifindex, 0);
	assert_int_equal(route_of("10.9.1.0/24").ifindex, 0);
	assert_int_equal(route_of("10.99.0.0/24").ifindex, tun0);
	assert_int_equal(route_of("10.8.1.8/32").ifindex, tun1);
	assert_int_equal(vp_route_flush(tun0, NULL, NULL), 0);
	assert_int_equal(vp_route_flush(0, NULL, NULL), 1);
	assert_int_equal(route_of("10.8.1.8/32").ifindex, 0);
	close(fd0);
	close(fd1);
}

static void route_link_is_tun__tells_tun_from_other_links(void **state)
{
	int fd;

	(void)state;
	need_kernel();
	fd = make_tun("vpt0", NULL, 0);
	assert_int_equal(vp_route_link_is_tun(ifindex("vpt0")), 1);
	assert_int_equal(vp_route_link_is_tun(ifindex("lo")), 0);
	assert_int_equal(vp_route_link_is_tun(999999), -ENODEV);
	close(fd);
}

static void route_add__to_a_tun_that_is_down_or_gone__fails(void **state)
{
	struct vp_prefix p = tl_prefix("10.8.1.9/32");
	int fd, tun;

	(void)state;
	need_kernel();
	fd = make_tun("vpt0", NULL, 0);
	tun = ifindex("vpt0");
	close(fd);
	assert_int_equal(vp_route_add(tun, &p), -ENODEV);
	assert_int_equal(route_of("10.8.1.9/32").ifindex, 0);
}

/* ---- through the keeper, after the drop ----------------------------------------- */

static char conf_path[700];

static void write_conf(void)
{
	FILE *f;

	snprintf(conf_path, sizeof(conf_path), "%s/vpnpool.conf", scratch);
	f = fopen(conf_path, "w");
	assert_non_null(f);
	fprintf(f, "state-dir = \"%s/state\"\nusage-log = \"\"\n"
		"pool \"p\" {\n network = \"10.8.0.0/16\"\n network6 = \"fd00:8::/64\"\n}\n"
		"router-pool \"r\" {\n network = \"10.9.0.0/16\"\n prefix = 24\n}\n"
		"client \"alice\" {\n address = \"10.8.0.50\"\n}\n", scratch);
	fclose(f);
}

enum {
	R_DIRECT_REFUSED = 1, R_ADD = 2, R_DEL = 4, R_OUTSIDE_REFUSED = 8, R_NOT_TUN_REFUSED = 16,
	R_FLUSH = 32, R_SUBNET6_ADD = 64,
};

/* As OpenVPN after start: nobody; routes only through the keeper. */
static int child_after_drop(int tun)
{
	struct vp_prefix host = tl_prefix("10.8.3.4/32"), host6 = tl_prefix("fd00:8::3:4/128"),
			 subnet = tl_prefix("10.9.5.0/24"), outside = tl_prefix("192.0.2.1/32"),
			 wide = tl_prefix("10.0.0.0/8");
	const struct vp_route_ops *ops;
	struct passwd *pw = getpwnam("nobody");
	struct vp_keeper *k;
	bool reused;
	int result = 0;

	if (!pw || vp_keeper_get(&k, conf_path, NULL, &reused) || reused)
		return 0;
	ops = vp_keeper_routes(k);
	if (setgroups(0, NULL) || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
		return 0;
	if (vp_route_add(tun, &host) == -EPERM)
		result |= R_DIRECT_REFUSED;
	if (ops->add(ops->ud, tun, &host) == 0 && ops->add(ops->ud, tun, &subnet) == 0 &&
	    route_of("10.8.3.4/32").ifindex == tun)
		result |= R_ADD;
	if (ops->add(ops->ud, tun, &host6) == 0 && route_of("fd00:8::3:4/128").ifindex == tun)
		result |= R_SUBNET6_ADD;
	if (ops->del(ops->ud, tun, &host) == 0 && route_of("10.8.3.4/32").ifindex == 0 &&
	    ops->del(ops->ud, tun, &host) == -ESRCH)
		result |= R_DEL;
	if (ops->add(ops->ud, tun, &outside) == -EPERM && ops->add(ops->ud, tun, &wide) == -EPERM &&
	    route_of("192.0.2.1/32").ifindex == 0)
		result |= R_OUTSIDE_REFUSED;
	if (ops->add(ops->ud, ifindex("lo"), &host) == -EPERM &&
	    ops->flush(ops->ud, ifindex("lo")) == -EPERM)
		result |= R_NOT_TUN_REFUSED;
	if (ops->flush(ops->ud, tun) == 3 && route_of("10.9.5.0/24").ifindex == 0 &&
	    route_of("fd00:8::3:4/128").ifindex == 0)
		result |= R_FLUSH;
	vp_keeper_put(k);
	return result;
}

static void keeper__after_the_drop__changes_routes_inside_the_config_on_a_tun_only(void **state)
{
	struct vp_prefix mine = tl_prefix("10.8.200.1/32"), foreign = tl_prefix("198.51.100.0/24"),
			 on_lo = tl_prefix("10.8.7.7/32");
	int fd, tun, status;
	pid_t pid;

	(void)state;
	need_kernel();
	if (!getpwnam("nobody"))
		skip();
	write_conf();
	fd = make_tun("vpt0", NULL, 0);
	tun = ifindex("vpt0");
	/* A route of ours outside the config: the keeper's flush leaves it. */
	assert_int_equal(vp_route_add(tun, &foreign), 0);
	/* And one inside: the child's flush removes it with its two. */
	assert_int_equal(vp_route_add(tun, &mine), 0);
	/* One of ours on another kind of link (lo, brought up): the keeper
	 * never flushes it. */
	link_up("lo");
	assert_int_equal(vp_route_add(ifindex("lo"), &on_lo), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsetenv(VP_KEEPER_ENV);
		_exit(child_after_drop(tun));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status),
			 R_DIRECT_REFUSED | R_ADD | R_DEL | R_OUTSIDE_REFUSED | R_NOT_TUN_REFUSED |
			 R_SUBNET6_ADD | R_FLUSH);
	assert_int_equal(route_of("198.51.100.0/24").ifindex, tun);
	assert_int_equal(route_of("10.8.200.1/32").ifindex, 0);
	assert_int_equal(route_of("10.8.7.7/32").ifindex, ifindex("lo"));
	assert_int_equal(vp_route_del(ifindex("lo"), &on_lo), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(route_add__host_routes_and_subnets__in_the_main_table_as_ours),
		cmocka_unit_test(route_add__to_an_address_routed_elsewhere__moves_it_and_the_old_del_leaves_it),
		cmocka_unit_test(route_flush__removes_ours_of_that_tun_only),
		cmocka_unit_test(route_link_is_tun__tells_tun_from_other_links),
		cmocka_unit_test(route_add__to_a_tun_that_is_down_or_gone__fails),
		cmocka_unit_test(keeper__after_the_drop__changes_routes_inside_the_config_on_a_tun_only),
	};
	int ret;

	enter_namespace();
	if (why_not && !(getenv("CI") && !strcmp(getenv("CI"), "true"))) {
		printf("SKIP: %s\n", why_not);
		ret = 77;	/* automake's "skipped" */
		goto out;
	}
	ret = cmocka_run_group_tests(tests, NULL, NULL);
out:
	if (scratch) {
		tl_rmtree(scratch);
		free(scratch);
	}
	return ret;
}
