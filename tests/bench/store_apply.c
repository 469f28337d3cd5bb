/* store_apply.c: the restore work of a core without Kafka. Applies N
 * profile records (new uids, as after a fresh start) to a partition store
 * in batches of 1024, as the changelog's consumer thread does, and prints
 * the rate; the baseline writes the same keys and values to the same kind
 * of Kyoto Cabinet file with plain sets, one transaction per batch.
 * usage: bench-store-apply DIR N [TUNE]   (TUNE: the store's --store-tune,
 * also used for the baseline; default the store's own)
 * prints: apply_per_s kyoto_set_per_s */
#include <kclangc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "write.h"
#include "store.h"

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	size_t n, batch = 1024;
	char(*uids)[37], path[4096];
	uint8_t **vals;
	size_t *lens;
	store_record *recs;
	store *s;
	KCDB *db;
	double t0, apply_rate, set_rate;

	if (argc != 3 && argc != 4)
		return 2;
	n = (size_t)atol(argv[2]);
	uids = malloc(n * sizeof *uids);
	vals = malloc(n * sizeof *vals);
	lens = malloc(n * sizeof *lens);
	recs = malloc(batch * sizeof *recs);
	for (size_t i = 0; i < n; i++) {
		Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
		Profile__V1__ProfileEvent ev = PROFILE__V1__PROFILE_EVENT__INIT;
		char name[32], email[64];

		write_new_uid(uids[i]);
		snprintf(name, sizeof name, "user%zu", i);
		snprintf(email, sizeof email, "user%zu@bench.example", i);
		p.uid = uids[i];
		p.username = name;
		p.email = email;
		p.version = 1;
		p.created_at = p.updated_at = 1795774567267;
		ev.type = PROFILE__V1__EVENT_TYPE__CREATED;
		ev.profile = &p;
		lens[i] = profile__v1__profile_event__get_packed_size(&ev);
		vals[i] = malloc(lens[i]);
		profile__v1__profile_event__pack(&ev, vals[i]);
	}
	if (store_open(&s, argv[1], 0, argc == 4 ? argv[3] : NULL, NULL, 0) != PROFILE_OK)
		return 1;
	t0 = now();
	for (size_t i = 0; i < n; i += batch) {
		size_t k = n - i < batch ? n - i : batch;
		for (size_t j = 0; j < k; j++)
			recs[j] =
			    (store_record){(int64_t)(i + j), uids[i + j], 36, vals[i + j], lens[i + j]};
		if (store_apply(s, recs, k) != PROFILE_OK)
			return 1;
	}
	apply_rate = n / (now() - t0);
	store_close(s);

	snprintf(path, sizeof path, "%s/baseline.kch%s", argv[1], argc == 4 ? argv[3] : "#bnum=262144#msiz=0#opts=l");
	db = kcdbnew();
	if (!kcdbopen(db, path, KCOWRITER | KCOCREATE))
		return 1;
	t0 = now();
	for (size_t i = 0; i < n; i += batch) {
		size_t k = n - i < batch ? n - i : batch;
		kcdbbegintran(db, 0);
		for (size_t j = 0; j < k; j++)
			kcdbset(db, uids[i + j], 36, (const char *)vals[i + j], lens[i + j]);
		kcdbendtran(db, 1);
	}
	set_rate = n / (now() - t0);
	kcdbclose(db);
	kcdbdel(db);
	printf("%.0f %.0f\n", apply_rate, set_rate);
	return 0;
}
