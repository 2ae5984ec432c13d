//! `boinc-ops project install|uninstall` on a project folder laid out as
//! make_project lays it out: each step printed, --dry-run changes nothing,
//! config.xml keeps every other byte, install twice changes nothing,
//! uninstall restores config.xml byte for byte and BOINC's own db_dump.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use boinc_db::testing::{write_made_project, TestDb};
use mysql_async::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_boinc-ops");

/// Stand-ins for the three binaries (install copies whatever it is given).
fn fake_binaries(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for b in ["boinc-rpc", "boinc-ops", "db_dump"] {
        std::fs::write(dir.join(b), format!("#!/bin/sh\necho {b} {version}\n")).unwrap();
    }
}

fn ops(args: &[&str]) -> Output {
    let o = Command::new(BIN)
        .args(args)
        .env_remove("BOINC_DATABASE_URL")
        .env_remove("BOINC_PROJECT_DIR")
        .output()
        .unwrap();
    // Plain output: not a terminal, so no escape bytes.
    assert!(!o.stdout.contains(&0x1b) && !o.stderr.contains(&0x1b));
    o
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn backups(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("config.xml.bak-")
        })
        .count()
}

#[tokio::test]
async fn install_dry_run_idempotent_uninstall() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    // Something `db upgrade` has to add back.
    c.query_drop("DROP VIEW latest_consent").await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("proj");
    write_made_project(&project, &db.settings, "myproj", "testhost");
    let from = tmp.path().join("build");
    fake_binaries(&from, "v1");
    let dir = project.to_str().unwrap();
    let from_s = from.to_str().unwrap();
    let web = tmp.path().join("web");
    let web_s = web.to_str().unwrap();
    let original = std::fs::read_to_string(project.join("config.xml")).unwrap();
    let before = snapshot(&project);

    // --dry-run: every step printed, nothing changed.
    let o = ops(&[
        "project",
        "install",
        "--project-dir",
        dir,
        "--from",
        from_s,
        "--web-conf-dir",
        web_s,
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for want in [
        "[1] binaries",
        "would: keep the existing db_dump as",
        "would: copy boinc-rpc",
        "[2] entries in",
        "would: add daemon `boinc-rpc`",
        "would: add <rpc_trusted_proxies>127.0.0.1 ::1</rpc_trusted_proxies>",
        "[3] web server includes",
        "[4] database upgrade",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(snapshot(&project), before, "dry run changed files");
    assert!(!web.exists(), "dry run wrote the includes");
    let view: Option<String> = c
        .exec_first(
            "SELECT table_name FROM information_schema.views WHERE table_schema = ? AND table_name = 'latest_consent'",
            (&db.settings.name,),
        )
        .await
        .unwrap();
    assert!(view.is_none(), "dry run touched the database");

    // Install.
    let o = ops(&[
        "project",
        "install",
        "--project-dir",
        dir,
        "--from",
        from_s,
        "--web-conf-dir",
        web_s,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("copy boinc-rpc") && out.contains("replace db_dump"),
        "{out}"
    );
    for b in ["boinc-rpc", "boinc-ops", "db_dump"] {
        assert_eq!(
            std::fs::read(project.join("bin").join(b)).unwrap(),
            std::fs::read(from.join(b)).unwrap()
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(project.join("bin").join(b))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o755, "{b}");
    }
    assert_eq!(
        std::fs::read_to_string(project.join("bin/db_dump.before-boinc-consent-server")).unwrap(),
        "#!/bin/sh\necho upstream db_dump\n"
    );
    let installed = std::fs::read_to_string(project.join("config.xml")).unwrap();
    // Exactly two insertions, each whole lines indented like their
    // neighbours; every other byte as it was.
    let daemon = "        <daemon>\n            <cmd>boinc-rpc</cmd>\n        </daemon>\n";
    let proxies = "        <rpc_trusted_proxies>127.0.0.1 ::1</rpc_trusted_proxies>\n";
    assert_eq!(
        installed.replacen(daemon, "", 1).replacen(proxies, "", 1),
        original
    );
    assert!(
        installed.contains(&format!("{daemon}    </daemons>")),
        "{installed}"
    );
    assert!(
        installed.contains(&format!("{proxies}    </config>")),
        "{installed}"
    );
    // The db_dump task stays as the admin left it (disabled by make_project).
    assert!(installed.contains("<cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>\n            <period>24 hours</period>\n            <disabled>1</disabled>"));
    assert_eq!(backups(&project), 1);
    let backup = std::fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("config.xml.bak-")
        })
        .unwrap();
    assert_eq!(std::fs::read_to_string(backup).unwrap(), original);
    // The loaded config sees the new key; the project still parses.
    let cfg = boinc_db::ProjectConfig::load(&project.join("config.xml")).unwrap();
    assert_eq!(cfg.str("rpc_trusted_proxies"), Some("127.0.0.1 ::1"));
    // Includes, named after master_url's path, in root's folder.
    let apache = std::fs::read_to_string(web.join("myproj.boinc-rpc.httpd.conf")).unwrap();
    assert!(apache.contains(r#"ProxyPassMatch "^/myproj/(create_account|am_set_info|am_get_info|lookup_account|get_project_config)\.php$" "http://127.0.0.1:8080/$1.php""#), "{apache}");
    assert!(
        apache.contains(r#"<Location "/myproj_ops/consent/">"#),
        "{apache}"
    );
    let nginx = std::fs::read_to_string(web.join("myproj.boinc-rpc.nginx.conf")).unwrap();
    assert!(
        nginx.contains("location = /myproj/get_project_config.php {"),
        "{nginx}"
    );
    assert!(!apache.contains('@') && !nginx.contains("@NAME@"));
    let view: Option<String> = c
        .exec_first(
            "SELECT table_name FROM information_schema.views WHERE table_schema = ? AND table_name = 'latest_consent'",
            (&db.settings.name,),
        )
        .await
        .unwrap();
    assert!(view.is_some(), "db upgrade did not run");

    // Again: nothing to do, nothing changed, no new backup.
    let after_install = snapshot(&project);
    let o = ops(&[
        "project",
        "install",
        "--project-dir",
        dir,
        "--from",
        from_s,
        "--web-conf-dir",
        web_s,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("config.xml: unchanged"), "{out}");
    assert!(out.contains("boinc-rpc: unchanged"), "{out}");
    assert!(out.contains("schema up to date"), "{out}");
    assert!(!out.contains("would") && !out.contains("copy "), "{out}");
    assert_eq!(snapshot(&project), after_install);

    // A new build replaces ours without touching the kept upstream db_dump.
    fake_binaries(&from, "v2");
    let o = ops(&[
        "project",
        "install",
        "--project-dir",
        dir,
        "--from",
        from_s,
        "--web-conf-dir",
        web_s,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read_to_string(project.join("bin/db_dump"))
        .unwrap()
        .contains("v2"));
    assert!(
        std::fs::read_to_string(project.join("bin/db_dump.before-boinc-consent-server"))
            .unwrap()
            .contains("upstream")
    );

    // Uninstall: dry run first, then for real.
    let snap = snapshot(&project);
    let o = ops(&["project", "uninstall", "--project-dir", dir, "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("would: remove daemon `boinc-rpc`"),
        "{}",
        text(&o)
    );
    assert_eq!(snapshot(&project), snap);
    let o = ops(&["project", "uninstall", "--project-dir", dir]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(project.join("config.xml")).unwrap(),
        original
    );
    assert_eq!(
        std::fs::read_to_string(project.join("bin/db_dump")).unwrap(),
        "#!/bin/sh\necho upstream db_dump\n"
    );
    for gone in [
        "bin/boinc-rpc",
        "bin/boinc-ops",
        "bin/db_dump.before-boinc-consent-server",
        "boinc-consent-server.install.json",
    ] {
        assert!(!project.join(gone).exists(), "{gone} left behind");
    }
    // Apart from the config.xml backups, the folder is as make_project left it.
    let mut now = snapshot(&project);
    now.retain(|p, _| !p.to_string_lossy().starts_with("config.xml.bak-"));
    assert_eq!(now, before);
    c.disconnect().await.ok();
}

#[tokio::test]
async fn enable_db_dump_and_ops_daemon_round_trip() {
    let db = TestDb::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("p2");
    let config = write_made_project(&project, &db.settings, "p2", "h");
    // With the ops page configured, its daemon is added too.
    let original = std::fs::read_to_string(&config).unwrap().replace(
        "    </config>",
        "        <ops_user>admin</ops_user>\n        <ops_password_hash>$2y$12$abcdefghijklmnopqrstuu5r7Tn3sFMU8ZBQ3j6DkXAdoQ6AOK0W6</ops_password_hash>\n    </config>",
    );
    std::fs::write(&config, &original).unwrap();
    let from = tmp.path().join("build");
    fake_binaries(&from, "v1");
    let dir = project.to_str().unwrap();
    let o = ops(&[
        "project",
        "install",
        "--project-dir",
        dir,
        "--from",
        from.to_str().unwrap(),
        "--enable-db-dump",
        "--name",
        "p2",
        "--listen",
        "127.0.0.1:9099",
        "--web-conf-dir",
        tmp.path().join("web").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let installed = std::fs::read_to_string(&config).unwrap();
    assert!(
        installed.contains("<cmd>boinc-rpc --listen 127.0.0.1:9099</cmd>"),
        "{installed}"
    );
    assert!(
        installed.contains("<cmd>boinc-ops serve</cmd>"),
        "{installed}"
    );
    assert!(installed.contains("<cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>\n            <period>24 hours</period>\n            <disabled>0</disabled>"), "{installed}");
    let apache = std::fs::read_to_string(tmp.path().join("web/p2.boinc-rpc.httpd.conf")).unwrap();
    assert!(apache.contains("http://127.0.0.1:9099/$1.php"), "{apache}");
    let o = ops(&["project", "uninstall", "--project-dir", dir]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
}

#[test]
fn not_a_project_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ops(&[
        "project",
        "install",
        "--project-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("not a BOINC project folder"),
        "{}",
        text(&o)
    );
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "wrote into it"
    );
}
