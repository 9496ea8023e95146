//! Child processes (this binary, re-executed with a role) and their memory.
//!
//! Protocol: a child prints `READY {json}` on stdout once it serves (the JSON says where), logs
//! to stderr (a file in the run's temporary directory), and stops gracefully when its stdin
//! closes. The parent holds the stdin pipe: when the benchmark ends in any way, even killed, the
//! pipe closes and the child stops by itself; `kill_on_drop` is the second line of defence.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// How long a child may take to print `READY` (PostgreSQL migrations included).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a child may take to stop after its stdin closed before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// A running child.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    /// The JSON of its `READY` line.
    pub ready: serde_json::Value,
}

impl ChildProcess {
    /// Starts this binary with `args` (and `envs`), logging to `{log_dir}/{name}.log`, and waits
    /// for its `READY` line.
    ///
    /// # Errors
    /// The child cannot be started, exits or stays silent for [`READY_TIMEOUT`]; the error carries
    /// the end of its log.
    pub async fn spawn(
        name: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let exe = std::env::current_exe().context("locating the benchmark binary")?;
        let mut child = Command::new(exe)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the {name} child"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(json) = line.strip_prefix("READY ") {
                    return serde_json::from_str(json).context("unreadable READY line");
                }
            }
            anyhow::bail!("exited before it was ready")
        })
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("not ready after {READY_TIMEOUT:?}")));
        let ready = match ready {
            Ok(ready) => ready,
            Err(error) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(error.context(format!("{name}: {}", log_tail(&log))));
            }
        };
        // Anything printed later is read and dropped, so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            name: name.to_owned(),
            child,
            stdin,
            log,
            ready,
        })
    }

    /// The child's process id (for its memory figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A string field of the `READY` JSON.
    ///
    /// # Errors
    /// The field is missing.
    pub fn ready_str(&self, field: &str) -> anyhow::Result<&str> {
        self.ready[field]
            .as_str()
            .with_context(|| format!("{}: READY without {field}", self.name))
    }

    /// A number field of the `READY` JSON.
    ///
    /// # Errors
    /// The field is missing.
    pub fn ready_u64(&self, field: &str) -> anyhow::Result<u64> {
        self.ready[field]
            .as_u64()
            .with_context(|| format!("{}: READY without {field}", self.name))
    }

    /// Closes its stdin and waits for it to stop (killing it after [`STOP_TIMEOUT`]).
    ///
    /// # Errors
    /// It did not stop in time or exited with a failure; the error carries the end of its log.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(anyhow::anyhow!(
                "{} exited with {status}: {}",
                self.name,
                log_tail(&self.log)
            )),
            Ok(Err(error)) => Err(error).context(format!("waiting for {}", self.name)),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                Err(anyhow::anyhow!(
                    "{} did not stop within {STOP_TIMEOUT:?} and was killed",
                    self.name
                ))
            }
        }
    }
}

/// The last lines of a child's log, for an error message.
fn log_tail(log: &Path) -> String {
    const LINES: usize = 15;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LINES)..].join("\n");
    format!("its log {} ends with:\n{tail}", log.display())
}

/// A `kB` field (`VmRSS`, `VmHWM`) of a `/proc/<pid>/status` text, in KiB.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value = parts.next()?.parse().ok()?;
        (parts.next() == Some("kB")).then_some(value)
    })
}

/// A `kB` field of process `pid`'s status; `None` where `/proc` is not available.
pub fn read_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kib(&status, field)
}

/// Samples `VmRSS` of `pid` every 50 ms until `stop` fires; the highest value seen, in KiB.
pub async fn sample_peak_rss(
    pid: u32,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Option<u64> {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut peak = None;
    loop {
        tokio::select! {
            _ = &mut stop => return peak,
            _ = tick.tick() => {
                if let Some(rss) = read_status_kib(pid, "VmRSS") {
                    peak = Some(peak.map_or(rss, |p: u64| p.max(rss)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_fields_of_proc_status() {
        let status = "Name:\tvorgang-bench\nVmPeak:\t  812345 kB\nVmHWM:\t   37012 kB\n\
                      VmRSS:\t   30001 kB\nThreads:\t5\n";
        assert_eq!(status_field_kib(status, "VmRSS"), Some(30_001));
        assert_eq!(status_field_kib(status, "VmHWM"), Some(37_012));
        assert_eq!(status_field_kib(status, "VmSwap"), None);
        assert_eq!(status_field_kib(status, "Threads"), None, "no kB unit");
        assert_eq!(status_field_kib("VmRSSX:\t1 kB", "VmRSS"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_its_own_resident_set() {
        let rss = read_status_kib(std::process::id(), "VmRSS").unwrap();
        let hwm = read_status_kib(std::process::id(), "VmHWM").unwrap();
        assert!(rss > 0 && hwm >= rss, "{rss} {hwm}");
    }
}
