#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks that a shared library exports only symbols with the given prefix,
# and each REQUIRED symbol. Usage: exports.sh LIBRARY PREFIX [REQUIRED...]
set -eu
lib=$1
prefix=$2
shift 2
all=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }')
bad=$(printf '%s\n' "$all" | grep -v "^$prefix" || true)
count=$(printf '%s\n' "$all" | grep -c "^$prefix" || true)
if [ -n "$bad" ]; then
	echo "FAIL: $lib exports symbols outside $prefix*:" >&2
	printf '%s\n' "$bad" >&2
	exit 1
fi
if [ "$count" -eq 0 ]; then
	echo "FAIL: $lib exports no $prefix* symbol at all" >&2
	exit 1
fi
for sym in "$@"; do
	if ! printf '%s\n' "$all" | grep -qx "$sym"; then
		echo "FAIL: $lib does not export $sym" >&2
		exit 1
	fi
done
echo "ok: $lib exports $count symbols, all $prefix*"
