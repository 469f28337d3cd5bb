/* main.c: profilectl, the command line of the profile service.
 *
 * Every command prints its results as JSON, one object per line, on stdout;
 * on failure it prints nothing on stdout, one line on stderr naming the
 * status (e.g. "NOT_FOUND: no profile with this uid") and exits 1 (2 for a
 * usage error). It uses only the public libprofile-client API, except watch,
 * which reads Kafka directly.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profilectl.h"

#define DEFAULT_CORE "tcp://127.0.0.1:7001"

static const char usage[] = "usage: profilectl [--core ADDR]... [--timeout SECONDS] [--tls-ca FILE --tls-cert FILE\n"
                            "                  --tls-key FILE] COMMAND [ARGS]\n"
                            "\n"
                            "The command line of the profile service: talks to core nodes over nng with\n"
                            "libprofile-client, or follows the Kafka topic (watch).\n"
                            "\n"
                            "commands:\n"
                            "  create [--idempotency-key K] USERNAME EMAIL\n"
                            "                                        create a profile\n"
                            "  get [--min-position P[,P...]] [--max-stale SECONDS] UID\n"
                            "                                        print a profile\n"
                            "  update UID [--username U] [--email E] [--if-version N]\n"
                            "                                        change a profile\n"
                            "  delete UID [--if-version N]           delete a profile\n"
                            "  search [--min-position P[,P...]] [--max-stale SECONDS] EMAIL\n"
                            "                                        print the profiles with this email\n"
                            "  watch --brokers LIST [--from-beginning] [--topic NAME] [-X KEY=VALUE]...\n"
                            "                                        print every change on the topic\n"
#ifndef PROFILECTL_WATCH
                            "                                        (not in this build: no librdkafka)\n"
#endif
                            "  bench [--concurrency N] [--duration SECONDS] [--profiles N]\n"
                            "        [--workloads get,create,mixed]\n"
                            "                                        measure get, create and a 90/10 mix\n"
                            "\n"
                            "options:\n"
                            "  -c, --core ADDR      core node address, repeatable; default $PROFILE_CORE\n"
                            "                       (space-separated) or " DEFAULT_CORE "\n"
                            "  -t, --timeout S      deadline of each call in seconds (default 5)\n"
                            "  --tls-ca FILE        for tls+tcp:// cores: the cluster's CA certificate,\n"
                            "                       PEM (default $PROFILE_TLS_CA)\n"
                            "  --tls-cert FILE      this client's certificate, PEM, signed by that CA\n"
                            "                       (default $PROFILE_TLS_CERT)\n"
                            "  --tls-key FILE       its private key, PEM (default $PROFILE_TLS_KEY)\n"
                            "  -h, --help           this help; 'profilectl COMMAND --help' for a command's\n"
                            "  --version            print the version and exit\n"
                            "\n"
                            "Results are JSON lines on stdout. Failures print one line on stderr,\n"
                            "STATUS: message, and exit 1 (2 for usage errors).\n";

static const struct {
	const char *name;
	const char *help;
} command_help[] = {
    {"create", "usage: profilectl create [--idempotency-key K] USERNAME EMAIL\n\n"
               "Creates a profile and prints it, with the \"position\" its record landed\n"
               "at (for --min-position). USERNAME: 1-64 characters, no control characters.\n"
               "EMAIL: local@domain with a dot in the domain.\n"
               "--idempotency-key K (1-255 printable ASCII characters): repeating the\n"
               "command with the same K, USERNAME and EMAIL prints the profile the first\n"
               "one made instead of making another (and a lost answer is retried).\n"},
    {"get", "usage: profilectl get [--min-position P[,P...]] [--max-stale SECONDS] UID\n\n"
            "Prints the profile with this uid.\n"
            "--min-position: answered only by a replica that has applied these positions (the\n"
            "\"position\" a create or update printed), waiting for them within the timeout:\n"
            "a write made through any node is then seen.\n"
            "--max-stale: when the owner cannot answer, a standby whose copy trails the log by\n"
            "at most SECONDS may; the profile then carries \"age\" and \"lag\".\n"},
    {"update", "usage: profilectl update UID [--username U] [--email E] [--if-version N]\n\n"
               "Changes the username and/or email (at least one) and prints the whole\n"
               "profile. --if-version N: only if the profile's version is N\n"
               "(else FAILED_PRECONDITION and nothing changes).\n"},
    {"delete", "usage: profilectl delete UID [--if-version N]\n\n"
               "Deletes the profile and prints {\"uid\":...,\"deleted\":true,\"position\":...}.\n"
               "--if-version N: only if the profile's version is N.\n"},
    {"search", "usage: profilectl search [--min-position P[,P...]] [--max-stale SECONDS] EMAIL\n\n"
               "Prints every profile with this email (compared case-insensitively), most\n"
               "recently updated first; nothing when there is none.\n"
               "--min-position, --max-stale: as for get.\n"}, 
    {"watch", "usage: profilectl watch --brokers LIST [--from-beginning] [--topic NAME]\n"
              "                        [-X KEY=VALUE]...\n\n"
              "Follows the profiles topic in Kafka and prints every change as one JSON line,\n"
              "{\"op\":\"create|update|delete\",\"uid\",\"profile\",\"partition\",\"offset\"}\n"
              "(profile is null for a delete). Starts at the end of the topic, or at its\n"
              "beginning with --from-beginning. --brokers defaults to $PROFILE_BROKERS.\n"
              "-X sets a librdkafka property. SIGINT or SIGTERM end it (exit 0).\n"},
    {"bench", "usage: profilectl bench [--concurrency N] [--duration SECONDS] [--profiles N]\n"
              "                        [--workloads get,create,mixed]\n\n"
              "Keeps N calls in flight (default 32) from one thread and reports ops/s and\n"
              "p50/p99/p99.9 latency for: get of existing profiles, create, and a 90/10\n"
              "mix of gets and updates, each for SECONDS (default 5); --workloads runs\n"
              "only those named. --profiles: how many profiles to create first for the\n"
              "reads (default 1000).\n"},
};

static int
help_for(const char *cmd)
{
	for (size_t i = 0; i < sizeof command_help / sizeof command_help[0]; i++)
		if (strcmp(command_help[i].name, cmd) == 0) {
			fputs(command_help[i].help, stdout);
			return 0;
		}
	fputs(usage, stdout);
	return 0;
}

static int
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "profilectl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\ntry 'profilectl --help'\n");
	return 2;
}

static int
fail(int status)
{
	const char *msg = profile_last_message();

	fprintf(stderr, "%s: %s\n", profile_status_name(status), msg[0] ? msg : profile_strerror(status));
	return 1;
}

int
print_profile(const profile_info *p)
{
	if (jsonl_profile_fields(stdout, p->uid, p->username, p->email, p->version, p->created_at,
	                         p->updated_at, p->position) != 0)
		return -1;
	if (p->stale)
		printf(",\"age\":%u,\"lag\":%lld", (unsigned)p->age_s, (long long)p->lag);
	fputs("}\n", stdout);
	fflush(stdout);
	return 0;
}

/* Parses "--if-version N" style numbers (> 0). */
static int
parse_version(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0 || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

/* Per-command option parsing: returns the index of the first operand, or
 * -1 after printing help, -2 on a usage error. */
static int
command_options(int argc, char **argv, const char **username, const char **email, uint64_t *version,
                const char **idem, profile_read_options *ro)
{
	static const struct option opts[] = {{"username", required_argument, NULL, 'u'},
	                                     {"email", required_argument, NULL, 'e'},
	                                     {"if-version", required_argument, NULL, 'v'},
	                                     {"idempotency-key", required_argument, NULL, 'k'},
	                                     {"min-position", required_argument, NULL, 'm'},
	                                     {"max-stale", required_argument, NULL, 's'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int c;
	uint64_t stale = 0;

	optind = 0; /* full reset: the global options were parsed with "+" */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			if (!username)
				goto bad;
			*username = optarg;
			break;
		case 'e':
			if (!email)
				goto bad;
			*email = optarg;
			break;
		case 'k':
			if (!idem)
				goto bad;
			*idem = optarg;
			break;
		case 'm':
			if (!ro)
				goto bad;
			ro->min_positions = optarg;
			break;
		case 's':
			if (!ro || parse_version(optarg, &stale) != 0 || stale > UINT32_MAX) {
				if (ro && strcmp(optarg, "0") == 0) {
					stale = 0; /* only a copy at the log end */
				} else {
					usage_error("--max-stale wants a number of seconds, not '%s'", optarg);
					return -2;
				}
			}
			ro->allow_stale = 1;
			ro->max_stale_s = (uint32_t)stale;
			break;
		case 'v':
			if (!version || parse_version(optarg, version) != 0) {
				usage_error("--if-version wants a version number (1, 2, ...), not '%s'",
				            optarg);
				return -2;
			}
			break;
		case 'h':
			help_for(argv[0]);
			return -1;
		default:
			goto bad;
		}
	}
	return optind;
bad:
	usage_error("%s: unknown option (see --help)", argv[0]);
	return -2;
}

static int
want_operands(int argc, int first, int n, const char *cmd)
{
	if (argc - first != n) {
		usage_error("%s: wrong number of arguments (see --help)", cmd);
		return -1;
	}
	return 0;
}

static int
run(profile_client *c, uint32_t deadline_ms, int argc, char **argv)
{
	const char *cmd = argv[0], *username = NULL, *email = NULL, *idem = NULL;
	profile_read_options ro = {0};
	uint64_t version = PROFILE_ANY_VERSION;
	profile_info *p = NULL;
	profile_list *l = NULL;
	int first, rc;

	if (strcmp(cmd, "bench") == 0)
		return bench_main(c, argc, argv);
	if (strcmp(cmd, "update") == 0)
		first = command_options(argc, argv, &username, &email, &version, NULL, NULL);
	else if (strcmp(cmd, "delete") == 0)
		first = command_options(argc, argv, NULL, NULL, &version, NULL, NULL);
	else if (strcmp(cmd, "create") == 0)
		first = command_options(argc, argv, NULL, NULL, NULL, &idem, NULL);
	else if (strcmp(cmd, "get") == 0 || strcmp(cmd, "search") == 0)
		first = command_options(argc, argv, NULL, NULL, NULL, NULL, &ro);
	else
		first = command_options(argc, argv, NULL, NULL, NULL, NULL, NULL);
	if (first < 0)
		return first == -1 ? 0 : 2;

	if (strcmp(cmd, "create") == 0) {
		if (want_operands(argc, first, 2, cmd))
			return 2;
		rc = profile_create_idempotent(c, argv[first], argv[first + 1], idem, deadline_ms, &p);
	} else if (strcmp(cmd, "get") == 0) {
		if (want_operands(argc, first, 1, cmd))
			return 2;
		rc = profile_get_with(c, argv[first], &ro, deadline_ms, &p);
	} else if (strcmp(cmd, "update") == 0) {
		if (want_operands(argc, first, 1, cmd))
			return 2;
		if (!username && !email)
			return usage_error("%s: give --username and/or --email", cmd);
		rc = profile_update(c, argv[first], username, email, version, deadline_ms, &p);
	} else if (strcmp(cmd, "delete") == 0) {
		if (want_operands(argc, first, 1, cmd))
			return 2;
		char position[PROFILE_POSITION_SIZE];

		if ((rc = profile_delete_at(c, argv[first], version, deadline_ms, position)) == PROFILE_OK) {
			fputs("{\"uid\":", stdout);
			if (jsonl_string(stdout, argv[first]) != 0)
				fputs("null", stdout); /* the service took it, so this cannot happen */
			fputs(",\"deleted\":true", stdout);
			if (position[0]) {
				fputs(",\"position\":", stdout);
				jsonl_string(stdout, position);
			}
			fputs("}\n", stdout);
			return 0;
		}
	} else if (strcmp(cmd, "search") == 0) {
		if (want_operands(argc, first, 1, cmd))
			return 2;
		if ((rc = profile_search_with(c, argv[first], &ro, deadline_ms, &l)) == PROFILE_OK) {
			for (size_t i = 0; i < l->count; i++)
				print_profile(l->items[i]);
			profile_list_free(l);
			return 0;
		}
	} else {
		return usage_error("unknown command '%s'", cmd);
	}
	if (rc != PROFILE_OK)
		return fail(rc);
	print_profile(p);
	profile_free(p);
	return 0;
}

/* Splits $PROFILE_CORE on whitespace or commas into list (adding to *n);
 * returns the copy the list points into, for the caller to free. */
static char *
cores_from_env(const char **list, size_t max, size_t *n)
{
	char *env = getenv("PROFILE_CORE"), *save, *tok;

	if (env == NULL || (env = strdup(env)) == NULL)
		return NULL;
	for (tok = strtok_r(env, " \t\n,", &save); tok && *n < max; tok = strtok_r(NULL, " \t\n,", &save))
		list[(*n)++] = tok;
	return env;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"core", required_argument, NULL, 'c'},
	                                     {"timeout", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"tls-ca", required_argument, NULL, 'A'},
	                                     {"tls-cert", required_argument, NULL, 'C'},
	                                     {"tls-key", required_argument, NULL, 'K'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {NULL, 0, NULL, 0}};
	const char *cores[64];
	char *env_cores = NULL;
	size_t ncores = 0;
	double timeout_s = 5.0;
	profile_client *c = NULL;
	profile_client_options copts = {0};
	int opt, rc;

	/* "+": options end at the command; the command parses its own. */
	while ((opt = getopt_long(argc, argv, "+c:t:h", opts, NULL)) != -1) {
		char *end;
		switch (opt) {
		case 'c':
			if (ncores == sizeof cores / sizeof cores[0])
				return usage_error("%s", "too many --core addresses");
			cores[ncores++] = optarg;
			break;
		case 't':
			errno = 0;
			timeout_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(timeout_s) || timeout_s <= 0 ||
			    timeout_s > 3600)
				return usage_error("--timeout wants seconds (0 < S <= 3600), not '%s'",
				                   optarg);
			break;
		case 'A':
			copts.tls_ca_file = optarg;
			break;
		case 'C':
			copts.tls_cert_file = optarg;
			break;
		case 'K':
			copts.tls_key_file = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("profilectl %s\n", PROFILE_VERSION);
			return 0;
		default:
			fprintf(stderr, "try 'profilectl --help'\n");
			return 2;
		}
	}
	if (optind >= argc)
		return usage_error("%s", "no command given");
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "help") == 0) {
		if (argc > 1)
			return help_for(argv[1]);
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[0], "watch") == 0) {
#ifdef PROFILECTL_WATCH
		return watch_main(argc, argv);
#else
		fprintf(stderr,
		        "profilectl: watch reads Kafka with librdkafka, and this profilectl was built "
		        "without it (cmake -DPROFILE_WATCH=ON)\n");
		return 2;
#endif
	}

	if (ncores == 0)
		env_cores = cores_from_env(cores, sizeof cores / sizeof cores[0], &ncores);
	if (ncores == 0)
		cores[ncores++] = DEFAULT_CORE;
	if (copts.tls_ca_file == NULL)
		copts.tls_ca_file = getenv("PROFILE_TLS_CA");
	if (copts.tls_cert_file == NULL)
		copts.tls_cert_file = getenv("PROFILE_TLS_CERT");
	if (copts.tls_key_file == NULL)
		copts.tls_key_file = getenv("PROFILE_TLS_KEY");
	copts.deadline_ms = (uint32_t)(timeout_s * 1000.0 + 0.5);
	if (copts.deadline_ms == 0)
		copts.deadline_ms = 1;
	/* Help needs no connection. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			free(env_cores);
			return help_for(argv[0]);
		}
	if ((rc = profile_client_open(&c, cores, ncores, &copts)) != PROFILE_OK) {
		fprintf(stderr, "%s: cannot use the core address(es) given%s%s\n", profile_status_name(rc),
		        profile_last_message()[0] ? ": " : "", profile_last_message());
		free(env_cores);
		return 2;
	}
	rc = run(c, 0, argc, argv);
	profile_client_close(c);
	free(env_cores);
	return rc;
}
