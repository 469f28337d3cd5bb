/* http_fixed.c: the HTTP baseline of the benchmark. libmicrohttpd with the
 * gateway's settings (epoll, 2 threads), answering every request with the
 * same 154-byte JSON body: what the HTTP layer costs with no work behind it.
 * usage: bench-http-fixed PORT */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] =
    "{\"uid\":\"74292b21-0fbb-4f1d-a18f-fa80f947fa5d\",\"username\":\"bob\",\"email\":\"bob1@mail.com\","
    "\"version\":1,\"created_at\":1795774567267,\"updated_at\":1795774567267}";

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
          const char *upload, size_t *upload_size, void **con_cls)
{
	static int first;
	struct MHD_Response *r;
	enum MHD_Result ok;

	(void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size;
	if (*con_cls == NULL) { /* as the gateway: answer on the second call (keep-alive) */
		*con_cls = &first;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ok = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ok;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	sigset_t s;
	int sig;

	if (argc != 2)
		return 2;
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)atoi(argv[1]), NULL,
	                     NULL, on_access, NULL, MHD_OPTION_THREAD_POOL_SIZE, 2u,
	                     MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
	if (d == NULL)
		return 1;
	sigwait(&s, &sig);
	MHD_stop_daemon(d);
	return 0;
}
