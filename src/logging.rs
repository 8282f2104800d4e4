//! runc's logging contract: `--log FILE` with `--log-format text|json`. Each message is one line
//! (`{"level","msg","time"}` in JSON), so a failure at the default level writes exactly one line
//! that podman and containerd can parse. Messages also go to stderr for people.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Opens the log file (appending, as runc does). Without `--log`, messages go to stderr only.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
    Ok(())
}

/// One log line in the chosen format.
pub fn line(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        Format::Json => format!(
            "{}\n",
            serde_json::json!({"level": level, "msg": msg, "time": time})
        ),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    }
}

/// A message on stderr in one write (`eprintln!` makes two: the text, then the newline), so
/// that the lines of processes sharing the stream do not interleave.
fn say(msg: &str) {
    let _ = std::io::stderr().write_all(format!("{msg}\n").as_bytes());
}

fn emit(level: &str, msg: &str, to_stderr: bool) {
    let Some(l) = LOGGER.get() else {
        say(msg);
        return;
    };
    if level == "debug" && !l.debug {
        return;
    }
    let time = || humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    if let Some(mut f) = l.file.as_ref() {
        let _ = f.write_all(line(l.format, level, msg, &time()).as_bytes());
    } else if level == "debug" {
        // runc's --debug without --log: log lines on stderr, so they can be told from output.
        eprint!("{}", line(Format::Text, level, msg, &time()));
        return;
    }
    if to_stderr || l.file.is_none() {
        say(msg);
    }
}

pub fn error(msg: &str) {
    emit("error", msg, true);
}

pub fn warn(msg: &str) {
    emit("warning", msg, true);
}

pub fn debug(msg: &str) {
    emit("debug", msg, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_is_one_object() {
        let l = line(Format::Json, "error", "container \"x\" does not exist", "t");
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
    }

    #[test]
    fn text_line_quotes_msg() {
        assert_eq!(
            line(Format::Text, "error", "a \"b\"", "t"),
            "time=\"t\" level=error msg=\"a \\\"b\\\"\"\n"
        );
    }
}
