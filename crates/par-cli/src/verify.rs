//! `par verify FILE.apkg [--sha256 HEX] [--signature SIG --key PUBKEY]`: exit 0 only when
//! every requested check passes, one line per failure otherwise. The archive itself is
//! always checked (names, types, sizes) so a hostile file never verifies.

use std::process::ExitCode;

use crate::cli::VerifyArgs;

pub(crate) fn main(args: &VerifyArgs) -> ExitCode {
    let mut notes = Vec::new();
    let failures = failures(args, &mut notes);
    if failures.is_empty() {
        return crate::output::to_stdout(|out| {
            for note in &notes {
                writeln!(out, "{note}")?;
            }
            writeln!(out, "ok: {}", args.file.display())
        });
    }
    for f in &failures {
        eprintln!("FAIL {}: {f}", args.file.display());
    }
    ExitCode::FAILURE
}

/// Every failed check; checks that pass may leave a line in `notes` (the signer).
fn failures(args: &VerifyArgs, notes: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(expected) = &args.sha256 {
        check_sha256(args, expected, &mut out);
    }
    if let (Some(signature), Some(key)) = (&args.signature, &args.key) {
        check_signature(args, signature, key, &mut out, notes);
    }
    if let Err(e) = par_archive::list_entries(&args.file, &par_archive::Limits::default()) {
        out.push(format!("archive: {e}"));
    }
    out
}

fn check_sha256(args: &VerifyArgs, expected: &str, out: &mut Vec<String>) {
    let expected = expected.to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        out.push(format!("sha256: '{expected}' is not 64 hex characters"));
        return;
    }
    match par_archive::sha256_file(&args.file) {
        Ok(actual) if actual == expected => {}
        Ok(actual) => out.push(format!("sha256: expected {expected}, got {actual}")),
        Err(e) => out.push(format!("sha256: {e}")),
    }
}

fn check_signature(
    args: &VerifyArgs,
    signature: &std::path::Path,
    key: &std::path::Path,
    out: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let key = match par_registry::PublicKeyFile::load(key) {
        Ok(key) => key,
        Err(e) => return out.push(format!("key: {e}")),
    };
    let bytes = match std::fs::read(signature) {
        Ok(bytes) => bytes,
        Err(e) => return out.push(format!("signature: {}: {e}", signature.display())),
    };
    match par_registry::verify_detached(&args.file, &bytes, &[key]) {
        Ok(signer) => notes.push(format!("signature: good, by {signer}")),
        Err(e) => out.push(format!("signature: {e}")),
    }
}
