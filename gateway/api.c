/* api.c: routes, preconditions and status mapping of the REST API (api.h). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "assets.h"
#include "tokens.h"

/* /readyz and /api/cluster answer within this, whatever a node does: a
 * probe that waits is worse than one that says "not ready". */
#define VIEW_DEADLINE_MS 1000

typedef enum {
	R_CREATE,
	R_GET,
	R_UPDATE,
	R_DELETE,
	R_SEARCH,
	R_HEALTH,
	R_READY,
	R_CLUSTER,
	R_METRICS,
	R_OPENAPI,
	R_PAGE,
} route_id;

/* Paths: "/api/profile/{uid}" matches one path segment after the prefix;
 * label is the path as metrics name it. In route_id's order. */
static const struct route {
	const char *method;
	const char *path;
	int has_uid;
	route_id id;
	int ok_status;
	const char *label;
} routes[] = {
    {"POST", "/api/profile", 0, R_CREATE, 201, "/api/profile"},
    {"GET", "/api/profile/", 1, R_GET, 200, "/api/profile/{uid}"},
    {"PUT", "/api/profile/", 1, R_UPDATE, 200, "/api/profile/{uid}"},
    {"DELETE", "/api/profile/", 1, R_DELETE, 204, "/api/profile/{uid}"},
    {"GET", "/api/search", 0, R_SEARCH, 200, "/api/search"},
    {"GET", "/healthz", 0, R_HEALTH, 200, "/healthz"},
    {"GET", "/readyz", 0, R_READY, 200, "/readyz"},
    {"GET", "/api/cluster", 0, R_CLUSTER, 200, "/api/cluster"},
    {"GET", "/metrics", 0, R_METRICS, 200, "/metrics"},
    {"GET", "/openapi.json", 0, R_OPENAPI, 200, "/openapi.json"},
    {"GET", "/", 0, R_PAGE, 200, "/"},
};
#define NROUTES (sizeof routes / sizeof routes[0])
_Static_assert(NROUTES == GM_ROUTES - 1, "metrics count every route");

/* Content types of the non-JSON answers. */
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PAGE_TYPE "text/html; charset=utf-8"

void
api_route_label(int r, const char **method, const char **path)
{
	if (r < 0 || (size_t)r >= NROUTES) {
		*method = "other";
		*path = "other";
		return;
	}
	*method = routes[r].method;
	*path = routes[r].label;
}

static const struct {
	int status;
	int http;
} http_table[] = {
    {PROFILE_OK, 200},
    {PROFILE_CANCELLED, 499},
    {PROFILE_UNKNOWN, 500},
    {PROFILE_INVALID_ARGUMENT, 400},
    {PROFILE_DEADLINE_EXCEEDED, 504},
    {PROFILE_NOT_FOUND, 404},
    {PROFILE_ALREADY_EXISTS, 409},
    {PROFILE_PERMISSION_DENIED, 403},
    {PROFILE_RESOURCE_EXHAUSTED, 429},
    {PROFILE_FAILED_PRECONDITION, 412},
    {PROFILE_ABORTED, 409},
    {PROFILE_OUT_OF_RANGE, 400},
    {PROFILE_UNIMPLEMENTED, 501},
    {PROFILE_INTERNAL, 500},
    {PROFILE_UNAVAILABLE, 503},
};

int
api_http_status(int status)
{
	for (size_t i = 0; i < sizeof http_table / sizeof http_table[0]; i++)
		if (http_table[i].status == status)
			return http_table[i].http;
	return 500;
}

static void
answer(api_request *ar, int http, const char *code, const char *message)
{
	ar->kind = API_ANSWER;
	ar->resp.http = http;
	ar->resp.body = body_render_error(code, message);
	if (http == 503)
		ar->resp.retry_after = 1;
}

static void
answer_status(api_request *ar, int status, const char *message)
{
	answer(ar, api_http_status(status), profile_status_name(status), message);
}

/* A read's minimum positions, into the request. */
static int
prepare_positions(api_request *ar, const char *value)
{
	const char *why = NULL;
	size_t n = 0;

	int rc = wire_positions_new(value, API_POSITIONS_MAX, &ar->positions, &ar->position_ptrs, &n, &why);

	if (rc != PROFILE_OK) {
		answer_status(ar, rc, rc == PROFILE_INVALID_ARGUMENT ? why : "out of memory");
		return rc;
	}
	ar->req.n_min_positions = n;
	ar->req.min_positions = ar->position_ptrs;
	return PROFILE_OK;
}

/* With tokens configured: lets the request through (1) or answers it 401
 * or 403 (0). /healthz and /readyz are always open; the operators' views
 * only with --protect-operations. */
static int
authorized(api_request *ar, const api_context *ctx, route_id id, const char *authorization)
{
	int need, scope;

	if (ctx == NULL || ctx->tokens == NULL || id == R_HEALTH || id == R_READY)
		return 1;
	need = id == R_CREATE || id == R_UPDATE || id == R_DELETE ? SCOPE_WRITE : SCOPE_READ;
	if (!ctx->protect_operations && (id == R_CLUSTER || id == R_METRICS || id == R_PAGE || id == R_OPENAPI))
		return 1;
	scope = tokens_scope(ctx->tokens, authorization);
	if (scope == SCOPE_NONE) {
		answer(ar, 401, "UNAUTHENTICATED",
		       authorization ? "the bearer token is not valid" : "a bearer token is required (Authorization: Bearer ...)");
		ar->resp.www_authenticate = authorization ? "Bearer realm=\"profile-service\", error=\"invalid_token\""
		                                          : "Bearer realm=\"profile-service\"";
		return 0;
	}
	if (scope < need) {
		answer(ar, 403, "PERMISSION_DENIED", "this token may read but not write");
		ar->resp.www_authenticate = "Bearer realm=\"profile-service\", error=\"insufficient_scope\"";
		return 0;
	}
	return 1;
}

/* Finds the route for method + path: its index, or -404 / -405 with *allow
 * naming the methods of a matching path. */
static int
route_find(const char *method, const char *path, const char **uid, const char **allow)
{
	static const char allow_profile[] = "POST", allow_uid[] = "GET, HEAD, PUT, DELETE",
	                  allow_get[] = "GET, HEAD";
	int path_matched = -1;

	if (strcmp(method, "HEAD") == 0)
		method = "GET"; /* without the body */

	for (size_t i = 0; i < NROUTES; i++) {
		const struct route *r = &routes[i];
		size_t plen = strlen(r->path);
		int match;

		if (r->has_uid)
			match = strncmp(path, r->path, plen) == 0 && path[plen] != '\0' &&
			        strchr(path + plen, '/') == NULL;
		else
			match = strcmp(path, r->path) == 0;
		if (!match)
			continue;
		if (strcmp(method, r->method) == 0) {
			*uid = r->has_uid ? path + plen : NULL;
			return (int)i;
		}
		path_matched = (int)i;
	}
	if (path_matched < 0)
		return -404;
	*allow = routes[path_matched].id == R_CREATE ? allow_profile
	         : routes[path_matched].has_uid      ? allow_uid
	                                             : allow_get;
	return -405;
}

static void
lower_uid(char *dst, const char *src)
{
	for (int i = 0; i <= WIRE_UID_LEN; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'F') ? (char)(src[i] - 'A' + 'a') : src[i];
}

/* 1 when a body sent with this Content-Type is read as JSON: none, JSON
 * (application/json, any +json), and what clients send by default for a
 * JSON body (curl -d: form-urlencoded; fetch with a string: text/plain). */
static int
json_content_type(const char *ct)
{
	static const char *const taken[] = {"application/json", "application/x-www-form-urlencoded",
	                                     "text/plain"};
	size_t n;

	if (ct == NULL)
		return 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, "; \t");
	if (n == 0)
		return 1;
	for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
		if (strlen(taken[i]) == n && strncasecmp(ct, taken[i], n) == 0)
			return 1;
	return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* A create or update: its JSON body, checked, into the request. */
static void
prepare_write(api_request *ar, int create, const char *body, size_t body_len)
{
	char reason[256];

	if (body_parse_fields(body, body_len, create, &ar->fields, reason, sizeof reason) != PROFILE_OK) {
		answer_status(ar, PROFILE_INVALID_ARGUMENT, reason);
		return;
	}
	ar->write = CLIENT_WRITE;
	if (create) {
		profile__v1__create_request__init(&ar->body.create);
		ar->body.create.username = ar->fields.username;
		ar->body.create.email = ar->fields.email;
		if (ar->idem[0] != '\0') {
			ar->body.create.idempotency_key = ar->idem;
			ar->write = CLIENT_IDEMPOTENT; /* safe to send again */
		}
		ar->req.body_case = PROFILE__V1__REQUEST__BODY_CREATE;
		ar->req.create = &ar->body.create;
	} else {
		Profile__V1__UpdateRequest *u = &ar->body.update;
		profile__v1__update_request__init(u);
		u->uid = ar->uid;
		if (ar->fields.username) {
			u->username_set_case = PROFILE__V1__UPDATE_REQUEST__USERNAME_SET_USERNAME;
			u->username = ar->fields.username;
		}
		if (ar->fields.email) {
			u->email_set_case = PROFILE__V1__UPDATE_REQUEST__EMAIL_SET_EMAIL;
			u->email = ar->fields.email;
		}
		if (ar->pre.check_case)
			u->precondition = &ar->pre;
		ar->req.body_case = PROFILE__V1__REQUEST__BODY_UPDATE;
		ar->req.update = u;
	}
}

/* A search: the email query parameter, checked, into the request. */
static void
prepare_search(api_request *ar, const char *email)
{
	const char *why = NULL;

	if (email == NULL) {
		answer_status(ar, PROFILE_INVALID_ARGUMENT, "the email query parameter is required");
		return;
	}
	if (wire_check_email(email, &why) != PROFILE_OK) {
		answer_status(ar, PROFILE_INVALID_ARGUMENT, why);
		return;
	}
	if ((ar->email = strdup(email)) == NULL) {
		answer_status(ar, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	profile__v1__search_request__init(&ar->body.search);
	ar->body.search.email = ar->email;
	ar->req.body_case = PROFILE__V1__REQUEST__BODY_SEARCH;
	ar->req.search = &ar->body.search;
}

void
api_prepare(api_request *ar, const api_context *ctx, const api_input *in)
{
	const char *uid = NULL, *allow = NULL, *why = NULL;
	const char *method = in->method, *path = in->path, *email = in->email, *if_match = in->if_match,
	           *body = in->body;
	size_t body_len = in->body_len;
	int too_large = in->body_too_large, r;

	memset(ar, 0, sizeof *ar);
	profile__v1__request__init(&ar->req);
	ar->ctx = ctx;
	ar->route = -1;
	snprintf(ar->log_id, sizeof ar->log_id, "%s", in->log_id ? in->log_id : "");
	ar->req.log_id = ar->log_id;
	r = route_find(method, path, &uid, &allow);
	if (r == -404) {
		answer(ar, 404, "NOT_FOUND", "no such resource");
		return;
	}
	if (r == -405) {
		answer(ar, 405, "METHOD_NOT_ALLOWED", "method not allowed on this resource");
		ar->resp.allow = allow;
		return;
	}
	ar->route = r;
	if (!authorized(ar, ctx, routes[r].id, in->authorization))
		return;
	if (too_large) {
		answer(ar, 413, "PAYLOAD_TOO_LARGE", "request body is over 64 KiB");
		return;
	}
	if ((routes[r].id == R_CREATE || routes[r].id == R_UPDATE) && !json_content_type(in->content_type)) {
		answer(ar, 415, "UNSUPPORTED_MEDIA_TYPE", "the body must be JSON (Content-Type: application/json)");
		return;
	}
	if (in->if_none_match != NULL && (routes[r].id == R_GET || routes[r].id == R_SEARCH) &&
	    (ar->if_none_match = strdup(in->if_none_match)) == NULL) {
		answer_status(ar, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (in->min_position != NULL && (routes[r].id == R_GET || routes[r].id == R_SEARCH) &&
	    prepare_positions(ar, in->min_position) != PROFILE_OK)
		return;
	if (in->cache_control != NULL && (routes[r].id == R_GET || routes[r].id == R_SEARCH)) {
		switch (api_parse_max_stale(in->cache_control, &ar->req.max_stale_s)) {
		case 1:
			ar->req.stale_set_case = PROFILE__V1__REQUEST__STALE_SET_MAX_STALE_S;
			break;
		case -1:
			answer_status(ar, PROFILE_INVALID_ARGUMENT, "Cache-Control: max-stale wants a number of seconds");
			return;
		}
	}
	if (uid != NULL) {
		if (wire_check_uid(uid, &why) != PROFILE_OK) {
			answer_status(ar, PROFILE_INVALID_ARGUMENT, why);
			return;
		}
		lower_uid(ar->uid, uid);
	}
	if (in->idem_key != NULL && routes[r].id == R_CREATE &&
	    api_parse_idem_key(in->idem_key, ar->idem, &why) != PROFILE_OK) {
		answer_status(ar, PROFILE_INVALID_ARGUMENT, why);
		return;
	}
	if (if_match != NULL && (routes[r].id == R_UPDATE || routes[r].id == R_DELETE)) {
		profile__v1__precondition__init(&ar->pre);
		if (api_parse_if_match(if_match, &ar->pre, &why) != PROFILE_OK) {
			answer_status(ar, PROFILE_INVALID_ARGUMENT, why);
			return;
		}
	}

	ar->kind = API_CALL;
	switch (routes[r].id) {
	case R_HEALTH:
		ar->kind = API_ANSWER;
		ar->resp.http = 200;
		ar->resp.body = strdup("{\"status\":\"ok\"}");
		return;
	case R_CREATE:
	case R_UPDATE:
		prepare_write(ar, routes[r].id == R_CREATE, body, body_len);
		return;
	case R_GET:
		profile__v1__get_request__init(&ar->body.get);
		ar->body.get.uid = ar->uid;
		ar->req.body_case = PROFILE__V1__REQUEST__BODY_GET;
		ar->req.get = &ar->body.get;
		return;
	case R_DELETE:
		profile__v1__delete_request__init(&ar->body.del);
		ar->body.del.uid = ar->uid;
		if (ar->pre.check_case)
			ar->body.del.precondition = &ar->pre;
		ar->write = CLIENT_WRITE;
		ar->req.body_case = PROFILE__V1__REQUEST__BODY_DELETE;
		ar->req.delete_ = &ar->body.del;
		return;
	case R_SEARCH:
		prepare_search(ar, email);
		return;
	case R_READY:
	case R_CLUSTER:
	case R_METRICS:
		ar->deadline_ms = VIEW_DEADLINE_MS;
		profile__v1__cluster_request__init(&ar->body.cluster);
		ar->body.cluster.with_status = routes[r].id == R_METRICS;
		ar->req.body_case = PROFILE__V1__REQUEST__BODY_CLUSTER;
		ar->req.cluster = &ar->body.cluster;
		return;
	case R_OPENAPI:
	case R_PAGE:
		ar->kind = API_ANSWER;
		ar->resp.http = 200;
		ar->resp.fixed = routes[r].id == R_PAGE ? gateway_page : gateway_openapi;
		ar->resp.fixed_len = routes[r].id == R_PAGE ? gateway_page_len : gateway_openapi_len;
		ar->resp.content_type = routes[r].id == R_PAGE ? PAGE_TYPE : NULL;
		return;
	}
}

static void
answer_profile(api_request *ar, const Profile__V1__Profile *p, int http)
{
	ar->resp.http = http;
	snprintf(ar->resp.etag, sizeof ar->resp.etag, "\"%llu\"", (unsigned long long)p->version);
	if (ar->if_none_match && api_etag_matches(ar->if_none_match, ar->resp.etag)) {
		ar->resp.http = 304; /* the client's copy is current */
		return;
	}
	if (http == 201)
		snprintf(ar->resp.location, sizeof ar->resp.location, "/api/profile/%.36s", p->uid);
	ar->resp.body = body_render_profile(p);
	if (ar->resp.body == NULL) {
		ar->resp.etag[0] = '\0';
		answer_status(ar, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
	}
}

/* /readyz: every core this gateway was given is a reachable member of the
 * cluster, and every partition of the topic is owned and active. */
static void
answer_ready(api_request *ar, const Profile__V1__ClusterReply *c)
{
	size_t active = 0;
	char msg[320];

	for (size_t i = 0; ar->ctx && i < ar->ctx->n_cores; i++) {
		int found = 0;
		for (size_t k = 0; k < c->n_nodes && !found; k++)
			found =
			    c->nodes[k]->reachable && strcmp(c->nodes[k]->address, ar->ctx->cores[i]) == 0;
		if (!found) {
			snprintf(msg, sizeof msg, "core %.200s is not a reachable member of the cluster",
			         ar->ctx->cores[i]);
			answer_status(ar, PROFILE_UNAVAILABLE, msg);
			return;
		}
	}
	for (size_t i = 0; i < c->n_partitions; i++)
		if (c->partitions[i]->state == PROFILE__V1__PARTITION_STATE__STATE__ACTIVE &&
		    c->partitions[i]->owner[0])
			active++;
	if (c->partition_count > 0 && active == (size_t)c->partition_count) {
		ar->resp.http = 200;
		snprintf(msg, sizeof msg, "{\"status\":\"ready\",\"partitions\":%d,\"nodes\":%zu}",
		         (int)c->partition_count, c->n_nodes);
		ar->resp.body = strdup(msg);
		return;
	}
	snprintf(msg, sizeof msg, "%zu of %d partitions active", active, (int)c->partition_count);
	answer_status(ar, PROFILE_UNAVAILABLE, msg);
}

void
api_refuse(api_request *ar, const char *why)
{
	answer_status(ar, PROFILE_UNAVAILABLE, why);
}

void
api_finish(api_request *ar, int call_status, const Profile__V1__Response *resp)
{
	const struct route *r = &routes[ar->route];

	ar->kind = API_ANSWER;
	if (call_status == PROFILE_OK && resp == NULL)
		call_status = PROFILE_INTERNAL;
	if (r->id == R_METRICS) {
		/* The gateway's own counters also when no core answers. */
		int ok = call_status == PROFILE_OK && resp->status == PROFILE__V1__STATUS__OK &&
		         resp->body_case == PROFILE__V1__RESPONSE__BODY_CLUSTER;
		static const int no_waiting[2];
		static const gateway_metrics no_counts;
		ar->resp.http = 200;
		ar->resp.content_type = METRICS_TYPE;
		ar->resp.body = gateway_metrics_render(ar->ctx && ar->ctx->metrics ? ar->ctx->metrics : &no_counts,
		                                       ar->ctx && ar->ctx->waiting ? ar->ctx->waiting : no_waiting,
		                                       ok ? resp->cluster : NULL);
		if (ar->resp.body == NULL)
			answer_status(ar, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (call_status != PROFILE_OK) {
		answer_status(ar, call_status,
		              call_status == PROFILE_UNAVAILABLE ? "no core node could take the request"
		              : call_status == PROFILE_DEADLINE_EXCEEDED ? "no answer from the core in time"
		              : call_status == PROFILE_INTERNAL          ? "malformed answer from the core"
		                                                         : "the gateway is overloaded");
		return;
	}
	if (resp->status != PROFILE__V1__STATUS__OK) {
		answer_status(ar, (int)resp->status, resp->message);
		/* The body was checked here: a keyed create the core refuses as
		 * invalid reuses its key with another body (IETF httpapi draft). */
		if (r->id == R_CREATE && ar->idem[0] != '\0' &&
		    resp->status == PROFILE__V1__STATUS__INVALID_ARGUMENT)
			ar->resp.http = 422;
		return;
	}
	if (resp->staleness != NULL) {
		ar->resp.stale = 1;
		ar->resp.age_s = resp->staleness->age_s;
		ar->resp.lag = resp->staleness->lag;
	}
	if (resp->position != NULL)
		snprintf(ar->resp.position, sizeof ar->resp.position, "%d:%lld", (int)resp->position->partition,
		         (long long)resp->position->offset);
	switch (r->id) {
	case R_CREATE:
	case R_GET:
	case R_UPDATE:
		if (resp->body_case != PROFILE__V1__RESPONSE__BODY_PROFILE)
			break;
		answer_profile(ar, resp->profile, r->ok_status);
		return;
	case R_DELETE:
		ar->resp.http = 204;
		return;
	case R_SEARCH:
		if (resp->body_case != PROFILE__V1__RESPONSE__BODY_SEARCH)
			break;
		/* The core sorts most recently updated first. */
		if (resp->search->n_profiles == 0)
			answer_status(ar, PROFILE_NOT_FOUND, "no profile with this email");
		else
			answer_profile(ar, resp->search->profiles[0], 200);
		return;
	case R_READY:
		if (resp->body_case != PROFILE__V1__RESPONSE__BODY_CLUSTER)
			break;
		answer_ready(ar, resp->cluster);
		return;
	case R_CLUSTER:
		if (resp->body_case != PROFILE__V1__RESPONSE__BODY_CLUSTER)
			break;
		ar->resp.http = 200;
		if ((ar->resp.body = body_render_cluster(resp->cluster)) == NULL)
			answer_status(ar, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		return;
	case R_HEALTH:
	case R_METRICS:
	case R_OPENAPI:
	case R_PAGE:
		break;
	}
	answer_status(ar, PROFILE_INTERNAL, "unexpected answer from the core");
}

void
api_request_fini(api_request *ar)
{
	free(ar->resp.body);
	ar->resp.body = NULL;
	body_fields_fini(&ar->fields);
	free(ar->email);
	ar->email = NULL;
	free(ar->if_none_match);
	ar->if_none_match = NULL;
	free(ar->positions);
	ar->positions = NULL;
	free(ar->position_ptrs);
	ar->position_ptrs = NULL;
}
