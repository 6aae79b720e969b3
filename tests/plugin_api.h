/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The plugin's entry points as OpenVPN finds them (dlopen, dlsym), for the
 * programs under tests/ that drive the built plugin as OpenVPN would:
 * bench_plugin, bench_multi, drop_driver.
 */
#ifndef VP_TESTS_PLUGIN_API_H
#define VP_TESTS_PLUGIN_API_H

#include <dlfcn.h>
#include <stdbool.h>

#include "vp_autoconf.h"
#ifdef HAVE_OPENVPN_SUBDIR_HEADER
#include <openvpn/openvpn-plugin.h>
#else
#include <openvpn-plugin.h>
#endif

typedef int (*open_fn)(int, struct openvpn_plugin_args_open_in const *,
		       struct openvpn_plugin_args_open_return *);
typedef int (*func_fn)(int, struct openvpn_plugin_args_func_in const *,
		       struct openvpn_plugin_args_func_return *);
typedef void (*close_fn)(openvpn_plugin_handle_t);
typedef void *(*ctor_fn)(openvpn_plugin_handle_t);
typedef void (*dtor_fn)(openvpn_plugin_handle_t, void *);

struct api {
	open_fn open;
	func_fn func;
	close_fn close;
	ctor_fn ctor;
	dtor_fn dtor;
};

/* The entry points of the plugin so (dlopen()ed); false if one is missing. */
static inline bool plugin_api_find(void *so, struct api *a)
{
	a->open = (open_fn)dlsym(so, "openvpn_plugin_open_v3");
	a->func = (func_fn)dlsym(so, "openvpn_plugin_func_v3");
	a->close = (close_fn)dlsym(so, "openvpn_plugin_close_v1");
	a->ctor = (ctor_fn)dlsym(so, "openvpn_plugin_client_constructor_v1");
	a->dtor = (dtor_fn)dlsym(so, "openvpn_plugin_client_destructor_v1");
	return a->open && a->func && a->close && a->ctor && a->dtor;
}

#endif
