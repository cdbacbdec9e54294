"""What the screen calls things: the labels and colours its page and charts show.

Categories and statuses come from the one vocabulary (:mod:`core.vocabulary`); the rest
are the screen's own words for the kinds of party organisations, service points and sources.
"""

from __future__ import annotations

from core.vocabulary import CASE_STATES, CATEGORIES, STATUSES
from gis.notifications.models import DINGTALK, IN_APP, SMS

# the page's legend and labels, from the one vocabulary (core.vocabulary)
CATEGORY_LABELS = {c.code: c.label_zh for c in CATEGORIES}
CATEGORY_COLOURS = {c.code: c.colour for c in CATEGORIES}
STATUS_LABELS = {s.code: s.label_zh for s in STATUSES}
CASE_STATE_LABELS = {s.code: s.label_zh for s in CASE_STATES}
PARTY_KIND_LABELS = {
    "party_committee": "社区党委", "grid_branch": "网格党支部",
    "property_branch": "物业党支部", "enterprise_branch": "企业党支部",
}
SERVICE_LABELS = {"service": "社区服务", "commerce": "商业", "culture": "文娱"}
SOURCE_LABELS = {"camera": "摄像头 camera", "sensor": "传感器 sensor", "resident": "居民 resident", "staff": "工作人员 staff"}
CHANNEL_LABELS = {IN_APP: "站内 in-app", DINGTALK: "钉钉 DingTalk", SMS: "短信 SMS"}
