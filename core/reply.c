/* reply.c: the status-only answer and the relayed answer (reply.h). */
#include "reply.h"

#include <stdlib.h>

void
reply_status(reply_fn done, void *arg, uint64_t id, int status, const char *msg)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;

	r.request_id = id;
	r.status = (Profile__V1__Status)status;
	r.message = (char *)(msg ? msg : "");
	done(arg, &r);
}

/* A relayed answer's own fields, kept as they were encoded. */
static int
relayed(const wire_field *f)
{
	return f->number != WIRE_RESPONSE_REQUEST_ID && f->number != WIRE_RESPONSE_DRAINING;
}

int
reply_relay(reply_fn done, void *arg, uint64_t id, const uint8_t *bytes, size_t len)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	ProtobufCMessageUnknownField few[8], *u = few;
	size_t at = 0, n = 0;
	wire_field f;
	int rc;

	while ((rc = wire_field_next(bytes, len, &at, &f)) > 0)
		n += relayed(&f);
	if (rc < 0)
		return PROFILE_INTERNAL;
	if (n > sizeof few / sizeof few[0] && (u = calloc(n, sizeof *u)) == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	at = n = 0;
	while (wire_field_next(bytes, len, &at, &f) > 0)
		if (relayed(&f))
			u[n++] = (ProtobufCMessageUnknownField){.tag = f.number,
			                                        .wire_type = (ProtobufCWireType)f.type,
			                                        .len = f.len,
			                                        .data = (uint8_t *)f.value};
	r.request_id = id;
	r.base.n_unknown_fields = (unsigned)n;
	r.base.unknown_fields = u;
	done(arg, &r);
	if (u != few)
		free(u);
	return PROFILE_OK;
}
