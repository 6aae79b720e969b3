/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * openvpn-plugin-vpnpool: the thin glue between OpenVPN's plugin API (v3)
 * and the engine.  One context per plugin instance, one session per client
 * (constructor/destructor); a session's lease is ended exactly once, by
 * CLIENT_DISCONNECT or by the destructor, whichever comes first.  The
 * server's tun addresses come from UP's env, or failing that from the first
 * connect's.
 */
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vp_autoconf.h"
#ifdef HAVE_OPENVPN_SUBDIR_HEADER
#include <openvpn/openvpn-plugin.h>
#else
#include <openvpn-plugin.h>
#endif

#include "conf/load.h"
#include "core/config.h"
#include "core/logfmt.h"
#include "core/space.h"
#include "plugin/defer.h"
#include "plugin/env.h"
#include "plugin/keeper.h"
#include "plugin/lines.h"
#include "plugin/metrics.h"
#include "plugin/once.h"
#include "plugin/routing.h"
#include "plugin/server_conf.h"
#include "plugin/usage.h"

#define VP_EXPORT __attribute__((visibility("default")))
#define NAME "vpnpool"
#define VP_REFUSED_ID_SHOWN 256	/* bytes of an over-long identity logged */

struct vp_plugin {
	plugin_log_t log;
	struct vp_keeper *keeper;	/* NULL: files opened directly */
	const struct vp_fs *fs;		/* the keeper's, or the direct one */
	struct vp_store_io io;
	struct vp_config config;
	struct vp_space *space;		/* the journal; NULL with a store */
	struct vp_defer *defer;		/* the store's worker; NULL: the journal */
	bool has_server;		/* with a store: server learnt */
	char node[256];			/* with a store: this server's node name */
	unsigned *store_percent;	/* with a store: each pool's use (%) as
					 * the last connect to it saw, for warn-at */
	struct vp_usage *usage;
	struct vp_metrics *metrics;	/* NULL: metrics-file off */
	struct vp_server server;
	enum vp_topology auto_without_netmask;	/* topology auto: net30, or p2p from server.conf */
	struct vp_strbuf fields;	/* usage line being built */
	struct vp_metrics_event counted;	/* what the metrics count of it, beyond
						 * its kind (a reject's reason, pool) */
	struct vp_strbuf who;		/* escaped identity for OpenVPN's log */
	bool writer_tried;		/* usage log writer thread started (or failed) */
	/* Thresholds a connect crosses are logged after its own connect line. */
	bool in_connect;
	size_t n_warns;
	struct vp_event warns[8];
	/* Errors said once per site (a failure repeating per client is not
	 * a line per client). */
	struct vp_once store_once[VP_STORE_OP_COUNT], usage_once;
	struct vp_routing routing;	/* host-routes */
	char crash_flushed[VP_DEV_MAX];	/* the dead instance's tun last flushed */
	/* The instance: named by the plugin line, the config, else the tun
	 * device at UP; usage lines name it once another has used the
	 * state-dir (looked up at most once a second until then). */
	char instance[VP_INSTANCE_NAME_MAX];
	bool registered, multi;
	bool fields_named;		/* the line being built names its instance */
	int64_t multi_checked;
};

/*
 * A client's session: only what its disconnect needs to find its lease (the
 * engine hands back the rest then).  An identity of up to SESSION_INLINE
 * bytes lives inside it: one 48-byte block of malloc's per client.
 */
#define SESSION_INLINE 27

struct vp_session {
	uint8_t *identity;		/* inline, or its own block when longer */
	uint16_t identity_len;		/* at most VP_IDENTITY_MAX */
	uint16_t slot;
	bool active;
	uint8_t inline_identity[SESSION_INLINE];
};

/* A session of a store (the plugin's handle has a defer): its connect's
 * ticket while it is pending, then what its end needs. */
struct vp_store_session {
	struct vp_session s;
	struct vp_defer_ticket *ticket;	/* pending connect, or NULL */
	int64_t session;		/* its id in the store */
	struct vp_grant g;		/* what it was given */
	int64_t since;
	char real[VP_REAL_MAX];
	char *id;			/* the identity of a pending connect */
};

static void session_forget(struct vp_session *s)
{
	if (s->identity != s->inline_identity)
		free(s->identity);
	s->identity = NULL;
	s->active = false;
}

static int64_t now(void)
{
	return (int64_t)time(NULL);
}

/* The identity as it may be shown: quoted and escaped when it has to be. */
static const char *who(struct vp_plugin *p, const void *id, size_t len)
{
	vp_strbuf_reset(&p->who);
	vp_logfmt_value(&p->who, id, len);
	return p->who.oom ? "(out of memory)" : p->who.s;
}

/* Why a file cannot be written, for OpenVPN's log. */
static const char *file_error(int err)
{
	if (err == -ELOOP)
		return "it is a symbolic link, which is never followed";
	if (err == -EXDEV)
		return "it is outside OpenVPN's chroot";
	return strerror(-err);
}

/* The usage log's and the metrics file's failures, each told once, and
 * their end. */
static void report_files(struct vp_plugin *p)
{
	struct vp_usage_report r;
	int err;

	while (vp_usage_report(p->usage, &r)) {
		if (r.error)
			p->log(PLOG_ERR, NAME,
			       "cannot %s the usage log %s: %s; holding its lines in memory (%llu so far, up to 64 MiB) and trying again every second",
			       r.opening ? "reopen" : "write", p->config.usage_log,
			       file_error(r.error), (unsigned long long)r.held);
		else
			p->log(PLOG_NOTE, NAME,
			       "the usage log %s is written again: %llu lines held back and written now, %llu lost",
			       p->config.usage_log, (unsigned long long)r.held,
			       (unsigned long long)r.dropped);
	}
	if (vp_metrics_report(p->metrics, &err)) {
		if (err)
			p->log(PLOG_ERR, NAME, "cannot write the metrics file %s: %s; trying again at each change",
			       p->config.metrics_file, file_error(err));
		else
			p->log(PLOG_NOTE, NAME, "the metrics file %s is written again",
			       p->config.metrics_file);
	}
}

/* Whether usage lines name the instance: more than one has used the
 * state-dir (once true, for good). */
static bool name_instance(struct vp_plugin *p)
{
	int64_t t;

	if (p->multi || !p->space || !p->registered)
		return p->multi;
	t = now();
	if (t != p->multi_checked) {
		p->multi_checked = t;
		p->multi = vp_space_instances_seen(p->space) > 1;
	}
	return p->multi;
}

static void usage(struct vp_plugin *p, const char *event)
{
	int ret;

	if ((!strcmp(event, "connect") || !strcmp(event, "disconnect") ||
	     !strcmp(event, "reject")) && !p->fields_named && name_instance(p))
		vp_logfmt_adds(&p->fields, "instance", p->instance);
	p->fields_named = false;
	ret = vp_usage_write(p->usage, now(), event, &p->fields);
	char msg[4400], line[5000];
	enum vp_once_say say;

	if (ret)
		snprintf(msg, sizeof(msg), "cannot write the usage log %s: %s", p->config.usage_log,
			 strerror(-ret));
	say = vp_once_report(&p->usage_once, ret ? msg : NULL, line, sizeof(line));
	if (say != VP_ONCE_QUIET)
		p->log(say == VP_ONCE_FAILED ? PLOG_ERR : PLOG_NOTE, NAME, "%s", line);
	p->counted.kind = vp_metrics_kind_of(event);
	vp_metrics_event(p->metrics, p->space, &p->counted);
	p->counted = (struct vp_metrics_event){ 0 };
	vp_strbuf_reset(&p->fields);
	report_files(p);
}

static void add_addr(struct vp_strbuf *b, const char *key, const struct vp_addr *a)
{
	char text[VP_ADDR_STRLEN];

	if (a->family)
		vp_logfmt_adds(b, key, vp_addr_format(a, text));
}

static void add_prefix(struct vp_strbuf *b, const char *key, const struct vp_prefix *pfx)
{
	char text[VP_PREFIX_STRLEN];

	if (pfx->addr.family)
		vp_logfmt_adds(b, key, vp_prefix_format(pfx, text));
}

/* ---- engine events -------------------------------------------------------- */

/* The line of the config file where the pool or router pool called name
 * starts (0 if none has that name). */
static unsigned pool_line(const struct vp_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_pools; ++i)
		if (!strcmp(c->pools[i].name, name))
			return c->pools[i].line;
	for (size_t i = 0; i < c->n_routers; ++i)
		if (!strcmp(c->routers[i].name, name))
			return c->routers[i].line;
	return 0;
}

/* A stored lease that no longer fits, at open or reload: both logs say
 * whose, what it held and why. */
static void on_dropped(struct vp_plugin *p, const struct vp_event *ev)
{
	struct vp_strbuf held = { 0 };

	add_addr(&held, "address", &ev->address);
	add_addr(&held, "address6", &ev->address6);
	add_prefix(&held, "subnet", &ev->subnet4);
	add_prefix(&held, "subnet6", &ev->subnet6);
	p->log(PLOG_WARN, NAME, "dropped the stored lease of %s (%s): %s (reason=%s)",
	       who(p, ev->identity, ev->identity_len), held.len && !held.oom ? held.s : "-",
	       ev->message, ev->reason);
	vp_strbuf_free(&held);
	vp_logfmt_add(&p->fields, "identity", ev->identity, ev->identity_len);
	add_addr(&p->fields, "address", &ev->address);
	add_addr(&p->fields, "address6", &ev->address6);
	add_prefix(&p->fields, "subnet", &ev->subnet4);
	add_prefix(&p->fields, "subnet6", &ev->subnet6);
	vp_logfmt_adds(&p->fields, "reason", ev->reason);
	usage(p, "drop");
}

/* Another instance died with sessions online: each ends here (held, or
 * freed for an extra duplicate-cn session), as a disconnect with
 * reason=crash. */
static void on_crash(struct vp_plugin *p, const struct vp_event *ev)
{
	char a[VP_ADDR_STRLEN];

	p->log(PLOG_NOTE, NAME, "instance %s is gone: session of %s (%s) ended, its lease %s",
	       ev->instance, who(p, ev->identity, ev->identity_len),
	       ev->address.family ? vp_addr_format(&ev->address, a) : "-",
	       ev->freed ? "freed" : "held");
	vp_logfmt_add(&p->fields, "identity", ev->identity, ev->identity_len);
	if (ev->pool)
		vp_logfmt_adds(&p->fields, "pool", ev->pool);
	add_addr(&p->fields, "address", &ev->address);
	add_addr(&p->fields, "address6", &ev->address6);
	add_prefix(&p->fields, "subnet", &ev->subnet4);
	add_prefix(&p->fields, "subnet6", &ev->subnet6);
	vp_logfmt_addu(&p->fields, "duration", ev->duration > 0 ? (unsigned long long)ev->duration : 0);
	vp_logfmt_adds(&p->fields, "reason", "crash");
	vp_logfmt_adds(&p->fields, "instance", ev->instance && *ev->instance ? ev->instance : "-");
	p->fields_named = true;
	p->multi = true;	/* another instance was there */
	usage(p, "disconnect");
	/* Its routes (on a tun that outlived it: persist-tun, --mktun): once
	 * per dead instance noticed. */
	if (ev->dev && *ev->dev && strcmp(ev->dev, p->crash_flushed)) {
		snprintf(p->crash_flushed, sizeof(p->crash_flushed), "%s", ev->dev);
		vp_routing_flush_dev(&p->routing, ev->dev);
	}
}

/* A write or compaction failing, or working again: once per change. */
static void on_store(struct vp_plugin *p, const struct vp_event *ev)
{
	char line[1024];
	enum vp_once_say say = vp_once_report(&p->store_once[ev->op], ev->error ? ev->message : NULL,
					      line, sizeof(line));

	if (say != VP_ONCE_QUIET)
		p->log(say == VP_ONCE_FAILED ? PLOG_ERR : PLOG_NOTE, NAME, "state directory %s: %s",
		       p->config.state_dir, line);
}

static void on_event(void *ud, const struct vp_event *ev)
{
	struct vp_plugin *p = ud;
	char a[VP_ADDR_STRLEN], sn[VP_PREFIX_STRLEN], sn6[VP_PREFIX_STRLEN];

	switch (ev->type) {
	case VP_EV_RECLAIM:
		vp_usage_reclaim_fields(&p->fields, ev);
		p->log(PLOG_NOTE, NAME, "pool %s: reclaiming %s%s%s%s%s from %s, offline longest",
		       ev->pool, ev->address.family ? vp_addr_format(&ev->address, a) : "-",
		       ev->subnet4.addr.family ? " and subnet " : "",
		       ev->subnet4.addr.family ? vp_prefix_format(&ev->subnet4, sn) : "",
		       ev->subnet6.addr.family ? " and subnet " : "",
		       ev->subnet6.addr.family ? vp_prefix_format(&ev->subnet6, sn6) : "",
		       who(p, ev->from, ev->from_len));
		usage(p, "reclaim");
		break;
	case VP_EV_WARN:
		if (p->in_connect && p->n_warns < sizeof(p->warns) / sizeof(p->warns[0])) {
			p->warns[p->n_warns++] = *ev;
			break;
		}
		vp_logfmt_adds(&p->fields, "pool", ev->pool);
		vp_logfmt_addu(&p->fields, "in_use", ev->in_use);
		vp_logfmt_addu(&p->fields, "size", ev->size);
		vp_logfmt_addu(&p->fields, "percent", ev->percent);
		p->log(PLOG_WARN, NAME, "pool %s is %u%% full: %llu of %llu addresses in use",
		       ev->pool, ev->percent, (unsigned long long)ev->in_use,
		       (unsigned long long)ev->size);
		usage(p, "warn");
		break;
	case VP_EV_POOL_UNUSABLE:
		p->log(PLOG_ERR, NAME, "%s:%u: pool %s is not used: %s", p->config.path,
		       pool_line(&p->config, ev->pool), ev->pool, ev->message);
		break;
	case VP_EV_LEASE_DROPPED:
		on_dropped(p, ev);
		break;
	case VP_EV_STORE:
		on_store(p, ev);
		break;
	case VP_EV_RESERVATION_UNUSABLE:
		p->log(PLOG_ERR, NAME, "%s: client %s: %s", p->config.path,
		       who(p, ev->identity, ev->identity_len), ev->message);
		break;
	case VP_EV_CRASH_HELD:
		on_crash(p, ev);
		break;
	}
}

/* ---- host-routes ---------------------------------------------------------- */

static void routing_log(void *ud, bool error, const char *line)
{
	struct vp_plugin *p = ud;

	p->log(error ? PLOG_ERR : PLOG_NOTE, NAME, "%s", line);
}

/* The tun, from any call's env ("dev": UP's, a connect's). */
static void routing_learn_dev(struct vp_plugin *p, const char *const *envp)
{
	vp_routing_set_dev(&p->routing, vp_env_get(envp, "dev"));
}

/* Every session of this instance online in the engine, for the routing. */
struct each_online {
	struct vp_routing *r;
	void (*add)(struct vp_routing *r, const struct vp_routing_dst *d);
};

static int route_online(void *ud, const struct vp_lease_rec *rec)
{
	struct each_online *e = ud;

	e->add(e->r, &(struct vp_routing_dst){ .addr4 = rec->addr4, .addr6 = rec->addr6,
					       .subnet4 = rec->subnet4, .subnet6 = rec->subnet6 });
	return 0;
}

static void routing_each_online(void *ud, struct vp_routing *r,
				void (*add)(struct vp_routing *r, const struct vp_routing_dst *d))
{
	struct vp_plugin *p = ud;
	struct each_online e = { r, add };

	if (p->space)
		vp_space_each_online(p->space, route_online, &e);
}

/* host-routes as configured, through the keeper once OpenVPN has dropped
 * its privileges. */
static void routing_init(struct vp_plugin *p)
{
	/* With a store, auto means yes: each server routes its own clients
	 * (a routing daemon announces them). */
	vp_routing_init(&p->routing, p->config.store && p->config.host_routes ==
			VP_HOST_ROUTES_AUTO ? VP_HOST_ROUTES_YES : p->config.host_routes,
			p->keeper ? vp_keeper_routes(p->keeper) : vp_route_direct(), routing_log,
			routing_each_online, p);
}

/* A session's routes, at its start (the grant) or its end (what ended). */
static void routing_session(struct vp_plugin *p, const struct vp_grant *g, bool start)
{
	struct vp_routing_dst d = { g->addr4, g->addr6, g->subnet4, g->subnet6 };
	bool others = p->config.host_routes == VP_HOST_ROUTES_AUTO && !p->routing.on &&
		      vp_space_others_alive(p->space);

	if (start)
		vp_routing_start(&p->routing, &d, others);
	else
		vp_routing_end(&p->routing, &d, others);
}

/* ---- open and close ------------------------------------------------------- */

static void log_pools(struct vp_plugin *p)
{
	char n[VP_PREFIX_STRLEN], n6[VP_PREFIX_STRLEN];
	static const char *const topo[] = { "auto", "subnet", "net30", "p2p" };

	p->log(PLOG_NOTE, NAME, "topology %s, %zu leases in %s", topo[p->server.topology],
	       vp_space_leases(p->space), p->config.state_dir);
	for (size_t i = 0; i < p->config.n_pools; ++i) {
		const struct vp_pool_config *pc = &p->config.pools[i];
		struct vp_pool_usage u;

		vp_space_pool_usage(p->space, i, &u);
		p->log(PLOG_NOTE, NAME, "pool %s: %s%s%s, size %llu, %llu held%s", pc->name,
		       vp_prefix_format(&pc->network, n), pc->has_network6 ? " + " : "",
		       pc->has_network6 ? vp_prefix_format(&pc->network6, n6) : "",
		       (unsigned long long)u.size, (unsigned long long)u.held,
		       u.usable ? "" : " (NOT USED)");
	}
	for (size_t i = 0; i < p->config.n_routers; ++i) {
		const struct vp_router_config *rc = &p->config.routers[i];
		struct vp_pool_usage u;

		vp_space_router_usage(p->space, i, &u);
		p->log(PLOG_NOTE, NAME, "router-pool %s: %s%s%s, %llu subnets, %llu held", rc->name,
		       rc->network.addr.family ? vp_prefix_format(&rc->network, n) : "",
		       rc->has_network6 ? " + " : "",
		       rc->has_network6 ? vp_prefix_format(&rc->network6, n6) : "",
		       (unsigned long long)u.size, (unsigned long long)u.held);
	}
}

/* At open, before OpenVPN has told the tun address: what is configured. */
static void log_config(struct vp_plugin *p)
{
	char n[VP_PREFIX_STRLEN], n6[VP_PREFIX_STRLEN];

	p->log(PLOG_NOTE, NAME, "%s: %zu pools, %zu router pools, %zu reservations, %zu leases in %s",
	       p->config.path, p->config.n_pools, p->config.n_routers, p->config.n_statics,
	       vp_space_leases(p->space), p->config.state_dir);
	for (size_t i = 0; i < p->config.n_pools; ++i) {
		const struct vp_pool_config *pc = &p->config.pools[i];

		p->log(PLOG_NOTE, NAME, "pool %s: %s%s%s (sizes are logged once the tun is up)",
		       pc->name, vp_prefix_format(&pc->network, n), pc->has_network6 ? " + " : "",
		       pc->has_network6 ? vp_prefix_format(&pc->network6, n6) : "");
	}
	for (size_t i = 0; i < p->config.n_routers; ++i) {
		const struct vp_router_config *rc = &p->config.routers[i];

		p->log(PLOG_NOTE, NAME, "router-pool %s: %s in /%u subnets%s%s", rc->name,
		       rc->network.addr.family ? vp_prefix_format(&rc->network, n) : "-", rc->prefix,
		       rc->has_network6 ? " + " : "",
		       rc->has_network6 ? vp_prefix_format(&rc->network6, n6) : "");
	}
}

/* Learn the server's addresses from an environment, once. */
static bool learn_server(struct vp_plugin *p, const char *const *envp, bool quiet)
{
	char err[256];
	int ret;

	if (vp_space_has_server(p->space))
		return true;
	if (!vp_env_server(envp, p->config.topology, p->auto_without_netmask, &p->server, err,
			   sizeof(err))) {
		if (!quiet)
			p->log(PLOG_ERR, NAME, "cannot assign addresses: %s", err);
		return false;
	}
	ret = vp_space_set_server(p->space, &p->server);
	if (ret) {
		p->log(PLOG_ERR, NAME, "cannot build the pools: %s", strerror(-ret));
		return false;
	}
	log_pools(p);
	return true;
}

static void report_load(struct vp_plugin *p, const struct vp_store_report *r)
{
	if (r->empty)
		p->log(PLOG_WARN, NAME,
		       "%s/leases.journal is empty (0 bytes, not even its header: something cut it): the leases it held are lost; clients get new addresses",
		       p->config.state_dir);
	if (r->torn)
		p->log(PLOG_WARN, NAME,
		       "%s/leases.journal: dropped a record cut short at offset %llu (crash while writing)",
		       p->config.state_dir, (unsigned long long)r->torn_offset);
	if (r->corrupt)
		p->log(PLOG_ERR, NAME,
		       "%s/leases.journal is damaged at offset %llu (%s): set aside as %s; kept the %llu records before it",
		       p->config.state_dir, (unsigned long long)r->corrupt_offset, r->detail,
		       r->set_aside, (unsigned long long)r->records);
}

/* OpenVPN's own config: for topology auto, net30 or p2p (which OpenVPN's env
 * does not tell); and whether OpenVPN drops its privileges after start. */
static void read_server_conf(struct vp_plugin *p, const char *path)
{
	struct vp_server_conf sc;
	int ret;

	p->auto_without_netmask = VP_TOPO_NET30;
	if (!path) {
		if (p->config.topology == VP_TOPO_AUTO)
			p->log(PLOG_WARN, NAME,
			       "topology auto: OpenVPN did not say its config file; net30 unless OpenVPN reports a netmask (set topology in %s for p2p)",
			       p->config.path);
		return;
	}
	ret = vp_server_conf_read(path, p->fs, &sc);
	if (ret == -EFBIG)
		p->log(PLOG_WARN, NAME, "%s: read only its first %u MiB", who(p, path, strlen(path)),
		       VP_SERVER_CONF_MAX >> 20);
	else if (ret && p->config.topology == VP_TOPO_AUTO)
		p->log(PLOG_WARN, NAME,
		       "topology auto: cannot read OpenVPN's config %s (%s); net30 unless OpenVPN reports a netmask (set topology in %s for p2p)",
		       who(p, path, strlen(path)), ret == -EINVAL ? "not a regular file" :
		       strerror(-ret), p->config.path);
	if (ret && ret != -EFBIG)
		return;
	p->auto_without_netmask = sc.topology;
	if (p->keeper && (sc.user[0] || sc.group[0] || sc.chroot[0]))
		p->log(PLOG_NOTE, NAME,
		       "OpenVPN drops its privileges after start (%s%s%s%s%s%s): the vpnpool keeper, pid %ld, keeps them for the state, the usage log and the metrics file",
		       sc.user[0] ? "user " : "", sc.user, sc.group[0] ? " group " : "", sc.group,
		       sc.chroot[0] ? " chroot " : "", sc.chroot, (long)vp_keeper_pid(p->keeper));
}

/* The keeper, when OpenVPN runs as root now (or left one for this reload). */
static void start_keeper(struct vp_plugin *p, const char *path, const char *server_conf)
{
	bool reused = false;
	int ret = vp_keeper_get(&p->keeper, path, server_conf, &reused);

	p->fs = p->keeper ? vp_keeper_fs(p->keeper) : vp_fs_direct();
	if (ret && ret != -EPERM)
		p->log(PLOG_WARN, NAME,
		       "cannot start the vpnpool keeper (%s): files are opened as OpenVPN's own user, which may not be able to once it drops its privileges",
		       strerror(-ret));
}

static void store_messages(struct vp_plugin *p);

static void plugin_free(struct vp_plugin *p)
{
	uint64_t lost;

	vp_metrics_close(p->metrics, p->space);
	p->metrics = NULL;
	vp_space_close(p->space);
	/* The worker sends the disconnects queued while the store answers,
	 * for at most store-timeout; what it said last is logged. */
	if (p->defer) {
		store_messages(p);
		vp_defer_close(p->defer);
		p->defer = NULL;
	}
	free(p->store_percent);
	report_files(p);
	lost = vp_usage_close(p->usage);
	if (lost)
		p->log(PLOG_ERR, NAME, "the usage log %s could not be written: %llu lines lost",
		       p->config.usage_log, (unsigned long long)lost);
	vp_routing_close(&p->routing);
	vp_config_free(&p->config);
	vp_keeper_put(p->keeper);
	vp_strbuf_free(&p->fields);
	vp_strbuf_free(&p->who);
	free(p);
}

/* Why the state directory cannot be opened, in words that say what to do. */
static void report_open_error(struct vp_plugin *p, int err, const struct vp_store_report *r,
			      pid_t holder)
{
	const char *dir = p->config.state_dir;

	if (err == -EBUSY)
		p->log(PLOG_ERR, NAME,
		       "state directory %s is in use by another process (pid %ld): one OpenVPN server per state-dir",
		       dir, (long)holder);
	else if (err == -EPROTONOSUPPORT)
		p->log(PLOG_ERR, NAME,
		       "%s/leases.journal is of format version %u; this plugin understands version %u: upgrade vpnpool, or move the file aside to start with no leases (every client then gets a new address)",
		       dir, r->version, r->version_known);
	else if (err == -ELOOP && r->refused[0])
		p->log(PLOG_ERR, NAME,
		       "%s/%s is a symbolic link: vpnpool never writes through one; replace it with the file itself",
		       dir, r->refused);
	else
		p->log(PLOG_ERR, NAME, "cannot open the state directory %s: %s", dir,
		       strerror(-err));
}

/* A directory others may write to (o+w) can have its files swapped under
 * the plugin: say so, naming it.  Group-writable is taken as intended. */
static void warn_if_others_write(struct vp_plugin *p, const char *what, const char *dir)
{
	struct stat st;

	if (!stat(dir, &st) && S_ISDIR(st.st_mode) && (st.st_mode & S_IWOTH))
		p->log(PLOG_WARN, NAME,
		       "%s %s may be written by any user (mode %04o): chmod o-w it",
		       what, dir, (unsigned)(st.st_mode & 07777));
}

static void check_dirs(struct vp_plugin *p)
{
	char dir[4096];

	warn_if_others_write(p, "state directory", p->config.state_dir);
	if (p->config.usage_log) {
		if (!vp_fs_dirname(p->config.usage_log, dir, sizeof(dir)) &&
		    strcmp(dir, p->config.state_dir))
			warn_if_others_write(p, "the usage log's directory", dir);
	}
	if (p->config.metrics_file) {
		if (!vp_fs_dirname(p->config.metrics_file, dir, sizeof(dir)) &&
		    strcmp(dir, p->config.state_dir))
			warn_if_others_write(p, "the metrics file's directory", dir);
	}
}

static int store_start(struct vp_plugin *p, const char *const *envp, bool quiet, bool wait);

/* With a store (config's store): no state-dir journal; the worker.  Its
 * database may be down now: only a bad option fails. */
static int store_open(struct vp_plugin *p)
{
	struct vp_defer_options o = { .ops = &vp_defer_pg_ops, .config = &p->config };
	char shown[512];
	int ret;

	if (p->config.node)
		snprintf(p->node, sizeof(p->node), "%s", p->config.node);
	else if (gethostname(p->node, sizeof(p->node) - 1) || !p->node[0])
		snprintf(p->node, sizeof(p->node), "%s", "localhost");
	o.node = p->node;
	if (!p->instance[0] && p->config.instance)
		snprintf(p->instance, sizeof(p->instance), "%s", p->config.instance);
	/* The instance known now (plugin line, config): opened now;
	 * else at UP, named by the tun. */
	p->store_percent = calloc(p->config.n_pools ? p->config.n_pools : 1,
				  sizeof(*p->store_percent));
	ret = p->store_percent ? vp_defer_open(&p->defer, &o, p->instance[0] ? p->instance : NULL) :
				 -ENOMEM;
	if (ret) {
		p->log(PLOG_ERR, NAME, "cannot open the store %s: %s",
		       vp_pg_uri_shown(p->config.store, shown, sizeof(shown)),
		       strerror(-ret));
		return -1;
	}
	/* No journal, but the state-dir still holds the usage log by
	 * default: made as the journal would make it. */
	ret = p->fs->mkdirs(p->fs->ud, p->config.state_dir, 0750);
	if (ret)
		p->log(PLOG_WARN, NAME, "cannot create the state directory %s: %s",
		       p->config.state_dir, strerror(-ret));
	p->log(PLOG_NOTE, NAME, "store %s, node %s: connects are deferred (store-timeout %u ms)",
	       vp_pg_uri_shown(p->config.store, shown, sizeof(shown)), p->node,
	       p->config.store_timeout_ms);
	return 0;
}

static int plugin_start(struct vp_plugin *p, const char *path, const char *const *envp)
{
	struct vp_space_options opts = { .config = &p->config, .on_event = on_event, .ud = p,
					 .io = &p->io };
	const char *server_conf = vp_env_get(envp, "config");
	struct vp_store_report report;
	char err[1024];
	pid_t holder = 0;
	int ret;

	start_keeper(p, path, server_conf);
	p->io.fs = p->fs;
	if (vp_conf_load_fs(&p->config, path, p->fs, err, sizeof(err))) {
		p->log(PLOG_ERR, NAME, "%s", err);
		return -1;
	}
	routing_init(p);
	if (p->config.store) {
		if (store_open(p))
			return -1;
		goto files;
	}
	/* The store first: it creates the state-dir with its parents, where
	 * the usage log is by default. */
	ret = vp_space_open(&p->space, &opts, &report, &holder);
	if (ret) {
		report_open_error(p, ret, &report, holder);
		return -1;
	}
	report_load(p, &report);
files:
	if (p->config.usage_log) {
		ret = vp_usage_open(&p->usage, p->config.usage_log, p->fs);
		if (ret) {
			p->log(PLOG_ERR, NAME, "cannot open the usage log %s: %s",
			       p->config.usage_log, file_error(ret));
			return -1;
		}
	}
	check_dirs(p);
	if (p->config.metrics_file && p->defer) {
		p->log(PLOG_WARN, NAME,
		       "metrics-file %s is not written with a store: see vpnpool status for the pools",
		       p->config.metrics_file);
	} else if (p->config.metrics_file) {
		ret = vp_metrics_open(&p->metrics, &p->config, p->space, p->fs);
		if (ret) {
			p->log(PLOG_ERR, NAME, "cannot write the metrics file %s: %s",
			       p->config.metrics_file, file_error(ret));
			return -1;
		}
	}
	/* The start line first: leases dropped as the pools are built
	 * follow it. */
	vp_logfmt_adds(&p->fields, "config", path);
	if (p->space)
		vp_logfmt_addu(&p->fields, "leases", vp_space_leases(p->space));
	else
		vp_logfmt_adds(&p->fields, "node", p->node);
	usage(p, "start");
	read_server_conf(p, server_conf);
	if (p->defer)
		return store_start(p, envp, true, true) < 0 ? -1 : 0;
	if (!learn_server(p, envp, true))
		log_config(p);
	return 0;
}

VP_EXPORT int openvpn_plugin_open_v3(const int version,
				     struct openvpn_plugin_args_open_in const *args,
				     struct openvpn_plugin_args_open_return *ret)
{
	struct vp_plugin *p;

	if (version < OPENVPN_PLUGINv3_STRUCTVER)
		return OPENVPN_PLUGIN_FUNC_ERROR;
	p = calloc(1, sizeof(*p));
	if (!p)
		return OPENVPN_PLUGIN_FUNC_ERROR;
	p->log = args->callbacks->plugin_log;
	if (!args->argv[1] || (args->argv[2] && args->argv[3])) {
		p->log(PLOG_ERR, NAME,
		       "usage: plugin openvpn-plugin-vpnpool.so /etc/openvpn/vpnpool.conf [instance=NAME]");
		goto out_free;
	}
	if (args->argv[2]) {
		const char *arg = args->argv[2];

		if (strncmp(arg, "instance=", 9) || !vp_config_instance_name_ok(arg + 9)) {
			p->log(PLOG_ERR, NAME,
			       "plugin argument `%.100s': expected instance=NAME (1 to 63 letters, digits, '.', '_', '-')",
			       arg);
			goto out_free;
		}
		strcpy(p->instance, arg + 9);
	}
	if (plugin_start(p, args->argv[1], (const char *const *)args->envp))
		goto out_free;
	ret->type_mask = OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_UP) |
			 OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_CLIENT_CONNECT_V2) |
			 OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_CLIENT_DISCONNECT);
	if (p->defer)
		ret->type_mask |= OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_CLIENT_CONNECT_DEFER_V2);
	ret->handle = p;
	return OPENVPN_PLUGIN_FUNC_SUCCESS;

out_free:
	plugin_free(p);
	return OPENVPN_PLUGIN_FUNC_ERROR;
}

VP_EXPORT void openvpn_plugin_close_v1(openvpn_plugin_handle_t handle)
{
	struct vp_plugin *p = handle;

	if (p->space)
		vp_logfmt_addu(&p->fields, "leases", vp_space_leases(p->space));
	usage(p, "stop");
	plugin_free(p);
}

/* ---- sessions ------------------------------------------------------------- */

VP_EXPORT void *openvpn_plugin_client_constructor_v1(openvpn_plugin_handle_t handle)
{
	struct vp_plugin *p = handle;

	return calloc(1, p && p->defer ? sizeof(struct vp_store_session) : sizeof(struct vp_session));
}

static void session_end(struct vp_plugin *p, struct vp_session *s, const char *const *envp)
{
	const char *rx = vp_env_get(envp, "bytes_received");
	const char *tx = vp_env_get(envp, "bytes_sent");
	struct vp_grant g;
	int64_t duration;
	int ret;

	if (!s->active)
		return;
	/* Not online any more (its lease dropped): the line names the client
	 * only.  Moved: the client's newer session on another instance owns
	 * the address and its route now; this one's end removes nothing. */
	ret = vp_space_disconnect(p->space, s->identity, s->identity_len, s->slot, &g);
	if (ret == VP_DISCONNECT_MOVED) {
		p->log(PLOG_NOTE, NAME,
		       "session of %s ended; its address stays with its newer session on another instance",
		       who(p, s->identity, s->identity_len));
	} else if (ret) {
		p->log(PLOG_WARN, NAME, "session of %s slot %u was not online",
		       who(p, s->identity, s->identity_len), s->slot);
		memset(&g, 0, sizeof(g));
	} else {
		routing_session(p, &g, false);
	}
	vp_logfmt_add(&p->fields, "identity", s->identity, s->identity_len);
	if (g.pool) {
		duration = now() - g.since;
		vp_logfmt_adds(&p->fields, "pool", g.pool->name);
		add_addr(&p->fields, "address", &g.addr4);
		add_addr(&p->fields, "address6", &g.addr6);
		add_prefix(&p->fields, "subnet", &g.subnet4);
		add_prefix(&p->fields, "subnet6", &g.subnet6);
		vp_logfmt_addu(&p->fields, "duration",
			       duration > 0 ? (unsigned long long)duration : 0);
	}
	if (rx && tx) {
		vp_logfmt_adds(&p->fields, "bytes_received", rx);
		vp_logfmt_adds(&p->fields, "bytes_sent", tx);
	}
	if (ret == VP_DISCONNECT_MOVED)
		vp_logfmt_adds(&p->fields, "reason", "moved");
	session_forget(s);
	usage(p, "disconnect");
}

static void store_session_end(struct vp_plugin *p, struct vp_session *s,
			      const char *const *envp);

VP_EXPORT void openvpn_plugin_client_destructor_v1(openvpn_plugin_handle_t handle,
						   void *per_client_context)
{
	struct vp_session *s = per_client_context;

	if (!s)
		return;
	if (((struct vp_plugin *)handle)->defer)
		store_session_end(handle, s, NULL);
	else
		session_end(handle, s, NULL);
	session_forget(s);
	free(s);
}

/* Refuse a client: one line in OpenVPN's log, one in the usage log. */
static int refuse(struct vp_plugin *p, const char *id, const char *reason,
		  const struct vp_grant *g, const char *fmt_detail)
{
	const char *name = g->router ? g->router->name : g->pool ? g->pool->name : NULL;
	size_t len = id ? strlen(id) : 0, shown = len;
	char cut[64] = "";

	/* An identity too long to serve is named by its start and its length:
	 * a line of 64 KiB helps nobody reading either log. */
	if (len > VP_IDENTITY_MAX) {
		shown = VP_REFUSED_ID_SHOWN;
		snprintf(cut, sizeof(cut), "... (%zu bytes)", len);
	}
	if (id) {
		vp_logfmt_add(&p->fields, "identity", id, shown);
		if (shown < len)
			vp_logfmt_addu(&p->fields, "identity_bytes", len);
	}
	vp_logfmt_adds(&p->fields, "reason", reason);
	if (name) {
		vp_logfmt_adds(&p->fields, "pool", name);
		vp_logfmt_addu(&p->fields, "in_use", g->in_use);
		vp_logfmt_addu(&p->fields, "size", g->size);
	}
	p->counted = (struct vp_metrics_event){ .reason = reason, .pool = name,
						.in_use = g->in_use, .size = g->size };
	usage(p, "reject");
	if (name && !strcmp(reason, "exhausted"))
		p->log(PLOG_ERR, NAME,
		       "%s %s is exhausted (%llu of %llu in use, nothing reclaimable): refusing client %s",
		       g->router ? "router-pool" : "pool", name, (unsigned long long)g->in_use,
		       (unsigned long long)g->size, id ? who(p, id, shown) : "(none)");
	else
		p->log(PLOG_ERR, NAME, "refusing client %s%s: %s", id ? who(p, id, shown) : "(none)",
		       cut, fmt_detail);
	return OPENVPN_PLUGIN_FUNC_ERROR;
}

static int return_config(struct vp_strbuf *lines, struct openvpn_plugin_string_list **list)
{
	struct openvpn_plugin_string_list *item;

	if (!list || lines->oom)
		return -ENOMEM;
	item = calloc(1, sizeof(*item));
	if (!item)
		return -ENOMEM;
	item->name = strdup("config");
	item->value = strdup(lines->s);
	if (!item->name || !item->value) {
		free(item->name);
		free(item->value);
		free(item);
		return -ENOMEM;
	}
	*list = item;
	return 0;
}

static void session_start(struct vp_plugin *p, struct vp_session *s, const char *id,
			  const struct vp_grant *g, const char *real)
{
	char a[VP_ADDR_STRLEN], sn[VP_PREFIX_STRLEN];

	size_t len = strlen(id);

	session_forget(s);
	s->identity = len <= SESSION_INLINE ? s->inline_identity : malloc(len);
	if (s->identity)
		memcpy(s->identity, id, len);
	s->identity_len = (uint16_t)len;	/* connect refuses longer than VP_IDENTITY_MAX */
	s->active = s->identity != NULL;
	s->slot = g->slot;
	routing_session(p, g, true);

	p->log(PLOG_NOTE, NAME, "client %s: %s from pool %s%s%s%s%s", who(p, id, strlen(id)),
	       vp_addr_format(&g->addr4, a), g->pool->name,
	       g->subnet4.addr.family ? ", routed subnet " : "",
	       g->subnet4.addr.family ? vp_prefix_format(&g->subnet4, sn) : "",
	       g->is_static ? " (reserved)" : g->sticky ? " (sticky)" : "",
	       g->slot ? " (another session of a client already online: duplicate-cn)" : "");
	vp_logfmt_adds(&p->fields, "identity", id);
	vp_logfmt_adds(&p->fields, "pool", g->pool->name);
	add_addr(&p->fields, "address", &g->addr4);
	add_addr(&p->fields, "address6", &g->addr6);
	add_prefix(&p->fields, "subnet", &g->subnet4);
	add_prefix(&p->fields, "subnet6", &g->subnet6);
	if (*real)
		vp_logfmt_adds(&p->fields, "real", real);
	vp_logfmt_addu(&p->fields, "in_use", g->in_use);
	vp_logfmt_addu(&p->fields, "size", g->size);
	if (p->defer)
		vp_logfmt_adds(&p->fields, "node", p->node);
	usage(p, "connect");
}

static int connect_client(struct vp_plugin *p, struct vp_session *s, const char *const *envp,
			  struct openvpn_plugin_string_list **list);
static int register_instance(struct vp_plugin *p, const char *const *envp, bool lenient);

/* A connect, then the warnings it caused, in that order in both logs. */
static int on_connect(struct vp_plugin *p, struct vp_session *s, const char *const *envp,
		      struct openvpn_plugin_string_list **list)
{
	int ret;

	p->in_connect = true;
	p->n_warns = 0;
	ret = connect_client(p, s, envp, list);
	p->in_connect = false;
	for (size_t i = 0; i < p->n_warns; ++i)
		on_event(p, &p->warns[i]);
	p->n_warns = 0;
	return ret;
}

/* The usage log's writer thread, at the first connect: now that OpenVPN
 * has daemonized, if it does. */
static void start_usage_writer(struct vp_plugin *p)
{
	int ret;

	if (p->writer_tried)
		return;
	p->writer_tried = true;
	ret = vp_usage_start_writer(p->usage);
	if (ret)
		p->log(PLOG_WARN, NAME, "usage log written in line (no writer thread: %s)",
		       strerror(-ret));
}

static int connect_client(struct vp_plugin *p, struct vp_session *s, const char *const *envp,
			  struct openvpn_plugin_string_list **list)
{
	struct vp_strbuf lines = { 0 };
	struct vp_grant g = { 0 };
	char real[VP_REAL_MAX], detail[256];
	bool store_failed;
	struct vp_request req;
	bool has_id = vp_env_request(envp, p->config.identity, &req, real);
	const char *id = (const char *)req.identity;
	int ret;

	if (!s)
		return refuse(p, id, "internal", &g, "no session state (out of memory)");
	session_end(p, s, envp);	/* a second connect of one session: end the first */
	routing_learn_dev(p, envp);
	if (!learn_server(p, envp, false))
		return refuse(p, id, "no-server-address", &g, "the server's tun address is unknown");
	start_usage_writer(p);
	if (!has_id) {
		snprintf(detail, sizeof(detail), "it has no %s", p->config.identity);
		return refuse(p, NULL, "no-identity", &g, detail);
	}
	/* Not registered at UP (reopened after SIGHUP with persist-tun, where
	 * OpenVPN does not call UP again): now, by the same names. */
	if (!p->registered && register_instance(p, envp, true))
		return refuse(p, id, "internal", &g, "this OpenVPN is not registered as an instance");
	ret = vp_space_connect(p->space, &req, &g, &store_failed);
	if (ret && store_failed) {
		snprintf(detail, sizeof(detail), "cannot record its lease in %s: %s",
			 p->config.state_dir, strerror(-ret));
		return refuse(p, id, "store-error", &g, detail);
	}
	if (ret == -ENOSPC)
		return refuse(p, id, "exhausted", &g, "");
	if (ret == -ENOENT)
		return refuse(p, id, "no-pool", &g, "no pool matches it");
	if (ret == -EINVAL) {
		snprintf(detail, sizeof(detail), "its %s is longer than %d bytes", p->config.identity,
			 VP_IDENTITY_MAX);
		return refuse(p, id, "bad-identity", &g, detail);
	}
	if (ret)
		return refuse(p, id, "internal", &g, strerror(-ret));

	vp_lines_build(&lines, &g, &p->server, &p->config);
	ret = return_config(&lines, list);
	vp_strbuf_free(&lines);
	if (ret) {
		vp_space_disconnect(p->space, req.identity, req.identity_len, g.slot, NULL);
		return refuse(p, id, "internal", &g, "out of memory");
	}
	session_start(p, s, id, &g, real);
	return OPENVPN_PLUGIN_FUNC_SUCCESS;
}

/* ---- with a store: deferred connects (plugin/defer.h) ----------------------- */

/* A session the store ended: another node missed its heartbeat (crash), or
 * this node's previous process left it online (restart). */
static void on_store_ended(struct vp_plugin *p, const struct vp_defer_msg *m)
{
	const struct vp_pg_ended *e = &m->ended;
	const struct vp_grant *g = &e->grant;
	char a[VP_ADDR_STRLEN];

	p->log(PLOG_NOTE, NAME, "node %s%s%s %s: session of %s (%s) ended, its lease %s",
	       e->node, *e->instance ? " instance " : "", e->instance,
	       !strcmp(m->reason, "crash") ? "missed its heartbeat" : "was restarted",
	       who(p, e->identity, e->identity_len),
	       g->addr4.family ? vp_addr_format(&g->addr4, a) : "-", e->freed ? "freed" : "held");
	vp_logfmt_add(&p->fields, "identity", e->identity, e->identity_len);
	if (g->pool)
		vp_logfmt_adds(&p->fields, "pool", g->pool->name);
	add_addr(&p->fields, "address", &g->addr4);
	add_addr(&p->fields, "address6", &g->addr6);
	add_prefix(&p->fields, "subnet", &g->subnet4);
	add_prefix(&p->fields, "subnet6", &g->subnet6);
	vp_logfmt_addu(&p->fields, "duration", e->duration > 0 ? (unsigned long long)e->duration : 0);
	vp_logfmt_adds(&p->fields, "reason", m->reason);
	vp_logfmt_adds(&p->fields, "node", *e->node ? e->node : "-");
	vp_logfmt_adds(&p->fields, "instance", *e->instance ? e->instance : "-");
	p->fields_named = true;
	usage(p, "disconnect");
}

static void on_defer_msg(void *ud, const struct vp_defer_msg *m)
{
	struct vp_plugin *p = ud;

	switch (m->type) {
	case VP_DEFER_MSG_ENDED:
		on_store_ended(p, m);
		break;
	case VP_DEFER_MSG_STORE:
		if (m->error)
			p->log(PLOG_ERR, NAME, "the store fails: %s; clients are refused until it answers again",
			       *m->message ? m->message : strerror(-m->error));
		else
			p->log(PLOG_NOTE, NAME, "the store answers again");
		break;
	case VP_DEFER_MSG_STARTED:
		p->log(PLOG_NOTE, NAME, "store started: node %s%s%s", p->node,
		       p->instance[0] ? " instance " : "", p->instance);
		break;
	case VP_DEFER_MSG_ABORTED:
		if (m->error)
			p->log(PLOG_WARN, NAME,
			       "cannot undo the unanswered connect of %s yet (%s): tried again at the next heartbeat",
			       who(p, m->ended.identity, m->ended.identity_len), m->message);
		break;
	}
}

static void store_messages(struct vp_plugin *p)
{
	if (p->defer)
		vp_defer_messages(p->defer, on_defer_msg, p);
}

/* The instance's name with a store: the plugin line's, the config's, else
 * the tun device's (none: ""). */
static void store_instance(struct vp_plugin *p, const char *const *envp)
{
	const char *dev = vp_env_get(envp, "dev");

	if (!p->instance[0] && p->config.instance)
		snprintf(p->instance, sizeof(p->instance), "%s", p->config.instance);
	if (!p->instance[0] && dev && vp_config_instance_name_ok(dev))
		snprintf(p->instance, sizeof(p->instance), "%s", dev);
}

/* With a store: the server's addresses, once; the worker starts the store
 * with them.  wait: at UP, for the store's open (a bad option fails UP). */
static int store_start(struct vp_plugin *p, const char *const *envp, bool quiet, bool wait)
{
	char err[256], shown[512];
	int ret;

	if (p->has_server)
		return 1;
	if (!vp_env_server(envp, p->config.topology, p->auto_without_netmask, &p->server, err,
			   sizeof(err))) {
		if (!quiet)
			p->log(PLOG_ERR, NAME, "cannot assign addresses: %s", err);
		return 0;
	}
	store_instance(p, envp);
	ret = vp_defer_start(p->defer, &p->server, p->instance, wait);
	p->has_server = true;
	if (ret && ret != -EALREADY) {
		p->log(PLOG_ERR, NAME, "cannot open the store %s: %s",
		       vp_pg_uri_shown(p->config.store, shown, sizeof(shown)),
		       strerror(-ret));
		return -1;
	}
	return 1;
}

static bool store_learn_server(struct vp_plugin *p, const char *const *envp, bool quiet, bool wait)
{
	return store_start(p, envp, quiet, wait) > 0;
}

static struct vp_store_session *store_session(struct vp_session *s)
{
	return (struct vp_store_session *)s;
}

/* A pending connect given back (its client went away, or a new connect
 * replaced it): the worker undoes whatever it did. */
static void store_drop_pending(struct vp_plugin *p, struct vp_store_session *ss)
{
	if (ss->ticket)
		vp_defer_put(p->defer, ss->ticket, false);
	ss->ticket = NULL;
	free(ss->id);
	ss->id = NULL;
}

/* The end of a store session: its line at once, from its own record; the
 * store told by a queued job. */
static void store_session_end(struct vp_plugin *p, struct vp_session *s, const char *const *envp)
{
	struct vp_store_session *ss = store_session(s);
	const char *rx = vp_env_get(envp, "bytes_received");
	const char *tx = vp_env_get(envp, "bytes_sent");
	const struct vp_grant *g = &ss->g;
	int64_t duration = now() - ss->since;

	store_drop_pending(p, ss);
	if (!s->active)
		return;
	if (vp_defer_disconnect(p->defer, s->identity, s->identity_len, s->slot, ss->session))
		p->log(PLOG_ERR, NAME, "cannot end the session of %s in the store: out of memory",
		       who(p, s->identity, s->identity_len));
	routing_session(p, g, false);
	vp_logfmt_add(&p->fields, "identity", s->identity, s->identity_len);
	vp_logfmt_adds(&p->fields, "pool", g->pool->name);
	add_addr(&p->fields, "address", &g->addr4);
	add_addr(&p->fields, "address6", &g->addr6);
	add_prefix(&p->fields, "subnet", &g->subnet4);
	add_prefix(&p->fields, "subnet6", &g->subnet6);
	vp_logfmt_addu(&p->fields, "duration", duration > 0 ? (unsigned long long)duration : 0);
	if (rx && tx) {
		vp_logfmt_adds(&p->fields, "bytes_received", rx);
		vp_logfmt_adds(&p->fields, "bytes_sent", tx);
	}
	session_forget(s);
	usage(p, "disconnect");
}

/* warn-at with a store: a pool's use as the database counted it at this
 * connect; a threshold crossed upward since the last connect to it here is
 * logged (each server says it of the connects it serves). */
static void store_warn(struct vp_plugin *p, const struct vp_grant *g)
{
	struct vp_event ev = { .type = VP_EV_WARN };
	unsigned percent, before;
	size_t i;

	if (!g->pool || !g->size || !p->store_percent)
		return;
	i = (size_t)(g->pool - p->config.pools);
	if (i >= p->config.n_pools)
		return;
	percent = (unsigned)(g->in_use * 100 / g->size);
	before = p->store_percent[i];
	p->store_percent[i] = percent;
	for (size_t k = 0; k < p->config.n_warn_at; ++k) {
		if (before >= p->config.warn_at[k] || percent < p->config.warn_at[k])
			continue;
		ev.pool = g->pool->name;
		ev.in_use = g->in_use;
		ev.size = g->size;
		ev.percent = p->config.warn_at[k];
		on_event(p, &ev);
	}
}

/* CLIENT_CONNECT_V2 with a store: checks, then the connect queued for the
 * worker; OpenVPN polls with CLIENT_CONNECT_DEFER_V2. */
static int store_connect(struct vp_plugin *p, struct vp_session *s, const char *const *envp)
{
	struct vp_store_session *ss = store_session(s);
	struct vp_grant g = { 0 };
	char real[VP_REAL_MAX], detail[256];
	struct vp_request req;
	bool has_id = vp_env_request(envp, p->config.identity, &req, real);
	const char *id = (const char *)req.identity;

	if (!s)
		return refuse(p, id, "internal", &g, "no session state (out of memory)");
	store_session_end(p, s, envp);	/* a second connect of one session: end the first */
	routing_learn_dev(p, envp);
	if (!store_learn_server(p, envp, false, false))
		return refuse(p, id, "no-server-address", &g, "the server's tun address is unknown");
	start_usage_writer(p);
	if (!has_id) {
		snprintf(detail, sizeof(detail), "it has no %s", p->config.identity);
		return refuse(p, NULL, "no-identity", &g, detail);
	}
	if (req.identity_len > VP_IDENTITY_MAX) {
		snprintf(detail, sizeof(detail), "its %s is longer than %d bytes", p->config.identity,
			 VP_IDENTITY_MAX);
		return refuse(p, id, "bad-identity", &g, detail);
	}
	ss->id = strdup(id);
	ss->session = vp_defer_session_id(p->defer);
	ss->ticket = ss->id ? vp_defer_connect(p->defer, &req, ss->session) : NULL;
	if (!ss->ticket) {
		free(ss->id);
		ss->id = NULL;
		return refuse(p, id, "internal", &g, "out of memory");
	}
	snprintf(ss->real, sizeof(ss->real), "%s", real);
	return OPENVPN_PLUGIN_FUNC_DEFERRED;
}

/* A reclaim a connect made, in both logs as the journal's event would be. */
static void store_reclaimed(struct vp_plugin *p, const char *id, const struct vp_pg_result *r)
{
	const struct vp_grant *g = &r->grant;
	struct vp_event ev = {
		.type = VP_EV_RECLAIM, .identity = (const uint8_t *)id, .identity_len = strlen(id),
		.from = r->from, .from_len = r->from_len, .address = g->addr4,
		.subnet4 = g->subnet4, .subnet6 = g->subnet6, .in_use = g->in_use, .size = g->size,
		.pool = g->router ? g->router->name : g->pool->name,
	};

	on_event(p, &ev);
}

/* CLIENT_CONNECT_DEFER_V2: the answer, when it is there. */
static int store_poll(struct vp_plugin *p, struct vp_session *s,
		      struct openvpn_plugin_string_list **list)
{
	struct vp_store_session *ss = store_session(s);
	struct vp_strbuf lines = { 0 };
	struct vp_pg_result r = { 0 };
	struct vp_grant none = { 0 };
	const char *error = NULL;
	char detail[512], *id;
	enum vp_defer_state st;
	int ret = 0, out;

	if (!s || !ss->ticket)
		return refuse(p, NULL, "internal", &none, "no connect pending for this client");
	st = vp_defer_poll(p->defer, ss->ticket, &ret, &r, &error);
	if (st == VP_DEFER_PENDING)
		return OPENVPN_PLUGIN_FUNC_DEFERRED;
	id = ss->id;
	ss->id = NULL;
	if (st == VP_DEFER_TIMEOUT) {
		store_drop_pending(p, ss);
		snprintf(detail, sizeof(detail), "the store did not answer within %u ms",
			 p->config.store_timeout_ms);
		out = refuse(p, id, "store-error", &none, detail);
	} else if (ret == -ENOSPC) {
		store_drop_pending(p, ss);
		out = refuse(p, id, "exhausted", &r.grant, "");
	} else if (ret == -ENOENT) {
		store_drop_pending(p, ss);
		out = refuse(p, id, "no-pool", &none, "no pool matches it");
	} else if (ret == -EINVAL) {
		store_drop_pending(p, ss);
		snprintf(detail, sizeof(detail), "its %s is not one the store takes",
			 p->config.identity);
		out = refuse(p, id, "bad-identity", &none, detail);
	} else if (ret == -EBUSY) {
		/* its reservation is online with another client (the
		 * reservation is newer than that lease) */
		store_drop_pending(p, ss);
		out = refuse(p, id, "store-error", &none, error && *error ? error : strerror(-ret));
	} else if (ret) {
		snprintf(detail, sizeof(detail), "the store failed: %s",
			 error && *error ? error : strerror(-ret));
		store_drop_pending(p, ss);
		out = refuse(p, id, "store-error", &none, detail);
	} else if (!r.grant.pool) {
		/* Not one of this config's pools: the servers' files differ. */
		store_drop_pending(p, ss);
		out = refuse(p, id, "store-error", &none,
			     "the store gave it an address of a pool this server's config does not have (do the servers' vpnpool.conf differ?)");
	} else {
		vp_lines_build(&lines, &r.grant, &p->server, &p->config);
		ret = return_config(&lines, list);
		vp_strbuf_free(&lines);
		if (ret) {
			store_drop_pending(p, ss);
			out = refuse(p, id, "internal", &r.grant, "out of memory");
		} else {
			vp_defer_put(p->defer, ss->ticket, true);
			ss->ticket = NULL;
			if (r.reclaimed)
				store_reclaimed(p, id, &r);
			ss->g = r.grant;
			ss->since = now();
			if (r.moved)
				p->log(PLOG_NOTE, NAME, "client %s moved here from another server",
				       who(p, id, strlen(id)));
			session_start(p, s, id, &r.grant, ss->real);
			store_warn(p, &r.grant);
			out = OPENVPN_PLUGIN_FUNC_SUCCESS;
		}
	}
	free(id);
	return out;
}

/* At UP: register this process as an instance of the state-dir, named by
 * the plugin line, the config, or the tun device.  0, or -1 (logged: UP
 * fails, and OpenVPN with it). */
static int register_instance(struct vp_plugin *p, const char *const *envp, bool lenient)
{
	const char *dev = vp_env_get(envp, "dev");
	unsigned ifindex = dev ? if_nametoindex(dev) : 0;
	pid_t live = 0;
	int ret;

	if (p->registered)
		return 0;
	if (!p->instance[0] && p->config.instance)
		snprintf(p->instance, sizeof(p->instance), "%s", p->config.instance);
	if (!p->instance[0] && dev && vp_config_instance_name_ok(dev))
		snprintf(p->instance, sizeof(p->instance), "%s", dev);
	if (!p->instance[0] && lenient)
		return 0;	/* tried again at the next connect */
	if (!p->instance[0]) {
		p->log(PLOG_ERR, NAME,
		       "no instance name: give one on the plugin line (instance=NAME) or in %s (instance = \"NAME\")",
		       p->config.path);
		return -1;
	}
	ret = vp_space_register(p->space, p->instance, (int)ifindex,
				dev && strlen(dev) < VP_DEV_MAX ? dev : "", &live);
	if (ret == -EADDRINUSE) {
		p->log(PLOG_ERR, NAME,
		       "instance %s is already running on state directory %s (pid %ld): give this OpenVPN another instance name",
		       p->instance, p->config.state_dir, (long)live);
		return -1;
	}
	if (ret) {
		p->log(PLOG_ERR, NAME, "cannot register instance %s in the state directory %s: %s",
		       p->instance, p->config.state_dir, ret == -EUSERS ?
		       "too many instances are running" : strerror(-ret));
		return -1;
	}
	p->registered = true;
	p->log(PLOG_NOTE, NAME, "instance %s%s", p->instance,
	       vp_space_others_alive(p->space) ? " (other instances are running on this state directory)" : "");
	return 0;
}

/* The calls with a store. */
static int store_func(struct vp_plugin *p, struct openvpn_plugin_args_func_in const *args,
		      struct openvpn_plugin_args_func_return *ret)
{
	const char *const *envp = (const char *const *)args->envp;
	struct openvpn_plugin_string_list **list = ret ? ret->return_list : NULL;
	int out;

	switch (args->type) {
	case OPENVPN_PLUGIN_UP:
		routing_learn_dev(p, envp);
		/* The store is opened now (a bad option fails OpenVPN), and
		 * started by the worker; a database down is not fatal. */
		return store_start(p, envp, false, true) < 0 ? OPENVPN_PLUGIN_FUNC_ERROR :
		       OPENVPN_PLUGIN_FUNC_SUCCESS;
	case OPENVPN_PLUGIN_CLIENT_CONNECT_V2:
		return store_connect(p, args->per_client_context, envp);
	case OPENVPN_PLUGIN_CLIENT_CONNECT_DEFER_V2:
		out = store_poll(p, args->per_client_context, list);
		return out;
	case OPENVPN_PLUGIN_CLIENT_DISCONNECT:
		if (args->per_client_context)
			store_session_end(p, args->per_client_context, envp);
		return OPENVPN_PLUGIN_FUNC_SUCCESS;
	default:
		return OPENVPN_PLUGIN_FUNC_SUCCESS;
	}
}

VP_EXPORT int openvpn_plugin_func_v3(const int version,
				     struct openvpn_plugin_args_func_in const *args,
				     struct openvpn_plugin_args_func_return *ret)
{
	struct vp_plugin *p = args->handle;
	const char *const *envp = (const char *const *)args->envp;

	(void)version;
	store_messages(p);
	if (p->defer)
		return store_func(p, args, ret);
	switch (args->type) {
	case OPENVPN_PLUGIN_UP:
		/* The instance registers: its name may be the tun's. */
		if (register_instance(p, envp, false))
			return OPENVPN_PLUGIN_FUNC_ERROR;
		/* The tun is up: its addresses are in envp, so the pools' sizes
		 * and a pool outside the tun network are logged now; a failure
		 * is logged and retried at the first connect.  Never fatal. */
		routing_learn_dev(p, envp);
		if (learn_server(p, envp, false)) {
			vp_metrics_update(p->metrics, p->space);
			report_files(p);
		}
		return OPENVPN_PLUGIN_FUNC_SUCCESS;
	case OPENVPN_PLUGIN_CLIENT_CONNECT_V2:
		return on_connect(p, args->per_client_context, envp, ret ? ret->return_list : NULL);
	case OPENVPN_PLUGIN_CLIENT_DISCONNECT:
		if (args->per_client_context)
			session_end(p, args->per_client_context, envp);
		return OPENVPN_PLUGIN_FUNC_SUCCESS;
	default:
		return OPENVPN_PLUGIN_FUNC_SUCCESS;
	}
}
