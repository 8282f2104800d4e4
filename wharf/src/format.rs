//! Docker-shaped output: tables through a Go-style tabwriter, `--format` Go templates
//! (with docker's `json` function and `table` prefix), and docker's human sizes and ages.

use std::io::Write;

use gotmpl::{Template, Value};
use serde_json::Value as Json;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("template parsing error: {0}")]
    Parse(gotmpl::TemplateError),
    #[error("template: {0}")]
    Exec(gotmpl::TemplateError),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// Go's strings.Title: the first letter of each word upper-cased.
fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric() && c != '\'' && c != '_';
    }
    out
}

/// Converts a template value back to JSON for docker's `{{json .}}`.
fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Uint(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.to_string()),
        Value::List(l) => Json::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
        Value::Function(_) => Json::Null,
    }
}

/// Go's encoding/json escapes HTML characters; docker output carries that.
pub fn go_json(v: &Json) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// A parsed `--format` value: `table ...` renders a header and aligns columns.
pub struct Format {
    template: Template,
    table: bool,
}

impl Format {
    pub fn parse(src: &str) -> Result<Self, FormatError> {
        // docker's `--format json`: each object as one line of JSON.
        let src = if src == "json" { "{{json .}}" } else { src };
        let (table, body) = match src.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, src),
        };
        // Docker writes `\t` in a format as a tab.
        let body = body.replace("\\t", "\t");
        let template = Template::new("")
            .func("json", |args: &[Value]| {
                let v = args.first().cloned().unwrap_or(Value::Nil);
                Ok(Value::String(go_json(&to_json(&v)).into()))
            })
            .func("upper", |args: &[Value]| {
                Ok(Value::String(
                    args.first()
                        .map(|v| v.to_string().to_uppercase())
                        .unwrap_or_default()
                        .into(),
                ))
            })
            .func("lower", |args: &[Value]| {
                Ok(Value::String(
                    args.first()
                        .map(|v| v.to_string().to_lowercase())
                        .unwrap_or_default()
                        .into(),
                ))
            })
            .func("join", |args: &[Value]| {
                let sep = args.get(1).map(|v| v.to_string()).unwrap_or_default();
                let items = match args.first() {
                    Some(Value::List(l)) => l.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                    _ => vec![],
                };
                Ok(Value::String(items.join(&sep).into()))
            })
            .func("title", |args: &[Value]| {
                let text = args.first().map(|v| v.to_string()).unwrap_or_default();
                Ok(Value::String(title(&text).into()))
            })
            .func("split", |args: &[Value]| {
                let text = args.first().map(|v| v.to_string()).unwrap_or_default();
                let sep = args.get(1).map(|v| v.to_string()).unwrap_or_default();
                Ok(Value::List(
                    text.split(sep.as_str())
                        .map(|p| Value::String(p.to_string().into()))
                        .collect(),
                ))
            })
            .func("truncate", |args: &[Value]| {
                let text = args.first().map(|v| v.to_string()).unwrap_or_default();
                let n = args
                    .get(1)
                    .map_or(0, |v| v.to_string().parse().unwrap_or(0));
                Ok(Value::String(
                    text.chars().take(n).collect::<String>().into(),
                ))
            })
            .func("pad", |args: &[Value]| {
                let text = args.first().map(|v| v.to_string()).unwrap_or_default();
                let n = |i: usize| {
                    args.get(i)
                        .map_or(0, |v| v.to_string().parse().unwrap_or(0))
                };
                Ok(Value::String(
                    format!("{}{text}{}", " ".repeat(n(1)), " ".repeat(n(2))).into(),
                ))
            })
            .parse(&body)
            .map_err(FormatError::Parse)?;
        Ok(Self { template, table })
    }

    pub fn is_table(&self) -> bool {
        self.table
    }

    pub fn render(&self, data: &Json) -> Result<String, FormatError> {
        let v = gotmpl::to_value(data).map_err(FormatError::Exec)?;
        self.template
            .execute_to_string(&v)
            .map_err(FormatError::Exec)
    }

    /// Writes one line per row; a table gets the header row (the template rendered with
    /// each field replaced by its column title) and aligned columns.
    pub fn write_rows(
        &self,
        out: &mut impl Write,
        header: &Json,
        rows: &[Json],
    ) -> Result<(), FormatError> {
        let mut lines = Vec::with_capacity(rows.len() + 1);
        if self.table {
            lines.push(self.render(header)?);
        }
        for r in rows {
            lines.push(self.render(r)?);
        }
        if self.table {
            write_table(out, &lines)?;
        } else {
            for l in lines {
                writeln!(out, "{l}")?;
            }
        }
        Ok(())
    }
}

/// Aligns tab-separated lines the way docker does: Go's tabwriter with minwidth 10 and
/// padding 3. Go counts the padding inside minwidth, this tabwriter adds it on top.
pub fn write_table(out: &mut impl Write, lines: &[String]) -> std::io::Result<()> {
    let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(7).padding(3);
    for l in lines {
        writeln!(tw, "{l}")?;
    }
    let buf = tw
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    // tabwriter pads the last column too when it is followed by a tab; docker's lines end
    // at the last character.
    for line in String::from_utf8_lossy(&buf).lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units, Go's `%.3g`.
pub fn human_size(size: u64) -> String {
    human_size_with(size, 3)
}

/// docker's `units.HumanSizeWithPrecision`: decimal units, `precision` significant digits.
pub fn human_size_with(size: u64, precision: i32) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size as f64;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(s, precision), UNITS[i])
}

/// docker's `units.BytesSize`: binary units, Go's `%.4g`.
pub fn bytes_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut s = size as f64;
    let mut i = 0;
    while s >= 1024.0 && i < UNITS.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_g(s, 4), UNITS[i])
}

/// Go's `%.<prec>g` for non-negative numbers.
fn go_g(x: f64, prec: i32) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let sci = format!("{:.*e}", (prec - 1) as usize, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    trim_zeros(&format!("{:.*}", (prec - 1 - exp).max(0) as usize, x))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Go's `time.Duration` text (`5s`, `1m30s`, `500ms`, `0s`).
pub fn go_duration_text(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let (sign, n) = if nanos < 0 {
        ("-", -(nanos as i128))
    } else {
        ("", nanos as i128)
    };
    if n < 1_000_000_000 {
        let (unit, div) = if n < 1_000 {
            ("ns", 1.0)
        } else if n < 1_000_000 {
            ("µs", 1e3)
        } else {
            ("ms", 1e6)
        };
        return format!("{sign}{}{unit}", trim_float(n as f64 / div));
    }
    let secs = n as f64 / 1e9;
    let h = (n / 3_600_000_000_000) as i64;
    let m = ((n / 60_000_000_000) % 60) as i64;
    let s = secs - (h * 3600 + m * 60) as f64;
    let s = trim_float((s * 1e9).round() / 1e9);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

fn trim_float(f: f64) -> String {
    let t = format!("{f:.9}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let hours = (secs as f64 / 3600.0).round() as i64;
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s / 60 < 60 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// "N units ago" for an RFC 3339 timestamp, or "N/A" when it is missing or unreadable.
pub fn since(ts: Option<&str>) -> String {
    match ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => {
            let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
            format!("{} ago", human_duration(secs))
        }
        None => "N/A".into(),
    }
}

/// Go's `time.Time.String()` layout as docker prints CreatedAt.
pub fn go_time(ts: Option<&str>) -> String {
    ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                .to_string()
        })
        .unwrap_or_default()
}

/// Docker's indented JSON (four spaces) for `inspect`.
pub fn pretty_json(v: &impl serde::Serialize) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).unwrap_or_default();
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_print_as_gos() {
        assert_eq!(go_duration_text(5_000_000_000), "5s");
        assert_eq!(go_duration_text(90_000_000_000), "1m30s");
        assert_eq!(go_duration_text(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration_text(500_000_000), "500ms");
    }

    #[test]
    fn sizes_match_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(7_338_000), "7.34MB");
        assert_eq!(human_size(999_600), "1e+03kB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
        assert_eq!(bytes_size(512), "512B");
        assert_eq!(bytes_size(1024 * 1024), "1MiB");
        assert_eq!(bytes_size(1_273_000), "1.214MiB");
        assert_eq!(bytes_size(25_277_000_000), "23.54GiB");
    }

    #[test]
    fn durations_match_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    #[test]
    fn templates_render_tables_and_json() {
        let f = Format::parse("table {{.Repository}}\\t{{.Tag}}").unwrap();
        assert!(f.is_table());
        let mut out = Vec::new();
        f.write_rows(
            &mut out,
            &json!({"Repository": "REPOSITORY", "Tag": "TAG"}),
            &[json!({"Repository": "alpine", "Tag": "latest"})],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "REPOSITORY   TAG\nalpine       latest\n"
        );
        let f = Format::parse("{{json .Config}} {{.A}}").unwrap();
        assert_eq!(
            f.render(&json!({"Config": {"Cmd": ["sh"], "X": "<"}, "A": 1}))
                .unwrap(),
            r#"{"Cmd":["sh"],"X":"\u003c"} 1"#
        );
        assert!(Format::parse("{{.A").is_err());
        let f = Format::parse(
            "{{title .N}}|{{index (split .N \"-\") 1}}|{{truncate .N 3}}|{{pad .N 1 2}}|",
        )
        .unwrap();
        assert_eq!(
            f.render(&json!({"N": "web-front"})).unwrap(),
            "Web-Front|front|web| web-front  |"
        );
    }
}
