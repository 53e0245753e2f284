#!/bin/sh
# Keeps corpus/TARGET under a size budget: the seed-* inputs, then the smallest inputs of a
# merged (minimised) corpus until BUDGET bytes (default 1000000). Run from fuzz/ after
#   target/x86_64-unknown-linux-gnu/release/TARGET -set_cover_merge=1 MERGED corpus/TARGET NEW
# The merge keeps every input that adds a feature, which for filesystem images means dozens
# of 40 KiB ones; small inputs first keeps most of the coverage in a reviewable size.
set -eu
t=$1 merged=$2 budget=${3:-1000000}
find "corpus/$t" -type f ! -name 'seed-*' -delete
total=$(cat "corpus/$t"/seed-* | wc -c)
for f in $(ls -Sr "$merged"); do
	size=$(stat -c %s "$merged/$f")
	dup=0
	for s in "corpus/$t"/seed-*; do
		if cmp -s "$merged/$f" "$s"; then dup=1; break; fi
	done
	[ $dup = 1 ] && continue
	[ $((total + size)) -gt "$budget" ] && break
	cp "$merged/$f" "corpus/$t/$f"
	total=$((total + size))
done
echo "corpus/$t: $(ls "corpus/$t" | wc -l) files, $total bytes"
