//! host records: the host file and the (id, host_cpid) records of
//! host_deleted and host_optout.

use super::element::{cdata, float_el, int_el, text_el};

pub struct Host<'a> {
    pub id: i64,
    pub userid: i64,
    /// The owner's show_hosts; None when the owner row is missing.
    pub owner_show_hosts: Option<bool>,
    pub create_time: i64,
    pub rpc_time: i64,
    pub timezone: i64,
    pub total_credit: f64,
    pub expavg_credit: f64,
    pub expavg_time: f64,
    pub p_vendor: &'a [u8],
    pub p_model: &'a [u8],
    pub os_name: &'a [u8],
    pub os_version: &'a [u8],
    pub details: HostExtra<'a>,
    pub p_ncpus: i64,
    pub p_fpops: f64,
    pub p_iops: f64,
    pub p_membw: f64,
    pub m_nbytes: f64,
    pub m_cache: f64,
    pub m_swap: f64,
    pub d_total: f64,
    pub d_free: f64,
    pub n_bwup: f64,
    pub n_bwdown: f64,
    pub avg_turnaround: f64,
    pub credit_per_cpu_sec: f64,
    pub host_cpid: &'a [u8],
}

/// A host's GPUs, client and VirtualBox, as the database's release
/// stores them (`boinc_db::schema::shape::HostDetails`).
#[derive(Debug, Clone, Copy)]
pub enum HostExtra<'a> {
    /// `host.misc`: written as `<misc>` CDATA (master).
    Misc(&'a [u8]),
    /// `host.serialnum`: written as `<boinc_version>`, `<vbox_version>`
    /// and `<coprocs>`, each only when non-empty, as releases before 1.6
    /// write them.
    Serialnum(&'a [u8]),
}

pub fn host(out: &mut Vec<u8>, h: &Host, detail: bool) {
    const I: &[u8] = b"    ";
    const D: &[u8] = b"  ";
    out.extend_from_slice(b"<host>\n");
    int_el(out, I, b"id", h.id);
    if detail && h.owner_show_hosts == Some(true) {
        int_el(out, I, b"userid", h.userid);
    }
    float_el(out, I, b"total_credit", h.total_credit);
    float_el(out, I, b"expavg_credit", h.expavg_credit);
    float_el(out, I, b"expavg_time", h.expavg_time);
    text_el(out, I, b"p_vendor", h.p_vendor);
    text_el(out, I, b"p_model", h.p_model);
    text_el(out, I, b"os_name", h.os_name);
    text_el(out, I, b"os_version", h.os_version);
    match h.details {
        HostExtra::Misc(misc) => {
            out.extend_from_slice(b"    <misc>");
            cdata(out, misc);
            out.extend_from_slice(b"</misc>\n");
        }
        HostExtra::Serialnum(s) => {
            let p = boinc_db::schema::shape::parse_serialnum(s);
            if !p.boinc.is_empty() {
                text_el(out, I, b"boinc_version", p.boinc);
            }
            if !p.vbox.is_empty() {
                text_el(out, I, b"vbox_version", p.vbox);
            }
            if !p.coprocs.is_empty() {
                text_el(out, I, b"coprocs", &p.coprocs.concat());
            }
        }
    }
    if detail {
        int_el(out, D, b"create_time", h.create_time);
        int_el(out, D, b"rpc_time", h.rpc_time);
        int_el(out, D, b"timezone", h.timezone);
        int_el(out, D, b"ncpus", h.p_ncpus);
        float_el(out, D, b"p_fpops", h.p_fpops);
        float_el(out, D, b"p_iops", h.p_iops);
        float_el(out, D, b"p_membw", h.p_membw);
        float_el(out, D, b"m_nbytes", h.m_nbytes);
        float_el(out, D, b"m_cache", h.m_cache);
        float_el(out, D, b"m_swap", h.m_swap);
        float_el(out, D, b"d_total", h.d_total);
        float_el(out, D, b"d_free", h.d_free);
        float_el(out, D, b"n_bwup", h.n_bwup);
        float_el(out, D, b"n_bwdown", h.n_bwdown);
        float_el(out, D, b"avg_turnaround", h.avg_turnaround);
        float_el(out, D, b"credit_per_cpu_sec", h.credit_per_cpu_sec);
        text_el(out, D, b"host_cpid", h.host_cpid);
    }
    out.extend_from_slice(b"</host>\n");
}

/// host_deleted and host_optout records.
pub fn host_id_cpid(out: &mut Vec<u8>, id: i64, host_cpid: &[u8]) {
    out.extend_from_slice(b"<host>\n");
    int_el(out, b"    ", b"id", id);
    text_el(out, b"    ", b"host_cpid", host_cpid);
    out.extend_from_slice(b"</host>\n");
}
