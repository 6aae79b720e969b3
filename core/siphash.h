/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SipHash-1-3 (Aumasson & Bernstein), keyed, for hash tables whose keys a
 * client may choose. */
#ifndef VP_SIPHASH_H
#define VP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t vp_siphash13(const uint64_t key[2], const void *data, size_t len);

#endif
