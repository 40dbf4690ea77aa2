/*
 * tls_server.h: the transport hooks the core calls for every TLS connection.
 */
#ifndef TLS_SERVER_H
#define TLS_SERVER_H

#include "core/tcp_conn.h"
#include "core/tcp_read.h"
#include "core/ip_addr.h"

#include "tls_domain.h"

/* Connection flags (struct tls_conn.flags). */
#define TLS_CONN_ESTABLISHED  (1u << 0) /* handshake completed */
#define TLS_CONN_FAILED       (1u << 1) /* fatal error: no more I/O */
#define TLS_CONN_SHUTDOWN     (1u << 2) /* our close_notify was produced */
#define TLS_CONN_STARTED      (1u << 3) /* first handshake step was made */
#define TLS_CONN_KILL         (1u << 4) /* tls.kill: next encode closes it */

struct tls_pending;

/*
 * The TLS state of one connection: tcp_connection.extra_data.
 *
 * Memory: shared memory (the SSL object and its BIO are allocated by
 * OpenSSL after fork, hence in shared memory too: see tls_init.c).
 * Ownership: created by tls_h_tcpconn_init() in the process that creates the
 * tcp_connection (TCP main on accept, the sending process on connect); freed
 * once, by tls_h_tcpconn_clean(), which the core calls when it frees the
 * tcp_connection, when no other process holds a reference.
 * Locking: between those two points every access to the fields below, and
 * every SSL_* call on ssl, is made holding the connection's write_lock. The
 * core already holds it around encode; read and close take it. One lock per
 * connection, so connections never wait for each other.
 */
struct tls_conn {
	SSL *ssl;
	struct tcp_connection *c;    /* the core's connection (outlives us) */
	struct tls_domain_set *set;  /* the generation this connection uses
									(a reference, released in clean) */
	const struct tls_domain *dom; /* in set; may change once, on SNI */
	struct tls_conn *next, *prev; /* tls_shared->conns, under its lock */
	unsigned int started;         /* ticks */
	unsigned int last_io;         /* ticks of the last read or write */
	unsigned int flags;
	struct tls_pending *pending; /* cleartext queued before the handshake
									completed, sent in order after it */
	unsigned int pending_len;
	char *server_name; /* client role: the identity the peer must prove
						  (SNI sent when it is a name), shared memory */
};

int tls_h_tcpconn_init(struct tcp_connection *c, int sock);
void tls_h_tcpconn_clean(struct tcp_connection *c);
void tls_h_tcpconn_close(struct tcp_connection *c, int fd);
int tls_h_read(struct tcp_connection *c, rd_conn_flags_t *flags);
int tls_h_encode(struct tcp_connection *c, const char **pbuf,
		unsigned int *plen, const char **rest_buf, unsigned int *rest_len,
		snd_flags_t *send_flags);

/* Creates the BIO method; must run before fork (every process then has it
 * at the same address, as the shared BIO objects point to it). */
int tls_server_init(void);

/* Asks the connection to close: marks it and sends close_notify through the
 * core (which then closes it). 0, or -1 if it is gone. */
int tls_conn_kill(int id);

/* Closes connections stuck in their handshake; the timer process calls it
 * every second. */
void tls_server_timer(void);

/* Looks up event_route[tls:connection-out]; in mod_init. 0 or -1. */
int tls_server_event_init(void);
/* Set while that route runs, for the selects (see tls_server.c). */
struct sip_msg;
extern struct sip_msg *tls_event_msg;
extern struct tls_conn *tls_event_tc;

/* Low-memory thresholds in bytes (0: off), see tls_server.c. */
void tls_server_set_low_mem(unsigned long t1, unsigned long t2);
void tls_server_destroy(void);

#endif
