//! The install record, `PROJECT/boinc-consent-server.install.json`: what
//! install changed, so uninstall reverses exactly that. It lives in a
//! folder the project's user can write, so it is untrusted input: every
//! entry is checked against the few names install itself uses, anything
//! else is ignored (and said so), and config.xml changes are undone by
//! finding the exact text install wrote, never by position.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{valid_project_name, BACKUP_SUFFIX, DB_DUMP_BIN, LEGACY_DB_DUMP, PROGRAMS};
use super::config_edit::{self, apply, scan, whole_lines, Edit, Layout, Scope};
use super::fsafe::{Dir, FsError};

pub const STATE_FILE: &str = "boinc-consent-server.install.json";
/// 1: up to issue 18 (no `version` key); 2: config.xml changes recorded
/// as text.
pub const VERSION: u32 = 2;
const MAX_BYTES: u64 = 1 << 20;
/// Longest text a recorded change may carry.
const MAX_CHANGE: usize = 64 << 10;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub version: u32,
    /// Installed binaries in `bin/`: name -> sha256 (and what it replaced).
    #[serde(default)]
    pub binaries: BTreeMap<String, Installed>,
    /// config.xml changes, in the order install made them.
    #[serde(default)]
    pub changes: Vec<Change>,
    /// The short name the web server includes were written for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Our spec copy (`boinc_consent_db_dump_spec.xml`), when install
    /// made it: its sha256 then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecRecord>,
    /// The daemon lines that run our programs, as install left them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub daemons: Vec<String>,
    /// The stats task's command, as install left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Version 1 only: original text of a `<daemons>`/`<tasks>` section
    /// it created ("") or expanded (`<daemons/>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sections: BTreeMap<String, String>,
    /// Version 1 only: the db_dump task's `<disabled>` text before
    /// `--enable-db-dump`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_dump_disabled_was: Option<String>,
    /// Version 1 only: it added the db_dump task.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub db_dump_task_added: bool,
    /// Version 1 only: it added `<rpc_trusted_proxies>` with this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_proxies_added: Option<String>,
    /// Version 1 only: web server includes it wrote into the project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpecRecord {
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Installed {
    pub sha256: String,
    /// Version 1 only: `NAME.before-boinc-consent-server`, someone else's
    /// program that was there before (BOINC's C++ db_dump).
    #[serde(default)]
    pub backup: Option<String>,
}

/// One change install made to config.xml: `was` (empty for an insertion)
/// became `now`, somewhere inside `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub scope: Scope,
    pub was: String,
    pub now: String,
    pub what: What,
}

/// What a change is: for messages, and for undoing it when its text was
/// edited since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    Daemon { cmd: String },
    Task { cmd: String },
    Section { name: String },
    ConfigKey { key: String, value: String },
}

impl std::fmt::Display for What {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Daemon { cmd } => write!(f, "daemon `{cmd}`"),
            What::Task { cmd } => write!(f, "task `{cmd}`"),
            What::Section { name } => write!(f, "<{name}>"),
            What::ConfigKey { key, value } => write!(f, "<{key}>{value}</{key}>"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{path}: not an install record ({message}); move it away to go on")]
    Unreadable { path: String, message: String },
}

/// Read the record (None when there is none). Entries that name anything
/// install never writes are dropped, each with a line in `ignored`.
pub fn load(project: &Dir, ignored: &mut Vec<String>) -> Result<Option<State>, RecordError> {
    let Some((bytes, _)) = project.read(STATE_FILE, MAX_BYTES)? else {
        return Ok(None);
    };
    let mut state: State = serde_json::from_slice(&bytes).map_err(|e| RecordError::Unreadable {
        path: project.join(STATE_FILE).display().to_string(),
        message: e.to_string(),
    })?;
    state.sanitize(ignored);
    Ok(Some(state))
}

pub fn save(project: &Dir, state: &State, owner: Option<(u32, u32)>) -> Result<(), FsError> {
    let mut json = serde_json::to_vec_pretty(state).expect("plain data serialises");
    json.push(b'\n');
    project.replace(STATE_FILE, &json, 0o644, owner)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `NAME.boinc-rpc.httpd.conf` / `NAME.boinc-rpc.nginx.conf`, what
/// version 1 wrote into the project folder.
pub fn is_legacy_include(f: &str) -> bool {
    [".boinc-rpc.httpd.conf", ".boinc-rpc.nginx.conf"]
        .iter()
        .any(|suffix| f.strip_suffix(suffix).is_some_and(valid_project_name))
}

impl State {
    fn sanitize(&mut self, ignored: &mut Vec<String>) {
        let mut note = |what: String| ignored.push(format!("install record: ignored {what}"));
        let known = |n: &str| n == LEGACY_DB_DUMP || PROGRAMS.iter().any(|(_, i)| *i == n);
        self.binaries.retain(|name, inst| {
            if !known(name) {
                note(format!(
                    "binary {name:?} (not a program install puts into bin/)"
                ));
                return false;
            }
            if !is_sha256(&inst.sha256) {
                note(format!("binary {name:?} (its sha256 is not one)"));
                return false;
            }
            true
        });
        for (name, inst) in self.binaries.iter_mut() {
            if let Some(b) = &inst.backup {
                // Only version 1 kept programs aside, and only as NAME.before-...
                if name == DB_DUMP_BIN || *b != format!("{name}{BACKUP_SUFFIX}") {
                    note(format!(
                        "backup {b:?} of {name} (install keeps a program only as {name}{BACKUP_SUFFIX})"
                    ));
                    inst.backup = None;
                }
            }
        }
        if self.spec.as_ref().is_some_and(|s| !is_sha256(&s.sha256)) {
            note("spec record (its sha256 is not one)".into());
            self.spec = None;
        }
        self.daemons.retain(|cmd| {
            let ok = is_our_daemon(cmd);
            if !ok {
                note(format!("daemon {cmd:?} (not one of ours)"));
            }
            ok
        });
        if self
            .task
            .as_deref()
            .is_some_and(|t| config_edit::program(t) != DB_DUMP_BIN)
        {
            note(format!(
                "task {:?} (not our db_dump)",
                self.task.take().unwrap_or_default()
            ));
        }
        self.files.retain(|f| {
            let ok = is_legacy_include(f);
            if !ok {
                note(format!(
                    "file {f:?} (not a web server include install wrote)"
                ));
            }
            ok
        });
        self.sections.retain(|name, was| {
            let empty_element = {
                let t = was.trim();
                t.strip_prefix(&format!("<{name}"))
                    .and_then(|r| r.strip_suffix("/>"))
                    .is_some_and(|r| r.trim().is_empty())
            };
            let ok = (name == "daemons" || name == "tasks") && (was.is_empty() || empty_element);
            if !ok {
                note(format!(
                    "section {name:?} (install only creates empty ones)"
                ));
            }
            ok
        });
        self.changes.retain(|c| {
            let scope_fits = matches!(
                (&c.what, c.scope),
                (What::Daemon { .. }, Scope::Daemons | Scope::Root)
                    | (What::Task { .. }, Scope::Tasks | Scope::Root)
                    | (What::Section { .. }, Scope::Root)
                    | (What::ConfigKey { .. }, Scope::Config)
            );
            let ok = scope_fits
                && !c.now.is_empty()
                && c.now.len() <= MAX_CHANGE
                && c.was.len() <= MAX_CHANGE;
            if !ok {
                note(format!("config.xml change {:?}", c.what.to_string()));
            }
            ok
        });
        if self.name.as_deref().is_some_and(|n| !valid_project_name(n)) {
            note(format!(
                "project name {:?}",
                self.name.take().unwrap_or_default()
            ));
        }
    }

    /// A version 1 record has booleans and saved texts instead of the
    /// changes themselves: rebuild those from config.xml as it is now, the
    /// way version 1 would have undone them.
    pub fn upgrade_from_v1(&mut self, text: &str) -> Result<(), config_edit::EditError> {
        if self.version >= VERSION {
            return Ok(());
        }
        let layout = scan(text)?;
        let lines = |s: usize, e: usize| {
            let (s, e) = whole_lines(text, s, e);
            text[s..e].to_owned()
        };
        // Version 1 took every boinc-rpc and `boinc-ops serve` daemon for
        // its own.
        for d in &layout.daemons.items {
            if is_our_daemon(&d.cmd) {
                self.changes.push(Change {
                    scope: Scope::Daemons,
                    was: String::new(),
                    now: lines(d.start, d.end),
                    what: What::Daemon { cmd: d.cmd.clone() },
                });
            }
        }
        if let Some(t) = layout.tasks.items.iter().find(|t| t.program() == "db_dump") {
            let element = text[t.start..t.end].to_owned();
            if self.db_dump_task_added {
                self.changes.push(Change {
                    scope: Scope::Tasks,
                    was: String::new(),
                    now: lines(t.start, t.end),
                    what: What::Task { cmd: t.cmd.clone() },
                });
            } else if let (Some(was), Some(d)) = (&self.db_dump_disabled_was, &t.disabled) {
                // Version 1 only ever rewrote the text between the tags.
                let inner = &text[d.start..d.end];
                if let (Some(open), Some(close)) = (inner.find('>'), inner.rfind("</")) {
                    let before = format!("{}{was}{}", &inner[..=open], &inner[close..]);
                    self.changes.push(Change {
                        scope: Scope::Tasks,
                        was: format!("{}{before}{}", &text[t.start..d.start], &text[d.end..t.end]),
                        now: element,
                        what: What::Task { cmd: t.cmd.clone() },
                    });
                }
            }
        }
        if let Some(v) = &self.trusted_proxies_added {
            if let Some((key, s, e, _)) = layout
                .config_keys
                .iter()
                .find(|(k, _, _, val)| k == "rpc_trusted_proxies" && val == v)
            {
                self.changes.push(Change {
                    scope: Scope::Config,
                    was: String::new(),
                    now: lines(*s, *e),
                    what: What::ConfigKey {
                        key: key.clone(),
                        value: v.clone(),
                    },
                });
            }
        }
        self.db_dump_task_added = false;
        self.db_dump_disabled_was = None;
        self.trusted_proxies_added = None;
        self.version = VERSION;
        Ok(())
    }
}

/// The daemons install adds: boinc-rpc, and the ops page (`boinc-ops serve`).
pub fn is_our_daemon(cmd: &str) -> bool {
    let program = config_edit::program(cmd);
    program == "boinc-rpc"
        || (program == "boinc-ops" && cmd.split_whitespace().any(|w| w == "serve"))
}

/// Record that `was` became `now`. When `was` is text an earlier change
/// produced (install edits a task it added or rewrote before), that change
/// is updated instead, so undoing it still gives back the original.
pub fn record(changes: &mut Vec<Change>, scope: Scope, was: &str, now: &str, what: What) {
    if !was.is_empty() {
        if let Some(c) = changes.iter_mut().rev().find(|c| c.now.contains(was)) {
            c.now = c.now.replacen(was, now, 1);
            c.what = what;
            return;
        }
    }
    changes.push(Change {
        scope,
        was: was.to_owned(),
        now: now.to_owned(),
        what,
    });
}

/// Apply `edit` to `text` and record it.
pub fn apply_recorded(
    text: &str,
    edit: Edit,
    scope: Scope,
    what: What,
    changes: &mut Vec<Change>,
) -> String {
    record(
        changes,
        scope,
        &text[edit.start..edit.end],
        &edit.with,
        what,
    );
    apply(text, vec![edit])
}

/// Undo `changes` (last first) in `text`. Each is found by its exact text
/// inside its scope; one edited since is undone element-wise when that
/// is still clear, else left alone. Returns the new text and one line per
/// change saying what happened.
pub fn undo(
    text: &str,
    changes: &[Change],
) -> Result<(String, Vec<String>), config_edit::EditError> {
    let mut out = text.to_owned();
    let mut said = Vec::new();
    for c in changes.iter().rev() {
        let layout = scan(&out)?;
        let found = layout
            .span_of(c.scope)
            .and_then(|(s, e)| out[s..e].rfind(&c.now).map(|i| s + i));
        if let Some(at) = found {
            out.replace_range(at..at + c.now.len(), &c.was);
            said.push(undo_message(c));
        } else if let Some(edit) = undo_edited(&out, &layout, c) {
            out = apply(&out, vec![edit]);
            said.push(format!(
                "{} (edited since install: undone element by element; blank space around it may differ)",
                undo_message(c)
            ));
        } else {
            said.push(format!("{}: not found any more; nothing to undo", c.what));
        }
    }
    Ok((out, said))
}

fn undo_message(c: &Change) -> String {
    match (&c.what, c.was.is_empty()) {
        (What::Section { name }, _) => format!("put <{name}> back as it was"),
        (what, true) => format!("remove {what}"),
        (what, false) => format!("put {what} back as it was"),
    }
}

/// The edit undoing `c` when its text is no longer there verbatim.
fn undo_edited(text: &str, layout: &Layout, c: &Change) -> Option<Edit> {
    match &c.what {
        What::Daemon { cmd } => layout
            .daemons
            .items
            .iter()
            .rev()
            .find(|d| &d.cmd == cmd)
            .map(|d| config_edit::remove_span(text, d.start, d.end)),
        What::Task { cmd } => {
            let t = layout.tasks.items.iter().rev().find(|t| &t.cmd == cmd)?;
            if c.was.is_empty() {
                Some(config_edit::remove_span(text, t.start, t.end))
            } else {
                Some(Edit {
                    start: t.start,
                    end: t.end,
                    with: c.was.clone(),
                })
            }
        }
        What::Section { name } => {
            let section = if name == "daemons" {
                &layout.daemons
            } else {
                &layout.tasks
            };
            config_edit::restore_section(text, section, &c.was)
        }
        What::ConfigKey { key, value } => layout
            .config_keys
            .iter()
            .find(|(k, _, _, v)| k == key && v == value)
            .map(|(_, s, e, _)| config_edit::remove_span(text, *s, *e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_entries_are_dropped() {
        let json = serde_json::json!({
            "binaries": {
                "../../etc/passwd": {"sha256": "0".repeat(64)},
                "/etc/shadow": {"sha256": "0".repeat(64)},
                "start": {"sha256": "0".repeat(64)},
                "boinc-rpc": {"sha256": "0".repeat(64), "backup": "../config.xml"},
                "boinc-ops": {"sha256": "not hex"},
                "db_dump": {"sha256": "a".repeat(64), "backup": "db_dump.before-boinc-consent-server"},
                "boinc_consent_db_dump": {"sha256": "b".repeat(64), "backup": "boinc_consent_db_dump.before-boinc-consent-server"},
            },
            "daemons": ["boinc-rpc", "rm -rf /"],
            "task": "db_dump -d 2",
            "spec": {"sha256": "../x"},
            "files": ["../x.boinc-rpc.httpd.conf", "/etc/x", "config.xml", "p.boinc-rpc.nginx.conf"],
            "sections": {"daemons": "<daemons><daemon/></daemons>", "tasks": "<tasks />", "config": ""},
            "changes": [
                {"scope": "config", "was": "", "now": "", "what": {"kind": "config_key", "key": "k", "value": "v"}},
                {"scope": "config", "was": "", "now": "<x/>", "what": {"kind": "daemon", "cmd": "x"}},
                {"scope": "daemons", "was": "", "now": "<daemon/>", "what": {"kind": "daemon", "cmd": "x"}},
            ],
            "name": "../evil",
        });
        let mut s: State = serde_json::from_value(json).unwrap();
        let mut ignored = Vec::new();
        s.sanitize(&mut ignored);
        assert_eq!(
            s.binaries.keys().collect::<Vec<_>>(),
            ["boinc-rpc", "boinc_consent_db_dump", "db_dump"]
        );
        assert_eq!(s.binaries["boinc-rpc"].backup, None);
        assert_eq!(s.binaries["boinc_consent_db_dump"].backup, None);
        assert_eq!(s.daemons, ["boinc-rpc"]);
        assert!(s.task.is_none() && s.spec.is_none());
        assert!(s.binaries["db_dump"].backup.is_some());
        assert_eq!(s.files, ["p.boinc-rpc.nginx.conf"]);
        assert_eq!(s.sections.keys().collect::<Vec<_>>(), ["tasks"]);
        assert_eq!(s.changes.len(), 1);
        assert_eq!(s.name, None);
        assert_eq!(ignored.len(), 17, "{ignored:#?}");
    }
}
