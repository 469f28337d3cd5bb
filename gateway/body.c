/* body.c: request and response bodies, JSON <-> fields and profiles (body.h). */
#include "body.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
field(json_t *obj, const char *name, char **out, char *why, size_t why_size)
{
	json_t *v = json_object_get(obj, name);
	const char *rule = NULL, *s;

	if (v == NULL)
		return PROFILE_OK;
	if (!json_is_string(v)) {
		snprintf(why, why_size, "%s must be a string", name);
		return PROFILE_INVALID_ARGUMENT;
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v)) {
		snprintf(why, why_size, "%s must not contain NUL characters", name);
		return PROFILE_INVALID_ARGUMENT;
	}
	if ((strcmp(name, "username") == 0 ? wire_check_username(s, &rule) : wire_check_email(s, &rule)) !=
	    PROFILE_OK) {
		snprintf(why, why_size, "%s", rule);
		return PROFILE_INVALID_ARGUMENT;
	}
	*out = strdup(s);
	return *out ? PROFILE_OK : PROFILE_RESOURCE_EXHAUSTED;
}

int
body_parse_fields(const char *body, size_t len, int require_all, body_fields *f, char *why, size_t why_size)
{
	body_fields got = {0};
	json_error_t err;
	json_t *root;
	int rc;

	if (body == NULL || len == 0) {
		snprintf(why, why_size, "a JSON object body is required");
		return PROFILE_INVALID_ARGUMENT;
	}
	/* jansson rejects invalid UTF-8 and \u0000 while parsing. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL) {
		snprintf(why, why_size, "malformed JSON: %s (at character %d)", err.text, err.position);
		return PROFILE_INVALID_ARGUMENT;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(why, why_size, "the body must be a JSON object");
		return PROFILE_INVALID_ARGUMENT;
	}
	if ((rc = field(root, "username", &got.username, why, why_size)) == PROFILE_OK)
		rc = field(root, "email", &got.email, why, why_size);
	json_decref(root);
	if (rc == PROFILE_OK && require_all && (got.username == NULL || got.email == NULL)) {
		snprintf(why, why_size, "%s is required", got.username == NULL ? "username" : "email");
		rc = PROFILE_INVALID_ARGUMENT;
	}
	if (rc == PROFILE_OK && got.username == NULL && got.email == NULL) {
		snprintf(why, why_size, "the body must set username or email");
		rc = PROFILE_INVALID_ARGUMENT;
	}
	if (rc != PROFILE_OK) {
		body_fields_fini(&got);
		return rc;
	}
	*f = got;
	return PROFILE_OK;
}

void
body_fields_fini(body_fields *f)
{
	free(f->username);
	free(f->email);
	f->username = f->email = NULL;
}

/* The compact text of o (a new string, or NULL), and o released (stolen;
 * NULL gives NULL). */
static char *
dump(json_t *o)
{
	char *text;

	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

/* s as a JSON string at `at`, escaped as jansson's compact output escapes
 * (the quote, the backslash and control characters; the rest of UTF-8 as
 * it is): at most 6 bytes per byte of s, and the quotes. Returns the end. */
static char *
put_string(char *at, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	*at++ = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		const char *two = *c == '"'    ? "\\\""
		                  : *c == '\\' ? "\\\\"
		                  : *c == '\b' ? "\\b"
		                  : *c == '\f' ? "\\f"
		                  : *c == '\n' ? "\\n"
		                  : *c == '\r' ? "\\r"
		                  : *c == '\t' ? "\\t"
		                               : NULL;
		if (two) {
			memcpy(at, two, 2);
			at += 2;
		} else if (*c < 0x20) {
			memcpy(at, "\\u00", 4);
			at[4] = hex[*c >> 4];
			at[5] = hex[*c & 15];
			at += 6;
		} else {
			*at++ = (char)*c;
		}
	}
	*at++ = '"';
	return at;
}

/* Written straight from the protobuf, one allocation, the same text as
 * jansson's (test_api compares them): it is the body of every read. */
char *
body_render_profile(const Profile__V1__Profile *p)
{
	size_t ulen = strlen(p->uid), nlen = strlen(p->username), elen = strlen(p->email);
	char *text, *at;

	/* Not UTF-8 (a core that is not this project's): no body, as jansson
	 * would make none. */
	if (!wire_utf8_valid(p->uid, ulen) || !wire_utf8_valid(p->username, nlen) ||
	    !wire_utf8_valid(p->email, elen) || (text = malloc(160 + 6 * (ulen + nlen + elen))) == NULL)
		return NULL;
	at = put_string(stpcpy(text, "{\"uid\":"), p->uid);
	at = put_string(stpcpy(at, ",\"username\":"), p->username);
	at = put_string(stpcpy(at, ",\"email\":"), p->email);
	sprintf(at, ",\"version\":%lld,\"created_at\":%lld,\"updated_at\":%lld}", (long long)p->version,
	        (long long)p->created_at, (long long)p->updated_at);
	return text;
}

char *
body_render_error(const char *code, const char *message)
{
	json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message ? message : "");

	if (o == NULL) /* message was not UTF-8: say so without it */
		o = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", "");
	return dump(o);
}

static const char *
state_name(Profile__V1__PartitionState__State s)
{
	return s == PROFILE__V1__PARTITION_STATE__STATE__ACTIVE        ? "active"
	       : s == PROFILE__V1__PARTITION_STATE__STATE__RESTORING   ? "restoring"
	       : s == PROFILE__V1__PARTITION_STATE__STATE__UNAVAILABLE ? "unavailable"
	                                                               : "unknown";
}

char *
body_render_cluster(const Profile__V1__ClusterReply *c)
{
	json_t *root = json_object(), *nodes = json_array(), *parts = json_array();
	char *text = NULL;

	if (!root || !nodes || !parts)
		goto out;
	for (size_t i = 0; i < c->n_nodes; i++) {
		const Profile__V1__ClusterNode *n = c->nodes[i];
		json_t *owned = json_array();

		for (size_t k = 0; owned && k < n->n_partitions; k++)
			json_array_append_new(owned, json_integer(n->partitions[k]));
		json_array_append_new(nodes, json_pack("{s:s, s:s, s:o, s:b, s:I, s:I}", "id", n->node_id,
		                                       "address", n->address, "partitions",
		                                       owned ? owned : json_array(), "reachable",
		                                       n->reachable, "requests", (json_int_t)n->requests,
		                                       "forwards", (json_int_t)n->forwards));
	}
	for (size_t i = 0; i < c->n_partitions; i++) {
		const Profile__V1__ClusterPartition *p = c->partitions[i];
		const char *state = state_name(p->state);

		json_t *replicas = json_array();

		for (size_t k = 0; replicas && k < p->n_replicas; k++)
			json_array_append_new(replicas,
			                      json_pack("{s:s, s:s, s:I, s:I}", "node", p->replicas[k]->node_id, "state",
			                                state_name(p->replicas[k]->state), "applied_offset",
			                                (json_int_t)p->replicas[k]->applied_offset, "lag",
			                                (json_int_t)p->replicas[k]->lag));
		json_array_append_new(
		    parts, json_pack("{s:i, s:s?, s:s, s:I, s:I, s:I, s:s*, s:o}", "partition", (int)p->partition,
		                     "owner", p->owner[0] ? p->owner : NULL, "state", state, "lag",
		                     (json_int_t)p->lag, "applied_offset", (json_int_t)p->applied_offset,
		                     "replayed", (json_int_t)p->replayed, "problem",
		                     p->problem[0] ? p->problem : NULL, "replicas", replicas ? replicas : json_array()));
	}
	json_object_set_new(root, "partition_count", json_integer(c->partition_count));
	json_object_set(root, "nodes", nodes);
	json_object_set(root, "partitions", parts);
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(root);
	json_decref(nodes);
	json_decref(parts);
	return text;
}
