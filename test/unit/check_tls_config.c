/*
 * check_tls_config.c: unit tests of the config-file parser (tls_config.c).
 *
 * The parser is plain libc, so this test links tls_config.c alone (no core
 * stubs, no OpenSSL library; tls_domain.h is included for the role
 * constants only):
 *
 *   cc -std=gnu11 -Wall -Wextra -I../.. check_tls_config.c ../../tls_config.c \
 *      $(pkg-config --cflags --libs check) -o check_tls_config
 *
 * Every error is checked for its line number, for naming the key or section
 * at fault, and for being a single line.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_config.h"

#define CFG "/etc/kamailio/tls.cfg"

static char err[1024];

static struct tls_cfg_domain *parse_n(const char *text, size_t len)
{
	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	return tls_cfg_parse(CFG, text, len, err, sizeof(err));
}

static struct tls_cfg_domain *parse(const char *text)
{
	return parse_n(text, strlen(text));
}

/* Parses text that must be valid; fails the test with the error if not. */
static struct tls_cfg_domain *ok(const char *text)
{
	struct tls_cfg_domain *l = parse(text);

	ck_assert_msg(l != NULL, "unexpected error: %s", err);
	ck_assert_str_eq(err, "");
	return l;
}

static int count(const struct tls_cfg_domain *l)
{
	int n = 0;

	for (; l; l = l->next)
		n++;
	return n;
}

static const struct tls_cfg_domain *nth(const struct tls_cfg_domain *l,
		int i)
{
	while (l && i-- > 0)
		l = l->next;
	ck_assert_ptr_nonnull(l);
	return l;
}

/* err must be "<file>:<line>: ..." on one line containing every needle
 * (NULL-terminated list). */
static void check_err_v(const char *file, int line, va_list ap)
{
	char prefix[PATH_MAX + 32];
	const char *needle;

	snprintf(prefix, sizeof(prefix), "%s:%d: ", file, line);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
			"error '%s' does not start with '%s'", err, prefix);
	ck_assert_msg(strchr(err, '\n') == NULL, "error has a newline: '%s'",
			err);
	ck_assert_msg(strlen(err) < sizeof(err) - 1, "error too long: '%s'", err);
	while ((needle = va_arg(ap, const char *)) != NULL)
		ck_assert_msg(strstr(err, needle) != NULL,
				"error '%s' does not contain '%s'", err, needle);
}

/* The text must fail at line with an error containing the needles. */
static void bad_n(const char *text, size_t len, int line, ...)
{
	struct tls_cfg_domain *l = parse_n(text, len);
	va_list ap;

	ck_assert_msg(l == NULL, "accepted, expected an error at line %d: %.200s",
			line, text);
	tls_cfg_free(l);
	va_start(ap, line);
	check_err_v(CFG, line, ap);
	va_end(ap);
}

#define bad(text, line, ...) \
	bad_n((text), strlen(text), (line), __VA_ARGS__, (const char *)NULL)

/* ---- scratch directory ------------------------------------------------- */

static char tmpdir[1024];

static void tmp_setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/check_tls_config.XXXXXX",
			t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static const char *tmp_write(const char *name, const char *data, size_t len)
{
	static char path[2048];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* ---- valid constructs -------------------------------------------------- */

static const char *readme =
	"# comment, also ; comment\n"
	"; a comment line too\n"
	"[server:default]\n"
	"method = TLSv1.2+\n"
	"verify_certificate = no\n"
	"require_certificate = no\n"
	"private_key = default_key.pem\n"
	"certificate = default_cert.pem\n"
	"ca_list = default_ca.pem\n"
	"\n"
	"[client:default]\n"
	"verify_certificate = yes\n"
	"\n"
	"[server:127.0.0.1:5061]      # IPv4 address:port\n"
	"[server:[::1]:5061]           # IPv6 in brackets\n"
	"[client:10.0.0.5:5061]\n"
	"[server:any]                  # name-based: selected by SNI\n"
	"server_name = example.com, *.example.com, sip.example.org\n"
	"sni_default = yes   # this domain serves clients that send no SNI\n";

static void check_readme(const struct tls_cfg_domain *l)
{
	const struct tls_cfg_domain *d;

	ck_assert_int_eq(count(l), 6);

	d = nth(l, 0);
	ck_assert_int_eq(d->role, TLS_ROLE_SERVER);
	ck_assert_int_eq(d->kind, TLS_CFG_DEFAULT);
	ck_assert_int_eq(d->line, 3);
	ck_assert_str_eq(d->file, CFG);
	ck_assert_str_eq(d->method, "TLSv1.2+");
	ck_assert_int_eq(d->verify_certificate, 0);
	ck_assert_int_eq(d->require_certificate, 0);
	ck_assert_str_eq(d->private_key, "/etc/kamailio/default_key.pem");
	ck_assert_str_eq(d->certificate, "/etc/kamailio/default_cert.pem");
	ck_assert_str_eq(d->ca_list, "/etc/kamailio/default_ca.pem");
	ck_assert_ptr_null(d->ca_path);
	ck_assert_ptr_null(d->crl);
	ck_assert_ptr_null(d->private_key_password);
	ck_assert_ptr_null(d->cipher_list);
	ck_assert_ptr_null(d->cipher_suites);
	ck_assert_int_eq(d->verify_depth, -1);
	ck_assert_int_eq(d->server_names_no, 0);
	ck_assert_int_eq(d->sni_default, 0);
	ck_assert_int_eq(d->key_line[TLS_CFG_METHOD], 4);
	ck_assert_int_eq(d->key_line[TLS_CFG_CA_LIST], 9);
	ck_assert_int_eq(d->key_line[TLS_CFG_CRL], 0);

	d = nth(l, 1);
	ck_assert_int_eq(d->role, TLS_ROLE_CLIENT);
	ck_assert_int_eq(d->kind, TLS_CFG_DEFAULT);
	ck_assert_int_eq(d->line, 11);
	ck_assert_int_eq(d->verify_certificate, 1);
	ck_assert_int_eq(d->require_certificate, -1);
	ck_assert_ptr_null(d->method);
	ck_assert_ptr_null(d->certificate);

	d = nth(l, 2);
	ck_assert_int_eq(d->role, TLS_ROLE_SERVER);
	ck_assert_int_eq(d->kind, TLS_CFG_ADDR);
	ck_assert_int_eq(d->af, AF_INET);
	ck_assert_str_eq(d->addr, "127.0.0.1");
	ck_assert_uint_eq(d->port, 5061);
	ck_assert_int_eq(d->line, 14);

	d = nth(l, 3);
	ck_assert_int_eq(d->role, TLS_ROLE_SERVER);
	ck_assert_int_eq(d->kind, TLS_CFG_ADDR);
	ck_assert_int_eq(d->af, AF_INET6);
	ck_assert_str_eq(d->addr, "::1");
	ck_assert_uint_eq(d->port, 5061);
	ck_assert_int_eq(d->line, 15);

	d = nth(l, 4);
	ck_assert_int_eq(d->role, TLS_ROLE_CLIENT);
	ck_assert_int_eq(d->kind, TLS_CFG_ADDR);
	ck_assert_str_eq(d->addr, "10.0.0.5");
	ck_assert_uint_eq(d->port, 5061);

	d = nth(l, 5);
	ck_assert_int_eq(d->role, TLS_ROLE_SERVER);
	ck_assert_int_eq(d->kind, TLS_CFG_ANY);
	ck_assert_int_eq(d->line, 17);
	ck_assert_int_eq(d->server_names_no, 3);
	ck_assert_str_eq(d->server_names[0], "example.com");
	ck_assert_str_eq(d->server_names[1], "*.example.com");
	ck_assert_str_eq(d->server_names[2], "sip.example.org");
	ck_assert_int_eq(d->sni_default, 1);
	ck_assert_int_eq(d->key_line[TLS_CFG_SERVER_NAME], 18);
	ck_assert_int_eq(d->key_line[TLS_CFG_SNI_DEFAULT], 19);
	ck_assert_ptr_null(d->next);
}

START_TEST(t_readme)
{
	struct tls_cfg_domain *l = ok(readme);

	check_readme(l);
	tls_cfg_free(l);
}
END_TEST

START_TEST(t_crlf)
{
	const char *s;
	char *crlf = malloc(strlen(readme) * 2 + 1), *o = crlf;
	struct tls_cfg_domain *l;

	for (s = readme; *s; s++) {
		if (*s == '\n')
			*o++ = '\r';
		*o++ = *s;
	}
	*o = '\0';
	l = ok(crlf);
	check_readme(l);
	tls_cfg_free(l);
	/* Errors keep counting CRLF lines. */
	bad("[server:default]\r\n\r\nmethod = a\r\nbogus = 1\r\n", 4,
			"unknown key 'bogus'");
	/* The last line may lack its line ending, with or without CR. */
	l = ok("[server:default]\r\nmethod = TLSv1.3\r");
	ck_assert_str_eq(l->method, "TLSv1.3");
	tls_cfg_free(l);
	l = ok("[server:default]\nmethod = TLSv1.3");
	ck_assert_str_eq(l->method, "TLSv1.3");
	tls_cfg_free(l);
	/* A lone CR inside a line is a control character. */
	bad("[server:default]\nmethod = a\rb\n", 2, "control character 0x0d");
	/* Old Mac line endings: one line with CRs in it. */
	bad("[server:default]\rmethod = a\r", 1, "control character 0x0d");
	free(crlf);
}
END_TEST

START_TEST(t_all_keys)
{
	struct tls_cfg_domain *l = ok(
			"[client:default]\n"
			"method = TLSv1.3\n"
			"verify_certificate = on\n"
			"require_certificate = true\n"
			"private_key = /keys/k.pem\n"
			"private_key_password = s3cret\n"
			"certificate = /certs/c.pem\n"
			"verify_depth = 4\n"
			"ca_list = /ca/list.pem\n"
			"ca_path = /ca/dir\n"
			"crl = /ca/crl.pem\n"
			"cipher_list = ECDHE+AESGCM:!aNULL\n"
			"cipher_suites = TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256\n"
			"server_name = sip.example.com\n");

	ck_assert_int_eq(count(l), 1);
	ck_assert_str_eq(l->method, "TLSv1.3");
	ck_assert_int_eq(l->verify_certificate, 1);
	ck_assert_int_eq(l->require_certificate, 1);
	ck_assert_str_eq(l->private_key, "/keys/k.pem");
	ck_assert_str_eq(l->private_key_password, "s3cret");
	ck_assert_str_eq(l->certificate, "/certs/c.pem");
	ck_assert_int_eq(l->verify_depth, 4);
	ck_assert_str_eq(l->ca_list, "/ca/list.pem");
	ck_assert_str_eq(l->ca_path, "/ca/dir");
	ck_assert_str_eq(l->crl, "/ca/crl.pem");
	ck_assert_str_eq(l->cipher_list, "ECDHE+AESGCM:!aNULL");
	ck_assert_str_eq(l->cipher_suites,
			"TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
	ck_assert_int_eq(l->server_names_no, 1);
	ck_assert_str_eq(l->server_names[0], "sip.example.com");
	for (int k = 0; k < TLS_CFG_KEYS; k++)
		if (k != TLS_CFG_SNI_DEFAULT)
			ck_assert_int_eq(l->key_line[k], k + 2);
	ck_assert_int_eq(l->key_line[TLS_CFG_SNI_DEFAULT], 0);
	tls_cfg_free(l);
}
END_TEST

START_TEST(t_aliases)
{
	struct tls_cfg_domain *l = ok(
			"[server:default]\n"
			"tls_method = TLSv1.2\n"
			"verify_cert = 1\n"
			"require_cert = 1\n"
			"pkey_file = key.pem\n"
			"cert_file = cert.pem\n"
			"calist_file = ca.pem\n"
			"ca_dir = cadir\n"
			"crl_file = crl.pem\n"
			"[client:default]\n"
			"TLS_Method = TLSv1.3\n"       /* keys in any case */
			"Verify_Certificate = 0\n");

	ck_assert_str_eq(l->method, "TLSv1.2");
	ck_assert_int_eq(l->verify_certificate, 1);
	ck_assert_int_eq(l->require_certificate, 1);
	ck_assert_str_eq(l->private_key, "/etc/kamailio/key.pem");
	ck_assert_str_eq(l->certificate, "/etc/kamailio/cert.pem");
	ck_assert_str_eq(l->ca_list, "/etc/kamailio/ca.pem");
	ck_assert_str_eq(l->ca_path, "/etc/kamailio/cadir");
	ck_assert_str_eq(l->crl, "/etc/kamailio/crl.pem");
	ck_assert_int_eq(l->key_line[TLS_CFG_METHOD], 2);
	ck_assert_int_eq(l->key_line[TLS_CFG_CRL], 9);
	ck_assert_str_eq(l->next->method, "TLSv1.3");
	ck_assert_int_eq(l->next->verify_certificate, 0);
	tls_cfg_free(l);

	/* Only the listed aliases. */
	bad("[server:default]\nverify_client = yes\n", 2,
			"unknown key 'verify_client'", "[server:default]");
	bad("[server:default]\nca_file = x\n", 2, "unknown key 'ca_file'");
	/* An alias and its key are the same setting. */
	bad("[server:default]\ncertificate = a\ncert_file = b\n", 3,
			"duplicate key 'cert_file'", "certificate", "line 2");
	bad("[server:default]\nca_dir = a\nca_path = b\n", 3,
			"duplicate key 'ca_path'", "line 2");
}
END_TEST

START_TEST(t_key_names)
{
	char buf[96];
	struct tls_cfg_domain *l;

	ck_assert_str_eq(tls_cfg_key_name(TLS_CFG_METHOD), "method");
	ck_assert_str_eq(tls_cfg_key_name(TLS_CFG_CA_PATH), "ca_path");
	ck_assert_str_eq(tls_cfg_key_name(TLS_CFG_SNI_DEFAULT), "sni_default");
	ck_assert_str_eq(tls_cfg_key_name(TLS_CFG_KEYS), "?");

	l = ok("[client:[2001:DB8:0:0::1]:65535]\n[server:any]\nserver_name=a\n"
			"[server:1.2.3.4:1]\n[client:default]\n");
	ck_assert_str_eq(tls_cfg_section_name(l, buf, sizeof(buf)),
			"[client:[2001:db8::1]:65535]");
	ck_assert_str_eq(tls_cfg_section_name(l->next, buf, sizeof(buf)),
			"[server:any]");
	ck_assert_str_eq(tls_cfg_section_name(l->next->next, buf, sizeof(buf)),
			"[server:1.2.3.4:1]");
	ck_assert_str_eq(tls_cfg_section_name(l->next->next->next, buf,
			sizeof(buf)), "[client:default]");
	ck_assert_str_eq(tls_cfg_section_name(l, buf, 8), "[client");
	tls_cfg_free(l);
}
END_TEST

START_TEST(t_booleans)
{
	static const struct {
		const char *s;
		int v;
	} b[] = {
		{"yes", 1}, {"YES", 1}, {"Yes", 1}, {"on", 1}, {"ON", 1},
		{"true", 1}, {"True", 1}, {"1", 1}, {"no", 0}, {"NO", 0},
		{"off", 0}, {"Off", 0}, {"false", 0}, {"FALSE", 0}, {"0", 0},
		{"\"yes\"", 1},
	};
	char text[256];
	size_t i;

	for (i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		struct tls_cfg_domain *l;

		snprintf(text, sizeof(text), "[server:any]\nserver_name = a.b\n"
				"verify_certificate = %s\nrequire_cert=%s\nsni_default\t=\t%s\n",
				b[i].s, b[i].s, b[i].s);
		l = ok(text);
		ck_assert_int_eq(l->verify_certificate, b[i].v);
		ck_assert_int_eq(l->require_certificate, b[i].v);
		ck_assert_int_eq(l->sni_default, b[i].v);
		tls_cfg_free(l);
	}
	bad("[server:default]\nverify_certificate = maybe\n", 2,
			"verify_certificate", "bad value 'maybe'");
	bad("[server:default]\nrequire_cert = 2\n", 2, "require_cert",
			"bad value '2'");
	bad("[server:default]\nverify_certificate = yes please\n", 2,
			"verify_certificate", "'yes please'");
	bad("[server:default]\nverify_certificate = y\n", 2,
			"verify_certificate");
	bad("[server:default]\nverify_certificate = 01\n", 2,
			"verify_certificate");
	bad("[server:any]\nserver_name = a\nsni_default = sure\n", 3,
			"sni_default", "'sure'");
}
END_TEST

START_TEST(t_integers)
{
	struct tls_cfg_domain *l;
	char text[128];

	l = ok("[server:default]\nverify_depth = 0\n");
	ck_assert_int_eq(l->verify_depth, 0);
	tls_cfg_free(l);
	l = ok("[server:default]\nverify_depth = 007\n");
	ck_assert_int_eq(l->verify_depth, 7);
	tls_cfg_free(l);
	snprintf(text, sizeof(text), "[server:default]\nverify_depth = %d\n",
			INT_MAX);
	l = ok(text);
	ck_assert_int_eq(l->verify_depth, INT_MAX);
	tls_cfg_free(l);

	bad("[server:default]\nverify_depth = -1\n", 2, "verify_depth",
			"'-1'");
	bad("[server:default]\nverify_depth = +1\n", 2, "verify_depth");
	bad("[server:default]\nverify_depth = 0x10\n", 2, "verify_depth",
			"'0x10'");
	bad("[server:default]\nverify_depth = 1 2\n", 2, "verify_depth");
	bad("[server:default]\nverify_depth = nine\n", 2, "verify_depth");
	bad("[server:default]\nverify_depth = 2147483648\n", 2, "verify_depth");
	bad("[server:default]\nverify_depth = 99999999999999999999999\n", 2,
			"verify_depth");
}
END_TEST

START_TEST(t_quotes)
{
	struct tls_cfg_domain *l = ok(
			"[server:default]\n"
			"private_key_password = \"p#ss;word with spaces \"  # comment\n"
			"cipher_list = \"a\\\"b\\\\c\\d\" ; comment\n"
			"method=\"TLSv1.2+\"\n"
			"certificate = \"my certs/#1.pem\"\n"
			"cipher_suites =   TLS_AES_128_GCM_SHA256   \n");

	ck_assert_str_eq(l->private_key_password, "p#ss;word with spaces ");
	ck_assert_str_eq(l->cipher_list, "a\"b\\c\\d");
	ck_assert_str_eq(l->method, "TLSv1.2+");
	ck_assert_str_eq(l->certificate, "/etc/kamailio/my certs/#1.pem");
	ck_assert_str_eq(l->cipher_suites, "TLS_AES_128_GCM_SHA256");
	tls_cfg_free(l);

	/* Unquoted: a comment ends the value, inner blanks stay. */
	l = ok("[server:default]\nprivate_key_password = ab#cd\n"
			"cipher_list = HIGH !aNULL;x\n");
	ck_assert_str_eq(l->private_key_password, "ab");
	ck_assert_str_eq(l->cipher_list, "HIGH !aNULL");
	tls_cfg_free(l);

	bad("[server:default]\n\nprivate_key_password = \"abc\n", 3,
			"private_key_password", "unterminated quote");
	bad("[server:default]\ncertificate = \"abc\\\"\n", 2, "certificate",
			"unterminated quote");
	bad("[server:default]\nmethod = \"a\" b\n", 2, "method",
			"after the quoted value");
	bad("[server:default]\nmethod = a\"b\"\n", 2, "method", "stray quote");
	bad("[server:default]\nmethod = \"\"\n", 2, "method", "empty value");
	bad("[server:default]\nmethod =\n", 2, "method", "empty value");
	bad("[server:default]\nmethod =   # nothing\n", 2, "method",
			"empty value");
}
END_TEST

START_TEST(t_comments_blanks)
{
	struct tls_cfg_domain *l = ok(
			"\n"
			"   \n"
			"\t# indented comment\n"
			"  ; indented comment\n"
			"#[client:default]\n"
			"  [server:default]  ; comment after header\n"
			"\n"
			"\t method\t=\tTLSv1.2   # comment\n"
			"   verify_depth=3;comment\n"
			"[client:default]#comment\n");

	ck_assert_int_eq(count(l), 2);
	ck_assert_int_eq(l->line, 6);
	ck_assert_str_eq(l->method, "TLSv1.2");
	ck_assert_int_eq(l->verify_depth, 3);
	ck_assert_int_eq(l->key_line[TLS_CFG_VERIFY_DEPTH], 9);
	ck_assert_int_eq(l->next->line, 10);
	tls_cfg_free(l);

	/* A UTF-8 byte order mark is skipped. */
	l = ok("\xef\xbb\xbf[server:default]\n");
	ck_assert_int_eq(l->line, 1);
	tls_cfg_free(l);
	/* Non-ASCII bytes in values are kept. */
	l = ok("[server:default]\nprivate_key_password = p\xc3\xa4ss\n");
	ck_assert_str_eq(l->private_key_password, "p\xc3\xa4ss");
	tls_cfg_free(l);
}
END_TEST

START_TEST(t_ipv6)
{
	struct tls_cfg_domain *l = ok(
			"[server:[::1]:5061]\n"
			"[server:[2001:0db8:0000:0000:0000:0000:0000:0001]:5061]\n"
			"[client:[fe80::1:2:3:4]:1]\n"
			"[server:[::ffff:192.0.2.1]:5061]\n"
			"[server:[::]:5061]\n"
			"[client:[::1]:5061]\n"
			"[server:[::1]:5062]\n");

	ck_assert_int_eq(count(l), 7);
	ck_assert_str_eq(nth(l, 0)->addr, "::1");
	ck_assert_int_eq(nth(l, 0)->af, AF_INET6);
	ck_assert_str_eq(nth(l, 1)->addr, "2001:db8::1");
	ck_assert_str_eq(nth(l, 2)->addr, "fe80::1:2:3:4");
	ck_assert_uint_eq(nth(l, 2)->port, 1);
	ck_assert_int_eq(nth(l, 2)->role, TLS_ROLE_CLIENT);
	ck_assert_str_eq(nth(l, 3)->addr, "::ffff:192.0.2.1");
	ck_assert_str_eq(nth(l, 4)->addr, "::");
	tls_cfg_free(l);

	/* The same address written twice differently is a duplicate. */
	bad("[server:[::1]:5061]\n[server:[0:0:0:0:0:0:0:1]:5061]\n", 2,
			"duplicate section [server:[::1]:5061]", "line 1");
	bad("[server:::1:5061]\n", 1, "[server:::1:5061]", "in brackets");
	bad("[server:2001:db8::1:5061]\n", 1, "in brackets");
	bad("[server:[::g]:5061]\n", 1, "bad IPv6 address '::g'");
	bad("[server:[1.2.3.4]:5061]\n", 1, "bad IPv6 address");
	bad("[server:[fe80::1%eth0]:5061]\n", 1, "bad IPv6 address");
	bad("[server:[::1]]\n", 1, "[server:[::1]]", "[IPv6]:port");
	bad("[server:[::1]5061]\n", 1, "[IPv6]:port");
	bad("[server:[::1]:]\n", 1, "bad port");
	bad("[server:[::1]:65536]\n", 1, "[server:[::1]:65536]",
			"bad port '65536'");
	bad("[server:[::1:5061]\n", 1, "[IPv6]:port");
	bad("[server:[]:5061]\n", 1, "bad IPv6 address");
}
END_TEST

START_TEST(t_ipv4)
{
	struct tls_cfg_domain *l = ok(
			"[server:0.0.0.0:5061]\n"
			"[server:192.0.2.1:5061]\n"
			"[server:192.0.2.1:5062]\n"
			"[client:192.0.2.1:5061]\n"
			"[server:255.255.255.255:65535]\n"
			"[SERVER:10.1.2.3:00443]\n");

	ck_assert_int_eq(count(l), 6);
	ck_assert_str_eq(nth(l, 5)->addr, "10.1.2.3");
	ck_assert_uint_eq(nth(l, 5)->port, 443);
	ck_assert_uint_eq(nth(l, 4)->port, 65535);
	tls_cfg_free(l);

	bad("[server:256.1.1.1:5061]\n", 1, "bad IPv4 address '256.1.1.1'",
			"[server:256.1.1.1:5061]");
	bad("[server:1.2.3:5061]\n", 1, "bad IPv4 address");
	bad("[server:example.com:5061]\n", 1, "bad IPv4 address 'example.com'");
	bad("[server: 1.2.3.4:5061]\n", 1, "bad IPv4 address");
	bad("[server:1.2.3.4:0]\n", 1, "bad port '0'", "[server:1.2.3.4:0]");
	bad("[server:1.2.3.4:65536]\n", 1, "bad port '65536'");
	bad("[server:1.2.3.4:99999999999999999999]\n", 1, "bad port");
	bad("[server:1.2.3.4:-1]\n", 1, "bad port '-1'");
	bad("[server:1.2.3.4:50 61]\n", 1, "bad port");
	bad("[server:1.2.3.4:]\n", 1, "bad port");
	bad("[server:1.2.3.4]\n", 1, "[server:1.2.3.4]", "IPv4:port");
	bad("[client:1.2.3.4:5061]\n[client:1.2.3.4:5061]\n", 2,
			"duplicate section [client:1.2.3.4:5061]", "line 1");
}
END_TEST

START_TEST(t_sections)
{
	/* One default per role, any number of 'any' sections, addresses per
	 * role; sections may be empty. */
	struct tls_cfg_domain *l = ok("[server:default]\n[client:default]\n"
			"[server:any]\nserver_name=a.com\n[server:any]\nserver_name=b.com\n"
			"[client:any]\nserver_name=a.com\n[server:1.2.3.4:5]\n"
			"[client:1.2.3.4:5]\n");

	ck_assert_int_eq(count(l), 7);
	ck_assert_int_eq(nth(l, 2)->kind, TLS_CFG_ANY);
	ck_assert_int_eq(nth(l, 3)->kind, TLS_CFG_ANY);
	ck_assert_int_eq(nth(l, 3)->line, 5);
	ck_assert_int_eq(nth(l, 4)->role, TLS_ROLE_CLIENT);
	ck_assert_int_eq(nth(l, 5)->addr[0], '1');
	ck_assert_int_eq(nth(l, 0)->addr[0], '\0');
	ck_assert_uint_eq(nth(l, 0)->port, 0);
	tls_cfg_free(l);
}
END_TEST

START_TEST(t_section_errors)
{
	bad("[foo:default]\n", 1, "unknown section [foo:default]");
	bad("[server]\n", 1, "unknown section [server]");
	bad("[]\n", 1, "unknown section []");
	bad("[tls:default]\n", 1, "unknown section [tls:default]");
	bad("[server:bogus]\n", 1, "[server:bogus]",
			"expected default, any, IPv4:port or [IPv6]:port");
	bad("[server:]\n", 1, "[server:]");
	bad("[server:default\n", 1, "'[server:default'", "no closing ']'");
	bad("[server:default] method = x\n", 1, "[server:default]",
			"unexpected text after the header", "'method = x'");
	bad("[server:default]]\n", 1, "[server:default]", "after the header");
	bad("[server:[::1]:50]61]\n", 1, "[server:[::1]:50]", "after the header",
			"'61]'");
	bad("[server:default]\n[server:default]\n", 2,
			"duplicate section [server:default]", "line 1");
	bad("[client:default]\n\n[server:any]\nserver_name=a\n[Client:DEFAULT]\n",
			5, "duplicate section [client:default]", "line 1");
	/* An 'any' section needs a server_name; the error is at its header. */
	bad("[server:any]\nmethod = TLSv1.2\n[client:default]\n", 1,
			"[server:any]", "no server_name");
	bad("[server:default]\n[client:any]\n", 2, "[client:any]",
			"no server_name");
}
END_TEST

START_TEST(t_section_case)
{
	struct tls_cfg_domain *l = ok("[SERVER:DEFAULT]\n[Client:Any]\n"
			"server_name=x.y\n");

	ck_assert_int_eq(l->role, TLS_ROLE_SERVER);
	ck_assert_int_eq(l->kind, TLS_CFG_DEFAULT);
	ck_assert_int_eq(l->next->role, TLS_ROLE_CLIENT);
	ck_assert_int_eq(l->next->kind, TLS_CFG_ANY);
	tls_cfg_free(l);
}
END_TEST

START_TEST(t_key_errors)
{
	bad("method = TLSv1.2\n[server:default]\n", 1, "key 'method'",
			"outside of any section");
	bad("# header comes later\n\nverify_cert = yes\n", 3, "'verify_cert'",
			"outside of any section");
	bad("[server:default]\nfoo = 1\n", 2, "unknown key 'foo'",
			"[server:default]");
	bad("[server:[::1]:5061]\nfoo = 1\n", 2, "unknown key 'foo'",
			"[server:[::1]:5061]");
	bad("[server:default]\nmethod TLSv1.2\n", 2, "expected 'key = value'",
			"'method TLSv1.2'");
	bad("[server:default]\nmethod\n", 2, "expected 'key = value'");
	bad("[server:default]\n= x\n", 2, "missing key");
	bad("[server:default]\nmeth-od = x\n", 2, "bad key 'meth-od'");
	bad("[server:default]\n\"method\" = x\n", 2, "expected 'key = value'");
	bad("[server:default]\nmethod = a\nmethod = b\n", 3,
			"duplicate key 'method'", "[server:default]", "line 2");
	bad("[server:default]\nMETHOD = a\ntls_method = b\n", 3,
			"duplicate key 'tls_method'", "method", "line 2");
	/* Keys are per section: the same key in two sections is fine. */
	tls_cfg_free(ok("[server:default]\nmethod=a\n[client:default]\n"
			"method=b\n"));
}
END_TEST

START_TEST(t_paths)
{
	struct tls_cfg_domain *l;
	char cwd[PATH_MAX], want[PATH_MAX + 64];

	l = ok("[server:default]\n"
			"certificate = ./certs//c.pem\n"
			"private_key = /abs//dir/./k.pem\n"
			"ca_list = ../ca/ca.pem\n"
			"ca_path = .\n"
			"crl = sub/dir/\n"
			"cipher_list = ./not/a/path\n"
			"private_key_password = ./not/a/path\n"
			"method = ./x\n");
	ck_assert_str_eq(l->certificate, "/etc/kamailio/certs/c.pem");
	ck_assert_str_eq(l->private_key, "/abs/dir/k.pem");
	ck_assert_str_eq(l->ca_list, "/etc/kamailio/../ca/ca.pem");
	ck_assert_str_eq(l->ca_path, "/etc/kamailio");
	ck_assert_str_eq(l->crl, "/etc/kamailio/sub/dir");
	ck_assert_str_eq(l->cipher_list, "./not/a/path");
	ck_assert_str_eq(l->private_key_password, "./not/a/path");
	ck_assert_str_eq(l->method, "./x");
	tls_cfg_free(l);

	/* A file in the root directory. */
	l = tls_cfg_parse("/tls.cfg", "[server:default]\ncertificate=c.pem\n",
			35, err, sizeof(err));
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(l->certificate, "/c.pem");
	tls_cfg_free(l);

	/* A relative file name is taken from the current directory. */
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	l = tls_cfg_parse("conf/./tls.cfg", "[server:default]\ncertificate="
			"c.pem\n", 35, err, sizeof(err));
	ck_assert_ptr_nonnull(l);
	snprintf(want, sizeof(want), "%s/conf/c.pem",
			strcmp(cwd, "/") ? cwd : "");
	ck_assert_str_eq(l->certificate, want);
	ck_assert_str_eq(l->file, "conf/./tls.cfg");
	tls_cfg_free(l);
	l = tls_cfg_parse("tls.cfg", "[server:default]\ncertificate=c.pem\n",
			35, err, sizeof(err));
	ck_assert_ptr_nonnull(l);
	snprintf(want, sizeof(want), "%s/c.pem", strcmp(cwd, "/") ? cwd : "");
	ck_assert_str_eq(l->certificate, want);
	tls_cfg_free(l);
}
END_TEST

START_TEST(t_server_names)
{
	struct tls_cfg_domain *l = ok(
			"[server:any]\n"
			"server_name = A.Example.COM,b.example.com c.example.com ,\t"
			"d.example.com , *.e.example.com xn--bcher-kva.example 9x.com"
			" a-b.c\n"
			"[server:any]\n"
			"server_name = \"example.net\"\n"
			"[client:any]\n"
			"server_name = a.example.com\n"    /* other role: fine */
			"[server:default]\n"
			"server_name = a.example.com\n"    /* not 'any': fine */
			"[server:any]\n"
			"server_name = *.a.example.com\n"  /* overlap, not equal */
			"[server:any]\n"
			"server_name = *.com\n");

	ck_assert_int_eq(l->server_names_no, 8);
	ck_assert_str_eq(l->server_names[0], "a.example.com");
	ck_assert_str_eq(l->server_names[1], "b.example.com");
	ck_assert_str_eq(l->server_names[2], "c.example.com");
	ck_assert_str_eq(l->server_names[3], "d.example.com");
	ck_assert_str_eq(l->server_names[4], "*.e.example.com");
	ck_assert_str_eq(l->server_names[5], "xn--bcher-kva.example");
	ck_assert_str_eq(l->server_names[6], "9x.com");
	ck_assert_str_eq(l->server_names[7], "a-b.c");
	ck_assert_str_eq(nth(l, 1)->server_names[0], "example.net");
	ck_assert_int_eq(count(l), 6);
	tls_cfg_free(l);

	/* Single-label names are host names too. */
	l = ok("[server:any]\nserver_name = localhost\n");
	ck_assert_str_eq(l->server_names[0], "localhost");
	tls_cfg_free(l);
}
END_TEST

START_TEST(t_server_name_errors)
{
	char text[1024], name[300];

#define SN "[server:any]\nserver_name = "
	bad(SN "a.*.com\n", 2, "server_name", "'a.*.com'", "leftmost label");
	bad(SN "*\n", 2, "server_name", "'*'", "lone");
	bad(SN "ok.com, *\n", 2, "server_name", "'*'");
	bad(SN "*.\n", 2, "server_name", "'*.'");
	bad(SN "f*.example.com\n", 2, "'f*.example.com'", "leftmost label");
	bad(SN "*foo.example.com\n", 2, "'*foo.example.com'");
	bad(SN "*.*.example.com\n", 2, "'*.*.example.com'");
	bad(SN "example.*\n", 2, "'example.*'");
	bad(SN "a,,b\n", 2, "server_name", "empty name");
	bad(SN ",a\n", 2, "server_name", "empty name");
	bad(SN "a, ,b\n", 2, "server_name", "empty name");
	bad(SN "a,\n", 2, "server_name", "ends with ','");
	bad(SN ",\n", 2, "server_name", "empty name");
	bad(SN "\"  \"\n", 2, "server_name", "no name");
	bad(SN "exa_mple.com\n", 2, "'exa_mple.com'", "bad character");
	bad(SN "example.com.\n", 2, "'example.com.'", "empty label");
	bad(SN ".example.com\n", 2, "empty label");
	bad(SN "a..b\n", 2, "empty label");
	bad(SN "-a.com\n", 2, "starts with '-'");
	bad(SN "a-.com\n", 2, "ends with '-'");
	bad(SN "a.com-\n", 2, "ends with '-'");
	bad(SN "192.0.2.1\n", 2, "'192.0.2.1'", "IP address");
	bad(SN "[::1]\n", 2, "'[::1]'", "bad character");
	bad(SN "a.com b.com A.COM\n", 2, "server_name", "'a.com' is listed twice");
	memset(name, 'a', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), SN "%s.com\n", name);
	bad(text, 2, "server_name", "longer than 63");
	for (int i = 0; i < 127; i++)
		memcpy(name + 2 * i, "a.", 2);
	strcpy(name + 254, "x");
	snprintf(text, sizeof(text), SN "%s\n", name);
	bad(text, 2, "server_name", "longer than 253");
	name[252] = '\0'; /* 252 characters ending with '.': cut to 251 */
	name[251] = '\0';
	snprintf(text, sizeof(text), SN "%s\n", name);
	tls_cfg_free(ok(text));

	/* The same name in two 'any' domains of a role. */
	bad("[server:any]\nserver_name = a.com, b.com\n[server:any]\n"
			"\n"
			"server_name = c.com B.com\n", 5, "server_name",
			"'b.com' is already served by another [server:any]", "line 2");
	bad("[client:any]\nserver_name = *.a.com\n[client:any]\n"
			"server_name = *.A.com\n", 4, "'*.a.com'", "[client:any]",
			"line 2");
#undef SN
}
END_TEST

START_TEST(t_sni_default)
{
	struct tls_cfg_domain *l;

	/* Kamailio's own spelling is not one of ours. */
	bad("[server:any]\nserver_name = a.com\nserver_name_mode = 1\n", 3,
			"unknown key 'server_name_mode'", "[server:any]");

	l = ok("[server:any]\nserver_name = a.com\nsni_default = yes\n"
			"[server:any]\nserver_name = b.com\nsni_default = no\n"
			"[client:any]\nserver_name = a.com\nsni_default = on\n");
	ck_assert_int_eq(nth(l, 0)->sni_default, 1);
	ck_assert_int_eq(nth(l, 1)->sni_default, 0);
	ck_assert_int_eq(nth(l, 1)->key_line[TLS_CFG_SNI_DEFAULT], 6);
	ck_assert_int_eq(nth(l, 2)->sni_default, 1);
	tls_cfg_free(l);

	bad("[server:any]\nserver_name = a.com\nsni_default = yes\n"
			"[server:any]\nsni_default = true\nserver_name = b.com\n", 5,
			"sni_default", "another [server:any] section", "line 3");
	bad("[server:default]\nsni_default = yes\n", 2, "sni_default",
			"only allowed in [server:any]", "[server:default]");
	bad("[client:1.2.3.4:5]\nsni_default = no\n", 2, "sni_default",
			"[client:1.2.3.4:5]");
	bad("[server:any]\nserver_name = a.com\nsni_default = yes\n"
			"sni_default = yes\n", 4, "duplicate key 'sni_default'");
}
END_TEST

START_TEST(t_line_length)
{
	size_t n = TLS_CFG_MAX_LINE, i;
	char *text = malloc(n + 64), *p;
	struct tls_cfg_domain *l;

	/* Exactly the limit (the CR of a CRLF does not count). */
	p = text + sprintf(text, "[server:default]\ncipher_list = ");
	for (i = strlen("cipher_list = "); i < n; i++)
		*p++ = 'A';
	strcpy(p, "\r\n[client:default]\n");
	l = ok(text);
	ck_assert_uint_eq(strlen(l->cipher_list), n - strlen("cipher_list = "));
	tls_cfg_free(l);

	/* One more. */
	p = text + sprintf(text, "[server:default]\ncipher_list = ");
	for (i = strlen("cipher_list = "); i < n + 1; i++)
		*p++ = 'A';
	strcpy(p, "\n");
	bad(text, 2, "line too long", "4096");
	/* Also as the last line, without a line ending, and as a comment. */
	p[0] = '\0';
	bad(text, 2, "line too long");
	text[17] = '#';
	bad(text, 2, "line too long");
	free(text);

	/* A very long input without any newline. */
	n = 1 << 20;
	text = malloc(n);
	memset(text, '#', n);
	bad_n(text, n, 1, "line too long", (const char *)NULL);
	free(text);
}
END_TEST

START_TEST(t_nul_control)
{
	static const char nul1[] = "[server:default]\nmethod = TLS\0v1.2\n";
	static const char nul2[] = "[server:default]\n\n\0";
	static const char nul3[] = "\0[server:default]\n";
	static const char nul4[] = "[server:default]\n# comment \0 here\n";
	struct tls_cfg_domain *l;

	bad_n(nul1, sizeof(nul1) - 1, 2, "NUL byte", "column 13",
			(const char *)NULL);
	bad_n(nul2, sizeof(nul2) - 1, 3, "NUL byte", (const char *)NULL);
	bad_n(nul3, sizeof(nul3) - 1, 1, "NUL byte", (const char *)NULL);
	bad_n(nul4, sizeof(nul4) - 1, 2, "NUL byte", (const char *)NULL);
	bad("[server:default]\nmethod = a\x01\n", 2, "control character 0x01");
	bad("[server:default]\nmethod = a\x1b[31m\n", 2, "control character 0x1b");
	bad("[server:default]\nmethod = a\x7f\n", 2, "control character 0x7f");
	bad("[server:default]\n\f\n", 2, "control character 0x0c");
	bad("[server:default]\vmethod = a\n", 1, "control character 0x0b");
	/* Tabs are blanks. */
	l = ok("\t[server:default]\t\n\tmethod\t=\tx\t\n");
	ck_assert_str_eq(l->method, "x");
	tls_cfg_free(l);
}
END_TEST

START_TEST(t_empty)
{
	bad("", 1, "no section");
	bad("\n\n# only comments\n; and more\n", 1, "no section");
	bad_n(NULL, 0, 1, "no section", (const char *)NULL);
	bad_n("\xef\xbb\xbf", 3, 1, "no section", (const char *)NULL);
}
END_TEST

START_TEST(t_err_buffer)
{
	char small[12];
	const char *t = "[server:default]\nbogus = 1\n";
	struct tls_cfg_domain *l;

	/* Truncated, terminated, never overrun. */
	memset(small, 'z', sizeof(small));
	l = tls_cfg_parse(CFG, t, strlen(t), small, sizeof(small) - 1);
	ck_assert_ptr_null(l);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 2);
	ck_assert_int_eq(small[sizeof(small) - 1], 'z');
	ck_assert(strncmp(small, "/etc/kamai", 10) == 0);
	/* No buffer at all. */
	ck_assert_ptr_null(tls_cfg_parse(CFG, t, strlen(t), NULL, 0));
	ck_assert_ptr_null(tls_cfg_parse(CFG, t, strlen(t), small, 0));
	ck_assert_int_eq(small[0], '/');
	/* A long value is cut in the message, which stays one line. */
	{
		char text[600];

		snprintf(text, sizeof(text), "[server:default]\nverify_depth = %0500d\n",
				7);
		text[40] = 'x';
		bad(text, 2, "verify_depth", "...'");
		ck_assert_uint_lt(strlen(err), 300);
	}
	/* err is cleared on success. */
	l = ok("[server:default]\n");
	tls_cfg_free(l);
	tls_cfg_free(NULL);
}
END_TEST

START_TEST(t_many_domains)
{
	const int n = 20000;
	size_t cap = (size_t)n * 160, len = 0;
	char *text = malloc(cap);
	struct tls_cfg_domain *l, *d;
	int i;

	len += (size_t)sprintf(text + len, "[server:default]\n[client:default]\n");
	for (i = 0; i < n; i++) {
		if (i % 4 == 0)
			len += (size_t)sprintf(text + len, "[server:10.%d.%d.1:5061]\n"
					"certificate = c%d.pem\n", i >> 8 & 255, i & 255, i);
		else if (i % 4 == 1)
			len += (size_t)sprintf(text + len, "[client:[2001:db8::%x]:%d]\n"
					"verify_depth = %d\n", i, 1 + i % 65535, i);
		else
			len += (size_t)sprintf(text + len, "[%s:any]\n"
					"server_name = h%d.example.com, *.h%d.example.com\n",
					i % 4 == 2 ? "server" : "client", i, i);
	}
	l = ok(text);
	ck_assert_int_eq(count(l), n + 2);
	for (d = l->next->next, i = 0; d; d = d->next, i++) {
		if (i % 4 == 0) {
			ck_assert_int_eq(d->kind, TLS_CFG_ADDR);
			ck_assert_int_eq(d->af, AF_INET);
		} else if (i % 4 == 1) {
			ck_assert_int_eq(d->verify_depth, i);
		} else {
			ck_assert_int_eq(d->kind, TLS_CFG_ANY);
			ck_assert_int_eq(d->server_names_no, 2);
		}
	}
	ck_assert_int_eq(i, n);
	tls_cfg_free(l);

	/* A duplicate at the very end is found, with both lines. */
	len += (size_t)sprintf(text + len, "[server:any]\n"
			"server_name = x.com *.H2.example.COM\n");
	bad(text, 2 + 2 * n + 2, "'*.h2.example.com' is already served",
			"line 8");
	free(text);
}
END_TEST

START_TEST(t_load)
{
	struct tls_cfg_domain *l;
	char path[2048], want[4096];
	const char *p;

	p = tmp_write("tls.cfg", "[server:default]\ncertificate = c.pem\n", 37);
	snprintf(path, sizeof(path), "%s", p);
	l = tls_cfg_load(path, err, sizeof(err));
	ck_assert_msg(l != NULL, "%s", err);
	snprintf(want, sizeof(want), "%s/c.pem", tmpdir);
	ck_assert_str_eq(l->certificate, want);
	ck_assert_str_eq(l->file, path);
	tls_cfg_free(l);

	/* Errors name the file given. */
	p = tmp_write("bad.cfg", "[server:default]\nbogus = 1\n", 27);
	snprintf(path, sizeof(path), "%s", p);
	ck_assert_ptr_null(tls_cfg_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2: unknown key 'bogus'", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);

	/* NUL bytes from a file. */
	p = tmp_write("nul.cfg", "[server:default]\n\0\n", 19);
	snprintf(path, sizeof(path), "%s", p);
	ck_assert_ptr_null(tls_cfg_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2: NUL byte", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);

	/* Cannot read. */
	snprintf(path, sizeof(path), "%s/missing.cfg", tmpdir);
	ck_assert_ptr_null(tls_cfg_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot read: %s", path,
			strerror(ENOENT));
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(tls_cfg_load(tmpdir, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot read: %s", tmpdir,
			strerror(EISDIR));
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(tls_cfg_load("", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "no file name"));
	ck_assert_ptr_null(tls_cfg_load(NULL, err, sizeof(err)));
	if (geteuid() != 0) {
		p = tmp_write("private.cfg", "[server:default]\n", 17);
		snprintf(path, sizeof(path), "%s", p);
		ck_assert_int_eq(chmod(path, 0), 0);
		ck_assert_ptr_null(tls_cfg_load(path, err, sizeof(err)));
		snprintf(want, sizeof(want), "%s: cannot read: %s", path,
				strerror(EACCES));
		ck_assert_str_eq(err, want);
	}
	/* Too large: a sparse file just over the limit. */
	snprintf(path, sizeof(path), "%s/huge.cfg", tmpdir);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, TLS_CFG_MAX_FILE + 1), 0);
		ck_assert_int_eq(close(fd), 0);
	}
	ck_assert_ptr_null(tls_cfg_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot read: larger than", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
	/* A file name with a newline still gives a one-line message. */
	snprintf(path, sizeof(path), "%s/new\nline.cfg", tmpdir);
	ck_assert_ptr_null(tls_cfg_load(path, err, sizeof(err)));
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_ptr_nonnull(strstr(err, "/new?line.cfg: cannot read: "));
	/* An empty file. */
	p = tmp_write("empty.cfg", "", 0);
	snprintf(path, sizeof(path), "%s", p);
	ck_assert_ptr_null(tls_cfg_load(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, ":1: no section"));
}
END_TEST

START_TEST(t_load_relative)
{
	struct tls_cfg_domain *l;
	char old[PATH_MAX], want[2048];
	const char *p;

	ck_assert_int_eq(mkdir(strcat(strcpy(want, tmpdir), "/etc"), 0700), 0);
	p = "[client:default]\nca_list = ca.pem\ncrl = ../crl.pem\n";
	tmp_write("etc/tls.cfg", p, strlen(p));
	ck_assert_ptr_nonnull(getcwd(old, sizeof(old)));
	ck_assert_int_eq(chdir(tmpdir), 0);
	l = tls_cfg_load("./etc//tls.cfg", err, sizeof(err));
	ck_assert_int_eq(chdir(old), 0);
	ck_assert_msg(l != NULL, "%s", err);
	/* The scratch directory may sit behind a symbolic link (/tmp): compare
	 * with the current directory as getcwd() saw it. */
	ck_assert_str_eq(l->file, "./etc//tls.cfg");
	ck_assert_ptr_nonnull(strstr(l->ca_list, "/etc/ca.pem"));
	ck_assert_int_eq(l->ca_list[0], '/');
	ck_assert_ptr_null(strstr(l->ca_list, "/./"));
	ck_assert_ptr_null(strstr(l->ca_list, "//"));
	ck_assert_ptr_nonnull(strstr(l->crl, "/etc/../crl.pem"));
	tls_cfg_free(l);
}
END_TEST

static Suite *tls_config_suite(void)
{
	Suite *s = suite_create("tls_config");
	TCase *tc = tcase_create("parse");
	TCase *tf = tcase_create("files");

	tcase_add_test(tc, t_readme);
	tcase_add_test(tc, t_crlf);
	tcase_add_test(tc, t_all_keys);
	tcase_add_test(tc, t_aliases);
	tcase_add_test(tc, t_key_names);
	tcase_add_test(tc, t_booleans);
	tcase_add_test(tc, t_integers);
	tcase_add_test(tc, t_quotes);
	tcase_add_test(tc, t_comments_blanks);
	tcase_add_test(tc, t_ipv6);
	tcase_add_test(tc, t_ipv4);
	tcase_add_test(tc, t_sections);
	tcase_add_test(tc, t_section_errors);
	tcase_add_test(tc, t_section_case);
	tcase_add_test(tc, t_key_errors);
	tcase_add_test(tc, t_paths);
	tcase_add_test(tc, t_server_names);
	tcase_add_test(tc, t_server_name_errors);
	tcase_add_test(tc, t_sni_default);
	tcase_add_test(tc, t_line_length);
	tcase_add_test(tc, t_nul_control);
	tcase_add_test(tc, t_empty);
	tcase_add_test(tc, t_err_buffer);
	tcase_add_test(tc, t_many_domains);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tcase_add_unchecked_fixture(tf, tmp_setup, tmp_teardown);
	tcase_add_test(tf, t_load);
	tcase_add_test(tf, t_load_relative);
	suite_add_tcase(s, tf);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tls_config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
