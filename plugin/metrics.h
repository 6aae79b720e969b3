/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metrics file (metrics-file = "..."): Prometheus text format, rewritten
 * atomically (temporary file in the same directory, then rename) so that a
 * reader (node_exporter's textfile collector) never sees half a file.
 *
 * The connect path only copies the pools' figures under a mutex and wakes a
 * writer thread (started at the first client event: OpenVPN opens plugins
 * before its --daemon fork, and a fork keeps no thread); the thread rewrites the file at most once a second, and
 * once more at close, so the file lags the state by at most a second.
 *
 * The temporary file is opened (O_NOFOLLOW, after removing whatever has its
 * name) and renamed through a vp_fs, so that a process that kept its
 * privileges can do it after OpenVPN drops them; a symlink at either name is
 * replaced, never written through.
 */
#ifndef VP_PLUGIN_METRICS_H
#define VP_PLUGIN_METRICS_H

#include "core/config.h"
#include "core/logfmt.h"
#include "core/space.h"

struct vp_metrics;

struct vp_fs;

/* Start the writer for config->metrics_file (config and fs borrowed: must
 * outlive it; NULL fs: this process's own calls).  0 or -errno (the file's
 * directory must exist and be writable: a first write is made before
 * returning). */
int vp_metrics_open(struct vp_metrics **out, const struct vp_config *config,
		    const struct vp_space *space, const struct vp_fs *fs);
/* What the metrics count of an event, typed: nothing is read back from the
 * usage log's text. */
enum vp_metrics_kind {
	VP_METRICS_OTHER,		/* warn, drop, ...: figures only */
	VP_METRICS_START,		/* the plugin's start and stop: figures only, */
	VP_METRICS_STOP,		/* and they do not start the writer thread */
	VP_METRICS_CONNECT,
	VP_METRICS_DISCONNECT,
	VP_METRICS_RECLAIM,
	VP_METRICS_REJECT,
};

struct vp_metrics_event {
	enum vp_metrics_kind kind;
	const char *reason;		/* reject: the usage log's reason ("exhausted",
					 * "no-pool", ...); NULL or another: "other" */
	const char *pool;		/* the pool or router pool it names, or NULL */
	uint64_t in_use, size;		/* of that pool, when it names one */
};

/* The kind of a usage-log event name ("connect", "reject", ...;
 * VP_METRICS_OTHER for one not counted). */
enum vp_metrics_kind vp_metrics_kind_of(const char *event);

/* Count an event and take the pools' figures from space (NULL: keep the
 * last).  NULL m: no-op. */
void vp_metrics_event(struct vp_metrics *m, const struct vp_space *space,
		      const struct vp_metrics_event *ev);
/* Take the pools' figures from space (their sizes are known once the
 * server's addresses are: at UP) and write them: at once, in the caller's
 * thread, before the writer runs; by the writer after that.  NULL m: no-op. */
void vp_metrics_update(struct vp_metrics *m, const struct vp_space *space);
/* Whether writing the file started failing, failed otherwise, or works
 * again since the last call; *error: -errno, or 0 when it works again.
 * false for NULL m. */
bool vp_metrics_report(struct vp_metrics *m, int *error);
/* Write the last figures and stop the writer.  NULL is fine. */
void vp_metrics_close(struct vp_metrics *m, const struct vp_space *space);

/* Append value as a Prometheus label value (without the quotes): '\', '"'
 * and newline escaped, bytes that are not UTF-8 replaced by U+FFFD. */
void vp_metrics_label(struct vp_strbuf *b, const char *value);

#endif
