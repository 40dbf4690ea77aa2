/*
 * tls_session.c: session resumption across processes.
 *
 * A client that reconnects lands on whichever TCP reader the core picks.
 * Resumption therefore needs state every process sees:
 *  - tickets (TLS 1.3, and TLS 1.2 clients that support them) are sealed
 *    with keys kept here, in shared memory only (they are never written
 *    anywhere else), rotated every `lifetime` seconds; the previous key
 *    still opens tickets for one more lifetime, and such a ticket is
 *    renewed (RFC 5077 4: the server may issue a new ticket);
 *  - TLS 1.2 session IDs use OpenSSL's session cache, which is part of the
 *    SSL_CTX; the context is in shared memory and its lock is process-shared
 *    (the core's TLS_PTHREAD_MUTEX_SHARED), so one cache serves them all.
 */
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "core/dprint.h"
#include "core/locking.h"
#include "core/mem/shm_mem.h"

#include "tls_session.h"

struct tls_ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
};

struct tls_ticket_keys {
	gen_lock_t lock;
	struct tls_ticket_key key[2]; /* [cur] seals, [!cur] still opens */
	int cur;
	int have_prev;
	time_t made;           /* when key[cur] was made */
	unsigned int lifetime; /* s */
};

static struct tls_ticket_keys *tls_keys;

static int tls_ticket_key_new(struct tls_ticket_key *k)
{
	return RAND_bytes(k->name, sizeof(k->name)) == 1
			&& RAND_priv_bytes(k->aes, sizeof(k->aes)) == 1
			&& RAND_priv_bytes(k->hmac, sizeof(k->hmac)) == 1;
}

int tls_session_init(unsigned int lifetime)
{
	if (tls_keys)
		return 0;
	tls_keys = shm_malloc(sizeof(*tls_keys));
	if (tls_keys == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(tls_keys, 0, sizeof(*tls_keys));
	if (lock_init(&tls_keys->lock) == NULL
			|| !tls_ticket_key_new(&tls_keys->key[0])) {
		LM_ERR("cannot make a session ticket key\n");
		shm_free(tls_keys);
		tls_keys = NULL;
		return -1;
	}
	tls_keys->made = time(NULL);
	tls_keys->lifetime = lifetime ? lifetime : 3600;
	return 0;
}

void tls_session_unlock_dead(void)
{
	if (tls_keys)
		lock_release(&tls_keys->lock);
}

void tls_session_destroy(void)
{
	if (tls_keys) {
		OPENSSL_cleanse(tls_keys->key, sizeof(tls_keys->key));
		lock_destroy(&tls_keys->lock);
		shm_free(tls_keys);
		tls_keys = NULL;
	}
}

/* Under the lock: replaces the older key when the current one is due. */
static void tls_ticket_rotate(time_t now)
{
	struct tls_ticket_key fresh;

	if (now - tls_keys->made < (time_t)tls_keys->lifetime)
		return;
	if (!tls_ticket_key_new(&fresh))
		return; /* keep sealing with the current key */
	tls_keys->cur = !tls_keys->cur;
	tls_keys->key[tls_keys->cur] = fresh;
	tls_keys->have_prev = 1;
	tls_keys->made = now;
	OPENSSL_cleanse(&fresh, sizeof(fresh));
}

static int tls_ticket_mac_init(EVP_MAC_CTX *hctx, unsigned char *key)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
		OSSL_PARAM_construct_end()
	};

	return EVP_MAC_CTX_set_params(hctx, params);
}

/* OpenSSL's ticket callback: 1 ok, 2 ok and renew the ticket, 0 unknown
 * key (full handshake), -1 error. */
static int tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
		EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_ticket_key k;
	int ret = 0, i;

	if (tls_keys == NULL)
		return 0;
	if (enc && RAND_bytes(iv, EVP_MAX_IV_LENGTH > 16 ? 16 : EVP_MAX_IV_LENGTH)
					!= 1)
		return -1;
	lock_get(&tls_keys->lock);
	if (enc) {
		tls_ticket_rotate(time(NULL));
		k = tls_keys->key[tls_keys->cur];
		memcpy(name, k.name, sizeof(k.name));
		ret = 1;
	} else {
		for (i = 0; i < 2; i++) {
			int idx = i == 0 ? tls_keys->cur : !tls_keys->cur;
			if (i == 1 && !tls_keys->have_prev)
				break;
			if (memcmp(name, tls_keys->key[idx].name, 16) == 0) {
				k = tls_keys->key[idx];
				/* "Renew" (2) for TLS 1.3: its clients use a ticket once
				 * (RFC 8446 C.4), so a resumed connection must get a new
				 * one, or every other reconnection is a full handshake;
				 * OpenSSL only sends one after resumption on this answer.
				 * A TLS 1.2 ticket stays valid: renewed only when sealed
				 * with the previous key. */
				ret = (i == 1 || SSL_version(ssl) >= TLS1_3_VERSION) ? 2 : 1;
				break;
			}
		}
		/* The previous key opens tickets for one more lifetime only. */
		if (ret > 0 && i == 1 && time(NULL) - tls_keys->made
								>= (time_t)tls_keys->lifetime)
			ret = 0;
	}
	lock_release(&tls_keys->lock);
	if (ret == 0)
		return 0;
	if (!tls_ticket_mac_init(hctx, k.hmac)
			|| !(enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes,
						 iv)
					 : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes,
						 iv)))
		ret = -1;
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

void tls_session_setup(SSL_CTX *ctx, int cache_size)
{
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
	SSL_CTX_set_num_tickets(ctx, 1);
	if (cache_size > 0) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(ctx, cache_size);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
}
