"""Rule: specs and flags are validated on creation, with errors naming the bad field;
defaults are OTP's."""

from __future__ import annotations

import math

import pykka
import pytest

from quotation.backoff import Backoff, Jitter
from supervisors import (
    ChildSpec,
    ChildType,
    Restart,
    SpecError,
    Strategy,
    Supervisor,
    SupervisorFlags,
    supervisor_child,
)
from tests.supervisors.scripted import ScriptedChild


def test_flags_default_to_otp_one_for_one_intensity_1_period_5() -> None:
    flags = SupervisorFlags()
    assert (flags.strategy, flags.intensity, flags.period) == (Strategy.ONE_FOR_ONE, 1, 5.0)


def test_child_spec_defaults_to_a_permanent_worker_with_5_seconds_to_shut_down() -> None:
    spec = ChildSpec(id="a", start=ScriptedChild)
    assert (spec.restart, spec.type, spec.shutdown) == (Restart.PERMANENT, ChildType.WORKER, 5.0)
    assert (spec.deadline, spec.backoff, spec.args, dict(spec.kwargs)) == (None, None, (), {})


def test_a_supervisor_child_waits_forever_to_shut_down_like_otp_infinity() -> None:
    spec = supervisor_child("sub", SupervisorFlags(), [])
    assert spec.type is ChildType.SUPERVISOR
    assert spec.shutdown == math.inf
    assert spec.start is Supervisor


def test_strategy_and_restart_may_be_given_by_their_otp_names() -> None:
    assert SupervisorFlags(strategy="rest_for_one").strategy is Strategy.REST_FOR_ONE  # type: ignore[arg-type]
    assert ChildSpec("a", ScriptedChild, restart="transient").restart is Restart.TRANSIENT  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ({"intensity": -1}, "intensity", "invalid_intensity"),
        ({"intensity": 1.5}, "intensity", "invalid_intensity"),
        ({"intensity": True}, "intensity", "invalid_intensity"),
        ({"period": 0}, "period", "invalid_period"),
        ({"period": -2.0}, "period", "invalid_period"),
        ({"period": math.inf}, "period", "invalid_period"),
        ({"period": "5"}, "period", "invalid_period"),
        ({"strategy": "one_for_none"}, "strategy", "invalid_strategy"),
    ],
)
def test_bad_flags_are_rejected_naming_the_field(
    options: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(SpecError) as caught:
        SupervisorFlags(**options)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.reason) == (field, reason)
    assert caught.value.value == options[field]


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ({"id": ""}, "id", "invalid_child_id"),
        ({"start": object}, "start", "invalid_start"),
        ({"start": pykka.ThreadingActor.start}, "start", "invalid_start"),
        ({"args": [1]}, "args", "invalid_start"),
        ({"restart": "sometimes"}, "restart", "invalid_restart_type"),
        ({"type": "manager"}, "type", "invalid_child_type"),
        ({"shutdown": -1}, "shutdown", "invalid_shutdown"),
        ({"deadline": 0}, "deadline", "invalid_deadline"),
        ({"backoff": 3}, "backoff", "invalid_backoff"),
    ],
)
def test_bad_child_specs_are_rejected_naming_the_field(
    options: dict[str, object], field: str, reason: str
) -> None:
    fields: dict[str, object] = {"id": "a", "start": ScriptedChild, **options}
    with pytest.raises(SpecError) as caught:
        ChildSpec(**fields)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.reason) == (field, reason)


class _FixedDelay:
    """A restart backoff that is not ``quotation``'s: only the shape matters."""

    def delay(self, attempt: int, draw: float) -> float:
        return 1.0


def test_any_object_with_delay_attempt_draw_is_a_restart_backoff() -> None:
    backoff = Backoff(initial=0.1, cap=30.0, jitter=Jitter.SPREAD, spread=0.1)
    assert ChildSpec("a", ScriptedChild, backoff=backoff).backoff is backoff
    assert isinstance(ChildSpec("b", ScriptedChild, backoff=_FixedDelay()).backoff, _FixedDelay)


def test_duplicate_child_ids_are_rejected_naming_the_second_one() -> None:
    children = [ChildSpec("a", ScriptedChild), ChildSpec("b", ScriptedChild),
                ChildSpec("a", ScriptedChild)]
    with pytest.raises(SpecError) as caught:
        Supervisor.start(SupervisorFlags(), children)
    assert (caught.value.field, caught.value.reason) == ("children[2].id", "duplicate_child_id")
    assert pykka.ActorRegistry.get_all() == []


def test_something_that_is_not_a_child_spec_is_rejected_naming_its_position() -> None:
    with pytest.raises(SpecError) as caught:
        Supervisor.start(SupervisorFlags(), [ChildSpec("a", ScriptedChild), "b"])
    assert caught.value.field == "children[1]"


def test_the_error_message_names_field_value_and_reason() -> None:
    with pytest.raises(SpecError, match=r"intensity: must be >= 0 \(got -3; invalid_intensity\)"):
        SupervisorFlags(intensity=-3)
