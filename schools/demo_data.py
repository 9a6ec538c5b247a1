"""The demo's data: Vietnamese names and places (schools.demo uses them; the comments are in
transcripts/demo_data.py).

Data, not interface text: the names are what a Lào Cai school would write.
"""

from __future__ import annotations

from dataclasses import dataclass

from .choices import Sex

# --- Names, places -------------------------------------------------------------------------------

KINH_FAMILY = [
    *["Nguyễn"] * 8,
    *["Trần"] * 3,
    *["Lê"] * 3,
    *["Phạm"] * 2,
    *["Hoàng"] * 2,
    "Vũ",
    "Vũ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
]
KINH_MIDDLE = {
    Sex.MALE: ["Văn", "Văn", "Đức", "Minh", "Quốc", "Hữu", "Thành", "Gia", "Anh", "Công", "Trung", "Bảo"],
    Sex.FEMALE: ["Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Minh", "Phương", "Khánh", "Bảo", "Thùy"],
}
KINH_GIVEN = {
    Sex.MALE: [
        "An",
        "Bình",
        "Cường",
        "Dũng",
        "Đạt",
        "Đức",
        "Hải",
        "Hiếu",
        "Hoàng",
        "Huy",
        "Hùng",
        "Khánh",
        "Khoa",
        "Kiên",
        "Lâm",
        "Long",
        "Minh",
        "Nam",
        "Nghĩa",
        "Phong",
        "Phúc",
        "Quân",
        "Quang",
        "Sơn",
        "Tài",
        "Thắng",
        "Thành",
        "Trung",
        "Tùng",
        "Việt",
        "Vinh",
    ],
    Sex.FEMALE: [
        "Anh",
        "Chi",
        "Diệp",
        "Dung",
        "Giang",
        "Hà",
        "Hằng",
        "Hạnh",
        "Hoa",
        "Hương",
        "Huyền",
        "Lan",
        "Linh",
        "Loan",
        "Mai",
        "My",
        "Ngân",
        "Ngọc",
        "Nhung",
        "Oanh",
        "Phương",
        "Quỳnh",
        "Thảo",
        "Trang",
        "Trâm",
        "Uyên",
        "Vân",
        "Yến",
    ],
}


@dataclass(frozen=True)
class Community:
    """An ethnic group of Lào Cai, with its usual family names, middle names, given names, birthplaces."""

    ethnicity: str
    family: tuple[str, ...]
    middle: dict[int, tuple[str, ...]]
    given: dict[int, tuple[str, ...]]
    places: tuple[str, ...]


MINORITIES = [
    Community(
        "H'Mông",
        ("Giàng", "Sùng", "Thào", "Vàng", "Lù", "Mùa"),
        {Sex.MALE: ("A", "Seo", "Văn"), Sex.FEMALE: ("Thị",)},
        {
            Sex.MALE: ("Páo", "Sử", "Chứ", "Dế", "Pháy", "Lềnh"),
            Sex.FEMALE: ("Mỷ", "Dợ", "Sính", "Pằng", "Máy"),
        },
        (
            "Xã Lùng Phình, huyện Bắc Hà, tỉnh Lào Cai",
            "Xã Tả Van, thị xã Sa Pa, tỉnh Lào Cai",
            "Xã Pha Long, huyện Mường Khương, tỉnh Lào Cai",
            "Xã Sán Chải, huyện Si Ma Cai, tỉnh Lào Cai",
        ),
    ),
    Community(
        "Dao",
        ("Tẩn", "Phàn", "Triệu", "Bàn", "Lý"),
        {Sex.MALE: ("Láo", "Văn"), Sex.FEMALE: ("Thị", "Tả")},
        {Sex.MALE: ("Lở", "Tả", "Chàn", "Phú", "Dền"), Sex.FEMALE: ("Mẩy", "Sứ", "Chạn", "Mây")},
        (
            "Xã Tả Phìn, thị xã Sa Pa, tỉnh Lào Cai",
            "Xã Nậm Xé, huyện Văn Bàn, tỉnh Lào Cai",
            "Xã Bản Xèo, huyện Bát Xát, tỉnh Lào Cai",
        ),
    ),
    Community(
        "Tày",
        ("Hoàng", "Nông", "La", "Lương"),
        {Sex.MALE: ("Văn", "Đức"), Sex.FEMALE: ("Thị",)},
        {s: tuple(names) for s, names in KINH_GIVEN.items()},
        (
            "Xã Cam Cọn, huyện Bảo Yên, tỉnh Lào Cai",
            "Xã Xuân Quang, huyện Bảo Thắng, tỉnh Lào Cai",
            "Xã Khánh Yên Hạ, huyện Văn Bàn, tỉnh Lào Cai",
        ),
    ),
    Community(
        "Giáy",
        ("Lò", "Vàng", "Hoàng"),
        {Sex.MALE: ("Văn",), Sex.FEMALE: ("Thị",)},
        {s: tuple(names) for s, names in KINH_GIVEN.items()},
        (
            "Xã Quang Kim, huyện Bát Xát, tỉnh Lào Cai",
            "Xã Mường Vi, huyện Bát Xát, tỉnh Lào Cai",
            "Xã Bản Vược, huyện Bát Xát, tỉnh Lào Cai",
        ),
    ),
]
# As written on birth certificates, i.e. with the districts in force before July 2025.
KINH_PLACES = [
    "Phường Cốc Lếu, thành phố Lào Cai, tỉnh Lào Cai",
    "Phường Kim Tân, thành phố Lào Cai, tỉnh Lào Cai",
    "Phường Duyên Hải, thành phố Lào Cai, tỉnh Lào Cai",
    "Phường Bắc Lệnh, thành phố Lào Cai, tỉnh Lào Cai",
    "Phường Pom Hán, thành phố Lào Cai, tỉnh Lào Cai",
    "Phường Bình Minh, thành phố Lào Cai, tỉnh Lào Cai",
    "Phường Sa Pa, thị xã Sa Pa, tỉnh Lào Cai",
    "Thị trấn Phố Lu, huyện Bảo Thắng, tỉnh Lào Cai",
    "Thị trấn Phố Ràng, huyện Bảo Yên, tỉnh Lào Cai",
    "Xã Gia Phú, huyện Bảo Thắng, tỉnh Lào Cai",
]
STREETS = ["Hoàng Liên", "Trần Hưng Đạo", "Nguyễn Huệ", "Hồng Hà", "Hoàng Sào", "Minh Khai", "Điện Biên"]
WARDS = ["Cốc Lếu", "Kim Tân", "Duyên Hải", "Bắc Lệnh", "Pom Hán", "Bình Minh", "Cam Đường"]
