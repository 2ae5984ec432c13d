//! BOINC's `config.xml` (`<boinc><config>...</config></boinc>`).
//!
//! Every element directly inside `<config>` is kept as a string (an empty
//! element such as `<account_manager/>` as ""), so new keys need no parser
//! change; typed accessors give the keys this project reads (numbers and
//! booleans in `config_values`). Unknown keys
//! and other sections (`<daemons>`, `<tasks>`) are ignored, as BOINC does.

pub mod profile;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::Reader;

/// Environment variable that overrides the database settings of config.xml
/// for every binary: `mysql://user:pass@host:port/db`.
pub const DATABASE_URL_ENV: &str = "BOINC_DATABASE_URL";

/// Environment variable naming the project folder (as BOINC's own programs
/// read it): config.xml is looked for there first.
pub const PROJECT_DIR_ENV: &str = "BOINC_PROJECT_DIR";

/// File whose presence in the project folder tells daemons to stop
/// (written by BOINC's `bin/stop`).
pub const STOP_DAEMONS_FILE: &str = "stop_daemons";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid XML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path} has no <boinc><config> section")]
    NoConfigSection { path: PathBuf },
    #[error("{0}")]
    Invalid(String),
    /// A key's value cannot mean what the key is for (see `config_values`).
    #[error("config.xml <{key}>: {value} is not {expected}")]
    Value {
        key: String,
        /// Quoted, escaped and cut for display.
        value: String,
        expected: String,
    },
    #[error(
        "no config.xml found; looked for {}. Pass --config PATH, set {PROJECT_DIR_ENV}, \
         or run from the project folder or one below it (e.g. tmp_HOST)",
        looked_list(.looked)
    )]
    NotFound { looked: Vec<PathBuf> },
}

fn looked_list(looked: &[PathBuf]) -> String {
    looked
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a BOINC program looks for config.xml when not told: in
/// `$BOINC_PROJECT_DIR` if that is set (and only there, as BOINC's own
/// programs do: a wrong variable must not silently pick another project),
/// else `./config.xml`, else `../config.xml` (BOINC runs daemons and tasks
/// in `PROJECT/tmp_HOST`). `explicit` (`--config`) wins over all of them.
pub fn find_config(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    find_config_from(explicit, std::env::var_os(PROJECT_DIR_ENV), &cwd)
}

/// [`find_config`] with the environment and working folder given.
pub fn find_config_from(
    explicit: Option<&Path>,
    project_dir_env: Option<std::ffi::OsString>,
    cwd: &Path,
) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let candidates: Vec<PathBuf> = match project_dir_env {
        Some(d) if !d.is_empty() => vec![cwd.join(d).join("config.xml")],
        _ => vec![cwd.join("config.xml"), cwd.join("..").join("config.xml")],
    };
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(ConfigError::NotFound { looked: candidates })
}

#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// Folder holding config.xml: relative paths in it resolve against this.
    pub project_dir: PathBuf,
    values: BTreeMap<String, String>,
}

impl ProjectConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let project_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_owned()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."));
        let values = parse_config_section(&text).map_err(|e| match e {
            ParseFail::Xml(message) => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            ParseFail::NoSection => ConfigError::NoConfigSection {
                path: path.to_owned(),
            },
        })?;
        Ok(Self {
            project_dir,
            values,
        })
    }

    /// Load `explicit`, or find config.xml as BOINC's programs do
    /// ([`find_config`]).
    pub fn discover(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(&find_config(explicit)?)
    }

    /// A config built from key/value pairs (tests, tools).
    pub fn from_pairs(project_dir: PathBuf, pairs: &[(&str, &str)]) -> Self {
        Self {
            project_dir,
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|s| s.trim())
    }

    pub fn master_url(&self) -> &str {
        self.str("master_url").unwrap_or("")
    }

    pub fn long_name(&self) -> &str {
        self.str("long_name").unwrap_or("")
    }

    pub fn min_passwd_length(&self) -> i64 {
        self.int("min_passwd_length")
            .filter(|n| *n > 0)
            .unwrap_or(6)
    }

    /// Where the project's web RPCs are reached over https:
    /// `<secure_url_base>` (upstream's `SECURE_URL_BASE` in project.inc),
    /// else master_url; always ending in '/'.
    pub fn web_rpc_url_base(&self) -> String {
        let mut base = match self.str("secure_url_base") {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => self.master_url().to_owned(),
        };
        if !base.is_empty() && !base.ends_with('/') {
            base.push('/');
        }
        base
    }

    /// `local.revision` in the project folder (written by BOINC's
    /// make_project and upgrade).
    pub fn local_revision_path(&self) -> PathBuf {
        self.project_dir.join("local.revision")
    }

    /// `project_keywords.xml` in the project folder.
    pub fn project_keywords_path(&self) -> PathBuf {
        self.project_dir.join("project_keywords.xml")
    }

    /// `<key_dir>/account_ownership_public.pem`; None without `<key_dir>`.
    pub fn account_ownership_public_key_path(&self) -> Option<PathBuf> {
        match self.str("key_dir") {
            Some(d) if !d.is_empty() => Some(self.resolve(d).join("account_ownership_public.pem")),
            _ => None,
        }
    }

    /// `terms_of_use.txt` beside config.xml, or `<terms_of_use_file>`
    /// resolved against the folder holding config.xml.
    pub fn terms_of_use_path(&self) -> PathBuf {
        match self.str("terms_of_use_file") {
            Some(p) if !p.is_empty() => self.resolve(p),
            _ => self.project_dir.join("terms_of_use.txt"),
        }
    }

    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.project_dir.join(p)
        }
    }

    /// BOINC's `stop_web` / `stop_sched` marker files in the project folder.
    pub fn web_stopped(&self) -> bool {
        self.project_dir.join("stop_web").exists()
    }

    pub fn sched_stopped(&self) -> bool {
        self.project_dir.join("stop_sched").exists()
    }

    /// `PROJECT/stop_daemons` if it exists: BOINC's `bin/stop` wrote it, so
    /// daemons and tasks must not start (or must stop).
    pub fn stop_daemons_file(&self) -> Option<PathBuf> {
        let p = self.project_dir.join(STOP_DAEMONS_FILE);
        p.exists().then_some(p)
    }

    /// Database settings: `BOINC_DATABASE_URL` if set, else config.xml.
    pub fn database(&self) -> Result<DbSettings, ConfigError> {
        match std::env::var(DATABASE_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => DbSettings::from_url(url.trim()),
            _ => self.database_from_file(false),
        }
    }

    /// Where db_dump reads: the replica when `replica_db_host` is set, or
    /// when `host` (db_dump's `--db-host`) is given, which stands in for
    /// `replica_db_host` (the other `replica_*` keys still apply; blank
    /// means no replica).
    pub fn replica_database_at(&self, host: Option<&str>) -> Result<DbSettings, ConfigError> {
        match host.map(str::trim) {
            Some("") => self.database(),
            Some(h) => self.database_from_file_at(true, Some(h)),
            None if self.str("replica_db_host").is_some_and(|h| !h.is_empty()) => {
                self.database_from_file(true)
            }
            None => self.database(),
        }
    }

    /// The replica host db_dump reads from, if any (`--db-host` or
    /// `replica_db_host`, trimmed; blank is none).
    pub fn replica_host<'a>(&'a self, host: Option<&'a str>) -> Option<&'a str> {
        host.map(str::trim)
            .or_else(|| self.str("replica_db_host"))
            .filter(|h| !h.is_empty())
    }

    fn database_from_file(&self, replica: bool) -> Result<DbSettings, ConfigError> {
        self.database_from_file_at(replica, None)
    }

    /// `replica_host`: stands in for `replica_db_host` (never empty).
    fn database_from_file_at(
        &self,
        replica: bool,
        replica_host: Option<&str>,
    ) -> Result<DbSettings, ConfigError> {
        let key = |k: &str| {
            if replica && k == "db_host" && replica_host.is_some() {
                replica_host
            } else if replica {
                self.str(&format!("replica_{k}"))
                    .filter(|v| !v.is_empty())
                    .or_else(|| self.str(k))
            } else {
                self.str(k)
            }
        };
        let name = key("db_name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ConfigError::Invalid("config.xml has no <db_name>".into()))?;
        let (host, port) = split_host_port(key("db_host").unwrap_or("localhost"))?;
        Ok(DbSettings {
            name: name.to_owned(),
            host,
            port,
            user: key("db_user").unwrap_or("root").to_owned(),
            passwd: key("db_passwd").unwrap_or("").to_owned(),
        })
    }
}

fn split_host_port(s: &str) -> Result<(String, u16), ConfigError> {
    let s = if s.is_empty() { "localhost" } else { s };
    match s.rsplit_once(':') {
        Some((h, p)) => {
            let port = p
                .parse()
                .map_err(|_| ConfigError::Invalid(format!("bad port in db_host '{s}'")))?;
            Ok((h.to_owned(), port))
        }
        None => Ok((s.to_owned(), 3306)),
    }
}

/// Where the database is. `Debug` leaves out the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbSettings {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub passwd: String,
}

impl std::fmt::Debug for DbSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}/{}", self.user, self.host, self.port, self.name)
    }
}

impl DbSettings {
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let u = url::Url::parse(url)
            .map_err(|e| ConfigError::Invalid(format!("{DATABASE_URL_ENV} is not a URL: {e}")))?;
        if u.scheme() != "mysql" {
            return Err(ConfigError::Invalid(format!(
                "{DATABASE_URL_ENV} must start with mysql://"
            )));
        }
        let name = u.path().trim_start_matches('/');
        if name.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{DATABASE_URL_ENV} names no database (mysql://user:pass@host:port/DB)"
            )));
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Ok(Self {
            name: decode(name),
            host: u.host_str().unwrap_or("localhost").to_owned(),
            port: u.port().unwrap_or(3306),
            user: if u.username().is_empty() {
                "root".to_owned()
            } else {
                decode(u.username())
            },
            passwd: u.password().map(decode).unwrap_or_default(),
        })
    }

    /// Connection options for mysql_async. "localhost" goes over TCP to
    /// 127.0.0.1 (mysql_async has no implicit socket lookup).
    pub fn opts(&self) -> mysql_async::Opts {
        self.opts_builder(Some(&self.name)).into()
    }

    /// Same server, no default database (to create or drop one).
    pub fn server_opts(&self) -> mysql_async::Opts {
        self.opts_builder(None).into()
    }

    fn opts_builder(&self, db: Option<&str>) -> mysql_async::OptsBuilder {
        let host = if self.host == "localhost" {
            "127.0.0.1"
        } else {
            &self.host
        };
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(host.to_owned())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.passwd.clone()))
            .db_name(db.map(str::to_owned))
            .prefer_socket(false)
            .init(vec![crate::text::charset::SESSION_INIT])
    }
}

enum ParseFail {
    Xml(String),
    NoSection,
}

/// Collect the direct children of `<boinc><config>` as name -> text.
fn parse_config_section(text: &str) -> Result<BTreeMap<String, String>, ParseFail> {
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut values = BTreeMap::new();
    let mut seen_config = false;
    let mut current: Option<(String, String)> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| ParseFail::Xml(format!("at byte {}: {e}", reader.error_position())))?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if in_config(&path) {
                    current = Some((name.clone(), String::new()));
                }
                if path.len() == 1 && path[0] == "boinc" && name == "config" {
                    seen_config = true;
                }
                path.push(name);
            }
            Event::Empty(e) if in_config(&path) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                values.insert(name, String::new());
            }
            Event::Empty(e)
                if path.len() == 1 && path[0] == "boinc" && e.name().as_ref() == b"config" =>
            {
                seen_config = true;
            }
            Event::Text(t) => {
                if let Some((_, buf)) = current.as_mut() {
                    if path.len() == 3 {
                        let s = t.decode().map_err(|e| ParseFail::Xml(e.to_string()))?;
                        let s = quick_xml::escape::unescape(&s)
                            .map_err(|e| ParseFail::Xml(e.to_string()))?;
                        buf.push_str(&s);
                    }
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, buf)) = current.as_mut() {
                    if path.len() == 3 {
                        let s = format!("&{};", String::from_utf8_lossy(&r));
                        let s = quick_xml::escape::unescape(&s)
                            .map_err(|e| ParseFail::Xml(e.to_string()))?;
                        buf.push_str(&s);
                    }
                }
            }
            Event::CData(t) => {
                if let Some((_, buf)) = current.as_mut() {
                    if path.len() == 3 {
                        buf.push_str(&String::from_utf8_lossy(&t));
                    }
                }
            }
            Event::End(_) => {
                path.pop();
                if path.len() == 2 {
                    if let Some((k, v)) = current.take() {
                        values.insert(k, v);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if seen_config {
        Ok(values)
    } else {
        Err(ParseFail::NoSection)
    }
}

fn in_config(path: &[String]) -> bool {
    path.len() == 2 && path[0] == "boinc" && path[1] == "config"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(xml: &str) -> ProjectConfig {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.xml");
        std::fs::write(&p, xml).unwrap();
        ProjectConfig::load(&p).unwrap()
    }

    #[test]
    fn a_replica_host_given_wins_over_the_file() {
        let c = ProjectConfig::from_pairs(
            ".".into(),
            &[
                ("db_name", "p"),
                ("db_host", "primary"),
                ("replica_db_host", "replica:3307"),
                ("replica_db_user", "reader"),
            ],
        );
        let file = c.replica_database_at(None).unwrap();
        assert_eq!((file.host.as_str(), file.port), ("replica", 3307));
        let given = c.replica_database_at(Some("other:3310")).unwrap();
        assert_eq!((given.host.as_str(), given.port), ("other", 3310));
        assert_eq!((given.user.as_str(), given.name.as_str()), ("reader", "p"));
        assert_eq!(c.replica_host(None), Some("replica:3307"));
        assert_eq!(c.replica_host(Some("other:3310")), Some("other:3310"));
        // A blank host given means no replica; a given host is trimmed.
        assert_eq!(c.replica_host(Some("")), None);
        assert_eq!(c.replica_host(Some("  ")), None);
        assert_eq!(c.replica_host(Some(" r:3307 ")), Some("r:3307"));
        let trimmed = c.replica_database_at(Some(" r:3307 ")).unwrap();
        assert_eq!((trimmed.host.as_str(), trimmed.port), ("r", 3307));
        // The file's own host is not read when one is given.
        let bad = ProjectConfig::from_pairs(
            ".".into(),
            &[("db_name", "p"), ("db_host", "primary:notaport")],
        );
        let given = bad.replica_database_at(Some("replica:3307")).unwrap();
        assert_eq!((given.host.as_str(), given.port), ("replica", 3307));
    }

    #[test]
    fn booleans_follow_boinc_rules() {
        let c = load(
            "<boinc><config><a/><b>1</b><c>0</c><d> 1 </d><daemons><x/></daemons></config>\
             <daemons><y/></daemons></boinc>",
        );
        assert!(c.bool("a"));
        assert!(c.bool("b"));
        assert!(!c.bool("c"));
        assert!(c.bool("d"));
        assert!(!c.bool("missing"));
        assert!(!c.bool("daemons") || c.str("daemons") == Some(""));
        assert!(!c.bool("x"), "nested elements are not config keys");
        assert!(!c.bool("y"));
    }

    #[test]
    fn text_values_are_unescaped() {
        let c = load("<boinc><config><long_name>A &amp; B</long_name></config></boinc>");
        assert_eq!(c.long_name(), "A & B");
    }

    #[test]
    fn terms_path_resolves_against_config_dir() {
        let c = ProjectConfig::from_pairs(
            PathBuf::from("/p/config"),
            &[("terms_of_use_file", "../terms_of_use.txt")],
        );
        assert_eq!(
            c.terms_of_use_path(),
            PathBuf::from("/p/config/../terms_of_use.txt")
        );
        let d = ProjectConfig::from_pairs(PathBuf::from("/p"), &[]);
        assert_eq!(d.terms_of_use_path(), PathBuf::from("/p/terms_of_use.txt"));
    }

    #[test]
    fn missing_section_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.xml");
        std::fs::write(&p, "<boinc></boinc>").unwrap();
        assert!(matches!(
            ProjectConfig::load(&p),
            Err(ConfigError::NoConfigSection { .. })
        ));
        std::fs::write(&p, "<boinc><config><a></config>").unwrap();
        assert!(matches!(
            ProjectConfig::load(&p),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn config_discovery_order_and_error() {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("proj");
        let tmp = project.join("tmp_host");
        std::fs::create_dir_all(&tmp).unwrap();
        // Nothing anywhere: the error names every place looked at.
        let e = find_config_from(None, None, &tmp).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&tmp.join("config.xml").display().to_string()),
            "{msg}"
        );
        assert!(
            msg.contains(&tmp.join("../config.xml").display().to_string()),
            "{msg}"
        );
        assert!(
            msg.contains("--config") && msg.contains(PROJECT_DIR_ENV),
            "{msg}"
        );
        // ../config.xml from tmp_HOST (how BOINC starts daemons and tasks).
        std::fs::write(project.join("config.xml"), "<boinc><config/></boinc>").unwrap();
        assert_eq!(
            find_config_from(None, None, &tmp).unwrap(),
            tmp.join("../config.xml")
        );
        // ./config.xml wins over ../config.xml.
        std::fs::write(tmp.join("config.xml"), "<boinc><config/></boinc>").unwrap();
        assert_eq!(
            find_config_from(None, None, &tmp).unwrap(),
            tmp.join("config.xml")
        );
        // BOINC_PROJECT_DIR wins, and is the only place looked at when set.
        let other = root.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        let e = find_config_from(None, Some(other.clone().into()), &tmp).unwrap_err();
        assert!(
            matches!(&e, ConfigError::NotFound { looked } if looked == &vec![other.join("config.xml")])
        );
        std::fs::write(other.join("config.xml"), "<boinc><config/></boinc>").unwrap();
        assert_eq!(
            find_config_from(None, Some(other.clone().into()), &tmp).unwrap(),
            other.join("config.xml")
        );
        // An empty variable counts as unset.
        assert_eq!(
            find_config_from(None, Some("".into()), &tmp).unwrap(),
            tmp.join("config.xml")
        );
        // --config is taken as given.
        let explicit = Path::new("/elsewhere/config.xml");
        assert_eq!(
            find_config_from(Some(explicit), None, &tmp).unwrap(),
            explicit
        );
        // A loaded config's project folder is the one holding the file.
        std::fs::remove_file(tmp.join("config.xml")).unwrap();
        std::fs::write(project.join("stop_daemons"), "<stop/>").unwrap();
        let c = ProjectConfig::load(&find_config_from(None, None, &tmp).unwrap()).unwrap();
        assert_eq!(c.stop_daemons_file(), Some(tmp.join("../stop_daemons")));
    }

    #[test]
    fn database_url_parses_and_hides_password() {
        let s = DbSettings::from_url("mysql://u:p%40ss@db.example:3307/proj").unwrap();
        assert_eq!(s.user, "u");
        assert_eq!(s.passwd, "p@ss");
        assert_eq!(s.host, "db.example");
        assert_eq!(s.port, 3307);
        assert_eq!(s.name, "proj");
        assert!(!format!("{s:?}").contains("p@ss"));
        assert!(DbSettings::from_url("mysql://u@h/").is_err());
        assert!(DbSettings::from_url("postgres://u@h/x").is_err());
    }

    #[test]
    fn db_settings_from_file_with_port() {
        let c = ProjectConfig::from_pairs(
            PathBuf::from("."),
            &[("db_name", "p"), ("db_host", "h:3310"), ("db_user", "u")],
        );
        let s = c.database_from_file(false).unwrap();
        assert_eq!((s.host.as_str(), s.port, s.user.as_str()), ("h", 3310, "u"));
    }
}
