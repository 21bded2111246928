// SPDX-License-Identifier: MIT
/*
 * The scan-ahead helper thread (vmm/scan_ahead.h).
 *
 * 1. Queues: requests (newest first out, the oldest dropped when full) and
 *    finished memos, under one mutex; `work` wakes the helper, `idle`
 *    scan_ahead_drain, `finished` scan_ahead_wait.
 * 2. The helper: copy the page (and the previous page's tail), find where
 *    its first instruction starts, sweep it from there into a new memo with
 *    shadow mode's linear sweep, hand the memo back.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/scan_ahead.h"

#define DONE_MAX SCAN_AHEAD_QUEUE

struct scan_ahead {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, idle, finished; /* finished: after each request */
	bool stop;
	bool busy; /* the helper is decoding a request */
	gfn_t busy_gfn;
	struct scan_ahead_req req[SCAN_AHEAD_QUEUE]; /* req[0..nreq): oldest first */
	unsigned nreq;
	struct scan_ahead_done done[DONE_MAX];
	unsigned ndone;
};

/* Item 2, outside the lock. NULL without memory. */
static struct scan_memo *decode_ahead(const struct scan_ahead_req *r)
{
	u8 page[SCAN_PAGE_SIZE], tail[SCAN_SYNC_TAIL];
	struct scan_memo *memo = scan_memo_new();
	struct scan_result res;
	u32 kinds = scan_kinds_shadow(r->mode);
	int sync = -1, err;
	u16 entry;

	if (!memo)
		return NULL;
	memcpy(page, r->hva, sizeof(page));
	if (r->prev_hva && (kinds & SCAN_OPT_LINEAR)) { /* as the real scan (code_scan.c) */
		memcpy(tail, r->prev_hva + SCAN_PAGE_SIZE - SCAN_SYNC_TAIL, sizeof(tail));
		/* Into the memo too: the real scan asks the same question. */
		sync = scan_sync_offset_memo(memo, tail, SCAN_SYNC_TAIL, page, SCAN_SYNC_HEAD,
					     r->mode);
	}
	entry = (u16)(sync > 0 ? sync : 0);
	scan_result_init(&res, r->page, r->mode, kinds);
	/* A failure (no memory) leaves the memo with what was decoded: still exact. */
	err = scan_code_page_add_entry_memo(&res, page, NULL, 0, &entry, 1, memo);
	(void)err;
	scan_result_free(&res);
	return memo;
}

static void *helper_main(void *arg)
{
	struct scan_ahead *sa = arg;

	pthread_mutex_lock(&sa->lock);
	for (;;) {
		struct scan_ahead_req r;
		struct scan_memo *memo;

		while (!sa->stop && !sa->nreq) {
			sa->busy = false;
			pthread_cond_broadcast(&sa->idle);
			pthread_cond_wait(&sa->work, &sa->lock);
		}
		if (sa->stop)
			break;
		r = sa->req[--sa->nreq]; /* the newest */
		sa->busy = true;
		sa->busy_gfn = r.gfn;
		pthread_mutex_unlock(&sa->lock);
		memo = decode_ahead(&r);
		pthread_mutex_lock(&sa->lock);
		if (memo && sa->ndone < DONE_MAX)
			sa->done[sa->ndone++] = (struct scan_ahead_done){ r.gfn, memo };
		else
			scan_memo_free(memo);
		sa->busy = false;
		pthread_cond_broadcast(&sa->finished);
	}
	sa->busy = false;
	pthread_cond_broadcast(&sa->idle);
	pthread_mutex_unlock(&sa->lock);
	return NULL;
}

struct scan_ahead *scan_ahead_start(void)
{
	struct scan_ahead *sa = calloc(1, sizeof(*sa));
	sigset_t all, old;
	int r;

	if (!sa)
		return NULL;
	pthread_mutex_init(&sa->lock, NULL);
	pthread_cond_init(&sa->work, NULL);
	pthread_cond_init(&sa->idle, NULL);
	pthread_cond_init(&sa->finished, NULL);
	/* The helper must never take a signal meant for the vCPU thread (its kick). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&sa->thread, NULL, helper_main, sa);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		pthread_cond_destroy(&sa->finished);
		pthread_cond_destroy(&sa->idle);
		pthread_cond_destroy(&sa->work);
		pthread_mutex_destroy(&sa->lock);
		free(sa);
		errno = r;
		return NULL;
	}
	return sa;
}

void scan_ahead_stop(struct scan_ahead *sa)
{
	if (!sa)
		return;
	pthread_mutex_lock(&sa->lock);
	sa->stop = true;
	pthread_cond_signal(&sa->work);
	pthread_mutex_unlock(&sa->lock);
	pthread_join(sa->thread, NULL);
	for (unsigned i = 0; i < sa->ndone; i++)
		scan_memo_free(sa->done[i].memo);
	pthread_cond_destroy(&sa->finished);
	pthread_cond_destroy(&sa->idle);
	pthread_cond_destroy(&sa->work);
	pthread_mutex_destroy(&sa->lock);
	free(sa);
}

bool scan_ahead_request(struct scan_ahead *sa, const struct scan_ahead_req *req)
{
	bool queued = true;

	pthread_mutex_lock(&sa->lock);
	for (unsigned i = 0; i < sa->nreq; i++)
		if (sa->req[i].gfn.v == req->gfn.v)
			queued = false;
	if (sa->busy && sa->busy_gfn.v == req->gfn.v)
		queued = false;
	if (queued) {
		if (sa->nreq == SCAN_AHEAD_QUEUE) {
			memmove(sa->req, sa->req + 1, (SCAN_AHEAD_QUEUE - 1) * sizeof(sa->req[0]));
			sa->nreq--;
		}
		sa->req[sa->nreq++] = *req;
		pthread_cond_signal(&sa->work);
	}
	pthread_mutex_unlock(&sa->lock);
	return queued;
}

unsigned scan_ahead_collect(struct scan_ahead *sa, struct scan_ahead_done *out, unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&sa->lock);
	n = MIN(max, sa->ndone);
	memcpy(out, sa->done, n * sizeof(*out));
	memmove(sa->done, sa->done + n, (sa->ndone - n) * sizeof(*out));
	sa->ndone -= n;
	pthread_mutex_unlock(&sa->lock);
	return n;
}

bool scan_ahead_wait(struct scan_ahead *sa, gfn_t g)
{
	bool waited = false;

	pthread_mutex_lock(&sa->lock);
	for (unsigned i = 0; i < sa->nreq; i++)
		if (sa->req[i].gfn.v == g.v) {
			memmove(sa->req + i, sa->req + i + 1,
				(sa->nreq - i - 1) * sizeof(sa->req[0]));
			sa->nreq--;
			break;
		}
	while (sa->busy && sa->busy_gfn.v == g.v) {
		waited = true;
		pthread_cond_wait(&sa->finished, &sa->lock);
	}
	pthread_mutex_unlock(&sa->lock);
	return waited;
}

void scan_ahead_drain(struct scan_ahead *sa)
{
	pthread_mutex_lock(&sa->lock);
	while (sa->nreq || sa->busy)
		pthread_cond_wait(&sa->idle, &sa->lock);
	pthread_mutex_unlock(&sa->lock);
}
