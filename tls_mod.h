/*
 * tls_mod.h: module parameters and the domains built from them.
 */
#ifndef TLS_MOD_H
#define TLS_MOD_H

#include <stddef.h>

#include "tls_domain.h"

/* Module parameters, as set by modparam() (see README, "Parameters"). */
struct tls_params {
	char *method;
	char *certificate;
	char *private_key;
	char *private_key_password;
	char *ca_list;
	char *ca_path;
	char *crl;
	char *cipher_list;
	char *cipher_suites;
	int verify_certificate;
	int verify_depth;
	int require_certificate;
	int send_timeout;       /* s */
	int handshake_timeout;  /* s */
	int connection_timeout; /* s, -1: never */
	int disable_compression;
	int log;                /* level of peer-caused events */
	int force_run;
	int low_mem_threshold1; /* KB, -1 automatic, 0 off */
	int low_mem_threshold2;
	/* outbound (client role) */
	char *client_certificate;
	char *client_private_key;
	char *client_private_key_password;
	char *client_ca_list;
	int client_verify_certificate;
	char *client_server_name;
	int verify_wildcard;
	char *xavp_cfg;         /* $xavp(<xavp_cfg>=>server_name) */
	char *config;           /* per-domain config file */
	int auto_reload;        /* s between checks of the files; 0: off */
	int session_resumption; /* tickets and session cache; 0: off */
	int session_cache_size; /* TLS 1.2 session IDs cached (all processes) */
	int ticket_key_lifetime; /* s a ticket key seals new tickets */
};

extern struct tls_params tls_params;

/* Builds the configuration again (config file, certificates, keys, CA
 * lists) and makes it current; on failure the running one stays and err
 * says why in one line. 0 or -1. Any process. */
int tls_reload(unsigned int *generation, char *err, size_t errlen);

#endif
