//! Upstream's own upgrade (`tools/upgrade`: install_boinc_files copies
//! every upstream program into PROJECT/bin, db_dump included, and
//! sched/db_dump_spec.xml over PROJECT/db_dump_spec.xml) leaves the stats
//! task running ours; installs made by the earlier layout (our db_dump in
//! place of upstream's, version-1 record) move to the current one when
//! install runs again; uninstall of either stays exact.

mod project_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use boinc_db::testing::{write_made_project, TestDb};
use boinc_db::DbSettings;
use project_common::*;

const OUR_TASK: &str = "boinc_consent_db_dump -d 2 --dump_spec ../boinc_consent_db_dump_spec.xml";

/// What install_boinc_files does to a project's files (upstream's
/// setup_project.py): every program of its lists copied into bin/ over
/// whatever is there, start linked as stop and status, and its spec over
/// the project's.
fn upstream_upgrade(project: &Path, version: &str) {
    for prog in [
        "adjust_user_priority",
        "antique_file_deleter",
        "census",
        "db_dump",
        "db_purge",
        "delete_file",
        "feeder",
        "file_deleter",
        "make_work",
        "show_shmem",
        "transitioner",
        "trickle_credit",
        "update_stats",
        "wu_check",
        "appmgr",
        "create_work",
        "run_in_ops",
        "xadd",
        "update_versions",
        "start",
    ] {
        let p = project.join("bin").join(prog);
        // shutil.copy: writes through whatever the name is, keeps no backup.
        std::fs::write(&p, format!("#!/bin/sh\necho upstream {prog} {version}\n")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    for link in ["stop", "status"] {
        let p = project.join("bin").join(link);
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(project.join("bin/start"), &p).unwrap();
    }
    std::fs::write(
        project.join("db_dump_spec.xml"),
        format!(
            "<boinc_db_dump_spec>\n    <!-- upstream {version} -->\n    <output_dir>../html/stats_tmp</output_dir>\n    \
             <final_output_dir>../html/stats</final_output_dir>\n    <enumeration>\n        <table>user</table>\n        \
             <filename>user</filename>\n        <output>\n            <compression>gzip</compression>\n        </output>\n    \
             </enumeration>\n</boinc_db_dump_spec>\n"
        ),
    )
    .unwrap();
}

/// Run the stats task's command as bin/start runs a task: cwd tmp_HOST,
/// PROJECT/bin first on PATH. Returns its output.
fn run_stats_task(project: &Path, host: &str) -> String {
    let config = std::fs::read_to_string(project.join("config.xml")).unwrap();
    let task = stats_task(&config).expect("a stats task");
    assert!(!task_disabled(&task), "{task}");
    let cmd = task
        .split("<cmd>")
        .nth(1)
        .unwrap()
        .split("</cmd>")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(project.join(format!("tmp_{host}")))
        .env(
            "PATH",
            format!(
                "{}:{}",
                project.join("bin").display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn upstream_upgrade_leaves_the_stats_task_running_ours() {
    let db = TestDb::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("upg");
    write_made_project(&project, &db.settings, "upg", "host");
    let from = tmp.path().join("build");
    fake_binaries(&from, "ours", 0);
    let web = tmp.path().join("web");
    let dir = project.to_str().unwrap();
    let original = std::fs::read_to_string(project.join("config.xml")).unwrap();
    let spec_at_install = std::fs::read(project.join("db_dump_spec.xml")).unwrap();
    ok(ops(&[
        "project",
        "install",
        "--project-dir",
        dir,
        "--from",
        from.to_str().unwrap(),
        "--web-conf-dir",
        web.to_str().unwrap(),
        "--enable-db-dump",
    ]));
    let installed = std::fs::read_to_string(project.join("config.xml")).unwrap();
    assert!(run_stats_task(&project, "host").contains("db_dump ours"));

    upstream_upgrade(&project, "1.6.2");

    // Nothing of ours was touched: config.xml, binaries, our spec.
    assert_eq!(
        std::fs::read_to_string(project.join("config.xml")).unwrap(),
        installed
    );
    assert!(stats_task(&installed)
        .unwrap()
        .contains(&format!("<cmd>{OUR_TASK}</cmd>")));
    assert_eq!(
        std::fs::read(project.join("bin/boinc_consent_db_dump")).unwrap(),
        std::fs::read(from.join("db_dump")).unwrap()
    );
    assert_eq!(
        std::fs::read(project.join("boinc_consent_db_dump_spec.xml")).unwrap(),
        spec_at_install
    );
    // The daily task runs ours, not the upstream db_dump just copied in.
    let ran = run_stats_task(&project, "host");
    assert!(
        ran.contains("db_dump ours") && !ran.contains("upstream"),
        "{ran}"
    );
    let out = ok(ops(&[
        "project",
        "check",
        "--project-dir",
        dir,
        "--web-conf-dir",
        web.to_str().unwrap(),
    ]));
    assert!(out.starts_with("install intact:"), "{out}");

    // Uninstall: exact, and upstream's new db_dump and spec stay.
    let new_db_dump = std::fs::read(project.join("bin/db_dump")).unwrap();
    let new_spec = std::fs::read(project.join("db_dump_spec.xml")).unwrap();
    ok(ops(&["project", "uninstall", "--project-dir", dir]));
    assert_eq!(
        std::fs::read_to_string(project.join("config.xml")).unwrap(),
        original
    );
    assert_eq!(
        std::fs::read(project.join("bin/db_dump")).unwrap(),
        new_db_dump
    );
    assert_eq!(
        std::fs::read(project.join("db_dump_spec.xml")).unwrap(),
        new_spec
    );
    for gone in INSTALLED {
        assert!(!project.join(gone).exists(), "{gone} left behind");
    }
}

// ---------------------------------------------------------------------
// Installs made by the earlier layout.

/// How a project looked before the earlier version's install ran.
#[derive(Clone, Copy, Debug)]
enum Old {
    /// make_project's disabled db_dump task.
    Plain,
    /// Installed with --enable-db-dump.
    Enabled,
    /// Upstream's upgrade has since put a newer db_dump over ours.
    UpstreamSince,
    /// There was no db_dump task: install added one.
    NoTask,
}

struct OldInstall {
    _tmp: tempfile::TempDir,
    project: PathBuf,
    /// config.xml before the earlier install.
    original: String,
    /// bin/db_dump before the earlier install.
    upstream_db_dump: Vec<u8>,
    web: PathBuf,
}

const OLD_TASK_LINES: &str = "        <task>\n            <cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>\n            <period>24 hours</period>\n            <disabled>1</disabled>\n            <output>db_dump.out</output>\n        </task>\n";

/// The project as the earlier version's install left it (its output
/// checked against that binary): our three programs in bin/ with
/// upstream's db_dump kept as db_dump.before-boinc-consent-server, the
/// daemon and trusted-proxies lines, the includes in the project folder,
/// and a record without a version.
fn old_install(kind: Old) -> OldInstall {
    let tmp = tempfile::tempdir().unwrap();
    open_to_all(tmp.path());
    let project = tmp.path().join("old");
    let settings = DbSettings::from_url("mysql://root@127.0.0.1:3306/unused").unwrap();
    write_made_project(&project, &settings, "old", "host");
    let cfg = project.join("config.xml");
    let mut original = std::fs::read_to_string(&cfg).unwrap();
    if matches!(kind, Old::NoTask) {
        original = original.replace(OLD_TASK_LINES, "");
        std::fs::write(&cfg, &original).unwrap();
    }
    let upstream_db_dump = std::fs::read(project.join("bin/db_dump")).unwrap();
    let from = tmp.path().join("old-build");
    fake_binaries(&from, "old", 0);
    let bin = project.join("bin");
    std::fs::rename(
        bin.join("db_dump"),
        bin.join("db_dump.before-boinc-consent-server"),
    )
    .unwrap();
    let mut binaries = serde_json::Map::new();
    for b in ["boinc-rpc", "boinc-ops", "db_dump"] {
        std::fs::copy(from.join(b), bin.join(b)).unwrap();
        binaries.insert(
            b.into(),
            serde_json::json!({
                "sha256": sha256_hex(&std::fs::read(from.join(b)).unwrap()),
                "backup": if b == "db_dump" { Some("db_dump.before-boinc-consent-server") } else { None },
            }),
        );
    }
    let mut text = original
        .replace(
            "    </config>",
            "        <rpc_trusted_proxies>127.0.0.1 ::1</rpc_trusted_proxies>\n    </config>",
        )
        .replace(
            "    </daemons>",
            "        <daemon>\n            <cmd>boinc-rpc</cmd>\n        </daemon>\n    </daemons>",
        );
    match kind {
        Old::Enabled => {
            text = text.replace(
                "../db_dump_spec.xml</cmd>\n            <period>24 hours</period>\n            <disabled>1</disabled>",
                "../db_dump_spec.xml</cmd>\n            <period>24 hours</period>\n            <disabled>0</disabled>",
            )
        }
        Old::NoTask => {
            text = text.replace(
                "    </tasks>",
                "        <task>\n            <cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>\n            <period>24 hours</period>\n            <output>db_dump.out</output>\n            <disabled>1</disabled>\n        </task>\n    </tasks>",
            )
        }
        _ => {}
    }
    std::fs::write(&cfg, text).unwrap();
    for f in ["old.boinc-rpc.httpd.conf", "old.boinc-rpc.nginx.conf"] {
        std::fs::write(project.join(f), "# include of the earlier version\n").unwrap();
    }
    let record = serde_json::json!({
        "binaries": binaries,
        "sections": {},
        "db_dump_disabled_was": if matches!(kind, Old::Enabled) { Some("1") } else { None },
        "db_dump_task_added": matches!(kind, Old::NoTask),
        "trusted_proxies_added": "127.0.0.1 ::1",
        "files": ["old.boinc-rpc.httpd.conf", "old.boinc-rpc.nginx.conf"],
    });
    std::fs::write(
        project.join("boinc-consent-server.install.json"),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();
    if matches!(kind, Old::UpstreamSince) {
        upstream_upgrade(&project, "newer");
    }
    let web = tmp.path().join("web");
    OldInstall {
        _tmp: tmp,
        project,
        original,
        upstream_db_dump,
        web,
    }
}

fn check_lines(o: &OldInstall) -> (i32, Vec<String>) {
    let out = ops(&[
        "project",
        "check",
        "--project-dir",
        o.project.to_str().unwrap(),
        "--web-conf-dir",
        o.web.to_str().unwrap(),
    ]);
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("drift: "))
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn old_layout_installs_move_to_the_new_layout() {
    for kind in [Old::Plain, Old::Enabled, Old::UpstreamSince, Old::NoTask] {
        let o = old_install(kind);
        let dir = o.project.to_str().unwrap();
        let bin = o.project.join("bin");
        let newer_upstream = std::fs::read(bin.join("db_dump")).unwrap();
        let was_disabled = task_disabled(
            &stats_task(&std::fs::read_to_string(o.project.join("config.xml")).unwrap()).unwrap(),
        );
        // Before: check says the layout is the earlier one.
        let (code, drift) = check_lines(&o);
        assert_eq!(code, 1);
        assert!(
            drift
                .iter()
                .any(|d| d.contains("installed by an earlier version")),
            "{kind:?}: {drift:#?}"
        );
        let from = o.project.parent().unwrap().join("build");
        fake_binaries(&from, "new", 0);
        let out = ok(ops(&[
            "project",
            "install",
            "--project-dir",
            dir,
            "--from",
            from.to_str().unwrap(),
            "--web-conf-dir",
            o.web.to_str().unwrap(),
            "--db-at-start",
        ]));
        let config = std::fs::read_to_string(o.project.join("config.xml")).unwrap();
        let task = stats_task(&config).unwrap();
        assert!(
            task.contains(&format!("<cmd>{OUR_TASK}</cmd>")),
            "{kind:?}: {task}"
        );
        assert_eq!(task_disabled(&task), was_disabled, "{kind:?}: {task}");
        assert_eq!(
            config.matches("<cmd>boinc-rpc</cmd>").count(),
            1,
            "{config}"
        );
        // Upstream's db_dump is upstream's again: the one kept aside, or
        // the newer one upstream's upgrade put there meanwhile.
        match kind {
            Old::UpstreamSince => {
                assert_eq!(std::fs::read(bin.join("db_dump")).unwrap(), newer_upstream);
                assert!(out.contains("left for you to delete"), "{out}");
            }
            _ => {
                assert_eq!(
                    std::fs::read(bin.join("db_dump")).unwrap(),
                    o.upstream_db_dump
                );
                assert!(
                    !bin.join("db_dump.before-boinc-consent-server").exists(),
                    "{kind:?}"
                );
            }
        }
        assert_eq!(
            std::fs::read(bin.join("boinc_consent_db_dump")).unwrap(),
            std::fs::read(from.join("db_dump")).unwrap()
        );
        if !was_disabled {
            let ran = run_stats_task(&o.project, "host");
            assert!(ran.contains("db_dump new"), "{kind:?}: {ran}");
        }
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(o.project.join("boinc-consent-server.install.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(record["version"], 2, "{record}");
        assert!(record["binaries"].get("db_dump").is_none(), "{record}");
        // The includes the earlier version put into the project folder are
        // the one drift left (root has to relink them first).
        let (code, drift) = check_lines(&o);
        let expect: Vec<String> = ["httpd", "nginx"]
            .iter()
            .map(|k| {
                format!(
                    "drift: {}/old.boinc-rpc.{k}.conf: include written into the project folder by an earlier install; its user can change it: link the web server to {}/old.boinc-rpc.{k}.conf instead, then delete it",
                    dir,
                    o.web.display()
                )
            })
            .collect();
        assert_eq!((code, drift), (1, expect), "{kind:?}");
        for k in ["httpd", "nginx"] {
            std::fs::remove_file(o.project.join(format!("old.boinc-rpc.{k}.conf"))).unwrap();
        }
        assert_eq!(check_lines(&o), (0, vec![]), "{kind:?}");

        // And uninstall gives back the project as it was before either.
        ok(ops(&["project", "uninstall", "--project-dir", dir]));
        assert_eq!(
            std::fs::read_to_string(o.project.join("config.xml")).unwrap(),
            o.original,
            "{kind:?}"
        );
        let expected_db_dump = match kind {
            Old::UpstreamSince => &newer_upstream,
            _ => &o.upstream_db_dump,
        };
        assert_eq!(
            &std::fs::read(bin.join("db_dump")).unwrap(),
            expected_db_dump
        );
        for gone in INSTALLED {
            assert!(
                !o.project.join(gone).exists(),
                "{kind:?}: {gone} left behind"
            );
        }
    }
}

#[test]
fn old_layout_uninstall_is_exact() {
    for kind in [Old::Plain, Old::Enabled, Old::UpstreamSince, Old::NoTask] {
        let o = old_install(kind);
        let dir = o.project.to_str().unwrap();
        let bin = o.project.join("bin");
        let newer_upstream = std::fs::read(bin.join("db_dump")).unwrap();
        let out = ok(ops(&["project", "uninstall", "--project-dir", dir]));
        assert_eq!(
            std::fs::read_to_string(o.project.join("config.xml")).unwrap(),
            o.original,
            "{kind:?}:\n{out}"
        );
        match kind {
            // Upstream's newer db_dump stays; the older one kept aside is
            // left for the admin.
            Old::UpstreamSince => {
                assert_eq!(std::fs::read(bin.join("db_dump")).unwrap(), newer_upstream);
                assert!(bin.join("db_dump.before-boinc-consent-server").exists());
                assert!(
                    out.contains("db_dump: changed since install; left in place"),
                    "{out}"
                );
            }
            _ => {
                assert_eq!(
                    std::fs::read(bin.join("db_dump")).unwrap(),
                    o.upstream_db_dump
                );
                assert!(!bin.join("db_dump.before-boinc-consent-server").exists());
            }
        }
        for gone in [
            "bin/boinc-rpc",
            "bin/boinc-ops",
            "old.boinc-rpc.httpd.conf",
            "old.boinc-rpc.nginx.conf",
            "boinc-consent-server.install.json",
        ] {
            assert!(
                !o.project.join(gone).exists(),
                "{kind:?}: {gone} left behind"
            );
        }
    }
}
