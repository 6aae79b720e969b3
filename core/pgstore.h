/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The PostgreSQL store: the address space of every server whose
 * vpnpool.conf names the same database (store = "postgresql://...").
 *
 * The database is the source of truth.  Unlike the journal (store.h), which
 * persists what the in-memory engine (space.h) decided, here the choice
 * itself is made in the database, by one server-side function per connect,
 * so that servers on several hosts never hand out an address twice:
 *  - a connect is one round trip (one call of the schema's connect
 *    function, which takes the identity's own lease, else a free or
 *    never-used address, else reclaims the lease offline longest whose
 *    hold-time has passed) and one transaction;
 *  - unique keys on addresses and exclusion constraints on routed subnets
 *    make a duplicate impossible whatever the function does; row locks
 *    (FOR UPDATE, SKIP LOCKED on free lists) keep concurrent connects from
 *    waiting on each other;
 *  - never-used addresses come from per-segment high-water marks, so a /8
 *    pool needs no pre-inserted rows: a row exists per lease and per freed
 *    address only.
 *
 * Which pool a client matches, its reservation (client "..." sections) and
 * the addresses a pool may hand out (range, exclude, the server's own
 * addresses) come from vpnpool.conf, on this side: the pools are published
 * to the database at vp_pg_start() (each server publishes its view; servers
 * are expected to load the same file).
 *
 * A struct vp_pg is one connection and is used by one thread at a time
 * (each of the plugin's worker threads has its own; the command).  Every
 * call is bounded by the timeout of the options (store-timeout): past it the
 * query is cancelled and the call returns -ETIMEDOUT; a connection that
 * failed is reopened by the next call (at most once a second), so service
 * resumes by itself.
 *
 * Knows nothing of OpenVPN and never prints: results are return codes and
 * structs; a failed call leaves a message for vp_pg_error().
 */
#ifndef VP_PGSTORE_H
#define VP_PGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"
#include "space.h"

#define VP_PG_SCHEMA_VERSION 1

struct vp_pg;

struct vp_pg_options {
	const struct vp_config *config;	/* borrowed: uri (config->store), pools,
					 * hold-time, reservations, node-timeout */
	const char *node;		/* this server's node name (NULL: a
					 * command, which registers nothing) */
	const char *instance;		/* and instance on that node ("" : none) */
	unsigned timeout_ms;		/* each call's limit (0: config's
					 * store_timeout_ms) */
	bool create_schema;		/* create the schema when missing and the
					 * role may (servers: true) */
};

/* Make the handle; connect now.  A database that cannot be reached is not
 * an error here (-errno only for bad options or memory): the first call
 * that needs it connects again.  Each (re)connect checks the schema's
 * version, creating the schema first when it is missing and the options
 * allow (concurrent servers on an empty database: one creates it, the
 * others wait for it); a schema of another version fails every call with
 * -EPROTONOSUPPORT and a message saying what to do. */
int vp_pg_open(struct vp_pg **out, const struct vp_pg_options *opts);
void vp_pg_close(struct vp_pg *pg);

/* The message of the last failed call (never NULL; "" after success). */
const char *vp_pg_error(const struct vp_pg *pg);
/* Whether the connection is up now (no round trip). */
bool vp_pg_connected(const struct vp_pg *pg);

/* uri as it may be shown (logs, messages): without its password (in
 * user:password@ or a password= parameter).  Returns buf. */
const char *vp_pg_uri_shown(const char *uri, char *buf, size_t len);

/* The SQL that creates the schema (what `vpnpool schema` prints). */
const char *vp_pg_schema_sql(void);

/* A server starts: publish its pools (their usable segments and sizes, the
 * server's own addresses left out), and register (node, instance) with a
 * heartbeat.  The online sessions a previous process of the same (node,
 * instance) left behind become held, each reported to on_ended (reason
 * "restart").  Call again after a reconnect is harmless (pools and
 * registration are upserts).  0 or -errno; -EOPNOTSUPP: topology net30,
 * which this store does not support (subnet and p2p are); until it returns
 * 0, vp_pg_connect() fails with -EAGAIN, so a server whose database was
 * down at start calls it again. */
struct vp_pg_ended {
	struct vp_grant grant;		/* pool, router, addresses, subnets */
	const uint8_t *identity;	/* borrowed for the callback */
	size_t identity_len;
	const char *node, *instance;	/* where the session was */
	int64_t duration;		/* seconds it lasted */
	bool freed;			/* an extra duplicate-cn session: freed */
};
int vp_pg_start(struct vp_pg *pg, const struct vp_server *server,
		void (*on_ended)(void *ud, const struct vp_pg_ended *e), void *ud);

/* Another connection of a started server (same options): take what
 * vp_pg_start() published (the pools' ids, the server) from from, which
 * vp_pg_start() has started, without a round trip and without what start
 * does to the sessions of (node, instance).  So that one server may run
 * connects on several connections at once (the plugin's workers); from must
 * not be in a call meanwhile that changes it (vp_pg_start).  0; -EAGAIN
 * (from is not started); -EINVAL (other options, or a command). */
int vp_pg_join(struct vp_pg *pg, const struct vp_pg *from);

/* Heartbeat of (node, instance), then turn held the online sessions of every
 * node whose heartbeat is older than node-timeout (judged by the database's
 * clock), each reported to on_ended.  Only a node that has itself beaten
 * without a gap of node-timeout / 2 for node-timeout judges others: after
 * the database was away, nobody is taken for dead before it could beat
 * again.  Call every node-timeout / 3 at least.  0 or -errno. */
int vp_pg_heartbeat(struct vp_pg *pg,
		    void (*on_ended)(void *ud, const struct vp_pg_ended *e), void *ud);

/* What a connect gave, beyond the grant. */
struct vp_pg_result {
	struct vp_grant grant;		/* as vp_space_connect's: pool/router
					 * point into the config; slot; in_use and
					 * size of the pool after this connect */
	int64_t session;		/* this session's id: pass to disconnect */
	bool reclaimed;			/* from holds the previous holder */
	uint8_t from[VP_IDENTITY_MAX];
	size_t from_len;
	bool moved;			/* the lease was online on another
					 * (node, instance): it moved here */
};

/* Give the client an address (and subnet), as vp_space_connect does, under
 * the same rules, in one transaction.  session is this session's id, made by
 * the caller unique over (node, instance) and time (e.g. start time and a
 * counter), so that a call whose answer was lost can be undone with
 * vp_pg_abort().  0; -ENOSPC (every matching pool full, result->grant.pool,
 * in_use, size: the last one tried); -ENOENT (no pool matches); -EINVAL (bad
 * identity); -EAGAIN (vp_pg_start not done); -ECANCELED (this session was
 * given up with vp_pg_abort() before the database ran it); -ETIMEDOUT; -ECONNREFUSED,
 * -EIO (the database down or failing: see vp_pg_error). */
int vp_pg_connect(struct vp_pg *pg, const struct vp_request *req, int64_t session,
		  struct vp_pg_result *result);

/* End of a session: its lease becomes held (slot 0) or freed (an extra
 * duplicate-cn session).  0; VP_DISCONNECT_MOVED (1): another session owns
 * the lease now, nothing changed; -ENOENT (no such online session); -errno.
 * ended (may be NULL) gets what the session had. */
int vp_pg_disconnect(struct vp_pg *pg, const uint8_t *identity, size_t len, uint16_t slot,
		     int64_t session, struct vp_grant *ended);

/* Undo a connect whose outcome is unknown (it timed out, or its client went
 * away before the answer was used): if session is online it becomes held
 * (slot 0) or freed.  0 (also when there was nothing to undo) or -errno. */
int vp_pg_abort(struct vp_pg *pg, const uint8_t *identity, size_t len, int64_t session);

/* ---- the command ---------------------------------------------------------------- */

/* A lease as the database has it. */
struct vp_pg_lease {
	struct vp_lease_rec rec;	/* identity borrowed for the callback;
					 * rec.instance unused */
	const char *pool;		/* pool name ("" : none) */
	const char *router;		/* router pool name, or "" */
	const char *node, *instance;	/* an online lease's session, a held
					 * lease's last one ("" : none) */
	bool static4;			/* its addresses are its reservation */
};
/* Every lease, sorted by pool, address, identity, slot.  fn's non-zero stops
 * and is returned. */
int vp_pg_each_lease(struct vp_pg *pg, int (*fn)(void *ud, const struct vp_pg_lease *l),
		     void *ud);

/* Usage of every published pool and router pool (by name). */
struct vp_pg_pool {
	const char *name;
	bool router;
	uint64_t size, online, held, free;
};
int vp_pg_each_pool(struct vp_pg *pg, int (*fn)(void *ud, const struct vp_pg_pool *p),
		    void *ud);

/* Every registered (node, instance), its last heartbeat and whether it is
 * live (heartbeat younger than node-timeout). */
struct vp_pg_node {
	const char *node, *instance;
	int64_t heartbeat, started;	/* seconds since the epoch */
	int32_t pid;
	bool live;
	uint64_t online;		/* its online sessions */
};
int vp_pg_each_node(struct vp_pg *pg, int (*fn)(void *ud, const struct vp_pg_node *n),
		    void *ud);

/* As vp_space_release / vp_space_import (same return codes; *why as
 * there); import: -EAGAIN also when no server has published the pool yet. */
int vp_pg_release(struct vp_pg *pg, const uint8_t *id, size_t len);
int vp_pg_import(struct vp_pg *pg, const uint8_t *id, size_t len, const struct vp_addr *a4,
		 const struct vp_addr *a6, const char **why);

#endif
