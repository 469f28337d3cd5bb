/* test_client.c: libprofile-client, every call and its error paths.
 *
 * usage: test_client CORE_ADDR
 * Runs against a real core node at CORE_ADDR (started by
 * tests/integration/test_client.py), and against fake nodes made here with
 * nng to prove the rules a real node cannot be made to break: malformed
 * replies, which answers are retried and which are not.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "profile.pb-c.h"
#include "profile/client.h"

static const char *core;

static int64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static profile_client *
open_on(const char *addr, uint32_t deadline_ms)
{
	profile_client_options o = {.deadline_ms = deadline_ms};
	profile_client *c = NULL;

	CHECK_INT(profile_client_open(&c, &addr, 1, &o), PROFILE_OK);
	return c;
}

/* ---- arguments are checked before anything is sent ----------------------- */

static void
test_bad_arguments_send_nothing(void)
{
	profile_client *c = open_on("tcp://127.0.0.1:1", 200); /* nothing listens */
	profile_info *p = (profile_info *)0x1;
	profile_list *l = (profile_list *)0x1;
	const char *none[] = {NULL};
	const char *bad[] = {"nonsense://x"};
	profile_client *h = NULL;
	char long_name[100];

	memset(long_name, 'a', 65);
	long_name[65] = '\0';
	CHECK_INT(profile_client_open(&h, none, 0, NULL), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_client_open(&h, none, 1, NULL), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_client_open(&h, bad, 1, NULL), PROFILE_INVALID_ARGUMENT);
	CHECK(h == NULL);
	CHECK_INT(profile_create(NULL, "bob", "bob@mail.com", 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_create(c, NULL, "bob@mail.com", 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_create(c, "", "bob@mail.com", 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_create(c, long_name, "bob@mail.com", 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_create(c, "bo\tb", "bob@mail.com", 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_create(c, "bob", "bob", 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK_STR(profile_last_message(), "email must be local@domain");
	CHECK_INT(profile_create(c, "bob", NULL, 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_get(c, "not-a-uuid", 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK(strstr(profile_last_message(), "UUID") != NULL);
	CHECK_INT(profile_get(c, NULL, 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_update(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", NULL, NULL, 0, 0, &p),
	          PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_update(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", "", NULL, 0, 0, &p),
	          PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_delete(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5", 0, 0), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_search(c, "", 0, &l), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_get_async(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", 0, NULL, NULL),
	          PROFILE_INVALID_ARGUMENT);
	/* Out-parameters untouched on failure. (Nothing listens at the address,
	 * so a call that had been sent would end UNAVAILABLE, not as above.) */
	CHECK(p == (profile_info *)0x1 && l == (profile_list *)0x1);
	profile_client_close(c);
	profile_client_close(NULL);
	profile_free(NULL);
	profile_list_free(NULL);
	CHECK(strcmp(profile_strerror(PROFILE_NOT_FOUND), "no such profile") == 0);
	CHECK_STR(profile_status_name(PROFILE_FAILED_PRECONDITION), "FAILED_PRECONDITION");
}

/* ---- every call against the real core ------------------------------------- */

static void
test_every_call(void)
{
	profile_client *c = open_on(core, 5000);
	profile_info *p = NULL, *q = NULL;
	profile_list *l = NULL;
	char uid[PROFILE_UID_SIZE];

	CHECK_INT(profile_create(c, "bob", "Bob1@Mail.com", 0, &p), PROFILE_OK);
	if (p == NULL)
		return;
	snprintf(uid, sizeof uid, "%s", p->uid);
	CHECK_INT(p->version, 1);
	CHECK_STR(p->username, "bob");
	CHECK(p->created_at > 0 && p->created_at == p->updated_at);
	profile_free(p);

	CHECK_INT(profile_get(c, uid, 0, &q), PROFILE_OK);
	CHECK(q && strcmp(q->email, "Bob1@Mail.com") == 0);
	profile_free(q);

	CHECK_INT(profile_search(c, "bob1@mail.com", 0, &l), PROFILE_OK);
	CHECK(l && l->count == 1 && strcmp(l->items[0]->uid, uid) == 0);
	profile_list_free(l);

	CHECK_INT(profile_update(c, uid, NULL, "bob2@mail.com", 1, 0, &p), PROFILE_OK);
	CHECK(p && p->version == 2 && strcmp(p->username, "bob") == 0 &&
	      strcmp(p->email, "bob2@mail.com") == 0);
	profile_free(p);
	/* A stale expected version changes nothing and says why. */
	CHECK_INT(profile_update(c, uid, "eve", NULL, 1, 0, &p), PROFILE_FAILED_PRECONDITION);
	CHECK_STR(profile_last_message(), "version is 2, not 1");
	CHECK_INT(profile_delete(c, uid, 1, 0), PROFILE_FAILED_PRECONDITION);
	CHECK_INT(profile_get(c, uid, 0, &q), PROFILE_OK);
	CHECK(q && q->version == 2 && strcmp(q->username, "bob") == 0);
	profile_free(q);
	/* Update with out == NULL is allowed. */
	CHECK_INT(profile_update(c, uid, "bobby", NULL, PROFILE_ANY_VERSION, 0, NULL), PROFILE_OK);

	CHECK_INT(profile_search(c, "bob1@mail.com", 0, &l), PROFILE_OK);
	CHECK(l && l->count == 0);
	profile_list_free(l);

	CHECK_INT(profile_delete(c, uid, 3, 0), PROFILE_OK);
	CHECK_INT(profile_get(c, uid, 0, &q), PROFILE_NOT_FOUND);
	CHECK_INT(profile_update(c, uid, "x", NULL, 0, 0, &q), PROFILE_NOT_FOUND);
	CHECK_INT(profile_delete(c, uid, 0, 0), PROFILE_NOT_FOUND);
	/* An upper-case uid is the same uid. */
	CHECK_INT(profile_get(c, "74292B21-0FBB-4F1D-A18F-FA80F947FA5D", 0, &q), PROFILE_NOT_FOUND);
	profile_client_close(c);
}

/* ---- deadlines and addresses ---------------------------------------------- */

static void
test_keyed_create_makes_one_profile(void)
{
	profile_client *c = open_on(core, 5000);
	profile_info *p = NULL, *q = NULL;
	char key[64];

	snprintf(key, sizeof key, "client-%lld", (long long)ms_now());
	CHECK_INT(profile_create_idempotent(c, "kay", "kay@mail.com", key, 0, &p), PROFILE_OK);
	CHECK_INT(profile_create_idempotent(c, "kay", "kay@mail.com", key, 0, &q), PROFILE_OK);
	if (p && q) {
		CHECK_STR(q->uid, p->uid);
		CHECK_INT(q->created_at, p->created_at);
	}
	profile_free(q);
	q = NULL;
	CHECK_INT(profile_create_idempotent(c, "kay", "other@mail.com", key, 0, &q),
	          PROFILE_INVALID_ARGUMENT);
	CHECK(strstr(profile_last_message(), "Idempotency-Key") != NULL);
	CHECK(q == NULL);
	profile_free(p);
	profile_client_close(c);
}

static void
test_down_core_is_unavailable_within_the_deadline(void)
{
	profile_client *c = open_on("tcp://127.0.0.1:1", 5000);
	profile_info *p = NULL;
	int64_t t = ms_now();

	/* Per-call deadline overrides the handle's. */
	CHECK_INT(profile_get(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", 300, &p), PROFILE_UNAVAILABLE);
	t = ms_now() - t;
	CHECK(t >= 250 && t < 3000);
	/* The handle's default, changed. */
	profile_client_set_deadline(c, 200);
	t = ms_now();
	CHECK_INT(profile_create(c, "bob", "bob@mail.com", 0, &p), PROFILE_UNAVAILABLE);
	t = ms_now() - t;
	CHECK(t >= 150 && t < 3000);
	profile_client_close(c);
}

static void
test_a_dead_address_is_skipped(void)
{
	const char *addrs[] = {"tcp://127.0.0.1:1", core};
	profile_client_options o = {.deadline_ms = 5000};
	profile_client *c = NULL;
	profile_info *p = NULL;
	int64_t t;

	CHECK_INT(profile_client_open(&c, addrs, 2, &o), PROFILE_OK);
	t = ms_now();
	for (int i = 0; i < 10; i++) {
		CHECK_INT(profile_create(c, "multi", "multi@mail.com", 0, &p), PROFILE_OK);
		profile_free(p);
		p = NULL;
	}
	/* The dead address refuses at once, so the handle knows it is down and
	 * sends nothing there: ten calls cost less than ten one-second tries. */
	CHECK(ms_now() - t < 8000);
	profile_client_close(c);
}

/* ---- threads and async ----------------------------------------------------- */

typedef struct worker_arg {
	profile_client *c;
	int id;
	int failures;
} worker_arg;

static void *
worker(void *arg)
{
	worker_arg *w = arg;
	char name[32], email[64];

	for (int i = 0; i < 25; i++) {
		profile_info *p = NULL, *q = NULL;
		snprintf(name, sizeof name, "t%d-%d", w->id, i);
		snprintf(email, sizeof email, "t%d.%d@mail.com", w->id, i);
		if (profile_create(w->c, name, email, 0, &p) != PROFILE_OK) {
			w->failures++;
			continue;
		}
		if (profile_get(w->c, p->uid, 0, &q) != PROFILE_OK || strcmp(q->username, name) != 0)
			w->failures++;
		if (profile_update(w->c, p->uid, NULL, "moved@mail.com", 1, 0, NULL) != PROFILE_OK)
			w->failures++;
		if (profile_delete(w->c, p->uid, 2, 0) != PROFILE_OK)
			w->failures++;
		profile_free(p);
		profile_free(q);
	}
	return NULL;
}

static void
test_one_handle_shared_by_threads(void)
{
	profile_client *c = open_on(core, 10000);
	pthread_t t[8];
	worker_arg w[8];

	for (int i = 0; i < 8; i++) {
		w[i] = (worker_arg){c, i, 0};
		pthread_create(&t[i], NULL, worker, &w[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(w[i].failures, 0);
	}
	profile_client_close(c);
}

typedef struct tally {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pending, ok, other;
	char uid[PROFILE_UID_SIZE];
} tally;

static void
counted(void *arg, int status, void *result)
{
	tally *t = arg;
	profile_info *p = result;

	pthread_mutex_lock(&t->mu);
	if (status == PROFILE_OK && p && strcmp(p->uid, t->uid) == 0)
		t->ok++;
	else
		t->other++;
	if (--t->pending == 0)
		pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	profile_free(p);
}

static void
test_async_keeps_many_calls_in_flight_from_one_thread(void)
{
	profile_client *c = open_on(core, 10000);
	tally t = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, ""};
	profile_info *p = NULL;
	const int n = 2000;

	CHECK_INT(profile_create(c, "async", "async@mail.com", 0, &p), PROFILE_OK);
	if (p == NULL)
		return;
	snprintf(t.uid, sizeof t.uid, "%s", p->uid);
	profile_free(p);
	t.pending = n;
	for (int i = 0; i < n; i++) {
		int rc = profile_get_async(c, t.uid, 0, counted, &t);
		if (rc != PROFILE_OK) {
			pthread_mutex_lock(&t.mu);
			t.pending--;
			t.other++;
			pthread_mutex_unlock(&t.mu);
		}
	}
	pthread_mutex_lock(&t.mu);
	while (t.pending > 0)
		pthread_cond_wait(&t.cv, &t.mu);
	pthread_mutex_unlock(&t.mu);
	CHECK_INT(t.ok, n);
	CHECK_INT(t.other, 0);
	profile_client_close(c);
}

/* ---- fake nodes ------------------------------------------------------------ */

enum fake_mode {
	F_GARBAGE,
	F_TRUNCATED,
	F_WRONG_BODY,
	F_UNAVAILABLE_ONCE,
	F_NOT_FOUND,
	F_PRECONDITION,
	F_PROFILE,     /* a profile, always */
	F_UNAVAILABLE, /* not executed, always */
	F_SILENT,      /* takes every request, answers none (a hung node) */
};

typedef struct fake {
	nng_socket sock;
	char url[64];
	enum fake_mode mode;
	int requests; /* every request but the background cluster views */
	pthread_t thread;
} fake;

static size_t
pack_response(int status, int with_profile, uint64_t id, uint8_t *buf)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;

	r.request_id = id;
	r.status = (Profile__V1__Status)status;
	r.message = status == PROFILE_OK ? "" : "fake";
	if (with_profile) {
		p.uid = "74292b21-0fbb-4f1d-a18f-fa80f947fa5d";
		p.username = "fake";
		p.email = "fake@mail.com";
		p.version = 1;
		r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
		r.profile = &p;
	}
	return profile__v1__response__pack(&r, buf);
}

static void *
fake_main(void *arg)
{
	fake *f = arg;
	uint8_t out[512];

	for (;;) {
		Profile__V1__Request *req;
		nng_msg *msg;
		size_t len = 0;
		uint64_t id = 0;
		int routing = 0;

		if (f->mode == F_SILENT) {
			/* Each request on a context of its own that is never
			 * answered: a REP socket would drop an unanswered request
			 * when it takes the next, which a hung node does not. */
			nng_ctx ctx;
			nng_aio *aio;
			if (nng_ctx_open(&ctx, f->sock) != 0 || nng_aio_alloc(&aio, NULL, NULL) != 0)
				return NULL;
			nng_ctx_recv(ctx, aio);
			nng_aio_wait(aio);
			if (nng_aio_result(aio) != 0) {
				nng_aio_free(aio);
				return NULL;
			}
			msg = nng_aio_get_msg(aio);
			nng_aio_free(aio);
		} else if (nng_recvmsg(f->sock, &msg, 0) != 0) {
			return NULL;
		}
		req = profile__v1__request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
		if (req) {
			id = req->request_id;
			/* A handle on several addresses asks for the cluster view
			 * in the background (owner routing): not a call of a test. */
			routing = req->body_case == PROFILE__V1__REQUEST__BODY_CLUSTER;
			profile__v1__request__free_unpacked(req, NULL);
		}
		if (!routing)
			__atomic_add_fetch(&f->requests, 1, __ATOMIC_RELAXED);
		nng_msg_clear(msg);
		switch (f->mode) {
		case F_SILENT:
			nng_msg_free(msg);
			continue;
		case F_PROFILE:
			len = pack_response(PROFILE_OK, 1, id, out);
			break;
		case F_UNAVAILABLE:
			len = pack_response(PROFILE_UNAVAILABLE, 0, id, out);
			break;
		case F_GARBAGE:
			memcpy(out, "\xff\xff\xff\xff\xff", 5);
			len = 5;
			break;
		case F_TRUNCATED:
			len = pack_response(PROFILE_OK, 1, id, out) / 2;
			break;
		case F_WRONG_BODY:
			len = pack_response(PROFILE_OK, 0, id, out);
			break;
		case F_UNAVAILABLE_ONCE:
			len = pack_response(f->requests == 1 ? PROFILE_UNAVAILABLE : PROFILE_OK,
			                    f->requests > 1, id, out);
			break;
		case F_NOT_FOUND:
			len = pack_response(PROFILE_NOT_FOUND, 0, id, out);
			break;
		case F_PRECONDITION:
			len = pack_response(PROFILE_FAILED_PRECONDITION, 0, id, out);
			break;
		}
		nng_msg_append(msg, out, len);
		if (nng_sendmsg(f->sock, msg, 0) != 0)
			nng_msg_free(msg);
	}
}

static void
fake_start(fake *f, enum fake_mode mode)
{
	nng_listener l;
	int port = 0;

	memset(f, 0, sizeof *f);
	f->mode = mode;
	CHECK_INT(nng_rep0_open(&f->sock), 0);
	/* Many requests at once, for F_SILENT (a REP socket takes one at a
	 * time, and a silent one would never take the next). */
	nng_socket_set_int(f->sock, NNG_OPT_RECVBUF, 64);
	CHECK_INT(nng_listen(f->sock, "tcp://127.0.0.1:0", &l, 0), 0);
	nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
	snprintf(f->url, sizeof f->url, "tcp://127.0.0.1:%d", port);
	pthread_create(&f->thread, NULL, fake_main, f);
}

static void
fake_stop(fake *f)
{
	nng_close(f->sock);
	pthread_join(f->thread, NULL);
}

static int
get_from(fake *f)
{
	profile_client *c = open_on(f->url, 2000);
	profile_info *p = NULL;
	int rc = profile_get(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", 0, &p);

	profile_free(p);
	profile_client_close(c);
	return rc;
}

static void
test_malformed_replies_are_internal(void)
{
	static const enum fake_mode modes[] = {F_GARBAGE, F_TRUNCATED, F_WRONG_BODY};

	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		fake f;
		fake_start(&f, modes[i]);
		CHECK_INT(get_from(&f), PROFILE_INTERNAL);
		CHECK_INT(f.requests, 1);
		fake_stop(&f);
	}
}

static void
test_only_unavailable_is_retried(void)
{
	fake f;

	fake_start(&f, F_UNAVAILABLE_ONCE);
	CHECK_INT(get_from(&f), PROFILE_OK);
	CHECK_INT(f.requests, 2);
	fake_stop(&f);

	fake_start(&f, F_NOT_FOUND);
	CHECK_INT(get_from(&f), PROFILE_NOT_FOUND);
	CHECK_INT(f.requests, 1);
	fake_stop(&f);

	fake_start(&f, F_PRECONDITION);
	CHECK_INT(get_from(&f), PROFILE_FAILED_PRECONDITION);
	CHECK_INT(f.requests, 1);
	fake_stop(&f);
}

static int
requests(fake *f)
{
	return __atomic_load_n(&f->requests, __ATOMIC_RELAXED);
}

static profile_client *
open_two(const char *a, const char *b, uint32_t deadline_ms)
{
	const char *addrs[] = {a, b};
	profile_client_options o = {.deadline_ms = deadline_ms};
	profile_client *c = NULL;

	CHECK_INT(profile_client_open(&c, addrs, 2, &o), PROFILE_OK);
	return c;
}

static void
test_unavailable_on_one_node_lands_on_the_other(void)
{
	fake a, b;
	profile_client *c;

	fake_start(&a, F_UNAVAILABLE);
	fake_start(&b, F_PROFILE);
	c = open_two(a.url, b.url, 5000);
	for (int i = 0; i < 4; i++) {
		profile_info *p = NULL;
		CHECK_INT(profile_get(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", 0, &p), PROFILE_OK);
		profile_free(p);
	}
	/* Every call was answered by b; the calls that went to a first were
	 * moved on, not failed. */
	CHECK_INT(requests(&b), 4);
	CHECK(requests(&a) >= 1);
	profile_client_close(c);
	fake_stop(&a);
	fake_stop(&b);
}

static void
test_a_write_without_an_answer_is_sent_once(void)
{
	fake a, b;
	profile_client *c;
	profile_info *p = NULL;

	/* One node that takes the create and never answers: the outcome is
	 * unknown, so the call is not repeated anywhere. */
	fake_start(&a, F_SILENT);
	fake_start(&b, F_SILENT);
	c = open_two(a.url, b.url, 800);
	CHECK_INT(profile_create(c, "bob", "bob@mail.com", 0, &p), PROFILE_DEADLINE_EXCEEDED);
	CHECK_INT(requests(&a) + requests(&b), 1);
	CHECK_INT(profile_update(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", "x", NULL, 0, 0, &p),
	          PROFILE_DEADLINE_EXCEEDED);
	CHECK_INT(requests(&a) + requests(&b), 2);
	CHECK(p == NULL);
	profile_client_close(c);
	fake_stop(&a);
	fake_stop(&b);
}

static void
test_a_keyed_create_without_an_answer_is_sent_again(void)
{
	fake silent, ok;
	profile_client *c;
	profile_info *p = NULL;

	/* A create with an idempotency key is safe to repeat: a try the silent
	 * node swallowed moves on to the other one, which answers. */
	fake_start(&silent, F_SILENT);
	fake_start(&ok, F_PROFILE);
	c = open_two(silent.url, ok.url, 6000);
	for (int i = 0; i < 3; i++) {
		CHECK_INT(profile_create_idempotent(c, "bob", "bob@mail.com", "key-1", 0, &p), PROFILE_OK);
		profile_free(p);
		p = NULL;
	}
	CHECK_INT(requests(&ok), 3);
	profile_client_close(c);
	/* With no node answering it ends DEADLINE_EXCEEDED (it may have run),
	 * never UNAVAILABLE, though it was sent more than once. */
	c = open_two(silent.url, silent.url, 900);
	CHECK_INT(profile_create_idempotent(c, "bob", "bob@mail.com", "key-2", 0, &p),
	          PROFILE_DEADLINE_EXCEEDED);
	CHECK(requests(&silent) >= 2);
	CHECK(p == NULL);
	CHECK_INT(profile_create_idempotent(c, "bob", "bob@mail.com", "", 0, &p), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(profile_create_idempotent(c, "bob", "bob@mail.com", "tab\there", 0, &p),
	          PROFILE_INVALID_ARGUMENT);
	profile_client_close(c);
	fake_stop(&silent);
	fake_stop(&ok);
}

static void
test_a_read_without_an_answer_moves_on_and_is_never_deadline_exceeded(void)
{
	fake silent, ok;
	profile_client *c;
	profile_info *p = NULL;
	int64_t t;

	fake_start(&silent, F_SILENT);
	fake_start(&ok, F_PROFILE);
	/* Alone, a silent node's read ends UNAVAILABLE (a read is safe to
	 * repeat), not DEADLINE_EXCEEDED. */
	c = open_on(silent.url, 600);
	CHECK_INT(profile_get(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", 0, &p), PROFILE_UNAVAILABLE);
	profile_client_close(c);
	/* With another node, every read is answered by it: a try on the
	 * silent node costs a third of the deadline, and after one such try
	 * the handle stops sending there. */
	c = open_two(silent.url, ok.url, 6000);
	t = ms_now();
	for (int i = 0; i < 6; i++) {
		CHECK_INT(profile_get(c, "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", 0, &p), PROFILE_OK);
		profile_free(p);
		p = NULL;
	}
	CHECK_INT(requests(&ok), 6);
	CHECK(requests(&silent) >= 1 && requests(&silent) <= 2);
	/* Far less than one deadline for all six (two silent tries at most). */
	CHECK(ms_now() - t < 6000);
	profile_client_close(c);
	fake_stop(&silent);
	fake_stop(&ok);
}

static void
test_a_black_holed_address_costs_a_second_not_the_deadline(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int hole = socket(AF_INET, SOCK_STREAM, 0);
	char url[64];
	fake ok;
	profile_client *c;
	profile_info *p = NULL;
	int64_t t;

	/* Listens and lets the kernel accept connections, then never says a
	 * word: a node whose host is up but whose process is gone or wedged. */
	CHECK(hole >= 0 && bind(hole, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(hole, 16) == 0 &&
	      getsockname(hole, (struct sockaddr *)&sa, &len) == 0);
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
	fake_start(&ok, F_PROFILE);
	c = open_two(url, ok.url, 10000);
	t = ms_now();
	/* A create, which is never repeated once sent: it was never taken by
	 * the black hole, so it is moved on. */
	CHECK_INT(profile_create(c, "bob", "bob@mail.com", 0, &p), PROFILE_OK);
	t = ms_now() - t;
	CHECK_INT(requests(&ok), 1);
	CHECK(t < 5000); /* about 1 s; the deadline is 10 s */
	profile_free(p);
	/* The hole goes first: nng 1.5.2's close can hang on a connection
	 * still waiting for the peer's handshake. */
	close(hole);
	profile_client_close(c);
	fake_stop(&ok);
}

/* usage: test_client --raw-get ADDR UID HOPS
 * Sends one GET straight to the node at ADDR with the given hop count, as a
 * forwarding node would, and prints the answer's status name. */
static int
raw_get(const char *addr, const char *uid, int hops)
{
	Profile__V1__Request req = PROFILE__V1__REQUEST__INIT;
	Profile__V1__GetRequest get = PROFILE__V1__GET_REQUEST__INIT;
	Profile__V1__Response *resp;
	nng_socket sock;
	uint8_t buf[256];
	size_t len;
	void *out = NULL;
	size_t out_len = 0;

	get.uid = (char *)uid;
	req.request_id = 1;
	req.deadline_ms = 3000;
	req.hops = (uint32_t)hops;
	req.body_case = PROFILE__V1__REQUEST__BODY_GET;
	req.get = &get;
	len = profile__v1__request__pack(&req, buf);
	if (nng_req0_open(&sock) != 0 || nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 5000) != 0 ||
	    nng_dial(sock, addr, NULL, 0) != 0 || nng_send(sock, buf, len, 0) != 0 ||
	    nng_recv(sock, &out, &out_len, NNG_FLAG_ALLOC) != 0)
		return 1;
	resp = profile__v1__response__unpack(NULL, out_len, out);
	nng_free(out, out_len);
	if (resp == NULL)
		return 1;
	printf("%s\n", profile_status_name((int)resp->status));
	profile__v1__response__free_unpacked(resp, NULL);
	return 0;
}

/* Names each test as it starts, so that a run that hangs says where. */
#define RUN(test)                                                                                            \
	do {                                                                                                 \
		printf("%s\n", #test);                                                                       \
		fflush(stdout);                                                                              \
		test();                                                                                      \
	} while (0)

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--raw-get") == 0)
		return raw_get(argv[2], argv[3], atoi(argv[4]));
	if (argc != 2) {
		fprintf(stderr, "usage: test_client CORE_ADDR\n");
		return 2;
	}
	core = argv[1];
	RUN(test_bad_arguments_send_nothing);
	RUN(test_every_call);
	RUN(test_keyed_create_makes_one_profile);
	RUN(test_down_core_is_unavailable_within_the_deadline);
	RUN(test_a_dead_address_is_skipped);
	RUN(test_one_handle_shared_by_threads);
	RUN(test_async_keeps_many_calls_in_flight_from_one_thread);
	RUN(test_malformed_replies_are_internal);
	RUN(test_only_unavailable_is_retried);
	RUN(test_unavailable_on_one_node_lands_on_the_other);
	RUN(test_a_write_without_an_answer_is_sent_once);
	RUN(test_a_keyed_create_without_an_answer_is_sent_again);
	RUN(test_a_read_without_an_answer_moves_on_and_is_never_deadline_exceeded);
	RUN(test_a_black_holed_address_costs_a_second_not_the_deadline);
	return check_done("test_client");
}
