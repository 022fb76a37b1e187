"""Every component id, prefixed by its page (docs/conventions.md section 6)."""

from typing import Final

# shell
URL: Final = "shell-url"
BANNER: Final = "shell-banner"
NAVBAR: Final = "shell-navbar"
PRINCIPAL: Final = "shell-principal"

# ward board
WARD_SITE: Final = "ward-site"
WARD_SEARCH: Final = "ward-search"
WARD_GRID: Final = "ward-grid"
WARD_COUNT: Final = "ward-count"
WARD_ELSEWHERE: Final = "ward-elsewhere"
WARD_POLL: Final = "ward-poll"
WARD_VERSION: Final = "ward-version"
WARD_DEPARTURES: Final = "ward-departures"

# patient page
PATIENT_ID: Final = "patient-id"
PATIENT_DAY: Final = "patient-day"
PATIENT_LAYERS: Final = "patient-layers"
PATIENT_TIMELINE: Final = "patient-timeline"
PATIENT_WHY: Final = "patient-why"
PATIENT_LANES: Final = "patient-lanes"
PATIENT_BADGE: Final = "patient-badge"
PATIENT_BIOMARKERS: Final = "patient-biomarkers"
PATIENT_ENDPOINT: Final = "patient-endpoint"
PATIENT_LABS: Final = "patient-labs"
PATIENT_LABS_DOWNLOAD: Final = "patient-labs-download"
PATIENT_LABS_DOWNLOAD_BTN: Final = "patient-labs-download-btn"
PATIENT_URL: Final = "patient-url"

# cohort page
COHORT_FILTERS: Final = "cohort-filters"
COHORT_TABS: Final = "cohort-tabs"
COHORT_COUNT: Final = "cohort-count"
COHORT_URL: Final = "cohort-url"

# data page
DATA_UPLOAD: Final = "data-upload"
DATA_REPORT: Final = "data-report"
DATA_LOG: Final = "data-log"
