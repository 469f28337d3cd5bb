/* api.h: the REST API, independent of the HTTP library.
 *
 * api_prepare turns one HTTP request (method, path, the email query
 * argument, its headers, body) into either an immediate answer (bad input,
 * unknown path, /healthz, the OpenAPI description, the cluster page) or one
 * RPC to the core; api_finish turns the RPC's outcome into the HTTP answer.
 * HEAD is GET without the body (libmicrohttpd leaves it out). The route table, the If-Match rules and the
 * status -> HTTP table are here, in one place each.
 */
#ifndef PROFILE_GATEWAY_API_H
#define PROFILE_GATEWAY_API_H

#include <stddef.h>

#include "body.h"
#include "client_internal.h"
#include "metrics.h"
#include "wire.h"

#define API_BODY_MAX (64 * 1024) /* larger request bodies get 413 */

typedef struct api_response {
	int http;                 /* HTTP status */
	char *body;               /* malloc'd text, or NULL for no body (or a fixed one) */
	const char *fixed;        /* a static body (fixed_len bytes) when body is NULL */
	size_t fixed_len;
	const char *content_type; /* of the body; NULL: application/json */
	char etag[32];            /* "" when none */
	char location[64];        /* Location of a created profile, "" when none */
	char position[48];        /* X-Profile-Position of a write, "" when none */
	int stale;                /* a copy that may be stale answered: Age and X-Profile-Lag */
	uint32_t age_s;
	int64_t lag;
	int retry_after;          /* seconds; 0 when none */
	const char *allow;        /* Allow header for 405, else NULL */
	const char *www_authenticate; /* WWW-Authenticate for 401 and 403, else NULL */
} api_response;

typedef enum { API_ANSWER, API_CALL } api_kind;

/* What the API knows of its deployment: the core addresses it was given
 * (/readyz wants each of them in the cluster). Borrowed; outlives requests. */
typedef struct api_context {
	const char *const *cores;
	size_t n_cores;
	const gateway_metrics *metrics; /* the gateway's counters, for /metrics */
	const int *waiting;             /* requests waiting now: reads [0], writes [1] */
	const struct token_table *tokens; /* NULL: every caller is let in */
	int protect_operations;           /* with tokens: /api/cluster, /metrics, / and /openapi.json want one too */
} api_context;

typedef struct api_request {
	api_kind kind;
	api_response resp; /* API_ANSWER: the answer */
	/* API_CALL: the request to send, and how to read its reply. */
	Profile__V1__Request req;
	const api_context *ctx;
	int route;            /* index into the route table */
	int write;            /* a client_call mode: CLIENT_READ, CLIENT_WRITE, CLIENT_IDEMPOTENT */
	uint32_t deadline_ms; /* at most this long for the call (0: the default) */
	/* storage the request points into */
	union {
		Profile__V1__CreateRequest create;
		Profile__V1__GetRequest get;
		Profile__V1__UpdateRequest update;
		Profile__V1__DeleteRequest del;
		Profile__V1__SearchRequest search;
		Profile__V1__ClusterRequest cluster;
	} body;
	Profile__V1__Precondition pre;
	body_fields fields;
	char uid[WIRE_UID_LEN + 1];
	char *email;
	char idem[WIRE_IDEM_KEY_MAX + 1]; /* the create's Idempotency-Key, or "" */
	char *if_none_match;             /* a GET's If-None-Match, or NULL */
	char log_id[WIRE_LOG_ID_MAX + 1]; /* names the request in log lines */
	Profile__V1__Position *positions; /* a read's X-Profile-Min-Position, malloc'd */
	Profile__V1__Position **position_ptrs;
} api_request;

/* One HTTP request, as api_prepare reads it. */
typedef struct api_input {
	const char *method, *path;
	const char *email;    /* the decoded `email` query argument, or NULL */
	const char *if_match; /* the If-Match header, or NULL */
	const char *idem_key; /* the Idempotency-Key header, or NULL */
	const char *if_none_match; /* the If-None-Match header, or NULL */
	const char *content_type;  /* the Content-Type header, or NULL */
	const char *min_position;  /* the X-Profile-Min-Position header, or NULL */
	const char *cache_control; /* the Cache-Control header, or NULL */
	const char *authorization; /* the Authorization header, or NULL */
	const char *log_id;   /* the request's id (X-Request-Id, checked), carried to the core */
	const char *body;
	size_t body_len;
	int body_too_large; /* over API_BODY_MAX (body is then ignored) */
} api_input;

/* The labels of route r (an index as in api_request.route; -1: none
 * matched) for metrics: its method and its path template. */
void api_route_label(int r, const char **method, const char **path);

/* Prepares ar for one HTTP request (in and what it points to are borrowed
 * until api_prepare returns). Always fills ar; free with api_request_fini. */
void api_prepare(api_request *ar, const api_context *ctx, const api_input *in);

/* Reads an Idempotency-Key header: a structured-field string ("...", with
 * \" and \\ escapes) or, as many clients send it, the bare key. Into out
 * (WIRE_IDEM_KEY_MAX + 1 bytes); PROFILE_OK or PROFILE_INVALID_ARGUMENT
 * with *why. */
int api_parse_idem_key(const char *header, char *out, const char **why);

/* Turns the RPC outcome into ar->resp (call_status and resp as from
 * client_raw_fn; resp borrowed). */
void api_finish(api_request *ar, int call_status, const Profile__V1__Response *resp);

/* Answers ar at once with 503 (Retry-After) and why: the gateway is at one
 * of its bounds. */
void api_refuse(api_request *ar, const char *why);

void api_request_fini(api_request *ar);

/* The HTTP status for a protocol status (the one mapping table). */
int api_http_status(int status);

#define API_POSITIONS_MAX 1024 /* positions one X-Profile-Min-Position may list */

/* Reads max-stale from a Cache-Control value: 1 and *seconds when it is
 * there (bare max-stale: any staleness, UINT32_MAX), 0 when not, -1 when
 * its value is not a number of seconds. */
int api_parse_max_stale(const char *cache_control, uint32_t *seconds);

/* Parses an If-Match value into pre. PROFILE_OK, or PROFILE_INVALID_ARGUMENT
 * with *why set. */
int api_parse_if_match(const char *value, Profile__V1__Precondition *pre, const char **why);

/* 1 when an If-None-Match list names etag (or is "*"); weak tags compare
 * as strong ones (RFC 9110's weak comparison, as GET uses). */
int api_etag_matches(const char *list, const char *etag);

#endif
