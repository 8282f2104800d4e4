//! `events` and `GET /events`: the event log from `since` (or from now), filtered, until
//! `until` passes or (without one) until the reader goes away.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::OperationError;
use crate::context::Context;
use crate::events::{self, Filters};

#[derive(Debug, Clone, Default)]
pub struct EventsRequest {
    /// Unix nanoseconds; None: only what happens from now on.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// docker's filters as `key=value`.
    pub filters: Vec<String>,
}

/// Feeds `sink` docker's event messages; stops when `sink` fails or `wanted` says the
/// reader is gone (checked while nothing happens).
pub fn stream(
    root: &Path,
    req: &EventsRequest,
    sink: &mut dyn FnMut(&Value) -> std::io::Result<()>,
    wanted: &dyn Fn() -> bool,
) -> Result<(), OperationError> {
    let filters = Filters::parse(&req.filters).map_err(OperationError::Invalid)?;
    let db = Context::watch(root)?;
    let mut seq = match req.since {
        Some(_) => 0,
        None => db.last_event()?,
    };
    let since = req.since.unwrap_or(0);
    loop {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        for e in db.events_after(seq, since)? {
            seq = e.seq;
            if req.until.is_some_and(|u| e.time_nano > u) {
                return Ok(());
            }
            if filters.matches(&e) {
                sink(&events::message(&e))?;
            }
        }
        if req.until.is_some_and(|u| now > u) || !wanted() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
