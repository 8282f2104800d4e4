//! Mount option parsing: any list of options gives a verdict, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let options: Vec<String> = text.split(',').map(str::to_string).collect();
    hull::entry::mount_options(&options);
});
