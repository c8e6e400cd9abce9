//! The fuzz smoke that needs no nightly and no libFuzzer: every input of each target's
//! corpus, plus a fixed number of deterministic mutations of each, through the same
//! functions cargo-fuzz runs. A panic is a crash the fuzzer would report.
//!
//! The corpus of a target is `fuzz/seeds/<target>` (committed), `fuzz/regressions/<target>`
//! (crashes found by fuzzing, kept once fixed), `fuzz/corpus/<target>` (what `fuzz/seed.sh`
//! and fuzz runs collected, when present) and inputs taken from the fixtures in place.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Files named `name` one level under `dir` (`fixtures/agents/*/agent.yaml`).
fn named_in_subfolders(dir: &Path, name: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path().join(name)))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let fuzz = repo().join("fuzz");
    let mut files = Vec::new();
    for kind in ["seeds", "regressions", "corpus"] {
        files.extend(files_in(&fuzz.join(kind).join(target)));
    }
    let agents = repo().join("fixtures/agents");
    match target {
        "archive" => files.extend(
            files_in(&repo().join("target/fixtures"))
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "apkg")),
        ),
        "manifest" => files.extend(named_in_subfolders(&agents, "agent.yaml")),
        "dotenv" => files.extend(named_in_subfolders(&agents, ".env")),
        _ => {}
    }
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// xorshift64: the same mutations on every run, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One libFuzzer-style mutation: flip, overwrite with an interesting byte, insert,
/// delete a range, duplicate a range, or truncate.
fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = [0, 0xff, 0x7f, 0x80, b'\n', b'"', b'{', b':'][rng.below(8)];
            }
            2 => {
                let i = rng.below(len + 1);
                out.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                out.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let copy = out[start..end].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, copy);
            }
            _ => out.truncate(rng.below(len + 1)),
        }
    }
    out
}

/// Runs `target` over its corpus and `mutations` mutants of the corpus.
fn replay(name: &str, target: fn(&[u8]), mutations: usize) {
    let inputs = corpus(name);
    assert!(!inputs.is_empty(), "no corpus for {name}");
    for input in &inputs {
        target(input);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    for i in 0..mutations {
        let seed = &inputs[i % inputs.len()];
        target(&mutate(seed, &mut rng));
    }
}

#[test]
fn archive() {
    replay("archive", par_fuzz_targets::archive, 300);
}

#[test]
fn manifest() {
    replay("manifest", par_fuzz_targets::manifest, 3000);
}

#[test]
fn dotenv() {
    replay("dotenv", par_fuzz_targets::dotenv, 3000);
}

#[test]
fn worker_frame() {
    replay("worker_frame", par_fuzz_targets::worker_frame, 3000);
}

#[test]
fn openpgp() {
    replay("openpgp", par_fuzz_targets::openpgp, 3000);
}

#[test]
fn registry_index() {
    replay("registry_index", par_fuzz_targets::registry_index, 3000);
}

#[test]
fn http_routes() {
    replay("http_routes", par_fuzz_targets::http_routes, 1500);
}
