#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks that a shared library exports only symbols with the given prefix.
# Usage: exports.sh LIBRARY PREFIX
set -eu
lib=$1
prefix=$2
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
echo "ok: $lib exports $count symbols, all $prefix*"
