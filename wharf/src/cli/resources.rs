//! docker's resource flags, which `run`/`create` and `update` share, as an `Update`.

use wharf::container::parse;
use wharf::container::resources::Update;

#[derive(clap::Args, Debug, Default)]
pub struct ResourceFlags {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long, value_name = "uint16")]
    blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "int")]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "int")]
    cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", allow_hyphen_values = true)]
    cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "string")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "string")]
    cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short, long, value_name = "bytes")]
    memory: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "bytes")]
    memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
}

impl ResourceFlags {
    /// The flags given, parsed; docker's zero means "not given".
    pub fn update(&self) -> anyhow::Result<Update> {
        let size = |v: &Option<String>, flag| -> anyhow::Result<Option<i64>> {
            Ok(v.as_deref()
                .map(|s| parse::ram_in_bytes(s, flag))
                .transpose()?
                .filter(|n| *n != 0))
        };
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            _ => size(&self.memory_swap, "--memory-swap")?,
        };
        let nonzero = |v: Option<i64>| v.filter(|n| *n != 0);
        Ok(Update {
            cpu_shares: nonzero(self.cpu_shares),
            cpu_period: nonzero(self.cpu_period),
            cpu_quota: nonzero(self.cpu_quota),
            nano_cpus: self
                .cpus
                .as_deref()
                .map(parse::nano_cpus)
                .transpose()?
                .filter(|n| *n != 0),
            cpuset_cpus: self.cpuset_cpus.clone().filter(|c| !c.is_empty()),
            cpuset_mems: self.cpuset_mems.clone().filter(|c| !c.is_empty()),
            memory: size(&self.memory, "-m, --memory")?,
            memory_reservation: size(&self.memory_reservation, "--memory-reservation")?,
            memory_swap,
            // Given at all, it counts: 0 and -1 mean unlimited, as in docker.
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight.filter(|n| *n != 0),
            restart_policy: None,
        })
    }
}
