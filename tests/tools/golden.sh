#!/bin/sh
# SPDX-License-Identifier: MIT
# Golden output of sutra-layoutdump on the deterministic test store.
# Usage: golden.sh LAYOUTDUMP MKFIXTURE GOLDEN_DIR
# With SUTRA_UPDATE_GOLDEN=1 the golden files are rewritten instead of compared.
set -eu

dump=$(realpath "$1")
mkfixture=$(realpath "$2")
golden=$(realpath "$3")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$mkfixture" storage.dat

# name|options: one golden file per way of calling the tool.
cases='text|
records|--records
verify|--verify
full-json|--json --records --full --verify'

failed=0
old_ifs=$IFS
IFS='
'
for c in $cases; do
	name=${c%%|*}
	opts=${c#*|}
	IFS=' '
	# shellcheck disable=SC2086 # the options are meant to split
	if ! "$dump" $opts storage.dat >"$name.out" 2>"$name.err"; then
		echo "FAIL $name: sutra-layoutdump $opts exited non-zero on a clean file" >&2
		cat "$name.err" >&2
		failed=$((failed + 1))
	fi
	IFS='
'
	if [ "${SUTRA_UPDATE_GOLDEN:-0}" = 1 ]; then
		cp "$name.out" "$golden/$name.out"
		echo "updated $golden/$name.out"
	elif diff -u "$golden/$name.out" "$name.out"; then
		echo "ok $name"
	else
		echo "FAIL $name: output differs from $golden/$name.out" >&2
		failed=$((failed + 1))
	fi
done
IFS=$old_ifs

# A damaged file: one byte of epoch 2's first record flipped. --verify must
# exit 1 and name the block and what is wrong.
cp storage.dat bad.dat
printf '\377' | dd of=bad.dat bs=1 seek=12940 conv=notrunc status=none
rc=0
"$dump" --verify --quiet bad.dat >bad-verify.out 2>&1 || rc=$?
if [ "$rc" -ne 1 ]; then
	echo "FAIL bad-verify: exit status $rc on a damaged file, expected 1" >&2
	failed=$((failed + 1))
fi
if [ "${SUTRA_UPDATE_GOLDEN:-0}" = 1 ]; then
	cp bad-verify.out "$golden/bad-verify.out"
	echo "updated $golden/bad-verify.out"
elif diff -u "$golden/bad-verify.out" bad-verify.out; then
	echo "ok bad-verify"
else
	echo "FAIL bad-verify: output differs from $golden/bad-verify.out" >&2
	failed=$((failed + 1))
fi
[ "$failed" -eq 0 ]
