/*
 * tls_config.c: parser of the module's configuration file (format in
 * tls_config.h).
 *
 * Plain libc: the text is cut into lines, each line copied into a bounded
 * buffer and parsed there. Every error stops the parse with one line
 * "file:line: problem"; nothing is kept of a file with an error. Sections
 * that must be unique (per role: the default, each address, each SNI name,
 * the SNI default) are tracked in a small hash set owned by the parse.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_config.h"

#define CFG_SHOW_MAX 64   /* bytes of a value quoted in a message */
#define CFG_NAME_MAX 253  /* DNS name, without a trailing dot */
#define CFG_LABEL_MAX 63

enum cfg_type { T_STRING, T_PATH, T_BOOL, T_UINT, T_NAMES, T_SNI };

static const struct {
	const char *name; /* canonical name: tls_cfg_key_name() */
	enum cfg_type type;
} cfg_keys[TLS_CFG_KEYS] = {
	[TLS_CFG_METHOD] = {"method", T_STRING},
	[TLS_CFG_VERIFY_CERTIFICATE] = {"verify_certificate", T_BOOL},
	[TLS_CFG_REQUIRE_CERTIFICATE] = {"require_certificate", T_BOOL},
	[TLS_CFG_PRIVATE_KEY] = {"private_key", T_PATH},
	[TLS_CFG_PRIVATE_KEY_PASSWORD] = {"private_key_password", T_STRING},
	[TLS_CFG_CERTIFICATE] = {"certificate", T_PATH},
	[TLS_CFG_VERIFY_DEPTH] = {"verify_depth", T_UINT},
	[TLS_CFG_CA_LIST] = {"ca_list", T_PATH},
	[TLS_CFG_CA_PATH] = {"ca_path", T_PATH},
	[TLS_CFG_CRL] = {"crl", T_PATH},
	[TLS_CFG_CIPHER_LIST] = {"cipher_list", T_STRING},
	[TLS_CFG_CIPHER_SUITES] = {"cipher_suites", T_STRING},
	[TLS_CFG_SERVER_NAME] = {"server_name", T_NAMES},
	[TLS_CFG_SNI_DEFAULT] = {"sni_default", T_SNI},
};

/* Other spellings accepted for the same settings. */
static const struct {
	const char *alias;
	enum tls_cfg_key key;
} cfg_aliases[] = {
	{"tls_method", TLS_CFG_METHOD},
	{"verify_cert", TLS_CFG_VERIFY_CERTIFICATE},
	{"require_cert", TLS_CFG_REQUIRE_CERTIFICATE},
	{"pkey_file", TLS_CFG_PRIVATE_KEY},
	{"cert_file", TLS_CFG_CERTIFICATE},
	{"calist_file", TLS_CFG_CA_LIST},
	{"ca_dir", TLS_CFG_CA_PATH},
	{"crl_file", TLS_CFG_CRL},
};

/* A set of strings, each with the line that added it. */
struct cfg_set_entry {
	char *key;
	int line;
};

struct cfg_set {
	struct cfg_set_entry *e;
	size_t cap; /* 0 or a power of two */
	size_t n;
};

struct cfg_parser {
	const char *name;
	char *err;
	size_t errlen;
	int line;
	struct tls_cfg_domain *head;
	struct tls_cfg_domain **tail;
	struct tls_cfg_domain *cur;
	struct cfg_set set;
	char *base; /* absolute directory of the file, made when first needed */
};

/* ---- messages ---------------------------------------------------------- */

static void cfg_verr(char *err, size_t errlen, const char *name, int line,
		const char *fmt, va_list ap)
{
	size_t n;
	int r;

	if (err == NULL || errlen == 0)
		return;
	if (line > 0)
		r = snprintf(err, errlen, "%s:%d: ", name, line);
	else
		r = snprintf(err, errlen, "%s: ", name);
	n = r < 0 ? 0 : (size_t)r;
	if (n < errlen)
		vsnprintf(err + n, errlen - n, fmt, ap);
	err[errlen - 1] = '\0';
	/* One line whatever a value held. */
	for (n = 0; err[n]; n++)
		if ((unsigned char)err[n] < 0x20 || err[n] == 0x7f)
			err[n] = '?';
}

__attribute__((format(printf, 3, 4)))
static int cfg_error(struct cfg_parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verr(p->err, p->errlen, p->name, line, fmt, ap);
	va_end(ap);
	return -1;
}

__attribute__((format(printf, 4, 5)))
static void cfg_file_error(char *err, size_t errlen, const char *name,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verr(err, errlen, name, 0, fmt, ap);
	va_end(ap);
}

/* A value in a message: "'%.*s%s'" with SHOW(s), cut at CFG_SHOW_MAX. */
#define SHOW(s) \
	(int)(strlen(s) > CFG_SHOW_MAX ? CFG_SHOW_MAX : strlen(s)), (s), \
	(strlen(s) > CFG_SHOW_MAX ? "..." : "")

static const char *cfg_role_name(enum tls_role role)
{
	return role == TLS_ROLE_CLIENT ? "client" : "server";
}

const char *tls_cfg_key_name(enum tls_cfg_key key)
{
	if ((int)key < 0 || key >= TLS_CFG_KEYS)
		return "?";
	return cfg_keys[key].name;
}

const char *tls_cfg_section_name(const struct tls_cfg_domain *d, char *buf,
		size_t size)
{
	if (size == 0)
		return buf;
	if (d->kind == TLS_CFG_ADDR)
		snprintf(buf, size, d->af == AF_INET6 ? "[%s:[%s]:%u]" : "[%s:%s:%u]",
				cfg_role_name(d->role), d->addr, (unsigned)d->port);
	else
		snprintf(buf, size, "[%s:%s]", cfg_role_name(d->role),
				d->kind == TLS_CFG_ANY ? "any" : "default");
	return buf;
}

/* ---- the set ----------------------------------------------------------- */

static size_t cfg_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

static int cfg_set_grow(struct cfg_set *set)
{
	size_t cap = set->cap ? set->cap * 2 : 64, i, j;
	struct cfg_set_entry *e = calloc(cap, sizeof(*e));

	if (e == NULL)
		return -1;
	for (i = 0; i < set->cap; i++) {
		if (set->e[i].key == NULL)
			continue;
		for (j = cfg_hash(set->e[i].key) & (cap - 1); e[j].key;
				j = (j + 1) & (cap - 1))
			;
		e[j] = set->e[i];
	}
	free(set->e);
	set->e = e;
	set->cap = cap;
	return 0;
}

/* Adds key with its line: 0 when added, 1 when already there (*line_was
 * set to the line that added it), -1 out of memory. */
static int cfg_set_add(struct cfg_set *set, const char *key, int line,
		int *line_was)
{
	size_t i;

	if ((set->n + 1) * 2 > set->cap && cfg_set_grow(set) < 0)
		return -1;
	for (i = cfg_hash(key) & (set->cap - 1); set->e[i].key;
			i = (i + 1) & (set->cap - 1)) {
		if (strcmp(set->e[i].key, key) == 0) {
			*line_was = set->e[i].line;
			return 1;
		}
	}
	set->e[i].key = strdup(key);
	if (set->e[i].key == NULL)
		return -1;
	set->e[i].line = line;
	set->n++;
	return 0;
}

static void cfg_set_free(struct cfg_set *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++)
		free(set->e[i].key);
	free(set->e);
	memset(set, 0, sizeof(*set));
}

/* Registers something unique per parse; on a repeat, reports it with what
 * (a printf format taking the earlier line) and returns -1. */
static int cfg_unique(struct cfg_parser *p, const char *key,
		const char *what)
{
	int was = 0, r = cfg_set_add(&p->set, key, p->line, &was);

	if (r < 0)
		return cfg_error(p, p->line, "out of memory");
	if (r > 0)
		return cfg_error(p, p->line, "%s (first on line %d)", what, was);
	return 0;
}

/* ---- small helpers ----------------------------------------------------- */

static int cfg_isspace(int c)
{
	return c == ' ' || c == '\t';
}

static char *cfg_skip(char *s)
{
	while (cfg_isspace((unsigned char)*s))
		s++;
	return s;
}

static int cfg_iscomment(int c)
{
	return c == '#' || c == ';';
}

/* Strict decimal: digits only, no sign, no blanks; 0 or -1 (bad or above
 * max). */
static int cfg_uint(const char *s, unsigned long max, unsigned long *v)
{
	unsigned long r = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (r > (max - (unsigned long)(*s - '0')) / 10)
			return -1;
		r = r * 10 + (unsigned long)(*s - '0');
	}
	*v = r;
	return 0;
}

static int cfg_bool(const char *s)
{
	static const char *yes[] = {"yes", "on", "true", "1"};
	static const char *no[] = {"no", "off", "false", "0"};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* The path with "//" and "/./" collapsed (".." kept: with symbolic links
 * it cannot be resolved by text alone). Absolute in, absolute out. */
static char *cfg_clean_path(const char *in)
{
	size_t n = strlen(in), o = 0, i = 0, j;
	char *out = malloc(n + 2);

	if (out == NULL)
		return NULL;
	while (i < n) {
		while (i < n && in[i] == '/')
			i++;
		j = i;
		while (j < n && in[j] != '/')
			j++;
		if (j == i)
			break;
		if (!(j - i == 1 && in[i] == '.')) {
			out[o++] = '/';
			memcpy(out + o, in + i, j - i);
			o += j - i;
		}
		i = j;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

/* The absolute directory of the file being parsed. */
static int cfg_base(struct cfg_parser *p)
{
	const char *slash;
	char cwd[PATH_MAX], *tmp;
	size_t dlen, n;

	if (p->base)
		return 0;
	slash = strrchr(p->name, '/');
	dlen = slash ? (size_t)(slash - p->name) : 0;
	if (p->name[0] == '/') {
		cwd[0] = '\0';
	} else if (getcwd(cwd, sizeof(cwd)) == NULL) {
		return cfg_error(p, p->line, "cannot resolve a relative path: no"
				" current directory (%s)", strerror(errno));
	}
	n = strlen(cwd) + 1 + dlen + 1;
	tmp = malloc(n);
	if (tmp == NULL)
		return cfg_error(p, p->line, "out of memory");
	snprintf(tmp, n, "%s/%.*s", cwd, (int)dlen, p->name);
	p->base = cfg_clean_path(tmp);
	free(tmp);
	if (p->base == NULL)
		return cfg_error(p, p->line, "out of memory");
	return 0;
}

static char *cfg_path(struct cfg_parser *p, const char *v)
{
	char *tmp, *res;
	size_t n;

	if (v[0] == '/')
		return cfg_clean_path(v);
	if (cfg_base(p) < 0)
		return NULL;
	n = strlen(p->base) + 1 + strlen(v) + 1;
	tmp = malloc(n);
	if (tmp == NULL)
		goto oom;
	snprintf(tmp, n, "%s/%s", p->base, v);
	res = cfg_clean_path(tmp);
	free(tmp);
	if (res == NULL)
		goto oom;
	return res;
oom:
	cfg_error(p, p->line, "out of memory");
	return NULL;
}

/* ---- sections ---------------------------------------------------------- */

static void cfg_domain_free(struct tls_cfg_domain *d)
{
	int i;

	for (i = 0; i < d->server_names_no; i++)
		free(d->server_names[i]);
	free(d->server_names);
	free(d->method);
	free(d->certificate);
	free(d->private_key);
	free(d->private_key_password);
	free(d->ca_list);
	free(d->ca_path);
	free(d->crl);
	free(d->cipher_list);
	free(d->cipher_suites);
	free(d->file);
	free(d);
}

void tls_cfg_free(struct tls_cfg_domain *list)
{
	struct tls_cfg_domain *next;

	for (; list; list = next) {
		next = list->next;
		cfg_domain_free(list);
	}
}

/* Checks on a finished section. */
static int cfg_end_section(struct cfg_parser *p)
{
	struct tls_cfg_domain *d = p->cur;
	char sec[96];

	if (d == NULL)
		return 0;
	if (d->kind == TLS_CFG_ANY && d->server_names_no == 0)
		return cfg_error(p, d->line, "section %s has no server_name (an"
				" 'any' domain is selected by it)",
				tls_cfg_section_name(d, sec, sizeof(sec)));
	return 0;
}

/* The port of "[...:port]": 1-65535. */
static int cfg_port(struct cfg_parser *p, const char *s, const char *hdr,
		unsigned short *port)
{
	unsigned long v;

	if (cfg_uint(s, 65535, &v) < 0 || v == 0 || strlen(s) > 5)
		return cfg_error(p, p->line, "section %s: bad port '%.6s%s'"
				" (1-65535)", hdr, s, strlen(s) > 6 ? "..." : "");
	*port = (unsigned short)v;
	return 0;
}

/* s is the line from its '['. */
static int cfg_header(struct cfg_parser *p, char *s)
{
	char *role_s, *spec, *end, *addr, *port_s, *colon, buf[64];
	struct tls_cfg_domain *d;
	unsigned char bin[16];
	enum tls_role role;
	enum tls_cfg_kind kind;
	unsigned short port = 0;
	int af = 0;
	size_t hlen;
	char key[128], sec[96], what[128], hdr[CFG_SHOW_MAX + 4];

	/* The header as written, for messages: up to its closing bracket (the
	 * second ']' when an IPv6 address is bracketed inside). */
	colon = strchr(s, ':');
	end = NULL;
	if (colon && colon[1] == '[') {
		end = strchr(colon + 2, ']');
		if (end)
			end = strchr(end + 1, ']');
	}
	if (end == NULL)
		end = strchr(s, ']');
	if (end == NULL)
		return cfg_error(p, p->line, "section header '%.*s%s' has no closing"
				" ']'", (int)(strlen(s) > CFG_SHOW_MAX ? CFG_SHOW_MAX
						: strlen(s)), s, strlen(s) > CFG_SHOW_MAX ? "..." : "");
	hlen = (size_t)(end - s + 1);
	snprintf(hdr, sizeof(hdr), "%.*s%s", (int)(hlen > CFG_SHOW_MAX
				? CFG_SHOW_MAX : hlen), s, hlen > CFG_SHOW_MAX ? "..." : "");

	role_s = s + 1;
	colon = strchr(role_s, ':');
	if (colon == NULL || colon > end)
		return cfg_error(p, p->line, "unknown section %s (expected"
				" [server:...] or [client:...])", hdr);
	*colon = '\0';
	if (strcasecmp(role_s, "server") == 0)
		role = TLS_ROLE_SERVER;
	else if (strcasecmp(role_s, "client") == 0)
		role = TLS_ROLE_CLIENT;
	else {
		*colon = ':';
		return cfg_error(p, p->line, "unknown section %s (expected"
				" [server:...] or [client:...])", hdr);
	}
	*colon = ':';
	spec = colon + 1;

	if (*spec == '[') {
		/* [role:[IPv6]:port] */
		addr = spec + 1;
		port_s = strchr(addr, ']');
		if (port_s == NULL || port_s[1] != ':' || port_s + 1 >= end)
			return cfg_error(p, p->line, "section %s: expected"
					" [%s:[IPv6]:port]", hdr, cfg_role_name(role));
		*port_s = '\0';
		port_s += 2;
		*end = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1)
			return cfg_error(p, p->line, "section %s: bad IPv6 address"
					" '%.*s%s'", hdr, SHOW(addr));
		if (cfg_port(p, port_s, hdr, &port) < 0)
			return -1;
		af = AF_INET6;
		kind = TLS_CFG_ADDR;
	} else {
		*end = '\0';
		if (strcasecmp(spec, "default") == 0) {
			kind = TLS_CFG_DEFAULT;
		} else if (strcasecmp(spec, "any") == 0) {
			kind = TLS_CFG_ANY;
		} else {
			/* [role:IPv4:port] */
			port_s = strrchr(spec, ':');
			if (port_s == NULL)
				return cfg_error(p, p->line, "section %s: expected"
						" default, any, IPv4:port or [IPv6]:port after"
						" '%s:'", hdr, cfg_role_name(role));
			*port_s++ = '\0';
			addr = spec;
			if (strchr(addr, ':'))
				return cfg_error(p, p->line, "section %s: an IPv6 address"
						" must be in brackets ([%s:[addr]:port])", hdr,
						cfg_role_name(role));
			if (inet_pton(AF_INET, addr, bin) != 1)
				return cfg_error(p, p->line, "section %s: bad IPv4 address"
						" '%.*s%s'", hdr, SHOW(addr));
			if (cfg_port(p, port_s, hdr, &port) < 0)
				return -1;
			af = AF_INET;
			kind = TLS_CFG_ADDR;
		}
	}
	/* Only a comment may follow. */
	s = cfg_skip(end + 1);
	if (*s && !cfg_iscomment((unsigned char)*s))
		return cfg_error(p, p->line, "section %s: unexpected text after the"
				" header: '%.*s%s'", hdr, SHOW(s));

	if (cfg_end_section(p) < 0)
		return -1;
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->file = strdup(p->name)) == NULL) {
		free(d);
		return cfg_error(p, p->line, "out of memory");
	}
	d->role = role;
	d->kind = kind;
	d->af = af;
	d->port = port;
	if (kind == TLS_CFG_ADDR && inet_ntop(af, bin, buf, sizeof(buf)))
		snprintf(d->addr, sizeof(d->addr), "%s", buf);
	d->verify_certificate = -1;
	d->require_certificate = -1;
	d->verify_depth = -1;
	d->line = p->line;
	*p->tail = d;
	p->tail = &d->next;
	p->cur = d;

	tls_cfg_section_name(d, sec, sizeof(sec));
	if (kind == TLS_CFG_DEFAULT) {
		snprintf(key, sizeof(key), "D%d", (int)role);
	} else if (kind == TLS_CFG_ADDR) {
		snprintf(key, sizeof(key), "A%d/%d/%s/%u", (int)role, af, d->addr,
				(unsigned)port);
	} else {
		return 0;
	}
	snprintf(what, sizeof(what), "duplicate section %s", sec);
	return cfg_unique(p, key, what);
}

/* ---- server_name ------------------------------------------------------- */

/* Lower-cases name in place; NULL if it is a valid host name or wildcard,
 * else why not. */
static const char *cfg_check_name(char *name)
{
	size_t len = strlen(name), lab = 0, i;
	unsigned char bin[4];
	char *s = name;

	if (len > CFG_NAME_MAX)
		return "longer than 253 characters";
	if (strcmp(name, "*") == 0)
		return "a lone '*' matches nothing (write '*.example.com')";
	if (s[0] == '*' && s[1] == '.')
		s += 2;
	if (*s == '\0')
		return "empty name after '*.'";
	for (i = 0; s[i]; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			s[i] = c = (char)(c - 'A' + 'a');
		if (c == '*')
			return "'*' is only allowed as the whole leftmost label"
					" ('*.example.com')";
		if (c == '.') {
			if (lab == 0)
				return "empty label";
			if (s[i - 1] == '-')
				return "a label ends with '-'";
			lab = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return "bad character (letters, digits, '-' and '.' only)";
		if (c == '-' && lab == 0)
			return "a label starts with '-'";
		if (++lab > CFG_LABEL_MAX)
			return "a label is longer than 63 characters";
	}
	if (lab == 0)
		return "empty label";
	if (s[i - 1] == '-')
		return "a label ends with '-'";
	if (s == name && inet_pton(AF_INET, name, bin) == 1)
		return "an IP address (SNI carries host names only)";
	return NULL;
}

static int cfg_server_names(struct cfg_parser *p, const char *kname,
		char *v)
{
	struct tls_cfg_domain *d = p->cur;
	const char *why;
	char *name, **nn, sep, key[CFG_NAME_MAX + 16], what[CFG_NAME_MAX + 128];
	int i, cap = 0, expect_name = 1; /* no name since the last comma */

	while (*v) {
		if (cfg_isspace((unsigned char)*v)) {
			v++;
			continue;
		}
		if (*v == ',') {
			if (expect_name)
				return cfg_error(p, p->line, "%s: empty name in the list",
						kname);
			expect_name = 1;
			v++;
			continue;
		}
		name = v;
		while (*v && *v != ',' && !cfg_isspace((unsigned char)*v))
			v++;
		sep = *v;
		if (*v)
			*v++ = '\0';
		why = cfg_check_name(name);
		if (why)
			return cfg_error(p, p->line, "%s: bad name '%.*s%s': %s", kname,
					SHOW(name), why);
		for (i = 0; i < d->server_names_no; i++)
			if (strcmp(d->server_names[i], name) == 0)
				return cfg_error(p, p->line, "%s: '%s' is listed twice",
						kname, name);
		if (d->kind == TLS_CFG_ANY) {
			snprintf(key, sizeof(key), "N%d/%s", (int)d->role, name);
			snprintf(what, sizeof(what), "%s: '%s' is already served by"
					" another [%s:any] section", kname, name,
					cfg_role_name(d->role));
			if (cfg_unique(p, key, what) < 0)
				return -1;
		}
		if (d->server_names_no == cap) {
			cap = cap ? cap * 2 : 4;
			nn = realloc(d->server_names, (size_t)cap * sizeof(*nn));
			if (nn == NULL)
				return cfg_error(p, p->line, "out of memory");
			d->server_names = nn;
		}
		d->server_names[d->server_names_no] = strdup(name);
		if (d->server_names[d->server_names_no] == NULL)
			return cfg_error(p, p->line, "out of memory");
		d->server_names_no++;
		/* A comma cut off the name counts as a separator seen. */
		expect_name = sep == ',';
	}
	if (d->server_names_no == 0)
		return cfg_error(p, p->line, "%s: no name given", kname);
	if (expect_name)
		return cfg_error(p, p->line, "%s: the list ends with ','", kname);
	return 0;
}

/* ---- key = value ------------------------------------------------------- */

static int cfg_lookup(const char *k, enum tls_cfg_key *key)
{
	size_t i;

	for (i = 0; i < TLS_CFG_KEYS; i++)
		if (strcasecmp(k, cfg_keys[i].name) == 0) {
			*key = (enum tls_cfg_key)i;
			return 0;
		}
	for (i = 0; i < sizeof(cfg_aliases) / sizeof(cfg_aliases[0]); i++)
		if (strcasecmp(k, cfg_aliases[i].alias) == 0) {
			*key = cfg_aliases[i].key;
			return 0;
		}
	return -1;
}

static char **cfg_string_slot(struct tls_cfg_domain *d, enum tls_cfg_key k)
{
	switch (k) {
	case TLS_CFG_METHOD: return &d->method;
	case TLS_CFG_PRIVATE_KEY: return &d->private_key;
	case TLS_CFG_PRIVATE_KEY_PASSWORD: return &d->private_key_password;
	case TLS_CFG_CERTIFICATE: return &d->certificate;
	case TLS_CFG_CA_LIST: return &d->ca_list;
	case TLS_CFG_CA_PATH: return &d->ca_path;
	case TLS_CFG_CRL: return &d->crl;
	case TLS_CFG_CIPHER_LIST: return &d->cipher_list;
	case TLS_CFG_CIPHER_SUITES: return &d->cipher_suites;
	default: return NULL;
	}
}

/* Reads the value starting at s (after '=' and blanks) in place: unquotes
 * it, drops a trailing comment and blanks. NULL after reporting. */
static char *cfg_value(struct cfg_parser *p, const char *kname, char *s)
{
	char *v = s, *o;

	if (*s == '"') {
		o = v;
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
				s++;
			*o++ = *s;
		}
		if (*s != '"') {
			cfg_error(p, p->line, "%s: unterminated quote in the value",
					kname);
			return NULL;
		}
		*o = '\0';
		s = cfg_skip(s + 1);
		if (*s && !cfg_iscomment((unsigned char)*s)) {
			cfg_error(p, p->line, "%s: unexpected text after the quoted"
					" value: '%.*s%s'", kname, SHOW(s));
			return NULL;
		}
		return v;
	}
	for (; *s && !cfg_iscomment((unsigned char)*s); s++)
		if (*s == '"') {
			cfg_error(p, p->line, "%s: stray quote in the value (quote the"
					" whole value: key = \"...\")", kname);
			return NULL;
		}
	while (s > v && cfg_isspace((unsigned char)s[-1]))
		s--;
	*s = '\0';
	return v;
}

static int cfg_keyval(struct cfg_parser *p, char *s)
{
	struct tls_cfg_domain *d = p->cur;
	char *k = s, *v, **slot, sec[96], key[16], what[160];
	enum tls_cfg_key key_id;
	unsigned long n;
	int b;

	while (*s && *s != '=' && !cfg_isspace((unsigned char)*s)
			&& !cfg_iscomment((unsigned char)*s) && *s != '"')
		s++;
	v = cfg_skip(s);
	if (*v != '=')
		return cfg_error(p, p->line, "expected 'key = value' or a [section]"
				" header, got '%.*s%s'", SHOW(k));
	*s = '\0';
	for (s = k; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
					|| (*s >= '0' && *s <= '9') || *s == '_'))
			return cfg_error(p, p->line, "bad key '%.*s%s'", SHOW(k));
	if (*k == '\0')
		return cfg_error(p, p->line, "missing key before '='");
	if (d == NULL)
		return cfg_error(p, p->line, "key '%.*s%s' outside of any section"
				" (a [server:...] or [client:...] header must come first)",
				SHOW(k));
	tls_cfg_section_name(d, sec, sizeof(sec));
	if (cfg_lookup(k, &key_id) < 0)
		return cfg_error(p, p->line, "unknown key '%.*s%s' in section %s",
				SHOW(k), sec);
	if (d->key_line[key_id]) {
		if (strcasecmp(k, cfg_keys[key_id].name) == 0)
			return cfg_error(p, p->line, "duplicate key '%s' in section %s"
					" (first on line %d)", k, sec, d->key_line[key_id]);
		return cfg_error(p, p->line, "duplicate key '%s': %s is already set"
				" in section %s (line %d)", k, cfg_keys[key_id].name, sec,
				d->key_line[key_id]);
	}
	v = cfg_value(p, k, cfg_skip(v + 1));
	if (v == NULL)
		return -1;
	if (*v == '\0')
		return cfg_error(p, p->line, "%s: empty value", k);
	d->key_line[key_id] = p->line;

	switch (cfg_keys[key_id].type) {
	case T_STRING:
	case T_PATH:
		slot = cfg_string_slot(d, key_id);
		if (cfg_keys[key_id].type == T_PATH) {
			*slot = cfg_path(p, v);
			return *slot ? 0 : -1;
		}
		*slot = strdup(v);
		return *slot ? 0 : cfg_error(p, p->line, "out of memory");
	case T_BOOL:
		b = cfg_bool(v);
		if (b < 0)
			return cfg_error(p, p->line, "%s: bad value '%.*s%s' (expected"
					" yes/no, on/off, true/false or 1/0)", k, SHOW(v));
		if (key_id == TLS_CFG_VERIFY_CERTIFICATE)
			d->verify_certificate = b;
		else
			d->require_certificate = b;
		return 0;
	case T_UINT:
		if (cfg_uint(v, INT_MAX, &n) < 0)
			return cfg_error(p, p->line, "%s: bad value '%.*s%s' (expected"
					" a decimal number from 0 to %d)", k, SHOW(v), INT_MAX);
		d->verify_depth = (int)n;
		return 0;
	case T_NAMES:
		return cfg_server_names(p, k, v);
	case T_SNI:
		b = cfg_bool(v);
		if (b < 0)
			return cfg_error(p, p->line, "%s: bad value '%.*s%s' (expected"
					" yes/no, on/off, true/false or 1/0)", k, SHOW(v));
		if (d->kind != TLS_CFG_ANY)
			return cfg_error(p, p->line, "%s: only allowed in [%s:any]"
					" sections, not in %s", k, cfg_role_name(d->role), sec);
		d->sni_default = b;
		if (!b)
			return 0;
		snprintf(key, sizeof(key), "S%d", (int)d->role);
		snprintf(what, sizeof(what), "%s: another [%s:any] section already"
				" has sni_default", k, cfg_role_name(d->role));
		return cfg_unique(p, key, what);
	}
	return 0;
}

/* ---- lines ------------------------------------------------------------- */

static int cfg_line(struct cfg_parser *p, char *s)
{
	s = cfg_skip(s);
	if (*s == '\0' || cfg_iscomment((unsigned char)*s))
		return 0;
	if (*s == '[')
		return cfg_header(p, s);
	return cfg_keyval(p, s);
}

struct tls_cfg_domain *tls_cfg_parse(const char *name, const char *text,
		size_t len, char *err, size_t errlen)
{
	struct cfg_parser p;
	char buf[TLS_CFG_MAX_LINE + 1];
	const char *nl;
	size_t pos = 0, end, l, i;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.name = name ? name : "(config)";
	p.err = err;
	p.errlen = errlen;
	p.tail = &p.head;
	if (err && errlen)
		err[0] = '\0';
	if (text == NULL)
		len = 0;
	/* A UTF-8 byte order mark, as some editors write. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;

	while (pos < len && rc == 0) {
		p.line++;
		nl = memchr(text + pos, '\n', len - pos);
		end = nl ? (size_t)(nl - text) : len;
		l = end - pos;
		if (l > 0 && text[end - 1] == '\r')
			l--;
		if (l > TLS_CFG_MAX_LINE) {
			rc = cfg_error(&p, p.line, "line too long (more than %d"
					" bytes)", TLS_CFG_MAX_LINE);
			break;
		}
		for (i = 0; i < l; i++) {
			unsigned char c = (unsigned char)text[pos + i];

			if (c == '\0') {
				rc = cfg_error(&p, p.line, "NUL byte in the line (column"
						" %zu)", i + 1);
				break;
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				rc = cfg_error(&p, p.line, "control character 0x%02x in the"
						" line (column %zu)", c, i + 1);
				break;
			}
		}
		if (rc)
			break;
		memcpy(buf, text + pos, l);
		buf[l] = '\0';
		rc = cfg_line(&p, buf);
		pos = nl ? end + 1 : len;
	}
	if (rc == 0)
		rc = cfg_end_section(&p);
	if (rc == 0 && p.head == NULL)
		rc = cfg_error(&p, 1, "no section (expected [server:...] or"
				" [client:...])");
	cfg_set_free(&p.set);
	free(p.base);
	if (rc) {
		tls_cfg_free(p.head);
		return NULL;
	}
	return p.head;
}

struct tls_cfg_domain *tls_cfg_load(const char *path, char *err,
		size_t errlen)
{
	struct tls_cfg_domain *list;
	char *text = NULL, *t;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd, e;

	if (err && errlen)
		err[0] = '\0';
	if (path == NULL || *path == '\0') {
		cfg_file_error(err, errlen, "(config)", "no file name");
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cfg_file_error(err, errlen, path, "cannot read: %s", strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			if (cap > TLS_CFG_MAX_FILE) {
				cfg_file_error(err, errlen, path, "cannot read: larger than"
						" %d bytes", TLS_CFG_MAX_FILE);
				goto fail;
			}
			cap = cap ? cap * 2 : 65536;
			t = realloc(text, cap + 1);
			if (t == NULL) {
				cfg_file_error(err, errlen, path, "cannot read: out of"
						" memory");
				goto fail;
			}
			text = t;
		}
		r = read(fd, text + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cfg_file_error(err, errlen, path, "cannot read: %s",
					strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > TLS_CFG_MAX_FILE) {
		cfg_file_error(err, errlen, path, "cannot read: larger than %d bytes",
				TLS_CFG_MAX_FILE);
		goto fail;
	}
	close(fd);
	list = tls_cfg_parse(path, text ? text : "", len, err, errlen);
	free(text);
	return list;
fail:
	e = errno;
	close(fd);
	free(text);
	errno = e;
	return NULL;
}
