//! `par-archive` owns APKG files as zip archives: hashing them, listing and validating
//! their entries, reading one entry into memory, and extracting them safely. It trusts
//! nothing in an archive. Every entry's metadata is checked before a byte is inflated
//! (names, types, encryption, compression method, duplicates and case or Unicode
//! collisions, local headers against the central directory, overlapping entries, declared
//! sizes); anything wrong refuses the whole archive rather than being repaired. Inflated
//! bytes are counted again while they stream, and extraction is all-or-nothing: a private
//! staging directory renamed into place. It is synchronous and Unix-only; async callers
//! run it on a blocking thread.
//!
//! The zip crate is used for locating entries and inflating them; the facts it hides or
//! rewrites (the raw central names, duplicates, local headers) are read from the bytes.

mod checks;
mod digest;
mod error;
mod extract;
mod inspect;
mod limits;
mod meter;
mod mode;
mod names;
mod raw;
mod read;
mod tree;

pub use digest::sha256_file;
pub use error::{ArchiveError, LimitKind, NameProblem};
pub use extract::extract_to;
pub use inspect::{list_entries, EntryInfo};
pub use limits::Limits;
pub use read::read_entry;
