/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The journal's speed: append 1,000,000 leases, replay them through
 * vp_store_open() and vp_store_read(), compact them; the cost of a put with
 * and without fsync; and, to put those in scale, what this machine takes for a
 * bare system call and for a 60-byte write(2).  Usage: bench_store [LEASES]
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

struct tally {
	uint64_t puts, dels, sum;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_put(void *ud, const struct vp_lease_rec *rec)
{
	struct tally *t = ud;

	t->puts++;
	t->sum += rec->addr4.lo + rec->identity_len;
	return 0;
}

static int on_del(void *ud, const uint8_t *identity, size_t identity_len, uint16_t slot)
{
	struct tally *t = ud;

	t->dels++;
	return 0;
}

static struct vp_lease_rec lease(char *id, size_t size, unsigned i)
{
	struct vp_lease_rec r = {
		.identity = (const uint8_t *)id, .state = VP_LEASE_ONLINE, .sessions = 1,
		.created = 1764000000, .since = 1764000000,
		.addr4 = vp_addr_v4(0x0a000000U + i),
	};

	r.identity_len = (size_t)snprintf(id, size, "client-%06u", i);
	return r;
}

/* Each lease of the bench once more, for compaction. */
struct each_ctx {
	unsigned n;
};

static int each_lease(void *ud, vp_store_emit_fn emit, void *ctx)
{
	const struct each_ctx *e = ud;
	char id[32];

	for (unsigned i = 0; i < e->n; ++i) {
		struct vp_lease_rec r = lease(id, sizeof(id), i);
		int ret = emit(ctx, &r);

		if (ret)
			return ret;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, strerror(-err));
	return 1;
}

static int bench_puts(const char *dir, bool do_fsync, unsigned n, double *secs)
{
	struct vp_store *s;
	char id[32];
	double t0;
	int ret;

	ret = vp_store_open(&s, dir, do_fsync, NULL, NULL, NULL, NULL);
	if (ret)
		return ret;
	t0 = now();
	for (unsigned i = 0; i < n && !ret; ++i) {
		struct vp_lease_rec r = lease(id, sizeof(id), i);

		ret = vp_store_put(s, &r);
	}
	*secs = now() - t0;
	vp_store_close(s);
	return ret;
}

/* The floor under every put: a system call, and an append of a record's size. */
static void machine_baseline(const char *dir)
{
	char path[256], rec[60] = { 0 };
	double t0, sys_ns, write_ns;
	int fd;

	t0 = now();
	for (int i = 0; i < 1000000; ++i)
		syscall(SYS_getppid);
	sys_ns = (now() - t0) * 1e3;
	snprintf(path, sizeof(path), "%s/baseline", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	t0 = now();
	for (int i = 0; i < 200000; ++i)
		if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
			break;
	write_ns = (now() - t0) * 1e9 / 200000;
	close(fd);
	unlink(path);
	printf("machine a system call (getppid) %.0f ns, a 60-byte write(2) %.0f ns\n", sys_ns,
	       write_ns);
}

static int run(const char *dir, unsigned n)
{
	struct tally t = { 0 };
	struct vp_store_replay replay = { .put = on_put, .del = on_del, .ud = &t };
	struct vp_store_report report;
	struct each_ctx each = { n };
	struct vp_store *s;
	char path[256];
	struct stat st;
	double t0, secs;
	int ret;

	machine_baseline(dir);
	ret = bench_puts(dir, false, n, &secs);
	if (ret)
		return fail("put", ret);
	snprintf(path, sizeof(path), "%s/leases.journal", dir);
	stat(path, &st);
	printf("write   %u puts, fsync off: %.3f s, %.0f ns/put\n", n, secs, secs * 1e9 / n);
	printf("journal %lld bytes, %.1f bytes/record\n", (long long)st.st_size,
	       (double)(st.st_size - 12) / n);

	t0 = now();
	ret = vp_store_open(&s, dir, false, NULL, &replay, &report, NULL);
	if (ret)
		return fail("open", ret);
	printf("open    replayed %llu records: %.3f s\n", (unsigned long long)report.records,
	       now() - t0);

	t0 = now();
	ret = vp_store_compact(s, each_lease, &each);
	if (ret)
		return fail("compact", ret);
	printf("compact %u leases: %.3f s\n", n, now() - t0);
	vp_store_close(s);

	t.puts = 0;
	t0 = now();
	ret = vp_store_read(dir, &replay, &report);
	if (ret)
		return fail("read", ret);
	printf("read    replayed %llu records without the lock: %.3f s\n",
	       (unsigned long long)report.records, now() - t0);

	snprintf(path, sizeof(path), "%s/fsync", dir);
	ret = bench_puts(path, true, 1000, &secs);
	if (ret)
		return fail("put with fsync", ret);
	printf("write   1000 puts, fsync on: %.3f s, %.0f us/put\n", secs, secs * 1e6 / 1000);
	return t.puts == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000000;
	char dir[] = "/tmp/bench_store.XXXXXX";
	int ret;

	if (!n) {
		fprintf(stderr, "usage: bench_store [LEASES]\n");
		return 2;
	}
	if (!mkdtemp(dir))
		return fail(dir, -errno);
	ret = run(dir, n);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return ret;
}
