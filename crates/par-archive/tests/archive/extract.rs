//! Extraction of valid archives: contents, modes, atomicity and idempotence.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use par_archive::{extract_to, list_entries, ArchiveError, EntryInfo, Limits};

use crate::support::{deflated, listing, raw_zip, zip_with, RawEntry, Scratch};

fn mode_of(path: &Path) -> u32 {
    fs_err::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A package shaped like a kit 0.4 build, with the mode bits the rules care about.
fn package() -> Vec<u8> {
    zip_with(|w| {
        w.start_file("agent.yaml", deflated(0o644))?;
        w.write_all(b"name: demo\n")?;
        w.add_directory("src/", deflated(0o755))?;
        w.start_file("src/main.py", deflated(0o644))?;
        w.write_all(&b"print('hi')\n".repeat(1000))?;
        w.start_file("bin/run.sh", deflated(0o755))?;
        w.write_all(b"#!/bin/sh\necho hi\n")?;
        w.start_file("world-writable.txt", deflated(0o777))?;
        w.write_all(b"w")?;
        w.start_file("shared.txt", deflated(0o666))?;
        w.write_all(b"s")?;
        w.add_directory("empty/", deflated(0o700))?;
        w.start_file("d\u{e9}j\u{e0}-vu.txt", deflated(0o600))?;
        w.write_all("non-ASCII name".as_bytes())?;
        Ok(())
    })
}

#[test]
fn a_valid_package_round_trips_with_its_modes() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg("demo.apkg", &package());
    let dest = scratch.path("cache/packages/abc123");
    extract_to(&apkg, &dest, &Limits::default()).unwrap();

    assert_eq!(
        fs_err::read(dest.join("agent.yaml")).unwrap(),
        b"name: demo\n"
    );
    assert_eq!(
        fs_err::read(dest.join("src/main.py")).unwrap(),
        b"print('hi')\n".repeat(1000)
    );
    assert_eq!(
        fs_err::read_to_string(dest.join("d\u{e9}j\u{e0}-vu.txt")).unwrap(),
        "non-ASCII name"
    );
    assert_eq!(mode_of(&dest.join("bin/run.sh")), 0o755, "executable kept");
    assert_eq!(mode_of(&dest.join("agent.yaml")), 0o644);
    assert_eq!(
        mode_of(&dest.join("world-writable.txt")),
        0o755,
        "0o777 loses group/other write"
    );
    assert_eq!(
        mode_of(&dest.join("shared.txt")),
        0o644,
        "0o666 loses group/other write"
    );
    assert_eq!(mode_of(&dest.join("d\u{e9}j\u{e0}-vu.txt")), 0o600);
    for dir in ["", "src", "bin", "empty"] {
        assert!(dest.join(dir).is_dir(), "{dir}");
        assert_eq!(mode_of(&dest.join(dir)), 0o755, "directory {dir:?}");
    }
    assert_eq!(listing(&dest.join("empty")), Vec::<String>::new());
    assert_eq!(
        listing(dest.parent().unwrap()),
        ["abc123"],
        "no staging directory left"
    );
}

#[test]
fn list_entries_reports_what_extraction_will_do() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg("demo.apkg", &package());
    let entries = list_entries(&apkg, &Limits::default()).unwrap();
    let find = |name: &str| -> &EntryInfo { entries.iter().find(|e| e.name == name).unwrap() };
    assert_eq!(entries.len(), 8);
    assert_eq!(
        (find("src/").is_dir, find("src/").mode, find("src/").size),
        (true, 0o755, 0)
    );
    assert_eq!(
        (find("bin/run.sh").is_dir, find("bin/run.sh").mode),
        (false, 0o755)
    );
    assert_eq!(find("world-writable.txt").mode, 0o755);
    assert_eq!(find("src/main.py").size, 12_000);
    assert!(find("src/main.py").compressed_size < 12_000);
}

#[test]
fn special_mode_bits_are_dropped() {
    let scratch = Scratch::new();
    let entries = [
        RawEntry::file("setuid", b"x").with_attr(0o104_755 << 16),
        RawEntry::file("setgid", b"x").with_attr(0o102_755 << 16),
        RawEntry::file("sticky", b"x").with_attr(0o101_777 << 16),
        RawEntry::file("no-mode", b"x").with_attr(0),
        RawEntry::file("dos-readonly", b"x").with_attr(0x01),
    ];
    let apkg = scratch.apkg("modes.apkg", &raw_zip(&entries));
    let dest = scratch.path("pkg");
    extract_to(&apkg, &dest, &Limits::default()).unwrap();
    assert_eq!(mode_of(&dest.join("setuid")), 0o755);
    assert_eq!(mode_of(&dest.join("setgid")), 0o755);
    assert_eq!(mode_of(&dest.join("sticky")), 0o755);
    assert_eq!(mode_of(&dest.join("no-mode")), 0o644);
    assert_eq!(mode_of(&dest.join("dos-readonly")), 0o644);
}

#[test]
fn implied_directories_are_created() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg(
        "kit03.apkg",
        &raw_zip(&[RawEntry::file("src/pkg/deep/mod.py", b"x")]),
    );
    let dest = scratch.path("pkg");
    extract_to(&apkg, &dest, &Limits::default()).unwrap();
    assert_eq!(
        fs_err::read(dest.join("src/pkg/deep/mod.py")).unwrap(),
        b"x"
    );
    assert_eq!(mode_of(&dest.join("src/pkg")), 0o755);
}

#[test]
fn an_empty_archive_extracts_to_an_empty_directory() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg("empty.apkg", &raw_zip(&[]));
    let dest = scratch.path("pkg");
    extract_to(&apkg, &dest, &Limits::default()).unwrap();
    assert_eq!(listing(&dest), Vec::<String>::new());
}

#[test]
fn extracting_twice_is_fine_and_keeps_the_first_tree() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg("demo.apkg", &package());
    let dest = scratch.path("pkg");
    extract_to(&apkg, &dest, &Limits::default()).unwrap();
    fs_err::write(dest.join("marker"), b"first").unwrap();
    extract_to(&apkg, &dest, &Limits::default()).unwrap();
    assert_eq!(fs_err::read(dest.join("marker")).unwrap(), b"first");
    assert_eq!(listing(scratch.dir.path()), ["demo.apkg", "pkg"]);
}

#[test]
fn a_half_failed_extraction_leaves_nothing() {
    // Every header is consistent, so all metadata checks pass; the third entry's stored
    // bytes are corrupt, so its checksum fails after two files were already written.
    let mut corrupt = RawEntry::file("src/c.py", b"original");
    corrupt.data = b"tampered".to_vec();
    let entries = [
        RawEntry::file("a.py", b"a"),
        RawEntry::file("src/b.py", b"b"),
        corrupt,
    ];
    let scratch = Scratch::new();
    let apkg = scratch.apkg("corrupt.apkg", &raw_zip(&entries));
    let dest = scratch.path("packages/pkg");
    let err = extract_to(&apkg, &dest, &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::Read { ref entry, .. } if entry == "src/c.py"),
        "{err}"
    );
    assert!(!dest.exists());
    assert_eq!(
        listing(&scratch.path("packages")),
        Vec::<String>::new(),
        "no staging left"
    );
}

#[test]
fn a_streaming_limit_hit_mid_extraction_leaves_nothing() {
    let scratch = Scratch::new();
    let entries = [
        RawEntry::file("a", &[1; 600]),
        RawEntry::file("b", &[2; 600]),
    ];
    let apkg = scratch.apkg("two.apkg", &raw_zip(&entries));
    let limits = Limits {
        max_total_bytes: 1000,
        ..Limits::default()
    };
    let dest = scratch.path("pkg");
    assert!(extract_to(&apkg, &dest, &limits).is_err());
    assert_eq!(listing(scratch.dir.path()), ["two.apkg"]);
}

#[test]
fn an_existing_destination_is_left_alone() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg("demo.apkg", &package());
    let dest = scratch.path("pkg");
    fs_err::create_dir(&dest).unwrap();
    fs_err::write(dest.join("done"), b"").unwrap();
    extract_to(&apkg, &dest, &Limits::default()).unwrap();
    assert_eq!(listing(&dest), ["done"]);
}

#[test]
fn concurrent_extractions_of_one_package_both_succeed() {
    let scratch = Scratch::new();
    let apkg = scratch.apkg("demo.apkg", &package());
    let dest = scratch.path("pkg");
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| extract_to(&apkg, &dest, &Limits::default())))
            .collect();
        for run in runs {
            run.join().unwrap().unwrap();
        }
    });
    assert_eq!(
        fs_err::read(dest.join("agent.yaml")).unwrap(),
        b"name: demo\n"
    );
    assert_eq!(listing(scratch.dir.path()), ["demo.apkg", "pkg"]);
}

#[test]
fn a_missing_archive_names_its_path() {
    let scratch = Scratch::new();
    let missing = scratch.path("nope.apkg");
    let err = extract_to(&missing, &scratch.path("pkg"), &Limits::default()).unwrap_err();
    assert!(matches!(err, ArchiveError::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope.apkg"), "{err}");
}
