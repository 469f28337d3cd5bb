/* rpc.h: the nng REQ/REP server of a core node.
 *
 * Listens on one nng URL (tcp:// or ipc://) with a fixed number of REP
 * contexts, so that many requests are in service at once; each context
 * receives one protobuf Request, hands it to the service, and sends the
 * Response when the service answers (possibly much later, from another
 * thread). No thread ever blocks in here. nng error codes stop at this
 * module.
 */
#ifndef PROFILE_RPC_H
#define PROFILE_RPC_H

#include "service.h"
#include "tls.h"
#include "wire.h"

typedef struct rpc_server rpc_server;

/* What the server keeps of a request while it is served, to count and log
 * its answer. */
typedef struct rpc_call {
	int method; /* index into metrics_method_names */
	char log_id[WIRE_LOG_ID_MAX + 1]; /* the request's log id, or "-" */
} rpc_call;

/* One request as it came off the network: decodes buf (len bytes; the
 * caller keeps it), fills *call, checks it and hands it to its method, or
 * answers why not (INVALID_ARGUMENT for one too large or malformed or with a
 * bad log id, UNAVAILABLE when draining). done runs once, now or later on
 * another thread; *call is filled before. */
void rpc_handle(service *svc, int draining, const void *buf, size_t len, rpc_call *call, reply_fn done,
                void *arg);

/* Listens on url with `contexts` contexts serving svc; a tls+tcp:// url
 * with tls (borrowed), requiring every caller's certificate to be signed by
 * its CA. PROFILE_OK and *out,
 * PROFILE_INVALID_ARGUMENT (bad URL), PROFILE_UNAVAILABLE (address in use or
 * not allowed), PROFILE_RESOURCE_EXHAUSTED. */
int rpc_server_open(rpc_server **out, const char *url, int contexts, service *svc, const call_tls *tls);

/* Stops taking requests: from now on each new request is answered
 * UNAVAILABLE (not executed), and every answer says the node is draining,
 * so callers go elsewhere. */
void rpc_server_drain(rpc_server *srv);

/* After rpc_server_drain, before the service is freed: from now on no
 * request reaches the service (each is answered UNAVAILABLE, draining, by
 * the server alone) and no answer, those the service still gives to its
 * pending calls included, touches it. Waits for a request being handed to
 * the service to be handed over. */
void rpc_server_detach(rpc_server *srv);

/* After rpc_server_drain: waits until no request has arrived for quiet_ms
 * (callers have heard the node is draining), at most max_ms, so that
 * closing the socket drops no request a caller is still sending: such a
 * request could only be answered "outcome unknown". */
void rpc_server_quiesce(rpc_server *srv, int quiet_ms, int max_ms);

/* Closes the socket, waiting at most timeout_ms (nng 1.5's close can hang;
 * the process may then exit with the close still pending), and frees what it
 * safely can. NULL is a no-op. */
void rpc_server_close(rpc_server *srv, int timeout_ms);

#endif
