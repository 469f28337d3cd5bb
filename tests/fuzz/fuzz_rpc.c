/* fuzz_rpc.c: a core's RPC decode path, as a core receives requests from
 * the network (rpc_handle: the size check, the envelope, every request body,
 * each method's argument checks and the method itself), on a node that owns
 * no partition and has no Kafka and no peers: whatever the bytes, the node
 * answers once with a response that encodes and decodes again, and never
 * crashes. libFuzzer target. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "partition.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int answers; /* atomic */

static void
answered(void *arg, const Profile__V1__Response *resp)
{
	size_t len = profile__v1__response__get_packed_size(resp);
	uint8_t *buf = malloc(len ? len : 1);
	Profile__V1__Response *back;

	(void)arg;
	if (buf == NULL)
		abort();
	profile__v1__response__pack(resp, buf);
	if ((back = profile__v1__response__unpack(NULL, len, buf)) == NULL)
		abort(); /* an answer that a caller cannot read */
	if (back->status != resp->status || back->request_id != resp->request_id)
		abort();
	profile__v1__response__free_unpacked(back, NULL);
	free(buf);
	__atomic_add_fetch(&answers, 1, __ATOMIC_RELAXED);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static service *svc;
	static partitions *t;
	rpc_call call;
	/* Short deadlines: a request that waits is answered by the sweeper
	 * within milliseconds, so nothing piles up across inputs. */
	static const service_config cfg = {
	    .node_id = "fuzz", .address = "inproc://fuzz", .default_deadline_ms = 5, .max_deadline_ms = 20};

	if (svc == NULL) {
		char dir[] = "/tmp/fuzz_rpc.XXXXXX";
		if (mkdtemp(dir) == NULL || partitions_new(&t, dir, NULL, 4) != PROFILE_OK ||
		    service_new(&svc, &cfg, t) != PROFILE_OK)
			abort();
	}
	rpc_handle(svc, size > 0 && data[0] == 0xff, data, size, &call, answered, NULL);
	return 0;
}
