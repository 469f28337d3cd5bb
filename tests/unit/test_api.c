/* test_api.c: the REST API's rules without HTTP (gateway/api.c, json.c). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api.h"
#include "body.h"
#include "tokens.h"
#include "check.h"

static const char *uid = "74292b21-0fbb-4f1d-a18f-fa80f947fa5d";
static const api_context no_cores = {.cores = NULL};

/* Prepares a request and returns its HTTP status when answered at once,
 * or 0 when it becomes an RPC. */
static int
prep(api_request *ar, const char *method, const char *path, const char *email, const char *if_match,
     const char *body)
{
	api_input in = {.method = method,
	                .path = path,
	                .email = email,
	                .if_match = if_match,
	                .body = body,
	                .body_len = body ? strlen(body) : 0};

	api_prepare(ar, &no_cores, &in);
	return ar->kind == API_ANSWER ? ar->resp.http : 0;
}

static int
status_of(const char *method, const char *path, const char *body)
{
	api_request ar;
	int http = prep(&ar, method, path, NULL, NULL, body);

	api_request_fini(&ar);
	return http;
}

static void
test_routes(void)
{
	char path[96];

	snprintf(path, sizeof path, "/api/profile/%s", uid);
	CHECK_INT(status_of("POST", "/api/profile", "{\"username\":\"bob\",\"email\":\"bob1@mail.com\"}"), 0);
	CHECK_INT(status_of("GET", path, NULL), 0);
	CHECK_INT(status_of("PUT", path, "{\"email\":\"bob2@mail.com\"}"), 0);
	CHECK_INT(status_of("DELETE", path, NULL), 0);
	CHECK_INT(status_of("GET", "/healthz", NULL), 200);
	CHECK_INT(status_of("GET", "/readyz", NULL), 0);
	CHECK_INT(status_of("GET", "/api/cluster", NULL), 0);
	/* unknown paths */
	CHECK_INT(status_of("GET", "/index.html", NULL), 404);
	CHECK_INT(status_of("GET", "/api/profiles", NULL), 404);
	CHECK_INT(status_of("GET", "/api/profile/", NULL), 404);
	CHECK_INT(status_of("GET", "/api/profile/a/b", NULL), 404);
	/* wrong methods, with Allow */
	{
		api_request ar;
		CHECK_INT(prep(&ar, "GET", "/api/profile", NULL, NULL, NULL), 405);
		CHECK_STR(ar.resp.allow, "POST");
		CHECK(strstr(ar.resp.body, "METHOD_NOT_ALLOWED") != NULL);
		api_request_fini(&ar);
		CHECK_INT(prep(&ar, "POST", path, NULL, NULL, "{}"), 405);
		CHECK_STR(ar.resp.allow, "GET, HEAD, PUT, DELETE");
		api_request_fini(&ar);
	}
	CHECK_INT(status_of("DELETE", "/api/search", NULL), 405);
	/* a uid that is not a UUID */
	CHECK_INT(status_of("GET", "/api/profile/not-a-uuid", NULL), 400);
	CHECK_INT(status_of("DELETE", "/api/profile/74292b21-0fbb-4f1d-a18f-fa80f947fa5", NULL), 400);
}

static void
test_uid_in_path_is_lowercased(void)
{
	api_request ar;

	CHECK_INT(prep(&ar, "GET", "/api/profile/74292B21-0FBB-4F1D-A18F-FA80F947FA5D", NULL, NULL, NULL), 0);
	CHECK_STR(ar.req.get->uid, uid);
	api_request_fini(&ar);
}

/* Every malformed body gets 400 before anything is sent. */
static void
test_bad_bodies(void)
{
	static const char *const bad_create[] = {
	    "",
	    "{",
	    "[]",
	    "\"bob\"",
	    "null",
	    "{\"username\":\"bob\"}",
	    "{\"email\":\"bob@mail.com\"}",
	    "{\"username\":\"\",\"email\":\"bob@mail.com\"}",
	    "{\"username\":\"bob\",\"email\":\"\"}",
	    "{\"username\":1,\"email\":\"bob@mail.com\"}",
	    "{\"username\":\"bob\",\"email\":null}",
	    "{\"username\":[\"bob\"],\"email\":\"bob@mail.com\"}",
	    "{\"username\":\"bob\",\"email\":\"bobmail.com\"}",
	    "{\"username\":\"bob\",\"email\":\"bob@mail\"}",
	    "{\"username\":\"b\\u0000b\",\"email\":\"bob@mail.com\"}",
	    "{\"username\":\"b\\nb\",\"email\":\"bob@mail.com\"}",
	    "{\"username\":\"\xff\xfe\",\"email\":\"bob@mail.com\"}",
	    "{\"username\":\"bob\",\"username\":\"eve\",\"email\":\"bob@mail.com\"}",
	    "{\"username\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"email\":"
	    "\"b@mail.com\"}",
	};
	char path[96];

	for (size_t i = 0; i < sizeof bad_create / sizeof bad_create[0]; i++) {
		api_request ar;
		int http = prep(&ar, "POST", "/api/profile", NULL, NULL, bad_create[i]);
		if (http != 400)
			fprintf(stderr, "body %zu: %s -> %d\n", i, bad_create[i], http);
		CHECK_INT(http, 400);
		CHECK(ar.resp.body && strstr(ar.resp.body, "\"code\":\"INVALID_ARGUMENT\""));
		api_request_fini(&ar);
	}
	snprintf(path, sizeof path, "/api/profile/%s", uid);
	CHECK_INT(status_of("PUT", path, "{}"), 400);
	CHECK_INT(status_of("PUT", path, ""), 400);
	CHECK_INT(status_of("PUT", path, "{\"email\":5}"), 400);
	/* PUT may leave a field out. */
	CHECK_INT(status_of("PUT", path, "{\"username\":\"bobby\"}"), 0);
}

static void
test_body_too_large_is_413(void)
{
	api_request ar;
	api_input big = {.method = "POST", .path = "/api/profile", .body_too_large = 1};

	api_prepare(&ar, &no_cores, &big);
	CHECK_INT(ar.resp.http, 413);
	api_request_fini(&ar);
}

static void
test_search_arguments(void)
{
	api_request ar;

	CHECK_INT(prep(&ar, "GET", "/api/search", NULL, NULL, NULL), 400);
	api_request_fini(&ar);
	CHECK_INT(prep(&ar, "GET", "/api/search", "", NULL, NULL), 400);
	api_request_fini(&ar);
	CHECK_INT(prep(&ar, "GET", "/api/search", "nope", NULL, NULL), 400);
	api_request_fini(&ar);
	CHECK_INT(prep(&ar, "GET", "/api/search", "Bob1@Mail.com", NULL, NULL), 0);
	CHECK_STR(ar.req.search->email, "Bob1@Mail.com");
	api_request_fini(&ar);
}

static void
test_if_match_forms(void)
{
	Profile__V1__Precondition pre = PROFILE__V1__PRECONDITION__INIT;
	const char *why;
	char path[96];
	api_request ar;

	CHECK_INT(api_parse_if_match("\"3\"", &pre, &why), PROFILE_OK);
	CHECK_INT(pre.version, 3);
	CHECK_INT(api_parse_if_match("7", &pre, &why), PROFILE_OK);
	CHECK_INT(pre.version, 7);
	CHECK_INT(api_parse_if_match("W/\"12\"", &pre, &why), PROFILE_OK);
	CHECK_INT(pre.version, 12);
	CHECK_INT(api_parse_if_match(" *", &pre, &why), PROFILE_OK);
	CHECK_INT(pre.check_case, PROFILE__V1__PRECONDITION__CHECK_EXISTS);
	CHECK_INT(api_parse_if_match("\"abc\"", &pre, &why), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(api_parse_if_match("\"1\", \"2\"", &pre, &why), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(api_parse_if_match("\"", &pre, &why), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(api_parse_if_match("", &pre, &why), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(api_parse_if_match("99999999999999999999", &pre, &why), PROFILE_INVALID_ARGUMENT);

	snprintf(path, sizeof path, "/api/profile/%s", uid);
	CHECK_INT(prep(&ar, "DELETE", path, NULL, "\"4\"", NULL), 0);
	CHECK(ar.req.delete_->precondition != NULL && ar.req.delete_->precondition->version == 4);
	api_request_fini(&ar);
	CHECK_INT(prep(&ar, "PUT", path, NULL, "bogus", "{\"email\":\"a@b.co\"}"), 400);
	api_request_fini(&ar);
}

static void
test_status_table(void)
{
	CHECK_INT(api_http_status(PROFILE_OK), 200);
	CHECK_INT(api_http_status(PROFILE_INVALID_ARGUMENT), 400);
	CHECK_INT(api_http_status(PROFILE_NOT_FOUND), 404);
	CHECK_INT(api_http_status(PROFILE_FAILED_PRECONDITION), 412);
	CHECK_INT(api_http_status(PROFILE_DEADLINE_EXCEEDED), 504);
	CHECK_INT(api_http_status(PROFILE_UNAVAILABLE), 503);
	CHECK_INT(api_http_status(PROFILE_INTERNAL), 500);
	CHECK_INT(api_http_status(PROFILE_ALREADY_EXISTS), 409);
	CHECK_INT(api_http_status(PROFILE_ABORTED), 409);
	CHECK_INT(api_http_status(PROFILE_RESOURCE_EXHAUSTED), 429);
	CHECK_INT(api_http_status(1234), 500);
}

/* Replies become the documented answers. */
static void
test_finish(void)
{
	Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	Profile__V1__SearchReply sr = PROFILE__V1__SEARCH_REPLY__INIT;
	Profile__V1__Profile *list[1] = {&p};
	char path[96];
	api_request ar;

	p.uid = (char *)uid;
	p.username = "bob";
	p.email = "bob1@mail.com";
	p.version = 3;
	p.created_at = 1;
	p.updated_at = 2;
	r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
	r.profile = &p;
	prep(&ar, "POST", "/api/profile", NULL, NULL, "{\"username\":\"bob\",\"email\":\"bob1@mail.com\"}");
	api_finish(&ar, PROFILE_OK, &r);
	CHECK_INT(ar.resp.http, 201);
	CHECK_STR(ar.resp.etag, "\"3\"");
	CHECK_STR(ar.resp.location, "/api/profile/74292b21-0fbb-4f1d-a18f-fa80f947fa5d");
	CHECK_STR(ar.resp.body,
	          "{\"uid\":\"74292b21-0fbb-4f1d-a18f-fa80f947fa5d\",\"username\":\"bob\","
	          "\"email\":\"bob1@mail.com\",\"version\":3,\"created_at\":1,\"updated_at\":2}");
	api_request_fini(&ar);

	snprintf(path, sizeof path, "/api/profile/%s", uid);
	prep(&ar, "DELETE", path, NULL, NULL, NULL);
	r.body_case = PROFILE__V1__RESPONSE__BODY_DELETED;
	api_finish(&ar, PROFILE_OK, &r);
	CHECK_INT(ar.resp.http, 204);
	CHECK(ar.resp.body == NULL);
	api_request_fini(&ar);

	prep(&ar, "GET", "/api/search", "bob1@mail.com", NULL, NULL);
	r.body_case = PROFILE__V1__RESPONSE__BODY_SEARCH;
	r.search = &sr;
	api_finish(&ar, PROFILE_OK, &r);
	CHECK_INT(ar.resp.http, 404);
	api_request_fini(&ar);
	prep(&ar, "GET", "/api/search", "bob1@mail.com", NULL, NULL);
	sr.n_profiles = 1;
	sr.profiles = list;
	api_finish(&ar, PROFILE_OK, &r);
	CHECK_INT(ar.resp.http, 200);
	api_request_fini(&ar);

	prep(&ar, "PUT", path, NULL, "\"1\"", "{\"email\":\"x@y.co\"}");
	r.status = PROFILE__V1__STATUS__FAILED_PRECONDITION;
	r.message = "version is 3, not 1";
	api_finish(&ar, PROFILE_OK, &r);
	CHECK_INT(ar.resp.http, 412);
	CHECK_STR(ar.resp.body,
	          "{\"error\":{\"code\":\"FAILED_PRECONDITION\",\"message\":\"version is 3, not 1\"}}");
	api_request_fini(&ar);

	prep(&ar, "GET", path, NULL, NULL, NULL);
	api_finish(&ar, PROFILE_UNAVAILABLE, NULL);
	CHECK_INT(ar.resp.http, 503);
	CHECK_INT(ar.resp.retry_after, 1);
	CHECK(strstr(ar.resp.body, "\"code\":\"UNAVAILABLE\"") != NULL);
	api_request_fini(&ar);

	/* Statuses a core answers become their HTTP status and error code; only
	 * 503 (not executed) says when to retry. */
	{
		static const struct {
			Profile__V1__Status status;
			int http;
			const char *body;
		} cases[] = {
		    {PROFILE__V1__STATUS__ABORTED, 409,
		     "{\"error\":{\"code\":\"ABORTED\",\"message\":\"m\"}}"},
		    {PROFILE__V1__STATUS__RESOURCE_EXHAUSTED, 429,
		     "{\"error\":{\"code\":\"RESOURCE_EXHAUSTED\",\"message\":\"m\"}}"},
		    {PROFILE__V1__STATUS__DEADLINE_EXCEEDED, 504,
		     "{\"error\":{\"code\":\"DEADLINE_EXCEEDED\",\"message\":\"m\"}}"},
		    {PROFILE__V1__STATUS__UNAVAILABLE, 503,
		     "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"m\"}}"},
		};
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			prep(&ar, "PUT", path, NULL, NULL, "{\"username\":\"x\"}");
			r.status = cases[i].status;
			r.message = "m";
			r.body_case = PROFILE__V1__RESPONSE__BODY__NOT_SET;
			api_finish(&ar, PROFILE_OK, &r);
			CHECK_INT(ar.resp.http, cases[i].http);
			CHECK_STR(ar.resp.body, cases[i].body);
			CHECK_INT(ar.resp.retry_after, cases[i].http == 503);
			api_request_fini(&ar);
		}
	}

	/* A reply of the wrong shape is an internal error, not a crash. */
	prep(&ar, "GET", path, NULL, NULL, NULL);
	r.status = PROFILE__V1__STATUS__OK;
	r.body_case = PROFILE__V1__RESPONSE__BODY__NOT_SET;
	api_finish(&ar, PROFILE_OK, &r);
	CHECK_INT(ar.resp.http, 500);
	api_request_fini(&ar);
}

/* Idempotency-Key: a structured-field string or the bare key; the key
 * goes into the create and makes it safe to send again. */
static void
test_idempotency_key_forms(void)
{
	char key[WIRE_IDEM_KEY_MAX + 1], long_key[300];
	const char *why = NULL;
	api_request ar;
	api_input in = {.method = "POST",
	                .path = "/api/profile",
	                .idem_key = "\"a\\\"b\"",
	                .body = "{\"username\":\"u\",\"email\":\"u@mail.com\"}"};

	CHECK_INT(api_parse_idem_key("abc-1", key, &why), PROFILE_OK);
	CHECK_STR(key, "abc-1");
	CHECK_INT(api_parse_idem_key("\"abc-1\"", key, &why), PROFILE_OK);
	CHECK_STR(key, "abc-1");
	CHECK_INT(api_parse_idem_key("\"a\\\\b\"", key, &why), PROFILE_OK);
	CHECK_STR(key, "a\\b");
	CHECK_INT(api_parse_idem_key("", key, &why), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(api_parse_idem_key("\"\"", key, &why), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(api_parse_idem_key("\"open", key, &why), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(api_parse_idem_key("\"a\" b", key, &why), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(api_parse_idem_key("\"a\\nb\"", key, &why), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(api_parse_idem_key("tab\there", key, &why), PROFILE_INVALID_ARGUMENT);
	memset(long_key, 'x', 256);
	long_key[256] = '\0';
	CHECK_INT(api_parse_idem_key(long_key, key, &why), PROFILE_INVALID_ARGUMENT);
	long_key[255] = '\0';
	CHECK_INT(api_parse_idem_key(long_key, key, &why), PROFILE_OK);

	in.body_len = strlen(in.body);
	api_prepare(&ar, &no_cores, &in);
	CHECK_INT(ar.kind, API_CALL);
	CHECK_STR(ar.req.create->idempotency_key, "a\"b");
	CHECK_INT(ar.write, CLIENT_IDEMPOTENT);
	api_request_fini(&ar);
	in.idem_key = "";
	api_prepare(&ar, &no_cores, &in);
	CHECK_INT(ar.resp.http, 400);
	api_request_fini(&ar);
	in.idem_key = NULL;
	api_prepare(&ar, &no_cores, &in);
	CHECK_INT(ar.write, CLIENT_WRITE);
	api_request_fini(&ar);
}

/* HEAD is GET without the body; the fixed answers and /metrics route. */
static void
test_head_and_fixed_routes(void)
{
	char path[96];
	api_request ar;

	snprintf(path, sizeof path, "/api/profile/%s", uid);
	CHECK_INT(status_of("HEAD", path, NULL), 0);
	CHECK_INT(status_of("HEAD", "/healthz", NULL), 200);
	CHECK_INT(status_of("HEAD", "/api/profile", NULL), 405);
	CHECK_INT(prep(&ar, "GET", "/", NULL, NULL, NULL), 200);
	CHECK(ar.resp.fixed != NULL && strstr(ar.resp.fixed, "<html") != NULL);
	CHECK(strncmp(ar.resp.content_type, "text/html", 9) == 0);
	api_request_fini(&ar);
	CHECK_INT(prep(&ar, "GET", "/openapi.json", NULL, NULL, NULL), 200);
	CHECK(ar.resp.fixed != NULL && strstr(ar.resp.fixed, "\"openapi\"") != NULL);
	CHECK(ar.resp.content_type == NULL); /* JSON */
	api_request_fini(&ar);
	/* /metrics asks for each node's status; with no core it still
	 * answers the gateway's own counters. */
	CHECK_INT(prep(&ar, "GET", "/metrics", NULL, NULL, NULL), 0);
	CHECK(ar.req.cluster->with_status);
	api_finish(&ar, PROFILE_UNAVAILABLE, NULL);
	CHECK_INT(ar.resp.http, 200);
	CHECK(strstr(ar.resp.body, "profile_cluster_view_up 0\n") != NULL);
	CHECK(strstr(ar.resp.body, "# TYPE profile_gateway_http_requests_total counter\n") != NULL);
	api_request_fini(&ar);
}

static int
with_content_type(const char *type)
{
	api_request ar;
	api_input in = {.method = "POST",
	                .path = "/api/profile",
	                .content_type = type,
	                .body = "{\"username\":\"u\",\"email\":\"u@mail.com\"}"};
	int http;

	in.body_len = strlen(in.body);
	api_prepare(&ar, &no_cores, &in);
	http = ar.kind == API_ANSWER ? ar.resp.http : 0;
	api_request_fini(&ar);
	return http;
}

/* JSON and what clients send by default pass; a type naming something
 * else is 415. */
static void
test_content_types(void)
{
	CHECK_INT(with_content_type(NULL), 0);
	CHECK_INT(with_content_type("application/json"), 0);
	CHECK_INT(with_content_type("Application/JSON; charset=utf-8"), 0);
	CHECK_INT(with_content_type("application/merge-patch+json"), 0);
	CHECK_INT(with_content_type("application/x-www-form-urlencoded"), 0);
	CHECK_INT(with_content_type("text/plain;charset=UTF-8"), 0);
	CHECK_INT(with_content_type("application/xml"), 415);
	CHECK_INT(with_content_type("multipart/form-data; boundary=x"), 415);
	CHECK_INT(with_content_type("text/json-ish"), 415);
}

static int
not_modified(const char *if_none_match)
{
	Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	char path[96];
	api_request ar;
	api_input in = {.method = "GET", .path = path, .if_none_match = if_none_match, .log_id = "t-1"};
	int http;

	snprintf(path, sizeof path, "/api/profile/%s", uid);
	p.uid = (char *)uid;
	p.version = 7;
	r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
	r.profile = &p;
	api_prepare(&ar, &no_cores, &in);
	CHECK_STR(ar.req.log_id, "t-1");
	api_finish(&ar, PROFILE_OK, &r);
	http = ar.resp.http;
	CHECK_STR(ar.resp.etag, "\"7\"");
	CHECK((http == 304) == (ar.resp.body == NULL));
	api_request_fini(&ar);
	return http;
}

/* If-None-Match: 304 when it names the current version. */
static void
test_if_none_match(void)
{
	CHECK_INT(not_modified(NULL), 200);
	CHECK_INT(not_modified("\"7\""), 304);
	CHECK_INT(not_modified("W/\"7\""), 304);
	CHECK_INT(not_modified("\"5\", \"7\""), 304);
	CHECK_INT(not_modified("*"), 304);
	CHECK_INT(not_modified("\"6\""), 200);
	CHECK_INT(not_modified("\"77\""), 200);
	CHECK_INT(not_modified(""), 200);
}

/* X-Profile-Min-Position: tokens as X-Profile-Position gives them. */
static void
test_positions(void)
{
	Profile__V1__Position pos[API_POSITIONS_MAX];
	const char *why = NULL;
	size_t n = 0;
	api_request ar;
	api_input in = {.method = "GET", .path = "/api/search", .email = "a@mail.com", .min_position = "2:9, 0:14"};

	CHECK_INT(wire_parse_positions("3:1456", pos, API_POSITIONS_MAX, &n, &why), PROFILE_OK);
	CHECK_INT((int)n, 1);
	CHECK_INT(pos[0].partition, 3);
	CHECK(pos[0].offset == 1456);
	CHECK_INT(wire_parse_positions(" 0:0 ,11:9223372036854775807", pos, API_POSITIONS_MAX, &n, &why), PROFILE_OK);
	CHECK_INT((int)n, 2);
	CHECK(pos[1].offset == INT64_MAX);
	{
		static const char *const bads[] = {"", "x", "1:", ":1", "1:2,", "1;2", "-1:2", "1:-2", "1:2:3",
		                                   "2147483648:1", "1:99999999999999999999", "1 :2"};
		for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++)
			CHECK_INT(wire_parse_positions(bads[i], pos, API_POSITIONS_MAX, &n, &why), PROFILE_INVALID_ARGUMENT);
	}
	api_prepare(&ar, &no_cores, &in);
	CHECK_INT(ar.kind, API_CALL);
	CHECK_INT((int)ar.req.n_min_positions, 2);
	CHECK(ar.req.min_positions[1]->partition == 0 && ar.req.min_positions[1]->offset == 14);
	api_request_fini(&ar);
	in.min_position = "nope";
	api_prepare(&ar, &no_cores, &in);
	CHECK_INT(ar.resp.http, 400);
	api_request_fini(&ar);
}

/* Cache-Control: max-stale, with or without seconds, among other directives. */
static void
test_max_stale(void)
{
	uint32_t sec = 7;
	api_request ar;
	api_input in = {.method = "GET", .path = "/api/search", .email = "a@mail.com", .cache_control = "max-stale=30"};

	CHECK_INT(api_parse_max_stale("max-stale=30", &sec), 1);
	CHECK_INT((int)sec, 30);
	CHECK_INT(api_parse_max_stale("no-cache, Max-Stale = \"5\" , private", &sec), 1);
	CHECK_INT((int)sec, 5);
	CHECK_INT(api_parse_max_stale("max-stale", &sec), 1);
	CHECK(sec == UINT32_MAX);
	CHECK_INT(api_parse_max_stale("max-stale=9999999999", &sec), 1);
	CHECK(sec == UINT32_MAX);
	CHECK_INT(api_parse_max_stale("no-cache, max-age=0", &sec), 0);
	CHECK_INT(api_parse_max_stale("max-staleness=3", &sec), 0);
	CHECK_INT(api_parse_max_stale("max-stale=soon", &sec), -1);
	CHECK_INT(api_parse_max_stale("max-stale=3x", &sec), -1);
	api_prepare(&ar, &no_cores, &in);
	CHECK_INT(ar.kind, API_CALL);
	CHECK_INT(ar.req.stale_set_case, PROFILE__V1__REQUEST__STALE_SET_MAX_STALE_S);
	CHECK_INT((int)ar.req.max_stale_s, 30);
	api_request_fini(&ar);
	in.cache_control = "max-stale=later";
	api_prepare(&ar, &no_cores, &in);
	CHECK_INT(ar.resp.http, 400);
	api_request_fini(&ar);
}

/* Token files and bearer lookups. */
static void
test_tokens(void)
{
	char path[] = "/tmp/test_api_tokens.XXXXXX", why[256];
	token_table *t = NULL;
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs("# comment\n\nreader-0123456789abcdef read a\nwriter-0123456789abcdef write\n", f);
	fclose(f);
	CHECK_INT(tokens_load(&t, path, why, sizeof why), PROFILE_OK);
	CHECK_INT((int)tokens_count(t), 2);
	CHECK_INT(tokens_scope(t, "Bearer reader-0123456789abcdef"), SCOPE_READ);
	CHECK_INT(tokens_scope(t, "bearer  writer-0123456789abcdef"), SCOPE_WRITE);
	CHECK_INT(tokens_scope(t, "Bearer writer-0123456789abcde"), SCOPE_NONE);  /* a prefix */
	CHECK_INT(tokens_scope(t, "Bearer writer-0123456789abcdefg"), SCOPE_NONE); /* longer */
	CHECK_INT(tokens_scope(t, "Basic reader-0123456789abcdef"), SCOPE_NONE);
	CHECK_INT(tokens_scope(t, NULL), SCOPE_NONE);
	CHECK_INT(tokens_scope(t, "Bearer "), SCOPE_NONE);
	tokens_free(t);
	f = fopen(path, "w");
	fputs("tooshort read\n", f);
	fclose(f);
	CHECK_INT(tokens_load(&t, path, why, sizeof why), PROFILE_INVALID_ARGUMENT);
	CHECK(strstr(why, "line 1") != NULL && strstr(why, "tooshort") == NULL);
	unlink(path);
	CHECK_INT(tokens_load(&t, path, why, sizeof why), PROFILE_INVALID_ARGUMENT);
}

/* The profile body is written without jansson: the same text as
 * jansson's compact dump, escapes and all; no body for text that is not
 * UTF-8. */
static void
test_profile_body_as_jansson_writes_it(void)
{
	static const char *const names[] = {
	    "bob", "quote\" and back\\slash", "ctl\x01\x1f\x7f end", "\b\f\n\r\t", "caf\xc3\xa9 \xe6\x97\xa5/\xf0\x9f\x98\x80", ""};
	Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
	char *mine, *theirs;

	p.uid = (char *)uid;
	p.email = "bob@mail.com";
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		json_t *o;
		p.username = (char *)names[i];
		p.version = i == 0 ? 1 : 9000000000000000000ULL + i;
		p.created_at = (int64_t)i * 1700000000000LL;
		p.updated_at = -(int64_t)i;
		o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "uid", p.uid, "username", p.username, "email", p.email,
		              "version", (json_int_t)p.version, "created_at", (json_int_t)p.created_at, "updated_at",
		              (json_int_t)p.updated_at);
		theirs = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		mine = body_render_profile(&p);
		CHECK_STR(mine, theirs);
		free(mine);
		free(theirs);
		json_decref(o);
	}
	p.username = "bad \xc3\x28 utf-8";
	CHECK(body_render_profile(&p) == NULL);
	p.username = "bob";
	p.email = "\xed\xa0\x80@mail.com"; /* a surrogate */
	CHECK(body_render_profile(&p) == NULL);
}

int
main(void)
{
	test_routes();
	test_uid_in_path_is_lowercased();
	test_bad_bodies();
	test_body_too_large_is_413();
	test_search_arguments();
	test_if_match_forms();
	test_idempotency_key_forms();
	test_status_table();
	test_finish();
	test_head_and_fixed_routes();
	test_content_types();
	test_if_none_match();
	test_positions();
	test_max_stale();
	test_tokens();
	test_profile_body_as_jansson_writes_it();
	return check_done("test_api");
}
