/*
 * tls_select.h: the routing script's view of a message's TLS connection:
 * selects (@tls...), pseudo-variables ($tls_...) and is_peer_verified().
 * The complete list is in doc/selects.md.
 */
#ifndef TLS_SELECT_H
#define TLS_SELECT_H

#include "core/sr_module.h"
#include "core/pvar.h"

/* Script functions (is_peer_verified) for module_exports.cmds. */
extern cmd_export_t tls_select_cmds[];

/* Pseudo-variables ($tls_...) for module_exports.pv_items. */
extern pv_export_t tls_select_pvs[];

/* Registers the @tls select table with the core. Must run from
 * mod_register(): selects are resolved while the config is parsed, before
 * mod_init(). 0 or -1. */
int tls_select_register(void);

#endif
