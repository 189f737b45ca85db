"""The Params convention: validation messages, round trips, hashing, columns."""
from __future__ import annotations

import json

import numpy as np
import pytest

from generators.systolic import Dataflow, SystolicParams


@pytest.mark.parametrize("field, value, message", [
    ("rows", 0, "systolic.rows must be an integer in 1..64, not 0"),
    ("rows", 65, "systolic.rows must be an integer in 1..64, not 65"),
    ("cols", 2.0, "systolic.cols must be an integer in 1..64, not 2.0"),
    ("a_bits", 1, "systolic.a_bits must be an integer in 2..16, not 1"),
    ("w_bits", 17, "systolic.w_bits must be an integer in 2..16, not 17"),
    ("acc_bits", 1, "systolic.acc_bits must be an integer in 2..64 or unset (derived), not 1"),
    ("k_max", 0, "systolic.k_max must be an integer in 1..65536, not 0"),
    ("signed", 1, "systolic.signed must be true or false, not 1"),
    ("dataflow", "is", "systolic.dataflow must be one of 'os', 'ws', not 'is'"),
    ("rows", True, "systolic.rows must be an integer in 1..64, not True"),
])
def test_bad_field_is_named_with_its_range(field, value, message):
    with pytest.raises(ValueError) as info:
        SystolicParams(**{field: value})
    assert str(info.value) == message


def test_unknown_field_lists_known_ones():
    with pytest.raises(ValueError, match=r"systolic has no parameter 'depth'; known: rows, cols"):
        SystolicParams.from_dict({"depth": 3})


def test_dict_and_json_round_trip():
    p = SystolicParams(rows=3, cols=5, dataflow="ws", acc_bits=20, signed=False)
    again = SystolicParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p and again.dataflow is Dataflow.WS
    assert again.digest() == p.digest()


def test_from_strings_parses_every_kind():
    p = SystolicParams.from_strings({"rows": "3", "signed": "false", "dataflow": "WS",
                                     "acc_bits": "auto", "k_max": "0x40"})
    assert (p.rows, p.signed, p.dataflow, p.acc_bits, p.k_max) == (3, False, Dataflow.WS, None, 64)
    with pytest.raises(ValueError, match="systolic.rows must be an integer in 1..64, not 'three'"):
        SystolicParams.from_strings({"rows": "three"})
    with pytest.raises(ValueError, match="systolic.signed must be true or false, not 'maybe'"):
        SystolicParams.from_strings({"signed": "maybe"})


def test_a_late_field_at_its_default_leaves_the_digest_as_it_was():
    """Fields that joined after designs were cached (``late``) key a design only when set, so
    cached synthesis results and studies of the designs before them keep their names."""
    import hashlib

    from generators.lut_mpgemm import LutMpGemmParams

    p = LutMpGemmParams()
    late = [i.name for i in LutMpGemmParams.fields() if i.spec.late]
    assert late == ["column_steps", "table_store"]
    before = {k: v for k, v in p.to_dict().items() if k not in late}
    text = json.dumps({"family": "lut_mpgemm", "params": before}, sort_keys=True)
    assert p.digest() == hashlib.sha256(text.encode()).hexdigest()[:10]
    assert len({p.digest(), p.replace(column_steps=2).digest(), p.replace(table_store="lutram").digest()}) == 3


def test_digest_is_stable_and_distinguishes_points():
    a, b = SystolicParams(), SystolicParams(rows=5)
    assert a.digest() == SystolicParams().digest()
    assert a.digest() != b.digest()
    assert a.top_name() == f"af_systolic_{a.digest()}"
    assert len(a.digest()) == 10


def test_columns_encode_enums_and_derived_fields():
    cols = SystolicParams.columns([SystolicParams(), SystolicParams(dataflow="ws", acc_bits=9)])
    assert cols["dataflow"].tolist() == [0, 1]
    assert cols["acc_bits"].tolist() == [0, 9]
    assert cols["signed"].dtype == np.bool_


def test_search_metadata_is_declared_next_to_fields():
    infos = {i.name: i for i in SystolicParams.fields()}
    assert infos["k_max"].spec.range.log
    assert not infos["acc_bits"].spec.search
    assert infos["dataflow"].choices == tuple(Dataflow)
