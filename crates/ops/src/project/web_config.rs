//! The web server includes (`deploy/*.conf.in`) and `boinc-ops project
//! web-config`, which writes them where only root can write. Apache and
//! nginx read their configuration as root, so what root links into them
//! must never be a file the project's user can change (that user could
//! add any directive); and what goes into them (name, addresses, read from
//! a config.xml that user can write) is checked to be exactly a name or
//! an address first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::common::{valid_project_name, Steps, DEFAULT_WEB_CONF_DIR};
use super::config_edit::Layout;
use super::fsafe::{self, Dir, Kind};
use crate::terminal::clean;

const APACHE_TEMPLATE: &str = include_str!("../../../../deploy/apache-boinc-rpc.conf.in");
const NGINX_TEMPLATE: &str = include_str!("../../../../deploy/nginx-boinc-rpc.conf.in");
pub const DEFAULT_RPC_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_OPS_LISTEN: &str = "127.0.0.1:8081";

#[derive(clap::Args)]
pub struct WebConfigArgs {
    /// Read the short name and the daemons' addresses from this project's
    /// config.xml (the flags below override them).
    #[arg(long)]
    pub project_dir: Option<PathBuf>,
    /// The project's short name in URLs (/NAME/, /NAME_ops/)
    /// [default: the last part of <master_url>'s path].
    #[arg(long)]
    pub name: Option<String>,
    /// Where boinc-rpc listens [default: its daemon line's --listen, else
    /// <rpc_listen>, else 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// Where the ops page listens [default: its daemon line's --listen,
    /// else <ops_listen>, else 127.0.0.1:8081].
    #[arg(long)]
    pub ops_listen: Option<String>,
    /// Root's folder for the includes (owned by root, writable by no one else).
    #[arg(long, default_value = DEFAULT_WEB_CONF_DIR)]
    pub web_conf_dir: PathBuf,
    /// Print what would be written; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What the includes say: the URL name and where the two daemons listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub name: String,
    pub rpc: String,
    pub ops: String,
}

/// `host:port` with a port and a plain host (name, IPv4, `[IPv6]`):
/// nothing that could end a directive or start another.
pub fn valid_listen(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && !host.starts_with(['-', '.'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok()
}

/// The `--listen X` of the first daemon line running `program` (with
/// `serve` among its words when `serve`).
fn daemon_listen(layout: &Layout, program: &str, serve: bool) -> Option<String> {
    layout
        .daemons
        .items
        .iter()
        .filter(|d| d.program() == program)
        .filter(|d| !serve || d.cmd.split_whitespace().any(|w| w == "serve"))
        .find_map(|d| {
            let words: Vec<&str> = d.cmd.split_whitespace().collect();
            words.iter().enumerate().find_map(|(i, w)| {
                if *w == "--listen" {
                    words.get(i + 1).map(|v| (*v).to_owned())
                } else {
                    w.strip_prefix("--listen=").map(str::to_owned)
                }
            })
        })
}

/// Pick and check the name and addresses: flags first, then the daemon
/// lines, then config.xml's keys, then the defaults.
pub fn site(
    name: Option<String>,
    listen: Option<String>,
    ops_listen: Option<String>,
    layout: Option<&Layout>,
    key: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Site> {
    let (rpc, ops) = addresses(listen, ops_listen, layout, key)?;
    Ok(Site {
        name: short_name(name, key)?,
        rpc,
        ops,
    })
}

/// `--name`, else the last part of `<master_url>`'s path.
pub fn short_name(
    name: Option<String>,
    key: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let name = name
        .or_else(|| key("master_url").and_then(|u| name_from_url(&u)))
        .context("can't tell the project's short name from <master_url>; pass --name")?;
    if !valid_project_name(&name) {
        bail!(
            "project name {:?}: use letters, digits, '_', '-' and '.' only",
            clean(&name)
        );
    }
    Ok(name)
}

/// Where boinc-rpc and the ops page listen, each checked to be an address.
pub fn addresses(
    listen: Option<String>,
    ops_listen: Option<String>,
    layout: Option<&Layout>,
    key: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<(String, String)> {
    let pick = |flag: Option<String>,
                flag_name: &str,
                program: &str,
                serve: bool,
                cfg_key: &str,
                default: &str| {
        let (value, from) = if let Some(v) = flag {
            (v, flag_name.to_owned())
        } else if let Some(v) = layout.and_then(|l| daemon_listen(l, program, serve)) {
            (v, format!("the {program} daemon line's --listen"))
        } else if let Some(v) = key(cfg_key).filter(|v| !v.is_empty()) {
            (v, format!("<{cfg_key}>"))
        } else {
            (default.to_owned(), "default".to_owned())
        };
        if valid_listen(&value) {
            Ok(value)
        } else {
            Err(anyhow::anyhow!(
                "{from} {:?} (<{cfg_key}>): not an address (host:port); it goes into the web \
                 server's configuration, so nothing else is allowed",
                clean(&value)
            ))
        }
    };
    Ok((
        pick(
            listen,
            "--listen",
            "boinc-rpc",
            false,
            "rpc_listen",
            DEFAULT_RPC_LISTEN,
        )?,
        pick(
            ops_listen,
            "--ops-listen",
            "boinc-ops",
            true,
            "ops_listen",
            DEFAULT_OPS_LISTEN,
        )?,
    ))
}

/// make_project's `https://host/NAME/`: the last part of the path.
pub fn name_from_url(url: &str) -> Option<String> {
    url::Url::parse(url).ok().and_then(|u| {
        u.path_segments()
            .and_then(|mut s| s.rfind(|p| !p.is_empty()).map(str::to_owned))
    })
}

pub fn apache_file(name: &str) -> String {
    format!("{name}.boinc-rpc.httpd.conf")
}

pub fn nginx_file(name: &str) -> String {
    format!("{name}.boinc-rpc.nginx.conf")
}

/// The two includes: (file name, content).
pub fn render(site: &Site, web_conf_dir: &Path) -> [(String, String); 2] {
    let fill = |t: &str| {
        t.replace("@NAME@", &site.name)
            .replace("@RPC@", &site.rpc)
            .replace("@OPS@", &site.ops)
            .replace("@WEB_CONF_DIR@", &web_conf_dir.display().to_string())
    };
    [
        (apache_file(&site.name), fill(APACHE_TEMPLATE)),
        (nginx_file(&site.name), fill(NGINX_TEMPLATE)),
    ]
}

/// Root's folder for the includes, checked before anything is changed:
/// an absolute, printable path; if it exists, a folder owned by root that
/// nobody else can write; if not, its parent is such a folder.
pub fn check_web_conf_dir(dir: &Path) -> anyhow::Result<()> {
    let shown = dir.display().to_string();
    if !dir.is_absolute() || shown.chars().any(crate::terminal::is_unsafe) {
        bail!(
            "--web-conf-dir {:?}: give an absolute path without control characters",
            clean(&shown)
        );
    }
    let target = if dir.exists() {
        dir
    } else {
        dir.parent()
            .context("--web-conf-dir has no parent folder")?
    };
    let d = Dir::open(target).with_context(|| format!("opening {}", target.display()))?;
    root_only(&d)
}

fn root_only(d: &Dir) -> anyhow::Result<()> {
    let i = d.info()?;
    if i.kind != Kind::Dir {
        bail!("{} is not a folder", d.path().display());
    }
    if i.uid != 0 {
        bail!(
            "{} is not owned by root (uid {}): the web server reads these includes as root, \
             so they must live where only root can write",
            d.path().display(),
            i.uid
        );
    }
    if i.mode & 0o022 != 0 {
        bail!(
            "{} is writable by others (mode {:04o}): the web server reads these includes as \
             root, so they must live where only root can write",
            d.path().display(),
            i.mode
        );
    }
    Ok(())
}

/// Write the includes into `dir` (created 0755 if missing), owned by root,
/// mode 0644. Needs root.
pub fn write(site: &Site, dir: &Path, steps: &mut Steps) -> anyhow::Result<()> {
    check_web_conf_dir(dir)?;
    let folder = if dir.exists() {
        let d = Dir::open(dir)?;
        root_only(&d)?;
        Some(d)
    } else {
        let parent = Dir::open(dir.parent().context("no parent")?)?;
        root_only(&parent)?;
        let leaf = dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("--web-conf-dir must end in a folder name")?;
        steps.note(&format!("create {} (root, 0755)", dir.display()));
        if steps.dry_run {
            None
        } else {
            Some(parent.create_subdir(leaf, 0o755, Some((0, 0)))?)
        }
    };
    for (file, content) in render(site, dir) {
        let same = folder.as_ref().is_some_and(|f| {
            f.read(&file, 1 << 20)
                .ok()
                .flatten()
                .is_some_and(|(b, i)| b == content.as_bytes() && i.uid == 0 && i.mode == 0o644)
        });
        if same {
            println!(
                "    {}: unchanged",
                clean(&dir.join(&file).display().to_string())
            );
            continue;
        }
        steps.note(&format!("write {} (root, 0644)", dir.join(&file).display()));
        if let (Some(f), false) = (&folder, steps.dry_run) {
            f.replace(&file, content.as_bytes(), 0o644, Some((0, 0)))?;
        }
    }
    Ok(())
}

/// `boinc-ops project web-config`.
pub fn run(a: &WebConfigArgs) -> anyhow::Result<()> {
    let mut steps = Steps::new(a.dry_run);
    let (layout, keys) = match &a.project_dir {
        Some(dir) => {
            let project = Dir::open(dir)?;
            let cfg = super::common::ConfigFile::read(&project)?;
            (Some(cfg.layout), cfg.keys)
        }
        None => (None, Vec::new()),
    };
    let key = |k: &str| keys.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let site = site(
        a.name.clone(),
        a.listen.clone(),
        a.ops_listen.clone(),
        layout.as_ref(),
        &key,
    )?;
    check_web_conf_dir(&a.web_conf_dir)?;
    if !fsafe::is_root() && !a.dry_run {
        bail!("the includes belong to root (the web server reads them as root): run this as root");
    }
    steps.step(&format!(
        "web server includes for /{}/ (boinc-rpc at {}, ops page at {})",
        site.name, site.rpc, site.ops
    ));
    write(&site, &a.web_conf_dir, &mut steps)?;
    println!(
        "{}",
        crate::terminal::clean_text(&enable_hint(&site, &a.web_conf_dir))
    );
    Ok(())
}

/// How root enables them.
pub fn enable_hint(site: &Site, dir: &Path) -> String {
    format!(
        "Web server (as root):\n  \
         a2enmod proxy proxy_http rewrite && ln -s {dir}/{apache} /etc/apache2/sites-enabled/ && apache2ctl graceful\n  \
         (nginx: include {dir}/{nginx}; in the project's server block, then nginx -s reload)",
        dir = dir.display(),
        apache = apache_file(&site.name),
        nginx = nginx_file(&site.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        for ok in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost:80",
            "rpc.example.org:9000",
        ] {
            assert!(valid_listen(ok), "{ok}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:8080\nProxyPass / http://evil/",
            "127.0.0.1:8080/ retry=0",
            "host:99999",
            "a b:80",
            "-x:80",
            "evil.example:80;",
            "\"q\":80",
            "host:",
        ] {
            assert!(!valid_listen(bad), "{bad:?}");
        }
    }

    #[test]
    fn templates_are_fully_filled() {
        let site = Site {
            name: "p".into(),
            rpc: "127.0.0.1:1".into(),
            ops: "127.0.0.1:2".into(),
        };
        for (_, text) in render(&site, Path::new("/etc/x")) {
            assert!(!text.contains('@'), "{text}");
            assert!(text.contains("/etc/x/p.boinc-rpc."), "{text}");
        }
    }
}
