#!/bin/sh
# SPDX-License-Identifier: MIT
# sutra-layoutdump --slots: the reader slots of storage.dat.lock, alive and after kill -9.
# Usage: slots.sh LAYOUTDUMP MKFIXTURE LOCKSLOT GOLDEN_DIR
set -eu

dump=$(realpath "$1")
mkfixture=$(realpath "$2")
lockslot=$(realpath "$3")
golden=$(realpath "$4")

work=$(mktemp -d)
holder=
cleanup() {
	if [ -n "$holder" ]; then
		kill -9 "$holder" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
"$mkfixture" storage.dat

failed=0
# expect NAME WANT_STATUS EXPECTED_FILE -- command...: runs it, compares stdout.
expect() {
	name=$1 want=$2 file=$3
	shift 4
	rc=0
	"$@" >"$name.out" 2>"$name.err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "FAIL $name: exit status $rc, expected $want" >&2
		cat "$name.err" >&2
		failed=$((failed + 1))
	elif diff -u "$file" "$name.out"; then
		echo "ok $name"
	else
		echo "FAIL $name: output differs" >&2
		failed=$((failed + 1))
	fi
}

# No lock file: said, not an error; the dump before it is the usual one.
echo 'reader slots: no lock file storage.dat.lock' >want-missing
expect missing 0 want-missing -- "$dump" --slots --quiet storage.dat
{ cat "$golden/text.out"; echo; cat want-missing; } >want-full
expect full-missing 0 want-full -- "$dump" --slots storage.dat

# An empty lock file, as a coordinator without the table leaves it.
: >storage.dat.lock
echo 'reader slots: storage.dat.lock has no slot table' >want-empty
expect empty 0 want-empty -- "$dump" --slots --quiet storage.dat
rm storage.dat.lock

# A live reader holding slot 0 and pinning epoch 7.
"$lockslot" storage.dat.lock 7 >ready 2>&1 &
holder=$!
i=0
while ! grep -q '^slot ' ready 2>/dev/null; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$holder" 2>/dev/null; then
		echo "FAIL: lockslot did not start" >&2
		cat ready >&2
		exit 1
	fi
	sleep 0.1
done
pid=$(sed -n 's/^slot 0 pid \([0-9]*\)$/\1/p' ready)
if [ "$pid" != "$holder" ]; then
	echo "FAIL: lockslot reported '$(cat ready)', expected slot 0 pid $holder" >&2
	exit 1
fi

printf 'reader slots in storage.dat.lock:\n  slot 0: pid %s, pinned epoch 7, alive\n' "$pid" >want-alive
expect alive 0 want-alive -- "$dump" --slots --quiet storage.dat
{ cat want-alive; echo; tail -n 1 "$golden/verify.out"; } >want-verify
expect alive-verify 0 want-verify -- "$dump" -s -q -v storage.dat
cat >want-json <<JSON
{
  "path": "storage.dat",
  "size": 13632,
  "error": null,
  "lock_file": "storage.dat.lock",
  "lock_state": "ok",
  "slots": [
    {
      "slot": 0,
      "pid": $pid,
      "pinned_epoch": 7,
      "alive": true
    }
  ],
  "slots_error": null
}
JSON
expect alive-json 0 want-json -- "$dump" --slots --quiet --json storage.dat

# kill -9: the kernel drops its OFD lock; the slot shows as dead until swept.
kill -9 "$holder"
wait "$holder" 2>/dev/null || true
holder=
printf 'reader slots in storage.dat.lock:\n  slot 0: pid %s, pinned epoch 7, dead\n' "$pid" >want-dead
expect dead 0 want-dead -- "$dump" --slots --quiet storage.dat

# A damaged header: status 1, the offset and reason on stderr.
printf 'XLCK' | dd of=storage.dat.lock bs=1 seek=64 conv=notrunc status=none
echo 'reader slots in storage.dat.lock: BAD' >want-bad
expect bad 1 want-bad -- "$dump" --slots --quiet storage.dat
if ! grep -q 'storage.dat.lock: offset 64: not a Sutra lock file .*SUTRA_ECORRUPT' bad.err; then
	echo "FAIL bad: stderr does not name the offset and reason:" >&2
	cat bad.err >&2
	failed=$((failed + 1))
fi
[ "$failed" -eq 0 ]
