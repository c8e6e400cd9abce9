//! Integration tests against real servers on 127.0.0.1: a fault-injecting HTTP(S) server
//! (TLS with a test CA from rcgen), s3s-fs (strict SigV4), and keys and signatures made
//! by the `gpg` CLI.

mod support;

mod cache;
mod http;
mod index;
mod s3;
mod signatures;
