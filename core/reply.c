/* reply.c: the status-only answer (reply.h). */
#include "reply.h"

void
reply_status(reply_fn done, void *arg, uint64_t id, int status, const char *msg)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;

	r.request_id = id;
	r.status = (Profile__V1__Status)status;
	r.message = (char *)(msg ? msg : "");
	done(arg, &r);
}
