-- Predefined consent types. Idempotent: a type that already exists (by
-- shortname) is left as the project set it.
insert into consent_type (shortname, description, enabled, project_specific, privacypref)
select 'ENROLL', 'General terms-of-use for this BOINC project.', 0, 0, 0
 where not exists (select 1 from consent_type where shortname = 'ENROLL');
insert into consent_type (shortname, description, enabled, project_specific, privacypref)
select 'STATSEXPORT', 'Do you consent to exporting your data to BOINC statistics aggregation Web sites?', 0, 0, 1
 where not exists (select 1 from consent_type where shortname = 'STATSEXPORT');
