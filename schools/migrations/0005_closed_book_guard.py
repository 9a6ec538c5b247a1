"""A closed book stays closed: once the principal has approved a class's year (closed_at), the
class, its enrolments and its teaching assignments refuse change in the database itself, in every
school schema, whatever path writes (a view, the import, the admin, a command, raw SQL).

- schools_book_state(class): the class's closed_at and summer_closed_at, read under FOR SHARE. A
  writer that checks the book through it holds the class row until it commits, so the principal's
  approval (SELECT ... FOR UPDATE on the same row) waits for it, and a write that comes after the
  approval waits for the approval and then sees it. Without the lock a write that read the class
  before the approval could commit after it (issue 9, finding 3). The transcripts app's triggers
  use the same function for scores, levels, comments and results.
- The class: its approval and the August close are never withdrawn or changed; once approved, its
  year, name, grade, rule set and homeroom teacher are fixed and it cannot be deleted; the August
  close needs the approval first.
- Enrolments and teaching assignments of an approved class: no INSERT, UPDATE or DELETE (an
  UPDATE that moves a row out of or into an approved class is refused on either side).
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION schools_book_state(p_class_id bigint,
    OUT closed_at timestamptz, OUT summer_closed_at timestamptz) AS $$
BEGIN
    SELECT c.closed_at, c.summer_closed_at INTO closed_at, summer_closed_at
        FROM schools_schoolclass c WHERE c.id = p_class_id FOR SHARE;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION schools_enrolment_book_state(p_enrolment_id bigint,
    OUT class_id bigint, OUT closed_at timestamptz, OUT summer_closed_at timestamptz) AS $$
BEGIN
    SELECT e.school_class_id INTO class_id FROM schools_enrolment e WHERE e.id = p_enrolment_id;
    SELECT s.closed_at, s.summer_closed_at INTO closed_at, summer_closed_at FROM schools_book_state(class_id) s;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION schools_schoolclass_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.closed_at IS NOT NULL THEN
            RAISE EXCEPTION 'closed book: class % is approved, it cannot be deleted', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.summer_closed_at IS NOT NULL AND NEW.closed_at IS NULL THEN
        RAISE EXCEPTION 'closed book: class % cannot close the August re-assessment before its year is approved',
            NEW.id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.closed_at IS NOT NULL THEN
        IF NEW.closed_at IS DISTINCT FROM OLD.closed_at
           OR NEW.closed_by_id IS DISTINCT FROM OLD.closed_by_id
           OR NEW.school_year_id IS DISTINCT FROM OLD.school_year_id
           OR NEW.name IS DISTINCT FROM OLD.name
           OR NEW.grade IS DISTINCT FROM OLD.grade
           OR NEW.ruleset IS DISTINCT FROM OLD.ruleset
           OR NEW.homeroom_teacher_id IS DISTINCT FROM OLD.homeroom_teacher_id THEN
            RAISE EXCEPTION 'closed book: class % is approved, its approval, year, name, grade, rules and homeroom teacher cannot change', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF OLD.summer_closed_at IS NOT NULL AND NEW.summer_closed_at IS DISTINCT FROM OLD.summer_closed_at THEN
            RAISE EXCEPTION 'closed book: class % has closed its August re-assessment', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER schools_schoolclass_guard
    BEFORE INSERT OR UPDATE OR DELETE ON schools_schoolclass
    FOR EACH ROW EXECUTE FUNCTION schools_schoolclass_guard();

-- Enrolments and teaching assignments: the same guard, on the class of the old and the new row.
CREATE OR REPLACE FUNCTION schools_class_rows_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND (SELECT s.closed_at FROM schools_book_state(OLD.school_class_id) s) IS NOT NULL THEN
        RAISE EXCEPTION 'closed book: class % is approved, its % rows cannot change (% refused)',
            OLD.school_class_id, TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND (SELECT s.closed_at FROM schools_book_state(NEW.school_class_id) s) IS NOT NULL THEN
        RAISE EXCEPTION 'closed book: class % is approved, its % rows cannot change (% refused)',
            NEW.school_class_id, TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER schools_enrolment_guard
    BEFORE INSERT OR UPDATE OR DELETE ON schools_enrolment
    FOR EACH ROW EXECUTE FUNCTION schools_class_rows_guard();
CREATE TRIGGER schools_teachingassignment_guard
    BEFORE INSERT OR UPDATE OR DELETE ON schools_teachingassignment
    FOR EACH ROW EXECUTE FUNCTION schools_class_rows_guard();
"""

REVERSE = """
DROP TRIGGER IF EXISTS schools_teachingassignment_guard ON schools_teachingassignment;
DROP TRIGGER IF EXISTS schools_enrolment_guard ON schools_enrolment;
DROP FUNCTION IF EXISTS schools_class_rows_guard();
DROP TRIGGER IF EXISTS schools_schoolclass_guard ON schools_schoolclass;
DROP FUNCTION IF EXISTS schools_schoolclass_guard();
DROP FUNCTION IF EXISTS schools_enrolment_book_state(bigint);
DROP FUNCTION IF EXISTS schools_book_state(bigint);
"""


class Migration(migrations.Migration):
    dependencies = [("schools", "0004_alter_enrolment_status")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
