//! `stats [--no-stream] [-a] [--no-trunc] [--format T] [CONTAINER...]`: docker's live
//! table of CPU, memory, network, block I/O and pids, refreshed every second, or one
//! reading with `--no-stream`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use wharf::container::{self, lookup, stats, Container};
use wharf::context::Access;
use wharf::format::{bytes_size, human_size, Format};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    containers: Vec<String>,
}

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn targets(root: &Path, a: &Args) -> anyhow::Result<Vec<Container>> {
    let ctx = super::open(root, Access::Shared)?;
    if a.containers.is_empty() {
        return Ok(container::all(&ctx.db)?
            .into_iter()
            .filter(|c| a.all || c.is_running())
            .collect());
    }
    a.containers
        .iter()
        .map(|n| lookup::find(&ctx.db, n).map_err(super::daemon_error))
        .collect()
}

fn row(c: &Container, prev: &stats::Sample, cur: &stats::Sample, no_trunc: bool) -> Value {
    let running = c.is_running();
    let pct = |v: f64| format!("{v:.2}%");
    json!({
        "ID": if no_trunc { c.id.as_str() } else { c.short_id() },
        "Container": c.name,
        "Name": c.name,
        "CPUPerc": if running { pct(stats::cpu_percent(prev, cur)) } else { "--".into() },
        "MemUsage": if running {
            format!("{} / {}", bytes_size(cur.mem_usage), bytes_size(cur.mem_limit))
        } else { "-- / --".into() },
        "MemPerc": if running { pct(stats::mem_percent(cur)) } else { "--".into() },
        "NetIO": format!("{} / {}", human_size(cur.net_rx), human_size(cur.net_tx)),
        "BlockIO": format!("{} / {}", human_size(cur.blk_read), human_size(cur.blk_write)),
        "PIDs": cur.pids.to_string(),
    })
}

pub fn run(root: &Path, a: Args) -> anyhow::Result<()> {
    let format = Format::parse(a.format.as_deref().unwrap_or(DEFAULT))?;
    let header = json!({
        "ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    });
    // Readings by container id: each row compares with the previous round's.
    let read = |cs: &[Container]| -> HashMap<String, stats::Sample> {
        cs.iter()
            .map(|c| (c.id.clone(), stats::sample(&c.id, c.state.pid)))
            .collect()
    };
    let mut prev = read(&targets(root, &a)?);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        // Looked up every round: containers come and go, and a named one that is
        // removed ends the command with docker's error.
        let cs = targets(root, &a)?;
        let cur = read(&cs);
        let rows: Vec<Value> = cs
            .iter()
            .map(|c| {
                let s = &cur[&c.id];
                row(c, prev.get(&c.id).unwrap_or(s), s, a.no_trunc)
            })
            .collect();
        let mut out = std::io::stdout().lock();
        if !a.no_stream {
            // Clear the screen and home the cursor, as docker's live view does.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        format.write_rows(&mut out, &header, &rows)?;
        out.flush()?;
        if a.no_stream {
            return Ok(());
        }
        prev = cur;
    }
}
