//! `boinc-ops project install|uninstall` on a project folder laid out as
//! make_project lays it out: each step printed, --dry-run changes nothing,
//! config.xml keeps every other byte, install twice changes nothing,
//! uninstall restores config.xml byte for byte; upstream's own db_dump and
//! db_dump_spec.xml are never touched.

mod project_common;

use std::os::unix::fs::PermissionsExt;

use boinc_db::testing::{write_made_project, TestDb};
use mysql_async::prelude::*;
use project_common::*;

const UPSTREAM_TASK: &str = "<cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>";
const OUR_TASK: &str =
    "<cmd>boinc_consent_db_dump -d 2 --dump_spec ../boinc_consent_db_dump_spec.xml</cmd>";

async fn has_view(c: &mut mysql_async::Conn, db: &str) -> bool {
    let v: Option<String> = c
        .exec_first(
            "SELECT table_name FROM information_schema.views WHERE table_schema = ? AND table_name = 'latest_consent'",
            (db,),
        )
        .await
        .unwrap();
    v.is_some()
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
    fake_binaries(&from, "v1", 0);
    let dir = project.to_str().unwrap();
    let from_s = from.to_str().unwrap();
    let web = tmp.path().join("web");
    let web_s = web.to_str().unwrap();
    let original = std::fs::read_to_string(project.join("config.xml")).unwrap();
    let upstream_db_dump = std::fs::read(project.join("bin/db_dump")).unwrap();
    let upstream_spec = std::fs::read(project.join("db_dump_spec.xml")).unwrap();
    let before = snapshot(&project);
    let install = [
        "project",
        "install",
        "--project-dir",
        dir,
        "--from",
        from_s,
        "--web-conf-dir",
        web_s,
    ];
    let with = |extra: &[&'static str]| {
        let mut v = install.to_vec();
        v.extend_from_slice(extra);
        v
    };

    // --dry-run: every step printed, nothing changed.
    let out = ok(ops(&with(&["--dry-run"])));
    for want in [
        "[1] binaries",
        "would: copy boinc-rpc",
        "would: copy boinc_consent_db_dump",
        "[2] stats spec",
        "would: copy db_dump_spec.xml to boinc_consent_db_dump_spec.xml",
        "[3] entries in",
        "would: add daemon `boinc-rpc`",
        "would: task `db_dump -d 2 --dump_spec ../db_dump_spec.xml` runs ours: `boinc_consent_db_dump -d 2 --dump_spec ../boinc_consent_db_dump_spec.xml`",
        "would: add <rpc_trusted_proxies>127.0.0.1 ::1</rpc_trusted_proxies>",
        "[4] web server includes",
        "[5] database upgrade",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(snapshot(&project), before, "dry run changed files");
    assert!(!web.exists(), "dry run wrote the includes");
    assert!(
        !has_view(&mut c, &db.settings.name).await,
        "dry run touched the database"
    );

    // Install.
    let out = ok(ops(&install));
    assert!(
        out.contains("copy boinc-rpc") && out.contains("copy boinc_consent_db_dump"),
        "{out}"
    );
    for (built, installed) in [
        ("boinc-rpc", "boinc-rpc"),
        ("boinc-ops", "boinc-ops"),
        ("db_dump", "boinc_consent_db_dump"),
    ] {
        let p = project.join("bin").join(installed);
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(from.join(built)).unwrap()
        );
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{installed}");
    }
    // Upstream's db_dump and spec: untouched; ours is a copy of the spec.
    assert_eq!(
        std::fs::read(project.join("bin/db_dump")).unwrap(),
        upstream_db_dump
    );
    assert_eq!(
        std::fs::read(project.join("db_dump_spec.xml")).unwrap(),
        upstream_spec
    );
    assert_eq!(
        std::fs::read(project.join("boinc_consent_db_dump_spec.xml")).unwrap(),
        upstream_spec
    );
    assert!(!project
        .join("bin/db_dump.before-boinc-consent-server")
        .exists());
    let installed = std::fs::read_to_string(project.join("config.xml")).unwrap();
    // Exactly three edits, each whole lines indented like their
    // neighbours or the task's command alone; every other byte as it was.
    let daemon = "        <daemon>\n            <cmd>boinc-rpc</cmd>\n        </daemon>\n";
    let proxies = "        <rpc_trusted_proxies>127.0.0.1 ::1</rpc_trusted_proxies>\n";
    assert_eq!(
        installed
            .replacen(daemon, "", 1)
            .replacen(proxies, "", 1)
            .replacen(OUR_TASK, UPSTREAM_TASK, 1),
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
    // The stats task runs ours, and stays as the admin left it (disabled by
    // make_project).
    assert!(installed.contains(&format!(
        "{OUR_TASK}\n            <period>24 hours</period>\n            <disabled>1</disabled>"
    )));
    let backups: Vec<_> = std::fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("config.xml.bak-")
        })
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), original);
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
    // The public lookups go to boinc-rpc except the HTML pages' own links.
    for (path, html) in [
        ("show_user", "userid=[0-9]+"),
        ("team_email_list", "teamid=[0-9]+(&plain=[0-9]+)?"),
        ("team_lookup", "team_name=[^&]*"),
    ] {
        let location = format!(
            "<Location \"/myproj/{path}.php\">\n    RewriteEngine On\n    \
             RewriteCond %{{QUERY_STRING}} !^{html}$\n    \
             RewriteRule .* \"http://127.0.0.1:8080/{path}.php\" [P]\n</Location>"
        );
        assert!(apache.contains(&location), "{location}\n{apache}");
        assert!(
            nginx.contains(&format!("{path}\\.php(/[^?]*)?\\?(?!{html}$)")),
            "{nginx}"
        );
    }
    assert!(nginx.contains(
        "rewrite ^/myproj/(show_user|team_email_list|team_lookup)\\.php(/.*)?$ \
         /myproj_boinc_rpc_lookup/$1.php last;"
    ));
    assert!(nginx.contains(
        "location ^~ /myproj_boinc_rpc_lookup/ {\n    internal;\n    proxy_pass http://127.0.0.1:8080/;"
    ));
    // boinc-rpc's /health and /metrics stay on its own address (issue 21):
    // no directive of either include names them.
    for text in [&apache, &nginx] {
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            assert!(
                !line.contains("health") && !line.contains("metrics"),
                "{line}"
            );
        }
    }
    assert!(
        has_view(&mut c, &db.settings.name).await,
        "db upgrade did not run"
    );
    // And check says it is intact.
    let out = ok(ops(&[
        "project",
        "check",
        "--project-dir",
        dir,
        "--web-conf-dir",
        web_s,
    ]));
    assert!(out.starts_with("install intact:"), "{out}");

    // Again: nothing to do, nothing changed, no new backup.
    let after_install = snapshot(&project);
    let out = ok(ops(&install));
    assert!(out.contains("config.xml: unchanged"), "{out}");
    assert!(out.contains("boinc-rpc: unchanged"), "{out}");
    assert!(
        out.contains("boinc_consent_db_dump_spec.xml: kept as it is"),
        "{out}"
    );
    assert!(out.contains("schema up to date"), "{out}");
    assert!(!out.contains("would") && !out.contains("copy "), "{out}");
    assert_eq!(snapshot(&project), after_install);

    // A new build replaces ours; upstream's files stay as they are.
    fake_binaries(&from, "v2", 0);
    ok(ops(&install));
    assert!(
        std::fs::read_to_string(project.join("bin/boinc_consent_db_dump"))
            .unwrap()
            .contains("v2")
    );
    assert_eq!(
        std::fs::read(project.join("bin/db_dump")).unwrap(),
        upstream_db_dump
    );

    // Uninstall: dry run first, then for real.
    let snap = snapshot(&project);
    let out = ok(ops(&[
        "project",
        "uninstall",
        "--project-dir",
        dir,
        "--dry-run",
    ]));
    assert!(out.contains("would: remove daemon `boinc-rpc`"), "{out}");
    assert_eq!(snapshot(&project), snap);
    ok(ops(&["project", "uninstall", "--project-dir", dir]));
    assert_eq!(
        std::fs::read_to_string(project.join("config.xml")).unwrap(),
        original
    );
    for gone in INSTALLED {
        assert!(!project.join(gone).exists(), "{gone} left behind");
    }
    // Apart from the config.xml backups, the folder is as make_project left it.
    assert_eq!(without_backups(snapshot(&project)), before);
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
    fake_binaries(&from, "v1", 0);
    let dir = project.to_str().unwrap();
    let web = tmp.path().join("web");
    ok(ops(&[
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
        web.to_str().unwrap(),
    ]));
    let installed = std::fs::read_to_string(&config).unwrap();
    assert!(
        installed.contains("<cmd>boinc-rpc --listen 127.0.0.1:9099</cmd>"),
        "{installed}"
    );
    assert!(
        installed.contains("<cmd>boinc-ops serve</cmd>"),
        "{installed}"
    );
    assert!(
        installed.contains(&format!(
            "{OUR_TASK}\n            <period>24 hours</period>\n            <disabled>0</disabled>"
        )),
        "{installed}"
    );
    let apache = std::fs::read_to_string(web.join("p2.boinc-rpc.httpd.conf")).unwrap();
    assert!(apache.contains("http://127.0.0.1:9099/$1.php"), "{apache}");
    let out = ok(ops(&[
        "project",
        "check",
        "--project-dir",
        dir,
        "--web-conf-dir",
        web.to_str().unwrap(),
    ]));
    assert!(out.starts_with("install intact:"), "{out}");
    ok(ops(&["project", "uninstall", "--project-dir", dir]));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
}

#[test]
fn a_file_install_never_wrote_is_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("planted");
    let settings = boinc_db::DbSettings::from_url("mysql://root@127.0.0.1:3306/unused").unwrap();
    write_made_project(&project, &settings, "planted", "h");
    let from = tmp.path().join("build");
    fake_binaries(&from, "v1", 0);
    for planted in ["boinc_consent_db_dump", "boinc-ops"] {
        let p = project.join("bin").join(planted);
        std::fs::write(&p, "#!/bin/sh\necho somebody else's\n").unwrap();
        let before = snapshot(&project);
        let o = ops(&[
            "project",
            "install",
            "--project-dir",
            project.to_str().unwrap(),
            "--from",
            from.to_str().unwrap(),
            "--web-conf-dir",
            tmp.path().join("web").to_str().unwrap(),
            "--db-at-start",
        ]);
        assert!(!o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!(
                "{}: is there and is not a file install recorded",
                p.display()
            )) || text(&o).contains(&format!(
                "{} is there and is not a file install recorded",
                p.display()
            )),
            "{}",
            text(&o)
        );
        assert_eq!(snapshot(&project), before, "{planted}: changed something");
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn not_a_project_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["install", "uninstall", "check"] {
        let o = ops(&[
            "project",
            sub,
            "--project-dir",
            tmp.path().to_str().unwrap(),
        ]);
        assert!(!o.status.success(), "{sub}");
        assert!(
            text(&o).contains("not a BOINC project folder"),
            "{sub}: {}",
            text(&o)
        );
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "{sub} wrote into it"
        );
    }
}
