//! The log's recovery rules on hand-damaged files.

use super::*;

fn log_with(n: usize, durability: Durability) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (mut log, r) = Log::open(&path, durability).unwrap();
    assert_eq!(r, Recovery::default());
    for i in 0..n {
        log.append(format!("record {i}").as_bytes()).unwrap();
    }
    (dir, path)
}

#[test]
fn appended_records_read_back_in_order() {
    let (_d, path) = log_with(100, Durability::Durable);
    let all = read_all(&path).unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(all[42], b"record 42");
    let (log, r) = Log::open(&path, Durability::Durable).unwrap();
    assert_eq!((log.records(), r.truncated_bytes), (100, 0));
}

#[test]
fn a_torn_tail_is_truncated_and_reported() {
    let (_d, path) = log_with(10, Durability::Buffered);
    let full = std::fs::metadata(&path).unwrap().len();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&encode(b"half a record")[..10]);
    std::fs::write(&path, &bytes).unwrap();
    let (log, r) = Log::open(&path, Durability::Durable).unwrap();
    assert_eq!((log.records(), r.truncated_bytes), (10, 10));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), full);
}

#[test]
fn a_bad_record_before_valid_ones_is_corruption_not_truncation() {
    let (_d, path) = log_with(10, Durability::Durable);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[HEADER + 2] ^= 0xff; // the first record's payload
    std::fs::write(&path, &bytes).unwrap();
    match Log::open(&path, Durability::Durable) {
        Err(Error::Corrupt {
            count: 1, first: 0, ..
        }) => {}
        other => panic!("expected corruption at 0, got {:?}", other.map(|(_, r)| r)),
    }
    let c = check(&path, 2).unwrap();
    assert_eq!((c.bad_checksums, c.corrupt.clone()), (1, vec![0]));
    let r = repair(&path).unwrap();
    assert_eq!((r.kept, r.dropped_bad), (9, 1));
    assert_eq!(
        Log::open(&path, Durability::Durable)
            .unwrap()
            .1
            .truncated_bytes,
        0
    );
}

#[test]
fn the_checker_gives_the_same_answer_with_any_number_of_threads() {
    let (_d, path) = log_with(5000, Durability::Buffered);
    let one = check(&path, 1).unwrap();
    let many = check(&path, 4).unwrap();
    assert_eq!(
        (one.records, one.bad_checksums, one.torn_tail_bytes),
        (5000, 0, 0)
    );
    assert_eq!(
        (many.records, many.bad_checksums),
        (one.records, one.bad_checksums)
    );
    assert!(one.gb_per_s > 0.0);
}

#[test]
fn a_bad_length_in_the_middle_is_corruption_for_the_checker_too() {
    let (_d, path) = log_with(10, Durability::Durable);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let c = check(&path, 0).unwrap();
    assert_eq!(
        (c.records, c.corrupt.clone(), c.torn_tail_bytes),
        (9, vec![0], 0)
    );
}
