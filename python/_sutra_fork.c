/* SPDX-License-Identifier: MIT */
/* Forks and nng for the extension module _sutra: the fork generation and whether nng may start in this process. */
#include "_sutra.h"

#include <pthread.h>

unsigned long sutra_py_fork_gen;
/* This process started nng (a coordinator, a client or a subscription). */
static int nng_started;
/* An ancestor process started nng before forking this one: nng panics at
 * its first use here, so nothing of it may be started. */
static int nng_forbidden;

static void atfork_child(void)
{
	sutra_py_fork_gen++;
	if (nng_started)
		nng_forbidden = 1;
}

void sutra_py_fork_init(void)
{
	static int atfork_done;
	if (!atfork_done) {
		pthread_atfork(NULL, NULL, atfork_child);
		atfork_done = 1;
	}
}

int sutra_py_nng_forbidden(void)
{
	return nng_forbidden;
}

/* Refuses to start nng in a child of a process that used it (nng would
 * abort the process). */
int sutra_py_nng_allowed(const char *what)
{
	if (!nng_forbidden)
		return 1;
	PyObject *r = sutra_py_raise(SUTRA_EUNAVAIL, what,
				     "this process was forked from one that had already started "
				     "nng (a write, a subscription or the embedded coordinator), and "
				     "nng cannot be used after such a fork: open the store in the "
				     "parent only after forking, or write from the parent; reads "
				     "still work here");
	(void)r;
	return 0;
}

/* Threads nng starts inherit the signal mask of the thread that starts
 * them: block every signal around it so that only Python's main thread
 * takes SIGINT and SIGTERM. */
void sutra_py_nng_enter(sigset_t *old)
{
	sigset_t all;
	nng_started = 1;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

void sutra_py_nng_leave(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}
