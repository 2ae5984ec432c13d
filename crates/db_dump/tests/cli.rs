//! db_dump's command line as BOINC runs it: upstream's flags, exit codes,
//! config discovery, `--retry_period` / `--db_host`, `stop_daemons`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_db_dump");

fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("BOINC_PROJECT_DIR")
        .env_remove("BOINC_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A project folder whose database is on a closed port.
fn project(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.xml"),
        format!(
            "<boinc>\n<config>\n<db_name>nodb</db_name>\n<db_host>127.0.0.1:{port}</db_host>\n\
             <db_user>root</db_user>\n</config>\n</boinc>\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("db_dump_spec.xml"),
        "<boinc_db_dump_spec>\n<output_dir>../html/stats_tmp</output_dir>\n\
         <final_output_dir>../html/stats</final_output_dir>\n<enumeration><table>user</table>\
         <filename>user</filename><output><compression>gzip</compression></output></enumeration>\n\
         </boinc_db_dump_spec>\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("tmp_h")).unwrap();
    dir
}

#[test]
fn help_version_and_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    for flag in ["-h", "--help", "-help"] {
        let o = run(d.path(), &[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}");
        let t = text(&o);
        assert!(
            t.contains("--dump_spec") && t.contains("--retry_period"),
            "{t}"
        );
    }
    for flag in ["-v", "--version"] {
        let o = run(d.path(), &[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}");
        assert!(text(&o).contains(env!("CARGO_PKG_VERSION")));
    }
    let o = run(d.path(), &["--bogus"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = run(d.path(), &["-d"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn no_config_lists_where_it_looked() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["-d", "2", "--dump_spec", "../db_dump_spec.xml"]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    let here = d.path().canonicalize().unwrap();
    assert!(
        t.contains(&here.join("config.xml").display().to_string()),
        "{t}"
    );
    assert!(
        t.contains(&here.join("../config.xml").display().to_string()),
        "{t}"
    );
    assert!(
        !t.contains('\x1b'),
        "escape bytes in a log that is not a terminal: {t:?}"
    );
}

#[test]
fn stop_daemons_means_no_dump() {
    let p = project(1);
    std::fs::write(p.path().join("stop_daemons"), "<stop/>\n").unwrap();
    // Found as ../config.xml from tmp_HOST, as bin/start runs tasks.
    let o = run(
        &p.path().join("tmp_h"),
        &["-d", "2", "--dump_spec", "../db_dump_spec.xml"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("Quitting because trigger file"),
        "{}",
        text(&o)
    );
    assert!(!p.path().join("html").exists());
}

#[test]
fn unreachable_database_fails_or_retries() {
    let closed = boinc_db::testing::free_port();
    let p = project(closed);
    let tmp = p.path().join("tmp_h");
    // Without --retry_period: one try, exit 1, nothing published.
    let o = run(&tmp, &["--dump_spec", "../db_dump_spec.xml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("127.0.0.1:{closed}")),
        "{}",
        text(&o)
    );
    // --db_host replaces the host it reads from.
    let other = boinc_db::testing::free_port();
    let o = run(
        &tmp,
        &[
            "--dump_spec",
            "../db_dump_spec.xml",
            "--db_host",
            &format!("127.0.0.1:{other}"),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(&format!("127.0.0.1:{other}")),
        "{}",
        text(&o)
    );
    // --retry_period 1: keeps retrying until stop_daemons appears, then
    // exits 0 without dumping.
    let mut child = Command::new(BIN)
        .args(["-retry_period", "1", "-dump_spec", "../db_dump_spec.xml"])
        .current_dir(&tmp)
        .env_remove("BOINC_PROJECT_DIR")
        .env_remove("BOINC_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "gave up instead of retrying"
    );
    std::fs::write(p.path().join("stop_daemons"), "<stop/>\n").unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(t.matches("retrying in 1 s").count() >= 2, "{t}");
    assert!(t.contains("Quitting because trigger file"), "{t}");
    assert!(!p.path().join("html").exists());
}

/// `<replica_max_lag>` is a duration: a value it cannot mean stops the run
/// at once, naming the key, before the database is read and with nothing
/// published (it was the 300 s default without a word); in range it dumps.
#[test]
fn replica_max_lag_it_cannot_mean_is_a_config_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(boinc_db::testing::TestDb::new());
    let s = &db.settings;
    for (value, ok) in [
        ("1e30", false),
        ("-1", false),
        ("NaN", false),
        ("inf", false),
        ("five minutes", false),
        ("", false),
        ("0", true),
        ("120", true),
    ] {
        let p = project(1);
        std::fs::create_dir_all(p.path().join("html")).unwrap();
        std::fs::write(
            p.path().join("config.xml"),
            format!(
                "<boinc>\n<config>\n<db_name>{}</db_name>\n<db_host>{}:{}</db_host>\n\
                 <db_user>{}</db_user>\n<db_passwd>{}</db_passwd>\n\
                 <replica_db_host>{}:{}</replica_db_host>\n\
                 <replica_max_lag>{value}</replica_max_lag>\n</config>\n</boinc>\n",
                s.name, s.host, s.port, s.user, s.passwd, s.host, s.port
            ),
        )
        .unwrap();
        let o = run(
            &p.path().join("tmp_h"),
            &["--dump_spec", "../db_dump_spec.xml"],
        );
        let t = text(&o);
        let published = p.path().join("html/stats").exists();
        if ok {
            assert_eq!(o.status.code(), Some(0), "{value:?}: {t}");
            assert!(published, "{value:?}: {t}");
        } else {
            assert_eq!(o.status.code(), Some(1), "{value:?}: {t}");
            assert!(
                t.contains("config.xml <replica_max_lag>: ")
                    && t.contains("is not a number of seconds from 0 or 0.001 to 604800"),
                "{value:?}: {t}"
            );
            assert!(!t.contains("panicked"), "{t}");
            assert!(!published, "{value:?}: published anyway");
        }
    }
}
