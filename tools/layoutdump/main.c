/* SPDX-License-Identifier: MIT */
/* sutra-layoutdump: prints the structure of a storage.dat file and optionally verifies it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sutra/errors.h"
#include "tools/layoutdump/layoutdump.h"
#include "util/detail.h"

#ifndef LAYOUTDUMP_VERSION
#define LAYOUTDUMP_VERSION "unknown"
#endif

/* Exit statuses, documented in --help and the man page. */
enum { STATUS_OK = 0, STATUS_BAD = 1, STATUS_USAGE = 2 };

/* ---- Gathering ------------------------------------------------------------- */

/*
 * Everything known about the file. When layout_open() succeeds it all comes
 * from the view; when it fails the view is not written, so the superblock
 * and the meta slots are decoded again here to show as much as can be.
 */
static void gather(struct ld_dump *d)
{
	d->open_rc = layout_open(d->base, d->size, &d->v, &d->open_pb);
	if (d->open_rc == 0) {
		d->have_sb = true;
		d->sb = d->v.sb;
		d->have_slots = true;
		for (unsigned i = 0; i < LAYOUT_META_SLOT_COUNT; i++) {
			d->slot_off[i] = d->sb.meta_offset + (uint64_t)i * d->sb.meta_slot_size;
			d->slot_state[i] = d->v.slot_state[i];
			d->slots[i] = d->v.slots[i];
			d->slot_pb[i] = d->v.slot_problem[i];
		}
		return;
	}

	size_t len = d->size < SIZE_MAX ? (size_t)d->size : SIZE_MAX;
	if (layout_superblock_decode(d->base, len, &d->sb, &d->sb_pb) != 0)
		return;
	d->have_sb = true;
	d->have_slots = true;
	for (unsigned i = 0; i < LAYOUT_META_SLOT_COUNT; i++) {
		/* The decoded superblock has the fixed version 1 geometry, so
		 * this cannot overflow; the file may still be short. */
		uint64_t off = d->sb.meta_offset + (uint64_t)i * d->sb.meta_slot_size;

		d->slot_off[i] = off;
		if (off >= d->size) {
			d->slot_state[i] = LAYOUT_SLOT_CORRUPT;
			util_detail_set(&d->slot_pb[i], d->size,
					   "file of %" PRIu64 " bytes ends before meta slot %u",
					   d->size, i);
			continue;
		}
		/* A slot cut by the end of the file is still decoded from the
		 * bytes that are there: the decoder reports it if they are too
		 * few, and otherwise the slot's content is worth seeing. */
		uint64_t avail = d->size - off < d->sb.meta_slot_size ? d->size - off
								       : d->sb.meta_slot_size;
		d->slot_state[i] = layout_meta_decode(d->base + off, (size_t)avail, off,
						      &d->slots[i], &d->slot_pb[i]);
	}
}

void ld_errno_problem(int rc, uint64_t off, struct sutra_detail *pb)
{
	util_detail_set(pb, off, "%s (%s)", sutra_strerror(rc), sutra_errname(rc));
}

int ld_check_payload(const struct ld_dump *d, const struct layout_block *blk,
		     struct sutra_detail *pb)
{
	int rc = layout_block_check_payload(d->base, blk, pb);

	if (rc < 0 && rc != SUTRA_ECORRUPT)
		ld_errno_problem(rc, blk->offset, pb);
	return rc;
}

int ld_decode_segment(const struct ld_dump *d, const struct layout_block *blk,
		      struct layout_segment *seg, struct layout_section *sections,
		      struct sutra_detail *pb)
{
	int rc = layout_segment_decode(d->base, blk, seg, sections, LAYOUT_MAX_SECTIONS, pb);

	if (rc < 0 && rc != SUTRA_ECORRUPT)
		ld_errno_problem(rc, blk->offset, pb);
	return rc;
}

int ld_next_block(const struct ld_dump *d, uint64_t *off, struct layout_block *blk,
		  struct sutra_detail *pb)
{
	uint64_t end = d->v.meta.published_end;

	if (*off >= end)
		return 0;
	/* Decoding against published_end, as layout_open() does, keeps the
	 * walk inside the published part of the log. */
	if (layout_block_decode(d->base, end, *off, blk, pb) != 0)
		return -1;
	/* The decoder guarantees length >= 64 and off + length <= end, so
	 * the walk always advances and cannot wrap. */
	*off += blk->length;
	return 1;
}

void ld_scan_tail(const struct ld_dump *d, struct ld_tail *t)
{
	*t = (struct ld_tail){ .offset = d->v.meta.published_end, .pb.offset = UINT64_MAX };
	t->bytes = d->size - t->offset;
	t->end = t->offset;
	t->extending = layout_scan_tail(&d->v, &t->end, &t->pb);
	t->stopped = t->pb.offset != UINT64_MAX;
}

/* ---- Verify --------------------------------------------------------------- */

static void run_verify(struct ld_dump *d, struct ld_verdict *vd)
{
	struct layout_replay r;
	int rc;

	memset(vd, 0, sizeof *vd);
	if (d->open_rc != 0) {
		/* A file that does not open cannot verify; its reason is the verdict. */
		vd->have_offset = d->open_rc == SUTRA_ECORRUPT || d->open_rc == SUTRA_EVERSION;
		if (vd->have_offset)
			vd->pb = d->open_pb;
		else
			ld_errno_problem(d->open_rc, 0, &vd->pb);
		return;
	}
	rc = layout_replay_init(&r, d->sb.vector_dim);
	if (rc != 0) {
		ld_errno_problem(rc, 0, &vd->pb);
		return;
	}
	rc = layout_verify(&d->v, &r, &vd->pb);
	if (rc == 0) {
		vd->ok = true;
		vd->epoch = r.epoch;
		vd->concepts = r.concept_count;
		vd->associations = r.association_count;
	} else if (rc == SUTRA_ECORRUPT || rc == SUTRA_EVERSION) {
		vd->have_offset = true;
	} else {
		ld_errno_problem(rc, 0, &vd->pb);
	}
	layout_replay_finish(&r);
}

/* ---- Errors on stderr ------------------------------------------------------ */

static void report(const char *path, int rc, const struct sutra_detail *pb)
{
	struct stat st;

	/* Keep stdout and stderr in order on a terminal. */
	fflush(stdout);
	/* layout_map_open() refuses anything but a regular file with EINVAL,
	 * whose own text ("Invalid argument") would not say why. */
	if (rc == -EINVAL && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		fprintf(stderr, "%s: %s: not a regular file (EINVAL)\n", PROG, path);
	else if (pb)
		fprintf(stderr, "%s: %s: offset %" PRIu64 ": %s (%s: %s)\n", PROG, path,
			pb->offset, pb->what, sutra_errname(rc), sutra_strerror(rc));
	else
		fprintf(stderr, "%s: %s: %s (%s)\n", PROG, path, sutra_strerror(rc),
			sutra_errname(rc));
}

/* ---- Reader slots (the lock file) --------------------------------------------- */

/*
 * Lists the used reader slots of PATH.lock (docs/LOCKFILE.md), opened
 * read-only: the liveness test takes no lock and the tool writes nothing.
 * A missing lock file, or one without a table yet, is not an error. sep
 * says whether text output came before. Returns the exit status this part
 * calls for.
 */
static int reader_slots(struct ld_dump *d, bool sep)
{
	const char *path = d->opt->path;
	size_t n = strlen(path) + sizeof ".lock";
	struct sutra_detail pb;
	struct ld_lock lk = { .lf = NULL };
	char *lp = malloc(n);

	if (!lp) {
		report(path, -ENOMEM, NULL);
		return STATUS_BAD;
	}
	snprintf(lp, n, "%s.lock", path);
	lk.path = lp;
	lk.rc = layout_lockfile_open(lp, LAYOUT_LOCKFILE_RDONLY, &lk.lf, &pb);
	lk.pb = lk.rc == SUTRA_ECORRUPT || lk.rc == SUTRA_EVERSION ? &pb : NULL;
	if (d->opt->json)
		ld_json_reader_slots(d, &lk);
	else
		ld_show_reader_slots(&lk, sep);
	int status = lk.rc == 0 || lk.rc == -ENOENT || lk.rc == -ENODATA ? STATUS_OK : STATUS_BAD;
	if (status != STATUS_OK)
		report(lp, lk.rc, lk.pb);
	layout_lockfile_close(lk.lf);
	free(lp);
	return status;
}

/* ---- Command line ---------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTION]... PATH\n"
		"Print the structure of a Sutra storage.dat file: superblock, meta slots,\n"
		"every published block and the unpublished tail; optionally verify it.\n"
		"\n"
		"  -r, --records   also list the records of each commit block and the\n"
		"                  header and sections of each segment block\n"
		"  -f, --full      with --records, print whole contents and embeddings\n"
		"                  (default: the first %u bytes and %u values)\n"
		"  -j, --json      print one JSON document instead of text\n"
		"  -v, --verify    check every block, record, segment and replay rule\n"
		"                  after the dump, and print the verdict\n"
		"  -s, --slots     also list the reader slots in PATH.lock: slot, pid,\n"
		"                  pinned epoch, alive or dead\n"
		"  -q, --quiet     print no dump; with --verify or --slots, only those\n"
		"  -h, --help      print this help and exit\n"
		"  -V, --version   print the version and the format version and exit\n"
		"\n"
		"Exit status:\n"
		"  0  the file opened (and, with --verify, verified) cleanly\n"
		"  1  the file is unreadable or corrupt, or --verify found a problem,\n"
		"     or with --slots the lock file is unreadable or corrupt\n"
		"  2  usage error\n"
		"\n"
		"See sutra-layoutdump(1), docs/FORMAT.md and docs/LOCKFILE.md.\n",
		LD_CONTENT_PREVIEW, LD_EMBEDDING_PREVIEW);
}

static int parse_args(int argc, char **argv, struct ld_options *opt)
{
	static const struct option longopts[] = {
		{ "records", no_argument, NULL, 'r' },
		{ "full", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "verify", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "slots", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	/* getopt_long prefixes its messages with argv[0]; show the tool's
	 * name rather than however it was invoked. */
	static char name[] = PROG;
	int c;

	argv[0] = name;
	while ((c = getopt_long(argc, argv, "rfjvqshV", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			opt->records = true;
			break;
		case 'f':
			opt->full = true;
			break;
		case 'j':
			opt->json = true;
			break;
		case 'v':
			opt->verify = true;
			break;
		case 'q':
			opt->quiet = true;
			break;
		case 's':
			opt->slots = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case 'V':
			printf(PROG " %s (storage.dat format version %u)\n", LAYOUTDUMP_VERSION,
			       LAYOUT_FORMAT_VERSION);
			return -1;
		default:
			goto bad;
		}
	}
	if (optind == argc) {
		fprintf(stderr, PROG ": missing PATH\n");
		goto bad;
	}
	if (argc - optind > 1) {
		fprintf(stderr, PROG ": too many arguments: only one PATH is allowed\n");
		goto bad;
	}
	opt->path = argv[optind];
	return 0;
bad:
	fprintf(stderr, "Try '" PROG " --help' for more information.\n");
	return -2;
}

/* A dump cut short by a full disk must not look complete: the status says so. */
static int flush_output(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: error writing output: %s\n", PROG, strerror(errno));
		return STATUS_BAD;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct ld_options opt = { 0 };
	struct layout_map map = { .fd = -1 };
	static struct ld_dump d; /* large: a view, slot copies */
	struct ld_verdict vd;
	int status;

	switch (parse_args(argc, argv, &opt)) {
	case 0:
		break;
	case -1:
		return flush_output(STATUS_OK);
	default:
		return STATUS_USAGE;
	}
	d.opt = &opt;
	d.jdepth = -1;

	/* A file that cannot be mapped is reported like one that does not
	 * open, with nothing decoded. */
	int rc = layout_map_open(opt.path, &map);
	bool mapped = rc == 0;
	if (mapped) {
		d.base = map.base;
		d.size = map.size;
		gather(&d);
	} else {
		d.open_rc = rc;
	}

	bool opened = d.open_rc == 0;
	bool dump = !opt.quiet;
	bool has_pb = d.open_rc == SUTRA_ECORRUPT || d.open_rc == SUTRA_EVERSION;

	if (opt.json)
		ld_json_file(&d, mapped, dump);
	else if (dump && mapped)
		ld_show_file(&d);

	if (!opened)
		report(opt.path, d.open_rc, has_pb ? &d.open_pb : NULL);
	status = opened ? STATUS_OK : STATUS_BAD;
	bool text_before = !opt.json && dump && mapped;
	if (opt.slots) {
		if (reader_slots(&d, text_before) != STATUS_OK)
			status = STATUS_BAD;
		text_before = !opt.json;
	}
	if (opt.verify) {
		run_verify(&d, &vd);
		if (text_before)
			putchar('\n');
		if (opt.json)
			ld_json_verdict(&d, &vd);
		else
			ld_show_verdict(&vd);
		if (!vd.ok)
			status = STATUS_BAD;
	}
	if (opt.json)
		ld_json_end(&d);

	layout_map_close(&map);
	return flush_output(status);
}
