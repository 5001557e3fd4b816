"""Data responsibility at the door: refuse columns that identify people, grade sensitivity.

Rules follow the IASC Operational Guidance on Data Responsibility in Humanitarian Action:
keep only what the purpose needs, never take in personal data for an aggregate forecast,
and give every dataset a sensitivity level (``low``, ``moderate``, ``high``, ``severe``).

Identifying columns (refused unless the user drops them explicitly)
-------------------------------------------------------------------
============== =========================================================================
kind           column names (any case and punctuation) or HXL hashtags
============== =========================================================================
person name    a ``name`` word with a person word: first, last, full, given, family,
               middle, person, respondent, beneficiary, informant, enumerator, head,
               household, hoh, father, mother, child, contact, caller; or surname
phone          phone, mobile, telephone, msisdn, whatsapp, cellphone
email          email, e-mail
identity no.   passport, national id, id number, id card, ssn, nin, progres id, case number
household GPS  gps or geopoint; latitude/longitude/coordinates with household, hh, home,
               house, respondent or beneficiary
HXL            ``#contact``, ``#beneficiary+name``, ``#respondent``, ``#geo+hh``
============== =========================================================================

Sensitivity rules (the dataset takes the highest that applies; a user may override, and the
override is recorded with its reason)
-----------------------------------------------------------------------------------------
* conflict-event counts and area-month covariates: ``low``;
* IDP counts at admin0/admin1: ``low``; at admin2: ``moderate``; finer: ``high``;
* origin-to-destination flows at admin1: ``moderate``; at admin2 or finer: ``high``
  (they reveal the routes people take);
* sex or age breakdowns raise the level by one step (admin2 with sex: ``high``).
"""

from __future__ import annotations

import re

from forecast._names import SENSITIVITY_LEVELS

_PERSON_WORDS = {
    "first", "last", "full", "given", "family", "middle", "person", "respondent",
    "beneficiary", "informant", "enumerator", "head", "household", "hoh", "father",
    "mother", "child", "contact", "caller",
}
_PHONE_WORDS = {"phone", "mobile", "telephone", "msisdn", "whatsapp", "cellphone", "tel"}
_ID_WORDS = {"passport", "ssn", "nin"}
_ID_PHRASES = ("nationalid", "idnumber", "idcard", "progresid", "casenumber", "passport")
_COORD_WORDS = {"latitude", "longitude", "lat", "lon", "lng", "coordinates", "coords", "location"}
_HOME_WORDS = {"household", "hh", "home", "house", "respondent", "beneficiary"}


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    return [w for w in re.split(r"[^0-9a-z]+", spaced.casefold()) if w]


def identifying_kind(column: str, hxl_tag: str | None = None) -> str | None:
    """Why ``column`` identifies people ('phone number', 'person name', ...), or None."""
    words = _words(column)
    joined = "".join(words)
    wordset = set(words)
    if hxl_tag:
        tag = hxl_tag.strip().casefold().replace(" ", "")
        if tag.startswith("#contact"):
            return "HXL #contact"
        if tag.startswith(("#beneficiary", "#respondent")) and "+name" in tag:
            return "HXL person name"
        if tag.startswith("#geo") and "+hh" in tag:
            return "HXL household location"
    if wordset & _PHONE_WORDS or "phonenumber" in joined:
        return "phone number"
    if "email" in joined:
        return "email address"
    if wordset & _ID_WORDS or any(p in joined for p in _ID_PHRASES):
        return "identity document number"
    if "name" in wordset and wordset & _PERSON_WORDS:
        return "person name"
    if joined in {"surname", "fullname", "firstname", "lastname", "givenname", "hohname"}:
        return "person name"
    if "gps" in wordset or "geopoint" in wordset or "geolocation" in wordset:
        return "GPS location"
    if wordset & _COORD_WORDS and wordset & _HOME_WORDS:
        return "household location"
    return None


def find_identifying(
    columns: list[str], hxl_tags: list[str] | None = None
) -> dict[str, str]:
    """Map each identifying column to why it identifies people."""
    tags = hxl_tags or [None] * len(columns)
    found = {}
    for col, tag in zip(columns, tags):
        why = identifying_kind(col, tag)
        if why:
            found[col] = why
    return found


def _step(level: str, steps: int = 1) -> str:
    i = min(SENSITIVITY_LEVELS.index(level) + steps, len(SENSITIVITY_LEVELS) - 1)
    return SENSITIVITY_LEVELS[i]


def assess_sensitivity(fmt: str, admin_level: int, fields: set[str]) -> tuple[str, list[str]]:
    """Sensitivity level of one ingested file and the rules that set it."""
    if fmt in {"acled", "table"}:
        return "low", ["aggregated context data (conflict-event counts, covariates)"]
    if fmt == "flows":
        if admin_level >= 2:
            level, why = "high", [f"origin-destination flows at admin{admin_level} reveal routes"]
        else:
            level, why = "moderate", [f"origin-destination flows at admin{admin_level}"]
    elif admin_level <= 1:
        level, why = "low", [f"IDP counts at admin{admin_level}"]
    elif admin_level == 2:
        level, why = "moderate", ["IDP counts at admin2"]
    else:
        level, why = "high", [f"IDP counts at admin{admin_level} (finer than district)"]
    if fields & {"males", "females"}:
        level = _step(level)
        why.append("sex breakdown")
    return level, why


def highest(levels: list[str]) -> str:
    """The most sensitive of ``levels`` ('low' when empty)."""
    return max(levels, key=SENSITIVITY_LEVELS.index, default="low")
