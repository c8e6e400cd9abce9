//! Reading one entry into memory without extracting.

use par_archive::{read_entry, ArchiveError, LimitKind};

use crate::support::{raw_zip, zip_files, RawEntry, Scratch};

#[test]
fn reads_a_file_entry() {
    let scratch = Scratch::new();
    let big = vec![b'r'; 100_000];
    let apkg = scratch.apkg(
        "p.apkg",
        &zip_files(&[("agent.yaml", b"name: x\n"), ("requirements.txt", &big)]),
    );
    assert_eq!(read_entry(&apkg, "agent.yaml", 1024).unwrap(), b"name: x\n");
    assert_eq!(read_entry(&apkg, "requirements.txt", 100_000).unwrap(), big);
}

#[test]
fn a_missing_entry_is_reported_by_name() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg(
        "p.apkg",
        &raw_zip(&[RawEntry::dir("src/"), RawEntry::file("src/a.py", b"")]),
    );
    for name in ["agent.yaml", "src/", "src", "SRC/a.py"] {
        match read_entry(&apkg, name, 1024).unwrap_err() {
            ArchiveError::MissingEntry { entry, .. } => assert_eq!(entry, name),
            other => panic!("{name}: unexpected {other}"),
        }
    }
    let message = read_entry(&apkg, "agent.yaml", 1024)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("p.apkg") && message.contains("agent.yaml"),
        "{message}"
    );
}

#[test]
fn an_entry_declared_larger_than_the_cap_is_refused_before_reading() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg("p.apkg", &zip_files(&[("agent.yaml", &[b'a'; 2000])]));
    let err = read_entry(&apkg, "agent.yaml", 1999).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Limit {
                kind: LimitKind::EntryBytes,
                value: 2000,
                max: 1999,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(read_entry(&apkg, "agent.yaml", 2000).unwrap().len(), 2000);
}

#[test]
fn a_hostile_archive_is_refused_even_for_a_good_entry() {
    let scratch = Scratch::new();
    let entries = [
        RawEntry::file("agent.yaml", b"name: x\n"),
        RawEntry::file("../../evil", b"x"),
    ];
    let apkg = scratch.apkg("p.apkg", &raw_zip(&entries));
    let err = read_entry(&apkg, "agent.yaml", 1024).unwrap_err();
    assert!(matches!(err, ArchiveError::UnsafeName { .. }), "{err}");
}
