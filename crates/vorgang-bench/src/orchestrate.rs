//! One benchmark run: every target in turn, each with its own sandbox, then the report.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use hyper::header::HeaderValue;
use tempfile::TempDir;

use crate::child::{self, ChildProcess};
use crate::cli::{Options, Target};
use crate::load::{self, LoadSpec};
use crate::report::{self, Latencies, Summary};
use crate::server;

/// More errors than this share of a target's requests fail the run.
const MAX_ERROR_RATE: f64 = 0.01;

/// How long the PostgreSQL server may take to create the run's database before it counts as
/// unreachable.
const POSTGRES_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the benchmark on a runtime of `--load-threads` threads; Ctrl-C stops the children and
/// drops the run's database before exiting.
///
/// # Errors
/// A target could not be started or measured.
pub fn main(options: &Options) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(options.load_threads))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        tokio::select! {
            result = run(options) => result,
            _ = tokio::signal::ctrl_c() => {
                // Dropping the run stops the children (stdin closed, kill on drop) and drops
                // the run's PostgreSQL database.
                eprintln!("vorgang-bench: interrupted");
                Ok(ExitCode::from(130))
            }
        }
    })
}

/// What every target of a run shares.
struct Run<'a> {
    options: &'a Options,
    bodies: Arc<[Bytes]>,
    dir: TempDir,
}

async fn run(options: &Options) -> anyhow::Result<ExitCode> {
    let started_at = chrono::Utc::now();
    let load_before = loadavg();
    let dir = match &options.data_dir {
        Some(parent) => tempfile::Builder::new()
            .prefix("vorgang-bench-")
            .tempdir_in(parent),
        None => tempfile::Builder::new().prefix("vorgang-bench-").tempdir(),
    }
    .context("creating the run's temporary directory")?;
    let filesystem = filesystem_of(dir.path());
    if filesystem.as_deref() == Some("tmpfs") {
        eprintln!(
            "vorgang-bench: WARNING: {} is on a tmpfs, where fsync costs nothing: the SQLite \
             figures will look better than on a disk. Use --data-dir DIR on a real disk.",
            dir.path().display()
        );
    }
    let run = Run {
        options,
        bodies: crate::workload::bodies()?.into(),
        dir,
    };
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    eprintln!(
        "vorgang-bench: {} connections, {} s warm-up + {} s per target, {} imports stored \
         before; {cpus} CPUs, load average {load_before}",
        options.connections, options.warmup, options.duration, options.rows
    );

    let mut summaries = Vec::new();
    let mut notes = Vec::new();
    for target in options.targets() {
        eprintln!("== {}", target.name());
        let summary = match target {
            Target::Relay => measure_relay(&run).await?,
            Target::Sqlite => {
                let url = format!("sqlite://{}/bench.db?mode=rwc", run.dir.path().display());
                measure_service(&run, target, &url).await?
            }
            Target::Postgres => {
                let database = tokio::time::timeout(
                    POSTGRES_CONNECT_TIMEOUT,
                    vorgang_store::testing::fresh_postgres_database(&options.postgres_url),
                )
                .await
                .map_err(|_| anyhow::anyhow!("no answer within {POSTGRES_CONNECT_TIMEOUT:?}"))
                .and_then(|created| created.map_err(anyhow::Error::from));
                let database = match database {
                    Ok(database) => database,
                    Err(error) if !options.postgres_named() => {
                        let note =
                            format!("postgres: skipped, the server is unreachable ({error})");
                        eprintln!("   {note}");
                        notes.push(note);
                        continue;
                    }
                    Err(error) => {
                        return Err(error.context("creating the run's PostgreSQL database"));
                    }
                };
                let measured = measure_service(&run, target, database.url()).await;
                let dropped = database.drop_database().await;
                let summary = measured?;
                dropped.context("dropping the run's PostgreSQL database")?;
                summary
            }
        };
        eprintln!(
            "   {:.0} imports/s, p99 {}, errors {}",
            summary.imports_per_s,
            summary
                .latency
                .map_or_else(|| "–".to_owned(), |l| report::millis(l.p99_us)),
            summary.error_count()
        );
        summaries.push(summary);
    }
    report::set_ratios(&mut summaries);

    let load_after = loadavg();
    let commit = commit();
    if options.json {
        let run_info = serde_json::json!({
            "date": started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "commit": commit,
            "connections": options.connections,
            "warmup_s": options.warmup,
            "duration_s": options.duration,
            "rows": options.rows,
            "load_threads": options.load_threads,
            "timeout_s": options.timeout,
            "cpus": cpus,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "data_dir_filesystem": filesystem,
        });
        print!("{}", report::json_lines(&summaries, &run_info));
    } else {
        print!("{}", report::table(&summaries));
        println!(
            "\n{} connections, {} s warm-up + {} s measured per target, {} imports stored \
             before; {cpus} CPUs; load average {load_before} before, {load_after} after; {}, \
             commit {commit}.",
            options.connections,
            options.warmup,
            options.duration,
            options.rows,
            started_at.format("%Y-%m-%d %H:%M UTC"),
        );
    }
    for note in &notes {
        println!("{note}");
    }

    let failed: Vec<&Summary> = summaries
        .iter()
        .filter(|s| s.imports == 0 || s.error_rate > MAX_ERROR_RATE)
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for summary in failed {
        eprintln!(
            "vorgang-bench: FAILED: {}: {} imports, errors {:?} ({} of the requests; at most {} \
             allowed).",
            summary.target,
            summary.imports,
            summary.errors,
            report::percent(summary.error_rate),
            report::percent(MAX_ERROR_RATE),
        );
    }
    // Kept for the post-mortem: the children's logs say why.
    let kept = run.dir.keep();
    eprintln!(
        "vorgang-bench: the children's logs are kept in {}",
        kept.display()
    );
    Ok(ExitCode::FAILURE)
}

/// The relay against a fresh sandbox.
async fn measure_relay(run: &Run<'_>) -> anyhow::Result<Summary> {
    let sandbox = ChildProcess::spawn("sandbox-relay", &["sandbox"], &[], run.dir.path()).await?;
    let europace_url = sandbox.ready_str("base_url")?.to_owned();
    let relay = ChildProcess::spawn(
        "relay",
        &["relay", "--europace-url", &europace_url],
        &[],
        run.dir.path(),
    )
    .await?;
    let summary = load_target(run, Target::Relay, &relay, None).await?;
    relay.stop().await?;
    sandbox.stop().await?;
    Ok(summary)
}

/// The service on `database_url` (fresh and empty) against a fresh sandbox.
async fn measure_service(
    run: &Run<'_>,
    target: Target,
    database_url: &str,
) -> anyhow::Result<Summary> {
    let name = target.name();
    let sandbox = ChildProcess::spawn(
        &format!("sandbox-{name}"),
        &["sandbox"],
        &[],
        run.dir.path(),
    )
    .await?;
    let europace_url = url::Url::parse(sandbox.ready_str("base_url")?)?;

    let kek = server::generate_kek();
    let settings = server::settings(database_url, &europace_url, kek.clone());
    let client = server::prepare(&settings).await?;
    if run.options.rows > 0 {
        let started = Instant::now();
        let rows = run.options.rows;
        // Progress in place on a terminal; in a log only the result.
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        crate::prefill::prefill(database_url, &client.client_id, rows, |done| {
            if terminal {
                eprint!("\r   pre-fill: {done} of {rows} imports");
            }
        })
        .await?;
        if terminal {
            eprintln!();
        }
        eprintln!(
            "   pre-fill: {rows} imports stored in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }

    let kek_text = secrecy::ExposeSecret::expose_secret(&kek).to_owned();
    let service = ChildProcess::spawn(
        &format!("server-{name}"),
        &[
            "server",
            "--europace-url",
            europace_url.as_str(),
            "--database-url",
            database_url,
        ],
        &[(server::KEK_VAR, &kek_text)],
        run.dir.path(),
    )
    .await?;
    let port = service.ready_u64("port")?;
    let token = server::token(&format!("http://127.0.0.1:{port}"), &client).await?;
    let authorization =
        HeaderValue::from_str(&format!("Bearer {token}")).context("token as a header")?;
    let summary = load_target(run, target, &service, Some(authorization)).await?;
    service.stop().await?;
    sandbox.stop().await?;
    Ok(summary)
}

/// Loads `process` (serving on the port of its `READY` line) and samples its memory meanwhile.
async fn load_target(
    run: &Run<'_>,
    target: Target,
    process: &ChildProcess,
    authorization: Option<HeaderValue>,
) -> anyhow::Result<Summary> {
    let port = u16::try_from(process.ready_u64("port")?).context("port")?;
    let pid = process.pid().context("the target has exited")?;
    let (stop_sampling, stop) = tokio::sync::oneshot::channel();
    let sampler = tokio::spawn(child::sample_peak_rss(pid, stop));
    let measured = load::run(LoadSpec {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        path: "/vorgang".into(),
        authorization,
        bodies: run.bodies.clone(),
        connections: usize::from(run.options.connections),
        warmup: run.options.warmup(),
        duration: run.options.duration(),
        timeout: run.options.timeout(),
    })
    .await?;
    let _ = stop_sampling.send(());
    let peak_rss_kib = sampler.await.context("memory sampler")?;
    let vm_hwm_kib = child::read_status_kib(pid, "VmHWM");
    let errors: u64 = measured.errors.values().sum();
    Ok(Summary {
        target: target.name(),
        imports: measured.imports,
        imports_per_s: report::per_second(measured.imports, measured.window),
        latency: Latencies::of(&measured.histogram),
        peak_rss_kib,
        vm_hwm_kib,
        error_rate: report::error_rate(measured.imports, errors),
        errors: measured.errors,
        ratio_to_relay: None,
    })
}

/// `/proc/loadavg`'s 1, 5 and 15 minute averages, or `unknown`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The checkout's commit (with `-dirty` for uncommitted changes to tracked files), or
/// `unknown`.
fn commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(head) if !head.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|status| !status.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
        _ => "unknown".to_owned(),
    }
}

/// The type of the file system holding `path` (the longest mount point above it in
/// `/proc/mounts`); `None` where that is not available.
fn filesystem_of(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let mount_point = fields.next()?;
            let fstype = fields.next()?;
            path.starts_with(mount_point)
                .then(|| (mount_point.len(), fstype.to_owned()))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, fstype)| fstype)
}
