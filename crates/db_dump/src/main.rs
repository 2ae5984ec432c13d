//! `db_dump`: export consent-filtered statistics (see SPEC section 5).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use boinc_db::config::STOP_DAEMONS_FILE;
use boinc_db::ProjectConfig;
use boinc_db_dump::{DumpConfig, DumpSpec, Options, Summary};
use clap::Parser;
use indicatif::MultiProgress;

#[derive(Parser, Debug)]
#[command(
    name = "db_dump",
    version,
    about = "Write the project's statistics files (BOINC db_dump format), leaving out users \
             who did not consent to statistics export",
    after_help = "BOINC's own spellings work too: -d N / --debug_level N, --dump_spec F \
                  (or -dump_spec F), --retry_period N, --db_host H, -h, -v. Without --config, \
                  config.xml is looked for in $BOINC_PROJECT_DIR, then ./, then ../ (BOINC \
                  runs tasks in PROJECT/tmp_HOST). Relative directories in the spec resolve \
                  against the working directory, as BOINC's db_dump does."
)]
struct Cli {
    /// Project config.xml (database, user_country, user_url)
    /// [default: $BOINC_PROJECT_DIR/config.xml, else ./config.xml, else ../config.xml].
    #[arg(long)]
    config: Option<PathBuf>,
    /// BOINC db_dump_spec.xml [default: db_dump_spec.xml beside config.xml].
    #[arg(long = "dump-spec")]
    dump_spec: Option<PathBuf>,
    /// BOINC debug level: 1 errors, 2 normal, 3 debug, 4 also SQL.
    #[arg(short = 'd', long = "debug-level")]
    debug_level: Option<u8>,
    /// When the database can't be reached, retry every N seconds instead of
    /// exiting (0: exit at once, as without it).
    #[arg(long = "retry-period", value_name = "N", default_value_t = 0)]
    retry_period: u64,
    /// Read from this database host (`host` or `host:port`) instead of
    /// <replica_db_host> / <db_host>, with config.xml's other db settings.
    #[arg(long = "db-host", value_name = "H")]
    db_host: Option<String>,
    /// Deflate level for gzip/zip outputs (0-9).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression_level: u32,
    /// Enumerations dumped at once (each uses one database connection).
    #[arg(long)]
    jobs: Option<usize>,
    /// No progress display even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Dump nothing, change nothing: list the dated archives that the
    /// next successful dump would prune (spec's <archive_days>).
    #[arg(long)]
    dry_run: bool,
    /// Write node_exporter textfile-collector metrics here after each run
    /// (last success time, duration, records and bytes per file; a failed
    /// run adds its time and keeps the last success's), replaced
    /// atomically. E.g. /var/lib/prometheus/node-exporter/boinc_db_dump.prom
    #[arg(long = "metrics-file", value_name = "F")]
    metrics_file: Option<PathBuf>,
}

/// BOINC's db_dump takes each flag with one or two dashes and underscores
/// (`-dump_spec F`, `--debug_level N`, `-v`); clap wants `--dump-spec`.
/// Map flag positions only, so a value that looks like a flag (a spec file
/// named `-d`) passes through untouched.
fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    if let Some(program) = args.next() {
        out.push(program);
    }
    while let Some(a) = args.next() {
        let bare = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-'))
            .unwrap_or("");
        let (flag, takes_value) = match bare {
            "dump_spec" | "dump-spec" => ("--dump-spec", true),
            "debug_level" | "debug-level" | "d" => ("--debug-level", true),
            "retry_period" | "retry-period" => ("--retry-period", true),
            "db_host" | "db-host" => ("--db-host", true),
            "config" => ("--config", true),
            "h" | "help" => ("--help", false),
            "v" | "version" => ("--version", false),
            _ => {
                out.push(a);
                continue;
            }
        };
        out.push(flag.to_owned());
        if takes_value {
            if let Some(v) = args.next() {
                out.push(v);
            }
        }
    }
    out
}

/// Log lines go through the progress display so they don't tear it.
#[derive(Clone)]
struct LogWriter(Option<MultiProgress>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.0 {
            Some(mp) => mp.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn main() {
    // Usage errors exit 1 as upstream's db_dump does (clap's default is 2);
    // -h and -v print and exit 0.
    let cli = match Cli::try_parse_from(normalize_args(std::env::args())) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let progress = (!cli.no_progress && std::io::stderr().is_terminal()).then(MultiProgress::new);
    let level = match cli.debug_level {
        Some(0 | 1) => "warn",
        Some(2) | None => "info",
        Some(3) => "debug",
        Some(_) => "trace",
    };
    boinc_daemon::init_logging_to(
        &format!("{level},mysql_async=warn"),
        LogWriter(progress.clone()),
        boinc_daemon::use_color(std::io::stderr().is_terminal()),
    );
    let metrics_file = cli.metrics_file.clone();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    };
    match real_main(cli, progress) {
        Ok(summary) => {
            if let (Some(path), Some(s)) = (&metrics_file, &summary) {
                if let Err(e) = boinc_db_dump::metrics_file::success(path, s, now()) {
                    tracing::error!("{e}");
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            tracing::error!(
                "db_dump failed; the published dump is unchanged: {}",
                chain(&e)
            );
            if let Some(path) = &metrics_file {
                if let Err(e) = boinc_db_dump::metrics_file::failure(path, now()) {
                    tracing::error!("{e}");
                }
            }
            std::process::exit(1);
        }
    }
}

/// The error and its causes, each cause once (our messages already
/// include their source's text).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
    }
    out
}

/// The dump's summary; None when nothing was to be dumped (dry run,
/// stop_daemons).
fn real_main(cli: Cli, progress: Option<MultiProgress>) -> anyhow::Result<Option<Summary>> {
    if cli.dry_run {
        // Needs no database (and no config.xml when --dump_spec is given).
        let spec_path = match &cli.dump_spec {
            Some(p) => p.clone(),
            None => ProjectConfig::discover(cli.config.as_deref())?
                .project_dir
                .join("db_dump_spec.xml"),
        };
        let spec = DumpSpec::load(&spec_path)
            .with_context(|| format!("loading {}", spec_path.display()))?;
        let report = boinc_db_dump::retain::dry_run_report(&spec).context("listing archives")?;
        let _ = std::io::stdout().write_all(report.as_bytes());
        return Ok(None);
    }
    let config = ProjectConfig::discover(cli.config.as_deref())?;
    // As BOINC's db_dump: `bin/stop` wrote stop_daemons, so don't start.
    if let Some(reason) = boinc_daemon::stop_file_present(config.stop_daemons_file().as_deref()) {
        reason.log();
        return Ok(None);
    }
    // Before waiting for the database: a value it cannot mean is the
    // admin's to fix, said at once.
    boinc_db_dump::replica::max_lag(&config)?;
    let spec_path = cli
        .dump_spec
        .clone()
        .unwrap_or_else(|| config.project_dir.join("db_dump_spec.xml"));
    let spec =
        DumpSpec::load(&spec_path).with_context(|| format!("loading {}", spec_path.display()))?;
    let dump_config = DumpConfig::new(&config, cli.db_host.as_deref())?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let jobs = cli.jobs.unwrap_or(cores + 1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.min(4))
        .enable_all()
        .build()
        .context("starting runtime")?;
    let stop_file = config.project_dir.join(STOP_DAEMONS_FILE);
    if !rt.block_on(wait_for_database(
        &dump_config.database,
        cli.retry_period,
        &stop_file,
    ))? {
        return Ok(None);
    }
    let summary = rt
        .block_on(boinc_db_dump::run(Options {
            config: dump_config,
            spec,
            level: cli.compression_level,
            jobs,
            progress: progress.clone(),
        }))
        .context("dump")?;
    if let Some(mp) = &progress {
        let _ = mp.clear();
    }
    print_summary(&summary);
    Ok(Some(summary))
}

/// Upstream's `--retry_period`: until the database answers, log and retry
/// every `period` seconds (0: fail at once). Checks `stop_daemons` every
/// second while waiting; false means it appeared (stop quietly).
async fn wait_for_database(
    settings: &boinc_db::DbSettings,
    period: u64,
    stop_file: &std::path::Path,
) -> anyhow::Result<bool> {
    let period = period.min(1_000_000);
    loop {
        match boinc_db::mysql_async::Conn::new(settings.opts()).await {
            Ok(conn) => {
                conn.disconnect().await.ok();
                return Ok(true);
            }
            Err(e) if period == 0 => {
                return Err(e).with_context(|| format!("can't open database {settings:?}"))
            }
            Err(e) => tracing::error!(
                "can't open database {settings:?}: {e}; retrying in {period} s (--retry_period)"
            ),
        }
        for _ in 0..period {
            if let Some(reason) = boinc_daemon::stop_file_present(Some(stop_file)) {
                reason.log();
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}

fn print_summary(s: &Summary) {
    let mb = |b: u64| b as f64 / 1_048_576.0;
    let mut out = String::new();
    out.push_str(&format!(
        "db_dump: published {} in {:.1}s (consent filter {}, publish {:.2}s)\n",
        s.final_dir.display(),
        s.wall.as_secs_f64(),
        if s.consent_filter { "on" } else { "off" },
        s.publish_time.as_secs_f64()
    ));
    out.push_str(&format!(
        "{:<16} {:>10} {:>5} {:>9} {:>9} {:>7} {:>7} {:>7} {:>8}\n",
        "file", "records", "files", "xml MB", "disk MB", "wall s", "db s", "fmt s", "comp s"
    ));
    for e in &s.enumerations {
        let files: usize = e.outputs.iter().map(|o| o.files.len()).sum();
        let xml: u64 = e.outputs.iter().map(|o| o.bytes_xml).sum();
        let disk: u64 = e.outputs.iter().map(|o| o.bytes_file).sum();
        out.push_str(&format!(
            "{:<16} {:>10} {:>5} {:>9.1} {:>9.1} {:>7.1} {:>7.1} {:>7.1} {:>8.1}\n",
            e.filename,
            e.records,
            files,
            mb(xml),
            mb(disk),
            e.wall.as_secs_f64(),
            e.db_time.as_secs_f64(),
            e.format_time.as_secs_f64(),
            e.compress_time.as_secs_f64()
        ));
    }
    let t = &s.totals;
    out.push_str(&format!(
        "tables.xml: users {} teams {} hosts {} users_deleted {} hosts_deleted {} total_credit {:.0}",
        t.nusers, t.nteams, t.nhosts, t.nusers_deleted, t.nhosts_deleted, t.total_credit
    ));
    if let Some(n) = t.nusers_optout {
        out.push_str(&format!(" users_optout {n}"));
    }
    if let Some(n) = t.nhosts_optout {
        out.push_str(&format!(" hosts_optout {n}"));
    }
    out.push('\n');
    for note in &s.notes {
        out.push_str(note);
        out.push('\n');
    }
    tracing::info!(
        "dump done: {} enumerations in {:.1}s",
        s.enumerations.len(),
        s.wall.as_secs_f64()
    );
    let _ = std::io::stdout().write_all(out.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let v: Vec<String> = std::iter::once("db_dump")
            .chain(args.iter().copied())
            .map(str::to_owned)
            .collect();
        Cli::try_parse_from(normalize_args(v)).expect("parses")
    }

    #[test]
    fn upstream_command_lines() {
        // make_project's task line.
        let c = parse(&["-d", "2", "--dump_spec", "../db_dump_spec.xml"]);
        assert_eq!(c.debug_level, Some(2));
        assert_eq!(c.dump_spec, Some(PathBuf::from("../db_dump_spec.xml")));
        // Single-dash forms and the rest of upstream's flags.
        let c = parse(&[
            "-dump_spec",
            "s.xml",
            "-debug_level",
            "4",
            "-retry_period",
            "60",
            "-db_host",
            "replica:3307",
        ]);
        assert_eq!(c.debug_level, Some(4));
        assert_eq!(c.retry_period, 60);
        assert_eq!(c.db_host.as_deref(), Some("replica:3307"));
        let c = parse(&[
            "--debug_level",
            "3",
            "--retry_period",
            "5",
            "--db_host",
            "h",
        ]);
        assert_eq!((c.debug_level, c.retry_period), (Some(3), 5));
        // Our own spellings still work, and values are never rewritten.
        let c = parse(&[
            "--dump-spec",
            "s.xml",
            "--config",
            "c.xml",
            "--debug-level",
            "1",
        ]);
        assert_eq!(c.dump_spec, Some(PathBuf::from("s.xml")));
        assert_eq!(c.config, Some(PathBuf::from("c.xml")));
        let v = ["db_dump", "--dump_spec", "-d", "-config", "-v"].map(str::to_owned);
        assert_eq!(
            normalize_args(v),
            ["db_dump", "--dump-spec", "-d", "--config", "-v"]
        );
        // Unknown flags are refused, as upstream does.
        let v = ["db_dump", "--bogus"].map(str::to_owned);
        assert!(Cli::try_parse_from(normalize_args(v)).is_err());
        // -h and -v: help and version, both successful exits.
        for flag in ["-h", "--help", "-help", "-v", "--version", "-version"] {
            let v = ["db_dump", flag].map(str::to_owned);
            let e = Cli::try_parse_from(normalize_args(v)).unwrap_err();
            assert_eq!(e.exit_code(), 0, "{flag}");
        }
    }
}
