//! A container's log as `docker logs` and `GET /containers/{id}/logs` read it: the entries
//! between `since` and `until`, the last `tail` of them, then (with `follow`) what comes
//! until the container stops or the reader goes away.

use std::path::Path;
use std::time::Duration;

use super::OperationError;
use crate::container::{self, logs, lookup};
use crate::context::Context;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// The last N entries only (None: all).
    pub tail: Option<usize>,
    /// Unix nanoseconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// docker's `tail` values: "all", a count, a negative number for all.
pub fn parse_tail(s: &str) -> Result<Option<usize>, OperationError> {
    match s {
        "all" | "" => Ok(None),
        n => match n.parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(n as usize)),
            Err(_) => Err(OperationError::Invalid(format!(
                "invalid value for \"tail\": {n}"
            ))),
        },
    }
}

/// docker's `since`/`until` values (RFC 3339, Unix seconds, Go durations ago).
pub fn parse_bound(s: &str) -> Result<i64, OperationError> {
    logs::parse_time(s, chrono::Utc::now()).ok_or_else(|| {
        OperationError::Invalid(format!("invalid value for \"since\"/\"until\": {s}"))
    })
}

/// Feeds `sink` the entries; stops early when `sink` fails (the reader went away).
pub fn read(
    root: &Path,
    name: &str,
    o: &LogOptions,
    sink: &mut dyn FnMut(&[logs::Entry]) -> std::io::Result<()>,
) -> Result<(), OperationError> {
    let db = Context::watch(root)?;
    let c = lookup::find(&db, name)?;
    let mut reader = logs::Reader::open(&container::log_path(root, &c.id))?;
    let keep = |e: &logs::Entry| {
        let t = logs::entry_nanos(e);
        o.since.is_none_or(|s| t >= s) && o.until.is_none_or(|u| t <= u)
    };
    let mut first: Vec<logs::Entry> = reader.read_new()?.into_iter().filter(keep).collect();
    if let Some(n) = o.tail {
        let skip = first.len().saturating_sub(n);
        first.drain(..skip);
    }
    sink(&first)?;
    if !o.follow || o.until.is_some() {
        return Ok(());
    }
    loop {
        let running = container::load(&db, &c.id)?.is_some_and(|c| c.is_running());
        sink(&reader.read_new()?)?;
        if !running {
            // One more read catches what the monitor wrote just before recording the exit.
            sink(&reader.read_new()?)?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
