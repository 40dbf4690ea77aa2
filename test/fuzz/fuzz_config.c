/*
 * fuzz_config.c: libFuzzer harness for the config-file parser
 * (tls_config.c). Every input is parsed as a config file; a parse must end
 * either with a list whose every field holds what tls_config.h promises, or
 * with NULL and one "fuzz.cfg:LINE: problem" line. Anything else aborts.
 *
 * Build and run from the top of the tree (clang and libFuzzer come with
 * Debian's clang package). New inputs go to the scratch directory first on
 * the command line; the seeds in test/fuzz/corpus/config are only read:
 *
 *   clang -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -I. \
 *       test/fuzz/fuzz_config.c tls_config.c -o build/fuzz_config
 *   mkdir -p build/fuzz-corpus
 *   ./build/fuzz_config -max_total_time=120 -max_len=12000 -timeout=10 \
 *       build/fuzz-corpus test/fuzz/corpus/config
 *
 * Replay one input (e.g. a crash file): ./build/fuzz_config crash-<sha1>
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tls_config.h"

#define FUZZ_NAME "/fuzz/dir/fuzz.cfg"

#define require(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_config: %s:%d: broken: %s\n", __FILE__, \
					__LINE__, #cond); \
			abort(); \
		} \
	} while (0)

static int lines_in(const uint8_t *data, size_t size)
{
	int n = 1;
	size_t i;

	for (i = 0; i < size; i++)
		n += data[i] == '\n';
	return n;
}

static void check_path(const char *p)
{
	if (p == NULL)
		return;
	require(p[0] == '/');
	require(strstr(p, "//") == NULL);
	require(strstr(p, "/./") == NULL);
}

static void check_domain(const struct tls_cfg_domain *d, int lines)
{
	unsigned char bin[16];
	char buf[96];
	int i, k;

	require(d->role == TLS_ROLE_SERVER || d->role == TLS_ROLE_CLIENT);
	require(d->file != NULL && strcmp(d->file, FUZZ_NAME) == 0);
	require(d->line >= 1 && d->line <= lines);
	switch (d->kind) {
	case TLS_CFG_ADDR:
		require(d->af == AF_INET || d->af == AF_INET6);
		require(inet_pton(d->af, d->addr, bin) == 1);
		require(d->port > 0);
		break;
	case TLS_CFG_ANY:
		require(d->server_names_no > 0);
		break;
	case TLS_CFG_DEFAULT:
		require(d->addr[0] == '\0' && d->port == 0);
		break;
	default:
		require(0);
	}
	require(d->sni_default == 0 || (d->sni_default == 1
			&& d->kind == TLS_CFG_ANY));
	require(d->server_names_no >= 0);
	for (i = 0; i < d->server_names_no; i++) {
		const char *n = d->server_names[i];

		require(n != NULL && n[0] != '\0' && strlen(n) <= 253);
		require(strchr(n + (n[0] == '*' ? 1 : 0), '*') == NULL);
		require(n[0] != '*' || n[1] == '.');
		for (; *n; n++)
			require(!(*n >= 'A' && *n <= 'Z'));
	}
	require(d->verify_certificate >= -1 && d->verify_certificate <= 1);
	require(d->require_certificate >= -1 && d->require_certificate <= 1);
	require(d->verify_depth >= -1);
	check_path(d->certificate);
	check_path(d->private_key);
	check_path(d->ca_list);
	check_path(d->ca_path);
	check_path(d->crl);
	for (k = 0; k < TLS_CFG_KEYS; k++)
		require(d->key_line[k] == 0 || (d->key_line[k] > d->line
				&& d->key_line[k] <= lines));
	require((d->method != NULL) == (d->key_line[TLS_CFG_METHOD] != 0));
	require((d->certificate != NULL)
			== (d->key_line[TLS_CFG_CERTIFICATE] != 0));
	require((d->verify_depth >= 0)
			== (d->key_line[TLS_CFG_VERIFY_DEPTH] != 0));
	tls_cfg_section_name(d, buf, sizeof(buf));
	require(buf[0] == '[' && buf[strlen(buf) - 1] == ']');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct tls_cfg_domain *list, *d;
	int lines = lines_in(data, size);

	memset(err, 'x', sizeof(err));
	list = tls_cfg_parse(FUZZ_NAME, (const char *)data, size, err,
			sizeof(err));
	require(memchr(err, '\0', sizeof(err)) != NULL);
	if (list == NULL) {
		require(strncmp(err, FUZZ_NAME ":", strlen(FUZZ_NAME ":")) == 0);
		require(strchr(err, '\n') == NULL);
		require(strlen(err) > strlen(FUZZ_NAME ":1: "));
		return 0;
	}
	require(err[0] == '\0');
	for (d = list; d; d = d->next)
		check_domain(d, lines);
	tls_cfg_free(list);
	return 0;
}
