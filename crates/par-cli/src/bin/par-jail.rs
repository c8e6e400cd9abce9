//! `par-jail`: the jail launcher as a small executable of its own. The runtime starts
//! one for every jail it builds; executing this instead of the whole `par` binary (with
//! its HTTP server, TLS and Python tooling) keeps a jail's start and its two resident
//! processes small. `par __jail` runs the same code when this file is not installed
//! next to `par`.

fn main() {
    std::process::exit(par_sandbox::launcher::main());
}
