"""Checkpoints shared by the fit and the scene refiner: replayable randomness, atomic writes,
weights-only reads, and the settings/data check before a resume."""

import argparse
import json
import pickle

import pytest
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.fit.checkpoint import checkpoint_matches, load_checkpoint, save_checkpoint, step_generator


def test_step_generator_draws_what_earlier_checkpoints_replayed():
    # Values the fit's and the refiner's own generators drew before they were one function: a
    # checkpoint written then must resume into the same image order, crops and backgrounds.
    assert torch.randperm(8, generator=step_generator(3, -1)).tolist() == [1, 4, 0, 7, 6, 3, 2, 5]
    assert torch.rand(2, generator=step_generator(7, 12345)).tolist() == [0.9755791425704956, 0.24661242961883545]


def test_checkpoint_round_trips_and_reads_weights_only(tmp_path):
    path = tmp_path / "run.ckpt"
    state = {"step": 4, "params": {"means": torch.arange(6.0).reshape(2, 3)}, "config": json.dumps({"a": 1}),
             "fingerprint": {"images": 2, "sizes": [(4, 3)]}, "elapsed": 1.5}
    save_checkpoint(path, state)
    back = load_checkpoint(path)
    assert back["step"] == 4 and torch.equal(back["params"]["means"], state["params"]["means"])
    assert checkpoint_matches(back, {"a": 1}, {"images": 2, "sizes": [(4, 3)]})
    assert not checkpoint_matches(back, {"a": 2}, {"images": 2, "sizes": [(4, 3)]})
    assert not checkpoint_matches(back, {"a": 1}, {"images": 3, "sizes": [(4, 3)]})
    assert not checkpoint_matches([1, 2], {"a": 1}, None)
    assert not checkpoint_matches({"fingerprint": None}, {"a": 1}, None)  # no config

    # A pickle that would build an arbitrary object is refused, in one line naming the file.
    torch.save({"step": 1, "config": argparse.Namespace(run="code")}, tmp_path / "evil.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint\n" + pickle.dumps(3))
    for name in ("evil.ckpt", "junk.ckpt"):
        with pytest.raises(SplatfilmError, match=rf"{name}: cannot read refiner checkpoint \(\w+: .*\); delete") as e:
            load_checkpoint(tmp_path / name, "refiner checkpoint", "; delete it to start over")
        assert "\n" not in str(e.value)
