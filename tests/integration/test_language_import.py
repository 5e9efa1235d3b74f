"""An import's refusal reads in the reader's language: each line's problem, the rule it breaks
and the report of the whole stream say in Dutch what is wrong, and stay English as text."""

from __future__ import annotations

import pytest
from test_stream_import import encoded, event, meeting, requested

from overleg.application import Overleg
from overleg.i18n import Language, Message, text_of, translate
from overleg.streams import StreamRefused, import_stream

CASE = "7c2e4a1b-3d5f-4a6b-8c9d-0e1f2a3b4c5d"
OTHER = "8d3f5b2c-4e6a-4b7c-9d0e-1f2a3b4c5d6e"


def refused(store: Overleg, lines: list[str]) -> StreamRefused:
    with pytest.raises(StreamRefused) as raised:
        import_stream(store, lines)
    return raised.value


def test_a_line_that_breaks_a_rule_is_reported_in_dutch(store: Overleg) -> None:
    # A meeting held without anyone's consent (a case of 2015 keeps the v1 rules).
    chair = event(CASE, 2, "ChairAppointed", {"chair": "voorzitter-a"}, day=2)
    held = event(CASE, 3, "MeetingHeld", meeting(), day=3)
    refusal = refused(store, encoded([requested(CASE), chair, held]))
    (problem,) = refusal.problems
    english = (
        f"line 3, case {CASE}: [consent-required, rule set v1] MeetingHeld: A meeting needs "
        "the standing consent of the young person or a parent"
    )
    assert isinstance(problem.message, Message)
    assert str(problem) == problem.message == english
    assert translate(problem.message) == english
    assert translate(problem.message, Language.NL) == (
        f"regel 3, dossier {CASE}: [consent-required, regelset v1] MeetingHeld: Een overleg "
        "vraagt de geldende toestemming van de jongere of een ouder"
    )


def test_a_malformed_line_and_the_whole_report_read_in_dutch(store: Overleg) -> None:
    unknown_key = requested(OTHER)
    unknown_key["data"]["hobby"] = "voetbal"
    chair = event(CASE, 2, "ChairAppointed", {"chair": "voorzitter-a"}, day=2)
    held = event(CASE, 4, "MeetingHeld", meeting(), day=4)
    refusal = refused(store, [*encoded([requested(CASE), unknown_key, chair, held]), "{"])
    assert [p.line for p in refusal.problems] == [2, 4, 5]
    report = text_of(refusal)
    assert isinstance(report, Message)
    assert str(refusal) == report
    assert report.startswith(
        "The stream was not imported; nothing was written. 3 problem(s):\n"
        f"  line 2, case {OTHER}: unknown key 'data.hobby'\n"
        f"  line 4, case {CASE}: [seq-contiguous] seq 4 leaves a gap: expected seq 3\n"
        "  line 5: not valid JSON ("
    )
    dutch = translate(report, Language.NL)
    assert dutch.startswith(
        "De stroom werd niet geïmporteerd; er werd niets geschreven. 3 probleem/problemen:\n"
        f"  regel 2, dossier {OTHER}: onbekende sleutel 'data.hobby'\n"
        f"  regel 4, dossier {CASE}: [seq-contiguous] seq 4 laat een gat: seq 3 werd verwacht\n"
        "  regel 5: geen geldige JSON ("
    )
    ours = dutch.rsplit("(", 1)[0]  # the JSON parser's own reason is its own English
    for english in ("line", "case", "unknown key", "leaves a gap", "not valid", "problem(s)"):
        assert english not in ours, dutch
