#!/bin/sh
# Regenerates the seed-* inputs of corpus/ext4, corpus/fat and corpus/inspect from tiny images
# made by mke2fs, mkfs.vfat, mtools, sfdisk and sgdisk. Each seed is a mode byte (see
# README.md) followed by the image, stored without its zero tail when the mode pads it back.
# Run from fuzz/. The images match the committed seeds up to timestamps (mkfs.vfat and
# mtools stamp the current time). Needs e2fsprogs, dosfstools, mtools, fdisk (sfdisk), gdisk (sgdisk), attr.
set -eu
out=$(pwd)/corpus
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
cd "$w"
export E2FSPROGS_FAKE_TIME=1700000000 MTOOLS_SKIP_CHECK=1
uuid=11111111-2222-3333-4444-555555555555

mkdir -p src/sub src/emptydir src2/d
printf 'hello\n' > src/a.txt
seq -f 'world %g' 1 300 > src/sub/b.txt
ln -s a.txt src/link
ln -s "$(printf 'x%.0s' $(seq 1 80))" src/longlink
echo x > src2/f
setfattr -n user.test -v hello src2/f
setfattr -n user.big -v "$(printf 'v%.0s' $(seq 1 300))" src2/f
for i in $(seq 1 60); do ln src2/f "src2/d/a-rather-long-file-name-number-$i"; done
find src src2 -exec touch -h -d @1700000000 {} +

ext() { # name size src mke2fs-args...
	name=$1 size=$2 src=$3; shift 3
	truncate -s "$size" "$name.img"
	mke2fs -q -F -b 1024 -N 24 -U $uuid -E hash_seed=$uuid,root_owner=0:0 "$@" -d "$src" "$name.img"
}
ext nocsum 64K src -t ext4 -O ^has_journal,^metadata_csum,^uninit_bg,^resize_inode
ext csum 64K src -t ext4 -O ^has_journal,^resize_inode
ext gdtcsum 96K src -t ext4 -O ^has_journal,^metadata_csum,uninit_bg
ext ext2 64K src -t ext2 -O ^resize_inode
ext ext4-128k 128K src -t ext4 -O ^has_journal
ext ext4-4k 256K src -t ext4 -b 4096 -O ^has_journal,^resize_inode
ext ext4j 2100K src -t ext4 -J size=1,location=40 -O ^resize_inode
ext htree 96K src2 -t ext4 -N 16 -O ^has_journal,^resize_inode
e2fsck -fyD htree.img >/dev/null || [ $? -eq 1 ]   # index /d (exit 1: fixed)

mkfs.vfat -C -n SEEDFAT12 -i 12345678 f12.img 64 >/dev/null
mkfs.vfat -C -F 16 -s 1 -n SEEDFAT16 -i 12345678 f16.img 2200 >/dev/null
mkfs.vfat -C -F 32 -s 1 -f 1 -n SEEDFAT32 -i 12345678 f32.img 34000 >/dev/null
for f in f12 f16 f32; do
	mmd -i $f.img ::/EFI ::/EFI/BOOT
	mcopy -m -i $f.img src/a.txt ::/EFI/BOOT/BOOTX64.EFI
	mcopy -m -i $f.img src/sub/b.txt "::/A Long File Name.txt"
	mcopy -m -i $f.img src/a.txt ::/short.cfg
done

truncate -s 200K mbr.img
printf 'start=64,size=128,type=83\nstart=192,size=128,type=e\n' | sfdisk -q mbr.img
dd if=nocsum.img of=mbr.img bs=512 seek=64 conv=notrunc status=none
dd if=f12.img of=mbr.img bs=512 seek=192 conv=notrunc status=none
truncate -s 200K gpt.img
sgdisk -a 1 -U $uuid -n 1:34:161 -t 1:ef00 -c 1:ESP -u 1:22222222-2222-3333-4444-555555555555 \
	-n 2:162:289 -t 2:8304 -c 2:root -u 2:33333333-2222-3333-4444-555555555555 gpt.img >/dev/null
dd if=f12.img of=gpt.img bs=512 seek=34 conv=notrunc status=none
dd if=nocsum.img of=gpt.img bs=512 seek=162 conv=notrunc status=none

OUT=$out python3 - <<'PY'
import os
out = os.environ["OUT"]
def img(n, trim=False):
    d = open(n + ".img", "rb").read()
    return d.rstrip(b"\0") if trim else d
def seed(target, name, mode, data):
    os.makedirs(f"{out}/{target}", exist_ok=True)
    open(f"{out}/{target}/seed-{name}", "wb").write(bytes([mode]) + data)
seed("ext4", "nocsum-raw", 0, img("nocsum"))
for n in ["nocsum", "csum", "gdtcsum", "ext2", "ext4-128k", "ext4-4k", "ext4j", "htree"]:
    seed("ext4", n, 1, img(n, True))
seed("ext4", "csum-restamp", 3, img("csum", True))
seed("fat", "fat12-raw", 0, img("f12"))
for n in ["f12", "f16", "f32"]:
    seed("fat", n, 1, img(n, True))
seed("inspect", "ext4-bare", 0, img("nocsum"))
seed("inspect", "ext4-bare-diff", 1, img("csum"))
seed("inspect", "fat12-bare-diff", 1, img("f12"))
seed("inspect", "mbr", 1 << 2, img("mbr", True))
seed("inspect", "gpt-diff", 1, img("gpt"))
seed("inspect", "fat16-bare", 3 << 2, img("f16", True))
seed("inspect", "ext4j-bare", 3 << 2, img("ext4j", True))
PY
