/* SPDX-License-Identifier: MIT */
/* The writer lock: one coordinator per store, an OFD lock on byte 0 of "<path>.lock" (docs/LOCKFILE.md 6.1). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/store_internal.h"
#include "layout/lockfile.h"
#include "sutra/errors.h"
#include "util/detail.h"

/* The process also keeps the lock files it holds, so that a second open in
 * this process is refused with a message naming this process, before it
 * even tries the kernel lock. */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static struct held {
	dev_t dev;
	ino_t ino;
	struct held *next;
} *held;

static int held_add(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	pthread_mutex_lock(&held_mu);
	for (struct held *h = held; h; h = h->next) {
		if (h->dev == st.st_dev && h->ino == st.st_ino) {
			pthread_mutex_unlock(&held_mu);
			return SUTRA_ELOCKED;
		}
	}
	struct held *h = malloc(sizeof *h);
	if (!h) {
		pthread_mutex_unlock(&held_mu);
		return -ENOMEM;
	}
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	h->next = held;
	held = h;
	pthread_mutex_unlock(&held_mu);
	return 0;
}

static void held_del(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return;
	pthread_mutex_lock(&held_mu);
	for (struct held **p = &held; *p; p = &(*p)->next) {
		if ((*p)->dev == st.st_dev && (*p)->ino == st.st_ino) {
			struct held *h = *p;
			*p = h->next;
			free(h);
			break;
		}
	}
	pthread_mutex_unlock(&held_mu);
}

char *coord_lock_path(const char *path)
{
	size_t n = strlen(path) + sizeof ".lock";
	char *lp = malloc(n);
	if (lp)
		snprintf(lp, n, "%s.lock", path);
	return lp;
}

/* An OFD write lock on byte 0 of "<path>.lock". Not a classic fcntl lock:
 * a process drops all its classic locks on a file when it closes any
 * descriptor of that file, and readers in this process (lock-file slots)
 * or a refused second open would do exactly that. The lock goes away with
 * the process, however it dies. */
int coord_lock_take(struct coord_store *s, struct sutra_detail *why)
{
	char *lp = coord_lock_path(s->path);
	if (!lp)
		return -ENOMEM;
	s->lock.fd = layout_lockfile_create_fd(lp);
	if (s->lock.fd < 0) {
		int err = s->lock.fd;
		s->lock.fd = -1;
		util_fail(err, why, "cannot open lock file %s: %s", lp, strerror(-err));
		free(lp);
		return err;
	}
	int rc = held_add(s->lock.fd);
	if (rc) {
		if (rc == SUTRA_ELOCKED)
			util_fail(rc, why,
			     "store %s is already open for writing in this process, pid %ld",
			     s->path, (long)getpid());
		close(s->lock.fd);
		s->lock.fd = -1;
		free(lp);
		return rc;
	}
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	if (fcntl(s->lock.fd, F_OFD_SETLK, &fl) == 0) {
		/* The pid names this writer to a refused one (F_OFD_GETLK
		 * cannot); without it the lock still holds. */
		if (layout_lockfile_write_writer_pid(s->lock.fd, (int64_t)getpid()))
			coord_logf(&s->log, COORD_LOG_WARN, "cannot write the pid into %s", lp);
		s->lock.held = 1;
		free(lp);
		return 0;
	}
	/* errno first: held_del() makes calls of its own. */
	int err = errno;
	held_del(s->lock.fd);
	if (err == EACCES || err == EAGAIN) {
		long holder = (long)layout_lockfile_read_writer_pid(s->lock.fd);
		if (holder > 0)
			util_fail(SUTRA_ELOCKED, why,
			     "store %s is locked by another writer, pid %ld (lock file %s)", s->path,
			     holder, lp);
		else
			util_fail(SUTRA_ELOCKED, why,
			     "store %s is locked by another writer (lock file %s)", s->path, lp);
		free(lp);
		return SUTRA_ELOCKED;
	}
	util_fail(-err, why, "cannot lock %s: %s", lp, strerror(err));
	free(lp);
	return -err;
}

void coord_lock_release(struct coord_store *s)
{
	if (s->lock.fd < 0)
		return;
	if (s->lock.held)
		held_del(s->lock.fd);
	/* Closing the only descriptor of the open file description drops
	 * the OFD lock. */
	close(s->lock.fd);
	s->lock.fd = -1;
	s->lock.held = 0;
}
