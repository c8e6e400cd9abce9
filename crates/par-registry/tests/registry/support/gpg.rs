//! OpenPGP keys and signatures made by the real `gpg` CLI (Debian's GnuPG), once per
//! build directory: test processes (nextest runs one per test) share them under a file
//! lock, so RSA key generation happens once, not per test.
//!
//! Keys: an ed25519 and an rsa3072 signing key (trusted in tests) and another ed25519
//! key (never trusted). `payload.bin` is signed by each: `<key>.sig` binary and
//! `<key>.asc` armored.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Bump when the fixture set changes, so stale copies are rebuilt.
const VERSION: &str = "v1";
pub(crate) const KEYS: [&str; 3] = ["ed25519", "rsa", "other"];

pub(crate) struct Gpg {
    pub dir: PathBuf,
}

impl Gpg {
    pub(crate) fn payload(&self) -> PathBuf {
        self.dir.join("payload.bin")
    }

    pub(crate) fn payload_bytes(&self) -> Vec<u8> {
        std::fs::read(self.payload()).unwrap()
    }

    /// `<key>.pub.asc` (armored) or `<key>.pub.gpg` (binary).
    pub(crate) fn public_key(&self, key: &str, armored: bool) -> PathBuf {
        let ext = if armored { "asc" } else { "gpg" };
        self.dir.join(format!("{key}.pub.{ext}"))
    }

    pub(crate) fn signature(&self, key: &str, armored: bool) -> Vec<u8> {
        let ext = if armored { "asc" } else { "sig" };
        std::fs::read(self.dir.join(format!("{key}.{ext}"))).unwrap()
    }

    pub(crate) fn fingerprint(&self, key: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{key}.fpr")))
            .unwrap()
            .trim()
            .to_owned()
    }
}

pub(crate) fn gpg() -> &'static Gpg {
    static GPG: OnceLock<Gpg> = OnceLock::new();
    GPG.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("par-registry-gpg");
        std::fs::create_dir_all(&root).unwrap();
        let lock = std::fs::File::create(root.join(".lock")).unwrap();
        lock.lock().unwrap();
        let dir = root.join(VERSION);
        if !dir.join("complete").exists() {
            let _ = std::fs::remove_dir_all(&dir);
            generate(&dir);
            std::fs::write(dir.join("complete"), b"").unwrap();
        }
        Gpg { dir }
    })
}

fn generate(dir: &Path) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    set_private(&home);
    let run = |args: &[&str]| gpg_cmd(&home, args);
    run(&[
        "--quick-gen-key",
        "PAR Ed <ed25519@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    run(&[
        "--quick-gen-key",
        "PAR RSA <rsa@example.com>",
        "rsa3072",
        "sign",
        "never",
    ]);
    run(&[
        "--quick-gen-key",
        "PAR Other <other@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);

    // 300 KiB of deterministic bytes: several read chunks.
    let payload: Vec<u8> = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("payload.bin"), &payload).unwrap();
    let payload_path = dir.join("payload.bin");
    let payload_arg = payload_path.to_str().unwrap();

    for key in KEYS {
        let uid = format!("{key}@example.com");
        let out = |name: String| dir.join(name).to_str().unwrap().to_owned();
        run(&["--export", "-o", &out(format!("{key}.pub.gpg")), &uid]);
        run(&[
            "--armor",
            "--export",
            "-o",
            &out(format!("{key}.pub.asc")),
            &uid,
        ]);
        run(&[
            "-u",
            &uid,
            "--detach-sign",
            "-o",
            &out(format!("{key}.sig")),
            payload_arg,
        ]);
        run(&[
            "-u",
            &uid,
            "--armor",
            "--detach-sign",
            "-o",
            &out(format!("{key}.asc")),
            payload_arg,
        ]);
        std::fs::write(dir.join(format!("{key}.fpr")), fingerprint(&home, &uid)).unwrap();
    }
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "gpg-agent"])
        .status();
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

fn gpg_cmd(home: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .args(args)
        .output()
        .expect("gpg must be installed (Debian package gpg)");
    assert!(
        output.status.success(),
        "gpg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn fingerprint(home: &Path, uid: &str) -> String {
    let listing = gpg_cmd(home, &["--with-colons", "--fingerprint", uid]);
    let text = String::from_utf8(listing).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("fpr:"))
        .and_then(|rest| rest.split(':').find(|f| f.len() == 40))
        .unwrap()
        .to_owned()
}
