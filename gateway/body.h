/* body.h: the bodies of the REST API, in JSON (jansson).
 *
 * Parses request bodies into checked fields and renders profiles and errors.
 * Every rule about what a body may contain lives here and in wire.c.
 */
#ifndef PROFILE_GATEWAY_BODY_H
#define PROFILE_GATEWAY_BODY_H

#include <stddef.h>

#include "wire.h"

/* Fields of a create or update body; NULL when absent. Owned by the struct:
 * free with body_fields_fini. */
typedef struct body_fields {
	char *username;
	char *email;
} body_fields;

/* Parses body[0..len). require_all: both fields must be present (create);
 * otherwise at least one (update). On PROFILE_OK *f holds new strings; on
 * PROFILE_INVALID_ARGUMENT *f is untouched and why[0..why_size) says what
 * is wrong. */
int body_parse_fields(const char *body, size_t len, int require_all, body_fields *f, char *why,
                      size_t why_size);

void body_fields_fini(body_fields *f);

/* New malloc'd JSON text of a profile, or NULL when out of memory. */
char *body_render_profile(const Profile__V1__Profile *p);

/* New malloc'd JSON text of the cluster view:
 * {"partition_count":N,
 *  "nodes":[{"id","address","partitions":[...],"reachable","requests","forwards"}],
 *  "partitions":[{"partition","owner","state","lag","applied_offset","replayed",
 *                 "problem"?,"replicas":[{"node","state","applied_offset","lag"}]}]}
 * where state is "active", "restoring", "unavailable" or "unknown" (no
 * owner, or its owner did not answer), and replicas lists every node that
 * serves the partition; or NULL when out of memory. */
char *body_render_cluster(const Profile__V1__ClusterReply *c);

/* New malloc'd {"error":{"code":code,"message":message}}, or NULL. */
char *body_render_error(const char *code, const char *message);

#endif
