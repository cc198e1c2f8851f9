"""The mutant list cannot rot: every mutant still applies, compiles and names real tests.

This runs in `make test` (milliseconds); the mutants themselves run in `make mutate`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from gateway.policy import PolicyEngine
from tests.mutation import ROOT, Mutant, MutantError, load_mutants

MUTANTS = load_mutants()


def test_ids_are_unique_and_every_check_is_named() -> None:
    repeated = [i for i, n in Counter(m.id for m in MUTANTS).items() if n > 1]
    assert repeated == []
    assert all(m.what and m.tests for m in MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_mutant_applies_once_and_compiles(mutant: Mutant) -> None:
    source = (ROOT / mutant.file).read_text()
    assert source.count(mutant.find) == 1, f"{mutant.file} changed: the check's text moved"
    mutated = mutant.apply(source)
    assert mutated != source
    if mutant.file.endswith(".cedar"):  # a policy rule: the mutated file must still load
        schema = (ROOT / mutant.file).with_name("schema.cedarschema").read_text()
        PolicyEngine.from_text(mutated.encode(), schema, source=mutant.file)
    else:
        compile(mutated, mutant.file, "exec")


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_mutant_names_tests_that_exist(mutant: Mutant) -> None:
    for selection in mutant.tests:
        path, _, name = selection.partition("::")
        assert (ROOT / path).exists(), f"{selection}: no such test file or folder"
        if name:
            base = name.split("[")[0]
            text = Path(ROOT / path).read_text()
            assert re.search(rf"^def {re.escape(base)}\(", text, re.M), f"{selection}: no such test"


def test_a_mutant_whose_text_is_not_unique_is_refused() -> None:
    mutant = Mutant("twice", "x.py", "check()", "pass", "a check", ("tests",))
    with pytest.raises(MutantError, match="occurs 2 times"):
        mutant.apply("check()\ncheck()\n")
    with pytest.raises(MutantError, match="occurs 0 times"):
        mutant.apply("other()\n")
