//! `boinc-ops project install|uninstall|web-config`: put our binaries into
//! a BOINC project made by `make_project` (and take them out again), and
//! give root the web server includes. Every step is printed; `--dry-run`
//! prints them without changing anything; running install twice changes
//! nothing the second time. What install changed is recorded in
//! `PROJECT/boinc-consent-server.install.json` ([`record`]), so uninstall
//! reverses exactly that.
//!
//! Install and uninstall may run as root in a folder the project's
//! (non-root) user can write, so every file operation there goes through
//! [`fsafe`]: no links followed, files created exclusively, owner and mode
//! set on descriptors, each file read once.

mod check;
mod common;
pub mod config_edit;
pub mod fsafe;
mod install;
mod install_config;
pub mod record;
pub mod stats_task;
mod uninstall;
pub mod web_config;

use std::process::ExitCode;

pub use common::*;
pub use record::STATE_FILE;

#[derive(clap::Subcommand)]
pub enum ProjectCmd {
    /// Copy boinc-rpc, boinc-ops and db_dump (as boinc_consent_db_dump)
    /// into DIR/bin, add the boinc-rpc daemon (and the ops page daemon when
    /// <ops_user> is set) to config.xml, point the stats task at our
    /// db_dump and spec, and upgrade the database; as root, also write the
    /// web server includes into --web-conf-dir.
    Install(InstallArgs),
    /// Undo install: config.xml entries, binaries, our spec. The database
    /// keeps our tables (consent records are evidence); root's web server
    /// includes stay until root unlinks them.
    Uninstall(UninstallArgs),
    /// Say whether the install is intact (exit 0) or what drifted (exit 1):
    /// binaries, daemon and task lines, the stats spec, the web server
    /// includes. Runs as a daily BOINC <task>.
    Check(check::CheckArgs),
    /// Write the Apache and nginx includes into root's folder (as root).
    WebConfig(web_config::WebConfigArgs),
}

pub async fn run(cmd: ProjectCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ProjectCmd::Install(a) => install::run(&a).await?,
        ProjectCmd::Uninstall(a) => uninstall::run(&a)?,
        ProjectCmd::Check(a) => return check::run(&a),
        ProjectCmd::WebConfig(a) => web_config::run(&a)?,
    }
    Ok(ExitCode::SUCCESS)
}
