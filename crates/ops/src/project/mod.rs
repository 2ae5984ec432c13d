//! `boinc-ops project install|uninstall`: put our binaries into a BOINC
//! project made by `make_project` (and take them out again). Every step is
//! printed; `--dry-run` prints them without changing anything; running
//! install twice changes nothing the second time. What install changed is
//! recorded in `PROJECT/boinc-consent-server.install.json`, so uninstall
//! reverses exactly that.

pub mod config_edit;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use boinc_db::ProjectConfig;
use config_edit::{add_item, apply, remove_span, restore_section, scan, Edit};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::terminal::{clean, clean_text};

/// The programs installed into `PROJECT/bin`.
pub const BINARIES: [&str; 3] = ["boinc-rpc", "boinc-ops", "db_dump"];
/// Record of what install changed.
pub const STATE_FILE: &str = "boinc-consent-server.install.json";
/// Suffix of a binary that was in `bin/` before us (e.g. BOINC's C++ db_dump).
pub const BACKUP_SUFFIX: &str = ".before-boinc-consent-server";
/// make_project's db_dump task line; ours takes the same arguments.
pub const DB_DUMP_CMD: &str = "db_dump -d 2 --dump_spec ../db_dump_spec.xml";
/// What install puts into `<rpc_trusted_proxies>` when it is unset: the web
/// server on this host.
pub const TRUSTED_PROXIES: &str = "127.0.0.1 ::1";
const DEFAULT_RPC_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_OPS_LISTEN: &str = "127.0.0.1:8081";
const APACHE_TEMPLATE: &str = include_str!("../../../../deploy/apache-boinc-rpc.conf.in");
const NGINX_TEMPLATE: &str = include_str!("../../../../deploy/nginx-boinc-rpc.conf.in");

#[derive(clap::Subcommand)]
pub enum ProjectCmd {
    /// Copy boinc-rpc, boinc-ops and db_dump into DIR/bin, add the boinc-rpc
    /// daemon (and the ops page daemon when <ops_user> is set) to config.xml,
    /// write the Apache and nginx includes, and upgrade the database.
    Install(InstallArgs),
    /// Undo install: config.xml entries, binaries (restoring what they
    /// replaced) and includes. The database keeps our tables (consent
    /// records are evidence).
    Uninstall(CommonArgs),
}

#[derive(clap::Args)]
pub struct CommonArgs {
    /// The project folder (holds config.xml, bin/, html/).
    #[arg(long)]
    pub project_dir: PathBuf,
    /// Print what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The project's short name in URLs (/NAME/, /NAME_ops/)
    /// [default: the last part of <master_url>'s path].
    #[arg(long)]
    pub name: Option<String>,
    /// Where boinc-rpc listens [default: <rpc_listen>, else 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// Where the ops page listens [default: <ops_listen>, else 127.0.0.1:8081].
    #[arg(long)]
    pub ops_listen: Option<String>,
    /// Folder holding the binaries to install [default: this program's folder].
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Also enable the db_dump task (make_project writes it disabled).
    #[arg(long)]
    pub enable_db_dump: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Installed binaries: name -> sha256 and the backup of what was there.
    binaries: BTreeMap<String, Installed>,
    /// Original text of a `<daemons>`/`<tasks>` section install had to
    /// create ("") or expand (`<daemons/>`).
    #[serde(default)]
    sections: BTreeMap<String, String>,
    /// `<disabled>` text of the db_dump task before `--enable-db-dump`.
    #[serde(default)]
    db_dump_disabled_was: Option<String>,
    /// Install added the db_dump task.
    #[serde(default)]
    db_dump_task_added: bool,
    /// Install added `<rpc_trusted_proxies>` with this value.
    #[serde(default)]
    trusted_proxies_added: Option<String>,
    /// Files install wrote (the web server includes).
    #[serde(default)]
    files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Installed {
    sha256: String,
    backup: Option<String>,
}

pub async fn run(cmd: ProjectCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ProjectCmd::Install(a) => install(&a).await?,
        ProjectCmd::Uninstall(a) => uninstall(&a)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints numbered steps, prefixed "dry run:" when nothing is changed.
/// Print the config.xml changes, then (unless a dry run) keep the
/// previous file as a timestamped backup and write `new` in its place with
/// the same permissions and owner.
fn rewrite_config(
    steps: &Steps,
    config_path: &Path,
    changes: &[String],
    new: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    for c in changes {
        steps.note(c);
    }
    let backup = backup_name(config_path);
    steps.note(&format!(
        "keep the previous config.xml as {}",
        backup.display()
    ));
    if !dry_run {
        let meta = std::fs::metadata(config_path)?;
        std::fs::copy(config_path, &backup)?;
        write_atomic(
            config_path,
            new.as_bytes(),
            meta.permissions().mode() & 0o7777,
            Some(&meta),
        )?;
    }
    Ok(())
}

struct Steps {
    n: usize,
    dry_run: bool,
}

impl Steps {
    fn step(&mut self, what: &str) {
        self.n += 1;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{}] {}", self.n, clean(what));
    }

    fn note(&self, what: &str) {
        let prefix = if self.dry_run { "would: " } else { "" };
        println!("    {prefix}{}", clean(what));
    }
}

fn sha256_file(p: &Path) -> std::io::Result<String> {
    Ok(hex::encode(sha2::Sha256::digest(std::fs::read(p)?)))
}

/// Write `bytes` to `dst` through a temporary file and a rename (a running
/// binary can't be overwritten in place; readers never see half a file).
fn write_atomic(
    dst: &Path,
    bytes: &[u8],
    mode: u32,
    like: Option<&std::fs::Metadata>,
) -> anyhow::Result<()> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    if let Some(m) = like {
        // Keep the owner (config.xml belongs to the project's account); only
        // root can give files away, and then it should.
        let _ = std::os::unix::fs::chown(tmp.path(), Some(m.uid()), Some(m.gid()));
    }
    tmp.persist(dst)
        .with_context(|| format!("replacing {}", dst.display()))?;
    Ok(())
}

fn load_state(dir: &Path) -> anyhow::Result<State> {
    let p = dir.join(STATE_FILE);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("reading {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn save_state(dir: &Path, state: &State) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(state)?;
    write_atomic(&dir.join(STATE_FILE), &json, 0o644, None)
}

/// The project's short name: `--name`, else the last part of master_url's
/// path (make_project's `https://host/NAME/`).
fn project_name(args: &InstallArgs, cfg: &ProjectConfig) -> anyhow::Result<String> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => url::Url::parse(cfg.master_url())
            .ok()
            .and_then(|u| {
                u.path_segments()
                    .and_then(|mut s| s.rfind(|p| !p.is_empty()).map(str::to_owned))
            })
            .context("can't tell the project's short name from <master_url>; pass --name")?,
    };
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.');
    if !ok {
        bail!("project name {name:?}: use letters, digits, '_', '-' and '.' only");
    }
    Ok(name)
}

fn listen_addr(flag: &Option<String>, cfg: &ProjectConfig, key: &str, default: &str) -> String {
    flag.clone()
        .or_else(|| cfg.str(key).filter(|s| !s.is_empty()).map(str::to_owned))
        .unwrap_or_else(|| default.to_owned())
}

fn read_config(dir: &Path) -> anyhow::Result<(PathBuf, String, ProjectConfig)> {
    let path = dir.join("config.xml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is not a BOINC project folder: cannot read its config.xml",
            dir.display()
        )
    })?;
    let cfg = ProjectConfig::load(&path)?;
    Ok((path, text, cfg))
}

async fn install(a: &InstallArgs) -> anyhow::Result<()> {
    let dir = &a.common.project_dir;
    let mut steps = Steps {
        n: 0,
        dry_run: a.common.dry_run,
    };
    if a.common.dry_run {
        println!("dry run: nothing is changed");
    }
    let (config_path, text, cfg) = read_config(dir)?;
    let name = project_name(a, &cfg)?;
    let rpc = listen_addr(&a.listen, &cfg, "rpc_listen", DEFAULT_RPC_LISTEN);
    let ops = listen_addr(&a.ops_listen, &cfg, "ops_listen", DEFAULT_OPS_LISTEN);
    let mut state = load_state(dir)?;
    println!(
        "project {} in {}",
        clean(&name),
        clean(&dir.display().to_string())
    );

    // 1. Binaries.
    let from = match &a.from {
        Some(f) => f.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(Path::to_owned)
            .context("no folder for this program")?,
    };
    steps.step(&format!(
        "binaries from {} into {}",
        from.display(),
        dir.join("bin").display()
    ));
    let bin = dir.join("bin");
    if !bin.is_dir() {
        steps.note(&format!("create {}", bin.display()));
        if !a.common.dry_run {
            std::fs::create_dir_all(&bin)?;
        }
    }
    for b in BINARIES {
        let src = from.join(b);
        let dst = bin.join(b);
        let sha = sha256_file(&src).with_context(|| {
            format!(
                "{} missing: build it (cargo build --release) or pass --from",
                src.display()
            )
        })?;
        let current = sha256_file(&dst).ok();
        if current.as_deref() == Some(sha.as_str()) {
            println!("    {b}: unchanged");
            state.binaries.entry(b.to_owned()).or_insert(Installed {
                sha256: sha,
                backup: None,
            });
            continue;
        }
        let prior = state.binaries.get(b).cloned();
        let mut backup = prior.as_ref().and_then(|p| p.backup.clone());
        let ours = matches!((&prior, &current), (Some(p), Some(c)) if &p.sha256 == c);
        if current.is_some() && !ours {
            // Someone else's program (BOINC's C++ db_dump): keep it.
            let keep = bin.join(format!("{b}{BACKUP_SUFFIX}"));
            steps.note(&format!("keep the existing {b} as {}", keep.display()));
            if !a.common.dry_run {
                if keep.exists() {
                    bail!("{} exists already; move it away first", keep.display());
                }
                std::fs::rename(&dst, &keep)?;
            }
            backup = Some(keep.file_name().unwrap().to_string_lossy().into_owned());
        }
        steps.note(&format!(
            "{} {b}",
            if current.is_some() { "replace" } else { "copy" }
        ));
        if !a.common.dry_run {
            write_atomic(&dst, &std::fs::read(&src)?, 0o755, None)?;
            state.binaries.insert(
                b.to_owned(),
                Installed {
                    sha256: sha,
                    backup,
                },
            );
            save_state(dir, &state)?;
        }
    }

    if !a.common.dry_run {
        save_state(dir, &state)?;
    }

    // 2. config.xml.
    steps.step(&format!("entries in {}", config_path.display()));
    let mut new = text.clone();
    let mut changes: Vec<String> = Vec::new();
    let layout = scan(&new)?;
    let has_daemon = |prog: &str, arg: Option<&str>| {
        layout.daemons.items.iter().any(|d| {
            d.program() == prog && arg.is_none_or(|x| d.cmd.split_whitespace().any(|w| w == x))
        })
    };
    let mut daemon_lines = Vec::new();
    let push_daemon = |cmd: String, lines: &mut Vec<(usize, String)>| {
        lines.push((0, "<daemon>".to_owned()));
        lines.push((1, format!("<cmd>{}</cmd>", boinc_db::xml::escape(&cmd))));
        lines.push((0, "</daemon>".to_owned()));
        cmd
    };
    if !has_daemon("boinc-rpc", None) {
        let cmd = match &a.listen {
            Some(l) => format!("boinc-rpc --listen {l}"),
            None => "boinc-rpc".to_owned(),
        };
        let cmd = push_daemon(cmd, &mut daemon_lines);
        changes.push(format!("add daemon `{cmd}`"));
    }
    let ops_configured = ["ops_user", "ops_password_hash"]
        .iter()
        .all(|k| cfg.str(k).is_some_and(|v| !v.is_empty()));
    if ops_configured && !has_daemon("boinc-ops", Some("serve")) {
        let cmd = match &a.ops_listen {
            Some(l) => format!("boinc-ops serve --listen {l}"),
            None => "boinc-ops serve".to_owned(),
        };
        let cmd = push_daemon(cmd, &mut daemon_lines);
        changes.push(format!("add daemon `{cmd}`"));
    }
    if !daemon_lines.is_empty() {
        let (edit, original) = add_item(&new, &layout, "daemons", &daemon_lines);
        new = apply(&new, vec![edit]);
        if let Some(o) = original {
            state.sections.entry("daemons".into()).or_insert(o);
        }
    }
    let layout = scan(&new)?;
    match layout.tasks.items.iter().find(|t| t.program() == "db_dump") {
        Some(t) if a.enable_db_dump && t.is_disabled() => {
            let (s, e, was) = t.disabled.clone().expect("disabled has a span");
            new = apply(&new, vec![Edit { start: s, end: e, with: "0".into() }]);
            state.db_dump_disabled_was = Some(was);
            changes.push(format!("enable task `{}` (it runs our db_dump now)", t.cmd));
        }
        Some(t) => println!(
            "    task `{}`: kept as it is ({}); it runs our bin/db_dump, which takes the same arguments",
            clean(&t.cmd),
            if t.is_disabled() {
                "disabled; --enable-db-dump enables it"
            } else {
                "enabled"
            }
        ),
        None => {
            let lines = [
                (0, "<task>".to_owned()),
                (1, format!("<cmd>{DB_DUMP_CMD}</cmd>")),
                (1, "<period>24 hours</period>".to_owned()),
                (1, "<output>db_dump.out</output>".to_owned()),
                (1, format!("<disabled>{}</disabled>", if a.enable_db_dump { 0 } else { 1 })),
                (0, "</task>".to_owned()),
            ];
            let (edit, original) = add_item(&new, &layout, "tasks", &lines);
            new = apply(&new, vec![edit]);
            if let Some(o) = original {
                state.sections.entry("tasks".into()).or_insert(o);
            }
            state.db_dump_task_added = true;
            changes.push(format!(
                "add task `{DB_DUMP_CMD}` every 24 hours ({})",
                if a.enable_db_dump { "enabled" } else { "disabled; --enable-db-dump enables it" }
            ));
        }
    }
    let layout = scan(&new)?;
    if !layout
        .config_keys
        .iter()
        .any(|(k, ..)| k == "rpc_trusted_proxies")
    {
        if let Some(edit) =
            config_edit::add_config_key(&new, &layout, "rpc_trusted_proxies", TRUSTED_PROXIES)
        {
            new = apply(&new, vec![edit]);
            state.trusted_proxies_added = Some(TRUSTED_PROXIES.to_owned());
            changes.push(format!(
                "add <rpc_trusted_proxies>{TRUSTED_PROXIES}</rpc_trusted_proxies> (the web server in front)"
            ));
        }
    }
    if !ops_configured {
        println!(
            "    ops page daemon: not added (set <ops_user> and <ops_password_hash>, see \
             `boinc-ops hash-password`, then run install again)"
        );
    }
    if changes.is_empty() {
        println!("    config.xml: unchanged");
    } else {
        rewrite_config(&steps, &config_path, &changes, &new, a.common.dry_run)?;
        if !a.common.dry_run {
            save_state(dir, &state)?;
        }
    }

    // 3. Web server includes.
    steps.step("web server includes");
    let fill = |t: &str| {
        t.replace("@NAME@", &name)
            .replace(
                "@PROJECT_DIR@",
                &dir.canonicalize()
                    .unwrap_or_else(|_| dir.clone())
                    .display()
                    .to_string(),
            )
            .replace("@RPC@", &rpc)
            .replace("@OPS@", &ops)
    };
    for (file, template) in [
        (format!("{name}.boinc-rpc.httpd.conf"), APACHE_TEMPLATE),
        (format!("{name}.boinc-rpc.nginx.conf"), NGINX_TEMPLATE),
    ] {
        let path = dir.join(&file);
        let content = fill(template);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(content.as_str()) {
            println!("    {file}: unchanged");
        } else {
            steps.note(&format!("write {}", path.display()));
            if !a.common.dry_run {
                write_atomic(&path, content.as_bytes(), 0o644, None)?;
            }
        }
        if !state.files.contains(&file) && !a.common.dry_run {
            state.files.push(file);
            save_state(dir, &state)?;
        }
    }

    // 4. Database.
    let settings = cfg.database()?;
    steps.step(&format!("database upgrade ({settings:?})"));
    if a.common.dry_run {
        steps.note("run `boinc-ops db upgrade` (adds what is missing, never changes data)");
    } else {
        let mut conn = boinc_db::mysql_async::Conn::new(settings.opts())
            .await
            .with_context(|| format!("connecting to {settings:?}"))?;
        let report = boinc_db::schema::upgrade(&mut conn).await?;
        conn.disconnect().await.ok();
        if report.applied.is_empty() {
            println!("    schema up to date");
        }
        for x in &report.applied {
            println!("    applied: {}", clean(x));
        }
        for w in report.warnings() {
            eprintln!("WARNING: {}", clean(&w));
        }
    }

    let next = format!(
        "\nNext (as the project's user, in {dir}):\n  \
         bin/stop && bin/start        # or wait for `bin/start --cron`\n  \
         bin/status                   # boinc-rpc runs; its log: log_HOST/boinc-rpc.log\n\
         Web server (as root):\n  \
         a2enmod proxy_http && ln -s {dir}/{name}.boinc-rpc.httpd.conf /etc/apache2/sites-enabled/ && apache2ctl graceful\n  \
         (nginx: include {dir}/{name}.boinc-rpc.nginx.conf in the server block)",
        dir = dir.canonicalize().unwrap_or_else(|_| dir.clone()).display()
    );
    println!("{}", clean_text(&next));
    Ok(())
}

/// `config.xml.bak-YYYYmmdd-HHMMSS` (a suffix if that exists already).
fn backup_name(config: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let base = config.with_file_name(format!("config.xml.bak-{stamp}"));
    let mut p = base.clone();
    let mut i = 1;
    while p.exists() {
        p = PathBuf::from(format!("{}.{i}", base.display()));
        i += 1;
    }
    p
}

fn uninstall(a: &CommonArgs) -> anyhow::Result<()> {
    let dir = &a.project_dir;
    let mut steps = Steps {
        n: 0,
        dry_run: a.dry_run,
    };
    if a.dry_run {
        println!("dry run: nothing is changed");
    }
    let (config_path, text, _) = read_config(dir)?;
    let state = load_state(dir)?;

    // 1. config.xml.
    steps.step(&format!("entries in {}", config_path.display()));
    let mut new = text.clone();
    let mut changes = Vec::new();
    loop {
        let layout = scan(&new)?;
        let ours = layout.daemons.items.iter().find(|d| {
            d.program() == "boinc-rpc"
                || (d.program() == "boinc-ops" && d.cmd.split_whitespace().any(|w| w == "serve"))
        });
        let Some(d) = ours else { break };
        changes.push(format!("remove daemon `{}`", d.cmd));
        new = apply(&new, vec![remove_span(&new, d.start, d.end)]);
    }
    let layout = scan(&new)?;
    if let Some(t) = layout.tasks.items.iter().find(|t| t.program() == "db_dump") {
        if state.db_dump_task_added {
            changes.push(format!("remove task `{}`", t.cmd));
            new = apply(&new, vec![remove_span(&new, t.start, t.end)]);
        } else if let (Some(was), Some((s, e, _))) = (&state.db_dump_disabled_was, &t.disabled) {
            changes.push(format!(
                "set task `{}` back to <disabled>{was}</disabled>",
                t.cmd
            ));
            new = apply(
                &new,
                vec![Edit {
                    start: *s,
                    end: *e,
                    with: was.clone(),
                }],
            );
        }
    }
    for (name, original) in &state.sections {
        let layout = scan(&new)?;
        let section = if name == "daemons" {
            &layout.daemons
        } else {
            &layout.tasks
        };
        if let Some(edit) = restore_section(&new, section, original) {
            changes.push(format!("put <{name}> back as it was"));
            new = apply(&new, vec![edit]);
        }
    }
    if let Some(value) = &state.trusted_proxies_added {
        let layout = scan(&new)?;
        if let Some((_, s, e, v)) = layout
            .config_keys
            .iter()
            .find(|(k, ..)| k == "rpc_trusted_proxies")
        {
            if v == value {
                changes.push("remove <rpc_trusted_proxies> (added by install)".to_owned());
                new = apply(&new, vec![remove_span(&new, *s, *e)]);
            }
        }
    }
    if changes.is_empty() {
        println!("    config.xml: nothing of ours");
    } else {
        rewrite_config(&steps, &config_path, &changes, &new, a.dry_run)?;
    }

    // 2. Binaries.
    let bin = dir.join("bin");
    steps.step(&format!("binaries in {}", bin.display()));
    if state.binaries.is_empty() {
        println!("    none recorded as installed");
    }
    for (b, inst) in &state.binaries {
        let dst = bin.join(b);
        match sha256_file(&dst) {
            Ok(sha) if sha == inst.sha256 => {
                steps.note(&format!("remove {b}"));
                if !a.dry_run {
                    std::fs::remove_file(&dst)?;
                }
            }
            Ok(_) => println!("    {}: changed since install; left in place", clean(b)),
            Err(_) => println!("    {}: already gone", clean(b)),
        }
        if let Some(backup) = &inst.backup {
            let keep = bin.join(backup);
            if keep.exists() {
                steps.note(&format!("put {} back as {b}", keep.display()));
                if !a.dry_run && !dst.exists() {
                    std::fs::rename(&keep, &dst)?;
                }
            }
        }
    }

    // 3. Includes.
    steps.step("web server includes");
    for f in &state.files {
        let p = dir.join(f);
        if p.exists() {
            steps.note(&format!(
                "remove {} (and its link in /etc/apache2 or nginx, by hand)",
                p.display()
            ));
            if !a.dry_run {
                std::fs::remove_file(&p)?;
            }
        }
    }

    // 4. State and database.
    steps.step(
        "database: left as it is (consent records are evidence; BOINC's PHP ignores our tables)",
    );
    if !a.dry_run {
        let _ = std::fs::remove_file(dir.join(STATE_FILE));
    }
    println!("\nNext: bin/stop && bin/start (stops the removed daemons).");
    Ok(())
}
