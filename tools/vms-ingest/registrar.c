/*
 * registrar.c: the database thread (see registrar.h).
 *
 * Only this thread uses its connection.  The queue, the backlog count and
 * the flags are shared with the capture thread under one mutex; no libpq
 * call is made with it held.  An item leaves the queue once the database
 * has answered it: registered, or refused for good (logged; the file stays
 * on disk).  A lost connection or a transient error keeps it at the head.
 */
#define _GNU_SOURCE				/* pthread_condattr_setclock with -std=c99 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "config.h"
#include "log.h"
#include "purge.h"
#include "registrar.h"

#define ITEM_SEGMENT	1
#define ITEM_GAP		2
#define ITEM_STATUS		3
#define PURGE_BATCH		1000
#define CANCEL_GRACE_US	2000000LL

typedef struct Item
{
	int			kind;
	SegmentInfo seg;
	int64_t		from_ms;		/* gap */
	int64_t		until_ms;
	char		word[32];		/* gap reason, or status state */
	char	   *detail;			/* status */
	struct Item *next;
} Item;

struct Registrar
{
	RegistrarOptions o;
	pthread_t	thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* new item, or stop */
	pthread_cond_t finished;
	Item	   *head;
	Item	   *tail;
	Item	   *inflight;		/* head, while the database works on it */
	int			count;
	int64_t		backlog;
	int			stopping;
	int			done;
	int64_t		drain_deadline;
	PGcancel   *cancel;			/* for registrar_stop() when a call hangs */
	volatile sig_atomic_t purge_stop;	/* purge_camera() checks it between files */
	PGconn	   *conn;			/* the thread's own */
};

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Waits on cond until the monotonic time until_us (lock held). */
static void
wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t until_us)
{
	struct timespec ts;

	ts.tv_sec = (time_t) (until_us / 1000000);
	ts.tv_nsec = (long) (until_us % 1000000) * 1000;
	pthread_cond_timedwait(cond, lock, &ts);
}

int64_t
backoff_delay_us(int attempt, int max_s)
{
	int64_t		max_us = (int64_t) (max_s > 0 ? max_s : 1) * 1000000;
	int64_t		d = 1000000;
	uint32_t	rnd;

	while (attempt-- > 0 && d < max_us)
		d *= 2;
	if (d > max_us)
		d = max_us;
	/* +-20 %, so that many workers that lost the same camera or database spread out. */
	if (RAND_bytes((unsigned char *) &rnd, sizeof(rnd)) == 1)
		d = (int64_t) ((double) d * (0.8 + 0.4 * ((double) rnd / 4294967296.0)));
	return d;
}

static void
item_free(Item *it)
{
	if (it != NULL)
		free(it->detail);
	free(it);
}

/* Transient: worth trying again on a fresh connection. */
static int
transient(PGconn *conn, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(conn) != CONNECTION_OK || state == NULL)
		return 1;
	return strncmp(state, "08", 2) == 0 || strncmp(state, "40", 2) == 0 || strncmp(state, "53", 2) == 0 ||
		strncmp(state, "57", 2) == 0 || strncmp(state, "58", 2) == 0;
}

/* One item: 0 done (registered or refused for good), 1 try again on a new connection. */
static int
execute(Registrar *r, const Item *it)
{
	PGresult   *res = NULL;
	const char *params[9];
	char		cam[16];
	char		start[32];
	char		end[32];
	char		bytes[32];
	char		sha[2 + 64 + 1];
	char		width[16];
	char		height[16];
	char		what[200];
	char		msg[1024];
	char		state[6];
	int			i;
	int			ret = 0;

	snprintf(cam, sizeof(cam), "%d", r->o.camera);
	params[0] = cam;
	if (it->kind == ITEM_SEGMENT)
	{
		if (segment_iso_time(it->seg.start_ms, start) != 0 || segment_iso_time(it->seg.end_ms, end) != 0)
		{
			log_error("segment %s has a time out of range; not registered", it->seg.path);
			return 0;
		}
		snprintf(bytes, sizeof(bytes), "%lld", (long long) it->seg.bytes);
		sha[0] = '\\';
		sha[1] = 'x';
		for (i = 0; i < 32; i++)
			snprintf(sha + 2 + 2 * i, 3, "%02x", it->seg.sha256[i]);
		snprintf(width, sizeof(width), "%d", it->seg.width);
		snprintf(height, sizeof(height), "%d", it->seg.height);
		params[1] = start;
		params[2] = end;
		params[3] = it->seg.path;
		params[4] = bytes;
		params[5] = sha;
		params[6] = it->seg.codec[0] ? it->seg.codec : NULL;
		params[7] = it->seg.width > 0 ? width : NULL;
		params[8] = it->seg.height > 0 ? height : NULL;
		res = PQexecParams(r->conn,
						   "SELECT vms.register_segment($1::integer, $2::timestamptz, $3::timestamptz, $4::text, "
						   "$5::bigint, $6::bytea, $7::text, $8::integer, $9::integer)",
						   9, NULL, params, NULL, NULL, 0);
		snprintf(what, sizeof(what), "register segment %s", it->seg.path);
	}
	else if (it->kind == ITEM_GAP)
	{
		if (segment_iso_time(it->from_ms, start) != 0 || segment_iso_time(it->until_ms, end) != 0)
			return 0;
		params[1] = start;
		params[2] = end;
		params[3] = it->word;
		res = PQexecParams(r->conn,
						   "SELECT vms.register_event($1::integer, $2::timestamptz, 'recording_gap', "
						   "pg_catalog.jsonb_build_object('until', $3::timestamptz, 'reason', $4::text))",
						   4, NULL, params, NULL, NULL, 0);
		snprintf(what, sizeof(what), "register the recording gap from %s to %s", start, end);
	}
	else
	{
		params[1] = it->word;
		params[2] = it->detail;
		res = PQexecParams(r->conn, "SELECT vms.report_ingest($1::integer, $2::text, $3::text)",
						   3, NULL, params, NULL, NULL, 0);
		snprintf(what, sizeof(what), "report state %s", it->word);
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		if (it->kind == ITEM_SEGMENT && PQntuples(res) == 1)
			log_debug("registered segment %s (id %s)", it->seg.path, PQgetvalue(res, 0, 0));
		else if (it->kind == ITEM_GAP)
			log_info("registered a recording gap from %s to %s (%s)", start, end, it->word);
	}
	else if (transient(r->conn, res))
		ret = 1;
	else
	{
		db_error(res, r->conn, msg, sizeof(msg), state);
		if (it->kind == ITEM_SEGMENT)
			log_error("could not %s: ERROR %s: %s; the file stays on disk", what, state, msg);
		else
			log_error("could not %s: ERROR %s: %s", what, state, msg);
	}
	PQclear(res);
	return ret;
}

static void
purge_report(void *arg, const char *message)
{
	(void) arg;
	log_warning("retention: %s", message);
}

static int
purge_logged(PGconn *conn, int rootfd, int camera, const volatile sig_atomic_t *stop)
{
	PurgeResult pr;
	int			status;

	memset(&pr, 0, sizeof(pr));
	status = purge_camera(conn, rootfd, camera, PURGE_BATCH, stop, purge_report, NULL, &pr);
	if (pr.files > 0 || pr.errors > 0)
		log_info("retention: removed %lld released files (%lld bytes), %lld errors", pr.files, pr.bytes, pr.errors);
	return status;
}

void
registrar_purge(PGconn *conn, int rootfd, int camera)
{
	purge_logged(conn, rootfd, camera, NULL);
}

/* Removes released files; 0, or 1 when the connection went. */
static int
run_purge(Registrar *r)
{
	int			status = purge_logged(r->conn, r->o.rootfd, r->o.camera, &r->purge_stop);

	return status == PURGE_DB && PQstatus(r->conn) != CONNECTION_OK;
}

static void
drop_connection(Registrar *r)
{
	pthread_mutex_lock(&r->lock);
	PQfreeCancel(r->cancel);
	r->cancel = NULL;
	pthread_mutex_unlock(&r->lock);
	PQfinish(r->conn);
	r->conn = NULL;
}

static void *
run(void *arg)
{
	Registrar  *r = arg;
	int64_t		next_connect = 0;
	int64_t		interval = (int64_t) r->o.purge_interval_s * 1000000;
	int64_t		next_purge = mono_us() + interval;	/* main purged at startup */
	int			attempt = 0;
	int			outage = 0;

	pthread_mutex_lock(&r->lock);
	for (;;)
	{
		int64_t		now = mono_us();
		Item	   *it;
		int			retry;

		if (r->stopping && (r->head == NULL || now >= r->drain_deadline))
			break;
		if (r->conn == NULL)
		{
			PGconn	   *conn;
			char		err[1024];

			if (now < next_connect)
			{
				wait_until(&r->wake, &r->lock,
						   r->stopping && r->drain_deadline < next_connect ? r->drain_deadline : next_connect);
				continue;
			}
			pthread_mutex_unlock(&r->lock);
			conn = db_connect(r->o.dbname, r->o.insecure_db, err, sizeof(err));
			pthread_mutex_lock(&r->lock);
			if (conn == NULL)
			{
				if (!outage)
					log_warning("database unavailable: %s; %d items wait, retrying", err, r->count);
				outage = 1;
				next_connect = mono_us() + backoff_delay_us(attempt++, r->o.backoff_max_s);
				continue;
			}
			r->conn = conn;
			r->cancel = PQgetCancel(conn);
			if (outage)
				log_info("database connection restored; %d items to register", r->count);
			outage = 0;
			attempt = 0;
			continue;
		}
		if (!r->stopping && interval > 0 && now >= next_purge && (r->head == NULL || now >= next_purge + interval))
		{
			int			lost;

			pthread_mutex_unlock(&r->lock);
			lost = run_purge(r);
			if (lost)
				drop_connection(r);
			pthread_mutex_lock(&r->lock);
			next_purge = mono_us() + interval;
			continue;
		}
		if (r->head == NULL)
		{
			int64_t		until = interval > 0 ? next_purge : now + 3600 * 1000000LL;

			wait_until(&r->wake, &r->lock, until);
			continue;
		}
		it = r->head;
		r->inflight = it;
		pthread_mutex_unlock(&r->lock);
		retry = execute(r, it);
		if (retry)
			drop_connection(r);
		pthread_mutex_lock(&r->lock);
		if (retry)
		{
			log_warning("database connection lost; %d items wait, reconnecting", r->count);
			outage = 1;
			next_connect = mono_us() + backoff_delay_us(attempt++, r->o.backoff_max_s);
		}
		r->inflight = NULL;
		if (!retry)
		{
			r->head = it->next;
			if (r->head == NULL)
				r->tail = NULL;
			r->count--;
			if (it->kind == ITEM_SEGMENT)
				r->backlog -= it->seg.bytes;
			item_free(it);
		}
	}
	r->done = 1;
	pthread_cond_broadcast(&r->finished);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Frees what registrar_start() made, once its thread is not running. */
static void
registrar_free(Registrar *r)
{
	PQfreeCancel(r->cancel);
	PQfinish(r->conn);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->finished);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

Registrar *
registrar_start(PGconn *conn, const RegistrarOptions *o, char *err, size_t errlen)
{
	Registrar  *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;
	sigset_t	block;
	sigset_t	old;
	int			ret;

	if (r == NULL)
	{
		snprintf(err, errlen, "out of memory");
		PQfinish(conn);
		return NULL;
	}
	r->o = *o;
	r->conn = conn;
	r->cancel = conn ? PQgetCancel(conn) : NULL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->wake, &ca);
	pthread_cond_init(&r->finished, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals are for the capture thread: this one never takes them. */
	sigfillset(&block);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	ret = pthread_create(&r->thread, NULL, run, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0)
	{
		snprintf(err, errlen, "could not start the database thread: %s", strerror(ret));
		registrar_free(r);
		return NULL;
	}
	return r;
}

static void
enqueue(Registrar *r, Item *it)
{
	pthread_mutex_lock(&r->lock);
	if (r->tail)
		r->tail->next = it;
	else
		r->head = it;
	r->tail = it;
	r->count++;
	if (it->kind == ITEM_SEGMENT)
		r->backlog += it->seg.bytes;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

int
registrar_add_segment(Registrar *r, const SegmentInfo *seg)
{
	Item	   *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return -1;
	it->kind = ITEM_SEGMENT;
	it->seg = *seg;
	enqueue(r, it);
	return 0;
}

int
registrar_add_gap(Registrar *r, int64_t from_ms, int64_t until_ms, const char *reason)
{
	Item	   *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return -1;
	it->kind = ITEM_GAP;
	it->from_ms = from_ms;
	it->until_ms = until_ms;
	snprintf(it->word, sizeof(it->word), "%s", reason);
	enqueue(r, it);
	return 0;
}

int
registrar_report(Registrar *r, const char *state, const char *detail)
{
	char		clean[1001];
	char	   *d = NULL;
	Item	   *it;

	/* Plain ASCII, one line, no credentials, within the 1000 characters the database takes. */
	if (detail != NULL)
	{
		log_redact(detail, clean, sizeof(clean));
		if ((d = strdup(clean)) == NULL)
			return -1;
	}
	/* Every change is kept, in order: the extension audits each. */
	if ((it = calloc(1, sizeof(*it))) == NULL)
	{
		free(d);
		return -1;
	}
	it->kind = ITEM_STATUS;
	snprintf(it->word, sizeof(it->word), "%s", state);
	it->detail = d;
	enqueue(r, it);
	return 0;
}

int64_t
registrar_backlog_bytes(Registrar *r)
{
	int64_t		b;

	pthread_mutex_lock(&r->lock);
	b = r->backlog;
	pthread_mutex_unlock(&r->lock);
	return b;
}

int
registrar_stop(Registrar **rp, int64_t timeout_us)
{
	Registrar  *r = *rp;
	int64_t		deadline;
	int			left;
	int			done;
	Item	   *it;

	if (r == NULL)
		return 0;
	pthread_mutex_lock(&r->lock);
	deadline = mono_us() + timeout_us;
	r->stopping = 1;
	r->purge_stop = 1;
	r->drain_deadline = deadline;
	pthread_cond_broadcast(&r->wake);
	while (!r->done && mono_us() < deadline + CANCEL_GRACE_US)
		wait_until(&r->finished, &r->lock, deadline + CANCEL_GRACE_US);
	if (!r->done && r->cancel != NULL)
	{
		char		err[256];

		/* A call hangs on a database that does not answer: cancel it. */
		PQcancel(r->cancel, err, sizeof(err));
		deadline = mono_us() + CANCEL_GRACE_US;
		while (!r->done && mono_us() < deadline)
			wait_until(&r->finished, &r->lock, deadline);
	}
	left = r->count;
	done = r->done;
	pthread_mutex_unlock(&r->lock);
	*rp = NULL;
	if (!done)
		return left;			/* the thread is stuck in libpq; the process exits around it */
	pthread_join(r->thread, NULL);
	while ((it = r->head) != NULL)
	{
		r->head = it->next;
		item_free(it);
	}
	registrar_free(r);
	return left;
}
