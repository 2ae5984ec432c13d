-- Indexes, uniqueness and guards. One statement each, in three forms only
-- (`alter table T add unique|index NAME (cols)`, `alter table T add
-- constraint NAME foreign key ...`, `create trigger NAME ...`): the schema
-- tool reads each, checks whether an equivalent index / foreign key /
-- trigger already exists (an upstream BOINC database has most of them under
-- other names) and runs only the missing ones, so an upgrade is idempotent.

alter table user add unique email_addr (email_addr);
alter table user add unique authenticator (authenticator);
alter table user add unique name (name);
alter table user add index ind_tid (teamid);
alter table user add index user_tot (total_credit);
alter table user add index user_avg (expavg_credit);
alter table user add index user_email_time (email_addr_change_time);
alter table user add index user_prev_email (previous_email_addr);

alter table team add unique name (name);
alter table team add index team_userid (userid);
alter table team add index team_tot (total_credit);
alter table team add index team_avg (expavg_credit);

alter table host add index host_user (userid);
alter table host add index host_tot (total_credit);
alter table host add index host_avg (expavg_credit);

alter table user_deleted add index user_deleted_create (create_time);
alter table host_deleted add index host_deleted_create (create_time);
alter table token add index token_expire (expire_time);

alter table consent add index userid_ctid_timestamp (userid, consent_type_id, consent_time);
alter table consent add index consent_timestamp (consent_time);
alter table consent add index flag_ctid (consent_flag, consent_type_id);

-- Upstream only indexes shortname; we enforce uniqueness.
alter table consent_type add unique consent_name_unique (shortname);

-- Consent types are never deleted: the foreign key protects types that
-- have consent rows, the trigger also covers a type with none yet.
alter table consent add constraint consent_type_fk foreign key (consent_type_id) references consent_type (id) on update cascade on delete restrict;
create trigger consent_type_no_delete before delete on consent_type for each row signal sqlstate '45000' set message_text = 'consent types cannot be deleted; disable the type instead';
