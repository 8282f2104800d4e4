//! `logs`: the container's json-file log, with docker's `-f`, `-t`, `--tail`, `--since`,
//! `--until` and `--details`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use wharf::container::{self, logs, lookup};
use wharf::context::Access;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Number of lines to show from the end of the logs ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    until: Option<String>,
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    container: String,
}

fn bound(s: &Option<String>) -> anyhow::Result<Option<i64>> {
    s.as_deref()
        .map(|v| {
            logs::parse_time(v, chrono::Utc::now())
                .ok_or_else(|| anyhow::anyhow!("invalid value for \"since\"/\"until\": {v}"))
        })
        .transpose()
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let ctx = super::open(root, Access::Shared)?;
    let c = lookup::find(&ctx.db, &a.container)?;
    let tail: Option<usize> = match a.tail.as_str() {
        "all" => None,
        n => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => anyhow::bail!("invalid value for \"tail\": {n}"),
        },
    };
    let since = bound(&a.since)?;
    let until = bound(&a.until)?;
    let mut reader = logs::Reader::open(&container::log_path(root, &c.id))?;
    let keep = |e: &logs::Entry| {
        let t = logs::entry_nanos(e);
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
    };
    let mut first: Vec<logs::Entry> = reader.read_new()?.into_iter().filter(keep).collect();
    if let Some(n) = tail {
        let skip = first.len().saturating_sub(n);
        first.drain(..skip);
    }
    print(&first, &a)?;
    if !a.follow || until.is_some() {
        return Ok(());
    }
    loop {
        let running = container::load(&ctx.db, &c.id)?.is_some_and(|c| c.is_running());
        let new = reader.read_new()?;
        print(&new, &a)?;
        if !running {
            // One more read catches what the monitor wrote just before recording the exit.
            print(&reader.read_new()?, &a)?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn print(entries: &[logs::Entry], a: &Args) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for e in entries {
        let w: &mut dyn Write = if e.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        if a.timestamps {
            write!(w, "{} ", e.time)?;
        }
        // docker writes the log driver's attributes (none here: wharf takes no --log-opt)
        // and a space.
        if a.details {
            write!(w, " ")?;
        }
        w.write_all(e.log.as_bytes())?;
    }
    out.flush()?;
    err.flush()?;
    Ok(())
}
