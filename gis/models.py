"""The ``onemap`` app's model registry: every model of every domain, imported from where it lives.

Django loads this module to find the app's models, and ``from gis.models import X`` names
any of them. The models themselves live in the domain packages: :mod:`gis.spatial.models`
(the spatial core), :mod:`gis.care.models`, :mod:`gis.incidents.models`,
:mod:`gis.party.models`, :mod:`gis.cases.models`, :mod:`gis.accounts.models`,
:mod:`gis.calendar.models`, :mod:`gis.notifications.models`, :mod:`gis.reports.models` and
:mod:`gis.open311.models`.
Domain modules import from each other, never from here.
"""

from gis.accounts.models import (
    ACCESS_ROLES,
    AccessLogEntry,
    AccessProfile,
    AccessToken,
    IdempotentRequest,
    LoginFailure,
)
from gis.calendar.models import CalendarOverride
from gis.cases.models import Case, CaseEvent, CaseTask, Department
from gis.care.models import (
    CareAlert,
    CareFault,
    CarePeriod,
    CareRuleState,
    CareSubject,
    CareSubjectPrivate,
    CareVisit,
    DeviceCredential,
    Gateway,
    Sensor,
    SensorEvent,
    SensorReject,
)
from gis.incidents.models import Incident, IncidentStatusChange, LiveEvent
from gis.notifications.models import Notification, NotificationAttempt
from gis.open311.models import Open311Key, Open311Request
from gis.party.models import PartyActivity, PartyOrganization
from gis.reports.models import Report, ReporterBan, ReportModeration
from gis.spatial.models import (
    SRID,
    Building,
    Camera,
    CameraHealth,
    DataLoad,
    Grid,
    GridWorker,
    NoParkingZone,
    ParkingSpot,
    PeopleCount,
    ServicePoint,
    Street,
    StreetNode,
    Synthetic,
)

__all__ = [
    "ACCESS_ROLES",
    "AccessLogEntry",
    "AccessProfile",
    "AccessToken",
    "Building",
    "CalendarOverride",
    "Camera",
    "CameraHealth",
    "CareAlert",
    "CareFault",
    "CarePeriod",
    "CareRuleState",
    "CareSubject",
    "CareSubjectPrivate",
    "CareVisit",
    "Case",
    "CaseEvent",
    "CaseTask",
    "DataLoad",
    "Department",
    "DeviceCredential",
    "Gateway",
    "Grid",
    "GridWorker",
    "IdempotentRequest",
    "Incident",
    "IncidentStatusChange",
    "LiveEvent",
    "LoginFailure",
    "NoParkingZone",
    "Notification",
    "NotificationAttempt",
    "Open311Key",
    "Open311Request",
    "ParkingSpot",
    "PeopleCount",
    "PartyActivity",
    "PartyOrganization",
    "Report",
    "ReportModeration",
    "ReporterBan",
    "SRID",
    "Sensor",
    "SensorEvent",
    "SensorReject",
    "ServicePoint",
    "Street",
    "StreetNode",
    "Synthetic",
]
