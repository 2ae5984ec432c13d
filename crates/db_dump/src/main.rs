//! `db_dump`: export consent-filtered statistics (see SPEC section 5).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use boinc_db::ProjectConfig;
use boinc_db_dump::{DumpSpec, Options, Summary};
use clap::Parser;
use indicatif::MultiProgress;

#[derive(Parser, Debug)]
#[command(
    name = "db_dump",
    about = "Write the project's statistics files (BOINC db_dump format), leaving out users \
             who did not consent to statistics export"
)]
struct Cli {
    /// Project config.xml (database, user_country, user_url).
    #[arg(long, default_value = "config/config.xml")]
    config: PathBuf,
    /// BOINC db_dump_spec.xml (also accepted as -dump_spec / --dump_spec).
    #[arg(long = "dump-spec", default_value = "config/db_dump_spec.xml")]
    dump_spec: PathBuf,
    /// BOINC debug level: 1 errors, 2 normal, 3 debug, 4 also SQL.
    #[arg(short = 'd', long = "debug-level")]
    debug_level: Option<u8>,
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
}

/// BOINC spells its flags `-dump_spec FILE` and `-d N`; clap wants
/// `--dump-spec`. Map the upstream spellings so cron lines keep working.
fn normalize_args() -> Vec<String> {
    std::env::args()
        .map(|a| match a.as_str() {
            "-dump_spec" | "--dump_spec" => "--dump-spec".to_owned(),
            "-debug_level" | "--debug_level" => "--debug-level".to_owned(),
            "-config" => "--config".to_owned(),
            _ => a,
        })
        .collect()
}

/// Log lines go through the progress display so they don't tear it.
#[derive(Clone)]
struct LogWriter(Option<MultiProgress>);

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
    let cli = Cli::parse_from(normalize_args());
    let progress = (!cli.no_progress && std::io::stderr().is_terminal()).then(MultiProgress::new);
    let level = match cli.debug_level {
        Some(0 | 1) => "warn",
        Some(2) | None => "info",
        Some(3) => "debug",
        Some(_) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},mysql_async=warn"))
    });
    let writer = LogWriter(progress.clone());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || writer.clone())
        .init();
    match real_main(cli, progress) {
        Ok(()) => {}
        Err(e) => {
            tracing::error!(
                "db_dump failed; the published dump is unchanged: {}",
                chain(&e)
            );
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

fn real_main(cli: Cli, progress: Option<MultiProgress>) -> anyhow::Result<()> {
    if cli.dry_run {
        // Needs neither config.xml nor the database.
        let spec = DumpSpec::load(&cli.dump_spec)
            .with_context(|| format!("loading {}", cli.dump_spec.display()))?;
        let report = boinc_db_dump::retain::dry_run_report(&spec).context("listing archives")?;
        let _ = std::io::stdout().write_all(report.as_bytes());
        return Ok(());
    }
    let config = ProjectConfig::load(&cli.config)
        .with_context(|| format!("loading {}", cli.config.display()))?;
    let spec = DumpSpec::load(&cli.dump_spec)
        .with_context(|| format!("loading {}", cli.dump_spec.display()))?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let jobs = cli.jobs.unwrap_or(cores + 1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.min(4))
        .enable_all()
        .build()
        .context("starting runtime")?;
    let summary = rt
        .block_on(boinc_db_dump::run(Options {
            config,
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
    Ok(())
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
