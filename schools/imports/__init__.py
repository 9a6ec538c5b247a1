"""Excel imports of a school's classes, students and teaching assignments: one workbook, three sheets.

The whole workbook is read and checked before anything is written, the way the CSV of schools is
(portal/provisioning.py): a file with any problem is refused with every problem listed as
(sheet, row, column, message), and nothing is written. A good file is applied in one
transaction. Importing the same file again changes nothing: rows equal to what is stored are
counted as unchanged and not saved.

Sheets (named exactly so; any may be absent, but not all):
- "Lop": ten_lop, khoi, gvcn
- "HocSinh": ma_hoc_sinh, ho_ten, gioi_tinh, ngay_sinh, so_dinh_danh, ma_tam, noi_sinh, dan_toc,
  quoc_tich, que_quan, noi_o, ho_ten_cha, ho_ten_me, nguoi_giam_ho, lop, stt
- "PhanCong": lop, mon, giao_vien

The package, by sub-domain:
- workbook: the file's layout (sheets, columns, limits), its problems, reading the cells;
- checks: the plan, every row of every sheet checked against the school's data;
- apply: who may import, writing the plan in one transaction, the report and the audit row;
- template: the workbook to fill in, with its guide.
"""

from schools.choices import XLSX_CONTENT_TYPE

from .apply import can_import_school_data, school_data_import
from .template import import_template
from .workbook import COLUMNS, MAX_BYTES, SchoolImportError
from .workbook import limits as import_limits

__all__ = [
    "COLUMNS",
    "MAX_BYTES",
    "XLSX_CONTENT_TYPE",
    "SchoolImportError",
    "can_import_school_data",
    "import_limits",
    "import_template",
    "school_data_import",
]
