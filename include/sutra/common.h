/* SPDX-License-Identifier: MIT */
/* Shared definitions for every public Sutra header: export macro and version. */
#ifndef SUTRA_COMMON_H
#define SUTRA_COMMON_H

#if defined(__GNUC__) || defined(__clang__)
#define SUTRA_API __attribute__((visibility("default")))
#else
#define SUTRA_API
#endif

/** Version of the storage.dat format this build writes and reads. */
#define SUTRA_FORMAT_VERSION 1

#endif /* SUTRA_COMMON_H */
