"""The CTGDPT 2018 curriculum: which subjects each grade has and how each is assessed.

Regular-score counts follow TT22 (2 for subjects of 35 periods a year, 3 for more than 35 up to
70, 4 above); THPT electives count their learning topics (chuyên đề) as regular scores, hence 4.
The GDTX (TT43) list is the common core of the continuing-education programme; a centre adjusts
its own year's rows. Primary (TT27): which subjects have periodic tests, per domain.md §3.
"""

from __future__ import annotations

from .choices import SubjectKind

P, S, C = SubjectKind.PRIMARY, SubjectKind.SCORED, SubjectKind.COMMENT

SUBJECT_NAMES = {
    "tieng_viet": "Tiếng Việt",
    "toan": "Toán",
    "dao_duc": "Đạo đức",
    "tnxh": "Tự nhiên và Xã hội",
    "gdtc": "Giáo dục thể chất",
    "am_nhac": "Nghệ thuật (Âm nhạc)",
    "mi_thuat": "Nghệ thuật (Mĩ thuật)",
    "hdtn": "Hoạt động trải nghiệm",
    "ngoai_ngu_1": "Ngoại ngữ 1",
    "tin_hoc_cong_nghe": "Tin học và Công nghệ",
    "ls_dl": "Lịch sử và Địa lí",
    "khoa_hoc": "Khoa học",
    "ngu_van": "Ngữ văn",
    "gdcd": "Giáo dục công dân",
    "khtn": "Khoa học tự nhiên",
    "cong_nghe": "Công nghệ",
    "tin_hoc": "Tin học",
    "nghe_thuat": "Nghệ thuật",
    "hdtn_hn": "Hoạt động trải nghiệm, hướng nghiệp",
    "gddp": "Nội dung giáo dục của địa phương",
    "lich_su": "Lịch sử",
    "dia_li": "Địa lí",
    "gdqp_an": "Giáo dục quốc phòng và an ninh",
    "gdkt_pl": "Giáo dục kinh tế và pháp luật",
    "vat_li": "Vật lí",
    "hoa_hoc": "Hóa học",
    "sinh_hoc": "Sinh học",
}

# (code, kind, regular_count, has_test, has_mid_test)
_PRIMARY_1_2 = [
    ("tieng_viet", P, 0, True, False),
    ("toan", P, 0, True, False),
    ("dao_duc", P, 0, False, False),
    ("tnxh", P, 0, False, False),
    ("gdtc", P, 0, False, False),
    ("am_nhac", P, 0, False, False),
    ("mi_thuat", P, 0, False, False),
    ("hdtn", P, 0, False, False),
]
_PRIMARY_3 = [
    *_PRIMARY_1_2[:4],
    ("ngoai_ngu_1", P, 0, True, False),
    ("tin_hoc_cong_nghe", P, 0, True, False),
    *_PRIMARY_1_2[4:],
]
_PRIMARY_4_5 = [
    ("tieng_viet", P, 0, True, True),
    ("toan", P, 0, True, True),
    ("ngoai_ngu_1", P, 0, True, False),
    ("dao_duc", P, 0, False, False),
    ("ls_dl", P, 0, True, False),
    ("khoa_hoc", P, 0, True, False),
    ("tin_hoc_cong_nghe", P, 0, True, False),
    ("gdtc", P, 0, False, False),
    ("am_nhac", P, 0, False, False),
    ("mi_thuat", P, 0, False, False),
    ("hdtn", P, 0, False, False),
]


def _thcs(grade: int):
    return [
        ("ngu_van", S, 4, False, False),
        ("toan", S, 4, False, False),
        ("ngoai_ngu_1", S, 4, False, False),
        ("gdcd", S, 2, False, False),
        ("ls_dl", S, 4, False, False),
        ("khtn", S, 4, False, False),
        ("cong_nghe", S, 2 if grade <= 7 else 3, False, False),
        ("tin_hoc", S, 2, False, False),
        ("gdtc", C, 0, False, False),
        ("nghe_thuat", C, 0, False, False),
        ("hdtn_hn", C, 0, False, False),
        ("gddp", C, 0, False, False),
    ]


_THPT = [
    ("ngu_van", S, 4, False, False),
    ("toan", S, 4, False, False),
    ("ngoai_ngu_1", S, 4, False, False),
    ("lich_su", S, 3, False, False),
    ("gdqp_an", S, 2, False, False),
    ("dia_li", S, 4, False, False),
    ("vat_li", S, 4, False, False),
    ("hoa_hoc", S, 4, False, False),
    ("sinh_hoc", S, 4, False, False),
    ("gdtc", C, 0, False, False),
    ("hdtn_hn", C, 0, False, False),
    ("gddp", C, 0, False, False),
]

_GDTX = [
    ("ngu_van", S, 4, False, False),
    ("toan", S, 4, False, False),
    ("lich_su", S, 3, False, False),
    ("gdqp_an", S, 2, False, False),
    ("dia_li", S, 3, False, False),
    ("vat_li", S, 3, False, False),
    ("hoa_hoc", S, 3, False, False),
    ("sinh_hoc", S, 3, False, False),
    ("hdtn_hn", C, 0, False, False),
    ("gddp", C, 0, False, False),
]


def curriculum_for(grade: int, *, continuing: bool = False):
    """The subjects of a grade, as (code, kind, regular_count, has_test, has_mid_test)."""
    if grade <= 2:
        return _PRIMARY_1_2
    if grade == 3:
        return _PRIMARY_3
    if grade <= 5:
        return _PRIMARY_4_5
    if continuing:
        return _GDTX
    if grade <= 9:
        return _thcs(grade)
    return _THPT
