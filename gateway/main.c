/* main.c: profile-gateway, the REST front of the profile service.
 *
 * Stateless: it holds no data, only a channel to the core nodes; it can be
 * restarted or scaled freely.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bounded.h"
#include "cli.h"
#include "http.h"
#include "log.h"
#include "tls.h"
#include "tokens.h"

static const char *opt_address, *opt_log_level, *opt_tokens;
static int opt_protect_ops, opt_allow_plaintext;
static const char *opt_https_cert, *opt_https_key, *opt_tls_ca, *opt_tls_cert, *opt_tls_key;
static const char **opt_cores;
static long opt_port, opt_threads, opt_timeout_ms, opt_conn_timeout, opt_max_conn, opt_max_per_source,
    opt_max_waiting;

static cli_option options[] = {
    {"address", 'a', "PROFILE_GATEWAY_ADDRESS", CLI_STRING, "127.0.0.1", "IP",
     "IPv4 address to listen on; other than a loopback one, with --https-cert (or --allow-plaintext)",
     &opt_address},
    {"port", 'p', "PROFILE_GATEWAY_PORT", CLI_INT, "8080", "PORT", "HTTP port", &opt_port},
    {"core", 'c', "PROFILE_GATEWAY_CORES", CLI_LIST, NULL, "URL",
     "core node RPC address, tcp://, ipc:// or tls+tcp:// (repeatable; the variable takes a "
     "space-separated list)",
     &opt_cores},
    {"https-cert", 0, "PROFILE_GATEWAY_HTTPS_CERT", CLI_STRING, NULL, "FILE",
     "serve HTTPS (only) with this certificate, PEM (its chain after it)", &opt_https_cert},
    {"https-key", 0, "PROFILE_GATEWAY_HTTPS_KEY", CLI_STRING, NULL, "FILE",
     "the HTTPS certificate's private key (PEM, unencrypted)", &opt_https_key},
    {"tls-ca", 0, "PROFILE_GATEWAY_TLS_CA", CLI_STRING, NULL, "FILE",
     "for tls+tcp:// cores: the cluster's CA certificate(s), PEM, that signed every core's certificate",
     &opt_tls_ca},
    {"tls-cert", 0, "PROFILE_GATEWAY_TLS_CERT", CLI_STRING, NULL, "FILE",
     "for tls+tcp:// cores: the gateway's own certificate, PEM, signed by that CA", &opt_tls_cert},
    {"tls-key", 0, "PROFILE_GATEWAY_TLS_KEY", CLI_STRING, NULL, "FILE",
     "for tls+tcp:// cores: that certificate's private key (PEM, unencrypted)", &opt_tls_key},
    {"allow-plaintext", 0, "PROFILE_GATEWAY_ALLOW_PLAINTEXT", CLI_FLAG, NULL, NULL,
     "serve plain HTTP on a non-loopback --address (requests, tokens and profiles readable on the "
     "wire): behind a proxy that terminates TLS, on a private network",
     &opt_allow_plaintext},
    {"timeout-ms", 0, "PROFILE_GATEWAY_TIMEOUT_MS", CLI_INT, "5000", "MS",
     "deadline of each call to the core", &opt_timeout_ms},
    {"threads", 0, "PROFILE_GATEWAY_THREADS", CLI_INT, "2", "N", "HTTP polling threads", &opt_threads},
    {"connection-timeout", 0, "PROFILE_GATEWAY_CONNECTION_TIMEOUT", CLI_INT, "30", "SECONDS",
     "close idle or stalled client connections after this long", &opt_conn_timeout},
    {"max-connections", 0, "PROFILE_GATEWAY_MAX_CONNECTIONS", CLI_INT, "4096", "N",
     "client connections at once; more wait, unanswered, in the kernel's listen queue until one closes",
     &opt_max_conn},
    {"max-connections-per-source", 0, "PROFILE_GATEWAY_MAX_CONNECTIONS_PER_SOURCE", CLI_INT, "512", "N",
     "client connections at once from one IP address; more are closed at once (0: no cap)",
     &opt_max_per_source},
    {"max-waiting", 0, "PROFILE_GATEWAY_MAX_WAITING", CLI_INT, "2048", "N",
     "reads, and apart writes, waiting for a core at once; past it a request is answered 503 at once "
     "(0: no cap)",
     &opt_max_waiting},
    {"log-level", 0, "PROFILE_GATEWAY_LOG_LEVEL", CLI_STRING, "info", "LEVEL", "error, warn, info or debug",
     &opt_log_level},
    {"tokens", 0, "PROFILE_GATEWAY_TOKENS", CLI_STRING, NULL, "FILE",
     "bearer tokens, one per line: TOKEN read|write [NAME]; with them, a request without a valid token "
     "is 401 and a write with a read token 403 (/healthz and /readyz stay open)",
     &opt_tokens},
    {"protect-operations", 0, "PROFILE_GATEWAY_PROTECT_OPERATIONS", CLI_FLAG, NULL, NULL,
     "with --tokens: /api/cluster, /metrics, the cluster page and /openapi.json want a token too",
     &opt_protect_ops},
};

/* The HTTPS certificate and key, read when given; plain HTTP only on a
 * loopback address unless allowed. 0, or the exit status. */
static int
https_load(char **cert, char **key)
{
	char err[512];

	*cert = *key = NULL;
	if ((opt_https_cert == NULL) != (opt_https_key == NULL)) {
		fprintf(stderr, "profile-gateway: HTTPS wants both --https-cert and --https-key\n");
		return 2;
	}
	if (opt_https_cert == NULL) {
		if (!opt_allow_plaintext && !call_host_loopback(opt_address)) {
			fprintf(stderr,
			        "profile-gateway: --address %s serves plain HTTP to others: requests, tokens and "
			        "profiles would cross the network readable. Give --https-cert and --https-key, or "
			        "--allow-plaintext behind a proxy that terminates TLS\n",
			        opt_address);
			return 2;
		}
		return 0;
	}
	if ((*cert = call_tls_read_pem("HTTPS certificate", opt_https_cert, err, sizeof err)) == NULL ||
	    (*key = call_tls_read_pem("HTTPS key", opt_https_key, err, sizeof err)) == NULL) {
		fprintf(stderr, "profile-gateway: %s\n", err);
		call_tls_free_pem(*cert);
		*cert = NULL;
		return 2;
	}
	return 0;
}

static void
close_client(void *client)
{
	profile_client_close(client);
}

/* Every connection is a descriptor: the soft limit (1024 on many systems)
 * is raised as far as the hard one allows, so that --max-connections is
 * reached before accept() fails. */
static void
raise_fd_limit(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want)
		log_warn("open files limited to %llu (ulimit -n): fewer than --max-connections can be served",
		         (unsigned long long)rl.rlim_cur);
}

int
main(int argc, char **argv)
{
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	profile_client *client = NULL;
	http_server *srv = NULL;
	sigset_t sigs;
	size_t ncores = 0;
	int rc, sig, level = -1;
	token_table *tokens = NULL;
	char *https_cert = NULL, *https_key = NULL;
	profile_client_options copts = {0};

	log_set_name("gateway");
	rc = cli_parse(argc, argv, "profile-gateway --core URL [OPTIONS]",
	               "The profile service's REST API: turns each HTTP request into one RPC to a\n"
	               "core node and its answer into JSON.",
	               options, sizeof options / sizeof options[0]);
	if (rc)
		return rc == 1 ? 0 : 2;
	for (int i = 0; i < 4; i++)
		if (strcmp(opt_log_level, levels[i]) == 0)
			level = i;
	if (level < 0 || opt_cores == NULL || opt_port < 1 || opt_port > 65535 || opt_timeout_ms < 1 ||
	    opt_threads < 1 || opt_threads > 64 || opt_conn_timeout < 1 || opt_conn_timeout > 86400 ||
	    opt_max_conn < 1 || opt_max_conn > 1000000 || opt_max_per_source < 0 || opt_max_per_source > 1000000 ||
	    opt_max_waiting < 0 || opt_max_waiting > 1000000) {
		fprintf(stderr, "profile-gateway: needs --core URL, a --port of 1..65535, --timeout-ms > 0, "
		                "--threads 1..64, --connection-timeout 1..86400, --max-connections 1..1000000, "
		                "--max-connections-per-source and --max-waiting 0..1000000 and a known --log-level "
		                "(see --help)\n");
		return 2;
	}
	if (opt_tokens != NULL) {
		char why[512];
		if ((rc = tokens_load(&tokens, opt_tokens, why, sizeof why)) != PROFILE_OK) {
			fprintf(stderr, "profile-gateway: --tokens: %s\n", why);
			return 2;
		}
	} else if (opt_protect_ops) {
		fprintf(stderr, "profile-gateway: --protect-operations wants --tokens\n");
		return 2;
	}
	copts.tls_ca_file = opt_tls_ca;
	copts.tls_cert_file = opt_tls_cert;
	copts.tls_key_file = opt_tls_key;
	if ((rc = https_load(&https_cert, &https_key)) != 0) {
		tokens_free(tokens);
		return rc;
	}
	raise_fd_limit((rlim_t)opt_max_conn + 256);
	log_set_level(level);
	while (opt_cores[ncores])
		ncores++;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = profile_client_open(&client, opt_cores, ncores, &copts)) != PROFILE_OK) {
		log_error("cannot use the core addresses given (%s: %s)", profile_status_name(rc),
		          profile_last_message());
		tokens_free(tokens);
		call_tls_free_pem(https_cert);
		call_tls_free_pem(https_key);
		return 2;
	}
	{
		http_config hc = {
		    .address = opt_address,
		    .port = (uint16_t)opt_port,
		    .threads = (unsigned)opt_threads,
		    .connection_timeout_s = (unsigned)opt_conn_timeout,
		    .max_connections = (unsigned)opt_max_conn,
		    .max_per_source = (unsigned)opt_max_per_source,
		    .max_waiting = (unsigned)opt_max_waiting,
		    .call_timeout_ms = (uint32_t)opt_timeout_ms,
		    .tokens = tokens,
		    .protect_operations = opt_protect_ops,
		    .cores = opt_cores,
		    .n_cores = ncores,
		    .https_cert = https_cert,
		    .https_key = https_key,
		};
		if ((rc = http_server_open(&srv, &hc, client)) != PROFILE_OK) {
			log_error("cannot listen on %s:%ld (%s)", opt_address, opt_port,
			          rc == PROFILE_INVALID_ARGUMENT ? "bad address" : "in use or not allowed");
			profile_client_close(client);
			tokens_free(tokens);
			call_tls_free_pem(https_cert);
			call_tls_free_pem(https_key);
			return 1;
		}
	}
	log_info("serving %s://%s:%ld/ for %zu core node(s)%s", https_cert ? "https" : "http", opt_address, opt_port,
	         ncores,
	         tokens ? (opt_protect_ops ? "; bearer tokens wanted, operations too" : "; bearer tokens wanted")
	                : "");
	sigwait(&sigs, &sig);
	log_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	http_server_close(srv);
	/* Closing the channels to the cores may hang in nng 1.5.2: never
	 * past 2 s. */
	bounded_run(close_client, client, 2000, "closing the channels to the cores");
	tokens_free(tokens);
	call_tls_free_pem(https_cert);
	call_tls_free_pem(https_key);
	log_info("stopped");
	return 0;
}
