/* profiles.c: create, get, update and delete (profiles.h): where each
 * request is served, and the reads. The writes themselves run in write.c.
 */
#include "profiles.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "read.h"
#include "write.h"

/* ---- the methods ------------------------------------------------------- */

/* A new uid whose partition this node owns and serves, so that a create
 * never needs another hop; -1 when it owns none (the create is then
 * forwarded). Still a random version 4 UUID: draws are only filtered. */
static int32_t
uid_for_create(service *svc, char *uid)
{
	int32_t count = partitions_count(svc->t);
	int any = 0;

	for (int32_t p = 0; p < count && !any; p++)
		any = node_owns(svc, p);
	for (int tries = 0; any && tries < 100000; tries++) {
		int32_t p;
		write_new_uid(uid);
		p = wire_partition(uid, WIRE_UID_LEN, count);
		if (node_owns(svc, p))
			return p;
	}
	write_new_uid(uid);
	return -1;
}

/* The queue a keyed create waits in: 36 characters made from the key (two
 * keys that share one only wait for each other). */
static const char *
idem_queue(const char *idem, char *out)
{
	uint64_t a = wire_request_hash(idem, ""), b = (uint64_t)(uint32_t)wire_murmur2(idem, strlen(idem));

	snprintf(out, WIRE_UID_LEN + 1, "idem-%016llx%015llx", (unsigned long long)a, (unsigned long long)b);
	return out;
}

void
profiles_create(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg)
{
	char uid[WIRE_UID_LEN + 1];
	const char *idem = req->create->idempotency_key;
	int32_t p;

	if (idem[0] != '\0') {
		/* Served where the key lives, queued on the key. */
		p = wire_partition(idem, strlen(idem), partitions_count(svc->t));
		if (!node_owns(svc, p))
			node_forward(svc, p, req, deadline, 1, done, arg);
		else
			write_begin(svc, req, idem_queue(idem, uid), p, deadline, done, arg);
		return;
	}
	p = uid_for_create(svc, uid);

	if (p < 0)
		node_forward(svc, wire_partition(uid, WIRE_UID_LEN, partitions_count(svc->t)), req, deadline,
		             1, done, arg);
	else
		write_begin(svc, req, uid, p, deadline, done, arg);
}

/* uids are compared (and keyed on Kafka) in canonical lowercase. */
static void
lowercase(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'F')
			*s = (char)(*s - 'A' + 'a');
}

void
profiles_change(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg)
{
	char *uid =
	    req->body_case == PROFILE__V1__REQUEST__BODY_UPDATE ? req->update->uid : req->delete_->uid;
	int32_t p;

	lowercase(uid);
	p = wire_partition(uid, WIRE_UID_LEN, partitions_count(svc->t));
	if (!node_owns(svc, p))
		node_forward(svc, p, req, deadline, 1, done, arg);
	else
		write_begin(svc, req, uid, p, deadline, done, arg);
}

/* node_read_fn: a profile from its partition's store. */
static int
get_read(service *svc, const Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg,
         int32_t *part)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	Profile__V1__Staleness stale;
	const char *uid = req->get->uid;
	int32_t p = *part; /* routed by this uid */
	Profile__V1__Profile *prof = NULL;
	store *st;
	int rc;

	(void)deadline;
	if ((rc = partitions_read_begin(svc->t, p, node_min_position(req, p), &st)) == PROFILE_ABORTED)
		return rc; /* *part is the one to wait for */
	if (rc != PROFILE_OK) {
		const char *held = partitions_held_back(svc->t);

		reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE,
		             rc == PROFILE_FAILED_PRECONDITION ? "partition store unavailable on this node; retry later"
		             : held                            ? held
		             : node_min_position(req, p) >= 0  ? "this node cannot reach the position asked for"
		                                               : "partition is not served by this node");
		return rc;
	}
	rc = store_get(st, uid, &prof);
	partitions_read_end(svc->t, p);
	r.request_id = req->request_id;
	r.status = (Profile__V1__Status)rc;
	r.staleness = node_staleness(svc, req, p, &stale);
	if (rc == PROFILE_OK) {
		r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
		r.profile = prof;
	} else {
		r.message = rc == PROFILE_NOT_FOUND ? "no profile with this uid" : "store read failed";
	}
	done(arg, &r);
	if (prof)
		profile__v1__profile__free_unpacked(prof, NULL);
	return rc;
}

void
profiles_get(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg)
{
	int32_t p;

	lowercase(req->get->uid);
	p = wire_partition(req->get->uid, WIRE_UID_LEN, partitions_count(svc->t));
	if (!node_reads_here(svc, req, p))
		node_forward(svc, p, req, deadline, 0, done, arg);
	else
		node_read(svc, get_read, req, p, deadline, done, arg);
}
