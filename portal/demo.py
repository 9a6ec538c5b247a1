"""The demo province `make run` shows: a department, two divisions, four schools, a user per role.

The province only: each school's year (classes, students, assessments) is seeded by the apps
above, orchestrated by registry/demo.py (`manage.py seed_demo`), since the portal imports none of
them (design.md §2). Idempotent: running it again changes nothing (but gives a TOTP
authenticator to any demo account that newly needs one). Demo accounts share one password,
printed by `make run`; those who must log in with a second factor
(permissions.requires_two_factor: whoever grants roles, signs, or reads beyond one class) get a
TOTP authenticator whose current code `make totp u=<username>` (`manage.py demo_totp <username>`)
prints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .choices import DivisionKind, Role, SchoolLevel
from .db import connection
from .models import Department, Division, RoleAssignment, School, User
from .provisioning import SchoolSpec, school_provision
from .services import department_admin_bootstrap, role_assignment_grant, user_create

DEMO_PASSWORD = "hocba-demo-2026"  # noqa: S105 - a published demo password, not a secret

DEPARTMENT = {"code": "10", "name": "Sở Giáo dục và Đào tạo Lào Cai", "place_name": "Lào Cai"}
DIVISIONS = [
    ("pgd-lc", "Phòng Giáo dục và Đào tạo thành phố Lào Cai", DivisionKind.DISTRICT_OFFICE),
    ("p-camduong", "UBND phường Cam Đường", DivisionKind.COMMUNE),
]
SCHOOLS = [
    # code, name, levels, division code, address
    ("th-kimdong", "Trường Tiểu học Kim Đồng", (SchoolLevel.PRIMARY,), "pgd-lc", "Phường Cốc Lếu, Lào Cai"),
    (
        "thcs-lqd",
        "Trường THCS Lê Quý Đôn",
        (SchoolLevel.LOWER_SECONDARY,),
        "p-camduong",
        "Phường Cam Đường, Lào Cai",
    ),
    ("thpt-so1", "Trường THPT số 1 Lào Cai", (SchoolLevel.UPPER_SECONDARY,), "", "Phường Duyên Hải, Lào Cai"),
    ("gdtx-lc", "Trung tâm GDNN-GDTX Lào Cai", (SchoolLevel.CONTINUING,), "", "Phường Bắc Lệnh, Lào Cai"),
]


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    role: str
    scope: str = ""  # division or school code; empty for the department
    is_manager: bool = False
    data_access: bool = False
    # A contract that ends: the role's last day is this many days after the demo is made.
    ends_in_days: int | None = None


DEMO_USERS = [
    DemoUser("so.quantri", "Nguyễn Văn Quản", Role.DEPARTMENT_ADMIN),
    DemoUser("so.chuyenvien", "Trần Thị Minh Hạnh", Role.DEPARTMENT_OFFICER, data_access=True),
    DemoUser("phong.truongphong", "Lê Đức Thắng", Role.DIVISION_OFFICER, "pgd-lc", is_manager=True),
    DemoUser("phong.chuyenvien", "Phạm Thu Trang", Role.DIVISION_OFFICER, "pgd-lc"),
    DemoUser("phuong.canbo", "Hoàng Văn Sơn", Role.DIVISION_OFFICER, "p-camduong", is_manager=True),
    # Primary school
    DemoUser("th.giaovu", "Vũ Thị Lan", Role.SCHOOL_ADMIN, "th-kimdong"),
    DemoUser("th.hieutruong", "Đặng Quốc Bảo", Role.PRINCIPAL, "th-kimdong"),
    DemoUser("th.phohieutruong", "Bùi Thị Thanh Hương", Role.VICE_PRINCIPAL, "th-kimdong"),
    DemoUser("th.gvcn", "Ngô Thị Mai", Role.HOMEROOM_TEACHER, "th-kimdong"),
    DemoUser("th.gvbm", "Đỗ Văn Hùng", Role.SUBJECT_TEACHER, "th-kimdong"),
    # Lower secondary
    DemoUser("thcs.giaovu", "Lý Thị Hồng", Role.SCHOOL_ADMIN, "thcs-lqd"),
    DemoUser("thcs.hieutruong", "Trịnh Văn Long", Role.PRINCIPAL, "thcs-lqd"),
    DemoUser("thcs.phohieutruong", "Mai Thị Ngọc", Role.VICE_PRINCIPAL, "thcs-lqd"),
    DemoUser("thcs.gvcn", "Phan Thị Thu Hà", Role.HOMEROOM_TEACHER, "thcs-lqd"),
    DemoUser("thcs.gvbm", "Hồ Minh Tuấn", Role.SUBJECT_TEACHER, "thcs-lqd"),
    # Upper secondary
    DemoUser("thpt.giaovu", "Cao Thị Yến", Role.SCHOOL_ADMIN, "thpt-so1"),
    DemoUser("thpt.hieutruong", "Dương Văn Khải", Role.PRINCIPAL, "thpt-so1"),
    DemoUser("thpt.phohieutruong", "Tạ Thị Bích", Role.VICE_PRINCIPAL, "thpt-so1"),
    DemoUser("thpt.gvcn", "Lưu Thị Kim Oanh", Role.HOMEROOM_TEACHER, "thpt-so1"),
    DemoUser("thpt.gvbm", "Vương Đình Nam", Role.SUBJECT_TEACHER, "thpt-so1"),
    # Continuing education centre
    DemoUser("gdtx.giaovu", "Kiều Thị Duyên", Role.SCHOOL_ADMIN, "gdtx-lc"),
    DemoUser("gdtx.giamdoc", "Quách Văn Thành", Role.PRINCIPAL, "gdtx-lc"),
    DemoUser("gdtx.phogiamdoc", "Đinh Thị Loan", Role.VICE_PRINCIPAL, "gdtx-lc"),
    DemoUser("gdtx.gvcn", "Hà Thị Nguyệt", Role.HOMEROOM_TEACHER, "gdtx-lc"),
    # A visiting teacher who teaches in two schools: one person, two memberships.
    # A visiting teacher on a semester's contract at the centre (issue 14): his classes there are
    # on his home page with the contract's last day, and on the centre's hand-over page.
    DemoUser("gv.thinhgiang", "Lò Văn Páo", Role.SUBJECT_TEACHER, "gdtx-lc", ends_in_days=20),
    DemoUser("gv.thinhgiang", "Lò Văn Páo", Role.SUBJECT_TEACHER, "thpt-so1"),
]


def _email(username: str) -> str:
    return f"{username.replace('.', '_')}@demo.hocba.local"


@transaction.atomic
def demo_province_seed(*, stdout=None) -> bool:
    """Create the demo province if it is not there. Returns False when it already was."""
    connection.set_schema_to_public()
    if Department.objects.exists():
        # A demo made before a rule asked more accounts for a second factor (homeroom teachers,
        # division managers, data-access holders) gets their authenticators now.
        _two_factor_seed(User.objects.filter(username__in={u.username for u in DEMO_USERS}))
        return False
    Department.objects.create(**DEPARTMENT)
    divisions = {
        code: Division.objects.create(code=code, name=name, kind=kind) for code, name, kind in DIVISIONS
    }
    schools: dict[str, School] = {}
    for code, name, levels, division_code, address in SCHOOLS:
        spec = SchoolSpec(code=code, name=name, levels=levels, division_code=division_code, address=address)
        schools[code], _ = school_provision(actor=None, spec=spec, division=divisions.get(division_code))

    # The operator is created first and grants everyone else, as it would happen for real.
    operator_spec = DEMO_USERS[0]
    operator = user_create(
        actor=None,
        username=operator_spec.username,
        full_name=operator_spec.full_name,
        email=_email(operator_spec.username),
        password=DEMO_PASSWORD,
    )
    department_admin_bootstrap(user=operator)
    users = {operator.username: operator}
    for demo_user in DEMO_USERS[1:]:
        user = users.get(demo_user.username)
        if user is None:
            user = users[demo_user.username] = user_create(
                actor=operator,
                username=demo_user.username,
                full_name=demo_user.full_name,
                email=_email(demo_user.username),
                password=DEMO_PASSWORD,
            )
        role_assignment_grant(
            actor=operator,
            user=user,
            role=demo_user.role,
            division=divisions.get(demo_user.scope),
            school=schools.get(demo_user.scope),
            is_manager=demo_user.is_manager,
            data_access=demo_user.data_access,
            valid_until=None
            if demo_user.ends_in_days is None
            else timezone.localdate() + dt.timedelta(days=demo_user.ends_in_days),
        )
    _two_factor_seed(users.values())
    return True


def demo_schools() -> list[School]:
    """The demo province's schools, in the order they were made."""
    return list(School.objects.filter(code__in=[code for code, *_ in SCHOOLS]).order_by("pk"))


def demo_users() -> dict[str, User]:
    """The demo accounts by username (the schools' demo seed looks its teachers up in it)."""
    return {u.username: u for u in User.objects.filter(username__in={d.username for d in DEMO_USERS})}


def _two_factor_seed(users) -> None:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from .permissions import requires_two_factor

    for user in users:
        if requires_two_factor(user) and not Authenticator.objects.filter(user=user).exists():
            TOTP.activate(user, generate_totp_secret())


def demo_totp_code(username: str) -> str:
    """The current TOTP code of a demo account (what its authenticator app would show)."""
    import time

    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
    from allauth.mfa.utils import decrypt

    authenticator = Authenticator.objects.get(user__username=username, type=Authenticator.Type.TOTP)
    secret = decrypt(authenticator.data["secret"])
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def demo_logins() -> list[tuple[str, str, str]]:
    """(username, name, roles) of every demo account, for `make run` to print."""
    rows = []
    for user in User.objects.filter(username__in={u.username for u in DEMO_USERS}).order_by("pk"):
        roles = ", ".join(
            f"{a.get_role_display()} · {a.scope_label}"
            for a in RoleAssignment.objects.current().filter(user=user).select_related("school", "division")
        )
        rows.append((user.username, user.full_name, roles))
    return rows
