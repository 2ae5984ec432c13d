//! The shipped web server configs in front of boinc-rpc, with the real
//! BOINC client: a project installed by `boinc-ops project install`, a real
//! Apache (Debian's apache2, mod_proxy_http) on a free loopback port that
//! loads the include install wrote, and a throwaway BOINC client attaching
//! through it (get_project_config, create_account, lookup_account). Also
//! nginx (Debian's nginx) with the shipped nginx include.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use boinc_db::testing::{free_port, write_made_project, TestDb};
use common::{account_key, bin_dir, boinccmd, start_client, wait_http, Project};
use mysql_async::prelude::*;

const MODULES: &str = "/usr/lib/apache2/modules";

/// A web server process of the test's own; stopped with SIGTERM on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling a process this test started.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = common::wait_exit(&mut self.0, Duration::from_secs(20));
    }
}

/// The part of the project's Apache setup make_project writes
/// (`PROJECT.httpd.conf`: html/user at /NAME/, html/ops at /NAME_ops/).
fn upstream_httpd_conf(dir: &Path, name: &str) -> String {
    let root = dir.display();
    format!(
        "Alias /{name}_ops {root}/html/ops\nAlias /{name} {root}/html/user\n\
         <Directory \"{root}/html\">\n    Require all granted\n</Directory>\n"
    )
}

fn start_apache(work: &Path, port: u16, includes: &[&Path]) -> Server {
    std::fs::create_dir_all(work).unwrap();
    let mut conf = format!(
        "ServerRoot {w}\nDefaultRuntimeDir {w}\nPidFile {w}/httpd.pid\nErrorLog {w}/error.log\n\
         LogLevel warn\nTypesConfig /etc/mime.types\nListen 127.0.0.1:{port}\nServerName 127.0.0.1\n",
        w = work.display()
    );
    for m in [
        "mpm_event",
        "authz_core",
        "alias",
        "mime",
        "dir",
        "proxy",
        "proxy_http",
        "rewrite",
    ] {
        conf.push_str(&format!("LoadModule {m}_module {MODULES}/mod_{m}.so\n"));
    }
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        conf.push_str("User www-data\nGroup www-data\n");
    }
    // As on Debian: the project's includes sit at server level (in
    // sites-enabled) beside the default site's <VirtualHost>, which takes
    // every request; server-level Alias and ProxyPass rules apply inside it.
    for i in includes {
        conf.push_str(&format!("Include {}\n", i.display()));
    }
    conf.push_str(&format!(
        "<VirtualHost *:{port}>\n    DocumentRoot {w}\n</VirtualHost>\n",
        w = work.display()
    ));
    let path = work.join("apache2.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("/usr/sbin/apache2")
        .arg("-f")
        .arg(&path)
        .arg("-DFOREGROUND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("stderr.log")).unwrap())
        .spawn()
        .expect("Apache must be installed (Debian package apache2)");
    Server(child)
}

/// Everyone may read the project's web folders (Apache's workers run as
/// www-data; temp dirs are private).
fn open_up(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut p = Some(path);
    while let Some(d) = p {
        if d == Path::new("/") || d == std::env::temp_dir() {
            break;
        }
        let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755));
        p = d.parent();
    }
}

/// Install into a fresh project whose master_url is `base` and start its
/// boinc-rpc as bin/start would.
/// With `ops_port`, the ops page is configured (user "admin", password
/// "ops-admin-password") and install adds its daemon too.
async fn project(
    db: &TestDb,
    tmp: &Path,
    name: &str,
    base: &str,
    rpc_port: u16,
    ops_port: Option<u16>,
) -> (Project, Vec<common::Daemon>) {
    let dir = tmp.join(name);
    let host = common::short_hostname();
    let config = write_made_project(&dir, &db.settings, name, &host);
    let xml = std::fs::read_to_string(&config).unwrap().replace(
        &format!("http://127.0.0.1/{name}/"),
        &format!("{base}{name}/"),
    );
    let ops_keys = if ops_port.is_some() {
        let hash = bcrypt::hash_with_result("ops-admin-password", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        format!("        <ops_user>admin</ops_user>\n        <ops_password_hash>{hash}</ops_password_hash>\n")
    } else {
        String::new()
    };
    let xml = xml.replace("    </config>", &format!("{ops_keys}    </config>"));
    std::fs::write(&config, xml).unwrap();
    std::fs::write(
        dir.join("terms_of_use.txt"),
        "Terms of the proxied project.",
    )
    .unwrap();
    std::fs::write(
        dir.join("html/user/static.txt"),
        "served by the web server\n",
    )
    .unwrap();
    let bins = bin_dir();
    let out = Command::new(bins.join("boinc-ops"))
        .args(["project", "install", "--project-dir"])
        .arg(&dir)
        .arg("--from")
        .arg(&bins)
        .args(["--listen", &format!("127.0.0.1:{rpc_port}")])
        .args([
            "--ops-listen",
            &format!("127.0.0.1:{}", ops_port.unwrap_or(8081)),
        ])
        // Root's copies of the includes, outside the project folder.
        .arg("--web-conf-dir")
        .arg(tmp.join("web"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = Project::new(&dir, &host);
    let daemons = p.start();
    assert_eq!(daemons.len(), 1 + ops_port.is_some() as usize);
    wait_http(&format!(
        "http://127.0.0.1:{rpc_port}/get_project_config.php"
    ))
    .await;
    open_up(&dir.join("html/user"));
    (p, daemons)
}

/// The same attach flow as a volunteer's client, through `master_url`.
async fn attach_through(master_url: &str, c: &mut mysql_async::Conn, tag: &str, name: &str) {
    let client_dir = tempfile::tempdir().unwrap();
    let client = start_client(client_dir.path());
    let url = master_url.to_owned();
    let run = move |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        boinccmd(&client, &a)
    };
    let run = std::sync::Arc::new(run);
    let call = |args: Vec<String>| {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run(args))
    };
    let (ok, out) = call(vec!["--get_project_config".into(), url.clone()])
        .await
        .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("min_passwd_length: 6"), "{out}");
    assert!(out.contains(&format!("name: {name}\n")), "{out}");
    let email = format!("{tag}.volunteer@example.com");
    let (ok, out) = call(vec![
        "--create_account".into(),
        url.clone(),
        email.clone(),
        "volunteer-pw".into(),
        format!("{tag} volunteer"),
    ])
    .await
    .unwrap();
    assert!(ok, "{out}");
    let key = account_key(&out).unwrap_or_else(|| panic!("no account key: {out}"));
    let stored: Option<String> = c
        .exec_first(
            "SELECT authenticator FROM user WHERE email_addr = ?",
            (&email,),
        )
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(key.as_str()));
    let (ok, out) = call(vec![
        "--lookup_account".into(),
        url.clone(),
        email.clone(),
        "volunteer-pw".into(),
    ])
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert_eq!(account_key(&out).as_deref(), Some(key.as_str()), "{out}");
    let (_, out) = call(vec![
        "--lookup_account".into(),
        url,
        email,
        "wrong-pw".into(),
    ])
    .await
    .unwrap();
    assert!(out.contains("bad password"), "{out}");
}

/// The public lookups through the web server: XML requests reach
/// boinc-rpc (which hides a volunteer without STATSEXPORT consent), the
/// HTML pages' own links (`?userid=N`) stay with the web server's PHP
/// (`html_marker`: what it answers for html/user/show_user.php here), and
/// boinc-rpc's /health and /metrics are not reachable through it.
async fn lookups_through(base: &str, name: &str, c: &mut mysql_async::Conn, html_marker: &str) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let id: i64 = c
        .query_first("SELECT MAX(id) FROM user")
        .await
        .unwrap()
        .unwrap();
    c.query_drop(format!(
        "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
         description, nusers, country, total_credit, expavg_credit, expavg_time) \
         VALUES (77, 1, {id}, 'Proxied Team', 'proxied team', '', 1, '', '', 1, '', 0, 0, 0)"
    ))
    .await
    .unwrap();
    c.exec_drop("UPDATE user SET teamid = 77 WHERE id = ?", (id,))
        .await
        .unwrap();
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    // Without consent: hidden, answered by boinc-rpc.
    let (status, body) = get(format!("{name}/show_user.php?userid={id}&format=xml")).await;
    assert_eq!(status, 200);
    assert!(body.contains("<error_num>-136</error_num>"), "{body}");
    let (_, body) = get(format!("{name}/team_email_list.php?teamid=77&xml=1")).await;
    assert!(body.ends_with("<users>\n</users>\n"), "{body}");
    let (_, body) = get(format!("{name}/team_lookup.php?team_id=77&format=xml")).await;
    assert!(
        body.contains("<name>Proxied Team</name>") && body.contains("<userid>0</userid>"),
        "{body}"
    );
    // With consent: shown.
    c.exec_drop(
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) \
         SELECT ?, id, 1, 1, 0, 'e2e' FROM consent_type WHERE shortname = 'STATSEXPORT'",
        (id,),
    )
    .await
    .unwrap();
    let (_, body) = get(format!("{name}/show_user.php?format=xml&userid={id}")).await;
    assert!(body.contains(&format!("<id>{id}</id>")), "{body}");
    // A path after the script name (PHP's PATH_INFO) changes nothing.
    let (_, body) = get(format!("{name}/show_user.php/x.php?userid={id}&format=xml")).await;
    assert!(body.contains(&format!("<id>{id}</id>")), "{body}");
    let (_, body) = get(format!(
        "{name}/team_email_list.php?teamid=77&xml=1&creditonly=0"
    ))
    .await;
    assert!(body.contains(&format!("<id>{id}</id>")), "{body}");
    let (_, body) = get(format!(
        "{name}/team_lookup.php?team_name=Proxied&format=xml"
    ))
    .await;
    assert!(body.contains(&format!("<userid>{id}</userid>")), "{body}");
    // The HTML page's own link is the web server's.
    let (_, body) = get(format!("{name}/show_user.php?userid={id}")).await;
    assert!(
        body.contains(html_marker) && !body.contains("<?xml"),
        "{body}"
    );
    // boinc-rpc's operations endpoints are not exposed.
    for path in [
        "health",
        "metrics",
        &format!("{name}/health"),
        &format!("{name}/metrics"),
    ] {
        let (status, body) = get(path.to_owned()).await;
        assert_ne!(status, 200, "{path}: {body}");
        assert!(
            !body.contains("boinc_rpc") && body != "ok\n",
            "{path}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boinc_client_attaches_through_apache() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'ENROLL'")
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    open_up(tmp.path());
    let web_port = free_port();
    let rpc_port = free_port();
    let base = format!("http://127.0.0.1:{web_port}/");
    let ops_port = free_port();
    let (p, mut daemons) =
        project(&db, tmp.path(), "proxied", &base, rpc_port, Some(ops_port)).await;
    let upstream = p.dir.join("proxied.httpd.conf");
    std::fs::write(&upstream, upstream_httpd_conf(&p.dir, "proxied")).unwrap();
    let ours = tmp.path().join("web/proxied.boinc-rpc.httpd.conf");
    let _apache = start_apache(&tmp.path().join("apache"), web_port, &[&upstream, &ours]);
    let reply = wait_http(&format!("{base}proxied/get_project_config.php")).await;
    assert!(reply.contains("<project_config>"), "{reply}");
    // The rest of /proxied/ is still Apache's (html/user), not boinc-rpc's.
    let page = wait_http(&format!("{base}proxied/static.txt")).await;
    assert_eq!(page, "served by the web server\n");

    attach_through(&format!("{base}proxied/"), &mut c, "apache", "proxied").await;
    std::fs::write(p.dir.join("html/user/show_user.php"), "the PHP page\n").unwrap();
    open_up(&p.dir.join("html/user"));
    lookups_through(&base, "proxied", &mut c, "the PHP page").await;
    // The ops page under /proxied_ops/consent/, with its own login; its
    // relative links (stylesheet, forms) resolve below that prefix.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let ops_url = format!("{base}proxied_ops/consent/");
    let r = http.get(&ops_url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(&ops_url)
        .basic_auth("admin", Some("ops-admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("ENROLL") && html.contains("href=\"static/ops.css\""),
        "{html}"
    );
    let r = http
        .get(format!("{ops_url}static/ops.css"))
        .basic_auth("admin", Some("ops-admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The requests reached boinc-rpc (its log), from Apache on loopback.
    let log = p.log("boinc-rpc.log");
    assert!(
        log.contains("rpc=\"create_account\"") || log.contains("rpc=create_account"),
        "{log}"
    );
    assert!(log.contains("lookup_account"), "{log}");
    assert!(
        log.contains("show_user") && log.contains("team_email_list"),
        "{log}"
    );

    p.stop();
    for d in &mut daemons {
        let s = common::wait_exit(&mut d.child, Duration::from_secs(30));
        assert_eq!(s.code(), Some(0), "{}", d.program);
    }
    c.disconnect().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boinc_client_attaches_through_nginx() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let tmp = tempfile::tempdir().unwrap();
    open_up(tmp.path());
    let web_port = free_port();
    let rpc_port = free_port();
    let base = format!("http://127.0.0.1:{web_port}/");
    let (p, mut daemons) = project(&db, tmp.path(), "viangx", &base, rpc_port, None).await;
    let work = tmp.path().join("nginx");
    std::fs::create_dir_all(&work).unwrap();
    let conf = format!(
        "daemon off;\npid {w}/nginx.pid;\nerror_log {w}/error.log warn;\n{user}\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {w}/body;\n  proxy_temp_path {w}/proxy;\n\
           fastcgi_temp_path {w}/fcgi;\n  uwsgi_temp_path {w}/uwsgi;\n  scgi_temp_path {w}/scgi;\n\
           server {{\n    listen 127.0.0.1:{web_port};\n    location /viangx/ {{ alias {root}/html/user/; }}\n\
             location ~ \\.php$ {{ return 403; }}\n    include {web}/viangx.boinc-rpc.nginx.conf;\n  }}\n}}\n",
        w = work.display(),
        root = p.dir.display(),
        web = tmp.path().join("web").display(),
        // SAFETY: getuid has no preconditions.
        user = if unsafe { libc::getuid() } == 0 { "user www-data;\n" } else { "" },
    );
    let path = work.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let _nginx = Server(
        Command::new("/usr/sbin/nginx")
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(work.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.join("stderr.log")).unwrap())
            .spawn()
            .expect("nginx must be installed (Debian package nginx-light)"),
    );
    // The exact-match RPC locations win over the PHP regex location.
    let reply = wait_http(&format!("{base}viangx/get_project_config.php")).await;
    assert!(reply.contains("<project_config>"), "{reply}");
    let page = wait_http(&format!("{base}viangx/static.txt")).await;
    assert_eq!(page, "served by the web server\n");
    attach_through(&format!("{base}viangx/"), &mut c, "nginx", "viangx").await;
    // nginx's stand-in for PHP answers 403.
    lookups_through(&base, "viangx", &mut c, "403 Forbidden").await;
    p.stop();
    for d in &mut daemons {
        let s = common::wait_exit(&mut d.child, Duration::from_secs(30));
        assert_eq!(s.code(), Some(0), "{}", d.program);
    }
    c.disconnect().await.ok();
}
