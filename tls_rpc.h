/*
 * tls_rpc.h: the tls.* RPC commands.
 */
#ifndef TLS_RPC_H
#define TLS_RPC_H

#include "core/rpc.h"

extern rpc_export_t tls_rpc_exports[];

#endif
