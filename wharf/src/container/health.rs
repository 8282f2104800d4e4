//! Healthchecks as docker defines them: the check a container has (the image's
//! `HEALTHCHECK` under `run`'s `--health-*` flags), the health its state keeps, and the
//! rules that turn a probe's result into a status. The monitor runs the probes
//! (`crate::healthcheck`); everything here is plain data and arithmetic.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// docker's defaults for a field left at zero.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;
/// docker keeps the last five results and 4 KiB of each probe's output.
pub const MAX_LOG_ENTRIES: usize = 5;
pub const MAX_OUTPUT: usize = 4096;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";
/// What `ps --filter health=` calls a container without a check.
pub const NONE: &str = "none";

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// API clients send null for a field they leave unset (docker-compose does).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// docker's `HealthConfig`: durations in nanoseconds, zero meaning "the default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub interval: i64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub timeout: i64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub start_period: i64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub start_interval: i64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub retries: i64,
}

fn or_default(nanos: i64, default: Duration) -> Duration {
    if nanos > 0 {
        Duration::from_nanos(nanos as u64)
    } else {
        default
    }
}

impl HealthConfig {
    /// docker's merge of the flags over the image's check: each field the flags leave
    /// unset comes from the image.
    pub fn merge(user: Option<HealthConfig>, image: Option<HealthConfig>) -> Option<HealthConfig> {
        let Some(image) = image else {
            return user;
        };
        let Some(mut u) = user else {
            return Some(image);
        };
        if u.test.is_empty() {
            u.test = image.test;
        }
        for (mine, theirs) in [
            (&mut u.interval, image.interval),
            (&mut u.timeout, image.timeout),
            (&mut u.start_period, image.start_period),
            (&mut u.start_interval, image.start_interval),
            (&mut u.retries, image.retries),
        ] {
            if *mine == 0 {
                *mine = theirs;
            }
        }
        Some(u)
    }

    /// The daemon's checks, with docker's messages.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ] {
            if v != 0 && v < 1_000_000 {
                return Err(format!("{name} in Healthcheck cannot be less than 1ms"));
            }
        }
        if self.retries < 0 {
            return Err("Retries in Healthcheck cannot be negative".into());
        }
        match self.test.first().map(String::as_str) {
            None | Some("NONE") | Some("CMD") | Some("CMD-SHELL") => {}
            Some(other) => return Err(format!("unknown type of healthcheck test: {other:?}")),
        }
        if matches!(
            self.test.first().map(String::as_str),
            Some("CMD" | "CMD-SHELL")
        ) && self.test.len() < 2
        {
            return Err("Healthcheck test has no command".into());
        }
        Ok(())
    }

    /// The probe's command line, or None when the check is disabled or absent. A
    /// `CMD-SHELL` check runs under the container's shell (`/bin/sh -c` by default).
    pub fn command(&self, shell: &[String]) -> Option<Vec<String>> {
        match self.test.first().map(String::as_str)? {
            "CMD" => Some(self.test[1..].to_vec()),
            "CMD-SHELL" => {
                let mut argv = if shell.is_empty() {
                    vec!["/bin/sh".to_string(), "-c".to_string()]
                } else {
                    shell.to_vec()
                };
                argv.extend_from_slice(&self.test[1..]);
                Some(argv)
            }
            _ => None,
        }
    }

    pub fn interval(&self) -> Duration {
        or_default(self.interval, DEFAULT_INTERVAL)
    }

    pub fn timeout(&self) -> Duration {
        or_default(self.timeout, DEFAULT_TIMEOUT)
    }

    pub fn start_period(&self) -> Duration {
        or_default(self.start_period, Duration::ZERO)
    }

    pub fn start_interval(&self) -> Duration {
        or_default(self.start_interval, DEFAULT_START_INTERVAL)
    }

    pub fn retries(&self) -> u32 {
        if self.retries > 0 {
            self.retries as u32
        } else {
            DEFAULT_RETRIES
        }
    }

    /// The wait before the next probe, from the end of the last: the start interval while
    /// the container is still starting within its start period, the interval otherwise.
    pub fn next_wait(&self, since_start: Duration, status: &str) -> Duration {
        if since_start < self.start_period() && status == STARTING {
            self.start_interval()
        } else {
            self.interval()
        }
    }
}

/// One probe's result, as docker's `State.Health.Log` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

impl Health {
    /// The health of a container that has just started: starting, no failures, and the
    /// log of earlier runs kept, as docker keeps it across restarts.
    pub fn starting(previous: Option<Health>) -> Health {
        Health {
            status: STARTING.into(),
            failing_streak: 0,
            log: previous.map(|h| h.log).unwrap_or_default(),
        }
    }

    /// Records a result by docker's rules and returns the new status when it changed. A
    /// failure while still starting within the start period does not count.
    pub fn record(
        &mut self,
        result: HealthResult,
        cfg: &HealthConfig,
        since_start: Duration,
    ) -> Option<String> {
        let old = self.status.clone();
        let failed = result.exit_code != 0;
        if self.log.len() >= MAX_LOG_ENTRIES {
            self.log.drain(..=self.log.len() - MAX_LOG_ENTRIES);
        }
        self.log.push(result);
        if !failed {
            self.failing_streak = 0;
            self.status = HEALTHY.into();
        } else if !(self.status == STARTING && since_start < cfg.start_period()) {
            self.failing_streak += 1;
            if self.failing_streak >= cfg.retries() {
                self.status = UNHEALTHY.into();
            }
        }
        (self.status != old).then(|| self.status.clone())
    }

    /// docker's text in `ps`'s status: `health: starting`, `healthy` or `unhealthy`.
    pub fn ps_text(&self) -> String {
        if self.status == STARTING {
            "health: starting".into()
        } else {
            self.status.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> HealthResult {
        HealthResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn flags_fill_in_over_the_image() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5_000_000_000,
            retries: 2,
            ..Default::default()
        };
        let user = HealthConfig {
            interval: 1_000_000_000,
            ..Default::default()
        };
        let m = HealthConfig::merge(Some(user), Some(image.clone())).unwrap();
        assert_eq!(m.test, image.test);
        assert_eq!(m.interval, 1_000_000_000);
        assert_eq!(m.retries, 2);
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        let m = HealthConfig::merge(Some(none), Some(image)).unwrap();
        assert_eq!(m.command(&[]), None);
    }

    #[test]
    fn commands_and_checks() {
        let shell = HealthConfig {
            test: vec!["CMD-SHELL".into(), "exit 1".into()],
            ..Default::default()
        };
        assert_eq!(shell.command(&[]).unwrap(), vec!["/bin/sh", "-c", "exit 1"]);
        let exec = HealthConfig {
            test: vec!["CMD".into(), "cat".into(), "/x".into()],
            ..Default::default()
        };
        assert_eq!(exec.command(&[]).unwrap(), vec!["cat", "/x"]);
        let bad = HealthConfig {
            test: vec!["CMD".into()],
            interval: 10,
            ..Default::default()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(exec.interval(), Duration::from_secs(30));
        assert_eq!(exec.retries(), 3);
    }

    #[test]
    fn results_follow_dockers_rules() {
        let cfg = HealthConfig {
            test: vec!["CMD".into(), "x".into()],
            retries: 2,
            start_period: 10_000_000_000,
            ..Default::default()
        };
        let mut h = Health::starting(None);
        // A failure inside the start period does not count.
        assert_eq!(h.record(result(1), &cfg, Duration::from_secs(1)), None);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.status, STARTING);
        assert_eq!(
            h.record(result(1), &cfg, Duration::from_secs(11)),
            None,
            "one failure of two allowed"
        );
        assert_eq!(
            h.record(result(1), &cfg, Duration::from_secs(12))
                .as_deref(),
            Some(UNHEALTHY)
        );
        assert_eq!(h.failing_streak, 2);
        assert_eq!(
            h.record(result(0), &cfg, Duration::from_secs(13))
                .as_deref(),
            Some(HEALTHY)
        );
        assert_eq!(h.failing_streak, 0);
        for _ in 0..10 {
            h.record(result(0), &cfg, Duration::from_secs(20));
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
        let again = Health::starting(Some(h));
        assert_eq!(again.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(again.ps_text(), "health: starting");
        assert_eq!(
            cfg.next_wait(Duration::from_secs(1), STARTING),
            Duration::from_secs(5)
        );
        assert_eq!(
            cfg.next_wait(Duration::from_secs(11), STARTING),
            Duration::from_secs(30)
        );
    }
}
