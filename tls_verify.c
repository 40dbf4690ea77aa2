/*
 * tls_verify.c: RFC 5922 (SIP domain certificates) section 7.
 *
 * The DNS and CN forms use OpenSSL's own host matching (X509_check_host),
 * so the subtle parts (IDNA, embedded NULs, wildcard rules) are OpenSSL's;
 * only the SIP URI form is matched here, since OpenSSL does not know it.
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <openssl/x509v3.h>

#include "tls_verify.h"
#include "tls_util.h"

int tls_is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* "sip:example.com" names example.com; "sip:user@example.com", a port,
 * parameters or another scheme name nothing (RFC 5922 7.1). */
static int tls_sip_uri_domain(const char *uri, size_t len, const char **dom,
		size_t *domlen)
{
	size_t i;

	if (len <= 4 || strncasecmp(uri, "sip:", 4) != 0)
		return 0;
	for (i = 4; i < len; i++)
		if (uri[i] == '@' || uri[i] == ':' || uri[i] == ';' || uri[i] == '?'
				|| uri[i] == '\0')
			return 0;
	*dom = uri + 4;
	*domlen = len - 4;
	return 1;
}

static int tls_match_sip_uri(GENERAL_NAMES *sans, const char *expected)
{
	const char *dom;
	size_t domlen;
	int i;

	for (i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const ASN1_IA5STRING *uri;

		if (gn->type != GEN_URI)
			continue;
		uri = gn->d.uniformResourceIdentifier;
		if (tls_sip_uri_domain((const char *)ASN1_STRING_get0_data(uri),
					(size_t)ASN1_STRING_length(uri), &dom, &domlen)
				&& domlen == strlen(expected)
				&& strncasecmp(dom, expected, domlen) == 0)
			return 1;
	}
	return 0;
}

static void tls_append(char *buf, size_t size, size_t *used, const char *pfx,
		const unsigned char *s, int len)
{
	int n;

	if (*used >= size - 1)
		return;
	n = snprintf(buf + *used, size - *used, "%s%s%.*s", *used ? ", " : "",
			pfx, len, (const char *)s);
	if (n > 0)
		*used += (size_t)n < size - *used ? (size_t)n : size - *used - 1;
}

void tls_verify_identities(X509 *cert, char *buf, size_t size)
{
	GENERAL_NAMES *sans;
	size_t used = 0;
	char ip[64];
	int i;

	if (size == 0)
		return;
	buf[0] = '\0';
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const ASN1_STRING *s;

		switch (gn->type) {
			case GEN_DNS:
				s = gn->d.dNSName;
				tls_append(buf, size, &used, "DNS:", ASN1_STRING_get0_data(s),
						ASN1_STRING_length(s));
				break;
			case GEN_URI:
				s = gn->d.uniformResourceIdentifier;
				tls_append(buf, size, &used, "", ASN1_STRING_get0_data(s),
						ASN1_STRING_length(s));
				break;
			case GEN_IPADD:
				s = gn->d.iPAddress;
				if (inet_ntop(ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6,
							ASN1_STRING_get0_data(s), ip, sizeof(ip)))
					tls_append(buf, size, &used, "IP:",
							(const unsigned char *)ip, (int)strlen(ip));
				break;
		}
	}
	if (sans == NULL) {
		X509_NAME *subj = X509_get_subject_name(cert);
		int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		if (idx >= 0) {
			const ASN1_STRING *cn =
					X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
			tls_append(buf, size, &used, "CN=", ASN1_STRING_get0_data(cn),
					ASN1_STRING_length(cn));
		}
	}
	GENERAL_NAMES_free(sans);
	if (used == 0)
		snprintf(buf, size, "no name");
}

int tls_verify_identity(X509 *cert, const char *expected, int allow_wildcard,
		char *have, size_t havelen)
{
	GENERAL_NAMES *sans;
	unsigned int flags;
	int ok;

	if (cert == NULL || expected == NULL || *expected == '\0')
		return 0;
	if (tls_is_ip_literal(expected)) {
		ok = X509_check_ip_asc(cert, expected, 0) == 1;
	} else {
		sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
		ok = sans && tls_match_sip_uri(sans, expected);
		/* With any subjectAltName present the CN must not be used, even
		 * when the names are all URIs (RFC 5922 7.1), which OpenSSL would
		 * otherwise fall back to. */
		flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS
				| (sans ? X509_CHECK_FLAG_NEVER_CHECK_SUBJECT : 0)
				| (allow_wildcard ? 0 : X509_CHECK_FLAG_NO_WILDCARDS);
		GENERAL_NAMES_free(sans);
		if (!ok)
			ok = X509_check_host(cert, expected, 0, flags, NULL) == 1;
	}
	if (!ok && have)
		tls_verify_identities(cert, have, havelen);
	return ok;
}
