/* bench.c: profilectl bench, a native load generator.
 *
 * One thread starts `concurrency` calls with the asynchronous API; each
 * completion (on a library thread) records its latency and starts the next
 * call, so the number in flight stays constant without any thread blocking.
 * Each workload runs for a fixed time; the figures are printed as a table.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "profilectl.h"

enum { W_FILL, W_GET, W_CREATE, W_MIXED };

typedef struct bench {
	profile_client *c;
	int kind;
	char (*uids)[37];
	size_t nuids, want; /* W_FILL: profiles made so far, to make */
	int64_t end_us;
	uint32_t *lat; /* microseconds */
	size_t lat_cap;
	size_t lat_n;
	uint64_t errors;
	uint64_t seq;
	int in_flight;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned seed;
} bench;

typedef struct slot {
	bench *b;
	int64_t start_us;
	unsigned rng;
} slot;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_done(void *arg, int status, void *result);

/* Starts the slot's next call; 0, or -1 when none was started. */
static int
issue(slot *s)
{
	bench *b = s->b;
	char name[32], email[64];
	uint64_t n;
	int rc, r;

	s->start_us = now_us();
	r = (int)(rand_r(&s->rng) % 100);
	switch (b->kind) {
	case W_FILL:
	case W_CREATE:
		n = __atomic_fetch_add(&b->seq, 1, __ATOMIC_RELAXED);
		snprintf(name, sizeof name, "bench%llu", (unsigned long long)n);
		snprintf(email, sizeof email, "bench%llu.%u@bench.example", (unsigned long long)n, b->seed);
		rc = profile_create_async(b->c, name, email, 0, on_done, s);
		break;
	case W_MIXED:
		if (r < 10) {
			snprintf(name, sizeof name, "bench-u%d", r);
			rc = profile_update_async(b->c, b->uids[rand_r(&s->rng) % b->nuids], name, NULL,
			                          PROFILE_ANY_VERSION, 0, on_done, s);
			break;
		}
		rc = profile_get_async(b->c, b->uids[rand_r(&s->rng) % b->nuids], 0, on_done, s);
		break;
	default:
		rc = profile_get_async(b->c, b->uids[rand_r(&s->rng) % b->nuids], 0, on_done, s);
	}
	return rc == PROFILE_OK ? 0 : -1;
}

static void
slot_retire(bench *b)
{
	pthread_mutex_lock(&b->mu);
	if (--b->in_flight == 0)
		pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static void
on_done(void *arg, int status, void *result)
{
	slot *s = arg;
	bench *b = s->b;
	int64_t t = now_us();
	size_t i;
	int more;

	if (status == PROFILE_OK) {
		i = __atomic_fetch_add(&b->lat_n, 1, __ATOMIC_RELAXED);
		if (i < b->lat_cap)
			b->lat[i] = (uint32_t)(t - s->start_us);
	} else {
		__atomic_fetch_add(&b->errors, 1, __ATOMIC_RELAXED);
	}
	if (b->kind == W_FILL) {
		pthread_mutex_lock(&b->mu);
		if (status == PROFILE_OK && b->nuids < b->want)
			memcpy(b->uids[b->nuids++], ((profile_info *)result)->uid, 37);
		more = b->nuids + (size_t)b->in_flight <= b->want;
		pthread_mutex_unlock(&b->mu);
	} else {
		more = t < b->end_us;
	}
	profile_free(result); /* every workload's result is a profile_info */
	if (!more || issue(s) != 0)
		slot_retire(b);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double
pct(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

/* Runs one workload for duration_s (W_FILL: until b->want profiles). */
static void
run(bench *b, int kind, int concurrency, double duration_s, slot *slots)
{
	int64_t start;

	b->kind = kind;
	b->lat_n = 0;
	b->errors = 0;
	start = now_us();
	b->end_us = start + (int64_t)(duration_s * 1e6);
	pthread_mutex_lock(&b->mu);
	b->in_flight = concurrency;
	pthread_mutex_unlock(&b->mu);
	for (int i = 0; i < concurrency; i++) {
		slots[i].b = b;
		slots[i].rng = b->seed * 7919u + (unsigned)i;
		if (issue(&slots[i]) != 0) {
			__atomic_fetch_add(&b->errors, 1, __ATOMIC_RELAXED);
			slot_retire(b);
		}
	}
	pthread_mutex_lock(&b->mu);
	while (b->in_flight > 0)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
	b->end_us = now_us() - start; /* elapsed, for the report */
}

static void
report(bench *b, const char *name)
{
	size_t n = b->lat_n < b->lat_cap ? b->lat_n : b->lat_cap;
	double secs = b->end_us / 1e6;

	qsort(b->lat, n, sizeof *b->lat, cmp_u32);
	printf("%-12s %10zu %10.0f %9.3f %9.3f %9.3f %8llu\n", name, b->lat_n, secs > 0 ? b->lat_n / secs : 0,
	       pct(b->lat, n, 0.50), pct(b->lat, n, 0.99), pct(b->lat, n, 0.999),
	       (unsigned long long)b->errors);
	fflush(stdout);
}

/* 1 when the comma-separated list names w. */
static int
has_workload(const char *list, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',')
		if (strncmp(p, w, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

/* 1 when every name in the list is a workload. */
static int
workloads_valid(const char *list)
{
	const char *p = list;

	if (*p == '\0')
		return 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		if (!((n == 3 && strncmp(p, "get", 3) == 0) || (n == 6 && strncmp(p, "create", 6) == 0) ||
		      (n == 5 && strncmp(p, "mixed", 5) == 0)))
			return 0;
		p += n;
		p += *p == ',';
	}
	return 1;
}

int
bench_main(profile_client *c, int argc, char **argv)
{
	static const struct option opts[] = {{"concurrency", required_argument, NULL, 'n'},
	                                     {"duration", required_argument, NULL, 'd'},
	                                     {"profiles", required_argument, NULL, 'p'},
	                                     {"workloads", required_argument, NULL, 'w'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int concurrency = 32, opt;
	double duration = 5;
	long profiles = 1000;
	const char *workloads = "get,create,mixed";
	bench b = {0};
	slot *slots;

	optind = 0; /* full reset: the global options were parsed with "+" */
	while ((opt = getopt_long(argc, argv, "n:d:p:w:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			concurrency = atoi(optarg);
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 'p':
			profiles = atol(optarg);
			break;
		case 'w':
			workloads = optarg;
			break;
		case 'h':
			printf("usage: profilectl bench [--concurrency N] [--duration SECONDS] [--profiles N]\n"
			       "                        [--workloads get,create,mixed]\n");
			return 0;
		default:
			fprintf(stderr, "try 'profilectl bench --help'\n");
			return 2;
		}
	}
	if (concurrency < 1 || concurrency > 4096 || duration <= 0 || duration > 3600 || profiles < 1 ||
	    profiles > 10000000 || optind != argc || !workloads_valid(workloads)) {
		fprintf(stderr, "profilectl bench: --concurrency 1..4096, --duration 0..3600 s, --profiles "
		                "1..10000000, --workloads a comma-separated list of get, create, mixed\n");
		return 2;
	}
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	b.c = c;
	b.seed = (unsigned)now_us();
	b.lat_cap = 16u << 20;
	b.lat = malloc(b.lat_cap * sizeof *b.lat);
	b.uids = malloc((size_t)profiles * sizeof *b.uids);
	slots = calloc((size_t)concurrency, sizeof *slots);
	if (!b.lat || !b.uids || !slots) {
		fprintf(stderr, "RESOURCE_EXHAUSTED: out of memory\n");
		return 1;
	}

	b.want = (size_t)profiles;
	run(&b, W_FILL, concurrency < profiles ? concurrency : (int)profiles, 3600, slots);
	if (b.nuids == 0) {
		fprintf(stderr, "UNAVAILABLE: could not create any profile to read (%llu errors)\n",
		        (unsigned long long)b.errors);
		return 1;
	}
	printf("profilectl bench: %d calls in flight, %.1f s per workload, %zu profiles\n", concurrency,
	       duration, b.nuids);
	printf("%-12s %10s %10s %9s %9s %9s %8s\n", "workload", "ops", "ops/s", "p50 ms", "p99 ms",
	       "p99.9 ms", "errors");
	if (has_workload(workloads, "get")) {
		run(&b, W_GET, concurrency, duration, slots);
		report(&b, "get");
	}
	if (has_workload(workloads, "create")) {
		run(&b, W_CREATE, concurrency, duration, slots);
		report(&b, "create");
	}
	if (has_workload(workloads, "mixed")) {
		run(&b, W_MIXED, concurrency, duration, slots);
		report(&b, "mixed 90/10");
	}
	free(slots);
	free(b.uids);
	free(b.lat);
	pthread_mutex_destroy(&b.mu);
	pthread_cond_destroy(&b.cv);
	return 0;
}
