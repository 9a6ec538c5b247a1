"""The workbook to fill in: the three sheets with their header and an example row, and a guide."""

from __future__ import annotations

import datetime as dt
from io import BytesIO

import openpyxl
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from ..curriculum import SUBJECT_NAMES
from ..exports import workbook_text_only
from .workbook import ASSIGNMENT_SHEET, CLASS_SHEET, COLUMNS, GUIDE_SHEET, MAX_ROWS, STUDENT_SHEET

EXAMPLES = {
    CLASS_SHEET: ("1A", 1, "gvcn.1a@truong.edu.vn"),
    STUDENT_SHEET: (
        "2520000001",
        "Nguyễn Văn An",
        "Nam",
        dt.date(2019, 3, 15),
        "001219012345",
        "",
        "Phường Ba Đình, Hà Nội",
        "Kinh",
        "Việt Nam",
        "Xã Đông Anh, Hà Nội",
        "Số 1 phố Điện Biên Phủ, phường Ba Đình, Hà Nội",
        "Nguyễn Văn Bình",
        "Trần Thị Cúc",
        "",
        "1A",
        1,
    ),
    ASSIGNMENT_SHEET: ("1A", "toan", "gv.toan@truong.edu.vn"),
}
WIDTHS = {
    "ten_lop": 12,
    "khoi": 8,
    "gvcn": 30,
    "ma_hoc_sinh": 16,
    "ho_ten": 26,
    "gioi_tinh": 10,
    "ngay_sinh": 13,
    "so_dinh_danh": 16,
    "ma_tam": 14,
    "noi_sinh": 28,
    "dan_toc": 10,
    "quoc_tich": 12,
    "que_quan": 28,
    "noi_o": 40,
    "ho_ten_cha": 24,
    "ho_ten_me": 24,
    "nguoi_giam_ho": 24,
    "lop": 10,
    "stt": 6,
    "mon": 24,
    "giao_vien": 30,
}
TEXT_COLUMNS = {"ten_lop", "ma_hoc_sinh", "so_dinh_danh", "ma_tam", "lop"}

# The guide is written in Vietnamese whatever the interface language: the template is a data
# exchange form of the Vietnamese school system, with Vietnamese column names, and every school
# must get the same file.
GUIDE_TITLE = "Mẫu nhập dữ liệu lớp, học sinh và phân công giảng dạy"
GUIDE_NOTES = [
    "Giữ nguyên tên các trang (Lop, HocSinh, PhanCong) và dòng tiêu đề; có thể bỏ trang không dùng.",
    "Xóa dòng ví dụ ở mỗi trang trước khi nhập.",
    "Tệp được kiểm tra toàn bộ trước khi ghi: nếu có lỗi, không dữ liệu nào được ghi.",
    "Nhập lại cùng một tệp không làm thay đổi gì; học sinh được cập nhật theo mã học sinh.",
    "Học sinh đang học lớp khác trong năm học không được chuyển lớp qua nhập tệp.",
]
GUIDE_COLUMNS = [
    ("Lop", "ten_lop", "Có", "Tên lớp trong năm học hiện tại, ví dụ 6A1."),
    ("Lop", "khoi", "Có", "Khối lớp, từ 1 đến 12, trong các cấp học của trường."),
    ("Lop", "gvcn", "Không", "Tên đăng nhập hoặc email của giáo viên chủ nhiệm (có vai trò trong trường)."),
    ("HocSinh", "ma_hoc_sinh", "Có", "Mã học sinh; học sinh đã có được cập nhật theo mã này."),
    ("HocSinh", "ho_ten", "Có", "Họ và tên như trong giấy khai sinh."),
    ("HocSinh", "gioi_tinh", "Có", "Nam hoặc Nữ."),
    ("HocSinh", "ngay_sinh", "Có", "Ngày sinh: ô kiểu ngày, hoặc chữ dạng dd/mm/yyyy (ví dụ 05/09/2015)."),
    ("HocSinh", "so_dinh_danh", "Không", "Số định danh cá nhân 12 chữ số; phải khớp năm sinh và giới tính."),
    ("HocSinh", "ma_tam", "Khi thiếu số định danh", "Mã tạm do Sở cấp cho học sinh chưa có số định danh."),
    ("HocSinh", "noi_sinh", "Không", "Nơi sinh."),
    ("HocSinh", "dan_toc", "Không", "Dân tộc."),
    ("HocSinh", "quoc_tich", "Không", "Quốc tịch (để trống: Việt Nam)."),
    ("HocSinh", "que_quan", "Không", "Quê quán."),
    ("HocSinh", "noi_o", "Không", "Nơi ở hiện nay."),
    ("HocSinh", "ho_ten_cha", "Không", "Họ tên cha."),
    ("HocSinh", "ho_ten_me", "Không", "Họ tên mẹ."),
    ("HocSinh", "nguoi_giam_ho", "Không", "Họ tên người giám hộ."),
    ("HocSinh", "lop", "Có", "Lớp của năm học hiện tại (đã có, hoặc khai ở trang Lop)."),
    ("HocSinh", "stt", "Không", "Số thứ tự trong lớp."),
    ("PhanCong", "lop", "Có", "Lớp của năm học hiện tại (đã có, hoặc khai ở trang Lop)."),
    ("PhanCong", "mon", "Có", "Mã môn (ví dụ toan, ngu_van) hoặc tên môn (ví dụ Toán, Ngữ văn)."),
    ("PhanCong", "giao_vien", "Có", "Tên đăng nhập hoặc email của giáo viên dạy môn đó."),
]


def _guide_write(guide) -> None:
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    guide.append([GUIDE_TITLE])
    guide["A1"].font = Font(bold=True, size=13)
    for note in GUIDE_NOTES:
        guide.append([note])
    guide.append([])
    guide.append(["Trang", "Cột", "Bắt buộc", "Ý nghĩa"])
    for cell in guide[guide.max_row]:
        cell.font, cell.fill = bold, fill
    for row in GUIDE_COLUMNS:
        guide.append(list(row))
    guide.append([])
    guide.append(["Mã môn", "Tên môn"])
    for cell in guide[guide.max_row]:
        cell.font, cell.fill = bold, fill
    for code, name in SUBJECT_NAMES.items():
        guide.append([code, name])
    for letter, width in zip("ABCD", (14, 36, 22, 80), strict=True):
        guide.column_dimensions[letter].width = width


def import_template() -> bytes:
    """The workbook to fill in: the three sheets with their header and one example row, and a guide."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    example = Font(italic=True, color="666666")
    for name, columns in COLUMNS.items():
        sheet = workbook.create_sheet(name)
        sheet.append(list(columns))
        sheet.append(list(EXAMPLES[name]))
        for index, column in enumerate(columns, start=1):
            letter = get_column_letter(index)
            sheet.column_dimensions[letter].width = WIDTHS[column]
            header = sheet.cell(row=1, column=index)
            header.font, header.fill = bold, fill
            cell = sheet.cell(row=2, column=index)
            cell.font = example
            # Codes typed as text keep their leading zeros (ID numbers start with 0).
            if column in TEXT_COLUMNS:
                sheet.column_dimensions[letter].number_format = "@"
                cell.number_format = "@"
            elif column == "ngay_sinh":
                sheet.column_dimensions[letter].number_format = "DD/MM/YYYY"
                cell.number_format = "DD/MM/YYYY"
            elif column == "gioi_tinh":
                sexes = DataValidation(type="list", formula1='"Nam,Nữ"', allow_blank=True)
                sheet.add_data_validation(sexes)
                sexes.add(f"{letter}2:{letter}{MAX_ROWS}")
        sheet.freeze_panes = "A2"
    _guide_write(workbook.create_sheet(GUIDE_SHEET))
    workbook_text_only(workbook)
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
