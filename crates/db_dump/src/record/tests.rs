use super::*;

fn s(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap()
}

#[test]
fn text_escaping() {
    let mut o = Vec::new();
    text(
        &mut o,
        "a&b<c>d\te\nf\rg\u{1}h\u{FFFE}i\u{FFFF}jü😀".as_bytes(),
    );
    assert_eq!(s(o), "a&amp;b&lt;c&gt;d&#9;e&#10;f&#13;ghijü😀");
    let mut o = Vec::new();
    text(&mut o, b"ok\xff\xfeend\xc3 J\xf6rg \x80");
    assert_eq!(s(o), "ok\u{FF}\u{FE}end\u{C3} J\u{F6}rg \u{20AC}");
    let mut o = Vec::new();
    text(&mut o, "quotes \" ' stay".as_bytes());
    assert_eq!(s(o), "quotes \" ' stay");
}

#[test]
fn cdata_is_safe() {
    let mut o = Vec::new();
    cdata(&mut o, b"a]]>b\nc]]d<&");
    assert_eq!(s(o), "<![CDATA[a]]]]><![CDATA[>b]]>&#10;<![CDATA[c]]d<&]]>");
}

/// Compared with PHP itself (php-cli, installed by .ci/setup): the
/// sums export_credit_by_app.php prints.
#[test]
fn php_number_matches_php() {
    let values = [
        0.0,
        1e-4,
        1.234e-5,
        123.5,
        100.0,
        1e15,
        1.5e15,
        12345678901234.5,
        0.1 + 0.2,
        1e25,
        -3.25,
        2.0 / 3.0,
        1234567.891,
        99999999999999.9,
        5e-324,
        0.000123456789012345,
    ];
    let list: Vec<String> = values.iter().map(|v| format!("{v:e}")).collect();
    let script = format!(
        "foreach ([{}] as $x) {{ $t = 0; $t += $x; echo \"$t\\n\"; }}",
        list.join(",")
    );
    let out = std::process::Command::new("php")
        .args(["-r", &script])
        .output()
        .expect("php-cli installed (apt-get install php-cli; .ci/setup does)");
    let php = String::from_utf8(out.stdout).unwrap();
    let ours: String = values
        .iter()
        .map(|&v| {
            let mut o = Vec::new();
            php_number(&mut o, v);
            format!("{}\n", s(o))
        })
        .collect();
    assert_eq!(ours, php);
}

#[test]
fn badge_and_work_records() {
    let mut o = Vec::new();
    badge_holder(&mut o, false, 7, 3, 1700000000.6);
    badge_holder(&mut o, true, 9, 4, 2.5);
    assert_eq!(
            s(o),
            " <badge_user>\n    <user_id>7</user_id>\n    <badge_id>3</badge_id>\n    \
<create_time>1700000001</create_time>\n </badge_user>\n <badge_team>\n    <team_id>9</team_id>\n    \
<badge_id>4</badge_id>\n    <create_time>2</create_time>\n </badge_team>\n"
        );
    let mut o = Vec::new();
    let sp = |name, total| SubprojectCredit {
        name,
        njobs: 3,
        total,
        expavg: total / 4.0,
    };
    work(&mut o, false, 5, &[sp("A \"&<b>", 10.5), sp("none", 0.0)]);
    assert_eq!(
            s(o),
            "<user>\n    <id>5</id>\n    <subproject name=\"A &quot;&amp;&lt;b&gt;\">\n        \
<workunits>3</workunits>\n        <credit>10.5</credit>\n        <expavg_credit>2.625</expavg_credit>\n    \
</subproject>\n</user>\n"
        );
}

#[test]
fn fixed6_matches_printf() {
    let f = |v: f64| {
        let mut o = Vec::new();
        fixed6(&mut o, v);
        s(o)
    };
    assert_eq!(f(0.0), "0.000000");
    assert_eq!(f(1.5), "1.500000");
    assert_eq!(f(123456.1234567), "123456.123457");
    assert_eq!(f(-2.25), "-2.250000");
    assert_eq!(f(1e20), "100000000000000000000.000000");
    assert_eq!(f(f64::INFINITY), "inf");
    assert_eq!(f(f64::NAN), "nan");
    assert_eq!(f(-0.0), "-0.000000");
    assert_eq!(f(-17179869184.0), "-17179869184.000000");
    assert_eq!(f(8999999999999999.0), "8999999999999999.000000");
    assert_eq!(f(9.5e15), "9500000000000000.000000");
    for v in [0.1, 2.675, 1e-7, 5e-7, 123.0000005, 1.0 / 3.0] {
        assert_eq!(f(v), format!("{v:.6}"));
    }
}

fn sample_host(details: HostExtra<'_>) -> Host<'_> {
    Host {
        id: 42,
        userid: 7,
        owner_show_hosts: Some(true),
        create_time: 1500000000,
        rpc_time: 1600000000,
        timezone: 3600,
        total_credit: 1234.5,
        expavg_credit: 12.25,
        expavg_time: 1600000000.5,
        p_vendor: b"GenuineIntel",
        p_model: b"Intel(R) Core(TM) i5-8400 CPU @ 2.80GHz [Family 6 Model 158 Stepping 10]",
        os_name: b"Microsoft Windows 10",
        os_version: b"Core x64 Edition, (10.00.19045.00)",
        details,
        p_ncpus: 6,
        p_fpops: 4.5e9,
        p_iops: 1.5e10,
        p_membw: 1e9,
        m_nbytes: 17095000064.0,
        m_cache: 9437184.0,
        m_swap: 19595000064.0,
        d_total: 499000000000.0,
        d_free: 123000000000.0,
        n_bwup: 0.0,
        n_bwdown: 0.0,
        avg_turnaround: 86400.0,
        credit_per_cpu_sec: 0.0,
        host_cpid: b"0123456789abcdef0123456789abcdef",
    }
}

/// The host record of a release before 1.6 (no host.misc): the
/// elements that release's db_dump writes after `<os_version>`, byte
/// for byte, for real clients' serialnum strings; an empty part is
/// left out. With host.misc, `<misc>` as master writes it.
#[test]
fn host_records_follow_the_release() {
    let body = |details| {
        let mut o = Vec::new();
        host(&mut o, &sample_host(details), false);
        let t = s(o);
        let from = t.find("</os_version>\n").unwrap() + "</os_version>\n".len();
        t[from..].to_owned()
    };
    let sn = |v: &'static str| body(HostExtra::Serialnum(v.as_bytes()));
    assert_eq!(
        sn("[BOINC|7.16.21][CUDA|NVIDIA GeForce GTX 1060 6GB|1|6144MB|46027|102][vbox|6.1.26|1|1]"),
        "    <boinc_version>[BOINC|7.16.21]</boinc_version>\n\
             \x20   <vbox_version>[vbox|6.1.26|1|1]</vbox_version>\n\
             \x20   <coprocs>[CUDA|NVIDIA GeForce GTX 1060 6GB|1|6144MB|46027|102]</coprocs>\n\
             </host>\n"
    );
    assert_eq!(
            sn("[BOINC|8.0.2][CUDA|NVIDIA GeForce RTX 3080|1|10240MB|53741|300][INTEL|Intel(R) UHD Graphics 770|1|6383MB||300]"),
            "    <boinc_version>[BOINC|8.0.2]</boinc_version>\n\
             \x20   <coprocs>[CUDA|NVIDIA GeForce RTX 3080|1|10240MB|53741|300][INTEL|Intel(R) UHD Graphics 770|1|6383MB||300]</coprocs>\n\
             </host>\n"
        );
    assert_eq!(
        sn("[BOINC|7.14.2|Charity Engine]"),
        "    <boinc_version>[BOINC|7.14.2|Charity Engine]</boinc_version>\n</host>\n"
    );
    // upstream's xml_escape: & and < as entities.
    assert_eq!(
            sn("[BOINC|7.6.22][CAL|AMD Radeon R9 200 & HD 7900 <x>|2|3072MB|1.4.1848|120]"),
            "    <boinc_version>[BOINC|7.6.22]</boinc_version>\n\
             \x20   <coprocs>[CAL|AMD Radeon R9 200 &amp; HD 7900 &lt;x&gt;|2|3072MB|1.4.1848|120]</coprocs>\n\
             </host>\n"
        );
    assert_eq!(sn(""), "</host>\n");
    assert_eq!(sn("not bracketed"), "</host>\n");
    assert_eq!(
        body(HostExtra::Misc(br#"{"gpus":[]}"#)),
        "    <misc><![CDATA[{\"gpus\":[]}]]></misc>\n</host>\n"
    );
}
