/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "plugin/metrics.h"

static const char *const reasons[] = {
	"exhausted", "no-pool", "no-identity", "bad-identity", "store-error",
	"no-server-address", "internal", "other",
};
#define N_REASONS (sizeof(reasons) / sizeof(reasons[0]))

/* What one rewrite shows. */
struct figures {
	struct vp_pool_usage *pools, *routers;
	uint64_t connects, disconnects, reclaims, rejects[N_REASONS];
	uint64_t leases;
};

struct vp_metrics {
	const struct vp_config *config;
	const struct vp_fs *fs;
	char *tmp_path;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool dirty, stop, running;
	bool idle;			/* the writer waits for a change (under lock) */
	struct figures now;		/* under lock */
	struct figures copy;		/* the writer's */
	struct vp_strbuf text;
	int error;			/* of the last rewrite (under lock) */
	int reported;			/* error last told by vp_metrics_report */
};

/* ---- the text ------------------------------------------------------------ */

void vp_metrics_label(struct vp_strbuf *b, const char *value)
{
	const uint8_t *v = (const uint8_t *)value;

	for (size_t i = 0; v[i]; ++i) {
		size_t n = v[i] < 0x80 ? 1 : (v[i] & 0xe0) == 0xc0 ? 2 : (v[i] & 0xf0) == 0xe0 ? 3 :
					     (v[i] & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = n > 0 && !(n == 2 && v[i] < 0xc2);

		for (size_t k = 1; ok && k < n; ++k)
			ok = (v[i + k] & 0xc0) == 0x80;
		if (!ok) {
			vp_strbuf_add(b, "\xef\xbf\xbd", 3);
		} else if (v[i] == '\\' || v[i] == '"') {
			char esc[2] = { '\\', (char)v[i] };

			vp_strbuf_add(b, esc, 2);
		} else if (v[i] == '\n') {
			vp_strbuf_add(b, "\\n", 2);
		} else {
			vp_strbuf_add(b, &v[i], n);
			i += n - 1;
		}
	}
}

static void help(struct vp_strbuf *b, const char *name, const char *type, const char *text)
{
	vp_strbuf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void by_pool(struct vp_strbuf *b, const char *metric, const char *pool, const char *state,
		    uint64_t value)
{
	vp_strbuf_addf(b, "%s{pool=\"", metric);
	vp_metrics_label(b, pool);
	if (state)
		vp_strbuf_addf(b, "\",state=\"%s", state);
	vp_strbuf_addf(b, "\"} %llu\n", (unsigned long long)value);
}

static void area_lines(struct vp_strbuf *b, const char *base, const char *name, const char *what,
		       bool routers, const struct vp_config *c, const struct vp_pool_usage *u)
{
	size_t n = routers ? c->n_routers : c->n_pools;

	if (!n)
		return;
	vp_strbuf_addf(b, "# HELP %s %s a %s hands out, after exclusions and reservations.\n# TYPE %s gauge\n",
		       name, what, routers ? "router pool" : "pool", name);
	for (size_t i = 0; i < n; ++i)
		by_pool(b, name, routers ? c->routers[i].name : c->pools[i].name, NULL, u[i].size);
	vp_strbuf_addf(b, "# HELP %s %s of a %s by state: online, held (kept for a disconnected client), free.\n# TYPE %s gauge\n",
		       base, what, routers ? "router pool" : "pool", base);
	for (size_t i = 0; i < n; ++i) {
		const char *pool = routers ? c->routers[i].name : c->pools[i].name;

		by_pool(b, base, pool, "online", u[i].online);
		by_pool(b, base, pool, "held", u[i].held);
		by_pool(b, base, pool, "free", u[i].free);
	}
}

static void render(struct vp_strbuf *b, const struct vp_config *c, const struct figures *f)
{
	vp_strbuf_reset(b);
	area_lines(b, "vpnpool_pool_addresses", "vpnpool_pool_size", "Addresses", false, c, f->pools);
	area_lines(b, "vpnpool_router_pool_subnets", "vpnpool_router_pool_size", "Subnets", true, c,
		   f->routers);
	help(b, "vpnpool_leases", "gauge", "Leases in the state, online and held.");
	vp_strbuf_addf(b, "vpnpool_leases %llu\n", (unsigned long long)f->leases);
	help(b, "vpnpool_connects_total", "counter", "Clients given an address since the plugin started.");
	vp_strbuf_addf(b, "vpnpool_connects_total %llu\n", (unsigned long long)f->connects);
	help(b, "vpnpool_disconnects_total", "counter", "Sessions ended since the plugin started.");
	vp_strbuf_addf(b, "vpnpool_disconnects_total %llu\n", (unsigned long long)f->disconnects);
	help(b, "vpnpool_rejects_total", "counter", "Clients refused since the plugin started, by reason.");
	for (size_t i = 0; i < N_REASONS; ++i)
		vp_strbuf_addf(b, "vpnpool_rejects_total{reason=\"%s\"} %llu\n", reasons[i],
			       (unsigned long long)f->rejects[i]);
	help(b, "vpnpool_reclaims_total", "counter",
	     "Held leases given to another client since the plugin started.");
	vp_strbuf_addf(b, "vpnpool_reclaims_total %llu\n", (unsigned long long)f->reclaims);
}

/* The temporary file is made anew (a leftover one, or a symlink put in its
 * place, is removed first) and renamed over the path: no write ever goes
 * through a symlink. */
static int write_file(struct vp_metrics *m)
{
	const struct vp_fs *fs = m->fs;
	int fd, ret = 0;
	ssize_t n;

	render(&m->text, m->config, &m->copy);
	if (m->text.oom)
		return -ENOMEM;
	fs->unlink(fs->ud, m->tmp_path);
	fd = fs->open(fs->ud, m->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
	if (fd < 0)
		return fd;
	n = write(fd, m->text.s, m->text.len);
	if (n != (ssize_t)m->text.len)
		ret = n < 0 ? -errno : -ENOSPC;	/* a short write: the disk is full */
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret)
		ret = fs->rename(fs->ud, m->tmp_path, m->config->metrics_file);
	if (ret)
		fs->unlink(fs->ud, m->tmp_path);
	return ret;
}

/* ---- the writer thread ----------------------------------------------------- */

static void copy_figures(struct vp_metrics *m)
{
	struct vp_pool_usage *p = m->copy.pools, *r = m->copy.routers;

	memcpy(p, m->now.pools, m->config->n_pools * sizeof(*p));
	memcpy(r, m->now.routers, m->config->n_routers * sizeof(*r));
	m->copy = m->now;
	m->copy.pools = p;
	m->copy.routers = r;
}

static void *writer(void *arg)
{
	struct vp_metrics *m = arg;
	struct timespec until;
	int ret;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (!m->dirty && !m->stop) {
			m->idle = true;
			pthread_cond_wait(&m->wake, &m->lock);
		}
		m->idle = false;
		if (!m->dirty)
			break;
		copy_figures(m);
		m->dirty = false;
		pthread_mutex_unlock(&m->lock);
		ret = write_file(m);
		pthread_mutex_lock(&m->lock);
		m->error = ret;
		/* At most one rewrite a second (a stop cuts the pause short). */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 1;
		while (!m->stop && pthread_cond_timedwait(&m->wake, &m->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* Under lock: the pools' figures now. */
static void take_figures(struct vp_metrics *m, const struct vp_space *space)
{
	for (size_t i = 0; i < m->config->n_pools; ++i)
		vp_space_pool_usage(space, i, &m->now.pools[i]);
	for (size_t i = 0; i < m->config->n_routers; ++i)
		vp_space_router_usage(space, i, &m->now.routers[i]);
	m->now.leases = vp_space_leases(space);
}

static void metrics_free(struct vp_metrics *m)
{
	free(m->now.pools);
	free(m->now.routers);
	free(m->copy.pools);
	free(m->copy.routers);
	free(m->tmp_path);
	vp_strbuf_free(&m->text);
	free(m);
}

int vp_metrics_open(struct vp_metrics **out, const struct vp_config *config,
		    const struct vp_space *space, const struct vp_fs *fs)
{
	struct vp_metrics *m = calloc(1, sizeof(*m));
	size_t np = config->n_pools + 1, nr = config->n_routers + 1;
	int ret = -ENOMEM;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->config = config;
	m->fs = vp_fs_or_direct(fs);
	m->now.pools = calloc(np, sizeof(struct vp_pool_usage));
	m->now.routers = calloc(nr, sizeof(struct vp_pool_usage));
	m->copy.pools = calloc(np, sizeof(struct vp_pool_usage));
	m->copy.routers = calloc(nr, sizeof(struct vp_pool_usage));
	if (asprintf(&m->tmp_path, "%s.tmp", config->metrics_file) < 0)
		m->tmp_path = NULL;
	if (!m->now.pools || !m->now.routers || !m->copy.pools || !m->copy.routers || !m->tmp_path)
		goto out_free;
	take_figures(m, space);
	copy_figures(m);
	ret = write_file(m);
	if (ret)
		goto out_free;
	pthread_mutex_init(&m->lock, NULL);
	{
		/* The one-second pause on the monotonic clock: a clock set back
		 * must not stop the file for as long. */
		pthread_condattr_t attr;

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&m->wake, &attr);
		pthread_condattr_destroy(&attr);
	}
	*out = m;
	return 0;

out_free:
	metrics_free(m);
	return ret;
}

static size_t reason_index(const char *reason)
{
	for (size_t i = 0; reason && i < N_REASONS; ++i)
		if (!strcmp(reason, reasons[i]))
			return i;
	return N_REASONS - 1;		/* "other" */
}

enum vp_metrics_kind vp_metrics_kind_of(const char *event)
{
	static const struct {
		const char *name;
		enum vp_metrics_kind kind;
	} kinds[] = {
		{ "start", VP_METRICS_START },		{ "stop", VP_METRICS_STOP },
		{ "connect", VP_METRICS_CONNECT },	{ "disconnect", VP_METRICS_DISCONNECT },
		{ "reclaim", VP_METRICS_RECLAIM },	{ "reject", VP_METRICS_REJECT },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); ++i)
		if (!strcmp(event, kinds[i].name))
			return kinds[i].kind;
	return VP_METRICS_OTHER;
}

/* The writer starts at the first client event, not at open: OpenVPN opens
 * plugins before --daemon forks, and a fork keeps no thread.  Without it
 * (pthread_create failed) the file is written at close only. */
static void writer_start(struct vp_metrics *m)
{
	if (m->running || m->stop)
		return;
	m->running = pthread_create(&m->thread, NULL, writer, m) == 0;
	m->stop = !m->running;		/* do not try again */
}

/* Under lock: the figures changed.  A writer in its one-second pause sees
 * the change when the pause ends: only one waiting for a change needs waking
 * (a system call). */
static void mark_dirty(struct vp_metrics *m)
{
	m->dirty = true;
	if (m->idle) {
		m->idle = false;
		pthread_cond_signal(&m->wake);
	}
}

void vp_metrics_event(struct vp_metrics *m, const struct vp_space *space,
		      const struct vp_metrics_event *ev)
{
	if (!m)
		return;
	if (ev->kind != VP_METRICS_START && ev->kind != VP_METRICS_STOP)
		writer_start(m);
	pthread_mutex_lock(&m->lock);
	switch (ev->kind) {
	case VP_METRICS_CONNECT:
		m->now.connects++;
		break;
	case VP_METRICS_DISCONNECT:
		m->now.disconnects++;
		break;
	case VP_METRICS_RECLAIM:
		m->now.reclaims++;
		break;
	case VP_METRICS_REJECT:
		m->now.rejects[reason_index(ev->reason)]++;
		break;
	case VP_METRICS_OTHER:
	case VP_METRICS_START:
	case VP_METRICS_STOP:
		break;
	}
	if (space)
		take_figures(m, space);
	mark_dirty(m);
	pthread_mutex_unlock(&m->lock);
}

void vp_metrics_update(struct vp_metrics *m, const struct vp_space *space)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	take_figures(m, space);
	if (m->running) {
		mark_dirty(m);
	} else {
		copy_figures(m);
		m->error = write_file(m);
	}
	pthread_mutex_unlock(&m->lock);
}

bool vp_metrics_report(struct vp_metrics *m, int *error)
{
	bool changed;

	if (!m)
		return false;
	pthread_mutex_lock(&m->lock);
	changed = m->error != m->reported;
	*error = m->reported = m->error;
	pthread_mutex_unlock(&m->lock);
	return changed;
}

void vp_metrics_close(struct vp_metrics *m, const struct vp_space *space)
{
	if (!m)
		return;
	if (!m->running) {
		if (space)
			take_figures(m, space);
		copy_figures(m);
		write_file(m);
	} else {
		pthread_mutex_lock(&m->lock);
		if (space)
			take_figures(m, space);
		m->dirty = true;
		m->stop = true;
		pthread_cond_signal(&m->wake);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
	}
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	metrics_free(m);
}
