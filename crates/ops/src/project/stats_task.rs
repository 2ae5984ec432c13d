//! The stats export task. Upstream's `tools/upgrade` copies every upstream
//! program into `PROJECT/bin` (its `db_dump` included) and its
//! `sched/db_dump_spec.xml` over `PROJECT/db_dump_spec.xml`, and
//! boinc-server-docker copies the image's project tree over the volume on
//! every start. So the task runs our db_dump under a name upstream never
//! uses, reading a spec file of our own (a copy of the project's, made at
//! install), and upstream's `bin/db_dump` and `db_dump_spec.xml` are left
//! to upstream.

use anyhow::{bail, Context};

use super::common::{ConfigFile, DB_DUMP_BIN, LEGACY_DB_DUMP, SPEC_FILE};
use super::config_edit::{Item, Layout};
use super::fsafe::{is_plain_name, Dir, Kind};
use crate::terminal::clean;

/// A db_dump spec is a few KB.
pub const MAX_SPEC: u64 = 1 << 20;

/// make_project's task line for upstream's db_dump.
pub const UPSTREAM_CMD: &str = "db_dump -d 2 --dump_spec ../db_dump_spec.xml";
/// The line install writes (or makes of upstream's).
pub const STATS_CMD: &str =
    "boinc_consent_db_dump -d 2 --dump_spec ../boinc_consent_db_dump_spec.xml";
/// Where upstream's db_dump reads its spec when the task says nothing
/// (its documented `../db_dump_spec.xml`).
pub const UPSTREAM_SPEC: &str = "db_dump_spec.xml";

/// `--dump_spec` as upstream's db_dump and ours take it: one or two
/// dashes, `_` or `-`.
fn is_spec_flag(w: &str) -> bool {
    let bare = w
        .strip_prefix("--")
        .or_else(|| w.strip_prefix('-'))
        .unwrap_or("");
    bare == "dump_spec" || bare == "dump-spec"
}

/// The spec file a task line names (the word after `--dump_spec`).
pub fn spec_arg(cmd: &str) -> Option<&str> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    words
        .iter()
        .position(|w| is_spec_flag(w))
        .and_then(|i| words.get(i + 1).copied())
}

/// Upstream's task line made ours: our program, our spec, every other
/// argument (`-d 2`, `--retry_period N`, ...) as it was.
pub fn ours(cmd: &str) -> String {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let spec = format!("../{SPEC_FILE}");
    let mut out = vec![DB_DUMP_BIN];
    let mut saw_spec = false;
    let mut i = 1;
    while i < words.len() {
        if is_spec_flag(words[i]) {
            out.push(words[i]);
            out.push(&spec);
            saw_spec = true;
            i += 2;
        } else {
            out.push(words[i]);
            i += 1;
        }
    }
    if !saw_spec {
        out.push("--dump_spec");
        out.push(&spec);
    }
    out.join(" ")
}

/// The file in the project folder a task's spec argument names, when it
/// is one: `../NAME` (tasks run in `PROJECT/tmp_HOST`). Anything else
/// (absolute paths, other folders) is not copied by root.
pub fn spec_source(cmd: &str) -> Result<String, String> {
    match spec_arg(cmd) {
        None => Ok(UPSTREAM_SPEC.to_owned()),
        Some(arg) => match arg.strip_prefix("../") {
            Some(name) if is_plain_name(name) => Ok(name.to_owned()),
            _ => Err(format!(
                "task `{cmd}` reads its spec from {arg}: install copies the spec only from a \
                 file directly in the project folder (../NAME); point the task there first"
            )),
        },
    }
}

/// What happens to our spec copy.
pub enum SpecPlan {
    Keep,
    Copy {
        from: String,
        bytes: Vec<u8>,
        mode: u32,
        owner: (u32, u32),
    },
}

/// Our spec stays as it is once there (the admin edits it); otherwise it
/// is copied from the spec the stats task reads now, which must be a
/// valid db_dump spec in the project folder.
pub fn plan_spec(project: &Dir, cfg: &ConfigFile) -> anyhow::Result<SpecPlan> {
    if let Some(i) = project.lstat(SPEC_FILE)? {
        if i.kind != Kind::File {
            bail!(
                "{} is not a regular file; move it away first",
                project.join(SPEC_FILE).display()
            );
        }
        return Ok(SpecPlan::Keep);
    }
    let from = match stats_tasks(&cfg.layout).0 {
        Some(t) if t.program() == LEGACY_DB_DUMP => {
            spec_source(&t.cmd).map_err(|e| anyhow::anyhow!(clean(&e)))?
        }
        _ => UPSTREAM_SPEC.to_owned(),
    };
    let (bytes, info) = project.read(&from, MAX_SPEC)?.with_context(|| {
        format!(
            "{} missing: the stats task needs a db_dump spec (BOINC's sched/db_dump_spec.xml)",
            project.join(&from).display()
        )
    })?;
    let text = String::from_utf8_lossy(&bytes);
    boinc_db_dump::DumpSpec::parse(&text, &project.join(&from))
        .map_err(|e| anyhow::anyhow!(clean(&e.to_string())))?;
    Ok(SpecPlan::Copy {
        from,
        bytes,
        mode: info.mode & 0o666,
        owner: (info.uid, info.gid),
    })
}

/// (the task running our db_dump, else the first running upstream's;
/// every other upstream db_dump task).
pub fn stats_tasks(layout: &Layout) -> (Option<&Item>, Vec<&Item>) {
    let ours = layout
        .tasks
        .items
        .iter()
        .find(|t| t.program() == DB_DUMP_BIN);
    let upstream: Vec<&Item> = layout
        .tasks
        .items
        .iter()
        .filter(|t| t.program() == LEGACY_DB_DUMP)
        .collect();
    match ours {
        Some(t) => (Some(t), upstream),
        None => {
            let mut up = upstream.into_iter();
            (up.next(), up.collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_line_becomes_ours() {
        assert_eq!(ours(UPSTREAM_CMD), STATS_CMD);
        assert_eq!(
            ours("db_dump -d 3 -dump_spec ../my_spec.xml --retry_period 60"),
            "boinc_consent_db_dump -d 3 -dump_spec ../boinc_consent_db_dump_spec.xml --retry_period 60"
        );
        assert_eq!(
            ours("/home/p/bin/db_dump -d 2"),
            "boinc_consent_db_dump -d 2 --dump_spec ../boinc_consent_db_dump_spec.xml"
        );
    }

    #[test]
    fn spec_sources() {
        assert_eq!(spec_source(UPSTREAM_CMD).unwrap(), "db_dump_spec.xml");
        assert_eq!(spec_source("db_dump -d 2").unwrap(), "db_dump_spec.xml");
        assert_eq!(
            spec_source("db_dump --dump-spec ../other.xml").unwrap(),
            "other.xml"
        );
        for bad in [
            "db_dump --dump_spec /etc/shadow",
            "db_dump --dump_spec ../../x.xml",
            "db_dump --dump_spec ../sub/x.xml",
            "db_dump --dump_spec spec.xml",
            "db_dump --dump_spec ../..",
        ] {
            assert!(spec_source(bad).is_err(), "{bad}");
        }
    }
}
