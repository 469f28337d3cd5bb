/* main.c: profiled, the core daemon.
 *
 * Wires the modules together (partition table <- changelog -> service <-
 * rpc), owns the process-wide state (options, signals), and shuts down in
 * the order that loses nothing: stop taking requests, flush Kafka and let
 * the stores apply what was acknowledged, answer what is left, close.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounded.h"
#include "changelog.h"
#include "cli.h"
#include "log.h"
#include "members.h"
#include "partition.h"
#include "peers.h"
#include "rpc.h"
#include "profiles.h"
#include "write.h"
#include "service.h"
#include "tls.h"

#define SHUTDOWN_LIMIT_S 20

static const char *opt_listen, *opt_advertise, *opt_brokers, *opt_brokers_file, *opt_data, *opt_node_id,
    *opt_group, *opt_topic, *opt_members_topic, *opt_state, *opt_store_tune, *opt_log_level;
static const char *opt_fault_fence, *opt_tls_ca, *opt_tls_cert, *opt_tls_key;
static int opt_allow_plaintext;
static call_tls *node_tls; /* NULL: no TLS files given */
static long opt_partitions, opt_contexts, opt_deadline_ms, opt_max_writes, opt_keep_damaged, opt_lost_read_ms,
    opt_standbys, opt_fault_write_delay_ms;
static const char *opt_read_lease;
static long read_lease_ms; /* -1: auto, 0: off */
static const char **opt_kafka, **opt_producer, **opt_consumer;

static cli_option options[] = {
    {"listen", 'l', "PROFILED_LISTEN", CLI_STRING, "tcp://127.0.0.1:7001", "URL",
     "nng address to serve RPCs on: tls+tcp:// (mutual TLS, with the --tls files), or tcp:// on a "
     "loopback address, or ipc://",
     &opt_listen},
    {"advertise", 0, "PROFILED_ADVERTISE", CLI_STRING, NULL, "URL",
     "address other nodes and gateways reach this node at (default: --listen)", &opt_advertise},
    {"brokers", 'b', "PROFILED_BROKERS", CLI_STRING, NULL, "LIST",
     "Kafka bootstrap servers, host:port[,host:port...]", &opt_brokers},
    {"brokers-file", 0, "PROFILED_BROKERS_FILE", CLI_STRING, NULL, "FILE",
     "read the bootstrap list from FILE (as the local broker writes it)", &opt_brokers_file},
    {"data", 'd', "PROFILED_DATA", CLI_STRING, "./var/core", "DIR", "directory for the partition stores",
     &opt_data},
    {"node-id", 0, "PROFILED_NODE_ID", CLI_STRING, NULL, "ID",
     "name of this node (default: host name and advertised address)", &opt_node_id},
    {"group", 'g', "PROFILED_GROUP", CLI_STRING, "profiled", "ID", "Kafka consumer group of the nodes",
     &opt_group},
    {"topic", 't', "PROFILED_TOPIC", CLI_STRING, "profiles", "NAME", "the profiles topic", &opt_topic},
    {"members-topic", 0, "PROFILED_MEMBERS_TOPIC", CLI_STRING, "profiles.members", "NAME",
     "the membership topic (one partition, compacted)", &opt_members_topic},
    {"state", 's', "PROFILED_STATE", CLI_STRING, "partitioned", "MODE",
     "partitioned (hold the partitions this node owns) or replicated (also follow all others, "
     "read-only, so every read is local)",
     &opt_state},
    {"standbys", 0, "PROFILED_STANDBYS", CLI_INT, "0", "N",
     "partitioned mode: each partition is also followed, read-only, by the N members after its owner "
     "(in node id order); they answer reads that accept a stale copy (Cache-Control: max-stale) while "
     "the owner cannot, and take over with only the log's tail to apply",
     &opt_standbys},
    {"partitions", 'p', "PROFILED_PARTITIONS", CLI_INT, "12", "N",
     "partitions to create the topic with when it does not exist", &opt_partitions},
    {"contexts", 0, "PROFILED_CONTEXTS", CLI_INT, "64", "N", "RPC requests served at once", &opt_contexts},
    {"deadline-ms", 0, "PROFILED_DEADLINE_MS", CLI_INT, "5000", "MS",
     "deadline of a request that carries none", &opt_deadline_ms},
    {"max-writes", 0, "PROFILED_MAX_WRITES", CLI_INT, "4096", "N",
     "writes in progress at once; past it a new write is refused at once (UNAVAILABLE: 503, retry) "
     "rather than queued (0: no cap)",
     &opt_max_writes},
    {"store-tune", 0, "PROFILED_STORE_TUNE", CLI_STRING, NULL, "PARAMS",
     "Kyoto Cabinet tuning per partition; #msiz=0 is added when not given (a memory map turns a full disk "
     "into a crash) (default: #bnum=262144#msiz=0#opts=l)", &opt_store_tune},
    {"keep-damaged", 0, "PROFILED_KEEP_DAMAGED", CLI_INT, "3", "N",
     "a damaged partition store is moved aside (profiles-N.kch.damaged-TIME) and rebuilt from the log; "
     "keep the newest N such copies per partition",
     &opt_keep_damaged},
    {"lost-read-ms", 0, "PROFILED_LOST_READ_MS", CLI_INT, "0", "MS",
     "after losing its group session (Kafka away longer than session.timeout.ms), keep answering reads "
     "of the partitions it held from their stores this long; another node that took one over meanwhile "
     "may have newer writes, so this trades read-your-writes for availability (0: off)",
     &opt_lost_read_ms},
    {"read-lease", 0, "PROFILED_READ_LEASE", CLI_STRING, "auto", "MS",
     "answer reads of the partitions this node owns only within MS of sending the last request the group "
     "coordinator accepted from it as a current member (an offset commit every half heartbeat), so that a "
     "node cut off from Kafka stops before its partitions can be another's (these commits are also the "
     "group's committed offsets); MS (shorter than the session, else auto is used), or auto (the group "
     "session less two heartbeats, at least half the session), or off (no lease: then only librdkafka's "
     "own session timer stops it); partitioned state only",
     &opt_read_lease},
    {"tls-ca", 0, "PROFILED_TLS_CA", CLI_STRING, NULL, "FILE",
     "the cluster's CA certificate(s), PEM: a tls+tcp:// caller (gateway, client, other node) must "
     "present a certificate it signed, and so must every node this one forwards to",
     &opt_tls_ca},
    {"tls-cert", 0, "PROFILED_TLS_CERT", CLI_STRING, NULL, "FILE",
     "this node's certificate, PEM, signed by the CA and naming the host of --advertise; presented to "
     "callers and to the nodes it forwards to",
     &opt_tls_cert},
    {"tls-key", 0, "PROFILED_TLS_KEY", CLI_STRING, NULL, "FILE", "the certificate's private key (PEM, "
     "unencrypted; keep it readable by this user only)", &opt_tls_key},
    {"allow-plaintext", 0, "PROFILED_ALLOW_PLAINTEXT", CLI_FLAG, NULL, NULL,
     "serve plain tcp:// on a non-loopback address (anyone who reaches it can read and write every "
     "profile): only on a network that is itself private",
     &opt_allow_plaintext},
    {"kafka", 'X', "PROFILED_KAFKA", CLI_LIST, NULL, "KEY=VALUE",
     "librdkafka property for producer and consumer (repeatable)", &opt_kafka},
    {"producer", 0, "PROFILED_PRODUCER", CLI_LIST, NULL, "KEY=VALUE",
     "librdkafka property for the producer only (repeatable)", &opt_producer},
    {"consumer", 0, "PROFILED_CONSUMER", CLI_LIST, NULL, "KEY=VALUE",
     "librdkafka property for the consumer only (repeatable)", &opt_consumer},
    {"log-level", 0, "PROFILED_LOG_LEVEL", CLI_STRING, "info", "LEVEL", "error, warn, info or debug",
     &opt_log_level},
    {"fault-fence", 0, "PROFILED_FAULT_FENCE", CLI_STRING, "on", "on|off",
     "fault injection, for tests only: off writes without transactions (one idempotent producer), so "
     "a node that lost a partition can still append to it",
     &opt_fault_fence},
    {"fault-write-delay-ms", 0, "PROFILED_FAULT_WRITE_DELAY_MS", CLI_INT, "0", "MS",
     "fault injection, for tests only: hold every write this long between its last check and Kafka",
     &opt_fault_write_delay_ms},
};

static int
parse_log_level(const char *s)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* Reads the first line of the bootstrap file into buf. */
static int
read_brokers_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t len;

	if (f == NULL) {
		log_error("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(buf, (int)size, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 0) {
		log_error("%s is empty", path);
		return -1;
	}
	return 0;
}

static int
mkdirs(const char *path)
{
	char buf[4096];

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -1;
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* What a rebalance changes outside the partition table: the service's
 * write ownership, and this node's claim in the members topic. */
typedef struct node_ctx {
	service *svc;
	members *m;
} node_ctx;

static void
on_rebalanced(void *arg, const int32_t *parts, size_t n)
{
	node_ctx *ctx = arg;

	service_on_rebalanced(ctx->svc, parts, n);
	members_publish(ctx->m, parts, n);
	log_info("assignment: %zu partition(s) owned", n);
}

/* The step a stop is in, for the watchdog to name (atomic). */
static const char *stop_step = "starting to stop";

static void
shutdown_step(const char *what)
{
	__atomic_store_n(&stop_step, what, __ATOMIC_RELEASE);
}

static void *
watchdog_main(void *arg)
{
	(void)arg;
	sleep(SHUTDOWN_LIMIT_S);
	log_error("shutdown took over %d s (stuck %s); exiting now (stores are consistent: each batch is one "
	          "transaction)",
	          SHUTDOWN_LIMIT_S, __atomic_load_n(&stop_step, __ATOMIC_ACQUIRE));
	_exit(1);
}

/* --read-lease: MS (1..3600000), -1 for auto, 0 for off; -2 when invalid. */
static long
parse_lease(const char *v)
{
	char *end;
	long ms;

	if (strcmp(v, "auto") == 0)
		return -1;
	if (strcmp(v, "off") == 0)
		return 0;
	ms = strtol(v, &end, 10);
	return end != v && *end == '\0' && ms >= 1 && ms <= 3600000 ? ms : -2;
}

/* The TLS files, read when given; the listening address checked against
 * them. 0, or the exit status. */
static int
tls_check(void)
{
	char err[512];
	int tls = call_tls_url(opt_listen);

	if (tls != call_tls_url(opt_advertise)) {
		fprintf(stderr, "profiled: --listen and --advertise must both be tls+tcp:// or neither\n");
		return 2;
	}
	if (opt_tls_ca || opt_tls_cert || opt_tls_key || tls) {
		if (call_tls_load(&node_tls, opt_tls_ca, opt_tls_cert, opt_tls_key, err, sizeof err) != PROFILE_OK) {
			fprintf(stderr, "profiled: %s (--tls-ca, --tls-cert, --tls-key)\n", err);
			return 2;
		}
	}
	if (!tls && !opt_allow_plaintext && !call_url_loopback(opt_listen)) {
		fprintf(stderr,
		        "profiled: --listen %s is plain TCP on an address others can reach: anyone who reaches it "
		        "could read and write every profile. Serve tls+tcp:// with --tls-ca, --tls-cert and "
		        "--tls-key, or give --allow-plaintext on a network that is private\n",
		        opt_listen);
		return 2;
	}
	return 0;
}

/* Checks the options and fills in what they leave to be derived: the
 * broker list, the node id, the state mode. 0, or the exit status. */
static int
options_check(char *brokers, size_t bsize, char *node_id, size_t nsize, int *replicated)
{
	char host[128];
	int rc;

	if (opt_brokers_file) {
		if (read_brokers_file(opt_brokers_file, brokers, bsize) != 0)
			return 2;
	} else if (opt_brokers) {
		snprintf(brokers, bsize, "%s", opt_brokers);
	} else {
		fprintf(stderr, "profiled: give --brokers or --brokers-file (see --help)\n");
		return 2;
	}
	if (strcmp(opt_state, "partitioned") != 0 && strcmp(opt_state, "replicated") != 0) {
		fprintf(stderr, "profiled: --state must be partitioned or replicated\n");
		return 2;
	}
	*replicated = strcmp(opt_state, "replicated") == 0;
	if (opt_standbys < 0 || opt_standbys > 100 || (opt_standbys > 0 && *replicated)) {
		fprintf(stderr, "profiled: --standbys must be 0..100, and 0 in replicated mode (every node follows "
		                "everything there)\n");
		return 2;
	}
	if (opt_advertise == NULL)
		opt_advertise = opt_listen;
	if ((rc = tls_check()) != 0)
		return rc;
	if (opt_partitions < 1 || opt_partitions > 10000 || opt_contexts < 1 || opt_contexts > 4096 ||
	    opt_deadline_ms < 1 || opt_max_writes < 0 || opt_max_writes > 1000000 || opt_keep_damaged < 0 || opt_keep_damaged > 1000 || opt_lost_read_ms < 0 ||
	    opt_lost_read_ms > 3600000 || (read_lease_ms = parse_lease(opt_read_lease)) < -1) {
		fprintf(stderr, "profiled: --partitions must be 1..10000, --contexts 1..4096, --deadline-ms > 0, "
		                "--max-writes 0..1000000, --keep-damaged 0..1000, --lost-read-ms 0..3600000, "
		                "--read-lease 1..3600000, auto or off\n");
		return 2;
	}
	if ((strcmp(opt_fault_fence, "on") != 0 && strcmp(opt_fault_fence, "off") != 0) ||
	    opt_fault_write_delay_ms < 0 || opt_fault_write_delay_ms > 600000) {
		fprintf(stderr,
		        "profiled: --fault-fence must be on or off, --fault-write-delay-ms 0..600000\n");
		return 2;
	}
	if (opt_node_id == NULL) {
		if (gethostname(host, sizeof host) != 0)
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
		snprintf(node_id, nsize, "%s/%s", host, opt_advertise);
		opt_node_id = node_id;
	}
	if (mkdirs(opt_data) != 0) {
		log_error("cannot create %s: %s", opt_data, strerror(errno));
		return 1;
	}
	return 0;
}

/* Every part of a running node. */
typedef struct node_parts {
	changelog *cl;
	partitions *table;
	service *svc;
	members *mem;
	peers *rt;
	rpc_server *rpc;
	node_ctx ctx;
} node_parts;

/* Opens the parts in dependency order: Kafka, the stores, the service, the
 * membership and peers, the RPC socket; then joins the group. 0, or the
 * exit status (what was opened is left in n for parts_abort). */
static int
parts_open(node_parts *n, const char *brokers, int replicated)
{
	changelog_config cc = {.brokers = brokers,
	                       .topic = opt_topic,
	                       .group = opt_group,
	                       .client_id = opt_node_id,
	                       .partitions = (int32_t)opt_partitions,
	                       .kafka_opts = opt_kafka,
	                       .producer_opts = opt_producer,
	                       .consumer_opts = opt_consumer,
	                       /* Standbys: the replicated layout, following a set. */
	                       .replicated = replicated || opt_standbys > 0,
	                       .transactional = strcmp(opt_fault_fence, "off") != 0};
	service_config sc = {.node_id = opt_node_id,
	                     .address = opt_advertise,
	                     .default_deadline_ms = (uint32_t)opt_deadline_ms,
	                     .max_deadline_ms = 60000,
	                     .replicated = replicated,
	                     .standbys = (int)opt_standbys,
	                     .max_writes = (uint32_t)opt_max_writes,
	                     .fault_no_fence = strcmp(opt_fault_fence, "off") == 0,
	                     .fault_write_delay_ms = (uint32_t)opt_fault_write_delay_ms};
	members_config mc = {.brokers = brokers,
	                     .topic = opt_members_topic,
	                     .node_id = opt_node_id,
	                     .address = opt_advertise,
	                     .kafka_opts = opt_kafka,
	                     .consumer_opts = opt_consumer};
	/* rebalanced takes the node, the rest the table. */
	changelog_handler h = {.assigned = partitions_on_assigned,
	                       .revoked = partitions_on_revoked,
	                       .records = partitions_on_records,
	                       .acked = partitions_on_acked,
	                       .caught_up = partitions_on_caught_up,
	                       .idle = partitions_on_idle,
	                       .rebalanced = on_rebalanced,
	                       .rebalanced_arg = &n->ctx};
	partition_hooks ph = {
	    .need_fence = service_write_fence, .release = service_release};
	char dir[4096];
	int rc;

	if ((rc = changelog_open(&n->cl, &cc)) != PROFILE_OK)
		return rc == PROFILE_INVALID_ARGUMENT ? 2 : 1;
	mc.partitions = changelog_partition_count(n->cl);
	snprintf(dir, sizeof dir, "%s/store", opt_data);
	if (partitions_new(&n->table, dir, opt_store_tune, changelog_partition_count(n->cl)) != PROFILE_OK ||
	    service_new(&n->svc, &sc, n->table) != PROFILE_OK)
		return 1;
	service_attach(n->svc, n->cl);
	partitions_set_keep_damaged(n->table, (int)opt_keep_damaged);
	partitions_set_lost_read_ms(n->table, (int)opt_lost_read_ms);
	ph.arg = n->svc;
	partitions_set_hooks(n->table, &ph, !sc.fault_no_fence);
	if (members_open(&n->mem, &mc) != PROFILE_OK || peers_new(&n->rt, n->mem, opt_node_id, node_tls) != PROFILE_OK)
		return 1;
	service_attach_peers(n->svc, n->rt);
	if ((rc = rpc_server_open(&n->rpc, opt_listen, (int)opt_contexts, n->svc, node_tls)) != PROFILE_OK) {
		log_error("cannot serve on %s (%s)", opt_listen, profile_status_name(rc));
		return 1;
	}
	n->ctx.svc = n->svc;
	n->ctx.m = n->mem;
	h.arg = n->table;
	if (opt_standbys > 0) {
		h.follows = service_follows;
		h.follows_arg = n->svc;
	}
	changelog_watch_stalls(n->cl, partitions_stall(n->table), read_lease_ms);
	return changelog_start(n->cl, &h) == PROFILE_OK ? 0 : 1;
}

static void
close_peers(void *rt)
{
	peers_free(rt);
}

static void
close_changelog(void *cl)
{
	changelog_close(cl, 10000);
}

/* A clean stop:
 * 1. New requests are turned away (UNAVAILABLE: not executed), and every
 *    answer tells callers this node is going away.
 * 2. Kafka gets what was produced; the stores apply it; the group is
 *    left, which wakes every write still waiting for its apply.
 * 3. The members topic hears that this node left.
 * 4. Peer channels close; whatever is still pending is answered.
 * 5. Once callers stopped sending, the socket closes (bounded); the stores
 *    close. */
static void
parts_stop(node_parts *n)
{
	int kafka_closed, peers_closed;

	shutdown_step("turning requests away");
	rpc_server_drain(n->rpc);
	/* Flushing is bounded (10 s); leaving the group is not, in
	 * librdkafka: bound the whole. */
	shutdown_step("closing Kafka (flush, leave the group)");
	kafka_closed = bounded_run(close_changelog, n->cl, 12000, "closing Kafka");
	shutdown_step("leaving the membership");
	members_close(n->mem, 2000);
	/* Closing peer channels may hang in nng 1.5.2: never past 2 s. They
	 * close before the service goes: a gather or scatter still in flight
	 * (a cluster view, a search) completes into the service. */
	shutdown_step("closing the peer channels");
	peers_closed = bounded_run(close_peers, n->rt, 2000, "closing the peer channels");
	if (kafka_closed && peers_closed) {
		shutdown_step("answering what is pending");
		rpc_server_detach(n->rpc);
		service_free(n->svc);
	}
	shutdown_step("closing the RPC socket");
	rpc_server_quiesce(n->rpc, 100, 1000);
	rpc_server_close(n->rpc, 2000);
	/* With Kafka's threads perhaps still running, the service and the
	 * stores are left to the exit (each store batch is one transaction:
	 * as after a kill -9, they reopen consistent). */
	if (kafka_closed) {
		shutdown_step("closing the stores");
		partitions_free(n->table);
	}
}

/* After a failed start: closes whatever was opened. */
static void
parts_abort(node_parts *n)
{
	rpc_server_close(n->rpc, 2000);
	changelog_close(n->cl, 1000);
	members_close(n->mem, 0);
	service_free(n->svc);
	peers_free(n->rt);
	partitions_free(n->table);
}

int
main(int argc, char **argv)
{
	char brokers[4096], node_id[256];
	node_parts n = {0};
	int replicated = 0;
	sigset_t sigs;
	pthread_t watchdog;
	int rc, sig, level;

	log_set_name("profiled");
	rc = cli_parse(argc, argv, "profiled [OPTIONS]",
	               "The profile service's core node: serves profile RPCs over nng, writes\n"
	               "every change to the Kafka topic and answers from its partitions' stores.",
	               options, sizeof options / sizeof options[0]);
	if (rc)
		return rc == 1 ? 0 : 2;
	if ((level = parse_log_level(opt_log_level)) < 0) {
		fprintf(stderr, "profiled: --log-level must be error, warn, info or debug\n");
		return 2;
	}
	log_set_level(level);
	if ((rc = options_check(brokers, sizeof brokers, node_id, sizeof node_id, &replicated)) != 0)
		return rc;

	/* Signals go to this thread only (sigwait below); every thread made
	 * from here on inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = parts_open(&n, brokers, replicated)) != 0) {
		parts_abort(&n);
		return rc;
	}
	log_info("node %s serving on %s (advertised as %s, %s); topic %s has %d partitions; joining group %s",
	         opt_node_id, opt_listen, opt_advertise, opt_state, opt_topic,
	         (int)changelog_partition_count(n.cl), opt_group);

	sigwait(&sigs, &sig);
	log_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	pthread_create(&watchdog, NULL, watchdog_main, NULL);
	pthread_detach(watchdog);
	parts_stop(&n);
	log_info("stopped");
	return 0;
}
