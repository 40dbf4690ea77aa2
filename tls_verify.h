/*
 * tls_verify.h: the peer's identity, checked per RFC 5922 section 7.
 */
#ifndef TLS_VERIFY_H
#define TLS_VERIFY_H

#include <stddef.h>
#include <openssl/x509.h>

#define TLS_NAME_MAX 256 /* a DNS name is at most 253 characters */

/* Checks that cert carries the identity `expected` (a domain name or an
 * IP address literal):
 *  - an IP literal matches only an iPAddress subjectAltName;
 *  - a domain matches a subjectAltName URI "sip:<domain>" (no user part,
 *    no port, no parameters), or a dNSName equal to it; the subject CN is
 *    used only when the certificate has no subjectAltName at all;
 *  - comparison is case-insensitive and on the whole name; a wildcard
 *    dNSName ("*.example.com", leftmost label only) matches only when
 *    allow_wildcard is set.
 * Returns 1 on match, 0 otherwise. On mismatch `have` receives what the
 * certificate holds ("DNS:a.example, sip:b.example, CN=c"), for the log. */
int tls_verify_identity(X509 *cert, const char *expected, int allow_wildcard,
		char *have, size_t havelen);

/* 1 when s is an IPv4 or IPv6 address literal (never sent as SNI). */
int tls_is_ip_literal(const char *s);

/* Lists the identities a certificate holds, as above. */
void tls_verify_identities(X509 *cert, char *buf, size_t size);

#endif
