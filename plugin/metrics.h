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
/* Count a usage-log event ("connect", "disconnect", "reject", "reclaim",
 * ...; fields as written to the log: a reject's reason= is taken from them)
 * and take the pools' figures from space.  NULL m: no-op. */
void vp_metrics_event(struct vp_metrics *m, const struct vp_space *space, const char *event,
		      const struct vp_strbuf *fields);
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
