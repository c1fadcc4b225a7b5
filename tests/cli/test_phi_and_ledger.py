"""What jobctl never shows by default: the upload's integrator metadata (PHI, contract 6)
and the capacity ledger's counters that share the job table."""

from __future__ import annotations

import json

from .conftest import Pipeline
from .test_lookup import table_rows

METADATA = {
    "patient-id": "PAT-0042",
    "encounter-id": "ENC-2025-7",
    "author": "Dr Ada Example",
    "note-type": "11488-4",
}
VALUES = ("PAT-0042", "ENC-2025-7", "Dr Ada Example")  # the PHI among them


def test_status_hides_the_metadata_unless_asked(pipeline: Pipeline):
    name = pipeline.completed("dictation/visit.wav", metadata=METADATA)
    item = pipeline.item(name)
    assert item is not None
    assert item["patient_id"] == "PAT-0042"  # the start path stored it

    plain = pipeline.cli("status", name)
    assert plain.code == 0, plain.err
    assert not [value for value in VALUES if value in plain.out]
    assert "patient, encounter, author (PHI, hidden" in " ".join(plain.out.split())
    assert ["note", "type", "11488-4"] in [line.split() for line in plain.out.splitlines()]

    shown = pipeline.cli("status", name, "--show-phi")
    lines = shown.out.splitlines()
    assert ["patient", "PAT-0042"] in [line.split() for line in lines]
    assert ["encounter", "ENC-2025-7"] in [line.split() for line in lines]
    assert any(line.startswith("author") and "Dr Ada Example" in line for line in lines)


def test_json_output_leaves_the_metadata_out_unless_asked(pipeline: Pipeline):
    name = pipeline.completed("dictation/visit.wav", metadata=METADATA)
    for command in (["status", name, "--json"], ["list", "--json"]):
        hidden = pipeline.cli(*command)
        assert hidden.code == 0, hidden.err
        assert not [value for value in VALUES if value in hidden.out], command
        assert json.loads(hidden.out)  # still the item(s), otherwise whole
    item = json.loads(pipeline.cli("status", name, "--json", "--show-phi").out)
    assert (item["patient_id"], item["encounter_id"]) == ("PAT-0042", "ENC-2025-7")
    (listed,) = json.loads(pipeline.cli("list", "--json", "--show-phi").out)
    assert listed["author"] == "Dr Ada Example"


def test_a_job_without_metadata_shows_only_the_default_note_type(pipeline: Pipeline):
    name = pipeline.queued("conversation/visit.wav")
    out = pipeline.cli("status", name).out
    assert "metadata" not in out
    assert "patient" not in out
    assert ["note", "type", "34109-9"] in [line.split() for line in out.splitlines()]


def test_the_capacity_ledger_is_never_a_job(pipeline: Pipeline):
    name = pipeline.queued("conversation/visit.wav")
    keys = {str(i["job_name"]) for i in pipeline.env.table.scan()["Items"]}
    assert "#capacity" in keys  # the dispatcher's counter shares the table
    # Even a counter that carried a status and a key would not be listed or found
    pipeline.env.table.put_item(
        Item={
            "job_name": "#starts#1700000000",
            "status": "QUEUED",
            "input_key": "conversation/visit.wav",
            "created_at": "2999-01-01T00:00:00.000Z",
        }
    )
    listed = pipeline.cli("list")
    assert [row[0] for row in table_rows(listed.out)] == [name]
    assert "#" not in listed.out
    by_key = pipeline.cli("status", "conversation/visit.wav")
    assert by_key.out.splitlines()[0].split() == ["job", name]
    assert "matched job" in by_key.err
    assert "#" not in by_key.err
    counter = pipeline.cli("status", "#capacity")
    assert counter.code == 1
    assert counter.err.startswith("jobctl: error: no job named")
