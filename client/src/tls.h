/* tls.h: mutual TLS for nng's tls+tcp:// transport (internal).
 *
 * Every hop between the service's parts may run over TLS: each side
 * presents a certificate signed by the cluster's CA and checks the peer's
 * against that CA; a dialer also checks that the node's certificate names
 * the host it dialed. call_tls holds the three PEM files, read once; nng
 * configurations are made from it per listener and per dialed address.
 */
#ifndef PROFILE_TLS_H
#define PROFILE_TLS_H

#include <stddef.h>

#include <nng/nng.h>

typedef struct call_tls call_tls;

/* Reads the CA certificate(s), this side's certificate and its private key
 * (unencrypted PEM files; the paths are borrowed). All three are needed.
 * PROFILE_OK and *out, for call_tls_free; otherwise PROFILE_INVALID_ARGUMENT
 * (a file missing, unreadable or not what nng's TLS engine accepts) or
 * PROFILE_RESOURCE_EXHAUSTED, with why in err. */
int call_tls_load(call_tls **out, const char *ca_file, const char *cert_file, const char *key_file, char *err,
                  size_t len);

/* The text of the PEM file at path (what names it in err), for
 * call_tls_free_pem; NULL with why in err. */
char *call_tls_read_pem(const char *what, const char *path, char *err, size_t len);

/* Frees a PEM text after wiping it (it may hold a key). NULL is a no-op. */
void call_tls_free_pem(char *pem);

/* NULL is a no-op. Dialers and listeners made with it keep what they need. */
void call_tls_free(call_tls *t);

/* 1 when url is a tls+tcp:// address (tls+tcp4/6 too). */
int call_tls_url(const char *url);

/* Dials url on s in the background (nng_dial's NNG_FLAG_NONBLOCK): over TLS
 * with t when url is tls+tcp://, as nng_dial otherwise. A tls+tcp:// url
 * without t is NNG_EINVAL. nng's status. */
int call_tls_dial(nng_socket s, const char *url, const call_tls *t);

/* Listens on url as nng_listen does; over TLS with t when url is
 * tls+tcp://, requiring and checking every caller's certificate. A
 * tls+tcp:// url without t is NNG_EINVAL. nng's status. */
int call_tls_listen(nng_socket s, const char *url, const call_tls *t);

/* 1 when url is reached only from this machine: ipc://, inproc://, or
 * tcp:// on a loopback address (127.0.0.0/8, ::1, localhost). */
int call_url_loopback(const char *url);

/* 1 when host (an address or name, IPv6 with or without brackets) is a
 * loopback one. */
int call_host_loopback(const char *host);

#endif
