//! Shared body of the format fuzz targets: stamp the format's magic into the input so every
//! mutation reaches that reader, then open (every table checked), summarise, inflate, and
//! read what it reports as data (1 MiB cap). It must return, never panic, never allocate
//! without bound.

use reprodisk_verifier::bytes::ReadAt;
use reprodisk_verifier::format::VirtualDisk;

/// Runs the reader on `data` with `magic` written at `at` (if the input reaches there).
pub fn drive(data: &[u8], magic: &[u8], at: usize) {
    let mut img = data.to_vec();
    if let Some(dst) = img.get_mut(at..at + magic.len()) {
        dst.copy_from_slice(magic);
    }
    let Ok(d) = VirtualDisk::open(img) else { return };
    let _ = serde_json::to_string(&d.summary());
    if let VirtualDisk::Qcow2(q) = &d {
        let _ = q.check_compressed();
    }
    let mut budget = 1u64 << 20;
    let mut pos = 0;
    while let Ok(Some((s, e))) = d.next_data(pos) {
        assert!(pos <= s && s < e && e <= d.len(), "next_data out of order");
        let n = (e - s).min(budget).min(1 << 16);
        let mut buf = vec![0u8; n as usize];
        let _ = d.read_exact_at(&mut buf, s);
        budget -= n;
        if budget == 0 {
            break;
        }
        pos = s + n;
    }
}
