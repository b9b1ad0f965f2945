"""Request and response bodies of the event endpoints (feedback), and the records they become."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from services.core.events import FEEDBACK_KINDS, FeedbackKind
from services.serve.schemas import IntegralFloat, TmdbId

MAX_FEEDBACK_BATCH = 500

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128)]

EXAMPLE_FEEDBACK = {
    "events": [
        {
            "user_id": "anon-5f1c",
            "tmdb_id": 603,
            "kind": "like",
            "request_id": "9b2e41c0d3a84f52",
            "position": 3,
        },
        {"user_id": "anon-5f1c", "tmdb_id": 862, "kind": "rating", "value": 4.5},
    ]
}


# What _value_only_for_ratings enforces, said in the schema: a rating has a number, any other kind none.
VALUE_ONLY_FOR_RATINGS = {
    "anyOf": [
        {"properties": {"kind": {"const": "rating"}, "value": {"type": "number"}}, "required": ["value"]},
        {
            "properties": {
                "kind": {"enum": [k for k in FEEDBACK_KINDS if k != "rating"]},
                "value": {"type": "null"},
            }
        },
    ]
}


class FeedbackEventIn(BaseModel):
    """One thing a user did about a movie."""

    # strict: no true or "862" where the schema says integer or number.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=VALUE_ONLY_FOR_RATINGS)

    event_id: EventId | None = Field(
        None, description="A unique id (a UUID): retrying with the same id never stores the event twice"
    )
    user_id: UserId = Field(description="A pseudonymous user id (never an e-mail or a name)")
    tmdb_id: TmdbId = Field(description="A movie of the catalog")
    kind: FeedbackKind
    # validate_default: a rating without a value must fail here, naming the field.
    value: float | None = Field(
        None, ge=0.5, le=5, multiple_of=0.5, allow_inf_nan=False, validate_default=True,
        description="Stars, 0.5 to 5 in steps of 0.5: required for a rating, absent otherwise",
    )  # fmt: skip
    request_id: EventId | None = Field(None, description="The /recommend response this answers")
    position: Annotated[int, Field(ge=1, le=100), IntegralFloat] | None = Field(
        None, description="Where the movie was shown: 1 is first"
    )

    @field_validator("value")
    @classmethod
    def _value_only_for_ratings(cls, value: float | None, info: ValidationInfo) -> float | None:
        kind = info.data.get("kind")
        if kind == "rating" and value is None:
            raise ValueError("a rating needs a value (0.5 to 5 stars)")
        if kind is not None and kind != "rating" and value is not None:
            raise ValueError(f"only a rating has a value, not a {kind!r}")
        return value


class FeedbackIn(BaseModel):
    """1 to 500 feedback events."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_FEEDBACK]})

    events: list[FeedbackEventIn] = Field(min_length=1, max_length=MAX_FEEDBACK_BATCH)


class FeedbackAck(BaseModel):
    """What was taken: every event id, in request order, and how many were new."""

    accepted: int = Field(description="Events stored now")
    duplicates: int = Field(
        description="Events whose id was already accepted (acknowledged, not stored again)"
    )
    event_ids: list[str]
