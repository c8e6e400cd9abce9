//! Hostile archives: each is refused as a whole by `list_entries`, `read_entry` and
//! `extract_to`, and extraction leaves nothing behind.

use std::io::Write;

use par_archive::{
    extract_to, list_entries, read_entry, ArchiveError, LimitKind, Limits, NameProblem,
};

use crate::support::{
    deflated, listing, raw_zip, unicode_path_extra, zip_files, zip_with, RawEntry, Scratch,
    UNIX_FILE,
};

/// Runs every entry point on `bytes`, checks they refuse it and that extraction left
/// no trace, and returns `list_entries`' error.
fn refused(bytes: &[u8]) -> ArchiveError {
    let scratch = Scratch::new();
    let apkg = scratch.apkg("hostile.apkg", bytes);
    let err = list_entries(&apkg, &Limits::default()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&*apkg.to_string_lossy()),
        "no archive path in: {message}"
    );
    // Size limits belong to extraction (read_entry has its own cap); every other defect
    // refuses the archive for read_entry too.
    if !matches!(err, ArchiveError::Limit { .. }) {
        assert!(
            read_entry(&apkg, "agent.yaml", 1 << 20).is_err(),
            "read_entry accepted it"
        );
    }
    let out = scratch.path("out");
    let extracted = extract_to(&apkg, &out.join("pkg"), &Limits::default());
    assert!(extracted.is_err(), "extract_to accepted it");
    if out.exists() {
        assert_eq!(
            listing(&out),
            Vec::<String>::new(),
            "extraction left files behind"
        );
    }
    err
}

fn refused_raw(entries: &[RawEntry]) -> ArchiveError {
    refused(&raw_zip(entries))
}

/// A valid entry for the hostile ones to hide beside.
fn manifest() -> RawEntry {
    RawEntry::file("agent.yaml", b"name: x\n")
}

#[test]
fn unsafe_names_are_refused_not_sanitised() {
    let cases: &[(&[u8], NameProblem)] = &[
        (b"/etc/passwd", NameProblem::Absolute),
        (b"../evil.py", NameProblem::ParentDir),
        (b"src/../../evil.py", NameProblem::ParentDir),
        (b"src\\..\\..\\evil.py", NameProblem::Backslash),
        (b"C:/Windows/evil.dll", NameProblem::DriveLetter),
        (b"c:evil", NameProblem::DriveLetter),
        (b"evil\0.py", NameProblem::ControlCharacter),
        (b"evil\n.py", NameProblem::ControlCharacter),
        (b"src//evil.py", NameProblem::EmptyComponent),
        (b"./evil.py", NameProblem::CurrentDir),
        (b"caf\xe9.py", NameProblem::InvalidUtf8),
    ];
    for (name, expected) in cases {
        let err = refused_raw(&[manifest(), RawEntry::file(name, b"x")]);
        match err {
            ArchiveError::UnsafeName { problem, .. } => assert_eq!(problem, *expected, "{name:?}"),
            other => panic!("{name:?}: unexpected {other}"),
        }
    }
}

#[test]
fn invalid_utf8_is_refused_when_flagged_as_utf8() {
    let mut entry = RawEntry::file(b"ok\xff", b"x");
    entry.flags = 0x0800;
    let err = refused_raw(&[manifest(), entry]);
    assert!(
        matches!(
            err,
            ArchiveError::UnsafeName {
                problem: NameProblem::InvalidUtf8,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn names_in_messages_are_escaped() {
    let err = refused_raw(&[RawEntry::file(b"\x1b[2Jevil", b"x")]);
    let message = err.to_string();
    assert!(!message.contains('\x1b'), "raw escape in {message:?}");
    assert!(message.contains("evil"), "{message}");
}

#[test]
fn a_name_replaced_by_a_unicode_path_extra_field_is_refused() {
    // The zip crate would extract this entry as `../evil.py`: the central name, the local
    // name and every check would have seen `harmless.txt`.
    let mut entry = RawEntry::file("harmless.txt", b"x");
    entry.central_extra = unicode_path_extra(b"harmless.txt", "../evil.py");
    let err = refused_raw(&[manifest(), entry]);
    assert!(
        matches!(err, ArchiveError::Malformed { ref detail, .. } if detail.contains("evil")),
        "{err}"
    );
}

#[test]
fn zip_writer_absolute_path_is_refused() {
    // The zip crate itself would re-root this on extraction; we refuse it.
    let bytes = zip_files(&[("agent.yaml", b"x"), ("/tmp/evil", b"x")]);
    assert!(matches!(
        refused(&bytes),
        ArchiveError::UnsafeName {
            problem: NameProblem::Absolute,
            ..
        }
    ));
}

#[test]
fn duplicate_names_are_refused_and_named() {
    let err = refused_raw(&[
        manifest(),
        RawEntry::file("src/a.py", b"1"),
        RawEntry::file("src/a.py", b"2"),
    ]);
    match err {
        ArchiveError::Duplicate { entry, .. } => assert_eq!(entry, "src/a.py"),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_file_and_a_directory_of_one_name_are_refused() {
    let err = refused_raw(&[
        manifest(),
        RawEntry::dir("src/"),
        RawEntry::file("src", b"x"),
    ]);
    assert!(matches!(err, ArchiveError::Duplicate { .. }), "{err}");
}

#[test]
fn case_collisions_are_refused() {
    let bytes = zip_files(&[
        ("agent.yaml", b"x"),
        ("src/Main.py", b"1"),
        ("src/main.py", b"2"),
    ]);
    assert!(matches!(
        refused(&bytes),
        ArchiveError::CaseCollision { .. }
    ));
}

#[test]
fn normalisation_collisions_are_refused() {
    let nfc = RawEntry::file("caf\u{e9}.py", b"1");
    let nfd = RawEntry::file("cafe\u{301}.py", b"2");
    assert!(matches!(
        refused_raw(&[manifest(), nfc, nfd]),
        ArchiveError::CaseCollision { .. }
    ));
}

#[test]
fn a_file_under_a_file_is_refused() {
    let err = refused_raw(&[
        manifest(),
        RawEntry::file("src", b"x"),
        RawEntry::file("src/a.py", b"y"),
    ]);
    match err {
        ArchiveError::ParentIsFile { entry, parent, .. } => {
            assert_eq!((entry.as_str(), parent.as_str()), ("src/a.py", "src"))
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn symlinks_are_refused() {
    let bytes = zip_with(|w| {
        w.start_file("agent.yaml", deflated(0o644))?;
        w.write_all(b"x")?;
        w.add_symlink("src", "/etc", deflated(0o777))
    });
    assert!(matches!(
        refused(&bytes),
        ArchiveError::UnsupportedType { .. }
    ));
}

#[test]
fn symlinks_behind_a_dos_made_by_byte_are_refused() {
    let mut link = RawEntry::file("link", b"/etc/passwd").with_attr(0o120_777 << 16);
    link.made_by = 20; // MS-DOS: the zip crate would not call this a link
    assert!(matches!(
        refused_raw(&[manifest(), link]),
        ArchiveError::UnsupportedType { .. }
    ));
}

#[test]
fn special_files_are_refused() {
    for kind in [0o010_000u32, 0o020_000, 0o060_000, 0o140_000] {
        let entry = RawEntry::file("special", b"").with_attr((kind | 0o644) << 16);
        let err = refused_raw(&[manifest(), entry]);
        assert!(
            matches!(err, ArchiveError::UnsupportedType { .. }),
            "{kind:o}: {err}"
        );
    }
}

#[test]
fn a_directory_with_data_is_refused() {
    let dir = RawEntry::file("src/", b"payload").with_attr((0o040_755 << 16) | 0x10);
    assert!(matches!(
        refused_raw(&[manifest(), dir]),
        ArchiveError::UnsupportedType { .. }
    ));
}

#[test]
fn other_compression_methods_are_refused() {
    for method in [1u16, 9, 12, 14, 93, 95, 99] {
        let mut entry = RawEntry::file("src/a.py", b"x");
        entry.method = method;
        match refused_raw(&[manifest(), entry]) {
            ArchiveError::UnsupportedCompression {
                method: m, entry, ..
            } => {
                assert_eq!((m, entry.as_str()), (method, "src/a.py"));
            }
            other => panic!("method {method}: unexpected {other}"),
        }
    }
}

#[test]
fn encrypted_entries_are_refused() {
    for flag in [0x0001u16, 0x0040] {
        let mut entry = RawEntry::file("secret.py", b"x");
        entry.flags |= flag;
        assert!(matches!(
            refused_raw(&[manifest(), entry]),
            ArchiveError::Encrypted { .. }
        ));
    }
}

#[test]
fn a_local_name_differing_from_the_central_name_is_refused() {
    let mut entry = RawEntry::file("src/ok.py", b"x");
    entry.local_name = Some(b"../../evil.py".to_vec());
    let err = refused_raw(&[manifest(), entry]);
    match err {
        ArchiveError::LocalHeader { entry, detail, .. } => {
            assert_eq!(entry, "src/ok.py");
            assert!(detail.contains("evil"), "{detail}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_local_method_differing_from_the_central_method_is_refused() {
    let mut entry = RawEntry::file("src/a.py", b"x");
    entry.local_method = Some(8);
    assert!(matches!(
        refused_raw(&[manifest(), entry]),
        ArchiveError::LocalHeader { .. }
    ));
}

#[test]
fn a_central_record_pointing_at_no_local_header_is_refused() {
    let mut bytes = raw_zip(&[manifest(), RawEntry::file("b", b"x")]);
    bytes[0] = b'X'; // break the first local signature
    assert!(matches!(refused(&bytes), ArchiveError::LocalHeader { .. }));
}

#[test]
fn central_records_sharing_one_local_record_are_refused() {
    // The quoted-overlap bomb: one deflated local record, many central records naming it.
    let bomb = vec![0u8; 60_000];
    let mut entries = vec![RawEntry::deflated("a", &bomb)];
    for i in 1..50 {
        let mut alias = RawEntry::deflated(&format!("a{i}"), &bomb);
        alias.share_local_of = Some(0);
        entries.push(alias);
    }
    let err = refused_raw(&entries);
    assert!(
        matches!(
            err,
            ArchiveError::LocalHeader { .. } | ArchiveError::Overlap { .. }
        ),
        "{err}"
    );
}

#[test]
fn overlapping_entry_bomb_with_agreeing_headers_is_refused() {
    // The non-quoted overlap bomb: every local header matches its central record, but each
    // entry's data runs over all the entries after it, so a 1.7 KB file would list 50
    // entries totalling about 43 KB; scaled up, gigabytes.
    let count = 50u32;
    let record = 30 + 3 + 1; // local header, 3-byte name, 1 byte of data
    let end = count * record;
    let entries: Vec<RawEntry> = (0..count)
        .map(|i| {
            let mut e = RawEntry::file(format!("f{i:02}"), b"x");
            let spans = end - (i * record + 33);
            e.compressed_size = Some(spans);
            e.size = u64::from(spans);
            e
        })
        .collect();
    let err = refused_raw(&entries);
    match err {
        ArchiveError::Overlap { entry, other, .. } => {
            assert_eq!((entry.as_str(), other.as_str()), ("f01", "entry \"f00\""))
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn entries_sharing_bytes_are_refused_even_when_headers_agree() {
    // The first entry's declared compressed size runs into the second entry's header.
    let mut first = RawEntry::file("a", b"aaaa");
    first.compressed_size = Some(4 + 30);
    first.size = 34;
    let err = refused_raw(&[first, RawEntry::file("b", b"bbbb")]);
    match err {
        ArchiveError::Overlap { entry, other, .. } => {
            assert_eq!((entry.as_str(), other.as_str()), ("b", "entry \"a\""))
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn data_running_into_the_central_directory_is_refused() {
    let mut last = RawEntry::file("b", b"bbbb");
    last.compressed_size = Some(10);
    last.size = 10;
    let err = refused_raw(&[manifest(), last]);
    assert!(
        matches!(err, ArchiveError::Overlap { ref other, .. } if other == "the central directory"),
        "{err}"
    );
}

#[test]
fn zip_crate_shallow_copies_are_refused() {
    let bytes = zip_with(|w| {
        w.start_file("agent.yaml", deflated(0o644))?;
        w.write_all(b"x")?;
        w.start_file("big", deflated(0o644))?;
        w.write_all(&[0u8; 50_000])?;
        w.shallow_copy_file("big", "big2")
    });
    let err = refused(&bytes);
    assert!(
        matches!(
            err,
            ArchiveError::LocalHeader { .. } | ArchiveError::Overlap { .. }
        ),
        "{err}"
    );
}

#[test]
fn too_many_entries_are_refused() {
    let entries: Vec<RawEntry> = (0..20)
        .map(|i| RawEntry::file(format!("f{i}"), b""))
        .collect();
    let scratch = Scratch::new();
    let apkg = scratch.apkg("many.apkg", &raw_zip(&entries));
    let limits = Limits {
        max_entries: 19,
        ..Limits::default()
    };
    let err = list_entries(&apkg, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::TooManyEntries {
                count: 20,
                max: 19,
                ..
            }
        ),
        "{err}"
    );
    assert!(extract_to(&apkg, &scratch.path("pkg"), &limits).is_err());
    let at_limit = Limits {
        max_entries: 20,
        ..limits
    };
    assert_eq!(list_entries(&apkg, &at_limit).unwrap().len(), 20);
}

#[test]
fn duplicates_cannot_hide_entries_from_the_entry_limit() {
    // The zip crate collapses duplicate names, so it counts 1 entry here, not 30.
    let entries: Vec<RawEntry> = (0..30).map(|_| RawEntry::file("same", b"")).collect();
    let scratch = Scratch::new();
    let apkg = scratch.apkg("dups.apkg", &raw_zip(&entries));
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let err = list_entries(&apkg, &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooManyEntries { max: 10, .. }),
        "{err}"
    );
}

#[test]
fn declared_ratio_bomb_is_refused_before_inflating() {
    // 1 MiB of zeros deflates to about 1 KiB: a ratio near 1000.
    let bytes = raw_zip(&[manifest(), RawEntry::deflated("zeros", &vec![0u8; 1 << 20])]);
    match refused(&bytes) {
        ArchiveError::Limit { kind, entry, .. } => {
            assert_eq!((kind, entry.as_str()), (LimitKind::Ratio, "zeros"))
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn declared_sizes_over_the_limits_are_refused() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg(
        "big.apkg",
        &raw_zip(&[
            RawEntry::file("a", &[1; 1000]),
            RawEntry::file("b", &[2; 1000]),
        ]),
    );
    let per_entry = Limits {
        max_entry_bytes: 999,
        ..Limits::default()
    };
    let err = list_entries(&apkg, &per_entry).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Limit {
                kind: LimitKind::EntryBytes,
                ..
            }
        ),
        "{err}"
    );
    let total = Limits {
        max_total_bytes: 1999,
        ..Limits::default()
    };
    let err = extract_to(&apkg, &scratch.path("pkg"), &total).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Limit {
                kind: LimitKind::TotalBytes,
                ..
            }
        ),
        "{err}"
    );
    assert!(!scratch.path("pkg").exists());
}

#[test]
fn a_header_understating_the_inflated_size_is_caught_while_streaming() {
    // Declares 100 bytes (far under every limit and exempt from the ratio check) but
    // inflates to 8 MiB.
    let bomb = vec![0u8; 8 << 20];
    let mut entry = RawEntry::deflated("agent.yaml", &bomb);
    entry.size = 100;
    let bytes = raw_zip(&[entry]);
    let scratch = Scratch::new();
    let apkg = scratch.apkg("liar.apkg", &bytes);
    assert_eq!(
        list_entries(&apkg, &Limits::default()).unwrap()[0].size,
        100
    );
    let err = read_entry(&apkg, "agent.yaml", 1 << 20).unwrap_err();
    assert!(
        matches!(err, ArchiveError::Read { .. } | ArchiveError::Limit { .. }),
        "{err}"
    );
    let dest = scratch.path("pkg");
    assert!(extract_to(&apkg, &dest, &Limits::default()).is_err());
    assert!(!dest.exists());
    assert_eq!(listing(scratch.dir.path()), ["liar.apkg"]);
}

#[test]
fn a_header_overstating_the_inflated_size_is_refused() {
    let mut entry = RawEntry::file("agent.yaml", b"name: x\n");
    entry.size = 4000;
    let scratch = Scratch::new();
    let apkg = scratch.apkg("short.apkg", &raw_zip(&[entry]));
    let err = read_entry(&apkg, "agent.yaml", 1 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::SizeMismatch {
                declared: 4000,
                actual: 8,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn garbage_is_not_a_zip() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for bytes in [garbage.as_slice(), b"", b"PK\x05\x06"] {
        let err = refused(bytes);
        assert!(matches!(err, ArchiveError::NotZip { .. }), "{err}");
        assert!(
            err.to_string().contains("not a readable zip archive"),
            "{err}"
        );
    }
}

#[test]
fn truncated_zips_are_refused() {
    let whole = zip_files(&[("agent.yaml", b"name: x\n"), ("src/main.py", &[b'x'; 5000])]);
    for cut in [whole.len() / 2, whole.len() - 1, whole.len() - 30] {
        let err = refused(&whole[..cut]);
        assert!(
            matches!(
                err,
                ArchiveError::NotZip { .. } | ArchiveError::Malformed { .. }
            ),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn an_end_record_counting_fewer_entries_than_the_directory_holds_is_refused() {
    let mut bytes = raw_zip(&[manifest(), RawEntry::file("hidden.py", b"x")]);
    let end = bytes.len() - 22;
    bytes[end + 8] = 1; // entries on this disk
    bytes[end + 10] = 1; // entries in total
    let err = refused(&bytes);
    assert!(
        matches!(
            err,
            ArchiveError::Malformed { .. } | ArchiveError::NotZip { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_mode_without_a_type_is_a_plain_file() {
    let scratch = Scratch::new();
    let entry = RawEntry::file("a.sh", b"x").with_attr(0o755 << 16);
    let apkg = scratch.apkg(
        "p.apkg",
        &raw_zip(&[entry, RawEntry::file("b", b"y").with_attr(UNIX_FILE)]),
    );
    let entries = list_entries(&apkg, &Limits::default()).unwrap();
    assert_eq!(entries[0].mode, 0o755);
}
