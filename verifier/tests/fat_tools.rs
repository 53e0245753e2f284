//! The FAT reader against the reference tools on images mkfs.fat makes and mtools fills:
//! every value equals what `fsck.fat -n -v`, `minfo`, `blkid -p` and `mdir -/` report, and
//! every file reads back as `mcopy` extracts it.

mod fat_support;

use fat_support::{check_fsck, num, run, run_ok, sparse_image, udev_map};
use reprodisk_verifier::bytes::ImageFile;
use reprodisk_verifier::fat::{Fat, FatType, Tree};
use std::collections::BTreeMap;
use std::path::Path;

struct Case {
    fat: u8,
    mib: u64,
    sector: u32,
    cluster_sectors: u32,
    label: Option<&'static str>,
    volid: &'static str,
}

/// Fills the image with mtools: nested directories, long and unicode names, an empty file,
/// a multi-cluster file, lower-case 8.3 names (NT case bits) and a plain 8.3 name.
fn populate(img: &str, dir: &Path, bytes_per_cluster: usize) {
    let i = ["-i", img];
    let mmd = |p: &str| run_ok("mmd", &[i[0], i[1], p]);
    let put = |name: &str, data: &[u8], target: &str| {
        let src = dir.join(name);
        std::fs::write(&src, data).expect("tempdir is writable");
        run_ok("mcopy", &[i[0], i[1], src.to_str().expect("tempdir paths are UTF-8"), target]);
    };
    mmd("::/Some Long Directory Name");
    mmd("::/sub");
    mmd("::/sub/deeper");
    mmd("::/sub/deeper/deepest");
    put("a", b"hello\n", "::/README.TXT");
    put("b", b"lower\n", "::/lower.txt");
    put("c", b"", "::/EMPTY");
    put("d", b"", "::/An empty file with a long name");
    let big: Vec<u8> = (0..bytes_per_cluster * 3 + 123).map(|n| (n * 7 + n / 251) as u8).collect();
    put("e", &big, "::/Some Long Directory Name/multi cluster file.bin");
    put("f", "ünïcödé ★ ∑\n".as_bytes(), "::/sub/ünïcödé ★ ∑.txt");
    put("g", b"deep\n", "::/sub/deeper/deepest/x.y");
    put("h", b"mixed\n", "::/sub/deeper/MiXeD CaSe NaMe.Text");
    // A long name of exactly 13 units fills one LFN entry with no terminator or padding.
    put("i", b"13\n", "::/sub/thirteen_char");
    // A deleted entry (0xE5) must be skipped as mdir skips it.
    put("j", b"gone\n", "::/sub/deleted soon.txt");
    run_ok("mdel", &[i[0], i[1], "::/sub/deleted soon.txt"]);
    // Enough entries in one directory to span several clusters with small clusters.
    for n in 0..40 {
        put("n", format!("{n}\n").as_bytes(), &format!("::/sub/file number {n:02} with a long name"));
    }
}

/// `key: value` and `key=value` lines of minfo.
fn minfo_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let at = l.find([':', '='])?;
            Some((&l[..at], &l[at + 1..]))
        })
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

fn check_minfo(img: &str, fat: &Fat<'_, ImageFile>) {
    let m = minfo_map(&run_ok("minfo", &["-i", img, "::"]));
    let b = &fat.boot;
    let hex =
        |v: &str| u32::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("hex {v:?}"));
    let field = |k: &str| m.get(k).unwrap_or_else(|| panic!("minfo printed no {k:?}: {m:?}")).as_str();
    assert_eq!(field("banner"), String::from_utf8_lossy(&b.bs_oem_name));
    assert_eq!(num(field("sector size")), u64::from(b.bpb_byts_per_sec));
    assert_eq!(num(field("cluster size")), u64::from(b.bpb_sec_per_clus));
    assert_eq!(num(field("reserved (boot) sectors")), u64::from(b.bpb_rsvd_sec_cnt));
    assert_eq!(num(field("fats")), u64::from(b.bpb_num_fats));
    assert_eq!(num(field("max available root directory slots")), u64::from(b.bpb_root_ent_cnt));
    assert_eq!(num(field("small size")), u64::from(b.bpb_tot_sec16));
    if b.bpb_tot_sec16 == 0 {
        assert_eq!(num(field("big size")), u64::from(b.bpb_tot_sec32));
    }
    assert_eq!(hex(field("media descriptor byte")), u32::from(b.bpb_media));
    assert_eq!(num(field("sectors per fat")), u64::from(b.bpb_fat_sz16));
    assert_eq!(num(field("sectors per track")), u64::from(b.bpb_sec_per_trk));
    assert_eq!(num(field("heads")), u64::from(b.bpb_num_heads));
    assert_eq!(num(field("hidden sectors")), u64::from(b.bpb_hidd_sec));
    assert_eq!(hex(field("physical drive id")), u32::from(b.bs_drv_num));
    assert_eq!(hex(field("dos4")), u32::from(b.bs_boot_sig));
    assert_eq!(hex(field("serial number")), b.bs_vol_id);
    assert_eq!(field("disk label").as_bytes(), b.bs_vol_lab);
    assert_eq!(field("disk type").as_bytes(), b.bs_fil_sys_type);
    // The report carries the same values.
    let s = fat.summary(None);
    assert_eq!(s.oem_name, field("banner").trim_end());
    assert_eq!(u64::from(s.bytes_per_sector), num(field("sector size")));
    assert_eq!(u64::from(s.sectors_per_cluster), num(field("cluster size")));
    assert_eq!(u64::from(s.reserved_sectors), num(field("reserved (boot) sectors")));
    assert_eq!(u64::from(s.num_fats), num(field("fats")));
    assert_eq!(u64::from(s.root_entries), num(field("max available root directory slots")));
    assert_eq!(u32::from(s.media), hex(field("media descriptor byte")));
    assert_eq!(
        (u64::from(s.sectors_per_track), u64::from(s.heads)),
        (num(field("sectors per track")), num(field("heads")))
    );
    assert_eq!(u64::from(s.hidden_sectors), num(field("hidden sectors")));
    assert_eq!(u32::from(s.drive_number), hex(field("physical drive id")));
    assert_eq!(s.fil_sys_type, field("disk type").trim_end());
    let total = if b.bpb_tot_sec16 == 0 { field("big size") } else { field("small size") };
    assert_eq!(u64::from(s.total_sectors), num(total));
    if fat.geometry.fat_type == FatType::Fat32 {
        assert_eq!(u64::from(s.sectors_per_fat), num(field("Big fatlen")));
        assert_eq!(s.root_cluster.map(u64::from), Some(num(field("rootCluster"))));
        assert_eq!(s.backup_boot_sector.map(u64::from), Some(num(field("backup boot sector"))));
        assert_eq!(s.fsinfo_free_count.map(u64::from), Some(num(field("free clusters"))));
        assert_eq!(s.fsinfo_next_free.map(u64::from), Some(num(field("last allocated cluster"))));
    } else {
        assert_eq!(u64::from(s.sectors_per_fat), num(field("sectors per fat")));
    }
    if fat.geometry.fat_type == FatType::Fat32 {
        assert_eq!(num(field("Big fatlen")), u64::from(b.bpb_fat_sz32));
        assert_eq!(hex(field("Extended flags")), u32::from(b.bpb_ext_flags));
        assert_eq!(hex(field("FS version")), u32::from(b.bpb_fs_ver));
        assert_eq!(num(field("rootCluster")), u64::from(b.bpb_root_clus));
        assert_eq!(num(field("infoSector location")), u64::from(b.bpb_fs_info));
        assert_eq!(num(field("backup boot sector")), u64::from(b.bpb_bk_boot_sec));
        let fi = fat.fsinfo.as_ref().expect("mkfs.fat writes an fsinfo sector");
        assert_eq!(hex(field("signature")), fi.fsi_lead_sig);
        assert_eq!(num(field("free clusters")), u64::from(fi.fsi_free_count));
        assert_eq!(num(field("last allocated cluster")), u64::from(fi.fsi_nxt_free));
        // The FSInfo hint is right: mtools keeps it in step with the FAT.
        assert_eq!(fi.fsi_free_count, fat.table.free_count());
        let backup = fat.backup_boot.as_ref().expect("mkfs.fat writes a backup boot sector");
        assert_eq!(backup, b);
    }
}

fn check_blkid(img: &str, fat: &Fat<'_, ImageFile>, tree: &Tree, case: &Case) {
    let m = udev_map(&run_ok("blkid", &["-p", "-o", "udev", img]));
    let s = fat.summary(Some(tree));
    assert_eq!(m.get("ID_FS_TYPE").map(String::as_str), Some("vfat"));
    assert_eq!(m.get("ID_FS_VERSION").map(String::as_str), Some(s.fat_type));
    assert_eq!(m.get("ID_FS_UUID"), s.volume_id.as_ref());
    assert_eq!(m.get("ID_FS_LABEL"), s.label.as_ref());
    assert_eq!(m.get("ID_FS_LABEL_FATBOOT"), s.label_fatboot.as_ref());
    assert_eq!(m.get("ID_FS_SEC_TYPE").map(String::as_str), (s.fat_type != "FAT32").then_some("msdos"));
    assert_eq!(s.label.as_deref(), case.label);
    let want_id = format!("{}-{}", &case.volid[..4], &case.volid[4..]).to_uppercase();
    assert_eq!(s.volume_id.as_deref(), Some(want_id.as_str()));
}

/// One parsed `mdir -/` entry line.
#[derive(Debug, PartialEq, Eq)]
struct MdirEntry {
    short: String,
    size: Option<u64>,
    date: String,
    time: String,
    long: Option<String>,
}

/// `mdir -/` output as directory path -> entries in listed order, `.`/`..` left out, and the
/// free bytes it reports.
fn mdir_listing(img: &str) -> (BTreeMap<String, Vec<MdirEntry>>, Option<u64>) {
    let mut free_bytes = None;
    let text = run_ok("mdir", &["-/", "-a", "-i", img, "::"]);
    let mut out: BTreeMap<String, Vec<MdirEntry>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("Directory for ::") {
            let p = if p == "/" { String::new() } else { p.to_string() };
            out.entry(p.clone()).or_default();
            cur = Some(p);
            continue;
        }
        if line.starts_with("Total files listed") {
            cur = None;
        }
        if let Some(v) = line.trim().strip_suffix(" bytes free") {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            free_bytes = digits.parse().ok();
        }
        let Some(dir) = &cur else { continue };
        let chars: Vec<char> = line.chars().collect();
        if chars.len() < 13 || line.starts_with(' ') {
            continue;
        }
        let name: String = chars[..8].iter().collect();
        let ext: String = chars[9..12].iter().collect();
        let short = if ext.trim().is_empty() {
            name.trim().to_string()
        } else {
            format!("{}.{}", name.trim(), ext.trim())
        };
        if short == "." || short == ".." {
            continue;
        }
        let rest: String = chars[12..].iter().collect();
        let mut words = rest.split_whitespace();
        let size_word = words.next().expect("a size column");
        let size = if size_word == "<DIR>" { None } else { Some(num(size_word)) };
        let date = words.next().expect("a date column").to_string();
        let time = words.next().expect("a time column").to_string();
        // mdir pads the hour to two columns ("2026-11-26   1:17"), so the gap between date
        // and time is two or three spaces depending on the time of day.
        let after_date = rest.find(&date).map(|p| p + date.len()).expect("date");
        let after_time =
            rest[after_date..].find(&time).map(|p| after_date + p + time.len()).expect("date and time");
        // Compare times as HH:MM: mdir writes hours before 10 without a leading zero.
        let time = if time.find(':') == Some(1) { format!("0{time}") } else { time };
        let long = rest[after_time..].strip_prefix("  ").map(str::to_string).filter(|s| !s.is_empty());
        out.get_mut(dir).expect("created above").push(MdirEntry { short, size, date, time, long });
    }
    (out, free_bytes)
}

/// `NAME.EXT` from raw 8.3 bytes decoded as code page 850 by glibc's iconv.
fn cp850_short_name(raw: &[u8; 11]) -> String {
    let decode = |b: &[u8]| {
        let end = b.iter().rposition(|&c| c != b' ').map_or(0, |p| p + 1);
        let tmp = tempfile::NamedTempFile::new().expect("a temp file");
        std::fs::write(tmp.path(), &b[..end]).expect("tempdir is writable");
        run_ok("iconv", &["-f", "CP850", "-t", "UTF-8", tmp.path().to_str().expect("UTF-8 temp path")])
    };
    let (base, ext) = (decode(&raw[..8]), decode(&raw[8..]));
    if ext.is_empty() { base } else { format!("{base}.{ext}") }
}

fn check_mdir_and_contents(img: &str, fat: &Fat<'_, ImageFile>, tree: &Tree) {
    let (listing, free_bytes) = mdir_listing(img);
    let s = fat.summary(Some(tree));
    assert_eq!(free_bytes, Some(u64::from(s.free_clusters) * u64::from(s.bytes_per_cluster)), "free space");
    assert_eq!(s.free_clusters + s.used_clusters, s.cluster_count, "no bad clusters here");
    let mut ours: BTreeMap<String, Vec<MdirEntry>> = BTreeMap::new();
    ours.insert(String::new(), Vec::new());
    for n in &tree.nodes {
        let parent = n.path[..n.path.len() - n.name.len() - 1].to_string();
        let e = &n.entry;
        let m = e.modified();
        // mtools shows short names in code page 850; the code page is not on disk, so the
        // reader leaves bytes above 0x7F undecoded and the test decodes them with iconv.
        let short =
            if e.name_bytes().is_ascii() { e.display_name() } else { cp850_short_name(&e.name_bytes()) };
        if n.is_dir() {
            ours.insert(n.path.clone(), Vec::new());
        }
        ours.entry(parent).or_default().push(MdirEntry {
            short,
            size: (!n.is_dir()).then_some(u64::from(e.dir_file_size)),
            date: format!("{:04}-{:02}-{:02}", m.year(), m.month(), m.day()),
            time: format!("{:02}:{:02}", m.hour(), m.minute()),
            long: n.long_name.clone(),
        });
    }
    assert_eq!(ours.keys().collect::<Vec<_>>(), listing.keys().collect::<Vec<_>>(), "directories");
    for (dir, theirs) in &listing {
        let mine = &ours[dir];
        assert_eq!(mine.len(), theirs.len(), "entries of {dir:?}: {mine:#?} vs {theirs:#?}");
        for (a, b) in mine.iter().zip(theirs) {
            assert_eq!(a, b, "in {dir:?}");
        }
    }
    // Every file's bytes equal what mcopy extracts, and read_file honours its cap.
    for n in tree.nodes.iter().filter(|n| !n.is_dir()) {
        let ours = fat.read_file(&n.path, 1 << 20).unwrap_or_else(|e| panic!("{}: {e}", n.path));
        let theirs = run("mcopy", &["-n", "-i", img, &format!("::{}", n.path), "-"]);
        assert!(theirs.status.success(), "mcopy {}: {}", n.path, String::from_utf8_lossy(&theirs.stderr));
        assert_eq!(ours, theirs.stdout, "contents of {}", n.path);
        assert_eq!(ours.len() as u64, u64::from(n.entry.dir_file_size));
        if !ours.is_empty() {
            let capped = fat.read_file(&n.path, ours.len() as u64 - 1);
            assert!(
                matches!(capped, Err(reprodisk_verifier::Error::Unsupported { .. })),
                "{}: {capped:?}",
                n.path
            );
        }
    }
}

fn node_long<'t>(tree: &'t Tree, path: &str) -> Option<&'t str> {
    tree.nodes.iter().find(|n| n.path == path).and_then(|n| n.long_name.as_deref())
}

fn check_case(case: Case) {
    let dir = tempfile::tempdir().expect("a tempdir");
    let path = sparse_image(dir.path(), "fat.img", case.mib << 20);
    let img = path.to_str().expect("tempdir paths are UTF-8").to_string();
    let (fat_s, sec_s, clus_s) =
        (case.fat.to_string(), case.sector.to_string(), case.cluster_sectors.to_string());
    let mut args = vec!["-F", &fat_s, "-S", &sec_s, "-s", &clus_s, "-i", case.volid];
    if let Some(l) = case.label {
        args.extend(["-n", l]);
    }
    args.push(&img);
    run_ok("mkfs.fat", &args);
    if let Some(l) = case.label {
        // mkfs.fat writes the root label entry too; mlabel rewrites both places the same way.
        run_ok("mlabel", &["-i", &img, &format!("::{l}")]);
    }
    populate(&img, dir.path(), (case.sector * case.cluster_sectors) as usize);

    let file = ImageFile::open(&path).expect("the image opens");
    let fat = Fat::open(&file).unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(fat.geometry.fat_type.bits(), u32::from(case.fat));
    let tree = fat.walk().unwrap_or_else(|e| panic!("walk: {e}"));
    // A clean volume made by the reference tools gives no findings at all.
    assert_eq!(fat.findings, vec![], "findings on open");
    assert_eq!(tree.findings, vec![], "findings on walk");
    assert!(tree.lost_clusters.is_empty());
    // The walk saw what populate() made: 4 directories, 49 files, a unicode long name (mtools writes UCS-2 only, so no surrogate pairs), a
    // 4-cluster file, lower-case 8.3 names shown through the NT case bits.
    assert_eq!(tree.nodes.len(), 53);
    assert_eq!(node_long(&tree, "/sub/thirteen_char"), Some("thirteen_char"));
    assert!(!tree.nodes.iter().any(|n| n.path.contains("deleted")));
    let node =
        |p: &str| tree.nodes.iter().find(|n| n.path == p).unwrap_or_else(|| panic!("{p} is in the walk"));
    assert_eq!(node("/sub/ünïcödé ★ ∑.txt").long_name.as_deref(), Some("ünïcödé ★ ∑.txt"));
    assert_eq!(node("/Some Long Directory Name/multi cluster file.bin").clusters.len(), 4);
    let lower = node("/lower.txt");
    assert_eq!(
        (lower.long_name.as_deref(), lower.short_name.as_str(), lower.entry.dir_nt_res),
        (None, "LOWER.TXT", 0x18)
    );
    assert_eq!(node("/sub/file number 39 with a long name").order, 42);
    check_fsck(&img, &fat, &tree, true);
    check_minfo(&img, &fat);
    check_blkid(&img, &fat, &tree, &case);
    check_mdir_and_contents(&img, &fat, &tree);
    // The summary serializes, and its times cover the entries of the walk.
    let s = fat.summary(Some(&tree));
    let json = serde_json::to_value(&s).expect("the summary serializes");
    assert_eq!(json["times"]["modified"]["count"], tree.nodes.len());
    assert_eq!(s.files.unwrap() + s.directories.unwrap(), tree.nodes.len());
}

#[test]
fn fat12_512_byte_sectors_2_sector_clusters() {
    check_case(Case {
        fat: 12,
        mib: 2,
        sector: 512,
        cluster_sectors: 2,
        label: Some("LBL12"),
        volid: "0a0b0c0d",
    });
}

#[test]
fn fat12_4096_byte_sectors_without_label() {
    check_case(Case { fat: 12, mib: 8, sector: 4096, cluster_sectors: 1, label: None, volid: "12345678" });
}

#[test]
fn fat16_512_byte_sectors_4_sector_clusters() {
    check_case(Case {
        fat: 16,
        mib: 20,
        sector: 512,
        cluster_sectors: 4,
        label: Some("SIXTEEN"),
        volid: "deadbeef",
    });
}

#[test]
fn fat16_4096_byte_sectors() {
    check_case(Case {
        fat: 16,
        mib: 40,
        sector: 4096,
        cluster_sectors: 1,
        label: Some("BIGSEC"),
        volid: "00c0ffee",
    });
}

#[test]
fn fat32_512_byte_sectors_1_sector_clusters() {
    check_case(Case {
        fat: 32,
        mib: 36,
        sector: 512,
        cluster_sectors: 1,
        label: Some("THIRTYTWO"),
        volid: "cafef00d",
    });
}

#[test]
fn fat32_4096_byte_sectors() {
    check_case(Case {
        fat: 32,
        mib: 272,
        sector: 4096,
        cluster_sectors: 1,
        label: Some("EFI"),
        volid: "1c06f03b",
    });
}

/// Two images made by the same commands two seconds apart differ only in timestamps, and
/// `locate` names every differing byte as a time field of a named entry; a few fixed
/// offsets name the boot sector, FAT and file data fields they hold.
#[test]
fn locate_names_every_byte_that_differs_between_two_builds() {
    let dir = tempfile::tempdir().expect("a tempdir");
    let build = |name: &str| {
        let path = sparse_image(dir.path(), name, 2 << 20);
        let img = path.to_str().expect("tempdir paths are UTF-8").to_string();
        run_ok("mkfs.fat", &["-F", "12", "-i", "0badcafe", "-n", "TWICE", &img]);
        populate(&img, dir.path(), 2048);
        path
    };
    let a = build("a.img");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let b = build("b.img");
    let (ba, bb) = (std::fs::read(&a).expect("reads"), std::fs::read(&b).expect("reads"));
    let fat = Fat::open(&ba[..]).expect("opens");
    let tree = fat.walk().expect("walks");
    let mut named = std::collections::BTreeSet::new();
    for (off, _) in ba.iter().zip(&bb).enumerate().filter(|(_, (x, y))| x != y) {
        let r = fat.locate(&tree, off as u64).unwrap_or_else(|| panic!("byte {off:#x} is inside the volume"));
        let f = r.field.clone().unwrap_or_default();
        assert!(
            r.structure.starts_with("fat directory ")
                && ["DIR_CrtTime", "DIR_CrtDate", "DIR_WrtTime", "DIR_WrtDate", "DIR_LstAccDate"]
                    .iter()
                    .any(|t| f.ends_with(t)),
            "byte {off:#x}: {r:?}"
        );
        named.insert(format!("{} {f}", r.structure));
    }
    assert!(!named.is_empty(), "two builds two seconds apart differ in their times");
    assert!(named.iter().any(|n| n.contains("(README.TXT) DIR_WrtTime")), "{named:#?}");
    assert!(named.iter().any(|n| n.contains("(volume label) DIR_WrtTime")), "{named:#?}");

    let region =
        |off: u64| fat.locate(&tree, off).map(|r| format!("{} {}", r.structure, r.field.unwrap_or_default()));
    assert_eq!(region(0x27).as_deref(), Some("fat boot sector BS_VolID"));
    assert_eq!(region(0x1FF).as_deref(), Some("fat boot sector signature"));
    let fat1_entry_5 = fat.geometry.fat_copy_offset(1) + 7;
    assert_eq!(region(fat1_entry_5).as_deref(), Some("fat 1 entry 4"));
    let big = tree.nodes.iter().find(|n| n.path.ends_with("multi cluster file.bin")).expect("the big file");
    let second = fat.geometry.cluster_offset(big.clusters[1]) + 5;
    assert_eq!(region(second), Some(format!("file {} data", big.path)));
    let long = tree.nodes.iter().find(|n| n.path == "/Some Long Directory Name").expect("the long directory");
    // Slot 0 is the volume label, slots 1 and 2 the long name, slot 3 the short entry.
    assert_eq!((long.slot, long.lfn_slots), (3, 2));
    assert_eq!(
        region(long.offset - 32 + 0x0D),
        Some("fat directory / entry 2 (Some Long Directory Name) LDIR_Chksum".to_string())
    );
    assert_eq!(
        region(long.offset + 0x1C),
        Some("fat directory / entry 3 (Some Long Directory Name) DIR_FileSize".to_string())
    );
    assert_eq!(region(ba.len() as u64), None);
}
