/* tls.c: mutual TLS for nng's tls+tcp:// transport (tls.h). */
#include "tls.h"

#include <errno.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/status.h"

/* Larger PEM files are not certificates someone meant to give. */
#define PEM_MAX (1 << 20)

struct call_tls {
	char *ca, *cert, *key; /* PEM text, NUL-terminated */
};

char *
call_tls_read_pem(const char *what, const char *path, char *err, size_t len)
{
	FILE *f;
	char *buf = NULL, *shrunk;
	size_t n = 0;

	if (path == NULL || path[0] == '\0') {
		snprintf(err, len, "TLS needs a %s file", what);
		return NULL;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, len, "cannot read the TLS %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(PEM_MAX + 1)) != NULL)
		n = fread(buf, 1, PEM_MAX + 1, f);
	fclose(f);
	if (buf == NULL) {
		snprintf(err, len, "out of memory reading %s", path);
		return NULL;
	}
	buf[n > PEM_MAX ? PEM_MAX : n] = '\0'; /* before strstr reads it */
	if (n == 0 || n > PEM_MAX || strstr(buf, "-----BEGIN ") == NULL) {
		snprintf(err, len, "the TLS %s %s is not a PEM file (or over %d bytes)", what, path, PEM_MAX);
		free(buf);
		return NULL;
	}
	/* Kept for the process's life: only what was read. */
	if ((shrunk = realloc(buf, n + 1)) != NULL)
		buf = shrunk;
	return buf;
}

/* A new nng configuration from t: peer certificate required and checked
 * against the CA; server_name, for a dialer, is the name the peer's
 * certificate must carry. NULL on failure. */
static nng_tls_config *
make_config(const call_tls *t, nng_tls_mode mode, const char *server_name, int *rv)
{
	nng_tls_config *cfg;

	if ((*rv = nng_tls_config_alloc(&cfg, mode)) != 0)
		return NULL;
	if ((*rv = nng_tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_3)) != 0 &&
	    (*rv = nng_tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_2)) != 0)
		goto fail;
	if ((*rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
	    (*rv = nng_tls_config_ca_chain(cfg, t->ca, NULL)) != 0 ||
	    (*rv = nng_tls_config_own_cert(cfg, t->cert, t->key, NULL)) != 0)
		goto fail;
	if (server_name && (*rv = nng_tls_config_server_name(cfg, server_name)) != 0)
		goto fail;
	return cfg;
fail:
	nng_tls_config_free(cfg);
	return NULL;
}

int
call_tls_load(call_tls **out, const char *ca_file, const char *cert_file, const char *key_file, char *err,
              size_t len)
{
	call_tls *t = calloc(1, sizeof *t);
	nng_tls_config *probe;
	int rv;

	if (t == NULL) {
		snprintf(err, len, "out of memory");
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	if ((t->ca = call_tls_read_pem("CA certificate", ca_file, err, len)) == NULL ||
	    (t->cert = call_tls_read_pem("certificate", cert_file, err, len)) == NULL ||
	    (t->key = call_tls_read_pem("key", key_file, err, len)) == NULL)
		goto fail;
	/* The engine parses all three now, so that a bad file is named at
	 * start and not at the first connection. */
	if ((probe = make_config(t, NNG_TLS_MODE_CLIENT, NULL, &rv)) == NULL) {
		snprintf(err, len, "TLS files %s, %s, %s not accepted: %s", ca_file, cert_file, key_file,
		         nng_strerror(rv));
		goto fail;
	}
	nng_tls_config_free(probe);
	*out = t;
	return PROFILE_OK;
fail:
	call_tls_free(t);
	return PROFILE_INVALID_ARGUMENT;
}

void
call_tls_free(call_tls *t)
{
	if (t == NULL)
		return;
	free(t->ca);
	free(t->cert);
	call_tls_free_pem(t->key);
	free(t);
}

void
call_tls_free_pem(char *pem)
{
	/* It may be a key: not left in freed memory. */
	for (volatile char *p = pem; p && *p; p++)
		*p = '\0';
	free(pem);
}

int
call_tls_url(const char *url)
{
	return url && strncmp(url, "tls+tcp", 7) == 0;
}

int
call_tls_dial(nng_socket s, const char *url, const call_tls *t)
{
	nng_dialer d;
	nng_tls_config *cfg;
	nng_url *u;
	int rv;

	if (!call_tls_url(url))
		return nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK);
	if (t == NULL)
		return NNG_EINVAL;
	if ((rv = nng_url_parse(&u, url)) != 0)
		return rv;
	cfg = make_config(t, NNG_TLS_MODE_CLIENT, u->u_hostname, &rv);
	nng_url_free(u);
	if (cfg == NULL)
		return rv;
	if ((rv = nng_dialer_create(&d, s, url)) == 0) {
		if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg)) == 0)
			rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
		if (rv != 0)
			nng_dialer_close(d);
	}
	nng_tls_config_free(cfg); /* the dialer holds its own reference */
	return rv;
}

int
call_tls_listen(nng_socket s, const char *url, const call_tls *t)
{
	nng_listener l;
	nng_tls_config *cfg;
	int rv;

	if (!call_tls_url(url))
		return nng_listen(s, url, NULL, 0);
	if (t == NULL)
		return NNG_EINVAL;
	if ((cfg = make_config(t, NNG_TLS_MODE_SERVER, NULL, &rv)) == NULL)
		return rv;
	if ((rv = nng_listener_create(&l, s, url)) == 0) {
		if ((rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg)) == 0)
			rv = nng_listener_start(l, 0);
		if (rv != 0)
			nng_listener_close(l);
	}
	nng_tls_config_free(cfg);
	return rv;
}

int
call_host_loopback(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
	       strcmp(host, "[::1]") == 0;
}

int
call_url_loopback(const char *url)
{
	nng_url *u;
	int local;

	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
		return 1;
	if (nng_url_parse(&u, url) != 0)
		return 0;
	local = u->u_hostname != NULL && call_host_loopback(u->u_hostname);
	nng_url_free(u);
	return local;
}
