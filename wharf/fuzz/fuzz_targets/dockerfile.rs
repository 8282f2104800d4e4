//! Dockerfile reading: here-documents lifted, parsed, stages and their ARGs resolved for
//! the last stage and for a named target. Never panics, whatever the text.

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use wharf::build::{heredoc, plan};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lifted = heredoc::lift(text);
    let args: HashMap<String, String> = [("VERSION".to_string(), "1".to_string())].into();
    let _ = plan(&lifted.text, &args, None);
    let _ = plan(&lifted.text, &args, Some("base"));
});
