/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Deferred connects (openvpn-plugin-vpnpool(8), "Several hosts"): the store
 * of a PostgreSQL-backed plugin lives on a worker thread, so that no call of
 * OpenVPN's into the plugin waits for the database.
 *
 * The main thread (OpenVPN's) hands the worker jobs and never waits:
 *  - a connect: a copy of what the request needs from envp (the identity,
 *    every variable the config's match lists name, the client's real
 *    address), and a deadline (store-timeout from now).  It gets a ticket,
 *    which it polls: pending, done (the store's answer), or timed out (past
 *    the deadline: the worker undoes whatever the connect did, vp_pg_abort);
 *  - a disconnect (identity, slot, session id): queued, never waited on;
 *  - an abort: a ticket given back before its answer was used.
 * The jobs are run by VP_DEFER_WORKERS worker threads (options: workers),
 * each with its own connection to the database, so that several connects
 * of an instance are in the database at once and their commits overlap
 * (the database flushes them together).  A client's jobs stay in order: a
 * job of an identity is never run while another job of that identity is
 * (it waits in the queue, and every later one of that identity with it).
 * The first worker opens the store (its return code is vp_defer_open's),
 * starts it once the server's addresses are known (vp_defer_start), beats
 * the heartbeat every max(1, node-timeout / 3) seconds, and leaves for the
 * main thread the sessions the store ended (crash or restart:
 * vp_pg_ended), to be logged on its next call; the others open theirs
 * after it and join its start (vp_pg_join), and run connects only then.
 *
 * One mutex guards the queue, the tickets and the messages; a worker holds
 * it only to take a job and to hand back its answer, never across a store
 * call.  A ticket is owned by the main thread and by the queue (or a
 * worker) together: it is freed by whichever lets go of it last.
 *
 * The store is reached through vp_defer_store_ops (the real one:
 * vp_defer_pg_ops, plugin/defer_pg.c), so tests can give the worker a slow,
 * failing or hanging one.  Knows nothing of OpenVPN and never prints.
 */
#ifndef VP_PLUGIN_DEFER_H
#define VP_PLUGIN_DEFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/pgstore.h"
#include "core/space.h"

typedef void vp_defer_ended_fn(void *ud, const struct vp_pg_ended *e);

/* The store as the worker calls it: vp_pg_* with the handle opaque. */
struct vp_defer_store_ops {
	int (*open)(void **out, const struct vp_pg_options *opts);
	void (*close)(void *h);
	const char *(*error)(const void *h);
	int (*start)(void *h, const struct vp_server *server, vp_defer_ended_fn *fn, void *ud);
	int (*heartbeat)(void *h, vp_defer_ended_fn *fn, void *ud);
	int (*connect)(void *h, const struct vp_request *req, int64_t session,
		       struct vp_pg_result *result);
	int (*disconnect)(void *h, const uint8_t *id, size_t len, uint16_t slot, int64_t session,
			  struct vp_grant *ended);
	int (*abort)(void *h, const uint8_t *id, size_t len, int64_t session);
	/* Another handle of the same options takes what a started one
	 * published (vp_pg_join); NULL: one worker only. */
	int (*join)(void *h, const void *started);
};

extern const struct vp_defer_store_ops vp_defer_pg_ops;

struct vp_defer_options {
	const struct vp_defer_store_ops *ops;	/* the real one: vp_defer_pg_ops */
	const struct vp_config *config;		/* borrowed: must outlive the defer */
	const char *node;			/* copied */
	unsigned timeout_ms;			/* store-timeout (0: config's) */
	unsigned heartbeat_s;			/* 0: max(1, node-timeout / 3) */
	int64_t (*now_ms)(void);		/* monotonic milliseconds; NULL: the
						 * system's CLOCK_MONOTONIC */
	unsigned workers;			/* 0: VP_DEFER_WORKERS */
};

/* Worker threads (each its own connection to the store) per plugin
 * instance, by default. */
#define VP_DEFER_WORKERS 4

struct vp_defer;
struct vp_defer_ticket;

/* Start the worker.  The store is opened by the worker once the instance's
 * name is known (vp_defer_start, or instance here when not NULL): then
 * this waits for the open's return code (not for the database, which may be
 * down: a bad option fails, a database down does not).  0 or -errno
 * (-errno from the store's open). */
int vp_defer_open(struct vp_defer **out, const struct vp_defer_options *opts,
		  const char *instance);
/* Stop: the jobs queued are run while the store answers, for at most the
 * store's timeout (connects still queued are dropped: their tickets are
 * done with -ECANCELED), the rest dropped; then the store is closed.
 * Every ticket must have been given back (vp_defer_put) before. */
void vp_defer_close(struct vp_defer *d);

/* The server's addresses are known (UP, or a first connect): the worker
 * opens the store as instance (if not yet: "" for none) and starts it
 * (vp_pg_start), again after each failure until it works.  wait: wait for
 * the store's open to return (at UP; never while clients are served).
 * 0, or the open's -errno when waited for; -EALREADY once started. */
int vp_defer_start(struct vp_defer *d, const struct vp_server *server, const char *instance,
		   bool wait);

/* A unique session id for (node, instance): start time in milliseconds and
 * a counter. */
int64_t vp_defer_session_id(struct vp_defer *d);

/* Queue a connect: identity, the match lists' variables (req->getvar) and
 * req->real copied.  NULL: out of memory. */
struct vp_defer_ticket *vp_defer_connect(struct vp_defer *d, const struct vp_request *req,
					 int64_t session);

enum vp_defer_state {
	VP_DEFER_PENDING,	/* no answer yet, deadline not passed */
	VP_DEFER_DONE,		/* answered: *ret, *result, error */
	VP_DEFER_TIMEOUT,	/* deadline passed: refused; the worker undoes it */
};

/* Where a connect is.  On DONE: ret is the store's return code (0, -ENOSPC,
 * ...), result its answer, error (may be NULL) its message for a failure
 * (valid until the ticket is given back).  A ticket polled past its
 * deadline turns TIMEOUT for good: an answer coming later is undone. */
enum vp_defer_state vp_defer_poll(struct vp_defer *d, struct vp_defer_ticket *t, int *ret,
				  struct vp_pg_result *result, const char **error);
/* Give a ticket back.  used: its successful answer became the session (the
 * caller ends it by vp_defer_disconnect); else whatever its connect did or
 * will do is undone (vp_pg_abort). */
void vp_defer_put(struct vp_defer *d, struct vp_defer_ticket *t, bool used);

/* Queue a disconnect; never waits.  0 or -ENOMEM. */
int vp_defer_disconnect(struct vp_defer *d, const uint8_t *id, size_t len, uint16_t slot,
			int64_t session);

/* A message of the worker's, for the main thread. */
enum vp_defer_msg_type {
	VP_DEFER_MSG_ENDED,	/* the store ended a session: ended, reason
				 * ("crash": its node missed its heartbeat;
				 * "restart": this node's previous process) */
	VP_DEFER_MSG_STORE,	/* the store failed (error -errno, message) or
				 * works again (error 0) */
	VP_DEFER_MSG_STARTED,	/* vp_pg_start done */
	VP_DEFER_MSG_ABORTED,	/* a connect undone (identity, session; error
				 * -errno if the undo failed) */
};

struct vp_defer_msg {
	enum vp_defer_msg_type type;
	struct vp_pg_ended ended;	/* identity, node, instance point into the
					 * message */
	const char *reason;
	int error;
	const char *message;
	int64_t session;
};

/* Hand every message waiting to fn, in order, on the caller's thread.
 * Returns how many. */
size_t vp_defer_messages(struct vp_defer *d, void (*fn)(void *ud, const struct vp_defer_msg *m),
			 void *ud);

/* Figures for tests and benchmarks: jobs queued now, connects the worker
 * ran, aborts it ran. */
struct vp_defer_stats {
	size_t queued;
	uint64_t connects, disconnects, aborts, heartbeats, starts;
};
void vp_defer_stats(struct vp_defer *d, struct vp_defer_stats *out);

#endif
