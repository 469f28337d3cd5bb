/* http.h: the gateway's HTTP server (libmicrohttpd).
 *
 * Reads each request (body capped at API_BODY_MAX), asks the api module what
 * to do, and either answers at once or suspends the connection while the RPC
 * is in flight, resuming it from the RPC's completion. No thread waits on
 * the core. libmicrohttpd brings connection timeouts and limits, chunked
 * request bodies and keep-alive.
 */
#ifndef PROFILE_GATEWAY_HTTP_H
#define PROFILE_GATEWAY_HTTP_H

#include <stdint.h>

#include "client_internal.h"

typedef struct http_server http_server;

typedef struct http_config {
	const char *address; /* IPv4 address to bind, e.g. "127.0.0.1" */
	uint16_t port;
	unsigned threads; /* polling threads */
	unsigned connection_timeout_s;
	unsigned max_connections;
	unsigned max_per_source; /* connections from one IP address; 0 = no cap */
	unsigned max_waiting;    /* requests waiting for a core at once; 0 = no cap */
	uint32_t call_timeout_ms; /* deadline of each RPC */
	const char *const *cores; /* the core addresses given (for /readyz) */
	size_t n_cores;
	const struct token_table *tokens; /* bearer tokens, or NULL: no authentication */
	int protect_operations;           /* tokens also for the operators' views */
	const char *https_cert, *https_key; /* PEM text: serve HTTPS; NULL: HTTP */
} http_config;

/* Starts serving. PROFILE_OK and *out; PROFILE_UNAVAILABLE when the port
 * cannot be bound; PROFILE_INVALID_ARGUMENT for a bad address. */
int http_server_open(http_server **out, const http_config *cfg, profile_client *client);

/* Stops accepting, waits for requests in flight (their RPCs complete within
 * the call deadline), frees. NULL is a no-op. */
void http_server_close(http_server *srv);

#endif
