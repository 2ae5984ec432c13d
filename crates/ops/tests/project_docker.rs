//! The boinc-server-docker recipe in deploy/docker/: its Dockerfile lines
//! (COPY, ARG, RUN) carried out as docker build would, with the image's
//! absolute paths moved into a temp dir, on a tree shaped as
//! boinc-server-docker's makeproject-step1.sh leaves it (make_project run
//! with `${project}` placeholders, owned by BOINC_USER, uid 1000); then
//! makeproject-step2.sh's copy of that tree over the project volume, on
//! every container start; then `project check` in the apache container.

mod project_common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use boinc_db::testing::write_made_project;
use boinc_db::DbSettings;
use project_common::*;

const MAKEPROJECT: &str = include_str!("../../../deploy/docker/makeproject.Dockerfile");
const APACHE: &str = include_str!("../../../deploy/docker/apache.Dockerfile");
/// boinc-server-docker's BOINC_USER: the first account of its images.
const BOINC_UID: u32 = 1000;

/// The instructions of a Dockerfile snippet: (keyword, rest), with
/// continuation lines joined and comments dropped.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                let (kw, rest) = cur.split_once(' ').unwrap();
                out.push((kw.to_owned(), rest.trim().to_owned()));
                cur.clear();
            }
        }
    }
    out
}

/// The image's file system, rooted in a temp dir.
struct Image {
    root: PathBuf,
}

impl Image {
    fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// Absolute paths of the image moved under `root`.
    fn rebase(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for prefix in ["/opt/", "/usr/local/sbin/", "/etc/"] {
            let moved = self.root.join(prefix.trim_matches('/'));
            out = out.replace(prefix, &format!("{}/", moved.display()));
        }
        out
    }

    /// COPY/ARG/RUN of `dockerfile`, RUN as `uid` with `env`.
    fn build(&self, dockerfile: &str, context: &Path, uid: u32, env: &[(&str, String)]) {
        let mut args: Vec<(String, String)> = Vec::new();
        for (kw, rest) in instructions(dockerfile) {
            match kw.as_str() {
                "ARG" => {
                    let (k, v) = rest.split_once('=').unwrap();
                    args.push((k.to_owned(), v.to_owned()));
                }
                "COPY" => {
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    let chown = words
                        .iter()
                        .find_map(|w| w.strip_prefix("--chown="))
                        .map(|u| u.parse::<u32>().unwrap());
                    let plain: Vec<&str> = words
                        .iter()
                        .copied()
                        .filter(|w| !w.starts_with("--"))
                        .collect();
                    let (src, dst) = (context.join(plain[0]), self.rebase(plain[1]));
                    let st = Command::new("cp")
                        .args(["-rT"])
                        .arg(&src)
                        .arg(&dst)
                        .status()
                        .unwrap();
                    assert!(st.success(), "COPY {rest}");
                    if let Some(u) = chown {
                        chown_tree(Path::new(&dst), u);
                    }
                }
                "RUN" => {
                    let mut c = Command::new("sh");
                    c.arg("-ec").arg(self.rebase(&rest));
                    for (k, v) in &args {
                        c.env(k, v);
                    }
                    for (k, v) in env {
                        c.env(k, v);
                    }
                    c.env(
                        "PATH",
                        format!(
                            "{}:{}",
                            self.path("/usr/sbin").display(),
                            std::env::var("PATH").unwrap()
                        ),
                    )
                    .env_remove("BOINC_DATABASE_URL")
                    .env_remove("BOINC_PROJECT_DIR");
                    if uid != 0 {
                        c.uid(uid).gid(uid);
                    }
                    let o = c.output().unwrap();
                    assert!(o.status.success(), "RUN {rest}:\n{}", text(&o));
                    assert!(!o.stdout.contains(&0x1b) && !o.stderr.contains(&0x1b));
                }
                other => panic!("{other} in a recipe snippet: not carried out here"),
            }
        }
    }
}

/// What makeproject-step1.sh leaves: make_project run with placeholder
/// names that makeproject-step2.sh fills in at each start.
fn makeproject_tree(project: &Path) {
    let settings = DbSettings::from_url("mysql://root@mysql:3306/boincserver").unwrap();
    write_made_project(project, &settings, "${project}", "${project}");
    let cfg = project.join("config.xml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("http://127.0.0.1/${project}/", "${url_base}/${project}/")
        .replace(
            "<db_passwd></db_passwd>",
            "<db_passwd>${db_passwd}</db_passwd>",
        );
    std::fs::write(&cfg, text).unwrap();
    chown_tree(project, BOINC_UID);
}

/// makeproject-step2.sh at container start: placeholders filled in, then
/// `cp -rfT --preserve=mode,ownership $PROJECT_ROOT $PROJECT_ROOT.dst`.
fn container_start(project: &Path, volume: &Path) {
    let cfg = project.join("config.xml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("${project}", "boincserver")
        .replace("${url_base}", "http://127.0.0.1")
        .replace("${db_passwd}", "secret");
    std::fs::write(&cfg, text).unwrap();
    let st = Command::new("cp")
        .args(["-rfT", "--preserve=mode,ownership"])
        .arg(project)
        .arg(volume)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn docker_recipe_steps_on_a_makeproject_tree() {
    let tmp = tempfile::tempdir().unwrap();
    open_to_all(tmp.path());
    let image = Image {
        root: tmp.path().join("image"),
    };
    for d in [
        "/opt",
        "/usr/local/sbin",
        "/usr/sbin",
        "/etc/apache2/conf-enabled",
    ] {
        std::fs::create_dir_all(image.path(d)).unwrap();
    }
    open_to_all(&image.root);
    // The build context: release binaries beside the Dockerfile.
    let context = tmp.path().join("context");
    let bins = context.join("boinc-consent-server");
    fake_binaries(&bins, "release", 0);
    std::fs::copy(BIN, bins.join("boinc-ops")).unwrap();
    // a2enmod is the image's; here it records what it was asked.
    let a2enmod = image.path("/usr/sbin/a2enmod");
    std::fs::write(
        &a2enmod,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\n",
            image.path("/etc/apache2/a2enmod.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &a2enmod,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    // images/makeproject: make_project's tree, then our lines, as BOINC_USER.
    let project = image.path("/home/boincadm/project");
    std::fs::create_dir_all(project.parent().unwrap()).unwrap();
    open_to_all(project.parent().unwrap());
    makeproject_tree(&project);
    let upstream_db_dump = std::fs::read(project.join("bin/db_dump")).unwrap();
    image.build(
        MAKEPROJECT,
        &context,
        BOINC_UID,
        &[
            ("PROJECT_ROOT", project.display().to_string()),
            ("HOME", "/home/boincadm".into()),
        ],
    );
    let config = std::fs::read_to_string(project.join("config.xml")).unwrap();
    assert!(
        config.contains("<cmd>boinc-rpc --init-db</cmd>"),
        "{config}"
    );
    assert!(stats_task(&config).unwrap().contains(
        "<cmd>boinc_consent_db_dump -d 2 --dump_spec ../boinc_consent_db_dump_spec.xml</cmd>"
    ));
    assert_eq!(
        std::fs::read(project.join("bin/db_dump")).unwrap(),
        upstream_db_dump
    );
    for f in [
        "bin/boinc-rpc",
        "bin/boinc_consent_db_dump",
        "boinc-consent-server.install.json",
    ] {
        assert_eq!(
            std::fs::metadata(project.join(f)).unwrap().uid(),
            BOINC_UID,
            "{f}: the project's files stay BOINC_USER's"
        );
    }

    // images/apache: modules, root's include, linked into conf-enabled.
    image.build(APACHE, &context, 0, &[]);
    assert_eq!(
        std::fs::read_to_string(image.path("/etc/apache2/a2enmod.log")).unwrap(),
        "proxy proxy_http rewrite\n"
    );
    let include = image.path("/etc/boinc-consent-server/boincserver.boinc-rpc.httpd.conf");
    let m = std::fs::metadata(&include).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o644));
    assert_eq!(
        std::fs::read_link(image.path("/etc/apache2/conf-enabled/boinc-consent-server.conf"))
            .unwrap(),
        include
    );
    let text = std::fs::read_to_string(&include).unwrap();
    assert!(
        text.contains(r#"ProxyPassMatch "^/boincserver/(create_account|am_set_info|am_get_info|lookup_account|get_project_config)\.php$" "http://127.0.0.1:8080/$1.php""#),
        "{text}"
    );

    // Container start, twice, over a volume holding an older tree.
    let volume = PathBuf::from(format!("{}.dst", project.display()));
    makeproject_tree(&volume);
    std::fs::write(volume.join("bin/db_dump"), "#!/bin/sh\necho older image\n").unwrap();
    for _ in 0..2 {
        container_start(&project, &volume);
        let out = ok(ops(&[
            "project",
            "check",
            "--project-dir",
            volume.to_str().unwrap(),
            "--web-conf-dir",
            image.path("/etc/boinc-consent-server").to_str().unwrap(),
        ]));
        assert!(out.starts_with("install intact:"), "{out}");
    }
    assert_eq!(
        std::fs::read(volume.join("bin/db_dump")).unwrap(),
        upstream_db_dump
    );
}
