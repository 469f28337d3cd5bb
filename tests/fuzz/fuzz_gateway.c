/* fuzz_gateway.c: everything a client (or a broken core) can hand the
 * gateway's own code. The input is split into a method choice, a path, an
 * email argument, an If-Match value, a body, and a core reply; the gateway
 * must answer each with a status and never crash or leak. libFuzzer target. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"};

/* Takes the next NUL-separated field of data (a copy, NUL-terminated). */
static char *
field(const uint8_t **data, size_t *size)
{
	const uint8_t *end = memchr(*data, 0, *size);
	size_t len = end ? (size_t)(end - *data) : *size;
	char *s = malloc(len + 1);

	memcpy(s, *data, len);
	s[len] = '\0';
	*data += end ? len + 1 : len;
	*size -= end ? len + 1 : len;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cores[] = {"tcp://127.0.0.1:7001"};
	static const api_context ctx = {.cores = cores, .n_cores = 1};
	Profile__V1__Response *resp;
	api_request ar;
	char *path, *email, *if_match, *body, *idem, *inm, *ctype, *minpos, *cache;
	api_input in;
	int method, status;

	if (size < 2)
		return 0;
	method = data[0] % 6;
	status = data[1] % 16;
	data += 2;
	size -= 2;
	path = field(&data, &size);
	email = field(&data, &size);
	if_match = field(&data, &size);
	body = field(&data, &size);
	idem = field(&data, &size);
	inm = field(&data, &size);
	ctype = field(&data, &size);
	minpos = field(&data, &size);
	cache = field(&data, &size);
	in = (api_input){.method = methods[method],
	                 .path = path,
	                 .email = email[0] ? email : NULL,
	                 .if_match = if_match[0] ? if_match : NULL,
	                 .idem_key = idem[0] ? idem : NULL,
	                 .if_none_match = inm[0] ? inm : NULL,
	                 .content_type = ctype[0] ? ctype : NULL,
	                 .min_position = minpos[0] ? minpos : NULL,
	                 .cache_control = cache[0] ? cache : NULL,
	                 .log_id = "fuzz",
	                 .body = body,
	                 .body_len = strlen(body)};
	api_prepare(&ar, &ctx, &in);
	if (ar.kind == API_CALL) {
		/* Whatever comes back (the rest of the input as a reply). */
		resp = profile__v1__response__unpack(NULL, size, data);
		api_finish(&ar, resp ? PROFILE_OK : status ? status : PROFILE_UNAVAILABLE, resp);
		if (resp)
			profile__v1__response__free_unpacked(resp, NULL);
	}
	if (ar.resp.http < 200 || ar.resp.http > 599)
		abort();
	api_request_fini(&ar);
	free(path);
	free(email);
	free(if_match);
	free(body);
	free(idem);
	free(inm);
	free(ctype);
	free(minpos);
	free(cache);
	return 0;
}
