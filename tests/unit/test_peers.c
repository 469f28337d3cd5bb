/* test_peers.c: forwarding to a partition's owner (core/peers.c) over a
 * members table fed by hand, with a fake owner on a real nng socket: a
 * partition nobody owns, or that the table still gives to this node, is
 * UNAVAILABLE at once (nothing executed); the owner gets the request with
 * hops = 1; its answer reaches the caller as it sent it, with the caller's
 * request id and without the owner's draining flag (that is the forwarding
 * node's to say, and the owner is left alone while it drains); a malformed
 * answer is INTERNAL. reply_relay keeps every
 * field, however many. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "peers.h"

#define PARTS 4
static const char *uid = "74292b21-0fbb-4f1d-a18f-fa80f947fa5d";

/* ---- the fake owner ---------------------------------------------------- */

typedef struct owner {
	nng_socket sock;
	pthread_t thread;
	int malformed;   /* answer garbage instead of a Response */
	uint32_t hops;   /* of the last request seen */
	uint64_t got_id; /* its request id */
} owner;

static void *
owner_main(void *arg)
{
	owner *o = arg;
	void *in;
	size_t len;

	while (nng_recv(o->sock, &in, &len, NNG_FLAG_ALLOC) == 0) {
		Profile__V1__Request *req = profile__v1__request__unpack(NULL, len, in);
		Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
		Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
		uint8_t out[512];
		size_t n;

		nng_free(in, len);
		if (req == NULL)
			continue;
		o->hops = req->hops;
		o->got_id = req->request_id;
		r.request_id = req->request_id + 1000; /* the caller must not see this one */
		r.status = PROFILE__V1__STATUS__NOT_FOUND;
		r.message = "from the owner";
		r.draining = 1;
		p.uid = (char *)uid;
		p.username = "ada";
		p.email = "ada@example.com";
		p.version = 7;
		r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
		r.profile = &p;
		n = profile__v1__response__pack(&r, out);
		profile__v1__request__free_unpacked(req, NULL);
		if (o->malformed) {
			out[0] = 0x0f; /* field 1, wire type 7: no such type */
			n = 3;
		}
		if (nng_send(o->sock, out, n, 0) != 0)
			break;
	}
	return NULL;
}

static int
owner_start(owner *o, const char *url)
{
	if (nng_rep0_open(&o->sock) != 0 || nng_listen(o->sock, url, NULL, 0) != 0)
		return -1;
	return pthread_create(&o->thread, NULL, owner_main, o);
}

static void
owner_stop(owner *o)
{
	nng_close(o->sock);
	pthread_join(o->thread, NULL);
}

/* ---- the caller's side ------------------------------------------------- */

typedef struct answer {
	pthread_mutex_t mu;
	int done;
	uint8_t bytes[1024]; /* the answer as the RPC server would send it */
	size_t len;
} answer;

static void
on_answer(void *arg, const Profile__V1__Response *resp)
{
	answer *a = arg;

	pthread_mutex_lock(&a->mu);
	a->len = profile__v1__response__get_packed_size(resp);
	if (a->len <= sizeof a->bytes)
		profile__v1__response__pack(resp, a->bytes);
	a->done = 1;
	pthread_mutex_unlock(&a->mu);
}

/* Forwards a get of uid with request id 5 to the owner of p and returns
 * the answer (caller frees), or NULL when none came within 10 s. */
static Profile__V1__Response *
forward_get(peers *r, int32_t p)
{
	Profile__V1__Request req = PROFILE__V1__REQUEST__INIT, *owned;
	Profile__V1__GetRequest get = PROFILE__V1__GET_REQUEST__INIT;
	uint8_t buf[256];
	answer a = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct timespec pause = {0, 5 * 1000000L};
	Profile__V1__Response *resp = NULL;

	get.uid = (char *)uid;
	req.body_case = PROFILE__V1__REQUEST__BODY_GET;
	req.get = &get;
	req.request_id = 5;
	owned = profile__v1__request__unpack(NULL, profile__v1__request__pack(&req, buf), buf);
	peers_forward(r, p, owned, 5000, 0, on_answer, &a);
	for (int i = 0; i < 2000; i++) {
		int done;

		pthread_mutex_lock(&a.mu);
		done = a.done;
		pthread_mutex_unlock(&a.mu);
		if (done) {
			resp = profile__v1__response__unpack(NULL, a.len, a.bytes);
			break;
		}
		nanosleep(&pause, NULL);
	}
	return resp;
}

static void
feed(members *m, const char *id, const char *address, int32_t part, int64_t offset)
{
	Profile__V1__Member mb = PROFILE__V1__MEMBER__INIT;
	uint8_t buf[512];

	mb.node_id = (char *)id;
	mb.address = (char *)address;
	mb.partitions = &part;
	mb.n_partitions = 1;
	CHECK_INT(members_apply(m, buf, profile__v1__member__pack(&mb, buf), offset), PROFILE_OK);
}

static void
test_unowned_and_self_owned_are_unavailable(peers *r)
{
	Profile__V1__Response *resp = forward_get(r, 3); /* nobody claims 3 */
	char address[MEMBERS_ADDR_MAX];
	int self = 0;

	CHECK(resp != NULL);
	if (resp) {
		CHECK_INT(resp->status, PROFILE_UNAVAILABLE);
		CHECK_INT(resp->request_id, 5);
		profile__v1__response__free_unpacked(resp, NULL);
	}
	CHECK_INT(peers_owner(r, 3, address, sizeof address, &self), PROFILE_NOT_FOUND);
	CHECK_INT(peers_owner(r, 0, address, sizeof address, &self), PROFILE_OK);
	CHECK_INT(self, 1);
	resp = forward_get(r, 0); /* the table still names this node */
	CHECK(resp != NULL);
	if (resp) {
		CHECK_INT(resp->status, PROFILE_UNAVAILABLE);
		profile__v1__response__free_unpacked(resp, NULL);
	}
}

static void
test_owner_answer_is_relayed_as_sent(peers *r, owner *o)
{
	Profile__V1__Response *resp = forward_get(r, 1);

	CHECK(resp != NULL);
	if (resp == NULL)
		return;
	CHECK_INT(o->hops, 1);
	CHECK_INT(resp->request_id, 5);
	CHECK_INT(resp->draining, 0);
	CHECK_INT(resp->status, PROFILE_NOT_FOUND);
	CHECK_STR(resp->message, "from the owner");
	CHECK_INT(resp->body_case, PROFILE__V1__RESPONSE__BODY_PROFILE);
	if (resp->body_case == PROFILE__V1__RESPONSE__BODY_PROFILE) {
		CHECK_STR(resp->profile->uid, uid);
		CHECK_STR(resp->profile->email, "ada@example.com");
		CHECK_INT(resp->profile->version, 7);
	}
	CHECK_INT(resp->base.n_unknown_fields, 0);
	profile__v1__response__free_unpacked(resp, NULL);
}

static void
test_malformed_owner_answer_is_internal(peers *r, owner *o)
{
	Profile__V1__Response *resp;

	o->malformed = 1;
	resp = forward_get(r, 1);
	o->malformed = 0;
	CHECK(resp != NULL);
	if (resp) {
		CHECK_INT(resp->status, PROFILE_INTERNAL);
		CHECK_INT(resp->request_id, 5);
		profile__v1__response__free_unpacked(resp, NULL);
	}
}

/* The owner's last answer said it is shutting down: the next forward does
 * not reach it. */
static void
test_draining_owner_is_left_alone(peers *r, owner *o)
{
	uint64_t seen = o->got_id;
	Profile__V1__Response *resp = forward_get(r, 1);

	CHECK(resp != NULL);
	if (resp) {
		CHECK_INT(resp->status, PROFILE_UNAVAILABLE);
		profile__v1__response__free_unpacked(resp, NULL);
	}
	CHECK_INT(o->got_id, seen);
}

static void
test_relay_keeps_every_field(void)
{
	uint8_t in[256];
	size_t n = 0;
	answer a = {.mu = PTHREAD_MUTEX_INITIALIZER};
	Profile__V1__Response *resp;

	/* Twelve copies of message (field 3): more than reply_relay keeps on its
	 * stack. The last one wins when decoded. */
	for (int i = 0; i < 12; i++) {
		in[n++] = 3 << 3 | 2;
		in[n++] = 2;
		in[n++] = 'm';
		in[n++] = (uint8_t)('a' + i);
	}
	in[n++] = 1 << 3; /* request_id 9: replaced */
	in[n++] = 9;
	CHECK_INT(reply_relay(on_answer, &a, 77, in, n), PROFILE_OK);
	CHECK(a.done);
	resp = profile__v1__response__unpack(NULL, a.len, a.bytes);
	CHECK(resp != NULL);
	if (resp) {
		CHECK_INT(resp->request_id, 77);
		CHECK_STR(resp->message, "ml");
		profile__v1__response__free_unpacked(resp, NULL);
	}
	a.done = 0;
	CHECK_INT(reply_relay(on_answer, &a, 77, in, n - 1), PROFILE_INTERNAL); /* truncated */
	CHECK_INT(a.done, 0);
}

int
main(void)
{
	char url[64];
	members_config cfg = {.topic = "profiles.members", .node_id = "me", .address = "tcp://me", .partitions = PARTS};
	members *m = NULL;
	peers *r = NULL;
	owner o = {0};

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	snprintf(url, sizeof url, "ipc:///tmp/test_peers.%d.%d", (int)getpid(), rand());
	CHECK_INT(owner_start(&o, url), 0);
	CHECK_INT(members_open(&m, &cfg), PROFILE_OK);
	feed(m, "me", "tcp://me", 0, 0);
	feed(m, "other", url, 1, 1);
	CHECK_INT(peers_new(&r, m, "me", NULL), PROFILE_OK);
	test_unowned_and_self_owned_are_unavailable(r);
	test_malformed_owner_answer_is_internal(r, &o);
	test_owner_answer_is_relayed_as_sent(r, &o);
	test_draining_owner_is_left_alone(r, &o);
	test_relay_keeps_every_field();
	peers_free(r);
	members_close(m, 0);
	owner_stop(&o);
	return check_done("test_peers");
}
