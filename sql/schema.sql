-- The subset of BOINC's schema (db/schema.sql upstream) used by these
-- components. Column names, types and defaults are BOINC's, so an existing
-- BOINC database works unchanged. `if not exists` lets the schema tool run
-- this file against an existing database without touching its data.

create table if not exists platform (
    id                      integer         not null auto_increment,
    create_time             integer         not null,
    name                    varchar(191)    not null,
    user_friendly_name      varchar(254)    not null,
    deprecated              tinyint         not null default 0,
    primary key (id)
) engine=InnoDB;

create table if not exists app (
    id                      integer         not null auto_increment,
    create_time             integer         not null,
    name                    varchar(191)    not null,
    min_version             integer         not null default 0,
    deprecated              smallint        not null default 0,
    user_friendly_name      varchar(254)    not null,
    homogeneous_redundancy  smallint        not null default 0,
    weight                  double          not null default 1,
    beta                    smallint        not null default 0,
    target_nresults         smallint        not null default 0,
    min_avg_pfc             double          not null default 1,
    host_scale_check        tinyint         not null default 0,
    homogeneous_app_version tinyint         not null default 0,
    non_cpu_intensive       tinyint         not null default 0,
    locality_scheduling     integer         not null default 0,
    n_size_classes          smallint        not null default 0,
    fraction_done_exact     tinyint         not null default 0,
    primary key (id)
) engine=InnoDB;

create table if not exists app_version (
    id                      integer         not null auto_increment,
    create_time             integer         not null,
    appid                   integer         not null,
    version_num             integer         not null,
    platformid              integer         not null,
    xml_doc                 mediumblob,
    min_core_version        integer         not null default 0,
    max_core_version        integer         not null default 0,
    deprecated              tinyint         not null default 0,
    plan_class              varchar(128)    not null default '',
    pfc_n                   double          not null default 0,
    pfc_avg                 double          not null default 0,
    pfc_scale               double          not null default 0,
    expavg_credit           double          not null default 0,
    expavg_time             double          not null default 0,
    beta                    tinyint         not null default 0,
    primary key (id)
) engine=InnoDB;

-- Badges and per-application credit (BOINC's columns). db_dump exports
-- badge_user/badge_team when `badge` has rows, and user_work/team_work
-- from credit_user/credit_team with <credit_by_app/>.
create table if not exists badge (
    id                      bigint unsigned not null auto_increment,
    create_time             double          not null,
    type                    tinyint         not null,
    name                    varchar(255)    not null,
    title                   varchar(255)    not null,
    description             varchar(255)    not null,
    image_url               varchar(255)    not null,
    level                   varchar(255)    not null,
    tags                    varchar(255)    not null,
    sql_rule                varchar(255)    not null,
    primary key (id)
) engine=InnoDB;

create table if not exists badge_user (
    badge_id                integer         not null,
    user_id                 integer         not null,
    create_time             double          not null,
    reassign_time           double          not null,
    unique key badge_user_unique (user_id, badge_id)
) engine=InnoDB;

create table if not exists badge_team (
    badge_id                integer         not null,
    team_id                 integer         not null,
    create_time             double          not null,
    reassign_time           double          not null,
    unique key badge_team_unique (team_id, badge_id)
) engine=InnoDB;

create table if not exists credit_user (
    userid                  integer         not null,
    appid                   integer         not null,
    njobs                   integer         not null,
    total                   double          not null,
    expavg                  double          not null,
    expavg_time             double          not null,
    credit_type             integer         not null,
    primary key (userid, appid, credit_type)
) engine=InnoDB;

create table if not exists credit_team (
    teamid                  integer         not null,
    appid                   integer         not null,
    njobs                   integer         not null,
    total                   double          not null,
    expavg                  double          not null,
    expavg_time             double          not null,
    credit_type             integer         not null,
    primary key (teamid, appid, credit_type)
) engine=InnoDB;

create table if not exists user (
    id                      integer         not null auto_increment,
    create_time             integer         not null,
    email_addr              varchar(191)    not null,
    name                    varchar(191),
    authenticator           varchar(191),
    country                 varchar(254),
    postal_code             varchar(254),
    total_credit            double          not null,
    expavg_credit           double          not null,
    expavg_time             double          not null,
    global_prefs            blob,
    project_prefs           blob,
    teamid                  integer         not null,
    venue                   varchar(254)    not null,
    url                     varchar(254),
    send_email              smallint        not null,
    show_hosts              smallint        not null,
    posts                   smallint        not null,
    seti_id                 integer         not null,
    seti_nresults           integer         not null,
    seti_last_result_time   integer         not null,
    seti_total_cpu          double          not null,
    signature               varchar(254),
    has_profile             smallint        not null,
    cross_project_id        varchar(254)    not null,
    passwd_hash             varchar(254)    not null,
    email_validated         smallint        not null,
    donated                 smallint        not null,
    login_token             char(32)        not null default '',
    login_token_time        double          not null default 0,
    previous_email_addr     varchar(254)    not null default '',
    email_addr_change_time  double          not null default 0,
    primary key (id)
) engine=InnoDB;

create table if not exists team (
    id                      integer         not null auto_increment,
    create_time             integer         not null,
    userid                  integer         not null,
    name                    varchar(191)    not null,
    name_lc                 varchar(254),
    url                     varchar(254),
    type                    integer         not null,
    name_html               varchar(254),
    description             text,
    nusers                  integer         not null,
    country                 varchar(254),
    total_credit            double          not null default 0.0,
    expavg_credit           double          not null default 0.0,
    expavg_time             double          not null,
    seti_id                 integer         not null default 0,
    ping_user               integer         not null default 0,
    ping_time               integer unsigned not null default 0,
    joinable                tinyint         not null default 1,
    mod_time                timestamp default current_timestamp on update current_timestamp,
    primary key (id)
) engine=InnoDB;

create table if not exists host (
    id                      integer         not null auto_increment,
    create_time             integer         not null,
    userid                  integer         not null,
    rpc_seqno               integer         not null,
    rpc_time                integer         not null,
    total_credit            double          not null,
    expavg_credit           double          not null,
    expavg_time             double          not null,
    timezone                integer         not null,
    domain_name             varchar(254),
    serialnum               varchar(254),
    last_ip_addr            varchar(254),
    nsame_ip_addr           integer         not null,
    on_frac                 double          not null,
    connected_frac          double          not null,
    active_frac             double          not null,
    cpu_efficiency          double          not null,
    duration_correction_factor double       not null,
    p_ncpus                 integer         not null,
    p_vendor                varchar(254),
    p_model                 varchar(254),
    p_fpops                 double          not null,
    p_iops                  double          not null,
    p_membw                 double          not null,
    os_name                 varchar(254),
    os_version              varchar(254),
    m_nbytes                double          not null,
    m_cache                 double          not null,
    m_swap                  double          not null,
    d_total                 double          not null,
    d_free                  double          not null,
    d_boinc_used_total      double          not null,
    d_boinc_used_project    double          not null,
    d_boinc_max             double          not null,
    n_bwup                  double          not null,
    n_bwdown                double          not null,
    credit_per_cpu_sec      double          not null,
    venue                   varchar(254)    not null,
    nresults_today          integer         not null,
    avg_turnaround          double          not null,
    host_cpid               varchar(254),
    external_ip_addr        varchar(254),
    max_results_day         integer         not null,
    error_rate              double          not null default 0,
    product_name            varchar(254)    not null,
    gpu_active_frac         double          not null,
    p_ngpus                 integer         not null,
    p_gpu_fpops             double          not null,
    misc                    text            not null default '',
    primary key (id)
) engine=InnoDB;

create table if not exists user_deleted (
    userid                  integer         not null,
    public_cross_project_id varchar(254)    not null,
    create_time             double          not null,
    primary key (userid)
) engine=InnoDB;

create table if not exists host_deleted (
    hostid                  integer         not null,
    public_cross_project_id varchar(254)    not null,
    create_time             double          not null,
    primary key (hostid)
) engine=InnoDB;

create table if not exists consent (
    id                      integer         not null auto_increment,
    userid                  integer         not null,
    consent_type_id         integer         not null,
    consent_time            integer         not null,
    consent_flag            tinyint         not null,
    consent_not_required    tinyint         not null,
    source                  varchar(255)    not null,
    primary key (id)
) engine=InnoDB;

create table if not exists consent_type (
    id                      integer         not null auto_increment,
    shortname               varchar(191)    not null,
    description             varchar(255)    not null,
    enabled                 integer         not null,
    project_specific        integer         not null,
    privacypref             integer         not null,
    primary key (id)
) engine=InnoDB;

-- Ours (not in BOINC): who changed which consent type, what and when.
create table if not exists consent_type_audit (
    id                      integer         not null auto_increment,
    change_time             integer         not null,
    actor                   varchar(191)    not null,
    consent_type_id         integer         not null,
    shortname               varchar(191)    not null,
    action                  varchar(64)     not null,
    old_value               varchar(255)    not null default '',
    new_value               varchar(255)    not null default '',
    primary key (id),
    index cta_type (consent_type_id, id)
) engine=InnoDB;

-- The user's current consent state per type. BOINC's view keeps every row
-- for which no later consent_time exists, so two rows in the same second
-- both count as latest; we break that tie by id (the later insert wins).
create or replace view latest_consent as
select c.userid, c.consent_type_id, c.consent_flag
  from consent c
 where not exists (
       select 1 from consent f
        where f.userid = c.userid
          and f.consent_type_id = c.consent_type_id
          and (f.consent_time > c.consent_time
               or (f.consent_time = c.consent_time and f.id > c.id)));

-- Ours (not in BOINC): every distinct terms-of-use text the project has
-- served, stored once and keyed by its SHA-256, so a consent row can say
-- exactly which text was accepted. BOINC's PHP code never reads these.
create table if not exists terms_version (
    id                      integer         not null auto_increment,
    sha256                  char(64)        not null,
    terms                   mediumtext      not null,
    first_seen              integer         not null,
    primary key (id),
    unique key terms_sha256 (sha256)
) engine=InnoDB;

-- Ours: the terms version an ENROLL consent row (written by create_account)
-- accepted. A side table, so BOINC's `consent` columns stay unchanged.
create table if not exists consent_terms (
    consent_id              integer         not null,
    terms_version_id        integer         not null,
    primary key (consent_id),
    index consent_terms_version (terms_version_id)
) engine=InnoDB;

-- Ours: boinc-rpc's per-client abuse counters (failed logins, account
-- creations), shared by every boinc-rpc instance of the project, so the
-- limits hold behind a load balancer and across restarts. One row per
-- (kind, client address: IPv4, or an IPv6 /64) while its fixed window runs:
-- `used` = attempts counted plus attempts in progress, `refused` = attempts
-- turned away in this window. Rows past `window_end` mean nothing and are
-- deleted by the servers in small batches (crates/db/src/rate_limit.rs).
create table if not exists rpc_limit (
    kind                    tinyint unsigned not null,
    client                  varbinary(16)   not null,
    window_end              bigint          not null,
    used                    integer         not null,
    refused                 integer         not null default 0,
    primary key (kind, client),
    index rpc_limit_window_end (window_end)
) engine=InnoDB;

-- Ours: one row per boinc-rpc transaction that has no row of its own to
-- find it by (am_set_info's profile changes), written in that transaction.
-- When the connection breaks during COMMIT, the server may or may not have
-- committed; the token's presence says which, so the caller is told the
-- truth (crates/db/src/commit.rs). Rows older than an hour mean nothing
-- and are deleted by the servers in small batches.
create table if not exists rpc_commit (
    token                   binary(16)      not null,
    create_time             bigint          not null,
    primary key (token),
    index rpc_commit_time (create_time)
) engine=InnoDB;

-- BOINC's one-time tokens (password reset, account deletion, ...), as
-- upstream defines them; `boinc-ops retention purge` removes expired ones.
create table if not exists token (
    token                   varchar(64)     not null,
    userid                  integer         not null,
    type                    char            not null,
    create_time             integer         not null,
    expire_time             integer,
    primary key (token)
) engine=InnoDB;

-- Ours: what admins did to an account on a data-subject request (export,
-- erase, viewing it on the ops page). Only the account's id, never its
-- personal data, so the rows may outlive the account as the record that
-- the request was answered.
create table if not exists account_audit (
    id                      integer         not null auto_increment,
    action_time             integer         not null,
    actor                   varchar(191)    not null,
    userid                  integer         not null,
    action                  varchar(32)     not null,
    mode                    varchar(16)     not null default '',
    primary key (id),
    index account_audit_user (userid, id)
) engine=InnoDB;
