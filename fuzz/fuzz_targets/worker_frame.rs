#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| par_fuzz_targets::worker_frame(data));
