//! `boinc-ops project check`: exit 0 on an intact install, else exit 1
//! with one exact line per drift. One test per kind of drift. The
//! database plays no part (install runs with --db-at-start).

mod project_common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use boinc_db::testing::write_made_project;
use boinc_db::DbSettings;
use project_common::*;

struct Installed {
    _tmp: tempfile::TempDir,
    project: PathBuf,
    web: PathBuf,
}

impl Installed {
    fn new(name: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        open_to_all(tmp.path());
        let project = tmp.path().join(name);
        let settings = DbSettings::from_url("mysql://root@127.0.0.1:3306/unused").unwrap();
        write_made_project(&project, &settings, name, "host");
        let from = tmp.path().join("build");
        fake_binaries(&from, "v1", 0);
        let web = tmp.path().join("web");
        let i = Installed {
            _tmp: tmp,
            project,
            web,
        };
        ok(ops(&[
            "project",
            "install",
            "--project-dir",
            i.dir(),
            "--from",
            from.to_str().unwrap(),
            "--web-conf-dir",
            i.web.to_str().unwrap(),
            "--db-at-start",
        ]));
        i
    }

    fn dir(&self) -> &str {
        self.project.to_str().unwrap()
    }

    /// (exit code, stdout lines)
    fn check(&self) -> (i32, Vec<String>) {
        let o = ops(&[
            "project",
            "check",
            "--project-dir",
            self.dir(),
            "--web-conf-dir",
            self.web.to_str().unwrap(),
        ]);
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Exactly these drift lines, exit 1.
    #[track_caller]
    fn drifts(&self, want: &[String]) {
        let (code, lines) = self.check();
        let got: Vec<&String> = lines.iter().filter(|l| l.starts_with("drift: ")).collect();
        let want: Vec<String> = want.iter().map(|w| format!("drift: {w}")).collect();
        assert_eq!(got, want.iter().collect::<Vec<_>>(), "{lines:#?}");
        assert_eq!(code, 1, "{lines:#?}");
        assert_eq!(
            lines.last().unwrap(),
            &format!(
                "{} drift(s) in {}: run `boinc-ops project install` again to repair what install owns",
                want.len(),
                self.dir()
            )
        );
    }

    fn edit_config(&self, from: &str, to: &str) {
        let p = self.project.join("config.xml");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{from:?} not in {text}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    }

    fn include(&self, kind: &str) -> PathBuf {
        self.web.join(format!(
            "{}.boinc-rpc.{kind}.conf",
            self.project.file_name().unwrap().to_str().unwrap()
        ))
    }
}

const TASK: &str = "boinc_consent_db_dump -d 2 --dump_spec ../boinc_consent_db_dump_spec.xml";

#[test]
fn intact_install_exits_0() {
    let i = Installed::new("intact");
    let (code, lines) = i.check();
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(
        lines,
        [format!(
            "install intact: {} (binaries, daemon and task lines, stats spec, web server includes)",
            i.dir()
        )]
    );
    // Upstream's own files are upstream's business.
    std::fs::write(
        i.project.join("bin/db_dump"),
        "#!/bin/sh\necho newer upstream\n",
    )
    .unwrap();
    std::fs::write(
        i.project.join("db_dump_spec.xml"),
        "<boinc_db_dump_spec/>\n",
    )
    .unwrap();
    assert_eq!(i.check().0, 0);
}

#[test]
fn binary_replaced() {
    let i = Installed::new("replaced");
    std::fs::write(i.project.join("bin/boinc-rpc"), "#!/bin/sh\necho other\n").unwrap();
    i.drifts(&[
        "bin/boinc-rpc: replaced since install (its sha256 is not the one install recorded)".into(),
    ]);
}

#[test]
fn binary_missing() {
    let i = Installed::new("missing");
    std::fs::remove_file(i.project.join("bin/boinc_consent_db_dump")).unwrap();
    i.drifts(&["bin/boinc_consent_db_dump: missing".into()]);
}

#[test]
fn binary_swapped_for_a_link() {
    let i = Installed::new("linked");
    let p = i.project.join("bin/boinc-ops");
    let copy = i.project.join("bin/copy-of-boinc-ops");
    std::fs::rename(&p, &copy).unwrap();
    std::os::unix::fs::symlink(&copy, &p).unwrap();
    i.drifts(&["bin/boinc-ops: not a regular file (a link or other; install wrote a file)".into()]);
}

#[test]
fn daemon_line_removed() {
    let i = Installed::new("nodaemon");
    i.edit_config(
        "        <daemon>\n            <cmd>boinc-rpc --init-db</cmd>\n        </daemon>\n",
        "",
    );
    i.drifts(&["daemon `boinc-rpc --init-db`: not in config.xml any more".into()]);
}

#[test]
fn daemon_line_changed() {
    let i = Installed::new("daemonchanged");
    i.edit_config(
        "<cmd>boinc-rpc --init-db</cmd>",
        "<cmd>boinc-rpc --listen 127.0.0.1:1</cmd>",
    );
    i.drifts(&[
        "daemon `boinc-rpc --init-db`: changed to `boinc-rpc --listen 127.0.0.1:1`".into(),
        // The include no longer routes where boinc-rpc listens.
        format!(
            "include {}: changed (not what web-config writes for this project; as root: boinc-ops project web-config --project-dir {})",
            i.include("httpd").display(),
            i.dir()
        ),
        format!(
            "include {}: changed (not what web-config writes for this project; as root: boinc-ops project web-config --project-dir {})",
            i.include("nginx").display(),
            i.dir()
        ),
    ]);
}

#[test]
fn daemon_line_disabled() {
    let i = Installed::new("daemonoff");
    i.edit_config(
        "<cmd>boinc-rpc --init-db</cmd>",
        "<cmd>boinc-rpc --init-db</cmd>\n            <disabled>1</disabled>",
    );
    i.drifts(&["daemon `boinc-rpc --init-db`: disabled".into()]);
}

#[test]
fn task_line_back_to_upstreams_db_dump() {
    let i = Installed::new("taskback");
    i.edit_config(
        &format!("<cmd>{TASK}</cmd>"),
        "<cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>",
    );
    i.drifts(&[format!(
        "task `{TASK}`: changed to `db_dump -d 2 --dump_spec ../db_dump_spec.xml` (upstream's db_dump, which exports without asking consent)"
    )]);
}

#[test]
fn task_line_changed() {
    let i = Installed::new("taskchanged");
    i.edit_config(
        &format!("<cmd>{TASK}</cmd>"),
        "<cmd>boinc_consent_db_dump -d 3 --dump_spec ../boinc_consent_db_dump_spec.xml</cmd>",
    );
    i.drifts(&[format!(
        "task `{TASK}`: changed to `boinc_consent_db_dump -d 3 --dump_spec ../boinc_consent_db_dump_spec.xml`"
    )]);
}

#[test]
fn task_line_removed() {
    let i = Installed::new("notask");
    let text = std::fs::read_to_string(i.project.join("config.xml")).unwrap();
    let start = text
        .find(&format!("        <task>\n            <cmd>{TASK}"))
        .unwrap();
    let end = start + text[start..].find("</task>\n").unwrap() + "</task>\n".len();
    i.edit_config(&text[start..end], "");
    i.drifts(&[format!("task `{TASK}`: not in config.xml any more")]);
}

#[test]
fn spec_missing() {
    let i = Installed::new("nospec");
    std::fs::remove_file(i.project.join("boinc_consent_db_dump_spec.xml")).unwrap();
    i.drifts(&["boinc_consent_db_dump_spec.xml: missing (the stats task reads it)".into()]);
}

#[test]
fn spec_not_a_spec() {
    let i = Installed::new("badspec");
    std::fs::write(
        i.project.join("boinc_consent_db_dump_spec.xml"),
        "<boinc_db_dump_spec>\n<final_output_dir>../html/stats</final_output_dir>\n</boinc_db_dump_spec>\n",
    )
    .unwrap();
    i.drifts(&["boinc_consent_db_dump_spec.xml: not a db_dump spec: no <output_dir>".into()]);
}

#[test]
fn spec_without_enumerations() {
    let i = Installed::new("emptyspec");
    std::fs::write(
        i.project.join("boinc_consent_db_dump_spec.xml"),
        "<boinc_db_dump_spec>\n<output_dir>../html/stats_tmp</output_dir>\n<final_output_dir>../html/stats</final_output_dir>\n</boinc_db_dump_spec>\n",
    )
    .unwrap();
    i.drifts(&["boinc_consent_db_dump_spec.xml: has no <enumeration> (the stats task would publish nothing)".into()]);
}

#[test]
fn spec_swapped_for_a_link() {
    let i = Installed::new("linkspec");
    let p = i.project.join("boinc_consent_db_dump_spec.xml");
    std::fs::remove_file(&p).unwrap();
    std::os::unix::fs::symlink("db_dump_spec.xml", &p).unwrap();
    i.drifts(&[
        "boinc_consent_db_dump_spec.xml: a symbolic link (install wrote a file of its own)".into(),
    ]);
}

#[test]
fn include_missing() {
    let i = Installed::new("noinclude");
    std::fs::remove_file(i.include("httpd")).unwrap();
    i.drifts(&[format!(
        "include {}: missing (as root: boinc-ops project web-config --project-dir {})",
        i.include("httpd").display(),
        i.dir()
    )]);
}

#[test]
fn include_changed() {
    let i = Installed::new("includechanged");
    let p = i.include("nginx");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, format!("{text}location / {{ return 200; }}\n")).unwrap();
    i.drifts(&[format!(
        "include {}: changed (not what web-config writes for this project; as root: boinc-ops project web-config --project-dir {})",
        p.display(),
        i.dir()
    )]);
}

#[test]
fn include_writable_by_others() {
    let i = Installed::new("includeloose");
    let p = i.include("httpd");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    i.drifts(&[format!(
        "include {}: writable by others (mode 0666)",
        p.display()
    )]);
}

#[test]
fn include_not_owned_by_root() {
    let i = Installed::new("includeowner");
    let p = i.include("httpd");
    std::os::unix::fs::chown(&p, Some(PROJECT_UID), Some(PROJECT_UID)).unwrap();
    i.drifts(&[format!(
        "include {}: not owned by root (uid {PROJECT_UID}): the web server reads it as root",
        p.display()
    )]);
}

#[test]
fn no_install_record() {
    let i = Installed::new("norecord");
    std::fs::remove_file(i.project.join("boinc-consent-server.install.json")).unwrap();
    i.drifts(&[format!(
        "no install record ({}/boinc-consent-server.install.json): not installed here, or the record was removed",
        i.dir()
    )]);
}

#[test]
fn several_drifts_each_named_and_escaped() {
    let i = Installed::new("several");
    std::fs::remove_file(i.project.join("bin/boinc-rpc")).unwrap();
    // Terminal escapes in config.xml reach the log only escaped.
    i.edit_config(
        "<cmd>boinc-rpc --init-db</cmd>",
        "<cmd>boinc-rpc \u{1b}]0;owned\u{7} --init-db</cmd>",
    );
    i.drifts(&[
        "bin/boinc-rpc: missing".into(),
        "daemon `boinc-rpc --init-db`: changed to `boinc-rpc \\u{1b}]0;owned\\u{7} --init-db`"
            .into(),
    ]);
}

#[test]
fn install_again_repairs_what_it_owns() {
    let i = Installed::new("repair");
    std::fs::write(i.project.join("bin/boinc-rpc"), "#!/bin/sh\necho other\n").unwrap();
    std::fs::remove_file(i.project.join("boinc_consent_db_dump_spec.xml")).unwrap();
    i.edit_config(
        &format!("<cmd>{TASK}</cmd>"),
        "<cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>",
    );
    i.edit_config(
        "        <daemon>\n            <cmd>boinc-rpc --init-db</cmd>\n        </daemon>\n",
        "",
    );
    assert_eq!(i.check().0, 1);
    let from = i.project.parent().unwrap().join("build");
    ok(ops(&[
        "project",
        "install",
        "--project-dir",
        i.dir(),
        "--from",
        from.to_str().unwrap(),
        "--web-conf-dir",
        i.web.to_str().unwrap(),
        "--db-at-start",
    ]));
    let (code, lines) = i.check();
    assert_eq!(code, 0, "{lines:#?}");
    // And uninstall still gives make_project's config.xml back.
    let made = {
        let tmp = tempfile::tempdir().unwrap();
        let settings = DbSettings::from_url("mysql://root@127.0.0.1:3306/unused").unwrap();
        let p = tmp.path().join("repair");
        write_made_project(&p, &settings, "repair", "host");
        std::fs::read_to_string(p.join("config.xml"))
            .unwrap()
            .replace(
                tmp.path().to_str().unwrap(),
                i.project.parent().unwrap().to_str().unwrap(),
            )
    };
    ok(ops(&["project", "uninstall", "--project-dir", i.dir()]));
    assert_eq!(
        std::fs::read_to_string(i.project.join("config.xml")).unwrap(),
        made
    );
}
