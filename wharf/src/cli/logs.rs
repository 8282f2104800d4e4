//! `logs`: the container's json-file log, with docker's `-f`, `-t`, `--tail`, `--since`,
//! `--until` and `--details`.

use std::io::Write;
use std::path::Path;

use wharf::container::logs;
use wharf::operations::logs as oplogs;

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

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let bound = |s: &Option<String>| s.as_deref().map(oplogs::parse_bound).transpose();
    let o = oplogs::LogOptions {
        follow: a.follow,
        tail: oplogs::parse_tail(&a.tail)?,
        since: bound(&a.since)?,
        until: bound(&a.until)?,
    };
    oplogs::read(root, &a.container, &o, &mut |entries| print(entries, &a))?;
    Ok(())
}

fn print(entries: &[logs::Entry], a: &Args) -> std::io::Result<()> {
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
