/* test_http.c: the gateway's HTTP server stops cleanly while it is busy
 * (gateway/http.c). Each round opens the server, lets clients hammer it
 * with requests, and closes it under that load: a race inside the server
 * library at shutdown aborts the process, which fails the test. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "check.h"

#define SECONDS 15 /* of rounds: with MHD_quiesce_daemon, 3 runs in 4 aborted */
#define HAMMERS 4

static const char request[] = "GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

typedef struct hammer {
	pthread_t thread;
	uint16_t port;
	volatile int stop;
	unsigned answered;
} hammer;

static uint16_t
free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* One request per connection, as fast as the server takes them. */
static void *
hammer_run(void *arg)
{
	hammer *h = arg;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(h->port)};
	struct timeval wait = {0, 200 * 1000};
	char buf[512];

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0)
			break;
		/* A closed server's queue is never served: give up on it. */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
		    send(fd, request, sizeof request - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof request - 1) &&
		    recv(fd, buf, sizeof buf, 0) > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0)
			h->answered++;
		close(fd);
	}
	return NULL;
}

static void
test_close_under_load(void)
{
	static const char *const cores[] = {"tcp://127.0.0.1:1"};
	profile_client *client = NULL;
	unsigned answered = 0;
	int rounds = 0;
	time_t end = time(NULL) + SECONDS;

	CHECK_INT(profile_client_open(&client, cores, 1, NULL), PROFILE_OK);
	if (client == NULL)
		return;
	for (int round = 0; time(NULL) < end; round++) {
		http_config cfg = {.address = "127.0.0.1",
		                   .port = free_port(),
		                   .threads = 32, /* more threads, more chances to race */
		                   .connection_timeout_s = 5,
		                   .max_connections = 64,
		                   .call_timeout_ms = 1000,
		                   .cores = cores,
		                   .n_cores = 1};
		struct timespec busy = {0, (long)(1 + round % 5) * 1000000L};
		hammer hs[HAMMERS];
		http_server *srv = NULL;

		if (http_server_open(&srv, &cfg, client) != PROFILE_OK) {
			continue; /* the port was taken in between: another one */
		}
		for (int i = 0; i < HAMMERS; i++) {
			hs[i] = (hammer){.port = cfg.port};
			pthread_create(&hs[i].thread, NULL, hammer_run, &hs[i]);
		}
		nanosleep(&busy, NULL);
		http_server_close(srv);
		rounds++;
		for (int i = 0; i < HAMMERS; i++) {
			__atomic_store_n(&hs[i].stop, 1, __ATOMIC_RELEASE);
			pthread_join(hs[i].thread, NULL);
			answered += hs[i].answered;
		}
	}
	/* The load was real: the servers answered while being closed. */
	CHECK(rounds > 0 && answered > (unsigned)rounds);
	printf("%d rounds, %u requests answered\n", rounds, answered);
	profile_client_close(client);
}

int
main(void)
{
	test_close_under_load();
	return check_done("test_http");
}
