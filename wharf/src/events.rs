//! The event log: what happened to containers, images, networks and volumes, recorded in
//! the store by whichever process did it (a CLI command, the API service, a container's
//! monitor), so that `events` and `GET /events` see every front door's actions without a
//! daemon. Recording is best effort: an action never fails because its event could not
//! be written.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::store::{Db, EventRow};

/// docker's event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Image => "image",
            Self::Network => "network",
            Self::Volume => "volume",
        }
    }
}

/// The event `action` on `actor` (an id or name) with docker's attributes, stamped now.
pub fn event(kind: Kind, action: &str, actor: &str, attributes: &[(&str, &str)]) -> EventRow {
    let attrs: BTreeMap<&str, &str> = attributes.iter().copied().collect();
    EventRow {
        seq: 0,
        time_nano: chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        kind: kind.as_str().into(),
        action: action.into(),
        actor: actor.into(),
        attributes: serde_json::to_string(&attrs).unwrap_or_else(|_| "{}".into()),
    }
}

/// Records an event on its own, for an action whose change is not one store write.
pub fn record(db: &Db, kind: Kind, action: &str, actor: &str, attributes: &[(&str, &str)]) {
    let _ = db.add_event(&event(kind, action, actor, attributes));
}

/// A container event with docker's attributes: its name, image and labels. Pass it to the
/// store write that makes the change (`add_container`, `container::update_reporting`...),
/// so that both commit at once.
pub fn container_event(
    c: &crate::container::Container,
    action: &str,
    extra: &[(&str, &str)],
) -> EventRow {
    let mut attrs: Vec<(&str, &str)> = vec![("name", &c.name), ("image", &c.spec.config.image)];
    attrs.extend(
        c.spec
            .config
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    attrs.extend_from_slice(extra);
    event(Kind::Container, action, &c.id, &attrs)
}

/// Records a container event on its own.
pub fn container(db: &Db, c: &crate::container::Container, action: &str, extra: &[(&str, &str)]) {
    let _ = db.add_event(&container_event(c, action, extra));
}

/// docker's JSON message for an event.
pub fn message(e: &EventRow) -> Value {
    let attrs: Value = serde_json::from_str(&e.attributes).unwrap_or_else(|_| json!({}));
    let mut v = json!({
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.actor, "Attributes": attrs},
        "scope": "local",
        "time": e.time_nano / 1_000_000_000,
        "timeNano": e.time_nano,
    });
    // The fields API clients before 1.22 read, which docker still sends.
    if e.kind == "container" || e.kind == "image" {
        v["status"] = json!(e.action);
        v["id"] = json!(e.actor);
        if let Some(from) = attrs.get("image") {
            v["from"] = from.clone();
        }
    }
    v
}

/// docker's `--filter` for events: type, event, container, image, network, volume, label;
/// several values of one key are alternatives, keys all hold.
#[derive(Debug, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(list: &[String]) -> Result<Self, String> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in list {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| format!("bad format of filter (expected name=value): {f}"))?;
            if !matches!(
                k,
                "type" | "event" | "container" | "image" | "network" | "volume" | "label"
            ) {
                return Err(format!("invalid filter '{k}'"));
            }
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(Self(m))
    }

    pub fn matches(&self, e: &EventRow) -> bool {
        let attrs: BTreeMap<String, String> =
            serde_json::from_str(&e.attributes).unwrap_or_default();
        let name = attrs.get("name").cloned().unwrap_or_default();
        let actor_is = |want: &str| {
            e.actor == want || (!want.is_empty() && e.actor.starts_with(want)) || name == want
        };
        self.0.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "type" => e.kind == *v,
                "event" => e.action == *v || e.action.split(':').next() == Some(v.as_str()),
                "container" => e.kind == "container" && actor_is(v),
                "network" => e.kind == "network" && actor_is(v),
                "volume" => e.kind == "volume" && actor_is(v),
                "image" => {
                    attrs.get("image").is_some_and(|i| i == v) || (e.kind == "image" && actor_is(v))
                }
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => attrs.get(lk).is_some_and(|x| x == lv),
                    None => attrs.contains_key(v.as_str()),
                },
                _ => false,
            })
        })
    }
}
