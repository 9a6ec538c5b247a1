"""The demo's teachers' comments (transcripts.demo uses them), by level and subject.

Moved from schools/demo_data.py with the assessments they fill (issue 10): the levels are
transcripts' vocabulary.
"""

from __future__ import annotations

from decimal import Decimal

from .choices import CommentLevel, PrimaryLevel, QualityLevel

# --- Comments ------------------------------------------------------------------------------------

PRIMARY_COMMENTS = {
    PrimaryLevel.T: [
        "Em học tốt, tích cực phát biểu.",
        "Hoàn thành tốt các bài tập, trình bày sạch đẹp.",
        "Tiếp thu bài nhanh, vận dụng tốt.",
        "Nắm vững kiến thức, làm bài cẩn thận.",
        "Em chăm chỉ, có nhiều tiến bộ.",
    ],
    PrimaryLevel.H: [
        "Em hoàn thành các nội dung của môn học.",
        "Em cần mạnh dạn phát biểu hơn.",
        "Em cần cẩn thận hơn khi làm bài.",
        "Nắm được kiến thức cơ bản, cần luyện tập thêm.",
        "Em có tiến bộ, cần cố gắng hơn nữa.",
    ],
    PrimaryLevel.C: [
        "Em chưa hoàn thành một số nội dung, cần được hỗ trợ thêm.",
        "Em cần luyện tập thêm ở nhà, mong gia đình quan tâm kèm cặp.",
        "Em tiếp thu còn chậm, cần cố gắng nhiều hơn.",
    ],
}
PRIMARY_SUBJECT_COMMENTS = {
    ("tieng_viet", PrimaryLevel.T): [
        "Đọc to, rõ ràng; viết đúng chính tả, chữ đẹp.",
        "Viết đoạn văn hay, dùng từ chính xác.",
    ],
    ("tieng_viet", PrimaryLevel.H): [
        "Đọc còn chậm, cần luyện viết đúng chính tả.",
        "Cần luyện thêm kĩ năng viết câu.",
    ],
    ("toan", PrimaryLevel.T): ["Tính toán nhanh, chính xác.", "Giải toán có lời văn tốt."],
    ("toan", PrimaryLevel.H): ["Cần cẩn thận hơn khi làm tính.", "Cần luyện thêm bài toán có lời văn."],
    ("ngoai_ngu_1", PrimaryLevel.T): ["Phát âm tốt, mạnh dạn giao tiếp."],
    ("ngoai_ngu_1", PrimaryLevel.H): ["Cần học thêm từ vựng, luyện phát âm."],
    ("gdtc", PrimaryLevel.T): ["Tích cực tham gia các hoạt động thể dục, thể thao."],
    ("am_nhac", PrimaryLevel.T): ["Hát đúng giai điệu, thuộc lời bài hát."],
    ("mi_thuat", PrimaryLevel.T): ["Vẽ đẹp, phối màu hài hòa."],
    ("hdtn", PrimaryLevel.T): ["Tích cực tham gia hoạt động của lớp, của trường."],
}
QUALITY_COMMENTS = {
    "qualities": {
        QualityLevel.T: [
            "Em ngoan, lễ phép, biết giúp đỡ bạn.",
            "Chăm chỉ, trung thực, có trách nhiệm với việc chung.",
        ],
        QualityLevel.D: [
            "Em biết vâng lời thầy cô, cần chủ động hơn.",
            "Có ý thức giữ gìn đồ dùng, cần chăm chỉ hơn.",
        ],
        QualityLevel.C: ["Em cần cố gắng rèn luyện thêm, thực hiện đúng nội quy lớp."],
    },
    "general": {
        QualityLevel.T: ["Tự giác học tập, hợp tác tốt với bạn.", "Biết tự giải quyết nhiệm vụ học tập."],
        QualityLevel.D: ["Biết hợp tác với bạn, cần mạnh dạn hơn.", "Có cố gắng tự học, cần chủ động hơn."],
        QualityLevel.C: ["Cần được hướng dẫn thêm khi tự học và làm việc nhóm."],
    },
    "specific": {
        QualityLevel.T: ["Vận dụng kiến thức tốt vào thực tế.", "Diễn đạt rõ ràng, mạch lạc."],
        QualityLevel.D: ["Có năng lực cơ bản, cần luyện tập thêm."],
        QualityLevel.C: ["Cần được hỗ trợ thêm."],
    },
}
PRIMARY_YEAR_COMMENTS = {
    "strong": [
        "Em ngoan, chăm học, hoàn thành tốt nhiệm vụ học tập và rèn luyện.",
        "Em học giỏi, tích cực tham gia các hoạt động, là tấm gương cho các bạn.",
    ],
    "average": [
        "Em ngoan, hoàn thành chương trình lớp học, cần mạnh dạn hơn trong học tập.",
        "Em có tiến bộ trong năm học, cần tiếp tục cố gắng.",
    ],
    "weak": ["Em cần cố gắng nhiều hơn, gia đình cần phối hợp kèm cặp em trong hè."],
}
SCORED_COMMENTS = [
    (
        Decimal("8.0"),
        [
            "Học tốt, nắm vững kiến thức.",
            "Tích cực, vận dụng kiến thức tốt.",
            "Có năng lực tốt, cần phát huy.",
        ],
    ),
    (
        Decimal("6.5"),
        [
            "Có tiến bộ, cần phát huy.",
            "Nắm được kiến thức cơ bản, làm bài khá.",
            "Chăm học, cần cẩn thận hơn.",
        ],
    ),
    (Decimal("5.0"), ["Cần cố gắng hơn.", "Nắm được kiến thức cơ bản, cần luyện tập thêm."]),
    (Decimal("0"), ["Kiến thức còn hổng, cần ôn tập thêm.", "Chưa đạt yêu cầu, cần cố gắng nhiều."]),
]
COMMENT_SUBJECT_COMMENTS = {
    CommentLevel.D: [
        "Tích cực tham gia các hoạt động.",
        "Hoàn thành các nội dung của môn học.",
        "Có ý thức tốt, tham gia đầy đủ.",
    ],
    CommentLevel.CD: ["Chưa hoàn thành đủ các nội dung, cần cố gắng hơn."],
}
SECONDARY_YEAR_COMMENTS = {
    "strong": [
        "Ngoan, lễ phép, có ý thức học tập tốt; tích cực tham gia các phong trào của lớp.",
        "Chăm chỉ, có năng lực, kết quả học tập tốt. Cần phát huy.",
    ],
    "average": [
        "Ngoan, có ý thức học tập; cần tích cực phát biểu xây dựng bài hơn.",
        "Có cố gắng trong học tập, cần tránh nói chuyện riêng trong giờ học.",
        "Thực hiện tốt nội quy, cần dành thêm thời gian tự học.",
    ],
    "weak": ["Học lực còn yếu ở một số môn, cần ôn tập trong hè và cố gắng nhiều hơn."],
    "absent": ["Nghỉ học quá nhiều buổi trong năm học, gia đình cần phối hợp với nhà trường."],
}
