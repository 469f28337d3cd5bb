/* test_rpc.c: the RPC server and its method table (core/rpc.c), with a
 * service that has no Kafka and owns no partition: every method's argument
 * check answers INVALID_ARGUMENT with its reason before anything runs; an
 * unknown method is UNIMPLEMENTED; a valid read of a partition the node does
 * not own is UNAVAILABLE (not executed), never NOT_FOUND; Status answers;
 * and a server whose service is detached and freed (a node shutting down)
 * answers a request UNAVAILABLE by itself, touching nothing freed. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdlib.h>

#include "check.h"
#include "rpc.h"

static const char *uid = "74292b21-0fbb-4f1d-a18f-fa80f947fa5d";

/* Sends req to url and returns the decoded answer (caller frees), or NULL. */
static Profile__V1__Response *
call(const char *url, Profile__V1__Request *req)
{
	nng_socket s;
	uint8_t buf[1024];
	void *out = NULL;
	size_t len = profile__v1__request__pack(req, buf), out_len = 0;
	Profile__V1__Response *resp = NULL;

	if (nng_req0_open(&s) != 0)
		return NULL;
	if (nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000) == 0 && nng_dial(s, url, NULL, 0) == 0 &&
	    nng_send(s, buf, len, 0) == 0 && nng_recv(s, &out, &out_len, NNG_FLAG_ALLOC) == 0) {
		resp = profile__v1__response__unpack(NULL, out_len, out);
		nng_free(out, out_len);
	}
	nng_close(s);
	return resp;
}

/* The status and message a request is answered with. */
static int
status_of(const char *url, Profile__V1__Request *req, char *msg, size_t size)
{
	Profile__V1__Response *r = call(url, req);
	int st;

	if (r == NULL)
		return -1;
	st = (int)r->status;
	snprintf(msg, size, "%s", r->message);
	profile__v1__response__free_unpacked(r, NULL);
	return st;
}

static void
test_each_method_checks_its_arguments_first(const char *url)
{
	Profile__V1__Request req = PROFILE__V1__REQUEST__INIT;
	Profile__V1__CreateRequest create = PROFILE__V1__CREATE_REQUEST__INIT;
	Profile__V1__GetRequest get = PROFILE__V1__GET_REQUEST__INIT;
	Profile__V1__UpdateRequest update = PROFILE__V1__UPDATE_REQUEST__INIT;
	Profile__V1__DeleteRequest del = PROFILE__V1__DELETE_REQUEST__INIT;
	Profile__V1__SearchRequest search = PROFILE__V1__SEARCH_REQUEST__INIT;
	char msg[256];

	create.username = "bob";
	create.email = "not-an-email";
	req.body_case = PROFILE__V1__REQUEST__BODY_CREATE;
	req.create = &create;
	CHECK_INT(status_of(url, &req, msg, sizeof msg), PROFILE_INVALID_ARGUMENT);
	CHECK_STR(msg, "email must be local@domain");

	get.uid = "nope";
	req.body_case = PROFILE__V1__REQUEST__BODY_GET;
	req.get = &get;
	CHECK_INT(status_of(url, &req, msg, sizeof msg), PROFILE_INVALID_ARGUMENT);

	update.uid = (char *)uid; /* sets neither field */
	req.body_case = PROFILE__V1__REQUEST__BODY_UPDATE;
	req.update = &update;
	CHECK_INT(status_of(url, &req, msg, sizeof msg), PROFILE_INVALID_ARGUMENT);
	CHECK_STR(msg, "an update must set username or email");

	del.uid = "74292b21-0fbb-4f1d-a18f";
	req.body_case = PROFILE__V1__REQUEST__BODY_DELETE;
	req.delete_ = &del;
	CHECK_INT(status_of(url, &req, msg, sizeof msg), PROFILE_INVALID_ARGUMENT);

	search.email = "";
	req.body_case = PROFILE__V1__REQUEST__BODY_SEARCH;
	req.search = &search;
	CHECK_INT(status_of(url, &req, msg, sizeof msg), PROFILE_INVALID_ARGUMENT);

	req.body_case = PROFILE__V1__REQUEST__BODY__NOT_SET;
	CHECK_INT(status_of(url, &req, msg, sizeof msg), PROFILE_UNIMPLEMENTED);
}

static void
test_valid_calls_reach_their_method(const char *url)
{
	Profile__V1__Request req = PROFILE__V1__REQUEST__INIT;
	Profile__V1__GetRequest get = PROFILE__V1__GET_REQUEST__INIT;
	Profile__V1__StatusRequest status = PROFILE__V1__STATUS_REQUEST__INIT;
	Profile__V1__Response *r;
	char msg[256];

	/* This node owns nothing and knows no peer: not executed, and said so. */
	get.uid = (char *)uid;
	req.body_case = PROFILE__V1__REQUEST__BODY_GET;
	req.get = &get;
	CHECK_INT(status_of(url, &req, msg, sizeof msg), PROFILE_UNAVAILABLE);

	req.body_case = PROFILE__V1__REQUEST__BODY_STATUS;
	req.status = &status;
	req.request_id = 42;
	if ((r = call(url, &req)) != NULL) {
		CHECK_INT(r->status, PROFILE_OK);
		CHECK_INT(r->request_id, 42);
		CHECK_INT(r->body_case, PROFILE__V1__RESPONSE__BODY_STATUS_REPLY);
		if (r->body_case == PROFILE__V1__RESPONSE__BODY_STATUS_REPLY) {
			CHECK_STR(r->status_reply->node_id, "unit");
			CHECK_INT(r->status_reply->partition_count, 4);
			CHECK_INT(r->status_reply->n_partitions, 0);
		}
		profile__v1__response__free_unpacked(r, NULL);
	} else {
		CHECK(r != NULL);
	}
}

/* Drained, detached, the service freed: a request that arrives now is
 * answered UNAVAILABLE, and nothing of the service is touched (under
 * AddressSanitizer a use after free fails the test). */
static void
test_a_request_after_the_service_is_freed_is_answered_unavailable(const char *url, rpc_server *rpc, service *svc)
{
	Profile__V1__Request req = PROFILE__V1__REQUEST__INIT;
	Profile__V1__GetRequest get = PROFILE__V1__GET_REQUEST__INIT;
	Profile__V1__Response *r;

	rpc_server_drain(rpc);
	rpc_server_detach(rpc);
	service_free(svc);
	get.uid = (char *)uid;
	req.body_case = PROFILE__V1__REQUEST__BODY_GET;
	req.get = &get;
	r = call(url, &req);
	CHECK(r != NULL);
	if (r) {
		CHECK_INT((int)r->status, PROFILE_UNAVAILABLE);
		CHECK(r->draining);
		profile__v1__response__free_unpacked(r, NULL);
	}
}

int
main(void)
{
	char dir[] = "/tmp/test_rpc.XXXXXX", url[64], cmd[64];
	service_config cfg = {
	    .node_id = "unit", .address = "inproc://x", .default_deadline_ms = 1000, .max_deadline_ms = 5000};
	partitions *t;
	service *svc;
	rpc_server *rpc;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(url, sizeof url, "ipc://%s/rpc", dir);
	CHECK_INT(partitions_new(&t, dir, NULL, 4), PROFILE_OK);
	CHECK_INT(service_new(&svc, &cfg, t), PROFILE_OK);
	CHECK_INT(rpc_server_open(&rpc, url, 4, svc, NULL), PROFILE_OK);
	test_each_method_checks_its_arguments_first(url);
	test_valid_calls_reach_their_method(url);
	test_a_request_after_the_service_is_freed_is_answered_unavailable(url, rpc, svc);
	rpc_server_close(rpc, 2000);
	partitions_free(t);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_done("test_rpc");
}
