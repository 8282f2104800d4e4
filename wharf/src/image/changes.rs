//! Dockerfile-style `--change` instructions (`CMD`, `ENV`, ...) applied to an image config,
//! as `import -c` takes them.

use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("{0} is not a valid change command")]
    Unsupported(String),
    #[error("{instruction} requires {what}: {line:?}")]
    Syntax {
        instruction: String,
        what: &'static str,
        line: String,
    },
}

/// Applies one change line to the `config` object of an image config.
pub fn apply(config: &mut Map<String, Value>, line: &str) -> Result<(), ChangeError> {
    let line = line.trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let instruction = word.to_ascii_uppercase();
    let syntax = |what| ChangeError::Syntax {
        instruction: instruction.clone(),
        what,
        line: line.to_string(),
    };
    if rest.is_empty() {
        return Err(syntax("an argument"));
    }
    match instruction.as_str() {
        "CMD" => {
            config.insert("Cmd".into(), command(rest, true));
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), command(rest, true));
        }
        "ENV" => {
            let new = pairs(rest).ok_or_else(|| syntax("KEY=VALUE or KEY VALUE"))?;
            let env = config.entry("Env").or_insert_with(|| Value::Array(vec![]));
            let list = env.as_array_mut().ok_or_else(|| syntax("a list Env"))?;
            for (k, v) in new {
                list.retain(|e| {
                    e.as_str().and_then(|s| s.split_once('=')).map(|p| p.0) != Some(&k)
                });
                list.push(Value::String(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let new = pairs(rest).ok_or_else(|| syntax("KEY=VALUE"))?;
            let labels = config
                .entry("Labels")
                .or_insert_with(|| Value::Object(Map::new()));
            let map = labels
                .as_object_mut()
                .ok_or_else(|| syntax("a map Labels"))?;
            for (k, v) in new {
                map.insert(k, Value::String(v));
            }
        }
        "EXPOSE" => {
            let ports = config
                .entry("ExposedPorts")
                .or_insert_with(|| Value::Object(Map::new()));
            let map = ports
                .as_object_mut()
                .ok_or_else(|| syntax("a map ExposedPorts"))?;
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                map.insert(p, json!({}));
            }
        }
        "VOLUME" => {
            let vols = config
                .entry("Volumes")
                .or_insert_with(|| Value::Object(Map::new()));
            let map = vols
                .as_object_mut()
                .ok_or_else(|| syntax("a map Volumes"))?;
            let list = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => v,
                Err(_) => rest.split_whitespace().map(str::to_string).collect(),
            };
            for v in list {
                map.insert(v, json!({}));
            }
        }
        "USER" => {
            config.insert("User".into(), Value::String(rest.into()));
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), Value::String(rest.into()));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), Value::String(rest.into()));
        }
        "ONBUILD" => {
            let list = config
                .entry("OnBuild")
                .or_insert_with(|| Value::Array(vec![]));
            list.as_array_mut()
                .ok_or_else(|| syntax("a list OnBuild"))?
                .push(Value::String(rest.into()));
        }
        _ => return Err(ChangeError::Unsupported(word.to_string())),
    }
    Ok(())
}

/// JSON array form as is; shell form wrapped in `/bin/sh -c` like docker.
fn command(rest: &str, shell: bool) -> Value {
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(v) => json!(v),
        Err(_) if shell => json!(["/bin/sh", "-c", rest]),
        Err(_) => json!([rest]),
    }
}

/// `K=V K2="v 2"` pairs, or the legacy `K V with spaces` form.
fn pairs(rest: &str) -> Option<Vec<(String, String)>> {
    let first = rest.split_whitespace().next()?;
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace)?;
        return Some(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut val = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, '\\') => {
                    chars.next();
                    if let Some(n) = chars.peek() {
                        val.push(*n);
                    }
                }
                (_, c) => val.push(c),
            }
            chars.next();
        }
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        out.push((key, val));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_docker_changes() {
        let mut c = Map::new();
        for l in [
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /init",
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "LABEL x=y",
            "EXPOSE 80 53/udp",
            "USER 1000:1000",
            "WORKDIR /app",
            "VOLUME /data",
        ] {
            apply(&mut c, l).unwrap();
        }
        assert_eq!(
            Value::Object(c),
            json!({
                "Cmd": ["/bin/sh", "-c", "echo hi"],
                "Entrypoint": ["/bin/sh", "-c", "/init"],
                "Env": ["B=two words", "A=3"],
                "Labels": {"x": "y"},
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                "User": "1000:1000",
                "WorkingDir": "/app",
                "Volumes": {"/data": {}},
            })
        );
    }

    #[test]
    fn rejects_unsupported_and_empty_changes() {
        let mut c = Map::new();
        assert_eq!(
            apply(&mut c, "RUN make").unwrap_err(),
            ChangeError::Unsupported("RUN".into())
        );
        assert!(apply(&mut c, "CMD").is_err());
        assert!(apply(&mut c, "ENV =x").is_err());
        assert!(c.is_empty());
    }
}
