"""A closed book stays closed (issue 9): once the principal has approved a class's year, its
scores, levels, comments, qualities and year results refuse change in the database itself, in
every school schema, through every path (views, import, admin, commands, raw SQL).

The one sanctioned window is the August re-assessment, between the approval (closed_at) and the
August close (summer_closed_at), and it admits only what the rules name:
- re-assessment results (transcripts_retake) only then, only for a student whose stored outcome
  is 'reassessment', and only in a subject the rules send to re-assessment (graded CĐ, or a year
  average below 5.0: transcripts.rules.reassessment.subjects_to_retake);
- a student's year (transcripts_studentyear): the conduct after summer re-training, for a student
  sent to it, and the results' 'after_summer' part, which the August close writes; nothing else.
After the August close nothing changes. The class's state is read with schools_book_state(),
which holds the class row FOR SHARE until the write commits, so a write cannot slip past a
concurrent approval (schools/migrations/0005_closed_book_guard.py).
"""

from django.db import migrations

SQL = """
-- Scores and levels (TT22/TT43 and TT27) and TT27 qualities: nothing once the year is approved.
CREATE OR REPLACE FUNCTION transcripts_assessment_guard() RETURNS trigger AS $$
DECLARE
    enrolment bigint;
BEGIN
    FOREACH enrolment IN ARRAY CASE TG_OP
        WHEN 'INSERT' THEN ARRAY[NEW.enrolment_id]
        WHEN 'DELETE' THEN ARRAY[OLD.enrolment_id]
        ELSE ARRAY[OLD.enrolment_id, NEW.enrolment_id] END
    LOOP
        IF (SELECT s.closed_at FROM schools_enrolment_book_state(enrolment) s) IS NOT NULL THEN
            RAISE EXCEPTION 'closed book: the year of enrolment % is approved, % refused on %',
                enrolment, TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_subjecttermscores_guard
    BEFORE INSERT OR UPDATE OR DELETE ON transcripts_subjecttermscores
    FOR EACH ROW EXECUTE FUNCTION transcripts_assessment_guard();
CREATE TRIGGER transcripts_primarysubjectassessment_guard
    BEFORE INSERT OR UPDATE OR DELETE ON transcripts_primarysubjectassessment
    FOR EACH ROW EXECUTE FUNCTION transcripts_assessment_guard();
CREATE TRIGGER transcripts_qualityassessment_guard
    BEFORE INSERT OR UPDATE OR DELETE ON transcripts_qualityassessment
    FOR EACH ROW EXECUTE FUNCTION transcripts_assessment_guard();

-- A student's year: frozen once approved, but for the August window's two sanctioned changes.
CREATE OR REPLACE FUNCTION transcripts_studentyear_guard() RETURNS trigger AS $$
DECLARE
    book record;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.enrolment_id IS DISTINCT FROM OLD.enrolment_id THEN
        RAISE EXCEPTION 'a student year belongs to its enrolment' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO book FROM schools_enrolment_book_state(CASE WHEN TG_OP = 'DELETE' THEN OLD.enrolment_id ELSE NEW.enrolment_id END);
    IF book.closed_at IS NULL THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP <> 'UPDATE' OR book.summer_closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'closed book: the year of enrolment % is approved, % refused on transcripts_studentyear',
            COALESCE(NEW.enrolment_id, OLD.enrolment_id), TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.conduct_term1 IS DISTINCT FROM OLD.conduct_term1
       OR NEW.conduct_term2 IS DISTINCT FROM OLD.conduct_term2
       OR NEW.conduct_year IS DISTINCT FROM OLD.conduct_year
       OR NEW.absences IS DISTINCT FROM OLD.absences
       OR NEW.homeroom_comment IS DISTINCT FROM OLD.homeroom_comment
       OR NEW.award_proposal IS DISTINCT FROM OLD.award_proposal
       OR NEW.ruleset IS DISTINCT FROM OLD.ruleset
       OR NEW.computed_at IS DISTINCT FROM OLD.computed_at
       OR (NEW.results - 'after_summer') IS DISTINCT FROM (OLD.results - 'after_summer') THEN
        RAISE EXCEPTION 'closed book: the year of enrolment % is approved, only the August re-assessment may change it',
            OLD.enrolment_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.conduct_after_training IS DISTINCT FROM OLD.conduct_after_training
       AND OLD.results ->> 'outcome' IS DISTINCT FROM 'summer_training' THEN
        RAISE EXCEPTION 'closed book: enrolment % was not sent to summer re-training', OLD.enrolment_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_studentyear_guard
    BEFORE INSERT OR UPDATE OR DELETE ON transcripts_studentyear
    FOR EACH ROW EXECUTE FUNCTION transcripts_studentyear_guard();

-- Re-assessment results: only in the August window, only for the subjects the rules name.
CREATE OR REPLACE FUNCTION transcripts_retake_guard() RETURNS trigger AS $$
DECLARE
    book record;
    row_enrolment bigint;
    results jsonb;
    subject_code text;
    year_value text;
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.enrolment_id IS DISTINCT FROM OLD.enrolment_id
                             OR NEW.subject_id IS DISTINCT FROM OLD.subject_id) THEN
        RAISE EXCEPTION 'a re-assessment result belongs to its student and subject'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    row_enrolment := CASE WHEN TG_OP = 'DELETE' THEN OLD.enrolment_id ELSE NEW.enrolment_id END;
    SELECT * INTO book FROM schools_enrolment_book_state(row_enrolment);
    IF book.closed_at IS NULL OR book.summer_closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'closed book: re-assessment results of enrolment % are written only between the year''s approval and the August close (% refused)',
            row_enrolment, TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    SELECT y.results INTO results FROM transcripts_studentyear y WHERE y.enrolment_id = NEW.enrolment_id;
    SELECT s.code INTO subject_code FROM schools_subject s WHERE s.id = NEW.subject_id;
    year_value := results -> 'subjects' -> subject_code ->> 'year';
    IF results ->> 'outcome' IS DISTINCT FROM 'reassessment' OR year_value IS NULL
       OR NOT (year_value = 'CĐ' OR (year_value <> 'Đ' AND year_value::numeric < 5.0)) THEN
        RAISE EXCEPTION 'closed book: enrolment % is not re-assessed in %', NEW.enrolment_id, subject_code
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_retake_guard
    BEFORE INSERT OR UPDATE OR DELETE ON transcripts_retake
    FOR EACH ROW EXECUTE FUNCTION transcripts_retake_guard();
"""

REVERSE = """
DROP TRIGGER IF EXISTS transcripts_retake_guard ON transcripts_retake;
DROP FUNCTION IF EXISTS transcripts_retake_guard();
DROP TRIGGER IF EXISTS transcripts_studentyear_guard ON transcripts_studentyear;
DROP FUNCTION IF EXISTS transcripts_studentyear_guard();
DROP TRIGGER IF EXISTS transcripts_qualityassessment_guard ON transcripts_qualityassessment;
DROP TRIGGER IF EXISTS transcripts_primarysubjectassessment_guard ON transcripts_primarysubjectassessment;
DROP TRIGGER IF EXISTS transcripts_subjecttermscores_guard ON transcripts_subjecttermscores;
DROP FUNCTION IF EXISTS transcripts_assessment_guard();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("transcripts", "0010_change_values_text"),
        ("schools", "0005_closed_book_guard"),
    ]
    operations = [migrations.RunSQL(SQL, REVERSE)]
