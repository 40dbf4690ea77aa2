/*
 * tls_mod.h: module parameters and the domains built from them.
 */
#ifndef TLS_MOD_H
#define TLS_MOD_H

#include "tls_domain.h"

/* Module parameters, as set by modparam() (see README, "Parameters"). */
struct tls_params {
	char *method;
	char *certificate;
	char *private_key;
	char *private_key_password;
	char *ca_list;
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
};

extern struct tls_params tls_params;

/* The domains in use. Built before fork in mod_init(); read-only after. */
extern struct tls_domain *tls_server_domain;
extern struct tls_domain *tls_client_domain;

#endif
