//! `boinc-ops project install|uninstall` run as root in a project folder
//! its (non-root) user can write: everything in that folder is the user's
//! to plant, swap or forge, and none of it may make root touch a file
//! outside the project (SPEC section 6, last bullet). Also the config.xml
//! details root gets wrong silently: `<disabled/>`, CRLF files, lines
//! install did not add, a symlinked config.xml.

mod project_common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use boinc_db::testing::{write_made_project, TestDb};
use project_common::*;

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    project: PathBuf,
    from: PathBuf,
    /// Files outside the project that root must never touch.
    victims: PathBuf,
    /// Where root's copies of the web server includes go.
    web: PathBuf,
}

impl Setup {
    fn new(db: &TestDb, name: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        open_to_all(&root);
        let project = root.join(name);
        write_made_project(&project, &db.settings, name, "host");
        let from = root.join("build");
        fake_binaries(&from, "v1", 0);
        let victims = root.join("victims");
        std::fs::create_dir(&victims).unwrap();
        let web = root.join("etc-boinc-consent-server");
        Setup {
            _tmp: tmp,
            root,
            project,
            from,
            victims,
            web,
        }
    }

    fn dir(&self) -> &str {
        self.project.to_str().unwrap()
    }

    fn install_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "project",
            "install",
            "--project-dir",
            self.dir(),
            "--from",
            self.from.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        v
    }

    fn config(&self) -> String {
        std::fs::read_to_string(self.project.join("config.xml")).unwrap()
    }

    fn set_config(&self, text: &str) {
        std::fs::write(self.project.join("config.xml"), text).unwrap();
    }

    /// A root-only secret outside the project.
    fn victim(&self, name: &str, mode: u32) -> PathBuf {
        let p = self.victims.join(name);
        std::fs::write(&p, format!("secret {name}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

fn victims_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------
// Backups through planted links.

#[tokio::test]
async fn config_backup_never_follows_a_planted_link() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "bak");
    let existing = s.victim("existing", 0o600);
    let before = fingerprint(&existing);
    let original = s.config();
    // Every name install may pick for its backups in the next two minutes:
    // the plain stamp is a dangling link (root would create the target),
    // the numbered ones point at an existing root file (root would
    // overwrite it with config.xml, db_passwd included).
    for stamp in backup_stamps(120) {
        let base = format!("config.xml.bak-{stamp}");
        std::os::unix::fs::symlink(
            s.victims.join(format!("created-{stamp}")),
            s.project.join(&base),
        )
        .unwrap();
        for i in 1..4 {
            std::os::unix::fs::symlink(&existing, s.project.join(format!("{base}.{i}"))).unwrap();
        }
    }
    ok(ops(&s.install_args(&[
        "--web-conf-dir",
        s.web.to_str().unwrap(),
    ])));
    ok(ops(&["project", "uninstall", "--project-dir", s.dir()]));
    assert_eq!(
        victims_listing(&s.victims),
        ["existing"],
        "root created a file through a link"
    );
    assert_eq!(fingerprint(&existing), before, "root wrote through a link");
    // The backups exist all the same, as regular files under free names,
    // with config.xml's bytes and permissions.
    let backups: Vec<PathBuf> = std::fs::read_dir(&s.project)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("config.xml.bak-")
                && !std::fs::symlink_metadata(p)
                    .unwrap()
                    .file_type()
                    .is_symlink()
        })
        .collect();
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert!(backups
        .iter()
        .any(|b| std::fs::read_to_string(b).unwrap() == original));
    assert_eq!(s.config(), original);
}

// ---------------------------------------------------------------------
// Temporary files swapped for links while root writes them.

/// Until `stop`: each new dot-file in `dirs` (install's temporary files)
/// is moved aside and replaced by a link to one of `targets`, once per
/// name it stands for (`.config.xml.tmp-123` stands for `.config.xml`), so
/// every file install writes gets raced in turn. Returns the names raced.
fn racer(
    dirs: Vec<PathBuf>,
    targets: Vec<PathBuf>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut raced: Vec<String> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            for d in &dirs {
                let Ok(rd) = std::fs::read_dir(d) else {
                    continue;
                };
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !name.starts_with('.') || name.ends_with(".moved") {
                        continue;
                    }
                    let stands_for = name.split(".tmp-").next().unwrap_or(&name).to_owned();
                    if raced.contains(&stands_for) {
                        continue;
                    }
                    let p = e.path();
                    let is_link = std::fs::symlink_metadata(&p)
                        .map(|m| m.file_type().is_symlink())
                        .unwrap_or(true);
                    if is_link {
                        continue;
                    }
                    if std::fs::rename(&p, d.join(format!("{name}.moved"))).is_ok() {
                        let target = &targets[raced.len() % targets.len()];
                        let _ = std::os::unix::fs::symlink(target, &p);
                        raced.push(stands_for);
                    }
                }
            }
        }
        raced
    })
}

/// What the racer left where install's files go: links, moved-aside
/// temporaries. The admin clears them before trying again.
fn clear_racer_leftovers(dirs: &[PathBuf]) {
    for d in dirs {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink()
                || name.ends_with(".moved")
            {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn temp_files_swapped_for_links_change_nothing_outside() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "race");
    // The project belongs to its user; install keeps config.xml theirs, so
    // a chown by path would hand the link's target to that user.
    chown_tree(&s.project, PROJECT_UID);
    let secret = s.victim("secret", 0o600);
    let other = s.victim("other", 0o640);
    let before = (fingerprint(&secret), fingerprint(&other));
    let stop = Arc::new(AtomicBool::new(false));
    let dirs = vec![s.project.clone(), s.project.join("bin")];
    let handle = racer(
        dirs.clone(),
        vec![secret.clone(), other.clone()],
        stop.clone(),
    );
    // Big binaries keep each write open long enough to be raced; each
    // round the racer wins against one more of install's files, until
    // install gets through.
    let mut done = false;
    let mut errors = Vec::new();
    for round in 0..16 {
        fake_binaries(&s.from, &format!("v{round}"), 8 << 20);
        let o = ops(&s.install_args(&["--web-conf-dir", s.web.to_str().unwrap()]));
        assert_eq!(
            (fingerprint(&secret), fingerprint(&other)),
            before,
            "round {round}: a file outside the project changed mode, owner or bytes:\n{}",
            text(&o)
        );
        if o.status.success() {
            done = true;
            break;
        }
        // Losing the race is a clear error, never a change outside.
        let t = text(&o);
        assert!(t.contains("error:"), "round {round}: {t}");
        errors.push(
            t.lines()
                .filter(|l| l.starts_with("error:"))
                .collect::<String>(),
        );
        // The racer's link may now stand where config.xml was: the admin
        // puts the backup back.
        let cfg = s.project.join("config.xml");
        if std::fs::symlink_metadata(&cfg).is_ok_and(|m| m.file_type().is_symlink()) {
            let mut backups: Vec<PathBuf> = std::fs::read_dir(&s.project)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains("config.xml.bak-"))
                .filter(|p| std::fs::symlink_metadata(p).unwrap().is_file())
                .collect();
            backups.sort();
            std::fs::remove_file(&cfg).unwrap();
            std::fs::copy(backups.last().unwrap(), &cfg).unwrap();
        }
        clear_racer_leftovers(&dirs);
        // Without its record, install won't replace what it finds under
        // its names (it says so): the admin moves them away.
        if !s.project.join("boinc-consent-server.install.json").exists() {
            for b in ["boinc-rpc", "boinc-ops", "boinc_consent_db_dump"] {
                let _ = std::fs::remove_file(s.project.join("bin").join(b));
            }
        }
    }
    // Uninstall's writes (config.xml, its backup) raced as well.
    let o = ops(&["project", "uninstall", "--project-dir", s.dir()]);
    assert_eq!(
        (fingerprint(&secret), fingerprint(&other)),
        before,
        "{}",
        text(&o)
    );
    stop.store(true, Ordering::Relaxed);
    let raced = handle.join().unwrap();
    assert!(
        done,
        "install never got through; raced {raced:?}: {errors:#?}"
    );
    for must in [
        ".boinc-rpc",
        ".config.xml",
        ".boinc-consent-server.install.json",
    ] {
        assert!(
            raced.iter().any(|r| r == must),
            "{must} never raced: {raced:?}"
        );
    }
    assert_eq!(victims_listing(&s.victims), ["other", "secret"]);
}

// ---------------------------------------------------------------------
// A forged install record.

#[tokio::test]
async fn uninstall_treats_the_install_record_as_untrusted() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "forged");
    ok(ops(&s.install_args(&[
        "--web-conf-dir",
        s.web.to_str().unwrap(),
    ])));
    let depth = s.project.join("bin").components().count();
    let up = "../".repeat(depth);
    let a = s.victim("a", 0o600);
    let b = s.victim("b", 0o600);
    let c = s.victim("c", 0o600);
    let d = s.victim("d", 0o600);
    let e = s.victim("e", 0o600);
    let keep: Vec<(PathBuf, _)> = [&a, &b, &c, &d, &e]
        .iter()
        .map(|p| ((*p).clone(), fingerprint(p)))
        .collect();
    let rel = |p: &Path| format!("{up}{}", p.strip_prefix("/").unwrap().display());
    let start = s.project.join("bin/start");
    std::fs::write(&start, "#!/bin/sh\necho upstream start\n").unwrap();
    // (config.xml itself is edited: install's daemon line goes.)
    let project_files = ["bin/start", "db_dump_spec.xml"];
    let project_before: Vec<_> = project_files
        .iter()
        .map(|f| std::fs::read(s.project.join(f)).unwrap())
        .collect();
    let sha = |p: &Path| sha256_hex(&std::fs::read(p).unwrap());
    // Every way a record could name something that is not ours: paths
    // up and out of bin/, absolute paths, another program's name, files
    // of the project itself.
    let record = serde_json::json!({
        "binaries": {
            rel(&a): {"sha256": sha(&a), "backup": null},
            b.to_str().unwrap(): {"sha256": sha(&b), "backup": null},
            "start": {"sha256": sha(&start), "backup": null},
            "boinc-rpc": {"sha256": sha(&s.project.join("bin/boinc-rpc")), "backup": rel(&c)},
            "boinc-ops": {"sha256": "0".repeat(64), "backup": "../config.xml"},
        },
        "files": [
            format!("../{}", rel(&d)),
            e.to_str().unwrap(),
            "config.xml",
            "db_dump_spec.xml",
            "bin",
        ],
        "sections": {"daemons": "<daemons><daemon><cmd>evil</cmd></daemon></daemons>"},
    });
    std::fs::write(
        s.project.join("boinc-consent-server.install.json"),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();
    let o = ops(&["project", "uninstall", "--project-dir", s.dir()]);
    let out = text(&o);
    for (p, fp) in &keep {
        assert!(p.exists(), "{} removed or moved:\n{out}", p.display());
        assert_eq!(&fingerprint(p), fp, "{} changed:\n{out}", p.display());
    }
    for (f, bytes) in project_files.iter().zip(&project_before) {
        assert_eq!(
            std::fs::read(s.project.join(f)).ok().as_ref(),
            Some(bytes),
            "{f} removed or changed:\n{out}"
        );
    }
    boinc_db::ProjectConfig::load(&s.project.join("config.xml")).unwrap();
    assert!(!s.config().contains("evil"), "{}", s.config());
    assert!(
        out.contains("ignored"),
        "says nothing about the forged entries:\n{out}"
    );
}

// ---------------------------------------------------------------------
// <disabled> as BOINC's bin/start reads it.

#[tokio::test]
async fn every_spelling_of_disabled_is_read_as_start_reads_it() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "dis");
    let made = s.config();
    let line = "            <disabled>1</disabled>\n            <output>db_dump.out</output>";
    assert!(made.contains(line));
    let disabled = [
        "<disabled/>",
        "<disabled />",
        "<disabled></disabled>",
        "<disabled>1</disabled>",
        "<disabled> 1 </disabled>",
        "<disabled>yes</disabled>",
        "<disabled>\n                1\n            </disabled>",
        "<disabled> 0 </disabled>",
    ];
    let enabled = ["<disabled>0</disabled>", ""];
    for (spelling, is_disabled) in disabled
        .iter()
        .map(|d| (*d, true))
        .chain(enabled.iter().map(|d| (*d, false)))
    {
        let original = made.replace(
            line,
            &format!("            {spelling}\n            <output>db_dump.out</output>"),
        );
        s.set_config(&original);
        let out =
            ok(ops(&s.install_args(&[
                "--web-conf-dir",
                s.web.to_str().unwrap(),
            ])));
        let task = stats_task(&s.config()).expect("stats task");
        assert_eq!(task_disabled(&task), is_disabled, "{spelling:?}: {task}");
        // Install says what bin/start will do with it.
        let says_disabled =
            out.contains("disabled; --enable-db-dump enables it") || out.contains("stays disabled");
        assert_eq!(
            says_disabled, is_disabled,
            "{spelling:?}: install misreports the task:\n{out}"
        );
        assert!(
            is_disabled || out.contains("enabled"),
            "{spelling:?}:\n{out}"
        );
        // --enable-db-dump enables it, whatever the spelling.
        ok(ops(&s.install_args(&[
            "--web-conf-dir",
            s.web.to_str().unwrap(),
            "--enable-db-dump",
        ])));
        let task = stats_task(&s.config()).expect("stats task");
        assert!(
            !task_disabled(&task),
            "{spelling:?}: still disabled: {task}"
        );
        ok(ops(&["project", "uninstall", "--project-dir", s.dir()]));
        assert_eq!(s.config(), original, "{spelling:?}: not restored");
    }
}

// ---------------------------------------------------------------------
// Byte for byte, whatever the line endings and layout.

#[tokio::test]
async fn uninstall_gives_config_xml_back_byte_for_byte() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "bytes");
    let made = s.config();
    let ops_keys = "        <ops_user>admin</ops_user>\n        <ops_password_hash>$2y$12$abcdefghijklmnopqrstuu5r7Tn3sFMU8ZBQ3j6DkXAdoQ6AOK0W6</ops_password_hash>\n    </config>";
    let crlf = |t: &str| t.replace('\n', "\r\n");
    let no_daemons = {
        let a = made.find("    <daemons>").unwrap();
        let b = made.find("</daemons>\n").unwrap() + "</daemons>\n".len();
        format!("{}{}", &made[..a], &made[b..])
    };
    let no_db_dump_task = made.replace(
        "        <task>\n            <cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>\n            <period>24 hours</period>\n            <disabled>1</disabled>\n            <output>db_dump.out</output>\n        </task>\n",
        "",
    );
    let variants: Vec<(&str, String)> = vec![
        ("CRLF, </daemons> after the last daemon", crlf(&made.replace("        </daemon>\n    </daemons>", "        </daemon></daemons>"))),
        ("LF, a one-line daemons section", made.replace(
            "    <daemons>\n        <daemon>\n            <cmd>feeder -d 3 </cmd>\n        </daemon>\n        <daemon>\n            <cmd>transitioner -d 3 </cmd>\n        </daemon>\n        <daemon>\n            <cmd>file_deleter -d 3 </cmd>\n        </daemon>\n    </daemons>",
            "    <daemons><daemon><cmd>feeder -d 3</cmd></daemon></daemons>",
        )),
        ("CRLF, </config> after the last key, ops page configured", crlf(&made.replace(
            "    </config>",
            &ops_keys.replace("</ops_password_hash>\n    </config>", "</ops_password_hash></config>"),
        ))),
        ("CRLF, no db_dump task, </tasks> after the last task", crlf(&no_db_dump_task.replace("        </task>\n    </tasks>", "        </task></tasks>"))),
        ("CRLF, tabs, no <daemons>, </boinc> on the </tasks> line", crlf(&no_daemons.replace("    ", "\t").replace("</tasks>\n</boinc>", "</tasks></boinc>"))),
        ("CRLF, <daemons/>", crlf(&{
            let a = made.find("    <daemons>").unwrap();
            let b = made.find("</daemons>").unwrap() + "</daemons>".len();
            format!("{}    <daemons/>{}", &made[..a], &made[b..])
        })),
        ("LF with one CRLF line", made.replacen("<boinc>\n", "<boinc>\r\n", 1)),
        ("no trailing newline", made.trim_end().to_owned()),
    ];
    for (what, original) in variants {
        for extra in [
            &[][..],
            &["--enable-db-dump", "--listen", "127.0.0.1:9099"][..],
        ] {
            s.set_config(&original);
            let mut args = s.install_args(&["--web-conf-dir", s.web.to_str().unwrap()]);
            args.extend_from_slice(extra);
            ok(ops(&args));
            let installed = s.config();
            assert_ne!(installed, original, "{what}: install changed nothing");
            assert!(installed.contains("<cmd>boinc-rpc"), "{what}: {installed}");
            boinc_db::ProjectConfig::load(&s.project.join("config.xml"))
                .unwrap_or_else(|e| panic!("{what}: {e}\n{installed}"));
            ok(ops(&["project", "uninstall", "--project-dir", s.dir()]));
            assert_eq!(
                s.config(),
                original,
                "{what} {extra:?}: config.xml not given back byte for byte"
            );
        }
    }
}

#[tokio::test]
async fn uninstall_keeps_daemon_lines_it_did_not_add() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "keep");
    let made = s.config();
    let with_ops = made.replace(
        "    </config>",
        "        <ops_user>admin</ops_user>\n        <ops_password_hash>$2y$12$abcdefghijklmnopqrstuu5r7Tn3sFMU8ZBQ3j6DkXAdoQ6AOK0W6</ops_password_hash>\n    </config>",
    );
    let daemon = |cmd: &str, extra: &str| {
        format!("        <daemon>\n            <cmd>{cmd}</cmd>\n{extra}        </daemon>\n    </daemons>")
    };
    let both = format!(
        "{}{}",
        daemon("boinc-rpc --listen 127.0.0.1:9001", "").replace("    </daemons>", ""),
        daemon("boinc-ops serve --listen 127.0.0.1:9002", "")
    );
    let variants = [
        made.replace(
            "    </daemons>",
            &daemon("boinc-rpc --listen 127.0.0.1:9000", ""),
        ),
        made.replace(
            "    </daemons>",
            &daemon("/usr/local/bin/boinc-rpc -d 3", ""),
        ),
        made.replace(
            "    </daemons>",
            &daemon("boinc-rpc", "            <disabled>1</disabled>\n"),
        ),
        with_ops.replace("    </daemons>", &both),
    ];
    for original in variants {
        s.set_config(&original);
        let out =
            ok(ops(&s.install_args(&[
                "--web-conf-dir",
                s.web.to_str().unwrap(),
            ])));
        assert_eq!(
            s.config().matches("<daemon>").count(),
            original.matches("<daemon>").count(),
            "install added a second daemon:\n{out}\n{}",
            s.config()
        );
        ok(ops(&["project", "uninstall", "--project-dir", s.dir()]));
        assert_eq!(
            s.config(),
            original,
            "uninstall removed a line install did not add"
        );
    }
}

// ---------------------------------------------------------------------
// config.xml that is not a plain file of its own.

#[tokio::test]
async fn a_linked_config_xml_is_refused() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "linked");
    let real = s.config();
    let inside = s.project.join("conf");
    std::fs::create_dir(&inside).unwrap();
    std::fs::write(inside.join("config.xml"), &real).unwrap();
    let outside = s.victims.join("config.xml");
    std::fs::write(&outside, &real).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(s.project.join("chain"), &real).unwrap();
    let cfg = s.project.join("config.xml");
    type Plant<'a> = Box<dyn Fn() + 'a>;
    let variants: Vec<(&str, Plant)> = vec![
        (
            "a link into the project",
            Box::new(|| std::os::unix::fs::symlink("conf/config.xml", &cfg).unwrap()),
        ),
        (
            "a link out of the project",
            Box::new(|| std::os::unix::fs::symlink(&outside, &cfg).unwrap()),
        ),
        (
            "a dangling link",
            Box::new(|| std::os::unix::fs::symlink(s.victims.join("nothing"), &cfg).unwrap()),
        ),
        (
            "a link to a link",
            Box::new(|| {
                let _ = std::fs::remove_file(s.project.join("chain"));
                std::os::unix::fs::symlink(&outside, s.project.join("chain")).unwrap();
                std::os::unix::fs::symlink("chain", &cfg).unwrap()
            }),
        ),
        (
            "a hard link to a file outside",
            Box::new(|| std::fs::hard_link(&outside, &cfg).unwrap()),
        ),
    ];
    for (what, plant) in variants {
        std::fs::remove_file(&cfg).unwrap();
        plant();
        let before = snapshot(&s.project);
        let outside_before = fingerprint(&outside);
        for args in [
            s.install_args(&["--web-conf-dir", s.web.to_str().unwrap()]),
            vec!["project", "uninstall", "--project-dir", s.dir()],
        ] {
            let o = ops(&args);
            let out = text(&o);
            assert!(!o.status.success(), "{what}: {args:?} went ahead:\n{out}");
            assert!(
                out.contains("config.xml is a symbolic link")
                    || out.contains("config.xml has 2 hard links"),
                "{what}: unclear refusal:\n{out}"
            );
            assert_eq!(
                snapshot(&s.project),
                before,
                "{what}: {args:?} changed the project"
            );
            assert_eq!(
                fingerprint(&outside),
                outside_before,
                "{what}: changed the target"
            );
        }
    }
    std::fs::remove_file(&cfg).unwrap();
}

// ---------------------------------------------------------------------
// What root links into the system web server.

#[tokio::test]
async fn web_server_includes_are_root_owned_and_outside_the_project() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "webinc");
    let web = s.web.to_str().unwrap();
    let out = ok(ops(&s.install_args(&["--web-conf-dir", web])));
    for f in std::fs::read_dir(&s.project).unwrap() {
        let n = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !n.contains(".boinc-rpc."),
            "include {n} written into the project"
        );
    }
    for f in ["webinc.boinc-rpc.httpd.conf", "webinc.boinc-rpc.nginx.conf"] {
        let m = std::fs::symlink_metadata(s.web.join(f)).unwrap();
        assert!(m.is_file(), "{f}");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o644), "{f}");
    }
    let apache = std::fs::read_to_string(s.web.join("webinc.boinc-rpc.httpd.conf")).unwrap();
    assert!(apache.contains(r#"ProxyPassMatch "^/webinc/(create_account|am_set_info|am_get_info|lookup_account|get_project_config)\.php$" "http://127.0.0.1:8080/$1.php""#), "{apache}");
    // The instructions link root's copy, never a file in the project.
    assert!(
        out.contains(&format!(
            "ln -s {web}/webinc.boinc-rpc.httpd.conf /etc/apache2/sites-enabled/"
        )),
        "{out}"
    );
    assert!(!out.contains(&format!("ln -s {}", s.dir())), "{out}");
    // Not root's own folder: refused.
    let loose = s.root.join("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = ops(&s.install_args(&["--web-conf-dir", loose.to_str().unwrap()]));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("writable by others"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&loose).unwrap().count(), 0);
    std::os::unix::fs::chown(&loose, Some(PROJECT_UID), Some(PROJECT_UID)).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = ops(&s.install_args(&["--web-conf-dir", loose.to_str().unwrap()]));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not owned by root"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&loose).unwrap().count(), 0);
}

#[tokio::test]
async fn listen_addresses_cannot_smuggle_web_server_directives() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "smuggle");
    let made = s.config();
    for bad in [
        "127.0.0.1:8080/ retry=0\nProxyPass / http://evil.example/",
        "127.0.0.1:8080\"",
        "evil.example:80 ; return 200",
        "127.0.0.1:8080\n</Location>",
    ] {
        s.set_config(&made.replace(
            "    </config>",
            &format!(
                "        <rpc_listen>{}</rpc_listen>\n    </config>",
                bad.replace('<', "&lt;")
            ),
        ));
        let before = snapshot(&s.project);
        let o = ops(&s.install_args(&["--web-conf-dir", s.web.to_str().unwrap()]));
        let out = text(&o);
        assert!(!o.status.success(), "{bad:?} accepted:\n{out}");
        assert!(out.contains("rpc_listen"), "{bad:?}: {out}");
        assert_eq!(snapshot(&s.project), before, "{bad:?}");
        assert!(!s.web.exists(), "{bad:?}: wrote an include");
    }
}

#[tokio::test]
async fn as_the_project_user_install_writes_no_include() {
    let db = TestDb::new().await;
    let s = Setup::new(&db, "nonroot");
    chown_tree(&s.project, PROJECT_UID);
    chown_tree(&s.from, PROJECT_UID);
    let out = ok(ops_as(
        PROJECT_UID,
        &s.install_args(&["--web-conf-dir", s.web.to_str().unwrap()]),
    ));
    assert!(!s.web.exists(), "{out}");
    assert!(out.contains("as root"), "{out}");
    for f in std::fs::read_dir(&s.project).unwrap() {
        let n = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !n.contains(".boinc-rpc."),
            "include {n} written into the project"
        );
    }
    assert!(s.config().contains("<cmd>boinc-rpc</cmd>"));
    ok(ops_as(
        PROJECT_UID,
        &["project", "uninstall", "--project-dir", s.dir()],
    ));
}
