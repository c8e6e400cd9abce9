//! The launcher as a binary of its own, for this crate's tests (the runtime runs the
//! same code as `par __jail`).

fn main() {
    std::process::exit(par_sandbox::launcher::main());
}
